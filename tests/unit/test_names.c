/*
 * test_names: canonical names from text and wire, presentation form, suffix hashes.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

/* "a.a.a...." with n one-octet labels */
static size_t
many_labels(char *buf, unsigned n)
{
	size_t o = 0;
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			buf[o++] = '.';
		buf[o++] = (char)('a' + i % 26);
	}
	buf[o] = '\0';
	return o;
}

/* labels of 63 octets then one shorter label, total text length exactly len */
static void
long_name(char *buf, size_t len)
{
	size_t o = 0;
	while (o < len) {
		size_t room = len - o;
		size_t l = room > 63 ? 63 : room;
		if (room > 63 && room - 63 < 2)
			l = room - 2;	/* leave room for ".x" */
		memset(buf + o, 'x', l);
		o += l;
		if (o < len)
			buf[o++] = '.';
	}
	buf[o] = '\0';
}

struct text_case {
	const char *in;
	int rc;
	const char *out;	/* presentation form expected on success */
	int nlabels;
};

static const struct text_case text_cases[] = {
	{"example.com", 0, "example.com", 2},
	{"Example.COM", 0, "example.com", 2},
	{"example.com.", 0, "example.com", 2},
	{"WWW.Tracking.MIUI.com.", 0, "www.tracking.miui.com", 4},
	{".", 0, ".", 0},
	{"com", 0, "com", 1},
	{"a_b-c.d0", 0, "a_b-c.d0", 2},
	{"xn--bcher-kva.example", 0, "xn--bcher-kva.example", 2},
	{"0.0.0.0", 0, "0.0.0.0", 4},
	{"", -EINVAL, NULL, 0},
	{"..", -EINVAL, NULL, 0},
	{".com", -EINVAL, NULL, 0},
	{"a..com", -EINVAL, NULL, 0},
	{"example.com..", -EINVAL, NULL, 0},
	{"exa mple.com", -EINVAL, NULL, 0},
	{"b\xc3\xbc" "cher.example", -EINVAL, NULL, 0},
	{"a*.com", -EINVAL, NULL, 0},
	{"*.com", -EINVAL, NULL, 0},
	{"a\\.b.com", -EINVAL, NULL, 0},
	{"example.com^", -EINVAL, NULL, 0},
	{"a/b", -EINVAL, NULL, 0},
};

static void
test_from_text_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
		const struct text_case *tc = &text_cases[i];
		struct names_name n;
		const char *why = NULL;
		int rc = names_from_text(&n, tc->in, strlen(tc->in), &why);
		if (rc != tc->rc)
			fail_msg("'%s': rc %d, expected %d", tc->in, rc, tc->rc);
		if (rc != 0) {
			assert_non_null(why);
			continue;
		}
		char buf[NAMES_MAX_TEXT];
		size_t len = names_to_text(&n, buf);
		assert_string_equal(buf, tc->out);
		assert_int_equal(len, strlen(tc->out));
		assert_int_equal(n.nlabels, tc->nlabels);
		assert_int_equal(n.wire[n.len - 1], 0);
	}
}

static void
test_from_text_not_terminated(void **state)
{
	(void)state;
	struct names_name n;
	const char text[] = "example.comXYZ";
	assert_int_equal(names_from_text(&n, text, 11, NULL), 0);
	char buf[NAMES_MAX_TEXT];
	names_to_text(&n, buf);
	assert_string_equal(buf, "example.com");
}

static void
test_limits(void **state)
{
	(void)state;
	char buf[1024];
	struct names_name n;
	const char *why = NULL;

	/* 127 labels is the most that fits; 128 does not (254 characters) */
	size_t len = many_labels(buf, 127);
	assert_int_equal(len, 253);
	assert_int_equal(names_from_text(&n, buf, len, &why), 0);
	assert_int_equal(n.nlabels, 127);
	assert_int_equal(n.len, 255);
	len = many_labels(buf, 128);
	assert_int_equal(names_from_text(&n, buf, len, &why), -EINVAL);
	assert_string_equal(why, "name too long");

	/* 253 characters with a trailing dot is fine, 254 is not */
	long_name(buf, 253);
	assert_int_equal(strlen(buf), 253);
	assert_int_equal(names_from_text(&n, buf, 253, &why), 0);
	assert_int_equal(n.len, 255);
	strcat(buf, ".");
	assert_int_equal(names_from_text(&n, buf, 254, &why), 0);
	long_name(buf, 254);
	assert_int_equal(names_from_text(&n, buf, 254, &why), -EINVAL);

	/* label of 63 octets is fine, 64 is not */
	memset(buf, 'a', 63);
	memcpy(buf + 63, ".com", 5);
	assert_int_equal(names_from_text(&n, buf, strlen(buf), &why), 0);
	memset(buf, 'a', 64);
	memcpy(buf + 64, ".com", 5);
	assert_int_equal(names_from_text(&n, buf, strlen(buf), &why), -EINVAL);
	assert_string_equal(why, "label too long");
}

static void
test_label_offsets(void **state)
{
	(void)state;
	struct names_name n;
	assert_int_equal(names_from_text(&n, "ab.c.def", 8, NULL), 0);
	assert_int_equal(n.nlabels, 3);
	assert_int_equal(n.label_off[0], 0);
	assert_int_equal(n.label_off[1], 3);
	assert_int_equal(n.label_off[2], 5);
	assert_int_equal(n.label_off[3], 9);	/* the root label */
	assert_int_equal(n.len, 10);
	static const char *const want[] = {"ab.c.def", "c.def", "def", "."};
	for (unsigned i = 0; i <= 3; i++) {
		char buf[NAMES_MAX_TEXT];
		names_suffix_to_text(&n, i, buf);
		assert_string_equal(buf, want[i]);
	}
}

struct wire_case {
	const char *what;
	uint8_t msg[64];
	size_t len;
	size_t start;
	int rc;
	const char *out;
	size_t end;
};

static const struct wire_case wire_cases[] = {
	{"plain", {3, 'W', 'w', 'W', 2, 'E', 'x', 0}, 8, 0, 0, "www.ex", 8},
	{"root", {0}, 1, 0, 0, ".", 1},
	{"pointer back", {2, 'e', 'x', 0, 1, 'A', 0xc0, 0}, 8, 4, 0, "a.ex", 8},
	{"pointer forward", {0xc0, 2, 1, 'a', 0}, 5, 0, -EBADMSG, NULL, 0},
	{"pointer to itself", {0, 0xc0, 1}, 3, 1, -EBADMSG, NULL, 0},
	{"truncated label", {5, 'a', 'b'}, 3, 0, -EBADMSG, NULL, 0},
	{"missing root", {1, 'a'}, 2, 0, -EBADMSG, NULL, 0},
	{"truncated pointer", {1, 'a', 0xc0}, 3, 0, -EBADMSG, NULL, 0},
	{"label type 0x40", {0x41, 'a', 0}, 3, 0, -EBADMSG, NULL, 0},
	{"empty", {0}, 0, 0, -EBADMSG, NULL, 0},
	{"binary octets", {2, '.', ' ', 0}, 4, 0, 0, "\\046\\032", 4},
};

static void
test_from_wire_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(wire_cases) / sizeof(wire_cases[0]); i++) {
		const struct wire_case *wc = &wire_cases[i];
		struct names_name n;
		size_t pos = wc->start;
		int rc = names_from_wire(&n, wc->msg, wc->len, &pos);
		if (rc != wc->rc)
			fail_msg("%s: rc %d, expected %d", wc->what, rc, wc->rc);
		if (rc != 0) {
			assert_int_equal(pos, wc->start);	/* untouched on failure */
			continue;
		}
		char buf[NAMES_MAX_TEXT];
		names_to_text(&n, buf);
		assert_string_equal(buf, wc->out);
		assert_int_equal(pos, wc->end);
	}
}

static void
test_from_wire_limits(void **state)
{
	(void)state;
	uint8_t msg[600];
	struct names_name n;
	size_t pos;

	/* 127 one-octet labels = 255 octets: fine; 128 labels: too long */
	for (unsigned i = 0; i < 128; i++) {
		msg[2 * i] = 1;
		msg[2 * i + 1] = 'a';
	}
	msg[254] = 0;
	pos = 0;
	assert_int_equal(names_from_wire(&n, msg, 255, &pos), 0);
	assert_int_equal(n.nlabels, 127);
	assert_int_equal(n.len, 255);
	msg[254] = 1;
	msg[256] = 0;
	pos = 0;
	assert_int_equal(names_from_wire(&n, msg, 257, &pos), -EBADMSG);

	/* too long through compression: 5 x 63-octet labels chained by pointers */
	size_t o = 0;
	msg[o++] = 0;				/* root at 0 */
	size_t prev = 0;
	for (int k = 0; k < 5; k++) {
		size_t here = o;
		msg[o++] = 63;
		memset(msg + o, 'x', 63);
		o += 63;
		msg[o++] = (uint8_t)(0xc0 | (prev >> 8));
		msg[o++] = (uint8_t)prev;
		prev = here;
	}
	pos = prev;
	assert_int_equal(names_from_wire(&n, msg, o, &pos), -EBADMSG);
}

/* msg copied to a heap block of exactly len octets: under ASan, a read past the message (the
 * eight-octet copies) is reported even when the caller's array goes on. Freed by the caller. */
static uint8_t *
exact_copy(const uint8_t *msg, size_t len)
{
	uint8_t *m = malloc(len > 0 ? len : 1);
	assert_non_null(m);
	memcpy(m, msg, len);
	return m;
}

/* names_from_wire lowercases 'A'..'Z' and nothing else: every octet value at every position of
 * labels of every length (the octets around the capitals, '@' '[' '`' '{' and 0x80 and above,
 * stay as they are). */
static void
test_from_wire_lowercase(void **state)
{
	(void)state;
	uint8_t msg[2 + 63 + 1 + 2 + 8];
	memset(msg, 'Q', sizeof(msg));
	/* pad 0: the message ends with the name; pad 8: more octets follow (read 8 at a time) */
	for (unsigned pad = 0; pad <= 8; pad += 8)
	for (unsigned len = 1; len <= 63; len++) {
		for (unsigned v = 0; v < 256; v++) {
			msg[0] = (uint8_t)len;
			for (unsigned k = 0; k < len; k++)
				msg[1 + k] = (uint8_t)(v + 37 * k);
			msg[1 + len] = 1;	/* a second label, "Z", after it */
			msg[2 + len] = 'Z';
			msg[3 + len] = 0;
			struct names_name n;
			size_t pos = 0;
			uint8_t *m = exact_copy(msg, 4 + len + pad);
			int rc = names_from_wire(&n, m, 4 + len + pad, &pos);
			free(m);
			assert_int_equal(rc, 0);
			assert_int_equal(pos, 4 + len);
			assert_int_equal(n.len, 4 + len);
			assert_int_equal(n.nlabels, 2);
			assert_int_equal(n.wire[0], len);
			for (unsigned k = 0; k < len; k++) {
				uint8_t c = msg[1 + k];
				uint8_t want = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
				if (n.wire[1 + k] != want)
					fail_msg("pad %u len %u octet %u: 0x%02x -> 0x%02x", pad, len,
						 k, c, n.wire[1 + k]);
			}
			assert_int_equal(n.wire[1 + len], 1);
			assert_int_equal(n.wire[2 + len], 'z');
			assert_int_equal(n.wire[3 + len], 0);
			assert_int_equal(n.label_off[1], 1 + len);
			assert_int_equal(n.label_off[2], 3 + len);
		}
	}
}

/* names_match_wire: the name in any case matches, in place; a shorter message, another name, a
 * compressed form or a longer name starting alike does not. */
static void
test_match_wire(void **state)
{
	(void)state;
	struct names_name n;
	assert_int_equal(names_from_text(&n, "u12-345.Miss.Example", 20, NULL), 0);
	uint8_t msg[64] = { 0 };
	memcpy(msg + 3, "\x07U12-345\x04MISS\x07" "exAMPLE\x00", 22);
	assert_true(names_match_wire(&n, msg, 25, 3));
	assert_true(names_match_wire(&n, msg, sizeof(msg), 3));
	assert_false(names_match_wire(&n, msg, 24, 3));		/* cut short */
	assert_false(names_match_wire(&n, msg, 25, 26));	/* past the end */
	for (size_t k = 3; k < 25; k++) {			/* any octet changed */
		for (unsigned d = 1; d < 256; d++) {
			uint8_t keep = msg[k];
			msg[k] = (uint8_t)(keep + d);
			bool same_letter = (keep | 0x20) >= 'a' && (keep | 0x20) <= 'z' &&
					   (msg[k] ^ keep) == 0x20;
			assert_int_equal(names_match_wire(&n, msg, sizeof(msg), 3), same_letter);
			msg[k] = keep;
		}
	}
	/* compressed: "u12-345" then a pointer to "miss.example" elsewhere */
	uint8_t comp[64];
	memcpy(comp, "\x04miss\x07" "example\x00\x07u12-345\xc0\x00", 24);
	assert_false(names_match_wire(&n, comp, 24, 14));
	struct names_name m;
	size_t pos = 14;
	assert_int_equal(names_from_wire(&m, comp, 24, &pos), 0);
	assert_true(names_equal(&m, &n));	/* (the caller's fallback reads it) */
}

/* names_check_wire agrees with names_from_wire: on the table above, at the limits, and on
 * random messages built of short labels, pointers (backwards and forwards) and odd octets. */
static void
check_agrees(const uint8_t *msg_in, size_t len, size_t start)
{
	struct names_name n;
	size_t p1 = start, p2 = start, wl = 999;
	uint8_t *msg = exact_copy(msg_in, len);
	int rc1 = names_from_wire(&n, msg, len, &p1);
	int rc2 = names_check_wire(msg, len, &p2, &wl);
	free(msg);

	assert_int_equal(rc1, rc2);
	assert_int_equal(p1, p2);
	if (rc1 == 0)
		assert_int_equal(wl, n.len);
	else
		assert_int_equal(wl, 999);	/* nothing written on failure */
}

static void
test_check_wire(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(wire_cases) / sizeof(wire_cases[0]); i++)
		check_agrees(wire_cases[i].msg, wire_cases[i].len, wire_cases[i].start);

	uint8_t msg[600];
	for (unsigned i = 0; i < 128; i++) {
		msg[2 * i] = 1;
		msg[2 * i + 1] = 'a';
	}
	msg[254] = 0;
	check_agrees(msg, 255, 0);
	check_agrees(msg, 254, 0);
	msg[254] = 1;
	msg[256] = 0;
	check_agrees(msg, 257, 0);
	/* the longest name (127 one-octet labels and the root: 255 octets) with a record's 10
	 * octets after it, as in a reply: the eight-octet copies write up to its last octets */
	for (unsigned i = 0; i < 127; i++) {
		msg[2 * i] = 1;
		msg[2 * i + 1] = 'A';
	}
	msg[254] = 0;
	memset(msg + 255, 0x5a, 10);
	check_agrees(msg, 265, 0);
	{
		struct names_name n;
		size_t p = 0;
		uint8_t *m = exact_copy(msg, 265);
		assert_int_equal(names_from_wire(&n, m, 265, &p), 0);
		free(m);
		assert_int_equal(n.len, 255);
		assert_int_equal(n.nlabels, 127);
		assert_int_equal(p, 255);
		assert_int_equal(n.wire[253], 'a');
		assert_int_equal(n.wire[254], 0);
	}

	uint64_t x = 0x9e3779b97f4a7c15u;
	unsigned accepted = 0;
	for (unsigned round = 0; round < 20000; round++) {
		size_t len = 0;
		while (len < 300) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			unsigned r = (unsigned)(x % 100);
			if (r < 8) {
				msg[len++] = 0;
			} else if (r < 16) {
				size_t t = (size_t)((x >> 20) % (len + 4));
				msg[len++] = (uint8_t)(0xc0 | (t >> 8));
				msg[len++] = (uint8_t)t;
			} else if (r < 18) {
				msg[len++] = (uint8_t)(x >> 24);	/* any octet */
			} else {
				unsigned c = r < 90 ? 1 + (unsigned)((x >> 32) % 5) : 63;
				msg[len++] = (uint8_t)c;
				for (unsigned k = 0; k < c && len < sizeof(msg); k++)
					msg[len++] = (uint8_t)('A' + k);
			}
		}
		for (size_t start = 0; start < 40; start++) {
			check_agrees(msg, len, start);
			check_agrees(msg, len / 2, start);
			size_t p = start, wl;
			accepted += names_check_wire(msg, len, &p, &wl) == 0;
		}
	}
	assert_true(accepted > 1000);	/* the random messages hold names, not only garbage */
}

static void
test_equal(void **state)
{
	(void)state;
	struct names_name a, b, c;
	assert_int_equal(names_from_text(&a, "Foo.Example", 11, NULL), 0);
	assert_int_equal(names_from_text(&b, "foo.example.", 12, NULL), 0);
	assert_int_equal(names_from_text(&c, "foo.example.org", 15, NULL), 0);
	assert_true(names_equal(&a, &b));
	assert_false(names_equal(&a, &c));
}

static void
test_hash_suffixes(void **state)
{
	(void)state;
	struct names_name n, s;
	assert_int_equal(names_from_text(&n, "a.tracking.miui.com", 19, NULL), 0);
	uint64_t h[NAMES_MAX_LABELS];
	names_hash_suffixes(&n, 42, h);
	for (unsigned i = 0; i <= n.nlabels; i++) {
		char buf[NAMES_MAX_TEXT];
		size_t len = names_suffix_to_text(&n, i, buf);
		assert_int_equal(names_from_text(&s, buf, len, NULL), 0);
		assert_true(names_hash(&s, 42) == h[i]);
		for (unsigned j = 0; j < i; j++)
			assert_true(h[j] != h[i]);
	}
	assert_true(names_hash(&n, 42) != names_hash(&n, 43));
	/* label boundaries matter: "ab.c" and "a.bc" differ */
	struct names_name x, y;
	assert_int_equal(names_from_text(&x, "ab.c", 4, NULL), 0);
	assert_int_equal(names_from_text(&y, "a.bc", 4, NULL), 0);
	assert_true(names_hash(&x, 1) != names_hash(&y, 1));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_from_text_table),
		cmocka_unit_test(test_from_text_not_terminated),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_label_offsets),
		cmocka_unit_test(test_from_wire_table),
		cmocka_unit_test(test_from_wire_limits),
		cmocka_unit_test(test_check_wire),
		cmocka_unit_test(test_match_wire),
		cmocka_unit_test(test_from_wire_lowercase),
		cmocka_unit_test(test_equal),
		cmocka_unit_test(test_hash_suffixes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
