/*
 * texts.c - the entry text cache: each entry's JSON view (proj_entry_json)
 * kept serialized, so that a page of getChangelogEntries is put together
 * by copying texts (core/query.c, proj_entries_text) instead of building a
 * tree of objects and serializing it again for every page.
 *
 * Why it is shaped so:
 *  - A text is made by jansson (proj_entry_json, then json_dumpb compact),
 *    so its bytes are exactly what jansson writes for that object inside a
 *    compact array; nothing here writes JSON.
 *  - Validity needs no hook in proj_apply: an entry's view changes only
 *    with an event that moves its act_seq (proj_internal.h, struct
 *    ptext_slot), so a text made at act_seq A is the view for as long as
 *    the entry's act_seq is A. A speculative event that is later rolled
 *    back goes with its projection (the server rebuilds a new one), so an
 *    act_seq is never reused within one projection.
 *  - Memory is capped (proj_texts_max, counted as the text plus 16 bytes
 *    of malloc's header): the least recently used texts go first, except
 *    those the page being put together uses (its stamp), so a page never
 *    evicts its own texts; once the page is written the cache is trimmed
 *    to the cap again. So it holds at most the cap, and while a page is
 *    put together the cap plus that page (PROJ_ANSWER_MAX).
 *  - The view carries no per-viewer field (the same for every member), so
 *    one text serves everyone.
 */
#include "proj_internal.h"

#include <stdlib.h>
#include <string.h>

#define TEXT_OVERHEAD 16u   /* malloc's header, counted with each text */

static void text_drop(struct ptexts *t, uint32_t id);

void proj_texts_max(struct proj *p, size_t bytes)
{
	p->texts.max = bytes;
	proj_i_texts_trim(p);
}

void proj_i_texts_trim(struct proj *p)
{
	struct ptexts *t = &p->texts;

	while (t->bytes > t->max && t->tail) {   /* between pages: no page to spare */
		text_drop(t, t->tail);
		t->evicted++;
	}
}

void proj_texts_stats(const struct proj *p, struct proj_texts_stats *out)
{
	out->bytes = p->texts.bytes;
	out->max = p->texts.max;
	out->n = p->texts.n;
	out->made = p->texts.made;
	out->hits = p->texts.hits;
	out->evicted = p->texts.evicted;
}

void proj_i_texts_page(struct proj *p)
{
	p->texts.stamp++;
}

static void lru_unlink(struct ptexts *t, uint32_t id)
{
	struct ptext_slot *s = &t->slot[id - 1];

	if (s->prev)
		t->slot[s->prev - 1].next = s->next;
	else
		t->head = s->next;
	if (s->next)
		t->slot[s->next - 1].prev = s->prev;
	else
		t->tail = s->prev;
	s->prev = s->next = 0;
}

static void lru_push(struct ptexts *t, uint32_t id)
{
	struct ptext_slot *s = &t->slot[id - 1];

	s->prev = 0;
	s->next = t->head;
	if (t->head)
		t->slot[t->head - 1].prev = id;
	else
		t->tail = id;
	t->head = id;
}

static void text_drop(struct ptexts *t, uint32_t id)
{
	struct ptext_slot *s = &t->slot[id - 1];

	lru_unlink(t, id);
	t->bytes -= (size_t)s->n + TEXT_OVERHEAD;
	t->n--;
	free(s->text);
	s->text = NULL;
	s->n = 0;
}

const char *proj_i_text(struct proj *p, uint32_t id, size_t *n)
{
	struct ptexts *t = &p->texts;
	struct ptext_slot *s;

	if (id < 1 || id > t->cap || id > p->nentries)
		return NULL;
	s = &t->slot[id - 1];
	if (!s->text || s->act != p->entries[id - 1].act_seq)
		return NULL;
	if (t->head != id) {
		lru_unlink(t, id);
		lru_push(t, id);
	}
	s->stamp = t->stamp;
	t->hits++;
	*n = s->n;
	return s->text;
}

/* Slots for every entry id up to want (grown by doubling). */
static int slots_reserve(struct ptexts *t, uint32_t want)
{
	uint32_t cap = t->cap ? t->cap : 256;
	struct ptext_slot *ns;

	if (want <= t->cap)
		return 0;
	while (cap < want)
		cap = cap > UINT32_MAX / 2 ? UINT32_MAX : cap * 2;
	if (!(ns = realloc(t->slot, (size_t)cap * sizeof *ns)))
		return CL_ENOMEM;
	memset(ns + t->cap, 0, (size_t)(cap - t->cap) * sizeof *ns);
	t->slot = ns;
	t->cap = cap;
	return 0;
}

const char *proj_i_text_make(struct proj *p, uint32_t id, size_t *n)
{
	struct ptexts *t = &p->texts;
	struct ptext_slot *s;
	json_t *j;
	size_t len;
	char *text;

	if (id < 1 || id > p->nentries || slots_reserve(t, id))
		return NULL;
	if (!(j = proj_entry_json(p, id)))
		return NULL;
	text = json_dumps(j, JSON_COMPACT);   /* one pass (json_dumpb sizes first) */
	json_decref(j);
	if (!text)
		return NULL;
	len = strlen(text);
	s = &t->slot[id - 1];
	if (s->text)
		text_drop(t, id);
	s->text = text;
	s->n = (uint32_t)len;
	s->act = p->entries[id - 1].act_seq;
	s->stamp = t->stamp;
	lru_push(t, id);
	t->bytes += len + TEXT_OVERHEAD;
	t->n++;
	t->made++;
	while (t->bytes > t->max && t->tail && t->slot[t->tail - 1].stamp != t->stamp) {
		text_drop(t, t->tail);
		t->evicted++;
	}
	*n = len;
	return text;
}

void proj_i_texts_free(struct proj *p)
{
	struct ptexts *t = &p->texts;

	for (uint32_t i = 0; i < t->cap; i++)
		free(t->slot[i].text);
	free(t->slot);
	memset(t, 0, sizeof *t);
}
