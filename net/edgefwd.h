/*
 * edgefwd.h - an edge node's command forwarder: commands its clients send
 * go to the writer's "<stream>.cmd" service (natssvc.h) over NATS
 * request/reply, and the replies come back to the service thread.
 *
 * The service thread hands a request over with edgefwd_send (a copy in a
 * queue: no I/O), the forwarder's thread publishes it with a reply subject
 * of our own inbox ("<inbox>.<id>"), and libnats' thread queues each reply
 * (edgefwd_take) and wakes the service thread. Matching replies to
 * requests, deadlines and retries are the service thread's (net/server.c):
 * a reply whose id is no longer waited for is dropped there.
 *
 * A "no responders" answer (nobody serves "<stream>.cmd": the writer is
 * down or not connected) comes back as a reply with no_responders set.
 */
#ifndef CL_NET_EDGEFWD_H
#define CL_NET_EDGEFWD_H

#include <stddef.h>
#include <stdint.h>

#include "edge.h"

struct edgefwd_reply {
	struct edgefwd_reply *next;
	uint64_t id;
	int no_responders;
	size_t len;
	char data[];               /* the writer's JSON reply, NUL-terminated */
};

struct edgefwd;

/* Connect (retried forever in the background) and subscribe to our inbox.
 * wake(arg) must be thread-safe. 0, or CL_EINVAL (why says it) / CL_ENOMEM. */
int edgefwd_start(struct edgefwd **out, const struct edge_opts *o, void (*wake)(void *),
		  void *arg, char *why, size_t cap);
/* 1 while connected to a broker. */
int edgefwd_connected(struct edgefwd *f);
/* Queue request id (JSON text, len bytes) for the writer. 0, CL_EIO when not
 * connected, CL_ENOMEM. */
int edgefwd_send(struct edgefwd *f, uint64_t id, const char *text, size_t len);
/* Every reply that came (NULL if none); free with edgefwd_replies_free. */
struct edgefwd_reply *edgefwd_take(struct edgefwd *f);
void edgefwd_replies_free(struct edgefwd_reply *r);
/* Before edge_stop (the edge's connection shuts libnats down). NULL is fine. */
void edgefwd_stop(struct edgefwd *f);

#endif
