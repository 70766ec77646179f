/*
 * test_core_texts.c - core/texts.c and proj_entries_text (core/query.c):
 * a page put together from the entry text cache is byte for byte what
 * jansson writes for proj_query's result, for every filter and sort, cold
 * and warm, and after every kind of event that changes an entry's view;
 * the cache stays within its cap (plus the page being put together); the
 * fresh budget makes a page wait (nothing written, progress kept) or end
 * early (partial, at least one entry, next_cursor visiting every entry
 * once).
 */
#include "harness.h"
#include "../../core/proj.h"

#include <stdlib.h>

static int64_t now_us = 1790000000000000LL;

static void apply(struct proj *p, struct event *ev)
{
	ev->seq = proj_seq(p) + 1;
	ev->ts = (now_us += 1000);
	CHECK_EQ_INT(proj_apply(p, ev), 0);
}

static struct cl_str S(const char *s)
{
	return (struct cl_str){ s, strlen(s) };
}

static void user(struct proj *p, const char *name, int role)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.actor = proj_user_count(p) ? 1 : 0;
	ev.ids.user = proj_user_count(p) + 1;
	ev.name = S(name);
	ev.role = (uint8_t)role;
	apply(p, &ev);
}

static void entry(struct proj *p, uint64_t actor, const char *title, const char *body, int kind)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_CREATED;
	ev.actor = actor;
	ev.ids.entry = proj_entry_count(p) + 1;
	ev.title = S(title);
	ev.body = S(body);
	ev.kind = (uint8_t)kind;
	apply(p, &ev);
}

static void edit(struct proj *p, uint64_t id, const char *title)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_EDITED;
	ev.actor = 1;
	ev.ids.entry = id;
	ev.has_title = 1;
	ev.title = S(title);
	apply(p, &ev);
}

static void status(struct proj *p, uint64_t id, int from, int to)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_STATUS_SET;
	ev.actor = 1;
	ev.ids.entry = id;
	ev.status_from = (uint8_t)from;
	ev.status_to = (uint8_t)to;
	apply(p, &ev);
}

static void comment(struct proj *p, uint64_t entry_id, const char *body)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_COMMENT_ADDED;
	ev.actor = 2;
	ev.ids.comment = proj_comment_count(p) + 1;
	ev.ids.entry = entry_id;
	ev.body = S(body);
	apply(p, &ev);
}

/* A log with text that needs escaping, several kinds, authors and statuses. */
static struct proj *sample(void)
{
	static const char *const bodies[] = {
		"plain", "quote \" and backslash \\ and slash /", "tab\tnewline\nreturn\r",
		"\x01\x1f control", "UTF-8: \xc3\xa9t\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", "",
	};
	struct proj *p = proj_new();
	char title[64];

	user(p, "root", ROLE_ADMIN);
	user(p, "alice", ROLE_MEMBER);
	user(p, "bob", ROLE_MEMBER);
	for (int i = 1; i <= 40; i++) {
		snprintf(title, sizeof title, "Entry %d \"%s\"", i, i % 3 ? "login" : "cache");
		entry(p, 1 + (uint64_t)(i % 3), title, bodies[i % 6], KIND_FIX + i % 3);
	}
	for (int i = 1; i <= 40; i += 4)
		comment(p, (uint64_t)i, "a comment");
	for (int i = 2; i <= 40; i += 5)
		status(p, (uint64_t)i, ST_OPEN, ST_RESOLVED);
	edit(p, 7, "Edited \\ seven");
	return p;
}

static const char *const params_list[] = {
	"{}", "{\"limit\":1}", "{\"limit\":500}", "{\"limit\":7,\"cursor\":30}",
	"{\"status\":\"resolved\"}", "{\"kind\":[\"fix\",\"feature\"],\"count\":true}",
	"{\"author\":\"alice\"}", "{\"author\":\"nobody\"}", "{\"q\":\"LOGIN\"}",
	"{\"q\":\"\\\\\"}", "{\"sort\":\"activity\",\"limit\":9}",
	"{\"sort\":\"activity\",\"cursor\":50,\"count\":true}",
	"{\"created_after\":\"2026-09-21T00:00:00Z\",\"limit\":3}", "{\"cursor\":null}",
	NULL,
};

/* The page as text (seed: the bare array) and as jansson writes proj_query's. */
static void same_as_tree(struct proj *p, const char *params, int seed)
{
	json_t *pj = seed ? NULL : json_loads(params, 0, NULL), *res = NULL;
	struct proj_text out = { NULL, 0, 0 };
	struct cl_fail fail;
	char *want;
	int rc;

	if (seed) {
		res = proj_seed_entries(p);
	} else {
		REQUIRE(pj != NULL);
		CHECK_EQ_INT(proj_query(p, "getChangelogEntries", pj, NULL, &res, &fail), 0);
	}
	REQUIRE(res != NULL);
	want = json_dumps(res, JSON_COMPACT | JSON_ENCODE_ANY);
	rc = proj_entries_text(p, pj, seed, NULL, &out, &fail);
	CHECK_EQ_INT(rc, 0);
	CHECK(out.len == strlen(want) && memcmp(out.p, want, out.len) == 0);
	if (out.len != strlen(want) || memcmp(out.p, want, out.len) != 0)
		fprintf(stderr, "  params %s:\n  want %.200s\n  got  %.*s\n", seed ? "(seed)" : params,
			want, (int)(out.len < 200 ? out.len : 200), out.p);
	free(want);
	free(out.p);
	json_decref(res);
	json_decref(pj);
}

static void all_same(struct proj *p)
{
	for (int i = 0; params_list[i]; i++)
		same_as_tree(p, params_list[i], 0);
	same_as_tree(p, NULL, 1);
}

static void t_text_is_the_tree(void)
{
	struct proj *p = sample();
	struct proj_texts_stats st;

	all_same(p);                      /* cold: every text made */
	proj_texts_stats(p, &st);
	CHECK_EQ_INT(st.made, 40);
	CHECK(st.bytes > 0 && st.hits > 0);
	all_same(p);                      /* warm: every text reused */
	proj_texts_stats(p, &st);
	CHECK_EQ_INT(st.made, 40);
	/* each event that changes an entry's view makes its text stale */
	edit(p, 3, "a new title with \"quotes\"");
	status(p, 4, ST_OPEN, ST_CANCELLED);
	comment(p, 5, "another");
	entry(p, 2, "the newest", "new body", KIND_CHANGE);
	all_same(p);
	proj_texts_stats(p, &st);
	CHECK_EQ_INT(st.made, 44);
	CHECK_EQ_INT(st.n, 41);           /* a new entry; a changed entry's text is replaced ... */
	CHECK_EQ_INT(st.evicted, 0);      /* ... not evicted */
	/* bad params: the same refusal as proj_query */
	{
		json_t *bad = json_pack("{s:s}", "sort", "sideways");
		struct proj_text out = { NULL, 0, 0 };
		struct cl_fail f1, f2;
		json_t *res = NULL;

		CHECK(proj_query(p, "getChangelogEntries", bad, NULL, &res, &f1) < 0);
		CHECK(proj_entries_text(p, bad, 0, NULL, &out, &f2) < 0);
		CHECK_EQ_INT(f1.code, f2.code);
		CHECK(strcmp(f1.message, f2.message) == 0);
		CHECK_EQ_INT(out.len, 0);
		json_decref(bad);
		free(out.p);
	}
	proj_free(p);
}

static void t_cache_is_bounded(void)
{
	struct proj *p = sample();
	struct proj_texts_stats st;
	char params[64];

	proj_texts_max(p, 2000);          /* a few texts */
	for (int c = 41; c >= 2; c -= 3) {
		snprintf(params, sizeof params, "{\"limit\":5,\"cursor\":%d}", c);
		same_as_tree(p, params, 0);
		proj_texts_stats(p, &st);
		/* the cap, plus at most the page being put together (5 entries) */
		CHECK(st.bytes <= 2000 + 5 * 300);
	}
	same_as_tree(p, "{\"limit\":40}", 0);   /* one page bigger than the cap */
	proj_texts_stats(p, &st);
	CHECK(st.bytes <= 2000);                 /* trimmed once it was written */
	CHECK(st.bytes > 0);
	CHECK(st.evicted > 0);
	CHECK_EQ_INT(st.made, st.n + st.evicted);   /* no entry changed: held or evicted */
	same_as_tree(p, "{\"limit\":1}", 0);    /* warm: nothing made, nothing dropped */
	proj_texts_max(p, 0);
	proj_texts_stats(p, &st);
	CHECK_EQ_INT(st.bytes, 0);
	CHECK_EQ_INT(st.n, 0);
	CHECK_EQ_INT(st.made, st.evicted);
	all_same(p);
	proj_free(p);
}

static int has_key(const char *text, const char *key)
{
	return strstr(text, key) != NULL;
}

static void t_fresh_budget(void)
{
	struct proj *p = sample();
	json_t *pj = json_pack("{s:i}", "limit", 40), *res = NULL;
	struct proj_text out = { NULL, 0, 0 };
	struct cl_fail fail;
	char *want;
	int calls = 0, unready, seen[41] = { 0 };
	uint64_t left;

	CHECK_EQ_INT(proj_query(p, "getChangelogEntries", pj, NULL, &res, &fail), 0);
	want = json_dumps(res, JSON_COMPACT);
	json_decref(res);
	/* waiting: each call makes ~500 bytes of texts, then says "not yet" */
	do {
		struct proj_qctx q = { .fresh_left = &left, .unready = &unready };

		left = 500;
		unready = 0;
		out.len = 0;
		CHECK_EQ_INT(proj_entries_text(p, pj, 0, &q, &out, &fail), 0);
		if (unready)
			CHECK_EQ_INT(out.len, 0);
		calls++;
	} while (unready && calls < 100);
	CHECK(!unready);
	CHECK(calls > 3 && calls < 40);   /* it went on where it left each time */
	CHECK(out.len == strlen(want) && memcmp(out.p, want, out.len) == 0);
	free(want);

	/* ending early: no texts kept, a budget of 0 bytes: one entry per page,
	 * partial, and next_cursor visits every entry once */
	proj_texts_max(p, 0);
	for (long long cursor = 0, pages = 0; pages < 100; pages++) {
		int fresh_cut = 0;
		struct proj_qctx q = { .fresh_left = &left, .fresh_cut = &fresh_cut };
		json_t *page, *next, *e;
		json_t *cp = cursor ? json_pack("{s:i,s:I}", "limit", 40, "cursor", (json_int_t)cursor)
				    : json_pack("{s:i}", "limit", 40);
		size_t i;

		proj_texts_max(p, 0);
		left = 0;
		out.len = 0;
		CHECK_EQ_INT(proj_entries_text(p, cp, 0, &q, &out, &fail), 0);
		page = json_loadb(out.p, out.len, 0, NULL);
		REQUIRE(page != NULL);
		CHECK(json_array_size(json_object_get(page, "entries")) >= 1);
		json_array_foreach(json_object_get(page, "entries"), i, e) {
			long long id = json_integer_value(json_object_get(e, "id"));

			CHECK(id >= 1 && id <= 40);
			if (id >= 1 && id <= 40)
				seen[id]++;
		}
		next = json_object_get(page, "next_cursor");
		if (json_is_null(next)) {
			CHECK(!has_key(out.p, "\"partial\""));
			json_decref(page);
			json_decref(cp);
			break;
		}
		CHECK(fresh_cut);
		CHECK(json_is_true(json_object_get(page, "partial")));
		cursor = json_integer_value(next);
		json_decref(page);
		json_decref(cp);
	}
	for (int id = 1; id <= 40; id++)
		CHECK_EQ_INT(seen[id], 1);

	/* the seed's array cannot be partial: it is made whole */
	{
		struct proj_qctx q = { .fresh_left = &left };
		json_t *arr = proj_seed_entries(p);
		char *w = json_dumps(arr, JSON_COMPACT | JSON_ENCODE_ANY);

		proj_texts_max(p, 0);
		left = 0;
		out.len = 0;
		CHECK_EQ_INT(proj_entries_text(p, NULL, 1, &q, &out, &fail), 0);
		CHECK(out.len == strlen(w) && memcmp(out.p, w, out.len) == 0);
		free(w);
		json_decref(arr);
	}
	free(out.p);
	json_decref(pj);
	proj_free(p);
}

/* An entry's size bound follows an edit of its text (its measure is kept). */
static void t_size_after_edit(void)
{
	struct proj *p = sample();
	json_t *pj = json_pack("{s:i,s:i}", "limit", 1, "cursor", 8), *res;
	uint64_t before = 0, after = 0;
	struct proj_qctx q = { .size = &before };
	struct cl_fail fail;

	CHECK_EQ_INT(proj_query(p, "getChangelogEntries", pj, &q, &res, &fail), 0);
	json_decref(res);
	edit(p, 7, "\"\"\"\"\"\"\"\"\"\"");   /* 10 quotes: 22 bytes as JSON */
	q.size = &after;
	CHECK_EQ_INT(proj_query(p, "getChangelogEntries", pj, &q, &res, &fail), 0);
	json_decref(res);
	/* "Edited \\ seven" was 14 bytes, 17 as JSON */
	CHECK_EQ_INT((long long)after - (long long)before, 22 - 17);
	json_decref(pj);
	proj_free(p);
}

int main(void)
{
	RUN(t_text_is_the_tree);
	RUN(t_cache_is_bounded);
	RUN(t_fresh_budget);
	RUN(t_size_after_edit);
	return harness_done();
}
