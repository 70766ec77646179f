/*
 * natsconn.h - what the writer's publisher (natspub.c) and an edge's
 * consumer (edge.c) share about NATS: how a connection is set up, and how
 * a stream names the log it carries.
 */
#ifndef CL_NET_NATSCONN_H
#define CL_NET_NATSCONN_H

#include <stddef.h>

#include <nats/nats.h>

/* A stream's description: this prefix, then the epoch (hex) of its log. */
#define NATSCONN_DESC "changelogd log, epoch "

/*
 * Connection options for url (comma-separated servers) with creds (a
 * .creds file, or NULL), named "changelogd", reconnecting forever every
 * 250 ms; on_connected runs (on a libnats thread) after the first connect
 * that was retried and after every reconnect, on_disconnected when the
 * connection is lost. 0, or -1 with a sentence in why (the creds file
 * cannot be read, libnats refused an option).
 */
int natsconn_options(natsOptions **out, const char *url, const char *creds,
		     natsConnectionHandler on_connected, natsConnectionHandler on_disconnected,
		     void *arg, char *why, size_t cap);

/*
 * Close and free a connection, its JetStream context and its options (any
 * may be NULL), then libnats' own threads and buffers (nats_CloseAndWait,
 * at most 2 s): call once, when the process is done with NATS.
 */
void natsconn_free(natsConnection *nc, jsCtx *js, natsOptions *no);

#endif
