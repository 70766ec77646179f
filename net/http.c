/*
 * http.c - /healthz, /metrics, the static web UI mount, and HTTP refusals of
 * websocket handshakes (see http.h). Bodies are small and built in one
 * buffer, then written with a single LWS_WRITE_HTTP_FINAL.
 */
#include "http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "../core/proj.h"
#include "proto.h"
#include "qcache.h"
#include "server.h"
#include "session.h"

const struct lws_http_mount *http_mounts_init(struct http_mounts *m, const char *web_dir,
					      const char *protocol)
{
	memset(m, 0, sizeof *m);
	m->healthz.mountpoint = "/healthz";
	m->healthz.mountpoint_len = 8;
	m->healthz.origin = protocol;
	m->healthz.protocol = protocol;
	m->healthz.origin_protocol = LWSMPRO_CALLBACK;
	m->metrics = m->healthz;
	m->metrics.mountpoint = "/metrics";
	m->metrics.mountpoint_len = 8;
	m->healthz.mount_next = &m->metrics;
	if (!web_dir || !*web_dir)
		return &m->healthz;
	snprintf(m->origin, sizeof m->origin, "%s", web_dir);
	m->root.mountpoint = "/";
	m->root.mountpoint_len = 1;
	m->root.origin = m->origin;
	m->root.def = "index.html";
	m->root.origin_protocol = LWSMPRO_FILE;
	m->root.protocol = protocol;     /* so ADD_HEADERS reaches us */
	/* the UI is small and changes with releases: reuse it for a minute,
	 * then revalidate (lws sends an ETag and answers 304) */
	m->root.cache_max_age = 60;
	m->root.cache_reusable = 1;
	m->root.cache_revalidate = 1;
	m->root.cache_intermediaries = 0;
	m->metrics.mount_next = &m->root;
	return &m->healthz;
}

/* A growable text buffer with LWS_PRE headroom for the body. */
struct http_buf {
	char *p;
	size_t len, cap;
	int oom;
};

static void hb_printf(struct http_buf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void hb_printf(struct http_buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + LWS_PRE + b->len : NULL,
			      b->p ? b->cap - b->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = 1;
			return;
		}
		if (b->p && (size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		{
			size_t cap = b->cap ? b->cap * 2 : 4096;
			char *np;

			while (cap < b->len + (size_t)n + 1)
				cap *= 2;
			np = realloc(b->p, LWS_PRE + cap);
			if (!np) {
				b->oom = 1;
				return;
			}
			b->p = np;
			b->cap = cap;
		}
	}
}

static int http_reply(struct lws *wsi, int status, const char *ctype,
		      const unsigned char *body, size_t len)
{
	unsigned char hdr[LWS_PRE + 1024], *start = &hdr[LWS_PRE], *p = start,
		      *end = &hdr[sizeof hdr - 1];
	static const char nocache[] = "no-store";

	if (lws_add_http_common_headers(wsi, (unsigned)status, ctype, len, &p, end) ||
	    lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_CACHE_CONTROL,
					 (const unsigned char *)nocache, sizeof nocache - 1,
					 &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return 1;
	if (len && lws_write(wsi, (unsigned char *)body, len, LWS_WRITE_HTTP_FINAL) != (int)len)
		return 1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int http_healthz(struct server *s, struct lws *wsi)
{
	json_t *j = json_pack("{s:b,s:I,s:s,s:I,s:b}", "ok", !s->stopping && !s->fatal,
			      "seq", (json_int_t)s->published, "epoch", s->epoch,
			      "connections", (json_int_t)s->nsess, "tls", !s->o.plain);
	size_t n;
	unsigned char *buf;
	int rc;

	if (!j)
		return 1;
	n = json_dumpb(j, NULL, 0, JSON_COMPACT);
	buf = malloc(LWS_PRE + n + 1);
	if (!buf) {
		json_decref(j);
		return 1;
	}
	json_dumpb(j, (char *)buf + LWS_PRE, n, JSON_COMPACT);
	json_decref(j);
	rc = http_reply(wsi, s->stopping ? HTTP_STATUS_SERVICE_UNAVAILABLE : HTTP_STATUS_OK,
			"application/json", buf + LWS_PRE, n);
	free(buf);
	return rc;
}

static void http_counter(struct http_buf *b, const char *name, const char *help,
			 const char *type, uint64_t v)
{
	hb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		  (unsigned long long)v);
}

static int http_metrics(struct server *s, struct lws *wsi)
{
	const struct srv_metrics *m = &s->m;
	struct http_buf b = { 0 };
	const struct qcache *qc = proto_qcache();
	uint64_t cum = 0;
	int i, rc;

	http_counter(&b, "changelogd_connections", "Open websocket sessions.", "gauge",
		     s->nsess);
	http_counter(&b, "changelogd_messages_in_total", "Websocket messages received.",
		     "counter", m->messages_in);
	http_counter(&b, "changelogd_messages_out_total", "Websocket messages sent.",
		     "counter", m->messages_out);
	http_counter(&b, "changelogd_commits_total", "Write transactions committed.",
		     "counter", m->commits);
	http_counter(&b, "changelogd_events_total", "Events published (ours and other processes').",
		     "counter", m->events);
	http_counter(&b, "changelogd_rate_limited_total", "Requests refused by the rate limit.",
		     "counter", m->rate_limited);
	http_counter(&b, "changelogd_handshakes_refused_total",
		     "Websocket handshakes refused (401, 403, 404, 503).", "counter",
		     m->handshakes_refused);
	http_counter(&b, "changelogd_queue_bytes",
		     "Outbound bytes queued for sessions (replies and log catch-up).", "gauge",
		     s->out_bytes);
	http_counter(&b, "changelogd_ring_bytes", "Bytes of recent pushes kept in memory.",
		     "gauge", s->ring.bytes);
	http_counter(&b, "changelogd_seq", "Last committed event seq.", "gauge", s->published);
	http_counter(&b, "changelogd_query_cache_hits_total",
		     "Stored query answers served from the cache.", "counter", qc->hits);
	http_counter(&b, "changelogd_query_cache_misses_total",
		     "Stored queries computed (no usable cached answer).", "counter",
		     qc->misses);
	http_counter(&b, "changelogd_query_cache_evictions_total",
		     "Cached answers dropped to stay within the caps.", "counter", qc->evictions);
	http_counter(&b, "changelogd_query_cache_entries", "Answers in the query cache.",
		     "gauge", qc->n);
	http_counter(&b, "changelogd_query_cache_bytes", "Bytes held by the query cache.",
		     "gauge", qc->bytes);
	hb_printf(&b, "# HELP changelogd_commit_seconds Write transaction time (begin to fsync'd commit).\n"
		      "# TYPE changelogd_commit_seconds histogram\n");
	for (i = 0; i < SRV_HIST_BUCKETS; i++) {
		cum += m->commit_hist[i];
		hb_printf(&b, "changelogd_commit_seconds_bucket{le=\"%g\"} %llu\n",
			  srv_hist_bounds[i], (unsigned long long)cum);
	}
	hb_printf(&b, "changelogd_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
		  (unsigned long long)m->commit_count);
	hb_printf(&b, "changelogd_commit_seconds_sum %.6f\n", m->commit_sum);
	hb_printf(&b, "changelogd_commit_seconds_count %llu\n",
		  (unsigned long long)m->commit_count);
	hb_printf(&b, "# HELP changelogd_closes_total Websocket sessions closed, by reason.\n"
		      "# TYPE changelogd_closes_total counter\n");
	for (i = 0; i < SRV_CLOSE__COUNT; i++)
		hb_printf(&b, "changelogd_closes_total{reason=\"%s\"} %llu\n", srv_close_name(i),
			  (unsigned long long)m->closes[i]);
	if (b.oom) {
		free(b.p);
		return 1;
	}
	rc = http_reply(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
			(unsigned char *)b.p + LWS_PRE, b.len);
	free(b.p);
	return rc;
}

int http_serve(struct server *s, struct lws *wsi)
{
	char uri[256];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 ||
	    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	if (strcmp(uri, "/healthz") == 0)
		return http_healthz(s, wsi);
	if (strcmp(uri, "/metrics") == 0)
		return http_metrics(s, wsi);
	lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

int http_add_headers(struct lws *wsi, void *in)
{
	struct lws_process_html_args *a = in;
	unsigned char *p = (unsigned char *)a->p, *end = p + a->max_len;
	static const struct { const char *name, *value; } hs[] = {
		{ "x-content-type-options:", "nosniff" },
		{ "referrer-policy:", "no-referrer" },
		{ "x-frame-options:", "DENY" },
	};
	size_t i;

	for (i = 0; i < sizeof hs / sizeof hs[0]; i++)
		if (lws_add_http_header_by_name(wsi, (const unsigned char *)hs[i].name,
						(const unsigned char *)hs[i].value,
						(int)strlen(hs[i].value), &p, end))
			return 1;
	a->p = (char *)p;
	return 0;
}

/*
 * lws_return_http_status() answers an upgrade request with an "HTTP/1.0"
 * status line (the request's version is not parsed yet at CONFIRM_UPGRADE),
 * which strict clients such as Python's websockets refuse to read. So the
 * refusal is written here: a complete HTTP/1.1 response that closes.
 */
int http_refuse(struct lws *wsi, int status)
{
	unsigned char buf[LWS_PRE + 512];
	char *p = (char *)buf + LWS_PRE;
	const char *reason;
	int n;

	switch (status) {
	case 401: reason = "Unauthorized"; break;
	case 403: reason = "Forbidden"; break;
	case 404: reason = "Not Found"; break;
	case 414: reason = "URI Too Long"; break;
	case 503: reason = "Service Unavailable"; break;
	default: status = 400; reason = "Bad Request"; break;
	}
	n = snprintf(p, 512,
		     "HTTP/1.1 %d %s\r\n"
		     "server: changelogd\r\n"
		     "content-type: text/plain; charset=utf-8\r\n"
		     "content-length: %zu\r\n"
		     "cache-control: no-store\r\n"
		     "connection: close\r\n"
		     "\r\n"
		     "%s\n",
		     status, reason, strlen(reason) + 1, reason);
	if (n <= 0 || n >= 512)
		return -1;
	if (lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_HTTP_HEADERS) != n)
		return -1;
	return 1;   /* lws completes the transaction: no keep-alive, so it closes */
}
