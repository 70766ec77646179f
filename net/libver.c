/*
 * libver.c - the run-time libwebsockets and libcurl versions for --version.
 */
#include <stdio.h>
#include <curl/curl.h>
#include <libwebsockets.h>

#include "../store/libver.h"
#include "libver.h"

size_t net_libvers(struct cl_libver *v, size_t n)
{
	n = store_libvers(v, n);
	n = cl_libver_add(v, n, "libwebsockets", lws_get_library_version());
	/* the webhook deliveries (net/webhook.c) */
	return cl_libver_add(v, n, "libcurl", curl_version_info(CURLVERSION_NOW)->version);
}

void net_version_print(const char *prog)
{
	struct cl_libver v[CL_LIBVER_MAX];

	cl_version_print(stdout, prog, v, net_libvers(v, 0));
}
