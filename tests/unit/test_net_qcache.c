/* test_net_qcache.c - net/qcache.c: the bounded, per-seq query answer cache. */
#include "harness.h"
#include "../../net/qcache.h"
#include "../../core/cl.h"

#include <stdio.h>

static const char *get(struct qcache *c, const char *key, size_t *len)
{
	return qcache_get(c, key, strlen(key), len);
}

static int put(struct qcache *c, const char *key, const char *val)
{
	return qcache_put(c, key, strlen(key), val, strlen(val));
}

static void t_put_get(void)
{
	struct qcache c;
	const char *v;
	size_t len = 0;

	qcache_init(&c, 16, 1 << 20);
	qcache_at(&c, 3);
	CHECK(get(&c, "a", &len) == NULL);
	CHECK_EQ_INT(c.misses, 1);
	CHECK_EQ_INT(put(&c, "a", "{\"x\":1}"), 0);
	v = get(&c, "a", &len);
	REQUIRE(v != NULL);
	CHECK_EQ_INT(len, 7);
	CHECK(memcmp(v, "{\"x\":1}", 7) == 0);
	CHECK_EQ_INT(v[len], '\0');
	CHECK_EQ_INT(c.hits, 1);
	CHECK_EQ_INT(put(&c, "a", "2"), 0);    /* replaces */
	CHECK_EQ_INT(c.n, 1);
	v = get(&c, "a", &len);
	CHECK(v && len == 1 && v[0] == '2');
	qcache_release(&c);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(c.bytes, 0);
}

/* Keys are bytes: a NUL inside and a common prefix still tell them apart. */
static void t_binary_keys(void)
{
	struct qcache c;
	size_t len;

	qcache_init(&c, 16, 1 << 20);
	CHECK_EQ_INT(qcache_put(&c, "q\0v1", 4, "one", 3), 0);
	CHECK_EQ_INT(qcache_put(&c, "q\0v2", 4, "two", 3), 0);
	CHECK_EQ_INT(qcache_put(&c, "q", 1, "short", 5), 0);
	CHECK(memcmp(qcache_get(&c, "q\0v1", 4, &len), "one", 3) == 0);
	CHECK(memcmp(qcache_get(&c, "q\0v2", 4, &len), "two", 3) == 0);
	CHECK(memcmp(qcache_get(&c, "q", 1, &len), "short", 5) == 0);
	CHECK(qcache_get(&c, "q\0v3", 4, &len) == NULL);
	qcache_release(&c);
}

/* A new seq empties the cache: no answer outlives the state it described. */
static void t_seq_invalidates(void)
{
	struct qcache c;
	size_t len;

	qcache_init(&c, 16, 1 << 20);
	qcache_at(&c, 1);
	put(&c, "a", "1");
	qcache_at(&c, 1);                      /* same seq: kept */
	CHECK(get(&c, "a", &len) != NULL);
	qcache_at(&c, 2);
	CHECK_EQ_INT(c.n, 0);
	CHECK_EQ_INT(c.invalidations, 1);
	CHECK(get(&c, "a", &len) == NULL);
	qcache_at(&c, 3);                      /* empty: nothing to count */
	CHECK_EQ_INT(c.invalidations, 1);
	qcache_release(&c);
}

/* At most max_entries: the least recently used go first. */
static void t_lru_entries(void)
{
	struct qcache c;
	size_t len;

	qcache_init(&c, 3, 1 << 20);
	put(&c, "a", "1");
	put(&c, "b", "2");
	put(&c, "c", "3");
	CHECK(get(&c, "a", &len) != NULL);     /* a is now the most recent */
	put(&c, "d", "4");                     /* b, the least recent, goes */
	CHECK_EQ_INT(c.n, 3);
	CHECK_EQ_INT(c.evictions, 1);
	CHECK(get(&c, "b", &len) == NULL);
	CHECK(get(&c, "a", &len) != NULL);
	CHECK(get(&c, "c", &len) != NULL);
	CHECK(get(&c, "d", &len) != NULL);
	qcache_release(&c);
}

/* At most max_bytes; a value over a quarter of it is never kept. */
static void t_bytes_cap(void)
{
	struct qcache c;
	char val[300], key[16];
	size_t len;
	int i;

	memset(val, 'v', sizeof val - 1);
	val[sizeof val - 1] = '\0';
	qcache_init(&c, 1000, 4096);
	CHECK_EQ_INT(qcache_put(&c, "big", 3, val, 1100), CL_EINVAL);   /* > 4096 / 4 */
	CHECK_EQ_INT(c.n, 0);
	for (i = 0; i < 40; i++) {
		snprintf(key, sizeof key, "k%d", i);
		CHECK_EQ_INT(put(&c, key, val), 0);
		CHECK(c.bytes <= c.max_bytes);
	}
	CHECK(c.n < 40);
	CHECK(c.evictions > 0);
	CHECK(get(&c, "k39", &len) != NULL);   /* the newest is there */
	CHECK(get(&c, "k0", &len) == NULL);    /* the oldest is not */
	qcache_release(&c);
}

/* Many keys through few entries: chains and the recency list stay sound. */
static void t_churn(void)
{
	struct qcache c;
	char key[32], val[32];
	size_t len;
	const char *v;
	int i;

	qcache_init(&c, 64, 1 << 20);
	for (i = 0; i < 5000; i++) {
		snprintf(key, sizeof key, "key-%d", i % 200);
		snprintf(val, sizeof val, "val-%d", i);
		if (i % 3 == 0)
			CHECK_EQ_INT(put(&c, key, val), 0);
		else if ((v = get(&c, key, &len)) != NULL)
			CHECK(strncmp(v, "val-", 4) == 0);
		CHECK(c.n <= 64);
	}
	qcache_release(&c);
}

int main(void)
{
	RUN(t_put_get);
	RUN(t_binary_keys);
	RUN(t_seq_invalidates);
	RUN(t_lru_entries);
	RUN(t_bytes_cap);
	RUN(t_churn);
	return harness_done();
}
