"""Every limit with its close code or error: message size (1009, also when
fragmented), invalid UTF-8 (1007), binary frames (1003), the per-connection
rate (rate_limited, stays open), slow consumers (1008 with the seq to resume
from, per session and global) while others keep being served, and
--max-conns (HTTP 503 at the handshake)."""
import asyncio
import json
import time

import pytest
import websockets
from websockets.frames import Frame, Opcode

from conftest import Client, raw_upgrade, run, tls_context


async def closed_with(c, timeout=10):
    """Read until the server closes; return (code, reason)."""
    try:
        while True:
            await c.recv_one(timeout=timeout)
    except websockets.exceptions.ConnectionClosed as e:
        return e.code, e.reason


def read_frames(sock, n):
    """n text messages from a raw_upgrade socket (unmasked frames; a big
    reply comes in fragments: a text frame without FIN, continuations)."""
    def exact(k):
        b = b""
        while len(b) < k:
            chunk = sock.recv(k - len(b))
            assert chunk, "closed"
            b += chunk
        return b
    out, msg = [], None
    while len(out) < n:
        h = exact(2)
        ln = h[1] & 0x7f
        if ln == 126:
            ln = int.from_bytes(exact(2), "big")
        elif ln == 127:
            ln = int.from_bytes(exact(8), "big")
        payload = exact(ln)
        if h[0] & 0x0f == 1:
            msg = payload
        elif h[0] & 0x0f == 0 and msg is not None:
            msg += payload
        if msg is not None and h[0] & 0x80:
            out.append(msg)
            msg = None
    return out


def test_message_size_limit_1009(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        # just under the 64 KiB default: a legal command with a 32 KiB body
        r = await c.command("createEntry", {"title": "big", "body": "x" * 32768,
                                            "kind": "fix"})
        assert r["ok"], r
        await c.ws.send(json.dumps({"op": "ping", "pad": "y" * 70000}))
        code, reason = await closed_with(c)
        assert code == 1009 and "too big" in reason
        # fragmented: each frame small, the message too big
        d = await Client.connect(server, server.admin_token)
        await d.ws.send(("z" * 20000 for _ in range(5)))
        code, _ = await closed_with(d)
        assert code == 1009
        # a fragmented message under the cap is reassembled
        e = await Client.connect(server, server.admin_token)
        await e.ws.send(iter(['{"id":5,', '"op":"pi', 'ng"}']))
        r = await e.wait_reply(5)
        assert r["ok"] and r["pong"]
        await e.close()
    run(go())


def test_invalid_utf8_1007_and_binary_1003(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        await c.ws.write_frame(True, Opcode.TEXT, b'{"op":"ping","x":"\xff\xfe"}')
        code, _ = await closed_with(c)
        assert code == 1007
        d = await Client.connect(server, server.admin_token)
        await d.ws.send(b'{"op":"ping"}')          # bytes -> a binary frame
        code, reason = await closed_with(d)
        assert code == 1003 and reason == "text frames only"
    run(go())


def test_rate_limit_stays_open(make_server):
    server = make_server("--rate", "5", "--burst", "10")
    async def go():
        c = await Client.connect(server, server.admin_token)
        ids = [await c.send({"op": "ping"}) for _ in range(40)]
        replies = [await c.wait_reply(i) for i in ids]
        ok = [r for r in replies if r["ok"]]
        limited = [r for r in replies if not r["ok"]]
        assert 10 <= len(ok) <= 13, len(ok)
        assert limited and all(r["error"]["code"] == "rate_limited" for r in limited)
        await asyncio.sleep(1.0)
        r = await c.request({"op": "ping"})
        assert r["ok"]
        await c.close()
        _, _, body = server.get("/metrics")
        assert b"changelogd_rate_limited_total 2" in body or \
            b"changelogd_rate_limited_total 3" in body
    run(go())


def test_slow_consumer_closed_others_served(make_server):
    server = make_server("--max-queue", "256K", "--sndbuf", "16K")
    async def go():
        # a subscriber that stops reading: tiny client-side queue, no recv()
        slow = await Client.connect(server, server.admin_token, max_queue=1,
                                    read_limit=4096)
        epoch = (await slow.query("whoami"))["epoch"]
        sub = await slow.request({"op": "subscribe", "since": 2, "epoch": epoch})
        assert sub["recovered"]
        good = await Client.connect(server, server.admin_token)
        await good.request({"op": "subscribe", "since": 2, "epoch": epoch})
        writer = await Client.connect(server, server.admin_token)
        body = "w" * 16000
        acks = []
        for i in range(60):
            r = await writer.command("createEntry", {"title": "load %d" % i, "body": body,
                                                     "kind": "change"})
            assert r["ok"], r
            acks.append(r["seq"])
            # the reading subscriber keeps up the whole time
            await good.wait_pushes(i + 1)
        assert [p["seq"] for p in good.pushes] == acks
        # now the slow one reads: what it got is gapless, then the close
        code, reason = await closed_with(slow, timeout=15)
        assert code == 1008, (code, reason)
        assert reason.startswith("slow consumer: resume from seq "), reason
        resume = int(reason.rsplit(" ", 1)[1])
        seqs = [p["seq"] for p in slow.pushes]
        assert seqs == list(range(3, 3 + len(seqs)))
        assert resume == (seqs[-1] if seqs else 2)
        assert resume < acks[-1]
        # the writer is still served, and a resume works
        assert (await writer.request({"op": "ping"}))["ok"]
        again = await Client.connect(server, server.admin_token)
        r = await again.request({"op": "subscribe", "since": resume, "epoch": epoch})
        assert r["recovered"]
        await again.wait_pushes(acks[-1] - resume)
        assert [p["seq"] for p in again.pushes] == list(range(resume + 1, acks[-1] + 1))
        _, _, metrics = server.get("/metrics")
        assert b'changelogd_closes_total{reason="slow_consumer"} 1' in metrics
        for c in (good, writer, again):
            await c.close()
    run(go(), timeout=90)


def test_global_memory_cap(make_server):
    """--max-memory bounds what all connections are owed, answers included,
    before they are built: a client that sends 40 page requests and does not
    read gets the answers that fit; the rest wait (its socket is not read
    meanwhile), it is not closed, and another client is answered in partial
    pages that fit the room left. Once the first reads, it gets all 40."""
    server = make_server("--max-memory", "64K", "--sndbuf", "16K")
    async def go():
        w = await Client.connect(server, server.admin_token)
        for i in range(8):
            assert (await w.command("createEntry", {"title": "m%d" % i, "body": "q" * 4000,
                                                    "kind": "fix"}))["ok"]
        # ~33 KB answers each, never read, in one write (one batch)
        hog = raw_upgrade(server, server.admin_token, rcvbuf=4096)
        hog.sendall(b"".join(Frame(Opcode.TEXT, json.dumps(
            {"id": i, "op": "query", "name": "getChangelogEntries"}).encode()).serialize(
                mask=True) for i in range(40)))
        await asyncio.sleep(0.5)
        _, _, metrics = server.get("/metrics")
        owed = [int(l.split()[1]) for l in metrics.decode().splitlines()
                if l.startswith("changelogd_queue_bytes ")]
        assert owed and 20000 < owed[0] <= 65536, owed
        entries, params = [], {}
        while True:
            r = await w.query("getChangelogEntries", params)
            assert r["ok"], (r, owed)
            entries += r["result"]["entries"]
            if not r["result"]["next_cursor"]:
                break
            params = {"cursor": r["result"]["next_cursor"]}
        assert [e["title"] for e in entries] == ["m%d" % i for i in range(7, -1, -1)]
        assert (await w.request({"op": "ping"}))["ok"]
        # the hog was held, not closed: now it reads, and gets every answer
        ids = [json.loads(m)["id"] for m in read_frames(hog, 40)]
        assert ids == list(range(40))
        _, _, metrics = server.get("/metrics")
        assert b'changelogd_closes_total{reason="slow_consumer"} 0' in metrics
        hog.close()
        await w.close()
    run(go(), timeout=60)


def test_max_conns_503(make_server):
    server = make_server("--max-conns", "3")
    async def go():
        cs = [await Client.connect(server, server.admin_token) for _ in range(3)]
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            await Client.connect(server, server.admin_token)
        assert ei.value.status_code == 503
        await cs[0].close()
        for _ in range(50):
            _, _, h = server.get("/healthz")
            if json.loads(h)["connections"] == 2:
                break
            await asyncio.sleep(0.05)
        d = await Client.connect(server, server.admin_token)
        assert (await d.request({"op": "ping"}))["ok"]
        for c in cs[1:] + [d]:
            await c.close()
    run(go())


def test_one_large_reply_is_not_a_slow_consumer(make_server):
    """A single answer bigger than --max-queue (a big page of entries) is
    delivered; only a backlog beyond the next reply counts."""
    server = make_server("--max-queue", "16K")
    async def go():
        c = await Client.connect(server, server.admin_token)
        for i in range(10):
            assert (await c.command("createEntry", {"title": "big%d" % i, "body": "b" * 10000,
                                                    "kind": "fix"}))["ok"]
        r = await c.query("getChangelogEntries", {"limit": 100})
        assert r["ok"] and len(r["result"]["entries"]) == 10
        assert len(json.dumps(r)) > 100000
        assert (await c.request({"op": "ping"}))["ok"]
        await c.close()
    run(go())


def test_keepalive_pings_then_hangs_up(make_server):
    server = make_server("--ping", "1", "--pong-timeout", "1")
    raw = raw_upgrade(server, server.admin_token, timeout=5)
    t0 = time.monotonic()
    raw.settimeout(10)
    got = b""
    while True:
        chunk = raw.recv(4096)
        if not chunk:
            break
        got += chunk
    elapsed = time.monotonic() - t0
    assert got[:1] == b"\x89", got[:8]          # FIN + PING, sent by the server
    assert 1.0 <= elapsed <= 6.0, elapsed          # hung up: no pong came
    raw.close()

    async def polite():
        c = await Client.connect(server, server.admin_token)   # answers pings itself
        await asyncio.sleep(3.5)
        assert (await c.request({"op": "ping"}))["ok"]
        await c.close()
    run(polite())


def test_idle_handshake_times_out(make_server):
    import socket
    server = make_server("--handshake-timeout", "1")
    t0 = time.monotonic()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    assert sock.recv(1) == b""                     # closed: never sent a byte
    assert time.monotonic() - t0 <= 5
    sock.close()
    s = tls_context().wrap_socket(socket.create_connection(("127.0.0.1", server.port),
                                                           timeout=10),
                                  server_hostname="localhost")
    t0 = time.monotonic()
    assert s.recv(1) == b""                        # TLS done, no HTTP request
    assert time.monotonic() - t0 <= 5
    s.close()
