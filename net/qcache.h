/*
 * qcache.h - a bounded cache of serialized stored-query results.
 *
 * Keys and values are opaque byte strings (the caller builds the key from
 * the query form, name, canonical params and, where it matters, the
 * viewer; the value is jansson's compact text of the answer). Every entry
 * belongs to one projection seq: qcache_at(c, seq) with a different seq
 * empties the cache, so no event can be followed by an answer computed
 * before it. Deciding *which* seq an answer may be cached at is the
 * caller's job (proto.c: only committed state).
 *
 * Bounded: at most max_entries entries and max_bytes bytes (keys, values
 * and per-entry overhead); the least recently used entries go first, and a
 * value larger than max_bytes / 4 is not kept at all. Single-threaded.
 */
#ifndef CL_NET_QCACHE_H
#define CL_NET_QCACHE_H

#include <stddef.h>
#include <stdint.h>

struct qc_ent;

struct qcache {
	uint64_t seq;              /* the seq every entry was computed at */
	struct qc_ent **tab;       /* hash chains, tabcap (a power of two) */
	size_t tabcap;
	struct qc_ent *mru, *lru;  /* recency list: mru = most recently used */
	size_t n, bytes;           /* entries held, bytes they take */
	size_t max_entries, max_bytes;
	uint64_t hits, misses, evictions, invalidations;
};

void qcache_init(struct qcache *c, size_t max_entries, size_t max_bytes);
/* Free every entry and the table; c can be used again after qcache_init. */
void qcache_release(struct qcache *c);

/* The state is now at seq: drop every entry if it was taken at another seq. */
void qcache_at(struct qcache *c, uint64_t seq);

/*
 * Look key up (counts a hit or a miss). Returns the value, borrowed until
 * the next qcache_put / qcache_at / qcache_release, and its length in
 * *len; NULL if absent.
 */
const char *qcache_get(struct qcache *c, const void *key, size_t klen, size_t *len);

/*
 * Keep a copy of val under key (replacing an entry with the same key),
 * evicting least recently used entries to stay within the caps. Returns 0,
 * or CL_ENOMEM / CL_EINVAL (too big for the cache): nothing was kept, and
 * nothing else changed.
 */
int qcache_put(struct qcache *c, const void *key, size_t klen, const char *val, size_t vlen);

#endif
