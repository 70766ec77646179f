/*
 * event.c - the event envelope: names of the enums, the msgpack codec
 * (ev_encode / ev_decode) and the JSON form (ev_to_json). docs/events.md is
 * the byte-level specification; this file implements it.
 *
 * Why it is shaped so:
 *  - One table of shapes (type, version -> which ids and payload keys it has)
 *    drives the encoder, the decoder and the JSON form, so the three can never
 *    disagree about what an event type carries.
 *  - One semantic check (ev_check) is used by both sides: the encoder refuses
 *    to write what the decoder would refuse to read. The decoder first turns
 *    msgpack into a struct event (types, keys, duplicates, presence), upcasts
 *    old versions, then runs the same check on the result.
 *  - Stored bytes come from disk or a backup and must be treated as hostile,
 *    and the decoder is on the hot path of every log scan and cold start.
 *    msgpack-c writes (ev_encode); ev_decode reads the bytes itself in one
 *    bounded pass (bounded depth, every count and length within the bytes
 *    that remain, exactly one object, no trailing bytes), allocating
 *    nothing. msgpack_unpack, which it replaced, allocated a zone and
 *    count * sizeof(object) per container header, and needed a structural
 *    pre-walk to stay bounded: about 3x the cost per event.
 *  - Decoded strings are zero-copy: str/bin values point into the input, and
 *    struct event keeps them.
 */
#include "event.h"

#include <stdlib.h>
#include <string.h>
#include <msgpack.h>

/* ---- names ------------------------------------------------------------ */

/* A name with its length, so matching never calls strlen. */
struct key {
	const char *s;
	size_t n;
};
#define K(lit) { lit, sizeof(lit) - 1 }

/* Type names with their lengths: every event's "t" is parsed on decode. */
static const struct key type_keys[EV__COUNT] = {
	[EV_USER_CREATED] = K("user.created"),
	[EV_USER_ROLE_SET] = K("user.role_set"),
	[EV_TOKEN_ISSUED] = K("token.issued"),
	[EV_TOKEN_REVOKED] = K("token.revoked"),
	[EV_ENTRY_CREATED] = K("entry.created"),
	[EV_ENTRY_EDITED] = K("entry.edited"),
	[EV_ENTRY_STATUS_SET] = K("entry.status_set"),
	[EV_COMMENT_ADDED] = K("comment.added"),
	[EV_COMMENT_EDITED] = K("comment.edited"),
	[EV_COMMENT_DELETED] = K("comment.deleted"),
	[EV_READ_MARKED] = K("read.marked"),
	[EV_WEBHOOK_CREATED] = K("webhook.created"),
	[EV_WEBHOOK_DELETED] = K("webhook.deleted"),
};
static const char *const role_names[] = { NULL, "member", "admin" };
static const char *const kind_names[] = { NULL, "fix", "change", "feature" };
static const char *const status_names[] = { NULL, "open", "resolved", "cancelled",
					    "reopened" };

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

static const char *name_of(const char *const *names, size_t count, int v)
{
	if (v <= 0 || (size_t)v >= count)
		return NULL;
	return names[v];
}

static int parse_of(const char *const *names, size_t count, const char *s, size_t n)
{
	if (!s)
		return 0;
	for (size_t i = 1; i < count; i++) {
		const char *name = names[i];
		size_t j = 0;

		/* compare without strlen: stops at the first difference or at
		 * the name's NUL, so it never reads past either string */
		if (!name)
			continue;
		while (j < n && name[j] != '\0' && name[j] == s[j])
			j++;
		if (j == n && name[j] == '\0')
			return (int)i;
	}
	return 0;
}

const char *ev_type_name(int type)
{
	if (type <= EV_NONE || type >= EV__COUNT)
		return NULL;
	return type_keys[type].s;
}

int ev_type_parse(const char *s, size_t n)
{
	if (!s)
		return 0;
	for (int i = EV_NONE + 1; i < EV__COUNT; i++)
		if (type_keys[i].n == n && memcmp(type_keys[i].s, s, n) == 0)
			return i;
	return 0;
}

int ev_types_mask(const char *s, size_t n, uint32_t *mask)
{
	size_t i = 0;

	*mask = 0;
	if (n == 0) {
		*mask = EV_TYPES_ALL;
		return 0;
	}
	while (i <= n) {
		const char *comma = memchr(s + i, ',', n - i);
		size_t len = comma ? (size_t)(comma - (s + i)) : n - i;
		int t = ev_type_parse(s + i, len);

		if (t == EV_NONE)
			return CL_EDECODE;
		*mask |= 1u << t;
		i += len + 1;
	}
	return 0;
}

const char *cl_role_name(int role)
{
	return name_of(role_names, COUNT_OF(role_names), role);
}

int cl_role_parse(const char *s, size_t n)
{
	return parse_of(role_names, COUNT_OF(role_names), s, n);
}

const char *cl_kind_name(int kind)
{
	return name_of(kind_names, COUNT_OF(kind_names), kind);
}

int cl_kind_parse(const char *s, size_t n)
{
	return parse_of(kind_names, COUNT_OF(kind_names), s, n);
}

const char *cl_status_name(int st)
{
	return name_of(status_names, COUNT_OF(status_names), st);
}

int cl_status_parse(const char *s, size_t n)
{
	return parse_of(status_names, COUNT_OF(status_names), s, n);
}

/* ---- shapes ----------------------------------------------------------- */

/* Entity ids, in canonical order (the order they are written in "ids"). */

enum { ID_USER, ID_TOKEN, ID_ENTRY, ID_COMMENT, ID_PARENT, ID_WEBHOOK, ID__COUNT };
static const struct key id_keys[ID__COUNT] = { K("user"), K("token"), K("entry"),
					       K("comment"), K("parent"), K("webhook") };

/* Payload keys, in canonical order (the order they are written in "p"). */
enum { PK_NAME, PK_ROLE, PK_HASH, PK_LABEL, PK_TITLE, PK_BODY, PK_KIND, PK_FROM,
       PK_TO, PK_UPTO, PK_URL, PK_TYPES, PK__COUNT };
static const struct key p_keys[PK__COUNT] = { K("name"), K("role"), K("hash"),
					      K("label"), K("title"), K("body"),
					      K("kind"), K("from"), K("to"), K("upto"),
					      K("url"), K("types") };

#define B(x) (1u << (x))

/* Envelope keys, in canonical order. */
enum { EK_V, EK_T, EK_TS, EK_A, EK_IDS, EK_P, EK_C, EK_PH, EK__COUNT };
static const struct key env_keys[EK__COUNT] = { K("v"), K("t"), K("ts"), K("a"),
						K("ids"), K("p"), K("c"), K("ph") };
#define EK_REQUIRED (B(EK_V) | B(EK_T) | B(EK_TS) | B(EK_A) | B(EK_IDS) | B(EK_P) | B(EK_PH))

/* What one (type, version) carries. req: must be present; opt: may be. */
struct shape {
	uint8_t type, version;
	uint8_t ids_req, ids_opt;
	uint16_t p_req, p_opt;
};

static const struct shape shapes[] = {
	{ EV_USER_CREATED, 1, B(ID_USER), 0, B(PK_NAME) | B(PK_ROLE), 0 },
	{ EV_USER_ROLE_SET, 1, B(ID_USER), 0, B(PK_ROLE), 0 },
	{ EV_TOKEN_ISSUED, 1, B(ID_USER) | B(ID_TOKEN), 0, B(PK_HASH) | B(PK_LABEL), 0 },
	{ EV_TOKEN_REVOKED, 1, B(ID_USER) | B(ID_TOKEN), 0, 0, 0 },
	/* v1: before "kind" existed; upcast to v2 with kind = change */
	{ EV_ENTRY_CREATED, 1, B(ID_ENTRY), 0, B(PK_TITLE) | B(PK_BODY), 0 },
	{ EV_ENTRY_CREATED, 2, B(ID_ENTRY), 0, B(PK_TITLE) | B(PK_BODY) | B(PK_KIND), 0 },
	{ EV_ENTRY_EDITED, 1, B(ID_ENTRY), 0, 0, B(PK_TITLE) | B(PK_BODY) | B(PK_KIND) },
	{ EV_ENTRY_STATUS_SET, 1, B(ID_ENTRY), 0, B(PK_FROM) | B(PK_TO), 0 },
	{ EV_COMMENT_ADDED, 1, B(ID_COMMENT) | B(ID_ENTRY), B(ID_PARENT), B(PK_BODY), 0 },
	{ EV_COMMENT_EDITED, 1, B(ID_COMMENT) | B(ID_ENTRY), 0, B(PK_BODY), 0 },
	{ EV_COMMENT_DELETED, 1, B(ID_COMMENT) | B(ID_ENTRY), 0, 0, 0 },
	{ EV_READ_MARKED, 1, 0, B(ID_ENTRY), B(PK_UPTO), 0 },
	{ EV_WEBHOOK_CREATED, 1, B(ID_WEBHOOK), 0, B(PK_URL) | B(PK_TYPES) | B(PK_HASH), 0 },
	{ EV_WEBHOOK_DELETED, 1, B(ID_WEBHOOK), 0, 0, 0 },
};

static const struct shape *shape_find(int type, uint64_t version)
{
	for (size_t i = 0; i < COUNT_OF(shapes); i++)
		if (shapes[i].type == type && shapes[i].version == version)
			return &shapes[i];
	return NULL;
}

int ev_current_version(int type)
{
	int v = 0;

	for (size_t i = 0; i < COUNT_OF(shapes); i++)
		if (shapes[i].type == type && shapes[i].version > v)
			v = shapes[i].version;
	return v;
}

static const struct shape *shape_current(int type)
{
	const struct shape *best = NULL;

	/* one pass: the shape of the type with the highest version */
	for (size_t i = 0; i < COUNT_OF(shapes); i++)
		if (shapes[i].type == type && (!best || shapes[i].version > best->version))
			best = &shapes[i];
	return best;
}

static uint64_t *id_slot(struct event *ev, int id)
{
	switch (id) {
	case ID_USER:    return &ev->ids.user;
	case ID_TOKEN:   return &ev->ids.token;
	case ID_ENTRY:   return &ev->ids.entry;
	case ID_COMMENT: return &ev->ids.comment;
	case ID_WEBHOOK: return &ev->ids.webhook;
	default:         return &ev->ids.parent;
	}
}

static uint64_t id_get(const struct event *ev, int id)
{
	switch (id) {
	case ID_USER:    return ev->ids.user;
	case ID_TOKEN:   return ev->ids.token;
	case ID_ENTRY:   return ev->ids.entry;
	case ID_COMMENT: return ev->ids.comment;
	case ID_WEBHOOK: return ev->ids.webhook;
	default:         return ev->ids.parent;
	}
}

/* The payload keys this event carries (current shape; has_* for edits). */
static unsigned payload_keys(const struct event *ev, const struct shape *sh)
{
	unsigned keys = sh->p_req;

	if (ev->type == EV_ENTRY_EDITED) {
		if (ev->has_title)
			keys |= B(PK_TITLE);
		if (ev->has_body)
			keys |= B(PK_BODY);
		if (ev->has_kind)
			keys |= B(PK_KIND);
	}
	return keys;
}

/* String value of a payload key (enums as their names); not for PK_HASH. */
/* Name of an enum payload key's value; NULL if out of range or not an enum. */
static const char *payload_enum(const struct event *ev, int k)
{
	switch (k) {
	case PK_ROLE:  return cl_role_name(ev->role);
	case PK_KIND:  return cl_kind_name(ev->kind);
	case PK_FROM:  return cl_status_name(ev->status_from);
	case PK_TO:    return cl_status_name(ev->status_to);
	default:       return NULL;
	}
}

static struct cl_str payload_str(const struct event *ev, int k)
{
	const char *s;

	switch (k) {
	case PK_NAME:  return ev->name;
	case PK_LABEL: return ev->label;
	case PK_TITLE: return ev->title;
	case PK_BODY:  return ev->body;
	case PK_URL:   return ev->url;
	case PK_TYPES: return ev->types;
	default:       s = payload_enum(ev, k); break;
	}
	return (struct cl_str){ s, s ? strlen(s) : 0 };
}

/* ---- the semantic check (shared by encoder and decoder) --------------- */

/* ids and the actor must fit a signed 64-bit integer (JSON, SQL). */
#define ID_MAX ((uint64_t)INT64_MAX)

/*
 * 1 if p[0..n) is ASCII without NUL, 32 bytes a step: most text is, and then
 * cl_utf8_valid (8 bytes a step, then byte by byte) need not run. Each
 * 8-byte word w passes when no high bit is set and no byte is zero.
 */
static int ascii_plain(const char *p, size_t n)
{
	const uint64_t hi = 0x8080808080808080ULL, lo = 0x0101010101010101ULL;
	uint64_t w[4], bad = 0;
	size_t i = 0;

	for (; i + 32 <= n && !bad; i += 32) {
		memcpy(w, p + i, 32);
		bad = (w[0] | w[1] | w[2] | w[3] | ((w[0] - lo) & ~w[0]) | ((w[1] - lo) & ~w[1]) |
		       ((w[2] - lo) & ~w[2]) | ((w[3] - lo) & ~w[3])) & hi;
	}
	for (; i + 8 <= n && !bad; i += 8) {
		memcpy(w, p + i, 8);
		bad = (w[0] | ((w[0] - lo) & ~w[0])) & hi;
	}
	for (; i < n && !bad; i++)
		bad = (unsigned char)p[i] == 0 || (unsigned char)p[i] >= 0x80;
	return !bad;
}

static int check_text(struct cl_str s, size_t min, size_t max)
{
	if (s.n > max)
		return CL_ETOOBIG;
	if (s.n < min || (s.n > 0 && !s.p) ||
	    (!ascii_plain(s.p, s.n) && !cl_utf8_valid(s.p, s.n)))
		return CL_EDECODE;
	return 0;
}

static int check_name(struct cl_str s)
{
	int rc = check_text(s, 1, CL_MAX_NAME);

	if (rc == 0 && !cl_name_chars_ok(s.p, s.n))
		rc = CL_EDECODE;
	return rc;
}

/*
 * Is ev a well-formed event of the current shape of its type?
 * 0, CL_ETOOBIG (a field over its limit) or CL_EDECODE (anything else).
 */
static int ev_check(const struct event *ev)
{
	const struct shape *sh;
	unsigned keys;
	int rc = 0;

	if (ev->type <= EV_NONE || ev->type >= EV__COUNT)
		return CL_EDECODE;
	sh = shape_current((int)ev->type);
	if (!sh || ev->actor > ID_MAX)
		return CL_EDECODE;
	for (int id = 0; id < ID__COUNT; id++) {
		uint64_t v = id_get(ev, id);

		if (v > ID_MAX)
			return CL_EDECODE;
		if (v == 0 && (sh->ids_req & B(id)))
			return CL_EDECODE;
		if (v != 0 && !((sh->ids_req | sh->ids_opt) & B(id)))
			return CL_EDECODE;
	}
	if (ev->cmd_id.n > 0 && (rc = check_text(ev->cmd_id, 1, CL_MAX_CMD_ID)) != 0)
		return rc;

	keys = payload_keys(ev, sh);
	if (ev->type == EV_ENTRY_EDITED && keys == 0)
		return CL_EDECODE;
	for (int k = 0; rc == 0 && k < PK__COUNT; k++) {
		if (!(keys & B(k)))
			continue;
		switch (k) {
		case PK_NAME:
			rc = check_name(ev->name);
			break;
		case PK_LABEL:
			rc = check_text(ev->label, 0, CL_MAX_LABEL);
			break;
		case PK_TITLE:
			rc = check_text(ev->title, 1, CL_MAX_TITLE);
			break;
		case PK_BODY:
			if (ev->type == EV_COMMENT_ADDED || ev->type == EV_COMMENT_EDITED)
				rc = check_text(ev->body, 1, CL_MAX_COMMENT);
			else
				rc = check_text(ev->body, 0, CL_MAX_BODY);
			break;
		case PK_URL:
			rc = check_text(ev->url, 1, CL_MAX_URL);
			if (rc == 0 && cl_url_check(ev->url.p, ev->url.n))
				rc = CL_EDECODE;
			break;
		case PK_TYPES: {
			uint32_t mask;

			rc = check_text(ev->types, 0, CL_MAX_TYPES);
			if (rc == 0 && ev_types_mask(ev->types.p, ev->types.n, &mask))
				rc = CL_EDECODE;
			break;
		}
		case PK_HASH:
			break; /* any 32 bytes */
		case PK_UPTO:
			if (ev->upto == 0 || ev->upto > ID_MAX)
				rc = CL_EDECODE;
			break;
		default:   /* the enums: a name must exist */
			if (!payload_enum(ev, k))
				rc = CL_EDECODE;
			break;
		}
	}
	return rc;
}

/* ---- ev_buf ----------------------------------------------------------- */

void ev_buf_init(struct ev_buf *b)
{
	b->data = NULL;
	b->len = 0;
	b->cap = 0;
}

void ev_buf_release(struct ev_buf *b)
{
	free(b->data);
	ev_buf_init(b);
}

void ev_buf_reset(struct ev_buf *b)
{
	b->len = 0;
}

/* msgpack_packer write callback: append to an ev_buf, growing it. */
static int buf_write(void *data, const char *p, size_t n)
{
	struct ev_buf *b = data;

	if (n > CL_MAX_EVENT || b->len > CL_MAX_EVENT)
		return -1; /* nothing we write is ever this big; stop early */
	if (b->cap - b->len < n) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *nd;

		while (cap - b->len < n)
			cap *= 2;
		nd = realloc(b->data, cap);
		if (!nd)
			return -1;
		b->data = nd;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

/* ---- encoder ---------------------------------------------------------- */

static int pack_key(msgpack_packer *pk, struct key k)
{
	return msgpack_pack_str(pk, k.n) | msgpack_pack_str_body(pk, k.s, k.n);
}

static int pack_str(msgpack_packer *pk, struct cl_str s)
{
	return msgpack_pack_str(pk, s.n) | (s.n ? msgpack_pack_str_body(pk, s.p, s.n) : 0);
}

int ev_encode(const struct event *ev, struct ev_buf *b)
{
	const struct shape *sh;
	const char *tname;
	msgpack_packer pk;
	unsigned keys, nids = 0, nkeys = 0;
	int err = 0;

	if (!ev || !b)
		return CL_EINVAL;
	ev_buf_reset(b);
	if (ev_check(ev) != 0)
		return CL_EINVAL;
	sh = shape_current((int)ev->type);
	tname = ev_type_name((int)ev->type);
	keys = payload_keys(ev, sh);
	for (int id = 0; id < ID__COUNT; id++)
		nids += id_get(ev, id) != 0;
	for (int k = 0; k < PK__COUNT; k++)
		nkeys += (keys & B(k)) != 0;

	msgpack_packer_init(&pk, b, buf_write);
	err |= msgpack_pack_map(&pk, ev->cmd_id.n > 0 ? 8 : 7);
	err |= pack_key(&pk, env_keys[EK_V]) | msgpack_pack_uint64(&pk, sh->version);
	err |= pack_key(&pk, env_keys[EK_T]) |
	       pack_str(&pk, (struct cl_str){ tname, strlen(tname) });
	err |= pack_key(&pk, env_keys[EK_TS]) | msgpack_pack_int64(&pk, ev->ts);
	err |= pack_key(&pk, env_keys[EK_A]) | msgpack_pack_uint64(&pk, ev->actor);
	err |= pack_key(&pk, env_keys[EK_IDS]) | msgpack_pack_map(&pk, nids);
	for (int id = 0; id < ID__COUNT; id++)
		if (id_get(ev, id) != 0)
			err |= pack_key(&pk, id_keys[id]) | msgpack_pack_uint64(&pk, id_get(ev, id));
	err |= pack_key(&pk, env_keys[EK_P]) | msgpack_pack_map(&pk, nkeys);
	for (int k = 0; k < PK__COUNT; k++) {
		if (!(keys & B(k)))
			continue;
		err |= pack_key(&pk, p_keys[k]);
		if (k == PK_HASH)
			err |= msgpack_pack_bin(&pk, EV_HASH_LEN) |
			       msgpack_pack_bin_body(&pk, ev->token_hash, EV_HASH_LEN);
		else if (k == PK_UPTO)
			err |= msgpack_pack_uint64(&pk, ev->upto);
		else
			err |= pack_str(&pk, payload_str(ev, k));
	}
	if (ev->cmd_id.n > 0)
		err |= pack_key(&pk, env_keys[EK_C]) | pack_str(&pk, ev->cmd_id);
	err |= pack_key(&pk, env_keys[EK_PH]) | msgpack_pack_bin(&pk, EV_HASH_LEN) |
	       msgpack_pack_bin_body(&pk, ev->prev_hash, EV_HASH_LEN);
	if (err) {
		ev_buf_reset(b);
		return CL_ENOMEM;
	}
	return 0;
}

/* ---- decoder: one bounded pass over the bytes ------------------------- */

/*
 * The decoder reads the msgpack bytes in place, in one pass, checking every
 * header, length and count against the bytes that remain. It does not use
 * msgpack_unpack: that allocated a zone and a tree of objects per event
 * (count * sizeof(object) for a container header before seeing its elements,
 * which is why the old decoder walked the bytes once more before it), and the
 * two passes plus the malloc were most of the cost of a log scan
 * (docs/benchmarks.md, "decode path"). Values are sorted the way msgpack-c
 * sorts them (a signed int >= 0 is a positive integer, a negative one a
 * negative integer), so the inputs accepted are the ones accepted before.
 * Nothing is allocated; recursion is bounded by MP_DEPTH.
 */
#define MP_DEPTH 4      /* a container must sit at level < MP_DEPTH (root: 0) */

static uint64_t be_read(const uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = (v << 8) | p[i];
	return v;
}

enum mp_kind { MP_OTHER, MP_UINT, MP_NINT, MP_STR, MP_BIN, MP_MAP };

struct mp {
	enum mp_kind kind;
	int container;          /* map or array (MP_OTHER for an array) */
	uint64_t u;             /* MP_UINT */
	int64_t i;              /* MP_NINT */
	const uint8_t *p;       /* STR, BIN: the body; MAP: its first key */
	uint64_t n;             /* STR, BIN: body length; MAP: pairs */
	uint64_t children;      /* objects inside a container (2 * pairs for a map) */
};

/*
 * One header at q, end one past the last byte: fills *o and returns the byte
 * after the header, and after the body for str, bin and scalars (a
 * container's elements follow it). NULL when the header or the body would
 * pass end, and for ext types and the never-used byte 0xc1 (the envelope has
 * neither).
 */
static inline const uint8_t *mp_head(const uint8_t *q, const uint8_t *end, struct mp *o)
{
	size_t lb = 0, fixed = 0; /* bytes of a length/count, of a scalar value */
	uint64_t v;
	uint8_t c;

	if (q >= end)
		return NULL;
	c = *q++;
	o->kind = MP_OTHER;
	o->container = 0;
	o->children = 0;
	if (c <= 0x7f) {
		o->kind = MP_UINT;
		o->u = c;
		return q;
	}
	if (c >= 0xe0) {
		o->kind = MP_NINT;
		o->i = (int8_t)c;
		return q;
	}
	if (c <= 0x9f) {        /* fixmap, fixarray */
		o->container = 1;
		o->children = c & 0x0f;
		if (c <= 0x8f) {
			o->kind = MP_MAP;
			o->n = o->children;
			o->children *= 2;
			o->p = q;
		}
		return q;
	}
	if (c <= 0xbf) {        /* fixstr */
		o->kind = MP_STR;
		o->n = c & 0x1f;
		o->p = q;
		return (size_t)(end - q) < o->n ? NULL : q + o->n;
	}
	switch (c) {
	case 0xc0: case 0xc2: case 0xc3: return q;        /* nil, false, true */
	case 0xc4: case 0xd9: lb = 1; break;              /* bin8, str8 */
	case 0xc5: case 0xda: lb = 2; break;              /* bin16, str16 */
	case 0xc6: case 0xdb: lb = 4; break;              /* bin32, str32 */
	case 0xcc: case 0xd0: fixed = 1; break;           /* (u)int8 */
	case 0xcd: case 0xd1: fixed = 2; break;
	case 0xce: case 0xd2: case 0xca: fixed = 4; break; /* float32 */
	case 0xcf: case 0xd3: case 0xcb: fixed = 8; break; /* float64 */
	case 0xdc: case 0xde: lb = 2; break;              /* array16, map16 */
	case 0xdd: case 0xdf: lb = 4; break;              /* array32, map32 */
	default:   return NULL;                           /* ext, 0xc1 */
	}
	if ((size_t)(end - q) < lb + fixed)
		return NULL;
	if (fixed) {
		v = be_read(q, fixed);
		q += fixed;
		switch (c) {
		case 0xd0: o->i = (int8_t)v; break;
		case 0xd1: o->i = (int16_t)v; break;
		case 0xd2: o->i = (int32_t)v; break;
		case 0xd3: o->i = (int64_t)v; break;
		case 0xca: case 0xcb: return q;            /* floats */
		default:   o->kind = MP_UINT; o->u = v; return q;
		}
		if (o->i >= 0) {
			o->kind = MP_UINT;
			o->u = (uint64_t)o->i;
		} else {
			o->kind = MP_NINT;
		}
		return q;
	}
	v = be_read(q, lb);
	q += lb;
	if (c >= 0xdc) {        /* array16/32, map16/32 */
		o->container = 1;
		o->children = v;
		if (c >= 0xde) {
			o->kind = MP_MAP;
			o->n = v;
			o->children = 2 * v;
			o->p = q;
		}
		return q;
	}
	o->kind = c <= 0xc6 ? MP_BIN : MP_STR;
	o->n = v;
	o->p = q;
	return (size_t)(end - q) < o->n ? NULL : q + o->n;
}

/*
 * A whole object at q sitting at nesting level `level`: its header in *o;
 * returns the byte after all of it, or NULL if it is malformed, does not end
 * by end, or has a container at level >= MP_DEPTH.
 */
static const uint8_t *mp_read(const uint8_t *q, const uint8_t *end, int level,
			      struct mp *o)
{
	struct mp child;

	q = mp_head(q, end, o);
	if (!q || !o->container)
		return q;
	/* each element takes at least one byte */
	if (level + 1 > MP_DEPTH || o->children > (uint64_t)(end - q))
		return NULL;
	for (uint64_t c = o->children; c > 0 && q; c--)
		q = mp_read(q, end, level + 1, &child);
	return q;
}

/*
 * Index of a str object in keys[0..n), or -1 (also for a non-str key).
 * Keys are written in table order, so the search starts at *hint (the slot
 * after the last match) and wraps: a canonical envelope matches each key on
 * the first compare.
 */
static int key_index(const struct mp *k, const struct key *keys, int n, int *hint)
{
	if (k->kind != MP_STR)
		return -1;
	for (int c = 0, i = *hint; c < n; c++, i = i + 1 < n ? i + 1 : 0) {
		size_t j = 0;

		/* keys are 1-7 bytes: a byte loop beats a memcmp call */
		if (keys[i].n != k->n)
			continue;
		while (j < keys[i].n && (uint8_t)keys[i].s[j] == k->p[j])
			j++;
		if (j == keys[i].n) {
			*hint = i + 1 < n ? i + 1 : 0;
			return i;
		}
	}
	return -1;
}

static struct cl_str mp_str(const struct mp *o)
{
	return (struct cl_str){ (const char *)o->p, (size_t)o->n };
}

static int decode_ids(const struct mp *o, const uint8_t *end, const struct shape *sh,
		      struct event *ev)
{
	const uint8_t *q = o->p;
	unsigned seen = 0;
	int hint = 0;

	if (o->kind != MP_MAP)
		return CL_EDECODE;
	for (uint64_t i = 0; i < o->n; i++) {
		struct mp key, val;
		int id;

		/* already walked once inside the root: cannot fail, checked anyway */
		if (!(q = mp_read(q, end, 2, &key)) || !(q = mp_read(q, end, 2, &val)))
			return CL_EDECODE;
		id = key_index(&key, id_keys, ID__COUNT, &hint);
		if (id < 0 || (seen & B(id)) || !((sh->ids_req | sh->ids_opt) & B(id)))
			return CL_EDECODE;
		seen |= B(id);
		if (val.kind != MP_UINT || val.u == 0)
			return CL_EDECODE;
		*id_slot(ev, id) = val.u;
	}
	return (seen & sh->ids_req) == sh->ids_req ? 0 : CL_EDECODE;
}

static int decode_enum(const struct mp *o, int (*parse)(const char *, size_t),
		       uint8_t *out)
{
	int v;

	if (o->kind != MP_STR)
		return CL_EDECODE;
	v = parse((const char *)o->p, (size_t)o->n);
	if (v == 0)
		return CL_EDECODE;
	*out = (uint8_t)v;
	return 0;
}

static int decode_payload(const struct mp *o, const uint8_t *end,
			  const struct shape *sh, struct event *ev)
{
	const uint8_t *q = o->p;
	unsigned seen = 0;
	int hint = 0;
	int rc = 0;

	if (o->kind != MP_MAP)
		return CL_EDECODE;
	for (uint64_t i = 0; rc == 0 && i < o->n; i++) {
		struct mp key, v;
		const struct mp *val = &v;
		int k;

		if (!(q = mp_read(q, end, 2, &key)) || !(q = mp_read(q, end, 2, &v)))
			return CL_EDECODE;
		k = key_index(&key, p_keys, PK__COUNT, &hint);
		if (k < 0 || (seen & B(k)) || !((sh->p_req | sh->p_opt) & B(k)))
			return CL_EDECODE;
		seen |= B(k);
		switch (k) {
		case PK_ROLE:
			rc = decode_enum(val, cl_role_parse, &ev->role);
			break;
		case PK_KIND:
			rc = decode_enum(val, cl_kind_parse, &ev->kind);
			ev->has_kind = 1;
			break;
		case PK_FROM:
			rc = decode_enum(val, cl_status_parse, &ev->status_from);
			break;
		case PK_TO:
			rc = decode_enum(val, cl_status_parse, &ev->status_to);
			break;
		case PK_HASH:
			if (val->kind != MP_BIN || val->n != EV_HASH_LEN)
				return CL_EDECODE;
			memcpy(ev->token_hash, val->p, EV_HASH_LEN);
			break;
		case PK_UPTO:
			if (val->kind != MP_UINT)
				return CL_EDECODE;
			ev->upto = val->u;
			break;
		default: /* the free-text strings; limits are checked by ev_check */
			if (val->kind != MP_STR)
				return CL_EDECODE;
			if (k == PK_NAME) {
				ev->name = mp_str(val);
			} else if (k == PK_LABEL) {
				ev->label = mp_str(val);
			} else if (k == PK_TITLE) {
				ev->title = mp_str(val);
				ev->has_title = 1;
			} else if (k == PK_URL) {
				ev->url = mp_str(val);
			} else if (k == PK_TYPES) {
				ev->types = mp_str(val);
			} else {
				ev->body = mp_str(val);
				ev->has_body = 1;
			}
			break;
		}
	}
	if (rc == 0 && (seen & sh->p_req) != sh->p_req)
		rc = CL_EDECODE;
	if (ev->type != EV_ENTRY_EDITED)
		ev->has_title = ev->has_body = ev->has_kind = 0;
	return rc;
}

/* Turn an older shape into the current one. ev->version keeps the stored one. */
static void upcast(struct event *ev)
{
	if (ev->type == EV_ENTRY_CREATED && ev->version == 1)
		ev->kind = KIND_CHANGE; /* v1 had no kind; everything was a change */
}

/*
 * The envelope at p[0..len). The root map is walked whole (every nested
 * value bounds-checked, no trailing bytes) before anything can fail with a
 * code other than CL_EDECODE, so a malformed input is always CL_EDECODE and
 * CL_EVERSION / CL_ETOOBIG only ever describe well-formed msgpack.
 */
static int decode_envelope(const uint8_t *p, size_t len, struct event *ev)
{
	struct mp root, val[EK__COUNT];
	const struct shape *sh;
	const uint8_t *q, *end;
	unsigned seen = 0;
	int hint = 0;
	int type, rc;

	if (!p)
		return CL_EDECODE;  /* ev_decode(NULL, 0): nothing is not an event */
	end = p + len;
	if (!(q = mp_head(p, end, &root)) || root.kind != MP_MAP ||
	    root.children > (uint64_t)(end - q))
		return CL_EDECODE;
	for (uint64_t i = 0; i < root.n; i++) {
		struct mp key, v;
		int k;

		if (!(q = mp_read(q, end, 1, &key)) || !(q = mp_read(q, end, 1, &v)))
			return CL_EDECODE;
		k = key_index(&key, env_keys, EK__COUNT, &hint);
		if (k < 0 || (seen & B(k)))
			return CL_EDECODE;
		seen |= B(k);
		val[k] = v;
	}
	if (q != end || (seen & EK_REQUIRED) != EK_REQUIRED)
		return CL_EDECODE;   /* trailing bytes, or a required key missing */

	if (val[EK_T].kind != MP_STR)
		return CL_EDECODE;
	type = ev_type_parse((const char *)val[EK_T].p, (size_t)val[EK_T].n);
	if (type == EV_NONE)
		return CL_EDECODE;
	ev->type = (uint32_t)type;
	if (val[EK_V].kind != MP_UINT)
		return CL_EDECODE;
	sh = shape_find(type, val[EK_V].u);
	if (!sh)
		return CL_EVERSION;
	ev->version = sh->version;

	if (val[EK_TS].kind == MP_NINT)
		ev->ts = val[EK_TS].i;
	else if (val[EK_TS].kind == MP_UINT && val[EK_TS].u <= (uint64_t)INT64_MAX)
		ev->ts = (int64_t)val[EK_TS].u;
	else
		return CL_EDECODE;
	if (val[EK_A].kind != MP_UINT)
		return CL_EDECODE;
	ev->actor = val[EK_A].u;
	if (val[EK_PH].kind != MP_BIN || val[EK_PH].n != EV_HASH_LEN)
		return CL_EDECODE;
	memcpy(ev->prev_hash, val[EK_PH].p, EV_HASH_LEN);
	if (seen & B(EK_C)) {
		/* present only when there is one: an empty "c" is not canonical */
		if (val[EK_C].kind != MP_STR || val[EK_C].n == 0)
			return CL_EDECODE;
		ev->cmd_id = mp_str(&val[EK_C]);
	}
	if ((rc = decode_ids(&val[EK_IDS], end, sh, ev)) != 0 ||
	    (rc = decode_payload(&val[EK_P], end, sh, ev)) != 0)
		return rc;
	upcast(ev);
	return ev_check(ev);
}

/* ---- decoder fast path: one pass for the usual envelope --------------- */

/*
 * What ev_encode writes - a map of scalars with the ids and payload maps
 * inside, "v" and "t" before "ids" and "p" - is decoded here in a single
 * pass: each value is read once, straight into *ev, with no pre-walk and no
 * struct mp copies (the two-pass decoder above costs ~3x as much, and a cold
 * start decodes every event of the log). It accepts only inputs the strict
 * decoder accepts, and gives the same struct event for them: anything it
 * does not expect - another value encoding, a nested container, ids before
 * the type, any error - makes it give up (return 0), and the strict decoder
 * decides, error codes included.
 */
struct rd {
	const uint8_t *q, *end;
};

/* A non-negative integer in any unsigned encoding. */
static inline int rd_uint(struct rd *r, uint64_t *v)
{
	static const uint8_t width[4] = { 1, 2, 4, 8 };
	size_t w;
	uint8_t c;

	if (r->q >= r->end)
		return 0;
	c = *r->q;
	if (c <= 0x7f) {
		*v = c;
		r->q++;
		return 1;
	}
	if (c < 0xcc || c > 0xcf)
		return 0;
	w = width[c - 0xcc];
	if ((size_t)(r->end - r->q) < 1 + w)
		return 0;
	*v = be_read(r->q + 1, w);
	r->q += 1 + w;
	return 1;
}

/* A str (any width); its body bounded by the input. */
static inline int rd_str(struct rd *r, struct cl_str *s)
{
	size_t lb, n;
	uint8_t c;

	if (r->q >= r->end)
		return 0;
	c = *r->q;
	if (c >= 0xa0 && c <= 0xbf) {
		n = c & 0x1f;
		lb = 0;
	} else if (c >= 0xd9 && c <= 0xdb) {
		lb = (size_t)1 << (c - 0xd9);
		if ((size_t)(r->end - r->q) < 1 + lb)
			return 0;
		n = (size_t)be_read(r->q + 1, lb);
	} else {
		return 0;
	}
	if ((size_t)(r->end - r->q) - 1 - lb < n)
		return 0;
	s->p = (const char *)r->q + 1 + lb;
	s->n = n;
	r->q += 1 + lb + n;
	return 1;
}

/* A bin8 of exactly EV_HASH_LEN bytes. */
static inline int rd_hash(struct rd *r, uint8_t out[EV_HASH_LEN])
{
	if ((size_t)(r->end - r->q) < 2 + EV_HASH_LEN || r->q[0] != 0xc4 ||
	    r->q[1] != EV_HASH_LEN)
		return 0;
	memcpy(out, r->q + 2, EV_HASH_LEN);
	r->q += 2 + EV_HASH_LEN;
	return 1;
}

/* A map header; *n pairs, each at least two bytes within the input. */
static inline int rd_map(struct rd *r, uint64_t *n)
{
	uint8_t c;

	if (r->q >= r->end)
		return 0;
	c = *r->q;
	if (c >= 0x80 && c <= 0x8f) {
		*n = c & 0x0f;
		r->q++;
	} else if ((c == 0xde || c == 0xdf) && r->end - r->q >= (c == 0xde ? 3 : 5)) {
		*n = be_read(r->q + 1, c == 0xde ? 2 : 4);
		r->q += c == 0xde ? 3 : 5;
	} else {
		return 0;
	}
	return *n <= (uint64_t)(r->end - r->q) / 2;
}

/* A map key out of keys[0..n) (see key_index), or -1. */
static inline int rd_key(struct rd *r, const struct key *keys, int n, int *hint)
{
	struct mp k;
	struct cl_str s;

	if (!rd_str(r, &s))
		return -1;
	k.kind = MP_STR;
	k.p = (const uint8_t *)s.p;
	k.n = s.n;
	return key_index(&k, keys, n, hint);
}

static int fast_ids(struct rd *r, const struct shape *sh, struct event *ev)
{
	unsigned seen = 0;
	uint64_t n, v;
	int hint = 0;

	if (!rd_map(r, &n))
		return 0;
	for (uint64_t i = 0; i < n; i++) {
		int id = rd_key(r, id_keys, ID__COUNT, &hint);

		if (id < 0 || (seen & B(id)) || !((sh->ids_req | sh->ids_opt) & B(id)) ||
		    !rd_uint(r, &v) || v == 0)
			return 0;
		seen |= B(id);
		*id_slot(ev, id) = v;
	}
	return (seen & sh->ids_req) == sh->ids_req;
}

static int fast_enum(struct rd *r, int (*parse)(const char *, size_t), uint8_t *out)
{
	struct cl_str s;
	int v;

	if (!rd_str(r, &s) || (v = parse(s.p, s.n)) == 0)
		return 0;
	*out = (uint8_t)v;
	return 1;
}

static int fast_payload(struct rd *r, const struct shape *sh, struct event *ev)
{
	unsigned seen = 0;
	uint64_t n;
	int hint = 0, ok;

	if (!rd_map(r, &n))
		return 0;
	for (uint64_t i = 0; i < n; i++) {
		int k = rd_key(r, p_keys, PK__COUNT, &hint);

		if (k < 0 || (seen & B(k)) || !((sh->p_req | sh->p_opt) & B(k)))
			return 0;
		seen |= B(k);
		switch (k) {
		case PK_NAME:  ok = rd_str(r, &ev->name); break;
		case PK_LABEL: ok = rd_str(r, &ev->label); break;
		case PK_TITLE: ok = rd_str(r, &ev->title); ev->has_title = 1; break;
		case PK_BODY:  ok = rd_str(r, &ev->body); ev->has_body = 1; break;
		case PK_URL:   ok = rd_str(r, &ev->url); break;
		case PK_TYPES: ok = rd_str(r, &ev->types); break;
		case PK_HASH:  ok = rd_hash(r, ev->token_hash); break;
		case PK_ROLE:  ok = fast_enum(r, cl_role_parse, &ev->role); break;
		case PK_KIND:  ok = fast_enum(r, cl_kind_parse, &ev->kind); ev->has_kind = 1; break;
		case PK_FROM:  ok = fast_enum(r, cl_status_parse, &ev->status_from); break;
		case PK_UPTO:  ok = rd_uint(r, &ev->upto); break;
		default:       ok = fast_enum(r, cl_status_parse, &ev->status_to); break;
		}
		if (!ok)
			return 0;
	}
	if ((seen & sh->p_req) != sh->p_req)
		return 0;
	if (ev->type != EV_ENTRY_EDITED)
		ev->has_title = ev->has_body = ev->has_kind = 0;
	return 1;
}

/* 1 if p[0..len) decoded into *ev (checked as ev_decode does), 0 to leave
 * it to the strict decoder (*ev then holds garbage). */
static int decode_fast(const uint8_t *p, size_t len, struct event *ev)
{
	struct rd r = { p, p + len };
	const struct shape *sh = NULL;
	struct cl_str s;
	unsigned seen = 0;
	uint64_t n, v = 0, version = 0;
	int hint = 0, ok;

	if (!rd_map(&r, &n))
		return 0;
	for (uint64_t i = 0; i < n; i++) {
		int k = rd_key(&r, env_keys, EK__COUNT, &hint);

		if (k < 0 || (seen & B(k)))
			return 0;
		seen |= B(k);
		switch (k) {
		case EK_V:
			ok = rd_uint(&r, &version);
			break;
		case EK_T:
			ok = rd_str(&r, &s) && (ev->type = (uint32_t)ev_type_parse(s.p, s.n)) != EV_NONE;
			break;
		case EK_TS:
			ok = rd_uint(&r, &v) && v <= (uint64_t)INT64_MAX;
			ev->ts = (int64_t)v;
			break;
		case EK_A:
			ok = rd_uint(&r, &ev->actor);
			break;
		case EK_IDS:
		case EK_P:
			/* the shape must be known first: "v" and "t" come before */
			if (!sh) {
				if ((seen & (B(EK_V) | B(EK_T))) != (B(EK_V) | B(EK_T)) ||
				    !(sh = shape_find((int)ev->type, version)))
					return 0;
			}
			ok = k == EK_IDS ? fast_ids(&r, sh, ev) : fast_payload(&r, sh, ev);
			break;
		case EK_C:
			ok = rd_str(&r, &ev->cmd_id) && ev->cmd_id.n > 0;
			break;
		default:
			ok = rd_hash(&r, ev->prev_hash);
			break;
		}
		if (!ok)
			return 0;
	}
	if (r.q != r.end || (seen & EK_REQUIRED) != EK_REQUIRED || !sh)
		return 0;
	ev->version = sh->version;
	upcast(ev);
	return ev_check(ev) == 0;
}

static int decode(const uint8_t *p, size_t len, struct event *ev, int fast)
{
	static const struct event none;
	int rc;

	if (!ev || (!p && len > 0))
		return CL_EINVAL;
	/* a copy of a zero struct: vector stores, where memset of this size
	 * became rep stos, a tenth of the fast path's time */
	memcpy(ev, &none, sizeof *ev);
	if (len > CL_MAX_EVENT)
		return CL_ETOOBIG;
	if (fast && p && decode_fast(p, len, ev))
		return 0;
	memset(ev, 0, sizeof *ev);
	rc = decode_envelope(p, len, ev);
	if (rc != 0)
		memset(ev, 0, sizeof *ev); /* no half-decoded event escapes */
	return rc;
}

int ev_decode(const uint8_t *p, size_t len, struct event *ev)
{
	return decode(p, len, ev, 1);
}

int ev_decode_strict(const uint8_t *p, size_t len, struct event *ev)
{
	return decode(p, len, ev, 0);
}

/* ---- JSON ------------------------------------------------------------- */

/* json_object_set_new that remembers a failure (it steals v even then). */
static void jset(json_t *o, const char *key, json_t *v, int *err)
{
	if (!v || json_object_set_new(o, key, v) != 0)
		*err = 1;
}

json_t *ev_to_json(const struct event *ev)
{
	const struct shape *sh;
	char iso[CL_ISO_LEN + 1];
	json_t *root, *data;
	unsigned keys;
	int err = 0;

	if (!ev || !ev_type_name((int)ev->type))
		return NULL;
	sh = shape_current((int)ev->type);
	cl_iso_time(ev->ts, iso);
	root = json_pack("{s:I, s:s, s:i, s:s, s:I, s:I}",
			 "seq", (json_int_t)ev->seq,
			 "type", ev_type_name((int)ev->type),
			 "v", ev->version ? (int)ev->version : (int)sh->version,
			 "ts", iso,
			 "ts_us", (json_int_t)ev->ts,
			 "actor", (json_int_t)ev->actor);
	data = json_object();
	if (!root || !data) {
		json_decref(root);
		json_decref(data);
		return NULL;
	}
	for (int id = 0; id < ID__COUNT; id++)
		if (id_get(ev, id) != 0)
			jset(root, id_keys[id].s, json_integer((json_int_t)id_get(ev, id)), &err);
	keys = payload_keys(ev, sh);
	for (int k = 0; k < PK__COUNT; k++) {
		struct cl_str s;

		/* token hashes (and webhook nonces) never leave the log */
		if (!(keys & B(k)) || k == PK_HASH)
			continue;
		if (k == PK_UPTO) {
			jset(data, p_keys[k].s, json_integer((json_int_t)ev->upto), &err);
			continue;
		}
		s = payload_str(ev, k);
		jset(data, p_keys[k].s, s.p ? json_stringn(s.p, s.n) : json_null(), &err);
	}
	jset(root, "data", data, &err);
	if (ev->cmd_id.n > 0)
		jset(root, "cmd", json_stringn(ev->cmd_id.p, ev->cmd_id.n), &err);
	if (err) {
		json_decref(root);
		return NULL;
	}
	return root;
}
