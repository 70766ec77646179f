"""An attacker's review of the HTTP surface (docs/http-api.md "Limits"),
each bound tried through the real binary:

- a member whose API replies are left unread holds at most --max-queue
  (plus one answer) and gets 503 itself; the API and the websocket keep
  answering everyone else, and the server's memory stays in its bound
  (it used to answer every bystander 503 "busy");
- POST /session takes from the user's request budget (a POST closes its
  connection, so no connection budget ever bounded it): a sign-in flood
  gets 429 and makes no sessions;
- the sessions journal stays bounded however many sign-ins replace each
  other.

Nothing here asserts a time."""
import os
import re
import time

from conftest import Client, run
from http_util import call, read_all, tls_raw
from test_server_budget import MIB, bound, reset_peak, seeded, status, within

V1 = "/api/v1"
CSRF = {"X-Requested-With": "test"}


def unread_page(server, token, limit=500):
    """A TLS connection that asks for a big page and never reads it."""
    c = tls_raw(server, rcvbuf=4096)
    c.sendall(("GET %s/entries?limit=%d HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s"
               "\r\n\r\n" % (V1, limit, token)).encode())
    return c


def metric(server, name):
    _, _, body = server.get("/metrics")
    m = re.search(r"^%s (\d+)$" % re.escape(name), body.decode(), re.M)
    return int(m.group(1))


def test_unread_replies_of_one_member_do_not_make_the_api_busy(tmpdir_path):
    server, mt, bt = seeded(tmpdir_path, 500, ["--max-memory", "64M"])
    try:
        base = status(server.proc.pid)["VmRSS"]
        reset_peak(server.proc.pid)
        socks = [unread_page(server, mt) for _ in range(12)]
        # the member's own requests are refused once its unread replies
        # reach --max-queue (8 MiB: one ~16 MiB page is enough)
        deadline = time.monotonic() + 60
        while True:
            st, h, r = call(server, "GET", V1 + "/stats", mt)
            if st == 503 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert st == 503 and "still unread" in r["error"]["message"], r
        assert r["error"]["code"] == "unavailable" and h["retry-after"] == "1"
        # everyone else is served: HTTP queries, a page, a command, the socket
        for _ in range(3):
            assert call(server, "GET", V1 + "/stats", bt)[0] == 200
            st, _, r = call(server, "GET", V1 + "/entries?limit=5", bt)
            assert st == 200 and len(r["result"]["entries"]) == 5, r
        st, _, r = call(server, "POST", V1 + "/commands/createEntry", bt,
                        {"kind": "fix", "title": "bystander"})
        assert st == 200 and r["ok"], r

        async def ws():
            c = await Client.connect(server, bt)
            r = await c.query("getChangelogEntries", {"limit": 20})
            assert r["ok"] and len(r["result"]["entries"]) == 20
            assert (await c.request({"op": "ping"}))["ok"]
            await c.close()
        run(ws())
        peak = status(server.proc.pid)["VmHWM"]
        print("\n  12 unread pages: RSS %.0f MB before, peak %.0f MB (bound %.0f)"
              % (base / MIB, peak / MIB, (bound(server, base) or 0) / MIB))
        assert within(server, base, peak), (base, peak)
        # once its connections are gone, the member is served again
        for c in socks:
            c.close()
        deadline = time.monotonic() + 60
        while call(server, "GET", V1 + "/stats", mt)[0] != 200:
            assert time.monotonic() < deadline, "the member's held bytes were not released"
            time.sleep(0.1)
    finally:
        assert server.stop() == 0


def test_a_sign_in_flood_takes_from_the_user_budget(make_server):
    server = make_server("--user-rate", "1", "--user-burst", "10")
    t = server.admin_token
    t0 = time.monotonic()
    sts, last = [], None
    for _ in range(30):
        last = call(server, "POST", "/session", body={"token": t}, headers=CSRF)
        sts.append(last[0])
    refills = int(time.monotonic() - t0) + 1
    made = sts.count(200)
    assert 10 <= made <= 10 + refills, sts
    assert set(sts) == {200, 429}, sts
    st, h, r = last
    assert st == 429 and r["error"]["code"] == "rate_limited", last
    assert int(h["retry-after"]) >= 1 and "set-cookie" not in h, h
    assert metric(server, "changelogd_browser_sessions") == made
    # a bad token names no user: 401, not 429
    st, _, r = call(server, "POST", "/session", body={"token": "clg_" + "x" * 43},
                    headers=CSRF)
    assert st == 401, r


def test_the_sessions_journal_stays_bounded(make_server):
    """Sign-ins past the per-user cap replace the oldest session: the
    table holds 32, and the journal is rewritten whenever it holds more
    than twice the live sessions plus 1024 lines."""
    server = make_server("--user-rate", "100000", "--user-burst", "100000")
    t = server.admin_token
    path = os.path.join(server.data, "sessions")
    most = 0
    for i in range(700):
        st, _, _ = call(server, "POST", "/session", body={"token": t}, headers=CSRF)
        assert st == 200
        with open(path) as f:
            most = max(most, sum(1 for _ in f))
    live = metric(server, "changelogd_browser_sessions")
    assert live == 32
    # 700 sign-ins wrote 1,368 records; the journal never held more than
    # its rule allows (+ the epoch line)
    assert most <= 2 * live + 1024 + 2, most
    with open(path) as f:
        lines = f.read().splitlines()
    assert len(lines) < 700, len(lines)


def test_query_strings_with_empty_pieces_and_bad_bytes(make_server):
    server = make_server("--rate", "10000", "--burst", "10000")
    t = server.admin_token
    for i in range(3):
        assert call(server, "POST", V1 + "/commands/createEntry", t,
                    {"kind": "fix", "title": "t%d" % i})[0] == 200
    # empty pieces are skipped, never the parameters after them (a leading
    # "&" used to hide every parameter that followed)
    for q in ["limit=1", "&limit=1", "&&&limit=1", "limit=1&", "limit=1&&", "kind=fix&&limit=1",
              "&" * 60 + "limit=1"]:
        st, _, r = call(server, "GET", V1 + "/entries?" + q, t)
        assert st == 200 and len(r["result"]["entries"]) == 1, (q, r)
    st, _, r = call(server, "GET", V1 + "/entries?&&nosuch=1", t)
    assert st == 400 and "nosuch" in r["error"]["message"], r
    # %-decoded bytes that are not UTF-8, in a value or a name: 400 (the
    # connection used to be dropped unanswered)
    for q in ["q=%ff%fe", "%ff=1", "q=%ed%a0%80", "kind=fix&title=%c3"]:
        st, _, r = call(server, "GET", V1 + "/entries?" + q, t)
        assert st == 400 and r["error"]["code"] == "bad_request" and \
            "UTF-8" in r["error"]["message"], (q, r)
    # more than 64 parameters: 400 before any work
    st, _, r = call(server, "GET", V1 + "/entries?" + "&".join(["kind=fix"] * 70), t)
    assert st == 400 and "at most 64" in r["error"]["message"], r
    assert call(server, "GET", V1 + "/stats", t)[0] == 200


def test_idempotency_keys_that_are_not_utf8(server):
    t = server.admin_token
    body = {"kind": "fix", "title": "keyed"}
    for key in [b"\xff\xfe", b"a\xc3", b"\xed\xa0\x80"]:
        st, _, r = call(server, "POST", V1 + "/commands/createEntry", t, body,
                        headers={"Idempotency-Key": key})
        assert st == 400 and "UTF-8" in r["error"]["message"], (key, r)
    # a UTF-8 key works, and answers again for a retry
    h = {"Idempotency-Key": "d\u00e9ploy-1".encode()}
    first = call(server, "POST", V1 + "/commands/createEntry", t, body, headers=h)
    again = call(server, "POST", V1 + "/commands/createEntry", t, body, headers=h)
    assert first[0] == again[0] == 200 and first[2]["entry"] == again[2]["entry"], (first, again)
    # nothing but that one entry was made
    assert call(server, "GET", V1 + "/stats", t)[2]["result"]["entries"] == 1


def test_huge_headers_and_stalled_requests(make_server):
    """Headers beyond 16 KiB are dropped by lws; requests that stop halfway
    through their headers hold nothing past --handshake-timeout, and while
    they wait, everyone else is served."""
    server = make_server("--handshake-timeout", "2")
    t = server.admin_token
    c = tls_raw(server)
    c.sendall(("GET %s/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nX-Pad: %s\r\n"
               "\r\n" % (V1, t, "a" * 20000)).encode())
    assert not read_all(c).startswith(b"HTTP/1.1 200")
    c.close()
    # 16 KiB of headers in all still fit (a browser with big cookies)
    st, _, r = call(server, "GET", V1 + "/stats", t, headers={"X-Pad": "a" * 12000})
    assert st == 200, r
    stalled = []
    for _ in range(100):
        s = tls_raw(server)
        s.sendall(("GET %s/stats HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n"
                   % (V1, t)).encode())
        stalled.append(s)
    assert call(server, "GET", V1 + "/stats", t)[0] == 200

    async def ws():
        c = await Client.connect(server, t)
        assert (await c.request({"op": "ping"}))["ok"]
        await c.close()
    run(ws())
    # the server closes each of them unanswered (they would wait forever)
    for s in stalled:
        assert read_all(s) == b""
        s.close()
    assert call(server, "GET", V1 + "/stats", t)[0] == 200
