/*
 * prefetch: background refreshes of popular cache entries shortly before they expire
 * (cache.prefetch), so that hits stay hits.
 *
 * A cache hit that cache_prefetch_due() picks starts one upstream request for the same question
 * through upstream_query() (the usual path: validation, failover, and joining an identical
 * request already in flight). The client is answered from the cache as usual; the reply, when
 * it is cacheable, replaces the entry. A failed refresh changes nothing (the entry expires as
 * it would have).
 * Bounded: at most PREFETCH_MAX refreshes at once, in preallocated slots (no allocation), each
 * counted in the descriptor budget of queries waiting for upstream (limits.nupstream) but in no
 * client's caps (a refresh is not a client's query); beyond, no refresh is started.
 */
#ifndef VETO_PREFETCH_H
#define VETO_PREFETCH_H

#include <stdbool.h>

#include "dnsmsg.h"
#include "upstream.h"

#define PREFETCH_MAX 16

struct server;

struct prefetch_slot {
	struct server *srv;
	struct upstream_wait *wait;	/* while busy */
	bool busy;
	struct dnsmsg_query dq;		/* copy of the client's question */
};

struct prefetch {
	unsigned busy;			/* slots in use */
	struct prefetch_slot slot[PREFETCH_MAX];
};

/* Starts the refresh of q's answer (q is copied). mark: right after a cache hit that
 * cache_prefetch_due() said is due, marks that entry (cache_prefetch_started); false for the
 * refresh that carries on a request whose client got a stale answer (stale.c). 0, or -EBUSY
 * (at the cap, the budget reached, or the server stopping) or upstream_query's error: nothing
 * started. */
int prefetch_start(struct server *s, const struct dnsmsg_query *q, bool mark);

#endif
