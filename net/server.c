/*
 * server.c - the lws context, the service loop, group commit (srv_flush),
 * tailing other writers, startup and shutdown (see server.h).
 *
 * Invariants:
 *  - s->published is the last seq that is committed, applied to s->proj and
 *    in the ring. Outside srv_flush, proj_seq(s->proj) == s->published.
 *  - Inside srv_flush the projection runs ahead (speculative) by the events
 *    of the open write txn. If the txn fails, the projection is rebuilt from
 *    the log, so no refused or lost event survives in memory.
 *  - Replies and pushes leave only after a successful commit: nothing that
 *    is acknowledged can be lost, nothing unacknowledged is ever pushed.
 *  - With the deferred meta sync (evlog_defer_sync, the default for a
 *    writer) "committed" and "durable" part: s->committed runs ahead of
 *    s->published by the batches waiting in s->pend for the sync thread.
 *    Their replies and pushes, and those of every later batch (which may
 *    have read their state), leave in batch order once evlog_durable
 *    reaches the batch's need (srv_release).
 */
#include "server.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>


#include <jansson.h>
#include <libwebsockets.h>

#include "../core/cl.h"
#include "../core/proj.h"
#include "../store/bootstrap.h"
#include "../store/datadir.h"
#include "../store/command.h"
#include "../store/evlog.h"
#include "../store/hookkey.h"
#include "../store/token.h"
#include "api.h"
#include "http.h"
#include "edge.h"
#include "edgefwd.h"
#include "metrics.h"
#include "natspub.h"
#include "natssvc.h"
#include "presence.h"
#include "webhook.h"
#include "proto.h"
#include "push.h"
#include "ratelimit.h"
#include "session.h"
#include "slog.h"
#include "tlsgen.h"
#include "tlsreload.h"
#include "websess.h"

#define SRV_PROTOCOL "changelogd"
#define SRV_TAIL_US (250 * LWS_US_PER_MS)
#define SRV_DRAIN_SECS 3
#define SRV_MAX_ATTEMPTS 8
/*
 * lws gives every connection an rx buffer this big for its whole life;
 * bigger messages (up to --max-msg) arrive in several RECEIVE chunks, which
 * sess_receive joins. 1 KiB holds a typical command whole (a createEntry
 * is ~250 bytes) and keeps an idle subscriber small (docs/scaling.md);
 * 4 KiB cost 3 KB more per connection and wrote no faster.
 */
#define SRV_RX_CHUNK 1024
#define SRV_COLLECT_SECS 0.002  /* a batch waits for more requests at most this */
#define SRV_BATCH_MAX 4096      /* ... and stops collecting at this many */
/*
 * The answers one batch builds, in bytes: once a batch has built this
 * much, its later queries wait for the next batch (proto_ctx.room), so one
 * batch holds the loop for at most about one largest answer.
 */
#define SRV_BATCH_BYTES PROTO_ANSWER_MAX

/*
 * The one piece of global state in net/: a signal handler has nowhere else
 * to write (tools/scripts/check-deps.sh allows exactly this type).
 */
static volatile sig_atomic_t srv_stop_flag;

/* A staged push: built inside a batch, published only after its commit. */
struct srv_staged {
	uint64_t seq;
	int type;                  /* enum ev_type */
	uint64_t token;            /* token.revoked: which token */
	uint64_t user;             /* the user it is about (push_restrict) */
	json_t *push;              /* push_build() output, NULL if nobody subscribed */
};

/*
 * A batch that ran and (if it wrote) committed, waiting until everything it
 * may have seen is durable: its requests (their replies built), its staged
 * pushes, and how it ended.
 */
struct srv_pending {
	struct srv_pending *next;
	struct req *batch;
	struct srv_staged *stg;
	size_t nstg, stgcap;
	uint64_t need;             /* released once evlog_durable >= need */
	int rc;                    /* srv_flush's outcome: 0, or the batch failed */
};

/*
 * A command this edge forwarded to the writer (edgefwd.h), until its
 * client has the reply: first waiting for the writer's reply, then for
 * this edge to apply the event at the reply's seq (read-your-writes).
 */
struct srv_fwd {
	struct srv_fwd *next;
	struct req *r;             /* the client's request (its session or API
	                              request cleared if the client left) */
	uint64_t id;               /* the reply subject's suffix */
	uint64_t user;
	double deadline, resend_at;
	char cmd_id[48];           /* the cmd_id the writer sees (ours if it had none) */
	char *text;                /* the request as sent, for a resend */
	size_t len;
	json_t *reply;             /* the writer's reply, once it came and says ok */
	uint64_t seq;              /* ... its seq, for the edge to reach */
};

/*
 * The server: owns the log, the projection, the ring and the request
 * queue, and holds the modules' contexts (proto, sessions), whose wiring
 * fields it sets and keeps current (srv_set_proj, srv_publish).
 */
struct server {
	struct srv_opts o;
	struct lws_context *ctx;
	struct evlog *log;
	struct proj *proj;
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	uint64_t published;        /* last seq committed, applied and in the ring */
	uint64_t committed;        /* last seq committed and applied (>= published) */
	int deferred;              /* evlog_defer_sync is on: batches wait in pend */
	struct srv_pending *pend_head, *pend_tail;
	struct ring ring;

	struct proto_ctx pc;       /* requests run over this */
	struct sess_pool pool;     /* the websocket sessions */
	struct api_pool api;       /* the HTTP API's requests */
	struct websess_store websess;  /* signed-in browsers (the session cookie) */
	struct rl_users users;     /* each user's request budget: sessions and API */
	struct metrics m;
	struct tlsr *tls;           /* the certificate new handshakes get (SIGHUP) */
	struct natspub *np;        /* --nats: the publisher thread, else NULL */
	struct metrics_nats mn;    /* its figures for the page being rendered */
	struct edge *edge;         /* --edge: the stream consumer, else NULL */
	struct metrics_edge me;
	struct natssvc *svc;       /* --nats writer: commands and fetches for edges */
	struct edgefwd *fwd;       /* --edge: commands forwarded to the writer */
	struct srv_fwd *fwd_head;  /* ... in flight */
	unsigned nfwd;
	uint64_t fwd_ids;
	struct webhook *wh;        /* webhook deliveries (the writer only), else NULL */
	struct webhook_stat whs[CL_MAX_WEBHOOKS];   /* their figures for the page */
	struct metrics_webhook mw[CL_MAX_WEBHOOKS];
	uint8_t hook_key[HOOKKEY_LEN];   /* DATA/webhook.key, once loaded */
	int hook_key_ok;

	struct req *q_head, *q_tail;   /* requests waiting for srv_flush */
	size_t q_n, q_seen;        /* queued now / at the end of the last turn */
	double q_since;            /* when the first request of the batch came */
	uint64_t batch_no;         /* srv_run_batch runs (sess.wait_mark) */
	size_t batch_bytes;        /* answers the running batch built (SRV_BATCH_BYTES) */

	struct srv_staged *stg;    /* pushes of the batch being flushed */
	struct evlog_txn *wtxn;    /* the batch's write txn while it runs, else NULL */
	size_t nstg, stgcap;
	struct pbuf fbuf;          /* serializing pushes */
	struct presence pres;      /* who looks on this node (net/presence.h) */

	lws_sorted_usec_list_t tail_sul;
	int stopping;              /* shutting down: no new sessions or requests */
	int fatal;                 /* a state we cannot serve from: exit 1 */
};

void srv_request_stop(void)
{
	srv_stop_flag = 1;
}

static double srv_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the request queue --------------------------------------------- */

static void srv_enqueue(struct server *s, struct req *r)
{
	r->next = NULL;
	if (s->q_tail)
		s->q_tail->next = r;
	else
		s->q_head = r;
	s->q_tail = r;
	s->q_n++;
}

/*
 * Requests held back for a session (ss->held_head, in order): an answer
 * did not fit its room and waits, with every later request of ss, until
 * ss has drained (srv_drained); the session does not read meanwhile.
 */
static void srv_hold(struct req *r)
{
	struct sess *ss = r->sess;

	proto_reset(r);
	r->next = NULL;
	r->held++;
	if (ss->held_tail)
		((struct req *)ss->held_tail)->next = r;
	else
		ss->held_head = r;
	ss->held_tail = r;
	if (ss->held_head == r)
		sess_hold(ss, 1);
}

static int srv_fwd_busy(const struct server *s, const struct sess *ss);

/* sess_drained_fn: run ss's held requests in the next batch (on an edge:
 * once its command in flight is answered, srv_fwd_finish). */
static void srv_drained(void *arg, struct sess *ss)
{
	struct server *s = arg;
	struct req *r = ss->held_head, *nx;

	if (srv_fwd_busy(s, ss))
		return;
	ss->held_head = ss->held_tail = NULL;
	for (; r; r = nx) {
		nx = r->next;
		srv_enqueue(s, r);
	}
	sess_hold(ss, 0);
}

/* The requests of a closing connection (a session ss, or an API
 * connection c) that are queued, waiting for their batch's sync, or
 * forwarded to the writer lose their way back: they are still run, and
 * req_free drops their frames. */
static void srv_req_orphan(struct req *r, const struct sess *ss, const struct api_conn *c)
{
	if (ss && r->sess == ss)
		r->sess = NULL;
	if (c && r->api == c)
		r->api = NULL;
}

static void srv_orphan(struct server *s, const struct sess *ss, const struct api_conn *c)
{
	struct req *r;

	for (r = s->q_head; r; r = r->next)
		srv_req_orphan(r, ss, c);
	for (struct srv_pending *pb = s->pend_head; pb; pb = pb->next)
		for (r = pb->batch; r; r = r->next)
			srv_req_orphan(r, ss, c);
	for (struct srv_fwd *f = s->fwd_head; f; f = f->next)
		srv_req_orphan(f->r, ss, c);
}

/* sess_forget_fn: ss is closing with requests in the queue or held. */
static void srv_forget_session(void *arg, struct sess *ss)
{
	struct req *r, *nx;

	srv_orphan(arg, ss, NULL);
	for (r = ss->held_head; r; r = nx) {
		nx = r->next;
		req_free(r);
	}
	ss->held_head = ss->held_tail = NULL;
}

/* sess_message_fn: parse one complete message and queue it (or hold it
 * behind the session's held requests). */
static int srv_on_message(void *arg, struct sess *ss, const void *buf, size_t len,
			  int limited)
{
	struct server *s = arg;
	struct req *r = req_parse(buf, len);

	if (!r)
		return -1;
	if (limited)
		req_refuse(r, CMD_RATE_LIMITED, limited == 2 ?
			   "too many requests from this user (all its connections); slow down" :
			   "too many requests; slow down");
	r->sess = ss;
	r->user = ss->user;
	r->token = ss->token;
	if (ss->held_head)
		srv_hold(r);
	else
		srv_enqueue(s, r);
	return 0;
}

/*
 * proto_ctx.room: what r's answer may take now (sess_room: its session's
 * and the pool's room), within what is left of the batch's budget. It may
 * wait if its session owes something (it drains), or if this batch has
 * built answers already (it runs in the next; but only once, so that other
 * sessions' big answers cannot keep it out of every batch). An HTTP API
 * request has no session: it gets the pool's room, within what the API's
 * requests and its user's may still hold (api_room), and never waits.
 */
static size_t srv_room(void *arg, const struct req *r, int *may_wait)
{
	struct server *s = arg;
	size_t left = s->batch_bytes >= SRV_BATCH_BYTES ? 0 : SRV_BATCH_BYTES - s->batch_bytes;
	size_t room;
	int owes;

	if (!r->sess) {
		*may_wait = 0;
		room = sess_pool_room(&s->pool, PROTO_ANSWER_MAX);
		if (r->api)
			room = api_room(r->api, room);
		return s->batch_bytes && left < room ? left : room;
	}
	room = sess_room(r->sess, PROTO_ANSWER_MAX, &owes);
	if (r->held && !owes)
		left = SIZE_MAX;   /* it waited for a batch already */
	*may_wait = owes || (s->batch_bytes > 0 && left != SIZE_MAX);
	return s->batch_bytes && left < room ? left : room;
}

/* proto_ctx.reclaim: close the sessions that hold the memory r needs. */
static int srv_reclaim(void *arg, const struct req *r, size_t need)
{
	struct server *s = arg;

	return sess_pool_reclaim(&s->pool, need, r->sess) > 0;
}

/* api_request_fn: an HTTP API request, parsed by api.c; queue it. */
static int srv_on_api(void *arg, struct api_conn *c, struct req *r)
{
	struct server *s = arg;

	r->api = c;
	r->user = c->user;
	r->token = c->token;
	srv_enqueue(s, r);
	return 0;
}

/* api_forget_fn: c is closing with its request in the queue. */
static void srv_forget_api(void *arg, struct api_conn *c)
{
	srv_orphan(arg, NULL, c);
}

/* The projection is now p: every module that reads it follows. */
static void srv_set_proj(struct server *s, struct proj *p)
{
	s->proj = p;
	s->pc.proj = p;
	s->pool.proj = p;
	s->api.proj = p;
}

/* ---- publishing ---------------------------------------------------- */

/*
 * The push for ev just applied to the projection: its state right after
 * ev. None while no session is subscribed (*push NULL; see srv_publish).
 */
static int srv_push_of(struct server *s, const struct event *ev, json_t **push)
{
	*push = NULL;
	if (!s->pool.nsubs)
		return 0;
	*push = push_build(s->proj, ev, 0);
	return *push ? 0 : CL_ENOMEM;
}

/* command_event_fn: stage ev's push for the batch (after proj_apply). */
static int srv_stage(void *arg, const struct event *ev)
{
	struct server *s = arg;
	json_t *push;
	int rc = srv_push_of(s, ev, &push);

	if (rc)
		return rc;
	if (s->nstg == s->stgcap) {
		size_t cap = s->stgcap ? s->stgcap * 2 : 64;
		struct srv_staged *n = realloc(s->stg, cap * sizeof *n);

		if (!n) {
			json_decref(push);
			return CL_ENOMEM;
		}
		s->stg = n;
		s->stgcap = cap;
	}
	s->stg[s->nstg].seq = ev->seq;
	s->stg[s->nstg].type = (int)ev->type;
	s->stg[s->nstg].token = ev->ids.token;
	s->stg[s->nstg].user = push_owner(ev);
	s->stg[s->nstg].push = push;
	s->nstg++;
	return 0;
}

static void srv_unstage(struct server *s)
{
	size_t i;

	for (i = 0; i < s->nstg; i++)
		json_decref(s->stg[i].push);
	s->nstg = 0;
}

/*
 * Publish one committed event's push (consumes push).
 * push NULL: nobody was subscribed when the batch ran, so no frame was
 * built (serializing pushes was a third of the CPU of a write); a later
 * subscriber reads those events back from the log, as after a long absence.
 */
static int srv_publish(struct server *s, uint64_t seq, int type, uint64_t token,
		       uint64_t user, json_t *push)
{
	struct frame *f = push ? frame_from_json(&s->fbuf, push) : NULL;

	json_decref(push);
	if (f) {
		f->seq = seq;
		if (push_restrict(&s->fbuf, f, type, user)) {
			frame_unref(f);
			f = NULL;
		}
	}
	if (push && !f) {
		slog(SLOG_ERR, "out of memory publishing seq %llu", (unsigned long long)seq);
		s->fatal = 1;
		return CL_ENOMEM;
	}
	CL_ASSERT(seq == s->published + 1);     /* published in log order, no gap */
	if (f) {
		ring_publish(&s->ring, f);
	} else {
		ring_skip(&s->ring, seq);
	}
	s->published = seq;
	if (seq > s->committed)
		s->committed = seq;
	evlog_share_upto(s->log, s->deferred ? seq : 0);
	if (seq > s->pc.committed)
		s->pc.committed = seq;
	CL_ASSERT(s->ring.last == s->published);   /* sessions read it as the stream end */
	s->m.events++;
	if (type == EV_WEBHOOK_CREATED || type == EV_WEBHOOK_DELETED)
		webhook_config(s->wh, s->proj);
	if (type == EV_TOKEN_REVOKED) {
		sess_pool_revoked(&s->pool, token);
		websess_revoked(&s->websess, token);
	}
	return 0;
}

/* An event another process appended, just applied: publish it. */
static int srv_publish_followed(void *arg, const struct event *ev)
{
	struct server *s = arg;
	json_t *push;
	int rc = srv_push_of(s, ev, &push);

	if (s->edge) {              /* the writer's commit -> applied here */
		int64_t d = cl_now_us() - ev->ts;

		s->me.commit_lag_secs = d > 0 ? (double)d / 1e6 : 0;
	}
	return rc ? rc : srv_publish(s, ev->seq, (int)ev->type, ev->ids.token, ev->ids.user,
				     push);
}

static void srv_settle(struct server *s);

/*
 * Apply and publish what other processes appended after proj_seq. Only
 * called with no write txn open (the projection is not speculative).
 * With batches waiting for their sync, another process's events would be
 * published before ours: so those wait for the sync first (srv_settle).
 */
static int srv_catch_up(struct server *s)
{
	struct command_fault fault;
	size_t n = 0;
	int rc;

	if (s->pend_head) {
		uint64_t last = 0;

		if ((rc = evlog_last(s->log, &last, NULL)) != 0)
			return rc;
		if (last == s->committed)
			return 0;       /* nobody else appended */
		srv_settle(s);
		if (s->pend_head)
			return CL_EIO;  /* the sync failed: s->fatal is set */
	}
	rc = command_follow(s->log, s->proj, srv_publish_followed, s, &n, &fault);

	if (rc && fault.step == COMMAND_AT_APPLY)
		slog(SLOG_ERR, "event %llu from the log does not apply (%s)",
		     (unsigned long long)fault.seq, cl_strerror(rc));
	if (n) {
		slog(SLOG_DEBUG, "applied %zu events appended by another process", n);
		sess_pool_published(&s->pool);
		natspub_committed(s->np, s->published);
	}
	return rc;
}

/*
 * Build a projection of the log up to `upto` (0 = all): evlog_replay reads
 * and hash-checks on a second thread while this one decodes and applies.
 */
static int srv_build_proj(struct evlog *log, uint64_t upto, struct proj **out)
{
	struct proj *p = proj_new();
	int rc;

	*out = NULL;
	if (!p)
		return CL_ENOMEM;
	rc = evlog_replay(log, 1, upto, 0, proj_apply_batch, proj_prepare, p);
	if (rc < 0) {
		proj_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

/* Throw away the speculative projection: rebuild it from the log. */
static int srv_rebuild(struct server *s)
{
	struct proj *p;
	int rc = srv_build_proj(s->log, s->published, &p);

	if (rc == 0 && proj_seq(p) != s->published) {
		proj_free(p);
		rc = CL_ECORRUPT;
	}
	if (rc) {
		slog(SLOG_ERR, "cannot rebuild the projection from the log (%s)", cl_strerror(rc));
		s->fatal = 1;
		return rc;
	}
	proj_free(s->proj);
	srv_set_proj(s, p);
	return srv_catch_up(s);
}

/* proj_qctx loader (proto_ctx.load): the event at seq as ev_to_json gives it. */
static int srv_load_event(void *arg, uint64_t seq, json_t **out)
{
	struct server *s = arg;
	struct evlog_iter *it = NULL;
	struct event ev;
	int rc;

	*out = NULL;
	if (seq > s->committed) {      /* appended by the running batch */
		if (!s->wtxn)
			return CL_ENOTFOUND;
		rc = evlog_wget(s->wtxn, seq, &ev);
		if (rc == 1) {
			*out = ev_to_json(&ev);
			return *out ? 0 : CL_ENOMEM;
		}
		return rc ? rc : CL_ENOTFOUND;
	}
	rc = evlog_iter_new(s->log, seq, &it);
	if (rc)
		return rc;
	rc = evlog_iter_next_event(it, &ev);
	if (rc == 1 && ev.seq == seq) {
		*out = ev_to_json(&ev);
		rc = *out ? 0 : CL_ENOMEM;
	} else if (rc >= 0) {
		rc = CL_ENOTFOUND;
	}
	evlog_iter_free(it);
	return rc;
}

/* ---- group commit ---------------------------------------------------- */

static int srv_batch_writes(struct req *batch)
{
	struct req *r;

	for (r = batch; r; r = r->next)
		if (req_writes(r))
			return 1;
	return 0;
}

/* Begin the write txn, catching up first if another process appended. */
static int srv_begin(struct server *s, struct evlog_txn **txn)
{
	uint64_t actual = 0;
	int rc = CL_ECONFLICT, i;

	for (i = 0; i < 100 && rc == CL_ECONFLICT; i++) {
		rc = evlog_wbegin(s->log, proj_seq(s->proj), &actual, txn);
		if (rc == CL_ECONFLICT) {
			int crc = srv_catch_up(s);

			if (crc)
				return crc;
		}
	}
	return rc;
}

/*
 * Run one batch once. Returns 0 (committed or nothing to commit), or the
 * error that broke it with *culprit set when a single request caused it.
 */
static int srv_run_batch(struct server *s, struct req *batch, struct req **culprit)
{
	struct evlog_txn *txn = NULL;
	struct req *r;
	double t0 = srv_mono();
	int rc = 0, writes = srv_batch_writes(batch);

	*culprit = NULL;
	if (writes) {
		rc = srv_begin(s, &txn);
		if (rc) {
			if (s->fatal)
				return rc;
			slog(SLOG_ERR, "cannot begin a write txn (%s)", cl_strerror(rc));
			for (r = batch; r; r = r->next)
				if (req_writes(r))
					r->unavailable = rc;
			rc = 0;
			txn = NULL;
		}
	}
	s->wtxn = txn;
	s->batch_no++;
	s->batch_bytes = 0;
	proto_batch_begin(&s->pc);
	for (r = batch; r; r = r->next) {
		if (r->sess && r->sess->wait_mark == s->batch_no) {
			r->waiting = 1;   /* behind a request of its session that waits */
			continue;
		}
		if (!r->sess && !r->api && r->kind != REQ_CMD)
			continue;         /* its reader has gone */
		rc = proto_exec(&s->pc, r, txn);
		if (rc) {
			*culprit = command_log_failure(rc) ? NULL : r;
			break;
		}
		if (r->waiting)
			r->sess->wait_mark = s->batch_no;
		else if (r->frame) {
			if (r->sess)
				sess_reserve(r->sess, r->frame->len);
			s->batch_bytes += r->frame->len;
		}
	}
	s->wtxn = NULL;
	if (txn) {
		if (rc) {
			evlog_wabort(txn);
		} else {
			rc = evlog_wcommit(txn);
			if (rc == 0)
				metrics_observe_commit(&s->m, srv_mono() - t0);
		}
	}
	return rc;
}

/* ---- presence (net/presence.h) ------------------------------------- */

static json_t *srv_presence_list(void *arg)
{
	struct server *s = arg;

	return presence_list(&s->pres, s->proj);
}

/* ss joined presence (the presence op): it watches, visible unless hidden. */
static void srv_presence_join(struct server *s, struct sess *ss, int hidden)
{
	ss->pres_watch = 1;
	if (!hidden && !ss->pres_visible) {
		if (presence_add(&s->pres, ss->user) == 0)
			ss->pres_visible = 1;
	} else if (hidden && ss->pres_visible) {
		presence_remove(&s->pres, ss->user);
		ss->pres_visible = 0;
	}
}

static void srv_presence_gone(struct server *s, struct sess *ss)
{
	if (ss && ss->linked && ss->pres_visible) {
		presence_remove(&s->pres, ss->user);
		ss->pres_visible = 0;
	}
}

/*
 * The tail tick: the coalesced presence push, if one is due, to every
 * watcher. A frame sits in one session's queue at a time (frame.next), so
 * each watcher gets its own copy; at most one per PRESENCE_INTERVAL_US.
 */
static void srv_presence_push(struct server *s)
{
	json_t *push = presence_flush(&s->pres, s->proj, (int64_t)(srv_mono() * 1e6));
	struct frame *f;

	if (!push)
		return;
	f = frame_from_json(&s->fbuf, push);
	json_decref(push);
	if (!f) {
		slog(SLOG_ERR, "out of memory for a presence push");
		return;
	}
	for (struct sess *ss = s->pool.head; ss; ss = ss->next) {
		struct frame *c;

		if (!ss->pres_watch || ss->doomed)
			continue;
		if (!(c = frame_new(f->len)))
			break;
		memcpy(c->data, f->data, f->len + 1);
		sess_send(ss, c);
		s->m.presence_pushes++;
	}
	frame_unref(f);
}

/* After the commit: apply r's session effects and send its reply. */
static void srv_deliver(struct server *s, struct req *r)
{
	if (r->api) {
		api_deliver(r->api, r);
		return;
	}
	if (!r->sess || r->waiting)
		return;
	if (r->frame) {
		sess_unreserve(r->sess, r->frame->len);
		sess_send(r->sess, r->frame);   /* takes our reference */
		r->frame = NULL;
		return;
	}
	if (!r->reply)
		return;
	if (r->kind == REQ_SUB && json_is_true(json_object_get(r->reply, "ok")))
		sess_subscribe(r->sess, r->sub_next);
	else if (r->kind == REQ_PRESENCE && json_is_true(json_object_get(r->reply, "ok")))
		srv_presence_join(s, r->sess, r->hidden);
	else if (r->kind == REQ_UNSUB)
		sess_unsubscribe(r->sess);
	sess_send_json(r->sess, r->reply);   /* closes the session if it fails */
}

static void srv_fwd_divert(struct server *s);
static void srv_svc_answer(struct server *s, struct req *r);

/*
 * After the batch's commit (rc 0) or its failure, and once everything it
 * may have seen is durable: publish its staged pushes, send its replies,
 * free its requests. stg[0..nstg) are consumed.
 */
static void srv_finish(struct server *s, struct req *batch, struct srv_staged *stg, size_t nstg,
		       int rc)
{
	uint64_t before = s->published;
	struct req *r, *nx;
	size_t i;

	if (rc == 0) {
		for (i = 0; i < nstg; i++) {
			struct srv_staged *st = &stg[i];
			int bad = srv_publish(s, st->seq, st->type, st->token, st->user, st->push);

			st->push = NULL;        /* srv_publish consumed it */
			if (bad)
				break;
		}
		for (r = batch; r; r = r->next) {
			if (r->nats)
				srv_svc_answer(s, r);   /* a command an edge forwarded */
			else
				srv_deliver(s, r);
		}
		if (s->published != before) {
			sess_pool_published(&s->pool);
			natspub_committed(s->np, s->published);
		}
	}
	for (i = 0; i < nstg; i++)
		json_decref(stg[i].push);
	for (r = batch; r; r = nx) {
		nx = r->next;
		if (r->nats)               /* not answered: the batch failed */
			srv_svc_answer(s, r);
		if (r->frame && r->sess)   /* built, not delivered (the batch failed) */
			sess_unreserve(r->sess, r->frame->len);
		if (r->sess && r->waiting) {
			srv_hold(r);       /* still counted in the session's queued */
			continue;
		}
		if (r->sess)
			sess_request_done(r->sess);
		req_free(r);
	}
}

/* What is durable: the sync thread's word, and what was published. */
static uint64_t srv_durable(struct server *s)
{
	int err = 0;
	uint64_t d = s->deferred ? evlog_durable(s->log, &err) : s->committed;

	if (err && !s->fatal) {
		slog(SLOG_ERR, "cannot sync the log (%s); stopping without answering the %s",
		     cl_strerror(err), "commands that wait for it (they may or may not be applied: "
		     "clients resend them with their cmd_id)");
		s->fatal = 1;
	}
	return d > s->published ? d : s->published;
}

/* Finish, in order, the waiting batches whose state is durable now. */
static void srv_release(struct server *s)
{
	uint64_t d = srv_durable(s);

	while (s->pend_head && s->pend_head->need <= d) {
		struct srv_pending *pb = s->pend_head;

		s->pend_head = pb->next;
		if (!s->pend_head)
			s->pend_tail = NULL;
		srv_finish(s, pb->batch, pb->stg, pb->nstg, pb->rc);
		free(pb->stg);
		free(pb);
	}
}

/*
 * Wait until what the projection shows is durable (the waiting batches'
 * sync), without finishing them: for what reads the projection outside a
 * batch and sends it at once (pushes read back from the log, webhook
 * bodies, presence). 0, or -1 when the sync failed (s->fatal).
 */
static int srv_wait_durable(void *arg)
{
	struct server *s = arg;
	int rc;

	if (!s->pend_head || s->pend_tail->need <= srv_durable(s))
		return s->fatal && s->pend_head ? -1 : 0;
	rc = evlog_sync_wait(s->log, s->pend_tail->need);
	if (rc && !s->fatal) {
		slog(SLOG_ERR, "cannot sync the log (%s); stopping", cl_strerror(rc));
		s->fatal = 1;
	}
	return rc ? -1 : 0;
}

/* Wait for the sync of every waiting batch, then finish them. */
static void srv_settle(struct server *s)
{
	int rc;

	if (!s->pend_head)
		return;
	if (s->pend_tail->need > srv_durable(s) &&
	    (rc = evlog_sync_wait(s->log, s->pend_tail->need)) != 0 && !s->fatal) {
		slog(SLOG_ERR, "cannot sync the log (%s); stopping", cl_strerror(rc));
		s->fatal = 1;
	}
	srv_release(s);
}

/*
 * The batch ran: finish it now if nothing it saw waits for a sync, else
 * queue it behind the batches waiting already (replies keep their order).
 */
static void srv_done(struct server *s, struct req *batch, int rc)
{
	struct srv_pending *pb;

	struct req **pp, *r;

	if (!s->deferred || (!s->pend_head && s->committed <= srv_durable(s)))
		goto now;
	/*
	 * A request that waits for room is held now, as srv_finish would:
	 * its session's next requests queue behind it, not in the next batch.
	 */
	for (pp = &batch; (r = *pp) != NULL;) {
		if (r->sess && r->waiting) {
			*pp = r->next;
			srv_hold(r);
		} else {
			pp = &r->next;
		}
	}
	pb = calloc(1, sizeof *pb);
	if (!pb) {
		srv_settle(s);
		goto now;
	}
	pb->batch = batch;
	pb->stg = s->stg;
	pb->nstg = s->nstg;
	pb->need = s->committed;
	pb->rc = rc;
	s->stg = NULL;
	s->nstg = s->stgcap = 0;
	if (s->pend_tail)
		s->pend_tail->next = pb;
	else
		s->pend_head = pb;
	s->pend_tail = pb;
	return;
now:
	srv_finish(s, batch, s->stg, s->nstg, rc);
	s->nstg = 0;
}

static void srv_flush(struct server *s)
{
	struct req *batch, *r, *culprit;
	int attempt, rc = 0;

	if (s->o.edge)              /* an edge never writes commands itself */
		srv_fwd_divert(s);
	batch = s->q_head;
	if (!batch)
		return;
	s->q_head = s->q_tail = NULL;
	s->q_n = s->q_seen = 0;
	/*
	 * Judge the batch against the log as it is now, not as of the last
	 * tail tick: a token another process revoked is refused by every
	 * request of the batch, queries too (a write would catch up in
	 * srv_begin anyway). Up to date, this is one empty read txn.
	 */
	if ((rc = srv_catch_up(s)) != 0)
		slog(SLOG_ERR, "cannot follow the log (%s)", cl_strerror(rc));
	for (attempt = 0; attempt < SRV_MAX_ATTEMPTS; attempt++) {
		rc = srv_run_batch(s, batch, &culprit);
		if (rc == 0)
			break;
		/* the batch failed: nothing of it was written; forget its effects */
		srv_unstage(s);
		for (r = batch; r; r = r->next) {
			if (r->frame && r->sess)
				sess_unreserve(r->sess, r->frame->len);
			proto_reset(r);
		}
		/* the rebuild reads the log up to published: ours first */
		srv_settle(s);
		if (s->fatal || (s->pc.ahead && srv_rebuild(s)))
			break;
		s->pc.ahead = 0;
		if (culprit) {
			slog(SLOG_ERR, "request \"%s\" of user %llu broke its batch (%s); refusing it",
			     culprit->name ? culprit->name : "?", (unsigned long long)culprit->user,
			     cl_strerror(rc));
			culprit->poisoned = 1;
		} else if (rc == CL_EMAPFULL && !evlog_map_fixed(s->log)) {
			slog(SLOG_INFO, "log map full; growing it and retrying the batch");
		} else {
			slog(SLOG_ERR, "commit failed (%s); commands of this batch are refused "
			     "as unavailable", rc == CL_EMAPFULL ? "the log's map is full: --map-size; "
			     "restart with a bigger one" : cl_strerror(rc));
			for (r = batch; r; r = r->next)
				if (req_writes(r))
					r->unavailable = rc;
		}
	}
	s->pc.ahead = 0;
	if (rc == 0) {
		s->committed = proj_seq(s->proj);
		s->pc.committed = s->committed;
	} else {
		slog(SLOG_ERR, "giving up on a batch after %d attempts (%s)", attempt,
		     cl_strerror(rc));
		srv_unstage(s);
	}
	srv_done(s, batch, rc);
}

/*
 * Whether to run another service turn before flushing the queue. lws reads
 * at most one TLS record per connection per turn, so a client pipelining
 * commands (or many clients writing at once) would get one or a few of them
 * into each commit, and subscribers one frame per event. Instead the queue
 * grows while each turn brings new requests - lws_cancel_service makes the
 * next poll return at once, so collecting ends the moment the sockets are
 * drained (a timer would not do: lws runs a ripe timer before it polls and
 * then waits for the next one) - bounded by SRV_COLLECT_SECS of added
 * latency and SRV_BATCH_MAX requests. Then one commit and one coalesced
 * push serve them all.
 */
static int srv_collecting(struct server *s)
{
	double now = srv_mono();

	/*
	 * The clock starts when the turn that brought the first request ends,
	 * not when that request was read: a turn that also wrote a push to a
	 * thousand subscribers takes longer than the whole budget, and a
	 * pipelining writer (one TLS record read per turn) then got one
	 * command per commit and one event per push frame.
	 */
	if (s->q_head && s->q_seen == 0)
		s->q_since = now;
	if (!s->q_head || s->stopping || s->q_n == s->q_seen || s->q_n >= SRV_BATCH_MAX ||
	    now - s->q_since >= SRV_COLLECT_SECS)
		return 0;
	s->q_seen = s->q_n;
	lws_cancel_service(s->ctx);
	return 1;
}

/* ---- an edge: appending what the stream brings ------------------------ */

/* Called on the consumer thread when it queued messages (edge.h). */
static void srv_edge_wake(void *arg)
{
	struct server *s = arg;

	if (s->ctx)
		lws_cancel_service(s->ctx);
}

/*
 * Append the queued stream messages to the edge's log as the writer stored
 * them (evlog_wappend_raw checks seq continuity and the hash chain), commit,
 * then follow the log: applied and pushed like any other appender's events.
 */
static void srv_edge_apply(struct server *s)
{
	struct edge_msg *list = edge_take(s->edge), *m, *ok = NULL;
	struct evlog_txn *txn = NULL;
	int rc = 0, attempt;

	if (!list)
		return;
	for (attempt = 0; attempt < SRV_MAX_ATTEMPTS; attempt++) {
		ok = NULL;
		rc = evlog_wbegin(s->log, s->published, NULL, &txn);
		if (rc)
			break;
		for (m = list; m; m = m->next) {
			rc = evlog_wappend_raw(txn, m->seq, m->data, m->len);
			if (rc)
				break;
			ok = m;
		}
		if (rc && rc != CL_EMAPFULL) {
			slog(SLOG_ERR, "edge: event %llu from the stream does not continue this log "
			     "(%s: %s); not applying it or anything after it", (unsigned long long)m->seq,
			     cl_strerror(rc), rc == CL_ECORRUPT ? "its seq is not the next one or its "
			     "prev_hash is not this log's head hash" : "not an event");
			edge_refuse(s->edge);
			rc = 0;                 /* commit what did continue the chain */
		}
		if (!ok || rc) {
			evlog_wabort(txn);
		} else {
			rc = evlog_wcommit(txn);
		}
		if (rc != CL_EMAPFULL || evlog_map_fixed(s->log))
			break;
	}
	if (rc) {
		slog(SLOG_ERR, "edge: cannot append to the log (%s); stopping (a restart resumes "
		     "from the log's last seq)", cl_strerror(rc));
		s->fatal = 1;
	} else if (ok) {
		if (srv_catch_up(s) == 0)
			edge_applied(s->edge, ok);
	}
	edge_msgs_free(list);
}

/* An edge's log carries its writer's epoch: adopt it, or refuse another. */
static int srv_edge_open(struct server *s)
{
	struct edge_opts eo = { s->o.nats.url, s->o.nats.stream, s->o.nats.creds };
	char epoch[EVLOG_EPOCH_STRLEN + 1], why[600];
	int rc = edge_connect(&s->edge, &eo, epoch, why, sizeof why);

	if (rc) {
		slog(SLOG_ERR, "refusing to start the edge: %s", why);
		return rc;
	}
	rc = evlog_adopt_epoch(s->log, epoch);
	if (rc == CL_EEXIST) {
		slog(SLOG_ERR, "refusing to start the edge: the log in %s is of epoch %s, the "
		     "stream %s carries epoch %s; an edge starts from an empty data directory "
		     "or a copy of its writer's log", s->o.data_dir, evlog_epoch(s->log),
		     s->o.nats.stream, epoch);
		return rc;
	}
	if (rc) {
		slog(SLOG_ERR, "refusing to start the edge: cannot set the epoch of %s (%s)",
		     s->o.data_dir, cl_strerror(rc));
		return rc;
	}
	return 0;
}

/* ---- the writer's side of forwarded commands (natssvc.h) ------------ */

/* Called on a libnats thread when a forwarded command was queued. */
static void srv_wake(void *arg)
{
	struct server *s = arg;

	if (s->ctx)
		lws_cancel_service(s->ctx);
}

/* Answer a forwarded command with r's reply (or the refusal it became). */
static void srv_svc_answer(struct server *s, struct req *r)
{
	json_t *own = NULL, *reply = r->reply;
	char *txt;

	if (!reply) {
		own = r->kind == REQ_BAD ? proto_error(NULL, r->fail.code, r->fail.message) :
		      proto_error(NULL, CMD_UNAVAILABLE, "the writer could not run this command; "
				  "nothing was applied, retry later");
		reply = own;
	}
	txt = reply ? json_dumps(reply, JSON_COMPACT) : NULL;
	if (txt)
		natssvc_reply(s->svc, r->nats, txt, strlen(txt));
	else
		natssvc_req_free(r->nats);
	r->nats = NULL;
	free(txt);
	json_decref(own);
}

/*
 * Queue the commands edges forwarded as requests of the next batch: run
 * as user U with token T (both judged against this log by the command
 * path), answered after the commit (srv_svc_answer).
 */
static void srv_svc_take(struct server *s)
{
	struct natssvc_req *q = natssvc_take(s->svc), *nx;

	for (; q; q = nx) {
		json_error_t err;
		json_t *j = json_loadb(q->data, q->len, JSON_REJECT_DUPLICATES, &err);
		json_t *user = json_object_get(j, "user"), *token = json_object_get(j, "token");
		json_t *name = json_object_get(j, "name"), *params = json_object_get(j, "params");
		json_t *cmd_id = json_object_get(j, "cmd_id"), *root = NULL;
		struct req *r = NULL;

		nx = q->next;
		q->next = NULL;
		if (json_is_integer(user) && json_integer_value(user) > 0 &&
		    json_is_integer(token) && json_integer_value(token) > 0 &&
		    json_is_string(name) && (!params || json_is_object(params)) &&
		    (!cmd_id || json_is_string(cmd_id))) {
			root = json_pack("{s:s,s:O,s:O?,s:O?}", "op", "command", "name", name,
					 "params", params, "cmd_id", cmd_id);
			r = root ? req_build(root) : NULL;
		}
		if (r) {
			r->user = (uint64_t)json_integer_value(user);
			r->token = (uint64_t)json_integer_value(token);
		}
		json_decref(j);
		if (!r) {
			struct req bad = { .kind = REQ_BAD, .nats = q };

			bad.fail.code = CMD_BAD_REQUEST;
			snprintf(bad.fail.message, sizeof bad.fail.message, "a forwarded command is "
				 "{\"user\":U,\"token\":T,\"name\":N,\"params\":{},\"cmd_id\":C}");
			srv_svc_answer(s, &bad);
			continue;
		}
		r->nats = q;
		if (r->kind != REQ_CMD) {      /* refused by the parser: answer it now */
			srv_svc_answer(s, r);
			req_free(r);
			continue;
		}
		srv_enqueue(s, r);
	}
}

/* ---- an edge's side: forwarding commands to the writer ----------------- */

static int srv_fwd_busy(const struct server *s, const struct sess *ss)
{
	const struct srv_fwd *f;

	for (f = s->fwd_head; f; f = f->next)
		if (f->r->sess == ss)
			return 1;
	return 0;
}

static unsigned srv_fwd_of_user(const struct server *s, uint64_t user)
{
	const struct srv_fwd *f;
	unsigned n = 0;

	for (f = s->fwd_head; f; f = f->next)
		n += f->user == user;
	return n;
}

/* The client gets its reply (consumes reply): in request order, after
 * which its session's held requests may run. */
static void srv_fwd_finish(struct server *s, struct srv_fwd *f, json_t *reply, int answered)
{
	struct srv_fwd **pp;
	struct req *r = f->r;
	struct sess *ss = r->sess;
	json_t *o = json_object();

	for (pp = &s->fwd_head; *pp != f; pp = &(*pp)->next)
		;
	*pp = f->next;
	s->nfwd--;
	if (answered)
		s->me.fwd_answered++;
	else
		s->me.fwd_unavailable++;
	/* the writer's reply carries no id: the client's comes first, as on the writer */
	if (o && r->id && json_object_set(o, "id", r->id))
		json_decref(o), o = NULL;
	if (o && reply && json_object_update(o, reply))
		json_decref(o), o = NULL;
	json_decref(reply);
	r->reply = o;
	r->at = s->published;
	if (o)
		srv_deliver(s, r);
	else if (ss)
		sess_doom(ss, METRICS_CLOSE_ERROR, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
			  "internal error");
	if (ss) {
		sess_request_done(ss);
		if (ss->held_head)
			sess_hold(ss, 1);      /* it releases them when it owes nothing */
	}
	req_free(r);
	json_decref(f->reply);
	free(f->text);
	free(f);
}

static void srv_fwd_fail(struct server *s, struct srv_fwd *f, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void srv_fwd_fail(struct server *s, struct srv_fwd *f, const char *fmt, ...)
{
	char msg[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	srv_fwd_finish(s, f, proto_error(NULL, CMD_UNAVAILABLE, msg), 0);
}

/*
 * Send r (a command) to the writer. 0 once it is in flight (it has left
 * the batch), or 1 after turning r into a refusal its batch answers.
 */
static int srv_forward(struct server *s, struct req *r)
{
	struct srv_fwd *f;
	unsigned char rnd[16];
	int i;

	if (!s->fwd) {
		req_refuse(r, CMD_UNAVAILABLE, "this edge is stopping; nothing was applied: send "
			   "the command to another node");
		return 1;
	}
	if (s->nfwd >= s->o.fwd_max) {
		s->me.fwd_refused++;
		req_refuse(r, CMD_UNAVAILABLE, "this edge has too many commands in flight to the "
			   "writer; nothing was applied, retry later");
		return 1;
	}
	if (srv_fwd_of_user(s, r->user) >= s->o.fwd_user_max) {
		s->me.fwd_refused++;
		req_refuse(r, CMD_RATE_LIMITED, "too many commands of this user in flight through "
			   "this edge; wait for their replies");
		return 1;
	}
	if (!edgefwd_connected(s->fwd)) {
		s->me.fwd_unavailable++;
		req_refuse(r, CMD_UNAVAILABLE, "this edge is not connected to NATS, so it cannot "
			   "reach the writer; nothing was applied, retry later");
		return 1;
	}
	f = calloc(1, sizeof *f);
	if (!f)
		goto nomem;
	if (r->cmd_id.n) {
		f->cmd_id[0] = '\0';    /* the client's own */
	} else {
		/* ours, so that a resend to the writer is applied once */
		if (token_random(rnd, sizeof rnd))
			goto nomem;
		memcpy(f->cmd_id, "edge-", 5);
		for (i = 0; i < 16; i++)
			snprintf(f->cmd_id + 5 + 2 * i, 3, "%02x", rnd[i]);
	}
	{
		json_t *j = json_pack("{s:I,s:I,s:s,s:O,s:s#}", "user", (json_int_t)r->user,
				      "token", (json_int_t)r->token, "name", r->name,
				      "params", r->params, "cmd_id",
				      r->cmd_id.n ? r->cmd_id.p : f->cmd_id,
				      r->cmd_id.n ? (int)r->cmd_id.n : (int)strlen(f->cmd_id));

		f->text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
	}
	if (!f->text)
		goto nomem;
	f->len = strlen(f->text);
	f->r = r;
	f->user = r->user;
	f->id = ++s->fwd_ids;
	f->deadline = srv_mono() + s->o.fwd_secs;
	f->resend_at = srv_mono() + 1.0;
	if (edgefwd_send(s->fwd, f->id, f->text, f->len))
		goto nomem;
	f->next = s->fwd_head;
	s->fwd_head = f;
	s->nfwd++;
	return 0;
nomem:
	if (f)
		free(f->text);
	free(f);
	req_refuse(r, CMD_UNAVAILABLE, "this edge could not forward the command; nothing was "
		   "applied, retry later");
	return 1;
}

/*
 * On an edge, before a batch runs: its commands go to the writer, and the
 * requests of a session with a command in flight wait behind it (held:
 * replies stay in request order), so a query sent after a command sees it.
 */
static void srv_fwd_divert(struct server *s)
{
	struct req *r = s->q_head, *nx, *head = NULL, *tail = NULL;
	size_t n = 0;

	for (; r; r = nx) {
		nx = r->next;
		r->next = NULL;
		if (r->sess && srv_fwd_busy(s, r->sess)) {
			srv_hold(r);
			continue;
		}
		if (req_writes(r) && srv_forward(s, r) == 0)
			continue;
		if (tail)
			tail->next = r;
		else
			head = r;
		tail = r;
		n++;
	}
	s->q_head = head;
	s->q_tail = tail;
	s->q_n = n;
}

/* Each turn on an edge: the writer's replies, then the deadlines. */
static void srv_fwd_poll(struct server *s)
{
	struct edgefwd_reply *list = edgefwd_take(s->fwd), *rep;
	struct srv_fwd *f, *nx;
	double now = srv_mono();

	for (rep = list; rep; rep = rep->next) {
		json_error_t err;
		json_t *j, *seq;

		for (f = s->fwd_head; f && f->id != rep->id; f = f->next)
			;
		if (!f || f->reply)
			continue;               /* answered already, or given up */
		if (rep->no_responders) {
			srv_fwd_fail(s, f, "no writer serves commands on NATS (%s.cmd"
				     "): it is down or not connected; nothing was applied, retry later",
				     s->o.nats.stream);
			continue;
		}
		j = json_loadb(rep->data, rep->len, 0, &err);
		if (!json_is_object(j)) {
			json_decref(j);
			srv_fwd_fail(s, f, "the writer's reply was not understood; the command may "
				     "have been applied: resend it with the same cmd_id (%s)",
				     f->r->cmd_id.n ? "yours" : f->cmd_id);
			continue;
		}
		seq = json_object_get(j, "seq");
		if (json_is_true(json_object_get(j, "ok")) && json_is_integer(seq) &&
		    (uint64_t)json_integer_value(seq) > s->published) {
			f->reply = j;           /* read-your-writes: wait for the event */
			f->seq = (uint64_t)json_integer_value(seq);
			continue;
		}
		srv_fwd_finish(s, f, j, 1);
	}
	edgefwd_replies_free(list);
	for (f = s->fwd_head; f; f = nx) {
		nx = f->next;
		if (f->reply && s->published >= f->seq) {
			json_t *j = f->reply;

			f->reply = NULL;
			srv_fwd_finish(s, f, j, 1);
		} else if (now >= f->deadline) {
			if (f->reply)
				srv_fwd_fail(s, f, "the writer applied this command at seq %llu, but this "
					     "edge has not caught up with it within %d s; resend it with "
					     "the same cmd_id (%s) for its reply",
					     (unsigned long long)f->seq, s->o.fwd_secs,
					     f->r->cmd_id.n ? "yours" : f->cmd_id);
			else
				srv_fwd_fail(s, f, "the writer did not answer within %d s (it or NATS "
					     "is down); the command may have been applied: resend it "
					     "with the same cmd_id (%s)", s->o.fwd_secs,
					     f->r->cmd_id.n ? "yours" : f->cmd_id);
		} else if (!f->reply && now >= f->resend_at) {
			/* the writer may have missed it (restarting): the cmd_id dedupes */
			f->resend_at = now + 1.0;
			edgefwd_send(s->fwd, f->id, f->text, f->len);
		}
	}
}

/* ---- tailing other writers ---------------------------------------- */

static void srv_tail(lws_sorted_usec_list_t *sul)
{
	struct server *s = lws_container_of(sul, struct server, tail_sul);

	/*
	 * Catch up on every tick instead of only when evlog_generation moved:
	 * LMDB publishes the new txn id a moment before new read snapshots can
	 * see the data, so a generation check could record a commit as seen
	 * while the snapshot still missed it. An up-to-date catch-up is one
	 * empty read txn (about a microsecond), four times a second.
	 */
	int rc = srv_catch_up(s);

	if (rc)
		slog(SLOG_ERR, "cannot follow the log (%s)", cl_strerror(rc));
	if (srv_wait_durable(s) == 0)  /* presence shows the projection's names */
		srv_presence_push(s);
	lws_sul_schedule(s->ctx, 0, &s->tail_sul, srv_tail, SRV_TAIL_US);
}

/* ---- the lws callback ---------------------------------------------- */

/*
 * The Origin allow-list (--allow-origin): browsers always send Origin, other
 * clients usually do not. A token in the URL cannot be borrowed by a foreign
 * page; the list is for sites that want to pin which pages may embed their
 * changelog anyway. The session cookie is another matter (see srv_auth).
 * Returns 1 if the request's Origin is in the list, else 0 (also when there
 * is no list or no Origin).
 */
static int srv_origin_listed(const struct server *s, struct lws *wsi)
{
	char origin[256];
	const char *p, *comma;
	int n;

	if (!s->o.allow_origin)
		return 0;
	n = lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN);
	if (n <= 0 || n >= (int)sizeof origin ||
	    lws_hdr_copy(wsi, origin, sizeof origin, WSI_TOKEN_ORIGIN) < 0)
		return 0;
	for (p = s->o.allow_origin; *p; p = comma + 1) {
		size_t len;

		comma = strchr(p, ',');
		if (!comma)
			comma = p + strlen(p);
		len = (size_t)(comma - p);
		if (len == strlen(origin) && strncasecmp(p, origin, len) == 0)
			return 1;
		if (!*comma)
			break;
	}
	return 0;
}

/* 1 = allowed (no list, no Origin, or listed), 0 = refused. */
static int srv_origin_ok(const struct server *s, struct lws *wsi)
{
	return !s->o.allow_origin || lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0 ||
	       srv_origin_listed(s, wsi);
}

/*
 * Who a handshake is: the token (sess_auth), else the session cookie - but
 * the cookie only from a page of our own origin or one in --allow-origin.
 * A browser sends the cookie with a websocket opened by any site, so
 * without this guard a foreign page could act as the signed-in user
 * (cross-site websocket hijacking). 0 with the ids, or the HTTP status.
 */
static int srv_auth(struct server *s, struct lws *wsi, uint64_t *user, uint64_t *token)
{
	char v[WEBSESS_LEN + 8];
	size_t len = sizeof v;
	int rc = sess_auth(s->proj, wsi, user, token);

	if (rc != 401 || lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_COOKIE) <= 0 ||
	    lws_http_cookie_get(wsi, WEBSESS_COOKIE, v, &len) != 0)
		return rc;
	if (!http_origin_is_own(wsi, !s->o.plain) && !srv_origin_listed(s, wsi)) {
		slog(SLOG_WARN, "refusing a websocket signed in by cookie from a foreign origin");
		return HTTP_STATUS_FORBIDDEN;
	}
	if (websess_find(&s->websess, s->proj, v, len, cl_now_us(), user, token) != 0)
		return HTTP_STATUS_UNAUTHORIZED;
	return 0;
}

static int srv_on_upgrade(struct server *s, struct lws *wsi)
{
	uint64_t user, token;
	int rc;

	if (s->stopping) {
		s->m.handshakes_refused++;
		return http_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	}
	if (!srv_origin_ok(s, wsi)) {
		s->m.handshakes_refused++;
		slog(SLOG_WARN, "refusing a websocket from an origin not in --allow-origin");
		return http_refuse(wsi, HTTP_STATUS_FORBIDDEN);
	}
	rc = srv_auth(s, wsi, &user, &token);
	if (rc) {
		s->m.handshakes_refused++;
		return http_refuse(wsi, rc);
	}
	if (s->pool.n >= s->o.max_conns) {
		s->m.handshakes_refused++;
		slog(SLOG_WARN, "refusing a websocket: %u sessions open (--max-conns)", s->pool.n);
		return http_refuse(wsi, HTTP_STATUS_SERVICE_UNAVAILABLE);
	}
	return 0;
}

static int srv_on_established(struct server *s, struct lws *wsi, struct sess *ss)
{
	uint64_t user, token;

	if (srv_auth(s, wsi, &user, &token) != 0)
		return -1;   /* revoked between upgrade and now */
	sess_open(ss, &s->pool, wsi, user, token);
	return 0;
}

/* What /healthz and /metrics show, from the owner of each value. */
static void srv_http_view(struct server *s, struct http_view *st)
{

	memset(st, 0, sizeof *st);
	st->ok = !s->stopping && !s->fatal;
	st->stopping = s->stopping;
	st->tls = !s->o.plain;
	st->epoch = s->epoch;
	st->m = &s->m;
	st->g.connections = s->pool.n;
	st->g.queue_bytes = s->pool.out_bytes;
	st->g.ring_bytes = s->ring.bytes;
	st->g.seq = s->published;
	st->g.websessions = s->websess.n;
	st->g.qc = &s->pc.qc;
	{
		struct proj_texts_stats ts;

		proj_texts_stats(s->proj, &ts);
		st->g.texts = ts.n;
		st->g.texts_bytes = ts.bytes;
		st->g.texts_made = ts.made;
		st->g.texts_hits = ts.hits;
		st->g.texts_evicted = ts.evicted;
	}
	st->g.page_waits = s->pc.fresh_waits;
	st->g.page_partial = s->pc.fresh_partial;
	st->g.presence_users = presence_count(&s->pres);
	if (s->np) {
		struct natspub_stats ns;

		natspub_stats(s->np, &ns);
		s->mn.state = natspub_state_name(ns.state);
		s->mn.states = natspub_state_names;
		s->mn.published = ns.acked;
		s->mn.lag = ns.committed > ns.acked ? ns.committed - ns.acked : 0;
		s->mn.republished = ns.republished;
		s->mn.checks = ns.checks;
		s->mn.errors = ns.errors;
		if (s->svc) {
			struct natssvc_stats vs;

			natssvc_stats(s->svc, &vs);
			s->mn.svc_commands = vs.commands;
			s->mn.svc_refused = vs.refused;
			s->mn.svc_fetches = vs.fetches;
			s->mn.svc_fetched = vs.fetched;
		}
		st->g.nats = &s->mn;
	}
	if (s->wh) {
		size_t i, n = webhook_stats(s->wh, s->whs, CL_MAX_WEBHOOKS);

		for (i = 0; i < n; i++) {
			s->mw[i].id = s->whs[i].id;
			s->mw[i].cursor = s->whs[i].cursor;
			s->mw[i].lag = s->whs[i].lag;
			s->mw[i].deliveries = s->whs[i].deliveries;
			s->mw[i].failures = s->whs[i].failures;
			s->mw[i].last_status = s->whs[i].last_status;
		}
		st->g.webhooks = s->mw;
		st->g.nwebhooks = n;
		st->g.webhooks_on = 1;
	}
	if (s->edge) {
		struct edge_stats es;

		edge_stats(s->edge, &es);
		s->me.state = edge_state_names[es.state];
		s->me.states = edge_state_names;
		s->me.behind = es.behind;
		s->me.lag_secs = es.lag_secs;
		s->me.fetched = es.fetched;
		s->me.fetches = es.fetches;
		s->me.fwd_in_flight = s->nfwd;
		st->g.edge = &s->me;
		/* a stuck edge serves an old state: load balancers should skip it */
		if (es.state == EDGE_GAP || es.state == EDGE_DIVERGED)
			st->ok = 0;
	}
}

static int srv_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			void *in, size_t len)
{
	struct server *s = lws_context_user(lws_get_context(wsi));
	struct sess *ss = user;
	struct http_view st;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		if (api_path(wsi))
			return api_http(&s->api, user, wsi);
		srv_http_view(s, &st);
		return http_serve(wsi, &st);
	case LWS_CALLBACK_HTTP_BODY:
		return api_body(user, in, len);
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return api_body_done(user);
	case LWS_CALLBACK_HTTP_WRITEABLE:
		if (api_replying(user))
			return api_writeable(user);
		break;
	case LWS_CALLBACK_CLOSED_HTTP:
		api_wsi_closed(wsi);
		/* fall through */
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		api_closed(user);
		break;
	case LWS_CALLBACK_FILTER_HTTP_CONNECTION:
		return http_filter(wsi);
	case LWS_CALLBACK_ADD_HEADERS:
		return http_add_headers(wsi, in);
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		return srv_on_upgrade(s, wsi);
	case LWS_CALLBACK_ESTABLISHED:
		return srv_on_established(s, wsi, ss);
	case LWS_CALLBACK_RECEIVE:
		return sess_receive(ss, in, len);
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return ss && ss->linked ? sess_writeable(ss) : 0;
	case LWS_CALLBACK_CLOSED:
		api_wsi_closed(wsi);   /* a connection that upgraded after an API request */
		srv_presence_gone(s, ss);
		sess_closed(ss);
		return 0;
	case LWS_CALLBACK_OPENSSL_LOAD_EXTRA_SERVER_VERIFY_CERTS:
		tlsr_attach(s->tls, user);   /* user: the vhost's SSL_CTX (tlsreload.h) */
		return 0;
	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- startup ------------------------------------------------------- */

/* proto_ctx.hook_key: DATA/webhook.key, made by the first createWebhook. */
static const uint8_t *srv_hook_key(void *arg)
{
	struct server *s = arg;
	int rc;

	if (!s->hook_key_ok) {
		rc = hookkey_load(s->o.data_dir, 1, s->hook_key);
		if (rc) {
			slog(SLOG_ERR, "cannot read or make %s/webhook.key (%s); createWebhook is "
			     "refused", s->o.data_dir, cl_strerror(rc));
			return NULL;
		}
		s->hook_key_ok = 1;
	}
	return s->hook_key;
}

/* Called on the webhook delivery thread: "feed me" (webhook.h). */
static void srv_webhook_wake(void *arg)
{
	lws_cancel_service(((struct server *)arg)->ctx);
}

/* Connect the modules: what each reads, and the hooks they call. */
static void srv_wire(struct server *s)
{
	proto_init(&s->pc);
	s->pc.epoch = s->epoch;
	s->pc.load = srv_load_event;
	s->pc.on_event = srv_stage;
	s->pc.room = srv_room;
	s->pc.reclaim = srv_reclaim;
	s->pc.presence = srv_presence_list;
	s->pc.hook_key = srv_hook_key;
	s->pc.arg = s;
	presence_init(&s->pres);

	s->pool.lim.rate = s->o.rate;
	s->pool.lim.burst = s->o.burst;
	rl_users_init(&s->users, 0);
	s->users.rate.rate = s->o.user_rate;
	s->users.rate.burst = s->o.user_burst;
	s->pool.users = &s->users;
	s->pool.also = &s->api.bytes;
	s->pool.lim.max_msg = s->o.max_msg;
	s->pool.lim.max_queue = s->o.max_queue;
	s->pool.lim.max_memory = s->o.max_memory;
	s->pool.lim.sndbuf = s->o.sndbuf;
	s->pool.m = &s->m;
	s->pool.ring = &s->ring;
	s->pool.on_message = srv_on_message;
	s->pool.on_forget = srv_forget_session;
	s->pool.on_drained = srv_drained;
	s->pool.on_replay = srv_wait_durable;
	s->pool.arg = s;

	s->api.lim.max_body = s->o.max_msg;
	s->api.lim.rate = s->o.rate;
	s->api.lim.burst = s->o.burst;
	s->api.lim.max_memory = s->o.max_memory;
	s->api.lim.max_queue = s->o.max_queue;
	s->api.lim.body_secs = s->o.handshake_secs;
	s->api.ws = &s->websess;
	s->api.users = &s->users;
	s->api.m = &s->m;
	s->api.epoch = s->epoch;
	s->api.published = &s->published;
	s->api.on_request = srv_on_api;
	s->api.on_forget = srv_forget_api;
	s->api.arg = s;
}

static void srv_on_signal(int sig)
{
	(void)sig;
	srv_request_stop();
}

/* 0, or the errno that stopped it; an existing file is never replaced. */
static int srv_write_admin_token(const char *dir, const char *token)
{
	char path[4096], line[TOKEN_LEN + 2];
	int fd, n, e;

	if ((size_t)snprintf(path, sizeof path, "%s/admin-token", dir) >= sizeof path)
		return ENAMETOOLONG;
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return errno;
	n = snprintf(line, sizeof line, "%s\n", token);
	if (write(fd, line, (size_t)n) != n || fsync(fd) != 0) {
		e = errno ? errno : EIO;
		close(fd);
		unlink(path);
		return e;
	}
	close(fd);
	return 0;
}

/* The bootstrap token: once on stdout, and in DATA/admin-token (0600). */
static void srv_announce_token(struct server *s, const char *token)
{
	const char *d = s->o.data_dir;
	int e;

	printf("admin token: %s\n", token);
	fflush(stdout);
	e = srv_write_admin_token(d, token);
	if (e == 0)
		slog(SLOG_INFO, "new log in %s: admin \"%s\" created; its token was printed on "
		     "stdout and saved in %s/admin-token (mode 0600)", d, s->o.admin_name, d);
	else if (e == EEXIST)
		slog(SLOG_WARN, "new log in %s: admin \"%s\" created; its token was printed on "
		     "stdout only: %s/admin-token already exists, does not hold it and was left "
		     "as it was", d, s->o.admin_name, d);
	else
		slog(SLOG_WARN, "new log in %s: admin \"%s\" created; its token was printed on "
		     "stdout only: could not write %s/admin-token (%s)", d, s->o.admin_name, d,
		     strerror(e));
}

/* LMDB tripped over a damaged page (evlog_on_damage): the process exits 1. */
static void srv_report_damage(const char *what)
{
	slog(SLOG_ERR, "stopping: %s", what);
}

/* A log that opened but does not read back: damage below the meta pages. */
static void srv_log_damaged(struct server *s, const char *what, int rc)
{
	const char *d = s->o.data_dir;

	if (rc == CL_ECORRUPT || rc == CL_EDECODE || rc == CL_EVERSION)
		slog(SLOG_ERR, "refusing to start: %s (%s): the log in %s is damaged; "
		     "changelog-audit verify --data %s names the first bad seq; restore the "
		     "newest backup (docs/operations.md, \"Recovering a damaged data directory\")",
		     what, cl_strerror(rc), d, d);
	else
		slog(SLOG_ERR, "refusing to start: %s: %s", what, cl_strerror(rc));
}

static int srv_open_log(struct server *s)
{
	struct proj *p = NULL;
	char token[TOKEN_LEN + 1];
	uint64_t last = 0;
	int rc;

	/* refuses, rather than restarts, a directory whose log is damaged or gone */
	rc = evlog_open(&s->log, s->o.data_dir, EVLOG_CREATE | (s->o.nosync ? EVLOG_NOSYNC : 0) |
			(s->o.map_size ? EVLOG_FIXEDMAP : 0), s->o.map_size);
	if (rc) {
		char why[1024];

		datadir_explain(s->o.data_dir, rc, why, sizeof why);
		slog(SLOG_ERR, "refusing to start: %s", why);
		return rc;
	}
	rc = evlog_last(s->log, &last, NULL);
	if (rc) {
		srv_log_damaged(s, "cannot read the log", rc);
		return rc;
	}
	if (s->o.edge && (rc = srv_edge_open(s)) != 0)
		return rc;
	if (last == 0 && !s->o.edge) {
		rc = bootstrap_admin(s->log, s->o.admin_name, cl_now_us(), token);
		if (rc == CL_EEXIST) {
			slog(SLOG_INFO, "the log was initialised by another process meanwhile");
		} else if (rc) {
			slog(SLOG_ERR, "cannot create the first admin \"%s\" (%s)", s->o.admin_name,
			     cl_strerror(rc));
			return rc;
		} else {
			srv_announce_token(s, token);
		}
		memset(token, 0, sizeof token);
	}
	snprintf(s->epoch, sizeof s->epoch, "%s", evlog_epoch(s->log));
	rc = srv_build_proj(s->log, 0, &p);
	srv_set_proj(s, p);
	if (rc) {
		srv_log_damaged(s, "cannot build the projection from the log", rc);
		return rc;
	}
	s->published = proj_seq(s->proj);
	s->committed = s->published;
	s->pc.committed = s->published;
	slog(SLOG_INFO, "log %s: epoch %s, %llu events", s->o.data_dir, s->epoch,
	     (unsigned long long)s->published);
	if (s->o.map_size) {
		struct evlog_stat st;

		if (evlog_stat(s->log, &st) == 0)
			slog(st.used_bytes + 65536 > st.mapsize ? SLOG_WARN : SLOG_INFO,
			     "log map fixed at %llu bytes (--map-size), %llu in use%s",
			     (unsigned long long)st.mapsize, (unsigned long long)st.used_bytes,
			     st.used_bytes + 65536 > st.mapsize ? ": (nearly) full, writes will "
			     "be refused as unavailable" : "");
	}
	return 0;
}

/* Default cert/key under DATA/tls, made on first start. */
static int srv_tls_paths(struct server *s, char *cert, char *key, size_t cap)
{
	char dir[4096];
	int created = 0, rc;

	if (s->o.cert || s->o.key) {
		if (!s->o.cert || !s->o.key) {
			slog(SLOG_ERR, "--cert and --key go together");
			return CL_EUSAGE;
		}
		snprintf(cert, cap, "%s", s->o.cert);
		snprintf(key, cap, "%s", s->o.key);
		return 0;
	}
	if ((size_t)snprintf(dir, sizeof dir, "%s/tls", s->o.data_dir) >= sizeof dir ||
	    (size_t)snprintf(cert, cap, "%s/cert.pem", dir) >= cap ||
	    (size_t)snprintf(key, cap, "%s/key.pem", dir) >= cap)
		return CL_EINVAL;
	if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
		slog(SLOG_ERR, "cannot create %s (%s)", dir, strerror(errno));
		return CL_EIO;
	}
	rc = tlsgen_ensure(cert, key, &created);
	if (rc) {
		slog(SLOG_ERR, "cannot make a self-signed certificate in %s (%s)", dir,
		     rc == CL_EEXIST ? "only one of cert.pem and key.pem exists" : cl_strerror(rc));
		return rc;
	}
	if (created)
		slog(SLOG_INFO, "made a self-signed certificate for localhost in %s", dir);
	return 0;
}

/* The web UI directory: --web, else the first of <dir of the binary>/../web
 * (a checkout) and <dir of the binary>/../share/changelogd/web (make install,
 * the .deb) that has index.html. */
static void srv_web_dir(const struct server *s, char *out, size_t cap)
{
	static const char *const rel[] = { "../web", "../share/changelogd/web" };
	char exe[4096], probe[4200], *slash;
	ssize_t n;

	out[0] = '\0';
	if (s->o.web_dir) {
		if (*s->o.web_dir && !realpath(s->o.web_dir, out)) {
			slog(SLOG_WARN, "cannot use --web %s (%s); not serving the web UI", s->o.web_dir,
			     strerror(errno));
			out[0] = '\0';
		}
		return;
	}
	n = readlink("/proc/self/exe", exe, sizeof exe - 1);
	if (n <= 0)
		return;
	exe[n] = '\0';
	slash = strrchr(exe, '/');
	if (!slash)
		return;
	*slash = '\0';
	for (size_t i = 0; i < sizeof rel / sizeof rel[0]; i++) {
		snprintf(probe, sizeof probe, "%s/%s/index.html", exe, rel[i]);
		if (access(probe, R_OK) != 0)
			continue;
		snprintf(probe, sizeof probe, "%s/%s", exe, rel[i]);
		if (!realpath(probe, out) || strlen(out) >= cap)
			out[0] = '\0';
		return;
	}
}

static unsigned srv_fd_limit(unsigned want)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < want && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur < want ? (unsigned)rl.rlim_cur : want;
}

static void srv_free(struct server *s)
{
	struct req *r, *nx;

	for (r = s->q_head; r; r = nx) {
		nx = r->next;
		req_free(r);
	}
	while (s->pend_head) {      /* never durable (a failed sync): unanswered */
		struct srv_pending *pb = s->pend_head;

		s->pend_head = pb->next;
		for (r = pb->batch; r; r = nx) {
			nx = r->next;
			req_free(r);
		}
		for (size_t i = 0; i < pb->nstg; i++)
			json_decref(pb->stg[i].push);
		free(pb->stg);
		free(pb);
	}
	natssvc_stop(s->svc);       /* before natspub_stop: that one shuts libnats down */
	natspub_stop(s->np);        /* its thread reads the log: before it closes */
	edgefwd_stop(s->fwd);       /* likewise before edge_stop */
	edge_stop(s->edge);
	webhook_stop(s->wh);
	srv_unstage(s);
	free(s->stg);
	ring_release(&s->ring);
	proto_release(&s->pc);
	presence_release(&s->pres);
	sess_pool_release(&s->pool);
	api_pool_release(&s->api);
	rl_users_release(&s->users);
	websess_release(&s->websess);
	pbuf_free(&s->fbuf);
	proj_free(s->proj);
	if (s->log)
		evlog_close(s->log);
	tlsr_free(s->tls);
	free(s);
}

int srv_run(const struct srv_opts *o)
{
	static const struct lws_protocols protos_tpl[] = {
		{ SRV_PROTOCOL, srv_callback, sizeof(struct sess), SRV_RX_CHUNK, 0, NULL, 65536 },
		{ NULL, NULL, 0, 0, 0, NULL, 0 }
	};
	static const uint32_t backoff[] = { 1000 };
	struct lws_protocols protos[2];
	struct lws_context_creation_info info;
	lws_retry_bo_t retry;
	struct http_mounts mounts;
	struct server *s;
	struct sigaction sa;
	char cert[4096], key[4096], web[4096];
	unsigned fdlim;
	double deadline;
	int rc = 1;

	s = calloc(1, sizeof *s);
	if (!s)
		return 1;
	s->o = *o;
	if (websess_init(&s->websess, (int64_t)o->session_days * 86400 * 1000000)) {
		free(s);
		return 1;
	}
	srv_wire(s);
	slog_set_level(o->verbose ? SLOG_DEBUG : SLOG_INFO);
	slog_hook_lws(o->verbose);
	evlog_on_damage(srv_report_damage);
	if (srv_open_log(s))
		goto out;
	if (websess_open(&s->websess, o->data_dir, s->epoch, cl_now_us()))
		slog(SLOG_WARN, "cannot keep browser sessions in %s/sessions (%s); they last "
		     "until a restart", o->data_dir, strerror(errno));
	s->pool.log = s->log;
	if (o->nats.url && !o->edge &&
	    natspub_start(&s->np, &o->nats, s->log, s->epoch, s->published))
		goto out;
	if (o->nats.url && !o->edge) {
		struct natssvc_opts so = { o->nats.url, o->nats.stream, o->nats.creds };

		if (natssvc_start(&s->svc, &so, s->log, s->epoch, srv_wake, s))
			goto out;
	}
	if (ring_init(&s->ring, o->ring_events, o->ring_bytes, s->published + 1))
		goto out;
	if (!o->plain && srv_tls_paths(s, cert, key, sizeof cert))
		goto out;
	if (!(s->tls = tlsr_new(o->plain ? NULL : cert, key)))
		goto out;
	srv_web_dir(s, web, sizeof web);

	memcpy(protos, protos_tpl, sizeof protos);
	/* one lws allocation per connection: a websocket's struct sess, or an
	 * HTTP connection's struct api_conn */
	if (sizeof(struct api_conn) > protos[0].per_session_data_size)
		protos[0].per_session_data_size = sizeof(struct api_conn);
	memset(&retry, 0, sizeof retry);
	retry.retry_ms_table = backoff;
	retry.retry_ms_table_count = 1;
	retry.conceal_count = 1;
	retry.secs_since_valid_ping = (uint16_t)o->ping_secs;
	retry.secs_since_valid_hangup = (uint16_t)(o->ping_secs + o->pong_secs);

	memset(&info, 0, sizeof info);
	info.port = o->port;
	info.iface = o->host && *o->host ? o->host : NULL;
	info.protocols = protos;
	info.mounts = http_mounts_init(&mounts, web[0] ? web : NULL, SRV_PROTOCOL);
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (!o->plain) {
		/* no client certificates are asked for, so the OS's CA store
		 * (~140 certificates parsed at start, 0.66 MB) is not loaded */
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT |
				LWS_SERVER_OPTION_DISABLE_OS_CA_CERTS;
		info.ssl_cert_filepath = cert;
		info.ssl_private_key_filepath = key;
	}
	info.alpn = "http/1.1";
	/* lws' default 4 KiB of request headers drops browsers with big
	 * cookies unanswered; the space is held only during the handshake */
	info.max_http_header_data = 16384;
	info.retry_and_idle_policy = &retry;
	info.timeout_secs = (unsigned)o->handshake_secs;
	info.timeout_secs_ah_idle = (unsigned)o->handshake_secs;
	info.keepalive_timeout = 5;
	info.server_string = "changelogd";
	info.vhost_name = "changelogd";
	info.user = s;
	fdlim = srv_fd_limit(o->max_conns + 64);
	if (fdlim < o->max_conns + 64)
		slog(SLOG_WARN, "only %u file descriptors available for --max-conns %u",
		     fdlim, o->max_conns);
	info.fd_limit_per_thread = fdlim;

	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		slog(SLOG_ERR, "cannot listen on %s:%d (see the lws error above)",
		     o->host ? o->host : "*", o->port);
		goto out;
	}
	if (!o->plain && !tlsr_attached(s->tls)) {
		slog(SLOG_ERR, "TLS: could not hook certificate reload into libwebsockets");
		goto out;
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = srv_on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	slog(SLOG_INFO, "listening on %s://%s:%d/ws/<token>%s", o->plain ? "ws" : "wss",
	     o->host ? o->host : "*", o->port,
	     o->plain ? " (plain: no TLS; run it behind a TLS proxy)" : "");
	if (web[0])
		slog(SLOG_INFO, "serving the web UI from %s", web);
	lws_sul_schedule(s->ctx, 0, &s->tail_sul, srv_tail, SRV_TAIL_US);
	if (s->edge && edge_start(s->edge, s->published, srv_edge_wake, s))
		goto out;
	if (s->edge) {
		struct edge_opts eo = { o->nats.url, o->nats.stream, o->nats.creds };
		char why[600];

		if (edgefwd_start(&s->fwd, &eo, srv_wake, s, why, sizeof why)) {
			slog(SLOG_ERR, "refusing to start the edge: %s", why);
			goto out;
		}
	}
	if (!o->edge) {            /* edges never deliver webhooks: their writer does */
		struct webhook_opts wo = { o->data_dir, s->epoch, o->webhook_timeout_ms,
					   o->webhook_retry_min_ms, o->webhook_retry_max_ms,
					   srv_webhook_wake, s };

		if (webhook_start(&s->wh, &wo, s->proj, s->published))
			goto out;
	}

	/*
	 * A writer syncs the meta page of its commits on a second thread and
	 * answers once it is done (srv_release); an edge follows its writer's
	 * stream, and --nosync does not sync at all.
	 */
	if (!o->edge && !o->nosync) {
		rc = evlog_defer_sync(s->log, srv_wake, s);
		if (rc == 0) {
			const char *d = getenv("CHANGELOG_TEST_SYNC_DELAY_MS");
			const char *f = getenv("CHANGELOG_TEST_SYNC_FAIL");

			s->deferred = 1;
			evlog_share_upto(s->log, s->published);
			if ((d && *d) || (f && *f))     /* docs/operations.md, "Test hooks" */
				evlog_sync_test(s->log, d ? (unsigned)strtoul(d, NULL, 10) % 10000 : 0,
						f && *f == '1');
		} else {
			slog(SLOG_WARN, "cannot start the sync thread (%s); syncing every commit "
			     "on the service thread", cl_strerror(rc));
		}
		rc = 1;
	}
	while (!srv_stop_flag && !s->fatal) {
		if (lws_service(s->ctx, 0) < 0)
			break;
		if (s->pend_head)
			srv_release(s);
		if (s->svc)
			srv_svc_take(s);
		if (s->edge)
			srv_edge_apply(s);
		if (s->fwd)
			srv_fwd_poll(s);
		tlsr_poll(s->tls);
		if (!srv_collecting(s))
			srv_flush(s);
		/* its bodies carry the projection's state: durable first (a
		 * log that has webhooks gives up the overlap of sync and loop) */
		if (!s->pend_head || !proj_webhook_count(s->proj) || srv_wait_durable(s) == 0)
			webhook_feed(s->wh, s->proj, s->log, s->published);
	}

	/* commands in flight to the writer: their clients learn it now */
	while (s->fwd_head)
		srv_fwd_fail(s, s->fwd_head, "this edge is stopping; the command may have been "
			     "applied: resend it to another node with the same cmd_id (%s)",
			     s->fwd_head->r->cmd_id.n ? "yours" : s->fwd_head->cmd_id);
	/* the edge's threads and the webhook thread wake the lws context: gone
	 * before the context (deliveries in flight are sent again after a restart) */
	edgefwd_stop(s->fwd);
	s->fwd = NULL;
	edge_stop(s->edge);
	s->edge = NULL;
	webhook_stop(s->wh);
	s->wh = NULL;
	/* shutdown: commit and answer what was received, then close 1001 */
	slog(SLOG_INFO, "stopping: finishing %s requests, closing %u sessions",
	     s->q_head ? "queued" : "no", s->pool.n);
	s->stopping = 1;
	s->api.stopping = 1;
	sess_pool_stop_reading(&s->pool);
	srv_flush(s);
	srv_settle(s);
	sess_pool_shutdown(&s->pool);
	deadline = srv_mono() + SRV_DRAIN_SECS;
	while (s->pool.n > 0 && srv_mono() < deadline) {
		if (lws_service(s->ctx, 0) < 0)
			break;
		srv_flush(s);
		srv_settle(s);
	}
	/* its wake-up calls into the context: gone before the context */
	evlog_sync_stop(s->log);
	lws_sul_cancel(&s->tail_sul);
	lws_context_destroy(s->ctx);
	s->ctx = NULL;
	rc = s->fatal ? 1 : 0;
	slog(rc ? SLOG_ERR : SLOG_INFO, "stopped at seq %llu%s",
	     (unsigned long long)s->published, rc ? " after a fatal error" : "");
out:
	if (s->ctx)
		lws_context_destroy(s->ctx);
	srv_free(s);
	return rc;
}
