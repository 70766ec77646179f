"""changelog-audit verify: a clean log passes, and each kind of tampering,
done on a copy of a clean log with lmdb-utils (mdb_dump / mdb_load), fails
with exit 1 naming the first bad seq."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from tools_util import ADMIN, LmdbDump, init_log, run_admin, run_audit


@pytest.fixture(scope="module")
def clean_log():
    d = tempfile.mkdtemp(prefix="clg-verify-")
    data = os.path.join(d, "clean")
    init_log(data)
    run_admin("dev-seed", "--events", "3000", "--seed", "11", "--data", data,
              fake_time="2026-11-27T10:00:00Z", check=True)
    yield data
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


def tampered(clean_log, tmp_path, edit):
    dump = LmdbDump(clean_log)
    edit(dump)
    out = str(tmp_path / "tampered")
    dump.save(out)
    return out


def verify_fails(data, seq, what):
    p = run_audit("verify", "--data", data)
    assert p.returncode == 1, (p.stdout, p.stderr)
    line = p.stdout.strip()
    assert line.startswith("FAIL: seq %d: " % seq), line
    assert what in line, line
    return line


def test_clean_log_verifies(clean_log):
    p = run_audit("verify", "--data", clean_log)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.startswith("ok: 3002 events, seq 1..3002 gapless, hash chain intact")
    assert p.stdout.count("\n") == 1


def test_dump_roundtrip_is_clean(clean_log, tmp_path):
    """The tampering tool itself changes nothing when nothing is edited."""
    data = tampered(clean_log, tmp_path, lambda d: None)
    assert run_audit("verify", "--data", data).returncode == 0


def test_changed_byte_in_a_string(clean_log, tmp_path):
    dump = LmdbDump(clean_log)
    seq = next(s for s in range(1000, 3000) if b"Comment:" in dump.get_event(s))
    v = dump.get_event(seq)
    i = v.index(b"Comment:")
    dump.set_event(seq, v[:i] + b"K" + v[i + 1:])
    out = str(tmp_path / "t")
    dump.save(out)
    verify_fails(out, seq, "content changed")


def test_changed_byte_in_prev_hash(clean_log, tmp_path):
    def edit(d):
        v = bytearray(d.get_event(1234))
        v[-1] ^= 0x01                   # "ph" is the envelope's last field
        d.set_event(1234, bytes(v))
    verify_fails(tampered(clean_log, tmp_path, edit), 1234,
                 "hash chain broken (prev_hash does not match seq 1233)")


def test_undecodable_event(clean_log, tmp_path):
    def edit(d):
        d.set_event(777, b"\xc1" + d.get_event(777)[1:])
    verify_fails(tampered(clean_log, tmp_path, edit), 777, "does not decode")


def test_deleted_event(clean_log, tmp_path):
    verify_fails(tampered(clean_log, tmp_path, lambda d: d.del_event(1500)), 1500,
                 "missing (the next stored event is seq 1501)")


def test_swapped_events(clean_log, tmp_path):
    def edit(d):
        a, b = d.get_event(100), d.get_event(200)
        d.set_event(100, b)
        d.set_event(200, a)
    verify_fails(tampered(clean_log, tmp_path, edit), 100,
                 "hash chain broken (prev_hash does not match seq 99)")


def test_truncated_log(clean_log, tmp_path):
    def edit(d):
        for s in (3002, 3001, 3000):
            d.del_event(s)
    verify_fails(tampered(clean_log, tmp_path, edit), 3000,
                 "the log is truncated (meta says the last event is seq 3002, the "
                 "last stored one is seq 2999)")


def test_replaced_head_hash(clean_log, tmp_path):
    def edit(d):
        d.set_meta("head", bytes(32))
    verify_fails(tampered(clean_log, tmp_path, edit), 3002,
                 "the hash chain does not end at meta head")


def test_extra_event_beyond_meta(clean_log, tmp_path):
    def edit(d):
        d.events().append([(3003).to_bytes(8, "big"), d.get_event(3002)])
    verify_fails(tampered(clean_log, tmp_path, edit), 3003, "beyond the end of the log")


def test_log_and_stats_refuse_a_tampered_log(clean_log, tmp_path):
    def edit(d):
        d.del_event(1500)
    data = tampered(clean_log, tmp_path, edit)
    p = run_audit("log", "--data", data, "--format", "jsonl")
    assert p.returncode == 1 and "seq 1500" in p.stderr
    assert len(p.stdout.splitlines()) == 1499   # everything before the damage
    p = run_audit("stats", "--data", data)
    assert p.returncode == 1 and "seq 1500" in p.stderr


def test_verify_a_live_log(tmp_path):
    """Runs beside a writer; events committed after it began are left out."""
    data = str(tmp_path / "live")
    init_log(data)
    w = subprocess.Popen([ADMIN, "dev-seed", "--events", "50000", "--batch", "25",
                          "--data", data], stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        for _ in range(3):
            p = run_audit("verify", "--data", data)
            assert p.returncode == 0, p.stdout + p.stderr
            assert p.stdout.startswith("ok: ")
        assert w.poll() is None, "the writer finished too early to test anything"
    finally:
        w.wait(timeout=120)
    assert w.returncode == 0
    assert run_audit("verify", "--data", data).stdout.startswith("ok: 50002 events")


def test_100k_events_verify_fast(tmp_path):
    data = str(tmp_path / "big")
    init_log(data)
    t0 = time.monotonic()
    run_admin("dev-seed", "--events", "100000", "--data", data, check=True)
    p = run_audit("verify", "--data", data)
    took = time.monotonic() - t0
    assert p.returncode == 0, p.stdout
    assert p.stdout.startswith("ok: 100002 events, seq 1..100002 gapless")
    assert took < 30, took
