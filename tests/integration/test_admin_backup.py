"""changelog-admin backup / restore: a hot backup taken while a writer
appends at full speed verifies and restores; the restored log has a new
epoch; bad targets and bad backups are refused without damage."""
import json
import os
import subprocess
import time

from tools_util import ADMIN, LmdbDump, init_log, run_admin, run_audit


def stats(data):
    p = run_audit("stats", "--format", "json", "--data", data, check=True)
    return json.loads(p.stdout)


def test_hot_backup_while_writing_then_restore(tmp_path):
    data, backup, restored = (str(tmp_path / n) for n in ("data", "backup", "restored"))
    init_log(data)
    writer = subprocess.Popen([ADMIN, "dev-seed", "--events", "40000", "--batch", "20",
                               "--data", data], stderr=subprocess.PIPE)
    try:
        time.sleep(0.3)
        assert writer.poll() is None
        p = run_admin("backup", backup, "--data", data)
        still_writing = writer.poll() is None
    finally:
        writer.wait(timeout=300)
    assert writer.returncode == 0, writer.stderr.read()
    assert still_writing, "the writer finished before the backup: nothing was tested"
    assert p.returncode == 0, p.stderr
    m = p.stdout.split()
    assert m[0] == "ok:" and "verified" in p.stderr
    backed_up = int(m[1])
    assert 2 < backed_up < 40002          # a snapshot from the middle of the run

    b = stats(backup)
    assert b["events"] == backed_up
    assert b["epoch"] == stats(data)["epoch"]   # a backup is the same log instance

    p = run_admin("restore", backup, "--data", restored)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("ok: %d events" % backed_up)
    r = stats(restored)
    assert r["events"] == backed_up
    assert r["epoch"] != b["epoch"] and len(r["epoch"]) == 32
    assert "new epoch %s" % r["epoch"] in p.stderr
    assert run_audit("verify", "--data", restored).returncode == 0
    # the history is the same: the same events, seq for seq
    a = run_audit("log", "--format", "jsonl", "--to-seq", str(backed_up), "--data", data)
    c = run_audit("log", "--format", "jsonl", "--data", restored)
    assert a.stdout == c.stdout
    # the restored log is a working log: it takes new writes
    assert run_admin("user", "add", "after-restore", "--data", restored).returncode == 0
    assert run_audit("verify", "--data", restored).returncode == 0
    # and the original, finished, verifies too
    assert run_audit("verify", "--data", data).stdout.startswith("ok: 40002 events")


def test_backup_refuses_non_empty_dest(tmp_path):
    data = str(tmp_path / "data")
    init_log(data)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    p = run_admin("backup", str(dest), "--data", data)
    assert p.returncode == 1 and "not empty" in p.stderr
    assert os.listdir(dest) == ["keep.txt"]
    # an empty existing directory is fine
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run_admin("backup", str(empty), "--data", data).returncode == 0


def test_restore_refuses_non_empty_target(tmp_path):
    data, backup = str(tmp_path / "data"), str(tmp_path / "backup")
    init_log(data)
    run_admin("backup", backup, "--data", data, check=True)
    before = stats(data)
    p = run_admin("restore", backup, "--data", data)      # over a live log: never
    assert p.returncode == 1 and "not empty" in p.stderr
    assert stats(data) == before


def test_restore_refuses_a_bad_backup(tmp_path):
    data, backup = str(tmp_path / "data"), str(tmp_path / "backup")
    init_log(data)
    run_admin("dev-seed", "--events", "300", "--data", data, check=True)
    dump = LmdbDump(data)
    dump.del_event(100)
    dump.save(backup)
    target = str(tmp_path / "target")
    p = run_admin("restore", backup, "--data", target)
    assert p.returncode == 1
    assert "does not verify: seq 100: missing" in p.stderr
    assert not os.path.exists(target)
    p = run_admin("restore", str(tmp_path / "nothing"), "--data", target)
    assert p.returncode == 1 and "no log in" in p.stderr
