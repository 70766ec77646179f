/*
 * sql_mysql.c - the MySQL/MariaDB backend of changelog-replay (libmariadb,
 * Connector/C). It owns one connection (autocommit off, utf8mb4, strict
 * sql_mode) and a queue per rp_stmt.
 *
 * Why queues: a round trip per row caps a remote database at ~20 k rows/s,
 * so exec only appends the row to its statement's
 * column-wise arrays (strings copied into an arena), and the queues are sent
 * when one fills and at commit, in rp_stmt order (every put before every
 * update; replay.h says why that order is always valid). Sending uses
 *   - array binding (STMT_ATTR_ARRAY_SIZE, one COM_STMT_BULK_EXECUTE for the
 *     whole queue) on MariaDB >= 10.2, ~250 k rows/s;
 *   - otherwise (MySQL servers, or cfg.no_bulk) one multi-row text
 *     INSERT ... ON DUPLICATE KEY UPDATE per queue of puts, and the prepared
 *     update once per row (updates are few: one per touched entry per batch).
 * Column-wise string binding takes an array of pointers (char **), never a
 * 2-D char array: libmariadb reads each row's value through a pointer.
 *
 * Tables are InnoDB, utf8mb4 with binary collation (the same byte order and
 * equality as the server's projections); paths are ASCII.
 */
#include "replay.h"

#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../core/event.h"

#define MQ_MAX_ROWS 2000          /* rows queued per statement before sending */
#define TEXT_STMT_MAX (4u << 20)  /* one multi-row INSERT (max_allowed_packet is 16 MiB) */
#define ARENA_CHUNK (1u << 20)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, cap;
	char data[];
};

/* One statement and its queued rows, column-wise. */
struct mq {
	MYSQL_STMT *st;
	unsigned np;
	unsigned char is_int[RP_MAX_COLUMNS];
	size_t n, cap;
	long long *iv[RP_MAX_COLUMNS];
	char **sp[RP_MAX_COLUMNS];
	unsigned long *sl[RP_MAX_COLUMNS];
	char *ind[RP_MAX_COLUMNS];
};

struct mysql_be {
	struct replay_backend base;
	MYSQL *db;
	int bulk;
	int prepared;
	struct mq q[RP_S__COUNT];
	struct arena_chunk *arena;
};

static int fail_db(struct mysql_be *m, const char *what)
{
	snprintf(m->base.err, sizeof m->base.err, "mysql: %s: %s (error %u)", what,
		 mysql_error(m->db), mysql_errno(m->db));
	return CL_EIO;
}

static int fail_st(struct mysql_be *m, MYSQL_STMT *st, const char *what)
{
	snprintf(m->base.err, sizeof m->base.err, "mysql: %s: %s (error %u)", what,
		 mysql_stmt_error(st), mysql_stmt_errno(st));
	return CL_EIO;
}

static int query(struct mysql_be *m, const char *sql)
{
	if (mysql_real_query(m->db, sql, strlen(sql))) {
		snprintf(m->base.err, sizeof m->base.err, "mysql: %.160s: %s (error %u)", sql,
			 mysql_error(m->db), mysql_errno(m->db));
		return CL_EIO;
	}
	return 0;
}

/* ---- arena ------------------------------------------------------------------ */

static char *arena_copy(struct mysql_be *m, const char *s, size_t n)
{
	struct arena_chunk *c = m->arena;
	char *p;

	if (!c || c->cap - c->used < n + 1) {
		size_t cap = n + 1 > ARENA_CHUNK ? n + 1 : ARENA_CHUNK;

		if (!(c = malloc(sizeof *c + cap)))
			return NULL;
		c->cap = cap;
		c->used = 0;
		c->next = m->arena;
		m->arena = c;
	}
	p = c->data + c->used;
	if (n)
		memcpy(p, s, n);
	p[n] = 0;
	c->used += n + 1;
	return p;
}

/* Keep the newest chunk for reuse, free the rest. */
static void arena_reset(struct mysql_be *m)
{
	struct arena_chunk *c = m->arena, *next;

	if (!c)
		return;
	next = c->next;
	c->next = NULL;
	c->used = 0;
	while (next) {
		struct arena_chunk *n2 = next->next;

		free(next);
		next = n2;
	}
}

static void arena_free(struct mysql_be *m)
{
	arena_reset(m);
	free(m->arena);
	m->arena = NULL;
}

/* ---- schema ------------------------------------------------------------------ */

static const char *my_type(int t)
{
	switch (t) {
	case RP_INT:       return "BIGINT NOT NULL";
	case RP_INT_NULL:  return "BIGINT NULL";
	case RP_NAME:      return "VARCHAR(255) NOT NULL";
	case RP_TIME:      return "VARCHAR(32) NOT NULL";
	case RP_TIME_NULL: return "VARCHAR(32) NULL";
	case RP_TITLE:     return "VARCHAR(300) NOT NULL";
	case RP_PATH:      return "VARCHAR(400) CHARACTER SET ascii COLLATE ascii_bin NOT NULL";
	default:           return "MEDIUMTEXT NOT NULL";
	}
}

static int my_columns(struct replay_backend *b, const char *table, char *buf, size_t cap,
		      unsigned *n)
{
	struct mysql_be *m = (struct mysql_be *)b;
	struct rp_sb sb;
	char sql[512];
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc;

	*n = 0;
	rp_sb_init(&sb, buf, cap);
	snprintf(sql, sizeof sql,
		 "SELECT column_name FROM information_schema.columns WHERE "
		 "table_schema = DATABASE() AND table_name = '%s' ORDER BY ordinal_position", table);
	if ((rc = query(m, sql)))
		return rc;
	if (!(res = mysql_store_result(m->db)))
		return fail_db(m, "reading the schema");
	while ((row = mysql_fetch_row(res))) {
		rp_sb_add(&sb, "%s%s", *n ? "," : "", row[0] ? row[0] : "");
		(*n)++;
	}
	mysql_free_result(res);
	return 0;
}

static int my_has_rows(struct replay_backend *b, const char *table, int *yes)
{
	struct mysql_be *m = (struct mysql_be *)b;
	char sql[256];
	MYSQL_RES *res;
	int rc;

	snprintf(sql, sizeof sql, "SELECT 1 FROM `%s` LIMIT 1", table);
	if ((rc = query(m, sql)))
		return rc;
	if (!(res = mysql_store_result(m->db)))
		return fail_db(m, table);
	*yes = mysql_num_rows(res) > 0;
	mysql_free_result(res);
	return 0;
}

static int my_create(struct replay_backend *b, const struct rp_table *t)
{
	struct mysql_be *m = (struct mysql_be *)b;
	char sql[4096];
	struct rp_sb sb;
	unsigned i;

	rp_sb_init(&sb, sql, sizeof sql);
	rp_sb_add(&sb, "CREATE TABLE IF NOT EXISTS `%s` (", t->name);
	for (i = 0; i < t->ncols; i++)
		rp_sb_add(&sb, "%s`%s` %s", i ? ", " : "", t->cols[i].name, my_type(t->cols[i].type));
	rp_sb_add(&sb, ", PRIMARY KEY (`%s`)", t->cols[0].name);
	for (i = 0; t->indexes && t->indexes[i]; i++) {
		const char *ix = t->indexes[i], *paren = strchr(ix, '(');

		if (!paren)
			return CL_EINVAL;
		rp_sb_add(&sb, ", INDEX %s_%.*s %s", t->name, (int)(paren - ix), ix, paren);
	}
	rp_sb_add(&sb, ") ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin");
	if (!sb.ok)
		return CL_EINVAL;
	return query(m, sql);
}

static void stmts_close(struct mysql_be *m);

static int my_drop(struct replay_backend *b, const char *table)
{
	struct mysql_be *m = (struct mysql_be *)b;
	char sql[256];

	stmts_close(m);
	snprintf(sql, sizeof sql, "DROP TABLE IF EXISTS `%s`", table);
	return query(m, sql);
}

/* ---- statements and queues --------------------------------------------------- */

/* The updates, in rp_stmt order from RP_S_USER_ROLE: SQL, params, which are ints. */
#define NUPD (RP_S__COUNT - RP_S_USER_ROLE)
static const struct {
	const char *sql;
	unsigned np;
	unsigned char is_int[RP_UPD_MAX_PARAMS];
} upd[NUPD] = {
	{ "UPDATE users SET role = ? WHERE id = ?", 2, { 0, 1 } },
	{ "UPDATE tokens SET revoked = 1, revoked_at = ? WHERE id = ?", 2, { 0, 1 } },
	{ "UPDATE entries SET title = COALESCE(?, title), body = COALESCE(?, body), "
	  "kind = ?, status = ?, updated = ?, updated_us = ?, version = ?, "
	  "comment_count = ?, last_activity = ?, last_activity_us = ? WHERE id = ?",
	  11, { 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 1 } },
	{ "UPDATE entries SET comment_count = ?, last_activity = ?, last_activity_us = ? "
	  "WHERE id = ?", 4, { 1, 0, 1, 1 } },
	{ "UPDATE comments SET body = ?, edited = ? WHERE id = ?", 3, { 0, 0, 1 } },
	{ "UPDATE comments SET body = '', deleted = 1 WHERE id = ?", 1, { 1 } },
};

static void mq_release(struct mq *q)
{
	unsigned i;

	if (q->st)
		mysql_stmt_close(q->st);
	for (i = 0; i < RP_MAX_COLUMNS; i++) {
		free(q->iv[i]);
		free(q->sp[i]);
		free(q->sl[i]);
		free(q->ind[i]);
	}
	memset(q, 0, sizeof *q);
}

static void stmts_close(struct mysql_be *m)
{
	unsigned i;

	for (i = 0; i < RP_S__COUNT; i++)
		mq_release(&m->q[i]);
	m->prepared = 0;
}

static int put_sql(const struct rp_table *t, char *sql, size_t cap)
{
	struct rp_sb sb;
	unsigned i;

	rp_sb_init(&sb, sql, cap);
	rp_sb_add(&sb, "INSERT INTO `%s` (", t->name);
	for (i = 0; i < t->ncols; i++)
		rp_sb_add(&sb, "%s`%s`", i ? ", " : "", t->cols[i].name);
	rp_sb_add(&sb, ") VALUES (");
	for (i = 0; i < t->ncols; i++)
		rp_sb_add(&sb, "%s", i ? ", ?" : "?");
	rp_sb_add(&sb, ") ON DUPLICATE KEY UPDATE ");
	for (i = 1; i < t->ncols; i++)
		rp_sb_add(&sb, "%s`%s` = VALUES(`%s`)", i > 1 ? ", " : "", t->cols[i].name,
			  t->cols[i].name);
	return sb.ok ? 0 : CL_EINVAL;
}

static int prepare_all(struct mysql_be *m)
{
	char sql[4096];
	unsigned s, i;
	int rc;

	for (s = 0; s < RP_S__COUNT; s++) {
		struct mq *q = &m->q[s];

		if (s < RP_S_USER_ROLE) {
			const struct rp_table *t = &rp_tables[s - RP_S_PUT];

			if ((rc = put_sql(t, sql, sizeof sql)))
				return rc;
			q->np = t->ncols;
			for (i = 0; i < t->ncols; i++)
				q->is_int[i] = t->cols[i].type == RP_INT || t->cols[i].type == RP_INT_NULL;
		} else {
			unsigned u = s - RP_S_USER_ROLE;

			snprintf(sql, sizeof sql, "%s", upd[u].sql);
			q->np = upd[u].np;
			memcpy(q->is_int, upd[u].is_int, RP_UPD_MAX_PARAMS);
		}
		if (!(q->st = mysql_stmt_init(m->db)))
			return fail_db(m, "preparing a statement");
		if (mysql_stmt_prepare(q->st, sql, strlen(sql)))
			return fail_st(m, q->st, "preparing a statement");
		if (mysql_stmt_param_count(q->st) != q->np) {
			snprintf(m->base.err, sizeof m->base.err, "mysql: statement has %lu params, not %u",
				 mysql_stmt_param_count(q->st), q->np);
			return CL_EINVAL;
		}
	}
	m->prepared = 1;
	return 0;
}

static int mq_grow(struct mq *q)
{
	size_t cap = q->cap ? q->cap * 2 : 64;
	unsigned i;

	if (cap > MQ_MAX_ROWS)
		cap = MQ_MAX_ROWS;
	for (i = 0; i < q->np; i++) {
		void *p;

		if (!(p = realloc(q->ind[i], cap * sizeof *q->ind[i])))
			return CL_ENOMEM;
		q->ind[i] = p;
		if (q->is_int[i]) {
			if (!(p = realloc(q->iv[i], cap * sizeof *q->iv[i])))
				return CL_ENOMEM;
			q->iv[i] = p;
		} else {
			if (!(p = realloc(q->sp[i], cap * sizeof *q->sp[i])))
				return CL_ENOMEM;
			q->sp[i] = p;
			if (!(p = realloc(q->sl[i], cap * sizeof *q->sl[i])))
				return CL_ENOMEM;
			q->sl[i] = p;
		}
	}
	q->cap = cap;
	return 0;
}

/* Send one queue with array binding: one round trip for all its rows. */
static int mq_send_bulk(struct mysql_be *m, struct mq *q)
{
	MYSQL_BIND bind[RP_MAX_COLUMNS];
	unsigned int n = (unsigned int)q->n;
	unsigned i;

	memset(bind, 0, sizeof bind);
	for (i = 0; i < q->np; i++) {
		bind[i].u.indicator = q->ind[i];
		if (q->is_int[i]) {
			bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
			bind[i].buffer = q->iv[i];
		} else {
			bind[i].buffer_type = MYSQL_TYPE_STRING;
			bind[i].buffer = q->sp[i];   /* array of char *, one per row */
			bind[i].length = q->sl[i];
		}
	}
	if (mysql_stmt_attr_set(q->st, STMT_ATTR_ARRAY_SIZE, &n) ||
	    mysql_stmt_bind_param(q->st, bind) || mysql_stmt_execute(q->st))
		return fail_st(m, q->st, "writing rows");
	return 0;
}

/* Without array binding: the prepared statement once per row. */
static int mq_send_rows(struct mysql_be *m, struct mq *q)
{
	MYSQL_BIND bind[RP_MAX_COLUMNS];
	my_bool yes = 1, no = 0;
	size_t r;
	unsigned i;

	for (r = 0; r < q->n; r++) {
		memset(bind, 0, sizeof bind);
		for (i = 0; i < q->np; i++) {
			bind[i].is_null = q->ind[i][r] == STMT_INDICATOR_NULL ? &yes : &no;
			if (q->is_int[i]) {
				bind[i].buffer_type = MYSQL_TYPE_LONGLONG;
				bind[i].buffer = &q->iv[i][r];
			} else {
				bind[i].buffer_type = MYSQL_TYPE_STRING;
				bind[i].buffer = q->sp[i][r];
				bind[i].buffer_length = q->sl[i][r];
				bind[i].length = &q->sl[i][r];
			}
		}
		if (mysql_stmt_bind_param(q->st, bind) || mysql_stmt_execute(q->st))
			return fail_st(m, q->st, "writing a row");
	}
	return 0;
}

struct dbuf {
	char *p;
	size_t len, cap;
};

static int dbuf_reserve(struct dbuf *d, size_t more)
{
	if (d->cap - d->len > more)
		return 0;
	{
		size_t cap = d->cap ? d->cap : 65536;
		char *p;

		while (cap - d->len <= more)
			cap *= 2;
		if (!(p = realloc(d->p, cap)))
			return CL_ENOMEM;
		d->p = p;
		d->cap = cap;
	}
	return 0;
}

static int dbuf_add(struct dbuf *d, const char *s, size_t n)
{
	if (dbuf_reserve(d, n))
		return CL_ENOMEM;
	memcpy(d->p + d->len, s, n);
	d->len += n;
	d->p[d->len] = 0;
	return 0;
}

/* Without array binding, puts: multi-row INSERT ... ON DUPLICATE KEY UPDATE,
 * split so one statement stays well under max_allowed_packet. */
static int mq_send_text(struct mysql_be *m, struct mq *q, const struct rp_table *t)
{
	char head[4096], *tail;
	struct dbuf d = { 0 };
	size_t r = 0, headlen, taillen;
	int rc = 0;

	if ((rc = put_sql(t, head, sizeof head)))
		return rc;
	/* split the prepared text at "(?, ...)" into head and the ON DUPLICATE tail */
	if (!(tail = strstr(head, " ON DUPLICATE")))
		return CL_EINVAL;
	taillen = strlen(tail);
	headlen = (size_t)(strstr(head, "VALUES (") - head) + 7;
	while (r < q->n && !rc) {
		size_t first = r;

		d.len = 0;
		if ((rc = dbuf_add(&d, head, headlen)))
			break;
		for (; r < q->n && (r == first || d.len < TEXT_STMT_MAX); r++) {
			unsigned i;

			if ((rc = dbuf_add(&d, r == first ? "(" : ",(", r == first ? 1 : 2)))
				break;
			for (i = 0; i < q->np && !rc; i++) {
				char num[32];

				if (i && (rc = dbuf_add(&d, ",", 1)))
					break;
				if (q->ind[i][r] == STMT_INDICATOR_NULL) {
					rc = dbuf_add(&d, "NULL", 4);
				} else if (q->is_int[i]) {
					int k = snprintf(num, sizeof num, "%lld", q->iv[i][r]);

					rc = dbuf_add(&d, num, (size_t)k);
				} else {
					size_t sl = q->sl[i][r];

					if ((rc = dbuf_reserve(&d, 2 * sl + 3)))
						break;
					d.p[d.len++] = '\'';
					d.len += mysql_real_escape_string(m->db, d.p + d.len, q->sp[i][r],
									  sl);
					d.p[d.len++] = '\'';
					d.p[d.len] = 0;
				}
			}
			if (!rc)
				rc = dbuf_add(&d, ")", 1);
			if (rc)
				break;
		}
		if (!rc && !(rc = dbuf_add(&d, tail, taillen)) &&
		    mysql_real_query(m->db, d.p, d.len))
			rc = fail_db(m, "writing rows");
	}
	free(d.p);
	return rc;
}

static int flush_all(struct mysql_be *m)
{
	unsigned s;
	int rc = 0;

	for (s = 0; s < RP_S__COUNT && !rc; s++) {
		struct mq *q = &m->q[s];

		if (!q->n)
			continue;
		if (m->bulk)
			rc = mq_send_bulk(m, q);
		else if (s < RP_S_USER_ROLE)
			rc = mq_send_text(m, q, &rp_tables[s - RP_S_PUT]);
		else
			rc = mq_send_rows(m, q);
	}
	for (s = 0; s < RP_S__COUNT; s++)
		m->q[s].n = 0;
	arena_reset(m);
	return rc;
}

static int my_exec(struct replay_backend *b, int stmt, const struct rp_val *v, unsigned n)
{
	struct mysql_be *m = (struct mysql_be *)b;
	struct mq *q;
	size_t r;
	unsigned i;
	int rc;

	if (stmt < 0 || stmt >= RP_S__COUNT)
		return CL_EINVAL;
	if (!m->prepared && (rc = prepare_all(m)))
		return rc;
	q = &m->q[stmt];
	if (n != q->np)
		return CL_EINVAL;
	if (q->n == MQ_MAX_ROWS && (rc = flush_all(m)))
		return rc;
	if (q->n == q->cap && (rc = mq_grow(q)))
		return rc;
	r = q->n;
	for (i = 0; i < n; i++) {
		q->ind[i][r] = STMT_INDICATOR_NONE;
		if (v[i].kind == RP_V_NULL) {
			q->ind[i][r] = STMT_INDICATOR_NULL;
			if (q->is_int[i])
				q->iv[i][r] = 0;
			else {
				q->sp[i][r] = NULL;
				q->sl[i][r] = 0;
			}
		} else if (q->is_int[i]) {
			if (v[i].kind != RP_V_INT)
				return CL_EINVAL;
			q->iv[i][r] = v[i].i;
		} else {
			if (v[i].kind != RP_V_TEXT)
				return CL_EINVAL;
			if (!(q->sp[i][r] = arena_copy(m, v[i].s, v[i].n)))
				return CL_ENOMEM;
			q->sl[i][r] = (unsigned long)v[i].n;
		}
	}
	q->n++;
	return 0;
}

static int my_begin(struct replay_backend *b)
{
	struct mysql_be *m = (struct mysql_be *)b;
	int rc;

	if (!m->prepared && (rc = prepare_all(m)))
		return rc;
	return query(m, "START TRANSACTION");
}

static int my_commit(struct replay_backend *b)
{
	struct mysql_be *m = (struct mysql_be *)b;
	int rc;

	if ((rc = flush_all(m)))
		return rc;
	if (mysql_commit(m->db))
		return fail_db(m, "commit");
	return 0;
}

static void my_rollback(struct replay_backend *b)
{
	struct mysql_be *m = (struct mysql_be *)b;
	unsigned s;

	for (s = 0; s < RP_S__COUNT; s++)
		m->q[s].n = 0;
	arena_reset(m);
	mysql_rollback(m->db);
}

static int my_state_get(struct replay_backend *b, struct rp_state *st)
{
	struct mysql_be *m = (struct mysql_be *)b;
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc;

	memset(st, 0, sizeof *st);
	if ((rc = query(m, "SELECT epoch, last_seq FROM replay_state WHERE id = 1")))
		return rc;
	if (!(res = mysql_store_result(m->db)))
		return fail_db(m, "reading replay_state");
	if ((row = mysql_fetch_row(res))) {
		st->present = 1;
		snprintf(st->epoch, sizeof st->epoch, "%s", row[0] ? row[0] : "");
		st->last_seq = row[1] ? strtoull(row[1], NULL, 10) : 0;
	}
	mysql_free_result(res);
	/* end the read snapshot the SELECT opened (autocommit is off) */
	mysql_rollback(m->db);
	return 0;
}

/* One row of a lookup by id, as text; 1 found (caller frees *res), 0 not. */
static int lookup(struct mysql_be *m, const char *sql, MYSQL_RES **res, MYSQL_ROW *row)
{
	int rc;

	if ((rc = query(m, sql)))
		return rc;
	if (!(*res = mysql_store_result(m->db)))
		return fail_db(m, "reading a row");
	if (!(*row = mysql_fetch_row(*res))) {
		mysql_free_result(*res);
		return 0;
	}
	return 1;
}

static int my_user_name(struct replay_backend *b, uint64_t id, char *name, size_t cap)
{
	struct mysql_be *m = (struct mysql_be *)b;
	char sql[128];
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc;

	snprintf(sql, sizeof sql, "SELECT name FROM users WHERE id = %llu", (unsigned long long)id);
	if ((rc = lookup(m, sql, &res, &row)) <= 0)
		return rc ? rc : CL_ENOTFOUND;
	snprintf(name, cap, "%s", row[0] ? row[0] : "");
	mysql_free_result(res);
	return 0;
}

static int64_t num(const char *s)
{
	return s ? strtoll(s, NULL, 10) : 0;
}

static int my_entry_get(struct replay_backend *b, uint64_t id, struct rp_entry_state *out)
{
	struct mysql_be *m = (struct mysql_be *)b;
	char sql[256];
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc;

	snprintf(sql, sizeof sql,
		 "SELECT author_id, kind, status, created_us, updated_us, last_activity_us, "
		 "version, comment_count FROM entries WHERE id = %llu", (unsigned long long)id);
	if ((rc = lookup(m, sql, &res, &row)) <= 0)
		return rc ? rc : CL_ENOTFOUND;
	out->author_id = (uint64_t)num(row[0]);
	out->kind = row[1] ? cl_kind_parse(row[1], strlen(row[1])) : 0;
	out->status = row[2] ? cl_status_parse(row[2], strlen(row[2])) : 0;
	out->created_us = num(row[3]);
	out->updated_us = num(row[4]);
	out->last_activity_us = num(row[5]);
	out->version = (uint64_t)num(row[6]);
	out->comment_count = (uint64_t)num(row[7]);
	mysql_free_result(res);
	out->last_comment_us = 0;
	snprintf(sql, sizeof sql,
		 "SELECT created_us FROM comments WHERE entry_id = %llu AND id = "
		 "(SELECT max(id) FROM comments WHERE entry_id = %llu)",
		 (unsigned long long)id, (unsigned long long)id);
	if ((rc = lookup(m, sql, &res, &row)) < 0)
		return rc;
	if (rc) {
		out->last_comment_us = num(row[0]);
		mysql_free_result(res);
	}
	return 0;
}

static int my_comment_get(struct replay_backend *b, uint64_t id, struct rp_comment_state *out)
{
	struct mysql_be *m = (struct mysql_be *)b;
	char sql[256];
	MYSQL_RES *res;
	MYSQL_ROW row;
	int rc;

	snprintf(sql, sizeof sql, "SELECT entry_id, depth, path FROM comments WHERE id = %llu",
		 (unsigned long long)id);
	if ((rc = lookup(m, sql, &res, &row)) <= 0)
		return rc ? rc : CL_ENOTFOUND;
	out->entry_id = (uint64_t)num(row[0]);
	out->depth = (uint64_t)num(row[1]);
	snprintf(out->path, sizeof out->path, "%s", row[2] ? row[2] : "");
	mysql_free_result(res);
	return 0;
}

static void my_close(struct replay_backend *b)
{
	struct mysql_be *m = (struct mysql_be *)b;

	if (!m)
		return;
	stmts_close(m);
	arena_free(m);
	if (m->db) {
		mysql_rollback(m->db);
		mysql_close(m->db);
	}
	free(m);
}

static const struct replay_backend_ops mysql_ops = {
	.name = "mysql",
	.columns = my_columns,
	.has_rows = my_has_rows,
	.create = my_create,
	.drop = my_drop,
	.state_get = my_state_get,
	.begin = my_begin,
	.exec = my_exec,
	.commit = my_commit,
	.rollback = my_rollback,
	.user_name = my_user_name,
	.entry_get = my_entry_get,
	.comment_get = my_comment_get,
	.close = my_close,
};

int replay_mysql_bulk(const struct replay_backend *b)
{
	return b && b->ops == &mysql_ops && ((const struct mysql_be *)b)->bulk;
}

/* ---- URL --------------------------------------------------------------------- */

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Percent-decode s[0..n) into out (cap bytes incl. NUL); -1 if bad or long. */
static int pct_decode(const char *s, size_t n, char *out, size_t cap)
{
	size_t i, o = 0;

	for (i = 0; i < n; i++) {
		int c = (unsigned char)s[i];

		if (c == '%') {
			int h, l;

			if (i + 2 >= n || (h = hexval(s[i + 1])) < 0 || (l = hexval(s[i + 2])) < 0)
				return -1;
			c = h * 16 + l;
			if (c == 0)
				return -1;
			i += 2;
		}
		if (o + 1 >= cap)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = 0;
	return 0;
}

int replay_mysql_parse_url(const char *url, struct replay_mysql_cfg *cfg, char *err, size_t errlen)
{
	static const char scheme[] = "mysql://";
	const char *p, *auth_end, *host_end, *path_end, *colon;
	const char *defaults_file = cfg->defaults_file;
	int no_bulk = cfg->no_bulk;

	memset(cfg, 0, sizeof *cfg);
	cfg->defaults_file = defaults_file;
	cfg->no_bulk = no_bulk;
	if (strncmp(url, scheme, sizeof scheme - 1) != 0) {
		snprintf(err, errlen, "MySQL URL must start with mysql:// (got \"%.60s\")", url);
		return CL_EUSAGE;
	}
	p = url + sizeof scheme - 1;
	host_end = p + strcspn(p, "/?");
	/* user[:password]@ (the last '@' before the path: passwords may hold '@' escaped) */
	auth_end = NULL;
	{
		const char *q;

		for (q = p; q < host_end; q++)
			if (*q == '@')
				auth_end = q;
	}
	if (auth_end) {
		const char *ue = memchr(p, ':', (size_t)(auth_end - p));

		if (pct_decode(p, (size_t)((ue ? ue : auth_end) - p), cfg->user, sizeof cfg->user))
			goto bad;
		if (ue) {
			if (pct_decode(ue + 1, (size_t)(auth_end - ue - 1), cfg->password,
				       sizeof cfg->password))
				goto bad;
			cfg->has_password = 1;
		}
		p = auth_end + 1;
	}
	/* host[:port] */
	colon = memchr(p, ':', (size_t)(host_end - p));
	if (pct_decode(p, (size_t)((colon ? colon : host_end) - p), cfg->host, sizeof cfg->host))
		goto bad;
	if (colon) {
		char port[8];
		char *end;
		unsigned long v;

		if (pct_decode(colon + 1, (size_t)(host_end - colon - 1), port, sizeof port) || !port[0])
			goto bad;
		v = strtoul(port, &end, 10);
		if (*end || v == 0 || v > 65535)
			goto bad;
		cfg->port = (unsigned)v;
	}
	p = host_end;
	if (*p != '/') {
		snprintf(err, errlen, "MySQL URL names no database (mysql://user@host/DB)");
		return CL_EUSAGE;
	}
	p++;
	path_end = p + strcspn(p, "?");
	if (pct_decode(p, (size_t)(path_end - p), cfg->db, sizeof cfg->db) || !cfg->db[0] ||
	    strchr(cfg->db, '/') || strchr(cfg->db, '`')) {
		snprintf(err, errlen, "MySQL URL names no valid database (mysql://user@host/DB)");
		return CL_EUSAGE;
	}
	p = path_end;
	if (*p == '?') {
		p++;
		while (*p) {
			const char *amp = p + strcspn(p, "&"), *eq = memchr(p, '=', (size_t)(amp - p));

			if (!eq)
				goto bad;
			if ((size_t)(eq - p) == 6 && !strncmp(p, "socket", 6)) {
				if (pct_decode(eq + 1, (size_t)(amp - eq - 1), cfg->socket,
					       sizeof cfg->socket) || !cfg->socket[0])
					goto bad;
			} else {
				snprintf(err, errlen, "MySQL URL: unknown parameter \"%.*s\" (only socket=)",
					 (int)(eq - p) > 40 ? 40 : (int)(eq - p), p);
				return CL_EUSAGE;
			}
			p = *amp ? amp + 1 : amp;
		}
	}
	return 0;
bad:
	snprintf(err, errlen, "malformed MySQL URL (expected mysql://user:pass@host:port/db?socket=/path)");
	return CL_EUSAGE;
}

/* ---- connect ------------------------------------------------------------------ */

int replay_mysql_open(struct replay_backend **out, const struct replay_mysql_cfg *cfg,
		      char *err, size_t errlen)
{
	struct mysql_be *m;
	unsigned int timeout = 10;
	const char *where;

	*out = NULL;
	if (!(m = calloc(1, sizeof *m))) {
		snprintf(err, errlen, "out of memory");
		return CL_ENOMEM;
	}
	m->base.ops = &mysql_ops;
	if (!(m->db = mysql_init(NULL))) {
		free(m);
		snprintf(err, errlen, "out of memory");
		return CL_ENOMEM;
	}
	mysql_options(m->db, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	mysql_options(m->db, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
	if (cfg->defaults_file) {
		mysql_options(m->db, MYSQL_READ_DEFAULT_FILE, cfg->defaults_file);
		mysql_options(m->db, MYSQL_READ_DEFAULT_GROUP, "client");
	}
	where = cfg->socket[0] ? cfg->socket : cfg->host[0] ? cfg->host : "the default socket";
	if (!mysql_real_connect(m->db, cfg->host[0] ? cfg->host : NULL,
				cfg->user[0] ? cfg->user : NULL,
				cfg->has_password ? cfg->password : NULL, cfg->db, cfg->port,
				cfg->socket[0] ? cfg->socket : NULL, 0)) {
		snprintf(err, errlen, "cannot connect to MySQL at %s (database %s): %s", where, cfg->db,
			 mysql_error(m->db));
		goto fail;
	}
	if (mysql_autocommit(m->db, 0) ||
	    query(m, "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_ZERO_DATE,NO_ENGINE_SUBSTITUTION'") ||
	    query(m, "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")) {
		snprintf(err, errlen, "cannot set up the MySQL session: %s", m->base.err[0] ?
			 m->base.err : mysql_error(m->db));
		goto fail;
	}
	m->bulk = !cfg->no_bulk && mariadb_connection(m->db) &&
		  mysql_get_server_version(m->db) >= 100200;
	*out = &m->base;
	return 0;
fail:
	mysql_close(m->db);
	free(m);
	return CL_EIO;
}
