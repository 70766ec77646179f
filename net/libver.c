/*
 * libver.c - the run-time libwebsockets version for --version.
 */
#include <stdio.h>
#include <string.h>
#include <libwebsockets.h>

#include "../store/libver.h"
#include "libver.h"

size_t net_libvers(struct cl_libver *v, size_t n)
{
	static char lws[64];
	size_t len;

	/* "4.1.6-" when built without a git hash: drop the empty suffix */
	snprintf(lws, sizeof lws, "%s", lws_get_library_version());
	len = strlen(lws);
	if (len > 0 && lws[len - 1] == '-')
		lws[len - 1] = '\0';
	n = store_libvers(v, n);
	if (n < CL_LIBVER_MAX)
		v[n++] = (struct cl_libver){ "libwebsockets", lws };
	return n;
}

void net_version_print(const char *prog)
{
	struct cl_libver v[CL_LIBVER_MAX];

	cl_version_print(stdout, prog, v, net_libvers(v, 0));
}
