/*
 * ratelimit.h - request budgets: token buckets, one per connection (kept by
 * the connection's owner) and one per user id, in one table (struct
 * rl_users) that the server owns and hands to both the websocket sessions
 * (net/session.c) and the HTTP API (net/api.c). A member's requests over
 * all its websockets and all its HTTP requests thus draw from one budget
 * (--user-rate, --user-burst); each connection also has its own (--rate,
 * --burst). A request takes one token from both buckets, or from neither.
 *
 * The user table is bounded: RL_SLOTS slots (fixed at rl_users_init),
 * allocated on first use. A user lives in one of the RL_PROBE slots after
 * the hash of its id. When all of them hold other users, the one whose
 * bucket holds the most tokens is evicted; a bucket that has refilled to
 * its burst is the same as a new one, so this costs nothing unless more
 * than RL_PROBE users of one neighbourhood are mid-budget at once (then the
 * evicted one starts again with a full burst). Each lookup is O(RL_PROBE).
 *
 * Time is the caller's (a monotonic clock in microseconds: rl_mono_us).
 */
#ifndef CL_NET_RATELIMIT_H
#define CL_NET_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#define RL_SLOTS 16384        /* user buckets held at most (a power of two) */
#define RL_PROBE 8            /* slots a user may live in */
#define RL_WAIT_MAX 3600      /* the longest Retry-After */

struct rl_rate {
	double rate, burst;   /* tokens per second, and at most */
};

struct rl_bucket {
	double tokens;
	int64_t refill_us;    /* 0: not used yet (full) */
};

struct rl_slot {
	uint64_t user;
	int used;
	struct rl_bucket b;
};

struct rl_users {
	struct rl_rate rate;  /* every user's (set by the owner, kept current) */
	struct rl_slot *slot; /* nslots, allocated on first use */
	size_t nslots;
	size_t n;             /* slots used */
	uint64_t evictions;   /* users dropped to make room */
};

/* A monotonic clock, microseconds. */
int64_t rl_mono_us(void);

/* Bring b up to now: refilled at r->rate, at most r->burst (a bucket never
 * used starts full). */
void rl_refill(struct rl_bucket *b, const struct rl_rate *r, int64_t now);

/* Seconds (1..RL_WAIT_MAX) until b, refilled, holds one token; 0 if it
 * does now. */
int rl_wait(const struct rl_bucket *b, const struct rl_rate *r);

/* Take one request from b (refilled to now first): 0 if taken, else the
 * seconds until it holds one (then nothing is taken). */
int rl_take(struct rl_bucket *b, const struct rl_rate *r, int64_t now);

/*
 * Take one request from conn (its rate cr) and from user (ur): both
 * refilled to now, then one token from each if both have one. Returns 0 if
 * taken; else 1 (the connection is over its rate) or 2 (the user is, or
 * user is NULL: no bucket could be had), and nothing is taken.
 */
int rl_take2(struct rl_bucket *conn, const struct rl_rate *cr, struct rl_bucket *user,
	     const struct rl_rate *ur, int64_t now);

/* An empty table of nslots slots (a power of two, at least RL_PROBE; 0 for
 * RL_SLOTS), allocated on first use. */
void rl_users_init(struct rl_users *t, size_t nslots);
void rl_users_release(struct rl_users *t);

/* The bucket of user (added, evicting as above, if it is not held); NULL
 * without memory for the table. Valid until the next rl_user. */
struct rl_bucket *rl_user(struct rl_users *t, uint64_t user, int64_t now);

#endif
