/*
 * ratelimit.c - token buckets and the bounded table of users' buckets (see
 * ratelimit.h).
 */
#include "ratelimit.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t rl_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void rl_refill(struct rl_bucket *b, const struct rl_rate *r, int64_t now)
{
	if (b->refill_us == 0) {
		b->tokens = r->burst;
		b->refill_us = now;
		return;
	}
	if (now > b->refill_us)
		b->tokens += (double)(now - b->refill_us) * r->rate / 1e6;
	if (b->tokens > r->burst)
		b->tokens = r->burst;
	b->refill_us = now;
}

int rl_wait(const struct rl_bucket *b, const struct rl_rate *r)
{
	double wait;

	if (b->refill_us == 0 || b->tokens >= 1.0)
		return 0;
	wait = r->rate > 0 ? ceil((1.0 - b->tokens) / r->rate) : RL_WAIT_MAX;
	return wait < 1 ? 1 : wait > RL_WAIT_MAX ? RL_WAIT_MAX : (int)wait;
}

int rl_take(struct rl_bucket *b, const struct rl_rate *r, int64_t now)
{
	rl_refill(b, r, now);
	if (b->tokens < 1.0)
		return rl_wait(b, r);
	b->tokens -= 1.0;
	return 0;
}

int rl_take2(struct rl_bucket *conn, const struct rl_rate *cr, struct rl_bucket *user,
	     const struct rl_rate *ur, int64_t now)
{
	rl_refill(conn, cr, now);
	if (conn->tokens < 1.0)
		return 1;
	if (!user)
		return 2;
	rl_refill(user, ur, now);
	if (user->tokens < 1.0)
		return 2;
	conn->tokens -= 1.0;
	user->tokens -= 1.0;
	return 0;
}

void rl_users_init(struct rl_users *t, size_t nslots)
{
	memset(t, 0, sizeof *t);
	if (nslots == 0)
		nslots = RL_SLOTS;
	while (nslots & (nslots - 1))      /* down to a power of two */
		nslots &= nslots - 1;
	t->nslots = nslots < RL_PROBE ? RL_PROBE : nslots;
}

void rl_users_release(struct rl_users *t)
{
	free(t->slot);
	t->slot = NULL;
	t->n = 0;
}

/* The first slot user may live in (Fibonacci hashing of the id). */
static size_t rl_home(const struct rl_users *t, uint64_t user)
{
	return (size_t)((user * UINT64_C(0x9E3779B97F4A7C15)) >> 32) & (t->nslots - 1);
}

struct rl_bucket *rl_user(struct rl_users *t, uint64_t user, int64_t now)
{
	size_t home, i, at, free_at = (size_t)-1, fullest = (size_t)-1;
	double most = -1.0;
	struct rl_slot *s;

	if (!t->slot && !(t->slot = calloc(t->nslots, sizeof *t->slot)))
		return NULL;
	home = rl_home(t, user);
	for (i = 0; i < RL_PROBE; i++) {
		at = (home + i) & (t->nslots - 1);
		s = &t->slot[at];
		if (!s->used) {
			if (free_at == (size_t)-1)
				free_at = at;
			continue;
		}
		if (s->user == user)
			return &s->b;
		rl_refill(&s->b, &t->rate, now);
		if (s->b.tokens > most) {
			most = s->b.tokens;
			fullest = at;
		}
	}
	if (free_at != (size_t)-1) {
		at = free_at;
		t->n++;
	} else {
		at = fullest;
		t->evictions++;
	}
	s = &t->slot[at];
	s->used = 1;
	s->user = user;
	memset(&s->b, 0, sizeof s->b);     /* full at its first take */
	return &s->b;
}
