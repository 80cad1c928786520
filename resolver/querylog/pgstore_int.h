/*
 * pgstore_int: what the PostgreSQL sink's files share (pgstore.c: batches and the state
 * machine; pgstore_send.c: libpq with a deadline; pgstore_conn.c: the helper thread;
 * pgstore_spool.c: the spool files).
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
};

/* One job of the helper thread: connect (and hand the connection over), or a retention pass on
 * a connection of its own. */
struct pgstore_job {
	pthread_t thread;
	bool running;
	atomic_bool done;
	bool handoff;            /* keep the connection for the writer */
	uint32_t retention_days; /* 0: no retention pass */
	uint64_t wall_ms;
	/* results */
	PGconn *conn;
	int rc;
	char why[256];
};

struct pgstore {
	struct config cfg; /* only the store.* strings (owned): what pg_connect reads */
	char instance[64];
	char *spool_dir;    /* owned: STATE_DIR/spool */
	uint64_t spool_max; /* octets */
	uint32_t retention_days;
	bool started;

	PGconn *conn;       /* the writer's connection, non-blocking; NULL when down */
	atomic_int state;   /* enum pgstore_state */
	struct pgstore_batch b;
	struct pgstore_job job;
	uint64_t mono, wall; /* the last tick's clocks */
	uint64_t backoff_ms, retry_at;
	int32_t part_lo, part_hi; /* days whose partitions are known to exist */
	uint64_t retention_at;    /* monotonic ms of the next retention pass; 0: at connect */

	/* an outage: from the first failure to the spool replayed */
	bool failing, spool_full;
	uint64_t replayed, lost_in_outage;

	/* the spool: files seq_head .. seq_next - 1 (some may be missing) */
	uint64_t seq_head, seq_next;

	atomic_uint_fast64_t stored, spooled_rows, spool_bytes, lost;
};

/* pgstore_send.c: libpq in non-blocking mode, everything before deadline (monotonic ms).
 * 0; -ETIMEDOUT; -EPIPE (the connection failed); -EINVAL (the server refused the data: an SQL
 * state of class 22, 23 or 42); -EIO (another server error: try again later). why gets the
 * error. */
int pgstore_exec(PGconn *c, const char *sql, uint64_t deadline, char *why, size_t whysz);
int pgstore_copy(PGconn *c, const char *sql, const char *data, size_t len, uint64_t deadline,
                 char *why, size_t whysz);
/* One batch as one transaction: rows (COPY text) with their rollups, then events. */
int pgstore_send(PGconn *c, const char *q, size_t qlen, const char *e, size_t elen,
                 uint64_t deadline, char *why, size_t whysz);
uint64_t pgstore_mono_ms(void);

/* pgstore_conn.c */
/* Creates the partitions of days lo..hi (UTC days since the epoch) under an advisory lock,
 * blocking (helper thread) or before deadline (writer). 0 or as pgstore_exec. */
int pgstore_partitions(PGconn *c, int32_t lo, int32_t hi, uint64_t deadline, char *why,
                       size_t whysz);
/* Starts a helper job (none may be running). */
void pgstore_job_start(struct pgstore *ps, bool handoff, uint32_t retention_days);
/* The job is over: joins it. True when it was running and is now done. */
bool pgstore_job_reap(struct pgstore *ps);

/* pgstore_spool.c */
/* Creates the folder, removes half-written files, counts the files an earlier run left. */
void pgstore_spool_open(struct pgstore *ps);
/* Appends the batch as the next file (fsync'd); past the bound keeps blocked rows and events
 * first and counts the rest lost. */
void pgstore_spool_batch(struct pgstore *ps, struct pgstore_batch *b);
/* Sends the oldest files while time is left (until deadline). 0 when the spool is empty,
 * -EAGAIN when time ran out, or the send error (the connection is then to be dropped). */
int pgstore_spool_replay(struct pgstore *ps, uint64_t deadline);
bool pgstore_spool_empty(const struct pgstore *ps);

/* pgstore.c */
void pgstore_count_lost(struct pgstore *ps, uint64_t n);
/* A failed send: drops the connection, reports the outage once, schedules the reconnect. */
void pgstore_conn_failed(struct pgstore *ps, const char *what, const char *why);

#endif
