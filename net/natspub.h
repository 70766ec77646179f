/*
 * natspub.h - the writer's NATS JetStream publisher (changelogd --nats):
 * every committed event, the exact envelope bytes from the log, goes to
 * the stream, in seq order, so that the stream's sequence is our seq.
 *
 * It runs on a thread of its own: the service thread only says "committed
 * up to seq" (natspub_committed: a mutex and a condition variable, no I/O)
 * and never waits for NATS, so acknowledgements and local pushes are never
 * delayed. The thread reads what it publishes from the LMDB log itself
 * (evlog_read_shared: a read txn of its own), so nothing is queued in
 * memory and a broker that is away costs nothing but lag.
 *
 * Each message is published to "<stream>.events" with
 *   Nats-Msg-Id = <epoch>:<seq>      (a retry is deduplicated)
 *   Nats-Expected-Last-Sequence = seq - 1   (for seq 1: the stream must be
 *                                            empty, Nats-Expected-Last-Subject-Sequence 0)
 * so the broker refuses a gap or a double publish.
 *
 * On start, after any publish error and after a reconnect (a broker
 * restart), the thread compares the stream with the log: the stream must
 * have been made for this log's epoch (its description), must not be
 * ahead of the log, and its last message must be byte for byte the log's
 * event at that seq. Then it republishes what the stream lacks. A stream
 * that disagrees is reported (the log, /metrics state "diverged") and left
 * alone: never "fixed". docs/operations.md, "Publishing to NATS".
 */
#ifndef CL_NET_NATSPUB_H
#define CL_NET_NATSPUB_H

#include <stdint.h>

#include "../store/evlog.h"

struct natspub_opts {
	const char *url;           /* nats://host:port[,nats://...]; NULL: no publisher */
	const char *stream;        /* stream name, "changelog" */
	const char *creds;         /* a NATS .creds file, or NULL */
	int replicas;              /* stream replicas when it is created (1..5) */
	int64_t max_msgs;          /* stream retention when created: -1 = no limit */
	int64_t max_bytes;
};

enum natspub_state {
	NATSPUB_CONNECTING = 0,    /* no connection to a broker (yet, or lost) */
	NATSPUB_SYNCING,           /* comparing the stream with the log */
	NATSPUB_LIVE,              /* publishing as events commit */
	NATSPUB_RETRYING,          /* the broker answered with an error: retrying */
	NATSPUB_DIVERGED,          /* the stream disagrees with the log: stopped */
	NATSPUB__COUNT
};
/* "connecting", "syncing", "live", "retrying", "diverged" (and NULL). */
extern const char *const natspub_state_names[NATSPUB__COUNT + 1];
const char *natspub_state_name(int state);

/* What /metrics shows (a copy taken under the publisher's lock). */
struct natspub_stats {
	int state;                 /* enum natspub_state */
	uint64_t committed;        /* last seq the service thread reported */
	uint64_t acked;            /* last seq the stream acknowledged */
	uint64_t republished;      /* events published because a check found the
	                              stream without them (start, error, reconnect) */
	uint64_t checks;           /* stream/log comparisons made */
	uint64_t errors;           /* publishes the broker refused or did not ack */
};

struct natspub;

/*
 * Start the publisher thread for log (epoch: its hex epoch), whose events
 * are committed up to seq committed. The connection is made in the
 * background (retried forever). 0, or CL_EINVAL (bad options: a sentence
 * was logged) / CL_ENOMEM.
 */
int natspub_start(struct natspub **out, const struct natspub_opts *o, struct evlog *log,
		  const char *epoch, uint64_t committed);

/* Service thread: the log is committed up to seq. Never blocks on NATS. */
void natspub_committed(struct natspub *np, uint64_t seq);

void natspub_stats(struct natspub *np, struct natspub_stats *st);

/* Stop the thread (waiting at most ~2 s for acks in flight) and free np.
 * Call before the log is closed. NULL is fine. */
void natspub_stop(struct natspub *np);

#endif
