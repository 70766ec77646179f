/*
 * fuzz_replay_sql.c - changelog-replay's event-to-SQL translation
 * (replay/replay.c through replay_apply_events) into an in-memory SQLite
 * database (replay/sql_sqlite.c), after the seed's events (seed.c).
 *
 * Input: byte 0 is a mode; the rest is records of [2-byte little-endian
 * length][event msgpack], each decoded with ev_decode (refused ones are
 * skipped, at most 32 kept) and given the next seqs after the seed.
 *   mode bit 0 = 1: only events proj_apply accepts are kept (what the server
 *   can ever write); replay must then accept the whole batch (a refusal is a
 *   finding: replay and proj disagree).
 *   mode bit 0 = 0: every decoded event goes in (a hand-made or damaged
 *   log); replay may refuse with CL_ESTATE but must not crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "../../replay/replay.h"
#include "../../core/event.h"
#include "seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_FUZZ_EVENTS 32

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct event evs[SEED_MAX_EVENTS + MAX_FUZZ_EVENTS];
	struct replay_backend *b = NULL;
	struct fuzz_seed s;
	char err[512];
	size_t n = 0, i, off = 1, nseed;
	int filtered, rc;

	if (size < 1)
		return 0;
	filtered = data[0] & 1;
	fuzz_seed_init(&s);
	for (i = 0; i < s.n; i++) {
		if (ev_decode(s.enc[i].data, s.enc[i].len, &evs[n]) != 0)
			abort();
		evs[n].seq = i + 1;
		n++;
	}
	nseed = n;
	while (off + 2 <= size && n < nseed + MAX_FUZZ_EVENTS) {
		size_t len = (size_t)data[off] | (size_t)data[off + 1] << 8;

		off += 2;
		if (len > size - off)
			len = size - off;
		if (ev_decode(data + off, len, &evs[n]) == 0) {
			evs[n].seq = n + 1;
			if (!filtered || proj_apply(s.p, &evs[n]) == 0)
				n++;
		}
		off += len;
	}
	if (replay_sqlite_open(&b, ":memory:", err, sizeof err) != 0)
		abort();
	/* the seed in one batch, the fuzzed events in a second one */
	if (replay_apply_events(b, "fuzz-epoch", evs, nseed, err, sizeof err) != 0) {
		fprintf(stderr, "seed replay: %s\n", err);
		abort();
	}
	rc = replay_apply_events(b, "fuzz-epoch", evs + nseed, n - nseed, err, sizeof err);
	if (rc != 0 && (filtered || rc != CL_ESTATE)) {
		fprintf(stderr, "replay refused (%s): %s\n", cl_strerror(rc), err);
		abort();
	}
	b->ops->close(b);
	fuzz_seed_release(&s);
	return 0;
}
