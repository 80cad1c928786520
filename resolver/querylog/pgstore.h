/*
 * pgstore: the query log's database sink when store.postgresql is set (instead of the SQLite
 * store, logdb.h). pgstore_add/add_event/tick/finish are called by the querylog writer thread
 * only; pgstore_stats from any thread.
 *
 * Rows and device events become COPY text on the writer thread (the instance name on every
 * row) and go in batches to a thread of the sink's own, the sender, which alone talks to
 * PostgreSQL: the writer never waits on the network and keeps draining the ring while a batch
 * is sent. A batch is handed over at PGSTORE_BATCH_ROWS rows or when PGSTORE_COMMIT_MS old
 * (when the sender still holds the previous one it keeps growing, up to PGSTORE_BATCH_MAX rows,
 * then the writer spools it). The sender sends each batch as one transaction (pgstore_send.c):
 * its key into stored_batches (instance, this run's random number, the batch's number: a batch
 * sent again because the outcome of an earlier attempt was lost, live or from the spool, finds
 * it and is skipped), COPY into a temporary staging table, one INSERT into the day-partitioned
 * `queries` and one upsert per rollup aggregated from the staging rows (so the rollups count
 * exactly the rows stored with them), COPY of the events, COMMIT; in libpq's non-blocking mode, abandoned when
 * not done within PGSTORE_SEND_MS per PGSTORE_BATCH_ROWS rows (pgstore_deadline). It also connects, creates or migrates the schema, creates
 * partitions a day ahead and runs retention (pgstore_conn.c).
 * A batch that cannot be sent (no connection, a lost or slow one) goes to the spool
 * (pgstore_spool.c): one fsync'd file per batch under STATE_DIR/spool/, in order, at most
 * store.spool_mb in all, replayed in order once the database is back (and at the next start);
 * beyond the bound blocked rows and events are kept before forwarded ones, and what does not
 * fit is counted lost. The connection is retried with backoff (PGSTORE_RETRY_MIN_MS doubling to
 * PGSTORE_RETRY_MAX_MS); one log line when it is lost, one when it is back with the rows
 * replayed and lost. A connection attempt in progress is given up when the writer stops.
 */
#ifndef VETO_PGSTORE_H
#define VETO_PGSTORE_H

#include <stdbool.h>
#include <stdint.h>

#include "logdb.h"
#include "record.h"

struct config;

#define PGSTORE_BATCH_ROWS   20000  /* a batch is handed to the sender at this many rows */
#define PGSTORE_BATCH_MAX    200000 /* a batch the sender has not taken by then is spooled */
#define PGSTORE_COMMIT_MS    1000  /* a batch is sent when this old */
#define PGSTORE_SEND_MS      2000  /* a batch not sent within this (per PGSTORE_BATCH_ROWS
                                      rows) goes to the spool: a database slower than 10,000
                                      rows a second counts as down */
#define PGSTORE_RETRY_MIN_MS 1000
#define PGSTORE_RETRY_MAX_MS 30000
#define PGSTORE_RETENTION_MS (24u * 3600 * 1000) /* a retention pass this often (and at start) */
#define PGSTORE_PRUNE_MS     (3600u * 1000) /* this instance's old batch keys deleted this often */

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
 * the sender thread, which connects. Failures are reported, never returned. */
void pgstore_start(struct pgstore *ps);

/* Adds a row / an event to the batch; hands it to the sender (or spools it) when full. */
void pgstore_add(struct pgstore *ps, const struct querylog_record *r);
void pgstore_add_event(struct pgstore *ps, const struct logdb_event *ev);

/* Between batches (every 50 ms or so): hands the batch over when PGSTORE_COMMIT_MS old. */
void pgstore_tick(struct pgstore *ps, uint64_t mono_ms, uint64_t wall_ms);

/* Writer thread, at the end: hands the last batch over, stops the sender (which sends or
 * spools it and disconnects), reports what was not stored. */
void pgstore_finish(struct pgstore *ps);

/* log.retention_days changed (a reload): the sender runs a retention pass. */
void pgstore_set_retention(struct pgstore *ps, uint32_t retention_days);

/* The monotonic ms by which a batch of rows must be committed. */
uint64_t pgstore_deadline(uint64_t rows);

/* Any thread. */
void pgstore_stats(const struct pgstore *ps, struct pgstore_stats *st);
const char *pgstore_state_name(enum pgstore_state s);

/* Frees (after pgstore_finish, or when it never started), sets *ps = NULL. */
void pgstore_free(struct pgstore **ps);

#endif
