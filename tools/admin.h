/*
 * admin.h - changelog-admin's work, as a library: create a data directory
 * with its first admin, run admin commands against a log (also while
 * changelogd runs), hot backup and restore.
 *
 * Commands go through the same command path as the server
 * (store/command.h): the tool rebuilds the projection from the log, runs
 * command_run, which appends the events conditionally on the last seq it
 * has seen (append-if-unchanged). If another process appended meanwhile
 * (CL_ECONFLICT), it applies the new events and runs the command again, so
 * a concurrent server is never overwritten and the command is judged
 * against the current state.
 *
 * Actor: core's cmd_exec only runs commands for a known user, so the
 * events are recorded as done by the first admin (lowest user id) unless
 * --as names another admin (admin_act_as). The bootstrap events of init are
 * the only ones by the system (actor 0).
 */
#ifndef CL_TOOLS_ADMIN_H
#define CL_TOOLS_ADMIN_H

#include <stdint.h>
#include <jansson.h>

#include "../core/cmd.h"
#include "../core/proj.h"
#include "../store/evlog.h"
#include "../store/token.h"
#include "audit.h"

#define ADMIN_ERR_LEN 1024
#define ADMIN_DEFAULT_NAME "admin"

/*
 * The clock for the events a tool writes: CHANGELOG_FAKE_TIME (an ISO-8601
 * time, or µs since the epoch) when set, else the wall clock. A test hook
 * that makes logs deterministic; the server never reads it.
 * 0, or CL_EUSAGE if the variable is set but malformed.
 */
int admin_now(int64_t *now);

/* An open log with its projection, for running commands. */
struct admin {
	struct evlog *log;
	struct proj *proj;
	uint64_t actor;        /* user id the commands run as (an admin) */
	int64_t now;           /* stamped on the events; 0 = admin_now at each command */
	const char *dir;       /* the data directory (borrowed from admin_open's caller) */
};

/* Open dir (not created; flags: 0, or EVLOG_RDONLY for listings) and
 * replay it; actor = the first admin. err gets a sentence on failure. */
int admin_open(struct admin *a, const char *dir, unsigned flags, char err[ADMIN_ERR_LEN]);
void admin_close(struct admin *a);

/* The admin with the lowest id, 0 if none. */
uint64_t admin_first_admin(const struct proj *p);

/* Apply the events appended since the last call (by anyone):
 * command_follow, with err in the tool's words. */
int admin_sync(struct admin *a, char err[ADMIN_ERR_LEN]);

/* Act as the user called name (who must be an admin if need_admin).
 * CL_ENOTFOUND or CL_ESTATE (not an admin), err filled. */
int admin_act_as(struct admin *a, const char *name, int need_admin, char err[ADMIN_ERR_LEN]);

/* What a successful command gave back. */
struct admin_out {
	uint64_t first_seq;    /* seq of its first event (0 if it appended none) */
	size_t n;              /* events appended */
	json_t *reply;         /* new reference or NULL: fields of the ok reply */
	json_t *secret;        /* new reference or NULL: {"token": ...} */
};
void admin_out_release(struct admin_out *o);

/*
 * Run command op with params (a JSON object, borrowed) like the server
 * would, retrying on conflicts. A fresh token is generated for the
 * commands that issue one. Returns 0, CL_ESTATE when the command was
 * refused (fail filled: code and message), or another CL_E* (err filled).
 */
int admin_exec(struct admin *a, const char *op, json_t *params, struct admin_out *out,
	       struct cl_fail *fail, char err[ADMIN_ERR_LEN]);

/*
 * `init`: create the log in dir (new epoch) and its first admin. Refuses
 * a log that already has events (CL_EEXIST). token gets the admin's token.
 */
int admin_init(const char *dir, const char *name, char token[TOKEN_LEN + 1],
	       char err[ADMIN_ERR_LEN]);

/*
 * How `token revoke ARG` reads ARG: a whole token (clg_...), a token id
 * (digits) or a user name. ADMIN_REVOKE_GUESS picks by the form of ARG.
 */
enum admin_revoke_by { ADMIN_REVOKE_GUESS = 0, ADMIN_REVOKE_TOKEN, ADMIN_REVOKE_ID,
		       ADMIN_REVOKE_USER };

/*
 * The token ids ARG designates: one for a token or an id (refused if
 * already revoked), every active token for a user (possibly none).
 * *ids is malloc'd (free it). CL_ENOTFOUND / CL_ESTATE / CL_EUSAGE with err.
 */
int admin_revoke_targets(const struct admin *a, const char *arg, int by, uint64_t **ids,
			 size_t *n, char err[ADMIN_ERR_LEN]);

/*
 * `backup`: a compacted hot copy of the log in dir into dest (missing or
 * empty), then verified by opening the copy read-only (audit_verify).
 * On a failed check the copy is left for inspection and CL_ECORRUPT returned.
 */
int admin_backup(const char *dir, const char *dest, int progress_tty,
		 struct audit_summary *sum, char err[ADMIN_ERR_LEN]);

/*
 * `restore`: verify the backup src, copy it into dir (missing or empty) and
 * give the copy a new epoch, so clients that resume re-query instead of
 * mixing histories. epoch gets the new epoch.
 */
int admin_restore(const char *src, const char *dir, int progress_tty,
		  struct audit_summary *sum, char epoch[EVLOG_EPOCH_STRLEN + 1],
		  char err[ADMIN_ERR_LEN]);

/*
 * Test hook (`changelog-admin dev-seed`): append about n events of a
 * plausible deterministic workload (users, entries, edits, status changes,
 * threaded comments) through command_run_txn, batch events per txn. The log must
 * exist and have an admin; nobody else may append meanwhile.
 */
int admin_seed(struct admin *a, uint64_t n, uint32_t seed, size_t batch,
	       uint64_t *appended, char err[ADMIN_ERR_LEN]);

#endif
