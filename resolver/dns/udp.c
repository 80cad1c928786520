/*
 * udp: the UDP listeners. Datagrams are read with recvmmsg(2) (UV_UDP_RECVMMSG) into one
 * loop-owned buffer; each is answered from a query slot.
 *
 * Replies: those produced while a recvmmsg batch is being handled (blocked names, cache hits,
 * errors) are copied into the loop-owned batch and sent with one sendmmsg(2) when libuv reports
 * the end of the batch (the UV_UDP_MMSG_FREE call, or the nread 0 call of an empty read).
 * Upstream answers read from a pool socket (upstream_reading) join it too, and the check handle
 * s->flush sends what is left after the poll phase, so the answers of one loop turn share a
 * sendmmsg. Others (answers from a timer, TLS or TCP upstreams, large replies) go out with
 * uv_udp_try_send(). Only when the socket buffer is full is a reply copied into a queued
 * uv_udp_send request. Writing to the socket directly is safe because it is done only while
 * libuv's own send queue is empty (a batch finding it no longer empty joins the queue).
 *
 * Several workers (server.udp_sockets): per_worker, each worker binds its own SO_REUSEPORT
 * socket per address. shared (the default): the main server binds one socket per address and
 * reads it as above; each other worker holds a duplicate of its descriptor (a "helper"
 * listener) that it does not poll. When the main loop's batches have come back full for
 * UDP_HELP_AFTER_NS, it asks a worker to help (workers_assist); that worker reads with its own
 * recvmmsg(2) calls (udp_help) while they come back full, and answers from its own query slots
 * and cache on its own descriptor. So one loop answers while it keeps up, with full batches
 * (the cheapest per query: a second loop woken for half the datagrams makes both batches
 * thinner), and every worker reads once it does not.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <unistd.h>

#include "log.h"
#include "query.h"
#include "server_int.h"
#include "sockaddr.h"
#include "upstream.h"
#include "worker.h"

struct udp_send {
	uv_udp_send_t req;
	struct udp_listener *l;
	uint8_t data[];
};

struct udp_batch {
	struct udp_listener *l;		/* whose replies these are; NULL when empty */
	unsigned n;
	struct mmsghdr msgs[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	struct sockaddr_storage to[UDP_BATCH];
	uint8_t data[UDP_BATCH][UDP_BATCH_SLOT];
	/* what udp_help reads into (into the loop's receive buffer, a chunk each) */
	struct mmsghdr rmsgs[UDP_MMSG_CHUNKS];
	struct iovec riov[UDP_MMSG_CHUNKS];
	struct sockaddr_storage rfrom[UDP_MMSG_CHUNKS];
};

int
udp_batch_new(uint8_t *rbuf, struct udp_batch **out)
{
	struct udp_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
	for (unsigned i = 0; i < UDP_MMSG_CHUNKS; i++) {
		b->riov[i].iov_base = rbuf + (size_t)i * UDP_CHUNK_SIZE;
		b->riov[i].iov_len = UDP_CHUNK_SIZE;
		b->rmsgs[i].msg_hdr.msg_iov = &b->riov[i];
		b->rmsgs[i].msg_hdr.msg_iovlen = 1;
		b->rmsgs[i].msg_hdr.msg_name = &b->rfrom[i];
	}
	for (unsigned i = 0; i < UDP_BATCH; i++) {
		b->iov[i].iov_base = b->data[i];
		b->msgs[i].msg_hdr.msg_iov = &b->iov[i];
		b->msgs[i].msg_hdr.msg_iovlen = 1;
		b->msgs[i].msg_hdr.msg_name = &b->to[i];
	}
	*out = b;
	return 0;
}

void
udp_batch_free(struct udp_batch **b)
{
	free(*b);
	*b = NULL;
}

static void queue_send(struct udp_listener *l, const uint8_t *buf, size_t len,
		       const struct sockaddr *to);
static void on_flush_check(uv_check_t *c);

/* Another worker's view of the main server's socket (server.udp_sockets shared): never
 * polled, read by udp_help. */
static inline bool
is_helper(const struct udp_listener *l)
{
	return l->base.srv->udp_shared && l->base.srv->main_srv != NULL;
}

/* Sends what the batch holds. */
static void
batch_flush(struct server *s)
{
	struct udp_batch *b = s->batch;
	struct udp_listener *l = b->l;
	unsigned sent = 0;
	uv_os_fd_t fd;

	if (b->n == 0) {
		b->l = NULL;
		return;
	}
	if (l->closing || uv_fileno((uv_handle_t *)&l->handle, &fd) != 0) {
		s->stats.send_errors += b->n;
		b->n = 0;
		b->l = NULL;
		return;
	}
	if (uv_udp_get_send_queue_count(&l->handle) > 0) {
		/* a reply joined libuv's queue since the batch began: after it, in order */
		for (; sent < b->n; sent++)
			queue_send(l, b->data[sent], b->iov[sent].iov_len,
				   (const struct sockaddr *)&b->to[sent]);
	}
	while (sent < b->n) {
		int r = sendmmsg(fd, b->msgs + sent, b->n - sent, 0);
		if (r > 0) {
			sent += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			/* socket buffer full: libuv's queue takes the rest, in order */
			for (; sent < b->n; sent++)
				queue_send(l, b->data[sent], b->iov[sent].iov_len,
					   (const struct sockaddr *)&b->to[sent]);
			break;
		}
		/* this datagram cannot be sent (e.g. unreachable): skip it */
		log_debug("%s: udp send: %s", l->base.name, strerror(r < 0 ? errno : EIO));
		s->stats.send_errors++;
		sent++;
	}
	b->n = 0;
	b->l = NULL;
}

static void
on_udp_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct udp_listener *l = handle->data;

	(void)suggested;
	*buf = uv_buf_init((char *)l->base.srv->udp_rbuf, UDP_MMSG_CHUNKS * UDP_CHUNK_SIZE);
}

/* One datagram read from l: counted, then answered from a query slot. in_batch: replies made
 * before this returns may join the batch (the caller flushes it after the batch). */
static void
udp_datagram(struct udp_listener *l, const uint8_t *data, size_t len, const struct sockaddr *addr,
	     bool partial, bool in_batch)
{
	struct server *s = l->base.srv;

	s->stats.udp_queries++;
	if (partial || (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) {
		s->stats.dropped++;
		return;
	}
	struct query *q = query_get(s, addr, false);
	if (q == NULL) {
		s->stats.dropped++;
		LIMITS_COUNT(s, slots);
		return;
	}
	q->via.udp = l;
	l->in_batch = in_batch;
	query_process(q, data, len);
	l->in_batch = false;
}

static void
on_udp_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
	    unsigned flags)
{
	struct udp_listener *l = handle->data;
	struct server *s = l->base.srv;

	if (addr == NULL) {
		/* the end of a recvmmsg batch, nothing more to read, or an error */
		if (s->batch->l == l)
			batch_flush(s);
		if (nread < 0)
			log_debug("%s: udp receive: %s", l->base.name, uv_strerror((int)nread));
		/* full batches in a row for UDP_HELP_AFTER_NS: this loop is behind, not just
		 * catching up after a pause; another worker reads beside it while that lasts */
		if (l->nbatch == UDP_MMSG_CHUNKS && s->udp_shared && l->receiving) {
			uint64_t now = uv_hrtime();
			if (l->full_since == 0)
				l->full_since = now;
			else if (now - l->full_since >= UDP_HELP_AFTER_NS) {
				l->full_since = now;
				workers_assist(s);
			}
		} else if (nread == 0) /* the end of a batch that was not full, or nothing read */
			l->full_since = 0;
		l->nbatch = 0;
		return;
	}
	if (l->closing || !l->receiving || nread < 0)
		return;
	if (l->nbatch++ == 0 && s->batch->n > 0)
		batch_flush(s); /* upstream answers of this turn: not behind this batch's queries */
	/* replies made before this call returns join the batch (only with recvmmsg: it is what
	 * guarantees a final call that flushes) */
	udp_datagram(l, (const uint8_t *)buf->base, (size_t)nread, addr,
		     (flags & UV_UDP_PARTIAL) != 0, (flags & UV_UDP_MMSG_CHUNK) != 0);
}

/* Reads l's socket (the main server's, shared) until a recvmmsg comes back short; true if the
 * last came back full. */
static bool
help_listener(struct udp_listener *l)
{
	struct server *s = l->base.srv;
	struct udp_batch *b = s->batch;
	uv_os_fd_t fd;
	bool full = false;

	if (uv_fileno((uv_handle_t *)&l->handle, &fd) != 0)
		return false;
	if (b->n > 0)
		batch_flush(s); /* upstream answers of this turn first */
	for (unsigned round = 0; round < UDP_HELP_ROUNDS && l->receiving && !l->closing; round++) {
		for (unsigned i = 0; i < UDP_MMSG_CHUNKS; i++) {
			b->rmsgs[i].msg_hdr.msg_namelen = sizeof(b->rfrom[i]);
			b->rmsgs[i].msg_hdr.msg_flags = 0;
		}
		int n = recvmmsg(fd, b->rmsgs, UDP_MMSG_CHUNKS, MSG_DONTWAIT, NULL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		for (int i = 0; i < n && l->receiving; i++)
			udp_datagram(l, b->riov[i].iov_base, b->rmsgs[i].msg_len,
				     (const struct sockaddr *)&b->rfrom[i],
				     (b->rmsgs[i].msg_hdr.msg_flags & MSG_TRUNC) != 0, true);
		if (b->l == l)
			batch_flush(s);
		full = n == UDP_MMSG_CHUNKS;
		if (!full)
			break;
	}
	return full;
}

bool
udp_help(struct server *s)
{
	bool more = false;

	for (struct server_listener *l = s->udp; l != NULL; l = l->next)
		if (is_helper((struct udp_listener *)l) && help_listener((struct udp_listener *)l))
			more = true;
	return more;
}

static void
on_udp_send(uv_udp_send_t *req, int status)
{
	struct udp_send *us = (struct udp_send *)req;
	struct udp_listener *l = us->l;

	if (status < 0 && status != UV_ECANCELED) {
		l->base.srv->stats.send_errors++;
		log_debug("%s: udp send: %s", l->base.name, uv_strerror(status));
	}
	l->queued--;
	free(us);
}

/* Copies the reply into a uv_udp_send request (socket buffer full). */
static void
queue_send(struct udp_listener *l, const uint8_t *buf, size_t len, const struct sockaddr *to)
{
	struct server *s = l->base.srv;
	uv_buf_t b;
	int n;

	if (l->queued >= UDP_MAX_QUEUED_SENDS) {
		s->stats.send_errors++;
		return;
	}
	struct udp_send *us = malloc(sizeof(*us) + len);
	if (us == NULL) {
		s->stats.send_errors++;
		return;
	}
	us->l = l;
	memcpy(us->data, buf, len);
	b = uv_buf_init((char *)us->data, (unsigned int)len);
	n = uv_udp_send(&us->req, &l->handle, &b, 1, to, on_udp_send);
	if (n != 0) {
		s->stats.send_errors++;
		free(us);
		return;
	}
	l->queued++;
}

void
udp_reply(struct query *q, const uint8_t *buf, size_t len)
{
	struct udp_listener *l = q->via.udp;
	struct server *s = l->base.srv;
	const struct sockaddr *to = (const struct sockaddr *)&q->client;

	if (l->closing) {
		s->stats.send_errors++;
		return;
	}
	/* an upstream's answer read in the poll phase: sent with the others of this turn by the
	 * check handle, which runs right after that phase */
	bool defer = !l->in_batch && s->flush_init && s->upstream != NULL &&
		     upstream_reading(s->upstream);
	if ((l->in_batch || defer) && len <= UDP_BATCH_SLOT &&
	    uv_udp_get_send_queue_count(&l->handle) == 0) {
		struct udp_batch *bt = s->batch;
		if (bt->l != l || bt->n == UDP_BATCH)
			batch_flush(s);
		unsigned i = bt->n++;
		bt->l = l;
		memcpy(bt->data[i], buf, len);
		bt->iov[i].iov_len = len;
		socklen_t alen = sockaddr_len(to);
		memcpy(&bt->to[i], to, alen);
		bt->msgs[i].msg_hdr.msg_namelen = alen;
		if (defer)
			uv_check_start(&s->flush, on_flush_check);
		return;
	}
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned int)len);
	int n = uv_udp_try_send(&l->handle, &b, 1, to);
	if (n >= 0)
		return;
	if (n != UV_EAGAIN) {
		s->stats.send_errors++;
		log_debug("%s: udp send: %s", l->base.name, uv_strerror(n));
		return;
	}
	queue_send(l, buf, len, to);
}

static void
on_flush_check(uv_check_t *c)
{
	struct server *s = c->data;

	if (!s->flush_init) /* closing: udp_flush_close sent the batch */
		return;
	batch_flush(s);
	uv_check_stop(c);
}

void
udp_flush_start(struct server *s)
{
	uv_check_init(s->loop, &s->flush);
	s->flush.data = s;
	s->flush_init = true;
	s->nobjects++;
}

void
udp_flush_close(struct server *s)
{
	if (!s->flush_init)
		return;
	batch_flush(s);
	s->flush_init = false;
	uv_close((uv_handle_t *)&s->flush, server_handle_closed);
}

static void
on_udp_close(uv_handle_t *handle)
{
	struct udp_listener *l = handle->data;

	server_listener_closed(&l->base.srv->udp, &l->base);
}

/* A worker's view of the main server's socket for the same address: a duplicate of its
 * descriptor, read only when the main loop asks for help (udp_help). The main loop is waiting
 * for this worker's start meanwhile, so its list of listeners holds still. */
static int
open_helper(struct udp_listener *l)
{
	struct server *s = l->base.srv;
	uv_os_fd_t fd = -1;
	int dupfd, err = -ENOENT;

	for (struct server_listener *m = s->main_srv->udp; m != NULL; m = m->next)
		if (strcmp(m->name, l->base.name) == 0) {
			err = uv_fileno((uv_handle_t *)&((struct udp_listener *)m)->handle, &fd);
			break;
		}
	if (err != 0)
		return err;
	dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (dupfd < 0)
		return -errno;
	/* uv_udp_open sets SO_REUSEADDR, on the one socket the main server bound without it:
	 * another program could then bind the same address and take its queries. Put it back. */
	int reuse = 0;
	socklen_t len = sizeof(reuse);
	if (getsockopt(dupfd, SOL_SOCKET, SO_REUSEADDR, &reuse, &len) != 0)
		err = -errno;
	else
		err = uv_udp_open(&l->handle, dupfd);
	if (err == 0 && setsockopt(dupfd, SOL_SOCKET, SO_REUSEADDR, &reuse, sizeof(reuse)) != 0)
		err = -errno; /* the handle owns dupfd now: closed with it */
	else if (err != 0)
		close(dupfd);
	return err;
}

/* UDP_SOCKET_RCVBUF for bursts: beyond net.core.rmem_max where allowed (SO_RCVBUFFORCE, as
 * root before privileges are dropped), else up to it. Best effort. */
static void
set_rcvbuf(struct udp_listener *l)
{
	int size = UDP_SOCKET_RCVBUF;
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)&l->handle, &fd) == 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)) == 0)
		return;
	(void)uv_recv_buffer_size((uv_handle_t *)&l->handle, &size);
}

int
udp_listener_open(struct server *s, const struct config_addr *addr)
{
	const struct sockaddr *sa = (const struct sockaddr *)&addr->ss;
	unsigned int flags = sa->sa_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0;
	struct udp_listener *l = server_listener_new(s, sa, sizeof(*l));
	int err;

	if (l == NULL)
		return -ENOMEM;
	/* a helper's handle gets its socket from open_helper; the main server's reads batches */
	err = uv_udp_init_ex(s->loop, &l->handle,
			     is_helper(l) ? AF_UNSPEC : sa->sa_family | UV_UDP_RECVMMSG);
	if (err != 0) {
		log_error("%s: cannot open udp socket: %s", l->base.name, uv_strerror(err));
		server_listener_discard(&l->base);
		return err;
	}
	/* from here on the handle exists: the listener is closed by server_stop() */
	l->handle.data = l;
	server_listener_add(&s->udp, &l->base);

	if (is_helper(l)) {
		/* one socket per address, the main server's: the others help it read */
		err = open_helper(l);
		if (err != 0) {
			log_error("%s: cannot share the udp socket: %s", l->base.name,
				  uv_strerror(err));
			return err;
		}
		l->receiving = true;
		return 0;
	}
	err = s->udp_shared ? 0 : server_reuseport(s, (uv_handle_t *)&l->handle, l->base.name);
	if (err == 0)
		err = uv_udp_bind(&l->handle, sa, flags);
	if (err != 0) {
		log_error("%s: cannot listen (udp): %s", l->base.name, uv_strerror(err));
		return err;
	}
	set_rcvbuf(l);
	err = uv_udp_recv_start(&l->handle, on_udp_alloc, on_udp_recv);
	if (err != 0) {
		log_error("%s: cannot listen (udp): %s", l->base.name, uv_strerror(err));
		return err;
	}
	l->receiving = true;
	if (s->self == NULL) /* once, not per worker */
		log_info("listening on %s (udp)", l->base.name);
	return 0;
}

void
udp_listener_stop(struct udp_listener *l)
{
	if (l->base.srv->batch->l == l)
		batch_flush(l->base.srv);
	if (l->receiving) {
		if (!is_helper(l))
			uv_udp_recv_stop(&l->handle);
		l->receiving = false;
	}
}

void
udp_listener_close(struct udp_listener *l)
{
	if (l->closing)
		return;
	udp_listener_stop(l);
	l->closing = true;
	uv_close((uv_handle_t *)&l->handle, on_udp_close);
}
