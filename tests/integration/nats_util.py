"""nats_util.py - a real nats-server with JetStream for the integration tests.

NatsServer runs Debian's nats-server on free loopback ports (client and
monitoring) with its store in a temporary directory, bounded in time;
stop() and start() again keep the port and the storage (a broker restart),
kill() is kill -9. dump() reads the stream back through tests/nats/jsdump.c
(the NATS C client), so what changelogd published is compared with its log.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request

import pytest

from conftest import BIN, REPO, Client, free_port, missing, run
from tools_util import LmdbDump



def _tools_dir():
    """Where make put the test helpers: $CL_TEST_TOOLS (make integration sets
    it), else next to an asan build's bin/, else the release build's."""
    if os.environ.get("CL_TEST_TOOLS"):
        return os.environ["CL_TEST_TOOLS"]
    beside = os.path.join(os.path.dirname(BIN.rstrip("/")), "tests")
    if os.path.exists(os.path.join(beside, "nats-jsdump")):
        return beside
    return os.path.join(REPO, "build", "release", "tests")


TOOLS = _tools_dir()
JSDUMP = os.path.join(TOOLS, "nats-jsdump")


def need_nats():
    if not shutil.which("nats-server"):
        missing("nats-server is not installed (tools/scripts/deps.sh test)")
    if not os.path.exists(JSDUMP):
        missing("%s is missing (make)" % JSDUMP)


class NatsServer:
    def __init__(self, store_dir):
        self.store = store_dir
        self.port = free_port()
        self.mport = free_port()
        self.proc = None
        self.log_path = store_dir.rstrip("/") + ".log"

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def start(self, timeout=15):
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            ["nats-server", "-js", "-a", "127.0.0.1", "-p", str(self.port),
             "-m", str(self.mport), "-sd", self.store, "-n", "test-nats"],
            stdout=self.logf, stderr=self.logf)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nats-server exited %s:\n%s" % (self.proc.returncode,
                                                                  self.log()))
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % self.mport,
                                            timeout=2) as r:
                    if r.status == 200:
                        return self
            except Exception:
                time.sleep(0.05)
        raise RuntimeError("nats-server did not come up:\n" + self.log())

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
        self.proc = None

    def kill(self):
        self.stop(signal.SIGKILL)

    def dump(self, stream="changelog"):
        """(stream info, [message, ...]) as tests/nats/jsdump.c prints them."""
        p = subprocess.run([JSDUMP, self.url, stream], capture_output=True, text=True,
                           timeout=30)
        lines = [json.loads(l) for l in p.stdout.splitlines()]
        assert lines, p.stderr
        return lines[0], lines[1:]

    def admin(self, what, stream="changelog"):
        """Delete the stream, or purge its messages ("delete", "purge")."""
        p = subprocess.run([JSDUMP, self.url, stream, what], capture_output=True,
                           text=True, timeout=30)
        assert json.loads(p.stdout) == {"ok": True}, p.stdout + p.stderr

    def publish(self, subject, data, stream="changelog"):
        """A foreign publisher stores the bytes data on subject: its stream seq."""
        p = subprocess.run([JSDUMP, self.url, stream, "publish", subject, data.hex()],
                           capture_output=True, text=True, timeout=30)
        out = json.loads(p.stdout)
        assert "seq" in out, out
        return out["seq"]


def metrics(server):
    """/metrics of a changelogd as {name-with-labels: value}."""
    _, _, body = server.get("/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line and not line.startswith("#"):
            k, v = line.rsplit(" ", 1)
            out[k] = float(v)
    return out


def nats_state(m):
    return next(k.split('"')[1] for k, v in m.items()
                if k.startswith("changelogd_nats_state{") and v == 1)


def wait_for(what, pred, timeout=20):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.05)


def wait_published(server, timeout=20):
    """Until the stream acknowledged every committed seq; the metrics then."""
    def done():
        m = metrics(server)
        return m if (nats_state(m) == "live" and m["changelogd_nats_publish_lag"] == 0 and
                     m["changelogd_nats_published_seq"] == m["changelogd_seq"]) else None
    return wait_for("the stream to hold every committed event", done, timeout)


@pytest.fixture
def nats(tmpdir_path):
    need_nats()
    n = NatsServer(os.path.join(tmpdir_path, "js"))
    n.start()
    yield n
    n.stop()


@pytest.fixture
def writers(make_server):
    """Factory: writers(nats_url, name="data", *args) -> a started changelogd
    (plain ws) with --nats nats_url; SIGTERM-stopped and checked at the end
    (conftest.make_server)."""
    def make(url, name="data", *args):
        return make_server("--nats", url, *args, plain=True, name=name)
    return make


def write(server, n, title="entry"):
    """n createEntry commands, each acknowledged; their seqs."""
    async def go():
        c = await Client.connect(server, server.admin_token)
        seqs = []
        for i in range(n):
            r = await c.command("createEntry", {"title": "%s %d" % (title, i),
                                                "kind": "fix"})
            assert r["ok"], r
            seqs.append(r["seq"])
        await c.close()
        return seqs
    return run(go())


def epoch_of(data_dir):
    meta = dict(LmdbDump(data_dir).pairs("meta"))
    return meta[b"epoch"].hex()


# ---- shared by test_nats_publish.py, test_nats_edge.py, test_nats_forward.py

from conftest import Server, sanitizer_reports  # noqa: E402

AUDIT = os.path.join(BIN, "changelog-audit")


def metrics_until(node, what, pred, timeout=20):
    """Until pred(metrics of node) holds; those metrics."""
    return wait_for(what, lambda: (lambda m: m if pred(m) else None)(metrics(node)), timeout)


def published_writer(writers, nats, n=0, name="data", *args):
    """A writer (the writers fixture) on nats with n entries written and
    every event of its log in the stream."""
    w = writers(nats.url, name, *args)
    if n:
        write(w, n)
    wait_published(w)
    return w


def command(node, token, name, params, cmd_id=None):
    """One command on a new connection to node; its reply."""
    async def go():
        c = await Client.connect(node, token)
        r = await c.command(name, params, cmd_id=cmd_id)
        await c.close()
        return r
    return run(go())


def start_edge(tmpdir_path, nats, writer, name="edge", *args):
    """changelogd --edge (plain ws) following nats, data in tmpdir_path/name."""
    e = Server(os.path.join(tmpdir_path, name), ["--edge", "--nats", nats.url] + list(args),
               plain=True)
    e.start()
    e.admin_token = writer.admin_token      # tokens are events: the same on every node
    return e


def stop_edge(e):
    """SIGTERM: a clean exit, and no sanitizer report (the asan build)."""
    assert e.stop() == 0, e.log()
    assert not sanitizer_reports(e.log())


def edge_state(m):
    return next(k.split('"')[1] for k, v in m.items()
                if k.startswith("changelogd_edge_state{") and v == 1)


def wait_edge_at(edge, seq):
    return metrics_until(edge, "the edge to reach seq %d" % seq,
                         lambda m: m["changelogd_seq"] == seq and
                         m["changelogd_edge_behind_seqs"] == 0)


def edge_at(tmpdir_path, nats, writer, seq, name="edge", *args):
    """start_edge, and until it holds the log up to seq (stopped if it
    never gets there)."""
    e = start_edge(tmpdir_path, nats, writer, name, *args)
    try:
        wait_edge_at(e, seq)
    except BaseException:
        e.stop()
        raise
    return e


def head_of(data_dir):
    return dict(LmdbDump(data_dir).pairs("meta"))[b"head"].hex()


def verify(data_dir):
    """changelog-audit verify on data_dir: it passes; what it printed."""
    p = subprocess.run([AUDIT, "verify", "--data", data_dir], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout
