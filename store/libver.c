/*
 * libver.c - run-time versions of LMDB and OpenSSL for --version.
 */
#include <stdio.h>
#include <lmdb.h>
#include <openssl/crypto.h>

#include "libver.h"

size_t store_libvers(struct cl_libver *v, size_t n)
{
	char lmdb[32];
	int maj = 0, min = 0, patch = 0;

	n = cl_libvers(v, n);
	mdb_version(&maj, &min, &patch);
	snprintf(lmdb, sizeof lmdb, "%d.%d.%d", maj, min, patch);
	n = cl_libver_add(v, n, "LMDB", lmdb);
	return cl_libver_add(v, n, "OpenSSL", OpenSSL_version(OPENSSL_VERSION_STRING));
}

void store_version_print(const char *prog)
{
	struct cl_libver v[CL_LIBVER_MAX];

	cl_version_print(stdout, prog, v, store_libvers(v, 0));
}
