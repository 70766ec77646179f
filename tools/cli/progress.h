/*
 * progress.h - a one-line progress bar on a terminal, for long tool runs
 * (changelog-audit verify over millions of events, changelog-replay over a
 * long backlog). Part of tools/cli, the library every command-line program
 * may use (it needs only core/).
 *
 * It draws only when the stream is a TTY (or when forced, for tests), only
 * for work big enough to be worth it, and at most ten times a second, so a
 * tight loop can call progress_update on every item for free. Nothing is
 * written when it is inactive: pipes and log files stay clean.
 */
#ifndef CL_TOOLS_CLI_PROGRESS_H
#define CL_TOOLS_CLI_PROGRESS_H

#include <stdint.h>
#include <stdio.h>

/* Work smaller than this is never shown (it finishes in well under a second). */
#define PROGRESS_MIN_TOTAL 50000

struct progress {
	FILE *f;
	const char *label;     /* in front of the bar, or NULL */
	uint64_t total;
	int64_t start_us, last_us;
	int active;            /* drawing at all (the caller may decide it) */
	int drawn;             /* something is on the line (progress_done clears it) */
	/* NULL: the line ends with the elapsed time ("1.5s"); else with the
	 * unit, the rate and the time left ("events  1200 ev/s  ETA 3 s") */
	const char *unit, *rate_unit;
};

/*
 * Start a bar for `total` items on f. force: 1 = always draw (tests),
 * 0 = draw only if f is a TTY and total >= PROGRESS_MIN_TOTAL.
 */
void progress_init(struct progress *p, FILE *f, const char *label, uint64_t total,
		   int force);
/* done items so far; redraws at most every 100 ms. Cheap enough to call
 * for every item (the clock is read every 4096 items). */
void progress_update(struct progress *p, uint64_t done);
/* The same for callers that report rarely (once per batch): reads the
 * clock on every call. */
void progress_draw(struct progress *p, uint64_t done);
/* Format the bar for done/total into out (no "\r"); returns out. */
char *progress_format(const struct progress *p, uint64_t done, int64_t now_us,
		      char *out, size_t n);
/* Erase the line if anything was drawn. */
void progress_done(struct progress *p);

#endif
