/*
 * natssvc.c - the writer's NATS services: forwarded commands and fetches
 * (see natssvc.h).
 *
 * libnats runs each subscription's callback on a thread of its own. The
 * command callback copies the request into v->in (bounded) and wakes the
 * service thread; the fetch callback reads the log itself and answers.
 * Replies to commands come back from the service thread into v->out, and
 * the module's thread (svc_main) publishes them. Everything shared is
 * under v->mu.
 */
#include "natssvc.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <nats/nats.h>

#include "../core/cl.h"
#include "natsconn.h"
#include "slog.h"

struct svc_out {
	struct svc_out *next;
	char *reply_to;
	size_t len;
	char data[];
};

struct natssvc {
	struct natssvc_opts o;
	struct evlog *log;
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	char cmd_subject[300], fetch_subject[300];
	natsOptions *nopts;
	natsConnection *nc;
	natsSubscription *cmd_sub, *fetch_sub;
	void (*wake)(void *);
	void *wake_arg;
	pthread_t th;
	int started;

	pthread_mutex_t mu;        /* guards everything below */
	pthread_cond_t cv;         /* v->out has replies, or stop; or busy fell */
	struct natssvc_req *in_head, *in_tail;
	size_t nin;
	struct svc_out *out_head, *out_tail;
	int busy;                  /* fetch callbacks running */
	int subs, subs_done;       /* subscriptions made / whose handler is done for good */
	int closing, stop;
	struct natssvc_stats st;
};

static void svc_on_connected(natsConnection *nc, void *arg)
{
	(void)nc;
	(void)arg;
}

static void svc_on_disconnected(natsConnection *nc, void *arg)
{
	(void)nc;
	(void)arg;
}

/* An error reply, as the protocol gives it, straight from a NATS thread. */
static void svc_refuse(struct natssvc *v, const char *reply_to, const char *code,
		       const char *message)
{
	json_t *j = json_pack("{s:b,s:{s:s,s:s}}", "ok", 0, "error", "code", code, "message",
			      message);
	char *txt = j ? json_dumps(j, JSON_COMPACT) : NULL;

	if (txt)
		natsConnection_PublishString(v->nc, reply_to, txt);
	free(txt);
	json_decref(j);
	pthread_mutex_lock(&v->mu);
	v->st.refused++;
	pthread_mutex_unlock(&v->mu);
}

/* "<stream>.cmd": queue the request for the service thread. */
static void svc_on_cmd(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct natssvc *v = arg;
	const char *reply_to = natsMsg_GetReply(m);
	int len = natsMsg_GetDataLength(m);
	size_t rlen;
	struct natssvc_req *q;

	(void)nc;
	(void)sub;
	if (!reply_to || !*reply_to) {
		natsMsg_Destroy(m);             /* nobody to answer: not a request */
		return;
	}
	if (len <= 0 || (size_t)len > NATSSVC_MSG_MAX) {
		svc_refuse(v, reply_to, "too_large", "a forwarded command is at most 1 MiB");
		natsMsg_Destroy(m);
		return;
	}
	rlen = strlen(reply_to);
	pthread_mutex_lock(&v->mu);
	if (v->closing || v->nin >= NATSSVC_QUEUE_MAX) {
		int closing = v->closing;

		pthread_mutex_unlock(&v->mu);
		svc_refuse(v, reply_to, "unavailable", closing ? "the writer is stopping; nothing "
			   "was applied" : "the writer has too many forwarded commands waiting; "
			   "nothing was applied");
		natsMsg_Destroy(m);
		return;
	}
	q = malloc(sizeof *q + (size_t)len + 1 + rlen + 1);
	if (!q) {
		pthread_mutex_unlock(&v->mu);
		natsMsg_Destroy(m);
		return;                          /* the edge times out */
	}
	q->next = NULL;
	q->len = (size_t)len;
	memcpy(q->data, natsMsg_GetData(m), (size_t)len);
	q->data[len] = '\0';
	q->reply_to = q->data + len + 1;
	memcpy(q->reply_to, reply_to, rlen + 1);
	if (v->in_tail)
		v->in_tail->next = q;
	else
		v->in_head = q;
	v->in_tail = q;
	v->nin++;
	pthread_mutex_unlock(&v->mu);
	natsMsg_Destroy(m);
	v->wake(v->wake_arg);
}

/* A fetch's reply being built (evlog_rec_fn). */
struct svc_fetch {
	uint8_t *buf;
	size_t len, cap;
	uint64_t n;
};

static int svc_fetch_copy(void *arg, uint64_t seq, const uint8_t *val, size_t len)
{
	struct svc_fetch *f = arg;

	if (f->len + NATSCONN_REC_HDR + len > f->cap) {
		size_t cap = f->cap ? f->cap : 65536;
		uint8_t *n;

		while (cap < f->len + NATSCONN_REC_HDR + len)
			cap *= 2;
		n = realloc(f->buf, cap);
		if (!n)
			return CL_ENOMEM;
		f->buf = n;
		f->cap = cap;
	}
	natsconn_rec_put(f->buf + f->len, seq, val, len);
	f->len += NATSCONN_REC_HDR + len;
	f->n++;
	return 0;
}

static void svc_fetch_answer(struct natssvc *v, const char *reply_to, natsMsg *req)
{
	struct svc_fetch f = { NULL, 0, 0, 0 };
	json_error_t err;
	json_t *j = json_loadb(natsMsg_GetData(req), (size_t)natsMsg_GetDataLength(req), 0, &err);
	json_t *from = j ? json_object_get(j, "from") : NULL;
	json_t *maxb = j ? json_object_get(j, "max_bytes") : NULL;
	const char *error = NULL;
	natsMsg *m = NULL;
	int64_t cap = NATSCONN_FETCH_BYTES;
	int64_t payload = natsConnection_GetMaxPayload(v->nc);
	int rc = 0;

	if (!json_is_integer(from) || json_integer_value(from) < 1 ||
	    (maxb && (!json_is_integer(maxb) || json_integer_value(maxb) < 1))) {
		error = "bad request: {\"from\":SEQ,\"max_bytes\":N} with SEQ >= 1";
	} else {
		if (maxb && json_integer_value(maxb) < cap)
			cap = json_integer_value(maxb);
		/* the reply must fit in one NATS message, headers included */
		if (payload > 8192 && cap > payload - 8192)
			cap = payload - 8192;
		rc = evlog_read_shared(v->log, (uint64_t)json_integer_value(from), SIZE_MAX,
				       (size_t)cap, svc_fetch_copy, &f, NULL);
		if (rc)
			error = rc == CL_EMAPFULL ? "busy: try again" : cl_strerror(rc);
		else if (f.len > 0 && payload > 0 && (int64_t)f.len > payload - 1024)
			error = "an event is larger than this NATS server's max_payload";
	}
	json_decref(j);
	if (natsMsg_Create(&m, reply_to, NULL, error ? NULL : (const char *)f.buf,
			   error ? 0 : (int)f.len) == NATS_OK) {
		natsMsgHeader_Set(m, NATSCONN_HDR_EPOCH, v->epoch);
		if (error)
			natsMsgHeader_Set(m, NATSCONN_HDR_ERROR, error);
		natsConnection_PublishMsg(v->nc, m);
		natsMsg_Destroy(m);
	}
	pthread_mutex_lock(&v->mu);
	v->st.fetches++;
	v->st.fetched += error ? 0 : f.n;
	pthread_mutex_unlock(&v->mu);
	free(f.buf);
}

/* "<stream>.fetch": read the log here, in a read txn of our own. */
static void svc_on_fetch(natsConnection *nc, natsSubscription *sub, natsMsg *m, void *arg)
{
	struct natssvc *v = arg;
	const char *reply_to = natsMsg_GetReply(m);

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&v->mu);
	if (v->closing || !reply_to || !*reply_to) {
		pthread_mutex_unlock(&v->mu);
		natsMsg_Destroy(m);
		return;
	}
	v->busy++;
	pthread_mutex_unlock(&v->mu);
	svc_fetch_answer(v, reply_to, m);
	natsMsg_Destroy(m);
	pthread_mutex_lock(&v->mu);
	v->busy--;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

/* natsOnCompleteCB: a subscription's handler will not run again. */
static void svc_on_sub_done(void *arg)
{
	struct natssvc *v = arg;

	pthread_mutex_lock(&v->mu);
	v->subs_done++;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
}

/* The module's thread: publish the replies the service thread hands over. */
static void *svc_main(void *arg)
{
	struct natssvc *v = arg;

	pthread_mutex_lock(&v->mu);
	for (;;) {
		struct svc_out *o;

		while (!v->out_head && !v->stop)
			pthread_cond_wait(&v->cv, &v->mu);
		if (!v->out_head)
			break;
		o = v->out_head;
		v->out_head = NULL;
		v->out_tail = NULL;
		pthread_mutex_unlock(&v->mu);
		while (o) {
			struct svc_out *nx = o->next;

			natsConnection_Publish(v->nc, o->reply_to, o->data, (int)o->len);
			free(o);
			o = nx;
		}
		natsConnection_FlushTimeout(v->nc, 1000);
		pthread_mutex_lock(&v->mu);
	}
	pthread_mutex_unlock(&v->mu);
	return NULL;
}

/* ---- the service thread's side ------------------------------------------ */

struct natssvc_req *natssvc_take(struct natssvc *v)
{
	struct natssvc_req *q;

	pthread_mutex_lock(&v->mu);
	q = v->in_head;
	v->in_head = v->in_tail = NULL;
	v->nin = 0;
	pthread_mutex_unlock(&v->mu);
	return q;
}

void natssvc_req_free(struct natssvc_req *q)
{
	free(q);
}

void natssvc_reply(struct natssvc *v, struct natssvc_req *q, const char *text, size_t len)
{
	size_t rlen = strlen(q->reply_to);
	struct svc_out *o = malloc(sizeof *o + len + rlen + 1);

	if (o) {
		o->next = NULL;
		o->len = len;
		memcpy(o->data, text, len);
		o->reply_to = o->data + len;
		memcpy(o->reply_to, q->reply_to, rlen + 1);
	}
	pthread_mutex_lock(&v->mu);
	if (o) {
		if (v->out_tail)
			v->out_tail->next = o;
		else
			v->out_head = o;
		v->out_tail = o;
		pthread_cond_broadcast(&v->cv);
	}
	v->st.commands++;
	pthread_mutex_unlock(&v->mu);
	free(q);
}

void natssvc_stats(struct natssvc *v, struct natssvc_stats *st)
{
	pthread_mutex_lock(&v->mu);
	*st = v->st;
	pthread_mutex_unlock(&v->mu);
}

void natssvc_stop(struct natssvc *v)
{
	struct natssvc_req *q;

	if (!v)
		return;
	pthread_mutex_lock(&v->mu);
	v->closing = 1;
	while (v->busy)             /* a fetch reads the log: done before it closes */
		pthread_cond_wait(&v->cv, &v->mu);
	v->stop = 1;
	pthread_cond_broadcast(&v->cv);
	pthread_mutex_unlock(&v->mu);
	if (v->started)
		pthread_join(v->th, NULL);
	if (v->cmd_sub)
		natsSubscription_Unsubscribe(v->cmd_sub);
	if (v->fetch_sub)
		natsSubscription_Unsubscribe(v->fetch_sub);
	{
		/* their handlers use v: wait (at most ~2 s) until libnats is done */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 2;
		pthread_mutex_lock(&v->mu);
		while (v->subs_done < v->subs &&
		       pthread_cond_timedwait(&v->cv, &v->mu, &ts) == 0)
			;
		pthread_mutex_unlock(&v->mu);
	}
	natsSubscription_Destroy(v->cmd_sub);
	natsSubscription_Destroy(v->fetch_sub);
	natsconn_close(v->nc, NULL, v->nopts);
	for (q = v->in_head; q; q = v->in_head) {
		v->in_head = q->next;
		free(q);
	}
	pthread_cond_destroy(&v->cv);
	pthread_mutex_destroy(&v->mu);
	free(v);
}

int natssvc_start(struct natssvc **out, const struct natssvc_opts *o, struct evlog *log,
		  const char *epoch, void (*wake)(void *), void *arg)
{
	struct natssvc *v;
	natsStatus s;
	char why[512];

	*out = NULL;
	v = calloc(1, sizeof *v);
	if (!v)
		return CL_ENOMEM;
	v->o = *o;
	v->log = log;
	v->wake = wake;
	v->wake_arg = arg;
	snprintf(v->epoch, sizeof v->epoch, "%s", epoch);
	snprintf(v->cmd_subject, sizeof v->cmd_subject, "%s" NATSCONN_CMD, o->stream);
	snprintf(v->fetch_subject, sizeof v->fetch_subject, "%s" NATSCONN_FETCH, o->stream);
	pthread_mutex_init(&v->mu, NULL);
	pthread_cond_init(&v->cv, NULL);
	if (natsconn_options(&v->nopts, o->url, o->creds, svc_on_connected, svc_on_disconnected,
			     v, why, sizeof why)) {
		slog(SLOG_ERR, "%s", why);
		natssvc_stop(v);
		return CL_EINVAL;
	}
	s = natsConnection_Connect(&v->nc, v->nopts);
	if (s != NATS_OK && s != NATS_NOT_YET_CONNECTED) {
		slog(SLOG_ERR, "NATS: cannot connect to %s (%s)", o->url, nats_GetLastError(NULL));
		natssvc_stop(v);
		return CL_EINVAL;
	}
	/* subscriptions made before the first connect are sent when it comes */
	s = natsConnection_Subscribe(&v->cmd_sub, v->nc, v->cmd_subject, svc_on_cmd, v);
	if (s == NATS_OK && (s = natsSubscription_SetOnCompleteCB(v->cmd_sub, svc_on_sub_done,
								  v)) == NATS_OK)
		v->subs++;
	if (s == NATS_OK)
		s = natsConnection_Subscribe(&v->fetch_sub, v->nc, v->fetch_subject, svc_on_fetch, v);
	if (s == NATS_OK && (s = natsSubscription_SetOnCompleteCB(v->fetch_sub, svc_on_sub_done,
								  v)) == NATS_OK)
		v->subs++;
	if (s != NATS_OK || pthread_create(&v->th, NULL, svc_main, v) != 0) {
		slog(SLOG_ERR, "NATS: cannot serve %s and %s (%s)", v->cmd_subject, v->fetch_subject,
		     natsStatus_GetText(s));
		natssvc_stop(v);
		return CL_ENOMEM;
	}
	v->started = 1;
	slog(SLOG_INFO, "NATS: serving commands from edges on %s, catch-up on %s",
	     v->cmd_subject, v->fetch_subject);
	*out = v;
	return 0;
}
