"""The wire protocol: the seed's request verbatim, query envelopes, refusals
of malformed requests (connection stays open), and the commands of the
domain as the creator, another member and the admin would send them."""
import json

import websockets

from conftest import Client, run, tls_context, new_member

SEED = {"service": "mysql", "db": "lazul_changelog", "stored_query_name": "getChangelogEntries"}


def test_seed_request_verbatim(server):
    async def go():
        c = await Client.connect(server, server.admin_token, prefix="/route")
        await c.ws.send(json.dumps(SEED))
        assert json.loads(await c.ws.recv()) == []
        r = await c.command("createEntry", {"title": "Fix login", "body": "b", "kind": "fix"})
        assert r["ok"], r
        await c.ws.send(json.dumps(SEED))
        bare = json.loads(await c.ws.recv())
        assert isinstance(bare, list) and len(bare) == 1
        assert bare[0]["title"] == "Fix login" and bare[0]["status"] == "open"
        q = await c.query("getChangelogEntries")
        assert q["result"]["entries"] == bare
        # another stored query name: the bare result of that query
        await c.ws.send(json.dumps({"service": "mysql", "db": "lazul_changelog",
                                    "stored_query_name": "whoami"}))
        who = json.loads(await c.ws.recv())
        assert who["user"]["name"] == "admin"
        await c.ws.send(json.dumps({"stored_query_name": "noSuchQuery"}))
        err = json.loads(await c.ws.recv())
        assert err["ok"] is False and err["error"]["code"] == "bad_request"
        await c.close()
    run(go())


def test_query_envelope(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        r = await c.request({"id": "q-1", "op": "query", "name": "getChangelogEntries",
                             "params": {}})
        assert r["id"] == "q-1" and r["ok"] is True
        assert isinstance(r["epoch"], str) and len(r["epoch"]) == 32
        assert r["at"] == 2           # the bootstrap's user.created + token.issued
        assert r["result"]["entries"] == []
        w = await c.query("whoami")
        assert w["token"] == 1 and w["result"]["user"]["role"] == "admin"
        r = await c.query("getEntry", {"entry": 99})
        assert r["ok"] is False and r["error"]["code"] == "not_found"
        r = await c.query("nope")
        assert r["ok"] is False and r["error"]["code"] == "bad_request"
        await c.close()
    run(go())


BAD = [
    (b"{not json", None),
    (b"[1,2,3]", None),
    (b'"just a string"', None),
    (b"", None),
    (b'{"id":1,"op":"query","name":"whoami","name":"x"}', None),   # duplicate key
    (b'{"id":7}', 7),
    (b'{"id":8,"op":42}', 8),
    (b'{"id":9,"op":"frobnicate"}', 9),
    (b'{"id":10,"op":"query"}', 10),
    (b'{"id":11,"op":"query","name":"whoami","params":[1]}', 11),
    (b'{"id":12,"op":"subscribe","since":"5"}', 12),
    (b'{"id":13,"op":"subscribe","since":-1}', 13),
    (b'{"id":14,"op":"subscribe","since":1,"epoch":5}', 14),
    (b'{"id":15,"op":"createEntry","params":{"title":"t","kind":"fix"},"cmd_id":5}', 15),
    (b'{"id":16,"op":"createEntry","params":{"title":"t","kind":"fix"},"cmd_id":""}', 16),
    (b'{"id":"s","op":"command","name":"rm -rf"}', "s"),
    (b'{"id":{"a":1},"op":"ping"}', None),
    (b'{"id":17,"op":"createEntry","params":"title"}', 17),
]


def test_malformed_requests_stay_open(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        for raw, rid in BAD:
            await c.ws.send(raw.decode())
            r = json.loads(await c.ws.recv())
            assert r["ok"] is False, raw
            assert r["error"]["code"] == "bad_request", (raw, r)
            assert r["error"]["message"], raw
            if rid is None:
                assert "id" not in r, (raw, r)
            else:
                assert r["id"] == rid, (raw, r)
        p = await c.request({"op": "ping"})
        assert p["ok"] and p["pong"] is True and p["at"] == 2
        await c.close()
    run(go())


def test_commands_by_creator_member_and_admin(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, alice_tok = await new_member(admin, "alice")
        bob_id, bob_tok = await new_member(admin, "bob")
        alice = await Client.connect(server, alice_tok)
        bob = await Client.connect(server, bob_tok)

        # members cannot manage users
        r = await bob.command("createUser", {"name": "mallory"})
        assert not r["ok"] and r["error"]["code"] == "forbidden"

        r = await alice.command("createEntry", {"title": "Disk alerts", "body": "x",
                                                "kind": "change"})
        assert r["ok"] and isinstance(r["seq"], int), r
        e = r["entry"]
        c1 = await bob.command("addComment", {"entry": e, "body": "Which disks?"})
        assert c1["ok"] and c1["seq"] == r["seq"] + 1, c1
        c2 = await alice.command("addComment", {"entry": e, "parent": c1["comment"],
                                                "body": "All of them."})
        assert c2["ok"], c2
        c3 = await bob.command("addComment", {"entry": e, "parent": c2["comment"],
                                              "body": "Thanks"})
        assert c3["ok"], c3
        r = await bob.command("addComment", {"entry": e, "parent": 999, "body": "?"})
        assert not r["ok"] and r["error"]["code"] == "not_found"

        # status: only the creator or an admin
        r = await bob.command("setStatus", {"entry": e, "status": "resolved"})
        assert not r["ok"] and r["error"]["code"] == "forbidden", r
        r = await bob.command("editEntry", {"entry": e, "title": "mine now"})
        assert not r["ok"] and r["error"]["code"] == "forbidden", r
        r = await alice.command("setStatus", {"entry": e, "status": "resolved"})
        assert r["ok"] and r["status"] == "resolved", r
        r = await alice.command("setStatus", {"entry": e, "status": "cancelled"})
        assert not r["ok"] and r["error"]["code"] == "invalid_transition", r
        r = await admin.command("setStatus", {"entry": e, "status": "reopened"})
        assert r["ok"], r
        r = await admin.command("setStatus", {"entry": e, "status": "cancelled"})
        assert r["ok"], r
        r = await alice.command("createEntry", {"title": "", "kind": "fix"})
        assert not r["ok"] and r["error"]["code"] == "bad_request", r

        # the {"op":"command","name":...} form is the same command
        r = await bob.request({"op": "command", "name": "createEntry",
                               "params": {"title": "Bob's", "kind": "feature"}})
        assert r["ok"], r

        got = await alice.query("getEntry", {"entry": e})
        assert got["ok"], got
        res = got["result"]
        assert res["entry"]["status"] == "cancelled"
        assert res["entry"]["author"] == "alice"
        # threads are trees: c1 <- c2 <- c3
        flat = json.dumps(res["comments"])
        for body in ("Which disks?", "All of them.", "Thanks"):
            assert body in flat
        who = await bob.query("whoami")
        assert who["result"]["user"]["id"] == bob_id
        for c in (admin, alice, bob):
            await c.close()
    run(go())


def test_group_commit_one_txn_per_batch(server):
    """Commands read in one service turn are committed in one write txn,
    in arrival order, and each reply comes after that commit."""
    async def go():
        c = await Client.connect(server, server.admin_token)
        await c.request({"op": "ping"})
        _, _, before = server.get("/metrics")
        ids = c.send_batch([{"op": "createEntry", "params": {"title": "g%d" % i, "kind": "fix"}}
                            for i in range(50)] + [{"op": "query", "name": "getChangelogEntries",
                                                    "params": {"limit": 100}}])
        replies = [await c.wait_reply(i) for i in ids]
        assert [r["seq"] for r in replies[:50]] == list(range(3, 53))
        assert [r["entry"] for r in replies[:50]] == list(range(1, 51))
        # the query queued behind them saw all 50
        assert replies[50]["at"] == 52 and len(replies[50]["result"]["entries"]) == 50
        # a history query in the same batch as the command that made the
        # entry sees its (not yet committed) events
        ids = c.send_batch([{"op": "createEntry", "params": {"title": "h", "kind": "fix"}},
                            {"op": "addComment", "params": {"entry": 51, "body": "c"}},
                            {"op": "query", "name": "getEntryHistory",
                             "params": {"entry": 51}}])
        r1, r2, hist = [await c.wait_reply(i) for i in ids]
        assert r1["ok"] and r2["ok"] and hist["ok"], hist
        assert [e["seq"] for e in hist["result"]["events"]] == [r1["seq"], r2["seq"]]
        # ... and mixes committed events (read from the log while the write
        # txn is open) with the batch's own
        ids = c.send_batch([{"op": "addComment", "params": {"entry": 1, "body": "late"}},
                            {"op": "query", "name": "getEntryHistory", "params": {"entry": 1}}])
        r3, hist = [await c.wait_reply(i) for i in ids]
        assert [e["seq"] for e in hist["result"]["events"]] == [3, r3["seq"]], hist
        assert hist["result"]["events"][1]["data"]["body"] == "late"
        _, _, after = server.get("/metrics")
        commits = lambda t: int([l for l in t.decode().splitlines()
                                 if l.startswith("changelogd_commits_total ")][0].split()[1])
        assert commits(after) - commits(before) == 3
        await c.close()
    run(go())
