/*
 * evlog.h - the event log: one LMDB environment in a data directory.
 *
 * Named databases:
 *   "events"  key: u64 seq, 8 bytes big-endian (cursor order = log order),
 *             value: the msgpack envelope of core/event.h. Seqs start at 1
 *             and are gapless; appended with MDB_APPEND.
 *   "meta"    "format" (u32 BE = 1), "epoch" (16 random bytes),
 *             "last" (u64 BE last seq), "head" (32-byte hash of event last),
 *             "created" (i64 BE µs).
 *   "cmds"    key: u64 BE actor ‖ client command id bytes;
 *             value: u64 BE first seq ‖ u32 BE count ‖ [use] ‖ result bytes,
 *             use = 0x01 ‖ u8 n ‖ command name (n bytes) ‖ 32-byte SHA-256
 *             of the command's params (what the id was used for). Records
 *             written before the use was stored have none: their result (a
 *             JSON object, or nothing) never starts with 0x01.
 *
 * Hash chain: hash(seq) = SHA-256(hash(seq-1) ‖ u64 BE seq ‖ value), with
 * hash(0) = 32 zero bytes. Each value also carries hash(seq-1) in its
 * envelope (prev_hash), and meta "head" = hash(last). Any change to history
 * is detected by walking the chain (changelog-audit verify).
 *
 * Appends are conditional (append-if-unchanged): a write txn is begun with the
 * last seq the caller has seen, and fails with CL_ECONFLICT if another
 * process appended since. LMDB serialises writers across processes, so the
 * check inside the txn is exact.
 *
 * Errors are CL_E* codes (core/cl.h). A write txn that failed is poisoned:
 * the only call left is evlog_wabort. Nothing here logs.
 *
 * A struct evlog is used by one thread at a time (it holds one SHA-256
 * context and one encode buffer), except evlog_read_shared, which other
 * threads may call meanwhile. It may hold several read txns at once
 * (iterators, evlog_last: the env is MDB_NOTLS) and one write txn.
 *
 * Map size: if another process grew the map past this process's while this
 * process holds an iterator, the map cannot be re-mapped under it; calls
 * that begin a txn (evlog_last, evlog_iter_new, evlog_stat, evlog_wbegin)
 * then return CL_EMAPFULL: free the iterators and call again.
 */
#ifndef CL_EVLOG_H
#define CL_EVLOG_H

#include <stdint.h>
#include <stddef.h>
#include "../core/cl.h"
#include "../core/event.h"

struct evlog;
struct evlog_txn;
struct evlog_iter;

enum evlog_flags {
	EVLOG_CREATE = 1,   /* create the directory and a new log (new epoch) if absent */
	EVLOG_RDONLY = 2,   /* read-only: tools, and readers beside a running writer */
	EVLOG_NOSYNC = 4,   /* no fsync on commit: benchmarks only, never the default */
	EVLOG_FIXEDMAP = 8, /* the map is mapsize and never grows: a full map stays
			     * CL_EMAPFULL (changelogd --map-size) */
};

#define EVLOG_EPOCH_LEN 16
#define EVLOG_EPOCH_STRLEN 32   /* lower-case hex */

/*
 * Open the log in dir. mapsize 0 means the default (1 GiB, or the larger
 * size the file records; grown by doubling on MDB_MAP_FULL). With
 * EVLOG_FIXEDMAP (mapsize must then be set) the map is mapsize, or the
 * bytes the file already uses if that is more, and is never grown by this
 * process: appends past it fail with CL_EMAPFULL, reads go on. Clears
 * stale reader slots (mdb_reader_check).
 *
 * Before LMDB maps anything, the directory is checked with plain reads
 * (store/datadir.h): a data.mdb that is missing while lock.mdb,
 * admin-token or tls/ remain, empty, not LMDB, with meta pages that are
 * not both its own, or shorter than its meta page says is refused with
 * CL_ECORRUPT - also with EVLOG_CREATE: a new log is only ever made in a
 * directory that is missing or holds nothing of ours. EVLOG_CREATE makes
 * missing directories (mode 0700) and that new log, with a random epoch
 * (built aside and linked into place, so data.mdb is never seen half
 * made); with an existing log it just opens it. EVLOG_CREATE |
 * EVLOG_RDONLY is CL_EINVAL.
 * Errors: CL_ENOTFOUND (no log and no EVLOG_CREATE), CL_ECORRUPT (the
 * checks above, no log databases in the file, meta bad or format unknown),
 * CL_EIO, CL_ENOSPC, CL_ENOMEM. datadir_explain(dir, rc, ...) turns any of
 * them into the sentence to show the user.
 * *out is valid until evlog_close.
 */
int evlog_open(struct evlog **out, const char *dir, unsigned flags, size_t mapsize);

/*
 * Last resort for damage inside the B-tree that evlog_open's checks cannot
 * see: on some zeroed or stale pages LMDB 0.9.24 fails an assertion (and
 * would abort) or reads past the end of the file (SIGBUS). An assertion
 * always ends the process with exit status 1 after report(sentence) -
 * the sentence names the data directory last opened and how to restore
 * it; evlog_on_damage also turns SIGBUS into the same. report (NULL:
 * write to stderr) may run inside the SIGBUS handler, while the process
 * was reading the map: it should only format and write.
 */
void evlog_on_damage(void (*report)(const char *msg));

/* 1 if opened with EVLOG_FIXEDMAP: a CL_EMAPFULL is final, not retried. */
int evlog_map_fixed(const struct evlog *log);
void evlog_close(struct evlog *log);

/* The epoch as 32 lower-case hex characters plus NUL; valid until close. */
const char *evlog_epoch(const struct evlog *log);

/*
 * Last committed seq and head hash, from a fresh read txn, so it sees commits
 * made by other processes. head may be NULL. Empty log: seq 0, zero hash.
 */
int evlog_last(struct evlog *log, uint64_t *seq, uint8_t head[EV_HASH_LEN]);

/*
 * Cheap change detector for tailing: a number that changes whenever any
 * process commits a write txn (LMDB's last txn id). No txn, no I/O.
 */
uint64_t evlog_generation(struct evlog *log);

/* Stats for tools: map size and bytes in use (pages * page size), entries. */
struct evlog_stat {
	uint64_t mapsize, used_bytes, events, cmds;
};
int evlog_stat(struct evlog *log, struct evlog_stat *st);

/* ---- reading ---------------------------------------------------------- */

/* One stored record; val points into the LMDB map, valid until the next
 * evlog_iter_next or evlog_iter_free. */
struct evlog_rec {
	uint64_t seq;
	const uint8_t *val;
	size_t len;
};

/*
 * Iterate from seq `from` (inclusive; 0 or 1 = from the start) over a
 * snapshot taken now. Holds a read txn until evlog_iter_free: do not keep one
 * across evlog_wbegin calls that may need to grow the map.
 */
int evlog_iter_new(struct evlog *log, uint64_t from, struct evlog_iter **out);
/* 1 = *rec filled, 0 = end of the snapshot, < 0 = error. */
int evlog_iter_next(struct evlog_iter *it, struct evlog_rec *rec);
void evlog_iter_free(struct evlog_iter *it);

/*
 * Read, decode and hash-check: like evlog_iter_next, then ev_decode into *ev
 * (ev->seq set) and check ev->prev_hash against the running chain from where
 * the iterator started. Returns 1, 0 or < 0 (CL_ECORRUPT on a chain break or
 * seq gap; CL_EDECODE / CL_EVERSION from the decoder). The first record must
 * be seq `from` (a missing one is a gap), and seq 1 must carry the zero
 * prev_hash. At the end of the snapshot (before returning 0) the last record
 * read must be meta "last" and its hash meta "head", so a change to the final
 * record is caught too. Errors stick: every later call returns the same code.
 */
int evlog_iter_next_event(struct evlog_iter *it, struct event *ev);

/*
 * Cold start: hand every event from seq `from` (0 or 1 = the start) to the
 * end of a snapshot taken now - or through seq `upto` when upto != 0 - to
 * apply, in log order: the events, checks and errors of an
 * evlog_iter_next_event loop over the same snapshot. apply(arg, ev, n) gets
 * n >= 1 consecutive events (at most EVLOG_REPLAY_BATCH; the strings point
 * into the map and are valid during the call), every one of which decoded
 * and whose prev_hash matched the chain; it applies them in order and
 * returns 0, or an error that stops the replay and is returned. Returns 0
 * when the snapshot (or upto) was reached with every check passed - for a
 * replay to the end that includes the meta last / head check - or the first
 * error otherwise (CL_ECORRUPT for a chain break or gap, CL_EDECODE, ...),
 * after which what apply built must be thrown away, as after a failed loop.
 *
 * The hash chain is computed on a second thread (the reader, which owns the
 * read txn) while the calling thread decodes and applies: on two cores a
 * rebuild costs about max(read + SHA-256, decode + apply) per event instead
 * of the sum. idle (may be NULL) is called on the reader thread, with arg,
 * when the reader is far ahead, concurrently with apply: it may prepare
 * what apply will need (proj_prepare faults in memory) and returns 1 if it
 * did something and may be called again, 0 if not. With
 * EVLOG_REPLAY_SERIAL, or if the thread cannot be started, the plain loop
 * runs on the calling thread (its events handed to apply in the same
 * batches, idle never called).
 * log must not be used by anyone else until the call returns.
 */
enum { EVLOG_REPLAY_SERIAL = 1 };
#define EVLOG_REPLAY_BATCH 32
typedef int (*evlog_apply_fn)(void *arg, const struct event *ev, size_t n);
int evlog_replay(struct evlog *log, uint64_t from, uint64_t upto, unsigned flags,
		 evlog_apply_fn apply, int (*idle)(void *arg), void *arg);

/* hash(seq) from hash(seq-1) and the stored value. */
void evlog_hash(const uint8_t prev[EV_HASH_LEN], uint64_t seq,
		const uint8_t *val, size_t len, uint8_t out[EV_HASH_LEN]);

/*
 * The one call another thread may make while the owner uses the log (the
 * NATS publisher, net/natspub.c): in a read txn of its own, hand fn the
 * stored bytes of seq from, from+1, ... (at most max_n records, and none
 * after max_bytes have been handed; at least one if there is one), in
 * order. val is valid during the call only: copy it. *last (may be NULL)
 * gets meta "last" of the same snapshot. fn returns 0, or an error that
 * stops the read and is returned. Returns 0 (also when nothing is there),
 * CL_ECORRUPT if a seq is missing, CL_EMAPFULL if another process grew the
 * map and the owner has not adopted it yet (call again later), or another
 * CL_E* code. Growing the map waits while such a txn is open, so keep fn
 * short (a copy). Nothing past evlog_share_upto's seq is handed out.
 * Not for use after evlog_close.
 */
typedef int (*evlog_rec_fn)(void *arg, uint64_t seq, const uint8_t *val, size_t len);
int evlog_read_shared(struct evlog *log, uint64_t from, size_t max_n, size_t max_bytes,
		      evlog_rec_fn fn, void *arg, uint64_t *last);

/* ---- writing ---------------------------------------------------------- */

/*
 * Begin a write txn, conditional on the log's last seq being expect_last.
 * Blocks while another process holds the LMDB write lock.
 * Errors: CL_ECONFLICT (*actual_last, if not NULL, gets the real last seq;
 * no txn is open), CL_EIO, CL_ENOSPC, CL_EINVAL (log opened EVLOG_RDONLY, or
 * a write txn of this log is already open). If the previous txn hit
 * CL_EMAPFULL, the map is grown first (no read txn of this process may be
 * open; with one open the map stays as it is). On success *actual_last, if
 * not NULL, is expect_last. The txn lives inside the log: at most one open.
 */
int evlog_wbegin(struct evlog *log, uint64_t expect_last, uint64_t *actual_last,
		 struct evlog_txn **out);

/*
 * Append one event: sets ev->prev_hash and ev->seq (the next seq), encodes
 * it (ev_encode) and stores it. ev->cmd_id is stored in the envelope as given.
 * Errors: CL_EINVAL (ev not well formed, or the txn is poisoned; a bad event
 * leaves the txn usable), CL_ENOMEM (encoder), CL_EMAPFULL, CL_ENOSPC,
 * CL_EIO, CL_ECORRUPT (a record already sits at the next seq) - the last
 * four poison the txn: evlog_wcommit then aborts it and returns the code.
 */
int evlog_wappend(struct evlog_txn *txn, struct event *ev);

/*
 * Append one event exactly as another log stored it (an edge node copying
 * its writer's log): val must be the envelope of seq evlog_wlast(txn) + 1,
 * and its prev_hash the hash of this log's last event, so the copy's hash
 * chain is the original's. Errors that store nothing and leave the txn
 * usable: CL_ECORRUPT (seq is not the next one, or prev_hash is not this
 * chain's head), CL_EDECODE / CL_EVERSION (not an envelope), CL_ETOOBIG,
 * CL_EINVAL; and the poisoning ones of evlog_wappend.
 */
int evlog_wappend_raw(struct evlog_txn *txn, uint64_t seq, const uint8_t *val, size_t len);

/* Last seq as seen inside the txn, including this txn's appends. */
uint64_t evlog_wlast(const struct evlog_txn *txn);

/*
 * Read event seq as this txn sees it (its own appends included) into *ev.
 * ev's strings point into the txn's pages: valid until the next append,
 * commit or abort. 1 found, 0 no such seq, or CL_EINVAL / CL_EIO /
 * CL_ECORRUPT.
 */
int evlog_wget(struct evlog_txn *txn, uint64_t seq, struct event *ev);

/* Idempotency record for (actor, client command id). */
struct evlog_cmd {
	uint64_t first_seq;
	uint32_t count;          /* events the command appended */
	const char *result;      /* the original reply payload (JSON text) */
	size_t result_len;       /* valid until the txn ends, as are name and hash */
	/* what the id was used for; name NULL: a record from before the use
	 * was stored (or written without one), which matches any command */
	const char *name;        /* the command name, name_len bytes, no NUL */
	size_t name_len;
	const uint8_t *params_hash;   /* EV_HASH_LEN bytes */
};
/* 0 and *out filled if present, CL_ENOTFOUND if not (CL_ECORRUPT: a value
 * too short for what it says it holds). cmd_id must be 1 to CL_MAX_CMD_ID
 * bytes (else CL_EINVAL). evlog_wcmd_put records the use when name is not
 * NULL (1..EVLOG_MAX_CMD_NAME bytes, with params_hash; else CL_EINVAL);
 * it refuses an id already recorded with CL_EEXIST (txn still usable) and a
 * result over CL_MAX_EVENT bytes with CL_ETOOBIG. */
#define EVLOG_MAX_CMD_NAME 255
int evlog_wcmd_get(struct evlog_txn *txn, uint64_t actor, struct cl_str cmd_id,
		   struct evlog_cmd *out);
int evlog_wcmd_put(struct evlog_txn *txn, uint64_t actor, struct cl_str cmd_id,
		   uint64_t first_seq, uint32_t count, const char *name,
		   const uint8_t *params_hash, const char *result, size_t result_len);

/*
 * Commit (fsync unless EVLOG_NOSYNC; with evlog_defer_sync the pages only,
 * the meta by the sync thread), updating meta "last" and "head".
 * Frees txn in every case. On failure nothing was written.
 * Errors: CL_ENOSPC, CL_EMAPFULL, CL_EIO.
 */
int evlog_wcommit(struct evlog_txn *txn);
void evlog_wabort(struct evlog_txn *txn);

/*
 * Convenience for tools: append n events in one txn conditional on
 * expect_last, recording (actor, cmd_id) if cmd_id.n > 0 (without a use,
 * so the record matches any command: evlog_cmd). Retries itself on
 * CL_EMAPFULL after growing the map. If cmd_id was already applied, appends
 * nothing and returns CL_EEXIST with *first_seq set to the original; this
 * wins over CL_ECONFLICT, so a retry with a stale expect_last still learns
 * its original result. n must be 1 .. UINT32_MAX (else CL_EINVAL).
 * events[i].seq / prev_hash are set on success.
 */
int evlog_append(struct evlog *log, uint64_t expect_last, struct event *events, size_t n,
		 uint64_t actor, struct cl_str cmd_id, const char *result, size_t result_len,
		 uint64_t *first_seq);

/*
 * Hot backup: a compacted consistent copy into dest (an empty or missing
 * directory, made with mode 0700) while writers continue (mdb_env_copy2 +
 * MDB_CP_COMPACT); the copy is fsync'd. CL_EEXIST if dest already holds a
 * data.mdb. The copy keeps the epoch: give a restored log a new one.
 */
int evlog_backup(struct evlog *log, const char *dest);

/*
 * Give an empty log (no event yet) the epoch hex (EVLOG_EPOCH_STRLEN lower-
 * case hex digits): an edge node's copy carries its writer's epoch. 0 (also
 * when it already has it), CL_EEXIST if the log holds events (its epoch
 * stays), CL_EINVAL (bad hex, a write txn open, read-only), or the errors of
 * a commit. No write txn of log may be open.
 */
int evlog_adopt_epoch(struct evlog *log, const char *hex);

/*
 * Give the log in dir a new random epoch (after restore). The log must not
 * be open elsewhere for writing.
 */
int evlog_new_epoch(const char *dir);

/* Test hook: the current map size. */
size_t evlog_mapsize(struct evlog *log);

/* ---- durability off the committing thread ----------------------------- */

/*
 * Deferred meta sync: from now on evlog_wcommit fdatasyncs the txn's pages
 * but not the meta page that points at them (LMDB's MDB_NOMETASYNC, set on
 * this process's env only: other processes commit with full syncs). A
 * thread started here runs mdb_env_sync after each commit; wake(arg) (may
 * be NULL) is called on that thread after each sync. A commit also makes
 * every seq before it durable (its data fdatasync flushes the earlier
 * metas). A power cut loses at most the commits after evlog_durable; the
 * file is never left inconsistent (store/evlog.c, "the deferred meta
 * sync"). A kill -9 of the process loses nothing. Syncs what is committed
 * first. CL_EINVAL with EVLOG_RDONLY, EVLOG_NOSYNC, a write txn open or
 * when already on. evlog_close stops the thread and syncs.
 */
int evlog_defer_sync(struct evlog *log, void (*wake)(void *arg), void *arg);

/*
 * The last seq known durable (any thread). *err (may be NULL) gets the
 * first failed sync (CL_EIO, CL_ENOSPC): after one nothing more becomes
 * durable and the caller should stop acknowledging.
 */
uint64_t evlog_durable(struct evlog *log, int *err);

/* Block until seq (<= the last seq this process committed) is durable:
 * 0, the sync's error, or CL_EINVAL when seq was never committed here. */
int evlog_sync_wait(struct evlog *log, uint64_t seq);

/* Stop the sync thread (evlog_close does it too). */
void evlog_sync_stop(struct evlog *log);

/* Test hook (changelogd's CHANGELOG_TEST_SYNC_*): the sync thread sleeps
 * delay_ms before each sync; with fail, every sync of the thread fails
 * with CL_EIO (the data is still written: only the answer is faked). */
void evlog_sync_test(struct evlog *log, unsigned delay_ms, int fail);

/*
 * evlog_read_shared hands out no record after seq (0: no bound), and caps
 * its *last there: the owner's other threads (NATS, webhooks) read only
 * what it has made durable and acknowledged.
 */
void evlog_share_upto(struct evlog *log, uint64_t seq);

#endif
