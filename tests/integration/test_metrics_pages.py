"""/metrics for the entry text cache, page waits and presence, read after
driving each through the real binary (docs/operations.md, "HTTP endpoints
and metrics"):

- after a restart a WebSocket page of 500 cold entries of 32 KiB waits for
  later batches (changelogd_page_waits_total) and is not partial; the HTTP
  API cannot wait, so its cold page ends early
  (changelogd_page_partial_total); 540 such entries outgrow the 16 MiB
  cache, so texts are evicted and every text made is either held or
  evicted;
- changelogd_presence_users follows the users announced present and
  changelogd_presence_pushes_total counts the push frames watchers got.

Counts only, never a time."""
import re

from conftest import Client, new_member, run
from http_util import call
from test_presence_unread import join, presence_pushes, wait_presence
from test_server_budget import MIB, seeded


def metric(server, name):
    body = server.get("/metrics")[2].decode()
    m = re.search(r"^%s (\d+)$" % re.escape(name), body, re.M)
    assert m, body
    return int(m.group(1))


def texts(server):
    return {k: metric(server, "changelogd_entry_texts" + k)
            for k in ("", "_bytes", "_made_total", "_hits_total", "_evicted_total")}


def test_text_cache_and_page_metrics(tmpdir_path):
    server, mt, _ = seeded(tmpdir_path, 540)
    try:
        t = texts(server)
        assert t == {"": 0, "_bytes": 0, "_made_total": 0, "_hits_total": 0,
                     "_evicted_total": 0}
        assert metric(server, "changelogd_page_waits_total") == 0
        assert metric(server, "changelogd_page_partial_total") == 0

        async def ws_page():
            m = await Client.connect(server, mt, max_size=64 * MIB)
            r = await m.query("getChangelogEntries", {"limit": 500}, timeout=120)
            assert r["ok"] and len(r["result"]["entries"]) == 500, r.get("error")
            assert "partial" not in r["result"]
            await m.close()
        run(ws_page(), timeout=300)
        assert metric(server, "changelogd_page_waits_total") >= 1
        assert metric(server, "changelogd_page_partial_total") == 0
        t = texts(server)
        assert t[""] == 500 and t["_made_total"] == 500 and t["_evicted_total"] == 0
        assert 500 * 32768 < t["_bytes"] <= 16 * MIB

        # the HTTP API walks all 540: the 500 are reused, the 40 older are
        # cold (more than one batch's 512 KiB), and the cache overflows
        seen, cursor = [], None
        for _ in range(300):
            path = "/api/v1/entries?limit=500" + ("&cursor=%d" % cursor if cursor else "")
            st, _, body = call(server, "GET", path, token=mt)
            assert st == 200, (st, body)
            res = body.get("result", body)
            seen += [e["id"] for e in res["entries"]]
            cursor = res["next_cursor"]
            if cursor is None:
                break
        assert seen == list(range(540, 0, -1))
        assert metric(server, "changelogd_page_partial_total") >= 1
        t = texts(server)
        assert t["_made_total"] >= 540
        assert t["_evicted_total"] >= 1
        assert t["_made_total"] == t[""] + t["_evicted_total"]   # nothing changed
        assert t["_hits_total"] >= 500
        assert t["_bytes"] <= 16 * MIB
    finally:
        assert server.stop() == 0


def test_presence_metrics(server):
    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, alice_tok = await new_member(admin, "alice")
        assert metric(server, "changelogd_presence_users") == 0
        assert metric(server, "changelogd_presence_pushes_total") == 0
        w1 = await join(server, server.admin_token)
        await wait_presence(w1, lambda p: 1 in p)
        assert metric(server, "changelogd_presence_users") == 1
        w2 = await join(server, server.admin_token, hidden=True)
        alice = await join(server, alice_tok)
        await wait_presence(w1, lambda p: len(p) == 2)
        await wait_presence(w2, lambda p: len(p) == 2)
        await wait_presence(alice, lambda p: len(p) == 2)
        assert metric(server, "changelogd_presence_users") == 2   # hidden w2 not a third
        await alice.close()
        await wait_presence(w1, lambda p: len(p) == 1)
        await wait_presence(w2, lambda p: len(p) == 1)
        assert metric(server, "changelogd_presence_users") == 1
        # every push frame each watcher read (alice read hers before she left)
        got = len(presence_pushes(w1)) + len(presence_pushes(w2)) + len(presence_pushes(alice))
        assert metric(server, "changelogd_presence_pushes_total") == got
        await w1.close()
        await w2.close()
        await admin.close()
    run(go(), timeout=60)
