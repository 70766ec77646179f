/*
 * hookkey.h - webhook secrets and signatures (OpenSSL).
 *
 * A webhook's secret is never written to the log. The log's
 * webhook.created carries 32 random bytes (its nonce, the "hash" payload
 * key, never in the JSON form), and the secret is derived from them with
 * the data directory's webhook key:
 *
 *   secret = "whsec_" ‖ hex(HMAC-SHA256(key, nonce))
 *
 * The key is 32 random bytes (RAND_bytes) in DATA/webhook.key (mode 0600),
 * made the first time a webhook is created, by whichever process gets
 * there first (written aside, then linked into place: the others read it).
 * So the log alone (a backup, an edge's copy, changelog-audit's view)
 * never lets anyone sign a delivery; a backup that must keep the endpoints
 * working includes DATA/webhook.key (docs/operations.md).
 *
 * Each delivery is signed with the secret: hex(HMAC-SHA256(secret, body)).
 */
#ifndef CL_HOOKKEY_H
#define CL_HOOKKEY_H

#include <stddef.h>
#include <stdint.h>
#include "../core/event.h"

#define HOOKKEY_LEN 32
#define HOOKKEY_SECRET_PREFIX "whsec_"
#define HOOKKEY_SECRET_LEN (6 + 64)      /* prefix + 64 hex digits */
#define HOOKKEY_SIG_LEN 64               /* hex of a SHA-256 HMAC */

/*
 * The webhook key of data directory dir into key. create: make it when it
 * is missing. 0, CL_ENOTFOUND (missing, not create), CL_ECORRUPT (not 32
 * bytes, or readable by others than its owner), CL_EIO (errno kept).
 */
int hookkey_load(const char *dir, int create, uint8_t key[HOOKKEY_LEN]);

/* The secret of the webhook whose nonce is nonce (NUL-terminated). */
void hookkey_secret(const uint8_t key[HOOKKEY_LEN], const uint8_t nonce[EV_HASH_LEN],
		    char out[HOOKKEY_SECRET_LEN + 1]);

/* hex(HMAC-SHA256(secret, body)), lower case, NUL-terminated. */
void hookkey_sign(const char *secret, size_t secret_len, const void *body, size_t len,
		  char out[HOOKKEY_SIG_LEN + 1]);

#endif
