/*
 * search.c - linear-time ASCII-case-insensitive substring search; see search.h.
 *
 * Why it is shaped so:
 *  - The matcher is the Knuth-Morris-Pratt automaton of the case-folded
 *    needle, built once per query: one table step per byte of text, never
 *    moving backwards, so a needle such as "a"*199 + "b" over 32 KiB of "a"
 *    costs one step per byte instead of 199 (the naive scan it replaces was
 *    O(text x needle)). The table is indexed by byte class, not by byte:
 *    every byte absent from the needle shares class 0, and both cases of a
 *    letter share a class, so it holds n x (distinct needle bytes + 1)
 *    entries rather than n x 256, and folding costs nothing at search time.
 *    A table step (rather than the border-table loop of textbook KMP) keeps
 *    the one dependency per byte a single load, which is what makes the
 *    worst case fast, not just linear.
 *  - Most of the text is usually skipped with memchr (vectorised in libc):
 *    in state 0 the scan jumps to the next byte equal to the needle's first
 *    byte in either case. The next position of each case is remembered
 *    until the scan passes it, so each memchr starts where the last one of
 *    the same byte stopped and no byte is read twice by memchr (looking for
 *    'a' and 'A' afresh at each candidate would be quadratic on a text of
 *    "A"s that ends in an "a").
 *  - Only ASCII letters fold (docs/protocol.md, getChangelogEntries "q"):
 *    the same rule as before, pinned by tests/unit/test_core_search.c.
 */
#include "search.h"
#include "cl.h"

#include <stdlib.h>
#include <string.h>

static unsigned char fold(unsigned char c)
{
	return (unsigned)(c - 'A') < 26u ? (unsigned char)(c | 0x20) : c;
}

int search_init(struct search *s, const char *needle, size_t n)
{
	unsigned char pat[SEARCH_MAX];
	size_t restart = 0;

	memset(s, 0, sizeof *s);
	if (n > SEARCH_MAX)
		return CL_ETOOBIG;
	s->ncls = 1;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = fold((unsigned char)needle[i]);

		pat[i] = c;
		if (!s->cls[c]) {
			s->cls[c] = (uint8_t)s->ncls++;
			if (c != (unsigned char)needle[i] || (unsigned)(c - 'a') < 26u)
				s->cls[c - 32] = s->cls[c];
		}
	}
	s->n = n;
	if (n == 0)
		return 0;
	s->first = pat[0];
	if (!(s->next = calloc(n * s->ncls, sizeof *s->next)))
		return CL_ENOMEM;
	/* row j: where state j (j bytes matched) goes on each class, as the
	 * offset of that state's row (state x ncls; n x ncls = matched); a
	 * byte that does not continue the match goes where the state of the
	 * longest border would (row `restart`) */
	s->next[s->cls[pat[0]]] = (uint16_t)s->ncls;
	for (size_t j = 1; j < n; j++) {
		uint16_t *row = s->next + j * s->ncls;
		uint8_t c = s->cls[pat[j]];

		memcpy(row, s->next + restart * s->ncls, s->ncls * sizeof *row);
		row[c] = (uint16_t)((j + 1) * s->ncls);
		restart = s->next[restart * s->ncls + c] / s->ncls;
	}
	return 0;
}

void search_release(struct search *s)
{
	free(s->next);
	s->next = NULL;
}

/* Where the next possible start of a match is: the needle's first byte in
 * either case, each case's next position kept until the scan passes it. */
struct firsts {
	unsigned char lo, up;
	size_t at_lo, at_up;   /* next position of lo / up, or end for none */
	size_t end;            /* no match can start at or after end */
};

static size_t next_of(const unsigned char *t, size_t from, size_t end, unsigned char c,
		      size_t *steps)
{
	const unsigned char *p = memchr(t + from, c, end - from);
	size_t at = p ? (size_t)(p - t) : end;

	*steps += at - from;
	return at;
}

static void firsts_init(struct firsts *f, const unsigned char *t, unsigned char first,
			size_t end, size_t *steps)
{
	f->lo = first;
	f->up = (unsigned)(first - 'a') < 26u ? (unsigned char)(first - 32) : first;
	f->end = end;
	f->at_lo = next_of(t, 0, end, f->lo, steps);
	f->at_up = f->up == f->lo ? f->at_lo : next_of(t, 0, end, f->up, steps);
}

/* The first candidate at or after i (< f->end), or f->end for none. */
static size_t firsts_next(struct firsts *f, const unsigned char *t, size_t i, size_t *steps)
{
	if (f->at_lo < i)
		f->at_lo = next_of(t, i, f->end, f->lo, steps);
	if (f->up == f->lo)
		return f->at_lo;
	if (f->at_up < i)
		f->at_up = next_of(t, i, f->end, f->up, steps);
	return f->at_lo < f->at_up ? f->at_lo : f->at_up;
}

int search_in(const struct search *s, const char *text, size_t hn, size_t *steps)
{
	const unsigned char *t = (const unsigned char *)text;
	size_t n = s->n, at = 0, i = 0, st = 0, done = n * s->ncls;
	struct firsts f;
	int found = 0;

	if (n == 0 || hn < n || !s->next) {
		found = n == 0;
		goto out;
	}
	firsts_init(&f, t, s->first, hn - n + 1, &st);
	while (i < hn) {
		if (at == 0) {
			/* nothing matched: jump to the next byte that can start one */
			if (i >= f.end || (i = firsts_next(&f, t, i, &st)) >= f.end)
				break;
			i++;
			st++;
			at = s->ncls;
		} else {
			at = s->next[at + s->cls[t[i++]]];
			st++;
		}
		if (at == done) {
			found = 1;
			break;
		}
	}
out:
	if (steps)
		*steps += st;
	return found;
}
