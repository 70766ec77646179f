/*
 * admin_main.c - bin/changelog-admin: the command line over tools/admin.c.
 *
 * Conventions shared with changelog-audit: stdout carries only the result
 * (a token alone on its line, a listing, a summary) so scripts can capture
 * it; every message goes to stderr prefixed "changelog-admin: ". Exit 0 on
 * success, 1 on failure (refused, missing or corrupt log, I/O), 2 on bad
 * usage. Options may come before or after the command words.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <jansson.h>
#include <openssl/crypto.h>

#include "admin.h"
#include "../store/libver.h"
#include "cli/err.h"

#define PROG "changelog-admin"
#define MAX_POS 8

enum opt_id {
	O_DATA, O_AS, O_LABEL, O_FORMAT, O_ADMIN, O_EVENTS, O_SEED, O_BATCH,
	O_ID, O_USER, O_URL, O_HELP, O_VERSION, O__COUNT
};
#define OB(o) (1u << (o))

static const struct {
	const char *name;
	int takes_value;    /* -1: --admin, a value only for init */
} opt_table[O__COUNT] = {
	[O_DATA] = { "--data", 1 },     [O_AS] = { "--as", 1 },
	[O_LABEL] = { "--label", 1 },   [O_FORMAT] = { "--format", 1 },
	[O_ADMIN] = { "--admin", -1 },  [O_EVENTS] = { "--events", 1 },
	[O_SEED] = { "--seed", 1 },     [O_BATCH] = { "--batch", 1 },
	[O_ID] = { "--id", 0 },         [O_USER] = { "--user", 0 },
	[O_URL] = { "--url", 1 },
	[O_HELP] = { "--help", 0 },     [O_VERSION] = { "--version", 0 },
};

struct cli {
	const char *val[O__COUNT];
	unsigned seen;
	const char *pos[MAX_POS];
	int npos;
	const char *const *args;   /* positional arguments after the command words */
	int nargs;
};

struct command;
typedef int (*run_fn)(const struct command *cmd, struct cli *c);

struct command {
	const char *w1, *w2;       /* command words; w2 may be NULL */
	int min_args, max_args;
	unsigned opts;             /* options allowed besides --help */
	run_fn run;
	const char *synopsis, *help;
	int hidden;                /* test hooks: not in the general help */
};

/* Exit status for a CL_E* code. */
static int status_of(int rc)
{
	return rc == 0 ? 0 : rc == CL_EUSAGE ? 2 : 1;
}

static void refused(const struct cl_fail *fail)
{
	cli_msg(PROG, "refused (%s): %s", cmd_code_name(fail->code), fail->message);
}

static int open_admin(struct admin *a, struct cli *c, int need_admin, unsigned flags)
{
	char err[ADMIN_ERR_LEN];
	int rc = admin_open(a, c->val[O_DATA], flags, err);

	if (rc) {
		cli_msg(PROG, "%s", err);
		return rc;
	}
	if (c->val[O_AS] && (rc = admin_act_as(a, c->val[O_AS], need_admin, err)) != 0) {
		cli_msg(PROG, "--as: %s", err);
		admin_close(a);
	}
	return rc;
}

/* Run op with params (stolen) as c's admin; on success *out is filled. */
static int exec_cmd(struct admin *a, const char *op, json_t *params, struct admin_out *out)
{
	char err[ADMIN_ERR_LEN];
	struct cl_fail fail;
	int rc;

	if (!params) {
		cli_msg(PROG, "out of memory");
		return CL_ENOMEM;
	}
	rc = admin_exec(a, op, params, out, &fail, err);
	if (rc == CL_ESTATE && fail.code)
		refused(&fail);
	else if (rc)
		cli_msg(PROG, "%s", err);
	json_decref(params);
	return rc;
}

/*
 * --url BASE: the server's address as browsers reach it. 0 if usable
 * (http(s)://, no fragment, no spaces), else CL_EUSAGE with a message.
 */
static int check_url(const char *url)
{
	if (!url)
		return 0;
	if ((strncmp(url, "https://", 8) != 0 && strncmp(url, "http://", 7) != 0) ||
	    strpbrk(url, "# \t\r\n") || strlen(url) > 2000) {
		cli_msg(PROG, "--url wants the server's address, https://HOST[:PORT][/PATH] "
			"(got \"%s\")", url);
		return CL_EUSAGE;
	}
	return 0;
}

/*
 * Print the token of out->secret alone on stdout; with --url, the invite
 * link instead: BASE/#token=TOKEN (the web UI trades it for a session and
 * drops it from the address bar, docs/http-api.md).
 */
static void print_secret_token(const struct admin_out *out, const char *url)
{
	const char *tok = json_string_value(json_object_get(out->secret, "token"));
	size_t n = url ? strlen(url) : 0;

	if (!tok)
		return;
	while (n && url[n - 1] == '/')
		n--;
	if (url)
		printf("%.*s/#token=%s\n", (int)n, url, tok);
	else
		printf("%s\n", tok);
	fflush(stdout);
}

/* A string member or "" (also for a missing one). */
static const char *jstr(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));

	return s ? s : "";
}

static json_int_t reply_int(const struct admin_out *out, const char *key)
{
	return json_integer_value(json_object_get(out->reply, key));
}

/* ---- commands ------------------------------------------------------------ */

static int run_init(const struct command *cmd, struct cli *c)
{
	const char *name = c->val[O_ADMIN] ? c->val[O_ADMIN] : ADMIN_DEFAULT_NAME;
	char token[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	int rc = admin_init(c->val[O_DATA], name, token, err);

	if (rc) {
		cli_msg(PROG, "%s", err);
		return rc;
	}
	printf("%s\n", token);
	fflush(stdout);
	OPENSSL_cleanse(token, sizeof token);
	cli_msg(PROG, "created a log in %s with admin '%s' (user 1); the token on stdout is shown "
	    "only once", c->val[O_DATA], name);
	return 0;
}

static int run_user_add(const struct command *cmd, struct cli *c)
{
	const char *name = c->args[0], *role = (c->seen & OB(O_ADMIN)) ? "admin" : "member";
	struct admin a;
	struct admin_out out;
	int rc;

	if ((rc = check_url(c->val[O_URL])) != 0 || (rc = open_admin(&a, c, 1, 0)) != 0)
		return rc;
	rc = exec_cmd(&a, "createUser", json_pack("{s:s, s:s}", "name", name, "role", role),
		      &out);
	if (rc == 0) {
		print_secret_token(&out, c->val[O_URL]);
		cli_msg(PROG, "created user '%s' (id %" JSON_INTEGER_FORMAT ", %s) at seq %" PRIu64
		    "; the token on stdout is shown only once", name, reply_int(&out, "user"),
		    role, out.first_seq);
		admin_out_release(&out);
	}
	admin_close(&a);
	return rc;
}

static void print_users_text(json_t *users)
{
	size_t i, j, w = 4;
	json_t *u, *t;

	json_array_foreach(users, i, u) {
		size_t n = strlen(jstr(u, "name"));

		if (n > w)
			w = n;
	}
	printf("%-5s %-*s %-7s %-14s %s\n", "ID", (int)w, "NAME", "ROLE", "TOKENS", "CREATED");
	json_array_foreach(users, i, u) {
		json_t *tokens = json_object_get(u, "tokens");
		char tok[32], ids[200];
		size_t active = 0, o = 0;

		ids[0] = '\0';
		json_array_foreach(tokens, j, t) {
			if (json_is_true(json_object_get(t, "revoked")))
				continue;
			active++;
			if (o < sizeof ids)
				o += (size_t)snprintf(ids + o, sizeof ids - o, "%s%" JSON_INTEGER_FORMAT,
						      o ? "," : "",
						      json_integer_value(json_object_get(t, "id")));
		}
		snprintf(tok, sizeof tok, "%zu/%zu", active, json_array_size(tokens));
		printf("%-5" JSON_INTEGER_FORMAT " %-*s %-7s %-14s %s%s%s%s\n",
		       json_integer_value(json_object_get(u, "id")), (int)w,
		       jstr(u, "name"), jstr(u, "role"), tok, jstr(u, "created"),
		       active ? "  (active token ids: " : "", ids, active ? ")" : "");
	}
}

/* A stored query's list for `... list [--format text|json]`: key of its
 * answer as JSON, or through print_text. */
static int run_list(struct cli *c, const char *query, const char *key,
		    void (*print_text)(json_t *list))
{
	const char *format = c->val[O_FORMAT] ? c->val[O_FORMAT] : "text";
	struct proj_qctx q = { .viewer = 0 };
	json_t *result = NULL;
	struct cl_fail fail;
	struct admin a;
	int rc;

	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
		cli_msg(PROG, "--format must be text or json");
		return CL_EUSAGE;
	}
	if ((rc = open_admin(&a, c, 0, EVLOG_RDONLY)) != 0)
		return rc;
	if (proj_query(a.proj, query, NULL, &q, &result, &fail) != 0) {
		refused(&fail);
		rc = CL_ESTATE;
	} else if (strcmp(format, "json") == 0) {
		json_dumpf(json_object_get(result, key), stdout, JSON_INDENT(2));
		fputc('\n', stdout);
	} else {
		print_text(json_object_get(result, key));
	}
	json_decref(result);
	admin_close(&a);
	return rc;
}

static int run_user_list(const struct command *cmd, struct cli *c)
{
	(void)cmd;
	return run_list(c, "getUsers", "users", print_users_text);
}

static int run_user_role(const struct command *cmd, struct cli *c)
{
	const char *name = c->args[0], *role = c->args[1];
	struct admin a;
	struct admin_out out;
	int rc;

	if (strcmp(role, "admin") != 0 && strcmp(role, "member") != 0) {
		cli_msg(PROG, "the role must be admin or member, not '%s'", role);
		return CL_EUSAGE;
	}
	if ((rc = open_admin(&a, c, 1, 0)) != 0)
		return rc;
	rc = exec_cmd(&a, "setRole", json_pack("{s:s, s:s}", "user", name, "role", role), &out);
	if (rc == 0) {
		cli_msg(PROG, "'%s' is now %s (seq %" PRIu64 ")", name, role, out.first_seq);
		admin_out_release(&out);
	}
	admin_close(&a);
	return rc;
}

static int run_token_issue(const struct command *cmd, struct cli *c)
{
	const char *name = c->args[0], *label = c->val[O_LABEL] ? c->val[O_LABEL] : "";
	struct admin a;
	struct admin_out out;
	int rc;

	if ((rc = check_url(c->val[O_URL])) != 0 || (rc = open_admin(&a, c, 1, 0)) != 0)
		return rc;
	rc = exec_cmd(&a, "issueToken", json_pack("{s:s, s:s}", "user", name, "label", label),
		      &out);
	if (rc == 0) {
		print_secret_token(&out, c->val[O_URL]);
		cli_msg(PROG, "issued token %" JSON_INTEGER_FORMAT " to '%s' (seq %" PRIu64 "); the token "
		    "on stdout is shown only once", reply_int(&out, "token_id"), name,
		    out.first_seq);
		admin_out_release(&out);
	}
	admin_close(&a);
	return rc;
}

static int run_token_revoke(const struct command *cmd, struct cli *c)
{
	int by = (c->seen & OB(O_ID)) ? ADMIN_REVOKE_ID :
		 (c->seen & OB(O_USER)) ? ADMIN_REVOKE_USER : ADMIN_REVOKE_GUESS;
	char err[ADMIN_ERR_LEN];
	uint64_t *ids = NULL;
	size_t n = 0;
	struct admin a;
	int rc;

	if ((c->seen & OB(O_ID)) && (c->seen & OB(O_USER))) {
		cli_msg(PROG, "give either --id or --user, not both");
		return CL_EUSAGE;
	}
	if ((rc = open_admin(&a, c, 1, 0)) != 0)
		return rc;
	rc = admin_revoke_targets(&a, c->args[0], by, &ids, &n, err);
	if (rc)
		cli_msg(PROG, "%s", err);
	else if (n == 0)
		cli_msg(PROG, "'%s' has no active token; nothing to revoke", c->args[0]);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct admin_out out;
		struct proj_user_info u;
		uint64_t owner = 0;

		proj_token_get(a.proj, ids[i], &owner, NULL);
		rc = exec_cmd(&a, "revokeToken", json_pack("{s:I}", "token", (json_int_t)ids[i]),
			      &out);
		if (rc == 0) {
			cli_msg(PROG, "revoked token %" PRIu64 " of '%s' (seq %" PRIu64 ")", ids[i],
			    proj_user_get(a.proj, owner, &u) == 0 ? u.name : "?", out.first_seq);
			admin_out_release(&out);
		}
	}
	free(ids);
	admin_close(&a);
	return rc;
}

static int run_backup(const struct command *cmd, struct cli *c)
{
	char err[ADMIN_ERR_LEN], line[512];
	struct audit_summary sum;
	int rc = admin_backup(c->val[O_DATA], c->args[0], isatty(2), &sum, err);

	if (rc) {
		cli_msg(PROG, "%s", err);
		return rc;
	}
	audit_summary_line(&sum, NULL, line, sizeof line);
	printf("%s\n", line);
	cli_msg(PROG, "backup of %s written to %s and verified", c->val[O_DATA], c->args[0]);
	return 0;
}

static int run_restore(const struct command *cmd, struct cli *c)
{
	char err[ADMIN_ERR_LEN], line[512], epoch[EVLOG_EPOCH_STRLEN + 1];
	struct audit_summary sum;
	int rc = admin_restore(c->args[0], c->val[O_DATA], isatty(2), &sum, epoch, err);

	if (rc) {
		cli_msg(PROG, "%s", err);
		return rc;
	}
	audit_summary_line(&sum, epoch, line, sizeof line);
	printf("%s\n", line);
	cli_msg(PROG, "restored %s into %s with the new epoch %s; point changelogd at %s", c->args[0],
	    c->val[O_DATA], epoch, c->val[O_DATA]);
	return 0;
}

/* A positive integer option, or dflt when absent. */
static int opt_u64(struct cli *c, int o, uint64_t dflt, uint64_t max, uint64_t *out)
{
	const char *s = c->val[o];
	char *end = NULL;
	unsigned long long v;

	*out = dflt;
	if (!s)
		return 0;
	v = strtoull(s, &end, 10);
	if (!*s || *end || s[0] == '-' || v == 0 || v > max) {
		cli_msg(PROG, "%s must be a number from 1 to %" PRIu64, opt_table[o].name, max);
		return CL_EUSAGE;
	}
	*out = v;
	return 0;
}

static int run_dev_seed(const struct command *cmd, struct cli *c)
{
	char err[ADMIN_ERR_LEN];
	uint64_t events, seed, batch, appended = 0;
	struct admin a;
	int rc;

	if ((rc = opt_u64(c, O_EVENTS, 1000, (uint64_t)1 << 40, &events)) ||
	    (rc = opt_u64(c, O_SEED, 1, UINT32_MAX, &seed)) ||
	    (rc = opt_u64(c, O_BATCH, 1000, 100000, &batch)))
		return rc;
	if ((rc = open_admin(&a, c, 1, 0)) != 0)
		return rc;
	rc = admin_seed(&a, events, (uint32_t)seed, (size_t)batch, &appended, err);
	if (rc)
		cli_msg(PROG, "%s", err);
	else
		cli_msg(PROG, "appended %" PRIu64 " events (last seq %" PRIu64 ")", appended,
		    proj_seq(a.proj));
	admin_close(&a);
	return rc;
}

static int run_dev_exec(const struct command *cmd, struct cli *c)
{
	const char *op = c->args[0];
	json_t *params = NULL, *reply;
	json_error_t jerr;
	struct admin_out out;
	struct cl_fail fail;
	char err[ADMIN_ERR_LEN];
	struct admin a;
	int rc;

	if (c->nargs > 1 && !(params = json_loads(c->args[1], JSON_REJECT_DUPLICATES, &jerr))) {
		cli_msg(PROG, "params are not JSON: %s", jerr.text);
		return CL_EUSAGE;
	}
	if (!params)
		params = json_object();
	if ((rc = open_admin(&a, c, 0, 0)) != 0) {
		json_decref(params);
		return rc;
	}
	rc = admin_exec(&a, op, params, &out, &fail, err);
	if (rc == 0) {
		reply = json_pack("{s:b, s:I}", "ok", 1, "seq", (json_int_t)out.first_seq);
		if (out.reply)
			json_object_update(reply, out.reply);
		if (out.secret)
			json_object_update(reply, out.secret);
		admin_out_release(&out);
	} else if (rc == CL_ESTATE && fail.code) {
		reply = json_pack("{s:b, s:{s:s, s:s}}", "ok", 0, "error", "code",
				  cmd_code_name(fail.code), "message", fail.message);
	} else {
		reply = NULL;
		cli_msg(PROG, "%s", err);
	}
	if (reply) {
		json_dumpf(reply, stdout, JSON_COMPACT);
		fputc('\n', stdout);
		json_decref(reply);
	}
	json_decref(params);
	admin_close(&a);
	return rc;
}

/* ---- the command table and the parser ------------------------------------ */

/* ---- webhooks -------------------------------------------------------------- */

/* --events a,b,c as a JSON array (NULL: absent, every type). */
static json_t *events_array(const char *list)
{
	json_t *arr;
	const char *p = list, *comma;

	if (!list)
		return NULL;
	if (!(arr = json_array()))
		return NULL;
	for (;;) {
		comma = strchr(p, ',');
		if (json_array_append_new(arr, json_stringn(p, comma ? (size_t)(comma - p)
								    : strlen(p)))) {
			json_decref(arr);
			return NULL;
		}
		if (!comma)
			break;
		p = comma + 1;
	}
	return arr;
}

static int run_webhook_add(const struct command *cmd, struct cli *c)
{
	json_t *params = json_pack("{s:s}", "url", c->args[0]);
	struct admin a;
	struct admin_out out;
	int rc;

	if (params && c->val[O_EVENTS] &&
	    json_object_set_new(params, "events", events_array(c->val[O_EVENTS]))) {
		json_decref(params);
		params = NULL;
	}
	if ((rc = open_admin(&a, c, 1, 0)) != 0) {
		json_decref(params);
		return rc;
	}
	rc = exec_cmd(&a, "createWebhook", params, &out);
	if (rc == 0) {
		printf("%s\n", jstr(out.secret, "secret"));
		fflush(stdout);
		cli_msg(PROG, "created webhook %" JSON_INTEGER_FORMAT " (events: %s) at seq %" PRIu64
			"; the secret on stdout is shown only once", reply_int(&out, "webhook"),
			jstr(out.reply, "events"), out.first_seq);
		admin_out_release(&out);
	}
	admin_close(&a);
	return rc;
}

static void print_webhooks_text(json_t *hooks)
{
	json_t *w, *t;
	size_t i, j;

	printf("%-4s %-27s %s  %s\n", "ID", "CREATED", "URL", "EVENTS");
	json_array_foreach(hooks, i, w) {
		printf("%-4" JSON_INTEGER_FORMAT " %-27s %s  ",
		       json_integer_value(json_object_get(w, "id")), jstr(w, "created"),
		       jstr(w, "url"));
		if (json_is_true(json_object_get(w, "all")))
			printf("all");
		else
			json_array_foreach(json_object_get(w, "events"), j, t)
				printf("%s%s", j ? "," : "", json_string_value(t));
		printf("\n");
	}
}

static int run_webhook_list(const struct command *cmd, struct cli *c)
{
	(void)cmd;
	return run_list(c, "getWebhooks", "webhooks", print_webhooks_text);
}

static int run_webhook_rm(const struct command *cmd, struct cli *c)
{
	char *end;
	unsigned long long id = strtoull(c->args[0], &end, 10);
	struct admin a;
	struct admin_out out;
	int rc;

	if (!*c->args[0] || *end || id == 0 || id > INT64_MAX) {
		cli_msg(PROG, "webhook rm wants the webhook's id (see webhook list), not '%s'",
			c->args[0]);
		return CL_EUSAGE;
	}
	if ((rc = open_admin(&a, c, 1, 0)) != 0)
		return rc;
	rc = exec_cmd(&a, "deleteWebhook", json_pack("{s:I}", "webhook", (json_int_t)id), &out);
	if (rc == 0) {
		cli_msg(PROG, "deleted webhook %llu at seq %" PRIu64 "; a running changelogd "
			"stops posting to it", id, out.first_seq);
		admin_out_release(&out);
	}
	admin_close(&a);
	return rc;
}

static const struct command commands[] = {
	{ "init", NULL, 0, 0, OB(O_DATA) | OB(O_ADMIN), run_init,
	  "init --data DIR [--admin NAME]",
	  "Create a new log in DIR (a new epoch) and its first admin (default name\n"
	  "\"admin\"). Prints the admin's token alone on stdout, once. Refuses a\n"
	  "directory that already holds a log with events.", 0 },
	{ "user", "add", 1, 1, OB(O_DATA) | OB(O_ADMIN) | OB(O_AS) | OB(O_URL), run_user_add,
	  "user add NAME [--admin] [--url BASE] --data DIR",
	  "Create a user (a member, or an admin with --admin) and its first token,\n"
	  "printed alone on stdout, once. NAME: 1-64 of A-Z a-z 0-9 . _ -\n"
	  "--url BASE prints an invite link instead, BASE/#token=TOKEN: opened in a\n"
	  "browser it signs in once and leaves no token in the address bar.", 0 },
	{ "user", "list", 0, 0, OB(O_DATA) | OB(O_FORMAT), run_user_list,
	  "user list [--format text|json] --data DIR",
	  "List users with their role, tokens (active/issued) and creation time.", 0 },
	{ "user", "role", 2, 2, OB(O_DATA) | OB(O_AS), run_user_role,
	  "user role NAME admin|member --data DIR",
	  "Change a user's role. The last admin cannot be demoted.", 0 },
	{ "token", "issue", 1, 1, OB(O_DATA) | OB(O_LABEL) | OB(O_AS) | OB(O_URL),
	  run_token_issue,
	  "token issue NAME [--label L] [--url BASE] --data DIR",
	  "Issue another token to a user; printed alone on stdout, once.\n"
	  "--url BASE prints an invite link instead (see user add).", 0 },
	{ "token", "revoke", 1, 1, OB(O_DATA) | OB(O_ID) | OB(O_USER) | OB(O_AS),
	  run_token_revoke,
	  "token revoke TOKEN|ID|NAME [--id|--user] --data DIR",
	  "Revoke one token, given whole (clg_...) or by its id (see user list), or\n"
	  "every active token of the user NAME. Only SHA-256 hashes of tokens are\n"
	  "stored, so a prefix of a token cannot be matched. --id / --user force how\n"
	  "the argument is read (e.g. for a user whose name is all digits).\n"
	  "A running changelogd closes the revoked tokens' connections.", 0 },
	{ "webhook", "add", 1, 1, OB(O_DATA) | OB(O_EVENTS) | OB(O_AS), run_webhook_add,
	  "webhook add URL [--events TYPE,TYPE...] --data DIR",
	  "Make changelogd POST every committed event (or only those of the listed\n"
	  "event types, e.g. entry.created,comment.added) to URL, http:// or\n"
	  "https://, at most 16 webhooks. Prints the signing secret alone on stdout,\n"
	  "once: it is kept derived from DIR/webhook.key, never in the log.", 0 },
	{ "webhook", "list", 0, 0, OB(O_DATA) | OB(O_FORMAT), run_webhook_list,
	  "webhook list [--format text|json] --data DIR",
	  "List the configured webhooks (id, creation time, URL, event types); no\n"
	  "secrets.", 0 },
	{ "webhook", "rm", 1, 1, OB(O_DATA) | OB(O_AS), run_webhook_rm,
	  "webhook rm ID --data DIR",
	  "Delete a webhook: nothing more is posted to it.", 0 },
	{ "backup", NULL, 1, 1, OB(O_DATA), run_backup,
	  "backup DEST --data DIR",
	  "Hot backup: a consistent, compacted copy of the log into DEST (missing or\n"
	  "empty) while the server keeps writing, then verified like\n"
	  "`changelog-audit verify`. Prints the verify summary.", 0 },
	{ "restore", NULL, 1, 1, OB(O_DATA), run_restore,
	  "restore SRC --data DIR",
	  "Verify the backup SRC, copy it into DIR (missing or empty) and give the\n"
	  "copy a new epoch, so clients that resume re-query instead of mixing\n"
	  "histories.", 0 },
	{ "dev-seed", NULL, 0, 0, OB(O_DATA) | OB(O_EVENTS) | OB(O_SEED) | OB(O_BATCH) | OB(O_AS),
	  run_dev_seed,
	  "dev-seed --data DIR [--events N] [--seed S] [--batch B]",
	  "Test hook: append about N (default 1000) events of a deterministic\n"
	  "workload through the real commands, B events per txn. Needs the log to\n"
	  "itself. CHANGELOG_FAKE_TIME sets the first timestamp (then 1 ms apart).", 1 },
	{ "dev-exec", NULL, 1, 2, OB(O_DATA) | OB(O_AS), run_dev_exec,
	  "dev-exec OP [PARAMS-JSON] [--as NAME] --data DIR",
	  "Test hook: run any command (createEntry, setStatus, addComment, ...) as\n"
	  "the user NAME (default: the first admin) and print the reply as JSON.", 1 },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f, const struct command *only)
{
	if (only) {
		fprintf(f, "usage: " PROG " %s\n\n%s\n", only->synopsis, only->help);
		if (only->opts & OB(O_AS))
			fprintf(f, "\n--as NAME  record the change as done by this admin (default:\n"
				   "           the admin with the lowest user id)\n");
		return;
	}
	fprintf(f, "usage: " PROG " COMMAND [ARGS] --data DIR\n\n"
		   "Administer a changelogd data directory: create it, manage users and\n"
		   "tokens, back it up and restore it. Works while changelogd runs: every\n"
		   "change is appended to the log (append-if-unchanged) and the server picks\n"
		   "it up within a second.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!commands[i].hidden)
			fprintf(f, "  %s\n", commands[i].synopsis);
	fprintf(f, "\noptions:\n"
		   "  --data DIR   the data directory (required)\n"
		   "  --as NAME    record user/token changes as done by this admin\n"
		   "               (default: the admin with the lowest user id)\n"
		   "  -h, --help   this text; `" PROG " COMMAND --help` for one command\n"
		   "  --version    the release and the libraries it runs with\n\n"
		   "Tokens are printed alone on stdout, messages go to stderr.\n"
		   "Exit status: 0 ok, 1 failure, 2 bad usage. See docs/operations.md.\n");
}

static int find_opt(const char *arg, size_t len)
{
	if (len == 2 && strncmp(arg, "-h", 2) == 0)
		return O_HELP;
	for (int o = 0; o < O__COUNT; o++)
		if (strlen(opt_table[o].name) == len && strncmp(opt_table[o].name, arg, len) == 0)
			return o;
	return -1;
}

/* Fill c from argv; 0 or CL_EUSAGE (message printed). */
static int parse(int argc, char **argv, struct cli *c)
{
	int only_pos = 0;

	memset(c, 0, sizeof *c);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq;
		size_t len;
		int o, takes;

		if (only_pos || arg[0] != '-' || arg[1] == '\0') {
			if (c->npos == MAX_POS) {
				cli_msg(PROG, "too many arguments (see --help)");
				return CL_EUSAGE;
			}
			c->pos[c->npos++] = arg;
			continue;
		}
		if (strcmp(arg, "--") == 0) {
			only_pos = 1;
			continue;
		}
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		if ((o = find_opt(arg, len)) < 0) {
			cli_msg(PROG, "unknown option '%.*s' (see --help)", (int)len, arg);
			return CL_EUSAGE;
		}
		takes = opt_table[o].takes_value;
		if (takes < 0)  /* --admin: a name for init, a flag for user add */
			takes = c->npos > 0 && strcmp(c->pos[0], "init") == 0;
		if (takes && !eq) {
			/* "--admin --data d": a missing value, not a name "--data" */
			if (i + 1 >= argc || (strncmp(argv[i + 1], "--", 2) == 0 &&
					      find_opt(argv[i + 1], strcspn(argv[i + 1], "=")) >= 0)) {
				cli_msg(PROG, "%s needs a value", opt_table[o].name);
				return CL_EUSAGE;
			}
			c->val[o] = argv[++i];
		} else if (takes) {
			c->val[o] = eq + 1;
		} else if (eq) {
			cli_msg(PROG, "%s takes no value", opt_table[o].name);
			return CL_EUSAGE;
		}
		c->seen |= OB(o);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const struct command *cmd = NULL;
	struct cli c;
	int words = 0, rc;

	if (parse(argc, argv, &c) != 0)
		return 2;
	if (c.seen & OB(O_VERSION)) {
		store_version_print(PROG);
		return 0;
	}
	for (size_t i = 0; c.npos > 0 && i < NCOMMANDS && !cmd; i++) {
		if (strcmp(commands[i].w1, c.pos[0]) != 0)
			continue;
		if (!commands[i].w2) {
			cmd = &commands[i];
			words = 1;
		} else if (c.npos > 1 && strcmp(commands[i].w2, c.pos[1]) == 0) {
			cmd = &commands[i];
			words = 2;
		}
	}
	if (!cmd) {
		if (c.seen & OB(O_HELP)) {
			usage(stdout, NULL);
			return 0;
		}
		if (c.npos == 0)
			cli_msg(PROG, "no command given");
		else
			cli_msg(PROG, "unknown command '%s%s%s'", c.pos[0], c.npos > 1 ? " " : "",
			    c.npos > 1 ? c.pos[1] : "");
		usage(stderr, NULL);
		return 2;
	}
	if (c.seen & OB(O_HELP)) {
		usage(stdout, cmd);
		return 0;
	}
	c.args = c.pos + words;
	c.nargs = c.npos - words;
	if (c.nargs < cmd->min_args || c.nargs > cmd->max_args) {
		cli_msg(PROG, "wrong number of arguments for '%s'", cmd->synopsis);
		usage(stderr, cmd);
		return 2;
	}
	for (int o = 0; o < O__COUNT; o++) {
		if (o != O_HELP && (c.seen & OB(o)) && !(cmd->opts & OB(o))) {
			cli_msg(PROG, "%s does not apply here", opt_table[o].name);
			usage(stderr, cmd);
			return 2;
		}
	}
	if (!c.val[O_DATA] || !*c.val[O_DATA]) {
		cli_msg(PROG, "--data DIR is required");
		usage(stderr, cmd);
		return 2;
	}
	rc = cmd->run(cmd, &c);
	return status_of(rc);
}
