"""report.py - the one table at the end of `make bench`.

    report.py BENCH_JSON [RESULTS_DIR]

BENCH_JSON holds the list the *_bench programs appended to ({name, unit,
ours, peer, ratio, goal}). RESULTS_DIR (from tests/bench/run.sh) holds one
JSON object per server case: changelog-bench --json output (fanout_ours,
fanout_peer, fanout_nats, latency_ours, latency_peer, latency_nats,
idle_ours, idle_peer, idle_nats, writes_ours, writes100_ours, reads_ours),
fsync.json (one fdatasync's p50/p99 on the bench disk) and seed_write_bench output
(writes_sqlite, writes_mariadb, reads_mariadb) and tests/bench/attack.py
output (attack_ours). This turns them into rows
of the same shape, appends them to BENCH_JSON, and prints every row with its
ratio and whether the goal was met. Exit 1 if a subscriber saw a gap, a
duplicate or missed an event (a correctness failure, not a speed one).
"""
import json
import os
import sys


def load(d, name):
    try:
        with open(os.path.join(d, name + ".json")) as f:
            return json.loads(f.read().strip().splitlines()[-1])
    except (OSError, ValueError, IndexError):
        return None


def row(name, unit, ours, peer, goal, lower_is_better=False):
    # changelog-bench writes -1 for a figure it could not take
    ours = None if ours is not None and ours < 0 else ours
    peer = None if peer is not None and peer < 0 else peer
    ratio = None
    if ours and peer:
        ratio = round((peer / ours) if lower_is_better else (ours / peer), 2)
    return {"name": name, "unit": unit,
            "ours": None if ours is None else round(ours, 1),
            "peer": None if peer is None else round(peer, 1),
            "ratio": ratio, "goal": goal}


def server_rows(d):
    rows, bad = [], 0
    fo, fp = load(d, "fanout_ours"), load(d, "fanout_peer")

    def g(o, *k):
        return None if o is None else _dig(o, k)

    rows.append(row("fan-out 1 writer -> 1000 subs vs Node ws (deliveries)", "deliveries/s",
                    g(fo, "deliveries_per_s"), g(fp, "deliveries_per_s"), 3))
    rows.append(row("fan-out p99 write->delivered vs Node ws (peer/ours)", "ms",
                    ms(g(fo, "deliver_us", "p99")), ms(g(fp, "deliver_us", "p99")), None, True))
    lo, lp = load(d, "latency_ours"), load(d, "latency_peer")
    rows.append(row("p99 write->delivered, 100 writes/s -> 1000 subs vs Node ws (peer/ours)",
                    "us", g(lo, "deliver_us", "p99"), g(lp, "deliver_us", "p99"), 10000, True))
    rows.append(row("fan-out server RSS per connection vs Node ws (peer/ours)", "bytes",
                    g(fo, "rss_per_conn_bytes"), g(fp, "rss_per_conn_bytes"), None, True))
    fn, ln = load(d, "fanout_nats"), load(d, "latency_nats")
    rows.append(row("fan-out 1 writer -> 1000 subs vs NATS websocket (deliveries)",
                    "deliveries/s", g(fo, "deliveries_per_s"), g(fn, "deliveries_per_s"), None))
    # the servers' own work, whatever the client could take (issue 21)
    for peer, po in (("Node ws", fp), ("NATS websocket", fn)):
        rows.append(row("fan-out: server CPU per delivered push vs %s (peer/ours)" % peer,
                        "us", g(fo, "server_cpu_us_per_delivery"),
                        g(po, "server_cpu_us_per_delivery"), 1.0, True))
    for peer, po in (("Node ws", fp), ("NATS websocket", fn)):
        rows.append(row("fan-out: server syscalls per delivered push vs %s (peer/ours)" % peer,
                        "syscalls", per(fo, "total", "deliveries"),
                        per(po, "total", "deliveries"), None, True))
    rows.append(row("fan-out: server write syscalls per delivered push", "syscalls",
                    per(fo, "write", "deliveries"), None, None))
    for peer, po in (("Node ws", lp), ("NATS websocket", ln)):
        rows.append(row("100 writes/s: server CPU per delivered push vs %s (peer/ours)" % peer,
                        "us", g(lo, "server_cpu_us_per_delivery"),
                        g(po, "server_cpu_us_per_delivery"), None, True))
    fs = load(d, "fsync")
    fgoal = None if g(fs, "p99_us") is None else round(g(fs, "p99_us") + 2000)
    rows.append(row("pinned p99 write->delivered, 100 writes/s (goal: fsync p99 + 2 ms)",
                    "us", g(lo, "deliver_us", "p99"), None, fgoal))
    rows.append(row("  same, Node ws / NATS websocket (no fsync)", "us",
                    g(lp, "deliver_us", "p99"), g(ln, "deliver_us", "p99"), None))
    rows.append(row("one fdatasync on the bench disk, p99", "us", g(fs, "p99_us"), None, None))
    io, ip, inn = load(d, "idle_ours"), load(d, "idle_peer"), load(d, "idle_nats")

    def idle_rss(o):
        # settled figure; if not all 10,000 got in, per connection that did
        v = g(o, "rss_end_per_conn_bytes")
        return v if v is not None and v >= 0 else g(o, "rss_per_live_conn_bytes")
    for peer, po in (("Node ws", ip), ("NATS websocket", inn)):
        rows.append(row("10000 idle wss: server RSS per connection, settled vs %s (peer/ours)"
                        % peer, "bytes", idle_rss(io), idle_rss(po), 6000, True))
    rows.append(row("10000 idle wss: connections that got in (ours, Node ws)", "conns",
                    g(io, "subscribers_live"), g(ip, "subscribers_live"), None))
    rows.append(row("10000 idle wss: server RSS in all", "bytes",
                    None if g(io, "rss_end_kb") is None else g(io, "rss_end_kb") * 1024.0,
                    None, 60 * 1024 * 1024))
    rows.append(row("10000 idle wss: kernel TCP memory per connection (both ends)", "bytes",
                    g(io, "sock_end_per_conn_bytes"), None, None))
    wo, ws, wm = load(d, "writes_ours"), load(d, "writes_sqlite"), load(d, "writes_mariadb")
    rows.append(row("writes 64 writers, acked+fsync'd vs SQLite FULL row/cmd", "events/s",
                    g(wo, "acked_per_s"), g(ws, "per_s"), 20))
    rows.append(row("writes 64 writers, acked+fsync'd vs MariaDB row/request", "events/s",
                    g(wo, "acked_per_s"), g(wm, "per_s"), None))
    rows.append(row("writes 100 writers, acked+fsync'd", "events/s",
                    g(load(d, "writes100_ours"), "acked_per_s"), None, 30000))
    rows.append(row("writes 100 writers: server CPU per acked durable command", "us",
                    g(load(d, "writes100_ours"), "server_cpu_us_per_ack"), None, 12))
    rows.append(row("writes p99 write->ack vs MariaDB (peer/ours)", "ms",
                    ms(g(wo, "write_ack_us", "p99")), ms(g(wm, "p99_us")), None, True))
    ro, rm = load(d, "reads_ours"), load(d, "reads_mariadb")
    rows.append(row("reads getChangelogEntries (50 of 1000) vs MariaDB+JSON", "req/s",
                    g(ro, "reads_per_s"), g(rm, "per_s"), 20))
    rows.append(row("reads: server CPU per answered getChangelogEntries (cached page)", "us",
                    g(ro, "server_cpu_us_per_read"), None, 5))
    at = load(d, "attack_ours")
    rows.append(row("bystander ping p99 while one member attacks (--max-memory 64M)", "us",
                    None if g(at, "p99_ms") is None else g(at, "p99_ms") * 1000, None, 50000))
    rows.append(row("server peak RSS during the attack, over RSS before", "bytes",
                    None if at is None or g(at, "rss_peak_bytes") is None else
                    g(at, "rss_peak_bytes") - g(at, "rss_before_bytes"), None,
                    64 * 1024 * 1024 + 97 * 1024 * 1024))
    if at is not None:
        if g(at, "errors") or not g(at, "pings"):
            bad += 1
        rows.append({"name": "attack: bystander pings unanswered or refused", "unit": "events",
                     "ours": g(at, "errors"), "peer": None, "ratio": None, "goal": 0})
    for name, o in (("fanout_ours", fo), ("fanout_peer", fp), ("fanout_nats", fn),
                    ("latency_ours", lo), ("latency_peer", lp), ("latency_nats", ln),
                    ("writes_ours", wo)):
        if o is None:
            continue
        errs = o.get("gaps", 0) + o.get("dups", 0) + o.get("undelivered", 0)
        if errs:
            bad += 1
        rows.append({"name": "%s: gaps+dups+undelivered" % name, "unit": "events",
                     "ours": errs, "peer": None, "ratio": None, "goal": 0})
    return rows, bad


def _dig(o, keys):
    for k in keys:
        if not isinstance(o, dict) or k not in o:
            return None
        o = o[k]
    return o


def per(o, syscall, unit):
    """syscalls (perf stat on the server's pid) per unit of work"""
    n = _dig(o, ("server_syscalls", syscall)) if o else None
    u = o.get(unit) if o else None
    return None if n is None or not u else n / float(u)


def ms(us):
    return None if us is None else us / 1000.0


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, (int, float)):
        if abs(v) >= 1e6:
            return "%.2f M" % (v / 1e6)
        if abs(v) >= 1e4:
            return "%.1f k" % (v / 1e3)
        return ("%.2f" % v).rstrip("0").rstrip(".") if isinstance(v, float) else str(v)
    return str(v)


def main(argv):
    path = argv[1]
    with open(path) as f:
        rows = json.load(f)
    bad = 0
    if len(argv) > 2:
        extra, bad = server_rows(argv[2])
        rows.extend(extra)
        with open(path, "w") as f:
            json.dump(rows, f, indent=1)
    w = max(len(r["name"]) for r in rows) if rows else 10
    print()
    print("%-*s %-13s %10s %10s %7s %6s %s" % (w, "case", "unit", "ours", "peer", "ratio", "goal", ""))
    for r in rows:
        met = ""
        goal, ours, ratio = r.get("goal"), r.get("ours"), r.get("ratio")
        if goal is not None and ours is not None:
            if r["unit"] == "events" and r.get("peer") is None:
                met = "ok" if ours == goal else "FAIL"
            elif r["unit"] in ("bytes", "us", "syscalls"):   # a cost: the goal is absolute
                met = "met" if ours <= goal else "not met"
            elif ratio is not None and goal < 100:
                met = "met" if ratio >= goal else "not met"
            elif r["unit"].endswith("/s"):
                met = "met" if ours >= goal else "not met"
        print("%-*s %-13s %10s %10s %7s %6s %s" % (w, r["name"], r["unit"], fmt(r.get("ours")),
                                                 fmt(r.get("peer")), fmt(r.get("ratio")),
                                                 fmt(r.get("goal")), met))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
