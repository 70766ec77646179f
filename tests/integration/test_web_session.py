"""test_web_session.py - stay signed in: POST /session, the clg_session
cookie, DELETE /session, expiry (the clock moved with libfaketime), the end
of a session when its token is revoked, the restart that keeps it, and the
cross-site guards: the /ws/ handshake takes the cookie only from our own
origin or one in --allow-origin, the HTTP API only with X-Requested-With.
"""
import asyncio
import json
import os
import re
import shutil
import time

import pytest
import websockets

from conftest import (Client, Server, free_port, new_member, run, sanitizer_reports,
                      tls_context)
from http_util import call
from tools_util import run_admin

CSRF = {"X-Requested-With": "test"}
LIBFT = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def sign_in(server, token, headers=CSRF):
    st, h, r = call(server, "POST", "/session", body={"token": token}, headers=headers)
    cookie = None
    if "set-cookie" in h:
        m = re.match(r"clg_session=([^;]*)", h["set-cookie"])
        cookie = m.group(1) if m else None
    return st, h, r, cookie


def as_cookie(server, cookie, path="/api/v1/queries/whoami", headers=CSRF, method="GET",
              body=None):
    h = dict(headers or {})
    h["Cookie"] = "other=1; clg_session=%s" % cookie
    return call(server, method, path, body=body, headers=h)


async def ws_with_cookie(server, cookie, origin):
    headers = {"Cookie": "clg_session=%s" % cookie}
    kw = {"ssl": tls_context()} if not server.plain else {}
    ws = await websockets.connect(server.ws + "/ws/", extra_headers=headers, origin=origin,
                                  **kw)
    return Client(ws)


def handshake_status(server, cookie, origin):
    async def go():
        try:
            c = await ws_with_cookie(server, cookie, origin)
        except websockets.exceptions.InvalidStatusCode as e:
            return e.status_code
        r = await c.query("whoami")
        await c.close()
        return r["result"]["user"]["name"]
    return run(go())


def test_sign_in_sets_a_strict_cookie_and_only_its_hash_is_kept(server):
    st, h, r, cookie = sign_in(server, server.admin_token)
    assert st == 200 and r["ok"] and r["user"] == 1, r
    attrs = [a.strip() for a in h["set-cookie"].split(";")]
    assert attrs[0].startswith("clg_session=cls_") and len(cookie) == 47
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/",
            "Max-Age=%d" % (30 * 86400)} <= set(attrs), attrs
    st, _, r = as_cookie(server, cookie)
    assert st == 200 and r["result"]["user"]["name"] == "admin", r
    # the journal holds hashes, never the cookie value
    with open(os.path.join(server.data, "sessions")) as f:
        text = f.read()
    assert cookie not in text and cookie[4:] not in text
    assert os.stat(os.path.join(server.data, "sessions")).st_mode & 0o077 == 0
    # two sign-ins, two sessions
    assert sign_in(server, server.admin_token)[3] != cookie


def test_bad_sign_ins(server):
    t = server.admin_token
    st, _, r, c = sign_in(server, t, headers={})
    assert st == 403 and r["error"]["code"] == "forbidden" and c is None, r
    st, _, r, c = sign_in(server, "clg_" + "A" * 43)
    assert st == 401 and r["error"]["code"] == "unauthorized" and c is None, r
    for body in [{"token": 5}, {"token": t, "x": 1}, {}]:
        st, _, r = call(server, "POST", "/session", body=body, headers=CSRF)
        assert st == 400 and r["error"]["code"] == "bad_request", (body, r)
    st, _, r = call(server, "POST", "/session", raw=b"{", headers=CSRF)
    assert st == 400, r
    st, _, r = call(server, "POST", "/session", raw=b'{"token":"%s"}' % (b"x" * 2000),
                    headers=CSRF)
    assert st == 413 and r["error"]["code"] == "too_large", r
    st, h, _ = call(server, "GET", "/session")
    assert st == 405 and h["allow"] == "POST, DELETE"


def test_cookie_on_the_api_needs_the_csrf_header(server):
    _, _, _, cookie = sign_in(server, server.admin_token)
    st, _, r = as_cookie(server, cookie, headers={})
    assert st == 403 and r["error"]["code"] == "forbidden", r
    assert "X-Requested-With" in r["error"]["message"]
    # a cross-site form's POST: no custom header, so nothing is applied
    st, _, r = as_cookie(server, cookie, "/api/v1/commands/createEntry", headers={},
                         method="POST", body={"kind": "fix", "title": "csrf"})
    assert st == 403, r
    st, _, r = as_cookie(server, cookie, "/api/v1/commands/createEntry", method="POST",
                         body={"kind": "fix", "title": "mine"})
    assert st == 200 and r["ok"], r
    st, _, r = call(server, "GET", "/api/v1/stats", server.admin_token)
    assert r["result"]["entries"] == 1
    st, _, r = as_cookie(server, "cls_" + "B" * 43)
    assert st == 401 and r["error"]["code"] == "unauthorized", r


def test_sign_out(server):
    _, _, _, cookie = sign_in(server, server.admin_token)
    st, h, r = as_cookie(server, cookie, "/session", headers={}, method="DELETE")
    assert st == 403, r                       # a foreign page cannot sign you out either
    st, h, r = as_cookie(server, cookie, "/session", method="DELETE")
    assert st == 200 and r == {"ok": True, "ended": True}, r
    assert h["set-cookie"].startswith("clg_session=;") and "Max-Age=0" in h["set-cookie"]
    assert as_cookie(server, cookie)[0] == 401
    assert handshake_status(server, cookie, "https://127.0.0.1:%d" % server.port) == 401
    st, _, r = as_cookie(server, cookie, "/session", method="DELETE")
    assert r == {"ok": True, "ended": False}


def test_websocket_takes_the_cookie_only_from_our_origin(server):
    _, _, _, cookie = sign_in(server, server.admin_token)
    own = "https://127.0.0.1:%d" % server.port
    assert handshake_status(server, cookie, own) == "admin"
    # cross-site websocket hijacking: a foreign page's socket carries the cookie
    assert handshake_status(server, cookie, "https://evil.example.net") == 403
    assert handshake_status(server, cookie, "http://127.0.0.1:%d" % server.port) == 403
    assert handshake_status(server, cookie, own + ".evil.net") == 403
    assert handshake_status(server, cookie, None) == 403      # no Origin: use a token
    assert handshake_status(server, "cls_" + "C" * 43, own) == 401
    assert "foreign origin" in server.log()
    # a token still works from anywhere
    async def go():
        c = await Client.connect(server, server.admin_token, origin="https://evil.example.net")
        r = await c.query("whoami")
        await c.close()
        return r
    assert run(go())["ok"]


def test_websocket_cookie_from_an_allowed_origin(tmpdir_path):
    s = Server(os.path.join(tmpdir_path, "data"), keep_port=True)
    s.port = free_port()
    own = "https://127.0.0.1:%d" % s.port
    s.args = ["--allow-origin", "https://app.example.com," + own]
    s.start()
    try:
        _, _, _, cookie = sign_in(s, s.admin_token)
        assert handshake_status(s, cookie, own) == "admin"
        assert handshake_status(s, cookie, "https://app.example.com") == "admin"
        assert handshake_status(s, cookie, "https://evil.example.net") == 403
    finally:
        assert s.stop() == 0
        assert not sanitizer_reports(s.log())


def test_websocket_cookie_behind_a_proxy(make_server):
    s = make_server(plain=True)
    _, _, _, cookie = sign_in(s, s.admin_token)
    assert handshake_status(s, cookie, "https://127.0.0.1:%d" % s.port) == "admin"
    assert handshake_status(s, cookie, "http://127.0.0.1:%d" % s.port) == "admin"
    assert handshake_status(s, cookie, "https://evil.example.net") == 403


def test_revoking_the_token_ends_its_sessions(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        uid, tok = await new_member(admin, "dora")
        m = await Client.connect(server, tok)
        tid = (await m.query("whoami"))["token"]
        await m.close()
        _, _, _, cookie = sign_in(server, tok)
        assert as_cookie(server, cookie)[2]["result"]["user"]["name"] == "dora"
        c = await ws_with_cookie(server, cookie, "https://127.0.0.1:%d" % server.port)
        assert (await c.query("whoami"))["result"]["user"]["name"] == "dora"
        r = await admin.command("revokeToken", {"token": tid})
        assert r["ok"], r
        await asyncio.wait_for(c.ws.wait_closed(), 10)
        await admin.close()
        return cookie, c.ws.close_code, c.ws.close_reason
    cookie, code, reason = run(go())
    assert code == 1008 and "revoked" in reason
    st, _, r = as_cookie(server, cookie)
    assert st == 401 and "sign in again" in r["error"]["message"], r
    # and it stays ended after a restart (the journal says so)
    server.stop()
    server.start()
    assert as_cookie(server, cookie)[0] == 401


def test_a_restart_keeps_sessions_and_another_log_voids_them(make_server, tmpdir_path):
    s = make_server()
    _, _, _, cookie = sign_in(s, s.admin_token)
    _, _, _, ended = sign_in(s, s.admin_token)
    assert as_cookie(s, ended, "/session", method="DELETE")[2]["ended"]
    s.stop()
    s.start()
    assert as_cookie(s, cookie)[0] == 200
    assert as_cookie(s, ended)[0] == 401
    # a torn last line (a crash mid-append) is ignored
    with open(os.path.join(s.data, "sessions"), "a") as f:
        f.write("+ 00ff")
    s.stop()
    s.start()
    assert as_cookie(s, cookie)[0] == 200
    # the file of another log (another epoch: a new log, or a restored
    # backup): its token 1 is another admin's, which the old browser must
    # not become
    s.stop()
    other = make_server(name="other")
    other.stop()
    shutil.copy(os.path.join(s.data, "sessions"), os.path.join(other.data, "sessions"))
    other.start()
    assert as_cookie(other, cookie)[0] == 401
    assert as_cookie(s.start(), cookie)[0] == 200


def test_the_journal_is_made_with_the_first_session(server):
    path = os.path.join(server.data, "sessions")
    assert not os.path.exists(path)
    _, _, _, cookie = sign_in(server, server.admin_token)
    assert os.path.exists(path)
    # a directory whose log is gone but whose sessions file is left is refused
    server.stop()
    for name in ("data.mdb", "lock.mdb", "admin-token"):
        os.unlink(os.path.join(server.data, name))
    shutil.rmtree(os.path.join(server.data, "tls"))
    with pytest.raises(RuntimeError) as e:
        server.start()
    assert "has no data.mdb, but sessions" in str(e.value)


def test_invite_links_from_changelog_admin(server):
    base = "https://127.0.0.1:%d" % server.port
    a = run_admin("user", "add", "gus", "--url", base, "--data", server.data)
    assert a.returncode == 0, a.stderr
    m = re.fullmatch(re.escape(base) + r"/#token=(clg_[A-Za-z0-9_-]{43})\n", a.stdout)
    assert m, a.stdout
    # the server follows appends of other processes on its tail timer
    deadline = time.monotonic() + 10
    while True:
        st, _, r, cookie = sign_in(server, m.group(1))
        if st == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert st == 200 and as_cookie(server, cookie)[2]["result"]["user"]["name"] == "gus"
    a = run_admin("token", "issue", "gus", "--url", base + "/sub/", "--data", server.data)
    assert a.returncode == 0 and a.stdout.startswith(base + "/sub/#token=clg_"), a.stdout
    for bad in ["ftp://x", "https://x/#frag", "127.0.0.1:8443", "https://a b"]:
        a = run_admin("user", "add", "hal", "--url", bad, "--data", server.data)
        assert a.returncode == 2 and "--url wants" in a.stderr and not a.stdout, (bad, a)
    users = run_admin("user", "list", "--format", "json", "--data", server.data)
    assert "hal" not in users.stdout


def test_per_user_cap_replaces_the_oldest(server):
    cookies = [sign_in(server, server.admin_token)[3] for _ in range(33)]
    assert as_cookie(server, cookies[0])[0] == 401
    assert all(as_cookie(server, c)[0] == 200 for c in cookies[1:])


@pytest.fixture
def clock(tmp_path, monkeypatch):
    """A server whose wall clock the test moves (libfaketime reads the file
    at every call); the monotonic clock keeps the real pace."""
    if not os.path.exists(LIBFT):
        pytest.fail("libfaketime is missing: run tools/scripts/deps.sh test")
    f = tmp_path / "faketime"
    f.write_text("+0d\n")
    monkeypatch.setenv("LD_PRELOAD", LIBFT)
    monkeypatch.setenv("FAKETIME_TIMESTAMP_FILE", str(f))
    monkeypatch.setenv("FAKETIME_NO_CACHE", "1")
    monkeypatch.setenv("FAKETIME_DONT_FAKE_MONOTONIC", "1")
    monkeypatch.setenv("ASAN_OPTIONS", os.environ.get("ASAN_OPTIONS", "") +
                       ":verify_asan_link_order=0")
    return f


def test_sessions_expire(clock, tmpdir_path, monkeypatch):
    s = Server(os.path.join(tmpdir_path, "data"), ["--session-days", "7"])
    s.start()
    for k in ("LD_PRELOAD", "FAKETIME_TIMESTAMP_FILE"):
        monkeypatch.delenv(k)            # only the server runs on the fake clock
    try:
        st, h, r, cookie = sign_in(s, s.admin_token)
        assert "Max-Age=%d" % (7 * 86400) in h["set-cookie"]
        clock.write_text("+6d\n")
        assert as_cookie(s, cookie)[0] == 200
        _, _, _, later = sign_in(s, s.admin_token)    # made on day 6: lives to day 13
        clock.write_text("+8d\n")
        st, _, r = as_cookie(s, cookie)
        assert st == 401 and r["error"]["code"] == "unauthorized", r
        assert as_cookie(s, later)[0] == 200
        assert handshake_status(s, cookie, "https://127.0.0.1:%d" % s.port) == 401
        clock.write_text("+14d\n")
        assert as_cookie(s, later)[0] == 401
    finally:
        assert s.stop() == 0
        assert not sanitizer_reports(s.log())


def test_signed_in_once_per_browser_in_chromium(tmpdir_path):
    import subprocess
    from conftest import NODE_DIR, REPO
    if not os.path.exists("/usr/bin/chromium"):
        pytest.fail("chromium is not installed: run tools/scripts/deps.sh test")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "playwright-core")):
        pytest.fail("tests/node/node_modules/playwright-core missing: run tools/scripts/deps.sh test")
    s = Server(os.path.join(tmpdir_path, "data"), web=os.path.join(REPO, "web")).start()
    base = "https://127.0.0.1:%d" % s.port
    try:
        a = run_admin("user", "add", "erin", "--url", base + "/", "--data", s.data)
        assert a.returncode == 0, a.stderr
        link = a.stdout.strip()
        p = subprocess.run(["node", "browser_session.js", base, s.admin_token, link],
                           cwd=NODE_DIR, stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=180)
        print(p.stdout, p.stderr)
        assert p.returncode == 0, p.stdout + p.stderr
        assert "browser session: all checks passed" in p.stdout
    finally:
        assert s.stop() == 0
        assert not sanitizer_reports(s.log())
