/*
 * test_nameset: distinct names stored once, interned list-sets, suffix lookups, growth.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "nameset.h"

static struct names_name
name(const char *text)
{
	struct names_name n;
	assert_int_equal(names_from_text(&n, text, strlen(text), NULL), 0);
	return n;
}

/* set id of the whole name, or NAMESET_NONE */
static uint32_t
find(const struct nameset *ns, const char *text)
{
	struct names_name n = name(text);
	return nameset_find(ns, &n, 0, names_hash(&n, nameset_seed(ns)));
}

static void
expect_set(const struct nameset *ns, uint32_t set, const uint32_t *want, size_t nwant)
{
	size_t n;
	const uint32_t *v = nameset_set(ns, set, &n);
	assert_int_equal(n, nwant);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i], want[i]);
}

static void
test_add_find(void **state)
{
	(void)state;
	struct nameset *ns = NULL;
	assert_int_equal(nameset_new(0x1234, 0, &ns), 0);

	struct names_name a = name("tracking.miui.com"), b = name("miui.com");
	assert_int_equal(nameset_add(ns, &a, 0), 1);
	assert_int_equal(nameset_add(ns, &a, 0), 0);	/* duplicate inside the list */
	assert_int_equal(nameset_add(ns, &b, 2), 1);
	assert_int_equal(nameset_add(ns, &a, 2), 1);	/* same name, other list: stored once */
	assert_int_equal(nameset_add(ns, &a, 1), 1);
	assert_int_equal(nameset_add(ns, &a, 1), 0);
	assert_int_equal(nameset_count(ns), 2);

	uint32_t sa = find(ns, "Tracking.MIUI.com."), sb = find(ns, "miui.com");
	assert_true(sa != NAMESET_NONE && sb != NAMESET_NONE && sa != sb);
	static const uint32_t wa[] = {0, 1, 2}, wb[] = {2};
	expect_set(ns, sa, wa, 3);
	expect_set(ns, sb, wb, 1);
	assert_true(find(ns, "com") == NAMESET_NONE);
	assert_true(find(ns, "notmiui.com") == NAMESET_NONE);
	assert_true(find(ns, "a.tracking.miui.com") == NAMESET_NONE);
	nameset_free(&ns);
	assert_null(ns);
	nameset_free(&ns);	/* NULL-safe */
}

static void
test_sets_interned(void **state)
{
	(void)state;
	struct nameset *ns = NULL;
	assert_int_equal(nameset_new(7, 0, &ns), 0);
	static const char *const names[] = {"a.example", "b.example", "c.example", "d.example"};
	for (size_t i = 0; i < 4; i++) {
		struct names_name n = name(names[i]);
		assert_int_equal(nameset_add(ns, &n, 3), 1);
		assert_int_equal(nameset_add(ns, &n, 5), 1);
	}
	/* {3} and {3,5} */
	assert_int_equal(nameset_nsets(ns), 2);
	uint32_t s = find(ns, "a.example");
	for (size_t i = 1; i < 4; i++)
		assert_int_equal(find(ns, names[i]), s);
	/* adding in another order reaches the same set */
	struct names_name e = name("e.example");
	assert_int_equal(nameset_add(ns, &e, 5), 1);
	assert_int_equal(nameset_add(ns, &e, 3), 1);
	assert_int_equal(find(ns, "e.example"), s);
	assert_int_equal(nameset_nsets(ns), 3);	/* {5} was added on the way */
	nameset_free(&ns);
}

static void
test_suffix_probe(void **state)
{
	(void)state;
	struct nameset *ns = NULL;
	assert_int_equal(nameset_new(99, 0, &ns), 0);
	struct names_name b = name("miui.com");
	assert_int_equal(nameset_add(ns, &b, 0), 1);

	struct names_name q = name("a.b.miui.com");
	uint64_t h[NAMES_MAX_LABELS];
	names_hash_suffixes(&q, nameset_seed(ns), h);
	assert_true(nameset_find(ns, &q, 0, h[0]) == NAMESET_NONE);
	assert_true(nameset_find(ns, &q, 1, h[1]) == NAMESET_NONE);
	assert_true(nameset_find(ns, &q, 2, h[2]) != NAMESET_NONE);
	assert_true(nameset_find(ns, &q, 3, h[3]) == NAMESET_NONE);
	assert_true(nameset_find(ns, &q, 4, h[4]) == NAMESET_NONE);	/* root */

	/* a mere string suffix is a different name */
	struct names_name q2 = name("notmiui.com");
	names_hash_suffixes(&q2, nameset_seed(ns), h);
	assert_true(nameset_find(ns, &q2, 0, h[0]) == NAMESET_NONE);
	nameset_free(&ns);
}

static void
gen(char *buf, size_t size, unsigned i)
{
	snprintf(buf, size, "h%u.d%u.example%u.com", i * 7919u, i % 1000, i % 13);
}

static void
test_growth_and_shrink(void **state)
{
	(void)state;
	struct nameset *ns = NULL;
	enum { N = 50000 };
	assert_int_equal(nameset_new(0xfeed, 0, &ns), 0);	/* no hint: must grow */
	char buf[128];
	for (unsigned i = 0; i < N; i++) {
		gen(buf, sizeof(buf), i);
		struct names_name n = name(buf);
		assert_int_equal(nameset_add(ns, &n, i % 3), 1);
	}
	assert_int_equal(nameset_count(ns), N);
	size_t before = nameset_memory(ns);
	nameset_shrink(ns);
	assert_true(nameset_memory(ns) <= before);
	for (unsigned i = 0; i < N; i++) {
		gen(buf, sizeof(buf), i);
		uint32_t s = find(ns, buf);
		assert_true(s != NAMESET_NONE);
		uint32_t want = i % 3;
		expect_set(ns, s, &want, 1);
	}
	for (unsigned i = N; i < N + 1000; i++) {
		gen(buf, sizeof(buf), i);
		assert_true(find(ns, buf) == NAMESET_NONE);
	}
	/* nameset_find_suffixes agrees with nameset_find on every suffix */
	for (unsigned i = 0; i < 2000; i++) {
		char q[160];
		gen(buf, sizeof(buf), i * 31);
		snprintf(q, sizeof(q), "x.y.%s", buf);
		struct names_name n = name(q);
		uint64_t h[NAMES_MAX_LABELS];
		uint32_t sets[NAMES_MAX_LABELS];
		names_hash_suffixes(&n, nameset_seed(ns), h);
		nameset_find_suffixes(ns, &n, h, n.nlabels + 1u, sets);
		unsigned hits = 0;
		for (unsigned k = 0; k <= n.nlabels; k++) {
			assert_int_equal(sets[k], nameset_find(ns, &n, k, h[k]));
			hits += sets[k] != NAMESET_NONE;
		}
		assert_int_equal(hits, i * 31 < N ? 1 : 0);
	}
	/* still usable for adding after shrink */
	gen(buf, sizeof(buf), 4);	/* in list 1 */
	struct names_name n = name(buf);
	assert_int_equal(nameset_add(ns, &n, 2), 1);
	static const uint32_t w[] = {1, 2};
	expect_set(ns, find(ns, buf), w, 2);
	assert_int_equal(nameset_add(ns, &n, 1), 0);
	assert_int_equal(nameset_count(ns), N);
	nameset_free(&ns);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_find),
		cmocka_unit_test(test_sets_interned),
		cmocka_unit_test(test_suffix_probe),
		cmocka_unit_test(test_growth_and_shrink),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
