/*
 * test_mac: EUI-48 parsing, formatting, the locally-administered bit and nibble prefixes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "mac.h"

struct parse_case {
	const char *text;
	const char *want;	/* canonical form, NULL = -EINVAL */
};

static const struct parse_case parse_cases[] = {
	{"aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff"},
	{"AA:BB:CC:DD:EE:FF", "aa:bb:cc:dd:ee:ff"},
	{"aa-bb-cc-dd-ee-ff", "aa:bb:cc:dd:ee:ff"},
	{"aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff"},
	{"AABBCCDDEEFF", "aa:bb:cc:dd:ee:ff"},
	{"0:1:2:3:4:5", "00:01:02:03:04:05"},	/* one-digit octets, as some tools print */
	{"00:1a:2B:3c:4D:5e", "00:1a:2b:3c:4d:5e"},
	{"ff:ff:ff:ff:ff:ff", "ff:ff:ff:ff:ff:ff"},
	{"00:00:00:00:00:00", "00:00:00:00:00:00"},
	{"", NULL},
	{"aa:bb:cc:dd:ee", NULL},		/* five octets */
	{"aa:bb:cc:dd:ee:ff:00", NULL},		/* seven */
	{"aa:bb:cc:dd:ee:", NULL},		/* trailing separator */
	{":aa:bb:cc:dd:ee", NULL},
	{"aa::bb:cc:dd:ee", NULL},
	{"aa:bb-cc:dd:ee:ff", NULL},		/* mixed separators */
	{"aaa:bb:cc:dd:ee:f", NULL},		/* three digits */
	{"gg:bb:cc:dd:ee:ff", NULL},
	{"aabbccddeef", NULL},			/* eleven digits */
	{"aabbccddeeff0", NULL},
	{"aabb.ccdd.eef", NULL},
	{"aab.bccdd.eeff", NULL},
	{"aabb:ccdd:eeff", NULL},
	{"aa bb cc dd ee ff", NULL},
	{" aa:bb:cc:dd:ee:ff", NULL},
	{"aa:bb:cc:dd:ee:ff ", NULL},
	{"+a:bb:cc:dd:ee:ff", NULL},
};

static void
test_parse_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct mac m;
		memset(&m, 0x5a, sizeof(m));
		int rc = mac_parse(c->text, strlen(c->text), &m);
		char buf[MAC_STRLEN];
		if (c->want == NULL) {
			if (rc != -EINVAL)
				fail_msg("'%s': expected -EINVAL, got %d", c->text, rc);
			/* output untouched on failure */
			for (int k = 0; k < MAC_LEN; k++)
				assert_int_equal(m.b[k], 0x5a);
			continue;
		}
		if (rc != 0)
			fail_msg("'%s': expected success, got %d", c->text, rc);
		assert_string_equal(mac_format(&m, buf), c->want);
		/* the canonical form reads back to the same address */
		struct mac m2;
		assert_int_equal(mac_parse(buf, strlen(buf), &m2), 0);
		assert_true(mac_equal(&m, &m2));
	}
}

static void
test_parse_not_nul_terminated(void **state)
{
	(void)state;
	const char text[] = "aa:bb:cc:dd:ee:ff trailing";
	struct mac m;
	assert_int_equal(mac_parse(text, 17, &m), 0);
	char buf[MAC_STRLEN];
	assert_string_equal(mac_format(&m, buf), "aa:bb:cc:dd:ee:ff");
	assert_int_equal(mac_parse(text, 18, &m), -EINVAL);
}

struct bits_case {
	const char *text;
	bool randomised;
	bool multicast;
	bool zero;
};

static const struct bits_case bits_cases[] = {
	{"00:11:22:33:44:55", false, false, false},
	{"02:00:00:00:00:00", true, false, false},	/* what Android gives ordinary apps */
	{"da:a1:19:00:00:01", true, false, false},	/* second digit a */
	{"ee:00:00:00:00:01", true, false, false},
	{"16:00:00:00:00:01", true, false, false},	/* second digit 6 */
	{"a8:00:00:00:00:01", false, false, false},
	{"01:00:5e:00:00:fb", false, true, false},	/* IPv4 multicast */
	{"33:33:00:00:00:01", true, true, false},	/* IPv6 multicast */
	{"ff:ff:ff:ff:ff:ff", true, true, false},
	{"00:00:00:00:00:00", false, false, true},
};

static void
test_bits_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bits_cases) / sizeof(bits_cases[0]); i++) {
		const struct bits_case *c = &bits_cases[i];
		struct mac m;
		assert_int_equal(mac_parse(c->text, strlen(c->text), &m), 0);
		if (mac_is_randomised(&m) != c->randomised ||
		    mac_is_multicast(&m) != c->multicast || mac_is_zero(&m) != c->zero)
			fail_msg("'%s': wrong randomised/multicast/zero bits", c->text);
	}
}

static void
test_u64(void **state)
{
	(void)state;
	struct mac m, m2;
	assert_int_equal(mac_parse("70:b3:d5:f2:f1:23", 17, &m), 0);
	assert_true(mac_to_u64(&m) == UINT64_C(0x70b3d5f2f123));
	mac_from_u64(UINT64_C(0x70b3d5f2f123), &m2);
	assert_true(mac_equal(&m, &m2));
	m2.b[5] ^= 1;
	assert_false(mac_equal(&m, &m2));
}

struct prefix_case {
	const char *text;
	int bits;		/* -1 = -EINVAL */
	const char *formatted;
	const char *inside;	/* an address it covers */
	const char *outside;	/* one it does not */
};

static const struct prefix_case prefix_cases[] = {
	{"aa:bb:cc", 24, "aa:bb:cc", "aa:bb:cc:00:00:01", "aa:bb:cd:00:00:01"},
	{"AA-BB-CC", 24, "aa:bb:cc", "aa:bb:cc:ff:ff:ff", "ab:bb:cc:00:00:00"},
	{"aabbcc", 24, "aa:bb:cc", "aa:bb:cc:12:34:56", "aa:bb:c0:12:34:56"},
	{"aa:bb:cc:d", 28, "aa:bb:cc:d", "aa:bb:cc:d0:00:00", "aa:bb:cc:e0:00:00"},
	{"aa:bb:cc:d", 28, "aa:bb:cc:d", "aa:bb:cc:df:ff:ff", "aa:bb:cc:cf:ff:ff"},
	{"aabbccd", 28, "aa:bb:cc:d", "aa:bb:cc:d1:23:45", "aa:bb:cc:c1:23:45"},
	{"70B3D5F2F", 36, "70:b3:d5:f2:f", "70:b3:d5:f2:f0:00", "70:b3:d5:f2:e0:00"},
	{"70:b3:d5:f2:f", 36, "70:b3:d5:f2:f", "70:b3:d5:f2:ff:ff", "70:b3:d5:f3:f0:00"},
	{"aa:bb:cc:dd:ee:ff", 48, "aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:fe"},
	{"aabb.ccdd.eeff", 48, "aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:ff", "aa:bb:cc:dd:ee:fe"},
	{"0:1:2:3:4:5", 48, "00:01:02:03:04:05", "00:01:02:03:04:05", "00:01:02:03:04:06"},
	{"aa:bb:cc:dd:ee:f", 44, "aa:bb:cc:dd:ee:f", "aa:bb:cc:dd:ee:f7", "aa:bb:cc:dd:ee:07"},
	{"a", 4, "a", "a0:00:00:00:00:00", "b0:00:00:00:00:00"},
	{"02", 8, "02", "02:12:34:56:78:9a", "03:12:34:56:78:9a"},
	{"aa:bb:cc:dd:ee:ff/25", 25, "aa:bb:cc:80:00:00/25", "aa:bb:cc:ff:00:00",
	 "aa:bb:cc:7f:00:00"},
	{"aa:bb:cc/24", 24, "aa:bb:cc", "aa:bb:cc:01:02:03", "aa:bb:cb:01:02:03"},
	{"02:00:00:00:00:00/7", 7, "02:00:00:00:00:00/7", "03:11:11:11:11:11",
	 "04:00:00:00:00:00"},
	{"aa:bb:cc/25", -1, NULL, NULL, NULL},		/* longer than what is written */
	{"aa:bb:cc:dd:ee:ff/0", -1, NULL, NULL, NULL},
	{"aa:bb:cc:dd:ee:ff/49", -1, NULL, NULL, NULL},
	{"aa:bb:cc:dd:ee:ff/", -1, NULL, NULL, NULL},
	{"aa:bb:cc:dd:ee:ff/x", -1, NULL, NULL, NULL},
	{"aa:b:cc", -1, NULL, NULL, NULL},		/* one digit before the last group */
	{"aa:bb:cc:", -1, NULL, NULL, NULL},
	{"", -1, NULL, NULL, NULL},
	{"aabbccddeeff0", -1, NULL, NULL, NULL},
	{"aa:bb:cc:dd:ee:ff:00", -1, NULL, NULL, NULL},
	{"xyz", -1, NULL, NULL, NULL},
};

static void
test_prefix_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(prefix_cases) / sizeof(prefix_cases[0]); i++) {
		const struct prefix_case *c = &prefix_cases[i];
		struct mac_prefix p = {.bits = 99};
		int rc = mac_prefix_parse(c->text, strlen(c->text), &p);
		if (c->bits < 0) {
			if (rc != -EINVAL)
				fail_msg("'%s': expected -EINVAL, got %d", c->text, rc);
			assert_int_equal(p.bits, 99);
			continue;
		}
		if (rc != 0 || p.bits != (unsigned)c->bits)
			fail_msg("'%s': rc %d bits %u, expected %d bits", c->text, rc, p.bits,
				 c->bits);
		char buf[MAC_PSTRLEN];
		assert_string_equal(mac_prefix_format(&p, buf), c->formatted);
		struct mac_prefix p2;
		assert_int_equal(mac_prefix_parse(buf, strlen(buf), &p2), 0);
		assert_int_equal(p2.bits, p.bits);
		assert_true(mac_equal(&p.mac, &p2.mac));
		struct mac in, out;
		assert_int_equal(mac_parse(c->inside, strlen(c->inside), &in), 0);
		assert_int_equal(mac_parse(c->outside, strlen(c->outside), &out), 0);
		if (!mac_prefix_match(&p, &in))
			fail_msg("'%s' should cover %s", c->text, c->inside);
		if (mac_prefix_match(&p, &out))
			fail_msg("'%s' should not cover %s", c->text, c->outside);
	}
}

/* Every octet value: the sixteen digits in both cases, nothing else. */
static void
test_hexval(void **state)
{
	(void)state;
	static const char digits[] = "0123456789abcdef";
	for (int c = -128; c < 128; c++) {
		int want = -1;
		for (int d = 0; d < 16; d++)
			if (c == digits[d] || (d >= 10 && c == digits[d] - 'a' + 'A'))
				want = d;
		if (mac_hexval((char)c) != want)
			fail_msg("mac_hexval(%d) = %d, expected %d", c, mac_hexval((char)c), want);
	}
	assert_int_equal(mac_hexval('F'), 15);
	assert_int_equal(mac_hexval('g'), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_table),
		cmocka_unit_test(test_parse_not_nul_terminated),
		cmocka_unit_test(test_bits_table),
		cmocka_unit_test(test_u64),
		cmocka_unit_test(test_prefix_table),
		cmocka_unit_test(test_hexval),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
