"""test_replay_common.py - shared pieces of the changelog-replay and dashboard
tests (it holds no tests itself; modules load it with pytest_plugins so its
session fixtures exist once).

- `workload`: one changelogd with a seeded random workload driven through
  its websocket API (users, roles, tokens, entries, edits, status changes,
  threaded comments, HTML and non-ASCII text). While it runs, a thread keeps
  running changelog-replay in small batches into an "incremental" SQLite file
  and MariaDB database, so incremental runs overlap live appends.
- SqliteDB / MariaDBDB: the same small query interface over both targets.
- server_answers() asks changelogd every stored query; sql_answers() builds
  the same JSON from the tables alone; dump() is a full canonical table dump.
"""
import asyncio
import datetime
import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import pytest

from conftest import BIN, Client, Server, new_member, run
from mariadb_util import MariaDB

REPLAY = os.path.join(BIN, "changelog-replay")

# The schema, as replay/replay.c defines it (docs/sql-schema.md).
TABLES = {
    "users": ["id", "name", "role", "created", "created_us"],
    "tokens": ["id", "user_id", "label", "created", "created_us", "revoked", "revoked_at"],
    "entries": ["id", "title", "body", "kind", "status", "author_id", "author", "created",
                "created_us", "updated", "updated_us", "version", "comment_count",
                "last_activity", "last_activity_us"],
    "comments": ["id", "entry_id", "parent_id", "depth", "path", "author_id", "author", "body",
                 "created", "created_us", "edited", "deleted"],
    "status_changes": ["seq", "entry_id", "from_status", "to_status", "actor_id", "actor", "at",
                       "at_us"],
    "events": ["seq", "type", "ts", "ts_us", "actor_id", "entry_id", "comment_id", "user_id",
               "json"],
    "replay_state": ["id", "epoch", "last_seq", "updated"],
}
INT_COLS = {"id", "created_us", "user_id", "revoked", "author_id", "updated_us", "version",
            "comment_count", "last_activity_us", "entry_id", "parent_id", "depth", "seq",
            "actor_id", "at_us", "ts_us", "comment_id", "last_seq", "deleted"}


def replay(data, *args, env=None, check=True, timeout=120):
    """Run changelog-replay; returns the CompletedProcess."""
    e = dict(os.environ)
    if env:
        e.update(env)
    r = subprocess.run([REPLAY, "--data", data] + list(args), capture_output=True, text=True,
                       timeout=timeout, env=e)
    if check and r.returncode != 0:
        raise AssertionError("changelog-replay %s failed (%d):\n%s%s" % (
            " ".join(args), r.returncode, r.stdout, r.stderr))
    return r


# ---- databases ------------------------------------------------------------------

class SqliteDB:
    kind = "sqlite"

    def __init__(self, path):
        self.path = path

    def target(self):
        return ["--sqlite", self.path]

    def rows(self, sql, params=()):
        con = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True)
        try:
            con.row_factory = sqlite3.Row
            return [dict(r) for r in con.execute(sql, params)]
        finally:
            con.close()

    def rows_many(self, queries):
        return [self.rows(sql, params) for sql, params in queries]

    def exec(self, sql):
        con = sqlite3.connect(self.path)
        try:
            con.executescript(sql)
            con.commit()
        finally:
            con.close()

    def like_ci(self, col):
        return "%s LIKE ? ESCAPE '\\'" % col     # SQLite LIKE folds ASCII case only


class MariaDBDB:
    kind = "mariadb"

    def __init__(self, server, db):
        self.server = server
        self.db = db

    def target(self):
        return ["--mysql", self.server.url(self.db)]

    @staticmethod
    def _lit(v):
        if v is None:
            return "NULL"
        if isinstance(v, bool):
            return "1" if v else "0"
        if isinstance(v, int):
            return str(v)
        s = str(v).replace("\\", "\\\\").replace("'", "\\'").replace("\0", "\\0")
        return "'" + s + "'"

    def _text(self, sql, params):
        parts = sql.split("?")
        assert len(parts) == len(params) + 1, sql
        return parts[0] + "".join(self._lit(p) + rest for p, rest in zip(params, parts[1:]))

    def rows(self, sql, params=()):
        return self.rows_many([(sql, params)])[0]

    def rows_many(self, queries):
        """Several queries in one client run (one result set each, in order)."""
        text = "".join(self._text(sql, params).rstrip().rstrip(";") + ";\n"
                       for sql, params in queries)
        out = subprocess.run(
            ["mariadb", "--no-defaults", "-S", self.server.socket, "-uroot", "--xml",
             "--default-character-set=utf8mb4", self.db],
            input=text.encode(), capture_output=True, timeout=120)
        if out.returncode != 0:
            raise RuntimeError("mariadb: %s\n%s" % (text[:300], out.stderr.decode()))
        nil = "{http://www.w3.org/2001/XMLSchema-instance}nil"
        docs = [d for d in out.stdout.split(b'<?xml version="1.0"?>') if d.strip()]
        assert len(docs) == len(queries), (len(docs), len(queries))
        res = []
        for doc in docs:
            rows = []
            for row in ET.fromstring(doc).iter("row"):
                rows.append({f.get("name"): None if f.get(nil) == "true" else (f.text or "")
                             for f in row.iter("field")})
            res.append(rows)
        return res

    def exec(self, sql):
        self.server.sql(sql, db=self.db)

    def like_ci(self, col):
        return "LOWER(%s) LIKE ?" % col


def norm(row):
    """Ints as ints whatever the driver returned."""
    return {k: (int(v) if k in INT_COLS and v is not None else v) for k, v in row.items()}


def dump(db):
    """Every table of ours, every column, rows by primary key (replay_state's
    wall-clock 'updated' left out)."""
    out = {}
    for t, cols in TABLES.items():
        cs = [c for c in cols if not (t == "replay_state" and c == "updated")]
        rows = db.rows("SELECT %s FROM %s ORDER BY %s" % (", ".join(cs), t, cols[0]))
        out[t] = [norm(r) for r in rows]
    return out


def state(db):
    """(epoch, last_seq), or None before the state row (or its table) exists."""
    try:
        r = db.rows("SELECT epoch, last_seq FROM replay_state WHERE id = 1")
    except (sqlite3.Error, RuntimeError):
        return None
    return (r[0]["epoch"], int(r[0]["last_seq"])) if r else None


def kill9_replays(workload, fresh, name, batch, seed, took, head):
    """Replay into fresh(workload, name) over and over, SIGKILLing each run at
    a random moment (took = how long one whole run takes), until at least one
    kill has landed in the middle of a replay. Returns the target as the last
    killed run left it; a run that finished before its kill starts over on a
    fresh target."""
    db = fresh(workload, name)
    rng = random.Random(seed)
    partial = 0
    for _ in range(30):
        p = subprocess.Popen([REPLAY, "--data", workload.data, *db.target(), "--batch",
                              str(batch), "--quiet"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.05, 0.95) * took)
        p.send_signal(signal.SIGKILL)
        p.wait()
        st = state(db)
        if st and 0 < st[1] < head:
            partial += 1
        if st and st[1] == head:
            if partial:
                break
            db = fresh(workload, name)   # finished before any kill landed: again
    assert partial >= 1, "no kill landed in the middle of a replay"
    return db


# ---- JSON from the tables -------------------------------------------------------

def entry_json(r):
    r = norm(r)
    return {"id": r["id"], "title": r["title"], "body": r["body"], "kind": r["kind"],
            "status": r["status"], "author": r["author"], "author_id": r["author_id"],
            "created": r["created"], "updated": r["updated"], "version": r["version"],
            "comments": r["comment_count"], "last_activity": r["last_activity"]}


def iso_us(s):
    d = datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)
    return int(d.timestamp()) * 1000000 + d.microsecond


def sql_entries(db, params, bare=False):
    where, args = [], []
    for key, col in (("status", "status"), ("kind", "kind")):
        v = params.get(key)
        if v is not None:
            vals = [v] if isinstance(v, str) else list(v)
            where.append("%s IN (%s)" % (col, ", ".join("?" * len(vals))))
            args += vals
    if params.get("author") is not None:
        where.append("author = ?")
        args.append(params["author"])
    if params.get("created_after") is not None:
        where.append("created_us > ?")
        args.append(iso_us(params["created_after"]))
    if params.get("created_before") is not None:
        where.append("created_us < ?")
        args.append(iso_us(params["created_before"]))
    if params.get("q"):
        pat = "%" + params["q"].lower().replace("\\", "\\\\").replace("%", "\\%") \
            .replace("_", "\\_") + "%"
        where.append("(%s OR %s)" % (db.like_ci("title"), db.like_ci("body")))
        args += [pat, pat]
    if params.get("cursor") is not None:
        where.append("id < ?")
        args.append(params["cursor"])
    limit = params.get("limit", 500 if bare else 50)
    sql = "SELECT * FROM entries%s ORDER BY id DESC LIMIT %d" % (
        (" WHERE " + " AND ".join(where)) if where else "", limit + 1)
    rows = db.rows(sql, args)
    page = [entry_json(r) for r in rows[:limit]]
    if bare:
        return page
    return {"entries": page, "next_cursor": page[-1]["id"] if len(rows) > limit else None}


def entry_queries(eid):
    return [("SELECT * FROM entries WHERE id = ?", [eid]),
            ("SELECT * FROM status_changes WHERE entry_id = ? ORDER BY seq", [eid]),
            # one ORDER BY path reads the whole thread in display order
            ("SELECT * FROM comments WHERE entry_id = ? ORDER BY path", [eid])]


def entry_from_rows(rows, hist, comments):
    if not rows:
        return None
    e = entry_json(rows[0])
    e["status_history"] = [
        {"seq": h["seq"], "from": h["from_status"], "to": h["to_status"], "by": h["actor"],
         "by_id": h["actor_id"], "at": h["at"]} for h in map(norm, hist)]
    top, nodes = [], {}
    for c in map(norm, comments):
        node = {"id": c["id"], "entry": c["entry_id"], "parent": c["parent_id"],
                "author": c["author"], "author_id": c["author_id"], "body": c["body"],
                "created": c["created"], "depth": c["depth"], "replies": []}
        if c["edited"] is not None:
            node["edited"] = c["edited"]
        if c["deleted"]:
            node["deleted"] = True
        nodes[c["id"]] = node
        (nodes[c["parent_id"]]["replies"] if c["parent_id"] else top).append(node)
    return {"entry": e, "comments": top}


def sql_entry(db, eid):
    return entry_from_rows(*db.rows_many(entry_queries(eid)))


def sql_entry_many(db, ids):
    ids = list(ids)
    res = db.rows_many([q for eid in ids for q in entry_queries(eid)])
    return {eid: entry_from_rows(*res[3 * i:3 * i + 3]) for i, eid in enumerate(ids)}


def sql_users(db):
    toks = {}
    for t in map(norm, db.rows("SELECT * FROM tokens ORDER BY id")):
        toks.setdefault(t["user_id"], []).append(
            {"id": t["id"], "label": t["label"], "created": t["created"],
             "revoked": bool(t["revoked"])})
    return {"users": [{"id": u["id"], "name": u["name"], "role": u["role"],
                       "created": u["created"], "tokens": toks.get(u["id"], [])}
                      for u in map(norm, db.rows("SELECT * FROM users ORDER BY id"))]}


def sql_stats(db):
    def count(sql):
        return int(db.rows(sql)[0]["n"])

    st = {s: 0 for s in ("open", "resolved", "cancelled", "reopened")}
    for r in db.rows("SELECT status, COUNT(*) AS n FROM entries GROUP BY status"):
        st[r["status"]] = int(r["n"])
    kd = {k: 0 for k in ("fix", "change", "feature")}
    for r in db.rows("SELECT kind, COUNT(*) AS n FROM entries GROUP BY kind"):
        kd[r["kind"]] = int(r["n"])
    return {"events": state(db)[1], "users": count("SELECT COUNT(*) AS n FROM users"),
            "entries": count("SELECT COUNT(*) AS n FROM entries"),
            "comments": count("SELECT COUNT(*) AS n FROM comments"),
            "by_status": st, "by_kind": kd}


# ---- the server's answers ----------------------------------------------------------

def list_params(answers_hint):
    """The getChangelogEntries parameter sets every comparison uses."""
    created = answers_hint
    ps = [{}, {"limit": 7}, {"status": "open"}, {"status": ["resolved", "cancelled"]},
          {"kind": "feature", "limit": 5}, {"kind": ["fix", "change"], "status": "reopened"},
          {"q": "alpha"}, {"q": "ALPHA", "kind": "fix"}, {"q": "<img"},
          {"author": "carol"}, {"author": "nobody-here"}, {"limit": 500}]
    if created:
        ps.append({"created_after": created[len(created) // 3]})
        ps.append({"created_before": created[len(created) // 2], "limit": 4})
    return ps


async def _server_answers(server, token):
    c = await Client.connect(server, token)
    out = {"lists": []}
    try:
        first = await c.query("getChangelogEntries", {"limit": 500})
        assert first["ok"], first
        at = first["at"]
        out["at"] = at
        out["epoch"] = first["epoch"]
        created = sorted(e["created"] for e in first["result"]["entries"])
        for p in list_params(created):
            # walk every page: the cursor chain is part of the answer
            pages, params = [], dict(p)
            while True:
                r = await c.query("getChangelogEntries", params)
                assert r["ok"] and r["at"] == at, r
                pages.append(r["result"])
                if r["result"]["next_cursor"] is None or len(pages) > 30:
                    break
                params = dict(p, cursor=r["result"]["next_cursor"])
            out["lists"].append((p, pages))
        out["entries"] = {}
        n = len(first["result"]["entries"])
        for eid in range(1, n + 2):          # one past the end: not_found on both sides
            r = await c.query("getEntry", {"entry": eid})
            out["entries"][eid] = r["result"] if r["ok"] else None
        r = await c.query("getUsers")
        assert r["ok"], r
        out["users"] = r["result"]
        r = await c.query("getStats")
        assert r["ok"], r
        out["stats"] = r["result"]
        # the seed's own form has no id and is answered with a bare array
        await c.ws.send(json.dumps({"service": "mysql", "db": "lazul_changelog",
                                    "stored_query_name": "getChangelogEntries"}))
        seed = json.loads(await asyncio.wait_for(c.ws.recv(), 10))
        out["seed"] = seed
        r = await c.query("getStats")
        assert r["at"] == at, "the log moved while the answers were taken"
    finally:
        await c.close()
    return out


def server_answers(server, token):
    return run(_server_answers(server, token))


def assert_equivalent(db, ans):
    """Every stored answer of the server equals the JSON built from db."""
    assert state(db) == (ans["epoch"], ans["at"])
    for p, pages in ans["lists"]:
        params = dict(p)
        for page in pages:
            got = sql_entries(db, params)
            assert got == page, "getChangelogEntries %s differs" % json.dumps(params)
            params = dict(p, cursor=page["next_cursor"])
    got = sql_entry_many(db, ans["entries"])
    for eid, want in ans["entries"].items():
        assert got[eid] == want, "getEntry %d differs" % eid
    assert sql_users(db) == ans["users"]
    assert sql_stats(db) == ans["stats"]
    assert isinstance(ans["seed"], list), ans["seed"]
    assert sql_entries(db, {}, bare=True) == ans["seed"]


# ---- the workload ------------------------------------------------------------------

WORDS = ["deploy", "alpha", "AlPhA", "cache", "fix", "naïve", "café", "日本語", "emoji 😀",
         "quote ' \" \\ backslash", "tab\there", "100%", "under_score", "<b>bold</b>",
         "<img src=x onerror=alert(1)>", "&amp; entity", "newline\nbreak"]


def text(rng, lo, hi):
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(lo, hi))).strip() or "x"


NEXT = {"open": ["resolved", "cancelled"], "reopened": ["resolved", "cancelled"],
        "resolved": ["reopened"], "cancelled": ["reopened"]}


async def drive(server, seed, ops, between=None):
    """The seeded random workload. Returns a summary of what was done.
    between(): awaited every 40 operations."""
    rng = random.Random(seed)
    admin = await Client.connect(server, server.admin_token)
    done = {"ok": 0, "refused": 0}
    try:
        users = {}
        for name, role in (("bob", "member"), ("carol", "member"), ("dave", "admin"),
                           ("erin", "member")):
            uid, tok = await new_member(admin, name, role)
            users[name] = (uid, await Client.connect(server, tok))
        clients = {"admin": (1, admin)}
        clients.update(users)
        names = list(clients)
        entries = {}      # id -> {"author": name, "status": str, "comments": [(id, depth)]}
        issued = []
        r = await admin.command("createEntry", {"title": "<img src=x onerror=alert(1)>",
                                                "body": "<script>alert('b')</script>",
                                                "kind": "fix"})
        assert r["ok"], r
        entries[r["entry"]] = {"author": "admin", "status": "open", "comments": []}
        for i in range(ops):
            roll = rng.random()
            who = rng.choice(names)
            uid, c = clients[who]
            if roll < 0.18 or not entries:
                r = await c.command("createEntry", {
                    "title": text(rng, 1, 6)[:300], "body": text(rng, 0, 30),
                    "kind": rng.choice(["fix", "change", "feature"])})
                if r["ok"]:
                    entries[r["entry"]] = {"author": who, "status": "open", "comments": []}
            elif roll < 0.30:
                eid = rng.choice(list(entries))
                who = rng.choice([entries[eid]["author"], "admin", "dave"])
                p = {"entry": eid}
                for k in rng.sample(["title", "body", "kind"], rng.randint(1, 3)):
                    p[k] = {"title": text(rng, 1, 5)[:300], "body": text(rng, 0, 20),
                            "kind": rng.choice(["fix", "change", "feature"])}[k]
                r = await clients[who][1].command("editEntry", p)
            elif roll < 0.45:
                eid = rng.choice(list(entries))
                e = entries[eid]
                who = rng.choice([e["author"], "admin", "dave"])
                to = rng.choice(NEXT[e["status"]])
                r = await clients[who][1].command("setStatus", {"entry": eid, "status": to})
                if r["ok"]:
                    e["status"] = to
            elif roll < 0.92 and rng.random() < 0.06:
                # read marks (read.marked): tables other than events ignore
                # them; many are refused as "nothing unread"
                if rng.random() < 0.3:
                    r = await c.command("markAllRead", {})
                else:
                    r = await c.command("markRead", {"entry": rng.choice(list(entries))})
            elif roll < 0.92 and rng.random() < 0.08:
                # edit or delete a comment: mostly by its writer or an admin
                # (the others are refused, and must leave the tables alone)
                eid = rng.choice(list(entries))
                cs = entries[eid]["comments"]
                if not cs:
                    continue
                cid, _, writer = rng.choice(cs)
                if rng.random() < 0.7:
                    c = clients[writer][1]
                if rng.random() < 0.35:
                    r = await c.command("deleteComment", {"comment": cid})
                else:
                    r = await c.command("editComment", {"comment": cid,
                                                        "body": text(rng, 1, 12)})
            elif roll < 0.92:
                eid = rng.choice(list(entries))
                e = entries[eid]
                p = {"entry": eid, "body": text(rng, 1, 12)}
                deep = [cd for cd in e["comments"] if cd[1] < 31]
                if deep and rng.random() < 0.7:
                    # favour recent comments so some threads grow deep
                    parent = deep[-1] if rng.random() < 0.4 else rng.choice(deep)
                    p["parent"] = parent[0]
                    depth = parent[1] + 1
                else:
                    depth = 0
                r = await c.command("addComment", p)
                if r["ok"]:
                    e["comments"].append((r["comment"], depth, who))
            elif roll < 0.95:
                r = await admin.command("setRole", {"user": users["erin"][0],
                                                    "role": rng.choice(["admin", "member"])})
            elif roll < 0.98 or not issued:
                r = await admin.command("issueToken", {"user": users[rng.choice(list(users))][0],
                                                       "label": text(rng, 0, 2)[:64]})
                if r["ok"]:
                    issued.append(r["token_id"])
            else:
                r = await admin.command("revokeToken", {"token": issued.pop(0)})
            done["ok" if r["ok"] else "refused"] += 1
            if between and i % 40 == 39:
                await between()
        # last, so no edit changes it: HTML in a title, a body and a comment
        r = await admin.command("createEntry", {"title": "<img src=x onerror=alert(1)>",
                                                "body": "<script>alert('b')</script>",
                                                "kind": "fix"})
        assert r["ok"], r
        r = await users["bob"][1].command("addComment", {
            "entry": r["entry"], "body": "<script>alert('c')</script>"})
        assert r["ok"], r
        for _, c in users.values():
            await c.close()
    finally:
        await admin.close()
    done["entries"] = len(entries)
    return done


class Workload:
    """A server with the workload applied, plus the incremental targets."""

    def __init__(self, base, mariadb):
        self.base = base
        self.server = Server(os.path.join(base, "data")).start()
        self.data = self.server.data
        self.mariadb = mariadb
        self.inc_sqlite = SqliteDB(os.path.join(base, "inc.db"))
        self.inc_maria = MariaDBDB(mariadb, mariadb.create_db("clg_inc"))
        self.steps = 0
        self.errors = []

    def _incremental(self, stop):
        rng = random.Random(7)
        while not stop.is_set():
            for db in (self.inc_sqlite, self.inc_maria):
                r = replay(self.data, *db.target(), "--batch", str(rng.randint(1, 9)),
                           "--quiet", check=False)
                if r.returncode != 0:
                    self.errors.append(r.stderr)
                self.steps += 1
            time.sleep(rng.random() * 0.05)

    def run(self, seed=20261127, ops=420):
        stop = threading.Event()
        t = threading.Thread(target=self._incremental, args=(stop,))

        async def between():
            # let the replays in the other thread make progress between chunks,
            # however slow they are (sanitizer builds), so runs interleave
            want = self.steps + 2
            deadline = time.monotonic() + 30
            while self.steps < want and time.monotonic() < deadline:
                await asyncio.sleep(0.01)

        t.start()
        try:
            self.summary = run(drive(self.server, seed, ops, between), timeout=300)
        finally:
            stop.set()
            t.join()
        assert not self.errors, self.errors[:3]
        return self

    def catch_up(self, *dbs):
        for db in dbs:
            replay(self.data, *db.target(), "--quiet")

    def stop(self):
        self.server.stop()


@pytest.fixture(scope="session")
def mariadb_server():
    m = MariaDB().start()
    yield m
    m.stop()


@pytest.fixture(scope="session")
def workload(mariadb_server):
    base = tempfile.mkdtemp(prefix="clg-replay-")
    w = Workload(base, mariadb_server).run()
    yield w
    w.stop()
    if not os.environ.get("KEEP_TMP"):
        shutil.rmtree(base, ignore_errors=True)
