/*
 * test_core_proj.c - core/proj.c and core/query.c: proj_apply refuses every
 * impossible event and leaves the state untouched; the stored queries with
 * their filters, paging and refusals; proj_check catches broken state; a
 * seeded random run of 100k commands rebuilt from the encoded events answers
 * every query with the same bytes; the v1 upcaster through apply.
 */
#include "harness.h"
#include "../../core/cmd.h"
#include "../../core/proj_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

/* ---- a recorded log: every applied event, encoded ------------------------ */

struct rec {
	struct ev_buf *bufs;
	size_t n, cap;
};

static void rec_add(struct rec *r, const struct event *ev)
{
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->bufs = realloc(r->bufs, r->cap * sizeof *r->bufs);
	}
	ev_buf_init(&r->bufs[r->n]);
	CHECK_EQ_INT(ev_encode(ev, &r->bufs[r->n]), 0);
	r->n++;
}

static void rec_free(struct rec *r)
{
	for (size_t i = 0; i < r->n; i++)
		ev_buf_release(&r->bufs[i]);
	free(r->bufs);
	memset(r, 0, sizeof *r);
}

/* proj_qctx loader over a recording: decode and convert, as the server does. */
static int rec_load(void *arg, uint64_t seq, json_t **out)
{
	struct rec *r = arg;
	struct event ev;
	int rc;

	if (seq < 1 || seq > r->n)
		return CL_ENOTFOUND;
	rc = ev_decode(r->bufs[seq - 1].data, r->bufs[seq - 1].len, &ev);
	if (rc)
		return rc;
	ev.seq = seq;
	*out = ev_to_json(&ev);
	return *out ? 0 : CL_ENOMEM;
}

/* ---- fixture ------------------------------------------------------------------ */

struct fx {
	struct proj *p;
	struct rec rec;
	int64_t now;
	unsigned tokens;
	uint8_t hash[EV_HASH_LEN];
	char token[32];
};

static int fx_apply(struct fx *f, struct event *ev)
{
	int rc;

	ev->seq = proj_seq(f->p) + 1;
	rc = proj_apply(f->p, ev);
	if (rc == 0)
		rec_add(&f->rec, ev);
	return rc;
}

/* Run a command; on success apply and record its events. Returns the code. */
static int fx_cmd(struct fx *f, uint64_t actor, const char *op, json_t *params)
{
	struct cmd_ctx ctx = { .actor = actor, .now = (f->now += 1000) };
	struct cmd_result res;
	int rc;

	f->tokens++;
	memset(f->hash, 0, sizeof f->hash);
	memcpy(f->hash, &f->tokens, sizeof f->tokens);
	snprintf(f->token, sizeof f->token, "clg_t%u", f->tokens);
	ctx.new_token = f->token;
	ctx.new_token_hash = f->hash;
	rc = cmd_exec(f->p, op, params, &ctx, &res);
	if (rc == 0) {
		for (size_t i = 0; i < res.n; i++)
			CHECK_EQ_INT(fx_apply(f, &res.ev[i]), 0);
		rc = CMD_OK;
	} else {
		CHECK_EQ_INT(res.n, 0);
		rc = res.fail.code;
	}
	cmd_result_release(&res);
	json_decref(params);
	return rc;
}

static void sys_user(struct fx *f, const char *name, int role)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.ts = (f->now += 1000);
	ev.ids.user = proj_user_count(f->p) + 1;
	ev.name = (struct cl_str){ name, strlen(name) };
	ev.role = (uint8_t)role;
	CHECK_EQ_INT(fx_apply(f, &ev), 0);
}

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof *f);
	f->p = proj_new();
	f->now = 1790000000000000LL;   /* 2026-09-21 */
}

static void fx_done(struct fx *f)
{
	char why[256] = "";

	CHECK_EQ_INT(proj_check(f->p, why, sizeof why), 0);
	if (why[0])
		fprintf(stderr, "  proj_check: %s\n", why);
	proj_free(f->p);
	rec_free(&f->rec);
}

/* Run a query; returns its code (0 ok) and the result (new ref) in *out. */
static int query(struct proj *p, uint64_t viewer, struct rec *r, const char *name,
		 const char *params, json_t **out)
{
	struct proj_qctx ctx = { .viewer = viewer, .load = rec_load, .arg = r };
	struct cl_fail fail = { 0, "" };
	json_t *pj = params ? json_loads(params, 0, NULL) : NULL, *res = NULL;
	int rc;

	if (params && !pj) {
		harness_fail(__FILE__, __LINE__, "test JSON parses");
		return -1;
	}
	rc = proj_query(p, name, pj, &ctx, &res, &fail);
	json_decref(pj);
	if (out)
		*out = res;
	else
		json_decref(res);
	if (rc < 0) {
		CHECK(res == NULL);
		CHECK(fail.message[0] != '\0');
		return fail.code;
	}
	CHECK(res != NULL);
	return 0;
}

/* Compact, key-sorted text of v (freed by the caller). */
static char *dump(json_t *v)
{
	return v ? json_dumps(v, JSON_SORT_KEYS | JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

/* Text of a query result, or "!code" for a refusal. */
static char *qtext(struct proj *p, uint64_t viewer, struct rec *r, const char *name,
		   const char *params)
{
	json_t *res = NULL;
	int rc = query(p, viewer, r, name, params, &res);
	char *s;

	if (rc) {
		s = malloc(16);
		snprintf(s, 16, "!%d", rc);
		return s;
	}
	s = dump(res);
	json_decref(res);
	return s;
}

/* Everything the queries can say about p, as one string (for comparisons). */
static char *snapshot(struct proj *p, struct rec *r)
{
	size_t cap = 1 << 16, len = 0;
	char *all = malloc(cap), params[96];
	uint64_t cursor = 0;

	all[0] = '\0';
#define ADD(s) do { char *s_ = (s); size_t n_ = strlen(s_); \
	while (len + n_ + 2 > cap) all = realloc(all, cap *= 2); \
	memcpy(all + len, s_, n_); len += n_; all[len++] = '\n'; all[len] = '\0'; free(s_); } while (0)
	ADD(qtext(p, 0, r, "getStats", NULL));
	ADD(qtext(p, 0, r, "getUsers", NULL));
	for (;;) {   /* every page of entries */
		json_t *res = NULL, *next;

		if (cursor)
			snprintf(params, sizeof params, "{\"limit\":500,\"cursor\":%llu}",
				 (unsigned long long)cursor);
		else
			snprintf(params, sizeof params, "{\"limit\":500}");
		if (query(p, 0, r, "getChangelogEntries", params, &res) != 0)
			break;
		ADD(dump(res));
		next = json_object_get(res, "next_cursor");
		cursor = json_is_integer(next) ? (uint64_t)json_integer_value(next) : 0;
		json_decref(res);
		if (!cursor)
			break;
	}
	for (uint64_t id = 1; id <= proj_entry_count(p); id++) {
		snprintf(params, sizeof params, "{\"entry\":%llu}", (unsigned long long)id);
		ADD(qtext(p, 0, r, "getEntry", params));
	}
	for (uint64_t id = 1; id <= proj_user_count(p); id++)
		ADD(qtext(p, id, r, "getUnread", NULL));
#undef ADD
	return all;
}

/* ---- apply refusals ----------------------------------------------------------- */

static struct event mk(int type, uint64_t actor)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = (uint32_t)type;
	ev.actor = actor;
	ev.ts = 1790000000000000LL;
	return ev;
}

/* Apply ev (seq = next unless ev->seq is set) and expect CL_ESTATE with no change. */
static void refused(struct fx *f, struct event ev, int line)
{
	char *before = snapshot(f->p, &f->rec), *after;
	uint64_t seq = proj_seq(f->p);
	int rc;

	if (!ev.seq)
		ev.seq = seq + 1;
	rc = proj_apply(f->p, &ev);
	if (rc != CL_ESTATE) {
		fprintf(stderr, "  line %d: proj_apply = %d, want CL_ESTATE\n", line, rc);
		harness_fail(__FILE__, line, "impossible event refused");
	}
	CHECK_EQ_INT(proj_seq(f->p), seq);
	after = snapshot(f->p, &f->rec);
	if (strcmp(before, after) != 0)
		harness_fail(__FILE__, line, "state unchanged after a refusal");
	CHECK_EQ_INT(proj_check(f->p, NULL, 0), 0);
	free(before);
	free(after);
}

#define REFUSED(f, ev) refused((f), (ev), __LINE__)

static void t_apply_refusals(void)
{
	struct fx f;
	struct event ev;
	uint8_t h1[EV_HASH_LEN] = { 1 };

	fx_init(&f);
	sys_user(&f, "root", ROLE_ADMIN);       /* 1 */
	sys_user(&f, "alice", ROLE_MEMBER);     /* 2 */
	sys_user(&f, "bob", ROLE_MEMBER);       /* 3 */
	REQUIRE(fx_cmd(&f, 2, "createEntry", json_pack("{s:s,s:s}", "title", "a", "kind", "fix")) == 0);
	REQUIRE(fx_cmd(&f, 2, "createEntry", json_pack("{s:s,s:s}", "title", "b", "kind", "fix")) == 0);
	REQUIRE(fx_cmd(&f, 3, "addComment", json_pack("{s:i,s:s}", "entry", 1, "body", "c1")) == 0);
	REQUIRE(fx_cmd(&f, 1, "issueToken", json_pack("{s:s}", "user", "bob")) == 0);
	memcpy(h1, f.hash, sizeof h1);   /* token 1's hash */

	/* sequence */
	ev = mk(EV_ENTRY_CREATED, 2);
	ev.ids.entry = 3;
	ev.title = CL_STR("t");
	ev.body = CL_STR("");
	ev.kind = KIND_FIX;
	ev.seq = proj_seq(f.p) + 2;
	REFUSED(&f, ev);
	ev.seq = proj_seq(f.p);
	REFUSED(&f, ev);
	ev.seq = 0;
	/* entry.created: id not next, unknown actor, system actor, bad fields */
	ev.ids.entry = 4;
	REFUSED(&f, ev);
	ev.ids.entry = 2;
	REFUSED(&f, ev);
	ev.ids.entry = 3;
	ev.actor = 9;
	REFUSED(&f, ev);
	ev.actor = 0;
	REFUSED(&f, ev);
	ev.actor = 2;
	ev.kind = 0;
	REFUSED(&f, ev);
	ev.kind = KIND_FEATURE + 1;
	REFUSED(&f, ev);
	ev.kind = KIND_FIX;
	ev.title = CL_STR("");
	REFUSED(&f, ev);
	ev.title = CL_STR("bad \xff utf8");
	REFUSED(&f, ev);
	ev.title = CL_STR("nul\0inside");
	REFUSED(&f, ev);
	ev.title = CL_STR("abcdefghijklmno\0p");      /* NUL in the second word */
	REFUSED(&f, ev);
	ev.title = CL_STR("abcdefghij\xc3");           /* truncated UTF-8 in the tail */
	REFUSED(&f, ev);
	ev.title = CL_STR("abcdefgh\xed\xa0\x80");      /* a surrogate */
	REFUSED(&f, ev);
	ev.title = CL_STR("t");
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);          /* and the good one goes in */

	/* entry.edited */
	ev = mk(EV_ENTRY_EDITED, 2);
	ev.ids.entry = 9;
	ev.has_title = 1;
	ev.title = CL_STR("x");
	REFUSED(&f, ev);                             /* unknown entry */
	ev.ids.entry = 1;
	ev.actor = 3;
	REFUSED(&f, ev);                             /* not the author, not admin */
	ev.actor = 2;
	ev.has_title = 0;
	REFUSED(&f, ev);                             /* changes nothing */
	ev.has_kind = 1;
	ev.kind = 7;
	REFUSED(&f, ev);
	ev.kind = KIND_CHANGE;
	ev.actor = 1;
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);          /* admin may */

	/* entry.status_set */
	ev = mk(EV_ENTRY_STATUS_SET, 2);
	ev.ids.entry = 1;
	ev.status_from = ST_RESOLVED;
	ev.status_to = ST_REOPENED;
	REFUSED(&f, ev);                             /* from is not the current status */
	ev.status_from = ST_OPEN;
	ev.status_to = ST_OPEN;
	REFUSED(&f, ev);
	ev.status_to = ST_REOPENED;
	REFUSED(&f, ev);
	ev.status_to = ST_RESOLVED;
	ev.actor = 3;
	REFUSED(&f, ev);
	ev.actor = 0;
	REFUSED(&f, ev);
	ev.ids.entry = 42;
	ev.actor = 1;
	REFUSED(&f, ev);
	ev.ids.entry = 1;
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);
	/* from resolved only reopened is possible, whatever the actor */
	for (int to = ST_NONE; to <= ST_REOPENED + 1; to++) {
		ev.status_from = ST_RESOLVED;
		ev.status_to = (uint8_t)to;
		if (to != ST_REOPENED)
			REFUSED(&f, ev);
	}

	/* comment.added */
	ev = mk(EV_COMMENT_ADDED, 3);
	ev.ids.comment = 2;
	ev.ids.entry = 2;
	ev.ids.parent = 1;                           /* comment 1 is in entry 1 */
	ev.body = CL_STR("r");
	REFUSED(&f, ev);
	ev.ids.parent = 5;
	REFUSED(&f, ev);
	ev.ids.parent = 0;
	ev.ids.comment = 3;
	REFUSED(&f, ev);
	ev.ids.comment = 1;
	REFUSED(&f, ev);
	ev.ids.comment = 2;
	ev.ids.entry = 77;
	REFUSED(&f, ev);
	ev.ids.entry = 2;
	ev.body = CL_STR("");
	REFUSED(&f, ev);
	ev.body = CL_STR("r");
	ev.actor = 0;
	REFUSED(&f, ev);
	ev.actor = 3;
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);

	/* user.created */
	ev = mk(EV_USER_CREATED, 0);
	ev.ids.user = 4;
	ev.name = CL_STR("alice");
	ev.role = ROLE_MEMBER;
	REFUSED(&f, ev);                             /* duplicate name */
	ev.name = CL_STR("carol");
	ev.ids.user = 5;
	REFUSED(&f, ev);
	ev.ids.user = 4;
	ev.actor = 2;
	REFUSED(&f, ev);                             /* a member may not */
	ev.actor = 0;
	ev.role = 0;
	REFUSED(&f, ev);
	ev.role = ROLE_MEMBER;
	ev.name = CL_STR("car ol");
	REFUSED(&f, ev);
	ev.name = CL_STR("carol");
	ev.actor = 1;
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);

	/* user.role_set */
	ev = mk(EV_USER_ROLE_SET, 2);
	ev.ids.user = 3;
	ev.role = ROLE_ADMIN;
	REFUSED(&f, ev);
	ev.actor = 1;
	ev.ids.user = 10;
	REFUSED(&f, ev);
	ev.ids.user = 3;
	ev.role = 9;
	REFUSED(&f, ev);

	/* token.issued */
	ev = mk(EV_TOKEN_ISSUED, 0);
	ev.ids.user = 3;
	ev.ids.token = 2;
	memcpy(ev.token_hash, h1, sizeof h1);
	REFUSED(&f, ev);                             /* hash already issued */
	ev.token_hash[31] = 0x77;
	ev.ids.token = 3;
	REFUSED(&f, ev);
	ev.ids.token = 2;
	ev.ids.user = 50;
	REFUSED(&f, ev);
	ev.ids.user = 3;
	ev.actor = 3;
	REFUSED(&f, ev);                             /* members cannot issue */
	ev.actor = 0;
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);

	/* token.revoked */
	ev = mk(EV_TOKEN_REVOKED, 2);
	ev.ids.user = 3;
	ev.ids.token = 1;
	REFUSED(&f, ev);                             /* alice, not the owner */
	ev.actor = 3;
	ev.ids.user = 2;
	REFUSED(&f, ev);                             /* wrong owner */
	ev.ids.user = 3;
	ev.ids.token = 7;
	REFUSED(&f, ev);
	ev.ids.token = 1;
	CHECK_EQ_INT(fx_apply(&f, &ev), 0);          /* bob signs out */
	REFUSED(&f, ev);                             /* already revoked */

	/* unknown types */
	REFUSED(&f, mk(EV_NONE, 1));
	REFUSED(&f, mk(EV__COUNT, 1));
	REFUSED(&f, mk(200, 1));
	CHECK_EQ_INT(proj_apply(f.p, NULL), CL_EINVAL);
	fx_done(&f);
}

/* ---- queries --------------------------------------------------------------- */

static long long jint(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static const char *jstrv(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "(none)";
}

/* Ids of a getChangelogEntries result as "5,4,1" (freed by caller). */
static char *ids_of(struct proj *p, const char *params, long long *next)
{
	json_t *res = NULL, *arr, *v;
	char *s = calloc(1, 4096);
	size_t i, len = 0;

	*next = -2;
	if (query(p, 2, NULL, "getChangelogEntries", params, &res) != 0) {
		snprintf(s, 4096, "refused");
		return s;
	}
	arr = json_object_get(res, "entries");
	json_array_foreach(arr, i, v)
		len += (size_t)snprintf(s + len, 4096 - len, "%s%lld", i ? "," : "", jint(v, "id"));
	v = json_object_get(res, "next_cursor");
	*next = json_is_null(v) ? 0 : jint(res, "next_cursor");
	json_decref(res);
	return s;
}

#define CHECK_IDS(p, params, want, want_next) do { long long nx_; \
	char *got_ = ids_of((p), (params), &nx_); \
	if (strcmp(got_, (want)) != 0) { const char *pp_ = (params); fprintf(stderr, "  %s: got [%s] want [%s]\n", pp_ ? pp_ : "null", got_, (want)); } \
	CHECK(strcmp(got_, (want)) == 0); CHECK_EQ_INT(nx_, (want_next)); free(got_); } while (0)

static void build_sample(struct fx *f)
{
	sys_user(f, "root", ROLE_ADMIN);       /* 1 */
	sys_user(f, "alice", ROLE_MEMBER);     /* 2 */
	sys_user(f, "bob", ROLE_MEMBER);       /* 3 */
	/* entries 1..6 */
	fx_cmd(f, 2, "createEntry", json_pack("{s:s,s:s,s:s}", "title", "Login FIX", "body",
					      "users could not log in", "kind", "fix"));
	fx_cmd(f, 3, "createEntry", json_pack("{s:s,s:s}", "title", "New dashboard", "kind",
					      "feature"));
	fx_cmd(f, 2, "createEntry", json_pack("{s:s,s:s,s:s}", "title", "Move DB", "body",
					      "Postgres upgrade; fixes lag", "kind", "change"));
	fx_cmd(f, 3, "createEntry", json_pack("{s:s,s:s}", "title", "Typo", "kind", "fix"));
	fx_cmd(f, 2, "createEntry", json_pack("{s:s,s:s}", "title", "Dark mode", "kind",
					      "feature"));
	fx_cmd(f, 1, "createEntry", json_pack("{s:s,s:s}", "title", "Rotate keys", "kind",
					      "change"));
	/* statuses: 1 resolved, 2 cancelled, 4 resolved->reopened */
	fx_cmd(f, 2, "setStatus", json_pack("{s:i,s:s}", "entry", 1, "status", "resolved"));
	fx_cmd(f, 3, "setStatus", json_pack("{s:i,s:s}", "entry", 2, "status", "cancelled"));
	fx_cmd(f, 1, "setStatus", json_pack("{s:i,s:s}", "entry", 4, "status", "resolved"));
	fx_cmd(f, 3, "setStatus", json_pack("{s:i,s:s}", "entry", 4, "status", "reopened"));
	/* comments on entry 3: 1, 2 (reply to 1), 3, 4 (reply to 2); entry 1: 5 */
	fx_cmd(f, 2, "addComment", json_pack("{s:i,s:s}", "entry", 3, "body", "first"));
	fx_cmd(f, 3, "addComment", json_pack("{s:i,s:i,s:s}", "entry", 3, "parent", 1, "body", "re"));
	fx_cmd(f, 3, "addComment", json_pack("{s:i,s:s}", "entry", 3, "body", "second"));
	fx_cmd(f, 2, "addComment", json_pack("{s:i,s:i,s:s}", "entry", 3, "parent", 2, "body", "re re"));
	fx_cmd(f, 1, "addComment", json_pack("{s:i,s:s}", "entry", 1, "body", "thanks"));
	fx_cmd(f, 2, "editEntry", json_pack("{s:i,s:s}", "entry", 3, "title", "Move DB to PG16"));
	fx_cmd(f, 1, "issueToken", json_pack("{s:s,s:s}", "user", "alice", "label", "ci"));
}

static void t_list_filters(void)
{
	struct fx f;
	char params[160], iso[CL_ISO_LEN + 1];

	fx_init(&f);
	build_sample(&f);
	REQUIRE(proj_entry_count(f.p) == 6);
	CHECK_IDS(f.p, "{}", "6,5,4,3,2,1", 0);
	CHECK_IDS(f.p, NULL, "6,5,4,3,2,1", 0);
	CHECK_IDS(f.p, "{\"status\":\"open\"}", "6,5,3", 0);
	CHECK_IDS(f.p, "{\"status\":[\"resolved\",\"cancelled\"]}", "2,1", 0);
	CHECK_IDS(f.p, "{\"status\":\"reopened\"}", "4", 0);
	CHECK_IDS(f.p, "{\"kind\":\"fix\"}", "4,1", 0);
	CHECK_IDS(f.p, "{\"kind\":[\"feature\",\"change\"]}", "6,5,3,2", 0);
	CHECK_IDS(f.p, "{\"author\":\"alice\"}", "5,3,1", 0);
	CHECK_IDS(f.p, "{\"author\":\"nobody\"}", "", 0);
	CHECK_IDS(f.p, "{\"q\":\"fix\"}", "3,1", 0);      /* title "FIX", body "fixes" */
	CHECK_IDS(f.p, "{\"q\":\"DARK\"}", "5", 0);
	CHECK_IDS(f.p, "{\"q\":\"\"}", "6,5,4,3,2,1", 0);
	CHECK_IDS(f.p, "{\"q\":\"zzz\"}", "", 0);
	CHECK_IDS(f.p, "{\"kind\":\"fix\",\"author\":\"bob\",\"status\":\"reopened\"}", "4", 0);
	/* paging: exact next_cursor, null at the end */
	CHECK_IDS(f.p, "{\"limit\":2}", "6,5", 5);
	CHECK_IDS(f.p, "{\"limit\":2,\"cursor\":5}", "4,3", 3);
	CHECK_IDS(f.p, "{\"limit\":2,\"cursor\":3}", "2,1", 0);
	CHECK_IDS(f.p, "{\"limit\":2,\"cursor\":null}", "6,5", 5);
	CHECK_IDS(f.p, "{\"cursor\":1}", "", 0);
	CHECK_IDS(f.p, "{\"cursor\":1000}", "6,5,4,3,2,1", 0);
	CHECK_IDS(f.p, "{\"limit\":1,\"kind\":\"fix\"}", "4", 4);
	CHECK_IDS(f.p, "{\"limit\":1,\"kind\":\"fix\",\"cursor\":4}", "1", 0);
	/* time bounds (exclusive): entry k was created at the ts of its event */
	{
		struct event ev;
		uint64_t seq3 = 0;

		/* entry 3's creation is the 6th event (3 users first) */
		seq3 = 6;
		REQUIRE(ev_decode(f.rec.bufs[seq3 - 1].data, f.rec.bufs[seq3 - 1].len, &ev) == 0);
		REQUIRE(ev.type == EV_ENTRY_CREATED && ev.ids.entry == 3);
		cl_iso_time(ev.ts, iso);
		snprintf(params, sizeof params, "{\"created_after\":\"%s\"}", iso);
		CHECK_IDS(f.p, params, "6,5,4", 0);
		snprintf(params, sizeof params, "{\"created_before\":\"%s\"}", iso);
		CHECK_IDS(f.p, params, "2,1", 0);
		CHECK_IDS(f.p, "{\"created_after\":\"2000-01-01\",\"created_before\":\"2100-01-01\"}",
			  "6,5,4,3,2,1", 0);
		CHECK_IDS(f.p, "{\"created_after\":\"2100-01-01T00:00:00Z\"}", "", 0);
	}
	/* refusals */
	CHECK_IDS(f.p, "{\"limit\":0}", "refused", -2);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"limit\":0}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"limit\":501}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"limit\":500}", NULL), 0);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"limit\":\"10\"}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"limit\":2.5}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"cursor\":0}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"cursor\":\"5\"}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"status\":\"done\"}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"status\":[]}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"status\":[\"open\",1]}",
			   NULL), CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"kind\":{}}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"author\":3}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"q\":[\"x\"]}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries",
			   "{\"created_after\":\"yesterday\"}", NULL), CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"created_before\":5}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"sort\":\"asc\"}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "[]", NULL), CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntriez", "{}", NULL), CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, NULL, "{}", NULL), CMD_BAD_REQUEST);
	fx_done(&f);
}

static void t_search(void)
{
	static const char *const t[][2] = {
		{ "aaab", "" }, { "xAAB", "" }, { "aa", "b" }, { "b aab", "" }, { "AAB", "" },
		{ "a-a-b", "" }, { "zz", "..AaB" }, { "Caf\xc3\xa9", "" }, { "CAF\xc3\x89", "" },
	};
	struct fx f;

	fx_init(&f);
	sys_user(&f, "alice", ROLE_MEMBER);
	for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
		CHECK_EQ_INT(fx_cmd(&f, 1, "createEntry", json_pack("{s:s,s:s,s:s}", "title",
								    t[i][0], "body", t[i][1],
								    "kind", "fix")), 0);
	CHECK_IDS(f.p, "{\"q\":\"aab\"}", "7,5,4,2,1", 0);
	CHECK_IDS(f.p, "{\"q\":\"AaB\"}", "7,5,4,2,1", 0);
	CHECK_IDS(f.p, "{\"q\":\"aaab\"}", "1", 0);
	CHECK_IDS(f.p, "{\"q\":\"aaaab\"}", "", 0);
	CHECK_IDS(f.p, "{\"q\":\"-a\"}", "6", 0);
	CHECK_IDS(f.p, "{\"q\":\"b\"}", "7,6,5,4,3,2,1", 0);
	CHECK_IDS(f.p, "{\"q\":\"..\"}", "7", 0);
	/* ASCII only: é and É are different bytes */
	CHECK_IDS(f.p, "{\"q\":\"caf\u00e9\"}", "8", 0);
	CHECK_IDS(f.p, "{\"q\":\"caf\"}", "9,8", 0);
	fx_done(&f);
}

/* getChangelogEntries with a work budget; *work gets the work counted. */
static json_t *budgeted(struct proj *p, const char *params, uint64_t work_max, uint64_t *work)
{
	struct proj_qctx ctx = { .viewer = 1, .work_max = work_max, .work = work };
	struct cl_fail fail = { 0, "" };
	json_t *pj = json_loads(params, 0, NULL), *res = NULL;

	if (proj_query(p, "getChangelogEntries", pj, &ctx, &res, &fail) != 0)
		fprintf(stderr, "  refused: %s\n", fail.message);
	json_decref(pj);
	return res;
}

/*
 * The work budget (core/proj.h PROJ_QUERY_WORK): the walk stops after the
 * entry where the work reaches the budget and answers a partial page whose
 * next_cursor continues exactly there, so following it finds every match.
 */
static void t_work_budget(void)
{
	enum { N = 20, BODY = 1000 };
	const uint64_t w = PROJ_WORK_ENTRY + 3 + BODY;   /* one entry, title "tNN" */
	static const long long want_next[] = { 16, 11, 6, 0 };
	char body[BODY + 1], title[8], params[64];
	uint64_t work = 0, total = 0;
	long long cursor = 0;
	json_t *res, *arr;
	struct fx f;

	fx_init(&f);
	sys_user(&f, "alice", ROLE_MEMBER);
	for (int i = 1; i <= N; i++) {
		memset(body, 'a', BODY);
		body[BODY] = '\0';
		if (i == 1)
			memcpy(body + 500, "needle", 6);
		snprintf(title, sizeof title, "t%02d", i);
		REQUIRE(fx_cmd(&f, 1, "createEntry", json_pack("{s:s,s:s,s:s}", "title", title,
							       "body", body, "kind", "fix")) == 0);
	}
	/* a budget of 5 entries' worth: pages of 5 examined entries, the one
	 * match (entry 1) on the last, which is complete */
	for (int page = 0; page < 4; page++) {
		if (cursor)
			snprintf(params, sizeof params, "{\"q\":\"NEEDLE\",\"cursor\":%lld}", cursor);
		else
			snprintf(params, sizeof params, "{\"q\":\"NEEDLE\"}");
		work = 0;
		REQUIRE((res = budgeted(f.p, params, 5 * w, &work)) != NULL);
		arr = json_object_get(res, "entries");
		CHECK_EQ_INT(json_is_null(json_object_get(res, "next_cursor")) ? 0 :
			     jint(res, "next_cursor"), want_next[page]);
		CHECK_EQ_INT(json_is_true(json_object_get(res, "partial")), page < 3);
		CHECK_EQ_INT(json_array_size(arr), page == 3);
		if (page == 3 && json_array_size(arr) == 1)
			CHECK_EQ_INT(jint(json_array_get(arr, 0), "id"), 1);
		if (page == 3)   /* a complete page has no "partial" at all */
			CHECK(json_object_get(res, "partial") == NULL);
		CHECK_EQ_INT(work, 5 * w);
		total += work;
		cursor = want_next[page];
		json_decref(res);
	}
	CHECK_EQ_INT(total, N * w);

	/* a title match does not read the body */
	work = 0;
	res = budgeted(f.p, "{\"q\":\"T1\"}", 0, &work);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 10);   /* t10..t19 */
	CHECK_EQ_INT(work, N * (PROJ_WORK_ENTRY + 3) + (N - 10) * BODY);
	json_decref(res);

	/* without q each examined entry counts PROJ_WORK_ENTRY: a filter that
	 * matches nothing stops every 4 entries with an empty partial page */
	work = 0;
	res = budgeted(f.p, "{\"status\":\"resolved\"}", 4 * PROJ_WORK_ENTRY, &work);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 0);
	CHECK_EQ_INT(jint(res, "next_cursor"), 17);
	CHECK(json_is_true(json_object_get(res, "partial")));
	CHECK_EQ_INT(work, 4 * PROJ_WORK_ENTRY);
	json_decref(res);

	/* a full page found before the budget ran out is not partial, even if
	 * the look-ahead for next_cursor then runs out */
	work = 0;
	res = budgeted(f.p, "{\"limit\":2}", 3 * PROJ_WORK_ENTRY, &work);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 2);
	CHECK_EQ_INT(jint(res, "next_cursor"), 19);
	CHECK(json_object_get(res, "partial") == NULL);
	json_decref(res);
	res = budgeted(f.p, "{\"limit\":2,\"status\":\"open\",\"q\":\"t1\"}", w, &work);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 0);
	CHECK(json_is_true(json_object_get(res, "partial")));
	json_decref(res);

	/* the default budget covers this small log in one complete page */
	work = 0;
	res = budgeted(f.p, "{\"q\":\"needle\"}", 0, &work);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 1);
	CHECK(json_object_get(res, "partial") == NULL);
	CHECK_EQ_INT(work, N * w);
	json_decref(res);
	fx_done(&f);
}

/* A budgeted page's ids as "3,1" and its next_cursor (0 when null). */
static char *budget_ids(struct proj *p, const char *params, uint64_t work_max, long long *next,
			int *partial)
{
	uint64_t work = 0;
	json_t *res = budgeted(p, params, work_max, &work), *v;
	char *s = calloc(1, 4096);
	size_t i, len = 0;

	*next = -2;
	*partial = -1;
	if (!res)
		return s;
	json_array_foreach(json_object_get(res, "entries"), i, v)
		len += (size_t)snprintf(s + len, 4096 - len, "%s%lld", len ? "," : "", jint(v, "id"));
	*next = json_is_null(json_object_get(res, "next_cursor")) ? 0 : jint(res, "next_cursor");
	*partial = json_is_true(json_object_get(res, "partial"));
	json_decref(res);
	return s;
}

/*
 * sort "activity": entries by their latest event (entry.* or comment.added),
 * newest first, paged by the seq of that event; partial pages continue
 * exactly; superseded records of the activity index are dropped without
 * changing any answer (proj_check holds the index to the entries).
 */
static void t_sort_activity(void)
{
	struct fx f;
	long long next;
	int partial;
	char params[200], got[4096], *one;

	fx_init(&f);
	build_sample(&f);
	/* latest events: e3 edit (19), e1 comment (18), e4 reopened (13),
	 * e2 cancelled (11), e6 created (9), e5 created (8) */
	CHECK_IDS(f.p, "{\"sort\":\"activity\"}", "3,1,4,2,6,5", 0);
	CHECK_IDS(f.p, "{\"sort\":\"created\"}", "6,5,4,3,2,1", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"limit\":2}", "3,1", 18);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"limit\":2,\"cursor\":18}", "4,2", 11);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"limit\":2,\"cursor\":11}", "6,5", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"cursor\":12}", "2,6,5", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"cursor\":1}", "", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"cursor\":100000}", "3,1,4,2,6,5", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"status\":\"open\"}", "3,6,5", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"author\":\"bob\",\"limit\":1}", "4", 13);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"author\":\"nobody\"}", "", 0);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"sort\":1}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"sort\":\"Activity\"}", NULL),
		     CMD_BAD_REQUEST);
	/* a comment moves its entry to the top; a token event moves nothing */
	fx_cmd(&f, 3, "addComment", json_pack("{s:i,s:s}", "entry", 5, "body", "bump"));
	fx_cmd(&f, 1, "issueToken", json_pack("{s:s}", "user", "bob"));
	CHECK_IDS(f.p, "{\"sort\":\"activity\"}", "5,3,1,4,2,6", 0);

	/* partial pages by activity: a budget of 2 records' worth; following
	 * next_cursor gives exactly the unbudgeted answer */
	got[0] = '\0';
	next = 0;
	for (int page = 0; page < 100; page++) {
		if (next)
			snprintf(params, sizeof params,
				 "{\"sort\":\"activity\",\"kind\":\"fix\",\"cursor\":%lld}", next);
		else
			snprintf(params, sizeof params, "{\"sort\":\"activity\",\"kind\":\"fix\"}");
		one = budget_ids(f.p, params, 2 * PROJ_WORK_ENTRY, &next, &partial);
		if (*one)
			snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s",
				 got[0] ? "," : "", one);
		free(one);
		if (!next)
			break;
		CHECK(partial == 1 || next > 0);
	}
	CHECK(strcmp(got, "1,4") == 0);

	/* many touches of two entries: the superseded records are compacted
	 * away (the array stays bounded) and answers do not change */
	for (int i = 0; i < 3000; i++)
		REQUIRE(fx_cmd(&f, 2, "addComment", json_pack("{s:i,s:s}", "entry", i % 2 ? 2 : 4,
							     "body", "again")) == 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\"}", "2,4,5,3,1,6", 0);
	CHECK_IDS(f.p, "{\"sort\":\"activity\",\"limit\":3}", "2,4,5", 21);   /* e5's bump */
	CHECK(f.p->nact <= 2 * 6 + 1024 + 1);
	{
		char why[200] = "";

		CHECK_EQ_INT(proj_check(f.p, why, sizeof why), 0);
		if (why[0])
			fprintf(stderr, "  %s\n", why);
	}
	fx_done(&f);
}

/* count: true answers "total", the matches whatever the cursor; from the
 * counters when it can, else one walk under its own budget. */
static void t_count(void)
{
	struct fx f;
	json_t *res;
	uint64_t work = 0;

	fx_init(&f);
	build_sample(&f);
#define TOTAL(params, want) do { json_t *r_ = NULL; \
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", (params), &r_), 0); \
	CHECK_EQ_INT(jint(r_, "total"), (want)); \
	CHECK(json_object_get(r_, "total_partial") == NULL); json_decref(r_); } while (0)
	TOTAL("{\"count\":true}", 6);
	TOTAL("{\"count\":true,\"limit\":1,\"cursor\":3}", 6);
	TOTAL("{\"count\":true,\"status\":\"open\"}", 3);
	TOTAL("{\"count\":true,\"status\":[\"open\",\"reopened\"]}", 4);
	TOTAL("{\"count\":true,\"kind\":\"feature\"}", 2);
	TOTAL("{\"count\":true,\"kind\":\"feature\",\"status\":\"open\"}", 1);
	TOTAL("{\"count\":true,\"q\":\"fix\",\"limit\":1}", 2);
	TOTAL("{\"count\":true,\"author\":\"alice\",\"sort\":\"activity\"}", 3);
	TOTAL("{\"count\":true,\"author\":\"nobody\"}", 0);
	TOTAL("{\"count\":true,\"created_after\":\"2100-01-01\"}", 0);
#undef TOTAL
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"count\":\"yes\"}", NULL),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"count\":1}", NULL),
		     CMD_BAD_REQUEST);
	res = NULL;
	CHECK_EQ_INT(query(f.p, 2, NULL, "getChangelogEntries", "{\"count\":false}", &res), 0);
	CHECK(json_object_get(res, "total") == NULL);
	json_decref(res);
	/* the count's walk has its own budget: cut, it says so, with a lower
	 * bound, and its work is counted too */
	res = budgeted(f.p, "{\"count\":true,\"q\":\"o\",\"limit\":1}", 2 * PROJ_WORK_ENTRY + 20,
		       &work);
	CHECK(json_is_true(json_object_get(res, "total_partial")));
	CHECK(jint(res, "total") >= 1 && jint(res, "total") < 6);
	CHECK(work > 2 * PROJ_WORK_ENTRY);
	json_decref(res);
	fx_done(&f);
}

/* getUnread of viewer: the ids listed, as "1,4,2"; and the count. */
static void unread_ids(struct fx *f, uint64_t viewer, char *out, size_t n, long long *count)
{
	json_t *res = NULL, *arr;
	size_t o = 0;

	out[0] = '\0';
	*count = -1;
	if (query(f->p, viewer, &f->rec, "getUnread", NULL, &res) != 0)
		return;
	arr = json_object_get(res, "unread");
	for (size_t i = 0; i < json_array_size(arr) && o < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%s%lld", i ? "," : "",
				      (long long)jint(json_array_get(arr, i), "entry"));
	*count = jint(res, "count");
	json_decref(res);
}

/* read.marked: unread entries are those with others' activity after the
 * user's marks; own activity reads; markRead / markAllRead are refused
 * when they would move nothing on; the per-user bound drops the oldest
 * mark; impossible events are refused. */
static void t_read_marks(void)
{
	struct fx f;
	struct event ev;
	char ids[4096], want[32];
	uint32_t kept;
	long long count;
	json_t *res = NULL;

	fx_init(&f);
	build_sample(&f);
	/* alice (2): e1 (root commented after her), e4, e2 (bob's), e6 (root's);
	 * e3 and e5: her own activity came last */
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "1,4,2,6") == 0 && count == 4);
	unread_ids(&f, 3, ids, sizeof ids, &count);   /* bob: alice's and root's */
	CHECK(strcmp(ids, "3,1,6,5") == 0 && count == 4);
	CHECK_EQ_INT(query(f.p, 0, &f.rec, "getUnread", NULL, &res), CMD_UNAUTHORIZED);
	CHECK_EQ_INT(query(f.p, 2, &f.rec, "getUnread", "{\"limit\":3}", &res), CMD_BAD_REQUEST);

	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i}", "entry", 1)), CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "4,2,6") == 0 && count == 3);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i}", "entry", 1)), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i}", "entry", 3)), CMD_BAD_REQUEST);
	/* e2's latest activity is seq 11: a mark before it is refused */
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i,s:i}", "entry", 2, "upto", 10)),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i,s:i}", "entry", 2, "upto", 9999)),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i,s:i}", "entry", 2, "upto", 0)),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i}", "entry", 99)), CMD_NOT_FOUND);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:s}", "entry", "2")), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{}")), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i,s:i}", "entry", 2, "comment", 1)),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{s:i}", "entry", 2)), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i,s:i}", "entry", 2, "upto", 11)),
		     CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "4,6") == 0 && count == 2);

	/* bob comments on e1: unread for alice again, read for bob */
	CHECK_EQ_INT(fx_cmd(&f, 3, "addComment", json_pack("{s:i,s:s}", "entry", 1, "body", "hm")),
		     CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "1,4,6") == 0 && count == 3);
	unread_ids(&f, 3, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "3,6,5") == 0 && count == 3);
	/* comment edits are not activity */
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s}", "comment", 1, "body", "1st")),
		     CMD_OK);
	unread_ids(&f, 3, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "3,6,5") == 0 && count == 3);

	/* mark all read up to a seq: what came after stays unread */
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{s:i}", "upto", 13)), CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "1") == 0 && count == 1);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{s:i}", "upto", 13)), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{s:i}", "upto", 12)), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{}")), CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "") == 0 && count == 0);
	/* nothing happened since: refused, however often it is asked */
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{}")), CMD_BAD_REQUEST);
	/* the marks themselves are no activity: they cannot feed each other */
	CHECK_EQ_INT(fx_cmd(&f, 3, "markAllRead", json_pack("{}")), CMD_OK);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markAllRead", json_pack("{}")), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 99, "markAllRead", json_pack("{}")), CMD_UNAUTHORIZED);

	/* impossible events */
	ev = mk(EV_READ_MARKED, 2);
	ev.upto = proj_seq(f.p) + 1;      /* itself or later */
	REFUSED(&f, ev);
	ev.upto = 5;
	ev.actor = 9;                      /* nobody */
	REFUSED(&f, ev);
	ev.actor = 0;                      /* the system reads nothing */
	REFUSED(&f, ev);
	ev.actor = 2;
	ev.ids.entry = 77;
	REFUSED(&f, ev);
	ev.ids.entry = 0;
	ev.upto = 0;
	REFUSED(&f, ev);

	/* the bound: bob writes 300 entries, alice reads each one; each time
	 * her list is full its PROJ_READ_DROP oldest marks are dropped, and
	 * those entries show unread again */
	for (int i = 0; i < 300; i++)
		CHECK_EQ_INT(fx_cmd(&f, 3, "createEntry", json_pack("{s:s,s:s}", "title", "t",
								  "kind", "fix")), CMD_OK);
	kept = f.p->users[1].nreads;
	for (int i = 0; i < 300; i++) {
		CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i}", "entry", 7 + i)), CMD_OK);
		if (kept == PROJ_READ_MARKS)
			kept -= PROJ_READ_DROP;
		kept++;
	}
	CHECK(kept > PROJ_READ_MARKS - PROJ_READ_DROP && kept < 300);
	CHECK_EQ_INT(f.p->users[1].nreads, kept);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK_EQ_INT(count, 300 - (long long)kept);
	snprintf(want, sizeof want, "%u,%u,", 6 + 300 - kept, 5 + 300 - kept);
	CHECK(strncmp(ids, want, strlen(want)) == 0);
	fx_done(&f);
}

/* One's own activity is read without a mark: 300 own entries (more than
 * the mark list holds) never show unread to their author, take no mark,
 * and markRead on them has nothing to mark; someone else's later comment
 * makes one unread, and the author's reply after it reads it again. */
static void t_read_own_activity(void)
{
	char ids[4096];
	long long count;
	struct fx f;

	fx_init(&f);
	sys_user(&f, "root", ROLE_ADMIN);       /* 1 */
	sys_user(&f, "alice", ROLE_MEMBER);     /* 2 */
	for (int i = 0; i < 300; i++)
		REQUIRE(fx_cmd(&f, 2, "createEntry", json_pack("{s:s,s:s}", "title", "t", "kind",
								 "fix")) == CMD_OK);
	CHECK_EQ_INT(fx_cmd(&f, 2, "addComment", json_pack("{s:i,s:s}", "entry", 1, "body", "c")),
		     CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK_EQ_INT(count, 0);
	CHECK_EQ_INT(f.p->users[1].nreads, 0);
	CHECK_EQ_INT(fx_cmd(&f, 2, "markRead", json_pack("{s:i}", "entry", 1)), CMD_BAD_REQUEST);
	unread_ids(&f, 1, ids, sizeof ids, &count);   /* root: all 300 */
	CHECK_EQ_INT(count, 300);
	CHECK_EQ_INT(fx_cmd(&f, 1, "addComment", json_pack("{s:i,s:s}", "entry", 7, "body", "r")),
		     CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK(strcmp(ids, "7") == 0 && count == 1);
	CHECK_EQ_INT(fx_cmd(&f, 2, "addComment", json_pack("{s:i,s:s}", "entry", 7, "body", "a")),
		     CMD_OK);
	unread_ids(&f, 2, ids, sizeof ids, &count);
	CHECK_EQ_INT(count, 0);
	CHECK_EQ_INT(proj_check(f.p, NULL, 0), 0);
	fx_done(&f);
}

static int by_upto_entry(const void *a, const void *b)
{
	const struct pread *x = a, *y = b;

	if (x->upto != y->upto)
		return x->upto < y->upto ? -1 : 1;
	return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* A full list drops exactly the PROJ_READ_DROP marks with the smallest upto,
 * the smallest entries among equal uptos, and keeps the rest in entry order:
 * with spread 40, many ties (256 marks over 40 upto values); with a wide
 * spread, uptos the selection (core/read.c, kth_smallest) narrows down in
 * several rounds. */
static void read_marks_drop(uint32_t spread)
{
	struct pread want[PROJ_READ_MARKS + 1];
	const struct puser *u;
	struct event ev;
	struct fx f;
	uint32_t x = 12345, n = 0;

	fx_init(&f);
	sys_user(&f, "root", ROLE_ADMIN);       /* 1 */
	sys_user(&f, "alice", ROLE_MEMBER);     /* 2 */
	for (uint32_t i = 0; i < PROJ_READ_MARKS + 1; i++)
		REQUIRE(fx_cmd(&f, 1, "createEntry", json_pack("{s:s,s:s}", "title", "t", "kind",
								 "fix")) == CMD_OK);
	while (proj_seq(f.p) < 10 + spread) {   /* seqs for the uptos: root's marks */
		ev = mk(EV_READ_MARKED, 1);
		ev.ids.entry = 1;
		ev.seq = proj_seq(f.p) + 1;
		ev.upto = ev.seq - 1;
		REQUIRE(proj_apply(f.p, &ev) == 0);
	}
	for (uint32_t e = PROJ_READ_MARKS; e >= 1; e--) {   /* in reverse: the list shifts */
		ev = mk(EV_READ_MARKED, 2);
		ev.ids.entry = e;
		x = x * 1103515245u + 12345u;
		ev.upto = 10 + ((x >> 16) * 7919u) % spread;
		ev.seq = proj_seq(f.p) + 1;
		REQUIRE(proj_apply(f.p, &ev) == 0);
		want[n++] = (struct pread){ .entry = e, .upto = ev.upto };
	}
	u = &f.p->users[1];
	CHECK_EQ_INT(u->nreads, PROJ_READ_MARKS);
	ev = mk(EV_READ_MARKED, 2);
	ev.ids.entry = PROJ_READ_MARKS + 1;
	ev.upto = 10 + spread / 2;
	ev.seq = proj_seq(f.p) + 1;
	REQUIRE(proj_apply(f.p, &ev) == 0);

	qsort(want, n, sizeof *want, by_upto_entry);
	want[PROJ_READ_DROP - 1] = (struct pread){ .entry = PROJ_READ_MARKS + 1,
						   .upto = 10 + spread / 2 };
	qsort(want + PROJ_READ_DROP - 1, n - PROJ_READ_DROP + 1, sizeof *want, by_upto_entry);
	CHECK_EQ_INT(u->nreads, PROJ_READ_MARKS - PROJ_READ_DROP + 1);
	for (uint32_t i = 0; i < u->nreads; i++) {   /* entry order, the right marks */
		const struct pread *m = &u->reads[i];
		uint32_t k = PROJ_READ_DROP - 1;

		CHECK(i == 0 || m->entry > u->reads[i - 1].entry);
		while (k < n && (want[k].entry != m->entry || want[k].upto != m->upto))
			k++;
		CHECK(k < n);
	}
	CHECK_EQ_INT(proj_check(f.p, NULL, 0), 0);
	fx_done(&f);
}

static void t_read_marks_drop(void)
{
	read_marks_drop(40);
	read_marks_drop(300000);
}

/* comment.edited / comment.deleted: the author or an admin; a tombstone
 * keeps its place and its replies; the entry's version and activity stay;
 * the history lists both; impossible events are refused. */
static void t_comment_edit_delete(void)
{
	struct fx f;
	json_t *res, *tree, *c1, *c2, *c4;
	struct event ev;
	char *before, *big;

	fx_init(&f);
	build_sample(&f);
	REQUIRE(query(f.p, 0, &f.rec, "getEntry", "{\"entry\":3}", &res) == 0);
	before = dump(json_object_get(res, "entry"));
	json_decref(res);
	/* comment 1 (alice) on entry 3; 2 (bob, reply to 1); 4 (alice, reply to 2) */
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s}", "comment", 1, "body",
							  "first, **edited**")), CMD_OK);
	CHECK_EQ_INT(fx_cmd(&f, 3, "editComment", json_pack("{s:i,s:s}", "comment", 1, "body",
							  "not yours")), CMD_FORBIDDEN);
	CHECK_EQ_INT(fx_cmd(&f, 1, "editComment", json_pack("{s:i,s:s}", "comment", 2, "body",
							  "an admin may")), CMD_OK);
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s}", "comment", 1, "body",
							  "first, **edited**")), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s}", "comment", 1, "body", "")),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i}", "comment", 1)), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s}", "comment", 99, "body", "x")),
		     CMD_NOT_FOUND);
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:s,s:s}", "comment", "1", "body", "x")),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s,s:i}", "comment", 1, "body",
							  "x", "entry", 3)), CMD_BAD_REQUEST);
	big = malloc(CL_MAX_COMMENT + 2);
	memset(big, 'x', CL_MAX_COMMENT + 1);
	big[CL_MAX_COMMENT + 1] = '\0';
	CHECK_EQ_INT(fx_cmd(&f, 2, "editComment", json_pack("{s:i,s:s}", "comment", 1, "body", big)),
		     CMD_TOO_LARGE);
	free(big);
	CHECK_EQ_INT(fx_cmd(&f, 2, "deleteComment", json_pack("{s:i}", "comment", 2)), CMD_FORBIDDEN);
	CHECK_EQ_INT(fx_cmd(&f, 3, "deleteComment", json_pack("{s:i}", "comment", 2)), CMD_OK);
	CHECK_EQ_INT(fx_cmd(&f, 3, "deleteComment", json_pack("{s:i}", "comment", 2)), CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 1, "editComment", json_pack("{s:i,s:s}", "comment", 2, "body", "back?")),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(fx_cmd(&f, 3, "deleteComment", json_pack("{}")), CMD_BAD_REQUEST);

	REQUIRE(query(f.p, 0, &f.rec, "getEntry", "{\"entry\":3}", &res) == 0);
	{
		char *now = dump(json_object_get(res, "entry"));

		CHECK(strcmp(before, now) == 0);   /* version, counts, last_activity */
		free(now);
	}
	tree = json_object_get(res, "comments");
	c1 = json_array_get(tree, 0);
	c2 = json_array_get(json_object_get(c1, "replies"), 0);
	c4 = json_array_get(json_object_get(c2, "replies"), 0);
	CHECK(strcmp(jstrv(c1, "body"), "first, **edited**") == 0);
	CHECK(json_is_string(json_object_get(c1, "edited")) && !json_object_get(c1, "deleted"));
	CHECK(jint(c2, "id") == 2 && json_is_true(json_object_get(c2, "deleted")) &&
	      strcmp(jstrv(c2, "body"), "") == 0 && strcmp(jstrv(c2, "author"), "bob") == 0);
	CHECK(jint(c4, "id") == 4 && strcmp(jstrv(c4, "body"), "re re") == 0);
	json_decref(res);
	free(before);

	REQUIRE(query(f.p, 0, &f.rec, "getEntryHistory", "{\"entry\":3}", &res) == 0);
	{
		json_t *evs = json_object_get(res, "events");
		size_t n = json_array_size(evs);

		REQUIRE(n == 9);    /* created, 4 comments, edit, 2 comment edits, delete */
		CHECK(strcmp(jstrv(json_array_get(evs, 6), "type"), "comment.edited") == 0);
		CHECK(strcmp(jstrv(json_array_get(evs, 7), "type"), "comment.edited") == 0);
		CHECK(strcmp(jstrv(json_array_get(evs, 8), "type"), "comment.deleted") == 0);
	}
	json_decref(res);

	/* impossible events: each refused, nothing changes */
	ev = mk(EV_COMMENT_EDITED, 2);
	ev.ids.comment = 1;
	ev.ids.entry = 1;                  /* comment 1 is on entry 3 */
	ev.body = CL_STR("x");
	REFUSED(&f, ev);
	ev.ids.entry = 3;
	ev.actor = 3;                      /* bob: neither author nor admin */
	REFUSED(&f, ev);
	ev.actor = 9;                      /* nobody */
	REFUSED(&f, ev);
	ev.actor = 2;
	ev.ids.comment = 2;                /* deleted */
	REFUSED(&f, ev);
	ev.ids.comment = 50;
	REFUSED(&f, ev);
	ev = mk(EV_COMMENT_DELETED, 3);
	ev.ids.comment = 2;                /* already deleted */
	ev.ids.entry = 3;
	REFUSED(&f, ev);
	ev.ids.comment = 1;                /* alice's, and bob is no admin */
	REFUSED(&f, ev);
	fx_done(&f);
}

/* A log written before the new-name rule: its "--help", "-" and ".." users
 * still apply and pass proj_check (only commands refuse such names). */
static void t_legacy_names_replay(void)
{
	struct fx f;
	struct proj_user_info u;

	fx_init(&f);
	sys_user(&f, "root", ROLE_ADMIN);
	sys_user(&f, "--help", ROLE_MEMBER);
	sys_user(&f, "-", ROLE_MEMBER);
	sys_user(&f, "..", ROLE_ADMIN);
	CHECK_EQ_INT(proj_user_count(f.p), 4);
	CHECK_EQ_INT(proj_user_by_name(f.p, "..", 2, &u), 0);
	CHECK_EQ_INT(u.id, 4);
	CHECK_EQ_INT(fx_cmd(&f, 2, "createEntry", json_pack("{s:s,s:s}", "title", "old", "kind",
							     "fix")), CMD_OK);
	CHECK_EQ_INT(fx_cmd(&f, 1, "createUser", json_pack("{s:s}", "name", "--version")),
		     CMD_BAD_REQUEST);
	fx_done(&f);
}

static void t_entry_shapes(void)
{
	struct fx f;
	json_t *res = NULL, *e, *c, *h, *arr;
	char iso[CL_ISO_LEN + 1];

	fx_init(&f);
	build_sample(&f);
	/* the summary shape, exactly */
	e = proj_entry_json(f.p, 3);
	REQUIRE(e);
	CHECK_EQ_INT(json_object_size(e), 12);
	CHECK_EQ_INT(jint(e, "id"), 3);
	CHECK(strcmp(jstrv(e, "title"), "Move DB to PG16") == 0);
	CHECK(strcmp(jstrv(e, "body"), "Postgres upgrade; fixes lag") == 0);
	CHECK(strcmp(jstrv(e, "kind"), "change") == 0);
	CHECK(strcmp(jstrv(e, "status"), "open") == 0);
	CHECK(strcmp(jstrv(e, "author"), "alice") == 0);
	CHECK_EQ_INT(jint(e, "author_id"), 2);
	CHECK_EQ_INT(jint(e, "version"), 2);
	CHECK_EQ_INT(jint(e, "comments"), 4);
	CHECK_EQ_INT(strlen(jstrv(e, "created")), CL_ISO_LEN);
	/* updated = the edit (the last event touching it), later than created */
	CHECK(strcmp(jstrv(e, "updated"), jstrv(e, "created")) > 0);
	CHECK(strcmp(jstrv(e, "last_activity"), jstrv(e, "updated")) == 0);
	json_decref(e);
	/* entry 1: last activity is its comment, after its status change */
	e = proj_entry_json(f.p, 1);
	REQUIRE(e);
	CHECK(strcmp(jstrv(e, "last_activity"), jstrv(e, "updated")) > 0);
	json_decref(e);
	CHECK(proj_entry_json(f.p, 7) == NULL);
	CHECK(proj_entry_json(f.p, 0) == NULL);
	CHECK(proj_comment_json(f.p, 6) == NULL);
	CHECK(proj_user_json(f.p, 4) == NULL);

	/* comment and user shapes */
	c = proj_comment_json(f.p, 2);
	REQUIRE(c);
	CHECK_EQ_INT(json_object_size(c), 8);
	CHECK_EQ_INT(jint(c, "entry"), 3);
	CHECK_EQ_INT(jint(c, "parent"), 1);
	CHECK(strcmp(jstrv(c, "author"), "bob") == 0);
	CHECK_EQ_INT(jint(c, "depth"), 1);
	json_decref(c);
	c = proj_comment_json(f.p, 1);
	CHECK(json_is_null(json_object_get(c, "parent")));
	json_decref(c);
	c = proj_user_json(f.p, 2);
	cl_iso_time(1790000000000000LL + 2000, iso);
	CHECK(strcmp(jstrv(c, "name"), "alice") == 0 && strcmp(jstrv(c, "role"), "member") == 0 &&
	      strcmp(jstrv(c, "created"), iso) == 0 && json_object_size(c) == 4);
	json_decref(c);

	/* getEntry: tree, each level in id order, status history */
	CHECK_EQ_INT(query(f.p, 2, NULL, "getEntry", "{\"entry\":3}", &res), 0);
	arr = json_object_get(res, "comments");
	REQUIRE(json_array_size(arr) == 2);
	CHECK_EQ_INT(jint(json_array_get(arr, 0), "id"), 1);
	CHECK_EQ_INT(jint(json_array_get(arr, 1), "id"), 3);
	c = json_object_get(json_array_get(arr, 0), "replies");
	REQUIRE(json_array_size(c) == 1);
	CHECK_EQ_INT(jint(json_array_get(c, 0), "id"), 2);
	c = json_object_get(json_array_get(c, 0), "replies");
	REQUIRE(json_array_size(c) == 1);
	CHECK_EQ_INT(jint(json_array_get(c, 0), "id"), 4);
	CHECK_EQ_INT(jint(json_array_get(c, 0), "depth"), 2);
	CHECK_EQ_INT(json_array_size(json_object_get(json_array_get(c, 0), "replies")), 0);
	CHECK_EQ_INT(json_array_size(json_object_get(json_array_get(arr, 1), "replies")), 0);
	CHECK_EQ_INT(json_array_size(json_object_get(json_object_get(res, "entry"),
						     "status_history")), 0);
	json_decref(res);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getEntry", "{\"entry\":4}", &res), 0);
	h = json_object_get(json_object_get(res, "entry"), "status_history");
	REQUIRE(json_array_size(h) == 2);
	e = json_array_get(h, 0);
	CHECK(strcmp(jstrv(e, "from"), "open") == 0 && strcmp(jstrv(e, "to"), "resolved") == 0 &&
	      strcmp(jstrv(e, "by"), "root") == 0 && jint(e, "by_id") == 1 && jint(e, "seq") > 0 &&
	      strlen(jstrv(e, "at")) == CL_ISO_LEN && json_object_size(e) == 6);
	e = json_array_get(h, 1);
	CHECK(strcmp(jstrv(e, "from"), "resolved") == 0 &&
	      strcmp(jstrv(e, "to"), "reopened") == 0 && strcmp(jstrv(e, "by"), "bob") == 0);
	CHECK(strcmp(jstrv(json_object_get(res, "entry"), "status"), "reopened") == 0);
	json_decref(res);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getEntry", "{\"entry\":99}", NULL), CMD_NOT_FOUND);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getEntry", "{\"entry\":\"3\"}", NULL), CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getEntry", "{}", NULL), CMD_BAD_REQUEST);
	CHECK_EQ_INT(query(f.p, 2, NULL, "getEntry", "{\"entry\":3,\"x\":1}", NULL),
		     CMD_BAD_REQUEST);

	/* getEntryHistory: created, edit, comments, in log order, via the loader */
	CHECK_EQ_INT(query(f.p, 2, &f.rec, "getEntryHistory", "{\"entry\":3}", &res), 0);
	CHECK_EQ_INT(jint(res, "entry"), 3);
	arr = json_object_get(res, "events");
	REQUIRE(json_array_size(arr) == 6);
	CHECK(strcmp(jstrv(json_array_get(arr, 0), "type"), "entry.created") == 0);
	CHECK(strcmp(jstrv(json_array_get(arr, 1), "type"), "comment.added") == 0);
	CHECK(strcmp(jstrv(json_array_get(arr, 5), "type"), "entry.edited") == 0);
	for (size_t i = 1; i < 6; i++)
		CHECK(jint(json_array_get(arr, i), "seq") > jint(json_array_get(arr, i - 1), "seq"));
	json_decref(res);
	{   /* without a loader: refused, not crashed */
		struct cl_fail fail;
		json_t *pj = json_pack("{s:i}", "entry", 3);

		CHECK(proj_query(f.p, "getEntryHistory", pj, NULL, &res, &fail) < 0);
		CHECK_EQ_INT(fail.code, CMD_INTERNAL);
		json_decref(pj);
	}
	CHECK_EQ_INT(query(f.p, 2, &f.rec, "getEntryHistory", "{\"entry\":9}", NULL),
		     CMD_NOT_FOUND);
	fx_done(&f);
}

static void t_users_stats(void)
{
	struct fx f;
	json_t *res = NULL, *u, *t;

	fx_init(&f);
	build_sample(&f);
	/* member: no tokens */
	CHECK_EQ_INT(query(f.p, 2, NULL, "getUsers", "{}", &res), 0);
	u = json_object_get(res, "users");
	REQUIRE(json_array_size(u) == 3);
	CHECK(json_object_get(json_array_get(u, 1), "tokens") == NULL);
	CHECK(strcmp(jstrv(json_array_get(u, 1), "name"), "alice") == 0);
	json_decref(res);
	/* admin (and the system): tokens with labels, never hashes */
	CHECK_EQ_INT(query(f.p, 1, NULL, "getUsers", NULL, &res), 0);
	t = json_object_get(json_array_get(json_object_get(res, "users"), 1), "tokens");
	REQUIRE(json_array_size(t) == 1);
	t = json_array_get(t, 0);
	CHECK(jint(t, "id") == 1 && strcmp(jstrv(t, "label"), "ci") == 0 &&
	      json_is_false(json_object_get(t, "revoked")) && json_object_size(t) == 4);
	json_decref(res);
	CHECK_EQ_INT(query(f.p, 0, NULL, "getUsers", NULL, &res), 0);
	CHECK(json_object_get(json_array_get(json_object_get(res, "users"), 0), "tokens"));
	json_decref(res);
	CHECK_EQ_INT(query(f.p, 1, NULL, "getUsers", "{\"all\":true}", NULL), CMD_BAD_REQUEST);

	CHECK_EQ_INT(query(f.p, 3, NULL, "whoami", NULL, &res), 0);
	CHECK(strcmp(jstrv(json_object_get(res, "user"), "name"), "bob") == 0);
	json_decref(res);
	CHECK_EQ_INT(query(f.p, 77, NULL, "whoami", NULL, NULL), CMD_UNAUTHORIZED);
	CHECK_EQ_INT(query(f.p, 0, NULL, "whoami", NULL, NULL), CMD_UNAUTHORIZED);

	CHECK_EQ_INT(query(f.p, 3, NULL, "getStats", "{}", &res), 0);
	{
		char *s = dump(res);

		CHECK(strcmp(s, "{\"by_kind\":{\"change\":2,\"feature\":2,\"fix\":2},"
			     "\"by_status\":{\"cancelled\":1,\"open\":3,\"reopened\":1,\"resolved\":1},"
			     "\"comments\":5,\"entries\":6,\"events\":20,\"users\":3}") == 0);
		if (strstr(s, "\"events\":20,") == NULL)
			fprintf(stderr, "  stats: %s\n", s);
		free(s);
	}
	json_decref(res);
	CHECK_EQ_INT(query(f.p, 3, NULL, "getStats", "{\"x\":1}", NULL), CMD_BAD_REQUEST);
	fx_done(&f);
}

static void t_seed(void)
{
	struct fx f;
	json_t *arr, *res = NULL;
	char *a, *b;

	fx_init(&f);
	sys_user(&f, "alice", ROLE_MEMBER);
	for (int i = 0; i < 520; i++)
		fx_cmd(&f, 1, "createEntry", json_pack("{s:s,s:s}", "title", "t", "kind", "fix"));
	arr = proj_seed_entries(f.p);
	REQUIRE(json_is_array(arr));
	CHECK_EQ_INT(json_array_size(arr), 500);
	CHECK_EQ_INT(jint(json_array_get(arr, 0), "id"), 520);
	CHECK_EQ_INT(jint(json_array_get(arr, 499), "id"), 21);
	/* the same as getChangelogEntries {"limit":500} */
	CHECK_EQ_INT(query(f.p, 1, NULL, "getChangelogEntries", "{\"limit\":500}", &res), 0);
	a = dump(arr);
	b = dump(json_object_get(res, "entries"));
	CHECK(strcmp(a, b) == 0);
	CHECK_EQ_INT(jint(res, "next_cursor"), 21);
	free(a);
	free(b);
	json_decref(res);
	json_decref(arr);
	/* default page is 50 */
	CHECK_EQ_INT(query(f.p, 1, NULL, "getChangelogEntries", NULL, &res), 0);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 50);
	json_decref(res);
	fx_done(&f);
	/* empty projection */
	f.p = proj_new();
	arr = proj_seed_entries(f.p);
	CHECK(json_is_array(arr) && json_array_size(arr) == 0);
	json_decref(arr);
	proj_free(f.p);
}

/* ---- proj_check catches broken state ------------------------------------------- */

static void t_check_detects(void)
{
	struct fx f;
	char why[200];

	fx_init(&f);
	build_sample(&f);
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), 0);
	f.p->comments[3].depth = 5;                      /* comment 4 */
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), CL_ESTATE);
	CHECK(strstr(why, "comment 4") != NULL);
	f.p->comments[3].depth = 2;
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), 0);
	f.p->entries[0].status = ST_OPEN;                /* history says resolved */
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), CL_ESTATE);
	CHECK(strstr(why, "entry 1") != NULL);
	f.p->entries[0].status = ST_RESOLVED;
	f.p->comments[1].entry = 1;                      /* comment 2 moved out of entry 3 */
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), CL_ESTATE);
	f.p->comments[1].entry = 3;
	f.p->by_kind[KIND_FIX]++;
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), CL_ESTATE);
	f.p->by_kind[KIND_FIX]--;
	f.p->entries[2].version++;
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), CL_ESTATE);
	f.p->entries[2].version--;
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), 0);
	fx_done(&f);
}

/* ---- random run, rebuilt from the encoded events ---------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 2685821657736338717ULL;
}

static uint64_t below(uint64_t n)
{
	return n ? rnd() % n : 0;
}

static const char *const kinds[] = { "fix", "change", "feature" };
static const char *const statuses[] = { "open", "resolved", "cancelled", "reopened" };
static const char *const words[] = { "login", "Fix", "cache", "DB", "crash", "UI",
				     "timeout", "docs", "build", "é", "ünïcode", "tls" };

static void random_text(char *out, size_t cap, unsigned maxwords)
{
	size_t len = 0;
	unsigned n = 1 + (unsigned)below(maxwords);

	out[0] = '\0';
	for (unsigned i = 0; i < n && len + 16 < cap; i++)
		len += (size_t)snprintf(out + len, cap - len, "%s%s", i ? " " : "",
					words[below(sizeof words / sizeof words[0])]);
}

/* One random command; about a fifth of them are refused. Returns the code. */
static int random_command(struct fx *f, uint64_t nusers)
{
	uint64_t actor = 1 + below(nusers), ne = proj_entry_count(f->p);
	uint64_t nc = proj_comment_count(f->p);
	char title[128], body[256];
	unsigned op = (unsigned)below(100);
	json_t *params;

	random_text(title, sizeof title, 4);
	random_text(body, sizeof body, 12);
	if (op < 22 || ne == 0) {
		params = json_pack("{s:s,s:s,s:s}", "title", title, "body", body, "kind",
				   kinds[below(3)]);
		if (below(50) == 0)
			json_object_set_new(params, "kind", json_string("bogus"));
		return fx_cmd(f, actor, "createEntry", params);
	}
	if (op < 40) {
		uint64_t e = below(20) ? 1 + below(ne) : ne + 1 + below(5);   /* or a missing one */

		params = json_pack("{s:I}", "entry", (json_int_t)e);
		if (below(2))
			json_object_set_new(params, "title", json_string(title));
		if (below(3) == 0)
			json_object_set_new(params, "body", json_string(body));
		if (below(3) == 0)
			json_object_set_new(params, "kind", json_string(kinds[below(3)]));
		if (below(10) == 0)
			json_object_set_new(params, "expected_version",
					    json_integer(1 + (json_int_t)below(4)));
		if (below(4) == 0)
			actor = 1;               /* admins edit too */
		return fx_cmd(f, actor, "editEntry", params);
	}
	if (op < 65) {
		struct proj_entry_info info;
		uint64_t e = 1 + below(ne);

		if (below(2) == 0 && proj_entry_get(f->p, e, &info) == 0 && below(3))
			actor = below(2) ? info.author : 1;   /* mostly allowed */
		params = json_pack("{s:I,s:s}", "entry", (json_int_t)e, "status",
				   statuses[below(4)]);
		return fx_cmd(f, actor, "setStatus", params);
	}
	if (op < 97 && below(10) == 0) {
		/* read marks: one entry (often refused: nothing unread) or all */
		if (below(4) == 0)
			return fx_cmd(f, actor, "markAllRead", json_pack("{}"));
		return fx_cmd(f, actor, "markRead", json_pack("{s:I}", "entry",
							     (json_int_t)(1 + below(ne))));
	}
	if (op < 97 && nc && below(6) == 0) {
		/* edit or delete a comment: mostly the author's own */
		struct proj_comment_info ci;
		uint64_t c = 1 + below(nc + 1);

		if (proj_comment_get(f->p, c, &ci) == 0 && below(3))
			actor = ci.author;
		if (below(3) == 0)
			return fx_cmd(f, actor, "deleteComment", json_pack("{s:I}", "comment", (json_int_t)c));
		return fx_cmd(f, actor, "editComment",
			      json_pack("{s:I,s:s}", "comment", (json_int_t)c, "body", body));
	}
	if (op < 97) {
		uint64_t e = 1 + below(ne);

		params = json_pack("{s:I,s:s}", "entry", (json_int_t)e, "body", body);
		if (nc && below(3)) {
			/* a reply: usually to a comment of the same entry */
			struct proj_comment_info ci;
			uint64_t parent = 1 + below(nc);

			if (proj_comment_get(f->p, parent, &ci) == 0 && below(5))
				json_object_set_new(params, "entry", json_integer((json_int_t)ci.entry));
			json_object_set_new(params, "parent", json_integer((json_int_t)parent));
		}
		if (below(200) == 0)
			json_object_set_new(params, "body", json_string(""));
		return fx_cmd(f, actor, "addComment", params);
	}
	if (op < 98)
		return fx_cmd(f, 1, "issueToken",
			      json_pack("{s:I,s:s}", "user", (json_int_t)(1 + below(nusers)),
					"label", "rnd"));
	if (op < 99)
		return fx_cmd(f, actor, "revokeToken",
			      json_pack("{s:I}", "token",
					(json_int_t)(1 + below(proj_token_count(f->p) + 1))));
	return fx_cmd(f, 1, "setRole",
		      json_pack("{s:I,s:s}", "user", (json_int_t)(2 + below(nusers - 1)), "role",
				below(2) ? "admin" : "member"));
}

/* proj_prepare in a loop on its own thread until stop is set. */
struct preparer {
	struct proj *p;
	atomic_int stop;
	long worked;
};

static void *prepare_loop(void *arg)
{
	struct preparer *w = arg;

	while (!atomic_load(&w->stop))
		w->worked += proj_prepare(w->p);
	return NULL;
}

/*
 * Rebuild from the recording with proj_apply_batch in batches of 1 to 40
 * events, and proj_prepare either between batches (threaded 0) or looping
 * on a second thread all along (threaded 1), as evlog_replay's reader does.
 */
static struct proj *batch_rebuild(struct rec *r, int threaded)
{
	enum { MAXB = 40 };
	struct proj *b = proj_new();
	struct preparer w = { .p = b };
	struct event ev[MAXB];
	pthread_t t;
	long prepared = 0;
	size_t i = 0;

	if (threaded && pthread_create(&t, NULL, prepare_loop, &w) != 0) {
		harness_fail(__FILE__, __LINE__, "pthread_create");
		threaded = 0;
	}
	while (i < r->n) {
		size_t k = 1 + i % MAXB;

		if (k > r->n - i)
			k = r->n - i;
		for (size_t j = 0; j < k; j++) {
			CHECK_EQ_INT(ev_decode(r->bufs[i + j].data, r->bufs[i + j].len, &ev[j]), 0);
			ev[j].seq = i + j + 1;
		}
		if (proj_apply_batch(b, ev, k) != 0) {
			harness_fail(__FILE__, __LINE__, "batch rebuild applies every event");
			break;
		}
		i += k;
		if (!threaded)
			while (proj_prepare(b))
				prepared++;
	}
	if (threaded) {
		atomic_store(&w.stop, 1);
		pthread_join(t, NULL);
		prepared = w.worked;
	}
	fprintf(stderr, "  batch rebuild (%s): %ld proj_prepare steps\n",
		threaded ? "prepare on a 2nd thread" : "prepare between batches", prepared);
	/* the arena reached huge chunks, so there was memory to prepare */
	if (!threaded)
		CHECK(prepared > 0);
	return b;
}

static void t_random_rebuild(void)
{
	enum { NUSERS = 20, NCMDS = 100000 };
	struct fx f;
	struct proj *q;
	char *live, *rebuilt, why[256] = "";
	long long codes[CMD__COUNT] = { 0 };
	size_t diffs = 0;

	rng_state = 0x2545F4914F6CDD1DULL;
	fx_init(&f);
	sys_user(&f, "root", ROLE_ADMIN);
	for (int i = 2; i <= NUSERS; i++) {
		char name[16];

		snprintf(name, sizeof name, "user%02d", i);
		REQUIRE(fx_cmd(&f, 1, "createUser",
			       json_pack("{s:s,s:s}", "name", name, "role",
					 i % 7 == 0 ? "admin" : "member")) == 0);
	}
	for (int i = 0; i < NCMDS; i++) {
		int code = random_command(&f, NUSERS);

		if (code >= 0 && code < CMD__COUNT)
			codes[code]++;
	}
	fprintf(stderr, "  %llu events: %llu entries, %llu comments; ok %lld, bad_request %lld, "
		"forbidden %lld, not_found %lld, invalid_transition %lld, conflict %lld\n",
		(unsigned long long)proj_seq(f.p), (unsigned long long)proj_entry_count(f.p),
		(unsigned long long)proj_comment_count(f.p), codes[CMD_OK],
		codes[CMD_BAD_REQUEST], codes[CMD_FORBIDDEN], codes[CMD_NOT_FOUND],
		codes[CMD_INVALID_TRANSITION], codes[CMD_CONFLICT]);
	/* a real mix: plenty of successes and of every common refusal */
	CHECK(codes[CMD_OK] > NCMDS / 2);
	CHECK(codes[CMD_FORBIDDEN] > 100 && codes[CMD_INVALID_TRANSITION] > 100 &&
	      codes[CMD_BAD_REQUEST] > 100 && codes[CMD_NOT_FOUND] > 100 &&
	      codes[CMD_CONFLICT] > 10);
	CHECK_EQ_INT(f.rec.n, proj_seq(f.p));
	CHECK_EQ_INT(proj_check(f.p, why, sizeof why), 0);
	if (why[0])
		fprintf(stderr, "  live proj_check: %s\n", why);

	/* rebuild from the encoded log */
	q = proj_new();
	for (size_t i = 0; i < f.rec.n; i++) {
		struct event ev;
		int rc = ev_decode(f.rec.bufs[i].data, f.rec.bufs[i].len, &ev);

		if (rc == 0) {
			ev.seq = i + 1;
			rc = proj_apply(q, &ev);
		}
		if (rc) {
			fprintf(stderr, "  rebuild stops at seq %zu: %s\n", i + 1, cl_strerror(rc));
			harness_fail(__FILE__, __LINE__, "rebuild applies every event");
			break;
		}
	}
	CHECK_EQ_INT(proj_seq(q), proj_seq(f.p));
	CHECK_EQ_INT(proj_check(q, why, sizeof why), 0);

	live = snapshot(f.p, &f.rec);
	rebuilt = snapshot(q, &f.rec);
	CHECK(strlen(live) > 1000000);
	if (strcmp(live, rebuilt) != 0) {
		for (size_t i = 0; live[i] && live[i] == rebuilt[i]; i++)
			diffs = i;
		fprintf(stderr, "  snapshots differ near byte %zu\n", diffs);
		harness_fail(__FILE__, __LINE__, "live and rebuilt answer the same");
	}
	free(rebuilt);

	/* the cold-start way: batches, with proj_prepare on the same thread
	 * between them and then on a second thread beside them */
	for (int threaded = 0; threaded <= 1; threaded++) {
		struct proj *b = batch_rebuild(&f.rec, threaded);

		CHECK_EQ_INT(proj_seq(b), proj_seq(f.p));
		CHECK_EQ_INT(proj_check(b, why, sizeof why), 0);
		rebuilt = snapshot(b, &f.rec);
		CHECK(strcmp(live, rebuilt) == 0);
		free(rebuilt);
		proj_free(b);
	}
	free(live);

	/* history of a sample of entries: one event per entry event, comment and
	 * comment edit or deletion */
	for (uint64_t id = 1; id <= proj_entry_count(q); id += 97) {
		char params[64], *a, *b;
		json_t *res = NULL, *e = proj_entry_json(q, id);

		snprintf(params, sizeof params, "{\"entry\":%llu}", (unsigned long long)id);
		a = qtext(f.p, 0, &f.rec, "getEntryHistory", params);
		b = qtext(q, 0, &f.rec, "getEntryHistory", params);
		CHECK(strcmp(a, b) == 0);
		CHECK_EQ_INT(query(q, 0, &f.rec, "getEntryHistory", params, &res), 0);
		CHECK_EQ_INT(json_array_size(json_object_get(res, "events")),
			     jint(e, "version") + jint(e, "comments") + q->entries[id - 1].cmods.n);
		json_decref(res);
		json_decref(e);
		free(a);
		free(b);
	}
	proj_free(q);
	fx_done(&f);
}

/* ---- the v1 upcaster through apply ---------------------------------------------- */

static void t_upcast_v1(void)
{
	const char *path = "tests/data/events/entry.created.v1.msgpack";
	uint8_t buf[4096];
	struct proj_entry_info info;
	struct event ev;
	struct proj *p;
	size_t n;
	FILE *fp = fopen(path, "rb");

	if (!fp) {
		fprintf(stderr, "  %s is missing (run from the repository root)\n", path);
		harness_fail(__FILE__, __LINE__, "golden v1 file present");
		return;
	}
	n = fread(buf, 1, sizeof buf, fp);
	fclose(fp);
	REQUIRE(ev_decode(buf, n, &ev) == 0);
	CHECK_EQ_INT(ev.type, EV_ENTRY_CREATED);
	CHECK_EQ_INT(ev.version, 1);
	REQUIRE(ev.actor >= 1 && ev.actor < 1000 && ev.ids.entry >= 1 && ev.ids.entry < 1000);
	p = proj_new();
	/* make the state the event expects: its author and the entries before it */
	for (uint64_t u = 1; u <= ev.actor; u++) {
		struct event uc = mk(EV_USER_CREATED, 0);
		char name[16];

		snprintf(name, sizeof name, "u%llu", (unsigned long long)u);
		uc.ids.user = u;
		uc.name = (struct cl_str){ name, strlen(name) };
		uc.role = ROLE_MEMBER;
		uc.seq = proj_seq(p) + 1;
		CHECK_EQ_INT(proj_apply(p, &uc), 0);
	}
	for (uint64_t e = 1; e < ev.ids.entry; e++) {
		struct event ec = mk(EV_ENTRY_CREATED, ev.actor);

		ec.ids.entry = e;
		ec.title = CL_STR("earlier");
		ec.kind = KIND_FIX;
		ec.seq = proj_seq(p) + 1;
		CHECK_EQ_INT(proj_apply(p, &ec), 0);
	}
	ev.seq = proj_seq(p) + 1;
	CHECK_EQ_INT(proj_apply(p, &ev), 0);
	CHECK_EQ_INT(proj_entry_get(p, ev.ids.entry, &info), 0);
	CHECK_EQ_INT(info.kind, KIND_CHANGE);
	CHECK_EQ_INT(proj_check(p, NULL, 0), 0);
	proj_free(p);
}

/* The query with a size budget: the result, *size and *cut. */
static json_t *sized(struct proj *p, const char *name, const char *params, uint64_t size_max,
		     uint64_t *size, int *cut)
{
	struct proj_qctx ctx = { .viewer = 1, .size_max = size_max, .size = size, .cut = cut };
	struct cl_fail fail = { 0, "" };
	json_t *pj = json_loads(params, 0, NULL), *res = NULL;

	*cut = 0;
	if (proj_query(p, name, pj, &ctx, &res, &fail) != 0)
		CHECK_EQ_INT(fail.code, CMD_TOO_LARGE);
	json_decref(pj);
	return res;
}

/*
 * The size budget (core/proj.h PROJ_ANSWER_MAX): the bound is known before
 * the answer is built and is never below what jansson writes, escapes
 * included; a page stops before the entry that would pass the budget and
 * continues there; a tree over it is refused as too_large.
 */
static void t_size_budget(void)
{
	char body[4001], *text;
	uint64_t size = 0, one;
	json_t *res;
	struct fx f;
	int cut;

	fx_init(&f);
	sys_user(&f, "alice", ROLE_MEMBER);
	for (int i = 0; i < 4000; i++)   /* every kind of escape */
		body[i] = "a\"\\\n\t\x01\x1f/"[i % 8];
	body[4000] = '\0';
	for (int i = 1; i <= 6; i++)
		REQUIRE(fx_cmd(&f, 1, "createEntry", json_pack("{s:s,s:s,s:s}", "title", "t\"1",
							       "body", body, "kind", "fix")) == 0);
	for (int i = 0; i < 3; i++)
		REQUIRE(fx_cmd(&f, 1, "addComment", json_pack("{s:i,s:s}", "entry", 6,
							      "body", body)) == 0);
	res = sized(f.p, "getChangelogEntries", "{}", 0, &size, &cut);
	REQUIRE(res);
	text = json_dumps(res, JSON_COMPACT);
	CHECK(size >= strlen(text) && size < strlen(text) + 6 * 1024);
	CHECK_EQ_INT(cut, 0);
	CHECK(json_object_get(res, "partial") == NULL);
	one = size / 6;
	free(text);
	json_decref(res);
	/* room for 2.5 entries: 2, continued at the third */
	res = sized(f.p, "getChangelogEntries", "{}", one * 5 / 2, &size, &cut);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 2);
	CHECK_EQ_INT(jint(res, "next_cursor"), 5);
	CHECK(json_is_true(json_object_get(res, "partial")));
	CHECK_EQ_INT(cut, 1);
	CHECK(size > one * 5 / 2 && size < one * 4);   /* what the third would need */
	json_decref(res);
	res = sized(f.p, "getChangelogEntries", "{\"cursor\":5}", one * 5 / 2, &size, &cut);
	CHECK_EQ_INT(jint(json_array_get(json_object_get(res, "entries"), 0), "id"), 4);
	json_decref(res);
	/* too small for one entry: an empty cut page (the caller must not send it) */
	res = sized(f.p, "getChangelogEntries", "{}", 100, &size, &cut);
	CHECK_EQ_INT(json_array_size(json_object_get(res, "entries")), 0);
	CHECK_EQ_INT(jint(res, "next_cursor"), 7);
	CHECK_EQ_INT(cut, 1);
	json_decref(res);
	/* getEntry: the bound covers the comments; under it, too_large */
	res = sized(f.p, "getEntry", "{\"entry\":6}", 0, &size, &cut);
	REQUIRE(res);
	text = json_dumps(res, JSON_COMPACT);
	CHECK(size >= strlen(text));
	free(text);
	json_decref(res);
	res = sized(f.p, "getEntry", "{\"entry\":6}", size - 1, &size, &cut);
	CHECK(res == NULL);
	CHECK_EQ_INT(cut, 1);
	res = sized(f.p, "getUsers", "{}", 64, &size, &cut);
	CHECK(res == NULL);
	CHECK_EQ_INT(cut, 1);
	/* by activity, cut pages followed by next_cursor visit every entry
	 * once, newest activity (entry 6, commented) first */
	{
		char params[96];
		uint64_t seen[8] = { 0 }, cursor = 0;
		int pages = 0, total = 0;

		do {
			json_t *es;

			if (cursor)
				snprintf(params, sizeof params, "{\"sort\":\"activity\",\"cursor\":%llu}",
					 (unsigned long long)cursor);
			else
				snprintf(params, sizeof params, "{\"sort\":\"activity\"}");
			res = sized(f.p, "getChangelogEntries", params, one * 5 / 2, &size, &cut);
			REQUIRE(res);
			es = json_object_get(res, "entries");
			CHECK(json_array_size(es) >= 1 && json_array_size(es) <= 2);
			for (size_t i = 0; i < json_array_size(es); i++) {
				json_int_t id = jint(json_array_get(es, i), "id");

				if (pages == 0 && i == 0)
					CHECK_EQ_INT(id, 6);
				if (id >= 1 && id <= 6)
					seen[id]++;
				total++;
			}
			cursor = json_is_integer(json_object_get(res, "next_cursor")) ?
				 (uint64_t)jint(res, "next_cursor") : 0;
			json_decref(res);
		} while (cursor && ++pages < 10);
		CHECK_EQ_INT(total, 6);
		for (int id = 1; id <= 6; id++)
			CHECK_EQ_INT(seen[id], 1);
	}
	fx_done(&f);
}

int main(void)
{
	RUN(t_apply_refusals);
	RUN(t_list_filters);
	RUN(t_search);
	RUN(t_work_budget);
	RUN(t_sort_activity);
	RUN(t_count);
	RUN(t_comment_edit_delete);
	RUN(t_size_budget);
	RUN(t_legacy_names_replay);
	RUN(t_entry_shapes);
	RUN(t_users_stats);
	RUN(t_seed);
	RUN(t_check_detects);
	RUN(t_read_marks);
	RUN(t_read_marks_drop);
	RUN(t_read_own_activity);
	RUN(t_random_rebuild);
	RUN(t_upcast_v1);
	return harness_done();
}
