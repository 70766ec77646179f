/*
 * natsconn.h - what the writer's publisher (natspub.c) and an edge's
 * consumer (edge.c) share about NATS: how a connection is set up, and how
 * a stream names the log it carries.
 */
#ifndef CL_NET_NATSCONN_H
#define CL_NET_NATSCONN_H

#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

/* A stream's description: this prefix, then the epoch (hex) of its log. */
#define NATSCONN_DESC "changelogd log, epoch "
#define NATSCONN_MAX_URLS 16   /* in one --nats list */

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
/* The same without libnats' own shutdown: for a second connection of the
 * process, freed before the one natsconn_free frees. */
void natsconn_close(natsConnection *nc, jsCtx *js, natsOptions *no);

/*
 * The subjects of a writer's NATS services, after the stream's name:
 * "<stream>.cmd" runs a command an edge forwards (net/natssvc.h), and
 * "<stream>.fetch" hands out events of the writer's log (catch-up of an
 * edge the stream cannot fill). docs/operations.md, "Edge nodes".
 */
#define NATSCONN_CMD ".cmd"
#define NATSCONN_FETCH ".fetch"
/* Headers of a fetch reply: the writer's epoch, or why there is nothing. */
#define NATSCONN_HDR_EPOCH "Changelog-Epoch"
#define NATSCONN_HDR_ERROR "Changelog-Error"
/* A fetch asks for at most this many bytes of events (one event may be more). */
#define NATSCONN_FETCH_BYTES (512u * 1024)

/*
 * A fetch reply's body: records of u64 BE seq, u32 BE length, then that
 * many bytes (the log's value at seq), in seq order. natsconn_rec_put
 * writes one at p (NATSCONN_REC_HDR + len bytes); natsconn_rec_next reads
 * the record at *off of buf (len bytes) and moves *off past it: 1, 0 at the
 * end, -1 if the record is cut short.
 */
#define NATSCONN_REC_HDR 12
void natsconn_rec_put(uint8_t *p, uint64_t seq, const uint8_t *val, size_t len);
int natsconn_rec_next(const uint8_t *buf, size_t len, size_t *off, uint64_t *seq,
		      const uint8_t **val, size_t *vlen);

#endif
