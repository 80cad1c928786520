/*
 * Unit tests for resolver/dns/clientkey.h, clientcount.c and ratelimit.c: prefix keys, exact
 * counts through growth and deletion, token buckets (burst, refill, rate 0), bounded eviction,
 * the top of the limited clients.
 */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clientcount.h"
#include "clientkey.h"
#include "ratelimit.h"

static void
key_of(const char *ip, enum clientkey_kind kind, struct clientkey *k)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)&ss;
		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	}
	clientkey_of((const struct sockaddr *)&ss, kind, k);
}

static void
test_prefix_keys(void **state)
{
	static const struct {
		const char *a, *b;
		enum clientkey_kind kind;
		bool equal;
		const char *text;
	} cases[] = {
	        {"192.0.2.7", "192.0.2.200", CLIENTKEY_QUERIES_PREFIX, true, "192.0.2.0/24"},
	        {"192.0.2.7", "192.0.3.7", CLIENTKEY_QUERIES_PREFIX, false, "192.0.2.0/24"},
	        {"192.0.2.7", "192.0.2.200", CLIENTKEY_QUERIES, false, "192.0.2.7"},
	        {"2001:db8:0:ab::1", "2001:db8:0:ff:1::9", CLIENTKEY_QUERIES_PREFIX, true,
	         "2001:db8::/56"},
	        {"2001:db8:0:1ab::1", "2001:db8:0:ab::1", CLIENTKEY_QUERIES_PREFIX, false,
	         "2001:db8:0:100::/56"},
	        {"2001:db8::1", "2001:db8::1", CLIENTKEY_TCP, true, "2001:db8::1"},
	        {"::ffff:192.0.2.7", "192.0.2.7", CLIENTKEY_QUERIES, true, "192.0.2.7"},
	        {"::ffff:192.0.2.7", "192.0.2.99", CLIENTKEY_QUERIES_PREFIX, true, "192.0.2.0/24"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct clientkey a, b;
		char text[64];
		key_of(cases[i].a, cases[i].kind, &a);
		key_of(cases[i].b, cases[i].kind, &b);
		assert_int_equal(clientkey_equal(&a, &b), cases[i].equal);
		/* what the hash covers: equal keys agree on it, an IPv4 key is zero past it */
		size_t hl = clientkey_hash_len(&a);
		assert_int_equal(hl, a.family == 4 ? 6 : sizeof(a));
		if (cases[i].equal)
			assert_int_equal(clientkey_hash_len(&b), hl);
		for (size_t o = hl; o < sizeof(a); o++)
			assert_int_equal(((const uint8_t *)&a)[o], 0);
		clientkey_text(&a, text, sizeof(text));
		assert_string_equal(text, cases[i].text);
	}
	/* kinds do not mix */
	struct clientkey a, b;
	key_of("192.0.2.7", CLIENTKEY_QUERIES, &a);
	key_of("192.0.2.7", CLIENTKEY_TCP, &b);
	assert_false(clientkey_equal(&a, &b));
}

/* Thousands of keys in and out (growth, backward-shift deletion): counts stay exact. */
static void
test_clientcount(void **state)
{
	struct clientcount t;
	enum { N = 3000 };
	(void)state;
	clientcount_init(&t);
	struct clientkey k;
	key_of("10.0.0.1", CLIENTKEY_QUERIES, &k);
	assert_int_equal(clientcount_get(&t, &k), 0);
	for (unsigned i = 0; i < N; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i / 65536, (i / 256) % 256, i % 256);
		key_of(ip, CLIENTKEY_QUERIES, &k);
		for (unsigned j = 0; j <= i % 3; j++)
			assert_int_equal(clientcount_add(&t, &k), 0);
	}
	assert_int_equal(t.used, N);
	/* take every other key out, the rest keep their counts */
	for (unsigned i = 0; i < N; i += 2) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i / 65536, (i / 256) % 256, i % 256);
		key_of(ip, CLIENTKEY_QUERIES, &k);
		for (unsigned j = 0; j <= i % 3; j++)
			clientcount_sub(&t, &k);
		assert_int_equal(clientcount_get(&t, &k), 0);
	}
	for (unsigned i = 0; i < N; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.%u.%u.%u", i / 65536, (i / 256) % 256, i % 256);
		key_of(ip, CLIENTKEY_QUERIES, &k);
		assert_int_equal(clientcount_get(&t, &k), i % 2 ? i % 3 + 1 : 0);
	}
	assert_int_equal(t.used, N / 2);
	clientcount_destroy(&t);
}

/* add_below: counts up to the limit and no further, a limit of 0 admits nothing, and the keys
 * it adds are the same as clientcount_add's (through growth and deletion). */
static void
test_clientcount_add_below(void **state)
{
	struct clientcount t;
	struct clientkey k, other;
	(void)state;
	clientcount_init(&t);
	key_of("192.0.2.9", CLIENTKEY_QUERIES, &k);
	key_of("192.0.2.10", CLIENTKEY_QUERIES, &other);
	assert_int_equal(clientcount_add_below(&t, &k, 0), -EBUSY);
	assert_int_equal(t.used, 0);
	for (unsigned i = 0; i < 3; i++)
		assert_int_equal(clientcount_add_below(&t, &k, 3), 0);
	assert_int_equal(clientcount_add_below(&t, &k, 3), -EBUSY);
	assert_int_equal(clientcount_get(&t, &k), 3);
	assert_int_equal(clientcount_add_below(&t, &k, 4), 0);
	assert_int_equal(clientcount_get(&t, &k), 4);
	assert_int_equal(clientcount_get(&t, &other), 0);
	/* many keys through growth, then out again: the table ends empty */
	for (unsigned i = 0; i < 2000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 256, i % 256);
		key_of(ip, CLIENTKEY_QUERIES, &other);
		assert_int_equal(clientcount_add_below(&t, &other, 2), 0);
		assert_int_equal(clientcount_add_below(&t, &other, 2), 0);
		assert_int_equal(clientcount_add_below(&t, &other, 2), -EBUSY);
	}
	assert_int_equal(t.used, 2001);
	assert_int_equal(clientcount_get(&t, &k), 4);
	for (unsigned i = 0; i < 2000; i++) {
		char ip[32];
		snprintf(ip, sizeof(ip), "10.0.%u.%u", i / 256, i % 256);
		key_of(ip, CLIENTKEY_QUERIES, &other);
		assert_int_equal(clientcount_get(&t, &other), 2);
		clientcount_sub(&t, &other);
		clientcount_sub(&t, &other);
	}
	for (unsigned i = 0; i < 4; i++)
		clientcount_sub(&t, &k);
	assert_int_equal(t.used, 0);
	clientcount_destroy(&t);
}

static void
test_token_bucket(void **state)
{
	struct ratelimit *rl = NULL;
	struct clientkey a, b;
	(void)state;
	assert_int_equal(ratelimit_new(64, &rl), 0);
	key_of("192.0.2.1", CLIENTKEY_QUERIES, &a);
	key_of("192.0.2.2", CLIENTKEY_QUERIES, &b);
	/* burst 5 at 2 per second: 5 pass at once, then one every 500 ms */
	for (int i = 0; i < 5; i++)
		assert_true(ratelimit_take(rl, &a, 2, 5, 1000));
	assert_false(ratelimit_take(rl, &a, 2, 5, 1000));
	assert_false(ratelimit_take(rl, &a, 2, 5, 1499));
	assert_true(ratelimit_take(rl, &a, 2, 5, 1500));
	assert_false(ratelimit_take(rl, &a, 2, 5, 1500));
	/* another key has its own bucket */
	assert_true(ratelimit_take(rl, &b, 2, 5, 1500));
	/* a long pause refills to the burst, not beyond */
	for (int i = 0; i < 5; i++)
		assert_true(ratelimit_take(rl, &a, 2, 5, 100000));
	assert_false(ratelimit_take(rl, &a, 2, 5, 100000));
	/* rate 0: no limit */
	for (int i = 0; i < 100; i++)
		assert_true(ratelimit_take(rl, &a, 0, 0, 100000));
	/* the top: a limited 4 times (1000, 1000, 1499, 1500 ... 100000) */
	struct ratelimit_top top[3];
	assert_int_equal(ratelimit_top(rl, CLIENTKEY_QUERIES, top, 3), 1);
	assert_true(clientkey_equal(&top[0].key, &a));
	assert_int_equal(top[0].limited, 4);
	assert_int_equal(ratelimit_top(rl, CLIENTKEY_QUERIES, top, 3), 0); /* reset */
	ratelimit_free(&rl);
	assert_null(rl);
}

/* More keys than entries: each lookup evicts within its set, nothing grows, a key evicted comes
 * back with a full bucket; the top keeps the most limited first. */
static void
test_eviction_and_top(void **state)
{
	struct ratelimit *rl = NULL;
	(void)state;
	assert_int_equal(ratelimit_new(16, &rl), 0);
	for (unsigned i = 0; i < 1000; i++) {
		char ip[32];
		struct clientkey k;
		snprintf(ip, sizeof(ip), "198.51.%u.%u", i / 256, i % 256);
		key_of(ip, CLIENTKEY_ERRORS, &k);
		assert_true(ratelimit_take(rl, &k, 1, 1, 5000 + i));
	}
	struct clientkey k[3];
	key_of("203.0.113.1", CLIENTKEY_QUERIES, &k[0]);
	key_of("203.0.113.2", CLIENTKEY_QUERIES, &k[1]);
	key_of("203.0.113.3", CLIENTKEY_QUERIES, &k[2]);
	for (unsigned j = 0; j < 3; j++) {
		for (unsigned n = 0; n < 1 + 3 * j; n++)
			(void)ratelimit_take(rl, &k[j], 1, 1, 9000);
	}
	struct ratelimit_top top[2];
	assert_int_equal(ratelimit_top(rl, CLIENTKEY_QUERIES, top, 2), 2);
	assert_true(clientkey_equal(&top[0].key, &k[2]));
	assert_int_equal(top[0].limited, 6);
	assert_true(clientkey_equal(&top[1].key, &k[1]));
	assert_int_equal(top[1].limited, 3);
	ratelimit_free(&rl);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_prefix_keys),
	        cmocka_unit_test(test_clientcount),
	        cmocka_unit_test(test_clientcount_add_below),
	        cmocka_unit_test(test_token_bucket),
	        cmocka_unit_test(test_eviction_and_top),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
