/*
 * command.h - running commands against the log, and following the log.
 *
 * A command (createEntry, issueToken, ...: core/cmd.h) goes through the
 * same steps whoever sends it - a websocket client through changelogd, an
 * operator through changelog-admin, later an HTTP API or an edge node:
 *
 *   0. the token: a command sent with a token (struct command.token) runs
 *      only while that token is active and the actor's, judged against the
 *      projection the command runs on - so a revocation earlier in the same
 *      txn, or appended by another process before it, stops it;
 *   1. idempotency: a command id already recorded for this actor gets the
 *      stored result again, and nothing is appended - if it was recorded
 *      for the same command name and params (SHA-256 of their canonical
 *      JSON); for another command it is refused as a conflict. A record
 *      without the name and hash (written before they were kept) matches
 *      any command;
 *   2. validation: cmd_exec judges it against the projection and makes
 *      its events or a refusal (struct cl_fail: code and message);
 *   3. append: the events are appended to the log, conditionally on the
 *      last seq the projection has seen (append-if-unchanged);
 *   4. apply: each event is applied to the projection (proj_apply);
 *   5. record: with a command id, the result is stored for retries.
 *
 * This file is the only place these steps are written. There are two ways
 * to run them:
 *
 *   command_run_txn  inside a write txn the caller holds, next to other
 *                    commands (changelogd's group commit). The projection
 *                    runs ahead of the committed log until the caller
 *                    commits; if the txn is aborted, the caller must rebuild
 *                    the projection from the log.
 *   command_run      on its own txn (tools). On CL_ECONFLICT it follows the
 *                    log and judges the command again, so a concurrent
 *                    writer is never overwritten. The projection is only
 *                    changed by what was committed.
 *
 * "Following" the log (command_follow) applies what other processes
 * appended after proj_seq, event by event, as a reader or a second writer
 * must before it runs the next command.
 *
 * Which errors mean what (the one rule; net/server.c and the tools follow
 * it): a refusal is not an error - the call returns 0 with out->fail.code
 * set. An error return is either a failure of the log (command_log_failure:
 * nothing of the txn survives; the same work may succeed later) or caused
 * by this command (anything else: refuse this command and run the others
 * again without it).
 *
 * Single-threaded, like struct evlog. Nothing here logs or prints.
 */
#ifndef CL_STORE_COMMAND_H
#define CL_STORE_COMMAND_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "../core/cl.h"
#include "../core/cmd.h"
#include "../core/event.h"
#include "../core/proj.h"
#include "evlog.h"

/* Conflicting appends command_run tolerates before giving up (CL_ECONFLICT). */
#define COMMAND_MAX_TRIES 100

/* One command to run. Everything is borrowed for the call. */
struct command {
	uint64_t actor;          /* the user it runs as (authenticated by the caller) */
	uint64_t token;          /* the token the actor authenticated with (step 0);
	                            0: none (an operator's tool acting as the actor) */
	const char *name;        /* "createEntry", ... (core/cmd.h) */
	json_t *params;          /* a JSON object; the events' strings point into it */
	struct cl_str cmd_id;    /* client command id (1..CL_MAX_CMD_ID bytes), n 0: none */
	int64_t now;             /* µs stamped on every event */
	/*
	 * The token createUser / issueToken hand out, and its SHA-256. NULL:
	 * command_* make a fresh one (OpenSSL) when the command needs one.
	 * Callers that must be deterministic (tests, the seed workload) pass
	 * their own.
	 */
	const char *new_token;
	const uint8_t *new_token_hash;
	/*
	 * createWebhook: the data directory's webhook key (store/hookkey.h),
	 * from which the reply's secret is derived. NULL: createWebhook is
	 * refused (internal).
	 */
	const uint8_t *hook_key;
};

/* What a command gave. Release with command_out_release. */
struct command_out {
	struct cl_fail fail;     /* fail.code != CMD_OK: refused, nothing else is set */
	int replayed;            /* 1: answered from the idempotency record (step 1) */
	uint64_t first_seq;      /* its first event (0 if it appended none) */
	size_t n;                /* events appended */
	/*
	 * {"seq":<last seq of the log after it>, ...cmd_result.reply}: what a
	 * retry with the same command id gets back (stored compactly with
	 * sorted keys). A new reference, NULL when refused.
	 */
	json_t *result;
	json_t *reply;           /* the command's own fields (cmd_result.reply), or NULL;
	                            NULL too when replayed */
	json_t *secret;          /* {"token":...} or {"secret":...} (createWebhook)
	                            shown once, never stored; or NULL */
};
void command_out_release(struct command_out *out);

/*
 * Called after each event has been appended and applied to p (p shows the
 * state right after ev). Returns 0, or a CL_E* code that stops the run and
 * is returned by it.
 */
typedef int (*command_event_fn)(void *arg, const struct event *ev);

/*
 * Run c inside txn (a write txn of the log p follows, begun at proj_seq(p)),
 * steps 1 to 5, calling on_event (may be NULL) after each event.
 * Returns 0 (done, replayed, or refused: see out->fail), or a CL_E* error
 * that breaks the txn (see command_log_failure). After an error, or when the
 * caller aborts the txn, p holds events that were never committed: rebuild
 * it from the log.
 */
int command_run_txn(struct evlog_txn *txn, struct proj *p, const struct command *c,
		    command_event_fn on_event, void *arg, struct command_out *out);

/*
 * Run c alone, retrying on conflicts: follow the log, validate, append in
 * one txn conditional on proj_seq(p) (the map is grown on CL_EMAPFULL),
 * then apply. c->cmd_id must be empty (CL_EINVAL otherwise; callers with
 * command ids batch them with command_run_txn). Returns 0 (see out->fail),
 * CL_ECONFLICT after COMMAND_MAX_TRIES lost races, or the error of the
 * failed step (*fault, may be NULL, says which: those of command_follow,
 * COMMAND_AT_APPEND, or COMMAND_AT_APPLY_NEW when an event it appended
 * does not apply; step 0 for the others).
 */
enum command_step {
	COMMAND_AT_OPEN = 1,     /* reading the log could not start */
	COMMAND_AT_READ,         /* an event could not be read (seq: which) */
	COMMAND_AT_APPLY,        /* the projection refuses an event (seq, type) */
	COMMAND_AT_HOOK,         /* on_event failed (seq, type) */
	COMMAND_AT_APPEND,       /* the append failed */
	COMMAND_AT_APPLY_NEW,    /* appended, but the projection refuses it (seq, type) */
};
struct command_fault {
	int step;                /* enum command_step, 0 if none */
	uint64_t seq;
	int type;                /* enum ev_type, or 0 */
};
int command_run(struct evlog *log, struct proj *p, const struct command *c,
		struct command_out *out, struct command_fault *fault);

/*
 * Follow the log: apply every event after proj_seq(p) to p, calling
 * on_event (may be NULL) after each. No write txn of log may be open (the
 * events must be committed ones). *applied (may be NULL) counts the events
 * applied, also when it fails midway. Returns 0 or the CL_E* code of the
 * step *fault (may be NULL) names. The iterator is freed before returning,
 * so the caller may append next (the map may need to grow).
 */
int command_follow(struct evlog *log, struct proj *p, command_event_fn on_event, void *arg,
		   size_t *applied, struct command_fault *fault);

/*
 * 1 if token (0: none, always 1) is an active token of actor in p: the
 * check of step 0, for callers that answer other requests of a connection
 * (queries) by the same rule. Refusals say COMMAND_REVOKED_MSG, code
 * unauthorized.
 */
int command_token_active(const struct proj *p, uint64_t actor, uint64_t token);
#define COMMAND_REVOKED_MSG "the token of this connection was revoked; nothing was done"

/*
 * 1 if rc, returned by command_run_txn or by committing its txn, is a
 * failure of the log (CL_EIO, CL_ENOSPC, CL_EMAPFULL, CL_ECONFLICT,
 * CL_ECORRUPT, CL_ELOCKED): the txn is lost but no command is at fault.
 * 0 for every other code: the command being run caused it (a bug, or an
 * input the validation let through), so refuse that command.
 */
int command_log_failure(int rc);

#endif
