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
 * Commands run inside the caller's write txn through command_run_txn
 * (store/command.c); the caller's on_event hook stages each event's push.
 * Nothing here sends: replies are held on the request until the caller has
 * committed.
 */
#include "proto.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/cmd.h"
#include "../core/query.h"

void req_refuse(struct req *r, int code, const char *message)
{
	size_t n = strlen(message);

	r->kind = REQ_BAD;
	r->fail.code = code;
	if (n >= sizeof r->fail.message)
		n = sizeof r->fail.message - 1;
	memcpy(r->fail.message, message, n);
	r->fail.message[n] = '\0';
}

void req_free(struct req *r)
{
	if (!r)
		return;
	json_decref(r->reply);
	frame_unref(r->frame);
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
	} else if (strcmp(op, "presence") == 0) {
		json_t *hidden = json_object_get(r->root, "hidden");

		r->kind = REQ_PRESENCE;
		if (hidden && !json_is_null(hidden) && !json_is_boolean(hidden))
			req_refuse(r, CMD_BAD_REQUEST, "hidden must be true or false");
		r->hidden = json_is_true(hidden);
	} else if (cmd_is_command(op)) {
		req_parse_command(r, op);
	} else {
		snprintf(msg, sizeof msg, "unknown op \"%.64s\"", op);
		req_refuse(r, CMD_BAD_REQUEST, msg);
	}
}

static void req_read(struct req *r);

struct req *req_parse(const char *buf, size_t len)
{
	struct req *r = calloc(1, sizeof *r);
	json_error_t err;
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
	req_read(r);
	return r;
}

struct req *req_build(json_t *root)
{
	struct req *r = calloc(1, sizeof *r);

	if (!r) {
		json_decref(root);
		return NULL;
	}
	r->root = root;
	req_read(r);
	return r;
}

/* r->root parsed: tell the forms apart and check their members. */
static void req_read(struct req *r)
{
	json_t *op, *id, *sqn;

	if (!json_is_object(r->root)) {
		req_refuse(r, CMD_BAD_REQUEST, "a request must be a JSON object");
		return;
	}
	id = json_object_get(r->root, "id");
	if (id && !json_is_null(id)) {
		if (!json_is_string(id) && !json_is_integer(id)) {
			req_refuse(r, CMD_BAD_REQUEST, "id must be a string or an integer");
			return;
		}
		r->id = id;
	}
	op = json_object_get(r->root, "op");
	if (!op) {
		sqn = json_object_get(r->root, "stored_query_name");
		if (!sqn) {
			req_refuse(r, CMD_BAD_REQUEST, "missing \"op\"");
			return;
		}
		if (!json_is_string(sqn)) {
			req_refuse(r, CMD_BAD_REQUEST, "stored_query_name must be a string");
			return;
		}
		r->kind = REQ_SEED;
		r->name = json_string_value(sqn);
		req_params(r);
		return;
	}
	if (!json_is_string(op)) {
		req_refuse(r, CMD_BAD_REQUEST, "op must be a string");
		return;
	}
	req_parse_op(r, json_string_value(op));
	return;
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

/* ---- serialized answers and the query cache ------------------------- */

/*
 * Answers and cache keys are serialized by jansson into buffers reused
 * for every request (struct pbuf, push.h), held in the context.
 */
void proto_init(struct proto_ctx *c)
{
	c->ahead = 0;
	memset(&c->outb, 0, sizeof c->outb);
	memset(&c->keyb, 0, sizeof c->keyb);
	memset(&c->idb, 0, sizeof c->idb);
	memset(&c->pageb, 0, sizeof c->pageb);
	proto_batch_begin(c);
	c->fresh_waits = 0;
	c->fresh_partial = 0;
	qcache_init(&c->qc, PROTO_QCACHE_ENTRIES, PROTO_QCACHE_BYTES);
}

void proto_release(struct proto_ctx *c)
{
	qcache_release(&c->qc);
	pbuf_free(&c->outb);
	pbuf_free(&c->keyb);
	pbuf_free(&c->idb);
	free(c->pageb.p);
	memset(&c->pageb, 0, sizeof c->pageb);
}

void proto_batch_begin(struct proto_ctx *c)
{
	c->fresh_left = PROTO_FRESH_BATCH;
	c->batch_work = 0;
}

/* Empty the page buffer; give it back once it has grown past 1 MiB. */
static void proto_page_trim(struct proto_ctx *c)
{
	c->pageb.len = 0;
	if (c->pageb.cap > ((size_t)1 << 20)) {
		free(c->pageb.p);
		memset(&c->pageb, 0, sizeof c->pageb);
	}
}

/*
 * May an answer be taken from the cache, or put in it, now? Only while the
 * projection is exactly the committed log: no event of the open write txn
 * applied (c->ahead) and proj_seq == c->committed. Then the state is
 * named by its seq for good (a committed prefix of the log never changes),
 * so an answer kept under that seq is right for anyone who asks at it.
 *
 * Inside a batch the projection runs ahead by the batch's own events
 * before they commit. Later requests of that batch must see them (their
 * replies wait for the commit, so that is safe for them), but such an
 * answer must not be kept: if the commit fails, the projection is rebuilt
 * from the log and the same seqs are reused by other events (the retry
 * without the poisoned command, or another process's append), so an answer
 * kept under speculative seq N+1 could reach another client later,
 * describing events that never happened. Nor may a kept answer be served
 * then: it is from c->committed and would hide the batch's own writes from
 * the requests after them. So while the projection is ahead the cache is
 * bypassed both ways. Events of other processes reach the projection only
 * through command_follow in server.c, which publishes each before the next,
 * so they keep proj_seq == c->committed and change the seq, which empties
 * the cache (qcache_at) on the next query: a kept answer is never served
 * at a seq other than the one it was computed at.
 */
static int proto_cacheable(const struct proto_ctx *c)
{
	return !c->ahead && proj_seq(c->proj) == c->committed;
}

/*
 * The cache key: form, name, the viewer for queries whose result depends
 * on it (proj_query_by_viewer), and the params as canonical JSON (sorted
 * keys; duplicates were refused at parse time). Two keys are equal only
 * if the requests are the same query of the same state for this purpose.
 */
static int proto_qkey(struct pbuf *keyb, const struct req *r)
{
	int by_viewer = proj_query_by_viewer(r->name);

	keyb->len = 0;
	if (pbuf_add(keyb, r->kind == REQ_SEED ? "s" : "q", 1) ||
	    pbuf_add(keyb, r->name, strlen(r->name) + 1) ||
	    pbuf_add(keyb, by_viewer ? "v" : "-", 1) ||
	    (by_viewer && pbuf_add(keyb, &r->user, sizeof r->user)) ||
	    pbuf_dump(keyb, r->params, JSON_SORT_KEYS))
		return CL_ENOMEM;
	return 0;
}

/* Refuse r: the answer memory (--max-memory) is in use. */
static int proto_no_room(struct req *r)
{
	r->reply = proto_error(r->kind == REQ_SEED ? NULL : r->id, CMD_UNAVAILABLE,
			       "the server's memory for answers is in use; nothing was "
			       "answered, retry later");
	return r->reply ? 1 : CL_ENOMEM;
}

/* What proto_compute found (besides 0, 1 and CL_E* codes). */
#define PROTO_NO_ROOM 2   /* the answer needs more room than it had: *need */

/*
 * An answer that core shaped to a room smaller than PROTO_ANSWER_MAX
 * (cut). It waits if it may; on a first try it asks for room (returns
 * PROTO_NO_ROOM); else it is refused as unavailable, unless it is a page
 * with entries (a partial page, which the client continues from
 * next_cursor). Returns 0 to keep result, else what proto_compute returns.
 */
static int proto_cut(struct req *r, int has_entries, int may_wait, int retry)
{
	if (may_wait) {
		r->waiting = 1;
		return 1;
	}
	if (retry)
		return PROTO_NO_ROOM;
	if (r->kind == REQ_QUERY && has_entries)
		return 0;
	return proto_no_room(r);
}

static int proto_has_entries(const json_t *result)
{
	return json_array_size(json_object_get(result, "entries")) > 0;
}

/*
 * Run the query within room bytes (core's size bound, before anything is
 * built). On success 0 and *ans: the seed form's bare result, or the
 * envelope {"ok":true,"epoch","at","result"} that every asker of this
 * query at this seq shares ("id" and whoami's "token" are per request and
 * are spliced in by proto_answer_frame); *keep: the answer does not
 * depend on the room, so it may be cached. 1 when refused, with r->reply
 * set to the error, or when r is waiting (r->waiting); PROTO_NO_ROOM
 * (retry set: the caller may find room and ask again); CL_ENOMEM.
 */
static int proto_compute(struct proto_ctx *c, struct req *r, size_t room, int may_wait,
			 int retry, json_t **ans, int *keep, size_t *need)
{
	int cut = 0;
	uint64_t size = 0;
	struct proj_qctx q = { .viewer = r->user, .load = c->load, .arg = c->arg,
			       .size_max = room, .size = &size, .cut = &cut };
	struct cl_fail fail = { CMD_INTERNAL, "query failed" };
	json_t *result = NULL;
	int small = room < PROTO_ANSWER_MAX, rc = 0;

	*ans = NULL;
	*keep = 1;
	if (proj_query(c->proj, r->name, r->params, &q, &result, &fail) < 0) {
		if (!(cut && small)) {
			r->reply = proto_error(r->kind == REQ_SEED ? NULL : r->id, fail.code,
					       fail.message);
			return r->reply ? 1 : CL_ENOMEM;
		}
		rc = proto_cut(r, 0, may_wait, retry);
	} else if (cut && small) {
		*keep = 0;   /* shaped by this moment's memory, not by the state */
		rc = proto_cut(r, proto_has_entries(result), may_wait, retry);
	}
	if (rc) {
		json_decref(result);
		*need = size > room ? (size_t)size : room + PROTO_ANSWER_SMALL;
		return rc;
	}
	if (r->kind == REQ_SEED) {
		*ans = result;
		return 0;
	}
	*ans = json_pack("{s:b,s:s,s:I,s:o}", "ok", 1, "epoch", c->epoch,
			 "at", (json_int_t)proj_seq(c->proj), "result", result);
	return *ans ? 0 : CL_ENOMEM;
}

/* Is r a page of getChangelogEntries (either form) that proto_page builds? */
static int proto_is_page(const struct req *r)
{
	return strcmp(r->name, "getChangelogEntries") == 0 &&
	       (r->kind == REQ_QUERY || json_object_size(r->params) == 0);
}

/*
 * The envelope of a page, up to its result: jansson writes the envelope
 * proto_compute would make with a result of 0, and its last two bytes
 * ("0}") are left off; proto_page closes it after the page.
 */
static int proto_page_head(struct proto_ctx *c, int seed)
{
	json_t *env = seed ? NULL : json_pack("{s:b,s:s,s:I,s:i}", "ok", 1, "epoch", c->epoch,
					      "at", (json_int_t)proj_seq(c->proj), "result", 0);
	char *t = env ? json_dumps(env, JSON_COMPACT) : NULL, *np;
	size_t n = t ? strlen(t) : 2, want = c->page_pre + n;

	json_decref(env);
	if (!seed && !t)
		return CL_ENOMEM;
	CL_ASSERT(seed || (n >= 2 && t[n - 2] == '0' && t[n - 1] == '}'));
	n -= 2;
	if (want > c->pageb.cap) {
		if (!(np = realloc(c->pageb.p, want))) {
			free(t);
			return CL_ENOMEM;
		}
		c->pageb.p = np;
		c->pageb.cap = want;
	}
	if (n)
		memcpy(c->pageb.p + c->page_pre, t, n);
	c->pageb.len = c->page_pre + n;
	free(t);
	return 0;
}

/*
 * A page's text goes into c->pageb after c->page_pre bytes of headroom:
 * a frame's header, LWS_PRE and the reply's "{"id":ID" (in c->idb), so
 * that the reply frame is made of the buffer itself (proto_page_frame):
 * a 16 MiB page is not copied again (each copy of fresh memory cost
 * ~5 ms here, most of it page faults).
 */
static int proto_page_pre(struct proto_ctx *c, const struct req *r)
{
	static const char idk[] = "{\"id\":";

	c->idb.len = 0;
	if (r->kind == REQ_QUERY && r->id &&
	    (pbuf_add(&c->idb, idk, sizeof idk - 1) || pbuf_dump(&c->idb, r->id, JSON_ENCODE_ANY)))
		return CL_ENOMEM;
	c->page_pre = FRAME_HEAD + c->idb.len;
	return 0;
}

/*
 * The reply frame of the page in c->pageb (len bytes of shared text at
 * page_pre): the text's "{" becomes the "," after the id, which goes in
 * front; the buffer becomes the frame (c->pageb is left empty).
 */
static struct frame *proto_page_frame(struct proto_ctx *c, size_t len)
{
	char *base = c->pageb.p;
	size_t idn = c->idb.len;

	if (idn) {
		CL_ASSERT(base[c->page_pre] == '{');
		base[c->page_pre] = ',';
		memcpy(base + FRAME_HEAD, c->idb.p, idn);
	}
	memset(&c->pageb, 0, sizeof c->pageb);
	return frame_adopt(base, idn + len);
}

/*
 * A page (proto_is_page) within room bytes, as text in c->pageb, put
 * together from the entry text cache: returns as proto_compute. The
 * entries' texts the cache lacks are made within what is left of the
 * batch's budget (c->fresh_left); a page that needs more waits for a later
 * batch when it may (r->waiting; at most PROTO_FRESH_WAITS times), else it
 * ends there (partial) and is not kept.
 */
static int proto_page(struct proto_ctx *c, struct req *r, size_t room, int may_wait, int retry,
		      int *keep, size_t *need)
{
	static const char none[] = "{\"entries\":[]";
	int cut = 0, unready = 0, fresh_cut = 0, seed = r->kind == REQ_SEED, rc = 0;
	int can_wait = r->sess != NULL && r->held < PROTO_FRESH_WAITS;
	uint64_t size = 0, work = 0, fresh = c->fresh_left;
	struct proj_qctx q = { .viewer = r->user, .load = c->load, .arg = c->arg,
			       .work = &work, .size_max = room, .size = &size, .cut = &cut,
			       .fresh_left = &c->fresh_left, .unready = can_wait ? &unready : NULL,
			       .fresh_cut = &fresh_cut };
	struct cl_fail fail = { CMD_INTERNAL, "query failed" };
	int small = room < PROTO_ANSWER_MAX, empty, failed;
	size_t at;

	*keep = 1;
	c->pageb.len = 0;
	if (can_wait && c->batch_work >= PROTO_WORK_BATCH) {
		c->fresh_waits++;
		r->waiting = 1;   /* this batch has done its pages' work */
		return 1;
	}
	if (proto_page_pre(c, r) || proto_page_head(c, seed))
		return CL_ENOMEM;
	at = c->pageb.len;
	failed = proj_entries_text(c->proj, r->params, seed, &q, &c->pageb, &fail) < 0;
	c->batch_work += work + (c->pageb.len - at) / 4 + (fresh - c->fresh_left) * 4;
	if (failed) {
		c->pageb.len = 0;
		if (!(cut && small)) {
			r->reply = proto_error(seed ? NULL : r->id, fail.code, fail.message);
			return r->reply ? 1 : CL_ENOMEM;
		}
		rc = proto_cut(r, 0, may_wait, retry);
	} else if (unready) {
		c->pageb.len = 0;
		c->fresh_waits++;
		r->waiting = 1;
		return 1;
	} else if (seed && cut) {   /* a bare array cannot say it is partial */
		c->pageb.len = 0;
		if (!small) {
			r->reply = proto_error(NULL, CMD_TOO_LARGE, "the newest 500 entries are too "
					       "large for one answer; page with getChangelogEntries");
			return r->reply ? 1 : CL_ENOMEM;
		}
		rc = proto_cut(r, 0, may_wait, retry);
	} else if (cut && small) {
		*keep = 0;   /* shaped by this moment's memory, not by the state */
		empty = c->pageb.len - at >= sizeof none - 1 &&
			memcmp(c->pageb.p + at, none, sizeof none - 1) == 0;
		rc = proto_cut(r, !empty, may_wait, retry);
	}
	if (rc) {
		c->pageb.len = 0;
		*need = size > room ? (size_t)size : room + PROTO_ANSWER_SMALL;
		return rc;
	}
	if (fresh_cut) {
		*keep = 0;   /* shaped by the cache and the batch's budget */
		c->fresh_partial++;
	}
	if (!seed)
		c->pageb.p[c->pageb.len++] = '}';   /* PROJ_TEXT_SPARE left room for it */
	return 0;
}

/*
 * Any stored query within room bytes: its shared answer text (*text, *len:
 * in c->pageb or c->outb) and whether it may be kept (*keep); returns as
 * proto_compute.
 */
static int proto_build(struct proto_ctx *c, struct req *r, size_t room, int may_wait,
		       int retry, int *keep, size_t *need, const char **text, size_t *len)
{
	json_t *ans;
	int rc;

	if (proto_is_page(r)) {
		rc = proto_page(c, r, room, may_wait, retry, keep, need);
		if (rc == 0) {
			*text = c->pageb.p + c->page_pre;
			*len = c->pageb.len - c->page_pre;
		}
		return rc;
	}
	rc = proto_compute(c, r, room, may_wait, retry, &ans, keep, need);
	if (rc)
		return rc;
	c->outb.len = 0;
	rc = pbuf_dump(&c->outb, ans, JSON_ENCODE_ANY);
	json_decref(ans);
	*text = c->outb.p;
	*len = c->outb.len;
	return rc;
}

/*
 * The reply frame from the shared answer text: the seed form's is the text
 * itself; the query form's is the text with the request's "id" first and
 * whoami's "token" last, as proto_ok and proto_compute would have put them
 * in one object. The values are jansson's output; only the member names
 * and separators are written here.
 */
static struct frame *proto_answer_frame(struct pbuf *idb, const struct req *r,
					const char *text, size_t len)
{
	static const char idk[] = "{\"id\":", tokk[] = ",\"token\":";
	int whoami = r->kind == REQ_QUERY && strcmp(r->name, "whoami") == 0;
	char tok[32];
	size_t toklen = 0, need = len;
	struct frame *f;
	unsigned char *w;

	if (r->kind == REQ_SEED || (!r->id && !whoami)) {
		if ((f = frame_new(len)))
			memcpy(f->data, text, len);
		return f;
	}
	if (len < 2 || text[0] != '{' || text[len - 1] != '}')
		return NULL;
	idb->len = 0;
	if (r->id && pbuf_dump(idb, r->id, JSON_ENCODE_ANY))
		return NULL;
	if (whoami) {
		json_t *t = json_integer((json_int_t)r->token);

		toklen = t ? json_dumpb(t, tok, sizeof tok, JSON_ENCODE_ANY | JSON_COMPACT) : 0;
		json_decref(t);
		if (toklen == 0 || toklen > sizeof tok)
			return NULL;
		need += sizeof tokk - 1 + toklen;
	}
	if (r->id)
		need += sizeof idk - 1 + idb->len;
	if (!(f = frame_new(need)))
		return NULL;
	w = f->data;
	if (r->id) {
		memcpy(w, idk, sizeof idk - 1);
		w += sizeof idk - 1;
		memcpy(w, idb->p, idb->len);
		w += idb->len;
		*w++ = ',';
	} else {
		*w++ = '{';
	}
	memcpy(w, text + 1, len - 2);   /* the members of the shared object */
	w += len - 2;
	if (whoami) {
		memcpy(w, tokk, sizeof tokk - 1);
		w += sizeof tokk - 1;
		memcpy(w, tok, toklen);
		w += toklen;
	}
	*w++ = '}';
	return f;
}

/* The room r's answer may take now, within PROTO_ANSWER_SMALL..MAX. */
static size_t proto_room(struct proto_ctx *c, const struct req *r, int *may_wait)
{
	size_t room = c->room ? c->room(c->arg, r, may_wait) : PROTO_ANSWER_MAX;

	if (room < PROTO_ANSWER_SMALL)
		room = PROTO_ANSWER_SMALL;
	return room > PROTO_ANSWER_MAX ? PROTO_ANSWER_MAX : room;
}

/*
 * A stored query, either form: r->frame, or r->reply when refused, or
 * neither when it waits (r->waiting). Its room is asked for first, and
 * the answer is built only within it (core's size bound, proj.h). If it
 * does not fit and may not wait, the owner may find room once
 * (proto_ctx.reclaim) and the query runs again.
 */
static int proto_answer(struct proto_ctx *c, struct req *r)
{
	int cache = proto_cacheable(c), rc, may_wait = 0, keep, retry = c->reclaim != NULL;
	size_t room = proto_room(c, r, &may_wait), len = 0, need = 0;
	const char *text = NULL;

	if (cache) {
		qcache_at(&c->qc, proj_seq(c->proj));
		if (proto_qkey(&c->keyb, r))
			return CL_ENOMEM;
		text = qcache_get(&c->qc, c->keyb.p, c->keyb.len, &len);
		CL_ASSERT(c->qc.seq == proj_seq(c->proj));   /* kept at this very state */
		if (text && len > room) {   /* kept, but no room for a copy now */
			if (may_wait) {
				r->waiting = 1;
				return 0;
			}
			if (retry && c->reclaim(c->arg, r, len))
				room = proto_room(c, r, &may_wait);
			retry = 0;
			if (len > room)
				text = NULL;   /* computed again within the room there is */
		}
	} else {
		c->qc.misses++;
	}
	if (!text) {
		rc = proto_build(c, r, room, may_wait, retry, &keep, &need, &text, &len);
		if (rc == PROTO_NO_ROOM) {
			CL_ASSERT(retry);
			if (c->reclaim(c->arg, r, need))
				room = proto_room(c, r, &may_wait);
			rc = proto_build(c, r, room, may_wait, 0, &keep, &need, &text, &len);
		}
		if (rc) {
			pbuf_trim(&c->outb);
			proto_page_trim(c);
			return rc == 1 ? 0 : rc;
		}
		/* not kept (too big, no memory) costs only the next miss */
		if (cache && keep)
			(void)qcache_put(&c->qc, c->keyb.p, c->keyb.len, text, len);
	}
	if (c->pageb.p && text == c->pageb.p + c->page_pre)
		r->frame = proto_page_frame(c, len);
	else
		r->frame = proto_answer_frame(&c->idb, r, text, len);
	pbuf_trim(&c->outb);
	proto_page_trim(c);
	pbuf_trim(&c->keyb);
	return r->frame ? 0 : CL_ENOMEM;
}

static json_t *proto_subscribe(struct proto_ctx *c, struct req *r)
{
	uint64_t head = proj_seq(c->proj), since;
	int recovered = r->epoch && r->has_since && strcmp(r->epoch, c->epoch) == 0 &&
			r->since <= head;
	json_t *o = proto_ok(r->id);

	since = recovered ? r->since : head;
	r->sub_next = since + 1;
	if (!o || json_object_set_new(o, "epoch", json_string(c->epoch)) ||
	    json_object_set_new(o, "recovered", json_boolean(recovered)) ||
	    json_object_set_new(o, "since", json_integer((json_int_t)since)) ||
	    json_object_set_new(o, "head", json_integer((json_int_t)head))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *proto_ping(struct proto_ctx *c, struct req *r)
{
	json_t *o = proto_ok(r->id);

	if (!o || json_object_set_new(o, "pong", json_true()) ||
	    json_object_set_new(o, "at", json_integer((json_int_t)proj_seq(c->proj)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/*
 * Presence (not a stored query of the projection: the server's own
 * sessions, net/presence.h): the getPresence query, answered like a query
 * but never cached, and the reply of the presence op.
 */
static json_t *proto_presence(struct proto_ctx *c, struct req *r)
{
	json_t *o = proto_ok(r->id), *users = c->presence ? c->presence(c->arg) : json_array();
	int err = !o || !users;

	if (!err && r->kind == REQ_QUERY) {
		if (r->params && json_object_size(r->params) > 0) {
			json_decref(o);
			json_decref(users);
			return proto_error(r->id, CMD_BAD_REQUEST, "getPresence takes no params");
		}
		err = json_object_set_new(o, "epoch", json_string(c->epoch ? c->epoch : "")) ||
		      json_object_set_new(o, "at", json_integer((json_int_t)proj_seq(c->proj))) ||
		      json_object_set_new(o, "result", json_pack("{s:O}", "users", users));
	} else if (!err) {
		err = json_object_set_new(o, "hidden", json_boolean(r->hidden)) ||
		      json_object_set(o, "users", users);
	}
	json_decref(users);
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Each event of a command, appended and applied: the projection is ahead
 * of the log now; the owner's hook stages the push. */
static int proto_on_event(void *arg, const struct event *ev)
{
	struct proto_ctx *c = arg;

	c->ahead = 1;
	return c->on_event ? c->on_event(c->arg, ev) : 0;
}

static int proto_run(struct proto_ctx *c, struct req *r, struct evlog_txn *txn);

static int proto_command(struct proto_ctx *ctx, struct req *r, struct evlog_txn *txn)
{
	struct command c = { .actor = r->user, .token = r->token, .name = r->name,
			     .params = r->params, .cmd_id = r->cmd_id, .now = cl_now_us() };
	struct command_out out;
	json_t *o;
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
	if (ctx->hook_key && strcmp(r->name, "createWebhook") == 0)
		c.hook_key = ctx->hook_key(ctx->arg);
	rc = command_run_txn(txn, ctx->proj, &c, proto_on_event, ctx, &out);
	if (rc)
		return rc;
	if (out.fail.code != CMD_OK) {
		r->reply = proto_error(r->id, out.fail.code, out.fail.message);
		command_out_release(&out);
		return r->reply ? 0 : CL_ENOMEM;
	}
	o = proto_ok(r->id);
	if (!o || json_object_update(o, out.result) ||
	    (out.secret && json_object_update(o, out.secret))) {
		json_decref(o);
		command_out_release(&out);
		return CL_ENOMEM;
	}
	r->reply = o;
	command_out_release(&out);
	return 0;
}

int proto_exec(struct proto_ctx *c, struct req *r, struct evlog_txn *txn)
{
	int rc = proto_run(c, r, txn);

	r->at = proj_seq(c->proj);
	return rc;
}

static int proto_run(struct proto_ctx *c, struct req *r, struct evlog_txn *txn)
{
	if (r->poisoned && r->kind != REQ_CMD) {
		r->reply = proto_error(r->id, CMD_INTERNAL, "the server could not answer this request");
		return r->reply ? 0 : CL_ENOMEM;
	}
	/* a token revoked by an earlier request of this batch, or by another
	 * process before it, answers nothing more (commands: store/command.c) */
	if (r->kind != REQ_CMD && r->kind != REQ_BAD &&
	    !command_token_active(c->proj, r->user, r->token)) {
		r->reply = proto_error(r->kind == REQ_SEED ? NULL : r->id, CMD_UNAUTHORIZED,
				       COMMAND_REVOKED_MSG);
		return r->reply ? 0 : CL_ENOMEM;
	}
	switch (r->kind) {
	case REQ_CMD:
		return proto_command(c, r, txn);
	case REQ_QUERY:
		if (strcmp(r->name, "getPresence") == 0) {
			r->reply = proto_presence(c, r);
			break;
		}
		return proto_answer(c, r);
	case REQ_SEED:
		return proto_answer(c, r);
	case REQ_SUB:
		r->reply = proto_subscribe(c, r);
		break;
	case REQ_UNSUB:
		r->reply = proto_ok(r->id);
		break;
	case REQ_PING:
		r->reply = proto_ping(c, r);
		break;
	case REQ_PRESENCE:
		r->reply = proto_presence(c, r);
		break;
	default:
		r->reply = proto_error(r->id, r->fail.code, r->fail.message);
		break;
	}
	return r->reply ? 0 : CL_ENOMEM;
}

void proto_reset(struct req *r)
{
	json_decref(r->reply);
	r->reply = NULL;
	frame_unref(r->frame);
	r->frame = NULL;
	r->sub_next = 0;
	r->waiting = 0;
	r->at = 0;
}
