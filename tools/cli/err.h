/*
 * err.h - how the command-line programs report failures
 * (docs/architecture.md, "Errors").
 *
 * A library part of a program (tools/admin.c, tools/audit.c,
 * replay/replay.c) does not print: it writes one sentence into the
 * caller's buffer with cli_err and returns a CL_E* code. The program's main
 * prints that sentence once, prefixed with the program's name, with
 * cli_msg. A sentence says what could not be done, then the cause in
 * parentheses, then what follows after "; ".
 */
#ifndef CL_TOOLS_CLI_ERR_H
#define CL_TOOLS_CLI_ERR_H

#include <stddef.h>

/* Format the sentence into err (n bytes; nothing if err is NULL or n is 0)
 * and return rc, so a failure is reported and returned in one statement. */
int cli_err(char *err, size_t n, int rc, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "PROG: <sentence>\n" on stderr. */
void cli_msg(const char *prog, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
