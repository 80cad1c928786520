/*
 * test_logdb_store: the writer's side of query-store schema 3: the dictionary memory
 * (logdb_dict.c), rows through the dictionaries, ids forgotten with a rolled-back transaction,
 * rows written in batches, retention of the dictionaries, and the in-place conversion of schema 1
 * and 2 databases (logdb_migrate.c), interrupted and resumed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "logdb.h"
#include "logdb_reader.h"
#include "logdb_int.h"
#include "querylog.h"
#include "querylog_int.h"

#define LOGDB_HARNESS_TMP "/tmp/test_logdb_store.XXXXXX"
#include "logdb_harness.h"

/* A query from an IPv4 client for a dotted name, age_ms before NOW_MS; device may be NULL.
 * logdb_add's result. */
static int
try_query(struct logdb *db, uint64_t age_ms, const char *client, const char *qname,
          const char *device)
{
	struct querylog_record r;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&r.client;

	memset(&r, 0, sizeof(r));
	r.ts_ms = NOW_MS - age_ms;
	s4->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, client, &s4->sin_addr), 1);
	set_qname(&r, qname);
	r.qtype = 1;
	r.rule_label = -1;
	if (device != NULL)
		snprintf(r.device, sizeof(r.device), "%s", device);
	return logdb_add(db, &r);
}

static void
add_query(struct logdb *db, uint64_t age_ms, const char *client, const char *qname,
          const char *device)
{
	assert_int_equal(try_query(db, age_ms, client, qname, device), 0);
}

/* The qnames of the view query_log in id order, joined by ' '. */
static void
view_qnames(const char *path, char *out, size_t cap)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	size_t o = 0;

	out[0] = '\0';
	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(
	        sqlite3_prepare_v2(s, "SELECT coalesce(qname, '?') FROM query_log ORDER BY id", -1,
	                           &st, NULL),
	        SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		o += (size_t)snprintf(out + o, cap - o, "%s%s", o > 0 ? " " : "",
		                      (const char *)sqlite3_column_text(st, 0));
	assert_true(o < cap);
	sqlite3_finalize(st);
	sqlite3_close(s);
}

/* ---- the dictionary memory ---- */

static void
test_dict(void **state)
{
	struct logdb_dict d;
	char key[32];

	(void)state;
	assert_int_equal(logdb_dict_init(&d, 1001, 1 << 16), 0);
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(key, sizeof(key), "name-%d.example", i);
		logdb_dict_put(&d, logdb_dict_hash(&d, key, (size_t)n), key, (size_t)n, i + 1);
	}
	for (int i = 0; i < 1000; i++) {
		int n = snprintf(key, sizeof(key), "name-%d.example", i);
		assert_int_equal(
		        logdb_dict_get(&d, logdb_dict_hash(&d, key, (size_t)n), key, (size_t)n),
		        i + 1);
	}
	/* a key that is a prefix of another, and one absent */
	assert_int_equal(logdb_dict_get(&d, logdb_dict_hash(&d, "name-1", 6), "name-1", 6), 0);
	/* the same hash, another key: never confused (a forced collision) */
	logdb_dict_put(&d, 42, "x", 1, 7);
	assert_int_equal(logdb_dict_get(&d, 42, "y", 1), 0);
	assert_int_equal(logdb_dict_get(&d, 42, "x", 1), 7);
	/* full: the next key clears the memory and is the only one left */
	logdb_dict_put(&d, logdb_dict_hash(&d, "one-more", 8), "one-more", 8, 5000);
	assert_int_equal(d.count, 1);
	assert_int_equal(logdb_dict_get(&d, logdb_dict_hash(&d, "one-more", 8), "one-more", 8),
	                 5000);
	assert_int_equal(logdb_dict_get(&d, 42, "x", 1), 0);
	logdb_dict_free(&d);

	/* the key bytes run out before the entries do */
	assert_int_equal(logdb_dict_init(&d, 100, 16), 0);
	logdb_dict_put(&d, 1, "0123456789", 10, 1);
	logdb_dict_put(&d, 2, "abcdefghij", 10, 2); /* does not fit beside the first: clears */
	assert_int_equal(logdb_dict_get(&d, 1, "0123456789", 10), 0);
	assert_int_equal(logdb_dict_get(&d, 2, "abcdefghij", 10), 2);
	logdb_dict_put(&d, 3, "a key longer than the arena", 27, 3); /* not remembered */
	assert_int_equal(logdb_dict_get(&d, 3, "a key longer than the arena", 27), 0);
	assert_int_equal(logdb_dict_get(&d, 2, "abcdefghij", 10), 2);
	logdb_dict_free(&d);
}

/* ---- rows through the dictionaries ---- */

static void
test_rows_share_dictionaries(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "dict.db");
	struct logdb *db = open_db(path, 0, 0);
	for (int i = 0; i < 600; i++) {
		char name[32], client[16];
		snprintf(name, sizeof(name), "n%d.example", i % 10);
		snprintf(client, sizeof(client), "10.0.0.%d", 1 + i % 3);
		add_query(db, 1000, client, name, i % 3 == 0 ? "phone" : NULL);
	}
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 600);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sources"), 3);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names"), 10);
	/* texts: the type, the protocol, the action, the rcode */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM texts WHERE text IN ('A', 'udp')"), 2);
	assert_int_equal(sql_int(path,
	                         "SELECT count(*) FROM query_log WHERE qname = 'n4.example'"
	                         " AND client = '10.0.0.2' AND qtype = 'A' AND proto = 'udp'"),
	                 20);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM query_log WHERE device = 'phone'"
	                               " AND client = '10.0.0.1'"),
	                 200);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names WHERE rname = 'example.n7.'"),
	                 1);

	/* a new writer (empty memory) finds the existing entries instead of adding twins */
	db = open_db(path, 0, 0);
	add_query(db, 500, "10.0.0.2", "n4.example", NULL);
	add_query(db, 500, "10.0.0.1", "n5.example", "phone");
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sources"), 3);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names"), 10);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 602);
}

/* A transaction that fails takes its new dictionary entries with it: the writer must forget
 * their ids, or later rows would point at rows that do not exist, or at other names. */
static void
test_failure_forgets_ids(void **state)
{
	char path[300], got[8192], want[8192];
	size_t o = 0;
	int stored = 0;

	(void)state;
	tmp_path(path, sizeof(path), "forget.db");
	struct logdb *db = open_db(path, 0, 0);
	add_query(db, 0, "10.0.0.1", "first.example", NULL);
	assert_int_equal(logdb_commit(db), 0);
	stored = 1;
	o += (size_t)snprintf(want + o, sizeof(want) - o, "first.example");

	/* names added in a transaction that cannot commit (a full disk) */
	logdb_set_max_pages(db, (uint32_t)sql_int(path, "PRAGMA page_count"));
	for (int i = 0; i < 2000 && logdb_is_open(db); i++) {
		char name[64];
		snprintf(name, sizeof(name), "lost-%04d.a-long-label-to-fill-pages.example", i);
		try_query(db, 0, "10.0.0.2", name, "lost-device");
		if (i % 50 == 49 && logdb_is_open(db))
			logdb_commit(db);
	}
	assert_false(logdb_is_open(db));
	assert_true(logdb_dropped(db) > 0);
	logdb_set_max_pages(db, 0);
	logdb_tick(db, BASE_MONO, NOW_MS);
	logdb_tick(db, BASE_MONO + LOGDB_RETRY_MIN_MS, NOW_MS);
	assert_true(logdb_is_open(db));
	stored += (int)sql_int(path, "SELECT count(*) FROM queries") - 1;
	for (int i = 0; i < stored - 1; i++) {
		char name[64];
		snprintf(name, sizeof(name), "lost-%04d.a-long-label-to-fill-pages.example", i);
		o += (size_t)snprintf(want + o, sizeof(want) - o, " %s", name);
	}

	/* the same names again, newest first, and a name that is new */
	for (int i = 1999; i >= 1990; i--) {
		char name[64];
		snprintf(name, sizeof(name), "lost-%04d.a-long-label-to-fill-pages.example", i);
		add_query(db, 0, "10.0.0.2", name, "lost-device");
		o += (size_t)snprintf(want + o, sizeof(want) - o, " %s", name);
	}
	add_query(db, 0, "10.0.0.3", "new.example", NULL);
	o += (size_t)snprintf(want + o, sizeof(want) - o, " new.example");
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	view_qnames(path, got, sizeof(got));
	assert_string_equal(got, want);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries q WHERE NOT EXISTS"
	                               " (SELECT 1 FROM sources s WHERE s.id = q.source)"),
	                 0);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM query_log WHERE client = '10.0.0.2'"
	                               " AND device = 'lost-device'"),
	                 stored - 1 + 10);
}

/* ---- rows in batches (logdb_batch.c) ---- */

/* Rows wait in the writer and go in LOGDB_INSERT_MANY at a time: a commit stores the tail of
 * a batch too, every column of every row arrives in order, and a transaction that fails
 * counts the rows still waiting as lost with the others (written + dropped = added). */
static void
test_batched_rows(void **state)
{
	const int n = 2 * LOGDB_INSERT_MANY + 37;
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "batch.db");
	struct logdb *db = open_db(path, 0, 0);
	for (int i = 0; i < n; i++) {
		char name[32];
		struct querylog_record r;
		snprintf(name, sizeof(name), "r%04d.example", i);
		make_record(&r, &(struct rec){.age_ms = (uint64_t)(n - i),
		                              .client = "10.0.0.1",
		                              .qname = name,
		                              .blocked = i % 3 == 0,
		                              .list = i % 3 == 0 ? "ads" : NULL,
		                              .action = i % 3 == 0 ? QUERYLOG_ACTION_SINKHOLE
		                                                   : QUERYLOG_ACTION_FORWARD});
		r.latency_us = (uint32_t)i;
		assert_int_equal(logdb_add(db, &r), 0);
	}
	/* nothing reaches the file before the commit */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 0);
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(logdb_written(db), (uint64_t)n);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), n);
	/* in id order: the names, times, latencies and blocked flags as added */
	char sql[512];
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM query_log WHERE qname = printf('r%%04d.example', latency_us)"
	         " AND ts_ms = %llu - (%d - latency_us) AND id = latency_us + 1"
	         " AND blocked = (latency_us %% 3 = 0) AND (list IS 'ads') = (latency_us %% 3 = 0)"
	         " AND action = CASE WHEN latency_us %% 3 = 0 THEN 'sinkhole' ELSE 'forward' END",
	         (unsigned long long)NOW_MS, n);
	assert_int_equal(sql_int(path, sql), n);

	/* a failed transaction: the rows in the open batch are counted with it */
	db = open_db(path, 0, 0);
	logdb_set_max_pages(db, (uint32_t)sql_int(path, "PRAGMA page_count"));
	uint64_t added = 0;
	for (int i = 0; i < 20000 && logdb_is_open(db); i++) {
		char name[64];
		snprintf(name, sizeof(name), "f%05d.a-long-label-to-fill-pages.example", i);
		try_query(db, 0, "10.0.0.2", name, NULL);
		added++;
		if (i % 1000 == 999 && logdb_is_open(db))
			logdb_commit(db);
	}
	assert_false(logdb_is_open(db));
	assert_int_equal(logdb_written(db) + logdb_dropped(db), added);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"),
	                 n + (int64_t)logdb_written(db));
	logdb_free(&db);
}

/* ---- retention of the dictionaries ---- */

static void
test_dictionary_retention(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "retention.db");
	struct logdb *db = open_db(path, 1, 0);
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof(name), "old-%d.example", i);
		add_query(db, 3 * DAY_MS, "10.0.0.1", name, "gone");
	}
	add_query(db, 3 * DAY_MS, "10.0.0.2", "kept.example", NULL);
	add_query(db, 1000, "10.0.0.2", "kept.example", NULL);
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names"), 51);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sources"), 2);

	/* retention steps, then the pass over sources and names, one step per tick */
	for (int i = 0; i < 20; i++)
		logdb_tick(db, BASE_MONO + (uint64_t)i, NOW_MS);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names"), 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sources"), 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names WHERE qname = 'kept.example'"),
	                 1);

	/* the device comes back: stored under new entries, read back right */
	add_query(db, 0, "10.0.0.1", "old-7.example", "gone");
	add_query(db, 0, "10.0.0.2", "kept.example", NULL);
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path,
	                         "SELECT count(*) FROM query_log WHERE qname = 'old-7.example'"
	                         " AND client = '10.0.0.1' AND device = 'gone'"),
	                 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM query_log WHERE qname = 'kept.example'"
	                               " AND client = '10.0.0.2' AND device IS NULL"),
	                 2);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sources"), 2);
}

/* ---- converting schema 1 and 2 ---- */

static const char old_schema[] =
        "CREATE TABLE queries (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, client TEXT,"
        " proto TEXT NOT NULL, group_name TEXT, qname TEXT, rname TEXT, qtype TEXT,"
        " blocked INTEGER NOT NULL, list TEXT, rule TEXT, action TEXT NOT NULL,"
        " rcode TEXT NOT NULL, upstream TEXT, latency_us INTEGER NOT NULL, mac TEXT, device TEXT,"
        " vendor TEXT, vendor_source TEXT);"
        "CREATE INDEX queries_device ON queries(device) WHERE device IS NOT NULL;"
        "CREATE INDEX queries_mac ON queries(mac) WHERE mac IS NOT NULL;"
        "CREATE INDEX queries_client ON queries(client);"
        "CREATE INDEX queries_rname ON queries(rname);"
        "CREATE INDEX queries_blocked ON queries(ts_ms, device, mac, client, qname, list,"
        " group_name, vendor, vendor_source, blocked) WHERE blocked = 1;"
        "CREATE TABLE device_events (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, device TEXT,"
        " mac TEXT, client TEXT, kind TEXT NOT NULL, old_group TEXT, new_group TEXT,"
        " evidence TEXT);"
        "CREATE INDEX device_events_ts ON device_events(ts_ms);"
        "CREATE INDEX device_events_device ON device_events(device, ts_ms);";

/* Row i (1-based) of an old database: every column a function of i, NULLs included. */
static const char old_row_sql[] =
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?1)"
        " INSERT INTO queries SELECT i, ?2 + i, '10.1.0.' || (i % 7),"
        " CASE WHEN i % 5 = 0 THEN 'tcp' ELSE 'udp' END,"
        " CASE WHEN i % 3 = 0 THEN NULL ELSE 'g' || (i % 3) END,"
        " 'h' || (i % 100) || '.vendor.example', 'example.vendor.h' || (i % 100) || '.',"
        " CASE WHEN i % 2 = 0 THEN 'AAAA' ELSE 'A' END, i % 4 = 0,"
        " CASE WHEN i % 4 = 0 THEN 'xiaomi' END, CASE WHEN i % 4 = 0 THEN 'vendor.example' END,"
        " CASE WHEN i % 4 = 0 THEN 'sinkhole' ELSE 'forward' END, 'NOERROR',"
        " CASE WHEN i % 4 = 0 THEN NULL ELSE '192.0.2.1:53' END, i % 1000,"
        " CASE WHEN i % 7 < 4 THEN '02:00:00:00:00:0' || (i % 7) END,"
        " CASE WHEN i % 7 < 2 THEN 'dev-' || (i % 7) END,"
        " CASE WHEN i % 7 = 0 THEN 'Xiaomi' END, CASE WHEN i % 7 = 0 THEN 'oui' END FROM n";

static void
make_old(const char *path, int version, int rows)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	char sql[64];

	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "PRAGMA journal_mode = WAL; BEGIN", NULL, NULL, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, old_schema, NULL, NULL, NULL), SQLITE_OK);
	if (version == 1)
		assert_int_equal(sqlite3_exec(s, "CREATE INDEX queries_ts ON queries(ts_ms)", NULL,
		                              NULL, NULL),
		                 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, old_row_sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, rows);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(NOW_MS - DAY_MS));
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_exec(s,
	                              "INSERT INTO device_events (ts_ms, device, kind, new_group)"
	                              " VALUES (1795300000000, 'dev-1', 'first_seen', 'g1')",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; COMMIT", version);
	assert_int_equal(sqlite3_exec(s, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(s);
}

/* Every converted row equals its old self, column by column (the view against the formula). */
static void
check_converted(const char *path, int rows)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	char sql[4096];

	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s, "CREATE TEMP TABLE want AS SELECT * FROM queries LIMIT 0",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	/* the same generator, into a temporary table shaped like the old one */
	snprintf(sql, sizeof(sql), "%s", old_row_sql);
	char *into = strstr(sql, "INSERT INTO queries");
	assert_non_null(into);
	memcpy(into, "INSERT INTO want   ", 19);
	sqlite3_exec(s, "DROP TABLE temp.want", NULL, NULL, NULL);
	assert_int_equal(
	        sqlite3_exec(s,
	                     "CREATE TEMP TABLE want (id INTEGER PRIMARY KEY, ts_ms, client,"
	                     " proto, group_name, qname, rname, qtype, blocked, list,"
	                     " rule, action, rcode, upstream, latency_us, mac, device,"
	                     " vendor, vendor_source)",
	                     NULL, NULL, NULL),
	        SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
	sqlite3_bind_int(st, 1, rows);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(NOW_MS - DAY_MS));
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	assert_int_equal(sqlite3_prepare_v2(
	                         s,
	                         "SELECT count(*) FROM want w JOIN query_log q ON q.id = w.id"
	                         " WHERE q.ts_ms IS w.ts_ms AND q.client IS w.client"
	                         " AND q.proto IS w.proto AND q.group_name IS w.group_name"
	                         " AND q.qname IS w.qname AND q.rname IS w.rname"
	                         " AND q.qtype IS w.qtype AND q.blocked IS w.blocked"
	                         " AND q.list IS w.list AND q.rule IS w.rule"
	                         " AND q.action IS w.action AND q.rcode IS w.rcode"
	                         " AND q.upstream IS w.upstream AND q.latency_us IS w.latency_us"
	                         " AND q.mac IS w.mac AND q.device IS w.device"
	                         " AND q.vendor IS w.vendor AND q.vendor_source IS w.vendor_source",
	                         -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(st, 0), rows);
	sqlite3_finalize(st);
	sqlite3_close(s);
}

static void
test_convert_schema_2(void **state)
{
	char path[300];
	const int rows = 2 * LOGDB_MIGRATE_ROWS + 5000;

	(void)state;
	tmp_path(path, sizeof(path), "v2.db");
	make_old(path, 2, rows);

	/* opening converts the newest LOGDB_MIGRATE_ROWS at once */
	struct logdb *db = open_db(path, 0, 0);
	assert_true(logdb_is_open(db));
	assert_int_equal(sql_int(path, "PRAGMA user_version"), LOGDB_SCHEMA_VERSION);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), LOGDB_MIGRATE_ROWS);
	assert_int_equal(sql_int(path, "SELECT min(id) FROM queries"),
	                 rows - LOGDB_MIGRATE_ROWS + 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries_old"),
	                 rows - LOGDB_MIGRATE_ROWS);
	/* a new query meanwhile: its id follows the old ones (time order) */
	add_query(db, 0, "10.9.9.9", "new.example", NULL);
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(sql_int(path, "SELECT id FROM query_log WHERE qname = 'new.example'"),
	                 rows + 1);
	/* stopped in the middle */
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries_old"),
	                 rows - LOGDB_MIGRATE_ROWS);

	/* the next start continues: a step on opening, the rest at ticks */
	db = open_db(path, 0, 0);
	for (int i = 0; i < 3; i++)
		logdb_tick(db, BASE_MONO + (uint64_t)i, NOW_MS);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name ="
	                               " 'queries_old'"),
	                 0);
	add_query(db, 0, "10.9.9.9", "newer.example", NULL);
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), rows + 2);
	assert_int_equal(sql_int(path, "SELECT max(id) FROM queries"), rows + 2);
	check_converted(path, rows);
	/* dictionaries: 7 clients x MAC/device/vendor combinations, 100 names + 2 new */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names"), 102);
	assert_true(sql_int(path, "SELECT count(*) FROM sources") <= 7 * 3 + 1);
	/* the device events of the old file are kept, and gain the vendor column */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events WHERE device = 'dev-1'"),
	                 1);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM pragma_table_info('device_events')"
	                               " WHERE name = 'vendor'"),
	                 1);
}

static void
test_convert_schema_1(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "v1.db");
	make_old(path, 1, 300);
	struct logdb *db = open_db(path, 0, 0);
	logdb_tick(db, BASE_MONO, NOW_MS);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), LOGDB_SCHEMA_VERSION);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
	                               " ('queries_old', 'queries_ts')"),
	                 0);
	check_converted(path, 300);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_dict),
	        cmocka_unit_test(test_rows_share_dictionaries),
	        cmocka_unit_test(test_failure_forgets_ids),
	        cmocka_unit_test(test_batched_rows),
	        cmocka_unit_test(test_dictionary_retention),
	        cmocka_unit_test(test_convert_schema_2),
	        cmocka_unit_test(test_convert_schema_1),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
