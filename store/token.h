/*
 * token.h - access tokens and the crypto the store layer owns (OpenSSL).
 *
 * A token is "clg_" followed by 43 base64url characters of 32 random bytes
 * (RAND_bytes, EVP_EncodeBlock). Only its SHA-256 is ever stored; the token
 * itself is shown once when issued.
 */
#ifndef CL_TOKEN_H
#define CL_TOKEN_H

#include <stddef.h>
#include <stdint.h>
#include "../core/event.h"

#define TOKEN_PREFIX "clg_"
#define TOKEN_LEN 47               /* "clg_" + 43 */
#define TOKEN_MAX_INPUT 256        /* longer input is refused before hashing */

/* New random token into out (TOKEN_LEN + 1 bytes) and its hash. */
int token_generate(char out[TOKEN_LEN + 1], uint8_t hash[EV_HASH_LEN]);

/* The same shape with another prefix (a web session's "cls_"): prefix +
 * 43 base64url characters of 32 random bytes into out (cap bytes, NUL
 * included), and its SHA-256. CL_EINVAL if cap is too small. */
int token_secret(const char *prefix, char *out, size_t cap, uint8_t hash[EV_HASH_LEN]);

/* SHA-256 of the n bytes at s. */
void token_hash(const char *s, size_t n, uint8_t hash[EV_HASH_LEN]);

/* Cryptographically random bytes. */
int token_random(void *buf, size_t n);

#endif
