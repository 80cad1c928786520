/*
 * test_json: the one JSON string writer (policy/base/json.c): escapes, UTF-8 checking, and that
 * whatever octets go in, what comes out is one valid JSON string.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"

struct buf {
	char p[4096];
	size_t n;
};

static void
put_buf(void *arg, const char *s, size_t n)
{
	struct buf *b = arg;

	assert_true(b->n + n < sizeof(b->p));
	memcpy(b->p + b->n, s, n);
	b->n += n;
	b->p[b->n] = '\0';
}

static size_t
utf8_len(const unsigned char *s, size_t n)
{
	return json_utf8_seq(s, n);
}

/* A tiny validator: s[0..n) is exactly one JSON string of valid UTF-8, with no raw control
 * octet and no DEL, and only the escapes JSON defines. */
static bool
valid_json_string(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 1;

	if (n < 2 || s[0] != '"' || s[n - 1] != '"')
		return false;
	while (i < n - 1) {
		unsigned char c = s[i];
		if (c == '"' || c < 0x20 || c == 0x7f)
			return false;
		if (c == '\\') {
			if (i + 1 >= n - 1)
				return false;
			char e = (char)s[i + 1];
			if (e == 'u') {
				if (i + 6 > n - 1)
					return false;
				for (size_t k = 2; k < 6; k++)
					if (strchr("0123456789abcdefABCDEF", s[i + k]) == NULL || s[i + k] == 0)
						return false;
				i += 6;
			} else if (strchr("\"\\/bfnrt", e) != NULL && e != '\0') {
				i += 2;
			} else {
				return false;
			}
			continue;
		}
		size_t l = utf8_len(s + i, n - 1 - i);
		if (l == 0)
			return false;
		i += l;
	}
	return true;
}

static void
check(const char *in, size_t n, const char *want, const char *what)
{
	struct buf b = {.n = 0};

	json_write_str(in, n, put_buf, &b);
	if (want != NULL && strcmp(b.p, want) != 0)
		fail_msg("%s: got %s, want %s", what, b.p, want);
	if (!valid_json_string(b.p, b.n))
		fail_msg("%s: not a valid JSON string: %s", what, b.p);
}

static void
test_escapes(void **state)
{
	static const struct {
		const char *in, *want, *what;
	} cases[] = {
	        {"", "\"\"", "empty"},
	        {"plain", "\"plain\"", "plain"},
	        {"q\"b\\", "\"q\\\"b\\\\\"", "quote and backslash"},
	        {"a\nb\tc\rd", "\"a\\nb\\tc\\rd\"", "newline, tab, carriage return"},
	        {"\x7f", "\"\\u007f\"", "DEL"},
	        {"\x1b[31mred\x1b[0m", "\"\\u001b[31mred\\u001b[0m\"", "ESC sequence"},
	        {"\x1b]0;title\x07", "\"\\u001b]0;title\\u0007\"", "OSC with BEL"},
	        {"\x08\x0c", "\"\\u0008\\u000c\"", "backspace, form feed as \\u"},
	        {"/", "\"/\"", "slash kept"},
	        {"caf\xc3\xa9", "\"caf\xc3\xa9\"", "2-octet UTF-8"},
	        {"\xe2\x82\xac", "\"\xe2\x82\xac\"", "3-octet UTF-8"},
	        {"\xf0\x9f\x93\xb1", "\"\xf0\x9f\x93\xb1\"", "4-octet UTF-8"},
	        {"\xed\x9f\xbf", "\"\xed\x9f\xbf\"", "U+D7FF"},
	        {"\xee\x80\x80", "\"\xee\x80\x80\"", "U+E000"},
	        {"\xf4\x8f\xbf\xbf", "\"\xf4\x8f\xbf\xbf\"", "U+10FFFF"},
	        {"\xc2\x80", "\"\xc2\x80\"", "U+0080"},
	        {"\xc0\xaf", "\"\\ufffd\\ufffd\"", "overlong C0"},
	        {"\xc1\xbf", "\"\\ufffd\\ufffd\"", "overlong C1"},
	        {"\xe0\x80\x80", "\"\\ufffd\\ufffd\\ufffd\"", "overlong E0"},
	        {"\xe0\x9f\xbf", "\"\\ufffd\\ufffd\\ufffd\"", "overlong E0 (U+07FF)"},
	        {"\xf0\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "overlong F0"},
	        {"\xf0\x8f\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "overlong F0 (U+FFFF)"},
	        {"\xed\xa0\x80", "\"\\ufffd\\ufffd\\ufffd\"", "high surrogate"},
	        {"\xed\xbf\xbf", "\"\\ufffd\\ufffd\\ufffd\"", "low surrogate"},
	        {"\xf4\x90\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "above U+10FFFF"},
	        {"\xf5\x80\x80\x80", "\"\\ufffd\\ufffd\\ufffd\\ufffd\"", "F5 lead"},
	        {"\xff\xfe", "\"\\ufffd\\ufffd\"", "FF FE"},
	        {"\x80", "\"\\ufffd\"", "lone continuation"},
	        {"\xc3", "\"\\ufffd\"", "2-octet cut short"},
	        {"\xe2\x82", "\"\\ufffd\\ufffd\"", "3-octet cut short"},
	        {"\xf0\x9f\x93", "\"\\ufffd\\ufffd\\ufffd\"", "4-octet cut short"},
	        {"\xe2\x82x", "\"\\ufffd\\ufffdx\"", "3-octet broken by ASCII"},
	        {"\xc3\"", "\"\\ufffd\\\"\"", "2-octet broken by a quote"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		check(cases[i].in, strlen(cases[i].in), cases[i].want, cases[i].what);
}

/* Every octet below 0x20 alone: \n, \t, \r by name, the others as \u00XX; and NUL inside a
 * counted string. */
static void
test_control_octets(void **state)
{
	(void)state;
	for (unsigned c = 0; c < 0x20; c++) {
		char in[1] = {(char)c}, want[16], what[32];
		if (c == '\n')
			strcpy(want, "\"\\n\"");
		else if (c == '\t')
			strcpy(want, "\"\\t\"");
		else if (c == '\r')
			strcpy(want, "\"\\r\"");
		else
			snprintf(want, sizeof(want), "\"\\u%04x\"", c);
		snprintf(what, sizeof(what), "octet 0x%02x", c);
		check(in, 1, want, what);
	}
}

/* Every single octet and every pair of octets gives a valid JSON string. */
static void
test_all_octets(void **state)
{
	(void)state;
	for (unsigned a = 0; a < 256; a++) {
		char in[2] = {(char)a, 0};
		check(in, 1, NULL, "one octet");
		for (unsigned b = 0; b < 256; b++) {
			in[1] = (char)b;
			check(in, 2, NULL, "two octets");
		}
	}
}

/* Long strings (300 octets, longer than a name): plain, all escaped, all multi-octet, and
 * one cut in the middle of a sequence. */
static void
test_long(void **state)
{
	char in[301], want[2048];
	size_t w;

	(void)state;
	memset(in, 'a', 300);
	in[300] = '\0';
	want[0] = '"';
	memcpy(want + 1, in, 300);
	memcpy(want + 301, "\"", 2);
	check(in, 300, want, "300 plain octets");

	memset(in, '"', 300);
	w = 0;
	want[w++] = '"';
	for (int i = 0; i < 300; i++) {
		want[w++] = '\\';
		want[w++] = '"';
	}
	memcpy(want + w, "\"", 2);
	check(in, 300, want, "300 quotes");

	memset(in, 0x01, 300);
	w = 0;
	want[w++] = '"';
	for (int i = 0; i < 300; i++) {
		memcpy(want + w, "\\u0001", 6);
		w += 6;
	}
	memcpy(want + w, "\"", 2);
	check(in, 300, want, "300 control octets");

	for (int i = 0; i < 300; i += 2)
		memcpy(in + i, "\xc3\xa9", 2);
	want[0] = '"';
	memcpy(want + 1, in, 300);
	memcpy(want + 301, "\"", 2);
	check(in, 300, want, "150 two-octet characters");

	/* cut after the first octet of the last character */
	w = 0;
	want[w++] = '"';
	memcpy(want + w, in, 298);
	w += 298;
	memcpy(want + w, "\\ufffd\"", 8);
	check(in, 299, want, "cut in a sequence");
}

static void
test_fput(void **state)
{
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {NULL, "null"},
	        {"", "\"\""},
	        {"tab\tnl\n\x7f", "\"tab\\tnl\\n\\u007f\""},
	        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb1",
	         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\xb1\""},
	        {"\xc3", "\"\\ufffd\""},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *buf = NULL;
		size_t len = 0;
		FILE *f = open_memstream(&buf, &len);
		assert_non_null(f);
		json_fput_str(f, cases[i].in);
		fclose(f);
		if (strcmp(buf, cases[i].want) != 0)
			fail_msg("case %zu: got %s, want %s", i, buf, cases[i].want);
		free(buf);
	}
}

static void
test_utf8_seq(void **state)
{
	static const struct {
		const char *s;
		size_t n, want;
	} cases[] = {
	        {"a", 1, 1},
	        {"\xc3\xa9", 2, 2},
	        {"\xc3\xa9", 1, 0},
	        {"\xe2\x82\xac", 3, 3},
	        {"\xe2\x82\xac", 2, 0},
	        {"\xf0\x9f\x93\xb1", 4, 4},
	        {"\xf0\x9f\x93\xb1", 3, 0},
	        {"\xc0\x80", 2, 0},
	        {"\xed\xa0\x80", 3, 0},
	        {"\xf4\x90\x80\x80", 4, 0},
	        {"\x80", 1, 0},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		assert_int_equal(json_utf8_seq((const unsigned char *)cases[i].s, cases[i].n),
				 cases[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_control_octets),
		cmocka_unit_test(test_all_octets),
		cmocka_unit_test(test_long),
		cmocka_unit_test(test_fput),
		cmocka_unit_test(test_utf8_seq),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
