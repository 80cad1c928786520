/*
 * logdb_reader_int: what the reader's files share (logdb_query.c, logdb_report.c,
 * logdb_events.c): the read-only connection, its read transaction, and the SQL builder that
 * turns a filter into a statement with bound parameters. The writer's files share
 * logdb_int.h. Not for other modules: they use logdb_reader.h.
 */
#ifndef VETO_LOGDB_READER_INT_H
#define VETO_LOGDB_READER_INT_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logdb_reader.h"
#include "names.h"

#define LOGDB_SQL_MAX    8192
#define LOGDB_BINDS_MAX  96
#define LOGDB_RANGES_MAX 1024 /* hour ranges read one by one (more: one range around all) */

/* Called by veto_each for every row of a report's scan: 0 to go on, else -errno to stop. */
typedef int (*logdb_each_cb)(void *arg, sqlite3_value **v);

struct pgread;

struct logdb_reader {
	struct pgread *pg; /* the shared store (pgread.h) instead of the file; db is then NULL */
	sqlite3 *db;
	char *path;
	/* the scan veto_each feeds (run_each in logdb_report.c) */
	logdb_each_cb each;
	void *each_arg;
	int each_rc;
	unsigned snapshots; /* nested logdb_snapshot_begin calls open */
};

/* "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff" -> "aa:bb:cc:dd:ee:ff" in out
 * (18 bytes). 0 or -EINVAL. */
int logdb_canonical_mac(const char *in, char *out);

/* ---- a filter's fields (logdb_filter.c; both back ends) ---- */

/* How many values v holds (the first NULL ends them). */
size_t logdb_values_count(const struct logdb_values *v);
/* Whether f restricts the source of a row: client, MAC, device, who, group or vendor. */
bool logdb_filter_has_source(const struct logdb_filter *f);
/* Whether f filters by name (the root is every name). */
bool logdb_filter_has_domain(const struct logdb_filter *f);

/* Logs the connection's last error. -EIO. */
int logdb_reader_error(struct logdb_reader *r);

/* ---- filters to SQL ---- */

struct logdb_bind {
	bool is_text;
	const char *text;
	int64_t num;
};

/* A statement being written: once something does not fit, full stays set. The texts bound
 * must outlive the statement (they point into the filter or into this struct). */
struct logdb_sql {
	char s[LOGDB_SQL_MAX];
	size_t n;
	bool where; /* a WHERE was written */
	bool full;
	/* on a rollup table (set by the caller): logdb_build_where writes no time, id or name
	 * condition (the caller bounds the hours) */
	bool rollup;
	/* set by the caller: the id ranges of the hours that hold a device or domain filter's
	 * matches are left in range_lo/hi (nranges of them, in id order; 0: none were needed)
	 * and the statement gets "id BETWEEN ?range_bind AND ?range_bind+1" to bind each */
	bool per_range;
	size_t nranges;
	int range_bind;
	int64_t range_lo[LOGDB_RANGES_MAX], range_hi[LOGDB_RANGES_MAX];
	struct logdb_bind b[LOGDB_BINDS_MAX];
	int nb;
	char mac[LOGDB_FILTER_VALUES][18], who_mac[18]; /* canonical MACs of the filter */
	/* the ranges of the domains */
	char lo[LOGDB_FILTER_VALUES][NAMES_MAX_TEXT + 2],
	        hi[LOGDB_FILTER_VALUES][NAMES_MAX_TEXT + 2];
};

/* Starts one call of the reader: its read transaction (a snapshot) and an empty statement *q
 * to write (owned by the caller, freed by logdb_read_end). 0, -ENOMEM, -EIO; *q is written only
 * on success. */
int logdb_read_begin(struct logdb_reader *r, struct logdb_sql **q);
/* Ends the read transaction and frees *q (sets it to NULL). */
void logdb_read_end(struct logdb_reader *r, struct logdb_sql **q);

/* Appends text to the statement. */
void logdb_sql_add(struct logdb_sql *q, const char *text);

/* The WHERE clause of f on the columns of queries (restricted to the id ranges of the hours
 * whose rollups hold a matching source and name, when f has such filters), or with q->rollup
 * on those of a rollup table (source, list, action, blocked). extra: a condition always added
 * (or NULL). 0, -EINVAL (bad MAC or domain), -E2BIG, -ENOMEM, -EIO. */
int logdb_build_where(struct logdb_reader *r, struct logdb_sql *q, const struct logdb_filter *f,
                      const char *extra);

/* Prepares q and binds its parameters. 0, -E2BIG, -EIO. */
int logdb_prepare(struct logdb_reader *r, struct logdb_sql *q, sqlite3_stmt **out);

/* The end of a statement's steps: 0 for SQLITE_DONE, else -EIO (logged). */
int logdb_step_error(struct logdb_reader *r, int rc);

#endif
