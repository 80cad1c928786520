/*
 * test_neigh6_dump: the real RTM_GETNEIGH dump on this machine. Whatever the kernel holds (an
 * empty table is fine), the dump completes and every entry is usable; where the environment
 * does not allow netlink sockets the test is reported as skipped, not passed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "neigh6_dump.h"

static void
test_dump(void **state)
{
	(void)state;
	struct neigh6 *t = NULL;
	int rc = neigh6_dump_read(&t);

	if (rc == -EPERM || rc == -EACCES || rc == -EAFNOSUPPORT || rc == -EPROTONOSUPPORT ||
	    rc == -ENOSYS) {
		print_message("netlink sockets are not allowed here: %s\n", strerror(-rc));
		assert_null(t);
		skip();
	}
	if (rc != 0)
		fail_msg("neigh6_dump_read: %s", strerror(-rc));
	assert_non_null(t);
	print_message("%zu usable IPv6 neighbours (%zu others)\n", t->n, t->ignored);
	assert_int_equal(t->malformed, 0);
	for (size_t i = 0; i < t->n; i++) {
		static const uint8_t zero[MAC_LEN];
		assert_memory_not_equal(t->v[i].mac.b, zero, MAC_LEN);
	}
	neigh6_free(&t);

	/* twice in a row: a new socket and sequence each time */
	assert_int_equal(neigh6_dump_read(&t), 0);
	neigh6_free(&t);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dump),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
