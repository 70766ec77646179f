/*
 * edge.c - an edge node's NATS consumer thread (see edge.h).
 *
 * The thread waits for the next message of an ordered consumer that
 * started at the edge's last seq + 1, checks that its stream seq is the
 * next one, copies it into the queue (waiting while the queue is full)
 * and wakes the service thread. Everything shared is under e->mu.
 */
#include "edge.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/cl.h"
#include "natsconn.h"
#include "slog.h"

#define EDGE_WAIT_MS 250           /* the thread looks at e->stop this often */
#define EDGE_HEARTBEAT_MS 1000     /* the consumer's idle heartbeat */

const char *const edge_state_names[EDGE__COUNT + 1] = {
	"connecting", "live", "gap", "diverged", NULL
};

struct edge {
	struct edge_opts o;
	char subject[300];
	char fetch_subject[300];
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	natsOptions *nopts;
	natsConnection *nc;
	jsCtx *js;
	natsSubscription *sub;
	pthread_t th;
	int started;
	void (*wake)(void *);
	void *wake_arg;

	pthread_mutex_t mu;        /* guards everything below */
	pthread_cond_t room;       /* the queue has room again */
	struct edge_msg *head, *tail;
	size_t qn, qbytes;
	uint64_t next;             /* the seq the consumer expects */
	uint64_t stream_pending;   /* what the stream holds past the last delivery */
	uint64_t applied;
	uint64_t fetches, fetched;
	double lag_secs;
	int state;
	int stop;
};

static void edge_set_state(struct edge *e, int state)
{
	pthread_mutex_lock(&e->mu);
	if (e->state != EDGE_GAP && e->state != EDGE_DIVERGED)
		e->state = state;
	pthread_mutex_unlock(&e->mu);
}

static void edge_on_connected(natsConnection *nc, void *arg)
{
	(void)nc;
	edge_set_state(arg, EDGE_LIVE);
}

static void edge_on_disconnected(natsConnection *nc, void *arg)
{
	(void)nc;
	edge_set_state(arg, EDGE_CONNECTING);
}

/*
 * Queue one event (the consumer thread), waiting while the queue is full;
 * seq must be e->next. Called and returns with e->mu held. 0, or -1 when
 * stopping.
 */
static int edge_push(struct edge *e, uint64_t seq, int64_t stored_ns, const void *data,
		     size_t len)
{
	struct edge_msg *q;

	while (!e->stop && (e->qn >= EDGE_QUEUE_MAX || e->qbytes + len > EDGE_QUEUE_BYTES) &&
	       e->qn > 0)
		pthread_cond_wait(&e->room, &e->mu);
	if (e->stop || e->state == EDGE_DIVERGED)
		return -1;
	q = malloc(sizeof *q + len);
	if (!q)
		return 0;                       /* the ordered consumer redelivers later */
	q->next = NULL;
	q->seq = seq;
	q->stored_ns = stored_ns;
	q->len = len;
	memcpy(q->data, data, len);
	if (e->tail)
		e->tail->next = q;
	else
		e->head = q;
	e->tail = q;
	e->qn++;
	e->qbytes += q->len;
	e->next = seq + 1;
	return 0;
}

static int64_t edge_now_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/*
 * One catch-up request to the writer (natssvc.h: "<stream>.fetch") for the
 * events from e->next on; each is queued like a stream message (the
 * service thread checks seq continuity and the hash chain). 1: some came,
 * 0: not now (why says it), -1: stop (diverged, or stopping).
 */
static int edge_fetch(struct edge *e, char *why, size_t cap)
{
	char req[96];
	natsMsg *rep = NULL;
	natsStatus s;
	const char *epoch = NULL, *err = NULL;
	const uint8_t *buf, *val;
	size_t off = 0, vlen, len;
	uint64_t seq, from, got = 0;
	int rc;

	pthread_mutex_lock(&e->mu);
	from = e->next;
	pthread_mutex_unlock(&e->mu);
	snprintf(req, sizeof req, "{\"from\":%" PRIu64 ",\"max_bytes\":%u}", from,
		 NATSCONN_FETCH_BYTES);
	s = natsConnection_Request(&rep, e->nc, e->fetch_subject, req, (int)strlen(req), 3000);
	if (s != NATS_OK) {
		snprintf(why, cap, "%s", s == NATS_NO_RESPONDERS ? "no writer serves it (down or "
			 "not connected)" : natsStatus_GetText(s));
		return 0;
	}
	natsMsgHeader_Get(rep, NATSCONN_HDR_EPOCH, &epoch);
	natsMsgHeader_Get(rep, NATSCONN_HDR_ERROR, &err);
	if (!epoch || strcmp(epoch, e->epoch) != 0) {
		slog(SLOG_ERR, "edge: the writer answering %s serves the log of epoch %s, this edge "
		     "holds epoch %s; not applying anything more", e->fetch_subject,
		     epoch ? epoch : "(none)", e->epoch);
		natsMsg_Destroy(rep);
		pthread_mutex_lock(&e->mu);
		e->state = EDGE_DIVERGED;
		pthread_mutex_unlock(&e->mu);
		return -1;
	}
	if (err) {
		snprintf(why, cap, "the writer says: %s", err);
		natsMsg_Destroy(rep);
		return 0;
	}
	buf = (const uint8_t *)natsMsg_GetData(rep);
	len = (size_t)natsMsg_GetDataLength(rep);
	pthread_mutex_lock(&e->mu);
	e->fetches++;
	while ((rc = natsconn_rec_next(buf, len, &off, &seq, &val, &vlen)) == 1) {
		if (seq != e->next) {
			rc = -1;
			break;
		}
		if (edge_push(e, seq, edge_now_ns(), val, vlen) != 0) {
			pthread_mutex_unlock(&e->mu);
			natsMsg_Destroy(rep);
			return -1;
		}
		got++;
		e->fetched++;
	}
	pthread_mutex_unlock(&e->mu);
	natsMsg_Destroy(rep);
	if (got)
		e->wake(e->wake_arg);
	if (rc < 0) {
		snprintf(why, cap, "its reply is cut short or out of order");
		return got ? 1 : 0;
	}
	if (!got)
		snprintf(why, cap, "it has no event %" PRIu64 " (is its log behind the stream?)",
			 from);
	return got ? 1 : 0;
}

/*
 * The stream jumps from e->next to seq (it no longer holds what this edge
 * lacks): fetch the rest from the writer, retrying every second while it
 * cannot answer. 0 once the edge is at seq, -1 to stop.
 */
static int edge_catch_up(struct edge *e, uint64_t seq)
{
	char why[200];
	int said = 0;

	slog(SLOG_INFO, "edge: the stream %s jumps from seq %" PRIu64 " to %" PRIu64
	     "; catching up from the writer (%s)", e->o.stream, e->next - 1, seq,
	     e->fetch_subject);
	for (;;) {
		uint64_t next;
		int rc, stop;

		pthread_mutex_lock(&e->mu);
		next = e->next;
		stop = e->stop;
		pthread_mutex_unlock(&e->mu);
		if (stop)
			return -1;
		if (next >= seq)
			break;
		rc = edge_fetch(e, why, sizeof why);
		if (rc < 0)
			return -1;
		if (rc == 0) {
			struct timespec ts = { 1, 0 };

			if (!said)
				slog(SLOG_WARN, "edge: cannot catch up from the writer on %s: %s; "
				     "retrying every second", e->fetch_subject, why);
			said = 1;
			pthread_mutex_lock(&e->mu);
			if (e->state != EDGE_DIVERGED)
				e->state = EDGE_GAP;
			pthread_mutex_unlock(&e->mu);
			nanosleep(&ts, NULL);
		}
	}
	pthread_mutex_lock(&e->mu);
	if (e->state == EDGE_GAP)
		e->state = EDGE_LIVE;
	pthread_mutex_unlock(&e->mu);
	if (said)
		slog(SLOG_INFO, "edge: caught up from the writer to seq %" PRIu64, seq - 1);
	return 0;
}

/* Queue one stream message (the consumer thread). 0, or -1 to stop consuming. */
static int edge_queue(struct edge *e, natsMsg *m)
{
	jsMsgMetaData *meta = NULL;
	int len = natsMsg_GetDataLength(m), rc;
	uint64_t seq, next;

	if (natsMsg_GetMetaData(&meta, m) != NATS_OK)
		return 0;                       /* not a stream message: ignore */
	seq = meta->Sequence.Stream;
	pthread_mutex_lock(&e->mu);
	e->stream_pending = meta->NumPending;
	next = e->next;
	pthread_mutex_unlock(&e->mu);
	if (seq > next && edge_catch_up(e, seq) != 0) {
		jsMsgMetaData_Destroy(meta);
		return -1;
	}
	pthread_mutex_lock(&e->mu);
	if (seq < e->next) {                    /* held already (a redelivery, or fetched) */
		pthread_mutex_unlock(&e->mu);
		jsMsgMetaData_Destroy(meta);
		return 0;
	}
	rc = edge_push(e, seq, meta->Timestamp, natsMsg_GetData(m), (size_t)len);
	pthread_mutex_unlock(&e->mu);
	jsMsgMetaData_Destroy(meta);
	if (rc == 0)
		e->wake(e->wake_arg);
	return rc;
}

static void *edge_main(void *arg)
{
	struct edge *e = arg;

	for (;;) {
		natsMsg *m = NULL;
		natsStatus s;
		int stop;

		pthread_mutex_lock(&e->mu);
		stop = e->stop || e->state == EDGE_DIVERGED;
		pthread_mutex_unlock(&e->mu);
		if (stop)
			break;
		s = natsSubscription_NextMsg(&m, e->sub, EDGE_WAIT_MS);
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK) {
			struct timespec ts = { 0, EDGE_WAIT_MS * 1000000L };

			nanosleep(&ts, NULL);   /* closed or reconnecting */
			continue;
		}
		if (edge_queue(e, m) != 0) {
			natsMsg_Destroy(m);
			break;
		}
		natsMsg_Destroy(m);
	}
	return NULL;
}

/* ---- the service thread's side ----------------------------------------- */

struct edge_msg *edge_take(struct edge *e)
{
	struct edge_msg *m;

	pthread_mutex_lock(&e->mu);
	m = e->head;
	e->head = e->tail = NULL;
	e->qn = e->qbytes = 0;
	pthread_cond_broadcast(&e->room);
	pthread_mutex_unlock(&e->mu);
	return m;
}

void edge_msgs_free(struct edge_msg *m)
{
	while (m) {
		struct edge_msg *nx = m->next;

		free(m);
		m = nx;
	}
}

void edge_applied(struct edge *e, const struct edge_msg *m)
{
	struct timespec now;

	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&e->mu);
	e->applied = m->seq;
	e->lag_secs = ((double)now.tv_sec * 1e9 + (double)now.tv_nsec - (double)m->stored_ns) / 1e9;
	if (e->lag_secs < 0)
		e->lag_secs = 0;
	pthread_mutex_unlock(&e->mu);
}

void edge_refuse(struct edge *e)
{
	pthread_mutex_lock(&e->mu);
	e->state = EDGE_DIVERGED;
	pthread_cond_broadcast(&e->room);
	pthread_mutex_unlock(&e->mu);
}

void edge_stats(struct edge *e, struct edge_stats *st)
{
	pthread_mutex_lock(&e->mu);
	st->state = e->state;
	st->applied = e->applied;
	st->behind = e->stream_pending + (e->next - 1 - e->applied);
	st->lag_secs = e->lag_secs;
	st->fetches = e->fetches;
	st->fetched = e->fetched;
	pthread_mutex_unlock(&e->mu);
}

void edge_stop(struct edge *e)
{
	if (!e)
		return;
	if (e->started) {
		pthread_mutex_lock(&e->mu);
		e->stop = 1;
		pthread_cond_broadcast(&e->room);
		pthread_mutex_unlock(&e->mu);
		pthread_join(e->th, NULL);
	}
	if (e->sub)
		natsSubscription_Unsubscribe(e->sub);
	natsSubscription_Destroy(e->sub);
	natsconn_free(e->nc, e->js, e->nopts);
	edge_msgs_free(e->head);
	pthread_cond_destroy(&e->room);
	pthread_mutex_destroy(&e->mu);
	free(e);
}

int edge_connect(struct edge **out, const struct edge_opts *o,
		 char epoch[EVLOG_EPOCH_STRLEN + 1], char *why, size_t cap)
{
	struct edge *e;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	const char *desc;
	int rc = 0;

	*out = NULL;
	e = calloc(1, sizeof *e);
	if (!e)
		return CL_ENOMEM;
	e->o = *o;
	snprintf(e->subject, sizeof e->subject, "%s.events", o->stream);
	snprintf(e->fetch_subject, sizeof e->fetch_subject, "%s" NATSCONN_FETCH, o->stream);
	pthread_mutex_init(&e->mu, NULL);
	pthread_cond_init(&e->room, NULL);
	if (natsconn_options(&e->nopts, o->url, o->creds, edge_on_connected,
			     edge_on_disconnected, e, why, cap)) {
		edge_stop(e);
		return CL_EINVAL;
	}
	/* an edge cannot serve before it knows the epoch: the first connect waits */
	natsOptions_SetRetryOnFailedConnect(e->nopts, false, NULL, NULL);
	s = natsConnection_Connect(&e->nc, e->nopts);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&e->js, e->nc, NULL);
	if (s != NATS_OK) {
		snprintf(why, cap, "cannot connect to NATS at %s (%s)", o->url,
			 nats_GetLastError(NULL));
		edge_stop(e);
		return CL_EIO;
	}
	e->state = EDGE_LIVE;
	s = js_GetStreamInfo(&si, e->js, o->stream, NULL, &jerr);
	if (s != NATS_OK) {
		snprintf(why, cap, "cannot read NATS stream %s (%s, %d)%s", o->stream,
			 natsStatus_GetText(s), (int)jerr, jerr == JSStreamNotFoundErr ?
			 ": the writer creates it (changelogd --nats)" : "");
		edge_stop(e);
		return jerr == JSStreamNotFoundErr ? CL_ENOTFOUND : CL_EIO;
	}
	desc = si->Config ? si->Config->Description : NULL;
	if (!desc || strncmp(desc, NATSCONN_DESC, sizeof NATSCONN_DESC - 1) != 0 ||
	    strlen(desc + sizeof NATSCONN_DESC - 1) != EVLOG_EPOCH_STRLEN) {
		snprintf(why, cap, "NATS stream %s was not made by changelogd (its description "
			 "does not name a log epoch)", o->stream);
		rc = CL_ECORRUPT;
	} else {
		memcpy(epoch, desc + sizeof NATSCONN_DESC - 1, EVLOG_EPOCH_STRLEN + 1);
		memcpy(e->epoch, epoch, EVLOG_EPOCH_STRLEN + 1);
	}
	jsStreamInfo_Destroy(si);
	if (rc) {
		edge_stop(e);
		return rc;
	}
	*out = e;
	return 0;
}

int edge_start(struct edge *e, uint64_t from, void (*wake)(void *), void *arg)
{
	jsSubOptions so;
	jsErrCode jerr = 0;
	natsStatus s;

	e->wake = wake;
	e->wake_arg = arg;
	e->next = from + 1;
	e->applied = from;
	jsSubOptions_Init(&so);
	so.Stream = e->o.stream;
	so.Ordered = true;
	so.Config.DeliverPolicy = js_DeliverByStartSequence;
	so.Config.OptStartSeq = from + 1;
	/* missed heartbeats make libnats re-create the consumer (a broker that
	 * lost it): after ~2 of them */
	so.Config.Heartbeat = (int64_t)EDGE_HEARTBEAT_MS * 1000000;
	s = js_SubscribeSync(&e->sub, e->js, e->subject, NULL, &so, &jerr);
	if (s != NATS_OK) {
		slog(SLOG_ERR, "edge: cannot consume NATS stream %s from seq %" PRIu64 " (%s, %d)",
		     e->o.stream, from + 1, natsStatus_GetText(s), (int)jerr);
		return CL_EIO;
	}
	if (pthread_create(&e->th, NULL, edge_main, e) != 0)
		return CL_ENOMEM;
	e->started = 1;
	slog(SLOG_INFO, "edge: following NATS stream %s from seq %" PRIu64, e->o.stream,
	     from + 1);
	return 0;
}
