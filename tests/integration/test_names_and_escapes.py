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


HAZARD_TITLE = "pay \u202egnp.exe\u202c \u009b2J\u2066x\u2069 caf\u00e9 \x1b[1m"
RAW = ["\u202e", "\u202c", "\u009b", "\u2066", "\u2069", "\x1b"]
DASH = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "dashboard")


def test_audit_log_escapes_controls_and_bidi(tmp_path):
    data = str(tmp_path / "data")
    init_log(data)
    dev_exec(data, "root", "createEntry", {"title": HAZARD_TITLE, "kind": "fix"},
             "2026-11-27T10:00:00Z")
    dev_exec(data, "root", "issueToken", {"user": "root", "label": "\u2067ci\u2069"},
             "2026-11-27T10:01:00Z")
    for fmt in ("text", "csv"):
        p = run_audit("log", "--data", data, "--format", fmt)
        assert p.returncode == 0, p.stderr
        for ch in RAW + ["\u2067"]:
            assert ch not in p.stdout, (fmt, repr(ch))
        assert "pay <U+202E>gnp.exe<U+202C> <U+009B>2J<U+2066>x<U+2069> caf\u00e9  [1m" \
            in p.stdout, p.stdout
        assert "\"<U+2067>ci<U+2069>\"" in p.stdout
    # jsonl: the exact data (a JSON reader gets every character back), but
    # no raw control or override on the terminal
    p = run_audit("log", "--data", data, "--format", "jsonl")
    assert p.returncode == 0, p.stderr
    for ch in RAW:
        assert ch not in p.stdout, repr(ch)
    assert "\\u202e" in p.stdout and "\\u009b" in p.stdout
    titles = [json.loads(l)["data"].get("title") for l in p.stdout.splitlines()]
    assert HAZARD_TITLE in titles


def test_php_pages_and_live_client_show_them_escaped(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        r = await c.command("createEntry", {"title": HAZARD_TITLE, "kind": "fix"})
        assert r["ok"], r
        await c.close()

    run(go())
    import subprocess
    url = server.ws + "/ws/" + server.admin_token
    p = subprocess.run(["php", os.path.join(DASH, "live.php"), "--url", url, "--insecure"],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    for ch in RAW:
        assert ch not in p.stdout, repr(ch)
    assert "pay <U+202E>gnp.exe<U+202C> <U+009B>2J<U+2066>x<U+2069> caf\u00e9 <U+001B>[1m" \
        in p.stdout, p.stdout
    p = subprocess.run(["php", os.path.join(DASH, "live.php"), "--url", url, "--insecure",
                        "--json"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    for ch in RAW:
        assert ch not in p.stdout, repr(ch)
    assert json.loads(p.stdout)[0]["title"] == HAZARD_TITLE
    # the HTML escaping every page uses (lib.php h())
    p = subprocess.run(["php", "-r", "require $argv[1]; echo h($argv[2]);",
                        os.path.join(DASH, "lib.php"), "<b>" + HAZARD_TITLE],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert p.stdout == ("&lt;b&gt;pay &lt;U+202E&gt;gnp.exe&lt;U+202C&gt; &lt;U+009B&gt;2J"
                        "&lt;U+2066&gt;x&lt;U+2069&gt; caf\u00e9 &lt;U+001B&gt;[1m"), p.stdout
