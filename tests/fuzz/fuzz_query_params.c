/*
 * fuzz_query_params.c - the stored queries (core/query.c) with a fuzzed
 * name and params, against the seeded projection (seed.c), seen by
 * nobody (0, the system), root, alice or bob.
 *
 * Input: byte 0 picks the viewer (mod 4); then the query name up to the
 * first '\n'; the rest is the params JSON (not an object: NULL params).
 * A refusal must carry a known code and message; a result must serialize.
 * The projection is built once and shared, as in the server, where many
 * queries run against one state.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../core/cmd.h"
#include "seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int seed_load(void *arg, uint64_t seq, json_t **out)
{
	struct fuzz_seed *s = arg;
	struct event ev;

	if (seq < 1 || seq > s->n)
		return CL_ENOTFOUND;
	if (ev_decode(s->enc[seq - 1].data, s->enc[seq - 1].len, &ev) != 0)
		abort();
	ev.seq = seq;
	*out = ev_to_json(&ev);
	return *out ? 0 : CL_ENOMEM;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct fuzz_seed s;
	static int ready;
	struct proj_qctx q = { .load = seed_load, .arg = &s };
	struct cl_fail fail;
	const uint8_t *nl;
	json_t *params = NULL, *result = NULL;
	json_error_t err;
	char name[128], *txt;
	size_t n;

	if (!ready) {
		fuzz_seed_init(&s);
		ready = 1;
	}
	if (size < 1)
		return 0;
	q.viewer = data[0] % 4;          /* 0 = system, 1 root, 2 alice, 3 bob */
	data++;
	size--;
	nl = memchr(data, '\n', size);
	n = nl ? (size_t)(nl - data) : size;
	if (n >= sizeof name)
		return 0;
	memcpy(name, data, n);
	name[n] = '\0';                  /* an inner NUL just shortens the name */
	if (nl) {
		params = json_loadb((const char *)nl + 1, size - n - 1, JSON_REJECT_DUPLICATES, &err);
		if (params && !json_is_object(params)) {
			json_decref(params);
			params = NULL;
		}
	}
	memset(&fail, 0, sizeof fail);
	if (proj_query(s.p, name, params, &q, &result, &fail) != 0) {
		if (fail.code <= CMD_OK || fail.code >= CMD__COUNT || !fail.message[0] ||
		    !memchr(fail.message, '\0', sizeof fail.message))
			abort();
	} else {
		if (!result || !(txt = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)))
			abort();
		free(txt);
		json_decref(result);
	}
	json_decref(params);
	return 0;
}
