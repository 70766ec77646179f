"""Bad-input sweep against a real changelogd: hostile JSON (10,000-deep
nesting, numbers past 64 bits, NUL bytes, huge strings, wrong types),
1 MB frames, semantic refusals (missing entries, foreign comment parents,
invalid transitions, other users' things), bad tokens in the path and in
the Authorization header, HTTP where a WebSocket is expected and the other
way round, 2,000 connections at once, a client flooding 1,000 commands a
second, a client that never reads among 100 that do, and a slowloris
handshake. After each case the server must still be up and serving another
client.

Already covered elsewhere, not repeated here: malformed/not-an-object
requests (test_server_protocol.py), the 64 KiB cap on one frame and on a
fragmented message, invalid UTF-8 (1007), binary frames (1003), the rate
limit with --rate 5, one slow consumer, --max-conns and an idle handshake
(test_server_limits.py), unknown / overlong / revoked tokens in the path
(test_server_auth.py).
"""
import asyncio
import base64
import http.client
import json
import os
import resource
import socket
import time

import pytest
import websockets
import websockets.exceptions

from conftest import Client, all_entries, new_member, raw_frames, raw_upgrade, run, tls_context


async def closed_with(c, timeout=10):
    """Read until the server closes; return (code, reason)."""
    try:
        while True:
            await c.recv_one(timeout=timeout)
    except websockets.exceptions.ConnectionClosed as e:
        return e.code, e.reason


async def still_serving(server):
    """Another client connects and is answered; /healthz says ok."""
    c = await Client.connect(server, server.admin_token)
    r = await c.request({"op": "ping"}, timeout=10)
    assert r["ok"] and r["pong"], r
    await c.close()
    st, _, body = server.get("/healthz")
    assert st == 200 and json.loads(body)["ok"]
    return r["at"]


# (raw request text, expected error code, expected reply id or None)
BIG = 18446744073709551616           # 2**64
HOSTILE = [
    ("[" * 10000 + "]" * 10000, "bad_request", None),
    ('{"id":1,"op":"ping","x":' + '{"a":' * 10000 + "1" + "}" * 10000 + "}",
     "bad_request", None),
    ('{"id":2,"op":"query","name":"getEntry","params":' + '{"entry":' * 5000 + "1"
     + "}" * 5000 + "}", "bad_request", None),
    ('{"id":%d,"op":"ping"}' % BIG, "bad_request", None),
    ('{"id":1e400,"op":"ping"}', "bad_request", None),
    ('{"id":3,"op":"query","name":"getEntry","params":{"entry":%d}}' % BIG,
     "bad_request", None),
    ('{"id":4,"op":"query","name":"getEntry","params":{"entry":1e400}}', "bad_request", None),
    ('{"id":5,"op":"subscribe","since":%d}' % BIG, "bad_request", None),
    ('{"id":6,"op":"subscribe","since":1e400}', "bad_request", None),
    ('{"id":7,"op":"subscribe","since":9223372036854775807,"epoch":"x"}', None, 7),
    ('{"id":8,"op":"query","name":"getChangelogEntries","params":{"limit":-9223372036854775808}}',
     "bad_request", 8),
    ('{"id":9,"op":"query","name":"getChangelogEntries","params":{"cursor":1.5}}',
     "bad_request", 9),
    ('{"id":10,"op":"query","name":"getEntry","params":{"entry":9223372036854775807}}',
     "not_found", 10),
    ('{"id":11,"op":"query","name":"getEntry","params":{"entry":0}}', "bad_request", 11),
    ('{"id":12,"op":"createEntry","params":{"title":12,"kind":"fix"}}', "bad_request", 12),
    ('{"id":13,"op":"createEntry","params":{"title":["t"],"kind":"fix"}}', "bad_request", 13),
    ('{"id":14,"op":"createEntry","params":{"title":"t","kind":true}}', "bad_request", 14),
    ('{"id":15,"op":"createEntry","params":{"title":"t","kind":"fix","body":null}}', None, 15),
    ('{"id":16,"op":"addComment","params":{"entry":"1","body":"x"}}', "bad_request", 16),
    ('{"id":17,"op":"setStatus","params":{"entry":1,"status":{}}}', "bad_request", 17),
    ('{"id":18,"op":"createEntry","params":{"title":"","kind":"fix"}}', "bad_request", 18),
    ('{"id":19,"op":"addComment","params":{"entry":1,"body":""}}', "bad_request", 19),
    ('{"id":20,"op":"createUser","params":{"name":""}}', "bad_request", 20),
    ('{"id":21,"op":"createEntry","params":{"title":"t","kind":"fix"},"cmd_id":""}',
     "bad_request", 21),
    ('{"id":"","op":"ping"}', None, ""),
    ('{"id":22,"op":"","params":{}}', "bad_request", 22),
    # NUL: as \u0000 escapes anywhere, and as a raw byte after the object
    ('{"id":23,"op":"createEntry","params":{"title":"a\\u0000b","kind":"fix"}}',
     "bad_request", None),
    ('{"id":"a\\u0000b","op":"ping"}', "bad_request", None),
    ('{"id":24,"op":"createEntry\\u0000","params":{"title":"t","kind":"fix"}}',
     "bad_request", None),
    ('{"id":25,"op":"createEntry","params":{"title":"t","kind":"fix"},"cmd_id":"\\u0000"}',
     "bad_request", None),
    ('{"id":26,"op":"ping"}\x00', "bad_request", None),
    ('{"id":27,"op":"createEntry","params":{"title":"\\ud800","kind":"fix"}}',
     "bad_request", None),
    # unknown ops and query names
    ('{"id":28,"op":"dropDatabase"}', "bad_request", 28),
    ('{"id":29,"op":"command","name":"__proto__","params":{}}', "bad_request", 29),
    ('{"id":30,"op":"query","name":"../../etc/passwd"}', "bad_request", 30),
    # long strings that still fit in one message
    ('{"id":31,"op":"createEntry","params":{"title":"%s","kind":"fix"}}' % ("t" * 60000),
     "too_large", 31),
    ('{"id":32,"op":"addComment","params":{"entry":1,"body":"%s"}}' % ("c" * 60000),
     "too_large", 32),
    ('{"id":33,"op":"createEntry","params":{"title":"t","kind":"fix"},"cmd_id":"%s"}'
     % ("k" * 60000), "bad_request", 33),
]


def test_hostile_json_sweep(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        r = await c.command("createEntry", {"title": "target", "kind": "fix"})
        assert r["ok"] and r["entry"] == 1, r
        at = r["seq"]
        for raw, code, rid in HOSTILE:
            await c.ws.send(raw)
            r = json.loads(await asyncio.wait_for(c.ws.recv(), 10))
            while r.get("op") in ("event", "events"):    # case 7 subscribed
                r = json.loads(await asyncio.wait_for(c.ws.recv(), 10))
            what = raw[:80]
            if code is None:
                assert r["ok"], (what, r)
            else:
                assert r["ok"] is False and r["error"]["code"] == code, (what, r)
            if rid is None:
                assert "id" not in r, (what, r)
            else:
                assert r["id"] == rid, (what, r)
        # the only valid write above (body null) is the only change
        p = await c.request({"op": "ping"})
        assert p["at"] == at + 1, p
        assert await still_serving(server) == at + 1
        await c.close()
    run(go())


def test_megabyte_strings_with_a_big_message_cap(make_server):
    """With --max-msg 4M a 1 MB string reaches the command checks: too_large
    (or bad_request for a cmd_id), never a crash, nothing written."""
    server = make_server("--max-msg", "4M")
    mb = "m" * (1 << 20)
    async def go():
        c = await Client.connect(server, server.admin_token)
        r = await c.command("createEntry", {"title": "t", "kind": "fix"})
        at = r["seq"]
        for op, params, cmd_id, code in [
                ("createEntry", {"title": mb, "kind": "fix"}, None, "too_large"),
                ("createEntry", {"title": "t", "body": mb, "kind": "fix"}, None, "too_large"),
                ("addComment", {"entry": 1, "body": mb}, None, "too_large"),
                ("createUser", {"name": mb}, None, "too_large"),
                ("createEntry", {"title": "t", "kind": "fix"}, mb, "bad_request"),
                ("createEntry", {"title": "t", "kind": mb}, None, "bad_request")]:
            r = await c.command(op, params, cmd_id=cmd_id)
            assert r["ok"] is False and r["error"]["code"] == code, (op, r)
        # 3 MB of NUL escapes: jansson refuses the text, so no id is read
        await c.ws.send(json.dumps({"id": 99, "op": "createEntry",
                                    "params": {"title": "\u0000" * 500000, "kind": "fix"}}))
        r = json.loads(await asyncio.wait_for(c.ws.recv(), 10))
        assert r["error"]["code"] == "bad_request" and "id" not in r, r
        r = await c.query("getChangelogEntries", {"q": mb})
        assert r["error"]["code"] in ("too_large", "bad_request"), r
        assert (await c.request({"op": "ping"}))["at"] == at
        await c.close()
        await still_serving(server)
    run(go())


def test_one_megabyte_frames(server):
    async def go():
        # one 1 MB frame: 1009 at once, nothing buffered
        c = await Client.connect(server, server.admin_token)
        await c.ws.send(json.dumps({"op": "ping", "pad": "p" * (1 << 20)}))
        code, reason = await closed_with(c)
        assert code == 1009 and "too big" in reason, (code, reason)
        # 1 MB in 64 fragments of 16 KiB: each fragment fits, the total does not
        d = await Client.connect(server, server.admin_token)
        await d.ws.send(("f" * 16384 for _ in range(64)))
        code, _ = await closed_with(d)
        assert code == 1009
        # a 1 MB frame that is also invalid UTF-8: closed (1009 or 1007 from
        # the first bytes; 1006 when the rest of our own write hits the
        # closed socket and the reset discards the close frame)
        e = await Client.connect(server, server.admin_token)
        from websockets.frames import Opcode
        try:
            await e.ws.write_frame(True, Opcode.TEXT, b"\xff" * (1 << 20))
        except websockets.exceptions.ConnectionClosed:
            pass
        code, _ = await closed_with(e)
        assert code in (1006, 1007, 1009), code
        await still_serving(server)
    run(go())


def test_semantic_refusals_write_nothing(server):
    """Commands naming missing things, foreign comment parents, invalid
    transitions and other users' entries/tokens: the documented code, and
    the log does not move."""
    async def go():
        admin = await Client.connect(server, server.admin_token)
        alice_id, alice_tok = await new_member(admin, "alice")
        bob_id, bob_tok = await new_member(admin, "bob")
        alice = await Client.connect(server, alice_tok)
        bob = await Client.connect(server, bob_tok)
        e1 = (await alice.command("createEntry", {"title": "one", "kind": "fix"}))["entry"]
        e2 = (await alice.command("createEntry", {"title": "two", "kind": "fix"}))["entry"]
        c1 = (await alice.command("addComment", {"entry": e1, "body": "on one"}))["comment"]
        bob_tid = (await bob.query("whoami"))["token"]
        at = (await admin.request({"op": "ping"}))["at"]
        cases = [
            (bob, "editEntry", {"entry": 999, "title": "x"}, "not_found"),
            (bob, "setStatus", {"entry": 999, "status": "resolved"}, "not_found"),
            (bob, "addComment", {"entry": 999, "body": "x"}, "not_found"),
            (bob, "addComment", {"entry": e1, "parent": 999, "body": "x"}, "not_found"),
            (bob, "addComment", {"entry": e2, "parent": c1, "body": "x"}, "bad_request"),
            (admin, "setRole", {"user": 999, "role": "admin"}, "not_found"),
            (admin, "setRole", {"user": "nobody", "role": "admin"}, "not_found"),
            (admin, "issueToken", {"user": 999}, "not_found"),
            (admin, "revokeToken", {"token": 999}, "not_found"),
            (alice, "setStatus", {"entry": e1, "status": "open"}, "invalid_transition"),
            (alice, "setStatus", {"entry": e1, "status": "reopened"}, "invalid_transition"),
            (alice, "setStatus", {"entry": e1, "status": "deleted"}, "bad_request"),
            (bob, "setStatus", {"entry": e1, "status": "resolved"}, "forbidden"),
            (bob, "editEntry", {"entry": e1, "body": "mine"}, "forbidden"),
            (bob, "editEntry", {"entry": e1, "title": "x", "expected_version": 1}, "forbidden"),
            (alice, "revokeToken", {"token": bob_tid}, "forbidden"),
            (alice, "setRole", {"user": alice_id, "role": "admin"}, "forbidden"),
            (alice, "issueToken", {"user": bob_id}, "forbidden"),
            (alice, "editEntry", {"entry": e1, "title": "x", "expected_version": 7}, "conflict"),
            (alice, "editEntry", {"entry": e1, "title": "one"}, "bad_request"),
            (admin, "createUser", {"name": "alice"}, "conflict"),
            (admin, "setRole", {"user": 1, "role": "member"}, "conflict"),
        ]
        for who, op, params, code in cases:
            r = await who.command(op, params, cmd_id="refused-%s-%d" % (op, len(str(params))))
            assert r["ok"] is False and r["error"]["code"] == code, (op, params, r)
            assert r["error"]["message"]
        for q, params in (("getEntry", {"entry": 999}), ("getEntryHistory", {"entry": 999})):
            r = await bob.query(q, params)
            assert r["error"]["code"] == "not_found", r
        assert (await admin.request({"op": "ping"}))["at"] == at
        # a refused cmd_id is not remembered: the same id works once valid
        r = await alice.command("setStatus", {"entry": e1, "status": "resolved"},
                                cmd_id="refused-setStatus-%d"
                                % len(str({"entry": e1, "status": "open"})))
        assert r["ok"] and r["seq"] == at + 1, r
        for c in (admin, alice, bob):
            await c.close()
        await still_serving(server)
    run(go())


async def status_of(url, headers=None):
    """The HTTP status of a handshake; "dropped" when the server closed
    the connection without an HTTP answer."""
    try:
        ws = await websockets.connect(url, ssl=tls_context(), extra_headers=headers or {},
                                      open_timeout=10)
    except websockets.exceptions.InvalidStatusCode as e:
        return e.status_code
    except websockets.exceptions.InvalidMessage:
        return "dropped"
    await ws.close()
    return 101


def test_bad_tokens_in_header_and_path(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, carol_tok = await new_member(admin, "carol")
        tid = (await (await Client.connect(server, carol_tok)).query("whoami"))["token"]
        assert (await admin.command("revokeToken", {"token": tid}))["ok"]
        ws = server.ws
        good = server.admin_token
        cases = [
            # Authorization header on /ws
            ({"Authorization": "Bearer clg_" + "A" * 43}, "/ws", 403),
            ({"Authorization": "Bearer " + carol_tok}, "/ws", 403),          # revoked
            ({"Authorization": "Bearer "}, "/ws", 401),                       # empty
            ({"Authorization": "Bearer"}, "/ws", 401),
            ({"Authorization": ""}, "/ws", 401),
            ({"Authorization": "Bearer " + good[:-1]}, "/ws", 403),          # truncated
            ({"Authorization": "Bearer " + good + "x"}, "/ws", 403),
            ({"Authorization": "Bearer " + "c" * 3000}, "/ws", 403),          # overlong
            # headers up to the 16 KiB header space (big browser cookies) are
            # read and judged; beyond it lws drops the request unanswered
            ({"Authorization": "Bearer " + "c" * 8000}, "/ws", 403),
            ({"X-Pad": "p" * 8000}, "/ws/" + good, 101),
            ({"X-Pad": "p" * 20000}, "/ws/" + good, "dropped"),
            ({"Authorization": "Token " + good}, "/ws", 401),                 # wrong scheme
            # the path token wins over the header: a bad path is refused
            ({"Authorization": "Bearer " + good}, "/ws/clg_bad", 403),
            # path forms
            ({}, "/ws/" + good.lower(), 403),
            ({}, "/ws/" + good + "%00", "dropped"),   # lws refuses %00 in a URI
            ({}, "/ws/%20", 403),
            ({}, "/ws/" + "d" * 257, 403),
            ({}, "/ws/" + "d" * 900, 403),
            ({}, "/ws/" + "e" * 1100, 414),           # over the server's 1 KiB URI buffer
        ]
        for headers, path, want in cases:
            got = await status_of(ws + path, headers)
            assert got == want, (headers and list(headers.values())[0][:40], path[:40], got)
        await admin.close()
        await still_serving(server)
    run(go())


def _https(server, method, path, headers=None):
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=tls_context(),
                                       timeout=10)
    conn.request(method, path, headers=headers or {})
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, body


UPGRADE = {"Upgrade": "websocket", "Connection": "Upgrade",
           "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"}


def test_http_to_ws_paths_and_upgrades_elsewhere(server):
    tok = server.admin_token
    # plain GETs (no upgrade) on WebSocket paths: a plain 404, no session
    for path in ("/ws/" + tok, "/route/ws/" + tok, "/ws/", "/ws", "/ws/clg_bad"):
        st, body = _https(server, "GET", path)
        assert st == 404, (path[:12], st)
        assert tok.encode() not in body
    st, _ = _https(server, "GET", "/ws", {"Authorization": "Bearer " + tok})
    assert st == 404
    st, _ = _https(server, "POST", "/ws/" + tok)
    assert 400 <= st < 500, st
    # WebSocket upgrades on HTTP endpoints: refused with 404, never a 101
    for path in ("/healthz", "/metrics", "/", "/app.js"):
        for extra in ({}, {"Authorization": "Bearer " + tok}):
            st, _ = _https(server, "GET", path, dict(UPGRADE, **extra))
            assert st == 404, (path, st)
    assert run(status_of(server.ws + "/healthz")) == 404
    # upgrades without Sec-WebSocket-Key or Connection: lws drops them
    # unanswered; no session is made. (lws accepts any or no
    # Sec-WebSocket-Version and a key that is not 16 bytes of base64.)
    for drop in ("Sec-WebSocket-Key", "Connection"):
        h = {k: v for k, v in UPGRADE.items() if k != drop}
        with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
            _https(server, "GET", "/ws/" + tok, h)
    _, _, body = server.get("/healthz")
    assert json.loads(body)["connections"] == 0
    run(still_serving(server))


async def _raw_open(server, token, ctx):
    """A minimal WebSocket client on asyncio streams (much lighter than the
    websockets library, so one Python process can open thousands)."""
    r, w = await asyncio.open_connection("127.0.0.1", server.port, ssl=ctx,
                                         server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    w.write(("GET /ws/%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
             "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n" % (token, key)).encode())
    head = await r.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 101"), head[:40]
    return r, w


async def _raw_ping(conn, rid):
    r, w = conn
    w.write(_masked_text('{"id":%d,"op":"ping"}' % rid))
    while True:
        h = await r.readexactly(2)
        n = h[1] & 0x7f
        if n == 126:
            n = int.from_bytes(await r.readexactly(2), "big")
        elif n == 127:
            n = int.from_bytes(await r.readexactly(8), "big")
        body = await r.readexactly(n)
        if h[0] & 0x0f == 1:
            return json.loads(body)


def test_two_thousand_connections_at_once(make_server):
    """2,000 TLS WebSocket handshakes started at the same moment. The
    handshake timeout is raised to 60 s for this test only: on the 2-core
    test box the single Python client process doing 2,000 TLS handshakes is
    the bottleneck (the server spends ~2 ms of CPU per handshake, ~4 s in
    all), and with the default 10 s the last ones can time out."""
    n = 2000
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 500
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("RLIMIT_NOFILE hard limit %d < %d" % (hard, want))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    server = make_server("--handshake-timeout", "60", "--user-burst", "100000")
    # changelogd raises its own soft limit to fit --max-conns (up to the hard one)
    with open("/proc/%d/limits" % server.proc.pid) as f:
        line = [l for l in f if l.startswith("Max open files")][0]
    assert int(line.split()[3]) >= n + 100, "changelogd's fd limit: " + line

    async def go():
        ctx = tls_context()     # one: making a context loads the CA store
        t0 = time.monotonic()
        conns = await asyncio.gather(*[asyncio.wait_for(_raw_open(server, server.admin_token,
                                                                  ctx), 90)
                                       for _ in range(n)], return_exceptions=True)
        took = time.monotonic() - t0
        opened = [c for c in conns if isinstance(c, tuple)]
        failed = [repr(c)[:100] for c in conns if not isinstance(c, tuple)]
        assert not failed, (len(failed), failed[:5])
        _, _, h = server.get("/healthz")
        assert json.loads(h)["connections"] == n
        await still_serving(server)
        replies = await asyncio.gather(*[asyncio.wait_for(_raw_ping(c, i), 60)
                                         for i, c in enumerate(opened)])
        assert [r["id"] for r in replies] == list(range(n))
        assert all(r["ok"] for r in replies)
        for _, w in opened:
            w.close()
        for _ in range(100):
            _, _, h = server.get("/healthz")
            if json.loads(h)["connections"] == 0:
                break
            await asyncio.sleep(0.1)
        assert json.loads(h)["connections"] == 0
        await still_serving(server)
        print("2000 connections: opened in %.1fs" % took)
    run(go(), timeout=180)


def test_flood_of_commands_is_rate_limited_others_unaffected(server):
    """1,000 commands a second for 2 s on one connection (default rate 100/s,
    burst 200): the excess gets rate_limited, the connection stays open, and
    another client's requests all pass promptly."""
    async def go():
        flood = await Client.connect(server, server.admin_token)
        other = await Client.connect(server, server.admin_token)
        ids = []
        lat = []

        span = []

        async def flooder():
            t0 = time.monotonic()
            for i in range(2000):
                delay = t0 + i / 1000.0 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                ids.append(await flood.send({"op": "createEntry", "cmd_id": "flood-%d" % i,
                                             "params": {"title": "f%d" % i, "kind": "fix"}}))
            span.append(time.monotonic() - t0)

        async def reader():
            t0 = time.monotonic()
            while len(ids) < 2000 or any(i not in flood.replies for i in ids):
                await flood.recv_one(timeout=20)
            span.append(time.monotonic() - t0)

        async def polite():
            for i in range(20):
                t = time.monotonic()
                r = await other.command("addComment" if i else "createEntry",
                                        {"entry": 1, "body": "p%d" % i} if i else
                                        {"title": "polite", "kind": "fix"})
                lat.append(time.monotonic() - t)
                assert r["ok"], r
                await asyncio.sleep(0.1)

        await asyncio.gather(flooder(), reader(), polite())
        replies = [flood.replies[i] for i in ids]
        ok = sum(1 for r in replies if r["ok"])
        limited = sum(1 for r in replies if not r["ok"]
                      and r["error"]["code"] == "rate_limited")
        assert ok + limited == 2000
        # burst 200 + 100/s over the ~2 s of sending; the bucket refills
        # while the server reads, so a slow (asan, loaded) server that reads
        # for longer accepts more: bound by the time until the last reply
        assert 200 <= ok <= 200 + 100 * (max(span) + 0.5), (ok, span)
        if max(span) < 3.0:
            assert limited >= 1000, limited
        assert max(lat) < 2.0, lat
        assert (await flood.request({"op": "ping"}))["ok"] in (True, False)
        await asyncio.sleep(1.0)
        assert (await flood.request({"op": "ping"}))["ok"]
        # exactly the accepted commands were written
        titles = [e["title"] for e in await all_entries(other)]
        assert len([t for t in titles if t != "polite"]) == ok
        await flood.close()
        await other.close()
        await still_serving(server)
    run(go(), timeout=120)


def _masked_text(payload):
    from websockets.frames import Frame, Opcode
    return Frame(Opcode.TEXT, payload.encode()).serialize(mask=True)


def _read_until_close(sock):
    """Read a raw (server-to-client, unmasked) frame stream until the close
    frame; return (push seqs seen, (close code, reason))."""
    sock.settimeout(15)
    seqs = []
    for op, body in raw_frames(sock):
        if op == 8:
            return seqs, (int.from_bytes(body[:2], "big"), body[2:].decode())
        if op == 1:
            m = json.loads(body)
            if m.get("op") == "event":
                seqs.append(m["seq"])
            elif m.get("op") == "events":
                seqs.extend(e["seq"] for e in m["events"])


def test_never_reading_client_among_a_hundred(make_server):
    server = make_server("--max-queue", "64K", "--sndbuf", "8K")
    async def go():
        ctx = tls_context()
        gate = asyncio.Semaphore(10)

        async def connect():
            async with gate:
                return await Client.connect(server, server.admin_token, ssl=ctx,
                                            open_timeout=30)
        readers = await asyncio.gather(*[connect() for _ in range(100)])
        epoch = (await readers[0].query("whoami"))["epoch"]
        await asyncio.gather(*[c.request({"op": "subscribe", "since": 2, "epoch": epoch})
                               for c in readers])
        # subscribes, then never reads a byte (tiny receive buffer)
        hog = raw_upgrade(server, server.admin_token, rcvbuf=4096)
        hog.sendall(_masked_text('{"id":1,"op":"subscribe","since":2,"epoch":"%s"}' % epoch))
        writer = await Client.connect(server, server.admin_token)
        acks = []
        for i in range(30):
            r = await writer.command("createEntry", {"title": "e%d" % i, "body": "w" * 4000,
                                                     "kind": "change"})
            assert r["ok"], r
            acks.append(r["seq"])
        await asyncio.gather(*[c.wait_pushes(len(acks), timeout=60) for c in readers])
        for c in readers:
            assert [p["seq"] for p in c.pushes] == acks
        # now the hog reads: a gapless prefix of the pushes, then the close
        seqs, close = await asyncio.to_thread(_read_until_close, hog)
        hog.close()
        assert close[0] == 1008 and close[1].startswith("slow consumer: resume from seq "), close
        assert seqs == list(range(3, 3 + len(seqs))) and len(seqs) < len(acks), seqs
        assert int(close[1].rsplit(" ", 1)[1]) == (seqs[-1] if seqs else 2)
        _, _, m = server.get("/metrics")
        assert b'changelogd_closes_total{reason="slow_consumer"} 1' in m
        # the 100 readers were served all along and still are
        rs = await asyncio.gather(*[c.request({"op": "ping"}) for c in readers])
        assert all(r["ok"] for r in rs)
        for c in readers + [writer]:
            await c.close()
        await still_serving(server)
    run(go(), timeout=120)


def test_slowloris_handshake(make_server):
    """The HTTP upgrade request sent one byte a second: dropped after
    --handshake-timeout, however steadily bytes trickle in; other clients
    are served meanwhile."""
    server = make_server("--handshake-timeout", "3")
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s = tls_context().wrap_socket(sock, server_hostname="localhost")
    req = ("GET /ws/%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
           "Sec-WebSocket-Version: 13\r\n\r\n" % server.admin_token).encode()
    t0 = time.monotonic()
    dropped = None
    served = 0
    for i in range(len(req)):
        try:
            s.sendall(req[i:i + 1])
        except OSError:
            dropped = time.monotonic() - t0
            break
        s.settimeout(1.0)
        try:
            if s.recv(1) == b"":
                dropped = time.monotonic() - t0
                break
        except socket.timeout:
            pass
        except OSError:
            dropped = time.monotonic() - t0
            break
        if i % 2 == 0:
            run(still_serving(server))
            served += 1
        if time.monotonic() - t0 > 12:
            break
    s.close()
    assert dropped is not None, "a slowloris handshake was still open after 12 s"
    assert 2.0 <= dropped <= 3 + 2.5, dropped     # the timeout, not at once
    assert served >= 1
    run(still_serving(server))
