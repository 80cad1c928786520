/*
 * test_server: the daemon on a real libuv loop, on 127.0.0.1, with an in-process fake upstream.
 *
 * Every test builds a configuration file in a temporary folder, starts a server and a fake
 * upstream on the same loop, talks to the server over UDP (from 127.0.0.1, 127.0.0.2 and
 * 127.0.0.3: three different clients) and TCP, and stops it; teardown asserts that
 * uv_loop_close() returns 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "config.h"
#include "diag.h"
#include "policy.h"
#include "server.h"
#include "server_int.h"

#define TYPE_A	  1
#define TYPE_NS	  2
#define TYPE_CNAME 5
#define TYPE_AAAA 28
#define TYPE_OPT  41
#define TYPE_TXT  16

#define MAX_REPLIES 64

/* ---- wire helpers ---- */

static size_t
name_to_wire(const char *text, uint8_t *out)
{
	size_t o = 0;
	const char *p = text;

	while (*p != '\0') {
		const char *dot = strchr(p, '.');
		size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);
		out[o++] = (uint8_t)l;
		memcpy(out + o, p, l);
		o += l;
		p += l;
		if (*p == '.')
			p++;
	}
	out[o++] = 0;
	return o;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t
get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* flags: the header flags word (RD = 0x0100). qdcount usually 1. */
static size_t
build_query(uint8_t *buf, uint16_t id, uint16_t flags, uint16_t qdcount, const char *name,
	    uint16_t type, bool edns)
{
	memset(buf, 0, 12);
	put16(buf, id);
	put16(buf + 2, flags);
	put16(buf + 4, qdcount);
	size_t o = 12;
	if (name != NULL) {
		o += name_to_wire(name, buf + o);
		put16(buf + o, type);
		put16(buf + o + 2, 1);
		o += 4;
	}
	if (edns) {
		put16(buf + 10, 1);
		buf[o++] = 0;
		put16(buf + o, TYPE_OPT);
		put16(buf + o + 2, 1232);
		memset(buf + o + 4, 0, 6);
		o += 10;
	}
	return o;
}

/* Skips a (possibly compressed) name; returns the offset after it, 0 on error. */
static size_t
skip_name(const uint8_t *m, size_t len, size_t o)
{
	while (o < len) {
		uint8_t l = m[o];
		if (l == 0)
			return o + 1;
		if ((l & 0xc0) == 0xc0)
			return o + 2 <= len ? o + 2 : 0;
		o += 1 + l;
	}
	return 0;
}

struct parsed {
	uint16_t id, flags, qd, an, ns, ar;
	uint8_t rcode;
	size_t qname_off;
	uint8_t a[4];		/* first A record */
	bool has_a;
	uint8_t aaaa[16];
	bool has_aaaa;
	bool has_cname;
	bool has_opt;
	uint32_t first_ttl;
};

static bool
parse_reply(const uint8_t *m, size_t len, struct parsed *p)
{
	memset(p, 0, sizeof(*p));
	if (len < 12)
		return false;
	p->id = get16(m);
	p->flags = get16(m + 2);
	p->rcode = m[3] & 0x0f;
	p->qd = get16(m + 4);
	p->an = get16(m + 6);
	p->ns = get16(m + 8);
	p->ar = get16(m + 10);
	size_t o = 12;
	p->qname_off = o;
	for (unsigned i = 0; i < p->qd; i++) {
		o = skip_name(m, len, o);
		if (o == 0 || o + 4 > len)
			return false;
		o += 4;
	}
	unsigned total = p->an + p->ns + p->ar;
	for (unsigned i = 0; i < total; i++) {
		o = skip_name(m, len, o);
		if (o == 0 || o + 10 > len)
			return false;
		uint16_t type = get16(m + o);
		uint32_t ttl = (uint32_t)get16(m + o + 4) << 16 | get16(m + o + 6);
		uint16_t rdlen = get16(m + o + 8);
		o += 10;
		if (o + rdlen > len)
			return false;
		if (i == 0)
			p->first_ttl = ttl;
		if (i < p->an && type == TYPE_A && rdlen == 4 && !p->has_a) {
			memcpy(p->a, m + o, 4);
			p->has_a = true;
		}
		if (i < p->an && type == TYPE_AAAA && rdlen == 16 && !p->has_aaaa) {
			memcpy(p->aaaa, m + o, 16);
			p->has_aaaa = true;
		}
		if (i < p->an && type == TYPE_CNAME)
			p->has_cname = true;
		if (type == TYPE_OPT)
			p->has_opt = true;
		o += rdlen;
	}
	return o == len;
}

static bool
contains(const uint8_t *m, size_t len, const char *text)
{
	size_t n = strlen(text);
	for (size_t i = 0; i + n <= len; i++) {
		if (memcmp(m + i, text, n) == 0)
			return true;
	}
	return false;
}

/* ---- fixture ---- */

struct reply {
	uint8_t data[4096];
	size_t len;
};

struct fixture {
	uv_loop_t loop;
	char dir[64];
	char conf[128];
	char qlog[128];
	uint16_t port, uport;
	struct server *srv;
	bool stopped;

	/* fake upstream */
	uv_udp_t up;
	unsigned up_queries;
	char up_names[64][64];		/* names seen, in order */
	bool up_silent;			/* answer nothing at all */

	/* UDP clients: 127.0.0.1, 127.0.0.2, 127.0.0.3 */
	uv_udp_t cli[3];
	struct reply replies[MAX_REPLIES];	/* by id % MAX_REPLIES */
	bool got[MAX_REPLIES];

	/* TCP client */
	uv_tcp_t tcp;
	uv_connect_t connect;
	bool tcp_open, tcp_connected, tcp_eof;
	uint8_t tbuf[65536];
	size_t tlen;

	uv_timer_t timer;
	bool timed_out;

	int reload_status;
	bool reload_done;
};

/* One loop (server.workers: 1; the default is one per CPU): the tests drive it with uv_run. */
#define BASE_CONFIG \
	"server:\n" \
	"  workers: 1\n" \
	"  listen: [\"127.0.0.1:%u\"]\n" \
	"  allow: [127.0.0.1/32, 127.0.0.3/32]\n" \
	"upstream:\n" \
	"  servers: [\"127.0.0.1:%u\"]\n" \
	"  timeout_ms: 2000\n" \
	"cache:\n" \
	"  entries: 1000\n" \
	"block:\n" \
	"  action: sinkhole\n" \
	"  ttl: 60\n" \
	"lists:\n" \
	"  ads: {domains: [ads.test]}\n" \
	"  trackers: {domains: [tracker.test]}\n" \
	"  later: {domains: [later.test]}\n" \
	"  canary: {domains: [canary.test], action: nxdomain}\n" \
	"groups:\n" \
	"  - name: lab\n" \
	"    clients: [127.0.0.1/32]\n" \
	"    block: [ads, trackers, canary%s]\n" \
	"  - name: other\n" \
	"    block: [ads]\n" \
	"log:\n" \
	"  queries: all\n" \
	"  file: \"%s\"\n"


static void
write_config(struct fixture *fx, const char *extra_lists, bool broken)
{
	FILE *f = fopen(fx->conf, "w");
	assert_non_null(f);
	if (broken)
		fprintf(f, "server:\n  listen: [\"127.0.0.1:%u\"]\nblock:\n  action: sinkhol\n",
			fx->port);
	else
		fprintf(f, BASE_CONFIG, fx->port, fx->uport, extra_lists, fx->qlog);
	fclose(f);
}

static void
on_timer(uv_timer_t *t)
{
	struct fixture *fx = t->data;
	fx->timed_out = true;
}

/* Runs the loop until *flag is true or ms have passed. */
static bool
run_until(struct fixture *fx, bool *flag, uint64_t ms)
{
	fx->timed_out = false;
	uv_timer_start(&fx->timer, on_timer, ms, 0);
	while (!*flag && !fx->timed_out)
		uv_run(&fx->loop, UV_RUN_ONCE);
	uv_timer_stop(&fx->timer);
	return *flag;
}

static void
on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static uint8_t mem[65536];
	(void)h;
	(void)suggested;
	*buf = uv_buf_init((char *)mem, sizeof(mem));
}

/* The fake upstream: "slow.test" is never answered, "cloak.test" is a CNAME to x.tracker.test,
 * everything else gets A 192.0.2.1 with TTL 300. */
static void
on_up_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
	   unsigned flags)
{
	struct fixture *fx = h->data;
	const uint8_t *m = (const uint8_t *)buf->base;
	uint8_t out[512];

	(void)flags;
	if (nread < 12 || addr == NULL)
		return;
	size_t qend = skip_name(m, (size_t)nread, 12);
	if (qend == 0 || qend + 4 > (size_t)nread)
		return;
	/* question name as text */
	char name[64] = "";
	size_t o = 12, t = 0;
	while (m[o] != 0 && t + m[o] + 1 < sizeof(name)) {
		if (t > 0)
			name[t++] = '.';
		memcpy(name + t, m + o + 1, m[o]);
		t += m[o];
		o += 1 + m[o];
	}
	name[t] = '\0';
	if (fx->up_queries < 64)
		snprintf(fx->up_names[fx->up_queries], sizeof(fx->up_names[0]), "%s", name);
	fx->up_queries++;
	if (fx->up_silent || strcmp(name, "slow.test") == 0)
		return;

	size_t qlen = qend + 4;
	memcpy(out, m, qlen);
	out[2] = 0x80 | (m[2] & 0x01); /* QR, RD copied */
	out[3] = 0x80;		       /* RA */
	put16(out + 6, 1);
	put16(out + 8, 0);
	put16(out + 10, 0);
	o = qlen;
	uint16_t qtype = get16(m + qend);
	if (strcmp(name, "cloak.test") == 0) {
		uint8_t target[64];
		size_t tl = name_to_wire("x.tracker.test", target);
		put16(out + 6, 2);
		put16(out + o, 0xc00c);
		put16(out + o + 2, TYPE_CNAME);
		put16(out + o + 4, 1);
		put16(out + o + 6, 0);
		put16(out + o + 8, 300);
		put16(out + o + 10, (uint16_t)tl);
		memcpy(out + o + 12, target, tl);
		o += 12 + tl;
		memcpy(out + o, target, tl);
		o += tl;
	} else if (qtype == TYPE_A) {
		put16(out + o, 0xc00c);
		o += 2;
	} else {
		put16(out + 6, 0); /* NODATA for other types */
		goto send;
	}
	put16(out + o, TYPE_A);
	put16(out + o + 2, 1);
	put16(out + o + 4, 0);
	put16(out + o + 6, 300);
	put16(out + o + 8, 4);
	out[o + 10] = 192;
	out[o + 11] = 0;
	out[o + 12] = 2;
	out[o + 13] = strcmp(name, "cloak.test") == 0 ? 7 : 1;
	o += 14;
send:;
	uv_buf_t b = uv_buf_init((char *)out, (unsigned int)o);
	assert_true(uv_udp_try_send(h, &b, 1, addr) > 0);
}

static void
on_cli_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf, const struct sockaddr *addr,
	    unsigned flags)
{
	struct fixture *fx = h->data;

	(void)flags;
	if (nread < 2 || addr == NULL)
		return;
	uint16_t id = get16((const uint8_t *)buf->base);
	struct reply *r = &fx->replies[id % MAX_REPLIES];
	r->len = (size_t)nread < sizeof(r->data) ? (size_t)nread : sizeof(r->data);
	memcpy(r->data, buf->base, r->len);
	fx->got[id % MAX_REPLIES] = true;
}

static void
set_ip4(struct sockaddr_in *sa, const char *ip, uint16_t port)
{
	assert_int_equal(uv_ip4_addr(ip, port, sa), 0);
}

static void
start_server(struct fixture *fx)
{
	struct diag diag;
	struct config *cfg = NULL;
	struct policy *pol = NULL;

	diag_init(&diag);
	int err = config_load(fx->conf, &diag, &cfg);
	if (err != 0)
		diag_print(&diag, stderr, DIAG_WARNING);
	assert_int_equal(err, 0);
	assert_int_equal(policy_new(cfg, &diag, &pol), 0);
	diag_clear(&diag);
	assert_int_equal(server_new(&fx->loop, pol, &fx->srv), 0);
	assert_int_equal(server_start(fx->srv), 0);
	fx->stopped = false;
}

static void
on_stopped(void *arg)
{
	struct fixture *fx = arg;
	fx->stopped = true;
}

static void
stop_server(struct fixture *fx)
{
	if (fx->srv == NULL)
		return;
	server_stop(fx->srv, on_stopped, fx);
	assert_true(run_until(fx, &fx->stopped, 5000));
	server_free(&fx->srv);
}

static int
setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));
	assert_non_null(fx);
	signal(SIGPIPE, SIG_IGN);
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/veto-test-server.XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	snprintf(fx->conf, sizeof(fx->conf), "%s/veto.yaml", fx->dir);
	snprintf(fx->qlog, sizeof(fx->qlog), "%s/queries.jsonl", fx->dir);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	uv_timer_init(&fx->loop, &fx->timer);
	fx->timer.data = fx;

	/* ports: derived from the pid, moved on while taken */
	struct sockaddr_in sa;
	int err = -1;
	for (unsigned try = 0; try < 50 && err != 0; try++) {
		fx->port = (uint16_t)(20000 + ((unsigned)getpid() * 7 + try * 97) % 30000);
		fx->uport = (uint16_t)(fx->port + 1);
		uv_udp_init(&fx->loop, &fx->up);
		set_ip4(&sa, "127.0.0.1", fx->uport);
		err = uv_udp_bind(&fx->up, (const struct sockaddr *)&sa, 0);
		if (err != 0) {
			uv_close((uv_handle_t *)&fx->up, NULL);
			uv_run(&fx->loop, UV_RUN_NOWAIT);
		}
	}
	assert_int_equal(err, 0);
	fx->up.data = fx;
	assert_int_equal(uv_udp_recv_start(&fx->up, on_alloc, on_up_recv), 0);

	const char *ips[] = { "127.0.0.1", "127.0.0.2", "127.0.0.3" };
	for (int i = 0; i < 3; i++) {
		uv_udp_init(&fx->loop, &fx->cli[i]);
		fx->cli[i].data = fx;
		set_ip4(&sa, ips[i], 0);
		assert_int_equal(uv_udp_bind(&fx->cli[i], (const struct sockaddr *)&sa, 0), 0);
		assert_int_equal(uv_udp_recv_start(&fx->cli[i], on_alloc, on_cli_recv), 0);
	}
	write_config(fx, "", false);
	start_server(fx);
	*state = fx;
	return 0;
}

static void
close_cb_noop(uv_handle_t *h)
{
	(void)h;
}

static int
teardown(void **state)
{
	struct fixture *fx = *state;

	stop_server(fx);
	uv_close((uv_handle_t *)&fx->up, close_cb_noop);
	for (int i = 0; i < 3; i++)
		uv_close((uv_handle_t *)&fx->cli[i], close_cb_noop);
	if (fx->tcp_open)
		uv_close((uv_handle_t *)&fx->tcp, close_cb_noop);
	uv_close((uv_handle_t *)&fx->timer, close_cb_noop);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fx->dir);
	assert_int_equal(system(cmd), 0);
	free(fx);
	return 0;
}

/* Sends a query from client ci (0: 127.0.0.1, 1: .2, 2: .3); returns the reply or NULL. */
static const struct reply *
ask_raw(struct fixture *fx, int ci, const uint8_t *q, size_t len, uint64_t wait_ms)
{
	uint16_t id = get16(q);
	struct sockaddr_in sa;

	set_ip4(&sa, "127.0.0.1", fx->port);
	fx->got[id % MAX_REPLIES] = false;
	uv_buf_t b = uv_buf_init((char *)q, (unsigned int)len);
	assert_true(uv_udp_try_send(&fx->cli[ci], &b, 1, (const struct sockaddr *)&sa) > 0);
	if (!run_until(fx, &fx->got[id % MAX_REPLIES], wait_ms))
		return NULL;
	return &fx->replies[id % MAX_REPLIES];
}

static const struct reply *
ask(struct fixture *fx, int ci, uint16_t id, const char *name, uint16_t type, bool edns)
{
	uint8_t q[512];
	size_t len = build_query(q, id, 0x0100, 1, name, type, edns);
	return ask_raw(fx, ci, q, len, 3000);
}

/* ---- tests ---- */

struct udp_case {
	int client;		/* 0: 127.0.0.1 (lab), 1: 127.0.0.2 (not allowed), 2: .3 (other) */
	const char *name;
	uint16_t type;
	bool edns;
	uint8_t rcode;
	const char *a;		/* expected first A, NULL = none */
	const char *aaaa;	/* expected first AAAA, NULL = none */
	const char *ede;	/* text expected in the reply, NULL = none */
	unsigned upstream;	/* queries the fake upstream has seen after this one */
};

static void
test_udp_pipeline(void **state)
{
	struct fixture *fx = *state;
	static const struct udp_case cases[] = {
		/* forwarded, then served from the cache (upstream still saw one) */
		{ 0, "www.example.test", TYPE_A, false, 0, "192.0.2.1", NULL, NULL, 1 },
		{ 0, "www.example.test", TYPE_A, true, 0, "192.0.2.1", NULL, NULL, 1 },
		{ 0, "WWW.Example.TEST", TYPE_A, false, 0, "192.0.2.1", NULL, NULL, 1 },
		/* blocked: sinkhole for A and AAAA, EDE with EDNS, subdomains too */
		{ 0, "ads.test", TYPE_A, true, 0, "0.0.0.0", NULL, "blocked by list 'ads'", 1 },
		{ 0, "deep.sub.ads.test", TYPE_AAAA, false, 0, NULL, "::", NULL, 1 },
		{ 0, "tracker.test", TYPE_A, false, 0, "0.0.0.0", NULL, NULL, 1 },
		{ 0, "canary.test", TYPE_A, true, 3, NULL, NULL, "list 'canary'", 1 },
		/* another group: tracker.test is not blocked there */
		{ 2, "tracker.test", TYPE_A, false, 0, "192.0.2.1", NULL, NULL, 2 },
		{ 2, "ads.test", TYPE_A, false, 0, "0.0.0.0", NULL, NULL, 2 },
		/* CNAME cloaking: the chain reaches x.tracker.test, blocked for lab only; the
		 * answer is cached anyway and checked again on every hit */
		{ 0, "cloak.test", TYPE_A, true, 0, "0.0.0.0", NULL, "list 'trackers'", 3 },
		{ 2, "cloak.test", TYPE_A, false, 0, "192.0.2.7", NULL, NULL, 3 },
		{ 0, "cloak.test", TYPE_A, false, 0, "0.0.0.0", NULL, NULL, 3 },
		/* outside server.allow */
		{ 1, "www.example.test", TYPE_A, false, 5, NULL, NULL, NULL, 3 },
		/* other types forwarded (NODATA from upstream) */
		{ 0, "www.example.test", TYPE_TXT, false, 0, NULL, NULL, NULL, 4 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct udp_case *c = &cases[i];
		uint16_t id = (uint16_t)(1000 + i);
		const struct reply *r = ask(fx, c->client, id, c->name, c->type, c->edns);
		struct parsed p;

		print_message("case %zu: %s from client %d\n", i, c->name, c->client);
		assert_non_null(r);
		assert_true(parse_reply(r->data, r->len, &p));
		assert_int_equal(p.id, id);
		assert_true(p.flags & 0x8000);		/* QR */
		assert_true(p.flags & 0x0100);		/* RD kept */
		assert_int_equal(p.rcode, c->rcode);
		assert_int_equal(p.qd, 1);
		/* the question comes back with the client's case */
		uint8_t wire[256];
		size_t wl = name_to_wire(c->name, wire);
		assert_memory_equal(r->data + 12, wire, wl);
		assert_int_equal(p.has_opt, c->edns);
		if (c->a != NULL) {
			uint8_t want[4];
			assert_int_equal(inet_pton(AF_INET, c->a, want), 1);
			assert_true(p.has_a);
			assert_memory_equal(p.a, want, 4);
		} else {
			assert_false(p.has_a);
		}
		if (c->aaaa != NULL) {
			uint8_t want[16];
			assert_int_equal(inet_pton(AF_INET6, c->aaaa, want), 1);
			assert_true(p.has_aaaa);
			assert_memory_equal(p.aaaa, want, 16);
		}
		if (c->ede != NULL)
			assert_true(contains(r->data, r->len, c->ede));
		assert_int_equal(fx->up_queries, c->upstream);
	}
	/* the upstream got lowercase names */
	assert_string_equal(fx->up_names[0], "www.example.test");

	struct server_stats st;
	server_get_stats(fx->srv, &st);
	assert_int_equal(st.udp_queries, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(st.refused, 1);
	assert_int_equal(st.cloaked, 2);
	assert_int_equal(st.blocked, 7);
	assert_int_equal(st.forwarded, 3);
	assert_int_equal(st.cache_hits, 3);

	/* the query log holds one line per query, flushed at stop */
	stop_server(fx);
	FILE *f = fopen(fx->qlog, "r");
	assert_non_null(f);
	char line[2048];
	unsigned n = 0, cache = 0, cloak = 0;
	while (fgets(line, sizeof(line), f) != NULL) {
		n++;
		if (strstr(line, "\"action\":\"cache\"") != NULL)
			cache++;
		if (strstr(line, "\"qname\":\"cloak.test\"") != NULL &&
		    strstr(line, "\"list\":\"trackers\"") != NULL &&
		    strstr(line, "\"blocked\":true") != NULL)
			cloak++;
	}
	fclose(f);
	assert_int_equal(n, sizeof(cases) / sizeof(cases[0]));
	assert_int_equal(cache, 3);
	assert_int_equal(cloak, 2);
}

struct bad_case {
	const char *what;
	uint16_t flags;
	uint16_t qdcount;
	const char *name;
	size_t cut;		/* send only this many octets (0 = all) */
	int rcode;		/* -1 = no reply */
};

static void
test_udp_malformed(void **state)
{
	struct fixture *fx = *state;
	static const struct bad_case cases[] = {
		{ "no question", 0x0100, 0, NULL, 0, 1 },
		{ "two questions", 0x0100, 2, "a.test", 0, 1 },
		{ "opcode notify", 0x2100, 1, "a.test", 0, 4 },
		{ "truncated question", 0x0100, 1, "www.example.test", 20, 1 },
		{ "shorter than a header", 0x0100, 1, "a.test", 7, -1 },
		{ "a response", 0x8100, 1, "a.test", 0, -1 },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct bad_case *c = &cases[i];
		uint8_t q[512];
		uint16_t id = (uint16_t)(2000 + i);
		size_t len = build_query(q, id, c->flags, c->qdcount, c->name, TYPE_A, false);
		if (c->cut != 0)
			len = c->cut;
		print_message("case %s\n", c->what);
		const struct reply *r = ask_raw(fx, 0, q, len, c->rcode < 0 ? 200 : 3000);
		if (c->rcode < 0) {
			assert_null(r);
			continue;
		}
		assert_non_null(r);
		struct parsed p;
		assert_true(parse_reply(r->data, r->len, &p));
		assert_int_equal(p.id, id);
		assert_int_equal(p.rcode, c->rcode);
	}
	/* still answering */
	const struct reply *r = ask(fx, 0, 2100, "ads.test", TYPE_A, false);
	assert_non_null(r);
	assert_int_equal(fx->up_queries, 0);
}

/* TCP client */

static void
on_tcp_connect(uv_connect_t *req, int status)
{
	struct fixture *fx = req->data;
	assert_int_equal(status, 0);
	fx->tcp_connected = true;
}

static void
on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct fixture *fx = h->data;
	(void)suggested;
	*buf = uv_buf_init((char *)fx->tbuf + fx->tlen, (unsigned int)(sizeof(fx->tbuf) - fx->tlen));
}

static void
on_tcp_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct fixture *fx = s->data;
	(void)buf;
	if (nread < 0) {
		fx->tcp_eof = true;
		uv_read_stop(s);
		return;
	}
	fx->tlen += (size_t)nread;
}

static void
tcp_connect(struct fixture *fx)
{
	struct sockaddr_in sa;
	set_ip4(&sa, "127.0.0.1", fx->port);
	uv_tcp_init(&fx->loop, &fx->tcp);
	fx->tcp.data = fx;
	fx->tcp_open = true;
	fx->connect.data = fx;
	assert_int_equal(uv_tcp_connect(&fx->connect, &fx->tcp, (const struct sockaddr *)&sa,
					on_tcp_connect), 0);
	assert_true(run_until(fx, &fx->tcp_connected, 3000));
	assert_int_equal(uv_read_start((uv_stream_t *)&fx->tcp, on_tcp_alloc, on_tcp_read), 0);
}

static void
tcp_send(struct fixture *fx, const uint8_t *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, (unsigned int)len);
	assert_int_equal(uv_try_write((uv_stream_t *)&fx->tcp, &b, 1), (int)len);
}

/* Number of complete frames received so far; ids[] gets their IDs. */
static size_t
tcp_frames(struct fixture *fx, uint16_t *ids, size_t max)
{
	size_t o = 0, n = 0;
	while (o + 2 <= fx->tlen) {
		size_t fl = get16(fx->tbuf + o);
		if (o + 2 + fl > fx->tlen)
			break;
		if (n < max)
			ids[n] = get16(fx->tbuf + o + 2);
		n++;
		o += 2 + fl;
	}
	return n;
}

static bool
wait_frames(struct fixture *fx, size_t want, uint64_t ms)
{
	uint16_t ids[64];
	uint64_t end = uv_now(&fx->loop) + ms;
	bool enough = false;
	while (!enough && uv_now(&fx->loop) < end) {
		bool dummy = false;
		run_until(fx, &dummy, 20);
		enough = tcp_frames(fx, ids, 64) >= want;
	}
	return enough;
}

static void
test_tcp_pipelining(void **state)
{
	struct fixture *fx = *state;
	static const char *names[] = { "www.example.test", "ads.test", "other.test", "x.ads.test" };
	uint8_t buf[2048];
	size_t len = 0;

	tcp_connect(fx);
	for (size_t i = 0; i < 4; i++) {
		size_t l = build_query(buf + len + 2, (uint16_t)(3000 + i), 0x0100, 1, names[i],
				       TYPE_A, true);
		put16(buf + len, (uint16_t)l);
		len += 2 + l;
	}
	/* one octet, then a split inside the second frame, then the rest */
	tcp_send(fx, buf, 1);
	bool dummy = false;
	run_until(fx, &dummy, 50);
	tcp_send(fx, buf + 1, 40);
	run_until(fx, &dummy, 50);
	tcp_send(fx, buf + 41, len - 41);

	assert_true(wait_frames(fx, 4, 3000));
	uint16_t ids[8];
	assert_int_equal(tcp_frames(fx, ids, 8), 4);
	unsigned seen = 0;
	for (size_t i = 0; i < 4; i++) {
		assert_true(ids[i] >= 3000 && ids[i] < 3004);
		seen |= 1u << (ids[i] - 3000);
	}
	assert_int_equal(seen, 0xf);
	assert_int_equal(fx->up_queries, 2);

	struct server_stats st;
	server_get_stats(fx->srv, &st);
	assert_int_equal(st.tcp_queries, 4);
	assert_int_equal(st.tcp_accepted, 1);

	/* a zero-length frame and a short one are dropped, the connection keeps working */
	uint8_t junk[] = { 0, 0, 0, 3, 1, 2, 3 };
	tcp_send(fx, junk, sizeof(junk));
	len = build_query(buf + 2, 3010, 0x0100, 1, "ads.test", TYPE_A, false);
	put16(buf, (uint16_t)len);
	tcp_send(fx, buf, len + 2);
	assert_true(wait_frames(fx, 5, 3000));
}

/* More queries at once than one recvmmsg batch holds: every one is answered. */
static void
test_udp_burst(void **state)
{
	struct fixture *fx = *state;
	struct sockaddr_in sa;
	enum { N = 60 };

	set_ip4(&sa, "127.0.0.1", fx->port);
	for (unsigned i = 0; i < N; i++) {
		uint8_t q[512];
		char name[64];
		/* blocked, cached-after-first and forwarded names mixed */
		snprintf(name, sizeof(name), i % 3 == 0 ? "n%u.ads.test" : i % 3 == 1 ?
			 "www.example.test" : "f%u.example.test", i);
		size_t len = build_query(q, (uint16_t)(7000 + i), 0x0100, 1, name, TYPE_A, true);
		fx->got[(7000 + i) % MAX_REPLIES] = false;
		uv_buf_t b = uv_buf_init((char *)q, (unsigned int)len);
		assert_true(uv_udp_try_send(&fx->cli[0], &b, 1, (const struct sockaddr *)&sa) > 0);
	}
	uint64_t end = uv_now(&fx->loop) + 3000;
	unsigned n = 0;
	while (uv_now(&fx->loop) < end) {
		bool dummy = false;
		run_until(fx, &dummy, 10);
		n = 0;
		for (unsigned i = 0; i < N; i++)
			n += fx->got[(7000 + i) % MAX_REPLIES];
		if (n == N)
			break;
	}
	assert_int_equal(n, N);
	struct server_stats st;
	server_get_stats(fx->srv, &st);
	assert_int_equal(st.udp_queries, N);
	assert_int_equal(st.blocked, N / 3);
	assert_int_equal(st.send_errors, 0);
}

/* More pipelined queries than server.tcp_pipeline (the default), all going upstream: the
 * connection stops reading at the limit and resumes; every query is answered. */
static void
test_tcp_inflight_limit(void **state)
{
	struct fixture *fx = *state;
	enum { N = CONFIG_TCP_PIPELINE + 12 };
	static uint8_t buf[N * 64];
	size_t len = 0;

	tcp_connect(fx);
	for (unsigned i = 0; i < N; i++) {
		char name[64];
		snprintf(name, sizeof(name), "p%u.example.test", i);
		size_t l = build_query(buf + len + 2, (uint16_t)(8000 + i), 0x0100, 1, name, TYPE_A,
				       false);
		put16(buf + len, (uint16_t)l);
		len += 2 + l;
	}
	tcp_send(fx, buf, len);
	assert_true(wait_frames(fx, N, 5000));
	uint16_t ids[N];
	assert_int_equal(tcp_frames(fx, ids, N), N);
	assert_int_equal(fx->up_queries, N);
}

struct conn_probe {
	uv_tcp_t tcp;
	uv_connect_t req;
	int *connected, *eofs;
};

static void
on_probe_connect(uv_connect_t *req, int status)
{
	struct conn_probe *p = req->data;
	if (status == 0)
		(*p->connected)++;
}

static void
on_probe_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn_probe *p = s->data;
	(void)buf;
	if (nread < 0) {
		(*p->eofs)++;
		uv_read_stop(s);
	}
}

/* One connection more than server.tcp_connections_per_client (the default) from one address: that
 * one is closed at once, the others stay. */
static void
test_tcp_conn_limit(void **state)
{
	struct fixture *fx = *state;
	/* one source address: its cap is server.tcp_connections_per_client */
	enum { N = CONFIG_TCP_CONNECTIONS_PER_CLIENT + 1 };
	struct conn_probe *p = calloc(N, sizeof(*p));
	int connected = 0, eofs = 0;
	struct sockaddr_in sa;

	assert_non_null(p);
	set_ip4(&sa, "127.0.0.1", fx->port);
	for (unsigned i = 0; i < N; i++) {
		uv_tcp_init(&fx->loop, &p[i].tcp);
		p[i].tcp.data = &p[i];
		p[i].req.data = &p[i];
		p[i].connected = &connected;
		p[i].eofs = &eofs;
		assert_int_equal(uv_tcp_connect(&p[i].req, &p[i].tcp, (const struct sockaddr *)&sa,
						on_probe_connect), 0);
	}
	uint64_t end = uv_now(&fx->loop) + 3000;
	while (connected < N && uv_now(&fx->loop) < end) {
		bool dummy = false;
		run_until(fx, &dummy, 10);
	}
	assert_int_equal(connected, N);
	for (unsigned i = 0; i < N; i++)
		uv_read_start((uv_stream_t *)&p[i].tcp, on_alloc, on_probe_read);
	end = uv_now(&fx->loop) + 500;
	while (uv_now(&fx->loop) < end) {
		bool dummy = false;
		run_until(fx, &dummy, 10);
	}
	assert_int_equal(eofs, 1);
	struct server_stats st;
	server_get_stats(fx->srv, &st);
	assert_int_equal(st.tcp_accepted, CONFIG_TCP_CONNECTIONS_PER_CLIENT);
	assert_int_equal(st.tcp_rejected, 1);
	for (unsigned i = 0; i < N; i++)
		uv_close((uv_handle_t *)&p[i].tcp, close_cb_noop);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	bool dummy = false;
	run_until(fx, &dummy, 50);
	free(p);
}

static void
on_reload(void *arg, int status)
{
	struct fixture *fx = arg;
	fx->reload_status = status;
	fx->reload_done = true;
}

static void
test_reload(void **state)
{
	struct fixture *fx = *state;
	const struct reply *r;
	struct parsed p;

	r = ask(fx, 0, 4000, "later.test", TYPE_A, false);
	assert_non_null(r);
	assert_true(parse_reply(r->data, r->len, &p));
	assert_memory_equal(p.a, "\xc0\x00\x02\x01", 4);
	assert_int_equal(fx->up_queries, 1);

	/* a valid file: later.test is blocked at once although it is cached */
	const struct policy *before = server_policy(fx->srv);
	write_config(fx, ", later", false);
	fx->reload_done = false;
	assert_int_equal(server_reload(fx->srv, on_reload, fx), 0);
	assert_true(run_until(fx, &fx->reload_done, 5000));
	assert_int_equal(fx->reload_status, 0);
	assert_ptr_not_equal(server_policy(fx->srv), before);
	r = ask(fx, 0, 4001, "later.test", TYPE_A, false);
	assert_non_null(r);
	assert_true(parse_reply(r->data, r->len, &p));
	assert_memory_equal(p.a, "\0\0\0\0", 4);

	/* an invalid file: reported, the current policy keeps serving */
	const struct policy *good = server_policy(fx->srv);
	write_config(fx, "", true);
	fx->reload_done = false;
	assert_int_equal(server_reload(fx->srv, on_reload, fx), 0);
	assert_true(run_until(fx, &fx->reload_done, 5000));
	assert_int_not_equal(fx->reload_status, 0);
	assert_ptr_equal(server_policy(fx->srv), good);
	r = ask(fx, 0, 4002, "later.test", TYPE_A, false);
	assert_non_null(r);
	assert_true(parse_reply(r->data, r->len, &p));
	assert_memory_equal(p.a, "\0\0\0\0", 4);
	r = ask(fx, 0, 4003, "www.example.test", TYPE_A, false);
	assert_non_null(r);

	struct server_stats st;
	server_get_stats(fx->srv, &st);
	assert_int_equal(st.reloads, 1);
	assert_int_equal(st.reload_failures, 1);
}

/* Queries in flight at stop: UDP and TCP waiting for an upstream that never answers. They are
 * cancelled after the drain timeout; the UDP client gets SERVFAIL; everything closes. */
static void
test_shutdown_inflight(void **state)
{
	struct fixture *fx = *state;
	uint8_t q[512];
	struct sockaddr_in sa;

	tcp_connect(fx);
	size_t len = build_query(q + 2, 5001, 0x0100, 1, "slow.test", TYPE_A, false);
	put16(q, (uint16_t)len);
	tcp_send(fx, q, len + 2);

	len = build_query(q, 5000, 0x0100, 1, "slow.test", TYPE_AAAA, false);
	set_ip4(&sa, "127.0.0.1", fx->port);
	uv_buf_t b = uv_buf_init((char *)q, (unsigned int)len);
	fx->got[5000 % MAX_REPLIES] = false;
	assert_true(uv_udp_try_send(&fx->cli[0], &b, 1, (const struct sockaddr *)&sa) > 0);

	/* wait until the upstream saw both */
	uint64_t end = uv_now(&fx->loop) + 3000;
	while (fx->up_queries < 2 && uv_now(&fx->loop) < end) {
		bool dummy = false;
		run_until(fx, &dummy, 10);
	}
	assert_int_equal(fx->up_queries, 2);

	server_set_drain_timeout(fx->srv, 100);
	uint64_t t0 = uv_hrtime();
	server_stop(fx->srv, on_stopped, fx);
	assert_true(run_until(fx, &fx->stopped, 3000));
	uint64_t ms = (uv_hrtime() - t0) / 1000000;
	assert_true(ms < 1500); /* did not wait for the upstream timeout */
	server_free(&fx->srv);

	/* the UDP client got SERVFAIL; the TCP connection was closed */
	bool dummy = false;
	run_until(fx, &dummy, 50);
	assert_true(fx->got[5000 % MAX_REPLIES]);
	struct parsed p;
	const struct reply *r = &fx->replies[5000 % MAX_REPLIES];
	assert_true(parse_reply(r->data, r->len, &p));
	assert_int_equal(p.rcode, 2);
	assert_true(run_until(fx, &fx->tcp_eof, 2000));
}

/* Stop with nothing in flight is immediate and a second stop is harmless. */
static void
test_stop_idle(void **state)
{
	struct fixture *fx = *state;

	tcp_connect(fx);
	uint64_t t0 = uv_hrtime();
	server_stop(fx->srv, on_stopped, fx);
	server_stop(fx->srv, NULL, NULL);
	assert_true(run_until(fx, &fx->stopped, 3000));
	assert_true((uv_hrtime() - t0) / 1000000 < 1000);
	server_free(&fx->srv);
	assert_true(run_until(fx, &fx->tcp_eof, 2000));
}

static void
on_flag(void *arg)
{
	*(bool *)arg = true;
}

/* A port in use: server_start fails naming it; stop still closes everything. */
static void
test_bind_failure(void **state)
{
	struct fixture *fx = *state;
	struct diag diag;
	struct config *cfg = NULL;
	struct policy *pol = NULL;
	struct server *s2 = NULL;

	diag_init(&diag);
	assert_int_equal(config_load(fx->conf, &diag, &cfg), 0);
	assert_int_equal(policy_new(cfg, &diag, &pol), 0);
	diag_clear(&diag);
	assert_int_equal(server_new(&fx->loop, pol, &s2), 0);
	assert_int_equal(server_start(s2), UV_EADDRINUSE);
	bool stopped2 = false;
	server_stop(s2, on_flag, &stopped2);
	assert_true(run_until(fx, &stopped2, 3000));
	server_free(&s2);
	/* the first server still answers */
	assert_non_null(ask(fx, 0, 6000, "ads.test", TYPE_A, false));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_udp_pipeline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_burst, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_pipelining, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_inflight_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tcp_conn_limit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_shutdown_inflight, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_idle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bind_failure, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
