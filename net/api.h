/*
 * api.h - the HTTP API on the websocket port (docs/http-api.md):
 *
 *   GET  /api/v1/entries[?status=..&kind=..&q=..]   getChangelogEntries
 *   GET  /api/v1/entries/{id}                        getEntry
 *   GET  /api/v1/entries/{id}/history                getEntryHistory
 *   GET  /api/v1/users, /api/v1/stats                getUsers, getStats
 *   GET  /api/v1/queries/{name}[?param=..]           any stored query
 *   POST /api/v1/commands/{name}   body: the params  a command
 *   POST /session {"token":...}, DELETE /session     browser sessions (websess.h)
 *
 * A new caller of the protocol, not a copy of it: each HTTP request becomes
 * one struct req (net/proto.h), handed to the owner through a hook and run
 * in the owner's next batch like a websocket request; the owner hands the
 * reply back after the commit (api_deliver), and it goes out as the body,
 * unchanged, with an HTTP status chosen from its error code.
 *
 * Every cost is bounded before the work (each limit in docs/http-api.md):
 * the body (Content-Length, at most lim.max_body; read into a buffer of
 * exactly that size), the query string (API_MAX_ARGS parameters of at most
 * API_ARG_MAX bytes), the request rate per connection (lim.rate,
 * lim.burst) and per user (one budget with the user's websockets:
 * net/ratelimit.h; 429 with Retry-After), and the bytes all API
 * requests hold at once (bodies and replies, lim.max_memory: 503), and
 * those of one user's requests (lim.max_queue: 503, and its answers are cut
 * to what is left, so that one member with unread replies cannot make the
 * API busy for everyone). Headers
 * are bounded by lws (max_http_header_data).
 *
 * A struct api_conn is the lws per-session data of an HTTP transaction bound
 * to our protocol (the same allocation a websocket uses for its struct sess;
 * lws zeroes it, and makes a new one for each request of a keep-alive
 * connection). One transaction at a time: lws reads the next request of a
 * connection only after the reply is complete. The connection's rate
 * bucket outlives its transactions: it hangs off the wsi (lws opaque user
 * data) from its first API request until it closes (api_wsi_closed).
 */
#ifndef CL_NET_API_H
#define CL_NET_API_H

#include <stddef.h>
#include <stdint.h>
#include <libwebsockets.h>

#include "../core/cl.h"
#include "../core/proj.h"
#include "metrics.h"
#include "proto.h"
#include "push.h"
#include "ratelimit.h"
#include "websess.h"

#define API_MAX_ARGS 64        /* query-string parameters */
#define API_ARG_MAX 1024       /* bytes of one name=value */
#define API_MAX_FRAGS 256      /* fragments looked at (empty ones too; lws holds fewer) */
#define API_WRITE_CHUNK 65536  /* reply bytes per write */
#define API_SESSION_BODY 1024  /* POST /session: {"token":"..."} */
#define API_CSRF_HEADER "x-requested-with:"   /* what a cross-site form cannot send */

struct api_conn;

struct api_limits {
	size_t max_body;           /* request body bytes (--max-msg): more is 413 */
	double rate, burst;        /* requests/s and burst, per connection */
	size_t max_memory;         /* bodies + replies of all requests: more is 503 */
	size_t max_queue;          /* ... of one user's requests (--max-queue): a user
	                              that holds this much gets 503 until its
	                              replies are read; one answer always fits */
	int body_secs;             /* a body must arrive within this (--handshake-timeout) */
};

/* r, parsed from c's request, is to be run; the owner calls api_deliver
 * after the commit. Returns 0, or -1 when it could not be queued (r freed). */
typedef int (*api_request_fn)(void *arg, struct api_conn *c, struct req *r);
/* c is closing with its request still queued: forget it there. */
typedef void (*api_forget_fn)(void *arg, struct api_conn *c);

/* What one user's requests hold now (only while they hold something). */
struct api_user {
	uint64_t user;
	size_t bytes;              /* bodies and replies */
	unsigned refs;             /* transactions counted here */
	struct api_user *next;     /* the chain of its slot */
};

#define API_USER_SLOTS 256     /* chains of the table of users (a power of two) */

struct api_pool {
	/* wiring: set by the owner, kept current */
	struct api_limits lim;
	const struct proj *proj;   /* bearer tokens are checked against it */
	struct websess_store *ws;  /* browser sessions (POST /session, the cookie) */
	struct metrics *m;         /* api_requests, api_refused */
	struct rl_users *users;    /* the users' request buckets, shared with the
	                              websocket sessions: the server's */
	const char *epoch;
	const uint64_t *published; /* the last seq committed: the ETag of a GET now */
	int stopping;              /* shutting down: 503 */
	api_request_fn on_request;
	api_forget_fn on_forget;
	void *arg;

	/* the pool's own */
	size_t bytes;              /* bodies and replies held now */
	struct api_user *held[API_USER_SLOTS];  /* ... per user: one entry per user
	                              with a transaction in progress */
	struct pbuf fbuf;          /* serializing replies */
};

enum api_state { API_IDLE = 0, API_BODY, API_QUEUED, API_REPLY };

struct api_conn {
	struct api_pool *pool;
	struct lws *wsi;

	/* the current transaction */
	int state;                 /* enum api_state */
	int get;                   /* a query: ETag and 304 */
	int session;               /* POST /session (else a command) */
	int close;                 /* close after the reply (a body left unread) */
	uint64_t user, token;
	struct api_user *owner;    /* user's entry in pool->held once signed in */
	char name[64];             /* the command */
	char cmd_id[CL_MAX_CMD_ID + 1];
	size_t cmd_id_len;         /* 0: no Idempotency-Key */
	unsigned char *body;       /* exactly bexp bytes */
	size_t blen, bexp;
	int status, retry_after;   /* the reply */
	int www_auth;              /* 401: add WWW-Authenticate */
	char set_cookie[160];      /* "" or the Set-Cookie value */
	uint64_t at;               /* the seq it was answered at */
	struct frame *out;         /* the body */
	size_t sent;
	int hdr_sent;
};

/* 1 if wsi's request is the API's (under /api/, or /session). */
int api_path(struct lws *wsi);

/* LWS_CALLBACK_HTTP for an API path. Returns what the callback returns. */
int api_http(struct api_pool *pool, struct api_conn *c, struct lws *wsi);
/* LWS_CALLBACK_HTTP_BODY, _BODY_COMPLETION. */
int api_body(struct api_conn *c, const void *in, size_t len);
int api_body_done(struct api_conn *c);
/* LWS_CALLBACK_HTTP_WRITEABLE while api_replying(c). */
int api_replying(const struct api_conn *c);
int api_writeable(struct api_conn *c);
/* LWS_CALLBACK_CLOSED_HTTP / HTTP_DROP_PROTOCOL. */
void api_closed(struct api_conn *c);

/* Any connection closed (HTTP or websocket): free its rate bucket. */
void api_wsi_closed(struct lws *wsi);

/* After the commit: r (queued by c) is answered; takes its reply. */
void api_deliver(struct api_conn *c, struct req *r);

/* Room for the answer to c's request, at most cap: what is left of
 * lim.max_memory, and of lim.max_queue if c's user holds anything. */
size_t api_room(const struct api_conn *c, size_t cap);

/* The HTTP status for a protocol error code (enum cmd_code). */
int api_status_of(int code);

void api_pool_release(struct api_pool *pool);

#endif
