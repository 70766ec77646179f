/*
 * websess.h - browser sessions: "stay signed in" (docs/http-api.md,
 * "Browser sessions").
 *
 * POST /session exchanges a token for a session: a random value
 * ("cls_" + 43 base64url characters of 32 bytes from OpenSSL, store/token.h)
 * sent once as the clg_session cookie. The server keeps only its SHA-256,
 * with the user and the token it was made from, in memory and in the
 * journal DATA/sessions (made with the first session; mode 0600; one line
 * per new or ended session, hashes only, never a cookie value; under a
 * header naming the log's epoch), so a restart keeps browsers signed
 * in. The journal is read at startup (a torn last line, as a crash may
 * leave, is ignored), rewritten compacted then and whenever it holds more
 * than twice the live sessions (temp file, fsync, rename). Appends are not
 * fsync'd: a power failure may sign the last few browsers out, nothing else.
 * A session ends on DELETE /session, at its expiry (--session-days, 30),
 * and when its token is revoked (checked at every use, and purged when the
 * revocation is published).
 *
 * Bounded: at most WEBSESS_MAX sessions in all (more: refused until some
 * expire or end) and WEBSESS_PER_USER per user (a new one replaces the
 * user's oldest). Each user's sessions are also listed under the user (a
 * second hash table, by user id), so a sign-in looks at that user's
 * sessions only, not at the whole table. Time is the caller's (cl_now_us: the wall clock, so a
 * test moves it with libfaketime).
 */
#ifndef CL_NET_WEBSESS_H
#define CL_NET_WEBSESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../core/event.h"
#include "../core/proj.h"

#define WEBSESS_COOKIE "clg_session"
#define WEBSESS_PREFIX "cls_"
#define WEBSESS_LEN 47              /* "cls_" + 43 */
#define WEBSESS_MAX 100000
#define WEBSESS_PER_USER 32
#define WEBSESS_SLOTS 4096          /* hash chains (a power of two) */

struct websess_user;

struct websess {
	uint8_t hash[EV_HASH_LEN];     /* SHA-256 of the cookie value */
	uint64_t user, token;
	int64_t expires_us;
	struct websess *next;          /* the chain of its slot */
	struct websess_user *owner;    /* its user's list ... */
	struct websess *uprev, *unext; /* ... and its neighbours in it */
};

/* The sessions of one user (at least one: an empty list is freed). */
struct websess_user {
	uint64_t user;
	size_t n;                      /* sessions in the list (<= WEBSESS_PER_USER) */
	struct websess *head;
	struct websess_user *next;     /* the chain of its user slot */
};

struct websess_store {
	struct websess **slot;         /* WEBSESS_SLOTS chains */
	struct websess_user **uslot;   /* WEBSESS_SLOTS chains, by user id */
	size_t n;                      /* sessions held */
	size_t users;                  /* users with a session */
	int64_t ttl_us;                /* a new session lives this long */
	char path[4096];               /* the journal ("" = memory only) */
	char epoch[64];                /* the log's: another log's sessions are void */
	FILE *jf;                      /* ... open for appending */
	size_t records;                /* lines in it */
	int broken;                    /* it could not be written: memory only now */
};

/* Empty store, in memory only. 0 or CL_ENOMEM. */
int websess_init(struct websess_store *st, int64_t ttl_us);
/* Load dir/sessions (if it exists) as of now, then keep it. Only records
 * under the header of this epoch count: a session made for another log
 * (deleted and recreated, or restored from a backup) names tokens of that
 * log and is dropped. 0 or CL_E*. */
int websess_open(struct websess_store *st, const char *dir, const char *epoch, int64_t now);
void websess_release(struct websess_store *st);

/*
 * A new session for (user, token) at now: its cookie value into out
 * (WEBSESS_LEN + 1 bytes) and when it expires. 0; CL_ETOOBIG when
 * WEBSESS_MAX unexpired sessions are held; CL_ENOMEM, CL_EIO.
 */
int websess_new(struct websess_store *st, uint64_t user, uint64_t token, int64_t now,
		char out[WEBSESS_LEN + 1], int64_t *expires_us);

/*
 * The session whose cookie value is v (n bytes) at now, its token still
 * valid in p: 0 with the ids; -1 if there is none (unknown, expired,
 * token revoked: the last two are dropped).
 */
int websess_find(struct websess_store *st, const struct proj *p, const char *v, size_t n,
		 int64_t now, uint64_t *user, uint64_t *token);

/* End the session of v: 1 if there was one, else 0. */
int websess_end(struct websess_store *st, const char *v, size_t n);

/* Token token was revoked: end its sessions. Returns how many. */
size_t websess_revoked(struct websess_store *st, uint64_t token);

/* How many sessions user holds (its list's count). */
size_t websess_of_user(const struct websess_store *st, uint64_t user);

#endif
