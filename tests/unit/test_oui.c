/*
 * test_oui: the IEEE registries from Debian's ieee-data, the most-specific-block lookup, the
 * randomised-MAC rule and the vendor attribution, checked against the real files and against
 * conf/lists/data/oui-vendors.tsv (every vendor block listed there, and nothing more).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "oui.h"

#define VENDORS_TSV VETO_SOURCE_DIR "/conf/lists/data/oui-vendors.tsv"

static struct oui *registry;	/* loaded once from OUI_DEFAULT_DIR */

static int
setup(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	int rc = oui_load_dir(NULL, &d, &registry);
	if (rc != 0)
		diag_print(&d, stderr, DIAG_NOTE);
	diag_clear(&d);
	return rc;
}

static int
teardown(void **state)
{
	(void)state;
	oui_free(&registry);
	assert_null(registry);
	oui_free(&registry);	/* NULL-safe */
	return 0;
}

static struct mac
mac_of(const char *text)
{
	struct mac m;
	assert_int_equal(mac_parse(text, strlen(text), &m), 0);
	return m;
}

static void
test_load_stats(void **state)
{
	(void)state;
	struct oui_stats st;
	oui_stats(registry, &st);
	/* ieee-data 20220827.1: 32,530 MA-L rows of which 3 repeat an assignment (080030 three
	 * times, 0001C8 twice) */
	assert_int_equal(st.records[OUI_MA_L], 32527);
	assert_int_equal(st.duplicates, 3);
	assert_int_equal(st.records[OUI_MA_M], 4390);
	assert_int_equal(st.records[OUI_MA_S], 5029);
	assert_int_equal(st.records[OUI_IAB], 4575);
	assert_true(st.names > 1000 && st.names < 46521);
	assert_true(st.max_probe >= 1);
	assert_true(st.memory > 0);
	print_message("oui: %zu blocks, %zu distinct names, %.1f KiB, loaded in %.1f ms, "
		      "longest probe %zu\n",
		      st.records[0] + st.records[1] + st.records[2] + st.records[3], st.names,
		      (double)st.memory / 1024, st.load_ms, st.max_probe);
	/* the first of a repeated assignment is kept */
	const struct oui_entry *e = oui_find(registry, 0x080030, 24);
	assert_non_null(e);
	assert_string_equal(e->org, "NETWORK RESEARCH CORPORATION");
}

struct tsv_row {
	char vendor[32], registry[8], assignment[16], org[128];
};

/* Every block oui-vendors.tsv attributes to a vendor resolves to that vendor and organisation,
 * by exact assignment and by an address inside it; and the per-vendor counts of the whole
 * registry equal the file's, so no other block is attributed. */
static void
test_vendor_tsv(void **state)
{
	(void)state;
	FILE *f = fopen(VENDORS_TSV, "r");
	if (f == NULL) {
		print_message("skipped: cannot open %s (outside the repository)\n", VENDORS_TSV);
		skip();
	}
	char line[512];
	size_t want[OUI_VENDOR_COUNT] = {0};
	size_t rows = 0;
	assert_non_null(fgets(line, sizeof(line), f));	/* header */
	while (fgets(line, sizeof(line), f) != NULL) {
		line[strcspn(line, "\r\n")] = '\0';
		struct tsv_row r;
		if (sscanf(line, "%31[^\t]\t%7[^\t]\t%15[^\t]\t%127[^\n]", r.vendor, r.registry,
			   r.assignment, r.org) != 4)
			fail_msg("bad tsv line '%s'", line);
		enum oui_vendor v = oui_vendor_from_name(r.vendor, strlen(r.vendor));
		assert_int_not_equal(v, OUI_VENDOR_NONE);
		want[v]++;
		rows++;
		unsigned bits = (unsigned)strlen(r.assignment) * 4;
		uint64_t prefix = strtoull(r.assignment, NULL, 16);
		const struct oui_entry *e = oui_find(registry, prefix, bits);
		if (e == NULL)
			fail_msg("%s %s not found", r.registry, r.assignment);
		if (e->vendor != v || strcmp(e->org, r.org) != 0)
			fail_msg("%s: got vendor %s org '%s', expected %s '%s'", r.assignment,
				 oui_vendor_name(e->vendor), e->org, r.vendor, r.org);
		assert_string_equal(oui_registry_name(e->registry), r.registry);
		/* an address inside the block (first and last host) */
		struct mac m;
		mac_from_u64(prefix << (48 - bits), &m);
		assert_ptr_equal(oui_lookup(registry, &m), e);
		mac_from_u64((prefix << (48 - bits)) | ((UINT64_C(1) << (48 - bits)) - 1), &m);
		assert_ptr_equal(oui_lookup(registry, &m), e);
	}
	fclose(f);
	assert_int_equal(rows, 2648);
	struct oui_stats st;
	oui_stats(registry, &st);
	for (unsigned v = OUI_VENDOR_NONE + 1; v < OUI_VENDOR_COUNT; v++)
		if (st.vendor_blocks[v] != want[v])
			fail_msg("%s: %zu blocks attributed, oui-vendors.tsv lists %zu",
				 oui_vendor_name(v), st.vendor_blocks[v], want[v]);
	assert_int_equal(want[OUI_VENDOR_HUAWEI], 1397);
	assert_int_equal(want[OUI_VENDOR_SAMSUNG], 739);
}

struct lookup_case {
	const char *mac;
	const char *org;	/* NULL = no manufacturer */
	const char *registry;
	enum oui_vendor vendor;
};

static const struct lookup_case lookup_cases[] = {
	/* MA-L */
	{"90:ff:d6:12:34:56", "Honor Device Co., Ltd.", "MA-L", OUI_VENDOR_HONOR},
	{"00:22:72:00:00:01", "American Micro-Fuel Device Corp.", "MA-L", OUI_VENDOR_NONE},
	/* MA-S carved out of an MA-L block the IEEE registered to itself: the 36-bit wins */
	{"70:b3:d5:f2:f0:01", "TELEPLATFORMS", "MA-S", OUI_VENDOR_NONE},
	{"70:b3:d5:71:9a:bc", "2M Technology", "MA-S", OUI_VENDOR_NONE},
	{"70:b3:d5:00:00:01", "IEEE Registration Authority", "MA-L", OUI_VENDOR_NONE},
	/* MA-M inside an IEEE MA-L block */
	{"20:85:93:b0:00:01", "IOG Products LLC", "MA-M", OUI_VENDOR_NONE},
	{"20:85:93:a0:00:01", NULL, NULL, OUI_VENDOR_NONE},	/* filled below */
	/* legacy IAB, 36 bits */
	{"00:50:c2:e6:c0:01", "SAMSUNG Electronics Co.,Ltd.(LED Division)", "IAB",
	 OUI_VENDOR_SAMSUNG},
	/* quoted name with doubled quotes, as registered */
	{"00:1e:fc:00:00:01", "JSC \"MASSA-K\"", "MA-L", OUI_VENDOR_NONE},
	/* look-alikes that are not the handset makers */
	{"00:22:de:00:00:01", "OPPO Digital, Inc.", "MA-L", OUI_VENDOR_NONE},
	{"00:22:a1:00:00:01", "Huawei Symantec Technologies Co.,Ltd.", "MA-L", OUI_VENDOR_NONE},
	{"2c:28:2d:00:00:01", "BBK EDUCATIONAL ELECTRONICS CORP.,LTD.", "MA-L", OUI_VENDOR_NONE},
	{"04:d6:aa:00:00:01", "SAMSUNG ELECTRO-MECHANICS(THAILAND)", "MA-L", OUI_VENDOR_NONE},
	/* randomised (locally administered): never looked up, whatever the rest says */
	{"92:ff:d6:12:34:56", NULL, NULL, OUI_VENDOR_NONE},	/* 90ffd6 with the LA bit */
	{"aa:00:04:00:00:01", NULL, NULL, OUI_VENDOR_NONE},	/* DEC registered AA0004 */
	{"02:00:00:00:00:00", NULL, NULL, OUI_VENDOR_NONE},
	{"da:a1:19:6b:0c:11", NULL, NULL, OUI_VENDOR_NONE},
	/* multicast */
	{"01:00:5e:00:00:fb", NULL, NULL, OUI_VENDOR_NONE},
};

static void
test_lookup_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(lookup_cases) / sizeof(lookup_cases[0]); i++) {
		const struct lookup_case *c = &lookup_cases[i];
		struct mac m = mac_of(c->mac);
		const struct oui_entry *e = oui_lookup(registry, &m);
		if (strcmp(c->mac, "20:85:93:a0:00:01") == 0) {
			/* whichever block covers it, it is at least as specific as the MA-L */
			assert_non_null(e);
			assert_int_equal(e->prefix >> (e->bits - 24), 0x208593);
			continue;
		}
		if (c->org == NULL) {
			if (e != NULL)
				fail_msg("%s: expected no manufacturer, got '%s'", c->mac, e->org);
			continue;
		}
		if (e == NULL)
			fail_msg("%s: expected '%s', got none", c->mac, c->org);
		if (strcmp(e->org, c->org) != 0 ||
		    strcmp(oui_registry_name(e->registry), c->registry) != 0 ||
		    e->vendor != c->vendor)
			fail_msg("%s: got %s '%s' (%s)", c->mac, oui_registry_name(e->registry),
				 e->org, oui_vendor_name(e->vendor));
	}
	/* the LA-bit legacy block is in the table; only the lookup refuses it */
	assert_non_null(oui_find(registry, 0xAA0004, 24));
	assert_null(oui_find(registry, 0x90FFD6, 28));
}

struct org_case {
	const char *org;
	enum oui_vendor vendor;
};

static const struct org_case org_cases[] = {
	{"Xiaomi Communications Co Ltd", OUI_VENDOR_XIAOMI},
	{"Beijing Xiaomi Mobile Software Co., Ltd", OUI_VENDOR_XIAOMI},
	{"XIAOMI Electronics,CO.,LTD", OUI_VENDOR_XIAOMI},
	{"GUANGDONG OPPO MOBILE TELECOMMUNICATIONS CORP.,LTD", OUI_VENDOR_OPPO},
	{"OPPO Digital, Inc.", OUI_VENDOR_NONE},
	{"OnePlus Technology (Shenzhen) Co., Ltd", OUI_VENDOR_ONEPLUS},
	{"Realme Chongqing MobileTelecommunications Corp Ltd", OUI_VENDOR_REALME},
	{"vivo Mobile Communication Co., Ltd.", OUI_VENDOR_VIVO},
	{"BBK EDUCATIONAL ELECTRONICS CORP.,LTD.", OUI_VENDOR_NONE},
	{"HUAWEI TECHNOLOGIES CO.,LTD", OUI_VENDOR_HUAWEI},
	{"Huawei Device Co., Ltd.", OUI_VENDOR_HUAWEI},
	{"Huawei Symantec Technologies Co.,Ltd.", OUI_VENDOR_NONE},
	{"Honor Device Co., Ltd.", OUI_VENDOR_HONOR},
	{"SHENZHEN HONOR ELECTRONIC CO.,LTD", OUI_VENDOR_NONE},
	{"Samsung Electronics Co.,Ltd", OUI_VENDOR_SAMSUNG},
	{"SAMSUNG Electronics. Co. LTD", OUI_VENDOR_SAMSUNG},
	{"  Samsung Electronics Co.,Ltd  ", OUI_VENDOR_SAMSUNG},
	{"Samsung Electro-Mechanics", OUI_VENDOR_NONE},
	{"Apple, Inc.", OUI_VENDOR_NONE},
	{"", OUI_VENDOR_NONE},
};

static void
test_vendor_of_org(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(org_cases) / sizeof(org_cases[0]); i++) {
		enum oui_vendor v = oui_vendor_of_org(org_cases[i].org, strlen(org_cases[i].org));
		if (v != org_cases[i].vendor)
			fail_msg("'%s': got %s, expected %s", org_cases[i].org,
				 oui_vendor_name(v) ? oui_vendor_name(v) : "none",
				 oui_vendor_name(org_cases[i].vendor)
					 ? oui_vendor_name(org_cases[i].vendor)
					 : "none");
	}
	/* names round-trip, case-insensitively */
	for (unsigned v = OUI_VENDOR_NONE + 1; v < OUI_VENDOR_COUNT; v++) {
		const char *name = oui_vendor_name(v);
		assert_int_equal(oui_vendor_from_name(name, strlen(name)), v);
	}
	assert_int_equal(oui_vendor_from_name("XIAOMI", 6), OUI_VENDOR_XIAOMI);
	assert_int_equal(oui_vendor_from_name("Xiaom", 5), OUI_VENDOR_NONE);
	assert_null(oui_vendor_name(OUI_VENDOR_NONE));
	assert_null(oui_vendor_name(OUI_VENDOR_COUNT));
}

/* Small registry files written to a temporary directory */
struct file_case {
	const char *name;
	const char *content;
	int want;		/* oui_load_files return */
	const char *diag;	/* expected "FILE:LINE: message" suffix after the directory */
	uint64_t prefix;	/* on success: a block to find */
	unsigned bits;
	const char *org;
};

static const struct file_case file_cases[] = {
	{"crlf.csv",
	 "Registry,Assignment,Organization Name,Organization Address\r\n"
	 "MA-L,A047D7,Best IT World (India) Pvt Ltd,\"87, Mistry Complex,, \"\"A\"\"\"\r\n"
	 "MA-M,303D51B,\"Labman, \"\"Automation\"\"\",\"Labman Ltd\r\nSeamer Hill\"\r\n"
	 "MA-S,8C1F64C57,  Strategic Robotic Systems ,\r\n",
	 0, NULL, 0x303D51B, 28, "Labman, \"Automation\""},
	{"lf-no-final-newline.csv",
	 "Registry,Assignment,Organization Name,Organization Address\n"
	 "MA-L,A047D7,Best IT World (India) Pvt Ltd,\"x\ny\"\n"
	 "\n"
	 "MA-S,8C1F64C57,  Strategic Robotic Systems ,x",
	 0, NULL, 0x8C1F64C57, 36, "Strategic Robotic Systems"},
	{"empty-registry.csv", "Registry,Assignment,Organization Name,Organization Address\n", 0,
	 NULL, 0, 0, NULL},
	{"bad-header.csv", "Assignment,Registry,Organization Name\nMA-L,001122,x,y\n", -EINVAL,
	 "bad-header.csv:1: not an ieee registry csv", 0, 0, NULL},
	{"empty.csv", "", -EINVAL, "empty.csv:1: not an ieee registry csv", 0, 0, NULL},
	{"unterminated.csv",
	 "Registry,Assignment,Organization Name,Organization Address\n"
	 "MA-L,001122,Good,\"a\"\n"
	 "MA-L,001123,Cut,\"half an address\nand", -EINVAL,
	 "unterminated.csv:3: unterminated quoted field", 0, 0, NULL},
	{"short-assignment.csv",
	 "Registry,Assignment,Organization Name,Organization Address\n"
	 "MA-L,001122,Good,\"a\nb\"\n"
	 "MA-M,00112,Bad,\n", -EINVAL,
	 "short-assignment.csv:4: assignment is not a hex block of the registry's length", 0,
	 0, NULL},
	{"unknown-registry.csv",
	 "Registry,Assignment,Organization Name,Organization Address\n"
	 "CID,001122,Bad,\n", -EINVAL,
	 "unknown-registry.csv:2: unknown registry (expected MA-L, MA-M, MA-S or IAB)", 0, 0,
	 NULL},
	{"two-fields.csv",
	 "Registry,Assignment,Organization Name,Organization Address\n"
	 "MA-L,001122\n", -EINVAL, "two-fields.csv:2: expected at least 3 fields", 0, 0, NULL},
	{"junk-after-quote.csv",
	 "Registry,Assignment,Organization Name,Organization Address\n"
	 "MA-L,001122,\"Bad\"x,\n", -EINVAL, "junk-after-quote.csv:2: text after a closing quote",
	 0, 0, NULL},
	{"missing.csv", NULL, -ENOENT, "missing.csv: cannot read ieee registry file", 0, 0, NULL},
};

static void
test_load_files_table(void **state)
{
	(void)state;
	char dir[] = "/tmp/test_oui.XXXXXX";
	assert_non_null(mkdtemp(dir));
	for (size_t i = 0; i < sizeof(file_cases) / sizeof(file_cases[0]); i++) {
		const struct file_case *c = &file_cases[i];
		char path[256];
		snprintf(path, sizeof(path), "%s/%s", dir, c->name);
		if (c->content != NULL) {
			FILE *f = fopen(path, "w");
			assert_non_null(f);
			fputs(c->content, f);
			fclose(f);
		}
		const char *paths[] = {path};
		struct diag d;
		diag_init(&d);
		struct oui *o = (struct oui *)&d;	/* must stay untouched on failure */
		int rc = oui_load_files(paths, 1, &d, &o);
		if (rc != c->want)
			fail_msg("%s: got %d, expected %d", c->name, rc, c->want);
		if (rc != 0) {
			assert_ptr_equal(o, (struct oui *)&d);
			assert_int_equal(d.nerrors, 1);
			char want[512];
			snprintf(want, sizeof(want), "%s/%s", dir, c->diag);
			if (strncmp(d.v[0].text, want, strlen(want)) != 0)
				fail_msg("%s: diag '%s', expected '%s...'", c->name, d.v[0].text,
					 want);
		} else {
			assert_int_equal(d.nerrors, 0);
			if (c->org != NULL) {
				const struct oui_entry *e = oui_find(o, c->prefix, c->bits);
				assert_non_null(e);
				assert_string_equal(e->org, c->org);
			}
			oui_free(&o);
		}
		diag_clear(&d);
		unlink(path);
	}
	rmdir(dir);
}

/* a directory without the registry files fails, and names the first missing one */
static void
test_load_dir_missing(void **state)
{
	(void)state;
	struct diag d;
	diag_init(&d);
	struct oui *o = NULL;
	assert_int_equal(oui_load_dir("/nonexistent-ieee-data", &d, &o), -ENOENT);
	assert_null(o);
	assert_int_equal(d.nerrors, 1);
	assert_non_null(strstr(d.v[0].text, "/nonexistent-ieee-data/oui.csv"));
	diag_clear(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_load_stats),
		cmocka_unit_test(test_vendor_tsv),
		cmocka_unit_test(test_lookup_table),
		cmocka_unit_test(test_vendor_of_org),
		cmocka_unit_test(test_load_files_table),
		cmocka_unit_test(test_load_dir_missing),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
