/*
 * presence.c - per-user visible connection counts and the coalesced
 * presence pushes (presence.h says what and why).
 *
 * The table is an array sorted by user id: a join or a leave is a binary
 * search, and a push walks it once. A user stays in it while it has a
 * visible connection or is still announced; presence_flush drops the rest.
 */
#include "presence.h"

#include <stdlib.h>
#include <string.h>

void presence_init(struct presence *pr)
{
	memset(pr, 0, sizeof *pr);
}

void presence_release(struct presence *pr)
{
	free(pr->u);
	presence_init(pr);
}

static size_t pos_of(const struct presence *pr, uint64_t user)
{
	size_t lo = 0, hi = pr->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (pr->u[mid].user < user)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int presence_add(struct presence *pr, uint64_t user)
{
	size_t i = pos_of(pr, user);

	if (i == pr->n || pr->u[i].user != user) {
		if (pr->n == pr->cap) {
			size_t ncap = pr->cap ? pr->cap * 2 : 16;
			struct presence_user *nu = realloc(pr->u, ncap * sizeof *nu);

			if (!nu)
				return CL_ENOMEM;
			pr->u = nu;
			pr->cap = ncap;
		}
		memmove(&pr->u[i + 1], &pr->u[i], (pr->n - i) * sizeof *pr->u);
		pr->u[i] = (struct presence_user){ .user = user };
		pr->n++;
	}
	if (pr->u[i].visible++ == 0)
		pr->dirty = 1;
	return 0;
}

void presence_remove(struct presence *pr, uint64_t user)
{
	size_t i = pos_of(pr, user);

	if (i == pr->n || pr->u[i].user != user || pr->u[i].visible == 0)
		return;
	if (--pr->u[i].visible == 0)
		pr->dirty = 1;
}

static json_t *user_json(const struct proj *p, uint64_t id)
{
	struct proj_user_info u;

	if (proj_user_get(p, id, &u) != 0)
		return json_pack("{s:I,s:n}", "id", (json_int_t)id, "name");
	return json_pack("{s:I,s:s}", "id", (json_int_t)id, "name", u.name);
}

/* Append user id to arr; 0 or CL_ENOMEM. */
static int add_user(json_t *arr, const struct proj *p, uint64_t id)
{
	return json_array_append_new(arr, user_json(p, id)) ? CL_ENOMEM : 0;
}

json_t *presence_list(const struct presence *pr, const struct proj *p)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < pr->n; i++)
		if (pr->u[i].shown && add_user(arr, p, pr->u[i].user)) {
			json_decref(arr);
			arr = NULL;
		}
	return arr;
}

size_t presence_count(const struct presence *pr)
{
	size_t n = 0;

	for (size_t i = 0; i < pr->n; i++)
		n += pr->u[i].shown != 0;
	return n;
}

json_t *presence_flush(struct presence *pr, const struct proj *p, int64_t now_us)
{
	json_t *arrived, *left, *push;
	size_t k = 0;
	int err = 0;

	if (!pr->dirty || (pr->pushes && now_us - pr->last_us < PRESENCE_INTERVAL_US))
		return NULL;
	arrived = json_array();
	left = json_array();
	for (size_t i = 0; arrived && left && !err && i < pr->n; i++) {
		const struct presence_user *u = &pr->u[i];

		if (u->visible && !u->shown)
			err = add_user(arrived, p, u->user);
		else if (!u->visible && u->shown)
			err = add_user(left, p, u->user);
	}
	if (!arrived || !left || err) {
		json_decref(arrived);
		json_decref(left);
		return NULL;
	}
	pr->dirty = 0;
	if (json_array_size(arrived) == 0 && json_array_size(left) == 0) {
		/* they came and went between two pushes: nothing to tell */
		json_decref(arrived);
		json_decref(left);
		push = NULL;
	} else if (!(push = json_pack("{s:s,s:o,s:o}", "op", "presence", "arrived", arrived,
				      "left", left))) {
		pr->dirty = 1;
		return NULL;
	} else {
		pr->last_us = now_us;
		pr->pushes++;
	}
	/* the announced state is now the live one; forget who is gone */
	for (size_t i = 0; i < pr->n; i++) {
		pr->u[i].shown = pr->u[i].visible > 0;
		if (pr->u[i].visible)
			pr->u[k++] = pr->u[i];
	}
	pr->n = k;
	return push;
}
