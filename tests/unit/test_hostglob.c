/*
 * test_hostglob: case-insensitive hostname globs and the default hostname -> vendor table.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "hostglob.h"
#include "oui.h"

struct match_case {
	const char *pattern;
	const char *name;
	bool want;
};

static const struct match_case match_cases[] = {
	{"Redmi-*", "Redmi-Note-8", true},
	{"Redmi-*", "redmi-note-8", true},		/* case-insensitive both ways */
	{"redmi-*", "REDMI-NOTE-8", true},
	{"Redmi-*", "Redmi-", true},			/* '*' may be empty */
	{"Redmi-*", "Redmi", false},
	{"Redmi-*", "MyRedmi-Note", false},		/* anchored at the start */
	{"*-Note-*", "Redmi-Note-8", true},
	{"*-Note-*", "Redmi-Note8", false},
	{"*", "", true},
	{"*", "anything", true},
	{"a*", "", false},
	{"?", "", false},
	{"?", "x", true},
	{"??", "x", false},
	{"Mi-?", "Mi-9", true},
	{"Mi-?", "Mi-10", false},
	{"Mi-[0-9]*", "Mi-10T-Pro", true},
	{"Mi-[0-9]*", "Mi-casa", false},
	{"Mi-[0-9]*", "mi-9", true},
	{"[!0-9]*", "x1", true},
	{"[!0-9]*", "1x", false},
	{"[^0-9]*", "1x", false},
	{"[abc]", "B", true},
	{"[A-C]", "b", true},
	{"[]x]", "]", true},
	{"[]x]", "x", true},
	{"[a-]", "-", true},
	{"*a*b*c", "xxaxxbxxc", true},
	{"*a*b*c", "xxaxxbxxcx", false},
	{"a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", false},	/* backtracking */
	{"*.lan", "phone.lan", true},
	{"*.lan", "phone.lan.", false},
	{"\\*x", "*x", true},
	{"\\*x", "ax", false},
	{"a\\?", "a?", true},
	{"a\\?", "ab", false},
	/* invalid patterns match nothing */
	{"", "", false},
	{"[abc", "a", false},
	{"abc\\", "abc", false},
	{"a b", "a b", false},
};

static void
test_match_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
		const struct match_case *c = &match_cases[i];
		bool got = hostglob_match(c->pattern, c->name, strlen(c->name));
		if (got != c->want)
			fail_msg("pattern '%s' name '%s': got %d, expected %d", c->pattern,
				 c->name, got, c->want);
	}
}

static void
test_match_length_bounded(void **state)
{
	(void)state;
	const char name[] = "Redmi-Note-8XYZ";
	assert_true(hostglob_match("*-8", name, 12));
	assert_false(hostglob_match("*-8", name, sizeof(name) - 1));
}

struct check_case {
	const char *pattern;
	int want;
};

static const struct check_case check_cases[] = {
	{"Redmi-*", 0},
	{"[0-9]", 0},
	{"[!]]", 0},
	{"\\[", 0},
	{"", -EINVAL},
	{"[abc", -EINVAL},
	{"[!]", -EINVAL},
	{"x\\", -EINVAL},
	{"tab\there", -EINVAL},
	{"caf\xc3\xa9", -EINVAL},
};

static void
test_check_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const char *why = NULL;
		int rc = hostglob_check(check_cases[i].pattern, &why);
		if (rc != check_cases[i].want)
			fail_msg("'%s': got %d, expected %d", check_cases[i].pattern, rc,
				 check_cases[i].want);
		if (rc != 0)
			assert_non_null(why);
	}
	char long_pattern[HOSTGLOB_MAX_PATTERN + 2];
	memset(long_pattern, 'a', sizeof(long_pattern) - 1);
	long_pattern[sizeof(long_pattern) - 1] = '\0';
	const char *why;
	assert_int_equal(hostglob_check(long_pattern, &why), -EINVAL);
	long_pattern[HOSTGLOB_MAX_PATTERN] = '\0';
	assert_int_equal(hostglob_check(long_pattern, &why), 0);
}

struct vendor_case {
	const char *hostname;
	const char *vendor;	/* NULL = none */
};

/* Hostnames as Android derives them from the device name ("Redmi Note 8" -> Redmi-Note-8) */
static const struct vendor_case vendor_cases[] = {
	{"Redmi-Note-8", "Xiaomi"},
	{"redmi-note-12-pro", "Xiaomi"},
	{"POCO-F5", "Xiaomi"},
	{"Xiaomi-13T", "Xiaomi"},
	{"Mi-9T", "Xiaomi"},
	{"Mi-10T-Pro", "Xiaomi"},
	{"Mi-A3", "Xiaomi"},
	{"Mi-Note-10", "Xiaomi"},
	{"Mi-MIX-3", "Xiaomi"},
	{"Mi-casa", NULL},		/* a personal name, not a Mi phone */
	{"OPPO-A74", "Oppo"},
	{"OnePlus-Nord-2", "OnePlus"},
	{"realme-8", "Realme"},
	{"vivo-Y20", "Vivo"},
	{"iQOO-Neo7", "Vivo"},
	{"HUAWEI-P30", "Huawei"},
	{"HONOR-Magic5", "Honor"},
	{"Galaxy-S21", "Samsung"},
	{"android-1a2b3c4d5e6f7a8b", NULL},	/* pre-Android-8 default: no vendor */
	{"iPhone", NULL},
	{"DESKTOP-4F2K9Q", NULL},
	{"", NULL},
};

static void
test_default_vendors(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(vendor_cases) / sizeof(vendor_cases[0]); i++) {
		const struct vendor_case *c = &vendor_cases[i];
		const char *got = hostglob_vendor(hostglob_default_vendors,
						  hostglob_default_vendors_len, c->hostname,
						  strlen(c->hostname));
		if (c->vendor == NULL) {
			if (got != NULL)
				fail_msg("'%s': expected no vendor, got '%s'", c->hostname, got);
			continue;
		}
		if (got == NULL || strcmp(got, c->vendor) != 0)
			fail_msg("'%s': expected '%s', got '%s'", c->hostname, c->vendor,
				 got ? got : "(none)");
	}
}

/* every default pattern is valid and names a vendor the OUI module knows */
static void
test_default_table_consistent(void **state)
{
	(void)state;
	assert_true(hostglob_default_vendors_len > 0);
	for (size_t i = 0; i < hostglob_default_vendors_len; i++) {
		const struct hostglob_vendor *e = &hostglob_default_vendors[i];
		const char *why;
		if (hostglob_check(e->pattern, &why) != 0)
			fail_msg("default pattern '%s': %s", e->pattern, why);
		enum oui_vendor v = oui_vendor_from_name(e->vendor, strlen(e->vendor));
		if (v == OUI_VENDOR_NONE || strcmp(oui_vendor_name(v), e->vendor) != 0)
			fail_msg("default pattern '%s': unknown vendor '%s'", e->pattern,
				 e->vendor);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_match_length_bounded),
		cmocka_unit_test(test_check_table),
		cmocka_unit_test(test_default_vendors),
		cmocka_unit_test(test_default_table_consistent),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
