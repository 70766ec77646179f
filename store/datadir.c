/*
 * datadir.c - classify a data directory before LMDB maps it; see datadir.h.
 *
 * Everything here is plain stat(2) and pread(2): nothing is mapped, so a
 * damaged file can only produce a refusal, never a SIGBUS. The LMDB meta
 * layout is read field by field at offsets computed from the sizes LMDB
 * uses on this platform (pgno_t, txnid_t and mdb_size_t are size_t), in
 * native byte order, as LMDB writes it.
 */
#include "datadir.h"

#include "../core/cl.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* LMDB's on-disk constants (mdb.c: MDB_MAGIC, MDB_DATA_VERSION, P_META). */
#define LM_MAGIC        0xBEEFC0DEu
#define LM_DATA_VERSION 1u
#define LM_P_META       0x08u
#define LM_P_INVALID    (~(uint64_t)0)
#define LM_MIN_PSIZE    256u
#define LM_MAX_PSIZE    65536u

/* Offsets inside a meta page: MDB_page header, then MDB_meta. */
#define LM_W            sizeof(size_t)                 /* pgno_t, txnid_t, mdb_size_t */
#define LM_PG_FLAGS     (LM_W + 2)                     /* after mp_pgno, mp_pad */
#define LM_HDR          (LM_W + 8)                     /* PAGEHDRSZ */
#define LM_DB_SIZE      (8 + 5 * LM_W)                 /* MDB_db */
#define LM_M_MAGIC      (LM_HDR + 0)
#define LM_M_VERSION    (LM_HDR + 4)
#define LM_M_DBS        (LM_HDR + 8 + sizeof(void *) + LM_W)
#define LM_DB_ROOT      (8 + 4 * LM_W)                 /* md_root inside MDB_db */
#define LM_M_LAST_PG    (LM_M_DBS + 2 * LM_DB_SIZE)
#define LM_M_TXNID      (LM_M_LAST_PG + LM_W)
#define LM_META_BYTES   (LM_M_TXNID + LM_W)

/* Names of ours in a data directory, besides data.mdb (docs/operations.md). */
static const char *const leftovers[] = { "lock.mdb", "admin-token", "tls", "sessions",
					"webhook.key", "webhooks" };

struct meta {
	uint32_t psize;
	uint64_t pgno, last_pg, txnid, root[2];
};

static uint64_t rd_word(const uint8_t *p)
{
	size_t v;

	memcpy(&v, p, sizeof v);
	return (uint64_t)v;
}

static uint32_t rd32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static uint16_t rd16(const uint8_t *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof v);
	return v;
}

static int say(struct datadir_check *c, enum datadir_state st, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int say(struct datadir_check *c, enum datadir_state st, const char *fmt, ...)
{
	va_list ap;

	c->state = st;
	va_start(ap, fmt);
	vsnprintf(c->what, sizeof c->what, fmt, ap);
	va_end(ap);
	return st == DATADIR_UNREADABLE ? CL_EIO : CL_ECORRUPT;
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

/*
 * Read meta page i (at offset off) into *m. Returns NULL if it is a valid
 * LMDB meta page, else a phrase saying why not.
 */
static const char *read_meta(int fd, int i, uint64_t off, struct meta *m, char *why,
			     size_t whylen)
{
	uint8_t b[LM_META_BYTES];
	ssize_t got = pread(fd, b, sizeof b, (off_t)off);

	if (got < 0) {
		snprintf(why, whylen, "cannot read meta page %d (%s)", i, strerror(errno));
		return why;
	}
	if ((size_t)got < sizeof b) {
		snprintf(why, whylen, "meta page %d is cut off (the file ends %zd bytes into it)",
			 i, got);
		return why;
	}
	if (all_zero(b, sizeof b)) {
		snprintf(why, whylen, "meta page %d is zeroed", i);
		return why;
	}
	if (!(rd16(b + LM_PG_FLAGS) & LM_P_META) || rd32(b + LM_M_MAGIC) != LM_MAGIC) {
		snprintf(why, whylen, "page %d is not an LMDB meta page", i);
		return why;
	}
	if (rd32(b + LM_M_VERSION) != LM_DATA_VERSION) {
		snprintf(why, whylen, "meta page %d has LMDB data version %" PRIu32 ", not %u", i,
			 rd32(b + LM_M_VERSION), LM_DATA_VERSION);
		return why;
	}
	m->pgno = rd_word(b);
	m->psize = rd32(b + LM_M_DBS);          /* free db's md_pad = mm_psize */
	m->root[0] = rd_word(b + LM_M_DBS + LM_DB_ROOT);
	m->root[1] = rd_word(b + LM_M_DBS + LM_DB_SIZE + LM_DB_ROOT);
	m->last_pg = rd_word(b + LM_M_LAST_PG);
	m->txnid = rd_word(b + LM_M_TXNID);
	if (m->psize < LM_MIN_PSIZE || m->psize > LM_MAX_PSIZE || (m->psize & (m->psize - 1))) {
		snprintf(why, whylen, "meta page %d records an impossible page size (%" PRIu32 ")",
			 i, m->psize);
		return why;
	}
	if (m->pgno != (uint64_t)i) {
		snprintf(why, whylen, "meta page %d says it is page %" PRIu64, i, m->pgno);
		return why;
	}
	return NULL;
}

/* data.mdb is absent: a new directory, or a log that lost its data file. */
static int check_missing(const char *dir, struct datadir_check *c)
{
	char path[PATH_MAX], found[80] = "";
	struct stat st;
	size_t k = 0;

	for (size_t i = 0; i < sizeof leftovers / sizeof leftovers[0]; i++) {
		if ((size_t)snprintf(path, sizeof path, "%s/%s", dir, leftovers[i]) >= sizeof path)
			continue;
		if (lstat(path, &st) != 0)
			continue;
		k += (size_t)snprintf(found + k, sizeof found - k, "%s%s%s", k ? ", " : "",
				      leftovers[i], strcmp(leftovers[i], "tls") == 0 ? "/" : "");
	}
	if (!k) {
		c->state = DATADIR_NEW;
		return CL_OK;
	}
	return say(c, DATADIR_NO_DATA, "%s has no data.mdb, but %s from a log %s still there: "
		   "the log was deleted or moved", dir, found,
		   strchr(found, ',') ? "are" : "is");
}

int datadir_check(const char *dir, struct datadir_check *c)
{
	char path[PATH_MAX], why[160];
	struct meta m[2], *live;
	struct stat st;
	uint64_t pages;
	int fd, rc;

	memset(c, 0, sizeof *c);
	if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
		return say(c, DATADIR_UNREADABLE, "the path %.80s... is too long", dir);
	if (stat(dir, &st) != 0) {
		if (errno == ENOENT || errno == ENOTDIR) {
			c->state = DATADIR_NEW;
			return CL_OK;
		}
		return say(c, DATADIR_UNREADABLE, "cannot read %s (%s)", dir, strerror(errno));
	}
	if (!S_ISDIR(st.st_mode))
		return say(c, DATADIR_UNREADABLE, "%s is not a directory", dir);
	if (stat(path, &st) != 0) {
		if (errno == ENOENT)
			return check_missing(dir, c);
		return say(c, DATADIR_UNREADABLE, "cannot read %s (%s)", path, strerror(errno));
	}
	if (!S_ISREG(st.st_mode))
		return say(c, DATADIR_NOT_LMDB, "%s is not a regular file", path);
	c->file_bytes = (uint64_t)st.st_size;
	if (st.st_size == 0)
		return say(c, DATADIR_EMPTY_DATA, "%s is empty (0 bytes): the log was emptied",
			   path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return say(c, DATADIR_UNREADABLE, "cannot read %s (%s)", path, strerror(errno));
	rc = CL_OK;
	if (read_meta(fd, 0, 0, &m[0], why, sizeof why) ||
	    read_meta(fd, 1, m[0].psize, &m[1], why, sizeof why))
		rc = say(c, DATADIR_NOT_LMDB, "%s is not a valid LMDB file (%s)", path, why);
	close(fd);
	if (rc)
		return rc;

	if (m[1].psize != m[0].psize)
		return say(c, DATADIR_BAD_META, "the meta pages of %s disagree on the page size "
			   "(%" PRIu32 " and %" PRIu32 "): one of them is from another file", path,
			   m[0].psize, m[1].psize);
	if (m[0].txnid == 0 && m[1].txnid == 0)
		return say(c, DATADIR_UNBORN, "%s is an LMDB file that was never written to "
			   "(no log in it)", path);
	/* a commit with txn id t writes meta page t & 1; the other holds t - 1 */
	for (int i = 0; i < 2; i++)
		if (m[i].txnid && (m[i].txnid & 1) != (uint64_t)i)
			return say(c, DATADIR_BAD_META, "meta page %d of %s holds txn %" PRIu64
				   ", which LMDB never writes there: it was copied from another "
				   "file", i, path, m[i].txnid);
	if (m[0].txnid + 1 != m[1].txnid && m[1].txnid + 1 != m[0].txnid)
		return say(c, DATADIR_BAD_META, "the meta pages of %s hold txns %" PRIu64 " and %"
			   PRIu64 ", which are not consecutive: one of them is from another "
			   "file or an older copy", path, m[0].txnid, m[1].txnid);
	live = &m[m[1].txnid > m[0].txnid];
	if (live->last_pg < 1 || live->last_pg > UINT64_MAX / live->psize - 1)
		return say(c, DATADIR_BAD_META, "the live meta page of %s records an impossible "
			   "last page (%" PRIu64 ")", path, live->last_pg);
	for (int d = 0; d < 2; d++)
		if (live->root[d] != LM_P_INVALID &&
		    (live->root[d] < 2 || live->root[d] > live->last_pg))
			return say(c, DATADIR_BAD_META, "the live meta page of %s puts a root at "
				   "page %" PRIu64 ", outside pages 2..%" PRIu64, path,
				   live->root[d], live->last_pg);
	pages = live->last_pg + 1;
	c->txnid = live->txnid;
	c->need_bytes = pages * live->psize;
	if (c->file_bytes < c->need_bytes)
		return say(c, DATADIR_TRUNCATED, "%s is truncated: it has %" PRIu64 " bytes, but "
			   "its meta page (txn %" PRIu64 ") says the log fills %" PRIu64 " (%" PRIu64
			   " pages of %" PRIu32 ")", path, c->file_bytes, c->txnid, c->need_bytes,
			   pages, live->psize);
	c->state = DATADIR_LOG;
	return CL_OK;
}

void datadir_refusal(const char *dir, const char *what, char *out, size_t n)
{
	snprintf(out, n, "%s. Nothing was changed. To recover, stop every program using %s, "
		 "move it aside and restore the newest backup into its place: changelog-admin "
		 "restore BACKUP --data %s (docs/operations.md, \"Recovering a damaged data "
		 "directory\")", what, dir, dir);
}

void datadir_explain(const char *dir, int rc, char *out, size_t n)
{
	struct datadir_check c;

	if (datadir_check(dir, &c) != CL_OK) {
		datadir_refusal(dir, c.what, out, n);
		return;
	}
	switch (rc) {
	case CL_ENOTFOUND:
		snprintf(out, n, "no log in %s (create one with: changelog-admin init --data %s)",
			 dir, dir);
		break;
	case CL_ECORRUPT:
		snprintf(out, n, "%s does not hold a valid log (its meta is corrupt or of an "
			 "unknown format, or its pages fail LMDB's checks); restore it from a "
			 "backup (docs/operations.md, \"Recovering a damaged data directory\")",
			 dir);
		break;
	case CL_ELOCKED:
		snprintf(out, n, "the log in %s is locked by another process", dir);
		break;
	default:
		snprintf(out, n, "cannot open the log in %s (%s; check that it is a readable "
			 "data directory)", dir, cl_strerror(rc));
		break;
	}
}
