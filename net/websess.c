/*
 * websess.c - browser sessions kept by the SHA-256 of their cookie (see
 * websess.h). Chained hash table on the first bytes of the hash (uniformly
 * random already), and a second one of per-user lists (doubly linked: a
 * session leaves its user's list at once, however it ends). A sign-in
 * walks its user's list only; every scan of all sessions is on a rare path
 * (a full table, a revocation).
 */
#include "websess.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "../core/cl.h"
#include "../store/token.h"

int websess_init(struct websess_store *st, int64_t ttl_us)
{
	memset(st, 0, sizeof *st);
	st->slot = calloc(WEBSESS_SLOTS, sizeof *st->slot);
	st->uslot = calloc(WEBSESS_SLOTS, sizeof *st->uslot);
	st->ttl_us = ttl_us;
	if (!st->slot || !st->uslot) {
		websess_release(st);
		return CL_ENOMEM;
	}
	return 0;
}

void websess_release(struct websess_store *st)
{
	size_t i;

	for (i = 0; st->slot && i < WEBSESS_SLOTS; i++) {
		struct websess *w = st->slot[i], *nx;

		for (; w; w = nx) {
			nx = w->next;
			free(w);
		}
	}
	for (i = 0; st->uslot && i < WEBSESS_SLOTS; i++) {
		struct websess_user *u = st->uslot[i], *nx;

		for (; u; u = nx) {
			nx = u->next;
			free(u);
		}
	}
	free(st->slot);
	free(st->uslot);
	st->slot = NULL;
	st->uslot = NULL;
	st->n = st->users = 0;
	if (st->jf)
		fclose(st->jf);
	st->jf = NULL;
}

/* ---- the journal ------------------------------------------------------ */

/* "+ HASH USER TOKEN EXPIRES" (a new session) or "- HASH" (ended). */
static int websess_line(char *buf, size_t cap, int add, const struct websess *w)
{
	char hex[2 * EV_HASH_LEN + 1];
	size_t n = 0;

	if (OPENSSL_buf2hexstr_ex(hex, sizeof hex, &n, w->hash, EV_HASH_LEN, '\0') != 1)
		return -1;
	if (add)
		return snprintf(buf, cap, "+ %s %" PRIu64 " %" PRIu64 " %" PRId64 "\n", hex,
				w->user, w->token, w->expires_us);
	return snprintf(buf, cap, "- %s\n", hex);
}

static int websess_compact(struct websess_store *st);

/* Append one record; a journal that cannot be written is dropped (the
 * sessions stay in memory). Compacts when it has grown past the rule. */
static void websess_log(struct websess_store *st, int add, const struct websess *w)
{
	char line[200];
	int n;

	if (!st->jf) {
		/* the first session of a directory that had none: write the file
		 * whole (the table already holds the change) */
		if (st->path[0] && !st->broken && websess_compact(st) != 0)
			st->broken = 1;
		return;
	}
	n = websess_line(line, sizeof line, add, w);
	if (n <= 0 || fputs(line, st->jf) < 0 || fflush(st->jf) != 0) {
		fclose(st->jf);
		st->jf = NULL;
		st->broken = 1;
		return;
	}
	if (++st->records > 2 * st->n + 1024)
		(void)websess_compact(st);
}

/* Rewrite the journal with the live sessions only. */
static int websess_compact(struct websess_store *st)
{
	char tmp[4200], line[200];
	FILE *f;
	size_t i;
	int fd, ok = 1;

	if (!st->path[0])
		return 0;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", st->path) >= sizeof tmp)
		return CL_EINVAL;
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		return CL_EIO;
	}
	ok = fprintf(f, "e %s\n", st->epoch) > 0;
	for (i = 0; ok && i < WEBSESS_SLOTS; i++) {
		const struct websess *w;

		for (w = st->slot[i]; ok && w; w = w->next)
			ok = websess_line(line, sizeof line, 1, w) > 0 && fputs(line, f) >= 0;
	}
	ok = ok && fflush(f) == 0 && fsync(fileno(f)) == 0;
	if (fclose(f) != 0 || !ok || rename(tmp, st->path) != 0) {
		unlink(tmp);
		return CL_EIO;
	}
	if (st->jf)
		fclose(st->jf);
	st->jf = fopen(st->path, "ae");
	st->records = st->n;
	return st->jf ? 0 : CL_EIO;
}

static struct websess **websess_at(struct websess_store *st, const uint8_t hash[EV_HASH_LEN]);
static int websess_link(struct websess_store *st, struct websess *w);
static struct websess *websess_unlink(struct websess_store *st, struct websess **at);

/* One journal line into the table: 0; 1 when it is not a record (ignored);
 * CL_ENOMEM. */
static int websess_replay_line(struct websess_store *st, char *line, int64_t now, int *ours)
{
	char hex[2 * EV_HASH_LEN + 2];
	uint8_t hash[EV_HASH_LEN];
	uint64_t user, token;
	int64_t expires;
	size_t n = 0;
	struct websess *w, **at;
	int add = line[0] == '+';
	size_t elen = strlen(st->epoch);

	if (line[0] == 'e' && line[1] == ' ') {    /* the log the sessions belong to */
		*ours = strncmp(line + 2, st->epoch, elen) == 0 && line[2 + elen] == '\n';
		return 0;
	}
	if ((line[0] != '+' && line[0] != '-') || line[1] != ' ' || !strchr(line, '\n'))
		return 1;
	if (!*ours)
		return 0;
	if (add ? sscanf(line + 2, "%64s %" SCNu64 " %" SCNu64 " %" SCNd64, hex, &user, &token,
			 &expires) != 4 : sscanf(line + 2, "%64s", hex) != 1)
		return 1;
	if (strlen(hex) != 2 * EV_HASH_LEN ||
	    OPENSSL_hexstr2buf_ex(hash, sizeof hash, &n, hex, '\0') != 1 || n != EV_HASH_LEN)
		return 1;
	at = websess_at(st, hash);
	if (*at)
		free(websess_unlink(st, at));
	if (!add || expires <= now || st->n >= WEBSESS_MAX)
		return 0;
	if (!(w = calloc(1, sizeof *w)))
		return CL_ENOMEM;
	memcpy(w->hash, hash, EV_HASH_LEN);
	w->user = user;
	w->token = token;
	w->expires_us = expires;
	if (websess_link(st, w)) {
		free(w);
		return CL_ENOMEM;
	}
	return 0;
}

int websess_open(struct websess_store *st, const char *dir, const char *epoch, int64_t now)
{
	char line[256];
	FILE *f;
	int rc = 0, ours = 0;

	if (strlen(epoch) >= sizeof st->epoch)
		return CL_EINVAL;
	snprintf(st->epoch, sizeof st->epoch, "%s", epoch);
	if ((size_t)snprintf(st->path, sizeof st->path, "%s/sessions", dir) >= sizeof st->path)
		return CL_EINVAL;
	f = fopen(st->path, "re");
	if (!f && errno != ENOENT)
		return CL_EIO;
	if (!f)
		return 0;       /* made with the first session (websess_log) */
	while (rc == 0 && fgets(line, sizeof line, f))
		rc = websess_replay_line(st, line, now, &ours) == CL_ENOMEM ? CL_ENOMEM : 0;
	/* and 1 (a torn or foreign line) is skipped */
	fclose(f);
	if (!rc)
		rc = websess_compact(st);
	st->broken = rc != 0;
	return rc;
}

static size_t websess_slot(const uint8_t hash[EV_HASH_LEN])
{
	return ((size_t)hash[0] | (size_t)hash[1] << 8) & (WEBSESS_SLOTS - 1);
}

static size_t websess_uslot(uint64_t user)
{
	return (size_t)((user * 0x9E3779B97F4A7C15ull) >> 52) & (WEBSESS_SLOTS - 1);
}

/* Where user's list is linked, or where it would be (*at NULL). */
static struct websess_user **websess_user_at(struct websess_user **uslot, uint64_t user)
{
	struct websess_user **at;

	for (at = &uslot[websess_uslot(user)]; *at; at = &(*at)->next)
		if ((*at)->user == user)
			break;
	return at;
}

size_t websess_of_user(const struct websess_store *st, uint64_t user)
{
	struct websess_user **at = websess_user_at(st->uslot, user);

	return *at ? (*at)->n : 0;
}

/* Link w (its hash and user set) into both tables: 0 or CL_ENOMEM. */
static int websess_link(struct websess_store *st, struct websess *w)
{
	struct websess_user **uat = websess_user_at(st->uslot, w->user), *u = *uat;

	if (!u) {
		if (!(u = calloc(1, sizeof *u)))
			return CL_ENOMEM;
		u->user = w->user;
		*uat = u;
		st->users++;
	}
	w->owner = u;
	w->uprev = NULL;
	w->unext = u->head;
	if (u->head)
		u->head->uprev = w;
	u->head = w;
	u->n++;
	w->next = st->slot[websess_slot(w->hash)];
	st->slot[websess_slot(w->hash)] = w;
	st->n++;
	return 0;
}

/* Unlink the session *at points to from both tables (its user's list is
 * freed once empty); returns it. */
static struct websess *websess_unlink(struct websess_store *st, struct websess **at)
{
	struct websess *w = *at;
	struct websess_user *u = w->owner;

	*at = w->next;
	st->n--;
	if (w->uprev)
		w->uprev->unext = w->unext;
	else
		u->head = w->unext;
	if (w->unext)
		w->unext->uprev = w->uprev;
	if (--u->n == 0) {
		struct websess_user **uat = websess_user_at(st->uslot, u->user);

		*uat = u->next;
		free(u);
		st->users--;
	}
	return w;
}

/* Unlink, journal and free the session *at points to. */
static void websess_drop(struct websess_store *st, struct websess **at)
{
	struct websess *w = websess_unlink(st, at);

	websess_log(st, 0, w);
	free(w);
}

/* Drop every session for which drop(w) holds; returns how many. */
static size_t websess_sweep(struct websess_store *st, int (*drop)(const struct websess *,
								  const void *), const void *arg)
{
	size_t i, n = 0;

	for (i = 0; i < WEBSESS_SLOTS; i++) {
		struct websess **at = &st->slot[i];

		while (*at) {
			if (drop(*at, arg)) {
				websess_drop(st, at);
				n++;
			} else {
				at = &(*at)->next;
			}
		}
	}
	return n;
}

static int websess_is_expired(const struct websess *w, const void *now)
{
	return w->expires_us <= *(const int64_t *)now;
}

static int websess_of_token(const struct websess *w, const void *token)
{
	return w->token == *(const uint64_t *)token;
}

/* Where the user's session that expires first is linked (its list's
 * length, at most WEBSESS_PER_USER, plus one hash chain); NULL: none. */
static struct websess **websess_oldest(struct websess_store *st, uint64_t user)
{
	struct websess_user **uat = websess_user_at(st->uslot, user);
	const struct websess *best = NULL;

	if (!*uat)
		return NULL;
	for (const struct websess *w = (*uat)->head; w; w = w->unext)
		if (!best || w->expires_us < best->expires_us)
			best = w;
	return websess_at(st, best->hash);
}

int websess_new(struct websess_store *st, uint64_t user, uint64_t token, int64_t now,
		char out[WEBSESS_LEN + 1], int64_t *expires_us)
{
	struct websess *w;
	int rc;

	if (st->n >= WEBSESS_MAX && websess_sweep(st, websess_is_expired, &now) == 0)
		return CL_ETOOBIG;
	if (websess_of_user(st, user) >= WEBSESS_PER_USER)
		websess_drop(st, websess_oldest(st, user));
	w = calloc(1, sizeof *w);
	if (!w)
		return CL_ENOMEM;
	rc = token_secret(WEBSESS_PREFIX, out, WEBSESS_LEN + 1, w->hash);
	w->user = user;
	w->token = token;
	w->expires_us = now + st->ttl_us;
	if (!rc)
		rc = websess_link(st, w);
	if (rc) {
		free(w);
		return rc;
	}
	websess_log(st, 1, w);
	*expires_us = w->expires_us;
	return 0;
}

/* Where the session of hash is linked, or where it would be (*at NULL). */
static struct websess **websess_at(struct websess_store *st, const uint8_t hash[EV_HASH_LEN])
{
	struct websess **at;

	for (at = &st->slot[websess_slot(hash)]; *at; at = &(*at)->next)
		if (CRYPTO_memcmp((*at)->hash, hash, EV_HASH_LEN) == 0)
			break;
	return at;
}

/* Where the session of cookie value v is linked, or NULL. */
static struct websess **websess_lookup(struct websess_store *st, const char *v, size_t n)
{
	uint8_t hash[EV_HASH_LEN];
	struct websess **at;

	if (n != WEBSESS_LEN || memcmp(v, WEBSESS_PREFIX, sizeof WEBSESS_PREFIX - 1) != 0)
		return NULL;
	token_hash(v, n, hash);
	at = websess_at(st, hash);
	return *at ? at : NULL;
}

int websess_find(struct websess_store *st, const struct proj *p, const char *v, size_t n,
		 int64_t now, uint64_t *user, uint64_t *token)
{
	struct websess **at = websess_lookup(st, v, n);
	uint64_t owner = 0;
	int revoked = 1;

	if (!at)
		return -1;
	if ((*at)->expires_us <= now ||
	    proj_token_get(p, (*at)->token, &owner, &revoked) != 0 || revoked ||
	    owner != (*at)->user) {
		websess_drop(st, at);
		return -1;
	}
	*user = (*at)->user;
	*token = (*at)->token;
	return 0;
}

int websess_end(struct websess_store *st, const char *v, size_t n)
{
	struct websess **at = websess_lookup(st, v, n);

	if (!at)
		return 0;
	websess_drop(st, at);
	return 1;
}

size_t websess_revoked(struct websess_store *st, uint64_t token)
{
	return websess_sweep(st, websess_of_token, &token);
}
