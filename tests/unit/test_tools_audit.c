/*
 * test_tools_audit.c - tools/audit.c: verify on clean and tampered logs
 * (the tampering is done with LMDB directly, as an attacker or a bad disk
 * would), history filters and formats, summaries, stats.
 */
#include "harness.h"
#include "../../tools/admin.h"
#include "../../tools/audit.h"
#include "../../store/bootstrap.h"

#include <lmdb.h>
#include <openssl/evp.h>
#include <stdlib.h>

#define SEED_EVENTS 300

/* A log with a bootstrap admin and a deterministic workload. */
static const char *make_log(uint64_t events, uint64_t *last)
{
	const char *dir = harness_tmpdir();
	char token[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	uint64_t appended = 0;
	struct admin a;

	*last = 0;
	setenv("CHANGELOG_FAKE_TIME", "2026-11-27T10:00:00Z", 1);
	if (admin_init(dir, "root", token, err) != 0) {
		fprintf(stderr, "init: %s\n", err);
		return dir;
	}
	if (events && admin_open(&a, dir, 0, err) == 0) {
		if (admin_seed(&a, events, 7, 64, &appended, err) != 0)
			fprintf(stderr, "seed: %s\n", err);
		*last = proj_seq(a.proj);
		admin_close(&a);
	} else {
		*last = 2;
	}
	return dir;
}

static int verify_dir(const char *dir, struct audit_summary *sum, struct audit_fault *f)
{
	struct evlog *log = NULL;
	int rc = evlog_open(&log, dir, EVLOG_RDONLY, 0);

	if (rc)
		return rc;
	rc = audit_verify(log, 0, sum, f);
	evlog_close(log);
	return rc;
}

/* ---- raw LMDB access for tampering ------------------------------------- */

struct raw {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi events, meta;
};

static int raw_open(struct raw *r, const char *dir)
{
	memset(r, 0, sizeof *r);
	if (mdb_env_create(&r->env) || mdb_env_set_maxdbs(r->env, 4) ||
	    mdb_env_set_mapsize(r->env, (size_t)1 << 30) || mdb_env_open(r->env, dir, 0, 0600) ||
	    mdb_txn_begin(r->env, NULL, 0, &r->txn) ||
	    mdb_dbi_open(r->txn, "events", 0, &r->events) ||
	    mdb_dbi_open(r->txn, "meta", 0, &r->meta))
		return -1;
	return 0;
}

static int raw_commit(struct raw *r)
{
	int rc = mdb_txn_commit(r->txn);

	mdb_env_close(r->env);
	return rc;
}

static void be64(uint8_t *k, uint64_t v)
{
	for (int i = 7; i >= 0; i--, v >>= 8)
		k[i] = (uint8_t)v;
}

/* Copy of the value at seq into buf; its length, or 0. */
static size_t raw_get(struct raw *r, uint64_t seq, uint8_t *buf, size_t cap)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;

	be64(kb, seq);
	if (mdb_get(r->txn, r->events, &k, &v) || v.mv_size > cap)
		return 0;
	memcpy(buf, v.mv_data, v.mv_size);
	return v.mv_size;
}

static int raw_put(struct raw *r, uint64_t seq, const uint8_t *val, size_t len)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { len, (void *)val };

	be64(kb, seq);
	return mdb_put(r->txn, r->events, &k, &v, 0);
}

static int raw_del(struct raw *r, uint64_t seq)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb };

	be64(kb, seq);
	return mdb_del(r->txn, r->events, &k, NULL);
}

static int raw_meta_put(struct raw *r, const char *key, const void *p, size_t n)
{
	MDB_val k = { strlen(key), (void *)key }, v = { n, (void *)p };

	return mdb_put(r->txn, r->meta, &k, &v, 0);
}

/* Find the first event of a type (decoding a copy of each value). */
static uint64_t find_type(const char *dir, int type, uint64_t after)
{
	struct evlog *log = NULL;
	struct evlog_iter *it = NULL;
	struct event ev;
	uint64_t found = 0;

	if (evlog_open(&log, dir, EVLOG_RDONLY, 0) || evlog_iter_new(log, 1, &it)) {
		evlog_close(log);
		return 0;
	}
	while (!found && evlog_iter_next_event(it, &ev) == 1)
		if ((int)ev.type == type && ev.seq > after)
			found = ev.seq;
	evlog_iter_free(it);
	evlog_close(log);
	return found;
}

/* The first open -> resolved status change. */
static uint64_t find_resolve(const char *dir)
{
	struct evlog *log = NULL;
	struct evlog_iter *it = NULL;
	struct event ev;
	uint64_t found = 0;

	if (evlog_open(&log, dir, EVLOG_RDONLY, 0) || evlog_iter_new(log, 1, &it)) {
		evlog_close(log);
		return 0;
	}
	while (!found && evlog_iter_next_event(it, &ev) == 1)
		if (ev.type == EV_ENTRY_STATUS_SET && ev.status_from == ST_OPEN &&
		    ev.status_to == ST_RESOLVED)
			found = ev.seq;
	evlog_iter_free(it);
	evlog_close(log);
	return found;
}

/* ---- verify ------------------------------------------------------------ */

static void t_verify_clean(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	struct audit_summary sum;
	struct audit_fault f;
	char line[600];

	REQUIRE(last >= SEED_EVENTS);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), 0);
	CHECK_EQ_INT(sum.events, last);
	CHECK(sum.users >= 5);
	CHECK(sum.entries >= 3);
	audit_summary_line(&sum, "abc", line, sizeof line);
	CHECK(strncmp(line, "ok: ", 4) == 0);
	CHECK(strstr(line, "epoch abc") != NULL);
}

static void t_verify_empty_log(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log = NULL;
	struct audit_summary sum;
	struct audit_fault f;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	evlog_close(log);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), 0);
	CHECK_EQ_INT(sum.events, 0);
}

/* One byte inside a string of seq s changes: decodes, but s's hash moved. */
static void t_changed_byte(void)
{
	uint64_t last, s;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t buf[CL_MAX_EVENT];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t len;
	uint8_t *p;

	s = find_type(dir, EV_ENTRY_CREATED, 20);
	REQUIRE(s > 0 && s < last);
	REQUIRE(raw_open(&r, dir) == 0);
	len = raw_get(&r, s, buf, sizeof buf);
	REQUIRE(len > 0);
	p = memmem(buf, len, "Seed:", 5);
	REQUIRE(p != NULL);
	p[0] = 'Z';                         /* "Zeed:": still valid UTF-8 */
	REQUIRE(raw_put(&r, s, buf, len) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, s);
	CHECK(strstr(f.what, "content changed") != NULL);
}

static void t_undecodable(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t buf[CL_MAX_EVENT];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t len;

	REQUIRE(raw_open(&r, dir) == 0);
	len = raw_get(&r, 40, buf, sizeof buf);
	REQUIRE(len > 10);
	buf[0] = 0xc1;                      /* never-used msgpack byte */
	REQUIRE(raw_put(&r, 40, buf, len) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, 40);
	CHECK(strstr(f.what, "does not decode") != NULL);
}

static void t_deleted(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;

	REQUIRE(raw_open(&r, dir) == 0);
	REQUIRE(raw_del(&r, 77) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, 77);
	CHECK(strstr(f.what, "missing (the next stored event is seq 78)") != NULL);
}

static void t_swapped(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t a[CL_MAX_EVENT], b[CL_MAX_EVENT];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t na, nb;

	REQUIRE(raw_open(&r, dir) == 0);
	na = raw_get(&r, 50, a, sizeof a);
	nb = raw_get(&r, 60, b, sizeof b);
	REQUIRE(na && nb);
	REQUIRE(raw_put(&r, 50, b, nb) == 0 && raw_put(&r, 60, a, na) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, 50);
	CHECK(strstr(f.what, "hash chain broken (prev_hash does not match seq 49)") != NULL);
}

static void t_adjacent_swap(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t a[CL_MAX_EVENT], b[CL_MAX_EVENT];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t na, nb;

	REQUIRE(raw_open(&r, dir) == 0);
	na = raw_get(&r, 90, a, sizeof a);
	nb = raw_get(&r, 91, b, sizeof b);
	REQUIRE(na && nb);
	REQUIRE(raw_put(&r, 90, b, nb) == 0 && raw_put(&r, 91, a, na) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, 90);
	CHECK(strstr(f.what, "hash chain broken") != NULL);
}

static void t_truncated(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;

	REQUIRE(raw_open(&r, dir) == 0);
	REQUIRE(raw_del(&r, last) == 0 && raw_del(&r, last - 1) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, last - 1);
	CHECK(strstr(f.what, "truncated") != NULL);
}

static void t_head_replaced(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	uint8_t head[EV_HASH_LEN];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;

	memset(head, 0xab, sizeof head);
	REQUIRE(raw_open(&r, dir) == 0);
	REQUIRE(raw_meta_put(&r, "head", head, sizeof head) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, last);
	CHECK(strstr(f.what, "meta head") != NULL);
}

/* The last event changed: no later prev_hash covers it, only meta head. */
static void t_last_event_changed(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t buf[CL_MAX_EVENT];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t len;
	uint8_t *p;

	REQUIRE(raw_open(&r, dir) == 0);
	len = raw_get(&r, last, buf, sizeof buf);
	REQUIRE(len > 0);
	/* bump the timestamp's low byte: "ts" is followed by int64 (0xd3) or uint64 (0xcf) */
	p = memmem(buf, len, "\xa2ts", 3);
	REQUIRE(p != NULL && p + 12 < buf + len);
	p[11] ^= 1;
	REQUIRE(raw_put(&r, last, buf, len) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, last);
}

static void t_beyond_meta(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t buf[CL_MAX_EVENT];
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t len;

	REQUIRE(raw_open(&r, dir) == 0);
	len = raw_get(&r, last, buf, sizeof buf);
	REQUIRE(len > 0 && raw_put(&r, last + 1, buf, len) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, last + 1);
	CHECK(strstr(f.what, "beyond the end") != NULL);
}

static void sha_chain(const uint8_t prev[32], uint64_t seq, const uint8_t *v, size_t n,
		      uint8_t out[32])
{
	uint8_t k[8];
	unsigned int len = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	be64(k, seq);
	EVP_DigestInit_ex(md, EVP_sha256(), NULL);
	EVP_DigestUpdate(md, prev, 32);
	EVP_DigestUpdate(md, k, 8);
	EVP_DigestUpdate(md, v, n);
	EVP_DigestFinal_ex(md, out, &len);
	EVP_MD_CTX_free(md);
}

/*
 * A forger who rewrites the whole chain after an edit passes the hash
 * checks; an edit that makes the history impossible is still caught by the
 * projection (open -> "reopened" is not a transition).
 */
static void t_rechained_forgery(void)
{
	uint64_t last, s;
	const char *dir = make_log(SEED_EVENTS, &last);
	static uint8_t buf[CL_MAX_EVENT];
	uint8_t h[32] = { 0 };
	struct audit_summary sum;
	struct audit_fault f;
	struct raw r;
	size_t len;
	uint8_t *p;

	s = find_resolve(dir);
	REQUIRE(s > 0);
	REQUIRE(raw_open(&r, dir) == 0);
	for (uint64_t q = 1; q <= last; q++) {
		len = raw_get(&r, q, buf, sizeof buf);
		REQUIRE(len > 34);
		memcpy(buf + len - 32, h, 32);  /* "ph" is the envelope's last field */
		if (q == s) {
			p = memmem(buf, len, "\xa2to\xa8resolved", 12);
			REQUIRE(p != NULL);
			memcpy(p + 4, "reopened", 8);
		}
		REQUIRE(raw_put(&r, q, buf, len) == 0);
		sha_chain(h, q, buf, len, h);
	}
	REQUIRE(raw_meta_put(&r, "head", h, 32) == 0);
	REQUIRE(raw_commit(&r) == 0);
	CHECK_EQ_INT(verify_dir(dir, &sum, &f), CL_ECORRUPT);
	CHECK_EQ_INT(f.seq, s);
	CHECK(strstr(f.what, "projection invariant broken") != NULL);
}

/* ---- log ----------------------------------------------------------------- */

static char *run_log(const char *dir, const struct audit_filter *flt, int format,
		     uint64_t *matched, int *rc)
{
	struct evlog *log = NULL;
	struct audit_fault f;
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);

	*rc = evlog_open(&log, dir, EVLOG_RDONLY, 0);
	if (*rc == 0)
		*rc = audit_log(log, flt, format, out, matched, &f);
	evlog_close(log);
	fclose(out);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; s && *s; s++)
		n += *s == '\n';
	return n;
}

static void t_log_filters(void)
{
	uint64_t last, matched = 0, all = 0;
	const char *dir = make_log(SEED_EVENTS, &last);
	struct audit_filter flt;
	char *out;
	int rc;

	memset(&flt, 0, sizeof flt);
	out = run_log(dir, &flt, AUDIT_TEXT, &all, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(all, last);
	CHECK_EQ_INT(count_lines(out), last);
	CHECK(strstr(out, "     1  ") == out);
	CHECK(strstr(out, "(system) created user root (admin)") != NULL);
	free(out);

	flt.from_seq = 10;
	flt.to_seq = 19;
	out = run_log(dir, &flt, AUDIT_TEXT, &matched, &rc);
	CHECK_EQ_INT(matched, 10);
	CHECK(strncmp(out, "    10  ", 8) == 0);
	free(out);

	memset(&flt, 0, sizeof flt);
	flt.entry = 1;
	out = run_log(dir, &flt, AUDIT_JSONL, &matched, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK(matched >= 1);
	for (char *line = out; line && *line;) {
		char *nl = strchr(line, '\n');
		json_error_t e;
		json_t *o;

		REQUIRE(nl != NULL);
		*nl = '\0';
		o = json_loads(line, 0, &e);
		CHECK(o != NULL);
		CHECK_EQ_INT(json_integer_value(json_object_get(o, "entry")), 1);
		CHECK(json_is_string(json_object_get(o, "actor_name")));
		json_decref(o);
		line = nl + 1;
	}
	free(out);

	memset(&flt, 0, sizeof flt);
	REQUIRE(audit_parse_types("comment", &flt.types) == 0);
	out = run_log(dir, &flt, AUDIT_CSV, &matched, &rc);
	CHECK(matched > 0);
	CHECK(strncmp(out, "seq,time,type,actor,entry,comment,summary\r\n", 43) == 0);
	CHECK(strstr(out, ",entry.created,") == NULL);
	CHECK(strstr(out, ",comment.added,") != NULL);
	free(out);

	memset(&flt, 0, sizeof flt);
	flt.user = "root";
	out = run_log(dir, &flt, AUDIT_TEXT, &matched, &rc);
	CHECK_EQ_INT(rc, 0);
	CHECK(matched >= 2);  /* created by the system, about root */
	free(out);

	flt.user = "nobody";
	out = run_log(dir, &flt, AUDIT_TEXT, &matched, &rc);
	CHECK_EQ_INT(rc, CL_ENOTFOUND);
	CHECK_EQ_INT(matched, 0);
	free(out);

	memset(&flt, 0, sizeof flt);
	flt.has_since = 1;
	flt.since = 4102444800000000LL;  /* 2100: nothing */
	out = run_log(dir, &flt, AUDIT_TEXT, &matched, &rc);
	CHECK_EQ_INT(matched, 0);
	free(out);
}

static void t_parse_types(void)
{
	uint32_t t = 0;

	CHECK(audit_parse_types("entry.status_set", &t) == 0);
	CHECK_EQ_INT(t, 1u << EV_ENTRY_STATUS_SET);
	t = 0;
	CHECK(audit_parse_types("entry", &t) == 0);
	CHECK_EQ_INT(t, (1u << EV_ENTRY_CREATED) | (1u << EV_ENTRY_EDITED) |
			(1u << EV_ENTRY_STATUS_SET));
	t = 0;
	CHECK(audit_parse_types("token,comment.added", &t) == 0);
	CHECK_EQ_INT(t, (1u << EV_TOKEN_ISSUED) | (1u << EV_TOKEN_REVOKED) |
			(1u << EV_COMMENT_ADDED));
	CHECK(audit_parse_types("entr", &t) == CL_EUSAGE);
	CHECK(audit_parse_types("bogus.type", &t) == CL_EUSAGE);
	CHECK(audit_parse_types("", &t) == CL_EUSAGE);
	CHECK(audit_parse_types("entry,", &t) == CL_EUSAGE);
}

static void t_summaries(void)
{
	struct event ev;
	char out[300];

	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_STATUS_SET;
	ev.ids.entry = 12;
	ev.status_from = ST_OPEN;
	ev.status_to = ST_RESOLVED;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "set #12 resolved (was open)") == 0);

	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_CREATED;
	ev.ids.entry = 12;
	ev.kind = KIND_FIX;
	ev.title = CL_STR("Title\nwith a newline");
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "created fix #12 \"Title with a newline\"") == 0);

	memset(&ev, 0, sizeof ev);
	ev.type = EV_COMMENT_ADDED;
	ev.ids.entry = 12;
	ev.ids.comment = 9;
	ev.ids.parent = 5;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "commented on #12 (reply to comment 5)") == 0);
	ev.type = EV_COMMENT_EDITED;
	ev.ids.parent = 0;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "edited comment 9 on #12") == 0);
	ev.type = EV_COMMENT_DELETED;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "deleted comment 9 on #12") == 0);
	ev.type = EV_READ_MARKED;
	ev.ids.comment = 0;
	ev.upto = 30;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "read #12 up to seq 30") == 0);
	ev.ids.entry = 0;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "marked everything read up to seq 30") == 0);

	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_EDITED;
	ev.ids.entry = 3;
	ev.has_title = ev.has_body = ev.has_kind = 1;
	ev.title = CL_STR("New");
	ev.kind = KIND_FEATURE;
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "edited #3 (title \"New\", body, kind feature)") == 0);

	memset(&ev, 0, sizeof ev);
	ev.type = EV_TOKEN_REVOKED;
	ev.ids.token = 4;
	audit_event_summary(&ev, "alice", out, sizeof out);
	CHECK(strcmp(out, "revoked token 4 of alice") == 0);

	/* long titles are cut at a character boundary */
	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_CREATED;
	ev.ids.entry = 1;
	ev.kind = KIND_CHANGE;
	ev.title = CL_STR("ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé");
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strstr(out, "...\"") != NULL);
	CHECK(cl_utf8_valid(out, strlen(out)));

	/* C1 controls and bidi overrides are shown, escaped, never passed on */
	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_CREATED;
	ev.ids.entry = 2;
	ev.kind = KIND_FIX;
	ev.title = CL_STR("pay \xe2\x80\xae" "gnp.exe\xe2\x80\xac \xc2\x9b" "2J\x1b[1m caf\xc3\xa9");
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strcmp(out, "created fix #2 \"pay <U+202E>gnp.exe<U+202C> <U+009B>2J [1m caf\xc3\xa9\"")
	      == 0);
	memset(&ev, 0, sizeof ev);
	ev.type = EV_TOKEN_ISSUED;
	ev.ids.token = 7;
	ev.label = CL_STR("\xe2\x81\xa6" "ci\xe2\x81\xa9");
	audit_event_summary(&ev, "bob", out, sizeof out);
	CHECK(strcmp(out, "issued token 7 to bob \"<U+2066>ci<U+2069>\"") == 0);
}

/* The widest summary: a title of QUOTE_MAX bytes that are all escaped. */
static void t_summary_all_escapes(void)
{
	char title[CL_MAX_TITLE + 1], out[1024];
	struct event ev;
	size_t n = 0;

	while (n + 2 <= CL_MAX_TITLE) {
		title[n++] = (char)0xc2;
		title[n++] = (char)0x85;
	}
	memset(&ev, 0, sizeof ev);
	ev.type = EV_ENTRY_EDITED;
	ev.ids.entry = 1;
	ev.has_title = 1;
	ev.title = (struct cl_str){ title, n };
	audit_event_summary(&ev, NULL, out, sizeof out);
	CHECK(strncmp(out, "edited #1 (title \"<U+0085><U+0085>", 34) == 0);
	CHECK(strstr(out, "<U+0085>...\")") != NULL);
	CHECK(strstr(out, "\xc2") == NULL);
}

static void t_stats_json(void)
{
	uint64_t last;
	const char *dir = make_log(SEED_EVENTS, &last);
	struct evlog *log = NULL;
	struct audit_fault f;
	char *buf = NULL;
	size_t len = 0, total = 0;
	FILE *out = open_memstream(&buf, &len);
	json_t *o, *v;
	const char *key;
	json_error_t e;

	REQUIRE(evlog_open(&log, dir, EVLOG_RDONLY, 0) == 0);
	CHECK_EQ_INT(audit_stats(log, AUDIT_JSON, out, &f), 0);
	evlog_close(log);
	fclose(out);
	o = json_loads(buf, 0, &e);
	REQUIRE(o != NULL);
	CHECK_EQ_INT(json_integer_value(json_object_get(o, "events")), last);
	json_object_foreach(json_object_get(o, "by_type"), key, v)
		total += (size_t)json_integer_value(v);
	CHECK_EQ_INT(total, last);
	total = 0;
	json_object_foreach(json_object_get(o, "by_month"), key, v)
		total += (size_t)json_integer_value(v);
	CHECK_EQ_INT(total, last);
	CHECK(json_integer_value(json_object_get(json_object_get(o, "store"), "used_bytes")) > 0);
	json_decref(o);
	free(buf);
}

int main(void)
{
	RUN(t_verify_clean);
	RUN(t_verify_empty_log);
	RUN(t_changed_byte);
	RUN(t_undecodable);
	RUN(t_deleted);
	RUN(t_swapped);
	RUN(t_adjacent_swap);
	RUN(t_truncated);
	RUN(t_head_replaced);
	RUN(t_last_event_changed);
	RUN(t_beyond_meta);
	RUN(t_rechained_forgery);
	RUN(t_log_filters);
	RUN(t_parse_types);
	RUN(t_summaries);
	RUN(t_summary_all_escapes);
	RUN(t_stats_json);
	return harness_done();
}
