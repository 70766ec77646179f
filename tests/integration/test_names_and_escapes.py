"""Issue 15, item 14, through the real binaries: user names that a command
line cannot address ("--help", "-", "..") are refused for new users by the
server and by changelog-admin; C1 controls and bidi overrides in user text
reach `changelog-audit log` output (text, csv, jsonl) only escaped."""
import json
import os

from conftest import Client, run
from tools_util import dev_exec, init_log, run_admin, run_audit

BAD_NAMES = ["--help", "-", "-x", ".", "..", "..."]


def test_server_refuses_names_a_command_line_cannot_address(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        for name in BAD_NAMES:
            r = await c.command("createUser", {"name": name})
            assert not r["ok"], (name, r)
            assert r["error"]["code"] == "bad_request"
            assert "start with '-'" in r["error"]["message"]
        for name in ["x-", ".x", "a..b"]:
            r = await c.command("createUser", {"name": name})
            assert r["ok"], (name, r)
        r = await c.query("getUsers")
        names = [u["name"] for u in r["result"]["users"]]
        assert not set(BAD_NAMES) & set(names)
        await c.close()

    run(go())


def test_admin_refuses_them_too(tmp_path):
    data = str(tmp_path / "data")
    p = run_admin("init", "--data", data, "--admin", "..")
    assert p.returncode != 0 and "not a valid user name" in p.stderr, p.stderr
    init_log(data)
    p = run_admin("user", "add", "--data", data, "--", "--help")
    assert p.returncode != 0, (p.stdout, p.stderr)
    assert "start with '-'" in p.stderr
    p = run_admin("user", "add", "--data", data, "x-")
    assert p.returncode == 0, p.stderr
