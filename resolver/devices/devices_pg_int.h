/*
 * devices_pg_int.h: what the shared device table's files share (devices_pg.c: the queues, the
 * sync thread and applying on the loop; devices_pg_sql.c: the SQL the thread runs). Not for
 * other folders.
 */
#ifndef VETO_DEVICES_PG_INT_H
#define VETO_DEVICES_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices_pg.h"

/* One change from the loop: a record's state, or its removal (forget at at_ms, Unix ms). */
struct devices_pg_change {
	bool forget;
	int64_t at_ms;
	struct devices_record rec;
};

/*
 * The changes from the loop to the sync thread (devices_pg_queue.c): a ring of
 * DEVICES_PG_QUEUE slots and an index of them by key, so that a device's newer state replaces
 * the one still queued in constant time, however full the ring (the loop calls it for every
 * signature query while the store is away). Not locked: the caller holds devices_pg's mutex.
 * Slots are named by their absolute position (head counts every change ever taken): a link to
 * a position below head is a change already taken, the end of its chain.
 */
#define DEVICES_PG_FORGET_ROOM	64	/* the last slots, kept for forgets */
#define DEVICES_PG_BUCKETS	2048	/* a power of two, twice DEVICES_PG_QUEUE */

struct devices_pg_queue {
	struct devices_pg_change *slot;	/* DEVICES_PG_QUEUE, position % DEVICES_PG_QUEUE */
	uint64_t *older;	/* per slot: position + 1 of the next older change of its bucket */
	uint64_t *bucket;	/* DEVICES_PG_BUCKETS: position + 1 of the newest change, 0 none */
	uint64_t head;		/* the position of the oldest change */
	size_t len;
	uint64_t seed;
	uint64_t compared;	/* keys compared so far (the tests count them) */
};

/* 0 or -ENOMEM; devices_pg_queue_free() after either. */
int devices_pg_queue_init(struct devices_pg_queue *q);
void devices_pg_queue_free(struct devices_pg_queue *q);

/* Queues r's state (forget false) or its forget, made at at_ms (Unix ms). A state replaces the
 * last change queued for r->key when that is a state (never across a forget); else it takes a
 * slot: states up to DEVICES_PG_QUEUE - DEVICES_PG_FORGET_ROOM, forgets up to DEVICES_PG_QUEUE.
 * false: no room (nothing changed). */
bool devices_pg_queue_put(struct devices_pg_queue *q, const struct devices_record *r,
			  bool forget, int64_t at_ms);

/* Moves the oldest changes, at most max, to out, in order; returns how many. */
size_t devices_pg_queue_take(struct devices_pg_queue *q, struct devices_pg_change *out,
			     size_t max);

/* Writes n changes as instance in one transaction and announces each on PG_DEVICES_CHANNEL.
 * Blocks. 0 or -EIO (why says why; the transaction is rolled back). */
int devices_pg_sql_write(PGconn *c, const char *instance, const struct devices_pg_change *ch,
			 size_t n, char *why, size_t whysz);

/* The rows with seq > after (after 0: all), their evidence split into this instance's and the
 * sum of the others'; for an address-keyed device ("ip:"), evidence last seen before ip_since
 * (Unix time) is left out: an address changes hands, and the next holder must not inherit
 * what the previous one queried (devices.address_ttl_s, as the local table). *rows is malloc'd (NULL when none); *max_seq the highest seq seen (left
 * as it was when none). Blocks. 0, -ENOMEM or -EIO. */
int devices_pg_sql_fetch(PGconn *c, const char *instance, int64_t after, int64_t ip_since,
			 struct devices_pg_row **rows, size_t *n, int64_t *max_seq, char *why,
			 size_t whysz);

#endif
