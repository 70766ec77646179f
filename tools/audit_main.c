/*
 * audit_main.c - bin/changelog-audit: the command line over tools/audit.c.
 *
 * Opens the log read-only (EVLOG_RDONLY), so it runs beside a live server
 * or on a backup and can never change what it audits. stdout carries the
 * result (the verdict, the history, the counts); problems with the command
 * itself go to stderr. Exit 0 ok, 1 corrupt / failure, 2 bad usage.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "audit.h"
#include "../store/libver.h"
#include "cli/err.h"

#define PROG "changelog-audit"
#define MAX_POS 4

enum opt_id {
	O_DATA, O_ENTRY, O_USER, O_TYPE, O_SINCE, O_UNTIL, O_FROM_SEQ, O_TO_SEQ, O_FORMAT,
	O_HELP, O_VERSION, O__COUNT
};
#define OB(o) (1u << (o))

static const char *const opt_names[O__COUNT] = {
	[O_DATA] = "--data", [O_ENTRY] = "--entry", [O_USER] = "--user",
	[O_TYPE] = "--type", [O_SINCE] = "--since", [O_UNTIL] = "--until",
	[O_FROM_SEQ] = "--from-seq", [O_TO_SEQ] = "--to-seq", [O_FORMAT] = "--format",
	[O_HELP] = "--help", [O_VERSION] = "--version",
};

struct cli {
	const char *val[O__COUNT];
	unsigned seen;
	const char *pos[MAX_POS];
	int npos;
};

static const struct {
	const char *name;
	unsigned opts;
	const char *synopsis, *help;
} commands[] = {
	{ "verify", OB(O_DATA), "verify --data DIR",
	  "Check the whole log: seqs 1..last with no gap, every event decodes and is\n"
	  "valid for its schema version, the hash chain from seq 1 (zero hash) to\n"
	  "meta head and last, and the projection invariants after replaying it all.\n"
	  "Prints \"ok: ...\" and exits 0, or \"FAIL: seq N: what is wrong\" and\n"
	  "exits 1, naming the first bad seq. A progress bar is drawn on stderr\n"
	  "when it is a terminal and the log is large." },
	{ "log", OB(O_DATA) | OB(O_ENTRY) | OB(O_USER) | OB(O_TYPE) | OB(O_SINCE) |
		 OB(O_UNTIL) | OB(O_FROM_SEQ) | OB(O_TO_SEQ) | OB(O_FORMAT),
	  "log --data DIR [--entry N] [--user NAME] [--type T] [--since ISO]\n"
	  "        [--until ISO] [--from-seq N] [--to-seq N] [--format text|jsonl|csv]",
	  "The history, oldest first. Filters combine (AND):\n"
	  "  --entry N        events of entry N, its comments included\n"
	  "  --user NAME      events by NAME, and events about NAME's account\n"
	  "  --type T         a type (entry.status_set), a family (entry), or a\n"
	  "                   comma-separated list of those\n"
	  "  --since ISO      at or after this time (2026-11-27, 2026-11-27T10:02Z, ...)\n"
	  "  --until ISO      before this time\n"
	  "  --from-seq N, --to-seq N   an inclusive seq range\n"
	  "Formats: text (a timeline), jsonl (one event per line as pushed to\n"
	  "clients, plus \"actor_name\"), csv (RFC 4180 with a header line:\n"
	  "seq,time,type,actor,entry,comment,summary)." },
	{ "stats", OB(O_DATA) | OB(O_FORMAT), "stats --data DIR [--format text|json]",
	  "Counts: events by type and by month (UTC), users by role, tokens,\n"
	  "entries by status, comments, log size and map use." },
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f, int only)
{
	if (only >= 0) {
		fprintf(f, "usage: " PROG " %s\n\n%s\n", commands[only].synopsis,
			commands[only].help);
		return;
	}
	fprintf(f, "usage: " PROG " COMMAND --data DIR [options]\n\n"
		   "Audit a changelogd log read-only: a live one or a backup.\n\ncommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %s\n", commands[i].synopsis);
	fprintf(f, "\n`" PROG " COMMAND --help` describes one command;\n"
		   "`" PROG " --version` prints the release and the libraries it runs with.\n"
		   "Exit status: 0 ok, 1 corrupt log or failure, 2 bad usage.\n");
}

/* A known option name (so "--entry --data d" is a missing value). */
static int is_option(const char *arg)
{
	size_t len = strcspn(arg, "=");

	if (strncmp(arg, "--", 2) != 0)
		return 0;
	for (int k = 0; k < O__COUNT; k++)
		if (strlen(opt_names[k]) == len && strncmp(opt_names[k], arg, len) == 0)
			return 1;
	return 0;
}

static int parse(int argc, char **argv, struct cli *c)
{
	memset(c, 0, sizeof *c);
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i], *eq;
		size_t len;
		int o = -1;

		if (arg[0] != '-' || arg[1] == '\0') {
			if (c->npos == MAX_POS) {
				cli_msg(PROG, "too many arguments (see --help)");
				return 2;
			}
			c->pos[c->npos++] = arg;
			continue;
		}
		eq = strchr(arg, '=');
		len = eq ? (size_t)(eq - arg) : strlen(arg);
		if (len == 2 && strncmp(arg, "-h", 2) == 0)
			o = O_HELP;
		for (int k = 0; k < O__COUNT && o < 0; k++)
			if (strlen(opt_names[k]) == len && strncmp(opt_names[k], arg, len) == 0)
				o = k;
		if (o < 0) {
			cli_msg(PROG, "unknown option '%.*s' (see --help)", (int)len, arg);
			return 2;
		}
		if (o == O_HELP || o == O_VERSION) {
			if (eq) {
				cli_msg(PROG, "%s takes no value", opt_names[o]);
				return 2;
			}
		} else if (eq) {
			c->val[o] = eq + 1;
		} else if (i + 1 < argc && !is_option(argv[i + 1])) {
			c->val[o] = argv[++i];
		} else {
			cli_msg(PROG, "%s needs a value", opt_names[o]);
			return 2;
		}
		c->seen |= OB(o);
	}
	return 0;
}

static int verdict_on_stdout;    /* verify: a refusal is also its FAIL line */

/* Damage LMDB trips over inside the tree (evlog_on_damage): report, exit 1. */
static void report_damage(const char *what)
{
	if (verdict_on_stdout)
		printf("FAIL: %s\n", what);
	fflush(stdout);
	cli_msg(PROG, "%s", what);
}

/* verdict: also print the refusal as verify's "FAIL: ..." line on stdout. */
static int open_log(struct cli *c, struct evlog **log, int verdict)
{
	char err[1024];
	int rc = evlog_open(log, c->val[O_DATA], EVLOG_RDONLY, 0);

	if (rc) {
		audit_open_error(c->val[O_DATA], rc, err, sizeof err);
		cli_msg(PROG, "%s", err);
		if (verdict)
			printf("FAIL: %s\n", err);
	}
	return rc;
}

static int opt_seq(struct cli *c, int o, uint64_t *out)
{
	const char *s = c->val[o];
	char *end = NULL;

	*out = 0;
	if (!s)
		return 0;
	*out = strtoull(s, &end, 10);
	if (!*s || *end || s[0] == '-' || *out == 0) {
		cli_msg(PROG, "%s must be a positive number, not '%s'", opt_names[o], s);
		return 2;
	}
	return 0;
}

static int opt_time(struct cli *c, int o, int *has, int64_t *out)
{
	*has = 0;
	if (!c->val[o])
		return 0;
	if (cl_parse_iso(c->val[o], out) != 0) {
		cli_msg(PROG, "%s: '%s' is not an ISO-8601 time (e.g. 2026-11-27 or "
		    "2026-11-27T10:02:00Z)", opt_names[o], c->val[o]);
		return 2;
	}
	*has = 1;
	return 0;
}

static int cmd_verify(struct cli *c)
{
	struct audit_summary sum;
	struct audit_fault fault;
	struct evlog *log;
	char line[600];
	int rc;

	if (open_log(c, &log, 1) != 0)
		return 1;
	rc = audit_verify(log, isatty(2), &sum, &fault);
	if (rc == 0) {
		audit_summary_line(&sum, evlog_epoch(log), line, sizeof line);
		printf("%s\n", line);
	} else {
		audit_fault_line(&fault, line, sizeof line);
		printf("FAIL: %s\n", line);
	}
	evlog_close(log);
	return rc == 0 ? 0 : 1;
}

static int cmd_log(struct cli *c)
{
	const char *format = c->val[O_FORMAT] ? c->val[O_FORMAT] : "text";
	struct audit_filter f;
	struct audit_fault fault;
	struct evlog *log;
	uint64_t matched = 0;
	char line[600];
	int fmt, rc;

	memset(&f, 0, sizeof f);
	if (strcmp(format, "text") == 0) {
		fmt = AUDIT_TEXT;
	} else if (strcmp(format, "jsonl") == 0) {
		fmt = AUDIT_JSONL;
	} else if (strcmp(format, "csv") == 0) {
		fmt = AUDIT_CSV;
	} else {
		cli_msg(PROG, "--format must be text, jsonl or csv, not '%s'", format);
		return 2;
	}
	if (opt_seq(c, O_ENTRY, &f.entry) || opt_seq(c, O_FROM_SEQ, &f.from_seq) ||
	    opt_seq(c, O_TO_SEQ, &f.to_seq) ||
	    opt_time(c, O_SINCE, &f.has_since, &f.since) ||
	    opt_time(c, O_UNTIL, &f.has_until, &f.until))
		return 2;
	if (c->val[O_TYPE] && audit_parse_types(c->val[O_TYPE], &f.types) != 0) {
		cli_msg(PROG, "--type: '%s' is not an event type or family (user, token, entry, "
		    "comment, or e.g. entry.status_set)", c->val[O_TYPE]);
		return 2;
	}
	if (c->val[O_USER] && !*c->val[O_USER]) {
		cli_msg(PROG, "--user needs a name");
		return 2;
	}
	f.user = c->val[O_USER];
	if (open_log(c, &log, 0) != 0)
		return 1;
	rc = audit_log(log, &f, fmt, stdout, &matched, &fault);
	if (fflush(stdout) != 0 && rc == 0)
		rc = CL_EIO;
	if (rc) {
		audit_fault_line(&fault, line, sizeof line);
		cli_msg(PROG, "%s", fault.what[0] ? line : cl_strerror(rc));
	}
	evlog_close(log);
	return rc ? 1 : 0;
}

static int cmd_stats(struct cli *c)
{
	const char *format = c->val[O_FORMAT] ? c->val[O_FORMAT] : "text";
	struct audit_fault fault;
	struct evlog *log;
	char line[600];
	int rc;

	if (strcmp(format, "text") != 0 && strcmp(format, "json") != 0) {
		cli_msg(PROG, "--format must be text or json, not '%s'", format);
		return 2;
	}
	if (open_log(c, &log, 0) != 0)
		return 1;
	rc = audit_stats(log, strcmp(format, "json") == 0 ? AUDIT_JSON : AUDIT_TEXT, stdout,
			 &fault);
	if (rc) {
		audit_fault_line(&fault, line, sizeof line);
		cli_msg(PROG, "%s", line);
	}
	evlog_close(log);
	return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
	static char outbuf[1 << 16];
	struct cli c;
	int cmd = -1;

	if (parse(argc, argv, &c) != 0)
		return 2;
	if (c.seen & OB(O_VERSION)) {
		store_version_print(PROG);
		return 0;
	}
	for (size_t i = 0; c.npos > 0 && i < NCOMMANDS; i++)
		if (strcmp(commands[i].name, c.pos[0]) == 0)
			cmd = (int)i;
	if (cmd < 0) {
		if (c.seen & OB(O_HELP)) {
			usage(stdout, -1);
			return 0;
		}
		if (c.npos == 0)
			cli_msg(PROG, "no command given");
		else
			cli_msg(PROG, "unknown command '%s'", c.pos[0]);
		usage(stderr, -1);
		return 2;
	}
	if (c.seen & OB(O_HELP)) {
		usage(stdout, cmd);
		return 0;
	}
	if (c.npos > 1) {
		cli_msg(PROG, "unexpected argument '%s'", c.pos[1]);
		usage(stderr, cmd);
		return 2;
	}
	for (int o = 0; o < O__COUNT; o++) {
		if (o != O_HELP && (c.seen & OB(o)) && !(commands[cmd].opts & OB(o))) {
			cli_msg(PROG, "%s does not apply to %s", opt_names[o], commands[cmd].name);
			return 2;
		}
	}
	if (!c.val[O_DATA] || !*c.val[O_DATA]) {
		cli_msg(PROG, "--data DIR is required");
		usage(stderr, cmd);
		return 2;
	}
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	verdict_on_stdout = cmd == 0;
	evlog_on_damage(report_damage);
	switch (cmd) {
	case 0:  return cmd_verify(&c);
	case 1:  return cmd_log(&c);
	default: return cmd_stats(&c);
	}
}
