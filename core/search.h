/*
 * search.h - the case-insensitive substring search behind getChangelogEntries'
 * "q" (docs/protocol.md), in time linear in the text whatever the needle.
 *
 * What "case-insensitive" means: ASCII letters only. 'A'..'Z' and 'a'..'z'
 * are the same; every other byte, including each byte of a multi-byte UTF-8
 * character, matches only itself ("É" matches "É", not "é"). Because UTF-8
 * is self-synchronising, a byte match of a valid UTF-8 needle inside valid
 * UTF-8 text always starts and ends on character boundaries, so no match
 * ever splits a character.
 *
 * Cost: search_in looks at each byte of the text at most three times (once
 * in the matcher, plus once by memchr for each case of the needle's first
 * byte), so one call costs O(hn) for any needle of up to SEARCH_MAX bytes;
 * search_init costs O(needle x its distinct bytes).
 */
#ifndef CL_SEARCH_H
#define CL_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#define SEARCH_MAX 200          /* longest needle, bytes */

struct search {
	size_t n;                /* needle length */
	unsigned char first;     /* its first byte, lower-cased */
	unsigned ncls;           /* byte classes: 0 = not in the needle */
	uint8_t cls[256];        /* byte -> class (both cases of a letter: one) */
	uint16_t *next;          /* the automaton: next[state * ncls + class] is
				  * the next state, times ncls */
};

/*
 * Prepare s to look for needle[0..n); s must be released with
 * search_release (also after a failure). 0, CL_ETOOBIG if n > SEARCH_MAX,
 * or CL_ENOMEM (the automaton takes n x distinct needle bytes, at most
 * 80 KB). An empty needle matches every text.
 */
int search_init(struct search *s, const char *needle, size_t n);
void search_release(struct search *s);

/*
 * 1 if text[0..hn) contains the needle (ASCII case folded), 0 if not.
 * If steps is not NULL, *steps is increased by the work done: bytes memchr
 * looked at plus bytes the automaton stepped over; never more than 3 * hn
 * (the bound tests/unit/test_core_search.c holds it to).
 */
int search_in(const struct search *s, const char *text, size_t hn, size_t *steps);

#endif
