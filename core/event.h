/*
 * event.h - the event envelope, its msgpack codec and its JSON form.
 *
 * Every change to the changelog is one event. The stored form is a msgpack
 * map (the envelope), written once and never rewritten; docs/events.md is the
 * byte-level specification. Each event type has its own shape version "v";
 * a new shape is a new version, and older versions are upcast on decode, so
 * the rest of the program only ever sees the current shape.
 *
 * Decoding is strict and bounded: wrong types, unknown keys in the envelope,
 * unknown versions, oversized strings, invalid UTF-8 and trailing bytes are
 * all refused with CL_EDECODE / CL_EVERSION / CL_ETOOBIG; hostile bytes never
 * crash it. Decoded strings are zero-copy: they point into the input buffer
 * and are valid only as long as it is.
 */
#ifndef CL_EVENT_H
#define CL_EVENT_H

#include <stdint.h>
#include <stddef.h>
#include <jansson.h>
#include "cl.h"

enum ev_type {
	EV_NONE = 0,
	EV_USER_CREATED,     /* ids.user; name, role */
	EV_USER_ROLE_SET,    /* ids.user; role */
	EV_TOKEN_ISSUED,     /* ids.user, ids.token; token_hash, label */
	EV_TOKEN_REVOKED,    /* ids.user, ids.token */
	EV_ENTRY_CREATED,    /* ids.entry; title, body, kind */
	EV_ENTRY_EDITED,     /* ids.entry; any of title, body, kind (has_* flags) */
	EV_ENTRY_STATUS_SET, /* ids.entry; status_from, status_to */
	EV_COMMENT_ADDED,    /* ids.comment, ids.entry, ids.parent (0 = top level); body */
	EV_COMMENT_EDITED,   /* ids.comment, ids.entry; body (the new text) */
	EV_COMMENT_DELETED,  /* ids.comment, ids.entry; no payload (a tombstone stays) */
	EV_READ_MARKED,      /* ids.entry (0 = every entry); upto: the actor has read up to that seq */
	EV_WEBHOOK_CREATED,  /* ids.webhook; url, types, token_hash (the secret's nonce) */
	EV_WEBHOOK_DELETED,  /* ids.webhook */
	EV__COUNT
};

enum cl_role   { ROLE_NONE = 0, ROLE_MEMBER, ROLE_ADMIN };
enum cl_kind   { KIND_NONE = 0, KIND_FIX, KIND_CHANGE, KIND_FEATURE };
enum cl_status { ST_NONE = 0, ST_OPEN, ST_RESOLVED, ST_CANCELLED, ST_REOPENED };

/* Name <-> enum. *_name returns NULL for an out-of-range value;
 * *_parse returns the enum or 0 (the NONE value) for an unknown name. */
const char *ev_type_name(int type);       /* "entry.created" */
int ev_type_parse(const char *s, size_t n);
const char *cl_role_name(int role);       /* "admin" */
int cl_role_parse(const char *s, size_t n);
const char *cl_kind_name(int kind);       /* "fix" */
int cl_kind_parse(const char *s, size_t n);
const char *cl_status_name(int st);       /* "resolved" */
int cl_status_parse(const char *s, size_t n);

/*
 * A webhook's event types, "entry.created,comment.added" (webhook.created's
 * types), as a mask of 1u << type; "" is every type. 0 with *mask set, or
 * CL_EDECODE (an unknown name, an empty item).
 */
int ev_types_mask(const char *s, size_t n, uint32_t *mask);
#define EV_TYPES_ALL (((1u << EV__COUNT) - 1) & ~1u)

/* Current shape version written for each type (older ones are upcast). */
int ev_current_version(int type);

#define EV_HASH_LEN 32

/*
 * The envelope, decoded. Fields a type does not use are zero.
 * seq is not stored inside the value (it is the LMDB key); it is filled in by
 * the store on read and by the caller before JSON conversion.
 */
struct event {
	uint64_t seq;
	uint32_t type;           /* enum ev_type */
	uint32_t version;        /* shape version as stored (before upcast) */
	int64_t ts;              /* µs since Unix epoch */
	uint64_t actor;          /* user id; 0 = the system (bootstrap) */
	struct {
		uint64_t user, token, entry, comment, parent, webhook;
	} ids;
	struct cl_str name;      /* user.created */
	struct cl_str label;     /* token.issued (may be empty) */
	struct cl_str title, body; /* entry.*, comment.added (body) */
	struct cl_str url, types;  /* webhook.created: the endpoint, and the event
	                              types it gets ("a,b"; empty: all) */
	uint8_t role;            /* enum cl_role */
	uint8_t kind;            /* enum cl_kind */
	uint8_t status_from, status_to; /* enum cl_status */
	unsigned has_title : 1, has_body : 1, has_kind : 1; /* entry.edited */
	uint64_t upto;           /* read.marked: a seq, 1 .. 2^63-1 */
	uint8_t token_hash[EV_HASH_LEN];  /* token.issued: SHA-256 of the token;
	                                     webhook.created: 32 random bytes the
	                                     secret is derived from (store/hookkey.h) */
	struct cl_str cmd_id;    /* client command id; n == 0 when none */
	uint8_t prev_hash[EV_HASH_LEN]; /* hash of the previous event (zeros for seq 1) */
};

/*
 * A growable output buffer for encoding. Embedded; ev_buf_init / ev_buf_release.
 * Invariant: data[0..len) is the encoded bytes; cap >= len.
 */
struct ev_buf {
	uint8_t *data;
	size_t len, cap;
};
void ev_buf_init(struct ev_buf *b);
void ev_buf_release(struct ev_buf *b);
void ev_buf_reset(struct ev_buf *b);     /* len = 0, keeps memory */

/*
 * Encode ev (current version of its type) into b, replacing its contents.
 * Validates the fields the type needs (presence, enum ranges, limits in
 * cl.h, UTF-8) and returns CL_EINVAL if the event is not well formed.
 */
int ev_encode(const struct event *ev, struct ev_buf *b);

/*
 * Decode exactly len bytes at p into *ev (zeroed first). Strings in *ev point
 * into p. Upcasts older versions; ev->version keeps the stored version.
 * Errors: CL_EDECODE (malformed, wrong type, trailing bytes, missing field),
 * CL_EVERSION (unknown version), CL_ETOOBIG (len > CL_MAX_EVENT or a field
 * over its limit). Never reads outside p[0..len).
 */
int ev_decode(const uint8_t *p, size_t len, struct event *ev);

/*
 * ev_decode without its one-pass fast path (event.c): the strict decoder
 * alone. Same contract and results; for the tests that check the two agree.
 */
int ev_decode_strict(const uint8_t *p, size_t len, struct event *ev);

/*
 * The event as JSON, the one form used by pushes, audit and export:
 * {"seq":N,"type":"entry.created","v":2,"ts":"ISO-8601","actor":1,
 *  "entry":12,...ids present..., "data":{...payload...}, "cmd":"..."?}
 * Token hashes are never included. Returns a new reference or NULL (ENOMEM).
 */
json_t *ev_to_json(const struct event *ev);

#endif
