/*
 * version.c - --version for every binary: the release and the run-time
 * versions of the libraries core calls (see version.h).
 */
#include <jansson.h>
#include <msgpack.h>

#include "version.h"

static size_t add(struct cl_libver *v, size_t n, const char *name, const char *ver)
{
	if (n < CL_LIBVER_MAX) {
		v[n].name = name;
		v[n].version = ver && *ver ? ver : "unknown";
		n++;
	}
	return n;
}

size_t cl_libvers(struct cl_libver *v, size_t n)
{
	n = add(v, n, "msgpack-c", msgpack_version());
	return add(v, n, "jansson", jansson_version_str());
}

void cl_version_print(FILE *f, const char *prog, const struct cl_libver *v, size_t n)
{
	fprintf(f, "%s %s\n", prog, CL_VERSION);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "  %s %s\n", v[i].name, v[i].version);
}
