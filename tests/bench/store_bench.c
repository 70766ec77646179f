/*
 * store_bench.c - how fast the event log appends and scans on this disk,
 * with SQLite measured beside it in the same run.
 *
 * Not a test: it asserts nothing, it prints figures. Every case runs a fixed
 * count sized to take about 1-3 s here (--scale multiplies the counts), so a
 * run is bounded. Appends are realistic entry.created events (~150 bytes
 * encoded) through evlog_wbegin / evlog_wappend / evlog_wcommit with a full
 * fsync per commit; the SQLite peer (WAL, synchronous=FULL) gets the same
 * events encoded the same way (ev_encode per row, like wappend does) and
 * stores the bytes as one row each. The scan is evlog_iter_next_event
 * (decode + hash-chain check) over the 1000/txn log; its peer selects the
 * same rows from SQLite in order and does the same decode + SHA-256. One
 * more case appends 1000/txn with EVLOG_NOSYNC (no peer): the CPU cost of
 * encode + hash + LMDB put, apart from the disk.
 *
 *   store_bench [--json FILE] [--dir DIR] [--scale F]
 *
 * --json appends {"name","unit","ours","peer","ratio","goal"} objects to the
 * JSON list in FILE (created if missing). docs/benchmarks.md has the figures.
 */
#include "../../store/evlog.h"
#include "benchjson.h"

#include <errno.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* peer / goal < 0: none */
#define MAX_RESULTS 16
static struct bench_row results[MAX_RESULTS];
static int nresults;
static double scale = 1.0;
static size_t ev_bytes;            /* encoded size of a sample event */

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long scaled(long n, long min)
{
	long v = (long)((double)n * scale);

	return v < min ? min : v;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "store_bench: %s: %s (%d)\n", what, rc < 0 ? cl_strerror(rc) : "", rc);
	exit(1);
}

/*
 * Realistic entry.created events (~25-byte title, ~30-byte body): a ring of
 * SAMPLES made before timing, so the figures measure the store and not
 * snprintf. take() stamps one with the seq it is about to get.
 */
#define SAMPLES 1024

struct sample {
	char title[96], body[160];
	struct event ev;
};
static struct sample samples[SAMPLES];

static void mk_samples(void)
{
	for (uint64_t id = 0; id < SAMPLES; id++) {
		struct sample *s = &samples[id];

		memset(&s->ev, 0, sizeof s->ev);
		snprintf(s->title, sizeof s->title, "Fix crash on save #%llu",
			 (unsigned long long)(100000 + id * 37));
		snprintf(s->body, sizeof s->body, "Lost edits on blur (%llu).",
			 (unsigned long long)(id * 7919 % 100000));
		s->ev.type = EV_ENTRY_CREATED;
		s->ev.actor = 1 + id % 50;
		s->ev.title.p = s->title;
		s->ev.title.n = strlen(s->title);
		s->ev.body.p = s->body;
		s->ev.body.n = strlen(s->body);
		s->ev.kind = (uint8_t)(KIND_FIX + id % 3);
	}
}

static struct event *take(uint64_t seq)
{
	struct event *ev = &samples[seq % SAMPLES].ev;

	ev->ids.entry = seq;
	ev->ts = 1795773723000000LL + (int64_t)seq * 1000;
	return ev;
}

static void add(const char *name, const char *unit, double ours, double peer, double goal)
{
	if (nresults < MAX_RESULTS)
		results[nresults++] = (struct bench_row){ name, unit, ours, peer, goal };
}

/* 0 if dir exists afterwards */
static int mkdir_ok(const char *dir)
{
	return mkdir(dir, 0700) != 0 && errno != EEXIST;
}

static void rm_dir(const char *dir)
{
	char path[600];
	const char *files[] = { "data.mdb", "lock.mdb", "sql.db", "sql.db-wal", "sql.db-shm" };

	for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
}

/* ---- ours ------------------------------------------------------------- */

/* Append total events, per_txn per commit, into a new log in dir. */
static double bench_append(const char *dir, long total, int per_txn, unsigned flags)
{
	struct evlog *log;
	struct evlog_txn *t;
	uint64_t last = 0;
	double t0, t1;
	int rc;

	rc = evlog_open(&log, dir, EVLOG_CREATE | flags, 0);
	if (rc)
		die("evlog_open", rc);
	t0 = now_s();
	while ((long)last < total) {
		rc = evlog_wbegin(log, last, NULL, &t);
		if (rc)
			die("evlog_wbegin", rc);
		for (int i = 0; i < per_txn && rc == 0; i++)
			rc = evlog_wappend(t, take(last + 1 + (uint64_t)i));
		if (rc) {
			evlog_wabort(t);
		} else {
			rc = evlog_wcommit(t);
		}
		if (rc == CL_EMAPFULL)
			continue;       /* the next begin grows the map */
		if (rc)
			die("append", rc);
		last += (uint64_t)per_txn;
	}
	t1 = now_s();
	evlog_close(log);
	return (double)last / (t1 - t0);
}

static double bench_scan(const char *dir, long *count)
{
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	double t0, t1;
	long n = 0;
	int rc;

	rc = evlog_open(&log, dir, EVLOG_RDONLY, 0);
	if (rc)
		die("evlog_open", rc);
	t0 = now_s();
	rc = evlog_iter_new(log, 1, &it);
	if (rc)
		die("evlog_iter_new", rc);
	while ((rc = evlog_iter_next_event(it, &ev)) == 1)
		n++;
	if (rc < 0)
		die("scan", rc);
	evlog_iter_free(it);
	t1 = now_s();
	evlog_close(log);
	*count = n;
	return (double)n / (t1 - t0);
}

/* ---- SQLite ------------------------------------------------------------ */

static sqlite3 *sql_open(const char *dir)
{
	char path[600];
	sqlite3 *db;
	char *err = NULL;

	snprintf(path, sizeof path, "%s/sql.db", dir);
	if (sqlite3_open(path, &db) != SQLITE_OK)
		die("sqlite3_open", 0);
	if (sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, val BLOB NOT NULL);",
			 NULL, NULL, &err) != SQLITE_OK) {
		fprintf(stderr, "sqlite: %s\n", err);
		exit(1);
	}
	return db;
}

static double bench_sql_append(const char *dir, long total, int per_txn)
{
	sqlite3 *db = sql_open(dir);
	sqlite3_stmt *ins, *begin, *commit;
	struct ev_buf buf;
	double t0, t1;
	long seq = 0;

	ev_buf_init(&buf);
	if (sqlite3_prepare_v2(db, "INSERT INTO events(seq, val) VALUES(?, ?)", -1, &ins, NULL) ||
	    sqlite3_prepare_v2(db, "BEGIN", -1, &begin, NULL) ||
	    sqlite3_prepare_v2(db, "COMMIT", -1, &commit, NULL))
		die("sqlite prepare", 0);
	t0 = now_s();
	while (seq < total) {
		if (sqlite3_step(begin) != SQLITE_DONE)
			die("sqlite begin", 0);
		sqlite3_reset(begin);
		for (int i = 0; i < per_txn; i++) {
			seq++;
			if (ev_encode(take((uint64_t)seq), &buf) != 0)
				die("ev_encode", 0);
			sqlite3_bind_int64(ins, 1, seq);
			sqlite3_bind_blob(ins, 2, buf.data, (int)buf.len, SQLITE_STATIC);
			if (sqlite3_step(ins) != SQLITE_DONE)
				die("sqlite insert", 0);
			sqlite3_reset(ins);
		}
		if (sqlite3_step(commit) != SQLITE_DONE)
			die("sqlite commit", 0);
		sqlite3_reset(commit);
	}
	t1 = now_s();
	sqlite3_finalize(ins);
	sqlite3_finalize(begin);
	sqlite3_finalize(commit);
	sqlite3_close(db);
	ev_buf_release(&buf);
	return (double)seq / (t1 - t0);
}

static double bench_sql_scan(const char *dir)
{
	sqlite3 *db = sql_open(dir);
	sqlite3_stmt *sel;
	struct event ev;
	uint8_t h[EV_HASH_LEN] = { 0 };
	double t0, t1;
	long n = 0;
	int rc;

	if (sqlite3_prepare_v2(db, "SELECT seq, val FROM events ORDER BY seq", -1, &sel, NULL))
		die("sqlite prepare", 0);
	t0 = now_s();
	while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
		const uint8_t *p = sqlite3_column_blob(sel, 1);
		size_t len = (size_t)sqlite3_column_bytes(sel, 1);

		if (ev_decode(p, len, &ev) != 0)
			die("ev_decode", 0);
		evlog_hash(h, (uint64_t)sqlite3_column_int64(sel, 0), p, len, h);
		n++;
	}
	if (rc != SQLITE_DONE)
		die("sqlite select", rc);
	t1 = now_s();
	sqlite3_finalize(sel);
	sqlite3_close(db);
	return (double)n / (t1 - t0);
}

/* ---- output ----------------------------------------------------------- */

static void fmt_rate(double v, char *out, size_t n)
{
	if (v < 0)
		snprintf(out, n, "-");
	else if (v >= 1e6)
		snprintf(out, n, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, n, "%.1f k", v / 1e3);
	else
		snprintf(out, n, "%.0f", v);
}

static void print_table(void)
{
	printf("\n%-34s %12s %12s %8s %10s\n", "store (events/s)", "ours", "SQLite", "ratio",
	       "goal");
	for (int i = 0; i < nresults; i++) {
		const struct bench_row *r = &results[i];
		char o[32], p[32], g[32], ratio[32];

		fmt_rate(r->ours, o, sizeof o);
		fmt_rate(r->peer, p, sizeof p);
		fmt_rate(r->goal, g, sizeof g);
		if (r->peer > 0)
			snprintf(ratio, sizeof ratio, "%.2fx", r->ours / r->peer);
		else
			snprintf(ratio, sizeof ratio, "-");
		printf("%-34s %12s %12s %8s %10s%s\n", r->name, o, p, ratio, g,
		       r->goal > 0 && r->ours < r->goal ? "  BELOW GOAL" : "");
	}
	printf("(encoded event: %zu bytes; every commit fsync'd but the no-fsync row)\n",
	       ev_bytes);
}

int main(int argc, char **argv)
{
	const char *json = NULL, *base = getenv("CL_BENCH_TMP");
	char root[512], dir[600];
	long n, scanned = 0;
	double r;
	struct ev_buf buf;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			base = argv[++i];
		} else if (!strcmp(argv[i], "--scale") && i + 1 < argc) {
			scale = atof(argv[++i]);
			if (scale <= 0 || scale > 100) {
				fprintf(stderr, "store_bench: --scale in (0, 100]\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: store_bench [--json FILE] [--dir DIR] [--scale F]\n");
			return 2;
		}
	}
	snprintf(root, sizeof root, "%s/clbench.XXXXXX", base ? base : "/var/tmp");
	if (!mkdtemp(root)) {
		fprintf(stderr, "store_bench: mkdtemp %s: %s\n", root, strerror(errno));
		return 1;
	}
	mk_samples();
	ev_buf_init(&buf);
	if (ev_encode(take(123456), &buf) != 0)
		die("ev_encode", 0);
	ev_bytes = buf.len;
	ev_buf_release(&buf);
	printf("store_bench: data in %s, scale %.2f\n", root, scale);
	fflush(stdout);

	static const struct { const char *name; int per_txn; long count; double goal; } cases[] = {
		{ "append 1 event/txn (fsync)", 1, 3000, -1 },
		{ "append 10 events/txn (fsync)", 10, 30000, -1 },
		{ "append 100 events/txn (fsync)", 100, 200000, -1 },
		{ "append 1000 events/txn (fsync)", 1000, 1000000, 400000 },
	};
	for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
		int per = cases[c].per_txn;
		double peer = -1;

		n = scaled(cases[c].count, per);
		n -= n % per;
		snprintf(dir, sizeof dir, "%s/log%d", root, per);
		r = bench_append(dir, n, per, 0);
		if (per == 1 || per == 1000) {
			snprintf(dir, sizeof dir, "%s/sql%d", root, per);
			if (mkdir_ok(dir))
				die("mkdir", 0);
			peer = bench_sql_append(dir, n, per);
		}
		add(cases[c].name, "events/s", r, peer, cases[c].goal);
		fprintf(stderr, "  %s: %ld events\n", cases[c].name, n);
	}
	/* the CPU side alone: what the disk's fsync costs is the difference */
	n = scaled(1000000, 1000);
	n -= n % 1000;
	snprintf(dir, sizeof dir, "%s/nosync", root);
	add("append 1000 events/txn (no fsync)", "events/s",
	    bench_append(dir, n, 1000, EVLOG_NOSYNC), -1, -1);
	rm_dir(dir);
	/* scan the 1000/txn log (and its SQLite twin) */
	snprintf(dir, sizeof dir, "%s/log1000", root);
	r = bench_scan(dir, &scanned);
	snprintf(dir, sizeof dir, "%s/sql1000", root);
	add("scan: decode + hash-chain check", "events/s", r, bench_sql_scan(dir), 2000000);
	fprintf(stderr, "  scan: %ld events\n", scanned);

	print_table();
	for (int per = 1; per <= 1000; per *= 10) {
		snprintf(dir, sizeof dir, "%s/log%d", root, per);
		rm_dir(dir);
		snprintf(dir, sizeof dir, "%s/sql%d", root, per);
		rm_dir(dir);
	}
	rmdir(root);
	if (json && bench_json_append(json, results, nresults) != 0) {
		fprintf(stderr, "store_bench: cannot write %s\n", json);
		return 1;
	}
	return 0;
}
