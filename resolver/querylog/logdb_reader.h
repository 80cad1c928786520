/*
 * logdb_reader: the read side of the query store, shared by `veto log`, `veto report` and the
 * web console (logdb_query.c: the reader and its rows; logdb_events.c: device events;
 * logdb_report.c, logdb_summary.c: the reports). The schema it reads: logdb_schema.h. Two back
 * ends answer the same calls with the same results: the SQLite file (log.database), and the
 * shared store on PostgreSQL (store.postgresql: pgread*.c, pgread.h), whose rows also carry the
 * instance that answered.
 *
 * Reader: a read-only connection (URI mode=ro) that works while the daemon writes and on a
 * copied file. Filters become SQL with bound parameters only.
 *
 * Threads: a struct logdb_reader belongs to one thread.
 */
#ifndef VETO_LOGDB_READER_H
#define VETO_LOGDB_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logdb_schema.h"

struct logdb_reader;

/* Opens path read-only; a copy without its -wal in a folder this user cannot write is opened
 * immutable (SQLite could not make the -shm a WAL file needs). 0, -ENOENT (no such file),
 * -EINVAL (not a veto query database, an older schema that no daemon has converted yet, or a
 * newer one: a message says which), -ENOMEM, -EIO. Messages go to standard error (log.h). */
int logdb_reader_open(const char *path, struct logdb_reader **out);
void logdb_reader_free(struct logdb_reader **r);

struct config;
/* Opens the shared store of cfg (store.postgresql) through pg_connect with role ("cli", "web"),
 * creating or updating its schema as the daemon does when it has none or an older one (under
 * the same lock). 0, -EINVAL (no store configured), -ECONNREFUSED, -EPROTO (a newer schema),
 * -ENOMEM, -EIO; messages go to standard error. Blocks on the network: never on the loop. */
int logdb_reader_open_pg(const struct config *cfg, const char *role, struct logdb_reader **out);
/* Whether r reads the shared store (rows have an instance; the instance filter applies). */
bool logdb_reader_shared(const struct logdb_reader *r);

/* Makes the calls between begin and end read one snapshot of the file (each call reads one
 * snapshot by itself): `veto report device` reads its queries and its events consistently
 * while the daemon writes. Nests. 0 or -EIO. */
int logdb_snapshot_begin(struct logdb_reader *r);
void logdb_snapshot_end(struct logdb_reader *r);

/* The values of one filter, ORed: v[0], v[1], ... up to the first NULL (all NULL: no filter). */
#define LOGDB_FILTER_VALUES 8
struct logdb_values {
	const char *v[LOGDB_FILTER_VALUES];
};

struct logdb_filter {
	uint64_t since_ms, until_ms; /* 0 = unbounded; since inclusive, until exclusive */
	/* each matches one of its values; the filters are ANDed */
	struct logdb_values client, mac, device, group, vendor, list, action;
	struct logdb_values domain; /* the names and their subdomains (canonical text) */
	struct logdb_values instance; /* the shared store's instances (SQLite: must be unset) */
	const char *who;    /* device name, MAC or client IP (veto report device) */
	int blocked;        /* -1 any, 0 allowed only, 1 blocked only */
	int64_t after_id;   /* rows with a greater id only; 0 = any */
	uint32_t limit;     /* 0 = no limit */
	bool oldest_first;  /* default newest first */
	bool chronological; /* the newest 'limit' rows, in time order */
};

void logdb_filter_init(struct logdb_filter *f); /* everything unset, blocked = -1 */

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
 * first value of each; the other filters are about queries and are ignored), in time order; with f->limit, the newest
 * f->limit of them. 0, a callback's value, -EINVAL (bad MAC), -EIO. */
int logdb_query_events(struct logdb_reader *r, const struct logdb_filter *f, logdb_event_cb cb,
                       void *arg);

/* ---- reports (logdb_report.c) ---- */

/* `veto report attempts`: one row per device (its MAC, else its client address, whatever its
 * name) with blocked queries. An attempt is a query a list blocked (whatever the group's
 * default); a query blocked by no list was refused by its group's default deny: counted apart
 * (denied), in neither attempts, names nor top lists. */
#define LOGDB_TOP_LISTS 3
struct logdb_attempt {
	const char *key; /* MAC, else client IP */
	const char *device, *mac, *client, *vendor, *vendor_source, *group; /* the latest */
	const char *evidence; /* the names of the latest vendor events ("a, b"), or NULL */
	uint64_t attempts, denied, names;
	const char *top_lists; /* "xiaomi (120), huawei (3)": at most LOGDB_TOP_LISTS */
	size_t ntop;           /* the same, one by one (list NULL: blocked by no list) */
	struct logdb_list_count {
		const char *list;
		uint64_t attempts;
	} top[LOGDB_TOP_LISTS];
	uint64_t first_ms, last_ms;
};
typedef int (*logdb_attempt_cb)(void *arg, const struct logdb_attempt *a);

/* Uses f's time, client, mac, device, group, vendor, list filters; most attempts first, then
 * most denied. */
int logdb_report_attempts(struct logdb_reader *r, const struct logdb_filter *f, logdb_attempt_cb cb,
                          void *arg);

/* `veto report summary`: sections of (label, total, blocked) counts. */
enum logdb_summary_section {
	LOGDB_SUMMARY_TOTAL = 0,   /* one row, label NULL */
	LOGDB_SUMMARY_GROUP,       /* per group (label NULL = no group) */
	LOGDB_SUMMARY_LIST,        /* per list, blocked rows only */
	LOGDB_SUMMARY_TOP_BLOCKED, /* top names blocked by a list (not by a default deny) */
	LOGDB_SUMMARY_TOP_CLIENT,  /* top clients (device key) */
	LOGDB_SUMMARY_HOUR,        /* per hour: label "2026-11-22T03" (UTC), ts_ms its start */
};
struct logdb_summary_row {
	enum logdb_summary_section section;
	const char *label;
	uint64_t ts_ms;
	uint64_t total, blocked;
	uint64_t denied; /* TOTAL: of the blocked, refused by a default deny (no list) */
};
typedef int (*logdb_summary_cb)(void *arg, const struct logdb_summary_row *row);

/* top: rows in the top sections. Uses f's filters. */
int logdb_report_summary(struct logdb_reader *r, const struct logdb_filter *f, uint32_t top,
                         logdb_summary_cb cb, void *arg);

/* The values the store has seen, for a filter's "did you mean": group names, vendors and
 * device names (of the sources of queries), or every text of its dictionary (LOGDB_KNOWN_TEXT:
 * list names among query types, rules, actions...). cb gets each once (borrowed for the call);
 * a non-zero return stops and is returned. 0, -EIO. */
enum logdb_known {
	LOGDB_KNOWN_GROUP,
	LOGDB_KNOWN_VENDOR,
	LOGDB_KNOWN_DEVICE,
	LOGDB_KNOWN_TEXT,
};
int logdb_known_values(struct logdb_reader *r, enum logdb_known kind,
                       int (*cb)(void *arg, const char *value), void *arg);

/* The id of the newest row (0 for an empty table): --follow starts after it (logdb_query.c).
 * On the shared store an id is the row's time in ms shifted left by 20 bits, with a 20-bit
 * hash of the row (instance, client, name, type) below: ids order rows by time, then by that
 * hash (pgread.c). */
int logdb_last_id(struct logdb_reader *r, int64_t *out);

#endif
