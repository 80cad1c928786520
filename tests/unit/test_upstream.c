/*
 * Loop tests for resolver/upstream.c and upstream_tcp.c: a real uv loop on 127.0.0.1 with fake
 * upstream servers (uv UDP sockets and TCP listeners in the same loop) that answer, answer late,
 * answer with a spoofed ID, from a wrong port, for a wrong question, with garbage, TC=1 (and
 * fully over TCP), or not at all. Every test checks callback counts and statuses, and the
 * teardown checks that upstream_close() completes and uv_loop_close() returns 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "dnsmsg.h"
#include "upstream.h"
#include "upstream_int.h"

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

static void
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

static uint16_t
rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void
wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* Offset just past the question of a message, or 0. */
static size_t
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
static size_t
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
static uint32_t
reply_ip(const struct result *r)
{
	size_t pos = question_end(r->reply, r->len);
	uint8_t ip[4] = { 0 };

	if (pos != 0 && rd16(r->reply + 6) > 0 && pos + 16 <= r->len)
		memcpy(ip, r->reply + pos + 12, 4);
	return (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
}

static uint32_t
ip32(const uint8_t ip[4])
{
	return (uint32_t)ip[0] << 24 | (uint32_t)ip[1] << 16 | (uint32_t)ip[2] << 8 | ip[3];
}

static uint16_t
sa_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
}

/* ------------------------------------------------------------------------------------------ */
/* fake servers */

static void
fake_send(struct fake *f, uv_udp_t *from, const uint8_t *buf, size_t len,
	  const struct sockaddr *to)
{
	uv_buf_t b = uv_buf_init((char *)(uintptr_t)buf, (unsigned)len);

	assert_int_equal(uv_udp_try_send(from, &b, 1, to), (int)len);
	(void)f;
}

static void
on_delayed_close(uv_handle_t *h)
{
	struct delayed *d = h->data;

	d->used = false;
}

static void
on_delayed(uv_timer_t *t)
{
	struct delayed *d = t->data;

	fake_send(d->f, &d->f->udp, d->buf, d->len, (const struct sockaddr *)&d->to);
	uv_close((uv_handle_t *)t, on_delayed_close);
}

static void
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

static void
on_fake_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char mem[65536];

	(void)h;
	(void)suggested;
	buf->base = mem;
	buf->len = sizeof(mem);
}

static void
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

static void
on_conn_written(uv_write_t *wr, int status)
{
	(void)wr;
	(void)status;
}

static void
on_conn_close(uv_handle_t *h)
{
	struct conn *c = h->data;

	c->used = false;
}

static void
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

static void
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

static void
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
static struct fake *
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
static void
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

static void
on_guard(uv_timer_t *t)
{
	*(bool *)t->data = true;
}

/* Runs the loop until *counter >= target (or, with counter NULL, for max_ms). */
static bool
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

static void
run_for(struct env *env, unsigned ms)
{
	run_until(env, NULL, 0, ms);
}

static void
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

static void
env_start(struct env *env, uint32_t timeout_ms)
{
	env_config(env, timeout_ms);
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &env->u), 0);
}

static void on_done(void *arg, int status, const uint8_t *reply, size_t len,
		    const struct sockaddr *server);

static void
query(struct env *env, const struct dnsmsg_query *q, struct result *r, struct upstream_wait **w)
{
	struct upstream_wait *tmp;

	r->env = env;
	env->in_api = true;
	assert_int_equal(upstream_query(env->u, q, on_done, r, w ? w : &tmp), 0);
	env->in_api = false;
	assert_int_equal(r->calls, 0);	/* never synchronous */
}

static void
cancel(struct env *env, struct upstream_wait *w)
{
	env->in_api = true;
	upstream_cancel(w);
	env->in_api = false;
}

static void
on_closed(void *arg)
{
	struct env *env = arg;

	assert_false(env->closed);
	env->closed = 1;
	env->closed_order = ++env->ncompleted;
}

static void
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

static void
close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static int
setup(void **state)
{
	struct env *env = calloc(1, sizeof(*env));

	if (env == NULL || uv_loop_init(&env->loop) != 0)
		return -1;
	env->requery_r.env = env;
	*state = env;
	return 0;
}

static int
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

static struct upstream_stats
stats(struct env *env)
{
	struct upstream_stats st;

	upstream_get_stats(env->u, &st);
	return st;
}

static bool
same_server(const struct result *r, const struct fake *f)
{
	return r->server.ss_family == f->addr.ss_family && sa_port(&r->server) == sa_port(&f->addr);
}

/* Queries name (type qtype, DO bit as given, CD clear) and runs the loop until the callback has
 * run, within max_ms. */
static void
ask(struct env *env, const char *name, uint16_t qtype, bool do_bit, struct result *r,
    unsigned max_ms)
{
	struct dnsmsg_query q;

	make_query(&q, name, qtype, do_bit, false);
	query(env, &q, r, NULL);
	assert_true(run_until(env, &r->calls, 1, max_ms));
}

/* The callback ran exactly once, with this status. */
static void
expect_done(const struct result *r, int status)
{
	assert_int_equal(r->calls, 1);
	assert_int_equal(r->status, status);
}

/* Closes the upstream and runs the loop until its close callback has run. */
static void
close_and_wait(struct env *env)
{
	upstream_close(env->u, on_closed, env);
	assert_true(run_until(env, &env->closed, 1, 3000));
}

/* ------------------------------------------------------------------------------------------ */
/* tests */

static void
test_answer(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct result r = { 0 };

	env_start(env, 1000);
	ask(env, "WWW.Example.COM", 1, false, &r, 3000);
	run_for(env, 20);
	expect_done(&r, 0);
	assert_int_equal(reply_ip(&r), ip32(f->ip));
	assert_true(same_server(&r, f));
	assert_int_equal(f->nudp, 1);
	/* what the server saw: the canonical name, RD, OPT, from an ephemeral port */
	assert_int_equal(rd16(f->last + 2) & FLAG_RD, FLAG_RD);
	assert_int_equal(rd16(f->last + 10), 1);
	assert_memory_equal(f->last + 12, "\3www\7example\3com\0", 17);
	assert_int_not_equal(f->ports[0], 0);
	assert_int_not_equal(f->ports[0], sa_port(&f->addr));
	struct upstream_stats st = stats(env);
	assert_int_equal(st.queries, 1);
	assert_int_equal(st.sent_udp, 1);
	assert_int_equal(st.sent_tcp, 0);
	assert_int_equal(st.timeouts, 0);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.dropped_replies, 0);
}

/* Sequential queries use fresh IDs, and sockets (source ports) picked at random from the pool. */
static void
test_fresh_port_and_id(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct dnsmsg_query q;
	struct result r[8];
	int ports = 0, ids = 0;

	memset(r, 0, sizeof(r));
	env_start(env, 1000);
	make_query(&q, "example.com", 1, false, false);
	for (int i = 0; i < 8; i++) {
		query(env, &q, &r[i], NULL);
		assert_true(run_until(env, &r[i].calls, 1, 3000));
		assert_int_equal(r[i].status, 0);
	}
	assert_int_equal(f->nudp, 8);
	for (int i = 1; i < 8; i++) {
		ports += f->ports[i] != f->ports[i - 1];
		ids += f->ids[i] != f->ids[i - 1];
	}
	/* an ID repeat may happen by chance, not six times out of seven; a port repeats when two
	 * queries pick the same pool slot (1 in UPSTREAM_SOCKS), not every time */
	assert_true(ports >= 2);
	assert_true(ids >= 6);
}

/* Counts the pool's sockets: open (slot or retired), in a slot, the most uses of a slot's. */
static void
pool_count(const struct upstream *u, unsigned *open, unsigned *slots, unsigned *max_uses)
{
	*open = *slots = *max_uses = 0;
	for (const struct upstream_sockset *set = u->sets; set != NULL; set = set->next) {
		*open += set->nopen;
		for (unsigned i = 0; i < UPSTREAM_SOCKS; i++) {
			if (set->slot[i] == NULL)
				continue;
			(*slots)++;
			if (set->slot[i]->uses > *max_uses)
				*max_uses = set->slot[i]->uses;
		}
	}
}

/* The pool: 3,000 queries in batches of 100 in flight. No socket carries more than
 * UPSTREAM_SOCK_QUERIES queries, sockets are retired and replaced (more opened than the pool
 * holds), the descriptors in use stay bounded, and with no traffic every socket is retired and
 * closed after its age (the sweep). */
static void
test_pool_rotation(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	static struct result r[100];
	struct dnsmsg_query q;
	char name[32];
	unsigned open, slots, max_uses, most_open = 0;

	env_start(env, 3000);
	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < 100; i++) {
			r[i] = (struct result){ 0 };
			snprintf(name, sizeof(name), "p%d-%d.example", round, i);
			make_query(&q, name, 1, false, false);
			query(env, &q, &r[i], NULL);
		}
		for (int i = 0; i < 100; i++) {
			assert_true(run_until(env, &r[i].calls, 1, 5000));
			assert_int_equal(r[i].status, 0);
		}
		pool_count(env->u, &open, &slots, &max_uses);
		assert_true(max_uses <= UPSTREAM_SOCK_QUERIES);
		assert_true(slots <= UPSTREAM_SOCKS);
		if (open > most_open)
			most_open = open;
	}
	struct upstream_stats st = stats(env);
	assert_int_equal(f->nudp, 3000);
	assert_int_equal(st.sent_udp, 3000);
	assert_int_equal(st.dropped_replies, 0);
	/* 3,000 queries do not fit in UPSTREAM_SOCKS sockets of UPSTREAM_SOCK_QUERIES each */
	assert_true(st.sockets_opened >= 3000 / UPSTREAM_SOCK_QUERIES);
	assert_true(st.sockets_opened > UPSTREAM_SOCKS);
	/* answered at once, so retired sockets close at once: the pool and little more */
	assert_true(most_open <= UPSTREAM_SOCKS + 2);
	/* idle: the sweep retires every socket within two periods and closes it */
	run_for(env, 2 * UPSTREAM_SOCK_MS + 200);
	pool_count(env->u, &open, &slots, &max_uses);
	assert_int_equal(slots, 0);
	assert_int_equal(open, 0);
}

/* Attempts on one socket hold distinct IDs, and a reply is matched on its socket only: the
 * real reply of each of 100 queries in flight at once is taken (none dropped), with no more
 * sockets than the pool holds. */
static void
test_pool_shared_socket(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	static struct result r[100];
	struct dnsmsg_query q;
	char name[32];
	unsigned open, slots, max_uses;

	f->delay_ms = 200;
	env_start(env, 3000);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d.example", i);
		make_query(&q, name, 1, false, false);
		query(env, &q, &r[i], NULL);
	}
	assert_true(run_until(env, (const int *)&f->nudp, 100, 3000));
	pool_count(env->u, &open, &slots, &max_uses);
	assert_true(open <= UPSTREAM_SOCKS);
	assert_true(max_uses >= 100 / UPSTREAM_SOCKS);	/* several queries per socket */
	for (const struct upstream_sockset *set = env->u->sets; set != NULL; set = set->next) {
		for (unsigned i = 0; i < UPSTREAM_SOCKS; i++) {
			const struct upstream_sock *sk = set->slot[i];
			if (sk == NULL)
				continue;
			assert_int_equal(sk->nattempts, sk->uses);
			for (unsigned b = 0; b < UPSTREAM_SOCK_BUCKETS; b++)
				for (const struct upstream_attempt *a = sk->ids[b]; a != NULL;
				     a = a->idnext) {
					assert_ptr_equal(a->sock, sk);
					for (const struct upstream_attempt *o = a->idnext; o != NULL;
					     o = o->idnext)
						assert_int_not_equal(a->id, o->id);
				}
		}
	}
	for (int i = 0; i < 100; i++) {
		assert_true(run_until(env, &r[i].calls, 1, 5000));
		assert_int_equal(r[i].status, 0);
	}
	assert_int_equal(stats(env).dropped_replies, 0);
}

struct bad_case {
	const char *name;
	enum fake_mode mode;
	bool good_after;
	unsigned dropped;	/* counted by upstream (the kernel filters other ports) */
};

static const struct bad_case bad_cases[] = {
	{ "spoofed id", FAKE_SPOOF_ID, true, 1 },
	{ "wrong port", FAKE_WRONG_PORT, true, 0 },
	{ "wrong question", FAKE_WRONG_QUESTION, true, 1 },
	{ "garbage", FAKE_GARBAGE, true, 1 },
	{ "not a response", FAKE_NOT_RESPONSE, true, 1 },
	{ "spoofed id only", FAKE_SPOOF_ID, false, 1 },
	{ "wrong port only", FAKE_WRONG_PORT, false, 0 },
	{ "wrong question only", FAKE_WRONG_QUESTION, false, 1 },
	{ "garbage only", FAKE_GARBAGE, false, 1 },
};

/* A bad reply never ends an attempt: the good one that follows is accepted; without one the
 * attempt times out and the next server answers. */
static void
test_bad_replies(void **state)
{
	struct env *env = *state;
	struct fake *bad = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct fake *good = fake_add(env, AF_INET, FAKE_ANSWER, false);
	uint64_t dropped = 0, timeouts = 0;
	char name[64];

	env_start(env, 200);
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		struct result r = { 0 };
		unsigned bad_before = bad->nudp, good_before = good->nudp;

		print_message("case: %s\n", c->name);
		bad->mode = c->mode;
		bad->good_after = c->good_after;
		snprintf(name, sizeof(name), "case%zu.example", i);
		ask(env, name, 1, false, &r, 3000);
		run_for(env, 10);
		expect_done(&r, 0);
		assert_int_equal(bad->nudp - bad_before, 1);
		dropped += c->dropped;
		if (c->good_after) {
			assert_int_equal(reply_ip(&r), ip32(bad->ip));
			assert_int_equal(good->nudp - good_before, 0);
		} else {
			timeouts++;
			assert_int_equal(reply_ip(&r), ip32(good->ip));
			assert_true(same_server(&r, good));
			assert_int_equal(good->nudp - good_before, 1);
		}
		struct upstream_stats st = stats(env);
		assert_int_equal(st.dropped_replies, dropped);
		assert_int_equal(st.timeouts, timeouts);
		assert_int_equal(st.failed, 0);
		/* the bad server must not be skipped by the next case */
		bad->mode = FAKE_ANSWER;
		bad->good_after = true;
		struct result ok = { 0 };
		snprintf(name, sizeof(name), "heal%zu.example", i);
		ask(env, name, 1, false, &ok, 3000);
		assert_int_equal(ok.status, 0);
	}
}

struct late_case {
	unsigned delay_ms;
	uint32_t timeout_ms;
	int answered_by;	/* fake index */
	unsigned timeouts;
	bool second_silent;
	uint64_t late_replies;
};

static const struct late_case late_cases[] = {
	{ 50, 1000, 0, 0, false, 0 },	/* late but within the timeout */
	{ 400, 150, 1, 1, false, 0 },	/* after the timeout: the second server answers */
	/* after the timeout, the second server silent: the first attempt's socket still listens
	 * and takes the late reply (at 450 ms, the second attempt runs until 600 ms) */
	{ 450, 300, 0, 1, true, 1 },
};

static void
test_late_reply(void **state)
{
	struct env *env = *state;

	for (size_t i = 0; i < sizeof(late_cases) / sizeof(late_cases[0]); i++) {
		const struct late_case *c = &late_cases[i];
		struct result r = { 0 };

		env->nfakes = 0;
		struct fake *slow = fake_add(env, AF_INET, FAKE_ANSWER, false);
		fake_add(env, AF_INET, c->second_silent ? FAKE_SILENT : FAKE_ANSWER, false);
		slow->delay_ms = c->delay_ms;
		env_start(env, c->timeout_ms);
		ask(env, "late.example", 1, false, &r, 3000);
		/* let the late reply (if any) hit the closed socket */
		run_for(env, c->delay_ms + 50);
		expect_done(&r, 0);
		assert_true(same_server(&r, &env->fakes[c->answered_by]));
		assert_int_equal(reply_ip(&r), ip32(env->fakes[c->answered_by].ip));
		assert_int_equal(stats(env).timeouts, c->timeouts);
		assert_int_equal(stats(env).late_replies, c->late_replies);
		/* next case: a fresh upstream and fresh fakes */
		close_and_wait(env);
		env->closed = 0;
		env->u = NULL;
		for (int k = 0; k < env->nfakes; k++) {
			uv_close((uv_handle_t *)&env->fakes[k].udp, NULL);
			uv_close((uv_handle_t *)&env->fakes[k].other, NULL);
		}
		run_for(env, 5);
	}
}

/* A SERVFAIL is not an answer: the next server is asked; when every server answers so, the
 * request fails at once without asking any server twice. */
static void
test_bad_rcode_fails_over(void **state)
{
	struct env *env = *state;
	struct result r = { 0 }, r2 = { 0 };

	struct fake *bad = fake_add(env, AF_INET, FAKE_SERVFAIL, false);
	struct fake *good = fake_add(env, AF_INET, FAKE_ANSWER, false);
	env_start(env, 2000);
	uint64_t t0 = uv_now(&env->loop);
	ask(env, "sf.example", 1, false, &r, 3000);
	expect_done(&r, 0);
	assert_true(same_server(&r, good));
	assert_int_equal(reply_ip(&r), ip32(good->ip));
	assert_true(r.at - t0 < 1000);
	assert_int_equal(stats(env).bad_replies, 1);
	assert_int_equal(stats(env).timeouts, 0);

	good->mode = FAKE_SERVFAIL;
	unsigned before = bad->nudp + good->nudp;
	t0 = uv_now(&env->loop);
	ask(env, "sf2.example", 1, false, &r2, 3000);
	expect_done(&r2, -ETIMEDOUT);
	assert_true(r2.at - t0 < 1000);
	assert_int_equal(bad->nudp + good->nudp - before, 2);
	assert_int_equal(stats(env).bad_replies, 3);
}

/* Every server silent: -ETIMEDOUT after UPSTREAM_MAX_ATTEMPTS attempts, within attempts x
 * timeout, failing over 0, 1, 0. */
static void
test_all_timeout(void **state)
{
	struct env *env = *state;
	struct result r = { 0 };

	fake_add(env, AF_INET, FAKE_SILENT, false);
	fake_add(env, AF_INET, FAKE_SILENT, false);
	env_start(env, 100);
	uint64_t t0 = uv_now(&env->loop);
	ask(env, "silent.example", 1, false, &r, 3000);
	run_for(env, 20);
	expect_done(&r, -ETIMEDOUT);
	assert_true(r.at - t0 >= 3 * 100 - 5);
	assert_true(r.at - t0 <= 3 * 100 + 150);
	assert_int_equal(env->nseq, UPSTREAM_MAX_ATTEMPTS);
	assert_int_equal(env->seq[0], 0);
	assert_int_equal(env->seq[1], 1);
	assert_int_equal(env->seq[2], 0);
	struct upstream_stats st = stats(env);
	assert_int_equal(st.timeouts, 3);
	assert_int_equal(st.failed, 1);
	assert_int_equal(st.sent_udp, 3);
}

static void
test_failover_order(void **state)
{
	struct env *env = *state;
	struct result r = { 0 };

	fake_add(env, AF_INET, FAKE_SILENT, false);
	fake_add(env, AF_INET, FAKE_SILENT, false);
	struct fake *c = fake_add(env, AF_INET, FAKE_ANSWER, false);
	env_start(env, 100);
	ask(env, "order.example", 1, false, &r, 3000);
	assert_int_equal(r.status, 0);
	assert_true(same_server(&r, c));
	assert_int_equal(env->nseq, 3);
	for (int i = 0; i < 3; i++)
		assert_int_equal(env->seq[i], i);
}

/* A closed port (ICMP unreachable on the connected socket) fails over at once. */
static void
test_refused_fails_over_fast(void **state)
{
	struct env *env = *state;
	struct result r = { 0 };

	fake_add(env, AF_INET, FAKE_ANSWER, false);
	env_config(env, 2000);
	/* server 0: a dead port, server 1: the fake */
	env->addrs[1] = env->addrs[0];
	dead_addr(env, &env->addrs[0].ss, &env->addrs[0].len);
	env->cfg.upstream.nservers = 2;
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &env->u), 0);
	uint64_t t0 = uv_now(&env->loop);
	ask(env, "refused.example", 1, false, &r, 3000);
	assert_int_equal(r.status, 0);
	assert_true(same_server(&r, &env->fakes[0]));
	assert_true(r.at - t0 < 1000);
	assert_int_equal(stats(env).timeouts, 0);
}

/* A server that fails at once, locally (link-local address on a missing interface: the connect
 * fails, no packet leaves): still asynchronous, -ECONNREFUSED without waiting for any timer. */
static void
unusable_config(struct env *env)
{
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&env->addrs[0].ss;

	memset(&env->cfg, 0, sizeof(env->cfg));
	memset(&env->addrs[0], 0, sizeof(env->addrs[0]));
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(53);
	inet_pton(AF_INET6, "fe80::1", &sin6->sin6_addr);
	sin6->sin6_scope_id = 99999;
	env->addrs[0].len = sizeof(*sin6);
	env->cfg.upstream.servers = env->addrs;
	env->cfg.upstream.nservers = 1;
	env->cfg.upstream.timeout_ms = 2000;
}

static void
test_local_failure(void **state)
{
	struct env *env = *state;
	struct result r = { 0 };

	unusable_config(env);
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &env->u), 0);
	uint64_t t0 = uv_now(&env->loop);
	ask(env, "nowhere.example", 1, false, &r, 3000);
	assert_int_equal(r.status, -ECONNREFUSED);	/* only network failures */
	assert_true(r.at - t0 < 500);
	struct upstream_stats st = stats(env);
	assert_int_equal(st.sent_udp, 0);
	assert_int_equal(st.failed, 1);
}

/* A callback run while new requests are being started closes the upstream: the requests not
 * yet started are cancelled, not started. */
static void
test_close_while_starting(void **state)
{
	struct env *env = *state;
	struct dnsmsg_query q1, q2;
	struct result r1 = { 0 }, r2 = { 0 };

	unusable_config(env);
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &env->u), 0);
	make_query(&q1, "first.example", 1, false, false);
	make_query(&q2, "second.example", 1, false, false);
	r1.close_upstream = true;
	query(env, &q1, &r1, NULL);
	query(env, &q2, &r2, NULL);
	assert_true(run_until(env, &env->closed, 1, 3000));
	expect_done(&r1, -ECONNREFUSED);
	expect_done(&r2, -ECANCELED);
	assert_true(r2.order < env->closed_order);
}

static void
one_query(struct env *env, const char *name, int expect_status)
{
	struct result r = { 0 };

	ask(env, name, 1, false, &r, 5000);
	assert_int_equal(r.status, expect_status);
}

/* A failing server is skipped after UPSTREAM_DOWN_AFTER failures, retried after the backoff,
 * and healthy again after a success. */
static void
test_backoff(void **state)
{
	struct env *env = *state;
	struct fake *dead = fake_add(env, AF_INET, FAKE_SILENT, false);
	struct fake *good = fake_add(env, AF_INET, FAKE_ANSWER, false);

	env_start(env, 100);
	for (unsigned i = 0; i < UPSTREAM_DOWN_AFTER; i++) {
		one_query(env, "a.example", 0);
		assert_int_equal(dead->nudp, i + 1);
	}
	/* now down: straight to the good server */
	one_query(env, "b.example", 0);
	one_query(env, "c.example", 0);
	assert_int_equal(dead->nudp, UPSTREAM_DOWN_AFTER);
	assert_int_equal(good->nudp, UPSTREAM_DOWN_AFTER + 2);
	/* after the backoff it is tried again; it answers now, so it is healthy */
	run_for(env, UPSTREAM_BACKOFF_MIN_MS + 100);
	dead->mode = FAKE_ANSWER;
	one_query(env, "d.example", 0);
	assert_int_equal(dead->nudp, UPSTREAM_DOWN_AFTER + 1);
	/* healthy again: one failure does not mark it down */
	dead->mode = FAKE_SILENT;
	one_query(env, "e.example", 0);
	one_query(env, "f.example", 0);
	assert_int_equal(dead->nudp, UPSTREAM_DOWN_AFTER + 3);
}

/* Every server down: the least recently failed one is tried. */
static void
test_all_down(void **state)
{
	struct env *env = *state;

	fake_add(env, AF_INET, FAKE_SILENT, false);
	fake_add(env, AF_INET, FAKE_SILENT, false);
	/* 150 ms (not less): the third attempt starts only when the second times out before the
	 * request's deadline, which a loaded sanitizer build could miss with a shorter timeout;
	 * y (450-900 ms) still runs within server 0's first 1 s down period */
	env_start(env, 150);
	one_query(env, "x.example", -ETIMEDOUT);	/* 0, 1, 0: server 0 is down */
	one_query(env, "y.example", -ETIMEDOUT);	/* 1 (down now), then 0, then 1 */
	assert_int_equal(env->nseq, 6);
	static const int expect[] = { 0, 1, 0, 1, 0, 1 };
	for (int i = 0; i < 6; i++)
		assert_int_equal(env->seq[i], expect[i]);
	/* both down: still answered (within the bound), never left waiting */
	one_query(env, "z.example", -ETIMEDOUT);
	assert_int_equal(env->nseq, 9);
	assert_int_equal(stats(env).failed, 3);
}

static void
test_tc_retries_over_tcp(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_TC, true);
	struct result r = { 0 };

	env_start(env, 1000);
	ask(env, "big.example", 1, false, &r, 3000);
	run_for(env, 20);
	expect_done(&r, 0);
	assert_int_equal(rd16(r.reply + 2) & FLAG_TC, 0);
	assert_int_equal(rd16(r.reply + 6), 40);
	assert_true(r.len > 512);
	assert_int_equal(reply_ip(&r), ip32(f->ip));
	assert_int_equal(f->nudp, 1);
	assert_int_equal(f->ntcp, 1);
	struct upstream_stats st = stats(env);
	assert_int_equal(st.sent_udp, 1);
	assert_int_equal(st.sent_tcp, 1);
	assert_int_equal(st.failed, 0);
}

/* Over TCP too, a reply with another ID is dropped and the next message awaited. */
static void
test_tcp_bad_reply(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_TC, true);
	struct result r = { 0 };

	f->tcp_spoof_first = true;
	f->tcp_records = 20;
	env_start(env, 1000);
	ask(env, "spoof.example", 1, false, &r, 3000);
	assert_int_equal(r.status, 0);
	assert_int_equal(rd16(r.reply + 6), 20);
	struct upstream_stats st = stats(env);
	assert_int_equal(st.dropped_replies, 1);
	assert_int_equal(st.sent_tcp, 1);
	assert_int_equal(st.timeouts, 0);
}

/* TC over UDP, TCP refused: a failed attempt, the next server answers. */
static void
test_tc_tcp_refused(void **state)
{
	struct env *env = *state;
	struct fake *tc = fake_add(env, AF_INET, FAKE_TC, false);
	struct fake *good = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct result r = { 0 };

	env_start(env, 1000);
	ask(env, "big.example", 1, false, &r, 3000);
	assert_int_equal(r.status, 0);
	assert_true(same_server(&r, good));
	assert_int_equal(tc->nudp, 1);
	assert_int_equal(stats(env).sent_tcp, 0);
}

struct dedup_case {
	const char *name1, *name2;
	uint16_t type1, type2;
	bool do1, do2, cd1, cd2;
	unsigned packets;
};

static const struct dedup_case dedup_cases[] = {
	{ "same.example", "same.example", 1, 1, false, false, false, false, 1 },
	{ "case.example", "CaSe.EXAMPLE", 1, 1, false, false, false, false, 1 },
	{ "type.example", "type.example", 1, 28, false, false, false, false, 2 },
	{ "do.example", "do.example", 1, 1, false, true, false, false, 2 },
	{ "cd.example", "cd.example", 1, 1, false, false, false, true, 2 },
	{ "name1.example", "name2.example", 1, 1, false, false, false, false, 2 },
};

static void
test_dedup(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	uint64_t dedup = 0;

	f->delay_ms = 30;
	env_start(env, 1000);
	for (size_t i = 0; i < sizeof(dedup_cases) / sizeof(dedup_cases[0]); i++) {
		const struct dedup_case *c = &dedup_cases[i];
		struct dnsmsg_query q1, q2;
		struct result r1 = { 0 }, r2 = { 0 };
		unsigned before = f->nudp;

		print_message("case: %s / %s\n", c->name1, c->name2);
		make_query(&q1, c->name1, c->type1, c->do1, c->cd1);
		make_query(&q2, c->name2, c->type2, c->do2, c->cd2);
		query(env, &q1, &r1, NULL);
		query(env, &q2, &r2, NULL);
		assert_true(run_until(env, &r2.calls, 1, 3000));
		assert_true(run_until(env, &r1.calls, 1, 3000));
		run_for(env, 50);
		assert_int_equal(r1.calls, 1);
		assert_int_equal(r2.calls, 1);
		assert_int_equal(r1.status, 0);
		assert_int_equal(r2.status, 0);
		assert_int_equal(f->nudp - before, c->packets);
		if (c->packets == 1) {
			dedup++;
			assert_int_equal(r1.len, r2.len);
			assert_memory_equal(r1.reply, r2.reply, r1.len);
		}
		assert_int_equal(stats(env).deduplicated, dedup);
	}
}

/* A query arriving while an identical one is on the wire joins it. */
static void
test_dedup_join_in_flight(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct dnsmsg_query q;
	struct result r1 = { 0 }, r2 = { 0 };

	f->delay_ms = 150;
	env_start(env, 1000);
	make_query(&q, "join.example", 1, false, false);
	query(env, &q, &r1, NULL);
	assert_true(run_until(env, (const int *)&f->nudp, 1, 3000));
	query(env, &q, &r2, NULL);
	assert_true(run_until(env, &r2.calls, 1, 3000));
	run_for(env, 20);
	expect_done(&r1, 0);
	assert_int_equal(r2.status, 0);
	assert_int_equal(f->nudp, 1);
	/* completed: the next identical query is a new request */
	struct result r3 = { 0 };
	ask(env, "join.example", 1, false, &r3, 3000);
	assert_int_equal(f->nudp, 2);
}

static void
test_cancel_one_waiter(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct dnsmsg_query q;
	struct result r1 = { 0 }, r2 = { 0 };
	struct upstream_wait *w1;

	f->delay_ms = 80;
	env_start(env, 1000);
	make_query(&q, "cancel.example", 1, false, false);
	query(env, &q, &r1, &w1);
	query(env, &q, &r2, NULL);
	assert_true(run_until(env, (const int *)&f->nudp, 1, 3000));
	cancel(env, w1);
	assert_int_equal(r1.calls, 0);	/* asynchronous */
	assert_true(run_until(env, &r2.calls, 1, 3000));
	run_for(env, 20);
	expect_done(&r1, -ECANCELED);
	assert_true(r1.order < r2.order);
	expect_done(&r2, 0);
	assert_int_equal(f->nudp, 1);
	assert_int_equal(stats(env).failed, 0);
}

/* Cancelling the only waiter aborts the request, before or after it was sent. */
static void
test_cancel_only_waiter(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct dnsmsg_query q;
	struct result r1 = { 0 }, r2 = { 0 };
	struct upstream_wait *w;

	f->delay_ms = 80;
	env_start(env, 1000);
	make_query(&q, "before.example", 1, false, false);
	query(env, &q, &r1, &w);
	cancel(env, w);
	assert_int_equal(r1.calls, 0);
	make_query(&q, "after.example", 1, false, false);
	query(env, &q, &r2, &w);
	assert_true(run_until(env, (const int *)&f->nudp, 1, 3000));
	cancel(env, w);
	assert_int_equal(r2.calls, 0);
	run_for(env, 200);	/* the late reply arrives at a closed socket */
	expect_done(&r1, -ECANCELED);
	expect_done(&r2, -ECANCELED);
	assert_int_equal(f->nudp, 1);	/* "before" never left */
	struct upstream_stats st = stats(env);
	assert_int_equal(st.failed, 0);
	assert_int_equal(st.timeouts, 0);
}

/* upstream_close with requests in flight (sent, not yet started, over TCP): every waiter gets
 * -ECANCELED once, before done; the loop closes cleanly (teardown). */
static void
test_close_in_flight(void **state)
{
	struct env *env = *state;
	struct fake *silent = fake_add(env, AF_INET, FAKE_SILENT, false);
	struct dnsmsg_query q;
	struct result r[5];
	char name[32];

	memset(r, 0, sizeof(r));
	env_start(env, 5000);
	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		make_query(&q, name, 1, false, false);
		query(env, &q, &r[i], NULL);
	}
	assert_true(run_until(env, (const int *)&silent->nudp, 3, 3000));
	/* one more, joined to the first, and one not yet started */
	make_query(&q, "n0.example", 1, false, false);
	query(env, &q, &r[3], NULL);
	make_query(&q, "fresh.example", 1, false, false);
	query(env, &q, &r[4], NULL);
	upstream_close(env->u, on_closed, env);
	assert_int_equal(env->ncompleted, 0);
	assert_true(run_until(env, &env->closed, 1, 3000));
	assert_int_equal(silent->nudp, 3);
	for (int i = 0; i < 5; i++) {
		expect_done(&r[i], -ECANCELED);
		assert_true(r[i].order < env->closed_order);
	}
}

static void
test_close_during_tcp(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_TC, true);
	struct dnsmsg_query q;
	struct result r = { 0 };

	f->tcp_silent = true;
	env_start(env, 5000);
	make_query(&q, "tcp.example", 1, false, false);
	query(env, &q, &r, NULL);
	assert_true(run_until(env, (const int *)&f->ntcp, 1, 3000));
	close_and_wait(env);
	expect_done(&r, -ECANCELED);
	assert_true(r.order < env->closed_order);
	assert_int_equal(f->nudp, 1);
}

/* Callbacks may start new queries and close the upstream. */
static void
test_reentrant_callbacks(void **state)
{
	struct env *env = *state;
	struct dnsmsg_query q1, q2;
	struct result r1 = { 0 }, r2 = { 0 };

	fake_add(env, AF_INET, FAKE_ANSWER, false);
	env_start(env, 1000);
	make_query(&q1, "again.example", 1, false, false);
	env->requery_q = q1;
	r1.requery = true;
	query(env, &q1, &r1, NULL);
	assert_true(run_until(env, &env->requery_r.calls, 1, 3000));
	assert_int_equal(r1.status, 0);
	assert_int_equal(env->requery_r.status, 0);
	assert_int_equal(env->fakes[0].nudp, 2);

	/* the first of two callbacks closes: the second still completes, once */
	env->fakes[0].delay_ms = 50;
	make_query(&q1, "one.example", 1, false, false);
	make_query(&q2, "one.example", 1, false, false);
	r1 = (struct result){ 0 };
	r1.close_upstream = true;
	query(env, &q1, &r1, NULL);
	query(env, &q2, &r2, NULL);
	assert_true(run_until(env, &env->closed, 1, 3000));
	assert_int_equal(r1.calls, 1);
	assert_int_equal(r2.calls, 1);
	assert_int_equal(r1.status, 0);
	assert_true(r2.order < env->closed_order);
}

/* Many distinct queries in flight at once (table growth past UPSTREAM_TABLE_MIN, pools reused
 * in the second round). Sent in batches so that the fake's socket buffer never overflows. */
static void
test_many(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	static struct result r[300];
	struct dnsmsg_query q;
	char name[32];
	int done = 0;

	f->delay_ms = 300;
	env_start(env, 3000);
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < 300; i++) {
			r[i] = (struct result){ 0 };
			snprintf(name, sizeof(name), "h%d.example", i);
			make_query(&q, name, 1, false, false);
			query(env, &q, &r[i], NULL);
			if (i % 100 == 99)
				assert_true(run_until(env, (const int *)&f->nudp,
						      round * 300 + i + 1, 3000));
		}
		for (int i = 0; i < 300; i++) {
			assert_true(run_until(env, &r[i].calls, 1, 5000));
			assert_int_equal(r[i].status, 0);
			done++;
		}
	}
	run_for(env, 20);
	for (int i = 0; i < 300; i++)
		assert_int_equal(r[i].calls, 1);
	struct upstream_stats st = stats(env);
	assert_int_equal(f->nudp, 600);
	assert_int_equal(st.queries, (uint64_t)done);
	assert_int_equal(st.sent_udp, 600);
	assert_int_equal(st.timeouts, 0);
	assert_true(env->u->tmask + 1 > UPSTREAM_TABLE_MIN);
	assert_true(env->u->nfree_reqs >= 300 && env->u->nfree_attempts >= 300);
}

static void
test_reconfigure(void **state)
{
	struct env *env = *state;
	struct fake *a = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct fake *b = fake_add(env, AF_INET, FAKE_ANSWER, false);
	struct dnsmsg_query q;
	struct result r1 = { 0 }, r2 = { 0 };
	struct config empty;

	a->delay_ms = 100;
	env_config(env, 1000);
	env->cfg.upstream.nservers = 1;	/* only a */
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &env->u), 0);
	make_query(&q, "r1.example", 1, false, false);
	query(env, &q, &r1, NULL);
	assert_true(run_until(env, (const int *)&a->nudp, 1, 3000));
	/* now only b; the query in flight finishes on a */
	env->cfg.upstream.servers = &env->addrs[1];
	assert_int_equal(upstream_reconfigure(env->u, &env->cfg), 0);
	make_query(&q, "r2.example", 1, false, false);
	query(env, &q, &r2, NULL);
	assert_true(run_until(env, &r1.calls, 1, 3000));
	assert_true(run_until(env, &r2.calls, 1, 3000));
	assert_true(same_server(&r1, a));
	assert_true(same_server(&r2, b));
	assert_int_equal(a->nudp, 1);
	assert_int_equal(b->nudp, 1);
	/* no server: refused, the old list stays */
	memset(&empty, 0, sizeof(empty));
	assert_int_equal(upstream_reconfigure(env->u, &empty), -ENOENT);
	one_query(env, "r3.example", 0);
	assert_int_equal(b->nudp, 2);
}

static void
test_ipv6(void **state)
{
	struct env *env = *state;
	uv_udp_t probe;
	struct sockaddr_storage ss;
	struct result r = { 0 };

	set_loopback(&ss, AF_INET6, 0);
	assert_int_equal(uv_udp_init(&env->loop, &probe), 0);
	int err = uv_udp_bind(&probe, (const struct sockaddr *)&ss, 0);
	uv_close((uv_handle_t *)&probe, NULL);
	uv_run(&env->loop, UV_RUN_NOWAIT);
	if (err != 0) {
		skip();
		return;
	}
	struct fake *f = fake_add(env, AF_INET6, FAKE_TC, true);
	env_start(env, 1000);
	ask(env, "v6.example", 28, true, &r, 3000);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.server.ss_family, AF_INET6);
	assert_true(same_server(&r, f));
	assert_int_equal(f->last_from.ss_family, AF_INET6);
	assert_int_equal(f->ntcp, 1);
}

static void
test_no_server(void **state)
{
	struct env *env = *state;
	struct upstream *u = (struct upstream *)(uintptr_t)1;

	memset(&env->cfg, 0, sizeof(env->cfg));
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &u), -ENOENT);
	assert_ptr_equal(u, (struct upstream *)(uintptr_t)1);	/* untouched on failure */
	env->cfg.upstream.resolv_conf = true;
	env->cfg.upstream.resolv_conf_path = (char *)"/nonexistent/resolv.conf";
	assert_int_equal(upstream_new(&env->loop, &env->cfg, &u), -ENOENT);
}

struct resolv_case {
	const char *name;
	const char *content;	/* NULL: the file does not exist */
	bool with_config;	/* also upstream.servers = 192.0.2.99:5300 */
	int err;
	const char *expect[6];
};

static const struct resolv_case resolv_cases[] = {
	{ "mixed", "# comment\n; other comment\nnameserver 192.0.2.1\n"
		   "nameserver   2001:db8::53   # trailing comment\n"
		   "nameserver\tfe80::1%lo\n"
		   "nameserver fe80::2%nonexistent0\n"
		   "nameserver not-an-ip\n"
		   "nameserver\n"
		   "search example.com\noptions ndots:2\n"
		   "nameserver 192.0.2.1\n"
		   "  nameserver 198.51.100.7",
	  false, 0,
	  { "192.0.2.1:53", "[2001:db8::53]:53", "[fe80::1%1]:53", "198.51.100.7:53", NULL } },
	{ "after config", "nameserver 192.0.2.1\n", true, 0,
	  { "192.0.2.99:5300", "192.0.2.1:53", NULL } },
	{ "missing file", NULL, true, 0, { "192.0.2.99:5300", NULL } },
	{ "missing file alone", NULL, false, -ENOENT, { NULL } },
	{ "nothing usable", "domain example.com\nnameserver bogus\n", false, -ENOENT, { NULL } },
};

static void
test_resolv_conf(void **state)
{
	struct env *env = *state;
	char path[] = "/tmp/test_upstream_resolv_XXXXXX";
	int fd = mkstemp(path);
	struct config_addr extra;

	assert_true(fd >= 0);
	close(fd);
	memset(&extra, 0, sizeof(extra));
	struct sockaddr_in *sin = (struct sockaddr_in *)&extra.ss;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(5300);
	inet_pton(AF_INET, "192.0.2.99", &sin->sin_addr);
	extra.len = sizeof(*sin);
	for (size_t i = 0; i < sizeof(resolv_cases) / sizeof(resolv_cases[0]); i++) {
		const struct resolv_case *c = &resolv_cases[i];
		struct upstream_servers *s = NULL;
		struct config cfg;

		print_message("case: %s\n", c->name);
		memset(&cfg, 0, sizeof(cfg));
		cfg.upstream.resolv_conf = true;
		cfg.upstream.resolv_conf_path = (char *)"/nonexistent/resolv.conf";
		if (c->content != NULL) {
			FILE *fp = fopen(path, "w");
			assert_non_null(fp);
			fputs(c->content, fp);
			fclose(fp);
			cfg.upstream.resolv_conf_path = path;
		}
		if (c->with_config) {
			cfg.upstream.servers = &extra;
			cfg.upstream.nservers = 1;
		}
		int err = upstream_servers_new(&cfg, NULL, &s);
		assert_int_equal(err, c->err);
		if (err != 0) {
			assert_null(s);
			continue;
		}
		size_t n = 0;
		while (c->expect[n] != NULL)
			n++;
		if (if_nametoindex("lo") != 1)
			print_message("note: 'lo' is not interface 1\n");
		assert_int_equal(s->n, n);
		for (size_t k = 0; k < n; k++)
			assert_string_equal(s->s[k].text, c->expect[k]);
		assert_int_equal(s->timeout_ms, UPSTREAM_DEFAULT_TIMEOUT_MS);
		upstream_servers_unref(&s);
		assert_null(s);
	}
	unlink(path);
	(void)env;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_answer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_port_and_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_shared_socket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_late_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_rcode_fails_over, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failover_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_fails_over_fast, setup, teardown),
		cmocka_unit_test_setup_teardown(test_local_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_while_starting, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backoff, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_down, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tc_retries_over_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_bad_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tc_tcp_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dedup_join_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_one_waiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_only_waiter, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_in_flight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_during_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reentrant_callbacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ipv6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_server, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resolv_conf, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
