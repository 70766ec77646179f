/*
 * session.h - one websocket session: who it is (auth at the handshake), what
 * it sent (reassembly under the size cap, rate limit), and what it is owed
 * (a FIFO of unicast reply frames, and for subscribers a cursor into the
 * push ring or, when it is further behind than the ring, a bounded chunk
 * read back from the log).
 *
 * Limits live here, in one place, each with its close code or error:
 *   message > max_msg            close 1009 (from the first oversize chunk)
 *   binary frame                 close 1003 "text frames only"
 *   (invalid UTF-8 in text: lws closes 1007 itself)
 *   requests over the rate       error reply "rate_limited", stays open
 *   (the connection's bucket, and its user's, shared by all its connections
 *   and its HTTP API requests: net/ratelimit.h)
 *   owed bytes > max_queue, or
 *   all sessions > max_memory    close 1008 "slow consumer: resume from seq N"
 *                                (beyond the frame being written; the pool
 *                                limit only for a session that owes more
 *                                than SESS_POOL_FAIR beyond it)
 *   an answer that does not fit  the owner holds the request and those after
 *   (sess_room)                  it, and stops reading the socket, until the
 *                                session has drained (sess_pool.on_drained);
 *                                if the session owes nothing, the sessions
 *                                that owe most are closed as slow consumers
 *                                (sess_pool_reclaim), else it is shortened
 *                                or refused "unavailable"
 *   token revoked                close 1008 "token revoked"
 * A doomed session's queues are freed at once; it gets the close frame when
 * its socket next drains, or is dropped after SESS_DOOM_SECS.
 *
 * The sessions live in a struct sess_pool, which owns the list, the counts
 * and the buffers they share; the server (net/server.c) wires a pool to
 * the log, the projection and the push ring, and is told of each complete
 * message through a hook. A struct sess is the lws per-session data: lws
 * allocates and frees it.
 */
#ifndef CL_NET_SESSION_H
#define CL_NET_SESSION_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "../core/proj.h"
#include "../store/evlog.h"
#include "metrics.h"
#include "push.h"
#include "ratelimit.h"

struct sess;

/* The per-session limits (docs/operations.md: the flags of the same names). */
struct sess_limits {
	double rate, burst;        /* requests per second and burst */
	size_t max_msg;            /* inbound message bytes */
	size_t max_queue;          /* one session's owed bytes */
	size_t max_memory;         /* all sessions' owed bytes */
	int sndbuf;                /* SO_SNDBUF, 0 = kernel default */
};

/*
 * A complete message from ss (len bytes at buf, valid for the call);
 * limited: it is over the rate limit and must be refused as rate_limited.
 * Returns 0 if the message was queued as a request (the owner then calls
 * sess_request_done once that request is finished), 1 if it was handled
 * without queueing, -1 to close the session (out of memory).
 */
typedef int (*sess_message_fn)(void *arg, struct sess *ss, const void *buf, size_t len,
			       int limited);
/* ss, with requests still queued (sess_request_done not yet called for
 * them), is closing: forget it in those requests. */
typedef void (*sess_forget_fn)(void *arg, struct sess *ss);
/* ss, which holds requests back (ss->held_head), owes nothing any more. */
typedef void (*sess_drained_fn)(void *arg, struct sess *ss);

struct sess_pool {
	/* wiring: set by the owner before the first session, kept current */
	struct sess_limits lim;
	struct metrics *m;             /* counters the sessions bump */
	struct rl_users *users;        /* the users' request buckets (--user-rate),
	                                  shared with the HTTP API: the server's */
	struct evlog *log;             /* catch-up reads for lagging subscribers */
	struct proj *proj;             /* the state replayed pushes carry */
	const struct ring *ring;       /* published pushes: ring->last is the last
	                                  seq published, the end of every stream */
	sess_message_fn on_message;
	sess_forget_fn on_forget;
	sess_drained_fn on_drained;
	/* before a replay is built from proj: make what proj shows durable
	 * (net/server.c waits for the sync); nonzero: it cannot, build none.
	 * NULL: proj is always durable */
	int (*on_replay)(void *arg);
	void *arg;                     /* for the hooks */

	/* the pool's own */
	struct sess *head;             /* every established session */
	unsigned n;                    /* ... how many */
	unsigned nsubs;                /* ... subscribed: pushes are built only if > 0 */
	size_t out_bytes;              /* unicast queues + replay chunks + what lws
	                                  still buffers, all sessions */
	size_t reserved;               /* answers built, not yet queued (sess_reserve) */
	const size_t *also;            /* bytes held outside the sessions that count in
	                                  max_memory too (the HTTP API's requests and
	                                  replies: api_pool.bytes), or NULL */
	int stopping;                  /* shutting down: nothing more is read */
	unsigned char *scratch;        /* LWS_PRE + one coalesced frame */
	size_t scratch_cap;
	struct pbuf fbuf;              /* serializing replies and replayed pushes */
	char junk[65536];              /* input read and dropped at close */
};

/* Free the pool's buffers (the sessions are lws's: close them first). */
void sess_pool_release(struct sess_pool *pool);

/* New pushes were published: each subscriber checks its lag and writes. */
void sess_pool_published(struct sess_pool *pool);
/* Token token was revoked: close every session that uses it (1008). */
void sess_pool_revoked(struct sess_pool *pool, uint64_t token);
/* Shutdown: read nothing more; each session sends what is queued, then
 * closes 1001. */
void sess_pool_shutdown(struct sess_pool *pool);
/* Stop reading requests (before the last flush of a shutdown). */
void sess_pool_stop_reading(struct sess_pool *pool);

#define SESS_DOOM_SECS 10
#define SESS_COALESCE_MAX 16            /* pushes per "events" frame */
#define SESS_COALESCE_BYTES (64 * 1024) /* ... and bytes */
#define SESS_CHUNK_EVENTS 256           /* log catch-up: events per read */
#define SESS_CHUNK_BYTES (256 * 1024)   /* ... and bytes */
#define SESS_POOL_FAIR (64 * 1024)      /* see the limits above */

struct sess {
	struct sess_pool *pool;
	struct lws *wsi;
	struct sess *prev, *next;      /* the pool's list */
	uint64_t user, token;          /* authenticated at the handshake */
	int linked;

	/* inbound */
	unsigned char *rx;             /* reassembly of multi-chunk messages */
	size_t rxlen, rxcap;
	int in_msg;                    /* inside a message spanning callbacks */
	struct rl_bucket bucket;       /* the connection's rate (lim.rate, lim.burst) */
	unsigned queued;               /* requests of ours the owner still holds */

	/* outbound: unicast replies, written before stream frames */
	struct frame *uq_head, *uq_tail;
	size_t uq_bytes;
	size_t lws_bytes;              /* the last frame written, while lws buffers
	                                  part of it (lws_partial_buffered) */
	size_t frag_off;               /* uq_head goes out in fragments: bytes of it
	                                  written so far (session.c, SESS_FRAG_BYTES) */
	size_t reserved;               /* answers built for us, not yet queued */

	/* requests the pool's owner holds back, in order, until we drain
	 * (owned by the owner; the session only keeps them and counts them in
	 * `queued`); while any are held the socket is not read */
	void *held_head, *held_tail;
	uint64_t wait_mark;            /* the owner's: batch in which we began to wait */

	/* subscription */
	int subscribed;
	uint64_t next_seq;             /* first seq not yet written */
	uint64_t lag_floor;            /* ring cum when we (re)joined the ring */
	int replaying;                 /* fed from the log, not the ring */
	struct frame **chunk;          /* log catch-up frames */
	size_t chunk_n, chunk_i, chunk_bytes;

	/* presence (the owner's: net/presence.h): joined with the presence op,
	 * and counted as visible there */
	uint8_t pres_watch, pres_visible;

	/* closing */
	int doomed, shutdown;
	int close_sent;             /* our close frame went out; waiting for the peer's */
	int close_kind;                /* enum metrics_close */
	uint16_t close_code;
	char close_reason[124];
};

/*
 * Handshake auth for CONFIRM_UPGRADE / ESTABLISHED: the token is the path
 * segment after the last "/ws/" (any prefix, "/route/ws/<token>") or an
 * "Authorization: Bearer <token>" header. Returns 0 with the ids, or the
 * HTTP status to refuse with: 404 (not a /ws/ path), 401 (no token),
 * 403 (unknown or revoked token, or too long).
 */
int sess_auth(const struct proj *p, struct lws *wsi, uint64_t *user, uint64_t *token);

/*
 * The pure part of sess_auth (no lws, no projection; also the fuzz target
 * tests/fuzz/fuzz_url_token.c): uri is the request path, auth the
 * Authorization header value (auth_len bytes, not NUL-terminated) or NULL.
 * Returns 0 with *tok and *tlen (tlen 0: no token; tlen > TOKEN_MAX_INPUT: too
 * long), the token copied into buf (cap bytes) when needed; or 404 when uri
 * is not a websocket endpoint.
 */
int sess_token_parse(const char *uri, const char *auth, size_t auth_len,
		     char *buf, size_t cap, const char **tok, size_t *tlen);

/* ESTABLISHED: initialise the lws-allocated ss and add it to pool. */
void sess_open(struct sess *ss, struct sess_pool *pool, struct lws *wsi,
	       uint64_t user, uint64_t token);
/* CLOSED: count the reason, free queues, unlink. */
void sess_closed(struct sess *ss);

/* RECEIVE: one chunk. Returns -1 to close (close reason already set). */
int sess_receive(struct sess *ss, const void *in, size_t len);
/* SERVER_WRITEABLE: at most one lws_write. Returns -1 to close. */
int sess_writeable(struct sess *ss);

/* The owner finished one request that on_message queued. */
void sess_request_done(struct sess *ss);

/* Queue a unicast frame (takes the caller's reference). */
void sess_send(struct sess *ss, struct frame *f);
/* Serialize j and queue it. */
void sess_send_json(struct sess *ss, const json_t *j);

/* Start streaming from seq next (after a subscribe), or stop. */
void sess_subscribe(struct sess *ss, uint64_t next);
void sess_unsubscribe(struct sess *ss);

/* Close with code and reason once writable; frees its queues now. */
void sess_doom(struct sess *ss, int kind, uint16_t code, const char *reason);

/* Bytes this session is owed (unicast + chunk + stream lag + lws's). */
size_t sess_owed(const struct sess *ss);

/* Room within --max-memory for an answer that belongs to no session (an
 * HTTP API request), at most cap. */
size_t sess_pool_room(const struct sess_pool *pool, size_t cap);

/*
 * Answer memory. sess_room: the bytes an answer for ss may take now, at
 * most cap: the pool's room under max_memory (counting what is reserved),
 * and, if ss owes anything (replies queued, being written, or reserved),
 * its room under max_queue; *owes says whether it does (an answer that does
 * not fit may then wait for ss to drain). sess_reserve: n bytes were built
 * for ss and will be sent (sess_unreserve just before sess_send, or when
 * the answer is dropped).
 */
size_t sess_room(const struct sess *ss, size_t cap, int *owes);
void sess_reserve(struct sess *ss, size_t n);
/*
 * An answer of need bytes found no room in max_memory although its session
 * (keep) owes nothing: close, as slow consumers, the sessions that owe the
 * most beyond their head frame (more than SESS_POOL_FAIR) until it fits or
 * none is left. Returns how many were closed (their queues are freed now).
 */
int sess_pool_reclaim(struct sess_pool *pool, size_t need, const struct sess *keep);
void sess_unreserve(struct sess *ss, size_t n);
/* The owner holds requests of ss back (on) or released them (off): the
 * socket is not read meanwhile; when ss drains, on_drained is called. */
void sess_hold(struct sess *ss, int on);

#endif
