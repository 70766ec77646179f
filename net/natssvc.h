/*
 * natssvc.h - the writer's NATS services for its edges (changelogd --nats):
 *
 *   "<stream>.cmd"    a command an edge forwards (request/reply). The
 *                     request is a JSON object {"user":U,"token":T,
 *                     "name":N,"params":{...},"cmd_id":C}: U and T are the
 *                     ids the edge authenticated the client's token to
 *                     (tokens are events, the same on every node). It is
 *                     handed to the service thread (natssvc_take), which
 *                     runs it on its one command path, in the next batch,
 *                     judging T against its own log (a revoked token is
 *                     refused even if the edge is behind); the reply, the
 *                     protocol's command reply without "id", is published
 *                     from this module's thread after the commit
 *                     (natssvc_reply).
 *   "<stream>.fetch"  events of the log for an edge's catch-up: the
 *                     request {"from":N,"max_bytes":K}, the reply the
 *                     exact log values from seq N on (natsconn.h's
 *                     records), at most about K bytes, with the header
 *                     Changelog-Epoch. Answered on libnats' thread in a
 *                     read txn of its own (evlog_read_shared): the service
 *                     thread never waits for it.
 *
 * Both are bounded before the work: a command request is at most
 * NATSSVC_MSG_MAX bytes and at most NATSSVC_QUEUE_MAX of them wait for the
 * service thread (more are answered "unavailable" at once); a fetch reply
 * is at most NATSCONN_FETCH_BYTES (plus one event).
 *
 * Threads: natssvc_start / _take / _reply / _stats / _stop on the service
 * thread; libnats' threads run the subscriptions; the module's thread
 * publishes the replies. Everything shared is under the module's lock.
 */
#ifndef CL_NET_NATSSVC_H
#define CL_NET_NATSSVC_H

#include <stddef.h>
#include <stdint.h>

#include "../store/evlog.h"

#define NATSSVC_QUEUE_MAX 1024
#define NATSSVC_MSG_MAX (1u << 20)

struct natssvc_opts {
	const char *url, *stream, *creds;
};

/* One forwarded command: its JSON (data, len bytes) and where to answer. */
struct natssvc_req {
	struct natssvc_req *next;
	char *reply_to;
	size_t len;
	char data[];
};

struct natssvc_stats {
	uint64_t commands;         /* forwarded commands answered */
	uint64_t refused;          /* ... refused before they ran (queue full, too big) */
	uint64_t fetches;          /* fetch requests answered */
	uint64_t fetched;          /* events handed out by them */
};

struct natssvc;

/* Connect (in the background, retried forever) and subscribe. wake(arg) is
 * called from libnats' thread when a command was queued (thread-safe:
 * lws_cancel_service). 0, or CL_EINVAL (a sentence was logged) / CL_ENOMEM. */
int natssvc_start(struct natssvc **out, const struct natssvc_opts *o, struct evlog *log,
		  const char *epoch, void (*wake)(void *), void *arg);

/* Service thread: every queued command, in arrival order (NULL if none). */
struct natssvc_req *natssvc_take(struct natssvc *v);
/* Service thread: answer q with the reply's JSON text (len bytes); frees q. */
void natssvc_reply(struct natssvc *v, struct natssvc_req *q, const char *text, size_t len);
void natssvc_req_free(struct natssvc_req *q);

void natssvc_stats(struct natssvc *v, struct natssvc_stats *st);
/* Unsubscribe, publish what is queued (at most ~2 s), free v. Before the
 * log is closed. NULL is fine. */
void natssvc_stop(struct natssvc *v);

#endif
