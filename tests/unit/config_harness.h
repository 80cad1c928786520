/*
 * config_harness: what the configuration tests share (test_config.c, test_devices.c): load YAML
 * text from memory as "t.yaml" in /etc/veto, look for one full diagnostic line, and run a table
 * of cases that must fail (or load with one warning) with a given message.
 *
 * Header-only; include it after <cmocka.h>, "config.h" and "diag.h".
 */
#ifndef VETO_TEST_CONFIG_HARNESS_H
#define VETO_TEST_CONFIG_HARNESS_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "diag.h"
#include "policy.h"

/* Prints every message of d to stderr (when a test is about to fail). */
static inline void
dump(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		fprintf(stderr, "    | %s\n", d->v[i].text);
}

/* True when d holds exactly this message line. */
static inline bool
has_text(const struct diag *d, const char *text)
{
	for (size_t i = 0; i < d->n; i++)
		if (strcmp(d->v[i].text, text) == 0)
			return true;
	return false;
}

static inline int
load(const char *yaml, struct diag *d, struct config **cfg)
{
	return config_load_text("t.yaml", "/etc/veto", yaml, strlen(yaml), d, cfg);
}

/* The policy of a configuration text that must load (the test fails, with the messages,
 * when it does not). Include cmocka.h before this header. */
static inline struct policy *
compile_policy(const char *yaml)
{
	struct diag d;
	struct config *cfg = NULL;
	struct policy *p = NULL;
	diag_init(&d);
	int rc = load(yaml, &d, &cfg);
	if (rc == 0 && (rc = policy_new(cfg, &d, &p)) != 0)
		config_free(&cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	diag_clear(&d);
	return p;
}

/* The configuration of case i of a table, which must load with no message at all (the test
 * fails, with the messages, when it does not). Include cmocka.h before this header. */
static inline struct config *
load_clean(size_t i, const char *yaml)
{
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = load(yaml, &d, &cfg);
	if (rc != 0 || d.n != 0) {
		dump(&d);
		fail_msg("case %zu: rc %d, %zu messages", i, rc, d.n);
	}
	diag_clear(&d);
	return cfg;
}

struct error_case {
	const char *name;
	const char *yaml;
	const char *expect;	/* one full diagnostic line */
};

/* Loads every case of a table. Without want_warning a case passes when the load fails with
 * -EINVAL, no config and at least one error; with it, when the config loads with no error and
 * exactly one warning. Either way diag must hold the expected text. Returns how many cases
 * failed (each reported with its messages). */
static inline size_t
run_cases(const struct error_case *cases, size_t n, bool want_warning)
{
	size_t failed = 0;
	for (size_t i = 0; i < n; i++) {
		const struct error_case *tc = &cases[i];
		struct diag d;
		struct config *cfg = NULL;
		diag_init(&d);
		int rc = load(tc->yaml, &d, &cfg);
		bool ok = want_warning
				  ? rc == 0 && cfg != NULL && d.nerrors == 0 && d.nwarnings == 1
				  : rc == -EINVAL && cfg == NULL && d.nerrors > 0;
		if (!ok || !has_text(&d, tc->expect)) {
			fprintf(stderr, "FAIL %s: rc %d, expected\n    > %s\n  got\n", tc->name, rc,
				tc->expect);
			dump(&d);
			failed++;
		}
		config_free(&cfg);
		diag_clear(&d);
	}
	return failed;
}

#endif
