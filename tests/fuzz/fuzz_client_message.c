/*
 * fuzz_client_message.c - one whole client message, as the server gets it
 * in a text frame, through everything up to the append: the server's own
 * parser (req_parse in net/proto.c: jansson, JSON_REJECT_DUPLICATES, op and
 * field checks), then for a command cmd_exec against a small seeded
 * projection (seed.c), ev_encode of every event it makes, a decode of those
 * bytes, and proj_apply to the (per-input, fresh) projection, as proto_exec
 * does; for a query or seed request proj_query, whose result must serialize.
 *
 * Invariants (abort = finding): a refusal carries a known code and a
 * message; an accepted command's events encode, decode and apply, and
 * proj_check still holds afterwards. The sender is root, alice or bob
 * (see below), so the admin-only paths are reached too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../../net/proto.h"
#include "../../core/cmd.h"
#include "seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


/* getEntryHistory's loader: the seed's stored events as JSON. */
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

static void check_fail(const struct cl_fail *f)
{
	if (f->code <= CMD_OK || f->code >= CMD__COUNT || !cmd_code_name(f->code) ||
	    f->message[0] == '\0' || !memchr(f->message, '\0', sizeof f->message))
		abort();
}

static void run_command(struct fuzz_seed *s, struct req *r, uint64_t actor)
{
	struct cmd_result res;
	struct cmd_ctx ctx;
	char token[32];
	uint8_t hash[EV_HASH_LEN];
	struct ev_buf b;
	struct event back;
	uint64_t before = proj_seq(s->p);
	char why[200];
	size_t i;

	memset(&res, 0, sizeof res);
	fuzz_seed_ctx(s, actor, &ctx, token, hash);
	if (cmd_exec(s->p, r->name, r->params, &ctx, &res) != 0) {
		check_fail(&res.fail);
		if (res.n != 0 || proj_seq(s->p) != before)
			abort();
		cmd_result_release(&res);
		return;
	}
	if (res.n < 1 || res.n > CMD_MAX_EVENTS)
		abort();
	ev_buf_init(&b);
	for (i = 0; i < res.n; i++) {
		res.ev[i].seq = proj_seq(s->p) + 1;
		if (ev_encode(&res.ev[i], &b) != 0)
			abort();      /* the command made an event the log refuses */
		if (ev_decode(b.data, b.len, &back) != 0)
			abort();
		if (proj_apply(s->p, &res.ev[i]) != 0)
			abort();      /* validated, yet impossible in the state */
	}
	ev_buf_release(&b);
	if (proj_check(s->p, why, sizeof why) != 0)
		abort();
	if (res.reply) {
		char *txt = json_dumps(res.reply, JSON_COMPACT);

		if (!txt)
			abort();
		free(txt);
	}
	cmd_result_release(&res);
}

static void run_query(struct fuzz_seed *s, struct req *r, uint64_t actor)
{
	struct proj_qctx q = { .viewer = actor, .load = seed_load, .arg = s };
	struct cl_fail fail;
	json_t *result = NULL;
	char *txt;

	memset(&fail, 0, sizeof fail);
	if (proj_query(s->p, r->name, r->params, &q, &result, &fail) != 0) {
		check_fail(&fail);
		return;
	}
	if (!result || !(txt = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)))
		abort();
	free(txt);
	json_decref(result);
}

/* One message from actor against s (seeded on first use). */
static void run_message(struct fuzz_seed *s, int *seeded, const char *msg, size_t len,
			uint64_t actor)
{
	struct req *r;
	json_t *e;

	r = req_parse(msg, len);
	if (!r)
		abort();
	switch (r->kind) {
	case REQ_BAD:
		if (r->err_code <= CMD_OK || r->err_code >= CMD__COUNT || !r->err_msg[0])
			abort();
		if (!(e = proto_error(r->id, r->err_code, r->err_msg)))
			abort();
		json_decref(e);
		break;
	case REQ_CMD:
	case REQ_QUERY:
	case REQ_SEED:
		if (!r->name || !json_is_object(r->params))
			abort();
		if (!*seeded) {
			fuzz_seed_init(s);
			*seeded = 1;
		}
		if (r->kind == REQ_CMD)
			run_command(s, r, actor);
		else
			run_query(s, r, actor);
		break;
	default:
		break;
	}
	req_free(r);
}

/*
 * The input is one message, or several separated by '\n' (JSON text has no
 * raw newline inside strings), run in order against one projection so a
 * command can use what an earlier one made. Sender of message i: root,
 * alice or bob by (size + i) mod 3.
 */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint64_t actors[] = { SEED_ADMIN, SEED_ALICE, SEED_BOB };
	const char *p = (const char *)data, *end = p + size, *nl;
	struct fuzz_seed s;
	int seeded = 0;
	size_t i;

	for (i = 0; i < 8; i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		run_message(&s, &seeded, p, nl ? (size_t)(nl - p) : (size_t)(end - p),
			    actors[(size + i) % 3]);
		if (!nl)
			break;
		p = nl + 1;
	}
	if (seeded)
		fuzz_seed_release(&s);
	return 0;
}
