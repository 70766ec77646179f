/*
 * libver.h - the libraries store/ calls, for --version (core/version.h).
 */
#ifndef CL_STORE_LIBVER_H
#define CL_STORE_LIBVER_H

#include "../core/version.h"

/* Core's libraries, then LMDB and OpenSSL, appended to v; returns the new n. */
size_t store_libvers(struct cl_libver *v, size_t n);

/* --version of a binary built on store/: on stdout. */
void store_version_print(const char *prog);

#endif
