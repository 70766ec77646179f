/*
 * proj_internal.h - the projection's state, shared by proj.c (apply, views,
 * invariants), query.c (stored queries) and cmd.c (commands). Nothing
 * outside core/ includes this file; everyone else goes through proj.h.
 *
 * Shape, sized for a million entries and a million comments:
 *  - Every kind of thing (user, token, entry, comment) lives in one dynamic
 *    array indexed by id - 1. Ids are gapless from 1 in log order, so the
 *    array is dense and the next id is always count + 1.
 *  - Internal ids are uint32_t: an array of 2^32 records would not fit in
 *    memory anyway, and halving the id fields keeps the records small.
 *    proj_apply refuses (CL_ENOMEM) to grow a kind past PROJ_ID_MAX.
 *  - Strings that never change (user names, token labels, comment bodies)
 *    are copied into a bump arena: no per-string malloc header, and one
 *    free at the end. Entry title and body can be edited, so each entry owns
 *    one pooled block "title\0body\0" that an edit replaces; pooled blocks
 *    (also the id lists below) come from the same arena, with free lists by
 *    size (proj.c, pool_alloc), and only blocks over 1 KB are malloc'd.
 *  - Each entry keeps the ids of its comments in ascending order (the
 *    per-entry comment index: trees are rebuilt from it in one pass because
 *    a parent always has a smaller id than its replies), its status history
 *    and the seqs of its edits; with its own creation seq and its comments'
 *    seqs that is every event that touched it (getEntryHistory). An entry
 *    that was never edited or commented costs no allocation but its text.
 *  - The activity index (struct pact) lists entries by their latest event,
 *    for the "sort by last activity" listing.
 *  - Two open-addressing hash tables: user name -> user id and token hash ->
 *    token id. Both store ids (0 = empty slot); tables grow at half load.
 *  - Every string stored here has been checked (UTF-8, no NUL, limits) by
 *    proj_apply, so the JSON views can use jansson's *_nocheck calls.
 */
#ifndef CL_PROJ_INTERNAL_H
#define CL_PROJ_INTERNAL_H

#include <stdint.h>
#include <stdatomic.h>
#include <stddef.h>
#include <jansson.h>
#include "cl.h"
#include "event.h"
#include "proj.h"
#include "cmd.h"

#define PROJ_ID_MAX (UINT32_MAX - 1)

struct pvec32 {
	uint32_t *v;
	uint32_t n, cap;
};

struct pvec64 {
	uint64_t *v;
	uint32_t n, cap;
};

/* One status change of an entry, as kept for getEntry's status_history. */
struct pstatus {
	uint64_t seq;
	int64_t at;
	uint32_t by;          /* user id; 0 = system */
	uint8_t from, to;     /* enum cl_status */
};

struct pentry {
	char *text;           /* malloc'd "title\0body\0" */
	int64_t created, updated;   /* updated: ts of the last entry.* event */
	uint64_t seq;         /* seq of its entry.created */
	struct pvec64 edits;  /* seqs of its entry.edited events (no memory until one) */
	struct pvec64 cmods;  /* seqs of comment.edited / comment.deleted of its comments */
	struct pvec32 comments; /* ids of its comments, ascending */
	struct pstatus *hist; /* status changes, in log order */
	uint32_t title_n, body_n, author, version; /* version = 1 + edits + status changes */
	uint32_t nhist, caphist;
	uint8_t kind, status;
	uint32_t esc;         /* title and body as JSON strings, bytes; 0 = not
	                         measured since the last change (query.c) */
	uint64_t act_seq;     /* seq of its latest event (entry.* or comment.added):
	                         also the version of its JSON view (texts.c) */
};

/*
 * The activity index (getChangelogEntries sort "activity"): one record per
 * event that touched an entry, in log order, so sorted by seq. A record is
 * live when it is its entry's latest (seq == act_seq); older ones are
 * skipped by readers and dropped when they outnumber the live ones
 * (proj.c, act_reserve), so the array holds at most 2 x entries + 1024.
 */
struct pact {
	uint64_t seq;
	uint32_t entry;
	uint32_t actor;       /* who did it: the entry is read for them (core/read.c) */
};

struct pcomment {
	const char *body;     /* arena, NUL-terminated */
	uint64_t seq;
	int64_t created;
	int64_t edited;       /* ts of its last comment.edited; 0 = never edited */
	uint32_t body_n, entry, parent, author; /* parent 0 = top level */
	uint32_t depth;
	uint8_t deleted;      /* comment.deleted: body "" (a tombstone; replies stay) */
};

/* One user's read mark on one entry (core/read.c). */
struct pread {
	uint64_t upto;        /* the user has read the entry up to this seq */
	uint32_t entry;
};

#define PROJ_READ_MARKS  256u   /* entry marks kept per user (core/read.c) */
#define PROJ_READ_DROP    64u   /* dropped at once when they are full */
#define PROJ_UNREAD_LIST 500u   /* entries getUnread lists at most */

struct puser {
	const char *name;     /* arena, NUL-terminated */
	int64_t created;
	uint32_t name_n;
	uint8_t role;         /* enum cl_role */
	struct pvec32 tokens; /* ids of its tokens, ascending */
	uint64_t read_all;    /* read.marked: all read up to this seq (from user.created) */
	struct pread *reads;  /* malloc'd; entry marks above read_all, sorted by entry */
	uint32_t nreads, cap_reads;
};

struct ptoken {
	uint8_t hash[EV_HASH_LEN];
	const char *label;    /* arena, NUL-terminated (may be "") */
	int64_t created;
	uint32_t label_n, user;
	uint8_t revoked;
};

/* A webhook endpoint (webhook.created); deleted ones stay, url freed. */
struct pwebhook {
	char *url;            /* malloc'd, NUL-terminated; NULL once deleted */
	uint32_t url_n;
	uint32_t mask;        /* event types it gets (ev_types_mask) */
	uint8_t nonce[EV_HASH_LEN];
	uint64_t seq;         /* its webhook.created */
	uint64_t deleted_seq; /* its webhook.deleted, or 0 */
	int64_t created;
	uint32_t creator;
};

struct parena_chunk;

/*
 * The entry text cache (core/texts.c): each entry's JSON view, serialized,
 * kept with the act_seq it was made at. An entry's view changes only with
 * an event that moves its act_seq (entry.*, comment.added: its comment
 * count and last_activity), so a text is valid while act == act_seq and
 * needs no invalidation; a stale one waits to be evicted or replaced.
 * Slots are indexed by entry id - 1 (grown on first use); texts with a
 * text are on one LRU list (prev/next: entry ids, 0 = none).
 */
struct ptext_slot {
	char *text;           /* malloc'd, n bytes (no NUL), or NULL */
	uint64_t act;         /* act_seq of the entry when it was made */
	uint32_t n, prev, next;
	uint32_t stamp;       /* the page that last used it (never evicted by it) */
};

struct ptexts {
	struct ptext_slot *slot;
	uint32_t cap;         /* slots */
	uint32_t head, tail;  /* most and least recently used (entry ids) */
	uint32_t stamp;       /* the page being put together */
	size_t bytes, max;    /* held (texts + malloc's 16 per text), and the cap */
	size_t n;             /* texts held */
	uint64_t made, hits;  /* texts serialized, texts reused */
	uint64_t evicted;     /* texts dropped for the cap (not for a changed entry) */
};

#define POOL_CLASSES 128          /* pooled block sizes 8, 16, .. 1024 bytes */

struct parena {
	struct parena_chunk *head;   /* current chunk first; big strings behind it */
	size_t bytes;                /* total bytes allocated, for stats */
	size_t next_cap;             /* size of the next chunk (doubles) */
	void *free[POOL_CLASSES];    /* freed pooled blocks by size / 8 - 1 */
	/* proj_prepare (another thread) and the apply side share only these two */
	_Atomic size_t want;         /* next_cap once chunks are huge, else 0 */
	struct parena_chunk *_Atomic spare;  /* a faulted-in chunk of size want */
	struct parena_chunk *prep;   /* proj_prepare's own: being faulted in */
	size_t prep_done;            /* bytes of prep touched so far */
};

struct proj {
	uint64_t seq;                /* last applied */
	struct puser *users;
	struct ptoken *tokens;
	struct pentry *entries;
	struct pcomment *comments;
	uint32_t nusers, cap_users, ntokens, cap_tokens;
	uint32_t nentries, cap_entries, ncomments, cap_comments;
	uint32_t *name_tab;          /* user ids; size name_cap (power of 2) */
	uint32_t *tok_tab;           /* token ids; size tok_cap (power of 2) */
	uint32_t name_cap, tok_cap;
	uint64_t by_status[5];       /* entries per enum cl_status */
	uint64_t by_kind[4];         /* entries per enum cl_kind */
	uint32_t admins;             /* users with ROLE_ADMIN */
	struct pwebhook *webhooks;   /* by id - 1 */
	uint32_t nwebhooks, cap_webhooks, live_webhooks;
	struct pact *act;            /* the activity index, see struct pact */
	uint32_t nact, cap_act;
	struct parena arena;
	struct ptexts texts;         /* serialized entries (texts.c) */
	/*
	 * proj_prepare also faults in the entry and comment arrays ahead of
	 * the records being written: the lock keeps grow (which may move an
	 * array) and proj_prepare's madvise apart; the counts are published
	 * after each batch so it knows how far ahead "ahead" is.
	 */
	atomic_flag arrays_lock;
	_Atomic uint32_t shown_entries, shown_comments;
	struct {
		const void *base;    /* the mapping last populated (proj_prepare's own) */
		size_t done;         /* bytes of it populated */
	} prep_arr[2];
};

/* Records by id; NULL when the id is 0 or not (yet) assigned. */
static inline struct puser *proj_i_user(const struct proj *p, uint64_t id)
{
	return id >= 1 && id <= p->nusers ? &p->users[id - 1] : NULL;
}
static inline struct ptoken *proj_i_token(const struct proj *p, uint64_t id)
{
	return id >= 1 && id <= p->ntokens ? &p->tokens[id - 1] : NULL;
}
static inline struct pentry *proj_i_entry(const struct proj *p, uint64_t id)
{
	return id >= 1 && id <= p->nentries ? &p->entries[id - 1] : NULL;
}
static inline struct pcomment *proj_i_comment(const struct proj *p, uint64_t id)
{
	return id >= 1 && id <= p->ncomments ? &p->comments[id - 1] : NULL;
}
static inline const char *proj_i_title(const struct pentry *e)
{
	return e->text;
}
static inline const char *proj_i_body(const struct pentry *e)
{
	return e->text + e->title_n + 1;
}

/* User id by exact name, 0 if none. */
uint32_t proj_i_user_find(const struct proj *p, const char *name, size_t n);
/* Token id by hash, 0 if none (revoked tokens included). */
uint32_t proj_i_token_find(const struct proj *p, const uint8_t hash[EV_HASH_LEN]);

/* 1 if from -> to is an allowed status transition. */
int proj_i_transition_ok(int from, int to);

/* Set a refusal: code (enum cmd_code) and a printf-style message. Returns
 * the CL_E* code that refusals return: CL_ENOTFOUND for CMD_NOT_FOUND,
 * CL_ENOMEM for CMD_INTERNAL, CL_EINVAL for every other code. */
int proj_i_fail(struct cl_fail *fail, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Refuse (bad_request) any key of the object params not in allowed
 * (NULL-terminated). 0 or the refusal's code. */
int proj_i_params_known(json_t *params, const char *const *allowed, struct cl_fail *fail);
/* params[key], or NULL when absent or JSON null ("not given"). */
json_t *proj_i_param(json_t *params, const char *key);

/* ISO-8601 string of a µs timestamp as a new JSON string. */
json_t *proj_i_iso(int64_t us);

/* 1 if activity record r is its entry's latest (not superseded). */
static inline int proj_i_act_live(const struct proj *p, const struct pact *r)
{
	return p->entries[r->entry - 1].act_seq == r->seq;
}

/* Index of the first activity record with seq >= from (nact if none): the
 * index is sorted by seq. */
static inline uint32_t proj_i_act_from(const struct proj *p, uint64_t from)
{
	uint32_t lo = 0, hi = p->nact;

	while (lo < hi) {
		uint32_t mid = lo + (hi - lo) / 2;

		if (p->act[mid].seq < from)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * Read marks (core/read.c). read_upto: u has read entry up to this seq;
 * read_unread: 1 if e (id entry) has activity after that. read_reserve
 * makes room for one more mark of user (before an apply changes anything;
 * 0 or CL_ENOMEM), read_note then records "user read entry up to upto"
 * (a no-op unless it moves the mark on), read_all "everything up to upto".
 * apply_read_marked is proj_apply's step; read_judge refuses a mark that
 * would not move anything on (markRead / markAllRead); q_unread answers
 * getUnread; read_check is proj_check's part.
 */
uint64_t proj_i_read_upto(const struct puser *u, uint32_t entry);
int proj_i_read_unread(const struct puser *u, uint64_t user, const struct pact *r);
int proj_i_read_reserve(struct proj *p, uint64_t user);
void proj_i_read_note(struct proj *p, uint64_t user, uint32_t entry, uint64_t upto);
void proj_i_read_all(struct proj *p, uint64_t user, uint64_t upto);
int proj_i_apply_read_marked(struct proj *p, const struct event *ev);
int proj_i_read_judge(const struct proj *p, uint64_t user, uint64_t entry, uint64_t upto,
		      struct cl_fail *fail);
int proj_i_q_unread(const struct proj *p, const struct proj_qctx *ctx, json_t **result,
		    struct cl_fail *fail);
int proj_i_read_check(const struct proj *p, char *why, size_t wl);

/*
 * The entry text cache (texts.c). proj_i_texts_page begins a page: the
 * texts it uses from then until the next call are not evicted for it.
 * proj_i_text: entry id's text if kept and current (marked used), else
 * NULL. proj_i_text_make: serialize it (proj_entry_json, compact) and keep
 * it; NULL on ENOMEM. proj_i_texts_free: at proj_free. The page's texts
 * stay valid until proj_i_texts_trim.
 */
void proj_i_texts_page(struct proj *p);
const char *proj_i_text(struct proj *p, uint32_t id, size_t *n);
const char *proj_i_text_make(struct proj *p, uint32_t id, size_t *n);
void proj_i_texts_free(struct proj *p);
/* Drop the least recently used texts down to the cap (after a page). */
void proj_i_texts_trim(struct proj *p);

/* last_activity of an entry: max(updated, created of its last comment). */
int64_t proj_i_last_activity(const struct proj *p, const struct pentry *e);

#endif
