/*
 * webhook.c - outgoing webhooks (see webhook.h for the design).
 *
 * struct hook is one endpoint. The service thread creates it
 * (webhook_config / webhook_start) and hands it bodies (webhook_feed); the
 * delivery thread runs its transfers and frees it: a deleted endpoint
 * leaves the table for the `dead` list, and only the delivery thread,
 * which may hold its transfer, frees what is on it. Fields marked (lock)
 * are read and written under wh->mu only; (thread) only by the delivery
 * thread.
 */
#include "webhook.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "../core/version.h"
#include "../store/hookkey.h"
#include "push.h"
#include "slog.h"

struct hook {
	uint64_t id;
	char *url;
	uint32_t mask;                 /* event types it gets */
	char secret[HOOKKEY_SECRET_LEN + 1];
	/* (lock) */
	uint64_t cursor;               /* last seq delivered or skipped */
	int dirty;                     /* cursor moved since it was last written */
	char *body;                    /* the push of seq bseq, or NULL */
	size_t blen;
	uint64_t bseq;
	int busy;                      /* the delivery thread holds body (in flight) */
	uint64_t deliveries, failures;
	long last_status;
	struct hook *next_dead;
	/* (thread) */
	CURL *easy;
	struct curl_slist *headers;
	unsigned fails_in_row;
	double next_try;               /* monotonic seconds */
	uint64_t written;              /* cursor last written to its file */
};

struct webhook {
	struct webhook_opts o;
	char dir[4096];                /* DATA/webhooks */
	pthread_mutex_t mu;
	pthread_t thread;
	int started;
	int stop;                      /* (lock) */
	CURLM *multi;
	struct hook *slot[CL_MAX_WEBHOOKS];   /* (lock) the live endpoints */
	struct hook *dead;             /* (lock) deleted: for the thread to free */
	uint64_t committed;            /* (lock) last committed seq */
	uint8_t key[HOOKKEY_LEN];
	int have_key;
};

uint64_t webhook_backoff_ms(unsigned failures, uint64_t min_ms, uint64_t max_ms)
{
	uint64_t d = min_ms;

	if (failures == 0)
		return 0;
	while (--failures > 0 && d < max_ms)
		d = d > UINT64_MAX / 2 ? UINT64_MAX : d * 2;
	return d < max_ms ? d : max_ms;
}

static double wh_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- cursor files ------------------------------------------------------ */

/* The cursor in DATA/webhooks/<id>, "<epoch> <seq>\n"; 0 if none. */
static uint64_t wh_cursor_read(const struct webhook *wh, uint64_t id)
{
	char path[4200], epoch[64];
	unsigned long long seq = 0;
	FILE *f;

	snprintf(path, sizeof path, "%s/%" PRIu64, wh->dir, id);
	if (!(f = fopen(path, "re")))
		return 0;
	if (fscanf(f, "%63s %llu", epoch, &seq) != 2)
		seq = 0;
	fclose(f);
	if (seq && strcmp(epoch, wh->o.epoch) != 0)
		slog(SLOG_WARN, "webhook %" PRIu64 ": its cursor (seq %llu) was written for "
		     "epoch %s, this log is %s (restored?); resuming after seq %llu anyway",
		     id, seq, epoch, wh->o.epoch, seq);
	return seq;
}

static int wh_cursor_write(const struct webhook *wh, uint64_t id, uint64_t seq)
{
	char path[4200], tmp[4300], line[128];
	int fd, n;

	snprintf(path, sizeof path, "%s/%" PRIu64, wh->dir, id);
	snprintf(tmp, sizeof tmp, "%s/.%" PRIu64 ".tmp", wh->dir, id);
	n = snprintf(line, sizeof line, "%s %" PRIu64 "\n", wh->o.epoch, seq);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 && errno == ENOENT && mkdir(wh->dir, 0700) == 0)   /* the first cursor */
		fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		close(fd);
		unlink(tmp);
		return -1;
	}
	close(fd);
	return rename(tmp, path);
}

/* ---- endpoints (service thread) ---------------------------------------- */

static void hook_free(struct hook *h)
{
	if (!h)
		return;
	free(h->url);
	free(h->body);
	curl_slist_free_all(h->headers);
	OPENSSL_cleanse(h->secret, sizeof h->secret);
	free(h);
}

/* A new endpoint for webhook id of p, cursor from its file or its creation. */
static struct hook *hook_new(struct webhook *wh, const struct proj *p, uint64_t id,
			     uint64_t committed)
{
	struct proj_webhook_info info;
	struct hook *h;
	uint64_t cur;

	if (proj_webhook_get(p, id, &info) != 0 || !info.url)
		return NULL;
	if (!wh->have_key) {
		if (hookkey_load(wh->o.data_dir, 0, wh->key) != 0) {
			slog(SLOG_ERR, "webhook %" PRIu64 ": cannot read %s/webhook.key, so its "
			     "deliveries cannot be signed; not delivering (restore the key from "
			     "the backup, or delete and create the webhook again)", id,
			     wh->o.data_dir);
			return NULL;
		}
		wh->have_key = 1;
	}
	if (!(h = calloc(1, sizeof *h)) || !(h->url = strdup(info.url))) {
		free(h);
		slog(SLOG_ERR, "webhook %" PRIu64 ": out of memory", id);
		return NULL;
	}
	h->id = id;
	h->mask = info.mask;
	hookkey_secret(wh->key, info.nonce, h->secret);
	cur = wh_cursor_read(wh, id);
	if (cur < info.seq)
		cur = info.seq;            /* it gets what came after its creation */
	if (cur > committed)
		cur = committed;           /* a file from a longer log: resume at its end */
	h->cursor = h->written = cur;
	return h;
}

static void wh_add(struct webhook *wh, const struct proj *p, uint64_t id, uint64_t committed)
{
	struct hook *h;
	int i, free_slot = -1;

	for (i = 0; i < CL_MAX_WEBHOOKS; i++) {
		if (wh->slot[i] && wh->slot[i]->id == id)
			return;
		if (!wh->slot[i] && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0 || !(h = hook_new(wh, p, id, committed)))
		return;
	pthread_mutex_lock(&wh->mu);
	wh->slot[free_slot] = h;
	pthread_mutex_unlock(&wh->mu);
	slog(SLOG_INFO, "webhook %" PRIu64 ": delivering to %s after seq %" PRIu64, id, h->url,
	     h->cursor);
}

void webhook_config(struct webhook *wh, const struct proj *p)
{
	struct proj_webhook_info info;
	uint64_t id, n = proj_webhook_count(p);
	int i;

	if (!wh)
		return;
	pthread_mutex_lock(&wh->mu);
	for (i = 0; i < CL_MAX_WEBHOOKS; i++) {
		struct hook *h = wh->slot[i];

		if (h && (proj_webhook_get(p, h->id, &info) != 0 || !info.url)) {
			wh->slot[i] = NULL;
			h->next_dead = wh->dead;
			wh->dead = h;
		}
	}
	pthread_mutex_unlock(&wh->mu);
	for (id = 1; id <= n; id++)
		if (proj_webhook_get(p, id, &info) == 0 && info.url)
			wh_add(wh, p, id, proj_seq(p));
	curl_multi_wakeup(wh->multi);
}

/*
 * The body for h: the first event after from (h's cursor) that h wants, up
 * to committed, at most WEBHOOK_SCAN read. *skipped: the last seq read that
 * h does not want and that comes before the body's (or the last read, when
 * no body). 0, or a CL_E* code (the log could not be read).
 */
static int wh_build(struct webhook *wh, const struct hook *h, const struct proj *p,
		    struct evlog *log, uint64_t from, uint64_t committed, char **body,
		    size_t *len, uint64_t *bseq, uint64_t *skipped)
{
	struct evlog_iter *it = NULL;
	struct event ev;
	int rc, n = 0;

	*body = NULL;
	*skipped = from;
	if ((rc = evlog_iter_new(log, from + 1, &it)) != 0)
		return rc;
	while (n++ < WEBHOOK_SCAN && (rc = evlog_iter_next_event(it, &ev)) == 1 &&
	       ev.seq <= committed) {
		json_t *push;

		if (!(h->mask & (1u << ev.type))) {
			*skipped = ev.seq;
			continue;
		}
		push = push_build(p, &ev, ev.seq < committed);
		if (!push || json_object_set_new(push, "epoch", json_string(wh->o.epoch)) ||
		    !(*body = json_dumps(push, JSON_COMPACT))) {
			json_decref(push);
			rc = CL_ENOMEM;
			break;
		}
		json_decref(push);
		*len = strlen(*body);
		*bseq = ev.seq;
		rc = 0;
		break;
	}
	evlog_iter_free(it);
	return rc < 0 ? rc : 0;
}

void webhook_feed(struct webhook *wh, const struct proj *p, struct evlog *log,
		  uint64_t committed)
{
	int i, fed = 0;

	if (!wh)
		return;
	for (i = 0; i < CL_MAX_WEBHOOKS; i++) {
		struct hook *h;
		uint64_t from, bseq = 0, skipped;
		char *body;
		size_t len = 0;
		int rc;

		pthread_mutex_lock(&wh->mu);
		wh->committed = committed;
		h = wh->slot[i];
		from = h ? h->cursor : 0;
		if (!h || h->body || from >= committed) {
			pthread_mutex_unlock(&wh->mu);
			continue;
		}
		pthread_mutex_unlock(&wh->mu);
		/* the slot is ours to fill: only this thread adds bodies or removes hooks */
		rc = wh_build(wh, h, p, log, from, committed, &body, &len, &bseq, &skipped);
		if (rc) {
			slog(SLOG_ERR, "webhook %" PRIu64 ": cannot read the log after seq %" PRIu64
			     " (%s)", h->id, from, cl_strerror(rc));
			continue;
		}
		pthread_mutex_lock(&wh->mu);
		if (skipped > h->cursor) {
			h->cursor = skipped;
			h->dirty = 1;
		}
		if (body) {
			h->body = body;
			h->blen = len;
			h->bseq = bseq;
		}
		pthread_mutex_unlock(&wh->mu);
		fed = 1;
	}
	if (fed)
		curl_multi_wakeup(wh->multi);
}

size_t webhook_stats(struct webhook *wh, struct webhook_stat *out, size_t cap)
{
	size_t n = 0;
	int i;

	if (!wh)
		return 0;
	pthread_mutex_lock(&wh->mu);
	for (i = 0; i < CL_MAX_WEBHOOKS && n < cap; i++) {
		const struct hook *h = wh->slot[i];

		if (!h)
			continue;
		out[n].id = h->id;
		out[n].cursor = h->cursor;
		out[n].lag = wh->committed > h->cursor ? wh->committed - h->cursor : 0;
		out[n].deliveries = h->deliveries;
		out[n].failures = h->failures;
		out[n].last_status = h->last_status;
		n++;
	}
	pthread_mutex_unlock(&wh->mu);
	return n;
}

/* ---- the delivery thread ------------------------------------------------- */

/* The answer's body is not read: bounded, whatever the endpoint sends. */
static size_t wh_discard(char *p, size_t size, size_t n, void *arg)
{
	(void)p;
	(void)arg;
	return size * n;
}

/* Start h's transfer of its body (h->busy set by the caller). 0 or -1. */
static int wh_post(struct webhook *wh, struct hook *h)
{
	char seq[64], sig[HOOKKEY_SIG_LEN + 1], sighdr[128], epoch[96];
	struct curl_slist *l = NULL, *n;

	hookkey_sign(h->secret, strlen(h->secret), h->body, h->blen, sig);
	snprintf(seq, sizeof seq, "X-Changelogd-Seq: %" PRIu64, h->bseq);
	snprintf(epoch, sizeof epoch, "X-Changelogd-Epoch: %s", wh->o.epoch);
	snprintf(sighdr, sizeof sighdr, "X-Changelogd-Signature: sha256=%s", sig);
	{
		const char *hdrs[] = { "Content-Type: application/json", seq, epoch, sighdr,
				       "Expect:", NULL };

		for (int i = 0; hdrs[i]; i++) {
			if (!(n = curl_slist_append(l, hdrs[i]))) {
				curl_slist_free_all(l);
				return -1;
			}
			l = n;
		}
	}
	if (!h->easy && !(h->easy = curl_easy_init())) {
		curl_slist_free_all(l);
		return -1;
	}
	curl_slist_free_all(h->headers);
	h->headers = l;
	curl_easy_reset(h->easy);
	curl_easy_setopt(h->easy, CURLOPT_URL, h->url);
	curl_easy_setopt(h->easy, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h->easy, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h->easy, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h->easy, CURLOPT_POST, 1L);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDS, h->body);
	curl_easy_setopt(h->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)h->blen);
	curl_easy_setopt(h->easy, CURLOPT_HTTPHEADER, h->headers);
	curl_easy_setopt(h->easy, CURLOPT_USERAGENT, "changelogd/" CL_VERSION);
	curl_easy_setopt(h->easy, CURLOPT_TIMEOUT_MS, wh->o.timeout_ms);
	curl_easy_setopt(h->easy, CURLOPT_CONNECTTIMEOUT_MS, wh->o.timeout_ms);
	curl_easy_setopt(h->easy, CURLOPT_WRITEFUNCTION, wh_discard);
	curl_easy_setopt(h->easy, CURLOPT_PRIVATE, h);
	return curl_multi_add_handle(wh->multi, h->easy) == CURLM_OK ? 0 : -1;
}

/* A transfer of h ended: status is the HTTP status (0: no answer). */
static void wh_done(struct webhook *wh, struct hook *h, CURLcode res, long status)
{
	int ok = res == CURLE_OK && status >= 200 && status < 300;
	uint64_t seq;

	curl_multi_remove_handle(wh->multi, h->easy);
	pthread_mutex_lock(&wh->mu);
	seq = h->bseq;
	h->busy = 0;
	h->last_status = res == CURLE_OK ? status : 0;
	if (ok) {
		h->deliveries++;
		free(h->body);
		h->body = NULL;
		if (seq > h->cursor)
			h->cursor = seq;
		h->dirty = 1;
	} else {
		h->failures++;
	}
	pthread_mutex_unlock(&wh->mu);
	if (ok) {
		h->fails_in_row = 0;
		h->next_try = 0;
		if (wh->o.wake)
			wh->o.wake(wh->o.arg);      /* the next body, please */
		return;
	}
	h->fails_in_row++;
	{
		uint64_t ms = webhook_backoff_ms(h->fails_in_row, (uint64_t)wh->o.backoff_min_ms,
						 (uint64_t)wh->o.backoff_max_ms);

		h->next_try = wh_mono() + (double)ms / 1000.0;
		slog(h->fails_in_row == 1 ? SLOG_WARN : SLOG_DEBUG,
		     "webhook %" PRIu64 ": seq %" PRIu64 " not delivered to %s (%s%ld); "
		     "retrying in %" PRIu64 " ms (failure %u in a row)", h->id, seq, h->url,
		     res == CURLE_OK ? "HTTP " : curl_easy_strerror(res),
		     res == CURLE_OK ? status : 0L, ms, h->fails_in_row);
	}
}

/* Free the deleted endpoints (their transfers are ours to end). */
static void wh_bury(struct webhook *wh, struct hook *list)
{
	while (list) {
		struct hook *nx = list->next_dead;
		char path[4200];

		if (list->easy) {
			curl_multi_remove_handle(wh->multi, list->easy);
			curl_easy_cleanup(list->easy);
		}
		snprintf(path, sizeof path, "%s/%" PRIu64, wh->dir, list->id);
		unlink(path);
		slog(SLOG_INFO, "webhook %" PRIu64 ": deleted; no more deliveries to %s", list->id,
		     list->url);
		hook_free(list);
		list = nx;
	}
}

static void *wh_thread(void *arg)
{
	struct webhook *wh = arg;

	for (;;) {
		struct hook *dead, *start[CL_MAX_WEBHOOKS], *save[CL_MAX_WEBHOOKS];
		uint64_t save_seq[CL_MAX_WEBHOOKS];
		int nstart = 0, nsave = 0, running = 0, left, i;
		double now = wh_mono(), wait = 1.0;
		CURLMsg *msg;

		pthread_mutex_lock(&wh->mu);
		if (wh->stop) {
			pthread_mutex_unlock(&wh->mu);
			break;
		}
		dead = wh->dead;
		wh->dead = NULL;
		for (i = 0; i < CL_MAX_WEBHOOKS; i++) {
			struct hook *h = wh->slot[i];

			if (!h)
				continue;
			if (h->dirty) {
				h->dirty = 0;
				save[nsave] = h;
				save_seq[nsave++] = h->cursor;
			}
			if (h->body && !h->busy) {
				if (h->next_try <= now) {
					h->busy = 1;
					start[nstart++] = h;
				} else if (h->next_try - now < wait) {
					wait = h->next_try - now;
				}
			}
		}
		pthread_mutex_unlock(&wh->mu);

		wh_bury(wh, dead);
		for (i = 0; i < nsave; i++) {
			if (save_seq[i] == save[i]->written)
				continue;
			if (wh_cursor_write(wh, save[i]->id, save_seq[i]) == 0)
				save[i]->written = save_seq[i];
			else
				slog(SLOG_ERR, "webhook %" PRIu64 ": cannot write its cursor to %s "
				     "(%s); a restart sends again from seq %" PRIu64, save[i]->id,
				     wh->dir, strerror(errno), save[i]->written + 1);
		}
		for (i = 0; i < nstart; i++) {
			if (wh_post(wh, start[i]) != 0) {
				slog(SLOG_ERR, "webhook %" PRIu64 ": cannot start a request (out of "
				     "memory?)", start[i]->id);
				wh_done(wh, start[i], CURLE_OUT_OF_MEMORY, 0);
			}
		}
		curl_multi_perform(wh->multi, &running);
		while ((msg = curl_multi_info_read(wh->multi, &left))) {
			struct hook *h = NULL;
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&h);
			curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
			wh_done(wh, h, msg->data.result, status);
			wait = 0;                  /* look again before sleeping */
		}
		if (wait > 0)
			curl_multi_poll(wh->multi, NULL, 0, (int)(wait * 1000) + 1, NULL);
	}
	return NULL;
}

/* ---- start, stop --------------------------------------------------------- */

int webhook_start(struct webhook **out, const struct webhook_opts *o, const struct proj *p,
		  uint64_t committed)
{
	struct webhook *wh;
	uint64_t id, n = proj_webhook_count(p);

	*out = NULL;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		slog(SLOG_ERR, "webhooks: libcurl does not start");
		return CL_EIO;
	}
	if (!(wh = calloc(1, sizeof *wh))) {
		curl_global_cleanup();
		return CL_ENOMEM;
	}
	wh->o = *o;
	snprintf(wh->dir, sizeof wh->dir, "%s/webhooks", o->data_dir);
	pthread_mutex_init(&wh->mu, NULL);
	wh->committed = committed;
	if (!(wh->multi = curl_multi_init())) {
		webhook_stop(wh);
		return CL_ENOMEM;
	}
	for (id = 1; id <= n; id++)
		wh_add(wh, p, id, committed);
	if (pthread_create(&wh->thread, NULL, wh_thread, wh) != 0) {
		slog(SLOG_ERR, "webhooks: cannot start the delivery thread");
		webhook_stop(wh);
		return CL_ENOMEM;
	}
	wh->started = 1;
	*out = wh;
	return 0;
}

void webhook_stop(struct webhook *wh)
{
	int i;

	if (!wh)
		return;
	if (wh->started) {
		pthread_mutex_lock(&wh->mu);
		wh->stop = 1;
		pthread_mutex_unlock(&wh->mu);
		curl_multi_wakeup(wh->multi);
		pthread_join(wh->thread, NULL);
	}
	for (i = 0; i < CL_MAX_WEBHOOKS; i++) {
		struct hook *h = wh->slot[i];

		if (!h)
			continue;
		if (h->easy) {
			curl_multi_remove_handle(wh->multi, h->easy);
			curl_easy_cleanup(h->easy);
		}
		hook_free(h);
	}
	while (wh->dead) {
		struct hook *nx = wh->dead->next_dead;

		if (wh->dead->easy) {
			curl_multi_remove_handle(wh->multi, wh->dead->easy);
			curl_easy_cleanup(wh->dead->easy);
		}
		hook_free(wh->dead);
		wh->dead = nx;
	}
	if (wh->multi)
		curl_multi_cleanup(wh->multi);
	pthread_mutex_destroy(&wh->mu);
	OPENSSL_cleanse(wh->key, sizeof wh->key);
	free(wh);
	curl_global_cleanup();
}
