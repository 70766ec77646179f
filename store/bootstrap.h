/*
 * bootstrap.h - the first admin of a new log.
 *
 * A fresh data directory has no users, so nobody could authenticate to create
 * one. bootstrap_admin writes the first two events of the log in one
 * conditional txn (append-if-last-is-0): user.created for user 1 with the
 * admin role, and token.issued for token 1 of that user (label "bootstrap").
 * The token itself is returned once and never stored; only its SHA-256 is
 * in the log. Used by changelogd's first start and `changelog-admin init`.
 */
#ifndef CL_BOOTSTRAP_H
#define CL_BOOTSTRAP_H

#include "evlog.h"
#include "token.h"

#define BOOTSTRAP_USER_ID  1
#define BOOTSTRAP_TOKEN_ID 1
#define BOOTSTRAP_LABEL    "bootstrap"

/*
 * If the log is empty, append the admin named name (CL_MAX_NAME bytes of
 * [A-Za-z0-9._-]) and a new token for it, both stamped now (µs since the
 * epoch, the caller's clock: the server's, or a tool's CHANGELOG_FAKE_TIME);
 * token gets the token text (TOKEN_LEN characters and a NUL). Returns 0 on success, CL_EEXIST if the
 * log is not empty (also when another process bootstrapped it meanwhile),
 * CL_EINVAL for a bad name, or an evlog error. On failure token is "".
 */
int bootstrap_admin(struct evlog *log, const char *name, int64_t now,
		    char token[TOKEN_LEN + 1]);

#endif
