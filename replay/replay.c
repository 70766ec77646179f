/*
 * replay.c - the driver of changelog-replay: log -> rows -> batches.
 *
 * What it owns:
 *  - the schema (rp_tables; docs/sql-schema.md is its prose) and the policy
 *    around it: create a fresh set, refuse an altered table or a partial
 *    set that holds rows, drop and recreate ours on --rebuild;
 *  - the epoch / position check (replay_state) and the batch loop: events
 *    are read with evlog_iter_next_event (decoded and hash-checked), turned
 *    into row operations, and committed every `batch` events together with
 *    replay_state in the same SQL transaction, so a kill at any point loses
 *    at most the batch in flight, and the next run redoes exactly it;
 *  - the meaning of each event for the tables, which mirrors core/proj.c
 *    (apply_*): version counts entry.* events, updated is the ts of the last
 *    entry.* event, last_activity is max(updated, created of the entry's
 *    newest comment), depth is the parent's + 1, comment threads are ordered
 *    by a materialised path of ids (children in id order, as proj lists
 *    them). The integration tests compare every stored query of the server
 *    with the same answer built from the tables.
 *
 * Two threads: a reader (below, "the reader thread") reads, decodes,
 * hash-checks and renders each event's JSON into a small ring while this
 * thread translates and writes SQL, since neither half depends on the other.
 *
 * Why a cache and not a projection: resuming must not replay the log from
 * seq 1, so the small state the rows need (per entry: status, kind,
 * counters, times; per comment: entry, parent, depth; per user: name) is
 * read back from the tables the first time an id is touched in a run, and
 * kept in arrays indexed by id (ids are gapless from 1). Entries touched in
 * a batch are written once at its end (one upsert for the ones it created,
 * one update for the others), so a comment storm on one entry costs one
 * entry row per batch, not one per comment.
 */
#include "replay.h"
#include "../tools/cli/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include "../core/event.h"
#include "../store/datadir.h"

/* ---- the schema --------------------------------------------------------------- */

static const struct rp_column users_cols[] = {
	{ "id", RP_INT }, { "name", RP_NAME }, { "role", RP_NAME },
	{ "created", RP_TIME }, { "created_us", RP_INT },
};
static const struct rp_column tokens_cols[] = {
	{ "id", RP_INT }, { "user_id", RP_INT }, { "label", RP_NAME },
	{ "created", RP_TIME }, { "created_us", RP_INT }, { "revoked", RP_INT },
	{ "revoked_at", RP_TIME_NULL },
};
static const struct rp_column entries_cols[] = {
	{ "id", RP_INT }, { "title", RP_TITLE }, { "body", RP_TEXT }, { "kind", RP_NAME },
	{ "status", RP_NAME }, { "author_id", RP_INT }, { "author", RP_NAME },
	{ "created", RP_TIME }, { "created_us", RP_INT }, { "updated", RP_TIME },
	{ "updated_us", RP_INT }, { "version", RP_INT }, { "comment_count", RP_INT },
	{ "last_activity", RP_TIME }, { "last_activity_us", RP_INT },
};
static const struct rp_column comments_cols[] = {
	{ "id", RP_INT }, { "entry_id", RP_INT }, { "parent_id", RP_INT_NULL },
	{ "depth", RP_INT }, { "path", RP_PATH }, { "author_id", RP_INT }, { "author", RP_NAME },
	{ "body", RP_TEXT }, { "created", RP_TIME }, { "created_us", RP_INT },
	{ "edited", RP_TIME_NULL }, { "deleted", RP_INT },
};
static const struct rp_column status_cols[] = {
	{ "seq", RP_INT }, { "entry_id", RP_INT }, { "from_status", RP_NAME },
	{ "to_status", RP_NAME }, { "actor_id", RP_INT }, { "actor", RP_NAME },
	{ "at", RP_TIME }, { "at_us", RP_INT },
};
static const struct rp_column events_cols[] = {
	{ "seq", RP_INT }, { "type", RP_NAME }, { "ts", RP_TIME }, { "ts_us", RP_INT },
	{ "actor_id", RP_INT }, { "entry_id", RP_INT_NULL }, { "comment_id", RP_INT_NULL },
	{ "user_id", RP_INT_NULL }, { "json", RP_TEXT },
};
static const struct rp_column state_cols[] = {
	{ "id", RP_INT }, { "epoch", RP_NAME }, { "last_seq", RP_INT }, { "updated", RP_TIME },
};

static const char *const users_ix[] = { "name(name)", NULL };
static const char *const tokens_ix[] = { "user(user_id)", NULL };
static const char *const entries_ix[] = {
	"status(status, created_us)", "kind(kind, created_us)", "created(created_us)", NULL,
};
static const char *const comments_ix[] = { "thread(entry_id, path)", NULL };
static const char *const status_ix[] = { "entry(entry_id, seq)", NULL };

#define TABLE(n, c, ix) { n, c, sizeof c / sizeof c[0], ix }
const struct rp_table rp_tables[RP_T__COUNT] = {
	[RP_T_USERS] = TABLE("users", users_cols, users_ix),
	[RP_T_TOKENS] = TABLE("tokens", tokens_cols, tokens_ix),
	[RP_T_ENTRIES] = TABLE("entries", entries_cols, entries_ix),
	[RP_T_COMMENTS] = TABLE("comments", comments_cols, comments_ix),
	[RP_T_STATUS] = TABLE("status_changes", status_cols, status_ix),
	[RP_T_EVENTS] = TABLE("events", events_cols, NULL),
	[RP_T_STATE] = TABLE("replay_state", state_cols, NULL),
};

void rp_sb_init(struct rp_sb *sb, char *buf, size_t cap)
{
	sb->buf = buf;
	sb->cap = cap;
	sb->len = 0;
	sb->ok = cap > 0;
	if (cap)
		buf[0] = 0;
}

void rp_sb_add(struct rp_sb *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!sb->ok)
		return;
	va_start(ap, fmt);
	n = vsnprintf(sb->buf + sb->len, sb->cap - sb->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sb->cap - sb->len) {
		sb->ok = 0;
		sb->buf[sb->len] = 0;
		return;
	}
	sb->len += (size_t)n;
}

void rp_table_colnames(const struct rp_table *t, char *buf, size_t cap)
{
	struct rp_sb sb;
	unsigned i;

	rp_sb_init(&sb, buf, cap);
	for (i = 0; i < t->ncols; i++)
		rp_sb_add(&sb, "%s%s", i ? "," : "", t->cols[i].name);
}

/* ---- messages ------------------------------------------------------------------ */

/* ---- schema policy --------------------------------------------------------------- */

static int schema_ensure(struct replay_backend *b, int rebuild, char *err, size_t errlen)
{
	char have[1024], want[1024];
	int missing[RP_T__COUNT] = { 0 };
	unsigned t, n, nmissing = 0;
	int rc;

	if (rebuild) {
		/* replay_state first: an interrupted rebuild leaves no state row,
		 * so the next run refuses the half-dropped set instead of resuming */
		if ((rc = b->ops->drop(b, rp_tables[RP_T_STATE].name)))
			return cli_err(err, errlen, rc, "%s", b->err);
		for (t = 0; t < RP_T_STATE; t++)
			if ((rc = b->ops->drop(b, rp_tables[t].name)))
				return cli_err(err, errlen, rc, "%s", b->err);
		for (t = 0; t < RP_T__COUNT; t++)
			if ((rc = b->ops->create(b, &rp_tables[t])))
				return cli_err(err, errlen, rc, "creating table %s: %s", rp_tables[t].name,
					   b->err);
		return 0;
	}
	for (t = 0; t < RP_T__COUNT; t++) {
		if ((rc = b->ops->columns(b, rp_tables[t].name, have, sizeof have, &n)))
			return cli_err(err, errlen, rc, "%s", b->err);
		if (n == 0) {
			missing[t] = 1;
			nmissing++;
			continue;
		}
		rp_table_colnames(&rp_tables[t], want, sizeof want);
		if (strcmp(have, want) != 0)
			return cli_err(err, errlen, CL_ECORRUPT,
				   "table %s was altered: it has columns (%s) but changelog-replay "
				   "writes (%s); restore it, or run with --rebuild to drop and "
				   "recreate changelog-replay's tables", rp_tables[t].name, have, want);
	}
	if (!nmissing)
		return 0;
	if (!missing[RP_T_STATE]) {
		for (t = 0; t < RP_T__COUNT; t++)
			if (missing[t])
				return cli_err(err, errlen, CL_ECORRUPT,
					   "table %s is missing but replay_state says rows were "
					   "applied; run with --rebuild to recreate changelog-replay's "
					   "tables", rp_tables[t].name);
	}
	/* No state row yet: a new database, or a creation that was interrupted.
	 * Anything already there must be empty, or it is not ours to fill. */
	for (t = 0; t < RP_T__COUNT; t++) {
		int yes = 0;

		if (missing[t])
			continue;
		if ((rc = b->ops->has_rows(b, rp_tables[t].name, &yes)))
			return cli_err(err, errlen, rc, "%s", b->err);
		if (yes)
			return cli_err(err, errlen, CL_ECORRUPT,
				   "table %s holds rows but there is no replay_state table; it is "
				   "not changelog-replay's, or a rebuild was interrupted: run with "
				   "--rebuild to drop and recreate changelog-replay's tables",
				   rp_tables[t].name);
	}
	for (t = 0; t < RP_T__COUNT; t++)
		if (missing[t] && (rc = b->ops->create(b, &rp_tables[t])))
			return cli_err(err, errlen, rc, "creating table %s: %s", rp_tables[t].name, b->err);
	return 0;
}

/* ---- the cache ------------------------------------------------------------------- */

struct ecache {
	uint8_t loaded, kind, status;
	uint32_t dirty;              /* index + 1 in the batch's dirty list, 0 = clean */
	uint64_t author_id, version, comment_count;
	int64_t created_us, updated_us, last_comment_us;
};

struct ccache {
	uint8_t loaded;
	uint8_t depth;
	uint64_t entry_id, parent_id;
};

/* An entry touched by the current batch. */
struct dirty {
	uint64_t id;
	int is_new;
	int wide;                    /* edited or status set: more than comment counters */
	char *title, *body;          /* malloc'd copies; NULL = unchanged (updates) */
	size_t title_n, body_n;
};

struct driver {
	struct replay_backend *b;
	struct evlog *log;
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	char *err;
	size_t errlen;

	struct ecache *ent;
	size_t nent;
	struct ccache *com;
	size_t ncom;
	char **uname;                /* user names by id - 1, NULL = not loaded */
	size_t nuser;

	struct dirty *dirty;
	size_t ndirty, capdirty;
	size_t batch_bytes;

	const char *ts_iso;          /* the current event's ts as ISO text (reader-made) */

};

/* Grow an array of elem-sized records so index id - 1 exists (zeroed). */
static int grow_to(void **arr, size_t *n, size_t elem, uint64_t id)
{
	size_t cap;
	void *p;

	if (id <= *n)
		return 0;
	cap = *n ? *n : 256;
	while (cap < id)
		cap *= 2;
	if (!(p = realloc(*arr, cap * elem)))
		return CL_ENOMEM;
	memset((char *)p + *n * elem, 0, (cap - *n) * elem);
	*arr = p;
	*n = cap;
	return 0;
}

static int bad_event(struct driver *d, const struct event *ev, const char *what, uint64_t id)
{
	return cli_err(d->err, d->errlen, CL_ESTATE, "event %llu (%s): %s %llu",
		   (unsigned long long)ev->seq, ev_type_name((int)ev->type), what,
		   (unsigned long long)id);
}

/* An id an event may name: 1 <= id < seq (each id is made by an earlier
 * event, or by this one when it is new, id <= seq). Bounds the arrays. */
static int id_ok(const struct event *ev, uint64_t id, int is_new)
{
	return id >= 1 && (is_new ? id <= ev->seq : id < ev->seq);
}

static int user_name(struct driver *d, const struct event *ev, uint64_t id, struct cl_str *out)
{
	char name[CL_MAX_NAME + 1];
	int rc;

	if (!id_ok(ev, id, 0))
		return bad_event(d, ev, "unknown user", id);
	if ((rc = grow_to((void **)&d->uname, &d->nuser, sizeof *d->uname, id)))
		return rc;
	if (!d->uname[id - 1]) {
		rc = d->b->ops->user_name(d->b, id, name, sizeof name);
		if (rc == CL_ENOTFOUND)
			return bad_event(d, ev, "unknown user", id);
		if (rc)
			return cli_err(d->err, d->errlen, rc, "%s", d->b->err);
		if (!(d->uname[id - 1] = strdup(name)))
			return CL_ENOMEM;
	}
	out->p = d->uname[id - 1];
	out->n = strlen(out->p);
	return 0;
}

static int entry_load(struct driver *d, const struct event *ev, uint64_t id, struct ecache **out)
{
	struct rp_entry_state st;
	struct ecache *e;
	int rc;

	if (!id_ok(ev, id, 0))
		return bad_event(d, ev, "unknown entry", id);
	if ((rc = grow_to((void **)&d->ent, &d->nent, sizeof *d->ent, id)))
		return rc;
	e = &d->ent[id - 1];
	if (!e->loaded) {
		rc = d->b->ops->entry_get(d->b, id, &st);
		if (rc == CL_ENOTFOUND)
			return bad_event(d, ev, "unknown entry", id);
		if (rc)
			return cli_err(d->err, d->errlen, rc, "%s", d->b->err);
		e->loaded = 1;
		e->kind = (uint8_t)st.kind;
		e->status = (uint8_t)st.status;
		e->author_id = st.author_id;
		e->version = st.version;
		e->comment_count = st.comment_count;
		e->created_us = st.created_us;
		e->updated_us = st.updated_us;
		e->last_comment_us = st.last_comment_us;
	}
	*out = e;
	return 0;
}

/* Parse "0000000001/0000000007" into ids; returns the count or -1. */
static int path_ids(const char *path, uint64_t ids[CL_MAX_DEPTH + 1])
{
	int n = 0;

	while (*path) {
		uint64_t v = 0;
		int i;

		if (n > CL_MAX_DEPTH)
			return -1;
		for (i = 0; i < RP_PATH_SEG; i++) {
			if (path[i] < '0' || path[i] > '9')
				return -1;
			v = v * 10 + (uint64_t)(path[i] - '0');
		}
		path += RP_PATH_SEG;
		ids[n++] = v;
		if (*path == '/')
			path++;
		else if (*path)
			return -1;
	}
	return n;
}

static int comment_load(struct driver *d, const struct event *ev, uint64_t id,
			struct ccache **out)
{
	struct rp_comment_state st;
	uint64_t ids[CL_MAX_DEPTH + 1];
	int rc, n, i;

	if (!id_ok(ev, id, 0))
		return bad_event(d, ev, "unknown comment", id);
	if ((rc = grow_to((void **)&d->com, &d->ncom, sizeof *d->com, id)))
		return rc;
	if (!d->com[id - 1].loaded) {
		rc = d->b->ops->comment_get(d->b, id, &st);
		if (rc == CL_ENOTFOUND)
			return bad_event(d, ev, "unknown comment", id);
		if (rc)
			return cli_err(d->err, d->errlen, rc, "%s", d->b->err);
		/* the path names every ancestor: cache the whole chain at once */
		n = path_ids(st.path, ids);
		if (n < 1 || (uint64_t)n != st.depth + 1 || ids[n - 1] != id)
			return cli_err(d->err, d->errlen, CL_ECORRUPT,
				   "table comments: row %llu has a bad path \"%s\"",
				   (unsigned long long)id, st.path);
		for (i = 0; i < n; i++) {
			struct ccache *c;

			if (ids[i] < 1 || ids[i] > id)
				return cli_err(d->err, d->errlen, CL_ECORRUPT,
					   "table comments: row %llu has a bad path \"%s\"",
					   (unsigned long long)id, st.path);
			c = &d->com[ids[i] - 1];
			c->loaded = 1;
			c->depth = (uint8_t)i;
			c->entry_id = st.entry_id;
			c->parent_id = i ? ids[i - 1] : 0;
		}
	}
	*out = &d->com[id - 1];
	return 0;
}

/* The path of comment id (its ancestors are all cached). */
static int comment_path(struct driver *d, uint64_t id, char *out, size_t cap)
{
	uint64_t chain[CL_MAX_DEPTH + 1];
	int n = 0;
	struct rp_sb sb;

	while (id) {
		if (n > CL_MAX_DEPTH || id > d->ncom || !d->com[id - 1].loaded)
			return CL_ECORRUPT;
		chain[n++] = id;
		id = d->com[id - 1].parent_id;
	}
	rp_sb_init(&sb, out, cap);
	while (n-- > 0) {
		if (chain[n] > RP_PATH_MAX_ID)
			return CL_ETOOBIG;
		rp_sb_add(&sb, "%s%0*llu", sb.len ? "/" : "", RP_PATH_SEG,
			  (unsigned long long)chain[n]);
	}
	return sb.ok ? 0 : CL_ETOOBIG;
}

static char *copy_str(struct cl_str s)
{
	char *p = malloc(s.n + 1);

	if (p) {
		if (s.n)
			memcpy(p, s.p, s.n);
		p[s.n] = 0;
	}
	return p;
}

static int dirty_get(struct driver *d, struct ecache *e, uint64_t id, int is_new,
		     struct dirty **out)
{
	struct dirty *x;

	if (!e->dirty) {
		if (d->ndirty == d->capdirty) {
			size_t cap = d->capdirty ? d->capdirty * 2 : 256;
			void *p = realloc(d->dirty, cap * sizeof *d->dirty);

			if (!p)
				return CL_ENOMEM;
			d->dirty = p;
			d->capdirty = cap;
		}
		x = &d->dirty[d->ndirty++];
		memset(x, 0, sizeof *x);
		x->id = id;
		x->is_new = is_new;
		e->dirty = (uint32_t)d->ndirty;
	}
	*out = &d->dirty[e->dirty - 1];
	return 0;
}

static int dirty_text(struct driver *d, struct dirty *x, int which, struct cl_str s)
{
	char **slot = which ? &x->body : &x->title;
	size_t *len = which ? &x->body_n : &x->title_n;
	char *p = copy_str(s);

	if (!p)
		return CL_ENOMEM;
	free(*slot);
	*slot = p;
	*len = s.n;
	d->batch_bytes += s.n;
	return 0;
}

static void dirty_clear(struct driver *d)
{
	size_t i;

	for (i = 0; i < d->ndirty; i++) {
		struct ecache *e = &d->ent[d->dirty[i].id - 1];

		e->dirty = 0;
		free(d->dirty[i].title);
		free(d->dirty[i].body);
	}
	d->ndirty = 0;
	d->batch_bytes = 0;
}

/* ---- values -------------------------------------------------------------------- */

static struct rp_val v_int(int64_t i)
{
	return (struct rp_val){ .kind = RP_V_INT, .i = i };
}

static struct rp_val v_id(uint64_t id)   /* 0 = NULL */
{
	return id ? v_int((int64_t)id) : (struct rp_val){ .kind = RP_V_NULL };
}

static struct rp_val v_str(struct cl_str s)
{
	return (struct rp_val){ .kind = RP_V_TEXT, .s = s.p ? s.p : "", .n = s.n };
}

static struct rp_val v_cstr(const char *s)
{
	return (struct rp_val){ .kind = RP_V_TEXT, .s = s ? s : "", .n = s ? strlen(s) : 0 };
}

/* ISO text of a time; buf must hold CL_ISO_LEN + 1 and outlive the call. */
static struct rp_val v_time(int64_t us, char *buf)
{
	cl_iso_time(us, buf);
	return (struct rp_val){ .kind = RP_V_TEXT, .s = buf, .n = strlen(buf) };
}

/* The current event's own time, rendered by the reader thread. */
static struct rp_val v_evtime(const struct driver *d)
{
	return (struct rp_val){ .kind = RP_V_TEXT, .s = d->ts_iso, .n = strlen(d->ts_iso) };
}

static int run(struct driver *d, int stmt, const struct rp_val *v, unsigned n)
{
	int rc = d->b->ops->exec(d->b, stmt, v, n);

	if (rc)
		return cli_err(d->err, d->errlen, rc, "%s", d->b->err[0] ? d->b->err : cl_strerror(rc));
	return 0;
}

static int64_t last_activity(const struct ecache *e)
{
	return e->comment_count && e->last_comment_us > e->updated_us ? e->last_comment_us
								      : e->updated_us;
}

/* ---- one event ----------------------------------------------------------------- */

static int ev_user_created(struct driver *d, const struct event *ev)
{
	struct rp_val v[5];
	uint64_t id = ev->ids.user;
	int rc;

	if (!id_ok(ev, id, 1))
		return bad_event(d, ev, "bad user id", id);
	if ((rc = grow_to((void **)&d->uname, &d->nuser, sizeof *d->uname, id)))
		return rc;
	free(d->uname[id - 1]);
	if (!(d->uname[id - 1] = copy_str(ev->name)))
		return CL_ENOMEM;
	v[0] = v_int((int64_t)id);
	v[1] = v_str(ev->name);
	v[2] = v_cstr(cl_role_name(ev->role));
	v[3] = v_evtime(d);
	v[4] = v_int(ev->ts);
	return run(d, RP_S_PUT + RP_T_USERS, v, 5);
}

static int ev_user_role_set(struct driver *d, const struct event *ev)
{
	struct rp_val v[2];
	struct cl_str name;
	int rc;

	if ((rc = user_name(d, ev, ev->ids.user, &name)))
		return rc;
	v[0] = v_cstr(cl_role_name(ev->role));
	v[1] = v_int((int64_t)ev->ids.user);
	return run(d, RP_S_USER_ROLE, v, 2);
}

static int ev_token_issued(struct driver *d, const struct event *ev)
{
	struct rp_val v[7];
	struct cl_str name;
	int rc;

	if (!id_ok(ev, ev->ids.token, 1))
		return bad_event(d, ev, "bad token id", ev->ids.token);
	if ((rc = user_name(d, ev, ev->ids.user, &name)))
		return rc;
	v[0] = v_int((int64_t)ev->ids.token);
	v[1] = v_int((int64_t)ev->ids.user);
	v[2] = v_str(ev->label);
	v[3] = v_evtime(d);
	v[4] = v_int(ev->ts);
	v[5] = v_int(0);
	v[6] = (struct rp_val){ .kind = RP_V_NULL };
	return run(d, RP_S_PUT + RP_T_TOKENS, v, 7);
}

static int ev_token_revoked(struct driver *d, const struct event *ev)
{
	struct rp_val v[2];

	if (!id_ok(ev, ev->ids.token, 0))
		return bad_event(d, ev, "unknown token", ev->ids.token);
	v[0] = v_evtime(d);
	v[1] = v_int((int64_t)ev->ids.token);
	return run(d, RP_S_TOKEN_REVOKE, v, 2);
}

static int ev_entry_created(struct driver *d, const struct event *ev)
{
	uint64_t id = ev->ids.entry;
	struct cl_str author;
	struct ecache *e;
	struct dirty *x;
	int rc;

	if (!id_ok(ev, id, 1))
		return bad_event(d, ev, "bad entry id", id);
	if ((rc = user_name(d, ev, ev->actor, &author)))
		return rc;
	if ((rc = grow_to((void **)&d->ent, &d->nent, sizeof *d->ent, id)))
		return rc;
	e = &d->ent[id - 1];
	if (e->dirty)   /* created twice in one batch: the log is not valid */
		return bad_event(d, ev, "entry created twice", id);
	memset(e, 0, sizeof *e);
	e->loaded = 1;
	e->kind = ev->kind;
	e->status = ST_OPEN;
	e->author_id = ev->actor;
	e->version = 1;
	e->created_us = e->updated_us = ev->ts;
	if ((rc = dirty_get(d, e, id, 1, &x)) || (rc = dirty_text(d, x, 0, ev->title)) ||
	    (rc = dirty_text(d, x, 1, ev->body)))
		return rc;
	return 0;
}

static int ev_entry_edited(struct driver *d, const struct event *ev)
{
	struct ecache *e;
	struct dirty *x;
	int rc;

	if ((rc = entry_load(d, ev, ev->ids.entry, &e)) ||
	    (rc = dirty_get(d, e, ev->ids.entry, 0, &x)))
		return rc;
	if (ev->has_title && (rc = dirty_text(d, x, 0, ev->title)))
		return rc;
	if (ev->has_body && (rc = dirty_text(d, x, 1, ev->body)))
		return rc;
	if (ev->has_kind)
		e->kind = ev->kind;
	e->version++;
	e->updated_us = ev->ts;
	x->wide = 1;
	return 0;
}

static int ev_entry_status_set(struct driver *d, const struct event *ev)
{
	struct rp_val v[8];
	struct cl_str actor;
	struct ecache *e;
	struct dirty *x;
	int rc;

	if ((rc = entry_load(d, ev, ev->ids.entry, &e)))
		return rc;
	if (ev->status_from != e->status)
		return cli_err(d->err, d->errlen, CL_ESTATE,
			   "event %llu (entry.status_set): entry %llu is %s, not %s",
			   (unsigned long long)ev->seq, (unsigned long long)ev->ids.entry,
			   cl_status_name(e->status) ? cl_status_name(e->status) : "?",
			   cl_status_name(ev->status_from) ? cl_status_name(ev->status_from) : "?");
	if ((rc = user_name(d, ev, ev->actor, &actor)) ||
	    (rc = dirty_get(d, e, ev->ids.entry, 0, &x)))
		return rc;
	e->status = ev->status_to;
	e->version++;
	e->updated_us = ev->ts;
	x->wide = 1;
	v[0] = v_int((int64_t)ev->seq);
	v[1] = v_int((int64_t)ev->ids.entry);
	v[2] = v_cstr(cl_status_name(ev->status_from));
	v[3] = v_cstr(cl_status_name(ev->status_to));
	v[4] = v_int((int64_t)ev->actor);
	v[5] = v_str(actor);
	v[6] = v_evtime(d);
	v[7] = v_int(ev->ts);
	return run(d, RP_S_PUT + RP_T_STATUS, v, 8);
}

static int ev_comment_added(struct driver *d, const struct event *ev)
{
	char path[RP_PATH_MAX + 1];
	uint64_t id = ev->ids.comment, depth = 0;
	struct rp_val v[12];
	struct cl_str author;
	struct ecache *e;
	struct ccache *c;
	struct dirty *x;
	int rc;

	if (!id_ok(ev, id, 1))
		return bad_event(d, ev, "bad comment id", id);
	if ((rc = entry_load(d, ev, ev->ids.entry, &e)) ||
	    (rc = user_name(d, ev, ev->actor, &author)))
		return rc;
	if (ev->ids.parent) {
		struct ccache *p = NULL;

		if ((rc = comment_load(d, ev, ev->ids.parent, &p)))
			return rc;
		if (p->entry_id != ev->ids.entry)
			return bad_event(d, ev, "parent comment in another entry:", ev->ids.parent);
		if (p->depth + 1 >= CL_MAX_DEPTH)
			return bad_event(d, ev, "thread too deep under comment", ev->ids.parent);
		depth = p->depth + 1u;
	}
	if ((rc = grow_to((void **)&d->com, &d->ncom, sizeof *d->com, id)))
		return rc;
	c = &d->com[id - 1];
	c->loaded = 1;
	c->depth = (uint8_t)depth;
	c->entry_id = ev->ids.entry;
	c->parent_id = ev->ids.parent;
	if ((rc = comment_path(d, id, path, sizeof path)))
		return cli_err(d->err, d->errlen, rc, "event %llu: comment %llu: cannot build its path",
			   (unsigned long long)ev->seq, (unsigned long long)id);
	if ((rc = dirty_get(d, e, ev->ids.entry, 0, &x)))
		return rc;
	e->comment_count++;
	e->last_comment_us = ev->ts;
	v[0] = v_int((int64_t)id);
	v[1] = v_int((int64_t)ev->ids.entry);
	v[2] = v_id(ev->ids.parent);
	v[3] = v_int((int64_t)depth);
	v[4] = v_cstr(path);
	v[5] = v_int((int64_t)ev->actor);
	v[6] = v_str(author);
	v[7] = v_str(ev->body);
	v[8] = v_evtime(d);
	v[9] = v_int(ev->ts);
	v[10] = (struct rp_val){ RP_V_NULL, 0, NULL, 0 };
	v[11] = v_int(0);
	d->batch_bytes += ev->body.n;
	return run(d, RP_S_PUT + RP_T_COMMENTS, v, 12);
}

/*
 * comment.edited / comment.deleted: the row's body (and edit time, or the
 * deleted flag). Who may do it was the projection's check when the event
 * was written (docs/events.md); here the comment must exist in that entry.
 */
static int ev_comment_changed(struct driver *d, const struct event *ev)
{
	struct rp_val v[3];
	struct ccache *c;
	int rc;

	if ((rc = comment_load(d, ev, ev->ids.comment, &c)))
		return rc;
	if (c->entry_id != ev->ids.entry)
		return bad_event(d, ev, "comment in another entry:", ev->ids.comment);
	if (ev->type == EV_COMMENT_DELETED) {
		v[0] = v_int((int64_t)ev->ids.comment);
		return run(d, RP_S_COMMENT_DEL, v, 1);
	}
	v[0] = v_str(ev->body);
	v[1] = v_evtime(d);
	v[2] = v_int((int64_t)ev->ids.comment);
	d->batch_bytes += ev->body.n;
	return run(d, RP_S_COMMENT_EDIT, v, 3);
}

static int ev_row(struct driver *d, const struct event *ev, struct cl_str json)
{
	struct rp_val v[9];

	v[0] = v_int((int64_t)ev->seq);
	v[1] = v_cstr(ev_type_name((int)ev->type));
	v[2] = v_evtime(d);
	v[3] = v_int(ev->ts);
	v[4] = v_int((int64_t)ev->actor);
	v[5] = v_id(ev->ids.entry);
	v[6] = v_id(ev->ids.comment);
	v[7] = v_id(ev->ids.user);
	v[8] = v_str(json);
	d->batch_bytes += json.n;
	return run(d, RP_S_PUT + RP_T_EVENTS, v, 9);
}

static int apply_event(struct driver *d, const struct event *ev, struct cl_str json)
{
	int rc;

	switch (ev->type) {
	case EV_USER_CREATED:     rc = ev_user_created(d, ev); break;
	case EV_USER_ROLE_SET:    rc = ev_user_role_set(d, ev); break;
	case EV_TOKEN_ISSUED:     rc = ev_token_issued(d, ev); break;
	case EV_TOKEN_REVOKED:    rc = ev_token_revoked(d, ev); break;
	case EV_ENTRY_CREATED:    rc = ev_entry_created(d, ev); break;
	case EV_ENTRY_EDITED:     rc = ev_entry_edited(d, ev); break;
	case EV_ENTRY_STATUS_SET: rc = ev_entry_status_set(d, ev); break;
	case EV_COMMENT_ADDED:    rc = ev_comment_added(d, ev); break;
	case EV_COMMENT_EDITED:
	case EV_COMMENT_DELETED:  rc = ev_comment_changed(d, ev); break;
	case EV_READ_MARKED:      rc = 0; break; /* only the events row (docs/sql-schema.md) */
	case EV_WEBHOOK_CREATED:  /* configuration: only in the events table */
	case EV_WEBHOOK_DELETED:  rc = 0; break;
	default:
		return cli_err(d->err, d->errlen, CL_ESTATE, "event %llu: unknown type %u",
			   (unsigned long long)ev->seq, ev->type);
	}
	if (rc == CL_ENOMEM)
		return cli_err(d->err, d->errlen, rc, "out of memory");
	if (rc)
		return rc;
	return ev_row(d, ev, json);
}

/* The entries a batch touched: one row each, then the state, then commit. */
static int batch_commit(struct driver *d, uint64_t last_seq)
{
	char t1[CL_ISO_LEN + 1], t2[CL_ISO_LEN + 1], t3[CL_ISO_LEN + 1];
	struct rp_val v[15];
	size_t i;
	int rc;

	for (i = 0; i < d->ndirty; i++) {
		const struct dirty *x = &d->dirty[i];
		const struct ecache *e = &d->ent[x->id - 1];
		struct cl_str author, title = { x->title, x->title_n }, body = { x->body, x->body_n };

		if (x->is_new) {
			/* entry.created cached the author's name */
			if (e->author_id < 1 || e->author_id > d->nuser || !d->uname[e->author_id - 1])
				return CL_EINVAL;
			author.p = d->uname[e->author_id - 1];
			author.n = strlen(author.p);
			v[0] = v_int((int64_t)x->id);
			v[1] = v_str(title);
			v[2] = v_str(body);
			v[3] = v_cstr(cl_kind_name(e->kind));
			v[4] = v_cstr(cl_status_name(e->status));
			v[5] = v_int((int64_t)e->author_id);
			v[6] = v_str(author);
			v[7] = v_time(e->created_us, t1);
			v[8] = v_int(e->created_us);
			v[9] = v_time(e->updated_us, t2);
			v[10] = v_int(e->updated_us);
			v[11] = v_int((int64_t)e->version);
			v[12] = v_int((int64_t)e->comment_count);
			v[13] = v_time(last_activity(e), t3);
			v[14] = v_int(last_activity(e));
			rc = run(d, RP_S_PUT + RP_T_ENTRIES, v, 15);
		} else if (!x->wide) {
			v[0] = v_int((int64_t)e->comment_count);
			v[1] = v_time(last_activity(e), t1);
			v[2] = v_int(last_activity(e));
			v[3] = v_int((int64_t)x->id);
			rc = run(d, RP_S_ENTRY_ACT, v, 4);
		} else {
			v[0] = x->title ? v_str(title) : (struct rp_val){ .kind = RP_V_NULL };
			v[1] = x->body ? v_str(body) : (struct rp_val){ .kind = RP_V_NULL };
			v[2] = v_cstr(cl_kind_name(e->kind));
			v[3] = v_cstr(cl_status_name(e->status));
			v[4] = v_time(e->updated_us, t1);
			v[5] = v_int(e->updated_us);
			v[6] = v_int((int64_t)e->version);
			v[7] = v_int((int64_t)e->comment_count);
			v[8] = v_time(last_activity(e), t2);
			v[9] = v_int(last_activity(e));
			v[10] = v_int((int64_t)x->id);
			rc = run(d, RP_S_ENTRY_UPD, v, 11);
		}
		if (rc)
			return rc;
	}
	v[0] = v_int(1);
	v[1] = v_cstr(d->epoch);
	v[2] = v_int((int64_t)last_seq);
	v[3] = v_time(cl_now_us(), t1);
	if ((rc = run(d, RP_S_PUT + RP_T_STATE, v, 4)))
		return rc;
	if ((rc = d->b->ops->commit(d->b)))
		return cli_err(d->err, d->errlen, rc, "%s", d->b->err);
	dirty_clear(d);
	return 0;
}

/* ---- the reader thread ----------------------------------------------------------- */

/*
 * Reading the log (LMDB, decode, hash chain) and rendering each event's JSON
 * cost about a third of a replay, and none of it depends on the tables, so
 * a second thread does it while this one writes SQL: a bounded ring of
 * slots, each holding one decoded event whose strings are copied into the
 * slot (LMDB's pointers are valid only until the next read) and its JSON.
 * The reader owns the evlog iterator for the whole pass; the writer makes no
 * evlog call until the reader is joined (struct evlog has no locks).
 */
#define RING 256   /* slots; a slot holds up to one event (<= CL_MAX_EVENT) */

struct slot {
	struct event ev;             /* strings point into buf */
	char *buf;                   /* copied strings, then the JSON */
	size_t cap;
	struct cl_str json;
	char iso[CL_ISO_LEN + 1];    /* ev.ts as ISO text */
};

struct reader {
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t can_put, can_take;
	struct evlog *log;
	uint64_t from;
	struct slot slot[RING];
	uint64_t put, take;          /* slots filled / consumed, ever (under mu) */
	uint64_t my_put;             /* reader only: filled, not yet published */
	uint64_t my_take, avail_to;  /* writer only: consumed; may read below avail_to */
	int done;                    /* no more slots will come */
	int err;                     /* why, if not the end of the snapshot */
	int quit;                    /* the writer wants no more */
	int started;
};

/* Copy the event's strings into s->buf and render its JSON after them. */
static int slot_fill(struct slot *s, const struct event *ev)
{
	struct cl_str *strs[] = { &s->ev.name, &s->ev.label, &s->ev.title, &s->ev.body,
				  &s->ev.cmd_id };
	size_t need = 0, off = 0, n, i;
	json_t *j;

	s->ev = *ev;
	for (i = 0; i < sizeof strs / sizeof strs[0]; i++)
		need += strs[i]->n;
	if (!(j = ev_to_json(ev)))
		return CL_ENOMEM;
	for (;;) {
		if (need > s->cap) {
			size_t cap = need + 4096;
			char *p = realloc(s->buf, cap);

			if (!p) {
				json_decref(j);
				return CL_ENOMEM;
			}
			s->buf = p;
			s->cap = cap;
		}
		off = 0;
		for (i = 0; i < sizeof strs / sizeof strs[0]; i++) {
			if (strs[i]->n)
				memcpy(s->buf + off, strs[i]->p, strs[i]->n);
			strs[i]->p = s->buf + off;
			off += strs[i]->n;
		}
		n = json_dumpb(j, s->buf + off, s->cap - off, JSON_COMPACT);
		if (n == 0) {
			json_decref(j);
			return CL_ENOMEM;
		}
		if (n <= s->cap - off)
			break;
		need = off + n;          /* too small: grow and render again */
	}
	json_decref(j);
	s->json.p = s->buf + off;
	s->json.n = n;
	cl_iso_time(ev->ts, s->iso);
	return 0;
}

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct evlog_iter *it = NULL;
	struct event ev;
	int rc = evlog_iter_new(r->log, r->from, &it);

	/* Slots are handed over in groups of up to RING / 8, so the two threads
	 * meet on the mutex a few times per thousand events, not per event. */
	uint64_t room = 0;   /* slots known free without asking */

	while (!rc) {
		if (!room || r->my_put - r->put >= RING / 8) {
			pthread_mutex_lock(&r->mu);
			if (r->my_put != r->put) {
				r->put = r->my_put;
				pthread_cond_signal(&r->can_take);
			}
			while (r->put - r->take == RING && !r->quit)
				pthread_cond_wait(&r->can_put, &r->mu);
			room = RING - (r->put - r->take);
			rc = r->quit;
			pthread_mutex_unlock(&r->mu);
			if (rc)
				break;
		}
		rc = evlog_iter_next_event(it, &ev);
		if (rc <= 0)
			break;
		/* slot my_put is free: the writer stays below put, and room counted it */
		if ((rc = slot_fill(&r->slot[r->my_put % RING], &ev)))
			break;
		r->my_put++;
		room--;
	}
	evlog_iter_free(it);
	pthread_mutex_lock(&r->mu);
	r->put = r->my_put;
	r->done = 1;
	r->err = rc < 0 ? rc : 0;
	pthread_cond_signal(&r->can_take);
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

static int reader_start(struct reader *r, struct evlog *log, uint64_t from)
{
	sigset_t all, old;
	int rc;

	memset(r, 0, sizeof *r);
	r->log = log;
	r->from = from;
	if (pthread_mutex_init(&r->mu, NULL))
		return CL_ENOMEM;
	if (pthread_cond_init(&r->can_put, NULL) || pthread_cond_init(&r->can_take, NULL))
		return CL_ENOMEM;
	/* signals (SIGINT/SIGTERM) are for the writer, which decides when to stop */
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&r->th, NULL, reader_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return CL_ENOMEM;
	r->started = 1;
	return 0;
}

/* The next event: 1 and *out, 0 at the end of the snapshot, < 0 error. */
static int reader_take(struct reader *r, struct slot **out)
{
	int rc = 1;

	if (r->my_take == r->avail_to) {
		/* give back what was used, and wait for more */
		pthread_mutex_lock(&r->mu);
		if (r->take != r->my_take) {
			r->take = r->my_take;
			pthread_cond_signal(&r->can_put);
		}
		while (r->take == r->put && !r->done)
			pthread_cond_wait(&r->can_take, &r->mu);
		r->avail_to = r->put;
		if (r->take == r->put)
			rc = r->err;
		pthread_mutex_unlock(&r->mu);
	}
	if (rc == 1)
		*out = &r->slot[r->my_take % RING];
	return rc;
}

/* The writer is done with the slot reader_take gave it. */
static void reader_release(struct reader *r)
{
	r->my_take++;
}

static void reader_stop(struct reader *r)
{
	unsigned i;

	if (r->started) {
		pthread_mutex_lock(&r->mu);
		r->quit = 1;
		pthread_cond_signal(&r->can_put);
		pthread_mutex_unlock(&r->mu);
		pthread_join(r->th, NULL);
	}
	for (i = 0; i < RING; i++)
		free(r->slot[i].buf);
	pthread_cond_destroy(&r->can_put);
	pthread_cond_destroy(&r->can_take);
	pthread_mutex_destroy(&r->mu);
}

/* The cache may be ahead of the tables after a failed batch: forget it
 * (after dirty_clear, which looks entries up). */
static void cache_drop(struct driver *d)
{
	size_t i;

	free(d->ent);
	d->ent = NULL;
	d->nent = 0;
	free(d->com);
	d->com = NULL;
	d->ncom = 0;
	for (i = 0; i < d->nuser; i++)
		free(d->uname[i]);
	free(d->uname);
	d->uname = NULL;
	d->nuser = 0;
}

static double mono_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int stopped(const struct replay_opts *o)
{
	return o->stop && *o->stop;
}

/*
 * Apply everything after *last up to the log's head as of now. Commits a
 * batch every o->batch events, when the batch's text grows past
 * REPLAY_BATCH_BYTES, at the end, and when asked to stop.
 */
static int catch_up(struct driver *d, const struct replay_opts *o, uint64_t *last,
		    struct replay_stats *st)
{
	unsigned batch = o->batch ? o->batch : REPLAY_DEFAULT_BATCH;
	struct replay_progress pg = { 0 };
	struct reader *r;
	struct slot *slot = NULL;
	uint64_t head, in_batch = 0, start = *last;
	double pass0 = mono_now();
	int rc, more;

	if ((rc = evlog_last(d->log, &head, NULL)))
		return cli_err(d->err, d->errlen, rc, "cannot read the log: %s", cl_strerror(rc));
	if (head < *last)
		return cli_err(d->err, d->errlen, CL_ECORRUPT,
			   "the tables are at seq %llu but the log ends at seq %llu; was the log "
			   "restored from an older backup without a new epoch? Run with --rebuild",
			   (unsigned long long)*last, (unsigned long long)head);
	if (head == *last)
		return 0;
	pg.total = head - *last;
	if (!(r = calloc(1, sizeof *r)))
		return cli_err(d->err, d->errlen, CL_ENOMEM, "out of memory");
	if ((rc = reader_start(r, d->log, *last + 1))) {
		reader_stop(r);
		free(r);
		return cli_err(d->err, d->errlen, rc, "cannot start the log reader");
	}
	if ((rc = d->b->ops->begin(d->b))) {
		reader_stop(r);
		free(r);
		return cli_err(d->err, d->errlen, rc, "%s", d->b->err);
	}
	for (;;) {
		more = reader_take(r, &slot);
		if (more < 0) {
			rc = cli_err(d->err, d->errlen, more, "the log is unreadable after seq %llu: %s",
				 (unsigned long long)(*last + in_batch), cl_strerror(more));
			break;
		}
		if (more > 0) {
			if (slot->ev.seq != *last + in_batch + 1) {
				rc = cli_err(d->err, d->errlen, CL_ECORRUPT,
					 "the log skips from seq %llu to %llu",
					 (unsigned long long)(*last + in_batch),
					 (unsigned long long)slot->ev.seq);
				break;
			}
			d->ts_iso = slot->iso;
			rc = apply_event(d, &slot->ev, slot->json);
			reader_release(r);
			if (rc)
				break;
			in_batch++;
		}
		if (in_batch && (!more || in_batch >= batch || d->batch_bytes >= REPLAY_BATCH_BYTES ||
				 stopped(o))) {
			if ((rc = batch_commit(d, *last + in_batch)))
				break;
			if (!st->first)
				st->first = *last + 1;
			*last += in_batch;
			st->applied += in_batch;
			st->last = *last;
			st->batches++;
			in_batch = 0;
			if (o->progress) {
				pg.done = *last - start;
				if (pg.done > pg.total)   /* the reader's snapshot was newer */
					pg.total = pg.done;
				pg.seq = *last;
				pg.elapsed = mono_now() - pass0;
				o->progress(o->progress_arg, &pg);
			}
			if (!more || stopped(o) || (o->max_batches && st->batches >= o->max_batches))
				break;
			if ((rc = d->b->ops->begin(d->b))) {
				rc = cli_err(d->err, d->errlen, rc, "%s", d->b->err);
				break;
			}
		} else if (!more || stopped(o)) {
			d->b->ops->rollback(d->b);   /* nothing in it */
			break;
		}
	}
	reader_stop(r);
	free(r);
	if (rc) {
		d->b->ops->rollback(d->b);
		dirty_clear(d);
		cache_drop(d);
	}
	return rc;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	/* a signal cuts the sleep short, and the caller looks at its stop flag */
	nanosleep(&ts, NULL);
}

int replay_run(struct replay_backend *b, const struct replay_opts *o, struct replay_stats *st,
	       char *err, size_t errlen)
{
	struct driver d;
	struct rp_state state;
	uint64_t last, gen;
	double t0 = mono_now();
	int rc;

	memset(st, 0, sizeof *st);
	memset(&d, 0, sizeof d);
	d.b = b;
	d.err = err;
	d.errlen = errlen;
	if (err && errlen)
		err[0] = 0;
	if (o->batch > REPLAY_MAX_BATCH)
		return cli_err(err, errlen, CL_EUSAGE, "batch size %u is over %u", o->batch,
			   REPLAY_MAX_BATCH);
	rc = evlog_open(&d.log, o->data_dir, EVLOG_RDONLY, 0);
	if (rc == CL_ENOTFOUND)
		return cli_err(err, errlen, rc, "no event log in %s (missing directory, or not made "
			   "by changelog-admin init / changelogd)", o->data_dir);
	if (rc) {
		char why[1024];

		datadir_explain(o->data_dir, rc, why, sizeof why);
		return cli_err(err, errlen, rc, "cannot open the event log: %s", why);
	}
	snprintf(d.epoch, sizeof d.epoch, "%s", evlog_epoch(d.log));

	if ((rc = schema_ensure(b, o->rebuild, err, errlen)))
		goto out;
	if ((rc = b->ops->state_get(b, &state))) {
		cli_err(err, errlen, rc, "%s", b->err);
		goto out;
	}
	if (state.present && strcmp(state.epoch, d.epoch) != 0) {
		rc = cli_err(err, errlen, CL_EEPOCH,
			 "the tables were replayed from another log (epoch %s, up to seq %llu); "
			 "this log's epoch is %s. Run with --rebuild to drop and recreate "
			 "changelog-replay's tables from this log", state.epoch,
			 (unsigned long long)state.last_seq, d.epoch);
		goto out;
	}
	last = state.present ? state.last_seq : 0;
	if (!state.present) {
		/* record the epoch now, so even an empty log pins the tables to it */
		if ((rc = b->ops->begin(b)) || (rc = batch_commit(&d, 0))) {
			if (!err[0])
				cli_err(err, errlen, rc, "%s", b->err);
			b->ops->rollback(b);
			goto out;
		}
	}
	st->head = last;
	gen = evlog_generation(d.log);
	for (;;) {
		if ((rc = catch_up(&d, o, &last, st)))
			break;
		st->head = last;
		if (!o->follow || stopped(o) || (o->max_batches && st->batches >= o->max_batches))
			break;
		/* wait for a commit by any process; evlog_generation costs no I/O */
		while (!stopped(o)) {
			uint64_t g = evlog_generation(d.log);

			if (g != gen) {
				gen = g;
				break;
			}
			sleep_ms(o->poll_ms ? o->poll_ms : 200);
		}
		if (stopped(o))
			break;
	}
out:
	st->secs = mono_now() - t0;
	dirty_clear(&d);
	cache_drop(&d);
	free(d.dirty);
	evlog_close(d.log);
	return rc;
}

/* ---- events given in memory (fuzzing, tests) ---------------------------------------- */

int replay_apply_events(struct replay_backend *b, const char *epoch, const struct event *evs,
			size_t n, char *err, size_t errlen)
{
	struct driver d;
	struct rp_state state;
	char iso[CL_ISO_LEN + 1];
	uint64_t last;
	size_t i;
	int rc;

	memset(&d, 0, sizeof d);
	d.b = b;
	d.err = err;
	d.errlen = errlen;
	if (err && errlen)
		err[0] = 0;
	snprintf(d.epoch, sizeof d.epoch, "%s", epoch);
	if ((rc = schema_ensure(b, 0, err, errlen)))
		return rc;
	if ((rc = b->ops->state_get(b, &state)))
		return cli_err(err, errlen, rc, "%s", b->err);
	last = state.present ? state.last_seq : 0;
	if ((rc = b->ops->begin(b)))
		return cli_err(err, errlen, rc, "%s", b->err);
	for (i = 0; i < n && !rc; i++) {
		json_t *j;
		char *text;

		if (evs[i].seq != last + i + 1) {
			rc = cli_err(err, errlen, CL_ECORRUPT, "event %zu: seq %llu, expected %llu", i,
				 (unsigned long long)evs[i].seq, (unsigned long long)(last + i + 1));
			break;
		}
		j = ev_to_json(&evs[i]);
		text = j ? json_dumps(j, JSON_COMPACT) : NULL;
		json_decref(j);
		if (!text) {
			rc = cli_err(err, errlen, CL_ENOMEM, "out of memory");
			break;
		}
		cl_iso_time(evs[i].ts, iso);
		d.ts_iso = iso;
		rc = apply_event(&d, &evs[i], (struct cl_str){ text, strlen(text) });
		free(text);
	}
	if (!rc)
		rc = batch_commit(&d, last + n);
	if (rc)
		b->ops->rollback(b);
	dirty_clear(&d);
	cache_drop(&d);
	free(d.dirty);
	return rc;
}
