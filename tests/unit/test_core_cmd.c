/*
 * test_core_cmd.c - core/cmd.c: every command's success and each of its
 * refusals, the status transition table (4 x 4 statuses x creator / other
 * member / admin), strict parameter checking (types, NUL, lengths).
 *
 * Every event a command produces is encoded with the real codec (so it is
 * well formed) and applied to the projection (so it is valid in the state),
 * exactly as the server does.
 */
#include "harness.h"
#include "../../core/cmd.h"

#include <stdlib.h>

struct fx {
	struct proj *p;
	int64_t now;
	unsigned tokens;               /* fresh tokens handed out so far */
	char token[32];                /* the last fresh token */
	uint8_t hash[EV_HASH_LEN];     /* and its hash */
	int no_token;                  /* simulate a caller that made none */
	json_t *params;                /* params of the last command (events point here) */
	struct cmd_result res;         /* result of the last command */
	uint64_t admin, alice, bob;    /* user ids: admin, two members */
};

static void fx_apply(struct fx *f, struct event *ev)
{
	struct ev_buf b;

	ev->seq = proj_seq(f->p) + 1;
	ev_buf_init(&b);
	CHECK_EQ_INT(ev_encode(ev, &b), 0);
	ev_buf_release(&b);
	CHECK_EQ_INT(proj_apply(f->p, ev), 0);
}

/*
 * Run op as actor with params given as JSON text (NUL allowed). Returns the
 * enum cmd_code (0 = ok). On success the events are applied; on refusal
 * checks that nothing was produced and the projection did not move.
 */
static int run(struct fx *f, uint64_t actor, const char *op, const char *params)
{
	struct cmd_ctx ctx = { .actor = actor, .now = ++f->now };
	json_error_t err;
	uint64_t before = proj_seq(f->p);
	int rc;

	cmd_result_release(&f->res);
	json_decref(f->params);
	f->params = params ? json_loads(params, JSON_ALLOW_NUL, &err) : NULL;
	if (params && !f->params) {
		fprintf(stderr, "  bad test JSON: %s: %s\n", params, err.text);
		harness_fail(__FILE__, __LINE__, "test JSON parses");
		return -1;
	}
	if (!f->no_token) {
		f->tokens++;
		snprintf(f->token, sizeof f->token, "clg_test%u", f->tokens);
		memset(f->hash, 0, sizeof f->hash);
		memcpy(f->hash, &f->tokens, sizeof f->tokens);
		f->hash[31] = 0xa5;
		ctx.new_token = f->token;
		ctx.new_token_hash = f->hash;
	}
	rc = cmd_exec(f->p, op, f->params, &ctx, &f->res);
	if (rc < 0) {
		CHECK(f->res.fail.code > CMD_OK && f->res.fail.code < CMD__COUNT);
		CHECK(f->res.fail.message[0] != '\0');
		CHECK_EQ_INT(f->res.n, 0);
		CHECK(f->res.reply == NULL);
		CHECK_EQ_INT(proj_seq(f->p), before);
		return f->res.fail.code;
	}
	CHECK(f->res.n >= 1 && f->res.n <= CMD_MAX_EVENTS);
	for (size_t i = 0; i < f->res.n; i++) {
		CHECK_EQ_INT(f->res.ev[i].ts, ctx.now);
		CHECK_EQ_INT(f->res.ev[i].actor, actor);
		fx_apply(f, &f->res.ev[i]);
	}
	return CMD_OK;
}

/* Integer member of the last reply (or -1). */
static long long reply_int(struct fx *f, const char *key)
{
	json_t *v = json_object_get(f->res.reply, key);

	return json_is_integer(v) ? (long long)json_integer_value(v) : -1;
}

static void sys_user(struct fx *f, const char *name, int role, uint64_t *id)
{
	struct event ev;

	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.ts = ++f->now;
	ev.ids.user = proj_user_count(f->p) + 1;
	ev.name = (struct cl_str){ name, strlen(name) };
	ev.role = (uint8_t)role;
	fx_apply(f, &ev);
	*id = ev.ids.user;
}

static void fx_init(struct fx *f)
{
	memset(f, 0, sizeof *f);
	f->p = proj_new();
	f->now = 1790000000000000LL;
	sys_user(f, "root", ROLE_ADMIN, &f->admin);
	sys_user(f, "alice", ROLE_MEMBER, &f->alice);
	sys_user(f, "bob", ROLE_MEMBER, &f->bob);
}

static void fx_done(struct fx *f)
{
	char why[200];

	CHECK_EQ_INT(proj_check(f->p, why, sizeof why), 0);
	if (why[0])
		fprintf(stderr, "  proj_check: %s\n", why);
	cmd_result_release(&f->res);
	json_decref(f->params);
	proj_free(f->p);
}

/* Run op with params built around a long string: tmpl has one "%s" that
 * is replaced by n copies of 'x'. */
static int run_long(struct fx *f, uint64_t actor, const char *op, const char *tmpl, size_t n)
{
	const char *at = strstr(tmpl, "%s");
	size_t head = (size_t)(at - tmpl), tail = strlen(at + 2);
	char *params = malloc(head + n + tail + 1);
	int rc;

	memcpy(params, tmpl, head);
	memset(params + head, 'x', n);
	memcpy(params + head + n, at + 2, tail + 1);
	rc = run(f, actor, op, params);
	free(params);
	return rc;
}

static const char *entry_status(struct fx *f, uint64_t id)
{
	struct proj_entry_info e;

	if (proj_entry_get(f->p, id, &e))
		return "missing";
	return cl_status_name(e.status);
}

/* ---- createEntry --------------------------------------------------------- */

static void t_create_entry(void)
{
	struct fx f;
	json_t *e;

	fx_init(&f);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry",
			 "{\"title\":\"Fix login\",\"body\":\"details\",\"kind\":\"fix\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "entry"), 1);
	CHECK_EQ_INT(f.res.n, 1);
	CHECK_EQ_INT(f.res.ev[0].type, EV_ENTRY_CREATED);
	CHECK_EQ_INT(f.res.ev[0].ids.entry, 1);
	/* zero copy: the event's strings point into params */
	CHECK(f.res.ev[0].title.p == json_string_value(json_object_get(f.params, "title")));
	e = proj_entry_json(f.p, 1);
	REQUIRE(e);
	CHECK(strcmp(json_string_value(json_object_get(e, "title")), "Fix login") == 0);
	CHECK(strcmp(json_string_value(json_object_get(e, "author")), "alice") == 0);
	CHECK(strcmp(json_string_value(json_object_get(e, "status")), "open") == 0);
	CHECK(strcmp(json_string_value(json_object_get(e, "kind")), "fix") == 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "version")), 1);
	json_decref(e);

	/* body is optional (absent or null) */
	CHECK_EQ_INT(run(&f, f.bob, "createEntry", "{\"title\":\"t\",\"kind\":\"feature\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "entry"), 2);
	CHECK_EQ_INT(run(&f, f.bob, "createEntry",
			 "{\"title\":\"t\",\"kind\":\"change\",\"body\":null}"), 0);
	CHECK_EQ_INT(reply_int(&f, "entry"), 3);

	/* refusals */
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"kind\":\"fix\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":\"\",\"kind\":\"fix\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":5,\"kind\":\"fix\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":\"t\",\"body\":[],\"kind\":\"fix\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":\"t\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":\"t\",\"kind\":\"bug\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":\"t\",\"kind\":1}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry",
			 "{\"title\":\"t\",\"kind\":\"fix\",\"colour\":\"red\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "[1,2]"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", NULL), CMD_BAD_REQUEST);
	/* NUL inside strings */
	CHECK_EQ_INT(run(&f, f.alice, "createEntry", "{\"title\":\"a\\u0000b\",\"kind\":\"fix\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "createEntry",
			 "{\"title\":\"a\",\"body\":\"x\\u0000\",\"kind\":\"fix\"}"), CMD_BAD_REQUEST);
	/* lengths: exactly at the limit is fine, one more is too_large */
	CHECK_EQ_INT(run_long(&f, f.alice, "createEntry", "{\"title\":\"%s\",\"kind\":\"fix\"}",
			      CL_MAX_TITLE), 0);
	CHECK_EQ_INT(run_long(&f, f.alice, "createEntry", "{\"title\":\"%s\",\"kind\":\"fix\"}",
			      CL_MAX_TITLE + 1), CMD_TOO_LARGE);
	CHECK_EQ_INT(run_long(&f, f.alice, "createEntry",
			      "{\"title\":\"t\",\"body\":\"%s\",\"kind\":\"fix\"}", CL_MAX_BODY), 0);
	CHECK_EQ_INT(run_long(&f, f.alice, "createEntry",
			      "{\"title\":\"t\",\"body\":\"%s\",\"kind\":\"fix\"}", CL_MAX_BODY + 1),
		     CMD_TOO_LARGE);
	/* unknown actor, unknown op */
	CHECK_EQ_INT(run(&f, 99, "createEntry", "{\"title\":\"t\",\"kind\":\"fix\"}"),
		     CMD_UNAUTHORIZED);
	CHECK_EQ_INT(run(&f, 0, "createEntry", "{\"title\":\"t\",\"kind\":\"fix\"}"),
		     CMD_UNAUTHORIZED);
	CHECK_EQ_INT(run(&f, f.alice, "dropEverything", "{}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(proj_entry_count(f.p), 5);
	fx_done(&f);
}

/* ---- editEntry ------------------------------------------------------------ */

static void t_edit_entry(void)
{
	struct fx f;
	json_t *e;

	fx_init(&f);
	REQUIRE(run(&f, f.alice, "createEntry",
		    "{\"title\":\"Old\",\"body\":\"b\",\"kind\":\"fix\"}") == 0);
	/* creator: only the changing fields go into the event */
	CHECK_EQ_INT(run(&f, f.alice, "editEntry",
			 "{\"entry\":1,\"title\":\"New\",\"body\":\"b\",\"kind\":\"fix\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "entry"), 1);
	CHECK_EQ_INT(reply_int(&f, "version"), 2);
	CHECK(f.res.ev[0].has_title && !f.res.ev[0].has_body && !f.res.ev[0].has_kind);
	/* other member: forbidden; admin: allowed */
	CHECK_EQ_INT(run(&f, f.bob, "editEntry", "{\"entry\":1,\"title\":\"Bob's\"}"),
		     CMD_FORBIDDEN);
	CHECK_EQ_INT(run(&f, f.admin, "editEntry", "{\"entry\":1,\"kind\":\"feature\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "version"), 3);
	CHECK(!f.res.ev[0].has_title && !f.res.ev[0].has_body && f.res.ev[0].has_kind);
	/* body may be emptied */
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"body\":\"\"}"), 0);
	CHECK(f.res.ev[0].has_body && f.res.ev[0].body.n == 0);
	/* nothing changes -> bad_request */
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"title\":\"New\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"title\":null}"),
		     CMD_BAD_REQUEST);
	/* expected_version */
	CHECK_EQ_INT(run(&f, f.alice, "editEntry",
			 "{\"entry\":1,\"title\":\"X\",\"expected_version\":2}"), CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry",
			 "{\"entry\":1,\"title\":\"X\",\"expected_version\":4}"), 0);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry",
			 "{\"entry\":1,\"title\":\"Y\",\"expected_version\":\"5\"}"), CMD_BAD_REQUEST);
	/* missing entry, bad types, limits, NUL */
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":7,\"title\":\"Z\"}"), CMD_NOT_FOUND);
	CHECK(strstr(f.res.fail.message, "entry 7 does not exist") != NULL);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"title\":\"Z\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":\"1\",\"title\":\"Z\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":0,\"title\":\"Z\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1.5,\"title\":\"Z\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"title\":\"\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"kind\":\"nope\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"body\":\"\\u0000\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run_long(&f, f.alice, "editEntry", "{\"entry\":1,\"title\":\"%s\"}",
			      CL_MAX_TITLE + 1), CMD_TOO_LARGE);
	CHECK_EQ_INT(run(&f, f.alice, "editEntry", "{\"entry\":1,\"status\":\"resolved\"}"),
		     CMD_BAD_REQUEST);
	e = proj_entry_json(f.p, 1);
	REQUIRE(e);
	CHECK(strcmp(json_string_value(json_object_get(e, "title")), "X") == 0);
	CHECK(strcmp(json_string_value(json_object_get(e, "body")), "") == 0);
	CHECK(strcmp(json_string_value(json_object_get(e, "kind")), "feature") == 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "version")), 5);
	json_decref(e);
	fx_done(&f);
}

/* ---- setStatus: the whole table ------------------------------------------------ */

/* A new entry by alice, driven by the admin into status st. Returns its id. */
static uint64_t entry_in(struct fx *f, int st)
{
	char params[128];
	uint64_t id;

	if (run(f, f->alice, "createEntry", "{\"title\":\"t\",\"kind\":\"fix\"}"))
		return 0;
	id = (uint64_t)reply_int(f, "entry");
	if (st == ST_RESOLVED || st == ST_REOPENED) {
		snprintf(params, sizeof params, "{\"entry\":%llu,\"status\":\"resolved\"}",
			 (unsigned long long)id);
		CHECK_EQ_INT(run(f, f->admin, "setStatus", params), 0);
	}
	if (st == ST_CANCELLED) {
		snprintf(params, sizeof params, "{\"entry\":%llu,\"status\":\"cancelled\"}",
			 (unsigned long long)id);
		CHECK_EQ_INT(run(f, f->admin, "setStatus", params), 0);
	}
	if (st == ST_REOPENED) {
		snprintf(params, sizeof params, "{\"entry\":%llu,\"status\":\"reopened\"}",
			 (unsigned long long)id);
		CHECK_EQ_INT(run(f, f->admin, "setStatus", params), 0);
	}
	CHECK(strcmp(entry_status(f, id), cl_status_name(st)) == 0);
	return id;
}

static void t_status_table(void)
{
	/* allowed[from][to] */
	static const int allowed[5][5] = {
		[ST_OPEN] = { [ST_RESOLVED] = 1, [ST_CANCELLED] = 1 },
		[ST_RESOLVED] = { [ST_REOPENED] = 1 },
		[ST_CANCELLED] = { [ST_REOPENED] = 1 },
		[ST_REOPENED] = { [ST_RESOLVED] = 1, [ST_CANCELLED] = 1 },
	};
	struct fx f;
	int cases = 0, ok = 0;

	fx_init(&f);
	for (int from = ST_OPEN; from <= ST_REOPENED; from++) {
		for (int to = ST_OPEN; to <= ST_REOPENED; to++) {
			for (int who = 0; who < 3; who++) {
				uint64_t actor = who == 0 ? f.alice : who == 1 ? f.bob : f.admin;
				uint64_t id = entry_in(&f, from);
				int want = who == 1 ? CMD_FORBIDDEN
					: allowed[from][to] ? CMD_OK : CMD_INVALID_TRANSITION;
				char params[128];
				int got;

				REQUIRE(id);
				snprintf(params, sizeof params, "{\"entry\":%llu,\"status\":\"%s\"}",
					 (unsigned long long)id, cl_status_name(to));
				got = run(&f, actor, "setStatus", params);
				if (got != want)
					fprintf(stderr, "  %s -> %s by %s: got %s want %s\n",
						cl_status_name(from), cl_status_name(to),
						who == 0 ? "creator" : who == 1 ? "other" : "admin",
						cmd_code_name(got), cmd_code_name(want));
				CHECK_EQ_INT(got, want);
				CHECK(strcmp(entry_status(&f, id),
					     cl_status_name(got == 0 ? to : from)) == 0);
				if (got == 0) {
					CHECK_EQ_INT(reply_int(&f, "entry"), (long long)id);
					CHECK(strcmp(json_string_value(json_object_get(
							     f.res.reply, "status")),
						     cl_status_name(to)) == 0);
					CHECK_EQ_INT(f.res.ev[0].status_from, from);
					CHECK_EQ_INT(f.res.ev[0].status_to, to);
					ok++;
				}
				cases++;
			}
		}
	}
	CHECK_EQ_INT(cases, 48);
	CHECK_EQ_INT(ok, 12);    /* 6 allowed transitions x (creator, admin) */
	fx_done(&f);
}

static void t_set_status_refusals(void)
{
	struct fx f;

	fx_init(&f);
	REQUIRE(run(&f, f.alice, "createEntry", "{\"title\":\"t\",\"kind\":\"fix\"}") == 0);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus", "{\"entry\":1,\"status\":\"done\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus", "{\"entry\":1}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus", "{\"entry\":1,\"status\":2}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus", "{\"entry\":2,\"status\":\"resolved\"}"),
		     CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus",
			 "{\"entry\":1,\"status\":\"resolved\",\"expected_version\":2}"),
		     CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus",
			 "{\"entry\":1,\"status\":\"resolved\",\"expected_version\":1}"), 0);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus",
			 "{\"entry\":1,\"status\":\"resolved\",\"expected_version\":2}"),
		     CMD_INVALID_TRANSITION);
	CHECK(strstr(f.res.fail.message, "resolved") != NULL);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus",
			 "{\"entry\":1,\"status\":\"reopened\",\"expected_version\":1}"),
		     CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.alice, "setStatus",
			 "{\"entry\":1,\"status\":\"reopened\",\"why\":1}"), CMD_BAD_REQUEST);
	fx_done(&f);
}

/* ---- addComment -------------------------------------------------------------------- */

static void t_add_comment(void)
{
	struct fx f;
	struct proj_comment_info c;
	char params[128];
	uint64_t last;

	fx_init(&f);
	REQUIRE(run(&f, f.alice, "createEntry", "{\"title\":\"one\",\"kind\":\"fix\"}") == 0);
	REQUIRE(run(&f, f.alice, "createEntry", "{\"title\":\"two\",\"kind\":\"fix\"}") == 0);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"body\":\"hi\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "comment"), 1);
	CHECK_EQ_INT(reply_int(&f, "entry"), 1);
	CHECK_EQ_INT(run(&f, f.alice, "addComment", "{\"entry\":1,\"parent\":1,\"body\":\"re\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "comment"), 2);
	CHECK_EQ_INT(proj_comment_get(f.p, 2, &c), 0);
	CHECK_EQ_INT(c.parent, 1);
	CHECK_EQ_INT(c.depth, 1);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"parent\":null,\"body\":\"top\"}"),
		     0);
	CHECK_EQ_INT(proj_comment_get(f.p, 3, &c), 0);
	CHECK_EQ_INT(c.parent, 0);
	/* threads never cross entries */
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":2,\"parent\":1,\"body\":\"x\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"parent\":9,\"body\":\"x\"}"),
		     CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":3,\"body\":\"x\"}"), CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"parent\":\"1\",\"body\":\"x\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"parent\":-1,\"body\":\"x\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"body\":\"\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"body\":\"a\\u0000\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":1,\"body\":true}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run_long(&f, f.bob, "addComment", "{\"entry\":1,\"body\":\"%s\"}",
			      CL_MAX_COMMENT), 0);
	CHECK_EQ_INT(run_long(&f, f.bob, "addComment", "{\"entry\":1,\"body\":\"%s\"}",
			      CL_MAX_COMMENT + 1), CMD_TOO_LARGE);
	/* depth: a chain on entry 2 down to depth CL_MAX_DEPTH - 1, then refused */
	CHECK_EQ_INT(run(&f, f.bob, "addComment", "{\"entry\":2,\"body\":\"d0\"}"), 0);
	last = (uint64_t)reply_int(&f, "comment");
	for (int d = 1; d < CL_MAX_DEPTH; d++) {
		snprintf(params, sizeof params, "{\"entry\":2,\"parent\":%llu,\"body\":\"d\"}",
			 (unsigned long long)last);
		CHECK_EQ_INT(run(&f, f.bob, "addComment", params), 0);
		last = (uint64_t)reply_int(&f, "comment");
	}
	CHECK_EQ_INT(proj_comment_get(f.p, last, &c), 0);
	CHECK_EQ_INT(c.depth, CL_MAX_DEPTH - 1);
	snprintf(params, sizeof params, "{\"entry\":2,\"parent\":%llu,\"body\":\"d\"}",
		 (unsigned long long)last);
	CHECK_EQ_INT(run(&f, f.bob, "addComment", params), CMD_BAD_REQUEST);
	fx_done(&f);
}

/* ---- users and tokens ----------------------------------------------------------------- */

static void t_create_user(void)
{
	struct fx f;
	struct proj_user_info u;
	uint64_t uid = 0, tid = 0;
	int revoked = -1;

	fx_init(&f);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"carol\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "user"), 4);
	CHECK_EQ_INT(reply_int(&f, "token_id"), 1);
	CHECK(strcmp(json_string_value(json_object_get(f.res.secret, "token")), f.token) == 0);
	CHECK(json_object_get(f.res.reply, "token") == NULL);
	CHECK_EQ_INT(f.res.n, 2);
	CHECK_EQ_INT(f.res.ev[0].type, EV_USER_CREATED);
	CHECK_EQ_INT(f.res.ev[1].type, EV_TOKEN_ISSUED);
	CHECK(f.res.ev[1].label.n == 7 && memcmp(f.res.ev[1].label.p, "initial", 7) == 0);
	CHECK_EQ_INT(proj_token_check(f.p, f.hash, &uid, &tid), 0);
	CHECK_EQ_INT(uid, 4);
	CHECK_EQ_INT(tid, 1);
	CHECK_EQ_INT(proj_token_get(f.p, 1, &uid, &revoked), 0);
	CHECK_EQ_INT(revoked, 0);
	CHECK_EQ_INT(proj_user_by_name(f.p, "carol", 5, &u), 0);
	CHECK_EQ_INT(u.role, ROLE_MEMBER);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"dave.d-1_x\",\"role\":\"admin\"}"),
		     0);
	CHECK_EQ_INT(proj_user_by_name(f.p, "dave.d-1_x", 10, &u), 0);
	CHECK_EQ_INT(u.role, ROLE_ADMIN);

	CHECK_EQ_INT(run(&f, f.alice, "createUser", "{\"name\":\"eve\"}"), CMD_FORBIDDEN);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"carol\"}"), CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"Carol\"}"), 0); /* case matters */
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"e ve\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"\\u00e9ve\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"e\\u0000\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":7}"), CMD_BAD_REQUEST);
	/* a name changelog-admin could not address, or that reads as a path */
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"--help\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"-\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"-x\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\".\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"..\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"x-\"}"), 0);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\".x\"}"), 0);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"eve\",\"role\":\"root\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"eve\",\"password\":\"x\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run_long(&f, f.admin, "createUser", "{\"name\":\"%s\"}", CL_MAX_NAME), 0);
	CHECK_EQ_INT(run_long(&f, f.admin, "createUser", "{\"name\":\"%s\"}", CL_MAX_NAME + 1),
		     CMD_TOO_LARGE);
	f.no_token = 1;
	CHECK_EQ_INT(run(&f, f.admin, "createUser", "{\"name\":\"eve\"}"), CMD_INTERNAL);
	fx_done(&f);
}

static void t_set_role(void)
{
	struct fx f;
	struct proj_user_info u;

	fx_init(&f);
	CHECK_EQ_INT(run(&f, f.admin, "setRole", "{\"user\":\"alice\",\"role\":\"admin\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "user"), (long long)f.alice);
	CHECK_EQ_INT(proj_user_get(f.p, f.alice, &u), 0);
	CHECK_EQ_INT(u.role, ROLE_ADMIN);
	/* alice is an admin now: she may demote root by id */
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":1,\"role\":\"member\"}"), 0);
	CHECK_EQ_INT(proj_user_get(f.p, f.admin, &u), 0);
	CHECK_EQ_INT(u.role, ROLE_MEMBER);
	CHECK_EQ_INT(run(&f, f.admin, "setRole", "{\"user\":\"bob\",\"role\":\"admin\"}"),
		     CMD_FORBIDDEN);
	/* alice is the last admin */
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":\"alice\",\"role\":\"member\"}"),
		     CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":\"alice\",\"role\":\"admin\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":\"zed\",\"role\":\"admin\"}"),
		     CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":42,\"role\":\"admin\"}"),
		     CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":\"bob\",\"role\":\"owner\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"user\":true,\"role\":\"admin\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.alice, "setRole", "{\"role\":\"admin\"}"), CMD_BAD_REQUEST);
	fx_done(&f);
}

static void t_tokens(void)
{
	struct fx f;
	uint8_t bob_hash[EV_HASH_LEN];
	uint64_t uid, tid;
	int revoked;

	fx_init(&f);
	CHECK_EQ_INT(run(&f, f.admin, "issueToken", "{\"user\":\"bob\",\"label\":\"laptop\"}"), 0);
	CHECK_EQ_INT(reply_int(&f, "token_id"), 1);
	CHECK(json_is_string(json_object_get(f.res.secret, "token")));
	memcpy(bob_hash, f.hash, sizeof bob_hash);
	CHECK_EQ_INT(proj_token_check(f.p, bob_hash, &uid, &tid), 0);
	CHECK_EQ_INT(uid, f.bob);
	CHECK_EQ_INT(run(&f, f.admin, "issueToken", "{\"user\":2}"), 0);   /* alice, no label */
	CHECK_EQ_INT(reply_int(&f, "token_id"), 2);
	CHECK_EQ_INT(run(&f, f.bob, "issueToken", "{\"user\":\"bob\"}"), CMD_FORBIDDEN);
	CHECK_EQ_INT(run(&f, f.admin, "issueToken", "{\"user\":\"nobody\"}"), CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.admin, "issueToken", "{\"user\":\"bob\",\"label\":3}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "issueToken", "{\"user\":\"bob\",\"label\":\"a\\u0000\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run_long(&f, f.admin, "issueToken", "{\"user\":\"bob\",\"label\":\"%s\"}",
			      CL_MAX_LABEL + 1), CMD_TOO_LARGE);
	f.no_token = 1;
	CHECK_EQ_INT(run(&f, f.admin, "issueToken", "{\"user\":\"bob\"}"), CMD_INTERNAL);
	f.no_token = 0;

	/* revokeToken: alice may not revoke bob's; bob may (sign-out); admin may */
	CHECK_EQ_INT(run(&f, f.alice, "revokeToken", "{\"token\":1}"), CMD_FORBIDDEN);
	CHECK_EQ_INT(run(&f, f.bob, "revokeToken", "{\"token\":1}"), 0);
	CHECK_EQ_INT(reply_int(&f, "token_id"), 1);
	CHECK_EQ_INT(f.res.ev[0].ids.user, f.bob);
	CHECK_EQ_INT(proj_token_check(f.p, bob_hash, &uid, &tid), CL_ENOTFOUND);
	CHECK_EQ_INT(proj_token_get(f.p, 1, &uid, &revoked), 0);
	CHECK_EQ_INT(revoked, 1);
	CHECK_EQ_INT(run(&f, f.bob, "revokeToken", "{\"token\":1}"), CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.admin, "revokeToken", "{\"token\":2}"), 0);
	CHECK_EQ_INT(run(&f, f.admin, "revokeToken", "{\"token\":9}"), CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.admin, "revokeToken", "{\"token\":\"1\"}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "revokeToken", "{}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(proj_token_get(f.p, 9, &uid, &revoked), CL_ENOTFOUND);
	fx_done(&f);
}

static void t_names(void)
{
	static const char *const names[] = { "ok", "bad_request", "unauthorized", "forbidden",
					     "not_found", "invalid_transition", "conflict",
					     "too_large", "rate_limited", "unavailable", "internal" };

	for (int i = 0; i < CMD__COUNT; i++)
		CHECK(cmd_code_name(i) && strcmp(cmd_code_name(i), names[i]) == 0);
	CHECK(cmd_code_name(-1) == NULL);
	CHECK(cmd_code_name(CMD__COUNT) == NULL);
	CHECK(cmd_is_command("createEntry") && cmd_is_command("editEntry") &&
	      cmd_is_command("setStatus") && cmd_is_command("addComment") &&
	      cmd_is_command("createUser") && cmd_is_command("setRole") &&
	      cmd_is_command("issueToken") && cmd_is_command("revokeToken"));
	CHECK(!cmd_is_command("getChangelogEntries"));
	CHECK(!cmd_is_command(""));
	CHECK(!cmd_is_command(NULL));
}

/* createWebhook / deleteWebhook and the projection's webhook table. */
static void t_webhooks(void)
{
	struct proj_webhook_info w;
	struct fx f;
	struct ev_buf b;
	struct event back;
	char params[128];

	fx_init(&f);
	CHECK_EQ_INT(run(&f, f.alice, "createWebhook", "{\"url\":\"https://h.example/x\"}"),
		     CMD_FORBIDDEN);
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{\"url\":\"file:///etc/passwd\"}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{\"url\":\"https://h/\",\"x\":1}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run_long(&f, f.admin, "createWebhook", "{\"url\":\"https://h/%s\"}",
			      CL_MAX_URL), CMD_TOO_LARGE);
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook",
			 "{\"url\":\"https://h/\",\"events\":[\"comment.added\",1]}"),
		     CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook",
			 "{\"url\":\"https://h/\",\"events\":[\"comment.added\","
			 "\"entry.created\"]}"), CMD_OK);
	CHECK_EQ_INT(reply_int(&f, "webhook"), 1);
	CHECK(strcmp(json_string_value(json_object_get(f.res.reply, "events")),
		     "entry.created,comment.added") == 0);
	/* the event carries the url, the canonical types and the nonce (the hash) */
	REQUIRE(f.res.n == 1 && f.res.ev[0].type == EV_WEBHOOK_CREATED);
	ev_buf_init(&b);
	REQUIRE(ev_encode(&f.res.ev[0], &b) == 0);
	REQUIRE(ev_decode(b.data, b.len, &back) == 0);
	CHECK(back.url.n == 10 && memcmp(back.url.p, "https://h/", 10) == 0);
	CHECK(back.types.n == 27 && memcmp(back.types.p, "entry.created,comment.added", 27) == 0);
	CHECK(memcmp(back.token_hash, f.hash, EV_HASH_LEN) == 0);
	{
		json_t *j = ev_to_json(&back);
		char *text = json_dumps(j, JSON_COMPACT);

		/* the nonce never leaves the log */
		CHECK(text && strstr(text, "\"hash\"") == NULL && strstr(text, "\"url\"") != NULL);
		free(text);
		json_decref(j);
	}
	ev_buf_release(&b);
	REQUIRE(proj_webhook_get(f.p, 1, &w) == 0);
	CHECK(strcmp(w.url, "https://h/") == 0);
	CHECK_EQ_INT(w.mask, (1u << EV_ENTRY_CREATED) | (1u << EV_COMMENT_ADDED));
	CHECK_EQ_INT(w.seq, proj_seq(f.p));
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{\"url\":\"https://h/\"}"), CMD_CONFLICT);
	/* no nonce from the caller: refused, not made up */
	f.no_token = 1;
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{\"url\":\"https://h/2\"}"),
		     CMD_INTERNAL);
	f.no_token = 0;
	for (int i = 2; i <= CL_MAX_WEBHOOKS; i++) {
		snprintf(params, sizeof params, "{\"url\":\"http://10.0.0.1:8080/%d\"}", i);
		CHECK_EQ_INT(run(&f, f.admin, "createWebhook", params), CMD_OK);
	}
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{\"url\":\"https://h/17\"}"),
		     CMD_CONFLICT);
	CHECK_EQ_INT(run(&f, f.alice, "deleteWebhook", "{\"webhook\":1}"), CMD_FORBIDDEN);
	CHECK_EQ_INT(run(&f, f.admin, "deleteWebhook", "{\"webhook\":99}"), CMD_NOT_FOUND);
	CHECK_EQ_INT(run(&f, f.admin, "deleteWebhook", "{\"webhook\":0}"), CMD_BAD_REQUEST);
	CHECK_EQ_INT(run(&f, f.admin, "deleteWebhook", "{\"webhook\":1}"), CMD_OK);
	CHECK_EQ_INT(run(&f, f.admin, "deleteWebhook", "{\"webhook\":1}"), CMD_CONFLICT);
	REQUIRE(proj_webhook_get(f.p, 1, &w) == 0);
	CHECK(w.url == NULL && w.deleted_seq == proj_seq(f.p));
	/* a slot is free again; the id is new */
	CHECK_EQ_INT(run(&f, f.admin, "createWebhook", "{\"url\":\"https://h/\"}"), CMD_OK);
	CHECK_EQ_INT(reply_int(&f, "webhook"), CL_MAX_WEBHOOKS + 1);
	fx_done(&f);
}

int main(void)
{
	RUN(t_create_entry);
	RUN(t_edit_entry);
	RUN(t_status_table);
	RUN(t_set_status_refusals);
	RUN(t_add_comment);
	RUN(t_create_user);
	RUN(t_set_role);
	RUN(t_tokens);
	RUN(t_names);
	RUN(t_webhooks);
	return harness_done();
}
