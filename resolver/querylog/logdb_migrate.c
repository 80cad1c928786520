/*
 * logdb_migrate: converts a query database of schema 1 or 2 (one wide row of text per query)
 * to schema 4 in place, without stopping the log.
 *
 * logdb_migrate_begin renames the old table to queries_old (dropping its indexes, which only
 * slowed the conversion) and creates schema 4 beside it, in one transaction. Then each
 * logdb_migrate_step moves the newest LOGDB_MIGRATE_ROWS rows of queries_old through the
 * writer's own insert (logdb_insert_row: the dictionaries and rollups fill as for live rows),
 * keeping their ids, and deletes them from queries_old, in one transaction: a stop or a crash
 * between steps loses nothing, the next open continues. The first step runs before the first new
 * row, so new ids continue above every old one and id order stays time order. queries_old is
 * dropped once empty (its pages are reused by later rows; the file does not shrink).
 *
 * A schema-3 database (the same rows, with indexes by source and by name) becomes schema 4 in
 * one transaction at open (logdb_migrate_rollups): the hourly rollups are built from the rows
 * with one sorted GROUP BY per table (progress logged every 10 s), and the two indexes by
 * source and name dropped. A stop or a crash before its commit leaves schema 3 as it was; the next
 * open starts again.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logdb_int.h"

static const char *const old_indexes[] = {
        "queries_ts",     "queries_device", "queries_mac",
        "queries_client", "queries_rname",  "queries_blocked",
};

static const char select_sql[] =
        "SELECT " LOGDB_ROW_COLUMNS " FROM queries_old ORDER BY id DESC LIMIT ?1";

static const char delete_sql[] = "DELETE FROM queries_old WHERE id >= ?1";

int
logdb_migrate_begin(struct logdb *db, int64_t version)
{
	char sql[96];
	int rc = logdb_exec(db->db, "BEGIN IMMEDIATE");

	if (rc != SQLITE_OK)
		return rc;
	for (size_t i = 0; i < sizeof(old_indexes) / sizeof(old_indexes[0]) && rc == SQLITE_OK;
	     i++) {
		snprintf(sql, sizeof(sql), "DROP INDEX IF EXISTS %s", old_indexes[i]);
		rc = logdb_exec(db->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "ALTER TABLE queries RENAME TO queries_old");
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, logdb_schema_sql);
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LOGDB_SCHEMA_VERSION);
		rc = logdb_exec(db->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "COMMIT");
	if (rc != SQLITE_OK) {
		logdb_exec(db->db, "ROLLBACK");
		return rc;
	}
	log_info("query database: '%s': converting schema %lld to %d in the background, newest "
	         "queries first (veto log shows the older history as it arrives)",
	         db->path, (long long)version, LOGDB_SCHEMA_VERSION);
	return SQLITE_OK;
}

int
logdb_migrate_pending(struct logdb *db, bool *pending)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(db->db,
	                            "SELECT 1 FROM sqlite_master WHERE type = 'table'"
	                            " AND name = 'queries_old'",
	                            -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		*pending = rc == SQLITE_ROW;
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
	}
	sqlite3_finalize(st);
	return rc;
}

int
logdb_migrate_prepare(struct logdb *db)
{
	int rc = sqlite3_prepare_v3(db->db, select_sql, -1, SQLITE_PREPARE_PERSISTENT, &db->mig_sel,
	                            NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, delete_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->mig_del, NULL);
	return rc;
}

int
logdb_migrate_step(struct logdb *db, uint32_t rows)
{
	sqlite3_stmt *st = db->mig_sel;
	int64_t lowest = 0;
	uint64_t moved = 0;
	int rc;

	if (db->db == NULL || db->in_tx)
		return -EAGAIN;
	rc = logdb_exec(db->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		goto failed;
	sqlite3_bind_int(st, 1, (int)rows);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct logdb_row row;
		logdb_row_read(st, &row);
		rc = logdb_insert_row(db, &row);
		if (rc != SQLITE_OK)
			break;
		lowest = row.id;
		moved++;
	}
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		goto failed;
	if (moved > 0) {
		sqlite3_bind_int64(db->mig_del, 1, lowest);
		rc = sqlite3_step(db->mig_del);
		sqlite3_reset(db->mig_del);
		if (rc != SQLITE_DONE)
			goto failed;
	} else {
		rc = logdb_exec(db->db, "DROP TABLE queries_old");
		if (rc != SQLITE_OK)
			goto failed;
	}
	rc = logdb_rollup_flush(db); /* the moved rows' counts, in their transaction */
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "COMMIT");
	if (rc != SQLITE_OK)
		goto failed;
	db->migrated += moved;
	if (moved == 0) {
		db->migrating = false;
		sqlite3_finalize(db->mig_sel);
		sqlite3_finalize(db->mig_del);
		db->mig_sel = db->mig_del = NULL;
		log_info("query database: '%s': schema %d conversion done (%llu queries moved)",
		         db->path, LOGDB_SCHEMA_VERSION, (unsigned long long)db->migrated);
	}
	return 0;

failed:;
	char why[256];
	snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->db));
	logdb_exec(db->db, "ROLLBACK");
	logdb_fail(db, "converting the old schema", why);
	return -EIO;
}

/* ---- schema 3 -> 4 ---- */

#define PROGRESS_OPS 10000000 /* virtual machine steps between looks at the clock */
#define PROGRESS_S   10       /* seconds between progress lines */

#define HOUR_OF_TS "(CASE WHEN ts_ms >= 0 THEN ts_ms / 3600000 * 3600000 ELSE 0 END)"

/* Each rollup table in one sorted pass over the rows (the same sums as logdb_rollup.c's),
 * appended in key order into the empty tables; the index of the blocked names is built after
 * (a sort, rather than an insert at a random place per key). */
static const char *const build_sql[] = {
        "DROP INDEX IF EXISTS rollup_names_blocked",
        "INSERT INTO rollup_hours (hour, first_id, last_id, total, blocked)"
        " SELECT " HOUR_OF_TS ", min(id), max(id), count(*), sum(blocked) FROM queries"
        " GROUP BY 1 ORDER BY 1",
        "INSERT INTO rollup_sources (hour, source, list, action, blocked, n)"
        " SELECT " HOUR_OF_TS ", source, coalesce(list, 0), coalesce(action, 0), blocked,"
        " count(*) FROM queries GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
        "INSERT INTO rollup_days (day, source, list, action, blocked, n)"
        " SELECT hour / 86400000 * 86400000, source, list, action, blocked, sum(n)"
        " FROM rollup_sources GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
        "INSERT INTO rollup_names (name, hour, list, action, blocked, n)"
        " SELECT coalesce(name, 0), " HOUR_OF_TS ", coalesce(list, 0), coalesce(action, 0),"
        " blocked, count(*) FROM queries GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5",
        NULL, /* logdb_schema_sql: the index again */
};

struct progress {
	struct logdb *db;
	const char *step;
	time_t start, last;
};

/* SQLite's progress callback: a line every PROGRESS_S seconds of a long step. */
static int
on_progress(void *arg)
{
	struct progress *p = arg;
	time_t now = time(NULL);

	if (now - p->last >= PROGRESS_S) {
		p->last = now;
		log_info("query database: '%s': converting to schema %d: %s (%lld s so far)",
		         p->db->path, LOGDB_SCHEMA_VERSION, p->step, (long long)(now - p->start));
	}
	return 0;
}

static int
build_rollups(struct logdb *db)
{
	static const char *const steps[] = {
	        "",
	        "rollup_hours",
	        "rollup_sources",
	        "rollup_days",
	        "rollup_names",
	        "the index of blocked names",
	};
	struct progress p = {.db = db, .start = time(NULL)};
	int64_t rows = 0;
	int rc = logdb_query_int(db->db, "SELECT count(*) FROM queries", &rows);

	if (rc == SQLITE_OK)
		log_info("query database: '%s': converting schema 3 to %d: hourly rollups of %lld "
		         "queries (the log waits; one sorted pass over them per table)",
		         db->path, LOGDB_SCHEMA_VERSION, (long long)rows);
	p.last = p.start;
	sqlite3_progress_handler(db->db, PROGRESS_OPS, on_progress, &p);
	for (size_t i = 0; i < sizeof(build_sql) / sizeof(build_sql[0]) && rc == SQLITE_OK; i++) {
		p.step = steps[i];
		rc = logdb_exec(db->db, build_sql[i] != NULL ? build_sql[i] : logdb_schema_sql);
	}
	sqlite3_progress_handler(db->db, 0, NULL, NULL);
	if (rc == SQLITE_OK)
		log_info("query database: '%s': rollups built in %lld s", db->path,
		         (long long)(time(NULL) - p.start));
	return rc;
}

int
logdb_migrate_rollups(struct logdb *db)
{
	char sql[64];
	int rc = logdb_exec(db->db, "BEGIN IMMEDIATE");

	if (rc != SQLITE_OK)
		return rc;
	rc = logdb_exec(db->db, logdb_schema_sql);
	if (rc == SQLITE_OK)
		rc = build_rollups(db);
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "DROP INDEX IF EXISTS queries_source;"
		                        "DROP INDEX IF EXISTS queries_name");
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LOGDB_SCHEMA_VERSION);
		rc = logdb_exec(db->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "COMMIT");
	if (rc != SQLITE_OK) {
		logdb_exec(db->db, "ROLLBACK");
		return rc;
	}
	log_info("query database: '%s': schema %d: rollups built, indexes by source and name "
	         "dropped",
	         db->path, LOGDB_SCHEMA_VERSION);
	return SQLITE_OK;
}
