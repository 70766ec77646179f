/*
 * natspub.c - the NATS JetStream publisher thread (see natspub.h).
 *
 * Threads: the service thread calls natspub_committed and natspub_stats;
 * the publisher thread (np_main) does all NATS and log I/O; libnats'
 * own threads run the connection callbacks and the ack handler. Everything
 * they share is under np->mu; the rest belongs to the publisher thread.
 *
 * The loop: wait until the log is ahead of what was sent (or a check is
 * due), check the stream against the log when asked to (np->check), then
 * copy up to NATSPUB_CHUNK events out of the log and hand them to libnats'
 * asynchronous publish, at most NATSPUB_INFLIGHT unacknowledged. An error
 * ack, a refused publish or a reconnect sets np->check: the next turn
 * waits for what is in flight, compares again and republishes from the
 * stream's last seq + 1.
 */
#include "natspub.h"

#include <errno.h>
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

#define NATSPUB_CHUNK 256              /* events copied out of the log per read */
#define NATSPUB_CHUNK_BYTES (1 << 20)  /* ... and about this many bytes */
#define NATSPUB_INFLIGHT 4096          /* published, not yet acknowledged */
#define NATSPUB_ACK_MS 5000            /* an ack later than this is an error */
#define NATSPUB_TICK_MS 250            /* the thread looks around this often */
#define NATSPUB_RETRY_MS 1000          /* after an API error */
#define NATSPUB_DIVERGED_MS 5000       /* re-checking a stream that disagreed */
#define NATSPUB_DESC NATSCONN_DESC

struct np_rec {
	uint64_t seq;
	size_t off, len;
};

struct natspub {
	struct natspub_opts o;
	char subject[300];
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	char desc[sizeof NATSPUB_DESC + EVLOG_EPOCH_STRLEN];
	struct evlog *log;
	pthread_t th;
	int started;

	pthread_mutex_t mu;        /* guards the fields down to "publisher only" */
	pthread_cond_t cv;
	uint64_t committed;
	uint64_t acked;
	int connected;
	int check;                 /* compare stream and log before publishing */
	int stop;
	struct natspub_stats st;   /* counters and state for /metrics */
	char err[256];             /* last error an ack brought, for the log */

	/* publisher thread only */
	natsOptions *nopts;
	natsConnection *nc;
	jsCtx *js;
	uint64_t sent;             /* last seq handed to libnats */
	uint64_t catchup_upto;     /* events up to here are republished ones */
	char why[512];             /* the last "diverged" reason logged */
	uint8_t *buf;
	size_t buflen, bufcap;
	struct np_rec recs[NATSPUB_CHUNK];
	size_t nrecs;
	uint8_t *cmp;              /* one log record, for the comparison */
	size_t cmplen;
};

const char *const natspub_state_names[NATSPUB__COUNT + 1] = {
	"connecting", "syncing", "live", "retrying", "diverged", NULL
};

const char *natspub_state_name(int state)
{
	return state >= 0 && state < NATSPUB__COUNT ? natspub_state_names[state] : "unknown";
}

static void np_set_state(struct natspub *np, int state)
{
	pthread_mutex_lock(&np->mu);
	np->st.state = state;
	pthread_mutex_unlock(&np->mu);
}

/* ---- libnats callbacks (its threads) ---------------------------------- */

static void np_on_connected(natsConnection *nc, void *arg)
{
	struct natspub *np = arg;

	(void)nc;
	pthread_mutex_lock(&np->mu);
	np->connected = 1;
	np->check = 1;
	pthread_cond_signal(&np->cv);
	pthread_mutex_unlock(&np->mu);
}

static void np_on_disconnected(natsConnection *nc, void *arg)
{
	struct natspub *np = arg;

	(void)nc;
	pthread_mutex_lock(&np->mu);
	np->connected = 0;
	np->st.state = NATSPUB_CONNECTING;
	pthread_mutex_unlock(&np->mu);
}

/* Our seq from a message's Nats-Msg-Id "<epoch>:<seq>", 0 if none. */
static uint64_t np_msg_seq(natsMsg *m)
{
	const char *id = NULL, *colon;

	if (!m || natsMsgHeader_Get(m, "Nats-Msg-Id", &id) != NATS_OK || !id)
		return 0;
	colon = strrchr(id, ':');
	return colon ? strtoull(colon + 1, NULL, 10) : 0;
}

/* jsPubAckHandler: one per published message, ok or not. */
static void np_on_ack(jsCtx *js, natsMsg *m, jsPubAck *pa, jsPubAckErr *pae, void *arg)
{
	struct natspub *np = arg;
	uint64_t seq = np_msg_seq(m);

	(void)js;
	pthread_mutex_lock(&np->mu);
	if (pae || !pa || pa->Sequence != seq) {
		np->st.errors++;
		np->check = 1;
		if (pae)
			snprintf(np->err, sizeof np->err, "seq %" PRIu64 ": %s (%d)", seq,
				 pae->ErrText ? pae->ErrText : natsStatus_GetText(pae->Err),
				 (int)pae->ErrCode);
		else
			snprintf(np->err, sizeof np->err, "seq %" PRIu64 " was stored as stream "
				 "seq %" PRIu64, seq, pa ? pa->Sequence : 0);
	} else if (seq > np->acked) {
		np->acked = seq;
	}
	pthread_cond_signal(&np->cv);
	pthread_mutex_unlock(&np->mu);
	natsMsg_Destroy(m);
}

/* ---- reading the log ---------------------------------------------------- */

/* evlog_rec_fn: copy one record into the chunk buffer. */
static int np_copy(void *arg, uint64_t seq, const uint8_t *val, size_t len)
{
	struct natspub *np = arg;

	if (np->buflen + len > np->bufcap) {
		size_t cap = np->bufcap ? np->bufcap : 65536;
		uint8_t *n;

		while (cap < np->buflen + len)
			cap *= 2;
		n = realloc(np->buf, cap);
		if (!n)
			return CL_ENOMEM;
		np->buf = n;
		np->bufcap = cap;
	}
	memcpy(np->buf + np->buflen, val, len);
	np->recs[np->nrecs].seq = seq;
	np->recs[np->nrecs].off = np->buflen;
	np->recs[np->nrecs].len = len;
	np->nrecs++;
	np->buflen += len;
	return 0;
}

/* evlog_rec_fn: keep the one record the comparison needs. */
static int np_keep(void *arg, uint64_t seq, const uint8_t *val, size_t len)
{
	struct natspub *np = arg;
	uint8_t *n = realloc(np->cmp, len ? len : 1);

	(void)seq;
	if (!n)
		return CL_ENOMEM;
	np->cmp = n;
	memcpy(np->cmp, val, len);
	np->cmplen = len;
	return 0;
}

/* ---- comparing the stream with the log ----------------------------------- */

/* A stream that disagrees: say so once per reason, stop publishing. */
static int np_diverged(struct natspub *np, const char *why)
{
	if (strcmp(np->why, why) != 0) {
		snprintf(np->why, sizeof np->why, "%s", why);
		slog(SLOG_ERR, "not publishing to NATS stream %s: %s; the log is the truth and "
		     "stays as it is: delete the stream (it is then rebuilt from the log) or point "
		     "--nats-stream at another one", np->o.stream, why);
	}
	np_set_state(np, NATSPUB_DIVERGED);
	return -1;
}

static int np_retry(struct natspub *np, const char *what, natsStatus s, jsErrCode jerr)
{
	slog(SLOG_WARN, "NATS: cannot %s stream %s (%s, %d); retrying", what, np->o.stream,
	     natsStatus_GetText(s), (int)jerr);
	np_set_state(np, NATSPUB_RETRYING);
	return -1;
}

static natsStatus np_create_stream(struct natspub *np, jsStreamInfo **si, jsErrCode *jerr)
{
	const char *subjects[1] = { np->subject };
	jsStreamConfig cfg;

	jsStreamConfig_Init(&cfg);
	cfg.Name = np->o.stream;
	cfg.Description = np->desc;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Retention = js_LimitsPolicy;
	cfg.Discard = js_DiscardOld;
	cfg.Replicas = np->o.replicas;
	cfg.MaxMsgs = np->o.max_msgs;
	cfg.MaxBytes = np->o.max_bytes;
	cfg.MaxMsgSize = CL_MAX_EVENT + 4096;
	slog(SLOG_INFO, "NATS: creating stream %s (subject %s, file storage, %d replica%s)",
	     np->o.stream, np->subject, np->o.replicas, np->o.replicas == 1 ? "" : "s");
	return js_AddStream(si, np->js, &cfg, NULL, jerr);
}

/*
 * Compare the stream with the log and set np->sent to the stream's last
 * seq. 0: publish from there; -1: not now (state says why).
 */
static int np_check(struct natspub *np)
{
	jsPubOptions po;
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsMsg *m = NULL;
	natsStatus s;
	uint64_t last = 0, log_last = 0, committed;
	char why[400];
	int rc;

	np_set_state(np, NATSPUB_SYNCING);
	/* what is in flight is acked or failed before the stream is read */
	jsPubOptions_Init(&po);
	po.MaxWait = NATSPUB_ACK_MS;
	js_PublishAsyncComplete(np->js, &po);
	pthread_mutex_lock(&np->mu);
	np->check = 0;
	np->st.checks++;
	committed = np->committed;
	if (np->err[0]) {
		slog(SLOG_WARN, "NATS: a publish to stream %s failed (%s); comparing the stream "
		     "with the log", np->o.stream, np->err);
		np->err[0] = '\0';
	}
	pthread_mutex_unlock(&np->mu);

	s = js_GetStreamInfo(&si, np->js, np->o.stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND || jerr == JSStreamNotFoundErr) {
		jerr = 0;
		s = np_create_stream(np, &si, &jerr);
		if (s != NATS_OK)
			return np_retry(np, "create", s, jerr);
	} else if (s != NATS_OK) {
		return np_retry(np, "read", s, jerr);
	}
	if (!si->Config || !si->Config->Description ||
	    strncmp(si->Config->Description, NATSPUB_DESC, sizeof NATSPUB_DESC - 1) != 0) {
		jsStreamInfo_Destroy(si);
		return np_diverged(np, "the stream was not made by changelogd (its description "
				   "does not name a log epoch)");
	}
	if (strcmp(si->Config->Description, np->desc) != 0) {
		snprintf(why, sizeof why, "the stream holds the log of another epoch (%s; this "
			 "log is epoch %s)", si->Config->Description + sizeof NATSPUB_DESC - 1,
			 np->epoch);
		jsStreamInfo_Destroy(si);
		return np_diverged(np, why);
	}
	last = si->State.LastSeq;
	jsStreamInfo_Destroy(si);

	rc = last ? evlog_read_shared(np->log, last, 1, 1, np_keep, np, &log_last) : 0;
	if (rc == 0 && last && log_last < last) {
		snprintf(why, sizeof why, "the stream is ahead of the log (stream seq %" PRIu64
			 ", log seq %" PRIu64 ")", last, log_last);
		return np_diverged(np, why);
	}
	if (rc) {
		slog(SLOG_WARN, "NATS: cannot read event %" PRIu64 " from the log (%s); retrying",
		     last, cl_strerror(rc));
		np_set_state(np, NATSPUB_RETRYING);
		return -1;
	}
	if (last) {
		jerr = 0;
		s = js_GetMsg(&m, np->js, np->o.stream, last, NULL, &jerr);
		if (s == NATS_OK) {
			char id[EVLOG_EPOCH_STRLEN + 32];
			const char *got = NULL;
			int same = (size_t)natsMsg_GetDataLength(m) == np->cmplen &&
				   memcmp(natsMsg_GetData(m), np->cmp, np->cmplen) == 0;

			snprintf(id, sizeof id, "%s:%" PRIu64, np->epoch, last);
			natsMsgHeader_Get(m, "Nats-Msg-Id", &got);
			if (!same || !got || strcmp(got, id) != 0) {
				snprintf(why, sizeof why, "the stream's message %" PRIu64 " is not the "
					 "log's event %" PRIu64 " (%s)", last, last,
					 !same ? "different bytes" : "a different Nats-Msg-Id");
				natsMsg_Destroy(m);
				return np_diverged(np, why);
			}
			natsMsg_Destroy(m);
		} else if (jerr == JSNoMessageFoundErr || s == NATS_NOT_FOUND) {
			slog(SLOG_WARN, "NATS: stream %s no longer holds its last message %" PRIu64
			     " (purged or expired); its epoch matches, publishing from %" PRIu64,
			     np->o.stream, last, last + 1);
		} else {
			return np_retry(np, "read the last message of", s, jerr);
		}
	}
	if (np->why[0]) {
		slog(SLOG_INFO, "NATS: stream %s agrees with the log again", np->o.stream);
		np->why[0] = '\0';
	}
	if (committed > last) {
		slog(last == np->sent && np->sent != 0 ? SLOG_DEBUG : SLOG_INFO,
		     "NATS: stream %s is at seq %" PRIu64 ", the log at %" PRIu64
		     "; republishing the rest from the log", np->o.stream, last, committed);
		if (committed > np->catchup_upto)
			np->catchup_upto = committed;
	}
	np->sent = last;
	pthread_mutex_lock(&np->mu);
	np->acked = last;
	np->st.state = NATSPUB_LIVE;
	pthread_mutex_unlock(&np->mu);
	return 0;
}

/* ---- publishing ------------------------------------------------------------ */

/* Hand the chunk to libnats. 0, or -1 after a refusal (a check follows). */
static int np_publish_chunk(struct natspub *np)
{
	char id[EVLOG_EPOCH_STRLEN + 32];
	jsPubOptions po;
	size_t i;
	uint64_t republished = 0;

	for (i = 0; i < np->nrecs; i++) {
		const struct np_rec *r = &np->recs[i];
		natsMsg *m = NULL;
		natsStatus s;

		CL_ASSERT(r->seq == np->sent + 1);
		s = natsMsg_Create(&m, np->subject, NULL, (const char *)np->buf + r->off,
				   (int)r->len);
		if (s != NATS_OK)
			break;
		snprintf(id, sizeof id, "%s:%" PRIu64, np->epoch, r->seq);
		jsPubOptions_Init(&po);
		po.MsgId = id;
		po.MaxWait = NATSPUB_ACK_MS;
		if (r->seq > 1)
			po.ExpectLastSeq = r->seq - 1;
		else
			po.ExpectNoMessage = true;   /* last subject seq 0: an empty stream */
		s = js_PublishMsgAsync(np->js, &m, &po);
		natsMsg_Destroy(m);          /* NULL once libnats took it */
		if (s != NATS_OK) {
			pthread_mutex_lock(&np->mu);
			np->st.errors++;
			np->check = 1;
			snprintf(np->err, sizeof np->err, "seq %" PRIu64 ": %s", r->seq,
				 natsStatus_GetText(s));
			pthread_mutex_unlock(&np->mu);
			break;
		}
		np->sent = r->seq;
		if (r->seq <= np->catchup_upto)
			republished++;
	}
	pthread_mutex_lock(&np->mu);
	np->st.republished += republished;
	pthread_mutex_unlock(&np->mu);
	return i == np->nrecs ? 0 : -1;
}

static void np_publish_some(struct natspub *np, uint64_t upto)
{
	size_t want = upto - np->sent;
	int rc;

	if (want > NATSPUB_CHUNK)
		want = NATSPUB_CHUNK;
	np->nrecs = 0;
	np->buflen = 0;
	rc = evlog_read_shared(np->log, np->sent + 1, want, NATSPUB_CHUNK_BYTES, np_copy, np,
			       NULL);
	if (rc) {
		if (rc != CL_EMAPFULL)
			slog(SLOG_ERR, "NATS: cannot read events from %" PRIu64 " in the log (%s)",
			     np->sent + 1, cl_strerror(rc));
		np->nrecs = 0;
		return;
	}
	np_publish_chunk(np);
}

/* ---- the thread ------------------------------------------------------------ */

static void np_deadline(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);     /* np->cv waits on this clock */
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static void *np_main(void *arg)
{
	struct natspub *np = arg;
	jsPubOptions po;
	struct timespec ts;
	int next_check_ms = 0;     /* wait before a check is retried */

	for (;;) {
		uint64_t committed;
		int check, connected, state, ready;

		/* one deadline for the whole wait: commits signal np->cv often,
		 * and a recheck of a stream that disagreed must still come */
		np_deadline(&ts, next_check_ms ? next_check_ms : NATSPUB_TICK_MS);
		pthread_mutex_lock(&np->mu);
		for (;;) {
			committed = np->committed;
			check = np->check;
			connected = np->connected;
			state = np->st.state;
			ready = connected && (check || (state == NATSPUB_LIVE && committed > np->sent &&
							np->sent - np->acked < NATSPUB_INFLIGHT));
			if (np->stop || (ready && next_check_ms == 0))
				break;
			if (pthread_cond_timedwait(&np->cv, &np->mu, &ts) != ETIMEDOUT)
				continue;
			if (next_check_ms) {
				next_check_ms = 0;
				if (connected && state != NATSPUB_LIVE)
					np->check = 1;
			}
			np_deadline(&ts, NATSPUB_TICK_MS);
		}
		pthread_mutex_unlock(&np->mu);
		if (np->stop)
			break;
		if (check || state != NATSPUB_LIVE) {
			if (np_check(np) != 0) {
				pthread_mutex_lock(&np->mu);
				state = np->st.state;
				pthread_mutex_unlock(&np->mu);
				next_check_ms = state == NATSPUB_DIVERGED ? NATSPUB_DIVERGED_MS :
						NATSPUB_RETRY_MS;
			}
			continue;
		}
		np_publish_some(np, committed);
	}
	/* stopping: what the last batches committed, if the stream is live */
	for (;;) {
		uint64_t committed;
		int go;

		pthread_mutex_lock(&np->mu);
		committed = np->committed;
		go = np->connected && np->st.state == NATSPUB_LIVE && !np->check &&
		     committed > np->sent;
		pthread_mutex_unlock(&np->mu);
		if (!go)
			break;
		np_publish_some(np, committed);
		if (np->nrecs == 0)
			break;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = 2000;
	if (np->js)
		js_PublishAsyncComplete(np->js, &po);
	return NULL;
}

/* ---- the service thread's side ------------------------------------------------ */

void natspub_committed(struct natspub *np, uint64_t seq)
{
	if (!np)
		return;
	pthread_mutex_lock(&np->mu);
	if (seq > np->committed) {
		np->committed = seq;
		pthread_cond_signal(&np->cv);
	}
	pthread_mutex_unlock(&np->mu);
}

void natspub_stats(struct natspub *np, struct natspub_stats *st)
{
	pthread_mutex_lock(&np->mu);
	*st = np->st;
	st->committed = np->committed;
	st->acked = np->acked;
	pthread_mutex_unlock(&np->mu);
}

static void np_free(struct natspub *np)
{
	natsconn_free(np->nc, np->js, np->nopts);
	pthread_cond_destroy(&np->cv);
	pthread_mutex_destroy(&np->mu);
	free(np->buf);
	free(np->cmp);
	free(np);
}

void natspub_stop(struct natspub *np)
{
	if (!np)
		return;
	if (np->started) {
		pthread_mutex_lock(&np->mu);
		np->stop = 1;
		pthread_cond_signal(&np->cv);
		pthread_mutex_unlock(&np->mu);
		pthread_join(np->th, NULL);
	}
	np_free(np);
}

/* A stream name JetStream takes: letters, digits, - and _ (no . * > or space). */
static int np_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 64)
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '-' || *s == '_'))
			return 0;
	return 1;
}

int natspub_start(struct natspub **out, const struct natspub_opts *o, struct evlog *log,
		  const char *epoch, uint64_t committed)
{
	struct natspub *np;
	jsOptions jo;
	natsStatus s;
	char why[512];

	*out = NULL;
	if (!np_name_ok(o->stream)) {
		slog(SLOG_ERR, "--nats-stream %s: a stream name is 1 to 64 letters, digits, - "
		     "or _", o->stream);
		return CL_EINVAL;
	}
	np = calloc(1, sizeof *np);
	if (!np)
		return CL_ENOMEM;
	np->o = *o;
	np->log = log;
	np->committed = committed;
	snprintf(np->epoch, sizeof np->epoch, "%s", epoch);
	snprintf(np->desc, sizeof np->desc, "%s%s", NATSPUB_DESC, epoch);
	snprintf(np->subject, sizeof np->subject, "%s.events", o->stream);
	pthread_mutex_init(&np->mu, NULL);
	{
		pthread_condattr_t ca;

		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&np->cv, &ca);
		pthread_condattr_destroy(&ca);
	}

	if (natsconn_options(&np->nopts, o->url, o->creds, np_on_connected, np_on_disconnected,
			     np, why, sizeof why)) {
		slog(SLOG_ERR, "%s", why);
		np_free(np);
		return CL_EINVAL;
	}
	s = natsConnection_Connect(&np->nc, np->nopts);
	if (s == NATS_OK) {
		np->connected = 1;
		np->check = 1;
	} else if (s == NATS_NOT_YET_CONNECTED) {
		slog(SLOG_WARN, "NATS: no broker at %s yet; publishing starts when one answers",
		     o->url);
	} else {
		slog(SLOG_ERR, "NATS: cannot connect to %s (%s)", o->url, nats_GetLastError(NULL));
		np_free(np);
		return CL_EINVAL;
	}
	jsOptions_Init(&jo);
	jo.Wait = NATSPUB_ACK_MS;
	jo.PublishAsync.MaxPending = 2 * NATSPUB_INFLIGHT;
	jo.PublishAsync.AckHandler = np_on_ack;
	jo.PublishAsync.AckHandlerClosure = np;
	s = natsConnection_JetStream(&np->js, np->nc, &jo);
	if (s != NATS_OK || pthread_create(&np->th, NULL, np_main, np) != 0) {
		slog(SLOG_ERR, "NATS: cannot start the publisher (%s)", natsStatus_GetText(s));
		natspub_stop(np);
		return CL_ENOMEM;
	}
	np->started = 1;
	slog(SLOG_INFO, "NATS: publishing the log to stream %s (subject %s) at %s", o->stream,
	     np->subject, o->url);
	*out = np;
	return 0;
}
