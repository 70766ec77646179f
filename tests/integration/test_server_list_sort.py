"""getChangelogEntries "sort": "activity" and "count": true through the real
server (issue 18): entries come newest-activity first and page by the seq
of that activity, a comment or a status change moves an entry to the top,
"total" counts the matches whatever the page, and bad values are refused
with a bad_request while the connection goes on."""
from conftest import Client, run


def ids(r):
    assert r["ok"], r
    return [e["id"] for e in r["result"]["entries"]]


def test_sort_by_activity_and_count(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        made = []
        for i in range(1, 8):
            r = await c.command("createEntry", {"title": "entry %d" % i, "kind": "fix"})
            assert r["ok"], r
            made.append(r["entry"])
        e1, e2, e3 = made[0], made[1], made[2]
        r = await c.command("addComment", {"entry": e2, "body": "bump"})
        assert r["ok"], r
        seq_e2 = r["seq"]
        r = await c.command("setStatus", {"entry": e1, "status": "resolved"})
        assert r["ok"], r
        seq_e1 = r["seq"]
        r = await c.command("editEntry", {"entry": e3, "title": "entry 3, edited"})
        assert r["ok"], r

        want = [e3, e1, e2] + [e for e in reversed(made) if e not in (e1, e2, e3)]
        assert ids(await c.query("getChangelogEntries", {"sort": "activity"})) == want
        assert ids(await c.query("getChangelogEntries", {})) == list(reversed(made))
        # pages by activity: next_cursor is the seq of the last entry's activity
        p1 = await c.query("getChangelogEntries", {"sort": "activity", "limit": 2})
        assert ids(p1) == [e3, e1] and p1["result"]["next_cursor"] == seq_e1
        p2 = await c.query("getChangelogEntries", {"sort": "activity", "limit": 2,
                                                   "cursor": seq_e1})
        assert ids(p2) == [e2, made[6]] and p2["result"]["next_cursor"] is not None
        assert ids(await c.query("getChangelogEntries",
                                 {"sort": "activity", "cursor": seq_e2})) == want[3:]
        # the last activity times come out in the same order
        acts = [e["last_activity"] for e in
                (await c.query("getChangelogEntries", {"sort": "activity"}))["result"]["entries"]]
        assert acts == sorted(acts, reverse=True)

        # count
        r = await c.query("getChangelogEntries", {"count": True, "limit": 2})
        assert r["result"]["total"] == 7 and len(r["result"]["entries"]) == 2
        r = await c.query("getChangelogEntries", {"count": True, "status": "resolved"})
        assert r["result"]["total"] == 1
        r = await c.query("getChangelogEntries", {"count": True, "q": "EDITED", "sort": "activity"})
        assert r["result"]["total"] == 1 and ids(r) == [e3]
        assert "total_partial" not in r["result"]
        r = await c.query("getChangelogEntries", {})
        assert "total" not in r["result"]

        # bad values: refused, and the connection still answers
        for bad in ({"sort": "newest"}, {"sort": 1}, {"sort": ["activity"]},
                    {"count": "true"}, {"count": 1}, {"sort": "activity", "cursor": 0}):
            r = await c.query("getChangelogEntries", bad)
            assert not r["ok"] and r["error"]["code"] == "bad_request", (bad, r)
        assert (await c.request({"op": "ping"}))["ok"]
        await c.close()

    run(go())
