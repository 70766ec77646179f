"""One request budget per user over the websocket and the HTTP API
(net/ratelimit.c; docs/protocol.md "Limits", docs/http-api.md "Limits",
docs/operations.md --user-rate): a member's websocket requests and its HTTP
API requests draw from the same bucket, so using both never gives twice the
budget; the HTTP side answers 429 with Retry-After, the socket the
rate_limited error; another user is unaffected.

No time is asserted: the refills a slow machine allows (--user-rate 1, one
a second) are measured and added to every upper bound."""
import time

from conftest import Client, new_member, run
from http_util import call, connect

V1 = "/api/v1"
BURST = 100


def pings(n):
    return [{"op": "ping"}] * n


def test_websocket_and_http_share_one_user_budget(make_server):
    # per connection: the defaults (100/s, burst 200), larger than the user's
    server = make_server("--user-rate", "1", "--user-burst", str(BURST))

    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, mt = await new_member(admin, "mallory")
        _, bt = await new_member(admin, "bob")
        await admin.close()
        ws = await Client.connect(server, mt)
        t0 = time.monotonic()
        # the socket spends 80 of the 100
        ids = ws.send_batch(pings(80))
        ws_ok = sum([(await ws.wait_reply(rid))["ok"] for rid in ids])
        assert ws_ok == 80
        # HTTP (one keep-alive connection, whose own burst is 200) gets the
        # rest, not a budget of its own
        conn = connect(server)
        http_ok, last = 0, None
        for _ in range(2 * BURST):
            last = call(server, "GET", V1 + "/stats", mt, conn=conn)
            if last[0] != 200:
                break
            http_ok += 1
        conn.close()
        refills = int(time.monotonic() - t0) + 1
        st, h, r = last
        assert st == 429, last
        assert r["error"]["code"] == "rate_limited" and "this user" in r["error"]["message"], r
        assert int(h["retry-after"]) >= 1, h
        # separate budgets would have let 100 through
        assert BURST - ws_ok <= http_ok <= BURST - ws_ok + refills, (http_ok, refills)
        # and now the socket is refused too: HTTP spent its budget
        t1 = time.monotonic()
        ids = ws.send_batch(pings(20))
        replies = [await ws.wait_reply(rid) for rid in ids]
        refills = int(time.monotonic() - t1) + 1
        ok = sum(x["ok"] for x in replies)
        refused = [x for x in replies if not x["ok"]]
        assert ok <= refills, (ok, refills)
        assert refused and all(x["error"]["code"] == "rate_limited" and
                               "this user" in x["error"]["message"] for x in refused), refused
        # a new websocket of the same token gets no new budget
        ws2 = await Client.connect(server, mt)
        t2 = time.monotonic()
        ids = ws2.send_batch(pings(20))
        ok = sum([(await ws2.wait_reply(rid))["ok"] for rid in ids])
        assert ok <= int(time.monotonic() - t2) + 1 + refills, ok
        # another user is unaffected, on both
        bob = await Client.connect(server, bt)
        ids = bob.send_batch(pings(50))
        assert [(await bob.wait_reply(rid))["ok"] for rid in ids] == [True] * 50
        sts = [call(server, "GET", V1 + "/stats", bt)[0] for _ in range(40)]
        assert sts == [200] * 40, sts
        for c in (ws, ws2, bob):
            await c.close()
        print("\n  one budget of %d: the socket got %d, HTTP %d" % (BURST, ws_ok, http_ok))
    run(go())


def test_http_first_then_the_socket(make_server):
    """The other order: HTTP commands spend the budget, the socket is then
    refused, and an HTTP request refused 429 commits nothing."""
    server = make_server("--user-rate", "1", "--user-burst", "30")

    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, mt = await new_member(admin, "mallory")
        t0 = time.monotonic()
        made, sts = 0, []
        for i in range(60):
            st, h, r = call(server, "POST", V1 + "/commands/createEntry", mt,
                            {"kind": "fix", "title": "t%d" % i})
            sts.append(st)
            made += st == 200
            if st == 429:
                assert r["error"]["code"] == "rate_limited", r
                assert int(h["retry-after"]) >= 1
        refills = int(time.monotonic() - t0) + 1
        assert 30 <= made <= 30 + refills, (made, sts)
        # what was refused was not applied
        stats = await admin.query("getStats")
        assert stats["result"]["entries"] == made, stats
        ws = await Client.connect(server, mt)
        t1 = time.monotonic()
        ids = ws.send_batch(pings(10))
        ok = sum([(await ws.wait_reply(rid))["ok"] for rid in ids])
        assert ok <= int(time.monotonic() - t1) + 1 + refills, ok
        await ws.close()
        await admin.close()
    run(go())
