/*
 * libver.c - the run-time libwebsockets version for --version.
 */
#include <stdio.h>
#include <libwebsockets.h>

#include "../store/libver.h"
#include "libver.h"

size_t net_libvers(struct cl_libver *v, size_t n)
{
	n = store_libvers(v, n);
	return cl_libver_add(v, n, "libwebsockets", lws_get_library_version());
}

void net_version_print(const char *prog)
{
	struct cl_libver v[CL_LIBVER_MAX];

	cl_version_print(stdout, prog, v, net_libvers(v, 0));
}
