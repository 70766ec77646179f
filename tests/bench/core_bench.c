/*
 * core_bench.c - how fast the projection rebuilds and answers, and what it
 * costs in memory per entry and per comment.
 *
 * Not a test: it asserts nothing, it prints figures (docs/benchmarks.md).
 *  1. Memory: a fresh projection gets N entry.created events (title ~40 B,
 *     body ~200 B), then N comment.added (~100 B); the growth of the
 *     process's resident set over each step, divided by N, is the cost of one
 *     entry / one comment including its text and every index. Measured
 *     first, on a fresh heap.
 *  2. Queries: getChangelogEntries with default params (the first page, 50
 *     entries) over 100k entries, including json_dumps as the server sends
 *     it; a filtered query that has to scan every entry (no work budget),
 *     and the same stopped at the default budget (a partial page); the
 *     adversarial "q" of issue 15 ("a"*199+"b" over 32 KiB bodies of "a").
 *  3. Cold start: a log of 1M realistic events (users, entries, comments,
 *     edits, status changes) is written with evlog_append in batches of 1000
 *     (EVLOG_NOSYNC: generation only), then timed: read + decode + hash-chain
 *     check + proj_apply of all of it the way the server starts
 *     (evlog_replay with proj_apply_batch and proj_prepare: the chain on a
 *     second thread), the same on one thread (EVLOG_REPLAY_SERIAL: the
 *     evlog_iter_next_event loop), and the scan without the apply both ways,
 *     so the apply's own share is visible. Each timed rebuild runs in a
 *     child forked before anything was allocated, so it starts on a fresh
 *     heap like a server does: reusing the memory the earlier steps freed
 *     would hide the cost of first touching every page (large on VMs: ~5-13
 *     us per 4 KB page measured on the project VM).
 *
 *   core_bench [--json FILE] [--dir DIR] [--events N]
 *
 * --json appends {"name","unit","ours","peer","ratio","goal"} objects to the
 * JSON list in FILE (created if missing); peer is null (no peer here).
 */
#include "../../core/cmd.h"
#include "../../core/proj.h"
#include "../../store/evlog.h"
#include "benchjson.h"

#include <dirent.h>
#include <errno.h>
#include <sys/wait.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* goal < 0: none; lower is better if unit is bytes; no peers here */
#define MAX_RESULTS 16
static struct bench_row results[MAX_RESULTS];
static int nresults;

static void add(const char *name, const char *unit, double ours, double goal)
{
	if (nresults < MAX_RESULTS)
		results[nresults++] = (struct bench_row){ name, unit, ours, -1, goal };
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "core_bench: %s: %s (%d)\n", what, cl_strerror(rc), rc);
	exit(1);
}

/* Resident set size in bytes (/proc/self/statm, second field). */
static long rss_bytes(void)
{
	long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &size, &res) != 2)
		res = 0;
	fclose(f);
	return res * sysconf(_SC_PAGESIZE);
}

/* ---- an event generator that only makes events valid in its projection -- */

#define NUSERS 20
#define NTEXT 64

static char titles[NTEXT][64], bodies[NTEXT][256], cbodies[NTEXT][128];
static char names[NUSERS + 1][16];

static void mk_text(void)
{
	static const char *const w[] = { "login", "cache", "database", "timeout", "deploy",
					 "dashboard", "TLS", "export", "search", "users" };

	for (int i = 0; i < NTEXT; i++) {
		size_t n = 0;

		snprintf(titles[i], sizeof titles[i], "Fix %s %s in the %s path #%d", w[i % 10],
			 w[(i / 3) % 10], w[(i / 7) % 10], i);
		while (n + 24 < 200)
			n += (size_t)snprintf(bodies[i] + n, sizeof bodies[i] - n, "%s %s. ",
					      w[(i + n) % 10], w[(i * 7 + n) % 10]);
		n = 0;
		while (n + 24 < 100)
			n += (size_t)snprintf(cbodies[i] + n, sizeof cbodies[i] - n, "%s %s ",
					      w[(i * 3 + n) % 10], w[(n / 5) % 10]);
	}
	for (int u = 1; u <= NUSERS; u++)
		snprintf(names[u], sizeof names[u], "user%02d", u);
}

static struct cl_str S(const char *s)
{
	return (struct cl_str){ s, strlen(s) };
}

struct gen {
	struct proj *p;
	uint64_t rng;
	int64_t ts;
};

static uint64_t rnd(struct gen *g)
{
	uint64_t x = g->rng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	g->rng = x;
	return x * 2685821657736338717ULL;
}

enum mix { MIX_LOG, MIX_ENTRIES, MIX_COMMENTS };

/*
 * The next event for g->p (seq set), chosen by mix, and applied to g->p.
 * MIX_LOG: ~35% entries, ~40% comments (half of them replies), ~13% edits,
 * ~12% status changes.
 */
static void gen_next(struct gen *g, enum mix mix, struct event *ev)
{
	uint64_t ne = proj_entry_count(g->p), nc = proj_comment_count(g->p);
	unsigned r = (unsigned)(rnd(g) % 100);
	int rc;

	memset(ev, 0, sizeof *ev);
	ev->ts = (g->ts += 1000);
	ev->seq = proj_seq(g->p) + 1;
	if (proj_user_count(g->p) < NUSERS) {
		ev->type = EV_USER_CREATED;
		ev->ids.user = proj_user_count(g->p) + 1;
		ev->name = S(names[ev->ids.user]);
		ev->role = ev->ids.user == 1 ? ROLE_ADMIN : ROLE_MEMBER;
	} else if (mix == MIX_ENTRIES || ne == 0 || (mix == MIX_LOG && r < 35)) {
		ev->type = EV_ENTRY_CREATED;
		ev->actor = 1 + rnd(g) % NUSERS;
		ev->ids.entry = ne + 1;
		ev->title = S(titles[rnd(g) % NTEXT]);
		ev->body = S(bodies[rnd(g) % NTEXT]);
		ev->kind = (uint8_t)(KIND_FIX + rnd(g) % 3);
	} else if (mix == MIX_COMMENTS || r < 75) {
		struct proj_comment_info c;

		ev->type = EV_COMMENT_ADDED;
		ev->actor = 1 + rnd(g) % NUSERS;
		ev->ids.comment = nc + 1;
		ev->ids.entry = 1 + rnd(g) % ne;
		ev->body = S(cbodies[rnd(g) % NTEXT]);
		if (nc && rnd(g) % 2 &&
		    proj_comment_get(g->p, nc - rnd(g) % (nc < 1000 ? nc : 1000), &c) == 0 &&
		    c.depth + 1 < CL_MAX_DEPTH) {
			ev->ids.entry = c.entry;
			ev->ids.parent = c.id;
		}
	} else if (r < 88) {
		ev->type = EV_ENTRY_EDITED;
		ev->actor = 1;                        /* the admin may edit anything */
		ev->ids.entry = 1 + rnd(g) % ne;
		ev->has_title = 1;
		ev->title = S(titles[rnd(g) % NTEXT]);
	} else {
		struct proj_entry_info e;

		ev->type = EV_ENTRY_STATUS_SET;
		ev->actor = 1;
		ev->ids.entry = 1 + rnd(g) % ne;
		if (proj_entry_get(g->p, ev->ids.entry, &e))
			die("proj_entry_get", CL_ENOTFOUND);
		ev->status_from = (uint8_t)e.status;
		ev->status_to = e.status == ST_RESOLVED || e.status == ST_CANCELLED
			? ST_REOPENED : (rnd(g) % 2 ? ST_RESOLVED : ST_CANCELLED);
	}
	if ((rc = proj_apply(g->p, ev)))
		die("proj_apply (generator)", rc);
}

/* ---- 1. memory ---------------------------------------------------------- */

static void bench_memory(long n)
{
	struct gen g = { proj_new(), 0x9E3779B97F4A7C15ULL, 1790000000000000LL };
	struct event ev;
	long r0, r1, r2;

	for (int i = 0; i < NUSERS; i++)
		gen_next(&g, MIX_ENTRIES, &ev);
	r0 = rss_bytes();
	for (long i = 0; i < n; i++)
		gen_next(&g, MIX_ENTRIES, &ev);
	r1 = rss_bytes();
	for (long i = 0; i < n; i++)
		gen_next(&g, MIX_COMMENTS, &ev);
	r2 = rss_bytes();
	add("RSS per entry (title 40 B, body 200 B)", "bytes", (double)(r1 - r0) / (double)n, 1024);
	add("RSS per comment (body 100 B)", "bytes", (double)(r2 - r1) / (double)n, 512);
	fprintf(stderr, "  memory: %ld entries %.1f MB, %ld comments %.1f MB\n", n,
		(double)(r1 - r0) / 1e6, n, (double)(r2 - r1) / 1e6);
	proj_free(g.p);
}

/* ---- 2. queries ------------------------------------------------------------- */

static double bench_query_budget(struct proj *p, const char *params, int dump, double seconds,
				 size_t *bytes, uint64_t work_max)
{
	struct proj_qctx ctx = { .viewer = 2, .work_max = work_max };
	json_t *pj = json_loads(params, 0, NULL);
	double t0 = now_s(), t;
	long n = 0;

	do {
		for (int i = 0; i < 16; i++) {
			struct cl_fail fail;
			json_t *res = NULL;
			char *text;
			int rc = proj_query(p, "getChangelogEntries", pj, &ctx, &res, &fail);

			if (rc)
				die(fail.message, rc);
			if (dump) {
				text = json_dumps(res, JSON_COMPACT);
				if (!text)
					die("json_dumps", CL_ENOMEM);
				*bytes = strlen(text);
				free(text);
			}
			json_decref(res);
			n++;
		}
		t = now_s() - t0;
	} while (t < seconds);
	json_decref(pj);
	return (double)n / t;
}

static double bench_query(struct proj *p, const char *params, int dump, double seconds,
			  size_t *bytes)
{
	return bench_query_budget(p, params, dump, seconds, bytes, 0);
}

static void bench_queries(void)
{
	struct gen g = { proj_new(), 0xD1B54A32D192ED03ULL, 1790000000000000LL };
	struct event ev;
	size_t bytes = 0;
	double r;

	while (proj_entry_count(g.p) < 100000)
		gen_next(&g, MIX_LOG, &ev);
	r = bench_query(g.p, "{}", 0, 1.0, &bytes);
	add("getChangelogEntries page of 50 (100k)", "queries/s", r, -1);
	r = bench_query(g.p, "{}", 1, 1.0, &bytes);
	add("  same + json_dumps (as sent)", "queries/s", r, -1);
	fprintf(stderr, "  query: %llu entries, %llu comments, page %zu bytes\n",
		(unsigned long long)proj_entry_count(g.p),
		(unsigned long long)proj_comment_count(g.p), bytes);
	r = bench_query_budget(g.p, "{\"q\":\"no such words\",\"kind\":[\"fix\",\"feature\"]}",
			       0, 1.0, &bytes, UINT64_MAX);
	add("getChangelogEntries q= full scan (100k)", "queries/s", r, -1);
	r = bench_query(g.p, "{\"q\":\"no such words\"}", 0, 1.0, &bytes);
	add("  q= one budgeted (partial) page", "queries/s", r, -1);
	proj_free(g.p);
}

/*
 * The search of issue 15: 256 entries whose bodies are 32 KiB of "a" and a
 * needle of "a"*199 + "b", which the old O(text x needle) scan took ~1 s
 * over. Full scan (no budget) as bytes/s, and one query at the default
 * budget as queries/s: what one such request costs the event loop.
 */
static void bench_search(void)
{
	struct gen g = { proj_new(), 0xA0761D6478BD642FULL, 1790000000000000LL };
	static char body[CL_MAX_BODY];
	char params[300];
	struct event ev;
	size_t bytes = 0;
	double r;
	int rc;

	memset(body, 'a', sizeof body);
	for (int i = 0; i < NUSERS; i++)
		gen_next(&g, MIX_ENTRIES, &ev);
	while (proj_entry_count(g.p) < 256) {
		memset(&ev, 0, sizeof ev);
		ev.type = EV_ENTRY_CREATED;
		ev.seq = proj_seq(g.p) + 1;
		ev.ts = (g.ts += 1000);
		ev.actor = 1;
		ev.ids.entry = proj_entry_count(g.p) + 1;
		ev.title = S("All a");
		ev.body = (struct cl_str){ body, sizeof body };
		ev.kind = KIND_FIX;
		if ((rc = proj_apply(g.p, &ev)))
			die("proj_apply (search)", rc);
	}
	snprintf(params, sizeof params, "{\"q\":\"%.199s%s\"}", body, "b");
	r = bench_query_budget(g.p, params, 0, 1.0, &bytes, UINT64_MAX);
	add("q=a*199+b over 256 x 32 KiB of a", "MB/s", r * 256 * (sizeof body + 5) / 1e6, -1);
	r = bench_query(g.p, params, 0, 1.0, &bytes);
	add("  one query at the work budget", "queries/s", r, -1);
	proj_free(g.p);
}

/* ---- 3. cold start ------------------------------------------------------------ */

static void build_log(const char *dir, long nevents)
{
	enum { BATCH = 1000 };
	static struct event batch[BATCH];
	struct gen g = { proj_new(), 0x2545F4914F6CDD1DULL, 1790000000000000LL };
	struct evlog *log;
	uint64_t first;
	double t0 = now_s();
	long done = 0;
	int rc;

	if ((rc = evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, (size_t)4 << 30)))
		die("evlog_open", rc);
	while (done < nevents) {
		size_t n = nevents - done < BATCH ? (size_t)(nevents - done) : BATCH;
		uint64_t last = proj_seq(g.p);

		for (size_t i = 0; i < n; i++)
			gen_next(&g, MIX_LOG, &batch[i]);
		rc = evlog_append(log, last, batch, n, 0, (struct cl_str){ NULL, 0 }, NULL, 0,
				  &first);
		if (rc)
			die("evlog_append", rc);
		done += (long)n;
	}
	fprintf(stderr, "  log: %ld events (%llu entries, %llu comments) written in %.1f s\n",
		done, (unsigned long long)proj_entry_count(g.p),
		(unsigned long long)proj_comment_count(g.p), now_s() - t0);
	evlog_close(log);
	proj_free(g.p);
}

/*
 * Read the whole log. With p, the way a server starts: evlog_replay, which
 * checks the hash chain on a second thread while this one decodes and
 * applies (flags EVLOG_REPLAY_SERIAL: all on this thread). Without p, the
 * scan alone: with flags 0 the one-thread evlog_iter_next_event loop (read +
 * decode + hash check), with flags 1 evlog_replay with an empty apply.
 * Returns events/s.
 */
static int count_only(void *arg, const struct event *ev, size_t n)
{
	(void)ev;
	*(long *)arg += (long)n;
	return 0;
}

static double cold_start(const char *dir, struct proj *p, unsigned flags, long *count)
{
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	double t0;
	long n = 0;
	int rc;

	if ((rc = evlog_open(&log, dir, EVLOG_RDONLY, 0)))
		die("evlog_open", rc);
	t0 = now_s();
	if (p) {
		if ((rc = evlog_replay(log, 1, 0, flags, proj_apply_batch, proj_prepare, p)))
			die("evlog_replay", rc);
		n = (long)proj_seq(p);
	} else if (flags) {
		if ((rc = evlog_replay(log, 1, 0, 0, count_only, NULL, &n)))
			die("evlog_replay", rc);
	} else {
		if ((rc = evlog_iter_new(log, 1, &it)))
			die("evlog_iter_new", rc);
		while ((rc = evlog_iter_next_event(it, &ev)) == 1)
			n++;
		if (rc < 0)
			die("evlog_iter_next_event", rc);
		evlog_iter_free(it);
	}
	t0 = now_s() - t0;
	evlog_close(log);
	*count = n;
	return (double)n / t0;
}

static void rm_dir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[1024];

	while (d && (e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		unlink(path);
	}
	if (d)
		closedir(d);
	rmdir(dir);
}

/* ---- output ---------------------------------------------------------------------- */

static void print_table(void)
{
	printf("\n%-42s %14s %12s %10s\n", "core", "ours", "goal", "unit");
	for (int i = 0; i < nresults; i++) {
		const struct bench_row *r = &results[i];
		int bytes = strcmp(r->unit, "bytes") == 0;
		char g[32];
		int miss = r->goal > 0 && (bytes ? r->ours > r->goal : r->ours < r->goal);

		if (r->goal > 0)
			snprintf(g, sizeof g, "%s%.0f", bytes ? "<= " : ">= ", r->goal);
		else
			snprintf(g, sizeof g, "-");
		printf("%-42s %14.0f %12s %10s%s\n", r->name, r->ours, g, r->unit,
		       miss ? "  MISSES GOAL" : "");
	}
}

/*
 * The cold-start child: forked first, it waits for the parent to write the
 * log, rebuilds the projection from it and sends back events/s and count.
 */
struct child {
	pid_t pid;
	int go, result;       /* pipe ends held by the parent */
};

static void child_start(struct child *c, const char *dir, unsigned flags)
{
	int go[2], res[2];

	if (pipe(go) || pipe(res))
		die("pipe", CL_EIO);
	fflush(NULL);
	c->pid = fork();
	if (c->pid < 0)
		die("fork", CL_EIO);
	if (c->pid == 0) {
		double out[2] = { 0, 0 };
		char b;
		long n = 0;
		struct proj *p;

		close(go[1]);
		close(res[0]);
		if (read(go[0], &b, 1) == 1 && b == 'g') {
			p = proj_new();
			out[0] = cold_start(dir, p, flags, &n);
			out[1] = proj_seq(p) == (uint64_t)n ? (double)n : -1;
			if (write(res[1], out, sizeof out) != (ssize_t)sizeof out)
				_exit(1);
		}
		_exit(0);   /* the OS frees p: exiting is what a server would do too */
	}
	close(go[0]);
	close(res[1]);
	c->go = go[1];
	c->result = res[0];
}

/* Run the child's rebuild now; returns events/s, *count the events applied. */
static double child_run(struct child *c, long *count)
{
	double out[2] = { 0, -1 };
	int status;

	if (write(c->go, "g", 1) != 1 || read(c->result, out, sizeof out) != (ssize_t)sizeof out)
		die("cold-start child", CL_EIO);
	close(c->go);
	close(c->result);
	waitpid(c->pid, &status, 0);
	*count = (long)out[1];
	return out[0];
}

int main(int argc, char **argv)
{
	const char *json = NULL, *base = getenv("CL_BENCH_TMP");
	char root[512], dir[600];
	long nevents = 1000000, n1, n2, n3, n4;
	double with_apply, serial, scan_only, scan_replay;
	struct child child, child_serial;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") && i + 1 < argc) {
			json = argv[++i];
		} else if (!strcmp(argv[i], "--dir") && i + 1 < argc) {
			base = argv[++i];
		} else if (!strcmp(argv[i], "--events") && i + 1 < argc) {
			nevents = atol(argv[++i]);
			if (nevents < 1000 || nevents > 100000000) {
				fprintf(stderr, "core_bench: --events in [1000, 1e8]\n");
				return 2;
			}
		} else {
			fprintf(stderr, "usage: core_bench [--json FILE] [--dir DIR] [--events N]\n");
			return 2;
		}
	}
	snprintf(root, sizeof root, "%s/clcore.XXXXXX", base ? base : "/var/tmp");
	if (!mkdtemp(root)) {
		fprintf(stderr, "core_bench: mkdtemp %s: %s\n", root, strerror(errno));
		return 1;
	}
	snprintf(dir, sizeof dir, "%s/log", root);
	child_start(&child, dir, 0);
	child_start(&child_serial, dir, EVLOG_REPLAY_SERIAL);
	mk_text();
	printf("core_bench: data in %s, %ld events\n", root, nevents);
	fflush(stdout);

	bench_memory(500000);
	bench_queries();
	bench_search();

	build_log(dir, nevents);
	scan_only = cold_start(dir, NULL, 0, &n1);       /* also warms the page cache */
	scan_only = cold_start(dir, NULL, 0, &n1);
	scan_replay = cold_start(dir, NULL, 1, &n3);
	with_apply = child_run(&child, &n2);
	serial = child_run(&child_serial, &n4);
	if (n1 != nevents || n2 != nevents || n3 != nevents || n4 != nevents)
		die("cold start read a different count", CL_ECORRUPT);
	add("cold start: read+decode+hash+apply", "events/s", with_apply, 2000000);
	add("  same on one thread", "events/s", serial, -1);
	add("  scan without apply, one thread", "events/s", scan_only, -1);
	add("  scan without apply, chain on 2nd thread", "events/s", scan_replay, -1);
	fprintf(stderr, "  cold start: %ld events, apply share %.0f ns/event (one thread)\n", n2,
		1e9 / serial - 1e9 / scan_only);

	print_table();
	rm_dir(dir);
	rmdir(root);
	if (json && bench_json_append(json, results, nresults) != 0) {
		fprintf(stderr, "core_bench: cannot write %s\n", json);
		return 1;
	}
	return 0;
}
