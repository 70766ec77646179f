/*
 * admin.c - changelog-admin's work (see admin.h): init, commands against a
 * live log, revoke targets, backup, restore and the dev-seed workload.
 *
 * Why it is shaped so:
 *  - No second implementation of any rule: commands run through
 *    store/command.c (command_run: core's cmd_exec on a projection rebuilt
 *    from the log, then a conditional append), the same path changelogd
 *    runs. A refusal is core's code and message.
 *  - Appends are conditional on the last seq this process applied. On
 *    CL_ECONFLICT the new events are applied and the command re-validated,
 *    so a concurrent server (or a second admin) is never overwritten and
 *    "duplicate name" is decided against the log as it is at commit time.
 *  - The token of createUser / issueToken is made here (core has no
 *    randomness), shown once on stdout by the caller and wiped from memory.
 *  - Backup and restore are LMDB copies (evlog_backup: consistent and
 *    compacted while writers continue), each followed by the full audit
 *    verify of the result, because a backup nobody checked is a hope.
 */
#include "admin.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "../store/bootstrap.h"
#include "../store/command.h"
#include "../store/hookkey.h"
#include "cli/err.h"


static const char FAKE_TIME_BAD[] =
	"CHANGELOG_FAKE_TIME is not an ISO-8601 time or a number of µs";

/* The sentence for the caller's err (tools/cli/err.h). */
#define err_set(err, ...) ((void)cli_err((err), ADMIN_ERR_LEN, 0, __VA_ARGS__))


int admin_now(int64_t *now)
{
	const char *s = getenv("CHANGELOG_FAKE_TIME");
	char *end = NULL;
	long long v;

	if (!s || !*s) {
		*now = cl_now_us();
		return 0;
	}
	if (s[0] >= '0' && s[0] <= '9' && !strchr(s, '-')) {
		errno = 0;
		v = strtoll(s, &end, 10);
		if (errno || *end || v < 0)
			return CL_EUSAGE;
		*now = v;
		return 0;
	}
	return cl_parse_iso(s, now) == 0 ? 0 : CL_EUSAGE;
}

/* 1 if dir exists and holds anything, 0 if missing or empty, < 0 on error. */
static int dir_nonempty(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int found = 0;

	if (!d)
		return errno == ENOENT ? 0 : CL_EIO;
	while ((e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
			found = 1;
			break;
		}
	}
	closedir(d);
	return found;
}

/* ---- open, sync, exec --------------------------------------------------- */

int admin_open(struct admin *a, const char *dir, unsigned flags, char err[ADMIN_ERR_LEN])
{
	int rc;

	memset(a, 0, sizeof *a);
	a->dir = dir;
	rc = evlog_open(&a->log, dir, flags & EVLOG_RDONLY, 0);
	if (rc) {
		audit_open_error(dir, rc, err, ADMIN_ERR_LEN);
		return rc;
	}
	if (!(a->proj = proj_new())) {
		err_set(err, "out of memory");
		admin_close(a);
		return CL_ENOMEM;
	}
	rc = admin_sync(a, err);
	if (rc == 0)
		a->actor = admin_first_admin(a->proj);
	if (rc)
		admin_close(a);
	return rc;
}

uint64_t admin_first_admin(const struct proj *p)
{
	uint64_t n = proj_user_count(p);
	struct proj_user_info u;

	for (uint64_t id = 1; id <= n; id++)
		if (proj_user_get(p, id, &u) == 0 && u.role == ROLE_ADMIN)
			return id;
	return 0;
}

void admin_close(struct admin *a)
{
	proj_free(a->proj);
	evlog_close(a->log);
	memset(a, 0, sizeof *a);
}

/* err for a failed command_follow or command_run step. */
static void admin_fault(const struct command_fault *f, int rc, char err[ADMIN_ERR_LEN])
{
	switch (f->step) {
	case COMMAND_AT_APPLY:
		err_set(err, "seq %" PRIu64 ": the projection refuses this %s (%s); run "
			"changelog-audit verify", f->seq, ev_type_name(f->type), cl_strerror(rc));
		break;
	case COMMAND_AT_READ:
		err_set(err, "seq %" PRIu64 ": cannot read the log (%s); run changelog-audit "
			"verify", f->seq, cl_strerror(rc));
		break;
	default:
		err_set(err, "cannot read the log (%s)", cl_strerror(rc));
		break;
	}
}

int admin_sync(struct admin *a, char err[ADMIN_ERR_LEN])
{
	struct command_fault fault;
	int rc = command_follow(a->log, a->proj, NULL, NULL, NULL, &fault);

	if (rc)
		admin_fault(&fault, rc, err);
	return rc;
}

int admin_act_as(struct admin *a, const char *name, int need_admin, char err[ADMIN_ERR_LEN])
{
	struct proj_user_info u;

	if (proj_user_by_name(a->proj, name, strlen(name), &u) != 0) {
		err_set(err, "no user named '%s'", name);
		return CL_ENOTFOUND;
	}
	if (need_admin && u.role != ROLE_ADMIN) {
		err_set(err, "'%s' is not an admin and cannot run admin commands", name);
		return CL_ESTATE;
	}
	a->actor = u.id;
	return 0;
}

void admin_out_release(struct admin_out *o)
{
	json_decref(o->reply);
	json_decref(o->secret);
	memset(o, 0, sizeof *o);
}

int admin_exec(struct admin *a, const char *op, json_t *params, struct admin_out *out,
	       struct cl_fail *fail, char err[ADMIN_ERR_LEN])
{
	char token[TOKEN_LEN + 1];
	uint8_t hash[EV_HASH_LEN], key[HOOKKEY_LEN];
	struct command c = { .actor = a->actor, .name = op, .params = params,
			     .new_token = token, .new_token_hash = hash };
	struct command_out co;
	struct command_fault fault;
	int rc;

	memset(out, 0, sizeof *out);
	memset(fail, 0, sizeof *fail);
	if ((rc = token_generate(token, hash)) != 0) {
		err_set(err, "cannot make a token (%s)", cl_strerror(rc));
		return rc;
	}
	if (strcmp(op, "createWebhook") == 0) {
		if ((rc = hookkey_load(a->dir, 1, key)) != 0) {
			err_set(err, "cannot read or make %s/webhook.key (%s)", a->dir,
				cl_strerror(rc));
			goto out;
		}
		c.hook_key = key;
	}
	if (a->now)
		c.now = a->now;
	else if (admin_now(&c.now) != 0) {
		err_set(err, "%s", FAKE_TIME_BAD);
		rc = CL_EUSAGE;
		goto out;
	}
	if ((rc = admin_sync(a, err)) != 0)
		goto out;
	if (a->actor == 0) {
		err_set(err, "this log has no admin to act as");
		fail->code = CMD_UNAUTHORIZED;
		snprintf(fail->message, sizeof fail->message, "%s", err);
		rc = CL_ESTATE;
		goto out;
	}
	rc = command_run(a->log, a->proj, &c, &co, &fault);
	if (rc == CL_ECONFLICT && fault.step == 0) {
		err_set(err, "gave up after %d conflicting appends by other writers",
			COMMAND_MAX_TRIES);
	} else if (rc && fault.step == COMMAND_AT_APPEND) {
		err_set(err, "cannot append to the log (%s)", cl_strerror(rc));
	} else if (rc && fault.step == COMMAND_AT_APPLY_NEW) {
		err_set(err, "seq %" PRIu64 ": appended, but the projection refuses it (%s)",
			fault.seq, cl_strerror(rc));
	} else if (rc && fault.step) {
		admin_fault(&fault, rc, err);
	} else if (rc) {
		err_set(err, "cannot run %s (%s)", op, cl_strerror(rc));
	} else if (co.fail.code != CMD_OK) {
		*fail = co.fail;
		rc = CL_ESTATE;
	} else {
		out->first_seq = co.first_seq;
		out->n = co.n;
		out->reply = co.reply ? json_incref(co.reply) : NULL;
		out->secret = co.secret ? json_incref(co.secret) : NULL;
	}
	command_out_release(&co);
out:
	OPENSSL_cleanse(token, sizeof token);
	OPENSSL_cleanse(key, sizeof key);
	return rc;
}

/* ---- init -------------------------------------------------------------- */

int admin_init(const char *dir, const char *name, char token[TOKEN_LEN + 1],
	       char err[ADMIN_ERR_LEN])
{
	struct evlog *log = NULL;
	uint64_t last = 0;
	int64_t now;
	int rc;

	token[0] = '\0';
	if (admin_now(&now) != 0) {
		err_set(err, "%s", FAKE_TIME_BAD);
		return CL_EUSAGE;
	}
	if (!cl_name_ok(name, strlen(name))) {
		err_set(err, "'%.80s' is not a valid user name (1 to %d of A-Z a-z 0-9 . _ -, "
			"not starting with '-', not only dots)", name, CL_MAX_NAME);
		return CL_EINVAL;
	}
	rc = evlog_open(&log, dir, 0, 0);
	if (rc == 0) {
		rc = evlog_last(log, &last, NULL);
		if (rc == 0 && last > 0) {
			err_set(err, "%s already holds a log (%" PRIu64 " events, epoch %s); init "
				"never touches an existing log", dir, last, evlog_epoch(log));
			rc = CL_EEXIST;
		}
	} else if (rc == CL_ENOTFOUND) {
		/* refuses a directory that holds anything of a log (datadir.h) */
		rc = evlog_open(&log, dir, EVLOG_CREATE, 0);
		if (rc == CL_ECORRUPT)
			audit_open_error(dir, rc, err, ADMIN_ERR_LEN);
		else if (rc)
			err_set(err, "cannot create a log in %s (%s)", dir, cl_strerror(rc));
	} else {
		audit_open_error(dir, rc, err, ADMIN_ERR_LEN);
	}
	if (rc == 0) {
		rc = bootstrap_admin(log, name, now, token);
		if (rc == CL_EEXIST)
			err_set(err, "%s already holds a log (another process initialised it "
				"meanwhile)", dir);
		else if (rc)
			err_set(err, "cannot write the first admin (%s)", cl_strerror(rc));
	}
	evlog_close(log);
	return rc;
}

/* ---- token revoke targets ---------------------------------------------- */

static int all_digits(const char *s)
{
	if (!*s)
		return 0;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return 0;
	return 1;
}

int admin_revoke_targets(const struct admin *a, const char *arg, int by, uint64_t **ids,
			 size_t *n, char err[ADMIN_ERR_LEN])
{
	uint64_t user = 0, tid = 0, count;
	struct proj_user_info u;
	uint8_t hash[EV_HASH_LEN];
	int revoked = 0;
	size_t len = strlen(arg);

	*ids = NULL;
	*n = 0;
	if (by == ADMIN_REVOKE_GUESS)
		by = strncmp(arg, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) == 0 ? ADMIN_REVOKE_TOKEN :
		     all_digits(arg) ? ADMIN_REVOKE_ID : ADMIN_REVOKE_USER;
	switch (by) {
	case ADMIN_REVOKE_TOKEN:
		if (len != TOKEN_LEN || strncmp(arg, TOKEN_PREFIX, strlen(TOKEN_PREFIX)) != 0) {
			err_set(err, "'%.12s...' is not a whole token: only SHA-256 hashes of tokens "
				"are stored, so a token must be given in full (%d characters); or "
				"give its id (changelog-admin user list) or the user's name",
				arg, TOKEN_LEN);
			return CL_EUSAGE;
		}
		token_hash(arg, len, hash);
		if (proj_token_check(a->proj, hash, &user, &tid) != 0) {
			err_set(err, "no active token matches (unknown, or already revoked)");
			return CL_ENOTFOUND;
		}
		break;
	case ADMIN_REVOKE_ID:
		errno = 0;
		tid = all_digits(arg) ? strtoull(arg, NULL, 10) : 0;
		if (tid == 0 || errno) {
			err_set(err, "'%.40s' is not a token id", arg);
			return CL_EUSAGE;
		}
		if (proj_token_get(a->proj, tid, &user, &revoked) != 0) {
			err_set(err, "no token with id %" PRIu64, tid);
			return CL_ENOTFOUND;
		}
		if (revoked) {
			err_set(err, "token %" PRIu64 " is already revoked", tid);
			return CL_ESTATE;
		}
		break;
	default:
		if (proj_user_by_name(a->proj, arg, len, &u) != 0) {
			err_set(err, "no user named '%.80s'", arg);
			return CL_ENOTFOUND;
		}
		count = proj_token_count(a->proj);
		for (uint64_t id = 1; id <= count; id++) {
			uint64_t owner;

			if (proj_token_get(a->proj, id, &owner, &revoked) == 0 && owner == u.id &&
			    !revoked) {
				uint64_t *nv = realloc(*ids, (*n + 1) * sizeof *nv);

				if (!nv) {
					free(*ids);
					*ids = NULL;
					*n = 0;
					err_set(err, "out of memory");
					return CL_ENOMEM;
				}
				*ids = nv;
				(*ids)[(*n)++] = id;
			}
		}
		return 0;
	}
	if (!(*ids = malloc(sizeof **ids))) {
		err_set(err, "out of memory");
		return CL_ENOMEM;
	}
	(*ids)[0] = tid;
	*n = 1;
	return 0;
}

/* ---- backup and restore ------------------------------------------------ */

/* Open dir read-only and verify it; err says what is wrong. */
static int verify_dir(const char *dir, const char *what, int progress_tty,
		      struct audit_summary *sum, char epoch[EVLOG_EPOCH_STRLEN + 1],
		      char err[ADMIN_ERR_LEN])
{
	struct evlog *log = NULL;
	struct audit_fault fault;
	char line[sizeof fault.what + 32];
	int rc = evlog_open(&log, dir, EVLOG_RDONLY, 0);

	if (rc) {
		audit_open_error(dir, rc, err, ADMIN_ERR_LEN);
		return rc;
	}
	if (epoch)
		snprintf(epoch, EVLOG_EPOCH_STRLEN + 1, "%s", evlog_epoch(log));
	rc = audit_verify(log, progress_tty, sum, &fault);
	if (rc) {
		audit_fault_line(&fault, line, sizeof line);
		err_set(err, "%s %s does not verify: %s", what, dir, line);
	}
	evlog_close(log);
	return rc;
}

int admin_backup(const char *dir, const char *dest, int progress_tty,
		 struct audit_summary *sum, char err[ADMIN_ERR_LEN])
{
	struct evlog *log = NULL;
	int rc = dir_nonempty(dest);

	if (rc != 0) {
		err_set(err, rc > 0 ? "%s exists and is not empty; a backup goes into a new or "
			"empty directory" : "cannot read %s", dest);
		return rc > 0 ? CL_EEXIST : rc;
	}
	rc = evlog_open(&log, dir, EVLOG_RDONLY, 0);
	if (rc) {
		audit_open_error(dir, rc, err, ADMIN_ERR_LEN);
		return rc;
	}
	rc = evlog_backup(log, dest);
	evlog_close(log);
	if (rc) {
		err_set(err, "cannot copy %s to %s (%s)", dir, dest, cl_strerror(rc));
		return rc;
	}
	return verify_dir(dest, "the backup in", progress_tty, sum, NULL, err);
}

int admin_restore(const char *src, const char *dir, int progress_tty,
		  struct audit_summary *sum, char epoch[EVLOG_EPOCH_STRLEN + 1],
		  char err[ADMIN_ERR_LEN])
{
	struct evlog *log = NULL;
	int rc = dir_nonempty(dir);

	epoch[0] = '\0';
	if (rc != 0) {
		err_set(err, rc > 0 ? "%s exists and is not empty; restore only writes into a "
			"new or empty directory" : "cannot read %s", dir);
		return rc > 0 ? CL_EEXIST : rc;
	}
	/* Never restore what does not verify. */
	rc = verify_dir(src, "the backup in", progress_tty, sum, NULL, err);
	if (rc)
		return rc;
	rc = evlog_open(&log, src, EVLOG_RDONLY, 0);
	if (rc) {
		audit_open_error(src, rc, err, ADMIN_ERR_LEN);
		return rc;
	}
	rc = evlog_backup(log, dir);
	evlog_close(log);
	if (rc) {
		err_set(err, "cannot copy %s to %s (%s)", src, dir, cl_strerror(rc));
		return rc;
	}
	rc = evlog_new_epoch(dir);
	if (rc) {
		err_set(err, "copied, but cannot give %s a new epoch (%s)", dir, cl_strerror(rc));
		return rc;
	}
	return verify_dir(dir, "the restored log in", 0, sum, epoch, err);
}

/* ---- dev-seed: a deterministic workload ------------------------------- */

/* xorshift64*: deterministic across platforms, good enough for a workload. */
static uint64_t rnd_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ULL;
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd_next(s) % n : 0;
}

static const char *const seed_words[] = {
	"flux", "capacitor", "login", "cache", "timeout", "parser", "export", "dashboard",
	"mailer", "queue", "index", "backup", "search", "upload", "session", "report",
	"café", "naïve", "Zürich", "日本",
};
#define SEED_NWORDS (sizeof seed_words / sizeof seed_words[0])

static void seed_text(uint64_t *s, char *out, size_t n, const char *lead, unsigned words)
{
	size_t o = (size_t)snprintf(out, n, "%s", lead);

	for (unsigned i = 0; i < words && o < n; i++)
		o += (size_t)snprintf(out + o, n - o, " %s",
				      seed_words[rnd_below(s, SEED_NWORDS)]);
}

/* Pick one command: op name and params (a new object), actor. */
static const char *seed_pick(const struct proj *p, uint64_t *s, json_t **params,
			     uint64_t *actor)
{
	uint64_t users = proj_user_count(p), entries = proj_entry_count(p);
	uint64_t comments = proj_comment_count(p), r = rnd_below(s, 100);
	struct proj_entry_info e;
	struct proj_comment_info c;
	char text[200], name[40];
	static const char *const kinds[] = { "fix", "change", "feature" };

	*actor = users ? 1 + rnd_below(s, users) : 0;
	if (users < 5 || (r < 2 && users < 200)) {
		snprintf(name, sizeof name, "seed-%" PRIu64, users + 1);
		*actor = admin_first_admin(p);
		*params = json_pack("{s:s, s:s}", "name", name,
				    "role", rnd_below(s, 10) == 0 ? "admin" : "member");
		return "createUser";
	}
	if (entries < 3 || r < 25) {
		seed_text(s, text, sizeof text, "Seed:", 2 + (unsigned)rnd_below(s, 5));
		*params = json_pack("{s:s, s:s, s:s}", "title", text, "body",
				    "Generated by changelog-admin dev-seed.",
				    "kind", kinds[rnd_below(s, 3)]);
		return "createEntry";
	}
	if (proj_entry_get(p, 1 + rnd_below(s, entries), &e) != 0)
		return NULL;
	if (r < 35) {
		seed_text(s, text, sizeof text, "Edited:", 1 + (unsigned)rnd_below(s, 4));
		*actor = e.author;
		*params = json_pack("{s:I, s:s}", "entry", (json_int_t)e.id, "title", text);
		return "editEntry";
	}
	if (r < 55) {
		const char *to = (e.status == ST_OPEN || e.status == ST_REOPENED) ?
				 (rnd_below(s, 4) ? "resolved" : "cancelled") : "reopened";

		*actor = e.author;
		*params = json_pack("{s:I, s:s}", "entry", (json_int_t)e.id, "status", to);
		return "setStatus";
	}
	seed_text(s, text, sizeof text, "Comment:", 3 + (unsigned)rnd_below(s, 6));
	if (comments && rnd_below(s, 2) &&
	    proj_comment_get(p, 1 + rnd_below(s, comments), &c) == 0 &&
	    c.depth + 1 < CL_MAX_DEPTH)
		*params = json_pack("{s:I, s:I, s:s}", "entry", (json_int_t)c.entry,
				    "parent", (json_int_t)c.id, "body", text);
	else
		*params = json_pack("{s:I, s:s}", "entry", (json_int_t)e.id, "body", text);
	return "addComment";
}

/* Commit the seed's open txn; on a full map, rebuild the projection from
 * the log (it ran ahead) so the next batch starts from what is there. */
static int seed_commit(struct admin *a, struct evlog_txn *txn, char err[ADMIN_ERR_LEN])
{
	int rc = evlog_wcommit(txn);

	if (rc == CL_EMAPFULL) {
		struct proj *p = proj_new();

		if (!p) {
			err_set(err, "out of memory");
			return CL_ENOMEM;
		}
		proj_free(a->proj);
		a->proj = p;
		return admin_sync(a, err) ? CL_EIO : CL_EMAPFULL;
	}
	if (rc)
		err_set(err, "cannot append (%s)", cl_strerror(rc));
	return rc;
}

int admin_seed(struct admin *a, uint64_t n, uint32_t seed, size_t batch,
	       uint64_t *appended, char err[ADMIN_ERR_LEN])
{
	struct evlog_txn *txn = NULL;
	size_t nev = 0, ncmd = 0;
	uint64_t s = 0x9e3779b97f4a7c15ULL ^ seed, k = 0, refused = 0;
	int64_t base;
	char token[TOKEN_LEN + 1];
	uint8_t hash[EV_HASH_LEN];
	int rc = 0;

	*appended = 0;
	if (batch < CMD_MAX_EVENTS)
		batch = CMD_MAX_EVENTS;
	if (admin_now(&base) != 0) {
		err_set(err, "%s", FAKE_TIME_BAD);
		return CL_EUSAGE;
	}
	if ((rc = admin_sync(a, err)) != 0)
		return rc;
	while (rc == 0 && *appended + nev < n) {
		struct command c = { .new_token = token, .new_token_hash = hash };
		struct command_out out;
		json_t *params = NULL;

		if (!txn) {
			rc = evlog_wbegin(a->log, proj_seq(a->proj), NULL, &txn);
			if (rc) {
				err_set(err, "cannot append (%s)%s", cl_strerror(rc),
					rc == CL_ECONFLICT ? ": another process wrote to the log; "
					"dev-seed needs it to itself" : "");
				break;
			}
		}
		c.name = seed_pick(a->proj, &s, &params, &c.actor);
		if (!c.name)
			continue;
		if (!params) {
			err_set(err, "out of memory");
			rc = CL_ENOMEM;
			break;
		}
		if ((rc = token_generate(token, hash)) != 0) {
			err_set(err, "cannot make a token (%s)", cl_strerror(rc));
			json_decref(params);
			break;
		}
		c.params = params;
		c.now = base + (int64_t)k++ * 1000;   /* 1 ms apart */
		rc = command_run_txn(txn, a->proj, &c, NULL, NULL, &out);
		json_decref(params);    /* the events are in the txn already */
		if (rc) {
			err_set(err, "cannot append a generated %s (%s)", c.name, cl_strerror(rc));
		} else if (out.fail.code != CMD_OK) {
			/* e.g. a no-op edit: skip it, but not forever */
			if (++refused > 1000 + n) {
				err_set(err, "the workload keeps being refused (%s: %s)",
					cmd_code_name(out.fail.code), out.fail.message);
				rc = CL_ESTATE;
			}
		} else {
			nev += out.n;
			ncmd++;
		}
		command_out_release(&out);
		if (rc == 0 && nev > 0 &&
		    (nev + CMD_MAX_EVENTS > batch || ncmd == batch || *appended + nev >= n)) {
			rc = seed_commit(a, txn, err);
			txn = NULL;
			if (rc == 0)
				*appended += nev;
			else if (rc == CL_EMAPFULL)
				rc = 0;    /* the next wbegin grows the map; redo the batch */
			nev = ncmd = 0;
		}
	}
	if (txn)
		evlog_wabort(txn);
	OPENSSL_cleanse(token, sizeof token);
	return rc;
}
