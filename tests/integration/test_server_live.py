"""Live pushes: fan-out to many clients, resume after a disconnect with
exactly the missed events, epoch mismatch, catch-up from the log past the
in-memory ring, coalesced frames, and idempotent command ids."""
import asyncio
import json

from conftest import Client, run


async def create(c, title, **kw):
    r = await c.command("createEntry", {"title": title, "body": "body of " + title,
                                        "kind": "fix"}, **kw)
    assert r["ok"], r
    return r


def test_ten_clients_see_a_change_live(server):
    async def go():
        clients = [await Client.connect(server, server.admin_token) for _ in range(10)]
        for c in clients:
            r = await c.request({"op": "subscribe", "since": 2, "epoch": None})
            assert r["ok"] and r["recovered"] is False and r["since"] == 2
        writer = clients[3]
        r = await create(writer, "Live one")
        for c in clients:
            pushes = await c.wait_pushes(1)
            p = pushes[0]
            assert p["op"] == "event" and p["seq"] == r["seq"]
            assert p["event"]["type"] == "entry.created"
            assert p["entry"]["id"] == r["entry"] and p["entry"]["title"] == "Live one"
            assert "replay" not in p
        # a status change carries the entry's new state too
        s = await writer.command("setStatus", {"entry": r["entry"], "status": "resolved"})
        for c in clients:
            pushes = await c.wait_pushes(2)
            assert pushes[1]["seq"] == s["seq"]
            assert pushes[1]["entry"]["status"] == "resolved"
            assert pushes[1]["entry"]["version"] == 2
        # comment edits and deletes carry the comment's new state
        a = await writer.command("addComment", {"entry": r["entry"], "body": "first"})
        e = await writer.command("editComment", {"comment": a["comment"],
                                                 "body": "second"})
        d = await writer.command("deleteComment", {"comment": a["comment"]})
        for c in clients:
            pushes = await c.wait_pushes(5)
            assert [p["seq"] for p in pushes[2:]] == [a["seq"], e["seq"], d["seq"]]
            assert pushes[3]["comment"]["body"] == "second"
            assert pushes[3]["entry"]["id"] == r["entry"]
            assert pushes[4]["comment"]["id"] == a["comment"]
            assert pushes[4]["comment"] != pushes[3]["comment"]
        for c in clients:
            await c.close()
    run(go())


def test_resume_gets_exactly_the_missed_events(server):
    async def go():
        a = await Client.connect(server, server.admin_token)
        b = await Client.connect(server, server.admin_token)
        snap = await a.query("getChangelogEntries")
        sub = await a.request({"op": "subscribe", "since": snap["at"], "epoch": snap["epoch"]})
        assert sub["recovered"] is True and sub["head"] == snap["at"]
        first = await create(b, "seen live")
        await a.wait_pushes(1)
        last_seen = a.pushes[-1]["seq"]
        await a.close()

        missed = [await create(b, "missed %d" % i) for i in range(7)]
        a2 = await Client.connect(server, server.admin_token)
        sub = await a2.request({"op": "subscribe", "since": last_seen, "epoch": snap["epoch"]})
        assert sub["recovered"] is True and sub["since"] == last_seen
        assert sub["head"] == missed[-1]["seq"]
        await a2.wait_pushes(7)
        seqs = [p["seq"] for p in a2.pushes]
        assert seqs == [m["seq"] for m in missed]
        # and live continues with no gap and no duplicate
        more = await create(b, "after resume")
        await a2.wait_pushes(8)
        seqs = [p["seq"] for p in a2.pushes]
        assert seqs == [m["seq"] for m in missed] + [more["seq"]]
        assert first["seq"] not in seqs
        await asyncio.sleep(0.2)
        assert len(a2.pushes) == 8
        await a2.close()
        await b.close()
    run(go())


def test_epoch_mismatch_or_future_since_is_not_recovered(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        await create(c, "x")
        head = (await c.request({"op": "ping"}))["at"]
        for sub in ({"since": 1, "epoch": "0" * 32}, {"since": 1},
                    {"since": head + 5, "epoch": None}):
            d = await Client.connect(server, server.admin_token)
            if sub.get("epoch") is None and "epoch" in sub:
                sub["epoch"] = (await d.query("whoami"))["epoch"]
            r = await d.request(dict(sub, op="subscribe"))
            assert r["ok"] and r["recovered"] is False, (sub, r)
            assert r["since"] == head and r["head"] == head
            n = await create(c, "new")
            pushes = await d.wait_pushes(1)
            assert [p["seq"] for p in pushes] == [n["seq"]]
            head = n["seq"]
            await d.close()
        await c.close()
    run(go())


def test_catch_up_beyond_the_ring_and_coalescing(make_server):
    server = make_server("--ring", "16")
    async def go():
        w = await Client.connect(server, server.admin_token)
        epoch = (await w.query("whoami"))["epoch"]
        rs = []
        for i in range(0, 120, 12):     # pipelined: several commands per batch
            ids = [await w.send({"op": "createEntry", "params": {
                "title": "e%d" % (i + k), "kind": "feature"}}) for k in range(12)]
            for rid in ids:
                rs.append(await w.wait_reply(rid))
        assert all(r["ok"] for r in rs)
        head = rs[-1]["seq"]
        assert head == 122
        c = await Client.connect(server, server.admin_token)
        sub = await c.request({"op": "subscribe", "since": 0, "epoch": epoch})
        assert sub["recovered"] and sub["head"] == head
        await c.wait_pushes(head)
        assert [p["seq"] for p in c.pushes] == list(range(1, head + 1))
        # old events came from the log (marked replay) and in coalesced frames
        assert c.pushes[0]["replay"] is True and c.pushes[0]["event"]["type"] == "user.created"
        assert any(f["op"] == "events" and len(f["events"]) > 1 for f in c.frames)
        assert max(len(f.get("events", [f])) for f in c.frames) <= 16
        # replayed entries carry the current state
        e5 = [p for p in c.pushes if p["event"]["type"] == "entry.created"][5]
        assert e5["entry"]["title"] == "e5"
        # then live
        n = await create(w, "live after catch-up")
        await c.wait_pushes(head + 1)
        assert c.pushes[-1]["seq"] == n["seq"] and "replay" not in c.pushes[-1]
        await c.close()
        await w.close()
    run(go())


def test_retried_command_id_gives_one_event_and_the_same_reply(server):
    async def go():
        a = await Client.connect(server, server.admin_token)
        sub = await a.request({"op": "subscribe", "since": 2,
                               "epoch": (await a.query("whoami"))["epoch"]})
        assert sub["recovered"]
        first = await a.command("createEntry", {"title": "once", "kind": "fix"},
                                cmd_id="retry-1")
        assert first["ok"]
        again = await a.command("createEntry", {"title": "once", "kind": "fix"},
                                cmd_id="retry-1")
        strip = lambda r: {k: v for k, v in r.items() if k != "id"}
        assert strip(again) == strip(first)
        # and from another connection after a reconnect, in one batch twice
        b = await Client.connect(server, server.admin_token)
        i1 = await b.send({"op": "createEntry", "params": {"title": "once", "kind": "fix"},
                           "cmd_id": "retry-1"})
        i2 = await b.send({"op": "createEntry", "params": {"title": "twice", "kind": "fix"},
                           "cmd_id": "retry-2"})
        i3 = await b.send({"op": "createEntry", "params": {"title": "twice", "kind": "fix"},
                           "cmd_id": "retry-2"})
        r1, r2, r3 = [await b.wait_reply(i) for i in (i1, i2, i3)]
        assert strip(r1) == strip(first)
        assert strip(r2) == strip(r3) and r2["seq"] == first["seq"] + 1
        await a.wait_pushes(2)
        await asyncio.sleep(0.3)
        created = [p for p in a.pushes if p["event"]["type"] == "entry.created"]
        assert [p["entry"]["title"] for p in created] == ["once", "twice"]
        assert created[0]["event"]["cmd"] == "retry-1"
        q = await b.query("getChangelogEntries")
        assert len(q["result"]["entries"]) == 2
        await a.close()
        await b.close()
    run(go())


def test_unsubscribe_stops_pushes(server):
    async def go():
        a = await Client.connect(server, server.admin_token)
        await a.request({"op": "subscribe"})
        r = await create(a, "one")
        await a.wait_pushes(1)
        u = await a.request({"op": "unsubscribe"})
        assert u["ok"]
        await create(a, "two")
        p = await a.request({"op": "ping"})
        assert p["at"] == r["seq"] + 1
        await asyncio.sleep(0.2)
        assert len(a.pushes) == 1
        await a.close()
    run(go())


def test_events_written_while_nobody_subscribes_reach_later_subscribers(server):
    """With no subscriber the server builds no push frames; whoever subscribes
    later (even in the same batch as the command) reads them from the log,
    and a query in that batch still sees the uncommitted event."""
    async def go():
        w = await Client.connect(server, server.admin_token)
        epoch = (await w.query("whoami"))["epoch"]
        e = await create(w, "quiet")
        before = e["seq"]
        # one batch: edit, history of the edited entry, subscribe from before it
        ids = w.send_batch([
            {"op": "editEntry", "params": {"entry": e["entry"], "title": "quiet, edited"}},
            {"op": "query", "name": "getEntryHistory", "params": {"entry": e["entry"]}},
            {"op": "subscribe", "since": before - 1, "epoch": epoch}])
        edit, hist, sub = [await w.wait_reply(i) for i in ids]
        assert edit["ok"] and hist["ok"] and sub["ok"] and sub["recovered"], (edit, hist, sub)
        events = hist["result"]["events"]
        types = [h["type"] for h in events]
        assert types == ["entry.created", "entry.edited"], hist
        assert events[-1]["seq"] == edit["seq"]
        assert events[-1]["data"]["title"] == "quiet, edited"
        pushes = await w.wait_pushes(2)
        assert [p["seq"] for p in pushes] == [before, edit["seq"]]
        assert pushes[-1]["entry"]["title"] == "quiet, edited"
        # then live, with no gap
        n = await create(w, "loud")
        pushes = await w.wait_pushes(3)
        assert [p["seq"] for p in pushes] == [before, edit["seq"], n["seq"]]
        assert "replay" not in pushes[-1]
        await w.close()
    run(go())
