/*
 * standalone.c - runs a fuzz target without libFuzzer: every file of the
 * target's corpus directory (argv[1], else the compiled-in FUZZ_CORPUS_DIR)
 * goes once through LLVMFuzzerTestOneInput, each in a forked child so a
 * crash or an abort() is reported against its file and the run goes on.
 * Ends with "N passed, N failed" like the unit tests (tests/run-unit.sh).
 *
 * This is what keeps the corpus, and every regress-* crash file that
 * tests/fuzz/run.sh saved, as regression tests in `make unit` with the
 * normal compiler and flags.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef FUZZ_CORPUS_DIR
#define FUZZ_CORPUS_DIR "."
#endif

#define FUZZ_MAX_FILE (4u << 20)   /* larger than any corpus file we keep */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Read path whole (at most FUZZ_MAX_FILE bytes) into a malloc'd buffer. */
static int read_file(const char *path, uint8_t **out, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	size_t n = 0;
	int rc = -1;

	if (!f)
		return -1;
	if (!(buf = malloc(FUZZ_MAX_FILE)))
		goto out;
	n = fread(buf, 1, FUZZ_MAX_FILE, f);
	if (ferror(f) || !feof(f))
		goto out;
	*out = buf;
	*len = n;
	buf = NULL;
	rc = 0;
out:
	free(buf);
	fclose(f);
	return rc;
}

/* Run one input in a child: 0 if it returned, -1 if it crashed. */
static int run_one(const char *path)
{
	uint8_t *data, *copy;
	size_t len;
	pid_t pid;
	int st;

	if (read_file(path, &data, &len)) {
		fprintf(stderr, "FAIL %s: cannot read\n", path);
		return -1;
	}
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		/* an exact-size copy, so ASan sees reads past the end */
		copy = malloc(len ? len : 1);
		if (!copy)
			_exit(3);
		memcpy(copy, data, len);
		LLVMFuzzerTestOneInput(copy, len);
		free(copy);
		free(data);
		_exit(0);
	}
	free(data);
	if (pid < 0 || waitpid(pid, &st, 0) != pid) {
		fprintf(stderr, "FAIL %s: cannot fork\n", path);
		return -1;
	}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFSIGNALED(st))
		fprintf(stderr, "FAIL %s: killed by signal %d\n", path, WTERMSIG(st));
	else
		fprintf(stderr, "FAIL %s: exit status %d\n", path, WEXITSTATUS(st));
	return -1;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : FUZZ_CORPUS_DIR;
	char **names = NULL, path[4096];
	size_t n = 0, cap = 0, i;
	unsigned passed = 0, failed = 0;
	struct dirent *de;
	struct stat sb;
	DIR *d = opendir(dir);

	if (!d) {
		fprintf(stderr, "cannot open corpus directory %s\n", dir);
		printf("0 passed, 1 failed\n");
		return 1;
	}
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **p = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);

			if (!p)
				abort();
			names = p;
		}
		if (!(names[n++] = strdup(de->d_name)))
			abort();
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof *names, by_name);
	for (i = 0; i < n; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
			if (run_one(path) == 0)
				passed++;
			else
				failed++;
		}
		free(names[i]);
	}
	free(names);
	if (passed + failed == 0) {
		fprintf(stderr, "corpus directory %s is empty\n", dir);
		failed = 1;
	}
	printf("corpus %s: %u inputs\n", dir, passed + failed);
	printf("%u passed, %u failed\n", passed, failed);
	return failed ? 1 : 0;
}
