/*
 * test_net_presence.c - net/presence.c: visible connections per user, one
 * announcement per user however many tabs, hidden never shown, pushes
 * coalesced to the net change and at most one per interval.
 */
#include "harness.h"
#include "../../net/presence.h"
#include "../../core/proj.h"

#include <stdio.h>
#include <string.h>

static struct proj *users3(void)
{
	static const char *const names[] = { "root", "alice", "bob" };
	struct proj *p = proj_new();
	struct event ev;

	for (int i = 0; i < 3; i++) {
		memset(&ev, 0, sizeof ev);
		ev.type = EV_USER_CREATED;
		ev.ts = 1790000000000000LL;
		ev.seq = ev.ids.user = (uint64_t)i + 1;
		ev.name = (struct cl_str){ names[i], strlen(names[i]) };
		ev.role = i ? ROLE_MEMBER : ROLE_ADMIN;
		CHECK_EQ_INT(proj_apply(p, &ev), 0);
	}
	return p;
}

/* The ids of a user list, as "2,3". */
static void ids_of(json_t *arr, char *out, size_t n)
{
	size_t o = 0;

	out[0] = '\0';
	for (size_t i = 0; i < json_array_size(arr) && o < n; i++)
		o += (size_t)snprintf(out + o, n - o, "%s%lld", i ? "," : "",
				      (long long)json_integer_value(
					      json_object_get(json_array_get(arr, i), "id")));
}

/* Flush at t; "arrived|left" ids, or "-" when no push. */
static void flush(struct presence *pr, struct proj *p, int64_t t, char *out, size_t n)
{
	json_t *push = presence_flush(pr, p, t);
	char a[64], l[64];

	if (!push) {
		snprintf(out, n, "-");
		return;
	}
	CHECK(strcmp(json_string_value(json_object_get(push, "op")), "presence") == 0);
	CHECK(json_object_get(push, "seq") == NULL);   /* not an event */
	ids_of(json_object_get(push, "arrived"), a, sizeof a);
	ids_of(json_object_get(push, "left"), l, sizeof l);
	snprintf(out, n, "%s|%s", a, l);
	json_decref(push);
}

static void t_join_leave(void)
{
	struct presence pr;
	struct proj *p = users3();
	char s[128];
	json_t *list, *u;
	int64_t t = 5 * PRESENCE_INTERVAL_US;

	presence_init(&pr);
	flush(&pr, p, t, s, sizeof s);
	CHECK(strcmp(s, "-") == 0);                  /* nothing yet */
	CHECK_EQ_INT(presence_add(&pr, 2), 0);
	CHECK_EQ_INT(presence_add(&pr, 2), 0);       /* a second tab */
	flush(&pr, p, t, s, sizeof s);
	CHECK(strcmp(s, "2|") == 0);                 /* the first push goes at once */
	list = presence_list(&pr, p);
	REQUIRE(json_array_size(list) == 1);
	u = json_array_get(list, 0);
	CHECK(strcmp(json_string_value(json_object_get(u, "name")), "alice") == 0);
	json_decref(list);
	presence_remove(&pr, 2);                     /* one tab closes: still there */
	flush(&pr, p, t + 2 * PRESENCE_INTERVAL_US, s, sizeof s);
	CHECK(strcmp(s, "-") == 0);
	CHECK_EQ_INT(presence_add(&pr, 3), 0);
	presence_remove(&pr, 2);
	/* within the interval: held */
	flush(&pr, p, t + 2 * PRESENCE_INTERVAL_US + 10, s, sizeof s);
	CHECK(strcmp(s, "3|2") == 0);                /* the last push was at t: due */
	flush(&pr, p, t + 2 * PRESENCE_INTERVAL_US + 20, s, sizeof s);
	CHECK(strcmp(s, "-") == 0);
	presence_remove(&pr, 3);
	flush(&pr, p, t + 2 * PRESENCE_INTERVAL_US + 30, s, sizeof s);
	CHECK(strcmp(s, "-") == 0);                  /* not yet: the interval */
	flush(&pr, p, t + 3 * PRESENCE_INTERVAL_US + 10, s, sizeof s);
	CHECK(strcmp(s, "|3") == 0);
	CHECK_EQ_INT(pr.n, 0);                       /* nobody kept */
	presence_remove(&pr, 3);                     /* more leaves than joins: ignored */
	presence_remove(&pr, 77);
	CHECK(!pr.dirty);
	presence_release(&pr);
	proj_free(p);
}

/* A user who opens and closes many connections between two pushes is in
 * at most one of them; the pushes are at most one per interval. */
static void t_churn_coalesced(void)
{
	struct presence pr;
	struct proj *p = users3();
	char s[128];
	int64_t t = 10 * PRESENCE_INTERVAL_US;
	unsigned pushes = 0;

	presence_init(&pr);
	CHECK_EQ_INT(presence_add(&pr, 1), 0);
	flush(&pr, p, t, s, sizeof s);
	CHECK(strcmp(s, "1|") == 0);
	/* 10000 joins and leaves of bob, a flush asked after each one, over
	 * 2.5 intervals */
	for (int i = 0; i < 10000; i++) {
		int64_t now = t + 1 + (int64_t)i * (PRESENCE_INTERVAL_US / 4000);

		CHECK_EQ_INT(presence_add(&pr, 3), 0);
		if (i % 2)
			presence_remove(&pr, 3);
		flush(&pr, p, now, s, sizeof s);
		if (strcmp(s, "-") != 0) {
			pushes++;
			CHECK(strcmp(s, "3|") == 0 || strcmp(s, "|3") == 0);
		}
		if (i % 2 == 0)
			presence_remove(&pr, 3);
	}
	CHECK(pushes <= 3);
	CHECK_EQ_INT(pr.n <= 2, 1);
	presence_release(&pr);
	proj_free(p);
}

int main(void)
{
	RUN(t_join_leave);
	RUN(t_churn_coalesced);
	return harness_done();
}
