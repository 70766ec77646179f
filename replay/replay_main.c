/*
 * replay_main.c - bin/changelog-replay: the command line around replay_run.
 *
 * It owns what the library layers must not do: reading arguments and the
 * environment (MySQL passwords), signals (SIGINT/SIGTERM finish the current
 * transaction and exit 0), the progress bar on a terminal, and every
 * message the user sees. docs/sql-schema.md documents the tables;
 * docs/operations.md how to run it beside changelogd.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"
#include "libver.h"
#include "../tools/cli/err.h"
#include "../tools/cli/progress.h"

#define PROG "changelog-replay"

static volatile sig_atomic_t stop_flag;

static void on_signal(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void usage(FILE *f)
{
	fputs("usage: changelog-replay --data DIR [--sqlite FILE | --mysql URL] [options]\n"
	      "\n"
	      "Replays the changelogd event log in DIR (read-only; safe while the server\n"
	      "runs) into SQL tables for dashboards: users, entries, comments,\n"
	      "status_changes, events, tokens, replay_state (docs/sql-schema.md).\n"
	      "Incremental: each run applies only the events after the last one applied.\n"
	      "\n"
	      "  --data DIR        the server's data directory (required)\n"
	      "  --sqlite FILE     write into a SQLite file (default: DIR/replay.db)\n"
	      "  --mysql URL       write into MySQL/MariaDB instead:\n"
	      "                      mysql://user:pass@host:port/db\n"
	      "                      mysql://user@localhost/db?socket=/run/mysqld/mysqld.sock\n"
	      "                    the password may instead come from CHANGELOG_MYSQL_PASSWORD\n"
	      "                    or MYSQL_PWD, or from an option file:\n"
	      "  --mysql-defaults-file FILE\n"
	      "                    read [client] user/password/socket from FILE\n"
	      "  --rebuild         drop and recreate changelog-replay's tables (only those),\n"
	      "                    then replay from the start; needed after the log's epoch\n"
	      "                    changed (restore) or a table was altered\n"
	      "  --follow          keep applying new events (checks every 200 ms) until\n"
	      "                    SIGINT/SIGTERM, which finish the current batch\n"
	      "  --batch N         events per transaction (default 50000)\n"
	      "  --quiet           no progress bar and no summary line\n"
	      "  --help            this text\n"
	      "  --version         the release and the libraries it runs with\n"
	      "\n"
	      "Exit status: 0 done, 1 failed (message on stderr), 2 bad usage.\n", f);
}

/* The bar of one pass (tools/cli/progress.h), on a terminal only. */
struct replay_bar {
	int tty;                   /* stderr is a TTY and not --quiet */
	unsigned long min;         /* smallest backlog that gets a bar */
	int on;                    /* a pass is being drawn */
	struct progress pg;
};

/* Backlogs smaller than this finish too fast for a bar to help (tests lower
 * it with CL_REPLAY_PROGRESS_MIN). */
#define PROGRESS_MIN 20000

static void draw_progress(void *arg, const struct replay_progress *p)
{
	struct replay_bar *b = arg;

	if (!b->tty)
		return;
	if (!b->on) {              /* a new pass */
		progress_init(&b->pg, stderr, NULL, p->total, 0);
		b->pg.active = p->total >= b->min;
		b->pg.start_us -= (int64_t)(p->elapsed * 1e6);
		b->pg.unit = "events";
		b->pg.rate_unit = "ev/s";
		b->on = 1;
	}
	b->pg.total = p->total;    /* the reader's snapshot may have grown */
	progress_draw(&b->pg, p->done);
	if (p->done >= p->total) {
		progress_done(&b->pg);
		b->on = 0;
	}
}

static int parse_uint(const char *s, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || v == 0 || v > max || s[0] == '-')
		return -1;
	*out = (unsigned)v;
	return 0;
}

int main(int argc, char **argv)
{
	const char *data = NULL, *sqlite_path = NULL, *mysql_url = NULL, *defaults_file = NULL;
	struct replay_opts o;
	struct replay_stats st;
	struct replay_backend *b = NULL;
	struct replay_bar pr = { 0 };
	struct sigaction sa;
	char err[1024], dbpath[4096];
	int quiet = 0, rc, i;

	memset(&o, 0, sizeof o);
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		const char *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--version")) {
			replay_version_print("changelog-replay");
			return 0;
		} else if (!strcmp(a, "--rebuild")) {
			o.rebuild = 1;
		} else if (!strcmp(a, "--follow")) {
			o.follow = 1;
		} else if (!strcmp(a, "--quiet") || !strcmp(a, "-q")) {
			quiet = 1;
		} else if (!strcmp(a, "--data") || !strcmp(a, "--sqlite") || !strcmp(a, "--mysql") ||
			   !strcmp(a, "--mysql-defaults-file") || !strcmp(a, "--batch")) {
			if (!val) {
				cli_msg(PROG, "%s needs a value (see --help)", a);
				return 2;
			}
			i++;
			if (!strcmp(a, "--data"))
				data = val;
			else if (!strcmp(a, "--sqlite"))
				sqlite_path = val;
			else if (!strcmp(a, "--mysql"))
				mysql_url = val;
			else if (!strcmp(a, "--mysql-defaults-file"))
				defaults_file = val;
			else if (parse_uint(val, REPLAY_MAX_BATCH, &o.batch)) {
				cli_msg(PROG, "--batch wants 1..%u, not \"%s\"",
					REPLAY_MAX_BATCH, val);
				return 2;
			}
		} else {
			cli_msg(PROG, "unknown argument \"%s\" (see --help)", a);
			return 2;
		}
	}
	if (!data) {
		cli_msg(PROG, "--data DIR is required (see --help)");
		return 2;
	}
	if (sqlite_path && mysql_url) {
		cli_msg(PROG, "give --sqlite or --mysql, not both");
		return 2;
	}
	if (defaults_file && !mysql_url) {
		cli_msg(PROG, "--mysql-defaults-file goes with --mysql");
		return 2;
	}
	/* before touching any database: a typo must not create a stray file */
	if (access(data, F_OK) != 0) {
		cli_msg(PROG, "no event log in %s: %s", data, strerror(errno));
		return 1;
	}

	if (mysql_url) {
		struct replay_mysql_cfg cfg;
		const char *pw;

		memset(&cfg, 0, sizeof cfg);
		cfg.defaults_file = defaults_file;
		cfg.no_bulk = getenv("CL_REPLAY_NO_BULK") && *getenv("CL_REPLAY_NO_BULK") == '1';
		if (replay_mysql_parse_url(mysql_url, &cfg, err, sizeof err)) {
			cli_msg(PROG, "%s", err);
			return 2;
		}
		if (!cfg.has_password && ((pw = getenv("CHANGELOG_MYSQL_PASSWORD")) ||
					  (pw = getenv("MYSQL_PWD")))) {
			if (strlen(pw) >= sizeof cfg.password) {
				cli_msg(PROG, "the MySQL password is too long");
				return 2;
			}
			memcpy(cfg.password, pw, strlen(pw) + 1);
			cfg.has_password = 1;
		}
		rc = replay_mysql_open(&b, &cfg, err, sizeof err);
		memset(cfg.password, 0, sizeof cfg.password);
	} else {
		if (!sqlite_path) {
			if ((size_t)snprintf(dbpath, sizeof dbpath, "%s/replay.db", data) >= sizeof dbpath) {
				cli_msg(PROG, "--data path too long");
				return 2;
			}
			sqlite_path = dbpath;
		}
		rc = replay_sqlite_open(&b, sqlite_path, err, sizeof err);
	}
	if (rc) {
		cli_msg(PROG, "%s", err);
		return 1;
	}

	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);

	pr.tty = !quiet && isatty(STDERR_FILENO);
	pr.min = PROGRESS_MIN;
	if (getenv("CL_REPLAY_PROGRESS_MIN"))
		pr.min = strtoul(getenv("CL_REPLAY_PROGRESS_MIN"), NULL, 10);
	o.data_dir = data;
	o.stop = &stop_flag;
	o.progress = draw_progress;
	o.progress_arg = &pr;

	rc = replay_run(b, &o, &st, err, sizeof err);
	if (pr.on)
		progress_done(&pr.pg);
	b->ops->close(b);
	if (rc) {
		cli_msg(PROG, "%s", err[0] ? err : cl_strerror(rc));
		if (st.applied)
			cli_msg(PROG, "%llu events (seq %llu..%llu) were applied "
				"and committed before the failure", (unsigned long long)st.applied,
				(unsigned long long)st.first, (unsigned long long)st.last);
		return 1;
	}
	if (!quiet) {
		if (st.applied)
			printf("applied %llu events (seq %llu..%llu) in %.2f s, %.0f events/s\n",
			       (unsigned long long)st.applied, (unsigned long long)st.first,
			       (unsigned long long)st.last, st.secs,
			       st.secs > 0 ? (double)st.applied / st.secs : 0.0);
		else
			printf("applied 0 events; up to date at seq %llu\n",
			       (unsigned long long)st.head);
	}
	return 0;
}
