/* test_store_token.c - store/token.c: token format and uniqueness, SHA-256
 * vectors, randomness. */
#include "harness.h"
#include "../../store/token.h"

#include <stdlib.h>

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static int b64url_char(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_';
}

static void t_format(void)
{
	char tok[TOKEN_LEN + 1];
	uint8_t hash[EV_HASH_LEN], again[EV_HASH_LEN];
	int seen_url = 0;

	/* 200 tokens: every one well formed; '-' or '_' shows up somewhere
	 * (each char has a 2/64 chance), proving the base64url mapping runs */
	for (int i = 0; i < 200; i++) {
		memset(tok, 'x', sizeof tok);
		REQUIRE(token_generate(tok, hash) == 0);
		CHECK_EQ_INT(strlen(tok), TOKEN_LEN);
		CHECK(strncmp(tok, TOKEN_PREFIX, 4) == 0);
		for (size_t j = 4; j < TOKEN_LEN; j++) {
			CHECK(b64url_char(tok[j]));
			seen_url |= tok[j] == '-' || tok[j] == '_';
		}
		CHECK(strchr(tok, '=') == NULL && strchr(tok, '+') == NULL &&
		      strchr(tok, '/') == NULL);
		token_hash(tok, strlen(tok), again);
		CHECK(memcmp(hash, again, EV_HASH_LEN) == 0);
	}
	CHECK(seen_url);
}

static int cmp_tok(const void *a, const void *b)
{
	return strcmp(a, b);
}

static void t_unique(void)
{
	enum { N = 1000 };
	char (*toks)[TOKEN_LEN + 1] = calloc(N, sizeof *toks);
	uint8_t hash[EV_HASH_LEN];
	int dup = 0;

	REQUIRE(toks != NULL);
	for (int i = 0; i < N; i++)
		CHECK(token_generate(toks[i], hash) == 0);
	qsort(toks, N, sizeof *toks, cmp_tok);
	for (int i = 1; i < N; i++)
		dup += strcmp(toks[i - 1], toks[i]) == 0;
	CHECK_EQ_INT(dup, 0);
	free(toks);
}

static void t_sha256_vectors(void)
{
	uint8_t h[EV_HASH_LEN];
	char x[2 * EV_HASH_LEN + 1];

	token_hash("abc", 3, h);
	hex(h, sizeof h, x);
	CHECK(strcmp(x, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);
	token_hash("", 0, h);
	hex(h, sizeof h, x);
	CHECK(strcmp(x, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == 0);
	token_hash("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, h);
	hex(h, sizeof h, x);
	CHECK(strcmp(x, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1") == 0);
}

static void t_random(void)
{
	uint8_t a[32], b[32], zero[32] = { 0 };

	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	CHECK(token_random(a, sizeof a) == 0);
	CHECK(token_random(b, sizeof b) == 0);
	CHECK(memcmp(a, b, sizeof a) != 0);
	CHECK(memcmp(a, zero, sizeof a) != 0);
	CHECK(token_random(a, 0) == 0);
}

int main(void)
{
	RUN(t_format);
	RUN(t_unique);
	RUN(t_sha256_vectors);
	RUN(t_random);
	return harness_done();
}
