/*
 * version.h - the changelogd release and what every binary's --version
 * prints: its name and release, then one "library version" line for each
 * library that binary's code calls, as that library reports it at run time
 * (so a newer shared library shows up without a rebuild).
 *
 * Each layer adds the libraries it uses: core (msgpack, jansson),
 * store/libver.c (LMDB, OpenSSL), net/libver.c (libwebsockets),
 * replay/libver.c (SQLite, MariaDB Connector/C).
 */
#ifndef CL_VERSION_H
#define CL_VERSION_H

#include <stddef.h>
#include <stdio.h>

/* Kept equal to the newest version in debian/changelog (a test checks). */
#define CL_VERSION "0.1.0"

#define CL_LIBVER_MAX 8
#define CL_LIBVER_LEN 48

struct cl_libver {
	const char *name;                /* a string literal */
	char version[CL_LIBVER_LEN];     /* a copy: no library buffer outlives us */
};

/* Append name and a copy of ver ("unknown" if NULL or empty; a trailing '-',
 * as in libwebsockets' "4.1.6-" without a git hash, is dropped) to v, which
 * has room for CL_LIBVER_MAX; returns the new n. */
size_t cl_libver_add(struct cl_libver *v, size_t n, const char *name, const char *ver);

/* Append core's libraries to v (room for CL_LIBVER_MAX); returns the new n. */
size_t cl_libvers(struct cl_libver *v, size_t n);

/* "PROG 0.1.0" then "  NAME VERSION" per library, on f. */
void cl_version_print(FILE *f, const char *prog, const struct cl_libver *v, size_t n);

#endif
