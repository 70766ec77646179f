"""tools_util.py - helpers for the changelog-admin / changelog-audit tests.

- run_admin / run_audit: the real binaries from $CL_BIN, with an optional
  CHANGELOG_FAKE_TIME (the tools' test clock, see docs/operations.md).
- build_fixture_log: a small deterministic log (users, tokens, entries,
  edits, status changes, threaded comments) for the expected outputs in
  tests/data/audit/.
- Every event of a fixture carries an injected time, the two bootstrap
  events of `init` included (INIT_TIME), so no expected output depends on
  the day the suite runs.
- LmdbDump: tampering without a Python LMDB module, through lmdb-utils
  (mdb_dump -a / mdb_load), which the build already depends on.
"""
import json
import os
import re
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.environ.get("CL_BIN") or os.path.join(REPO, "bin")
ADMIN = os.path.join(BIN, "changelog-admin")
AUDIT = os.path.join(BIN, "changelog-audit")
EXPECTED = os.path.join(REPO, "tests", "data", "audit")


def run(argv, fake_time=None, check=False, timeout=120, env=None):
    e = dict(os.environ)
    e.pop("CHANGELOG_FAKE_TIME", None)
    if fake_time:
        e["CHANGELOG_FAKE_TIME"] = fake_time
    if env:
        e.update(env)
    p = subprocess.run(argv, capture_output=True, timeout=timeout, env=e)
    # decoded by hand: text=True would turn the CSV's CRLF into LF
    p.stdout = p.stdout.decode("utf-8")
    p.stderr = p.stderr.decode("utf-8", errors="replace")
    if check and p.returncode != 0:
        raise AssertionError("%s exited %d\nstdout: %s\nstderr: %s"
                             % (" ".join(argv), p.returncode, p.stdout, p.stderr))
    return p


def run_admin(*args, **kw):
    return run([ADMIN] + [str(a) for a in args], **kw)


def run_audit(*args, **kw):
    return run([AUDIT] + [str(a) for a in args], **kw)


INIT_TIME = "2026-11-27T08:00:00Z"    # the bootstrap events of every fixture


def init_log(data, admin="root", when=INIT_TIME):
    """changelog-admin init, stamped `when`; returns the admin token."""
    p = run_admin("init", "--data", data, "--admin", admin, fake_time=when, check=True)
    token = p.stdout.strip()
    assert re.fullmatch(r"clg_[A-Za-z0-9_-]{43}", token), p.stdout
    return token


def dev_exec(data, user, op, params, when):
    p = run_admin("dev-exec", op, json.dumps(params), "--as", user, "--data", data,
                  fake_time=when, check=True)
    reply = json.loads(p.stdout)
    assert reply["ok"], reply
    return reply


def build_fixture_log(data):
    """The deterministic log behind tests/data/audit/*. 18 events."""
    init_log(data, "root")                                            # 1-2
    run_admin("user", "add", "alice", "--data", data,
              fake_time="2026-11-27T09:00:00Z", check=True)            # 3-4
    run_admin("user", "add", "bob", "--data", data,
              fake_time="2026-11-27T09:01:00Z", check=True)            # 5-6
    run_admin("token", "issue", "alice", "--label", "laptop, home", "--data", data,
              fake_time="2026-11-27T09:02:00Z", check=True)            # 7 (token 4)
    dev_exec(data, "alice", "createEntry",
             {"title": 'Login fails with "quotes", commas', "body": "Steps: ...",
              "kind": "fix"}, "2026-11-27T09:03:00Z")                  # 8 entry 1
    dev_exec(data, "bob", "createEntry",
             {"title": "Upgrade Postgres to 16", "body": "", "kind": "change"},
             "2026-11-27T09:04:00Z")                                   # 9 entry 2
    dev_exec(data, "bob", "addComment", {"entry": 1, "body": "Repro on staging"},
             "2026-11-27T10:00:00Z")                                   # 10 comment 1
    dev_exec(data, "alice", "addComment",
             {"entry": 1, "parent": 1, "body": "Thanks, fixing"},
             "2026-11-27T10:05:00Z")                                   # 11 comment 2
    dev_exec(data, "alice", "editEntry",
             {"entry": 1, "title": "Login fails with quotes", "body": "Updated"},
             "2026-11-27T10:30:00Z")                                   # 12
    dev_exec(data, "alice", "setStatus", {"entry": 1, "status": "resolved"},
             "2026-11-28T08:00:00Z")                                   # 13
    dev_exec(data, "root", "setStatus", {"entry": 2, "status": "cancelled"},
             "2026-12-01T12:00:00Z")                                   # 14
    run_admin("token", "revoke", "4", "--data", data,
              fake_time="2026-12-01T12:01:00Z", check=True)            # 15
    run_admin("user", "role", "bob", "admin", "--data", data,
              fake_time="2026-12-02T00:00:00Z", check=True)            # 16
    dev_exec(data, "bob", "addComment",
             {"entry": 2, "body": "multi\nline, with \"quotes\""},
             "2026-12-02T09:00:00Z")                                   # 17 comment 3
    dev_exec(data, "alice", "setStatus", {"entry": 1, "status": "reopened"},
             "2026-12-03T00:00:00Z")                                   # 18


def expected(name):
    with open(os.path.join(EXPECTED, name), newline="") as f:
        return f.read()


class LmdbDump:
    """A whole LMDB environment as text (mdb_dump -a), editable, reloadable."""

    def __init__(self, data_dir):
        out = subprocess.run(["mdb_dump", "-a", data_dir], capture_output=True,
                             check=True).stdout.decode()
        self.dbs = []      # [name, header lines, [[key bytes, value bytes], ...]]
        lines = out.splitlines()
        i = 0
        while i < len(lines):
            header = []
            while lines[i] != "HEADER=END":
                header.append(lines[i])
                i += 1
            i += 1
            name = next((h.split("=", 1)[1] for h in header if h.startswith("database=")),
                        None)
            pairs = []
            while lines[i] != "DATA=END":
                pairs.append([bytes.fromhex(lines[i].strip()),
                              bytes.fromhex(lines[i + 1].strip())])
                i += 2
            i += 1
            self.dbs.append([name, header, pairs])

    def pairs(self, name):
        return next(d[2] for d in self.dbs if d[0] == name)

    # events are keyed by u64 big-endian seq
    def events(self):
        return self.pairs("events")

    def event_index(self, seq):
        key = seq.to_bytes(8, "big")
        return next(i for i, kv in enumerate(self.events()) if kv[0] == key)

    def get_event(self, seq):
        return self.events()[self.event_index(seq)][1]

    def set_event(self, seq, value):
        self.events()[self.event_index(seq)][1] = value

    def del_event(self, seq):
        del self.events()[self.event_index(seq)]

    def last_seq(self):
        return int.from_bytes(self.events()[-1][0], "big")

    def set_meta(self, key, value):
        for kv in self.pairs("meta"):
            if kv[0] == key.encode():
                kv[1] = value
                return
        raise KeyError(key)

    def get_meta(self, key):
        return next(kv[1] for kv in self.pairs("meta") if kv[0] == key.encode())

    def save(self, dest_dir):
        """Load into a new environment in dest_dir (created; must be empty)."""
        os.makedirs(dest_dir, exist_ok=True)
        text = []
        for name, header, pairs in self.dbs:
            text.extend(header)
            text.append("HEADER=END")
            for k, v in sorted(pairs, key=lambda kv: kv[0]):
                text.append(" " + k.hex())
                text.append(" " + v.hex())
            text.append("DATA=END")
        subprocess.run(["mdb_load", dest_dir], input="\n".join(text) + "\n",
                       text=True, check=True, capture_output=True)
