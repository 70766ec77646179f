/*
 * sql_sqlite.c - the SQLite backend of changelog-replay (the embedded
 * default). It owns one connection and one prepared statement per rp_stmt;
 * each exec binds and steps at once inside the batch's transaction.
 *
 * Settings: WAL, so the PHP dashboard reads while a batch
 * is written; synchronous=NORMAL, which in WAL mode keeps every committed
 * batch across a crash of the process (kill -9) and can lose only the last
 * batches on power loss, which the next run replays; a 64 MiB page cache;
 * a checkpoint every 10000 WAL pages (~40 MiB) rather than 1000, so the
 * entry and index pages a replay rewrites in every batch are copied back
 * into the database less often.
 * Upserts use ON CONFLICT(pk) DO UPDATE, so a row put twice is one row.
 *
 * Strings are bound SQLITE_STATIC: the step happens inside exec, while the
 * caller's buffer is alive, and every parameter is rebound before the next
 * step.
 */
#include "replay.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/event.h"

struct sqlite_be {
	struct replay_backend base;
	sqlite3 *db;
	sqlite3_stmt *st[RP_S__COUNT];
	sqlite3_stmt *q_user, *q_entry, *q_comment, *q_lastc;
	int in_txn;
};

static int fail(struct sqlite_be *s, const char *what)
{
	snprintf(s->base.err, sizeof s->base.err, "sqlite: %s: %s", what, sqlite3_errmsg(s->db));
	return CL_EIO;
}

/* A statement's text is at most this long (the widest upsert is ~600). */
#define SQL_MAX 2048

static const char *sql_type(int t)
{
	switch (t) {
	case RP_INT:       return "INTEGER NOT NULL";
	case RP_INT_NULL:  return "INTEGER";
	case RP_TIME_NULL: return "TEXT";
	default:           return "TEXT NOT NULL";
	}
}

static int sqlite_columns(struct replay_backend *b, const char *table, char *buf, size_t cap,
			  unsigned *n)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	sqlite3_stmt *q = NULL;
	struct rp_sb sb;
	char sql[256];
	int rc;

	*n = 0;
	rp_sb_init(&sb, buf, cap);
	snprintf(sql, sizeof sql, "PRAGMA main.table_info(\"%s\")", table);
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		return fail(s, "reading the schema");
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(q, 1);

		rp_sb_add(&sb, "%s%s", *n ? "," : "", name ? name : "");
		(*n)++;
	}
	sqlite3_finalize(q);
	if (rc != SQLITE_DONE)
		return fail(s, "reading the schema");
	return 0;
}

static int sqlite_has_rows(struct replay_backend *b, const char *table, int *yes)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	sqlite3_stmt *q = NULL;
	char sql[256];
	int rc;

	snprintf(sql, sizeof sql, "SELECT 1 FROM \"%s\" LIMIT 1", table);
	if (sqlite3_prepare_v2(s->db, sql, -1, &q, NULL) != SQLITE_OK)
		return fail(s, table);
	rc = sqlite3_step(q);
	sqlite3_finalize(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return fail(s, table);
	*yes = rc == SQLITE_ROW;
	return 0;
}

static int exec_sql(struct sqlite_be *s, const char *sql)
{
	char *msg = NULL;

	if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		snprintf(s->base.err, sizeof s->base.err, "sqlite: %.200s: %s", sql,
			 msg ? msg : sqlite3_errmsg(s->db));
		sqlite3_free(msg);
		return CL_EIO;
	}
	return 0;
}

static int sqlite_create(struct replay_backend *b, const struct rp_table *t)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	char sql[SQL_MAX];
	struct rp_sb sb;
	unsigned i;
	int rc;

	rp_sb_init(&sb, sql, sizeof sql);
	rp_sb_add(&sb, "CREATE TABLE IF NOT EXISTS \"%s\" (", t->name);
	for (i = 0; i < t->ncols; i++)
		rp_sb_add(&sb, "%s%s %s%s", i ? ", " : "", t->cols[i].name,
			  sql_type(t->cols[i].type), i ? "" : " PRIMARY KEY");
	rp_sb_add(&sb, ")");
	if (!sb.ok)
		return CL_EINVAL;
	if ((rc = exec_sql(s, sql)))
		return rc;
	for (i = 0; t->indexes && t->indexes[i]; i++) {
		const char *ix = t->indexes[i], *paren = strchr(ix, '(');

		if (!paren)
			return CL_EINVAL;
		snprintf(sql, sizeof sql, "CREATE INDEX IF NOT EXISTS %s_%.*s ON \"%s\"%s", t->name,
			 (int)(paren - ix), ix, t->name, paren);
		if ((rc = exec_sql(s, sql)))
			return rc;
	}
	return 0;
}

static void finalize_all(struct sqlite_be *s);

static int sqlite_drop(struct replay_backend *b, const char *table)
{
	char sql[256];

	finalize_all((struct sqlite_be *)b);   /* they may name the table */
	snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS \"%s\"", table);
	return exec_sql((struct sqlite_be *)b, sql);
}

static void finalize_all(struct sqlite_be *s)
{
	unsigned i;

	for (i = 0; i < RP_S__COUNT; i++) {
		sqlite3_finalize(s->st[i]);
		s->st[i] = NULL;
	}
	sqlite3_finalize(s->q_user);
	sqlite3_finalize(s->q_entry);
	sqlite3_finalize(s->q_comment);
	sqlite3_finalize(s->q_lastc);
	s->q_user = s->q_entry = s->q_comment = s->q_lastc = NULL;
}

static int prep(struct sqlite_be *s, const char *sql, sqlite3_stmt **out)
{
	if (sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, out, NULL) != SQLITE_OK)
		return fail(s, "preparing a statement");
	return 0;
}

/* Prepared after the schema is in place (preparing needs the tables). */
static int prepare_all(struct sqlite_be *s)
{
	char sql[SQL_MAX];
	unsigned t, i;
	int rc;

	for (t = 0; t < RP_T__COUNT; t++) {
		const struct rp_table *tb = &rp_tables[t];
		struct rp_sb sb;

		rp_sb_init(&sb, sql, sizeof sql);
		rp_sb_add(&sb, "INSERT INTO \"%s\" (", tb->name);
		for (i = 0; i < tb->ncols; i++)
			rp_sb_add(&sb, "%s%s", i ? ", " : "", tb->cols[i].name);
		rp_sb_add(&sb, ") VALUES (");
		for (i = 0; i < tb->ncols; i++)
			rp_sb_add(&sb, "%s", i ? ", ?" : "?");
		rp_sb_add(&sb, ") ON CONFLICT(%s) DO UPDATE SET ", tb->cols[0].name);
		for (i = 1; i < tb->ncols; i++)
			rp_sb_add(&sb, "%s%s = excluded.%s", i > 1 ? ", " : "", tb->cols[i].name,
				  tb->cols[i].name);
		if (!sb.ok)
			return CL_EINVAL;
		if ((rc = prep(s, sql, &s->st[RP_S_PUT + t])))
			return rc;
	}
	if ((rc = prep(s, "UPDATE users SET role = ? WHERE id = ?", &s->st[RP_S_USER_ROLE])) ||
	    (rc = prep(s, "UPDATE tokens SET revoked = 1, revoked_at = ? WHERE id = ?",
		       &s->st[RP_S_TOKEN_REVOKE])) ||
	    (rc = prep(s, "UPDATE entries SET title = coalesce(?, title), body = coalesce(?, body), "
			  "kind = ?, status = ?, updated = ?, updated_us = ?, version = ?, "
			  "comment_count = ?, last_activity = ?, last_activity_us = ? WHERE id = ?",
		       &s->st[RP_S_ENTRY_UPD])) ||
	    (rc = prep(s, "UPDATE entries SET comment_count = ?, last_activity = ?, "
			  "last_activity_us = ? WHERE id = ?", &s->st[RP_S_ENTRY_ACT])) ||
	    (rc = prep(s, "UPDATE comments SET body = ?, edited = ? WHERE id = ?",
		       &s->st[RP_S_COMMENT_EDIT])) ||
	    (rc = prep(s, "UPDATE comments SET body = '', deleted = 1 WHERE id = ?",
		       &s->st[RP_S_COMMENT_DEL])) ||
	    (rc = prep(s, "SELECT name FROM users WHERE id = ?", &s->q_user)) ||
	    (rc = prep(s, "SELECT author_id, kind, status, created_us, updated_us, "
			  "last_activity_us, version, comment_count FROM entries WHERE id = ?",
		       &s->q_entry)) ||
	    (rc = prep(s, "SELECT entry_id, depth, path FROM comments WHERE id = ?", &s->q_comment)) ||
	    (rc = prep(s, "SELECT created_us FROM comments WHERE entry_id = ?1 AND id = "
			  "(SELECT max(id) FROM comments WHERE entry_id = ?1)", &s->q_lastc)))
		return rc;
	return 0;
}

static int sqlite_state_get(struct replay_backend *b, struct rp_state *st)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	sqlite3_stmt *q = NULL;
	int rc, ret = 0;

	memset(st, 0, sizeof *st);
	if (!s->st[0] && (ret = prepare_all(s)))
		return ret;
	if (sqlite3_prepare_v2(s->db, "SELECT epoch, last_seq FROM replay_state WHERE id = 1", -1,
			       &q, NULL) != SQLITE_OK)
		return fail(s, "reading replay_state");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const char *ep = (const char *)sqlite3_column_text(q, 0);

		st->present = 1;
		snprintf(st->epoch, sizeof st->epoch, "%s", ep ? ep : "");
		st->last_seq = (uint64_t)sqlite3_column_int64(q, 1);
	} else if (rc != SQLITE_DONE) {
		ret = fail(s, "reading replay_state");
	}
	sqlite3_finalize(q);
	return ret;
}

static int sqlite_begin(struct replay_backend *b)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	int rc;

	/* IMMEDIATE takes the write lock now, so a busy database fails here,
	 * before any work, rather than at the first insert. */
	if ((rc = exec_sql(s, "BEGIN IMMEDIATE")))
		return rc;
	s->in_txn = 1;
	return 0;
}

static int sqlite_exec(struct replay_backend *b, int stmt, const struct rp_val *v, unsigned n)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	sqlite3_stmt *q;
	unsigned i;
	int rc;

	if (stmt < 0 || stmt >= RP_S__COUNT)
		return CL_EINVAL;
	if (!s->st[0] && (rc = prepare_all(s)))
		return rc;
	q = s->st[stmt];
	if ((unsigned)sqlite3_bind_parameter_count(q) != n)
		return CL_EINVAL;
	for (i = 0; i < n; i++) {
		switch (v[i].kind) {
		case RP_V_INT:
			rc = sqlite3_bind_int64(q, (int)i + 1, v[i].i);
			break;
		case RP_V_TEXT:
			rc = sqlite3_bind_text(q, (int)i + 1, v[i].s ? v[i].s : "", (int)v[i].n,
					       SQLITE_STATIC);
			break;
		default:
			rc = sqlite3_bind_null(q, (int)i + 1);
			break;
		}
		if (rc != SQLITE_OK)
			return fail(s, "binding a value");
	}
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	if (rc != SQLITE_DONE)
		return fail(s, "writing a row");
	return 0;
}

static int sqlite_commit(struct replay_backend *b)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	int rc = exec_sql(s, "COMMIT");

	if (!rc)
		s->in_txn = 0;
	return rc;
}

static void sqlite_rollback(struct replay_backend *b)
{
	struct sqlite_be *s = (struct sqlite_be *)b;

	if (s->in_txn && sqlite3_get_autocommit(s->db) == 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	s->in_txn = 0;
}

static int lookup(struct sqlite_be *s, sqlite3_stmt *q, uint64_t id)
{
	int rc;

	sqlite3_reset(q);
	if (sqlite3_bind_int64(q, 1, (int64_t)id) != SQLITE_OK)
		return fail(s, "binding a value");
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		return 1;
	sqlite3_reset(q);
	if (rc == SQLITE_DONE)
		return 0;
	return fail(s, "reading a row");
}

static int sqlite_user_name(struct replay_backend *b, uint64_t id, char *name, size_t cap)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	int rc;

	if (!s->st[0] && (rc = prepare_all(s)))
		return rc;
	if ((rc = lookup(s, s->q_user, id)) <= 0)
		return rc ? rc : CL_ENOTFOUND;
	snprintf(name, cap, "%s", (const char *)sqlite3_column_text(s->q_user, 0));
	sqlite3_reset(s->q_user);
	return 0;
}

static int sqlite_entry_get(struct replay_backend *b, uint64_t id, struct rp_entry_state *out)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	sqlite3_stmt *q;
	const char *kind, *status;
	int rc;

	if (!s->st[0] && (rc = prepare_all(s)))
		return rc;
	q = s->q_entry;
	if ((rc = lookup(s, q, id)) <= 0)
		return rc ? rc : CL_ENOTFOUND;
	kind = (const char *)sqlite3_column_text(q, 1);
	status = (const char *)sqlite3_column_text(q, 2);
	out->author_id = (uint64_t)sqlite3_column_int64(q, 0);
	out->kind = kind ? cl_kind_parse(kind, strlen(kind)) : 0;
	out->status = status ? cl_status_parse(status, strlen(status)) : 0;
	out->created_us = sqlite3_column_int64(q, 3);
	out->updated_us = sqlite3_column_int64(q, 4);
	out->last_activity_us = sqlite3_column_int64(q, 5);
	out->version = (uint64_t)sqlite3_column_int64(q, 6);
	out->comment_count = (uint64_t)sqlite3_column_int64(q, 7);
	sqlite3_reset(q);
	out->last_comment_us = 0;
	if ((rc = lookup(s, s->q_lastc, id)) < 0)
		return rc;
	if (rc) {
		out->last_comment_us = sqlite3_column_int64(s->q_lastc, 0);
		sqlite3_reset(s->q_lastc);
	}
	return 0;
}

static int sqlite_comment_get(struct replay_backend *b, uint64_t id, struct rp_comment_state *out)
{
	struct sqlite_be *s = (struct sqlite_be *)b;
	sqlite3_stmt *q;
	const char *path;
	int rc;

	if (!s->st[0] && (rc = prepare_all(s)))
		return rc;
	q = s->q_comment;
	if ((rc = lookup(s, q, id)) <= 0)
		return rc ? rc : CL_ENOTFOUND;
	out->entry_id = (uint64_t)sqlite3_column_int64(q, 0);
	out->depth = (uint64_t)sqlite3_column_int64(q, 1);
	path = (const char *)sqlite3_column_text(q, 2);
	snprintf(out->path, sizeof out->path, "%s", path ? path : "");
	sqlite3_reset(q);
	return 0;
}

static void sqlite_close(struct replay_backend *b)
{
	struct sqlite_be *s = (struct sqlite_be *)b;

	if (!s)
		return;
	sqlite_rollback(b);
	finalize_all(s);
	sqlite3_close(s->db);
	free(s);
}

static const struct replay_backend_ops sqlite_ops = {
	.name = "sqlite",
	.columns = sqlite_columns,
	.has_rows = sqlite_has_rows,
	.create = sqlite_create,
	.drop = sqlite_drop,
	.state_get = sqlite_state_get,
	.begin = sqlite_begin,
	.exec = sqlite_exec,
	.commit = sqlite_commit,
	.rollback = sqlite_rollback,
	.user_name = sqlite_user_name,
	.entry_get = sqlite_entry_get,
	.comment_get = sqlite_comment_get,
	.close = sqlite_close,
};

int replay_sqlite_open(struct replay_backend **out, const char *path, char *err, size_t errlen)
{
	struct sqlite_be *s;
	int rc;

	*out = NULL;
	if (!(s = calloc(1, sizeof *s))) {
		snprintf(err, errlen, "out of memory");
		return CL_ENOMEM;
	}
	s->base.ops = &sqlite_ops;
	/* NOMUTEX: only the driver's writing thread uses the connection (the
	 * reader thread never touches SQL), so SQLite need not lock it on
	 * every bind, step and reset. */
	rc = sqlite3_open_v2(path, &s->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "cannot open SQLite database %s: %s", path,
			 s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		goto fail;
	}
	if (sqlite3_db_readonly(s->db, "main") == 1) {
		snprintf(err, errlen, "SQLite database %s is read-only", path);
		goto fail;
	}
	sqlite3_busy_timeout(s->db, 5000);
	/* journal_mode returns a row; exec ignores it. A file that is not a
	 * database fails here ("file is not a database"). */
	if (exec_sql(s, "PRAGMA journal_mode = WAL") ||
	    exec_sql(s, "PRAGMA synchronous = NORMAL") ||
	    exec_sql(s, "PRAGMA cache_size = -65536") ||
	    exec_sql(s, "PRAGMA wal_autocheckpoint = 10000")) {
		snprintf(err, errlen, "cannot use SQLite database %s: %s", path, s->base.err);
		goto fail;
	}
	*out = &s->base;
	return 0;
fail:
	sqlite3_close(s->db);
	free(s);
	return CL_EIO;
}
