/*
 * proto.h - the wire protocol: one JSON text frame in, one request; one
 * request executed (inside srv_flush's write txn), one reply. docs/protocol.md
 * is the specification; this is its only implementation.
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
#include "../store/evlog.h"

struct server;
struct sess;
struct frame;
struct qcache;

/* The query cache's caps (docs/operations.md "Query cache"). */
#define PROTO_QCACHE_ENTRIES 1024
#define PROTO_QCACHE_BYTES ((size_t)32 << 20)

enum req_kind {
	REQ_BAD = 0,   /* refused at parse time: err_code / err_msg */
	REQ_QUERY,     /* {"op":"query","name":...,"params":{...}} */
	REQ_SEED,      /* {"stored_query_name":...}: bare answer */
	REQ_CMD,       /* {"op":"createEntry",...} or {"op":"command","name":...} */
	REQ_SUB,       /* {"op":"subscribe","since":N,"epoch":"..."} */
	REQ_UNSUB,
	REQ_PING,
};

struct req {
	struct req *next;
	int kind;
	struct sess *sess;        /* NULL once the session has gone */
	uint64_t user, token;     /* the sender, copied when queued */
	json_t *root;             /* the parsed message; owns what is below */
	json_t *id;               /* borrowed, or NULL */
	const char *name;         /* query or command name */
	json_t *params;           /* borrowed object, or NULL */
	struct cl_str cmd_id;     /* n == 0: none */
	uint64_t since;
	int has_since;
	const char *epoch;        /* subscribe: NULL if absent */
	int err_code;             /* REQ_BAD: enum cmd_code */
	char err_msg[200];

	/* set while the batch runs; reset on a retry */
	json_t *reply;            /* what to send (object, or array for seed) */
	struct frame *frame;      /* ... or the reply already serialized (queries) */
	int poisoned;             /* broke the batch once: answer "internal" */
	int unavailable;          /* the log could not be written: CL_E* code */
	uint64_t sub_next;        /* subscribe: where the stream starts */
};

/* Parse one message. Never NULL except on ENOMEM. */
struct req *req_parse(const char *buf, size_t len);
void req_free(struct req *r);
/* Turn r into a refusal (REQ_BAD) with a code and message. */
void req_refuse(struct req *r, int code, const char *message);
/* 1 if r needs the write txn (a command still to run). */
int req_writes(const struct req *r);

/* {"id":id?,"ok":false,"error":{"code":...,"message":...}} */
json_t *proto_error(json_t *id, int code, const char *message);

/*
 * Execute r against s->proj, setting r->reply. Commands need txn (a write
 * txn of s->log) and append, apply and stage their events. Returns 0, or a
 * CL_E* code that breaks the batch: CL_EINVAL / CL_ESTATE / CL_ENOMEM mean
 * this request broke it (poison it and retry), others are store failures.
 */
int proto_exec(struct server *s, struct req *r, struct evlog_txn *txn);

/* After commit: apply session effects (subscribe) and send the reply. */
void proto_deliver(struct server *s, struct req *r);

/* Reset what proto_exec set, before a retry. */
void proto_reset(struct req *r);

/* The query cache, for /metrics. */
const struct qcache *proto_qcache(void);
/* Free the query cache and the reused buffers (at exit; optional). */
void proto_release(void);

#endif
