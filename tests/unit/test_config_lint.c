/*
 * test_config_lint: the checks of a whole configuration that catch what would silently disable
 * a ban (policy/config_lint.c): unknown vendors in groups, listen addresses without a port,
 * signature entries naming no list, an unreadable OUI directory, clients that match no group.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"
#include "config_harness.h"
#include "diag.h"
#include "policy.h"
#include "vendors.h"

#define BANNED "devices: {oui: false}\ngroups:\n  - name: banned\n    vendors: "
#define REST   "\n  - name: rest\n"

/* ---- errors ---- */

static const struct error_case error_cases[] = {
	/* group vendors: known are the registry's, the signatures', the hostname patterns' and
	 * the inventory's vendors */
	{"vendor typo", BANNED "[Xiaomi, Opo, Hauwei]" REST,
	 "t.yaml:4:23: groups[0].vendors[1]: unknown vendor 'Opo' (did you mean 'Oppo'?)"},
	{"vendor transposed", BANNED "[Xiaomi, Opo, Hauwei]" REST,
	 "t.yaml:4:28: groups[0].vendors[2]: unknown vendor 'Hauwei' (did you mean 'Huawei'?)"},
	{"vendor of the third group",
	 "devices: {}\ngroups:\n  - {name: a, clients: [10.0.0.0/8]}\n  - {name: b, clients: "
	 "[192.168.0.0/16]}\n  - name: c\n    vendors: [Xiomi]\n",
	 "t.yaml:6:15: groups[2].vendors[0]: unknown vendor 'Xiomi' (did you mean 'Xiaomi'?)"},
	{"vendor nothing gives", BANNED "[Acme]" REST,
	 "t.yaml:4:15: groups[0].vendors[0]: unknown vendor 'Acme' (no signature, hostname pattern, "
	 "inventory device or MAC registry gives it; known: Xiaomi, Oppo, OnePlus, Realme, Vivo, "
	 "Huawei, Honor, Samsung and the vendors of devices.signatures and "
	 "devices.hostname_vendors)"},
	{"vendor close to a signature vendor",
	 "devices:\n  oui: false\n  signatures: {Acmephone: [acme.example]}\ngroups:\n"
	 "  - {name: b, vendors: [Acmefone]}\n  - {name: rest}\n",
	 "t.yaml:5:25: groups[0].vendors[0]: unknown vendor 'Acmefone' (did you mean "
	 "'Acmephone'?)"},
	/* server.listen: a port is required; IPv6 with a port needs brackets */
	{"listen IPv4 without port", "server:\n  listen: [\"127.0.0.1\"]\n",
	 "t.yaml:2:12: server.listen[0]: '127.0.0.1' has no port (write '127.0.0.1:53')"},
	{"listen bracketed without port", "server:\n  listen: [\"127.0.0.1:5353\", \"[::1]\"]\n",
	 "t.yaml:2:30: server.listen[1]: '[::1]' has no port (write '[::1]:53')"},
	{"listen IPv6 without brackets", "server:\n  listen: [\"::1:53\"]\n",
	 "t.yaml:2:12: server.listen[0]: '::1:53' is an IPv6 address without brackets: with a "
	 "port, write '[::1]:53'"},
	{"listen IPv6 without brackets nor port", "server:\n  listen: [\"2001:db8::1\"]\n",
	 "t.yaml:2:12: server.listen[0]: '2001:db8::1' has no port (write '[2001:db8::1]:53')"},
	{"listen bare ::1", "server:\n  listen: [\"::1\"]\n",
	 "t.yaml:2:12: server.listen[0]: '::1' has no port (write '[::1]:53')"},
	/* devices.signatures: a name without a dot is a list name */
	{"signature list typo",
	 "lists:\n  xiaomi-services: {domains: [a.example]}\ndevices:\n  signatures:\n"
	 "    Xiaomi: [connect.rom.miui.com, xiaomi-servces]\n",
	 "t.yaml:5:36: devices.signatures.Xiaomi[1]: unknown list 'xiaomi-servces' (did you mean "
	 "'xiaomi-services'?)"},
	{"signature dotless name, no list", "devices:\n  signatures:\n    Xiaomi: [miui]\n",
	 "t.yaml:3:14: devices.signatures.Xiaomi[0]: unknown list 'miui' (a domain name needs a "
	 "dot: write 'miui.example')"},
};

static void
test_error_cases(void **state)
{
	(void)state;
	assert_int_equal(run_cases(error_cases, sizeof(error_cases) / sizeof(error_cases[0]), false),
			 0);
}

/* ---- warnings: clients that match no group ---- */

#define NOGROUP(range) "t.yaml:3:1: groups: warning: clients in " range " match no group and " \
		       "are forwarded unfiltered"

static const struct error_case warning_cases[] = {
	{"uncovered allow entry",
	 "server:\n  allow: [10.0.0.0/8, 192.168.0.0/16]\ngroups:\n"
	 "  - {name: home, clients: [192.168.0.0/16]}\n",
	 NOGROUP("10.0.0.0/8")},
	{"uncovered half", "server:\n  allow: [10.0.0.0/8]\ngroups:\n"
			   "  - {name: a, clients: [10.0.0.0/9]}\n",
	 NOGROUP("10.128.0.0/9")},
	{"gap between groups",
	 "server:\n  allow: [10.0.0.0/8]\ngroups:\n  - {name: a, clients: [10.0.0.0/16]}\n"
	 "  - {name: b, clients: [10.1.0.0/16, 10.4.0.0/14]}\n",
	 NOGROUP("10.2.0.0/15")},
	{"IPv6", "server:\n  allow: [\"fd00::/8\"]\ngroups:\n  - {name: a, clients: [\"fd00::/9\"]}\n",
	 NOGROUP("fd80::/9")},
	{"device selectors cover no address",
	 "server:\n  allow: [10.0.0.0/8, \"::1/128\"]\ngroups:\n  - {name: b, vendors: [Xiaomi]}\n"
	 "  - {name: net, clients: [\"::1/128\"]}\ndevices: {oui: false}\n",
	 NOGROUP("10.0.0.0/8")},
	{"nested and overlapping clients",
	 "server:\n  allow: [10.0.0.0/8]\ngroups:\n"
	 "  - {name: a, clients: [10.0.0.0/16, 10.64.0.0/10, 10.0.0.0/9, 10.0.0.0/10]}\n",
	 NOGROUP("10.128.0.0/9")},
	{"uncovered single address",
	 "server:\n  allow: [10.0.0.0/30]\ngroups:\n"
	 "  - {name: a, clients: [10.0.0.0/31, 10.0.0.3]}\n",
	 NOGROUP("10.0.0.2/32")},
	{"default allow", "groups:\n  - {name: a, clients: [10.0.0.0/8]}\n",
	 "t.yaml:1:1: groups: warning: clients in 127.0.0.0/8 match no group and are forwarded "
	 "unfiltered"},
};

static void
test_warning_cases(void **state)
{
	(void)state;
	assert_int_equal(
		run_cases(warning_cases, sizeof(warning_cases) / sizeof(warning_cases[0]), true), 0);
}

/* Many prefixes, in reverse order: the one missing is found (and found in one sorted pass). */
static void
test_many_clients(void **state)
{
	(void)state;
	enum { N = 4096 }; /* the /20 blocks of 10.0.0.0/8 */
	static const unsigned skip[] = {200 * 16 + 1, N - 1, N};
	char expect[160];
	for (size_t t = 0; t < sizeof(skip) / sizeof(skip[0]); t++) {
		size_t size = 128 + (size_t)N * 24, len = 0;
		char *yaml = malloc(size);
		assert_non_null(yaml);
		len += (size_t)snprintf(yaml + len, size - len,
					"server:\n  allow: [10.0.0.0/8]\ngroups:\n  - name: a\n"
					"    clients:\n");
		for (unsigned i = N; i-- > 0;)
			if (i != skip[t])
				len += (size_t)snprintf(yaml + len, size - len,
							"      - 10.%u.%u.0/20\n", i >> 4,
							(i & 15) << 4);
		struct diag d;
		struct config *cfg = NULL;
		diag_init(&d);
		assert_int_equal(load(yaml, &d, &cfg), 0);
		if (skip[t] == N) {
			assert_int_equal(d.n, 0);
		} else {
			snprintf(expect, sizeof(expect),
				 "t.yaml:3:1: groups: warning: clients in 10.%u.%u.0/20 match no "
				 "group and are forwarded unfiltered",
				 skip[t] >> 4, (skip[t] & 15) << 4);
			if (d.n != 1 || !has_text(&d, expect))
				dump(&d);
			assert_int_equal(d.n, 1);
			assert_true(has_text(&d, expect));
		}
		config_free(&cfg);
		diag_clear(&d);
		free(yaml);
	}
}

/* ---- what loads without a word ---- */

static const char *const clean[] = {
	/* vendors differing only in case; vendors given by the inventory, a signature, a
	 * hostname pattern */
	BANNED "[xIAOMI, oppo, HONOR, samsung]" REST,
	"devices:\n  oui: false\n  inventory: [{name: d, mac: \"00:1a:2b:3c:4d:5e\", vendor: Acme}]\n"
	"groups:\n  - {name: b, vendors: [acme]}\n  - {name: rest}\n",
	"devices:\n  oui: false\n  signatures: {Acme: [acme.example]}\n"
	"groups:\n  - {name: b, vendors: [Acme]}\n  - {name: rest}\n",
	"devices:\n  oui: false\n  hostname_vendors: [{pattern: \"acme-*\", vendor: Acme}]\n"
	"groups:\n  - {name: b, vendors: [Acme, Xiaomi]}\n  - {name: rest}\n",
	/* listen addresses with ports; upstream servers keep port 53 by default */
	"server:\n  listen: [\"127.0.0.1:53\", \"[::1]:5353\", \"0.0.0.0:53\"]\n"
	"upstream:\n  servers: [\"192.0.2.1\", \"2001:db8::1\", \"[2001:db8::2]:5300\"]\n",
	/* signature entries: lists, dotted names */
	"lists:\n  xs: {domains: [a.example]}\ndevices:\n  oui: false\n  signatures:\n"
	"    Xiaomi: [xs, connect.rom.miui.com, miui.com.]\n",
	/* coverage: a catch-all, a group of 0.0.0.0/0 and ::/0, exact cover, no groups */
	"groups:\n  - {name: a, clients: [10.0.0.0/8]}\n  - {name: rest}\n",
	"groups:\n  - {name: all, clients: [0.0.0.0/0, \"::/0\"]}\n",
	"server:\n  allow: [10.0.0.0/8, \"::1/128\"]\ngroups:\n"
	"  - {name: a, clients: [10.128.0.0/9, \"::1/128\"]}\n  - {name: b, clients: [10.0.0.0/9]}\n",
	"server:\n  allow: [10.0.0.0/8]\ngroups:\n  - {name: a, clients: [0.0.0.0/0]}\n",
	"server:\n  allow: []\ngroups:\n  - {name: a, clients: [10.0.0.0/8]}\n",
	"lists:\n  a: {domains: [a.example]}\nlog: {file: \"-\"}\n",
};

static void
test_clean(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(clean) / sizeof(clean[0]); i++) {
		struct diag d;
		struct config *cfg = NULL;
		diag_init(&d);
		int rc = load(clean[i], &d, &cfg);
		size_t expect = strstr(clean[i], "allow: []") != NULL ? 1 : 0; /* empty allow */
		expect += strstr(clean[i], "lists:\n  a:") != NULL ? 1 : 0;   /* unused list */
		if (rc != 0 || d.n != expect) {
			fprintf(stderr, "case %zu:\n%s", i, clean[i]);
			dump(&d);
		}
		assert_int_equal(rc, 0);
		assert_int_equal(d.n, expect);
		config_free(&cfg);
		diag_clear(&d);
	}
}

/* The registry's vendor names are found whatever their case. */
static void
test_vendor_names(void **state)
{
	(void)state;
	for (int i = 0; i < VENDORS_COUNT; i++)
		assert_int_equal(vendors_find(vendors_names[i], strlen(vendors_names[i])), i);
	assert_int_equal(vendors_find("SAMSUNG", 7), 7);
	assert_int_equal(vendors_find("Xiaom", 5), -1);
	assert_int_equal(vendors_find("Xiaomi\0x", 8), -1);
	assert_int_equal(vendors_find("Xiaomix", 7), -1);
}

/* ---- the OUI directory, checked when the policy loads (veto check and start-up) ---- */

static char tmpdir[64];

static void
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* Loads a configuration whose devices.oui is `oui`; returns the diagnostics. */
static void
load_with_oui(const char *oui, struct diag *d, int *rc)
{
	char conf[128], text[512];
	struct policy *p = NULL;
	snprintf(conf, sizeof(conf), "%s/veto.yaml", tmpdir);
	snprintf(text, sizeof(text),
		 "devices:\n  oui: %s\ngroups:\n  - {name: b, vendors: [Xiaomi]}\n  - {name: rest}\n",
		 oui);
	write_file(conf, text);
	diag_init(d);
	*rc = policy_load(conf, d, &p);
	policy_unref(&p);
}

static void
test_oui_dir(void **state)
{
	(void)state;
	char oui[256], path[256], expect[1024], dir[128];
	struct diag d;
	int rc;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/veto-test-lint-XXXXXX");
	assert_non_null(mkdtemp(tmpdir));
	snprintf(dir, sizeof(dir), "%s/ieee", tmpdir);

	/* missing directory: a warning, the configuration still loads */
	snprintf(oui, sizeof(oui), "{dir: %s}", dir);
	load_with_oui(oui, &d, &rc);
	snprintf(expect, sizeof(expect),
		 "%s/veto.yaml: devices.oui.dir: warning: cannot read '%s': no such file or "
		 "directory; vendors from MAC prefixes are not known (install ieee-data, or write "
		 "'oui: false')",
		 tmpdir, dir);
	if (rc != 0 || d.n != 1 || !has_text(&d, expect))
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 1);
	assert_true(has_text(&d, expect));
	diag_clear(&d);

	/* a required file missing */
	assert_int_equal(mkdir(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/oui.csv", dir);
	write_file(path, "Registry,Assignment,Organization Name,Organization Address\n");
	snprintf(path, sizeof(path), "%s/mam.csv", dir);
	write_file(path, "Registry,Assignment,Organization Name,Organization Address\n");
	load_with_oui(oui, &d, &rc);
	snprintf(expect, sizeof(expect),
		 "%s/veto.yaml: devices.oui.dir: warning: cannot read '%s/oui36.csv': no such file "
		 "or directory; vendors from MAC prefixes are not known (install ieee-data, or write "
		 "'oui: false')",
		 tmpdir, dir);
	if (rc != 0 || d.n != 1 || !has_text(&d, expect))
		dump(&d);
	assert_int_equal(rc, 0);
	assert_true(has_text(&d, expect));
	diag_clear(&d);

	/* all there: nothing to say; off: nothing either */
	snprintf(path, sizeof(path), "%s/oui36.csv", dir);
	write_file(path, "Registry,Assignment,Organization Name,Organization Address\n");
	load_with_oui(oui, &d, &rc);
	if (rc != 0 || d.n != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 0);
	diag_clear(&d);
	load_with_oui("false", &d, &rc);
	assert_int_equal(rc, 0);
	assert_int_equal(d.n, 0);
	diag_clear(&d);

	const char *const files[] = {"oui.csv", "mam.csv", "oui36.csv"};
	for (size_t i = 0; i < 3; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	snprintf(path, sizeof(path), "%s/veto.yaml", tmpdir);
	unlink(path);
	assert_int_equal(rmdir(tmpdir), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_error_cases),
		cmocka_unit_test(test_warning_cases),
		cmocka_unit_test(test_many_clients),
		cmocka_unit_test(test_clean),
		cmocka_unit_test(test_vendor_names),
		cmocka_unit_test(test_oui_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
