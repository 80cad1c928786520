/*
 * logdb_query: the read side of the query store (schema 3, logdb_reader.h), shared by `veto log`
 * and `veto report`: opening the reader, filters to SQL, and the rows of `veto log`. The reports
 * are logdb_report.c; the commands' time parsing and output helpers are resolver/cli/output.c.
 *
 * A filter becomes conditions on the queries table's own columns, with bound parameters only
 * (never text pasted into SQL): the device filters a subquery of sources ids, list and action a
 * texts id, a domain a range of names.rname. The connection is read-only (URI mode=ro): it
 * never blocks the daemon's writer (WAL readers and the writer do not wait on each other) and
 * works on a copied file. Each call reads one snapshot (a read transaction).
 *
 * Rows: the ids are selected first (sorted and limited while they are narrow integers), then
 * joined to their text through the view query_log.
 */
#include <ctype.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "logdb_reader_int.h"
#include "names.h"
#include "pgread.h"

/* ---- opening ---- */

/* "file:" URI of path: '%', '?' and '#' percent-encoded; read-only, and with immutable (a
 * file nobody writes: no locks, no -shm) when asked. */
static char *
file_uri(const char *path, bool immutable)
{
	static const char ro[] = "?mode=ro", ro_imm[] = "?mode=ro&immutable=1";
	const char *q = immutable ? ro_imm : ro;
	size_t n = strlen(path);
	char *uri = malloc(5 + 3 * n + sizeof(ro_imm));
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
	memcpy(p, q, strlen(q) + 1);
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

/* True when path has a non-empty write-ahead log next to it. */
static bool
has_wal(const char *path)
{
	char wal[4096];
	struct stat sb;

	if ((size_t)snprintf(wal, sizeof(wal), "%s-wal", path) >= sizeof(wal))
		return true; /* cannot tell: the careful answer */
	return stat(wal, &sb) == 0 && sb.st_size > 0;
}

/* True when the database holds no table, view or index at all. */
static bool
is_empty(sqlite3 *db)
{
	int64_t n = -1;

	return logdb_query_int(db, "SELECT count(*) FROM sqlite_master", &n) == SQLITE_OK && n == 0;
}

/* Opens r->path read-only (immutable: also without locks or -shm) and steps PRAGMA
 * user_version in *st: SQLITE_ROW on success, else an SQLite error code (r->db may be NULL). */
static int
open_version(struct logdb_reader *r, bool immutable, sqlite3_stmt **st)
{
	char *uri = file_uri(r->path, immutable);
	int rc;

	if (uri == NULL)
		return SQLITE_NOMEM;
	rc = sqlite3_open_v2(uri, &r->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
	free(uri);
	if (rc != SQLITE_OK) {
		sqlite3_close_v2(r->db);
		r->db = NULL;
		return rc;
	}
	sqlite3_busy_timeout(r->db, 2000);
	rc = sqlite3_prepare_v2(r->db, "PRAGMA user_version", -1, st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(*st);
	return rc == SQLITE_ROW ? rc : sqlite3_extended_errcode(r->db) & 0xff;
}

int
logdb_reader_open(const char *path, struct logdb_reader **out)
{
	struct logdb_reader *r = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	if (access(path, R_OK) != 0) {
		rc = -errno;
		log_error("query database: '%s': %s", path, strerror(errno));
		return rc;
	}
	r = calloc(1, sizeof(*r));
	if (r == NULL || (r->path = strdup(path)) == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	rc = open_version(r, false, &st);
	if ((rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN) && !has_wal(path)) {
		/* a copy in a folder this user cannot write: no -shm can be made next to it, and
		 * without a -wal there is nothing to share it for */
		sqlite3_finalize(st);
		st = NULL;
		sqlite3_close_v2(r->db);
		r->db = NULL;
		rc = open_version(r, true, &st);
	}
	if (rc != SQLITE_ROW) {
		if (r->db == NULL)
			log_error("query database: '%s': cannot open: %s", path,
			          rc == SQLITE_NOMEM ? "out of memory" : sqlite3_errstr(rc));
		else
			log_error("query database: '%s': cannot read: %s%s", path,
			          sqlite3_errmsg(r->db),
			          has_wal(path)
			                  ? " (open it where you can write, with its -wal file"
			                    " next to it)"
			                  : "");
		rc = rc == SQLITE_NOMEM ? -ENOMEM : -EIO;
		goto cleanup;
	}
	int version = sqlite3_column_int(st, 0);
	if (version == 0 && is_empty(r->db)) {
		/* a daemon has just created the file and not yet its tables (or nothing ever
		 * wrote it): read it as a store with no rows */
		sqlite3_finalize(st);
		st = NULL;
		sqlite3_close_v2(r->db);
		r->db = NULL;
		if (sqlite3_open_v2(":memory:", &r->db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK ||
		    sqlite3_exec(r->db, logdb_schema_sql, NULL, NULL, NULL) != SQLITE_OK) {
			rc = -ENOMEM;
			goto cleanup;
		}
		version = LOGDB_SCHEMA_VERSION;
	}
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
	*out = r;
	return 0;
cleanup:
	sqlite3_finalize(st);
	logdb_reader_free(&r);
	return rc;
}

void
logdb_reader_free(struct logdb_reader **rp)
{
	struct logdb_reader *r = *rp;

	if (r == NULL)
		return;
	pgread_free(&r->pg);
	if (r->db != NULL)
		sqlite3_close_v2(r->db);
	free(r->path);
	free(r);
	*rp = NULL;
}

int
logdb_reader_error(struct logdb_reader *r)
{
	log_error("query database: '%s': %s", r->path, sqlite3_errmsg(r->db));
	return -EIO;
}

int
logdb_snapshot_begin(struct logdb_reader *r)
{
	if (r->pg != NULL)
		return pgread_snapshot_begin(r->pg);
	if (r->snapshots > 0) {
		r->snapshots++;
		return 0;
	}
	if (sqlite3_exec(r->db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
		return logdb_reader_error(r);
	r->snapshots = 1;
	return 0;
}

void
logdb_snapshot_end(struct logdb_reader *r)
{
	if (r->pg != NULL) {
		pgread_snapshot_end(r->pg);
		return;
	}
	if (r->snapshots > 0 && --r->snapshots == 0)
		sqlite3_exec(r->db, "COMMIT", NULL, NULL, NULL);
}

/* One snapshot for the whole call: the time bisection, the scans and the dictionary lookups
 * see the same rows. */
int
logdb_read_begin(struct logdb_reader *r, struct logdb_sql **q)
{
	struct logdb_sql *nq = calloc(1, sizeof(*nq));
	int rc;

	if (nq == NULL)
		return -ENOMEM;
	rc = logdb_snapshot_begin(r);
	if (rc != 0) {
		free(nq);
		return rc;
	}
	*q = nq;
	return 0;
}

void
logdb_read_end(struct logdb_reader *r, struct logdb_sql **q)
{
	logdb_snapshot_end(r);
	free(*q);
	*q = NULL;
}

/* ---- filters to SQL ---- */

void
logdb_sql_add(struct logdb_sql *q, const char *text)
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
cond(struct logdb_sql *q, const char *text)
{
	logdb_sql_add(q, q->where ? " AND " : " WHERE ");
	q->where = true;
	logdb_sql_add(q, text);
}

static void
bind_text(struct logdb_sql *q, const char *t)
{
	if (q->nb == LOGDB_BINDS_MAX) {
		q->full = true;
		return;
	}
	q->b[q->nb++] = (struct logdb_bind){.is_text = true, .text = t};
}

static void
bind_num(struct logdb_sql *q, int64_t v)
{
	if (q->nb == LOGDB_BINDS_MAX) {
		q->full = true;
		return;
	}
	q->b[q->nb++] = (struct logdb_bind){.num = v};
}

int
logdb_canonical_mac(const char *in, char *out)
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
		return logdb_reader_error(r);
	*out = lo;
	return 0;
}

static void
source_cond(struct logdb_sql *q, bool *first, const char *text)
{
	logdb_sql_add(q, *first ? "" : " AND ");
	logdb_sql_add(q, text);
	*first = false;
}

/* "column IN (?, ?)" with the values of v (texts: canonical MACs for mac). */
static void
source_in(struct logdb_sql *q, bool *first, const char *column, const char *const *texts, size_t n)
{
	if (n == 0)
		return;
	source_cond(q, first, column);
	logdb_sql_add(q, " IN (");
	for (size_t i = 0; i < n; i++) {
		logdb_sql_add(q, i > 0 ? ", ?" : "?");
		bind_text(q, texts[i]);
	}
	logdb_sql_add(q, ")");
}

/* The device conditions of f, on the columns of sources. */
static void
source_conds(struct logdb_sql *q, const struct logdb_filter *f, bool who_is_mac)
{
	const char *macs[LOGDB_FILTER_VALUES];
	bool first = true;
	size_t nmac = logdb_values_count(&f->mac);

	for (size_t i = 0; i < nmac; i++)
		macs[i] = q->mac[i];
	source_in(q, &first, "client", f->client.v, logdb_values_count(&f->client));
	source_in(q, &first, "mac", macs, nmac);
	source_in(q, &first, "device", f->device.v, logdb_values_count(&f->device));
	if (f->who != NULL && who_is_mac) {
		source_cond(q, &first, "mac = ?");
		bind_text(q, q->who_mac);
	} else if (f->who != NULL) {
		source_cond(q, &first, "(device = ? OR client = ?)");
		bind_text(q, f->who);
		bind_text(q, f->who);
	}
	source_in(q, &first, "group_name", f->group.v, logdb_values_count(&f->group));
	source_in(q, &first, "vendor COLLATE NOCASE", f->vendor.v, logdb_values_count(&f->vendor));
}

/* A condition on a column of texts ids (list, action): "column IN (...)" with the ids of the
 * texts. Looked up first rather than in a subquery: texts no row has (a list never hit)
 * become a constant false term, which SQLite evaluates once, before its loop, instead of
 * comparing every row of the window (0 s against 0.7 s for 8.7M rows: list has no index).
 * 0 or -EIO. */
static int
text_cond(struct logdb_reader *r, struct logdb_sql *q, const char *column,
          const struct logdb_values *texts)
{
	sqlite3_stmt *st = NULL;
	int64_t ids[LOGDB_FILTER_VALUES];
	size_t nids = 0, n = logdb_values_count(texts);
	int rc = 0;

	if (n == 0)
		return 0;
	if (sqlite3_prepare_v2(r->db, "SELECT id FROM texts WHERE text = ?1", -1, &st, NULL) !=
	    SQLITE_OK)
		return logdb_reader_error(r);
	for (size_t i = 0; i < n && rc == 0; i++) {
		sqlite3_bind_text(st, 1, texts->v[i], -1, SQLITE_STATIC);
		int step = sqlite3_step(st);
		if (step == SQLITE_ROW)
			ids[nids++] = sqlite3_column_int64(st, 0);
		else if (step != SQLITE_DONE)
			rc = logdb_reader_error(r);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	if (rc != 0)
		return rc;
	if (nids == 0) {
		/* a parameter: a literal 0 would fold the whole WHERE into false at prepare
		 * time, "blocked = 1" with it, and INDEXED BY queries_blocked would fail */
		cond(q, "?");
		bind_num(q, 0);
		return 0;
	}
	cond(q, column);
	logdb_sql_add(q, " IN (");
	for (size_t i = 0; i < nids; i++) {
		logdb_sql_add(q, i > 0 ? ", ?" : "?");
		bind_num(q, ids[i]);
	}
	logdb_sql_add(q, ")");
	return 0;
}

/* ---- the hours that hold a match (the rollups) ---- */

#define HOUR_MS 3600000
/* id ranges written out as an OR: SQLite reads each by its rowid up to about five of them,
 * and scans the table past that; more are read one by one (logdb_query_rows) or as the one
 * range around them all */
#define RANGES_OR 4

/* "AND hour IN (SELECT hour FROM rollup_x WHERE ...)": the hours of rollup_hours that hold
 * a row of a matching source and of a matching name; their id ranges, merged where they touch,
 * become a condition on the id of q: exact (a superset of the matching rows) and what makes
 * a filter by device or domain read those hours only, with no index by source or name. */
static int
hour_ranges(struct logdb_reader *r, struct logdb_sql *q, const struct logdb_filter *f,
            bool by_source, bool who_is_mac, size_t ndom)
{
	struct logdb_sql *h = calloc(1, sizeof(*h));
	sqlite3_stmt *st = NULL;
	int64_t *lo = q->range_lo, *hi = q->range_hi, all_lo = 0, all_hi = 0;
	size_t n = 0, total = 0;
	char num[96];
	int rc;

	if (h == NULL)
		return -ENOMEM;
	memcpy(h->mac, q->mac, sizeof(h->mac));
	memcpy(h->who_mac, q->who_mac, sizeof(h->who_mac));
	logdb_sql_add(h, "SELECT first_id, last_id FROM rollup_hours WHERE 1");
	if (f->since_ms > 0) {
		snprintf(num, sizeof(num), " AND hour >= %lld",
		         (long long)(f->since_ms / HOUR_MS * HOUR_MS));
		logdb_sql_add(h, num);
	}
	if (f->until_ms > 0) {
		snprintf(num, sizeof(num), " AND hour < %lld", (long long)f->until_ms);
		logdb_sql_add(h, num);
	}
	if (by_source) {
		logdb_sql_add(h, " AND hour IN (SELECT hour FROM rollup_sources WHERE source IN"
		                 " (SELECT id FROM sources WHERE ");
		source_conds(h, f, who_is_mac);
		logdb_sql_add(h, "))");
	}
	if (ndom > 0) {
		logdb_sql_add(h, " AND hour IN (SELECT hour FROM rollup_names WHERE name IN"
		                 " (SELECT id FROM names WHERE ");
		for (size_t i = 0; i < ndom; i++) {
			if (domain_range(f->domain.v[i], h->lo[i], h->hi[i], sizeof(h->lo[i])) !=
			    0) {
				free(h);
				return -EINVAL;
			}
			logdb_sql_add(h, i > 0 ? " OR (rname >= ? AND rname < ?)"
			                       : "(rname >= ? AND rname < ?)");
			bind_text(h, h->lo[i]);
			bind_text(h, h->hi[i]);
		}
		logdb_sql_add(h, "))");
	}
	logdb_sql_add(h, " ORDER BY first_id");
	rc = logdb_prepare(r, h, &st);
	while (rc == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		int64_t a = sqlite3_column_int64(st, 0), b = sqlite3_column_int64(st, 1);
		rc = 0;
		if (total > 0 && a <= all_hi + 1) { /* touches the last one */
			all_hi = b > all_hi ? b : all_hi;
			if (n <= LOGDB_RANGES_MAX)
				hi[n - 1] = all_hi;
			continue;
		}
		if (total == 0)
			all_lo = a;
		all_hi = b > all_hi ? b : all_hi;
		if (n < LOGDB_RANGES_MAX) {
			lo[n] = a;
			hi[n] = b;
		}
		n++;
		total++;
	}
	if (rc == SQLITE_DONE)
		rc = 0;
	else if (rc != 0 && rc != -E2BIG && rc != -EIO)
		rc = logdb_reader_error(r);
	sqlite3_finalize(st);
	free(h);
	if (rc != 0)
		return rc;
	if (n == 0) {
		cond(q, "?"); /* no hour holds a match (a parameter: see text_cond) */
		bind_num(q, 0);
		return 0;
	}
	if (q->per_range && n <= LOGDB_RANGES_MAX) {
		/* the caller binds each range in turn */
		q->nranges = n;
		q->range_bind = q->nb + 1;
		cond(q, "id BETWEEN ? AND ?");
		bind_num(q, all_lo);
		bind_num(q, all_hi);
		return 0;
	}
	if (n > RANGES_OR) {
		snprintf(num, sizeof(num), "id BETWEEN %lld AND %lld", (long long)all_lo,
		         (long long)all_hi);
		cond(q, num);
		return 0;
	}
	cond(q, "(");
	for (size_t i = 0; i < n; i++) {
		snprintf(num, sizeof(num), "%sid BETWEEN %lld AND %lld", i > 0 ? " OR " : "",
		         (long long)lo[i], (long long)hi[i]);
		logdb_sql_add(q, num);
	}
	logdb_sql_add(q, ")");
	return 0;
}

/* The WHERE clause of f on the columns of queries. extra: a condition always added (or
 * NULL). */
int
logdb_build_where(struct logdb_reader *r, struct logdb_sql *q, const struct logdb_filter *f,
                  const char *extra)
{
	int64_t id;
	bool who_is_mac = false;
	int rc;

	if (f->instance.v[0] != NULL) /* one instance's file: rows have none */
		return -EINVAL;
	/* ids are in time order (logdb.h): the id bounds make a time range a range of the table or
	 * of any index, the ts_ms ones keep the result exact */
	if (f->since_ms > 0 && !q->rollup) {
		if (time_to_id(r, f->since_ms, &id) != 0)
			return -EIO;
		cond(q, "id >= ? AND ts_ms >= ?");
		bind_num(q, id);
		bind_num(q, (int64_t)f->since_ms);
	}
	if (f->until_ms > 0 && !q->rollup) {
		if (time_to_id(r, f->until_ms, &id) != 0)
			return -EIO;
		cond(q, "id < ? AND ts_ms < ?");
		bind_num(q, id);
		bind_num(q, (int64_t)f->until_ms);
	}
	for (size_t i = 0; i < logdb_values_count(&f->mac); i++)
		if (logdb_canonical_mac(f->mac.v[i], q->mac[i]) != 0)
			return -EINVAL;
	if (f->who != NULL) /* a device name, a MAC or a client IP */
		who_is_mac = logdb_canonical_mac(f->who, q->who_mac) == 0;
	bool by_source = f->client.v[0] != NULL || f->mac.v[0] != NULL || f->device.v[0] != NULL ||
	                 f->who != NULL || f->group.v[0] != NULL || f->vendor.v[0] != NULL;
	bool root = false;
	size_t ndom = logdb_values_count(&f->domain);
	for (size_t i = 0; i < ndom; i++)
		root = root || strcmp(f->domain.v[i], ".") == 0;
	if (root || q->rollup) /* the root is every name; rollup tables are filtered by hour */
		ndom = 0;
	if ((by_source || ndom > 0) && !q->rollup &&
	    (rc = hour_ranges(r, q, f, by_source, who_is_mac, ndom)) != 0)
		return rc;
	if (by_source) {
		cond(q, "source IN (SELECT id FROM sources WHERE ");
		source_conds(q, f, who_is_mac);
		logdb_sql_add(q, ")");
	}
	if ((rc = text_cond(r, q, "list", &f->list)) != 0)
		return rc;
	if ((rc = text_cond(r, q, "action", &f->action)) != 0)
		return rc;
	if (ndom > 0) {
		cond(q, "name IN (SELECT id FROM names WHERE ");
		for (size_t i = 0; i < ndom; i++) {
			if (domain_range(f->domain.v[i], q->lo[i], q->hi[i], sizeof(q->lo[i])) != 0)
				return -EINVAL;
			logdb_sql_add(q, i > 0 ? " OR (rname >= ? AND rname < ?)"
			                       : "(rname >= ? AND rname < ?)");
			bind_text(q, q->lo[i]);
			bind_text(q, q->hi[i]);
		}
		logdb_sql_add(q, ")");
	}
	if (f->blocked == 0)
		cond(q, "blocked = 0");
	else if (f->blocked > 0)
		cond(q, "blocked = 1");
	if (f->after_id > 0 && !q->rollup) {
		cond(q, "id > ?");
		bind_num(q, f->after_id);
	}
	if (extra != NULL)
		cond(q, extra);
	return q->full ? -E2BIG : 0;
}

int
logdb_prepare(struct logdb_reader *r, struct logdb_sql *q, sqlite3_stmt **out)
{
	sqlite3_stmt *st = NULL;

	if (q->full)
		return -E2BIG;
	if (sqlite3_prepare_v2(r->db, q->s, -1, &st, NULL) != SQLITE_OK)
		return logdb_reader_error(r);
	for (int i = 0; i < q->nb; i++) {
		if (q->b[i].is_text)
			sqlite3_bind_text(st, i + 1, q->b[i].text, -1, SQLITE_STATIC);
		else
			sqlite3_bind_int64(st, i + 1, q->b[i].num);
	}
	*out = st;
	return 0;
}

int
logdb_step_error(struct logdb_reader *r, int rc)
{
	return rc == SQLITE_DONE ? 0 : logdb_reader_error(r);
}

/* ---- rows ---- */

/* Steps st (its rows in the order of the statement), at most *left of them when limited. */
static int
emit_rows(struct logdb_reader *r, sqlite3_stmt *st, bool limited, uint32_t *left, logdb_row_cb cb,
          void *arg)
{
	int rc;

	while ((!limited || *left > 0) && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		struct logdb_row row;
		logdb_row_read(st, &row);
		int cr = cb(arg, &row);
		if (cr != 0)
			return cr;
		if (limited)
			(*left)--;
	}
	if (limited && *left == 0)
		return 0;
	return logdb_step_error(r, rc);
}

/* The smallest id of the newest f->limit matches, reading the ranges newest first (ids only),
 * for chronological output: *from, or the first range's start when there are fewer. */
static int
newest_from(struct logdb_reader *r, struct logdb_sql *q, const struct logdb_filter *f,
            const char *ids_sql, int64_t *from)
{
	sqlite3_stmt *st = NULL;
	uint32_t left = f->limit;
	int rc = 0;

	*from = q->range_lo[0];
	struct logdb_sql *c = malloc(sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	memcpy(c, q, sizeof(*c));
	memcpy(c->s, ids_sql, strlen(ids_sql) + 1);
	c->n = strlen(ids_sql);
	rc = logdb_prepare(r, c, &st);
	for (size_t i = q->nranges; rc == 0 && i-- > 0 && left > 0;) {
		sqlite3_bind_int64(st, q->range_bind, q->range_lo[i]);
		sqlite3_bind_int64(st, q->range_bind + 1, q->range_hi[i]);
		sqlite3_bind_int64(st, q->nb + 1, left);
		while ((rc = sqlite3_step(st)) == SQLITE_ROW && left > 0) {
			*from = sqlite3_column_int64(st, 0);
			left--;
		}
		rc = rc == SQLITE_ROW ? 0 : logdb_step_error(r, rc);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	free(c);
	return rc;
}

int
logdb_query_rows(struct logdb_reader *r, const struct logdb_filter *f, logdb_row_cb cb, void *arg)
{
	struct logdb_sql *q = NULL;
	sqlite3_stmt *st = NULL;
	char lim[48];
	int rc;

	if (r->pg != NULL)
		return pgread_rows(r->pg, f, cb, arg);
	rc = logdb_read_begin(r, &q);
	if (rc != 0)
		return rc;
	/* the ids first, sorted and limited while they are narrow; then their text */
	bool asc = f->oldest_first && !f->chronological;
	q->per_range = true;
	logdb_sql_add(q, "SELECT " LOGDB_ROW_COLUMNS
	                 " FROM query_log WHERE id IN (SELECT id FROM queries");
	size_t head = q->n;
	rc = logdb_build_where(r, q, f, NULL);
	if (rc != 0)
		goto cleanup;
	if (q->nranges > 0) {
		/* a device or domain in some hours only: each hour range by itself, in the
		 * order of the output (SQLite would scan the table for a long OR of them) */
		uint32_t left = f->limit;
		int64_t from = 0;
		if (f->chronological && f->limit > 0) {
			char ids[LOGDB_SQL_MAX];
			snprintf(ids, sizeof(ids),
			         "SELECT id FROM queries%s ORDER BY id DESC LIMIT ?", q->s + head);
			rc = newest_from(r, q, f, ids, &from);
			if (rc != 0)
				goto cleanup;
		}
		bool up = asc || f->chronological;
		bool limited = f->limit > 0 && !f->chronological;
		/* the ids of a range sorted and limited while they are narrow, as below */
		if (limited)
			logdb_sql_add(q,
			              asc ? " ORDER BY id LIMIT ?" : " ORDER BY id DESC LIMIT ?");
		logdb_sql_add(q, up ? ") ORDER BY id" : ") ORDER BY id DESC");
		rc = logdb_prepare(r, q, &st);
		for (size_t k = 0; rc == 0 && k < q->nranges && (!limited || left > 0); k++) {
			size_t i = up ? k : q->nranges - 1 - k;
			if (q->range_hi[i] < from)
				continue;
			sqlite3_bind_int64(st, q->range_bind,
			                   q->range_lo[i] > from ? q->range_lo[i] : from);
			sqlite3_bind_int64(st, q->range_bind + 1, q->range_hi[i]);
			if (limited)
				sqlite3_bind_int64(st, q->nb + 1, left);
			rc = emit_rows(r, st, limited, &left, cb, arg);
			sqlite3_reset(st);
		}
		goto cleanup;
	}
	if (f->limit > 0) {
		snprintf(lim, sizeof(lim), " ORDER BY id%s LIMIT %u", asc ? "" : " DESC",
		         (unsigned)f->limit);
		logdb_sql_add(q, lim);
	}
	logdb_sql_add(q, asc || f->chronological ? ") ORDER BY id" : ") ORDER BY id DESC");
	rc = logdb_prepare(r, q, &st);
	if (rc != 0)
		goto cleanup;
	uint32_t unlimited = 0;
	rc = emit_rows(r, st, false, &unlimited, cb, arg);
cleanup:
	sqlite3_finalize(st);
	logdb_read_end(r, &q);
	return rc;
}

int
logdb_last_id(struct logdb_reader *r, int64_t *out)
{
	sqlite3_stmt *st = NULL;
	int rc;

	if (r->pg != NULL)
		return pgread_last_id(r->pg, out);
	if (sqlite3_prepare_v2(r->db, "SELECT coalesce(max(id), 0) FROM queries", -1, &st, NULL) !=
	    SQLITE_OK)
		return logdb_reader_error(r);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*out = sqlite3_column_int64(st, 0);
		rc = 0;
	} else {
		rc = logdb_step_error(r, rc);
		if (rc == 0)
			rc = -EIO;
	}
	sqlite3_finalize(st);
	return rc;
}

int
logdb_known_values(struct logdb_reader *r, enum logdb_known kind,
                   int (*cb)(void *arg, const char *value), void *arg)
{
	static const char *const sql[] = {
	        [LOGDB_KNOWN_GROUP] = "SELECT DISTINCT group_name FROM sources"
	                              " WHERE group_name IS NOT NULL",
	        [LOGDB_KNOWN_VENDOR] =
	                "SELECT DISTINCT vendor FROM sources WHERE vendor IS NOT NULL",
	        [LOGDB_KNOWN_DEVICE] =
	                "SELECT DISTINCT device FROM sources WHERE device IS NOT NULL",
	        [LOGDB_KNOWN_TEXT] = "SELECT text FROM texts WHERE text IS NOT NULL",
	};
	sqlite3_stmt *st = NULL;
	int rc;

	if (r->pg != NULL)
		return pgread_known(r->pg, kind, cb, arg);
	if (sqlite3_prepare_v2(r->db, sql[kind], -1, &st, NULL) != SQLITE_OK)
		return logdb_reader_error(r);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		int stop = cb(arg, (const char *)sqlite3_column_text(st, 0));
		if (stop != 0) {
			sqlite3_finalize(st);
			return stop;
		}
	}
	rc = logdb_step_error(r, rc);
	sqlite3_finalize(st);
	return rc;
}
