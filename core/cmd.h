/*
 * cmd.h - commands: a request from a user, validated against the projection,
 * becomes events or a refusal with a stable code and a human message.
 *
 * cmd_exec neither appends nor applies: the caller appends the events to the
 * log, then applies them with proj_apply before running the next command of
 * the same batch (so ids and versions stay right inside a group commit).
 * Strings in the produced events point into params, which must outlive them.
 */
#ifndef CL_CMD_H
#define CL_CMD_H

#include <stdint.h>
#include <jansson.h>
#include "cl.h"
#include "event.h"
#include "proj.h"

enum cmd_code {
	CMD_OK = 0,
	CMD_BAD_REQUEST,        /* "bad_request" */
	CMD_UNAUTHORIZED,       /* "unauthorized" */
	CMD_FORBIDDEN,          /* "forbidden" */
	CMD_NOT_FOUND,          /* "not_found" */
	CMD_INVALID_TRANSITION, /* "invalid_transition" */
	CMD_CONFLICT,           /* "conflict" */
	CMD_TOO_LARGE,          /* "too_large" */
	CMD_RATE_LIMITED,       /* "rate_limited" (net) */
	CMD_UNAVAILABLE,        /* "unavailable" (disk full, log error; retry) */
	CMD_INTERNAL,           /* "internal" */
	CMD__COUNT
};
const char *cmd_code_name(int code);

#define CMD_MAX_EVENTS 4

struct cmd_ctx {
	uint64_t actor;                  /* authenticated user id */
	int64_t now;                     /* µs; stamped on every event */
	/* issueToken / createUser: a freshly generated token and its hash,
	 * made by the caller (core has no randomness). May be NULL otherwise. */
	const char *new_token;
	const uint8_t *new_token_hash;
};

struct cmd_result {
	struct event ev[CMD_MAX_EVENTS];
	size_t n;
	json_t *reply;        /* fields merged into the ok reply, e.g. {"entry":12};
	                         owned by the result; may be NULL */
	json_t *secret;       /* fields shown once and never stored for retries,
	                         e.g. {"token":"clg_..."}; may be NULL */
	struct cl_fail fail;  /* set when cmd_exec returns < 0 */
};

/*
 * Commands (docs/protocol.md): createEntry, editEntry, setStatus, addComment;
 * admin: createUser, setRole, issueToken, revokeToken.
 * Returns 0 with res->ev[0..n) filled (ts = ctx->now, actor = ctx->actor,
 * ids assigned), or < 0 with res->fail set. Unknown op: CMD_BAD_REQUEST.
 * Always call cmd_result_release afterwards.
 */
int cmd_exec(const struct proj *p, const char *op, json_t *params,
	     const struct cmd_ctx *ctx, struct cmd_result *res);
void cmd_result_release(struct cmd_result *res);

/* 1 if op names a command (as opposed to a query or unknown). */
int cmd_is_command(const char *op);

#endif
