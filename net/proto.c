/*
 * proto.c - request parsing and execution (see proto.h, docs/protocol.md).
 *
 * Message forms, told apart by "op":
 *   query        {"op":"query","name":N,"params":{}}  -> envelope with result
 *   command      {"op":<command>,"params":{},"cmd_id":C}
 *                {"op":"command","name":<command>,...} (same thing)
 *   subscribe    {"op":"subscribe","since":SEQ,"epoch":E}
 *   unsubscribe, ping
 *   seed form    no "op", {"stored_query_name":N,...}  -> the bare result
 * Every reply echoes "id" when the request had a usable one.
 *
 * Commands run inside the flush's write txn: idempotency lookup, cmd_exec,
 * append, apply, stage the push, record the result for retries. Nothing here
 * sends: replies are held on the request until srv_flush has committed.
 */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/cmd.h"
#include "../store/token.h"
#include "push.h"
#include "server.h"
#include "session.h"

void req_refuse(struct req *r, int code, const char *message)
{
	size_t n = strlen(message);

	r->kind = REQ_BAD;
	r->err_code = code;
	if (n >= sizeof r->err_msg)
		n = sizeof r->err_msg - 1;
	memcpy(r->err_msg, message, n);
	r->err_msg[n] = '\0';
}

void req_free(struct req *r)
{
	if (!r)
		return;
	json_decref(r->reply);
	json_decref(r->root);
	free(r);
}

int req_writes(const struct req *r)
{
	return r->kind == REQ_CMD && !r->poisoned && !r->unavailable;
}

/* params: absent -> a new empty object inside root; else must be an object. */
static int req_params(struct req *r)
{
	json_t *p = json_object_get(r->root, "params");

	if (!p || json_is_null(p)) {
		p = json_object();
		if (!p || json_object_set_new(r->root, "params", p))
			return CL_ENOMEM;
	}
	if (!json_is_object(p)) {
		req_refuse(r, CMD_BAD_REQUEST, "params must be an object");
		return 1;
	}
	r->params = p;
	return 0;
}

static void req_parse_command(struct req *r, const char *name)
{
	json_t *c = json_object_get(r->root, "cmd_id");

	r->kind = REQ_CMD;
	r->name = name;
	if (req_params(r))
		return;
	if (c && !json_is_null(c)) {
		size_t n;

		if (!json_is_string(c)) {
			req_refuse(r, CMD_BAD_REQUEST, "cmd_id must be a string");
			return;
		}
		n = json_string_length(c);
		if (n < 1 || n > CL_MAX_CMD_ID) {
			req_refuse(r, CMD_BAD_REQUEST, "cmd_id must be 1..128 bytes");
			return;
		}
		r->cmd_id.p = json_string_value(c);
		r->cmd_id.n = n;
	}
}

static void req_parse_subscribe(struct req *r)
{
	json_t *since = json_object_get(r->root, "since");
	json_t *epoch = json_object_get(r->root, "epoch");

	r->kind = REQ_SUB;
	if (since && !json_is_null(since)) {
		if (!json_is_integer(since) || json_integer_value(since) < 0) {
			req_refuse(r, CMD_BAD_REQUEST, "since must be a non-negative integer");
			return;
		}
		r->since = (uint64_t)json_integer_value(since);
		r->has_since = 1;
	}
	if (epoch && !json_is_null(epoch)) {
		if (!json_is_string(epoch)) {
			req_refuse(r, CMD_BAD_REQUEST, "epoch must be a string");
			return;
		}
		r->epoch = json_string_value(epoch);
	}
}

static void req_parse_op(struct req *r, const char *op)
{
	json_t *name = json_object_get(r->root, "name");
	char msg[160];

	if (strcmp(op, "query") == 0) {
		if (!json_is_string(name)) {
			req_refuse(r, CMD_BAD_REQUEST, "a query needs \"name\" (a string)");
			return;
		}
		r->kind = REQ_QUERY;
		r->name = json_string_value(name);
		req_params(r);
	} else if (strcmp(op, "command") == 0) {
		if (!json_is_string(name) || !cmd_is_command(json_string_value(name))) {
			req_refuse(r, CMD_BAD_REQUEST, "a command needs \"name\" naming a command");
			return;
		}
		req_parse_command(r, json_string_value(name));
	} else if (strcmp(op, "subscribe") == 0) {
		req_parse_subscribe(r);
	} else if (strcmp(op, "unsubscribe") == 0) {
		r->kind = REQ_UNSUB;
	} else if (strcmp(op, "ping") == 0) {
		r->kind = REQ_PING;
	} else if (cmd_is_command(op)) {
		req_parse_command(r, op);
	} else {
		snprintf(msg, sizeof msg, "unknown op \"%.64s\"", op);
		req_refuse(r, CMD_BAD_REQUEST, msg);
	}
}

struct req *req_parse(const char *buf, size_t len)
{
	struct req *r = calloc(1, sizeof *r);
	json_error_t err;
	json_t *op, *id, *sqn;
	char msg[200];

	if (!r)
		return NULL;
	if (len == 0) {
		req_refuse(r, CMD_BAD_REQUEST, "empty message");
		return r;
	}
	r->root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err);
	if (!r->root) {
		snprintf(msg, sizeof msg, "malformed JSON at byte %d: %.140s", err.position, err.text);
		req_refuse(r, CMD_BAD_REQUEST, msg);
		return r;
	}
	if (!json_is_object(r->root)) {
		req_refuse(r, CMD_BAD_REQUEST, "a request must be a JSON object");
		return r;
	}
	id = json_object_get(r->root, "id");
	if (id && !json_is_null(id)) {
		if (!json_is_string(id) && !json_is_integer(id)) {
			req_refuse(r, CMD_BAD_REQUEST, "id must be a string or an integer");
			return r;
		}
		r->id = id;
	}
	op = json_object_get(r->root, "op");
	if (!op) {
		sqn = json_object_get(r->root, "stored_query_name");
		if (!sqn) {
			req_refuse(r, CMD_BAD_REQUEST, "missing \"op\"");
			return r;
		}
		if (!json_is_string(sqn)) {
			req_refuse(r, CMD_BAD_REQUEST, "stored_query_name must be a string");
			return r;
		}
		r->kind = REQ_SEED;
		r->name = json_string_value(sqn);
		req_params(r);
		return r;
	}
	if (!json_is_string(op)) {
		req_refuse(r, CMD_BAD_REQUEST, "op must be a string");
		return r;
	}
	req_parse_op(r, json_string_value(op));
	return r;
}

/* ---- replies ---------------------------------------------------------- */

static json_t *proto_ok(json_t *id)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if ((id && json_object_set(o, "id", id)) ||
	    json_object_set_new(o, "ok", json_true())) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *proto_error(json_t *id, int code, const char *message)
{
	const char *name = cmd_code_name(code);

	return json_pack("{s:O*,s:b,s:{s:s,s:s}}", "id", id, "ok", 0, "error",
			 "code", name ? name : "internal", "message", message);
}

static json_t *proto_unavailable(json_t *id, int err)
{
	char msg[200];

	if (err == CL_ENOSPC)
		snprintf(msg, sizeof msg, "the server's disk is full; nothing was applied, retry later");
	else
		snprintf(msg, sizeof msg, "the log could not be written (%s%s); nothing was "
			 "applied, retry later", cl_strerror(err),
			 err == CL_EIO ? ": disk full or failing" : "");
	return proto_error(id, CMD_UNAVAILABLE, msg);
}

/* ---- execution -------------------------------------------------------- */

static json_t *proto_query(struct server *s, struct req *r)
{
	struct proj_qctx q = { .viewer = r->user, .load = srv_load_event, .arg = s };
	struct cl_fail fail = { CMD_INTERNAL, "query failed" };
	json_t *result = NULL, *o;
	int rc;

	rc = proj_query(s->proj, r->name, r->params, &q, &result, &fail);
	if (rc < 0)
		return proto_error(r->id, fail.code, fail.message);
	o = proto_ok(r->id);
	if (!o || json_object_set_new(o, "epoch", json_string(s->epoch)) ||
	    json_object_set_new(o, "at", json_integer((json_int_t)proj_seq(s->proj))) ||
	    json_object_set_new(o, "result", result)) {
		json_decref(o);
		return NULL;
	}
	if (strcmp(r->name, "whoami") == 0 &&
	    json_object_set_new(o, "token", json_integer((json_int_t)r->token))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The seed's form: answered with the bare result, no envelope. */
static json_t *proto_seed(struct server *s, struct req *r)
{
	struct proj_qctx q = { .viewer = r->user, .load = srv_load_event, .arg = s };
	struct cl_fail fail = { CMD_INTERNAL, "query failed" };
	json_t *result = NULL;

	if (strcmp(r->name, "getChangelogEntries") == 0 &&
	    json_object_size(r->params) == 0)
		return proj_seed_entries(s->proj);
	if (proj_query(s->proj, r->name, r->params, &q, &result, &fail) < 0)
		return proto_error(NULL, fail.code, fail.message);
	return result;
}

static json_t *proto_subscribe(struct server *s, struct req *r)
{
	uint64_t head = proj_seq(s->proj), since;
	int recovered = r->epoch && r->has_since && strcmp(r->epoch, s->epoch) == 0 &&
			r->since <= head;
	json_t *o = proto_ok(r->id);

	since = recovered ? r->since : head;
	r->sub_next = since + 1;
	if (!o || json_object_set_new(o, "epoch", json_string(s->epoch)) ||
	    json_object_set_new(o, "recovered", json_boolean(recovered)) ||
	    json_object_set_new(o, "since", json_integer((json_int_t)since)) ||
	    json_object_set_new(o, "head", json_integer((json_int_t)head))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *proto_ping(struct server *s, struct req *r)
{
	json_t *o = proto_ok(r->id);

	if (!o || json_object_set_new(o, "pong", json_true()) ||
	    json_object_set_new(o, "at", json_integer((json_int_t)proj_seq(s->proj)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* A retried command id: the stored result, as the reply. */
static int proto_cmd_replay(struct req *r, const struct evlog_cmd *rec)
{
	json_t *stored = json_loadb(rec->result, rec->result_len, 0, NULL), *o;

	if (!json_is_object(stored)) {
		json_decref(stored);
		r->reply = proto_error(r->id, CMD_INTERNAL, "stored result of this cmd_id is unreadable");
		return r->reply ? 0 : CL_ENOMEM;
	}
	o = proto_ok(r->id);
	if (!o || json_object_update(o, stored)) {
		json_decref(o);
		json_decref(stored);
		return CL_ENOMEM;
	}
	json_decref(stored);
	r->reply = o;
	return 0;
}

static int proto_command(struct server *s, struct req *r, struct evlog_txn *txn)
{
	struct cmd_ctx ctx = { .actor = r->user, .now = cl_now_us() };
	struct cmd_result res;
	struct evlog_cmd rec;
	char tok[TOKEN_LEN + 1];
	uint8_t tokhash[EV_HASH_LEN];
	json_t *stored = NULL, *o = NULL;
	uint64_t first, last;
	char *text = NULL;
	size_t i;
	int rc;

	if (r->poisoned) {
		r->reply = proto_error(r->id, CMD_INTERNAL,
				       "the server could not apply this command; it was not applied");
		return r->reply ? 0 : CL_ENOMEM;
	}
	if (r->unavailable || !txn) {
		r->reply = proto_unavailable(r->id, r->unavailable ? r->unavailable : CL_EIO);
		return r->reply ? 0 : CL_ENOMEM;
	}
	if (r->cmd_id.n) {
		rc = evlog_wcmd_get(txn, r->user, r->cmd_id, &rec);
		if (rc == 0)
			return proto_cmd_replay(r, &rec);
		if (rc != CL_ENOTFOUND)
			return rc;
	}
	if (strcmp(r->name, "createUser") == 0 || strcmp(r->name, "issueToken") == 0) {
		if (token_generate(tok, tokhash))
			return CL_EIO;
		ctx.new_token = tok;
		ctx.new_token_hash = tokhash;
	}
	memset(&res, 0, sizeof res);
	rc = cmd_exec(s->proj, r->name, r->params, &ctx, &res);
	if (rc < 0) {
		r->reply = proto_error(r->id, res.fail.code, res.fail.message);
		cmd_result_release(&res);
		return r->reply ? 0 : CL_ENOMEM;
	}
	first = evlog_wlast(txn) + 1;
	for (i = 0; i < res.n; i++) {
		struct event *ev = &res.ev[i];
		json_t *push;

		if (r->cmd_id.n && ev->cmd_id.n == 0)
			ev->cmd_id = r->cmd_id;
		rc = evlog_wappend(txn, ev);
		if (rc)
			goto out;
		rc = proj_apply(s->proj, ev);
		if (rc)
			goto out;
		s->dirty = 1;
		push = push_build(s->proj, ev, 0);
		rc = push ? srv_stage(s, ev, push) : CL_ENOMEM;
		if (rc)
			goto out;
	}
	last = evlog_wlast(txn);
	rc = CL_ENOMEM;
	stored = json_object();
	if (!stored || json_object_set_new(stored, "seq", json_integer((json_int_t)last)) ||
	    (res.reply && json_object_update(stored, res.reply)))
		goto out;
	if (r->cmd_id.n) {
		text = json_dumps(stored, JSON_COMPACT | JSON_SORT_KEYS);
		if (!text)
			goto out;
		rc = evlog_wcmd_put(txn, r->user, r->cmd_id, first, (uint32_t)res.n,
				    text, strlen(text));
		if (rc)
			goto out;
		rc = CL_ENOMEM;
	}
	o = proto_ok(r->id);
	if (!o || json_object_update(o, stored) ||
	    (res.secret && json_object_update(o, res.secret)))
		goto out;
	r->reply = o;
	o = NULL;
	rc = 0;
out:
	json_decref(o);
	free(text);
	json_decref(stored);
	cmd_result_release(&res);
	return rc;
}

int proto_exec(struct server *s, struct req *r, struct evlog_txn *txn)
{
	if (r->poisoned && r->kind != REQ_CMD) {
		r->reply = proto_error(r->id, CMD_INTERNAL, "the server could not answer this request");
		return r->reply ? 0 : CL_ENOMEM;
	}
	switch (r->kind) {
	case REQ_CMD:
		return proto_command(s, r, txn);
	case REQ_QUERY:
		r->reply = proto_query(s, r);
		break;
	case REQ_SEED:
		r->reply = proto_seed(s, r);
		break;
	case REQ_SUB:
		r->reply = proto_subscribe(s, r);
		break;
	case REQ_UNSUB:
		r->reply = proto_ok(r->id);
		break;
	case REQ_PING:
		r->reply = proto_ping(s, r);
		break;
	default:
		r->reply = proto_error(r->id, r->err_code, r->err_msg);
		break;
	}
	return r->reply ? 0 : CL_ENOMEM;
}

void proto_reset(struct req *r)
{
	json_decref(r->reply);
	r->reply = NULL;
	r->sub_next = 0;
}

void proto_deliver(struct server *s, struct req *r)
{
	(void)s;
	if (!r->sess || !r->reply)
		return;
	if (r->kind == REQ_SUB && json_is_true(json_object_get(r->reply, "ok")))
		sess_subscribe(r->sess, r->sub_next);
	else if (r->kind == REQ_UNSUB)
		sess_unsubscribe(r->sess);
	sess_send_json(r->sess, r->reply);
}
