/*
 * libver.h - the libraries replay/ calls, for --version (core/version.h).
 */
#ifndef CL_REPLAY_LIBVER_H
#define CL_REPLAY_LIBVER_H

#include "../core/version.h"

/* store's libraries, then SQLite and MariaDB Connector/C; returns the new n. */
size_t replay_libvers(struct cl_libver *v, size_t n);

/* --version of a binary built on replay/: on stdout. */
void replay_version_print(const char *prog);

#endif
