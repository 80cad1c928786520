/*
 * udp: the UDP listeners. Datagrams are read with recvmmsg(2) (UV_UDP_RECVMMSG) into one
 * loop-owned buffer; each is answered from a query slot.
 *
 * Replies: those produced while a recvmmsg batch is being handled (blocked names, cache hits,
 * errors) are copied into the loop-owned batch and sent with one sendmmsg(2) when libuv reports
 * the end of the batch (the UV_UDP_MMSG_FREE call, or the nread 0 call of an empty read).
 * Others (upstream answers, large replies) go out with uv_udp_try_send(). Only when the socket
 * buffer is full is a reply copied into a queued uv_udp_send request. Writing to the socket
 * directly is safe because it is done only while libuv's own send queue is empty.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include "log.h"
#include "query.h"
#include "server_int.h"
#include "sockaddr.h"

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
};

int
udp_batch_new(struct udp_batch **out)
{
	struct udp_batch *b = calloc(1, sizeof(*b));

	if (b == NULL)
		return -ENOMEM;
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
		return;
	}
	if (l->closing || !l->receiving || nread < 0)
		return;
	s->stats.udp_queries++;
	if ((flags & UV_UDP_PARTIAL) != 0 ||
	    (addr->sa_family != AF_INET && addr->sa_family != AF_INET6)) {
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
	/* replies made before this call returns join the batch (only with recvmmsg: it is what
	 * guarantees a final call that flushes) */
	l->in_batch = (flags & UV_UDP_MMSG_CHUNK) != 0;
	query_process(q, (const uint8_t *)buf->base, (size_t)nread);
	l->in_batch = false;
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
	if (l->in_batch && len <= UDP_BATCH_SLOT && uv_udp_get_send_queue_count(&l->handle) == 0) {
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
on_udp_close(uv_handle_t *handle)
{
	struct udp_listener *l = handle->data;

	server_listener_closed(&l->base.srv->udp, &l->base);
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
	err = uv_udp_init_ex(s->loop, &l->handle, sa->sa_family | UV_UDP_RECVMMSG);
	if (err != 0) {
		log_error("%s: cannot open udp socket: %s", l->base.name, uv_strerror(err));
		server_listener_discard(&l->base);
		return err;
	}
	/* from here on the handle exists: the listener is closed by server_stop() */
	l->handle.data = l;
	server_listener_add(&s->udp, &l->base);

	err = server_reuseport(s, (uv_handle_t *)&l->handle, l->base.name);
	if (err == 0)
		err = uv_udp_bind(&l->handle, sa, flags);
	if (err != 0) {
		log_error("%s: cannot listen (udp): %s", l->base.name, uv_strerror(err));
		return err;
	}
	int size = UDP_SOCKET_RCVBUF;
	(void)uv_recv_buffer_size((uv_handle_t *)&l->handle, &size); /* best effort */
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
