/*
 * libver.c - run-time SQLite and MariaDB client versions for --version.
 */
#include <sqlite3.h>
#include <mysql.h>

#include "../store/libver.h"
#include "libver.h"

size_t replay_libvers(struct cl_libver *v, size_t n)
{
	n = store_libvers(v, n);
	n = cl_libver_add(v, n, "SQLite", sqlite3_libversion());
	return cl_libver_add(v, n, "MariaDB-Connector/C", mysql_get_client_info());
}

void replay_version_print(const char *prog)
{
	struct cl_libver v[CL_LIBVER_MAX];

	cl_version_print(stdout, prog, v, replay_libvers(v, 0));
}
