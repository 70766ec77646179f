/* harness.c - see harness.h. */
#include "harness.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

int harness_failed_checks;
int harness_passed, harness_failed;

static char tmproot[256];

void harness_fail(const char *file, int line, const char *expr)
{
	harness_failed_checks++;
	fprintf(stderr, "  FAIL %s:%d: %s\n", file, line, expr);
}

void harness_run(const char *name, void (*fn)(void))
{
	int before = harness_failed_checks;

	fn();
	if (harness_failed_checks == before) {
		harness_passed++;
		printf("ok   %s\n", name);
	} else {
		harness_failed++;
		printf("FAIL %s\n", name);
	}
	fflush(stdout);
}

static void cleanup_tmp(void)
{
	char cmd[300];

	if (!tmproot[0] || getenv("KEEP_TMP"))
		return;
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmproot);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmproot);
}

const char *harness_tmpdir(void)
{
	static int n;
	static char dir[300];

	if (!tmproot[0]) {
		snprintf(tmproot, sizeof tmproot, "/tmp/cltest.XXXXXX");
		if (!mkdtemp(tmproot)) {
			perror("mkdtemp");
			exit(2);
		}
		atexit(cleanup_tmp);
	}
	snprintf(dir, sizeof dir, "%s/%d", tmproot, ++n);
	if (mkdir(dir, 0700) != 0) {
		perror("mkdir");
		exit(2);
	}
	return dir;
}

int harness_done(void)
{
	printf("%d passed, %d failed\n", harness_passed, harness_failed);
	return harness_failed ? 1 : 0;
}
