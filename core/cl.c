/* cl.c - shared helpers: error text, time, UTF-8 validation. See cl.h. */
#include "cl.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <ctype.h>
#include <time.h>

const char *cl_strerror(int err)
{
	switch (err) {
	case CL_OK:        return "success";
	case CL_ENOMEM:    return "out of memory";
	case CL_EINVAL:    return "invalid argument";
	case CL_EDECODE:   return "malformed data";
	case CL_EVERSION:  return "unknown schema version";
	case CL_ETOOBIG:   return "size limit exceeded";
	case CL_EIO:       return "I/O error";
	case CL_ECONFLICT: return "the log changed meanwhile (conflict)";
	case CL_ENOSPC:    return "no space left on device";
	case CL_ECORRUPT:  return "stored data is corrupt";
	case CL_ENOTFOUND: return "not found";
	case CL_EEXIST:    return "already exists";
	case CL_EMAPFULL:  return "LMDB map full";
	case CL_ELOCKED:   return "data directory is locked";
	case CL_ESTATE:    return "event not valid in the current state";
	case CL_EEPOCH:    return "epoch mismatch";
	case CL_EUSAGE:    return "bad usage";
	}
	return "unknown error";
}

int64_t cl_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* two decimal digits of v (0..99) at p */
static void put2(char *p, unsigned v)
{
	p[0] = (char)('0' + v / 10);
	p[1] = (char)('0' + v % 10);
}

/*
 * The date part "YYYY-MM-DDT" is the same for a whole day, and events come
 * in time order, so it is kept per thread for the last day formatted: only a
 * new day pays for gmtime_r; the rest is plain arithmetic.
 */
void cl_iso_time(int64_t us, char *out)
{
	static _Thread_local int64_t cached_day = INT64_MIN;
	static _Thread_local char cached_date[12]; /* "YYYY-MM-DDT" + NUL */
	int64_t secs = us / 1000000, frac = us % 1000000, day, sod;

	if (frac < 0) {
		frac += 1000000;
		secs -= 1;
	}
	day = secs / 86400;
	sod = secs % 86400;
	if (sod < 0) {
		sod += 86400;
		day -= 1;
	}
	if (day != cached_day) {
		time_t t = (time_t)(day * 86400);
		struct tm tm;

		if (!gmtime_r(&t, &tm) || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0) {
			snprintf(out, CL_ISO_LEN + 1, "0000-00-00T00:00:00.000000Z");
			return;
		}
		/* always four year digits: strftime's %Y, used before, wrote
		 * years before 1000 unpadded and broke the fixed width */
		put2(cached_date, (unsigned)(tm.tm_year + 1900) / 100);
		put2(cached_date + 2, (unsigned)(tm.tm_year + 1900) % 100);
		cached_date[4] = '-';
		put2(cached_date + 5, (unsigned)(tm.tm_mon + 1));
		cached_date[7] = '-';
		put2(cached_date + 8, (unsigned)tm.tm_mday);
		cached_date[10] = 'T';
		cached_date[11] = '\0';
		cached_day = day;
	}
	/* "YYYY-MM-DDT" "HH:MM:SS" ".ffffffZ" */
	memcpy(out, cached_date, 11);
	put2(out + 11, (unsigned)(sod / 3600));
	out[13] = ':';
	put2(out + 14, (unsigned)(sod / 60 % 60));
	out[16] = ':';
	put2(out + 17, (unsigned)(sod % 60));
	out[19] = '.';
	for (int i = 25; i >= 20; i--) {
		out[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	out[26] = 'Z';
	out[27] = '\0';
}

static int digits(const char **s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*s)[i] < '0' || (*s)[i] > '9')
			return -1;
		v = v * 10 + ((*s)[i] - '0');
	}
	*s += n;
	*out = v;
	return 0;
}

static int days_in_month(int y, int mo)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return mo == 2 && leap ? 29 : days[mo - 1];
}

/*
 * Every field is checked against the calendar before timegm, which would
 * otherwise roll an impossible date over ("2026-02-30" to March 2) and take
 * any offset ("+99:99"): a filter with a date that does not exist is an
 * error, never a different date. Offsets are -23:59..+23:59 (RFC 3339);
 * second 60 is a leap second.
 */
int cl_parse_iso(const char *s, int64_t *us)
{
	int y, mo, d, h = 0, mi = 0, sec = 0;
	int64_t frac = 0, off = 0;
	struct tm tm;

	if (digits(&s, 4, &y) || *s++ != '-' || digits(&s, 2, &mo) || *s++ != '-' ||
	    digits(&s, 2, &d))
		return CL_EDECODE;
	if (*s == 'T' || *s == ' ') {
		s++;
		if (digits(&s, 2, &h) || *s++ != ':' || digits(&s, 2, &mi))
			return CL_EDECODE;
		if (*s == ':') {
			s++;
			if (digits(&s, 2, &sec))
				return CL_EDECODE;
			if (*s == '.') {
				int n = 0;

				s++;
				while (*s >= '0' && *s <= '9') {
					if (n < 6) {
						frac = frac * 10 + (*s - '0');
						n++;
					}
					s++;
				}
				if (n == 0)
					return CL_EDECODE;
				while (n++ < 6)
					frac *= 10;
			}
		}
		if (*s == 'Z') {
			s++;
		} else if (*s == '+' || *s == '-') {
			int sign = *s++ == '-' ? -1 : 1, oh, om;

			if (digits(&s, 2, &oh))
				return CL_EDECODE;
			if (*s == ':')
				s++;
			if (digits(&s, 2, &om) || oh > 23 || om > 59)
				return CL_EDECODE;
			off = sign * ((int64_t)oh * 3600 + om * 60);
		}
	}
	if (*s)
		return CL_EDECODE;
	if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
	    sec > 60)
		return CL_EDECODE;
	memset(&tm, 0, sizeof tm);
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	*us = ((int64_t)timegm(&tm) - off) * 1000000 + frac;
	return 0;
}

int cl_utf8_valid(const char *p, size_t n)
{
	const unsigned char *s = (const unsigned char *)p;
	size_t i = 0;

	while (i < n) {
		unsigned c;
		size_t len;
		uint32_t cp;

		/* fast path: 8 bytes at a time while they are ASCII and not NUL
		 * (high bit clear in each, and no zero byte: the exact
		 * (w - 0x01..) & ~w & 0x80.. test) */
		while (n - i >= 8) {
			uint64_t w;

			memcpy(&w, s + i, 8);
			if (((w & 0x8080808080808080ULL) |
			     ((w - 0x0101010101010101ULL) & ~w & 0x8080808080808080ULL)) != 0)
				break;
			i += 8;
		}
		if (i >= n)
			break;
		c = s[i];

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			len = 2;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			len = 3;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			len = 4;
			cp = c & 0x07;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}

int cl_name_chars_ok(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return 0;
	}
	return 1;
}

int cl_name_ok(const char *p, size_t n)
{
	size_t dots = 0;

	if (n < 1 || n > CL_MAX_NAME || !p || !cl_name_chars_ok(p, n) || p[0] == '-')
		return 0;
	while (dots < n && p[dots] == '.')
		dots++;
	return dots < n;
}

int cl_display_hazard(const char *p, size_t n, uint32_t *cp, size_t *len)
{
	const unsigned char *s = (const unsigned char *)p;
	uint32_t c;

	if (n < 1)
		return 0;
	if (s[0] < 0x20 || s[0] == 0x7f) {
		*cp = s[0];
		*len = 1;
		return 1;
	}
	if (s[0] == 0xc2 && n >= 2 && s[1] >= 0x80 && s[1] <= 0x9f) {
		*cp = s[1];
		*len = 2;
		return 1;
	}
	if (s[0] == 0xd8 && n >= 2 && s[1] == 0x9c) {
		*cp = 0x61c;
		*len = 2;
		return 1;
	}
	if (s[0] != 0xe2 || n < 3 || (s[1] != 0x80 && s[1] != 0x81) || (s[2] & 0xc0) != 0x80)
		return 0;
	c = 0x2000 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
	if (c == 0x200e || c == 0x200f || (c >= 0x2028 && c <= 0x202e) ||
	    (c >= 0x2066 && c <= 0x2069)) {
		*cp = c;
		*len = 3;
		return 1;
	}
	return 0;
}

int cl_ct_equal(const void *a, const void *b, size_t n)
{
	const volatile unsigned char *x = a, *y = b;
	unsigned char acc = 0;

	for (size_t i = 0; i < n; i++)
		acc |= x[i] ^ y[i];
	return acc == 0;
}

/* ---- webhook URLs ---------------------------------------------------- */

static int cl_url_scheme(const char *p, size_t n, const char *scheme)
{
	size_t k = strlen(scheme);

	return n >= k && strncasecmp(p, scheme, k) == 0;
}

const char *cl_url_check(const char *p, size_t n)
{
	size_t i, start, end;
	unsigned long port = 0;

	if (n == 0)
		return "the URL is empty";
	if (n > CL_MAX_URL)
		return "the URL is longer than 2048 bytes";
	for (i = 0; i < n; i++)
		if ((unsigned char)p[i] <= 0x20 || (unsigned char)p[i] >= 0x7f)
			return "the URL may hold only printable ASCII, without spaces "
			       "(percent-encode the rest)";
	if (cl_url_scheme(p, n, "https://"))
		start = 8;
	else if (cl_url_scheme(p, n, "http://"))
		start = 7;
	else
		return "the URL must start with http:// or https://";
	for (end = start; end < n && p[end] != '/' && p[end] != '?' && p[end] != '#'; end++)
		if (p[end] == '@')
			return "the URL must not carry a user name or password (they would "
			       "be written to the log)";
	if (memchr(p, '#', n))
		return "the URL must not have a #fragment";
	i = start;
	if (i < end && p[i] == '[') {            /* [IPv6] */
		while (i < end && p[i] != ']') {
			if (i > start && !isxdigit((unsigned char)p[i]) && p[i] != ':' &&
			    p[i] != '.')
				return "the URL's [IPv6] host is not an address";
			i++;
		}
		if (i >= end || i == start + 1)
			return "the URL's [IPv6] host is not an address";
		i++;
	} else {
		size_t h = i;

		while (i < end && p[i] != ':') {
			if (!isalnum((unsigned char)p[i]) && p[i] != '-' && p[i] != '.' &&
			    p[i] != '_')
				return "the URL's host may hold only letters, digits, '-', '_' "
				       "and '.'";
			i++;
		}
		if (i == h)
			return "the URL has no host";
	}
	if (i < end) {
		if (p[i] != ':' || i + 1 == end || end - i - 1 > 5)
			return "the URL's port must be a number from 1 to 65535";
		for (i++; i < end; i++) {
			if (!isdigit((unsigned char)p[i]))
				return "the URL's port must be a number from 1 to 65535";
			port = port * 10 + (unsigned long)(p[i] - '0');
		}
		if (port < 1 || port > 65535)
			return "the URL's port must be a number from 1 to 65535";
	}
	return NULL;
}
