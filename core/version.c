/*
 * version.c - --version for every binary: the release and the run-time
 * versions of the libraries core calls (see version.h).
 */
#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include <msgpack.h>

#include "version.h"

size_t cl_libver_add(struct cl_libver *v, size_t n, const char *name, const char *ver)
{
	size_t len;

	if (n >= CL_LIBVER_MAX)
		return n;
	v[n].name = name;
	snprintf(v[n].version, sizeof v[n].version, "%s", ver && *ver ? ver : "unknown");
	len = strlen(v[n].version);
	if (len > 1 && v[n].version[len - 1] == '-')
		v[n].version[len - 1] = '\0';
	return n + 1;
}

size_t cl_libvers(struct cl_libver *v, size_t n)
{
	n = cl_libver_add(v, n, "msgpack-c", msgpack_version());
	return cl_libver_add(v, n, "jansson", jansson_version_str());
}

void cl_version_print(FILE *f, const char *prog, const struct cl_libver *v, size_t n)
{
	fprintf(f, "%s %s\n", prog, CL_VERSION);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %s %s\n", v[i].name, v[i].version);
}
