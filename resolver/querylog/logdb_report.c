/*
 * logdb_report: `veto report attempts` and `veto report summary` over the query store (schema 3,
 * logdb_reader.h), through the reader of logdb_query.c.
 *
 * The rows are read as integer ids and counted in C (keyed by id), inside SQLite's own loop
 * through a function of the reader's connection (veto_each); the ids are turned into text
 * (sources, names, texts rows looked up once each) for the output only.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "logdb_reader_int.h"

#define HOUR_MS   3600000

/* the id of a NULL reference (ids are >= 1) */
#define ID_NULL INT64_MIN

/* ---- reports: scans counted in C ---- */

/* Runs q, a "SELECT veto_each(...) FROM ..." aggregate, calling fn with each row's values.
 * 0, fn's error, or -EIO. */
static int
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

static int64_t
value_id(sqlite3_value *v)
{
	return sqlite3_value_type(v) == SQLITE_NULL ? ID_NULL : sqlite3_value_int64(v);
}

static uint64_t
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

static size_t
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
static int
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

static uint64_t
idmap_hash(int64_t key, uint32_t val)
{
	(void)val;
	return (uint64_t)key;
}

/* The index + 1 of key, 0 when absent. */
static uint32_t
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

static int
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
static int
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

static void
idmap_free(struct idmap *m)
{
	free(m->direct);
	free(m->keys);
	free(m->vals);
	memset(m, 0, sizeof(*m));
}

/* Grows an array of n elements of size sz to hold one more. 0 or -ENOMEM. */
static int
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
static int
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

static void
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
static const char *
source_identity(const struct dict_row *s, int *kind)
{
	*kind = s->col[SRC_MAC] != NULL ? 0 : 1;
	return s->col[SRC_MAC] != NULL ? s->col[SRC_MAC] : s->col[SRC_CLIENT];
}

/* The device key of a source: its device name, else its MAC, else its client IP. */
static const char *
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
static int
cmp_label(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL ? (b == NULL ? 0 : -1) : 1;
	return strcmp(a, b);
}

static int
cmp_u64_desc(uint64_t a, uint64_t b)
{
	return a == b ? 0 : a > b ? -1 : 1;
}

/*
 * `veto report attempts` in one pass over the blocked rows of the window: (ts_ms, source, name,
 * list) from the partial index queries_blocked, which holds them all (no table access). Per
 * source id, the device it belongs to (looked up once: its MAC, else its address, whatever its
 * name); per device: attempts (a list matched), queries refused by the group's default deny
 * (blocked, no list: counted apart), first and last, the source of the latest row (its
 * details are printed), counts per list id, and the distinct names of the attempts through one
 * set of (device, name id) pairs. Then, for the devices printed, the names that attributed
 * their vendor (device_events of kind 'vendor').
 */

struct attempt_list {
	int64_t id;
	uint64_t n;
	const char *name; /* for the output */
};

struct attempt {
	const char *key; /* owned by the sources dict */
	int kind;        /* 0 MAC, 1 client IP */
	uint64_t attempts, denied, names, first, last;
	int64_t last_source;
	struct attempt_list *lists;
	size_t nlists, caplists;
};

struct attempts {
	struct logdb_reader *r;
	struct dict sources, texts;
	sqlite3_stmt *evidence; /* the names of a device's vendor events */
	struct attempt *v;
	size_t n, cap;
	struct idmap by_source; /* source id -> device */
	struct idmap by_key;    /* hash of (kind, key) -> device */
	/* the set of (device index + 1, name id) */
	int64_t *pair_name;
	uint32_t *pair_dev; /* 0 = empty */
	size_t pair_mask, npairs;
	uint64_t seed; /* of the (kind, key) hashes */
};

static uint64_t
pair_key(uint32_t dev, int64_t name)
{
	return (uint64_t)name ^ ((uint64_t)dev << 40);
}

static uint64_t
pair_hash(int64_t name, uint32_t dev)
{
	return pair_key(dev, name);
}

/* Adds (dev, name) to the set; *added tells whether it is new. 0 or -ENOMEM. */
static int
pair_add(struct attempts *a, uint32_t dev, int64_t name, bool *added)
{
	int rc = table_reserve(&a->pair_name, &a->pair_dev, &a->pair_mask, a->npairs, 4096,
	                       pair_hash);
	if (rc != 0)
		return rc;
	size_t j = id_slot(pair_key(dev, name), a->pair_mask);
	for (; a->pair_dev[j] != 0; j = (j + 1) & a->pair_mask) {
		if (a->pair_dev[j] == dev && a->pair_name[j] == name) {
			*added = false;
			return 0;
		}
	}
	a->pair_name[j] = name;
	a->pair_dev[j] = dev;
	a->npairs++;
	*added = true;
	return 0;
}

/* The device (index + 1) of a source id seen for the first time. 0, -ENOMEM, -EIO. */
static int
attempt_of_source(struct attempts *a, int64_t source, uint32_t *out)
{
	const struct dict_row *s;
	int kind, rc;

	rc = dict_get(a->r, &a->sources, source, &s);
	if (rc != 0)
		return rc;
	const char *key = source_identity(s, &kind);
	if (key == NULL)
		key = "";
	int64_t h = (int64_t)hash_str(key, a->seed + (uint64_t)kind);
	uint32_t k = idmap_get(&a->by_key, h);
	if (k != 0 && (a->v[k - 1].kind != kind || strcmp(a->v[k - 1].key, key) != 0)) {
		/* another key with the same hash: look further by hand */
		k = 0;
		for (size_t i = 0; i < a->n && k == 0; i++)
			if (a->v[i].kind == kind && strcmp(a->v[i].key, key) == 0)
				k = (uint32_t)(i + 1);
	}
	if (k == 0) {
		if (grow((void **)&a->v, &a->cap, a->n, sizeof(*a->v)) != 0)
			return -ENOMEM;
		memset(&a->v[a->n], 0, sizeof(a->v[0]));
		a->v[a->n].key = key;
		a->v[a->n].kind = kind;
		if (idmap_get(&a->by_key, h) == 0 && idmap_put(&a->by_key, h, a->n) != 0)
			return -ENOMEM;
		k = (uint32_t)++a->n;
	}
	if (idmap_put(&a->by_source, source, k - 1) != 0)
		return -ENOMEM;
	*out = k;
	return 0;
}

/* veto_each(ts_ms, source, name, list) of one blocked row */
static int
on_attempt_row(void *arg, sqlite3_value **v)
{
	struct attempts *a = arg;
	uint64_t ts = value_u64(v[0]);
	int64_t source = sqlite3_value_int64(v[1]);
	int64_t list = value_id(v[3]);
	uint32_t k = idmap_get(&a->by_source, source);
	bool added;
	int rc;

	if (k == 0 && (rc = attempt_of_source(a, source, &k)) != 0)
		return rc;
	struct attempt *g = &a->v[k - 1];
	bool seen = g->attempts + g->denied > 0;
	if (!seen || ts < g->first)
		g->first = ts;
	/* the rows come in time order: at equal times, the later one holds the latest details */
	if (!seen || ts >= g->last) {
		g->last = ts;
		g->last_source = source;
	}
	if (list == ID_NULL) { /* blocked by no list: the group's default deny */
		g->denied++;
		return 0;
	}
	g->attempts++;
	if (pair_add(a, k, value_id(v[2]), &added) != 0)
		return -ENOMEM;
	g->names += added ? 1 : 0;
	size_t i = 0;
	while (i < g->nlists && g->lists[i].id != list)
		i++;
	if (i == g->nlists) {
		if (grow((void **)&g->lists, &g->caplists, g->nlists, sizeof(*g->lists)) != 0)
			return -ENOMEM;
		g->lists[g->nlists++] = (struct attempt_list){.id = list};
	}
	g->lists[i].n++;
	return 0;
}

static int
cmp_attempt(const void *x, const void *y)
{
	const struct attempt *a = x, *b = y;
	int c = cmp_u64_desc(a->attempts, b->attempts);

	if (c == 0)
		c = cmp_u64_desc(a->denied, b->denied);
	if (c == 0)
		c = strcmp(a->key, b->key);
	return c != 0 ? c : a->kind - b->kind;
}

static int
cmp_attempt_list(const void *x, const void *y)
{
	const struct attempt_list *a = x, *b = y;
	int c = cmp_u64_desc(a->n, b->n);

	return c != 0 ? c : strcmp(a->name != NULL ? a->name : "", b->name != NULL ? b->name : "");
}

static void
attempts_free(struct attempts *a)
{
	for (size_t i = 0; i < a->n; i++)
		free(a->v[i].lists);
	free(a->v);
	idmap_free(&a->by_source);
	idmap_free(&a->by_key);
	free(a->pair_name);
	free(a->pair_dev);
	dict_free(&a->sources);
	dict_free(&a->texts);
	sqlite3_finalize(a->evidence);
}

/* "connect.rom.miui.com, ..." into buf: the evidence of the device's latest vendor events
 * (the names that attributed its vendor), "" when none. 0 or -EIO. */
static int
vendor_evidence(struct attempts *a, const struct dict_row *s, char *buf, size_t cap)
{
	static const char sql[] = "SELECT evidence FROM device_events"
	                          " WHERE kind = 'vendor' AND evidence IS NOT NULL"
	                          " AND (mac = ?1 OR (?1 IS NULL AND client = ?2))"
	                          " GROUP BY evidence ORDER BY max(id) DESC LIMIT 3";
	size_t off = 0;
	int rc;

	buf[0] = '\0';
	if (a->evidence == NULL &&
	    sqlite3_prepare_v2(a->r->db, sql, -1, &a->evidence, NULL) != SQLITE_OK)
		return logdb_reader_error(a->r);
	sqlite3_reset(a->evidence);
	if (s->col[SRC_MAC] != NULL)
		sqlite3_bind_text(a->evidence, 1, s->col[SRC_MAC], -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(a->evidence, 1);
	if (s->col[SRC_CLIENT] != NULL)
		sqlite3_bind_text(a->evidence, 2, s->col[SRC_CLIENT], -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(a->evidence, 2);
	while ((rc = sqlite3_step(a->evidence)) == SQLITE_ROW) {
		const char *e = (const char *)sqlite3_column_text(a->evidence, 0);
		int w = snprintf(buf + off, cap - off, "%s%s", off > 0 ? ", " : "", e);
		if (w < 0 || (size_t)w >= cap - off) {
			buf[off] = '\0';
			break;
		}
		off += (size_t)w;
	}
	rc = rc == SQLITE_ROW ? 0 : logdb_step_error(a->r, rc);
	sqlite3_reset(a->evidence);
	sqlite3_clear_bindings(a->evidence);
	return rc;
}

/* The output of one device. */
static int
emit_attempt(struct attempts *a, struct attempt *g, logdb_attempt_cb cb, void *arg)
{
	const struct dict_row *s, *t;
	char lists[256], evidence[512];
	size_t off = 0;
	int rc;

	for (size_t k = 0; k < g->nlists; k++) {
		rc = dict_get(a->r, &a->texts, g->lists[k].id, &t);
		if (rc != 0)
			return rc;
		g->lists[k].name = t->col[0];
	}
	if (g->nlists > 0) /* none for a device the default deny alone refused */
		qsort(g->lists, g->nlists, sizeof(g->lists[0]), cmp_attempt_list);
	lists[0] = '\0';
	for (size_t k = 0; k < g->nlists && k < LOGDB_TOP_LISTS; k++) {
		int w = snprintf(lists + off, sizeof(lists) - off, "%s%s (%llu)",
		                 off > 0 ? ", " : "",
		                 g->lists[k].name != NULL ? g->lists[k].name : "-",
		                 (unsigned long long)g->lists[k].n);
		if (w < 0 || (size_t)w >= sizeof(lists) - off)
			break;
		off += (size_t)w;
	}
	rc = dict_get(a->r, &a->sources, g->last_source, &s);
	if (rc == 0)
		rc = vendor_evidence(a, s, evidence, sizeof(evidence));
	if (rc != 0)
		return rc;
	struct logdb_attempt at = {
	        .key = g->key,
	        .evidence = evidence[0] != '\0' ? evidence : NULL,
	        .denied = g->denied,
	        .device = s->col[SRC_DEVICE],
	        .mac = s->col[SRC_MAC],
	        .client = s->col[SRC_CLIENT],
	        .vendor = s->col[SRC_VENDOR],
	        .vendor_source = s->col[SRC_VENDOR_SOURCE],
	        .group = s->col[SRC_GROUP],
	        .attempts = g->attempts,
	        .names = g->names,
	        .top_lists = lists,
	        .ntop = g->nlists < LOGDB_TOP_LISTS ? g->nlists : LOGDB_TOP_LISTS,
	        .first_ms = g->first,
	        .last_ms = g->last,
	};
	for (size_t k = 0; k < at.ntop; k++)
		at.top[k] = (struct logdb_list_count){g->lists[k].name, g->lists[k].n};
	return cb(arg, &at);
}

int
logdb_report_attempts(struct logdb_reader *r, const struct logdb_filter *f, logdb_attempt_cb cb,
                      void *arg)
{
	struct logdb_sql *q = NULL;
	struct attempts a = {
	        .r = r,
	        .sources = {.sql = sources_sql, .ncols = SRC_NCOLS},
	        .texts = {.sql = texts_sql, .ncols = 1},
	        .seed = hash_seed(),
	};
	int rc;

	rc = logdb_read_begin(r, &q);
	if (rc != 0)
		return rc;
	logdb_sql_add(q, "SELECT veto_each(ts_ms, source, name, list)"
	                 " FROM queries INDEXED BY queries_blocked");
	rc = logdb_build_where(r, q, f, "blocked = 1");
	if (rc == 0)
		rc = run_each(r, q, on_attempt_row, &a);
	if (rc != 0)
		goto cleanup;
	if (a.n > 0)
		qsort(a.v, a.n, sizeof(a.v[0]), cmp_attempt);
	size_t n = f->limit > 0 && f->limit < a.n ? f->limit : a.n;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = emit_attempt(&a, &a.v[i], cb, arg);
cleanup:
	logdb_read_end(r, &q);
	attempts_free(&a);
	return rc;
}

/*
 * `veto report summary` in two passes, counted in C by integer key: the rows of the window
 * (ts_ms, source, list, blocked) give the totals per source id, list id and hour; the blocked
 * rows (the index queries_blocked) the counts per name id. Then the ids become text: sources
 * are merged per group and per device key, names are looked up for the top ones only.
 */

struct count {
	int64_t key; /* source, list or name id; the hour's first ms */
	const char *label;
	uint64_t total, blocked;
};

struct counts {
	struct count *v;
	size_t n, cap;
	struct idmap map;
};

/* The counter of key, added at zero when new; NULL on -ENOMEM. Valid until the next call. */
static struct count *
counts_at(struct counts *c, int64_t key)
{
	uint32_t k = idmap_get(&c->map, key);

	if (k != 0)
		return &c->v[k - 1];
	if (grow((void **)&c->v, &c->cap, c->n, sizeof(*c->v)) != 0 ||
	    idmap_put(&c->map, key, c->n) != 0)
		return NULL;
	c->v[c->n] = (struct count){.key = key};
	return &c->v[c->n++];
}

static void
counts_free(struct counts *c)
{
	free(c->v);
	idmap_free(&c->map);
	memset(c, 0, sizeof(*c));
}

struct summary {
	struct logdb_reader *r;
	uint64_t total, blocked, denied;
	struct counts sources, lists, hours, names;
	/* split: whole hours from the rollups, the partial hours at the ends of the window (if
	 * any) from the rows; name_totals: every name's queries in those ends */
	bool split;
	struct logdb_filter mid; /* the whole hours (since/until hour-aligned) */
	struct counts name_totals;
	int64_t hour_key; /* the hour of the last row, and its counter's index */
	size_t hour_index;
	bool has_hour;
	struct dict dsources, dnames, dtexts;
};

/* n queries at ts (ms) of source, list (ID_NULL: none), blocked or not. */
static int
summary_count(struct summary *s, int64_t ts, int64_t source, int64_t list, bool is_blocked,
              uint64_t n)
{
	uint64_t blocked = is_blocked ? n : 0;
	struct count *c;

	s->total += n;
	s->blocked += blocked;
	s->denied += list == ID_NULL ? blocked : 0;
	c = counts_at(&s->sources, source);
	if (c == NULL)
		return -ENOMEM;
	c->total += n;
	c->blocked += blocked;
	if (list != ID_NULL) {
		c = counts_at(&s->lists, list);
		if (c == NULL)
			return -ENOMEM;
		c->total += n;
		c->blocked += blocked;
	}
	/* rows come in time order: an hour's rows follow each other */
	int64_t hour = ts / HOUR_MS * HOUR_MS;
	if (!s->has_hour || hour != s->hour_key) {
		c = counts_at(&s->hours, hour);
		if (c == NULL)
			return -ENOMEM;
		s->hour_key = hour;
		s->hour_index = (size_t)(c - s->hours.v);
		s->has_hour = true;
	}
	c = &s->hours.v[s->hour_index];
	c->total += n;
	c->blocked += blocked;
	return 0;
}

/* veto_each(ts_ms, source, list, blocked[, name]) of one row of the window */
static int
on_summary_row(void *arg, sqlite3_value **v)
{
	struct summary *s = arg;
	int rc = summary_count(s, sqlite3_value_int64(v[0]), sqlite3_value_int64(v[1]),
	                       value_id(v[2]), sqlite3_value_int64(v[3]) != 0, 1);

	if (rc == 0 && s->split) {
		struct count *c = counts_at(&s->name_totals, value_id(v[4]));
		if (c == NULL)
			return -ENOMEM;
		c->total++;
	}
	return rc;
}

/* veto_each(hour, source, list, blocked, n) of a row of rollup_sources */
static int
on_summary_rollup(void *arg, sqlite3_value **v)
{
	int64_t list = sqlite3_value_int64(v[2]);

	return summary_count(arg, sqlite3_value_int64(v[0]), sqlite3_value_int64(v[1]),
	                     list == 0 ? ID_NULL : list, sqlite3_value_int64(v[3]) != 0,
	                     value_u64(v[4]));
}

/* veto_each(name[, n]) of one blocked row of the window, or of a blocked rollup_names row
 * (n of them; name 0 for none) */
static int
on_summary_blocked(void *arg, sqlite3_value **v, int argc)
{
	struct summary *s = arg;
	int64_t name = value_id(v[0]);
	uint64_t n = argc > 1 ? value_u64(v[1]) : 1;
	struct count *c = counts_at(&s->names, argc > 1 && name == 0 ? ID_NULL : name);

	if (c == NULL)
		return -ENOMEM;
	c->total += n;
	c->blocked += n;
	return 0;
}

static int
on_summary_blocked_row(void *arg, sqlite3_value **v)
{
	return on_summary_blocked(arg, v, 1);
}

static int
on_summary_blocked_rollup(void *arg, sqlite3_value **v)
{
	return on_summary_blocked(arg, v, 2);
}

static int
cmp_count_label(const void *x, const void *y)
{
	const struct count *a = x, *b = y;

	return cmp_label(a->label, b->label);
}

/* ORDER BY total DESC, label */
static int
cmp_count_total(const void *x, const void *y)
{
	const struct count *a = x, *b = y;
	int c = cmp_u64_desc(a->total, b->total);

	return c != 0 ? c : cmp_label(a->label, b->label);
}

/* ORDER BY blocked DESC, total DESC, label */
static int
cmp_count_blocked(const void *x, const void *y)
{
	const struct count *a = x, *b = y;
	int c = cmp_u64_desc(a->blocked, b->blocked);

	return c != 0 ? c : cmp_count_total(x, y);
}

static int
cmp_count_key(const void *x, const void *y)
{
	const struct count *a = x, *b = y;

	return a->key < b->key ? -1 : a->key > b->key;
}

/* Merges the counters of equal labels (sorts by label; n is updated). */
static void
merge_labels(struct count *v, size_t *n)
{
	size_t o = 0;

	if (*n == 0)
		return;
	qsort(v, *n, sizeof(*v), cmp_count_label);
	for (size_t i = 1; i < *n; i++) {
		if (cmp_label(v[i].label, v[o].label) == 0) {
			v[o].total += v[i].total;
			v[o].blocked += v[i].blocked;
		} else {
			v[++o] = v[i];
		}
	}
	*n = o + 1;
}

static int
emit_counts(enum logdb_summary_section section, const struct count *v, size_t n, bool hours,
            logdb_summary_cb cb, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		struct logdb_summary_row row = {
		        .section = section,
		        .label = v[i].label,
		        .ts_ms = hours && v[i].key > 0 ? (uint64_t)v[i].key : 0,
		        .total = v[i].total,
		        .blocked = v[i].blocked,
		};
		int rc = cb(arg, &row);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* Per group (group: true) or per device key, from the counts per source. */
static int
emit_per_source(struct summary *s, bool group, uint32_t top, logdb_summary_cb cb, void *arg)
{
	struct count *v = NULL;
	size_t n = s->sources.n;
	int rc = 0;

	if (n > 0 && (v = malloc(n * sizeof(*v))) == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n && rc == 0; i++) {
		const struct dict_row *src;
		int kind;
		v[i] = s->sources.v[i];
		rc = dict_get(s->r, &s->dsources, v[i].key, &src);
		if (rc == 0)
			v[i].label = group ? src->col[SRC_GROUP] : source_key(src, &kind);
	}
	if (rc == 0) {
		merge_labels(v, &n);
		if (n > 0)
			qsort(v, n, sizeof(*v), cmp_count_total);
		if (top > 0 && n > top)
			n = top;
		rc = emit_counts(group ? LOGDB_SUMMARY_GROUP : LOGDB_SUMMARY_TOP_CLIENT, v, n,
		                 false, cb, arg);
	}
	free(v);
	return rc;
}

static bool
has_source_filter(const struct logdb_filter *f)
{
	return f->client.v[0] != NULL || f->mac.v[0] != NULL || f->device.v[0] != NULL ||
	       f->who != NULL || f->group.v[0] != NULL || f->vendor.v[0] != NULL;
}

/* All the queries of name id in the window of f, blocked or not: from the rows (the hours
 * whose rollups hold the name, when f has a source or domain filter), or with rollup from
 * rollup_names over f's whole hours (f has no source filter: rollup_names has no source). */
static int
count_name(struct logdb_reader *r, const struct logdb_filter *f, int64_t id, bool rollup,
           uint64_t *out)
{
	struct logdb_sql *q = calloc(1, sizeof(*q));
	sqlite3_stmt *st = NULL;
	char cond[128];
	int rc;

	if (q == NULL)
		return -ENOMEM;
	q->rollup = rollup;
	if (rollup) {
		snprintf(cond, sizeof(cond), "name = %lld AND hour >= %lld AND hour < %lld",
		         (long long)id, (long long)f->since_ms,
		         f->until_ms > 0 ? (long long)f->until_ms : (long long)INT64_MAX);
		logdb_sql_add(q, "SELECT coalesce(sum(n), 0) FROM rollup_names");
	} else {
		snprintf(cond, sizeof(cond), "name = %lld", (long long)id); /* an id of ours */
		logdb_sql_add(q, "SELECT count(*) FROM queries");
	}
	rc = logdb_build_where(r, q, f, cond);
	if (rc == 0)
		rc = logdb_prepare(r, q, &st);
	if (rc == 0) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*out = value_u64(sqlite3_column_value(st, 0));
			rc = 0;
		} else {
			rc = logdb_step_error(r, rc);
			rc = rc != 0 ? rc : -EIO;
		}
	}
	sqlite3_finalize(st);
	free(q);
	return rc;
}

/* The top blocked names: sorted by blocked count; the names of those that can make the top
 * (ties included) are looked up, to order equal counts by name; then the top ones get their
 * count of all queries (blocked for one group, forwarded for another). */
static int
emit_top_names(struct summary *s, const struct logdb_filter *f, uint32_t top,
               logdb_summary_cb cb, void *arg)
{
	struct count *v = s->names.v;
	size_t n = s->names.n, k = 0;
	int rc;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_count_blocked); /* labels all NULL yet: by count */
	uint64_t least = v[(n > top ? top : n) - 1].blocked;
	while (k < n && v[k].blocked >= least) {
		const struct dict_row *name;
		rc = dict_get(s->r, &s->dnames, v[k].key, &name);
		if (rc != 0)
			return rc;
		v[k++].label = name->col[0];
	}
	qsort(v, k, sizeof(*v), cmp_count_blocked);
	k = k > top ? top : k;
	for (size_t i = 0; i < k; i++) {
		if (!s->split) {
			rc = count_name(s->r, f, v[i].key, false, &v[i].total);
		} else {
			/* the ends of the window from their rows, the whole hours from rollups */
			uint32_t e = idmap_get(&s->name_totals.map, v[i].key);
			uint64_t mid = 0;
			rc = count_name(s->r, &s->mid, v[i].key, !has_source_filter(f), &mid);
			v[i].total = mid + (e != 0 ? s->name_totals.v[e - 1].total : 0);
		}
		if (rc != 0)
			return rc;
	}
	return emit_counts(LOGDB_SUMMARY_TOP_BLOCKED, v, k, false, cb, arg);
}

static void
summary_free(struct summary *s)
{
	counts_free(&s->sources);
	counts_free(&s->lists);
	counts_free(&s->hours);
	counts_free(&s->names);
	counts_free(&s->name_totals);
	dict_free(&s->dsources);
	dict_free(&s->dnames);
	dict_free(&s->dtexts);
}

/* The two passes over the rows of f's window (all of it, or one end of it). */
static int
summary_rows(struct summary *s, const struct logdb_filter *f)
{
	struct logdb_sql *q = calloc(1, sizeof(*q));
	int rc;

	if (q == NULL)
		return -ENOMEM;
	logdb_sql_add(q, s->split ? "SELECT veto_each(ts_ms, source, list, blocked, name) FROM queries"
	                          : "SELECT veto_each(ts_ms, source, list, blocked) FROM queries");
	rc = logdb_build_where(s->r, q, f, NULL);
	if (rc == 0)
		rc = run_each(s->r, q, on_summary_row, s);
	if (rc == 0) {
		memset(q, 0, sizeof(*q));
		/* the top blocked names are those a list matched, not the default deny's */
		logdb_sql_add(q, "SELECT veto_each(name) FROM queries INDEXED BY queries_blocked");
		rc = logdb_build_where(s->r, q, f, "blocked = 1 AND list IS NOT NULL");
	}
	if (rc == 0)
		rc = run_each(s->r, q, on_summary_blocked_row, s);
	free(q);
	return rc;
}

/* The whole hours of s->mid from rollup_sources, and its top blocked names from rollup_names
 * (by the index of its blocked rows), or from the blocked rows when a source filter needs
 * them (rollup_names has no source). */
static int
summary_rollups(struct summary *s)
{
	const struct logdb_filter *f = &s->mid;
	struct logdb_sql *q = calloc(1, sizeof(*q));
	char hours[160];
	int rc;

	if (q == NULL)
		return -ENOMEM;
	snprintf(hours, sizeof(hours), "hour >= %lld AND hour < %lld", (long long)f->since_ms,
	         f->until_ms > 0 ? (long long)f->until_ms : (long long)INT64_MAX);
	q->rollup = true;
	logdb_sql_add(q, "SELECT veto_each(hour, source, list, blocked, n) FROM rollup_sources");
	rc = logdb_build_where(s->r, q, f, hours);
	if (rc == 0)
		rc = run_each(s->r, q, on_summary_rollup, s);
	if (rc == 0 && !has_source_filter(f)) {
		memset(q, 0, sizeof(*q));
		q->rollup = true;
		logdb_sql_add(q, "SELECT veto_each(name, n) FROM rollup_names"
		                 " INDEXED BY rollup_names_blocked");
		char cond[200];
		snprintf(cond, sizeof(cond), "blocked = 1 AND list != 0 AND %s", hours);
		rc = logdb_build_where(s->r, q, f, cond);
		if (rc == 0)
			rc = run_each(s->r, q, on_summary_blocked_rollup, s);
	} else if (rc == 0) {
		memset(q, 0, sizeof(*q));
		logdb_sql_add(q, "SELECT veto_each(name) FROM queries INDEXED BY queries_blocked");
		rc = logdb_build_where(s->r, q, f, "blocked = 1 AND list IS NOT NULL");
		if (rc == 0)
			rc = run_each(s->r, q, on_summary_blocked_row, s);
	}
	free(q);
	return rc;
}

/* Whether f filters by name (the root is every name). */
static bool
has_domain_filter(const struct logdb_filter *f)
{
	for (size_t i = 0; i < LOGDB_FILTER_VALUES && f->domain.v[i] != NULL; i++)
		if (strcmp(f->domain.v[i], ".") != 0)
			return true;
	return false;
}

/*
 * The window's whole hours come from the rollups (rollup_sources: by source, list, action,
 * blocked; rollup_names: the blocked names), its partial hours at either end (a --since or
 * --until inside an hour) from their rows; a filter by domain reads the rows of the hours
 * that hold the names (logdb_build_where). The rollups hold the rows of the same snapshot.
 */
int
logdb_report_summary(struct logdb_reader *r, const struct logdb_filter *f, uint32_t top,
                     logdb_summary_cb cb, void *arg)
{
	struct logdb_sql *q = NULL;
	struct summary s = {
	        .r = r,
	        .dsources = {.sql = sources_sql, .ncols = SRC_NCOLS},
	        .dnames = {.sql = names_sql, .ncols = 1},
	        .dtexts = {.sql = texts_sql, .ncols = 1},
	};
	int64_t first = -1, h0, h1;
	int rc;

	top = top > 0 ? top : 10;
	rc = logdb_read_begin(r, &q);
	if (rc != 0)
		return rc;
	/* the first hour with rows (rollup_names may keep older ones until retention's pass) */
	if (logdb_query_int(r->db, "SELECT coalesce(min(hour), -1) FROM rollup_hours", &first) !=
	    SQLITE_OK) {
		rc = logdb_reader_error(r);
		goto cleanup;
	}
	h0 = f->since_ms > 0 ? (int64_t)((f->since_ms + HOUR_MS - 1) / HOUR_MS * HOUR_MS) : 0;
	h0 = h0 > first ? h0 : first;
	h1 = f->until_ms > 0 ? (int64_t)(f->until_ms / HOUR_MS * HOUR_MS) : INT64_MAX;
	s.split = first >= 0 && h0 < h1 && !has_domain_filter(f);
	if (!s.split) {
		rc = summary_rows(&s, f);
	} else {
		struct logdb_filter end = *f;
		s.mid = *f;
		s.mid.since_ms = (uint64_t)h0;
		s.mid.until_ms = h1 == INT64_MAX ? 0 : (uint64_t)h1;
		if (f->since_ms > 0 && f->since_ms < (uint64_t)h0) {
			end.until_ms = (uint64_t)h0;
			rc = summary_rows(&s, &end);
		}
		if (rc == 0 && f->until_ms > 0 && (uint64_t)h1 < f->until_ms) {
			end = *f;
			end.since_ms = (uint64_t)h1;
			rc = summary_rows(&s, &end);
		}
		if (rc == 0)
			rc = summary_rollups(&s);
	}
	if (rc != 0)
		goto cleanup;

	struct logdb_summary_row total = {
	        .section = LOGDB_SUMMARY_TOTAL,
	        .total = s.total,
	        .blocked = s.blocked,
	        .denied = s.denied,
	};
	rc = cb(arg, &total);
	if (rc == 0)
		rc = emit_per_source(&s, true, 0, cb, arg);
	for (size_t i = 0; rc == 0 && i < s.lists.n; i++) {
		const struct dict_row *t;
		rc = dict_get(r, &s.dtexts, s.lists.v[i].key, &t);
		if (rc == 0)
			s.lists.v[i].label = t->col[0];
	}
	if (rc == 0) {
		if (s.lists.n > 0)
			qsort(s.lists.v, s.lists.n, sizeof(s.lists.v[0]), cmp_count_blocked);
		rc = emit_counts(LOGDB_SUMMARY_LIST, s.lists.v, s.lists.n, false, cb, arg);
	}
	if (rc == 0)
		rc = emit_top_names(&s, f, top, cb, arg);
	if (rc == 0)
		rc = emit_per_source(&s, false, top, cb, arg);
	if (rc == 0) {
		if (s.hours.n > 0)
			qsort(s.hours.v, s.hours.n, sizeof(s.hours.v[0]), cmp_count_key);
		rc = emit_counts(LOGDB_SUMMARY_HOUR, s.hours.v, s.hours.n, true, cb, arg);
	}
cleanup:
	logdb_read_end(r, &q);
	summary_free(&s);
	return rc;
}
