/*
 * stale: the client response timer; see stale.h.
 */
#include "stale.h"

#include "cache.h"
#include "check.h"
#include "prefetch.h"
#include "server_int.h"

static void arm(struct server *s);

static void
on_stale_timer(uv_timer_t *t)
{
	struct server *s = t->data;
	uint64_t now = uv_now(s->loop);

	while (s->stale.head != NULL && s->stale.head->stale_at <= now) {
		struct query *q = s->stale.head;
		stale_unwatch(s, q);
		if (q->wait == NULL)
			continue;
		/* nothing to serve any more (the window ended, the entry was evicted, serve_stale
		 * was turned off): the query keeps waiting for its upstream request */
		if (s->cache == NULL ||
		    !cache_stale_kept(s->cache, &q->dq.qname, q->dq.qtype, q->dq.qclass,
				      cache_key_bits(&q->dq), now))
			continue;
		/* the refresh joins this query's request (the in-flight dedup), so cancelling
		 * the query's wait does not abort it */
		(void)prefetch_start(s, &q->dq, false);
		q->want_stale = true;
		upstream_cancel(q->wait);
	}
	arm(s);
}

static void
arm(struct server *s)
{
	if (!s->stale.init)
		return;
	if (s->stale.head == NULL) {
		uv_timer_stop(&s->stale.timer);
		return;
	}
	uint64_t now = uv_now(s->loop), at = s->stale.head->stale_at;
	uv_timer_start(&s->stale.timer, on_stale_timer, at > now ? at - now : 0, 0);
}

void
stale_start(struct server *s)
{
	uv_timer_init(s->loop, &s->stale.timer);
	s->stale.timer.data = s;
	s->stale.init = true;
	s->nobjects++;
}

void
stale_close(struct server *s)
{
	if (!s->stale.init)
		return;
	s->stale.init = false;
	uv_timer_stop(&s->stale.timer);
	uv_close((uv_handle_t *)&s->stale.timer, server_handle_closed);
}

void
stale_watch(struct server *s, struct query *q)
{
	if (!s->stale.init || q->stale_watched)
		return;
	q->stale_at = uv_now(s->loop) + STALE_CLIENT_TIMER_MS;
	q->sprev = s->stale.tail;
	q->snext = NULL;
	if (s->stale.tail != NULL)
		s->stale.tail->snext = q;
	else
		s->stale.head = q;
	s->stale.tail = q;
	q->stale_watched = true;
	if (s->stale.head == q)
		arm(s);
}

void
stale_unwatch(struct server *s, struct query *q)
{
	if (!q->stale_watched)
		return;
	if (q->sprev != NULL)
		q->sprev->snext = q->snext;
	else
		s->stale.head = q->snext;
	if (q->snext != NULL)
		q->snext->sprev = q->sprev;
	else
		s->stale.tail = q->sprev;
	q->sprev = q->snext = NULL;
	q->stale_watched = false;
}
