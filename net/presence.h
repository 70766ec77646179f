/*
 * presence.h - who is looking at the changelog right now, on this node.
 *
 * A connection joins presence with {"op":"presence"} (docs/protocol.md,
 * "Presence"): from then on it receives presence pushes and, unless it
 * said "hidden", counts its user as present. This module keeps, per user,
 * how many visible connections it has and whether it was announced
 * present; the owner (net/server.c) tells it when a connection becomes
 * visible or stops being so, and asks it for the pushes.
 *
 * Coalesced: presence_flush makes at most one push per PRESENCE_INTERVAL_US
 * (the owner's timer asks at each tick) holding only the net change since
 * the last one: a user who opens and closes a hundred tabs in between is in
 * it once, or not at all. So a member cannot make the server send anyone
 * more than one presence push per interval, and a push names each user at
 * most once (at most the users with a connection on this node).
 *
 * Presence is not in the log: the pushes carry no seq and do not touch the
 * event stream's "no gap, no duplicate" rule. Several connections of one
 * user count once. Each node (a writer, every edge) knows only its own
 * connections. Single-threaded; no lws, no sessions.
 */
#ifndef CL_NET_PRESENCE_H
#define CL_NET_PRESENCE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "../core/proj.h"

#define PRESENCE_INTERVAL_US 1000000   /* at most one push per second */

struct presence_user {
	uint64_t user;
	uint32_t visible;     /* visible connections of the user now */
	uint8_t shown;        /* announced present by the last push (or reply) */
};

struct presence {
	struct presence_user *u;   /* sorted by user id */
	size_t n, cap;
	int dirty;                 /* some visible count crossed 0 since the last push */
	int64_t last_us;           /* when the last push was made (monotonic) */
	uint64_t pushes;           /* pushes made, for /metrics-like counting and tests */
};

void presence_init(struct presence *pr);
void presence_release(struct presence *pr);

/* A connection of user became visible (join): 0 or CL_ENOMEM. */
int presence_add(struct presence *pr, uint64_t user);
/* A visible connection of user left, or hid itself. */
void presence_remove(struct presence *pr, uint64_t user);

/* The users announced present, [{"id":N,"name":"..."}, ...] by id, as the
 * pushes so far describe them: a new watcher starts from this and applies
 * the pushes that follow. NULL on ENOMEM. */
json_t *presence_list(const struct presence *pr, const struct proj *p);
/* How many users presence_list names (announced present), for /metrics. */
size_t presence_count(const struct presence *pr);

/*
 * If something changed and the last push is PRESENCE_INTERVAL_US old at
 * now_us: the push {"op":"presence","arrived":[User...],"left":[User...]}
 * (users as in presence_list; either list may be empty, never both), and
 * the announced state moves on. Else NULL (also on ENOMEM: the change is
 * kept for the next call).
 */
json_t *presence_flush(struct presence *pr, const struct proj *p, int64_t now_us);

#endif
