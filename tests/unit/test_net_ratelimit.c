/* test_net_ratelimit.c - net/ratelimit.c: token buckets and the bounded
 * per-user table (time is injected: microseconds given to each call). */
#include "harness.h"
#include "../../net/ratelimit.h"

#define SEC 1000000LL

static void t_bucket_starts_full_and_refills(void)
{
	struct rl_rate r = { 2, 5 };     /* 2/s, burst 5 */
	struct rl_bucket b = { 0, 0 };
	int i;

	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(rl_take(&b, &r, 10 * SEC), 0);
	CHECK_EQ_INT(rl_take(&b, &r, 10 * SEC), 1);     /* 1 token in 0.5 s: Retry-After 1 */
	CHECK_EQ_INT(rl_take(&b, &r, 10 * SEC + SEC / 2), 0);
	CHECK(rl_take(&b, &r, 10 * SEC + SEC / 2) > 0);
	/* a long pause refills to the burst, not beyond */
	for (i = 0; i < 5; i++)
		CHECK_EQ_INT(rl_take(&b, &r, 100 * SEC), 0);
	CHECK(rl_take(&b, &r, 100 * SEC) > 0);
	/* a clock that goes back adds nothing */
	CHECK(rl_take(&b, &r, 50 * SEC) > 0);
}

static void t_wait_is_the_time_to_one_token(void)
{
	struct rl_rate slow = { 0.01, 1 }, none = { 0, 1 };
	struct rl_bucket b = { 0, 0 };

	CHECK_EQ_INT(rl_wait(&b, &slow), 0);           /* unused: full */
	CHECK_EQ_INT(rl_take(&b, &slow, SEC), 0);
	CHECK_EQ_INT(rl_take(&b, &slow, SEC), 100);    /* 1 token at 0.01/s */
	CHECK_EQ_INT(rl_take(&b, &slow, 51 * SEC), 50);
	b.refill_us = 0;
	CHECK_EQ_INT(rl_take(&b, &none, SEC), 0);
	CHECK_EQ_INT(rl_take(&b, &none, 2 * SEC), RL_WAIT_MAX);  /* never: capped */
}

static void t_take2_takes_both_or_neither(void)
{
	struct rl_rate cr = { 1, 3 }, ur = { 1, 2 };
	struct rl_bucket c1 = { 0, 0 }, c2 = { 0, 0 }, u = { 0, 0 };

	CHECK_EQ_INT(rl_take2(&c1, &cr, &u, &ur, SEC), 0);
	CHECK_EQ_INT(rl_take2(&c2, &cr, &u, &ur, SEC), 0);
	/* the user's burst of 2 is spent over both connections */
	CHECK_EQ_INT(rl_take2(&c1, &cr, &u, &ur, SEC), 2);
	CHECK_EQ_INT(rl_take2(&c2, &cr, &u, &ur, SEC), 2);
	/* ... and the refusals took nothing from the connections */
	CHECK(c1.tokens == 2.0 && c2.tokens == 2.0);
	/* a connection over its own rate: 1, the user's budget untouched */
	c1.tokens = 0.5;
	c1.refill_us = 2 * SEC;
	CHECK_EQ_INT(rl_take2(&c1, &cr, &u, &ur, 2 * SEC), 1);
	CHECK_EQ_INT(rl_take2(&c2, &cr, &u, &ur, 2 * SEC), 0);
	CHECK(u.tokens == 0.0);          /* 1 refilled in 1 s, taken by c2 only */
	CHECK_EQ_INT(rl_take2(&c2, &cr, &u, &ur, 2 * SEC), 2);
	/* no user bucket (out of memory): refused as the user's */
	CHECK_EQ_INT(rl_take2(&c2, &cr, NULL, &ur, 2 * SEC), 2);
}

static void t_users_have_one_bucket_each(void)
{
	struct rl_users t;
	struct rl_bucket *a, *b;
	uint64_t u;

	rl_users_init(&t, 64);
	t.rate.rate = 1;
	t.rate.burst = 3;
	a = rl_user(&t, 7, SEC);
	REQUIRE(a != NULL);
	CHECK_EQ_INT(rl_take(a, &t.rate, SEC), 0);
	CHECK_EQ_INT(rl_take(rl_user(&t, 7, SEC), &t.rate, SEC), 0);
	CHECK_EQ_INT(rl_take(rl_user(&t, 7, SEC), &t.rate, SEC), 0);
	CHECK(rl_take(rl_user(&t, 7, SEC), &t.rate, SEC) > 0);    /* one budget */
	b = rl_user(&t, 8, SEC);
	REQUIRE(b != NULL);
	CHECK_EQ_INT(rl_take(b, &t.rate, SEC), 0);                /* its own */
	CHECK_EQ_INT(t.n, 2);
	CHECK_EQ_INT(t.evictions, 0);
	/* huge ids are just keys: no table grows with them */
	for (u = UINT64_MAX - 20; u < UINT64_MAX; u++)
		CHECK(rl_user(&t, u, SEC) != NULL);
	CHECK(t.n <= t.nslots);
	CHECK_EQ_INT(t.nslots, 64);
	rl_users_release(&t);
}

static void t_table_is_bounded_and_evicts_the_fullest(void)
{
	struct rl_users t;
	struct rl_bucket *b;
	uint64_t u;
	int i, spent = 0;

	rl_users_init(&t, RL_PROBE);     /* the smallest: one neighbourhood */
	CHECK_EQ_INT(t.nslots, RL_PROBE);
	t.rate.rate = 1;
	t.rate.burst = 10;
	/* RL_PROBE users spend their whole burst */
	for (u = 1; u <= RL_PROBE; u++) {
		b = rl_user(&t, u, SEC);
		REQUIRE(b != NULL);
		for (i = 0; i < 10; i++)
			spent += rl_take(b, &t.rate, SEC) == 0;
	}
	CHECK_EQ_INT(spent, 10 * RL_PROBE);
	CHECK_EQ_INT(t.n, RL_PROBE);
	/* user 3 has refilled a little more (it rests while the others spend) */
	for (u = 1; u <= RL_PROBE; u++)
		if (u != 3)
			rl_take(rl_user(&t, u, 3 * SEC), &t.rate, 3 * SEC);
	/* one user more: the table stays at RL_PROBE, and the fullest (user 3)
	 * is the one evicted; the others keep their spent buckets */
	b = rl_user(&t, 1000, 3 * SEC);
	REQUIRE(b != NULL);
	CHECK_EQ_INT(t.n, RL_PROBE);
	CHECK_EQ_INT(t.evictions, 1);
	CHECK_EQ_INT(rl_take(b, &t.rate, 3 * SEC), 0);
	for (u = 1; u <= RL_PROBE; u++) {
		if (u == 3)
			continue;
		b = rl_user(&t, u, 3 * SEC);
		/* 2 s refilled 2 tokens, one was taken above: 1 left, then none */
		CHECK_EQ_INT(rl_take(b, &t.rate, 3 * SEC), 0);
		CHECK(rl_take(b, &t.rate, 3 * SEC) > 0);
	}
	CHECK_EQ_INT(t.evictions, 1);
	/* user 3 comes back: it evicts someone and starts full */
	b = rl_user(&t, 3, 3 * SEC);
	CHECK_EQ_INT(t.evictions, 2);
	for (i = 0; i < 10; i++)
		CHECK_EQ_INT(rl_take(b, &t.rate, 3 * SEC), 0);
	/* a flood of new ids never grows the table */
	for (u = 5000; u < 105000; u++)
		CHECK(rl_user(&t, u, 4 * SEC) != NULL);
	CHECK_EQ_INT(t.n, RL_PROBE);
	rl_users_release(&t);
}

static void t_a_bucket_refilled_to_full_is_lost_for_nothing(void)
{
	struct rl_users t;
	struct rl_bucket *b;
	uint64_t u;

	rl_users_init(&t, RL_PROBE);
	t.rate.rate = 1;
	t.rate.burst = 2;
	for (u = 1; u <= RL_PROBE; u++)
		rl_take(rl_user(&t, u, SEC), &t.rate, SEC);
	/* user 9 evicts one that had refilled to its burst; a later user gets
	 * the same answers it would have had in an unbounded table */
	b = rl_user(&t, 9, 10 * SEC);
	CHECK_EQ_INT(t.evictions, 1);
	CHECK_EQ_INT(rl_take(b, &t.rate, 10 * SEC), 0);
	CHECK_EQ_INT(rl_take(b, &t.rate, 10 * SEC), 0);
	CHECK(rl_take(b, &t.rate, 10 * SEC) > 0);
	/* every first user, evicted or not, has exactly its burst, as it would
	 * in an unbounded table (each evicted one was full) */
	for (u = 1; u <= RL_PROBE; u++) {
		CHECK_EQ_INT(rl_take(rl_user(&t, u, 10 * SEC), &t.rate, 10 * SEC), 0);
		CHECK_EQ_INT(rl_take(rl_user(&t, u, 10 * SEC), &t.rate, 10 * SEC), 0);
		CHECK(rl_take(rl_user(&t, u, 10 * SEC), &t.rate, 10 * SEC) > 0);
	}
	rl_users_release(&t);
}

static void t_init_rounds_the_size(void)
{
	struct rl_users t;

	rl_users_init(&t, 0);
	CHECK_EQ_INT(t.nslots, RL_SLOTS);
	rl_users_init(&t, 100);
	CHECK_EQ_INT(t.nslots, 64);
	rl_users_init(&t, 3);
	CHECK_EQ_INT(t.nslots, RL_PROBE);
	CHECK(t.slot == NULL);           /* allocated on first use */
	rl_users_release(&t);
}

int main(void)
{
	RUN(t_bucket_starts_full_and_refills);
	RUN(t_wait_is_the_time_to_one_token);
	RUN(t_take2_takes_both_or_neither);
	RUN(t_users_have_one_bucket_each);
	RUN(t_table_is_bounded_and_evicts_the_fullest);
	RUN(t_a_bucket_refilled_to_full_is_lost_for_nothing);
	RUN(t_init_rounds_the_size);
	return harness_done();
}
