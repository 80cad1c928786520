/*
 * logdb_schema: the query store's schema, and what its writer (logdb.h) and its reader
 * (logdb_reader.h) share below both: one row of a query as text, how it is read from a
 * statement, the reversed-name key, and two SQLite helpers.
 *
 * Schema 4 (PRAGMA user_version = LOGDB_SCHEMA_VERSION): one narrow row per query whose
 * repeated strings are numbers into three dictionaries, so that a row costs a few bytes and
 * every index has small integer keys (measured: 2.8x less writer CPU per row and a 5x smaller
 * file than schema 2, which stored the strings in every row and indexed four text columns).
 *   queries(id INTEGER PRIMARY KEY, ts_ms, source, name, qtype, proto, blocked, list, rule,
 *           action, rcode, upstream, latency_us)
 *     ts_ms: ms since the epoch (UTC); source -> sources.id; name -> names.id (NULL when the
 *     query had no question); qtype, proto, list, rule, action, rcode, upstream -> texts.id
 *     (NULL when empty); blocked 0/1; latency_us.
 *   sources(id, client, mac, device, group_name, vendor, vendor_source): who asked, as known at
 *     the time of the query (NULL when unknown); one row per distinct combination.
 *   names(id, qname, rname UNIQUE): qname lowercase text without the trailing dot ("." for the
 *     root); rname its labels reversed, each followed by '.' ("com.miui.tracking."), so a name
 *     and its subdomains are one range of the rname index.
 *   texts(id, text UNIQUE): query types ("A"), protocols ("udp"), list names, rules, actions
 *     ("forward", "sinkhole"), rcodes ("NOERROR"), upstreams ("192.0.2.1:53"): vocabularies
 *     bounded by the configuration, never pruned.
 *   query_log: a view with the readable columns of every query (id, ts_ms, client, proto,
 *     group_name, qname, rname, qtype, blocked, list, rule, action, rcode, upstream,
 *     latency_us, mac, device, vendor, vendor_source) plus source_id, name_id, list_id,
 *     action_id: what `veto log` reads, and what an administrator can query with sqlite3.
 *   device_events(id INTEGER PRIMARY KEY, ts_ms, device, mac, client, kind, old_group,
 *                 new_group, evidence, vendor)
 *     Ids are 1, 2, 3... in insertion order, which is time order (the writer thread stores
 *     the records as the event loop made them), so a time range is an id range of the table
 *     itself: the reader finds the ids of its ends by bisection over the id (about 25
 *     lookups), with no time index to maintain per row; every index, ordered by (key, id), is
 *     ordered by time within a key. The ts_ms conditions stay in every query, so results are
 *     exact; only rows stored after the wall clock stepped back can fall outside a window they
 *     belong to.
 * Hourly rollups (schema 4), kept by the writer in the transaction of the rows they count
 * (logdb_rollup.c), so that rows and rollups never disagree; hour and day are the first ms of
 * the UTC hour or day, 0 stands for a NULL name, list or action:
 *   rollup_hours(hour PRIMARY KEY, first_id, last_id, total, blocked): the ids of each hour's
 *     first and last row, its rows and blocked rows.
 *   rollup_sources(hour, source, list, action, blocked, n), rollup_days(day, ...the same):
 *     rows per key (what `veto report summary` counts; a filter by device finds its hours
 *     through rollup_sources(source, hour)).
 *   rollup_names(name, hour, list, action, blocked, n): rows per name and hour (what a filter
 *     by domain finds its hours with, and the top blocked names through its partial index
 *     rollup_names_blocked(hour, name, n) WHERE blocked = 1 AND list != 0).
 *   Retention keeps whole hours: rows, rollup_hours and rollup_sources go hour by hour in one
 *     transaction, rollup_days once its day is gone; rollup_names keeps older hours until the
 *     pass over the names, so readers ignore its hours before min(rollup_hours.hour).
 * Indexes: the blocked rows by (ts_ms, source, name, list), covering what `veto report
 * attempts` reads; sources(client), (mac), (device); names(rname). There is no index of
 * queries by source or name (schema 3 had both: two thirds of a row's writer CPU): the reader
 * (logdb_query.c) restricts such a filter to the id ranges of the hours whose rollups hold a
 * match.
 * The writer keeps the ids of recent sources, names and texts in memory (logdb_dict.c), so a
 * row normally costs one INSERT. Retention deletes old queries, then the names and sources no
 * rollup refers to any more.
 * Schemas 1 and 2 (one wide row of text per query) are converted in place by the writer
 * (logdb_migrate.c): their table is renamed queries_old and moved into schema 4 newest rows
 * first, LOGDB_MIGRATE_ROWS per step between batches, keeping the ids; new queries are stored
 * meanwhile, and `veto log` sees the history come back from the newest end. Schema 3 (the
 * same rows, indexed by source and by name, no rollups) is converted at open in one
 * transaction (logdb_migrate_rollups). The reader reads schema 4 only.
 */
#ifndef VETO_LOGDB_SCHEMA_H
#define VETO_LOGDB_SCHEMA_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LOGDB_SCHEMA_VERSION 4 /* 1, 2 and 3: converted by the writer (logdb_migrate.c) */

/* The statements that create schema 4 (IF NOT EXISTS throughout). */
extern const char logdb_schema_sql[];

/* One row as read; strings are NULL for SQL NULL and valid during the callback only. */
struct logdb_row {
	int64_t id;
	uint64_t ts_ms;
	const char *client, *proto, *group, *qname, *qtype;
	bool blocked;
	const char *list, *rule, *action, *rcode, *upstream;
	uint32_t latency_us;
	const char *mac, *device, *vendor, *vendor_source;
	const char *instance; /* the shared store's instance that answered; NULL in SQLite */
};

/* The columns of a struct logdb_row, in the order logdb_row_read reads them: what the reader
 * selects from the view query_log, and the conversion from a schema-1/2 table. */
#define LOGDB_ROW_COLUMNS                                                                          \
	"id, ts_ms, client, proto, group_name, qname, qtype, blocked, list, rule, action, rcode, " \
	"upstream, latency_us, mac, device, vendor, vendor_source"

/* Fills row from the current row of st, whose first columns are LOGDB_ROW_COLUMNS. The strings
 * point into st: valid until its next step, reset or finalize. A negative ts_ms or latency_us
 * reads as 0, a latency_us above UINT32_MAX as UINT32_MAX. */
void logdb_row_read(sqlite3_stmt *st, struct logdb_row *row);

/* "com.miui.tracking." for "tracking.miui.com", "." for the root ("" or "."): the labels of a
 * dotted name (escapes kept as written) in reverse order, each followed by '.'. 0, or -ENOSPC
 * when cap is too small (buf is written only on success). */
int logdb_rname(const char *name, char *buf, size_t cap);

/* One integer from a query (PRAGMA user_version, counts): SQLITE_OK and *out, or an SQLite
 * error (SQLITE_ERROR when the query returned no row). Writer and reader. */
int logdb_query_int(sqlite3 *s, const char *sql, int64_t *out);
/* Whether device_events has its vendor column (files from before it lack it). SQLITE_OK or an
 * SQLite error (then *has is false). Writer and reader. */
int logdb_has_event_vendor(sqlite3 *s, bool *has);

#endif
