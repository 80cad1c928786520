/*
 * logdb_events: reading the device_events table of the query store (logdb_reader.h): first
 * sight of a device, vendor attribution, group changes, for `veto report device`. Events are
 * rare (a few per device), so one statement with optional conditions is enough; the table's
 * (device, ts_ms) and (ts_ms) indexes serve it.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "logdb_reader_int.h"
#include "pgread.h"

/* ?1 since, ?2 until (0 = unbounded), ?3 who when not a MAC (device or client), ?4 who as a
 * MAC, ?5 client, ?6 mac, ?7 device (NULL = any), ?8 limit (-1 = none). %s: the vendor column,
 * or NULL in a file that predates it. */
static const char events_sql[] =
        "SELECT id, ts_ms, device, mac, client, kind, old_group, new_group, evidence, vendor"
        " FROM (SELECT id, ts_ms, device, mac, client, kind, old_group, new_group, evidence,"
        " %s AS vendor FROM device_events"
        " WHERE (?1 = 0 OR ts_ms >= ?1) AND (?2 = 0 OR ts_ms < ?2)"
        " AND (?3 IS NULL OR device = ?3 OR client = ?3) AND (?4 IS NULL OR mac = ?4)"
        " AND (?5 IS NULL OR client = ?5) AND (?6 IS NULL OR mac = ?6)"
        " AND (?7 IS NULL OR device = ?7)"
        " ORDER BY id DESC LIMIT ?8)"
        " ORDER BY id";

static void
bind_opt(sqlite3_stmt *st, int i, const char *text)
{
	if (text != NULL)
		sqlite3_bind_text(st, i, text, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

int
logdb_query_events(struct logdb_reader *r, const struct logdb_filter *f, logdb_event_cb cb,
                   void *arg)
{
	char sql[sizeof(events_sql) + 16];
	char who_mac[18], mac[18];
	bool who_is_mac = false;
	sqlite3_stmt *st = NULL;
	int rc;

	if (r->pg != NULL)
		return pgread_events(r->pg, f, cb, arg);
	if (f->mac.v[0] != NULL && logdb_canonical_mac(f->mac.v[0], mac) != 0)
		return -EINVAL;
	if (f->who != NULL)
		who_is_mac = logdb_canonical_mac(f->who, who_mac) == 0;
	rc = logdb_snapshot_begin(r);
	if (rc != 0)
		return rc;
	bool vendor;
	if (logdb_has_event_vendor(r->db, &vendor) != SQLITE_OK) {
		rc = logdb_reader_error(r);
		logdb_snapshot_end(r);
		return rc;
	}
	snprintf(sql, sizeof(sql), events_sql, vendor ? "vendor" : "NULL");
	if (sqlite3_prepare_v2(r->db, sql, -1, &st, NULL) != SQLITE_OK) {
		rc = logdb_reader_error(r);
		logdb_snapshot_end(r);
		return rc;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)f->since_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)f->until_ms);
	bind_opt(st, 3, who_is_mac ? NULL : f->who);
	bind_opt(st, 4, who_is_mac ? who_mac : NULL);
	bind_opt(st, 5, f->client.v[0]);
	bind_opt(st, 6, f->mac.v[0] != NULL ? mac : NULL);
	bind_opt(st, 7, f->device.v[0]);
	sqlite3_bind_int64(st, 8, f->limit > 0 ? (sqlite3_int64)f->limit : -1);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		sqlite3_int64 ts = sqlite3_column_int64(st, 1);
		struct logdb_event_row ev = {
		        .id = sqlite3_column_int64(st, 0),
		        .ts_ms = ts > 0 ? (uint64_t)ts : 0,
		        .device = col_text(st, 2),
		        .mac = col_text(st, 3),
		        .client = col_text(st, 4),
		        .kind = col_text(st, 5),
		        .old_group = col_text(st, 6),
		        .new_group = col_text(st, 7),
		        .evidence = col_text(st, 8),
		        .vendor = col_text(st, 9),
		};
		int cr = cb(arg, &ev);
		if (cr != 0) {
			rc = cr;
			goto done;
		}
	}
	rc = logdb_step_error(r, rc);
done:
	sqlite3_finalize(st);
	logdb_snapshot_end(r);
	return rc;
}
