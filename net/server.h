/*
 * server.h - changelogd's network server: one libwebsockets context, one
 * service thread, and the group-commit loop (TECH-NOTES §6, model A).
 *
 *   while (!stop) { lws_service(ctx, 0); srv_flush(s); }
 *
 * Everything happens on that one thread: lws callbacks parse requests and
 * queue them (session.c, proto.c); srv_flush runs the whole queue in one
 * LMDB write txn, commits, and only then sends replies and publishes the
 * pushes of the committed events into the ring (push.c). A 250 ms timer
 * tails the log for appends made by other processes (changelog-admin).
 *
 * struct server is shared by the net/ modules; its fields are owned by
 * server.c unless a comment says otherwise.
 */
#ifndef CL_NET_SERVER_H
#define CL_NET_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "../core/proj.h"
#include "../store/evlog.h"
#include "push.h"

struct sess;
struct req;

/* Command-line settings (changelogd_main.c fills them; docs/operations.md). */
struct srv_opts {
	const char *data_dir;
	const char *host;          /* listen address, "127.0.0.1" */
	int port;                  /* 8443 */
	const char *cert, *key;    /* NULL: DATA/tls/cert.pem, key.pem (made if absent) */
	int plain;                 /* serve ws:// without TLS */
	const char *admin_name;    /* first admin on an empty log */
	const char *web_dir;       /* NULL: <bin>/../web if present; "" = none */
	unsigned max_conns;        /* websocket sessions; more get HTTP 503 */
	size_t max_msg;            /* inbound message bytes; more closes 1009 */
	double rate, burst;        /* per-connection requests/s and burst */
	size_t max_queue;          /* per-session outbound bytes; more: slow consumer */
	size_t max_memory;         /* all sessions' outbound bytes; more: slow consumer */
	size_t ring_events, ring_bytes;  /* recent pushes kept in memory */
	int sndbuf;                /* SO_SNDBUF per socket, 0 = kernel default */
	int ping_secs;             /* keepalive: ping after this many idle seconds, */
	int pong_secs;             /* ... hang up if no pong within this many more */
	int handshake_secs;        /* TLS + HTTP upgrade must finish within this */
	int nosync;                /* EVLOG_NOSYNC: benchmarks only */
	size_t map_size;           /* 0: LMDB map grows; else fixed (EVLOG_FIXEDMAP) */
	const char *allow_origin;  /* NULL: any; else comma-separated list of
	                              Origin values a browser may connect from */
	int verbose;
};

/* Why sessions ended, for changelogd_closes_total{reason=...}. */
enum srv_close {
	SRV_CLOSE_PEER = 0,        /* the client (or the network) closed */
	SRV_CLOSE_TOO_BIG,         /* 1009 */
	SRV_CLOSE_BINARY,          /* 1003 */
	SRV_CLOSE_SLOW,            /* 1008 slow consumer */
	SRV_CLOSE_REVOKED,         /* 1008 token revoked */
	SRV_CLOSE_SHUTDOWN,        /* 1001 */
	SRV_CLOSE_ERROR,           /* 1011 internal error */
	SRV_CLOSE__COUNT
};
const char *srv_close_name(int kind);

#define SRV_HIST_BUCKETS 12

struct srv_metrics {
	uint64_t messages_in, messages_out;
	uint64_t commits, events, rate_limited;
	uint64_t closes[SRV_CLOSE__COUNT];
	uint64_t commit_hist[SRV_HIST_BUCKETS];   /* cumulative at render time */
	uint64_t commit_count;
	double commit_sum;
	uint64_t handshakes_refused;
};
extern const double srv_hist_bounds[SRV_HIST_BUCKETS];

/* A staged push: built inside a batch, published only after its commit. */
struct srv_staged {
	uint64_t seq;
	int type;                  /* enum ev_type */
	uint64_t token;            /* token.revoked: which token */
	json_t *push;              /* push_build() output, NULL if nobody subscribed */
};

struct server {
	struct srv_opts o;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct evlog *log;
	struct proj *proj;
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	uint64_t published;        /* last seq committed, applied and in the ring */
	struct ring ring;

	struct sess *sessions;     /* all websocket sessions (session.c links) */
	unsigned nsess;

	struct req *q_head, *q_tail;   /* requests waiting for srv_flush */
	size_t q_n, q_seen;        /* queued now / at the end of the last turn */
	double q_since;            /* when the first request of the batch came */

	int dirty;                 /* the batch applied events to proj (speculative) */
	struct srv_staged *stg;    /* pushes of the batch being flushed */
	struct evlog_txn *wtxn;    /* the batch's write txn while it runs, else NULL */
	size_t nstg, stgcap;

	unsigned nsubs;            /* sessions subscribed: pushes are built only if > 0 */
	size_t out_bytes;          /* unicast queues + replay chunks, all sessions */
	unsigned char *scratch;    /* LWS_PRE + one coalesced frame */
	size_t scratch_cap;

	lws_sorted_usec_list_t tail_sul;
	int stopping;              /* shutting down: no new sessions or requests */
	int fatal;                 /* a state we cannot serve from: exit 1 */
	struct srv_metrics m;
};

/* Run the server until SIGTERM/SIGINT. 0 on a clean stop, 1 on failure. */
int srv_run(const struct srv_opts *o);

/* Async-signal-safe: ask srv_run to stop. */
void srv_request_stop(void);

/* Queue a parsed request for the next flush (session.c). */
void srv_enqueue(struct server *s, struct req *r);
/* A session is going away: forget it in queued requests. */
void srv_forget_session(struct server *s, struct sess *ss);

/* Stage ev's push for the batch (proto.c, right after proj_apply). */
int srv_stage(struct server *s, const struct event *ev);

/* proj_qctx loader: the event at seq as ev_to_json gives it. */
int srv_load_event(void *arg, uint64_t seq, json_t **out);

#endif
