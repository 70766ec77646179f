"""A revoked token stops at once, for every request of a batch: a revokeToken
of one's own token followed by a createEntry in the same TLS record, a
revocation by changelog-admin (another process) just before a write, and a
session writing flat out while changelog-admin revokes its token. In each
case no entry.created of that token may follow its token.revoked in the log.
"""
import asyncio

import websockets

from conftest import Client, new_member, run
from tools_util import run_admin


async def log_events(admin):
    """Every event of the log, read back through a subscribe from seq 0."""
    snap = await admin.query("getStats")
    head = snap["at"]
    sub = await admin.request({"op": "subscribe", "since": 0, "epoch": snap["epoch"]})
    assert sub["ok"] and sub["recovered"], sub
    while not admin.pushes or admin.pushes[-1]["seq"] < head:
        await admin.recv_one()
    events = [p["event"] for p in admin.pushes]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    await admin.request({"op": "unsubscribe"})
    admin.pushes.clear()
    return events


def writes_after_revoke(events, user, token):
    """seqs of entry.created by user committed after token's token.revoked."""
    revoked = [e["seq"] for e in events
               if e["type"] == "token.revoked" and e["token"] == token]
    assert len(revoked) == 1, revoked
    return [e["seq"] for e in events
            if e["type"] == "entry.created" and e["actor"] == user and e["seq"] > revoked[0]]


async def replies_or_close(client, ids, timeout=10):
    """The replies to ids that arrive before the server closes the session
    (dict id -> reply), and the close code (None if it stayed open)."""
    got, code = {}, None
    try:
        for rid in ids:
            got[rid] = await client.wait_reply(rid, timeout)
    except websockets.exceptions.ConnectionClosed as e:
        code = e.code
    return got, code


def assert_refused_or_closed(got, code, rid):
    if rid in got:
        assert not got[rid]["ok"], got[rid]
        assert got[rid]["error"]["code"] == "unauthorized", got[rid]
    else:
        assert code == 1008, (got, code)


def test_own_revoke_then_write_in_one_record(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        uid, tok = await new_member(admin, "alice")
        alice = await Client.connect(server, tok)
        tid = (await alice.query("whoami"))["token"]
        entry = {"title": "after my revoke", "body": "must not land", "kind": "fix"}
        ids = alice.send_batch([
            {"op": "revokeToken", "params": {"token": tid}},
            {"op": "createEntry", "params": entry},
            {"op": "query", "name": "getChangelogEntries", "params": {}},
        ])
        got, code = await replies_or_close(alice, ids)
        if ids[0] in got:
            assert got[ids[0]]["ok"], got
        assert_refused_or_closed(got, code, ids[1])
        if ids[2] in got:     # a query of the revoked token is refused too
            assert got[ids[2]]["error"]["code"] == "unauthorized", got
        events = await log_events(admin)
        assert writes_after_revoke(events, uid, tid) == []
        assert not [e for e in events if e["type"] == "entry.created"]
        await admin.close()
    run(go())


async def revoke_by_tool_then(server, admin, name, request):
    """A member's token revoked by changelog-admin (committed when it exits),
    then `request` sent at once on that member's connection, before the
    server's 250 ms tail could notice: refused, or the session closed 1008.
    Returns the member's user and token ids."""
    uid, tok = await new_member(admin, name)
    c = await Client.connect(server, tok)
    tid = (await c.query("whoami"))["token"]
    assert (await c.command("createEntry", {"title": "before " + name, "body": "b",
                                            "kind": "fix"}))["ok"]
    p = run_admin("token", "revoke", str(tid), "--data", server.data)
    assert p.returncode == 0, p.stderr
    ids = c.send_batch([request])
    got, code = await replies_or_close(c, ids)
    assert_refused_or_closed(got, code, ids[0])
    return uid, tid


def test_revoke_by_admin_tool_then_write(server):
    """The write catches up with the log inside its write txn and is refused."""
    async def go():
        admin = await Client.connect(server, server.admin_token)
        for i in range(5):
            uid, tid = await revoke_by_tool_then(server, admin, "bob%d" % i, {
                "op": "createEntry", "params": {"title": "after %d" % i, "body": "b",
                                                "kind": "fix"}})
            events = await log_events(admin)
            assert writes_after_revoke(events, uid, tid) == [], "trial %d" % i
        await admin.close()
    run(go())


def test_revoke_by_admin_tool_then_query(server):
    """The same for a read: the batch is judged against the log as it is
    when the batch runs, not as of the last 250 ms tail tick."""
    async def go():
        admin = await Client.connect(server, server.admin_token)
        for i in range(5):
            await revoke_by_tool_then(server, admin, "quinn%d" % i,
                                      {"op": "query", "name": "getUsers", "params": {}})
        await admin.close()
    run(go())


def test_revoke_by_admin_tool_while_writing(server):
    """The reported race: a session pipelining createEntry while
    changelog-admin revokes its token. Nothing of that token may be
    committed after its token.revoked, in any trial."""
    async def go():
        admin = await Client.connect(server, server.admin_token)
        for trial in range(3):
            uid, tok = await new_member(admin, "carol%d" % trial)
            carol = await Client.connect(server, tok)
            tid = (await carol.query("whoami"))["token"]
            stop = asyncio.Event()
            sent = []

            async def writer():
                n = 0
                try:
                    while not stop.is_set():
                        batch = [{"op": "createEntry",
                                  "params": {"title": "w %d %d" % (trial, n + k), "body": "x",
                                             "kind": "fix"}} for k in range(4)]
                        n += 4
                        sent.extend(carol.send_batch(batch))
                        await asyncio.sleep(0.002)
                        while True:      # take what has arrived, without waiting
                            try:
                                await carol.recv_one(timeout=0.001)
                            except asyncio.TimeoutError:
                                break
                except websockets.exceptions.ConnectionClosed:
                    pass

            task = asyncio.ensure_future(writer())
            while len(carol.replies) < 20:     # it is writing
                await asyncio.sleep(0.01)
            p = await asyncio.get_running_loop().run_in_executor(
                None, lambda: run_admin("token", "revoke", str(tid), "--data", server.data))
            assert p.returncode == 0, p.stderr
            await asyncio.sleep(0.5)
            stop.set()
            await task
            events = await log_events(admin)
            assert writes_after_revoke(events, uid, tid) == [], "trial %d" % trial
            refused = [r for r in carol.replies.values() if not r["ok"]]
            assert all(r["error"]["code"] in ("unauthorized", "rate_limited") for r in refused), refused
        await admin.close()
    run(go())
