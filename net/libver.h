/*
 * libver.h - the libraries net/ calls, for --version (core/version.h).
 */
#ifndef CL_NET_LIBVER_H
#define CL_NET_LIBVER_H

#include "../core/version.h"

/* store's libraries, then libwebsockets, appended to v; returns the new n. */
size_t net_libvers(struct cl_libver *v, size_t n);

/* --version of a binary built on net/: PROG, release, libraries, on stdout. */
void net_version_print(const char *prog);

#endif
