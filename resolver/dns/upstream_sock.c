/*
 * upstream_sock: the pool of UDP sockets the upstream queries go out on.
 *
 * One pool (struct upstream_sockset) per server address: UPSTREAM_SOCKS slots, each empty or
 * holding a UDP socket bound to a random ephemeral port (a bind to port 0: Linux picks it at
 * random in ip_local_port_range) and connected to the server, so the kernel drops datagrams
 * from any other address or port. An attempt picks a slot at random; an empty slot, or one
 * whose socket has carried UPSTREAM_SOCK_QUERIES queries or is UPSTREAM_SOCK_MS old, gets a
 * fresh socket (the old one is retired: it takes no new query and closes once the attempts
 * registered on it have ended, so a late reply is still matched until the request's deadline).
 * A timer retires sockets past their age even when no query comes, so idle ports close.
 *
 * Several attempts share a socket; each holds a random ID that no other attempt on the socket
 * holds, and a reply is matched by (socket, ID) and then checked as before: the server's address
 * and port, QR, the question (dnsmsg_check_reply). A reply on a socket that has closed reaches
 * nobody (the kernel answers ICMP port unreachable); one on a live socket with an ID nobody
 * holds there is counted and dropped.
 *
 * An error reported on the socket (ICMP port unreachable from the server: ECONNREFUSED) fails
 * every attempt registered on it (they all went to that server) and retires the socket.
 *
 * Cost: opening a socket is five system calls (socket, bind, connect, getsockname, epoll_ctl)
 * and closing it two, once per UPSTREAM_SOCK_QUERIES queries; each query is one sendmsg, and
 * replies are read with recvmmsg, up to UPSTREAM_MMSG per call.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "upstream_int.h"

#define SOCK_FREE_MAX (4 * UPSTREAM_SOCKS)	/* closed socket structs kept for reuse */
#define SOCK_CHUNK    65536			/* libuv's recvmmsg chunk (UV__UDP_DGRAM_MAXSIZE) */

static void
on_sock_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
	struct upstream_sock *sk = handle->data;

	(void)suggested;
	buf->base = (char *)sk->u->mbuf;
	buf->len = UPSTREAM_MMSG * SOCK_CHUNK;
}

static void
on_sock_close(uv_handle_t *handle)
{
	struct upstream_sock *sk = handle->data;
	struct upstream *u = sk->u;

	INSIST(sk->set->nopen > 0);
	sk->set->nopen--;
	if (u->nfree_socks < SOCK_FREE_MAX && !u->closing) {
		sk->pool_next = u->free_socks;
		u->free_socks = sk;
		u->nfree_socks++;
	} else {
		free(sk);
	}
	upstream_handle_released(u);
}

static void
sock_close(struct upstream_sock *sk)
{
	if (sk->closing)
		return;
	sk->closing = true;
	uv_close((uv_handle_t *)&sk->udp, on_sock_close);
}

/* No new query goes to sk; it closes when its last attempt ends. */
static void
sock_retire(struct upstream_sock *sk)
{
	if (sk->retired)
		return;
	sk->retired = true;
	if (sk->set->slot[sk->slot] == sk)
		sk->set->slot[sk->slot] = NULL;
	if (sk->nattempts == 0)
		sock_close(sk);
}

static struct upstream_attempt *
sock_find(const struct upstream_sock *sk, uint16_t id)
{
	for (struct upstream_attempt *a = sk->ids[id & (UPSTREAM_SOCK_BUCKETS - 1)]; a != NULL;
	     a = a->idnext)
		if (a->id == id)
			return a;
	return NULL;
}

/* Every attempt on sk failed (an error on the socket). */
static void
sock_fail(struct upstream_sock *sk)
{
	sock_retire(sk);
	/* upstream_attempt_done() unregisters each attempt; callbacks it runs may end others (or
	 * close the upstream), which unregisters them too: take the first until none is left. The
	 * struct stays valid until its close callback, which runs from a later loop turn. */
	while (!upstream_link_empty(&sk->attempts)) {
		struct upstream_attempt *a =
			UPSTREAM_CONTAINER(sk->attempts.next, struct upstream_attempt, slink);
		upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
	}
}

static void
on_sock_recv(uv_udp_t *handle, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
	     unsigned flags)
{
	struct upstream_sock *sk = handle->data;
	struct upstream *u = sk->u;
	const uint8_t *p = (const uint8_t *)buf->base;

	if (sk->closing || (nread == 0 && addr == NULL))
		return;
	if (nread < 0) {
		/* ICMP port unreachable and the like, reported on the connected socket */
		log_debug("upstream: socket on port %u: %s", (unsigned)sk->port,
			  uv_strerror((int)nread));
		u->reading = true; /* their SERVFAILs share a sendmmsg too */
		sock_fail(sk);
		u->reading = false;
		return;
	}
	struct upstream_attempt *a = NULL;
	if (nread >= DNSMSG_HEADER_LEN && !(flags & UV_UDP_PARTIAL) && addr != NULL)
		a = sock_find(sk, (uint16_t)(p[0] << 8 | p[1]));
	bool tc = false;
	if (a == NULL ||
	    !upstream_same_addr(addr, (const struct sockaddr *)&a->req->servers->s[a->server].ss) ||
	    dnsmsg_check_reply(p, (size_t)nread, a->id, &a->req->q, &tc) != 0) {
		u->st.dropped_replies++;
		return;
	}
	enum upstream_result r = UPSTREAM_RESULT_TRUNCATED;
	if (!tc)
		r = dnsmsg_judge_reply(p, (size_t)nread) == 0 ? UPSTREAM_RESULT_REPLY
							       : UPSTREAM_RESULT_BAD;
	u->reading = true;
	upstream_attempt_done(a, r, p, (size_t)nread);
	u->reading = false;
}

static uint16_t
local_port(const uv_udp_t *udp)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);

	if (uv_udp_getsockname(udp, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)&ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)&ss)->sin6_port);
}

/* A fresh socket for set->slot[slot]: random ephemeral port, connected to the server. */
static int
sock_open(struct upstream *u, struct upstream_sockset *set, unsigned slot,
	  struct upstream_sock **out)
{
	struct upstream_sock *sk = u->free_socks;
	struct sockaddr_storage any;
	int err;

	if (u->mbuf == NULL) {
		u->mbuf = malloc(UPSTREAM_MMSG * SOCK_CHUNK);
		if (u->mbuf == NULL)
			return UV_ENOMEM;
	}
	if (sk != NULL) {
		u->free_socks = sk->pool_next;
		u->nfree_socks--;
	} else {
		sk = malloc(sizeof(*sk));
		if (sk == NULL)
			return UV_ENOMEM;
	}
	memset(sk, 0, sizeof(*sk));
	/* replies are read UPSTREAM_MMSG at a time (one recvmmsg instead of one recvmsg each) */
	err = uv_udp_init_ex(u->loop, &sk->udp, set->ss.ss_family | UV_UDP_RECVMMSG);
	if (err != 0) {
		free(sk);
		return err;
	}
	sk->u = u;
	sk->set = set;
	sk->udp.data = sk;
	sk->slot = slot;
	sk->born = uv_now(u->loop);
	upstream_link_init(&sk->attempts);
	set->nopen++;
	u->live++;
	memset(&any, 0, sizeof(any));
	any.ss_family = set->ss.ss_family;	/* wildcard address, port 0 */
	err = uv_udp_bind(&sk->udp, (const struct sockaddr *)&any, 0);
	if (err == 0)
		err = uv_udp_connect(&sk->udp, (const struct sockaddr *)&set->ss);
	if (err == 0)
		err = uv_udp_recv_start(&sk->udp, on_sock_alloc, on_sock_recv);
	if (err != 0) {
		sk->retired = true;
		sock_close(sk);
		return err;
	}
	sk->port = local_port(&sk->udp);
	u->st.sockets_opened++;
	set->slot[slot] = sk;
	*out = sk;
	return 0;
}

static bool
same_server(const struct upstream_sockset *set, const struct upstream_server *s)
{
	return upstream_same_addr((const struct sockaddr *)&set->ss,
				  (const struct sockaddr *)&s->ss) &&
	       (s->ss.ss_family != AF_INET6 ||
		((const struct sockaddr_in6 *)&set->ss)->sin6_scope_id ==
			((const struct sockaddr_in6 *)&s->ss)->sin6_scope_id);
}

static struct upstream_sockset *
set_get(struct upstream *u, const struct upstream_server *s)
{
	struct upstream_sockset *set;

	for (set = u->sets; set != NULL; set = set->next)
		if (same_server(set, s))
			return set;
	set = calloc(1, sizeof(*set));
	if (set == NULL)
		return NULL;
	memcpy(&set->ss, &s->ss, s->len);
	set->len = s->len;
	set->next = u->sets;
	u->sets = set;
	return set;
}

static bool
sock_due(const struct upstream_sock *sk, uint64_t now)
{
	return sk->uses >= UPSTREAM_SOCK_QUERIES || now - sk->born >= UPSTREAM_SOCK_MS;
}

int
upstream_sock_register(struct upstream_attempt *a)
{
	struct upstream *u = a->u;
	struct upstream_sockset *set = set_get(u, &a->req->servers->s[a->server]);
	uint64_t now = uv_now(u->loop);
	int err;

	if (set == NULL)
		return UV_ENOMEM;
	unsigned slot = upstream_random_id(u) & (UPSTREAM_SOCKS - 1);
	struct upstream_sock *sk = set->slot[slot];
	if (sk != NULL && sock_due(sk, now)) {
		sock_retire(sk);
		sk = NULL;
	}
	if (sk == NULL) {
		err = sock_open(u, set, slot, &sk);
		if (err != 0)
			return err;
	}
	/* at most UPSTREAM_SOCK_QUERIES IDs are taken on sk: a free one is found at once */
	uint16_t id;
	do
		id = upstream_random_id(u);
	while (sock_find(sk, id) != NULL);
	a->id = id;
	a->sock = sk;
	struct upstream_attempt **b = &sk->ids[id & (UPSTREAM_SOCK_BUCKETS - 1)];
	a->idnext = *b;
	*b = a;
	upstream_link_append(&sk->attempts, &a->slink);
	sk->nattempts++;
	sk->uses++;
	return 0;
}

void
upstream_sock_unregister(struct upstream_attempt *a)
{
	struct upstream_sock *sk = a->sock;

	if (sk == NULL)
		return;
	for (struct upstream_attempt **p = &sk->ids[a->id & (UPSTREAM_SOCK_BUCKETS - 1)]; ;
	     p = &(*p)->idnext) {
		INSIST(*p != NULL);
		if (*p == a) {
			*p = a->idnext;
			break;
		}
	}
	a->idnext = NULL;
	a->sock = NULL;
	upstream_link_remove(&a->slink);
	INSIST(sk->nattempts > 0);
	if (--sk->nattempts == 0 && sk->retired)
		sock_close(sk);
}

static void
on_sock_send(uv_udp_send_t *sr, int status)
{
	struct upstream_attempt *a = sr->data;

	if (status >= 0)
		a->u->st.sent_udp++;
	if (!a->finished) {
		if (status < 0) {
			log_debug("upstream: '%s': send: %s", a->req->servers->s[a->server].text,
				  uv_strerror(status));
			upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
		} else {
			upstream_attempt_start_timer(a);
		}
	}
	upstream_attempt_unpend(a);
}

int
upstream_sock_send(struct upstream_attempt *a)
{
	struct upstream_sock *sk = a->sock;
	uv_buf_t b = uv_buf_init((char *)a->qbuf + 2, (unsigned)a->qlen);
	int r;

	REQUIRE(sk != NULL);
	r = uv_udp_try_send(&sk->udp, &b, 1, NULL);
	if (r >= 0) {
		a->u->st.sent_udp++;
		upstream_attempt_start_timer(a);
		return 0;
	}
	if (r == UV_EAGAIN) {
		/* the socket buffer is full or sends are queued: queue this one */
		r = uv_udp_send(&a->send, &sk->udp, &b, 1, NULL, on_sock_send);
		if (r == 0) {
			a->send.data = a;
			a->pending++;
			return 0;
		}
	}
	/* e.g. ECONNREFUSED left on the socket by an earlier query: a fresh one for the next */
	sock_retire(sk);
	return r;
}

static void
on_sweep(uv_timer_t *t)
{
	struct upstream *u = t->data;
	uint64_t now = uv_now(u->loop);

	for (struct upstream_sockset *set = u->sets; set != NULL; set = set->next)
		for (unsigned i = 0; i < UPSTREAM_SOCKS; i++)
			if (set->slot[i] != NULL && sock_due(set->slot[i], now))
				sock_retire(set->slot[i]);
}

static void
on_sweep_close(uv_handle_t *handle)
{
	upstream_handle_released(handle->data);
}

void
upstream_sock_init(struct upstream *u)
{
	uv_timer_init(u->loop, &u->sweep);
	u->sweep.data = u;
	u->live++;
	uv_timer_start(&u->sweep, on_sweep, UPSTREAM_SOCK_MS, UPSTREAM_SOCK_MS);
	uv_unref((uv_handle_t *)&u->sweep);	/* does not keep the loop alive by itself */
}

static void
set_retire_all(struct upstream_sockset *set)
{
	for (unsigned i = 0; i < UPSTREAM_SOCKS; i++)
		if (set->slot[i] != NULL)
			sock_retire(set->slot[i]);
}

void
upstream_sock_prune(struct upstream *u, const struct upstream_servers *servers)
{
	for (struct upstream_sockset **p = &u->sets; *p != NULL;) {
		struct upstream_sockset *set = *p;
		bool used = false;
		for (size_t i = 0; i < servers->n && !used; i++)
			used = same_server(set, &servers->s[i]);
		if (!used)
			set_retire_all(set);
		if (!used && set->nopen == 0) {
			*p = set->next;
			free(set);
		} else {
			p = &set->next;
		}
	}
}

void
upstream_sock_close(struct upstream *u)
{
	for (struct upstream_sockset *set = u->sets; set != NULL; set = set->next)
		set_retire_all(set);
	if (!u->sweep_closing) {
		u->sweep_closing = true;
		uv_close((uv_handle_t *)&u->sweep, on_sweep_close);
	}
}

void
upstream_sock_free(struct upstream *u)
{
	while (u->sets != NULL) {
		struct upstream_sockset *set = u->sets;
		INSIST(set->nopen == 0);
		u->sets = set->next;
		free(set);
	}
	while (u->free_socks != NULL) {
		struct upstream_sock *sk = u->free_socks;
		u->free_socks = sk->pool_next;
		free(sk);
	}
	u->nfree_socks = 0;
	free(u->mbuf);
	u->mbuf = NULL;
}
