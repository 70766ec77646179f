/*
 * audit.h - changelog-audit's work, as a library: verify a log, list its
 * history, and count it. changelog-audit (audit_main.c) is a thin command
 * line over these; changelog-admin uses audit_verify to check backups.
 *
 * Everything here only reads: the log may be opened EVLOG_RDONLY, and may be
 * a live log (a server appending meanwhile) or a backup. The same decoder,
 * hash and projection the server runs are used; there is no second decoder.
 */
#ifndef CL_TOOLS_AUDIT_H
#define CL_TOOLS_AUDIT_H

#include <stdint.h>
#include <stdio.h>

#include "../store/evlog.h"

/* What is wrong, for the user: the first bad seq and a sentence. */
struct audit_fault {
	uint64_t seq;        /* first bad seq; 0 = the log as a whole */
	char what[300];      /* "hash chain broken (prev_hash does not match seq 1233)" */
};

/* Format a fault as one line: "seq 1234: what" or just "what". */
void audit_fault_line(const struct audit_fault *f, char *out, size_t n);

/* A sentence for a failed evlog_open(dir) with code rc (both tools use it):
 * datadir_explain, so it names a damaged directory as the server does. */
void audit_open_error(const char *dir, int rc, char *out, size_t n);

struct audit_summary {
	uint64_t events;               /* events checked (= last seq) */
	uint8_t head[EV_HASH_LEN];     /* hash(last) */
	uint64_t users, tokens, entries, comments;
	double secs;
};

/*
 * Verify the whole log from seq 1 with a zero hash:
 *  - seqs are 1..last with no gap, and nothing is stored past meta "last";
 *  - every value decodes and is valid for its type and schema version;
 *  - every prev_hash continues the chain, and hash(last) equals meta "head";
 *  - the projection accepts every event (proj_apply) and proj_check passes.
 * Events committed by a live writer after the check began are ignored.
 * progress_tty: draw a progress bar on stderr if it is a TTY.
 * Returns 0 (clean; *sum filled), CL_ECORRUPT (*fault names the first bad
 * seq), or another CL_E* code when the log could not be read (*fault says so).
 */
int audit_verify(struct evlog *log, int progress_tty, struct audit_summary *sum,
		 struct audit_fault *fault);

/* One-line summary of a clean verify, without a newline. */
void audit_summary_line(const struct audit_summary *sum, const char *epoch,
			char *out, size_t n);

enum audit_format { AUDIT_TEXT = 0, AUDIT_JSONL, AUDIT_CSV, AUDIT_JSON };

/* Filters of audit_log; zero means "no filter" for every field. */
struct audit_filter {
	uint64_t entry;          /* events of this entry, its comments included */
	const char *user;        /* events by this user or about their account */
	uint32_t types;          /* bit (1u << type) for each wanted ev_type */
	int has_since, has_until;
	int64_t since, until;    /* µs; since inclusive, until exclusive */
	uint64_t from_seq, to_seq;  /* inclusive */
};

/*
 * Parse a --type value: a type name ("entry.status_set"), a family
 * ("entry" = every "entry.*"), or a comma-separated list of those. ORs the
 * bits into *types. 0 or CL_EUSAGE.
 */
int audit_parse_types(const char *s, uint32_t *types);

/*
 * Write the history matching f to out as text (a timeline), jsonl (ev_to_json
 * plus "actor_name", one per line) or csv (RFC 4180, CRLF, with a header).
 * The hash chain is checked while reading. *matched gets the number of
 * events written. Returns 0, CL_ENOTFOUND (f->user names no user; fault
 * says so) or a read / corruption error with *fault set.
 */
int audit_log(struct evlog *log, const struct audit_filter *f, int format, FILE *out,
	      uint64_t *matched, struct audit_fault *fault);

/* The one-line text summary of an event ("set #12 resolved (was open)"). */
void audit_event_summary(const struct event *ev, const char *subject_name, char *out,
			 size_t n);

/*
 * Counts of the whole log: events by type and by month (UTC), users by role,
 * tokens, entries by status, comments, size and map use (evlog_stat).
 * format: AUDIT_TEXT or AUDIT_JSON.
 */
int audit_stats(struct evlog *log, int format, FILE *out, struct audit_fault *fault);

#endif
