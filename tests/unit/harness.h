/*
 * harness.h - the unit-test harness. One test binary per module file
 * (tests/unit/test_evlog.c tests store/evlog.c). Each binary runs its TESTs
 * and ends with "N passed, N failed" alone on a line; tests/run-unit.sh sums
 * them and prints the total the same way.
 *
 *   static void t_roundtrip(void) { CHECK(x == 1); CHECK_EQ_INT(rc, 0); }
 *   int main(void) { RUN(t_roundtrip); return harness_done(); }
 *
 * A test passes if none of its CHECKs failed. CHECK does not abort the test;
 * REQUIRE does (returns from the test function).
 */
#ifndef CL_HARNESS_H
#define CL_HARNESS_H

#include <stdio.h>
#include <string.h>

extern int harness_failed_checks;
extern int harness_passed, harness_failed;

void harness_fail(const char *file, int line, const char *expr);
void harness_run(const char *name, void (*fn)(void));
int harness_done(void);
/* A fresh empty temp directory (removed at exit unless KEEP_TMP is set). */
const char *harness_tmpdir(void);

#define CHECK(c) \
	do { if (!(c)) harness_fail(__FILE__, __LINE__, #c); } while (0)
#define REQUIRE(c) \
	do { if (!(c)) { harness_fail(__FILE__, __LINE__, #c); return; } } while (0)
#define CHECK_EQ_INT(a, b) \
	do { long long a_ = (long long)(a), b_ = (long long)(b); \
	     if (a_ != b_) { fprintf(stderr, "  %lld != %lld\n", a_, b_); \
	                     harness_fail(__FILE__, __LINE__, #a " == " #b); } } while (0)
#define RUN(fn) harness_run(#fn, fn)

#endif
