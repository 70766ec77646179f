/*
 * fuzz_client_message.c - one whole client message, as the server gets it
 * in a text frame, through everything up to the commit: the server's own
 * parser (req_parse in net/proto.c: jansson, JSON_REJECT_DUPLICATES, op and
 * field checks), then for a command the server's command path
 * (command_run_txn in store/command.c: idempotency lookup, cmd_exec, append
 * to a real LMDB log, apply, result record) against a small seeded
 * projection (seed.c); for a query or seed request proj_query, whose result
 * must serialize. The log lives in a temporary directory for the process;
 * each input runs in one write txn that is aborted at its end, so every
 * input starts from the seed again.
 *
 * Invariants (abort = finding): a refusal carries a known code and a
 * message and changes nothing; an accepted command's events are appended
 * (so they encode), read back from the txn (so they decode), apply, and
 * proj_check still holds afterwards; the command path never fails with an
 * error (the server would answer "internal"). The sender is root, alice or
 * bob (see below), so the admin-only paths are reached too.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "../../net/proto.h"
#include "../../core/cmd.h"
#include "../../store/command.h"
#include "seed.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The process's log, holding the seed's events (made on first use). */
static struct evlog *fuzz_log;
static char fuzz_dir[64];

/* Unlink the log's files at once: LMDB keeps using them through its open
 * descriptors and mapping, and nothing is left behind however we exit. */
static void fuzz_dir_remove(void)
{
	DIR *d;
	struct dirent *e;
	char path[400];

	if (!(d = opendir(fuzz_dir)))
		abort();
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof path, "%s/%s", fuzz_dir, e->d_name);
		unlink(path);
	}
	closedir(d);
	rmdir(fuzz_dir);
}

/* The seed's events in a log of their own, once per process. */
static struct evlog *fuzz_seed_log(const struct fuzz_seed *s)
{
	const char *tmp = getenv("TMPDIR");
	size_t i;

	if (fuzz_log)
		return fuzz_log;
	snprintf(fuzz_dir, sizeof fuzz_dir, "%.40s/fuzzcm.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(fuzz_dir) ||
	    evlog_open(&fuzz_log, fuzz_dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) != 0)
		abort();
	fuzz_dir_remove();
	for (i = 0; i < s->n; i++) {
		struct event ev;

		if (ev_decode(s->enc[i].data, s->enc[i].len, &ev) != 0 ||
		    evlog_append(fuzz_log, i, &ev, 1, 0, (struct cl_str){ NULL, 0 }, NULL, 0,
				 NULL) != 0)
			abort();
	}
	return fuzz_log;
}

/* The seed, and the input's write txn, once a message needs state. */
struct fuzz_state {
	struct fuzz_seed s;
	struct evlog_txn *txn;
	int seeded;
};

/* getEntryHistory's loader: the events as the txn sees them, as JSON. */
static int seed_load(void *arg, uint64_t seq, json_t **out)
{
	struct fuzz_state *st = arg;
	struct event ev;
	int rc = evlog_wget(st->txn, seq, &ev);

	if (rc < 0)
		abort();
	if (rc == 0)
		return CL_ENOTFOUND;
	*out = ev_to_json(&ev);
	return *out ? 0 : CL_ENOMEM;
}

static void check_fail(const struct cl_fail *f)
{
	if (f->code <= CMD_OK || f->code >= CMD__COUNT || !cmd_code_name(f->code) ||
	    f->message[0] == '\0' || !memchr(f->message, '\0', sizeof f->message))
		abort();
}

static void run_command(struct fuzz_state *st, struct req *r, uint64_t actor)
{
	struct fuzz_seed *s = &st->s;
	struct command c = { .actor = actor, .name = r->name, .params = r->params,
			     .cmd_id = r->cmd_id };
	struct command_out out;
	struct cmd_ctx ctx;
	char token[32];
	uint8_t hash[EV_HASH_LEN];
	struct event back;
	uint64_t before = proj_seq(s->p), seq;
	char why[200];

	fuzz_seed_ctx(s, actor, &ctx, token, hash);
	c.now = ctx.now;
	c.new_token = ctx.new_token;
	c.new_token_hash = ctx.new_token_hash;
	if (command_run_txn(st->txn, s->p, &c, NULL, NULL, &out) != 0)
		abort();          /* the server would have answered "internal" */
	if (out.fail.code != CMD_OK) {
		check_fail(&out.fail);
		if (out.n != 0 || out.result || proj_seq(s->p) != before ||
		    evlog_wlast(st->txn) != before)
			abort();
		command_out_release(&out);
		return;
	}
	if (!json_is_object(out.result))
		abort();
	if (!out.replayed) {
		if (out.n < 1 || out.n > CMD_MAX_EVENTS || out.first_seq != before + 1 ||
		    proj_seq(s->p) != before + out.n || evlog_wlast(st->txn) != proj_seq(s->p))
			abort();
		for (seq = out.first_seq; seq <= proj_seq(s->p); seq++)
			if (evlog_wget(st->txn, seq, &back) != 1 || back.seq != seq)
				abort();  /* appended, yet it does not read back */
	}
	if (proj_check(s->p, why, sizeof why) != 0)
		abort();
	command_out_release(&out);
}

static void run_query(struct fuzz_state *st, struct req *r, uint64_t actor)
{
	struct proj_qctx q = { .viewer = actor, .load = seed_load, .arg = st };
	struct cl_fail fail;
	json_t *result = NULL;
	char *txt;

	memset(&fail, 0, sizeof fail);
	if (proj_query(st->s.p, r->name, r->params, &q, &result, &fail) != 0) {
		check_fail(&fail);
		return;
	}
	if (!result || !(txt = json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY)))
		abort();
	free(txt);
	json_decref(result);
}

/* One message from actor against s (seeded on first use). */
static void run_message(struct fuzz_state *st, const char *msg, size_t len, uint64_t actor)
{
	struct req *r;
	json_t *e;

	r = req_parse(msg, len);
	if (!r)
		abort();
	switch (r->kind) {
	case REQ_BAD:
		if (r->fail.code <= CMD_OK || r->fail.code >= CMD__COUNT || !r->fail.message[0])
			abort();
		if (!(e = proto_error(r->id, r->fail.code, r->fail.message)))
			abort();
		json_decref(e);
		break;
	case REQ_CMD:
	case REQ_QUERY:
	case REQ_SEED:
		if (!r->name || !json_is_object(r->params))
			abort();
		if (!st->seeded) {
			fuzz_seed_init(&st->s);
			if (evlog_wbegin(fuzz_seed_log(&st->s), proj_seq(st->s.p), NULL,
					 &st->txn) != 0)
				abort();
			st->seeded = 1;
		}
		if (r->kind == REQ_CMD)
			run_command(st, r, actor);
		else
			run_query(st, r, actor);
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
	struct fuzz_state st;
	size_t i;

	memset(&st, 0, sizeof st);

	for (i = 0; i < 8; i++) {
		nl = memchr(p, '\n', (size_t)(end - p));
		run_message(&st, p, nl ? (size_t)(nl - p) : (size_t)(end - p),
			    actors[(size + i) % 3]);
		if (!nl)
			break;
		p = nl + 1;
	}
	if (st.seeded) {
		evlog_wabort(st.txn);      /* the next input starts from the seed */
		fuzz_seed_release(&st.s);
	}
	return 0;
}
