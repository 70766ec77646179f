/* test_core_search.c - core/search.c: what the "q" search matches (ASCII case
 * folding only, UTF-8 untouched), agreement with a naive reference, and the
 * linear work bound on needles built to defeat a naive scan. */
#include "harness.h"
#include "../../core/cl.h"
#include "../../core/search.h"

#include <stdlib.h>

static int has(const char *text, const char *needle)
{
	struct search s;
	int r = -1;

	if (search_init(&s, needle, strlen(needle)) == 0)
		r = search_in(&s, text, strlen(text), NULL);
	search_release(&s);
	return r;
}

/* The rule the old query code had, written the slow obvious way. */
static int naive(const char *t, size_t tn, const char *p, size_t pn)
{
	for (size_t i = 0; i + pn <= tn; i++) {
		size_t k = 0;

		while (k < pn) {
			unsigned char a = (unsigned char)t[i + k], b = (unsigned char)p[k];

			if (a >= 'A' && a <= 'Z')
				a = (unsigned char)(a + 32);
			if (b >= 'A' && b <= 'Z')
				b = (unsigned char)(b + 32);
			if (a != b)
				break;
			k++;
		}
		if (k == pn)
			return 1;
	}
	return 0;
}

static void t_basic(void)
{
	CHECK(has("Fix the LOGIN page", "login") == 1);
	CHECK(has("Fix the LOGIN page", "Login Page") == 1);
	CHECK(has("Fix the LOGIN page", "logout") == 0);
	CHECK(has("abc", "abc") == 1);
	CHECK(has("abc", "abcd") == 0);
	CHECK(has("abc", "") == 1);
	CHECK(has("", "") == 1);
	CHECK(has("", "a") == 0);
	CHECK(has("xyzA", "a") == 1);           /* one byte, at the very end */
	CHECK(has("Axyz", "a") == 1);           /* one byte, at the start */
	CHECK(has("xyz", "a") == 0);
	CHECK(has("123-456", "3-4") == 1);      /* first byte not a letter */
	CHECK(has("aaab", "aab") == 1);         /* restart inside a partial match */
	CHECK(has("abababac", "ababac") == 1);
	CHECK(has("abababab", "ababac") == 0);
	CHECK(has("xAbx", "aB") == 1);
}

static void t_only_ascii_letters_fold(void)
{
	/* pairs 0x20 apart that are not letters must stay different */
	CHECK(has("[x]", "{x}") == 0);
	CHECK(has("@home", "`home") == 0);
	CHECK(has("a^b", "a~b") == 0);
	/* UTF-8 is compared byte for byte: "É" (c3 89) is not "é" (c3 a9),
	 * though the second bytes are 0x20 apart */
	CHECK(has("caf\xc3\xa9", "CAF\xc3\xa9") == 1);
	CHECK(has("CAF\xc3\x89", "caf\xc3\xa9") == 0);
	CHECK(has("CAF\xc3\x89", "caf\xc3\x89") == 1);
	CHECK(has("\xc3\x89t\xc3\xa9", "\xc3\xa9t\xc3\xa9") == 0);
	/* a multi-byte needle inside other characters */
	CHECK(has("na\xc3\xafve \xe2\x80\x94 test", "\xe2\x80\x94") == 1);
	CHECK(has("\xf0\x9f\x98\x80\xf0\x9f\x98\x81", "\xf0\x9f\x98\x81") == 1);
	/* "K" (Kelvin sign, U+212A) is not "k" */
	CHECK(has("\xe2\x84\xaa", "k") == 0);
}

static void t_needle_limit(void)
{
	char big[SEARCH_MAX + 1];
	struct search s;

	memset(big, 'x', sizeof big);
	CHECK_EQ_INT(search_init(&s, big, SEARCH_MAX), 0);
	CHECK_EQ_INT(search_in(&s, big, sizeof big, NULL), 1);
	big[SEARCH_MAX - 1] = 'y';
	CHECK_EQ_INT(search_in(&s, big, sizeof big, NULL), 0);
	search_release(&s);
	CHECK_EQ_INT(search_init(&s, big, SEARCH_MAX + 1), CL_ETOOBIG);
	search_release(&s);
	/* every byte value distinct: the largest automaton */
	for (int i = 0; i < SEARCH_MAX; i++)
		big[i] = (char)(i < 26 ? 'a' + i : 0x80 + i - 26);
	CHECK_EQ_INT(search_init(&s, big, SEARCH_MAX), 0);
	CHECK_EQ_INT(search_in(&s, big, SEARCH_MAX, NULL), 1);
	big[0] = 'A';
	CHECK_EQ_INT(search_in(&s, big, SEARCH_MAX, NULL), 1);
	search_release(&s);
}

static uint32_t rnd_state = 12345;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* Random texts and needles over a small alphabet with both cases and
 * non-ASCII bytes, so that matches, near-misses and restarts are common. */
static void t_agrees_with_naive(void)
{
	static const char alpha[] = { 'a', 'A', 'b', 'B', '[', '{', (char)0xc3, (char)0xa9 };
	char t[80], p[12];
	int disagree = 0, found = 0;

	for (int round = 0; round < 200000; round++) {
		size_t tn = rnd() % sizeof t, pn = 1 + rnd() % sizeof p;
		struct search s;

		for (size_t i = 0; i < tn; i++)
			t[i] = alpha[rnd() % (round % 3 ? 4 : sizeof alpha)];
		if (tn >= pn && rnd() % 2) {
			memcpy(p, t + rnd() % (tn - pn + 1), pn);   /* a piece of the text */
			for (size_t i = 0; i < pn; i++)
				if (rnd() % 4 == 0 && p[i] >= 'a' && p[i] <= 'z')
					p[i] = (char)(p[i] - 32);
		} else {
			for (size_t i = 0; i < pn; i++)
				p[i] = alpha[rnd() % (round % 3 ? 4 : sizeof alpha)];
		}
		REQUIRE(search_init(&s, p, pn) == 0);
		int got = search_in(&s, t, tn, NULL), want = naive(t, tn, p, pn);

		search_release(&s);
		disagree += got != want;
		found += want;
	}
	CHECK_EQ_INT(disagree, 0);
	CHECK(found > 10000 && found < 190000);   /* both outcomes well exercised */
}

/*
 * The needles of issue 15: each must cost O(text), here at most 3 steps a
 * byte (search.h), where the naive scan does hundreds. The figures are
 * counted work, not time.
 */
static void adversarial(const char *what, const char *text, size_t tn, const char *needle,
			size_t nn, int want)
{
	struct search s;
	size_t steps = 0;

	REQUIRE(search_init(&s, needle, nn) == 0);
	CHECK_EQ_INT(search_in(&s, text, tn, &steps), want);
	search_release(&s);
	CHECK(steps <= 3 * tn);
	CHECK_EQ_INT(naive(text, tn, needle, nn), want);
	printf("  %s: %zu steps over %zu bytes\n", what, steps, tn);
}

static void t_adversarial_linear(void)
{
	enum { N = 32 * 1024 };
	char *text = malloc(N + 1), needle[SEARCH_MAX];

	REQUIRE(text);
	memset(text, 'a', N);
	memset(needle, 'a', 199);
	needle[199] = 'b';
	adversarial("a*199+b in a*32K", text, N, needle, 200, 0);
	text[N - 1] = 'B';
	adversarial("a*199+b in a*32K+B", text, N, needle, 200, 1);

	/* each 'A' is a candidate start and the only 'a' is at the end: looking
	 * for both cases afresh at every candidate would be quadratic */
	memset(text, 'A', N);
	text[N - 1] = 'a';
	adversarial("ab in A*32K+a", text, N, "ab", 2, 0);

	/* a periodic needle against a text that keeps almost matching it */
	for (size_t i = 0; i < N; i++)
		text[i] = "ab"[i % 2];
	for (size_t i = 0; i < 198; i++)
		needle[i] = "ab"[i % 2];
	needle[198] = 'a';
	needle[199] = 'a';
	adversarial("(ab)*99+aa in (ab)*16K", text, N, needle, 200, 0);
	free(text);
}

int main(void)
{
	RUN(t_basic);
	RUN(t_only_ascii_letters_fold);
	RUN(t_needle_limit);
	RUN(t_agrees_with_naive);
	RUN(t_adversarial_linear);
	return harness_done();
}
