/*
 * test_devices_pg: the merge rules of the device table shared between instances
 * (devices_pg_merge, devices_pg_row_add): evidence summed over instances, a remote instance's
 * evidence attributing only as a local query would, evidence against handset vendors, pins
 * (newest act wins), tombstones (a stale copy goes, a newer one stays) and the first fetch
 * after start (own counts recovered from the loaded table); the queue of changes to the sync
 * thread (a newer state replaces the queued one, never across a forget, in constant time).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices_pg.h"
#include "devices_pg_int.h"
#include "identify.h"
#include "text.h"

static void
local(struct devices_record *r, const char *key, int64_t first_seen)
{
	memset(r, 0, sizeof(*r));
	r->inv = -1;
	text_copy(r->key, sizeof(r->key), key);
	r->first_seen = r->last_seen = first_seen;
}

static void
row(struct devices_pg_row *w, const char *key, const char *by)
{
	memset(w, 0, sizeof(*w));
	text_copy(w->key, sizeof(w->key), key);
	text_copy(w->updated_by, sizeof(w->updated_by), by);
	w->seq = 1;
}

static void
ev(struct devices_pg_row *w, const char *vendor, uint32_t rom, uint32_t app, int64_t last,
   bool own)
{
	struct devices_obs o;
	memset(&o, 0, sizeof(o));
	text_copy(o.vendor, sizeof(o.vendor), vendor);
	o.rom = rom;
	o.app = app;
	o.count = rom + app;
	o.first = o.last = last;
	text_copy(o.evidence, sizeof(o.evidence), rom ? "connect.rom.miui.com" : "app.test");
	devices_pg_row_add(w, &o, own);
}

static const struct devices_obs *
obs_of(const struct devices_record *r, const char *vendor)
{
	for (size_t i = 0; i < r->nobs; i++)
		if (strcmp(r->obs[i].vendor, vendor) == 0)
			return &r->obs[i];
	return NULL;
}

/* Evidence counts together: own plus the sum of the others; merging the same row again
 * changes nothing. */
static void
test_evidence_sums(void **state)
{
	(void)state;
	struct devices_record r;
	struct devices_pg_row w;

	local(&r, "ip:192.0.2.7", 100);
	identify_observe(&r, "Xiaomi", IDENTITY_STRENGTH_ROM, "connect.rom.miui.com", 100);
	identify_observe(&r, "Xiaomi", IDENTITY_STRENGTH_APP, "app.test", 101);
	row(&w, r.key, "dns2");
	ev(&w, "Xiaomi", 2, 0, 102, false);
	ev(&w, "Xiaomi", 1, 3, 103, false);	/* a third instance: summed */
	ev(&w, "Xiaomi", 1, 1, 99, true);	/* this instance's stored row: not counted again */
	assert_int_equal(w.nothers, 1);
	assert_int_equal(w.others[0].rom, 3);
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_CHANGED);
	const struct devices_obs *o = obs_of(&r, "Xiaomi");
	assert_non_null(o);
	assert_int_equal(o->rom, 4);
	assert_int_equal(o->app, 4);
	assert_int_equal(o->count, 8);
	assert_int_equal(o->own, 2);
	assert_int_equal(o->last, 103);
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_SAME);
	assert_int_equal(obs_of(&r, "Xiaomi")->count, 8);
	/* a local query after the merge adds to its own part */
	identify_observe(&r, "Xiaomi", IDENTITY_STRENGTH_ROM, "connect.rom.miui.com", 104);
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_SAME);
	assert_int_equal(obs_of(&r, "Xiaomi")->rom, 5);
	assert_int_equal(obs_of(&r, "Xiaomi")->own_rom, 2);
}

/* What the others' evidence attributes, resolved by this instance's own rule
 * (identify_rom_vendor): rom evidence does, app evidence never does, and evidence against
 * handset vendors seen anywhere (another OS family's check, a shared address) stops it. */
struct attr_case {
	const char *name;
	uint32_t rom, app;
	uint16_t os_families;
	bool shared;
	const char *want;	/* NULL: no attribution */
};

static const struct attr_case attr_cases[] = {
	{"rom evidence from another instance", 1, 0, 0, false, "Xiaomi"},
	{"app evidence only (weaker than a local attribution needs)", 0, 5, 0, false, NULL},
	{"another OS family seen elsewhere", 2, 0, IDENTITY_OS_APPLE, false, NULL},
	{"Android check seen elsewhere", 2, 0, IDENTITY_OS_ANDROID, false, "Xiaomi"},
	{"several devices behind the address, seen elsewhere", 2, 0, 0, true, NULL},
};

static void
test_remote_attribution(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(attr_cases) / sizeof(attr_cases[0]); i++) {
		const struct attr_case *c = &attr_cases[i];
		struct devices_record r;
		struct devices_pg_row w;
		local(&r, "ip:192.0.2.8", 100);
		row(&w, r.key, "dns1");
		ev(&w, "Xiaomi", c->rom, c->app, 100, false);
		w.os_families = c->os_families;
		w.shared = c->shared;
		assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_CHANGED);
		const char *got = identify_rom_vendor(&r);
		if (c->want == NULL && got != NULL)
			fail_msg("%s: attributed '%s'", c->name, got);
		if (c->want != NULL && (got == NULL || strcmp(got, c->want) != 0))
			fail_msg("%s: got '%s', want '%s'", c->name, got ? got : "(none)", c->want);
	}
}

/* Pins: the newest act wins, whichever instance made it. */
static void
test_pins(void **state)
{
	(void)state;
	struct devices_record r;
	struct devices_pg_row w;

	local(&r, "mac:aa:bb:cc:dd:ee:ff", 100);
	row(&w, r.key, "dns2");
	text_copy(w.pin_group, sizeof(w.pin_group), "staff");
	w.pin_at = 5000;
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_CHANGED);
	assert_string_equal(r.pin_group, "staff");
	assert_int_equal(r.pin_at, 5000);
	/* a newer local unpin: an older pin does not come back */
	r.pin_group[0] = '\0';
	r.pin_at = 6000;
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_SAME);
	assert_string_equal(r.pin_group, "");
	/* a newer remote unpin clears a local pin */
	text_copy(r.pin_vendor, sizeof(r.pin_vendor), "Xiaomi");
	row(&w, r.key, "dns2");
	w.pin_at = 7000;
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_CHANGED);
	assert_string_equal(r.pin_vendor, "");
	assert_int_equal(r.pin_at, 7000);
}

/* A tombstone removes every copy older than the forget and none newer. */
struct forget_case {
	const char *name;
	int64_t first_seen;	/* the local copy's */
	int64_t pin_at;
	enum devices_pg_merged want;
};

static const struct forget_case forget_cases[] = {
	{"stale copy", 900, 0, DEVICES_PG_FORGET},
	{"copy first seen in the forget's second", 1000, 0, DEVICES_PG_FORGET},
	{"copy pinned before the forget", 900, 999000, DEVICES_PG_FORGET},
	{"device seen again after the forget", 1001, 0, DEVICES_PG_SAME},
	{"device pinned after the forget", 900, 1000600, DEVICES_PG_SAME},
};

static void
test_tombstone(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(forget_cases) / sizeof(forget_cases[0]); i++) {
		const struct forget_case *c = &forget_cases[i];
		struct devices_record r;
		struct devices_pg_row w;
		local(&r, "ip:192.0.2.9", c->first_seen);
		identify_observe(&r, "Xiaomi", IDENTITY_STRENGTH_ROM, "connect.rom.miui.com", 950);
		r.pin_at = c->pin_at;
		row(&w, r.key, "dns2");
		w.forgotten_at = 1000;
		w.pin_at = 1000500;	/* the forget's time in ms */
		if (devices_pg_merge(&r, &w, false) != c->want)
			fail_msg("%s: want %d", c->name, (int)c->want);
		if (c->want == DEVICES_PG_SAME)
			assert_int_equal(r.nobs, 1);	/* kept as it was */
	}
}

/* The first fetch after start: counts loaded from devices.db hold this instance's evidence
 * and maybe some of the others' from an earlier run; own = max(stored own, count - others). */
struct initial_case {
	const char *name;
	uint32_t loaded_rom, stored_own_rom, others_rom;
	uint32_t want_own_rom, want_rom;
};

static const struct initial_case initial_cases[] = {
	{"local evidence not yet stored", 5, 1, 2, 3, 5},
	{"the others' grew meanwhile", 5, 1, 6, 1, 7},
	{"nothing stored yet", 4, 0, 0, 4, 4},
	{"stored own larger than loaded", 1, 3, 0, 3, 3},
};

static void
test_initial(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(initial_cases) / sizeof(initial_cases[0]); i++) {
		const struct initial_case *c = &initial_cases[i];
		struct devices_record r;
		struct devices_pg_row w;
		local(&r, "ip:192.0.2.10", 100);
		for (uint32_t k = 0; k < c->loaded_rom; k++)
			identify_observe(&r, "Xiaomi", IDENTITY_STRENGTH_ROM, "connect.rom.miui.com",
					 100);
		row(&w, r.key, "dns2");
		if (c->stored_own_rom)
			ev(&w, "Xiaomi", c->stored_own_rom, 0, 100, true);
		if (c->others_rom)
			ev(&w, "Xiaomi", c->others_rom, 0, 100, false);
		devices_pg_merge(&r, &w, true);
		const struct devices_obs *o = obs_of(&r, "Xiaomi");
		assert_non_null(o);
		if (o->own_rom != c->want_own_rom || o->rom != c->want_rom)
			fail_msg("%s: own %u rom %u, want own %u rom %u", c->name, o->own_rom, o->rom,
				 c->want_own_rom, c->want_rom);
	}
}

/* At most DEVICES_MAX_OBS vendors: the weakest goes, a vendor nobody has evidence for leaves. */
static void
test_bounds(void **state)
{
	(void)state;
	struct devices_pg_row w;
	static const char *const vendors[] = {"A", "B", "C", "D", "E"};

	row(&w, "ip:192.0.2.11", "dns2");
	for (size_t i = 0; i < 5; i++)
		ev(&w, vendors[i], i == 0 ? 0 : 1, 1, 100, false);	/* "A" is the weakest */
	assert_int_equal(w.nothers, DEVICES_MAX_OBS);
	for (size_t i = 0; i < w.nothers; i++)
		assert_string_not_equal(w.others[i].vendor, "A");

	struct devices_record r;
	local(&r, w.key, 100);
	text_copy(r.obs[0].vendor, sizeof(r.obs[0].vendor), "Gone");
	r.obs[0].count = r.obs[0].app = 3;	/* the others' once, forgotten there since */
	r.nobs = 1;
	assert_int_equal(devices_pg_merge(&r, &w, false), DEVICES_PG_CHANGED);
	assert_null(obs_of(&r, "Gone"));
	assert_int_equal(r.nobs, DEVICES_MAX_OBS);
}


/* ---- the queue to the sync thread ---- */

static bool
put(struct devices_pg_queue *q, const char *key, bool forget, int64_t version)
{
	struct devices_record r;
	local(&r, key, version);
	return devices_pg_queue_put(q, &r, forget, version);
}

/* Sequences of puts ("+A3": state of A, version 3; "-A3": its forget; "|": take all so far)
 * and what the thread takes, in order: a state replaces the last change of its key when that
 * is a state, never a forget nor a change already taken. */
static void
test_queue_coalesces(void **state)
{
	static const struct {
		const char *ops, *want;
	} cases[] = {
		{"+A1 +A2", "+A2"},
		{"+A1 +B1 +A2 +B2 +C1", "+A2 +B2 +C1"},
		{"+A1 -A2 +A3", "+A1 -A2 +A3"},
		{"-A1 +A2 +A3", "-A1 +A3"},
		{"+A1 -A2 -A3", "+A1 -A2 -A3"},
		{"+A1 | +A2 +A3", "+A1 | +A3"},
		{"+A1 +B1 | +B2 +A2 +B3", "+A1 +B1 | +B3 +A2"},
	};
	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct devices_pg_queue q;
		struct devices_pg_change *out = calloc(DEVICES_PG_QUEUE, sizeof(*out));
		char got[256] = "", key[8];
		size_t used = 0;
		assert_non_null(out);
		assert_int_equal(devices_pg_queue_init(&q), 0);
		char ops[64], *save = NULL;
		snprintf(ops, sizeof(ops), "%s |", cases[i].ops);	/* a last take */
		for (char *op = strtok_r(ops, " ", &save); op != NULL;
		     op = strtok_r(NULL, " ", &save)) {
			if (op[0] != '|') {
				snprintf(key, sizeof(key), "%c", op[1]);
				assert_true(put(&q, key, op[0] == '-', op[2] - '0'));
				continue;
			}
			if (used > 0)
				used += (size_t)snprintf(got + used, sizeof(got) - used, " |");
			size_t n = devices_pg_queue_take(&q, out, DEVICES_PG_QUEUE);
			for (size_t k = 0; k < n; k++)
				used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%c%s%d",
							 used ? " " : "", out[k].forget ? '-' : '+',
							 out[k].rec.key, (int)out[k].rec.first_seen);
		}
		if (strcmp(got, cases[i].want) != 0)
			fail_msg("%s: took '%s', want '%s'", cases[i].ops, got, cases[i].want);
		devices_pg_queue_free(&q);
		free(out);
	}
}

/* States fill the ring but for DEVICES_PG_FORGET_ROOM slots, which only forgets take; a full
 * ring still takes a newer state of a device it holds. Nothing is taken out of order. */
static void
test_queue_bounds(void **state)
{
	struct devices_pg_queue q;
	struct devices_pg_change *out = calloc(DEVICES_PG_QUEUE, sizeof(*out));
	char key[32];
	(void)state;
	assert_non_null(out);
	assert_int_equal(devices_pg_queue_init(&q), 0);
	for (int i = 0; i < DEVICES_PG_QUEUE - DEVICES_PG_FORGET_ROOM; i++) {
		snprintf(key, sizeof(key), "ip:10.0.%d.%d", i / 256, i % 256);
		assert_true(put(&q, key, false, 1));
	}
	assert_false(put(&q, "ip:192.0.2.1", false, 1));
	assert_true(put(&q, "ip:10.0.0.7", false, 2));	/* replaces its queued state */
	for (int i = 0; i < DEVICES_PG_FORGET_ROOM; i++) {
		snprintf(key, sizeof(key), "mac:00:00:5e:00:53:%02x", i);
		assert_true(put(&q, key, true, 3));
	}
	assert_false(put(&q, "ip:192.0.2.2", true, 3));
	assert_int_equal(devices_pg_queue_take(&q, out, DEVICES_PG_QUEUE), DEVICES_PG_QUEUE);
	assert_string_equal(out[0].rec.key, "ip:10.0.0.0");
	assert_string_equal(out[7].rec.key, "ip:10.0.0.7");
	assert_int_equal(out[7].rec.first_seen, 2);
	assert_true(out[DEVICES_PG_QUEUE - 1].forget);
	assert_true(put(&q, "ip:192.0.2.1", false, 4));	/* room again */
	devices_pg_queue_free(&q);
	free(out);
}

/* While the store is away the loop queues a state for every signature query: finding the queued
 * state of a device must not read the whole ring (it did: up to 1,024 key comparisons under the
 * mutex, on the query path). Counted in key comparisons, not time: a full ring of distinct
 * devices, each updated, then new devices refused, at most a few comparisons each. */
static void
test_queue_constant_time(void **state)
{
	struct devices_pg_queue q;
	char key[32];
	const int n = DEVICES_PG_QUEUE - DEVICES_PG_FORGET_ROOM;
	(void)state;
	assert_int_equal(devices_pg_queue_init(&q), 0);
	for (int i = 0; i < n; i++) {
		snprintf(key, sizeof(key), "ip:10.0.%d.%d", i / 256, i % 256);
		assert_true(put(&q, key, false, 1));
	}
	q.compared = 0;
	for (int round = 0; round < 4; round++) {
		for (int i = 0; i < n; i++) {
			snprintf(key, sizeof(key), "ip:10.0.%d.%d", i / 256, i % 256);
			assert_true(put(&q, key, false, 2 + round));
			snprintf(key, sizeof(key), "ip:10.1.%d.%d", i / 256, i % 256);
			assert_false(put(&q, key, false, 2 + round));
		}
	}
	uint64_t puts = 8 * (uint64_t)n;
	print_message("%llu key comparisons for %llu puts\n", (unsigned long long)q.compared,
		      (unsigned long long)puts);
	if (q.compared > 4 * puts)
		fail_msg("%llu key comparisons for %llu puts", (unsigned long long)q.compared,
			 (unsigned long long)puts);
	assert_int_equal(q.len, (size_t)n);
	devices_pg_queue_free(&q);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_evidence_sums),
		cmocka_unit_test(test_remote_attribution),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_tombstone),
		cmocka_unit_test(test_initial),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_queue_coalesces),
		cmocka_unit_test(test_queue_bounds),
		cmocka_unit_test(test_queue_constant_time),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
