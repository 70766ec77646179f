/*
 * test_tools_admin.c - tools/admin.c: init, commands with the conflict
 * retry against a real second writer (a forked process), revoke targets,
 * backup / restore, the fake clock and the seed workload.
 */
#include "harness.h"
#include "../../tools/admin.h"
#include "../../tools/audit.h"

#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *new_log(char token[TOKEN_LEN + 1])
{
	const char *dir = harness_tmpdir();
	char err[ADMIN_ERR_LEN];

	if (admin_init(dir, "root", token, err) != 0)
		fprintf(stderr, "init: %s\n", err);
	return dir;
}

static int exec_ok(struct admin *a, const char *op, json_t *params, struct admin_out *out)
{
	char err[ADMIN_ERR_LEN];
	struct cl_fail fail;
	int rc = admin_exec(a, op, params, out, &fail, err);

	if (rc)
		fprintf(stderr, "  %s: %d %s %s\n", op, rc, fail.message, err);
	json_decref(params);
	return rc;
}

static void t_init(void)
{
	char token[TOKEN_LEN + 1], again[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	const char *dir = new_log(token);
	struct evlog *log = NULL;
	uint64_t last = 0;

	CHECK_EQ_INT(strlen(token), TOKEN_LEN);
	CHECK(strncmp(token, TOKEN_PREFIX, 4) == 0);
	REQUIRE(evlog_open(&log, dir, EVLOG_RDONLY, 0) == 0);
	CHECK(evlog_last(log, &last, NULL) == 0);
	CHECK_EQ_INT(last, 2);
	evlog_close(log);

	CHECK_EQ_INT(admin_init(dir, "other", again, err), CL_EEXIST);
	CHECK(strstr(err, "already holds a log") != NULL);
	CHECK(again[0] == '\0');
	CHECK_EQ_INT(admin_init(harness_tmpdir(), "bad name!", again, err), CL_EINVAL);
	CHECK(strstr(err, "not a valid user name") != NULL);
	CHECK_EQ_INT(admin_init(harness_tmpdir(), "", again, err), CL_EINVAL);
}

static void t_open_errors(void)
{
	char err[ADMIN_ERR_LEN], path[400];
	const char *dir = harness_tmpdir();
	struct admin a;
	FILE *f;

	CHECK_EQ_INT(admin_open(&a, dir, 0, err), CL_ENOTFOUND);
	CHECK(strstr(err, "no log in") != NULL);
	snprintf(path, sizeof path, "%s/data.mdb", dir);
	f = fopen(path, "w");
	REQUIRE(f != NULL);
	fputs("this is not an LMDB file, but it is long enough to look like a page header. "
	      "this is not an LMDB file, but it is long enough to look like a page header.",
	      f);
	fclose(f);
	CHECK(admin_open(&a, dir, 0, err) != 0);
	CHECK(strstr(err, dir) != NULL);
}

static void t_commands(void)
{
	char token[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	const char *dir = new_log(token);
	struct admin_out out;
	struct cl_fail fail;
	struct admin a;
	const char *tok;

	REQUIRE(admin_open(&a, dir, 0, err) == 0);
	CHECK_EQ_INT(a.actor, 1);
	REQUIRE(exec_ok(&a, "createUser", json_pack("{s:s}", "name", "alice"), &out) == 0);
	CHECK_EQ_INT(out.first_seq, 3);
	CHECK_EQ_INT(out.n, 2);
	tok = json_string_value(json_object_get(out.secret, "token"));
	CHECK(tok && strlen(tok) == TOKEN_LEN);
	admin_out_release(&out);

	/* duplicate: refused by core with its code, nothing appended */
	json_t *dup = json_pack("{s:s}", "name", "alice");
	CHECK_EQ_INT(admin_exec(&a, "createUser", dup, &out, &fail, err), CL_ESTATE);
	CHECK_EQ_INT(fail.code, CMD_CONFLICT);
	CHECK(strstr(fail.message, "already exists") != NULL);
	json_decref(dup);
	CHECK_EQ_INT(proj_seq(a.proj), 4);

	/* --as: a member cannot act as admin; an admin can */
	CHECK_EQ_INT(admin_act_as(&a, "alice", 1, err), CL_ESTATE);
	CHECK_EQ_INT(admin_act_as(&a, "nobody", 1, err), CL_ENOTFOUND);
	CHECK_EQ_INT(admin_act_as(&a, "root", 1, err), 0);
	admin_close(&a);
}

/*
 * A second process appends between our replay and our append: the first
 * append fails with CL_ECONFLICT inside admin_exec, which applies the new
 * events and succeeds on the next try, judged against the new state.
 */
static void t_conflict_retry(void)
{
	char token[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	const char *dir = new_log(token);
	struct admin_out out;
	struct cl_fail fail;
	struct admin a;
	int go[2], done[2], status = 0;
	pid_t pid;
	char c = 0;

	REQUIRE(pipe(go) == 0 && pipe(done) == 0);
	pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {   /* the other writer: opens its own env after the fork */
		struct admin b;
		int rc = 1;

		if (read(go[0], &c, 1) == 1 && admin_open(&b, dir, 0, err) == 0) {
			rc = exec_ok(&b, "createUser", json_pack("{s:s}", "name", "bob"), &out);
			admin_out_release(&out);
			admin_close(&b);
		}
		if (write(done[1], "x", 1) != 1)
			rc = 1;
		_exit(rc);
	}
	REQUIRE(admin_open(&a, dir, 0, err) == 0);
	CHECK_EQ_INT(proj_seq(a.proj), 2);
	REQUIRE(write(go[1], "x", 1) == 1);
	REQUIRE(read(done[0], &c, 1) == 1);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHECK_EQ_INT(proj_seq(a.proj), 2);  /* stale: bob is not known here yet */

	REQUIRE(exec_ok(&a, "createUser", json_pack("{s:s}", "name", "carol"), &out) == 0);
	CHECK_EQ_INT(out.first_seq, 5);     /* after bob's two events */
	CHECK_EQ_INT(json_integer_value(json_object_get(out.reply, "user")), 3);
	admin_out_release(&out);

	json_t *dup = json_pack("{s:s}", "name", "bob");
	CHECK_EQ_INT(admin_exec(&a, "createUser", dup, &out, &fail, err), CL_ESTATE);
	CHECK_EQ_INT(fail.code, CMD_CONFLICT);
	json_decref(dup);
	admin_close(&a);
	close(go[0]);
	close(go[1]);
	close(done[0]);
	close(done[1]);
}

static void t_revoke_targets(void)
{
	char token[TOKEN_LEN + 1], alice_tok[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	const char *dir = new_log(token);
	struct admin_out out;
	struct admin a;
	uint64_t *ids = NULL;
	size_t n = 0;

	REQUIRE(admin_open(&a, dir, 0, err) == 0);
	REQUIRE(exec_ok(&a, "createUser", json_pack("{s:s}", "name", "alice"), &out) == 0);
	snprintf(alice_tok, sizeof alice_tok, "%s",
		 json_string_value(json_object_get(out.secret, "token")));
	admin_out_release(&out);
	REQUIRE(exec_ok(&a, "issueToken", json_pack("{s:s, s:s}", "user", "alice", "label",
						    "laptop"), &out) == 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(out.reply, "token_id")), 3);
	admin_out_release(&out);

	/* whole token */
	CHECK_EQ_INT(admin_revoke_targets(&a, alice_tok, ADMIN_REVOKE_GUESS, &ids, &n, err), 0);
	CHECK(n == 1 && ids[0] == 2);
	free(ids);
	/* a prefix cannot be matched against hashes */
	alice_tok[12] = '\0';
	CHECK_EQ_INT(admin_revoke_targets(&a, alice_tok, ADMIN_REVOKE_GUESS, &ids, &n, err),
		     CL_EUSAGE);
	CHECK(strstr(err, "not a whole token") != NULL);
	/* a whole but unknown token */
	CHECK_EQ_INT(admin_revoke_targets(&a, "clg_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
					  ADMIN_REVOKE_GUESS, &ids, &n, err), CL_ENOTFOUND);
	/* by id, then by user */
	CHECK_EQ_INT(admin_revoke_targets(&a, "3", ADMIN_REVOKE_GUESS, &ids, &n, err), 0);
	CHECK(n == 1 && ids[0] == 3);
	free(ids);
	CHECK_EQ_INT(admin_revoke_targets(&a, "99", ADMIN_REVOKE_ID, &ids, &n, err),
		     CL_ENOTFOUND);
	CHECK_EQ_INT(admin_revoke_targets(&a, "alice", ADMIN_REVOKE_GUESS, &ids, &n, err), 0);
	CHECK(n == 2 && ids[0] == 2 && ids[1] == 3);
	free(ids);
	REQUIRE(exec_ok(&a, "revokeToken", json_pack("{s:I}", "token", (json_int_t)3), &out) == 0);
	admin_out_release(&out);
	CHECK_EQ_INT(admin_revoke_targets(&a, "3", ADMIN_REVOKE_GUESS, &ids, &n, err), CL_ESTATE);
	CHECK(strstr(err, "already revoked") != NULL);
	CHECK_EQ_INT(admin_revoke_targets(&a, "alice", ADMIN_REVOKE_USER, &ids, &n, err), 0);
	CHECK(n == 1 && ids[0] == 2);
	free(ids);
	CHECK_EQ_INT(admin_revoke_targets(&a, "nobody", ADMIN_REVOKE_GUESS, &ids, &n, err),
		     CL_ENOTFOUND);
	admin_close(&a);
}

static void t_backup_restore(void)
{
	char token[TOKEN_LEN + 1], err[ADMIN_ERR_LEN], epoch[EVLOG_EPOCH_STRLEN + 1];
	char dest[320], dest2[320], restored[320], orig_epoch[EVLOG_EPOCH_STRLEN + 1];
	char dir[280], tmp[280];
	struct audit_summary sum;
	struct evlog *log = NULL;
	uint64_t appended;
	struct admin a;

	/* harness_tmpdir returns a static buffer: copy each */
	snprintf(dir, sizeof dir, "%s", new_log(token));
	snprintf(tmp, sizeof tmp, "%s", harness_tmpdir());
	if (admin_open(&a, dir, 0, err) != 0)
		fprintf(stderr, "  open: %s\n", err);
	REQUIRE(a.log != NULL);
	REQUIRE(admin_seed(&a, 500, 3, 100, &appended, err) == 0);
	snprintf(orig_epoch, sizeof orig_epoch, "%s", evlog_epoch(a.log));
	admin_close(&a);

	snprintf(dest, sizeof dest, "%s/backup", tmp);
	CHECK_EQ_INT(admin_backup(dir, dest, 0, &sum, err), 0);
	CHECK(sum.events >= 500);
	/* not over an existing backup */
	CHECK_EQ_INT(admin_backup(dir, dest, 0, &sum, err), CL_EEXIST);
	CHECK(strstr(err, "not empty") != NULL);
	snprintf(dest2, sizeof dest2, "%s/nolog", tmp);
	CHECK_EQ_INT(admin_backup(dest2, dest2, 0, &sum, err), CL_ENOTFOUND);

	snprintf(restored, sizeof restored, "%s/restored", tmp);
	CHECK_EQ_INT(admin_restore(dest, restored, 0, &sum, epoch, err), 0);
	CHECK_EQ_INT(strlen(epoch), EVLOG_EPOCH_STRLEN);
	CHECK(strcmp(epoch, orig_epoch) != 0);
	REQUIRE(evlog_open(&log, restored, EVLOG_RDONLY, 0) == 0);
	CHECK(strcmp(evlog_epoch(log), epoch) == 0);
	evlog_close(log);
	/* into a non-empty directory: refused, nothing touched */
	CHECK_EQ_INT(admin_restore(dest, restored, 0, &sum, epoch, err), CL_EEXIST);
	CHECK_EQ_INT(admin_restore(dest, dir, 0, &sum, epoch, err), CL_EEXIST);
}

static void t_fake_time(void)
{
	int64_t now = 0;

	setenv("CHANGELOG_FAKE_TIME", "2026-11-27T10:02:00Z", 1);
	CHECK_EQ_INT(admin_now(&now), 0);
	CHECK_EQ_INT(now, 1795773720000000LL);
	setenv("CHANGELOG_FAKE_TIME", "1795773720000001", 1);
	CHECK_EQ_INT(admin_now(&now), 0);
	CHECK_EQ_INT(now, 1795773720000001LL);
	setenv("CHANGELOG_FAKE_TIME", "tomorrow", 1);
	CHECK_EQ_INT(admin_now(&now), CL_EUSAGE);
	setenv("CHANGELOG_FAKE_TIME", "12abc", 1);
	CHECK_EQ_INT(admin_now(&now), CL_EUSAGE);
	unsetenv("CHANGELOG_FAKE_TIME");
	CHECK_EQ_INT(admin_now(&now), 0);
	CHECK(now > 1700000000000000LL);
}

/* Same seed and clock: the same history (from seq 3; 1-2 are the bootstrap). */
static void t_seed_deterministic(void)
{
	char token[TOKEN_LEN + 1], err[ADMIN_ERR_LEN];
	char *text[2] = { NULL, NULL };
	size_t len[2] = { 0, 0 };

	for (int i = 0; i < 2; i++) {
		const char *dir = new_log(token);
		struct audit_filter f;
		struct audit_fault fault;
		struct admin a;
		uint64_t appended = 0, matched = 0;
		FILE *out = open_memstream(&text[i], &len[i]);

		setenv("CHANGELOG_FAKE_TIME", "2026-11-27T10:00:00Z", 1);
		REQUIRE(admin_open(&a, dir, 0, err) == 0);
		CHECK_EQ_INT(admin_seed(&a, 2000, 42, 256, &appended, err), 0);
		CHECK(appended >= 2000);
		memset(&f, 0, sizeof f);
		f.from_seq = 3;
		CHECK_EQ_INT(audit_log(a.log, &f, AUDIT_JSONL, out, &matched, &fault), 0);
		CHECK_EQ_INT(matched, appended);
		fclose(out);
		admin_close(&a);
	}
	unsetenv("CHANGELOG_FAKE_TIME");
	CHECK(len[0] > 0 && len[0] == len[1] && memcmp(text[0], text[1], len[0]) == 0);
	free(text[0]);
	free(text[1]);
}

int main(void)
{
	RUN(t_init);
	RUN(t_open_errors);
	RUN(t_commands);
	RUN(t_conflict_retry);
	RUN(t_revoke_targets);
	RUN(t_backup_restore);
	RUN(t_fake_time);
	RUN(t_seed_deterministic);
	return harness_done();
}
