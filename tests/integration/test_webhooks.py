"""test_webhooks.py - outgoing webhooks (docs/http-api.md, "Webhooks").

A real changelogd posts to a Python HTTP receiver (http.server on a thread)
on loopback. Commands go through the HTTP API (createWebhook,
createEntry, ...), the configuration through changelog-admin too. Every
wait is for a condition (what the receiver holds, what /metrics says),
never for a time.
"""
import hashlib
import hmac
import http.server
import json
import os
import re
import signal
import socketserver
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from conftest import Server, free_port, new_member, run, Client
from http_util import call
from tools_util import run_admin

V1 = "/api/v1"
FAST = ("--webhook-retry-min", "20", "--webhook-retry-max", "200", "--webhook-timeout", "5")


class Receiver:
    """An HTTP endpoint that records every POST: (seq, headers, body bytes)."""

    def __init__(self, port=None, status=200, delay=0.0):
        self.port = port or free_port()
        self.status = status
        self.delay = delay
        self.got = []
        self.lock = threading.Lock()
        self.httpd = None

    @property
    def url(self):
        return "http://127.0.0.1:%d/hook" % self.port

    def start(self):
        rec = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                if rec.delay:
                    time.sleep(rec.delay)
                with rec.lock:
                    rec.got.append((int(self.headers["X-Changelogd-Seq"]),
                                    {k.lower(): v for k, v in self.headers.items()}, body))
                self.send_response(rec.status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *a):
                pass

        class S(socketserver.ThreadingMixIn, http.server.HTTPServer):
            allow_reuse_address = True
            daemon_threads = True

        self.httpd = S(("127.0.0.1", self.port), H)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self):
        if self.httpd:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def seqs(self):
        with self.lock:
            return [g[0] for g in self.got]

    def wait_for(self, pred, what, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                got = list(self.got)
            if pred(got):
                return got
            time.sleep(0.02)
        raise AssertionError("receiver: %s; got seqs %s" % (what, [g[0] for g in got]))


def command(server, token, name, params, key=None):
    h = {"Idempotency-Key": key} if key else None
    return call(server, "POST", "%s/commands/%s" % (V1, name), token=token, body=params,
                headers=h)


def ok(server, token, name, params):
    st, _, r = command(server, token, name, params)
    assert st == 200 and r["ok"], (name, st, r)
    return r


def metric(server, name, hook):
    _, _, body = server.get("/metrics")
    m = re.search(r'^%s\{webhook="%d"\} (\d+)$' % (name, hook), body.decode(), re.M)
    return int(m.group(1)) if m else None


def wait_metric(server, name, hook, pred, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = metric(server, name, hook)
        if v is not None and pred(v):
            return v
        time.sleep(0.02)
    raise AssertionError("%s{webhook=%d} stayed %s" % (name, hook, metric(server, name, hook)))


def last_seq(server):
    _, _, body = server.get("/metrics")
    return int(re.search(r"^changelogd_seq (\d+)$", body.decode(), re.M).group(1))


def signature_ok(secret, headers, body):
    want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(want, headers["x-changelogd-signature"])


def make_entries(server, n, start=0):
    return [ok(server, server.admin_token, "createEntry",
               {"title": "entry %d" % (start + i), "kind": "fix"})["seq"] for i in range(n)]


def test_every_event_in_order_signed_with_the_push_body(make_server):
    rec = Receiver().start()
    try:
        s = make_server(*FAST)
        r = ok(s, s.admin_token, "createWebhook", {"url": rec.url})
        hook, secret, created = r["webhook"], r["secret"], r["seq"]
        assert secret.startswith("whsec_") and len(secret) == 70
        seqs = make_entries(s, 5)
        ok(s, s.admin_token, "addComment", {"entry": 1, "body": "looks good"})
        want = list(range(created + 1, last_seq(s) + 1))
        got = rec.wait_for(lambda g: [x[0] for x in g] == want, "every seq, in order")
        epoch = json.loads(s.get("/healthz")[2])["epoch"]
        for seq, h, body in got:
            assert signature_ok(secret, h, body), seq
            assert not signature_ok(secret + "x", h, body)   # a wrong secret is detected
            assert not signature_ok(secret, h, body + b" ")  # so is a changed body
            assert h["x-changelogd-epoch"] == epoch
            assert h["content-type"] == "application/json"
            push = json.loads(body)
            assert push["op"] == "event" and push["seq"] == seq and push["epoch"] == epoch
            assert push["event"]["seq"] == seq
        first = json.loads(got[0][2])
        assert first["event"]["type"] == "entry.created" and first["entry"]["id"] == 1
        assert json.loads(got[-1][2])["event"]["type"] == "comment.added"
        assert seqs == want[:5]
        # no secret anywhere in the log's view, nor in getWebhooks
        st, _, w = call(s, "GET", V1 + "/queries/getWebhooks", token=s.admin_token)
        assert st == 200 and [x["id"] for x in w["result"]["webhooks"]] == [hook]
        assert secret not in json.dumps(w)
        assert wait_metric(s, "changelogd_webhook_lag_seqs", hook, lambda v: v == 0) == 0
        assert metric(s, "changelogd_webhook_deliveries_total", hook) == len(want)
        assert metric(s, "changelogd_webhook_last_status", hook) == 200
        listing = run_admin("webhook", "list", "--data", s.data)   # beside the server
        assert listing.returncode == 0 and rec.url in listing.stdout
        with open(os.path.join(s.data, "data.mdb"), "rb") as f:
            assert secret.encode() not in f.read()
    finally:
        rec.stop()


def test_receiver_down_then_up_gets_everything_in_order(make_server):
    port = free_port()
    rec = Receiver(port)
    s = make_server(*FAST)
    r = ok(s, s.admin_token, "createWebhook", {"url": rec.url})
    hook, created = r["webhook"], r["seq"]
    make_entries(s, 4)
    # nobody listens: attempts fail and back off
    wait_metric(s, "changelogd_webhook_failures_total", hook, lambda v: v >= 3)
    assert metric(s, "changelogd_webhook_deliveries_total", hook) == 0
    assert metric(s, "changelogd_webhook_lag_seqs", hook) == 4
    # the service thread is not held up meanwhile: commands still commit
    make_entries(s, 3, 4)
    rec.start()
    try:
        want = list(range(created + 1, last_seq(s) + 1))
        rec.wait_for(lambda g: [x[0] for x in g] == want, "every seq in order after the outage")
        wait_metric(s, "changelogd_webhook_lag_seqs", hook, lambda v: v == 0)
    finally:
        rec.stop()


def test_a_failing_endpoint_delays_no_other(make_server):
    bad = Receiver(status=500).start()
    good = Receiver().start()
    try:
        s = make_server(*FAST)
        hb = ok(s, s.admin_token, "createWebhook", {"url": bad.url})["webhook"]
        r = ok(s, s.admin_token, "createWebhook", {"url": good.url})
        make_entries(s, 5)
        want = list(range(r["seq"] + 1, last_seq(s) + 1))
        good.wait_for(lambda g: [x[0] for x in g] == want, "the good endpoint gets everything")
        wait_metric(s, "changelogd_webhook_failures_total", hb, lambda v: v >= 2)
        assert metric(s, "changelogd_webhook_last_status", hb) == 500
        # a 500 is retried with the same seq: never skipped
        assert set(bad.seqs()) == {r["seq"]}
    finally:
        bad.stop()
        good.stop()


def test_kill_9_mid_delivery_loses_nothing(tmpdir_path):
    rec = Receiver(delay=0.2)          # slow, and first down: a backlog builds up
    s = Server(os.path.join(tmpdir_path, "data"), FAST, keep_port=True).start()
    try:
        r = ok(s, s.admin_token, "createWebhook", {"url": rec.url})
        hook, created = r["webhook"], r["seq"]
        make_entries(s, 30)
        end = last_seq(s)
        rec.start()
        rec.wait_for(lambda g: len(g) >= 5, "a few deliveries before the kill")
        s.stop(sig=signal.SIGKILL)
        before = rec.seqs()
        assert before and max(before) < end, "the kill came after everything was delivered"
        s.start()
        want = list(range(created + 1, end + 1))
        got = rec.wait_for(lambda g: sorted(set(x[0] for x in g)) == want,
                           "every seq after the restart")
        seqs = [x[0] for x in got]
        # in order within each life of the server: at most one step back (the resend)
        assert sum(1 for a, b in zip(seqs, seqs[1:]) if b <= a) <= 1, seqs
        # the cursor file is where delivery resumed
        wait_metric(s, "changelogd_webhook_lag_seqs", hook, lambda v: v == 0)
        with open(os.path.join(s.data, "webhooks", str(hook))) as f:
            assert f.read().split()[1] == str(end)
        assert s.stop() == 0
    finally:
        rec.stop()
        s.stop()


def test_event_type_filter_moves_the_cursor_over_the_rest(make_server):
    rec = Receiver().start()
    try:
        s = make_server(*FAST)
        r = ok(s, s.admin_token, "createWebhook",
               {"url": rec.url, "events": ["comment.added", "entry.status_set"]})
        hook = r["webhook"]
        assert r["events"] == "entry.status_set,comment.added"
        make_entries(s, 2)
        c = ok(s, s.admin_token, "addComment", {"entry": 2, "body": "hi"})["seq"]
        st = ok(s, s.admin_token, "setStatus", {"entry": 1, "status": "resolved"})["seq"]
        make_entries(s, 2, 2)           # the last events are filtered out
        got = rec.wait_for(lambda g: len(g) >= 2, "the two wanted events")
        assert [x[0] for x in got] == [c, st]
        assert [json.loads(x[2])["event"]["type"] for x in got] == ["comment.added",
                                                                    "entry.status_set"]
        end = last_seq(s)
        wait_metric(s, "changelogd_webhook_cursor_seq", hook, lambda v: v == end)
        assert len(rec.got) == 2
    finally:
        rec.stop()


def test_admin_tool_configures_a_running_server(make_server):
    rec = Receiver().start()
    try:
        s = make_server(*FAST)
        p = run_admin("webhook", "add", rec.url, "--events", "entry.created", "--data", s.data)
        assert p.returncode == 0, p.stderr
        secret = p.stdout.strip()
        assert secret.startswith("whsec_")
        seq = make_entries(s, 1)[0]
        got = rec.wait_for(lambda g: len(g) >= 1, "the entry from the server")
        assert got[0][0] == seq and signature_ok(secret, got[0][1], got[0][2])
        p = run_admin("webhook", "list", "--format", "json", "--data", s.data)
        ws = json.loads(p.stdout)
        assert [w["url"] for w in ws] == [rec.url] and "secret" not in p.stdout
        p = run_admin("webhook", "rm", str(ws[0]["id"]), "--data", s.data)
        assert p.returncode == 0, p.stderr
        wait_metric_gone(s, ws[0]["id"])
        # deleted: later entries go to another endpoint, not to this one
        other = Receiver().start()
        try:
            r = ok(s, s.admin_token, "createWebhook", {"url": other.url})
            make_entries(s, 2, 1)
            n = last_seq(s)
            other.wait_for(lambda g: [x[0] for x in g] == list(range(r["seq"] + 1, n + 1)),
                           "the other endpoint's events")
        finally:
            other.stop()
        assert rec.seqs() == [seq]
        p = run_admin("webhook", "rm", "x", "--data", s.data)
        assert p.returncode == 2
        p = run_admin("webhook", "rm", "99", "--data", s.data)
        assert p.returncode == 1 and "not_found" in p.stderr
        p = run_admin("webhook", "add", "gopher://x", "--data", s.data)
        assert p.returncode == 1 and "bad_request" in p.stderr
    finally:
        rec.stop()


def wait_metric_gone(server, hook, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if metric(server, "changelogd_webhook_lag_seqs", hook) is None:
            return
        time.sleep(0.02)
    raise AssertionError("webhook %d still in /metrics" % hook)


BAD = [
    ({}, 400, "bad_request"),
    ({"url": 5}, 400, "bad_request"),
    ({"url": ""}, 400, "bad_request"),
    ({"url": "ftp://example.com/x"}, 400, "bad_request"),
    ({"url": "http://"}, 400, "bad_request"),
    ({"url": "http://user:pw@example.com/"}, 400, "bad_request"),
    ({"url": "http://example.com/#frag"}, 400, "bad_request"),
    ({"url": "http://exa mple.com/"}, 400, "bad_request"),
    ({"url": "http://example.com:0/"}, 400, "bad_request"),
    ({"url": "http://example.com:99999/"}, 400, "bad_request"),
    ({"url": "https://example.com/" + "a" * 2100}, 413, "too_large"),
    ({"url": "https://example.com/", "events": []}, 400, "bad_request"),
    ({"url": "https://example.com/", "events": "entry.created"}, 400, "bad_request"),
    ({"url": "https://example.com/", "events": ["entry.nope"]}, 400, "bad_request"),
    ({"url": "https://example.com/", "events": ["entry.created", "entry.created"]}, 400,
     "bad_request"),
    ({"url": "https://example.com/", "secret": "mine"}, 400, "bad_request"),
]


@pytest.mark.parametrize("params,status,code", BAD)
def test_bad_configuration_is_refused(shared_server, params, status, code):
    st, _, r = command(shared_server, shared_server.admin_token, "createWebhook", params)
    assert (st, r["ok"], r["error"]["code"]) == (status, False, code), r


def test_limits_and_permissions(make_server):
    s = make_server()

    async def member():
        c = await Client.connect(s, s.admin_token)
        uid, tok = await new_member(c, "mem")
        await c.close()
        return tok
    tok = run(member())
    st, _, r = command(s, tok, "createWebhook", {"url": "http://127.0.0.1:9/a"})
    assert st == 403 and r["error"]["code"] == "forbidden"
    st, _, r = call(s, "GET", V1 + "/queries/getWebhooks", token=tok)
    assert st == 403
    ids = [ok(s, s.admin_token, "createWebhook", {"url": "http://127.0.0.1:9/%d" % i})["webhook"]
           for i in range(4)]
    st, _, r = command(s, s.admin_token, "createWebhook", {"url": "http://127.0.0.1:9/3"})
    assert st == 409 and "already posts" in r["error"]["message"]
    ids += [ok(s, s.admin_token, "createWebhook", {"url": "http://127.0.0.1:9/%d" % i})["webhook"]
            for i in range(4, 16)]
    st, _, r = command(s, s.admin_token, "createWebhook", {"url": "http://127.0.0.1:9/16"})
    assert st == 409 and "16 webhooks" in r["error"]["message"], r
    ok(s, s.admin_token, "deleteWebhook", {"webhook": ids[0]})
    st, _, r = command(s, s.admin_token, "deleteWebhook", {"webhook": ids[0]})
    assert st == 409 and r["error"]["code"] == "conflict"
    st, _, r = command(s, s.admin_token, "deleteWebhook", {"webhook": 999})
    assert st == 404 and r["error"]["code"] == "not_found"
    st, _, r = command(s, s.admin_token, "deleteWebhook", {"webhook": "1"})
    assert st == 400
    st, _, r = command(s, tok, "deleteWebhook", {"webhook": ids[1]})
    assert st == 403
    ok(s, s.admin_token, "createWebhook", {"url": "http://127.0.0.1:9/16"})
    st, _, w = call(s, "GET", V1 + "/queries/getWebhooks", token=s.admin_token)
    assert len(w["result"]["webhooks"]) == 16 and all("secret" not in x for x in w["result"]["webhooks"])
    # a retry with the same idempotency key gets the same webhook (no secret again)
    st, _, a = command(s, s.admin_token, "deleteWebhook", {"webhook": ids[2]}, key="del-2")
    st2, _, b = command(s, s.admin_token, "deleteWebhook", {"webhook": ids[2]}, key="del-2")
    assert st == st2 == 200 and a["seq"] == b["seq"]


def slack_adapter_source():
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "docs", "http-api.md")) as f:
        doc = f.read()
    part = doc.split("### Example: a Slack adapter", 1)[1]
    return part.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_documented_slack_adapter(make_server, tmpdir_path):
    texts = []                        # what a stand-in for Slack was sent

    class Slack(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            texts.append(json.loads(self.rfile.read(int(self.headers["Content-Length"])))["text"])
            self.send_response(200)
            self.end_headers()

        def log_message(self, *a):
            pass
    slack_srv = http.server.HTTPServer(("127.0.0.1", free_port()), Slack)
    threading.Thread(target=slack_srv.serve_forever, daemon=True).start()
    src = os.path.join(tmpdir_path, "slack.py")
    with open(src, "w") as f:
        f.write(slack_adapter_source())
    assert len(slack_adapter_source().strip().splitlines()) <= 25
    port = free_port()
    s = make_server(*FAST)
    r = ok(s, s.admin_token, "createWebhook", {"url": "http://127.0.0.1:%d/" % port,
                                                "events": ["entry.created", "comment.added"]})
    env = dict(os.environ, WHSEC=r["secret"], PORT=str(port),
               SLACK_URL="http://127.0.0.1:%d/services/x" % slack_srv.server_port)
    adapter = subprocess.Popen(["/usr/bin/python3", src], env=env, stderr=subprocess.PIPE)
    try:
        make_entries(s, 1)
        ok(s, s.admin_token, "addComment", {"entry": 1, "body": "ship it"})
        deadline = time.monotonic() + 60
        while len(texts) < 2 and time.monotonic() < deadline:
            assert adapter.poll() is None, adapter.stderr.read()
            time.sleep(0.02)
        assert texts == ["entry.created on #1 entry 0 (open)", "comment.added on #1 entry 0 (open)"]
        # a forged delivery (wrong secret) is refused by the adapter: 401
        body = b'{"op":"event","seq":99,"entry":{"id":1,"title":"x","status":"open"}}'
        req = urllib.request.Request("http://127.0.0.1:%d/" % port, body, {
            "X-Changelogd-Seq": "99", "X-Changelogd-Epoch": "e",
            "X-Changelogd-Signature": "sha256=" + hmac.new(b"whsec_wrong", body,
                                                           hashlib.sha256).hexdigest()})
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(req, timeout=10)
        assert e.value.code == 401 and len(texts) == 2
    finally:
        adapter.kill()
        adapter.wait()
        slack_srv.shutdown()
        slack_srv.server_close()
