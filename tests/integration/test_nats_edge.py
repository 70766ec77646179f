"""changelogd --edge: a read-only node whose log is a copy of the writer's,
fed from the writer's JetStream stream through a real nats-server. It
serves the same epoch, seqs and bytes (changelog-audit verify on its log
ends at the writer's head hash), resumes from its own last seq after
kill -9, refuses what does not continue its hash chain, and forwards commands
to the writer (tests/integration/test_nats_forward.py)."""
import os
import shutil
import signal
import subprocess

from conftest import BIN, NO_CONFIG, Client, Server, free_port, run
from nats_util import (command, edge_at, edge_state, epoch_of, head_of, metrics,  # noqa: F401
                       metrics_until, nats, published_writer, start_edge, stop_edge, verify,
                       wait_edge_at, wait_for, wait_published, write, writers)
from tools_util import LmdbDump


def subscribe_and_collect(node, since, epoch, n):
    async def go():
        c = await Client.connect(node, node.admin_token)
        r = await c.request({"op": "subscribe", "since": since, "epoch": epoch})
        assert r["ok"], r
        await c.wait_pushes(n)
        await c.close()
        return [(p["seq"], p["event"]) for p in c.pushes[:n]]
    return go()


def test_an_edge_serves_the_writers_log(nats, writers, tmpdir_path):
    w = published_writer(writers, nats)
    e = edge_at(tmpdir_path, nats, w, 2)
    try:
        epoch = epoch_of(w.data)
        assert epoch_of(e.data) == epoch

        async def go():
            import asyncio
            on_edge = asyncio.ensure_future(subscribe_and_collect(e, 2, epoch, 6))
            on_writer = asyncio.ensure_future(subscribe_and_collect(w, 2, epoch, 6))
            await asyncio.sleep(0.2)
            c = await Client.connect(w, w.admin_token)
            for i in range(6):
                r = await c.command("createEntry", {"title": "via the writer %d" % i,
                                                    "kind": "fix"})
                assert r["ok"], r
            await c.close()
            return await on_edge, await on_writer
        edge_pushes, writer_pushes = run(go())
        assert [s for s, _ in edge_pushes] == list(range(3, 9))
        assert edge_pushes == writer_pushes
        wait_edge_at(e, 8)

        async def queries():
            out = []
            for node in (w, e):
                c = await Client.connect(node, w.admin_token)
                out.append(await c.query("getChangelogEntries", {"limit": 50}))
                await c.close()
            return out
        on_w, on_e = run(queries())
        assert on_w["ok"] and on_e["result"] == on_w["result"]
        _, _, hz = e.get("/healthz")
        assert b'"seq":8' in hz and epoch.encode() in hz
        # the edge's own log: the writer's bytes, chain intact to the writer's head
        assert "ok: 8 events" in verify(e.data)
        assert head_of(e.data) == head_of(w.data)
        assert LmdbDump(e.data).events() == LmdbDump(w.data).events()
        m = metrics(e)
        assert edge_state(m) == "live" and m["changelogd_edge_lag_seconds"] >= 0

        # forwarded to the writer
        r = command(e, w.admin_token, "createEntry", {"title": "on the edge", "kind": "fix"})
        assert r["ok"] and r["seq"] == 9, r    # (tests/integration/test_nats_forward.py)
        assert metrics(e)["changelogd_seq"] == 9 and metrics(w)["changelogd_seq"] == 9
    finally:
        stop_edge(e)


def test_an_edge_killed_resumes_from_its_own_log(nats, writers, tmpdir_path):
    w = published_writer(writers, nats, 3)
    e = edge_at(tmpdir_path, nats, w, 5)
    e.proc.send_signal(signal.SIGKILL)
    e.proc.wait(timeout=10)
    write(w, 4, "while the edge is down")
    e.start()
    try:
        wait_edge_at(e, 9)
        assert "following NATS stream changelog from seq 6" in e.log()
        # a client that saw seq 5 resumes on the edge with exactly what it missed
        got = run(subscribe_and_collect(e, 5, epoch_of(w.data), 4))
        assert [s for s, _ in got] == [6, 7, 8, 9]
        assert head_of(e.data) == head_of(w.data)
        assert "ok: 9 events" in verify(e.data)
    finally:
        stop_edge(e)


def test_an_edge_refuses_what_does_not_continue_its_chain(nats, writers, tmpdir_path):
    w = published_writer(writers, nats, 2)
    e = edge_at(tmpdir_path, nats, w, 4)
    try:
        # a valid envelope, but the writer's event 3 again: its prev_hash is
        # hash(2), not the head of a log at seq 4
        third = LmdbDump(w.data).events()[2][1]
        assert nats.publish("changelog.events", third) == 5
        wait_for("the edge to refuse", lambda: "edge: event 5 from the stream does not "
                 "continue this log" in e.log())
        assert "prev_hash is not this log's head hash" in e.log()
        m = metrics_until(e, "the diverged state", lambda m: edge_state(m) == "diverged")
        assert m["changelogd_seq"] == 4
        assert "ok: 4 events" in verify(e.data)
        assert head_of(e.data) == head_of(w.data)
    finally:
        stop_edge(e)


def test_a_new_edge_the_stream_cannot_fill_waits_at_the_gap_for_the_writer(
        nats, writers, tmpdir_path):
    # the stream keeps seqs 5..7 only, and the stopped writer cannot hand out 1..4
    w = published_writer(writers, nats, 5, "data", "--nats-max-msgs", "3")
    assert w.stop() == 0
    e = start_edge(tmpdir_path, nats, w)
    try:
        wait_for("the gap", lambda: "jumps from seq 0 to 5" in e.log() and
                 "cannot catch up from the writer on changelog.fetch: no writer serves it"
                 in e.log())
        m = metrics(e)
        assert edge_state(m) == "gap" and m["changelogd_seq"] == 0
        _, _, hz = e.get("/healthz")
        assert b'"ok":false' in hz                # load balancers skip it
        w.start()                                 # the writer is back: it catches up
        wait_edge_at(e, 7)
        assert edge_state(metrics(e)) == "live"
        assert head_of(e.data) == head_of(w.data)
    finally:
        stop_edge(e)
    # the way in: a live backup of the writer's log (it keeps the epoch) as
    # the edge's data directory; the stream holds the rest
    seeded = os.path.join(tmpdir_path, "seeded")
    p = subprocess.run([os.path.join(BIN, "changelog-admin"), "backup", seeded, "--data",
                        w.data], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    write(w, 2, "after the backup")
    e = edge_at(tmpdir_path, nats, w, 9, "seeded")
    try:
        assert "following NATS stream changelog from seq 8" in e.log()
        assert head_of(e.data) == head_of(w.data)
        _, _, hz = e.get("/healthz")
        assert b'"ok":true' in hz
    finally:
        stop_edge(e)


def run_edge(tmpdir_path, args, name="edge"):
    return subprocess.run([os.path.join(BIN, "changelogd"), "--config", NO_CONFIG, "--data",
                           os.path.join(tmpdir_path, name), "--plain", "--no-web",
                           "--listen", "127.0.0.1:%d" % free_port()]
                          + args, capture_output=True, text=True, timeout=30)


def test_an_edge_with_another_log_refuses_to_start(nats, writers, tmpdir_path):
    w = published_writer(writers, nats)
    other = Server(os.path.join(tmpdir_path, "other"), plain=True)
    other.start()
    other.stop()
    p = run_edge(tmpdir_path, ["--edge", "--nats", nats.url], name="other")
    assert p.returncode == 1
    assert ("refusing to start the edge: the log in %s is of epoch %s, the stream changelog "
            "carries epoch %s" % (other.data, epoch_of(other.data), epoch_of(w.data))) in p.stderr


def test_an_edge_without_its_stream_or_broker_refuses_to_start(nats, tmpdir_path):
    p = run_edge(tmpdir_path, ["--edge", "--nats", nats.url])
    assert p.returncode == 1
    assert "cannot read NATS stream changelog" in p.stderr
    assert "the writer creates it (changelogd --nats)" in p.stderr
    nats.stop()
    p = run_edge(tmpdir_path, ["--edge", "--nats", nats.url])
    assert p.returncode == 1 and "cannot connect to NATS at " + nats.url in p.stderr
    p = run_edge(tmpdir_path, ["--edge"])
    assert p.returncode == 2 and "--edge needs --nats URL" in p.stderr


def test_an_edge_follows_across_a_broker_restart(nats, writers, tmpdir_path):
    w = published_writer(writers, nats, 2)
    e = edge_at(tmpdir_path, nats, w, 4)
    try:
        nats.kill()                        # kill -9 of the only NATS node
        write(w, 3, "while NATS is down")
        nats.start()
        wait_published(w)
        wait_edge_at(e, 7)
        write(w, 2, "after")
        wait_edge_at(e, 9)
        assert head_of(e.data) == head_of(w.data)
    finally:
        stop_edge(e)


def test_an_edge_follows_a_stream_rebuilt_from_the_log(nats, writers, tmpdir_path):
    w = published_writer(writers, nats, 2)
    e = edge_at(tmpdir_path, nats, w, 4)
    try:
        nats.kill()
        shutil.rmtree(nats.store)          # the broker comes back empty
        nats.start()
        write(w, 3, "into the rebuilt stream")
        wait_published(w)
        wait_edge_at(e, 7)
        assert head_of(e.data) == head_of(w.data)
    finally:
        stop_edge(e)
