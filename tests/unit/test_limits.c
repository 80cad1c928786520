/*
 * Unit tests for the descriptor budget of resolver/dns/limits.c (limits_size): the reserve,
 * the quarter for TCP, server.tcp_connections and SERVER_MAX_QUERIES as ceilings.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "server_int.h"

static void
test_budget(void **state)
{
	static const struct {
		uint64_t nofile;
		size_t nlisten;
		uint32_t tcp_cfg;
		uint32_t upstream, tcp;
	} cases[] = {
	        /* systemd's default soft limit, two listen addresses: 1024 - 132 = 892 */
	        {1024, 2, 256, 669, 223},
	        {1024, 2, 100, 792, 100},
	        /* the hard limit systemd allows: bounded by the slots and the configuration */
	        {524288, 2, 256, SERVER_MAX_QUERIES, 256},
	        {524288, 1, 65536, SERVER_MAX_QUERIES, 65536},
	        /* too few descriptors: a minimum that still serves */
	        {100, 1, 256, 48, 16},
	        {0, 1, 256, 48, 16},
	        {4096, 0, 1, 3967, 1},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint32_t up = 0, tcp = 0;
		limits_size(cases[i].nofile, cases[i].nlisten, cases[i].tcp_cfg, &up, &tcp);
		assert_int_equal(up, cases[i].upstream);
		assert_int_equal(tcp, cases[i].tcp);
		if (cases[i].nofile > LIMITS_FD_RESERVE + 64)
			assert_true((uint64_t)up + tcp + LIMITS_FD_RESERVE <= cases[i].nofile);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
