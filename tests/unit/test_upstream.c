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
#include "upstream_harness.h"

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
	/* a's socket was retired by the reconfigure and closed once r1 was answered: only b's
	 * pool is left */
	run_for(env, 20);
	unsigned nsets = 0, aopen = 0;
	for (const struct upstream_sockset *set = env->u->sets; set != NULL; set = set->next) {
		nsets++;
		if (upstream_same_addr((const struct sockaddr *)&set->ss,
				       (const struct sockaddr *)&a->addr))
			aopen += set->nopen;
	}
	assert_int_equal(aopen, 0);
	assert_int_equal(nsets, 2);	/* a's empty pool is freed at the next reconfigure */
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
