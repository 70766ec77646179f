/*
 * proto.h - the wire protocol: one JSON text frame in, one request; one
 * request executed (inside the caller's write txn), one reply.
 * docs/protocol.md is the specification; this is its only implementation.
 *
 * A codec and an executor, nothing else: proto neither sends nor knows the
 * sessions and the server. It runs requests over a struct proto_ctx the
 * caller (net/server.c) wires to the projection and the log; the reply
 * stays on the request (r->reply or r->frame) for the caller to deliver
 * after its commit.
 *
 * Parsing is strict (jansson, JSON_REJECT_DUPLICATES) and never fails the
 * connection: anything malformed becomes a REQ_BAD request whose reply is a
 * bad_request error, answered in order with the others.
 *
 * Answers of stored queries (both forms) are cached, serialized, per
 * projection seq (qcache.h; the rule for which answers may be kept is at
 * proto_cacheable in proto.c).
 */
#ifndef CL_NET_PROTO_H
#define CL_NET_PROTO_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "../core/cl.h"
#include "../core/proj.h"
#include "../store/command.h"
#include "../store/evlog.h"
#include "push.h"
#include "qcache.h"

struct sess;
struct api_conn;

/* The query cache's caps (docs/operations.md "Query cache"). */
#define PROTO_QCACHE_ENTRIES 1024
#define PROTO_QCACHE_BYTES ((size_t)32 << 20)

/*
 * Answer memory (docs/protocol.md "Limits"): no answer is bigger than
 * PROTO_ANSWER_MAX (core's size bound, plus the envelope), and each is
 * admitted, before it is built, within the room the owner gives it
 * (proto_ctx.room); an answer of at most PROTO_ANSWER_SMALL always is.
 */
#define PROTO_ANSWER_MAX ((size_t)PROJ_ANSWER_MAX)
#define PROTO_ANSWER_SMALL ((size_t)4096)

/*
 * Pages of getChangelogEntries are put together from the projection's
 * entry text cache (core/proj.h, proj_entries_text). The entries' texts it
 * does not hold are serialized within a budget of PROTO_FRESH_BATCH bytes
 * per batch (proto_ctx.fresh_left, which the owner resets for each batch),
 * so that one turn of the loop serializes at most that much. A page that
 * needs more waits for a later batch (r->waiting; what it made stays
 * cached), at most PROTO_FRESH_WAITS times (twice what the largest page
 * needs: a page whose texts are evicted meanwhile by other pages' still
 * ends); after that, or for a request
 * that cannot wait (no session), the page ends where the budget did
 * ("partial", docs/protocol.md).
 */
#define PROTO_FRESH_BATCH ((uint64_t)512 << 10)
#define PROTO_FRESH_WAITS ((unsigned)(2 * PROJ_ANSWER_MAX / PROTO_FRESH_BATCH))

/*
 * The work of one batch's pages (getChangelogEntries, either form), in the
 * units of core's work budget (PROJ_QUERY_WORK: about 3 ns each at worst,
 * the q search's bytes): a page counts its query's work, a quarter of the
 * bytes it copies and four per byte of entry text it serializes. Once a
 * batch has done PROTO_WORK_BATCH, its later pages wait for the next batch
 * (r->waiting, at most PROTO_FRESH_WAITS times), so one turn of the loop
 * does at most about one heavy page (a worst search, ~12 ms here; a 16 MiB
 * copy; the fresh budget) whatever the requests: a query's own budget
 * bounded one request, not a batch of them.
 */
#define PROTO_WORK_BATCH ((uint64_t)PROJ_QUERY_WORK / 2)

enum req_kind {
	REQ_BAD = 0,   /* refused at parse time: fail */
	REQ_QUERY,     /* {"op":"query","name":...,"params":{...}} */
	REQ_SEED,      /* {"stored_query_name":...}: bare answer */
	REQ_CMD,       /* {"op":"createEntry",...} or {"op":"command","name":...} */
	REQ_SUB,       /* {"op":"subscribe","since":N,"epoch":"..."} */
	REQ_UNSUB,
	REQ_PING,
	REQ_PRESENCE,  /* {"op":"presence","hidden":bool?}: join presence (net/presence.h) */
};

struct req {
	struct req *next;
	int kind;
	struct sess *sess;        /* the sender (opaque here), NULL once it has gone */
	struct api_conn *api;     /* ... or the HTTP API request (net/api.h), likewise */
	void *nats;               /* ... or a command an edge forwarded: where the
	                             writer answers (net/natssvc.h), else NULL */
	uint64_t user, token;     /* the sender, copied when queued */
	json_t *root;             /* the parsed message; owns what is below */
	json_t *id;               /* borrowed, or NULL */
	const char *name;         /* query or command name */
	json_t *params;           /* borrowed object, or NULL */
	struct cl_str cmd_id;     /* n == 0: none */
	uint64_t since;
	int has_since;
	const char *epoch;        /* subscribe: NULL if absent */
	int hidden;               /* presence: "hidden": true */
	struct cl_fail fail;      /* REQ_BAD: the refusal (enum cmd_code, message) */

	/* set while the batch runs; reset on a retry */
	json_t *reply;            /* what to send (object, or array for seed) */
	struct frame *frame;      /* ... or the reply already serialized (queries) */
	int poisoned;             /* broke the batch once: answer "internal" */
	int unavailable;          /* the log could not be written: CL_E* code */
	uint64_t sub_next;        /* subscribe: where the stream starts */
	int waiting;              /* no reply: the answer did not fit the room it
	                             had and may wait (proto_ctx.room); the owner
	                             runs r again later, with those after it */
	unsigned held;            /* the owner's: how often it held r back */
	uint64_t at;              /* the projection's seq when it was answered */
};

/* Parse one message. Never NULL except on ENOMEM. */
struct req *req_parse(const char *buf, size_t len);
/* The same from a message already parsed (takes root). NULL on ENOMEM. */
struct req *req_build(json_t *root);
void req_free(struct req *r);
/* Turn r into a refusal (REQ_BAD) with a code and message. */
void req_refuse(struct req *r, int code, const char *message);
/* 1 if r needs the write txn (a command still to run). */
int req_writes(const struct req *r);

/* {"id":id?,"ok":false,"error":{"code":...,"message":...}} */
json_t *proto_error(json_t *id, int code, const char *message);

/*
 * What requests run against. The wiring fields are set by the owner
 * (server.c) and kept current by it; the rest is proto's own.
 */
struct proto_ctx {
	/* wiring */
	struct proj *proj;          /* the projection (the owner replaces it on a rebuild) */
	const char *epoch;          /* the log's epoch, for subscribe and query replies */
	uint64_t committed;         /* last seq committed and applied to proj */
	int (*load)(void *arg, uint64_t seq, json_t **out);   /* proj_qctx loader */
	command_event_fn on_event;  /* after each event a command appended and applied */
	/* createWebhook: the data directory's webhook key, made on first use
	 * (store/hookkey.h); NULL if it cannot be had. NULL hook: none. */
	const uint8_t *(*hook_key)(void *arg);
	/*
	 * The bytes r's answer may take now (NULL: PROTO_ANSWER_MAX), and in
	 * *may_wait whether an answer that does not fit may wait (r->waiting)
	 * instead: else it is shortened (a partial page) or refused as
	 * unavailable. Asked before each query is built.
	 */
	size_t (*room)(void *arg, const struct req *r, int *may_wait);
	/* r's answer needs need bytes, more than room gave, and may not wait:
	 * make room if possible (1: room may now be bigger); NULL: never. */
	int (*reclaim)(void *arg, const struct req *r, size_t need);
	/* The users present on this node ([{"id","name"}], a new reference;
	 * net/presence.h), for getPresence and the presence op; NULL: none. */
	json_t *(*presence)(void *arg);
	void *arg;                  /* for load, on_event, room and presence */

	/* proto's own */
	int ahead;                  /* proj holds events of the open txn (speculative);
	                               the owner clears it once proj is the committed
	                               log again (after the commit, or a rebuild) */
	struct qcache qc;           /* serialized answers (see proto_cacheable) */
	struct pbuf outb, keyb, idb;   /* reused: the answer, the cache key, the id */
	struct proj_text pageb;     /* a page's answer (proj_entries_text), after */
	size_t page_pre;            /* ... this headroom (proto_page_pre) */
	uint64_t fresh_left;        /* entry text this batch may still serialize */
	uint64_t batch_work;        /* pages' work done by this batch (PROTO_WORK_BATCH) */
	uint64_t fresh_waits;       /* pages that waited for either (metrics) */
	uint64_t fresh_partial;     /* pages ended early by the batch's text budget (metrics) */
};

/* A batch begins: its budgets for pages (PROTO_FRESH_BATCH, PROTO_WORK_BATCH). */
void proto_batch_begin(struct proto_ctx *c);

/* Zero c's own part and size the cache; the wiring is the caller's. */
void proto_init(struct proto_ctx *c);
/* Free the cache and the buffers. */
void proto_release(struct proto_ctx *c);

/*
 * Execute r against c->proj, setting r->reply or r->frame. Commands need
 * txn (a write txn of the log, begun at c->proj's seq) and run through
 * command_run_txn; others ignore it. Returns 0, or a CL_E* code that breaks
 * the batch: command_log_failure (store/command.h) says whether the log
 * failed or r is the culprit.
 */
int proto_exec(struct proto_ctx *c, struct req *r, struct evlog_txn *txn);

/* Reset what proto_exec set, before a retry. */
void proto_reset(struct req *r);

#endif
