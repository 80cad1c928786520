/*
 * test_logdb: the SQLite query store: schema, batching, retention, failures (full, read-only,
 * corrupt, newer schema) and recovery, the read side's filters and reports, time parsing, and
 * the querylog writer feeding the database.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "logdb.h"
#include "logdb_reader.h"
#include "output.h"
#include "querylog.h"
#include "querylog_int.h"

#define LOGDB_HARNESS_TMP "/tmp/test_logdb.XXXXXX"
#include "logdb_harness.h"

static void
add_simple(struct logdb *db, uint64_t age_ms, const char *qname)
{
	struct querylog_record r;
	struct rec x = {.age_ms = age_ms, .client = "10.0.0.1", .qname = qname};

	make_record(&r, &x);
	assert_int_equal(logdb_add(db, &r), 0);
}

/* ---- names ---- */

static void
test_rname(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"tracking.miui.com", "com.miui.tracking."},
	        {"miui.com", "com.miui."},
	        {"miui.com.", "com.miui."},
	        {"com", "com."},
	        {".", "."},
	        {"", "."},
	        {"a\\046b.example", "example.a\\046b."},
	        {"x.y.z.w", "w.z.y.x."},
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(logdb_rname(cases[i].in, buf, sizeof(buf)), 0);
		assert_string_equal(buf, cases[i].out);
	}
	/* too small: error, buffer untouched */
	memset(buf, 'Z', sizeof(buf));
	assert_int_equal(logdb_rname("miui.com", buf, 9), -ENOSPC);
	assert_int_equal(buf[0], 'Z');
	assert_int_equal(logdb_rname("miui.com", buf, 10), 0);
}

/* ---- schema and writing ---- */

static void
test_schema(void **state)
{
	static const struct {
		const char *type, *name;
	} objects[] = {
	        {"table", "queries"},
	        {"table", "sources"},
	        {"table", "names"},
	        {"table", "texts"},
	        {"table", "device_events"},
	        {"view", "query_log"},
	        {"table", "rollup_hours"},
	        {"table", "rollup_sources"},
	        {"table", "rollup_days"},
	        {"table", "rollup_names"},
	        {"index", "rollup_sources_source"},
	        {"index", "rollup_names_blocked"},
	        {"index", "queries_blocked"},
	        {"index", "sources_client"},
	        {"index", "sources_mac"},
	        {"index", "sources_device"},
	        {"index", "device_events_ts"},
	        {"index", "device_events_device"},
	};
	static const struct {
		const char *table, *columns; /* space-separated */
	} columns[] = {
	        {"queries",
	         "id ts_ms source name qtype proto blocked list rule action rcode upstream "
	         "latency_us"},
	        {"sources", "id client mac device group_name vendor vendor_source"},
	        {"names", "id qname rname"},
	        {"texts", "id text"},
	        {"device_events",
	         "id ts_ms device mac client kind old_group new_group evidence vendor"},
	        {"query_log",
	         "id ts_ms client proto group_name qname rname qtype blocked list rule "
	         "action rcode upstream latency_us mac device vendor vendor_source "
	         "source_id name_id list_id action_id"},
	};
	char path[300], sql[200];

	(void)state;
	tmp_path(path, sizeof(path), "schema.db");
	struct logdb *db = open_db(path, 90, 0);
	assert_true(logdb_is_open(db));
	logdb_free(&db);
	assert_null(db);

	assert_int_equal(sql_int(path, "PRAGMA user_version"), LOGDB_SCHEMA_VERSION);
	for (size_t i = 0; i < sizeof(objects) / sizeof(objects[0]); i++) {
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM sqlite_master WHERE type = '%s' AND name = '%s'",
		         objects[i].type, objects[i].name);
		if (sql_int(path, sql) != 1)
			fail_msg("missing %s '%s'", objects[i].type, objects[i].name);
	}
	/* one index on queries: the blocked rows' (the rollups find sources and names) */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	                               " AND tbl_name = 'queries'"),
	                 1);
	/* the id is the time: no time index but the blocked rows' */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
	                               " AND tbl_name = 'queries' AND sql LIKE '%(ts_ms%'"
	                               " AND name != 'queries_blocked'"),
	                 0);
	/* the dictionaries are unique by their text */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM pragma_index_list('names')"
	                               " WHERE \"unique\""),
	                 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM pragma_index_list('texts')"
	                               " WHERE \"unique\""),
	                 1);
	/* exactly these columns: the strings of a query live in the dictionaries only */
	for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++) {
		int64_t n = 0;
		for (const char *c = columns[i].columns; *c != '\0'; n++) {
			size_t l = strcspn(c, " ");
			snprintf(sql, sizeof(sql),
			         "SELECT count(*) FROM pragma_table_info('%s') WHERE name = '%.*s'",
			         columns[i].table, (int)l, c);
			if (sql_int(path, sql) != 1)
				fail_msg("missing column '%s.%.*s'", columns[i].table, (int)l, c);
			c += l + (c[l] == ' ');
		}
		snprintf(sql, sizeof(sql), "SELECT count(*) FROM pragma_table_info('%s')",
		         columns[i].table);
		if (sql_int(path, sql) != n)
			fail_msg("'%s': %lld columns, want %lld", columns[i].table,
			         (long long)sql_int(path, sql), (long long)n);
	}
	/* WAL mode persists in the file */
	sqlite3 *s;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
	sqlite3_finalize(st);
	sqlite3_close(s);

	/* reopening an existing database keeps it */
	db = open_db(path, 90, 0);
	assert_true(logdb_is_open(db));
	add_simple(db, 0, "a.test");
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 1);
}

/* Every column as stored, including the device fields and rname. */
static void
test_row_values(void **state)
{
	char path[300];
	struct querylog_record r;
	struct rec x = {.age_ms = 0,
	                .client = "10.1.2.3",
	                .qname = "Tracking.MIUI.com",
	                .group = "lab",
	                .list = "xiaomi",
	                .device = "redmi-12",
	                .vendor = "Xiaomi",
	                .mac = "02:1a:ff:00:0b:c9",
	                .blocked = true,
	                .action = QUERYLOG_ACTION_SINKHOLE,
	                .vendor_source = IDENTITY_SRC_SIGNATURE};

	(void)state;
	tmp_path(path, sizeof(path), "values.db");
	struct logdb *db = open_db(path, 90, 0);
	make_record(&r, &x);
	/* the wire form is canonical lowercase in real records */
	set_qname(&r, "tracking.miui.com");
	r.tcp = true;
	assert_int_equal(logdb_add(db, &r), 0);
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(logdb_written(db), 1);
	logdb_free(&db);

	sqlite3 *s;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s,
	                                    "SELECT ts_ms, client, proto, group_name, qname, rname,"
	                                    " qtype, blocked, list, rule, action, rcode, upstream,"
	                                    " latency_us, mac, device, vendor, vendor_source"
	                                    " FROM query_log",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), (int64_t)NOW_MS);
	static const char *const want[] = {NULL,
	                                   "10.1.2.3",
	                                   "tcp",
	                                   "lab",
	                                   "tracking.miui.com",
	                                   "com.miui.tracking.",
	                                   "A",
	                                   NULL,
	                                   "xiaomi",
	                                   "tracking.miui.com",
	                                   "sinkhole",
	                                   "NOERROR",
	                                   NULL,
	                                   NULL,
	                                   "02:1a:ff:00:0b:c9",
	                                   "redmi-12",
	                                   "Xiaomi",
	                                   "signature"};
	for (int i = 1; i < 18; i++) {
		if (i == 7 || i == 13)
			continue;
		const char *got = (const char *)sqlite3_column_text(st, i);
		if (want[i] == NULL) {
			if (got != NULL)
				fail_msg("column %d: '%s', want NULL", i, got);
		} else if (got == NULL || strcmp(got, want[i]) != 0) {
			fail_msg("column %d: '%s', want '%s'", i, got ? got : "NULL", want[i]);
		}
	}
	assert_int_equal(sqlite3_column_int(st, 7), 1);
	assert_int_equal(sqlite3_column_int(st, 13), 7);
	sqlite3_finalize(st);
	sqlite3_close(s);
}

/* Rows are visible to others only once committed, and at most LOGDB_BATCH_ROWS stay pending. */
static void
test_batching(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "batch.db");
	struct logdb *db = open_db(path, 0, 0);
	for (int i = 0; i < LOGDB_BATCH_ROWS - 1; i++)
		add_simple(db, 0, "a.test");
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 0);
	assert_int_equal(logdb_written(db), 0);
	add_simple(db, 0, "a.test"); /* the batch is full: committed */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), LOGDB_BATCH_ROWS);
	for (int i = 0; i < 500; i++)
		add_simple(db, 0, "b.test");
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), LOGDB_BATCH_ROWS);
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), LOGDB_BATCH_ROWS + 500);
	assert_int_equal(logdb_commit(db), 0); /* nothing pending: no-op */
	assert_int_equal(logdb_written(db), LOGDB_BATCH_ROWS + 500);
	assert_int_equal(logdb_dropped(db), 0);

	struct logdb_event ev = {.ts_ms = NOW_MS,
	                         .device = "redmi",
	                         .mac = "02:00:00:00:00:01",
	                         .kind = "group_change",
	                         .old_group = "staff",
	                         .new_group = "banned",
	                         .evidence = "connect.rom.miui.com"};
	assert_int_equal(logdb_add_event(db, &ev), 0);
	logdb_free(&db); /* free commits */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events WHERE"
	                               " new_group = 'banned' AND client IS NULL"),
	                 1);
}

/* Old rows go in batches of LOGDB_PRUNE_ROWS; recent rows stay; tick runs the steps. */
static void
test_retention(void **state)
{
	char path[300];
	uint64_t n = 99;

	(void)state;
	tmp_path(path, sizeof(path), "retention.db");
	struct logdb *db = open_db(path, 7, 0);
	for (int i = 0; i < 12000; i++) /* in time order, like the daemon */
		add_simple(db, 8 * DAY_MS + 12000 - (uint64_t)i, "old.test");
	for (int i = 0; i < 300; i++)
		add_simple(db, 6 * DAY_MS, "recent.test");
	struct logdb_event ev = {.ts_ms = NOW_MS - 30 * DAY_MS, .kind = "first_seen"};
	assert_int_equal(logdb_add_event(db, &ev), 0);
	assert_int_equal(logdb_commit(db), 0);

	assert_int_equal(logdb_prune(db, NOW_MS, &n), 0);
	assert_int_equal(n, LOGDB_PRUNE_ROWS + 1); /* and the event */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 12300 - LOGDB_PRUNE_ROWS);
	/* the oldest went first */
	assert_int_equal(sql_int(path, "SELECT min(ts_ms) FROM queries"),
	                 (int64_t)(NOW_MS - 8 * DAY_MS - 12000 + LOGDB_PRUNE_ROWS));
	/* the rest by ticks: one step per tick while there is more */
	logdb_tick(db, BASE_MONO, NOW_MS);
	logdb_tick(db, BASE_MONO + 50, NOW_MS);
	logdb_tick(db, BASE_MONO + 100, NOW_MS);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 300);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM query_log WHERE qname = 'old.test'"),
	                 0);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events"), 0);
	assert_int_equal(logdb_prune(db, NOW_MS, &n), 0);
	assert_int_equal(n, 0);
	logdb_free(&db);

	/* retention 0 keeps everything */
	db = open_db(path, 0, 0);
	add_simple(db, 3650 * DAY_MS, "ancient.test");
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(logdb_prune(db, NOW_MS, &n), 0);
	assert_int_equal(n, 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 301);
}

/* A tiny page limit stands for a full disk: rows are dropped and counted, DNS callers never see
 * an error other than -EIO, and writing resumes after the limit is raised. */
static void
test_full_then_resumes(void **state)
{
	char path[300];
	int failed = 0;

	(void)state;
	tmp_path(path, sizeof(path), "full.db");
	struct logdb *db = open_db(path, 0, 40);
	assert_true(logdb_is_open(db));
	for (int i = 0; i < 20000 && failed == 0; i++) {
		struct querylog_record r;
		struct rec x = {.client = "10.0.0.9", .qname = "a-fairly-long-name.example.test"};
		make_record(&r, &x);
		if (logdb_add(db, &r) != 0 || (i % 100 == 99 && logdb_commit(db) != 0))
			failed = i + 1;
	}
	assert_true(failed > 0);
	assert_false(logdb_is_open(db));
	uint64_t dropped = logdb_dropped(db);
	assert_true(dropped > 0);
	uint64_t written = logdb_written(db);
	assert_int_equal(written + dropped, (uint64_t)failed);

	/* while broken: every row is dropped, nothing is written */
	assert_int_equal(logdb_add(db, &(struct querylog_record){0}), -EIO);
	assert_int_equal(logdb_add(db, &(struct querylog_record){0}), -EIO);
	assert_int_equal(logdb_dropped(db), dropped + 2);

	/* the backoff: the first tick schedules, an early tick does nothing */
	logdb_set_max_pages(db, 0);
	logdb_tick(db, BASE_MONO, NOW_MS);
	logdb_tick(db, BASE_MONO + LOGDB_RETRY_MIN_MS - 1, NOW_MS);
	assert_false(logdb_is_open(db));
	logdb_tick(db, BASE_MONO + LOGDB_RETRY_MIN_MS, NOW_MS);
	assert_true(logdb_is_open(db));
	add_simple(db, 0, "after.test");
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), (int64_t)written + 1);
}

/* Makes a file read-only even for root (immutable), or plain 0444 otherwise. */
static void
set_readonly(const char *path, bool ro)
{
	char cmd[400];

	if (geteuid() == 0) {
		snprintf(cmd, sizeof(cmd), "chattr %ci '%s'", ro ? '+' : '-', path);
		assert_int_equal(system(cmd), 0);
	} else {
		assert_int_equal(chmod(path, ro ? 0444 : 0644), 0);
	}
}

static void
test_readonly_then_resumes(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "ro.db");
	struct logdb *db = open_db(path, 0, 0);
	add_simple(db, 0, "before.test");
	logdb_free(&db);

	set_readonly(path, true);
	db = open_db(path, 0, 0);
	assert_false(logdb_is_open(db));
	assert_int_equal(logdb_add(db, &(struct querylog_record){0}), -EIO);
	assert_int_equal(logdb_dropped(db), 1);
	logdb_tick(db, BASE_MONO, NOW_MS);
	logdb_tick(db, BASE_MONO + LOGDB_RETRY_MAX_MS, NOW_MS);
	assert_false(logdb_is_open(db)); /* still read-only */

	set_readonly(path, false);
	logdb_reopen(db); /* SIGHUP: at once, no backoff */
	logdb_tick(db, BASE_MONO + LOGDB_RETRY_MAX_MS + 1, NOW_MS);
	assert_true(logdb_is_open(db));
	add_simple(db, 0, "after.test");
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 2);
}

/* A file that is not a database is set aside and a new one started; a newer schema is left
 * alone (and nothing is written). */
static void
test_corrupt_and_newer(void **state)
{
	char path[300], aside[400];

	(void)state;
	tmp_path(path, sizeof(path), "corrupt.db");
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	for (int i = 0; i < 512; i++)
		fputs("this is not an SQLite file. ", f);
	fclose(f);
	struct logdb *db = open_db(path, 0, 0);
	assert_true(logdb_is_open(db));
	add_simple(db, 0, "a.test");
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 1);
	snprintf(aside, sizeof(aside), "ls '%s' | grep -c '^corrupt.db.corrupt-' >/dev/null",
	         tmpdir);
	assert_int_equal(system(aside), 0);

	tmp_path(path, sizeof(path), "newer.db");
	sqlite3 *s;
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "CREATE TABLE queries (x); PRAGMA user_version = 99", NULL,
	                              NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(s);
	db = open_db(path, 0, 0);
	assert_false(logdb_is_open(db));
	assert_int_equal(logdb_add(db, &(struct querylog_record){0}), -EIO);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), 99);

	/* the reader refuses both a newer schema and a foreign database */
	struct logdb_reader *r = NULL;
	assert_int_equal(logdb_reader_open(path, &r), -EINVAL);
	assert_null(r);
	tmp_path(path, sizeof(path), "missing.db");
	assert_int_equal(logdb_reader_open(path, &r), -ENOENT);

	/* a file the daemon has created but not yet given its tables (a 0-byte file): a store
	 * with no rows, not an error */
	tmp_path(path, sizeof(path), "fresh.db");
	FILE *fresh = fopen(path, "w");
	assert_non_null(fresh);
	fclose(fresh);
	assert_int_equal(logdb_reader_open(path, &r), 0);
	struct logdb_filter flt;
	int64_t last = -1;
	logdb_filter_init(&flt);
	assert_int_equal(logdb_query_rows(r, &flt, NULL, NULL), 0); /* no row: no callback */
	assert_int_equal(logdb_last_id(r, &last), 0);
	assert_int_equal(last, 0);
	logdb_reader_free(&r);
}

/* ---- reading ---- */

static const struct rec fixture[] = {
        /* age, client, qname, group, list, device, vendor, mac, blocked, action, source */
        {1000, "10.0.0.1", "tracking.miui.com", "lab", "xiaomi", "redmi", "Xiaomi",
         "02:00:00:00:00:01", true, QUERYLOG_ACTION_SINKHOLE, IDENTITY_SRC_SIGNATURE},
        {2000, "10.0.0.1", "miui.com", "lab", "xiaomi", "redmi", "Xiaomi", "02:00:00:00:00:01",
         true, QUERYLOG_ACTION_SINKHOLE, IDENTITY_SRC_SIGNATURE},
        {3000, "10.0.0.1", "notmiui.com", "lab", NULL, "redmi", "Xiaomi", "02:00:00:00:00:01",
         false, QUERYLOG_ACTION_FORWARD, IDENTITY_SRC_SIGNATURE},
        {4000, "10.0.0.2", "a.b.miui.com", "lab", "xiaomi", NULL, NULL, "0a:00:00:00:00:02", true,
         QUERYLOG_ACTION_NXDOMAIN, 0},
        {5000, "10.0.0.3", "miui.com.evil.net", "staff", NULL, NULL, NULL, NULL, false,
         QUERYLOG_ACTION_CACHE, 0},
        {2 * DAY_MS, "10.0.0.3", "hicloud.com", "staff", "huawei", NULL, NULL, NULL, true,
         QUERYLOG_ACTION_SINKHOLE, 0},
        {9 * DAY_MS, "10.0.0.3", "old.miui.com", "staff", "xiaomi", NULL, NULL, NULL, true,
         QUERYLOG_ACTION_SINKHOLE, 0},
        {6000, "10.0.0.4", "www.example.org", NULL, NULL, "laptop", "Dell", "00:14:22:01:23:45",
         false, QUERYLOG_ACTION_FORWARD, IDENTITY_SRC_OUI},
};
#define NFIXTURE (sizeof(fixture) / sizeof(fixture[0]))

static void
fixture_db(char *path, size_t cap)
{
	tmp_path(path, cap, "read.db");
	struct logdb *db = open_db(path, 0, 0);
	bool done[NFIXTURE] = {false};
	/* oldest first, like the daemon */
	for (size_t k = 0; k < NFIXTURE; k++) {
		size_t old = NFIXTURE;
		for (size_t i = 0; i < NFIXTURE; i++)
			if (!done[i] &&
			    (old == NFIXTURE || fixture[i].age_ms > fixture[old].age_ms))
				old = i;
		done[old] = true;
		struct querylog_record r;
		make_record(&r, &fixture[old]);
		assert_int_equal(logdb_add(db, &r), 0);
	}
	logdb_free(&db);
}

struct collect {
	char names[16][64];
	size_t n;
};

static int
on_collect(void *arg, const struct logdb_row *row)
{
	struct collect *c = arg;

	if (c->n < 16)
		snprintf(c->names[c->n], sizeof(c->names[0]), "%s", row->qname);
	c->n++;
	return 0;
}

static void
test_filters(void **state)
{
	static const struct {
		const char *what;
		struct logdb_filter f; /* blocked: 2 = any (mapped to -1) */
		const char *expect;    /* qnames, newest first, space-separated */
	} cases[] = {
	        {"all",
	         {.blocked = 2},
	         "tracking.miui.com miui.com notmiui.com a.b.miui.com miui.com.evil.net "
	         "www.example.org hicloud.com old.miui.com"},
	        {"domain subtree",
	         {.blocked = 2, .domain = {{"miui.com"}}},
	         "tracking.miui.com miui.com a.b.miui.com old.miui.com"},
	        {"domain any case, trailing dot",
	         {.blocked = 2, .domain = {{"MIUI.Com."}}},
	         "tracking.miui.com miui.com a.b.miui.com old.miui.com"},
	        {"domain leaf", {.blocked = 2, .domain = {{"b.miui.com"}}}, "a.b.miui.com"},
	        {"domain tld", {.blocked = 2, .domain = {{"net"}}}, "miui.com.evil.net"},
	        {"since 7 days",
	         {.blocked = 2, .domain = {{"miui.com"}}, .since_ms = NOW_MS - 7 * DAY_MS},
	         "tracking.miui.com miui.com a.b.miui.com"},
	        {"until", {.blocked = 2, .until_ms = NOW_MS - DAY_MS}, "hicloud.com old.miui.com"},
	        {"client",
	         {.blocked = 2, .client = {{"10.0.0.3"}}},
	         "miui.com.evil.net hicloud.com old.miui.com"},
	        {"mac any spelling", {.blocked = 2, .mac = {{"0A-00-00-00-00-02"}}}, "a.b.miui.com"},
	        {"device",
	         {.blocked = 2, .device = {{"redmi"}}},
	         "tracking.miui.com miui.com notmiui.com"},
	        {"group",
	         {.blocked = 2, .group = {{"staff"}}},
	         "miui.com.evil.net hicloud.com old.miui.com"},
	        {"vendor, any case",
	         {.blocked = 2, .vendor = {{"xiaomi"}}},
	         "tracking.miui.com miui.com notmiui.com"},
	        {"list", {.blocked = 2, .list = {{"huawei"}}}, "hicloud.com"},
	        /* the values of one filter are ORed */
	        {"lists ored", {.blocked = 2, .list = {{"nosuch", "huawei"}}}, "hicloud.com"},
	        {"domains ored",
	         {.blocked = 2, .domain = {{"hicloud.com", "evil.net"}}},
	         "miui.com.evil.net hicloud.com"},
	        {"macs ored",
	         {.blocked = 2, .mac = {{"0a-00-00-00-00-02", "00:14:22:01:23:45"}}},
	         "a.b.miui.com www.example.org"},
	        {"vendors ored, any case",
	         {.blocked = 2, .vendor = {{"dell", "XIAOMI"}}},
	         "tracking.miui.com miui.com notmiui.com www.example.org"},
	        {"blocked", {.blocked = 1, .client = {{"10.0.0.1"}}}, "tracking.miui.com miui.com"},
	        {"allowed", {.blocked = 0, .client = {{"10.0.0.1"}}}, "notmiui.com"},
	        {"action", {.blocked = 2, .action = {{"nxdomain"}}}, "a.b.miui.com"},
	        {"who: device", {.blocked = 2, .who = "laptop"}, "www.example.org"},
	        {"who: mac", {.blocked = 2, .who = "00:14:22:01:23:45"}, "www.example.org"},
	        {"who: ip", {.blocked = 2, .who = "10.0.0.2"}, "a.b.miui.com"},
	        {"limit", {.blocked = 2, .limit = 2}, "tracking.miui.com miui.com"},
	        {"oldest first",
	         {.blocked = 2, .limit = 2, .oldest_first = true},
	         "old.miui.com hicloud.com"},
	        {"chronological",
	         {.blocked = 2, .limit = 2, .chronological = true},
	         "miui.com tracking.miui.com"},
	        {"combined",
	         {.blocked = 1, .group = {{"lab"}}, .domain = {{"miui.com"}}, .limit = 10},
	         "tracking.miui.com miui.com a.b.miui.com"},
	        {"no match", {.blocked = 2, .client = {{"10.9.9.9"}}}, ""},
	        {"no injection", {.blocked = 2, .client = {{"10.0.0.1' OR '1'='1"}}}, ""},
	};
	char path[300];
	struct logdb_reader *r = NULL;

	(void)state;
	fixture_db(path, sizeof(path));
	assert_int_equal(logdb_reader_open(path, &r), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct logdb_filter f = cases[i].f;
		struct collect c = {.n = 0};
		char got[1024] = "";
		if (f.blocked == 2)
			f.blocked = -1;
		int rc = logdb_query_rows(r, &f, on_collect, &c);
		if (rc != 0)
			fail_msg("case '%s': rc %d", cases[i].what, rc);
		for (size_t k = 0; k < c.n && k < 16; k++) {
			if (k > 0)
				strcat(got, " ");
			strcat(got, c.names[k]);
		}
		if (strcmp(got, cases[i].expect) != 0)
			fail_msg("case '%s':\n got  '%s'\n want '%s'", cases[i].what, got,
			         cases[i].expect);
	}
	/* bad input: an error, not a query */
	struct logdb_filter f;
	struct collect c = {.n = 0};
	logdb_filter_init(&f);
	f.domain.v[0] = "bad..name";
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), -EINVAL);
	logdb_filter_init(&f);
	f.mac.v[0] = "02:00:00:00:00";
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), -EINVAL);
	assert_int_equal(c.n, 0);
	int64_t last = 0;
	assert_int_equal(logdb_last_id(r, &last), 0);
	assert_int_equal(last, NFIXTURE);
	/* follow: rows after an id */
	logdb_filter_init(&f);
	f.after_id = (int64_t)NFIXTURE - 2;
	f.oldest_first = true;
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), 0);
	assert_int_equal(c.n, 2);
	assert_string_equal(c.names[0], "miui.com");
	assert_string_equal(c.names[1], "tracking.miui.com");
	logdb_reader_free(&r);
	assert_null(r);
}

/* The reader works while a writer holds the database open (and has uncommitted rows), and
 * on a copy of the file. */
static void
test_reader_concurrent_and_copy(void **state)
{
	char path[300], copy[300], cmd[700];
	struct logdb_reader *r = NULL;
	struct collect c = {.n = 0};
	struct logdb_filter f;

	(void)state;
	fixture_db(path, sizeof(path));
	struct logdb *db = open_db(path, 0, 0);
	add_simple(db, 0, "pending.test"); /* not committed */
	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), 0);
	assert_int_equal(c.n, NFIXTURE);
	assert_int_equal(logdb_commit(db), 0);
	c.n = 0;
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), 0);
	assert_int_equal(c.n, NFIXTURE + 1);
	logdb_reader_free(&r);
	logdb_free(&db);

	/* a copy of the main file alone (the writer closed: WAL checkpointed) */
	tmp_path(copy, sizeof(copy), "copy.db");
	snprintf(cmd, sizeof(cmd), "cp '%s' '%s'", path, copy);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(logdb_reader_open(copy, &r), 0);
	c.n = 0;
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), 0);
	assert_int_equal(c.n, NFIXTURE + 1);
	logdb_reader_free(&r);
}

struct attempts {
	struct logdb_attempt a[8];
	char keys[8][64], lists[8][128], vendors[8][32], groups[8][32], macs[8][32];
	size_t n;
};

static void
keep_str(char *dst, size_t cap, const char **p)
{
	if (*p == NULL)
		return;
	snprintf(dst, cap, "%s", *p);
	*p = dst;
}

static int
on_attempt(void *arg, const struct logdb_attempt *a)
{
	struct attempts *s = arg;

	if (s->n < 8) {
		size_t i = s->n;
		s->a[i] = *a;
		keep_str(s->keys[i], sizeof(s->keys[i]), &s->a[i].key);
		keep_str(s->lists[i], sizeof(s->lists[i]), &s->a[i].top_lists);
		keep_str(s->vendors[i], sizeof(s->vendors[i]), &s->a[i].vendor);
		keep_str(s->groups[i], sizeof(s->groups[i]), &s->a[i].group);
		keep_str(s->macs[i], sizeof(s->macs[i]), &s->a[i].mac);
		s->a[i].device = s->a[i].client = s->a[i].vendor_source = NULL;
		s->a[i].evidence = NULL;
		/* the top lists one by one agree with their text */
		char text[256];
		size_t off = 0;
		text[0] = '\0';
		assert_true(a->ntop <= LOGDB_TOP_LISTS);
		for (size_t k = 0; k < a->ntop; k++)
			off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s (%llu)",
			                        k > 0 ? ", " : "",
			                        a->top[k].list != NULL ? a->top[k].list : "-",
			                        (unsigned long long)a->top[k].attempts);
		assert_string_equal(text, a->top_lists);
		for (size_t k = 0; k < a->ntop; k++)
			s->a[i].top[k].list = NULL;
	}
	s->n++;
	return 0;
}

/* ---- time windows without a time index ---- */

/* Ids are in time order: a window is found by bisection over the ids, exactly at every size and
 * boundary, also with ids missing (retention) and ties. */
static void
test_time_windows(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;

	(void)state;
	tmp_path(path, sizeof(path), "windows.db");
	struct logdb *db = open_db(path, 0, 0);
	/* rows at ages 999..0 s (one per second), two at 500 s */
	for (int i = 999; i >= 0; i--) {
		add_simple(db, (uint64_t)i * 1000, "t.test");
		if (i == 500)
			add_simple(db, (uint64_t)i * 1000, "t.test");
	}
	logdb_free(&db);
	/* a hole in the ids, like retention or a failed batch leaves */
	sqlite3 *s;
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "DELETE FROM queries WHERE id BETWEEN 100 AND 300", NULL,
	                              NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(s);
	assert_int_equal(logdb_reader_open(path, &r), 0);
	static const struct {
		uint64_t since_age, until_age; /* ages in s; 0 = unbounded (since: +1 = now) */
	} cases[] = {
	        {0, 0},     {1000, 0},  {999, 0},   {500, 0},   {1, 0},       {2000, 0},
	        {0, 500},   {0, 501},   {0, 999},   {0, 1},     {600, 400},   {850, 650},
	        {750, 720}, {901, 898}, {500, 499}, {501, 500}, {3000, 2000},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct logdb_filter f;
		char sql[200];
		struct collect c = {.n = 0};
		logdb_filter_init(&f);
		if (cases[i].since_age > 0)
			f.since_ms = NOW_MS - cases[i].since_age * 1000;
		if (cases[i].until_age > 0)
			f.until_ms = NOW_MS - cases[i].until_age * 1000;
		snprintf(sql, sizeof(sql),
		         "SELECT count(*) FROM queries WHERE ts_ms >= %llu AND ts_ms < %llu",
		         (unsigned long long)f.since_ms,
		         (unsigned long long)(f.until_ms > 0 ? f.until_ms : UINT64_MAX >> 1));
		assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), 0);
		if ((int64_t)c.n != sql_int(path, sql))
			fail_msg("case %zu: %zu rows, want %lld", i, c.n,
			         (long long)sql_int(path, sql));
	}
	logdb_reader_free(&r);

	/* an empty table */
	tmp_path(path, sizeof(path), "empty.db");
	db = open_db(path, 0, 0);
	logdb_free(&db);
	assert_int_equal(logdb_reader_open(path, &r), 0);
	struct logdb_filter f;
	struct collect c = {.n = 0};
	logdb_filter_init(&f);
	f.since_ms = NOW_MS - 1000;
	f.until_ms = NOW_MS;
	assert_int_equal(logdb_query_rows(r, &f, on_collect, &c), 0);
	assert_int_equal(c.n, 0);
	logdb_reader_free(&r);
}

static void
test_report_attempts(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct attempts s = {.n = 0};

	(void)state;
	fixture_db(path, sizeof(path));
	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);
	f.since_ms = NOW_MS - 7 * DAY_MS;
	assert_int_equal(logdb_report_attempts(r, &f, on_attempt, &s), 0);
	/* redmi: 2 attempts (keyed by its MAC); 0a:..:02 (by MAC): 1; 10.0.0.3 (by IP): 1 in 7 d */
	assert_int_equal(s.n, 3);
	assert_string_equal(s.a[0].key, "02:00:00:00:00:01");
	assert_int_equal(s.a[0].attempts, 2);
	assert_int_equal(s.a[0].names, 2);
	assert_string_equal(s.a[0].top_lists, "xiaomi (2)");
	assert_string_equal(s.a[0].vendor, "Xiaomi");
	assert_string_equal(s.a[0].group, "lab");
	assert_string_equal(s.a[0].mac, "02:00:00:00:00:01");
	assert_int_equal(s.a[0].first_ms, NOW_MS - 2000);
	assert_int_equal(s.a[0].last_ms, NOW_MS - 1000);
	assert_string_equal(s.a[1].key, "0a:00:00:00:00:02");
	assert_int_equal(s.a[1].attempts, 1);
	assert_string_equal(s.a[2].key, "10.0.0.3");
	assert_string_equal(s.a[2].top_lists, "huawei (1)");

	/* all time: 10.0.0.3 has two lists */
	s.n = 0;
	f.since_ms = 0;
	assert_int_equal(logdb_report_attempts(r, &f, on_attempt, &s), 0);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.a[0].key, "02:00:00:00:00:01"); /* equal counts: by key */
	assert_string_equal(s.a[1].key, "10.0.0.3");
	assert_int_equal(s.a[1].attempts, 2);
	assert_string_equal(s.a[1].top_lists, "huawei (1), xiaomi (1)");
	assert_int_equal(s.a[1].ntop, 2);
	assert_int_equal(s.a[1].top[0].attempts + s.a[1].top[1].attempts, 2);
	logdb_reader_free(&r);
}

struct sums {
	uint64_t total, blocked, groups, lists, top, clients, hours;
	uint64_t lab_total, lab_blocked, xiaomi_blocked;
	char first_blocked[64];
};

static int
on_summary(void *arg, const struct logdb_summary_row *row)
{
	struct sums *s = arg;

	switch (row->section) {
	case LOGDB_SUMMARY_TOTAL:
		s->total = row->total;
		s->blocked = row->blocked;
		break;
	case LOGDB_SUMMARY_GROUP:
		s->groups++;
		if (row->label != NULL && strcmp(row->label, "lab") == 0) {
			s->lab_total = row->total;
			s->lab_blocked = row->blocked;
		}
		break;
	case LOGDB_SUMMARY_LIST:
		s->lists++;
		if (strcmp(row->label, "xiaomi") == 0)
			s->xiaomi_blocked = row->blocked;
		break;
	case LOGDB_SUMMARY_TOP_BLOCKED:
		if (s->top++ == 0)
			snprintf(s->first_blocked, sizeof(s->first_blocked), "%s", row->label);
		break;
	case LOGDB_SUMMARY_TOP_CLIENT:
		s->clients++;
		break;
	case LOGDB_SUMMARY_HOUR:
		s->hours++;
		assert_int_equal(row->ts_ms % 3600000, 0);
		break;
	}
	return 0;
}

static void
test_report_summary(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct sums s = {0};

	(void)state;
	fixture_db(path, sizeof(path));
	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);
	assert_int_equal(logdb_report_summary(r, &f, 3, on_summary, &s), 0);
	assert_int_equal(s.total, NFIXTURE);
	assert_int_equal(s.blocked, 5);
	assert_int_equal(s.groups, 3); /* lab, staff, none */
	assert_int_equal(s.lab_total, 4);
	assert_int_equal(s.lab_blocked, 3);
	assert_int_equal(s.lists, 2);
	assert_int_equal(s.xiaomi_blocked, 4);
	assert_int_equal(s.top, 3);     /* limited */
	assert_int_equal(s.clients, 3); /* top 3 of 4 keys */
	assert_true(s.hours >= 3);
	logdb_reader_free(&r);
}

/* ---- schema 3: ids and their text ---- */

/* One row as text: the fields in logdb_row order, "|" between them, NULL as "\N". */
static void
row_text(char *buf, size_t cap, const char *const *f, size_t n)
{
	size_t o = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && o < cap; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s", i > 0 ? "|" : "",
		                      f[i] != NULL ? f[i] : "\\N");
}

struct row_texts {
	char rows[16][512];
	size_t n;
};

static int
on_row_text(void *arg, const struct logdb_row *row)
{
	struct row_texts *t = arg;
	char id[24], ts[24], blocked[4], lat[16];

	snprintf(id, sizeof(id), "%lld", (long long)row->id);
	snprintf(ts, sizeof(ts), "%llu", (unsigned long long)row->ts_ms);
	snprintf(blocked, sizeof(blocked), "%d", row->blocked ? 1 : 0);
	snprintf(lat, sizeof(lat), "%u", (unsigned)row->latency_us);
	const char *f[] = {id,          ts,          row->client,       row->proto, row->group,
	                   row->qname,  row->qtype,  blocked,           row->list,  row->rule,
	                   row->action, row->rcode,  row->upstream,     lat,        row->mac,
	                   row->device, row->vendor, row->vendor_source};
	if (t->n < 16)
		row_text(t->rows[t->n], sizeof(t->rows[0]), f, sizeof(f) / sizeof(f[0]));
	t->n++;
	return 0;
}

/* The view query_log (what an administrator reads with sqlite3) and logdb_query_rows give the
 * same rows, column for column. */
static void
test_view_matches_rows(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct row_texts got = {.n = 0};
	sqlite3 *s;
	sqlite3_stmt *st;
	size_t n = 0;

	(void)state;
	fixture_db(path, sizeof(path));
	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);
	assert_int_equal(logdb_query_rows(r, &f, on_row_text, &got), 0);
	logdb_reader_free(&r);
	assert_int_equal(got.n, NFIXTURE);

	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s,
	                                    "SELECT id, ts_ms, client, proto, group_name, qname,"
	                                    " qtype, blocked, list, rule, action, rcode, upstream,"
	                                    " latency_us, mac, device, vendor, vendor_source"
	                                    " FROM query_log ORDER BY id DESC",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW) {
		const char *fields[18];
		char want[512];
		for (int i = 0; i < 18; i++)
			fields[i] = (const char *)sqlite3_column_text(st, i);
		row_text(want, sizeof(want), fields, 18);
		assert_true(n < got.n);
		if (strcmp(got.rows[n], want) != 0)
			fail_msg("row %zu:\n reader '%s'\n view   '%s'", n, got.rows[n], want);
		n++;
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
	assert_int_equal(n, got.n);
}

/* Schemas 1 and 2 are the writer's to convert: the reader refuses them (and leaves the file
 * alone), like a foreign database. */
static void
test_reader_refuses_old_schemas(void **state)
{
	static const struct {
		int version;
		const char *sql;
	} cases[] = {
	        {1, "CREATE TABLE queries (id INTEGER PRIMARY KEY, ts_ms INTEGER, client TEXT,"
	            " qname TEXT, rname TEXT, blocked INTEGER);"
	            " CREATE INDEX queries_ts ON queries(ts_ms);"
	            " INSERT INTO queries VALUES (1, 1795319902123, '10.0.0.1', 'a.test',"
	            " 'test.a.', 0)"},
	        {2, "CREATE TABLE queries (id INTEGER PRIMARY KEY, ts_ms INTEGER, client TEXT,"
	            " qname TEXT, rname TEXT, blocked INTEGER);"
	            " INSERT INTO queries VALUES (1, 1795319902123, '10.0.0.1', 'a.test',"
	            " 'test.a.', 0)"},
	        {0, "CREATE TABLE other (x)"},
	};
	char path[300], sql[400];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct logdb_reader *r = NULL;
		sqlite3 *s;
		tmp_path(path, sizeof(path), "old-schema.db");
		assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
		snprintf(sql, sizeof(sql), "%s; PRAGMA user_version = %d", cases[i].sql,
		         cases[i].version);
		assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
		sqlite3_close(s);
		if (logdb_reader_open(path, &r) != -EINVAL)
			fail_msg("schema %d: not refused", cases[i].version);
		assert_null(r);
		assert_int_equal(sql_int(path, "PRAGMA user_version"), cases[i].version);
	}
}

/* Reports count by id and print text: one device seen through several sources (another
 * group, another address) is one device; a device key is the same text whether it is a
 * device name or an address; blocked rows without a list, allowed rows with one, queries
 * without a question; equal counts ordered by name. */
static const struct rec ids_fixture[] = {
        /* oldest first: age, client, qname, group, list, device, vendor, mac, blocked */
        {9000, "10.0.0.5", "a.test", "staff", "ads", "tv", NULL, NULL, true, 0, 0},
        {8000, "10.0.0.6", "a.test", "kids", "ads", "tv", NULL, NULL, true, 0, 0},
        {7000, "10.0.0.6", "b.test", "kids", NULL, "tv", NULL, NULL, true, 0, 0},
        {6000, "10.0.0.3", "b.test", "kids", "ads", NULL, NULL, NULL, true, 0, 0},
        {5000, "10.0.0.7", "c.test", "kids", "ads", "10.0.0.3", NULL, NULL, true, 0, 0},
        {4000, "10.0.0.7", "ok.test", "kids", "allow", "10.0.0.3", NULL, NULL, false, 0, 0},
        {3000, "10.0.0.8", "c.test", NULL, "ads", NULL, NULL, NULL, true, 0, 0},
        {2000, "10.0.0.8", "", NULL, NULL, NULL, NULL, NULL, false, 0, 0}, /* no question */
        {1000, "10.0.0.9", "a.test", NULL, NULL, NULL, NULL, NULL, false, 0, 0}, /* forwarded */
};

struct summary_lines {
	char lines[32][96];
	size_t n;
	uint64_t hour_total;
};

static int
on_summary_line(void *arg, const struct logdb_summary_row *row)
{
	struct summary_lines *s = arg;

	if (row->section == LOGDB_SUMMARY_HOUR) {
		s->hour_total += row->total;
		return 0;
	}
	if (s->n < 32)
		snprintf(s->lines[s->n], sizeof(s->lines[0]), "%d %s %llu %llu", (int)row->section,
		         row->label != NULL ? row->label : "NULL", (unsigned long long)row->total,
		         (unsigned long long)row->blocked);
	s->n++;
	return 0;
}

static void
test_report_ids_to_text(void **state)
{
	static const char *const want_summary[] = {
	        "0 NULL 9 6",   "1 kids 5 4",     "1 NULL 3 1",   "1 staff 1 1",
	        "2 ads 5 5",    "2 allow 1 0",    "3 a.test 3 2", /* a and c.test are blocked
	                                                             by a list twice each, b.test
	                                                             once (its other block is the
	                                                             default deny's); a.test was
	                                                             also forwarded once */
	        "3 c.test 2 2", "4 10.0.0.3 3 2", /* the address and the device named so */
	        "4 tv 3 3",
	};
	static const struct {
		const char *what;
		struct logdb_filter f;
		const char *expect;
	} rows[] = {
	        {"who: a device of two sources",
	         {.blocked = -1, .who = "tv", .limit = 2, .chronological = true},
	         "a.test b.test"},
	        {"who: a device name or an address",
	         {.blocked = -1, .who = "10.0.0.3"},
	         "ok.test c.test b.test"},
	        {"device and group: one of its sources",
	         {.blocked = -1, .device = {{"tv"}}, .group = {{"staff"}}},
	         "a.test"},
	        {"list of an allowed row", {.blocked = 0, .list = {{"allow"}}}, "ok.test"},
	        {"a list nobody has", {.blocked = -1, .list = {{"nosuch"}}}, ""},
	};
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct attempts a = {.n = 0};
	struct summary_lines s = {.n = 0};

	(void)state;
	tmp_path(path, sizeof(path), "ids.db");
	struct logdb *db = open_db(path, 0, 0);
	for (size_t i = 0; i < sizeof(ids_fixture) / sizeof(ids_fixture[0]); i++) {
		struct querylog_record rec;
		make_record(&rec, &ids_fixture[i]);
		assert_int_equal(logdb_add(db, &rec), 0);
	}
	logdb_free(&db);
	assert_int_equal(logdb_reader_open(path, &r), 0);

	logdb_filter_init(&f);
	assert_int_equal(logdb_report_attempts(r, &f, on_attempt, &a), 0);
	/* keyed by address (no MAC): 'tv' on two addresses is two devices, the device named
	 * 10.0.0.3 at 10.0.0.7 is 10.0.0.7; a blocked row without a list is the default deny's,
	 * counted apart, in neither attempts, names nor lists */
	assert_int_equal(a.n, 5);
	assert_string_equal(a.a[0].key, "10.0.0.6");
	assert_int_equal(a.a[0].attempts, 1);
	assert_int_equal(a.a[0].denied, 1);
	assert_int_equal(a.a[0].names, 1);
	assert_string_equal(a.a[0].top_lists, "ads (1)");
	assert_string_equal(a.a[0].group, "kids"); /* of the latest row */
	assert_int_equal(a.a[0].first_ms, NOW_MS - 8000);
	assert_int_equal(a.a[0].last_ms, NOW_MS - 7000);
	/* one attempt each, no denied: by key */
	assert_string_equal(a.a[1].key, "10.0.0.3");
	assert_string_equal(a.a[2].key, "10.0.0.5");
	assert_string_equal(a.a[3].key, "10.0.0.7");
	assert_int_equal(a.a[3].denied, 0);
	assert_string_equal(a.a[4].key, "10.0.0.8");
	assert_null(a.a[4].group);

	assert_int_equal(logdb_report_summary(r, &f, 2, on_summary_line, &s), 0);
	assert_int_equal(s.hour_total, 9);
	for (size_t i = 0; i < s.n || i < sizeof(want_summary) / sizeof(want_summary[0]); i++) {
		const char *got = i < s.n ? s.lines[i] : "(none)";
		const char *want = i < sizeof(want_summary) / sizeof(want_summary[0])
		                           ? want_summary[i]
		                           : "(none)";
		if (strcmp(got, want) != 0)
			fail_msg("summary line %zu: '%s', want '%s'", i, got, want);
	}

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct collect c = {.n = 0};
		char got[512] = "";
		assert_int_equal(logdb_query_rows(r, &rows[i].f, on_collect, &c), 0);
		for (size_t k = 0; k < c.n && k < 16; k++) {
			if (k > 0)
				strcat(got, " ");
			strcat(got, c.names[k]);
		}
		if (strcmp(got, rows[i].expect) != 0)
			fail_msg("%s: '%s', want '%s'", rows[i].what, got, rows[i].expect);
	}
	logdb_reader_free(&r);
}

static void
test_parse_time(void **state)
{
	static const struct {
		const char *text;
		int rc;
		uint64_t want;
	} cases[] = {
	        {"30m", 0, NOW_MS - 30 * 60000ull},
	        {"24h", 0, NOW_MS - 24 * 3600000ull},
	        {"7d", 0, NOW_MS - 7 * DAY_MS},
	        {"2w", 0, NOW_MS - 14 * DAY_MS},
	        {"90s", 0, NOW_MS - 90000},
	        {"2026-11-22T03:58:22Z", 0, NOW_MS - 123},
	        {"2026-11-22T03:58:22.123Z", 0, NOW_MS},
	        {"2026-11-22T04:58:22+01:00", 0, NOW_MS - 123},
	        {"2026-11-21T22:58:22-0500", 0, NOW_MS - 123},
	        {"2026-11-22t03:58z", 0, NOW_MS - 22123},
	        {"7x", -EINVAL, 0},
	        {"d", -EINVAL, 0},
	        {"", -EINVAL, 0},
	        {"2026-13-01", -EINVAL, 0},
	        {"2026-11-22T25:00Z", -EINVAL, 0},
	        {"2026-11-22T03:58:22Zjunk", -EINVAL, 0},
	        {"yesterday", -EINVAL, 0},
	        {"99999999999d", 0, 0},       /* before the epoch: from the beginning */
	        {"30500568905w", -EINVAL, 0}, /* would wrap around to 9.5 hours */
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint64_t got = 12345;
		int rc = output_parse_time(cases[i].text, NOW_MS, &got);
		if (rc != cases[i].rc)
			fail_msg("'%s': rc %d, want %d", cases[i].text, rc, cases[i].rc);
		if (rc == 0 && got != cases[i].want)
			fail_msg("'%s': %llu, want %llu", cases[i].text, (unsigned long long)got,
			         (unsigned long long)cases[i].want);
		if (rc != 0 && got != 12345)
			fail_msg("'%s': output written on failure", cases[i].text);
	}
	/* no zone: local time; a date alone is midnight local */
	setenv("TZ", "UTC", 1);
	tzset();
	uint64_t t = 0;
	assert_int_equal(output_parse_time("2026-11-22", NOW_MS, &t), 0);
	assert_int_equal(t, NOW_MS - (3 * 3600000ull + 58 * 60000ull + 22123));
}

/* JSON strings: escapes, and valid UTF-8 only (a DHCP hostname can hold any octets). */
/* The querylog writer feeds the database (state_dir created), and no JSON lines go to
 * standard output when only the database is configured. */
static void
test_querylog_feeds_database(void **state)
{
	struct config cfg;
	struct querylog *ql = NULL;
	char state_dir[300], db[400];

	(void)state;
	snprintf(state_dir, sizeof(state_dir), "%s/state/sub", tmpdir);
	snprintf(db, sizeof(db), "%s/q.db", state_dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.queries = CONFIG_LOG_ALL;
	cfg.log.database = db;
	cfg.state_dir = state_dir;
	cfg.log.retention_days = 90;
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	for (size_t i = 0; i < NFIXTURE; i++) {
		struct querylog_record r;
		make_record(&r, &fixture[i]);
		r.ts_ms = NOW_MS + i;
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	struct identity_event ev;
	memset(&ev, 0, sizeof(ev));
	strcpy(ev.device, "redmi");
	strcpy(ev.mac, "02:00:00:00:00:01");
	strcpy(ev.kind, "group_change");
	strcpy(ev.old_group, "staff");
	strcpy(ev.new_group, "banned");
	memset(ev.evidence, 'e', sizeof(ev.evidence)); /* not terminated: cut, not overrun */
	assert_int_equal(querylog_submit_event(ql, &ev), 0);
	querylog_free(&ql);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM device_events WHERE kind ="
	                             " 'group_change' AND device = 'redmi' AND client IS NULL"
	                             " AND length(evidence) = 255 AND ts_ms > 0"),
	                 1);
	struct stat st;
	assert_int_equal(stat(state_dir, &st), 0);
	assert_true(S_ISDIR(st.st_mode));
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries"), NFIXTURE);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM query_log WHERE device = 'redmi'"
	                             " AND vendor_source = 'signature'"
	                             " AND mac = '02:00:00:00:00:01'"),
	                 3);
}

/* A state_dir that cannot be created: reported, the daemon's query log still starts, the
 * records are counted as dropped by the database sink. */
static void
test_querylog_without_state_dir(void **state)
{
	struct config cfg;
	struct querylog *ql = NULL;
	char file[300], state_dir[400], db[500];

	(void)state;
	snprintf(file, sizeof(file), "%s/plainfile", tmpdir);
	FILE *f = fopen(file, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(state_dir, sizeof(state_dir), "%s/below", file);
	snprintf(db, sizeof(db), "%s/q.db", state_dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.queries = CONFIG_LOG_ALL;
	cfg.log.database = db;
	cfg.state_dir = state_dir;
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	struct querylog_record r;
	make_record(&r, &fixture[0]);
	assert_int_equal(querylog_submit(ql, &r), 0);
	assert_int_equal(querylog_submit(ql, &r), 0);
	for (int i = 0; i < 200 && querylog_db_dropped(ql) < 2; i++) {
		struct timespec ts = {0, 5000000L};
		nanosleep(&ts, NULL);
	}
	assert_int_equal(querylog_db_dropped(ql), 2);
	/* events: a queue that grows to a bound, overflow counted */
	struct identity_event ev;
	memset(&ev, 0, sizeof(ev));
	querylog_test_pause(ql, true);
	for (int i = 0; i < QUERYLOG_EVENTS_MAX; i++)
		assert_int_equal(querylog_submit_event(ql, &ev), 0);
	assert_int_equal(querylog_submit_event(ql, &ev), -ENOBUFS);
	assert_int_equal(querylog_db_dropped(ql), 3);
	querylog_test_pause(ql, false);
	querylog_free(&ql);
	/* no database: events are not for this log */
	cfg.log.database = NULL;
	cfg.log.file = file;
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	assert_int_equal(querylog_submit_event(ql, &ev), -ENOTSUP);
	querylog_free(&ql);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_rname),
	        cmocka_unit_test(test_schema),
	        cmocka_unit_test(test_row_values),
	        cmocka_unit_test(test_batching),
	        cmocka_unit_test(test_retention),
	        cmocka_unit_test(test_full_then_resumes),
	        cmocka_unit_test(test_readonly_then_resumes),
	        cmocka_unit_test(test_corrupt_and_newer),
	        cmocka_unit_test(test_filters),
	        cmocka_unit_test(test_time_windows),
	        cmocka_unit_test(test_reader_concurrent_and_copy),
	        cmocka_unit_test(test_report_attempts),
	        cmocka_unit_test(test_report_summary),
	        cmocka_unit_test(test_view_matches_rows),
	        cmocka_unit_test(test_reader_refuses_old_schemas),
	        cmocka_unit_test(test_report_ids_to_text),
	        cmocka_unit_test(test_parse_time),
	        cmocka_unit_test(test_querylog_feeds_database),
	        cmocka_unit_test(test_querylog_without_state_dir),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
