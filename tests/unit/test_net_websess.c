/*
 * test_net_websess.c - net/websess.c: the per-user lists beside the hash
 * table: a sign-in over WEBSESS_PER_USER replaces that user's oldest and
 * nobody else's, every way a session ends leaves its user's list, the
 * WEBSESS_MAX bound holds, and a reloaded journal rebuilds the lists.
 */
#include "harness.h"
#include "../../net/websess.h"
#include "../../core/cl.h"

#include <stdio.h>
#include <string.h>

#define DAY_US (86400LL * 1000000)

static int ended(struct websess_store *st, const char *cookie)
{
	return websess_end(st, cookie, strlen(cookie));
}

static void t_per_user_cap_replaces_only_that_users_oldest(void)
{
	struct websess_store st;
	char c[WEBSESS_PER_USER + 1][WEBSESS_LEN + 1], other[WEBSESS_LEN + 1];
	int64_t exp;

	REQUIRE(websess_init(&st, 30 * DAY_US) == 0);
	CHECK_EQ_INT(websess_new(&st, 8, 80, 1000, other, &exp), 0);
	for (int i = 0; i <= WEBSESS_PER_USER; i++) {
		CHECK_EQ_INT(websess_new(&st, 7, 70, 2000 + i, c[i], &exp), 0);
		CHECK_EQ_INT(exp, 2000 + i + 30 * DAY_US);
		CHECK_EQ_INT(websess_of_user(&st, 7), i < WEBSESS_PER_USER ? i + 1 : WEBSESS_PER_USER);
	}
	CHECK_EQ_INT(st.n, WEBSESS_PER_USER + 1);
	CHECK_EQ_INT(st.users, 2);
	CHECK_EQ_INT(websess_of_user(&st, 8), 1);
	CHECK_EQ_INT(ended(&st, c[0]), 0);       /* the oldest was replaced */
	CHECK_EQ_INT(ended(&st, c[1]), 1);       /* the others are there */
	CHECK_EQ_INT(ended(&st, c[WEBSESS_PER_USER]), 1);
	CHECK_EQ_INT(websess_of_user(&st, 7), WEBSESS_PER_USER - 2);
	/* the oldest is by expiry, wherever it sits in the list */
	CHECK_EQ_INT(websess_new(&st, 7, 70, 1, c[0], &exp), 0);      /* expires first */
	CHECK_EQ_INT(websess_new(&st, 7, 70, 9000, c[1], &exp), 0);
	CHECK_EQ_INT(websess_of_user(&st, 7), WEBSESS_PER_USER);
	CHECK_EQ_INT(websess_new(&st, 7, 70, 9001, c[WEBSESS_PER_USER], &exp), 0);
	CHECK_EQ_INT(ended(&st, c[0]), 0);
	CHECK_EQ_INT(ended(&st, c[2]), 1);
	CHECK_EQ_INT(ended(&st, other), 1);
	CHECK_EQ_INT(websess_of_user(&st, 8), 0);
	CHECK_EQ_INT(st.users, 1);               /* user 8's empty list is gone */
	websess_release(&st);
}

static void t_every_end_leaves_the_users_list(void)
{
	struct websess_store st;
	char c[WEBSESS_LEN + 1];
	int64_t exp;

	REQUIRE(websess_init(&st, DAY_US) == 0);
	for (uint64_t u = 1; u <= 50; u++)
		for (uint64_t k = 0; k < 4; k++)   /* tokens 10u (3 sessions) and 10u+1 (1) */
			CHECK_EQ_INT(websess_new(&st, u, 10 * u + (k == 3), 100, c, &exp), 0);
	CHECK_EQ_INT(st.n, 200);
	CHECK_EQ_INT(st.users, 50);
	CHECK_EQ_INT(websess_revoked(&st, 10 * 5), 3);
	CHECK_EQ_INT(websess_of_user(&st, 5), 1);
	CHECK_EQ_INT(websess_revoked(&st, 10 * 5 + 1), 1);
	CHECK_EQ_INT(websess_of_user(&st, 5), 0);
	CHECK_EQ_INT(st.users, 49);
	CHECK_EQ_INT(websess_revoked(&st, 10 * 5), 0);
	/* the last one, c, was user 50's on token 501 */
	CHECK_EQ_INT(ended(&st, c), 1);
	CHECK_EQ_INT(websess_of_user(&st, 50), 3);
	CHECK_EQ_INT(ended(&st, c), 0);
	CHECK_EQ_INT(st.n, 195);
	websess_release(&st);
}

static void t_the_table_bound_holds(void)
{
	struct websess_store st;
	char c[WEBSESS_LEN + 1];
	int64_t exp;
	int rc = 0;

	REQUIRE(websess_init(&st, DAY_US) == 0);
	for (int i = 0; i < WEBSESS_MAX && rc == 0; i++)
		rc = websess_new(&st, (uint64_t)(i % 5000) + 1, 1, 10, c, &exp);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(st.n, WEBSESS_MAX);
	CHECK_EQ_INT(st.users, 5000);
	CHECK_EQ_INT(websess_of_user(&st, 1), WEBSESS_MAX / 5000);
	/* full of unexpired sessions: refused, a new user and one at its cap alike */
	CHECK_EQ_INT(websess_new(&st, 9999, 1, 20, c, &exp), CL_ETOOBIG);
	CHECK_EQ_INT(websess_of_user(&st, 9999), 0);
	CHECK_EQ_INT(st.n, WEBSESS_MAX);
	/* once they expired: swept, and the lists with them */
	CHECK_EQ_INT(websess_new(&st, 9999, 1, 10 + DAY_US, c, &exp), 0);
	CHECK_EQ_INT(st.n, 1);
	CHECK_EQ_INT(st.users, 1);
	CHECK_EQ_INT(websess_of_user(&st, 1), 0);
	CHECK_EQ_INT(websess_of_user(&st, 9999), 1);
	websess_release(&st);
}

static void t_a_reloaded_journal_rebuilds_the_lists(void)
{
	struct websess_store st;
	char c[WEBSESS_PER_USER][WEBSESS_LEN + 1], x[WEBSESS_LEN + 1];
	const char *dir = harness_tmpdir();
	int64_t exp;

	REQUIRE(websess_init(&st, DAY_US) == 0);
	REQUIRE(websess_open(&st, dir, "epoch-a", 0) == 0);
	for (int i = 0; i < WEBSESS_PER_USER; i++)
		CHECK_EQ_INT(websess_new(&st, 3, 30, 100 + i, c[i], &exp), 0);
	CHECK_EQ_INT(websess_new(&st, 4, 40, 100, x, &exp), 0);
	CHECK_EQ_INT(ended(&st, c[5]), 1);
	websess_release(&st);

	REQUIRE(websess_init(&st, DAY_US) == 0);
	REQUIRE(websess_open(&st, dir, "epoch-a", 200) == 0);
	CHECK_EQ_INT(st.n, WEBSESS_PER_USER);
	CHECK_EQ_INT(st.users, 2);
	CHECK_EQ_INT(websess_of_user(&st, 3), WEBSESS_PER_USER - 1);
	CHECK_EQ_INT(websess_new(&st, 3, 30, 300, c[5], &exp), 0);   /* up to the cap */
	CHECK_EQ_INT(websess_new(&st, 3, 30, 301, x, &exp), 0);      /* over: c[0] goes */
	CHECK_EQ_INT(websess_of_user(&st, 3), WEBSESS_PER_USER);
	CHECK_EQ_INT(ended(&st, c[0]), 0);
	CHECK_EQ_INT(ended(&st, c[1]), 1);
	CHECK_EQ_INT(websess_of_user(&st, 4), 1);
	websess_release(&st);
}

int main(void)
{
	RUN(t_per_user_cap_replaces_only_that_users_oldest);
	RUN(t_every_end_leaves_the_users_list);
	RUN(t_the_table_bound_holds);
	RUN(t_a_reloaded_journal_rebuilds_the_lists);
	return harness_done();
}
