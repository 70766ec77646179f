/*
 * page_bench.c - what one getChangelogEntries page costs the server's CPU,
 * without the client: issue 21's "server CPU per cached page of 50
 * entries" and issue 15's big pages (docs/benchmarks.md, "Pages").
 *
 * Not a test: it asserts nothing, it prints figures. CPU time of this
 * process (CLOCK_PROCESS_CPUTIME_ID), so other jobs on the machine slow
 * it less than they slow a wall clock.
 *  1. 1,000 entries (title ~40 B, body ~200 B), the default page (the 50
 *     newest), through the server's own code: req_parse, proto_exec (the
 *     query cache, the reply frame with the request's id), req_free. Once
 *     answered from the query cache (what a reader of an unchanged log
 *     gets), once with the cache bypassed (the page put together from the
 *     entry text cache), and, for comparison, the page as it used to be
 *     made: proj_query's tree of objects and json_dumps. The TLS record,
 *     the websocket frame and the socket write are not in these figures
 *     (see docs/benchmarks.md for the whole path).
 *  2. 500 entries of 32 KiB, one page of all 500 (16.6 MB): with every
 *     entry's text cached, with none cached (texts made as it goes), and
 *     as a tree + json_dumps.
 *
 *   page_bench [--json FILE]
 */
#include "../../core/proj.h"
#include "../../net/proto.h"
#include "benchjson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_ROWS 8
static struct bench_row rows[MAX_ROWS];
static int nrows;

static void add(const char *name, const char *unit, double ours, double goal)
{
	if (nrows < MAX_ROWS)
		rows[nrows++] = (struct bench_row){ name, unit, ours, -1, goal };
	printf("  %-58s %12.2f %s\n", name, ours, unit);
}

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, int rc)
{
	fprintf(stderr, "page_bench: %s: %s (%d)\n", what, cl_strerror(rc), rc);
	exit(1);
}

static void apply(struct proj *p, struct event *ev)
{
	int rc;

	ev->seq = proj_seq(p) + 1;
	ev->ts = 1790000000000000LL + (int64_t)ev->seq * 1000;
	if ((rc = proj_apply(p, ev)))
		die("proj_apply", rc);
}

/* A projection with one admin and n entries of the given body size. */
static struct proj *build(int n, size_t body_n)
{
	struct proj *p = proj_new();
	char *body = malloc(body_n + 1), title[64];
	struct event ev;

	if (!p || !body)
		die("build", CL_ENOMEM);
	for (size_t i = 0; i < body_n; i++)
		body[i] = body_n > 1000 ? 'a' : "Fixed the login cache timeout. "[i % 31];
	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.ids.user = 1;
	ev.name = (struct cl_str){ "alice", 5 };
	ev.role = ROLE_ADMIN;
	apply(p, &ev);
	for (int i = 1; i <= n; i++) {
		memset(&ev, 0, sizeof ev);
		ev.type = EV_ENTRY_CREATED;
		ev.actor = 1;
		ev.ids.entry = (uint64_t)i;
		ev.title = (struct cl_str){ title, (size_t)snprintf(title, sizeof title,
				"Fix the dashboard export timeout #%d", i) };
		ev.body = (struct cl_str){ body, body_n };
		ev.kind = KIND_FIX;
		apply(p, &ev);
	}
	free(body);
	return p;
}

/*
 * µs of CPU per request: msg parsed, run (from the query cache when cache),
 * freed; cold: every entry text dropped before each request (untimed).
 */
static double per_request(struct proj *p, const char *msg, int cache, int cold, size_t *len)
{
	struct proto_ctx pc;
	double t0, t;
	long n = 0;

	memset(&pc, 0, sizeof pc);
	proto_init(&pc);
	pc.proj = p;
	pc.epoch = "00112233445566778899aabbccddeeff";
	pc.committed = proj_seq(p);
	pc.ahead = !cache;   /* a projection ahead of the log bypasses the query cache */
	t = 0;
	do {
		for (int i = 0; i < 256; i++, n++) {
			struct req *r;
			int rc;

			if (cold)
				proj_texts_max(p, 0);
			t0 = cpu_s();
			if (!(r = req_parse(msg, strlen(msg))))
				die("req_parse", CL_ENOMEM);
			proto_batch_begin(&pc);
			if ((rc = proto_exec(&pc, r, NULL)) || !r->frame)
				die("proto_exec", rc ? rc : CL_EINVAL);
			*len = r->frame->len;
			req_free(r);
			t += cpu_s() - t0;
		}
	} while (t < 1.0);
	proto_release(&pc);
	return t / (double)n * 1e6;
}

/* ms of CPU per page of the 500 newest: as text, from the texts kept (or,
 * cold, with every text dropped first, untimed), or as a tree. */
static double big_page(struct proj *p, int tree, int cold, size_t *len)
{
	json_t *params = json_pack("{s:i}", "limit", 500);
	double t0, t = 0;
	long n = 0;

	do {
		struct cl_fail fail;
		int rc;

		if (cold)
			proj_texts_max(p, 0);
		t0 = cpu_s();

		if (tree) {
			json_t *res = NULL;
			char *text;

			if ((rc = proj_query(p, "getChangelogEntries", params, NULL, &res, &fail)))
				die(fail.message, rc);
			if (!(text = json_dumps(res, JSON_COMPACT)))
				die("json_dumps", CL_ENOMEM);
			*len = strlen(text);
			free(text);
			json_decref(res);
		} else {
			struct proj_text out = { NULL, 0, 0 };

			if ((rc = proj_entries_text(p, params, 0, NULL, &out, &fail)))
				die(fail.message, rc);
			*len = out.len;
			free(out.p);
		}
		n++;
		t += cpu_s() - t0;
	} while (t < 1.5);
	json_decref(params);
	return t / (double)n * 1e3;
}

int main(int argc, char **argv)
{
	static const char msg[] = "{\"id\":7,\"op\":\"query\",\"name\":\"getChangelogEntries\"}";
	const char *json = NULL;
	struct proj *p;
	size_t len = 0;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0 && i + 1 < argc) {
			json = argv[++i];
		} else {
			fprintf(stderr, "usage: page_bench [--json FILE]\n");
			return 2;
		}
	}
	printf("page_bench: CPU time per page\n");
	p = build(1000, 200);
	add("cached getChangelogEntries page of 50 (proto, no TLS)", "us",
	    per_request(p, msg, 1, 0, &len), 5);
	printf("    (reply frame %zu bytes)\n", len);
	add("  the same page, query cache bypassed (entry texts)", "us",
	    per_request(p, msg, 0, 0, &len), -1);
	add("  ... no entry texts kept either (made every time)", "us",
	    per_request(p, msg, 0, 1, &len), -1);
	proj_free(p);

	p = build(500, 32768);
	add("page of 500 x 32 KiB, entry texts cached", "ms", big_page(p, 0, 0, &len), -1);
	printf("    (page %zu bytes)\n", len);
	add("  the same, no entry texts kept (made every time)", "ms", big_page(p, 0, 1, &len),
	    -1);
	add("  the same as a jansson tree + json_dumps (before)", "ms", big_page(p, 1, 0, &len),
	    -1);
	proj_free(p);
	if (json && bench_json_append(json, rows, nrows)) {
		fprintf(stderr, "page_bench: cannot write %s\n", json);
		return 1;
	}
	return 0;
}
