/* test_replay_sql_sqlite.c - replay/sql_sqlite.c on its own: opening (a
 * file that is not a database, a missing directory), the schema primitives,
 * an upsert twice is one row, an update with NULL keeps the old text, and a
 * rolled-back batch leaves nothing. */
#include "harness.h"

#include <stdio.h>
#include "../../replay/replay.h"

static struct rp_val vi(int64_t i)
{
	return (struct rp_val){ .kind = RP_V_INT, .i = i };
}

static struct rp_val vs(const char *s)
{
	return (struct rp_val){ .kind = RP_V_TEXT, .s = s, .n = strlen(s) };
}

static void t_open_failures(void)
{
	const char *dir = harness_tmpdir();
	struct replay_backend *b = (struct replay_backend *)1;
	char path[300], err[512];
	FILE *f;

	snprintf(path, sizeof path, "%s/junk.db", dir);
	REQUIRE((f = fopen(path, "w")));
	for (int i = 0; i < 100; i++)
		fputs("definitely not an SQLite database\n", f);
	fclose(f);
	CHECK_EQ_INT(replay_sqlite_open(&b, path, err, sizeof err), CL_EIO);
	CHECK(b == NULL && strstr(err, "not a database"));
	snprintf(path, sizeof path, "%s/no/such/dir.db", dir);
	CHECK_EQ_INT(replay_sqlite_open(&b, path, err, sizeof err), CL_EIO);
	CHECK(strstr(err, "cannot open SQLite database") != NULL);
}

static void t_rows_and_txns(void)
{
	const char *dir = harness_tmpdir();
	struct replay_backend *b = NULL;
	struct rp_entry_state es;
	struct rp_comment_state cs;
	struct rp_state st;
	char path[300], err[512], cols[512], name[80];
	struct rp_val v[15];
	unsigned n, t;
	int yes = -1;

	snprintf(path, sizeof path, "%s/r.db", dir);
	REQUIRE(replay_sqlite_open(&b, path, err, sizeof err) == 0);
	CHECK(b->ops->columns(b, "entries", cols, sizeof cols, &n) == 0 && n == 0);
	for (t = 0; t < RP_T__COUNT; t++)
		CHECK(b->ops->create(b, &rp_tables[t]) == 0);
	CHECK(b->ops->columns(b, "entries", cols, sizeof cols, &n) == 0 && n == 15);
	{
		char want[512];

		rp_table_colnames(&rp_tables[RP_T_ENTRIES], want, sizeof want);
		CHECK(!strcmp(cols, want));
	}
	CHECK(b->ops->state_get(b, &st) == 0 && !st.present);

	REQUIRE(b->ops->begin(b) == 0);
	v[0] = vi(1); v[1] = vs("ann"); v[2] = vs("admin"); v[3] = vs("t"); v[4] = vi(5);
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_USERS, v, 5) == 0);
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_USERS, v, 5) == 0);   /* idempotent */
	v[0] = vi(1); v[1] = vs("title"); v[2] = vs("body"); v[3] = vs("fix"); v[4] = vs("open");
	v[5] = vi(1); v[6] = vs("ann"); v[7] = vs("c"); v[8] = vi(10); v[9] = vs("u");
	v[10] = vi(10); v[11] = vi(1); v[12] = vi(0); v[13] = vs("l"); v[14] = vi(10);
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_ENTRIES, v, 15) == 0);
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_ENTRIES, v, 14) == CL_EINVAL);  /* wrong count */
	v[0] = vi(1); v[1] = vi(1); v[2] = (struct rp_val){ .kind = RP_V_NULL }; v[3] = vi(0);
	v[4] = vs("0000000001"); v[5] = vi(1); v[6] = vs("ann"); v[7] = vs("hi"); v[8] = vs("c");
	v[9] = vi(20); v[10] = (struct rp_val){ .kind = RP_V_NULL }; v[11] = vi(0);
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_COMMENTS, v, 12) == 0);
	v[0] = vs("hi, edited"); v[1] = vs("e"); v[2] = vi(1);
	CHECK(b->ops->exec(b, RP_S_COMMENT_EDIT, v, 3) == 0);
	CHECK(b->ops->exec(b, RP_S_COMMENT_EDIT, v, 2) == CL_EINVAL);       /* wrong count */
	v[0] = vi(1); v[1] = vs("e"); v[2] = vi(3); v[3] = vs("now");
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_STATE, v, 4) == 0);
	CHECK(b->ops->commit(b) == 0);

	/* an update with NULL title keeps it; the rest is absolute */
	REQUIRE(b->ops->begin(b) == 0);
	v[0] = (struct rp_val){ .kind = RP_V_NULL }; v[1] = vs("new body"); v[2] = vs("feature");
	v[3] = vs("resolved"); v[4] = vs("u2"); v[5] = vi(30); v[6] = vi(2); v[7] = vi(1);
	v[8] = vs("l2"); v[9] = vi(40); v[10] = vi(1);
	CHECK(b->ops->exec(b, RP_S_ENTRY_UPD, v, 11) == 0);
	CHECK(b->ops->commit(b) == 0);
	CHECK(b->ops->entry_get(b, 1, &es) == 0);
	CHECK(es.kind == KIND_FEATURE && es.status == ST_RESOLVED && es.version == 2 &&
	      es.comment_count == 1 && es.updated_us == 30 && es.last_activity_us == 40 &&
	      es.last_comment_us == 20 && es.created_us == 10 && es.author_id == 1);
	CHECK(b->ops->entry_get(b, 2, &es) == CL_ENOTFOUND);
	CHECK(b->ops->comment_get(b, 1, &cs) == 0 && cs.entry_id == 1 && cs.depth == 0 &&
	      !strcmp(cs.path, "0000000001"));
	CHECK(b->ops->user_name(b, 1, name, sizeof name) == 0 && !strcmp(name, "ann"));
	CHECK(b->ops->user_name(b, 9, name, sizeof name) == CL_ENOTFOUND);
	CHECK(b->ops->state_get(b, &st) == 0 && st.present && st.last_seq == 3 &&
	      !strcmp(st.epoch, "e"));

	/* a rolled-back batch leaves nothing */
	REQUIRE(b->ops->begin(b) == 0);
	v[0] = vi(2); v[1] = vs("bob"); v[2] = vs("member"); v[3] = vs("t"); v[4] = vi(5);
	CHECK(b->ops->exec(b, RP_S_PUT + RP_T_USERS, v, 5) == 0);
	b->ops->rollback(b);
	CHECK(b->ops->user_name(b, 2, name, sizeof name) == CL_ENOTFOUND);
	CHECK(b->ops->has_rows(b, "users", &yes) == 0 && yes == 1);
	CHECK(b->ops->drop(b, "users") == 0);
	CHECK(b->ops->columns(b, "users", cols, sizeof cols, &n) == 0 && n == 0);
	b->ops->close(b);
}

int main(void)
{
	RUN(t_open_failures);
	RUN(t_rows_and_txns);
	return harness_done();
}
