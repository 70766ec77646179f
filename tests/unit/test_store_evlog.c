/*
 * test_store_evlog.c - store/evlog.c and store/bootstrap.c against real LMDB
 * in temp directories, with real processes: a second writer, a reader taking
 * snapshots while a writer appends, kill -9 in the middle of appends, hot
 * backup during appends, and bytes flipped in the stored log with raw LMDB.
 */
#include "harness.h"
#include "../../store/evlog.h"
#include "../../store/bootstrap.h"
#include "../../store/token.h"

#include <errno.h>
#include <lmdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NO_CMD ((struct cl_str){ NULL, 0 })

/* ---- helpers ---------------------------------------------------------- */

/* An entry.created event; title text lives in buf. */
static void mk_entry(struct event *ev, uint64_t id, char *buf, size_t cap)
{
	memset(ev, 0, sizeof *ev);
	ev->type = EV_ENTRY_CREATED;
	ev->ts = 1795773723000000LL + (int64_t)id;
	ev->actor = 1;
	ev->ids.entry = id;
	snprintf(buf, cap, "entry number %llu", (unsigned long long)id);
	ev->title.p = buf;
	ev->title.n = strlen(buf);
	ev->body = CL_STR("a body of modest length");
	ev->kind = KIND_FIX;
}

/*
 * Append n entries in one txn at the current end (retrying a conflict with
 * another writer and a full map). Returns 0 or the CL_E* code.
 */
static int append_n(struct evlog *log, int n)
{
	char title[64];
	struct event ev;
	struct evlog_txn *t;
	uint64_t last;
	int rc;

	for (int tries = 0; tries < 1000; tries++) {
		rc = evlog_last(log, &last, NULL);
		if (rc)
			return rc;
		rc = evlog_wbegin(log, last, NULL, &t);
		if (rc == CL_ECONFLICT)
			continue;
		if (rc)
			return rc;
		for (int i = 0; i < n && rc == 0; i++) {
			mk_entry(&ev, evlog_wlast(t) + 1, title, sizeof title);
			rc = evlog_wappend(t, &ev);
		}
		if (rc) {
			evlog_wabort(t);
		} else {
			rc = evlog_wcommit(t);
		}
		if (rc != CL_EMAPFULL)
			return rc;
	}
	return CL_EIO;
}

/*
 * Walk the log twice: with evlog_iter_next_event (decode + chain + end
 * check) and with raw records re-hashed here from zero, which must end at
 * meta head. Returns the number of events, or a CL_E* code.
 */
static long long verify_log(struct evlog *log)
{
	struct evlog_iter *it;
	struct evlog_rec rec;
	struct event ev;
	uint8_t h[EV_HASH_LEN] = { 0 }, head[EV_HASH_LEN];
	uint64_t last, n = 0, m = 0;
	int rc;

	rc = evlog_iter_new(log, 1, &it);
	if (rc)
		return rc;
	while ((rc = evlog_iter_next_event(it, &ev)) == 1) {
		if (ev.seq != ++n)
			rc = CL_ECORRUPT;
		if (ev.type != EV_ENTRY_CREATED || ev.ids.entry != ev.seq)
			rc = CL_ECORRUPT;
		if (rc != 1)
			break;
	}
	evlog_iter_free(it);
	if (rc < 0)
		return rc;

	rc = evlog_iter_new(log, 0, &it);
	if (rc)
		return rc;
	/* the raw pass may see a later snapshot than the first: compare its
	 * own end with the head of the same moment only if nothing moved */
	while ((rc = evlog_iter_next(it, &rec)) == 1) {
		if (rec.seq != ++m) {
			rc = CL_ECORRUPT;
			break;
		}
		evlog_hash(h, rec.seq, rec.val, rec.len, h);
	}
	evlog_iter_free(it);
	if (rc < 0)
		return rc;
	rc = evlog_last(log, &last, head);
	if (rc)
		return rc;
	if (last == m && memcmp(h, head, EV_HASH_LEN) != 0)
		return CL_ECORRUPT;
	return (long long)n;
}

static int wait_child(pid_t pid)
{
	int st;

	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return -1;
}

static pid_t fork_child(void)
{
	fflush(stdout);
	fflush(stderr);
	return fork();
}

/* Child: append `batches` batches of `batch` events (forever if < 0). */
static void child_writer(const char *dir, int batches, int batch, size_t mapsize)
{
	struct evlog *log;

	alarm(120);
	if (evlog_open(&log, dir, 0, mapsize) != 0)
		_exit(10);
	for (int b = 0; batches < 0 || b < batches; b++)
		if (append_n(log, batch) != 0)
			_exit(11);
	evlog_close(log);
	_exit(0);
}

static void usleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- tests ------------------------------------------------------------ */

static void t_open_missing(void)
{
	const char *dir = harness_tmpdir();
	char sub[400];
	struct evlog *log = NULL;
	struct stat st;

	snprintf(sub, sizeof sub, "%s/no/such/dir", dir);
	CHECK_EQ_INT(evlog_open(&log, sub, 0, 0), CL_ENOTFOUND);
	CHECK_EQ_INT(evlog_open(&log, sub, EVLOG_RDONLY, 0), CL_ENOTFOUND);
	CHECK(log == NULL);
	/* an existing empty dir is not a log, and opening it creates nothing */
	CHECK_EQ_INT(evlog_open(&log, dir, 0, 0), CL_ENOTFOUND);
	snprintf(sub, sizeof sub, "%s/data.mdb", dir);
	CHECK(stat(sub, &st) != 0);
	CHECK_EQ_INT(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_RDONLY, 0), CL_EINVAL);
	/* CREATE makes the whole path, mode 0700 */
	snprintf(sub, sizeof sub, "%s/a/b/c", dir);
	REQUIRE(evlog_open(&log, sub, EVLOG_CREATE, 0) == 0);
	evlog_close(log);
	REQUIRE(stat(sub, &st) == 0);
	CHECK_EQ_INT(st.st_mode & 0777, 0700);
}

static void t_create_reopen(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	uint8_t head[EV_HASH_LEN], zero[EV_HASH_LEN] = { 0 };
	char epoch[EVLOG_EPOCH_STRLEN + 1], title[64];
	uint64_t last = 99;
	int n = 0, rc;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK_EQ_INT(strlen(evlog_epoch(log)), EVLOG_EPOCH_STRLEN);
	CHECK(strspn(evlog_epoch(log), "0123456789abcdef") == EVLOG_EPOCH_STRLEN);
	snprintf(epoch, sizeof epoch, "%s", evlog_epoch(log));
	CHECK(evlog_last(log, &last, head) == 0);
	CHECK_EQ_INT(last, 0);
	CHECK(memcmp(head, zero, EV_HASH_LEN) == 0);
	CHECK_EQ_INT(verify_log(log), 0);
	CHECK(append_n(log, 3) == 0);
	CHECK(append_n(log, 2) == 0);
	evlog_close(log);

	/* CREATE on an existing log opens it unchanged */
	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(strcmp(evlog_epoch(log), epoch) == 0);
	evlog_close(log);

	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	CHECK(strcmp(evlog_epoch(log), epoch) == 0);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 5);
	CHECK_EQ_INT(verify_log(log), 5);
	REQUIRE(evlog_iter_new(log, 0, &it) == 0);
	while ((rc = evlog_iter_next_event(it, &ev)) == 1) {
		n++;
		CHECK_EQ_INT(ev.seq, n);
		CHECK_EQ_INT(ev.type, EV_ENTRY_CREATED);
		CHECK_EQ_INT(ev.actor, 1);
		CHECK_EQ_INT(ev.kind, KIND_FIX);
		CHECK_EQ_INT(ev.ts, 1795773723000000LL + n);
		snprintf(title, sizeof title, "entry number %d", n);
		CHECK(ev.title.n == strlen(title) && memcmp(ev.title.p, title, ev.title.n) == 0);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(n, 5);
	evlog_iter_free(it);
	evlog_close(log);
}

static void t_iter_from(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	struct evlog_rec rec;
	uint64_t expect = 40;
	int rc;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) == 0);
	for (int i = 0; i < 10; i++)
		CHECK(append_n(log, 10) == 0);
	/* from the middle: the first prev_hash is taken as given */
	REQUIRE(evlog_iter_new(log, 40, &it) == 0);
	while ((rc = evlog_iter_next_event(it, &ev)) == 1)
		CHECK_EQ_INT(ev.seq, expect++);
	CHECK_EQ_INT(rc, 0);
	CHECK_EQ_INT(expect, 101);
	evlog_iter_free(it);
	/* past the end: nothing, no error */
	REQUIRE(evlog_iter_new(log, 101, &it) == 0);
	CHECK_EQ_INT(evlog_iter_next_event(it, &ev), 0);
	CHECK_EQ_INT(evlog_iter_next(it, &rec), 0);
	evlog_iter_free(it);
	/* a snapshot does not see later appends; several open at once (NOTLS) */
	REQUIRE(evlog_iter_new(log, 100, &it) == 0);
	{
		struct evlog_iter *it2;
		uint64_t last;

		CHECK(append_n(log, 5) == 0);
		CHECK(evlog_last(log, &last, NULL) == 0);
		CHECK_EQ_INT(last, 105);
		REQUIRE(evlog_iter_new(log, 105, &it2) == 0);
		CHECK_EQ_INT(evlog_iter_next_event(it2, &ev), 1);
		CHECK_EQ_INT(ev.seq, 105);
		CHECK_EQ_INT(evlog_iter_next_event(it2, &ev), 0);
		evlog_iter_free(it2);
	}
	CHECK_EQ_INT(evlog_iter_next_event(it, &ev), 1);
	CHECK_EQ_INT(ev.seq, 100);
	CHECK_EQ_INT(evlog_iter_next_event(it, &ev), 0);
	evlog_iter_free(it);
	evlog_close(log);
}

static void t_hash_chain(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_iter *it;
	struct evlog_rec rec;
	struct event ev;
	uint8_t h[EV_HASH_LEN] = { 0 }, head[EV_HASH_LEN], buf[32 + 8 + 3];
	uint8_t want[EV_HASH_LEN];
	uint64_t last;
	int rc;

	/* hash(seq) = SHA-256(prev || u64 BE seq || value), cross-checked with
	 * token_hash over the concatenation */
	memset(buf, 0, sizeof buf);
	buf[39] = 1;
	memcpy(buf + 40, "abc", 3);
	token_hash((const char *)buf, sizeof buf, want);
	evlog_hash(h, 1, (const uint8_t *)"abc", 3, head);
	CHECK(memcmp(head, want, EV_HASH_LEN) == 0);

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) == 0);
	for (int i = 1; i <= 20; i++)
		CHECK(append_n(log, i) == 0);
	CHECK(evlog_last(log, &last, head) == 0);
	CHECK_EQ_INT(last, 210);
	REQUIRE(evlog_iter_new(log, 1, &it) == 0);
	while ((rc = evlog_iter_next(it, &rec)) == 1) {
		CHECK(ev_decode(rec.val, rec.len, &ev) == 0);
		CHECK(memcmp(ev.prev_hash, h, EV_HASH_LEN) == 0);   /* stored prev */
		evlog_hash(h, rec.seq, rec.val, rec.len, h);
	}
	CHECK_EQ_INT(rc, 0);
	CHECK(memcmp(h, head, EV_HASH_LEN) == 0);                  /* meta head */
	evlog_iter_free(it);
	CHECK_EQ_INT(verify_log(log), 210);
	evlog_close(log);
}

static void t_wappend_fields(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_txn *t;
	struct event ev;
	char title[64];
	uint8_t head[EV_HASH_LEN];
	uint64_t last, actual = 0;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(append_n(log, 4) == 0);
	CHECK(evlog_last(log, &last, head) == 0);
	/* conditional begin, in one process */
	CHECK_EQ_INT(evlog_wbegin(log, 3, &actual, &t), CL_ECONFLICT);
	CHECK_EQ_INT(actual, 4);
	REQUIRE(evlog_wbegin(log, 4, NULL, &t) == 0);
	/* one write txn at a time */
	{
		struct evlog_txn *t2;

		CHECK_EQ_INT(evlog_wbegin(log, 4, NULL, &t2), CL_EINVAL);
	}
	mk_entry(&ev, 5, title, sizeof title);
	memset(ev.prev_hash, 0xab, EV_HASH_LEN);
	CHECK(evlog_wappend(t, &ev) == 0);
	CHECK_EQ_INT(ev.seq, 5);
	CHECK(memcmp(ev.prev_hash, head, EV_HASH_LEN) == 0);
	CHECK_EQ_INT(evlog_wlast(t), 5);
	/* a bad event is refused and leaves the txn usable */
	mk_entry(&ev, 6, title, sizeof title);
	ev.title.n = 0;
	CHECK_EQ_INT(evlog_wappend(t, &ev), CL_EINVAL);
	ev.type = 0;
	CHECK_EQ_INT(evlog_wappend(t, &ev), CL_EINVAL);
	CHECK_EQ_INT(evlog_wlast(t), 5);
	mk_entry(&ev, 6, title, sizeof title);
	CHECK(evlog_wappend(t, &ev) == 0);
	/* the txn reads its own appends and what was committed before */
	{
		struct event got;

		CHECK_EQ_INT(evlog_wget(t, 6, &got), 1);
		CHECK_EQ_INT(got.seq, 6);
		CHECK_EQ_INT(got.type, EV_ENTRY_CREATED);
		CHECK_EQ_INT(got.ids.entry, 6);
		CHECK(got.title.n == ev.title.n && memcmp(got.title.p, title, ev.title.n) == 0);
		CHECK(memcmp(got.prev_hash, ev.prev_hash, EV_HASH_LEN) == 0);
		CHECK_EQ_INT(evlog_wget(t, 2, &got), 1);
		CHECK_EQ_INT(got.ids.entry, 2);
		CHECK_EQ_INT(evlog_wget(t, 7, &got), 0);
		CHECK_EQ_INT(evlog_wget(t, 0, &got), 0);
	}
	CHECK(evlog_wcommit(t) == 0);
	CHECK_EQ_INT(verify_log(log), 6);

	/* abort discards */
	REQUIRE(evlog_wbegin(log, 6, NULL, &t) == 0);
	mk_entry(&ev, 7, title, sizeof title);
	CHECK(evlog_wappend(t, &ev) == 0);
	{
		struct event got;

		CHECK_EQ_INT(evlog_wget(t, 7, &got), 1);
	}
	evlog_wabort(t);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 6);
	REQUIRE(evlog_wbegin(log, 6, NULL, &t) == 0);
	{
		struct event got;

		CHECK_EQ_INT(evlog_wget(t, 7, &got), 0);   /* the aborted append is gone */
	}
	evlog_wabort(t);
	CHECK_EQ_INT(verify_log(log), 6);
	/* an empty commit changes nothing */
	REQUIRE(evlog_wbegin(log, 6, NULL, &t) == 0);
	CHECK(evlog_wcommit(t) == 0);
	CHECK_EQ_INT(verify_log(log), 6);
	evlog_close(log);
}

static void t_idempotent(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_txn *t;
	struct evlog_cmd cmd;
	struct event ev[3];
	char titles[3][64], longid[CL_MAX_CMD_ID + 2];
	uint64_t first = 0, last;
	struct cl_str id = CL_STR("cmd-42");
	const char *res = "{\"seq\":1}";
	struct evlog_stat st;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(append_n(log, 2) == 0);
	for (int i = 0; i < 3; i++)
		mk_entry(&ev[i], 3 + (uint64_t)i, titles[i], sizeof titles[i]);
	ev[0].cmd_id = id;
	CHECK(evlog_append(log, 2, ev, 3, 7, id, res, strlen(res), &first) == 0);
	CHECK_EQ_INT(first, 3);
	CHECK_EQ_INT(ev[2].seq, 5);
	/* the retry: same actor and id, even with the old expected last */
	first = 0;
	CHECK_EQ_INT(evlog_append(log, 2, ev, 3, 7, id, res, strlen(res), &first), CL_EEXIST);
	CHECK_EQ_INT(first, 3);
	first = 0;
	CHECK_EQ_INT(evlog_append(log, 5, ev, 3, 7, id, res, strlen(res), &first), CL_EEXIST);
	CHECK_EQ_INT(first, 3);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 5);                  /* no second append */
	/* the same id from another actor is another command; a stale last is
	 * still a conflict */
	CHECK_EQ_INT(evlog_append(log, 2, ev, 1, 8, id, NULL, 0, &first), CL_ECONFLICT);
	CHECK(evlog_append(log, 5, ev, 1, 8, id, NULL, 0, &first) == 0);
	CHECK_EQ_INT(first, 6);
	/* the stored record */
	REQUIRE(evlog_wbegin(log, 6, NULL, &t) == 0);
	REQUIRE(evlog_wcmd_get(t, 7, id, &cmd) == 0);
	CHECK_EQ_INT(cmd.first_seq, 3);
	CHECK_EQ_INT(cmd.count, 3);
	CHECK(cmd.result_len == strlen(res) && memcmp(cmd.result, res, cmd.result_len) == 0);
	REQUIRE(evlog_wcmd_get(t, 8, id, &cmd) == 0);
	CHECK_EQ_INT(cmd.result_len, 0);
	CHECK_EQ_INT(evlog_wcmd_get(t, 9, id, &cmd), CL_ENOTFOUND);
	CHECK_EQ_INT(evlog_wcmd_put(t, 7, id, 1, 1, NULL, NULL, NULL, 0), CL_EEXIST);
	memset(longid, 'x', sizeof longid);
	CHECK_EQ_INT(evlog_wcmd_put(t, 7, ((struct cl_str){ longid, CL_MAX_CMD_ID + 1 }), 1, 1,
				    NULL, NULL, NULL, 0), CL_EINVAL);
	CHECK_EQ_INT(evlog_wcmd_get(t, 7, NO_CMD, &cmd), CL_EINVAL);
	CHECK(evlog_wcmd_put(t, 7, ((struct cl_str){ longid, CL_MAX_CMD_ID }), 6, 0, NULL, NULL,
			     "x", 1) == 0);
	/* records without a use (evlog_append's, and those of older versions) */
	REQUIRE(evlog_wcmd_get(t, 7, id, &cmd) == 0);
	CHECK(cmd.name == NULL && cmd.name_len == 0 && cmd.params_hash == NULL);
	/* with a use: name and params hash come back, the result after them */
	{
		uint8_t hash[EV_HASH_LEN];
		struct cl_str uid = CL_STR("used");
		char longname[EVLOG_MAX_CMD_NAME + 2];

		memset(hash, 0xab, sizeof hash);
		CHECK(evlog_wcmd_put(t, 7, uid, 6, 1, "setStatus", hash, res, strlen(res)) == 0);
		REQUIRE(evlog_wcmd_get(t, 7, uid, &cmd) == 0);
		CHECK(cmd.name_len == 9 && memcmp(cmd.name, "setStatus", 9) == 0);
		CHECK(cmd.params_hash && memcmp(cmd.params_hash, hash, sizeof hash) == 0);
		CHECK(cmd.result_len == strlen(res) && memcmp(cmd.result, res, cmd.result_len) == 0);
		CHECK_EQ_INT(cmd.first_seq, 6);
		CHECK(evlog_wcmd_put(t, 7, CL_STR("empty"), 6, 0, "x", hash, NULL, 0) == 0);
		REQUIRE(evlog_wcmd_get(t, 7, CL_STR("empty"), &cmd) == 0);
		CHECK(cmd.name_len == 1 && cmd.params_hash && cmd.result_len == 0);
		/* a name without a hash, an empty or too long name */
		CHECK_EQ_INT(evlog_wcmd_put(t, 7, CL_STR("n1"), 6, 0, "x", NULL, NULL, 0), CL_EINVAL);
		CHECK_EQ_INT(evlog_wcmd_put(t, 7, CL_STR("n2"), 6, 0, "", hash, NULL, 0), CL_EINVAL);
		memset(longname, 'n', sizeof longname - 1);
		longname[sizeof longname - 1] = '\0';
		CHECK_EQ_INT(evlog_wcmd_put(t, 7, CL_STR("n3"), 6, 0, longname, hash, NULL, 0),
			     CL_EINVAL);
		/* a value that says it holds a use but is cut short is damage */
		CHECK(evlog_wcmd_put(t, 7, CL_STR("cut"), 6, 0, NULL, NULL, "\x01\x09setStatus",
				     11) == 0);
		CHECK_EQ_INT(evlog_wcmd_get(t, 7, CL_STR("cut"), &cmd), CL_ECORRUPT);
		CHECK(evlog_wcmd_put(t, 7, CL_STR("cut0"), 6, 0, NULL, NULL, "\x01", 1) == 0);
		CHECK_EQ_INT(evlog_wcmd_get(t, 7, CL_STR("cut0"), &cmd), CL_ECORRUPT);
	}
	CHECK(evlog_wcommit(t) == 0);
	CHECK(evlog_stat(log, &st) == 0);
	CHECK_EQ_INT(st.events, 6);
	CHECK_EQ_INT(st.cmds, 7);
	CHECK(st.used_bytes > 0 && st.used_bytes <= st.mapsize);
	CHECK_EQ_INT(evlog_append(log, 6, ev, 0, 7, NO_CMD, NULL, 0, NULL), CL_EINVAL);
	evlog_close(log);
}

static void t_conflict_other_process(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_txn *t;
	uint64_t last, actual = 0, gen;
	pid_t pid;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(append_n(log, 3) == 0);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 3);
	gen = evlog_generation(log);
	pid = fork_child();
	REQUIRE(pid >= 0);
	if (pid == 0)
		child_writer(dir, 1, 5, 0);
	CHECK_EQ_INT(wait_child(pid), 0);
	CHECK(evlog_generation(log) != gen);    /* the change detector saw it */
	CHECK_EQ_INT(evlog_wbegin(log, last, &actual, &t), CL_ECONFLICT);
	CHECK_EQ_INT(actual, 8);
	REQUIRE(evlog_wbegin(log, actual, NULL, &t) == 0);
	evlog_wabort(t);
	CHECK(append_n(log, 2) == 0);
	CHECK_EQ_INT(verify_log(log), 10);
	evlog_close(log);
}

/* Child: open read-only, take snapshots until last reaches `final`;
 * exit 0 if last never went backwards and every 8th snapshot verified. */
static void child_reader(const char *dir, uint64_t final, size_t mapsize)
{
	struct evlog *log;
	uint64_t last, prev = 0;
	long snaps = 0;

	alarm(120);
	if (evlog_open(&log, dir, EVLOG_RDONLY, mapsize) != 0)
		_exit(20);
	do {
		if (evlog_last(log, &last, NULL) != 0)
			_exit(21);
		if (last < prev)
			_exit(22);
		prev = last;
		if (++snaps % 8 == 0) {
			long long n = verify_log(log);

			if (n < (long long)last)
				_exit(23);
		}
		/* the reader cannot write */
		if (snaps == 1) {
			struct evlog_txn *t;

			if (evlog_wbegin(log, last, NULL, &t) != CL_EINVAL)
				_exit(24);
		}
	} while (last < final);
	if (snaps < 10)
		_exit(25);      /* it did not really overlap the writer */
	if (mapsize && evlog_mapsize(log) <= mapsize)
		_exit(26);      /* it must have adopted the writer's grown map */
	evlog_close(log);
	_exit(0);
}

static void t_reader_while_writer(void)
{
	const char *dir = harness_tmpdir();
	size_t small = 64 * 1024;
	struct evlog *log;
	pid_t w, r;

	/* tiny map: the writer grows it, the reader adopts it (MAP_RESIZED) */
	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, small) == 0);
	evlog_close(log);
	w = fork_child();
	REQUIRE(w >= 0);
	if (w == 0)
		child_writer(dir, 300, 50, small);
	r = fork_child();
	REQUIRE(r >= 0);
	if (r == 0)
		child_reader(dir, 300 * 50, small);
	CHECK_EQ_INT(wait_child(w), 0);
	CHECK_EQ_INT(wait_child(r), 0);
	REQUIRE(evlog_open(&log, dir, EVLOG_RDONLY, 0) == 0);
	CHECK_EQ_INT(verify_log(log), 15000);
	evlog_close(log);
}

static void t_rdonly_while_writer(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log, *ro;
	struct evlog_txn *t;
	uint64_t last = 0, prev = 0;
	long long n;
	pid_t w;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(append_n(log, 10) == 0);
	evlog_close(log);
	w = fork_child();
	REQUIRE(w >= 0);
	if (w == 0)
		child_writer(dir, 200, 10, 0);
	REQUIRE(evlog_open(&ro, dir, EVLOG_RDONLY, 0) == 0);
	CHECK_EQ_INT(evlog_wbegin(ro, 0, NULL, &t), CL_EINVAL);
	for (int i = 0; i < 50 && last < 2010; i++) {
		CHECK(evlog_last(ro, &last, NULL) == 0);
		CHECK(last >= prev);
		CHECK_EQ_INT(last % 10, 0);
		n = verify_log(ro);
		CHECK(n >= (long long)last);
		prev = last;
		usleep_ms(5);
	}
	CHECK_EQ_INT(wait_child(w), 0);
	CHECK_EQ_INT(verify_log(ro), 2010);
	evlog_close(ro);
}

static void t_map_growth(void)
{
	const char *dir = harness_tmpdir();
	size_t small = 64 * 1024;
	struct evlog *log;
	struct evlog_txn *t;
	struct event ev[100];
	char titles[100][64];
	uint64_t last, first;
	int fulls = 0, rc;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, small) == 0);
	CHECK(evlog_mapsize(log) <= small);
	/* 10k by hand: a MAP_FULL poisons the txn; commit refuses it */
	while (evlog_last(log, &last, NULL) == 0 && last < 10000) {
		REQUIRE(evlog_wbegin(log, last, NULL, &t) == 0);
		rc = 0;
		for (int i = 0; i < 100 && rc == 0; i++) {
			mk_entry(&ev[0], last + 1 + (uint64_t)i, titles[0], sizeof titles[0]);
			rc = evlog_wappend(t, &ev[0]);
		}
		if (rc == CL_EMAPFULL) {
			fulls++;
			mk_entry(&ev[0], evlog_wlast(t) + 1, titles[0], sizeof titles[0]);
			CHECK_EQ_INT(evlog_wappend(t, &ev[0]), CL_EINVAL);  /* poisoned */
			CHECK_EQ_INT(evlog_wcommit(t), CL_EMAPFULL);       /* never committed */
			CHECK(evlog_last(log, &first, NULL) == 0);
			CHECK_EQ_INT(first, last);
			continue;
		}
		REQUIRE(rc == 0);
		rc = evlog_wcommit(t);
		if (rc == CL_EMAPFULL) {
			fulls++;
			continue;
		}
		REQUIRE(rc == 0);
	}
	CHECK(fulls >= 3);
	/* 10k more with evlog_append, which grows and retries by itself */
	while (evlog_last(log, &last, NULL) == 0 && last < 20000) {
		for (int i = 0; i < 100; i++)
			mk_entry(&ev[i], last + 1 + (uint64_t)i, titles[i], sizeof titles[i]);
		rc = evlog_append(log, last, ev, 100, 0, NO_CMD, NULL, 0, &first);
		REQUIRE(rc == 0);
		CHECK_EQ_INT(first, last + 1);
	}
	CHECK(evlog_mapsize(log) >= 2 * 1024 * 1024);
	CHECK_EQ_INT(verify_log(log), 20000);
	evlog_close(log);
	/* it reopens with the small request: the file's size wins */
	REQUIRE(evlog_open(&log, dir, 0, small) == 0);
	CHECK_EQ_INT(verify_log(log), 20000);
	CHECK(append_n(log, 10) == 0);
	evlog_close(log);
}

static void t_mapsize_reopen(void)
{
	const char *dir = harness_tmpdir();
	size_t big = (size_t)3 << 30;
	struct evlog *log;

	/* a log whose file records 3 GiB keeps it when opened with the default */
	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, big) == 0);
	CHECK(append_n(log, 5) == 0);
	evlog_close(log);
	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	CHECK(evlog_mapsize(log) == big);
	evlog_close(log);
	/* a small log opened with the default gets 1 GiB */
	dir = harness_tmpdir();
	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 64 * 1024) == 0);
	CHECK(append_n(log, 5) == 0);
	evlog_close(log);
	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	CHECK(evlog_mapsize(log) == (size_t)1 << 30);
	evlog_close(log);
}

/* evlog_append of n entries after the last seq. */
static int append_batch(struct evlog *log, int n)
{
	struct event ev[10];
	char titles[10][64];
	uint64_t last, first;

	if (evlog_last(log, &last, NULL) != 0)
		return CL_EIO;
	for (int i = 0; i < n; i++)
		mk_entry(&ev[i], last + 1 + (uint64_t)i, titles[i], sizeof titles[i]);
	return evlog_append(log, last, ev, (size_t)n, 0, NO_CMD, NULL, 0, &first);
}

static void t_fixed_map(void)
{
	const char *dir = harness_tmpdir();
	size_t small = 64 * 1024;
	struct evlog *log;
	uint64_t last = 0, full_at;
	int rc = 0, i;

	CHECK_EQ_INT(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_FIXEDMAP, 0), CL_EINVAL);
	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_FIXEDMAP, small) == 0);
	CHECK(evlog_map_fixed(log));
	for (i = 0; i < 10000 && rc == 0; i++)
		rc = append_batch(log, 10);
	CHECK_EQ_INT(rc, CL_EMAPFULL);
	REQUIRE(evlog_last(log, &full_at, NULL) == 0);
	CHECK(full_at > 0 && full_at % 10 == 0);
	/* it stays full: never grown, nothing half written, reads go on */
	CHECK_EQ_INT(append_batch(log, 10), CL_EMAPFULL);
	CHECK(evlog_mapsize(log) <= small);
	CHECK(evlog_last(log, &last, NULL) == 0 && last == full_at);
	CHECK_EQ_INT(verify_log(log), (long long)full_at);
	evlog_close(log);
	/* a bigger map takes more */
	REQUIRE(evlog_open(&log, dir, EVLOG_FIXEDMAP, 4 * small) == 0);
	CHECK(append_batch(log, 10) == 0);
	CHECK_EQ_INT(verify_log(log), (long long)full_at + 10);
	evlog_close(log);
}

static void t_refuses_damaged_dir(void)
{
	const char *dir = harness_tmpdir();
	char path[400];
	struct evlog *log = NULL;
	struct stat st;
	FILE *f;

	/* an emptied data.mdb is never taken for a new log, even with CREATE */
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	REQUIRE((f = fopen(path, "w")) != NULL);
	fclose(f);
	CHECK_EQ_INT(evlog_open(&log, dir, EVLOG_CREATE, 0), CL_ECORRUPT);
	CHECK_EQ_INT(evlog_open(&log, dir, EVLOG_RDONLY, 0), CL_ECORRUPT);
	CHECK(log == NULL);
	CHECK(stat(path, &st) == 0 && st.st_size == 0);
	/* a lone lock.mdb: the log was deleted */
	unlink(path);
	snprintf(path, sizeof path, "%s/lock.mdb", dir);
	REQUIRE((f = fopen(path, "w")) != NULL);
	fclose(f);
	CHECK_EQ_INT(evlog_open(&log, dir, EVLOG_CREATE, 0), CL_ECORRUPT);
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	CHECK(stat(path, &st) != 0);
}

static void t_map_resized_with_iterator(void)
{
	const char *dir = harness_tmpdir();
	size_t small = 64 * 1024;
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	uint64_t last = 0;
	pid_t w;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, small) == 0);
	CHECK(append_n(log, 10) == 0);
	REQUIRE(evlog_iter_new(log, 1, &it) == 0);
	/* another process grows the file far past this process's map */
	w = fork_child();
	REQUIRE(w >= 0);
	if (w == 0)
		child_writer(dir, 20, 500, small);
	CHECK_EQ_INT(wait_child(w), 0);
	/* the map cannot move under an open iterator: told to free it */
	CHECK_EQ_INT(evlog_last(log, &last, NULL), CL_EMAPFULL);
	/* the iterator's own snapshot still reads fine */
	for (int i = 1; i <= 10; i++) {
		CHECK_EQ_INT(evlog_iter_next_event(it, &ev), 1);
		CHECK_EQ_INT(ev.seq, i);
	}
	CHECK_EQ_INT(evlog_iter_next_event(it, &ev), 0);
	evlog_iter_free(it);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 10010);
	CHECK(evlog_mapsize(log) > small);
	CHECK_EQ_INT(verify_log(log), 10010);
	evlog_close(log);
}

/* ---- evlog_read_shared: another thread reading ------------------------ */

struct shared_read {
	uint64_t seqs[300];
	size_t n, bytes;
	uint8_t hash[EV_HASH_LEN];     /* the chain over what was read */
	uint64_t next;                 /* the seq expected next */
	int bad, stop_at;              /* stop_at: fail on this call (0: never) */
};

static int collect(void *arg, uint64_t seq, const uint8_t *val, size_t len)
{
	struct shared_read *r = arg;

	if (r->stop_at && (int)r->n + 1 == r->stop_at)
		return CL_ENOMEM;
	if (r->n < sizeof r->seqs / sizeof r->seqs[0])
		r->seqs[r->n] = seq;
	r->n++;
	r->bytes += len;
	if (r->next && seq != r->next)
		r->bad = 1;
	r->next = seq + 1;
	evlog_hash(r->hash, seq, val, len, r->hash);
	return 0;
}

static void t_read_shared(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_iter *it;
	struct evlog_rec rec;
	struct shared_read r;
	uint8_t head[EV_HASH_LEN];
	uint64_t last = 0;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 1, 10, 1 << 20, collect, &r, &last), 0);
	CHECK_EQ_INT(r.n, 0);                         /* empty log */
	CHECK_EQ_INT(last, 0);
	REQUIRE(append_n(log, 50) == 0);
	/* at most max_n, in order, the bytes as stored, meta last */
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 1, 10, 1 << 20, collect, &r, &last), 0);
	CHECK_EQ_INT(r.n, 10);
	CHECK_EQ_INT(r.seqs[0], 1);
	CHECK_EQ_INT(r.seqs[9], 10);
	CHECK_EQ_INT(last, 50);
	REQUIRE(evlog_iter_new(log, 1, &it) == 0);
	{
		size_t bytes = 0;

		for (int i = 0; i < 10; i++) {
			REQUIRE(evlog_iter_next(it, &rec) == 1);
			bytes += rec.len;
		}
		CHECK_EQ_INT(bytes, r.bytes);
	}
	evlog_iter_free(it);
	/* max_bytes: stop once that many were handed over, but hand one */
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 7, 100, 1, collect, &r, NULL), 0);
	CHECK_EQ_INT(r.n, 1);
	CHECK_EQ_INT(r.seqs[0], 7);
	/* the tail, and past the end */
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 45, 100, 1 << 20, collect, &r, NULL), 0);
	CHECK_EQ_INT(r.n, 6);
	CHECK_EQ_INT(r.seqs[5], 50);
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 51, 100, 1 << 20, collect, &r, NULL), 0);
	CHECK_EQ_INT(r.n, 0);
	/* the whole log from 1 hashes to meta head */
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 1, 100, 1 << 20, collect, &r, NULL), 0);
	CHECK(evlog_last(log, &last, head) == 0);
	CHECK(memcmp(head, r.hash, EV_HASH_LEN) == 0);
	/* fn's error stops the read and is returned */
	memset(&r, 0, sizeof r);
	r.stop_at = 3;
	CHECK_EQ_INT(evlog_read_shared(log, 1, 100, 1 << 20, collect, &r, NULL), CL_ENOMEM);
	CHECK_EQ_INT(r.n, 2);
	evlog_close(log);
}

struct shared_reader {
	struct evlog *log;
	_Atomic int stop;
	int err, passes;
	uint64_t read;                 /* seqs read in the last full pass */
	uint8_t hash[EV_HASH_LEN];     /* its chain */
};

/* A publisher-like thread: read the whole log in chunks, over and over. */
static void *shared_reader_main(void *arg)
{
	struct shared_reader *sr = arg;

	for (;;) {
		struct shared_read r;
		int rc = 0, last_pass = sr->stop;

		memset(&r, 0, sizeof r);
		while (rc == 0) {
			size_t before = r.n;

			rc = evlog_read_shared(sr->log, r.n + 1, 256, 64 * 1024, collect, &r, NULL);
			if (rc == 0 && r.n == before)
				break;
		}
		if (rc || r.bad) {
			sr->err = rc ? rc : CL_ECORRUPT;
			return NULL;
		}
		sr->passes++;
		sr->read = r.n;
		memcpy(sr->hash, r.hash, EV_HASH_LEN);
		if (last_pass)
			return NULL;
	}
}

/* The owner appends and grows a small map many times meanwhile. */
static void t_read_shared_while_growing(void)
{
	const char *dir = harness_tmpdir();
	struct shared_reader sr;
	uint8_t head[EV_HASH_LEN];
	uint64_t last = 0;
	pthread_t th;

	memset(&sr, 0, sizeof sr);
	REQUIRE(evlog_open(&sr.log, dir, EVLOG_CREATE, 64 * 1024) == 0);
	REQUIRE(append_n(sr.log, 10) == 0);
	REQUIRE(pthread_create(&th, NULL, shared_reader_main, &sr) == 0);
	for (int i = 0; i < 100; i++)
		CHECK(append_n(sr.log, 100) == 0);
	sr.stop = 1;
	pthread_join(th, NULL);
	CHECK_EQ_INT(sr.err, 0);
	CHECK(sr.passes >= 1);
	CHECK(evlog_mapsize(sr.log) >= 2 * 1024 * 1024);   /* it did grow */
	CHECK(evlog_last(sr.log, &last, head) == 0);
	CHECK_EQ_INT(last, 10010);
	CHECK_EQ_INT(sr.read, 10010);                    /* its final pass saw it all */
	CHECK(memcmp(head, sr.hash, EV_HASH_LEN) == 0);
	evlog_close(sr.log);
}

/* ---- copying another log: evlog_wappend_raw, evlog_adopt_epoch -------- */

/* Copy record seq of src into txn as it is stored; the wappend_raw code. */
static int copy_rec(struct evlog *src, uint64_t seq, uint64_t as, struct evlog_txn *t)
{
	struct evlog_iter *it;
	struct evlog_rec rec;
	int rc = evlog_iter_new(src, seq, &it);

	if (rc)
		return rc;
	rc = evlog_iter_next(it, &rec);
	if (rc == 1)
		rc = evlog_wappend_raw(t, as, rec.val, rec.len);
	else if (rc == 0)
		rc = CL_ENOTFOUND;
	evlog_iter_free(it);
	return rc;
}

static void t_copy_raw(void)
{
	const char *base = harness_tmpdir();
	char da[400], db[400];
	static const uint8_t junk[] = { 0x93, 0x01, 0x02 };
	struct evlog *a, *b;
	struct evlog_txn *t;
	uint8_t ha[EV_HASH_LEN], hb[EV_HASH_LEN];
	uint64_t la = 0, lb = 0;

	snprintf(da, sizeof da, "%s/a", base);
	snprintf(db, sizeof db, "%s/b", base);
	REQUIRE(evlog_open(&a, da, EVLOG_CREATE, 0) == 0);
	REQUIRE(evlog_open(&b, db, EVLOG_CREATE, 0) == 0);
	REQUIRE(append_n(a, 20) == 0);
	/* an empty log takes the other's epoch; bad hex is refused */
	CHECK(strcmp(evlog_epoch(a), evlog_epoch(b)) != 0);
	CHECK_EQ_INT(evlog_adopt_epoch(b, "nothex"), CL_EINVAL);
	CHECK_EQ_INT(evlog_adopt_epoch(b, "0123456789abcdef0123456789abcdeZ"), CL_EINVAL);
	CHECK_EQ_INT(evlog_adopt_epoch(b, evlog_epoch(a)), 0);
	CHECK(strcmp(evlog_epoch(a), evlog_epoch(b)) == 0);
	/* the records, byte for byte: the same chain */
	REQUIRE(evlog_wbegin(b, 0, NULL, &t) == 0);
	for (uint64_t seq = 1; seq <= 20; seq++)
		CHECK_EQ_INT(copy_rec(a, seq, seq, t), 0);
	/* refused, nothing stored, the txn goes on: a gap, a repeat, a record
	 * whose prev_hash is not this head, bytes that are no envelope */
	CHECK_EQ_INT(copy_rec(a, 20, 22, t), CL_ECORRUPT);
	CHECK_EQ_INT(copy_rec(a, 20, 20, t), CL_ECORRUPT);
	CHECK_EQ_INT(copy_rec(a, 5, 21, t), CL_ECORRUPT);
	CHECK_EQ_INT(evlog_wappend_raw(t, 21, junk, sizeof junk), CL_EDECODE);
	CHECK_EQ_INT(evlog_wlast(t), 20);
	CHECK_EQ_INT(evlog_wcommit(t), 0);
	CHECK(evlog_last(a, &la, ha) == 0 && evlog_last(b, &lb, hb) == 0);
	CHECK_EQ_INT(lb, 20);
	CHECK(memcmp(ha, hb, EV_HASH_LEN) == 0);
	CHECK_EQ_INT(verify_log(b), 20);
	/* a log with events keeps its epoch; its own epoch again is fine */
	CHECK_EQ_INT(evlog_adopt_epoch(b, "0123456789abcdef0123456789abcdef"), CL_EEXIST);
	CHECK_EQ_INT(evlog_adopt_epoch(b, evlog_epoch(a)), 0);
	evlog_close(b);
	/* reopened: the epoch was stored */
	REQUIRE(evlog_open(&b, db, 0, 0) == 0);
	CHECK(strcmp(evlog_epoch(a), evlog_epoch(b)) == 0);
	CHECK_EQ_INT(verify_log(b), 20);
	evlog_close(b);
	evlog_close(a);
}

/* ---- corruption with raw LMDB ----------------------------------------- */

enum tamper { FLIP_TITLE, FLIP_FIRST_BYTE, DELETE_KEY, META_LAST, META_FORMAT };

/* Change the stored log under evlog's feet. Returns 0 on success. */
static int tamper(const char *dir, enum tamper how, uint64_t seq)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;
	uint8_t kb[8], val[1024];
	int rc;

	for (int i = 0; i < 8; i++)
		kb[i] = (uint8_t)(seq >> (56 - 8 * i));
	k.mv_size = 8;
	k.mv_data = kb;
	if (mdb_env_create(&env) != 0)
		return -1;
	mdb_env_set_maxdbs(env, 4);
	mdb_env_set_mapsize(env, (size_t)1 << 30);
	rc = mdb_env_open(env, dir, 0, 0600);
	if (rc == 0)
		rc = mdb_txn_begin(env, NULL, 0, &txn);
	if (rc) {
		mdb_env_close(env);
		return rc;
	}
	if (how == META_LAST || how == META_FORMAT) {
		rc = mdb_dbi_open(txn, "meta", 0, &dbi);
		if (how == META_LAST) {
			k.mv_size = 4;
			k.mv_data = "last";
			v.mv_size = 8;
			v.mv_data = kb;
		} else {
			static uint8_t two[4] = { 0, 0, 0, 2 };

			k.mv_size = 6;
			k.mv_data = "format";
			v.mv_size = 4;
			v.mv_data = two;
		}
		if (rc == 0)
			rc = mdb_put(txn, dbi, &k, &v, 0);
	} else {
		rc = mdb_dbi_open(txn, "events", 0, &dbi);
		if (rc == 0 && how == DELETE_KEY)
			rc = mdb_del(txn, dbi, &k, NULL);
		if (rc == 0 && how != DELETE_KEY)
			rc = mdb_get(txn, dbi, &k, &v);
		if (rc == 0 && how != DELETE_KEY) {
			uint8_t *p;

			if (v.mv_size > sizeof val) {
				rc = -1;
			} else {
				memcpy(val, v.mv_data, v.mv_size);
				if (how == FLIP_FIRST_BYTE) {
					val[0] ^= 0x01;
				} else {
					p = memmem(val, v.mv_size, "entry number", 12);
					if (p)
						p[0] = 'E';   /* still valid UTF-8 */
					else
						rc = -1;
				}
				v.mv_data = val;
				if (rc == 0)
					rc = mdb_put(txn, dbi, &k, &v, 0);
			}
		}
	}
	if (rc == 0)
		rc = mdb_txn_commit(txn);
	else
		mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* How read_after reads the log back. */
enum readway { READ_ITER, READ_REPLAY, READ_REPLAY_SERIAL };

/* An apply for evlog_replay that counts events and checks their order. */
struct counter {
	uint64_t next;        /* seq expected next */
	long n;
	uint64_t fail_at;     /* refuse this seq with CL_ESTATE (0 = never) */
	long idle;
};

static int count_apply(void *arg, const struct event *ev, size_t n)
{
	struct counter *c = arg;

	CHECK(n >= 1 && n <= EVLOG_REPLAY_BATCH);
	for (size_t i = 0; i < n; i++) {
		char want[64];

		if (c->fail_at && ev[i].seq == c->fail_at)
			return CL_ESTATE;
		/* in order, and the strings still point at live bytes (past the
		 * first letter, which t_corruption's FLIP_TITLE changes) */
		snprintf(want, sizeof want, "entry number %llu", (unsigned long long)ev[i].seq);
		if (ev[i].seq != c->next || ev[i].type != EV_ENTRY_CREATED ||
		    ev[i].ids.entry != ev[i].seq || ev[i].title.n != strlen(want) ||
		    memcmp(ev[i].title.p + 1, want + 1, ev[i].title.n - 1) != 0)
			return CL_EINVAL;
		c->next++;
		c->n++;
	}
	return 0;
}

static int count_idle(void *arg)
{
	((struct counter *)arg)->idle++;
	return 0;
}

/* Read the log in dir from seq 1 the given way; *good gets the number of
 * events returned (applied) before the error. */
static int read_back(const char *dir, enum readway way, int *good)
{
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	struct counter c = { .next = 1 };
	int rc;

	*good = 0;
	rc = evlog_open(&log, dir, 0, 0);
	if (rc)
		return rc;
	if (way == READ_ITER) {
		rc = evlog_iter_new(log, 1, &it);
		if (rc == 0) {
			while ((rc = evlog_iter_next_event(it, &ev)) == 1)
				(*good)++;
			/* the error sticks */
			if (rc < 0 && evlog_iter_next_event(it, &ev) != rc)
				rc = -103;
			evlog_iter_free(it);
		}
	} else {
		rc = evlog_replay(log, 1, 0, way == READ_REPLAY_SERIAL ? EVLOG_REPLAY_SERIAL : 0,
				  count_apply, count_idle, &c);
		*good = (int)c.n;
	}
	evlog_close(log);
	return rc;
}

/* Make a log of n events (appended as 4 + the rest), tamper, and return what
 * a full read the given way reports; *good as for read_back. */
static int read_after_n(int n, enum tamper how, uint64_t seq, enum readway way, int *good)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	int rc;

	*good = 0;
	if (evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) != 0)
		return -100;
	rc = append_n(log, 4);
	if (rc == 0)
		rc = append_n(log, n - 4);
	evlog_close(log);
	if (rc)
		return -101;
	if (tamper(dir, how, seq) != 0)
		return -102;
	return read_back(dir, way, good);
}

/* The 10-event log of t_corruption, read with the iterator. */
static int read_after(enum tamper how, uint64_t seq, int *good)
{
	return read_after_n(10, how, seq, READ_ITER, good);
}

static void t_corruption(void)
{
	int good, rc;

	/* a changed title in record 5 decodes, but record 6's prev_hash
	 * no longer matches */
	CHECK_EQ_INT(read_after(FLIP_TITLE, 5, &good), CL_ECORRUPT);
	CHECK_EQ_INT(good, 5);
	/* the last record: no later prev_hash covers it, meta head does */
	CHECK_EQ_INT(read_after(FLIP_TITLE, 10, &good), CL_ECORRUPT);
	CHECK_EQ_INT(good, 10);
	/* a broken envelope */
	rc = read_after(FLIP_FIRST_BYTE, 3, &good);
	CHECK(rc == CL_EDECODE || rc == CL_ECORRUPT);
	CHECK_EQ_INT(good, 2);
	/* a gap */
	CHECK_EQ_INT(read_after(DELETE_KEY, 5, &good), CL_ECORRUPT);
	CHECK_EQ_INT(good, 4);
	/* the first record can be checked against hash(0) too */
	CHECK_EQ_INT(read_after(DELETE_KEY, 1, &good), CL_ECORRUPT);
	CHECK_EQ_INT(good, 0);
	/* meta says 9 but there are 10 */
	CHECK_EQ_INT(read_after(META_LAST, 9, &good), CL_ECORRUPT);
	/* meta says 11 but there are 10: an append would collide, the read
	 * ends short */
	CHECK_EQ_INT(read_after(META_LAST, 11, &good), CL_ECORRUPT);
	CHECK_EQ_INT(good, 10);
	/* an unknown format is refused at open */
	CHECK_EQ_INT(read_after(META_FORMAT, 0, &good), CL_ECORRUPT);
}

/*
 * evlog_replay (chain on a second thread, and its one-thread fallback)
 * must stop where the iterator stops, with the same code, having applied the
 * same events: a small log, and one several replay rings long.
 */
static void t_replay_corruption(void)
{
	static const struct {
		int n;
		enum tamper how;
		uint64_t seq;
	} cases[] = {
		{ 10, FLIP_TITLE, 5 }, { 10, FLIP_TITLE, 10 }, { 10, FLIP_FIRST_BYTE, 3 },
		{ 10, DELETE_KEY, 5 }, { 10, DELETE_KEY, 1 }, { 10, META_LAST, 9 },
		{ 10, META_LAST, 11 }, { 10, FLIP_TITLE, 1 },
		{ 9000, FLIP_TITLE, 6001 }, { 9000, FLIP_FIRST_BYTE, 4097 },
		{ 9000, DELETE_KEY, 8192 }, { 9000, FLIP_TITLE, 9000 }, { 9000, META_LAST, 8999 },
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		int good_it, rc_it = read_after_n(cases[i].n, cases[i].how, cases[i].seq,
						  READ_ITER, &good_it);

		CHECK(rc_it < 0 && rc_it > -100);   /* every case is caught */
		for (int way = READ_REPLAY; way <= READ_REPLAY_SERIAL; way++) {
			int good, rc = read_after_n(cases[i].n, cases[i].how, cases[i].seq,
						    (enum readway)way, &good);

			if (rc != rc_it || good != good_it)
				fprintf(stderr, "  case %zu way %d: %d after %d, iterator %d after %d\n",
					i, way, rc, good, rc_it, good_it);
			CHECK_EQ_INT(rc, rc_it);
			CHECK_EQ_INT(good, good_it);
		}
	}
}

/* A clean log several rings long: every way reads all of it; from, upto and
 * an apply that refuses behave as the loop they replace. */
static void t_replay(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	int good;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) == 0);
	for (int i = 0; i < 10; i++)
		REQUIRE(append_n(log, 1000) == 0);
	evlog_close(log);
	for (int way = READ_ITER; way <= READ_REPLAY_SERIAL; way++) {
		CHECK_EQ_INT(read_back(dir, (enum readway)way, &good), 0);
		CHECK_EQ_INT(good, 10000);
	}

	REQUIRE(evlog_open(&log, dir, EVLOG_RDONLY, 0) == 0);
	for (unsigned flags = 0; flags <= EVLOG_REPLAY_SERIAL; flags++) {
		struct counter c = { .next = 1 };

		/* through upto */
		CHECK_EQ_INT(evlog_replay(log, 1, 5000, flags, count_apply, NULL, &c), 0);
		CHECK_EQ_INT(c.n, 5000);
		/* from the middle, to the end and to upto */
		c = (struct counter){ .next = 4000 };
		CHECK_EQ_INT(evlog_replay(log, 4000, 0, flags, count_apply, NULL, &c), 0);
		CHECK_EQ_INT(c.n, 6001);
		c = (struct counter){ .next = 4000 };
		CHECK_EQ_INT(evlog_replay(log, 4000, 4100, flags, count_apply, NULL, &c), 0);
		CHECK_EQ_INT(c.n, 101);
		/* upto before from: nothing */
		c = (struct counter){ .next = 4000 };
		CHECK_EQ_INT(evlog_replay(log, 4000, 3999, flags, count_apply, NULL, &c), 0);
		CHECK_EQ_INT(c.n, 0);
		/* from past the end: nothing, and no error */
		c = (struct counter){ .next = 20000 };
		CHECK_EQ_INT(evlog_replay(log, 20000, 0, flags, count_apply, NULL, &c), 0);
		CHECK_EQ_INT(c.n, 0);
		/* apply refuses seq 7000: its code, and the 6999 before applied */
		c = (struct counter){ .next = 1, .fail_at = 7000 };
		CHECK_EQ_INT(evlog_replay(log, 1, 0, flags, count_apply, count_idle, &c),
			     CL_ESTATE);
		CHECK_EQ_INT(c.n, 6999);
		if (flags & EVLOG_REPLAY_SERIAL)
			CHECK_EQ_INT(c.idle, 0);
	}
	CHECK_EQ_INT(evlog_replay(log, 1, 0, 0, NULL, NULL, NULL), CL_EINVAL);
	evlog_close(log);
}

static void t_truncated_meta_and_append_collision(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_txn *t;
	struct event ev;
	char title[64];

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE | EVLOG_NOSYNC, 0) == 0);
	CHECK(append_n(log, 10) == 0);
	evlog_close(log);
	REQUIRE(tamper(dir, META_LAST, 9) == 0);
	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	/* seq 10 exists already: MDB_APPEND refuses it; the txn is poisoned */
	REQUIRE(evlog_wbegin(log, 9, NULL, &t) == 0);
	mk_entry(&ev, 10, title, sizeof title);
	CHECK_EQ_INT(evlog_wappend(t, &ev), CL_ECORRUPT);
	CHECK_EQ_INT(evlog_wcommit(t), CL_ECORRUPT);
	evlog_close(log);
}

/* ---- crashes, backup, epoch, bootstrap -------------------------------- */

static void t_kill9(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	uint64_t last, prev = 0;
	int kills = 0, mid = 0;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	evlog_close(log);
	srand((unsigned)getpid());
	for (int round = 0; round < 24; round++) {
		pid_t pid = fork_child();
		long long n;

		REQUIRE(pid >= 0);
		if (pid == 0)
			child_writer(dir, -1, 10, 0);
		/* once it has committed something, kill it at a random moment */
		REQUIRE(evlog_open(&log, dir, EVLOG_RDONLY, 0) == 0);
		last = prev;
		for (int ms = 0; ms < 20000 && last == prev; ms++) {
			usleep_ms(1);
			CHECK(evlog_last(log, &last, NULL) == 0);
		}
		evlog_close(log);
		usleep_ms(rand() % 15);
		CHECK(kill(pid, SIGKILL) == 0);
		if (wait_child(pid) == 128 + SIGKILL)
			kills++;
		REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
		CHECK(evlog_last(log, &last, NULL) == 0);
		CHECK_EQ_INT(last % 10, 0);     /* every committed batch whole */
		CHECK(last >= prev);
		mid += last > prev;
		n = verify_log(log);
		CHECK_EQ_INT(n, (long long)last);
		prev = last;
		evlog_close(log);
	}
	CHECK(kills >= 20);
	fprintf(stderr, "  kill9: %d kills, %d rounds with progress, last %llu\n", kills, mid,
		(unsigned long long)prev);
	CHECK(mid >= 20);                       /* the writer really was writing */
	/* and a normal writer carries on after all that */
	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	CHECK(append_n(log, 10) == 0);
	CHECK_EQ_INT(verify_log(log), (long long)prev + 10);
	evlog_close(log);
}

static void t_backup_live(void)
{
	const char *dir = harness_tmpdir();
	const char *base = harness_tmpdir();
	char dest[400], file[450];
	struct evlog *log, *bk;
	uint64_t last = 0, blast = 0;
	long long n;
	pid_t w;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(append_n(log, 10) == 0);
	w = fork_child();
	REQUIRE(w >= 0);
	if (w == 0)
		child_writer(dir, 400, 10, 0);
	while (last < 500 && evlog_last(log, &last, NULL) == 0)
		usleep_ms(1);
	snprintf(dest, sizeof dest, "%s/backup/one", base);
	CHECK(evlog_backup(log, dest) == 0);            /* missing dir: made */
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(evlog_backup(log, dest), CL_EEXIST);   /* not over a log */
	CHECK_EQ_INT(wait_child(w), 0);

	REQUIRE(evlog_open(&bk, dest, EVLOG_RDONLY, 0) == 0);
	CHECK(strcmp(evlog_epoch(bk), evlog_epoch(log)) == 0);
	CHECK(evlog_last(bk, &blast, NULL) == 0);
	CHECK_EQ_INT(blast % 10, 0);
	CHECK(blast >= 500);
	n = verify_log(bk);
	CHECK_EQ_INT(n, (long long)blast);
	evlog_close(bk);
	CHECK_EQ_INT(verify_log(log), 4010);
	evlog_close(log);
	snprintf(file, sizeof file, "%s/data.mdb", dest);
	CHECK(access(file, R_OK) == 0);
}

static void t_new_epoch(void)
{
	const char *dir = harness_tmpdir();
	char sub[400], before[EVLOG_EPOCH_STRLEN + 1];
	struct evlog *log;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK(append_n(log, 7) == 0);
	snprintf(before, sizeof before, "%s", evlog_epoch(log));
	evlog_close(log);
	CHECK(evlog_new_epoch(dir) == 0);
	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	CHECK(strcmp(before, evlog_epoch(log)) != 0);
	CHECK_EQ_INT(strlen(evlog_epoch(log)), EVLOG_EPOCH_STRLEN);
	CHECK_EQ_INT(verify_log(log), 7);       /* history untouched */
	evlog_close(log);
	snprintf(sub, sizeof sub, "%s/missing", dir);
	CHECK_EQ_INT(evlog_new_epoch(sub), CL_ENOTFOUND);
}

#define BOOT_NOW INT64_C(1795766400000000)   /* 2026-11-27T08:00:00Z */

static void t_bootstrap(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log;
	struct evlog_iter *it;
	struct event ev;
	char token[TOKEN_LEN + 1], again[TOKEN_LEN + 1];
	uint8_t h[EV_HASH_LEN];
	uint64_t last;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	CHECK_EQ_INT(bootstrap_admin(log, "not a name!", BOOT_NOW, token), CL_EINVAL);
	CHECK_EQ_INT(token[0], '\0');
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 0);

	REQUIRE(bootstrap_admin(log, "root", BOOT_NOW, token) == 0);
	CHECK_EQ_INT(strlen(token), TOKEN_LEN);
	CHECK(strncmp(token, TOKEN_PREFIX, 4) == 0);
	REQUIRE(evlog_iter_new(log, 1, &it) == 0);
	REQUIRE(evlog_iter_next_event(it, &ev) == 1);
	CHECK_EQ_INT(ev.seq, 1);
	CHECK_EQ_INT(ev.type, EV_USER_CREATED);
	CHECK_EQ_INT(ev.ids.user, 1);
	CHECK_EQ_INT(ev.actor, 0);
	CHECK_EQ_INT(ev.role, ROLE_ADMIN);
	CHECK(ev.ts == BOOT_NOW);               /* the caller's clock, not the wall's */
	CHECK(ev.name.n == 4 && memcmp(ev.name.p, "root", 4) == 0);
	REQUIRE(evlog_iter_next_event(it, &ev) == 1);
	CHECK_EQ_INT(ev.type, EV_TOKEN_ISSUED);
	CHECK_EQ_INT(ev.ids.user, 1);
	CHECK_EQ_INT(ev.ids.token, 1);
	CHECK(ev.ts == BOOT_NOW);
	CHECK(ev.label.n == 9 && memcmp(ev.label.p, "bootstrap", 9) == 0);
	token_hash(token, strlen(token), h);
	CHECK(memcmp(ev.token_hash, h, EV_HASH_LEN) == 0);
	CHECK_EQ_INT(evlog_iter_next_event(it, &ev), 0);
	evlog_iter_free(it);

	CHECK_EQ_INT(bootstrap_admin(log, "root", BOOT_NOW + 1, again), CL_EEXIST);
	CHECK_EQ_INT(again[0], '\0');
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 2);
	evlog_close(log);
}

/* ---- the deferred meta sync ------------------------------------------ */

static int wakes;                       /* the sync thread's wake-ups */

static void count_wake(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&wakes, 1, __ATOMIC_SEQ_CST);
}

static void t_defer_sync(void)
{
	const char *dir = harness_tmpdir();
	struct evlog *log, *ro;
	struct shared_read r;
	uint64_t last = 0;
	int err = -1;

	REQUIRE(evlog_open(&log, dir, EVLOG_CREATE, 0) == 0);
	REQUIRE(append_n(log, 5) == 0);
	CHECK_EQ_INT(evlog_defer_sync(log, count_wake, NULL), 0);
	CHECK_EQ_INT(evlog_defer_sync(log, NULL, NULL), CL_EINVAL);   /* on already */
	CHECK_EQ_INT(evlog_durable(log, &err), 5);    /* synced when it started */
	CHECK_EQ_INT(err, 0);
	REQUIRE(append_n(log, 10) == 0);
	/* the commit is visible at once, to this process and to others */
	REQUIRE(evlog_open(&ro, dir, EVLOG_RDONLY, 0) == 0);
	CHECK(evlog_last(ro, &last, NULL) == 0);
	CHECK_EQ_INT(last, 15);
	evlog_close(ro);
	CHECK_EQ_INT(evlog_sync_wait(log, 15), 0);
	CHECK(evlog_durable(log, NULL) >= 15);
	/* the sync thread wakes its owner after it released the waiters, so
	 * the wake-up may still be on its way (bounded: 10,000 naps of 1 ms) */
	for (int i = 0; i < 10000 && __atomic_load_n(&wakes, __ATOMIC_SEQ_CST) < 1; i++) {
		struct timespec nap = { 0, 1000000L };

		nanosleep(&nap, NULL);
	}
	CHECK(__atomic_load_n(&wakes, __ATOMIC_SEQ_CST) >= 1);
	CHECK_EQ_INT(evlog_sync_wait(log, 16), CL_EINVAL);   /* never committed */
	/* the owner's other threads read only what it says is durable */
	evlog_share_upto(log, 12);
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 1, 100, 1 << 20, collect, &r, &last), 0);
	CHECK_EQ_INT(r.n, 12);
	CHECK_EQ_INT(last, 12);
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 13, 100, 1 << 20, collect, &r, NULL), 0);
	CHECK_EQ_INT(r.n, 0);
	evlog_share_upto(log, 0);
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 13, 100, 1 << 20, collect, &r, NULL), 0);
	CHECK_EQ_INT(r.n, 3);
	/* a failing sync sticks: nothing more becomes durable */
	evlog_sync_test(log, 0, 1);
	REQUIRE(append_n(log, 1) == 0);
	CHECK_EQ_INT(evlog_sync_wait(log, 16), CL_EIO);
	CHECK_EQ_INT(evlog_durable(log, &err), 15);
	CHECK_EQ_INT(err, CL_EIO);
	evlog_close(log);       /* stops the thread, syncs for real */
	/* reopened: every commit is there and the chain checks */
	REQUIRE(evlog_open(&log, dir, 0, 0) == 0);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 16);
	memset(&r, 0, sizeof r);
	CHECK_EQ_INT(evlog_read_shared(log, 1, 100, 1 << 20, collect, &r, NULL), 0);
	CHECK_EQ_INT(r.n, 16);
	CHECK_EQ_INT(r.bad, 0);
	evlog_close(log);
	/* not for a log that does not sync, or read-only */
	REQUIRE(evlog_open(&log, dir, EVLOG_NOSYNC, 0) == 0);
	CHECK_EQ_INT(evlog_defer_sync(log, NULL, NULL), CL_EINVAL);
	evlog_close(log);
	REQUIRE(evlog_open(&log, dir, EVLOG_RDONLY, 0) == 0);
	CHECK_EQ_INT(evlog_defer_sync(log, NULL, NULL), CL_EINVAL);
	evlog_close(log);
}

int main(void)
{
	RUN(t_open_missing);
	RUN(t_create_reopen);
	RUN(t_iter_from);
	RUN(t_hash_chain);
	RUN(t_wappend_fields);
	RUN(t_idempotent);
	RUN(t_conflict_other_process);
	RUN(t_reader_while_writer);
	RUN(t_rdonly_while_writer);
	RUN(t_map_growth);
	RUN(t_mapsize_reopen);
	RUN(t_fixed_map);
	RUN(t_refuses_damaged_dir);
	RUN(t_map_resized_with_iterator);
	RUN(t_read_shared);
	RUN(t_read_shared_while_growing);
	RUN(t_defer_sync);
	RUN(t_copy_raw);
	RUN(t_corruption);
	RUN(t_replay);
	RUN(t_replay_corruption);
	RUN(t_truncated_meta_and_append_collision);
	RUN(t_kill9);
	RUN(t_backup_live);
	RUN(t_new_epoch);
	RUN(t_bootstrap);
	return harness_done();
}
