/*
 * test_pgstore: the COPY text values of the PostgreSQL sink (pgstore_put_value): what the
 * server reads back must be the JSON line's value, whatever octets a name holds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "pgstore_int.h"

static void
test_values(void **state)
{
	static const struct {
		const char *in;
		size_t n;
		const char *out;
	} cases[] = {
	        {NULL, 0, "\\N|"},
	        {"", 0, "\\N|"},
	        {"dev-0001", 8, "dev-0001|"},
	        {"a\tb", 3, "a\\tb|"},
	        {"a\nb\rc", 5, "a\\nb\\rc|"},
	        {"back\\slash", 10, "back\\\\slash|"},
	        {"caf\xc3\xa9", 5, "caf\xc3\xa9|"},            /* valid UTF-8 kept */
	        {"x\xff" "y", 3, "x\xef\xbf\xbdy|"},          /* invalid octet: U+FFFD */
	        {"\xc3", 1, "\xef\xbf\xbd|"},                  /* truncated sequence */
	        {"\xe0\x80\x80", 3, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"}, /* overlong */
	        {"ab\0cd", 5, "ab|"},                          /* NUL ends it */
	        {"\\N", 2, "\\\\N|"},                           /* the text \N, not NULL */
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char buf[64];
		char *end = pgstore_put_value(buf, cases[i].in, cases[i].n, '|');
		*end = '\0';
		assert_string_equal(buf, cases[i].out);
		assert_true((size_t)(end - buf) <= 3 * cases[i].n + 3);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_values),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
