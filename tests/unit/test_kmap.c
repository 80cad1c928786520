/*
 * test_kmap: the device folder's hash map against a plain array, through inserts, replaces and
 * deletes (backward-shift deletion must keep every other key reachable).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <cmocka.h>

#include "kmap.h"

#define KEYS 3000

static struct dkey
key_of(uint32_t i)
{
	uint8_t addr[4] = {10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i};
	return kmap_ip_key(AF_INET, addr);
}

static void
test_against_array(void **state)
{
	(void)state;
	static int32_t ref[KEYS];	/* value, -1 = absent */
	struct kmap *m = NULL;
	uint64_t x = 88172645463325252ull;	/* xorshift, fixed: the run is reproducible */

	assert_int_equal(kmap_new(4, &m), 0);
	for (size_t i = 0; i < KEYS; i++)
		ref[i] = -1;
	for (int op = 0; op < 200000; op++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		uint32_t k = (uint32_t)(x % KEYS);
		struct dkey dk = key_of(k);
		if ((x >> 32) % 3 == 0) {
			assert_int_equal(kmap_del(m, &dk), ref[k] >= 0 ? 0 : -ENOENT);
			ref[k] = -1;
		} else {
			assert_int_equal(kmap_put(m, &dk, (uint32_t)op), 0);
			ref[k] = op;
		}
		if (op % 5000 == 0) {
			for (uint32_t i = 0; i < KEYS; i++) {
				struct dkey ik = key_of(i);
				assert_int_equal(kmap_get(m, &ik), ref[i]);
			}
		}
	}
	for (uint32_t i = 0; i < KEYS; i++) {
		struct dkey ik = key_of(i);
		assert_int_equal(kmap_get(m, &ik), ref[i]);
	}
	kmap_free(&m);
	assert_null(m);
}

static void
test_kinds_differ(void **state)
{
	(void)state;
	struct kmap *m = NULL;
	struct mac mac = {.b = {10, 0, 0, 1, 0, 0}};
	uint8_t v4[4] = {10, 0, 0, 1};
	struct dkey a = kmap_mac_key(&mac), b = kmap_ip_key(AF_INET, v4);

	assert_int_equal(kmap_new(1, &m), 0);
	assert_int_equal(kmap_put(m, &a, 1), 0);
	assert_int_equal(kmap_get(m, &b), -1);
	assert_int_equal(kmap_put(m, &b, 2), 0);
	assert_int_equal(kmap_get(m, &a), 1);
	assert_int_equal(kmap_del(m, &a), 0);
	assert_int_equal(kmap_get(m, &b), 2);
	assert_int_equal(kmap_del(m, &a), -ENOENT);
	kmap_free(&m);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_against_array),
		cmocka_unit_test(test_kinds_differ),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
