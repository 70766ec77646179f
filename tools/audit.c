/*
 * audit.c - changelog-audit's work: verify, log (history) and stats.
 *
 * Why it is shaped so:
 *  - verify reads the raw records (evlog_iter_next) and does the chain
 *    arithmetic itself, from seq 1 and a zero hash, instead of trusting
 *    evlog_iter_next_event: it must say *which* seq is bad and *how* (a gap,
 *    an undecodable value, a broken link, a changed event, a truncated log,
 *    a replaced meta head), and it must compare the end of the chain with
 *    meta "head" and "last". Decoding and hashing are the store's and core's
 *    own functions (ev_decode, evlog_hash), so audit and server cannot
 *    disagree about what a valid log is.
 *  - A broken link at seq M has two usual causes that the next record tells
 *    apart: if M, hashed from its own prev_hash, is what M+1 (or meta head)
 *    expects, then M is intact and seq M-1's bytes changed after it was
 *    chained; otherwise M itself was replaced, moved or edited.
 *  - log and stats read with evlog_iter_next_event (chain checked from seq
 *    1) and keep their own id -> name table: names never change, and a
 *    timeline must not need the whole projection.
 *  - Only the snapshot at the start counts: events a live writer commits
 *    meanwhile are left for the next run.
 */
#include "audit.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

#include "../core/proj.h"
#include "../store/datadir.h"
#include "cli/progress.h"

/* ---- small helpers ----------------------------------------------------- */

static void fault_set(struct audit_fault *f, uint64_t seq, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fault_set(struct audit_fault *f, uint64_t seq, const char *fmt, ...)
{
	va_list ap;

	f->seq = seq;
	va_start(ap, fmt);
	vsnprintf(f->what, sizeof f->what, fmt, ap);
	va_end(ap);
}

void audit_fault_line(const struct audit_fault *f, char *out, size_t n)
{
	if (f->seq)
		snprintf(out, n, "seq %" PRIu64 ": %s", f->seq, f->what);
	else
		snprintf(out, n, "%s", f->what);
}

void audit_open_error(const char *dir, int rc, char *out, size_t n)
{
	datadir_explain(dir, rc, out, n);   /* the server says the same */
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static const char *type_or_unknown(uint32_t type)
{
	const char *s = ev_type_name((int)type);

	return s ? s : "unknown";
}

/* ---- verify ------------------------------------------------------------ */

/*
 * The chain breaks at rec (seq M): its prev_hash is not hash(M-1). Peek at
 * the next record to tell "M-1 changed" from "M is not the event that was
 * chained here" (see the top comment). Consumes the iterator.
 */
static void diagnose_break(struct evlog_iter *it, const struct evlog_rec *rec,
			   const struct event *ev, uint64_t meta_last,
			   const uint8_t meta_head[EV_HASH_LEN], struct audit_fault *fault)
{
	uint8_t self[EV_HASH_LEN];
	uint64_t m = rec->seq;
	struct evlog_rec next;
	struct event nev;
	int consistent = 0, r;

	evlog_hash(ev->prev_hash, m, rec->val, rec->len, self);
	r = evlog_iter_next(it, &next);  /* rec is invalid from here on */
	if (m > 1) {
		if (r == 1 && next.seq == m + 1 && next.seq <= meta_last &&
		    ev_decode(next.val, next.len, &nev) == 0)
			consistent = memcmp(nev.prev_hash, self, EV_HASH_LEN) == 0;
		else if (m == meta_last && (r == 0 || (r == 1 && next.seq > meta_last)))
			consistent = memcmp(meta_head, self, EV_HASH_LEN) == 0;
	}
	if (consistent)
		fault_set(fault, m - 1, "content changed (its hash no longer matches the "
			  "prev_hash recorded in seq %" PRIu64 ")", m);
	else if (m == 1)
		fault_set(fault, m, "hash chain broken (prev_hash of the first event is "
			  "not zero)");
	else
		fault_set(fault, m, "hash chain broken (prev_hash does not match seq %" PRIu64
			  ")", m - 1);
}

int audit_verify(struct evlog *log, int progress_tty, struct audit_summary *sum,
		 struct audit_fault *fault)
{
	uint8_t meta_head[EV_HASH_LEN], chain[EV_HASH_LEN], next_hash[EV_HASH_LEN];
	uint64_t meta_last = 0, expect = 1, beyond = 0, last_now = 0;
	struct evlog_iter *it = NULL;
	struct evlog_rec rec;
	struct event ev;
	struct proj *p = NULL;
	struct progress pg;
	int64_t t0 = cl_now_us();
	char why[200];
	int rc, r;

	memset(sum, 0, sizeof *sum);
	memset(fault, 0, sizeof *fault);
	memset(chain, 0, sizeof chain);
	if ((rc = evlog_last(log, &meta_last, meta_head)) != 0) {
		fault_set(fault, 0, "cannot read the log's meta (%s)", cl_strerror(rc));
		return rc;
	}
	if (!(p = proj_new())) {
		fault_set(fault, 0, "%s", cl_strerror(CL_ENOMEM));
		return CL_ENOMEM;
	}
	if ((rc = evlog_iter_new(log, 1, &it)) != 0) {
		fault_set(fault, 0, "cannot read the log (%s)", cl_strerror(rc));
		proj_free(p);
		return rc;
	}
	progress_init(&pg, stderr, "verify", meta_last, 0);
	if (!progress_tty)
		pg.active = 0;

	while ((r = evlog_iter_next(it, &rec)) == 1) {
		if (rec.seq > meta_last) {
			beyond = rec.seq;  /* a live append, or meta "last" is wrong */
			break;
		}
		if (rec.seq != expect) {
			rc = CL_ECORRUPT;
			fault_set(fault, expect, "missing (the next stored event is seq %" PRIu64
				  ")", rec.seq);
			break;
		}
		if ((r = ev_decode(rec.val, rec.len, &ev)) != 0) {
			rc = r == CL_ENOMEM ? r : CL_ECORRUPT;
			fault_set(fault, rec.seq, "does not decode (%s)", cl_strerror(r));
			break;
		}
		ev.seq = rec.seq;
		if (memcmp(ev.prev_hash, chain, EV_HASH_LEN) != 0) {
			rc = CL_ECORRUPT;
			diagnose_break(it, &rec, &ev, meta_last, meta_head, fault);
			break;
		}
		evlog_hash(chain, rec.seq, rec.val, rec.len, next_hash);
		memcpy(chain, next_hash, EV_HASH_LEN);
		if ((r = proj_apply(p, &ev)) != 0) {
			rc = r == CL_ENOMEM ? r : CL_ECORRUPT;
			fault_set(fault, rec.seq, "projection invariant broken (%s v%u is not "
				  "valid in the state before it: %s)", type_or_unknown(ev.type),
				  ev.version, cl_strerror(r));
			break;
		}
		expect++;
		progress_update(&pg, rec.seq);
	}
	if (rc == 0 && r < 0) {
		rc = r == CL_ENOMEM ? r : CL_ECORRUPT;
		fault_set(fault, expect, "unreadable record (%s)", cl_strerror(r));
	}
	progress_done(&pg);
	evlog_iter_free(it);  /* before evlog_last: one read txn per thread */

	if (rc == 0 && expect - 1 < meta_last) {
		rc = CL_ECORRUPT;
		fault_set(fault, expect, "missing: the log is truncated (meta says the last "
			  "event is seq %" PRIu64 ", the last stored one is seq %" PRIu64 ")",
			  meta_last, expect - 1);
	}
	if (rc == 0 && memcmp(chain, meta_head, EV_HASH_LEN) != 0) {
		rc = CL_ECORRUPT;
		fault_set(fault, meta_last, "the hash chain does not end at meta head (meta "
			  "head replaced, or this last event changed)");
	}
	if (rc == 0 && beyond) {
		/* Beyond meta "last" is fine if a writer committed since we began. */
		if ((r = evlog_last(log, &last_now, NULL)) != 0) {
			rc = r;
			fault_set(fault, 0, "cannot read the log's meta (%s)", cl_strerror(r));
		} else if (last_now == meta_last) {
			rc = CL_ECORRUPT;
			fault_set(fault, beyond, "stored beyond the end of the log (meta says "
				  "the last event is seq %" PRIu64 ")", meta_last);
		}
	}
	if (rc == 0 && proj_check(p, why, sizeof why) != 0) {
		rc = CL_ECORRUPT;
		fault_set(fault, 0, "projection invariants broken after replaying seq 1..%"
			  PRIu64 ": %s", meta_last, why);
	}
	if (rc == 0) {
		sum->events = meta_last;
		memcpy(sum->head, chain, EV_HASH_LEN);
		sum->users = proj_user_count(p);
		sum->tokens = proj_token_count(p);
		sum->entries = proj_entry_count(p);
		sum->comments = proj_comment_count(p);
	}
	sum->secs = (double)(cl_now_us() - t0) / 1e6;
	proj_free(p);
	return rc;
}

void audit_summary_line(const struct audit_summary *sum, const char *epoch, char *out,
			size_t n)
{
	char h[2 * EV_HASH_LEN + 1];

	hex(sum->head, EV_HASH_LEN, h);
	snprintf(out, n, "ok: %" PRIu64 " events, seq 1..%" PRIu64 " gapless, hash chain "
		 "intact to head %s, %" PRIu64 " users, %" PRIu64 " tokens, %" PRIu64
		 " entries, %" PRIu64 " comments, invariants hold; epoch %s (%.2f s)",
		 sum->events, sum->events, h, sum->users, sum->tokens, sum->entries,
		 sum->comments, epoch ? epoch : "?", sum->secs);
}

/* ---- names: user id -> name, from user.created ------------------------- */

/* Ids are gapless from 1, so a plain array; capped against corrupt ids. */
#define NAMES_MAX_ID ((uint64_t)1 << 26)

struct names {
	char **v;
	uint64_t cap;
};

static void names_release(struct names *nm)
{
	for (uint64_t i = 0; i < nm->cap; i++)
		free(nm->v[i]);
	free(nm->v);
	nm->v = NULL;
	nm->cap = 0;
}

static int names_set(struct names *nm, uint64_t id, struct cl_str name)
{
	char *s;

	if (id == 0 || id >= NAMES_MAX_ID)
		return 0;  /* ignored; shown as "user#id" */
	if (id >= nm->cap) {
		uint64_t cap = nm->cap ? nm->cap : 64;
		char **nv;

		while (cap <= id)
			cap *= 2;
		nv = realloc(nm->v, cap * sizeof *nv);
		if (!nv)
			return CL_ENOMEM;
		memset(nv + nm->cap, 0, (cap - nm->cap) * sizeof *nv);
		nm->v = nv;
		nm->cap = cap;
	}
	if (!(s = malloc(name.n + 1)))
		return CL_ENOMEM;
	memcpy(s, name.p, name.n);
	s[name.n] = '\0';
	free(nm->v[id]);
	nm->v[id] = s;
	return 0;
}

/* The name of user id, "(system)" for 0, "user#N" if never created. */
static const char *names_get(const struct names *nm, uint64_t id, char *tmp, size_t n)
{
	if (id == 0)
		return "(system)";
	if (id < nm->cap && nm->v[id])
		return nm->v[id];
	snprintf(tmp, n, "user#%" PRIu64, id);
	return tmp;
}

/* ---- text summaries ---------------------------------------------------- */

#define QUOTE_MAX 80

/* Output room for QUOTE_MAX bytes of text: each escaped character, at
 * least 2 bytes of input, becomes the 8 bytes of "<U+XXXX>". */
#define QUOTE_ROOM (QUOTE_MAX * 4 + 8)

/*
 * s made printable on one line: C0 controls become spaces; C1 controls,
 * bidi marks and overrides and line separators (cl_display_hazard) are
 * shown as "<U+202E>", so they can neither drive the terminal nor reorder
 * the line; text longer than QUOTE_MAX bytes is cut at a character
 * boundary with "...". out holds at least QUOTE_ROOM bytes.
 */
static void printable(struct cl_str s, char *out, size_t n)
{
	size_t len = s.n, o = 0, i = 0;
	int cut = 0;

	if (len > QUOTE_MAX) {
		len = QUOTE_MAX;
		while (len > 0 && ((unsigned char)s.p[len] & 0xc0) == 0x80)
			len--;  /* do not split a UTF-8 sequence */
		cut = 1;
	}
	while (i < len && o + 9 < n) {
		uint32_t cp;
		size_t k;

		if (!cl_display_hazard(s.p + i, len - i, &cp, &k)) {
			out[o++] = s.p[i++];
		} else if (cp < 0x20 || cp == 0x7f) {
			out[o++] = ' ';
			i++;
		} else {
			o += (size_t)snprintf(out + o, n - o, "<U+%04X>", (unsigned)cp);
			i += k;
		}
	}
	if (cut && o + 4 < n) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o < n ? o : n - 1] = '\0';
}

/*
 * Write JSON text j, with each raw cl_display_hazard character above
 * U+007F written as its \uXXXX escape (jansson already escapes C0 and
 * DEL). Such characters can only stand inside JSON strings, where the
 * escape means the same character: a JSON reader gets exactly the same
 * data, and a terminal showing the line is not driven by it.
 */
static void put_json_safe(FILE *out, const char *j, size_t n)
{
	size_t i = 0, from = 0;

	while (i < n) {
		uint32_t cp;
		size_t k;

		if ((unsigned char)j[i] >= 0x80 && cl_display_hazard(j + i, n - i, &cp, &k)) {
			fwrite(j + from, 1, i - from, out);
			fprintf(out, "\\u%04x", (unsigned)cp);
			i += k;
			from = i;
		} else {
			i++;
		}
	}
	fwrite(j + from, 1, n - from, out);
}

void audit_event_summary(const struct event *ev, const char *subject_name, char *out,
			 size_t n)
{
	char q[QUOTE_ROOM], parts[QUOTE_ROOM + 64];
	const char *subj = subject_name ? subject_name : "?";
	size_t o = 0;

	switch (ev->type) {
	case EV_USER_CREATED:
		printable(ev->name, q, sizeof q);
		snprintf(out, n, "created user %s (%s)", q, cl_role_name(ev->role));
		break;
	case EV_USER_ROLE_SET:
		snprintf(out, n, "set role of %s to %s", subj, cl_role_name(ev->role));
		break;
	case EV_TOKEN_ISSUED:
		printable(ev->label, q, sizeof q);
		snprintf(out, n, "issued token %" PRIu64 " to %s%s%s%s", ev->ids.token, subj,
			 q[0] ? " \"" : "", q, q[0] ? "\"" : "");
		break;
	case EV_TOKEN_REVOKED:
		snprintf(out, n, "revoked token %" PRIu64 " of %s", ev->ids.token, subj);
		break;
	case EV_ENTRY_CREATED:
		printable(ev->title, q, sizeof q);
		snprintf(out, n, "created %s #%" PRIu64 " \"%s\"", cl_kind_name(ev->kind),
			 ev->ids.entry, q);
		break;
	case EV_ENTRY_EDITED:
		parts[0] = '\0';
		if (ev->has_title) {
			printable(ev->title, q, sizeof q);
			o += (size_t)snprintf(parts + o, sizeof parts - o, "title \"%s\"", q);
		}
		if (ev->has_body && o < sizeof parts)
			o += (size_t)snprintf(parts + o, sizeof parts - o, "%sbody",
					      o ? ", " : "");
		if (ev->has_kind && o < sizeof parts)
			snprintf(parts + o, sizeof parts - o, "%skind %s", o ? ", " : "",
				 cl_kind_name(ev->kind));
		snprintf(out, n, "edited #%" PRIu64 " (%s)", ev->ids.entry, parts);
		break;
	case EV_ENTRY_STATUS_SET:
		snprintf(out, n, "set #%" PRIu64 " %s (was %s)", ev->ids.entry,
			 cl_status_name(ev->status_to), cl_status_name(ev->status_from));
		break;
	case EV_COMMENT_ADDED:
		if (ev->ids.parent)
			snprintf(out, n, "commented on #%" PRIu64 " (reply to comment %" PRIu64
				 ")", ev->ids.entry, ev->ids.parent);
		else
			snprintf(out, n, "commented on #%" PRIu64, ev->ids.entry);
		break;
	case EV_COMMENT_EDITED:
		snprintf(out, n, "edited comment %" PRIu64 " on #%" PRIu64, ev->ids.comment,
			 ev->ids.entry);
		break;
	case EV_COMMENT_DELETED:
		snprintf(out, n, "deleted comment %" PRIu64 " on #%" PRIu64, ev->ids.comment,
			 ev->ids.entry);
		break;
	case EV_READ_MARKED:
		if (ev->ids.entry)
			snprintf(out, n, "read #%" PRIu64 " up to seq %" PRIu64, ev->ids.entry,
				 ev->upto);
		else
			snprintf(out, n, "marked everything read up to seq %" PRIu64, ev->upto);
		break;
	case EV_WEBHOOK_CREATED:
		printable(ev->url, q, sizeof q);
		snprintf(out, n, "created webhook %" PRIu64 " to %s (events: %.*s)", ev->ids.webhook,
			 q, ev->types.n ? (int)ev->types.n : 3, ev->types.n ? ev->types.p : "all");
		break;
	case EV_WEBHOOK_DELETED:
		snprintf(out, n, "deleted webhook %" PRIu64, ev->ids.webhook);
		break;
	default:
		snprintf(out, n, "%s", type_or_unknown(ev->type));
		break;
	}
}

/* ---- log --------------------------------------------------------------- */

int audit_parse_types(const char *s, uint32_t *types)
{
	const char *p = s;

	if (!s || !*s)
		return CL_EUSAGE;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		uint32_t bits = 0;
		int t = ev_type_parse(p, len);

		if (t != EV_NONE) {
			bits = 1u << t;
		} else {
			for (int i = 1; i < EV__COUNT; i++) {
				const char *name = ev_type_name(i);

				if (len > 0 && strncmp(name, p, len) == 0 && name[len] == '.')
					bits |= 1u << i;
			}
		}
		if (!bits)
			return CL_EUSAGE;
		*types |= bits;
		if (!end)
			break;
		p = end + 1;
		if (!*p)
			return CL_EUSAGE;  /* trailing comma */
	}
	return 0;
}

/* RFC 4180: quote a field that holds a comma, quote, CR or LF; double quotes. */
static void csv_field(FILE *out, const char *s)
{
	if (!strpbrk(s, ",\"\r\n")) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (; *s; s++) {
		if (*s == '"')
			fputc('"', out);
		fputc(*s, out);
	}
	fputc('"', out);
}

static int write_event(FILE *out, int format, const struct event *ev, const char *actor,
		       const char *subject)
{
	char iso[CL_ISO_LEN + 1], summary[QUOTE_ROOM + 256], num[24], *text = NULL;
	json_t *o;
	int rc = 0;

	cl_iso_time(ev->ts, iso);
	switch (format) {
	case AUDIT_JSONL:
		if (!(o = ev_to_json(ev)))
			return CL_ENOMEM;
		if (json_object_set_new(o, "actor_name", ev->actor ? json_string(actor)
								  : json_null()) != 0 ||
		    !(text = json_dumps(o, JSON_COMPACT)))
			rc = CL_ENOMEM;
		else
			put_json_safe(out, text, strlen(text));
		fputc('\n', out);
		free(text);
		json_decref(o);
		break;
	case AUDIT_CSV:
		audit_event_summary(ev, subject, summary, sizeof summary);
		fprintf(out, "%" PRIu64 ",%s,%s,", ev->seq, iso, type_or_unknown(ev->type));
		csv_field(out, actor);
		fputc(',', out);
		if (ev->ids.entry)
			fprintf(out, "%" PRIu64, ev->ids.entry);
		fputc(',', out);
		if (ev->ids.comment) {
			snprintf(num, sizeof num, "%" PRIu64, ev->ids.comment);
			fputs(num, out);
		}
		fputc(',', out);
		csv_field(out, summary);
		fputs("\r\n", out);
		break;
	default:
		audit_event_summary(ev, subject, summary, sizeof summary);
		/* "2026-11-27 10:02" out of "2026-11-27T10:02:03.123456Z" */
		iso[10] = ' ';
		iso[16] = '\0';
		fprintf(out, "%6" PRIu64 "  %s  %s %s\n", ev->seq, iso, actor, summary);
		break;
	}
	return ferror(out) ? CL_EIO : rc;
}

static int filter_match(const struct audit_filter *f, const struct event *ev, uint64_t uid)
{
	if (f->from_seq && ev->seq < f->from_seq)
		return 0;
	if (f->types && !(f->types & (1u << ev->type)))
		return 0;
	if (f->entry && ev->ids.entry != f->entry)
		return 0;
	if (f->has_since && ev->ts < f->since)
		return 0;
	if (f->has_until && ev->ts >= f->until)
		return 0;
	if (f->user && (uid == 0 || (ev->actor != uid && ev->ids.user != uid)))
		return 0;
	return 1;
}

int audit_log(struct evlog *log, const struct audit_filter *f, int format, FILE *out,
	      uint64_t *matched, struct audit_fault *fault)
{
	struct names nm = { 0 };
	struct evlog_iter *it = NULL;
	struct event ev;
	uint64_t uid = 0, seen = 0;
	char t1[32], t2[32];
	int rc, r;

	*matched = 0;
	memset(fault, 0, sizeof *fault);
	if ((rc = evlog_iter_new(log, 1, &it)) != 0) {
		fault_set(fault, 0, "cannot read the log (%s)", cl_strerror(rc));
		return rc;
	}
	if (format == AUDIT_CSV)
		fputs("seq,time,type,actor,entry,comment,summary\r\n", out);
	while ((r = evlog_iter_next_event(it, &ev)) == 1) {
		seen = ev.seq;
		if (f->to_seq && ev.seq > f->to_seq)
			break;
		if (ev.type == EV_USER_CREATED) {
			if ((rc = names_set(&nm, ev.ids.user, ev.name)) != 0)
				break;
			if (f->user && strlen(f->user) == ev.name.n &&
			    memcmp(f->user, ev.name.p, ev.name.n) == 0)
				uid = ev.ids.user;
		}
		if (!filter_match(f, &ev, uid))
			continue;
		rc = write_event(out, format, &ev, names_get(&nm, ev.actor, t1, sizeof t1),
				 names_get(&nm, ev.ids.user, t2, sizeof t2));
		if (rc != 0)
			break;
		++*matched;
	}
	if (rc == 0 && r < 0) {
		rc = r;
		fault_set(fault, seen + 1, "cannot read this event (%s); run changelog-audit "
			  "verify", cl_strerror(r));
	} else if (rc != 0 && !fault->what[0]) {
		fault_set(fault, 0, "cannot write the history (%s)", cl_strerror(rc));
	}
	evlog_iter_free(it);
	if (rc == 0 && f->user && uid == 0 && !(f->to_seq && seen > f->to_seq)) {
		rc = CL_ENOTFOUND;
		fault_set(fault, 0, "no user named '%s' in this log", f->user);
	}
	names_release(&nm);
	return rc;
}

/* ---- stats ------------------------------------------------------------- */

struct month {
	int ym;         /* year * 100 + month */
	uint64_t n;
};

struct months {
	struct month *v;
	size_t n, cap;
};

static int months_add(struct months *m, int64_t ts)
{
	time_t t = (time_t)(ts / 1000000 - (ts % 1000000 < 0));
	struct tm tm;
	int ym;

	if (!gmtime_r(&t, &tm))
		return 0;
	ym = (tm.tm_year + 1900) * 100 + tm.tm_mon + 1;
	for (size_t i = m->n; i > 0; i--) {  /* mostly the last one */
		if (m->v[i - 1].ym == ym) {
			m->v[i - 1].n++;
			return 0;
		}
	}
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 32;
		struct month *nv = realloc(m->v, cap * sizeof *nv);

		if (!nv)
			return CL_ENOMEM;
		m->v = nv;
		m->cap = cap;
	}
	m->v[m->n++] = (struct month){ ym, 1 };
	return 0;
}

static int month_cmp(const void *a, const void *b)
{
	const struct month *x = a, *y = b;

	return (x->ym > y->ym) - (x->ym < y->ym);
}

struct counts {
	uint64_t events, by_type[EV__COUNT];
	uint64_t users, by_role[3];
	uint64_t tokens, tokens_active;
	uint64_t entries, by_status[5];
	uint64_t comments;
	struct evlog_stat st;
	struct months months;
};

static void human_bytes(uint64_t b, char *out, size_t n)
{
	static const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)b;
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	snprintf(out, n, u ? "%.1f %s" : "%.0f %s", v, units[u]);
}

static int stats_json(const struct counts *c, const char *epoch, FILE *out)
{
	json_t *root = json_object(), *types = json_object(), *months = json_object();
	json_t *entries = json_object();
	int rc = 0;

	if (!root || !types || !months || !entries) {
		rc = CL_ENOMEM;
		goto out;
	}
	for (int t = 1; t < EV__COUNT; t++)
		json_object_set_new(types, ev_type_name(t), json_integer((json_int_t)c->by_type[t]));
	for (size_t i = 0; i < c->months.n; i++) {
		char key[16];

		snprintf(key, sizeof key, "%04d-%02d", c->months.v[i].ym / 100,
			 c->months.v[i].ym % 100);
		json_object_set_new(months, key, json_integer((json_int_t)c->months.v[i].n));
	}
	json_object_set_new(entries, "total", json_integer((json_int_t)c->entries));
	for (int s = 1; s <= 4; s++)
		json_object_set_new(entries, cl_status_name(s),
				    json_integer((json_int_t)c->by_status[s]));
	json_object_set_new(root, "epoch", json_string(epoch));
	json_object_set_new(root, "events", json_integer((json_int_t)c->events));
	json_object_set_new(root, "by_type", types);
	json_object_set_new(root, "by_month", months);
	json_object_set_new(root, "users", json_pack("{s:I, s:I, s:I}",
		"total", (json_int_t)c->users, "admin", (json_int_t)c->by_role[ROLE_ADMIN],
		"member", (json_int_t)c->by_role[ROLE_MEMBER]));
	json_object_set_new(root, "tokens", json_pack("{s:I, s:I, s:I}",
		"issued", (json_int_t)c->tokens, "active", (json_int_t)c->tokens_active,
		"revoked", (json_int_t)(c->tokens - c->tokens_active)));
	json_object_set_new(root, "entries", entries);
	json_object_set_new(root, "comments", json_integer((json_int_t)c->comments));
	json_object_set_new(root, "store", json_pack("{s:I, s:I, s:I, s:I}",
		"map_bytes", (json_int_t)c->st.mapsize, "used_bytes", (json_int_t)c->st.used_bytes,
		"events", (json_int_t)c->st.events, "cmds", (json_int_t)c->st.cmds));
	types = months = entries = NULL;  /* owned by root now */
	if (json_dumpf(root, out, JSON_INDENT(2)) != 0)
		rc = CL_EIO;
	fputc('\n', out);
out:
	json_decref(types);
	json_decref(months);
	json_decref(entries);
	json_decref(root);
	return rc;
}

static void stats_text(const struct counts *c, const char *epoch, FILE *out)
{
	char used[32], map[32];

	human_bytes(c->st.used_bytes, used, sizeof used);
	human_bytes(c->st.mapsize, map, sizeof map);
	fprintf(out, "epoch     %s\n", epoch);
	fprintf(out, "events    %" PRIu64 "\n", c->events);
	fprintf(out, "store     %s used of a %s map (%.1f%%), %" PRIu64 " command records\n",
		used, map, c->st.mapsize ? 100.0 * (double)c->st.used_bytes / (double)c->st.mapsize
					 : 0.0, c->st.cmds);
	fprintf(out, "users     %" PRIu64 " (%" PRIu64 " admin, %" PRIu64 " member)\n",
		c->users, c->by_role[ROLE_ADMIN], c->by_role[ROLE_MEMBER]);
	fprintf(out, "tokens    %" PRIu64 " issued, %" PRIu64 " active, %" PRIu64 " revoked\n",
		c->tokens, c->tokens_active, c->tokens - c->tokens_active);
	fprintf(out, "entries   %" PRIu64 " (", c->entries);
	for (int s = 1; s <= 4; s++)
		fprintf(out, "%s%s %" PRIu64, s > 1 ? ", " : "", cl_status_name(s),
			c->by_status[s]);
	fprintf(out, ")\ncomments  %" PRIu64 "\n", c->comments);
	fprintf(out, "by type\n");
	for (int t = 1; t < EV__COUNT; t++)
		fprintf(out, "  %-18s %10" PRIu64 "\n", ev_type_name(t), c->by_type[t]);
	fprintf(out, "by month (UTC)\n");
	for (size_t i = 0; i < c->months.n; i++)
		fprintf(out, "  %04d-%02d            %10" PRIu64 "\n", c->months.v[i].ym / 100,
			c->months.v[i].ym % 100, c->months.v[i].n);
}

int audit_stats(struct evlog *log, int format, FILE *out, struct audit_fault *fault)
{
	struct counts c;
	struct evlog_iter *it = NULL;
	struct event ev;
	struct proj *p = NULL;
	uint64_t seen = 0;
	int rc = 0, r;

	memset(&c, 0, sizeof c);
	memset(fault, 0, sizeof *fault);
	if ((rc = evlog_stat(log, &c.st)) != 0) {
		fault_set(fault, 0, "cannot read the log's statistics (%s)", cl_strerror(rc));
		return rc;
	}
	if (!(p = proj_new()))
		return CL_ENOMEM;
	if ((rc = evlog_iter_new(log, 1, &it)) != 0) {
		fault_set(fault, 0, "cannot read the log (%s)", cl_strerror(rc));
		proj_free(p);
		return rc;
	}
	while ((r = evlog_iter_next_event(it, &ev)) == 1) {
		seen = ev.seq;
		if ((r = proj_apply(p, &ev)) != 0) {
			rc = r;
			fault_set(fault, ev.seq, "projection refuses this %s (%s); run "
				  "changelog-audit verify", type_or_unknown(ev.type), cl_strerror(r));
			break;
		}
		c.events++;
		c.by_type[ev.type < EV__COUNT ? ev.type : 0]++;
		if ((rc = months_add(&c.months, ev.ts)) != 0)
			break;
	}
	if (rc == 0 && r < 0) {
		rc = r;
		fault_set(fault, seen + 1, "cannot read this event (%s); run changelog-audit "
			  "verify", cl_strerror(r));
	}
	evlog_iter_free(it);
	if (rc == 0) {
		c.users = proj_user_count(p);
		for (uint64_t id = 1; id <= c.users; id++) {
			struct proj_user_info u;

			if (proj_user_get(p, id, &u) == 0 && u.role > 0 && u.role <= ROLE_ADMIN)
				c.by_role[u.role]++;
		}
		c.tokens = proj_token_count(p);
		for (uint64_t id = 1; id <= c.tokens; id++) {
			uint64_t user;
			int revoked;

			if (proj_token_get(p, id, &user, &revoked) == 0 && !revoked)
				c.tokens_active++;
		}
		c.entries = proj_entry_count(p);
		for (uint64_t id = 1; id <= c.entries; id++) {
			struct proj_entry_info e;

			if (proj_entry_get(p, id, &e) == 0 && e.status > 0 && e.status <= 4)
				c.by_status[e.status]++;
		}
		c.comments = proj_comment_count(p);
		qsort(c.months.v, c.months.n, sizeof *c.months.v, month_cmp);
		if (format == AUDIT_JSON) {
			rc = stats_json(&c, evlog_epoch(log), out);
		} else {
			stats_text(&c, evlog_epoch(log), out);
			rc = ferror(out) ? CL_EIO : 0;
		}
		if (rc != 0)
			fault_set(fault, 0, "cannot write the statistics (%s)", cl_strerror(rc));
	}
	free(c.months.v);
	proj_free(p);
	return rc;
}
