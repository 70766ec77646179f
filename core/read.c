/*
 * read.c - who has read what: the per-user read marks behind unread
 * entries (docs/events.md "read.marked", docs/protocol.md "markRead").
 *
 * Marks are events (read.marked) so they follow a user to every device,
 * are durable, audited and replicated like every other change, and the
 * projection keeps, per user:
 *  - read_all: "everything up to this seq is read" (mark all read); it
 *    starts at the user's own user.created, so a new member does not find
 *    the whole history unread;
 *  - at most PROJ_READ_MARKS entry marks {entry, upto}, sorted by entry.
 *    A full list drops the PROJ_READ_DROP marks with the smallest upto
 *    (deterministic, so a rebuild gives the same state); those entries may
 *    show unread again, the only cost of the bound.
 * An entry is unread for u when its latest activity (act_seq: its
 * creation, an edit, a status change or a comment) is after
 * max(read_all, u's mark on it) and that activity is not u's own: the
 * activity index records who did each (struct pact), so one's own comment
 * never shows as unread and costs no mark (a mark per own event made a
 * replay of a busy writer's history ~30% slower, and took list slots).
 *
 * Bounded growth of the log: markRead is accepted only for an entry with
 * activity after the user's mark, and only up to its latest activity;
 * markAllRead only when some activity lies between read_all and upto. So
 * every accepted mark consumes at least one activity event that the user
 * had not marked: a user's read.marked events never outnumber the entry
 * events of the log (twice, counting both kinds).
 */
#include "proj_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Index of entry's mark in u's sorted list, or where it would go (a mark
 * on the newest entry goes last: no search). */
static uint32_t mark_pos(const struct puser *u, uint32_t entry)
{
	uint32_t lo = 0, hi = u->nreads;

	if (hi == 0 || u->reads[hi - 1].entry < entry)
		return hi;
	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (u->reads[mid].entry < entry)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

uint64_t proj_i_read_upto(const struct puser *u, uint32_t entry)
{
	uint32_t i = mark_pos(u, entry);
	uint64_t m = u->read_all;

	if (i < u->nreads && u->reads[i].entry == entry && u->reads[i].upto > m)
		m = u->reads[i].upto;
	return m;
}

int proj_i_read_unread(const struct puser *u, uint64_t user, const struct pact *r)
{
	return r->actor != user && r->seq > proj_i_read_upto(u, r->entry);
}

int proj_i_read_reserve(struct proj *p, uint64_t user)
{
	struct puser *u = proj_i_user(p, user);
	struct pread *nr;
	uint32_t ncap;

	if (!u || u->nreads < u->cap_reads || u->cap_reads >= PROJ_READ_MARKS)
		return 0;
	ncap = u->cap_reads ? u->cap_reads * 2 : 8;
	if (ncap > PROJ_READ_MARKS)
		ncap = PROJ_READ_MARKS;
	if (!(nr = realloc(u->reads, (size_t)ncap * sizeof *nr)))
		return CL_ENOMEM;
	u->reads = nr;
	u->cap_reads = ncap;
	return 0;
}

/*
 * The k-th smallest (from 0) of v[0..n), n <= PROJ_READ_MARKS, reordering
 * v: a radix selection, 8 bits of (v - min) a round. Each round counts the
 * values into 256 buckets and keeps only the bucket that holds the k-th,
 * so it is a few passes without data-dependent branches where Hoare's
 * selection mispredicted about every other comparison (marks' uptos are in
 * no particular order).
 */
static uint64_t kth_smallest(uint64_t *v, uint32_t n, uint32_t k)
{
	uint32_t count[256];

	for (;;) {
		uint64_t lo = v[0], hi = v[0], span;
		uint32_t shift = 0, b = 0, below = 0, m = 0;

		for (uint32_t i = 1; i < n; i++) {
			lo = v[i] < lo ? v[i] : lo;
			hi = v[i] > hi ? v[i] : hi;
		}
		if (lo == hi)
			return lo;
		for (span = (hi - lo) >> 8; span; span >>= 1)
			shift++;        /* (v - lo) >> shift is in [0, 255] */
		memset(count, 0, sizeof count);
		for (uint32_t i = 0; i < n; i++)
			count[(v[i] - lo) >> shift]++;
		while (below + count[b] <= k)
			below += count[b++];
		if (shift == 0)
			return lo + b;
		for (uint32_t i = 0; i < n; i++) {   /* keep bucket b's values only */
			v[m] = v[i];
			m += ((v[i] - lo) >> shift) == b;
		}
		n = m;
		k -= below;
	}
}

/*
 * A full list drops its PROJ_READ_DROP marks with the smallest upto (among
 * equal uptos, the smallest entries), in one pass that keeps the entry
 * order: one selection per PROJ_READ_DROP new marks instead of a scan of
 * the whole list for each.
 */
static void drop_oldest(struct puser *u)
{
	uint64_t v[PROJ_READ_MARKS], cut;
	uint32_t below = 0, ties, k = 0;

	for (uint32_t i = 0; i < u->nreads; i++)
		v[i] = u->reads[i].upto;
	cut = kth_smallest(v, u->nreads, PROJ_READ_DROP - 1);
	for (uint32_t i = 0; i < u->nreads; i++)
		below += u->reads[i].upto < cut;
	ties = PROJ_READ_DROP - below;   /* marks at cut to drop as well */
	for (uint32_t i = 0; i < u->nreads; i++) {
		struct pread m = u->reads[i];
		uint32_t tie = m.upto == cut && ties > 0;

		ties -= tie;
		u->reads[k] = m;           /* kept unless dropped: no branch */
		k += m.upto > cut || (m.upto == cut && !tie);
	}
	u->nreads = k;
}

void proj_i_read_note(struct proj *p, uint64_t user, uint32_t entry, uint64_t upto)
{
	struct puser *u = proj_i_user(p, user);
	uint32_t i;

	if (!u || upto <= u->read_all)
		return;
	i = mark_pos(u, entry);
	if (i < u->nreads && u->reads[i].entry == entry) {
		if (u->reads[i].upto < upto)
			u->reads[i].upto = upto;
		return;
	}
	if (u->nreads == PROJ_READ_MARKS) {
		drop_oldest(u);
		i = mark_pos(u, entry);
	}
	CL_ASSERT(u->nreads < u->cap_reads); /* proj_i_read_reserve came first */
	memmove(&u->reads[i + 1], &u->reads[i], (size_t)(u->nreads - i) * sizeof *u->reads);
	u->reads[i].entry = entry;
	u->reads[i].upto = upto;
	u->nreads++;
}

void proj_i_read_all(struct proj *p, uint64_t user, uint64_t upto)
{
	struct puser *u = proj_i_user(p, user);
	uint32_t k = 0;

	if (!u || upto <= u->read_all)
		return;
	u->read_all = upto;
	for (uint32_t i = 0; i < u->nreads; i++)
		if (u->reads[i].upto > upto)
			u->reads[k++] = u->reads[i];
	u->nreads = k;
}

int proj_i_apply_read_marked(struct proj *p, const struct event *ev)
{
	int rc;

	if (!proj_i_user(p, ev->actor) || ev->upto == 0 || ev->upto >= ev->seq ||
	    (ev->ids.entry && !proj_i_entry(p, ev->ids.entry)))
		return CL_ESTATE;
	if (!ev->ids.entry) {
		proj_i_read_all(p, ev->actor, ev->upto);
		return 0;
	}
	if ((rc = proj_i_read_reserve(p, ev->actor)))
		return rc;
	proj_i_read_note(p, ev->actor, (uint32_t)ev->ids.entry, ev->upto);
	return 0;
}

/* 1 if an activity record lies in (after, upto]. */
static int activity_between(const struct proj *p, uint64_t after, uint64_t upto)
{
	uint32_t lo = proj_i_act_from(p, after + 1);

	return lo < p->nact && p->act[lo].seq <= upto;
}

int proj_i_read_judge(const struct proj *p, uint64_t user, uint64_t entry, uint64_t upto,
		      struct cl_fail *fail)
{
	const struct puser *u = proj_i_user(p, user);
	const struct pentry *e = proj_i_entry(p, entry);
	const struct pact *live;
	uint64_t have;

	if (!u)
		return proj_i_fail(fail, CMD_UNAUTHORIZED, "you are not signed in as a known user");
	if (upto > p->seq)
		return proj_i_fail(fail, CMD_BAD_REQUEST,
				   "\"upto\" %llu is beyond the last seq, %llu",
				   (unsigned long long)upto, (unsigned long long)p->seq);
	if (!entry) {
		if (upto <= u->read_all || !activity_between(p, u->read_all, upto))
			return proj_i_fail(fail, CMD_BAD_REQUEST,
					   "nothing new to mark read up to seq %llu",
					   (unsigned long long)upto);
		return 0;
	}
	if (!e)
		return proj_i_fail(fail, CMD_NOT_FOUND, "entry %llu does not exist",
				   (unsigned long long)entry);
	have = proj_i_read_upto(u, (uint32_t)entry);
	/* e's live activity record: the one at its act_seq (proj_check) */
	live = &p->act[proj_i_act_from(p, e->act_seq)];
	CL_ASSERT(live->seq == e->act_seq && live->entry == entry);
	if (e->act_seq <= have || live->actor == user)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "entry %llu has nothing unread",
				   (unsigned long long)entry);
	if (upto < e->act_seq)
		return proj_i_fail(fail, CMD_BAD_REQUEST,
				   "entry %llu has activity after seq %llu (at %llu); mark it "
				   "read once that is shown", (unsigned long long)entry,
				   (unsigned long long)upto, (unsigned long long)e->act_seq);
	return 0;
}

/* ---- getUnread ------------------------------------------------------------- */

#define SIZE_UNREAD_ITEM 48u   /* {"entry":N,"seq":N}, with its comma */

int proj_i_q_unread(const struct proj *p, const struct proj_qctx *ctx, json_t **result,
		    struct cl_fail *fail)
{
	const struct puser *u = proj_i_user(p, ctx ? ctx->viewer : 0);
	uint64_t work = 0, work_max = ctx && ctx->work_max ? ctx->work_max : PROJ_QUERY_WORK;
	uint64_t count = 0, size;
	uint32_t listed = 0, stop = 0, i;
	int partial = 0;
	json_t *arr;

	if (!u)
		return proj_i_fail(fail, CMD_UNAUTHORIZED, "you are not signed in as a known user");
	/* walk the activity index down to read_all; each record costs as a
	 * superseded one does in the activity listing */
	for (i = p->nact; i > 0 && p->act[i - 1].seq > u->read_all; i--) {
		const struct pact *r = &p->act[i - 1];

		if (work >= work_max) {
			partial = 1;
			break;
		}
		work += PROJ_WORK_STALE;
		if (!proj_i_act_live(p, r) ||
		    !proj_i_read_unread(u, ctx->viewer, r))
			continue;
		count++;
		if (listed < PROJ_UNREAD_LIST) {
			listed++;
			stop = i - 1;
		}
	}
	if (ctx && ctx->work)
		*ctx->work += work;
	size = 1024u + (uint64_t)listed * SIZE_UNREAD_ITEM;
	if (ctx && ctx->size)
		*ctx->size = size;
	if (!(arr = json_array()))
		return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	for (i = p->nact; listed && i > stop; i--) {
		const struct pact *r = &p->act[i - 1];

		if (!proj_i_act_live(p, r) ||
		    !proj_i_read_unread(u, ctx->viewer, r))
			continue;
		if (json_array_append_new(arr, json_pack("{s:I,s:I}", "entry", (json_int_t)r->entry,
							 "seq", (json_int_t)r->seq))) {
			json_decref(arr);
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		}
	}
	*result = json_pack("{s:o,s:I,s:I}", "unread", arr, "count", (json_int_t)count,
			    "read_all", (json_int_t)u->read_all);
	if (*result && partial && json_object_set_new(*result, "partial", json_true())) {
		json_decref(*result);
		*result = NULL;
	}
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

/* ---- invariants ------------------------------------------------------------ */

int proj_i_read_check(const struct proj *p, char *why, size_t wl)
{
	for (uint32_t id = 1; id <= p->nusers; id++) {
		const struct puser *u = &p->users[id - 1];

		if (u->read_all > p->seq || u->nreads > u->cap_reads ||
		    u->nreads > PROJ_READ_MARKS) {
			if (why && wl)
				snprintf(why, wl, "user %u: bad read state", id);
			return CL_ESTATE;
		}
		for (uint32_t i = 0; i < u->nreads; i++) {
			const struct pread *m = &u->reads[i];

			if (!proj_i_entry(p, m->entry) || m->upto <= u->read_all || m->upto > p->seq ||
			    (i && m->entry <= u->reads[i - 1].entry)) {
				if (why && wl)
					snprintf(why, wl, "user %u: read mark %u out of order", id, i);
				return CL_ESTATE;
			}
		}
	}
	return 0;
}
