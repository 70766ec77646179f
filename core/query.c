/*
 * query.c - the stored queries (proj_query, proj_seed_entries): parameter
 * checking and the JSON results documented in docs/protocol.md "Queries".
 *
 * Why it is shaped so:
 *  - Parameters are checked strictly before any work: an unknown key, a
 *    wrong type or an out-of-range value is a bad_request naming the
 *    parameter, so a typo in a filter never silently returns everything.
 *    A JSON null counts as "not given" for every optional parameter, so a
 *    client can pass back next_cursor unchanged.
 *  - Listing walks the entry array from the newest id down. With no filter
 *    a page costs O(limit); a filter costs at most one pass over the ids
 *    below the cursor. next_cursor is exact: it is null only when no older
 *    entry matches, so the walk looks one match past the page.
 *  - sort "activity" walks the activity index (struct pact) from the top
 *    down, skipping records a later event of the same entry superseded;
 *    its cursor is a seq, found by binary search. "count" is a second,
 *    separately budgeted walk, or a counter read when the filter allows.
 *  - Comment trees are built in one pass over the entry's comment ids
 *    (ascending): a parent always has a smaller id than its replies, so it
 *    is already in the tree when a reply arrives, and every level comes out
 *    in id order.
 */
#include "proj_internal.h"
#include "query.h"
#include "search.h"

#include <stdlib.h>
#include <string.h>

#define LIST_DEFAULT 50
#define LIST_MAX 500
#define Q_MAX SEARCH_MAX  /* bytes of the "q" search text */

/* ---- parameters ---------------------------------------------------------- */

int proj_i_params_known(json_t *params, const char *const *allowed, struct cl_fail *fail)
{
	const char *key;
	json_t *v;

	json_object_foreach(params, key, v) {
		size_t i;

		for (i = 0; allowed[i] && strcmp(allowed[i], key) != 0; i++)
			;
		if (!allowed[i])
			return proj_i_fail(fail, CMD_BAD_REQUEST, "unknown parameter \"%.60s\"", key);
	}
	return 0;
}

json_t *proj_i_param(json_t *params, const char *key)
{
	json_t *v = json_object_get(params, key);

	return json_is_null(v) ? NULL : v;
}

/* A positive integer id parameter (required). */
static int param_id(json_t *params, const char *key, uint64_t *out, struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, key);

	if (!v)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "parameter \"%s\" is required", key);
	if (!json_is_integer(v) || json_integer_value(v) < 1)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" must be a positive integer", key);
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

#define ENUM_LIST_MAX 16   /* values in one list parameter (repeats count) */

/* A string or an array of strings, each parsed into a bit of *mask. */
static int param_enum_set(json_t *params, const char *key, int (*parse)(const char *, size_t),
			  const char *names, unsigned *mask, struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, key), *one;
	size_t i, n;

	*mask = 0;
	if (!v)
		return 0;
	if (json_is_string(v)) {
		n = 1;
	} else if (json_is_array(v) && json_array_size(v) > ENUM_LIST_MAX) {
		return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" lists at most %d values (got %zu)",
				   key, ENUM_LIST_MAX, json_array_size(v));
	} else if (json_is_array(v) && json_array_size(v) > 0) {
		n = json_array_size(v);
	} else {
		return proj_i_fail(fail, CMD_BAD_REQUEST,
				   "\"%s\" must be a string or a non-empty array of strings", key);
	}
	for (i = 0; i < n; i++) {
		int e;

		one = json_is_string(v) ? v : json_array_get(v, i);
		if (!json_is_string(one) ||
		    !(e = parse(json_string_value(one), json_string_length(one))))
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"%s\" values must be %s", key,
					   names);
		*mask |= 1u << e;
	}
	return 0;
}

static int param_time(json_t *params, const char *key, int *has, int64_t *out,
		      struct cl_fail *fail)
{
	json_t *v = proj_i_param(params, key);

	*has = 0;
	if (!v)
		return 0;
	if (!json_is_string(v) || json_string_length(v) > 64 ||
	    strlen(json_string_value(v)) != json_string_length(v) ||
	    cl_parse_iso(json_string_value(v), out) != 0)
		return proj_i_fail(fail, CMD_BAD_REQUEST,
				   "\"%s\" must be an ISO-8601 time such as 2026-11-27T10:02:03Z",
				   key);
	*has = 1;
	return 0;
}

/* ---- answer sizes ----------------------------------------------------------- */

/*
 * Upper bounds of the serialized size of what the queries return, known
 * before anything is built (PROJ_ANSWER_MAX). A string costs exactly what
 * jansson writes for it: quotes, '"' and '\\' and the short control escapes
 * as two bytes, other control bytes as \u00XX; everything else as is. The
 * fixed parts (member names, numbers, times, a user name) are bounded by
 * the constants below.
 */
#define SIZE_ENTRY   448u   /* an entry's members besides title and body */
#define SIZE_COMMENT 320u   /* a comment's besides its body, with "replies" */
#define SIZE_STATUS  224u   /* one status_history item */
#define SIZE_USER    224u   /* a user without tokens */
#define SIZE_TOKEN   160u   /* a token's members besides its label */
#define SIZE_FRAME   1024u  /* the result's own members */

static uint64_t json_str_size(const char *s, size_t n)
{
	uint64_t size = 2 + n;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
		    c == '\t')
			size += 1;
		else if (c < 0x20)
			size += 5;
	}
	return size;
}

/*
 * An entry's size bound. Its strings' part is measured once per text
 * (e->esc, cleared when an edit changes them): measuring 16 MiB of bodies
 * for every page took a tenth of the server's time under big pages.
 */
static uint64_t entry_size(struct pentry *e)
{
	if (!e->esc)
		e->esc = (uint32_t)(json_str_size(proj_i_title(e), e->title_n) +
				    json_str_size(proj_i_body(e), e->body_n));
	return SIZE_ENTRY + e->esc;
}

static uint64_t size_budget(const struct proj_qctx *ctx)
{
	return ctx && ctx->size_max ? ctx->size_max : PROJ_ANSWER_MAX;
}

/* Report the answer's size bound; 1 if it is over the budget (then cut). */
static int size_report(const struct proj_qctx *ctx, uint64_t size)
{
	if (ctx && ctx->size)
		*ctx->size = size;
	if (size <= size_budget(ctx))
		return 0;
	if (ctx && ctx->cut)
		*ctx->cut = 1;
	return 1;
}

static int size_refuse(const struct proj_qctx *ctx, uint64_t size, struct cl_fail *fail)
{
	return proj_i_fail(fail, CMD_TOO_LARGE, "the answer would take up to %llu bytes, over "
			   "the %llu its reply may use", (unsigned long long)size,
			   (unsigned long long)size_budget(ctx));
}

/* ---- getChangelogEntries --------------------------------------------------- */

struct lfilter {
	unsigned status_mask, kind_mask;   /* bit per enum value; 0 = any */
	int by_author;                     /* author given */
	uint32_t author;                   /* 0 = no such user: nothing matches */
	int has_q;                         /* q given (and not empty) */
	struct search q;
	int has_after, has_before;
	int64_t after, before;             /* exclusive bounds on created */
	uint32_t limit;
	uint64_t cursor;                   /* entries with id < cursor (by activity: whose
					    * latest event is before seq cursor); 0 = from the top */
	int by_activity;                   /* sort "activity": latest event first */
	int count;                         /* count: also answer "total" */
};

static int list_params(const struct proj *p, json_t *params, struct lfilter *f,
		       struct cl_fail *fail)
{
	static const char *const allowed[] = { "status", "kind", "author", "q", "created_after",
					       "created_before", "limit", "cursor", "sort",
					       "count", NULL };
	json_t *v;
	int rc;

	memset(f, 0, sizeof *f);
	f->limit = LIST_DEFAULT;
	if ((rc = proj_i_params_known(params, allowed, fail)) ||
	    (rc = param_enum_set(params, "status", cl_status_parse,
				 "open, resolved, cancelled or reopened", &f->status_mask, fail)) ||
	    (rc = param_enum_set(params, "kind", cl_kind_parse, "fix, change or feature",
				 &f->kind_mask, fail)) ||
	    (rc = param_time(params, "created_after", &f->has_after, &f->after, fail)) ||
	    (rc = param_time(params, "created_before", &f->has_before, &f->before, fail)))
		return rc;
	if ((v = proj_i_param(params, "author"))) {
		if (!json_is_string(v))
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"author\" must be a user name");
		f->by_author = 1;
		f->author = proj_i_user_find(p, json_string_value(v), json_string_length(v));
	}
	if ((v = proj_i_param(params, "q"))) {
		if (!json_is_string(v))
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"q\" must be a string");
		if (json_string_length(v) > Q_MAX)
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"q\" is longer than %d bytes",
					   Q_MAX);
		if (search_init(&f->q, json_string_value(v), json_string_length(v)))
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		f->has_q = json_string_length(v) > 0;
	}
	if ((v = proj_i_param(params, "limit"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1 ||
		    json_integer_value(v) > LIST_MAX)
			return proj_i_fail(fail, CMD_BAD_REQUEST,
					   "\"limit\" must be an integer from 1 to %d", LIST_MAX);
		f->limit = (uint32_t)json_integer_value(v);
	}
	if ((v = proj_i_param(params, "cursor"))) {
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			return proj_i_fail(fail, CMD_BAD_REQUEST,
					   "\"cursor\" must be a positive integer (a next_cursor)");
		f->cursor = (uint64_t)json_integer_value(v);
	}
	if ((v = proj_i_param(params, "sort"))) {
		if (!json_is_string(v) || (strcmp(json_string_value(v), "created") != 0 &&
					   strcmp(json_string_value(v), "activity") != 0))
			return proj_i_fail(fail, CMD_BAD_REQUEST,
					   "\"sort\" must be \"created\" or \"activity\"");
		f->by_activity = json_string_value(v)[0] == 'a';
	}
	if ((v = proj_i_param(params, "count"))) {
		if (!json_is_boolean(v))
			return proj_i_fail(fail, CMD_BAD_REQUEST, "\"count\" must be true or false");
		f->count = json_is_true(v);
	}
	return 0;
}

/* Does e pass f? Adds the work it took to *work (see PROJ_QUERY_WORK). */
static int list_match(const struct pentry *e, const struct lfilter *f, uint64_t *work)
{
	*work += PROJ_WORK_ENTRY;
	if (f->status_mask && !(f->status_mask & (1u << e->status)))
		return 0;
	if (f->kind_mask && !(f->kind_mask & (1u << e->kind)))
		return 0;
	if (f->by_author && e->author != f->author)
		return 0;
	if ((f->has_after && e->created <= f->after) || (f->has_before && e->created >= f->before))
		return 0;
	if (!f->has_q)
		return 1;
	*work += e->title_n;
	if (search_in(&f->q, proj_i_title(e), e->title_n, NULL))
		return 1;
	*work += e->body_n;
	return search_in(&f->q, proj_i_body(e), e->body_n, NULL);
}

struct lrun {
	uint64_t next;        /* id to pass as cursor; 0 when no older entry matches */
	uint64_t work;        /* work done (units of PROJ_QUERY_WORK) */
	uint64_t size;        /* the page's size bound (PROJ_ANSWER_MAX) */
	int partial;          /* stopped at work_max: nothing below next examined */
	int cut;              /* stopped at size_max: the entry next - 1 did not fit */
	uint64_t need;        /* ... the size bound that entry would have made */
};

/* The page being chosen: its entries' ids and walk keys, its size bound. */
struct lpage {
	uint32_t id[LIST_MAX];
	uint64_t key[LIST_MAX];   /* id, or activity seq, of each entry taken */
	uint64_t size[LIST_MAX];  /* ... and its size bound (with its comma) */
	uint32_t n;
	uint64_t last;        /* key of the last entry taken */
	uint64_t size_max;    /* the page's size bound may not pass this */
};

/*
 * Entry id, at walk position key (its id, or its activity seq): 1 when the
 * walk is over (the page is full and one more match was seen, or the entry
 * would take the page past size_max), else 0. A cut sets next to key + 1,
 * so that the next page starts at this entry.
 */
static int list_step(const struct proj *p, const struct lfilter *f, uint64_t id, uint64_t key,
		     struct lpage *pg, struct lrun *r)
{
	uint64_t size;

	if (!list_match(&p->entries[id - 1], f, &r->work))
		return 0;
	if (pg->n == f->limit) {
		r->next = pg->last;
		return 1;
	}
	size = entry_size(&p->entries[id - 1]) + 1;
	if (r->size + size > pg->size_max) {
		r->next = key + 1;
		r->partial = r->cut = 1;
		r->need = r->size + size;
		return 1;
	}
	pg->id[pg->n] = (uint32_t)id;
	pg->key[pg->n] = key;
	pg->size[pg->n] = size;
	r->size += size;
	pg->n++;
	pg->last = key;
	return 0;
}

/*
 * The page as an array. The walk stops after the entry at which the work
 * reaches work_max, so a query does at most work_max plus one entry's
 * worth (PROJ_WORK_ENTRY + CL_MAX_TITLE + CL_MAX_BODY), and always gets
 * past at least one entry: following next_cursor always ends. By id the
 * walk goes down from the cursor; by activity it goes down the activity
 * index from the cursor's position, skipping superseded records (each
 * costs PROJ_WORK_STALE: there are at most as many as entries plus 1024).
 * It also stops before a matching entry that would take the page's size
 * bound past size_max (r->cut; next_cursor then starts at that entry,
 * which may leave the page empty when size_max is below one entry: the
 * caller asked for less than PROJ_ANSWER_MAX and must not send such a
 * page).
 */
static void list_run(const struct proj *p, const struct lfilter *f, uint64_t work_max,
		     uint64_t size_max, struct lpage *pg, struct lrun *r)
{
	memset(r, 0, sizeof *r);
	pg->n = 0;
	pg->last = 0;
	pg->size_max = size_max;
	r->size = SIZE_FRAME + 2;
	if (f->by_author && !f->author)
		return;
	if (f->by_activity) {
		uint32_t pos = f->cursor ? proj_i_act_from(p, f->cursor) : p->nact;

		while (pos > 0) {
			const struct pact *a = &p->act[--pos];

			if (!proj_i_act_live(p, a))
				r->work += PROJ_WORK_STALE;
			else if (list_step(p, f, a->entry, a->seq, pg, r))
				break;
			if (r->work >= work_max && pos > 0) {
				r->next = a->seq;
				r->partial = 1;
				break;
			}
		}
	} else {
		uint64_t id = p->nentries;

		if (f->cursor && f->cursor - 1 < id)
			id = f->cursor - 1;
		for (; id >= 1; id--) {
			if (list_step(p, f, id, id, pg, r))
				break;
			if (r->work >= work_max && id > 1) {
				r->next = id;
				r->partial = 1;
				break;
			}
		}
	}
}

/* The chosen entries as a JSON array (proj_query's form). */
static json_t *list_array(const struct proj *p, const struct lpage *pg)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr && i < pg->n; i++) {
		if (json_array_append_new(arr, proj_entry_json(p, pg->id[i]))) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

/*
 * "total": how many entries match f, whatever the cursor. Without a filter,
 * or with only a status or only a kind filter, it is read from the
 * counters; otherwise it takes one walk over all entries under its own
 * budget of work_max, and when that runs out *partial is set and *total is
 * the count among the entries examined (a lower bound).
 */
static uint64_t list_count(const struct proj *p, const struct lfilter *f, uint64_t work_max,
			   uint64_t *work, int *partial)
{
	int other = f->by_author || f->has_q || f->has_after || f->has_before;
	uint64_t total = 0, w = 0;

	*partial = 0;
	if (!other && !(f->status_mask && f->kind_mask)) {
		if (!f->status_mask && !f->kind_mask)
			return p->nentries;
		for (int i = 0; i < 5; i++)
			if (f->status_mask & (1u << i))
				total += p->by_status[i];
		for (int i = 0; i < 4; i++)
			if (f->kind_mask & (1u << i))
				total += p->by_kind[i];
		return total;
	}
	if (f->by_author && !f->author)
		return 0;
	for (uint64_t id = p->nentries; id >= 1; id--) {
		total += (uint64_t)list_match(&p->entries[id - 1], f, &w);
		if (w >= work_max && id > 1) {
			*partial = 1;
			break;
		}
	}
	*work += w;
	return total;
}

/* What one listing found: the page chosen, how the walk went, the count. */
struct lres {
	struct lpage pg;
	struct lrun r;
	int count, total_partial;
	uint64_t total;
};

/*
 * The walk of getChangelogEntries with params, or (params NULL) the
 * seed's: limit 500, no filters, the default budgets.
 */
static int list_query(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		      struct lres *o, struct cl_fail *fail)
{
	uint64_t work_max = ctx && ctx->work_max ? ctx->work_max : PROJ_QUERY_WORK;
	struct lfilter f;
	int rc = 0;

	memset(&f, 0, sizeof f);
	f.limit = LIST_MAX;
	if (params)
		rc = list_params(p, params, &f, fail);
	else
		work_max = PROJ_QUERY_WORK;
	o->count = f.count;
	o->total = 0;
	o->total_partial = 0;
	if (!rc) {
		list_run(p, &f, work_max, size_budget(ctx), &o->pg, &o->r);
		if (f.count)
			o->total = list_count(p, &f, work_max, &o->r.work, &o->total_partial);
	}
	search_release(&f.q);
	if (rc)
		return rc;
	if (params && ctx && ctx->work)
		*ctx->work += o->r.work;
	return 0;
}

/* Tell the caller the page's size bound and whether the size budget cut it. */
static void list_report(const struct proj_qctx *ctx, const struct lres *o)
{
	if (ctx && ctx->size)
		*ctx->size = o->r.cut ? o->r.need : o->r.size;
	if (ctx && ctx->cut && o->r.cut)
		*ctx->cut = 1;
}

/* The result object around the entries array arr (stolen). */
static json_t *list_result(const struct lres *o, json_t *arr)
{
	json_t *res;

	if (!arr)
		return NULL;
	res = json_pack("{s:o,s:o}", "entries", arr, "next_cursor",
			o->r.next ? json_integer((json_int_t)o->r.next) : json_null());
	if (res && ((o->r.partial && json_object_set_new_nocheck(res, "partial", json_true())) ||
		    (o->count && json_object_set_new_nocheck(res, "total",
							     json_integer((json_int_t)o->total))) ||
		    (o->total_partial &&
		     json_object_set_new_nocheck(res, "total_partial", json_true())))) {
		json_decref(res);
		res = NULL;
	}
	return res;
}

static int q_entries(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		     json_t **result, struct cl_fail *fail)
{
	struct lres o;
	int rc = list_query(p, params, ctx, &o, fail);

	if (rc)
		return rc;
	list_report(ctx, &o);
	*result = list_result(&o, list_array(p, &o.pg));
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

json_t *proj_seed_entries_in(struct proj *p, const struct proj_qctx *ctx)
{
	struct lres o;

	if (!p || list_query(p, NULL, ctx, &o, NULL))
		return NULL;
	list_report(ctx, &o);
	return list_array(p, &o.pg);
}

json_t *proj_seed_entries(struct proj *p)
{
	return proj_seed_entries_in(p, NULL);
}

/* ---- the same listings as text ---------------------------------------------- */

/* Room for n more bytes (and PROJ_TEXT_SPARE for the caller), grown exactly. */
static int text_room(struct proj_text *out, size_t n)
{
	size_t want = out->len + n + PROJ_TEXT_SPARE;
	char *np;

	if (want <= out->cap)
		return 0;
	if (!(np = realloc(out->p, want)))
		return CL_ENOMEM;
	out->p = np;
	out->cap = want;
	return 0;
}

static void text_put(struct proj_text *out, const void *s, size_t n)
{
	memcpy(out->p + out->len, s, n);
	out->len += n;
}

/*
 * The page's texts: from the cache, or made within the caller's budget of
 * fresh bytes. Returns how many of the page's entries have their text
 * (all of them, or the cut: fewer), or -1 when the budget ran out and the
 * caller waits (*ctx->unready); CL_ENOMEM as -2.
 */
static long list_texts(struct proj *p, const struct lres *o, int seed,
		       const struct proj_qctx *ctx, const char **txt, size_t *tn)
{
	uint64_t *left = ctx ? ctx->fresh_left : NULL;
	int wait = ctx && ctx->unready;

	proj_i_texts_page(p);
	for (uint32_t i = 0; i < o->pg.n; i++)
		txt[i] = proj_i_text(p, o->pg.id[i], &tn[i]);
	for (uint32_t i = 0; i < o->pg.n; i++) {
		if (txt[i])
			continue;
		if (left && *left == 0 && !(seed && !wait) && !(i == 0 && !wait)) {
			if (wait) {
				*ctx->unready = 1;
				return -1;
			}
			return (long)i;   /* the page ends before entry i */
		}
		if (!(txt[i] = proj_i_text_make(p, o->pg.id[i], &tn[i])))
			return -2;
		if (left)
			*left = *left > tn[i] ? *left - tn[i] : 0;
	}
	return (long)o->pg.n;
}

int proj_entries_text(struct proj *p, json_t *params, int seed, const struct proj_qctx *ctx,
		      struct proj_text *out, struct cl_fail *fail)
{
	static const char head[] = "{\"entries\":[";
	const char *txt[LIST_MAX];
	size_t tn[LIST_MAX], total, hn = sizeof head - 1;
	char *tail = NULL;
	struct lres o;
	long k;
	int rc;

	if (!p || !out)
		return proj_i_fail(fail, CMD_INTERNAL, "bad call");
	if (!seed && (!params || json_is_null(params)))
		params = NULL;
	else if (!seed && !json_is_object(params))
		return proj_i_fail(fail, CMD_BAD_REQUEST, "params must be an object");
	if (!seed && !params) {
		json_t *empty = json_object();

		if (!empty)
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		rc = list_query(p, empty, ctx, &o, fail);
		json_decref(empty);
	} else {
		rc = list_query(p, seed ? NULL : params, ctx, &o, fail);
	}
	if (rc)
		return rc;
	k = list_texts(p, &o, seed, ctx, txt, tn);
	if (k == -1) {
		proj_i_texts_trim(p);
		return 0;
	}
	if (k < 0)
		return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	if ((uint32_t)k < o.pg.n) {
		/* cut by the fresh budget: as a size cut, the next page starts there */
		o.r.next = o.pg.key[k] + 1;
		o.r.partial = 1;
		for (uint32_t i = (uint32_t)k; i < o.pg.n; i++)
			o.r.size -= o.pg.size[i];
		o.pg.n = (uint32_t)k;
		if (ctx && ctx->fresh_cut)
			*ctx->fresh_cut = 1;
	}
	list_report(ctx, &o);
	total = o.pg.n ? o.pg.n - 1 : 0;
	for (uint32_t i = 0; i < o.pg.n; i++)
		total += tn[i];
	if (seed) {
		hn = 1;
		total += 2;
	} else {
		/* everything but the entries, by jansson: {"entries":[],"next_cursor":... */
		json_t *res = list_result(&o, json_array());

		tail = res ? json_dumps(res, JSON_COMPACT) : NULL;
		json_decref(res);
		if (!tail)
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		CL_ASSERT(strncmp(tail, head, hn) == 0 && tail[hn] == ']');
		total += strlen(tail);
	}
	if (text_room(out, total)) {
		free(tail);
		return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	}
	text_put(out, seed ? "[" : head, hn);
	for (uint32_t i = 0; i < o.pg.n; i++) {
		if (i)
			text_put(out, ",", 1);
		text_put(out, txt[i], tn[i]);
	}
	if (seed)
		text_put(out, "]", 1);
	else
		text_put(out, tail + hn, strlen(tail + hn));
	free(tail);
	proj_i_texts_trim(p);   /* the page is written: back under the cap */
	return 0;
}

/* ---- getEntry, getEntryHistory -------------------------------------------- */

static const char *const entry_only[] = { "entry", NULL };

static int entry_param(const struct proj *p, json_t *params, const struct pentry **e,
		       uint64_t *id, struct cl_fail *fail)
{
	int rc;

	if ((rc = proj_i_params_known(params, entry_only, fail)) ||
	    (rc = param_id(params, "entry", id, fail)))
		return rc;
	if (!(*e = proj_i_entry(p, *id)))
		return proj_i_fail(fail, CMD_NOT_FOUND, "entry %llu does not exist",
				   (unsigned long long)*id);
	return 0;
}

static json_t *status_history_json(const struct proj *p, const struct pentry *e)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr && i < e->nhist; i++) {
		const struct pstatus *h = &e->hist[i];
		const struct puser *u = proj_i_user(p, h->by);
		json_t *o = json_pack("{s:I,s:s,s:s,s:s?,s:I,s:o}", "seq", (json_int_t)h->seq,
				      "from", cl_status_name(h->from), "to", cl_status_name(h->to),
				      "by", u ? u->name : NULL, "by_id", (json_int_t)h->by,
				      "at", proj_i_iso(h->at));

		if (json_array_append_new(arr, o)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

/* The comment forest of e: top-level comments, each with "replies". */
static json_t *comment_tree(const struct proj *p, const struct pentry *e)
{
	json_t *top = json_array(), **replies = NULL;
	uint32_t n = e->comments.n;

	if (!top)
		return NULL;
	if (n && !(replies = calloc(n, sizeof *replies)))
		goto fail;
	for (uint32_t i = 0; i < n; i++) {
		const uint32_t *ids = e->comments.v;
		const struct pcomment *c = &p->comments[ids[i] - 1];
		json_t *o = proj_comment_json(p, ids[i]), *r = json_array(), *into = top;

		if (!o || !r || json_object_set_new_nocheck(o, "replies", r)) {
			json_decref(o);
			if (!o)
				json_decref(r);
			goto fail;
		}
		replies[i] = r;
		if (c->parent) {
			/* the parent is among ids[0..i) (same entry, smaller id) */
			uint32_t lo = 0, hi = i;

			while (lo < hi) {
				uint32_t mid = lo + (hi - lo) / 2;

				if (ids[mid] < c->parent)
					lo = mid + 1;
				else
					hi = mid;
			}
			if (lo >= i || ids[lo] != c->parent) {
				json_decref(o);
				goto fail;
			}
			into = replies[lo];
		}
		if (json_array_append_new(into, o))
			goto fail;
	}
	free(replies);
	return top;
fail:
	free(replies);
	json_decref(top);
	return NULL;
}

/* getEntry's size bound: the entry, its status history, every comment. */
static uint64_t entry_tree_size(const struct proj *p, const struct pentry *e)
{
	uint64_t size = SIZE_FRAME + entry_size(&p->entries[e - p->entries]) +
			(uint64_t)e->nhist * SIZE_STATUS;

	for (uint32_t i = 0; i < e->comments.n; i++) {
		const struct pcomment *c = &p->comments[e->comments.v[i] - 1];

		size += SIZE_COMMENT + json_str_size(c->body, c->body_n);
	}
	return size;
}

static int q_entry(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		   json_t **result, struct cl_fail *fail)
{
	const struct pentry *e;
	json_t *ej, *hist, *tree;
	uint64_t id, size;
	int rc;

	if ((rc = entry_param(p, params, &e, &id, fail)))
		return rc;
	size = entry_tree_size(p, e);
	if (size_report(ctx, size))
		return size_refuse(ctx, size, fail);
	ej = proj_entry_json(p, id);
	hist = status_history_json(p, e);
	tree = comment_tree(p, e);
	if (!ej || !hist || !tree || json_object_set_new_nocheck(ej, "status_history", hist)) {
		json_decref(ej);
		json_decref(hist);
		json_decref(tree);
		return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	}
	*result = json_pack("{s:o,s:o}", "entry", ej, "comments", tree);
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Every seq that touched e, ascending: created, edits, status changes, comments
 * and their edits and deletions. */
static uint64_t *entry_seqs(const struct proj *p, const struct pentry *e, size_t *n)
{
	size_t k = 0, total = (size_t)1 + e->edits.n + e->nhist + e->comments.n + e->cmods.n;
	uint64_t *s = malloc(total * sizeof *s);

	if (!s)
		return NULL;
	s[k++] = e->seq;
	for (uint32_t i = 0; i < e->edits.n; i++)
		s[k++] = e->edits.v[i];
	for (uint32_t i = 0; i < e->nhist; i++)
		s[k++] = e->hist[i].seq;
	for (uint32_t i = 0; i < e->comments.n; i++)
		s[k++] = p->comments[e->comments.v[i] - 1].seq;
	for (uint32_t i = 0; i < e->cmods.n; i++)
		s[k++] = e->cmods.v[i];
	qsort(s, k, sizeof *s, cmp_u64);
	*n = k;
	return s;
}

static int q_history(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		     json_t **result, struct cl_fail *fail)
{
	const struct pentry *e;
	json_t *events = NULL;
	uint64_t id, *seqs = NULL, size = SIZE_FRAME;
	size_t n = 0;
	int rc;

	if ((rc = entry_param(p, params, &e, &id, fail)))
		return rc;
	if (!ctx || !ctx->load) {
		proj_i_fail(fail, CMD_INTERNAL, "the event history is not available here");
		return CL_EINVAL;
	}
	if (!(seqs = entry_seqs(p, e, &n)) || !(events = json_array())) {
		rc = proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		goto out;
	}
	/*
	 * The events' texts are not in the projection (an edit's old title and
	 * body are only in the log): each is measured as it is loaded, so at
	 * most the budget plus one event is held before a refusal.
	 */
	for (size_t i = 0; i < n; i++) {
		json_t *ev = NULL;

		rc = ctx->load(ctx->arg, seqs[i], &ev);
		if (rc || !ev) {
			json_decref(ev);
			rc = rc ? rc : CL_ENOMEM;
			proj_i_fail(fail, CMD_INTERNAL, "event %llu could not be read (%s)",
				    (unsigned long long)seqs[i], cl_strerror(rc));
			goto out;
		}
		size += json_dumpb(ev, NULL, 0, JSON_COMPACT) + 1;
		if (json_array_append_new(events, ev)) {
			rc = proj_i_fail(fail, CMD_INTERNAL, "out of memory");
			goto out;
		}
		if (size_report(ctx, size)) {
			rc = size_refuse(ctx, size, fail);
			goto out;
		}
	}
	*result = json_pack("{s:I,s:O}", "entry", (json_int_t)id, "events", events);
	rc = *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
out:
	json_decref(events);
	free(seqs);
	return rc;
}

/* ---- users, whoami, stats ------------------------------------------------- */

static const char *const no_params[] = { NULL };

static json_t *tokens_json(const struct proj *p, const struct puser *u)
{
	json_t *arr = json_array();

	for (uint32_t i = 0; arr && i < u->tokens.n; i++) {
		const struct ptoken *t = &p->tokens[u->tokens.v[i] - 1];
		json_t *o = json_pack("{s:I,s:s%,s:o,s:b}", "id", (json_int_t)u->tokens.v[i],
				      "label", t->label, (size_t)t->label_n,
				      "created", proj_i_iso(t->created), "revoked", t->revoked);

		if (json_array_append_new(arr, o)) {
			json_decref(arr);
			arr = NULL;
		}
	}
	return arr;
}

static int q_users(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		   json_t **result, struct cl_fail *fail)
{
	const struct puser *viewer = proj_i_user(p, ctx ? ctx->viewer : 0);
	int with_tokens = !ctx || ctx->viewer == 0 || (viewer && viewer->role == ROLE_ADMIN);
	uint64_t size = SIZE_FRAME;
	json_t *arr;
	int rc;

	if ((rc = proj_i_params_known(params, no_params, fail)))
		return rc;
	for (uint32_t id = 1; id <= p->nusers; id++) {
		const struct puser *u = &p->users[id - 1];

		size += SIZE_USER + u->name_n;
		for (uint32_t i = 0; with_tokens && i < u->tokens.n; i++) {
			const struct ptoken *t = &p->tokens[u->tokens.v[i] - 1];

			size += SIZE_TOKEN + json_str_size(t->label, t->label_n);
		}
	}
	if (size_report(ctx, size))
		return size_refuse(ctx, size, fail);
	if (!(arr = json_array()))
		return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	for (uint32_t id = 1; id <= p->nusers; id++) {
		json_t *u = proj_user_json(p, id);

		if (u && with_tokens &&
		    json_object_set_new_nocheck(u, "tokens", tokens_json(p, &p->users[id - 1]))) {
			json_decref(u);
			u = NULL;
		}
		if (json_array_append_new(arr, u)) {
			json_decref(arr);
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		}
	}
	*result = json_pack("{s:o}", "users", arr);
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

static int q_whoami(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		    json_t **result, struct cl_fail *fail)
{
	uint64_t viewer = ctx ? ctx->viewer : 0;
	int rc;

	if ((rc = proj_i_params_known(params, no_params, fail)))
		return rc;
	if (!proj_i_user(p, viewer))
		return proj_i_fail(fail, CMD_UNAUTHORIZED, "you are not signed in as a known user");
	*result = json_pack("{s:o}", "user", proj_user_json(p, viewer));
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

static int q_stats(struct proj *p, json_t *params, json_t **result, struct cl_fail *fail)
{
	int rc;

	if ((rc = proj_i_params_known(params, no_params, fail)))
		return rc;
	*result = json_pack("{s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I},s:{s:I,s:I,s:I}}",
			    "events", (json_int_t)p->seq, "users", (json_int_t)p->nusers,
			    "entries", (json_int_t)p->nentries, "comments", (json_int_t)p->ncomments,
			    "by_status",
			    "open", (json_int_t)p->by_status[ST_OPEN],
			    "resolved", (json_int_t)p->by_status[ST_RESOLVED],
			    "cancelled", (json_int_t)p->by_status[ST_CANCELLED],
			    "reopened", (json_int_t)p->by_status[ST_REOPENED],
			    "by_kind",
			    "fix", (json_int_t)p->by_kind[KIND_FIX],
			    "change", (json_int_t)p->by_kind[KIND_CHANGE],
			    "feature", (json_int_t)p->by_kind[KIND_FEATURE]);
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

/*
 * getWebhooks (admins): the configured endpoints, without their secrets
 * (which never reach the projection). At most CL_MAX_WEBHOOKS live ones,
 * so the answer is bounded by CL_MAX_WEBHOOKS * (CL_MAX_URL + types).
 */
static int q_webhooks(struct proj *p, json_t *params, const struct proj_qctx *ctx,
		      json_t **result, struct cl_fail *fail)
{
	const struct puser *viewer = proj_i_user(p, ctx ? ctx->viewer : 0);
	json_t *arr;
	int rc;

	if ((rc = proj_i_params_known(params, no_params, fail)))
		return rc;
	if (ctx && ctx->viewer && !(viewer && viewer->role == ROLE_ADMIN))
		return proj_i_fail(fail, CMD_FORBIDDEN, "only an admin can getWebhooks");
	if (!(arr = json_array()))
		return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	for (uint32_t id = 1; id <= p->nwebhooks; id++) {
		const struct pwebhook *w = &p->webhooks[id - 1];
		json_t *types, *o;

		if (!w->url)
			continue;
		types = json_array();
		for (int t = EV_NONE + 1; types && t < EV__COUNT; t++)
			if ((w->mask & (1u << t)) && json_array_append_new(types,
									   json_string(ev_type_name(t))))
				break;
		o = json_pack("{s:I,s:s%,s:o,s:b,s:o,s:I,s:I}", "id", (json_int_t)id, "url", w->url,
			      (size_t)w->url_n, "events", types, "all", w->mask == EV_TYPES_ALL,
			      "created", proj_i_iso(w->created), "created_by", (json_int_t)w->creator,
			      "seq", (json_int_t)w->seq);
		if (json_array_append_new(arr, o)) {
			json_decref(arr);
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
		}
	}
	*result = json_pack("{s:o}", "webhooks", arr);
	return *result ? 0 : proj_i_fail(fail, CMD_INTERNAL, "out of memory");
}

/* ---- dispatch --------------------------------------------------------------- */

int proj_query_by_viewer(const char *name)
{
	/* the queries that never read ctx->viewer; keep in step with q_* above */
	static const char *const same_for_all[] = { "getChangelogEntries", "getEntry",
						    "getEntryHistory", "getStats", NULL };

	for (size_t i = 0; name && same_for_all[i]; i++)
		if (strcmp(name, same_for_all[i]) == 0)
			return 0;
	return 1;
}

int proj_query(struct proj *p, const char *name, json_t *params,
	       const struct proj_qctx *ctx, json_t **result, struct cl_fail *fail)
{
	json_t *empty = NULL;
	int rc;

	if (!p || !result)
		return proj_i_fail(fail, CMD_INTERNAL, "bad call");
	*result = NULL;
	if (!name)
		return proj_i_fail(fail, CMD_BAD_REQUEST, "a query name is required");
	if (!params || json_is_null(params)) {
		if (!(params = empty = json_object()))
			return proj_i_fail(fail, CMD_INTERNAL, "out of memory");
	} else if (!json_is_object(params)) {
		return proj_i_fail(fail, CMD_BAD_REQUEST, "params must be an object");
	}
	if (strcmp(name, "getChangelogEntries") == 0)
		rc = q_entries(p, params, ctx, result, fail);
	else if (strcmp(name, "getEntry") == 0)
		rc = q_entry(p, params, ctx, result, fail);
	else if (strcmp(name, "getEntryHistory") == 0)
		rc = q_history(p, params, ctx, result, fail);
	else if (strcmp(name, "getUsers") == 0)
		rc = q_users(p, params, ctx, result, fail);
	else if (strcmp(name, "whoami") == 0)
		rc = q_whoami(p, params, ctx, result, fail);
	else if (strcmp(name, "getStats") == 0)
		rc = q_stats(p, params, result, fail);
	else if (strcmp(name, "getUnread") == 0)
		rc = (rc = proj_i_params_known(params, no_params, fail)) ? rc
		     : proj_i_q_unread(p, ctx, result, fail);
	else if (strcmp(name, "getWebhooks") == 0)
		rc = q_webhooks(p, params, ctx, result, fail);
	else
		rc = proj_i_fail(fail, CMD_BAD_REQUEST, "unknown query \"%.60s\"", name);
	json_decref(empty);
	return rc;
}
