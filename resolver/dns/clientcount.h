/*
 * clientcount: exact counts per client key (queries waiting for upstream, open TCP connections).
 * An open-addressing table (linear probing, backward-shift deletion) hashed with a per-table
 * random seed; a key is present only while its count is above zero, so the table holds at most
 * as many keys as there are things counted. It doubles when half full and never shrinks: no
 * allocation once the high-water mark is reached.
 */
#ifndef VETO_CLIENTCOUNT_H
#define VETO_CLIENTCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "clientkey.h"

struct clientcount_slot {
	struct clientkey key;
	uint32_t count; /* 0: empty */
};

struct clientcount {
	struct clientcount_slot *slots; /* owned */
	size_t mask;                    /* slots - 1 (a power of two), or 0 before the first add */
	size_t used;
	uint64_t seed;
};

void clientcount_init(struct clientcount *t);
void clientcount_destroy(struct clientcount *t);
/* The count of k (0 when absent). */
uint32_t clientcount_get(const struct clientcount *t, const struct clientkey *k);
/* Adds one to k's count. 0, or -ENOMEM (nothing changed). */
int clientcount_add(struct clientcount *t, const struct clientkey *k);
/* Adds one to k's count if it is below limit: a get and an add with one lookup. 0, -EBUSY (the
 * count is at or above limit) or -ENOMEM (nothing changed). */
int clientcount_add_below(struct clientcount *t, const struct clientkey *k, uint32_t limit);
/* Takes one from k's count (must be above zero); the key goes at zero. */
void clientcount_sub(struct clientcount *t, const struct clientkey *k);

#endif
