#!/usr/bin/python3
"""cluster.py - the scaled-out changelogd topology on loopback (docs/scaling.md).

    tests/cluster/cluster.py [--dir DIR] [--for SECS] [--edges N]

starts, on free 127.0.0.1 ports:

- a 3-node NATS JetStream cluster (Debian's nats-server 2.9), one generated
  config file per node (cluster routes to the other two, a JetStream
  store_dir of its own);
- the writer: changelogd --nats URL1,URL2,URL3 --nats-replicas 3 --plain;
- N edges (default 2): changelogd --edge --nats ... --plain;
- HAProxy 2.6 in front, terminating TLS (a self-signed certificate made
  here with the openssl tool): /ws/ spread with `balance leastconn` over the
  writer and the edges, everything else to the writer, every server checked
  on /healthz (the body must say "ok":true).

`make cluster` runs it: it prints the HAProxy URL and an admin token and
stops everything on Ctrl-C. tests/integration/test_cluster.py uses the
Cluster class below as a library.

Every process is bounded: a watchdog kills the lot after --for seconds
(default 3600), each child also gets SIGKILL if this process dies
(PR_SET_PDEATHSIG), and stop() / Ctrl-C / an exception stop them all by
their pids. The work directory is removed at the end unless --dir was given.
"""
import argparse
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CL_BIN") or os.path.join(REPO, "bin")
NO_CONFIG = os.path.join(REPO, "tests", "data", "empty.conf")
STREAM = "changelog"

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child, before exec: SIGKILL when the process that started it
    ends, however it ends (kill -9 included)."""
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url, timeout=3):
    """(status, body) of GET url; an HTTP error status is returned too."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def wait_for(what, pred, timeout=30, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        got = pred()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(every)


def _quiet(pred):
    """pred() with connection errors read as 'not yet'."""
    def f():
        try:
            return pred()
        except (OSError, ValueError):
            return None
    return f


class Proc:
    """One child process with its log file; start() may be called again
    after stop()/kill() (same ports, same storage)."""

    stop_signal = signal.SIGTERM

    def __init__(self, name, log_path):
        self.name = name
        self.log_path = log_path
        self.proc = None
        self.logf = None

    def cmd(self):
        raise NotImplementedError

    def spawn(self, stdout=None):
        self.logf = open(self.log_path, "ab")
        # a session of its own: a Ctrl-C in the terminal reaches only this
        # script, which then stops the processes in order (edges first, NATS last)
        self.proc = subprocess.Popen(self.cmd(), stdout=stdout or self.logf, stderr=self.logf,
                                     stdin=subprocess.DEVNULL, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        return self.proc

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def check_alive(self):
        if not self.alive():
            raise RuntimeError("%s exited %s:\n%s" % (self.name, self.proc.returncode,
                                                      self.log()[-4000:]))
        return False

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def stop(self, sig=None, timeout=15):
        """Signal and reap; the exit status (None if it was not running)."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(sig or self.stop_signal)
                try:
                    rc = self.proc.wait(timeout=timeout)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    rc = self.proc.wait()
            for f in (self.proc.stdout,):
                if f:
                    f.close()
        if self.logf:
            self.logf.close()
            self.logf = None
        return rc

    def kill(self):
        """kill -9, reaped."""
        return self.stop(signal.SIGKILL)

    def cpu_ticks(self):
        """utime + stime of the process, in clock ticks (/proc/PID/stat)."""
        with open("/proc/%d/stat" % self.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])


class NatsNode(Proc):
    def __init__(self, work, name, peers_route_ports_fn):
        super().__init__(name, os.path.join(work, name + ".log"))
        self.dir = os.path.join(work, name)
        self.store = os.path.join(self.dir, "js")
        self.port, self.mport, self.rport = free_port(), free_port(), free_port()
        self._peers = peers_route_ports_fn
        self.conf = os.path.join(self.dir, "nats.conf")

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port

    def write_conf(self):
        os.makedirs(self.dir, exist_ok=True)
        routes = ", ".join('"nats-route://127.0.0.1:%d"' % p for p in self._peers(self))
        with open(self.conf, "w") as f:
            f.write("# generated by tests/cluster/cluster.py\n"
                    "server_name: %s\n"
                    "listen: 127.0.0.1:%d\n"
                    "http: 127.0.0.1:%d\n"
                    "jetstream {\n  store_dir: \"%s\"\n  max_memory_store: 64MB\n"
                    "  max_file_store: 1GB\n}\n"
                    "cluster {\n  name: changelog\n  listen: 127.0.0.1:%d\n"
                    "  routes: [%s]\n}\n"
                    % (self.name, self.port, self.mport, self.store, self.rport, routes))

    def cmd(self):
        return ["nats-server", "-c", self.conf]

    def start(self):
        self.write_conf()
        self.spawn()
        return self

    def wipe(self):
        """Empty its storage (the node must be down)."""
        assert not self.alive()
        shutil.rmtree(self.store, ignore_errors=True)

    def jsz(self):
        st, body = http_get("http://127.0.0.1:%d/jsz" % self.mport)
        return json.loads(body) if st == 200 else None

    def stream(self, name=STREAM):
        """This node's view of the stream (the /jsz stream_detail: config,
        state, cluster), or None."""
        st, body = http_get("http://127.0.0.1:%d/jsz?streams=true&config=true" % self.mport)
        if st != 200:
            return None
        for a in json.loads(body).get("account_details") or []:
            for sd in a.get("stream_detail") or []:
                if sd["name"] == name:
                    return sd
        return None

    def healthy(self):
        """Up, JetStream on, and a meta leader known (the cluster formed)."""
        self.check_alive()
        st, _ = http_get("http://127.0.0.1:%d/healthz" % self.mport)
        if st != 200:
            return False
        j = self.jsz()
        return bool(j and (j.get("meta_cluster") or {}).get("leader"))


class Node(Proc):
    """One changelogd (the writer, or an edge with edge=True), --plain on
    loopback behind HAProxy."""

    plain = True

    def __init__(self, work, name, nats_urls, edge=False, extra=(), web=None):
        super().__init__(name, os.path.join(work, name + ".log"))
        self.data = os.path.join(work, name)
        self.port = free_port()
        self.nats_urls = nats_urls
        self.edge = edge
        self.extra = list(extra)
        self.web = web
        self.admin_token = None

    @property
    def http(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def ws(self):
        return "ws://127.0.0.1:%d" % self.port

    def url(self, token, prefix=""):
        return "%s%s/ws/%s" % (self.ws, prefix, token)

    def cmd(self):
        c = [os.path.join(BIN, "changelogd"), "--config", NO_CONFIG, "--data", self.data,
             "--listen", "127.0.0.1:%d" % self.port, "--plain", "--nats", self.nats_urls]
        c += ["--web", self.web] if self.web else ["--no-web"]
        if self.edge:
            c.append("--edge")
        else:
            c += ["--nats-replicas", "3"]
        return c + self.extra

    def start(self, timeout=30):
        self.spawn(stdout=subprocess.DEVNULL)
        wait_for(self.name + " to answer /healthz",
                 _quiet(lambda: self.check_alive() or self.get("/healthz")), timeout)
        tok = os.path.join(self.data, "admin-token")
        if self.admin_token is None and os.path.exists(tok):
            with open(tok) as f:
                self.admin_token = f.read().strip()
        return self

    def get(self, path):
        st, body = http_get(self.http + path)
        return st, body

    def healthz(self):
        return json.loads(self.get("/healthz")[1])

    def metrics(self):
        out = {}
        for line in self.get("/metrics")[1].decode().splitlines():
            if line and not line.startswith("#"):
                k, v = line.rsplit(" ", 1)
                out[k] = float(v)
        return out

    def state(self, m=None):
        """The publisher's state (writer) or the consumer's (edge)."""
        m = m or self.metrics()
        pre = "changelogd_edge_state{" if self.edge else "changelogd_nats_state{"
        return next((k.split('"')[1] for k, v in m.items() if k.startswith(pre) and v == 1),
                    None)


HAPROXY_CONF = """\
# generated by tests/cluster/cluster.py (docs/scaling.md shows it)
global
    maxconn 9000
    stats socket {sock} mode 600 level admin
    ssl-default-bind-options ssl-min-ver TLSv1.2

defaults
    mode http
    option redispatch
    retries 3
    timeout connect 2s
    timeout client 60s
    timeout server 60s
    timeout tunnel 1h
    timeout http-request 10s
    timeout check 5s
    default-server check inter {inter} fall 2 rise 2

frontend changelog
    bind {bind} ssl crt {pem} alpn http/1.1
    use_backend live if {{ path_beg /ws/ }}
    default_backend writer

# subscribers and their reads: any node that is live
backend live
    balance leastconn
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect string '"ok":true'
    http-response set-header X-Changelog-Node %s
{live_servers}

# the web UI, the HTTP API, browser sign-in: the writer; an edge while the
# writer is down (reads work there, commands are then `unavailable`)
backend writer
    option httpchk
    http-check send meth GET uri /healthz
    http-check expect string '"ok":true'
    http-response set-header X-Changelog-Node %s
{writer_servers}
"""


def haproxy_config(bind, pem, sock, inter, servers):
    """The HAProxy config: servers is [(name, "HOST:PORT")], the writer first."""
    srv = "    server %s %s"
    return HAPROXY_CONF.format(
        sock=sock, inter=inter, bind=bind, pem=pem,
        live_servers="\n".join(srv % s for s in servers),
        writer_servers="\n".join([srv % servers[0]] + [srv % s + " backup" for s in servers[1:]]))


class HAProxy(Proc):
    plain = False
    stop_signal = signal.SIGUSR1     # soft stop: exit 0 once connections are gone

    def __init__(self, work, writer, edges, inter="500ms"):
        super().__init__("haproxy", os.path.join(work, "haproxy.log"))
        self.dir = os.path.join(work, "haproxy")
        self.port = free_port()
        self.writer, self.edges = writer, edges
        self.inter = inter
        self.conf = os.path.join(self.dir, "haproxy.cfg")
        self.pem = os.path.join(self.dir, "haproxy.pem")
        self.sock = os.path.join(self.dir, "admin.sock")

    @property
    def http(self):
        return "https://127.0.0.1:%d" % self.port

    @property
    def ws(self):
        return "wss://127.0.0.1:%d" % self.port

    def url(self, token, prefix=""):
        return "%s%s/ws/%s" % (self.ws, prefix, token)

    def config_text(self):
        return haproxy_config("127.0.0.1:%d" % self.port, self.pem, self.sock, self.inter,
                              [(n.name, "127.0.0.1:%d" % n.port)
                               for n in [self.writer] + self.edges])

    def make_cert(self):
        key, crt = os.path.join(self.dir, "key.pem"), os.path.join(self.dir, "cert.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                        "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
                        "/CN=localhost", "-addext",
                        "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key,
                        "-out", crt], check=True, capture_output=True, timeout=30)
        with open(self.pem, "wb") as out:
            for p in (crt, key):
                with open(p, "rb") as f:
                    out.write(f.read())
        os.chmod(self.pem, 0o600)

    def cmd(self):
        return ["haproxy", "-db", "-f", self.conf]

    def start(self, timeout=30):
        os.makedirs(self.dir, exist_ok=True)
        if not os.path.exists(self.pem):
            self.make_cert()
        with open(self.conf, "w") as f:
            f.write(self.config_text())
        subprocess.run(["haproxy", "-c", "-q", "-f", self.conf], check=True, timeout=30)
        self.spawn()
        wait_for("haproxy to mark every server up",
                 _quiet(lambda: self.check_alive() or
                        all(s["status"] == "UP" for s in self.servers().values())), timeout)
        return self

    def admin(self, line):
        """One command on the stats socket; its answer."""
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(self.sock)
            s.sendall(line.encode() + b"\n")
            out = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return out.decode()
                out += chunk

    def servers(self, backend="live"):
        """{server name: {"status": "UP"/"DOWN"/..., "scur": current sessions}}."""
        lines = self.admin("show stat").splitlines()
        head = lines[0].lstrip("# ").split(",")
        out = {}
        for line in lines[1:]:
            row = dict(zip(head, line.split(",")))
            if row.get("pxname") == backend and row.get("svname") not in ("FRONTEND",
                                                                          "BACKEND"):
                out[row["svname"]] = {"status": row["status"].split()[0],
                                      "scur": int(row["scur"] or 0)}
        return out


class Cluster:
    """The whole topology. Use as a context manager, or start()/stop()."""

    def __init__(self, work=None, edges=2, lifetime=3600, web=None, inter="500ms",
                 writer_args=(), edge_args=()):
        self.own_dir = work is None
        self.work = work or tempfile.mkdtemp(prefix="clg-cluster-")
        os.makedirs(self.work, exist_ok=True)
        self.lifetime = lifetime
        self.nats = []
        for i in range(3):
            self.nats.append(NatsNode(self.work, "nats%d" % (i + 1),
                                      lambda me: [n.rport for n in self.nats if n is not me]))
        # Each changelogd is given ONE NATS node, a different one each, so
        # the tests know which node it uses, and learns the others from the
        # cluster (the INFO the server sends lists every node's client URL):
        # libnats fails over to them. (A comma-separated --nats list works
        # too; docs/scaling.md.)
        self.writer = Node(self.work, "writer", self.nats[0].url, extra=writer_args, web=web)
        self.edges = [Node(self.work, "edge%d" % (i + 1), self.nats[(i + 1) % 3].url,
                           edge=True, extra=edge_args, web=web) for i in range(edges)]
        self.haproxy = HAProxy(self.work, self.writer, self.edges, inter=inter)
        self._timer = None

    @property
    def nodes(self):
        return [self.writer] + self.edges

    def procs(self):
        return self.nats + self.nodes + [self.haproxy]

    def start(self):
        self._timer = threading.Timer(self.lifetime, self._expire)
        self._timer.daemon = True
        self._timer.start()
        try:
            for n in self.nats:
                n.start()
            self.wait_nats()
            self.writer.start()
            wait_for("the writer to make the stream and publish",
                     _quiet(lambda: self.writer.state() == "live"), 60)
            for e in self.edges:
                e.start()
                e.admin_token = self.writer.admin_token   # tokens are events: the same
            self.wait_converged()
            self.haproxy.start()
        except BaseException:
            self.stop()
            raise
        return self

    def _expire(self):
        sys.stderr.write("cluster.py: the %d s lifetime is over: stopping everything\n"
                         % self.lifetime)
        for p in reversed(self.procs()):
            if p.alive():
                p.proc.kill()

    def wait_nats(self, nodes=None, timeout=60):
        """Until every given (default: every) NATS node is up in a cluster with a
        meta leader."""
        for n in nodes or self.nats:
            wait_for("%s to join the JetStream cluster" % n.name, _quiet(n.healthy), timeout)

    def live_nats(self):
        return next(n for n in self.nats if n.alive())

    def wait_converged(self, timeout=60):
        """Until the stream holds every committed event and every edge has
        applied it; the writer's seq then."""
        def done():
            m = self.writer.metrics()
            seq = m["changelogd_seq"]
            if not (self.writer.state(m) == "live" and m["changelogd_nats_publish_lag"] == 0
                    and m["changelogd_nats_published_seq"] == seq):
                return None
            for e in self.edges:
                em = e.metrics()
                if em["changelogd_seq"] != seq or em["changelogd_edge_behind_seqs"] != 0:
                    return None
            return int(seq)
        return wait_for("the stream and every edge to hold the writer's log", _quiet(done),
                        timeout, every=0.1)

    def wait_replicas(self, seq, timeout=60):
        """Until every running NATS node's copy of the stream ends at seq, and
        the stream has 3 replicas."""
        def done():
            for n in self.nats:
                if n.alive():
                    sd = n.stream()
                    if not sd or sd["config"]["num_replicas"] != 3 or \
                            sd["state"]["last_seq"] != seq:
                        return False
            return True
        return wait_for("every NATS node to hold the stream up to seq %d" % seq, _quiet(done),
                        timeout, every=0.1)

    def stop(self):
        """Everything, HAProxy and edges first; the exit statuses by name."""
        if self._timer:
            self._timer.cancel()
        rcs = {}
        for p in reversed(self.procs()):
            rcs[p.name] = p.stop()
        return rcs

    def cleanup(self):
        if self.own_dir and not os.environ.get("KEEP_TMP"):
            shutil.rmtree(self.work, ignore_errors=True)

    def __enter__(self):
        try:
            return self.start()
        except BaseException:
            self.cleanup()      # start() stopped what it had started
            raise

    def __exit__(self, *exc):
        self.stop()
        self.cleanup()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="work directory (kept; default: a temp dir, removed)")
    ap.add_argument("--for", dest="secs", type=int, default=3600,
                    help="stop everything after SECS seconds (default 3600)")
    ap.add_argument("--edges", type=int, default=2)
    a = ap.parse_args()
    for tool in ("nats-server", "haproxy", "openssl"):
        if not shutil.which(tool):
            sys.exit("cluster.py: %s is not installed (tools/scripts/deps.sh test)" % tool)
    web = os.path.join(REPO, "web")
    c = Cluster(a.dir, edges=a.edges, lifetime=a.secs,
                web=web if os.path.isdir(web) else None, inter="1s")

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    try:
        c.start()
        print("changelogd cluster up in %s (stops in %d s, or on Ctrl-C):" % (c.work, a.secs))
        print("  HAProxy      %s/   (self-signed certificate: accept it once)" % c.haproxy.http)
        print("  web UI       %s/#token=%s" % (c.haproxy.http, c.writer.admin_token))
        print("  websocket    %s" % c.haproxy.url("TOKEN"))
        print("  admin token  %s" % c.writer.admin_token)
        print("  writer       %s   edges %s" % (c.writer.http,
                                              " ".join(e.http for e in c.edges)))
        print("  NATS         %s" % " ".join(n.url for n in c.nats))
        print("  HAProxy stats: echo 'show stat' | socat - %s" % c.haproxy.sock)
        sys.stdout.flush()
        while all(p.alive() for p in c.procs()):
            time.sleep(0.5)
        dead = [p.name for p in c.procs() if not p.alive()]
        print("cluster.py: %s exited; stopping the rest" % ", ".join(dead))
        return 1
    except KeyboardInterrupt:
        print("\ncluster.py: stopping")
        return 0
    finally:
        c.stop()
        c.cleanup()


if __name__ == "__main__":
    sys.exit(main())
