/*
 * test_net_proto.c - net/proto.c: request parsing (every form, every
 * refusal), and execution over a struct proto_ctx: ping, subscribe, the
 * query cache's rule (kept only at committed state), and commands through
 * a real log with a command id retried.
 */
#include "harness.h"
#include "../../net/proto.h"
#include "../../store/bootstrap.h"

#include <stdlib.h>

static struct req *parse(const char *s)
{
	struct req *r = req_parse(s, strlen(s));

	if (!r)
		abort();
	return r;
}

/* s is refused at parse time with bad_request and a message containing why. */
static int refused(const char *s, const char *why)
{
	struct req *r = parse(s);
	int ok = r->kind == REQ_BAD && r->fail.code == CMD_BAD_REQUEST &&
		 strstr(r->fail.message, why) != NULL;

	if (!ok)
		fprintf(stderr, "  %s -> kind %d, \"%s\"\n", s, r->kind, r->fail.message);
	req_free(r);
	return ok;
}

static void t_parse_forms(void)
{
	struct req *r;

	r = parse("{\"id\":1,\"op\":\"query\",\"name\":\"getChangelogEntries\",\"params\":{\"limit\":2}}");
	CHECK_EQ_INT(r->kind, REQ_QUERY);
	CHECK(strcmp(r->name, "getChangelogEntries") == 0);
	CHECK_EQ_INT(json_integer_value(r->id), 1);
	CHECK_EQ_INT(json_integer_value(json_object_get(r->params, "limit")), 2);
	req_free(r);

	r = parse("{\"op\":\"createEntry\",\"params\":{\"title\":\"t\"},\"cmd_id\":\"c-1\"}");
	CHECK_EQ_INT(r->kind, REQ_CMD);
	CHECK(strcmp(r->name, "createEntry") == 0);
	CHECK(r->cmd_id.n == 3 && memcmp(r->cmd_id.p, "c-1", 3) == 0);
	CHECK(req_writes(r));
	req_free(r);

	r = parse("{\"op\":\"command\",\"name\":\"setStatus\"}");   /* params default to {} */
	CHECK_EQ_INT(r->kind, REQ_CMD);
	CHECK(strcmp(r->name, "setStatus") == 0);
	CHECK(json_is_object(r->params) && json_object_size(r->params) == 0);
	CHECK_EQ_INT(r->cmd_id.n, 0);
	req_free(r);

	r = parse("{\"id\":\"s\",\"op\":\"subscribe\",\"since\":5,\"epoch\":\"ab\"}");
	CHECK_EQ_INT(r->kind, REQ_SUB);
	CHECK(r->has_since && r->since == 5);
	CHECK(strcmp(r->epoch, "ab") == 0);
	CHECK(strcmp(json_string_value(r->id), "s") == 0);
	CHECK(!req_writes(r));
	req_free(r);

	r = parse("{\"op\":\"subscribe\"}");
	CHECK(r->kind == REQ_SUB && !r->has_since && r->epoch == NULL);
	req_free(r);

	r = parse("{\"op\":\"unsubscribe\"}");
	CHECK_EQ_INT(r->kind, REQ_UNSUB);
	req_free(r);
	r = parse("{\"op\":\"ping\",\"id\":null}");
	CHECK(r->kind == REQ_PING && r->id == NULL);
	req_free(r);

	r = parse("{\"service\":\"mysql\",\"stored_query_name\":\"getChangelogEntries\"}");
	CHECK_EQ_INT(r->kind, REQ_SEED);
	CHECK(strcmp(r->name, "getChangelogEntries") == 0);
	CHECK(json_is_object(r->params));
	req_free(r);
}

/* req_build: the same request from JSON already parsed (the HTTP API). */
static void t_build(void)
{
	struct req *r;

	r = req_build(json_pack("{s:s,s:s,s:{s:s},s:s}", "op", "command", "name", "createEntry",
				"params", "title", "t", "cmd_id", "k-1"));
	REQUIRE(r);
	CHECK_EQ_INT(r->kind, REQ_CMD);
	CHECK(strcmp(r->name, "createEntry") == 0 && r->cmd_id.n == 3);
	CHECK(r->api == NULL && r->sess == NULL);
	req_free(r);
	r = req_build(json_pack("{s:s,s:s}", "op", "command", "name", "noSuchThing"));
	REQUIRE(r);
	CHECK(r->kind == REQ_BAD && r->fail.code == CMD_BAD_REQUEST);
	req_free(r);
	r = req_build(json_pack("[i]", 1));
	REQUIRE(r);
	CHECK(r->kind == REQ_BAD && strstr(r->fail.message, "JSON object"));
	req_free(r);
	r = req_build(json_pack("{s:s,s:s,s:i}", "op", "query", "name", "getStats", "params", 3));
	REQUIRE(r);
	CHECK(r->kind == REQ_BAD && strstr(r->fail.message, "params must be an object"));
	req_free(r);
}

static void t_parse_refusals(void)
{
	CHECK(refused("", "empty message"));
	CHECK(refused("{\"op\":", "malformed JSON at byte"));
	CHECK(refused("{\"op\":\"ping\",\"op\":\"ping\"}", "malformed JSON"));  /* duplicate key */
	CHECK(refused("[1]", "must be a JSON object"));
	CHECK(refused("{\"id\":[1],\"op\":\"ping\"}", "id must be a string or an integer"));
	CHECK(refused("{\"id\":1}", "missing \"op\""));
	CHECK(refused("{\"stored_query_name\":3}", "stored_query_name must be a string"));
	CHECK(refused("{\"op\":7}", "op must be a string"));
	CHECK(refused("{\"op\":\"fly\"}", "unknown op \"fly\""));
	CHECK(refused("{\"op\":\"query\"}", "a query needs \"name\""));
	CHECK(refused("{\"op\":\"query\",\"name\":\"x\",\"params\":[]}", "params must be an object"));
	CHECK(refused("{\"op\":\"command\",\"name\":\"getEntry\"}", "naming a command"));
	CHECK(refused("{\"op\":\"createEntry\",\"cmd_id\":5}", "cmd_id must be a string"));
	CHECK(refused("{\"op\":\"createEntry\",\"cmd_id\":\"\"}", "cmd_id must be 1..128 bytes"));
	CHECK(refused("{\"op\":\"subscribe\",\"since\":-1}", "since must be a non-negative integer"));
	CHECK(refused("{\"op\":\"subscribe\",\"epoch\":1}", "epoch must be a string"));
}

/* A refusal keeps the id; req_refuse truncates long messages. */
static void t_refuse_and_error(void)
{
	struct req *r = parse("{\"id\":9,\"op\":\"ping\"}");
	char longmsg[400];
	json_t *e;

	memset(longmsg, 'm', sizeof longmsg - 1);
	longmsg[sizeof longmsg - 1] = '\0';
	req_refuse(r, CMD_RATE_LIMITED, longmsg);
	CHECK_EQ_INT(r->kind, REQ_BAD);
	CHECK_EQ_INT(strlen(r->fail.message), sizeof r->fail.message - 1);
	e = proto_error(r->id, r->fail.code, "slow down");
	REQUIRE(e != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(e, "id")), 9);
	CHECK(json_is_false(json_object_get(e, "ok")));
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(e, "error"), "code")),
		     "rate_limited") == 0);
	json_decref(e);
	req_free(r);
}

/* ---- execution ------------------------------------------------------- */

struct fixture {
	struct evlog *log;
	struct proj *p;
	struct proto_ctx pc;
	int events;                /* on_event calls */
};

static int count_event(void *arg, const struct event *ev)
{
	struct fixture *fx = arg;

	(void)ev;
	fx->events++;
	return 0;
}

static int fx_open(struct fixture *fx)
{
	char token[TOKEN_LEN + 1];

	memset(fx, 0, sizeof *fx);
	if (evlog_open(&fx->log, harness_tmpdir(), EVLOG_CREATE | EVLOG_NOSYNC, 0) ||
	    bootstrap_admin(fx->log, "root", INT64_C(1795766400000000), token) || !(fx->p = proj_new()) ||
	    command_follow(fx->log, fx->p, NULL, NULL, NULL, NULL))
		return -1;
	proto_init(&fx->pc);
	fx->pc.proj = fx->p;
	fx->pc.epoch = evlog_epoch(fx->log);
	fx->pc.committed = proj_seq(fx->p);
	fx->pc.on_event = count_event;
	fx->pc.arg = fx;
	return 0;
}

static void fx_close(struct fixture *fx)
{
	proto_release(&fx->pc);
	proj_free(fx->p);
	evlog_close(fx->log);
}

/* Run s as user with token; returns the request (reply or frame set). */
static struct req *run_as(struct fixture *fx, uint64_t user, uint64_t token, const char *s,
			  struct evlog_txn *txn)
{
	struct req *r = parse(s);

	r->user = user;
	r->token = token;
	if (proto_exec(&fx->pc, r, txn) != 0)
		abort();
	return r;
}

/* Run s as user 1 (the bootstrap admin, token 1). */
static struct req *run(struct fixture *fx, const char *s, struct evlog_txn *txn)
{
	return run_as(fx, 1, 1, s, txn);
}

static void t_exec_ping_subscribe(void)
{
	struct fixture fx;
	struct req *r;
	char msg[200];

	REQUIRE(fx_open(&fx) == 0);
	r = run(&fx, "{\"id\":1,\"op\":\"ping\"}", NULL);
	CHECK(json_is_true(json_object_get(r->reply, "pong")));
	CHECK_EQ_INT(json_integer_value(json_object_get(r->reply, "at")), 2);
	CHECK_EQ_INT(r->at, 2);        /* the seq it was answered at, for every kind */
	req_free(r);

	/* the same epoch and a seq we have: resumed there */
	snprintf(msg, sizeof msg, "{\"op\":\"subscribe\",\"since\":1,\"epoch\":\"%s\"}",
		 fx.pc.epoch);
	r = run(&fx, msg, NULL);
	CHECK(json_is_true(json_object_get(r->reply, "recovered")));
	CHECK_EQ_INT(r->sub_next, 2);
	req_free(r);
	/* another epoch: from the head */
	r = run(&fx, "{\"op\":\"subscribe\",\"since\":1,\"epoch\":\"other\"}", NULL);
	CHECK(json_is_false(json_object_get(r->reply, "recovered")));
	CHECK_EQ_INT(r->sub_next, 3);
	CHECK_EQ_INT(json_integer_value(json_object_get(r->reply, "head")), 2);
	proto_reset(r);
	CHECK(r->reply == NULL && r->sub_next == 0 && r->at == 0);
	req_free(r);
	fx_close(&fx);
}

/* Answers are kept only while the projection is the committed log. */
static void t_exec_query_cache(void)
{
	static const char q[] = "{\"id\":7,\"op\":\"query\",\"name\":\"getChangelogEntries\"}";
	struct fixture fx;
	struct req *a, *b;

	REQUIRE(fx_open(&fx) == 0);
	a = run(&fx, q, NULL);
	REQUIRE(a->frame != NULL);
	CHECK(strncmp((char *)a->frame->data, "{\"id\":7,\"ok\":true", 17) == 0);
	CHECK_EQ_INT(fx.pc.qc.misses, 1);
	CHECK_EQ_INT(fx.pc.qc.n, 1);
	b = run(&fx, "{\"id\":8,\"op\":\"query\",\"name\":\"getChangelogEntries\"}", NULL);
	CHECK_EQ_INT(fx.pc.qc.hits, 1);         /* same query, other id: shared answer */
	CHECK(strncmp((char *)b->frame->data, "{\"id\":8,\"ok\":true", 17) == 0);
	CHECK_EQ_INT(a->frame->len, b->frame->len);
	req_free(b);

	fx.pc.ahead = 1;                       /* a batch's own events applied */
	b = run(&fx, q, NULL);
	CHECK_EQ_INT(fx.pc.qc.hits, 1);         /* bypassed: neither read ... */
	CHECK_EQ_INT(fx.pc.qc.misses, 2);
	CHECK_EQ_INT(fx.pc.qc.n, 1);            /* ... nor kept */
	req_free(b);
	fx.pc.ahead = 0;
	fx.pc.committed = 1;                   /* projection past the committed seq */
	b = run(&fx, q, NULL);
	CHECK_EQ_INT(fx.pc.qc.hits, 1);
	req_free(b);
	req_free(a);
	fx_close(&fx);
}

static const char *error_code(const struct req *r)
{
	return json_string_value(json_object_get(json_object_get(r->reply, "error"), "code"));
}

/* A command in a txn: appended, applied, hooked; its cmd_id answers again,
 * for that command only. */
static void t_exec_command(void)
{
	static const char c[] = "{\"id\":3,\"op\":\"createEntry\",\"cmd_id\":\"x1\","
				"\"params\":{\"title\":\"Fix\",\"kind\":\"fix\"}}";
	struct fixture fx;
	struct evlog_txn *txn;
	struct req *r, *again, *bad;

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE(evlog_wbegin(fx.log, proj_seq(fx.p), NULL, &txn) == 0);
	r = run(&fx, c, txn);
	CHECK(json_is_true(json_object_get(r->reply, "ok")));
	CHECK_EQ_INT(json_integer_value(json_object_get(r->reply, "seq")), 3);
	CHECK_EQ_INT(json_integer_value(json_object_get(r->reply, "entry")), 1);
	CHECK_EQ_INT(fx.events, 1);
	CHECK_EQ_INT(fx.pc.ahead, 1);
	CHECK_EQ_INT(proj_seq(fx.p), 3);
	again = run(&fx, c, txn);              /* the retry: same answer, nothing new */
	CHECK_EQ_INT(json_integer_value(json_object_get(again->reply, "seq")), 3);
	CHECK_EQ_INT(json_integer_value(json_object_get(again->reply, "entry")), 1);
	CHECK_EQ_INT(proj_seq(fx.p), 3);
	/* the id reused for another command, or for other params: conflict */
	bad = run(&fx, "{\"op\":\"setStatus\",\"cmd_id\":\"x1\","
		  "\"params\":{\"entry\":1,\"status\":\"resolved\"}}", txn);
	CHECK(strcmp(error_code(bad), "conflict") == 0);
	CHECK(strstr(json_string_value(json_object_get(json_object_get(bad->reply, "error"),
						       "message")), "createEntry") != NULL);
	req_free(bad);
	bad = run(&fx, "{\"op\":\"createEntry\",\"cmd_id\":\"x1\","
		  "\"params\":{\"title\":\"Other\",\"kind\":\"fix\"}}", txn);
	CHECK(strcmp(error_code(bad), "conflict") == 0);
	req_free(bad);
	/* ... but the same params in another key order are the same command */
	bad = run(&fx, "{\"op\":\"createEntry\",\"cmd_id\":\"x1\","
		  "\"params\":{\"kind\":\"fix\",\"title\":\"Fix\"}}", txn);
	CHECK(json_is_true(json_object_get(bad->reply, "ok")));
	CHECK_EQ_INT(json_integer_value(json_object_get(bad->reply, "entry")), 1);
	req_free(bad);
	/* a record without a use (written before it was kept) matches anything */
	CHECK(evlog_wcmd_put(txn, 1, CL_STR("old-1"), 3, 1, NULL, NULL, "{\"seq\":3}", 9) == 0);
	bad = run(&fx, "{\"op\":\"setStatus\",\"cmd_id\":\"old-1\","
		  "\"params\":{\"entry\":1,\"status\":\"resolved\"}}", txn);
	CHECK(json_is_true(json_object_get(bad->reply, "ok")));
	CHECK_EQ_INT(json_integer_value(json_object_get(bad->reply, "seq")), 3);
	req_free(bad);
	CHECK_EQ_INT(proj_seq(fx.p), 3);
	bad = run(&fx, "{\"op\":\"setStatus\",\"params\":{\"entry\":99,\"status\":\"resolved\"}}",
		  txn);
	CHECK(json_is_false(json_object_get(bad->reply, "ok")));
	CHECK_EQ_INT(proj_seq(fx.p), 3);
	CHECK_EQ_INT(evlog_wcommit(txn), 0);
	req_free(r);
	req_free(again);
	req_free(bad);

	/* without a txn a command cannot run: unavailable, nothing applied */
	r = run(&fx, c, NULL);
	CHECK(strcmp(json_string_value(json_object_get(json_object_get(r->reply, "error"),
						       "code")), "unavailable") == 0);
	req_free(r);
	fx_close(&fx);
}

/* A token revoked earlier in the same txn answers nothing more: not a
 * command (not even a retry of one it made), not a query, not a ping. */
static void t_exec_revoked_in_batch(void)
{
	static const char c[] = "{\"op\":\"createEntry\",\"cmd_id\":\"y1\","
				"\"params\":{\"title\":\"Fix\",\"kind\":\"fix\"}}";
	struct fixture fx;
	struct evlog_txn *txn;
	struct req *r;

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE(evlog_wbegin(fx.log, proj_seq(fx.p), NULL, &txn) == 0);
	r = run(&fx, c, txn);
	CHECK(json_is_true(json_object_get(r->reply, "ok")));
	req_free(r);
	r = run(&fx, "{\"op\":\"revokeToken\",\"params\":{\"token\":1}}", txn);
	CHECK(json_is_true(json_object_get(r->reply, "ok")));
	req_free(r);
	CHECK_EQ_INT(proj_seq(fx.p), 4);
	r = run(&fx, "{\"op\":\"createEntry\",\"params\":{\"title\":\"Late\",\"kind\":\"fix\"}}",
		txn);
	CHECK(strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	r = run(&fx, c, txn);                  /* the retry of an earlier command too */
	CHECK(strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	r = run(&fx, "{\"id\":1,\"op\":\"query\",\"name\":\"getChangelogEntries\"}", txn);
	CHECK(r->frame == NULL && strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	r = run(&fx, "{\"id\":2,\"op\":\"ping\"}", txn);
	CHECK(strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	CHECK_EQ_INT(proj_seq(fx.p), 4);       /* nothing appended after the revoke */
	evlog_wabort(txn);
	fx_close(&fx);
}

/* An admin revokes a member's token; the member's next command of the same
 * txn is refused, while a token of another user never passes for theirs. */
static void t_exec_revoked_by_admin_in_batch(void)
{
	static const char c[] = "{\"op\":\"createEntry\",\"params\":{\"title\":\"M\",\"kind\":\"fix\"}}";
	struct fixture fx;
	struct evlog_txn *txn;
	struct req *r;

	REQUIRE(fx_open(&fx) == 0);
	REQUIRE(evlog_wbegin(fx.log, proj_seq(fx.p), NULL, &txn) == 0);
	r = run(&fx, "{\"op\":\"createUser\",\"params\":{\"name\":\"mia\"}}", txn);
	REQUIRE(json_is_true(json_object_get(r->reply, "ok")));
	CHECK_EQ_INT(json_integer_value(json_object_get(r->reply, "token_id")), 2);
	req_free(r);
	r = run_as(&fx, 2, 2, c, txn);
	CHECK(json_is_true(json_object_get(r->reply, "ok")));
	req_free(r);
	r = run_as(&fx, 2, 1, c, txn);         /* user 2 with user 1's token */
	CHECK(strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	r = run_as(&fx, 2, 99, c, txn);        /* no such token */
	CHECK(strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	r = run(&fx, "{\"op\":\"revokeToken\",\"params\":{\"token\":2}}", txn);
	CHECK(json_is_true(json_object_get(r->reply, "ok")));
	req_free(r);
	r = run_as(&fx, 2, 2, c, txn);
	CHECK(strcmp(error_code(r), "unauthorized") == 0);
	req_free(r);
	r = run(&fx, c, txn);                  /* the admin's own token still works */
	CHECK(json_is_true(json_object_get(r->reply, "ok")));
	req_free(r);
	evlog_wabort(txn);
	fx_close(&fx);
}

int main(void)
{
	RUN(t_parse_forms);
	RUN(t_parse_refusals);
	RUN(t_build);
	RUN(t_refuse_and_error);
	RUN(t_exec_ping_subscribe);
	RUN(t_exec_query_cache);
	RUN(t_exec_command);
	RUN(t_exec_revoked_in_batch);
	RUN(t_exec_revoked_by_admin_in_batch);
	return harness_done();
}
