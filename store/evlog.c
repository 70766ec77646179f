/*
 * evlog.c - the durable event log: one LMDB environment per data directory.
 *
 * This file owns everything that touches LMDB for the log: the on-disk
 * layout (three named databases, see evlog.h), the hash chain, the
 * append-if-unchanged write transaction, idempotency records, iterators over
 * read snapshots, map growth, hot backup and epochs.
 *
 * Why it is shaped so:
 *  - The write txn is embedded in struct evlog. LMDB allows one write txn per
 *    environment, and a second mdb_txn_begin for writing from the same process
 *    would deadlock on LMDB's own mutex; with the embedded txn a second
 *    evlog_wbegin is refused with CL_EINVAL instead, and a commit costs no
 *    allocation.
 *  - The txn keeps the running "last" and "head" in memory and writes them to
 *    meta once, at commit: a batch of 1000 appends touches the meta table once.
 *  - The env is opened with MDB_NOTLS so one thread may hold several read
 *    txns (iterators plus evlog_last); the count of open read txns is kept,
 *    because the map may only be re-mapped (grown, or adopting a size another
 *    process set) while this process holds no txn at all.
 *  - SHA-256 goes through one EVP_MD_CTX per log (and a digest fetched once),
 *    so hashing a record costs no provider lookup. A struct evlog is
 *    therefore used by one thread at a time.
 *  - The iterator checks the chain as it goes and, at the end of its snapshot,
 *    that the last record it read is meta "last" with hash meta "head": a
 *    change to the final record, which no later prev_hash covers, is caught
 *    too.
 *  - A cold start (evlog_replay) reads and hashes on a second thread while
 *    the caller decodes and applies; the caller still applies only events
 *    whose link it checked, in order, so it fails exactly where the
 *    iterator would.
 */
#include "evlog.h"
#include "datadir.h"
#include "token.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lmdb.h>
#define OPENSSL_SUPPRESS_DEPRECATED   /* SHA256_*: see hash_fast */
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define EVLOG_FORMAT 1
#define EVLOG_DEFAULT_MAPSIZE ((size_t)1 << 30)
#define EVLOG_CMD_VAL_HDR 12            /* u64 first seq + u32 count */
#define EVLOG_CMD_USE_TAG 0x01          /* a use follows the header (evlog.h) */
#define EVLOG_MAX_RESULT CL_MAX_EVENT   /* cap on a stored command result */

struct evlog_txn {
	struct evlog *log;
	MDB_txn *txn;                   /* NULL when no write txn is open */
	uint64_t last;                  /* last seq including this txn's appends */
	uint8_t head[EV_HASH_LEN];      /* hash(last) */
	int err;                        /* first fatal error: txn poisoned */
	int dirty;                      /* appended since begin: meta to update */
	uint64_t begun_at;              /* last seq when the txn began */
};

/*
 * The deferred meta sync (evlog_defer_sync): the sync thread and what it
 * knows. Every field is under mu; the thread only calls mdb_env_sync.
 */
struct evlog_sync {
	pthread_mutex_t mu;
	pthread_cond_t cv;              /* the thread waits for work or stop */
	pthread_cond_t done_cv;         /* evlog_sync_wait waits for a sync */
	pthread_t thread;
	int running, stop;
	int err;                        /* a failed sync: sticks (CL_E*) */
	uint64_t committed;             /* last seq this process committed */
	uint64_t requested;             /* sync wanted up to this seq */
	uint64_t durable;               /* seqs up to this survive a power cut */
	void (*wake)(void *arg);        /* after each sync, on the sync thread */
	void *arg;
	unsigned delay_ms;              /* evlog_sync_test: before each sync */
	int fail;                       /* evlog_sync_test: every sync fails */
};

struct evlog {
	MDB_env *env;
	MDB_dbi events, meta, cmds;
	unsigned flags;                 /* EVLOG_* */
	int grow;                       /* a txn hit MAP_FULL: grow at next begin */
	int nread;                      /* read txns open in this process */
	uint8_t epoch[EVLOG_EPOCH_LEN];
	char epoch_hex[EVLOG_EPOCH_STRLEN + 1];
	EVP_MD *sha;                    /* fetched once (OpenSSL 3) */
	EVP_MD_CTX *md;
	struct ev_buf buf;              /* encode buffer for appends */
	struct evlog_txn w;             /* the one write txn */
	/*
	 * Readers on other threads (evlog_read_shared): remapping (growing the
	 * map, adopting another process's size) waits under mu until none
	 * holds a txn, and a shared read txn is begun under mu.
	 */
	pthread_mutex_t mu;
	pthread_cond_t idle;            /* nshared dropped to 0 */
	int nshared;                    /* shared read txns open */
	int deferred;                   /* evlog_defer_sync: meta not synced at commit */
	_Atomic uint64_t shared_upto;   /* evlog_read_shared reads at most this (0: all) */
	struct evlog_sync sync;
};

struct evlog_iter {
	struct evlog *log;
	MDB_txn *txn;
	MDB_cursor *cur;
	uint64_t from;                  /* first seq wanted (>= 1) */
	uint64_t seq;                   /* seq of the last record returned, 0 before */
	int started, done, err;        /* done: the end was reached */
	int chained;                    /* hash holds hash(seq) */
	uint8_t hash[EV_HASH_LEN];
};

/* ---- small helpers ---------------------------------------------------- */

static void put_be64(uint8_t *p, uint64_t v)
{
	for (int i = 7; i >= 0; i--) {
		p[i] = (uint8_t)v;
		v >>= 8;
	}
}

static uint64_t get_be64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* LMDB / errno -> CL_E*. */
static int map_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS:
		return CL_OK;
	case MDB_MAP_FULL:
		return CL_EMAPFULL;
	case ENOSPC:
	case EDQUOT:
		return CL_ENOSPC;
	case ENOMEM:
		return CL_ENOMEM;
	case MDB_NOTFOUND:
		return CL_ENOTFOUND;
	case MDB_CORRUPTED:
	case MDB_PAGE_NOTFOUND:
	case MDB_INVALID:
		return CL_ECORRUPT;
	default:
		return CL_EIO;
	}
}

static void hex_encode(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/*
 * hash(seq) with a reused context. A record of usual size is copied behind
 * prev and seq so the digest sees one contiguous update: measured ~8 %
 * faster than three updates (the EVP call overhead, not SHA-256, differs).
 */
#define HASH_FLAT_MAX 1024

static int hash_with(EVP_MD_CTX *md, const EVP_MD *sha, const uint8_t prev[EV_HASH_LEN],
		     uint64_t seq, const uint8_t *val, size_t len, uint8_t out[EV_HASH_LEN])
{
	uint8_t flat[EV_HASH_LEN + 8 + HASH_FLAT_MAX];
	unsigned int outlen = 0;
	int ok;

	memcpy(flat, prev, EV_HASH_LEN);
	put_be64(flat + EV_HASH_LEN, seq);
	ok = EVP_DigestInit_ex(md, sha, NULL) == 1;
	if (len <= HASH_FLAT_MAX) {
		if (len)
			memcpy(flat + EV_HASH_LEN + 8, val, len);
		ok = ok && EVP_DigestUpdate(md, flat, EV_HASH_LEN + 8 + len) == 1;
	} else {
		ok = ok && EVP_DigestUpdate(md, flat, EV_HASH_LEN + 8) == 1 &&
		     EVP_DigestUpdate(md, val, len) == 1;
	}
	ok = ok && EVP_DigestFinal_ex(md, out, &outlen) == 1 && outlen == EV_HASH_LEN;
	return ok ? CL_OK : CL_EIO;
}

/*
 * hash(seq) for the replay reader, through OpenSSL's SHA256_* calls. The EVP
 * path above costs an allocation, a free and a cleanse of the provider's
 * context on every init in OpenSSL 3.0 (~25-80 ns a record, measured), and a
 * cold start hashes every record of the log on the thread that bounds it.
 * These calls are deprecated in 3.0 but kept through 3.x; the digest is the
 * same SHA-256.
 */
static void hash_fast(const uint8_t prev[EV_HASH_LEN], uint64_t seq, const uint8_t *val,
		      size_t len, uint8_t out[EV_HASH_LEN])
{
	uint8_t head[EV_HASH_LEN + 8];
	SHA256_CTX c;

	memcpy(head, prev, EV_HASH_LEN);
	put_be64(head + EV_HASH_LEN, seq);
	SHA256_Init(&c);
	SHA256_Update(&c, head, sizeof head);
	SHA256_Update(&c, val, len);
	SHA256_Final(out, &c);
}

void evlog_hash(const uint8_t prev[EV_HASH_LEN], uint64_t seq,
		const uint8_t *val, size_t len, uint8_t out[EV_HASH_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	/* Out of memory inside OpenSSL leaves a hash that matches nothing. */
	if (!md || hash_with(md, EVP_sha256(), prev, seq, val, len, out) != CL_OK)
		memset(out, 0xff, EV_HASH_LEN);
	EVP_MD_CTX_free(md);
}

/* mkdir -p with mode 0700 for the parts it creates. */
static int mkdir_p(const char *dir)
{
	char path[PATH_MAX];
	size_t n = strlen(dir);

	if (n == 0 || n >= sizeof path)
		return CL_EINVAL;
	memcpy(path, dir, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		if (path[i - 1] == '/')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			int e = errno;
			return e == ENOSPC ? CL_ENOSPC : e == ENOENT ? CL_ENOTFOUND : CL_EIO;
		}
		if (i < n)
			path[i] = '/';
	}
	return CL_OK;
}

/*
 * mdb_env_set_mapsize while no shared reader (another thread) holds a txn:
 * it waits for them (their txns are short: evlog_read_shared copies a
 * bounded range and ends).
 */
static int remap(struct evlog *log, size_t size)
{
	int rc;

	pthread_mutex_lock(&log->mu);
	while (log->nshared > 0)
		pthread_cond_wait(&log->idle, &log->mu);
	rc = mdb_env_set_mapsize(log->env, size);
	pthread_mutex_unlock(&log->mu);
	return rc;
}

/*
 * Begin a txn; adopt a map size another process set (MDB_MAP_RESIZED) when
 * this process holds no other txn. With read txns open the re-map would pull
 * the map from under them, so CL_EMAPFULL tells the caller to free its
 * iterators and retry.
 */
static int txn_begin(struct evlog *log, unsigned flags, MDB_txn **txn)
{
	int rc = mdb_txn_begin(log->env, NULL, flags, txn);

	if (rc == MDB_MAP_RESIZED) {
		if (log->nread > 0)
			return CL_EMAPFULL;
		rc = remap(log, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_txn_begin(log->env, NULL, flags, txn);
	}
	if (rc != MDB_SUCCESS) {
		*txn = NULL;
		return map_err(rc);
	}
	return CL_OK;
}

static int read_begin(struct evlog *log, MDB_txn **txn)
{
	int rc = txn_begin(log, MDB_RDONLY, txn);

	if (rc == CL_OK)
		log->nread++;
	return rc;
}

static void read_end(struct evlog *log, MDB_txn *txn)
{
	mdb_txn_abort(txn);
	log->nread--;
}

static int meta_get(MDB_txn *txn, MDB_dbi dbi, const char *name, size_t want, MDB_val *v)
{
	MDB_val k = { strlen(name), (void *)name };
	int rc = mdb_get(txn, dbi, &k, v);

	if (rc == MDB_NOTFOUND)
		return CL_ECORRUPT;      /* a log always has every meta key */
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	if (want && v->mv_size != want)
		return CL_ECORRUPT;
	return CL_OK;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *name, const void *p, size_t n)
{
	MDB_val k = { strlen(name), (void *)name };
	MDB_val v = { n, (void *)p };

	return map_err(mdb_put(txn, dbi, &k, &v, 0));
}

/* Read last and head inside txn. */
static int meta_last(struct evlog *log, MDB_txn *txn, uint64_t *last, uint8_t *head)
{
	MDB_val v;
	int rc = meta_get(txn, log->meta, "last", 8, &v);

	if (rc)
		return rc;
	*last = get_be64(v.mv_data);
	rc = meta_get(txn, log->meta, "head", EV_HASH_LEN, &v);
	if (rc)
		return rc;
	if (head)
		memcpy(head, v.mv_data, EV_HASH_LEN);
	return CL_OK;
}

/* ---- open / close ----------------------------------------------------- */

/* Meta for a new log, inside the creating write txn. */
static int meta_init(struct evlog *log, MDB_txn *txn)
{
	uint8_t b4[4], b8[8], epoch[EVLOG_EPOCH_LEN], zero[EV_HASH_LEN] = { 0 };
	int rc;

	rc = token_random(epoch, sizeof epoch);
	if (rc)
		return rc;
	put_be32(b4, EVLOG_FORMAT);
	if ((rc = meta_put(txn, log->meta, "format", b4, 4)) != CL_OK ||
	    (rc = meta_put(txn, log->meta, "epoch", epoch, sizeof epoch)) != CL_OK)
		return rc;
	put_be64(b8, 0);
	if ((rc = meta_put(txn, log->meta, "last", b8, 8)) != CL_OK ||
	    (rc = meta_put(txn, log->meta, "head", zero, sizeof zero)) != CL_OK)
		return rc;
	put_be64(b8, (uint64_t)cl_now_us());
	return meta_put(txn, log->meta, "created", b8, 8);
}

/*
 * Open the three databases (creating them and the meta of a new log when
 * create is set) and load format and epoch.
 */
static int open_dbs(struct evlog *log, int create)
{
	MDB_txn *txn = NULL;
	MDB_val v, k = { 6, "format" };
	unsigned dflags = create ? MDB_CREATE : 0;
	int rc;

	rc = create ? txn_begin(log, 0, &txn) : read_begin(log, &txn);
	if (rc)
		return rc;
	rc = mdb_dbi_open(txn, "meta", dflags, &log->meta);
	if (rc == MDB_SUCCESS)
		rc = mdb_dbi_open(txn, "events", dflags, &log->events);
	if (rc == MDB_SUCCESS)
		rc = mdb_dbi_open(txn, "cmds", dflags, &log->cmds);
	if (rc != MDB_SUCCESS) {
		/*
		 * No named databases: an LMDB file, but not a log. Only
		 * create_log makes the databases, in a file nobody else can
		 * see yet, so this is damage, never a log to start.
		 */
		rc = rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE ? CL_ECORRUPT : map_err(rc);
		goto fail;
	}
	if (create) {
		rc = mdb_get(txn, log->meta, &k, &v);
		if (rc == MDB_NOTFOUND)
			rc = meta_init(log, txn);
		else
			rc = map_err(rc);
		if (rc)
			goto fail;
	}
	rc = meta_get(txn, log->meta, "format", 4, &v);
	if (rc)
		goto fail;
	if (get_be32(v.mv_data) != EVLOG_FORMAT) {
		rc = CL_ECORRUPT;
		goto fail;
	}
	rc = meta_get(txn, log->meta, "epoch", EVLOG_EPOCH_LEN, &v);
	if (rc)
		goto fail;
	memcpy(log->epoch, v.mv_data, EVLOG_EPOCH_LEN);
	hex_encode(log->epoch, EVLOG_EPOCH_LEN, log->epoch_hex);
	rc = meta_get(txn, log->meta, "last", 8, &v);
	if (rc == CL_OK)
		rc = meta_get(txn, log->meta, "head", EV_HASH_LEN, &v);
	if (rc)
		goto fail;
	/* Commit (read or write) so the dbi handles stay open for the env. */
	rc = map_err(mdb_txn_commit(txn));
	if (!create)
		log->nread--;
	return rc;
fail:
	if (create)
		mdb_txn_abort(txn);
	else
		read_end(log, txn);
	return rc;
}

/* ---- damage the unmapped checks cannot see ----------------------------- */

static void (*damage_report)(const char *msg);
static char damage_dir[PATH_MAX];         /* the data directory last opened */
static char damage_msg[2048];

static void damage_exit(const char *what)
{
	datadir_refusal(damage_dir[0] ? damage_dir : "the data directory", what, damage_msg,
			sizeof damage_msg);
	if (damage_report) {
		damage_report(damage_msg);
	} else {
		size_t n = strlen(damage_msg);

		damage_msg[n] = '\n';
		if (write(2, damage_msg, n + 1) < 0)
			n = 0;
	}
	_exit(1);
}

static void on_lmdb_assert(MDB_env *env, const char *msg)
{
	char what[600];

	(void)env;
	snprintf(what, sizeof what, "the log in %.300s is damaged: LMDB found a page that is not "
		 "what its tree says (%s)", damage_dir, msg);
	damage_exit(what);
}

static void on_sigbus(int sig)
{
	(void)sig;
	damage_exit("the log's data.mdb ended where LMDB expected a page: it is truncated "
		    "or damaged (SIGBUS reading the map)");
}

void evlog_on_damage(void (*report)(const char *msg))
{
	struct sigaction sa;

	damage_report = report;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_sigbus;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, NULL);
}

/*
 * Make a new log in dir: build it in a private file beside where it will
 * live (LMDB's MDB_NOSUBDIR: DIR/.data.mdb.new-PID and its -lock file),
 * commit its meta, fsync, then link(2) it to DIR/data.mdb - which fails
 * rather than replaces if another process got there first (that log is
 * used instead). So DIR/data.mdb is never seen half made: an empty or
 * meta-less data.mdb in a data directory is always damage (datadir.h).
 */
#define NEW_PREFIX ".data.mdb.new-"

static void unlink_pair(const char *tmp)
{
	char lock[PATH_MAX];

	unlink(tmp);
	if ((size_t)snprintf(lock, sizeof lock, "%s-lock", tmp) < sizeof lock)
		unlink(lock);
}

/* Remove the private files of creators that died before their link. */
static void sweep_dead_creators(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX], *end;
	long pid;

	if (!d)
		return;
	while ((e = readdir(d)) != NULL) {
		if (strncmp(e->d_name, NEW_PREFIX, strlen(NEW_PREFIX)) != 0)
			continue;
		pid = strtol(e->d_name + strlen(NEW_PREFIX), &end, 10);
		if (pid <= 0 || (*end && strcmp(end, "-lock") != 0))
			continue;
		if (pid != (long)getpid() && (kill((pid_t)pid, 0) == 0 || errno != ESRCH))
			continue;       /* its creator may still be at work */
		if ((size_t)snprintf(path, sizeof path, "%s/" NEW_PREFIX "%ld", dir, pid) <
		    sizeof path)
			unlink_pair(path);
	}
	closedir(d);
}

static int create_log(struct evlog *log, const char *dir, unsigned mflags, size_t mapsize)
{
	char tmp[PATH_MAX], path[PATH_MAX];
	int rc, fd;

	rc = mkdir_p(dir);
	if (rc)
		return rc;
	if ((size_t)snprintf(tmp, sizeof tmp, "%s/" NEW_PREFIX "%ld", dir, (long)getpid()) >=
	    sizeof tmp - 5 ||
	    (size_t)snprintf(path, sizeof path, "%s/data.mdb", dir) >= sizeof path)
		return CL_EINVAL;
	sweep_dead_creators(dir);
	rc = mdb_env_create(&log->env);
	if (rc != MDB_SUCCESS) {
		log->env = NULL;
		return map_err(rc);
	}
	rc = mdb_env_set_maxdbs(log->env, 4);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_mapsize(log->env, mapsize);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_open(log->env, tmp, mflags | MDB_NOSUBDIR, 0600);
	rc = map_err(rc);
	if (rc == CL_OK)
		rc = open_dbs(log, 1);
	if (rc == CL_OK)
		rc = map_err(mdb_env_sync(log->env, 1));
	mdb_env_close(log->env);
	log->env = NULL;
	if (rc == CL_OK && link(tmp, path) != 0 && errno != EEXIST)
		rc = errno == ENOSPC ? CL_ENOSPC : CL_EIO;
	unlink_pair(tmp);
	if (rc == CL_OK) {
		/* the new name must survive a crash too */
		fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || fsync(fd) != 0)
			rc = CL_EIO;
		if (fd >= 0)
			close(fd);
	}
	return rc;
}

int evlog_open(struct evlog **out, const char *dir, unsigned flags, size_t mapsize)
{
	struct evlog *log = NULL;
	struct datadir_check dc;
	unsigned mflags = MDB_NOTLS;
	int rc, dead = 0;

	*out = NULL;
	if (!dir || !*dir || ((flags & EVLOG_CREATE) && (flags & EVLOG_RDONLY)) ||
	    ((flags & EVLOG_FIXEDMAP) && !mapsize) || strlen(dir) > PATH_MAX - 64)
		return CL_EINVAL;
	/* Nothing is mapped before the file has passed the unmapped checks. */
	rc = datadir_check(dir, &dc);
	if (rc)
		return rc;
	if (dc.state == DATADIR_NEW && !(flags & EVLOG_CREATE))
		return CL_ENOTFOUND;

	log = calloc(1, sizeof *log);
	if (!log)
		return CL_ENOMEM;
	log->flags = flags;
	log->w.log = log;
	pthread_mutex_init(&log->mu, NULL);
	pthread_cond_init(&log->idle, NULL);
	pthread_mutex_init(&log->sync.mu, NULL);
	pthread_cond_init(&log->sync.cv, NULL);
	pthread_cond_init(&log->sync.done_cv, NULL);
	ev_buf_init(&log->buf);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	log->sha = EVP_MD_fetch(NULL, "SHA256", NULL);
#endif
	log->md = EVP_MD_CTX_new();
	if (!log->md) {
		rc = CL_ENOMEM;
		goto fail;
	}

	if (flags & EVLOG_NOSYNC)
		mflags |= MDB_NOSYNC;
	if (flags & EVLOG_RDONLY)
		mflags |= MDB_RDONLY;
	if (dc.state == DATADIR_NEW) {
		rc = create_log(log, dir, mflags, mapsize ? mapsize : EVLOG_DEFAULT_MAPSIZE);
		if (rc)
			goto fail;
		/* what was linked is ours or a faster creator's: check it like any log */
		rc = datadir_check(dir, &dc);
		if (rc)
			goto fail;
	}
	rc = mdb_env_create(&log->env);
	if (rc != MDB_SUCCESS) {
		log->env = NULL;
		rc = map_err(rc);
		goto fail;
	}
	snprintf(damage_dir, sizeof damage_dir, "%s", dir);
	mdb_env_set_assert(log->env, on_lmdb_assert);
	rc = mdb_env_set_maxdbs(log->env, 4);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_set_mapsize(log->env, mapsize ? mapsize : EVLOG_DEFAULT_MAPSIZE);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_open(log->env, dir, mflags, 0600);
	if (rc != MDB_SUCCESS) {
		rc = rc == ENOENT ? CL_ENOTFOUND : map_err(rc);
		goto fail;
	}
	/*
	 * LMDB shrinks a configured size that is smaller than the one the file
	 * records down to the bytes in use, so a reopened grown log would start
	 * with a full map. With the default, take the larger of the two.
	 */
	if (!mapsize) {
		MDB_envinfo info;

		rc = mdb_env_set_mapsize(log->env, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_env_info(log->env, &info);
		if (rc == MDB_SUCCESS && info.me_mapsize < EVLOG_DEFAULT_MAPSIZE)
			rc = mdb_env_set_mapsize(log->env, EVLOG_DEFAULT_MAPSIZE);
		if (rc != MDB_SUCCESS) {
			rc = map_err(rc);
			goto fail;
		}
	}
	/* Clear reader slots of dead processes (e.g. a killed reader). */
	rc = mdb_reader_check(log->env, &dead);
	if (rc != MDB_SUCCESS && !(flags & EVLOG_RDONLY)) {
		rc = map_err(rc);
		goto fail;
	}
	rc = open_dbs(log, 0);
	if (rc)
		goto fail;
	*out = log;
	return CL_OK;
fail:
	evlog_close(log);
	return rc;
}

void evlog_close(struct evlog *log)
{
	if (!log)
		return;
	evlog_sync_stop(log);
	if (log->w.txn)
		mdb_txn_abort(log->w.txn);
	/* a deferred meta is made durable before the env goes */
	if (log->env && log->deferred)
		mdb_env_sync(log->env, 1);
	if (log->env)
		mdb_env_close(log->env);
	ev_buf_release(&log->buf);
	EVP_MD_CTX_free(log->md);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD_free(log->sha);
#endif
	pthread_cond_destroy(&log->idle);
	pthread_mutex_destroy(&log->mu);
	pthread_cond_destroy(&log->sync.done_cv);
	pthread_cond_destroy(&log->sync.cv);
	pthread_mutex_destroy(&log->sync.mu);
	free(log);
}

static const EVP_MD *log_sha(const struct evlog *log)
{
	return log->sha ? log->sha : EVP_sha256();
}

const char *evlog_epoch(const struct evlog *log)
{
	return log->epoch_hex;
}

int evlog_last(struct evlog *log, uint64_t *seq, uint8_t head[EV_HASH_LEN])
{
	MDB_txn *txn;
	int rc = read_begin(log, &txn);

	if (rc)
		return rc;
	rc = meta_last(log, txn, seq, head);
	read_end(log, txn);
	return rc;
}

uint64_t evlog_generation(struct evlog *log)
{
	MDB_envinfo info;

	if (mdb_env_info(log->env, &info) != MDB_SUCCESS)
		return 0;
	return (uint64_t)info.me_last_txnid;
}

size_t evlog_mapsize(struct evlog *log)
{
	MDB_envinfo info;

	if (mdb_env_info(log->env, &info) != MDB_SUCCESS)
		return 0;
	return info.me_mapsize;
}

int evlog_stat(struct evlog *log, struct evlog_stat *st)
{
	MDB_envinfo info;
	MDB_stat es, ms;
	MDB_txn *txn;
	int rc;

	memset(st, 0, sizeof *st);
	rc = read_begin(log, &txn);
	if (rc)
		return rc;
	rc = mdb_env_info(log->env, &info);
	if (rc == MDB_SUCCESS)
		rc = mdb_env_stat(log->env, &es);
	if (rc == MDB_SUCCESS)
		rc = mdb_stat(txn, log->events, &ms);
	if (rc == MDB_SUCCESS) {
		st->mapsize = info.me_mapsize;
		st->used_bytes = ((uint64_t)info.me_last_pgno + 1) * es.ms_psize;
		st->events = ms.ms_entries;
		rc = mdb_stat(txn, log->cmds, &ms);
		st->cmds = ms.ms_entries;
	}
	read_end(log, txn);
	return map_err(rc);
}

/* ---- reading ---------------------------------------------------------- */

int evlog_iter_new(struct evlog *log, uint64_t from, struct evlog_iter **out)
{
	struct evlog_iter *it;
	int rc;

	*out = NULL;
	it = calloc(1, sizeof *it);
	if (!it)
		return CL_ENOMEM;
	it->log = log;
	it->from = from ? from : 1;
	rc = read_begin(log, &it->txn);
	if (rc) {
		free(it);
		return rc;
	}
	rc = mdb_cursor_open(it->txn, log->events, &it->cur);
	if (rc != MDB_SUCCESS) {
		read_end(log, it->txn);
		free(it);
		return map_err(rc);
	}
	*out = it;
	return CL_OK;
}

void evlog_iter_free(struct evlog_iter *it)
{
	if (!it)
		return;
	mdb_cursor_close(it->cur);
	read_end(it->log, it->txn);
	free(it);
}

int evlog_iter_next(struct evlog_iter *it, struct evlog_rec *rec)
{
	uint8_t kb[8];
	MDB_val k, v;
	int rc;

	if (it->err)
		return it->err;
	if (it->done)
		return 0;       /* a snapshot does not grow; never re-position */
	if (!it->started) {
		put_be64(kb, it->from);
		k.mv_size = sizeof kb;
		k.mv_data = kb;
		rc = mdb_cursor_get(it->cur, &k, &v, MDB_SET_RANGE);
		it->started = 1;
	} else {
		rc = mdb_cursor_get(it->cur, &k, &v, MDB_NEXT);
	}
	if (rc == MDB_NOTFOUND) {
		it->done = 1;
		return 0;
	}
	if (rc != MDB_SUCCESS)
		return it->err = map_err(rc);
	if (k.mv_size != 8)
		return it->err = CL_ECORRUPT;
	rec->seq = get_be64(k.mv_data);
	rec->val = v.mv_data;
	rec->len = v.mv_size;
	it->seq = rec->seq;
	it->chained = 0;    /* a raw read breaks the running chain */
	return 1;
}

int evlog_read_shared(struct evlog *log, uint64_t from, size_t max_n, size_t max_bytes,
		      evlog_rec_fn fn, void *arg, uint64_t *last)
{
	uint8_t kb[8];
	MDB_txn *txn = NULL;
	MDB_cursor *cur = NULL;
	MDB_val k, v;
	size_t n = 0, bytes = 0;
	uint64_t expect = from ? from : 1;
	uint64_t upto = atomic_load(&log->shared_upto);
	int rc, op = MDB_SET_RANGE;

	if (upto) {     /* nothing past what the owner says is durable */
		if (expect > upto)
			max_n = 0;
		else if (max_n > upto - expect + 1)
			max_n = (size_t)(upto - expect + 1);
	}
	pthread_mutex_lock(&log->mu);
	rc = mdb_txn_begin(log->env, NULL, MDB_RDONLY, &txn);
	if (rc == MDB_SUCCESS)
		log->nshared++;
	pthread_mutex_unlock(&log->mu);
	if (rc == MDB_MAP_RESIZED)
		return CL_EMAPFULL;     /* the owner adopts the new size; call again */
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	if (last) {
		rc = meta_last(log, txn, last, NULL);
		if (upto && *last > upto)
			*last = upto;
	}
	if (rc == CL_OK)
		rc = map_err(mdb_cursor_open(txn, log->events, &cur));
	put_be64(kb, expect);
	k.mv_size = sizeof kb;
	k.mv_data = kb;
	while (rc == CL_OK && n < max_n && (n == 0 || bytes < max_bytes)) {
		int got = mdb_cursor_get(cur, &k, &v, op);

		op = MDB_NEXT;
		if (got == MDB_NOTFOUND)
			break;
		if (got != MDB_SUCCESS) {
			rc = map_err(got);
			break;
		}
		if (k.mv_size != 8 || get_be64(k.mv_data) != expect) {
			rc = CL_ECORRUPT;       /* a gap where the log has none */
			break;
		}
		rc = fn(arg, expect, v.mv_data, v.mv_size);
		expect++;
		n++;
		bytes += v.mv_size;
	}
	if (cur)
		mdb_cursor_close(cur);
	pthread_mutex_lock(&log->mu);
	mdb_txn_abort(txn);
	if (--log->nshared == 0)
		pthread_cond_broadcast(&log->idle);
	pthread_mutex_unlock(&log->mu);
	return rc;
}

/* End of the snapshot: the records read must end at meta last / head. */
static int iter_check_end(struct evlog_iter *it)
{
	uint8_t head[EV_HASH_LEN];
	uint64_t last;
	int rc = meta_last(it->log, it->txn, &last, head);

	if (rc)
		return rc;
	if (it->seq == 0)       /* nothing read: nothing may be at or after from */
		return last >= it->from ? CL_ECORRUPT : CL_OK;
	if (last != it->seq)
		return CL_ECORRUPT;
	if (it->chained && memcmp(head, it->hash, EV_HASH_LEN) != 0)
		return CL_ECORRUPT;
	return CL_OK;
}

int evlog_iter_next_event(struct evlog_iter *it, struct event *ev)
{
	static const uint8_t zero[EV_HASH_LEN];
	struct evlog_rec rec;
	uint64_t expect = it->seq ? it->seq + 1 : it->from;
	int was_chained = it->chained;
	uint8_t prev[EV_HASH_LEN];
	int rc;

	memcpy(prev, it->hash, EV_HASH_LEN);
	rc = evlog_iter_next(it, &rec);
	if (rc == 0) {
		rc = iter_check_end(it);
		return rc ? (it->err = rc) : 0;
	}
	if (rc < 0)
		return rc;
	if (rec.seq != expect)
		return it->err = CL_ECORRUPT;
	rc = ev_decode(rec.val, rec.len, ev);
	if (rc)
		return it->err = rc;
	ev->seq = rec.seq;
	if (was_chained ? memcmp(ev->prev_hash, prev, EV_HASH_LEN) != 0 :
	    (rec.seq == 1 && memcmp(ev->prev_hash, zero, EV_HASH_LEN) != 0))
		return it->err = CL_ECORRUPT;
	rc = hash_with(it->log->md, log_sha(it->log), ev->prev_hash, rec.seq,
		       rec.val, rec.len, it->hash);
	if (rc)
		return it->err = rc;
	it->chained = 1;
	return 1;
}

/* ---- replay: the chain checked on a second thread ---------------------- */

/*
 * evlog_replay splits a cold start over two threads. The reader thread owns
 * the iterator: it walks the raw records of the snapshot, checks their seqs
 * and computes hash(seq) of each, and hands (record, hash) to the caller's
 * thread through a ring. The caller's thread decodes each record, checks its
 * prev_hash against the hash the reader computed for the record before, and
 * only then applies it. So apply sees exactly what evlog_iter_next_event
 * would return, in the same order, and the replay stops at the same first
 * error; the SHA-256 of every record (the largest cost of a scan) runs
 * beside the decode and apply instead of before them. When the reader is
 * ahead (the ring is full) it runs the caller's idle hook instead of
 * sleeping: memory the apply side will write next can be faulted in there.
 * One call of the hook can take milliseconds (proj_prepare faults in up to
 * a 2 MB huge page; on the project VM fresh memory costs ~2 ms per MB), so
 * the ring holds more than that much of the caller's work: with 4096 slots
 * (~1.5 ms of apply) the caller ran dry behind every such call, and the
 * reader, faulting for both, bounded the cold start.
 */
#define REPLAY_RING 16384       /* records in flight (power of 2); 1 MiB */
#define REPLAY_PUBLISH 32       /* publish progress every this many */
#define REPLAY_SPIN 1000        /* polls (~20 us here) before sleeping */
#define REPLAY_PREFETCH 8       /* records the caller prefetches ahead */
#define REPLAY_WAKE 512         /* records a sleeping side waits for */

struct replay_slot {
	const uint8_t *val;     /* into the map: valid while the iterator lives */
	size_t len;
	uint64_t seq;
	int rc;                 /* read error or gap here; 1 = end of snapshot */
	uint8_t hash[EV_HASH_LEN]; /* hash(seq) */
} __attribute__((aligned(64)));

/* A progress counter one side publishes and the other may sleep on. */
struct replay_ctr {
	_Atomic uint64_t v;
	_Atomic uint64_t wake_at;   /* a sleeper wants v >= wake_at (UINT64_MAX: none) */
};

struct replay {
	struct evlog_iter *it;  /* used only by the reader thread while it runs */
	uint64_t upto;
	int (*idle)(void *arg);
	void *arg;
	struct replay_slot *ring;
	struct replay_ctr produced, consumed;  /* slots filled / given back */
	_Atomic int stop;       /* the caller is done: the reader ends */
	_Atomic int ended;      /* the reader filled its last slot */
	uintptr_t page, populated;  /* replay_ahead's state */
	pthread_mutex_t mu;
	pthread_cond_t cv;
};

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#endif
}

/*
 * Wait until c->v >= want: spin for a while (the other side is usually a
 * few records away), then sleep until c->v >= sleep_until (>= want), the
 * reader's end or stop. The sleeper asks for a batch so that a wake-up - a
 * futex call on each side, costly on a VM - is paid once per many records,
 * not once per publish.
 */
static void replay_wait(struct replay *r, struct replay_ctr *c, uint64_t want,
			uint64_t sleep_until)
{
	for (int i = 0; i < REPLAY_SPIN; i++) {
		if (atomic_load_explicit(&c->v, memory_order_acquire) >= want ||
		    atomic_load_explicit(&r->stop, memory_order_relaxed))
			return;
		cpu_relax();
	}
	pthread_mutex_lock(&r->mu);
	atomic_store(&c->wake_at, sleep_until);
	while (atomic_load(&c->v) < sleep_until && !atomic_load(&r->stop) &&
	       !atomic_load(&r->ended))
		pthread_cond_wait(&r->cv, &r->mu);
	atomic_store(&c->wake_at, UINT64_MAX);
	pthread_mutex_unlock(&r->mu);
}

/* Publish c->v = v and wake a sleeper whose batch is complete, or any
 * sleeper when force (the end, stop). seq_cst against replay_wait. */
static void replay_post(struct replay *r, struct replay_ctr *c, uint64_t v, int force)
{
	atomic_store(&c->v, v);
	if (force || v >= atomic_load(&c->wake_at)) {
		pthread_mutex_lock(&r->mu);
		pthread_cond_broadcast(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

/*
 * Records come out of the map in page order, and fetching them is most of
 * what the cursor costs. When the reader enters a new page it prefetches the
 * next one (LMDB fills a leaf from its end, so the cursor walks each page
 * downwards, which the hardware prefetcher follows badly) and, every
 * REPLAY_POPULATE bytes, has the kernel map the next stretch of the file in
 * one call instead of a fault per 64 KB. Only hints: errors are ignored.
 */
#define REPLAY_PAGE 4096
#define REPLAY_POPULATE ((uintptr_t)4 << 20)
#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22   /* Linux 5.14; older kernels say EINVAL */
#endif

static void replay_ahead(struct replay *r, const uint8_t *val)
{
	uintptr_t page = (uintptr_t)val & ~(uintptr_t)(REPLAY_PAGE - 1);
	uintptr_t next = page + REPLAY_PAGE;

	if (page == r->page)
		return;
	r->page = page;
	for (uintptr_t off = 0; off < REPLAY_PAGE; off += 64)
		__builtin_prefetch((const void *)(next + off));
	if (next >= r->populated && r->populated != UINTPTR_MAX) {
		uintptr_t from = next > r->populated ? next : r->populated;

		if (madvise((void *)from, REPLAY_POPULATE, MADV_POPULATE_READ) == 0)
			r->populated = from + REPLAY_POPULATE;
		else
			r->populated = UINTPTR_MAX;  /* the end of the file, or an old kernel */
	}
}

/* The reader is REPLAY_RING records ahead: help the caller, then wait. */
static void replay_full(struct replay *r, uint64_t n)
{
	replay_post(r, &r->produced, n, 0);
	while (r->idle && atomic_load(&r->consumed.v) + REPLAY_RING <= n &&
	       !atomic_load_explicit(&r->stop, memory_order_relaxed) && r->idle(r->arg))
		;
	replay_wait(r, &r->consumed, n - REPLAY_RING + 1, n - REPLAY_RING + REPLAY_WAKE);
}

static void *replay_reader(void *arg)
{
	static const uint8_t zero[EV_HASH_LEN];
	struct replay *r = arg;
	struct evlog_iter *it = r->it;
	const uint8_t *prev = zero;
	uint64_t n = 0, space = REPLAY_RING;

	for (;;) {
		struct replay_slot *s;
		struct evlog_rec rec;
		uint64_t expect = n ? it->seq + 1 : it->from;
		struct event ev;
		int rc;

		if (n == space) {
			if (atomic_load(&r->consumed.v) + REPLAY_RING <= n)
				replay_full(r, n);
			space = atomic_load(&r->consumed.v) + REPLAY_RING;
		}
		if (atomic_load_explicit(&r->stop, memory_order_relaxed))
			break;
		s = &r->ring[n % REPLAY_RING];
		s->rc = 0;
		rc = evlog_iter_next(it, &rec);
		if (rc == 0) {
			/* the end: the records read must end at meta last / head */
			memcpy(it->hash, prev, EV_HASH_LEN);
			it->chained = n > 0;
			rc = iter_check_end(it);
			s->rc = rc ? rc : 1;
		} else if (rc < 0) {
			s->rc = rc;
		} else if (rec.seq != expect) {
			s->rc = CL_ECORRUPT;
		} else {
			replay_ahead(r, rec.val);
			s->seq = rec.seq;
			s->val = rec.val;
			s->len = rec.len;
			/* The first record of a replay from > 1 is not chained yet:
			 * its hash starts from its own prev_hash, as in
			 * evlog_iter_next_event. One that does not decode stops
			 * the caller before its hash matters. */
			if (n == 0 && rec.seq > 1)
				prev = ev_decode(rec.val, rec.len, &ev) == 0 ? ev.prev_hash : zero;
			hash_fast(prev, rec.seq, rec.val, rec.len, s->hash);
			prev = s->hash;
		}
		n++;
		if (s->rc)
			atomic_store(&r->ended, 1);
		if (s->rc || n % REPLAY_PUBLISH == 0)
			replay_post(r, &r->produced, n, s->rc != 0);
		if (s->rc)
			break;
	}
	return NULL;
}

/*
 * Decode and link-check slot s into *ev: 0, or the error that ends the
 * replay here (1 at the end of the snapshot).
 */
static int replay_check(const struct replay_slot *s, int chained,
			const uint8_t prev[EV_HASH_LEN], struct event *ev)
{
	static const uint8_t zero[EV_HASH_LEN];
	int rc;

	if (s->rc)
		return s->rc;
	if ((rc = ev_decode(s->val, s->len, ev)))
		return rc;
	ev->seq = s->seq;
	if (chained ? memcmp(ev->prev_hash, prev, EV_HASH_LEN) != 0 :
	    (s->seq == 1 && memcmp(ev->prev_hash, zero, EV_HASH_LEN) != 0))
		return CL_ECORRUPT;
	return 0;
}

/*
 * The caller's side: decode and check up to EVLOG_REPLAY_BATCH records, hand
 * the checked ones to apply, repeat. An error at record k of a batch is
 * returned after apply has seen the k records before it, just as an
 * evlog_iter_next_event loop would have applied them.
 */
static int replay_apply(struct replay *r, evlog_apply_fn apply, void *arg)
{
	struct event ev[EVLOG_REPLAY_BATCH];
	uint8_t prev[EV_HASH_LEN];
	uint64_t n = 0, have = 0;
	int chained = 0, rc = 0;

	while (rc == 0) {
		size_t k = 0;

		for (; rc == 0 && k < EVLOG_REPLAY_BATCH; k++, n++) {
			const struct replay_slot *s, *a;

			if (n == have) {
				if (k)
					break;      /* apply what is checked before waiting */
				replay_post(r, &r->consumed, n, 0);
				replay_wait(r, &r->produced, n + 1, n + REPLAY_WAKE);
				have = atomic_load(&r->produced.v);
			}
			if (n + REPLAY_PREFETCH < have) {
				/* the reader's core touched it last: fetch it early */
				a = &r->ring[(n + REPLAY_PREFETCH) % REPLAY_RING];
				for (size_t off = 0; !a->rc && off < a->len && off < 512; off += 64)
					__builtin_prefetch(a->val + off);
			}
			s = &r->ring[n % REPLAY_RING];
			if ((rc = replay_check(s, chained, prev, &ev[k])))
				break;      /* ev[k] is not applied */
			memcpy(prev, s->hash, EV_HASH_LEN);
			chained = 1;
			if (r->upto && s->seq >= r->upto)
				rc = 1;     /* applied below, then done */
		}
		if (k) {
			int arc = apply(arg, ev, k);

			if (arc)
				return arc;
		}
		if (n % REPLAY_PUBLISH < EVLOG_REPLAY_BATCH)
			replay_post(r, &r->consumed, n, 0);
	}
	return rc == 1 ? 0 : rc;
}

/*
 * The same on one thread, when a second one cannot be had: the
 * evlog_iter_next_event loop, its events handed to apply in batches as
 * replay_apply does (the strings stay valid while the iterator lives), so
 * that apply can overlap the memory each batch touches (proj_apply_batch
 * prefetches). An error after k events of a batch comes after those k are
 * applied, as in the one-by-one loop.
 */
static int replay_serial(struct evlog_iter *it, uint64_t upto, evlog_apply_fn apply, void *arg)
{
	struct event ev[EVLOG_REPLAY_BATCH];
	int rc = 1;

	while (rc == 1) {
		size_t k = 0;

		while (k < EVLOG_REPLAY_BATCH && rc == 1) {
			if ((rc = evlog_iter_next_event(it, &ev[k])) != 1)
				break;      /* the end (0) or an error: no ev[k] */
			if (upto && ev[k].seq >= upto)
				rc = 0;     /* applied below, then done */
			k++;
		}
		if (k) {
			int arc = apply(arg, ev, k);

			if (arc)
				return arc;
		}
	}
	return rc;
}

int evlog_replay(struct evlog *log, uint64_t from, uint64_t upto, unsigned flags,
		 evlog_apply_fn apply, int (*idle)(void *arg), void *arg)
{
	struct replay r = { .upto = upto, .idle = idle, .arg = arg,
			    .produced.wake_at = UINT64_MAX, .consumed.wake_at = UINT64_MAX };
	pthread_t reader;
	int rc, threaded = 0;

	if (!apply)
		return CL_EINVAL;
	if (upto && upto < (from ? from : 1))
		return 0;       /* nothing to apply */
	rc = evlog_iter_new(log, from, &r.it);
	if (rc)
		return rc;
	/* slots are one cache line each: the two threads never share a line */
	if (!(flags & EVLOG_REPLAY_SERIAL) &&
	    (r.ring = aligned_alloc(64, REPLAY_RING * sizeof *r.ring)) &&
	    pthread_mutex_init(&r.mu, NULL) == 0) {
		if (pthread_cond_init(&r.cv, NULL) == 0) {
			threaded = pthread_create(&reader, NULL, replay_reader, &r) == 0;
			if (!threaded)
				pthread_cond_destroy(&r.cv);
		}
		if (!threaded)
			pthread_mutex_destroy(&r.mu);
	}
	if (threaded) {
		rc = replay_apply(&r, apply, arg);
		atomic_store(&r.stop, 1);
		replay_post(&r, &r.consumed, UINT64_MAX, 1);
		pthread_join(reader, NULL);
		pthread_cond_destroy(&r.cv);
		pthread_mutex_destroy(&r.mu);
	} else {
		rc = replay_serial(r.it, upto, apply, arg);
	}
	evlog_iter_free(r.it);
	free(r.ring);
	return rc;
}

/* ---- the deferred meta sync ------------------------------------------ */

/*
 * Why this is safe (docs/architecture.md, "Durability without the fsync on
 * the service thread"): an LMDB commit writes the txn's pages, fdatasyncs
 * them, then writes the meta page that points at them. MDB_NOMETASYNC
 * skips only the second fdatasync, so the pages a meta names are always on
 * disk before that meta is written: a power cut can lose the last meta
 * (the log is then the txn before: intact, as LMDB never reuses the pages
 * of the two newest txns), never leave a meta that points at missing pages.
 * The next commit's fdatasync, or mdb_env_sync here, makes that meta
 * durable: everything the txn before it committed is then durable too.
 * A kill -9 loses nothing either way: the page cache holds the writes.
 */

/* evlog_wcommit in deferred mode: begun_at was durable once this txn's
 * data fdatasync returned (it flushed the meta that made begun_at
 * visible); last is committed, its meta not yet synced. */
static void sync_committed(struct evlog *log, uint64_t begun_at, uint64_t last)
{
	struct evlog_sync *y = &log->sync;

	pthread_mutex_lock(&y->mu);
	if (begun_at > y->durable)
		y->durable = begun_at;
	y->committed = last;
	if (y->running && y->requested < last) {
		y->requested = last;
		pthread_cond_signal(&y->cv);
	}
	pthread_mutex_unlock(&y->mu);
}

static void *sync_thread(void *arg)
{
	struct evlog *log = arg;
	struct evlog_sync *y = &log->sync;
	uint64_t target;
	unsigned delay;
	int rc, fail;

	pthread_mutex_lock(&y->mu);
	for (;;) {
		while (!y->stop && y->requested <= y->durable)
			pthread_cond_wait(&y->cv, &y->mu);
		if (y->stop)
			break;
		/* every commit up to committed wrote its meta before this sync */
		target = y->committed;
		delay = y->delay_ms;
		fail = y->fail;
		pthread_mutex_unlock(&y->mu);
		if (delay) {
			struct timespec ts = { delay / 1000, (long)(delay % 1000) * 1000000L };

			nanosleep(&ts, NULL);
		}
		rc = mdb_env_sync(log->env, 1);
		if (fail)
			rc = EIO;
		pthread_mutex_lock(&y->mu);
		if (rc != MDB_SUCCESS) {
			if (!y->err)
				y->err = rc == ENOSPC ? CL_ENOSPC : CL_EIO;
			y->requested = y->durable;      /* the owner learns it, then stops */
		} else if (target > y->durable) {
			y->durable = target;
		}
		pthread_cond_broadcast(&y->done_cv);
		if (y->wake) {
			void (*wake)(void *) = y->wake;
			void *warg = y->arg;

			pthread_mutex_unlock(&y->mu);
			wake(warg);
			pthread_mutex_lock(&y->mu);
		}
	}
	pthread_mutex_unlock(&y->mu);
	return NULL;
}

int evlog_defer_sync(struct evlog *log, void (*wake)(void *arg), void *arg)
{
	struct evlog_sync *y = &log->sync;
	uint64_t last = 0;
	int rc;

	if ((log->flags & (EVLOG_RDONLY | EVLOG_NOSYNC)) || log->w.txn || log->deferred)
		return CL_EINVAL;
	rc = evlog_last(log, &last, NULL);
	if (rc)
		return rc;
	/* what is there now was committed with a full sync (or is ours to sync) */
	rc = map_err(mdb_env_sync(log->env, 1));
	if (rc)
		return rc;
	rc = map_err(mdb_env_set_flags(log->env, MDB_NOMETASYNC, 1));
	if (rc)
		return rc;
	pthread_mutex_lock(&y->mu);
	y->committed = y->requested = y->durable = last;
	y->err = 0;
	y->stop = 0;
	y->wake = wake;
	y->arg = arg;
	y->running = pthread_create(&y->thread, NULL, sync_thread, log) == 0;
	pthread_mutex_unlock(&y->mu);
	if (!y->running) {
		mdb_env_set_flags(log->env, MDB_NOMETASYNC, 0);
		return CL_ENOMEM;
	}
	log->deferred = 1;
	return CL_OK;
}

uint64_t evlog_durable(struct evlog *log, int *err)
{
	struct evlog_sync *y = &log->sync;
	uint64_t d;

	pthread_mutex_lock(&y->mu);
	d = y->durable;
	if (err)
		*err = y->err;
	pthread_mutex_unlock(&y->mu);
	return d;
}

int evlog_sync_wait(struct evlog *log, uint64_t seq)
{
	struct evlog_sync *y = &log->sync;
	int rc;

	pthread_mutex_lock(&y->mu);
	if (y->running && y->requested < seq && seq <= y->committed) {
		y->requested = y->committed;
		pthread_cond_signal(&y->cv);
	}
	while (y->running && !y->err && y->durable < seq && seq <= y->committed)
		pthread_cond_wait(&y->done_cv, &y->mu);
	rc = y->err ? y->err : y->durable >= seq ? CL_OK : CL_EINVAL;
	pthread_mutex_unlock(&y->mu);
	return rc;
}

void evlog_sync_stop(struct evlog *log)
{
	struct evlog_sync *y = &log->sync;
	int running;

	pthread_mutex_lock(&y->mu);
	running = y->running;
	y->stop = 1;
	pthread_cond_signal(&y->cv);
	pthread_mutex_unlock(&y->mu);
	if (running)
		pthread_join(y->thread, NULL);
	y->running = 0;
}

void evlog_sync_test(struct evlog *log, unsigned delay_ms, int fail)
{
	pthread_mutex_lock(&log->sync.mu);
	log->sync.delay_ms = delay_ms;
	log->sync.fail = fail;
	pthread_mutex_unlock(&log->sync.mu);
}

void evlog_share_upto(struct evlog *log, uint64_t seq)
{
	atomic_store(&log->shared_upto, seq);
}

/* ---- writing ---------------------------------------------------------- */

/* Double the map after a MAP_FULL, when no txn of this process is open. */
static int grow_map(struct evlog *log)
{
	MDB_envinfo info;
	int rc;

	if (!log->grow || log->nread > 0)
		return CL_OK;   /* with readers open, the txn may hit MAP_FULL again */
	rc = mdb_env_info(log->env, &info);
	if (rc == MDB_SUCCESS)
		rc = remap(log, info.me_mapsize * 2);
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	log->grow = 0;
	return CL_OK;
}

/* A txn hit MAP_FULL: grow at the next begin, unless the map is fixed. */
static void mark_full(struct evlog *log)
{
	if (!(log->flags & EVLOG_FIXEDMAP))
		log->grow = 1;
}

int evlog_map_fixed(const struct evlog *log)
{
	return (log->flags & EVLOG_FIXEDMAP) != 0;
}

/* Begin the write txn without the expect_last condition. */
static int wbegin_any(struct evlog *log, struct evlog_txn **out)
{
	struct evlog_txn *t = &log->w;
	int rc;

	*out = NULL;
	if (log->flags & EVLOG_RDONLY)
		return CL_EINVAL;
	if (t->txn)
		return CL_EINVAL;   /* one write txn at a time */
	rc = grow_map(log);
	if (rc)
		return rc;
	rc = txn_begin(log, 0, &t->txn);
	if (rc)
		return rc;
	rc = meta_last(log, t->txn, &t->last, t->head);
	if (rc) {
		mdb_txn_abort(t->txn);
		t->txn = NULL;
		return rc;
	}
	t->err = 0;
	t->dirty = 0;
	t->begun_at = t->last;
	*out = t;
	return CL_OK;
}

int evlog_wbegin(struct evlog *log, uint64_t expect_last, uint64_t *actual_last,
		 struct evlog_txn **out)
{
	int rc = wbegin_any(log, out);

	if (rc)
		return rc;
	if (actual_last)
		*actual_last = (*out)->last;
	if ((*out)->last != expect_last) {
		evlog_wabort(*out);
		*out = NULL;
		return CL_ECONFLICT;
	}
	return CL_OK;
}

/* Mark the txn poisoned by rc and return rc. */
static int wfail(struct evlog_txn *t, int rc)
{
	if (rc == CL_EMAPFULL)
		mark_full(t->log);
	if (!t->err)
		t->err = rc;
	return rc;
}

int evlog_wappend(struct evlog_txn *t, struct event *ev)
{
	struct evlog *log = t->log;
	uint8_t kb[8];
	MDB_val k = { sizeof kb, kb }, v;
	uint64_t seq;
	int rc;

	if (!t->txn || t->err)
		return CL_EINVAL;
	seq = t->last + 1;
	ev->seq = seq;
	memcpy(ev->prev_hash, t->head, EV_HASH_LEN);
	rc = ev_encode(ev, &log->buf);
	if (rc)
		return rc;              /* nothing stored: the txn is still usable */
	if (log->buf.len > CL_MAX_EVENT)
		return CL_ETOOBIG;
	put_be64(kb, seq);
	v.mv_size = log->buf.len;
	v.mv_data = log->buf.data;
	rc = mdb_put(t->txn, log->events, &k, &v, MDB_APPEND);
	if (rc == MDB_KEYEXIST)
		return wfail(t, CL_ECORRUPT);   /* events beyond meta "last" */
	if (rc != MDB_SUCCESS)
		return wfail(t, map_err(rc));
	rc = hash_with(log->md, log_sha(log), t->head, seq, log->buf.data, log->buf.len, t->head);
	if (rc)
		return wfail(t, rc);
	t->last = seq;
	t->dirty = 1;
	return CL_OK;
}

int evlog_wappend_raw(struct evlog_txn *t, uint64_t seq, const uint8_t *val, size_t len)
{
	struct evlog *log = t->log;
	struct event ev;
	uint8_t kb[8];
	MDB_val k = { sizeof kb, kb }, v = { len, (void *)val };
	int rc;

	if (!t->txn || t->err || !val)
		return CL_EINVAL;
	if (len > CL_MAX_EVENT)
		return CL_ETOOBIG;
	if (seq != t->last + 1)
		return CL_ECORRUPT;             /* a gap or a repeat: nothing stored */
	rc = ev_decode(val, len, &ev);
	if (rc)
		return rc;
	if (memcmp(ev.prev_hash, t->head, EV_HASH_LEN) != 0)
		return CL_ECORRUPT;             /* not the next link of this chain */
	put_be64(kb, seq);
	rc = mdb_put(t->txn, log->events, &k, &v, MDB_APPEND);
	if (rc == MDB_KEYEXIST)
		return wfail(t, CL_ECORRUPT);
	if (rc != MDB_SUCCESS)
		return wfail(t, map_err(rc));
	rc = hash_with(log->md, log_sha(log), t->head, seq, val, len, t->head);
	if (rc)
		return wfail(t, rc);
	t->last = seq;
	t->dirty = 1;
	return CL_OK;
}

uint64_t evlog_wlast(const struct evlog_txn *t)
{
	return t->last;
}

int evlog_wget(struct evlog_txn *t, uint64_t seq, struct event *ev)
{
	uint8_t kb[8];
	MDB_val k = { sizeof kb, kb }, v;
	int rc;

	if (!t->txn || t->err)
		return CL_EINVAL;
	put_be64(kb, seq);
	rc = mdb_get(t->txn, t->log->events, &k, &v);
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	rc = ev_decode(v.mv_data, v.mv_size, ev);
	if (rc)
		return CL_ECORRUPT;
	ev->seq = seq;
	return 1;
}

static int cmd_key(uint8_t *kb, uint64_t actor, struct cl_str cmd_id, MDB_val *k)
{
	if (!cmd_id.p || cmd_id.n == 0 || cmd_id.n > CL_MAX_CMD_ID)
		return CL_EINVAL;
	put_be64(kb, actor);
	memcpy(kb + 8, cmd_id.p, cmd_id.n);
	k->mv_size = 8 + cmd_id.n;
	k->mv_data = kb;
	return CL_OK;
}

int evlog_wcmd_get(struct evlog_txn *t, uint64_t actor, struct cl_str cmd_id,
		   struct evlog_cmd *out)
{
	uint8_t kb[8 + CL_MAX_CMD_ID];
	MDB_val k, v;
	const uint8_t *p;
	size_t n;
	int rc;

	if (!t->txn || t->err)
		return CL_EINVAL;
	rc = cmd_key(kb, actor, cmd_id, &k);
	if (rc)
		return rc;
	rc = mdb_get(t->txn, t->log->cmds, &k, &v);
	if (rc == MDB_NOTFOUND)
		return CL_ENOTFOUND;
	if (rc != MDB_SUCCESS)
		return wfail(t, map_err(rc));
	if (v.mv_size < EVLOG_CMD_VAL_HDR)
		return CL_ECORRUPT;
	p = v.mv_data;
	n = EVLOG_CMD_VAL_HDR;
	memset(out, 0, sizeof *out);
	out->first_seq = get_be64(p);
	out->count = get_be32(p + 8);
	if (v.mv_size > n && p[n] == EVLOG_CMD_USE_TAG) {
		if (v.mv_size < n + 2 || p[n + 1] == 0 ||
		    v.mv_size - n - 2 < (size_t)p[n + 1] + EV_HASH_LEN)
			return CL_ECORRUPT;
		out->name = (const char *)p + n + 2;
		out->name_len = p[n + 1];
		out->params_hash = p + n + 2 + out->name_len;
		n += 2 + out->name_len + EV_HASH_LEN;
	}
	out->result = (const char *)p + n;
	out->result_len = v.mv_size - n;
	return CL_OK;
}

int evlog_wcmd_put(struct evlog_txn *t, uint64_t actor, struct cl_str cmd_id,
		   uint64_t first_seq, uint32_t count, const char *name,
		   const uint8_t *params_hash, const char *result, size_t result_len)
{
	uint8_t kb[8 + CL_MAX_CMD_ID];
	MDB_val k, v;
	uint8_t *p;
	size_t name_len = name ? strlen(name) : 0, use = 0;
	int rc;

	if (!t->txn || t->err)
		return CL_EINVAL;
	rc = cmd_key(kb, actor, cmd_id, &k);
	if (rc)
		return rc;
	if (result_len > EVLOG_MAX_RESULT)
		return CL_ETOOBIG;
	if ((result_len && !result) ||
	    (name && (name_len == 0 || name_len > EVLOG_MAX_CMD_NAME || !params_hash)))
		return CL_EINVAL;
	if (name)
		use = 2 + name_len + EV_HASH_LEN;
	v.mv_size = EVLOG_CMD_VAL_HDR + use + result_len;
	v.mv_data = NULL;
	rc = mdb_put(t->txn, t->log->cmds, &k, &v, MDB_NOOVERWRITE | MDB_RESERVE);
	if (rc == MDB_KEYEXIST)
		return CL_EEXIST;       /* the txn is still usable */
	if (rc != MDB_SUCCESS)
		return wfail(t, map_err(rc));
	p = v.mv_data;
	put_be64(p, first_seq);
	put_be32(p + 8, count);
	p += EVLOG_CMD_VAL_HDR;
	if (name) {
		*p++ = EVLOG_CMD_USE_TAG;
		*p++ = (uint8_t)name_len;
		memcpy(p, name, name_len);
		memcpy(p + name_len, params_hash, EV_HASH_LEN);
		p += name_len + EV_HASH_LEN;
	}
	if (result_len)
		memcpy(p, result, result_len);
	t->dirty = 1;
	return CL_OK;
}

int evlog_wcommit(struct evlog_txn *t)
{
	struct evlog *log = t->log;
	uint8_t b8[8];
	int rc;

	if (!t->txn)
		return CL_EINVAL;
	if (t->err) {
		rc = t->err;
		evlog_wabort(t);        /* a failed txn is never committed */
		return rc;
	}
	rc = CL_OK;
	if (t->dirty) {
		put_be64(b8, t->last);
		rc = meta_put(t->txn, log->meta, "last", b8, 8);
		if (rc == CL_OK)
			rc = meta_put(t->txn, log->meta, "head", t->head, EV_HASH_LEN);
	}
	if (rc) {
		wfail(t, rc);
		evlog_wabort(t);
		return rc;
	}
	rc = map_err(mdb_txn_commit(t->txn));   /* frees the txn, even on failure */
	t->txn = NULL;
	if (rc == CL_EMAPFULL)
		mark_full(log);
	if (rc == CL_OK && log->deferred)
		sync_committed(log, t->begun_at, t->last);
	return rc;
}

void evlog_wabort(struct evlog_txn *t)
{
	if (!t || !t->txn)
		return;
	mdb_txn_abort(t->txn);
	t->txn = NULL;
	t->err = 0;
	t->dirty = 0;
}

/* One attempt of evlog_append. */
static int append_once(struct evlog *log, uint64_t expect_last, struct event *events,
		       size_t n, uint64_t actor, struct cl_str cmd_id, const char *result,
		       size_t result_len, uint64_t *first_seq)
{
	struct evlog_txn *t;
	struct evlog_cmd cmd;
	uint64_t first;
	int rc;

	rc = wbegin_any(log, &t);
	if (rc)
		return rc;
	/* A retried command wins over a conflict: its answer is the original. */
	if (cmd_id.n > 0) {
		rc = evlog_wcmd_get(t, actor, cmd_id, &cmd);
		if (rc == CL_OK) {
			if (first_seq)
				*first_seq = cmd.first_seq;
			rc = CL_EEXIST;
			goto abort;
		}
		if (rc != CL_ENOTFOUND)
			goto abort;
	}
	if (t->last != expect_last) {
		rc = CL_ECONFLICT;
		goto abort;
	}
	first = t->last + 1;
	for (size_t i = 0; i < n; i++) {
		rc = evlog_wappend(t, &events[i]);
		if (rc)
			goto abort;
	}
	if (cmd_id.n > 0) {
		rc = evlog_wcmd_put(t, actor, cmd_id, first, (uint32_t)n, NULL, NULL, result,
				    result_len);
		if (rc)
			goto abort;
	}
	rc = evlog_wcommit(t);
	if (rc == CL_OK && first_seq)
		*first_seq = first;
	return rc;
abort:
	if (rc == CL_EMAPFULL)
		mark_full(log);
	evlog_wabort(t);
	return rc;
}

int evlog_append(struct evlog *log, uint64_t expect_last, struct event *events, size_t n,
		 uint64_t actor, struct cl_str cmd_id, const char *result, size_t result_len,
		 uint64_t *first_seq)
{
	int rc, tries = 0;

	if (n == 0 || !events || n > UINT32_MAX)
		return CL_EINVAL;
	do {
		rc = append_once(log, expect_last, events, n, actor, cmd_id, result,
				 result_len, first_seq);
		/* Retry only when the next begin really grows the map. */
	} while (rc == CL_EMAPFULL && log->grow && log->nread == 0 && ++tries < 48);
	return rc;
}

/* ---- backup and epoch ------------------------------------------------- */

/* fsync a file or directory by path. */
static int sync_path(const char *path, int dir)
{
	int fd = open(path, (dir ? O_RDONLY | O_DIRECTORY : O_RDWR) | O_CLOEXEC);
	int rc = CL_OK;

	if (fd < 0)
		return CL_EIO;
	if (fsync(fd) != 0)
		rc = errno == ENOSPC ? CL_ENOSPC : CL_EIO;
	close(fd);
	return rc;
}

int evlog_backup(struct evlog *log, const char *dest)
{
	char path[PATH_MAX];
	int rc;

	if (!dest || !*dest)
		return CL_EINVAL;
	if ((size_t)snprintf(path, sizeof path, "%s/data.mdb", dest) >= sizeof path)
		return CL_EINVAL;
	rc = mkdir_p(dest);
	if (rc)
		return rc;
	rc = mdb_env_copy2(log->env, dest, MDB_CP_COMPACT);
	if (rc == MDB_MAP_RESIZED && log->nread == 0) {
		/* the copy's read txn needs the size another process set */
		rc = remap(log, 0);
		if (rc == MDB_SUCCESS)
			rc = mdb_env_copy2(log->env, dest, MDB_CP_COMPACT);
	}
	if (rc == EEXIST)
		return CL_EEXIST;       /* dest already holds a data.mdb */
	if (rc != MDB_SUCCESS)
		return map_err(rc);
	/* LMDB writes the copy but does not fsync it; a backup must be durable. */
	rc = sync_path(path, 0);
	if (rc == CL_OK)
		rc = sync_path(dest, 1);
	return rc;
}

int evlog_adopt_epoch(struct evlog *log, const char *hex)
{
	uint8_t epoch[EVLOG_EPOCH_LEN];
	uint64_t last = 0;
	MDB_txn *txn;
	int rc;

	if (!hex || strlen(hex) != EVLOG_EPOCH_STRLEN || log->w.txn || (log->flags & EVLOG_RDONLY))
		return CL_EINVAL;
	for (size_t i = 0; i < EVLOG_EPOCH_LEN; i++) {
		unsigned hi, lo;
		char c1 = hex[2 * i], c2 = hex[2 * i + 1];

		if (!((c1 >= '0' && c1 <= '9') || (c1 >= 'a' && c1 <= 'f')) ||
		    !((c2 >= '0' && c2 <= '9') || (c2 >= 'a' && c2 <= 'f')))
			return CL_EINVAL;
		hi = c1 <= '9' ? (unsigned)(c1 - '0') : (unsigned)(c1 - 'a' + 10);
		lo = c2 <= '9' ? (unsigned)(c2 - '0') : (unsigned)(c2 - 'a' + 10);
		epoch[i] = (uint8_t)(hi << 4 | lo);
	}
	if (memcmp(epoch, log->epoch, EVLOG_EPOCH_LEN) == 0)
		return CL_OK;
	rc = txn_begin(log, 0, &txn);
	if (rc)
		return rc;
	rc = meta_last(log, txn, &last, NULL);
	if (rc == CL_OK && last != 0)
		rc = CL_EEXIST;                 /* a log with events keeps its epoch */
	if (rc == CL_OK)
		rc = meta_put(txn, log->meta, "epoch", epoch, sizeof epoch);
	if (rc == CL_OK) {
		rc = map_err(mdb_txn_commit(txn));
	} else {
		mdb_txn_abort(txn);
	}
	if (rc == CL_OK) {
		memcpy(log->epoch, epoch, EVLOG_EPOCH_LEN);
		hex_encode(log->epoch, EVLOG_EPOCH_LEN, log->epoch_hex);
	}
	return rc;
}

int evlog_new_epoch(const char *dir)
{
	struct evlog *log;
	uint8_t epoch[EVLOG_EPOCH_LEN];
	MDB_txn *txn;
	int rc;

	rc = evlog_open(&log, dir, 0, 0);
	if (rc)
		return rc;
	rc = token_random(epoch, sizeof epoch);
	if (rc == CL_OK)
		rc = txn_begin(log, 0, &txn);
	if (rc == CL_OK) {
		rc = meta_put(txn, log->meta, "epoch", epoch, sizeof epoch);
		if (rc == CL_OK)
			rc = map_err(mdb_txn_commit(txn));
		else
			mdb_txn_abort(txn);
	}
	evlog_close(log);
	return rc;
}
