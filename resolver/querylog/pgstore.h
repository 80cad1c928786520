/*
 * pgstore: the query log's database sink when store.postgresql is set (instead of the SQLite
 * store, logdb.h). Used by the querylog writer thread only; its counters may be read from any
 * thread (pgstore_stats).
 *
 * Rows and device events are kept as COPY text (the instance name on every row) and sent as one
 * transaction per batch (pgstore_send.c): COPY into a temporary staging table, then one INSERT
 * into the day-partitioned `queries` and one upsert per rollup aggregated from the staging rows
 * (so the rollups count exactly the rows stored with them), then COPY of the events, COMMIT. A
 * batch ends at PGSTORE_BATCH_ROWS rows or when PGSTORE_COMMIT_MS old.
 *
 * The network never holds the writer long: connecting, creating or migrating the schema,
 * creating partitions and retention run on a helper thread with its own wait
 * (pgstore_conn.c); a batch is sent in libpq's non-blocking mode and abandoned when not done
 * within PGSTORE_SEND_MS. A batch that cannot be sent (no connection, a lost or slow one) goes
 * to the spool (pgstore_spool.c): one fsync'd file per batch under STATE_DIR/spool/, in order,
 * at most store.spool_mb in all, replayed in order once the database is back (and at the next
 * start); beyond the bound blocked rows and events are kept before forwarded ones, and what
 * does not fit is counted lost. The connection is retried with backoff (PGSTORE_RETRY_MIN_MS
 * doubling to PGSTORE_RETRY_MAX_MS); one log line when it is lost, one when it is back with the
 * rows replayed and lost.
 */
#ifndef VETO_PGSTORE_H
#define VETO_PGSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "logdb.h"
#include "record.h"

struct config;

#define PGSTORE_BATCH_ROWS   20000 /* rows per transaction at most */
#define PGSTORE_COMMIT_MS    250   /* a batch is sent when this old */
#define PGSTORE_SEND_MS      2000  /* a batch not sent within this goes to the spool */
#define PGSTORE_REPLAY_MS    250   /* spool replay per tick, at most (then the ring) */
#define PGSTORE_RETRY_MIN_MS 1000
#define PGSTORE_RETRY_MAX_MS 30000
#define PGSTORE_RETENTION_MS (24u * 3600 * 1000) /* a retention pass this often (and at start) */

enum pgstore_state {
	PGSTORE_CONNECTING = 0, /* never connected yet */
	PGSTORE_UP,             /* connected; batches are sent */
	PGSTORE_DOWN,           /* lost or unreachable: batches are spooled, reconnecting */
};

struct pgstore_stats {
	enum pgstore_state state;
	uint64_t stored;       /* rows committed (replayed ones included) */
	uint64_t spooled_rows; /* rows waiting in the spool now */
	uint64_t spool_bytes;  /* octets of the spool's files now */
	uint64_t lost;         /* rows and events not stored: spool full, or refused */
};

struct pgstore;

/* Copies what it needs of cfg (store.*, state_dir, log.retention_days); no I/O. 0 or -ENOMEM. */
int pgstore_new(const struct config *cfg, struct pgstore **out);

/* Writer thread: creates the spool folder, counts what an earlier run left in it and starts
 * connecting (on the helper thread). Failures are reported, never returned. */
void pgstore_start(struct pgstore *ps);

/* Adds a row / an event to the batch; sends or spools it when full. */
void pgstore_add(struct pgstore *ps, const struct querylog_record *r);
void pgstore_add_event(struct pgstore *ps, const struct logdb_event *ev);

/* Between batches (every 50 ms or so): sends the batch when PGSTORE_COMMIT_MS old, takes a
 * connection the helper made, reconnects after the backoff, replays the spool, creates the next
 * day's partition, starts the daily retention pass. */
void pgstore_tick(struct pgstore *ps, uint64_t mono_ms, uint64_t wall_ms);

/* Writer thread, at the end: sends (or spools) the batch, waits for the helper, disconnects,
 * reports what was not stored. */
void pgstore_finish(struct pgstore *ps);

/* log.retention_days changed (a reload): a retention pass at the next tick. */
void pgstore_set_retention(struct pgstore *ps, uint32_t retention_days);

/* Any thread. */
void pgstore_stats(const struct pgstore *ps, struct pgstore_stats *st);
const char *pgstore_state_name(enum pgstore_state s);

/* Frees (after pgstore_finish, or when it never started), sets *ps = NULL. */
void pgstore_free(struct pgstore **ps);

#endif
