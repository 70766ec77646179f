/*
 * edge.h - the NATS side of an edge node (changelogd --edge --nats URL):
 * a consumer thread that reads the writer's JetStream stream (natspub.h)
 * from the edge's last seq + 1 and hands each message, the writer's log
 * bytes, to the service thread, which appends it to the edge's own log
 * with evlog_wappend_raw (seq continuity and the hash chain are checked
 * there) and then follows its log as for any other appender.
 *
 * The consumer is an ordered push consumer (libnats re-creates it from
 * the last delivered seq after a gap, a missed heartbeat or a reconnect).
 * A message whose stream seq is not the next one is never queued: a seq
 * already held is skipped; on a jump forward (the stream no longer holds
 * what the edge lacks) the thread fetches the missing events from the
 * writer's "<stream>.fetch" service (natssvc.h) and queues them the same
 * way, retrying every second (state "gap") while the writer cannot answer.
 *
 * Threads: edge_start and edge_take / edge_applied / edge_stats / edge_stop
 * on the service thread; the consumer thread owns the subscription. The
 * queue between them is bounded (EDGE_QUEUE_MAX messages and
 * EDGE_QUEUE_BYTES): the consumer waits when it is full.
 */
#ifndef CL_NET_EDGE_H
#define CL_NET_EDGE_H

#include <stddef.h>
#include <stdint.h>

#include "../store/evlog.h"

#define EDGE_QUEUE_MAX 4096
#define EDGE_QUEUE_BYTES (16u << 20)

struct edge_opts {
	const char *url;           /* the NATS servers (comma-separated) */
	const char *stream;        /* the writer's stream ("changelog") */
	const char *creds;         /* a .creds file or NULL */
};

enum edge_state {
	EDGE_CONNECTING = 0,       /* no broker connection */
	EDGE_LIVE,                 /* consuming */
	EDGE_GAP,                  /* the stream skips seqs the edge lacks and the
	                              writer cannot hand them out now: retrying */
	EDGE_DIVERGED,             /* a message broke the edge's hash chain: stopped */
	EDGE__COUNT
};
extern const char *const edge_state_names[EDGE__COUNT + 1];

/* One message: the writer's seq and its log bytes (data points into it). */
struct edge_msg {
	struct edge_msg *next;
	uint64_t seq;
	int64_t stored_ns;         /* when the stream stored it (wall clock, ns) */
	size_t len;
	uint8_t data[];
};

struct edge_stats {
	int state;                 /* enum edge_state */
	uint64_t applied;          /* the edge's last seq */
	uint64_t behind;           /* seqs the stream holds that the edge has not applied */
	double lag_secs;           /* stream store -> applied here, of the last event */
	uint64_t fetches, fetched; /* catch-up requests to the writer, events they brought */
};

struct edge;

/*
 * Connect to the stream and read the epoch of the log it carries (its
 * description, written by the writer). Then start consuming after seq
 * `from` (the edge log's last seq). *epoch gets the stream's epoch (hex),
 * to be checked or adopted by the caller before serving. wake(arg) is
 * called from the consumer thread when messages are queued (it must be
 * thread-safe: lws_cancel_service). 0, or CL_ENOTFOUND (no such stream),
 * CL_ECORRUPT (not a changelogd stream), CL_EIO (cannot reach NATS),
 * CL_EINVAL / CL_ENOMEM; why (cap bytes) says it in a sentence.
 */
int edge_connect(struct edge **out, const struct edge_opts *o,
		 char epoch[EVLOG_EPOCH_STRLEN + 1], char *why, size_t cap);
int edge_start(struct edge *e, uint64_t from, void (*wake)(void *), void *arg);

/* Service thread: take every queued message (a list in seq order), NULL if none. */
struct edge_msg *edge_take(struct edge *e);
void edge_msgs_free(struct edge_msg *m);
/* Service thread: the edge's log now ends at seq (m: the last applied message). */
void edge_applied(struct edge *e, const struct edge_msg *m);
/* Service thread: stop consuming for good (state EDGE_DIVERGED). */
void edge_refuse(struct edge *e);

void edge_stats(struct edge *e, struct edge_stats *st);
void edge_stop(struct edge *e);

#endif
