/*
 * test_neigh: /proc/net/arp parsing: complete entries kept, incomplete and non-Ethernet ones
 * skipped silently, malformed lines noted, lookups by address.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "neigh.h"

#define ARP_FIXTURE VETO_TEST_DATA "/neigh/arp"

struct find_case {
	const char *ip;
	const char *mac;	/* NULL = not in the table */
	const char *dev;
};

static const struct find_case find_cases[] = {
	{"192.168.1.1", "00:1a:2b:3c:4d:5e", "eth0"},
	{"192.168.1.20", "90:ff:d6:12:34:56", "wlan0"},	/* also on eth1: the first line wins */
	{"192.168.1.21", "da:a1:19:6b:0c:11", "wlan0"},	/* randomised MACs are kept */
	{"192.168.1.22", NULL, NULL},		/* incomplete, flags 0x0 */
	{"192.168.1.23", "a4:50:46:00:00:01", "wlan0"},	/* permanent + complete, 0x6 */
	{"192.168.1.24", NULL, NULL},		/* zero MAC */
	{"10.0.0.5", NULL, NULL},		/* InfiniBand */
	{"192.168.1.30", NULL, NULL},		/* malformed MAC */
	{"192.168.1.31", NULL, NULL},		/* missing columns */
	{"192.168.1.32", NULL, NULL},		/* flags not in 0x form */
	{"172.16.0.9", "00:11:22:33:44:58", "br-lan"},	/* after a blank line */
	{"192.168.1.2", NULL, NULL},
};

static void
test_fixture(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	struct neigh *t = NULL;
	assert_int_equal(neigh_read_file(ARP_FIXTURE, &d, &t), 0);
	assert_non_null(t);
	assert_int_equal(t->n, 6);
	assert_int_equal(t->lines, 13);
	assert_int_equal(t->incomplete, 3);
	assert_int_equal(t->skipped, 4);
	assert_int_equal(d.nerrors, 0);
	/* one note per malformed line, located */
	assert_int_equal(d.n, 4);
	static const char *const notes[] = {
		":10: skipped: invalid ipv4 address",
		":11: skipped: invalid hardware address",
		":12: skipped: expected 6 columns",
		":13: skipped: invalid hardware type or flags",
	};
	for (size_t i = 0; i < 4; i++) {
		char want[512];
		snprintf(want, sizeof(want), "%s%s", ARP_FIXTURE, notes[i]);
		assert_string_equal(d.v[i].text, want);
	}
	for (size_t i = 0; i < sizeof(find_cases) / sizeof(find_cases[0]); i++) {
		const struct find_case *c = &find_cases[i];
		uint8_t a[4];
		assert_int_equal(inet_pton(AF_INET, c->ip, a), 1);
		const struct neigh_entry *e = neigh_find(t, a);
		if (c->mac == NULL) {
			if (e != NULL)
				fail_msg("%s: expected no entry", c->ip);
			continue;
		}
		if (e == NULL)
			fail_msg("%s: expected an entry", c->ip);
		char buf[MAC_STRLEN];
		assert_string_equal(mac_format(&e->mac, buf), c->mac);
		assert_string_equal(e->dev, c->dev);
		assert_true((e->flags & 0x2) != 0);
	}
	neigh_free(&t);
	assert_null(t);
	diag_clear(&d);
}

struct buf_case {
	const char *name;
	const char *text;
	int want;
	size_t n;		/* entries on success */
};

static const struct buf_case buf_cases[] = {
        {"header only",
         "IP address       HW type     Flags       HW address            Mask     "
         "Device\n",
         0, 0},
        {"no final newline",
         "IP address       HW type     Flags       HW address            Mask     Device\n"
         "192.168.1.1      0x1         0x2         00:1a:2b:3c:4d:5e     *        eth0",
         0, 1},
        {"empty", "", -EINVAL, 0},
        {"no header",
         "192.168.1.1      0x1         0x2         00:1a:2b:3c:4d:5e     *        eth0\n", -EINVAL,
         0},
        {"interface name too long",
         "IP address       HW type     Flags       HW address            Mask     Device\n"
         "192.168.1.1      0x1         0x2         00:1a:2b:3c:4d:5e     *        "
         "averyveryverylongifname\n",
         0, 0},
};

static void
test_buf_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(buf_cases) / sizeof(buf_cases[0]); i++) {
		const struct buf_case *c = &buf_cases[i];
		struct neigh *t = (struct neigh *)c;	/* untouched on failure */
		int rc = neigh_parse_buf(c->text, strlen(c->text), "arp", NULL, &t);
		if (rc != c->want)
			fail_msg("%s: got %d, expected %d", c->name, rc, c->want);
		if (rc != 0) {
			assert_ptr_equal(t, (struct neigh *)c);
			continue;
		}
		assert_int_equal(t->n, c->n);
		uint8_t a[4] = {192, 168, 1, 1};
		assert_true((neigh_find(t, a) != NULL) == (c->n > 0));
		neigh_free(&t);
	}
}

static void
test_missing_file(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	struct neigh *t = NULL;
	assert_int_equal(neigh_read_file("/nonexistent/arp", &d, &t), -ENOENT);
	assert_null(t);
	assert_int_equal(d.nerrors, 1);
	diag_clear(&d);
}

/* The live table of this machine parses (whatever it holds) */
static void
test_proc(void **state)
{
	(void)state;
	struct neigh *t = NULL;
	int rc = neigh_read_file(NULL, NULL, &t);
	if (rc == -ENOENT)
		skip();
	assert_int_equal(rc, 0);
	assert_int_equal(t->skipped, 0);
	neigh_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture),
		cmocka_unit_test(test_buf_table),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_proc),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
