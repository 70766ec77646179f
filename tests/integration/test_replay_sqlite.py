"""test_replay_sqlite.py - bin/changelog-replay into SQLite, against a live
changelogd driven by a seeded random workload (test_replay_common.py).

The central claim: the tables equal the server's projections. Every stored
query the server answers (lists with filters and every page, every entry
with its comment tree and status history, users with tokens, stats, the
seed's own request) is rebuilt from the SQL rows alone and compared as JSON.
Then: many small incremental runs overlapping the workload, and kill -9 at
random points, both end in exactly the tables of one uninterrupted run.
"""
import os
import pty
import random
import select
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import Client, run
from test_replay_common import (REPLAY, SqliteDB, kill9_replays, assert_equivalent, dump, replay,
                                server_answers, state)

pytest_plugins = ["test_replay_common"]


def fresh(workload, name):
    path = os.path.join(workload.base, name)
    for suffix in ("", "-wal", "-shm"):
        if os.path.exists(path + suffix):
            os.unlink(path + suffix)
    return SqliteDB(path)


def test_tables_equal_every_stored_query(workload):
    db = fresh(workload, "full.db")
    r = replay(workload.data, *db.target())
    assert r.stdout.startswith("applied "), r.stdout
    assert "events (seq 1.." in r.stdout and "events/s" in r.stdout
    ans = server_answers(workload.server, workload.server.admin_token)
    assert ans["at"] > 400
    assert_equivalent(db, ans)
    # a second run has nothing to do and says so
    r = replay(workload.data, *db.target())
    assert "applied 0 events; up to date at seq %d" % ans["at"] in r.stdout
    # the database is a sound SQLite file in WAL mode
    con = sqlite3.connect(db.path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.close()


def test_incremental_steps_equal_one_run(workload):
    assert workload.steps >= 10, "the incremental loop hardly ran"
    workload.catch_up(workload.inc_sqlite)
    db = fresh(workload, "one.db")
    replay(workload.data, *db.target())
    one = dump(db)
    assert dump(workload.inc_sqlite) == one
    assert len(one["events"]) == one["replay_state"][0]["last_seq"]


def test_kill9_anywhere_then_rerun_equals_one_run(workload):
    one_db = fresh(workload, "one-k.db")
    t0 = time.monotonic()
    replay(workload.data, *one_db.target(), "--batch", "1")
    took = time.monotonic() - t0                   # how long the runs below would take
    one = dump(one_db)
    head = one["replay_state"][0]["last_seq"]
    db = kill9_replays(workload, fresh, "killed.db", 1, 99, took, head)
    replay(workload.data, *db.target())
    assert dump(db) == one
    con = sqlite3.connect(db.path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def wait_for(pred, timeout, step=0.01):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_follow_applies_a_live_command_within_a_second(workload, sig):
    db = fresh(workload, "follow.db")
    p = subprocess.Popen([REPLAY, "--data", workload.data, *db.target(), "--follow"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        head = server_answers_at(workload)
        assert wait_for(lambda: os.path.exists(db.path) and state(db) and
                        state(db)[1] >= head, 10), "--follow never caught up"
        title = "live %s %d" % (signal.Signals(sig).name, random.randrange(10**9))

        async def create():
            c = await Client.connect(workload.server, workload.server.admin_token)
            r = await c.command("createEntry", {"title": title, "kind": "change"})
            await c.close()
            return r

        r = run(create())
        assert r["ok"], r
        t0 = time.monotonic()
        got = wait_for(lambda: db.rows("SELECT id FROM entries WHERE title = ?", [title]), 3)
        elapsed = time.monotonic() - t0
        assert got and got[0]["id"] == r["entry"], "--follow did not apply the new entry"
        assert elapsed < 1.0, "--follow took %.2f s" % elapsed
        assert state(db)[1] == r["seq"]
        p.send_signal(sig)
        out, err = p.communicate(timeout=5)
        assert p.returncode == 0, err
        assert out.startswith("applied "), out
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def server_answers_at(workload):
    async def at():
        c = await Client.connect(workload.server, workload.server.admin_token)
        r = await c.query("getStats")
        await c.close()
        return r["at"]
    return run(at())


def test_epoch_mismatch_refused_then_rebuild(workload, make_server):
    other = make_server(name="other")          # a new log: a new epoch
    db = fresh(workload, "epoch.db")
    replay(workload.data, *db.target())
    before = dump(db)
    r = replay(other.data, *db.target(), check=False)
    assert r.returncode == 1
    assert "another log" in r.stderr and "--rebuild" in r.stderr, r.stderr
    assert dump(db) == before, "a refused run changed the tables"
    # our tables only: a table of the user's survives the rebuild
    db.exec("CREATE TABLE notes(x TEXT); INSERT INTO notes VALUES ('keep me');")
    r = replay(other.data, *db.target(), "--rebuild")
    ref = fresh(workload, "epoch-ref.db")
    replay(other.data, *ref.target())
    assert dump(db) == dump(ref)
    assert db.rows("SELECT x FROM notes") == [{"x": "keep me"}]
    assert state(db)[0] != before["replay_state"][0]["epoch"]


@pytest.mark.parametrize("change,table", [
    ("ALTER TABLE entries ADD COLUMN extra TEXT", "entries"),
    ("ALTER TABLE comments DROP COLUMN author", "comments"),
    ("ALTER TABLE users RENAME COLUMN role TO rank", "users"),
    ("DROP TABLE status_changes", "status_changes"),
])
def test_altered_table_refused_by_name(workload, change, table):
    db = fresh(workload, "altered.db")
    replay(workload.data, *db.target())
    db.exec(change)
    r = replay(workload.data, *db.target(), check=False)
    assert r.returncode == 1
    assert "table %s" % table in r.stderr and "--rebuild" in r.stderr, r.stderr
    replay(workload.data, *db.target(), "--rebuild")
    ref = fresh(workload, "altered-ref.db")
    replay(workload.data, *ref.target())
    assert dump(db) == dump(ref)


def test_foreign_rows_without_state_refused(workload):
    db = fresh(workload, "foreign.db")
    db.exec("CREATE TABLE entries(id INTEGER PRIMARY KEY, title TEXT NOT NULL, body TEXT NOT "
            "NULL, kind TEXT NOT NULL, status TEXT NOT NULL, author_id INTEGER NOT NULL, "
            "author TEXT NOT NULL, created TEXT NOT NULL, created_us INTEGER NOT NULL, "
            "updated TEXT NOT NULL, updated_us INTEGER NOT NULL, version INTEGER NOT NULL, "
            "comment_count INTEGER NOT NULL, last_activity TEXT NOT NULL, "
            "last_activity_us INTEGER NOT NULL);"
            "INSERT INTO entries VALUES (1,'t','b','fix','open',1,'a','',0,'',0,1,0,'',0);")
    r = replay(workload.data, *db.target(), check=False)
    assert r.returncode == 1 and "table entries holds rows" in r.stderr, r.stderr
    assert db.rows("SELECT COUNT(*) AS n FROM entries") == [{"n": 1}]


def test_read_only_database_refused(workload):
    db = fresh(workload, "ro.db")
    replay(workload.data, *db.target())
    before = dump(db)
    for suffix in ("-wal", "-shm"):
        if os.path.exists(db.path + suffix):
            os.unlink(db.path + suffix)
    # root ignores file modes; the immutable attribute binds root too
    subprocess.run(["chattr", "+i", db.path], check=True)
    try:
        r = replay(workload.data, *db.target(), check=False)
    finally:
        subprocess.run(["chattr", "-i", db.path], check=True)
    assert r.returncode == 1
    assert "read-only" in r.stderr, r.stderr
    assert dump(db) == before


def test_bad_inputs(workload, tmp_path):
    r = replay(str(tmp_path / "missing"), "--sqlite", str(tmp_path / "x.db"), check=False)
    assert r.returncode == 1 and "no event log" in r.stderr, r.stderr
    assert not (tmp_path / "x.db").exists(), "a missing log must not create the database"
    empty = tmp_path / "empty"
    empty.mkdir()
    r = replay(str(empty), "--sqlite", str(tmp_path / "y.db"), check=False)
    assert r.returncode == 1 and "no event log" in r.stderr, r.stderr
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some text\n" * 200)
    r = replay(workload.data, "--sqlite", str(junk), check=False)
    assert r.returncode == 1 and "not a database" in r.stderr, r.stderr
    r = replay(workload.data, "--sqlite", str(tmp_path / "nodir" / "z.db"), check=False)
    assert r.returncode == 1 and "cannot open SQLite database" in r.stderr, r.stderr


@pytest.mark.parametrize("args,msg", [
    (["--batch", "0"], "--batch"), (["--batch", "x"], "--batch"),
    (["--bogus"], "unknown argument"), (["--sqlite"], "needs a value"),
    (["--sqlite", "a.db", "--mysql", "mysql://u@h/d"], "not both"),
    (["--mysql", "postgres://u@h/d"], "mysql://"), (["--mysql", "mysql://u@h"], "database"),
    (["--mysql", "mysql://u@h:99999/d"], "malformed"),
    (["--mysql", "mysql://u@h/d?sock=/x"], "unknown parameter"),
])
def test_usage_errors_exit_2(workload, args, msg):
    r = replay(workload.data, *args, check=False)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert msg in r.stderr, r.stderr


def test_help():
    r = subprocess.run([REPLAY, "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for word in ("--data", "--sqlite", "--mysql", "--rebuild", "--follow", "--batch",
                 "CHANGELOG_MYSQL_PASSWORD", "--mysql-defaults-file"):
        assert word in r.stdout
    r = subprocess.run([REPLAY], capture_output=True, text=True)
    assert r.returncode == 2 and "--data" in r.stderr


def test_progress_bar_on_a_terminal(workload, tmp_path):
    """A large backlog on a TTY shows a bar with rate and ETA; a pipe stays quiet.
    (A "large" backlog is 20000 events; the test lowers that to the workload's
    size instead of writing 20000 events.)"""
    db = str(tmp_path / "tty.db")
    head = server_answers_at(workload)
    pid, fd = pty.fork()
    if pid == 0:
        os.environ["CL_REPLAY_PROGRESS_MIN"] = "100"
        os.execv(REPLAY, [REPLAY, "--data", workload.data, "--sqlite", db, "--batch", "1"])
    out = b""
    while True:
        r, _, _ = select.select([fd], [], [], 60)
        if not r:
            break
        try:
            chunk = os.read(fd, 65536)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0, out
    text = out.decode(errors="replace")
    assert "ev/s" in text and "ETA" in text and "events" in text, text[-500:]
    assert "applied %d events (seq 1..%d)" % (head, head) in text, text[-300:]
    # the same backlog through a pipe: only the summary line
    r = replay(workload.data, "--sqlite", str(tmp_path / "pipe.db"),
               env={"CL_REPLAY_PROGRESS_MIN": "100"})
    assert r.stderr == "" and r.stdout.count("\n") == 1, (r.stdout, r.stderr)
