/*
 * test_leases: dnsmasq, ISC dhcpd and Kea lease files (fixtures in data/leases/): current leases
 * with MAC, hostname, client-id/DUID, vendor class and expiry; later records replacing earlier
 * ones (renamed host, released lease); expired and inactive records dropped; half-written or
 * corrupt files rejected with FILE:LINE and no table.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "leases.h"

#define DATA VETO_TEST_DATA "/leases/"
#define NOW  INT64_C(1700000000)	/* 2023-11-14 22:13:20 UTC */

struct want_entry {
	const char *ip;
	const char *mac;		/* NULL = no MAC */
	const char *hostname;
	const char *client_id;
	const char *vendor_class;
	int64_t expiry;
};

#define MAX_WANT 8

struct file_case {
	const char *file;
	enum leases_format fmt;
	size_t n;
	struct leases_stats st;
	struct want_entry e[MAX_WANT];
	const char *absent[MAX_WANT];	/* addresses that must not be found */
};

static const struct file_case file_cases[] = {
	{"dnsmasq.leases", LEASES_DNSMASQ, 5,
	 {.records = 7, .superseded = 0, .expired = 2, .inactive = 0, .notes = 0},
	 {
		 {"192.168.1.10", "00:1a:2b:3c:4d:5e", "Redmi-Note-8", "01:00:1a:2b:3c:4d:5e",
		  NULL, 1700003600},
		 {"192.168.1.12", "da:a1:19:6b:0c:11", NULL, NULL, NULL, 0},
		 {"192.168.1.13", NULL, "ib-node",
		  "ff:00:00:00:00:00:02:00:00:02:c9:00:00:02:c9:03:00:0f:d6:41", NULL, 1700003600},
		 {"2001:db8::10", NULL, "Redmi-Note-8", "00:01:00:01:2a:bb:cc:dd:00:1a:2b:3c:4d:5e",
		  NULL, 1700003600},
		 {"2001:db8::11", NULL, NULL, "00:03:00:01:90:ff:d6:12:34:56", NULL, 1700003600},
	 },
	 {"192.168.1.11", "2001:db8::12"}},
	{"dhcpd.leases", LEASES_DHCPD, 4,
	 {.records = 10, .superseded = 2, .expired = 1, .inactive = 3, .notes = 0},
	 {
		 /* renamed: the later block wins */
		 {"192.168.1.50", "00:1a:2b:3c:4d:5e", "Kids-Phone", "01:00:1a:2b:3c:4d:5e",
		  "android-dhcp-13", 1700038800},
		 {"192.168.1.54", "a4:50:46:00:00:01", "POCO-F5", "01:a4:50:46:00:00:01",
		  "android-dhcp-12", 0},
		 {"192.168.1.55", NULL, "legacy \"quoted\" name", NULL, NULL, 1700007200},
		 {"2001:db8::50", NULL, NULL, "00:01:00:01:2a:bb:cc:dd:00:1a:2b:3c:4d:5e", NULL,
		  1700035200},
	 },
	 /* expired, released later, abandoned, a host declaration, a delegated prefix */
	 {"192.168.1.51", "192.168.1.52", "192.168.1.53", "192.168.1.5", "2001:db8:1::"}},
	{"kea-leases4.csv", LEASES_KEA, 2,
	 {.records = 7, .superseded = 2, .expired = 1, .inactive = 2, .notes = 0},
	 {
		 {"192.168.1.60", "00:1a:2b:3c:4d:5e", "kids-phone", "01:00:1a:2b:3c:4d:5e", NULL,
		  1700007200},
		 {"192.168.1.63", "a4:50:46:00:00:01", "Smith, John's phone",
		  "01:a4:50:46:00:00:01", NULL, 0},
	 },
	 /* expired, declined later, deleted (valid_lifetime 0) */
	 {"192.168.1.61", "192.168.1.62", "192.168.1.64"}},
	{"kea-leases6.csv", LEASES_KEA, 2,
	 {.records = 4, .superseded = 0, .expired = 1, .inactive = 1, .notes = 0},
	 {
		 {"2001:db8::60", "00:1a:2b:3c:4d:5e", "redmi-note-8",
		  "00:01:00:01:2a:bb:cc:dd:00:1a:2b:3c:4d:5e", NULL, 1700003600},
		 {"2001:db8::62", NULL, NULL, "00:02:00:00:00:09:01:02:03:04", NULL, 1700003600},
	 },
	 {"2001:db8::61", "2001:db8:1::"}},
};

static int
to_addr(const char *ip, uint8_t *a)
{
	int family = strchr(ip, ':') != NULL ? AF_INET6 : AF_INET;
	memset(a, 0, 16);
	assert_int_equal(inet_pton(family, ip, a), 1);
	return family;
}

static void
check_str(const char *file, const char *ip, const char *what, const char *got,
	  const char *want)
{
	if (want == NULL && got == NULL)
		return;
	if (want == NULL || got == NULL || strcmp(want, got) != 0)
		fail_msg("%s %s: %s '%s', expected '%s'", file, ip, what, got ? got : "(none)",
			 want ? want : "(none)");
}

static void
test_fixtures(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		const struct file_case *c = &file_cases[i];
		char path[512];
		snprintf(path, sizeof(path), "%s%s", DATA, c->file);
		struct diag d;
		diag_init(&d);
		struct leases *l = NULL;
		int rc = leases_read_file(c->fmt, path, NOW, &d, &l);
		if (rc != 0) {
			diag_print(&d, stderr, DIAG_NOTE);
			fail_msg("%s: %d", c->file, rc);
		}
		assert_int_equal(d.n, 0);
		if (l->n != c->n)
			fail_msg("%s: %zu entries, expected %zu", c->file, l->n, c->n);
		const struct leases_stats *s = &l->st;
		if (s->records != c->st.records || s->superseded != c->st.superseded ||
		    s->expired != c->st.expired || s->inactive != c->st.inactive ||
		    s->notes != c->st.notes)
			fail_msg("%s: stats records %zu superseded %zu expired %zu inactive %zu "
				 "notes %zu",
				 c->file, s->records, s->superseded, s->expired, s->inactive,
				 s->notes);
		for (size_t k = 0; k < c->n; k++) {
			const struct want_entry *w = &c->e[k];
			uint8_t a[16];
			int family = to_addr(w->ip, a);
			const struct leases_entry *e = leases_find(l, family, a);
			if (e == NULL)
				fail_msg("%s: %s not found", c->file, w->ip);
			assert_ptr_equal(e, &l->v[k]);	/* file order kept */
			assert_int_equal(e->family, family);
			char mac[MAC_STRLEN];
			check_str(c->file, w->ip, "mac",
			          e->has_mac ? mac_format(&e->mac, mac) : NULL, w->mac);
			check_str(c->file, w->ip, "hostname", e->hostname, w->hostname);
			check_str(c->file, w->ip, "client id", e->client_id, w->client_id);
			check_str(c->file, w->ip, "vendor class", e->vendor_class, w->vendor_class);
			if (e->expiry != w->expiry)
				fail_msg("%s %s: expiry %lld, expected %lld", c->file, w->ip,
					 (long long)e->expiry, (long long)w->expiry);
		}
		for (size_t k = 0; k < MAX_WANT && c->absent[k] != NULL; k++) {
			uint8_t a[16];
			int family = to_addr(c->absent[k], a);
			if (leases_find(l, family, a) != NULL)
				fail_msg("%s: %s should have no lease", c->file, c->absent[k]);
		}
		/* the same octets under the other family are another address */
		uint8_t zero[16] = {0};
		assert_null(leases_find(l, AF_INET6, zero));
		assert_null(leases_find(l, AF_UNIX, zero));
		leases_free(&l);
		assert_null(l);
		diag_clear(&d);
	}
}

/* every lease of the fixtures has expired a day later, but infinite ones */
static void
test_expiry_now(void **state)
{
	(void)state;
	struct leases *l = NULL;
	assert_int_equal(leases_read_file(LEASES_DHCPD, DATA "dhcpd.leases", NOW + 86400, NULL,
					  &l),
			 0);
	assert_int_equal(l->n, 1);
	assert_string_equal(l->v[0].hostname, "POCO-F5");
	assert_int_equal(l->v[0].expiry, 0);
	leases_free(&l);
	/* and exactly at the expiry second a lease is still current */
	assert_int_equal(leases_read_file(LEASES_DNSMASQ, DATA "dnsmasq.leases", 1700003600,
					  NULL, &l),
			 0);
	assert_int_equal(l->n, 5);
	leases_free(&l);
	assert_int_equal(leases_read_file(LEASES_DNSMASQ, DATA "dnsmasq.leases", 1700003601,
					  NULL, &l),
			 0);
	assert_int_equal(l->n, 1);	/* 192.168.1.12, infinite */
	leases_free(&l);
}

struct bad_case {
	const char *file;
	enum leases_format fmt;
	int want;
	const char *diag;	/* ":LINE: message" after the path */
};

static const struct bad_case bad_cases[] = {
	{"dnsmasq-truncated.leases", LEASES_DNSMASQ, -EINVAL,
	 ":2: last line has no newline (file truncated or being written)"},
	{"dnsmasq-corrupt.leases", LEASES_DNSMASQ, -EINVAL,
	 ":2: invalid ipv4 address '192.168.1.300'"},
	{"dhcpd-truncated.leases", LEASES_DHCPD, -EINVAL,
	 ":7: lease block not closed at end of file (file truncated?)"},
	{"dhcpd-cut-string.leases", LEASES_DHCPD, -EINVAL,
	 ":3: unterminated string (file truncated?)"},
	{"dhcpd-bad-ends.leases", LEASES_DHCPD, -EINVAL, ":3: invalid 'ends' time"},
	{"kea-truncated.csv", LEASES_KEA, -EINVAL,
	 ":4: last line has no newline (file truncated or being written)"},
	{"kea-fields.csv", LEASES_KEA, -EINVAL,
	 ":3: expected 12 fields as in the header, found 8"},
	{"kea-noheader.csv", LEASES_KEA, -EINVAL,
	 ":1: not a kea lease file (expected a header line starting with 'address,')"},
	/* the wrong format for a file is a corrupt file too */
	{"dhcpd.leases", LEASES_DNSMASQ, -EINVAL,
	 ":1: expected 5 fields: EXPIRY MAC IP HOSTNAME CLIENT-ID"},
	{"dnsmasq.leases", LEASES_KEA, -EINVAL,
	 ":1: not a kea lease file (expected a header line starting with 'address,')"},
	{"missing.leases", LEASES_DNSMASQ, -ENOENT, ": cannot read lease file"},
};

static void
test_bad_files(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++) {
		const struct bad_case *c = &bad_cases[i];
		char path[512], want[1024];
		snprintf(path, sizeof(path), "%s%s", DATA, c->file);
		snprintf(want, sizeof(want), "%s%s", path, c->diag);
		struct diag d;
		diag_init(&d);
		struct leases *l = (struct leases *)&d;	/* must stay untouched */
		int rc = leases_read_file(c->fmt, path, NOW, &d, &l);
		if (rc != c->want)
			fail_msg("%s as %s: got %d, expected %d", c->file,
			         leases_format_name(c->fmt), rc, c->want);
		assert_ptr_equal(l, (struct leases *)&d);
		assert_int_equal(d.nerrors, 1);
		if (strncmp(d.v[d.n - 1].text, want, strlen(want)) != 0)
			fail_msg("%s: diag '%s', expected '%s'", c->file, d.v[d.n - 1].text, want);
		diag_clear(&d);
	}
}

struct buf_case {
	const char *name;
	enum leases_format fmt;
	const char *text;
	int want;
	size_t n;		/* entries on success */
	size_t notes;
};

static const struct buf_case buf_cases[] = {
	{"dnsmasq empty", LEASES_DNSMASQ, "", 0, 0, 0},
	{"dnsmasq blank lines", LEASES_DNSMASQ, "\n\n", 0, 0, 0},
	{"dnsmasq crlf", LEASES_DNSMASQ, "0 00:1a:2b:3c:4d:5e 10.0.0.1 a *\r\n", 0, 1, 0},
	{"dnsmasq garbled mac", LEASES_DNSMASQ, "0 zz:1a 10.0.0.1 a *\n", 0, 1, 1},
	{"dnsmasq nul", LEASES_DNSMASQ, "0 00:1a:2b:3c:4d:5e 10.0.0.1 a\0 *\n", -EINVAL, 0, 0},
	{"dnsmasq v6 address in v4 section", LEASES_DNSMASQ, "0 00:1a:2b:3c:4d:5e ::1 a *\n",
	 -EINVAL, 0, 0},
	{"dnsmasq bad expiry", LEASES_DNSMASQ, "-5 00:1a:2b:3c:4d:5e 10.0.0.1 a *\n", -EINVAL, 0,
	 0},
	{"dnsmasq bad iaid", LEASES_DNSMASQ, "duid 00:01\n0 x1 2001:db8::1 a 00:01\n", -EINVAL,
	 0, 0},
	{"dhcpd empty", LEASES_DHCPD, "", 0, 0, 0},
	{"dhcpd comments only", LEASES_DHCPD, "# nothing\n# yet\n", 0, 0, 0},
	{"dhcpd minimal", LEASES_DHCPD, "lease 10.0.0.1 { hardware ethernet 0:1:2:3:4:5; }", 0,
	 1, 0},
	{"dhcpd bad mac", LEASES_DHCPD, "lease 10.0.0.1 { hardware ethernet 0:1:2:3:4; }", 0, 1,
	 1},
	{"dhcpd missing semicolon", LEASES_DHCPD, "lease 10.0.0.1 { binding state active }",
	 -EINVAL, 0, 0},
	{"dhcpd extra brace", LEASES_DHCPD, "lease 10.0.0.1 { }\n}\n", -EINVAL, 0, 0},
	{"dhcpd bad address", LEASES_DHCPD, "lease 10.0.0.256 { }\n", -EINVAL, 0, 0},
	{"dhcpd unclosed skipped block", LEASES_DHCPD, "host x { hardware ethernet 0:1:2:3:4:5;",
	 -EINVAL, 0, 0},
	{"dhcpd bad uid", LEASES_DHCPD, "lease 10.0.0.1 { uid 01:zz; }\n", -EINVAL, 0, 0},
	{"dhcpd ends epoch", LEASES_DHCPD, "lease 10.0.0.1 { ends epoch 1700000001; }\n", 0, 1,
	 0},
	{"dhcpd ends in the past", LEASES_DHCPD, "lease 10.0.0.1 { ends epoch 1699999999; }\n", 0,
	 0, 0},
	{"dhcpd deep nesting", LEASES_DHCPD,
	 "x {{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{ }}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}}\n",
	 -EINVAL, 0, 0},
	{"kea header only", LEASES_KEA,
	 "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,"
	 "state,user_context\n",
	 0, 0, 0},
	{"kea empty", LEASES_KEA, "", -EINVAL, 0, 0},
	{"kea header without expire", LEASES_KEA, "address,hwaddr,valid_lifetime,hostname\n",
	 -EINVAL, 0, 0},
	{"kea no state column", LEASES_KEA,
	 "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname\n"
	 "10.0.0.1,00:1a:2b:3c:4d:5e,,3600,1700003600,1,0,0,x\n",
	 0, 1, 0},
	{"kea bad expire", LEASES_KEA,
	 "address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname\n"
	 "10.0.0.1,00:1a:2b:3c:4d:5e,,3600,soon,1,0,0,x\n",
	 -EINVAL, 0, 0},
};

static void
test_buf_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(buf_cases) / sizeof(buf_cases[0]); i++) {
		const struct buf_case *c = &buf_cases[i];
		/* the length includes embedded NULs: sizeof of a literal would, strlen not */
		size_t len = strlen(c->text);
		if (strcmp(c->name, "dnsmasq nul") == 0)
			len = sizeof("0 00:1a:2b:3c:4d:5e 10.0.0.1 a\0 *\n") - 1;
		struct diag d;
		diag_init(&d);
		struct leases *l = NULL;
		int rc = leases_parse_buf(c->fmt, c->text, len, "mem", NOW, &d, &l);
		if (rc != c->want) {
			diag_print(&d, stderr, DIAG_NOTE);
			fail_msg("%s: got %d, expected %d", c->name, rc, c->want);
		}
		if (rc == 0) {
			if (l->n != c->n || l->st.notes != c->notes)
				fail_msg("%s: %zu entries %zu notes, expected %zu and %zu", c->name,
					 l->n, l->st.notes, c->n, c->notes);
			assert_int_equal(d.n, c->notes);
			leases_free(&l);
		} else {
			assert_null(l);
			assert_int_equal(d.nerrors, 1);
			assert_non_null(strstr(d.v[d.n - 1].text, "mem:"));
		}
		diag_clear(&d);
	}
}

/* Many leases: the index finds each, later records for an address replace earlier ones */
static void
test_many(void **state)
{
	(void)state;
	size_t cap = 70000 * 64;
	char *buf = malloc(cap);
	assert_non_null(buf);
	size_t len = 0;
	for (unsigned i = 0; i < 65536; i++)
		len += (size_t)snprintf(buf + len, cap - len,
					"0 00:1a:2b:3c:%02x:%02x 10.1.%u.%u h%u *\n", i >> 8,
					i & 255, i >> 8, i & 255, i);
	for (unsigned i = 0; i < 256; i++)	/* renamed */
		len += (size_t)snprintf(buf + len, cap - len,
		                        "0 00:1a:2b:3c:00:%02x 10.1.0.%u r%u *\n", i, i, i);
	struct leases *l = NULL;
	assert_int_equal(leases_parse_buf(LEASES_DNSMASQ, buf, len, "many", NOW, NULL, &l), 0);
	assert_int_equal(l->n, 65536);
	assert_int_equal(l->st.superseded, 256);
	for (unsigned i = 0; i < 65536; i += 97) {
		uint8_t a[16] = {10, 1, (uint8_t)(i >> 8), (uint8_t)i};
		const struct leases_entry *e = leases_find(l, AF_INET, a);
		assert_non_null(e);
		char want[16];
		snprintf(want, sizeof(want), i < 256 ? "r%u" : "h%u", i);
		assert_string_equal(e->hostname, want);
	}
	uint8_t a[16] = {10, 2, 0, 0};
	assert_null(leases_find(l, AF_INET, a));
	leases_free(&l);
	free(buf);
}

static void
test_format_names(void **state)
{
	(void)state;
	static const struct {
		const char *name;
		int rc;
		enum leases_format fmt;
	} cases[] = {
		{"dnsmasq", 0, LEASES_DNSMASQ}, {"dhcpd", 0, LEASES_DHCPD},
		{"isc", 0, LEASES_DHCPD},	{"kea", 0, LEASES_KEA},
		{"Kea", -EINVAL, LEASES_KEA},	{"", -EINVAL, LEASES_KEA},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum leases_format f = (enum leases_format)99;
		assert_int_equal(leases_format_from_name(cases[i].name, &f), cases[i].rc);
		if (cases[i].rc == 0) {
			assert_int_equal(f, cases[i].fmt);
			if (strcmp(cases[i].name, "isc") != 0)
				assert_string_equal(leases_format_name(f), cases[i].name);
		} else {
			assert_int_equal(f, 99);
		}
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixtures),
		cmocka_unit_test(test_expiry_now),
		cmocka_unit_test(test_bad_files),
		cmocka_unit_test(test_buf_table),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_format_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
