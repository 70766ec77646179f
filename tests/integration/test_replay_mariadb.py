"""test_replay_mariadb.py - bin/changelog-replay into MariaDB (a throwaway
mariadbd on a unix socket, tests/integration/mariadb_util.py), against the
same live workload as the SQLite tests.

The same claims as for SQLite - every stored query equals the tables,
incremental runs and kill -9 end in the tables of one run - plus: the
MariaDB tables hold exactly the rows of the SQLite ones, array binding and
the multi-row INSERT fallback write the same rows, and the ways a
connection fails (bad password, no server, no database) are clear errors
that leave the tables as they were.
"""
import time

import pytest

from test_replay_common import (MariaDBDB, SqliteDB, assert_equivalent, dump, kill9_replays,
                                replay, server_answers, state)

pytest_plugins = ["test_replay_common"]


def fresh(workload, name):
    return MariaDBDB(workload.mariadb, workload.mariadb.create_db(name))


def test_tables_equal_every_stored_query(workload):
    db = fresh(workload, "clg_full")
    r = replay(workload.data, *db.target())
    assert r.stdout.startswith("applied "), r.stdout
    ans = server_answers(workload.server, workload.server.admin_token)
    assert_equivalent(db, ans)
    r = replay(workload.data, *db.target())
    assert "applied 0 events; up to date at seq %d" % ans["at"] in r.stdout
    # InnoDB, utf8mb4, binary collation
    out = workload.mariadb.sql(
        "SELECT table_name, engine, table_collation FROM information_schema.tables "
        "WHERE table_schema = 'clg_full' ORDER BY table_name")
    rows = [line.split("\t") for line in out.strip().splitlines()]
    assert len(rows) == 7
    assert all(r[1] == "InnoDB" and r[2] == "utf8mb4_bin" for r in rows), rows


def test_incremental_steps_equal_one_run_and_sqlite(workload, tmp_path):
    workload.catch_up(workload.inc_maria)
    db = fresh(workload, "clg_one")
    replay(workload.data, *db.target())
    one = dump(db)
    assert dump(workload.inc_maria) == one
    lite = SqliteDB(str(tmp_path / "same.db"))
    replay(workload.data, *lite.target())
    assert dump(lite) == one, "MariaDB and SQLite tables differ"


def test_multi_row_insert_fallback_writes_the_same_rows(workload):
    bulk = fresh(workload, "clg_bulk")
    replay(workload.data, *bulk.target())
    text = fresh(workload, "clg_text")
    # in small batches too, so the fallback's updates of older entries run
    replay(workload.data, *text.target(), "--batch", "50", env={"CL_REPLAY_NO_BULK": "1"})
    assert dump(text) == dump(bulk)


def test_kill9_anywhere_then_rerun_equals_one_run(workload):
    ref = fresh(workload, "clg_ref")
    t0 = time.monotonic()
    replay(workload.data, *ref.target(), "--batch", "2")
    took = time.monotonic() - t0                   # how long the runs below would take
    one = dump(ref)
    head = one["replay_state"][0]["last_seq"]
    db = kill9_replays(workload, fresh, "clg_killed", 2, 5, took, head)
    replay(workload.data, *db.target())
    assert dump(db) == one


@pytest.fixture(scope="module")
def rp_user(workload):
    m = workload.mariadb
    m.create_db("clg_auth")
    m.sql("CREATE USER IF NOT EXISTS 'rp'@'localhost' IDENTIFIED BY 'p@ss w:rd/1';"
          "GRANT ALL ON clg_auth.* TO 'rp'@'localhost';")
    return "p@ss w:rd/1"


def test_password_from_url_env_and_option_file(workload, rp_user, tmp_path):
    m = workload.mariadb
    url_pw = "mysql://rp:p%40ss%20w%3Ard%2F1@localhost/clg_auth?socket=" + m.socket
    r = replay(workload.data, "--mysql", url_pw)
    assert r.stdout.startswith("applied ")
    url = "mysql://rp@localhost/clg_auth?socket=" + m.socket
    for var in ("CHANGELOG_MYSQL_PASSWORD", "MYSQL_PWD"):
        r = replay(workload.data, "--mysql", url, env={var: rp_user})
        assert "up to date" in r.stdout
    cnf = tmp_path / "my.cnf"
    cnf.write_text("[client]\nuser=rp\npassword=%s\nsocket=%s\n" % (rp_user, m.socket))
    r = replay(workload.data, "--mysql", "mysql://localhost/clg_auth",
               "--mysql-defaults-file", str(cnf))
    assert "up to date" in r.stdout
    # the password never shows in the process's messages
    assert rp_user not in r.stdout + r.stderr


def test_connection_failures_are_clear(workload, rp_user, tmp_path):
    m = workload.mariadb
    before = dump(MariaDBDB(m, "clg_auth"))
    r = replay(workload.data, "--mysql",
               "mysql://rp:wrong@localhost/clg_auth?socket=" + m.socket, check=False)
    assert r.returncode == 1
    assert "cannot connect" in r.stderr and "Access denied" in r.stderr, r.stderr
    assert "wrong" not in r.stderr
    r = replay(workload.data, "--mysql", "mysql://rp@localhost/clg_auth?socket=%s" %
               (tmp_path / "no-such.sock"), check=False)
    assert r.returncode == 1
    assert "cannot connect" in r.stderr and "no-such.sock" in r.stderr, r.stderr
    r = replay(workload.data, "--mysql", "mysql://root@localhost/clg_nodb?socket=" + m.socket,
               check=False)
    assert r.returncode == 1 and "clg_nodb" in r.stderr, r.stderr
    assert dump(MariaDBDB(m, "clg_auth")) == before


def test_altered_table_and_epoch_refused(workload, make_server):
    db = fresh(workload, "clg_alter")
    replay(workload.data, *db.target())
    db.exec("ALTER TABLE comments ADD COLUMN likes INT NOT NULL DEFAULT 0")
    r = replay(workload.data, *db.target(), check=False)
    assert r.returncode == 1 and "table comments" in r.stderr, r.stderr
    replay(workload.data, *db.target(), "--rebuild")
    assert state(db)[1] > 0
    other = make_server(name="other-maria")
    before = dump(db)
    r = replay(other.data, *db.target(), check=False)
    assert r.returncode == 1 and "another log" in r.stderr, r.stderr
    assert dump(db) == before
    replay(other.data, *db.target(), "--rebuild")
    assert state(db)[0] != before["replay_state"][0]["epoch"]
    assert dump(db)["entries"] == []
