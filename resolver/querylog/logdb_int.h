/*
 * logdb_int: what the writer's files share (logdb.c, logdb_dict.c, logdb_batch.c,
 * logdb_rollup.c, logdb_migrate.c). What the
 * writer shares with the reader is in logdb_schema.h. Not for other modules: they use logdb.h.
 */
#ifndef VETO_LOGDB_INT_H
#define VETO_LOGDB_INT_H

#include <sqlite3.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "logdb.h"
#include "logdb_schema.h"

/* ---- logdb_dict.c: the writer's memory of dictionary ids ---- */

/* A string -> id map of bounded size: no allocation after logdb_dict_init; when it is full
 * it forgets everything and starts again (a miss costs one indexed SELECT). Keys are bytes
 * (not NUL-terminated). */
struct logdb_dict {
	uint64_t *hash; /* per slot; 0 = empty */
	int64_t *id;
	uint32_t *off, *len; /* the key in arena */
	size_t mask;         /* slots - 1 */
	size_t count, max;   /* entries, and at most */
	char *arena;
	size_t used, cap;
	uint64_t seed; /* of logdb_dict_hash */
};

/* 0 or -ENOMEM. max_entries: at most this many keys; arena: bytes of keys at most. */
int logdb_dict_init(struct logdb_dict *d, size_t max_entries, size_t arena);
void logdb_dict_free(struct logdb_dict *d);
void logdb_dict_clear(struct logdb_dict *d);
/* The seeded hash (hash.h) of a key in d; never 0. */
uint64_t logdb_dict_hash(const struct logdb_dict *d, const char *key, size_t len);
/* The id of key, or 0 when it is not in memory. */
int64_t logdb_dict_get(const struct logdb_dict *d, uint64_t hash, const char *key, size_t len);
/* Remembers key -> id (id > 0; a key longer than the arena is not remembered). */
void logdb_dict_put(struct logdb_dict *d, uint64_t hash, const char *key, size_t len, int64_t id);

/* ---- logdb_rollup.c: the hourly rollups kept in memory until the commit ---- */

enum {
	LOGDB_ROLLUP_SOURCES = 0,
	LOGDB_ROLLUP_NAMES,
	LOGDB_ROLLUP_DAYS,
	LOGDB_ROLLUP_HOURS,
	LOGDB_ROLLUP_NMAPS
};
#define LOGDB_ROLLUP_KEYS        5
#define LOGDB_ROLLUP_SOURCES_MAX 4096  /* distinct keys kept before an early upsert */
#define LOGDB_ROLLUP_NAMES_MAX   32768 /* (4 MB of slots) */
#define LOGDB_ROLLUP_MANY        64    /* keys per multi-row upsert */

struct logdb_rollup_entry {
	uint64_t hash; /* 0: empty slot */
	int64_t k[LOGDB_ROLLUP_KEYS];
	int64_t n;              /* rows; for hours the first id */
	int64_t last;           /* hours: the last id */
	int64_t total, blocked; /* hours: rows, blocked rows */
};

struct logdb_rollup_map {
	struct logdb_rollup_entry *e;
	size_t mask, count, max;
	uint32_t *order; /* max: the entries' slots in key order, made at each flush */
};

struct logdb_rollup {
	struct logdb_rollup_map map[LOGDB_ROLLUP_NMAPS];
};

/* ---- logdb_ckpt.c: WAL checkpoints on their own thread ---- */

struct logdb_ckpt_stats {
	atomic_uint_fast64_t passes;       /* checkpoints of the thread that worked */
	atomic_uint_fast64_t writer_ckpts; /* by the writer itself (past last) */
	atomic_uint_fast64_t errors;       /* episodes of failure */
};

struct logdb_ckpt {
	const char *path;               /* borrowed: the logdb's */
	uint32_t soft, last;            /* WAL pages: wake the thread, the writer's own pass */
	atomic_uint_fast32_t wal_pages; /* after the writer's last commit */
	bool running;                   /* the thread exists (written by the writer only) */
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;        /* under mu */
	uint64_t commits; /* under mu: commits that left soft pages or more */
	sqlite3 *db;      /* the thread's connection */
	bool failing;     /* the thread's: inside an episode of failures */
	struct logdb_ckpt_stats stats;
};

/* Sets wal_autocheckpoint 0 and the WAL hook on the writer's connection, and starts the thread
 * (thread false: tests; the writer checkpoints past soft, as SQLite would). Once per open
 * connection; a thread that cannot start is reported and the writer checkpoints. */
void logdb_ckpt_start(struct logdb_ckpt *c, sqlite3 *writer, const char *path, uint32_t soft,
                      bool thread);
/* Removes the hook (writer may be NULL), stops and joins the thread, closes its connection.
 * Before the writer's connection closes, so that the writer's close is the last one (which
 * checkpoints and removes the WAL). Does nothing when nothing was started. */
void logdb_ckpt_stop(struct logdb_ckpt *c, sqlite3 *writer);

/* ---- logdb.c ---- */

enum logdb_dict_kind { LOGDB_SOURCES = 0, LOGDB_NAMES, LOGDB_TEXTS, LOGDB_NDICTS };

/* The values of one queries row in column order (id, ts_ms, source, name, qtype, proto,
 * blocked, list, rule, action, rcode, upstream, latency_us); 0 stands for NULL in the id and
 * the dictionary ids other than the source. */
#define LOGDB_ROW_VALUES    13
#define LOGDB_KEYCACHE_WAYS 4   /* keys kept per text column (logdb_record.c) */
#define LOGDB_INSERT_MANY   256 /* rows per multi-row INSERT (logdb_batch.c): 3,072 parameters */

struct logdb {
	char *path;
	uint32_t retention_days;
	uint32_t max_pages;
	uint32_t wal_pages; /* the checkpoint thread's soft limit */
	bool ckpt_thread;   /* false: tests */
	bool ckpt_started;  /* logdb_ckpt_start ran for the open connection */
	struct logdb_ckpt ckpt;

	sqlite3 *db; /* NULL while broken */
	sqlite3_stmt *ins, *ins_ev, *ins_unl, *prune_q, *prune_ev;
	sqlite3_stmt *dict_sel[LOGDB_NDICTS], *dict_ins[LOGDB_NDICTS];
	sqlite3_stmt *dict_prune[2];                 /* sources, names no query refers to */
	sqlite3_stmt *ins_many;                      /* LOGDB_INSERT_MANY rows without their ids */
	sqlite3_stmt *rollup_up[LOGDB_ROLLUP_NMAPS]; /* upserts (logdb_rollup.c) */
	sqlite3_stmt *rollup_many[LOGDB_ROLLUP_HOURS]; /* of sources, names: LOGDB_ROLLUP_MANY */
	sqlite3_stmt *prune_ru[4];                     /* rollups of deleted hours */
	struct logdb_rollup rollup;
	/* rows of the open transaction not yet inserted (logdb_batch.c) */
	sqlite3_int64 pend[LOGDB_INSERT_MANY][LOGDB_ROW_VALUES];
	uint32_t npend;
	/* the values bound to ins_many by its last run (valid after one full batch) */
	sqlite3_int64 bound[LOGDB_INSERT_MANY][LOGDB_ROW_VALUES];
	bool bound_valid;
	struct logdb_dict dicts[LOGDB_NDICTS];
	/* per text column of queries (qtype, proto, list, rule, action, rcode, upstream): the
	   last text and its id. Consecutive rows mostly repeat them: a strcmp instead of a hash
	   and a probe. Cleared with the dictionaries. */
	struct {
		char text[48];
		int64_t id; /* 0: empty */
	} last_text[7];
	/* the same for the keys of logdb_record.c: per text column its last few keys */
	struct logdb_keycache {
		uint8_t n;
		uint8_t b[39];
		int64_t id; /* 0: empty */
	} keycache[7][LOGDB_KEYCACHE_WAYS];
	uint8_t keycache_next[7];
	bool in_tx;
	uint32_t tx_rows;   /* rows (and events) in the open transaction */
	uint64_t tx_start;  /* monotonic ms (of the tick before it began) */
	uint64_t last_mono; /* of the last tick */

	bool reopen;       /* logdb_reopen() asked for it */
	bool failing;      /* inside a burst of failures, reported once */
	bool retry_set;    /* retry_at is valid */
	uint64_t retry_at; /* monotonic ms */
	uint64_t backoff_ms;
	uint64_t lost_in_burst;
	uint64_t next_prune; /* monotonic ms */
	uint64_t pruned;     /* rows deleted since the last pass over the dictionaries */
	int dict_pass;       /* 0: none; 1: sources; 2: names */
	int64_t dict_cursor, dict_end;

	/* schema 1/2 conversion (logdb_migrate.c) */
	bool migrating;
	sqlite3_stmt *mig_sel, *mig_del;
	uint64_t migrated;

	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t written;
};

/* Inserts one row (row->id 0: the next id) into the open transaction, with its dictionary
 * entries. An SQLite result code. */
int logdb_insert_row(struct logdb *db, const struct logdb_row *row);

/* The same, kept in the batch (logdb_batch_add) instead of inserted at once. */
int logdb_insert_row_later(struct logdb *db, const struct logdb_row *row);

/* The id of a dictionary entry not in memory: found or added (an SQLite result code), then
 * remembered under key (NULL: not remembered). fields bind ?1, ?2... of the dictionary's
 * statements (logdb.c). */
int logdb_dict_fetch(struct logdb *db, enum logdb_dict_kind k, const char *const *fields,
                     int nfields, const char *key, size_t keylen, uint64_t hash,
                     sqlite3_int64 *out);
/* The id of a text (0 for none or ""); remembered under the text. An SQLite result code. */
int logdb_text_id(struct logdb *db, const char *text, sqlite3_int64 *out);
/* The id of a question name's text (0 for none or ""), remembered under key, or under the text
 * when key is NULL (then keylen and hash are not used). An SQLite result code. */
int logdb_name_id(struct logdb *db, const char *qname, const char *key, size_t keylen,
                  uint64_t hash, sqlite3_int64 *out);

/* ---- logdb_record.c ---- */

/* The LOGDB_ROW_VALUES values of r's row (v[0], the id, 0), its dictionary entries found or
 * added. An SQLite result code. */
int logdb_record_values(struct logdb *db, const struct querylog_record *r, sqlite3_int64 *v);

int logdb_exec(sqlite3 *s, const char *sql);
/* Ends a burst of failures' start: reports (once per burst) and closes the connection. */
void logdb_fail(struct logdb *db, const char *what, const char *why);

/* ---- logdb_batch.c ---- */

/* Prepares ins_many and empties the batch. An SQLite result code. */
int logdb_batch_prepare(struct logdb *db);
/* Binds v[from..to) (0 as NULL where the column allows it) to ?first... of st. */
void logdb_bind_values(sqlite3_stmt *st, int first, const sqlite3_int64 *v, int from, int to);
/* Keeps a row's values (v[0], the id, must be 0); inserts the batch once it is full. An
 * SQLite result code (the batch is empty afterwards either way). */
int logdb_batch_add(struct logdb *db, const sqlite3_int64 *v);
/* Inserts the waiting rows into the open transaction. An SQLite result code (the batch is
 * empty afterwards either way). */
int logdb_batch_flush(struct logdb *db);

/* ---- logdb_rollup.c ---- */

/* Allocates the maps (0 or -ENOMEM); frees them. */
int logdb_rollup_init(struct logdb_rollup *ru);
void logdb_rollup_free(struct logdb_rollup *ru);
/* Forgets what is not yet upserted (its transaction was rolled back). */
void logdb_rollup_clear(struct logdb_rollup *ru);
/* Prepares the upserts; finalizes them and clears the maps. An SQLite result code. */
int logdb_rollup_prepare(struct logdb *db);
void logdb_rollup_finalize(struct logdb *db);
/* Counts the row of values v (LOGDB_ROW_VALUES) stored under id. An SQLite result code (a
 * full map is upserted into the open transaction first). */
int logdb_rollup_add(struct logdb *db, const sqlite3_int64 *v, int64_t id);
/* Upserts the counts into the open transaction and empties the maps (also on failure). */
int logdb_rollup_flush(struct logdb *db);

/* ---- logdb_retention.c ---- */

/* Prepares the statements of retention and of the pass over the dictionaries. */
int logdb_retention_prepare(struct logdb *db);
/* Starts the pass over the dictionaries; one step of it (reports and closes on failure). */
void logdb_dict_prune_start(struct logdb *db);
void logdb_dict_prune_step(struct logdb *db);

/* ---- logdb_migrate.c ---- */

/* Converts a schema-1/2 database (in its own transaction): renames queries to queries_old,
 * creates schema 4. An SQLite result code. */
int logdb_migrate_begin(struct logdb *db, int64_t version);
/* Converts a schema-3 database to 4 in one transaction: builds the rollups from the rows
 * (progress logged), drops the indexes by source and name. An SQLite result code. */
int logdb_migrate_rollups(struct logdb *db);
/* Is there a queries_old table left to convert? An SQLite result code. */
int logdb_migrate_pending(struct logdb *db, bool *pending);
/* Prepares the conversion's statements. An SQLite result code. */
int logdb_migrate_prepare(struct logdb *db);
/* Moves the newest `rows` rows of queries_old into schema 3 (its own transaction; no other
 * may be open), and drops queries_old once it is empty. 0, or -EIO (reported, connection
 * closed). */
int logdb_migrate_step(struct logdb *db, uint32_t rows);

#endif
