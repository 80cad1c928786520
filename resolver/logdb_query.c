/*
 * logdb_query: the read side of the query store, shared by `veto log` and `veto report`.
 *
 * A filter becomes one WHERE clause with bound parameters (never text pasted into SQL). The
 * connection is read-only (URI mode=ro): it never blocks the daemon's writer (WAL readers and
 * the writer do not wait on each other) and works on a copied file.
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

struct logdb_reader {
	sqlite3 *db;
	char *path;
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
	if (version != LOGDB_SCHEMA_VERSION && version != 1) {
		if (version > LOGDB_SCHEMA_VERSION)
			log_error("query database: '%s': schema version %d is newer than this "
			          "veto's (%d)",
			          path, version, LOGDB_SCHEMA_VERSION);
		else
			log_error("query database: '%s': not a veto query database", path);
		rc = -EINVAL;
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
	char mac[18];                                        /* canonical MAC of the filter */
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
	if (rc != SQLITE_OK) {
		log_error("query database: '%s': %s", r->path, sqlite3_errmsg(r->db));
		return -EIO;
	}
	*out = lo;
	return 0;
}

/* The WHERE clause of f. extra: a condition always added (or NULL). */
static int
build_where(struct logdb_reader *r, struct sql *q, const struct logdb_filter *f, const char *extra)
{
	int64_t id;

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
	if (f->client != NULL) {
		cond(q, "client = ?");
		bind_text(q, f->client);
	}
	if (f->mac != NULL) {
		if (canonical_mac(f->mac, q->mac) != 0)
			return -EINVAL;
		cond(q, "mac = ?");
		bind_text(q, q->mac);
	}
	if (f->device != NULL) {
		cond(q, "device = ?");
		bind_text(q, f->device);
	}
	if (f->who != NULL) {
		/* a device name, a MAC or a client IP */
		if (canonical_mac(f->who, q->mac) == 0) {
			cond(q, "mac = ?");
			bind_text(q, q->mac);
		} else {
			cond(q, "(device = ? OR client = ?)");
			bind_text(q, f->who);
			bind_text(q, f->who);
		}
	}
	if (f->group != NULL) {
		cond(q, "group_name = ?");
		bind_text(q, f->group);
	}
	if (f->vendor != NULL) {
		cond(q, "vendor = ? COLLATE NOCASE");
		bind_text(q, f->vendor);
	}
	if (f->list != NULL) {
		cond(q, "list = ?");
		bind_text(q, f->list);
	}
	if (f->action != NULL) {
		cond(q, "action = ?");
		bind_text(q, f->action);
	}
	if (f->domain != NULL && strcmp(f->domain, ".") != 0) {
		if (domain_range(f->domain, q->lo, q->hi, sizeof(q->lo)) != 0)
			return -EINVAL;
		cond(q, "rname >= ? AND rname < ?");
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
	if (sqlite3_prepare_v2(r->db, q->s, -1, &st, NULL) != SQLITE_OK) {
		log_error("query database: '%s': %s", r->path, sqlite3_errmsg(r->db));
		return -EIO;
	}
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
	if (rc == SQLITE_DONE)
		return 0;
	log_error("query database: '%s': %s", r->path, sqlite3_errmsg(r->db));
	return -EIO;
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
	if (f->chronological)
		add(q, "SELECT * FROM (");
	add(q, "SELECT " ROW_COLUMNS " FROM queries");
	rc = build_where(r, q, f, NULL);
	if (rc != 0)
		goto cleanup;
	bool asc = f->oldest_first && !f->chronological;
	add(q, asc ? " ORDER BY id" : " ORDER BY id DESC");
	if (f->limit > 0) {
		snprintf(lim, sizeof(lim), " LIMIT %u", (unsigned)f->limit);
		add(q, lim);
	}
	if (f->chronological)
		add(q, ") ORDER BY id");
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
	free(q);
	return rc;
}

int
logdb_last_id(struct logdb_reader *r, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (sqlite3_prepare_v2(r->db, "SELECT coalesce(max(id), 0) FROM queries", -1, &st, NULL) !=
	    SQLITE_OK) {
		log_error("query database: '%s': %s", r->path, sqlite3_errmsg(r->db));
		return -EIO;
	}
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

/* ---- reports ---- */

/*
 * `veto report attempts` in one pass over the blocked rows of the window, in time order, read
 * from the covering index queries_blocked (no table access, no SQL GROUP BY: measured 1.8 s for
 * two GROUP BY passes against 0.5 s for this on 875k blocked rows). Per device key: attempts,
 * first and last, the latest details, counts per list, and distinct names through one set of
 * 64-bit hashes of (key, name).
 */

struct agg_list {
	char *name;
	uint64_t n;
};

struct agg {
	char *key;
	int kind; /* 0 device, 1 mac, 2 client */
	uint64_t attempts, names, first, last;
	char *details[6]; /* device, mac, client, vendor, vendor_source, group */
	struct agg_list *lists;
	size_t nlists;
};

struct aggs {
	struct agg *v;
	size_t n, cap;
	uint32_t *slots; /* index + 1 into v, 0 = empty */
	size_t nslots;
	uint64_t *names; /* set of (key, name) hashes, 0 = empty */
	size_t nnames, names_cap;
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

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int
slots_grow(struct aggs *a)
{
	size_t n = a->nslots > 0 ? 2 * a->nslots : 1024;
	uint32_t *sl = calloc(n, sizeof(*sl));

	if (sl == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < a->n; i++) {
		size_t j = hash_str(0xcbf29ce484222325ull + (uint64_t)a->v[i].kind, a->v[i].key) &
		           (n - 1);
		while (sl[j] != 0)
			j = (j + 1) & (n - 1);
		sl[j] = (uint32_t)(i + 1);
	}
	free(a->slots);
	a->slots = sl;
	a->nslots = n;
	return 0;
}

static struct agg *
agg_find(struct aggs *a, const char *key, int kind, size_t *idx)
{
	if (2 * (a->n + 1) > a->nslots && slots_grow(a) != 0)
		return NULL;
	size_t j = hash_str(0xcbf29ce484222325ull + (uint64_t)kind, key) & (a->nslots - 1);
	while (a->slots[j] != 0) {
		struct agg *g = &a->v[a->slots[j] - 1];
		if (g->kind == kind && strcmp(g->key, key) == 0) {
			*idx = a->slots[j] - 1;
			return g;
		}
		j = (j + 1) & (a->nslots - 1);
	}
	if (a->n == a->cap) {
		size_t cap = a->cap > 0 ? 2 * a->cap : 256;
		struct agg *nv = realloc(a->v, cap * sizeof(*nv));
		if (nv == NULL)
			return NULL;
		a->v = nv;
		a->cap = cap;
	}
	struct agg *g = &a->v[a->n];
	memset(g, 0, sizeof(*g));
	g->key = strdup(key);
	if (g->key == NULL)
		return NULL;
	g->kind = kind;
	a->slots[j] = (uint32_t)(a->n + 1);
	*idx = a->n++;
	return g;
}

/* True when (key index, name) is new. */
static int
name_add(struct aggs *a, size_t idx, const char *qname, bool *added)
{
	if (2 * (a->nnames + 1) > a->names_cap) {
		size_t n = a->names_cap > 0 ? 2 * a->names_cap : 4096;
		uint64_t *nv = calloc(n, sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < a->names_cap; i++) {
			if (a->names[i] == 0)
				continue;
			size_t j = a->names[i] & (n - 1);
			while (nv[j] != 0)
				j = (j + 1) & (n - 1);
			nv[j] = a->names[i];
		}
		free(a->names);
		a->names = nv;
		a->names_cap = n;
	}
	uint64_t h =
	        hash_str(0xcbf29ce484222325ull ^ ((uint64_t)idx * 0x9e3779b97f4a7c15ull), qname);
	h = h == 0 ? 1 : h;
	size_t j = h & (a->names_cap - 1);
	while (a->names[j] != 0) {
		if (a->names[j] == h) {
			*added = false;
			return 0;
		}
		j = (j + 1) & (a->names_cap - 1);
	}
	a->names[j] = h;
	a->nnames++;
	*added = true;
	return 0;
}

static int
agg_row(struct aggs *a, sqlite3_stmt *st)
{
	const char *device = col_text(st, 0), *mac = col_text(st, 1), *client = col_text(st, 2);
	const char *qname = col_text(st, 3), *list = col_text(st, 4);
	int kind = device != NULL ? 0 : mac != NULL ? 1 : 2;
	const char *key = device != NULL   ? device
	                  : mac != NULL    ? mac
	                  : client != NULL ? client
	                                   : "";
	uint64_t ts = col_u64(st, 8);
	size_t idx;
	bool added;

	struct agg *g = agg_find(a, key, kind, &idx);
	if (g == NULL || name_add(a, idx, qname != NULL ? qname : "", &added) != 0)
		return -ENOMEM;
	if (g->attempts == 0)
		g->first = ts;
	g->attempts++;
	g->names += added ? 1 : 0;
	g->last = ts;
	/* rows come in time order: the last one seen holds the latest details */
	const int cols[6] = {0, 1, 2, 6, 7, 5};
	for (int i = 0; i < 6; i++) {
		const char *v = col_text(st, cols[i]);
		if (v == NULL && g->details[i] == NULL)
			continue;
		if (v != NULL && g->details[i] != NULL && strcmp(v, g->details[i]) == 0)
			continue;
		free(g->details[i]);
		g->details[i] = dup_or_null(v);
		if (v != NULL && g->details[i] == NULL)
			return -ENOMEM;
	}
	size_t k = 0;
	while (k < g->nlists &&
	       !(list == NULL ? g->lists[k].name == NULL
	                      : g->lists[k].name != NULL && strcmp(g->lists[k].name, list) == 0))
		k++;
	if (k == g->nlists) {
		struct agg_list *nl = realloc(g->lists, (g->nlists + 1) * sizeof(*nl));
		if (nl == NULL)
			return -ENOMEM;
		g->lists = nl;
		g->lists[k].name = dup_or_null(list);
		g->lists[k].n = 0;
		g->nlists++;
	}
	g->lists[k].n++;
	return 0;
}

static int
cmp_agg(const void *x, const void *y)
{
	const struct agg *a = x, *b = y;

	if (a->attempts != b->attempts)
		return a->attempts > b->attempts ? -1 : 1;
	return strcmp(a->key, b->key);
}

static int
cmp_list(const void *x, const void *y)
{
	const struct agg_list *a = x, *b = y;

	if (a->n != b->n)
		return a->n > b->n ? -1 : 1;
	return strcmp(a->name != NULL ? a->name : "", b->name != NULL ? b->name : "");
}

static void
aggs_free(struct aggs *a)
{
	for (size_t i = 0; i < a->n; i++) {
		struct agg *g = &a->v[i];
		free(g->key);
		for (int k = 0; k < 6; k++)
			free(g->details[k]);
		for (size_t k = 0; k < g->nlists; k++)
			free(g->lists[k].name);
		free(g->lists);
	}
	free(a->v);
	free(a->slots);
	free(a->names);
}

int
logdb_report_attempts(struct logdb_reader *r, const struct logdb_filter *f, logdb_attempt_cb cb,
                      void *arg)
{
	struct sql *q = calloc(1, sizeof(*q));
	struct aggs a = {0};
	sqlite3_stmt *st = NULL;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	add(q, "SELECT device, mac, client, qname, list, group_name, vendor, vendor_source, ts_ms"
	       " FROM queries INDEXED BY queries_blocked");
	rc = build_where(r, q, f, "blocked = 1");
	add(q, " ORDER BY ts_ms");
	if (rc == 0)
		rc = prepare(r, q, &st);
	if (rc != 0)
		goto cleanup;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rc = agg_row(&a, st);
		if (rc != 0)
			goto cleanup;
	}
	rc = step_error(r, rc);
	if (rc != 0)
		goto cleanup;
	if (a.n > 0)
		qsort(a.v, a.n, sizeof(a.v[0]), cmp_agg);
	size_t n = f->limit > 0 && f->limit < a.n ? f->limit : a.n;
	for (size_t i = 0; i < n && rc == 0; i++) {
		struct agg *g = &a.v[i];
		char lists[256];
		size_t off = 0;

		qsort(g->lists, g->nlists, sizeof(g->lists[0]), cmp_list);
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
		struct logdb_attempt at = {
		        .key = g->key,
		        .device = g->details[0],
		        .mac = g->details[1],
		        .client = g->details[2],
		        .vendor = g->details[3],
		        .vendor_source = g->details[4],
		        .group = g->details[5],
		        .attempts = g->attempts,
		        .names = g->names,
		        .top_lists = lists,
		        .first_ms = g->first,
		        .last_ms = g->last,
		};
		rc = cb(arg, &at);
	}
cleanup:
	sqlite3_finalize(st);
	aggs_free(&a);
	free(q);
	return rc;
}

struct summary_query {
	enum logdb_summary_section section;
	const char *select; /* label, total, blocked [, ts] */
	const char *extra;  /* condition */
	const char *tail;   /* GROUP BY ... ORDER BY ... */
	bool top;           /* LIMIT top */
};

static const struct summary_query summary_queries[] = {
        {LOGDB_SUMMARY_TOTAL, "SELECT NULL, count(*), coalesce(sum(blocked), 0), 0", NULL, "",
         false},
        {LOGDB_SUMMARY_GROUP, "SELECT group_name, count(*), sum(blocked), 0", NULL,
         " GROUP BY group_name ORDER BY 2 DESC, 1", false},
        {LOGDB_SUMMARY_LIST, "SELECT list, count(*), sum(blocked), 0", "list IS NOT NULL",
         " GROUP BY list ORDER BY 3 DESC, 2 DESC, 1", false},
        {LOGDB_SUMMARY_TOP_BLOCKED, "SELECT qname, count(*), count(*), 0", "blocked = 1",
         " GROUP BY qname ORDER BY 2 DESC, 1", true},
        {LOGDB_SUMMARY_TOP_CLIENT,
         "SELECT coalesce(device, mac, client) AS k, count(*), sum(blocked), 0", NULL,
         " GROUP BY k ORDER BY 2 DESC, 1", true},
        {LOGDB_SUMMARY_HOUR, "SELECT NULL, count(*), sum(blocked), ts_ms / 3600000 * 3600000 AS h",
         NULL, " GROUP BY h ORDER BY h", false},
};

int
logdb_report_summary(struct logdb_reader *r, const struct logdb_filter *f, uint32_t top,
                     logdb_summary_cb cb, void *arg)
{
	struct sql *q = calloc(1, sizeof(*q));
	sqlite3_stmt *st = NULL;
	int rc = 0;

	if (q == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(summary_queries) / sizeof(summary_queries[0]); i++) {
		const struct summary_query *sq = &summary_queries[i];

		memset(q, 0, sizeof(*q));
		add(q, sq->select);
		add(q, " FROM queries");
		rc = build_where(r, q, f, sq->extra);
		add(q, sq->tail);
		if (sq->top) {
			char lim[48];
			snprintf(lim, sizeof(lim), " LIMIT %u", (unsigned)(top > 0 ? top : 10));
			add(q, lim);
		}
		if (rc == 0)
			rc = prepare(r, q, &st);
		if (rc != 0)
			goto cleanup;
		while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
			struct logdb_summary_row row = {
			        .section = sq->section,
			        .label = col_text(st, 0),
			        .total = col_u64(st, 1),
			        .blocked = col_u64(st, 2),
			        .ts_ms = col_u64(st, 3),
			};
			int cr = cb(arg, &row);
			if (cr != 0) {
				rc = cr;
				goto cleanup;
			}
		}
		rc = step_error(r, rc);
		sqlite3_finalize(st);
		st = NULL;
		if (rc != 0)
			goto cleanup;
	}
cleanup:
	sqlite3_finalize(st);
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
