/*
 * session.c - per-session state and every per-session limit (see
 * session.h). Called only from the lws callback dispatch in server.c and
 * from its group commit, all on the service thread. Everything shared
 * between sessions is in their struct sess_pool; nothing here is global.
 *
 * Outbound order: a session writes its unicast replies first (acks must not
 * wait behind a backlog of pushes), then stream frames from its cursor. One
 * lws_write per WRITEABLE callback, re-armed while something is owed; when
 * more than one push is owed, up to SESS_COALESCE_MAX of them go out as one
 * {"op":"events","events":[...]} frame.
 */
#include "session.h"

#define SESS_REPLIES_PER_WRITE 16  /* unicast frames per WRITEABLE, at most */
/*
 * A reply bigger than this goes out as websocket fragments of this size,
 * one per WRITEABLE: a 16 MiB page written at once held the loop while
 * OpenSSL encrypted what the socket took and lws copied the rest (up to
 * the whole page) into its own buffer; a fragment bounds both.
 */
#define SESS_FRAG_BYTES ((size_t)1 << 20)

/*
 * lws keeps its close write type private (LWS_WRITE_CLOSE = 4 in
 * lib/core/private-lib-core.h; the public enum leaves 4 out). Checked for
 * the 4.1 series only: another version must be read again before this
 * guard is widened.
 */
#if LWS_LIBRARY_VERSION_MAJOR != 4 || LWS_LIBRARY_VERSION_MINOR != 1
#error "session.c: check LWS_WRITE_CLOSE in this libwebsockets version's private-lib-core.h"
#endif
_Static_assert(LWS_WRITE_HTTP == 3 && LWS_WRITE_PING == 5,
	       "lws moved its write types: LWS_WRITE_CLOSE may no longer be 4");
#define SESS_WRITE_CLOSE ((enum lws_write_protocol)4)

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include "../core/cl.h"
#include "../store/evlog.h"
#include "../store/token.h"
#include "slog.h"

/* ---- auth at the handshake ------------------------------------------ */

/*
 * The pure part of the lookup (session.h, sess_token_parse): the token
 * after the last "/ws/" of uri, else from "Bearer <token>" in auth.
 */
int sess_token_parse(const char *uri, const char *auth, size_t auth_len,
		     char *buf, size_t cap, const char **tok, size_t *tlen)
{
	const char *p, *at = NULL;

	*tok = NULL;
	*tlen = 0;
	for (p = uri; (p = strstr(p, "/ws/")) != NULL; p++)
		at = p;
	if (at) {
		const char *t = at + 4;
		size_t l = strlen(t);

		if (memchr(t, '/', l))
			return 404;
		if (l > 0) {
			if (l > TOKEN_MAX_INPUT)
				l = TOKEN_MAX_INPUT + 1;   /* refused below, never hashed */
			if (l >= cap)
				l = cap - 1;
			memcpy(buf, t, l);
			buf[l] = '\0';
			*tok = buf;
			*tlen = l;
			return 0;
		}
	} else {
		size_t l = strlen(uri);

		if (!(l >= 3 && strcmp(uri + l - 3, "/ws") == 0))
			return 404;
	}
	/* no token in the path: try "Authorization: Bearer <token>" */
	if (!auth || auth_len == 0)
		return 0;
	if (auth_len >= cap) {
		*tok = buf;
		*tlen = TOKEN_MAX_INPUT + 1;  /* too long: 403 */
		return 0;
	}
	memcpy(buf, auth, auth_len);
	buf[auth_len] = '\0';
	if (strncasecmp(buf, "Bearer ", 7) != 0)
		return 0;
	p = buf + 7;
	while (*p == ' ')
		p++;
	*tok = p;
	*tlen = strlen(p);
	while (*tlen && (*tok)[*tlen - 1] == ' ')
		(*tlen)--;
	return 0;
}

/*
 * Copy the token out of the path (after the last "/ws/") or the
 * Authorization header. Returns 0 with tok/tlen (tlen may be 0: none),
 * or 404 when the path is not a websocket endpoint.
 */
static int sess_find_token(struct lws *wsi, char *buf, size_t cap,
			   const char **tok, size_t *tlen)
{
	char uri[1024], auth[TOKEN_MAX_INPUT + 64];
	size_t alen = 0;
	int n;

	n = lws_hdr_copy(wsi, uri, sizeof uri, WSI_TOKEN_GET_URI);
	if (n < 0)
		return 414;
	n = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION);
	if (n > 0) {
		alen = (size_t)n;    /* >= cap: too long, the text is not needed */
		if (alen < sizeof auth) {
			n = lws_hdr_copy(wsi, auth, (int)sizeof auth, WSI_TOKEN_HTTP_AUTHORIZATION);
			alen = n < 0 ? 0 : strnlen(auth, sizeof auth - 1);
		} else if (alen < cap) {
			alen = cap;      /* never read: refused as too long */
		}
	}
	return sess_token_parse(uri, alen ? auth : NULL, alen, buf, cap, tok, tlen);
}

int sess_auth(const struct proj *p, struct lws *wsi, uint64_t *user, uint64_t *token)
{
	char buf[TOKEN_MAX_INPUT + 64];
	uint8_t hash[EV_HASH_LEN];
	const char *tok;
	size_t tlen;
	int rc;

	rc = sess_find_token(wsi, buf, sizeof buf, &tok, &tlen);
	if (rc)
		return rc;
	if (!tok || tlen == 0)
		return 401;
	if (tlen > TOKEN_MAX_INPUT)
		return 403;
	token_hash(tok, tlen, hash);
	if (proj_token_check(p, hash, user, token) != 0)
		return 403;
	return 0;
}

/* ---- lifecycle ------------------------------------------------------- */

void sess_open(struct sess *ss, struct sess_pool *pool, struct lws *wsi,
	       uint64_t user, uint64_t token)
{
	memset(ss, 0, sizeof *ss);
	ss->pool = pool;
	ss->wsi = wsi;
	ss->user = user;
	ss->token = token;
	ss->close_kind = METRICS_CLOSE_PEER;
	ss->next = pool->head;
	if (pool->head)
		pool->head->prev = ss;
	pool->head = ss;
	ss->linked = 1;
	pool->n++;
	if (pool->lim.sndbuf > 0) {
		int fd = lws_get_socket_fd(wsi), v = pool->lim.sndbuf;

		if (fd >= 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof v);
	}
}

static void sess_drop_chunk(struct sess *ss)
{
	size_t i;

	for (i = ss->chunk_i; i < ss->chunk_n; i++)
		frame_unref(ss->chunk[i]);
	free(ss->chunk);
	ss->pool->out_bytes -= ss->chunk_bytes;
	ss->chunk = NULL;
	ss->chunk_n = ss->chunk_i = ss->chunk_bytes = 0;
}

static void sess_drop_queues(struct sess *ss)
{
	struct frame *f = ss->uq_head, *nx;

	for (; f; f = nx) {
		nx = f->next;
		frame_unref(f);
	}
	ss->pool->out_bytes -= ss->uq_bytes;
	ss->uq_head = ss->uq_tail = NULL;
	ss->uq_bytes = 0;
	ss->frag_off = 0;
	sess_drop_chunk(ss);
}

/*
 * Read and drop what the peer sent that nobody will read. lws closes the
 * socket right after our close frame, and a socket closed with unread input
 * makes the kernel send a reset instead of a FIN; the reset can overtake the
 * close frame and the peer sees 1006 instead of our code and reason (a
 * client pipelining commands at SIGTERM, or a slow consumer). The socket is
 * still open in LWS_CALLBACK_CLOSED. Bounded: a peer that keeps sending
 * gets its reset.
 */
static void sess_discard_input(struct sess *ss)
{
	char *junk = ss->pool->junk;
	int fd = (int)lws_get_socket_fd(ss->wsi), i;

	for (i = 0; fd >= 0 && i < 128; i++)      /* 8 MiB: any socket buffer */
		if (recv(fd, junk, sizeof ss->pool->junk, MSG_DONTWAIT) <= 0)
			break;
}

/* The only writer of ss->subscribed: keeps the pool's count with it. */
static void sess_set_subscribed(struct sess *ss, int on)
{
	if (on && !ss->subscribed)
		ss->pool->nsubs++;
	else if (!on && ss->subscribed) {
		CL_ASSERT(ss->pool->nsubs > 0);
		ss->pool->nsubs--;
	}
	ss->subscribed = on;
}

void sess_closed(struct sess *ss)
{
	struct sess_pool *pool = ss->pool;

	if (!pool || !ss->linked)
		return;   /* never got to ESTABLISHED */
	sess_discard_input(ss);
	pool->m->closes[ss->close_kind]++;
	if (ss->queued) {
		pool->on_forget(pool->arg, ss);
		ss->queued = 0;
	}
	CL_ASSERT(!ss->held_head);   /* on_forget freed what the owner held */
	sess_drop_queues(ss);
	pool->out_bytes -= ss->lws_bytes;
	ss->lws_bytes = 0;
	CL_ASSERT(pool->reserved >= ss->reserved);
	pool->reserved -= ss->reserved;
	ss->reserved = 0;
	sess_set_subscribed(ss, 0);
	free(ss->rx);
	ss->rx = NULL;
	if (ss->prev)
		ss->prev->next = ss->next;
	else
		pool->head = ss->next;
	if (ss->next)
		ss->next->prev = ss->prev;
	ss->linked = 0;
	CL_ASSERT(pool->n > 0);
	pool->n--;
}

void sess_request_done(struct sess *ss)
{
	if (ss->queued)
		ss->queued--;
}

/* ---- inbound ------------------------------------------------------- */

/*
 * Take one request from the session's bucket and its user's (shared by
 * every session and HTTP request of that user: net/ratelimit.h): 0 if both
 * had one; else 1 (the session's rate) or 2 (the user's), and neither is
 * taken.
 */
static int sess_rate_take(struct sess *ss)
{
	struct sess_pool *pool = ss->pool;
	struct rl_rate cr = { pool->lim.rate, pool->lim.burst };
	int64_t now = rl_mono_us();

	return rl_take2(&ss->bucket, &cr, rl_user(pool->users, ss->user, now),
			&pool->users->rate, now);
}

static void sess_dispatch(struct sess *ss, const void *buf, size_t len)
{
	struct sess_pool *pool = ss->pool;
	int limited, rc;

	pool->m->messages_in++;
	limited = sess_rate_take(ss);
	if (limited)
		pool->m->rate_limited++;
	rc = pool->on_message(pool->arg, ss, buf, len, limited);
	if (rc < 0) {
		slog(SLOG_ERR, "out of memory parsing a request; closing session");
		sess_doom(ss, METRICS_CLOSE_ERROR, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
			  "internal error");
		return;
	}
	if (rc == 0)
		ss->queued++;
}

/* Close with code; what the client still sends is read and dropped. */
static int sess_refuse_close(struct sess *ss, int kind, uint16_t code, const char *reason)
{
	sess_doom(ss, kind, code, reason);
	return 0;
}

int sess_receive(struct sess *ss, const void *in, size_t len)
{
	struct sess_pool *pool = ss->pool;
	size_t remaining = lws_remaining_packet_payload(ss->wsi);
	int final = lws_is_final_fragment(ss->wsi);
	char why[96];

	if (ss->doomed || ss->shutdown || pool->stopping)
		return 0;   /* nothing more is read from a closing session */
	if (!ss->in_msg && lws_frame_is_binary(ss->wsi))
		return sess_refuse_close(ss, METRICS_CLOSE_BINARY,
					 LWS_CLOSE_STATUS_UNACCEPTABLE_OPCODE, "text frames only");
	if (ss->rxlen + len + remaining > pool->lim.max_msg) {
		snprintf(why, sizeof why, "message too big (limit %zu bytes)", pool->lim.max_msg);
		return sess_refuse_close(ss, METRICS_CLOSE_TOO_BIG,
					 LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, why);
	}
	if (!ss->in_msg && final) {           /* the usual case: no copy */
		sess_dispatch(ss, in, len);
		return 0;
	}
	if (ss->rxlen + len > ss->rxcap) {
		size_t cap = ss->rxcap ? ss->rxcap : 4096;
		unsigned char *nb;

		while (cap < ss->rxlen + len)
			cap *= 2;
		if (cap > pool->lim.max_msg)
			cap = pool->lim.max_msg;
		nb = realloc(ss->rx, cap);
		if (!nb)
			return sess_refuse_close(ss, METRICS_CLOSE_ERROR,
						 LWS_CLOSE_STATUS_UNEXPECTED_CONDITION, "out of memory");
		ss->rx = nb;
		ss->rxcap = cap;
	}
	memcpy(ss->rx + ss->rxlen, in, len);
	ss->rxlen += len;
	ss->in_msg = 1;
	if (!final)
		return 0;
	sess_dispatch(ss, ss->rx, ss->rxlen);
	ss->rxlen = 0;
	ss->in_msg = 0;
	if (ss->rxcap > 16384) {              /* do not keep big buffers idle */
		free(ss->rx);
		ss->rx = NULL;
		ss->rxcap = 0;
	}
	return 0;
}

/* ---- outbound ------------------------------------------------------ */

static int sess_stream_pending(const struct sess *ss)
{
	return ss->subscribed && ss->next_seq <= ss->pool->ring->last;
}

static void sess_wake(struct sess *ss)
{
	if (ss->doomed || ss->uq_head || ss->shutdown || sess_stream_pending(ss) ||
	    ss->lws_bytes || ss->held_head)
		lws_callback_on_writable(ss->wsi);
}

size_t sess_owed(const struct sess *ss)
{
	const struct ring *r = ss->pool->ring;
	size_t owed = ss->uq_bytes + ss->chunk_bytes + ss->lws_bytes;

	if (ss->subscribed && !ss->replaying && ss->next_seq >= r->first &&
	    ss->next_seq <= r->last) {
		uint64_t from = ring_cum_before(r, ss->next_seq);

		if (from < ss->lag_floor)
			from = ss->lag_floor;
		if (r->cum > from)
			owed += (size_t)(r->cum - from);
	}
	return owed;
}

static uint64_t sess_resume_seq(const struct sess *ss)
{
	if (ss->subscribed)
		return ss->next_seq - 1;
	return ss->pool->ring->last;
}

/*
 * What ss owes beyond the frame being written (or else its next reply):
 * that frame does not count against the limits, so one legitimately large
 * answer (a 500-entry page) never closes a reader.
 */
static size_t sess_excess(const struct sess *ss)
{
	size_t head = ss->lws_bytes;

	if (ss->uq_head && (ss->frag_off || !head))   /* a frame being written in pieces */
		head += ss->uq_head->len;

	return sess_owed(ss) - head;
}

static void sess_doom_slow(struct sess *ss)
{
	char why[124];

	snprintf(why, sizeof why, "slow consumer: resume from seq %llu",
		 (unsigned long long)sess_resume_seq(ss));
	slog(SLOG_WARN, "session of user %llu: %s (owed %zu bytes, all sessions %zu)",
	     (unsigned long long)ss->user, why, sess_owed(ss), ss->pool->out_bytes);
	sess_doom(ss, METRICS_CLOSE_SLOW, LWS_CLOSE_STATUS_POLICY_VIOLATION, why);
}

/*
 * Enforce max_queue and max_memory; 1 if ss was doomed. The pool's limit
 * closes only a session that itself holds more than SESS_POOL_FAIR beyond
 * its head frame, never a bystander whose small reply came while others
 * owed a lot.
 */
static int sess_check_limits(struct sess *ss)
{
	struct sess_pool *pool = ss->pool;
	size_t excess;

	if (ss->doomed)
		return 1;
	excess = sess_excess(ss);
	if (excess <= pool->lim.max_queue &&
	    (pool->out_bytes <= pool->lim.max_memory || excess <= SESS_POOL_FAIR))
		return 0;
	sess_doom_slow(ss);
	return 1;
}

void sess_send(struct sess *ss, struct frame *f)
{
	if (ss->doomed) {
		frame_unref(f);
		return;
	}
	f->next = NULL;
	if (ss->uq_tail)
		ss->uq_tail->next = f;
	else
		ss->uq_head = f;
	ss->uq_tail = f;
	ss->uq_bytes += f->len;
	ss->pool->out_bytes += f->len;
	if (sess_check_limits(ss))
		return;
	sess_wake(ss);
}

void sess_send_json(struct sess *ss, const json_t *j)
{
	struct frame *f = frame_from_json(&ss->pool->fbuf, j);

	if (!f) {
		slog(SLOG_ERR, "out of memory serializing a reply; closing session");
		sess_doom(ss, METRICS_CLOSE_ERROR, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
			  "internal error");
		return;
	}
	sess_send(ss, f);
}

void sess_subscribe(struct sess *ss, uint64_t next)
{
	sess_drop_chunk(ss);
	sess_set_subscribed(ss, 1);
	ss->next_seq = next;
	ss->replaying = 0;
	ss->lag_floor = ss->pool->ring->cum;
	sess_wake(ss);
}

void sess_unsubscribe(struct sess *ss)
{
	sess_drop_chunk(ss);
	sess_set_subscribed(ss, 0);
	ss->replaying = 0;
}

static void sess_on_publish(struct sess *ss)
{
	if (!ss->subscribed || ss->doomed)
		return;
	if (sess_check_limits(ss))
		return;
	sess_wake(ss);
}

void sess_doom(struct sess *ss, int kind, uint16_t code, const char *reason)
{
	size_t n = strlen(reason);

	if (ss->doomed)
		return;
	ss->doomed = 1;
	ss->close_kind = kind;
	ss->close_code = code;
	if (n >= sizeof ss->close_reason)
		n = sizeof ss->close_reason - 1;
	memcpy(ss->close_reason, reason, n);
	ss->close_reason[n] = '\0';
	sess_drop_queues(ss);
	sess_set_subscribed(ss, 0);
	lws_set_timeout(ss->wsi, PENDING_TIMEOUT_USER_OK, SESS_DOOM_SECS);
	lws_callback_on_writable(ss->wsi);
}

static void sess_shutdown(struct sess *ss)
{
	ss->shutdown = 1;
	lws_callback_on_writable(ss->wsi);
}

/* ---- the pool ------------------------------------------------------- */

void sess_pool_published(struct sess_pool *pool)
{
	struct sess *ss, *nx;

	for (ss = pool->head; ss; ss = nx) {
		nx = ss->next;
		sess_on_publish(ss);
	}
}

void sess_pool_revoked(struct sess_pool *pool, uint64_t token)
{
	struct sess *ss;

	for (ss = pool->head; ss; ss = ss->next)
		if (ss->token == token) {
			slog(SLOG_INFO, "closing a session of user %llu: token %llu revoked",
			     (unsigned long long)ss->user, (unsigned long long)token);
			sess_doom(ss, METRICS_CLOSE_REVOKED, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				  "token revoked");
		}
}

void sess_pool_stop_reading(struct sess_pool *pool)
{
	pool->stopping = 1;
}

void sess_pool_shutdown(struct sess_pool *pool)
{
	struct sess *ss;

	pool->stopping = 1;
	for (ss = pool->head; ss; ss = ss->next)
		sess_shutdown(ss);
}

/* ---- answer memory ------------------------------------------------- */

/* What ss owes that a held request waits for: replies queued, being
 * written, or built in the running batch (not stream lag: pushes go on). */
static size_t sess_backlog(const struct sess *ss)
{
	return ss->uq_bytes + ss->lws_bytes + ss->reserved;
}

/* What counts against max_memory: the sessions' and the HTTP API's. */
static size_t sess_pool_used(const struct sess_pool *pool)
{
	return pool->out_bytes + pool->reserved + (pool->also ? *pool->also : 0);
}

size_t sess_pool_room(const struct sess_pool *pool, size_t cap)
{
	size_t used = sess_pool_used(pool);
	size_t room = used >= pool->lim.max_memory ? 0 : pool->lim.max_memory - used;

	return room < cap ? room : cap;
}

size_t sess_room(const struct sess *ss, size_t cap, int *owes)
{
	size_t own = sess_backlog(ss), room = sess_pool_room(ss->pool, SIZE_MAX);

	*owes = own > 0;
	if (own) {
		size_t q = own >= ss->pool->lim.max_queue ? 0 : ss->pool->lim.max_queue - own;

		if (q < room)
			room = q;
	}
	return room < cap ? room : cap;
}

int sess_pool_reclaim(struct sess_pool *pool, size_t need, const struct sess *keep)
{
	int n = 0;

	for (;;) {
		size_t used = sess_pool_used(pool), best_x = SESS_POOL_FAIR;
		struct sess *ss, *best = NULL;

		if (used + need <= pool->lim.max_memory)
			break;
		for (ss = pool->head; ss; ss = ss->next) {
			size_t x = ss->doomed || ss == keep ? 0 : sess_excess(ss);

			if (x > best_x) {
				best_x = x;
				best = ss;
			}
		}
		if (!best)
			break;
		sess_doom_slow(best);
		n++;
	}
	return n;
}

void sess_reserve(struct sess *ss, size_t n)
{
	ss->reserved += n;
	ss->pool->reserved += n;
}

void sess_unreserve(struct sess *ss, size_t n)
{
	CL_ASSERT(ss->reserved >= n && ss->pool->reserved >= n);
	ss->reserved -= n;
	ss->pool->reserved -= n;
}

void sess_hold(struct sess *ss, int on)
{
	lws_rx_flow_control(ss->wsi, !on);
	if (on)
		sess_wake(ss);   /* if it owes nothing, the next WRITEABLE releases it */
}

/* Held requests and nothing owed any more: tell the owner. */
static void sess_check_drained(struct sess *ss)
{
	if (ss->held_head && !ss->doomed && sess_backlog(ss) == 0)
		ss->pool->on_drained(ss->pool->arg, ss);
}

void sess_pool_release(struct sess_pool *pool)
{
	free(pool->scratch);
	pool->scratch = NULL;
	pool->scratch_cap = 0;
	pbuf_free(&pool->fbuf);
}

/* Load the next chunk of pushes for next_seq.. from the log. */
static int sess_load_chunk(struct sess *ss)
{
	struct sess_pool *pool = ss->pool;
	struct evlog_iter *it = NULL;
	struct event ev;
	size_t cap = SESS_CHUNK_EVENTS;
	int rc;

	sess_drop_chunk(ss);
	if (pool->on_replay && pool->on_replay(pool->arg))
		return CL_EIO;          /* the state replays carry is not durable */
	ss->chunk = calloc(cap, sizeof *ss->chunk);
	if (!ss->chunk)
		return CL_ENOMEM;
	rc = evlog_iter_new(pool->log, ss->next_seq, &it);
	if (rc)
		return rc;
	while (ss->chunk_n < cap && ss->chunk_bytes < SESS_CHUNK_BYTES) {
		json_t *push;
		struct frame *f;

		rc = evlog_iter_next_event(it, &ev);
		if (rc <= 0)
			break;
		if (ev.seq > pool->ring->last ||
		    (ss->chunk_n > 0 && ring_get(pool->ring, ev.seq)))
			break;   /* the rest comes from the ring */
		if (ev.seq != ss->next_seq + ss->chunk_n) {
			rc = CL_ECORRUPT;
			break;
		}
		push = push_build(pool->proj, &ev, 1);
		f = push ? frame_from_json(&pool->fbuf, push) : NULL;
		json_decref(push);
		if (!f) {
			rc = CL_ENOMEM;
			break;
		}
		f->seq = ev.seq;
		if (push_restrict(&pool->fbuf, f, (int)ev.type, push_owner(&ev))) {
			frame_unref(f);
			rc = CL_ENOMEM;
			break;
		}
		ss->chunk[ss->chunk_n++] = f;
		ss->chunk_bytes += f->len;
		pool->out_bytes += f->len;
	}
	evlog_iter_free(it);
	if (rc < 0)
		return rc;
	return ss->chunk_n ? 0 : CL_ENOTFOUND;
}

/*
 * The frame for next_seq, or NULL: from the current log chunk (whose frames
 * are consecutive from next_seq), else the ring, else a new chunk read from
 * the log. Switching back to the ring restarts the lag count from now.
 */
static struct frame *sess_peek(struct sess *ss, int *err)
{
	struct frame *f;

	*err = 0;
	if (ss->chunk_i < ss->chunk_n)
		return ss->chunk[ss->chunk_i];
	f = ring_get(ss->pool->ring, ss->next_seq);
	if (f) {
		if (ss->replaying) {
			ss->replaying = 0;
			ss->lag_floor = ss->pool->ring->cum;
		}
		sess_drop_chunk(ss);
		return f;
	}
	*err = sess_load_chunk(ss);
	if (*err)
		return NULL;
	ss->replaying = 1;
	return ss->chunk[0];
}

/* Frames for seq next_seq.. into out[]; returns how many (0..16). */
static size_t sess_gather(struct sess *ss, struct frame **out, size_t *bytes, int *err)
{
	uint64_t seq = ss->next_seq;
	size_t n = 0, b = 0;
	int from_chunk;

	/* one frame per seq for everyone; a restricted push as this viewer
	 * may see it (push_for, push.h) */
	*err = 0;
	out[0] = sess_peek(ss, err);
	if (!out[0])
		return 0;
	out[0] = push_for(out[0], ss->pool->proj, ss->user);
	from_chunk = ss->chunk_n > 0;
	b = out[0]->len;
	n = 1;
	while (n < SESS_COALESCE_MAX && seq + n <= ss->pool->ring->last) {
		struct frame *f;

		if (from_chunk) {
			size_t i = ss->chunk_i + n;
			f = i < ss->chunk_n ? ss->chunk[i] : NULL;
		} else {
			f = ring_get(ss->pool->ring, seq + n);
		}
		if (!f)
			break;
		f = push_for(f, ss->pool->proj, ss->user);
		if (b + f->len + 1 > SESS_COALESCE_BYTES)
			break;
		out[n++] = f;
		b += f->len + 1;
	}
	for (size_t i = 0; i < n; i++)
		CL_ASSERT(out[i]->seq == seq + i);   /* the stream has no gap */
	*bytes = b;
	return n;
}

static void sess_consumed(struct sess *ss, size_t n)
{
	size_t i;

	if (ss->chunk_n) {
		for (i = 0; i < n; i++) {
			struct frame *f = ss->chunk[ss->chunk_i++];

			ss->chunk_bytes -= f->len;
			ss->pool->out_bytes -= f->len;
			frame_unref(f);
		}
		if (ss->chunk_i == ss->chunk_n)
			sess_drop_chunk(ss);
	}
	ss->next_seq += n;
}

/*
 * {"op":"events","events":[p1,p2,...]} around frames that jansson already
 * serialized: the members are complete JSON texts, so the array is valid
 * JSON by construction, and each push is serialized once for everyone.
 */
/*
 * A frame of len bytes was handed to lws. What the socket did not take,
 * lws copies and keeps (lws_partial_buffered) and sends before it calls
 * WRITEABLE again: that copy is memory we caused, so it stays counted
 * (at most len) until then (sess_writeable).
 */
static void sess_written(struct sess *ss, size_t len)
{
	ss->pool->m->messages_out++;
	if (lws_partial_buffered(ss->wsi)) {
		ss->lws_bytes = len;
		ss->pool->out_bytes += len;
	}
}

static const char sess_ev_head[] = "{\"op\":\"events\",\"events\":[";
static const char sess_ev_tail[] = "]}";

static int sess_write_stream(struct sess *ss)
{
	struct sess_pool *pool = ss->pool;
	struct frame *fr[SESS_COALESCE_MAX];
	size_t n, bytes = 0, len, i;
	unsigned char *p;
	int err, w;

	n = sess_gather(ss, fr, &bytes, &err);
	if (n == 0) {
		if (err) {
			slog(SLOG_ERR, "cannot feed user %llu from the log at seq %llu (%s)",
			     (unsigned long long)ss->user, (unsigned long long)ss->next_seq,
			     cl_strerror(err));
			ss->close_kind = METRICS_CLOSE_ERROR;
			lws_close_reason(ss->wsi, LWS_CLOSE_STATUS_UNEXPECTED_CONDITION,
					 (unsigned char *)"internal error", 14);
			return -1;
		}
		return 0;
	}
	if (n == 1) {
		w = lws_write(ss->wsi, fr[0]->data, fr[0]->len, LWS_WRITE_TEXT);
		if (w < (int)fr[0]->len)
			return -1;
		sess_written(ss, fr[0]->len);
		sess_consumed(ss, 1);
		return 0;
	}
	len = sizeof sess_ev_head - 1 + bytes + sizeof sess_ev_tail - 1;
	if (LWS_PRE + len > pool->scratch_cap) {
		unsigned char *nb = realloc(pool->scratch, LWS_PRE + len);

		if (!nb)
			return -1;
		pool->scratch = nb;
		pool->scratch_cap = LWS_PRE + len;
	}
	p = pool->scratch + LWS_PRE;
	memcpy(p, sess_ev_head, sizeof sess_ev_head - 1);
	p += sizeof sess_ev_head - 1;
	for (i = 0; i < n; i++) {
		if (i)
			*p++ = ',';
		memcpy(p, fr[i]->data, fr[i]->len);
		p += fr[i]->len;
	}
	memcpy(p, sess_ev_tail, sizeof sess_ev_tail - 1);
	w = lws_write(ss->wsi, pool->scratch + LWS_PRE, len, LWS_WRITE_TEXT);
	if (w < (int)len)
		return -1;
	sess_written(ss, len);
	sess_consumed(ss, n);
	return 0;
}

/*
 * Every close the server decides on (shutdown, a message too big, binary
 * frames, a slow consumer, a revoked token): send the close frame ourselves
 * and keep reading (and ignoring) until the peer answers with its own
 * close, which lws then completes. If lws sent it (lws_close_reason +
 * return -1) it would drop the socket while the client was still sending -
 * the rest of a 1 MB frame, or pipelined commands - and the reset would
 * overtake the close frame: the client saw 1006, not our code. A peer that
 * never answers is cut off by the doom timeout or the shutdown drain time.
 */
static int sess_send_close(struct sess *ss, uint16_t code, const char *reason)
{
	unsigned char buf[LWS_PRE + 2 + sizeof ss->close_reason];
	unsigned char *p = buf + LWS_PRE;
	size_t n = strlen(reason);

	if (ss->close_sent)
		return 0;
	if (n > sizeof ss->close_reason - 1)
		n = sizeof ss->close_reason - 1;
	p[0] = (unsigned char)(code >> 8);
	p[1] = (unsigned char)(code & 0xff);
	memcpy(p + 2, reason, n);
	ss->close_sent = 1;
	if (lws_write(ss->wsi, p, 2 + n, SESS_WRITE_CLOSE) < 0)
		return -1;
	return 0;
}

/*
 * The next fragment of f, the head of ss's unicast queue, at ss->frag_off
 * (SESS_FRAG_BYTES). lws writes each fragment's header into the LWS_PRE
 * bytes before it, which are payload already handed to lws (sent, or
 * copied into its buffer): hence only for a frame nobody else holds
 * (refs 1). Returns 0 when this was the last fragment (*n: its size; the
 * caller retires f), 1 when more are to come (next WRITEABLE; f stays at
 * the head and counts, whole, until then), -1 to close.
 */
static int sess_write_piece(struct sess *ss, struct frame *f, size_t *n)
{
	size_t len = f->len - ss->frag_off;
	int first = ss->frag_off == 0, last, w;

	if (len > SESS_FRAG_BYTES)
		len = SESS_FRAG_BYTES;
	last = ss->frag_off + len == f->len;
	w = lws_write(ss->wsi, f->data + ss->frag_off, len,
		      (enum lws_write_protocol)lws_write_ws_flags(LWS_WRITE_TEXT, first, last));
	if (w < (int)len)
		return -1;
	*n = len;
	if (last) {
		ss->frag_off = 0;
		return 0;
	}
	ss->frag_off += len;
	if (lws_partial_buffered(ss->wsi)) {
		ss->lws_bytes = len;
		ss->pool->out_bytes += len;
	}
	lws_callback_on_writable(ss->wsi);
	return 1;
}

int sess_writeable(struct sess *ss)
{
	struct sess_pool *pool = ss->pool;

	if (ss->doomed)
		return sess_send_close(ss, ss->close_code, ss->close_reason);
	if (ss->lws_bytes) {
		if (lws_partial_buffered(ss->wsi)) {   /* not yet: lws is still sending it */
			lws_callback_on_writable(ss->wsi);
			return 0;
		}
		pool->out_bytes -= ss->lws_bytes;
		ss->lws_bytes = 0;
	}
	if (ss->uq_head) {
		int sent;

		/*
		 * Replies go out several per callback (bounded, and only while
		 * the socket takes them without buffering): with one reply per
		 * WRITEABLE, a client pipelining commands next to a thousand
		 * subscribers got one ack per service turn and was starved.
		 */
		for (sent = 0; ss->uq_head && sent < SESS_REPLIES_PER_WRITE; sent++) {
			struct frame *f = ss->uq_head;
			size_t n = f->len;
			int w;

			if (sent && lws_send_pipe_choked(ss->wsi))
				break;
			if (f->len > SESS_FRAG_BYTES && f->refs == 1) {
				if ((w = sess_write_piece(ss, f, &n)) != 0)
					return w < 0 ? -1 : 0;
			} else {
				w = lws_write(ss->wsi, f->data, f->len, LWS_WRITE_TEXT);
				if (w < (int)f->len)
					return -1;
			}
			ss->uq_head = f->next;
			if (!ss->uq_head)
				ss->uq_tail = NULL;
			ss->uq_bytes -= f->len;
			pool->out_bytes -= f->len;
			sess_written(ss, n);
			frame_unref(f);
			if (ss->lws_bytes)
				break;
		}
		sess_check_drained(ss);
		sess_wake(ss);
		return 0;
	}
	sess_check_drained(ss);
	if (ss->shutdown && !ss->queued) {   /* held requests are answered first */
		ss->close_kind = METRICS_CLOSE_SHUTDOWN;
		return sess_send_close(ss, LWS_CLOSE_STATUS_GOINGAWAY, "server shutting down");
	}
	/* write a stream frame only when one is owed: WRITEABLE also comes
	 * when the unicast queue just drained, with nothing new to stream */
	if (sess_stream_pending(ss)) {
		if (sess_write_stream(ss) < 0)
			return -1;
		sess_wake(ss);
	}
	return 0;
}
