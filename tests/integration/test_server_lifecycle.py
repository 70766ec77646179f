"""The process: first start (log, admin token once, TLS files), restart
(same answers, same cert, no new token), SIGTERM with commands in flight
(every acknowledged command survives; sessions get 1001), /healthz and
/metrics, --plain, the command line, and appends by another process
(changelog-admin) picked up live."""
import asyncio
import json
import os
import signal
import ssl
import stat
import subprocess
import time

import pytest
import websockets

from conftest import BIN, Client, Server, all_entries, run, sanitizer_reports


def test_first_start_and_restart(tmpdir_path):
    data = os.path.join(tmpdir_path, "data")
    s = Server(data).start()
    line = s.first_stdout_line()
    assert line.startswith("admin token: clg_"), line
    token = line.split(": ", 1)[1].strip()
    assert len(token) == 47
    with open(os.path.join(data, "admin-token")) as f:
        assert f.read().strip() == token
    assert stat.S_IMODE(os.stat(os.path.join(data, "admin-token")).st_mode) == 0o600
    key = os.path.join(data, "tls", "key.pem")
    cert = os.path.join(data, "tls", "cert.pem")
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    text = subprocess.run(["openssl", "x509", "-in", cert, "-noout", "-text"],
                          capture_output=True, text=True).stdout
    assert "DNS:localhost" in text and "IP Address:127.0.0.1" in text
    assert "prime256v1" in text or "P-256" in text
    with open(cert, "rb") as f:
        cert_bytes = f.read()

    async def write_and_read():
        c = await Client.connect(s, token)
        e = (await c.command("createEntry", {"title": "Survives", "body": "restart",
                                             "kind": "feature"}))["entry"]
        await c.command("addComment", {"entry": e, "body": "c1"})
        await c.command("setStatus", {"entry": e, "status": "resolved"})
        answers = [await c.query("getChangelogEntries"), await c.query("getEntry", {"entry": e}),
                   await c.query("getEntryHistory", {"entry": e})]
        await c.close()
        return e, answers

    e, before = run(write_and_read())
    assert s.stop() == 0
    log = s.log()
    assert token not in log
    assert "INFO" in log and "listening on wss://" in log

    s2 = Server(data).start()
    assert s2.admin_token == token
    async def reread():
        c = await Client.connect(s2, token)
        answers = [await c.query("getChangelogEntries"), await c.query("getEntry", {"entry": e}),
                   await c.query("getEntryHistory", {"entry": e})]
        await c.close()
        return answers
    after = run(reread())
    strip = lambda r: {k: v for k, v in r.items() if k != "id"}
    assert [strip(a) for a in after] == [strip(b) for b in before]
    with open(cert, "rb") as f:
        assert f.read() == cert_bytes
    assert s2.stop() == 0
    assert "admin token" not in s2.log().split("listening")[-1]
    assert not sanitizer_reports(s2.log())


def test_sigterm_loses_no_acknowledged_command(tmpdir_path):
    data = os.path.join(tmpdir_path, "data")
    fast = ["--rate", "100000", "--burst", "100000", "--user-rate", "100000",
            "--user-burst", "100000"]
    s = Server(data, fast).start()
    token = s.admin_token
    acked = {}        # cmd_id -> reply
    sent = []
    closes = []

    connected = []

    async def writer(n):
        c = await Client.connect(s, token)
        connected.append(n)
        i = 0
        try:
            while True:
                cid = "w%d-%d" % (n, i)
                i += 1
                sent.append(cid)
                await c.ws.send(json.dumps({"id": cid, "op": "createEntry", "cmd_id": cid,
                                            "params": {"title": cid, "kind": "fix"}}))
                if i % 4 == 0:        # keep a few in flight
                    while len([x for x in c.replies]) < 2:
                        await c.recv_one(timeout=5)
                    for rid, r in list(c.replies.items()):
                        assert r["ok"], r
                        acked[rid] = r
                        del c.replies[rid]
        except websockets.exceptions.ConnectionClosed as e:
            closes.append(e.code)
        for rid, r in c.replies.items():
            if r.get("ok"):
                acked[rid] = r

    async def go():
        tasks = [asyncio.create_task(writer(n)) for n in range(4)]
        # SIGTERM once every writer is in and commands are being acked (not
        # after a fixed delay: a loaded machine may take longer to connect)
        deadline = time.monotonic() + 30
        while (len(connected) < 4 or len(acked) < 8) and time.monotonic() < deadline:
            if any(t.done() for t in tasks):
                break
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)          # and a few more in flight
        s.proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(asyncio.gather(*tasks), 20)

    run(go())
    assert s.proc.wait(timeout=10) == 0
    assert acked, "no command was acknowledged before SIGTERM"
    print("sigterm: %d sent, %d acknowledged" % (len(sent), len(acked)))
    assert closes and all(code == 1001 for code in closes), closes

    s2 = Server(data, fast).start()
    async def check():
        c = await Client.connect(s2, token)
        titles = {e["title"]: e["id"] for e in await all_entries(c)}
        for cid, r in acked.items():
            assert titles.get(cid) == r["entry"], cid
        # retrying every command id: acknowledged ones return their reply,
        # the rest run now; either way exactly one entry per id
        for cid in sent:
            r = await c.request({"op": "createEntry", "cmd_id": cid,
                                 "params": {"title": cid, "kind": "fix"}})
            assert r["ok"], r
            if cid in acked:
                assert r["seq"] == acked[cid]["seq"] and r["entry"] == acked[cid]["entry"]
        assert sorted(e["title"] for e in await all_entries(c)) == sorted(sent)
        await c.close()
    run(check())
    assert s2.stop() == 0
    assert not sanitizer_reports(s2.log())


def test_healthz_and_metrics(server):
    status, headers, body = server.get("/healthz")
    h = json.loads(body)
    assert status == 200 and headers["content-type"].startswith("application/json")
    assert h["ok"] is True and h["seq"] == 2 and len(h["epoch"]) == 32
    assert h["connections"] == 0

    async def traffic():
        c = await Client.connect(server, server.admin_token)
        await c.command("createEntry", {"title": "m", "kind": "fix"})
        await c.request({"op": "ping"})
        _, _, b = server.get("/healthz")
        assert json.loads(b)["connections"] == 1 and json.loads(b)["seq"] == 3
        await c.close()
    run(traffic())
    status, headers, text = server.get("/metrics")
    text = text.decode()
    assert status == 200 and headers["content-type"].startswith("text/plain")
    vals = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            vals[k] = float(v)
    assert vals["changelogd_messages_in_total"] == 2
    assert vals["changelogd_messages_out_total"] >= 2
    assert vals["changelogd_commits_total"] == 1
    assert vals["changelogd_events_total"] == 1
    assert vals["changelogd_commit_seconds_count"] == 1
    assert vals['changelogd_commit_seconds_bucket{le="+Inf"}'] == 1
    assert "changelogd_queue_bytes" in vals and "changelogd_connections" in vals
    assert 'changelogd_closes_total{reason="slow_consumer"}' in vals
    for path in ("/", "/nope", "/healthz/x", "/ws"):
        with pytest.raises(Exception) as ei:
            server.get(path)
        assert getattr(ei.value, "code", None) == 404, path


def test_plain_mode(make_server):
    s = make_server(plain=True)
    assert "plain" in s.log() and "TLS" in s.log()
    async def go():
        c = await Client.connect(s, s.admin_token)
        assert s.url("x").startswith("ws://")
        assert (await c.request({"op": "ping"}))["ok"]
        await c.close()
    run(go())


def test_command_line():
    exe = os.path.join(BIN, "changelogd")
    r = subprocess.run([exe, "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--max-conns" in r.stdout and "--plain" in r.stdout
    for bad in ([], ["--data"], ["--data", "x", "--max-msg", "12"], ["--data", "x", "--listen", "nope"],
                ["--data", "x", "--cert", "c"], ["--data", "x", "extra"], ["--bogus"]):
        r = subprocess.run([exe] + bad, capture_output=True, text=True)
        assert r.returncode == 2, (bad, r.stderr)


def test_another_process_appends(server):
    admin_bin = os.path.join(BIN, "changelog-admin")
    if not os.access(admin_bin, os.X_OK):
        pytest.skip("bin/changelog-admin is not built: cannot append from another process")

    def admin(*args):
        return subprocess.run([admin_bin] + list(args) + ["--data", server.data],
                              capture_output=True, text=True, timeout=20)

    async def go():
        watcher = await Client.connect(server, server.admin_token)
        epoch = (await watcher.query("whoami"))["epoch"]
        await watcher.request({"op": "subscribe", "since": 2, "epoch": epoch})
        r = admin("user", "add", "dave")
        assert r.returncode == 0, r.stderr
        r = admin("token", "issue", "dave", "--label", "laptop")
        assert r.returncode == 0, r.stderr
        tok = r.stdout.strip().splitlines()[-1]
        t0 = time.monotonic()
        while True:      # works within a second, with no restart
            try:
                dave = await Client.connect(server, tok)
                break
            except websockets.exceptions.InvalidStatusCode as e:
                assert e.status_code == 403
                assert time.monotonic() - t0 < 1.0, "token not accepted within a second"
                await asyncio.sleep(0.05)
        who = await dave.query("whoami")
        assert who["result"]["user"]["name"] == "dave"
        # the watcher saw the other process's events live, in order
        await watcher.wait_pushes(1)
        assert watcher.pushes[0]["event"]["type"] == "user.created"
        # our own writes still go through (append-if-unchanged caught up)
        c = await dave.command("createEntry", {"title": "by dave", "kind": "fix"})
        assert c["ok"], c
        # a revocation by another process closes dave's session
        r = admin("token", "revoke", tok)
        assert r.returncode == 0, r.stderr
        with pytest.raises(websockets.exceptions.ConnectionClosed) as ei:
            for _ in range(50):
                await dave.recv_one(timeout=3)
        assert ei.value.code == 1008 and ei.value.reason == "token revoked"
        await watcher.close()
    run(go())


def test_disk_full_refuses_then_recovers(tmpdir_path):
    """A failing commit (a full disk) refuses the batch's commands as
    `unavailable`, loses nothing acknowledged, keeps answering queries, and
    works again once there is space. Needs a small tmpfs (root)."""
    mnt = os.path.join(tmpdir_path, "tiny")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here: " + r.stderr.strip())
    try:
        filler = os.path.join(mnt, "filler")
        with open(filler, "wb") as f:
            f.write(b"\0" * (1024 * 1024))
        s = Server(os.path.join(mnt, "data")).start()

        async def go():
            c = await Client.connect(s, s.admin_token)
            sub = await Client.connect(s, s.admin_token)
            await sub.request({"op": "subscribe"})
            acked, refused = [], None
            for i in range(300):
                r = await c.command("createEntry", {"title": "t%d" % i, "body": "x" * 30000,
                                                    "kind": "fix"}, cmd_id="full-%d" % i)
                if not r["ok"]:
                    refused = (i, r)
                    break
                acked.append(r)
            assert refused, "the disk never filled"
            i, r = refused
            assert r["error"]["code"] == "unavailable", r
            assert "nothing was applied" in r["error"]["message"]
            q = await c.query("getChangelogEntries", {"limit": 500})
            assert q["ok"] and len(q["result"]["entries"]) == len(acked)
            assert q["at"] == acked[-1]["seq"]
            # pushes only for what was committed
            await sub.wait_pushes(len(acked))
            await asyncio.sleep(0.2)
            assert [p["seq"] for p in sub.pushes] == [a["seq"] for a in acked]
            os.unlink(filler)
            r = await c.command("createEntry", {"title": "t%d" % i, "body": "y",
                                                "kind": "fix"}, cmd_id="full-%d" % i)
            assert r["ok"] and r["seq"] == acked[-1]["seq"] + 1, r
            await c.close()
            await sub.close()
            return len(acked) + 1

        n = run(go())
        assert s.stop() == 0
        assert "commit failed" in s.log()
        s2 = Server(os.path.join(mnt, "data")).start()
        _, _, h = s2.get("/healthz")
        assert json.loads(h)["seq"] == 2 + n
        assert s2.stop() == 0
    finally:
        subprocess.run(["umount", "-l", mnt], capture_output=True)
