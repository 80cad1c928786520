/*
 * logdb_rollup: the writer's hourly rollups (schema 4, logdb_schema.h).
 *
 * Every row that goes into queries is also counted here, in memory, under its hour and the
 * dimensions the readers group and filter by: (hour, source, list, action, blocked) for
 * rollup_sources, (name, hour, list, action, blocked) for rollup_names, and the first and last
 * id of each hour with its rows and blocked rows for rollup_hours; rollup_days (the same as
 * rollup_sources per UTC day) is added up from the sources' keys when they are upserted
 * (fold_days), one probe per key instead of one per row. The counts are added to the tables (one
 * upsert per distinct key) before the transaction that holds the rows commits (logdb_commit), or
 * earlier in the same transaction when a map is full: rows and rollups are committed, or rolled
 * back, together.
 *
 * The maps are open-addressing hash tables allocated once (logdb_rollup_init): nothing is
 * allocated per row. A map is upserted in the order of its table's primary key (sorted at the
 * flush): consecutive keys of a statement share B-tree pages, so each statement touches (and
 * copies into its statement journal) a few pages instead of one per key.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "logdb_int.h"

#define HOUR_MS 3600000
#define DAY_MS  86400000

/* The head and the conflict clause of the multi-row upserts of sources and names: one
 * statement for LOGDB_ROLLUP_MANY keys pays the statement's start and end once. */
static const char *const many_sql[LOGDB_ROLLUP_HOURS][2] = {
        [LOGDB_ROLLUP_SOURCES] = {"INSERT INTO rollup_sources (hour, source, list, action,"
                                  " blocked, n) VALUES ",
                                  " ON CONFLICT (hour, source, list, action, blocked)"
                                  " DO UPDATE SET n = n + excluded.n"},
        [LOGDB_ROLLUP_NAMES] = {"INSERT INTO rollup_names (name, hour, list, action, blocked,"
                                " n) VALUES ",
                                " ON CONFLICT (name, hour, list, action, blocked)"
                                " DO UPDATE SET n = n + excluded.n"},
        [LOGDB_ROLLUP_DAYS] = {"INSERT INTO rollup_days (day, source, list, action, blocked,"
                               " n) VALUES ",
                               " ON CONFLICT (day, source, list, action, blocked)"
                               " DO UPDATE SET n = n + excluded.n"},
};

static const char *const upsert_sql[LOGDB_ROLLUP_NMAPS] = {
        [LOGDB_ROLLUP_SOURCES] =
                "INSERT INTO rollup_sources (hour, source, list, action, blocked, n)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (hour, source, list, action,"
                " blocked) DO UPDATE SET n = n + excluded.n",
        [LOGDB_ROLLUP_NAMES] =
                "INSERT INTO rollup_names (name, hour, list, action, blocked, n)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name, hour, list, action,"
                " blocked) DO UPDATE SET n = n + excluded.n",
        [LOGDB_ROLLUP_DAYS] =
                "INSERT INTO rollup_days (day, source, list, action, blocked, n)"
                " VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (day, source, list, action,"
                " blocked) DO UPDATE SET n = n + excluded.n",
        [LOGDB_ROLLUP_HOURS] =
                "INSERT INTO rollup_hours (hour, first_id, last_id, total, blocked)"
                " VALUES (?1, ?6, ?7, ?8, ?9) ON CONFLICT (hour) DO UPDATE SET"
                " first_id = min(first_id, excluded.first_id),"
                " last_id = max(last_id, excluded.last_id), total = total + excluded.total,"
                " blocked = blocked + excluded.blocked",
};

static int
map_init(struct logdb_rollup_map *m, size_t max)
{
	size_t slots = 16;

	while (slots < 2 * max)
		slots <<= 1;
	m->e = calloc(slots, sizeof(*m->e));
	m->order = calloc(max, sizeof(*m->order));
	if (m->e == NULL || m->order == NULL)
		return -ENOMEM;
	m->mask = slots - 1;
	m->max = max;
	m->count = 0;
	return 0;
}

static void
map_clear(struct logdb_rollup_map *m)
{
	if (m->count > 0 && m->e != NULL)
		memset(m->e, 0, (m->mask + 1) * sizeof(*m->e));
	m->count = 0;
}

int
logdb_rollup_init(struct logdb_rollup *ru)
{
	static const size_t max[LOGDB_ROLLUP_NMAPS] = {
	        [LOGDB_ROLLUP_SOURCES] = LOGDB_ROLLUP_SOURCES_MAX,
	        [LOGDB_ROLLUP_NAMES] = LOGDB_ROLLUP_NAMES_MAX,
	        [LOGDB_ROLLUP_DAYS] = LOGDB_ROLLUP_SOURCES_MAX,
	        [LOGDB_ROLLUP_HOURS] = 64,
	};

	memset(ru, 0, sizeof(*ru));
	for (int i = 0; i < LOGDB_ROLLUP_NMAPS; i++) {
		if (map_init(&ru->map[i], max[i]) != 0) {
			logdb_rollup_free(ru);
			return -ENOMEM;
		}
	}
	return 0;
}

void
logdb_rollup_free(struct logdb_rollup *ru)
{
	for (int i = 0; i < LOGDB_ROLLUP_NMAPS; i++) {
		free(ru->map[i].e);
		free(ru->map[i].order);
		ru->map[i].e = NULL;
		ru->map[i].order = NULL;
	}
}

void
logdb_rollup_clear(struct logdb_rollup *ru)
{
	for (int i = 0; i < LOGDB_ROLLUP_NMAPS; i++)
		map_clear(&ru->map[i]);
}

static int
prepare_many(struct logdb *db, int which)
{
	static const char one[] = "(?,?,?,?,?,?)";
	char sql[512 + LOGDB_ROLLUP_MANY * sizeof(one)];
	size_t o = 0, l = strlen(many_sql[which][0]);

	memcpy(sql, many_sql[which][0], l);
	o += l;
	for (int r = 0; r < LOGDB_ROLLUP_MANY; r++) {
		if (r > 0)
			sql[o++] = ',';
		memcpy(sql + o, one, sizeof(one) - 1);
		o += sizeof(one) - 1;
	}
	l = strlen(many_sql[which][1]);
	memcpy(sql + o, many_sql[which][1], l + 1);
	o += l;
	return sqlite3_prepare_v3(db->db, sql, (int)o + 1, SQLITE_PREPARE_PERSISTENT,
	                          &db->rollup_many[which], NULL);
}

int
logdb_rollup_prepare(struct logdb *db)
{
	int rc = SQLITE_OK;

	for (int i = 0; i < LOGDB_ROLLUP_NMAPS && rc == SQLITE_OK; i++)
		rc = sqlite3_prepare_v3(db->db, upsert_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
		                        &db->rollup_up[i], NULL);
	for (int i = 0; i < LOGDB_ROLLUP_HOURS && rc == SQLITE_OK; i++)
		rc = prepare_many(db, i);
	return rc;
}

void
logdb_rollup_finalize(struct logdb *db)
{
	for (int i = 0; i < LOGDB_ROLLUP_NMAPS; i++) {
		sqlite3_finalize(db->rollup_up[i]);
		db->rollup_up[i] = NULL;
	}
	for (int i = 0; i < LOGDB_ROLLUP_HOURS; i++) {
		sqlite3_finalize(db->rollup_many[i]);
		db->rollup_many[i] = NULL;
	}
	logdb_rollup_clear(&db->rollup);
}

static uint64_t
key_hash(const int64_t *k)
{
	uint64_t h = 0x9e3779b97f4a7c15ull;

	for (int i = 0; i < LOGDB_ROLLUP_KEYS; i++) {
		h ^= (uint64_t)k[i];
		h *= 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	return h | 1; /* never 0: 0 marks an empty slot */
}

static int
step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* qsort_r's order of two slots of a map: their keys, column by column (each table's primary
 * key is its key columns in this order). */
static int
cmp_slots(const void *a, const void *b, void *arg)
{
	const struct logdb_rollup_entry *e = arg;
	const int64_t *ka = e[*(const uint32_t *)a].k, *kb = e[*(const uint32_t *)b].k;

	for (int k = 0; k < LOGDB_ROLLUP_KEYS; k++) {
		if (ka[k] != kb[k])
			return ka[k] < kb[k] ? -1 : 1;
	}
	return 0;
}

/* Fills m->order with the slots in use, sorted by key. */
static void
sort_slots(struct logdb_rollup_map *m)
{
	size_t n = 0;

	for (size_t i = 0; i <= m->mask && n < m->count; i++) {
		if (m->e[i].hash != 0)
			m->order[n++] = (uint32_t)i;
	}
	INSIST(n == m->count);
	qsort_r(m->order, n, sizeof(m->order[0]), cmp_slots, m->e);
}

/* Adds the map's entries to its table (in the open transaction), in key order, and empties the
 * map: LOGDB_ROLLUP_MANY keys per statement, the rest one by one. */
static int
map_flush(struct logdb *db, int which)
{
	struct logdb_rollup_map *m = &db->rollup.map[which];
	sqlite3_stmt *st = db->rollup_up[which], *many = NULL;
	size_t i = 0;
	int rc = SQLITE_OK;

	if (m->count == 0)
		return SQLITE_OK;
	sort_slots(m);
	if (which != LOGDB_ROLLUP_HOURS)
		many = db->rollup_many[which];
	for (size_t left = m->count; many != NULL && left >= LOGDB_ROLLUP_MANY && rc == SQLITE_OK;
	     left -= LOGDB_ROLLUP_MANY) {
		for (int r = 0; r < LOGDB_ROLLUP_MANY; r++, i++) {
			const struct logdb_rollup_entry *e = &m->e[m->order[i]];
			for (int k = 0; k < LOGDB_ROLLUP_KEYS; k++)
				sqlite3_bind_int64(many, r * 6 + k + 1, e->k[k]);
			sqlite3_bind_int64(many, r * 6 + 6, e->n);
		}
		rc = step_done(many);
	}
	for (; i < m->count && rc == SQLITE_OK; i++) {
		const struct logdb_rollup_entry *e = &m->e[m->order[i]];
		/* ?1..?5 the key, ?6 the count (the first id for hours), ?7 the last id */
		for (int k = 0; k < LOGDB_ROLLUP_KEYS; k++)
			sqlite3_bind_int64(st, k + 1, e->k[k]);
		sqlite3_bind_int64(st, 6, e->n);
		if (which == LOGDB_ROLLUP_HOURS) {
			sqlite3_bind_int64(st, 7, e->last);
			sqlite3_bind_int64(st, 8, e->total);
			sqlite3_bind_int64(st, 9, e->blocked);
		}
		rc = step_done(st);
	}
	map_clear(m);
	return rc;
}

static int fold_days(struct logdb *db);

/* Counts key in map `which`, `count` times (for hours: once, with id and whether blocked). An
 * SQLite result code (a full map is flushed first; the sources are folded into the days
 * before). */
static int
map_add(struct logdb *db, int which, const int64_t *k, int64_t id, bool blocked, int64_t count)
{
	struct logdb_rollup_map *m = &db->rollup.map[which];
	uint64_t h = key_hash(k);
	size_t i = (size_t)h & m->mask;

	for (;;) {
		struct logdb_rollup_entry *e = &m->e[i];
		if (e->hash == 0)
			break;
		if (e->hash == h && memcmp(e->k, k, sizeof(e->k)) == 0) {
			if (which == LOGDB_ROLLUP_HOURS) {
				e->n = id < e->n ? id : e->n;
				e->last = id > e->last ? id : e->last;
				e->total++;
				e->blocked += blocked;
			} else {
				e->n += count;
			}
			return SQLITE_OK;
		}
		i = (i + 1) & m->mask;
	}
	if (m->count >= m->max) {
		int rc = which == LOGDB_ROLLUP_SOURCES ? fold_days(db) : SQLITE_OK;
		if (rc == SQLITE_OK)
			rc = map_flush(db, which);
		if (rc != SQLITE_OK)
			return rc;
		i = (size_t)h & m->mask; /* the map is empty now */
	}
	struct logdb_rollup_entry *e = &m->e[i];
	e->hash = h;
	memcpy(e->k, k, sizeof(e->k));
	e->n = which == LOGDB_ROLLUP_HOURS ? id : count;
	e->last = id;
	e->total = 1;
	e->blocked = blocked;
	m->count++;
	return SQLITE_OK;
}

/* rollup_days is rollup_sources per day: the sources' counts are added to the days' keys when
 * the sources are upserted (one map probe per key, not per row). */
static int
fold_days(struct logdb *db)
{
	const struct logdb_rollup_map *m = &db->rollup.map[LOGDB_ROLLUP_SOURCES];
	int rc = SQLITE_OK;

	for (size_t i = 0; m->count > 0 && i <= m->mask && rc == SQLITE_OK; i++) {
		const struct logdb_rollup_entry *e = &m->e[i];
		if (e->hash == 0)
			continue;
		/* k: hour, source, list, action, blocked; an hour of 0 stands for a negative time
		   and so does its day */
		int64_t kd[LOGDB_ROLLUP_KEYS] = {e->k[0] / DAY_MS * DAY_MS, e->k[1], e->k[2],
		                                 e->k[3], e->k[4]};
		rc = map_add(db, LOGDB_ROLLUP_DAYS, kd, 0, false, e->n);
	}
	return rc;
}

int
logdb_rollup_add(struct logdb *db, const sqlite3_int64 *v, int64_t id)
{
	int64_t hour = v[1] >= 0 ? v[1] / HOUR_MS * HOUR_MS : 0;
	/* v: id, ts_ms, source, name, qtype, proto, blocked, list, rule, action, ... */
	int64_t ks[LOGDB_ROLLUP_KEYS] = {hour, v[2], v[7], v[9], v[6]};
	int64_t kn[LOGDB_ROLLUP_KEYS] = {v[3], hour, v[7], v[9], v[6]};
	int64_t kh[LOGDB_ROLLUP_KEYS] = {hour, 0, 0, 0, 0};
	int rc = map_add(db, LOGDB_ROLLUP_SOURCES, ks, 0, false, 1);

	if (rc == SQLITE_OK)
		rc = map_add(db, LOGDB_ROLLUP_NAMES, kn, 0, false, 1);
	if (rc == SQLITE_OK)
		rc = map_add(db, LOGDB_ROLLUP_HOURS, kh, id, v[6] != 0, 1);
	return rc;
}

int
logdb_rollup_flush(struct logdb *db)
{
	int rc = fold_days(db);

	for (int i = 0; i < LOGDB_ROLLUP_NMAPS && rc == SQLITE_OK; i++)
		rc = map_flush(db, i);
	if (rc != SQLITE_OK)
		logdb_rollup_clear(&db->rollup);
	return rc;
}
