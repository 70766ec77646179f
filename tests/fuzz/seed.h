/*
 * seed.h - a small, realistic projection shared by the fuzz targets that
 * need state (client messages, queries, SQL replay): users root (admin, 1),
 * alice (member, 2), bob (member, 3), tokens, entries in every status and
 * kind, and a comment thread, all made by the real commands (cmd_exec),
 * encoded with the real codec and applied with proj_apply. The encoded
 * events are kept so other consumers (the replay) can get the same state.
 */
#ifndef CL_FUZZ_SEED_H
#define CL_FUZZ_SEED_H

#include <stddef.h>
#include "../../core/cmd.h"

#define SEED_ADMIN 1
#define SEED_ALICE 2
#define SEED_BOB 3
#define SEED_MAX_EVENTS 64

struct fuzz_seed {
	struct proj *p;
	int64_t now;
	unsigned tokens;
	struct ev_buf enc[SEED_MAX_EVENTS];   /* every event, encoded, seq 1..n */
	size_t n;
};

/* Build the state; aborts if any step fails (the seed is fixed). */
void fuzz_seed_init(struct fuzz_seed *s);
void fuzz_seed_release(struct fuzz_seed *s);

/* Context for a command by actor with a fresh (fake) token. */
void fuzz_seed_ctx(struct fuzz_seed *s, uint64_t actor, struct cmd_ctx *ctx,
		   char token[32], uint8_t hash[EV_HASH_LEN]);

#endif
