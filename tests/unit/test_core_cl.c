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

/* Dates that do not exist are refused, not rolled over by timegm. */
static void t_iso_impossible(void)
{
	static const char *const bad[] = {
		"2026-02-29", "2026-02-30", "2026-02-31", "2026-04-31", "2026-06-31",
		"2026-09-31", "2026-11-31", "1900-02-29", "2100-02-29", "2026-00-10",
		"2026-01-00", "2026-01-32", "2026-11-27T24:00", "2026-11-27T10:60",
		"2026-11-27T10:02:61", "2026-11-27T10:02:03+99:99", "2026-11-27T10:02:03+24:00",
		"2026-11-27T10:02:03-12:60", "2026-11-27T10:02:03+0960",
	};
	static const char *const good[] = {
		"2024-02-29", "2000-02-29", "2026-01-31", "2026-12-31", "2026-04-30",
		"2026-11-27T23:59:60Z", "2026-11-27T10:02:03+23:59", "2026-11-27T10:02:03-14:00",
		"2026-11-27T10:02:03+0530",
	};
	int64_t a, b;

	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int rc = cl_parse_iso(bad[i], &a);

		if (rc != CL_EDECODE)
			fprintf(stderr, "  accepted %s\n", bad[i]);
		CHECK_EQ_INT(rc, CL_EDECODE);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int rc = cl_parse_iso(good[i], &a);

		if (rc != 0)
			fprintf(stderr, "  refused %s\n", good[i]);
		CHECK_EQ_INT(rc, 0);
	}
	CHECK(cl_parse_iso("2024-02-29", &a) == 0 && cl_parse_iso("2024-03-01", &b) == 0);
	CHECK_EQ_INT(b - a, 86400LL * 1000000);
	CHECK(cl_parse_iso("2026-11-27T10:02:03+05:30", &a) == 0);
	CHECK(cl_parse_iso("2026-11-27T04:32:03Z", &b) == 0);
	CHECK_EQ_INT(a, b);
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
	/* what old logs may hold: the characters only */
	CHECK(cl_name_chars_ok("--help", 6));
	CHECK(cl_name_chars_ok("..", 2));
}

static void t_name_new(void)
{
	static const char *const ok[] = { "alice", "a", "alice.b_c-9", "a-", "_x", ".hidden",
					  "..a", "a..", "0", "9-9", "x.y.z" };
	static const char *const bad[] = { "", "-", "--help", "-x", "-.", ".", "..", "...",
					   "a b", "a/b", "caf\xc3\xa9", "\xe2\x80\xae" "abc" };
	char longest[CL_MAX_NAME + 1];

	for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
		if (!cl_name_ok(ok[i], strlen(ok[i])))
			fprintf(stderr, "  refused '%s'\n", ok[i]);
		CHECK(cl_name_ok(ok[i], strlen(ok[i])));
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		if (cl_name_ok(bad[i], strlen(bad[i])))
			fprintf(stderr, "  accepted '%s'\n", bad[i]);
		CHECK(!cl_name_ok(bad[i], strlen(bad[i])));
	}
	memset(longest, 'n', sizeof longest);
	CHECK(cl_name_ok(longest, CL_MAX_NAME));
	CHECK(!cl_name_ok(longest, CL_MAX_NAME + 1));
	CHECK(!cl_name_ok(NULL, 0));
}

static void t_display_hazard(void)
{
	static const struct { const char *s; uint32_t cp; size_t len; } yes[] = {
		{ "\x1b[31m", 0x1b, 1 }, { "\x7f", 0x7f, 1 }, { "\n", 0x0a, 1 },
		{ "\xc2\x80", 0x80, 2 }, { "\xc2\x9b" "2J", 0x9b, 2 }, { "\xc2\x9f", 0x9f, 2 },
		{ "\xd8\x9c", 0x61c, 2 }, { "\xe2\x80\x8e", 0x200e, 3 },
		{ "\xe2\x80\x8f", 0x200f, 3 }, { "\xe2\x80\xa8", 0x2028, 3 },
		{ "\xe2\x80\xa9", 0x2029, 3 }, { "\xe2\x80\xaa", 0x202a, 3 },
		{ "\xe2\x80\xae" "evil", 0x202e, 3 }, { "\xe2\x81\xa6", 0x2066, 3 },
		{ "\xe2\x81\xa9", 0x2069, 3 },
	};
	static const char *const no[] = {
		"a", " ", "~", "\xc2\xa0" /* NBSP */, "\xc3\xa9", "\xc2\x7f", "\xe2\x80\x8d" /* ZWJ */,
		"\xe2\x80\x94" /* em dash */, "\xe2\x80\xaf", "\xe2\x81\xa5", "\xe2\x81\xaa",
		"\xd8\x9b", "\xe2\x82\xac" /* euro */, "\xf0\x9f\x98\x80",
	};
	uint32_t cp;
	size_t len;

	for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
		cp = 0;
		len = 0;
		CHECK_EQ_INT(cl_display_hazard(yes[i].s, strlen(yes[i].s) ? strlen(yes[i].s) : 1,
					       &cp, &len), 1);
		CHECK_EQ_INT(cp, yes[i].cp);
		CHECK_EQ_INT(len, yes[i].len);
	}
	for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
		CHECK_EQ_INT(cl_display_hazard(no[i], strlen(no[i]), &cp, &len), 0);
	CHECK_EQ_INT(cl_display_hazard("\0", 1, &cp, &len), 1);
	CHECK_EQ_INT(cl_display_hazard("\xe2\x80", 2, &cp, &len), 0);   /* cut short */
	CHECK_EQ_INT(cl_display_hazard("", 0, &cp, &len), 0);
}

static void t_strerror(void)
{
	CHECK(strcmp(cl_strerror(CL_ECONFLICT), "unknown error") != 0);
	CHECK(strcmp(cl_strerror(-999), "unknown error") == 0);
}

/* cl_url_check: what a webhook may be posted to. */
static void t_url_check(void)
{
	static const char *const good[] = {
		"http://a", "https://hooks.slack.com/services/T0/B0/xyz", "HTTPS://Example.COM:443/p?q=1&r",
		"http://127.0.0.1:8080/hook", "http://[::1]:9/x", "http://[fe80::1]/", "http://a_b-c.d/",
		"http://a?x", NULL };
	static const char *const bad[] = {
		"", "ftp://a/", "http:/a", "http://", "http:///x", "http://:80/", "http://a:/",
		"http://a:0/", "http://a:65536/", "http://a:123456/", "http://a:8o/", "http://u@a/",
		"http://u:p@a/", "http://a/#f", "http://a b/", "http://a/\x7f", "http://a/\xc3\xa9",
		"http://[]/", "http://[::1/", "http://[g::1]/", "http://a!b/", "javascript:alert(1)",
		NULL };
	char longer[CL_MAX_URL + 2];

	for (int i = 0; good[i]; i++) {
		const char *why = cl_url_check(good[i], strlen(good[i]));

		if (why)
			fprintf(stderr, "  %s: %s\n", good[i], why);
		CHECK(why == NULL);
	}
	for (int i = 0; bad[i]; i++) {
		const char *why = cl_url_check(bad[i], strlen(bad[i]));

		if (!why)
			fprintf(stderr, "  accepted: %s\n", bad[i]);
		CHECK(why != NULL);
	}
	memset(longer, 'a', sizeof longer);
	memcpy(longer, "http://h/", 9);
	CHECK(cl_url_check(longer, CL_MAX_URL) == NULL);
	CHECK(cl_url_check(longer, CL_MAX_URL + 1) != NULL);
	/* an embedded NUL is refused, not cut */
	CHECK(cl_url_check("http://a/\0b", 11) != NULL);
}

int main(void)
{
	RUN(t_iso_roundtrip);
	RUN(t_iso_forms);
	RUN(t_iso_impossible);
	RUN(t_utf8);
	RUN(t_ct_equal);
	RUN(t_name_chars);
	RUN(t_name_new);
	RUN(t_display_hazard);
	RUN(t_strerror);
	RUN(t_url_check);
	return harness_done();
}
