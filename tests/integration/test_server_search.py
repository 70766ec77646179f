"""The getChangelogEntries "q" search against the real server (issue 15,
item 2): the adversarial needle "a"*199+"b" over 201 entries whose bodies
are 32 KiB of "a" is answered, in pages cut at the documented work budget
(docs/protocol.md "Work budget, partial pages"), and a bystander's ping sent
behind four such searches is answered too. Nothing here asserts a time:
the budget is asserted by where each page stops; the times are printed."""
import asyncio
import math
import time

from conftest import Client, new_member, run

BUDGET = 4 * 1024 * 1024      # PROJ_QUERY_WORK, core/proj.h
PER_ENTRY = 64                # PROJ_WORK_ENTRY
BODY = 32768
N = 201
NEEDLE = "a" * 199 + "b"


def title(i):
    return "adv %03d" % i     # 7 bytes, no "a" in it: never a title match


async def post_entries(c):
    """N entries, newest last; only entry 1's body holds the needle."""
    for start in range(1, N + 1, 50):
        batch = []
        for i in range(start, min(start + 50, N + 1)):
            body = "a" * (BODY - 1) + ("b" if i == 1 else "a")
            batch.append({"op": "createEntry",
                          "params": {"title": title(i), "body": body, "kind": "fix"}})
        ids = c.send_batch(batch)
        for rid in ids:
            r = await c.wait_reply(rid, timeout=60)
            assert r["ok"], r


def test_adversarial_search_is_cut_at_the_budget_and_bystanders_are_served(make_server):
    server = make_server("--rate", "2000", "--burst", "2000")

    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, mallory_token = await new_member(admin, "mallory")
        _, bob_token = await new_member(admin, "bob")
        mallory = await Client.connect(server, mallory_token)
        bob = await Client.connect(server, bob_token)
        await post_entries(mallory)

        # where the first page must stop: after the entry at which the work
        # reaches the budget, counting from the newest entry down
        per_entry = PER_ENTRY + len(title(1)) + BODY
        examined = math.ceil(BUDGET / per_entry)
        first_next = N - examined + 1

        # four searches in one write (four needles: answers are cached per
        # params, and each must be computed), then the bystander's ping
        t0 = time.monotonic()
        ids = mallory.send_batch([{"op": "query", "name": "getChangelogEntries",
                                   "params": {"q": NEEDLE[k:]}} for k in range(4)])
        pong = await bob.request({"op": "ping"}, timeout=30)
        t_ping = time.monotonic() - t0
        assert pong["ok"] and pong["pong"], pong
        for rid in ids:
            r = await mallory.wait_reply(rid, timeout=30)
            assert r["ok"], r
            res = r["result"]
            assert res["partial"] is True, res
            assert res["entries"] == []
            assert res["next_cursor"] == first_next
        t_all = time.monotonic() - t0

        # continuing from next_cursor finds the one match, on a complete page
        r = await mallory.query("getChangelogEntries",
                                {"q": NEEDLE, "cursor": first_next}, timeout=30)
        assert r["ok"], r
        res = r["result"]
        assert [e["id"] for e in res["entries"]] == [1]
        assert res["next_cursor"] is None
        assert "partial" not in res

        # the same walk without q stays far under the budget: one page
        r = await mallory.query("getChangelogEntries", {"limit": 500, "status": "resolved"})
        assert r["ok"] and r["result"]["entries"] == [] and "partial" not in r["result"]

        print("\n  %d entries x %d B; first page stops at cursor %d (%d entries, "
              "%d work units); bystander ping after %.1f ms, 4 searches done after %.1f ms"
              % (N, BODY, first_next, examined, examined * per_entry,
                 t_ping * 1000, t_all * 1000))
        for c in (admin, mallory, bob):
            await c.close()

    run(go())


def test_search_semantics_over_the_wire(server):
    """ASCII-only case folding and UTF-8 left alone, through the real server."""
    async def go():
        c = await Client.connect(server, server.admin_token)
        texts = ["Login FIX", "LOGIN page", "caf\u00e9 menu", "CAF\u00c9 MENU",
                 "[brackets]", "\u202eevil"]
        for t in texts:
            r = await c.command("createEntry", {"title": t, "kind": "fix"})
            assert r["ok"], r

        async def ids(q):
            r = await c.query("getChangelogEntries", {"q": q})
            assert r["ok"], r
            assert "partial" not in r["result"]
            return [e["id"] for e in r["result"]["entries"]]

        assert await ids("login") == [2, 1]
        assert await ids("LoGiN fIx") == [1]
        assert await ids("caf\u00e9") == [3]          # é is not É
        assert await ids("CAF\u00c9") == [4]
        assert await ids("caf") == [4, 3]
        assert await ids("{brackets}") == []          # not letters: no folding
        assert await ids("\u202e") == [6]
        r = await c.query("getChangelogEntries", {"q": "x" * 201})
        assert not r["ok"] and r["error"]["code"] == "bad_request"
        assert "200 bytes" in r["error"]["message"]
        await c.close()

    run(go())


def test_impossible_dates_are_refused(server):
    """created_after / created_before: a date that does not exist is a
    bad_request naming the parameter, never a rolled-over date."""
    async def go():
        c = await Client.connect(server, server.admin_token)
        for key, value in [("created_after", "2026-02-30"),
                           ("created_before", "2025-02-29"),
                           ("created_after", "2026-11-27T10:02:03+99:99"),
                           ("created_before", "2026-04-31T00:00Z"),
                           ("created_after", "2026-11-27T24:00Z")]:
            r = await c.query("getChangelogEntries", {key: value})
            assert not r["ok"], (key, value, r)
            assert r["error"]["code"] == "bad_request"
            assert key in r["error"]["message"]
        r = await c.query("getChangelogEntries", {"created_after": "2024-02-29T23:59:60Z",
                                                  "created_before": "2026-11-27T10:02+14:00"})
        assert r["ok"], r
        pong = await c.request({"op": "ping"})
        assert pong["ok"]
        await c.close()

    run(go())
