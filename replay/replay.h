/*
 * replay.h - changelog-replay: the event log materialised as SQL tables for
 * dashboards, in SQLite (the embedded default) or MySQL/MariaDB.
 *
 * Two halves behind one small interface:
 *
 *   replay.c        the driver. Reads the log read-only (EVLOG_RDONLY, safe
 *                   beside a running changelogd), turns each event into row
 *                   operations with the same meaning as core/proj.c, and
 *                   commits them in batches together with replay_state
 *                   (epoch, last applied seq) in the same SQL transaction.
 *   sql_sqlite.c    a struct replay_backend for each database. A backend only
 *   sql_mysql.c     knows how to store rows; it never decides what they hold.
 *
 * The schema is defined once (rp_tables below, docs/sql-schema.md) and each
 * backend derives its CREATE TABLE text and its column check from it.
 *
 * Every row operation is idempotent (upserts of whole rows, updates that set
 * absolute values), so a batch applied twice leaves the same tables; in
 * practice a batch is never applied twice, because the state row commits
 * with it.
 *
 * Nothing here logs: errors are CL_E* codes plus a human message the
 * backend keeps in b->err (or the driver writes into the caller's buffer);
 * replay_main.c prints them.
 */
#ifndef CL_REPLAY_H
#define CL_REPLAY_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include "../core/cl.h"
#include "../store/evlog.h"

/* ---- the schema --------------------------------------------------------- */

/* Column types, mapped to SQL per backend. */
enum rp_ctype {
	RP_INT,        /* 64-bit integer, NOT NULL */
	RP_INT_NULL,   /* 64-bit integer or NULL */
	RP_NAME,       /* short UTF-8 text (names, enums, labels, epochs) */
	RP_TIME,       /* ISO-8601 text, "2026-11-27T10:02:03.123456Z" */
	RP_TIME_NULL,
	RP_TITLE,      /* up to CL_MAX_TITLE bytes */
	RP_TEXT,       /* long UTF-8 text (bodies, event JSON) */
	RP_PATH,       /* ASCII materialised path, binary order */
};

struct rp_column {
	const char *name;
	int type;                 /* enum rp_ctype */
};

#define RP_MAX_COLUMNS 16

struct rp_table {
	const char *name;
	const struct rp_column *cols;   /* cols[0] is the primary key */
	unsigned ncols;
	const char *const *indexes;     /* "name(col, col)" strings, NULL-terminated */
};

enum rp_table_id {
	RP_T_USERS, RP_T_TOKENS, RP_T_ENTRIES, RP_T_COMMENTS,
	RP_T_STATUS, RP_T_EVENTS, RP_T_STATE, RP_T__COUNT
};
/* In creation order; replay_state is last, so a table set without it was
 * never fully created (or is being rebuilt). */
extern const struct rp_table rp_tables[RP_T__COUNT];

/* A materialised comment path: one 10-digit zero-padded id per level, joined
 * by '/'; ORDER BY path lists a thread depth-first, children in id order. */
#define RP_PATH_SEG 10
#define RP_PATH_MAX ((CL_MAX_DEPTH + 1) * (RP_PATH_SEG + 1))
#define RP_PATH_MAX_ID 9999999999ULL

/* ---- row operations ------------------------------------------------------ */

/* One bound value. Strings are borrowed for the duration of the call; a
 * backend that keeps rows past the call copies them. */
enum rp_vkind { RP_V_NULL = 0, RP_V_INT, RP_V_TEXT };
struct rp_val {
	int kind;                  /* enum rp_vkind */
	int64_t i;
	const char *s;
	size_t n;
};

/*
 * The statements a backend runs. RP_S_PUT + table id: an upsert of a whole
 * row, values in the table's column order. The updates take, in order:
 *   RP_S_USER_ROLE     role, id
 *   RP_S_TOKEN_REVOKE  revoked_at, id                   (sets revoked = 1)
 *   RP_S_ENTRY_UPD     title|NULL, body|NULL (NULL keeps the old text),
 *                      kind, status, updated, updated_us, version,
 *                      comment_count, last_activity, last_activity_us, id
 *   RP_S_ENTRY_ACT     comment_count, last_activity, last_activity_us, id
 *                      (an entry that only got comments: no indexed column
 *                      changes, so the update is a cheap row rewrite)
 *   RP_S_COMMENT_EDIT  body, edited, id                 (comment.edited)
 *   RP_S_COMMENT_DEL   id                  (sets body = '', deleted = 1)
 * A backend may delay execution until commit, but then runs the puts of
 * every table (in table order) before the updates, which is always a valid
 * order: a row is put in the batch that creates it, before any update of it.
 */
enum rp_stmt {
	RP_S_PUT = 0,
	RP_S_USER_ROLE = RP_S_PUT + RP_T__COUNT,
	RP_S_TOKEN_REVOKE,
	RP_S_ENTRY_UPD,
	RP_S_ENTRY_ACT,
	RP_S_COMMENT_EDIT,
	RP_S_COMMENT_DEL,
	RP_S__COUNT
};
#define RP_UPD_MAX_PARAMS 11

/* What the driver needs back from the tables to resume without replaying. */
struct rp_entry_state {
	uint64_t author_id;
	int kind, status;          /* enum cl_kind / cl_status */
	int64_t created_us, updated_us, last_activity_us;
	int64_t last_comment_us;   /* created_us of its newest comment (highest id) */
	uint64_t version, comment_count;
};

struct rp_comment_state {
	uint64_t entry_id, depth;
	char path[RP_PATH_MAX + 1];
};

/* The replay_state row. */
struct rp_state {
	int present;               /* 0: no row yet (fresh tables) */
	char epoch[EVLOG_EPOCH_STRLEN + 1];
	uint64_t last_seq;
};

/* ---- the backend interface ---------------------------------------------- */

struct replay_backend;

struct replay_backend_ops {
	const char *name;          /* "sqlite", "mysql" */
	/* Schema primitives; the policy (create, check, refuse) is replay.c's.
	 * columns: the table's column names in order, comma-separated, into
	 * buf; *n = 0 if the table does not exist. */
	int (*columns)(struct replay_backend *b, const char *table, char *buf,
		       size_t cap, unsigned *n);
	int (*has_rows)(struct replay_backend *b, const char *table, int *yes);
	int (*create)(struct replay_backend *b, const struct rp_table *t);  /* + indexes */
	int (*drop)(struct replay_backend *b, const char *table);           /* if exists */
	/* st->present = 0 if the row is absent. */
	int (*state_get)(struct replay_backend *b, struct rp_state *st);
	int (*begin)(struct replay_backend *b);
	/* Run (or queue) statement stmt with n values. */
	int (*exec)(struct replay_backend *b, int stmt, const struct rp_val *v, unsigned n);
	/* Commit everything since begin (the driver has put the state row). */
	int (*commit)(struct replay_backend *b);
	void (*rollback)(struct replay_backend *b);
	/* Lookups of committed rows (only called for ids from earlier runs).
	 * 0, CL_ENOTFOUND or another error. name gets a NUL-terminated copy. */
	int (*user_name)(struct replay_backend *b, uint64_t id, char *name, size_t cap);
	int (*entry_get)(struct replay_backend *b, uint64_t id, struct rp_entry_state *out);
	int (*comment_get)(struct replay_backend *b, uint64_t id, struct rp_comment_state *out);
	void (*close)(struct replay_backend *b);
};

/* Every backend struct starts with this. */
struct replay_backend {
	const struct replay_backend_ops *ops;
	char err[512];             /* the last failure, in words */
};

/* Open a SQLite file (created if absent). On failure *out is NULL, the
 * message is in err, and the return is CL_EIO (cannot open / read-only). */
int replay_sqlite_open(struct replay_backend **out, const char *path,
		       char *err, size_t errlen);

/* Connection settings for MySQL/MariaDB. */
struct replay_mysql_cfg {
	char user[128], password[256], host[256], db[128], socket[512];
	unsigned port;             /* 0: default */
	int has_password;
	const char *defaults_file; /* MYSQL_READ_DEFAULT_FILE, or NULL */
	int no_bulk;               /* force multi-row INSERT instead of array binding */
};

/*
 * Parse mysql://user:pass@host:port/db?socket=/path (percent-escapes
 * decoded; every part but db optional). CL_EUSAGE with a message on a
 * malformed URL. Does not read the environment.
 */
int replay_mysql_parse_url(const char *url, struct replay_mysql_cfg *cfg,
			   char *err, size_t errlen);

int replay_mysql_open(struct replay_backend **out, const struct replay_mysql_cfg *cfg,
		      char *err, size_t errlen);
/* 1 if the connection uses array binding (MariaDB >= 10.2, not no_bulk). */
int replay_mysql_bulk(const struct replay_backend *b);

/* ---- helpers shared by the backends (replay.c) ------------------------------ */

/* A bounded SQL text builder: appends never overflow; ok drops to 0 if the
 * text did not fit. */
struct rp_sb {
	char *buf;
	size_t cap, len;
	int ok;
};
void rp_sb_init(struct rp_sb *sb, char *buf, size_t cap);
void rp_sb_add(struct rp_sb *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The expected column list of t, comma-separated (as columns() reports it). */
void rp_table_colnames(const struct rp_table *t, char *buf, size_t cap);

/* ---- the driver ------------------------------------------------------------ */

struct replay_progress {
	uint64_t done, total;      /* events applied / to apply in this pass */
	uint64_t seq;              /* last applied */
	double elapsed;            /* seconds since the pass began */
};

struct replay_opts {
	const char *data_dir;
	int rebuild;               /* drop and recreate our tables first */
	int follow;                /* keep applying new events until *stop */
	unsigned batch;            /* events per transaction; 0 = default */
	unsigned poll_ms;          /* --follow poll period; 0 = 200 */
	volatile sig_atomic_t *stop;   /* set by a signal handler; may be NULL */
	/* Called after each commit and at most every ~100 ms; may be NULL. */
	void (*progress)(void *arg, const struct replay_progress *p);
	void *progress_arg;
	/* Test hook: stop after this many committed batches (0 = never). */
	unsigned max_batches;
};

#define REPLAY_DEFAULT_BATCH 50000
#define REPLAY_MAX_BATCH 1000000
/* A batch also commits early once its copied row text passes this. */
#define REPLAY_BATCH_BYTES (32u << 20)

struct replay_stats {
	uint64_t applied;          /* events applied by this run */
	uint64_t first, last;      /* seqs applied (first = 0: none) */
	uint64_t head;             /* last seq of the tables when it stopped */
	uint64_t batches;
	double secs;
};

/*
 * Bring the tables of b up to date with the log in o->data_dir, and with
 * o->follow keep doing so until *o->stop. Returns 0 or a CL_E* code with a
 * message in err: CL_ENOTFOUND (no log), CL_EEPOCH (tables from another
 * log; use rebuild), CL_ECORRUPT (altered table, tables ahead of the log,
 * log broken), CL_ESTATE (an event impossible in the tables' state), CL_EIO
 * (database failure; the failed transaction was rolled back).
 */
int replay_run(struct replay_backend *b, const struct replay_opts *o,
	       struct replay_stats *st, char *err, size_t errlen);

/*
 * Apply events already in memory (seqs following the tables' state) in one
 * transaction, after creating the tables if needed, with epoch as the
 * tables' epoch: replay_run's translation without a log. For the fuzz
 * target tests/fuzz/fuzz_replay_sql.c and tests. Errors as replay_run; on
 * failure the transaction is rolled back.
 */
struct event;
int replay_apply_events(struct replay_backend *b, const char *epoch, const struct event *evs,
			size_t n, char *err, size_t errlen);

#endif
