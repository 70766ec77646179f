"""changelog-audit log and stats against a deterministic log.

The expected outputs live in tests/data/audit/. Regenerate them (after
checking the difference by eye) with CL_UPDATE_EXPECTED=1.
"""
import csv
import io
import json
import os
import shutil
import tempfile

import pytest

from tools_util import (EXPECTED, build_fixture_log, expected, run_admin,
                        run_audit)

CASES = [
    ("log_all.txt", "text", []),
    ("log_all.csv", "csv", []),
    ("log_all.jsonl", "jsonl", []),
    ("log_entry1.txt", "text", ["--entry", "1"]),
    ("log_entry2.jsonl", "jsonl", ["--entry", "2"]),
    ("log_user_alice.csv", "csv", ["--user", "alice"]),
    ("log_type_entry.txt", "text", ["--type", "entry"]),
    ("log_type_token_comment.csv", "csv", ["--type", "token,comment.added"]),
    ("log_since_until.txt", "text", ["--since", "2026-11-28", "--until", "2026-12-02"]),
    ("log_seq_range.jsonl", "jsonl", ["--from-seq", "10", "--to-seq", "14"]),
    ("log_combined.txt", "text",
     ["--entry", "1", "--user", "alice", "--type", "entry.status_set,entry.edited"]),
]


@pytest.fixture(scope="module")
def fixture_log():
    d = tempfile.mkdtemp(prefix="clg-audit-")
    data = os.path.join(d, "data")
    build_fixture_log(data)
    yield data
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("name,fmt,args", CASES, ids=[c[0] for c in CASES])
def test_log_expected_output(fixture_log, name, fmt, args):
    p = run_audit("log", "--data", fixture_log, "--format", fmt, *args)
    assert p.returncode == 0, p.stderr
    got = p.stdout
    if os.environ.get("CL_UPDATE_EXPECTED"):
        os.makedirs(EXPECTED, exist_ok=True)
        with open(os.path.join(EXPECTED, name), "w", newline="") as f:
            f.write(got)
    assert got == expected(name)


def test_text_is_default_format(fixture_log):
    a = run_audit("log", "--data", fixture_log)
    b = run_audit("log", "--data", fixture_log, "--format", "text")
    assert a.returncode == 0 and a.stdout == b.stdout


def test_csv_is_rfc4180(fixture_log):
    p = run_audit("log", "--data", fixture_log, "--format", "csv")
    assert p.returncode == 0
    assert "\r\n" in p.stdout and "\n" not in p.stdout.replace("\r\n", "")
    rows = list(csv.reader(io.StringIO(p.stdout, newline="")))
    assert rows[0] == ["seq", "time", "type", "actor", "entry", "comment", "summary"]
    assert len(rows) == 19
    # quotes and commas inside a field survive the round trip
    assert rows[8][6] == 'created fix #1 "Login fails with "quotes", commas"'
    assert rows[7][6] == 'issued token 4 to alice "laptop, home"'
    assert rows[1][3] == "(system)"


def test_jsonl_is_the_push_form(fixture_log):
    p = run_audit("log", "--data", fixture_log, "--format", "jsonl")
    lines = [json.loads(l) for l in p.stdout.splitlines()]
    assert [o["seq"] for o in lines] == list(range(1, 19))
    assert lines[0]["actor_name"] is None and lines[0]["actor"] == 0
    assert lines[16]["data"]["body"] == 'multi\nline, with "quotes"'
    assert lines[16]["actor_name"] == "bob" and lines[16]["comment"] == 3
    for o in lines:   # token hashes never leave the log
        assert "hash" not in o.get("data", {})


def test_stats(fixture_log):
    p = run_audit("stats", "--data", fixture_log, "--format", "json")
    assert p.returncode == 0, p.stderr
    s = json.loads(p.stdout)
    assert s["events"] == 18
    assert s["by_type"] == {"user.created": 3, "user.role_set": 1, "token.issued": 4,
                            "token.revoked": 1, "entry.created": 2, "entry.edited": 1,
                            "entry.status_set": 3, "comment.added": 3,
                            "comment.edited": 0, "comment.deleted": 0, "read.marked": 0,
                            "webhook.created": 0, "webhook.deleted": 0}
    assert sum(s["by_month"].values()) == 18 and s["by_month"]["2026-12"] >= 5
    assert s["users"] == {"total": 3, "admin": 2, "member": 1}
    assert s["tokens"] == {"issued": 4, "active": 3, "revoked": 1}
    assert s["entries"] == {"total": 2, "open": 0, "resolved": 0, "cancelled": 1,
                            "reopened": 1}
    assert s["comments"] == 3
    assert s["store"]["events"] == 18 and 0 < s["store"]["used_bytes"] <= s["store"]["map_bytes"]
    assert len(s["epoch"]) == 32
    t = run_audit("stats", "--data", fixture_log)
    assert t.returncode == 0
    assert "entries   2 (open 0, resolved 0, cancelled 1, reopened 1)" in t.stdout
    assert "tokens    4 issued, 3 active, 1 revoked" in t.stdout


def test_read_only_and_untouched(fixture_log):
    """audit never writes: the data file is byte-identical afterwards."""
    path = os.path.join(fixture_log, "data.mdb")
    with open(path, "rb") as f:
        before = f.read()
    for args in (["verify"], ["log"], ["stats"]):
        assert run_audit(*args, "--data", fixture_log).returncode == 0
    with open(path, "rb") as f:
        assert f.read() == before


@pytest.mark.parametrize("args,needle", [
    (["log", "--type", "bogus"], "--type"),
    (["log", "--type", "entry,"], "--type"),
    (["log", "--since", "yesterday"], "--since"),
    (["log", "--until", "2026-13-01"], "--until"),
    (["log", "--since", "2026-02-30"], "--since"),          # no such day: not March 2
    (["log", "--since", "2025-02-29T10:00Z"], "--since"),
    (["log", "--until", "2026-11-27T10:00+99:99"], "--until"),
    (["log", "--until", "2026-11-27T24:00Z"], "--until"),
    (["log", "--format", "xml"], "--format"),
    (["log", "--entry", "0"], "--entry"),
    (["log", "--from-seq", "-3"], "--from-seq"),
    (["log", "--to-seq", "abc"], "--to-seq"),
    (["log", "--user", ""], "--user"),
    (["log", "--bogus"], "unknown option"),
    (["stats", "--format", "csv"], "--format"),
    (["stats", "--entry", "1"], "does not apply"),
    (["verify", "extra"], "unexpected argument"),
    (["frobnicate"], "unknown command"),
    ([], "no command"),
    (["log", "--entry"], "needs a value"),
])
def test_bad_usage_exits_2(fixture_log, args, needle):
    p = run_audit(*args, "--data", fixture_log) if args and args[-1] != "--entry" \
        else run_audit("--data", fixture_log, *args)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr
    assert p.stdout == ""


def test_missing_data_option():
    p = run_audit("verify")
    assert p.returncode == 2 and "--data DIR is required" in p.stderr


def test_unknown_user_filter(fixture_log):
    p = run_audit("log", "--data", fixture_log, "--user", "nobody")
    assert p.returncode == 1
    assert "no user named 'nobody'" in p.stderr


def test_help():
    for args in (["--help"], ["-h"], ["verify", "--help"], ["log", "--help"],
                 ["stats", "--help"]):
        p = run_audit(*args)
        assert p.returncode == 0 and p.stdout.startswith("usage: changelog-audit")
    assert "--from-seq" in run_audit("log", "--help").stdout


def test_missing_and_corrupt_data_dir(tmp_path):
    p = run_audit("verify", "--data", str(tmp_path / "nope"))
    assert p.returncode == 1 and "no log in" in p.stderr
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(os.urandom(16384))
    for cmd in ("verify", "log", "stats"):
        p = run_audit(cmd, "--data", str(bad))
        assert p.returncode == 1, (cmd, p.stdout, p.stderr)
        assert "is not a valid LMDB file" in p.stderr, p.stderr


def test_fake_time_only_affects_tools(tmp_path):
    """CHANGELOG_FAKE_TIME is a documented tools-only clock (init included);
    garbage is refused."""
    data = str(tmp_path / "d")
    p = run_admin("init", "--data", data, fake_time="not-a-time")
    assert p.returncode != 0 and "CHANGELOG_FAKE_TIME" in p.stderr
    assert not os.path.exists(os.path.join(data, "data.mdb"))
    run_admin("init", "--data", data, fake_time="2026-11-27T08:00:00Z", check=True)
    boot = run_audit("log", "--data", data, "--format", "jsonl").stdout.splitlines()
    assert [json.loads(l)["ts"] for l in boot] == ["2026-11-27T08:00:00.000000Z"] * 2
    p = run_admin("user", "add", "x", "--data", data, fake_time="not-a-time")
    assert p.returncode != 0 and "CHANGELOG_FAKE_TIME" in p.stderr
    p = run_admin("user", "add", "x", "--data", data, fake_time="1795773600000000")
    assert p.returncode == 0
    last = run_audit("log", "--data", data, "--format", "jsonl").stdout.splitlines()[-2]
    assert json.loads(last)["ts"] == "2026-11-27T10:00:00.000000Z"
