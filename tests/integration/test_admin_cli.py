"""changelog-admin: init, users, tokens, --as, concurrent writers, bad input."""
import json
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

from tools_util import ADMIN, init_log, run_admin, run_audit

TOKEN_RE = r"clg_[A-Za-z0-9_-]{43}\n"


@pytest.fixture
def data(tmp_path):
    d = str(tmp_path / "data")
    init_log(d)
    return d


def users(data):
    p = run_admin("user", "list", "--format", "json", "--data", data, check=True)
    return {u["name"]: u for u in json.loads(p.stdout)}


def events(data):
    p = run_audit("log", "--format", "jsonl", "--data", data, check=True)
    return [json.loads(l) for l in p.stdout.splitlines()]


def test_init_prints_only_the_token(tmp_path):
    d = str(tmp_path / "new" / "dir")
    p = run_admin("init", "--data", d, "--admin", "boss")
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(TOKEN_RE, p.stdout)
    assert "boss" in p.stderr
    u = users(d)
    assert list(u) == ["boss"] and u["boss"]["role"] == "admin"
    ev = events(d)
    assert [e["type"] for e in ev] == ["user.created", "token.issued"]
    assert ev[0]["actor"] == 0
    # the default admin name
    p = run_admin("init", "--data", str(tmp_path / "d2"))
    assert p.returncode == 0 and list(users(str(tmp_path / "d2"))) == ["admin"]


def test_init_refuses_an_existing_log(data):
    before = events(data)
    p = run_admin("init", "--data", data)
    assert p.returncode == 1
    assert "already holds a log (2 events" in p.stderr
    assert p.stdout == ""
    assert events(data) == before


def test_init_bad_name(tmp_path):
    p = run_admin("init", "--data", str(tmp_path / "d"), "--admin", "no spaces")
    assert p.returncode == 1 and "not a valid user name" in p.stderr
    assert not os.path.exists(str(tmp_path / "d" / "data.mdb"))


def test_user_add_list_role(data):
    p = run_admin("user", "add", "alice", "--data", data)
    assert p.returncode == 0, p.stderr
    assert re.fullmatch(TOKEN_RE, p.stdout)
    p = run_admin("user", "add", "bob", "--admin", "--data", data)
    assert p.returncode == 0 and re.fullmatch(TOKEN_RE, p.stdout)
    u = users(data)
    assert u["alice"]["role"] == "member" and u["bob"]["role"] == "admin"
    assert [t["label"] for t in u["alice"]["tokens"]] == ["initial"]

    p = run_admin("user", "role", "alice", "admin", "--data", data)
    assert p.returncode == 0, p.stderr
    assert users(data)["alice"]["role"] == "admin"
    text = run_admin("user", "list", "--data", data, check=True).stdout
    assert text.splitlines()[0].split() == ["ID", "NAME", "ROLE", "TOKENS", "CREATED"]
    assert re.search(r"^2 +alice +admin +1/1 ", text, re.M), text
    # options may come first
    p = run_admin("--data", data, "user", "role", "alice", "member")
    assert p.returncode == 0


def test_duplicate_and_unknown_users(data):
    run_admin("user", "add", "alice", "--data", data, check=True)
    n = len(events(data))
    p = run_admin("user", "add", "alice", "--data", data)
    assert p.returncode == 1 and p.stdout == ""
    assert "refused (conflict): user alice already exists" in p.stderr
    for args in (["user", "role", "ghost", "admin"], ["token", "issue", "ghost"],
                 ["token", "revoke", "ghost"]):
        p = run_admin(*args, "--data", data)
        assert p.returncode == 1, args
        assert "ghost" in p.stderr and ("does not exist" in p.stderr or
                                        "no user named" in p.stderr), p.stderr
    p = run_admin("user", "add", "bad/name", "--data", data)
    assert p.returncode == 1 and "refused (bad_request)" in p.stderr
    p = run_admin("user", "role", "root", "member", "--data", data)
    assert p.returncode == 1 and "last admin" in p.stderr
    assert len(events(data)) == n      # nothing was appended by any refusal


def test_token_issue_and_revoke_forms(data):
    alice_tok = run_admin("user", "add", "alice", "--data", data, check=True).stdout.strip()
    p = run_admin("token", "issue", "alice", "--label", "ci", "--data", data)
    assert p.returncode == 0 and re.fullmatch(TOKEN_RE, p.stdout)
    assert "issued token 3" in p.stderr
    run_admin("token", "issue", "alice", "--data", data, check=True)       # token 4

    # a prefix cannot be matched: only hashes are stored
    p = run_admin("token", "revoke", alice_tok[:12], "--data", data)
    assert p.returncode == 2 and "not a whole token" in p.stderr
    # the whole token
    p = run_admin("token", "revoke", alice_tok, "--data", data)
    assert p.returncode == 0 and "revoked token 2 of 'alice'" in p.stderr
    p = run_admin("token", "revoke", alice_tok, "--data", data)
    assert p.returncode == 1 and "no active token matches" in p.stderr
    # by id
    p = run_admin("token", "revoke", "3", "--data", data)
    assert p.returncode == 0 and "revoked token 3" in p.stderr
    p = run_admin("token", "revoke", "3", "--data", data)
    assert p.returncode == 1 and "already revoked" in p.stderr
    p = run_admin("token", "revoke", "99", "--data", data)
    assert p.returncode == 1 and "no token with id 99" in p.stderr
    # by user: every active one (only 4 is left)
    p = run_admin("token", "revoke", "alice", "--data", data)
    assert p.returncode == 0 and "revoked token 4" in p.stderr
    p = run_admin("token", "revoke", "alice", "--data", data)
    assert p.returncode == 0 and "nothing to revoke" in p.stderr
    toks = users(data)["alice"]["tokens"]
    assert [t["revoked"] for t in toks] == [True, True, True]


def test_revoke_all_digit_user_name(data):
    run_admin("user", "add", "1234", "--data", data, check=True)
    p = run_admin("token", "revoke", "1234", "--data", data)      # read as a token id
    assert p.returncode == 1 and "no token with id 1234" in p.stderr
    p = run_admin("token", "revoke", "--user", "1234", "--data", data)
    assert p.returncode == 0 and "revoked token 2 of '1234'" in p.stderr
    p = run_admin("token", "revoke", "--id", "--user", "1", "--data", data)
    assert p.returncode == 2


def test_actor_is_first_admin_or_as(data):
    run_admin("user", "add", "alice", "--data", data, check=True)
    run_admin("user", "add", "bob", "--admin", "--data", data, check=True)
    run_admin("user", "add", "carol", "--as", "bob", "--data", data, check=True)
    p = run_admin("user", "add", "dave", "--as", "alice", "--data", data)
    assert p.returncode == 1 and "not an admin" in p.stderr
    p = run_admin("user", "add", "dave", "--as", "nobody", "--data", data)
    assert p.returncode == 1 and "no user named 'nobody'" in p.stderr
    by = {e["data"].get("name"): e["actor_name"] for e in events(data)
          if e["type"] == "user.created"}
    assert by == {"root": None, "alice": "root", "bob": "root", "carol": "bob"}


def test_concurrent_writers_all_succeed(data):
    """Four processes add users at once: conflicts are retried, none lost."""
    def worker(k):
        out = []
        for i in range(10):
            p = run_admin("user", "add", "w%d-%d" % (k, i), "--data", data)
            out.append((p.returncode, p.stderr))
        return out

    with ThreadPoolExecutor(4) as ex:
        results = [r for rs in ex.map(worker, range(4)) for r in rs]
    assert all(rc == 0 for rc, _ in results), [e for rc, e in results if rc]
    assert len(users(data)) == 41
    v = run_audit("verify", "--data", data)
    assert v.returncode == 0 and v.stdout.startswith("ok: 82 events"), v.stdout


@pytest.mark.parametrize("args,needle", [
    ([], "no command given"),
    (["frob"], "unknown command 'frob'"),
    (["user"], "unknown command 'user'"),
    (["user", "add"], "wrong number of arguments"),
    (["user", "add", "a", "b"], "wrong number of arguments"),
    (["user", "role", "a", "boss"], "admin or member"),
    (["user", "add", "x", "--label", "l"], "--label does not apply"),
    (["user", "list", "--format", "xml"], "--format"),
    (["init", "--admin"], "--admin needs a value"),
    (["user", "add", "x", "--admin=yes"], "--admin takes no value"),
    (["user", "add", "x", "--bogus"], "unknown option '--bogus'"),
    (["dev-exec", "createEntry", "{not json"], "not JSON"),
    (["dev-seed", "--events", "0"], "--events must be"),
])
def test_bad_usage_exits_2(data, args, needle):
    p = run_admin(*args, "--data", data)
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert needle in p.stderr
    assert p.stdout == ""


def test_data_is_required():
    p = run_admin("user", "list")
    assert p.returncode == 2 and "--data DIR is required" in p.stderr


def test_help_everywhere():
    p = run_admin("--help")
    assert p.returncode == 0 and p.stdout.startswith("usage: changelog-admin")
    assert "dev-seed" not in p.stdout          # test hooks are not advertised
    for args in (["init"], ["user", "add"], ["user", "list"], ["user", "role"],
                 ["token", "issue"], ["token", "revoke"], ["backup"], ["restore"],
                 ["dev-seed"], ["dev-exec"]):
        p = run_admin(*args, "--help")
        assert p.returncode == 0, args
        assert p.stdout.startswith("usage: changelog-admin " + " ".join(args)), p.stdout
    assert "prefix" in run_admin("token", "revoke", "-h").stdout


def test_missing_and_corrupt_data_dir(tmp_path):
    missing = str(tmp_path / "missing")
    for args in (["user", "list"], ["user", "add", "x"], ["token", "issue", "x"],
                 ["backup", str(tmp_path / "b")]):
        p = run_admin(*args, "--data", missing)
        assert p.returncode == 1, args
        assert "no log in %s" % missing in p.stderr
    assert not os.path.exists(missing)        # nothing created by accident
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "data.mdb").write_bytes(b"\x00garbage" * 4096)
    p = run_admin("user", "list", "--data", str(bad))
    assert p.returncode == 1 and "data.mdb is not a valid LMDB file" in p.stderr
    p = run_admin("init", "--data", str(bad))
    assert p.returncode == 1 and p.stdout == ""


def test_data_dir_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    p = run_admin("user", "list", "--data", str(f))
    assert p.returncode == 1 and str(f) in p.stderr
    p = run_admin("init", "--data", str(f))
    assert p.returncode == 1 and str(f) in p.stderr


def test_dev_exec_reports_refusals(data):
    p = run_admin("dev-exec", "setStatus", '{"entry": 1, "status": "resolved"}',
                  "--data", data)
    assert p.returncode == 1
    assert json.loads(p.stdout)["error"]["code"] == "not_found"
    p = run_admin("dev-exec", "createEntry", '{"title": "t", "kind": "fix"}', "--data", data)
    assert p.returncode == 0 and json.loads(p.stdout) == {"ok": True, "seq": 3, "entry": 1}
