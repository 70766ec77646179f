/*
 * token.c - access tokens and the randomness / SHA-256 the store layer uses,
 * all through OpenSSL (RAND_bytes, EVP, EVP_EncodeBlock), never hand-rolled.
 *
 * A token is "clg_" + base64url(32 random bytes) without padding: 43
 * characters from [A-Za-z0-9_-], so it is safe in a URL path segment. The
 * server keeps only SHA-256(token); comparing hashes never needs the token.
 */
#include "token.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#define TOKEN_RAW 32
#define TOKEN_B64 43              /* base64 of 32 bytes without the '=' */

int token_random(void *buf, size_t n)
{
	unsigned char *p = buf;

	while (n > 0) {
		int chunk = n > INT_MAX ? INT_MAX : (int)n;

		if (RAND_bytes(p, chunk) != 1)
			return CL_EIO;
		p += chunk;
		n -= (size_t)chunk;
	}
	return CL_OK;
}

void token_hash(const char *s, size_t n, uint8_t hash[EV_HASH_LEN])
{
	unsigned int len = 0;

	/* A failure inside OpenSSL leaves a hash that matches no token. */
	if (EVP_Digest(s, n, hash, &len, EVP_sha256(), NULL) != 1 || len != EV_HASH_LEN)
		memset(hash, 0xff, EV_HASH_LEN);
}

int token_secret(const char *prefix, char *out, size_t cap, uint8_t hash[EV_HASH_LEN])
{
	unsigned char raw[TOKEN_RAW];
	unsigned char b64[4 * ((TOKEN_RAW + 2) / 3) + 1];   /* 44 + NUL */
	size_t pre = strlen(prefix);
	int n, rc;

	if (cap < pre + TOKEN_B64 + 1)
		return CL_EINVAL;
	out[0] = '\0';
	rc = token_random(raw, sizeof raw);
	if (rc)
		return rc;
	n = EVP_EncodeBlock(b64, raw, (int)sizeof raw);
	OPENSSL_cleanse(raw, sizeof raw);
	if (n != 44 || b64[TOKEN_B64] != '=')
		return CL_EIO;
	for (int i = 0; i < TOKEN_B64; i++) {
		if (b64[i] == '+')
			b64[i] = '-';
		else if (b64[i] == '/')
			b64[i] = '_';
	}
	memcpy(out, prefix, pre);
	memcpy(out + pre, b64, TOKEN_B64);
	out[pre + TOKEN_B64] = '\0';
	OPENSSL_cleanse(b64, sizeof b64);
	token_hash(out, pre + TOKEN_B64, hash);
	return CL_OK;
}

int token_generate(char out[TOKEN_LEN + 1], uint8_t hash[EV_HASH_LEN])
{
	return token_secret(TOKEN_PREFIX, out, TOKEN_LEN + 1, hash);
}
