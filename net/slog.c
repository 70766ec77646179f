/*
 * slog.c - the server's stderr log (see slog.h). Lines are formatted into a
 * bounded buffer, scrubbed of tokens and written with one write(2) so that
 * lines never interleave.
 */
#include "slog.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <libwebsockets.h>

#include "../core/cl.h"
#include "../store/token.h"

/*
 * Process-wide by nature: libwebsockets' log callback (slog_hook_lws) takes
 * no context argument, so the level it filters by cannot live in a struct
 * (tools/scripts/check-deps.sh allows this one name).
 */
static int slog_level_max = SLOG_INFO;

static const char *const slog_names[] = { "ERROR", "WARN ", "INFO ", "DEBUG" };

void slog_set_level(int level)
{
	slog_level_max = level;
}

/* Replace the secret part of every "clg_<base64url>" with "***". */
static void slog_scrub(char *s)
{
	static const char pfx[] = TOKEN_PREFIX;
	char *p = s;

	while ((p = strstr(p, pfx)) != NULL) {
		char *q = p + sizeof(pfx) - 1, *end = q;

		while ((*end >= 'A' && *end <= 'Z') || (*end >= 'a' && *end <= 'z') ||
		       (*end >= '0' && *end <= '9') || *end == '-' || *end == '_' || *end == '%')
			end++;
		if (end - q >= 3) {
			memcpy(q, "***", 3);
			memmove(q + 3, end, strlen(end) + 1);
		}
		p = q;
	}
}

static void slog_line(int level, const char *text)
{
	char line[1024], ts[CL_ISO_LEN + 1];
	size_t n;
	int r;

	if (level < 0)
		level = 0;
	if (level > SLOG_DEBUG)
		level = SLOG_DEBUG;
	cl_iso_time(cl_now_us(), ts);
	r = snprintf(line, sizeof line, "%s %s %s", ts, slog_names[level], text);
	if (r < 0)
		return;
	slog_scrub(line);
	n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (n >= sizeof line - 1)
		n = sizeof line - 2;
	line[n++] = '\n';
	if (write(STDERR_FILENO, line, n) < 0) {
		/* nowhere left to report it */
	}
}

void slog(int level, const char *fmt, ...)
{
	char text[900];
	va_list ap;

	if (level > slog_level_max)
		return;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	slog_line(level, text);
}

static void slog_lws_emit(int lws_level, const char *line)
{
	char text[900];
	int level = (lws_level & LLL_ERR) ? SLOG_ERR :
		    (lws_level & LLL_WARN) ? SLOG_WARN :
		    (lws_level & (LLL_NOTICE | LLL_INFO | LLL_USER)) ? SLOG_INFO : SLOG_DEBUG;

	if (level > slog_level_max)
		return;
	/* lws prefixes its own timestamp "[date] X: "; drop it */
	if (line[0] == '[') {
		const char *close = strchr(line, ']');
		if (close) {
			line = close + 1;
			while (*line == ' ')
				line++;
		}
	}
	snprintf(text, sizeof text, "lws: %s", line);
	slog_line(level, text);
}

void slog_hook_lws(int verbose)
{
	int mask = LLL_ERR | LLL_WARN;

	if (verbose)
		mask |= LLL_NOTICE | LLL_USER;
	lws_set_log_level(mask, slog_lws_emit);
}
