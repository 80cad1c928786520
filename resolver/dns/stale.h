/*
 * stale: RFC 8767's client response timer. A query that goes upstream while the cache keeps an
 * expired answer for it (cache.serve_stale) is watched: if the upstream has not answered after
 * STALE_CLIENT_TIMER_MS, the client gets the kept answer (TTL 30, action stale) and the upstream
 * request goes on as a background refresh (prefetch_start), whose reply replaces the entry.
 * When the answer is no longer kept by then (its window ended, it was evicted, serve_stale was
 * turned off), the query simply goes on waiting for its upstream request.
 *
 * One timer for the server and a FIFO of watched queries (the delay is the same for all, so
 * the oldest is due first): nothing allocated per query. The timer never finishes a query: it
 * cancels the query's upstream wait with the query marked (want_stale), and the query finishes
 * in its upstream callback as always (exactly once).
 */
#ifndef VETO_STALE_H
#define VETO_STALE_H

#include <stdbool.h>
#include <uv.h>

#define STALE_CLIENT_TIMER_MS 1800	/* RFC 8767 section 5 suggests 1.8 s */

struct server;
struct query;

struct stale {
	uv_timer_t timer;		/* due at head->stale_at */
	bool init;			/* timer open */
	struct query *head, *tail;	/* watched queries, oldest first (query.sprev/snext) */
};

/* server_start: the timer (counted in nobjects until stale_close's close callback). */
void stale_start(struct server *s);
/* Closing: closes the timer (every query has finished by then). */
void stale_close(struct server *s);
/* q (waiting for upstream) has an expired answer kept for it: watch it. */
void stale_watch(struct server *s, struct query *q);
/* q's upstream wait completed: stop watching it (a no-op when it is not watched). */
void stale_unwatch(struct server *s, struct query *q);

#endif
