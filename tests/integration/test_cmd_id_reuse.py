"""A cmd_id answers again only for the command it was first used for: a
retry (same command, same params in any key order) gets the stored result;
the same id for another command, or for the same command with other params,
is a `conflict` and changes nothing - also after a restart, in the same
batch, and never across users."""
from conftest import Client, new_member, run


def error_code(r):
    assert not r["ok"], r
    return r["error"]["code"]


def test_reused_cmd_id_for_another_command_is_a_conflict(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        made = await c.command("createEntry", {"title": "t", "kind": "fix"}, cmd_id="c-1")
        assert made["ok"], made
        entry, seq = made["entry"], made["seq"]

        r = await c.command("setStatus", {"entry": entry, "status": "resolved"}, cmd_id="c-1")
        assert error_code(r) == "conflict"
        assert "createEntry" in r["error"]["message"]
        r = await c.command("createEntry", {"title": "other", "kind": "fix"}, cmd_id="c-1")
        assert error_code(r) == "conflict"
        assert "other params" in r["error"]["message"]
        # the retry proper: same params, other key order and formatting
        again = await c.request({"op": "createEntry", "cmd_id": "c-1",
                                 "params": {"kind": "fix", "title": "t"}})
        assert again["ok"] and again["seq"] == seq and again["entry"] == entry, again

        got = await c.query("getEntry", {"entry": entry})
        assert got["result"]["entry"]["status"] == "open"
        assert got["at"] == seq                # nothing was appended since
        await c.close()

        server.stop()
        server.start()
        c = await Client.connect(server, server.admin_token)
        r = await c.command("setStatus", {"entry": entry, "status": "resolved"}, cmd_id="c-1")
        assert error_code(r) == "conflict"     # the use is stored with the record
        again = await c.command("createEntry", {"title": "t", "kind": "fix"}, cmd_id="c-1")
        assert again["ok"] and again["seq"] == seq, again
        await c.close()
    run(go())


def test_reuse_inside_one_batch(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        ids = c.send_batch([
            {"op": "createEntry", "cmd_id": "b-1", "params": {"title": "one", "kind": "fix"}},
            {"op": "createEntry", "cmd_id": "b-1", "params": {"title": "two", "kind": "fix"}},
            {"op": "createEntry", "cmd_id": "b-1", "params": {"title": "one", "kind": "fix"}},
        ])
        first, second, third = [await c.wait_reply(i) for i in ids]
        assert first["ok"], first
        assert error_code(second) == "conflict"
        assert third["ok"] and third["seq"] == first["seq"], third
        entries = (await c.query("getChangelogEntries"))["result"]["entries"]
        assert [e["title"] for e in entries] == ["one"]
        await c.close()
    run(go())


def test_cmd_ids_are_per_user(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, tok = await new_member(admin, "dora")
        dora = await Client.connect(server, tok)
        a = await admin.command("createEntry", {"title": "admin's", "kind": "fix"}, cmd_id="u-1")
        d = await dora.command("createEntry", {"title": "dora's", "kind": "fix"}, cmd_id="u-1")
        assert a["ok"] and d["ok"] and d["entry"] != a["entry"], (a, d)
        await admin.close()
        await dora.close()
    run(go())
