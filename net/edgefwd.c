/*
 * edgefwd.c - an edge's command forwarder thread (see edgefwd.h).
 *
 * Everything shared between the service thread, the forwarder thread
 * (fwd_main: publishes) and libnats' threads (the inbox callback, the
 * connection callbacks) is under f->mu.
 */
#include "edgefwd.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "../core/cl.h"
#include "natsconn.h"
#include "slog.h"

struct fwd_out {
	struct fwd_out *next;
	uint64_t id;
	size_t len;
	char data[];
};

struct edgefwd {
	char subject[300];
	natsOptions *nopts;
	natsConnection *nc;
	natsInbox *inbox;
	char inbox_sub[300];
	natsSubscription *sub;
	void (*wake)(void *);
	void *wake_arg;
	pthread_t th;
	int started;

	pthread_mutex_t mu;
	pthread_cond_t cv;         /* f->out has requests, or stop */
	struct fwd_out *out_head, *out_tail;
	struct edgefwd_reply *in_head, *in_tail;
	int connected, stop;
	int closed;                /* libnats is done with our callbacks */
	int sub_done;              /* ... and with the inbox's handler */
};

static void fwd_set_connected(void *arg, int on)
{
	struct edgefwd *f = arg;

	pthread_mutex_lock(&f->mu);
	f->connected = on;
	pthread_mutex_unlock(&f->mu);
}

static void fwd_on_connected(natsConnection *nc, void *arg)
{
	(void)nc;
	fwd_set_connected(arg, 1);
}

static void fwd_on_disconnected(natsConnection *nc, void *arg)
{
	(void)nc;
	fwd_set_connected(arg, 0);
}

/* The last connection callback: after it, libnats no longer calls us. */
static void fwd_on_closed(natsConnection *nc, void *arg)
{
	struct edgefwd *f = arg;

	(void)nc;
	pthread_mutex_lock(&f->mu);
	f->closed = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* natsOnCompleteCB: the inbox's handler will not run again. */
static void fwd_on_sub_done(void *arg)
{
	struct edgefwd *f = arg;

	pthread_mutex_lock(&f->mu);
	f->sub_done = 1;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* A reply on "<inbox>.<id>": queue it for the service thread. */
static void fwd_on_reply(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct edgefwd *f = arg;
	const char *subj = natsMsg_GetSubject(m), *dot = strrchr(subj, '.');
	int len = natsMsg_GetDataLength(m);
	struct edgefwd_reply *r;

	(void)nc;
	(void)sub;
	if (!dot || len < 0 || (size_t)len > 2 * NATSCONN_FETCH_BYTES + (1u << 20)) {
		natsMsg_Destroy(m);
		return;
	}
	r = malloc(sizeof *r + (size_t)len + 1);
	if (!r) {
		natsMsg_Destroy(m);
		return;                          /* the service thread times it out */
	}
	r->next = NULL;
	r->id = strtoull(dot + 1, NULL, 10);
	r->no_responders = natsMsg_IsNoResponders(m);
	r->len = (size_t)len;
	memcpy(r->data, natsMsg_GetData(m), (size_t)len);
	r->data[len] = '\0';
	natsMsg_Destroy(m);
	pthread_mutex_lock(&f->mu);
	if (f->in_tail)
		f->in_tail->next = r;
	else
		f->in_head = r;
	f->in_tail = r;
	pthread_mutex_unlock(&f->mu);
	f->wake(f->wake_arg);
}

static void *fwd_main(void *arg)
{
	struct edgefwd *f = arg;
	char reply[400];

	pthread_mutex_lock(&f->mu);
	for (;;) {
		struct fwd_out *o;

		while (!f->out_head && !f->stop)
			pthread_cond_wait(&f->cv, &f->mu);
		if (f->stop)
			break;
		o = f->out_head;
		f->out_head = f->out_tail = NULL;
		pthread_mutex_unlock(&f->mu);
		while (o) {
			struct fwd_out *nx = o->next;

			snprintf(reply, sizeof reply, "%s.%" PRIu64, (const char *)f->inbox, o->id);
			natsConnection_PublishRequest(f->nc, f->subject, reply, o->data, (int)o->len);
			free(o);
			o = nx;
		}
		natsConnection_FlushTimeout(f->nc, 1000);
		pthread_mutex_lock(&f->mu);
	}
	pthread_mutex_unlock(&f->mu);
	return NULL;
}

int edgefwd_connected(struct edgefwd *f)
{
	int on;

	pthread_mutex_lock(&f->mu);
	on = f->connected;
	pthread_mutex_unlock(&f->mu);
	return on;
}

int edgefwd_send(struct edgefwd *f, uint64_t id, const char *text, size_t len)
{
	struct fwd_out *o;

	pthread_mutex_lock(&f->mu);
	if (!f->connected) {
		pthread_mutex_unlock(&f->mu);
		return CL_EIO;
	}
	pthread_mutex_unlock(&f->mu);
	o = malloc(sizeof *o + len);
	if (!o)
		return CL_ENOMEM;
	o->next = NULL;
	o->id = id;
	o->len = len;
	memcpy(o->data, text, len);
	pthread_mutex_lock(&f->mu);
	if (f->out_tail)
		f->out_tail->next = o;
	else
		f->out_head = o;
	f->out_tail = o;
	pthread_cond_signal(&f->cv);
	pthread_mutex_unlock(&f->mu);
	return 0;
}

struct edgefwd_reply *edgefwd_take(struct edgefwd *f)
{
	struct edgefwd_reply *r;

	pthread_mutex_lock(&f->mu);
	r = f->in_head;
	f->in_head = f->in_tail = NULL;
	pthread_mutex_unlock(&f->mu);
	return r;
}

void edgefwd_replies_free(struct edgefwd_reply *r)
{
	while (r) {
		struct edgefwd_reply *nx = r->next;

		free(r);
		r = nx;
	}
}

void edgefwd_stop(struct edgefwd *f)
{
	struct fwd_out *o;

	if (!f)
		return;
	if (f->started) {
		pthread_mutex_lock(&f->mu);
		f->stop = 1;
		pthread_cond_signal(&f->cv);
		pthread_mutex_unlock(&f->mu);
		pthread_join(f->th, NULL);
	}
	if (f->nc) {
		/* the inbox's handler and the disconnected callback run on libnats'
		 * threads even after Unsubscribe and Close: wait (at most ~2 s) for
		 * the calls that say they are done before freeing f */
		struct timespec ts;

		if (f->sub)
			natsSubscription_Unsubscribe(f->sub);
		natsConnection_Close(f->nc);
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		pthread_mutex_lock(&f->mu);
		while ((!f->closed || (f->sub && !f->sub_done)) &&
		       pthread_cond_timedwait(&f->cv, &f->mu, &ts) == 0)
			;
		pthread_mutex_unlock(&f->mu);
	}
	natsSubscription_Destroy(f->sub);
	natsconn_close(f->nc, NULL, f->nopts);
	natsInbox_Destroy(f->inbox);
	while ((o = f->out_head)) {
		f->out_head = o->next;
		free(o);
	}
	edgefwd_replies_free(f->in_head);
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

int edgefwd_start(struct edgefwd **out, const struct edge_opts *o, void (*wake)(void *),
		  void *arg, char *why, size_t cap)
{
	struct edgefwd *f;
	natsStatus s;

	*out = NULL;
	f = calloc(1, sizeof *f);
	if (!f)
		return CL_ENOMEM;
	f->wake = wake;
	f->wake_arg = arg;
	snprintf(f->subject, sizeof f->subject, "%s" NATSCONN_CMD, o->stream);
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	if (natsconn_options(&f->nopts, o->url, o->creds, fwd_on_connected, fwd_on_disconnected,
			     f, why, cap) ||
	    natsOptions_SetClosedCB(f->nopts, fwd_on_closed, f) != NATS_OK) {
		edgefwd_stop(f);
		return CL_EINVAL;
	}
	s = natsConnection_Connect(&f->nc, f->nopts);
	if (s == NATS_OK)
		f->connected = 1;
	else if (s != NATS_NOT_YET_CONNECTED) {
		snprintf(why, cap, "cannot connect to NATS at %s (%s)", o->url,
			 nats_GetLastError(NULL));
		edgefwd_stop(f);
		return CL_EINVAL;
	}
	s = natsInbox_Create(&f->inbox);
	if (s == NATS_OK) {
		snprintf(f->inbox_sub, sizeof f->inbox_sub, "%s.*", (const char *)f->inbox);
		s = natsConnection_Subscribe(&f->sub, f->nc, f->inbox_sub, fwd_on_reply, f);
	}
	if (s == NATS_OK)
		s = natsSubscription_SetOnCompleteCB(f->sub, fwd_on_sub_done, f);
	if (s != NATS_OK || pthread_create(&f->th, NULL, fwd_main, f) != 0) {
		snprintf(why, cap, "cannot start forwarding commands (%s)", natsStatus_GetText(s));
		edgefwd_stop(f);
		return CL_ENOMEM;
	}
	f->started = 1;
	slog(SLOG_INFO, "edge: forwarding commands to the writer on %s", f->subject);
	*out = f;
	return 0;
}
