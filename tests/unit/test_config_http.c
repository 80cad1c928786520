/*
 * test_config_http: the http section (policy/config_http.c): listen addresses, users with
 * crypt(3) hashes, tokens with SHA-256, roles, and the refusal of a non-loopback address
 * without users or tokens.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_harness.h"
#include "diag.h"

#define Y "$y$j9T$snsujKv9zs0FVDjIDS/gp.$q2C2hoLpr5VxR7zDlvdVTlrBNFCZgPxlsgpOa3JxG0C"
#define S6                                                                                         \
	"$6$j2GP8VZtuNd0QwSL$GbceEN2Seb9ufyjAqdJmXW1aDO8TXt.KNx1jt6JDLLB/YHgpEVdLg67Jq3NPXY9FvVr"  \
	"NS4FW4u5l2rQIA5zQP0"
#define HEX "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"

static const struct error_case error_cases[] = {
        {"public without auth", "http:\n  listen: [\"0.0.0.0:9153\"]\n",
         "t.yaml:2:12: http.listen[0]: '0.0.0.0:9153' is not a loopback address: it needs "
         "http.users or http.tokens (without them every request is an administrator's)"},
        {"public v6 without auth", "http:\n  listen: [\"[::]:9153\"]\n",
         "t.yaml:2:12: http.listen[0]: '[::]:9153' is not a loopback address: it needs "
         "http.users or http.tokens (without them every request is an administrator's)"},
        {"bad address", "http:\n  listen: [\"localhost:80\"]\n",
         "t.yaml:2:12: http.listen[0]: bad address 'localhost:80' (expected IPv4, IPv4:port, "
         "IPv6 or [IPv6]:port)"},
        {"duplicate", "http:\n  listen: [\"127.0.0.1:1\", \"127.0.0.1:1\"]\n",
         "t.yaml:2:27: http.listen[1]: duplicate address '127.0.0.1:1' (first at line 2)"},
        {"plain password", "http:\n  users:\n    - {name: a, password: secret, role: admin}\n",
         "t.yaml:3:17: http.users[0].password: not a crypt(3) hash (expected yescrypt '$y$...' "
         "or SHA-512 '$6$...', as `veto passwd` prints)"},
        {"md5 hash",
         "http:\n  users:\n    - {name: a, password: '$1$ab$cdefghijklmnopqrstuv', role: read}\n",
         "t.yaml:3:17: http.users[0].password: not a crypt(3) hash (expected yescrypt '$y$...' "
         "or SHA-512 '$6$...', as `veto passwd` prints)"},
        {"cut hash", "http:\n  users:\n    - {name: a, password: '" S6 "x', role: read}\n",
         "t.yaml:3:17: http.users[0].password: not a crypt(3) hash (expected yescrypt '$y$...' "
         "or SHA-512 '$6$...', as `veto passwd` prints)"},
        {"unknown role", "http:\n  users:\n    - {name: a, password: '" Y "', role: root}\n",
         "t.yaml:3:104: http.users[0].role: unknown value 'root' (expected read, admin)"},
        {"no role", "http:\n  users:\n    - {name: a, password: '" Y "'}\n",
         "t.yaml:3:7: http.users[0]: needs a role (read or admin)"},
        {"no name", "http:\n  users:\n    - {password: '" Y "', role: read}\n",
         "t.yaml:3:7: http.users[0]: needs a name"},
        {"duplicate user",
         "http:\n  users:\n    - {name: a, password: '" Y "', role: read}\n"
         "    - {name: a, password: '" Y "', role: admin}\n",
         "t.yaml:4:7: http.users[1]: duplicate name 'a' (first at line 3)"},
        {"short token", "http:\n  tokens:\n    - {name: t, sha256: abcd, role: read}\n",
         "t.yaml:3:17: http.tokens[0].sha256: not a SHA-256 in hex (64 digits: `printf %s TOKEN "
         "| sha256sum`)"},
        {"token not hex", "http:\n  tokens:\n    - {name: t, sha256: " HEX "z, role: read}\n",
         "t.yaml:3:17: http.tokens[0].sha256: not a SHA-256 in hex (64 digits: `printf %s TOKEN "
         "| sha256sum`)"},
        {"no port", "http:\n  listen: [\"127.0.0.1\"]\n",
         "t.yaml:2:12: http.listen[0]: '127.0.0.1' has no port (write '127.0.0.1:9153')"},
        {"v6 without brackets", "http:\n  listen: [\"::1:9153\"]\n",
         "t.yaml:2:12: http.listen[0]: '::1:9153' is an IPv6 address without brackets: with a "
         "port, write '[::1]:9153'"},
        {"unknown key", "http:\n  listn: []\n",
         "t.yaml:2:3: http.listn: unknown key (did you mean 'listen'?)"},
};

static void
test_errors(void **state)
{
	(void)state;
	assert_int_equal(
	        run_cases(error_cases, sizeof(error_cases) / sizeof(error_cases[0]), false), 0);
}

static void
test_loaded(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	const char *yaml = "http:\n"
	                   "  listen: [\"0.0.0.0:9153\", \"[::1]:9154\", \"127.0.0.1:80\"]\n"
	                   "  users:\n"
	                   "    - {name: alice, password: '" Y "', role: admin}\n"
	                   "    - {name: bob, password: '" S6 "', role: read}\n"
	                   "  tokens:\n"
	                   "    - {name: prom, sha256: " HEX ", role: read}\n";
	diag_init(&d);
	int rc = load(yaml, &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->http.nlisten, 3);
	assert_false(config_addr_is_loopback(&cfg->http.listen[0].ss));
	assert_true(config_addr_is_loopback(&cfg->http.listen[1].ss));
	assert_int_equal(ntohs(((struct sockaddr_in *)&cfg->http.listen[2].ss)->sin_port), 80);
	assert_int_equal(cfg->http.nusers, 2);
	assert_string_equal(cfg->http.users[0].name, "alice");
	assert_int_equal(cfg->http.users[0].role, CONFIG_HTTP_ADMIN);
	assert_string_equal(cfg->http.users[1].password, S6);
	assert_int_equal(cfg->http.users[1].role, CONFIG_HTTP_READ);
	assert_int_equal(cfg->http.ntokens, 1);
	assert_int_equal(cfg->http.tokens[0].sha256[0], 0x9f);
	assert_int_equal(cfg->http.tokens[0].sha256[31], 0x08);
	config_free(&cfg);
	diag_clear(&d);

	/* absent: off; loopback without auth: fine */
	diag_init(&d);
	assert_int_equal(load("http:\n  listen: [\"127.0.0.2:8080\", \"[::1]:8080\"]\n", &d, &cfg),
	                 0);
	assert_int_equal(cfg->http.nusers + cfg->http.ntokens, 0);
	config_free(&cfg);
	assert_int_equal(load("log: {}\n", &d, &cfg), 0);
	assert_int_equal(cfg->http.nlisten, 0);
	config_free(&cfg);
	diag_clear(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_loaded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
