/*
 * cl.h - what every changelogd module shares: the one error space, a
 * borrowed string slice, the domain limits, and time helpers.
 *
 * Conventions (docs/architecture.md, "Errors"): functions return int, 0 on
 * success and a negative CL_E* code on failure; results travel through
 * out-params. Lower layers never log; the layer that decides (refuse,
 * close, exit) does.
 */
#ifndef CL_H
#define CL_H

#include <assert.h>
#include <stddef.h>
#include <stdint.h>

/* One error space for core, store, net, replay and tools. */
enum cl_err {
	CL_OK        = 0,
	CL_ENOMEM    = -1,  /* allocation failed */
	CL_EINVAL    = -2,  /* bad argument from the caller (a bug, not input) */
	CL_EDECODE   = -3,  /* malformed encoding (msgpack, JSON, envelope) */
	CL_EVERSION  = -4,  /* unknown schema version, no upcaster */
	CL_ETOOBIG   = -5,  /* a size limit was exceeded */
	CL_EIO       = -6,  /* I/O or LMDB failure not covered below */
	CL_ECONFLICT = -7,  /* append-if-unchanged: someone appended meanwhile */
	CL_ENOSPC    = -8,  /* the disk is full */
	CL_ECORRUPT  = -9,  /* stored data fails a check (hash, gap, meta) */
	CL_ENOTFOUND = -10, /* no such thing */
	CL_EEXIST    = -11, /* already exists (e.g. command id already applied) */
	CL_EMAPFULL  = -12, /* LMDB map full; abort, and the next begin grows it */
	CL_ELOCKED   = -13, /* data directory locked / in use in a refusing way */
	CL_ESTATE    = -14, /* event not valid against the projection state */
	CL_EEPOCH    = -15, /* epoch mismatch */
	CL_EUSAGE    = -16, /* bad command line */
};

/* Static English text for a CL_E* code; never NULL. */
const char *cl_strerror(int err);

/* A borrowed byte string: not NUL-terminated, lifetime set by its owner. */
struct cl_str {
	const char *p;
	size_t n;
};

#define CL_STR(s) ((struct cl_str){ (s), sizeof(s) - 1 })

/* Domain limits, documented in docs/events.md. Bytes of UTF-8. */
#define CL_MAX_NAME        64      /* user name: 1..64, [A-Za-z0-9._-] */
#define CL_MAX_TITLE       300     /* entry title: 1..300 */
#define CL_MAX_BODY        32768   /* entry body: 0..32768 */
#define CL_MAX_COMMENT     16384   /* comment body: 1..16384 */
#define CL_MAX_CMD_ID      128     /* client command id: 1..128 */
#define CL_MAX_LABEL       64      /* token label: 0..64 */
#define CL_MAX_DEPTH       32      /* comment thread depth (top level = 0) */
#define CL_MAX_URL         2048    /* webhook URL: 1..2048, http(s), see cl_url_check */
#define CL_MAX_TYPES       512     /* webhook.created types list: 0..512 */
#define CL_MAX_WEBHOOKS    16      /* webhook endpoints configured at once */
#define CL_MAX_EVENT       (256 * 1024) /* encoded event value */

/* Wall clock in microseconds since the Unix epoch. */
int64_t cl_now_us(void);

/*
 * Format a µs timestamp as ISO-8601 UTC with microseconds,
 * "2026-11-27T10:02:03.123456Z". out must hold CL_ISO_LEN + 1 bytes.
 */
#define CL_ISO_LEN 27
void cl_iso_time(int64_t us, char *out);

/* Parse ISO-8601 ("2026-11-27", "2026-11-27T10:02", "...:03Z",
 * "...:03.5+02:00") to µs. Returns 0 or CL_EDECODE, also for a date or
 * time that does not exist (2026-02-30, 24:00, an offset past ±23:59). */
int cl_parse_iso(const char *s, int64_t *us);

/* 1 if p[0..n) is valid UTF-8 with no NUL and no overlong/surrogate forms. */
int cl_utf8_valid(const char *p, size_t n);

/*
 * The user-name rule, in two levels (docs/events.md):
 *  - cl_name_chars_ok: 1 if every one of the n bytes at p is a user-name
 *    character ([A-Za-z0-9._-]); lengths are the caller's to check. What a
 *    stored event may hold: the decoder and the projection accept exactly
 *    this, so logs written before the rule below still decode and replay.
 *  - cl_name_ok: 1 if p[0..n) may name a NEW user: 1..CL_MAX_NAME
 *    name characters, not starting with '-' (it would read as an option
 *    on a command line: "--help", "-") and not made only of dots (".",
 *    ".." read as paths). createUser, changelog-admin init and the
 *    server's bootstrap admin use it.
 */
int cl_name_chars_ok(const char *p, size_t n);
int cl_name_ok(const char *p, size_t n);

/*
 * Characters that must not reach a terminal or a page as they are: C0
 * controls and DEL (U+0000-U+001F, U+007F), C1 controls (U+0080-U+009F,
 * which terminals may obey as escape sequences), and the invisible marks
 * that reorder or break displayed text: the bidi marks, embeddings,
 * overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069) and the line / paragraph separators (U+2028, U+2029).
 * If p[0..n) (n >= 1) starts with one, returns 1 with its code point in
 * *cp and its byte length in *len; otherwise 0. Display code shows them
 * escaped (changelog-audit: docs/operations.md).
 */
int cl_display_hazard(const char *p, size_t n, uint32_t *cp, size_t *len);

/* Constant-time equality of two n-byte buffers: 1 equal, 0 not. */
int cl_ct_equal(const void *a, const void *b, size_t n);

/*
 * Is p[0..n) a URL a webhook may be sent to? NULL if so, else a sentence
 * saying why not. Accepted: "http://" or "https://" (any case), a host
 * (a name, an IPv4 address or a [bracketed] IPv6 address) with an optional
 * ":port" (1..65535), then an optional path and query; at most CL_MAX_URL
 * bytes of printable ASCII. Refused besides: user info ("user:pass@":
 * credentials would be written to the log) and a "#fragment" (never sent).
 */
const char *cl_url_check(const char *p, size_t n);

/*
 * An invariant that is cheap to check (a ring cursor, a cache key, seq
 * continuity): aborts with the expression when it does not hold. On in
 * every build that does not define NDEBUG, which no Makefile build does.
 */
#define CL_ASSERT(cond) assert(cond)

#endif
