/*
 * fuzz_url_token.c - the handshake's token lookup (sess_token_parse in
 * net/session.c, the pure part of sess_auth): the token after the last
 * "/ws/" of the request path, or "Authorization: Bearer <token>".
 *
 * Input: the path up to the first '\n' (capped like lws' 1 KiB copy, and
 * ending at a NUL as the copied header does); the rest, if there is a '\n',
 * is the Authorization header value.
 * Invariants: the answer is 0 or 404; a token lies inside the caller's
 * buffer or the header copy and has no surrounding spaces from "Bearer";
 * a path token is exactly the text after the last "/ws/" when that is
 * not empty (an empty one falls back to the header) (cut past
 * TOKEN_MAX_INPUT, so sess_auth refuses it with 403 unhashed); a usable
 * token is hashed as sess_auth would.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/session.h"
#include "../../store/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char uri[1024], buf[TOKEN_MAX_INPUT + 64];
	const uint8_t *nl = memchr(data, '\n', size);
	size_t ulen = nl ? (size_t)(nl - data) : size;
	const char *auth = NULL, *tok, *last = NULL, *p;
	size_t alen = 0, tlen;
	uint8_t hash[EV_HASH_LEN];
	int rc;

	if (ulen >= sizeof uri)
		ulen = sizeof uri - 1;
	memcpy(uri, data, ulen);
	uri[ulen] = '\0';
	if (nl) {
		auth = (const char *)nl + 1;
		alen = size - (size_t)(nl + 1 - data);
	}
	rc = sess_token_parse(uri, auth, alen, buf, sizeof buf, &tok, &tlen);
	if (rc != 0 && rc != 404)
		abort();
	if (rc)
		return 0;
	if (tlen == 0)
		return 0;
	if (!tok || tok < buf || tok + (tlen > TOKEN_MAX_INPUT ? 0 : tlen) > buf + sizeof buf)
		abort();
	for (p = uri; (p = strstr(p, "/ws/")) != NULL; p++)
		last = p;
	if (last && last[4]) {
		size_t want = strlen(last + 4);

		if (want > TOKEN_MAX_INPUT ? tlen != TOKEN_MAX_INPUT + 1
					   : (tlen != want || memcmp(tok, last + 4, tlen)))
			abort();
	} else if (tlen <= TOKEN_MAX_INPUT && (tok[0] == ' ' || tok[tlen - 1] == ' ')) {
		abort();
	}
	if (tlen <= TOKEN_MAX_INPUT)
		token_hash(tok, tlen, hash);
	return 0;
}
