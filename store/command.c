/*
 * command.c - the command path and following the log (see command.h).
 *
 * command_run_txn is the group-commit form: every step inside the
 * caller's txn, each event applied right after its append so the next
 * command of the same txn is judged against it. command_run is the
 * stand-alone form: validate, then one conditional evlog_append, and apply
 * only what was committed. Both share command_prepare (token, cmd_exec,
 * command id on the events) and command_result (the stored result).
 */
#include "command.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "hookkey.h"
#include "token.h"

void command_out_release(struct command_out *out)
{
	json_decref(out->result);
	json_decref(out->reply);
	json_decref(out->secret);
	memset(out, 0, sizeof *out);
}

int command_log_failure(int rc)
{
	return rc == CL_EIO || rc == CL_ENOSPC || rc == CL_EMAPFULL || rc == CL_ECONFLICT ||
	       rc == CL_ECORRUPT || rc == CL_ELOCKED;
}

static void command_fault_set(struct command_fault *f, int step, uint64_t seq, int type)
{
	if (!f)
		return;
	f->step = step;
	f->seq = seq;
	f->type = type;
}

/* The token the command hands out, when it hands one out. */
struct command_token {
	char text[TOKEN_LEN + 1];
	uint8_t hash[EV_HASH_LEN];
};

static int command_needs_token(const char *name)
{
	return strcmp(name, "createUser") == 0 || strcmp(name, "issueToken") == 0 ||
	       strcmp(name, "createWebhook") == 0;   /* its hash: the webhook's nonce */
}

/* createWebhook's secret, from the key and the event's nonce, into res. */
static int command_hook_secret(const struct command *c, struct cmd_result *res,
			       struct command_out *out)
{
	char secret[HOOKKEY_SECRET_LEN + 1];

	if (!c->hook_key) {
		out->fail.code = CMD_INTERNAL;
		snprintf(out->fail.message, sizeof out->fail.message,
			 "the webhook key of the data directory is not loaded");
		return 1;
	}
	CL_ASSERT(res->n == 1 && res->ev[0].type == EV_WEBHOOK_CREATED && !res->secret);
	hookkey_secret(c->hook_key, res->ev[0].token_hash, secret);
	res->secret = json_pack("{s:s}", "secret", secret);
	OPENSSL_cleanse(secret, sizeof secret);
	return res->secret ? 0 : CL_ENOMEM;
}

/*
 * Step 2: cmd_exec with the context the command needs. Returns 0 with
 * res filled (res->n events, cmd_id set on each), 1 when refused
 * (out->fail set), or a CL_E* code. res must be released in every case.
 */
static int command_prepare(const struct proj *p, const struct command *c,
			   struct command_token *tok, struct cmd_result *res,
			   struct command_out *out)
{
	struct cmd_ctx ctx = { .actor = c->actor, .now = c->now,
			       .new_token = c->new_token, .new_token_hash = c->new_token_hash };
	size_t i;

	memset(res, 0, sizeof *res);
	if (!ctx.new_token && command_needs_token(c->name)) {
		if (token_generate(tok->text, tok->hash))
			return CL_EIO;
		ctx.new_token = tok->text;
		ctx.new_token_hash = tok->hash;
	}
	if (cmd_exec(p, c->name, c->params, &ctx, res) < 0) {
		out->fail = res->fail;
		CL_ASSERT(out->fail.code != CMD_OK);
		return 1;
	}
	CL_ASSERT(res->n <= CMD_MAX_EVENTS);
	if (strcmp(c->name, "createWebhook") == 0) {
		int rc = command_hook_secret(c, res, out);

		if (rc)
			return rc;
	}
	for (i = 0; i < res->n; i++)
		if (c->cmd_id.n && res->ev[i].cmd_id.n == 0)
			res->ev[i].cmd_id = c->cmd_id;
	return 0;
}

/* Step 5's payload: {"seq":last, ...res->reply}, and the secret. */
static int command_result(const struct cmd_result *res, uint64_t first, uint64_t last,
			  struct command_out *out)
{
	out->first_seq = res->n ? first : 0;
	out->n = res->n;
	out->result = json_object();
	if (!out->result ||
	    json_object_set_new(out->result, "seq", json_integer((json_int_t)last)) ||
	    (res->reply && json_object_update(out->result, res->reply)))
		return CL_ENOMEM;
	out->reply = res->reply ? json_incref(res->reply) : NULL;
	out->secret = res->secret ? json_incref(res->secret) : NULL;
	return 0;
}

int command_token_active(const struct proj *p, uint64_t actor, uint64_t token)
{
	uint64_t owner = 0;
	int revoked = 0;

	return token == 0 ||
	       (proj_token_get(p, token, &owner, &revoked) == 0 && !revoked && owner == actor);
}

/* Step 0: 1 if c's token no longer lets it run (out->fail set), else 0. */
static int command_token_refused(const struct proj *p, const struct command *c,
				 struct command_out *out)
{
	if (command_token_active(p, c->actor, c->token))
		return 0;
	out->fail.code = CMD_UNAUTHORIZED;
	snprintf(out->fail.message, sizeof out->fail.message, "%s", COMMAND_REVOKED_MSG);
	return 1;
}

/*
 * What a command id is used for: the SHA-256 of the command's params as
 * canonical JSON (compact, keys sorted; duplicate keys were refused when
 * the message was parsed). Stored with the idempotency record (step 5) and
 * compared with a retry's (step 1). 0 or CL_ENOMEM.
 */
static int command_params_hash(const struct command *c, uint8_t hash[EV_HASH_LEN])
{
	char *text = json_dumps(c->params, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);

	if (!text)
		return CL_ENOMEM;
	token_hash(text, strlen(text), hash);
	free(text);
	return 0;
}

/*
 * Step 1: a command id seen before. 1 if answered (out set: the stored
 * result, or a conflict when the id was used for another command or other
 * params), 0 if new. *hash is set to c's params hash when c has a cmd_id.
 */
static int command_lookup(struct evlog_txn *txn, const struct command *c,
			  uint8_t hash[EV_HASH_LEN], struct command_out *out)
{
	struct evlog_cmd rec;
	json_t *stored;
	int rc, same;

	if (!c->cmd_id.n)
		return 0;
	if ((rc = command_params_hash(c, hash)) != 0)
		return rc;
	rc = evlog_wcmd_get(txn, c->actor, c->cmd_id, &rec);
	if (rc == CL_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	/* a record without a use (older) matches any command, as before */
	same = rec.name && rec.name_len == strlen(c->name) &&
	       memcmp(rec.name, c->name, rec.name_len) == 0;
	if (rec.name && (!same || memcmp(rec.params_hash, hash, EV_HASH_LEN) != 0)) {
		out->fail.code = CMD_CONFLICT;
		snprintf(out->fail.message, sizeof out->fail.message,
			 "this cmd_id was already used for %s%.*s%s; nothing was applied (send a "
			 "new command with a new cmd_id)", same ? "another " : "",
			 (int)rec.name_len, rec.name, same ? " with other params" : "");
		return 1;
	}
	stored = json_loadb(rec.result, rec.result_len, 0, NULL);
	if (!json_is_object(stored)) {
		json_decref(stored);
		out->fail.code = CMD_INTERNAL;
		snprintf(out->fail.message, sizeof out->fail.message,
			 "stored result of this cmd_id is unreadable");
		return 1;
	}
	out->replayed = 1;
	out->first_seq = rec.first_seq;
	out->n = rec.count;
	out->result = stored;
	return 1;
}

int command_run_txn(struct evlog_txn *txn, struct proj *p, const struct command *c,
		    command_event_fn on_event, void *arg, struct command_out *out)
{
	struct command_token tok;
	struct cmd_result res;
	uint8_t hash[EV_HASH_LEN];
	uint64_t first;
	char *text = NULL;
	size_t i;
	int rc;

	memset(out, 0, sizeof *out);
	CL_ASSERT(proj_seq(p) == evlog_wlast(txn));
	if (command_token_refused(p, c, out))
		return 0;
	rc = command_lookup(txn, c, hash, out);
	if (rc)
		return rc == 1 ? 0 : rc;
	rc = command_prepare(p, c, &tok, &res, out);
	if (rc) {
		cmd_result_release(&res);
		OPENSSL_cleanse(&tok, sizeof tok);
		return rc == 1 ? 0 : rc;
	}
	first = evlog_wlast(txn) + 1;
	for (i = 0; i < res.n; i++) {
		struct event *ev = &res.ev[i];

		if ((rc = evlog_wappend(txn, ev)) != 0 || (rc = proj_apply(p, ev)) != 0)
			goto out;
		CL_ASSERT(ev->seq == first + i && proj_seq(p) == ev->seq);
		if (on_event && (rc = on_event(arg, ev)) != 0)
			goto out;
	}
	if ((rc = command_result(&res, first, evlog_wlast(txn), out)) != 0)
		goto out;
	if (c->cmd_id.n) {
		rc = CL_ENOMEM;
		text = json_dumps(out->result, JSON_COMPACT | JSON_SORT_KEYS);
		if (text)
			rc = evlog_wcmd_put(txn, c->actor, c->cmd_id, first, (uint32_t)res.n,
					    c->name, hash, text, strlen(text));
	}
out:
	free(text);
	cmd_result_release(&res);
	OPENSSL_cleanse(&tok, sizeof tok);
	if (rc) {
		struct cl_fail keep = out->fail;

		command_out_release(out);
		out->fail = keep;
	}
	return rc;
}

int command_run(struct evlog *log, struct proj *p, const struct command *c,
		struct command_out *out, struct command_fault *fault)
{
	struct command_token tok;
	struct cmd_result res;
	uint64_t first = 0;
	int rc = 0, tries;

	memset(out, 0, sizeof *out);
	memset(&res, 0, sizeof res);
	command_fault_set(fault, 0, 0, 0);
	if (c->cmd_id.n)
		return CL_EINVAL;
	for (tries = 0;; tries++) {
		cmd_result_release(&res);
		if (tries == COMMAND_MAX_TRIES) {
			rc = CL_ECONFLICT;
			goto out;
		}
		if ((rc = command_follow(log, p, NULL, NULL, NULL, fault)) != 0)
			goto out;
		if (command_token_refused(p, c, out))
			goto out;
		rc = command_prepare(p, c, &tok, &res, out);
		if (rc == 1) {          /* refused */
			rc = 0;
			goto out;
		}
		if (rc)
			goto out;
		if (res.n == 0)
			break;
		rc = evlog_append(log, proj_seq(p), res.ev, res.n, c->actor,
				  (struct cl_str){ NULL, 0 }, NULL, 0, &first);
		if (rc == 0)
			break;
		if (rc != CL_ECONFLICT) {
			command_fault_set(fault, COMMAND_AT_APPEND, proj_seq(p) + 1, 0);
			goto out;
		}
		/* someone appended: apply it and judge the command again */
	}
	for (size_t i = 0; i < res.n; i++) {
		if ((rc = proj_apply(p, &res.ev[i])) != 0) {
			command_fault_set(fault, COMMAND_AT_APPLY_NEW, res.ev[i].seq,
					  (int)res.ev[i].type);
			goto out;
		}
	}
	rc = command_result(&res, first, proj_seq(p), out);
out:
	cmd_result_release(&res);
	OPENSSL_cleanse(&tok, sizeof tok);
	return rc;
}

int command_follow(struct evlog *log, struct proj *p, command_event_fn on_event, void *arg,
		   size_t *applied, struct command_fault *fault)
{
	struct evlog_iter *it = NULL;
	struct event ev;
	size_t n = 0;
	int rc, r;

	command_fault_set(fault, 0, 0, 0);
	if (applied)
		*applied = 0;
	rc = evlog_iter_new(log, proj_seq(p) + 1, &it);
	if (rc) {
		command_fault_set(fault, COMMAND_AT_OPEN, proj_seq(p) + 1, 0);
		return rc;
	}
	while ((r = evlog_iter_next_event(it, &ev)) == 1) {
		CL_ASSERT(ev.seq == proj_seq(p) + 1);   /* the log is gapless */
		if ((rc = proj_apply(p, &ev)) != 0) {
			command_fault_set(fault, COMMAND_AT_APPLY, ev.seq, (int)ev.type);
			break;
		}
		n++;
		if (on_event && (rc = on_event(arg, &ev)) != 0) {
			command_fault_set(fault, COMMAND_AT_HOOK, ev.seq, (int)ev.type);
			break;
		}
	}
	if (rc == 0 && r < 0) {
		rc = r;
		command_fault_set(fault, COMMAND_AT_READ, proj_seq(p) + 1, 0);
	}
	evlog_iter_free(it);   /* before any append: the map may need to grow */
	if (applied)
		*applied = n;
	return rc;
}
