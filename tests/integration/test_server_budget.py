"""Answer memory and per-user rates against the real server (issue 15, items
1, 3 and 4; docs/protocol.md "Limits", docs/operations.md "Memory"):

- a batch of 30 pages of 500 entries x 32 KiB from one member keeps the
  server's resident memory under --max-memory plus the documented slack,
  and the member, reading at full speed, gets every page whole;
- two ~10 MB pages pipelined by a reader at full speed both arrive (they
  used to close it as a slow consumer);
- one user's connections share one request budget (--user-rate,
  --user-burst), admins included;
- the goal: while one member's token does the worst the limits allow, a
  bystander gets an answer to every ping and the memory bound holds.

Nothing here asserts a time: memory is read from /proc/PID/status (VmHWM,
after resetting it through /proc/PID/clear_refs), counts from the replies;
the bystander's ping latencies are printed."""
import asyncio
import json
import os
import subprocess
import sys
import time

from websockets.frames import Frame, Opcode

from conftest import Client, Server, new_member, raw_upgrade, run

MIB = 1024 * 1024
BODY = 32768
# docs/operations.md "Memory": what the server may hold beyond --max-memory
# and what it held before (the projection, the log's pages, the libraries):
# three times the largest answer (PROTO_ANSWER_MAX, 16 MiB: its JSON tree,
# its text and its frame while it is built; a page: its text, which becomes
# its frame, and its entries' texts beyond the cache's cap) plus the entry
# text cache (16 MiB) plus the query cache (32 MiB) plus --ring-bytes (1 MiB
# here)
SLACK = 3 * 16 * MIB + 16 * MIB + 32 * MIB + 1 * MIB


def bound(server, base):
    """The peak RSS allowed: base + --max-memory (64M here) + SLACK; None
    under AddressSanitizer (make asan), whose allocator keeps freed memory
    in a quarantine (256 MiB by default) and adds redzones: the bound is
    glibc's, checked by the normal build; the asan run checks the rest."""
    with open("/proc/%d/maps" % server.proc.pid) as f:
        if "libasan" in f.read():
            return None
    return base + 64 * MIB + SLACK


def within(server, base, peak):
    b = bound(server, base)
    return b is None or peak <= b


def status(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
    return out


def reset_peak(pid):
    with open("/proc/%d/clear_refs" % pid, "w") as f:
        f.write("5")


async def post(c, n, body=BODY, fill="a"):
    """n entries with bodies of `body` bytes, 100 requests per write."""
    for start in range(0, n, 100):
        ids = c.send_batch([{"op": "createEntry",
                             "params": {"title": "e%d" % i, "body": fill * body,
                                        "kind": "fix"}}
                            for i in range(start, min(n, start + 100))])
        for rid in ids:
            r = await c.wait_reply(rid, timeout=60)
            assert r["ok"], r


def seeded(tmpdir, n, args=()):
    """A server whose log holds n entries of 32 KiB posted by member
    "mallory", restarted with args (the setup runs with raised rates)."""
    data = os.path.join(tmpdir, "data")
    s = Server(data, ["--rate", "10000", "--burst", "10000", "--user-rate", "10000",
                      "--user-burst", "10000"]).start()

    async def setup():
        admin = await Client.connect(s, s.admin_token)
        _, mt = await new_member(admin, "mallory")
        _, bt = await new_member(admin, "bob")
        m = await Client.connect(s, mt)
        await post(m, n)
        await m.close()
        await admin.close()
        return mt, bt
    mt, bt = run(setup(), timeout=300)
    assert s.stop() == 0
    s = Server(data, list(args) + ["--ring-bytes", "1M"]).start()
    return s, mt, bt


ATTACK = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                      "attack.py")


def attack_py(role, server, token, *args):
    """tests/bench/attack.py ROLE in its own process (so that this process's
    work never delays the bystander's event loop); its JSON result."""
    return subprocess.Popen([sys.executable, ATTACK, role, "--url", server.ws, "--token", token]
                            + [str(a) for a in args], stdout=subprocess.PIPE)


def result(proc, timeout=300):
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0
    return json.loads(out.decode().strip().splitlines()[-1])


def test_a_batch_of_big_pages_is_bounded_and_delivered(tmpdir_path):
    server, mt, bt = seeded(tmpdir_path, 500, ["--max-memory", "64M"])
    try:
        async def go():
            m = await Client.connect(server, mt, max_size=64 * MIB)
            base = status(server.proc.pid)["VmRSS"]
            reset_peak(server.proc.pid)
            bob = attack_py("bystander", server, bt, "--secs", 8)
            await asyncio.sleep(0.5)
            ids = m.send_batch([{"op": "query", "name": "getChangelogEntries",
                                 "params": {"limit": 500}}] * 30)
            sizes = []
            for rid in ids:
                r = await m.wait_reply(rid, timeout=120)
                assert r["ok"], r
                assert len(r["result"]["entries"]) == 500
                assert "partial" not in r["result"]
                sizes.append(len(json.dumps(r)))
            by = await asyncio.get_running_loop().run_in_executor(None, result, bob)
            peak = status(server.proc.pid)["VmHWM"]
            print("\n  30 pages of %.1f MB: RSS %.0f MB before, peak %.0f MB (bound %.0f); "
                  "bystander: %s" % (sizes[0] / 1e6, base / MIB, peak / MIB,
                                     (bound(server, base) or 0) / MIB, by))
            assert by["pings"] > 10 and by["errors"] == 0, by
            assert within(server, base, peak), (base, peak)
            await m.close()
        run(go(), timeout=300)
    finally:
        assert server.stop() == 0


def test_two_pipelined_10mb_pages_both_arrive(tmpdir_path):
    """Default --max-queue (8 MiB): the second page waits for the first to
    be written instead of closing the reader as a slow consumer."""
    server, mt, _ = seeded(tmpdir_path, 320)
    try:
        async def go():
            m = await Client.connect(server, mt, max_size=64 * MIB)
            ids = m.send_batch([{"op": "query", "name": "getChangelogEntries",
                                 "params": {"limit": 320}},
                                {"op": "query", "name": "getChangelogEntries",
                                 "params": {"limit": 320, "kind": "fix"}},
                                {"op": "ping"}])
            got = [await m.wait_reply(rid, timeout=60) for rid in ids]
            assert [len(r["result"]["entries"]) for r in got[:2]] == [320, 320]
            assert all(len(json.dumps(r)) > 10 * 1000 * 1000 for r in got[:2])
            assert got[2]["pong"]
            _, _, metrics = server.get("/metrics")
            assert b'changelogd_closes_total{reason="slow_consumer"} 0' in metrics
            await m.close()
        run(go(), timeout=120)
    finally:
        assert server.stop() == 0


def test_a_held_request_waits_and_a_closed_one_is_forgotten(tmpdir_path):
    """A client that sends big pages and a ping and never reads: the ping
    waits behind the page that did not fit; it is answered once the client
    reads; a client that goes away while held leaves nothing behind."""
    server, mt, bt = seeded(tmpdir_path, 100, ["--max-queue", "1M", "--sndbuf", "16K"])
    try:
        from test_server_limits import read_frames
        frames = b"".join(Frame(Opcode.TEXT, json.dumps(o).encode()).serialize(mask=True)
                          for o in [{"id": i, "op": "query", "name": "getChangelogEntries",
                                     "params": {"limit": 100, "cursor": 101 - i}}
                                    for i in range(3)] + [{"id": 3, "op": "ping"}])
        hog = raw_upgrade(server, mt, rcvbuf=4096)
        hog.sendall(frames)
        gone = raw_upgrade(server, mt, rcvbuf=4096)
        gone.sendall(frames)
        time.sleep(0.5)
        gone.close()

        async def go():
            c = await Client.connect(server, bt)
            assert (await c.request({"op": "ping"}))["ok"]
            await c.close()
        run(go())
        got = [json.loads(m) for m in read_frames(hog, 4)]
        assert [g["id"] for g in got] == [0, 1, 2, 3]
        assert [len(g["result"]["entries"]) for g in got[:3]] == [100, 99, 98]
        assert got[3]["pong"]
        hog.close()
    finally:
        assert server.stop() == 0


def test_user_rate_is_shared_by_all_its_connections(make_server):
    server = make_server("--user-rate", "1", "--user-burst", "100")

    async def go():
        admin = await Client.connect(server, server.admin_token)
        _, mt = await new_member(admin, "mallory")
        _, bt = await new_member(admin, "bob")
        conns = [await Client.connect(server, mt) for _ in range(10)]
        t0 = time.monotonic()
        sent = [c.send_batch([{"op": "ping"}] * 100) for c in conns]
        replies = [await c.wait_reply(rid, timeout=30) for c, ids in zip(conns, sent)
                   for rid in ids]
        elapsed = time.monotonic() - t0
        ok = sum(r["ok"] for r in replies)
        limited = [r for r in replies if not r["ok"]]
        # the per-connection default (burst 200) would let all 1,000 through
        assert 100 <= ok <= 100 + int(elapsed * 1) + 1, (ok, elapsed)
        assert all(r["error"]["code"] == "rate_limited" and "this user" in r["error"]["message"]
                   for r in limited)
        # another user has a budget of its own
        bob = await Client.connect(server, bt)
        ids = bob.send_batch([{"op": "ping"}] * 50)
        assert [(await bob.wait_reply(rid))["ok"] for rid in ids] == [True] * 50
        # admins are not exempt: 3 connections, 300 pings, one budget of 100
        t0 = time.monotonic()
        more = [await Client.connect(server, server.admin_token) for _ in range(3)]
        sent = [c.send_batch([{"op": "ping"}] * 100) for c in more]
        replies = [await c.wait_reply(rid, timeout=30) for c, ids in zip(more, sent)
                   for rid in ids]
        assert sum(r["ok"] for r in replies) <= 100 + int(time.monotonic() - t0) + 1
        print("\n  10 connections x 100 pings of one user: %d answered in %.2f s, %d refused"
              % (ok, elapsed, len(limited)))
        for c in conns + more + [admin, bob]:
            await c.close()
    run(go())


def test_goal_a_bystander_is_served_while_a_member_does_its_worst(tmpdir_path):
    """Under the default limits, one member's token (tests/bench/attack.py
    attack: readers pipelining big pages, connections that send big pages
    and never read, the adversarial search, ping floods, over several
    connections). The bystander gets every answer; the server's peak RSS
    stays under --max-memory plus the slack; the bystander's p99 is
    printed."""
    server, mt, bt = seeded(tmpdir_path, 500, ["--max-memory", "64M"])
    try:
        base = status(server.proc.pid)["VmRSS"]
        reset_peak(server.proc.pid)
        res = result(attack_py("attack", server, mt, "--bystander-token", bt, "--secs", 6))
        peak = status(server.proc.pid)["VmHWM"]
        print("\n  attack: RSS %.0f MB before, peak %.0f MB (bound %.0f); %s"
              % (base / MIB, peak / MIB, (bound(server, base) or 0) / MIB, res))
        assert res["pings"] > 10 and res["errors"] == 0, res
        assert res["attack"]["pages"] > 0 and res["attack"]["searches"] > 0, res
        assert within(server, base, peak), (base, peak)
        # and the server is still itself
        async def after():
            c = await Client.connect(server, bt)
            assert (await c.request({"op": "ping"}))["ok"]
            await c.close()
        run(after())
    finally:
        assert server.stop() == 0
