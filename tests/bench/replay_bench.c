/*
 * replay_bench.c - how fast changelog-replay fills SQL tables, beside a raw
 * batched INSERT of the very same rows in the same run.
 *
 * Not a test: it asserts nothing, it prints figures. It writes a log of
 * --events events (default 1,000,000; a realistic mix: users, entries,
 * edits, status changes, and ~65% threaded comments) with EVLOG_NOSYNC, then
 *   ours  replay_run (the code bin/changelog-replay runs: read, decode,
 *         hash-check, translate, upsert in batches of 10000 events with
 *         replay_state) into a fresh SQLite file;
 *   peer  the final rows of those tables, read back into memory first, then
 *         inserted with plain prepared INSERTs (no upsert, no decoding, no
 *         lookups) into a fresh file with the same schema, indexes, open
 *         flags and PRAGMAs, committing every 10000 rows.
 * Both are reported in events/s (the peer's time is charged to the same
 * event count), and the ratio is ours / peer (goal >= 0.7); a second row
 * (*_cpu) charges the CPU time of every thread instead of wall time, which a
 * loaded machine moves less, and the writer / reader thread split is
 * printed. --batch N sets replay's events per transaction (default: its own).
 * With CL_MARIADB_SOCKET set (a server where root logs in without a
 * password, e.g. tests/integration/mariadb_util.py start DIR), the same pair
 * runs against MariaDB: replay with array binding, peer with array-bound
 * INSERTs of 1000 rows, committed every 10000.
 *
 *   replay_bench [--events N] [--batch N] [--json FILE] [--dir DIR]
 *
 * --json appends {"name","unit","ours","peer","ratio","goal"} objects to the
 * JSON list in FILE (created if missing). docs/benchmarks.md has the figures.
 */
#include "../../replay/replay.h"

#include <jansson.h>
#include <mysql.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "../../core/event.h"
#include "../../store/evlog.h"
#include "benchjson.h"

#define COMMIT_ROWS 10000
#define ARRAY_ROWS 1000

static struct bench_row results[8];
static int nresults;
static unsigned batch;   /* --batch: replay_opts.batch (0: the default) */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process or of the calling thread;
 * *sys gets the system part. */
static double cpu_s(int who, double *sys)
{
	struct rusage ru;

	getrusage(who, &ru);
	*sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 + *sys;
}

/* One phase's wall and CPU seconds; the noinline phases keep their own
 * names in a callgrind profile. */
struct cost {
	double wall, cpu, cpu_main;   /* cpu: every thread; cpu_main: this thread */
	double sys;                   /* the system part of cpu */
};

static void cost_start(struct cost *c)
{
	double sys;

	c->wall = now_s();
	c->cpu = cpu_s(RUSAGE_SELF, &c->sys);
	c->cpu_main = cpu_s(RUSAGE_THREAD, &sys);
}

static void cost_stop(struct cost *c)
{
	double sys0 = c->sys, sys;

	c->wall = now_s() - c->wall;
	c->cpu = cpu_s(RUSAGE_SELF, &c->sys) - c->cpu;
	c->sys -= sys0;
	c->cpu_main = cpu_s(RUSAGE_THREAD, &sys) - c->cpu_main;
}


static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return rng_state = x;
}

static double frand(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* ---- the log ------------------------------------------------------------------ */

struct gen_entry {
	uint8_t status;
	uint64_t last_comment;
	uint8_t last_depth;
};

static const char *const WORDS[] = {
	"deploy", "cache", "latency", "database", "timeout", "café", "rollback", "index",
	"websocket", "certificate", "日本語", "queue", "<b>markup</b>", "\"quoted\"", "retry",
};

static size_t words(char *buf, size_t cap, int n)
{
	size_t len = 0;

	for (int i = 0; i < n; i++) {
		const char *w = WORDS[rnd() % (sizeof WORDS / sizeof WORDS[0])];
		size_t wl = strlen(w);

		if (len + wl + 2 > cap)
			break;
		if (len)
			buf[len++] = ' ';
		memcpy(buf + len, w, wl);
		len += wl;
	}
	buf[len] = 0;
	return len;
}

static __attribute__((noinline)) int make_log(const char *dir, long n)
{
	enum { CHUNK = 1000, USERS = 20 };
	static char text[CHUNK][2][400];
	struct event *evs = calloc(CHUNK, sizeof *evs);
	struct gen_entry *ents = calloc((size_t)n + 1, sizeof *ents);
	struct evlog *log = NULL;
	uint64_t nent = 0, ncom = 0, seq = 0, first;
	int64_t ts = 1795000000000000LL;
	static const char *const names[USERS] = { "admin", "u1", "u2", "u3", "u4", "u5", "u6",
		"u7", "u8", "u9", "u10", "u11", "u12", "u13", "u14", "u15", "u16", "u17", "u18", "u19" };
	int rc = 0;

	if (!evs || !ents || evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) != 0) {
		rc = -1;
		goto out;
	}
	while ((long)seq < n && !rc) {
		size_t k = 0;

		for (; k < CHUNK && (long)(seq + k) < n; k++) {
			struct event *ev = &evs[k];
			uint64_t s = seq + k + 1;
			double r = frand();

			memset(ev, 0, sizeof *ev);
			ev->ts = ts += 1000;
			ev->actor = 1 + rnd() % USERS;
			if (s <= USERS) {
				ev->type = EV_USER_CREATED;
				ev->actor = 0;
				ev->ids.user = s;
				ev->name = (struct cl_str){ names[s - 1], strlen(names[s - 1]) };
				ev->role = s == 1 ? ROLE_ADMIN : ROLE_MEMBER;
			} else if (nent == 0 || r < 0.12) {
				ev->type = EV_ENTRY_CREATED;
				ev->ids.entry = ++nent;
				ents[nent].status = ST_OPEN;
				ev->title.n = words(text[k][0], 300, 3 + (int)(rnd() % 5));
				ev->title.p = text[k][0];
				ev->body.n = words(text[k][1], 400, 10 + (int)(rnd() % 25));
				ev->body.p = text[k][1];
				ev->kind = (uint8_t)(1 + rnd() % 3);
			} else {
				/* recent entries get most of the activity */
				uint64_t e = nent - (rnd() % (nent < 2000 ? nent : 2000));
				struct gen_entry *g = &ents[e];

				ev->ids.entry = e;
				if (r < 0.20) {
					ev->type = EV_ENTRY_EDITED;
					ev->has_title = 1;
					ev->title.n = words(text[k][0], 300, 3 + (int)(rnd() % 5));
					ev->title.p = text[k][0];
					if (rnd() & 1) {
						ev->has_body = 1;
						ev->body.n = words(text[k][1], 400, 10 + (int)(rnd() % 25));
						ev->body.p = text[k][1];
					}
				} else if (r < 0.28) {
					ev->type = EV_ENTRY_STATUS_SET;
					ev->status_from = g->status;
					ev->status_to = g->status == ST_OPEN || g->status == ST_REOPENED
							? (uint8_t)((rnd() & 1) ? ST_RESOLVED : ST_CANCELLED)
							: ST_REOPENED;
					g->status = ev->status_to;
				} else {
					ev->type = EV_COMMENT_ADDED;
					ev->ids.comment = ++ncom;
					if (g->last_comment && g->last_depth < 30 && (rnd() & 1)) {
						ev->ids.parent = g->last_comment;
						g->last_depth++;
					} else {
						g->last_depth = 0;
					}
					g->last_comment = ncom;
					ev->body.n = words(text[k][1], 400, 5 + (int)(rnd() % 20));
					ev->body.p = text[k][1];
				}
			}
		}
		rc = evlog_append(log, seq, evs, k, 0, (struct cl_str){ NULL, 0 }, NULL, 0, &first);
		seq += k;
	}
out:
	evlog_close(log);
	free(evs);
	free(ents);
	return rc;
}

/* ---- the peer's rows ----------------------------------------------------------- */

struct rows {
	unsigned ncols;
	size_t n;
	struct rp_val *v;          /* n * ncols */
	char *text;                /* every string, back to back */
	size_t text_len, text_cap;
};

static struct rows tab[RP_T__COUNT];

static int text_add(struct rows *r, const char *s, size_t n, size_t *off)
{
	if (r->text_len + n + 1 > r->text_cap) {
		size_t cap = r->text_cap ? r->text_cap * 2 : (1u << 20);
		char *p;

		while (cap < r->text_len + n + 1)
			cap *= 2;
		if (!(p = realloc(r->text, cap)))
			return -1;
		r->text = p;
		r->text_cap = cap;
	}
	memcpy(r->text + r->text_len, s, n);
	r->text[r->text_len + n] = 0;
	*off = r->text_len;
	r->text_len += n + 1;
	return 0;
}

/* Every row of every table of db into tab[] (strings as offsets until done). */
static __attribute__((noinline)) int load_rows(const char *db)
{
	sqlite3 *h = NULL;
	int rc = 0;

	if (sqlite3_open(db, &h) != SQLITE_OK)
		return -1;
	for (unsigned t = 0; t < RP_T__COUNT && !rc; t++) {
		struct rows *r = &tab[t];
		sqlite3_stmt *q = NULL;
		char sql[128];
		size_t cap = 0;

		r->ncols = rp_tables[t].ncols;
		snprintf(sql, sizeof sql, "SELECT * FROM %s ORDER BY 1", rp_tables[t].name);
		if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) != SQLITE_OK) {
			rc = -1;
			break;
		}
		while (sqlite3_step(q) == SQLITE_ROW) {
			if (r->n == cap) {
				void *p;

				cap = cap ? cap * 2 : 1024;
				if (!(p = realloc(r->v, cap * r->ncols * sizeof *r->v))) {
					rc = -1;
					break;
				}
				r->v = p;
			}
			for (unsigned c = 0; c < r->ncols; c++) {
				struct rp_val *v = &r->v[r->n * r->ncols + c];

				memset(v, 0, sizeof *v);
				switch (sqlite3_column_type(q, (int)c)) {
				case SQLITE_NULL:
					v->kind = RP_V_NULL;
					break;
				case SQLITE_INTEGER:
					v->kind = RP_V_INT;
					v->i = sqlite3_column_int64(q, (int)c);
					break;
				default: {
					size_t off = 0;

					v->kind = RP_V_TEXT;
					v->n = (size_t)sqlite3_column_bytes(q, (int)c);
					if (text_add(r, (const char *)sqlite3_column_text(q, (int)c), v->n,
						     &off))
						rc = -1;
					v->i = (int64_t)off;
				}
				}
			}
			r->n++;
		}
		sqlite3_finalize(q);
	}
	sqlite3_close(h);
	/* the text buffers no longer move: offsets become pointers */
	for (unsigned t = 0; t < RP_T__COUNT && !rc; t++)
		for (size_t i = 0; i < tab[t].n * tab[t].ncols; i++)
			if (tab[t].v[i].kind == RP_V_TEXT)
				tab[t].v[i].s = tab[t].text + tab[t].v[i].i;
	return rc;
}

static void free_rows(void)
{
	for (unsigned t = 0; t < RP_T__COUNT; t++) {
		free(tab[t].v);
		free(tab[t].text);
		memset(&tab[t], 0, sizeof tab[t]);
	}
}

/* ---- SQLite --------------------------------------------------------------------- */

static __attribute__((noinline)) int sqlite_ours(const char *data, const char *db, struct cost *cost)
{
	struct replay_backend *b = NULL;
	struct replay_opts o;
	struct replay_stats st;
	char err[1024];
	int rc;

	if (replay_sqlite_open(&b, db, err, sizeof err)) {
		fprintf(stderr, "replay_bench: %s\n", err);
		return -1;
	}
	memset(&o, 0, sizeof o);
	o.data_dir = data;
	o.batch = batch;
	cost_start(cost);
	rc = replay_run(b, &o, &st, err, sizeof err);
	cost_stop(cost);
	b->ops->close(b);
	if (rc)
		fprintf(stderr, "replay_bench: replay: %s\n", err);
	return rc;
}

static __attribute__((noinline)) int sqlite_peer(const char *db, struct cost *cost)
{
	struct replay_backend *b = NULL;
	sqlite3 *h = NULL;
	char err[1024];
	int rc = 0;

	/* the same schema, made by the same code */
	if (replay_sqlite_open(&b, db, err, sizeof err))
		return -1;
	for (unsigned t = 0; t < RP_T__COUNT; t++)
		if (b->ops->create(b, &rp_tables[t]))
			rc = -1;
	b->ops->close(b);
	/* and the same open flags as replay_sqlite_open */
	if (rc || sqlite3_open_v2(db, &h, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				  SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		return -1;
	sqlite3_exec(h, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; "
		     "PRAGMA cache_size = -65536; PRAGMA wal_autocheckpoint = 10000", NULL, NULL,
		     NULL);
	cost_start(cost);
	for (unsigned t = 0; t < RP_T__COUNT && !rc; t++) {
		const struct rows *r = &tab[t];
		sqlite3_stmt *q = NULL;
		char sql[512];
		struct rp_sb sb;

		rp_sb_init(&sb, sql, sizeof sql);
		rp_sb_add(&sb, "INSERT INTO %s VALUES (", rp_tables[t].name);
		for (unsigned c = 0; c < r->ncols; c++)
			rp_sb_add(&sb, "%s", c ? ",?" : "?");
		rp_sb_add(&sb, ")");
		if (sqlite3_prepare_v2(h, sql, -1, &q, NULL) != SQLITE_OK) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < r->n && !rc; i++) {
			if (i % COMMIT_ROWS == 0)
				sqlite3_exec(h, i ? "COMMIT; BEGIN" : "BEGIN", NULL, NULL, NULL);
			for (unsigned c = 0; c < r->ncols; c++) {
				const struct rp_val *v = &r->v[i * r->ncols + c];

				if (v->kind == RP_V_INT)
					sqlite3_bind_int64(q, (int)c + 1, v->i);
				else if (v->kind == RP_V_TEXT)
					sqlite3_bind_text(q, (int)c + 1, v->s, (int)v->n, SQLITE_STATIC);
				else
					sqlite3_bind_null(q, (int)c + 1);
			}
			if (sqlite3_step(q) != SQLITE_DONE)
				rc = -1;
			sqlite3_reset(q);
		}
		sqlite3_exec(h, "COMMIT", NULL, NULL, NULL);
		sqlite3_finalize(q);
	}
	cost_stop(cost);
	if (rc)
		fprintf(stderr, "replay_bench: peer insert: %s\n", sqlite3_errmsg(h));
	sqlite3_close(h);
	return rc;
}

/* ---- MariaDB ---------------------------------------------------------------------- */

static MYSQL *my_connect(const char *sock, const char *db)
{
	MYSQL *m = mysql_init(NULL);

	if (!m)
		return NULL;
	mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
	if (!mysql_real_connect(m, NULL, "root", NULL, db, 0, sock, 0)) {
		fprintf(stderr, "replay_bench: MariaDB at %s: %s\n", sock, mysql_error(m));
		mysql_close(m);
		return NULL;
	}
	return m;
}

static int my_fresh_db(const char *sock, const char *db)
{
	MYSQL *m = my_connect(sock, NULL);
	char sql[256];
	int rc = 0;

	if (!m)
		return -1;
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s", db);
	rc |= mysql_query(m, sql);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s CHARACTER SET utf8mb4 COLLATE utf8mb4_bin",
		 db);
	rc |= mysql_query(m, sql);
	mysql_close(m);
	return rc ? -1 : 0;
}

static __attribute__((noinline)) int mysql_ours(const char *data, const char *sock, struct cost *cost)
{
	struct replay_mysql_cfg cfg;
	struct replay_backend *b = NULL;
	struct replay_opts o;
	struct replay_stats st;
	char err[1024];
	int rc;

	if (my_fresh_db(sock, "clg_bench"))
		return -1;
	memset(&cfg, 0, sizeof cfg);
	snprintf(cfg.user, sizeof cfg.user, "root");
	snprintf(cfg.db, sizeof cfg.db, "clg_bench");
	snprintf(cfg.socket, sizeof cfg.socket, "%s", sock);
	if (replay_mysql_open(&b, &cfg, err, sizeof err)) {
		fprintf(stderr, "replay_bench: %s\n", err);
		return -1;
	}
	memset(&o, 0, sizeof o);
	o.data_dir = data;
	o.batch = batch;
	cost_start(cost);
	rc = replay_run(b, &o, &st, err, sizeof err);
	cost_stop(cost);
	if (!rc && !replay_mysql_bulk(b))
		fprintf(stderr, "replay_bench: note: no array binding on this server\n");
	b->ops->close(b);
	if (rc)
		fprintf(stderr, "replay_bench: replay: %s\n", err);
	return rc;
}

static __attribute__((noinline)) int mysql_peer(const char *sock, struct cost *cost)
{
	struct replay_mysql_cfg cfg;
	struct replay_backend *b = NULL;
	MYSQL *m;
	char err[1024];
	int rc = 0;

	if (my_fresh_db(sock, "clg_bench_raw"))
		return -1;
	memset(&cfg, 0, sizeof cfg);
	snprintf(cfg.user, sizeof cfg.user, "root");
	snprintf(cfg.db, sizeof cfg.db, "clg_bench_raw");
	snprintf(cfg.socket, sizeof cfg.socket, "%s", sock);
	if (replay_mysql_open(&b, &cfg, err, sizeof err))
		return -1;
	for (unsigned t = 0; t < RP_T__COUNT; t++)
		if (b->ops->create(b, &rp_tables[t]))
			rc = -1;
	b->ops->close(b);
	if (rc || !(m = my_connect(sock, "clg_bench_raw")))
		return -1;
	mysql_autocommit(m, 0);
	cost_start(cost);
	for (unsigned t = 0; t < RP_T__COUNT && !rc; t++) {
		const struct rows *r = &tab[t];
		MYSQL_STMT *st = mysql_stmt_init(m);
		MYSQL_BIND bind[RP_MAX_COLUMNS];
		static long long iv[RP_MAX_COLUMNS][ARRAY_ROWS];
		static char *sp[RP_MAX_COLUMNS][ARRAY_ROWS];
		static unsigned long sl[RP_MAX_COLUMNS][ARRAY_ROWS];
		static char ind[RP_MAX_COLUMNS][ARRAY_ROWS];
		char sql[512];
		struct rp_sb sb;

		rp_sb_init(&sb, sql, sizeof sql);
		rp_sb_add(&sb, "INSERT INTO %s VALUES (", rp_tables[t].name);
		for (unsigned c = 0; c < r->ncols; c++)
			rp_sb_add(&sb, "%s", c ? ",?" : "?");
		rp_sb_add(&sb, ")");
		if (!st || mysql_stmt_prepare(st, sql, strlen(sql))) {
			rc = -1;
			break;
		}
		for (size_t i = 0; i < r->n && !rc; i += ARRAY_ROWS) {
			unsigned int k = (unsigned int)(r->n - i < ARRAY_ROWS ? r->n - i : ARRAY_ROWS);

			memset(bind, 0, sizeof bind);
			for (unsigned c = 0; c < r->ncols; c++) {
				int is_int = rp_tables[t].cols[c].type == RP_INT ||
					     rp_tables[t].cols[c].type == RP_INT_NULL;

				for (unsigned j = 0; j < k; j++) {
					const struct rp_val *v = &r->v[(i + j) * r->ncols + c];

					ind[c][j] = v->kind == RP_V_NULL ? STMT_INDICATOR_NULL
									 : STMT_INDICATOR_NONE;
					iv[c][j] = v->i;
					sp[c][j] = (char *)v->s;
					sl[c][j] = (unsigned long)v->n;
				}
				bind[c].u.indicator = ind[c];
				bind[c].buffer_type = is_int ? MYSQL_TYPE_LONGLONG : MYSQL_TYPE_STRING;
				bind[c].buffer = is_int ? (void *)iv[c] : (void *)sp[c];
				if (!is_int)
					bind[c].length = sl[c];
			}
			if (mysql_stmt_attr_set(st, STMT_ATTR_ARRAY_SIZE, &k) ||
			    mysql_stmt_bind_param(st, bind) || mysql_stmt_execute(st)) {
				fprintf(stderr, "replay_bench: peer insert: %s\n", mysql_stmt_error(st));
				rc = -1;
			}
			if ((i + k) % COMMIT_ROWS == 0 || i + k == r->n)
				mysql_commit(m);
		}
		mysql_stmt_close(st);
	}
	cost_stop(cost);
	mysql_close(m);
	return rc;
}

/* ---- report ---------------------------------------------------------------------- */

static void add(const char *name, const char *unit, double ours, double peer, double goal)
{
	struct bench_row *r = &results[nresults++];

	r->name = name;
	r->unit = unit;
	r->ours = ours;
	r->peer = peer;
	r->goal = goal;
}

/*
 * Two rows per database: wall time (the headline, goal 0.7), and CPU time
 * of every thread (the replay's reader and writer, the peer's one thread),
 * which is what a loaded machine shares out and moves less between runs.
 */
static void add_pair(const char *name, const char *cpu_name, long n, const struct cost *ours,
		     const struct cost *peer)
{
	add(name, "events/s", (double)n / ours->wall, (double)n / peer->wall, 0.7);
	add(cpu_name, "events/cpu-s", (double)n / ours->cpu, (double)n / peer->cpu, -1);
	printf("%s: ours %.2f s wall, %.2f s CPU (writer thread %.2f, reader %.2f; system %.2f); "
	       "peer %.2f s wall, %.2f s CPU (system %.2f)\n", name, ours->wall, ours->cpu,
	       ours->cpu_main, ours->cpu - ours->cpu_main, ours->sys, peer->wall, peer->cpu,
	       peer->sys);
}

int main(int argc, char **argv)
{
	const char *json = NULL, *base = getenv("CL_BENCH_TMP"), *sock = getenv("CL_MARIADB_SOCKET");
	char root[512], data[600], ours_db[600], peer_db[600], cmd[700];
	long n = 1000000;
	double t0, gen_s;
	struct cost ours, peer;
	int rc = 0;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			base = argv[++i];
		} else if (!strcmp(argv[i], "--events") && i + 1 < argc) {
			n = strtol(argv[++i], NULL, 10);
		} else if (!strcmp(argv[i], "--batch") && i + 1 < argc) {
			batch = (unsigned)strtoul(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: replay_bench [--events N] [--batch N] [--json FILE] "
				"[--dir DIR]\n");
			return 2;
		}
	}
	if (n < 100 || n > 100000000) {
		fprintf(stderr, "replay_bench: --events must be 100..100000000\n");
		return 2;
	}
	snprintf(root, sizeof root, "%s/replay-bench.XXXXXX", base ? base : "/tmp");
	if (!mkdtemp(root)) {
		perror("replay_bench: mkdtemp");
		return 1;
	}
	snprintf(data, sizeof data, "%s/data", root);
	snprintf(ours_db, sizeof ours_db, "%s/ours.db", root);
	snprintf(peer_db, sizeof peer_db, "%s/peer.db", root);

	t0 = now_s();
	if (make_log(data, n)) {
		fprintf(stderr, "replay_bench: cannot write the log in %s\n", data);
		rc = 1;
		goto out;
	}
	gen_s = now_s() - t0;
	printf("log: %ld events written in %.2f s\n", n, gen_s);

	if (sqlite_ours(data, ours_db, &ours) || load_rows(ours_db) ||
	    sqlite_peer(peer_db, &peer)) {
		rc = 1;
		goto out;
	}
	add_pair("replay_sqlite", "replay_sqlite_cpu", n, &ours, &peer);
	if (sock && *sock) {
		if (mysql_ours(data, sock, &ours) || mysql_peer(sock, &peer))
			rc = 1;
		else
			add_pair("replay_mariadb", "replay_mariadb_cpu", n, &ours, &peer);
	}

	printf("%-20s %-13s %12s %12s %7s %6s\n", "name", "unit", "ours", "peer(raw)", "ratio",
	       "goal");
	for (int i = 0; i < nresults; i++) {
		const struct bench_row *r = &results[i];

		printf("%-20s %-13s %12.0f %12.0f %7.2f %6s\n", r->name, r->unit, r->ours, r->peer,
		       r->ours / r->peer, r->goal > 0 ? ">=0.7" : "-");
	}
	printf("(%ld events -> %zu entries, %zu comments, %zu status changes; raw = plain INSERT "
	       "of the final rows, %d per txn)\n", n, tab[RP_T_ENTRIES].n, tab[RP_T_COMMENTS].n,
	       tab[RP_T_STATUS].n, COMMIT_ROWS);
	if (json && bench_json_append(json, results, nresults) != 0) {
		fprintf(stderr, "replay_bench: cannot write %s\n", json);
		rc = 1;
	}
out:
	free_rows();
	if (!getenv("KEEP_TMP")) {
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
		if (system(cmd) != 0)
			fprintf(stderr, "replay_bench: could not remove %s\n", root);
	}
	return rc;
}
