/*
 * api.c - the HTTP API (see api.h, docs/http-api.md): routes, query strings
 * and bodies turned into protocol requests, limits, and replies written in
 * chunks with their status, ETag and Retry-After.
 */
#include "api.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "../core/cmd.h"
#include "../store/token.h"

/* ---- replies ----------------------------------------------------------- */

int api_status_of(int code)
{
	switch (code) {
	case CMD_OK: return 200;
	case CMD_BAD_REQUEST: return 400;
	case CMD_UNAUTHORIZED: return 401;
	case CMD_FORBIDDEN: return 403;
	case CMD_NOT_FOUND: return 404;
	case CMD_INVALID_TRANSITION:
	case CMD_CONFLICT: return 409;
	case CMD_TOO_LARGE: return 413;
	case CMD_RATE_LIMITED: return 429;
	case CMD_UNAVAILABLE: return 503;
	default: return 500;
	}
}

/* The status of a protocol reply: 200 if ok, else from error.code. */
static int api_reply_status(const json_t *reply)
{
	const char *name;
	int code;

	if (!json_is_object(reply) || json_is_true(json_object_get(reply, "ok")))
		return 200;
	name = json_string_value(json_object_get(json_object_get(reply, "error"), "code"));
	for (code = 1; name && code < CMD__COUNT; code++)
		if (strcmp(name, cmd_code_name(code)) == 0)
			return api_status_of(code);
	return 500;
}

/* ---- what requests hold ------------------------------------------------ */

static struct api_user **api_user_at(struct api_pool *pool, uint64_t user)
{
	struct api_user **at = &pool->held[(user * UINT64_C(0x9E3779B97F4A7C15)) >> 56 &
					   (API_USER_SLOTS - 1)];

	while (*at && (*at)->user != user)
		at = &(*at)->next;
	return at;
}

/* c is signed in as c->user: count what it holds there. 0, or -1. */
static int api_owner_attach(struct api_conn *c)
{
	struct api_user **at = api_user_at(c->pool, c->user);

	if (!*at) {
		if (!(*at = calloc(1, sizeof **at)))
			return -1;
		(*at)->user = c->user;
	}
	(*at)->refs++;
	c->owner = *at;
	return 0;
}

/* c's transaction is over (it holds nothing now). */
static void api_owner_detach(struct api_conn *c)
{
	struct api_user **at;

	if (!c->owner)
		return;
	at = api_user_at(c->pool, c->owner->user);
	if (*at == c->owner && --c->owner->refs == 0) {
		*at = c->owner->next;
		free(c->owner);
	}
	c->owner = NULL;
}

/* c holds n bytes more (add) or fewer. */
static void api_bytes(struct api_conn *c, size_t n, int add)
{
	if (add) {
		c->pool->bytes += n;
		if (c->owner)
			c->owner->bytes += n;
	} else {
		c->pool->bytes -= n;
		if (c->owner)
			c->owner->bytes -= n;
	}
}

size_t api_room(const struct api_conn *c, size_t cap)
{
	const struct api_pool *pool = c->pool;
	size_t room = pool->bytes >= pool->lim.max_memory ? 0 : pool->lim.max_memory - pool->bytes;

	if (c->owner && c->owner->bytes) {
		size_t q = c->owner->bytes >= pool->lim.max_queue ? 0 :
			   pool->lim.max_queue - c->owner->bytes;

		if (q < room)
			room = q;
	}
	return room < cap ? room : cap;
}

/* Reply with f (taken) and status; write once the socket is writable. */
static int api_send(struct api_conn *c, int status, struct frame *f)
{
	if (!f)
		return -1;
	c->status = status;
	c->out = f;
	c->sent = 0;
	c->hdr_sent = 0;
	c->state = API_REPLY;
	api_bytes(c, f->len, 1);
	if (status >= 400)
		c->pool->m->api_refused++;
	lws_callback_on_writable(c->wsi);
	return 0;
}

/* A refusal made here (not by the protocol): {"ok":false,"error":{...}}. */
static int api_fail(struct api_conn *c, int code, const char *message)
{
	json_t *j = proto_error(NULL, code, message);
	struct frame *f = j ? frame_from_json(&c->pool->fbuf, j) : NULL;

	json_decref(j);
	pbuf_trim(&c->pool->fbuf);
	return api_send(c, api_status_of(code), f);
}

/* api_fail for helpers whose 0 means "go on": 1 refused, -1 out of memory. */
static int api_refuse(struct api_conn *c, int code, const char *message)
{
	return api_fail(c, code, message) ? -1 : 1;
}

static void api_release_body(struct api_conn *c)
{
	if (c->body) {
		api_bytes(c, c->bexp, 0);
		free(c->body);
		c->body = NULL;
	}
	c->blen = c->bexp = 0;
}

/* Back to idle for the next request of a keep-alive connection. */
static void api_reset(struct api_conn *c)
{
	api_release_body(c);
	if (c->out) {
		api_bytes(c, c->out->len, 0);
		frame_unref(c->out);
		c->out = NULL;
	}
	api_owner_detach(c);
	c->state = API_IDLE;
	c->get = c->close = c->www_auth = c->session = 0;
	memset(c->set_cookie, 0, sizeof c->set_cookie);   /* it held a session value */
	c->status = c->retry_after = 0;
	c->cmd_id_len = 0;
	c->name[0] = '\0';
	c->at = 0;
	c->sent = 0;
	c->hdr_sent = 0;
}

void api_deliver(struct api_conn *c, struct req *r)
{
	int status;
	struct frame *f;

	c->at = r->at;
	if (r->frame) {                 /* a query's answer: always ok */
		f = r->frame;
		r->frame = NULL;
		status = 200;
	} else {
		status = api_reply_status(r->reply);
		f = r->reply ? frame_from_json(&c->pool->fbuf, r->reply) : NULL;
		pbuf_trim(&c->pool->fbuf);
	}
	if (status == 429 || status == 503)
		c->retry_after = 1;
	if (api_send(c, status, f))
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, LWS_TO_KILL_ASYNC);
}

int api_replying(const struct api_conn *c)
{
	return c && c->state == API_REPLY;
}

/* "epoch-seq", quoted: the log position a GET was answered at. */
static void api_etag(const struct api_pool *pool, uint64_t at, char *buf, size_t cap)
{
	snprintf(buf, cap, "\"%s-%llu\"", pool->epoch, (unsigned long long)at);
}

static int api_write_headers(struct api_conn *c)
{
	unsigned char hdr[LWS_PRE + 1024], *start = &hdr[LWS_PRE], *p = start,
		      *end = &hdr[sizeof hdr - 1];
	struct lws *wsi = c->wsi;
	char v[160];
	size_t len = c->status == 304 ? 0 : c->out->len;
	const char *cache = c->get && c->status == 200 ? "private, no-cache" : "no-store";

	if (lws_add_http_common_headers(wsi, (unsigned)c->status, "application/json", len,
					&p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)cache, (int)strlen(cache), &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
					(const unsigned char *)"Authorization, Cookie", 21, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"x-content-type-options:",
					(const unsigned char *)"nosniff", 7, &p, end))
		return -1;
	if (c->get && (c->status == 200 || c->status == 304)) {
		api_etag(c->pool, c->at, v, sizeof v);
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_ETAG, (unsigned char *)v,
						 (int)strlen(v), &p, end))
			return -1;
	}
	if (c->retry_after) {
		snprintf(v, sizeof v, "%d", c->retry_after);
		if (lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_RETRY_AFTER,
						 (unsigned char *)v, (int)strlen(v), &p, end))
			return -1;
	}
	if (c->www_auth &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
					 (const unsigned char *)"Bearer", 6, &p, end))
		return -1;
	if (c->set_cookie[0] &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_SET_COOKIE,
					 (unsigned char *)c->set_cookie, (int)strlen(c->set_cookie),
					 &p, end))
		return -1;
	if (c->close &&
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_CONNECTION,
					 (const unsigned char *)"close", 5, &p, end))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

static int api_complete(struct api_conn *c)
{
	int close = c->close;

	api_reset(c);
	if (close)
		return -1;
	return lws_http_transaction_completed(c->wsi) ? -1 : 0;
}

int api_writeable(struct api_conn *c)
{
	size_t left, n;
	int last;

	if (!c->hdr_sent) {
		if (api_write_headers(c))
			return -1;
		c->hdr_sent = 1;
		lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, 30);
		if (c->status == 304 || c->out->len == 0)
			return api_complete(c);
		lws_callback_on_writable(c->wsi);
		return 0;
	}
	left = c->out->len - c->sent;
	n = left > API_WRITE_CHUNK ? API_WRITE_CHUNK : left;
	last = n == left;
	if (lws_write(c->wsi, c->out->data + c->sent, n,
		      last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) != (int)n)
		return -1;
	c->sent += n;
	if (last) {
		lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
		return api_complete(c);
	}
	lws_callback_on_writable(c->wsi);
	return 0;
}

void api_closed(struct api_conn *c)
{
	if (!c || !c->pool)
		return;
	if (c->state == API_QUEUED && c->pool->on_forget)
		c->pool->on_forget(c->pool->arg, c);
	api_reset(c);
}

void api_wsi_closed(struct lws *wsi)
{
	free(lws_get_opaque_user_data(wsi));
	lws_set_opaque_user_data(wsi, NULL);
}

void api_pool_release(struct api_pool *pool)
{
	size_t i;

	for (i = 0; i < API_USER_SLOTS; i++) {
		struct api_user *u, *nx;

		for (u = pool->held[i]; u; u = nx) {
			nx = u->next;
			free(u);
		}
		pool->held[i] = NULL;
	}
	pbuf_free(&pool->fbuf);
}

/* ---- requests ------------------------------------------------------------ */

/* One request from c->user's budget, shared with the user's websockets
 * (net/ratelimit.h): 0; 1 refused (429, Retry-After); -1 out of memory. */
static int api_user_take(struct api_conn *c, int64_t now)
{
	struct rl_users *t = c->pool->users;
	struct rl_bucket *ub = rl_user(t, c->user, now);
	int wait;

	if (!ub)
		return -1;
	if (!(wait = rl_take(ub, &t->rate, now)))
		return 0;
	c->retry_after = wait;
	return api_refuse(c, CMD_RATE_LIMITED, "too many requests from this user (all its "
			  "connections); slow down");
}

int api_path(struct lws *wsi)
{
	char *uri = NULL;
	int len = 0;

	if (lws_http_get_uri_and_method(wsi, &uri, &len) < 0 || !uri)
		return 0;
	return strncmp(uri, "/api/", 5) == 0 || strcmp(uri, "/api") == 0 ||
	       strcmp(uri, "/session") == 0;
}

/* The request carries the CSRF header (any value). */
static int api_csrf_ok(struct lws *wsi)
{
	return lws_hdr_custom_length(wsi, API_CSRF_HEADER, sizeof API_CSRF_HEADER - 1) > 0;
}

/* The clg_session cookie's value into buf (cap bytes); its length, or 0. */
static size_t api_cookie(struct lws *wsi, char *buf, size_t cap)
{
	size_t len = cap;

	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE) <= 0 ||
	    lws_http_cookie_get(wsi, WEBSESS_COOKIE, buf, &len) != 0)
		return 0;
	return len;
}

/* Cookie auth: only with the CSRF header. 0 with the ids, 1 refused, -1. */
static int api_auth_cookie(struct api_conn *c, const char *v, size_t n)
{
	if (!api_csrf_ok(c->wsi))
		return api_refuse(c, CMD_FORBIDDEN, "a request signed in by the session cookie "
				  "needs an X-Requested-With header (docs/http-api.md)");
	if (websess_find(c->pool->ws, c->pool->proj, v, n, cl_now_us(), &c->user,
			 &c->token) != 0)
		return api_refuse(c, CMD_UNAUTHORIZED, "the session has ended (signed out, "
				  "expired or its token revoked); sign in again");
	return 0;
}

/* A token given as text: 0 with the ids, -1 if unknown or revoked. */
static int api_token_ids(struct api_conn *c, const char *tok, size_t tlen)
{
	uint8_t hash[EV_HASH_LEN];

	if (tlen == 0 || tlen > TOKEN_MAX_INPUT)
		return -1;
	token_hash(tok, tlen, hash);
	return proj_token_check(c->pool->proj, hash, &c->user, &c->token) != 0 ? -1 : 0;
}

/* Authorization: Bearer <token>, else the session cookie. 0 with the ids,
 * 1 refused (401, or 403 for a cookie without the CSRF header), -1. */
static int api_auth(struct api_conn *c)
{
	char buf[TOKEN_MAX_INPUT + 64];
	const char *tok;
	int n = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	size_t tlen;

	if (n <= 0) {
		tlen = api_cookie(c->wsi, buf, sizeof buf);
		if (tlen)
			return api_auth_cookie(c, buf, tlen);
		return api_refuse(c, CMD_UNAUTHORIZED, "this needs Authorization: Bearer <token>");
	}
	if (n >= (int)sizeof buf ||
	    lws_hdr_copy(c->wsi, buf, sizeof buf, WSI_TOKEN_HTTP_AUTHORIZATION) < 0 ||
	    strncasecmp(buf, "Bearer ", 7) != 0)
		return api_refuse(c, CMD_UNAUTHORIZED, "Authorization must be \"Bearer <token>\"");
	tok = buf + 7;
	while (*tok == ' ')
		tok++;
	tlen = strlen(tok);
	while (tlen && tok[tlen - 1] == ' ')
		tlen--;
	if (api_token_ids(c, tok, tlen))
		return api_refuse(c, CMD_UNAUTHORIZED, "unknown or revoked token");
	return 0;
}

/* Parameters whose query-string values are integers; lists may repeat. */
static int api_int_param(const char *name)
{
	static const char *const ints[] = { "limit", "cursor", "entry", "user", "token",
					    "comment", "parent", "expected_version", NULL };
	size_t i;

	for (i = 0; ints[i]; i++)
		if (strcmp(name, ints[i]) == 0)
			return 1;
	return 0;
}

static int api_list_param(const char *name)
{
	return strcmp(name, "status") == 0 || strcmp(name, "kind") == 0;
}

static json_t *api_value(const char *name, const char *v)
{
	if (api_int_param(name) && *v && strlen(v) <= 15 && strspn(v, "0123456789") == strlen(v))
		return json_integer((json_int_t)strtoll(v, NULL, 10));
	return json_string(v);
}

/*
 * The query string as params: name=value pairs (lws has decoded them);
 * integers for the parameters that are ids or counts; a list parameter
 * given more than once is an array. 0, or a refusal already set (1).
 */
static int api_args(struct api_conn *c, json_t *params)
{
	char frag[API_ARG_MAX + 1], msg[200];
	int i, n, nargs = 0;

	/* lws gives an empty fragment (length 0, as for none) for "&&" or a
	 * leading "&": look at every one it may hold, not just up to the first
	 * empty one (lws drops a request with more than it can hold) */
	for (i = 0; i < API_MAX_FRAGS; i++) {
		char *eq, *name, *val;
		json_t *old, *v;
		int flen = lws_hdr_fragment_length(c->wsi, WSI_TOKEN_HTTP_URI_ARGS, i);

		if (flen <= 0)
			continue;
		if (++nargs > API_MAX_ARGS)
			return api_refuse(c, CMD_BAD_REQUEST, "too many query parameters (at most 64)");
		if (flen > API_ARG_MAX)
			return api_refuse(c, CMD_TOO_LARGE, "a query parameter is longer than 1024 "
					  "bytes");
		n = lws_hdr_copy_fragment(c->wsi, frag, sizeof frag, WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			return -1;
		/* lws 4.1.6 links a fragment "/" of its own after a trailing
		 * "&": no parameter is named "/", so it is skipped */
		if (n == 0 || (n == 1 && frag[0] == '/'))
			continue;
		if (!cl_utf8_valid(frag, (size_t)n))
			return api_refuse(c, CMD_BAD_REQUEST, "a query parameter is not valid UTF-8 "
					  "(after %-decoding)");
		name = frag;
		eq = strchr(frag, '=');
		if (eq)
			*eq = '\0';
		val = eq ? eq + 1 : frag + n;
		if (!*name)
			continue;
		if (!(v = api_value(name, val)))
			return -1;
		old = json_object_get(params, name);
		if (!old) {
			if (json_object_set_new(params, name, v))
				return -1;
			continue;
		}
		if (!api_list_param(name)) {
			json_decref(v);
			snprintf(msg, sizeof msg, "query parameter \"%.64s\" given twice", name);
			return api_refuse(c, CMD_BAD_REQUEST, msg);
		}
		if (!json_is_array(old)) {
			json_t *a = json_array();

			if (!a || json_array_append(a, old) || json_object_set_new(params, name, a)) {
				json_decref(v);
				return -1;
			}
			old = a;
		}
		if (json_array_append_new(old, v))
			return -1;
	}
	return 0;
}

/* A positive decimal id in a path segment of exactly len bytes, else 0. */
static json_int_t api_id(const char *s, size_t len)
{
	char buf[16];

	if (len == 0 || len > 15 || strspn(s, "0123456789") < len || s[0] == '0')
		return 0;
	memcpy(buf, s, len);
	buf[len] = '\0';
	return (json_int_t)strtoll(buf, NULL, 10);
}

/* The query a GET path names, its path parameter in params. NULL: no such. */
static const char *api_query_route(const char *rest, json_t *params, char *name, size_t cap)
{
	const char *slash;
	json_int_t id;

	if (strcmp(rest, "entries") == 0)
		return "getChangelogEntries";
	if (strcmp(rest, "users") == 0)
		return "getUsers";
	if (strcmp(rest, "stats") == 0)
		return "getStats";
	if (strncmp(rest, "queries/", 8) == 0) {
		rest += 8;
		if (!*rest || strlen(rest) >= cap || strspn(rest, "abcdefghijklmnopqrstuvwxyz"
							    "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != strlen(rest))
			return NULL;
		snprintf(name, cap, "%s", rest);
		return name;
	}
	if (strncmp(rest, "entries/", 8) != 0)
		return NULL;
	rest += 8;
	slash = strchr(rest, '/');
	id = api_id(rest, slash ? (size_t)(slash - rest) : strlen(rest));
	if (!id || (slash && strcmp(slash, "/history") != 0))
		return NULL;
	if (json_object_set_new(params, "entry", json_integer(id)))
		return NULL;
	return slash ? "getEntryHistory" : "getEntry";
}

/* Hand r to the owner; c waits for api_deliver. */
static int api_queue(struct api_conn *c, struct req *r)
{
	if (!r)
		return -1;
	c->state = API_QUEUED;
	if (c->pool->on_request(c->pool->arg, c, r)) {
		c->state = API_IDLE;
		return -1;
	}
	return 0;
}

static int api_get(struct api_conn *c, const char *rest)
{
	json_t *params = json_object(), *root;
	const char *query;
	char name[64], inm[256], etag[128];
	int rc, n;

	if (!params)
		return -1;
	query = api_query_route(rest, params, name, sizeof name);
	if (!query) {
		json_decref(params);
		return api_fail(c, CMD_NOT_FOUND, "no such API path (docs/http-api.md)");
	}
	rc = api_args(c, params);
	if (rc) {
		json_decref(params);
		return rc < 0 ? -1 : 0;
	}
	c->get = 1;
	/* the log has not moved since the client's copy: its answer stands */
	n = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH);
	api_etag(c->pool, *c->pool->published, etag, sizeof etag);
	if (n > 0 && n < (int)sizeof inm &&
	    lws_hdr_copy(c->wsi, inm, sizeof inm, WSI_TOKEN_HTTP_IF_NONE_MATCH) >= 0 &&
	    strstr(inm, etag)) {
		json_decref(params);
		c->at = *c->pool->published;
		return api_send(c, 304, frame_new(0));
	}
	root = json_pack("{s:s,s:s,s:o}", "op", "query", "name", query, "params", params);
	return root ? api_queue(c, req_build(root)) : -1;
}

static int api_read_body(struct api_conn *c, size_t cap);

/* POST /api/v1/commands/{name}: check what can be checked before the body. */
static int api_post(struct api_conn *c, const char *rest)
{
	int n;

	c->close = 1;   /* until the whole body has been read */
	if (strncmp(rest, "commands/", 9) != 0 || !cmd_is_command(rest + 9) ||
	    strlen(rest + 9) >= sizeof c->name)
		return api_fail(c, CMD_NOT_FOUND, "no such command (docs/protocol.md, Commands)");
	snprintf(c->name, sizeof c->name, "%s", rest + 9);
	n = lws_hdr_custom_length(c->wsi, "idempotency-key:", 16);
	if (n > 0) {
		if (n > CL_MAX_CMD_ID ||
		    lws_hdr_custom_copy(c->wsi, c->cmd_id, sizeof c->cmd_id, "idempotency-key:",
					16) < 0)
			return api_fail(c, CMD_BAD_REQUEST, "Idempotency-Key must be 1..128 bytes");
		c->cmd_id_len = strlen(c->cmd_id);
		if (!cl_utf8_valid(c->cmd_id, c->cmd_id_len)) {
			c->cmd_id_len = 0;
			return api_fail(c, CMD_BAD_REQUEST, "Idempotency-Key must be valid UTF-8");
		}
	}
	return api_read_body(c, c->pool->lim.max_body);
}

/* Start reading a body of Content-Length <= cap bytes (api_body, _done). */
static int api_read_body(struct api_conn *c, size_t cap)
{
	char cl[32], msg[160];
	int n = lws_hdr_total_length(c->wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);
	unsigned long long len;

	if (n <= 0 || n >= (int)sizeof cl ||
	    lws_hdr_copy(c->wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
	    strspn(cl, "0123456789") != strlen(cl))
		return api_fail(c, CMD_BAD_REQUEST, "a POST needs a Content-Length "
				"(its body is a JSON object)");
	len = strtoull(cl, NULL, 10);
	if (len > cap) {
		snprintf(msg, sizeof msg, "the body is larger than %zu bytes", cap);
		return api_fail(c, CMD_TOO_LARGE, msg);
	}
	if (c->pool->bytes + len > c->pool->lim.max_memory) {
		c->retry_after = 1;
		return api_fail(c, CMD_UNAVAILABLE, "the server is busy; retry later");
	}
	if (c->owner && c->owner->bytes && c->owner->bytes + len > c->pool->lim.max_queue) {
		c->retry_after = 1;
		return api_fail(c, CMD_UNAVAILABLE, "this user's earlier replies are still "
				"unread (--max-queue); read them, then retry");
	}
	c->bexp = (size_t)len;
	c->blen = 0;
	c->body = malloc(c->bexp + 1);
	if (!c->body) {
		c->bexp = 0;
		return -1;
	}
	api_bytes(c, c->bexp, 1);
	c->state = API_BODY;
	if (len == 0)
		return api_body_done(c);
	lws_set_timeout(c->wsi, PENDING_TIMEOUT_HTTP_CONTENT, c->pool->lim.body_secs);
	return 0;
}

/* Set-Cookie for value v (NULL: the cookie is deleted) living max_age s. */
static void api_cookie_set(struct api_conn *c, const char *v, long long max_age)
{
	snprintf(c->set_cookie, sizeof c->set_cookie,
		 "%s=%s; Max-Age=%lld; Path=/; HttpOnly; Secure; SameSite=Strict",
		 WEBSESS_COOKIE, v ? v : "", v ? max_age : 0);
}

/* POST /session, its body read: {"token": "..."} -> a session and its cookie. */
static int api_session_new(struct api_conn *c, json_t *params)
{
	json_t *t = json_object_get(params, "token"), *j;
	char v[WEBSESS_LEN + 1], iso[40];
	int64_t now = cl_now_us(), expires;
	struct frame *f;
	int rc;

	if (!json_is_string(t) || json_object_size(params) != 1) {
		json_decref(params);
		return api_fail(c, CMD_BAD_REQUEST, "the body must be {\"token\": \"clg_...\"}");
	}
	rc = api_token_ids(c, json_string_value(t), json_string_length(t));
	json_decref(params);
	c->www_auth = rc != 0;
	if (rc)
		return api_fail(c, CMD_UNAUTHORIZED, "unknown or revoked token");
	/* a POST closes its connection, so only the user's budget bounds how
	 * fast one token makes sessions */
	if ((rc = api_user_take(c, rl_mono_us())))
		return rc < 0 ? -1 : 0;
	rc = websess_new(c->pool->ws, c->user, c->token, now, v, &expires);
	if (rc == CL_ETOOBIG) {
		c->retry_after = 60;
		return api_fail(c, CMD_UNAVAILABLE, "too many browser sessions; retry later");
	}
	if (rc)
		return -1;
	api_cookie_set(c, v, (long long)(c->pool->ws->ttl_us / 1000000));
	memset(v, 0, sizeof v);
	cl_iso_time(expires, iso);
	j = json_pack("{s:b,s:I,s:I,s:s}", "ok", 1, "user", (json_int_t)c->user,
		      "token", (json_int_t)c->token, "expires", iso);
	f = j ? frame_from_json(&c->pool->fbuf, j) : NULL;
	json_decref(j);
	return api_send(c, 200, f);
}

/* /session: POST signs in (body), DELETE signs out. */
static int api_session(struct api_conn *c, int meth)
{
	char v[TOKEN_MAX_INPUT + 64];
	size_t n;
	json_t *j;
	struct frame *f;
	int ended;

	if (!api_csrf_ok(c->wsi))
		return api_fail(c, CMD_FORBIDDEN, "/session needs an X-Requested-With header "
				"(docs/http-api.md)");
	if (meth == LWSHUMETH_POST) {
		c->session = 1;
		c->close = 1;
		return api_read_body(c, API_SESSION_BODY);
	}
	n = api_cookie(c->wsi, v, sizeof v);
	ended = n ? websess_end(c->pool->ws, v, n) : 0;
	api_cookie_set(c, NULL, 0);
	j = json_pack("{s:b,s:b}", "ok", 1, "ended", ended);
	f = j ? frame_from_json(&c->pool->fbuf, j) : NULL;
	json_decref(j);
	return api_send(c, 200, f);
}

int api_http(struct api_pool *pool, struct api_conn *c, struct lws *wsi)
{
	char *uri = NULL;
	int ulen = 0, meth, wait;
	int64_t now = rl_mono_us();
	struct rl_rate cr = { pool->lim.rate, pool->lim.burst };
	struct rl_bucket *cb;

	if (c->state != API_IDLE)
		api_reset(c);
	c->pool = pool;
	c->wsi = wsi;
	pool->m->api_requests++;
	meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	if (meth == LWSHUMETH_POST)
		c->close = 1;
	if (pool->stopping) {
		c->close = 1;
		c->retry_after = 1;
		return api_fail(c, CMD_UNAVAILABLE, "the server is shutting down; retry later");
	}
	cb = lws_get_opaque_user_data(wsi);
	if (!cb) {                 /* the connection's first API request */
		if (!(cb = calloc(1, sizeof *cb)))
			return -1;
		lws_set_opaque_user_data(wsi, cb);
	}
	if ((wait = rl_take(cb, &cr, now))) {
		c->retry_after = wait;
		return api_fail(c, CMD_RATE_LIMITED, "too many requests; slow down");
	}
	if (pool->bytes > pool->lim.max_memory) {
		c->retry_after = 1;
		return api_fail(c, CMD_UNAVAILABLE, "the server is busy; retry later");
	}
	if (uri && strcmp(uri, "/session") == 0)
		return api_session(c, meth);
	if (!uri || strncmp(uri, "/api/v1/", 8) != 0)
		return api_fail(c, CMD_NOT_FOUND, "no such API path (docs/http-api.md)");
	c->www_auth = 1;
	if ((wait = api_auth(c)))
		return wait < 0 ? -1 : 0;     /* refused: the reply is set */
	c->www_auth = 0;
	if ((wait = api_user_take(c, now)))
		return wait < 0 ? -1 : 0;
	if (api_owner_attach(c))
		return -1;
	if (c->owner->bytes >= pool->lim.max_queue) {
		c->retry_after = 1;
		return api_fail(c, CMD_UNAVAILABLE, "this user's earlier replies are still "
				"unread (--max-queue); read them, then retry");
	}
	if (meth == LWSHUMETH_POST)
		return api_post(c, uri + 8);
	return api_get(c, uri + 8);
}

int api_body(struct api_conn *c, const void *in, size_t len)
{
	if (c->state != API_BODY)
		return 0;          /* refused already: the connection closes after the reply */
	if (len > c->bexp - c->blen)
		return -1;         /* lws delivers no more than Content-Length */
	memcpy(c->body + c->blen, in, len);
	c->blen += len;
	return 0;
}

int api_body_done(struct api_conn *c)
{
	json_error_t err;
	json_t *params, *root;
	char msg[200];

	if (c->state != API_BODY)
		return 0;
	lws_set_timeout(c->wsi, NO_PENDING_TIMEOUT, 0);
	c->close = 0;      /* the body is read: keep-alive may go on */
	params = c->blen ? json_loadb((const char *)c->body, c->blen, JSON_REJECT_DUPLICATES,
				      &err) : json_object();
	api_release_body(c);
	if (!params) {
		snprintf(msg, sizeof msg, "malformed JSON at byte %d: %.140s", err.position,
			 err.text);
		return api_fail(c, CMD_BAD_REQUEST, msg);
	}
	if (!json_is_object(params)) {
		json_decref(params);
		return api_fail(c, CMD_BAD_REQUEST, "the body must be a JSON object: the "
				"command's params");
	}
	if (c->session)
		return api_session_new(c, params);
	root = json_pack("{s:s,s:s,s:o}", "op", "command", "name", c->name, "params", params);
	if (root && c->cmd_id_len &&
	    json_object_set_new(root, "cmd_id", json_stringn(c->cmd_id, c->cmd_id_len))) {
		json_decref(root);
		return -1;
	}
	return root ? api_queue(c, req_build(root)) : -1;
}
