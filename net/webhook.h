/*
 * webhook.h - outgoing webhooks: every committed event POSTed to each
 * configured endpoint (createWebhook; docs/http-api.md, "Webhooks").
 *
 * Two threads share one struct webhook under its mutex:
 *
 *  - the service thread builds the bodies (webhook_feed): for an endpoint
 *    that has no body in hand and is behind the log, it reads the next
 *    events after the endpoint's cursor from the log, skips those of types
 *    the endpoint does not want (the cursor moves over them), and builds the
 *    push of the first one it wants, as an admin receives it (push_build,
 *    plus "epoch"). Built while later events exist, the push carries
 *    "replay": true and the current state, as a catch-up push does. At most
 *    one body per endpoint exists at a time, so memory is bounded by the
 *    endpoints, never by the backlog, which stays in the log.
 *  - the delivery thread POSTs them with libcurl's multi interface: every
 *    endpoint has its own transfer, so a slow or dead one delays no other
 *    and never the service thread. A 2xx moves the endpoint's cursor to the
 *    body's seq and writes it to DATA/webhooks/<id> (written aside, renamed
 *    into place); anything else (a status, a refused connection, the
 *    per-request timeout) keeps the body and retries it after a backoff that
 *    doubles from the minimum up to the cap (webhook_backoff_ms).
 *
 * So each endpoint gets every event after its webhook.created, in seq
 * order, at least once: a restart resumes after the durable cursor, and an
 * event delivered but not yet recorded is sent again (same seq: receivers
 * drop duplicates by X-Changelogd-Seq). Edges never deliver (server.c
 * starts this on the writer only).
 */
#ifndef CL_NET_WEBHOOK_H
#define CL_NET_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

#include "../core/proj.h"
#include "../store/evlog.h"

/* Events read from the log per endpoint per webhook_feed call. */
#define WEBHOOK_SCAN 256

struct webhook_opts {
	const char *data_dir;      /* DATA: webhook.key, webhooks/<id> cursors */
	const char *epoch;         /* the log's epoch (X-Changelogd-Epoch, cursor files) */
	long timeout_ms;           /* one request, connect to answer */
	long backoff_min_ms;       /* first retry after a failure */
	long backoff_max_ms;       /* the cap */
	void (*wake)(void *arg);   /* delivery thread: "call webhook_feed soon" */
	void *arg;
};

struct webhook;

/* One endpoint's figures for /metrics (a copy taken under the lock). */
struct webhook_stat {
	uint64_t id;
	uint64_t cursor;           /* last seq delivered or skipped */
	uint64_t lag;              /* committed - cursor */
	uint64_t deliveries;       /* 2xx answers */
	uint64_t failures;         /* attempts that failed */
	long last_status;          /* HTTP status of the last attempt; 0: none or no answer */
};

/*
 * The retry delay after `failures` consecutive failures (>= 1):
 * min_ms * 2^(failures - 1), at most max_ms. 0 failures: 0.
 */
uint64_t webhook_backoff_ms(unsigned failures, uint64_t min_ms, uint64_t max_ms);

/*
 * Start the delivery thread with the live endpoints of p (committed up to
 * committed). 0, or CL_ENOMEM / CL_EIO (a sentence was logged).
 */
int webhook_start(struct webhook **out, const struct webhook_opts *o, const struct proj *p,
		  uint64_t committed);

/* Service thread: a webhook.created or webhook.deleted was committed and
 * applied to p: start the new endpoints, stop the deleted ones. */
void webhook_config(struct webhook *wh, const struct proj *p);

/* Service thread, outside any write txn: hand bodies to idle endpoints. */
void webhook_feed(struct webhook *wh, const struct proj *p, struct evlog *log,
		  uint64_t committed);

/* Up to cap endpoints' figures into out; returns how many. */
size_t webhook_stats(struct webhook *wh, struct webhook_stat *out, size_t cap);

/* Stop the thread (in-flight requests are abandoned) and free everything. */
void webhook_stop(struct webhook *wh);

#endif
