/*
 * test_diag: diagnostics formatting, counters, ordering and printing (policy/diag.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "diag.h"

static void
test_format(void **state)
{
	(void)state;
	static const struct {
		enum diag_level level;
		const char *file;
		int line, col;
		const char *path;
		const char *expect;
		const char *bare;	/* without the level, for log lines; NULL = expect */
	} cases[] = {
		{DIAG_ERROR, "c.yaml", 14, 5, "groups[1].action", "c.yaml:14:5: groups[1].action: m 7",
		 NULL},
		{DIAG_WARNING, "c.yaml", 3, 3, "lists.b", "c.yaml:3:3: lists.b: warning: m 7",
		 "c.yaml:3:3: lists.b: m 7"},
		{DIAG_NOTE, "l.txt", 9, 0, NULL, "l.txt:9: m 7", NULL},
		{DIAG_ERROR, "c.yaml", 0, 0, NULL, "c.yaml: m 7", NULL},
		{DIAG_ERROR, "c.yaml", 0, 4, NULL, "c.yaml: m 7", NULL}, /* a column without a line */
		{DIAG_ERROR, NULL, 0, 0, "server", "server: m 7", NULL},
		{DIAG_WARNING, NULL, 0, 0, NULL, "warning: m 7", "m 7"},
		{DIAG_ERROR, "c.yaml", -1, -1, "x", "c.yaml: x: m 7", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct diag d;
		diag_init(&d);
		diag_add(&d, cases[i].level, cases[i].file, cases[i].line, cases[i].col,
			 cases[i].path, "m %d", 7);
		assert_int_equal(d.n, 1);
		assert_string_equal(d.v[0].text, cases[i].expect);
		assert_string_equal(d.v[0].bare,
				    cases[i].bare != NULL ? cases[i].bare : cases[i].expect);
		assert_string_equal(d.v[0].msg, "m 7");
		assert_int_equal(d.nerrors, cases[i].level == DIAG_ERROR);
		assert_int_equal(d.nwarnings, cases[i].level == DIAG_WARNING);
		diag_clear(&d);
		assert_int_equal(d.n, 0);
		assert_null(d.v);
	}
}

/* Whatever a quoted file held, a message stays one line of plain text. */
static void
test_control_octets(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	diag_add(&d, DIAG_NOTE, "dhcpd.leases", 4, 0, NULL, "invalid state '%s'",
		 "a\nb\r\x1b[31mred\x7f\tz");
	assert_int_equal(d.n, 1);
	assert_string_equal(d.v[0].msg, "invalid state 'a?b??[31mred??z'");
	assert_string_equal(d.v[0].text, "dhcpd.leases:4: invalid state 'a?b??[31mred??z'");
	diag_clear(&d);
}

static void
test_sort_and_print(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	diag_add(&d, DIAG_ERROR, "a", 1, 1, NULL, "first, not sorted");
	diag_add(&d, DIAG_ERROR, "b", 5, 2, NULL, "e1");
	diag_add(&d, DIAG_WARNING, "b", 2, 9, NULL, "w1");
	diag_add(&d, DIAG_NOTE, "b", 5, 2, NULL, "n1"); /* same place as e1: stays after it */
	diag_add(&d, DIAG_ERROR, "b", 2, 1, NULL, "e2");
	diag_add(&d, DIAG_ERROR, "a", 9, 9, NULL, "e3");
	diag_sort(&d, 1);
	static const char *const order[] = {"first, not sorted", "e3", "e2", "w1", "e1", "n1"};
	for (size_t i = 0; i < 6; i++)
		assert_string_equal(d.v[i].msg, order[i]);
	assert_int_equal(d.nerrors, 4);
	assert_int_equal(d.nwarnings, 1);

	static const struct {
		enum diag_level min;
		const char *expect;
	} prints[] = {
		{DIAG_ERROR, "a:1:1: first, not sorted\na:9:9: e3\nb:2:1: e2\nb:5:2: e1\n"},
		{DIAG_WARNING,
		 "a:1:1: first, not sorted\na:9:9: e3\nb:2:1: e2\nb:2:9: warning: w1\nb:5:2: e1\n"},
		{DIAG_NOTE, "a:1:1: first, not sorted\na:9:9: e3\nb:2:1: e2\nb:2:9: warning: w1\n"
			    "b:5:2: e1\nb:5:2: n1\n"},
	};
	for (size_t i = 0; i < 3; i++) {
		char buf[512] = "";
		FILE *f = fmemopen(buf, sizeof(buf) - 1, "w");
		assert_non_null(f);
		diag_print(&d, f, prints[i].min);
		fclose(f);
		assert_string_equal(buf, prints[i].expect);
	}
	diag_clear(&d);
	/* reusable after clear */
	diag_add(&d, DIAG_ERROR, NULL, 0, 0, NULL, "%s", "again");
	assert_int_equal(d.nerrors, 1);
	assert_string_equal(d.v[0].text, "again");
	diag_clear(&d);
}

static void
test_many(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	for (int i = 0; i < 1000; i++)
		diag_add(&d, i % 2 ? DIAG_WARNING : DIAG_ERROR, "f", 1000 - i, 1, NULL, "n%d", i);
	assert_int_equal(d.n, 1000);
	assert_int_equal(d.nerrors, 500);
	assert_int_equal(d.nwarnings, 500);
	diag_sort(&d, 0);
	for (size_t i = 1; i < d.n; i++)
		assert_true(d.v[i - 1].line < d.v[i].line);
	diag_clear(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_control_octets),
		cmocka_unit_test(test_sort_and_print),
		cmocka_unit_test(test_many),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
