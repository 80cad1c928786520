/*
 * test_config_store: the store section (policy/config_store.c): a libpq connection string
 * without a password, the instance name, the password file, the bounds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_harness.h"
#include "diag.h"

#define NOPASS                                                                                     \
	"the connection string holds a password: put it in store.password_file (or PGPASSWORD, "   \
	"~/.pgpass) instead; the connection string is shown and logged"

static const struct error_case error_cases[] = {
        {"password in URI", "store:\n  postgresql: \"postgresql://veto:s3cret@db/veto\"\n",
         "t.yaml:2:15: store.postgresql: " NOPASS},
        {"password in URI query",
         "store:\n  postgresql: \"postgresql://veto@db/veto?password=s3cret\"\n",
         "t.yaml:2:15: store.postgresql: " NOPASS},
        {"password keyword", "store:\n  postgresql: \"host=db user=veto password = x\"\n",
         "t.yaml:2:15: store.postgresql: " NOPASS},
        {"not a connection string", "store:\n  postgresql: db.example\n",
         "t.yaml:2:15: store.postgresql: not a libpq connection string: expected "
         "\"postgresql://user@host/db\" or \"host=... dbname=... user=...\""},
        {"bad instance",
         "store:\n  postgresql: \"postgresql://veto@db/veto\"\n"
         "  instance: \"dns 1\"\n",
         "t.yaml:3:13: store.instance: an instance name is 1-63 of A-Z a-z 0-9 . _ - (e.g. dns1)"},
        {"spool zero", "store:\n  postgresql: \"postgresql://veto@db/veto\"\n  spool_mb: 0\n",
         "t.yaml:3:3: store.spool_mb: expected an integer from 1 to 1048576, got '0'"},
        {"unknown key", "store:\n  postgres: x\n",
         "t.yaml:2:3: store.postgres: unknown key (did you mean 'postgresql'?)"},
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
	diag_init(&d);
	int rc = load("store:\n"
	              "  postgresql: \"postgresql://veto@db.example/veto?sslmode=verify-full\"\n"
	              "  instance: dns1\n"
	              "  password_file: /etc/veto/pgpass\n"
	              "  spool_mb: 64\n",
	              &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_string_equal(cfg->store.postgresql,
	                    "postgresql://veto@db.example/veto?sslmode=verify-full");
	assert_string_equal(cfg->store.instance, "dns1");
	assert_string_equal(cfg->store.password_file, "/etc/veto/pgpass");
	assert_int_equal(cfg->store.spool_mb, 64);
	assert_int_equal(cfg->store.resync_s, 60);
	config_free(&cfg);

	/* absent: off, defaults */
	assert_int_equal(load("log: {}\n", &d, &cfg), 0);
	assert_null(cfg->store.postgresql);
	assert_null(cfg->store.instance);
	assert_int_equal(cfg->store.spool_mb, 1024);
	config_free(&cfg);
	/* the keyword form without a password */
	assert_int_equal(
	        load("store: {postgresql: \"host=/run/postgresql dbname=veto\"}\n", &d, &cfg), 0);
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
