"""Token events reach only those getUsers shows tokens to: admins see every
token.issued / token.revoked push in full, a member sees their own, and any
other member gets a stub {"op":"event","seq":N,"redacted":true} in its
place - so every subscriber's stream stays gapless, live, caught up from
the ring, caught up from the log after a restart, and for events that
changelog-admin appended in another process."""
import json

from conftest import Client, new_member, run
from tools_util import run_admin

LABEL = "alice-secret-label"


def stream_ok(pushes, since):
    seqs = [p["seq"] for p in pushes]
    assert seqs == list(range(since + 1, since + 1 + len(seqs))), seqs


def by_seq(pushes):
    return {p["seq"]: p for p in pushes}


def assert_redacted(p):
    assert p == {"op": "event", "seq": p["seq"], "redacted": True}, p


async def subscribe(c, since=None, epoch=None):
    msg = {"op": "subscribe"}
    if since is not None:
        msg.update(since=since, epoch=epoch)
    r = await c.request(msg)
    assert r["ok"], r
    return r


async def until(c, seq):
    while not c.pushes or c.pushes[-1]["seq"] < seq:
        await c.recv_one()


def test_token_pushes_are_for_admins_and_the_owner(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        alice_id, _ = await new_member(admin, "alice")
        bob_id, bob_tok = await new_member(admin, "bob")
        bob = await Client.connect(server, bob_tok)
        watcher = await Client.connect(server, server.admin_token)
        snap = await bob.query("getStats")
        start, epoch = snap["at"], snap["epoch"]
        await subscribe(bob, start, epoch)
        await subscribe(watcher, start, epoch)

        issued = await admin.command("issueToken", {"user": alice_id, "label": LABEL})
        assert issued["ok"], issued
        revoked = await admin.command("revokeToken", {"token": issued["token_id"]})
        own = await admin.command("issueToken", {"user": bob_id, "label": "bob-phone"})
        entry = await admin.command("createEntry", {"title": "visible", "kind": "fix"})
        assert revoked["ok"] and own["ok"] and entry["ok"]
        # changelog-admin, another process: followed, published, filtered alike
        p = run_admin("token", "issue", "alice", "--label", LABEL + "-tool",
                      "--data", server.data)
        assert p.returncode == 0, p.stderr
        head = entry["seq"] + 1
        await until(bob, head)
        await until(watcher, head)

        stream_ok(bob.pushes, start)
        stream_ok(watcher.pushes, start)
        b, w = by_seq(bob.pushes), by_seq(watcher.pushes)
        for seq in (issued["seq"], revoked["seq"], head):
            assert_redacted(b[seq])
            assert w[seq]["event"]["user"] == alice_id
        assert w[issued["seq"]]["event"]["data"]["label"] == LABEL
        assert w[head]["event"]["data"]["label"] == LABEL + "-tool"
        assert b[own["seq"]]["event"]["data"]["label"] == "bob-phone"   # bob's own
        assert b[entry["seq"]]["entry"]["title"] == "visible"
        assert LABEL not in json.dumps(bob.frames)

        # catch-up from the ring: a second member connection from `start`
        bob2 = await Client.connect(server, bob_tok)
        await subscribe(bob2, start, epoch)
        await until(bob2, head)
        stream_ok(bob2.pushes, start)
        assert by_seq(bob2.pushes) == b
        assert LABEL not in json.dumps(bob2.frames)

        # the rule is the viewer's role now: made an admin, bob sees them
        assert (await admin.command("setRole", {"user": bob_id, "role": "admin"}))["ok"]
        await until(bob, head + 1)
        again = await admin.command("issueToken", {"user": alice_id, "label": LABEL + "-2"})
        await until(bob, again["seq"])
        assert by_seq(bob.pushes)[again["seq"]]["event"]["data"]["label"] == LABEL + "-2"
        assert (await admin.command("setRole", {"user": bob_id, "role": "member"}))["ok"]
        for c in (admin, bob, bob2, watcher):
            await c.close()

        # catch-up from the log: after a restart the ring is empty
        server.stop()
        server.start()
        bob = await Client.connect(server, bob_tok)
        snap = await bob.query("getStats")
        await subscribe(bob, 0, snap["epoch"])
        await until(bob, snap["at"])
        stream_ok(bob.pushes, 0)
        b = by_seq(bob.pushes)
        for seq in (issued["seq"], revoked["seq"], head, again["seq"]):
            assert_redacted(b[seq])
        assert b[own["seq"]]["event"]["data"]["label"] == "bob-phone"
        assert b[entry["seq"]]["entry"]["title"] == "visible"
        # the bootstrap admin's token.issued (seq 2) is not bob's either
        assert_redacted(b[2])
        assert LABEL not in json.dumps(bob.frames)
        admin = await Client.connect(server, server.admin_token)
        await subscribe(admin, 0, snap["epoch"])
        await until(admin, snap["at"])
        stream_ok(admin.pushes, 0)
        assert not [p for p in admin.pushes if p.get("redacted")]
        await bob.close()
        await admin.close()
    run(go())
