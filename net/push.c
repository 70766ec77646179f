/*
 * push.c - refcounted frames, the ring of recent push frames, and the one
 * function that turns a committed event into its push (see push.h).
 */
#include "push.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/cl.h"

struct frame *frame_new(size_t len)
{
	if (len > SIZE_MAX - sizeof(struct frame) - LWS_PRE - 1)
		return NULL;
	return frame_adopt(malloc(sizeof(struct frame) + LWS_PRE + len + 1), len);
}

struct frame *frame_adopt(void *mem, size_t len)
{
	struct frame *f = mem;

	if (!f)
		return NULL;
	f->refs = 1;
	f->next = NULL;
	f->seq = 0;
	f->cum = 0;
	f->stub = NULL;
	f->owner = 0;
	f->len = len;
	f->data = f->buf + LWS_PRE;
	f->data[len] = '\0';
	return f;
}

/* ---- serialization buffers ------------------------------------------ */

#define PBUF_KEEP (1u << 20)   /* a buffer grown past this is given back */

int pbuf_add(struct pbuf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (n > b->cap - b->len) {
		size_t cap = b->cap ? b->cap : 4096;
		char *np;

		while (cap - b->len < n) {
			if (cap > SIZE_MAX / 2)
				return CL_ENOMEM;
			cap *= 2;
		}
		np = realloc(b->p, cap);
		if (!np)
			return CL_ENOMEM;
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
	return 0;
}

static int pbuf_dump_cb(const char *buf, size_t size, void *data)
{
	return pbuf_add(data, buf, size) ? -1 : 0;
}

int pbuf_dump(struct pbuf *b, const json_t *j, size_t flags)
{
	return json_dump_callback(j, pbuf_dump_cb, b, JSON_COMPACT | flags) ? CL_ENOMEM : 0;
}

void pbuf_trim(struct pbuf *b)
{
	b->len = 0;
	if (b->cap > PBUF_KEEP)
		pbuf_free(b);
}

void pbuf_free(struct pbuf *b)
{
	free(b->p);
	memset(b, 0, sizeof *b);
}

/*
 * One jansson pass into a buffer reused for every frame, then one copy
 * into a frame of the exact size: sizing it first with json_dumpb(NULL, 0)
 * serialized every push twice (a third of the server's CPU per write).
 */
struct frame *frame_from_json(struct pbuf *buf, const json_t *j)
{
	struct frame *f = NULL;

	buf->len = 0;
	if (pbuf_dump(buf, j, JSON_ENCODE_ANY) == 0 && (f = frame_new(buf->len)))
		memcpy(f->data, buf->p, buf->len);
	pbuf_trim(buf);
	return f;
}

void frame_ref(struct frame *f)
{
	f->refs++;
}

void frame_unref(struct frame *f)
{
	if (f && --f->refs == 0) {
		frame_unref(f->stub);
		free(f);
	}
}

int ring_init(struct ring *r, size_t cap, size_t max_bytes, uint64_t next_seq)
{
	size_t c = 16;

	while (c < cap && c < ((size_t)1 << 30))
		c <<= 1;
	memset(r, 0, sizeof *r);
	r->slot = calloc(c, sizeof *r->slot);
	if (!r->slot)
		return CL_ENOMEM;
	r->cap = c;
	r->max_bytes = max_bytes;
	r->first = next_seq;
	r->last = next_seq - 1;
	return 0;
}

void ring_release(struct ring *r)
{
	uint64_t s;

	if (!r->slot)
		return;
	for (s = r->first; s <= r->last && r->last >= r->first; s++)
		frame_unref(r->slot[s & (r->cap - 1)]);
	free(r->slot);
	memset(r, 0, sizeof *r);
}

static void ring_evict_one(struct ring *r)
{
	struct frame **sl = &r->slot[r->first & (r->cap - 1)];

	r->bytes -= (*sl)->len;
	frame_unref(*sl);
	*sl = NULL;
	r->first++;
}

void ring_publish(struct ring *r, struct frame *f)
{
	uint64_t held = r->last + 1 - r->first;

	CL_ASSERT(f->seq == r->last + 1);          /* published in seq order */
	CL_ASSERT(held <= r->cap);
	if (held == r->cap)
		ring_evict_one(r);
	r->last = f->seq;
	r->cum += f->len;
	f->cum = r->cum;
	r->bytes += f->len;
	r->slot[f->seq & (r->cap - 1)] = f;
	while (r->bytes > r->max_bytes && r->first < r->last)
		ring_evict_one(r);
	CL_ASSERT(r->first <= r->last && r->last - r->first < r->cap);
}

void ring_skip(struct ring *r, uint64_t seq)
{
	CL_ASSERT(seq == r->last + 1);
	while (r->first <= r->last)
		ring_evict_one(r);
	r->first = seq + 1;
	r->last = seq;
}

struct frame *ring_get(const struct ring *r, uint64_t seq)
{
	struct frame *f;

	if (seq < r->first || seq > r->last)
		return NULL;
	f = r->slot[seq & (r->cap - 1)];
	CL_ASSERT(f && f->seq == seq);             /* every held seq has its frame */
	return f;
}

uint64_t ring_cum_before(const struct ring *r, uint64_t seq)
{
	const struct frame *f;

	if (seq > r->last)
		return r->cum;
	if (seq < r->first)
		seq = r->first;
	f = r->slot[seq & (r->cap - 1)];
	CL_ASSERT(f && f->seq == seq && f->cum >= f->len);
	return f->cum - f->len;
}

/* Set key to v (a new reference) unless v is NULL. 0 or CL_ENOMEM. */
static int push_set(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return 0;
	return json_object_set_new(o, key, v) ? CL_ENOMEM : 0;
}

json_t *push_build(const struct proj *p, const struct event *ev, int replay)
{
	json_t *o = json_object(), *evj = ev_to_json(ev);
	int rc = 0;

	if (!o || !evj) {
		json_decref(o);
		json_decref(evj);
		return NULL;
	}
	rc |= json_object_set_new(o, "op", json_string("event"));
	rc |= json_object_set_new(o, "seq", json_integer((json_int_t)ev->seq));
	rc |= json_object_set_new(o, "event", evj);
	switch (ev->type) {
	case EV_ENTRY_CREATED:
	case EV_ENTRY_EDITED:
	case EV_ENTRY_STATUS_SET:
		rc |= push_set(o, "entry", proj_entry_json(p, ev->ids.entry));
		break;
	case EV_COMMENT_ADDED:
	case EV_COMMENT_EDITED:
	case EV_COMMENT_DELETED:
		rc |= push_set(o, "entry", proj_entry_json(p, ev->ids.entry));
		rc |= push_set(o, "comment", proj_comment_json(p, ev->ids.comment));
		break;
	case EV_USER_CREATED:
	case EV_USER_ROLE_SET:
	case EV_TOKEN_ISSUED:
	case EV_TOKEN_REVOKED:
		rc |= push_set(o, "user", proj_user_json(p, ev->ids.user));
		break;
	default:
		break;
	}
	if (replay)
		rc |= json_object_set_new(o, "replay", json_true());
	if (rc) {
		json_decref(o);
		return NULL;
	}
	return o;
}

int push_restrict(struct pbuf *buf, struct frame *f, int type, uint64_t user)
{
	json_t *stub;

	/* webhook.*: about no user (owner 0), so for admins only */
	if (type != EV_TOKEN_ISSUED && type != EV_TOKEN_REVOKED && type != EV_READ_MARKED &&
	    type != EV_WEBHOOK_CREATED && type != EV_WEBHOOK_DELETED)
		return 0;
	stub = json_pack("{s:s,s:I,s:b}", "op", "event", "seq", (json_int_t)f->seq,
			 "redacted", 1);
	frame_unref(f->stub);
	f->stub = stub ? frame_from_json(buf, stub) : NULL;
	json_decref(stub);
	if (!f->stub)
		return CL_ENOMEM;
	f->stub->seq = f->seq;
	f->owner = user;
	return 0;
}

uint64_t push_owner(const struct event *ev)
{
	return ev->type == EV_READ_MARKED ? ev->actor : ev->ids.user;
}

struct frame *push_for(struct frame *f, const struct proj *p, uint64_t viewer)
{
	struct proj_user_info u;

	if (!f->stub || (viewer && viewer == f->owner) ||
	    (proj_user_get(p, viewer, &u) == 0 && u.role == ROLE_ADMIN))
		return f;
	return f->stub;
}
