/*
 * logdb_query: the read side of the query store (schema 3, logdb.h), shared by `veto log` and
 * `veto report`.
 *
 * A filter becomes conditions on the queries table's own columns, with bound parameters only
 * (never text pasted into SQL): the device filters a subquery of sources ids, list and action a
 * texts id, a domain a range of names.rname. The connection is read-only (URI mode=ro): it
 * never blocks the daemon's writer (WAL readers and the writer do not wait on each other) and
 * works on a copied file. Each call reads one snapshot (a read transaction).
 *
 * Rows: the ids are selected first (sorted and limited while they are narrow integers), then
 * joined to their text through the view query_log. Reports: the rows are read as integer ids
 * and counted in C (keyed by id), inside SQLite's own loop through a function of this
 * connection (veto_each); the ids are turned into text (sources, names, texts rows looked up
 * once each) for the output only.
 */
#include "logdb.h"

#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "names.h"

#define SQL_MAX   2048
#define BINDS_MAX 24
#define TOP_LISTS 3
#define HOUR_MS   3600000

/* the id of a NULL reference (ids are >= 1) */
#define ID_NULL INT64_MIN

/* Called by veto_each for every row of a report's scan: 0 to go on, else -errno to stop. */
typedef int (*each_cb)(void *arg, sqlite3_value **v);

struct logdb_reader {
	sqlite3 *db;
	char *path;
	/* the scan veto_each feeds (run_each) */
	each_cb each;
	void *each_arg;
	int each_rc;
};

/* ---- opening ---- */

/* "file:" URI of path: '%', '?' and '#' percent-encoded. */
static char *
file_uri(const char *path)
{
	size_t n = strlen(path);
	char *uri = malloc(5 + 3 * n + sizeof("?mode=ro"));
	char *p = uri;

	if (uri == NULL)
		return NULL;
	memcpy(p, "file:", 5);
	p += 5;
	for (const char *s = path; *s != '\0'; s++) {
		if (*s == '%' || *s == '?' || *s == '#') {
			p += sprintf(p, "%%%02X", (unsigned char)*s);
		} else {
			*p++ = *s;
		}
	}
	memcpy(p, "?mode=ro", sizeof("?mode=ro"));
	return uri;
}

/* veto_each(...): an aggregate that hands each row's values to the reader's current scan.
 * Counting in C through it costs about half of stepping the same rows out with sqlite3_step
 * (measured: 0.8 s against 1.3 s of CPU for 8.7M rows). */
static void
on_each_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	struct logdb_reader *r = sqlite3_user_data(ctx);

	(void)argc;
	if (r->each == NULL) {
		sqlite3_result_error(ctx, "veto_each: not inside a scan", -1);
		return;
	}
	int rc = r->each(r->each_arg, argv);
	if (rc != 0) {
		r->each_rc = rc;
		sqlite3_result_error(ctx, "veto_each: scan stopped", -1);
	}
}

static void
on_each_final(sqlite3_context *ctx)
{
	sqlite3_result_null(ctx);
}

int
logdb_reader_open(const char *path, struct logdb_reader **out)
{
	struct logdb_reader *r = NULL;
	sqlite3_stmt *st = NULL;
	char *uri = NULL;
	int rc;

	if (access(path, R_OK) != 0) {
		rc = -errno;
		log_error("query database: '%s': %s", path, strerror(errno));
		return rc;
	}
	r = calloc(1, sizeof(*r));
	uri = file_uri(path);
	if (r == NULL || uri == NULL || (r->path = strdup(path)) == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	rc = sqlite3_open_v2(uri, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
	if (rc != SQLITE_OK) {
		log_error("query database: '%s': cannot open: %s", path,
		          r->db != NULL ? sqlite3_errmsg(r->db) : sqlite3_errstr(rc));
		rc = -EIO;
		goto cleanup;
	}
	sqlite3_busy_timeout(r->db, 2000);
	rc = sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		log_error("query database: '%s': cannot read: %s", path, sqlite3_errmsg(r->db));
		rc = -EIO;
		goto cleanup;
	}
	int version = sqlite3_column_int(st, 0);
	if (version != LOGDB_SCHEMA_VERSION) {
		if (version > LOGDB_SCHEMA_VERSION)
			log_error("query database: '%s': schema version %d is newer than this "
			          "veto's (%d)",
			          path, version, LOGDB_SCHEMA_VERSION);
		else if (version >= 1)
			log_error("query database: '%s': written by an older veto (schema %d); "
			          "`veto serve` converts it in place when it opens it",
			          path, version);
		else
			log_error("query database: '%s': not a veto query database", path);
		rc = -EINVAL;
		goto cleanup;
	}
	/* direct only: a view or trigger of the file cannot call it */
	rc = sqlite3_create_function_v2(r->db, "veto_each", -1, SQLITE_UTF8 | SQLITE_DIRECTONLY, r,
	                                NULL, on_each_step, on_each_final, NULL);
	if (rc != SQLITE_OK) {
		log_error("query database: '%s': %s", path, sqlite3_errmsg(r->db));
		rc = -EIO;
		goto cleanup;
	}
	sqlite3_finalize(st);
	free(uri);
	*out = r;
	return 0;
cleanup:
	sqlite3_finalize(st);
	free(uri);
	logdb_reader_free(&r);
	return rc;
}

void
logdb_reader_free(struct logdb_reader **rp)
{
	struct logdb_reader *r = *rp;

	if (r == NULL)
		return;
	if (r->db != NULL)
		sqlite3_close_v2(r->db);
	free(r->path);
	free(r);
	*rp = NULL;
}

static int
db_error(struct logdb_reader *r)
{
	log_error("query database: '%s': %s", r->path, sqlite3_errmsg(r->db));
	return -EIO;
}

/* One snapshot for the whole call: the time bisection, the scans and the dictionary lookups
 * see the same rows. */
static int
read_begin(struct logdb_reader *r)
{
	return sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK ? 0 : db_error(r);
}

static void
read_end(struct logdb_reader *r)
{
	sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
}

/* ---- filters to SQL ---- */

struct bind {
	bool is_text;
	const char *text;
	int64_t num;
};

struct sql {
	char s[SQL_MAX];
	size_t n;
	bool where; /* a WHERE was written */
	bool full;
	struct bind b[BINDS_MAX];
	int nb;
	char mac[18], who_mac[18];                           /* canonical MACs of the filter */
	char lo[NAMES_MAX_TEXT + 2], hi[NAMES_MAX_TEXT + 2]; /* domain range */
};

static void
add(struct sql *q, const char *text)
{
	size_t l = strlen(text);

	if (q->n + l >= sizeof(q->s)) {
		q->full = true;
		return;
	}
	memcpy(q->s + q->n, text, l + 1);
	q->n += l;
}

static void
cond(struct sql *q, const char *text)
{
	add(q, q->where ? " AND " : " WHERE ");
	q->where = true;
	add(q, text);
}

static void
bind_text(struct sql *q, const char *t)
{
	if (q->nb == BINDS_MAX) {
		q->full = true;
		return;
	}
	q->b[q->nb++] = (struct bind){.is_text = true, .text = t};
}

static void
bind_num(struct sql *q, int64_t v)
{
	if (q->nb == BINDS_MAX) {
		q->full = true;
		return;
	}
	q->b[q->nb++] = (struct bind){.num = v};
}

/* "AA-BB-CC-DD-EE-FF", "aabb.ccdd.eeff", "aa:bb:cc:dd:ee:ff" -> "aa:bb:cc:dd:ee:ff". */
static int
canonical_mac(const char *in, char *out)
{
	static const char hex[] = "0123456789abcdef";
	int nd = 0;
	uint8_t v[12];

	for (const char *p = in; *p != '\0'; p++) {
		int c = tolower((unsigned char)*p);
		if (c == ':' || c == '-' || c == '.')
			continue;
		const char *h = strchr(hex, c);
		if (h == NULL || c == '\0' || nd == 12)
			return -EINVAL;
		v[nd++] = (uint8_t)(h - hex);
	}
	if (nd != 12)
		return -EINVAL;
	for (int i = 0; i < 6; i++) {
		out[3 * i] = hex[v[2 * i]];
		out[3 * i + 1] = hex[v[2 * i + 1]];
		out[3 * i + 2] = i < 5 ? ':' : '\0';
	}
	return 0;
}

/* The subtree of a domain as a range of rname: [ "com.miui.", "com.miui/" ). */
static int
domain_range(const char *domain, char *lo, char *hi, size_t cap)
{
	struct names_name n;
	char text[NAMES_MAX_TEXT];
	const char *why;

	if (names_from_text(&n, domain, strlen(domain), &why) != 0)
		return -EINVAL;
	names_to_text(&n, text);
	if (logdb_rname(text, lo, cap) != 0)
		return -EINVAL;
	size_t l = strlen(lo);
	memcpy(hi, lo, l + 1);
	hi[l - 1] = '/'; /* the octet after '.' */
	return 0;
}

/* The smallest id x such that the first row with an id >= x is stored at ts_ms or later: the
 * first id of the rows from ts_ms on, ids being in time order (logdb.h); max(id) + 1 when every
 * row is older. Bisection over the ids, one indexed lookup per step. 0 or -EIO. */
static int
time_to_id(struct logdb_reader *r, uint64_t ts_ms, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int64_t lo = 1, hi = 1;
	int rc;

	/* two subqueries: min() and max() inside an expression would scan the table */
	rc = sqlite3_prepare_v2(r->db,
	                        "SELECT (SELECT id FROM queries ORDER BY id LIMIT 1),"
	                        " (SELECT id FROM queries ORDER BY id DESC LIMIT 1)",
	                        -1, &st, NULL);
	if (rc == SQLITE_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		if (sqlite3_column_type(st, 0) != SQLITE_NULL) {
			lo = sqlite3_column_int64(st, 0);
			hi = sqlite3_column_int64(st, 1) + 1;
		}
		rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	st = NULL;
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(r->db,
		                        "SELECT ts_ms FROM queries WHERE id >= ?"
		                        " ORDER BY id LIMIT 1",
		                        -1, &st, NULL);
	while (rc == SQLITE_OK && lo < hi) {
		int64_t mid = lo + (hi - lo) / 2;
		sqlite3_bind_int64(st, 1, mid);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 0) < ts_ms)
			lo = mid + 1;
		else if (rc == SQLITE_ROW || rc == SQLITE_DONE)
			hi = mid;
		rc = rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		return db_error(r);
	*out = lo;
	return 0;
}

static void
source_cond(struct sql *q, bool *first, const char *text)
{
	add(q, *first ? "" : " AND ");
	add(q, text);
	*first = false;
}

/* The device conditions of f, on the columns of sources. */
static void
source_conds(struct sql *q, const struct logdb_filter *f, bool who_is_mac)
{
	bool first = true;

	if (f->client != NULL) {
		source_cond(q, &first, "client = ?");
		bind_text(q, f->client);
	}
	if (f->mac != NULL) {
		source_cond(q, &first, "mac = ?");
		bind_text(q, q->mac);
	}
	if (f->device != NULL) {
		source_cond(q, &first, "device = ?");
		bind_text(q, f->device);
	}
	if (f->who != NULL && who_is_mac) {
		source_cond(q, &first, "mac = ?");
		bind_text(q, q->who_mac);
	} else if (f->who != NULL) {
		source_cond(q, &first, "(device = ? OR client = ?)");
		bind_text(q, f->who);
		bind_text(q, f->who);
	}
	if (f->group != NULL) {
		source_cond(q, &first, "group_name = ?");
		bind_text(q, f->group);
	}
	if (f->vendor != NULL) {
		source_cond(q, &first, "vendor = ? COLLATE NOCASE");
		bind_text(q, f->vendor);
	}
}

/* A condition on a column of texts ids (list, action): "column = ?" with the id of text.
 * Looked up first rather than in a subquery: a text no row has (a list never hit, a typo)
 * becomes a constant false term, which SQLite evaluates once, before its loop, instead of
 * comparing every row of the window (0 s against 0.7 s for 8.7M rows: list has no index).
 * 0 or -EIO. */
static int
text_cond(struct logdb_reader *r, struct sql *q, const char *column_cond, const char *text)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT id FROM texts WHERE text = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_error(r);
	sqlite3_bind_text(st, 1, text, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		cond(q, column_cond);
		bind_num(q, sqlite3_column_int64(st, 0));
		rc = 0;
	} else if (rc == SQLITE_DONE) {
		/* a parameter: a literal 0 would fold the whole WHERE into false at prepare
		 * time, "blocked = 1" with it, and INDEXED BY queries_blocked would fail */
		cond(q, "?");
		bind_num(q, 0);
		rc = 0;
	} else {
		rc = db_error(r);
	}
	sqlite3_finalize(st);
	return rc;
}

/* The WHERE clause of f on the columns of queries. extra: a condition always added (or
 * NULL). */
static int
build_where(struct logdb_reader *r, struct sql *q, const struct logdb_filter *f, const char *extra)
{
	int64_t id;
	bool who_is_mac = false;
	int rc;

	/* ids are in time order (logdb.h): the id bounds make a time range a range of the table or
	 * of any index, the ts_ms ones keep the result exact */
	if (f->since_ms > 0) {
		if (time_to_id(r, f->since_ms, &id) != 0)
			return -EIO;
		cond(q, "id >= ? AND ts_ms >= ?");
		bind_num(q, id);
		bind_num(q, (int64_t)f->since_ms);
	}
	if (f->until_ms > 0) {
		if (time_to_id(r, f->until_ms, &id) != 0)
			return -EIO;
		cond(q, "id < ? AND ts_ms < ?");
		bind_num(q, id);
		bind_num(q, (int64_t)f->until_ms);
	}
	if (f->mac != NULL && canonical_mac(f->mac, q->mac) != 0)
		return -EINVAL;
	if (f->who != NULL) /* a device name, a MAC or a client IP */
		who_is_mac = canonical_mac(f->who, q->who_mac) == 0;
	if (f->client != NULL || f->mac != NULL || f->device != NULL || f->who != NULL ||
	    f->group != NULL || f->vendor != NULL) {
		cond(q, "source IN (SELECT id FROM sources WHERE ");
		source_conds(q, f, who_is_mac);
		add(q, ")");
	}
	if (f->list != NULL && (rc = text_cond(r, q, "list = ?", f->list)) != 0)
		return rc;
	if (f->action != NULL && (rc = text_cond(r, q, "action = ?", f->action)) != 0)
		return rc;
	if (f->domain != NULL && strcmp(f->domain, ".") != 0) {
		if (domain_range(f->domain, q->lo, q->hi, sizeof(q->lo)) != 0)
			return -EINVAL;
		cond(q, "name IN (SELECT id FROM names WHERE rname >= ? AND rname < ?)");
		bind_text(q, q->lo);
		bind_text(q, q->hi);
	}
	if (f->blocked == 0)
		cond(q, "blocked = 0");
	else if (f->blocked > 0)
		cond(q, "blocked = 1");
	if (f->after_id > 0) {
		cond(q, "id > ?");
		bind_num(q, f->after_id);
	}
	if (extra != NULL)
		cond(q, extra);
	return q->full ? -E2BIG : 0;
}

static int
prepare(struct logdb_reader *r, struct sql *q, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;

	if (q->full)
		return -E2BIG;
	if (sqlite3_prepare_v2(r->db, q->s, -1, &st, NULL) != SQLITE_OK)
		return db_error(r);
	for (int i = 0; i < q->nb; i++) {
		if (q->b[i].is_text)
			sqlite3_bind_text(st, i + 1, q->b[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, q->b[i].num);
	}
	*out = st;
	return 0;
}

static int
step_error(struct logdb_reader *r, int rc)
{
	return rc == SQLITE_DONE ? 0 : db_error(r);
}

static const char *
col_text(sqlite3_stmt *st, int i)
{
	return (const char *)sqlite3_column_text(st, i);
}

static uint64_t
col_u64(sqlite3_stmt *st, int i)
{
	sqlite3_int64 v = sqlite3_column_int64(st, i);
	return v > 0 ? (uint64_t)v : 0;
}

void
logdb_filter_init(struct logdb_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->blocked = -1;
}

/* ---- rows ---- */

#define ROW_COLUMNS                                                                                \
	"id, ts_ms, client, proto, group_name, qname, qtype, blocked, list, rule, action, rcode, " \
	"upstream, latency_us, mac, device, vendor, vendor_source"

static void
read_row(sqlite3_stmt *st, struct logdb_row *row)
{
	row->id = sqlite3_column_int64(st, 0);
	row->ts_ms = col_u64(st, 1);
	row->client = col_text(st, 2);
	row->proto = col_text(st, 3);
	row->group = col_text(st, 4);
	row->qname = col_text(st, 5);
	row->qtype = col_text(st, 6);
	row->blocked = sqlite3_column_int(st, 7) != 0;
	row->list = col_text(st, 8);
	row->rule = col_text(st, 9);
	row->action = col_text(st, 10);
	row->rcode = col_text(st, 11);
	row->upstream = col_text(st, 12);
	sqlite3_int64 lat = sqlite3_column_int64(st, 13);
	row->latency_us = lat < 0 ? 0 : lat > UINT32_MAX ? UINT32_MAX : (uint32_t)lat;
	row->mac = col_text(st, 14);
	row->device = col_text(st, 15);
	row->vendor = col_text(st, 16);
	row->vendor_source = col_text(st, 17);
}

int
logdb_query_rows(struct logdb_reader *r, const struct logdb_filter *f, logdb_row_cb cb, void *arg)
{
	struct sql *q = calloc(1, sizeof(*q));
	sqlite3_stmt *st = NULL;
	char lim[48];
	int rc;

	if (q == NULL)
		return -ENOMEM;
	rc = read_begin(r);
	if (rc != 0) {
		free(q);
		return rc;
	}
	/* the ids first, sorted and limited while they are narrow; then their text */
	bool asc = f->oldest_first && !f->chronological;
	add(q, "SELECT " ROW_COLUMNS " FROM query_log WHERE id IN (SELECT id FROM queries");
	rc = build_where(r, q, f, NULL);
	if (rc != 0)
		goto cleanup;
	if (f->limit > 0) {
		snprintf(lim, sizeof(lim), " ORDER BY id%s LIMIT %u", asc ? "" : " DESC",
		         (unsigned)f->limit);
		add(q, lim);
	}
	add(q, asc || f->chronological ? ") ORDER BY id" : ") ORDER BY id DESC");
	rc = prepare(r, q, &st);
	if (rc != 0)
		goto cleanup;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct logdb_row row;
		read_row(st, &row);
		int cr = cb(arg, &row);
		if (cr != 0) {
			rc = cr;
			goto cleanup;
		}
	}
	rc = step_error(r, rc);
cleanup:
	sqlite3_finalize(st);
	read_end(r);
	free(q);
	return rc;
}

int
logdb_last_id(struct logdb_reader *r, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT coalesce(max(id), 0) FROM queries", -1, &st, NULL) !=
	    SQLITE_OK)
		return db_error(r);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = step_error(r, rc);
		if (rc == 0)
			rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

/* ---- reports: scans counted in C ---- */

/* Runs q, a "SELECT veto_each(...) FROM ..." aggregate, calling fn with each row's values.
 * 0, fn's error, or -EIO. */
static int
run_each(struct logdb_reader *r, struct sql *q, each_cb fn, void *arg)
{
	sqlite3_stmt *st = NULL;
	int rc = prepare(r, q, &st);

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
		rc = step_error(r, rc);
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
	if (m->vals == NULL || 2 * (m->n + 1) > m->mask + 1) {
		size_t cap = m->vals != NULL ? 2 * (m->mask + 1) : 256;
		int64_t *keys = malloc(cap * sizeof(*keys));
		uint32_t *vals = calloc(cap, sizeof(*vals));
		if (keys == NULL || vals == NULL) {
			free(keys);
			free(vals);
			return -ENOMEM;
		}
		for (size_t i = 0; m->vals != NULL && i <= m->mask; i++) {
			if (m->vals[i] == 0)
				continue;
			size_t j = id_slot((uint64_t)m->keys[i], cap - 1);
			while (vals[j] != 0)
				j = (j + 1) & (cap - 1);
			keys[j] = m->keys[i];
			vals[j] = m->vals[i];
		}
		free(m->keys);
		free(m->vals);
		m->keys = keys;
		m->vals = vals;
		m->mask = cap - 1;
	}
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
			return db_error(r);
		sqlite3_bind_int64(d->st, 1, id);
		rc = sqlite3_step(d->st);
		for (int i = 0; rc == SQLITE_ROW && i < d->ncols; i++) {
			const char *t = col_text(d->st, i);
			if (t != NULL && (row->col[i] = strdup(t)) == NULL)
				rc = SQLITE_NOMEM;
		}
		sqlite3_reset(d->st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
			for (int i = 0; i < d->ncols; i++)
				free(row->col[i]);
			return rc == SQLITE_NOMEM ? -ENOMEM : db_error(r);
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
 * source id, the device it belongs to (looked up once); per device: attempts, first and last,
 * the source of the latest attempt (its details are printed), counts per list id, and the
 * distinct name ids through one set of (device, name id) pairs.
 */

struct attempt_list {
	int64_t id;
	uint64_t n;
	const char *name; /* for the output */
};

struct attempt {
	const char *key; /* owned by the sources dict */
	int kind;        /* 0 device, 1 MAC, 2 client IP */
	uint64_t attempts, names, first, last;
	int64_t last_source;
	struct attempt_list *lists;
	size_t nlists, caplists;
};

struct attempts {
	struct logdb_reader *r;
	struct dict sources, texts;
	struct attempt *v;
	size_t n, cap;
	struct idmap by_source; /* source id -> device */
	struct idmap by_key;    /* hash of (kind, key) -> device */
	/* the set of (device index + 1, name id) */
	int64_t *pair_name;
	uint32_t *pair_dev; /* 0 = empty */
	size_t pair_mask, npairs;
};

static uint64_t
hash_str(uint64_t h, const char *s)
{
	for (; s != NULL && *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= 0x100000001b3ull;
	}
	return h;
}

static uint64_t
pair_key(uint32_t dev, int64_t name)
{
	return (uint64_t)name ^ ((uint64_t)dev << 40);
}

/* Adds (dev, name) to the set; *added tells whether it is new. 0 or -ENOMEM. */
static int
pair_add(struct attempts *a, uint32_t dev, int64_t name, bool *added)
{
	if (a->pair_dev == NULL || 2 * (a->npairs + 1) > a->pair_mask + 1) {
		size_t cap = a->pair_dev != NULL ? 2 * (a->pair_mask + 1) : 4096;
		int64_t *pn = malloc(cap * sizeof(*pn));
		uint32_t *pd = calloc(cap, sizeof(*pd));
		if (pn == NULL || pd == NULL) {
			free(pn);
			free(pd);
			return -ENOMEM;
		}
		for (size_t i = 0; a->pair_dev != NULL && i <= a->pair_mask; i++) {
			if (a->pair_dev[i] == 0)
				continue;
			size_t j = id_slot(pair_key(a->pair_dev[i], a->pair_name[i]), cap - 1);
			while (pd[j] != 0)
				j = (j + 1) & (cap - 1);
			pn[j] = a->pair_name[i];
			pd[j] = a->pair_dev[i];
		}
		free(a->pair_name);
		free(a->pair_dev);
		a->pair_name = pn;
		a->pair_dev = pd;
		a->pair_mask = cap - 1;
	}
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
	const char *key = source_key(s, &kind);
	if (key == NULL)
		key = "";
	int64_t h = (int64_t)hash_str(0xcbf29ce484222325ull + (uint64_t)kind, key);
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
	if (g->attempts == 0 || ts < g->first)
		g->first = ts;
	/* the rows come in time order: at equal times, the later one holds the latest details */
	if (g->attempts == 0 || ts >= g->last) {
		g->last = ts;
		g->last_source = source;
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
}

/* The output of one device. */
static int
emit_attempt(struct attempts *a, struct attempt *g, logdb_attempt_cb cb, void *arg)
{
	const struct dict_row *s, *t;
	char lists[256];
	size_t off = 0;
	int rc;

	for (size_t k = 0; k < g->nlists; k++) {
		rc = dict_get(a->r, &a->texts, g->lists[k].id, &t);
		if (rc != 0)
			return rc;
		g->lists[k].name = t->col[0];
	}
	qsort(g->lists, g->nlists, sizeof(g->lists[0]), cmp_attempt_list);
	lists[0] = '\0';
	for (size_t k = 0; k < g->nlists && k < TOP_LISTS; k++) {
		int w = snprintf(lists + off, sizeof(lists) - off, "%s%s (%llu)",
		                 off > 0 ? ", " : "",
		                 g->lists[k].name != NULL ? g->lists[k].name : "-",
		                 (unsigned long long)g->lists[k].n);
		if (w < 0 || (size_t)w >= sizeof(lists) - off)
			break;
		off += (size_t)w;
	}
	rc = dict_get(a->r, &a->sources, g->last_source, &s);
	if (rc != 0)
		return rc;
	struct logdb_attempt at = {
	        .key = g->key,
	        .device = s->col[SRC_DEVICE],
	        .mac = s->col[SRC_MAC],
	        .client = s->col[SRC_CLIENT],
	        .vendor = s->col[SRC_VENDOR],
	        .vendor_source = s->col[SRC_VENDOR_SOURCE],
	        .group = s->col[SRC_GROUP],
	        .attempts = g->attempts,
	        .names = g->names,
	        .top_lists = lists,
	        .first_ms = g->first,
	        .last_ms = g->last,
	};
	return cb(arg, &at);
}

int
logdb_report_attempts(struct logdb_reader *r, const struct logdb_filter *f, logdb_attempt_cb cb,
                      void *arg)
{
	struct sql *q = calloc(1, sizeof(*q));
	struct attempts a = {
	        .r = r,
	        .sources = {.sql = sources_sql, .ncols = SRC_NCOLS},
	        .texts = {.sql = texts_sql, .ncols = 1},
	};
	int rc;

	if (q == NULL)
		return -ENOMEM;
	rc = read_begin(r);
	if (rc != 0) {
		free(q);
		return rc;
	}
	add(q,
	    "SELECT veto_each(ts_ms, source, name, list) FROM queries INDEXED BY queries_blocked");
	rc = build_where(r, q, f, "blocked = 1");
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
	read_end(r);
	attempts_free(&a);
	free(q);
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
	uint64_t total, blocked;
	struct counts sources, lists, hours, names;
	int64_t hour_key; /* the hour of the last row, and its counter's index */
	size_t hour_index;
	bool has_hour;
	struct dict dsources, dnames, dtexts;
};

/* veto_each(ts_ms, source, list, blocked) of one row of the window */
static int
on_summary_row(void *arg, sqlite3_value **v)
{
	struct summary *s = arg;
	int64_t ts = sqlite3_value_int64(v[0]);
	int64_t list = value_id(v[2]);
	uint64_t blocked = (uint64_t)sqlite3_value_int64(v[3]);
	struct count *c;

	s->total++;
	s->blocked += blocked;
	c = counts_at(&s->sources, sqlite3_value_int64(v[1]));
	if (c == NULL)
		return -ENOMEM;
	c->total++;
	c->blocked += blocked;
	if (list != ID_NULL) {
		c = counts_at(&s->lists, list);
		if (c == NULL)
			return -ENOMEM;
		c->total++;
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
	c->total++;
	c->blocked += blocked;
	return 0;
}

/* veto_each(name) of one blocked row of the window */
static int
on_summary_blocked(void *arg, sqlite3_value **v)
{
	struct summary *s = arg;
	struct count *c = counts_at(&s->names, value_id(v[0]));

	if (c == NULL)
		return -ENOMEM;
	c->total++;
	c->blocked++;
	return 0;
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

/* The top blocked names: sorted by count; the names of those that can make the top (ties
 * included) are looked up, to order equal counts by name. */
static int
emit_top_names(struct summary *s, uint32_t top, logdb_summary_cb cb, void *arg)
{
	struct count *v = s->names.v;
	size_t n = s->names.n, k = 0;
	int rc;

	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_count_total); /* labels all NULL yet: by count */
	uint64_t least = v[(n > top ? top : n) - 1].total;
	while (k < n && v[k].total >= least) {
		const struct dict_row *name;
		rc = dict_get(s->r, &s->dnames, v[k].key, &name);
		if (rc != 0)
			return rc;
		v[k++].label = name->col[0];
	}
	qsort(v, k, sizeof(*v), cmp_count_total);
	return emit_counts(LOGDB_SUMMARY_TOP_BLOCKED, v, k > top ? top : k, false, cb, arg);
}

static void
summary_free(struct summary *s)
{
	counts_free(&s->sources);
	counts_free(&s->lists);
	counts_free(&s->hours);
	counts_free(&s->names);
	dict_free(&s->dsources);
	dict_free(&s->dnames);
	dict_free(&s->dtexts);
}

int
logdb_report_summary(struct logdb_reader *r, const struct logdb_filter *f, uint32_t top,
                     logdb_summary_cb cb, void *arg)
{
	struct sql *q = calloc(1, sizeof(*q));
	struct summary s = {
	        .r = r,
	        .dsources = {.sql = sources_sql, .ncols = SRC_NCOLS},
	        .dnames = {.sql = names_sql, .ncols = 1},
	        .dtexts = {.sql = texts_sql, .ncols = 1},
	};
	int rc;

	if (q == NULL)
		return -ENOMEM;
	top = top > 0 ? top : 10;
	rc = read_begin(r);
	if (rc != 0) {
		free(q);
		return rc;
	}
	add(q, "SELECT veto_each(ts_ms, source, list, blocked) FROM queries");
	rc = build_where(r, q, f, NULL);
	if (rc == 0)
		rc = run_each(r, q, on_summary_row, &s);
	if (rc == 0) {
		memset(q, 0, sizeof(*q));
		add(q, "SELECT veto_each(name) FROM queries INDEXED BY queries_blocked");
		rc = build_where(r, q, f, "blocked = 1");
	}
	if (rc == 0)
		rc = run_each(r, q, on_summary_blocked, &s);
	if (rc != 0)
		goto cleanup;

	struct logdb_summary_row total = {
	        .section = LOGDB_SUMMARY_TOTAL, .total = s.total, .blocked = s.blocked};
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
		rc = emit_top_names(&s, top, cb, arg);
	if (rc == 0)
		rc = emit_per_source(&s, false, top, cb, arg);
	if (rc == 0) {
		if (s.hours.n > 0)
			qsort(s.hours.v, s.hours.n, sizeof(s.hours.v[0]), cmp_count_key);
		rc = emit_counts(LOGDB_SUMMARY_HOUR, s.hours.v, s.hours.n, true, cb, arg);
	}
cleanup:
	read_end(r);
	summary_free(&s);
	free(q);
	return rc;
}

/* ---- time ---- */

static bool
digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static int
parse_iso(const char *s, uint64_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
	const char *p = s;
	bool zone = false;
	long off_s = 0;

	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.') {
				int scale = 100;
				p++;
				if (!isdigit((unsigned char)*p))
					return -EINVAL;
				for (; isdigit((unsigned char)*p); p++) {
					ms += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		zone = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om = 0;
		p++;
		if (!digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && !digits(&p, 2, &om))
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
		zone = true;
		off_s = sign * (oh * 3600L + om * 60L);
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t;
	if (zone) {
		t = timegm(&tm);
		t -= off_s;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	if (t == (time_t)-1 || t < 0)
		return -EINVAL;
	*out = (uint64_t)t * 1000 + (uint64_t)ms;
	return 0;
}

int
logdb_parse_time(const char *text, uint64_t now_ms, uint64_t *out)
{
	static const struct {
		char unit;
		uint64_t ms;
	} units[] = {
	        {'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000},
	};
	size_t n = strlen(text);

	if (n >= 2 && n <= 12) {
		uint64_t v = 0;
		size_t i = 0;
		while (i < n - 1 && isdigit((unsigned char)text[i]))
			v = v * 10 + (uint64_t)(text[i++] - '0');
		if (i == n - 1 && i > 0) {
			for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
				if (text[i] != units[u].unit)
					continue;
				uint64_t d = v * units[u].ms;
				*out = d < now_ms ? now_ms - d : 0;
				return 0;
			}
			return -EINVAL;
		}
	}
	return parse_iso(text, out);
}

/* ---- output helpers ---- */

void
logdb_print_json_str(FILE *out, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	if (s == NULL) {
		fputs("null", out);
		return;
	}
	fputc('"', out);
	for (size_t i = 0; u[i] != '\0';) {
		unsigned char c = u[i];
		if (c == '"' || c == '\\') {
			fputc('\\', out);
			fputc(c, out);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			fprintf(out, "\\u%04x", c);
			i++;
		} else if (c < 0x80) {
			fputc(c, out);
			i++;
		} else {
			/* pass a valid UTF-8 sequence, replace anything else */
			size_t len = c >= 0xc2 && c <= 0xdf   ? 2
			             : c >= 0xe0 && c <= 0xef ? 3
			             : c >= 0xf0 && c <= 0xf4 ? 4
			                                      : 0;
			size_t k = 1;
			while (k < len && (u[i + k] & 0xc0) == 0x80)
				k++;
			if (len == 0 || k != len) {
				fputs("\\ufffd", out);
				i++;
			} else {
				fwrite(u + i, 1, len, out);
				i += len;
			}
		}
	}
	fputc('"', out);
}

void
logdb_print_csv(FILE *out, const char *s)
{
	if (s == NULL)
		return;
	if (strpbrk(s, ",\"\r\n") == NULL) {
		fputs(s, out);
		return;
	}
	fputc('"', out);
	for (const char *p = s; *p != '\0'; p++) {
		if (*p == '"')
			fputc('"', out);
		fputc(*p, out);
	}
	fputc('"', out);
}

void
logdb_format_time(uint64_t ts_ms, bool local, char buf[LOGDB_TIME_MAX])
{
	time_t secs = (time_t)(ts_ms / 1000);
	struct tm tm;

	if ((local ? localtime_r(&secs, &tm) : gmtime_r(&secs, &tm)) == NULL)
		memset(&tm, 0, sizeof(tm));
	if (local)
		snprintf(buf, LOGDB_TIME_MAX, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		snprintf(buf, LOGDB_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
		         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		         tm.tm_sec, (unsigned)(ts_ms % 1000));
}

struct logdb_table {
	size_t ncols;
	char **heads;
	size_t *width;
	char **cells; /* nrows * ncols */
	size_t nrows, cap;
};

/* Display width: UTF-8 continuation octets do not count. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

int
logdb_table_new(size_t ncols, const char *const *heads, struct logdb_table **out)
{
	struct logdb_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	t->ncols = ncols;
	t->heads = calloc(ncols, sizeof(*t->heads));
	t->width = calloc(ncols, sizeof(*t->width));
	if (t->heads == NULL || t->width == NULL)
		goto cleanup;
	for (size_t i = 0; i < ncols; i++) {
		t->heads[i] = strdup(heads[i]);
		if (t->heads[i] == NULL)
			goto cleanup;
		t->width[i] = text_width(heads[i]);
	}
	*out = t;
	return 0;
cleanup:
	logdb_table_free(&t);
	return -ENOMEM;
}

int
logdb_table_add(struct logdb_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap > 0 ? 2 * t->cap : 64;
		char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
		if (nc == NULL)
			return -ENOMEM;
		t->cells = nc;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		row[i] = strdup(cells[i] != NULL ? cells[i] : "-");
		if (row[i] == NULL) {
			while (i-- > 0)
				free(row[i]);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < t->ncols; i++) {
		size_t w = text_width(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	return 0;
}

static void
print_cell(FILE *out, const char *s, size_t width, bool right, bool last)
{
	size_t pad = width - text_width(s);

	if (right)
		fprintf(out, "%*s", (int)pad, "");
	fputs(s, out);
	if (!right && !last)
		fprintf(out, "%*s", (int)pad, "");
	if (!last)
		fputs("  ", out);
}

void
logdb_table_print(struct logdb_table *t, FILE *out, const bool *right, bool header)
{
	if (header) {
		for (size_t i = 0; i < t->ncols; i++)
			print_cell(out, t->heads[i], t->width[i], right != NULL && right[i],
			           i + 1 == t->ncols);
		fputc('\n', out);
	}
	for (size_t r = 0; r < t->nrows; r++) {
		for (size_t i = 0; i < t->ncols; i++) {
			char *c = t->cells[r * t->ncols + i];
			print_cell(out, c, t->width[i], right != NULL && right[i],
			           i + 1 == t->ncols);
			free(c);
		}
		fputc('\n', out);
	}
	t->nrows = 0;
}

void
logdb_table_free(struct logdb_table **tp)
{
	struct logdb_table *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	for (size_t i = 0; t->heads != NULL && i < t->ncols; i++)
		free(t->heads[i]);
	free(t->heads);
	free(t->width);
	free(t);
	*tp = NULL;
}
