/*
 * http.h - plain HTTP on the websocket port: GET /healthz (JSON), GET
 * /metrics (Prometheus text), and the static web UI from a directory
 * mounted at "/" (lws file mount: content types, caching headers). Every
 * other path is 404. docs/operations.md documents each metric.
 */
#ifndef CL_NET_HTTP_H
#define CL_NET_HTTP_H

#include <stdint.h>
#include <libwebsockets.h>

#include "metrics.h"

/* The mounts for the vhost: "/" -> web_dir (if not NULL), and the
 * endpoints bound to our protocol (/healthz, /metrics, /api: net/api.h) so
 * that the file mount cannot hide them. */
struct http_mounts {
	struct lws_http_mount root, healthz, metrics, api, session;
	char origin[4096];
};
/* Fill m for web_dir (NULL or "" = no web UI); returns the list head. */
const struct lws_http_mount *http_mounts_init(struct http_mounts *m, const char *web_dir,
					      const char *protocol);

/* What /healthz and /metrics show, read by the caller from the owners of
 * each value just before http_serve. */
struct http_view {
	int ok;                    /* serving (not stopping, no fatal error) */
	int stopping;              /* shutting down: /healthz answers 503 */
	int tls;
	const char *epoch;
	const struct metrics *m;
	struct metrics_gauges g;   /* g.seq and g.connections are in /healthz too */
};

/* LWS_CALLBACK_HTTP: answer a GET. Returns what the callback returns. */
int http_serve(struct lws *wsi, const struct http_view *st);

/* LWS_CALLBACK_ADD_HEADERS (static files): defensive headers. */
int http_add_headers(struct lws *wsi, void *in);

/*
 * LWS_CALLBACK_FILTER_HTTP_CONNECTION, for every request: a method the
 * path does not take is 405 with Allow (static paths take GET and HEAD);
 * a request body where none is read (Transfer-Encoding, or a non-zero
 * Content-Length on anything but a POST to /api/v1/commands/ or /session)
 * is 400, and chunked POSTs 411. Each refusal closes the connection, so
 * the bytes after the headers are never read as a request. 0 = go on.
 */
int http_filter(struct lws *wsi);

/*
 * 1 if the request's Origin is this server as the browser reached it:
 * "https://" + the Host header (also "http://" when tls is 0: --plain runs
 * behind a TLS proxy). 0 otherwise, and when either header is missing.
 */
int http_origin_is_own(struct lws *wsi, int tls);

/* Refuse a websocket handshake with a real HTTP status (401/403/404/503). */
int http_refuse(struct lws *wsi, int status);

#endif
