/* test_tools_progress.c - tools/cli/progress.c: formatting, throttling, silence off a TTY. */
#include "harness.h"
#include "../../tools/cli/progress.h"

#include <stdlib.h>

static void t_format(void)
{
	struct progress p;
	char line[160];

	progress_init(&p, stderr, "verify", 200, 1);
	progress_format(&p, 50, p.start_us + 1500000, line, sizeof line);
	CHECK(strcmp(line, "verify [#######.......................]  25% 50/200 1.5s") == 0);
	progress_format(&p, 200, p.start_us, line, sizeof line);
	CHECK(strstr(line, "100% 200/200") != NULL);
	CHECK(strstr(line, "[##############################]") != NULL);
	progress_format(&p, 500, p.start_us, line, sizeof line);  /* clamped */
	CHECK(strstr(line, "100% 200/200") != NULL);
}

static void t_zero_total(void)
{
	struct progress p;
	char line[160];

	progress_init(&p, stderr, "x", 0, 1);
	progress_format(&p, 0, p.start_us, line, sizeof line);
	CHECK(strstr(line, "0% 0/0") != NULL);
}

/* Not a TTY: nothing is ever written, whatever the size. */
static void t_silent_off_tty(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct progress p;

	REQUIRE(f != NULL);
	progress_init(&p, f, "verify", 10000000, 0);
	CHECK(p.active == 0);
	for (uint64_t i = 1; i <= 100000; i++)
		progress_update(&p, i);
	progress_done(&p);
	fclose(f);
	CHECK_EQ_INT(len, 0);
	free(buf);
}

/* Forced: draws with "\r", throttled, and erases the line at the end. */
static void t_forced_draws_and_clears(void)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	struct progress p;
	int lines = 0;

	REQUIRE(f != NULL);
	progress_init(&p, f, "verify", 100000, 1);
	for (uint64_t i = 1; i <= 100000; i++)
		progress_update(&p, i);
	progress_done(&p);
	fclose(f);
	REQUIRE(buf != NULL);
	for (size_t i = 0; i < len; i++)
		lines += buf[i] == '\r';
	/* the final 100% and the erase at least; throttled well below 100000/4096 + 2 */
	CHECK(lines >= 2);
	CHECK(lines <= 100000 / 4096 + 2);
	CHECK(strstr(buf, "100% 100000/100000") != NULL);
	CHECK(len >= 4 && memcmp(buf + len - 4, "\r\033[K", 4) == 0);
	free(buf);
}

int main(void)
{
	RUN(t_format);
	RUN(t_zero_total);
	RUN(t_silent_off_tty);
	RUN(t_forced_draws_and_clears);
	return harness_done();
}
