/*
 * seed.c - the shared seed state of the fuzz targets (see seed.h).
 */
#include "seed.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void seed_apply(struct fuzz_seed *s, struct event *ev)
{
	if (s->n >= SEED_MAX_EVENTS)
		abort();
	ev->seq = proj_seq(s->p) + 1;
	ev_buf_init(&s->enc[s->n]);
	if (ev_encode(ev, &s->enc[s->n]) != 0 || proj_apply(s->p, ev) != 0)
		abort();
	s->n++;
}

void fuzz_seed_ctx(struct fuzz_seed *s, uint64_t actor, struct cmd_ctx *ctx,
		   char token[32], uint8_t hash[EV_HASH_LEN])
{
	s->tokens++;
	snprintf(token, 32, "clg_fuzz%u", s->tokens);
	memset(hash, 0, EV_HASH_LEN);
	memcpy(hash, &s->tokens, sizeof s->tokens);
	hash[31] = 0x5a;
	memset(ctx, 0, sizeof *ctx);
	ctx->actor = actor;
	ctx->now = ++s->now;
	ctx->new_token = token;
	ctx->new_token_hash = hash;
}

static void seed_cmd(struct fuzz_seed *s, uint64_t actor, const char *op, const char *params)
{
	struct cmd_result res;
	struct cmd_ctx ctx;
	char token[32];
	uint8_t hash[EV_HASH_LEN];
	json_error_t err;
	json_t *pj = json_loads(params, 0, &err);
	size_t i;

	if (!pj)
		abort();
	memset(&res, 0, sizeof res);
	fuzz_seed_ctx(s, actor, &ctx, token, hash);
	if (cmd_exec(s->p, op, pj, &ctx, &res) != 0) {
		fprintf(stderr, "seed %s %s: %s\n", op, params, res.fail.message);
		abort();
	}
	for (i = 0; i < res.n; i++)
		seed_apply(s, &res.ev[i]);
	cmd_result_release(&res);
	json_decref(pj);
}

void fuzz_seed_init(struct fuzz_seed *s)
{
	struct event ev;

	memset(s, 0, sizeof *s);
	if (!(s->p = proj_new()))
		abort();
	s->now = 1790000000000000LL;
	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.ts = ++s->now;
	ev.ids.user = 1;
	ev.name = CL_STR("root");
	ev.role = ROLE_ADMIN;
	seed_apply(s, &ev);
	seed_cmd(s, SEED_ADMIN, "createUser", "{\"name\":\"alice\"}");
	seed_cmd(s, SEED_ADMIN, "createUser", "{\"name\":\"bob\",\"role\":\"member\"}");
	seed_cmd(s, SEED_ADMIN, "issueToken", "{\"user\":2,\"label\":\"laptop\"}");
	seed_cmd(s, SEED_ADMIN, "revokeToken", "{\"token\":3}");
	seed_cmd(s, SEED_ALICE, "createEntry",
		 "{\"title\":\"Fix login\",\"body\":\"It fails \\u00e9\",\"kind\":\"fix\"}");
	seed_cmd(s, SEED_BOB, "createEntry",
		 "{\"title\":\"New export\",\"body\":\"\",\"kind\":\"feature\"}");
	seed_cmd(s, SEED_ADMIN, "createEntry",
		 "{\"title\":\"Rename\",\"body\":\"b\",\"kind\":\"change\"}");
	seed_cmd(s, SEED_ALICE, "editEntry", "{\"entry\":1,\"title\":\"Fix login page\"}");
	seed_cmd(s, SEED_ALICE, "setStatus", "{\"entry\":1,\"status\":\"resolved\"}");
	seed_cmd(s, SEED_ADMIN, "setStatus", "{\"entry\":3,\"status\":\"cancelled\"}");
	seed_cmd(s, SEED_BOB, "addComment", "{\"entry\":1,\"body\":\"thanks\"}");
	seed_cmd(s, SEED_ALICE, "addComment", "{\"entry\":1,\"parent\":1,\"body\":\"np\"}");
	seed_cmd(s, SEED_BOB, "addComment", "{\"entry\":1,\"parent\":2,\"body\":\"deeper\"}");
	seed_cmd(s, SEED_ADMIN, "addComment", "{\"entry\":2,\"body\":\"later\"}");
	seed_cmd(s, SEED_ADMIN, "setRole", "{\"user\":3,\"role\":\"admin\"}");
	seed_cmd(s, SEED_ADMIN, "setRole", "{\"user\":\"bob\",\"role\":\"member\"}");
}

void fuzz_seed_release(struct fuzz_seed *s)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		ev_buf_release(&s->enc[i]);
	proj_free(s->p);
	s->p = NULL;
	s->n = 0;
}
