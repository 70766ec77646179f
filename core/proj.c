/*
 * proj.c - the projection: proj_apply, read access for commands and auth,
 * the JSON views of one entry / comment / user, and the invariant check.
 * The state is described in proj_internal.h; stored queries are in query.c.
 *
 * Why it is shaped so:
 *  - proj_apply is the only writer. Each apply_* function first checks the
 *    event against the state (refusing with CL_ESTATE) and reserves every
 *    byte it will need (refusing with CL_ENOMEM), and only then mutates, in
 *    a tail that cannot fail. So a refused event leaves the state exactly as
 *    it was, which changelog-audit relies on to report the first bad event.
 *  - proj_apply trusts nothing about the event: strings are re-checked
 *    (UTF-8, no NUL, limits in cl.h) even though the codec already did,
 *    because the views below hand them to jansson unchecked.
 *  - Everything is a pure function of the events applied: no clock, no
 *    randomness, no hash seeds, so two projections fed the same log answer
 *    every query with the same bytes.
 *  - A cold start applies the whole log into fresh memory, and on the
 *    project VM first touching a page costs more than the apply itself
 *    (~10 us per 4 KB fault). So nothing here is malloc'd per event: texts
 *    and id lists come from the arena's pools, the big arrays and arena
 *    chunks are marked for transparent huge pages, proj_prepare lets the
 *    replay's reader thread fault the next chunk in, and proj_apply_batch
 *    prefetches the random entries a batch touches.
 *
 * Memory (64-bit, measured by tests/bench/core_bench.c; docs/protocol.md):
 * an entry is sizeof(struct pentry) = 128 bytes in the array plus its text
 * block (title + body + 2 rounded up to 8, pooled: no header) and, once it
 * has them, its comment-id list, edit list and status history (pooled,
 * doubling), plus 16-32 bytes in the activity index (one live record, and
 * at most as many superseded ones); a comment is sizeof(struct pcomment) =
 * 56 bytes plus its body + 1 in the arena plus 4-8 bytes in its entry's
 * comment-id list (each edit adds its new text to the arena; and to its
 * entry's list of comment changes, 8 bytes).
 */
#include "proj_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* ---- small building blocks ------------------------------------------- */

struct parena_chunk {
	struct parena_chunk *next;
	size_t used, cap;
	char data[];
};

/*
 * The arena: chunks that start at ARENA_CHUNK and double up to ARENA_MAX,
 * so a small projection stays small and a large one is carved out of a few
 * big chunks. Chunks of ARENA_HUGE and more are 2 MB aligned and marked for
 * transparent huge pages: a cold start writes every byte of its projection
 * once, and on a VM a fault per 4 KB page (~10 us measured on the project
 * VM) cost more than everything else apply does.
 *
 * Strings that never change are bumped (no header, no alignment). Blocks that
 * are replaced or grow - entry texts and the per-entry / per-user id lists -
 * come from pool_alloc: 8-byte aligned, sizes rounded up to 8, and a freed
 * block goes on a free list of its exact size for the next block of that
 * size. Blocks over POOL_MAX go to malloc. The caller always knows a block's
 * size (the text lengths, the vector's cap), so no header is needed either.
 */
#define ARENA_CHUNK ((size_t)64 * 1024)
#define ARENA_MAX ((size_t)8 << 20)
#define ARENA_HUGE ((size_t)2 << 20)
#define ARENA_BIG (ARENA_CHUNK / 8)   /* larger strings get their own chunk */
#define POOL_MAX (8 * POOL_CLASSES)

static void mark_huge(void *p, size_t n)
{
#ifdef MADV_HUGEPAGE
	madvise(p, n, MADV_HUGEPAGE);   /* only a hint: errors do not matter */
#else
	(void)p;
	(void)n;
#endif
}

/* A new chunk of at least need bytes, linked in; NULL on ENOMEM. */
static struct parena_chunk *arena_chunk(struct parena *a, size_t need)
{
	struct parena_chunk *c = NULL;
	size_t total = a->next_cap ? a->next_cap : ARENA_CHUNK;   /* with the header */

	if (need > ARENA_BIG) {
		/* a big string: its own chunk, behind the current one */
		total = sizeof *c + need;
		c = malloc(total);
	} else if (total >= ARENA_HUGE) {
		/* one proj_prepare faulted in already, if any */
		c = atomic_exchange(&a->spare, NULL);
		if (c && c->cap + sizeof *c != total) {
			free(c);
			c = NULL;
		}
		if (!c && (c = aligned_alloc(ARENA_HUGE, total)))
			mark_huge(c, total);
	} else {
		c = malloc(total);
	}
	if (!c)
		return NULL;
	c->used = 0;
	c->cap = total - sizeof *c;
	a->bytes += total;
	if (need > ARENA_BIG && a->head) {
		c->next = a->head->next;
		a->head->next = c;
	} else {
		c->next = a->head;
		a->head = c;
		if (need <= ARENA_BIG && total < ARENA_MAX)
			a->next_cap = total * 2;
		if (a->next_cap >= ARENA_HUGE)
			atomic_store(&a->want, a->next_cap);
	}
	return c;
}

/* n bytes from the arena at alignment align (1 or 8); NULL on ENOMEM. */
static void *arena_take(struct parena *a, size_t n, size_t align)
{
	struct parena_chunk *c = a->head;
	size_t at = c ? (c->used + align - 1) & ~(align - 1) : 0;
	void *out;

	if (!c || at > c->cap || c->cap - at < n) {
		if (!(c = arena_chunk(a, n)))
			return NULL;
		at = 0;
	}
	out = c->data + at;
	c->used = at + n;
	return out;
}

/* Copy s[0..n) plus a NUL into the arena; NULL on ENOMEM. */
static const char *arena_strdup(struct parena *a, const char *s, size_t n)
{
	char *out = arena_take(a, n + 1, 1);

	if (!out)
		return NULL;
	if (n)
		memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

static void arena_release(struct parena *a)
{
	struct parena_chunk *c = a->head, *next;

	for (; c; c = next) {
		next = c->next;
		free(c);
	}
	free(atomic_load(&a->spare));
	free(a->prep);
	memset(a, 0, sizeof *a);
}

/*
 * proj_prepare, arena part: fault in the arena's next chunk ahead of the
 * apply side, PREPARE_STEP bytes a call, and leave it in spare for
 * arena_chunk. Only want and spare are shared (atomics); prep is this
 * thread's alone.
 */
#define PREPARE_STEP ((size_t)1 << 20)

static int prepare_arena(struct parena *a)
{
	size_t total = atomic_load(&a->want), end;
	struct parena_chunk *c = a->prep, *none = NULL;

	if (!c) {
		if (total < ARENA_HUGE || atomic_load(&a->spare))
			return 0;
		if (!(c = aligned_alloc(ARENA_HUGE, total)))
			return 0;
		mark_huge(c, total);
		a->prep = c;
		a->prep_done = 0;
		c->cap = total - sizeof *c;   /* the size it is being made for */
	}
	total = c->cap + sizeof *c;
	end = a->prep_done + PREPARE_STEP < total ? a->prep_done + PREPARE_STEP : total;
	for (size_t off = a->prep_done ? a->prep_done : 4096; off < end; off += 4096)
		((volatile char *)c)[off] = 0;
	a->prep_done = end;
	if (end == total) {
		a->prep = NULL;
		if (!atomic_compare_exchange_strong(&a->spare, &none, c))
			free(c);
	}
	return 1;
}

static size_t pool_size(size_t n)
{
	return n ? (n + 7) & ~(size_t)7 : 8;
}

/* A block of n bytes, 8-byte aligned; NULL on ENOMEM. */
static void *pool_alloc(struct parena *a, size_t n)
{
	size_t sz = pool_size(n);
	void **head;

	if (sz > POOL_MAX)
		return malloc(sz);
	head = &a->free[sz / 8 - 1];
	if (*head) {
		void *b = *head;

		memcpy(head, b, sizeof *head);   /* the next free block */
		return b;
	}
	return arena_take(a, sz, 8);
}

/* Give back a block of n bytes from pool_alloc (NULL is fine). */
static void pool_free(struct parena *a, void *b, size_t n)
{
	size_t sz = pool_size(n);
	void **head;

	if (!b)
		return;
	if (sz > POOL_MAX) {
		free(b);
		return;
	}
	head = &a->free[sz / 8 - 1];
	memcpy(b, head, sizeof *head);
	*head = b;
}

/* At proj_free: only blocks over POOL_MAX live outside the arena. */
static void pool_drop(void *b, size_t n)
{
	if (pool_size(n) > POOL_MAX)
		free(b);
}

/*
 * The capacity after the next growth step of a vector or array that holds
 * n of cap: 0 when there is still room (*ncap untouched), 1 with *ncap set,
 * CL_ENOMEM past the id space.
 */
static int next_cap(uint32_t n, uint32_t cap, uint32_t first, uint32_t *ncap)
{
	if (n < cap)
		return 0;
	if (cap >= PROJ_ID_MAX / 2)
		return CL_ENOMEM;
	*ncap = cap ? cap * 2 : first;
	return 1;
}

/*
 * Make room for one more element in a pooled vector of n/cap elements of
 * size sz (the per-entry and per-user lists).
 */
static int vgrow(struct parena *a, void **v, uint32_t n, uint32_t *cap, size_t sz,
		 uint32_t first)
{
	uint32_t ncap = 0;
	void *nv;
	int rc = next_cap(n, *cap, first, &ncap);

	if (rc <= 0)
		return rc;
	if (!(nv = pool_alloc(a, (size_t)ncap * sz)))
		return CL_ENOMEM;
	if (n)
		memcpy(nv, *v, (size_t)n * sz);
	pool_free(a, *v, (size_t)*cap * sz);
	*v = nv;
	*cap = ncap;
	return 0;
}

static int vec32_reserve(struct parena *a, struct pvec32 *v, uint32_t first)
{
	return vgrow(a, (void **)&v->v, v->n, &v->cap, sizeof *v->v, first);
}

static int vec64_reserve(struct parena *a, struct pvec64 *v, uint32_t first)
{
	return vgrow(a, (void **)&v->v, v->n, &v->cap, sizeof *v->v, first);
}

/*
 * The record arrays (users, tokens, entries, comments). Past BIG_ARRAY bytes
 * an array is its own mapping, grown with mremap (no copy) and marked for
 * huge pages like the arena chunks; below it, realloc.
 */
#define BIG_ARRAY ((size_t)2 << 20)

static size_t big_round(size_t n)
{
	return (n + BIG_ARRAY - 1) & ~(BIG_ARRAY - 1);
}

static void *array_resize(void *old, size_t oldsz, size_t newsz)
{
	void *nv;

	if (newsz < BIG_ARRAY)
		return realloc(old, newsz);
	if (oldsz >= BIG_ARRAY) {
		nv = mremap(old, big_round(oldsz), big_round(newsz), MREMAP_MAYMOVE);
		return nv == MAP_FAILED ? NULL : nv;
	}
	nv = mmap(NULL, big_round(newsz), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		  -1, 0);
	if (nv == MAP_FAILED)
		return NULL;
	mark_huge(nv, big_round(newsz));
	if (oldsz)
		memcpy(nv, old, oldsz);
	free(old);
	return nv;
}

static void array_free(void *v, size_t sz)
{
	if (sz >= BIG_ARRAY)
		munmap(v, big_round(sz));
	else
		free(v);
}

/* Make room for one more record in an array of n/cap records of size sz. */
static int grow(void **v, uint32_t n, uint32_t *cap, size_t sz, uint32_t first)
{
	uint32_t ncap = 0;
	void *nv;
	int rc = next_cap(n, *cap, first, &ncap);

	if (rc <= 0)
		return rc;
	nv = array_resize(*v, (size_t)*cap * sz, (size_t)ncap * sz);
	if (!nv)
		return CL_ENOMEM;
	*v = nv;
	*cap = ncap;
	return 0;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/* grow for the entry and comment arrays, which proj_prepare may be
 * faulting in on another thread: never move one under it. */
static int grow_shared(struct proj *p, void **v, uint32_t n, uint32_t *cap, size_t sz)
{
	int rc;

	if (n < *cap)
		return 0;
	while (atomic_flag_test_and_set_explicit(&p->arrays_lock, memory_order_acquire))
		cpu_relax();    /* held for one madvise step at most */
	rc = grow(v, n, cap, sz, 64);
	atomic_flag_clear_explicit(&p->arrays_lock, memory_order_release);
	return rc;
}

/*
 * proj_prepare, array part: MADV_POPULATE_WRITE (Linux 5.14) the mapped
 * array up to PREPARE_AHEAD bytes past its last shown record, a step a
 * call. It maps pages without writing a byte, so records the apply side
 * writes meanwhile are safe; the lock keeps the mapping where it is.
 */
#define PREPARE_AHEAD ((size_t)8 << 20)
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static int prepare_array(struct proj *p, int i, const void *base, uint32_t cap,
			 uint32_t shown, size_t sz)
{
	size_t size = (size_t)cap * sz, want = (size_t)shown * sz + PREPARE_AHEAD, end;

	if (size < BIG_ARRAY)
		return 0;       /* still malloc'd: small */
	size = big_round(size);
	if (p->prep_arr[i].base != base) {
		p->prep_arr[i].base = base;
		p->prep_arr[i].done = 0;
	}
	if (want > size)
		want = size;
	if (p->prep_arr[i].done >= want)
		return 0;
	end = p->prep_arr[i].done + PREPARE_STEP < want ? p->prep_arr[i].done + PREPARE_STEP : want;
	if (madvise((char *)base + p->prep_arr[i].done, end - p->prep_arr[i].done,
		    MADV_POPULATE_WRITE) != 0)
		end = SIZE_MAX;     /* an old kernel: leave this mapping alone */
	p->prep_arr[i].done = end;
	return 1;
}

static int prepare_arrays(struct proj *p)
{
	int did;

	if (atomic_flag_test_and_set_explicit(&p->arrays_lock, memory_order_acquire))
		return 0;       /* being grown right now */
	did = prepare_array(p, 0, p->entries, p->cap_entries, atomic_load(&p->shown_entries),
			    sizeof *p->entries) ||
	      prepare_array(p, 1, p->comments, p->cap_comments, atomic_load(&p->shown_comments),
			    sizeof *p->comments);
	atomic_flag_clear_explicit(&p->arrays_lock, memory_order_release);
	return did;
}

int proj_prepare(void *arg)
{
	struct proj *p = arg;

	return prepare_arena(&p->arena) || prepare_arrays(p);
}

/* FNV-1a: deterministic (no seed), good enough behind open addressing. */
static uint64_t hash_bytes(const void *s, size_t n)
{
	const unsigned char *b = s;
	uint64_t h = 1469598103934665603ULL;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= 1099511628211ULL;
	}
	return h ^ (h >> 29);
}

static uint64_t user_hash(const struct proj *p, uint32_t id)
{
	const struct puser *u = &p->users[id - 1];

	return hash_bytes(u->name, u->name_n);
}

static uint64_t token_hash_of(const struct proj *p, uint32_t id)
{
	return hash_bytes(p->tokens[id - 1].hash, EV_HASH_LEN);
}

/* Ensure the table can take one more id at <= 1/2 load; rehash if not. */
static int table_reserve(const struct proj *p, uint32_t **tab, uint32_t *cap, uint32_t count,
			 uint64_t (*hash)(const struct proj *, uint32_t))
{
	uint32_t ncap, *nt;

	if ((uint64_t)(count + 1) * 2 <= *cap)
		return 0;
	if (*cap >= (1u << 31))
		return CL_ENOMEM;
	ncap = *cap ? *cap * 2 : 64;
	nt = calloc(ncap, sizeof *nt);
	if (!nt)
		return CL_ENOMEM;
	for (uint32_t i = 0; i < *cap; i++) {
		uint32_t id = (*tab)[i], j;

		if (!id)
			continue;
		for (j = (uint32_t)hash(p, id) & (ncap - 1); nt[j]; j = (j + 1) & (ncap - 1))
			;
		nt[j] = id;
	}
	free(*tab);
	*tab = nt;
	*cap = ncap;
	return 0;
}

/* Insert id (room reserved before) under hash h. */
static void table_put(uint32_t *tab, uint32_t cap, uint64_t h, uint32_t id)
{
	uint32_t j;

	for (j = (uint32_t)h & (cap - 1); tab[j]; j = (j + 1) & (cap - 1))
		;
	tab[j] = id;
}

uint32_t proj_i_user_find(const struct proj *p, const char *name, size_t n)
{
	uint32_t mask, j, id;

	if (!p->name_cap || !name)
		return 0;
	mask = p->name_cap - 1;
	for (j = (uint32_t)hash_bytes(name, n) & mask; (id = p->name_tab[j]); j = (j + 1) & mask) {
		const struct puser *u = &p->users[id - 1];

		if (u->name_n == n && memcmp(u->name, name, n) == 0)
			return id;
	}
	return 0;
}

uint32_t proj_i_token_find(const struct proj *p, const uint8_t hash[EV_HASH_LEN])
{
	uint32_t mask, j, id;

	if (!p->tok_cap || !hash)
		return 0;
	mask = p->tok_cap - 1;
	for (j = (uint32_t)hash_bytes(hash, EV_HASH_LEN) & mask; (id = p->tok_tab[j]);
	     j = (j + 1) & mask)
		if (cl_ct_equal(p->tokens[id - 1].hash, hash, EV_HASH_LEN))
			return id;
	return 0;
}

int proj_i_transition_ok(int from, int to)
{
	switch (from) {
	case ST_OPEN:
	case ST_REOPENED:
		return to == ST_RESOLVED || to == ST_CANCELLED;
	case ST_RESOLVED:
	case ST_CANCELLED:
		return to == ST_REOPENED;
	default:
		return 0;
	}
}

int proj_i_fail(struct cl_fail *fail, int code, const char *fmt, ...)
{
	va_list ap;

	if (fail) {
		fail->code = code;
		va_start(ap, fmt);
		vsnprintf(fail->message, sizeof fail->message, fmt, ap);
		va_end(ap);
	}
	if (code == CMD_NOT_FOUND)
		return CL_ENOTFOUND;
	if (code == CMD_INTERNAL)
		return CL_ENOMEM;
	return CL_EINVAL;
}

json_t *proj_i_iso(int64_t us)
{
	char iso[CL_ISO_LEN + 1];

	cl_iso_time(us, iso);
	return json_stringn_nocheck(iso, strlen(iso));
}

int64_t proj_i_last_activity(const struct proj *p, const struct pentry *e)
{
	int64_t t = e->updated;

	if (e->comments.n) {
		const struct pcomment *c = &p->comments[e->comments.v[e->comments.n - 1] - 1];

		if (c->created > t)
			t = c->created;
	}
	return t;
}

/* ---- lifetime ---------------------------------------------------------- */

struct proj *proj_new(void)
{
	struct proj *p = calloc(1, sizeof(struct proj));

	if (p)
		p->texts.max = PROJ_TEXTS_MAX;
	return p;
}

void proj_free(struct proj *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->nentries; i++) {
		const struct pentry *e = &p->entries[i];

		pool_drop(e->text, (size_t)e->title_n + e->body_n + 2);
		pool_drop(e->edits.v, (size_t)e->edits.cap * sizeof *e->edits.v);
		pool_drop(e->cmods.v, (size_t)e->cmods.cap * sizeof *e->cmods.v);
		pool_drop(e->comments.v, (size_t)e->comments.cap * sizeof *e->comments.v);
		pool_drop(e->hist, (size_t)e->caphist * sizeof *e->hist);
	}
	for (uint32_t i = 0; i < p->nusers; i++) {
		pool_drop(p->users[i].tokens.v, (size_t)p->users[i].tokens.cap * sizeof(uint32_t));
		free(p->users[i].reads);
	}
	array_free(p->users, (size_t)p->cap_users * sizeof *p->users);
	array_free(p->tokens, (size_t)p->cap_tokens * sizeof *p->tokens);
	array_free(p->entries, (size_t)p->cap_entries * sizeof *p->entries);
	array_free(p->comments, (size_t)p->cap_comments * sizeof *p->comments);
	for (uint32_t i = 0; i < p->nwebhooks; i++)
		free(p->webhooks[i].url);
	array_free(p->webhooks, (size_t)p->cap_webhooks * sizeof *p->webhooks);
	proj_i_texts_free(p);
	free(p->act);
	free(p->name_tab);
	free(p->tok_tab);
	arena_release(&p->arena);
	free(p);
}

uint64_t proj_seq(const struct proj *p)
{
	return p->seq;
}

uint64_t proj_user_count(const struct proj *p)
{
	return p->nusers;
}

uint64_t proj_token_count(const struct proj *p)
{
	return p->ntokens;
}

uint64_t proj_entry_count(const struct proj *p)
{
	return p->nentries;
}

uint64_t proj_comment_count(const struct proj *p)
{
	return p->ncomments;
}

/* ---- apply ------------------------------------------------------------- */

/*
 * 1 if p[0..n) is plain ASCII without NUL, checked 8 bytes at a time. Most
 * text is; anything else goes through the full cl_utf8_valid. (Cold start
 * spends a noticeable share of proj_apply here otherwise.)
 */
static int ascii_no_nul(const char *p, size_t n)
{
	const uint64_t hi = 0x8080808080808080ULL, lo = 0x0101010101010101ULL;
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t v;

		memcpy(&v, p + i, 8);
		if ((v & hi) || ((v - lo) & ~v & hi))
			return 0;
	}
	for (; i < n; i++)
		if ((unsigned char)p[i] == 0 || (unsigned char)p[i] >= 0x80)
			return 0;
	return 1;
}

/* A string from an event: length in [min, max], valid UTF-8, no NUL. */
static int text_ok(struct cl_str s, size_t min, size_t max)
{
	if (s.n < min || s.n > max)
		return 0;
	return s.n == 0 || (s.p && (ascii_no_nul(s.p, s.n) || cl_utf8_valid(s.p, s.n)));
}

static int name_ok(struct cl_str s)
{
	return s.n >= 1 && s.n <= CL_MAX_NAME && s.p && cl_name_chars_ok(s.p, s.n);
}

/* user.created, role_set, token.*: the system (0) or an existing admin. */
static int actor_admin(const struct proj *p, uint64_t actor)
{
	const struct puser *u = proj_i_user(p, actor);

	return actor == 0 || (u && u->role == ROLE_ADMIN);
}

/* Edit / status change: the entry's author or an admin. */
static int actor_may_change(const struct proj *p, uint64_t actor, const struct pentry *e)
{
	const struct puser *u = proj_i_user(p, actor);

	return u && (e->author == actor || u->role == ROLE_ADMIN);
}

/* A new id must be count + 1 and stay within PROJ_ID_MAX. */
static int id_next(uint64_t id, uint32_t count)
{
	return count < PROJ_ID_MAX && id == (uint64_t)count + 1;
}

static int apply_user_created(struct proj *p, const struct event *ev)
{
	struct puser *u;
	const char *name;
	int rc;

	if (!actor_admin(p, ev->actor) || !id_next(ev->ids.user, p->nusers) ||
	    !name_ok(ev->name) || (ev->role != ROLE_MEMBER && ev->role != ROLE_ADMIN) ||
	    proj_i_user_find(p, ev->name.p, ev->name.n))
		return CL_ESTATE;
	if ((rc = grow((void **)&p->users, p->nusers, &p->cap_users, sizeof *p->users, 16)) ||
	    (rc = table_reserve(p, &p->name_tab, &p->name_cap, p->nusers, user_hash)))
		return rc;
	if (!(name = arena_strdup(&p->arena, ev->name.p, ev->name.n)))
		return CL_ENOMEM;
	u = &p->users[p->nusers++];
	memset(u, 0, sizeof *u);
	u->name = name;
	u->name_n = (uint32_t)ev->name.n;
	u->role = ev->role;
	u->created = ev->ts;
	u->read_all = ev->seq;    /* what came before the user is not news to them */
	table_put(p->name_tab, p->name_cap, user_hash(p, p->nusers), p->nusers);
	if (u->role == ROLE_ADMIN)
		p->admins++;
	return 0;
}

static int apply_user_role_set(struct proj *p, const struct event *ev)
{
	struct puser *u = proj_i_user(p, ev->ids.user);

	if (!u || !actor_admin(p, ev->actor) || (ev->role != ROLE_MEMBER && ev->role != ROLE_ADMIN))
		return CL_ESTATE;
	if (u->role == ROLE_ADMIN)
		p->admins--;
	u->role = ev->role;
	if (u->role == ROLE_ADMIN)
		p->admins++;
	return 0;
}

static int apply_token_issued(struct proj *p, const struct event *ev)
{
	struct puser *u = proj_i_user(p, ev->ids.user);
	struct ptoken *t;
	const char *label;
	int rc;

	if (!u || !actor_admin(p, ev->actor) || !id_next(ev->ids.token, p->ntokens) ||
	    !text_ok(ev->label, 0, CL_MAX_LABEL) || proj_i_token_find(p, ev->token_hash))
		return CL_ESTATE;
	if ((rc = grow((void **)&p->tokens, p->ntokens, &p->cap_tokens, sizeof *p->tokens, 16)) ||
	    (rc = table_reserve(p, &p->tok_tab, &p->tok_cap, p->ntokens, token_hash_of)) ||
	    (rc = vec32_reserve(&p->arena, &u->tokens, 2)))
		return rc;
	if (!(label = arena_strdup(&p->arena, ev->label.p, ev->label.n)))
		return CL_ENOMEM;
	t = &p->tokens[p->ntokens++];
	memset(t, 0, sizeof *t);
	memcpy(t->hash, ev->token_hash, EV_HASH_LEN);
	t->label = label;
	t->label_n = (uint32_t)ev->label.n;
	t->user = (uint32_t)ev->ids.user;
	t->created = ev->ts;
	table_put(p->tok_tab, p->tok_cap, token_hash_of(p, p->ntokens), p->ntokens);
	u->tokens.v[u->tokens.n++] = p->ntokens;
	return 0;
}

static int apply_webhook_created(struct proj *p, const struct event *ev)
{
	struct pwebhook *w;
	uint32_t mask;
	char *url;
	int rc;

	if (!actor_admin(p, ev->actor) || !id_next(ev->ids.webhook, p->nwebhooks) ||
	    p->live_webhooks >= CL_MAX_WEBHOOKS || !text_ok(ev->url, 1, CL_MAX_URL) ||
	    cl_url_check(ev->url.p, ev->url.n) ||
	    ev_types_mask(ev->types.p, ev->types.n, &mask))
		return CL_ESTATE;
	if ((rc = grow((void **)&p->webhooks, p->nwebhooks, &p->cap_webhooks,
		       sizeof *p->webhooks, 4)))
		return rc;
	if (!(url = malloc(ev->url.n + 1)))
		return CL_ENOMEM;
	memcpy(url, ev->url.p, ev->url.n);
	url[ev->url.n] = '\0';
	w = &p->webhooks[p->nwebhooks++];
	memset(w, 0, sizeof *w);
	w->url = url;
	w->url_n = (uint32_t)ev->url.n;
	w->mask = mask;
	memcpy(w->nonce, ev->token_hash, EV_HASH_LEN);
	w->seq = ev->seq;
	w->created = ev->ts;
	w->creator = (uint32_t)ev->actor;
	p->live_webhooks++;
	return 0;
}

static int apply_webhook_deleted(struct proj *p, const struct event *ev)
{
	struct pwebhook *w;

	if (!actor_admin(p, ev->actor) || ev->ids.webhook < 1 ||
	    ev->ids.webhook > p->nwebhooks)
		return CL_ESTATE;
	w = &p->webhooks[ev->ids.webhook - 1];
	if (!w->url)
		return CL_ESTATE;
	free(w->url);
	w->url = NULL;
	w->deleted_seq = ev->seq;
	p->live_webhooks--;
	return 0;
}

uint64_t proj_webhook_count(const struct proj *p)
{
	return p ? p->nwebhooks : 0;
}

int proj_webhook_get(const struct proj *p, uint64_t id, struct proj_webhook_info *out)
{
	const struct pwebhook *w;

	if (!p || id < 1 || id > p->nwebhooks)
		return CL_ENOTFOUND;
	w = &p->webhooks[id - 1];
	out->id = id;
	out->url = w->url;
	out->mask = w->mask;
	out->nonce = w->nonce;
	out->seq = w->seq;
	out->deleted_seq = w->deleted_seq;
	return 0;
}

static int apply_token_revoked(struct proj *p, const struct event *ev)
{
	struct ptoken *t = proj_i_token(p, ev->ids.token);

	if (!t || t->revoked || t->user != ev->ids.user ||
	    (ev->actor != t->user && !actor_admin(p, ev->actor)) ||
	    (ev->actor && !proj_i_user(p, ev->actor)))
		return CL_ESTATE;
	t->revoked = 1;
	return 0;
}

/* A pooled "title\0body\0" block (pool_free it with title.n + body.n + 2). */
static char *entry_text(struct parena *a, struct cl_str title, struct cl_str body)
{
	char *t = pool_alloc(a, title.n + body.n + 2);

	if (!t)
		return NULL;
	if (title.n)
		memcpy(t, title.p, title.n);
	t[title.n] = '\0';
	if (body.n)
		memcpy(t + title.n + 1, body.p, body.n);
	t[title.n + 1 + body.n] = '\0';
	return t;
}

/*
 * Room for one more activity record, before an apply changes anything (so
 * a failure leaves p unchanged). When the superseded records outnumber the
 * live ones (one per entry) by more than 1024, they are dropped first: each
 * record is copied at most once per compaction, and a compaction comes only
 * after at least entries + 1024 new records, so the cost per event stays
 * O(1) and the array at most 2 x entries + 1024 + 1.
 */
static int act_reserve(struct proj *p)
{
	if (p->nact - p->nentries > p->nentries + 1024u) {
		uint32_t k = 0;

		for (uint32_t i = 0; i < p->nact; i++)
			if (proj_i_act_live(p, &p->act[i]))
				p->act[k++] = p->act[i];
		p->nact = k;
	}
	if (p->nact == p->cap_act) {
		uint32_t ncap = p->cap_act ? p->cap_act * 2 : 256;
		struct pact *na;

		if (p->cap_act >= PROJ_ID_MAX / 2 ||
		    !(na = realloc(p->act, (size_t)ncap * sizeof *na)))
			return CL_ENOMEM;
		p->act = na;
		p->cap_act = ncap;
	}
	return 0;
}

/* Entry e (id) was touched by the event at seq; act_reserve came first. */
static void act_push(struct proj *p, struct pentry *e, uint32_t id, const struct event *ev)
{
	e->act_seq = ev->seq;
	p->act[p->nact].seq = ev->seq;
	p->act[p->nact].entry = id;
	p->act[p->nact].actor = (uint32_t)ev->actor;
	p->nact++;
}

static int apply_entry_created(struct proj *p, const struct event *ev)
{
	struct pentry *e;
	char *text;
	int rc;

	if (!proj_i_user(p, ev->actor) || !id_next(ev->ids.entry, p->nentries) ||
	    !text_ok(ev->title, 1, CL_MAX_TITLE) || !text_ok(ev->body, 0, CL_MAX_BODY) ||
	    ev->kind < KIND_FIX || ev->kind > KIND_FEATURE)
		return CL_ESTATE;
	rc = grow_shared(p, (void **)&p->entries, p->nentries, &p->cap_entries, sizeof *p->entries);
	if (rc || (rc = act_reserve(p)))
		return rc;
	if (!(text = entry_text(&p->arena, ev->title, ev->body)))
		return CL_ENOMEM;
	e = &p->entries[p->nentries++];
	memset(e, 0, sizeof *e);
	e->text = text;
	e->title_n = (uint32_t)ev->title.n;
	e->body_n = (uint32_t)ev->body.n;
	e->created = e->updated = ev->ts;
	e->author = (uint32_t)ev->actor;
	e->version = 1;
	e->kind = ev->kind;
	e->status = ST_OPEN;
	e->seq = ev->seq;
	p->by_status[ST_OPEN]++;
	p->by_kind[e->kind]++;
	act_push(p, e, p->nentries, ev);
	return 0;
}

static int apply_entry_edited(struct proj *p, const struct event *ev)
{
	struct pentry *e = proj_i_entry(p, ev->ids.entry);
	char *text = NULL;
	int rc;

	if (!e || !actor_may_change(p, ev->actor, e) ||
	    !(ev->has_title || ev->has_body || ev->has_kind) ||
	    (ev->has_title && !text_ok(ev->title, 1, CL_MAX_TITLE)) ||
	    (ev->has_body && !text_ok(ev->body, 0, CL_MAX_BODY)) ||
	    (ev->has_kind && (ev->kind < KIND_FIX || ev->kind > KIND_FEATURE)))
		return CL_ESTATE;
	if ((rc = vec64_reserve(&p->arena, &e->edits, 2)) || (rc = act_reserve(p)))
		return rc;
	if (ev->has_title || ev->has_body) {
		struct cl_str t = { proj_i_title(e), e->title_n }, b = { proj_i_body(e), e->body_n };

		if (ev->has_title)
			t = ev->title;
		if (ev->has_body)
			b = ev->body;
		if (!(text = entry_text(&p->arena, t, b)))
			return CL_ENOMEM;
		pool_free(&p->arena, e->text, (size_t)e->title_n + e->body_n + 2);
		e->text = text;
		e->title_n = (uint32_t)t.n;
		e->body_n = (uint32_t)b.n;
		e->esc = 0;   /* measured again when a page needs it */
	}
	if (ev->has_kind) {
		p->by_kind[e->kind]--;
		e->kind = ev->kind;
		p->by_kind[e->kind]++;
	}
	e->version++;
	e->updated = ev->ts;
	e->edits.v[e->edits.n++] = ev->seq;
	act_push(p, e, (uint32_t)ev->ids.entry, ev);
	return 0;
}

static int apply_entry_status_set(struct proj *p, const struct event *ev)
{
	struct pentry *e = proj_i_entry(p, ev->ids.entry);
	struct pstatus *h;
	int rc;

	if (!e || !actor_may_change(p, ev->actor, e) || ev->status_from != e->status ||
	    !proj_i_transition_ok(ev->status_from, ev->status_to))
		return CL_ESTATE;
	if ((rc = vgrow(&p->arena, (void **)&e->hist, e->nhist, &e->caphist, sizeof *e->hist, 2)) ||
	    (rc = act_reserve(p)))
		return rc;
	h = &e->hist[e->nhist++];
	h->seq = ev->seq;
	h->at = ev->ts;
	h->by = (uint32_t)ev->actor;
	h->from = ev->status_from;
	h->to = ev->status_to;
	p->by_status[e->status]--;
	e->status = ev->status_to;
	p->by_status[e->status]++;
	e->version++;
	e->updated = ev->ts;
	act_push(p, e, (uint32_t)ev->ids.entry, ev);
	return 0;
}

static int apply_comment_added(struct proj *p, const struct event *ev)
{
	struct pentry *e = proj_i_entry(p, ev->ids.entry);
	struct pcomment *c;
	const char *body;
	uint32_t depth = 0;
	int rc;

	if (!e || !proj_i_user(p, ev->actor) || !id_next(ev->ids.comment, p->ncomments) ||
	    !text_ok(ev->body, 1, CL_MAX_COMMENT))
		return CL_ESTATE;
	if (ev->ids.parent) {
		/* keep the depth, not a pointer: the array may move below */
		const struct pcomment *parent = proj_i_comment(p, ev->ids.parent);

		if (!parent || parent->entry != ev->ids.entry || parent->depth + 1 >= CL_MAX_DEPTH)
			return CL_ESTATE;
		depth = parent->depth + 1;
	}
	if ((rc = grow_shared(p, (void **)&p->comments, p->ncomments, &p->cap_comments,
			      sizeof *p->comments)) ||
	    (rc = vec32_reserve(&p->arena, &e->comments, 2)) || (rc = act_reserve(p)))
		return rc;
	if (!(body = arena_strdup(&p->arena, ev->body.p, ev->body.n)))
		return CL_ENOMEM;
	c = &p->comments[p->ncomments++];
	c->body = body;
	c->body_n = (uint32_t)ev->body.n;
	c->seq = ev->seq;
	c->created = ev->ts;
	c->entry = (uint32_t)ev->ids.entry;
	c->parent = (uint32_t)ev->ids.parent;
	c->author = (uint32_t)ev->actor;
	c->depth = depth;
	c->edited = 0;
	c->deleted = 0;
	e->comments.v[e->comments.n++] = p->ncomments;
	act_push(p, e, (uint32_t)ev->ids.entry, ev);
	return 0;
}

/*
 * comment.edited / comment.deleted: the comment's author or an admin, on a
 * comment of that entry that is not deleted. Neither changes the entry's
 * version, its last_activity nor its place in the activity index (like a
 * comment's text, they are not the entry's own state); both are listed in
 * its history (cmods).
 */
static struct pcomment *comment_to_change(struct proj *p, const struct event *ev)
{
	struct pcomment *c = proj_i_comment(p, ev->ids.comment);
	const struct puser *u = proj_i_user(p, ev->actor);

	if (!c || c->entry != ev->ids.entry || c->deleted || !u ||
	    (c->author != ev->actor && u->role != ROLE_ADMIN))
		return NULL;
	return c;
}

static int apply_comment_edited(struct proj *p, const struct event *ev)
{
	struct pcomment *c = comment_to_change(p, ev);
	struct pentry *e;
	const char *body;
	int rc;

	if (!c || !text_ok(ev->body, 1, CL_MAX_COMMENT))
		return CL_ESTATE;
	e = &p->entries[c->entry - 1];
	if ((rc = vec64_reserve(&p->arena, &e->cmods, 2)))
		return rc;
	if (!(body = arena_strdup(&p->arena, ev->body.p, ev->body.n)))
		return CL_ENOMEM;
	c->body = body;                /* the old text stays in the arena: bounded by the log */
	c->body_n = (uint32_t)ev->body.n;
	c->edited = ev->ts;
	e->cmods.v[e->cmods.n++] = ev->seq;
	return 0;
}

static int apply_comment_deleted(struct proj *p, const struct event *ev)
{
	struct pcomment *c = comment_to_change(p, ev);
	struct pentry *e;
	int rc;

	if (!c)
		return CL_ESTATE;
	e = &p->entries[c->entry - 1];
	if ((rc = vec64_reserve(&p->arena, &e->cmods, 2)))
		return rc;
	c->body = "";
	c->body_n = 0;
	c->deleted = 1;
	e->cmods.v[e->cmods.n++] = ev->seq;
	return 0;
}

int proj_apply(struct proj *p, const struct event *ev)
{
	int rc;

	if (!p || !ev)
		return CL_EINVAL;
	if (ev->seq != p->seq + 1)
		return CL_ESTATE;
	switch (ev->type) {
	case EV_USER_CREATED:     rc = apply_user_created(p, ev); break;
	case EV_USER_ROLE_SET:    rc = apply_user_role_set(p, ev); break;
	case EV_TOKEN_ISSUED:     rc = apply_token_issued(p, ev); break;
	case EV_TOKEN_REVOKED:    rc = apply_token_revoked(p, ev); break;
	case EV_ENTRY_CREATED:    rc = apply_entry_created(p, ev); break;
	case EV_ENTRY_EDITED:     rc = apply_entry_edited(p, ev); break;
	case EV_ENTRY_STATUS_SET: rc = apply_entry_status_set(p, ev); break;
	case EV_COMMENT_ADDED:    rc = apply_comment_added(p, ev); break;
	case EV_COMMENT_EDITED:   rc = apply_comment_edited(p, ev); break;
	case EV_COMMENT_DELETED:  rc = apply_comment_deleted(p, ev); break;
	case EV_READ_MARKED:      rc = proj_i_apply_read_marked(p, ev); break;
	case EV_WEBHOOK_CREATED:  rc = apply_webhook_created(p, ev); break;
	case EV_WEBHOOK_DELETED:  rc = apply_webhook_deleted(p, ev); break;
	default:                  rc = CL_ESTATE; break;
	}
	if (rc == 0)
		p->seq = ev->seq;
	return rc;
}

/*
 * Most events touch one random entry of a large array (a comment, an edit,
 * a status change), and then its comment list: two cache misses each, which
 * a batch can overlap instead of taking them one after the other. A struct
 * pentry spans two cache lines, and the fields an apply reads first (the
 * comment list, author, act_seq) are in the second: both are fetched. A
 * reply also reads its parent comment (among the recent ones, often no
 * longer in L1).
 */
#define PREFETCH_AHEAD 4   /* events: about one memory latency of applying */

/*
 * always_inline: a function that only prefetches has no side effects as far
 * as GCC's pure/const analysis goes, so an out-of-line call to it was
 * dropped, prefetches and all (GCC 12 -O2 left proj_apply_batch without a
 * single prefetch instruction).
 */
#define PREFETCH_FN static inline __attribute__((always_inline)) void

PREFETCH_FN prefetch_entry(const struct proj *p, const struct event *ev)
{
	if (ev->ids.entry >= 1 && ev->ids.entry <= p->nentries) {
		const char *e = (const char *)&p->entries[ev->ids.entry - 1];

		__builtin_prefetch(e, 1);
		__builtin_prefetch(e + sizeof(struct pentry) - 1, 1);
	}
	if (ev->ids.parent >= 1 && ev->ids.parent <= p->ncomments)
		__builtin_prefetch(&p->comments[ev->ids.parent - 1], 0);
}

PREFETCH_FN prefetch_list(const struct proj *p, const struct event *ev)
{
	const struct pentry *e;

	if (ev->type != EV_COMMENT_ADDED || !(e = proj_i_entry(p, ev->ids.entry)) || !e->comments.v)
		return;
	__builtin_prefetch(&e->comments.v[e->comments.n], 1);
}

int proj_apply_batch(void *arg, const struct event *ev, size_t n)
{
	struct proj *p = arg;
	int rc = 0;

	if (!p || (n && !ev))
		return CL_EINVAL;
	for (size_t i = 0; i < n && i < PREFETCH_AHEAD; i++)
		prefetch_entry(p, &ev[i]);
	for (size_t i = 0; i < n; i++) {
		if (i + PREFETCH_AHEAD < n)
			prefetch_entry(p, &ev[i + PREFETCH_AHEAD]);
		if (i + PREFETCH_AHEAD / 2 < n)
			prefetch_list(p, &ev[i + PREFETCH_AHEAD / 2]);
		if ((rc = proj_apply(p, &ev[i])))
			break;
	}
	/* for proj_prepare on another thread: how far the arrays are used */
	atomic_store_explicit(&p->shown_entries, p->nentries, memory_order_relaxed);
	atomic_store_explicit(&p->shown_comments, p->ncomments, memory_order_relaxed);
	return rc;
}

/* ---- read access -------------------------------------------------------- */

int proj_user_get(const struct proj *p, uint64_t id, struct proj_user_info *out)
{
	const struct puser *u = proj_i_user(p, id);

	if (!u)
		return CL_ENOTFOUND;
	out->id = id;
	out->name = u->name;
	out->role = u->role;
	return 0;
}

int proj_user_by_name(const struct proj *p, const char *name, size_t n,
		      struct proj_user_info *out)
{
	uint32_t id = proj_i_user_find(p, name, n);

	return id ? proj_user_get(p, id, out) : CL_ENOTFOUND;
}

int proj_token_check(const struct proj *p, const uint8_t hash[EV_HASH_LEN],
		     uint64_t *user, uint64_t *token)
{
	uint32_t id = proj_i_token_find(p, hash);
	const struct ptoken *t = proj_i_token(p, id);

	if (!t || t->revoked || !proj_i_user(p, t->user))
		return CL_ENOTFOUND;
	if (user)
		*user = t->user;
	if (token)
		*token = id;
	return 0;
}

int proj_token_get(const struct proj *p, uint64_t token, uint64_t *user, int *revoked)
{
	const struct ptoken *t = proj_i_token(p, token);

	if (!t)
		return CL_ENOTFOUND;
	if (user)
		*user = t->user;
	if (revoked)
		*revoked = t->revoked;
	return 0;
}

int proj_entry_get(const struct proj *p, uint64_t id, struct proj_entry_info *out)
{
	const struct pentry *e = proj_i_entry(p, id);

	if (!e)
		return CL_ENOTFOUND;
	out->id = id;
	out->author = e->author;
	out->status = e->status;
	out->kind = e->kind;
	out->version = e->version;
	return 0;
}

int proj_comment_get(const struct proj *p, uint64_t id, struct proj_comment_info *out)
{
	const struct pcomment *c = proj_i_comment(p, id);

	if (!c)
		return CL_ENOTFOUND;
	out->id = id;
	out->entry = c->entry;
	out->parent = c->parent;
	out->author = c->author;
	out->depth = c->depth;
	return 0;
}

/* ---- JSON views ---------------------------------------------------------- */

/* Set a member with a known-good key; remembers a failure (v is stolen). */
static void jset(json_t *o, const char *key, json_t *v, int *err)
{
	if (!v || json_object_set_new_nocheck(o, key, v) != 0)
		*err = 1;
}

/* A stored string (checked at apply) as JSON. */
static json_t *jstr(const char *s, size_t n)
{
	return json_stringn_nocheck(s, n);
}

static json_t *user_name_json(const struct proj *p, uint64_t id)
{
	const struct puser *u = proj_i_user(p, id);

	return u ? jstr(u->name, u->name_n) : json_null();
}

json_t *proj_entry_json(const struct proj *p, uint64_t id)
{
	const struct pentry *e = proj_i_entry(p, id);
	json_t *o;
	int err = 0;

	if (!e || !(o = json_object()))
		return NULL;
	jset(o, "id", json_integer((json_int_t)id), &err);
	jset(o, "title", jstr(proj_i_title(e), e->title_n), &err);
	jset(o, "body", jstr(proj_i_body(e), e->body_n), &err);
	jset(o, "kind", json_string_nocheck(cl_kind_name(e->kind)), &err);
	jset(o, "status", json_string_nocheck(cl_status_name(e->status)), &err);
	jset(o, "author", user_name_json(p, e->author), &err);
	jset(o, "author_id", json_integer(e->author), &err);
	jset(o, "created", proj_i_iso(e->created), &err);
	jset(o, "updated", proj_i_iso(e->updated), &err);
	jset(o, "version", json_integer(e->version), &err);
	jset(o, "comments", json_integer(e->comments.n), &err);
	jset(o, "last_activity", proj_i_iso(proj_i_last_activity(p, e)), &err);
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *proj_comment_json(const struct proj *p, uint64_t id)
{
	const struct pcomment *c = proj_i_comment(p, id);
	json_t *o;
	int err = 0;

	if (!c || !(o = json_object()))
		return NULL;
	jset(o, "id", json_integer((json_int_t)id), &err);
	jset(o, "entry", json_integer(c->entry), &err);
	jset(o, "parent", c->parent ? json_integer(c->parent) : json_null(), &err);
	jset(o, "author", user_name_json(p, c->author), &err);
	jset(o, "author_id", json_integer(c->author), &err);
	jset(o, "body", jstr(c->body, c->body_n), &err);
	jset(o, "created", proj_i_iso(c->created), &err);
	jset(o, "depth", json_integer(c->depth), &err);
	if (c->edited)
		jset(o, "edited", proj_i_iso(c->edited), &err);
	if (c->deleted)
		jset(o, "deleted", json_true(), &err);
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

json_t *proj_user_json(const struct proj *p, uint64_t id)
{
	const struct puser *u = proj_i_user(p, id);
	json_t *o;
	int err = 0;

	if (!u || !(o = json_object()))
		return NULL;
	jset(o, "id", json_integer((json_int_t)id), &err);
	jset(o, "name", jstr(u->name, u->name_n), &err);
	jset(o, "role", json_string_nocheck(cl_role_name(u->role)), &err);
	jset(o, "created", proj_i_iso(u->created), &err);
	if (err) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- invariants ---------------------------------------------------------- */

static int bad(char *why, size_t why_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int bad(char *why, size_t why_len, const char *fmt, ...)
{
	va_list ap;

	if (why && why_len) {
		va_start(ap, fmt);
		vsnprintf(why, why_len, fmt, ap);
		va_end(ap);
	}
	return CL_ESTATE;
}

static int check_users(const struct proj *p, char *why, size_t wl)
{
	uint32_t admins = 0, ntok = 0;

	for (uint32_t id = 1; id <= p->nusers; id++) {
		const struct puser *u = &p->users[id - 1];

		if (!name_ok((struct cl_str){ u->name, u->name_n }) || strlen(u->name) != u->name_n)
			return bad(why, wl, "user %u: bad name", id);
		if (proj_i_user_find(p, u->name, u->name_n) != id)
			return bad(why, wl, "user %u: name index disagrees", id);
		if (u->role != ROLE_MEMBER && u->role != ROLE_ADMIN)
			return bad(why, wl, "user %u: bad role %u", id, u->role);
		admins += u->role == ROLE_ADMIN;
		for (uint32_t i = 0; i < u->tokens.n; i++) {
			const struct ptoken *t = proj_i_token(p, u->tokens.v[i]);

			if (!t || t->user != id || (i && u->tokens.v[i] <= u->tokens.v[i - 1]))
				return bad(why, wl, "user %u: token list disagrees", id);
		}
		ntok += u->tokens.n;
	}
	if (admins != p->admins)
		return bad(why, wl, "admin count %u, counted %u", p->admins, admins);
	if (ntok != p->ntokens)
		return bad(why, wl, "tokens listed under users %u, tokens %u", ntok, p->ntokens);
	for (uint32_t id = 1; id <= p->ntokens; id++) {
		const struct ptoken *t = &p->tokens[id - 1];

		if (!proj_i_user(p, t->user))
			return bad(why, wl, "token %u: unknown user %u", id, t->user);
		if (proj_i_token_find(p, t->hash) != id)
			return bad(why, wl, "token %u: hash index disagrees", id);
		if (t->label_n > CL_MAX_LABEL || strlen(t->label) != t->label_n)
			return bad(why, wl, "token %u: bad label", id);
	}
	return 0;
}

static int check_entry(const struct proj *p, uint32_t id, char *why, size_t wl)
{
	const struct pentry *e = &p->entries[id - 1];
	int st = ST_OPEN;

	if (!proj_i_user(p, e->author))
		return bad(why, wl, "entry %u: unknown author %u", id, e->author);
	if (e->kind < KIND_FIX || e->kind > KIND_FEATURE || e->status < ST_OPEN ||
	    e->status > ST_REOPENED)
		return bad(why, wl, "entry %u: bad kind or status", id);
	if (e->title_n < 1 || e->title_n > CL_MAX_TITLE || e->body_n > CL_MAX_BODY ||
	    strlen(proj_i_title(e)) != e->title_n || strlen(proj_i_body(e)) != e->body_n)
		return bad(why, wl, "entry %u: bad title or body", id);
	if (e->version != 1 + e->edits.n + e->nhist)
		return bad(why, wl, "entry %u: version %u, %u edits, %u status changes", id,
			   e->version, e->edits.n, e->nhist);
	if (e->seq < 1 || e->seq > p->seq)
		return bad(why, wl, "entry %u: created at seq %llu", id, (unsigned long long)e->seq);
	for (uint32_t i = 0; i < e->edits.n; i++)
		if (e->edits.v[i] > p->seq || e->edits.v[i] <= (i ? e->edits.v[i - 1] : e->seq))
			return bad(why, wl, "entry %u: edit seqs out of order", id);
	for (uint32_t i = 0; i < e->cmods.n; i++)
		if (e->cmods.v[i] > p->seq || e->cmods.v[i] <= (i ? e->cmods.v[i - 1] : e->seq))
			return bad(why, wl, "entry %u: comment change seqs out of order", id);
	for (uint32_t i = 0; i < e->nhist; i++) {
		const struct pstatus *h = &e->hist[i];

		if (h->from != st || !proj_i_transition_ok(h->from, h->to))
			return bad(why, wl, "entry %u: status history breaks at %u", id, i);
		if (h->seq > p->seq || h->seq <= (i ? e->hist[i - 1].seq : e->seq))
			return bad(why, wl, "entry %u: status history seqs out of order", id);
		st = h->to;
	}
	if (st != e->status)
		return bad(why, wl, "entry %u: status %d, history ends at %d", id, e->status, st);
	for (uint32_t i = 0; i < e->comments.n; i++) {
		const struct pcomment *c = proj_i_comment(p, e->comments.v[i]);

		if (!c || c->entry != id || (i && e->comments.v[i] <= e->comments.v[i - 1]) ||
		    c->seq <= e->seq)
			return bad(why, wl, "entry %u: comment index disagrees", id);
	}
	if (e->version == 1 && e->updated != e->created)
		return bad(why, wl, "entry %u: updated but never changed", id);
	{
		/* act_seq is the latest of the seqs above */
		uint64_t last = e->seq;

		if (e->edits.n && e->edits.v[e->edits.n - 1] > last)
			last = e->edits.v[e->edits.n - 1];
		if (e->nhist && e->hist[e->nhist - 1].seq > last)
			last = e->hist[e->nhist - 1].seq;
		if (e->comments.n && p->comments[e->comments.v[e->comments.n - 1] - 1].seq > last)
			last = p->comments[e->comments.v[e->comments.n - 1] - 1].seq;
		if (e->act_seq != last)
			return bad(why, wl, "entry %u: latest event %llu, act_seq %llu", id,
				   (unsigned long long)last, (unsigned long long)e->act_seq);
	}
	return 0;
}

/* The activity index: ascending seqs of existing entries, one live record each. */
static int check_activity(const struct proj *p, char *why, size_t wl)
{
	uint32_t live = 0;

	for (uint32_t i = 0; i < p->nact; i++) {
		const struct pact *r = &p->act[i];

		if (!proj_i_entry(p, r->entry) || r->seq > p->seq ||
		    (i && r->seq <= p->act[i - 1].seq))
			return bad(why, wl, "activity record %u is out of order or names no entry", i);
		live += proj_i_act_live(p, r);
	}
	if (live != p->nentries)
		return bad(why, wl, "activity index: %u live records for %u entries", live,
			   p->nentries);
	return 0;
}

static int check_comment(const struct proj *p, uint32_t id, char *why, size_t wl)
{
	const struct pcomment *c = &p->comments[id - 1];
	const struct pentry *e = proj_i_entry(p, c->entry);
	const struct pcomment *parent;

	if (!e)
		return bad(why, wl, "comment %u: unknown entry %u", id, c->entry);
	if (!proj_i_user(p, c->author))
		return bad(why, wl, "comment %u: unknown author %u", id, c->author);
	if ((c->deleted ? c->body_n != 0 : c->body_n < 1) || c->body_n > CL_MAX_COMMENT ||
	    strlen(c->body) != c->body_n)
		return bad(why, wl, "comment %u: bad body", id);
	if (c->seq > p->seq || (id > 1 && c->seq <= p->comments[id - 2].seq))
		return bad(why, wl, "comment %u: seq out of order", id);
	if (c->parent == 0) {
		if (c->depth != 0)
			return bad(why, wl, "comment %u: top level at depth %u", id, c->depth);
		return 0;
	}
	parent = proj_i_comment(p, c->parent);
	if (!parent || c->parent >= id)
		return bad(why, wl, "comment %u: bad parent %u", id, c->parent);
	if (parent->entry != c->entry)
		return bad(why, wl, "comment %u: parent %u is in another entry", id, c->parent);
	if (c->depth != parent->depth + 1 || c->depth >= CL_MAX_DEPTH)
		return bad(why, wl, "comment %u: depth %u under a parent at %u", id, c->depth,
			   parent->depth);
	return 0;
}

int proj_check(const struct proj *p, char *why, size_t why_len)
{
	uint64_t by_status[5] = { 0 }, by_kind[4] = { 0 }, listed = 0;
	int rc;

	if (!p)
		return CL_EINVAL;
	if ((rc = check_users(p, why, why_len)))
		return rc;
	for (uint32_t id = 1; id <= p->nentries; id++) {
		if ((rc = check_entry(p, id, why, why_len)))
			return rc;
		by_status[p->entries[id - 1].status]++;
		by_kind[p->entries[id - 1].kind]++;
		listed += p->entries[id - 1].comments.n;
	}
	if (memcmp(by_status, p->by_status, sizeof by_status) ||
	    memcmp(by_kind, p->by_kind, sizeof by_kind))
		return bad(why, why_len, "status or kind counters disagree with the entries");
	if (listed != p->ncomments)
		return bad(why, why_len, "comments listed under entries %llu, comments %u",
			   (unsigned long long)listed, p->ncomments);
	for (uint32_t id = 1; id <= p->ncomments; id++)
		if ((rc = check_comment(p, id, why, why_len)))
			return rc;
	if ((rc = check_activity(p, why, why_len)))
		return rc;
	if ((rc = proj_i_read_check(p, why, why_len)))
		return rc;
	if (why && why_len)
		why[0] = '\0';
	return 0;
}
