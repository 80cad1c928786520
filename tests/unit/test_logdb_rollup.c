/*
 * test_logdb_rollup: the query store's hourly rollups (schema 4, logdb_rollup.c): they equal a
 * GROUP BY over the rows after a batch, across an hour boundary, after a crash in the middle of
 * a transaction (rows and rollups roll back together), after retention; a schema-3 file is
 * converted; and the reader's filters that use the rollups return what a plain scan returns.
 * The rollups' upserts keep their statement journals in memory (no temporary files).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
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

/* Row i of a deterministic mix: 7 clients, 50 names (or one per row), a third blocked by one of two
 * lists (or by no list, a default deny), age_ms before NOW_MS. */
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
#define DAY_SQL  "(CASE WHEN ts_ms >= 0 THEN ts_ms / 86400000 * 86400000 ELSE 0 END)"

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
	        "SELECT count(*) FROM (SELECT hour, first_id, last_id, total, blocked FROM"
	        " rollup_hours EXCEPT SELECT " HOUR_SQL ", min(id), max(id), count(*),"
	        " sum(blocked) FROM queries GROUP BY 1)",
	        "SELECT count(*) FROM (SELECT " HOUR_SQL
	        ", min(id), max(id), count(*), sum(blocked)"
	        " FROM queries GROUP BY 1 EXCEPT SELECT hour, first_id, last_id, total, blocked"
	        " FROM rollup_hours)",
	        /* the days from the first whole one kept (readers take the hours of the others) */
	        "SELECT count(*) FROM (SELECT day, source, list, action, blocked, n FROM "
	        "rollup_days"
	        " WHERE day >= (SELECT coalesce(min(hour), 0) FROM rollup_hours) EXCEPT "
	        "SELECT " DAY_SQL
	        ", source, coalesce(list, 0), coalesce(action, 0), blocked, count(*)"
	        " FROM queries GROUP BY 1, 2, 3, 4, 5)",
	        "SELECT count(*) FROM (SELECT " DAY_SQL ", source, coalesce(list, 0),"
	        " coalesce(action, 0), blocked, count(*) FROM queries WHERE " DAY_SQL " >= (SELECT"
	        " coalesce(min(hour), 0) FROM rollup_hours) GROUP BY 1, 2, 3, 4, 5 EXCEPT SELECT"
	        " day, source, list, action, blocked, n FROM rollup_days)",
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
	                              " DROP TABLE rollup_hours; DROP TABLE rollup_days;"
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
	                               " ('rollup_sources', 'rollup_names', 'rollup_hours',"
	                               " 'rollup_days')"),
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

/* ---- the readers: rollups and rows give what a plain scan gives ---- */

/* A database of 3000 mixed rows over five hours (6 s apart), and a rare device asking for a
 * rare name in two of those hours. */
static void
make_reader_db(const char *path)
{
	struct logdb *db = open_db(path, 0, 0);
	struct querylog_record r;

	for (int i = 0; i < 3000; i++) {
		add_mixed(db, i, (uint64_t)(3000 - i) * 6000, "n");
		if (i == 400 || i == 410 || i == 2500) {
			struct rec x = {.age_ms = (uint64_t)(3000 - i) * 6000,
			                .client = "10.9.9.9",
			                .qname = "rare.example",
			                .device = "rare-dev",
			                .blocked = i == 2500,
			                .list = i == 2500 ? "xiaomi" : NULL};
			make_record(&r, &x);
			assert_int_equal(logdb_add(db, &r), 0);
		}
	}
	logdb_free(&db);
}

struct lines {
	char *v[4096];
	size_t n;
};

static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void
lines_add(struct lines *l, const char *text)
{
	assert_true(l->n < sizeof(l->v) / sizeof(l->v[0]));
	l->v[l->n] = strdup(text);
	assert_non_null(l->v[l->n]);
	l->n++;
}

static void
lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

/* a and b hold the same lines (in the same order unless sorted), then are emptied */
static void
lines_equal(struct lines *a, struct lines *b, const char *what, bool sort)
{
	if (sort) {
		qsort(a->v, a->n, sizeof(a->v[0]), cmp_str);
		qsort(b->v, b->n, sizeof(b->v[0]), cmp_str);
	}
	for (size_t i = 0; i < a->n || i < b->n; i++) {
		const char *x = i < a->n ? a->v[i] : "(none)", *y = i < b->n ? b->v[i] : "(none)";
		if (strcmp(x, y) != 0)
			fail_msg("%s: line %zu: got '%s', a plain scan gives '%s'", what, i, x, y);
	}
	lines_free(a);
	lines_free(b);
}

/* The lines of a query's rows: its columns joined by ' '. */
static void
sql_lines(const char *path, const char *sql, struct lines *out)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	char line[512];

	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	if (sqlite3_prepare_v2(s, sql, -1, &st, NULL) != SQLITE_OK)
		fail_msg("%s: %s", sql, sqlite3_errmsg(s));
	while (sqlite3_step(st) == SQLITE_ROW) {
		size_t o = 0;
		for (int c = 0; c < sqlite3_column_count(st); c++) {
			const char *t = (const char *)sqlite3_column_text(st, c);
			o += (size_t)snprintf(line + o, sizeof(line) - o, "%s%s", c > 0 ? " " : "",
			                      t != NULL ? t : "-");
		}
		lines_add(out, line);
	}
	sqlite3_finalize(st);
	sqlite3_close(s);
}

static int
on_summary(void *arg, const struct logdb_summary_row *row)
{
	struct lines *l = arg;
	char line[512];
	const char *label = row->label != NULL ? row->label : "-";

	switch (row->section) {
	case LOGDB_SUMMARY_TOTAL:
		snprintf(line, sizeof(line), "T%llu %llu %llu", (unsigned long long)row->total,
		         (unsigned long long)row->blocked, (unsigned long long)row->denied);
		break;
	case LOGDB_SUMMARY_GROUP:
		snprintf(line, sizeof(line), "G%s %llu %llu", label, (unsigned long long)row->total,
		         (unsigned long long)row->blocked);
		break;
	case LOGDB_SUMMARY_LIST:
		snprintf(line, sizeof(line), "L%s %llu %llu", label, (unsigned long long)row->total,
		         (unsigned long long)row->blocked);
		break;
	case LOGDB_SUMMARY_TOP_BLOCKED:
		snprintf(line, sizeof(line), "N%s %llu %llu", label, (unsigned long long)row->total,
		         (unsigned long long)row->blocked);
		break;
	case LOGDB_SUMMARY_HOUR:
		snprintf(line, sizeof(line), "H%llu %llu %llu", (unsigned long long)row->ts_ms,
		         (unsigned long long)row->total, (unsigned long long)row->blocked);
		break;
	default:
		return 0; /* top clients: keyed by device, checked elsewhere */
	}
	lines_add(l, line);
	return 0;
}

static int
on_row(void *arg, const struct logdb_row *row)
{
	char line[32];

	snprintf(line, sizeof(line), "%lld", (long long)row->id);
	lines_add(arg, line);
	return 0;
}

struct reader_case {
	const char *name;
	uint64_t since_ago, until_ago; /* ms before NOW_MS, 0: unbounded */
	const char *device, *list, *domain, *group;
	int blocked;
	const char *where; /* the same filter on query_log */
};

static void
test_readers_match_scan(void **state)
{
	/* NOW_MS is 03:58:22.123: 2.5 h ago is inside an hour */
	static const struct reader_case cases[] = {
	        {"all", 0, 0, NULL, NULL, NULL, NULL, -1, "1"},
	        {"since", 9000000, 0, NULL, NULL, NULL, NULL, -1, "ts_ms >= %S"},
	        {"since-until", 15000000, 4000000, NULL, NULL, NULL, NULL, -1,
	         "ts_ms >= %S AND ts_ms < %U"},
	        {"device", 0, 0, "dev-3", NULL, NULL, NULL, -1, "device = 'dev-3'"},
	        {"rare-device", 9000000, 0, "rare-dev", NULL, NULL, NULL, -1,
	         "device = 'rare-dev' AND ts_ms >= %S"},
	        {"list", 0, 0, NULL, "xiaomi", NULL, NULL, -1, "list = 'xiaomi'"},
	        {"blocked", 15000000, 0, NULL, NULL, NULL, NULL, 1, "blocked = 1 AND ts_ms >= %S"},
	        {"domain", 0, 0, NULL, NULL, "n7.example", NULL, -1, "qname = 'n7.example'"},
	        {"rare-domain", 0, 0, NULL, NULL, "example", NULL, -1, "rname LIKE 'example.%'"},
	        {"rare-name", 0, 0, NULL, NULL, "rare.example", NULL, -1, "qname = 'rare.example'"},
	        {"group-since", 9000000, 0, NULL, NULL, NULL, "kids", -1,
	         "group_name = 'kids' AND ts_ms >= %S"},
	};
	char path[300], where[256], sql[2048];
	struct lines got = {0}, want = {0};

	(void)state;
	tmp_path(path, sizeof(path), "readers.db");
	make_reader_db(path);
	struct logdb_reader *r = NULL;
	assert_int_equal(logdb_reader_open(path, &r), 0);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct reader_case *c = &cases[i];
		struct logdb_filter f;
		logdb_filter_init(&f);
		f.since_ms = c->since_ago > 0 ? NOW_MS - c->since_ago : 0;
		f.until_ms = c->until_ago > 0 ? NOW_MS - c->until_ago : 0;
		f.device.v[0] = c->device;
		f.list.v[0] = c->list;
		f.domain.v[0] = c->domain;
		f.group.v[0] = c->group;
		f.blocked = c->blocked;
		/* %S and %U: the bounds */
		size_t o = 0;
		for (const char *p = c->where; *p != '\0'; p++) {
			if (p[0] == '%' && (p[1] == 'S' || p[1] == 'U')) {
				o += (size_t)snprintf(where + o, sizeof(where) - o, "%llu",
				                      (unsigned long long)(p[1] == 'S'
				                                                   ? f.since_ms
				                                                   : f.until_ms));
				p++;
			} else {
				where[o++] = *p;
			}
		}
		where[o] = '\0';

		/* veto log: every matching row, newest first; the 5 newest; the 5 oldest; the 5
		 * newest in time order (veto report device) */
		assert_int_equal(logdb_query_rows(r, &f, on_row, &got), 0);
		snprintf(sql, sizeof(sql), "SELECT id FROM query_log WHERE %s ORDER BY id DESC",
		         where);
		sql_lines(path, sql, &want);
		assert_true(want.n > 0);
		lines_equal(&got, &want, c->name, false);
		f.limit = 5;
		assert_int_equal(logdb_query_rows(r, &f, on_row, &got), 0);
		snprintf(sql, sizeof(sql),
		         "SELECT id FROM query_log WHERE %s ORDER BY id DESC LIMIT 5", where);
		sql_lines(path, sql, &want);
		lines_equal(&got, &want, c->name, false);
		f.oldest_first = true;
		assert_int_equal(logdb_query_rows(r, &f, on_row, &got), 0);
		snprintf(sql, sizeof(sql), "SELECT id FROM query_log WHERE %s ORDER BY id LIMIT 5",
		         where);
		sql_lines(path, sql, &want);
		lines_equal(&got, &want, c->name, false);
		f.oldest_first = false;
		f.chronological = true;
		assert_int_equal(logdb_query_rows(r, &f, on_row, &got), 0);
		snprintf(sql, sizeof(sql),
		         "SELECT id FROM (SELECT id FROM query_log WHERE %s ORDER BY id DESC"
		         " LIMIT 5) ORDER BY id",
		         where);
		sql_lines(path, sql, &want);
		lines_equal(&got, &want, c->name, false);
		f.chronological = false;
		f.limit = 0;

		/* veto report summary, every top name */
		assert_int_equal(logdb_report_summary(r, &f, 1000, on_summary, &got), 0);
		snprintf(sql, sizeof(sql),
		         "SELECT 'T' || count(*), sum(blocked), sum(blocked = 1 AND list IS NULL)"
		         " FROM query_log WHERE %s",
		         where);
		sql_lines(path, sql, &want);
		snprintf(sql, sizeof(sql),
		         "SELECT 'H' || (ts_ms / 3600000 * 3600000), count(*), sum(blocked)"
		         " FROM query_log WHERE %s GROUP BY 1",
		         where);
		sql_lines(path, sql, &want);
		snprintf(sql, sizeof(sql),
		         "SELECT 'G' || coalesce(group_name, '-'), count(*), sum(blocked)"
		         " FROM query_log WHERE %s GROUP BY 1",
		         where);
		sql_lines(path, sql, &want);
		snprintf(sql, sizeof(sql),
		         "SELECT 'L' || list, count(*), sum(blocked) FROM query_log"
		         " WHERE %s AND list IS NOT NULL GROUP BY 1",
		         where);
		sql_lines(path, sql, &want);
		snprintf(sql, sizeof(sql),
		         "SELECT 'N' || qname, count(*), (SELECT count(*) FROM query_log b"
		         " WHERE (%s) AND b.qname = a.qname AND blocked = 1 AND list IS NOT NULL)"
		         " FROM query_log a WHERE %s AND qname IN (SELECT qname FROM query_log"
		         " WHERE (%s) AND blocked = 1 AND list IS NOT NULL) GROUP BY qname",
		         where, where, where);
		sql_lines(path, sql, &want);
		lines_equal(&got, &want, c->name, true);
	}
	logdb_reader_free(&r);
}

/* SQLITE_TMPDIR for this process (set in main, before SQLite reads it at its initialisation):
 * where SQLite would create temporary files, watched by test_no_temp_files. */
static char sqlite_tmp[256];

/* The multi-row upserts of the rollups need statement journals; past 64 KiB SQLite spills one
 * to a temporary file (a pwrite per page: most of the writer's system time). Thousands of
 * existing rollup_names keys updated in one transaction, 64 scattered keys per statement: no
 * file may appear in SQLite's temporary directory. */
static void
test_no_temp_files(void **state)
{
	char path[300], ev[4096];
	int n = 20000;

	(void)state;
	tmp_path(path, sizeof(path), "tempfiles.db");
	struct logdb *db = open_db(path, 0, 0);
	for (int i = 0; i < n; i++)
		add_mixed(db, i, 60000, "u-temp-");
	assert_int_equal(logdb_commit(db), 0);
	int fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	assert_true(fd >= 0);
	assert_true(inotify_add_watch(fd, sqlite_tmp, IN_CREATE) >= 0);
	/* the same names again: every key exists, the upserts update pages all over the table */
	for (int i = 0; i < n; i++)
		add_mixed(db, i, 30000, "u-temp-");
	assert_int_equal(logdb_commit(db), 0);
	ssize_t got = read(fd, ev, sizeof(ev));
	if (got > 0) {
		const struct inotify_event *e = (const struct inotify_event *)ev;
		fail_msg("a temporary file was created in '%s': '%s'", sqlite_tmp,
		         e->len > 0 ? e->name : "?");
	}
	close(fd);
	logdb_free(&db);
	check_rollups(path);
	assert_int_equal(sql_int(path, "SELECT sum(n) FROM rollup_names"), 2 * n);
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
	        cmocka_unit_test(test_readers_match_scan),
	        cmocka_unit_test(test_no_temp_files),
	};

	snprintf(sqlite_tmp, sizeof(sqlite_tmp), "/tmp/test_logdb_rollup_tmp.XXXXXX");
	if (mkdtemp(sqlite_tmp) == NULL || setenv("SQLITE_TMPDIR", sqlite_tmp, 1) != 0)
		return 1;

	int rc = cmocka_run_group_tests(tests, setup_dir, teardown_dir);
	rmdir(sqlite_tmp);
	return rc;
}
