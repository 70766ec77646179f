"""test_changelog_post.py - bin/changelog-post against a real changelogd over
TLS (its own self-signed certificate, trusted with --cacert): create,
comment, status, a retry with the same cmd id, a bad token, bad usage, and a
server that is down (retries, then exit 1) or comes up during the retries.
"""
import json
import os
import subprocess

from conftest import BIN, Server, free_port
from http_util import call

POST = os.path.join(BIN, "changelog-post")


def post(server, *args, token_file=None, stdin=None, env=None, url=None):
    base = url or server.http
    argv = [POST] + list(args) + ["--url", base, "--cacert",
                                  os.path.join(server.data, "tls", "cert.pem")]
    if token_file is not False:
        argv += ["--token-file", token_file or os.path.join(server.data, "admin-token")]
    return subprocess.run(argv, capture_output=True, text=True, input=stdin, timeout=120,
                          env=dict(os.environ, **(env or {})))


def entry(server, eid):
    st, _, r = call(server, "GET", "/api/v1/entries/%d" % eid, token=server.admin_token)
    assert st == 200, r
    return r["result"]["entry"]


def test_create_comment_status(server):
    p = post(server, "--kind", "change", "--title", "Deployed 1.4.2",
             stdin="Rolled out to every region.\n", token_file=None)
    assert p.returncode == 0, p.stderr
    eid = int(p.stdout)
    assert p.stdout == "%d\n" % eid                 # the id alone on stdout
    p = post(server, "--kind", "fix", "--title", "with a body", "--body-file", "-",
             stdin="Line one\nline two\n")
    assert p.returncode == 0, p.stderr
    e2 = int(p.stdout)
    assert entry(server, e2)["body"] == "Line one\nline two\n"
    p = post(server, "comment", "--entry", str(eid), "--body-file", "-", stdin="smoke tests green")
    assert p.returncode == 0, p.stderr
    cid = int(p.stdout)
    p = post(server, "comment", "--entry", str(eid), "--parent", str(cid), "--body", "thanks")
    assert p.returncode == 0, p.stderr
    p = post(server, "status", "--entry", str(eid), "--status", "resolved")
    assert p.returncode == 0 and int(p.stdout) == eid, p.stderr
    e = entry(server, eid)
    assert e["title"] == "Deployed 1.4.2" and e["kind"] == "change"
    assert e["status"] == "resolved" and e["comments"] == 2
    # the token from the environment works the same
    p = post(server, "--kind", "feature", "--title", "env token", token_file=False,
             env={"CHANGELOG_TOKEN": server.admin_token})
    assert p.returncode == 0, p.stderr


def test_same_cmd_id_same_entry(server):
    a = post(server, "--kind", "change", "--title", "Deploy 7", "--cmd-id", "deploy-7")
    b = post(server, "--kind", "change", "--title", "Deploy 7", "--cmd-id", "deploy-7")
    assert a.returncode == b.returncode == 0, (a.stderr, b.stderr)
    assert a.stdout == b.stdout
    _, _, r = call(server, "GET", "/api/v1/stats", token=server.admin_token)
    assert r["result"]["entries"] == 1
    # the same id for another command is refused, nothing applied
    c = post(server, "--kind", "change", "--title", "Deploy 8", "--cmd-id", "deploy-7")
    assert c.returncode == 1 and "conflict" in c.stderr


def test_refusals_and_usage(server, tmpdir_path):
    bad = os.path.join(tmpdir_path, "bad-token")
    with open(bad, "w") as f:
        f.write("clg_" + "A" * 43 + "\n")
    p = post(server, "--kind", "fix", "--title", "x", token_file=bad)
    assert p.returncode == 1 and "unauthorized" in p.stderr and p.stdout == ""
    p = post(server, "status", "--entry", "999", "--status", "resolved")
    assert p.returncode == 1 and "not_found" in p.stderr
    eid = int(post(server, "--kind", "fix", "--title", "y").stdout)
    p = post(server, "status", "--entry", str(eid), "--status", "reopened")
    assert p.returncode == 1 and "invalid_transition" in p.stderr
    p = post(server, "--kind", "bug", "--title", "x")
    assert p.returncode == 1 and "bad_request" in p.stderr
    for args in (["--title", "no kind"], ["comment", "--entry", "1"], ["status", "--entry", "x",
                 "--status", "open"], ["frobnicate"], ["--kind", "fix", "--title", "t",
                 "--retries", "many"], ["--kind", "fix", "--title", "t", "--bogus"],
                 ["--kind", "fix", "--title", "t", "--body", "a", "--body-file", "-"]):
        p = post(server, *args)
        assert p.returncode == 2, (args, p.stderr)
    p = post(server, "--kind", "fix", "--title", "t", token_file=False,
             env={"CHANGELOG_TOKEN": ""})
    assert p.returncode == 2 and "no token" in p.stderr
    p = subprocess.run([POST, "--kind", "fix", "--title", "t"], capture_output=True, text=True)
    assert p.returncode == 2 and "--url" in p.stderr
    # the certificate is checked: without --cacert the self-signed one is refused, at once
    p = subprocess.run([POST, "--kind", "fix", "--title", "t", "--url", server.http,
                        "--token-file", os.path.join(server.data, "admin-token")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 1 and "--cacert" in p.stderr and "retrying" not in p.stderr
    assert subprocess.run([POST, "--version"], capture_output=True).returncode == 0
    assert "usage" in subprocess.run([POST, "--help"], capture_output=True, text=True).stdout


def test_server_down_retries_then_fails(server):
    url = "https://127.0.0.1:%d" % free_port()     # nobody listens there
    p = post(server, "--kind", "fix", "--title", "x", "--retries", "2", url=url)
    assert p.returncode == 1, p.stderr
    assert p.stderr.count("retrying in") == 2 and "giving up after 3 attempts" in p.stderr
    assert p.stdout == ""


def test_server_comes_up_during_the_retries(tmpdir_path):
    s = Server(os.path.join(tmpdir_path, "data"), keep_port=True).start()
    s.stop()                               # made its certificate and token; now down
    argv = [POST, "--kind", "change", "--title", "after the outage", "--cmd-id", "outage-1",
            "--retries", "8", "--url", s.http, "--cacert",
            os.path.join(s.data, "tls", "cert.pem"), "--token-file",
            os.path.join(s.data, "admin-token")]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        # once it has failed and says it will retry, bring the server back
        seen = []
        for line in p.stderr:
            seen.append(line)
            if "retrying in" in line:
                break
        assert any("no answer" in l for l in seen), seen
        s.start()
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, "".join(seen) + err
        assert entry(s, int(out))["title"] == "after the outage"
    finally:
        if p.poll() is None:
            p.kill()
        s.stop()
