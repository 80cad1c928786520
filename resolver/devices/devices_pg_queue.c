/*
 * devices_pg_queue: the bounded queue of device changes from the loop to the sync thread (see
 * devices_pg_int.h). A ring in the order of the changes, and chains of positions per bucket of
 * a seeded hash of the key, newest first: finding the change still queued for a device costs
 * the length of one chain (about one), not the length of the ring. Taking a change needs no
 * unlinking: positions below head end every chain.
 */
#include "devices_pg_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

int
devices_pg_queue_init(struct devices_pg_queue *q)
{
	memset(q, 0, sizeof(*q));
	q->slot = malloc(DEVICES_PG_QUEUE * sizeof(*q->slot));
	q->older = calloc(DEVICES_PG_QUEUE, sizeof(*q->older));
	q->bucket = calloc(DEVICES_PG_BUCKETS, sizeof(*q->bucket));
	q->seed = hash_seed();
	if (q->slot == NULL || q->older == NULL || q->bucket == NULL)
		return -ENOMEM;
	return 0;
}

void
devices_pg_queue_free(struct devices_pg_queue *q)
{
	free(q->slot);
	free(q->older);
	free(q->bucket);
	memset(q, 0, sizeof(*q));
}

/* Whether link (position + 1, 0 none) names a change still queued. */
static bool
queued(const struct devices_pg_queue *q, uint64_t link)
{
	return link != 0 && link - 1 >= q->head;
}

bool
devices_pg_queue_put(struct devices_pg_queue *q, const struct devices_record *r, bool forget,
		     int64_t at_ms)
{
	uint64_t *b = &q->bucket[hash_str(r->key, q->seed) & (DEVICES_PG_BUCKETS - 1)];
	struct devices_pg_change *c = NULL;

	if (!forget) {
		/* the newest change of this key decides: a state is replaced, a forget is not */
		for (uint64_t l = *b; queued(q, l); l = q->older[(l - 1) % DEVICES_PG_QUEUE]) {
			struct devices_pg_change *k = &q->slot[(l - 1) % DEVICES_PG_QUEUE];
			q->compared++;
			if (strcmp(k->rec.key, r->key) == 0) {
				c = k->forget ? NULL : k;
				break;
			}
		}
	}
	if (c == NULL) {
		/* states come back with the next full send, a forget (an administrator's act)
		 * would not: the last slots are kept for forgets */
		size_t room = forget ? DEVICES_PG_QUEUE : DEVICES_PG_QUEUE - DEVICES_PG_FORGET_ROOM;
		if (q->len >= room)
			return false;
		uint64_t pos = q->head + q->len++;
		c = &q->slot[pos % DEVICES_PG_QUEUE];
		q->older[pos % DEVICES_PG_QUEUE] = *b;
		*b = pos + 1;
	}
	c->forget = forget;
	c->at_ms = at_ms;
	c->rec = *r;
	return true;
}

size_t
devices_pg_queue_take(struct devices_pg_queue *q, struct devices_pg_change *out, size_t max)
{
	size_t n = 0;

	while (q->len > 0 && n < max) {
		out[n++] = q->slot[q->head % DEVICES_PG_QUEUE];
		q->head++;
		q->len--;
	}
	return n;
}
