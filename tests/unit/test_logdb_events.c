/*
 * Reading device events from the query store (logdb_events.c): matching a device by name,
 * MAC (any spelling) or client address, time windows, the newest-N limit returned in time
 * order, the vendor column (written, and absent in files from before it), and bad input.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#define LOGDB_HARNESS_TMP "/tmp/test_logdb_events.XXXXXX"
#include "logdb_harness.h"

#define MAC_A "02:aa:bb:cc:dd:01"

/* The events of one test database: two devices, three events each, one second apart. */
static void
make_events(const char *path)
{
	static const struct logdb_event evs[] = {
	        {NOW_MS - 5000, "phone", MAC_A, "10.0.0.5", "first_seen", NULL, "staff", NULL,
	         "mac"},
	        {NOW_MS - 4000, NULL, "02:00:00:00:00:09", "10.0.0.9", "first_seen", NULL, "staff",
	         NULL, "mac"},
	        {NOW_MS - 3000, "phone", MAC_A, "10.0.0.5", "vendor", "staff", "banned", "Xiaomi",
	         "connect.rom.miui.com"},
	        {NOW_MS - 2000, "phone", MAC_A, "10.0.0.5", "group_change", "staff", "banned",
	         "Xiaomi", "connect.rom.miui.com"},
	        {NOW_MS - 1000, NULL, "02:00:00:00:00:09", "10.0.0.9", "vendor", "staff", "staff",
	         "OPPO", "conn1.oppomobile.com"},
	};
	struct logdb *db = open_db(path, 0, 0);

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		assert_int_equal(logdb_add_event(db, &evs[i]), 0);
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
}

struct seen {
	size_t n;
	int64_t id[16];
	char kind[16][24];
	char vendor[16][24]; /* "" for NULL */
	uint64_t ts[16];
};

static int
collect(void *arg, const struct logdb_event_row *ev)
{
	struct seen *s = arg;

	assert_true(s->n < 16);
	s->id[s->n] = ev->id;
	s->ts[s->n] = ev->ts_ms;
	snprintf(s->kind[s->n], sizeof(s->kind[0]), "%s", ev->kind);
	snprintf(s->vendor[s->n], sizeof(s->vendor[0]), "%s", ev->vendor ? ev->vendor : "");
	s->n++;
	return 0;
}

static int
stop_cb(void *arg, const struct logdb_event_row *ev)
{
	(void)arg;
	(void)ev;
	return 7;
}

static struct seen
events(struct logdb_reader *r, const struct logdb_filter *f)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(logdb_query_events(r, f, collect, &s), 0);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.ts[i - 1] <= s.ts[i]);
	return s;
}

static void
test_match_device(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct seen s;

	(void)state;
	tmp_path(path, sizeof(path), "events.db");
	make_events(path);
	assert_int_equal(logdb_reader_open(path, &r), 0);

	/* by name, by MAC in another spelling, by client address: the same three */
	static const char *const whos[] = {"phone", "02-AA-BB-CC-DD-01", "02aa.bbcc.dd01",
	                                   "10.0.0.5"};
	for (size_t i = 0; i < sizeof(whos) / sizeof(whos[0]); i++) {
		logdb_filter_init(&f);
		f.who = whos[i];
		s = events(r, &f);
		assert_int_equal(s.n, 3);
		assert_string_equal(s.kind[0], "first_seen");
		assert_string_equal(s.kind[1], "vendor");
		assert_string_equal(s.kind[2], "group_change");
		assert_string_equal(s.vendor[0], "");
		assert_string_equal(s.vendor[2], "Xiaomi");
	}
	/* nobody */
	logdb_filter_init(&f);
	f.who = "10.0.0.77";
	assert_int_equal(events(r, &f).n, 0);
	/* everyone, and the client / mac / device filters */
	logdb_filter_init(&f);
	assert_int_equal(events(r, &f).n, 5);
	f.client = "10.0.0.9";
	s = events(r, &f);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.vendor[1], "OPPO");
	logdb_filter_init(&f);
	f.mac = "02:00:00:00:00:09";
	assert_int_equal(events(r, &f).n, 2);
	logdb_filter_init(&f);
	f.device = "phone";
	assert_int_equal(events(r, &f).n, 3);
	/* a bad MAC filter is an error, not "nothing" */
	f.mac = "zz";
	assert_int_equal(logdb_query_events(r, &f, collect, &s), -EINVAL);
	logdb_reader_free(&r);
}

static void
test_window_and_limit(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct seen s;

	(void)state;
	tmp_path(path, sizeof(path), "window.db");
	make_events(path);
	assert_int_equal(logdb_reader_open(path, &r), 0);

	logdb_filter_init(&f);
	f.since_ms = NOW_MS - 4000; /* inclusive */
	f.until_ms = NOW_MS - 1000; /* exclusive */
	s = events(r, &f);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ts[0], NOW_MS - 4000);
	assert_int_equal(s.ts[2], NOW_MS - 2000);

	/* the newest two, oldest first */
	logdb_filter_init(&f);
	f.limit = 2;
	s = events(r, &f);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ts[0], NOW_MS - 2000);
	assert_int_equal(s.ts[1], NOW_MS - 1000);
	assert_true(s.id[0] < s.id[1]);

	/* a callback stops the scan with its value */
	logdb_filter_init(&f);
	assert_int_equal(logdb_query_events(r, &f, stop_cb, NULL), 7);
	logdb_reader_free(&r);
}

static void
test_file_without_vendor_column(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	sqlite3 *s = NULL;
	struct seen seen;

	(void)state;
	tmp_path(path, sizeof(path), "novendor.db");
	make_events(path);
	/* a schema-3 file written before events had a vendor */
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(s, "ALTER TABLE device_events DROP COLUMN vendor", NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(s);

	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);
	f.who = "phone";
	seen = events(r, &f);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.vendor[2], "");
	logdb_reader_free(&r);

	/* the writer adds the column back when it opens the file; old rows keep NULL */
	struct logdb *db = open_db(path, 0, 0);
	assert_true(logdb_is_open(db));
	struct logdb_event ev = {NOW_MS,     "phone",  MAC_A,
	                         "10.0.0.5", "vendor", "banned",
	                         "banned",   "Huawei", "connectivitycheck.platform.hicloud.com"};
	assert_int_equal(logdb_add_event(db, &ev), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events WHERE vendor IS NULL"),
	                 5);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events WHERE vendor ="
	                               " 'Huawei'"),
	                 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_match_device),
	        cmocka_unit_test(test_window_and_limit),
	        cmocka_unit_test(test_file_without_vendor_column),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
