"""conftest.py - fixtures for the changelogd integration tests.

Every test drives the real bin/changelogd (found through $CL_BIN) over real
sockets: a server on a free port with a temporary data directory, the admin
token it prints on first start, Python `websockets` clients (TLS with
CERT_NONE: the server's certificate is self-signed), and Node `ws` scripts
from tests/node run as subprocesses.
"""
import asyncio
import base64
import itertools
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request

import pytest
import websockets

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CL_BIN") or os.path.join(REPO, "bin")
NODE_DIR = os.path.join(REPO, "tests", "node")


def tls_context():
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def raw_upgrade(server, token, rcvbuf=None, timeout=10):
    """A TLS socket with a completed WebSocket handshake and nothing else:
    it reads only when told to (so it never answers pings and can play a
    client that stops reading; rcvbuf shrinks its receive buffer)."""
    sock = socket.socket()
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.settimeout(timeout)
    sock.connect(("127.0.0.1", server.port))
    s = tls_context().wrap_socket(sock, server_hostname="localhost")
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws/%s HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
               "Sec-WebSocket-Version: 13\r\n\r\n" % (token, key)).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        head += s.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return s


def raw_frames(sock):
    """The server's frames on a raw socket (raw_upgrade), one by one, as
    (opcode, payload); EOFError if the socket closes before a frame ends."""
    buf = b""

    def need(n):
        nonlocal buf
        while len(buf) < n:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("closed without a close frame")
            buf += chunk
        out, buf = buf[:n], buf[n:]
        return out

    while True:
        h = need(2)
        n = h[1] & 0x7f
        if n == 126:
            n = int.from_bytes(need(2), "big")
        elif n == 127:
            n = int.from_bytes(need(8), "big")
        yield h[0] & 0x0f, need(n)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NO_CONFIG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data",
                         "empty.conf")


class Server:
    """One changelogd process. start() waits until /healthz answers."""

    def __init__(self, data_dir, args=(), plain=False, web=None, keep_port=False):
        self.data = data_dir
        self.web = web              # serve this web UI directory (else --no-web)
        self.keep_port = keep_port  # restart on the same port
        self.args = list(args)
        self.plain = plain
        self.proc = None
        self.port = None
        self.admin_token = None
        self.stderr_path = os.path.join(os.path.dirname(data_dir.rstrip("/")),
                                        os.path.basename(data_dir.rstrip("/")) + ".log")

    @property
    def http(self):
        return ("http" if self.plain else "https") + "://127.0.0.1:%d" % self.port

    @property
    def ws(self):
        return ("ws" if self.plain else "wss") + "://127.0.0.1:%d" % self.port

    def start(self, timeout=15):
        if not (self.keep_port and self.port):
            self.port = free_port()
        # an empty settings file: a changelogd.conf installed on this machine
        # (/etc/changelogd/) must not change the servers under test
        cmd = [os.path.join(BIN, "changelogd"), "--config", NO_CONFIG, "--data", self.data,
               "--listen", "127.0.0.1:%d" % self.port]
        cmd += ["--web", self.web] if self.web else ["--no-web"]
        cmd += self.args
        if self.plain:
            cmd.append("--plain")
        self.errf = open(self.stderr_path, "ab")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=self.errf)
        deadline = time.monotonic() + timeout
        token_file = os.path.join(self.data, "admin-token")
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("changelogd exited %s:\n%s" % (self.proc.returncode, self.log()))
            try:
                self.get("/healthz")
                break
            except Exception:
                time.sleep(0.05)
        else:
            raise RuntimeError("changelogd did not come up:\n" + self.log())
        if self.admin_token is None and os.path.exists(token_file):
            with open(token_file) as f:
                self.admin_token = f.read().strip()
        return self

    def first_stdout_line(self):
        """The stdout line the server prints on first start."""
        return self.proc.stdout.readline().decode()

    def log(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def get(self, path, headers=None):
        req = urllib.request.Request(self.http + path, headers=headers or {})
        with urllib.request.urlopen(req, context=tls_context(), timeout=5) as r:
            return r.status, dict(r.headers), r.read()

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if not self.proc or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.errf.close()
        return rc

    def url(self, token, prefix=""):
        return "%s%s/ws/%s" % (self.ws, prefix, token)


class Client:
    """A websocket client that matches replies by id and collects pushes."""

    _ids = itertools.count(1)

    def __init__(self, ws):
        self.ws = ws
        self.pushes = []      # every {"op":"event"} in order (events frames unpacked)
        self.frames = []      # raw push frames as received
        self.replies = {}
        self.other = []

    @classmethod
    async def connect(cls, server, token, prefix="", **kw):
        kw.setdefault("max_size", 16 * 1024 * 1024)
        if not server.plain:
            kw.setdefault("ssl", tls_context())
        ws = await websockets.connect(server.url(token, prefix), **kw)
        return cls(ws)

    def _take(self, msg):
        if isinstance(msg, dict) and msg.get("op") == "event":
            self.frames.append(msg)
            self.pushes.append(msg)
        elif isinstance(msg, dict) and msg.get("op") == "events":
            self.frames.append(msg)
            self.pushes.extend(msg["events"])
        elif isinstance(msg, dict) and "id" in msg:
            self.replies[msg["id"]] = msg
        else:
            self.other.append(msg)

    async def recv_one(self, timeout=10):
        raw = await asyncio.wait_for(self.ws.recv(), timeout)
        msg = json.loads(raw)
        self._take(msg)
        return msg

    async def send(self, obj):
        rid = obj.get("id")
        if rid is None and "id" not in obj:
            rid = next(self._ids)
            obj = dict(obj, id=rid)
        await self.ws.send(json.dumps(obj))
        return rid

    def send_batch(self, objs):
        """Send several requests in ONE socket write (one TLS record), so the
        server reads them in one service turn: one batch, one commit."""
        from websockets.frames import Frame, Opcode
        ids, raw = [], b""
        for obj in objs:
            if "id" not in obj:
                obj = dict(obj, id=next(self._ids))
            ids.append(obj["id"])
            raw += Frame(Opcode.TEXT, json.dumps(obj).encode()).serialize(mask=True)
        self.ws.transport.write(raw)
        return ids

    async def wait_reply(self, rid, timeout=10):
        deadline = time.monotonic() + timeout
        while rid not in self.replies:
            await self.recv_one(max(0.01, deadline - time.monotonic()))
        return self.replies.pop(rid)

    async def request(self, obj, timeout=10):
        rid = await self.send(obj)
        return await self.wait_reply(rid, timeout)

    async def query(self, name, params=None, **kw):
        return await self.request({"op": "query", "name": name, "params": params or {}}, **kw)

    async def command(self, op, params, cmd_id=None, **kw):
        obj = {"op": op, "params": params}
        if cmd_id is not None:
            obj["cmd_id"] = cmd_id
        return await self.request(obj, **kw)

    async def wait_pushes(self, n, timeout=10):
        """Until at least n pushes have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.pushes) < n:
            await self.recv_one(max(0.01, deadline - time.monotonic()))
        return self.pushes

    async def close(self):
        await self.ws.close()


def run(coro, timeout=120):
    """Run a coroutine to completion (the tests are plain functions)."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def missing(why):
    """A test whose tools are not installed: skipped by hand, failed in CI
    (make test installs everything, so a skip there would hide a broken
    install step)."""
    if os.environ.get("CI"):
        pytest.fail(why + " (CI installs it through make test)")
    pytest.skip(why)


def run_node(script, *args, timeout=60, stdin=None):
    if not shutil.which("node"):
        missing("node is not installed")
    if not os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ws")):
        missing("tests/node/node_modules missing (run tools/scripts/deps.sh test)")
    return subprocess.run(["node", script] + [str(a) for a in args], cwd=NODE_DIR,
                          capture_output=True, text=True, timeout=timeout, input=stdin)


def sanitizer_reports(log):
    """Lines where ASan/UBSan/LSan reported something (the asan build)."""
    marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")
    return [l for l in log.splitlines() if any(m in l for m in marks)]


@pytest.fixture
def tmpdir_path():
    d = tempfile.mkdtemp(prefix="clg-srv-")
    yield d
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(tmpdir_path):
    """Factory: make_server(*args, plain=False, name="data") -> started Server."""
    servers = []

    def make(*args, plain=False, name="data"):
        s = Server(os.path.join(tmpdir_path, name), args, plain=plain)
        s.start()
        servers.append(s)
        return s

    yield make
    problems = []
    for s in servers:
        running = s.proc is not None and s.proc.poll() is None
        rc = s.stop()
        if running and rc != 0:
            problems.append("changelogd exited %s on SIGTERM" % rc)
        problems.extend(sanitizer_reports(s.log()))
    assert not problems, "\n".join(problems)


@pytest.fixture
def server(make_server):
    return make_server()


@pytest.fixture(scope="module")
def shared_server():
    """One server for tests that only add data and never depend on counts."""
    d = tempfile.mkdtemp(prefix="clg-shared-")
    s = Server(os.path.join(d, "data")).start()
    yield s
    s.stop()
    assert not sanitizer_reports(s.log())
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


async def new_member(admin, name, role="member"):
    """createUser through the admin's connection; returns (user id, token)."""
    r = await admin.command("createUser", {"name": name, "role": role})
    assert r["ok"], r
    return r.get("user"), r["token"]


async def all_entries(client):
    """Every entry, following getChangelogEntries' next_cursor pages."""
    out, params = [], {"limit": 500}
    while True:
        r = await client.query("getChangelogEntries", params)
        assert r["ok"], r
        out.extend(r["result"]["entries"])
        cur = r["result"].get("next_cursor")
        if not cur:
            return out
        params = {"limit": 500, "cursor": cur}
