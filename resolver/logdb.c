/*
 * logdb: the writer side of the SQLite query store (see logdb.h).
 *
 * One connection, owned by the querylog writer thread. A row goes into the open transaction
 * with one prepared INSERT; logdb_commit() (after every drain of the ring) or the
 * LOGDB_BATCH_ROWS-th row ends it. Any SQLite error on the write path closes the connection:
 * the rows of the transaction are dropped and counted, the problem is logged once, and
 * logdb_tick() reopens after a backoff, which also brings back a database whose page limit,
 * permissions or disk space changed in the meantime.
 */
#include "logdb.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define DAY_MS        86400000ull
#define PRUNE_IDLE_MS 60000 /* between retention passes when nothing was left to delete */
#define CACHE_KIB                                                                                  \
	65536          /* page cache of the writer's connection: holds the hot index               \
	                  leaves (one per device, client, MAC and name) */
#define WAL_PAGES 8192 /* checkpoint after this many WAL pages (32 MB) */

struct logdb {
	char *path;
	uint32_t retention_days;
	uint32_t max_pages;

	sqlite3 *db; /* NULL while broken */
	sqlite3_stmt *ins, *ins_ev, *prune_q, *prune_ev;
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

	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t written;
};

static const char schema_sql[] =
        "CREATE TABLE queries ("
        " id INTEGER PRIMARY KEY,"
        " ts_ms INTEGER NOT NULL,"
        " client TEXT,"
        " proto TEXT NOT NULL,"
        " group_name TEXT,"
        " qname TEXT,"
        " rname TEXT,"
        " qtype TEXT,"
        " blocked INTEGER NOT NULL,"
        " list TEXT,"
        " rule TEXT,"
        " action TEXT NOT NULL,"
        " rcode TEXT NOT NULL,"
        " upstream TEXT,"
        " latency_us INTEGER NOT NULL,"
        " mac TEXT,"
        " device TEXT,"
        " vendor TEXT,"
        " vendor_source TEXT);"
        /* rows are appended in time order, so the id orders them by time: no time index
         * (logdb_query.c finds a time's id by bisection), and each index below is ordered by
         * (key, id), i.e. by time within a key */
        "CREATE INDEX queries_device ON queries(device) WHERE device IS NOT NULL;"
        "CREATE INDEX queries_mac ON queries(mac) WHERE mac IS NOT NULL;"
        "CREATE INDEX queries_client ON queries(client);"
        "CREATE INDEX queries_rname ON queries(rname);"
        /* covering for `veto report attempts` (an index-only scan of the blocked rows) */
        "CREATE INDEX queries_blocked ON queries(ts_ms, device, mac, client, qname, list,"
        " group_name, vendor, vendor_source, blocked) WHERE blocked = 1;"
        "CREATE TABLE device_events ("
        " id INTEGER PRIMARY KEY,"
        " ts_ms INTEGER NOT NULL,"
        " device TEXT,"
        " mac TEXT,"
        " client TEXT,"
        " kind TEXT NOT NULL,"
        " old_group TEXT,"
        " new_group TEXT,"
        " evidence TEXT);"
        "CREATE INDEX device_events_ts ON device_events(ts_ms);"
        "CREATE INDEX device_events_device ON device_events(device, ts_ms);";

static const char insert_sql[] =
        "INSERT INTO queries (ts_ms, client, proto, group_name, qname, rname, qtype, blocked, list,"
        " rule, action, rcode, upstream, latency_us, mac, device, vendor, vendor_source)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18)";

static const char insert_event_sql[] =
        "INSERT INTO device_events (ts_ms, device, mac, client, kind, old_group, new_group,"
        " evidence) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

static const char prune_sql[] =
        /* the rows are in time order by id (no time index): look at the oldest ?2 only */
        "DELETE FROM queries WHERE id IN (SELECT id FROM"
        " (SELECT id, ts_ms FROM queries ORDER BY id LIMIT ?2) WHERE ts_ms < ?1)";

static const char prune_events_sql[] =
        "DELETE FROM device_events WHERE id IN"
        " (SELECT id FROM device_events WHERE ts_ms < ?1 ORDER BY ts_ms LIMIT ?2)";

/* ---- names ---- */

int
logdb_rname(const char *name, char *buf, size_t cap)
{
	size_t n = strlen(name);
	size_t o = 0;

	if (n > 0 && name[n - 1] == '.')
		n--;
	if (n == 0) {
		if (cap < 2)
			return -ENOSPC;
		memcpy(buf, ".", 2);
		return 0;
	}
	if (cap < n + 2)
		return -ENOSPC;
	size_t end = n;
	for (;;) {
		size_t start = end;
		while (start > 0 && name[start - 1] != '.')
			start--;
		memcpy(buf + o, name + start, end - start);
		o += end - start;
		buf[o++] = '.';
		if (start == 0)
			break;
		end = start - 1;
	}
	buf[o] = '\0';
	return 0;
}

/* ---- connection ---- */

static void
close_db(struct logdb *db)
{
	sqlite3_finalize(db->ins);
	sqlite3_finalize(db->ins_ev);
	sqlite3_finalize(db->prune_q);
	sqlite3_finalize(db->prune_ev);
	db->ins = db->ins_ev = db->prune_q = db->prune_ev = NULL;
	if (db->db != NULL)
		sqlite3_close_v2(db->db);
	db->db = NULL;
	db->in_tx = false;
	db->tx_rows = 0;
}

/* Reports the start of a burst of failures and closes the connection; the next logdb_tick
 * schedules the reopen. */
static void
fail(struct logdb *db, const char *what, const char *why)
{
	if (!db->failing) {
		db->failing = true;
		db->lost_in_burst = 0;
		log_error("query database: '%s': %s: %s (queries are not stored until it works "
		          "again; DNS is not affected)",
		          db->path, what, why);
	}
	close_db(db);
	db->retry_set = false;
}

static void
drop(struct logdb *db, uint64_t n)
{
	atomic_fetch_add(&db->dropped, n);
	db->lost_in_burst += n;
}

static int
exec(sqlite3 *s, const char *sql)
{
	return sqlite3_exec(s, sql, NULL, NULL, NULL);
}

/* One integer from a query (PRAGMA user_version, counts). */
static int
query_int(sqlite3 *s, const char *sql, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_prepare_v2(s, sql, -1, &st, NULL);

	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = sqlite3_column_int64(st, 0);
			rc = SQLITE_OK;
		} else if (rc == SQLITE_DONE) {
			rc = SQLITE_ERROR;
		}
	}
	sqlite3_finalize(st);
	return rc;
}

/* The file is not a database: keep it aside for the administrator, start a new one. */
static void
set_aside(struct logdb *db)
{
	char aside[4096], side[4096];

	snprintf(aside, sizeof(aside), "%s.corrupt-%lld", db->path, (long long)time(NULL));
	if (rename(db->path, aside) != 0) {
		log_error("query database: '%s': not a database, and it cannot be renamed: %s",
		          db->path, strerror(errno));
		return;
	}
	for (int i = 0; i < 2; i++) {
		snprintf(side, sizeof(side), "%s%s", db->path, i == 0 ? "-wal" : "-shm");
		unlink(side);
	}
	log_error("query database: '%s': not a database: moved to '%s', starting a new one",
	          db->path, aside);
}

/* Schema 1 had ids in insertion order too, plus a time index that schema 2 does without; its
 * other indexes, (x, ts_ms), serve the same queries as schema 2's (x). Dropping the time index
 * is the whole migration (a few seconds for millions of rows, once). */
static int
migrate_v1(struct logdb *db)
{
	char sql[64];
	int rc = exec(db->db, "BEGIN IMMEDIATE");

	if (rc != SQLITE_OK)
		return rc;
	rc = exec(db->db, "DROP INDEX IF EXISTS queries_ts");
	if (rc == SQLITE_OK) {
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LOGDB_SCHEMA_VERSION);
		rc = exec(db->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = exec(db->db, "COMMIT");
	if (rc != SQLITE_OK) {
		exec(db->db, "ROLLBACK");
		return rc;
	}
	log_info("query database: '%s': schema 1 updated to %d (time index dropped)", db->path,
	         LOGDB_SCHEMA_VERSION);
	return SQLITE_OK;
}

/* Creates the schema in an empty database, or checks the version of an existing one. */
static int
check_schema(struct logdb *db, const char **why)
{
	int64_t version = 0, tables = 0;
	int rc;

	rc = query_int(db->db, "PRAGMA user_version", &version);
	if (rc != SQLITE_OK)
		return rc;
	if (version == LOGDB_SCHEMA_VERSION)
		return SQLITE_OK;
	if (version > LOGDB_SCHEMA_VERSION) {
		*why = "schema version is newer than this veto's (a newer veto wrote it)";
		return SQLITE_ERROR;
	}
	if (version == 1)
		return migrate_v1(db);
	rc = query_int(db->db, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc != SQLITE_OK)
		return rc;
	if (tables != 0) {
		*why = "not a veto query database (it has other tables)";
		return SQLITE_ERROR;
	}
	rc = exec(db->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return rc;
	rc = exec(db->db, schema_sql);
	if (rc == SQLITE_OK) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LOGDB_SCHEMA_VERSION);
		rc = exec(db->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = exec(db->db, "COMMIT");
	if (rc != SQLITE_OK)
		exec(db->db, "ROLLBACK");
	return rc;
}

/* Opens and prepares. Returns true on success; on failure reports (once per burst). */
static bool
open_db(struct logdb *db, bool may_set_aside)
{
	const char *why = NULL;
	char pragma[80];
	int rc;

	rc = sqlite3_open_v2(db->path, &db->db,
	                     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
	                     NULL);
	if (rc != SQLITE_OK)
		goto failed;
	sqlite3_extended_result_codes(db->db, 1);
	sqlite3_busy_timeout(db->db, LOGDB_BUSY_MS);
	if (sqlite3_db_readonly(db->db, "main") == 1) {
		why = "the file is read-only";
		goto failed;
	}
	rc = exec(db->db, "PRAGMA journal_mode = WAL");
	if (rc != SQLITE_OK)
		goto failed;
	rc = exec(db->db, "PRAGMA synchronous = NORMAL");
	if (rc != SQLITE_OK)
		goto failed;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d", CACHE_KIB);
	exec(db->db, pragma);
	exec(db->db, "PRAGMA journal_size_limit = 67108864");
	snprintf(pragma, sizeof(pragma), "PRAGMA wal_autocheckpoint = %d", WAL_PAGES);
	exec(db->db, pragma);
	exec(db->db, "PRAGMA mmap_size = 268435456");
	if (db->max_pages > 0) {
		snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count = %u",
		         (unsigned)db->max_pages);
		exec(db->db, pragma);
	}
	rc = check_schema(db, &why);
	if (rc != SQLITE_OK)
		goto failed;
	rc = sqlite3_prepare_v3(db->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &db->ins, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, insert_event_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->ins_ev, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, prune_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->prune_q, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, prune_events_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->prune_ev, NULL);
	if (rc != SQLITE_OK)
		goto failed;
	if (db->failing) {
		db->failing = false;
		log_warning("query database: '%s': writing again; %llu queries were not stored",
		            db->path, (unsigned long long)db->lost_in_burst);
	} else {
		log_info("query database: '%s': open", db->path);
	}
	db->backoff_ms = 0;
	db->retry_set = false;
	return true;

failed:
	if (why == NULL)
		why = db->db != NULL ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc);
	if ((rc & 0xff) == SQLITE_NOTADB && may_set_aside) {
		close_db(db);
		set_aside(db);
		return open_db(db, false);
	}
	fail(db, "cannot open", why);
	return false;
}

/* ---- public ---- */

int
logdb_new(const struct logdb_options *opt, struct logdb **out)
{
	struct logdb *db = calloc(1, sizeof(*db));

	if (db == NULL)
		return -ENOMEM;
	db->path = strdup(opt->path);
	if (db->path == NULL) {
		free(db);
		return -ENOMEM;
	}
	db->retention_days = opt->retention_days;
	db->max_pages = opt->max_pages;
	open_db(db, true);
	*out = db;
	return 0;
}

void
logdb_free(struct logdb **dbp)
{
	struct logdb *db = *dbp;

	if (db == NULL)
		return;
	logdb_commit(db);
	if (db->failing && db->lost_in_burst > 0)
		log_warning("query database: '%s': %llu queries were not stored", db->path,
		            (unsigned long long)db->lost_in_burst);
	close_db(db);
	free(db->path);
	free(db);
	*dbp = NULL;
}

static bool
begin(struct logdb *db)
{
	if (db->in_tx)
		return true;
	int rc = exec(db->db, "BEGIN");
	if (rc != SQLITE_OK) {
		fail(db, "cannot write", sqlite3_errmsg(db->db));
		return false;
	}
	db->in_tx = true;
	db->tx_rows = 0;
	db->tx_start = db->last_mono;
	return true;
}

/* A failed statement: the transaction's rows and this one are dropped. */
static int
step_failed(struct logdb *db, sqlite3_stmt *st, int rc)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->db));
	if (rc == SQLITE_DONE)
		snprintf(why, sizeof(why), "%s", sqlite3_errstr(rc));
	sqlite3_reset(st);
	drop(db, (uint64_t)db->tx_rows + 1);
	db->tx_rows = 0;
	exec(db->db, "ROLLBACK");
	fail(db, "cannot write", why);
	return -EIO;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

int
logdb_add(struct logdb *db, const struct querylog_record *r)
{
	struct querylog_text t;
	char rname[NAMES_MAX_TEXT + 2];
	sqlite3_stmt *st = db->ins;
	int rc;

	if (db->db == NULL || !begin(db)) {
		drop(db, 1);
		return -EIO;
	}
	querylog_text(r, &t);
	if (t.qname[0] == '\0' || logdb_rname(t.qname, rname, sizeof(rname)) != 0)
		rname[0] = '\0';
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->ts_ms);
	bind_text(st, 2, t.client);
	bind_text(st, 3, r->tcp ? "tcp" : "udp");
	bind_text(st, 4, t.group);
	bind_text(st, 5, t.qname);
	bind_text(st, 6, rname);
	bind_text(st, 7, t.qtype);
	sqlite3_bind_int(st, 8, r->blocked ? 1 : 0);
	bind_text(st, 9, t.list);
	bind_text(st, 10, t.rule);
	bind_text(st, 11, querylog_action_name(r->action));
	bind_text(st, 12, t.rcode);
	bind_text(st, 13, t.upstream);
	sqlite3_bind_int64(st, 14, r->latency_us);
	bind_text(st, 15, t.mac);
	bind_text(st, 16, t.device);
	bind_text(st, 17, t.vendor);
	bind_text(st, 18, querylog_vendor_source_name(r->vendor_source));
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return step_failed(db, st, rc);
	sqlite3_reset(st);
	db->tx_rows++;
	if (db->tx_rows >= LOGDB_BATCH_ROWS)
		return logdb_commit(db);
	return 0;
}

int
logdb_add_event(struct logdb *db, const struct logdb_event *ev)
{
	sqlite3_stmt *st;
	int rc;

	if (db->db == NULL || !begin(db)) {
		drop(db, 1);
		return -EIO;
	}
	st = db->ins_ev;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)ev->ts_ms);
	bind_text(st, 2, ev->device);
	bind_text(st, 3, ev->mac);
	bind_text(st, 4, ev->client);
	bind_text(st, 5, ev->kind != NULL ? ev->kind : "unknown");
	bind_text(st, 6, ev->old_group);
	bind_text(st, 7, ev->new_group);
	bind_text(st, 8, ev->evidence);
	rc = sqlite3_step(st);
	if (rc != SQLITE_DONE)
		return step_failed(db, st, rc);
	sqlite3_reset(st);
	db->tx_rows++;
	if (db->tx_rows >= LOGDB_BATCH_ROWS)
		return logdb_commit(db);
	return 0;
}

int
logdb_commit(struct logdb *db)
{
	if (db->db == NULL || !db->in_tx)
		return 0;
	int rc = exec(db->db, "COMMIT");
	if (rc != SQLITE_OK) {
		char why[256];
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->db));
		drop(db, db->tx_rows);
		exec(db->db, "ROLLBACK");
		fail(db, "cannot write", why);
		return -EIO;
	}
	atomic_fetch_add(&db->written, db->tx_rows);
	db->in_tx = false;
	db->tx_rows = 0;
	return 0;
}

int
logdb_prune(struct logdb *db, uint64_t wall_ms, uint64_t *deleted)
{
	uint64_t total = 0;
	int rc;

	if (db->db == NULL)
		return -EAGAIN;
	if (db->retention_days == 0) {
		*deleted = 0;
		return 0;
	}
	if (logdb_commit(db) != 0)
		return -EIO;
	uint64_t keep = (uint64_t)db->retention_days * DAY_MS;
	sqlite3_int64 cutoff = wall_ms > keep ? (sqlite3_int64)(wall_ms - keep) : 0;
	sqlite3_stmt *sts[2] = {db->prune_q, db->prune_ev};
	for (int i = 0; i < 2; i++) {
		sqlite3_stmt *st = sts[i];
		sqlite3_bind_int64(st, 1, cutoff);
		sqlite3_bind_int(st, 2, LOGDB_PRUNE_ROWS);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE) {
			fail(db, "retention", sqlite3_errmsg(db->db));
			return -EIO;
		}
		total += (uint64_t)sqlite3_changes(db->db);
	}
	*deleted = total;
	return 0;
}

void
logdb_tick(struct logdb *db, uint64_t mono_ms, uint64_t wall_ms)
{
	db->last_mono = mono_ms;
	if (db->in_tx && mono_ms - db->tx_start >= LOGDB_COMMIT_MS)
		logdb_commit(db);
	if (db->reopen) {
		db->reopen = false;
		logdb_commit(db);
		close_db(db);
		db->backoff_ms = 0;
		open_db(db, true);
		return;
	}
	if (db->db == NULL) {
		if (!db->retry_set) {
			db->backoff_ms = db->backoff_ms == 0 ? LOGDB_RETRY_MIN_MS
			                 : db->backoff_ms * 2 > LOGDB_RETRY_MAX_MS
			                         ? LOGDB_RETRY_MAX_MS
			                         : db->backoff_ms * 2;
			db->retry_at = mono_ms + db->backoff_ms;
			db->retry_set = true;
			return;
		}
		if (mono_ms < db->retry_at)
			return;
		open_db(db, true);
		return;
	}
	/* retention between transactions, so that it never delays a commit */
	if (db->retention_days > 0 && !db->in_tx && mono_ms >= db->next_prune) {
		uint64_t n = 0;
		if (logdb_prune(db, wall_ms, &n) != 0)
			return;
		/* more to delete: another step at the next tick, else rest a while. A step looks
		 * at the oldest LOGDB_PRUNE_ROWS rows by id (prune_sql), so it may delete fewer
		 * with more to come: anything deleted means try again. */
		db->next_prune = n > 0 ? mono_ms : mono_ms + PRUNE_IDLE_MS;
		if (n > 0)
			log_debug("query database: '%s': retention: %llu rows deleted", db->path,
			          (unsigned long long)n);
	}
}

void
logdb_reopen(struct logdb *db)
{
	db->reopen = true;
}

void
logdb_set_max_pages(struct logdb *db, uint32_t max_pages)
{
	db->max_pages = max_pages;
	if (db->db != NULL) {
		char pragma[80];
		/* 0 cannot be set back: use the largest limit instead */
		snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count = %u",
		         max_pages > 0 ? (unsigned)max_pages : 4294967294u);
		exec(db->db, pragma);
	}
}

bool
logdb_is_open(const struct logdb *db)
{
	return db->db != NULL;
}

uint64_t
logdb_dropped(const struct logdb *db)
{
	return atomic_load(&db->dropped);
}

uint64_t
logdb_written(const struct logdb *db)
{
	return atomic_load(&db->written);
}
