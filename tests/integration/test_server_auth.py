"""Handshake auth: 401 without a token, 403 for unknown / revoked / oversized
tokens, 404 off the /ws/ path, the seed's /route/ws/<token> prefix, the
Authorization: Bearer header, and a revoked token closing live sessions."""
import ssl

import pytest
import websockets

from conftest import Client, run, tls_context


async def status_of(url, headers=None):
    try:
        ws = await websockets.connect(url, ssl=tls_context(), extra_headers=headers or {})
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    await ws.close()
    return 101


def test_no_token_is_401(server):
    assert run(status_of(server.ws + "/ws/")) == 401
    assert run(status_of(server.ws + "/ws")) == 401
    assert run(status_of(server.ws + "/ws", {"Authorization": "Basic eDp5"})) == 401


def test_unknown_token_is_403(server):
    assert run(status_of(server.url("clg_thisisnotatoken"))) == 403
    assert run(status_of(server.url("x"))) == 403
    # over TOKEN_MAX_INPUT: refused before hashing, never a websocket
    assert run(status_of(server.url("a" * 300))) == 403
    assert run(status_of(server.ws + "/ws", {"Authorization": "Bearer " + "b" * 400})) == 403


def test_not_a_ws_path_is_404(server):
    assert run(status_of(server.ws + "/socket/" + server.admin_token)) == 404
    assert run(status_of(server.ws + "/ws/" + server.admin_token + "/more")) == 404


def test_token_in_path_prefix_and_bearer(server):
    tok = server.admin_token
    assert run(status_of(server.url(tok))) == 101
    assert run(status_of(server.url(tok, prefix="/route"))) == 101
    assert run(status_of(server.url(tok, prefix="/a/b/c"))) == 101
    assert run(status_of(server.ws + "/ws", {"Authorization": "Bearer " + tok})) == 101
    assert run(status_of(server.ws + "/route/ws/", {"Authorization": "bearer " + tok})) == 101


def test_revoked_token_is_403_and_closes_its_sessions(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        r = await admin.command("createUser", {"name": "carol"})
        assert r["ok"], r
        carol_tok, carol_tid = r["token"], r["token_id"]
        carol = await Client.connect(server, carol_tok)
        other = await Client.connect(server, server.admin_token)
        who = await carol.query("whoami")
        assert who["token"] == carol_tid and who["result"]["user"]["name"] == "carol"
        r = await admin.command("revokeToken", {"token": carol_tid})
        assert r["ok"], r
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            for _ in range(20):
                await carol.recv_one(timeout=5)
        assert ei.value.code == 1008 and ei.value.reason == "token revoked"
        assert await status_of(server.url(carol_tok)) == 403
        # the admin's own sessions are untouched
        assert (await other.request({"op": "ping"}))["ok"]
        await admin.close()
        await other.close()
    run(go())


def test_http_refusals_are_real_statuses(server):
    """A refused handshake is an HTTP answer, not a dropped TCP connection."""
    import http.client
    conn = http.client.HTTPSConnection("127.0.0.1", server.port,
                                       context=tls_context(), timeout=5)
    conn.request("GET", "/ws/clg_nope", headers={
        "Upgrade": "websocket", "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"})
    assert conn.getresponse().status == 403
    conn.close()
    assert server.admin_token not in server.log()


def test_origin_allow_list(make_server):
    s = make_server("--allow-origin", "https://changelog.example.com,https://ops.example.com")
    tok = s.admin_token
    ok = run(status_of(s.url(tok), {"Origin": "https://changelog.example.com"}))
    assert ok == 101
    assert run(status_of(s.url(tok), {"Origin": "https://OPS.example.com"})) == 101
    assert run(status_of(s.url(tok), {"Origin": "https://evil.example.net"})) == 403
    assert run(status_of(s.url(tok), {"Origin": "https://changelog.example.com.evil"})) == 403
    assert run(status_of(s.url(tok), {"Origin": "x" * 1000})) == 403
    # clients that send no Origin (PHP, scripts) are not affected
    assert run(status_of(s.url(tok))) == 101


def test_any_origin_without_allow_list(server):
    assert run(status_of(server.url(server.admin_token), {"Origin": "https://anywhere.example"})) == 101
