/*
 * logdb_harness: what the query-store tests share (test_logdb.c, test_logdb_store.c): a
 * temporary directory per test program and fresh database paths in it, a record's query name,
 * opening a writer, and reading one integer through an independent connection.
 *
 * Header-only; define LOGDB_HARNESS_TMP (the mkdtemp template of the directory, e.g.
 * "/tmp/test_logdb.XXXXXX") and include it after <cmocka.h>.
 */
#ifndef VETO_TEST_LOGDB_HARNESS_H
#define VETO_TEST_LOGDB_HARNESS_H

#ifndef LOGDB_HARNESS_TMP
#error "define LOGDB_HARNESS_TMP before including logdb_harness.h"
#endif

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logdb.h"
#include "querylog.h"

#define DAY_MS    86400000ull
#define NOW_MS    1795319902123ull /* 2026-11-22T03:58:22.123Z */
#define BASE_MONO 1000000ull

static char tmpdir[256];

/* The group setup and teardown: the directory of every path below. */
static inline int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s", LOGDB_HARNESS_TMP);
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static inline int
teardown_dir(void **state)
{
	char cmd[700];

	(void)state;
	snprintf(cmd, sizeof(cmd), "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", tmpdir, tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name, without a database, WAL or shared-memory file left by an earlier test. */
static inline void
tmp_path(char *buf, size_t cap, const char *name)
{
	char side[600];

	snprintf(buf, cap, "%s/%s", tmpdir, name);
	unlink(buf);
	snprintf(side, sizeof(side), "%s-wal", buf);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", buf);
	unlink(side);
}

/* r's question name in wire form, from a dotted name; "" for a query without a question. */
static inline void
set_qname(struct querylog_record *r, const char *text)
{
	struct names_name n;
	const char *why;

	if (text[0] == '\0') {
		r->qname_len = 0;
		return;
	}
	assert_int_equal(names_from_text(&n, text, strlen(text), &why), 0);
	querylog_record_set_name(r, &n);
}

static inline struct logdb *
open_db(const char *path, uint32_t retention, uint32_t max_pages)
{
	struct logdb_options opt = {
	        .path = path, .retention_days = retention, .max_pages = max_pages};
	struct logdb *db = NULL;

	assert_int_equal(logdb_new(&opt, &db), 0);
	assert_non_null(db);
	return db;
}

/* One integer (a count, a pragma) through an independent read-only connection: what another
 * process sees. -1 when sql returns no row. */
static inline int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

#endif
