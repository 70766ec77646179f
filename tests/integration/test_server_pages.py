"""Pages put together from the entry text cache, through the real binary
(issue 15 item 4, issue 21; docs/protocol.md "Work budget, partial pages",
docs/benchmarks.md "Pages"):

- after a restart (no entry text cached) a page of 200 entries of 32 KiB is
  made over many batches, arrives whole (in websocket fragments: the
  client reassembles them) and says the same as the same page asked again
  once every text is cached, and as the seed form; a bystander's pings
  meanwhile are all answered;
- an HTTP API request cannot wait: a cold big page ends where the batch's
  budget did, partial with at least one entry, and following next_cursor
  visits every entry exactly once;
- an edit, a status change and a comment show at once in the next page
  (a cached text is never served for a changed entry).

Nothing here asserts a time."""
import asyncio
import json

from conftest import Client, run
from http_util import call
from test_server_budget import MIB, seeded


def test_a_cold_big_page_arrives_whole(tmpdir_path):
    server, mt, bt = seeded(tmpdir_path, 200)
    try:
        async def go():
            m = await Client.connect(server, mt, max_size=64 * MIB)
            bob = await Client.connect(server, bt)
            page = m.send_batch([{"op": "query", "name": "getChangelogEntries",
                                  "params": {"limit": 500}}])[0]
            pongs = [await bob.request({"op": "ping"}) for _ in range(5)]
            cold = await m.wait_reply(page, timeout=120)
            warm = await m.query("getChangelogEntries", {"limit": 500}, timeout=120)
            await m.ws.send(json.dumps({"stored_query_name": "getChangelogEntries"}))
            seed = json.loads(await asyncio.wait_for(m.ws.recv(), 120))   # bare, no id
            assert all(p["ok"] and p["pong"] for p in pongs)
            assert cold["ok"], cold
            assert len(cold["result"]["entries"]) == 200
            assert "partial" not in cold["result"]
            assert cold["result"]["next_cursor"] is None
            assert cold["result"] == warm["result"]
            assert [e["id"] for e in cold["result"]["entries"]] == list(range(200, 0, -1))
            assert all(len(e["body"]) == 32768 for e in cold["result"]["entries"])
            assert seed == cold["result"]["entries"]
            await m.close()
            await bob.close()
        run(go(), timeout=300)
    finally:
        assert server.stop() == 0


def test_an_http_page_ends_early_when_cold_and_continues(tmpdir_path):
    server, mt, _ = seeded(tmpdir_path, 200)
    try:
        seen, cursor, partials = [], None, 0
        for _ in range(300):
            path = "/api/v1/entries?limit=500" + ("&cursor=%d" % cursor if cursor else "")
            st, _, body = call(server, "GET", path, token=mt)
            assert st == 200, (st, body)
            res = body.get("result", body)
            assert res["entries"] or not res.get("partial"), res
            seen += [e["id"] for e in res["entries"]]
            if res.get("partial"):
                partials += 1
                assert len(res["entries"]) >= 1
            cursor = res["next_cursor"]
            if cursor is None:
                break
        assert partials >= 1          # the first page could not be made whole at once
        assert seen == list(range(200, 0, -1))
        # now every text is cached: one whole page
        st, _, body = call(server, "GET", "/api/v1/entries?limit=500", token=mt)
        res = body.get("result", body)
        assert st == 200 and len(res["entries"]) == 200 and "partial" not in res
    finally:
        assert server.stop() == 0


def test_a_changed_entry_shows_in_the_next_page(server):
    async def go():
        c = await Client.connect(server, server.admin_token)
        for i in range(3):
            r = await c.command("createEntry", {"title": "t%d" % i, "body": "b \"%d\"" % i,
                                                "kind": "fix"})
            assert r["ok"], r
        first = (await c.query("getChangelogEntries"))["result"]["entries"]
        assert [e["title"] for e in first] == ["t2", "t1", "t0"]
        assert (await c.command("editEntry", {"entry": 2, "title": "edited \\ \"2\""}))["ok"]
        assert (await c.command("setStatus", {"entry": 1, "status": "resolved"}))["ok"]
        assert (await c.command("addComment", {"entry": 3, "body": "hi"}))["ok"]
        after = {e["id"]: e for e in (await c.query("getChangelogEntries"))["result"]["entries"]}
        assert after[2]["title"] == "edited \\ \"2\"" and after[2]["version"] == 2
        assert after[1]["status"] == "resolved"
        assert after[3]["comments"] == 1 and after[3]["last_activity"] >= after[3]["updated"]
        again = (await c.query("getChangelogEntries"))["result"]["entries"]
        assert {e["id"]: e for e in again} == after
        await c.close()
    run(go())
