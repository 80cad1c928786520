/*
 * querylog: one record per query, written off the event loop to two sinks.
 *
 * The loop thread fills a fixed-size record and submits it to a bounded single-producer ring
 * (no allocation, no lock held across I/O, never blocks); a writer thread drains the ring once
 * and feeds both sinks: the JSON line to log.file ("-" = standard output) and a row to the
 * SQLite database log.database (see logdb.h). log.file unset means standard output, unless
 * log.database is set: then only the database is written.
 * Evidence first: when the writer falls behind (slow disk, a CPU shared with the loop), a
 * forwarded (not blocked) record may use the ring's first 3/4 (1 - 1/QUERYLOG_EVIDENCE_SHARE),
 * a blocked one the whole ring; then both go to an overflow list of packed records (only the
 * octets a record uses, ~60-200) that grows in chunks of 256 KiB (allocating, only then) up to
 * log.evidence_buffer_mb (default QUERYLOG_EVIDENCE_MB MiB); records keep their order.
 * Forwarded records may fill only the overflow's first half: past it they are not stored one
 * by one but counted exactly (the writer writes, at most once a second, one counter line
 * {"ts":...,"type":"unlogged","since":...,"forwarded":N} to the file and one row to the
 * database's unlogged table, and warns once per burst), and while the overflow holds more than
 * that half the writer counts the forwarded records it drains instead of storing them (the
 * price: a blocked record may wait behind up to half the buffer of forwarded ones). Only
 * past the whole bound is a blocked record lost: counted
 * (querylog_evidence_lost) and reported as an error. Device events wait in
 * a queue that grows from QUERYLOG_EVENTS to QUERYLOG_EVENTS_MAX. querylog_reopen() (SIGHUP) makes the writer reopen the file (logrotate).
 * querylog_free() writes what is buffered, then stops the thread. The database sink reports
 * and counts its own failures (locked, read-only, corrupt, full) and retries with backoff;
 * querylog_reopen() also reopens the database at once. A reload applies new log settings
 * (querylog_reconfigure()): the writer switches sinks between two records, without a restart.
 *
 * Threads: querylog_submit() has a single producer: call it from one thread only (the loop);
 * querylog_reconfigure() from that thread too. querylog_wants/reopen/dropped/lost may be
 * called from any thread. The writer thread blocks every signal. A record reaches the file
 * within about 50 ms (the writer is woken early only when the ring fills up, so the
 * steady-state producer cost is a copy and an atomic store).
 * Write errors (ENOSPC, EIO, ...): the records of the failed batch are counted as lost, the
 * error is logged once per burst, and the next batch is tried again. When standard output is
 * the log and is a closed pipe, the process must ignore SIGPIPE (the server does).
 * The record and its JSON line: record.h; the file sink: jsonl.h; the database: logdb.h.
 */
#ifndef VETO_QUERYLOG_H
#define VETO_QUERYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "identity.h"
#include "record.h"

#define QUERYLOG_RING	  16384	/* records buffered between the loop and the writer */
#define QUERYLOG_EVIDENCE_SHARE 4 /* 1/4 of the ring is kept for blocked records */
#define QUERYLOG_EVIDENCE_MB 64 /* log.evidence_buffer_mb's default: the overflow's bound */

struct querylog;

/* Opens cfg->log.file (creating it, append mode) and starts the writer thread. With
 * log.queries == none nothing is opened and every submit is a no-op. 0 or -errno (file cannot
 * be opened: a message names it). With cfg->log.database set, creates cfg->state_dir when
 * missing and has the writer thread open the database; a database (or state_dir) that cannot
 * be opened is reported and retried, never an error here: DNS keeps working without it. */
int querylog_new(const struct config *cfg, struct querylog **out);

/* True when a record with this 'blocked' value should be submitted (log.queries filter). */
bool querylog_wants(const struct querylog *ql, bool blocked);

/* Copies r into the ring (a blocked one into the overflow when the ring is full). 0, or -ENOBUFS
 * when r was not stored one by one: a forwarded record (counted in querylog_unlogged), or a
 * blocked one with the overflow full (counted in querylog_evidence_lost). */
int querylog_submit(struct querylog *ql, const struct querylog_record *r);

/* n threads call querylog_submit (server.workers): from then on each submit takes a mutex
 * held for the copy only. Called before those threads start; 1 (the default): one thread. */
void querylog_set_producers(struct querylog *ql, unsigned n);

/* A device event for the database's device_events table (first sight of a device, group
 * change, vendor attribution). Strings are copied (truncated to the sizes below); NULL or
 * "" is stored as NULL. Any thread; takes a mutex briefly (events are rare), never blocks on
 * I/O. 0, or -ENOBUFS when QUERYLOG_EVENTS_MAX are already waiting (dropped, counted in
 * querylog_db_dropped and reported as an error), or -ENOTSUP without a database (nothing
 * counted). The queue grows past QUERYLOG_EVENTS only when the writer falls behind. */
#define QUERYLOG_EVENTS 256
#define QUERYLOG_EVENTS_MAX 16384
int querylog_submit_event(struct querylog *ql, const struct identity_event *ev);

/* Asks the writer to reopen the file (SIGHUP). Non-blocking. */
void querylog_reopen(struct querylog *ql);

/* Applies a reload's log settings; cfg is only read (the strings are copied). Call it from the
 * querylog_submit() thread; never blocks on I/O (a short lock). log.queries takes effect at once
 * (querylog_wants()). log.file, log.database (cfg->state_dir is created for it when missing)
 * and log.retention_days go to the writer thread, which applies them at its next turn (within
 * about 50 ms). Ordering, exact: every record submitted and every device event queued before
 * this call goes to the sinks in use until now, every one after it to the new sinks; the
 * switch itself loses and duplicates nothing. Only what changed is touched: an unchanged file
 * or database is not reopened, a retention change alone is applied to the open database. A
 * new file that cannot be opened is reported, its records are counted as lost
 * (querylog_lost()) and opening is retried with backoff (and on querylog_reopen()); a new
 * database that cannot be opened behaves as a failing one (reported, counted in
 * querylog_db_dropped(), retried). log.queries none closes both sinks; the writer stays idle.
 * When several calls come before the writer's turn, only the last one's sinks are opened, and
 * what was submitted before it goes to the sinks in use.
 * 0; -ENOMEM (nothing changed); -EAGAIN when ql was made with log.queries none (it has no
 * writer thread) and cfg asks for records: nothing changed, the caller makes a new querylog
 * with querylog_new(cfg) and frees this one (which holds nothing to write). */
int querylog_reconfigure(struct querylog *ql, const struct config *cfg);

/* Writes out what is buffered, stops the writer, closes the file, frees, sets *ql = NULL. */
void querylog_free(struct querylog **ql);

/* Records not stored one by one because the writer was behind: querylog_unlogged() +
 * querylog_evidence_lost(). */
uint64_t querylog_dropped(const struct querylog *ql);
/* Forwarded records counted in 'unlogged' lines and rows instead of stored one by one. */
uint64_t querylog_unlogged(const struct querylog *ql);
/* Blocked records lost because the overflow was full (0 unless the writer stalled for long). */
uint64_t querylog_evidence_lost(const struct querylog *ql);
/* Records lost because writing them failed (ENOSPC, EIO, ...). */
uint64_t querylog_lost(const struct querylog *ql);
/* Records the database sink could not store (database locked, read-only, corrupt, full, or
 * not open); counted apart from the JSONL sink's losses. */
uint64_t querylog_db_dropped(const struct querylog *ql);
/* With store.postgresql: fills st (connection state, rows stored, spooled rows and octets,
 * rows lost; pgstore.h) and returns true; false without it. Any thread. */
struct pgstore_stats;
bool querylog_pg_stats(const struct querylog *ql, struct pgstore_stats *st);

#endif
