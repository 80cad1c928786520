/*
 * tcp: DNS over TCP (RFC 7766). Every message carries a 2-octet length prefix; frames may be
 * split or merged across reads in any way. Several queries of one connection are answered
 * concurrently and their replies written as they complete (out of order).
 *
 * Resource bounds: server.tcp_connections connections across all listeners (within the
 * descriptor budget, limits.c; beyond: the connection idle longest is closed for the newcomer,
 * or the newcomer if none is idle), server.tcp_connections_per_client from one address
 * (beyond: the newcomer is closed), server.tcp_pipeline queries in flight
 * per connection (at the limit reading stops until one finishes), server.tcp_idle_timeout_ms
 * without a complete query while nothing is in flight (half-open or silent clients), and
 * TCP_MAX_BACKLOG octets of replies a slow reader may leave unread. The cap is read from the
 * current policy at each accept; the pipeline and idle timeout are copied into the connection
 * when it is accepted. So a reload applies all three to connections accepted after it, and a
 * lower cap does not close connections already open.
 *
 * Lifetime: a connection holds a reference for each of its two handles, each query in flight
 * and each write request; it is freed when the last one goes. A query finishing on a closed
 * connection has its reply discarded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>

#include "check.h"
#include "config.h"
#include "log.h"
#include "query.h"
#include "server_int.h"

struct tcp_write {
	uv_write_t req;
	struct tcp_conn *c;
	size_t len;
	uint8_t data[];
};

static void process(struct tcp_conn *c, const uint8_t *data, size_t n);

/* The connection list, most recently active first (s->conns_tail has been idle longest). */
static void
conn_unlink(struct tcp_conn *c)
{
	struct server *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	else
		s->conns_tail = c->prev;
	c->prev = c->next = NULL;
}

static void
conn_link_first(struct tcp_conn *c)
{
	struct server *s = c->srv;

	c->prev = NULL;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	else
		s->conns_tail = c;
	s->conns = c;
}

/* c received a query: it moves to the front. */
static void
conn_touch(struct tcp_conn *c)
{
	if (c->srv->conns != c) {
		conn_unlink(c);
		conn_link_first(c);
	}
}

static void
conn_unref(struct tcp_conn *c)
{
	struct server *s = c->srv;

	INSIST(c->refs > 0);
	if (--c->refs > 0)
		return;
	conn_unlink(c);
	s->nconns--;
	free(c->pbuf);
	free(c);
	server_conn_closed(s);
}

static void
on_conn_close(uv_handle_t *handle)
{
	conn_unref(handle->data);
}

void
tcp_conn_close(struct tcp_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	c->reading = false;
	if (c->counted) {
		c->counted = false;
		c->srv->nactive--;
		limits_tcp_sub(c->srv, (const struct sockaddr *)&c->peer);
	}
	uv_close((uv_handle_t *)&c->timer, on_conn_close);
	uv_close((uv_handle_t *)&c->handle, on_conn_close);
}

/* Closes c when it has nothing left to do and will get nothing more (EOF, or stopping). */
static void
maybe_close_done(struct tcp_conn *c)
{
	if (c->closing || c->inflight > 0 || c->backlog > 0)
		return;
	if (c->eof || c->srv->state >= SERVER_DRAINING)
		tcp_conn_close(c);
}

static void
on_conn_timeout(uv_timer_t *t)
{
	struct tcp_conn *c = t->data;

	if (c->closing || c->inflight > 0)
		return;
	c->srv->stats.tcp_timeouts++;
	tcp_conn_close(c);
}

static void
arm_idle_timer(struct tcp_conn *c)
{
	if (!c->closing)
		uv_timer_start(&c->timer, on_conn_timeout, c->idle_ms, 0);
}

static void
on_tcp_write(uv_write_t *req, int status)
{
	struct tcp_write *w = (struct tcp_write *)req;
	struct tcp_conn *c = w->c;

	c->backlog -= w->len;
	free(w);
	if (status < 0 && !c->closing) {
		log_debug("tcp write: %s", uv_strerror(status));
		c->srv->stats.send_errors++;
		tcp_conn_close(c);
	}
	maybe_close_done(c);
	conn_unref(c);
}

void
tcp_reply(struct query *q, uint8_t *buf, size_t len)
{
	struct tcp_conn *c = q->via.tcp;
	struct server *s = c->srv;

	if (c->closing || len > DNSMSG_MAX_LEN) {
		s->stats.send_errors++;
		return;
	}
	uint8_t *frame = buf - 2;
	size_t total = len + 2;
	frame[0] = (uint8_t)(len >> 8);
	frame[1] = (uint8_t)len;
	uv_buf_t b = uv_buf_init((char *)frame, (unsigned int)total);
	size_t done = 0;
	if (c->backlog == 0) {
		int n = uv_try_write((uv_stream_t *)&c->handle, &b, 1);
		if (n < 0 && n != UV_EAGAIN) {
			s->stats.send_errors++;
			tcp_conn_close(c);
			return;
		}
		if (n > 0)
			done = (size_t)n;
	}
	if (done == total)
		return;
	size_t rest = total - done;
	if (c->backlog + rest > TCP_MAX_BACKLOG) {
		log_debug("tcp: client does not read its replies: closing");
		s->stats.send_errors++;
		tcp_conn_close(c);
		return;
	}
	struct tcp_write *w = malloc(sizeof(*w) + rest);
	if (w == NULL) {
		s->stats.send_errors++;
		tcp_conn_close(c);
		return;
	}
	w->c = c;
	w->len = rest;
	memcpy(w->data, frame + done, rest);
	b = uv_buf_init((char *)w->data, (unsigned int)rest);
	int err = uv_write(&w->req, (uv_stream_t *)&c->handle, &b, 1, on_tcp_write);
	if (err != 0) {
		free(w);
		s->stats.send_errors++;
		tcp_conn_close(c);
		return;
	}
	c->backlog += rest;
	c->refs++;
}

static void
on_tcp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct tcp_conn *c = handle->data;

	(void)suggested;
	*buf = uv_buf_init((char *)c->srv->tcp_rbuf, TCP_READ_SIZE);
}

static void
start_reading(struct tcp_conn *c);

static void
on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct tcp_conn *c = stream->data;

	if (c->closing)
		return;
	if (nread < 0) {
		/* EOF or error: answer what is in flight, then close */
		uv_read_stop(stream);
		c->reading = false;
		c->eof = true;
		if (nread != UV_EOF)
			log_debug("tcp read: %s", uv_strerror((int)nread));
		maybe_close_done(c);
		return;
	}
	if (nread > 0)
		process(c, (const uint8_t *)buf->base, (size_t)nread);
}

static void
start_reading(struct tcp_conn *c)
{
	if (c->reading || c->closing || c->eof || c->srv->state >= SERVER_DRAINING)
		return;
	if (uv_read_start((uv_stream_t *)&c->handle, on_tcp_alloc, on_tcp_read) != 0) {
		tcp_conn_close(c);
		return;
	}
	c->reading = true;
}

static void
stop_reading(struct tcp_conn *c)
{
	if (c->reading) {
		uv_read_stop((uv_stream_t *)&c->handle);
		c->reading = false;
	}
}

/* Keeps n octets for later. 0, or -ENOMEM. */
static int
stash(struct tcp_conn *c, const uint8_t *data, size_t n)
{
	if (c->poff > 0 && c->plen > 0)
		memmove(c->pbuf, c->pbuf + c->poff, c->plen);
	c->poff = 0;
	if (c->plen + n > c->pcap) {
		size_t cap = c->pcap != 0 ? c->pcap : 512;
		while (cap < c->plen + n)
			cap *= 2;
		uint8_t *p = realloc(c->pbuf, cap);
		if (p == NULL)
			return -ENOMEM;
		c->pbuf = p;
		c->pcap = cap;
	}
	memcpy(c->pbuf + c->plen, data, n);
	c->plen += n;
	return 0;
}

static void
handle_frame(struct tcp_conn *c, const uint8_t *msg, size_t len)
{
	struct server *s = c->srv;

	s->stats.tcp_queries++;
	struct query *q = query_get(s, (const struct sockaddr *)&c->peer, true);
	if (q == NULL) {
		s->stats.dropped++;
		LIMITS_COUNT(s, slots);
		return;
	}
	q->via.tcp = c;
	c->inflight++;
	c->refs++;
	uv_timer_stop(&c->timer);
	conn_touch(c);
	query_process(q, msg, len);
}

static bool
can_take(const struct tcp_conn *c)
{
	return !c->closing && c->inflight < c->max_inflight && c->srv->state < SERVER_DRAINING;
}

/*
 * Handles the complete frames of what was stashed and then of data (n octets, may be 0), stashes
 * the rest, and stops reading at the in-flight limit.
 */
static void
process(struct tcp_conn *c, const uint8_t *data, size_t n)
{
	bool got = false;

	c->in_process = true;
	/* fast path: nothing stashed, frames straight from the read buffer */
	if (c->plen == 0) {
		while (n >= 2 && can_take(c)) {
			size_t flen = (size_t)data[0] << 8 | data[1];
			if (n < 2 + flen)
				break;
			handle_frame(c, data + 2, flen);
			got = true;
			data += 2 + flen;
			n -= 2 + flen;
		}
	}
	if (n > 0 && !c->closing && stash(c, data, n) != 0) {
		tcp_conn_close(c);
	}
	while (c->plen >= 2 && can_take(c)) {
		const uint8_t *p = c->pbuf + c->poff;
		size_t flen = (size_t)p[0] << 8 | p[1];
		if (c->plen < 2 + flen)
			break;
		c->poff += 2 + flen;
		c->plen -= 2 + flen;
		handle_frame(c, p + 2, flen);
		got = true;
	}
	if (c->plen == 0)
		c->poff = 0;
	c->in_process = false;
	if (c->closing)
		return;
	if (c->inflight >= c->max_inflight)
		stop_reading(c);
	if (c->inflight == 0) {
		if (got)
			arm_idle_timer(c);
		maybe_close_done(c);
	}
}

void
tcp_query_done(struct tcp_conn *c)
{
	INSIST(c->inflight > 0);
	c->inflight--;
	if (!c->closing && !c->in_process) {
		if (!c->reading && c->inflight < c->max_inflight) {
			/* resume: frames stashed while at the limit first */
			process(c, NULL, 0);
			if (!c->closing && c->inflight < c->max_inflight)
				start_reading(c);
		}
		if (!c->closing && c->inflight == 0) {
			arm_idle_timer(c);
			maybe_close_done(c);
		}
	}
	conn_unref(c);
}

void
tcp_conn_drain(struct tcp_conn *c)
{
	if (c->closing)
		return;
	stop_reading(c);
	maybe_close_done(c);
}

/* Closes the connection idle longest (nothing in flight, nothing to write), looking at no more
 * than LIMITS_EVICT_SCAN from the idle end. True if one was closed. */
static bool
evict_idle(struct server *s, const struct tcp_conn *newcomer)
{
	unsigned seen = 0;

	for (struct tcp_conn *c = s->conns_tail; c != NULL && seen < LIMITS_EVICT_SCAN;
	     c = c->prev) {
		if (c->closing || !c->counted || c == newcomer)
			continue;
		seen++;
		if (c->inflight == 0 && c->backlog == 0) {
			tcp_conn_close(c);
			return true;
		}
	}
	return false;
}

/*
 * A new connection: accepted first (its peer decides). Beyond server.tcp_connections_per_client
 * for its address it is closed; when server.tcp_connections are open, the one idle longest is
 * closed to make room (the newcomer is closed only if none is idle).
 */
static void
on_tcp_connection(uv_stream_t *server_handle, int status)
{
	struct tcp_listener *l = server_handle->data;
	struct server *s = l->base.srv;

	if (l->closing)
		return;
	if (status < 0) {
		/* EMFILE and the like: counted and reported once per period */
		if (status == UV_EMFILE || status == UV_ENFILE)
			LIMITS_COUNT(s, fds);
		else
			log_debug("%s: tcp accept: %s", l->base.name, uv_strerror(status));
		return;
	}
	const struct config *cfg = policy_config(s->policy);
	struct tcp_conn *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return;
	c->srv = s;
	c->max_inflight = cfg->server.tcp_pipeline;
	c->idle_ms = cfg->server.tcp_idle_timeout_ms;
	if (uv_tcp_init(s->loop, &c->handle) != 0) {
		free(c);
		return;
	}
	uv_timer_init(s->loop, &c->timer);
	c->handle.data = c;
	c->timer.data = c;
	c->refs = 2;
	conn_link_first(c);
	s->nconns++;

	int namelen = sizeof(c->peer);
	if (uv_accept(server_handle, (uv_stream_t *)&c->handle) != 0 ||
	    uv_tcp_getpeername(&c->handle, (struct sockaddr *)&c->peer, &namelen) != 0 ||
	    (c->peer.ss_family != AF_INET && c->peer.ss_family != AF_INET6)) {
		tcp_conn_close(c);
		return;
	}
	if (s->state != SERVER_RUNNING) {
		s->stats.tcp_rejected++;
		tcp_conn_close(c);
		return;
	}
	if (limits_tcp_add(s, (const struct sockaddr *)&c->peer) != 0) {
		s->stats.tcp_rejected++;
		tcp_conn_close(c);
		return;
	}
	c->counted = true;
	s->nactive++;
	if (s->nactive > limits_tcp_max(s)) {
		if (evict_idle(s, c)) {
			LIMITS_COUNT(s, tcp_evicted);
		} else {
			LIMITS_COUNT(s, tcp_full);
			s->stats.tcp_rejected++;
			tcp_conn_close(c);
			return;
		}
	}
	s->stats.tcp_accepted++;
	uv_tcp_nodelay(&c->handle, 1);
	arm_idle_timer(c);
	start_reading(c);
}

static void
on_listener_close(uv_handle_t *handle)
{
	struct tcp_listener *l = handle->data;

	server_listener_closed(&l->base.srv->tcp, &l->base);
}

int
tcp_listener_open(struct server *s, const struct config_addr *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)&addr->ss;
	unsigned int flags = sa->sa_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0;
	struct tcp_listener *l = server_listener_new(s, sa, sizeof(*l));
	int err;

	if (l == NULL)
		return -ENOMEM;
	err = uv_tcp_init_ex(s->loop, &l->handle, sa->sa_family);
	if (err != 0) {
		log_error("%s: cannot open tcp socket: %s", l->base.name, uv_strerror(err));
		server_listener_discard(&l->base);
		return err;
	}
	l->handle.data = l;
	server_listener_add(&s->tcp, &l->base);

	err = server_reuseport(s, (uv_handle_t *)&l->handle, l->base.name);
	if (err == 0)
		err = uv_tcp_bind(&l->handle, sa, flags);
	if (err == 0)
		err = uv_listen((uv_stream_t *)&l->handle, TCP_LISTEN_BACKLOG, on_tcp_connection);
	if (err != 0) {
		log_error("%s: cannot listen (tcp): %s", l->base.name, uv_strerror(err));
		return err;
	}
	if (s->self == NULL) /* once, not per worker */
		log_info("listening on %s (tcp)", l->base.name);
	return 0;
}

void
tcp_listener_close(struct tcp_listener *l)
{
	if (l->closing)
		return;
	l->closing = true;
	uv_close((uv_handle_t *)&l->handle, on_listener_close);
}
