/*
 * qcache.c - the query result cache (see qcache.h).
 *
 * One allocation per entry (header, key, value, NUL), chained in a hash
 * table sized for max_entries at load <= 1/2, and linked in a recency list
 * so eviction is O(1). The table is allocated on the first put.
 */
#include "qcache.h"

#include <stdlib.h>
#include <string.h>

#include "../core/cl.h"

struct qc_ent {
	struct qc_ent *chain;      /* next in the hash bucket */
	struct qc_ent *newer, *older;
	uint64_t hash;
	size_t klen, vlen;
	char data[];               /* key, then value, then NUL */
};

/* FNV-1a, 64 bit: keys are short (name + params + viewer). */
static uint64_t qc_hash(const void *key, size_t n)
{
	const unsigned char *p = key;
	uint64_t h = 1469598103934665603ULL;

	while (n--) {
		h ^= *p++;
		h *= 1099511628211ULL;
	}
	return h;
}

static size_t qc_size(const struct qc_ent *e)
{
	return sizeof *e + e->klen + e->vlen + 1;
}

void qcache_init(struct qcache *c, size_t max_entries, size_t max_bytes)
{
	memset(c, 0, sizeof *c);
	c->max_entries = max_entries ? max_entries : 1;
	c->max_bytes = max_bytes;
}

static void qc_unlink(struct qcache *c, struct qc_ent *e)
{
	struct qc_ent **pp = &c->tab[e->hash & (c->tabcap - 1)];

	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	if (e->newer)
		e->newer->older = e->older;
	else
		c->mru = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->lru = e->newer;
	c->n--;
	c->bytes -= qc_size(e);
	free(e);
}

static void qc_clear(struct qcache *c)
{
	while (c->lru)
		qc_unlink(c, c->lru);
}

void qcache_release(struct qcache *c)
{
	if (c->tab)
		qc_clear(c);
	free(c->tab);
	c->tab = NULL;
	c->tabcap = 0;
}

void qcache_at(struct qcache *c, uint64_t seq)
{
	if (c->seq == seq)
		return;
	if (c->n) {
		qc_clear(c);
		c->invalidations++;
	}
	c->seq = seq;
}

static struct qc_ent *qc_find(const struct qcache *c, uint64_t h, const void *key, size_t klen)
{
	struct qc_ent *e;

	if (!c->tab)
		return NULL;
	for (e = c->tab[h & (c->tabcap - 1)]; e; e = e->chain)
		if (e->hash == h && e->klen == klen && memcmp(e->data, key, klen) == 0)
			return e;
	return NULL;
}

/* Make e the most recently used. */
static void qc_touch(struct qcache *c, struct qc_ent *e)
{
	if (c->mru == e)
		return;
	/* unlink from the list (e is not the mru, so e->newer is set) */
	e->newer->older = e->older;
	if (e->older)
		e->older->newer = e->newer;
	else
		c->lru = e->newer;
	e->newer = NULL;
	e->older = c->mru;
	c->mru->newer = e;
	c->mru = e;
}

const char *qcache_get(struct qcache *c, const void *key, size_t klen, size_t *len)
{
	struct qc_ent *e = qc_find(c, qc_hash(key, klen), key, klen);

	if (!e) {
		c->misses++;
		return NULL;
	}
	CL_ASSERT(e->klen == klen && memcmp(e->data, key, klen) == 0);
	c->hits++;
	qc_touch(c, e);
	*len = e->vlen;
	return e->data + e->klen;
}

static int qc_table(struct qcache *c)
{
	size_t cap = 16;

	if (c->tab)
		return 0;
	while (cap < c->max_entries * 2 && cap < ((size_t)1 << 24))
		cap <<= 1;
	c->tab = calloc(cap, sizeof *c->tab);
	if (!c->tab)
		return CL_ENOMEM;
	c->tabcap = cap;
	return 0;
}

int qcache_put(struct qcache *c, const void *key, size_t klen, const char *val, size_t vlen)
{
	uint64_t h = qc_hash(key, klen);
	struct qc_ent *e, *old;
	size_t need;

	if (klen > c->max_bytes || vlen > c->max_bytes / 4 ||
	    sizeof *e + klen + vlen + 1 > c->max_bytes / 4)
		return CL_EINVAL;
	if (qc_table(c))
		return CL_ENOMEM;
	need = sizeof *e + klen + vlen + 1;
	e = malloc(need);
	if (!e)
		return CL_ENOMEM;
	if ((old = qc_find(c, h, key, klen)))
		qc_unlink(c, old);
	CL_ASSERT(qc_find(c, h, key, klen) == NULL);   /* one entry per key */
	while (c->lru && (c->n >= c->max_entries || c->bytes + need > c->max_bytes)) {
		qc_unlink(c, c->lru);
		c->evictions++;
	}
	e->hash = h;
	e->klen = klen;
	e->vlen = vlen;
	memcpy(e->data, key, klen);
	memcpy(e->data + klen, val, vlen);
	e->data[klen + vlen] = '\0';
	e->chain = c->tab[h & (c->tabcap - 1)];
	c->tab[h & (c->tabcap - 1)] = e;
	e->newer = NULL;
	e->older = c->mru;
	if (c->mru)
		c->mru->newer = e;
	else
		c->lru = e;
	c->mru = e;
	c->n++;
	c->bytes += need;
	CL_ASSERT(c->n <= c->max_entries && (c->bytes <= c->max_bytes || c->n == 1));
	return 0;
}
