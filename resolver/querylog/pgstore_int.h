/*
 * pgstore_int: what the PostgreSQL sink's files share (pgstore.c: batches, the hand-over to
 * the sender thread and its loop; pgstore_send.c: libpq with a deadline; pgstore_conn.c:
 * connecting, partitions, retention; pgstore_spool.c: the spool files).
 */
#ifndef VETO_PGSTORE_INT_H
#define VETO_PGSTORE_INT_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "pgstore.h"

#define PGSTORE_DAY_MS 86400000ull

/* The columns, in the order of the COPY text. */
#define PGSTORE_QUERY_COLS                                                                        \
	"ts, instance, client, mac, device, group_name, vendor, vendor_source, qname, qtype,"    \
	" proto, blocked, list, rule, action, rcode, upstream, latency_us"
#define PGSTORE_EVENT_COLS                                                                        \
	"ts, instance, device, mac, client, kind, old_group, new_group, evidence, vendor"

/* A batch: rows and events as COPY text (one line each), and where each row starts. */
struct pgstore_batch {
	char *q, *e;
	size_t qlen, qcap, elen, ecap;
	uint32_t nrows, nevents;
	uint32_t *row_off;     /* PGSTORE_BATCH_ROWS + 1 */
	uint8_t *row_blocked;  /* PGSTORE_BATCH_ROWS */
	int32_t day_lo, day_hi; /* UTC days (since the epoch) of its rows; lo > hi: none */
	uint64_t started;       /* monotonic ms of its first line */
	uint64_t seq;           /* its number in this run (stored_batches), 0: not named yet */
};

/* A batch's name in stored_batches: a batch sent again is not stored twice. */
struct pgstore_key {
	const char *instance;
	uint64_t run, seq;
	uint32_t rows, events;
};

struct pgstore {
	struct config cfg; /* only the store.* strings (owned): what pg_connect reads */
	char instance[64];
	char *spool_dir;    /* owned: STATE_DIR/spool */
	uint64_t spool_max; /* octets */
	atomic_uint retention_days;
	bool started;
	uint64_t run;                /* random at start: this run's batches' keys */
	atomic_uint_fast64_t seq;    /* the last batch number given */
	int wake_fd;                 /* eventfd: stop, for a connection attempt in progress */

	/* the writer fills 'fill'; a full or old one is swapped with 'pending' when the sender
	   has taken the previous one (under mu); the sender sends 'sending' */
	struct pgstore_batch fill, pending, sending;
	bool has_pending; /* under mu */
	bool stop;        /* under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool thread_started;
	uint64_t mono; /* the writer's last tick */

	/* the sender thread only */
	PGconn *conn; /* non-blocking; NULL when down */
	uint64_t backoff_ms, retry_at;
	int32_t part_lo, part_hi; /* days whose partitions are known to exist */
	uint64_t retention_at;    /* monotonic ms of the next retention pass; 0: at connect */
	uint32_t retention_done;  /* the retention_days of the last pass */
	bool failing;
	uint64_t replayed;
	uint64_t prune_at; /* monotonic ms of the next deletion of this instance's old keys */

	/* the spool, under spool_mu (the writer spools when the sender is behind; the sender
	   spools what it cannot send and replays): files seq_head .. seq_next - 1 */
	pthread_mutex_t spool_mu;
	uint64_t seq_head, seq_next;
	bool spool_full;

	atomic_int state; /* enum pgstore_state */
	atomic_uint_fast64_t stored, spooled_rows, spool_bytes, lost, lost_in_outage;
};

/* pgstore_send.c: libpq in non-blocking mode, everything before deadline (monotonic ms).
 * 0; -ETIMEDOUT; -EPIPE (the connection failed); -EINVAL (the server refused the data: an SQL
 * state of class 22, 23 or 42); -EIO (another server error: try again later). why gets the
 * error. */
int pgstore_exec(PGconn *c, const char *sql, uint64_t deadline, char *why, size_t whysz);
int pgstore_copy(PGconn *c, const char *sql, const char *data, size_t len, uint64_t deadline,
                 char *why, size_t whysz);
/* Runs sql with n text parameters; *affected (when not NULL) gets the rows it inserted,
 * updated or deleted. 0 or as pgstore_exec. */
int pgstore_exec_params(PGconn *c, const char *sql, int n, const char *const *values,
                        uint64_t deadline, long *affected, char *why, size_t whysz);
/* One batch as one transaction: its key (when not NULL) in stored_batches first, rows (COPY
 * text) with their rollups, then events. 0: stored, now or (*already) by an earlier attempt
 * whose outcome this writer did not learn; else as pgstore_exec (nothing stored). */
int pgstore_send(PGconn *c, const struct pgstore_key *key, const char *q, size_t qlen,
                 const char *e, size_t elen, uint64_t deadline, bool *already, char *why,
                 size_t whysz);
uint64_t pgstore_mono_ms(void);

/* pgstore_conn.c: the sender thread's blocking steps */
/* Creates the partitions of days lo..hi (UTC days since the epoch) under an advisory lock,
 * before deadline (UINT64_MAX: none). 0 or as pgstore_exec. */
int pgstore_partitions(PGconn *c, int32_t lo, int32_t hi, uint64_t deadline, char *why,
                       size_t whysz);
/* Deletes the keys of this instance's run stored more than an hour ago (the caller knows that
 * none of its batches can be sent again) and the instance's keys of any run older than a week.
 * 0 or as pgstore_exec. */
int pgstore_prune_keys(PGconn *c, const char *instance, uint64_t run, uint64_t deadline,
                       char *why, size_t whysz);
/* Connects, creates or migrates the schema, today's and tomorrow's partitions, the staging
 * table; the connection is then non-blocking. 0 or -errno (why). */
int pgstore_connect(struct pgstore *ps, uint64_t wall_ms, PGconn **out, char *why, size_t whysz);
/* Drops the daily partitions wholly older than days, deletes older rollup rows and events. */
int pgstore_retention(PGconn *c, uint32_t days, uint64_t wall_ms, char *why, size_t whysz);

/* pgstore_spool.c */
/* Creates the folder, removes half-written files, counts the files an earlier run left. */
void pgstore_spool_open(struct pgstore *ps);
/* Appends the batch as the next file (fsync'd); past the bound keeps blocked rows and events
 * first and counts the rest lost. Either thread (takes spool_mu). */
void pgstore_spool_batch(struct pgstore *ps, struct pgstore_batch *b);
/* Sender: sends the oldest files. 0 when the spool is empty, or the send error (the
 * connection has then been dropped). */
int pgstore_spool_replay(struct pgstore *ps);
bool pgstore_spool_empty(struct pgstore *ps);

/* pgstore.c */
/* Writes s[0..n) as a COPY text value and sep at p (at most 3 * n + 3 octets): \N for none (NULL
 * or n == 0); backslash, tab, newline and carriage return escaped; an octet that does not start
 * valid UTF-8 becomes U+FFFD (as in the JSON line); a NUL ends the value. Returns the end. */
char *pgstore_put_value(char *p, const char *s, size_t n, char sep);
void pgstore_count_lost(struct pgstore *ps, uint64_t n);
/* The writer asked the sender to stop (a replay leaves the rest for the next start). */
bool pgstore_stopping(struct pgstore *ps);
/* Names b (its seq) when it has no name yet. Either thread. */
void pgstore_name_batch(struct pgstore *ps, struct pgstore_batch *b);
/* Sender: a failed send or connect: drops the connection, reports the outage once, schedules
 * the reconnect. */
void pgstore_conn_failed(struct pgstore *ps, const char *what, const char *why);

#endif
