/*
 * upstream_harness: what the upstream loop tests share (test_upstream.c, test_upstream_pool.c):
 * fake upstream servers on the loopback in the test's own uv loop (answer, answer late, spoofed
 * ID, wrong port, wrong question, garbage, TC=1, TCP, silent), the environment (loop, config,
 * upstream), and helpers to query, run the loop until a counter is reached, and close.
 *
 * Header-only; include it after <cmocka.h>, "dnsmsg.h", "upstream.h" and "upstream_int.h".
 */
#ifndef VETO_TEST_UPSTREAM_HARNESS_H
#define VETO_TEST_UPSTREAM_HARNESS_H

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <uv.h>

#define FLAG_QR 0x8000
#define FLAG_TC 0x0200
#define FLAG_RD 0x0100
#define FLAG_RA 0x0080
#define FLAG_CD 0x0010

#define MAX_FAKES   4
#define MAX_DELAYED 400
#define MAX_CONNS   8
#define MAX_SEQ	    64
#define MAX_RESULTS 512

enum fake_mode {
	FAKE_ANSWER = 0,	/* answers at once (or after delay_ms) */
	FAKE_SILENT,		/* never answers */
	FAKE_SPOOF_ID,		/* a reply with another ID, then (good_after) the real one */
	FAKE_WRONG_PORT,	/* a reply from another port, then the real one */
	FAKE_WRONG_QUESTION,	/* a reply for another type, then the real one */
	FAKE_GARBAGE,		/* 5 octets, then the real one */
	FAKE_NOT_RESPONSE,	/* QR=0, then the real one */
	FAKE_TC,		/* TC=1 over UDP; the TCP listener (if any) answers fully */
	FAKE_SERVFAIL,		/* a valid reply with rcode SERVFAIL */
};

struct env;

struct fake {
	struct env *env;
	int index;
	enum fake_mode mode;
	bool good_after;	/* bad modes: send the real reply after the bad one */
	unsigned delay_ms;	/* ANSWER: answer late */
	unsigned tcp_records;	/* records in the TCP answer */
	bool tcp_silent;	/* the TCP side reads the query and never answers */
	bool tcp_spoof_first;	/* the TCP side first sends a reply with another ID */
	uint8_t ip[4];		/* the A record this server answers with */
	uv_udp_t udp;
	uv_udp_t other;		/* for FAKE_WRONG_PORT */
	uv_tcp_t listener;
	bool has_tcp;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	unsigned nudp, ntcp;
	uint8_t last[512];	/* last query received over UDP */
	size_t last_len;
	struct sockaddr_storage last_from;
	uint16_t ids[MAX_SEQ];
	uint16_t ports[MAX_SEQ];
};

struct delayed {
	bool used;
	uv_timer_t timer;
	struct fake *f;
	uint8_t buf[1024];
	size_t len;
	struct sockaddr_storage to;
};

struct conn {
	bool used;
	uv_tcp_t tcp;
	struct fake *f;
	uint8_t buf[1024];
	size_t have;
	uv_write_t wr;
	uint8_t out[4096];
};

struct result {
	int calls;
	int status;
	uint8_t reply[4096];
	size_t len;
	struct sockaddr_storage server;
	uint64_t at;		/* uv_now when called */
	int order;		/* global completion order */
	/* optional actions from inside the callback */
	struct env *env;
	bool requery;		/* issue the same query again */
	bool close_upstream;	/* call upstream_close */
};

struct env {
	uv_loop_t loop;
	struct fake fakes[MAX_FAKES];
	int nfakes;
	struct delayed delayed[MAX_DELAYED];
	struct conn conns[MAX_CONNS];
	struct config cfg;
	struct config_addr addrs[MAX_FAKES + 1];
	struct upstream *u;
	int closed;		
	int closed_order;
	int ncompleted;
	int seq[MAX_SEQ];	/* fake index of every UDP query received, in order */
	int nseq;
	bool in_api;		/* set around upstream_query/upstream_cancel calls */
	struct dnsmsg_query requery_q;
	struct result requery_r;
	struct upstream_wait *requery_w;
};

/* ------------------------------------------------------------------------------------------ */
/* DNS helpers */

static inline void
make_query(struct dnsmsg_query *q, const char *name, uint16_t qtype, bool do_bit, bool cd)
{
	const char *why = NULL;

	memset(q, 0, sizeof(*q));
	assert_int_equal(names_from_text(&q->qname, name, strlen(name), &why), 0);
	memcpy(q->qname_orig, q->qname.wire, q->qname.len);
	q->id = 0x4242;
	q->flags = FLAG_RD | (cd ? FLAG_CD : 0);
	q->qtype = qtype;
	q->qclass = 1;
	q->has_question = true;
	q->edns = true;
	q->do_bit = do_bit;
	q->edns_udp = 1232;
}

static inline uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Offset just past the question of a message, or 0. */
static inline size_t
question_end(const uint8_t *m, size_t len)
{
	size_t pos = 12;

	while (pos < len && m[pos] != 0) {
		if (m[pos] & 0xc0)
			return 0;
		pos += (size_t)m[pos] + 1;
	}
	pos += 1 + 4;
	return pos <= len ? pos : 0;
}

/* A reply to query with nrec A records of ip. Returns its length. */
static inline size_t
build_reply(const uint8_t *query, size_t qlen, uint16_t extra_flags, unsigned nrec,
	    const uint8_t ip[4], uint8_t *out, size_t cap)
{
	size_t qend = question_end(query, qlen);

	assert_true(qend > 12);
	assert_true(qend + nrec * 16 <= cap);
	memcpy(out, query, qend);
	wr16(out + 2, (uint16_t)(FLAG_QR | FLAG_RA | (rd16(query + 2) & (FLAG_RD | FLAG_CD)) |
				 extra_flags));
	wr16(out + 4, 1);
	wr16(out + 6, (uint16_t)nrec);
	wr16(out + 8, 0);
	wr16(out + 10, 0);
	size_t pos = qend;
	for (unsigned i = 0; i < nrec; i++) {
		static const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4 };
		memcpy(out + pos, rr, sizeof(rr));
		memcpy(out + pos + sizeof(rr), ip, 4);
		pos += sizeof(rr) + 4;
	}
	return pos;
}

/* The address of the first A record of a reply (0.0.0.0 when none). */
static inline uint32_t
reply_ip(const struct result *r)
{
	size_t pos = question_end(r->reply, r->len);
	uint8_t ip[4] = { 0 };

	if (pos != 0 && rd16(r->reply + 6) > 0 && pos + 16 <= r->len)
		memcpy(ip, r->reply + pos + 12, 4);
	return (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
}

static inline uint32_t
ip32(const uint8_t ip[4])
{
	return (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
}

static inline uint16_t
sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* ------------------------------------------------------------------------------------------ */
/* fake servers */

static inline void
fake_send(struct fake *f, uv_udp_t *from, const uint8_t *buf, size_t len,
	  const struct sockaddr *to)
{
	uv_buf_t b = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);

	assert_int_equal(uv_udp_try_send(from, &b, 1, to), (int)len);
	(void)f;
}

static inline void
on_delayed_close(uv_handle_t *h)
{
	struct delayed *d = h->data;

	d->used = false;
}

static inline void
on_delayed(uv_timer_t *t)
{
	struct delayed *d = t->data;

	fake_send(d->f, &d->f->udp, d->buf, d->len, (const struct sockaddr *)&d->to);
	uv_close((uv_handle_t *)t, on_delayed_close);
}

static inline void
send_later(struct fake *f, const uint8_t *buf, size_t len, const struct sockaddr *to,
	   unsigned ms)
{
	struct env *env = f->env;

	for (int i = 0; i < MAX_DELAYED; i++) {
		struct delayed *d = &env->delayed[i];
		if (d->used)
			continue;
		d->used = true;
		d->f = f;
		memcpy(d->buf, buf, len);
		d->len = len;
		memset(&d->to, 0, sizeof(d->to));
		memcpy(&d->to, to,
		       to->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						: sizeof(struct sockaddr_in6));
		assert_int_equal(uv_timer_init(&env->loop, &d->timer), 0);
		d->timer.data = d;
		assert_int_equal(uv_timer_start(&d->timer, on_delayed, ms, 0), 0);
		return;
	}
	fail_msg("out of delayed reply slots");
}

static inline void
on_fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char mem[65536];

	(void)h;
	(void)suggested;
	buf->base = mem;
	buf->len = sizeof(mem);
}

static inline void
on_fake_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
	     unsigned flags)
{
	struct fake *f = h->data;
	struct env *env = f->env;
	const uint8_t *q = (const uint8_t *)buf->base;
	uint8_t out[1024];
	size_t n;

	(void)flags;
	if (nread <= 0 || addr == NULL)
		return;
	if (f->nudp < MAX_SEQ) {
		f->ids[f->nudp] = rd16(q);
		memcpy(&f->last_from, addr,
		       addr->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						  : sizeof(struct sockaddr_in6));
		f->ports[f->nudp] = sa_port(&f->last_from);
	}
	f->nudp++;
	if (env->nseq < MAX_SEQ)
		env->seq[env->nseq++] = f->index;
	f->last_len = (size_t)nread < sizeof(f->last) ? (size_t)nread : sizeof(f->last);
	memcpy(f->last, q, f->last_len);
	if (f->mode == FAKE_SILENT)
		return;

	static const uint8_t bad_ip[4] = { 10, 6, 6, 6 };
	n = build_reply(q, (size_t)nread, 0, 1, bad_ip, out, sizeof(out));
	switch (f->mode) {
	case FAKE_ANSWER:
	case FAKE_SILENT:
		break;
	case FAKE_SPOOF_ID:
		wr16(out, (uint16_t)(rd16(q) ^ 0x5a5a));
		fake_send(f, &f->udp, out, n, addr);
		break;
	case FAKE_WRONG_PORT:
		fake_send(f, &f->other, out, n, addr);
		break;
	case FAKE_WRONG_QUESTION: {
		size_t qend = question_end(out, n);
		wr16(out + qend - 4, (uint16_t)(rd16(out + qend - 4) ^ 0x0002));
		fake_send(f, &f->udp, out, n, addr);
		break;
	}
	case FAKE_GARBAGE:
		fake_send(f, &f->udp, out, 5, addr);
		break;
	case FAKE_NOT_RESPONSE:
		wr16(out + 2, (uint16_t)(rd16(out + 2) & ~FLAG_QR));
		fake_send(f, &f->udp, out, n, addr);
		break;
	case FAKE_TC:
		n = build_reply(q, (size_t)nread, FLAG_TC, 0, f->ip, out, sizeof(out));
		fake_send(f, &f->udp, out, n, addr);
		return;
	case FAKE_SERVFAIL:
		n = build_reply(q, (size_t)nread, 0, 0, f->ip, out, sizeof(out));
		out[3] = (uint8_t)((out[3] & 0xf0) | 2);
		fake_send(f, &f->udp, out, n, addr);
		return;
	}
	if (f->mode != FAKE_ANSWER && !f->good_after)
		return;
	n = build_reply(q, (size_t)nread, 0, 1, f->ip, out, sizeof(out));
	if (f->delay_ms > 0)
		send_later(f, out, n, addr, f->delay_ms);
	else
		fake_send(f, &f->udp, out, n, addr);
}

static inline void
on_conn_written(uv_write_t *wr, int status)
{
	(void)wr;
	(void)status;
}

static inline void
on_conn_close(uv_handle_t *h)
{
	struct conn *c = h->data;

	c->used = false;
}

static inline void
on_conn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	struct fake *f = c->f;

	if (nread < 0) {
		if (!uv_is_closing((uv_handle_t *)s))
			uv_close((uv_handle_t *)s, on_conn_close);
		return;
	}
	if (c->have + (size_t)nread > sizeof(c->buf))
		nread = (ssize_t)(sizeof(c->buf) - c->have);
	memcpy(c->buf + c->have, buf->base, (size_t)nread);
	c->have += (size_t)nread;
	if (c->have < 2 || c->have < 2 + (size_t)rd16(c->buf))
		return;
	f->ntcp++;
	if (f->tcp_silent)
		return;
	size_t n = build_reply(c->buf + 2, rd16(c->buf), 0, f->tcp_records, f->ip, c->out + 2,
			       sizeof(c->out) - 2);
	wr16(c->out, (uint16_t)n);
	c->have = 0;
	if (f->tcp_spoof_first) {
		/* the same message twice, the first with a wrong ID */
		assert_true(2 * (n + 2) <= sizeof(c->out));
		memcpy(c->out + n + 2, c->out, n + 2);
		wr16(c->out + 2, (uint16_t)(rd16(c->out + 2) ^ 0x5a5a));
		n = 2 * (n + 2) - 2;
	}
	uv_buf_t b = uv_buf_init((char *)c->out, (unsigned)(n + 2));
	assert_int_equal(uv_write(&c->wr, s, &b, 1, on_conn_written), 0);
}

static inline void
on_fake_connection(uv_stream_t *listener, int status)
{
	struct fake *f = listener->data;
	struct env *env = f->env;

	assert_int_equal(status, 0);
	for (int i = 0; i < MAX_CONNS; i++) {
		struct conn *c = &env->conns[i];
		if (c->used)
			continue;
		memset(c, 0, sizeof(*c));
		c->used = true;
		c->f = f;
		assert_int_equal(uv_tcp_init(&env->loop, &c->tcp), 0);
		c->tcp.data = c;
		assert_int_equal(uv_accept(listener, (uv_stream_t *)&c->tcp), 0);
		assert_int_equal(uv_read_start((uv_stream_t *)&c->tcp, on_fake_alloc, on_conn_read),
				 0);
		return;
	}
	fail_msg("out of connection slots");
}

static inline void
set_loopback(struct sockaddr_storage *ss, int family, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		sin6->sin6_addr = in6addr_loopback;
	}
}

/* Adds a fake server on the loopback of family; tcp: also a TCP listener on the same port. */
static inline struct fake *
fake_add(struct env *env, int family, enum fake_mode mode, bool tcp)
{
	struct fake *f = &env->fakes[env->nfakes];
	int namelen;

	assert_true(env->nfakes < MAX_FAKES);
	memset(f, 0, sizeof(*f));
	f->env = env;
	f->index = env->nfakes++;
	f->mode = mode;
	f->good_after = true;
	f->tcp_records = 40;
	f->ip[0] = 192;
	f->ip[1] = 0;
	f->ip[2] = 2;
	f->ip[3] = (uint8_t)(1 + f->index);
	for (int tries = 0; tries < 20; tries++) {
		set_loopback(&f->addr, family, 0);
		assert_int_equal(uv_udp_init(&env->loop, &f->udp), 0);
		f->udp.data = f;
		assert_int_equal(uv_udp_bind(&f->udp, (const struct sockaddr *)&f->addr, 0), 0);
		namelen = sizeof(f->addr);
		assert_int_equal(uv_udp_getsockname(&f->udp, (struct sockaddr *)&f->addr, &namelen),
				 0);
		f->addrlen = (socklen_t)namelen;
		if (!tcp)
			break;
		/* the TCP listener needs the same port number */
		assert_int_equal(uv_tcp_init(&env->loop, &f->listener), 0);
		f->listener.data = f;
		if (uv_tcp_bind(&f->listener, (const struct sockaddr *)&f->addr, 0) == 0 &&
		    uv_listen((uv_stream_t *)&f->listener, 8, on_fake_connection) == 0) {
			f->has_tcp = true;
			break;
		}
		uv_close((uv_handle_t *)&f->listener, NULL);
		uv_close((uv_handle_t *)&f->udp, NULL);
		uv_run(&env->loop, UV_RUN_NOWAIT);
	}
	assert_true(!tcp || f->has_tcp);
	assert_int_equal(uv_udp_recv_start(&f->udp, on_fake_alloc, on_fake_recv), 0);
	struct sockaddr_storage other;
	set_loopback(&other, family, 0);
	assert_int_equal(uv_udp_init(&env->loop, &f->other), 0);
	assert_int_equal(uv_udp_bind(&f->other, (const struct sockaddr *)&other, 0), 0);
	return f;
}

/* A loopback address where nothing listens (UDP and TCP): bound, then closed. */
static inline void
dead_addr(struct env *env, struct sockaddr_storage *ss, socklen_t *len)
{
	uv_udp_t h;
	int namelen = sizeof(*ss);

	set_loopback(ss, AF_INET, 0);
	assert_int_equal(uv_udp_init(&env->loop, &h), 0);
	assert_int_equal(uv_udp_bind(&h, (const struct sockaddr *)ss, 0), 0);
	assert_int_equal(uv_udp_getsockname(&h, (struct sockaddr *)ss, &namelen), 0);
	*len = (socklen_t)namelen;
	uv_close((uv_handle_t *)&h, NULL);
	uv_run(&env->loop, UV_RUN_NOWAIT);
}

/* ------------------------------------------------------------------------------------------ */
/* environment */

static inline void
on_guard(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until *counter >= target (or, with counter NULL, for max_ms). */
static inline bool
run_until(struct env *env, const int *counter, int target, unsigned max_ms)
{
	uv_timer_t guard;
	bool expired = false;

	assert_int_equal(uv_timer_init(&env->loop, &guard), 0);
	guard.data = &expired;
	assert_int_equal(uv_timer_start(&guard, on_guard, max_ms, 0), 0);
	while (!expired && (counter == NULL || *counter < target))
		uv_run(&env->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&guard, NULL);
	uv_run(&env->loop, UV_RUN_NOWAIT);
	return counter == NULL || *counter >= target;
}

static inline void
run_for(struct env *env, unsigned ms)
{
	run_until(env, NULL, 0, ms);
}

static inline void
env_config(struct env *env, uint32_t timeout_ms)
{
	memset(&env->cfg, 0, sizeof(env->cfg));
	for (int i = 0; i < env->nfakes; i++) {
		memcpy(&env->addrs[i].ss, &env->fakes[i].addr, sizeof(env->addrs[i].ss));
		env->addrs[i].len = env->fakes[i].addrlen;
	}
	env->cfg.upstream.servers = env->addrs;
	env->cfg.upstream.nservers = (size_t)env->nfakes;
	env->cfg.upstream.timeout_ms = timeout_ms;
}

static inline void
env_start(struct env *env, uint32_t timeout_ms)
{
	env_config(env, timeout_ms);
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &env->u), 0);
}

static inline void on_done(void *arg, int status, const uint8_t *reply, size_t len,
		    const struct sockaddr *server);

static inline void
query(struct env *env, const struct dnsmsg_query *q, struct result *r, struct upstream_wait **w)
{
	struct upstream_wait *tmp;

	r->env = env;
	env->in_api = true;
	assert_int_equal(upstream_query(env->u, q, on_done, r, w ? w : &tmp), 0);
	env->in_api = false;
	assert_int_equal(r->calls, 0);	/* never synchronous */
}

static inline void
cancel(struct env *env, struct upstream_wait *w)
{
	env->in_api = true;
	upstream_cancel(w);
	env->in_api = false;
}

static inline void
on_closed(void *arg)
{
	struct env *env = arg;

	assert_false(env->closed);
	env->closed = 1;
	env->closed_order = ++env->ncompleted;
}

static inline void
on_done(void *arg, int status, const uint8_t *reply, size_t len, const struct sockaddr *server)
{
	struct result *r = arg;
	struct env *env = r->env;

	assert_false(env->in_api);
	r->calls++;
	r->status = status;
	r->at = uv_now(&env->loop);
	r->order = ++env->ncompleted;
	r->len = 0;
	if (status == 0) {
		assert_non_null(reply);
		assert_non_null(server);
		assert_true(len <= sizeof(r->reply));
		memcpy(r->reply, reply, len);
		r->len = len;
		memcpy(&r->server, server,
		       server->sa_family == AF_INET ? sizeof(struct sockaddr_in)
						    : sizeof(struct sockaddr_in6));
	}
	if (r->requery) {
		r->requery = false;
		env->in_api = true;
		assert_int_equal(upstream_query(env->u, &env->requery_q, on_done, &env->requery_r,
						&env->requery_w),
				 0);
		env->in_api = false;
	}
	if (r->close_upstream) {
		r->close_upstream = false;
		upstream_close(env->u, on_closed, env);
	}
}

static inline void
close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static inline int
setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));

	if (env == NULL || uv_loop_init(&env->loop) != 0)
		return -1;
	env->requery_r.env = env;
	*state = env;
	return 0;
}

static inline int
teardown(void **state)
{
	struct env *env = *state;

	if (env->u != NULL && !env->closed) {
		upstream_close(env->u, on_closed, env);
		run_until(env, &env->closed, 1, 5000);
	}
	assert_true(env->u == NULL || env->closed);
	uv_walk(&env->loop, close_any, NULL);
	uv_run(&env->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&env->loop), 0);
	free(env);
	return 0;
}

static inline struct upstream_stats
stats(struct env *env)
{
	struct upstream_stats st;

	upstream_get_stats(env->u, &st);
	return st;
}

static inline bool
same_server(const struct result *r, const struct fake *f)
{
	return r->server.ss_family == f->addr.ss_family && sa_port(&r->server) == sa_port(&f->addr);
}

/* Queries name (type qtype, DO bit as given, CD clear) and runs the loop until the callback has
 * run, within max_ms. */
static inline void
ask(struct env *env, const char *name, uint16_t qtype, bool do_bit, struct result *r,
    unsigned max_ms)
{
	struct dnsmsg_query q;

	make_query(&q, name, qtype, do_bit, false);
	query(env, &q, r, NULL);
	assert_true(run_until(env, &r->calls, 1, max_ms));
}

/* The callback ran exactly once, with this status. */
static inline void
expect_done(const struct result *r, int status)
{
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->status, status);
}

/* Closes the upstream and runs the loop until its close callback has run. */
static inline void
close_and_wait(struct env *env)
{
	upstream_close(env->u, on_closed, env);
	assert_true(run_until(env, &env->closed, 1, 3000));
}

#endif
