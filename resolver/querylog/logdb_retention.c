/*
 * logdb_retention: log.retention_days for the query store's writer: the oldest queries and
 * device events deleted a step at a time, the rollups of the hours no row is left in, then a
 * pass over the dictionaries for the sources and names nothing refers to any more.
 *
 * Rows are deleted up to the start of the hour of the cutoff (so a retained hour is whole and
 * its rollups count exactly its rows), and rollup_sources and rollup_hours up to the hour of
 * the oldest row left, in the transaction of the rows. rollup_names, keyed by name first, is
 * pruned by the pass over the names (stride by stride); until then readers ignore its hours
 * before the first one of rollup_hours.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>

#include "log.h"
#include "logdb_int.h"

#define DAY_MS            86400000ull
#define HOUR_MS           3600000
#define DICT_PRUNE_STRIDE 5000 /* ids looked at per step of the pass over the dictionaries */

/* One stride of the pass over the dictionaries: the sources and names in (?1, ?2] that no
 * rollup refers to (the rollups of a retained hour count every row of it). */
static const char *const dict_prune_sql[2] = {
        "DELETE FROM sources WHERE id > ?1 AND id <= ?2"
        " AND NOT EXISTS (SELECT 1 FROM rollup_sources WHERE source = sources.id)",
        "DELETE FROM names WHERE id > ?1 AND id <= ?2"
        " AND NOT EXISTS (SELECT 1 FROM rollup_names WHERE name = names.id)",
};

static const char prune_sql[] =
        /* the rows are in time order by id (no time index): look at the oldest ?2 only */
        "DELETE FROM queries WHERE id IN (SELECT id FROM"
        " (SELECT id, ts_ms FROM queries ORDER BY id LIMIT ?2) WHERE ts_ms < ?1)";

static const char prune_events_sql[] =
        "DELETE FROM device_events WHERE id IN"
        " (SELECT id FROM device_events WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)";

/* ?1: the hour of the oldest row left (or the cutoff when none is) */
static const char *const prune_rollups_sql[4] = {
        "DELETE FROM rollup_sources WHERE hour < ?1",
        "DELETE FROM rollup_hours WHERE hour < ?1",
        /* a day some of whose hours are gone stays until all are (readers use its hours) */
        "DELETE FROM rollup_days WHERE day < ?1 / 86400000 * 86400000",
        /* a stride of names (?1, ?2]: their hours before the first one kept */
        "DELETE FROM rollup_names WHERE name > ?1 AND name <= ?2 AND hour <"
        " (SELECT coalesce(min(hour), 9223372036854775807) FROM rollup_hours)",
};

static const char oldest_sql[] = "SELECT ts_ms FROM queries ORDER BY id LIMIT 1";

int
logdb_retention_prepare(struct logdb *db)
{
	int rc = sqlite3_prepare_v3(db->db, prune_sql, -1, SQLITE_PREPARE_PERSISTENT, &db->prune_q,
	                            NULL);

	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, prune_events_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->prune_ev, NULL);
	for (int k = 0; k < 2 && rc == SQLITE_OK; k++)
		rc = sqlite3_prepare_v3(db->db, dict_prune_sql[k], -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->dict_prune[k], NULL);
	for (int k = 0; k < 4 && rc == SQLITE_OK; k++)
		rc = sqlite3_prepare_v3(db->db, prune_rollups_sql[k], -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->prune_ru[k], NULL);
	return rc;
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* The rollups of the hours before the oldest row left (cutoff when no row is). */
static int
prune_rollups(struct logdb *db, sqlite3_int64 cutoff)
{
	int64_t oldest = 0;
	int rc = logdb_query_int(db->db, oldest_sql, &oldest);

	if (rc == SQLITE_ERROR) /* no row */
		oldest = cutoff;
	else if (rc != SQLITE_OK)
		return rc;
	sqlite3_int64 hour = oldest / HOUR_MS * HOUR_MS;
	if (hour > cutoff)
		hour = cutoff;
	rc = SQLITE_OK;
	for (int k = 0; k < 3 && rc == SQLITE_OK; k++) {
		sqlite3_bind_int64(db->prune_ru[k], 1, hour);
		rc = step_done(db->prune_ru[k]);
	}
	return rc;
}

int
logdb_prune(struct logdb *db, uint64_t wall_ms, uint64_t *deleted)
{
	uint64_t total = 0;
	int rc;

	if (db->db == NULL)
		return -EAGAIN;
	if (db->retention_days == 0) {
		*deleted = 0;
		return 0;
	}
	if (logdb_commit(db) != 0)
		return -EIO;
	uint64_t keep = (uint64_t)db->retention_days * DAY_MS;
	sqlite3_int64 cutoff = wall_ms > keep ? (sqlite3_int64)(wall_ms - keep) : 0;
	cutoff = cutoff / HOUR_MS * HOUR_MS; /* whole hours, as the rollups count them */
	sqlite3_stmt *sts[2] = {db->prune_q, db->prune_ev};
	rc = logdb_exec(db->db, "BEGIN");
	for (int i = 0; i < 2 && rc == SQLITE_OK; i++) {
		sqlite3_stmt *st = sts[i];
		sqlite3_bind_int64(st, 1, cutoff);
		sqlite3_bind_int(st, 2, LOGDB_PRUNE_ROWS);
		rc = step_done(st);
		if (rc == SQLITE_OK)
			total += (uint64_t)sqlite3_changes(db->db);
	}
	if (rc == SQLITE_OK)
		rc = prune_rollups(db, cutoff);
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "COMMIT");
	if (rc != SQLITE_OK) {
		char why[256];
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->db));
		logdb_exec(db->db, "ROLLBACK");
		logdb_fail(db, "retention", why);
		return -EIO;
	}
	*deleted = total;
	return 0;
}

/* The pass over the dictionaries after retention: DICT_PRUNE_STRIDE ids per step, sources
 * then names, deleting the entries no rollup refers to any more (a device that left, a name
 * nobody asked for in retention_days), and for names first their rollups of hours no longer
 * kept. The writer's memory of ids is cleared when anything was deleted: a remembered id must
 * exist. */
void
logdb_dict_prune_start(struct logdb *db)
{
	db->pruned = 0;
	db->dict_pass = 1;
	db->dict_cursor = 0;
	db->dict_end = -1; /* read at the first step */
}

void
logdb_dict_prune_step(struct logdb *db)
{
	static const char *const max_sql[2] = {"SELECT coalesce(max(id), 0) FROM sources",
	                                       "SELECT coalesce(max(id), 0) FROM names"};
	int k = db->dict_pass - 1;
	int rc;

	if (db->dict_end < 0) {
		rc = logdb_query_int(db->db, max_sql[k], &db->dict_end);
		if (rc != SQLITE_OK) {
			logdb_fail(db, "retention", sqlite3_errmsg(db->db));
			return;
		}
	}
	if (db->dict_cursor >= db->dict_end) {
		db->dict_pass = db->dict_pass == 1 ? 2 : 0;
		db->dict_cursor = 0;
		db->dict_end = -1;
		return;
	}
	int64_t hi = db->dict_cursor + DICT_PRUNE_STRIDE;
	rc = SQLITE_OK;
	if (k == 1) {
		sqlite3_stmt *ru = db->prune_ru[3];
		/* the first stride takes the rows without a name (0) too */
		sqlite3_bind_int64(ru, 1, db->dict_cursor > 0 ? db->dict_cursor : -1);
		sqlite3_bind_int64(ru, 2, hi);
		rc = step_done(ru);
	}
	sqlite3_stmt *st = db->dict_prune[k];
	sqlite3_bind_int64(st, 1, db->dict_cursor);
	sqlite3_bind_int64(st, 2, hi);
	if (rc == SQLITE_OK)
		rc = step_done(st);
	if (rc != SQLITE_OK) {
		logdb_fail(db, "retention", sqlite3_errmsg(db->db));
		return;
	}
	if (sqlite3_changes(db->db) > 0) {
		logdb_dict_clear(&db->dicts[k == 0 ? LOGDB_SOURCES : LOGDB_NAMES]);
		log_debug("query database: '%s': retention: %d %s deleted", db->path,
		          sqlite3_changes(db->db), k == 0 ? "sources" : "names");
	}
	db->dict_cursor = hi;
}
