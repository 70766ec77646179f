#!/usr/bin/python3
"""attack.py - one member's token doing the worst the limits allow, and a
bystander's pings meanwhile (issue 15; docs/benchmarks.md "attack").

    attack.py seed      --url U --token ADMIN [--entries 500]
        creates members "mallory" and "bob", posts ENTRIES entries of 32 KiB
        as mallory (the server should run with raised rates for this), and
        prints {"mallory": TOKEN, "bob": TOKEN}
    attack.py bystander --url U --token T --secs S
        pings every 20 ms for S seconds, one at a time; prints
        {"pings", "errors", "p50_ms", "p99_ms", "max_ms"}
    attack.py attack    --url U --token MALLORY --bystander-token BOB --secs S
        for S seconds, over several connections of one token: two readers
        pipelining pages of 500 entries, three connections that send pages
        and never read, the adversarial search ("a"*199+"b" over bodies of
        "a"), two ping floods; meanwhile a bystander process (the role
        above, so the attacker's work never delays its event loop) pings.
        Prints the bystander's figures plus what the attack got back; with
        --server-pid, also the server's VmRSS before and its peak (VmHWM,
        reset first through /proc/PID/clear_refs) during the attack, and the
        CPU seconds it used meanwhile (utime + stime: robust where the
        machine is shared, unlike the latencies).

URLs are wss:// (the certificate is not checked) or ws://. Output is one
JSON line on stdout.
"""
import argparse
import asyncio
import base64
import json
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

import websockets
from websockets.frames import Frame, Opcode

MIB = 1024 * 1024
NEEDLE = "a" * 199 + "b"


def tls():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


async def connect(url, token):
    kw = {"max_size": 64 * MIB}
    if url.startswith("wss:"):
        kw["ssl"] = tls()
    return await websockets.connect("%s/ws/%s" % (url, token), **kw)


class Conn:
    """Replies matched by id; pushes and others ignored."""

    def __init__(self, ws):
        self.ws, self.replies, self.next = ws, {}, 1

    def batch(self, objs):
        raw, ids = b"", []
        for o in objs:
            o = dict(o, id=self.next)
            ids.append(self.next)
            self.next += 1
            raw += Frame(Opcode.TEXT, json.dumps(o).encode()).serialize(mask=True)
        self.ws.transport.write(raw)
        return ids

    async def reply(self, rid, timeout=120):
        while rid not in self.replies:
            msg = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if isinstance(msg, dict) and "id" in msg:
                self.replies[msg["id"]] = msg
        return self.replies.pop(rid)


async def seed(a):
    admin = Conn(await connect(a.url, a.token))
    toks = {}
    for name in ("mallory", "bob"):
        rid, = admin.batch([{"op": "createUser", "params": {"name": name, "role": "member"}}])
        r = await admin.reply(rid)
        assert r["ok"], r
        toks[name] = r["token"]
    m = Conn(await connect(a.url, toks["mallory"]))
    for start in range(0, a.entries, 100):
        ids = m.batch([{"op": "createEntry", "params": {"title": "e%d" % i, "body": "a" * 32768,
                                                       "kind": "fix"}}
                       for i in range(start, min(a.entries, start + 100))])
        for rid in ids:
            r = await m.reply(rid)
            assert r["ok"], r
    await m.ws.close()
    await admin.ws.close()
    return toks


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))] * 1000, 2) if xs else None


async def bystander(a):
    c = Conn(await connect(a.url, a.token))
    lat, errors = [], 0
    end = time.monotonic() + a.secs
    while time.monotonic() < end:
        t0 = time.monotonic()
        rid, = c.batch([{"op": "ping"}])
        r = await c.reply(rid)
        lat.append(time.monotonic() - t0)
        if not (r.get("ok") and r.get("pong")):
            errors += 1
        await asyncio.sleep(0.02)
    await c.ws.close()
    return {"pings": len(lat), "errors": errors, "p50_ms": pct(lat, 0.5),
            "p99_ms": pct(lat, 0.99), "max_ms": pct(lat, 1.0)}


def hog(url, token, n):
    """A raw websocket that sends n page requests and never reads."""
    u = urllib.parse.urlparse(url)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((u.hostname, u.port))
    if u.scheme == "wss":
        sock = tls().wrap_socket(sock, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(("GET /ws/%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                  "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n" % (token, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    sock.sendall(b"".join(Frame(Opcode.TEXT, json.dumps(
        {"op": "query", "name": "getChangelogEntries",
         "params": {"limit": 500, "cursor": 501 - k}}).encode()).serialize(mask=True)
        for k in range(n)))
    return sock


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return None


async def attack(a):
    got = {"pages": 0, "searches": 0, "pings": 0, "refused": 0}
    if a.server_pid:
        rss = vm(a.server_pid, "VmRSS")
        with open("/proc/%d/clear_refs" % a.server_pid, "w") as f:
            f.write("5")
        cpu0 = cpu_s(a.server_pid)
    stop = asyncio.Event()

    async def loop(kind, objs):
        c = Conn(await connect(a.url, a.token))
        while not stop.is_set():
            for rid in c.batch(objs):
                r = await c.reply(rid)
                got[kind if r.get("ok") else "refused"] += 1
        await c.ws.close()

    pages = [{"op": "query", "name": "getChangelogEntries",
              "params": {"limit": 500, "cursor": 501 - k}} for k in range(4)]
    searches = [{"op": "query", "name": "getChangelogEntries", "params": {"q": NEEDLE[k:]}}
                for k in range(8)]
    pings = [{"op": "ping"}] * 200
    by = subprocess.Popen([sys.executable, os.path.abspath(__file__), "bystander",
                           "--url", a.url, "--token", a.bystander_token,
                           "--secs", str(a.secs)], stdout=subprocess.PIPE)
    hogs = [hog(a.url, a.token, 20) for _ in range(3)]
    work = [asyncio.ensure_future(loop(k, o)) for k, o in
            (("pages", pages), ("pages", pages), ("searches", searches), ("pings", pings),
             ("pings", pings))]
    await asyncio.sleep(a.secs)
    out, _ = await asyncio.get_running_loop().run_in_executor(None, by.communicate)
    stop.set()
    await asyncio.gather(*work)
    for h in hogs:
        h.close()
    res = json.loads(out.decode().strip().splitlines()[-1])
    res["attack"] = got
    if a.server_pid:
        res["rss_before_bytes"] = rss
        res["rss_peak_bytes"] = vm(a.server_pid, "VmHWM")
        res["server_cpu_s"] = round(cpu_s(a.server_pid) - cpu0, 2)
    return res


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("role", choices=("seed", "bystander", "attack"))
    ap.add_argument("--url", required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--bystander-token")
    ap.add_argument("--entries", type=int, default=500)
    ap.add_argument("--secs", type=float, default=10)
    ap.add_argument("--server-pid", type=int)
    a = ap.parse_args()
    fn = {"seed": seed, "bystander": bystander, "attack": attack}[a.role]
    print(json.dumps(asyncio.run(fn(a))))


if __name__ == "__main__":
    main()
