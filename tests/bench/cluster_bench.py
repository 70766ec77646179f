#!/usr/bin/python3
"""cluster_bench.py - fan-out on one node vs through two edges (make bench).

    cluster_bench.py --json BENCH_JSON [--secs S] [--rate R] [--subs N]

One cluster (tests/cluster/cluster.py: 3 NATS JetStream nodes, the writer
with stream replicas 3, two edges; no HAProxy: the load clients connect to
the nodes' plain ws ports), two runs on it, each with N (default 1,000)
subscribers held by two changelog-bench processes of N/2 and one writer
process sending R (default 50) createEntry/s for S (default 10) seconds:

  one    both subscriber processes on the writer
  edges  one subscriber process on each edge, the writer process on the writer

Server CPU is utime+stime of each server process (/proc/PID/stat) from just
before the writes start until every node has applied the last one;
deliveries on a node = events in that window x its subscribers, so CPU per
delivery is robust on a shared machine where wall-clock figures are not.
write->delivered latency comes from the subscribers (the writer puts its
CLOCK_MONOTONIC send time in each title). Rows are appended to BENCH_JSON
in the benchjson.h shape; the raw figures go to stdout as one JSON object.
Exit 1 if a subscriber saw a gap or a duplicate or missed an event.
"""
import argparse
import json
import os
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "cluster"))
from cluster import BIN, Cluster, Node, wait_for  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")
OPEN = ["--rate", "1000000", "--burst", "1000000", "--user-rate", "1000000",
        "--user-burst", "1000000"]


def bench(url, token, *args):
    return subprocess.Popen([os.path.join(BIN, "changelog-bench"), "--url", url, "--token",
                             token, "--json"] + [str(a) for a in args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(p, timeout):
    out, err = p.communicate(timeout=timeout)
    if not out.strip():
        raise RuntimeError("changelog-bench said nothing (rc %s):\n%s" % (p.returncode, err))
    return json.loads(out.strip().splitlines()[-1])


def run_case(c, placement, secs, rate):
    """placement: [(node, subscribers)], one subscriber process each.
    Returns the figures of the case."""
    tok = c.writer.admin_token
    c.wait_converged()
    base = {n.name: n.metrics()["changelogd_connections"] for n in c.nodes}
    holders = [bench(n.ws, tok, "--subscribers", k, "--writers", 0,
                     "--duration", secs + 120) for n, k in placement]
    want = {n.name: base[n.name] for n in c.nodes}
    for n, k in placement:
        want[n.name] += k
    wait_for("the subscribers to connect",
             lambda: all(n.metrics()["changelogd_connections"] >= want[n.name]
                         for n in c.nodes), 60, every=0.2)
    procs = c.nats + c.nodes
    # idle: what the cluster costs with no writes (heartbeats, raft), per second
    time.sleep(1)
    idle0 = {p.name: p.cpu_ticks() for p in procs}
    time.sleep(3)
    idle = {p.name: (p.cpu_ticks() - idle0[p.name]) / TICK / 3 for p in procs}
    n_writes = int(rate * secs)
    seq0 = c.writer.metrics()["changelogd_seq"]
    cpu0 = {p.name: p.cpu_ticks() for p in procs}
    t0 = time.monotonic()
    wp = bench(c.writer.ws, tok, "--writers", 1, "--depth", 4, "--rate", rate,
               "--duration", secs + 30, "--max-writes", n_writes)
    # the window ends when every node has applied the last write (the
    # writer process then drains on its own: client time, not counted)
    wait_for("the writes", lambda: c.writer.metrics()["changelogd_seq"] >= seq0 + n_writes,
             secs + 60, every=0.1)
    head = c.wait_converged(timeout=120)
    wall = time.monotonic() - t0
    cpu = {p.name: (p.cpu_ticks() - cpu0[p.name]) / TICK for p in procs}
    w = finish(wp, 60)
    events = head - seq0
    for h in holders:             # ^C: they report what they received
        h.send_signal(signal.SIGINT)
    got = [finish(h, 60) for h in holders]
    on = {n.name: 0 for n in c.nodes}
    for n, k in placement:
        on[n.name] += k
    per = {}
    for n in c.nodes:
        deliveries = events * on[n.name]
        per[n.name] = {"subscribers": on[n.name], "cpu_s": round(cpu[n.name], 3),
                       "us_per_delivery": round(cpu[n.name] * 1e6 / deliveries, 3)
                       if deliveries else None,
                       "us_per_event": round(cpu[n.name] * 1e6 / events, 1)}
    nats_cpu = sum(cpu[n.name] for n in c.nats)
    errors = sum(g["gaps"] + g["dups"] for g in got)
    delivered = sum(g["deliveries"] for g in got)
    missed = events * sum(k for _, k in placement) - delivered
    return {"events": events, "acked": w["acked"], "window_s": round(wall, 2),
            "idle_cpu_per_s": {k: round(v, 4) for k, v in idle.items()},
            "nodes": per, "nats_cpu_s": round(nats_cpu, 3),
            "nats_us_per_event": round(nats_cpu * 1e6 / events, 1),
            "deliver_us": [dict(g["deliver_us"], node=n.name) for (n, _), g in
                           zip(placement, got)],
            "gaps_dups": errors, "missed": missed}


def rows_of(one, edges, lat, feed2, feed6, rate, lat_rate, subs):
    def p(case, q, nodes=None):
        return max(d[q] for d in case["deliver_us"] if nodes is None or d["node"] in nodes)
    e_names = [n for n, v in edges["nodes"].items() if v["subscribers"]]
    e_us = sum(edges["nodes"][n]["us_per_delivery"] for n in e_names) / len(e_names)
    one_us = one["nodes"]["writer"]["us_per_delivery"]

    def row(name, unit, ours, peer=None, lower=True):
        ratio = round(peer / ours, 2) if ours and peer and lower else None
        return {"name": name, "unit": unit, "ours": None if ours is None else round(ours, 2),
                "peer": None if peer is None else round(peer, 2), "ratio": ratio, "goal": None}
    half = subs // 2
    return [
        row("cluster: %d subs on one node, server CPU per delivery" % subs, "us", one_us),
        row("cluster: %d subs on each of 2 edges, edge CPU per delivery (peer: one node)"
            % half, "us", e_us, one_us),
        row("cluster: writer CPU per event feeding 2 edges, no local subscribers", "us",
            edges["nodes"]["writer"]["us_per_event"]),
        row("cluster: 3 NATS nodes (R3) CPU per event, 2 edges consuming", "us",
            edges["nats_us_per_event"]),
        row("cluster: writer CPU per event feeding 6 edges (peer: 2 edges), no subscribers",
            "us", feed6["nodes"]["writer"]["us_per_event"],
            feed2["nodes"]["writer"]["us_per_event"]),
        row("cluster: NATS CPU per event per more edge consuming (2 -> 6 edges)", "us",
            (feed6["nats_us_per_event"] - feed2["nats_us_per_event"]) / 4),
        row("cluster: edge CPU per event applied (fsync'd append), no subscribers", "us",
            sum(v["us_per_event"] for k, v in feed6["nodes"].items() if k != "writer") / 6),
        row("cluster: 3 NATS nodes idle CPU (heartbeats, raft)", "ms/s",
            sum(v for k, v in edges["idle_cpu_per_s"].items() if k.startswith("nats")) * 1e3),
        row("cluster: p50 write->delivered through an edge, %d/s (peer: one node)" % rate,
            "us", p(edges, "p50"), p(one, "p50")),
        row("cluster: p99 write->delivered through an edge, %d/s (peer: one node)" % rate,
            "us", p(edges, "p99"), p(one, "p99")),
        row("cluster: p50 write->delivered on an edge, %d/s, 10 subs a node (peer: writer)"
            % lat_rate, "us", p(lat, "p50", e_names), p(lat, "p50", ["writer"])),
        row("cluster: p99 write->delivered on an edge, %d/s, 10 subs a node (peer: writer)"
            % lat_rate, "us", p(lat, "p99", e_names), p(lat, "p99", ["writer"])),
        {"name": "cluster fan-out: gaps+dups+missed", "unit": "events",
         "ours": sum(x["gaps_dups"] + x["missed"] for x in (one, edges, lat, feed2, feed6)),
         "peer": None, "ratio": None, "goal": 0},
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--json", required=True, help="the bench.json list to append to")
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--rate", type=int, default=50)
    ap.add_argument("--subs", type=int, default=1000)
    ap.add_argument("--dir", help="work directory (default: a temp dir, removed)")
    a = ap.parse_args()
    with Cluster(a.dir, lifetime=int(a.secs) * 4 + 600, writer_args=OPEN,
                 edge_args=OPEN) as c:
        c.haproxy.stop()          # the load clients connect to the nodes
        half = a.subs // 2
        one = run_case(c, [(c.writer, half), (c.writer, a.subs - half)], a.secs, a.rate)
        edges = run_case(c, [(e, half) for e in c.edges], a.secs, a.rate)
        lat = run_case(c, [(n, 10) for n in c.nodes], a.secs, 20)
        # how the cost grows with the edges one writer feeds: 2, then 6
        # edges without subscribers
        feed2 = run_case(c, [], a.secs, a.rate)
        for i in range(len(c.edges), 6):
            e = Node(c.work, "edge%d" % (i + 1), c.nats[(i + 1) % 3].url, edge=True, extra=OPEN)
            c.edges.append(e.start())
        feed6 = run_case(c, [], a.secs, a.rate)
    out = {"rate": a.rate, "secs": a.secs, "subscribers": a.subs, "one": one, "edges": edges,
           "latency": lat, "feed2": feed2, "feed6": feed6, "load_average": open("/proc/loadavg").read().split()[:3]}
    print(json.dumps(out))
    rows = rows_of(one, edges, lat, feed2, feed6, a.rate, 20, a.subs)
    try:
        with open(a.json) as f:
            have = json.load(f)
    except (OSError, ValueError):
        have = []
    with open(a.json, "w") as f:
        json.dump((have if isinstance(have, list) else []) + rows, f, indent=1)
    return 1 if rows[-1]["ours"] else 0


if __name__ == "__main__":
    sys.exit(main())
