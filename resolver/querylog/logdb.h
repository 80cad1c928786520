/*
 * logdb: the writer of the SQLite query-log store (log.database), used by the querylog writer
 * thread (logdb.c; logdb_dict.c its memory of dictionary ids; logdb_batch.c the rows waiting
 * for their multi-row INSERT; logdb_migrate.c the conversion of older schemas). The schema and what
 * writer and reader share: logdb_schema.h; the read side
 * (`veto log`, `veto report`): logdb_reader.h.
 *
 * Writer: rows are inserted 256 per prepared statement inside an open transaction that
 * logdb_tick() commits once it is LOGDB_COMMIT_MS old (logdb_add() commits by itself every
 * LOGDB_BATCH_ROWS rows, logdb_commit() at once). Large transactions matter: every index leaf a
 * transaction touches (one per device, client, MAC and name) is written to the WAL once per
 * commit, so the cost per row falls with the rows per commit (measured: 15k rows/s with 1000-row
 * transactions, 85k rows/s with 100000). WAL mode, synchronous=NORMAL.
 * Failures never reach the caller: a database that is locked, read-only, corrupt, full or
 * missing is reported once per burst (log.h), the rows of the failed batch and every row
 * offered while it stays broken are dropped and counted, and the connection is reopened with
 * backoff (LOGDB_RETRY_MIN_MS doubling to LOGDB_RETRY_MAX_MS) until writing works again (a
 * commit that works ends the burst and resets the backoff; a reopen alone does not, since a full
 * disk opens fine), reported once with the burst's loss ("N records not stored while the
 * database failed"); a
 * file that is not a database at all is renamed aside ("PATH.corrupt-SECONDS") and a new one
 * started. Retention deletes rows older than retention_days in batches of LOGDB_PRUNE_ROWS
 * from logdb_tick(), so one call never holds the writer long.
 *
 * Checkpoints: a thread of the logdb's own (logdb_ckpt.c) copies the WAL into the database once
 * it holds LOGDB_WAL_PAGES pages, so the writer never waits for a checkpoint's fdatasync; past
 * 2x that it tries TRUNCATE (waiting at most 10 ms), past 4x (64 MB) the writer checkpoints
 * itself. Closing the last connection checkpoints and removes the WAL, as SQLite does.
 *
 * Threads: a struct logdb belongs to one thread at a time (the querylog writer); the checkpoint
 * thread has its own connection and touches nothing else.
 */
#ifndef VETO_LOGDB_H
#define VETO_LOGDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "record.h"

#define LOGDB_BATCH_ROWS   100000 /* rows per transaction at most */
#define LOGDB_COMMIT_MS    1000   /* a transaction is committed when this old */
#define LOGDB_PRUNE_ROWS   5000   /* rows deleted per retention step */
#define LOGDB_MIGRATE_ROWS 20000  /* schema 1/2 rows converted per step */
#define LOGDB_RETRY_MIN_MS 500
#define LOGDB_RETRY_MAX_MS 30000
#define LOGDB_BUSY_MS      200  /* busy timeout of the writer's connection */
#define LOGDB_WAL_PAGES    4000 /* WAL pages (16 MB) that wake the checkpoint thread */

struct logdb_options {
	const char *path;        /* copied */
	uint32_t retention_days; /* 0 = keep forever */
	uint32_t max_pages;      /* PRAGMA max_page_count; 0 = SQLite's default (tests) */
	uint32_t wal_pages;      /* checkpoint past this many WAL pages; 0 = LOGDB_WAL_PAGES */
	bool no_ckpt_thread;     /* tests: the writer checkpoints, as SQLite would */
};

/* A device event (querylog_submit_event). NULL strings are stored as NULL. */
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
/* A row of the table unlogged: 'forwarded' queries between since_ms and ts_ms (ms since the
 * epoch) were not stored one by one (the querylog writer fell behind). 0, or -EIO (counted). */
int logdb_add_unlogged(struct logdb *db, uint64_t since_ms, uint64_t ts_ms, uint64_t forwarded);

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

#endif
