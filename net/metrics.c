/*
 * metrics.c - counters and the Prometheus text of /metrics (see metrics.h).
 * The page is built with printf into one growable buffer.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double metrics_hist_bounds[METRICS_HIST_BUCKETS] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
	0.01, 0.025, 0.05, 0.1, 0.25, 1.0
};

const char *metrics_close_name(int kind)
{
	static const char *const names[METRICS_CLOSE__COUNT] = {
		"peer", "too_big", "binary", "slow_consumer", "token_revoked",
		"shutdown", "error"
	};

	return kind >= 0 && kind < METRICS_CLOSE__COUNT ? names[kind] : "unknown";
}

void metrics_observe_commit(struct metrics *m, double secs)
{
	int i;

	m->commits++;
	m->commit_count++;
	m->commit_sum += secs;
	for (i = 0; i < METRICS_HIST_BUCKETS; i++)
		if (secs <= metrics_hist_bounds[i]) {
			m->commit_hist[i]++;
			break;
		}
}

/* A growable text buffer with headroom bytes in front of the text. */
struct mbuf {
	char *p;
	size_t head, len, cap;
	int oom;
};

static void mb_printf(struct mbuf *b, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void mb_printf(struct mbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p ? b->p + b->head + b->len : NULL,
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
			np = realloc(b->p, b->head + cap);
			if (!np) {
				b->oom = 1;
				return;
			}
			b->p = np;
			b->cap = cap;
		}
	}
}

static void mb_counter(struct mbuf *b, const char *name, const char *help,
		       const char *type, uint64_t v)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
		  (unsigned long long)v);
}

static void metrics_nats_render(struct mbuf *b, const struct metrics_nats *n)
{
	int i;

	mb_counter(b, "changelogd_nats_published_seq",
		   "Last seq the NATS stream acknowledged.", "gauge", n->published);
	mb_counter(b, "changelogd_nats_publish_lag",
		   "Committed events the NATS stream has not acknowledged yet.", "gauge", n->lag);
	mb_counter(b, "changelogd_nats_republished_total",
		   "Events republished from the log because the stream lacked them.",
		   "counter", n->republished);
	mb_counter(b, "changelogd_nats_checks_total",
		   "Comparisons of the NATS stream with the log (start, errors, reconnects).",
		   "counter", n->checks);
	mb_counter(b, "changelogd_nats_publish_errors_total",
		   "Publishes the NATS stream refused or did not acknowledge.", "counter",
		   n->errors);
	mb_counter(b, "changelogd_nats_forwarded_total",
		   "Commands edges forwarded that this writer answered.", "counter",
		   n->svc_commands);
	mb_counter(b, "changelogd_nats_forwarded_refused_total",
		   "Forwarded commands refused before they ran (queue full, too big).", "counter",
		   n->svc_refused);
	mb_counter(b, "changelogd_nats_fetches_total",
		   "Catch-up requests of edges answered from the log.", "counter", n->svc_fetches);
	mb_counter(b, "changelogd_nats_fetched_events_total",
		   "Events handed to edges by catch-up requests.", "counter", n->svc_fetched);
	mb_printf(b, "# HELP changelogd_nats_state The publisher's state (1 for the current one).\n"
		     "# TYPE changelogd_nats_state gauge\n");
	for (i = 0; n->states[i]; i++)
		mb_printf(b, "changelogd_nats_state{state=\"%s\"} %d\n", n->states[i],
			  strcmp(n->states[i], n->state) == 0);
}

static void metrics_webhook_family(struct mbuf *b, const struct metrics_gauges *g,
				   const char *name, const char *help, const char *type,
				   size_t field)
{
	mb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
	for (size_t i = 0; i < g->nwebhooks; i++) {
		const struct metrics_webhook *w = &g->webhooks[i];
		uint64_t v = field == 0 ? w->lag : field == 1 ? w->deliveries :
			     field == 2 ? w->failures : field == 3 ? w->cursor :
			     (uint64_t)w->last_status;

		mb_printf(b, "%s{webhook=\"%llu\"} %llu\n", name, (unsigned long long)w->id,
			  (unsigned long long)v);
	}
}

static void metrics_webhooks_render(struct mbuf *b, const struct metrics_gauges *g)
{
	metrics_webhook_family(b, g, "changelogd_webhook_lag_seqs",
			       "Committed seqs this webhook has not been given yet.", "gauge", 0);
	metrics_webhook_family(b, g, "changelogd_webhook_deliveries_total",
			       "Deliveries this webhook answered with a 2xx.", "counter", 1);
	metrics_webhook_family(b, g, "changelogd_webhook_failures_total",
			       "Delivery attempts that failed (a status, no answer, a timeout).",
			       "counter", 2);
	metrics_webhook_family(b, g, "changelogd_webhook_cursor_seq",
			       "Last seq delivered to (or skipped by) this webhook.", "gauge", 3);
	metrics_webhook_family(b, g, "changelogd_webhook_last_status",
			       "HTTP status of the last attempt (0: none yet, or no answer).",
			       "gauge", 4);
}

static void metrics_edge_render(struct mbuf *b, const struct metrics_edge *e)
{
	int i;

	mb_counter(b, "changelogd_edge_behind_seqs",
		   "Seqs the NATS stream holds that this edge has not applied yet.", "gauge",
		   e->behind);
	mb_printf(b, "# HELP changelogd_edge_lag_seconds From the stream storing the last "
		     "applied event to this edge applying it.\n"
		     "# TYPE changelogd_edge_lag_seconds gauge\n"
		     "changelogd_edge_lag_seconds %.6f\n", e->lag_secs);
	mb_printf(b, "# HELP changelogd_edge_commit_lag_seconds From the writer committing the "
		     "last applied event (its timestamp) to this edge applying it.\n"
		     "# TYPE changelogd_edge_commit_lag_seconds gauge\n"
		     "changelogd_edge_commit_lag_seconds %.6f\n", e->commit_lag_secs);
	mb_counter(b, "changelogd_edge_fetches_total",
		   "Catch-up requests this edge made to the writer.", "counter", e->fetches);
	mb_counter(b, "changelogd_edge_fetched_events_total",
		   "Events this edge got from the writer's catch-up service.", "counter",
		   e->fetched);
	mb_counter(b, "changelogd_edge_forwarded_in_flight",
		   "Commands forwarded to the writer, not yet answered.", "gauge",
		   e->fwd_in_flight);
	mb_printf(b, "# HELP changelogd_edge_forwarded_total Commands forwarded to the writer, by "
		     "outcome: answered (the writer's reply, after this edge applied its event), "
		     "unavailable (no writer, no reply or not caught up in time), refused (over "
		     "--forward-max or --forward-user-max).\n"
		     "# TYPE changelogd_edge_forwarded_total counter\n"
		     "changelogd_edge_forwarded_total{result=\"answered\"} %llu\n"
		     "changelogd_edge_forwarded_total{result=\"unavailable\"} %llu\n"
		     "changelogd_edge_forwarded_total{result=\"refused\"} %llu\n",
		     (unsigned long long)e->fwd_answered, (unsigned long long)e->fwd_unavailable,
		     (unsigned long long)e->fwd_refused);
	mb_printf(b, "# HELP changelogd_edge_state The edge consumer's state (1 for the current one).\n"
		     "# TYPE changelogd_edge_state gauge\n");
	for (i = 0; e->states[i]; i++)
		mb_printf(b, "changelogd_edge_state{state=\"%s\"} %d\n", e->states[i],
			  strcmp(e->states[i], e->state) == 0);
}

char *metrics_render(const struct metrics *m, const struct metrics_gauges *g, size_t headroom,
		     size_t *len)
{
	struct mbuf b = { .head = headroom };
	const struct qcache *qc = g->qc;
	uint64_t cum = 0;
	int i;

	mb_counter(&b, "changelogd_connections", "Open websocket sessions.", "gauge",
		   g->connections);
	mb_counter(&b, "changelogd_messages_in_total", "Websocket messages received.",
		   "counter", m->messages_in);
	mb_counter(&b, "changelogd_messages_out_total", "Websocket messages sent.",
		   "counter", m->messages_out);
	mb_counter(&b, "changelogd_commits_total", "Write transactions committed.",
		   "counter", m->commits);
	mb_counter(&b, "changelogd_events_total", "Events published (ours and other processes').",
		   "counter", m->events);
	mb_counter(&b, "changelogd_rate_limited_total", "Requests refused by the rate limit.",
		   "counter", m->rate_limited);
	mb_counter(&b, "changelogd_handshakes_refused_total",
		   "Websocket handshakes refused (401, 403, 404, 503).", "counter",
		   m->handshakes_refused);
	mb_counter(&b, "changelogd_api_requests_total", "HTTP API requests (/api/v1, /session).",
		   "counter", m->api_requests);
	mb_counter(&b, "changelogd_api_refused_total",
		   "HTTP API requests answered 4xx or 5xx.", "counter", m->api_refused);
	mb_counter(&b, "changelogd_browser_sessions", "Signed-in browser sessions.", "gauge",
		   g->websessions);
	mb_counter(&b, "changelogd_queue_bytes",
		   "Outbound bytes queued for sessions (replies and log catch-up).", "gauge",
		   g->queue_bytes);
	mb_counter(&b, "changelogd_ring_bytes", "Bytes of recent pushes kept in memory.",
		   "gauge", g->ring_bytes);
	mb_counter(&b, "changelogd_seq", "Last committed event seq.", "gauge", g->seq);
	mb_counter(&b, "changelogd_query_cache_hits_total",
		   "Stored query answers served from the cache.", "counter", qc->hits);
	mb_counter(&b, "changelogd_query_cache_misses_total",
		   "Stored queries computed (no usable cached answer).", "counter",
		   qc->misses);
	mb_counter(&b, "changelogd_query_cache_evictions_total",
		   "Cached answers dropped to stay within the caps.", "counter", qc->evictions);
	mb_counter(&b, "changelogd_query_cache_entries", "Answers in the query cache.",
		   "gauge", qc->n);
	mb_counter(&b, "changelogd_query_cache_bytes", "Bytes held by the query cache.",
		   "gauge", qc->bytes);
	mb_counter(&b, "changelogd_entry_texts", "Entry texts in the entry text cache.",
		   "gauge", g->texts);
	mb_counter(&b, "changelogd_entry_texts_bytes",
		   "Bytes the entry text cache holds (texts and their malloc headers).", "gauge",
		   g->texts_bytes);
	mb_counter(&b, "changelogd_entry_texts_made_total",
		   "Entry texts serialized for pages.", "counter", g->texts_made);
	mb_counter(&b, "changelogd_entry_texts_hits_total",
		   "Entry texts a page reused from the cache.", "counter", g->texts_hits);
	mb_counter(&b, "changelogd_entry_texts_evicted_total",
		   "Entry texts dropped to stay within the cache's cap.", "counter",
		   g->texts_evicted);
	mb_counter(&b, "changelogd_page_waits_total",
		   "Pages that waited for a later batch (text or work budget).", "counter",
		   g->page_waits);
	mb_counter(&b, "changelogd_page_partial_total",
		   "Pages ended early (partial) by the batch's text budget.", "counter",
		   g->page_partial);
	mb_counter(&b, "changelogd_presence_users", "Users announced present on this node.",
		   "gauge", g->presence_users);
	mb_counter(&b, "changelogd_presence_pushes_total",
		   "Presence push frames sent (one per watcher).", "counter", m->presence_pushes);
	mb_printf(&b, "# HELP changelogd_commit_seconds Write transaction time (begin to fsync'd commit).\n"
		      "# TYPE changelogd_commit_seconds histogram\n");
	for (i = 0; i < METRICS_HIST_BUCKETS; i++) {
		cum += m->commit_hist[i];
		mb_printf(&b, "changelogd_commit_seconds_bucket{le=\"%g\"} %llu\n",
			  metrics_hist_bounds[i], (unsigned long long)cum);
	}
	mb_printf(&b, "changelogd_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
		  (unsigned long long)m->commit_count);
	mb_printf(&b, "changelogd_commit_seconds_sum %.6f\n", m->commit_sum);
	mb_printf(&b, "changelogd_commit_seconds_count %llu\n",
		  (unsigned long long)m->commit_count);
	mb_printf(&b, "# HELP changelogd_closes_total Websocket sessions closed, by reason.\n"
		      "# TYPE changelogd_closes_total counter\n");
	for (i = 0; i < METRICS_CLOSE__COUNT; i++)
		mb_printf(&b, "changelogd_closes_total{reason=\"%s\"} %llu\n",
			  metrics_close_name(i), (unsigned long long)m->closes[i]);
	if (g->nats)
		metrics_nats_render(&b, g->nats);
	if (g->edge)
		metrics_edge_render(&b, g->edge);
	if (g->webhooks_on)
		metrics_webhooks_render(&b, g);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	*len = b.len;
	return b.p;
}
