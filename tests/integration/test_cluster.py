"""The scaled-out topology as one cluster on loopback (tests/cluster/cluster.py):
a 3-node NATS JetStream cluster, the writer (stream replicas 3), two edges
and HAProxy in front (TLS terminated, leastconn on /ws/, /healthz checks).

One cluster for the module; the tests run in file order and each leaves it
whole again (what it killed restarted, everything converged):

- writes through HAProxy (landing on the writer and on each edge, which
  forwards them) make one sequence: subscribers on every node, and
  through HAProxy on every node, see the same (epoch, seq) order with no gap
  and no duplicate, and each edge's log ends at the writer's head hash
  (changelog-audit verify);
- kill -9 of an edge: its clients resume on another node with their
  (epoch, seq) and get exactly what they missed;
- kill -9 of one NATS node (the one the writer is connected to) while
  writing: nothing is lost, the stream is the log;
- kill -9 of the writer between commit and publish (the NATS cluster is
  stopped first, so its acknowledged events cannot reach the stream; the
  restarted cluster shows the stream without them); meanwhile HAProxy
  sends the writer's paths to an edge, which answers commands
  `unavailable`; the restarted writer refills the stream and the edges
  converge;
- kill -9 of the whole NATS cluster and a restart with empty storage: the
  writer rebuilds the stream from its log, the edges follow;
- last, a foreign message in the stream stops both edges: HAProxy's
  /healthz body check takes them out, new connections go to the writer.
"""
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import urllib.request

import pytest

from conftest import BIN, REPO, Client, missing, run, sanitizer_reports, tls_context
from nats_util import JSDUMP, need_nats
from test_nats_edge import head_of, verify
from test_nats_publish import assert_stream_is_log
from tools_util import LmdbDump

sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
from cluster import Cluster, wait_for  # noqa: E402


def need_cluster_tools():
    need_nats()
    for tool in ("haproxy", "openssl"):
        if not shutil.which(tool):
            missing("%s is not installed (tools/scripts/deps.sh test)" % tool)


@pytest.fixture(scope="module")
def cluster():
    need_cluster_tools()
    c = Cluster(lifetime=900)
    with c:
        yield c
        rcs = c.stop()
        problems = ["%s exited %s on SIGTERM" % (n.name, rcs[n.name]) for n in c.nodes
                    if rcs[n.name] not in (0, None)]
        for n in c.nodes:
            problems += sanitizer_reports(n.log())
    assert not problems, "\n".join(problems)


def test_the_script_of_make_cluster_serves_and_stops_on_ctrl_c(tmpdir_path):
    """tests/cluster/cluster.py as `make cluster` runs it: it prints the
    HAProxy URL and an admin token that work, and Ctrl-C (SIGINT) stops
    every process it started and removes its directory."""
    need_cluster_tools()
    p = subprocess.Popen(["/usr/bin/python3", os.path.join(REPO, "tests", "cluster",
                                                          "cluster.py"), "--for", "300"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, CL_BIN=BIN))
    try:
        out = []
        for line in p.stdout:
            out.append(line)
            if "admin token" in line or "Traceback" in line:
                break
        text = "".join(out)
        assert "admin token" in text, text + p.stdout.read()
        work = text.split("cluster up in ", 1)[1].split(" ", 1)[0]
        url = text.split("HAProxy", 1)[1].split()[0].rstrip("/")
        token = text.split("admin token", 1)[1].split()[0]
        with open("/proc/%d/task/%d/children" % (p.pid, p.pid)) as f:
            kids = [int(x) for x in f.read().split()]
        assert len(kids) == 7          # 3 nats-server, 3 changelogd, haproxy

        class Front:
            plain = False

            def url(self, tok, prefix=""):
                return url.replace("https://", "wss://") + prefix + "/ws/" + tok

        async def ask():
            k = await Client.connect(Front(), token)
            r = await k.query("getChangelogEntries", {"limit": 5})
            await k.close()
            return r
        assert run(ask())["ok"]
        p.send_signal(signal.SIGINT)
        assert p.wait(timeout=60) == 0
        assert "cluster.py: stopping" in p.stdout.read()
        for pid in kids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        assert not os.path.exists(work)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        p.stdout.close()


class Stream:
    """The stream read back through one live NATS node (tests/nats/jsdump.c)."""

    def __init__(self, c):
        self.c = c

    def dump(self, stream="changelog"):
        url = self.c.live_nats().url
        p = subprocess.run([JSDUMP, url, stream], capture_output=True, text=True, timeout=60)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        assert lines, p.stderr
        return lines[0], lines[1:]


def epoch_of(node):
    return node.healthz()["epoch"]


def served_by(client):
    return client.ws.response_headers.get("X-Changelog-Node")


async def subscriber(node, token, since, epoch):
    c = await Client.connect(node, token)
    r = await c.request({"op": "subscribe", "since": since, "epoch": epoch})
    assert r["ok"], r
    return c


def haproxy_idle(c):
    """Until HAProxy holds no session on any node (leastconn then spreads
    new connections evenly)."""
    wait_for("haproxy's sessions to end",
             lambda: all(v["scur"] == 0 and v["status"] == "UP"
                         for v in c.haproxy.servers().values()), 30)


def seq_event(pushes):
    return [(p["seq"], json.dumps(p["event"], sort_keys=True)) for p in pushes]


def assert_edges_are_the_log(c, head):
    """Every edge's log: the writer's bytes, its chain verified to the
    writer's head hash."""
    w_head = head_of(c.writer.data)
    w_events = LmdbDump(c.writer.data).events()
    assert len(w_events) == head
    for e in c.edges:
        assert "ok: %d events" % head in verify(e.data), e.name
        assert head_of(e.data) == w_head, e.name
        assert LmdbDump(e.data).events() == w_events, e.name


async def write_with(c, n, title):
    """n createEntry on the connection c, each acknowledged; their seqs."""
    seqs = []
    for i in range(n):
        r = await c.command("createEntry", {"title": "%s %d" % (title, i), "kind": "fix"})
        assert r["ok"], (served_by(c), r)
        seqs.append(r["seq"])
    await c.close()
    return seqs


async def write_on(node, token, n, title):
    return await write_with(await Client.connect(node, token), n, title)


def test_writes_make_one_sequence_seen_alike_on_every_node(cluster):
    c = cluster
    tok, epoch = c.writer.admin_token, epoch_of(c.writer)
    seq0 = c.wait_converged()
    names = {n.name for n in c.nodes}
    haproxy_idle(c)

    async def go():
        direct = [await subscriber(n, tok, seq0, epoch) for n in c.nodes]
        proxied = [await subscriber(c.haproxy, tok, seq0, epoch) for _ in range(6)]
        # leastconn over three idle servers: two each
        assert sorted(served_by(p) for p in proxied) == sorted(list(names) * 2)
        # three writers through HAProxy: one on each node (leastconn); an
        # edge forwards its commands to the writer
        wconns = [await Client.connect(c.haproxy, tok) for _ in range(3)]
        assert sorted(served_by(k) for k in wconns) == sorted(names)
        writes = [write_with(k, 10, "through haproxy %d" % i) for i, k in enumerate(wconns)]
        seqs = [s for ss in await asyncio.gather(*writes) for s in ss]
        assert sorted(seqs) == list(range(seq0 + 1, seq0 + 31))
        seen = []
        for s in direct + proxied:
            await s.wait_pushes(30, timeout=30)
            seen.append(seq_event(s.pushes))
            await s.close()
        return seen
    seen = run(go())
    for got in seen:
        assert [s for s, _ in got] == list(range(seq0 + 1, seq0 + 31))   # no gap, no double
        assert got == seen[0]                                            # same order, same events
    head = c.wait_converged()
    assert head == seq0 + 30
    assert_edges_are_the_log(c, head)
    assert assert_stream_is_log(Stream(c), c.writer.data) == head
    c.wait_replicas(head)


def test_a_command_through_haproxy_on_an_edge(cluster):
    c = cluster
    tok = c.writer.admin_token
    seq0 = c.wait_converged()
    haproxy_idle(c)

    async def go():
        conns = [await Client.connect(c.haproxy, tok) for _ in range(3)]
        out = []
        for k in conns:
            r = await k.command("createEntry", {"title": "via %s" % served_by(k),
                                                "kind": "fix"})
            out.append((served_by(k), r))
            await k.close()
        return out
    got = run(go())
    assert {n for n, _ in got} == {n.name for n in c.nodes}
    for name, r in got:
        assert r["ok"], (name, r)
    assert sorted(r["seq"] for _, r in got) == [seq0 + 1, seq0 + 2, seq0 + 3]
    assert_edges_are_the_log(c, c.wait_converged())


def test_clients_of_a_killed_edge_resume_on_another_node(cluster):
    c = cluster
    tok, epoch = c.writer.admin_token, epoch_of(c.writer)
    seq0 = c.wait_converged()
    edge1, edge2 = c.edges
    haproxy_idle(c)

    async def go():
        subs = [await subscriber(c.haproxy, tok, seq0, epoch) for _ in range(6)]
        mine = [s for s in subs if served_by(s) == edge1.name]
        assert len(mine) == 2, [served_by(s) for s in subs]
        await write_on(c.writer, tok, 5, "before the edge dies")
        for s in subs:
            await s.wait_pushes(5)
        edge1.kill()
        seen = mine[0].pushes[-1]["seq"]
        assert seen == seq0 + 5
        missed = await write_on(c.writer, tok, 5, "while the edge is dead")
        wait_for("haproxy to take edge1 out",
                 lambda: c.haproxy.servers()[edge1.name]["status"] == "DOWN", 30)
        # the dead edge's clients come back through HAProxy, and one straight
        # to the other edge, each with the (epoch, seq) it had
        again = [await subscriber(c.haproxy, tok, seen, epoch) for _ in mine]
        again.append(await subscriber(edge2, tok, seen, epoch))
        ref = await subscriber(c.writer, tok, seen, epoch)
        for s in again + [ref]:
            await s.wait_pushes(5)
        for s in [s for s in subs if s not in mine] + again + [ref]:
            await s.close()
        return (seen, missed, [(served_by(s), seq_event(s.pushes)) for s in again],
                seq_event(ref.pushes))
    seen, missed, again, ref = run(go())
    assert [s for s, _ in ref] == missed
    for node, got in again:
        assert node != edge1.name
        assert got == ref
    edge1.start()
    assert "following NATS stream changelog from seq %d" % (seen + 1) in edge1.log()
    wait_for("haproxy to take edge1 back", lambda: c.haproxy.servers()[edge1.name]["status"]
             == "UP", 30)
    assert_edges_are_the_log(c, c.wait_converged())


def test_a_nats_node_killed_while_writing_loses_nothing(cluster):
    c = cluster
    tok, epoch = c.writer.admin_token, epoch_of(c.writer)
    seq0 = c.wait_converged()
    # the node the writer publishes through (its --nats URL)
    victim = next(n for n in c.nats if n.url == c.writer.nats_urls)

    async def go():
        subs = [await subscriber(e, tok, seq0, epoch) for e in c.edges]
        w = await Client.connect(c.writer, tok)
        seqs = []
        for i in range(20):
            if i == 5:
                victim.kill()
            r = await w.command("createEntry", {"title": "nats node down %d" % i,
                                                "kind": "fix"})
            assert r["ok"], r
            seqs.append(r["seq"])
        await w.close()
        for s in subs:
            await s.wait_pushes(20, timeout=60)
            await s.close()
        return seqs, [seq_event(s.pushes) for s in subs]
    seqs, seen = run(go())
    assert seqs == list(range(seq0 + 1, seq0 + 21))
    for got in seen:
        assert [s for s, _ in got] == seqs
    assert seen[0] == seen[1]
    head = c.wait_converged(timeout=90)
    assert head == seq0 + 20
    assert assert_stream_is_log(Stream(c), c.writer.data) == head
    assert_edges_are_the_log(c, head)
    c.wait_replicas(head)             # the two nodes left
    victim.start()
    c.wait_nats([victim])
    c.wait_replicas(head)             # and the restarted one caught up


def test_writer_killed_between_commit_and_publish_refills_the_stream(cluster):
    c = cluster
    tok = c.writer.admin_token
    seq0 = c.wait_converged()
    # the brokers stop first: what the writer commits now is acknowledged to
    # its client but cannot reach the stream ...
    for n in c.nats:
        n.stop()
    seqs = run(write_on(c.writer, tok, 6, "committed, never published"))
    assert seqs == list(range(seq0 + 1, seq0 + 7))
    m = c.writer.metrics()
    assert m["changelogd_nats_publish_lag"] == 6 and m["changelogd_nats_published_seq"] == seq0
    # ... and the writer dies before it could publish them
    c.writer.kill()
    for n in c.nats:
        n.start()
    c.wait_nats()
    info, _ = wait_for("the stream back after the brokers' restart",
                       lambda: (lambda d: d if "last_seq" in d[0] else None)(Stream(c).dump()),
                       60)
    assert info["last_seq"] == seq0                  # the stream lacks them
    for e in c.edges:
        assert e.metrics()["changelogd_seq"] == seq0
    # meanwhile HAProxy serves the other paths from an edge, and an edge
    # answers a command it cannot forward with `unavailable`
    wait_for("haproxy to take the writer out",
             lambda: c.haproxy.servers("writer")["writer"]["status"] == "DOWN", 30)
    req = urllib.request.Request(c.haproxy.http + "/healthz")
    with urllib.request.urlopen(req, context=tls_context(), timeout=10) as r:
        assert r.headers["X-Changelog-Node"] in {e.name for e in c.edges}
        assert json.loads(r.read())["seq"] == seq0

    async def command():
        k = await Client.connect(c.haproxy, tok)
        r = await k.command("createEntry", {"title": "no writer", "kind": "fix"})
        await k.close()
        return served_by(k), r
    node, r = run(command())
    assert node != c.writer.name
    assert r["ok"] is False and r["error"]["code"] == "unavailable", r
    c.writer.start()
    head = c.wait_converged(timeout=90)
    assert head == seq0 + 6
    assert c.writer.metrics()["changelogd_nats_republished_total"] == 6
    assert assert_stream_is_log(Stream(c), c.writer.data) == head
    assert_edges_are_the_log(c, head)


def test_the_whole_nats_cluster_lost_is_rebuilt_from_the_log(cluster):
    c = cluster
    tok, epoch = c.writer.admin_token, epoch_of(c.writer)
    head = c.wait_converged()
    for n in c.nats:
        n.kill()
    for n in c.nats:
        n.wipe()
        n.start()
    c.wait_nats()
    m = wait_for("the writer to rebuild the stream",
                 lambda: (lambda m: m if m["changelogd_nats_republished_total"] >= head and
                          m["changelogd_nats_publish_lag"] == 0 else None)(c.writer.metrics()),
                 90)
    assert c.writer.state(m) == "live"
    assert assert_stream_is_log(Stream(c), c.writer.data) == head
    info, _ = Stream(c).dump()
    assert info["first_seq"] == 1
    c.wait_replicas(head)             # made again with 3 replicas, each complete
    # the edges follow the rebuilt stream without a restart
    assert c.wait_converged(timeout=90) == head

    async def go():
        subs = [await subscriber(e, tok, head, epoch) for e in c.edges]
        seqs = await write_on(c.writer, tok, 3, "after the rebuild")
        for s in subs:
            await s.wait_pushes(3, timeout=30)
            await s.close()
        return seqs, [[p["seq"] for p in s.pushes] for s in subs]
    seqs, seen = run(go())
    assert seen == [seqs, seqs] == [list(range(head + 1, head + 4))] * 2
    assert_edges_are_the_log(c, c.wait_converged())


def test_haproxy_takes_stuck_edges_out_by_the_body_of_healthz(cluster):
    """Last (it leaves the stream unusable): a message someone else stores
    in the stream stops both edges (`diverged`: /healthz answers 200 with
    "ok":false); HAProxy's check reads the body, so it takes them out and
    sends every new connection to the writer, which keeps serving."""
    c = cluster
    tok = c.writer.admin_token
    head = c.wait_converged()
    haproxy_idle(c)
    third = LmdbDump(c.writer.data).events()[2][1]     # an event that does not continue
    p = subprocess.run([JSDUMP, c.live_nats().url, "changelog", "publish", "changelog.events",
                        third.hex()], capture_output=True, text=True, timeout=60)
    assert json.loads(p.stdout) == {"seq": head + 1}, p.stdout + p.stderr
    for e in c.edges:
        wait_for("%s to stop at the foreign message" % e.name,
                 lambda: e.state() == "diverged", 30)
        st, body = e.get("/healthz")
        assert st == 200 and json.loads(body)["ok"] is False
    assert c.writer.healthz()["ok"] is True
    wait_for("haproxy to take the edges out",
             lambda: [v["status"] for _, v in sorted(c.haproxy.servers().items())] ==
             ["DOWN", "DOWN", "UP"], 30)

    async def go():
        conns = [await Client.connect(c.haproxy, tok) for _ in range(3)]
        out = [served_by(k) for k in conns]
        r = await conns[0].query("getChangelogEntries", {"limit": 1})
        for k in conns:
            await k.close()
        return out, r
    served, r = run(go())
    assert served == ["writer"] * 3 and r["ok"]


def test_the_haproxy_config_in_the_docs_is_the_one_tested():
    """docs/scaling.md shows the config cluster.py generates (its addresses
    and paths aside)."""
    from cluster import haproxy_config
    with open(os.path.join(REPO, "docs", "scaling.md")) as f:
        doc = f.read()
    block = doc.split("```haproxy\n", 1)[1].split("```", 1)[0]
    assert block == haproxy_config("*:443", "/etc/haproxy/changelog.pem",
                                   "/run/haproxy/changelog.sock", "1s",
                                   [("writer", "127.0.0.1:8081"), ("edge1", "127.0.0.1:8082"),
                                    ("edge2", "127.0.0.1:8083")])
