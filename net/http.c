/*
 * http.c - /healthz, /metrics, the static web UI mount, and HTTP refusals of
 * websocket handshakes (see http.h). Bodies are small and built in one
 * buffer, then written with a single LWS_WRITE_HTTP_FINAL.
 */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>


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
	m->api = m->healthz;
	m->api.mountpoint = "/api";
	m->api.mountpoint_len = 4;
	m->session = m->healthz;
	m->session.mountpoint = "/session";
	m->session.mountpoint_len = 8;
	m->api.mount_next = &m->session;
	m->healthz.mount_next = &m->metrics;
	m->metrics.mount_next = &m->api;
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
	m->session.mount_next = &m->root;
	return &m->healthz;
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

static int http_healthz(struct lws *wsi, const struct http_view *st)
{
	json_t *j = json_pack("{s:b,s:I,s:s,s:I,s:b}", "ok", st->ok,
			      "seq", (json_int_t)st->g.seq, "epoch", st->epoch,
			      "connections", (json_int_t)st->g.connections, "tls", st->tls);
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
	rc = http_reply(wsi, st->stopping ? HTTP_STATUS_SERVICE_UNAVAILABLE : HTTP_STATUS_OK,
			"application/json", buf + LWS_PRE, n);
	free(buf);
	return rc;
}

static int http_metrics(struct lws *wsi, const struct http_view *st)
{
	size_t len = 0;
	char *text = metrics_render(st->m, &st->g, LWS_PRE, &len);
	int rc;

	if (!text)
		return 1;
	rc = http_reply(wsi, HTTP_STATUS_OK, "text/plain; version=0.0.4; charset=utf-8",
			(unsigned char *)text + LWS_PRE, len);
	free(text);
	return rc;
}

int http_serve(struct lws *wsi, const struct http_view *st)
{
	char uri[256];

	if (lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) <= 0 ||
	    lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI) < 0) {
		lws_return_http_status(wsi, HTTP_STATUS_NOT_FOUND, NULL);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}
	if (strcmp(uri, "/healthz") == 0)
		return http_healthz(wsi, st);
	if (strcmp(uri, "/metrics") == 0)
		return http_metrics(wsi, st);
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
static int http_refuse_allow(struct lws *wsi, int status, const char *allow)
{
	unsigned char buf[LWS_PRE + 640];
	char *p = (char *)buf + LWS_PRE, extra[96] = "";
	const char *reason;
	int n;

	switch (status) {
	case 401: reason = "Unauthorized"; break;
	case 403: reason = "Forbidden"; break;
	case 404: reason = "Not Found"; break;
	case 405: reason = "Method Not Allowed"; break;
	case 411: reason = "Length Required"; break;
	case 413: reason = "Payload Too Large"; break;
	case 414: reason = "URI Too Long"; break;
	case 503: reason = "Service Unavailable"; break;
	default: status = 400; reason = "Bad Request"; break;
	}
	if (allow)
		snprintf(extra, sizeof extra, "allow: %s\r\n", allow);
	n = snprintf(p, 640,
		     "HTTP/1.1 %d %s\r\n"
		     "server: changelogd\r\n"
		     "%s"
		     "content-type: text/plain; charset=utf-8\r\n"
		     "content-length: %zu\r\n"
		     "cache-control: no-store\r\n"
		     "connection: close\r\n"
		     "\r\n"
		     "%s\n",
		     status, reason, extra, strlen(reason) + 1, reason);
	if (n <= 0 || n >= 640)
		return -1;
	if (lws_write(wsi, (unsigned char *)p, (size_t)n, LWS_WRITE_HTTP_HEADERS) != n)
		return -1;
	return 1;   /* lws completes the transaction: no keep-alive, so it closes */
}

int http_refuse(struct lws *wsi, int status)
{
	return http_refuse_allow(wsi, status, NULL);
}

/* What a path takes: its methods (the Allow header) and whether a POST body. */
static const char *http_allowed(const char *uri, int *post)
{
	*post = 0;
	if (strncmp(uri, "/api/v1/commands/", 17) == 0) {
		*post = 1;
		return "POST";
	}
	if (strncmp(uri, "/api/", 5) == 0)
		return "GET";
	if (strcmp(uri, "/session") == 0) {
		*post = 1;
		return "POST, DELETE";
	}
	return "GET, HEAD";
}

static int http_method_in(int meth, const char *allow)
{
	static const char *const names[] = { "GET", "POST", "OPTIONS", "PUT", "PATCH",
					     "DELETE", "CONNECT", "HEAD" };
	const char *p;
	size_t n;

	if (meth < 0 || meth >= (int)(sizeof names / sizeof names[0]))
		return 0;
	n = strlen(names[meth]);
	for (p = allow; (p = strstr(p, names[meth])); p += n)
		if ((p == allow || p[-1] == ' ') && (p[n] == ',' || p[n] == '\0'))
			return 1;
	return 0;
}

int http_filter(struct lws *wsi)
{
	char *uri = NULL, cl[32];
	int ulen = 0, post, meth = lws_http_get_uri_and_method(wsi, &uri, &ulen);
	const char *allow;
	int clen = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH);

	if (meth < 0 || !uri)
		return http_refuse(wsi, 400);
	allow = http_allowed(uri, &post);
	if (!http_method_in(meth, allow))
		return http_refuse_allow(wsi, 405, allow);
	/* a body we do not read would be parsed as the next request */
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0)
		return http_refuse(wsi, post && meth == LWSHUMETH_POST ? 411 : 400);
	if (meth == LWSHUMETH_POST && post)
		return 0;
	if (clen > 0 && (clen >= (int)sizeof cl ||
			 lws_hdr_copy(wsi, cl, sizeof cl, WSI_TOKEN_HTTP_CONTENT_LENGTH) < 0 ||
			 strspn(cl, "0") != strlen(cl)))
		return http_refuse(wsi, 400);
	return 0;
}

int http_origin_is_own(struct lws *wsi, int tls)
{
	char origin[300], host[256];
	const char *rest;
	int n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN),
	    h = lws_hdr_total_length(wsi, WSI_TOKEN_HOST);

	if (n <= 0 || h <= 0 || n >= (int)sizeof origin || h >= (int)sizeof host ||
	    lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0 ||
	    lws_hdr_copy(wsi, host, sizeof host, WSI_TOKEN_HOST) < 0)
		return 0;
	if (strncasecmp(origin, "https://", 8) == 0)
		rest = origin + 8;
	else if (!tls && strncasecmp(origin, "http://", 7) == 0)
		rest = origin + 7;
	else
		return 0;
	return strcasecmp(rest, host) == 0;
}
