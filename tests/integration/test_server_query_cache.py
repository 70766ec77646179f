"""The stored-query result cache (net/qcache.c, proto.c): a repeated query
is answered from the cache with exactly the bytes of the first answer, in
both request forms; any committed event - ours, or one another process
appended with changelog-admin - replaces the cached answer; a batch sees its
own writes; answers that depend on the caller are never shared; /metrics
counts hits and misses."""
import asyncio
import json
import re
import time

from conftest import Client, run, new_member
from tools_util import run_admin

SEED = {"service": "mysql", "db": "lazul_changelog", "stored_query_name": "getChangelogEntries"}


def metric(server, name):
    body = server.get("/metrics")[2].decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
    assert m, body
    return int(m.group(1))


def body(reply):
    """A reply without its "id" (Client.query numbers every request)."""
    return {k: v for k, v in reply.items() if k != "id"}


async def raw(c, obj):
    """Send obj and return the next frame's text exactly as it came."""
    await c.ws.send(json.dumps(obj))
    return await asyncio.wait_for(c.ws.recv(), 10)


def test_repeat_is_identical_and_counted(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        for i in range(3):
            assert (await c.command("createEntry", {"title": "t%d \u2603" % i,
                                                    "kind": "fix"}))["ok"]
        hits0 = metric(server, "changelogd_query_cache_hits_total")
        misses0 = metric(server, "changelogd_query_cache_misses_total")
        q = {"id": "same", "op": "query", "name": "getChangelogEntries",
             "params": {"limit": 2, "kind": ["fix"]}}
        first = await raw(c, q)
        again = await raw(c, q)
        assert first == again
        # the params' key order does not matter; the id is this request's
        q2 = {"id": 7, "op": "query", "name": "getChangelogEntries",
              "params": {"kind": ["fix"], "limit": 2}}
        other = json.loads(await raw(c, q2))
        assert other["id"] == 7
        assert other == dict(json.loads(first), id=7)
        # the seed's form: a bare answer, cached on its own
        s1 = await raw(c, SEED)
        s2 = await raw(c, SEED)
        assert s1 == s2 and [e["title"] for e in json.loads(s1)] == ["t2 \u2603", "t1 \u2603",
                                                                    "t0 \u2603"]
        # no id: still the same object without "id"
        n1 = json.loads(await raw(c, {"op": "query", "name": "getStats"}))
        n2 = json.loads(await raw(c, {"op": "query", "name": "getStats"}))
        assert n1 == n2 and "id" not in n1 and n1["result"]["entries"] == 3
        await c.close()
        assert metric(server, "changelogd_query_cache_hits_total") - hits0 == 4
        assert metric(server, "changelogd_query_cache_misses_total") - misses0 == 3
    run(go())


def test_write_by_another_client_replaces_the_answer(server):
    async def go():
        reader = await Client.connect(server, server.admin_token)
        _, tok = await new_member(reader, "wendy")
        writer = await Client.connect(server, tok)
        before = await reader.query("getChangelogEntries")
        assert before["result"]["entries"] == []
        assert body(await reader.query("getChangelogEntries")) == body(before)
        r = await writer.command("createEntry", {"title": "new one", "kind": "feature"})
        assert r["ok"], r
        after = await reader.query("getChangelogEntries")
        assert after["at"] == r["seq"]
        assert [e["title"] for e in after["result"]["entries"]] == ["new one"]
        await reader.ws.send(json.dumps(SEED))
        assert [e["title"] for e in json.loads(await reader.ws.recv())] == ["new one"]
        await reader.close()
        await writer.close()
    run(go())


def test_a_batch_sees_its_own_writes(server):
    """query, command, query in one batch: the second query runs on the
    projection with the uncommitted entry (not the cached answer), the
    first does not; afterwards everyone sees the committed state."""
    async def go():
        c = await Client.connect(server, server.admin_token)
        warm = await c.query("getChangelogEntries")
        assert body(await c.query("getChangelogEntries")) == body(warm)
        q = {"op": "query", "name": "getChangelogEntries", "params": {}}
        ids = c.send_batch([q, {"op": "createEntry",
                                "params": {"title": "in batch", "kind": "fix"}}, q])
        r1, w, r2 = [await c.wait_reply(i) for i in ids]
        assert w["ok"], w
        assert r1["result"]["entries"] == [] and r1["at"] == warm["at"]
        assert [e["title"] for e in r2["result"]["entries"]] == ["in batch"]
        assert r2["at"] == w["seq"]
        other = await Client.connect(server, server.admin_token)
        r3 = await other.query("getChangelogEntries")
        assert r3["result"] == r2["result"] and r3["at"] == r2["at"]
        await c.close()
        await other.close()
    run(go())


def test_event_from_another_process_replaces_the_answer(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        _, tok = await new_member(c, "mallory")
        m = await Client.connect(server, tok)
        users = await c.query("getUsers")
        stats = await c.query("getStats")
        who = await m.query("whoami")
        assert who["result"]["user"]["role"] == "member"
        assert body(await c.query("getUsers")) == body(users)
        assert body(await m.query("whoami")) == body(who)
        p = run_admin("user", "add", "toolmade", "--data", server.data)
        assert p.returncode == 0, p.stderr
        p = run_admin("user", "role", "mallory", "admin", "--data", server.data)
        assert p.returncode == 0, p.stderr
        # the tail picks the events up within 250 ms; allow for a slow host
        deadline = time.monotonic() + 5
        while True:
            u = await c.query("getUsers")
            w = await m.query("whoami")
            s = await c.query("getStats")
            if (w["result"]["user"]["role"] == "admin" and
                    "toolmade" in {x["name"] for x in u["result"]["users"]}):
                break
            assert time.monotonic() < deadline, (u, w)
            await asyncio.sleep(0.05)
        assert u["at"] > users["at"] and w["at"] == u["at"] == s["at"]
        assert s["result"]["users"] == stats["result"]["users"] + 1
        await c.close()
        await m.close()
    run(go())


def test_callers_answers_are_not_mixed(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, tok = await new_member(admin, "bob")
        bob = await Client.connect(server, tok)
        bob2 = await Client.connect(server, tok)
        for _ in range(2):
            a = await admin.query("whoami")
            b = await bob.query("whoami")
            assert a["result"]["user"]["name"] == "admin" and a["token"] == 1
            assert b["result"]["user"]["name"] == "bob" and b["token"] > 1
            for c, name in ((admin, "admin"), (bob, "bob")):
                await c.ws.send(json.dumps({"stored_query_name": "whoami"}))
                assert json.loads(await c.ws.recv())["user"]["name"] == name
            # getUsers shows tokens to admins only
            au = await admin.query("getUsers")
            bu = await bob.query("getUsers")
            assert all("tokens" in u for u in au["result"]["users"])
            assert not any("tokens" in u for u in bu["result"]["users"])
        # same user, another token: same cached result, its own token
        t = await admin.command("issueToken", {"user": "bob", "label": "second"})
        assert t["ok"], t
        b1 = await bob.query("whoami")
        b2 = await bob2.query("whoami")
        assert b1["result"] == b2["result"] and b1["token"] == b2["token"]
        b3c = await Client.connect(server, t["token"])
        b3 = await b3c.query("whoami")
        assert b3["result"] == b1["result"] and b3["token"] != b1["token"]
        for c in (admin, bob, bob2, b3c):
            await c.close()
    run(go())
