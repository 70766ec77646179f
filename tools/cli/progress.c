/*
 * progress.c - the terminal progress bar (see progress.h).
 *
 * Redrawn in place with "\r" and erased with "\r\033[K" at the end, so the
 * final summary line is never mixed with the bar. Time is read only every
 * 4096 updates to keep the per-item cost at one increment and one compare.
 */
#include "progress.h"

#include <inttypes.h>
#include <string.h>
#include <unistd.h>

#include "../../core/cl.h"

#define BAR_WIDTH 30
#define REDRAW_US 100000

void progress_init(struct progress *p, FILE *f, const char *label, uint64_t total,
		   int force)
{
	memset(p, 0, sizeof *p);
	p->f = f;
	p->label = label;
	p->total = total;
	p->start_us = cl_now_us();
	if (force)
		p->active = 1;
	else
		p->active = f && isatty(fileno(f)) && total >= PROGRESS_MIN_TOTAL;
}

char *progress_format(const struct progress *p, uint64_t done, int64_t now_us,
		      char *out, size_t n)
{
	char bar[BAR_WIDTH + 1];
	uint64_t total = p->total ? p->total : 1;
	unsigned pct, fill;
	double secs = (double)(now_us - p->start_us) / 1e6;

	if (done > total)
		done = total;
	pct = (unsigned)(done * 100 / total);
	fill = (unsigned)(done * BAR_WIDTH / total);
	for (unsigned i = 0; i < BAR_WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[BAR_WIDTH] = '\0';
	if (secs < 0)
		secs = 0;
	if (p->unit) {
		double rate = secs > 0 ? (double)done / secs : 0;
		double eta = rate > 0 ? (double)(total - done) / rate : 0;

		snprintf(out, n, "%s%s[%s] %3u%% %" PRIu64 "/%" PRIu64 " %s  %.0f %s  ETA %.0f s",
			 p->label ? p->label : "", p->label ? " " : "", bar, pct, done,
			 p->total, p->unit, rate, p->rate_unit ? p->rate_unit : "/s", eta);
	} else {
		snprintf(out, n, "%s [%s] %3u%% %" PRIu64 "/%" PRIu64 " %.1fs",
			 p->label ? p->label : "", bar, pct, done, p->total, secs);
	}
	return out;
}

void progress_update(struct progress *p, uint64_t done)
{
	if (!p->active || ((done & 4095) != 0 && done != p->total))
		return;
	progress_draw(p, done);
}

void progress_draw(struct progress *p, uint64_t done)
{
	char line[200];
	int64_t now;

	if (!p->active)
		return;
	now = cl_now_us();
	if (now - p->last_us < REDRAW_US && done != p->total)
		return;
	p->last_us = now;
	/* a rate can get shorter: then clear what the last line left behind */
	fprintf(p->f, "\r%s%s", progress_format(p, done, now, line, sizeof line),
		p->unit ? "\033[K" : "");
	fflush(p->f);
	p->drawn = 1;
}

void progress_done(struct progress *p)
{
	if (p->active && p->drawn) {
		fputs("\r\033[K", p->f);
		fflush(p->f);
	}
	p->drawn = 0;
}
