/*
 * datadir.h - what a data directory holds, decided before LMDB maps it.
 *
 * LMDB trusts its file: an empty data.mdb is taken as a new environment
 * (so a deleted or emptied log would silently restart at seq 1), and a
 * data.mdb shorter than its meta pages say is mapped anyway, so the first
 * B-tree read past the end of the file kills the process with SIGBUS.
 * datadir_check reads the two LMDB meta pages with plain pread(2) and
 * sorts the directory into one of the states below; evlog_open runs it
 * before every mdb_env_open, so the server and every tool refuse the same
 * directories with the same sentence.
 *
 * What the check reads (LMDB 0.9, native byte order, see lmdb's mdb.c):
 * pages 0 and 1 of data.mdb are meta pages - a page header (pgno, pad,
 * flags with P_META 0x08, lower, upper) followed by MDB_meta: magic
 * 0xBEEFC0DE, version 1, address, mapsize, the free and main MDB_db
 * (the free one's md_pad is the page size), last_pg and txnid. A commit
 * with txn id t writes meta page t & 1, so in one file the two pages hold
 * consecutive txn ids (or both 0, before the first commit). The live meta
 * is the one with the higher txn id; the file must hold its pages 0 ..
 * last_pg.
 *
 * The check cannot see damage inside the B-tree (a zeroed or stale data
 * page): that is found by LMDB's own page checks and by the hash chain
 * (evlog_iter_next_event), and reported as CL_ECORRUPT by the reads.
 */
#ifndef CL_DATADIR_H
#define CL_DATADIR_H

#include <stddef.h>
#include <stdint.h>

enum datadir_state {
	DATADIR_NEW = 0,     /* missing, or holds nothing of ours: a log may be created */
	DATADIR_LOG,         /* data.mdb passes every check that can be made unmapped */
	DATADIR_NO_DATA,     /* no data.mdb, but lock.mdb, admin-token or tls/ is left */
	DATADIR_EMPTY_DATA,  /* data.mdb has zero bytes */
	DATADIR_NOT_LMDB,    /* data.mdb is not an LMDB file (no valid meta page) */
	DATADIR_BAD_META,    /* meta pages LMDB would accept, but that cannot both be ours */
	DATADIR_UNBORN,      /* an LMDB file no transaction was ever committed to */
	DATADIR_TRUNCATED,   /* shorter than its live meta page says */
	DATADIR_UNREADABLE,  /* stat, open or read failed */
};

struct datadir_check {
	enum datadir_state state;
	uint64_t file_bytes;   /* size of data.mdb (0 if missing) */
	uint64_t need_bytes;   /* bytes the live meta page claims (DATADIR_LOG, _TRUNCATED) */
	uint64_t txnid;        /* live meta page's txn id (DATADIR_LOG, _TRUNCATED) */
	char what[360];        /* one sentence for the user; "" for NEW and LOG */
};

/*
 * Classify dir. Returns 0 for DATADIR_NEW and DATADIR_LOG, CL_ECORRUPT for
 * every damaged state, CL_EIO for DATADIR_UNREADABLE; out is filled in
 * every case. Reads only; creates nothing.
 */
int datadir_check(const char *dir, struct datadir_check *out);

/*
 * The sentence for a failed evlog_open(dir) that returned rc: re-runs the
 * check so the words name what is wrong (truncated, emptied, deleted, ...)
 * and, for a damaged directory, how to restore it (docs/operations.md,
 * "Recovering a damaged data directory"). Every program that opens a log
 * prints this, so they all say the same thing about the same directory.
 */
void datadir_explain(const char *dir, int rc, char *out, size_t n);

/* "<what>. Nothing was changed. To recover, ..." for a damaged dir. */
void datadir_refusal(const char *dir, const char *what, char *out, size_t n);

#endif
