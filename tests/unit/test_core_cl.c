/* test_core_cl.c - core/cl.c: time formatting and parsing, UTF-8, ct compare. */
#include "harness.h"
#include "../../core/cl.h"

static void t_iso_roundtrip(void)
{
	char buf[CL_ISO_LEN + 1];
	int64_t us = 1795773723123456LL, back = 0;

	cl_iso_time(us, buf);
	CHECK(strlen(buf) == CL_ISO_LEN);
	CHECK(cl_parse_iso(buf, &back) == 0);
	CHECK_EQ_INT(back, us);
	cl_iso_time(0, buf);
	CHECK(strcmp(buf, "1970-01-01T00:00:00.000000Z") == 0);
}

static void t_iso_forms(void)
{
	int64_t a, b;

	CHECK(cl_parse_iso("2026-11-27", &a) == 0);
	CHECK(cl_parse_iso("2026-11-27T00:00:00Z", &b) == 0);
	CHECK_EQ_INT(a, b);
	CHECK(cl_parse_iso("2026-11-27T02:00:00+02:00", &b) == 0);
	CHECK_EQ_INT(a, b);
	CHECK(cl_parse_iso("2026-11-27T10:02", &a) == 0);
	CHECK(cl_parse_iso("2026-13-01", &a) == CL_EDECODE);
	CHECK(cl_parse_iso("yesterday", &a) == CL_EDECODE);
	CHECK(cl_parse_iso("2026-11-27T10:02:03.", &a) == CL_EDECODE);
	CHECK(cl_parse_iso("2026-11-27x", &a) == CL_EDECODE);
}

static void t_utf8(void)
{
	CHECK(cl_utf8_valid("hello", 5));
	CHECK(cl_utf8_valid("caf\xc3\xa9", 5));
	CHECK(cl_utf8_valid("\xf0\x9f\x98\x80", 4));
	CHECK(!cl_utf8_valid("\xc3", 1));            /* truncated */
	CHECK(!cl_utf8_valid("\xc0\xaf", 2));        /* overlong */
	CHECK(!cl_utf8_valid("\xed\xa0\x80", 3));    /* surrogate */
	CHECK(!cl_utf8_valid("a\0b", 3));            /* NUL */
	CHECK(!cl_utf8_valid("\xff", 1));
	CHECK(!cl_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
}

static void t_ct_equal(void)
{
	CHECK(cl_ct_equal("abcd", "abcd", 4));
	CHECK(!cl_ct_equal("abcd", "abce", 4));
	CHECK(cl_ct_equal("", "", 0));
}

static void t_name_chars(void)
{
	CHECK(cl_name_chars_ok("alice.b_c-9", 11));
	CHECK(cl_name_chars_ok("", 0));
	CHECK(!cl_name_chars_ok("a b", 3));
	CHECK(!cl_name_chars_ok("caf\xc3\xa9", 5));
	CHECK(!cl_name_chars_ok("a/b", 3));
	CHECK(!cl_name_chars_ok("a\0b", 3));
}

static void t_strerror(void)
{
	CHECK(strcmp(cl_strerror(CL_ECONFLICT), "unknown error") != 0);
	CHECK(strcmp(cl_strerror(-999), "unknown error") == 0);
}

int main(void)
{
	RUN(t_iso_roundtrip);
	RUN(t_iso_forms);
	RUN(t_utf8);
	RUN(t_ct_equal);
	RUN(t_name_chars);
	RUN(t_strerror);
	return harness_done();
}
