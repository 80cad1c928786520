/*
 * test_logdb_rollup: the query store's hourly rollups (schema 4, logdb_rollup.c): they equal a
 * GROUP BY over the rows after a batch, across an hour boundary, after a crash in the middle of
 * a transaction (rows and rollups roll back together), after retention; a schema-3 file is
 * converted; and the reader's filters that use the rollups return what a plain scan returns.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "logdb.h"
#include "logdb_int.h"
#include "logdb_reader.h"
#include "querylog.h"

#define LOGDB_HARNESS_TMP "/tmp/test_logdb_rollup.XXXXXX"
#include "logdb_harness.h"

#define HOUR_MS 3600000ull

static const char *const lists[] = {NULL, "xiaomi", "huawei"};

/* Row i of a deterministic mix: 7 clients, 50 names (or one per row), a third blocked by one of two lists (or
 * by no list, a default deny), age_ms before NOW_MS. */
static void
add_mixed(struct logdb *db, int i, uint64_t age_ms, const char *name_prefix)
{
	char client[32], name[64], device[16];
	struct querylog_record r;
	int b = i % 3 == 0;
	struct rec x = {
	        .age_ms = age_ms,
	        .client = client,
	        .qname = name,
	        .group = i % 2 ? "kids" : "staff",
	        .list = b ? lists[i % 9 / 3] : NULL,
	        .device = i % 7 == 1 ? NULL : device,
	        .blocked = b,
	        .action = b ? QUERYLOG_ACTION_NXDOMAIN : QUERYLOG_ACTION_FORWARD,
	};

	snprintf(client, sizeof(client), "10.0.0.%d", i % 7);
	/* "u..." prefixes: a new name per row, else one of 50 */
	snprintf(name, sizeof(name), "%s%d.example", name_prefix,
	         name_prefix[0] == 'u' ? i : i * 7 % 50);
	snprintf(device, sizeof(device), "dev-%d", i % 7);
	make_record(&r, &x);
	assert_int_equal(logdb_add(db, &r), 0);
}

static int64_t
sql_exec_count(const char *path, const char *sql)
{
	int64_t n = sql_int(path, sql);
	if (n != 0)
		fprintf(stderr, "%s: %lld\n", sql, (long long)n);
	return n;
}

#define HOUR_SQL "(CASE WHEN ts_ms >= 0 THEN ts_ms / 3600000 * 3600000 ELSE 0 END)"

/* The rollups equal GROUP BY over the rows, both ways round. */
static void
check_rollups(const char *path)
{
	static const char *const sqls[] = {
	        "SELECT count(*) FROM (SELECT hour, source, list, action, blocked, n FROM"
	        " rollup_sources EXCEPT SELECT " HOUR_SQL ", source, coalesce(list, 0),"
	        " coalesce(action, 0), blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5)",
	        "SELECT count(*) FROM (SELECT " HOUR_SQL ", source, coalesce(list, 0),"
	        " coalesce(action, 0), blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5"
	        " EXCEPT SELECT hour, source, list, action, blocked, n FROM rollup_sources)",
	        /* rollup_names may keep hours before the first kept one until the pass over the
	         * names; readers ignore them */
	        "SELECT count(*) FROM (SELECT name, hour, list, action, blocked, n FROM"
	        " rollup_names WHERE hour >= (SELECT coalesce(min(hour), 0) FROM rollup_hours)"
	        " EXCEPT SELECT coalesce(name, 0), " HOUR_SQL ", coalesce(list, 0),"
	        " coalesce(action, 0), blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5)",
	        "SELECT count(*) FROM (SELECT coalesce(name, 0), " HOUR_SQL ", coalesce(list, 0),"
	        " coalesce(action, 0), blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5"
	        " EXCEPT SELECT name, hour, list, action, blocked, n FROM rollup_names)",
	        "SELECT count(*) FROM (SELECT hour, first_id, last_id FROM rollup_hours EXCEPT"
	        " SELECT " HOUR_SQL ", min(id), max(id) FROM queries GROUP BY 1)",
	        "SELECT count(*) FROM (SELECT " HOUR_SQL ", min(id), max(id) FROM queries"
	        " GROUP BY 1 EXCEPT SELECT hour, first_id, last_id FROM rollup_hours)",
	};

	for (size_t i = 0; i < sizeof(sqls) / sizeof(sqls[0]); i++)
		assert_int_equal(sql_exec_count(path, sqls[i]), 0);
}

static void
test_batch(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "batch.db");
	struct logdb *db = open_db(path, 0, 0);
	/* 1000 rows: three multi-row INSERTs and a tail of single rows */
	for (int i = 0; i < 1000; i++)
		add_mixed(db, i, 60000, "n");
	assert_int_equal(logdb_commit(db), 0);
	check_rollups(path);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_sources"), 1000);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_names"), 1000);
	/* a second transaction adds to the same keys */
	for (int i = 0; i < 300; i++)
		add_mixed(db, i, 30000, "n");
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
	check_rollups(path);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_names"), 1300);
	/* more than a map holds in one transaction: upserted early, in the same transaction */
	db = open_db(path, 0, 0);
	for (int i = 0; i < LOGDB_ROLLUP_NAMES_MAX + 500; i++)
		add_mixed(db, i, 1000, i % 2 ? "u-many-" : "n");
	logdb_free(&db);
	check_rollups(path);
}

static void
test_hour_boundary(void **state)
{
	char path[300];
	/* NOW_MS is 03:58:22 */
	uint64_t into_hour = NOW_MS % HOUR_MS;

	(void)state;
	tmp_path(path, sizeof(path), "hours.db");
	struct logdb *db = open_db(path, 0, 0);
	/* one transaction over three hours, then one on the boundary */
	for (int i = 0; i < 600; i++)
		add_mixed(db, i, into_hour + 2 * HOUR_MS - (uint64_t)i * 12000, "h");
	assert_int_equal(logdb_commit(db), 0);
	add_mixed(db, 1, into_hour, "h");     /* the first ms of this hour */
	add_mixed(db, 2, into_hour + 1, "h"); /* the last of the previous one */
	logdb_free(&db);
	check_rollups(path);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM rollup_hours"), 3);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_sources"), 602);
	assert_int_equal(sql_int(path, "SELECT last_id FROM rollup_hours ORDER BY hour DESC"), 601);
}

/* A writer killed in the middle of a transaction whose rows and some of whose rollups (a map
 * filled up) were already written into it: after recovery, neither is there. */
static void
test_crash_mid_transaction(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "crash.db");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct logdb *db = open_db(path, 0, 0);
		for (int i = 0; i < 1000; i++)
			add_mixed(db, i, 60000, "c");
		if (logdb_commit(db) != 0)
			_exit(2);
		for (int i = 0; i < LOGDB_ROLLUP_NAMES_MAX + 5000; i++)
			add_mixed(db, i, 1000, i % 2 ? "u-lost-" : "c");
		_exit(0); /* no commit, no close: a crash */
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	struct logdb *db = open_db(path, 0, 0); /* recovery */
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 1000);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_sources"), 1000);
	check_rollups(path);
}

static void
test_retention(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "retention.db");
	struct logdb *db = open_db(path, 1, 0);
	/* 3 days back to now, one row every 20 minutes, "old-" names only in the first day */
	for (int i = 0; i < 216; i++) {
		uint64_t age = (uint64_t)(215 - i) * 20 * 60000;
		add_mixed(db, i, age, age > 2 * DAY_MS ? "old-" : "n");
	}
	assert_int_equal(logdb_commit(db), 0);
	check_rollups(path);
	/* retention steps, then the pass over the dictionaries */
	for (int i = 0; i < 200; i++)
		logdb_tick(db, BASE_MONO + (uint64_t)i * 70000, NOW_MS);
	logdb_free(&db);
	/* whole hours are kept: everything from the start of the hour a day ago */
	uint64_t cutoff = (NOW_MS - DAY_MS) / HOUR_MS * HOUR_MS;
	char sql[160];
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM queries WHERE ts_ms < %llu",
	         (unsigned long long)cutoff);
	assert_int_equal(sql_int(path, sql), 0);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM queries WHERE ts_ms >= %llu",
	         (unsigned long long)cutoff);
	assert_true(sql_int(path, sql) == sql_int(path, "SELECT count(*) FROM queries"));
	assert_true(sql_int(path, "SELECT count(*) FROM queries") >= 72);
	check_rollups(path);
	snprintf(sql, sizeof(sql), "SELECT count(*) FROM rollup_names WHERE hour < %llu",
	         (unsigned long long)cutoff);
	assert_int_equal(sql_int(path, sql), 0);
	/* the names only old rows had are gone, with their rollups */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM names WHERE qname LIKE 'old-%'"), 0);
}

/* A schema-3 file: the rows of schema 4 with indexes by source and name and no rollups. */
static void
make_schema_3(const char *path)
{
	sqlite3 *s = NULL;

	struct logdb *db = open_db(path, 0, 0);
	for (int i = 0; i < 2000; i++)
		add_mixed(db, i, (uint64_t)(2000 - i) * 9000, "m");
	logdb_free(&db);
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(sqlite3_exec(s,
	                              "BEGIN; DROP TABLE rollup_sources; DROP TABLE rollup_names;"
	                              " DROP TABLE rollup_hours;"
	                              " CREATE INDEX queries_source ON queries(source);"
	                              " CREATE INDEX queries_name ON queries(name);"
	                              " PRAGMA user_version = 3; COMMIT",
	                              NULL, NULL, NULL),
	                 SQLITE_OK);
	sqlite3_close(s);
}

static void
test_migrate_3(void **state)
{
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "v3.db");
	make_schema_3(path);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
	                               " ('rollup_sources', 'rollup_names', 'rollup_hours')"),
	                 0);
	struct logdb *db = open_db(path, 0, 0);
	assert_true(logdb_is_open(db));
	add_mixed(db, 5, 0, "m"); /* and the log goes on */
	logdb_free(&db);
	assert_int_equal(sql_int(path, "PRAGMA user_version"), LOGDB_SCHEMA_VERSION);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name IN"
	                               " ('queries_source', 'queries_name')"),
	                 0);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_sources"), 2001);
	check_rollups(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_batch),
	        cmocka_unit_test(test_hour_boundary),
	        cmocka_unit_test(test_crash_mid_transaction),
	        cmocka_unit_test(test_retention),
	        cmocka_unit_test(test_migrate_3),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
