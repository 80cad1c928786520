/*
 * logdb_schema: what the writer (logdb.c, logdb_migrate.c) and the reader (logdb_query.c,
 * logdb_events.c) of the query store share, below both: the schema and its version, one row
 * of a query as text and how it is read from a statement, the reversed-name key, and two
 * small SQLite helpers. Neither side includes the other's header.
 */
#include "logdb_schema.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

/* IF NOT EXISTS throughout: logdb_migrate.c runs it on a schema-1/2 database whose queries
 * table it has renamed (device_events is the same in every schema). */
const char logdb_schema_sql[] =
        "CREATE TABLE IF NOT EXISTS sources ("
        " id INTEGER PRIMARY KEY,"
        " client TEXT, mac TEXT, device TEXT, group_name TEXT, vendor TEXT, vendor_source TEXT);"
        "CREATE INDEX IF NOT EXISTS sources_client ON sources(client);"
        "CREATE INDEX IF NOT EXISTS sources_mac ON sources(mac) WHERE mac IS NOT NULL;"
        "CREATE INDEX IF NOT EXISTS sources_device ON sources(device) WHERE device IS NOT NULL;"
        "CREATE TABLE IF NOT EXISTS names ("
        " id INTEGER PRIMARY KEY, qname TEXT NOT NULL, rname TEXT NOT NULL UNIQUE);"
        "CREATE TABLE IF NOT EXISTS texts (id INTEGER PRIMARY KEY, text TEXT NOT NULL UNIQUE);"
        "CREATE TABLE IF NOT EXISTS queries ("
        " id INTEGER PRIMARY KEY,"
        " ts_ms INTEGER NOT NULL,"
        " source INTEGER NOT NULL,"
        " name INTEGER,"
        " qtype INTEGER,"
        " proto INTEGER,"
        " blocked INTEGER NOT NULL,"
        " list INTEGER,"
        " rule INTEGER,"
        " action INTEGER,"
        " rcode INTEGER,"
        " upstream INTEGER,"
        " latency_us INTEGER NOT NULL);"
        /* rows are appended in time order, so the id orders them by time: no time index
         * (logdb_query.c finds a time's id by bisection). No index by source or name either
         * (schema 4): the hourly rollups below say which hours hold a source or a name */
        /* covering for `veto report attempts` (an index-only scan of the blocked rows) */
        "CREATE INDEX IF NOT EXISTS queries_blocked ON queries(ts_ms, source, name, list)"
        " WHERE blocked = 1;"
        /* the hourly rollups (logdb_rollup.c): written in the transaction of the rows they
         * count; hour is the first ms of the hour (UTC), 0 stands for a NULL list, action or
         * name */
        "CREATE TABLE IF NOT EXISTS rollup_hours ("
        " hour INTEGER PRIMARY KEY, first_id INTEGER NOT NULL, last_id INTEGER NOT NULL,"
        " total INTEGER NOT NULL, blocked INTEGER NOT NULL);"
        /* rollup_sources per day (UTC): what a summary of whole days reads */
        "CREATE TABLE IF NOT EXISTS rollup_days ("
        " day INTEGER NOT NULL, source INTEGER NOT NULL, list INTEGER NOT NULL,"
        " action INTEGER NOT NULL, blocked INTEGER NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (day, source, list, action, blocked)) WITHOUT ROWID;"
        "CREATE TABLE IF NOT EXISTS rollup_sources ("
        " hour INTEGER NOT NULL, source INTEGER NOT NULL, list INTEGER NOT NULL,"
        " action INTEGER NOT NULL, blocked INTEGER NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (hour, source, list, action, blocked)) WITHOUT ROWID;"
        "CREATE INDEX IF NOT EXISTS rollup_sources_source ON rollup_sources(source, hour);"
        "CREATE TABLE IF NOT EXISTS rollup_names ("
        " name INTEGER NOT NULL, hour INTEGER NOT NULL, list INTEGER NOT NULL,"
        " action INTEGER NOT NULL, blocked INTEGER NOT NULL, n INTEGER NOT NULL,"
        " PRIMARY KEY (name, hour, list, action, blocked)) WITHOUT ROWID;"
        /* the top blocked names of `veto report summary`: an index-only range of hours */
        "CREATE INDEX IF NOT EXISTS rollup_names_blocked ON rollup_names(hour, name, n)"
        " WHERE blocked = 1 AND list != 0;"
        "CREATE VIEW IF NOT EXISTS query_log AS SELECT"
        " q.id AS id, q.ts_ms AS ts_ms, s.client AS client, tp.text AS proto,"
        " s.group_name AS group_name, n.qname AS qname, n.rname AS rname, tq.text AS qtype,"
        " q.blocked AS blocked, tl.text AS list, tr.text AS rule, ta.text AS action,"
        " tc.text AS rcode, tu.text AS upstream, q.latency_us AS latency_us, s.mac AS mac,"
        " s.device AS device, s.vendor AS vendor, s.vendor_source AS vendor_source,"
        " q.source AS source_id, q.name AS name_id, q.list AS list_id, q.action AS action_id"
        " FROM queries q"
        " LEFT JOIN sources s ON s.id = q.source"
        " LEFT JOIN names n ON n.id = q.name"
        " LEFT JOIN texts tq ON tq.id = q.qtype"
        " LEFT JOIN texts tp ON tp.id = q.proto"
        " LEFT JOIN texts tl ON tl.id = q.list"
        " LEFT JOIN texts tr ON tr.id = q.rule"
        " LEFT JOIN texts ta ON ta.id = q.action"
        " LEFT JOIN texts tc ON tc.id = q.rcode"
        " LEFT JOIN texts tu ON tu.id = q.upstream;"
        "CREATE TABLE IF NOT EXISTS device_events ("
        " id INTEGER PRIMARY KEY,"
        " ts_ms INTEGER NOT NULL,"
        " device TEXT,"
        " mac TEXT,"
        " client TEXT,"
        " kind TEXT NOT NULL,"
        " old_group TEXT,"
        " new_group TEXT,"
        " evidence TEXT,"
        " vendor TEXT);"
        "CREATE INDEX IF NOT EXISTS device_events_ts ON device_events(ts_ms);"
        "CREATE INDEX IF NOT EXISTS device_events_device ON device_events(device, ts_ms);";

int
logdb_rname(const char *name, char *buf, size_t cap)
{
	size_t n = strlen(name);
	size_t o = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0) {
		if (cap < 2)
			return -ENOSPC;
		memcpy(buf, ".", 2);
		return 0;
	}
	if (cap < n + 2)
		return -ENOSPC;
	size_t end = n;
	for (;;) {
		size_t start = end;
		while (start > 0 && name[start - 1] != '.')
			start--;
		memcpy(buf + o, name + start, end - start);
		o += end - start;
		buf[o++] = '.';
		if (start == 0)
			break;
		end = start - 1;
	}
	buf[o] = '\0';
	return 0;
}

/* ---- SQLite helpers ---- */

int
logdb_query_int(sqlite3 *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_ERROR;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

int
logdb_has_event_vendor(sqlite3 *s, bool *has)
{
	int64_t n = 0;
	int rc = logdb_query_int(s,
	                         "SELECT count(*) FROM pragma_table_info('device_events')"
	                         " WHERE name = 'vendor'",
	                         &n);

	*has = rc == SQLITE_OK && n > 0;
	return rc;
}

/* ---- one row of text ---- */

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static uint64_t
col_u64(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);
	return v > 0 ? (uint64_t)v : 0;
}

void
logdb_row_read(sqlite3_stmt *st, struct logdb_row *row)
{
	row->id = sqlite3_column_int64(st, 0);
	row->ts_ms = col_u64(st, 1);
	row->client = col_text(st, 2);
	row->proto = col_text(st, 3);
	row->group = col_text(st, 4);
	row->qname = col_text(st, 5);
	row->qtype = col_text(st, 6);
	row->blocked = sqlite3_column_int(st, 7) != 0;
	row->list = col_text(st, 8);
	row->rule = col_text(st, 9);
	row->action = col_text(st, 10);
	row->rcode = col_text(st, 11);
	row->upstream = col_text(st, 12);
	sqlite3_int64 lat = sqlite3_column_int64(st, 13);
	row->latency_us = lat < 0 ? 0 : lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
	row->mac = col_text(st, 14);
	row->device = col_text(st, 15);
	row->vendor = col_text(st, 16);
	row->vendor_source = col_text(st, 17);
	row->instance = NULL;
}
