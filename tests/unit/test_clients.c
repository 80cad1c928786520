/*
 * test_clients: prefix sets mapping an address to the smallest value containing it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "clients.h"

struct prefix {
	const char *addr;
	unsigned len;
	int value;
};

/* value = a group index: lower wins wherever several prefixes contain an address */
static const struct prefix prefixes[] = {
	{"10.20.0.0", 16, 3},
	{"10.20.5.0", 24, 5},	/* more specific but a later group: 3 still wins */
	{"10.9.9.9", 32, 1},
	{"10.0.0.0", 8, 4},
	{"2001:db8:20::", 48, 0},
	{"2001:db8::", 32, 2},
	{"192.168.1.0", 24, 2},
	{"192.168.0.0", 16, 0},
	{"::ffff:172.16.0.0", 108, 6},	/* IPv4-mapped: same as 172.16.0.0/12 */
};

struct lookup {
	const char *addr;
	int want;
};

static const struct lookup lookups[] = {
	{"10.20.1.1", 3},
	{"10.20.5.7", 3},
	{"10.9.9.9", 1},
	{"10.9.9.8", 4},
	{"10.255.255.255", 4},
	{"11.0.0.0", -1},
	{"192.168.1.5", 0},
	{"192.169.0.1", -1},
	{"172.16.3.4", 6},
	{"172.32.0.1", -1},
	{"2001:db8:20::1", 0},
	{"2001:db8:21::1", 2},
	{"2001:db9::1", -1},
	{"::ffff:10.9.9.9", 1},		/* IPv4-mapped client */
	{"::ffff:10.20.0.1", 3},
	{"::ffff:11.0.0.1", -1},
	{"::ffff:172.20.0.1", 6},
	{"::1", -1},
	{"::", -1},
};

static void
add_prefix(struct clients *c, const struct prefix *p)
{
	uint8_t a[16];
	int family = strchr(p->addr, ':') != NULL ? AF_INET6 : AF_INET;
	assert_int_equal(inet_pton(family, p->addr, a), 1);
	assert_int_equal(clients_add(c, family, a, p->len, p->value), 0);
}

/* looks up through a sockaddr, as the server does */
static int
find(const struct clients *c, const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return clients_find(c, (const struct sockaddr *)&ss);
}

static void
test_lookup_table(void **state)
{
	(void)state;
	struct clients *c = NULL;
	assert_int_equal(clients_new(&c), 0);
	for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
		add_prefix(c, &prefixes[i]);
	for (size_t i = 0; i < sizeof(lookups) / sizeof(lookups[0]); i++) {
		int got = find(c, lookups[i].addr);
		if (got != lookups[i].want)
			fail_msg("%s: got %d, expected %d", lookups[i].addr, got, lookups[i].want);
	}
	assert_true(clients_memory(c) > 0);
	clients_free(&c);
	assert_null(c);
}

static void
test_catch_all(void **state)
{
	(void)state;
	struct clients *c = NULL;
	assert_int_equal(clients_new(&c), 0);
	assert_int_equal(find(c, "1.2.3.4"), -1);
	assert_int_equal(find(c, "2001:db8::1"), -1);
	add_prefix(c, &(struct prefix){"10.0.0.0", 8, 0});
	assert_int_equal(clients_add_all(c, 1), 0);
	assert_int_equal(find(c, "10.1.1.1"), 0);	/* group 0 is tried first */
	assert_int_equal(find(c, "1.2.3.4"), 1);
	assert_int_equal(find(c, "2001:db8::1"), 1);
	assert_int_equal(find(c, "::ffff:1.2.3.4"), 1);
	assert_int_equal(find(c, "::"), 1);
	/* an earlier catch-all shadows later groups */
	assert_int_equal(clients_add_all(c, 0), 0);
	add_prefix(c, &(struct prefix){"1.2.3.0", 24, 2});
	assert_int_equal(find(c, "1.2.3.4"), 0);
	clients_free(&c);
}

static void
test_host_bits_and_edges(void **state)
{
	(void)state;
	struct clients *c = NULL;
	uint8_t a[16] = {10, 1, 2, 3};
	assert_int_equal(clients_new(&c), 0);
	/* host bits beyond the prefix are ignored */
	assert_int_equal(clients_add(c, AF_INET, a, 8, 7), 0);
	assert_int_equal(find(c, "10.200.0.1"), 7);
	assert_int_equal(clients_add(c, AF_INET, a, 33, 1), -EINVAL);
	assert_int_equal(clients_add(c, AF_INET6, a, 129, 1), -EINVAL);
	assert_int_equal(clients_add(c, AF_UNIX, a, 8, 1), -EINVAL);
	assert_int_equal(clients_add(c, AF_INET, a, 8, -1), -EINVAL);
	/* /32 and /128 host prefixes */
	add_prefix(c, &(struct prefix){"255.255.255.255", 32, 1});
	assert_int_equal(find(c, "255.255.255.255"), 1);
	assert_int_equal(find(c, "255.255.255.254"), -1);
	add_prefix(c, &(struct prefix){"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 128, 2});
	assert_int_equal(find(c, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"), 2);
	assert_int_equal(find(c, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe"), -1);
	struct sockaddr sa = {.sa_family = AF_UNIX};
	assert_int_equal(clients_find(c, &sa), -1);
	assert_int_equal(clients_find(c, NULL), -1);
	clients_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_table),
		cmocka_unit_test(test_catch_all),
		cmocka_unit_test(test_host_bits_and_edges),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
