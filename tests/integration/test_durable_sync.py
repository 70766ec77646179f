"""The deferred meta sync (docs/architecture.md, "Durability without the
fsync on the service thread"): a writer commits without syncing the meta
page and a sync thread makes the commit durable; replies and pushes wait
for that sync. CHANGELOG_TEST_SYNC_FAIL=1 makes every sync of that thread
report an I/O error (the writes themselves still reach the page cache):
then nothing may be acknowledged or pushed, and the server stops.
"""
import asyncio
import json
import os
import subprocess

import websockets.exceptions

from conftest import BIN, Client, Server, run

GONE = (websockets.exceptions.ConnectionClosed, OSError, EOFError, asyncio.TimeoutError)


def audit(*args):
    return subprocess.run([os.path.join(BIN, "changelog-audit")] + list(args),
                          capture_output=True, text=True, timeout=120)


def test_failed_sync_acknowledges_nothing(tmpdir_path, monkeypatch):
    data = os.path.join(tmpdir_path, "data")
    monkeypatch.setenv("CHANGELOG_TEST_SYNC_FAIL", "1")
    s = Server(data).start()
    monkeypatch.delenv("CHANGELOG_TEST_SYNC_FAIL")
    cmd = {"op": "createEntry", "cmd_id": "never-acked",
           "params": {"title": "lost-ack", "body": "b", "kind": "fix"}}

    async def attempt():
        sub = await Client.connect(s, s.admin_token)
        r = await sub.request({"op": "subscribe", "since": 0})
        assert r["ok"], r
        head = r["head"]
        w = await Client.connect(s, s.admin_token)
        reader = await Client.connect(s, s.admin_token)
        rid = await w.send(dict(cmd))
        qid = await reader.send({"op": "query", "name": "getChangelogEntries",
                                 "params": {}})
        got = {}
        for name, c, want in (("command", w, rid), ("query", reader, qid)):
            try:
                got[name] = await c.wait_reply(want, timeout=10)
            except GONE:
                pass
        try:                        # whatever the subscriber still gets
            while True:
                await sub.recv_one(timeout=2)
        except GONE:
            pass
        return head, got, sub.pushes

    head, got, pushes = run(attempt(), timeout=60)
    # the command was never acknowledged, the query never showed its entry
    assert "command" not in got, got
    assert "lost-ack" not in json.dumps(got.get("query", {})), got
    assert not [p for p in pushes if p["seq"] > head], pushes
    assert s.proc.wait(timeout=20) == 1
    assert "cannot sync the log" in s.log(), s.log()
    s.stop()

    # the commit itself reached the file (only the sync's answer was
    # faked): after a restart the retry learns the original result, once
    s2 = Server(data).start()

    async def retry():
        c = await Client.connect(s2, s2.admin_token)
        r = await c.request(dict(cmd))
        r2 = await c.request(dict(cmd))
        await c.close()
        return r, r2

    r, r2 = run(retry(), timeout=60)
    assert r["ok"] and r2["ok"] and r["seq"] == r2["seq"], (r, r2)
    assert s2.stop() == 0
    v = audit("verify", "--data", data)
    assert v.returncode == 0 and v.stdout.startswith("ok:"), (v.stdout, v.stderr)
    p = audit("log", "--data", data, "--format", "jsonl")
    cmds = [json.loads(line).get("cmd") for line in p.stdout.splitlines()]
    assert cmds.count("never-acked") == 1, cmds
