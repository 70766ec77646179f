"""Commands sent to an edge go to the writer over NATS request/reply
(<stream>.cmd) and their reply reaches the client only once the edge has
applied the event (read-your-writes); an edge the stream cannot fill
catches up from the writer (<stream>.fetch). Real binaries, a real
nats-server, real websocket and HTTP clients."""
import asyncio
import json
import os
import signal
import subprocess

from conftest import BIN, Client, run
from http_util import call
from nats_util import (JSDUMP, command, edge_at, edge_state, epoch_of, head_of,  # noqa: F401
                       metrics, metrics_until, nats, published_writer, start_edge, stop_edge,
                       verify, wait_edge_at, wait_for, write, writers)
from tools_util import LmdbDump


def entry(title):
    return {"title": title, "kind": "fix"}


def test_a_command_sent_to_an_edge_commits_on_the_writer_and_reads_its_write(
        nats, writers, tmpdir_path):
    w = published_writer(writers, nats)
    e = edge_at(tmpdir_path, nats, w, 2)
    try:
        async def go():
            c = await Client.connect(e, w.admin_token)
            other = await Client.connect(e, w.admin_token)
            r = await c.command("createEntry", entry("through the edge"))
            assert r["ok"], r
            # the reply came only after this edge applied the event: any
            # connection to the edge sees it at once
            g = await other.query("getEntry", {"entry": r["entry"]})
            assert g["ok"] and g["result"]["entry"]["title"] == "through the edge", g
            assert g["at"] >= r["seq"]
            # pipelined on one connection: the query after the command sees it
            ids = c.send_batch([{"op": "createEntry", "params": entry("pipelined")},
                                {"op": "query", "name": "getChangelogEntries",
                                 "params": {"limit": 5}}])
            r2 = await c.wait_reply(ids[0])
            q = await c.wait_reply(ids[1])
            assert r2["ok"] and r2["seq"] == r["seq"] + 1, r2
            assert q["result"]["entries"][0]["title"] == "pipelined", q
            # a retry with the same cmd_id is applied once
            a = await c.command("createEntry", entry("once"), cmd_id="retry-1")
            b = await c.command("createEntry", entry("once"), cmd_id="retry-1")
            assert a["ok"] and b == dict(a, id=b["id"]), (a, b)
            # the writer's refusals reach the client unchanged
            bad = await c.command("createEntry", {"title": "", "kind": "fix"})
            assert bad["ok"] is False and bad["error"]["code"] == "bad_request", bad
            conflict = await c.command("createEntry", entry("other"), cmd_id="retry-1")
            assert conflict["error"]["code"] == "conflict", conflict
            await c.close()
            await other.close()
            return r, a
        r, a = run(go())
        assert a["seq"] == r["seq"] + 2
        # committed on the writer, in its log, and the edge holds the same log
        wait_edge_at(e, a["seq"])
        assert metrics(w)["changelogd_seq"] == a["seq"]
        assert LmdbDump(e.data).events() == LmdbDump(w.data).events()

        # the HTTP API of the edge forwards as well
        st, _, body = call(e, "POST", "/api/v1/commands/createEntry", token=w.admin_token,
                           body=entry("over HTTP"), headers={"Idempotency-Key": "http-1"})
        assert st == 200 and body["ok"], body
        st, _, got = call(e, "GET", "/api/v1/entries/%d" % body["entry"], token=w.admin_token)
        assert st == 200 and got["result"]["entry"]["title"] == "over HTTP", got
        st, _, again = call(e, "POST", "/api/v1/commands/createEntry", token=w.admin_token,
                            body=entry("over HTTP"), headers={"Idempotency-Key": "http-1"})
        assert st == 200 and again["seq"] == body["seq"], again
        st, _, bad = call(e, "POST", "/api/v1/commands/setStatus", token=w.admin_token,
                          body={"entry": 999999, "status": "resolved"})
        assert st == 404 and bad["error"]["code"] == "not_found", bad
        assert metrics(w)["changelogd_seq"] == body["seq"]

        me, mw = metrics(e), metrics(w)
        assert me['changelogd_edge_forwarded_total{result="answered"}'] == 9
        assert me["changelogd_edge_forwarded_in_flight"] == 0
        assert mw["changelogd_nats_forwarded_total"] == 9
    finally:
        stop_edge(e)


def test_writer_down_means_unavailable_then_it_works_again(nats, writers, tmpdir_path):
    w = published_writer(writers, nats)
    e = edge_at(tmpdir_path, nats, w, 2)
    try:
        assert w.stop() == 0

        def one(title, cmd_id=None):
            return command(e, w.admin_token, "createEntry", entry(title), cmd_id)
        r = one("nobody writes")
        assert r["ok"] is False and r["error"]["code"] == "unavailable", r
        assert "no writer serves commands on NATS (changelog.cmd)" in r["error"]["message"]
        st, hdrs, body = call(e, "POST", "/api/v1/commands/createEntry", token=w.admin_token,
                              body=entry("nobody writes"))
        assert st == 503 and body["error"]["code"] == "unavailable", body
        assert "retry-after" in hdrs
        w.start()
        r = wait_for("the writer to serve again",
                     lambda: (lambda r: r if r["ok"] else None)(one("back", "back-1")))
        wait_edge_at(e, r["seq"])
        assert metrics(e)['changelogd_edge_forwarded_total{result="unavailable"}'] >= 2
    finally:
        stop_edge(e)


def test_a_revoked_token_is_refused_by_the_writer_whatever_the_edge_says(
        nats, writers, tmpdir_path):
    w = writers(nats.url)
    e = start_edge(tmpdir_path, nats, w)
    try:
        m = command(w, w.admin_token, "createUser", {"name": "mallory", "role": "member"})
        assert m["ok"], m
        wait_edge_at(e, m["seq"])

        user, tok = m["user"], m["token_id"]

        r = command(w, w.admin_token, "revokeToken", {"token": tok})
        assert r["ok"], r
        head = metrics(w)["changelogd_seq"]
        # what an edge that has not seen the revocation yet would send: the
        # writer judges the token against its own log
        req = json.dumps({"user": user, "token": tok, "name": "createEntry",
                          "params": entry("after revocation")})
        p = subprocess.run([JSDUMP, nats.url, "changelog", "request", "changelog.cmd", req],
                           capture_output=True, text=True, timeout=30)
        reply = json.loads(json.loads(p.stdout)["data"])
        assert reply["ok"] is False and reply["error"]["code"] == "unauthorized", reply
        # malformed forwarded requests get a clear refusal
        for bad in ("not json", json.dumps({"user": user, "token": 0, "name": "createEntry"}),
                    json.dumps({"user": user, "token": tok, "name": "noSuchCommand"})):
            p = subprocess.run([JSDUMP, nats.url, "changelog", "request", "changelog.cmd", bad],
                               capture_output=True, text=True, timeout=30)
            reply = json.loads(json.loads(p.stdout)["data"])
            assert reply["ok"] is False and reply["error"]["code"] == "bad_request", reply
        # and the edge itself, once it has the revocation, refuses the token
        wait_edge_at(e, metrics(w)["changelogd_seq"])
        st, _, body = call(e, "POST", "/api/v1/commands/createEntry", token=m["token"],
                           body=entry("refused"))
        assert st in (401, 403), (st, body)
        assert metrics(w)["changelogd_seq"] == head       # nothing was written
    finally:
        stop_edge(e)


def test_forwarded_commands_in_flight_are_bounded(nats, writers, tmpdir_path):
    w = writers(nats.url)
    e = start_edge(tmpdir_path, nats, w, "edge", "--forward-max", "3",
                   "--forward-user-max", "2", "--forward-timeout", "30")
    try:
        bob = command(w, w.admin_token, "createUser", {"name": "bob", "role": "member"})
        wait_edge_at(e, bob["seq"])
        w.proc.send_signal(signal.SIGSTOP)      # the writer hears but does not answer
        try:
            async def go():
                conns = [await Client.connect(e, t) for t in
                         (w.admin_token, w.admin_token, w.admin_token, bob["token"],
                          bob["token"])]
                ids = []
                for i, c in enumerate(conns):
                    ids.append(await c.send({"op": "createEntry",
                                             "params": entry("in flight %d" % i)}))
                    if i == 1:
                        await asyncio.sleep(0.3)
                # over the user's bound, then over the edge's: refused at once
                third = await conns[2].wait_reply(ids[2])
                assert third["error"]["code"] == "rate_limited", third
                fifth = await conns[4].wait_reply(ids[4])
                assert fifth["error"]["code"] == "unavailable", fifth
                assert "too many commands in flight" in fifth["error"]["message"]
                assert metrics(e)["changelogd_edge_forwarded_in_flight"] == 3
                w.proc.send_signal(signal.SIGCONT)
                out = [await conns[i].wait_reply(ids[i], 30) for i in (0, 1, 3)]
                for c in conns:
                    await c.close()
                return out
            out = run(go())
        finally:
            w.proc.send_signal(signal.SIGCONT)
        assert all(r["ok"] for r in out), out
        # resent while the writer was stopped, applied once each
        seqs = sorted(r["seq"] for r in out)
        assert seqs == [bob["seq"] + 1, bob["seq"] + 2, bob["seq"] + 3]
        assert metrics(w)["changelogd_seq"] == bob["seq"] + 3
        m = metrics(e)
        assert m['changelogd_edge_forwarded_total{result="refused"}'] == 2
        assert m["changelogd_edge_forwarded_in_flight"] == 0
    finally:
        stop_edge(e)


def test_a_new_edge_the_stream_cannot_fill_catches_up_from_the_writer(
        nats, writers, tmpdir_path):
    # the stream keeps seqs 5..7 only
    w = published_writer(writers, nats, 5, "data", "--nats-max-msgs", "3")
    e = edge_at(tmpdir_path, nats, w, 7)
    try:
        assert "catching up from the writer (changelog.fetch)" in e.log()
        write(w, 2, "after")                # then it follows the stream
        wait_edge_at(e, 9)
        assert head_of(e.data) == head_of(w.data)
        assert "ok: 9 events" in verify(e.data)
        m = metrics(e)
        assert edge_state(m) == "live" and m["changelogd_edge_fetched_events_total"] == 7
        assert m["changelogd_edge_commit_lag_seconds"] >= 0 and m["changelogd_edge_behind_seqs"] == 0
        # the commit lag comes from the event's own timestamp: one stamped in
        # 2020 (another process appends to the writer's log) shows years
        p = subprocess.run([os.path.join(BIN, "changelog-admin"), "dev-exec", "createEntry",
                            json.dumps(entry("from the past")), "--data", w.data],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, CHANGELOG_FAKE_TIME="2020-01-01T00:00:00Z"))
        assert p.returncode == 0 and json.loads(p.stdout)["seq"] == 10, p.stdout + p.stderr
        m = wait_edge_at(e, 10)
        assert m["changelogd_edge_commit_lag_seconds"] > 3 * 365 * 86400
        assert metrics(w)["changelogd_nats_fetched_events_total"] == 7
    finally:
        stop_edge(e)


def test_a_fetched_event_that_breaks_the_chain_is_refused(nats, writers, tmpdir_path):
    w = published_writer(writers, nats, 3, "data", "--nats-max-msgs", "2")  # the stream keeps 4..5
    epoch = epoch_of(w.data)
    events = LmdbDump(w.data).events()
    assert w.stop() == 0
    # a false writer answers the fetch: event 2's bytes as seq 1 (its
    # prev_hash is hash(1), not the empty log's)
    val = events[1][1]
    rec = (1).to_bytes(8, "big") + len(val).to_bytes(4, "big") + val
    fake = subprocess.Popen([JSDUMP, nats.url, "changelog", "serve", "changelog.fetch",
                             rec.hex(), epoch], stdout=subprocess.PIPE, text=True)
    try:
        assert json.loads(fake.stdout.readline()) == {"ready": True}
        e = start_edge(tmpdir_path, nats, w)
        try:
            wait_for("the refusal", lambda: "edge: event 1 from the stream does not continue "
                     "this log" in e.log())
            m = metrics_until(e, "the diverged state", lambda m: edge_state(m) == "diverged")
            assert m["changelogd_seq"] == 0
            _, _, hz = e.get("/healthz")
            assert b'"ok":false' in hz
        finally:
            stop_edge(e)
    finally:
        fake.terminate()
        fake.wait(timeout=10)
        fake.stdout.close()
    assert not os.path.exists(os.path.join(tmpdir_path, "edge", "admin-token"))


def test_a_writer_that_does_not_answer_in_time_means_unavailable(nats, writers, tmpdir_path):
    w = writers(nats.url)
    e = edge_at(tmpdir_path, nats, w, 2, "edge", "--forward-timeout", "1")
    try:
        w.proc.send_signal(signal.SIGSTOP)

        def one(cmd_id=None):
            return command(e, w.admin_token, "createEntry", entry("late"), cmd_id)
        try:
            r = one()
        finally:
            w.proc.send_signal(signal.SIGCONT)
        assert r["ok"] is False and r["error"]["code"] == "unavailable", r
        msg = r["error"]["message"]
        assert "the writer did not answer within 1 s" in msg, msg
        # the edge named the cmd_id it sent: resending with it gets the one
        # result, whether the writer applied the late request or not
        cmd_id = msg.split("same cmd_id (")[1].split(")")[0]
        assert cmd_id.startswith("edge-") and len(cmd_id) == 37
        again = one(cmd_id)
        assert again["ok"], again
        wait_edge_at(e, again["seq"])
        assert metrics(w)["changelogd_seq"] == 3        # applied once
    finally:
        stop_edge(e)
