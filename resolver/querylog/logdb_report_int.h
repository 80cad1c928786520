/*
 * logdb_report_int: what the two report files share (logdb_report.c: attempts;
 * logdb_summary.c: summary): a scan counted in C through veto_each, id -> index maps, the
 * dictionaries' rows looked up once by id, and orderings. Static inline: each file keeps only
 * what it uses. Not for other modules.
 */
#ifndef VETO_LOGDB_REPORT_INT_H
#define VETO_LOGDB_REPORT_INT_H

#include <errno.h>
#include <sqlite3.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "logdb_reader_int.h"

#define HOUR_MS 3600000

/* the id of a NULL reference (ids are >= 1) */
#define ID_NULL INT64_MIN

/* ---- reports: scans counted in C ---- */

/* Runs q, a "SELECT veto_each(...) FROM ..." aggregate, calling fn with each row's values.
 * 0, fn's error, or -EIO. */
static inline int
run_each(struct logdb_reader *r, struct logdb_sql *q, logdb_each_cb fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = logdb_prepare(r, q, &st);

	if (rc != 0)
		return rc;
	r->each = fn;
	r->each_arg = arg;
	r->each_rc = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW)
		;
	r->each = NULL;
	r->each_arg = NULL;
	if (r->each_rc != 0)
		rc = r->each_rc;
	else
		rc = logdb_step_error(r, rc);
	sqlite3_finalize(st);
	return rc;
}

static inline int64_t
value_id(sqlite3_value *v)
{
	return sqlite3_value_type(v) == SQLITE_NULL ? ID_NULL : sqlite3_value_int64(v);
}

static inline uint64_t
value_u64(sqlite3_value *v)
{
	sqlite3_int64 x = sqlite3_value_int64(v);
	return x > 0 ? (uint64_t)x : 0;
}

/* An id -> index map; the values are indexes into an array the caller keeps. Ids below
 * IDMAP_DIRECT (dictionary ids are small, dense numbers) index an array directly, larger keys
 * go to a hash table (open addressing, linear probing): the summary looks up a source id per
 * row. */
#define IDMAP_DIRECT (1u << 20)

struct idmap {
	uint32_t *direct; /* index + 1 by key; 0 = absent */
	size_t ndirect;
	int64_t *keys;
	uint32_t *vals; /* index + 1; 0 = empty */
	size_t mask, n;
};

static inline size_t
id_slot(uint64_t key, size_t mask)
{
	uint64_t h = key * 0x9e3779b97f4a7c15ull;
	return (size_t)(h ^ (h >> 29)) & mask;
}

/* The hash of a slot's key and value: the idmap hashes its key, the pair set both. */
typedef uint64_t (*slot_hash_fn)(int64_t key, uint32_t val);

/* Makes room for one more entry in an open-addressing table of (key, val) slots, val 0 = empty:
 * when it would be over half full, doubles it (first_cap slots at first) and rehashes.
 * 0 or -ENOMEM (the table is unchanged). */
static inline int
table_reserve(int64_t **keys, uint32_t **vals, size_t *mask, size_t n, size_t first_cap,
              slot_hash_fn hash)
{
	if (*vals != NULL && 2 * (n + 1) <= *mask + 1)
		return 0;
	size_t cap = *vals != NULL ? 2 * (*mask + 1) : first_cap;
	int64_t *nk = malloc(cap * sizeof(*nk));
	uint32_t *nv = calloc(cap, sizeof(*nv));
	if (nk == NULL || nv == NULL) {
		free(nk);
		free(nv);
		return -ENOMEM;
	}
	for (size_t i = 0; *vals != NULL && i <= *mask; i++) {
		if ((*vals)[i] == 0)
			continue;
		size_t j = id_slot(hash((*keys)[i], (*vals)[i]), cap - 1);
		while (nv[j] != 0)
			j = (j + 1) & (cap - 1);
		nk[j] = (*keys)[i];
		nv[j] = (*vals)[i];
	}
	free(*keys);
	free(*vals);
	*keys = nk;
	*vals = nv;
	*mask = cap - 1;
	return 0;
}

static inline uint64_t
idmap_hash(int64_t key, uint32_t val)
{
	(void)val;
	return (uint64_t)key;
}

/* The index + 1 of key, 0 when absent. */
static inline uint32_t
idmap_get(const struct idmap *m, int64_t key)
{
	if (key >= 0 && key < (int64_t)IDMAP_DIRECT)
		return (size_t)key < m->ndirect ? m->direct[key] : 0;
	if (m->vals == NULL)
		return 0;
	for (size_t j = id_slot((uint64_t)key, m->mask); m->vals[j] != 0; j = (j + 1) & m->mask) {
		if (m->keys[j] == key)
			return m->vals[j];
	}
	return 0;
}

static inline int
idmap_put_direct(struct idmap *m, int64_t key, size_t index)
{
	if ((size_t)key >= m->ndirect) {
		size_t n = m->ndirect > 0 ? m->ndirect : 1024;
		while (n <= (size_t)key)
			n *= 2;
		uint32_t *d = realloc(m->direct, n * sizeof(*d));
		if (d == NULL)
			return -ENOMEM;
		memset(d + m->ndirect, 0, (n - m->ndirect) * sizeof(*d));
		m->direct = d;
		m->ndirect = n;
	}
	m->direct[key] = (uint32_t)(index + 1);
	return 0;
}

/* Adds key (absent) -> index. 0 or -ENOMEM. */
static inline int
idmap_put(struct idmap *m, int64_t key, size_t index)
{
	if (index >= UINT32_MAX)
		return -ENOMEM;
	if (key >= 0 && key < (int64_t)IDMAP_DIRECT)
		return idmap_put_direct(m, key, index);
	int rc = table_reserve(&m->keys, &m->vals, &m->mask, m->n, 256, idmap_hash);
	if (rc != 0)
		return rc;
	size_t j = id_slot((uint64_t)key, m->mask);
	while (m->vals[j] != 0)
		j = (j + 1) & m->mask;
	m->keys[j] = key;
	m->vals[j] = (uint32_t)(index + 1);
	m->n++;
	return 0;
}

static inline void
idmap_free(struct idmap *m)
{
	free(m->direct);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Grows an array of n elements of size sz to hold one more. 0 or -ENOMEM. */
static inline int
grow(void **v, size_t *cap, size_t n, size_t sz)
{
	if (n < *cap)
		return 0;
	size_t c = *cap > 0 ? 2 * *cap : 64;
	void *nv = realloc(*v, c * sz);
	if (nv == NULL)
		return -ENOMEM;
	*v = nv;
	*cap = c;
	return 0;
}

/* The rows of a dictionary (sources, names or texts) looked up by id as the output needs
 * them, each once. */
enum { SRC_CLIENT, SRC_MAC, SRC_DEVICE, SRC_GROUP, SRC_VENDOR, SRC_VENDOR_SOURCE, SRC_NCOLS };

struct dict_row {
	char *col[SRC_NCOLS]; /* NULL: SQL NULL, or no such row */
};

struct dict {
	const char *sql; /* SELECT the columns WHERE id = ?1 */
	int ncols;
	sqlite3_stmt *st;
	struct idmap map;
	struct dict_row *v;
	size_t n, cap;
};

static const char sources_sql[] = "SELECT client, mac, device, group_name, vendor, vendor_source"
                                  " FROM sources WHERE id = ?1";
static const char names_sql[] = "SELECT qname FROM names WHERE id = ?1";
static const char texts_sql[] = "SELECT text FROM texts WHERE id = ?1";

/* The row of id (all NULL for ID_NULL or a missing row): the row is valid until the next
 * dict_get, its strings until dict_free. 0, -ENOMEM, -EIO. */
static inline int
dict_get(struct logdb_reader *r, struct dict *d, int64_t id, const struct dict_row **out)
{
	uint32_t k = idmap_get(&d->map, id);
	int rc;

	if (k != 0) {
		*out = &d->v[k - 1];
		return 0;
	}
	if (grow((void **)&d->v, &d->cap, d->n, sizeof(*d->v)) != 0)
		return -ENOMEM;
	struct dict_row *row = &d->v[d->n];
	memset(row, 0, sizeof(*row));
	if (id != ID_NULL) {
		if (d->st == NULL &&
		    sqlite3_prepare_v2(r->db, d->sql, -1, &d->st, NULL) != SQLITE_OK)
			return logdb_reader_error(r);
		sqlite3_bind_int64(d->st, 1, id);
		rc = sqlite3_step(d->st);
		for (int i = 0; rc == SQLITE_ROW && i < d->ncols; i++) {
			const char *t = (const char *)sqlite3_column_text(d->st, i);
			if (t != NULL && (row->col[i] = strdup(t)) == NULL)
				rc = SQLITE_NOMEM;
		}
		sqlite3_reset(d->st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			for (int i = 0; i < d->ncols; i++)
				free(row->col[i]);
			return rc == SQLITE_NOMEM ? -ENOMEM : logdb_reader_error(r);
		}
	}
	if (idmap_put(&d->map, id, d->n) != 0) {
		for (int i = 0; i < d->ncols; i++)
			free(row->col[i]);
		return -ENOMEM;
	}
	d->n++;
	*out = row;
	return 0;
}

static inline void
dict_free(struct dict *d)
{
	for (size_t i = 0; i < d->n; i++)
		for (int k = 0; k < d->ncols; k++)
			free(d->v[i].col[k]);
	free(d->v);
	idmap_free(&d->map);
	sqlite3_finalize(d->st);
	d->st = NULL;
	d->v = NULL;
	d->n = d->cap = 0;
}

/* The identity of a source: its MAC, else its client IP (kind 0, 1): one device whatever its
 * name was. */
static inline const char *
source_identity(const struct dict_row *s, int *kind)
{
	*kind = s->col[SRC_MAC] != NULL ? 0 : 1;
	return s->col[SRC_MAC] != NULL ? s->col[SRC_MAC] : s->col[SRC_CLIENT];
}

/* The device key of a source: its device name, else its MAC, else its client IP. */
static inline const char *
source_key(const struct dict_row *s, int *kind)
{
	static const int order[] = {SRC_DEVICE, SRC_MAC, SRC_CLIENT};

	for (int i = 0; i < 3; i++) {
		if (s->col[order[i]] != NULL) {
			*kind = i;
			return s->col[order[i]];
		}
	}
	*kind = 2;
	return NULL;
}

/* NULL first, then by octets (SQLite's BINARY collation) */
static inline int
cmp_label(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL ? (b == NULL ? 0 : -1) : 1;
	return strcmp(a, b);
}

static inline int
cmp_u64_desc(uint64_t a, uint64_t b)
{
	return a == b ? 0 : a > b ? -1 : 1;
}

/* ---- the final counting and ordering of both back ends (logdb_count.c) ---- */

/* A counter of the summary: a group, list, name or device key, or an hour. */
struct logdb_count {
	int64_t key;       /* an id of the back end, or the hour's first ms */
	const char *label; /* NULL: none */
	uint64_t total, blocked;
};

enum logdb_count_order {
	LOGDB_COUNT_BY_TOTAL,   /* total DESC, label: groups, top clients */
	LOGDB_COUNT_BY_BLOCKED, /* blocked DESC, total DESC, label: lists, top names */
	LOGDB_COUNT_BY_LABEL,
	LOGDB_COUNT_BY_KEY, /* the hours */
};

void logdb_count_sort(struct logdb_count *v, size_t n, enum logdb_count_order order);
/* Merges the counters of equal labels (sorts by label; *n is updated). */
void logdb_count_merge_labels(struct logdb_count *v, size_t *n);
/* The rows of a section (ts_ms: the key of an hour). 0 or the callback's value. */
int logdb_count_emit(enum logdb_summary_section section, const struct logdb_count *v, size_t n,
                     logdb_summary_cb cb, void *arg);

/* What orders the devices of `report attempts`: the first member of each back end's device
 * record, so that an array of them sorts with logdb_rank_cmp. */
struct logdb_rank {
	uint64_t attempts, denied;
	const char *key; /* MAC, else client IP */
	int kind;        /* 0 MAC, 1 client IP */
};
/* qsort's comparator: attempts DESC, denied DESC, key, kind. */
int logdb_rank_cmp(const void *x, const void *y);
/* A device's lists: attempts DESC, then name (NULL as ""). */
int logdb_list_count_cmp(const struct logdb_list_count *a, const struct logdb_list_count *b);
/* "xiaomi (120), huawei (3)" of top[0..n) into buf (NULL list: "-"); what does not fit is cut. */
void logdb_top_lists_text(const struct logdb_list_count *top, size_t n, char *buf, size_t cap);

#endif
