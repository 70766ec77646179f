/* test_net_push.c - net/push.c: frames, serialization buffers, the push ring. */
#include "harness.h"
#include "../../net/push.h"

#include <stdlib.h>

/* A frame for seq with len bytes of 'x'. */
static struct frame *mk(uint64_t seq, size_t len)
{
	struct frame *f = frame_new(len);

	if (f) {
		memset(f->data, 'x', len);
		f->seq = seq;
	}
	return f;
}

static void t_frame_refs(void)
{
	struct frame *f = frame_new(5);

	REQUIRE(f != NULL);
	CHECK_EQ_INT(f->refs, 1);
	CHECK(f->data == f->buf + LWS_PRE);
	CHECK_EQ_INT(f->data[5], '\0');
	frame_ref(f);
	CHECK_EQ_INT(f->refs, 2);
	frame_unref(f);
	CHECK_EQ_INT(f->refs, 1);
	frame_unref(f);
	frame_unref(NULL);                     /* fine */
	CHECK(frame_new(SIZE_MAX - 8) == NULL);   /* overflow refused, not wrapped */
}

static void t_frame_from_json(void)
{
	struct pbuf b = { 0 };
	json_t *j = json_pack("{s:s,s:i}", "op", "event", "seq", 7);
	struct frame *f = frame_from_json(&b, j);

	REQUIRE(f != NULL);
	CHECK_EQ_INT(f->len, strlen("{\"op\":\"event\",\"seq\":7}"));
	CHECK(memcmp(f->data, "{\"op\":\"event\",\"seq\":7}", f->len) == 0);
	CHECK_EQ_INT(b.len, 0);                /* the buffer is scratch, emptied */
	frame_unref(f);
	json_decref(j);
	pbuf_free(&b);
}

static void t_pbuf(void)
{
	struct pbuf b = { 0 };
	char big[5000];

	memset(big, 'a', sizeof big);
	CHECK_EQ_INT(pbuf_add(&b, "ab", 2), 0);
	CHECK_EQ_INT(pbuf_add(&b, big, sizeof big), 0);   /* grows past 4 KiB */
	CHECK_EQ_INT(b.len, 5002);
	CHECK(b.cap >= b.len);
	CHECK(memcmp(b.p, "ab", 2) == 0 && b.p[5001] == 'a');
	pbuf_trim(&b);
	CHECK_EQ_INT(b.len, 0);
	CHECK(b.p != NULL);                    /* small buffers are kept */
	pbuf_free(&b);
	CHECK(b.p == NULL && b.cap == 0);
}

static void t_ring_publish_get(void)
{
	struct ring r;
	uint64_t s;

	REQUIRE(ring_init(&r, 10, 1 << 20, 5) == 0);
	CHECK_EQ_INT(r.cap, 16);               /* rounded up to a power of two */
	CHECK(ring_get(&r, 5) == NULL);        /* empty: first 5, last 4 */
	CHECK_EQ_INT(r.last, 4);
	for (s = 5; s <= 20; s++)
		ring_publish(&r, mk(s, 10));
	CHECK_EQ_INT(r.first, 5);
	CHECK_EQ_INT(r.last, 20);
	CHECK_EQ_INT(ring_get(&r, 5)->seq, 5);
	CHECK_EQ_INT(ring_get(&r, 20)->seq, 20);
	CHECK(ring_get(&r, 21) == NULL);
	ring_publish(&r, mk(21, 10));          /* full: the oldest goes */
	CHECK_EQ_INT(r.first, 6);
	CHECK(ring_get(&r, 5) == NULL);
	CHECK_EQ_INT(ring_get(&r, 21)->seq, 21);
	CHECK_EQ_INT(r.bytes, 160);
	ring_release(&r);
}

/* cum counts every byte ever published; cum_before is what precedes seq. */
static void t_ring_cum(void)
{
	struct ring r;

	REQUIRE(ring_init(&r, 16, 1 << 20, 1) == 0);
	ring_publish(&r, mk(1, 10));
	ring_publish(&r, mk(2, 20));
	ring_publish(&r, mk(3, 30));
	CHECK_EQ_INT(r.cum, 60);
	CHECK_EQ_INT(ring_cum_before(&r, 1), 0);
	CHECK_EQ_INT(ring_cum_before(&r, 2), 10);
	CHECK_EQ_INT(ring_cum_before(&r, 3), 30);
	CHECK_EQ_INT(ring_cum_before(&r, 4), 60);    /* past the end: all of it */
	CHECK_EQ_INT(ring_get(&r, 3)->cum, 60);
	ring_release(&r);
}

/* The byte budget evicts the oldest, but the newest frame always stays. */
static void t_ring_bytes(void)
{
	struct ring r;

	REQUIRE(ring_init(&r, 64, 100, 1) == 0);
	ring_publish(&r, mk(1, 40));
	ring_publish(&r, mk(2, 40));
	CHECK_EQ_INT(r.first, 1);
	ring_publish(&r, mk(3, 40));           /* 120 > 100: seq 1 goes */
	CHECK_EQ_INT(r.first, 2);
	CHECK_EQ_INT(r.bytes, 80);
	ring_publish(&r, mk(4, 500));          /* bigger than the budget alone */
	CHECK_EQ_INT(r.first, 4);
	CHECK_EQ_INT(r.last, 4);
	CHECK_EQ_INT(r.bytes, 500);
	CHECK_EQ_INT(ring_cum_before(&r, 1), 120);   /* evicted: from first */
	ring_release(&r);
}

/* A seq published without a frame empties the ring; readers go to the log. */
static void t_ring_skip(void)
{
	struct ring r;

	REQUIRE(ring_init(&r, 16, 1 << 20, 1) == 0);
	ring_publish(&r, mk(1, 10));
	ring_publish(&r, mk(2, 10));
	ring_skip(&r, 3);
	CHECK(ring_get(&r, 1) == NULL && ring_get(&r, 2) == NULL && ring_get(&r, 3) == NULL);
	CHECK_EQ_INT(r.first, 4);
	CHECK_EQ_INT(r.last, 3);
	CHECK_EQ_INT(r.bytes, 0);
	CHECK_EQ_INT(r.cum, 20);
	ring_publish(&r, mk(4, 5));
	CHECK_EQ_INT(ring_get(&r, 4)->seq, 4);
	CHECK_EQ_INT(ring_cum_before(&r, 4), 20);
	ring_release(&r);
}

static void t_push_build(void)
{
	struct proj *p = proj_new();
	struct event ev;
	json_t *j;

	REQUIRE(p != NULL);
	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.version = (uint32_t)ev_current_version(EV_USER_CREATED);
	ev.seq = 1;
	ev.ts = 1790000000000000LL;
	ev.ids.user = 1;
	ev.name = CL_STR("root");
	ev.role = ROLE_ADMIN;
	REQUIRE(proj_apply(p, &ev) == 0);
	j = push_build(p, &ev, 0);
	REQUIRE(j != NULL);
	CHECK(strcmp(json_string_value(json_object_get(j, "op")), "event") == 0);
	CHECK_EQ_INT(json_integer_value(json_object_get(j, "seq")), 1);
	CHECK(json_is_object(json_object_get(j, "event")));
	CHECK(json_is_object(json_object_get(j, "user")));
	CHECK(json_object_get(j, "replay") == NULL);
	json_decref(j);
	j = push_build(p, &ev, 1);
	REQUIRE(j != NULL);
	CHECK(json_is_true(json_object_get(j, "replay")));
	json_decref(j);
	proj_free(p);
}

/* Token events: their owner and admins get the frame, others the stub. */
static void t_push_restrict(void)
{
	struct proj *p = proj_new();
	struct pbuf buf = { 0 };
	struct event ev;
	struct frame *f, *plain;

	REQUIRE(p != NULL);
	memset(&ev, 0, sizeof ev);
	ev.type = EV_USER_CREATED;
	ev.version = (uint32_t)ev_current_version(EV_USER_CREATED);
	ev.ts = 1790000000000000LL;
	ev.seq = ev.ids.user = 1;
	ev.name = CL_STR("root");
	ev.role = ROLE_ADMIN;
	REQUIRE(proj_apply(p, &ev) == 0);
	ev.seq = ev.ids.user = 2;
	ev.name = CL_STR("alice");
	ev.role = ROLE_MEMBER;
	REQUIRE(proj_apply(p, &ev) == 0);
	ev.seq = ev.ids.user = 3;
	ev.name = CL_STR("bob");
	REQUIRE(proj_apply(p, &ev) == 0);

	f = mk(7, 40);
	plain = mk(8, 40);
	REQUIRE(f && plain);
	CHECK(push_restrict(&buf, plain, EV_ENTRY_CREATED, 2) == 0);
	CHECK(plain->stub == NULL);
	CHECK(push_for(plain, p, 3) == plain);
	CHECK(push_restrict(&buf, f, EV_TOKEN_ISSUED, 2) == 0);
	REQUIRE(f->stub != NULL);
	CHECK_EQ_INT(f->stub->seq, 7);
	CHECK(strcmp((char *)f->stub->data, "{\"op\":\"event\",\"seq\":7,\"redacted\":true}") == 0);
	CHECK(push_for(f, p, 1) == f);          /* an admin */
	CHECK(push_for(f, p, 2) == f);          /* the owner */
	CHECK(push_for(f, p, 3) == f->stub);    /* another member */
	CHECK(push_for(f, p, 99) == f->stub);   /* nobody known */
	CHECK(push_restrict(&buf, f, EV_TOKEN_REVOKED, 3) == 0);   /* replaced, not leaked */
	CHECK(push_for(f, p, 3) == f && push_for(f, p, 2) == f->stub);
	/* a read mark is its reader's: the actor, not an id of the event */
	memset(&ev, 0, sizeof ev);
	ev.type = EV_READ_MARKED;
	ev.actor = 3;
	ev.ids.entry = 4;
	ev.upto = 6;
	CHECK_EQ_INT(push_owner(&ev), 3);
	CHECK(push_restrict(&buf, f, EV_READ_MARKED, push_owner(&ev)) == 0);
	CHECK(push_for(f, p, 3) == f && push_for(f, p, 1) == f && push_for(f, p, 2) == f->stub);
	ev.type = EV_TOKEN_ISSUED;
	ev.ids.user = 2;
	CHECK_EQ_INT(push_owner(&ev), 2);
	frame_unref(f);                        /* frees the stub too (asan) */
	frame_unref(plain);
	pbuf_free(&buf);
	proj_free(p);
}

int main(void)
{
	RUN(t_frame_refs);
	RUN(t_frame_from_json);
	RUN(t_pbuf);
	RUN(t_ring_publish_get);
	RUN(t_ring_cum);
	RUN(t_ring_bytes);
	RUN(t_ring_skip);
	RUN(t_push_build);
	RUN(t_push_restrict);
	return harness_done();
}
