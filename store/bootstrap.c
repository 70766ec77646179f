/*
 * bootstrap.c - the first admin of an empty log; see bootstrap.h.
 *
 * Both events go in one txn conditional on last == 0, so two processes that
 * race to bootstrap the same directory produce exactly one admin: the loser
 * gets CL_ECONFLICT from the log, reported as CL_EEXIST.
 */
#include "bootstrap.h"

#include <openssl/crypto.h>
#include <string.h>

int bootstrap_admin(struct evlog *log, const char *name, int64_t now,
		    char token[TOKEN_LEN + 1])
{
	struct event ev[2];
	uint8_t hash[EV_HASH_LEN];
	uint64_t last = 0;
	int rc;

	token[0] = '\0';
	if (!name || !cl_name_ok(name, strlen(name)))
		return CL_EINVAL;   /* the rule for new names, core/cl.h */
	rc = evlog_last(log, &last, NULL);
	if (rc)
		return rc;
	if (last != 0)
		return CL_EEXIST;
	memset(ev, 0, sizeof ev);

	ev[0].type = EV_USER_CREATED;
	ev[0].version = (uint32_t)ev_current_version(EV_USER_CREATED);
	ev[0].ts = now;
	ev[0].actor = 0;                         /* the system */
	ev[0].ids.user = BOOTSTRAP_USER_ID;
	ev[0].name.p = name;
	ev[0].name.n = strlen(name);
	ev[0].role = ROLE_ADMIN;

	rc = token_generate(token, hash);
	if (rc)
		return rc;
	ev[1].type = EV_TOKEN_ISSUED;
	ev[1].version = (uint32_t)ev_current_version(EV_TOKEN_ISSUED);
	ev[1].ts = now;
	ev[1].actor = 0;
	ev[1].ids.user = BOOTSTRAP_USER_ID;
	ev[1].ids.token = BOOTSTRAP_TOKEN_ID;
	ev[1].label = CL_STR(BOOTSTRAP_LABEL);
	memcpy(ev[1].token_hash, hash, EV_HASH_LEN);

	rc = evlog_append(log, 0, ev, 2, 0, (struct cl_str){ NULL, 0 }, NULL, 0, NULL);
	if (rc == CL_ECONFLICT)
		rc = CL_EEXIST;
	if (rc) {
		OPENSSL_cleanse(token, TOKEN_LEN + 1);
		token[0] = '\0';
	}
	return rc;
}
