"""test_http_api.py - the HTTP API (docs/http-api.md) against the real server.

Each answer is checked against the websocket protocol's answer to the same
request (same JSON object), commands against what the log then holds and
what a websocket subscriber is pushed; every status has a request that
makes it; every limit (body size, query string, rate, memory) is tried.
Clients: Python http.client over TLS, raw sockets, curl, and PHP
(file_get_contents with a stream context: no websocket library).
"""
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse

import pytest

from conftest import Client, Server, new_member, run, tls_context, sanitizer_reports
from http_util import call, connect, read_all, tls_raw

V1 = "/api/v1"


def ws_result(server, token, name, params=None):
    async def go():
        c = await Client.connect(server, token)
        r = await c.query(name, params or {})
        await c.close()
        return r
    return run(go())


def member(server, name):
    async def go():
        c = await Client.connect(server, server.admin_token)
        uid, tok = await new_member(c, name)
        await c.close()
        return uid, tok
    return run(go())


def create(server, token, title, key=None, **extra):
    h = {"Idempotency-Key": key} if key else None
    body = {"kind": "fix", "title": title}
    body.update(extra)
    return call(server, "POST", V1 + "/commands/createEntry", token, body, headers=h)


def test_queries_answer_what_the_websocket_answers(server):
    t = server.admin_token
    st, _, r = create(server, t, "First")
    assert st == 200 and r["ok"] and r["entry"] == 1, r
    st, _, r = call(server, "POST", V1 + "/commands/addComment", t,
                    {"entry": 1, "body": "a comment"})
    assert st == 200 and r["ok"], r
    for path, name, params in [
            ("/entries", "getChangelogEntries", {}),
            ("/entries/1", "getEntry", {"entry": 1}),
            ("/entries/1/history", "getEntryHistory", {"entry": 1}),
            ("/users", "getUsers", {}),
            ("/stats", "getStats", {}),
            ("/queries/whoami", "whoami", {}),
            ("/queries/getEntry?entry=1", "getEntry", {"entry": 1})]:
        st, h, got = call(server, "GET", V1 + path, t)
        want = ws_result(server, t, name, params)
        want.pop("id", None)
        assert st == 200, (path, got)
        assert got == want, path
        assert h["content-type"] == "application/json"
        assert h["etag"] == '"%s-%d"' % (got["epoch"], got["at"])


def test_query_string_params_lists_and_types(server):
    t = server.admin_token
    for i, kind in enumerate(["fix", "change", "feature", "fix"]):
        assert create(server, t, "Title a&b %d" % i, kind=kind)[0] == 200
    st, _, r = call(server, "GET", V1 + "/entries?kind=fix&kind=feature&limit=2", t)
    assert st == 200, r
    assert [e["id"] for e in r["result"]["entries"]] == [4, 3]
    assert r["result"]["next_cursor"] == 3
    st, _, r = call(server, "GET", V1 + "/entries?kind=fix&kind=feature&limit=2&cursor=3", t)
    assert [e["id"] for e in r["result"]["entries"]] == [1]
    st, _, r = call(server, "GET", V1 + "/entries?kind=change", t)
    assert [e["id"] for e in r["result"]["entries"]] == [2]
    # percent-encoding: "&" and a space inside a value
    q = urllib.parse.urlencode({"q": "a&b 2"})
    st, _, r = call(server, "GET", V1 + "/entries?" + q, t)
    assert st == 200 and [e["id"] for e in r["result"]["entries"]] == [3], r
    # the same checks as on the socket: unknown parameter, wrong type, range
    for qs, word in [("bogus=1", "bogus"), ("limit=ten", "limit"), ("limit=0", "limit"),
                     ("kind=nope", "kind"), ("limit=1&limit=2", "twice")]:
        st, _, r = call(server, "GET", V1 + "/entries?" + qs, t)
        assert st == 400 and r["error"]["code"] == "bad_request", (qs, r)
        assert word in r["error"]["message"], (qs, r)
    many = "&".join("kind=fix" for _ in range(65))
    st, _, r = call(server, "GET", V1 + "/entries?" + many, t)
    assert st == 400 and "too many" in r["error"]["message"], r
    st, _, r = call(server, "GET", V1 + "/entries?q=" + "x" * 1100, t)
    assert st == 413 and r["error"]["code"] == "too_large", r


def test_a_list_parameter_repeated_too_often_says_so(server):
    """status/kind list at most 16 values, repeats included: over HTTP (a
    repeated parameter) and over the socket (an array), the refusal names
    the bound, not the type."""
    t = server.admin_token
    assert create(server, t, "one")[0] == 200
    for key, val in [("status", "open"), ("kind", "fix")]:
        st, _, r = call(server, "GET", V1 + "/entries?" + "&".join(
            "%s=%s" % (key, val) for _ in range(16)), t)
        assert st == 200 and [e["id"] for e in r["result"]["entries"]] == [1], r
        for n in (17, 60):
            st, _, r = call(server, "GET", V1 + "/entries?" + "&".join(
                "%s=%s" % (key, val) for _ in range(n)), t)
            assert st == 400 and r["error"]["code"] == "bad_request", (n, r)
            assert r["error"]["message"] == \
                '"%s" lists at most 16 values (got %d)' % (key, n), r
        r = ws_result(server, t, "getChangelogEntries", {key: [val] * 17})
        assert not r["ok"] and r["error"]["code"] == "bad_request", r
        assert r["error"]["message"] == '"%s" lists at most 16 values (got 17)' % key, r
        r = ws_result(server, t, "getChangelogEntries", {key: [val] * 16})
        assert r["ok"] and [e["id"] for e in r["result"]["entries"]] == [1], r
        r = ws_result(server, t, "getChangelogEntries", {key: []})
        assert not r["ok"] and "non-empty array" in r["error"]["message"], r
    assert server.get("/healthz")[0] == 200


def test_commands_reply_after_commit_and_push(server):
    t = server.admin_token

    async def go():
        sub = await Client.connect(server, t)
        r = await sub.request({"op": "subscribe"})
        assert r["ok"]
        st, _, rep = create(server, t, "Via HTTP", key="deploy-1")
        assert st == 200 and rep["ok"], rep
        pushes = await sub.wait_pushes(1)
        assert pushes[0]["seq"] == rep["seq"]
        await sub.close()
        return rep
    rep = run(go())
    # the reply means durable: a restart still has it
    server.stop()
    server.start()
    st, _, r = call(server, "GET", V1 + "/entries/%d" % rep["entry"], t)
    assert st == 200 and r["result"]["entry"]["title"] == "Via HTTP"


def test_idempotency_key_is_the_cmd_id(server):
    t = server.admin_token
    st, _, a = create(server, t, "Once", key="k-1")
    st2, _, b = create(server, t, "Once", key="k-1")
    assert st == st2 == 200 and a["seq"] == b["seq"] and a["entry"] == b["entry"]
    # the websocket sees the same cmd_id as already applied
    async def go():
        c = await Client.connect(server, t)
        r = await c.command("createEntry", {"kind": "fix", "title": "Once"}, cmd_id="k-1")
        await c.close()
        return r
    assert run(go())["seq"] == a["seq"]
    st, _, r = call(server, "GET", V1 + "/stats", t)
    assert r["result"]["entries"] == 1
    st, _, r = create(server, t, "Bad key", key="x" * 129)
    assert st == 400 and r["error"]["code"] == "bad_request", r


def test_each_status(server):
    t = server.admin_token
    uid, mt = member(server, "bob")
    assert create(server, t, "Entry")[0] == 200
    cases = [
        # (method, path, token, body, status, code)
        ("GET", "/entries", None, None, 401, "unauthorized"),
        ("GET", "/entries", "clg_" + "x" * 43, None, 401, "unauthorized"),
        ("POST", "/commands/createUser", mt, {"name": "eve"}, 403, "forbidden"),
        ("GET", "/entries/99", t, None, 404, "not_found"),
        ("GET", "/nothing", t, None, 404, "not_found"),
        ("GET", "/entries/x1", t, None, 404, "not_found"),
        ("POST", "/commands/noSuchCommand", t, {}, 404, "not_found"),
        ("POST", "/commands/createUser", t, {"name": "bob"}, 409, "conflict"),
        ("POST", "/commands/setStatus", t, {"entry": 1, "status": "open"}, 409,
         "invalid_transition"),
        ("POST", "/commands/createEntry", t, {"kind": "fix"}, 400, "bad_request"),
        ("POST", "/commands/createEntry", t, {"kind": "fix", "title": "t" * 301}, 413,
         "too_large"),
    ]
    for method, path, tok, body, status, code in cases:
        st, h, r = call(server, method, V1 + path, tok, body)
        assert (st, r["error"]["code"]) == (status, code), (path, r)
        assert r["ok"] is False
        if st == 401:
            assert h["www-authenticate"] == "Bearer"
    # malformed and non-object bodies
    for raw in [b"{", b"[1]", b'{"a":1,"a":2}']:
        st, _, r = call(server, "POST", V1 + "/commands/createEntry", t, raw=raw)
        assert st == 400 and r["error"]["code"] == "bad_request", (raw, r)
    # an empty body is {} params
    st, _, r = call(server, "POST", V1 + "/commands/createEntry", t, raw=b"")
    assert st == 400 and "title" in r["error"]["message"], r


def test_etag_and_if_none_match(server):
    t = server.admin_token
    st, h, r = call(server, "GET", V1 + "/stats", t)
    etag = h["etag"]
    st, h2, r2 = call(server, "GET", V1 + "/stats", t, headers={"If-None-Match": etag})
    assert st == 304 and r2 is None and h2["etag"] == etag
    assert create(server, t, "Moves the log")[0] == 200
    st, h3, r3 = call(server, "GET", V1 + "/stats", t, headers={"If-None-Match": etag})
    assert st == 200 and h3["etag"] != etag and r3["result"]["entries"] == 1


def test_keep_alive_connection_serves_many(server):
    t = server.admin_token
    c = connect(server)
    for i in range(5):
        st, _, r = call(server, "POST", V1 + "/commands/createEntry", t,
            {"kind": "fix", "title": "ka %d" % i}, conn=c)
        assert st == 200, r
        st, _, r = call(server, "GET", V1 + "/stats", t, conn=c)
        assert r["result"]["entries"] == i + 1
    c.close()


def raw_request(server, data, timeout=10):
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    if not server.plain:
        sock = tls_context().wrap_socket(sock, server_hostname="localhost")
    sock.sendall(data)
    out = b""
    try:
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            out += chunk
    except (socket.timeout, ConnectionResetError):
        out += b"<timeout>"
    sock.close()
    return out


def test_body_limits(make_server):
    s = make_server("--max-msg", "4096")
    t = s.admin_token
    # over the cap by Content-Length alone: refused before any body is read
    out = raw_request(s, ("POST %s/commands/createEntry HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer %s\r\nContent-Length: 1000000000\r\n\r\n"
                          % (V1, t)).encode())
    assert out.startswith(b"HTTP/1.1 413"), out[:200]
    assert b'"too_large"' in out and b"<timeout>" not in out   # and it closed
    st, _, r = create(s, t, "big", body="z" * 5000)
    assert st == 413 and r["error"]["code"] == "too_large", r
    st, _, r = create(s, t, "fits", body="z" * 3000)
    assert st == 200, r
    # a chunked body is refused (a length is needed to bound it first)
    out = raw_request(s, ("POST %s/commands/createEntry HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                          "2\r\n{}\r\n0\r\n\r\n" % (V1, t)).encode())
    assert out.startswith(b"HTTP/1.1 411"), out[:200]
    # no Content-Length at all
    out = raw_request(s, ("POST %s/commands/createEntry HTTP/1.1\r\nHost: x\r\n"
                          "Authorization: Bearer %s\r\n\r\n" % (V1, t)).encode())
    assert out.startswith(b"HTTP/1.1 400"), out[:200]
    # a refused body is never read as a request: the connection closes
    inner = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
    out = raw_request(s, ("POST %s/commands/createEntry HTTP/1.1\r\nHost: x\r\n"
                          "Content-Length: %d\r\n\r\n" % (V1, len(inner))).encode() + inner)
    assert out.startswith(b"HTTP/1.1 401") and out.count(b"HTTP/1.1") == 1, out
    assert s.get("/healthz")[0] == 200


def test_slow_body_is_dropped(make_server):
    s = make_server("--handshake-timeout", "1")
    sock = tls_raw(s, timeout=30)
    sock.sendall(("POST %s/commands/createEntry HTTP/1.1\r\nHost: x\r\n"
                  "Authorization: Bearer %s\r\nContent-Length: 100\r\n\r\n{"
                  % (V1, s.admin_token)).encode())
    got = read_all(sock)
    assert not got.startswith(b"HTTP/1.1 200")     # closed, nothing applied
    assert call(s, "GET", V1 + "/stats", s.admin_token)[2]["result"]["entries"] == 0


def test_rate_limit_429_with_retry_after(make_server):
    # rate 1/s, burst 3, per connection and per user: requests in a row run
    # out of the burst at once (a slow machine may refill a token now and
    # then, never 3 in a row); each call below is a new connection, so the
    # first 429s are the user's (shared with its websockets:
    # test_user_budget.py)
    s = make_server("--rate", "1", "--burst", "3", "--user-rate", "1", "--user-burst", "3")
    t = s.admin_token
    sts = []
    while 429 not in sts and len(sts) < 50:
        st, h, r = call(s, "GET", V1 + "/stats", t)
        sts.append(st)
    assert sts[:3] == [200, 200, 200] and sts[-1] == 429, sts
    assert r["error"]["code"] == "rate_limited" and int(h["retry-after"]) >= 1, r
    # per user: new connections do not get new budgets (each has a full one)
    sts = [call(s, "POST", V1 + "/commands/createEntry", t,
                {"kind": "fix", "title": "x"})[0] for _ in range(3)]
    assert 429 in sts, sts
    # per connection too: a keep-alive connection of an unknown token
    c = connect(s)
    sts = []
    while 429 not in sts and len(sts) < 50:
        sts.append(call(s, "GET", V1 + "/stats", "clg_nobody", conn=c)[0])
    c.close()
    assert sts[:3] == [401, 401, 401] and sts[-1] == 429, sts


def test_unavailable_503_when_the_log_is_full(tmpdir_path):
    s = Server(os.path.join(tmpdir_path, "data"),
               ["--rate", "100000", "--burst", "100000", "--map-size", "256K"]).start()
    try:
        t = s.admin_token
        refused = None
        for i in range(400):
            st, h, r = create(s, t, "t%d" % i, key="f%d" % i, body="z" * 3000)
            if st != 200:
                refused = (st, h, r)
                break
        assert refused, "the map never filled"
        st, h, r = refused
        assert st == 503 and r["error"]["code"] == "unavailable", r
        assert h["retry-after"] == "1"
        st, _, r = call(s, "GET", V1 + "/stats", t)
        assert st == 200 and r["result"]["entries"] == i
    finally:
        assert s.stop() == 0
        assert not sanitizer_reports(s.log())


def test_curl(server):
    t = server.admin_token
    p = subprocess.run(["curl", "-sk", "-H", "Authorization: Bearer " + t,
                        "-H", "Idempotency-Key: curl-1", "--data", '{"kind":"change","title":"c"}',
                        server.http + V1 + "/commands/createEntry"],
                       capture_output=True, text=True, timeout=30)
    r = json.loads(p.stdout)
    assert r["ok"] and r["entry"] == 1, p
    p = subprocess.run(["curl", "-sk", "-w", "\n%{http_code}", "-H", "Authorization: Bearer " + t,
                        server.http + V1 + "/entries?kind=change"],
                       capture_output=True, text=True, timeout=30)
    body, code = p.stdout.rsplit("\n", 1)
    assert code == "200" and json.loads(body)["result"]["entries"][0]["title"] == "c"


PHP = r'''<?php
$base = $argv[1]; $token = $argv[2];
$tls = ["verify_peer" => false, "verify_peer_name" => false];
function api($method, $url, $token, $tls, $body = null) {
    $h = "Authorization: Bearer $token\r\n";
    if ($body !== null) $h .= "Content-Type: application/json\r\nIdempotency-Key: php-1\r\n";
    $ctx = stream_context_create(["http" => ["method" => $method, "header" => $h,
        "content" => $body === null ? "" : json_encode($body), "ignore_errors" => true],
        "ssl" => $tls]);
    $text = file_get_contents($url, false, $ctx);
    preg_match('{^HTTP/1\.1 (\d+)}', $http_response_header[0], $m);
    return [(int)$m[1], json_decode($text, true)];
}
[$st, $r] = api("POST", "$base/api/v1/commands/createEntry", $token, $tls,
                ["kind" => "feature", "title" => "From PHP"]);
echo "post $st {$r['entry']}\n";
[$st, $r] = api("GET", "$base/api/v1/entries?kind=feature", $token, $tls);
echo "get $st " . count($r["result"]["entries"]) . " {$r['result']['entries'][0]['title']}\n";
[$st, $r] = api("GET", "$base/api/v1/entries/77", $token, $tls);
echo "missing $st {$r['error']['code']}\n";
'''


def test_php_reads_and_writes_without_a_websocket_library(server, tmpdir_path):
    if not shutil.which("php"):
        pytest.fail("php is not installed: run tools/scripts/deps.sh test")
    script = os.path.join(tmpdir_path, "api.php")
    with open(script, "w") as f:
        f.write(PHP)
    p = subprocess.run(["php", script, server.http, server.admin_token],
                       capture_output=True, text=True, timeout=60)
    assert p.stdout.splitlines() == ["post 200 1", "get 200 1 From PHP",
                                     "missing 404 not_found"], (p.stdout, p.stderr)


def test_client_gone_before_the_reply(server):
    t = server.admin_token
    for i in range(20):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock = tls_context().wrap_socket(sock, server_hostname="localhost")
        body = json.dumps({"kind": "fix", "title": "gone %d" % i}).encode()
        sock.sendall(("POST %s/commands/createEntry HTTP/1.1\r\nHost: x\r\n"
                      "Authorization: Bearer %s\r\nContent-Length: %d\r\n\r\n"
                      % (V1, t, len(body))).encode() + body)
        sock.close()
    st, _, r = call(server, "GET", V1 + "/stats", t)
    assert st == 200 and r["result"]["entries"] <= 20


def metric(server, name):
    _, _, body = server.get("/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def test_metrics_count_api_requests(server):
    t = server.admin_token
    before = metric(server, "changelogd_api_requests_total")
    refused = metric(server, "changelogd_api_refused_total")
    assert call(server, "GET", V1 + "/stats", t)[0] == 200
    assert call(server, "GET", V1 + "/stats")[0] == 401
    assert call(server, "GET", V1 + "/entries/5", t)[0] == 404
    assert metric(server, "changelogd_api_requests_total") == before + 3
    assert metric(server, "changelogd_api_refused_total") == refused + 2
    n = metric(server, "changelogd_browser_sessions")
    st, _, _ = call(server, "POST", "/session", body={"token": t},
                    headers={"X-Requested-With": "t"})
    assert st == 200 and metric(server, "changelogd_browser_sessions") == n + 1
