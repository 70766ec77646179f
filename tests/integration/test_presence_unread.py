"""Presence and read marks over real websockets: getPresence and the
presence op, coalesced presence pushes (a member churning connections
cannot flood the watchers), several tabs counted once, hidden users never
shown, bad inputs; markRead / markAllRead / getUnread across two
connections of one user, read.marked pushes redacted for everyone else,
and changelog-audit over the log they leave."""
import asyncio
import os
import subprocess
import time

from conftest import BIN, Client, new_member, run


def presence_pushes(c):
    return [m for m in c.other if isinstance(m, dict) and m.get("op") == "presence"]


async def drain(c, seconds):
    """Read whatever comes for a while (pushes land in c.other / c.pushes)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            await c.recv_one(max(0.01, deadline - time.monotonic()))
        except asyncio.TimeoutError:
            break


async def wait_presence(c, pred, timeout=10):
    """Until the presence state c tracks (its join reply plus pushes) satisfies pred."""
    deadline = time.monotonic() + timeout
    while not pred(c.present):
        await c.recv_one(max(0.01, deadline - time.monotonic()))
        for p in presence_pushes(c)[c.applied:]:
            for u in p["arrived"]:
                c.present[u["id"]] = u["name"]
            for u in p["left"]:
                c.present.pop(u["id"], None)
            c.applied += 1
    return c.present


async def join(server, token, hidden=None):
    c = await Client.connect(server, token)
    req = {"op": "presence"}
    if hidden is not None:
        req["hidden"] = hidden
    r = await c.request(req)
    assert r["ok"], r
    c.present = {u["id"]: u["name"] for u in r["users"]}
    c.applied = 0
    return c


def test_presence_query_pushes_tabs_and_hidden(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        alice_id, alice_tok = await new_member(admin, "alice")
        bob_id, bob_tok = await new_member(admin, "bob")
        carol_id, carol_tok = await new_member(admin, "carol")

        r = await admin.query("getPresence")
        assert r["ok"] and r["result"] == {"users": []} and "at" in r, r
        # a connection that never joined is not present (scripts, PHP pages)
        watcher = await join(server, server.admin_token)
        await wait_presence(watcher, lambda p: 1 in p)
        # alice in two tabs: announced once
        a1 = await join(server, alice_tok)
        a2 = await join(server, alice_tok)
        present = await wait_presence(watcher, lambda p: alice_id in p)
        assert present[alice_id] == "alice"
        arrivals = [u["id"] for p in presence_pushes(watcher) for u in p["arrived"]]
        assert arrivals.count(alice_id) == 1
        # bob hides: never shown, in pushes or in the query
        b = await join(server, bob_tok, hidden=True)
        # carol joins after bob: once she is shown, bob's join was flushed too
        c = await join(server, carol_tok)
        await wait_presence(watcher, lambda p: carol_id in p)
        assert bob_id not in watcher.present
        r = await admin.query("getPresence")
        ids = [u["id"] for u in r["result"]["users"]]
        assert alice_id in ids and carol_id in ids and bob_id not in ids
        assert ids == sorted(ids)
        # one of alice's tabs closes: still there; the second: gone
        await a1.close()
        await c.close()
        await wait_presence(watcher, lambda p: carol_id not in p)
        assert alice_id in watcher.present
        await a2.close()
        await wait_presence(watcher, lambda p: alice_id not in p)
        # bob shows himself, then hides again
        r = await b.request({"op": "presence", "hidden": False})
        assert r["ok"] and r["hidden"] is False
        await wait_presence(watcher, lambda p: bob_id in p)
        r = await b.request({"op": "presence", "hidden": True})
        assert r["ok"] and r["hidden"] is True
        await wait_presence(watcher, lambda p: bob_id not in p)
        # presence frames carry no seq and are not events
        for p in presence_pushes(watcher):
            assert "seq" not in p and set(p) == {"op", "arrived", "left"}
        assert watcher.pushes == []
        for x in (b, watcher, admin):
            await x.close()
    run(go())


def test_presence_bad_inputs(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        for bad in ("yes", 1, [], {}):
            r = await c.request({"op": "presence", "hidden": bad})
            assert not r["ok"] and r["error"]["code"] == "bad_request", r
        r = await c.query("getPresence", {"user": 1})
        assert not r["ok"] and r["error"]["code"] == "bad_request"
        r = await c.request({"op": "query", "name": "getPresence", "params": 3})
        assert not r["ok"] and r["error"]["code"] == "bad_request"
        # the connection and the server carry on
        r = await c.request({"op": "presence", "hidden": None})
        assert r["ok"] and r["hidden"] is False
        r = await c.request({"op": "ping"})
        assert r["ok"]
        await c.close()
    run(go())


def test_presence_churn_is_coalesced(server):
    """A member opening and closing connections as fast as it can: each
    watcher gets at most one presence push per second (plus one), each
    naming the member at most once, and the final state is right."""
    async def go():
        admin = await Client.connect(server, server.admin_token)
        m_id, m_tok = await new_member(admin, "mallory")
        watchers = [await join(server, server.admin_token) for _ in range(3)]
        await wait_presence(watchers[0], lambda p: 1 in p)
        t0 = time.monotonic()
        cycles = 0
        while time.monotonic() - t0 < 3.0:
            batch = await asyncio.gather(*[join(server, m_tok) for _ in range(10)])
            await asyncio.gather(*[x.close() for x in batch])
            cycles += 1
        # the last one stays a moment, then goes: both must be told
        last = await join(server, m_tok)
        for w in watchers:
            await wait_presence(w, lambda p: m_id in p)
        await last.close()
        for w in watchers:
            await wait_presence(w, lambda p: m_id not in p)
        elapsed = time.monotonic() - t0
        for w in watchers:
            pushes = presence_pushes(w)
            assert len(pushes) <= elapsed / 1.0 + 2, (len(pushes), elapsed)
            for p in pushes:
                ids = [u["id"] for u in p["arrived"] + p["left"]]
                assert len(ids) == len(set(ids))
        print("churn: %d connections, %d pushes in %.1f s" % (cycles * 10, len(presence_pushes(watchers[0])), elapsed))
        assert cycles * 10 > 3 * len(presence_pushes(watchers[0]))   # it really churned
        for w in watchers:
            await w.close()
        await admin.close()
    run(go())


def test_read_marks_follow_the_user(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        alice_id, alice_tok = await new_member(admin, "alice")
        bob_id, bob_tok = await new_member(admin, "bob")
        bob = await Client.connect(server, bob_tok)
        a1 = await Client.connect(server, alice_tok)     # laptop
        a2 = await Client.connect(server, alice_tok)     # phone
        e1 = await bob.command("createEntry", {"title": "one", "kind": "fix"})
        e2 = await bob.command("createEntry", {"title": "two", "kind": "fix"})
        own = await a1.command("createEntry", {"title": "mine", "kind": "change"})
        r = await a1.query("getUnread")
        assert r["ok"], r
        res = r["result"]
        assert [u["entry"] for u in res["unread"]] == [e2["entry"], e1["entry"]]
        assert res["count"] == 2 and res["unread"][0]["seq"] == e2["seq"]
        # bob sees his own entries as read, alice's as unread
        r = await bob.query("getUnread")
        assert [u["entry"] for u in r["result"]["unread"]] == [own["entry"]]

        sub = await a2.request({"op": "subscribe"})
        assert sub["ok"]
        bsub = await bob.request({"op": "subscribe"})
        assert bsub["ok"]
        m = await a1.command("markRead", {"entry": e1["entry"], "upto": e1["seq"]})
        assert m["ok"] and m["entry"] == e1["entry"] and m["upto"] == e1["seq"], m
        # the phone sees the mark (its own user's) in full; bob gets a stub
        pushes = await a2.wait_pushes(1)
        assert pushes[0]["seq"] == m["seq"]
        ev = pushes[0]["event"]
        assert ev["type"] == "read.marked" and ev["entry"] == e1["entry"]
        assert ev["data"] == {"upto": e1["seq"]} and ev["actor"] == alice_id
        bp = await bob.wait_pushes(1)
        assert bp[0] == {"op": "event", "seq": m["seq"], "redacted": True}
        r = await a2.query("getUnread")
        assert [u["entry"] for u in r["result"]["unread"]] == [e2["entry"]]
        # refusals: nothing to mark, a mark before the latest activity,
        # beyond the log, unknown entry, bad types and keys
        for params, code in (({"entry": e1["entry"]}, "bad_request"),
                             ({"entry": e2["entry"], "upto": e2["seq"] - 1}, "bad_request"),
                             ({"entry": e2["entry"], "upto": 10 ** 6}, "bad_request"),
                             ({"entry": 999}, "not_found"),
                             ({"entry": "2"}, "bad_request"),
                             ({"entry": e2["entry"], "upto": -1}, "bad_request"),
                             ({"entry": e2["entry"], "seen": 1}, "bad_request")):
            r = await a1.command("markRead", params)
            assert not r["ok"] and r["error"]["code"] == code, (params, r)
        r = await a1.command("markAllRead", {"entry": 1})
        assert not r["ok"] and r["error"]["code"] == "bad_request"
        r = await a1.query("getUnread", {"x": 1})
        assert not r["ok"] and r["error"]["code"] == "bad_request"
        # mark all read from the phone; a comment afterwards is unread again
        m = await a2.command("markAllRead", {})
        assert m["ok"], m
        r = await a1.query("getUnread")
        assert r["result"]["unread"] == [] and r["result"]["count"] == 0
        r = await a2.command("markAllRead", {})
        assert not r["ok"] and r["error"]["code"] == "bad_request"
        c = await bob.command("addComment", {"entry": e2["entry"], "body": "ping"})
        r = await a1.query("getUnread")
        assert r["result"]["unread"] == [{"entry": e2["entry"], "seq": c["seq"]}]
        # idempotent like every command
        m1 = await a1.command("markRead", {"entry": e2["entry"]}, cmd_id="read-1")
        m2 = await a1.command("markRead", {"entry": e2["entry"]}, cmd_id="read-1")
        assert m1["ok"] and m2 == dict(m1, id=m2["id"])
        for x in (bob, a1, a2, admin):
            await x.close()
    run(go())
    server.stop()
    env = dict(os.environ, CHANGELOG_FAKE_TIME="2026-12-01T00:00:00Z")
    audit = os.path.join(BIN, "changelog-audit")
    out = subprocess.run([audit, "verify", "--data", server.data], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([audit, "log", "--data", server.data], capture_output=True,
                         text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "marked everything read up to seq" in out.stdout
    assert "read #" in out.stdout


def test_over_the_http_api(server):
    """getPresence, getUnread and markRead through /api/v1 (docs/http-api.md)."""
    from http_util import call

    async def go():
        admin = await Client.connect(server, server.admin_token)
        uid, tok = await new_member(admin, "alice")
        e = await admin.command("createEntry", {"title": "t", "kind": "fix"})
        watcher = await join(server, server.admin_token)
        await wait_presence(watcher, lambda p: 1 in p)
        await watcher.close()
        await admin.close()
        return tok, e

    tok, e = run(go())
    st, _, body = call(server, "GET", "/api/v1/queries/getUnread", token=None)
    assert st == 401
    st, _, body = call(server, "GET", "/api/v1/queries/getPresence", token=server.admin_token)
    assert st == 200 and "users" in body["result"], (st, body)
    st, _, body = call(server, "GET", "/api/v1/queries/getUnread", token=server.admin_token)
    assert st == 200 and body["result"]["unread"] == [], (st, body)   # his own entry
    st, _, body = call(server, "GET", "/api/v1/queries/getUnread", token=tok)
    assert st == 200 and body["result"]["unread"] == [{"entry": e["entry"], "seq": e["seq"]}]
    st, _, body = call(server, "POST", "/api/v1/commands/markRead", token=tok,
                       body={"entry": e["entry"]})
    assert st == 200 and body["upto"] >= e["seq"], (st, body)
    st, _, body = call(server, "POST", "/api/v1/commands/markRead", token=tok,
                       body={"entry": e["entry"]})
    assert st == 400 and body["error"]["code"] == "bad_request", (st, body)
    st, _, body = call(server, "GET", "/api/v1/queries/getUnread", token=tok)
    assert st == 200 and body["result"]["count"] == 0
