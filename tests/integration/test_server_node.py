"""Node's `ws` client (a client nobody here wrote) against the server:
handshake auth, the seed request verbatim, query, command and subscribe."""
import json

from conftest import Client, run, run_node


def test_node_auth(server):
    async def setup():
        c = await Client.connect(server, server.admin_token)
        r = await c.command("createUser", {"name": "gone"})
        await c.command("revokeToken", {"token": r["token_id"]})
        await c.close()
        return r["token"]
    revoked = run(setup())
    r = run_node("client_auth.js", server.ws, server.admin_token, revoked)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.count("ok - ") == 8


def test_node_seed(server):
    async def setup():
        c = await Client.connect(server, server.admin_token)
        await c.command("createEntry", {"title": "Seeded", "body": "b", "kind": "feature"})
        q = await c.query("getChangelogEntries")
        await c.close()
        return q["result"]["entries"]
    entries = run(setup())
    r = run_node("client_seed.js", server.url(server.admin_token, prefix="/route"))
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == entries


def test_node_query_command_subscribe(server):
    r = run_node("client_live.js", server.ws, server.admin_token)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "FAIL" not in r.stdout
