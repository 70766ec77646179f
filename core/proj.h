/*
 * proj.h - the in-memory projections of the log and the stored queries.
 *
 * proj_apply(event) is deterministic and total: given the same events in the
 * same order it builds byte-for-byte the same state, so the server, the
 * replay tool and the audit tool can all rebuild it from the log. It refuses
 * (CL_ESTATE) an event that is impossible in the current state (unknown
 * entry, comment parent in another entry, bad transition, seq gap), which is
 * how changelog-audit checks projection invariants.
 *
 * Ids (users, tokens, entries, comments) are gapless from 1 and assigned in
 * log order, so the next id of each kind is always count + 1.
 *
 * Pure C over libc and jansson: no I/O. Queries that need stored events
 * (getEntryHistory) get them through the loader in struct proj_qctx.
 */
#ifndef CL_PROJ_H
#define CL_PROJ_H

#include <stdint.h>
#include <jansson.h>
#include "cl.h"
#include "event.h"

struct proj;

struct proj *proj_new(void);
void proj_free(struct proj *p);

/* Last applied seq (0 for an empty projection). */
uint64_t proj_seq(const struct proj *p);

/*
 * Apply one decoded event; ev->seq must be proj_seq(p) + 1.
 * Errors: CL_ESTATE (event impossible in this state; p unchanged),
 * CL_ENOMEM (p unchanged).
 */
int proj_apply(struct proj *p, const struct event *ev);

/*
 * proj_apply over n events in order, shaped as the replay callback
 * (evlog_replay in store/evlog.h; p is the struct proj): 0, or the first
 * error, with the events before it applied. Faster than n proj_apply calls:
 * it fetches the records the events touch before applying them.
 */
int proj_apply_batch(void *p, const struct event *ev, size_t n);

/*
 * Fault in memory the next proj_apply calls will write (the replay's idle
 * hook: evlog_replay in store/evlog.h). The one call that may run on
 * another thread while proj_apply / proj_apply_batch run on p; at most one
 * such thread. 1 if it did some work (call again when idle), 0 if not.
 */
int proj_prepare(void *p);

/* Counts, for id assignment and stats. */
uint64_t proj_user_count(const struct proj *p);
uint64_t proj_token_count(const struct proj *p);
uint64_t proj_entry_count(const struct proj *p);
uint64_t proj_comment_count(const struct proj *p);

/* ---- read access used by commands, auth and the server ----------------- */

struct proj_user_info {
	uint64_t id;
	const char *name;     /* NUL-terminated, owned by p */
	int role;             /* enum cl_role */
};
/* 0 or CL_ENOTFOUND. */
int proj_user_get(const struct proj *p, uint64_t id, struct proj_user_info *out);
int proj_user_by_name(const struct proj *p, const char *name, size_t n,
		      struct proj_user_info *out);

/*
 * Token check for auth: 0 and the user/token ids if hash names an active
 * (issued, not revoked) token of an existing user; CL_ENOTFOUND otherwise.
 * The final comparison of hashes is constant time.
 */
int proj_token_check(const struct proj *p, const uint8_t hash[EV_HASH_LEN],
		     uint64_t *user, uint64_t *token);
/* Owner of a token id and whether it is revoked: 0 or CL_ENOTFOUND. */
int proj_token_get(const struct proj *p, uint64_t token, uint64_t *user, int *revoked);

struct proj_entry_info {
	uint64_t id, author;
	int status;          /* enum cl_status */
	int kind;            /* enum cl_kind */
	uint32_t version;    /* events applied to this entry (created = 1) */
};
int proj_entry_get(const struct proj *p, uint64_t id, struct proj_entry_info *out);

struct proj_comment_info {
	uint64_t id, entry, parent, author;
	uint32_t depth;      /* 0 for a top-level comment */
};
int proj_comment_get(const struct proj *p, uint64_t id, struct proj_comment_info *out);

/*
 * Webhook endpoints (webhook.created / webhook.deleted). Ids run from 1 to
 * proj_webhook_count; a deleted one keeps its id (info.deleted_seq set,
 * url NULL). 0 or CL_ENOTFOUND.
 */
struct proj_webhook_info {
	uint64_t id;
	const char *url;      /* NUL-terminated, owned by p; NULL once deleted */
	uint32_t mask;        /* event types it gets: bit 1u << type */
	const uint8_t *nonce; /* EV_HASH_LEN bytes (the secret's derivation input) */
	uint64_t seq;         /* its webhook.created */
	uint64_t deleted_seq; /* its webhook.deleted, or 0 */
};
uint64_t proj_webhook_count(const struct proj *p);
int proj_webhook_get(const struct proj *p, uint64_t id, struct proj_webhook_info *out);

/* ---- JSON views (shared by queries, pushes and the replay equivalence) -- */

/* Entry summary as listed by getChangelogEntries (no comments). NULL if absent. */
json_t *proj_entry_json(const struct proj *p, uint64_t id);
/* One comment without replies. NULL if absent. */
json_t *proj_comment_json(const struct proj *p, uint64_t id);
/* One user ({"id","name","role","created"}). NULL if absent. */
json_t *proj_user_json(const struct proj *p, uint64_t id);

/* ---- the entry text cache (core/texts.c) -------------------------------- */

/*
 * Each entry's JSON view is kept serialized once made, for the pages of
 * getChangelogEntries (proj_entries_text), within a cap of bytes: the
 * least recently used texts are dropped first. A new projection keeps up
 * to PROJ_TEXTS_MAX; proj_texts_max changes the cap and drops the least
 * recently used texts down to it at once (0: drop all, then keep nothing
 * but the page being put together). The cache passes the cap only while a
 * page is put together, by that page's texts (at most PROJ_ANSWER_MAX).
 */
#define PROJ_TEXTS_MAX ((size_t)16 << 20)

struct proj_texts_stats {
	size_t bytes, max;          /* held now (texts and malloc headers), the cap */
	size_t n;                   /* texts held now */
	uint64_t made, hits;        /* texts serialized, texts reused */
	uint64_t evicted;           /* texts dropped to stay within the cap */
};

void proj_texts_max(struct proj *p, size_t bytes);
void proj_texts_stats(const struct proj *p, struct proj_texts_stats *out);

/* ---- stored queries ---------------------------------------------------- */

/*
 * The work budget of one query. getChangelogEntries counts PROJ_WORK_ENTRY
 * for each entry it examines plus the bytes of title and body its "q"
 * search reads (the body only when the title did not match). When the work
 * reaches the budget the walk stops after that entry and answers a partial
 * page ("partial": true, docs/protocol.md), so one query does at most the
 * budget plus one entry's worth (PROJ_WORK_ENTRY + CL_MAX_TITLE +
 * CL_MAX_BODY). The search is linear (core/search.h), so work is time.
 */
#define PROJ_QUERY_WORK  (4u << 20)
#define PROJ_WORK_ENTRY  64u
#define PROJ_WORK_STALE  8u     /* a superseded record of the activity index */

/*
 * The size budget of one answer: an upper bound of its serialized bytes
 * (jansson's compact text; the server's envelope adds under 1 KiB), known
 * before the answer is built. getChangelogEntries stops before the entry
 * that would take the page past it and answers a partial page (with
 * next_cursor at that entry); getEntry, getEntryHistory and getUsers
 * refuse an answer over it as too_large. Either way *ctx->cut is set, so
 * a caller that gave a smaller budget than PROJ_ANSWER_MAX (because its
 * memory is in use) knows the answer was shaped by it.
 */
#define PROJ_ANSWER_MAX  ((uint64_t)16 << 20)

struct proj_qctx {
	uint64_t viewer;            /* user id of the caller; 0 = system/tool */
	/* Load the event at seq as ev_to_json gives it; 0 or a CL_E* code. */
	int (*load)(void *arg, uint64_t seq, json_t **out);
	void *arg;
	uint64_t work_max;          /* the query's budget; 0 = PROJ_QUERY_WORK */
	uint64_t *work;             /* if not NULL, increased by the work done */
	uint64_t size_max;          /* the answer's size budget; 0 = PROJ_ANSWER_MAX */
	uint64_t *size;             /* if not NULL, set to the answer's size bound
	                               (cut: the bound that did not fit) */
	int *cut;                   /* if not NULL, set to 1 if size_max cut or refused it */
	/*
	 * proj_entries_text only. fresh_left: the bytes of entry text it may
	 * serialize (texts not in the cache, texts.c), decreased by what it
	 * makes (it stops once it reaches 0, so it passes by at most one
	 * entry); NULL: no limit. When the page needs more: with unready set,
	 * *unready = 1 and nothing is written (what was made stays cached: a
	 * later call goes on from there); else the page ends before the first
	 * entry it could not make, as a partial page (*fresh_cut = 1: its
	 * bytes then depend on the cache, not only on the state), but always
	 * with at least one entry; the seed's bare array, which cannot say it
	 * is partial, is then made whole.
	 */
	uint64_t *fresh_left;
	int *unready;
	int *fresh_cut;
};

/* A refusal: stable code (see cmd.h enum cmd_code) and a human message. */
struct cl_fail {
	int code;
	char message[200];
};

/*
 * Run the stored query `name` with params (object or NULL). On success 0 and
 * *result is a new reference (the "result" member of the reply; the caller
 * adds epoch and at). On refusal a negative code and *fail filled
 * (bad_request for unknown names or bad params, not_found, forbidden).
 * Queries: getChangelogEntries, getEntry, getEntryHistory, getUsers, whoami,
 * getStats, getUnread (the viewer's, core/read.c). docs/protocol.md documents
 * params and output. (getPresence is the server's, not the projection's:
 * net/presence.h.)
 */
int proj_query(struct proj *p, const char *name, json_t *params,
	       const struct proj_qctx *ctx, json_t **result, struct cl_fail *fail);

/*
 * The entries JSON of the seed's request: the same as
 * getChangelogEntries with default params, as a bare array.
 */
json_t *proj_seed_entries(struct proj *p);
/* ... within ctx's size budget (ctx->cut set if it shortened the array). */
json_t *proj_seed_entries_in(struct proj *p, const struct proj_qctx *ctx);

/* A growable text buffer (malloc'd; the caller frees p). */
struct proj_text {
	char *p;
	size_t len, cap;
};
/* Room proj_entries_text leaves after what it appends, for the caller's
 * closing bytes (the server's envelope) without another copy. */
#define PROJ_TEXT_SPARE 64u

/*
 * getChangelogEntries (seed: the seed's bare array, params ignored) with
 * the result appended to *out as JSON text: the bytes jansson writes
 * (compact) for the result proj_query (or proj_seed_entries) gives in the
 * same state, put together from the entry text cache (texts.c) and the
 * members around the entries as jansson writes them. Same refusals as
 * proj_query. 0 with nothing appended when *ctx->unready was set.
 */
int proj_entries_text(struct proj *p, json_t *params, int seed, const struct proj_qctx *ctx,
		      struct proj_text *out, struct cl_fail *fail);

/* Check every invariant of the state (counts, trees, statuses); 0 or CL_ESTATE
 * with a description in why (why may be NULL). Slow: for audit and tests. */
int proj_check(const struct proj *p, char *why, size_t why_len);

#endif
