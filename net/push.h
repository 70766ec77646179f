/*
 * push.h - outbound frames and the ring of recent pushes.
 *
 * A frame is one serialized websocket text message with LWS_PRE bytes of
 * headroom in front (lws_write writes its header there), refcounted so one
 * buffer can be queued to many places. Each committed event becomes exactly
 * one push frame, serialized once (plus, for the events not everyone may
 * see, one small stub: push_restrict), and is published into the ring,
 * indexed by seq. Subscribers do not hold copies: each one is just a cursor
 * (next_seq) into the ring; the ring is its queue.
 *
 * The ring keeps the most recent events up to a count and a byte budget.
 * A subscriber whose cursor fell behind the ring's first seq is fed from the
 * log instead (session.c), so the ring's size bounds memory, not history.
 *
 * Every frame also records the running byte total of the stream up to and
 * including it ("cum"), so the bytes a subscriber still has to take is one
 * subtraction: ring->cum - cum before its cursor.
 */
#ifndef CL_NET_PUSH_H
#define CL_NET_PUSH_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "../core/event.h"
#include "../core/proj.h"

struct frame {
	int refs;
	struct frame *next;      /* link in one session's unicast queue */
	uint64_t seq;            /* push frames: the event's seq; else 0 */
	uint64_t cum;            /* push frames in the ring: stream bytes through this one */
	struct frame *stub;      /* push frames only some may see: what the others get
	                            (push_restrict); owned by this frame. Else NULL */
	uint64_t owner;          /* ... and the user who may see it besides admins */
	size_t len;              /* payload bytes at data */
	unsigned char *data;     /* = buf + LWS_PRE */
	unsigned char buf[];     /* LWS_PRE headroom, payload, NUL */
};

/* A frame with room for len payload bytes (uninitialised), refs = 1. */
struct frame *frame_new(size_t len);
/*
 * The bytes before a frame's payload (its header and LWS_PRE). frame_adopt
 * makes a frame of a malloc'd buffer that holds FRAME_HEAD bytes, then the
 * len payload bytes, then one more (set to NUL): no copy of the payload.
 */
#define FRAME_HEAD (offsetof(struct frame, buf) + LWS_PRE)
struct frame *frame_adopt(void *mem, size_t len);
/* A growable byte buffer that serialized JSON is appended to, reused. */
struct pbuf {
	char *p;
	size_t len, cap;
};

/*
 * j serialized compactly (jansson, one pass) into a new frame; NULL on
 * ENOMEM. buf is the caller's scratch buffer, reused from call to call
 * (its content is not kept).
 */
struct frame *frame_from_json(struct pbuf *buf, const json_t *j);

int pbuf_add(struct pbuf *b, const void *p, size_t n);          /* 0 or CL_ENOMEM */
int pbuf_dump(struct pbuf *b, const json_t *j, size_t flags);   /* + JSON_COMPACT */
void pbuf_trim(struct pbuf *b);   /* empty it; give back a buffer grown past 1 MiB */
void pbuf_free(struct pbuf *b);
void frame_ref(struct frame *f);
void frame_unref(struct frame *f);   /* NULL is fine */

struct ring {
	struct frame **slot;     /* cap entries; slot[seq & (cap-1)] */
	size_t cap;              /* power of two */
	uint64_t first, last;    /* seqs held: first..last; empty if last < first */
	size_t bytes, max_bytes; /* payload bytes held, and the budget */
	uint64_t cum;            /* stream bytes ever published */
};

/* cap is rounded up to a power of two (at least 16). next_seq is the seq
 * the first published frame will carry. */
int ring_init(struct ring *r, size_t cap, size_t max_bytes, uint64_t next_seq);
void ring_release(struct ring *r);

/*
 * Publish f (its seq must be r->last + 1); the ring takes over the caller's
 * reference. Evicts the oldest frames beyond cap or max_bytes (the newest is
 * always kept).
 */
void ring_publish(struct ring *r, struct frame *f);
/* seq was published without a frame (nobody subscribed): the ring empties
 * and restarts after it; ring_get misses send readers to the log. */
void ring_skip(struct ring *r, uint64_t seq);

/* The frame for seq, borrowed, or NULL if not held. */
struct frame *ring_get(const struct ring *r, uint64_t seq);

/* Stream bytes published before seq (seq in first..last+1), for lag. */
uint64_t ring_cum_before(const struct ring *r, uint64_t seq);

/*
 * The push for one event as JSON:
 * {"op":"event","seq":N,"event":{...ev_to_json...},
 *  "entry":{...} (entry.* and comment.added), "comment":{...} (comment.added),
 *  "user":{...} (user.* and token.*), "replay":true (if replay)}
 * State is read from p as it is now: call right after proj_apply for live
 * pushes; replays (from the log) carry the current state.
 * Returns a new reference or NULL (ENOMEM).
 */
json_t *push_build(const struct proj *p, const struct event *ev, int replay);

/*
 * Who sees which push. Every subscriber gets one frame per seq, so the
 * stream stays gapless, but token events (token.issued, token.revoked:
 * ids, owner, label) are for admins and the token's owner only, as
 * getUsers shows tokens to admins only, and a read mark (read.marked) for
 * admins and the user who read: any other viewer gets the stub
 * {"op":"event","seq":N,"redacted":true} in their place.
 *
 * push_restrict: f, the push frame of an event of type `type` about user
 * `user` (push_owner(ev)), gets its stub if the event is restricted.
 * 0 or CL_ENOMEM (buf: scratch, as for frame_from_json).
 * push_for: the frame viewer may see, f or its stub, judged by viewer's role
 * in p now. Live pushes (the ring) and catch-up from the log both go
 * through these two, so the rule is the same for both.
 */
int push_restrict(struct pbuf *buf, struct frame *f, int type, uint64_t user);
uint64_t push_owner(const struct event *ev);
struct frame *push_for(struct frame *f, const struct proj *p, uint64_t viewer);

#endif
