/*
 * test_net_pages.c - pages of getChangelogEntries in net/proto.c
 * (proto_page): the reply frame, made in place from the entry texts, says
 * byte for byte what jansson writes for the envelope around proj_query's
 * result (with and without an id, and the seed's bare array); a page that
 * needs more new entry text than a batch may make waits (r->waiting) and
 * comes whole after enough batches; a request without a session ends
 * early as a partial page instead; once a batch's pages have done their
 * work, a later page of a session waits for the next batch.
 */
#include "harness.h"
#include "../../net/proto.h"

#include <stdlib.h>

#define EPOCH "00112233445566778899aabbccddeeff"

static struct proj *build(int n, size_t body_n)
{
	struct proj *p = proj_new();
	char *body = malloc(body_n + 1), title[32];
	struct event ev;

	memset(body, 'a', body_n);
	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.seq = 1;
	ev.ids.user = 1;
	ev.name = (struct cl_str){ "alice", 5 };
	ev.role = ROLE_ADMIN;
	CHECK_EQ_INT(proj_apply(p, &ev), 0);
	for (int i = 1; i <= n; i++) {
		memset(&ev, 0, sizeof ev);
		ev.type = EV_ENTRY_CREATED;
		ev.seq = proj_seq(p) + 1;
		ev.ts = 1790000000000000LL + i;
		ev.actor = 1;
		ev.ids.entry = (uint64_t)i;
		ev.title = (struct cl_str){ title, (size_t)snprintf(title, sizeof title, "t\"%d", i) };
		ev.body = (struct cl_str){ body, body_n };
		ev.kind = KIND_FIX;
		CHECK_EQ_INT(proj_apply(p, &ev), 0);
	}
	free(body);
	return p;
}

static void ctx_init(struct proto_ctx *c, struct proj *p)
{
	memset(c, 0, sizeof *c);
	proto_init(c);
	c->proj = p;
	c->epoch = EPOCH;
	c->committed = proj_seq(p);
}

/* What the reply to msg must be: the envelope around proj_query's result. */
static char *expected(struct proj *p, const char *msg)
{
	json_t *m = json_loads(msg, 0, NULL), *res = NULL, *env;
	struct cl_fail fail;
	char *s;

	if (!m)
		abort();
	if (json_object_get(m, "stored_query_name")) {
		res = proj_seed_entries(p);
		s = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	} else {
		CHECK_EQ_INT(proj_query(p, "getChangelogEntries", json_object_get(m, "params"), NULL,
					&res, &fail), 0);
		env = json_pack("{s:b,s:s,s:I,s:O}", "ok", 1, "epoch", EPOCH, "at",
				(json_int_t)proj_seq(p), "result", res);
		if (json_object_get(m, "id")) {
			json_t *withid = json_pack("{s:O}", "id", json_object_get(m, "id"));

			json_object_update(withid, env);
			json_decref(env);
			env = withid;
		}
		s = json_dumps(env, JSON_COMPACT);
		json_decref(env);
	}
	json_decref(res);
	json_decref(m);
	return s;
}

static int frame_is(const struct req *r, const char *want)
{
	int ok = r->frame && r->frame->len == strlen(want) &&
		 memcmp(r->frame->data, want, r->frame->len) == 0 && r->frame->data[r->frame->len] == 0;

	if (!ok)
		fprintf(stderr, "  want %.160s\n  got  %.*s\n", want,
			r->frame ? (int)(r->frame->len < 160 ? r->frame->len : 160) : 4,
			r->frame ? (const char *)r->frame->data : "none");
	return ok;
}

static struct req *exec(struct proto_ctx *c, const char *msg, struct sess *ss)
{
	struct req *r = req_parse(msg, strlen(msg));

	if (!r)
		abort();
	r->sess = ss;
	CHECK_EQ_INT(proto_exec(c, r, NULL), 0);
	return r;
}

static void t_page_frames(void)
{
	static const char *const msgs[] = {
		"{\"id\":7,\"op\":\"query\",\"name\":\"getChangelogEntries\"}",
		"{\"id\":\"a\\\"b\",\"op\":\"query\",\"name\":\"getChangelogEntries\","
		"\"params\":{\"limit\":3,\"count\":true}}",
		"{\"op\":\"query\",\"name\":\"getChangelogEntries\",\"params\":{\"cursor\":5}}",
		"{\"stored_query_name\":\"getChangelogEntries\"}",
		NULL,
	};
	struct proj *p = build(60, 100);
	struct proto_ctx c;

	ctx_init(&c, p);
	for (int pass = 0; pass < 2; pass++) {    /* made, then from the query cache */
		for (int i = 0; msgs[i]; i++) {
			char *want = expected(p, msgs[i]);
			struct req *r = exec(&c, msgs[i], NULL);

			CHECK(frame_is(r, want));
			req_free(r);
			free(want);
		}
	}
	CHECK(c.qc.hits >= 4);
	proto_release(&c);
	proj_free(p);
}

static void t_page_waits_then_comes_whole(void)
{
	static const char msg[] = "{\"id\":1,\"op\":\"query\",\"name\":\"getChangelogEntries\","
				  "\"params\":{\"limit\":100}}";
	struct proj *p = build(100, 32768);   /* 3.3 MB of entry text, none made yet */
	struct proto_ctx c;
	struct sess *ss = (struct sess *)&c;   /* any session: proto only asks if there is one */
	char *want;
	struct req *r;
	int batches = 1;

	ctx_init(&c, p);
	c.ahead = 1;                           /* no query cache: every turn is built */
	want = expected(p, msg);
	proto_batch_begin(&c);
	r = exec(&c, msg, ss);
	while (r->waiting && batches < 200) {
		CHECK(r->frame == NULL && r->reply == NULL);
		proto_reset(r);
		r->held++;
		proto_batch_begin(&c);
		batches++;
		CHECK_EQ_INT(proto_exec(&c, r, NULL), 0);
	}
	/* 512 KiB of new text per batch */
	CHECK(batches >= (int)(3300000 / PROTO_FRESH_BATCH));
	CHECK(batches < 40);
	CHECK(frame_is(r, want));
	CHECK(c.fresh_waits > 0);
	req_free(r);

	/* every text is kept now: the same page in one batch */
	proto_batch_begin(&c);
	r = exec(&c, msg, ss);
	CHECK(!r->waiting);
	CHECK(frame_is(r, want));
	req_free(r);

	/* a second page of the same session in that batch: the batch's pages
	 * have done their work (a 3.3 MB copy) - it waits; without a session
	 * (the HTTP API) it runs */
	r = exec(&c, "{\"op\":\"query\",\"name\":\"getChangelogEntries\","
		 "\"params\":{\"q\":\"no such text\"}}", ss);
	proto_reset(r);
	req_free(r);
	CHECK(c.batch_work >= PROTO_WORK_BATCH);
	r = exec(&c, msg, ss);
	CHECK(r->waiting && !r->frame);
	req_free(r);
	r = exec(&c, msg, NULL);
	CHECK(frame_is(r, want));
	req_free(r);
	free(want);
	proto_release(&c);
	proj_free(p);
}

static void t_page_without_session_ends_early(void)
{
	static const char msg[] = "{\"op\":\"query\",\"name\":\"getChangelogEntries\","
				  "\"params\":{\"limit\":100}}";
	struct proj *p = build(100, 32768);
	struct proto_ctx c;
	json_t *page;
	struct req *r;
	size_t n;

	ctx_init(&c, p);
	proto_batch_begin(&c);
	r = exec(&c, msg, NULL);
	REQUIRE(r->frame != NULL);
	page = json_loadb((const char *)r->frame->data, r->frame->len, 0, NULL);
	REQUIRE(page != NULL);
	n = json_array_size(json_object_get(json_object_get(page, "result"), "entries"));
	CHECK(n >= 1 && n < 100);
	CHECK(json_is_true(json_object_get(json_object_get(page, "result"), "partial")));
	CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(page, "result"),
							"next_cursor")), 100 - (long long)n + 1);
	json_decref(page);
	req_free(r);
	/* shaped by the budget, not the state: not kept; the next batch gets on */
	proto_batch_begin(&c);
	r = exec(&c, msg, NULL);
	page = json_loadb((const char *)r->frame->data, r->frame->len, 0, NULL);
	CHECK(json_array_size(json_object_get(json_object_get(page, "result"), "entries")) > n);
	json_decref(page);
	req_free(r);
	proto_release(&c);
	proj_free(p);
}

int main(void)
{
	RUN(t_page_frames);
	RUN(t_page_waits_then_comes_whole);
	RUN(t_page_without_session_ends_early);
	return harness_done();
}
