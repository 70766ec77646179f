"""changelog-admin and changelog-audit beside a running changelogd: tokens
issued by the tool connect within a second, revocations close the live
sessions, both writers interleave safely, audit and backup run on the live
log."""
import asyncio
import json
import time

import pytest
import websockets

from conftest import Client, run
from tools_util import run_admin, run_audit


async def connect_within(server, token, seconds=1.0):
    """Connect with a token another process just issued, retrying 403s."""
    t0 = time.monotonic()
    while True:
        try:
            return await Client.connect(server, token)
        except websockets.exceptions.InvalidStatusCode as e:
            assert e.status_code == 403, e.status_code
            assert time.monotonic() - t0 < seconds, "token not accepted within %ss" % seconds
            await asyncio.sleep(0.05)


async def closed_by_server(client, timeout=3.0):
    """Wait until the server closes client; returns (code, reason)."""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            await client.recv_one(timeout=max(0.01, deadline - time.monotonic()))
    except websockets.exceptions.ConnectionClosed as e:
        return e.code, e.reason
    except asyncio.TimeoutError:
        pass
    raise AssertionError("the server did not close the session within %ss" % timeout)


def test_issue_then_revoke_by_id_and_by_user(server):
    data = server.data

    async def go():
        p = run_admin("user", "add", "erin", "--data", data)
        assert p.returncode == 0, p.stderr
        first = p.stdout.strip()
        p = run_admin("token", "issue", "erin", "--label", "phone", "--data", data)
        assert p.returncode == 0, p.stderr
        second = p.stdout.strip()
        a = await connect_within(server, first)
        b = await connect_within(server, second)
        who = await b.query("whoami")
        assert who["result"]["user"]["name"] == "erin"

        # revoke the second by its id: only b is closed
        tid = json.loads(run_admin("user", "list", "--format", "json", "--data", data,
                                   check=True).stdout)
        tid = [t["id"] for u in tid if u["name"] == "erin" for t in u["tokens"]
               if t["label"] == "phone"][0]
        p = run_admin("token", "revoke", str(tid), "--data", data)
        assert p.returncode == 0, p.stderr
        assert await closed_by_server(b) == (1008, "token revoked")
        assert (await a.request({"op": "ping"}))["ok"]

        # by user name: every remaining session of erin is closed
        c = await Client.connect(server, first)
        p = run_admin("token", "revoke", "erin", "--data", data)
        assert p.returncode == 0, p.stderr
        assert await closed_by_server(a) == (1008, "token revoked")
        assert await closed_by_server(c) == (1008, "token revoked")
        with pytest.raises(websockets.exceptions.InvalidStatusCode) as ei:
            await Client.connect(server, first)
        assert ei.value.status_code == 403
    run(go())


def test_tool_and_clients_write_together(server):
    """Clients commit through the server while the tool appends: no write is
    lost, the server sees the tool's users, the log verifies."""
    data = server.data

    async def go():
        admin = await Client.connect(server, server.admin_token)
        loop = asyncio.get_running_loop()

        async def client_writes():
            for i in range(40):
                r = await admin.command("createEntry", {"title": "e%d" % i, "kind": "fix"})
                assert r["ok"], r

        def tool_writes():
            return [run_admin("user", "add", "tool%d" % i, "--data", data)
                    for i in range(15)]

        tool = loop.run_in_executor(None, tool_writes)
        await client_writes()
        results = await tool
        assert all(p.returncode == 0 for p in results), [p.stderr for p in results]
        deadline = time.monotonic() + 2
        while True:
            users = (await admin.query("getUsers"))["result"]["users"]
            names = {u["name"] for u in users}
            if all("tool%d" % i in names for i in range(15)) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.05)
        assert all("tool%d" % i in names for i in range(15)), names
        stats = (await admin.query("getStats"))["result"]
        await admin.close()
        return stats
    stats = run(go())
    v = run_audit("verify", "--data", data)
    assert v.returncode == 0, v.stdout
    # 2 bootstrap + 40 entries + 15 * 2 (user + token)
    assert v.stdout.startswith("ok: 72 events"), v.stdout
    assert stats["entries"] == 40


def test_audit_and_backup_on_the_live_log(server, tmp_path):
    data = server.data

    async def go():
        admin = await Client.connect(server, server.admin_token)
        for i in range(20):
            assert (await admin.command("createEntry", {"title": "x%d" % i, "kind": "fix"}))["ok"]
        p = run_admin("backup", str(tmp_path / "b"), "--data", data)
        assert p.returncode == 0, p.stderr
        for i in range(5):       # the server keeps working after the backup
            assert (await admin.command("createEntry", {"title": "y%d" % i, "kind": "fix"}))["ok"]
        epoch = (await admin.query("whoami"))["epoch"]
        await admin.close()
        return epoch
    epoch = run(go())
    assert run_audit("verify", "--data", str(tmp_path / "b")).stdout.startswith("ok: 22 events")
    assert run_audit("verify", "--data", data).stdout.startswith("ok: 27 events")
    log = run_audit("log", "--data", data, "--type", "entry.created")
    assert log.returncode == 0 and len(log.stdout.splitlines()) == 25
    p = run_admin("restore", str(tmp_path / "b"), "--data", str(tmp_path / "r"))
    assert p.returncode == 0, p.stderr
    restored = json.loads(run_audit("stats", "--format", "json", "--data",
                                    str(tmp_path / "r")).stdout)
    assert restored["epoch"] != epoch and restored["events"] == 22
