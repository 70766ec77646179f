/*
 * metrics.h - the server's counters and their Prometheus text for
 * GET /metrics (docs/operations.md documents each metric).
 *
 * The counters are plain integers bumped on the service thread by whoever
 * sees the thing happen (session.c: messages, closes, rate limits;
 * server.c: commits, events, refused handshakes). Gauges are not kept here:
 * the caller reads them from their owners when the page is rendered.
 */
#ifndef CL_NET_METRICS_H
#define CL_NET_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "qcache.h"

/* Why sessions ended, for changelogd_closes_total{reason=...}. */
enum metrics_close {
	METRICS_CLOSE_PEER = 0,        /* the client (or the network) closed */
	METRICS_CLOSE_TOO_BIG,         /* 1009 */
	METRICS_CLOSE_BINARY,          /* 1003 */
	METRICS_CLOSE_SLOW,            /* 1008 slow consumer */
	METRICS_CLOSE_REVOKED,         /* 1008 token revoked */
	METRICS_CLOSE_SHUTDOWN,        /* 1001 */
	METRICS_CLOSE_ERROR,           /* 1011 internal error */
	METRICS_CLOSE__COUNT
};
/* The reason label of a close kind ("unknown" out of range). */
const char *metrics_close_name(int kind);

#define METRICS_HIST_BUCKETS 12
/* Upper bounds (seconds) of the commit time histogram's buckets. */
extern const double metrics_hist_bounds[METRICS_HIST_BUCKETS];

struct metrics {
	uint64_t messages_in, messages_out;
	uint64_t commits, events, rate_limited;
	uint64_t closes[METRICS_CLOSE__COUNT];
	uint64_t commit_hist[METRICS_HIST_BUCKETS];  /* per bucket; cumulated when rendered */
	uint64_t commit_count;
	double commit_sum;
	uint64_t handshakes_refused;
	uint64_t api_requests, api_refused;   /* HTTP API (net/api.c): all, and 4xx/5xx */
	uint64_t presence_pushes;      /* presence push frames sent, one per watcher */
};

/* A commit took secs: count it and put it in its bucket. */
void metrics_observe_commit(struct metrics *m, double secs);

/* The NATS publisher's figures (net/natspub.c), copied by the caller. */
struct metrics_nats {
	const char *state;             /* "live", "diverged", ... */
	const char *const *states;     /* every state name, NULL-terminated */
	uint64_t published;            /* last seq the stream acknowledged */
	uint64_t lag;                  /* committed seqs not yet acknowledged */
	uint64_t republished, checks, errors;
	/* the services for edges (net/natssvc.c) */
	uint64_t svc_commands, svc_refused, svc_fetches, svc_fetched;
};

/* An edge node's figures (net/edge.c), copied by the caller. */
struct metrics_edge {
	const char *state;             /* "live", "gap", ... */
	const char *const *states;     /* every state name, NULL-terminated */
	uint64_t behind;               /* seqs the stream holds that are not applied */
	double lag_secs;               /* stream store -> applied here, last event */
	double commit_lag_secs;        /* its commit on the writer (its ts) -> applied here */
	uint64_t fetches, fetched;     /* catch-up from the writer: requests, events */
	/* commands forwarded to the writer (the server keeps these counters) */
	uint64_t fwd_in_flight;
	uint64_t fwd_answered;         /* the writer's reply reached the client */
	uint64_t fwd_unavailable;      /* answered "unavailable" by this edge */
	uint64_t fwd_refused;          /* over --forward-max / --forward-user-max */
};

/* One webhook endpoint's figures (net/webhook.c), copied by the caller. */
struct metrics_webhook {
	uint64_t id, cursor, lag, deliveries, failures;
	long last_status;              /* HTTP status of the last attempt, 0: none */
};

/* The gauges of one page, read by the caller from their owners. */
struct metrics_gauges {
	unsigned connections;          /* open websocket sessions */
	size_t queue_bytes;            /* outbound bytes queued for sessions */
	size_t ring_bytes;             /* bytes of recent pushes in memory */
	uint64_t seq;                  /* last committed seq */
	size_t websessions;            /* signed-in browser sessions */
	const struct qcache *qc;       /* the query cache's counters */
	/* the entry text cache (core/texts.c, of the current projection) */
	size_t texts, texts_bytes;     /* held now */
	uint64_t texts_made, texts_hits, texts_evicted;
	/* pages (net/proto.c) that waited for a later batch, that ended early */
	uint64_t page_waits, page_partial;
	size_t presence_users;         /* users announced present (net/presence.h) */
	const struct metrics_nats *nats;   /* NULL: not publishing to NATS */
	const struct metrics_edge *edge;   /* NULL: not an edge */
	const struct metrics_webhook *webhooks;   /* nwebhooks of them */
	size_t nwebhooks;
	int webhooks_on;               /* deliveries run here (the writer) */
};

/*
 * The Prometheus text exposition of m and g, in a malloc'd buffer with
 * headroom unused bytes in front of it (lws_write needs LWS_PRE there).
 * *len gets the text's length. NULL on ENOMEM.
 */
char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t headroom,
		     size_t *len);

#endif
