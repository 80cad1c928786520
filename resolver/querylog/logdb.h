/*
 * logdb: the SQLite query-log store (log.database): the writer side used by the querylog
 * writer thread (logdb.c) and the read side shared by `veto log` and `veto report`
 * (logdb_query.c: the reader and its rows; logdb_report.c: the reports; logdb_format.c: time
 * parsing and the commands' output helpers).
 *
 * Writer: rows are inserted with one prepared statement inside an open transaction that
 * logdb_tick() commits once it is LOGDB_COMMIT_MS old (logdb_add() commits by itself every
 * LOGDB_BATCH_ROWS rows, logdb_commit() at once). Large transactions matter: every index leaf a
 * transaction touches (one per device, client, MAC and name) is written to the WAL once per
 * commit, so the cost per row falls with the rows per commit (measured: 15k rows/s with 1000-row
 * transactions, 85k rows/s with 100000). WAL mode, synchronous=NORMAL.
 * Failures never reach the caller: a database that is locked, read-only, corrupt, full or
 * missing is reported once per burst (log.h), the rows of the failed batch and every row
 * offered while it stays broken are dropped and counted, and the connection is reopened with
 * backoff (LOGDB_RETRY_MIN_MS doubling to LOGDB_RETRY_MAX_MS) until writing works again; a
 * file that is not a database at all is renamed aside ("PATH.corrupt-SECONDS") and a new one
 * started. Retention deletes rows older than retention_days in batches of LOGDB_PRUNE_ROWS
 * from logdb_tick(), so one call never holds the writer long.
 *
 * Schema 3 (PRAGMA user_version = LOGDB_SCHEMA_VERSION): one narrow row per query whose
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
 * Indexes: queries(source); queries(name); the blocked rows by (ts_ms, source, name, list),
 * covering what `veto report attempts` reads; sources(client), (mac), (device); names(rname).
 * The writer keeps the ids of recent sources, names and texts in memory (logdb_dict.c), so a
 * row normally costs one INSERT. Retention deletes old queries, then the names and sources no
 * query refers to any more.
 * Schemas 1 and 2 (one wide row of text per query) are converted in place by the writer
 * (logdb_migrate.c): their table is renamed queries_old and moved into schema 3 newest rows
 * first, LOGDB_MIGRATE_ROWS per step between batches, keeping the ids; new queries are stored
 * meanwhile, and `veto log` sees the history come back from the newest end. The reader reads
 * schema 3 only.
 *
 * Reader: a read-only connection (URI mode=ro) that works while the daemon writes and on a
 * copied file. Filters become SQL with bound parameters only.
 *
 * Threads: a struct logdb belongs to one thread at a time (the querylog writer); a struct
 * logdb_reader to one thread.
 */
#ifndef VETO_LOGDB_H
#define VETO_LOGDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "querylog.h"

#define LOGDB_SCHEMA_VERSION 3 /* 1 and 2: converted by the writer (logdb_migrate.c) */
#define LOGDB_BATCH_ROWS     100000 /* rows per transaction at most */
#define LOGDB_COMMIT_MS      1000   /* a transaction is committed when this old */
#define LOGDB_PRUNE_ROWS     5000   /* rows deleted per retention step */
#define LOGDB_MIGRATE_ROWS   20000  /* schema 1/2 rows converted per step */
#define LOGDB_RETRY_MIN_MS   500
#define LOGDB_RETRY_MAX_MS   30000
#define LOGDB_BUSY_MS        200 /* busy timeout of the writer's connection */

/* ---- writer ---- */

struct logdb_options {
	const char *path;        /* copied */
	uint32_t retention_days; /* 0 = keep forever */
	uint32_t max_pages;      /* PRAGMA max_page_count; 0 = SQLite's default (tests) */
};

/* A device event (issue 4 fills these). NULL strings are stored as NULL. */
struct logdb_event {
	uint64_t ts_ms;
	const char *device, *mac, *client;
	const char *kind; /* "first_seen", "group_change", "vendor", ... */
	const char *old_group, *new_group, *vendor, *evidence;
};

struct logdb;

/* Creates the sink and tries to open the database at once (a failure is reported and retried
 * later, not returned). 0, or -ENOMEM. */
int logdb_new(const struct logdb_options *opt, struct logdb **out);

/* Commits what is pending, closes, frees, sets *db = NULL. */
void logdb_free(struct logdb **db);

/* Adds one row to the open transaction. 0, or -EIO when the row was dropped (counted). */
int logdb_add(struct logdb *db, const struct querylog_record *r);
int logdb_add_event(struct logdb *db, const struct logdb_event *ev);

/* Ends the open transaction. 0, or -EIO when its rows were dropped (counted). */
int logdb_commit(struct logdb *db);

/* Housekeeping, to call between batches (every 50 ms or so): commits the open transaction
 * when it is LOGDB_COMMIT_MS old, reopens a broken database when its backoff has passed, and
 * runs one retention step when one is due. mono_ms: a monotonic clock; wall_ms: ms since the
 * epoch. */
void logdb_tick(struct logdb *db, uint64_t mono_ms, uint64_t wall_ms);

/* Closes and reopens the database at the next logdb_tick (SIGHUP; clears the backoff). */
void logdb_reopen(struct logdb *db);

/* One retention step: deletes those of the oldest LOGDB_PRUNE_ROWS rows (by id, i.e. time
 * order) and at most LOGDB_PRUNE_ROWS device events that are older than wall_ms -
 * retention_days. Sets *deleted to the rows deleted. 0, -EAGAIN when the database is
 * not open, -EIO on failure (reported). */
int logdb_prune(struct logdb *db, uint64_t wall_ms, uint64_t *deleted);

/* Changes retention_days (0 = keep forever); a retention step runs at the next logdb_tick. */
void logdb_set_retention(struct logdb *db, uint32_t retention_days);

/* Changes the page limit of the open connection and of later ones (tests: a "full disk"). */
void logdb_set_max_pages(struct logdb *db, uint32_t max_pages);

bool logdb_is_open(const struct logdb *db);
uint64_t logdb_dropped(const struct logdb *db); /* rows dropped */
uint64_t logdb_written(const struct logdb *db); /* rows committed */

/* "com.miui.tracking." for "tracking.miui.com", "." for the root ("" or "."): the labels of a
 * dotted name (escapes kept as written) in reverse order, each followed by '.'. 0, or -ENOSPC
 * when cap is too small (buf is written only on success). */
int logdb_rname(const char *name, char *buf, size_t cap);

/* ---- reader (logdb_query.c) ---- */

struct logdb_reader;

/* Opens path read-only; a copy without its -wal in a folder this user cannot write is opened
 * immutable (SQLite could not make the -shm a WAL file needs). 0, -ENOENT (no such file),
 * -EINVAL (not a veto query database, an older schema that no daemon has converted yet, or a
 * newer one: a message says which), -ENOMEM, -EIO. Messages go to standard error (log.h). */
int logdb_reader_open(const char *path, struct logdb_reader **out);
void logdb_reader_free(struct logdb_reader **r);

/* Makes the calls between begin and end read one snapshot of the file (each call reads one
 * snapshot by itself): `veto report device` reads its queries and its events consistently
 * while the daemon writes. Nests. 0 or -EIO. */
int logdb_snapshot_begin(struct logdb_reader *r);
void logdb_snapshot_end(struct logdb_reader *r);

struct logdb_filter {
	uint64_t since_ms, until_ms; /* 0 = unbounded; since inclusive, until exclusive */
	const char *client, *mac, *device, *group, *vendor, *list, *action;
	const char *domain; /* the name and its subdomains (canonical text) */
	const char *who;    /* device name, MAC or client IP (veto report device) */
	int blocked;        /* -1 any, 0 allowed only, 1 blocked only */
	int64_t after_id;   /* rows with a greater id only; 0 = any */
	uint32_t limit;     /* 0 = no limit */
	bool oldest_first;  /* default newest first */
	bool chronological; /* the newest 'limit' rows, in time order */
};

void logdb_filter_init(struct logdb_filter *f); /* everything unset, blocked = -1 */

/* One row as read; strings are NULL for SQL NULL and valid during the callback only. */
struct logdb_row {
	int64_t id;
	uint64_t ts_ms;
	const char *client, *proto, *group, *qname, *qtype;
	bool blocked;
	const char *list, *rule, *action, *rcode, *upstream;
	uint32_t latency_us;
	const char *mac, *device, *vendor, *vendor_source;
};

/* Return non-zero from a callback to stop: that value is returned. */
typedef int (*logdb_row_cb)(void *arg, const struct logdb_row *row);

/* Rows matching f, newest first (or oldest first), at most f->limit. 0, a callback's value,
 * -EINVAL (bad domain), -EIO. */
int logdb_query_rows(struct logdb_reader *r, const struct logdb_filter *f, logdb_row_cb cb,
                     void *arg);

/* ---- device events (logdb_events.c) ---- */

/* One device event as read; strings are NULL for SQL NULL and valid during the callback only.
 * vendor is NULL in files written before events recorded it. */
struct logdb_event_row {
	int64_t id;
	uint64_t ts_ms;
	const char *device, *mac, *client, *kind, *old_group, *new_group, *vendor, *evidence;
};
typedef int (*logdb_event_cb)(void *arg, const struct logdb_event_row *ev);

/* Device events matching f's time window and its who, client, mac and device filters (the
 * other filters are about queries and are ignored), in time order; with f->limit, the newest
 * f->limit of them. 0, a callback's value, -EINVAL (bad MAC), -EIO. */
int logdb_query_events(struct logdb_reader *r, const struct logdb_filter *f, logdb_event_cb cb,
                       void *arg);

/* ---- reports (logdb_report.c) ---- */

/* `veto report attempts`: one row per device that attempted blocked names. */
#define LOGDB_TOP_LISTS 3
struct logdb_attempt {
	const char *key; /* device name, else MAC, else client IP */
	const char *device, *mac, *client, *vendor, *vendor_source, *group;
	uint64_t attempts, names;
	const char *top_lists; /* "xiaomi (120), huawei (3)": at most LOGDB_TOP_LISTS */
	size_t ntop;           /* the same, one by one (list NULL: blocked by no list) */
	struct logdb_list_count {
		const char *list;
		uint64_t attempts;
	} top[LOGDB_TOP_LISTS];
	uint64_t first_ms, last_ms;
};
typedef int (*logdb_attempt_cb)(void *arg, const struct logdb_attempt *a);

/* Uses f's time, client, mac, device, group, vendor, list filters; most attempts first. */
int logdb_report_attempts(struct logdb_reader *r, const struct logdb_filter *f, logdb_attempt_cb cb,
                          void *arg);

/* `veto report summary`: sections of (label, total, blocked) counts. */
enum logdb_summary_section {
	LOGDB_SUMMARY_TOTAL = 0,   /* one row, label NULL */
	LOGDB_SUMMARY_GROUP,       /* per group (label NULL = no group) */
	LOGDB_SUMMARY_LIST,        /* per list, blocked rows only */
	LOGDB_SUMMARY_TOP_BLOCKED, /* top blocked names */
	LOGDB_SUMMARY_TOP_CLIENT,  /* top clients (device key) */
	LOGDB_SUMMARY_HOUR,        /* per hour: label "2026-11-22T03" (UTC), ts_ms its start */
};
struct logdb_summary_row {
	enum logdb_summary_section section;
	const char *label;
	uint64_t ts_ms;
	uint64_t total, blocked;
};
typedef int (*logdb_summary_cb)(void *arg, const struct logdb_summary_row *row);

/* top: rows in the top sections. Uses f's filters. */
int logdb_report_summary(struct logdb_reader *r, const struct logdb_filter *f, uint32_t top,
                         logdb_summary_cb cb, void *arg);

/* The id of the newest row (0 for an empty table): --follow starts after it (logdb_query.c). */
int logdb_last_id(struct logdb_reader *r, int64_t *out);

/* Parses "24h", "7d", "30m", "90s", "2w" (relative to now_ms) or ISO 8601 ("2026-11-22",
 * "2026-11-22T03:58", "2026-11-22T03:58:22Z", "...+02:00"; without a zone: local time).
 * 0 or -EINVAL; *out written only on success. (logdb_format.c) */
int logdb_parse_time(const char *text, uint64_t now_ms, uint64_t *out);

/* ---- output helpers of the commands (logdb_format.c) ---- */

/* A JSON string with quotes; NULL prints null; invalid UTF-8 becomes U+FFFD. */
void logdb_print_json_str(FILE *out, const char *s);
/* A CSV field (RFC 4180: quoted when it holds a comma, quote, CR or LF); NULL is empty. */
void logdb_print_csv(FILE *out, const char *s);
/* "2026-11-22T03:58:22.123Z" (UTC), or with local = true "2026-11-22 04:58:22" (local time). */
#define LOGDB_TIME_MAX 64
void logdb_format_time(uint64_t ts_ms, bool local, char buf[LOGDB_TIME_MAX]);

/* An aligned text table: cells are copied; NULL cells print as "-". */
struct logdb_table;
int logdb_table_new(size_t ncols, const char *const *heads, struct logdb_table **out);
int logdb_table_add(struct logdb_table *t, const char *const *cells); /* 0 or -ENOMEM */
/* right: per column, align right (numbers); may be NULL. Prints the header (when asked) and the
 * rows, then forgets the rows (widths grow, never shrink: a follow-up print stays aligned). */
void logdb_table_print(struct logdb_table *t, FILE *out, const bool *right, bool header);
void logdb_table_free(struct logdb_table **t);

#endif
