/*
 * server.h - changelogd's network server: one libwebsockets context, one
 * service thread, and the group-commit loop (docs/architecture.md).
 *
 *   while (!stop) { lws_service(ctx, 0); srv_flush(s); }
 *
 * Everything happens on that one thread: lws callbacks hand complete
 * messages to the server (session.c), which parses them (proto.c) and
 * queues them; srv_flush runs the whole queue in one LMDB write txn,
 * commits, and only then sends replies and publishes the pushes of the
 * committed events into the ring (push.c). A 250 ms timer tails the log
 * for appends made by other processes (changelog-admin).
 *
 * server.c is the one file that wires the net/ modules together; only it
 * and the program's main (changelogd_main.c) include this header. struct
 * server is private to server.c.
 */
#ifndef CL_NET_SERVER_H
#define CL_NET_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "natspub.h"

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
	double user_rate, user_burst;  /* per-user (all its connections) */
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
	struct natspub_opts nats;  /* nats.url NULL: no publishing to NATS */
	int edge;                  /* --edge: a read-only copy fed from nats.url */
	unsigned fwd_max;          /* --forward-max: commands an edge forwards at once */
	unsigned fwd_user_max;     /* --forward-user-max: ... of one user */
	int fwd_secs;              /* --forward-timeout: an edge waits this long for
	                              the writer's reply and its event */
	int session_days;          /* a browser session (the cookie) lives this long */
	long webhook_timeout_ms;   /* one webhook request (net/webhook.h) */
	long webhook_retry_min_ms, webhook_retry_max_ms;   /* its backoff */
	int verbose;
};

/* Run the server until SIGTERM/SIGINT. 0 on a clean stop, 1 on failure. */
int srv_run(const struct srv_opts *o);

/* Async-signal-safe: ask srv_run to stop. */
void srv_request_stop(void);

#endif
