/* test_replay_replay.c - replay/replay.c driving the SQLite backend over
 * real logs written with store/evlog.c in temp dirs: the rows each event
 * makes, resuming from the tables (comment paths, last_activity), epochs,
 * altered tables, impossible events and tables ahead of their log. */
#include "harness.h"

#include <sqlite3.h>
#include <stdlib.h>
#include "../../core/event.h"
#include "../../replay/replay.h"
#include "../../store/evlog.h"

static struct evlog *new_log(const char *dir)
{
	struct evlog *log = NULL;

	if (evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) != 0)
		return NULL;
	return log;
}

static int append(struct evlog *log, struct event *ev)
{
	uint64_t last = 0, first = 0;

	if (evlog_last(log, &last, NULL))
		return -1;
	return evlog_append(log, last, ev, 1, 0, (struct cl_str){ NULL, 0 }, NULL, 0, &first);
}

static struct event mk(int type, int64_t ts, uint64_t actor)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = (uint32_t)type;
	ev.ts = ts;
	ev.actor = actor;
	return ev;
}

static int user(struct evlog *log, uint64_t id, const char *name, int role)
{
	struct event ev = mk(EV_USER_CREATED, 1000 + (int64_t)id, 0);

	ev.ids.user = id;
	ev.name = (struct cl_str){ name, strlen(name) };
	ev.role = (uint8_t)role;
	return append(log, &ev);
}

static int entry(struct evlog *log, uint64_t id, uint64_t actor, int64_t ts, const char *title)
{
	struct event ev = mk(EV_ENTRY_CREATED, ts, actor);

	ev.ids.entry = id;
	ev.title = (struct cl_str){ title, strlen(title) };
	ev.body = CL_STR("body text");
	ev.kind = KIND_FIX;
	return append(log, &ev);
}

static int comment(struct evlog *log, uint64_t id, uint64_t entry_id, uint64_t parent,
		   int64_t ts)
{
	struct event ev = mk(EV_COMMENT_ADDED, ts, 1);

	ev.ids.comment = id;
	ev.ids.entry = entry_id;
	ev.ids.parent = parent;
	ev.body = CL_STR("a comment");
	return append(log, &ev);
}

static int edit_title(struct evlog *log, uint64_t entry_id, int64_t ts, const char *title)
{
	struct event ev = mk(EV_ENTRY_EDITED, ts, 1);

	ev.ids.entry = entry_id;
	ev.has_title = 1;
	ev.title = (struct cl_str){ title, strlen(title) };
	return append(log, &ev);
}

static int status(struct evlog *log, uint64_t entry_id, int64_t ts, int from, int to)
{
	struct event ev = mk(EV_ENTRY_STATUS_SET, ts, 1);

	ev.ids.entry = entry_id;
	ev.status_from = (uint8_t)from;
	ev.status_to = (uint8_t)to;
	return append(log, &ev);
}

static int do_replay(const char *dir, const char *db, unsigned batch, unsigned max_batches,
		     int rebuild, char *err, size_t errlen)
{
	struct replay_backend *b = NULL;
	struct replay_opts o;
	struct replay_stats st;
	int rc;

	if ((rc = replay_sqlite_open(&b, db, err, errlen)))
		return rc;
	memset(&o, 0, sizeof o);
	o.data_dir = dir;
	o.batch = batch;
	o.max_batches = max_batches;
	o.rebuild = rebuild;
	rc = replay_run(b, &o, &st, err, errlen);
	b->ops->close(b);
	return rc;
}

/* First column of the first row of sql as text ("" if none), into out. */
static const char *q1(const char *db, const char *sql, char *out, size_t cap)
{
	sqlite3 *h = NULL;
	sqlite3_stmt *st = NULL;

	out[0] = 0;
	if (sqlite3_open(db, &h) == SQLITE_OK && sqlite3_prepare_v2(h, sql, -1, &st, NULL) == SQLITE_OK &&
	    sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	sqlite3_close(h);
	return out;
}

/* Every row of our tables, except replay_state.updated, as one string. */
static char *dump(const char *db)
{
	static const char *const sql =
		"SELECT group_concat(x, '|') FROM ("
		"SELECT quote(id)||name||role||created||created_us AS x FROM users UNION ALL "
		"SELECT id||user_id||label||created||revoked||quote(revoked_at) FROM tokens UNION ALL "
		"SELECT id||title||body||kind||status||author||updated_us||version||comment_count||"
		"last_activity_us FROM entries UNION ALL "
		"SELECT id||entry_id||quote(parent_id)||depth||path||author||body FROM comments UNION ALL "
		"SELECT seq||entry_id||from_status||to_status||actor FROM status_changes UNION ALL "
		"SELECT seq||type||json FROM events UNION ALL "
		"SELECT epoch||last_seq FROM replay_state)";
	char *buf = malloc(1 << 20);

	if (buf)
		q1(db, sql, buf, 1 << 20);
	return buf;
}

static const char *path_of(const char *dir, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", dir, name);
	return out;
}

/* admin(1), bob(2); entry 1 with a thread 1 <- 2 <- 3 and 4 top-level; entry 2. */
static int base_log(struct evlog *log)
{
	return user(log, 1, "admin", ROLE_ADMIN) || user(log, 2, "bob", ROLE_MEMBER) ||
	       entry(log, 1, 2, 2000, "first <b>") || comment(log, 1, 1, 0, 2100) ||
	       comment(log, 2, 1, 1, 2200) || entry(log, 2, 1, 2250, "second") ||
	       comment(log, 3, 1, 2, 2300) || comment(log, 4, 1, 0, 2400) ||
	       edit_title(log, 1, 2500, "first, edited") ||
	       status(log, 1, 2600, ST_OPEN, ST_RESOLVED);
}

static void t_rows(void)
{
	const char *dir = harness_tmpdir();
	char data[300], db[300], buf[256], err[512];
	struct evlog *log;
	struct event ev;

	path_of(dir, "data", data, sizeof data);
	path_of(dir, "r.db", db, sizeof db);
	REQUIRE((log = new_log(data)));
	REQUIRE(base_log(log) == 0);
	ev = mk(EV_TOKEN_ISSUED, 2700, 1);
	ev.ids.user = 2;
	ev.ids.token = 1;
	ev.label = CL_STR("laptop");
	memset(ev.token_hash, 7, sizeof ev.token_hash);
	REQUIRE(append(log, &ev) == 0);
	ev = mk(EV_TOKEN_REVOKED, 2800, 1);
	ev.ids.user = 2;
	ev.ids.token = 1;
	REQUIRE(append(log, &ev) == 0);
	ev = mk(EV_USER_ROLE_SET, 2900, 1);
	ev.ids.user = 2;
	ev.role = ROLE_ADMIN;
	REQUIRE(append(log, &ev) == 0);
	evlog_close(log);

	CHECK_EQ_INT(do_replay(data, db, 2, 0, 0, err, sizeof err), 0);
	CHECK(!strcmp(q1(db, "SELECT last_seq FROM replay_state", buf, sizeof buf), "13"));
	CHECK(!strcmp(q1(db, "SELECT title||'/'||status||'/'||version||'/'||comment_count||'/'||"
			 "last_activity_us||'/'||updated_us||'/'||author FROM entries WHERE id = 1",
			 buf, sizeof buf), "first, edited/resolved/3/4/2600/2600/bob"));
	CHECK(!strcmp(q1(db, "SELECT group_concat(id||':'||depth, ' ') FROM "
			 "(SELECT * FROM comments WHERE entry_id = 1 ORDER BY path)", buf, sizeof buf),
		      "1:0 2:1 3:2 4:0"));
	CHECK(!strcmp(q1(db, "SELECT path FROM comments WHERE id = 3", buf, sizeof buf),
		      "0000000001/0000000002/0000000003"));
	CHECK(!strcmp(q1(db, "SELECT quote(parent_id) FROM comments WHERE id = 4", buf, sizeof buf),
		      "NULL"));
	CHECK(!strcmp(q1(db, "SELECT from_status||'>'||to_status||' by '||actor||' at '||at "
			 "FROM status_changes", buf, sizeof buf),
		      "open>resolved by admin at 1970-01-01T00:00:00.002600Z"));
	CHECK(!strcmp(q1(db, "SELECT label||revoked||revoked_at FROM tokens", buf, sizeof buf),
		      "laptop11970-01-01T00:00:00.002800Z"));
	CHECK(!strcmp(q1(db, "SELECT role FROM users WHERE id = 2", buf, sizeof buf), "admin"));
	CHECK(!strcmp(q1(db, "SELECT count(*)||' '||min(seq)||' '||max(seq) FROM events", buf,
			 sizeof buf), "13 1 13"));
	CHECK(!strcmp(q1(db, "SELECT json FROM events WHERE seq = 3", buf, sizeof buf),
		      "{\"seq\":3,\"type\":\"entry.created\",\"v\":2,\"ts\":\"1970-01-01T00:00:00.002000Z\","
		      "\"ts_us\":2000,\"actor\":2,\"entry\":1,\"data\":{\"title\":\"first <b>\","
		      "\"body\":\"body text\",\"kind\":\"fix\"}}"));
	/* the token hash never reaches the tables */
	CHECK(strstr(q1(db, "SELECT json FROM events WHERE seq = 11", buf, sizeof buf), "hash") == NULL);
}

/* Stop after every batch size from 1 to 4 and resume: the same tables as one run. */
static void t_resume_equals_one_run(void)
{
	const char *dir = harness_tmpdir();
	char data[300], one[300], inc[300], err[512];
	struct evlog *log;
	char *a, *b;
	unsigned batch;

	path_of(dir, "data", data, sizeof data);
	path_of(dir, "one.db", one, sizeof one);
	REQUIRE((log = new_log(data)));
	REQUIRE(base_log(log) == 0);
	/* after the resume points: replies under comments read back from the tables */
	REQUIRE(comment(log, 5, 1, 3, 2700) == 0 && comment(log, 6, 1, 4, 2800) == 0 &&
		comment(log, 7, 2, 0, 2900) == 0 && comment(log, 8, 1, 5, 3000) == 0);
	evlog_close(log);
	REQUIRE(do_replay(data, one, 0, 0, 0, err, sizeof err) == 0);
	a = dump(one);
	REQUIRE(a);
	for (batch = 1; batch <= 4; batch++) {
		int rc = 0, runs = 0;
		char buf[64];

		snprintf(inc, sizeof inc, "%s/inc%u.db", dir, batch);
		do {
			rc = do_replay(data, inc, batch, 1, 0, err, sizeof err);
			runs++;
		} while (rc == 0 && runs < 40 &&
			 strcmp(q1(inc, "SELECT last_seq FROM replay_state", buf, sizeof buf), "14"));
		CHECK_EQ_INT(rc, 0);
		b = dump(inc);
		CHECK(b && strcmp(a, b) == 0);
		if (b && strcmp(a, b))
			fprintf(stderr, "  batch %u:\n  %s\n  %s\n", batch, a, b);
		free(b);
	}
	free(a);
}

/* last_activity is max(updated, newest comment): a clock that went back
 * across a resume must not lose the comment time kept only in the tables. */
static void t_last_activity_across_resume(void)
{
	const char *dir = harness_tmpdir();
	char data[300], db[300], buf[64], err[512];
	struct evlog *log;

	path_of(dir, "data", data, sizeof data);
	path_of(dir, "r.db", db, sizeof db);
	REQUIRE((log = new_log(data)));
	REQUIRE(user(log, 1, "admin", ROLE_ADMIN) == 0 && entry(log, 1, 1, 100, "t") == 0 &&
		comment(log, 1, 1, 0, 500) == 0);
	REQUIRE(do_replay(data, db, 0, 0, 0, err, sizeof err) == 0);
	CHECK(!strcmp(q1(db, "SELECT last_activity_us FROM entries", buf, sizeof buf), "500"));
	REQUIRE(edit_title(log, 1, 300, "u") == 0);
	evlog_close(log);
	REQUIRE(do_replay(data, db, 0, 0, 0, err, sizeof err) == 0);
	CHECK(!strcmp(q1(db, "SELECT last_activity_us||' '||updated_us||' '||version FROM entries",
			 buf, sizeof buf), "500 300 2"));
}

static void t_impossible_events(void)
{
	const char *dir = harness_tmpdir();
	char data[300], db[300], buf[64], err[512];
	struct evlog *log;

	path_of(dir, "data", data, sizeof data);
	path_of(dir, "r.db", db, sizeof db);
	REQUIRE((log = new_log(data)));
	REQUIRE(user(log, 1, "admin", ROLE_ADMIN) == 0 && entry(log, 1, 1, 100, "a") == 0 &&
		entry(log, 2, 1, 110, "b") == 0 && comment(log, 1, 1, 0, 120) == 0);
	REQUIRE(do_replay(data, db, 0, 0, 0, err, sizeof err) == 0);
	/* a reply whose parent is in another entry */
	REQUIRE(comment(log, 2, 2, 1, 130) == 0);
	CHECK_EQ_INT(do_replay(data, db, 0, 0, 0, err, sizeof err), CL_ESTATE);
	CHECK(strstr(err, "event 5") && strstr(err, "another entry"));
	CHECK(!strcmp(q1(db, "SELECT last_seq FROM replay_state", buf, sizeof buf), "4"));
	CHECK(!strcmp(q1(db, "SELECT count(*) FROM comments", buf, sizeof buf), "1"));
	evlog_close(log);

	dir = harness_tmpdir();
	path_of(dir, "data", data, sizeof data);
	path_of(dir, "r.db", db, sizeof db);
	REQUIRE((log = new_log(data)));
	REQUIRE(user(log, 1, "admin", ROLE_ADMIN) == 0 && entry(log, 1, 1, 100, "a") == 0 &&
		status(log, 1, 120, ST_RESOLVED, ST_REOPENED) == 0);
	CHECK_EQ_INT(do_replay(data, db, 0, 0, 0, err, sizeof err), CL_ESTATE);
	CHECK(strstr(err, "is open, not resolved") != NULL);
	CHECK(!strcmp(q1(db, "SELECT last_seq FROM replay_state", buf, sizeof buf), "0"));
	evlog_close(log);
}

static void t_epoch_and_rebuild(void)
{
	const char *dir = harness_tmpdir();
	char data[300], db[300], buf[64], err[512], epoch[64];
	struct evlog *log;

	path_of(dir, "data", data, sizeof data);
	path_of(dir, "r.db", db, sizeof db);
	REQUIRE((log = new_log(data)));
	REQUIRE(base_log(log) == 0);
	evlog_close(log);
	REQUIRE(do_replay(data, db, 0, 0, 0, err, sizeof err) == 0);
	q1(db, "SELECT epoch FROM replay_state", epoch, sizeof epoch);
	REQUIRE(evlog_new_epoch(data) == 0);
	CHECK_EQ_INT(do_replay(data, db, 0, 0, 0, err, sizeof err), CL_EEPOCH);
	CHECK(strstr(err, "--rebuild") && strstr(err, epoch));
	CHECK(!strcmp(q1(db, "SELECT epoch FROM replay_state", buf, sizeof buf), epoch));
	CHECK_EQ_INT(do_replay(data, db, 0, 0, 1, err, sizeof err), 0);
	CHECK(strcmp(q1(db, "SELECT epoch FROM replay_state", buf, sizeof buf), epoch) != 0);
	CHECK(!strcmp(q1(db, "SELECT last_seq FROM replay_state", buf, sizeof buf), "10"));
}

static void t_altered_and_ahead(void)
{
	const char *dir = harness_tmpdir();
	char data[300], backup[300], db[300], buf[64], err[512];
	struct evlog *log;
	sqlite3 *h;

	path_of(dir, "data", data, sizeof data);
	path_of(dir, "backup", backup, sizeof backup);
	path_of(dir, "r.db", db, sizeof db);
	REQUIRE((log = new_log(data)));
	REQUIRE(user(log, 1, "admin", ROLE_ADMIN) == 0 && entry(log, 1, 1, 100, "a") == 0);
	REQUIRE(evlog_backup(log, backup) == 0);      /* same epoch, 2 events */
	REQUIRE(entry(log, 2, 1, 200, "b") == 0);
	evlog_close(log);
	REQUIRE(do_replay(data, db, 0, 0, 0, err, sizeof err) == 0);
	/* the tables are further on than the backup of the same log */
	CHECK_EQ_INT(do_replay(backup, db, 0, 0, 0, err, sizeof err), CL_ECORRUPT);
	CHECK(strstr(err, "the log ends at seq 2") != NULL);

	REQUIRE(sqlite3_open(db, &h) == SQLITE_OK);
	REQUIRE(sqlite3_exec(h, "ALTER TABLE entries ADD COLUMN mine TEXT", NULL, NULL, NULL) ==
		SQLITE_OK);
	sqlite3_close(h);
	CHECK_EQ_INT(do_replay(data, db, 0, 0, 0, err, sizeof err), CL_ECORRUPT);
	CHECK(strstr(err, "table entries was altered") && strstr(err, ",mine)"));
	CHECK_EQ_INT(do_replay(backup, db, 0, 0, 1, err, sizeof err), 0);
	CHECK(!strcmp(q1(db, "SELECT count(*) FROM pragma_table_info('entries')", buf, sizeof buf),
		      "15"));
	CHECK(!strcmp(q1(db, "SELECT last_seq FROM replay_state", buf, sizeof buf), "2"));
}

static void t_no_log(void)
{
	const char *dir = harness_tmpdir();
	char db[300], err[512];

	path_of(dir, "r.db", db, sizeof db);
	CHECK_EQ_INT(do_replay(dir, db, 0, 0, 0, err, sizeof err), CL_ENOTFOUND);
	CHECK(strstr(err, "no event log") != NULL);
	CHECK_EQ_INT(do_replay(dir, db, REPLAY_MAX_BATCH + 1, 0, 0, err, sizeof err), CL_EUSAGE);
}

int main(void)
{
	RUN(t_rows);
	RUN(t_resume_equals_one_run);
	RUN(t_last_activity_across_resume);
	RUN(t_impossible_events);
	RUN(t_epoch_and_rebuild);
	RUN(t_altered_and_ahead);
	RUN(t_no_log);
	return harness_done();
}
