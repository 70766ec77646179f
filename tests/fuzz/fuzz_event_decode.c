/*
 * fuzz_event_decode.c - hostile bytes into the event codec (core/event.c).
 *
 * ev_decode must refuse or accept without reading outside the input; an
 * accepted event must render as JSON, re-encode (the encoder refuses only
 * what the decoder refuses, event.c), decode again to the same event, and
 * encoding is then a fixed point: encode(decode(encode(e))) == encode(e).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../core/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event ev, ev2;
	struct ev_buf b1, b2;
	json_t *j1, *j2;
	char *s;

	if (ev_decode(data, size, &ev) != 0)
		return 0;
	ev.seq = 1;
	if (!(j1 = ev_to_json(&ev)))
		abort();
	if (!(s = json_dumps(j1, JSON_COMPACT)))
		abort();
	free(s);

	ev_buf_init(&b1);
	ev_buf_init(&b2);
	if (ev_encode(&ev, &b1) != 0)
		abort();              /* decoded but not re-encodable */
	if (ev.version == (uint32_t)ev_current_version((int)ev.type) &&
	    b1.len > size)
		abort();              /* the canonical form is never longer */
	if (ev_decode(b1.data, b1.len, &ev2) != 0)
		abort();
	ev2.seq = 1;
	if (ev2.type != ev.type || ev2.ts != ev.ts || ev2.actor != ev.actor ||
	    memcmp(&ev2.ids, &ev.ids, sizeof ev.ids) != 0 ||
	    memcmp(ev2.prev_hash, ev.prev_hash, EV_HASH_LEN) != 0 ||
	    memcmp(ev2.token_hash, ev.token_hash, EV_HASH_LEN) != 0)
		abort();
	if (!(j2 = ev_to_json(&ev2)))
		abort();
	/* "v" differs for an upcast event; compare the rest */
	json_object_del(j1, "v");
	json_object_del(j2, "v");
	if (!json_equal(j1, j2))
		abort();
	if (ev_encode(&ev2, &b2) != 0 || b2.len != b1.len ||
	    memcmp(b1.data, b2.data, b1.len) != 0)
		abort();
	json_decref(j1);
	json_decref(j2);
	ev_buf_release(&b1);
	ev_buf_release(&b2);
	return 0;
}
