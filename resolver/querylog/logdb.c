/*
 * logdb: the writer side of the SQLite query store (see logdb.h).
 *
 * One connection, owned by the querylog writer thread. A row's dictionary ids are found or
 * added at once; the row itself waits in logdb_batch.c and goes into the open transaction with
 * the next multi-row INSERT, at the latest when logdb_commit() (from logdb_tick, once the
 * transaction is LOGDB_COMMIT_MS old) or the LOGDB_BATCH_ROWS-th row ends it. Any SQLite error on
 * the write path closes the connection: the rows of the transaction are dropped and counted, the
 * problem is logged once, and logdb_tick() reopens after a backoff, which also brings back a
 * database whose page limit, permissions or disk space changed in the meantime.
 */
#include "logdb.h"
#include "logdb_int.h"

#include <errno.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"

#define PRUNE_IDLE_MS 60000 /* between retention passes when nothing was left to delete */
#define CACHE_KIB                                                                                  \
	65536 /* page cache of the writer's connection: holds the hot index                        \
	         leaves (one per device, client, MAC and name) */
/* the writer's memory of dictionary ids: entries and key bytes (about 9 MB in all) */
#define SOURCES_MAX   16384
#define SOURCES_ARENA (1u << 20)
#define NAMES_MAX     131072
#define NAMES_ARENA   (4u << 20)
#define TEXTS_MAX     16384
#define TEXTS_ARENA   (1u << 20)

static const char insert_sql[] =
        "INSERT INTO queries (id, ts_ms, source, name, qtype, proto, blocked, list, rule, action,"
        " rcode, upstream, latency_us)"
        " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)";

/* Per dictionary (enum logdb_dict_kind): find, and add. The parameters are the same for both:
 * sources ?1..?6 (client, mac, device, group, vendor, vendor source); names ?1 qname, ?2
 * rname; texts ?1. */
static const char *const dict_sel_sql[LOGDB_NDICTS] = {
        ("SELECT id FROM sources WHERE client IS ?1 AND mac IS ?2 AND device IS ?3"
         " AND group_name IS ?4 AND vendor IS ?5 AND vendor_source IS ?6"),
        "SELECT id FROM names WHERE rname = ?2",
        "SELECT id FROM texts WHERE text = ?1",
};
static const char *const dict_ins_sql[LOGDB_NDICTS] = {
        ("INSERT INTO sources (client, mac, device, group_name, vendor, vendor_source)"
         " VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
        /* UNIQUE keys: tried first, found only when ignored (a new name costs one statement) */
        "INSERT OR IGNORE INTO names (qname, rname) VALUES (?1, ?2)",
        "INSERT OR IGNORE INTO texts (text) VALUES (?1)",
};

static const char insert_event_sql[] =
        "INSERT INTO device_events (ts_ms, device, mac, client, kind, old_group, new_group,"
        " evidence, vendor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)";

/* Forwarded queries the writer could not store one by one (it fell behind): one row per
 * interval with their exact number. */
static const char create_unlogged_sql[] =
        "CREATE TABLE IF NOT EXISTS unlogged (id INTEGER PRIMARY KEY, since_ms INTEGER NOT NULL,"
        " ts_ms INTEGER NOT NULL, forwarded INTEGER NOT NULL)";
static const char insert_unlogged_sql[] =
        "INSERT INTO unlogged (since_ms, ts_ms, forwarded) VALUES (?1, ?2, ?3)";

/* ---- connection ---- */

static void
close_db(struct logdb *db)
{
	sqlite3_stmt **sts[] = {&db->ins,      &db->ins_ev,        &db->ins_unl,       &db->prune_q,
	                        &db->prune_ev, &db->dict_prune[0], &db->dict_prune[1], &db->mig_sel,
	                        &db->mig_del,  &db->ins_many};

	for (size_t i = 0; i < sizeof(sts) / sizeof(sts[0]); i++) {
		sqlite3_finalize(*sts[i]);
		*sts[i] = NULL;
	}
	for (int k = 0; k < LOGDB_NDICTS; k++) {
		sqlite3_finalize(db->dict_sel[k]);
		sqlite3_finalize(db->dict_ins[k]);
		db->dict_sel[k] = db->dict_ins[k] = NULL;
		/* the ids of a rolled-back transaction are not in the file */
		logdb_dict_clear(&db->dicts[k]);
	}
	memset(db->last_text, 0, sizeof(db->last_text));
	memset(db->keycache, 0, sizeof(db->keycache));
	logdb_rollup_finalize(db); /* and forget the counts of a rolled-back transaction */
	for (int k = 0; k < 4; k++) {
		sqlite3_finalize(db->prune_ru[k]);
		db->prune_ru[k] = NULL;
	}
	if (db->ckpt_started) /* first: the writer's close is then the last (logdb.h) */
		logdb_ckpt_stop(&db->ckpt, db->db);
	db->ckpt_started = false;
	if (db->db != NULL)
		sqlite3_close_v2(db->db);
	db->db = NULL;
	db->in_tx = false;
	db->tx_rows = 0;
	db->npend = 0; /* counted in tx_rows, dropped with the transaction */
	db->dict_pass = 0;
}

/* Reports the start of a burst of failures and closes the connection; the next logdb_tick
 * schedules the reopen. */
void
logdb_fail(struct logdb *db, const char *what, const char *why)
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

int
logdb_exec(sqlite3 *s, const char *sql)
{
	return sqlite3_exec(s, sql, NULL, NULL, NULL);
}

/* The file is not a database: keep it aside for the administrator, start a new one. */
static void
set_aside(struct logdb *db)
{
	char aside[4096];
	int rc = fileio_set_aside(db->path, aside, sizeof(aside));

	if (rc != 0) {
		log_error("query database: '%s': not a database, and it cannot be renamed: %s",
		          db->path, strerror(-rc));
		return;
	}
	log_error("query database: '%s': not a database: moved to '%s', starting a new one",
	          db->path, aside);
}

/* Creates the schema in an empty database, or checks the version of an existing one. */
static int
check_schema(struct logdb *db, const char **why)
{
	int64_t version = 0, tables = 0;
	int rc;

	rc = logdb_query_int(db->db, "PRAGMA user_version", &version);
	if (rc != SQLITE_OK)
		return rc;
	if (version == LOGDB_SCHEMA_VERSION)
		return SQLITE_OK;
	if (version > LOGDB_SCHEMA_VERSION) {
		*why = "schema version is newer than this veto's (a newer veto wrote it)";
		return SQLITE_ERROR;
	}
	if (version == 1 || version == 2)
		return logdb_migrate_begin(db, version);
	if (version == 3)
		return logdb_migrate_rollups(db);
	rc = logdb_query_int(db->db, "SELECT count(*) FROM sqlite_master", &tables);
	if (rc != SQLITE_OK)
		return rc;
	if (tables != 0) {
		*why = "not a veto query database (it has other tables)";
		return SQLITE_ERROR;
	}
	rc = logdb_exec(db->db, "BEGIN IMMEDIATE");
	if (rc != SQLITE_OK)
		return rc;
	rc = logdb_exec(db->db, logdb_schema_sql);
	if (rc == SQLITE_OK) {
		char sql[64];
		snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", LOGDB_SCHEMA_VERSION);
		rc = logdb_exec(db->db, sql);
	}
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "COMMIT");
	if (rc != SQLITE_OK)
		logdb_exec(db->db, "ROLLBACK");
	return rc;
}

/* device_events.vendor came after the first schema-3 files: added to a file without it (the
 * reader reads such a file with NULL vendors). */
static int
add_event_vendor(sqlite3 *s)
{
	bool has;
	int rc = logdb_has_event_vendor(s, &has);

	if (rc == SQLITE_OK && !has)
		rc = logdb_exec(s, "ALTER TABLE device_events ADD COLUMN vendor TEXT");
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
	rc = logdb_exec(db->db, "PRAGMA journal_mode = WAL");
	if (rc != SQLITE_OK)
		goto failed;
	rc = logdb_exec(db->db, "PRAGMA synchronous = NORMAL");
	if (rc != SQLITE_OK)
		goto failed;
	snprintf(pragma, sizeof(pragma), "PRAGMA cache_size = -%d", CACHE_KIB);
	logdb_exec(db->db, pragma);
	logdb_exec(db->db, "PRAGMA journal_size_limit = 67108864");
	logdb_exec(db->db, "PRAGMA mmap_size = 268435456");
	if (db->max_pages > 0) {
		snprintf(pragma, sizeof(pragma), "PRAGMA max_page_count = %u",
		         (unsigned)db->max_pages);
		logdb_exec(db->db, pragma);
	}
	rc = check_schema(db, &why);
	/* After the conversions at open (their GROUP BYs sort millions of rows: with temp_store
	 * MEMORY the sorter would never spill to disk): statement journals in memory. The
	 * multi-row rollup upserts (logdb_rollup.c) need one (ON CONFLICT DO UPDATE aborts, it
	 * cannot FAIL), and past 64 KiB SQLite spills it to a temporary file in /var/tmp: 139,000
	 * pwrite calls per 200,000 rows of the soak's mix, a third of the writer's CPU in the
	 * kernel. In memory a statement's journal is the pages that statement touched (at most
	 * LOGDB_ROLLUP_MANY keys: about 1 MB), freed when it ends. Read at each BEGIN. */
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "PRAGMA temp_store = MEMORY");
	if (rc == SQLITE_OK)
		rc = add_event_vendor(db->db);
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, create_unlogged_sql);
	if (rc != SQLITE_OK)
		goto failed;
	rc = sqlite3_prepare_v3(db->db, insert_sql, -1, SQLITE_PREPARE_PERSISTENT, &db->ins, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, insert_event_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->ins_ev, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v3(db->db, insert_unlogged_sql, -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->ins_unl, NULL);
	if (rc == SQLITE_OK)
		rc = logdb_retention_prepare(db);
	for (int k = 0; k < LOGDB_NDICTS && rc == SQLITE_OK; k++) {
		rc = sqlite3_prepare_v3(db->db, dict_sel_sql[k], -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->dict_sel[k], NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_prepare_v3(db->db, dict_ins_sql[k], -1,
			                        SQLITE_PREPARE_PERSISTENT, &db->dict_ins[k], NULL);
	}
	if (rc == SQLITE_OK)
		rc = logdb_batch_prepare(db);
	if (rc == SQLITE_OK)
		rc = logdb_rollup_prepare(db);
	if (rc == SQLITE_OK)
		rc = logdb_migrate_pending(db, &db->migrating);
	if (rc == SQLITE_OK && db->migrating)
		rc = logdb_migrate_prepare(db);
	if (rc != SQLITE_OK)
		goto failed;
	/* wal_autocheckpoint 0: the checkpoint thread copies the WAL (logdb_ckpt.c) */
	logdb_ckpt_start(&db->ckpt, db->db, db->path, db->wal_pages, db->ckpt_thread);
	db->ckpt_started = true;
	/* after a failure, opening proves little (a full disk opens fine): the backoff and the
	 * burst end with the first commit that works (logdb_commit) */
	if (!db->failing)
		log_info("query database: '%s': open", db->path);
	db->retry_set = false;
	/* the newest old rows first, before any new one: new ids continue above theirs */
	if (db->migrating && logdb_migrate_step(db, LOGDB_MIGRATE_ROWS) != 0)
		return false;
	return true;

failed:
	if (why == NULL)
		why = db->db != NULL ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc);
	if ((rc & 0xff) == SQLITE_NOTADB && may_set_aside) {
		close_db(db);
		set_aside(db);
		return open_db(db, false);
	}
	logdb_fail(db, "cannot open", why);
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
	db->wal_pages = opt->wal_pages > 0 ? opt->wal_pages : LOGDB_WAL_PAGES;
	db->ckpt_thread = !opt->no_ckpt_thread;
	static const size_t dict_size[LOGDB_NDICTS][2] = {
	        [LOGDB_SOURCES] = {SOURCES_MAX, SOURCES_ARENA},
	        [LOGDB_NAMES] = {NAMES_MAX, NAMES_ARENA},
	        [LOGDB_TEXTS] = {TEXTS_MAX, TEXTS_ARENA},
	};
	for (int k = 0; k < LOGDB_NDICTS; k++) {
		if (logdb_dict_init(&db->dicts[k], dict_size[k][0], dict_size[k][1]) != 0) {
			for (int j = 0; j < k; j++)
				logdb_dict_free(&db->dicts[j]);
			free(db->path);
			free(db);
			return -ENOMEM;
		}
	}
	if (logdb_rollup_init(&db->rollup) != 0) {
		for (int k = 0; k < LOGDB_NDICTS; k++)
			logdb_dict_free(&db->dicts[k]);
		free(db->path);
		free(db);
		return -ENOMEM;
	}
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
	for (int k = 0; k < LOGDB_NDICTS; k++)
		logdb_dict_free(&db->dicts[k]);
	logdb_rollup_free(&db->rollup);
	free(db->path);
	free(db);
	*dbp = NULL;
}

static bool
begin(struct logdb *db)
{
	if (db->in_tx)
		return true;
	int rc = logdb_exec(db->db, "BEGIN");
	if (rc != SQLITE_OK) {
		logdb_fail(db, "cannot write", sqlite3_errmsg(db->db));
		return false;
	}
	db->in_tx = true;
	db->tx_rows = 0;
	db->tx_start = db->last_mono;
	return true;
}

/* A failed statement (already reset): the transaction's rows and this one are dropped. */
static int
step_failed(struct logdb *db, int rc)
{
	char why[256];

	snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->db));
	if (rc == SQLITE_DONE || rc == SQLITE_ROW)
		snprintf(why, sizeof(why), "%s", sqlite3_errstr(rc));
	uint64_t lost = (uint64_t)db->tx_rows + 1;
	logdb_exec(db->db, "ROLLBACK");
	logdb_fail(db, "cannot write", why); /* a burst starts here: count after */
	drop(db, lost);
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

/* Adds an entry whose key is UNIQUE (names, texts): its new id, or 0 when it exists. */
static int
dict_insert_new(struct logdb *db, enum logdb_dict_kind k, const char *const *fields, int nfields,
                sqlite3_int64 *id)
{
	sqlite3_stmt *st = db->dict_ins[k];

	for (int i = 0; i < nfields; i++)
		bind_text(st, i + 1, fields[i]);
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	*id = sqlite3_changes(db->db) > 0 ? sqlite3_last_insert_rowid(db->db) : 0;
	return SQLITE_OK;
}

/* The id of a dictionary entry that is not in memory: found, or added to the open
 * transaction; then remembered under key (NULL: not remembered). fields bind ?1, ?2... of both
 * statements. Names and texts are inserted first (most misses are new names), sources looked
 * up first (no UNIQUE key over six nullable columns). An SQLite result code. */
int
logdb_dict_fetch(struct logdb *db, enum logdb_dict_kind k, const char *const *fields, int nfields,
                 const char *key, size_t keylen, uint64_t hash, sqlite3_int64 *out)
{
	sqlite3_stmt *st = db->dict_sel[k];
	sqlite3_int64 id = 0;
	int rc;

	if (k != LOGDB_SOURCES) {
		rc = dict_insert_new(db, k, fields, nfields, &id);
		if (rc != SQLITE_OK)
			return rc;
		if (id > 0)
			goto found;
	}
	for (int i = 0; i < nfields; i++)
		bind_text(st, i + 1, fields[i]);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		id = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return rc;
	if (id == 0 && k != LOGDB_SOURCES)
		return SQLITE_CONSTRAINT; /* ignored, yet not there: a NULL key */
	if (id == 0) {
		st = db->dict_ins[k];
		for (int i = 0; i < nfields; i++)
			bind_text(st, i + 1, fields[i]);
		rc = sqlite3_step(st);
		sqlite3_reset(st);
		if (rc != SQLITE_DONE)
			return rc;
		id = sqlite3_last_insert_rowid(db->db);
	}
found:
	if (key != NULL)
		logdb_dict_put(&db->dicts[k], hash, key, keylen, id);
	*out = id;
	return SQLITE_OK;
}

int
logdb_text_id(struct logdb *db, const char *text, sqlite3_int64 *out)
{
	*out = 0;
	if (text == NULL || text[0] == '\0')
		return SQLITE_OK;
	size_t n = strlen(text);
	uint64_t h = logdb_dict_hash(&db->dicts[LOGDB_TEXTS], text, n);
	*out = logdb_dict_get(&db->dicts[LOGDB_TEXTS], h, text, n);
	if (*out > 0)
		return SQLITE_OK;
	return logdb_dict_fetch(db, LOGDB_TEXTS, &text, 1, text, n, h, out);
}

int
logdb_name_id(struct logdb *db, const char *qname, const char *key, size_t keylen, uint64_t hash,
              sqlite3_int64 *out)
{
	char rname[NAMES_MAX_TEXT + 2];

	*out = 0;
	if (qname == NULL || qname[0] == '\0')
		return SQLITE_OK;
	if (key == NULL) {
		key = qname;
		keylen = strlen(qname);
		hash = logdb_dict_hash(&db->dicts[LOGDB_NAMES], key, keylen);
		*out = logdb_dict_get(&db->dicts[LOGDB_NAMES], hash, key, keylen);
		if (*out > 0)
			return SQLITE_OK;
	}
	if (logdb_rname(qname, rname, sizeof(rname)) != 0)
		return SQLITE_OK;
	const char *name_fields[2] = {qname, rname};
	return logdb_dict_fetch(db, LOGDB_NAMES, name_fields, 2, key, keylen, hash, out);
}

/* "client\x1fmac\x1fdevice\x1fgroup\x1fvendor\x1fsource" (NULL and "" alike). Its length, or 0
 * when it does not fit (the source is then looked up in the database every time). */
static size_t
source_key(const char *const *f, char *buf, size_t cap)
{
	size_t o = 0;

	for (int i = 0; i < 6; i++) {
		size_t n = f[i] != NULL ? strlen(f[i]) : 0;
		if (o + n + 1 > cap)
			return 0;
		memcpy(buf + o, f[i] != NULL ? f[i] : "", n);
		o += n;
		buf[o++] = '\x1f';
	}
	return o;
}

/* The values of row's columns (LOGDB_ROW_VALUES), its dictionary entries found or added. */
static int
row_values(struct logdb *db, const struct logdb_row *row, sqlite3_int64 *v)
{
	const char *src_fields[6] = {row->client, row->mac,    row->device,
	                             row->group,  row->vendor, row->vendor_source};
	const char *texts[7] = {row->qtype,  row->proto, row->list,    row->rule,
	                        row->action, row->rcode, row->upstream};
	char key[1024];
	sqlite3_int64 src = 0, name = 0, tid[7];
	uint64_t h = 0;
	int rc = SQLITE_OK;

	size_t n = source_key(src_fields, key, sizeof(key));
	if (n > 0) {
		h = logdb_dict_hash(&db->dicts[LOGDB_SOURCES], key, n);
		src = logdb_dict_get(&db->dicts[LOGDB_SOURCES], h, key, n);
	}
	if (src == 0)
		rc = logdb_dict_fetch(db, LOGDB_SOURCES, src_fields, 6, n > 0 ? key : NULL, n, h,
		                      &src);
	if (rc == SQLITE_OK)
		rc = logdb_name_id(db, row->qname, NULL, 0, 0, &name);
	for (int i = 0; i < 7 && rc == SQLITE_OK; i++) {
		if (texts[i] == NULL || texts[i][0] == '\0') {
			tid[i] = 0;
			continue;
		}
		if (db->last_text[i].id > 0 && strcmp(db->last_text[i].text, texts[i]) == 0) {
			tid[i] = db->last_text[i].id;
			continue;
		}
		rc = logdb_text_id(db, texts[i], &tid[i]);
		size_t len = strlen(texts[i]);
		if (rc == SQLITE_OK && len < sizeof(db->last_text[i].text)) {
			memcpy(db->last_text[i].text, texts[i], len + 1);
			db->last_text[i].id = tid[i];
		}
	}
	if (rc != SQLITE_OK)
		return rc;
	v[0] = row->id > 0 ? row->id : 0;
	v[1] = (sqlite3_int64)row->ts_ms;
	v[2] = src;
	v[3] = name;
	v[4] = tid[0]; /* qtype */
	v[5] = tid[1]; /* proto */
	v[6] = row->blocked ? 1 : 0;
	for (int i = 2; i < 7; i++)
		v[5 + i] = tid[i]; /* list, rule, action, rcode, upstream */
	v[12] = row->latency_us;
	return SQLITE_OK;
}

int
logdb_insert_row(struct logdb *db, const struct logdb_row *row)
{
	sqlite3_int64 v[LOGDB_ROW_VALUES];
	sqlite3_stmt *st = db->ins;
	int rc = row_values(db, row, v);

	if (rc != SQLITE_OK)
		return rc;
	logdb_bind_values(st, 1, v, 0, LOGDB_ROW_VALUES);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return rc;
	return logdb_rollup_add(db, v, v[0] > 0 ? v[0] : sqlite3_last_insert_rowid(db->db));
}

int
logdb_insert_row_later(struct logdb *db, const struct logdb_row *row)
{
	sqlite3_int64 v[LOGDB_ROW_VALUES];
	int rc = row_values(db, row, v);

	if (rc != SQLITE_OK)
		return rc;
	v[0] = 0; /* the next id */
	return logdb_batch_add(db, v);
}

int
logdb_add(struct logdb *db, const struct querylog_record *r)
{
	sqlite3_int64 v[LOGDB_ROW_VALUES];
	int rc;

	if (db->db == NULL || !begin(db)) {
		drop(db, 1);
		return -EIO;
	}
	/* the ids from the record's octets, its text only for what is not in memory
	   (logdb_record.c) */
	rc = logdb_record_values(db, r, v);
	if (rc == SQLITE_OK)
		rc = logdb_batch_add(db, v); /* step_failed counts this row */
	if (rc != SQLITE_OK)
		return step_failed(db, rc);
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
	bind_text(st, 9, ev->vendor);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return step_failed(db, rc);
	db->tx_rows++;
	if (db->tx_rows >= LOGDB_BATCH_ROWS)
		return logdb_commit(db);
	return 0;
}

/* A commit worked: a burst of failures is over. Reported once, with its loss. */
static void
recovered(struct logdb *db)
{
	if (!db->failing)
		return;
	db->failing = false;
	db->backoff_ms = 0;
	log_warning("query database: '%s': writing again; %llu records not stored while the "
	            "database failed",
	            db->path, (unsigned long long)db->lost_in_burst);
	db->lost_in_burst = 0;
}

int
logdb_add_unlogged(struct logdb *db, uint64_t since_ms, uint64_t ts_ms, uint64_t forwarded)
{
	sqlite3_stmt *st;
	int rc;

	if (db->db == NULL || !begin(db)) {
		drop(db, 1);
		return -EIO;
	}
	st = db->ins_unl;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)since_ms);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)ts_ms);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)forwarded);
	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return step_failed(db, rc);
	db->tx_rows++;
	return 0;
}

int
logdb_commit(struct logdb *db)
{
	if (db->db == NULL || !db->in_tx)
		return 0;
	int rc = logdb_batch_flush(db);
	if (rc == SQLITE_OK)
		rc = logdb_rollup_flush(db); /* in the transaction of the rows they count */
	if (rc == SQLITE_OK)
		rc = logdb_exec(db->db, "COMMIT");
	if (rc != SQLITE_OK) {
		char why[256];
		snprintf(why, sizeof(why), "%s", sqlite3_errmsg(db->db));
		uint64_t lost = db->tx_rows;
		logdb_exec(db->db, "ROLLBACK");
		logdb_fail(db, "cannot write", why); /* a burst starts here: count after */
		drop(db, lost);
		return -EIO;
	}
	atomic_fetch_add(&db->written, db->tx_rows);
	db->in_tx = false;
	db->tx_rows = 0;
	recovered(db);
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
	/* schema conversion, retention and the dictionaries between transactions, so that
	 * they never delay a commit; one step per tick */
	if (db->in_tx)
		return;
	if (db->migrating) {
		logdb_migrate_step(db, LOGDB_MIGRATE_ROWS);
		return;
	}
	if (db->dict_pass != 0) {
		logdb_dict_prune_step(db);
		return;
	}
	if (db->retention_days > 0 && mono_ms >= db->next_prune) {
		uint64_t n = 0;
		if (logdb_prune(db, wall_ms, &n) != 0)
			return;
		/* more to delete: another step at the next tick, else rest a while. A step looks
		 * at the oldest LOGDB_PRUNE_ROWS rows by id (prune_sql), so it may delete fewer
		 * with more to come: anything deleted means try again. */
		db->next_prune = n > 0 ? mono_ms : mono_ms + PRUNE_IDLE_MS;
		db->pruned += n;
		if (n > 0)
			log_debug("query database: '%s': retention: %llu rows deleted", db->path,
			          (unsigned long long)n);
		else if (db->pruned > 0)
			logdb_dict_prune_start(
			        db); /* a pass over sources and names, step by step */
	}
}

void
logdb_reopen(struct logdb *db)
{
	db->reopen = true;
}

void
logdb_set_retention(struct logdb *db, uint32_t retention_days)
{
	db->retention_days = retention_days;
	db->next_prune = 0;
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
		logdb_exec(db->db, pragma);
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
