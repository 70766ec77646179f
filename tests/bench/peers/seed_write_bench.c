/*
 * seed_write_bench.c - the "seed stack" peers for `make bench`: what the
 * system changelogd replaces does per request, measured directly.
 *
 *   seed_write_bench sqlite  FILE    THREADS SECONDS   one INSERT per command,
 *        WAL, synchronous=FULL, each thread its own connection (busy_timeout)
 *   seed_write_bench mariadb SOCKET  THREADS SECONDS   one INSERT per request
 *        (autocommit, innodb_flush_log_at_trx_commit=1 on the server), each
 *        thread one persistent connection
 *   seed_write_bench mariadb-read SOCKET THREADS SECONDS   the newest 50 of
 *        1,000 entries per request (SELECT … ORDER BY id DESC LIMIT 50),
 *        encoded to a JSON array with jansson, like the seed's PHP endpoint
 *
 * Prints one JSON object on stdout: {"ops","per_s","p50_us","p99_us","max_us",
 * "errors"}. Built by tests/bench/run.sh (it is not a layer's file). Rows look
 * like the bench client's createEntry: a ~30-byte title, a 26-byte body.
 * Latency samples are capped per thread, so memory is bounded.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <mysql.h>
#include <sqlite3.h>

#define MAX_THREADS 256
#define MAX_SAMPLES 65536

enum mode { M_SQLITE, M_MARIADB, M_MARIADB_READ };

struct worker {
	pthread_t th;
	int idx;
	uint64_t ops, errors;
	uint32_t *lat_us;
	size_t nlat;
};

static enum mode mode;
static const char *target;
static double duration;
static uint64_t t_end;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sample(struct worker *w, uint64_t t0)
{
	if (w->nlat < MAX_SAMPLES)
		w->lat_us[w->nlat++] = (uint32_t)((now_ns() - t0) / 1000);
}

static void *run_sqlite(struct worker *w)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char title[64];

	if (sqlite3_open(target, &db) != SQLITE_OK ||
	    sqlite3_busy_timeout(db, 30000) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "INSERT INTO entries(title, body, kind, status, created) "
			       "VALUES (?, 'written by changelog-bench', 'fix', 'open', ?)",
			       -1, &st, NULL) != SQLITE_OK) {
		w->errors++;
		goto out;
	}
	while (now_ns() < t_end) {
		uint64_t t0 = now_ns();
		snprintf(title, sizeof title, "bench %" PRIu64 " w%d", t0, w->idx);
		sqlite3_bind_text(st, 1, title, -1, SQLITE_TRANSIENT);
		sqlite3_bind_int64(st, 2, (sqlite3_int64)t0);
		if (sqlite3_step(st) == SQLITE_DONE) {
			w->ops++;
			sample(w, t0);
		} else {
			w->errors++;
		}
		sqlite3_reset(st);
	}
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return NULL;
}

static MYSQL *my_connect(void)
{
	MYSQL *db = mysql_init(NULL);

	if (!db)
		return NULL;
	if (!mysql_real_connect(db, NULL, "root", NULL, "seed", 0, target, 0)) {
		fprintf(stderr, "seed_write_bench: %s\n", mysql_error(db));
		mysql_close(db);
		return NULL;
	}
	return db;
}

static void *run_mariadb(struct worker *w)
{
	MYSQL *db = my_connect();
	char q[256];

	if (!db) {
		w->errors++;
		return NULL;
	}
	while (now_ns() < t_end) {
		uint64_t t0 = now_ns();
		int n = snprintf(q, sizeof q, "INSERT INTO entries(title, body, kind, status, created) "
				 "VALUES ('bench %" PRIu64 " w%d', 'written by changelog-bench', 'fix', 'open', %" PRIu64 ")",
				 t0, w->idx, t0);
		if (n > 0 && (size_t)n < sizeof q && !mysql_real_query(db, q, (unsigned long)n)) {
			w->ops++;
			sample(w, t0);
		} else {
			w->errors++;
		}
	}
	mysql_close(db);
	return NULL;
}

static void *run_mariadb_read(struct worker *w)
{
	static const char q[] = "SELECT id, title, body, kind, status, created FROM entries "
				"ORDER BY id DESC LIMIT 50";
	MYSQL *db = my_connect();

	if (!db) {
		w->errors++;
		return NULL;
	}
	while (now_ns() < t_end) {
		uint64_t t0 = now_ns();
		MYSQL_RES *res;
		MYSQL_ROW row;
		json_t *arr;
		char *s;

		if (mysql_real_query(db, q, sizeof q - 1) || !(res = mysql_store_result(db))) {
			w->errors++;
			continue;
		}
		arr = json_array();
		while ((row = mysql_fetch_row(res)))
			json_array_append_new(arr, json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}",
				"id", (json_int_t)strtoll(row[0], NULL, 10), "title", row[1],
				"body", row[2], "kind", row[3], "status", row[4],
				"created", (json_int_t)strtoll(row[5], NULL, 10)));
		s = json_dumps(arr, JSON_COMPACT);
		if (s && json_array_size(arr) == 50) {
			w->ops++;
			sample(w, t0);
		} else {
			w->errors++;
		}
		free(s);
		json_decref(arr);
		mysql_free_result(res);
	}
	mysql_close(db);
	return NULL;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;

	if (mode == M_SQLITE)
		return run_sqlite(w);
	if (mode == M_MARIADB)
		return run_mariadb(w);
	return run_mariadb_read(w);
}

static int setup(void)
{
	static const char ddl[] = "CREATE TABLE IF NOT EXISTS entries (id INTEGER PRIMARY KEY %s, "
				  "title VARCHAR(300) NOT NULL, body TEXT NOT NULL, kind VARCHAR(16) NOT NULL, "
				  "status VARCHAR(16) NOT NULL, created BIGINT NOT NULL)%s";
	char q[512];

	if (mode == M_SQLITE) {
		sqlite3 *db;
		int rc = sqlite3_open(target, &db);
		snprintf(q, sizeof q, ddl, "", "");
		rc = rc || sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL) ||
		     sqlite3_exec(db, q, NULL, NULL, NULL);
		sqlite3_close(db);
		return rc ? -1 : 0;
	} else {
		MYSQL *db = mysql_init(NULL);
		int rc = 0, i;
		if (!db || !mysql_real_connect(db, NULL, "root", NULL, NULL, 0, target, 0))
			return -1;
		snprintf(q, sizeof q, ddl, "AUTO_INCREMENT", " ENGINE=InnoDB");
		rc = mysql_query(db, "CREATE DATABASE IF NOT EXISTS seed") ||
		     mysql_select_db(db, "seed") || mysql_query(db, q);
		if (!rc && mode == M_MARIADB_READ) {
			/* 1,000 entries to read from (one transaction: setup, not measured) */
			rc = mysql_query(db, "DELETE FROM entries") || mysql_query(db, "BEGIN");
			for (i = 0; !rc && i < 1000; i++) {
				snprintf(q, sizeof q, "INSERT INTO entries(title, body, kind, status, created) "
					 "VALUES ('bench entry %d', 'written by changelog-bench', 'fix', 'open', %d)", i, i);
				rc = mysql_query(db, q);
			}
			rc = rc || mysql_query(db, "COMMIT");
		}
		if (rc)
			fprintf(stderr, "seed_write_bench: setup: %s\n", mysql_error(db));
		mysql_close(db);
		return rc ? -1 : 0;
	}
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	uint64_t ops = 0, errs = 0, t0, t1;
	uint32_t *all;
	size_t n = 0, i;
	int threads, k;
	json_t *out;
	char *s;

	if (argc != 5) {
		fprintf(stderr, "usage: seed_write_bench sqlite|mariadb|mariadb-read FILE|SOCKET THREADS SECONDS\n");
		return 2;
	}
	mode = !strcmp(argv[1], "sqlite") ? M_SQLITE : !strcmp(argv[1], "mariadb") ? M_MARIADB :
	       !strcmp(argv[1], "mariadb-read") ? M_MARIADB_READ : (enum mode)-1;
	target = argv[2];
	threads = atoi(argv[3]);
	duration = atof(argv[4]);
	if ((int)mode < 0 || threads < 1 || threads > MAX_THREADS || duration <= 0 || duration > 600) {
		fprintf(stderr, "seed_write_bench: bad arguments\n");
		return 2;
	}
	if (mysql_library_init(0, NULL, NULL) || setup()) {
		fprintf(stderr, "seed_write_bench: setup failed\n");
		return 1;
	}
	all = calloc((size_t)threads * MAX_SAMPLES, sizeof *all);
	if (!all)
		return 1;
	t0 = now_ns();
	t_end = t0 + (uint64_t)(duration * 1e9);
	for (k = 0; k < threads; k++) {
		w[k].idx = k;
		w[k].lat_us = all + (size_t)k * MAX_SAMPLES;
		if (pthread_create(&w[k].th, NULL, worker_main, &w[k]))
			return 1;
	}
	for (k = 0; k < threads; k++) {
		pthread_join(w[k].th, NULL);
		ops += w[k].ops;
		errs += w[k].errors;
		memmove(all + n, w[k].lat_us, w[k].nlat * sizeof *all);
		n += w[k].nlat;
	}
	t1 = now_ns();
	qsort(all, n, sizeof *all, cmp_u32);
	i = n ? n - 1 : 0;
	out = json_pack("{s:I, s:f, s:I, s:I, s:I, s:I, s:i}", "ops", (json_int_t)ops,
			"per_s", (double)ops / ((double)(t1 - t0) / 1e9),
			"p50_us", (json_int_t)(n ? all[n / 2] : 0),
			"p99_us", (json_int_t)(n ? all[(size_t)((double)n * 0.99)] : 0),
			"max_us", (json_int_t)(n ? all[i] : 0), "errors", (json_int_t)errs,
			"threads", threads);
	s = out ? json_dumps(out, JSON_COMPACT) : NULL;
	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(out);
	free(all);
	mysql_library_end();
	return errs && !ops ? 1 : 0;
}
