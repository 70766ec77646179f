/*
 * slog.h - the server's log: one line per message on stderr,
 * "2026-11-27T10:02:03.123456Z INFO  text". net/ is the deciding layer, so
 * it is the one that logs; core/ and store/ only return codes.
 *
 * Tokens never reach the log: every line (ours and the ones libwebsockets
 * emits through slog_hook_lws) is scrubbed of "clg_..." secrets before it
 * is written.
 */
#ifndef CL_NET_SLOG_H
#define CL_NET_SLOG_H

enum slog_level { SLOG_ERR = 0, SLOG_WARN, SLOG_INFO, SLOG_DEBUG };

/* Lines above this level are dropped (default SLOG_INFO). */
void slog_set_level(int level);

void slog(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Route libwebsockets' own log (errors and warnings; more when verbose)
 * through slog. */
void slog_hook_lws(int verbose);

#endif
