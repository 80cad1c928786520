/*
 * upstream: requests to the upstream servers, one UDP attempt at a time (see upstream.h for the
 * contract and upstream_int.h for the objects).
 *
 * Life of a request: upstream_query() finds an identical request in flight (dedup table) or
 * creates one on u->starting; the idle callback starts it, so nothing happens synchronously inside
 * upstream_query(). Each attempt picks a server (the next healthy one, see upstream_servers.c,
 * which also tracks failures and backoff), takes a socket of that server's pool (upstream_sock.c:
 * random port, connected, shared by several attempts), sends the query with a fresh random ID
 * unique on that socket and starts its timer when the send completes. Replies failing validation
 * are counted and dropped; the attempt ends on a valid answer (complete the request), a truncated
 * reply (retry over TCP, upstream_tcp.c), a reply that is no answer (SERVFAIL, REFUSED...,
 * unparsable records), an error or the timeout (next attempt; the request fails after
 * UPSTREAM_MAX_ATTEMPTS or when its deadline, attempts x timeout, has passed).
 *
 * A UDP attempt that times out is counted as a failure, but it stays registered on its socket (and
 * its timer is re-armed to the request's deadline) while the next attempt runs: a server that
 * always needs longer than the timeout still answers within the request's budget. The request
 * lists its live attempts; whichever gets the first valid answer completes it and every other
 * attempt is closed. When no attempt is left to start, the request waits for its live attempts and
 * fails once the last one has ended.
 *
 * Cancelling the last waiter aborts the request: a reply nobody waits for is not worth waiting
 * for (the cache is filled by the query path, which has gone).
 *
 * IDs are read from getrandom() (the kernel CSPRNG) 512 octets at a time, so an ID costs a copy
 * and one syscall per 256 IDs; a splitmix64 stream seeded from getrandom() stands in should a
 * refill ever fail. Source ports are the kernel's random ephemeral ports (a bind to port 0 when
 * the pool opens a socket).
 *
 * Counters: u->st (struct upstream_stats) is the one place for them; per-server figures would
 * go in struct upstream_server beside its health.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "check.h"
#include "hash.h"
#include "log.h"
#include "upstream_int.h"

#define DNS_FLAG_RD 0x0100
#define DNS_FLAG_CD 0x0010

static void on_idle(uv_idle_t *handle);
static void on_attempt_timer(uv_timer_t *timer);
static void on_idle_close(uv_handle_t *handle);
static void req_next_attempt(struct upstream_req *req);

/* ------------------------------------------------------------------------------------------ */
/* random IDs */

static uint64_t
splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

static void
refill_random(struct upstream *u)
{
	ssize_t got = getrandom(u->rnd, sizeof(u->rnd), GRND_NONBLOCK);

	if (got != (ssize_t)sizeof(u->rnd)) {
		/* never seen on Linux >= 3.17 after boot; keep going with the seeded stream */
		for (size_t i = 0; i < sizeof(u->rnd); i += 8) {
			uint64_t v = splitmix64(&u->prng);
			memcpy(u->rnd + i, &v, 8);
		}
	}
	u->rnd_pos = 0;
}

uint16_t
upstream_random_id(struct upstream *u)
{
	uint16_t id;

	if (u->rnd_pos + 2 > sizeof(u->rnd))
		refill_random(u);
	memcpy(&id, u->rnd + u->rnd_pos, 2);
	u->rnd_pos += 2;
	return id;
}

/* ------------------------------------------------------------------------------------------ */
/* pools */

static struct upstream_wait *
wait_get(struct upstream *u)
{
	struct upstream_wait *w = u->free_waits;

	if (w != NULL) {
		u->free_waits = w->pool_next;
		u->nfree_waits--;
	} else {
		w = malloc(sizeof(*w));
		if (w == NULL)
			return NULL;
	}
	w->u = u;
	w->req = NULL;
	w->status = 0;
	upstream_link_init(&w->link);
	return w;
}

static void
wait_put(struct upstream *u, struct upstream_wait *w)
{
	if (u->nfree_waits >= UPSTREAM_POOL_MAX) {
		free(w);
		return;
	}
	w->pool_next = u->free_waits;
	u->free_waits = w;
	u->nfree_waits++;
}

static struct upstream_req *
req_get(struct upstream *u)
{
	struct upstream_req *r = u->free_reqs;

	if (r != NULL) {
		u->free_reqs = r->hnext;
		u->nfree_reqs--;
	} else {
		r = malloc(sizeof(*r));
		if (r == NULL)
			return NULL;
	}
	u->nreqs++;
	return r;
}

static void
req_put(struct upstream *u, struct upstream_req *r)
{
	u->nreqs--;
	if (u->nfree_reqs >= UPSTREAM_POOL_MAX) {
		free(r);
		return;
	}
	r->hnext = u->free_reqs;
	u->free_reqs = r;
	u->nfree_reqs++;
}

static struct upstream_attempt *
attempt_get(struct upstream *u)
{
	struct upstream_attempt *a = u->free_attempts;

	if (a != NULL) {
		u->free_attempts = a->pool_next;
		u->nfree_attempts--;
	} else {
		a = malloc(sizeof(*a));
		if (a == NULL)
			return NULL;
	}
	u->live++;
	return a;
}

static void maybe_free(struct upstream *u);

static void
attempt_put(struct upstream *u, struct upstream_attempt *a)
{
	if (u->nfree_attempts >= UPSTREAM_POOL_MAX || u->closing) {
		free(a);
	} else {
		a->pool_next = u->free_attempts;
		u->free_attempts = a;
		u->nfree_attempts++;
	}
	u->live--;
	maybe_free(u);
}

/* ------------------------------------------------------------------------------------------ */
/* dedup table */

static uint16_t
key_flags(const struct dnsmsg_query *q)
{
	return (uint16_t)((q->flags & (DNS_FLAG_RD | DNS_FLAG_CD)) | (q->do_bit ? 1 : 0));
}

static uint64_t
key_hash(const struct upstream *u, const struct dnsmsg_query *q)
{
	uint64_t h = names_hash(&q->qname, u->seed);
	uint64_t k = (uint64_t)q->qtype | (uint64_t)q->qclass << 16 | (uint64_t)key_flags(q) << 32;

	return hash_mix(h ^ k * 0x9e3779b97f4a7c15ULL);
}

static bool
key_equal(const struct dnsmsg_query *a, const struct dnsmsg_query *b)
{
	return a->qtype == b->qtype && a->qclass == b->qclass && key_flags(a) == key_flags(b) &&
	       names_equal(&a->qname, &b->qname);
}

static struct upstream_req *
table_find(const struct upstream *u, uint64_t h, const struct dnsmsg_query *q)
{
	for (struct upstream_req *r = u->table[h & u->tmask]; r != NULL; r = r->hnext)
		if (r->hash == h && key_equal(&r->q, q))
			return r;
	return NULL;
}

static void
table_grow(struct upstream *u)
{
	size_t n = (u->tmask + 1) * 2;
	struct upstream_req **t = calloc(n, sizeof(*t));

	if (t == NULL)
		return;	/* longer chains, still correct */
	for (size_t i = 0; i <= u->tmask; i++) {
		struct upstream_req *r = u->table[i];
		while (r != NULL) {
			struct upstream_req *next = r->hnext;
			r->hnext = t[r->hash & (n - 1)];
			t[r->hash & (n - 1)] = r;
			r = next;
		}
	}
	free(u->table);
	u->table = t;
	u->tmask = n - 1;
}

static void
table_insert(struct upstream *u, struct upstream_req *r)
{
	if (u->tcount >= u->tmask + 1)
		table_grow(u);
	struct upstream_req **b = &u->table[r->hash & u->tmask];
	r->hnext = *b;
	*b = r;
	u->tcount++;
}

static void
table_remove(struct upstream *u, struct upstream_req *r)
{
	for (struct upstream_req **p = &u->table[r->hash & u->tmask]; *p != NULL;
	     p = &(*p)->hnext) {
		if (*p == r) {
			*p = r->hnext;
			r->hnext = NULL;
			u->tcount--;
			return;
		}
	}
	INSIST(!"request not in the dedup table");
}

/* ------------------------------------------------------------------------------------------ */
/* waiters and requests */

static void
idle_kick(struct upstream *u)
{
	if (!u->idle_closing)
		uv_idle_start(&u->idle, on_idle);
}

void
upstream_kick(struct upstream *u)
{
	idle_kick(u);
}

bool
upstream_reading(const struct upstream *u)
{
	return u->reading;
}

static void
waiter_call(struct upstream *u, struct upstream_wait *w, int status, const uint8_t *reply,
	    size_t len, const struct sockaddr *server)
{
	if (status < 0 && status != -ECANCELED)
		u->st.failed++;
	w->req = NULL;
	w->cb(w->arg, status, reply, len, server);
	wait_put(u, w);
}

/* Takes w off its request and queues its completion with status for the idle callback. */
static void
waiter_queue(struct upstream *u, struct upstream_wait *w, int status)
{
	struct upstream_req *req = w->req;

	upstream_link_remove(&w->link);
	req->nwaiters--;
	w->req = NULL;
	w->status = status;
	upstream_link_append(&u->completions, &w->link);
	idle_kick(u);
}

static void
req_unref(struct upstream_req *req)
{
	INSIST(req->refs > 0);
	if (--req->refs > 0)
		return;
	INSIST(upstream_link_empty(&req->waiters) && upstream_link_empty(&req->live));
	upstream_servers_unref(&req->servers);
	req_put(req->u, req);
}

/* Out of the table and the lists: no new waiter joins, no further attempt starts. */
static void
req_detach(struct upstream_req *req)
{
	INSIST(!req->done);
	req->done = true;
	table_remove(req->u, req);
	upstream_link_remove(&req->link);
}

static void
attempt_close_handles(struct upstream_attempt *a);

/* Marks a finished, takes it off its request's live attempts and closes its handles. */
static void
attempt_finish(struct upstream_attempt *a)
{
	INSIST(!a->finished);
	a->finished = true;
	upstream_link_remove(&a->rlink);
	a->req->nlive--;
	upstream_sock_unregister(a);	/* its ID no longer matches a reply */
	upstream_tls_unregister(a);
	upstream_doh_stop(a);
	attempt_close_handles(a);
}

/* Closes every live attempt of req. */
static void
req_close_attempts(struct upstream_req *req)
{
	while (!upstream_link_empty(&req->live))
		attempt_finish(UPSTREAM_CONTAINER(req->live.next, struct upstream_attempt,
						  rlink));
}

/* Ends req without calling anyone (its waiters are gone or queued). */
static void
req_abort(struct upstream_req *req)
{
	if (req->done)
		return;
	req_detach(req);
	req_close_attempts(req);
	req_unref(req);
}

/* Queues -ECANCELED for every waiter of req and aborts it (shutdown). */
static void
req_cancel(struct upstream *u, struct upstream_req *req)
{
	while (!upstream_link_empty(&req->waiters))
		waiter_queue(u, UPSTREAM_CONTAINER(req->waiters.next, struct upstream_wait, link),
			     -ECANCELED);
	req_abort(req);
}

/* Completes every waiter of req with status (and the reply when status is 0). */
static void
req_finish(struct upstream_req *req, int status, const uint8_t *reply, size_t len,
	   const struct sockaddr *server)
{
	struct upstream *u = req->u;

	/* the in-flight reference, dropped at the end, keeps req while callbacks run (they may
	 * cancel other waiters or close: req is done, so neither touches that reference) */
	req_detach(req);
	req_close_attempts(req);
	while (!upstream_link_empty(&req->waiters)) {
		struct upstream_wait *w =
			UPSTREAM_CONTAINER(req->waiters.next, struct upstream_wait, link);
		upstream_link_remove(&w->link);
		req->nwaiters--;
		waiter_call(u, w, status, reply, len, server);
	}
	req_unref(req);
}

/* ------------------------------------------------------------------------------------------ */
/* attempts */

static void
on_attempt_close(uv_handle_t *handle)
{
	upstream_attempt_unpend(handle->data);
}

static void
attempt_close_handles(struct upstream_attempt *a)
{
	if (a->h_open) {
		a->h_open = false;
		uv_close(&a->h.handle, on_attempt_close);
	}
	uv_close((uv_handle_t *)&a->timer, on_attempt_close);
}

void
upstream_attempt_unpend(struct upstream_attempt *a)
{
	INSIST(a->pending > 0);
	if (--a->pending > 0)
		return;
	struct upstream *u = a->u;
	free(a->tbuf);
	a->tbuf = NULL;
	req_unref(a->req);
	attempt_put(u, a);
}

void
upstream_attempt_start_timer(struct upstream_attempt *a)
{
	struct upstream_req *req = a->req;
	uint64_t now = uv_now(a->u->loop);
	uint64_t ms = req->servers->timeout_ms;

	if (req->deadline <= now)
		ms = 1;
	else if (req->deadline - now < ms)
		ms = req->deadline - now;
	uv_timer_start(&a->timer, on_attempt_timer, ms, 0);
}

static void
on_attempt_timer(uv_timer_t *timer)
{
	struct upstream_attempt *a = timer->data;

	if (!a->expired)
		a->u->st.timeouts++;
	upstream_attempt_done(a, UPSTREAM_RESULT_TIMEOUT, NULL, 0);
}

void
upstream_on_attempt_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct upstream_attempt *a = handle->data;

	(void)suggested;
	buf->base = (char *)a->u->rbuf;
	buf->len = sizeof(a->u->rbuf);
}

/* Starts an attempt of req to server (UDP, or TCP after a truncated reply). On failure nothing
 * is left running (handles already opened are closing). */
static int
attempt_start(struct upstream_req *req, size_t server, bool tcp)
{
	struct upstream *u = req->u;
	struct upstream_attempt *a = attempt_get(u);
	int err;

	if (a == NULL)
		return -ENOMEM;
	a->u = u;
	a->req = req;
	req->refs++;
	a->server = server;
	a->tcp = tcp;
	a->finished = false;
	a->expired = false;
	a->h_open = false;
	a->pending = 0;
	a->thave_len = 0;
	a->tneed = 0;
	a->tgot = 0;
	a->tbuf = NULL;
	a->tcap = 0;
	a->sock = NULL;
	a->tls = NULL;
	a->doh = NULL;
	a->idnext = NULL;
	upstream_link_init(&a->slink);
	upstream_link_init(&a->wlink);
	bool tls = !tcp && req->servers->s[server].transport == CONFIG_TRANSPORT_TLS;
	bool doh = !tcp && req->servers->s[server].transport == CONFIG_TRANSPORT_HTTPS;
	if (tcp || doh) {
		a->id = upstream_random_id(u);
	} else {
		/* picks the socket (connection) and a->id */
		err = tls ? upstream_tls_register(a) : upstream_sock_register(a);
		if (err != 0) {
			req_unref(req);
			attempt_put(u, a);
			return err;
		}
	}
	a->qlen = dnsmsg_write_upstream_query(&req->q, a->id, a->qbuf + 2, UPSTREAM_QUERY_MAX);
	if (a->qlen == 0) {
		upstream_sock_unregister(a);
		upstream_tls_unregister(a);
		req_unref(req);
		attempt_put(u, a);
		return -EMSGSIZE;
	}
	a->qbuf[0] = (uint8_t)(a->qlen >> 8);
	a->qbuf[1] = (uint8_t)a->qlen;
	uv_timer_init(u->loop, &a->timer);
	a->timer.data = a;
	a->pending = 1;
	upstream_link_append(&req->live, &a->rlink);
	req->nlive++;
	if (tcp)
		err = upstream_tcp_start(a);
	else if (tls)
		err = upstream_tls_send(a);
	else if (doh)
		err = upstream_doh_start(a);
	else
		err = upstream_sock_send(a);
	if (err != 0) {
		attempt_finish(a);
		return err;
	}
	return 0;
}

void
upstream_attempt_done(struct upstream_attempt *a, enum upstream_result r, const uint8_t *reply,
		      size_t len)
{
	struct upstream_req *req = a->req;
	struct upstream *u = a->u;

	if (a->finished)
		return;
	struct upstream_server *s = &req->servers->s[a->server];
	uint64_t now = uv_now(u->loop);
	bool was_expired = a->expired;

	if (r == UPSTREAM_RESULT_TIMEOUT && !a->tcp && !was_expired && !req->done &&
	    now < req->deadline) {
		/* a failure, but the socket keeps listening for a late reply until the deadline */
		a->expired = true;
		req->ntimeouts++;
		upstream_server_failed(s, now);
		uv_timer_start(&a->timer, on_attempt_timer, req->deadline - now, 0);
		req_next_attempt(req);
		return;
	}
	attempt_finish(a);
	if (req->done)
		return;
	switch (r) {
	case UPSTREAM_RESULT_REPLY:
		if (was_expired)
			u->st.late_replies++;
		upstream_server_ok(s);
		req_finish(req, 0, reply, len, (const struct sockaddr *)&s->ss);
		return;
	case UPSTREAM_RESULT_TRUNCATED:
		if (!a->tcp) {
			int err = attempt_start(req, a->server, true);
			if (err == 0) {
				if (!was_expired)
					upstream_server_ok(s);
				return;
			}
			log_debug("upstream: '%s': tcp: %s", s->text, uv_strerror(err));
		}
		req->nnetfails++;
		break;	/* TCP could not start, or TC over TCP: a failed attempt */
	case UPSTREAM_RESULT_BAD:
		u->st.bad_replies++;
		log_debug("upstream: '%s': reply with rcode %u or malformed records, trying another "
			  "server", s->text, len >= 4 ? (unsigned)(reply[3] & 0x0f) : 0u);
		if (req->nbad < UPSTREAM_MAX_ATTEMPTS)
			req->bad[req->nbad++] = a->server;
		break;
	case UPSTREAM_RESULT_FAILED:
		req->nnetfails++;
		break;
	case UPSTREAM_RESULT_TIMEOUT:
		if (!was_expired)
			req->ntimeouts++;
		break;
	}
	/* an expired attempt's failure was counted when it timed out, and the attempt after it
	 * is running: it only matters when it was the last one alive */
	if (!was_expired)
		upstream_server_failed(s, now);
	if (!was_expired || req->nlive == 0)
		req_next_attempt(req);
}

/* The status of a request that failed: -ECONNREFUSED when every attempt failed on the network,
 * -ETIMEDOUT otherwise. */
static int
req_fail_status(const struct upstream_req *req)
{
	return req->nnetfails > 0 && req->ntimeouts == 0 && req->nbad == 0 ? -ECONNREFUSED
									     : -ETIMEDOUT;
}

/* Starts the next attempt of req; when none is left, fails it once no attempt is alive. */
static void
req_next_attempt(struct upstream_req *req)
{
	struct upstream *u = req->u;

	while (!req->done) {
		uint64_t now = uv_now(u->loop);
		if (req->servers->n == 0) {
			req_finish(req, -ENETUNREACH, NULL, 0, NULL);
			return;
		}
		size_t k = SIZE_MAX;
		if (req->attempts < UPSTREAM_MAX_ATTEMPTS && now < req->deadline)
			k = upstream_server_pick(req, now);
		if (k == SIZE_MAX) {
			if (req->nlive == 0)
				req_finish(req, req_fail_status(req), NULL, 0, NULL);
			return;	/* else the last attempt alive decides */
		}
		req->tried[req->attempts++] = k;
		req->last = k;
		int err = attempt_start(req, k, false);
		if (err == 0)
			return;
		log_debug("upstream: '%s': %s", req->servers->s[k].text, uv_strerror(err));
		req->nnetfails++;
		if (err != UV_EMFILE && err != UV_ENFILE && err != UV_ENOMEM && err != UV_ENOBUFS)
			upstream_server_failed(&req->servers->s[k], now);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* the idle callback: starts new requests, runs queued completions, closes on shutdown */

static void
link_take(struct upstream_link *dst, struct upstream_link *src)
{
	upstream_link_init(dst);
	if (upstream_link_empty(src))
		return;
	dst->next = src->next;
	dst->prev = src->prev;
	dst->next->prev = dst;
	dst->prev->next = dst;
	upstream_link_init(src);
}

static void
on_idle(uv_idle_t *handle)
{
	struct upstream *u = handle->data;
	struct upstream_link batch;

	/* only what is queued now: callbacks may queue more, handled on the next turn */
	link_take(&batch, &u->starting);
	while (!upstream_link_empty(&batch)) {
		struct upstream_req *req = UPSTREAM_CONTAINER(batch.next, struct upstream_req, link);
		upstream_link_remove(&req->link);
		upstream_link_append(&u->inflight, &req->link);
		if (u->closing) {
			/* a callback of this batch closed the upstream */
			req_cancel(u, req);
			continue;
		}
		req->deadline = uv_now(u->loop) +
				(uint64_t)req->servers->timeout_ms * UPSTREAM_MAX_ATTEMPTS;
		req_next_attempt(req);
	}
	link_take(&batch, &u->completions);
	while (!upstream_link_empty(&batch)) {
		struct upstream_wait *w = UPSTREAM_CONTAINER(batch.next, struct upstream_wait, link);
		upstream_link_remove(&w->link);
		waiter_call(u, w, w->status, NULL, 0, NULL);
	}
	if (u->tls_dirty)
		upstream_tls_flush(u);	/* the queries of this turn, a few per TLS record */
	if (!upstream_link_empty(&u->starting) || !upstream_link_empty(&u->completions))
		return;
	if (!u->closing) {
		uv_idle_stop(&u->idle);
	} else if (!u->idle_closing) {
		u->idle_closing = true;
		uv_close((uv_handle_t *)&u->idle, on_idle_close);
	}
}

static void
on_idle_close(uv_handle_t *handle)
{
	upstream_handle_released(handle->data);
}

void
upstream_handle_released(struct upstream *u)
{
	INSIST(u->live > 0);
	u->live--;
	maybe_free(u);
}

static void
maybe_free(struct upstream *u)
{
	if (!u->closing || u->live > 0)
		return;
	INSIST(u->nreqs == 0);
	void (*done)(void *) = u->close_done;
	void *arg = u->close_arg;
	while (u->free_reqs != NULL) {
		struct upstream_req *r = u->free_reqs;
		u->free_reqs = r->hnext;
		free(r);
	}
	while (u->free_attempts != NULL) {
		struct upstream_attempt *a = u->free_attempts;
		u->free_attempts = a->pool_next;
		free(a);
	}
	while (u->free_waits != NULL) {
		struct upstream_wait *w = u->free_waits;
		u->free_waits = w->pool_next;
		free(w);
	}
	upstream_sock_free(u);
	upstream_tls_free(u);
	upstream_doh_free(u);
	upstream_servers_unref(&u->servers);
	free(u->table);
	free(u);
	if (done != NULL)
		done(arg);
}

/* ------------------------------------------------------------------------------------------ */
/* public interface */

int
upstream_new(uv_loop_t *loop, const struct config *cfg, struct upstream **out)
{
	struct upstream *u;
	int err;

	REQUIRE(loop != NULL && cfg != NULL && out != NULL);
	u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	err = upstream_servers_new(cfg, NULL, &u->servers);
	if (err != 0)
		goto cleanup;
	u->table = calloc(UPSTREAM_TABLE_MIN, sizeof(*u->table));
	if (u->table == NULL) {
		err = -ENOMEM;
		goto cleanup;
	}
	u->tmask = UPSTREAM_TABLE_MIN - 1;
	/* The dedup table's seed is a table seed (hash_seed); the fallback ID stream is seeded
	 * from the kernel CSPRNG only, like the IDs themselves. */
	if (getrandom(&u->prng, sizeof(u->prng), 0) != (ssize_t)sizeof(u->prng)) {
		err = -errno;
		log_error("upstream: getrandom: %s", strerror(errno));
		goto cleanup;
	}
	u->seed = hash_seed();
	refill_random(u);
	u->loop = loop;
	err = upstream_tls_configure(u, cfg, u->servers);	/* opens no handle */
	if (err == 0)
		err = upstream_doh_configure(u, cfg, u->servers);	/* nor this */
	if (err != 0)
		goto cleanup;
	upstream_link_init(&u->starting);
	upstream_link_init(&u->inflight);
	upstream_link_init(&u->completions);
	uv_idle_init(loop, &u->idle);
	u->idle.data = u;
	u->live = 1;
	upstream_sock_init(u);
	*out = u;
	return 0;
cleanup:
	upstream_tls_free(u);
	upstream_doh_free(u);
	upstream_servers_unref(&u->servers);
	free(u->table);
	free(u);
	return err;
}

int
upstream_reconfigure(struct upstream *u, const struct config *cfg)
{
	struct upstream_servers *s;
	int err;

	REQUIRE(u != NULL && cfg != NULL && !u->closing);
	err = upstream_servers_new(cfg, u->servers, &s);
	if (err != 0)
		return err;
	err = upstream_tls_configure(u, cfg, s);
	if (err == 0)
		err = upstream_doh_configure(u, cfg, s);
	if (err != 0) {
		upstream_servers_unref(&s);
		return err;
	}
	upstream_servers_unref(&u->servers);
	u->servers = s;
	upstream_sock_prune(u, s);	/* servers no longer listed: their sockets close */
	return 0;
}

int
upstream_query(struct upstream *u, const struct dnsmsg_query *q, upstream_done_cb cb, void *arg,
	       struct upstream_wait **wait)
{
	REQUIRE(u != NULL && q != NULL && cb != NULL && wait != NULL);
	REQUIRE(q->has_question);
	if (u->closing)
		return -ECANCELED;
	struct upstream_wait *w = wait_get(u);
	if (w == NULL)
		return -ENOMEM;
	uint64_t h = key_hash(u, q);
	struct upstream_req *req = table_find(u, h, q);
	if (req != NULL) {
		u->st.deduplicated++;
	} else {
		req = req_get(u);
		if (req == NULL) {
			wait_put(u, w);
			return -ENOMEM;
		}
		req->u = u;
		req->servers = u->servers;
		req->servers->refs++;
		req->refs = 1;
		req->done = false;
		req->attempts = 0;
		req->last = 0;
		req->deadline = 0;
		req->hash = h;
		req->hnext = NULL;
		upstream_link_init(&req->waiters);
		req->nwaiters = 0;
		upstream_link_init(&req->live);
		req->nlive = 0;
		req->nbad = 0;
		req->ntimeouts = 0;
		req->nnetfails = 0;
		memcpy(&req->q, q, sizeof(*q));
		table_insert(u, req);
		upstream_link_append(&u->starting, &req->link);
		idle_kick(u);
	}
	u->st.queries++;
	w->req = req;
	w->cb = cb;
	w->arg = arg;
	upstream_link_append(&req->waiters, &w->link);
	req->nwaiters++;
	*wait = w;
	return 0;
}

void
upstream_cancel(struct upstream_wait *w)
{
	if (w == NULL || w->req == NULL)
		return;	/* already completing */
	struct upstream_req *req = w->req;
	waiter_queue(w->u, w, -ECANCELED);
	if (req->nwaiters == 0)
		req_abort(req);
}

static void
cancel_all(struct upstream *u, struct upstream_link *list)
{
	while (!upstream_link_empty(list))
		req_cancel(u, UPSTREAM_CONTAINER(list->next, struct upstream_req, link));
}

void
upstream_close(struct upstream *u, void (*done)(void *arg), void *arg)
{
	REQUIRE(u != NULL && !u->closing);
	u->closing = true;
	u->close_done = done;
	u->close_arg = arg;
	cancel_all(u, &u->starting);
	cancel_all(u, &u->inflight);
	upstream_sock_close(u);
	upstream_tls_close(u);
	upstream_doh_close(u);
	idle_kick(u);	/* runs the queued completions, then closes the idle handle */
}

void
upstream_get_stats(const struct upstream *u, struct upstream_stats *st)
{
	REQUIRE(u != NULL && st != NULL);
	*st = u->st;
}
