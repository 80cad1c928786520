/*
 * pgread: reading the shared store on PostgreSQL (pgread.h): the connection, snapshots,
 * filters to parameterised SQL, the rows of `veto log`, device events, the values a filter's
 * "did you mean" knows, and the newest id. The reports are pgread_report.c.
 *
 * Rows: a device or domain filter is restricted to the hours whose rollups (rollup_sources,
 * rollup_names) hold a match, as the SQLite back end restricts it to their id ranges; without
 * one, to the days of rollup_days. The ranges (adjacent hours merged, up to a day) are read
 * one by one in the order of the output, each a statement bounded in time (partition pruning
 * and the BRIN index on ts) and limited to the rows still wanted, so that `veto log` reads the
 * newest day or hours only. The last range is left open at its end: rows a writer stored
 * after the newest rollup the reader saw are not missed.
 */
#include "pgread.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "logdb_reader_int.h"
#include "names.h"
#include "pg.h"

#define HOUR_MS    3600000LL
#define DAY_MS     86400000LL
#define RANGES_MAX 4096

/* ---- connection ---- */

int
pgread_open(const struct config *cfg, const char *role, struct pgread **out)
{
	char why[512], inst[64];
	struct pgread *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return -ENOMEM;
	rc = pg_connect(cfg, role, &p->conn, why, sizeof(why));
	if (rc != 0) {
		log_error("shared store: %s", why);
		free(p);
		return rc;
	}
	int v = pg_schema_version(p->conn);
	if (v != PG_SCHEMA_VERSION) {
		/* none yet (no daemon has started with the store) or an older one: as the daemon
		 * does, under its lock; a newer one is refused */
		rc = pg_schema_ensure(p->conn, pg_instance(cfg, inst, sizeof(inst)), why,
		                      sizeof(why));
		if (rc != 0) {
			log_error("shared store: %s", why);
			pgread_free(&p);
			return rc;
		}
	}
	*out = p;
	return 0;
}

int
logdb_reader_open_pg(const struct config *cfg, const char *role, struct logdb_reader **out)
{
	struct logdb_reader *r = calloc(1, sizeof(*r));
	int rc;

	if (r == NULL)
		return -ENOMEM;
	rc = pgread_open(cfg, role, &r->pg);
	if (rc != 0) {
		free(r);
		return rc;
	}
	*out = r;
	return 0;
}

bool
logdb_reader_shared(const struct logdb_reader *r)
{
	return r != NULL && r->pg != NULL;
}

void
pgread_free(struct pgread **pp)
{
	struct pgread *p = *pp;

	if (p == NULL)
		return;
	PQfinish(p->conn);
	free(p);
	*pp = NULL;
}

static int
exec_plain(struct pgread *p, const char *sql)
{
	char why[512];

	if (pg_exec(p->conn, sql, why, sizeof(why)) != 0) {
		log_error("shared store: %s", why);
		return -EIO;
	}
	return 0;
}

int
pgread_snapshot_begin(struct pgread *p)
{
	if (p->snapshots > 0) {
		p->snapshots++;
		return 0;
	}
	int rc = exec_plain(p, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
	if (rc == 0)
		p->snapshots = 1;
	return rc;
}

void
pgread_snapshot_end(struct pgread *p)
{
	if (p->snapshots > 0 && --p->snapshots == 0)
		exec_plain(p, "COMMIT");
}

/* ---- statements ---- */

void
pgsql_add(struct pgsql *q, const char *text)
{
	size_t l = strlen(text);

	if (q->n + l >= sizeof(q->s)) {
		q->full = true;
		return;
	}
	memcpy(q->s + q->n, text, l + 1);
	q->n += l;
}

void
pgsql_param(struct pgsql *q, const char *v)
{
	char ref[16];

	if (q->nv == PGREAD_PARAMS_MAX) {
		q->full = true;
		return;
	}
	q->v[q->nv++] = v;
	snprintf(ref, sizeof(ref), "$%d", q->nv);
	pgsql_add(q, ref);
}

void
pgsql_num(struct pgsql *q, int64_t v)
{
	if (q->nv == PGREAD_PARAMS_MAX) {
		q->full = true;
		return;
	}
	snprintf(q->num[q->nv], sizeof(q->num[0]), "%lld", (long long)v);
	pgsql_param(q, q->num[q->nv]);
	pgsql_add(q, "::int8");
}

void
pgsql_time(struct pgsql *q, uint64_t ms)
{
	time_t s = (time_t)(ms / 1000);
	struct tm tm;

	if (q->nv == PGREAD_PARAMS_MAX) {
		q->full = true;
		return;
	}
	gmtime_r(&s, &tm);
	snprintf(q->num[q->nv], sizeof(q->num[0]), "%04d-%02d-%02d %02d:%02d:%02d.%03u+00",
	         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
	         (unsigned)(ms % 1000));
	pgsql_param(q, q->num[q->nv]);
	pgsql_add(q, "::timestamptz");
}

int
pgsql_array(struct pgsql *q, const char *const *v, size_t n, char *buf, size_t cap)
{
	size_t o = 0;

	if (cap < 3)
		return -E2BIG;
	buf[o++] = '{';
	for (size_t i = 0; i < n; i++) {
		if (o + 2 >= cap)
			return -E2BIG;
		if (i > 0)
			buf[o++] = ',';
		buf[o++] = '"';
		for (const char *s = v[i]; *s != '\0'; s++) {
			if (o + 4 >= cap)
				return -E2BIG;
			if (*s == '"' || *s == '\\')
				buf[o++] = '\\';
			buf[o++] = *s;
		}
		buf[o++] = '"';
	}
	if (o + 2 > cap)
		return -E2BIG;
	buf[o++] = '}';
	buf[o] = '\0';
	pgsql_param(q, buf);
	pgsql_add(q, "::text[]");
	return 0;
}

/* " AND column IN ($1, $2)" with texts[0..n) */
static void
cond_in(struct pgsql *q, const char *column, const char *const *texts, size_t n)
{
	if (n == 0)
		return;
	pgsql_add(q, " AND ");
	pgsql_add(q, column);
	pgsql_add(q, " IN (");
	for (size_t i = 0; i < n; i++) {
		pgsql_add(q, i > 0 ? ", " : "");
		pgsql_param(q, texts[i]);
	}
	pgsql_add(q, ")");
}

/* The canonical text of a domain filter ("Example.COM." -> ".example.com") into dot. */
static int
domain_text(const char *domain, char *dot)
{
	struct names_name n;
	const char *why;

	if (names_from_text(&n, domain, strlen(domain), &why) != 0)
		return -EINVAL;
	dot[0] = '.';
	names_to_text(&n, dot + 1);
	return 0;
}

int
pgread_domain(struct pgsql *q, const struct logdb_filter *f)
{
	size_t nd = logdb_values_count(&f->domain);

	if (!logdb_filter_has_domain(f))
		return 0;
	pgsql_add(q, " AND (");
	for (size_t i = 0; i < nd; i++) {
		if (domain_text(f->domain.v[i], q->dom[i]) != 0)
			return -EINVAL;
		size_t l = strlen(q->dom[i]);
		for (size_t k = 0; k < l; k++)
			q->rlo[i][k] = q->dom[i][l - 1 - k];
		q->rlo[i][l] = '\0';
		memcpy(q->rhi[i], q->rlo[i], l + 1);
		q->rhi[i][l - 1] = '/'; /* the octet after '.' */
		pgsql_add(q, i > 0 ? " OR qname = " : "qname = ");
		pgsql_param(q, q->dom[i] + 1);
		pgsql_add(q, " OR (reverse(qname) COLLATE \"C\" >= ");
		pgsql_param(q, q->rlo[i]);
		pgsql_add(q, " AND reverse(qname) COLLATE \"C\" < ");
		pgsql_param(q, q->rhi[i]);
		pgsql_add(q, ")");
	}
	pgsql_add(q, ")");
	return q->full ? -E2BIG : 0;
}

int
pgread_where(struct pgsql *q, const struct logdb_filter *f, unsigned flags)
{
	bool rollup = (flags & PGW_ROLLUP) != 0;
	const char *macs[LOGDB_FILTER_VALUES];
	size_t nmac = logdb_values_count(&f->mac);

	if (!rollup && f->since_ms > 0) {
		pgsql_add(q, " AND ts >= ");
		pgsql_time(q, f->since_ms);
	}
	if (!rollup && f->until_ms > 0) {
		pgsql_add(q, " AND ts < ");
		pgsql_time(q, f->until_ms);
	}
	for (size_t i = 0; i < nmac; i++) {
		if (logdb_canonical_mac(f->mac.v[i], q->mac[i]) != 0)
			return -EINVAL;
		macs[i] = q->mac[i];
	}
	if ((flags & PGW_NO_SOURCE) == 0) {
		cond_in(q, "client", f->client.v, logdb_values_count(&f->client));
		cond_in(q, "mac", macs, nmac);
		cond_in(q, "device", f->device.v, logdb_values_count(&f->device));
		if (f->who != NULL && logdb_canonical_mac(f->who, q->who_mac) == 0) {
			pgsql_add(q, " AND mac = ");
			pgsql_param(q, q->who_mac);
		} else if (f->who != NULL) {
			pgsql_add(q, " AND (device = ");
			pgsql_param(q, f->who);
			pgsql_add(q, " OR client = ");
			pgsql_param(q, f->who);
			pgsql_add(q, ")");
		}
		cond_in(q, "group_name", f->group.v, logdb_values_count(&f->group));
		/* SQLite's COLLATE NOCASE: ASCII letters folded */
		size_t nv = logdb_values_count(&f->vendor);
		if (nv > 0) {
			pgsql_add(q, " AND upper(vendor COLLATE \"C\") IN (");
			for (size_t i = 0; i < nv; i++) {
				pgsql_add(q, i > 0 ? ", upper(" : "upper(");
				pgsql_param(q, f->vendor.v[i]);
				pgsql_add(q, " COLLATE \"C\")");
			}
			pgsql_add(q, ")");
		}
	}
	cond_in(q, "instance", f->instance.v, logdb_values_count(&f->instance));
	cond_in(q, "list", f->list.v, logdb_values_count(&f->list));
	cond_in(q, "action", f->action.v, logdb_values_count(&f->action));
	if (!rollup && pgread_domain(q, f) != 0)
		return -EINVAL;
	if (f->blocked == 0)
		pgsql_add(q, " AND NOT blocked");
	else if (f->blocked > 0)
		pgsql_add(q, " AND blocked");
	if (!rollup && f->after_id > 0) {
		/* the time of the id first: it bounds the partitions and the BRIN ranges read */
		pgsql_add(q, " AND ts >= ");
		pgsql_time(q, (uint64_t)(f->after_id >> 20));
		pgsql_add(q, " AND " PGREAD_ID_SQL " > ");
		pgsql_num(q, f->after_id);
	}
	return q->full ? -E2BIG : 0;
}

int
pgread_exec(struct pgread *p, const struct pgsql *q, PGresult **out)
{
	char why[512];

	if (q->full)
		return -E2BIG;
	PGresult *r = PQexecParams(p->conn, q->s, q->nv, NULL, q->v, NULL, NULL, 0);
	if (PQresultStatus(r) != PGRES_TUPLES_OK && PQresultStatus(r) != PGRES_COMMAND_OK) {
		log_error("shared store: %s", pg_error(p->conn, r, why, sizeof(why)));
		PQclear(r);
		return -EIO;
	}
	*out = r;
	return 0;
}

const char *
pgread_text(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? NULL : PQgetvalue(r, row, col);
}

int64_t
pgread_int(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

uint64_t
pgread_u64(const PGresult *r, int row, int col)
{
	int64_t v = pgread_int(r, row, col);

	return v > 0 ? (uint64_t)v : 0;
}

/* ---- rows ---- */

#define ROW_COLUMNS                                                                                \
	PGREAD_ID_SQL " AS id, " PGREAD_MS(                                                        \
	        "ts") ", client, proto, group_name, qname, qtype,"                                 \
	              " blocked, list, rule, action, rcode, upstream, latency_us, mac, device,"    \
	              " vendor, vendor_source, instance"

static void
row_read(const PGresult *r, int i, struct logdb_row *row)
{
	int64_t ts = pgread_int(r, i, 1), lat = pgread_int(r, i, 13);
	const char *b = pgread_text(r, i, 7);

	*row = (struct logdb_row){
	        .id = pgread_int(r, i, 0),
	        .ts_ms = ts > 0 ? (uint64_t)ts : 0,
	        .client = pgread_text(r, i, 2),
	        .proto = pgread_text(r, i, 3),
	        .group = pgread_text(r, i, 4),
	        .qname = pgread_text(r, i, 5),
	        .qtype = pgread_text(r, i, 6),
	        .blocked = b != NULL && b[0] == 't',
	        .list = pgread_text(r, i, 8),
	        .rule = pgread_text(r, i, 9),
	        .action = pgread_text(r, i, 10),
	        .rcode = pgread_text(r, i, 11),
	        .upstream = pgread_text(r, i, 12),
	        .latency_us = lat < 0            ? 0
	                      : lat > UINT32_MAX ? UINT32_MAX
	                                         : (uint32_t)lat,
	        .mac = pgread_text(r, i, 14),
	        .device = pgread_text(r, i, 15),
	        .vendor = pgread_text(r, i, 16),
	        .vendor_source = pgread_text(r, i, 17),
	        .instance = pgread_text(r, i, 18),
	};
}

struct ranges {
	int64_t *lo, *hi; /* ms, [lo, hi), in time order */
	size_t n;
};

/* Adds [lo, hi) to the ranges, merged into the last one when they touch and the result spans
 * a day at most. */
static int
ranges_add(struct ranges *rg, int64_t lo, int64_t hi)
{
	if (rg->n > 0 && rg->hi[rg->n - 1] == lo && hi - rg->lo[rg->n - 1] <= DAY_MS) {
		rg->hi[rg->n - 1] = hi;
		return 0;
	}
	if (rg->n == RANGES_MAX) { /* one range around the rest */
		rg->hi[rg->n - 1] = hi;
		return 0;
	}
	rg->lo[rg->n] = lo;
	rg->hi[rg->n] = hi;
	rg->n++;
	return 0;
}

/* The time ranges that may hold f's rows, from the rollups: the hours that hold a matching
 * source (rollup_sources) and name (rollup_names), else the days of rollup_days; clipped to
 * f's window, the last one open at its end (INT64_MAX). */
static int
row_ranges(struct pgread *p, const struct logdb_filter *f, struct ranges *rg)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	bool src = logdb_filter_has_source(f), dom = logdb_filter_has_domain(f);
	int64_t len = src || dom ? HOUR_MS : DAY_MS;
	PGresult *r = NULL;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	if (src || dom) {
		pgsql_add(q, "SELECT " PGREAD_MS("t.hour") " FROM (SELECT DISTINCT hour");
		pgsql_add(q, dom ? " FROM rollup_names WHERE true"
		                 : " FROM rollup_sources WHERE true");
		rc = pgread_where(q, f, PGW_ROLLUP | (dom ? PGW_NO_SOURCE : 0));
	} else {
		/* every day from the first to the last of rollup_days (by its primary key): the
		 * other filters are left to the rows */
		pgsql_add(q, "SELECT " PGREAD_MS(
		                     "t.d AT TIME ZONE 'UTC'") " FROM (SELECT "
		                                               "generate_series(min(day)::"
		                                               "timestamp, max(day)::timestamp,"
		                                               " interval '1 day') AS d FROM "
		                                               "rollup_days WHERE true");
		rc = 0;
	}
	if (dom) {
		if (rc == 0)
			rc = pgread_domain(q, f);
		if (src) {
			pgsql_add(q, " AND hour IN (SELECT hour FROM rollup_sources WHERE true");
			if (rc == 0)
				rc = pgread_where(q, f, PGW_ROLLUP);
			pgsql_add(q, ")");
		}
	}
	if (f->since_ms > 0) {
		pgsql_add(q, src || dom ? " AND hour >= " : " AND day >= (");
		pgsql_time(q, f->since_ms / (uint64_t)len * (uint64_t)len);
		pgsql_add(q, src || dom ? "" : " AT TIME ZONE 'UTC')::date");
	}
	if (f->until_ms > 0) {
		pgsql_add(q, src || dom ? " AND hour < " : " AND day < (");
		pgsql_time(q, f->until_ms);
		pgsql_add(q, src || dom ? "" : " AT TIME ZONE 'UTC')::date + 1");
	}
	pgsql_add(q, ") t ORDER BY 1");
	if (rc == 0)
		rc = pgread_exec(p, q, &r);
	free(q);
	if (rc != 0)
		return rc;
	int n = PQntuples(r);
	rg->lo = malloc(((size_t)n + 1) * sizeof(*rg->lo));
	rg->hi = malloc(((size_t)n + 1) * sizeof(*rg->hi));
	if (rg->lo == NULL || rg->hi == NULL) {
		PQclear(r);
		return -ENOMEM;
	}
	for (int i = 0; i < n; i++) {
		int64_t a = pgread_int(r, i, 0);
		ranges_add(rg, a, a + len);
	}
	PQclear(r);
	if (rg->n == 0) { /* nothing in the rollups: the newest rows only, if any */
		rg->lo[0] = f->since_ms > 0 ? (int64_t)f->since_ms : 0;
		rg->n = src || dom ? 0 : 1;
	}
	if (rg->n > 0)
		rg->hi[rg->n - 1] = INT64_MAX;
	for (size_t i = 0; i < rg->n; i++) {
		if (f->since_ms > 0 && rg->lo[i] < (int64_t)f->since_ms)
			rg->lo[i] = (int64_t)f->since_ms;
		if (f->until_ms > 0 && rg->hi[i] > (int64_t)f->until_ms)
			rg->hi[i] = (int64_t)f->until_ms;
	}
	return 0;
}

/* The rows of f in [lo, hi) (hi INT64_MAX: open), in the order asked, at most limit (0: all). */
static int
range_rows(struct pgread *p, const struct logdb_filter *f, int64_t lo, int64_t hi, bool up,
           uint32_t limit, PGresult **out)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	int rc;

	if (q == NULL)
		return -ENOMEM;
	pgsql_add(q, "SELECT " ROW_COLUMNS " FROM queries WHERE true");
	if (lo > 0) {
		pgsql_add(q, " AND ts >= ");
		pgsql_time(q, (uint64_t)lo);
	}
	if (hi != INT64_MAX) {
		pgsql_add(q, " AND ts < ");
		pgsql_time(q, (uint64_t)hi);
	}
	rc = pgread_where(q, f, 0);
	pgsql_add(q, up ? " ORDER BY id" : " ORDER BY id DESC");
	if (limit > 0) {
		pgsql_add(q, " LIMIT ");
		pgsql_num(q, limit);
	}
	if (rc == 0)
		rc = pgread_exec(p, q, out);
	free(q);
	return rc;
}

static int
emit(const PGresult *r, bool reverse, logdb_row_cb cb, void *arg)
{
	int n = PQntuples(r);

	for (int k = 0; k < n; k++) {
		struct logdb_row row;
		row_read(r, reverse ? n - 1 - k : k, &row);
		int rc = cb(arg, &row);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
pgread_rows(struct pgread *p, const struct logdb_filter *f, logdb_row_cb cb, void *arg)
{
	struct ranges rg = {0};
	PGresult **kept = NULL;
	size_t nkept = 0;
	int rc;

	rc = pgread_snapshot_begin(p);
	if (rc != 0)
		return rc;
	bool asc = f->oldest_first && !f->chronological;
	if (f->after_id > 0) { /* a tail: the newest rows only, in one statement */
		rg.lo = malloc(sizeof(*rg.lo));
		rg.hi = malloc(sizeof(*rg.hi));
		if (rg.lo == NULL || rg.hi == NULL) {
			rc = -ENOMEM;
			goto cleanup;
		}
		rg.lo[0] = 0;
		rg.hi[0] = INT64_MAX;
		rg.n = 1;
	} else {
		rc = row_ranges(p, f, &rg);
		if (rc != 0)
			goto cleanup;
	}
	/* chronological: the newest f->limit rows, read newest first, printed in time order */
	bool keep = f->chronological && f->limit > 0;
	bool up = asc || (f->chronological && !keep);
	uint32_t left = f->limit;
	if (keep && (kept = calloc(rg.n + 1, sizeof(*kept))) == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (size_t k = 0; rc == 0 && k < rg.n && (f->limit == 0 || left > 0); k++) {
		size_t i = up ? k : rg.n - 1 - k;
		PGresult *r = NULL;
		if (rg.lo[i] >= rg.hi[i])
			continue;
		rc = range_rows(p, f, rg.lo[i], rg.hi[i], up, f->limit > 0 ? left : 0, &r);
		if (rc != 0)
			break;
		if (f->limit > 0)
			left -= (uint32_t)PQntuples(r);
		if (keep) {
			kept[nkept++] = r;
			continue;
		}
		rc = emit(r, false, cb, arg);
		PQclear(r);
	}
	for (size_t i = nkept; rc == 0 && i-- > 0;)
		rc = emit(kept[i], true, cb, arg);
cleanup:
	for (size_t i = 0; i < nkept; i++)
		PQclear(kept[i]);
	free(kept);
	free(rg.lo);
	free(rg.hi);
	pgread_snapshot_end(p);
	return rc;
}

int
pgread_last_id(struct pgread *p, int64_t *out)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	PGresult *r = NULL;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	/* the newest day of the rollups bounds the partitions read (at run time) */
	pgsql_add(q, "SELECT " PGREAD_ID_SQL " AS id FROM queries WHERE ts >= coalesce((SELECT"
	             " max(day) FROM rollup_days)::timestamp AT TIME ZONE 'UTC', '-infinity')"
	             " ORDER BY id DESC LIMIT 1");
	rc = pgread_exec(p, q, &r);
	free(q);
	if (rc != 0)
		return rc;
	*out = PQntuples(r) > 0 ? pgread_int(r, 0, 0) : 0;
	PQclear(r);
	return 0;
}

/* ---- device events ---- */

int
pgread_events(struct pgread *p, const struct logdb_filter *f, logdb_event_cb cb, void *arg)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	char who_mac[18], mac[18];
	PGresult *r = NULL;
	int rc = 0;

	if (q == NULL)
		return -ENOMEM;
	if (f->mac.v[0] != NULL && logdb_canonical_mac(f->mac.v[0], mac) != 0)
		rc = -EINVAL;
	bool who_is_mac = f->who != NULL && logdb_canonical_mac(f->who, who_mac) == 0;
	pgsql_add(q, "SELECT id, " PGREAD_MS("ts") ", device, mac, client, kind, old_group,"
	                                           " new_group, evidence, vendor FROM (SELECT * "
	                                           "FROM device_events WHERE true");
	if (f->since_ms > 0) {
		pgsql_add(q, " AND ts >= ");
		pgsql_time(q, f->since_ms);
	}
	if (f->until_ms > 0) {
		pgsql_add(q, " AND ts < ");
		pgsql_time(q, f->until_ms);
	}
	if (f->who != NULL && who_is_mac) {
		pgsql_add(q, " AND mac = ");
		pgsql_param(q, who_mac);
	} else if (f->who != NULL) {
		pgsql_add(q, " AND (device = ");
		pgsql_param(q, f->who);
		pgsql_add(q, " OR client = ");
		pgsql_param(q, f->who);
		pgsql_add(q, ")");
	}
	/* the first value of each, as the SQLite back end */
	const struct {
		const char *col, *v;
	} eq[] = {
	        {" AND client = ", f->client.v[0]},
	        {" AND mac = ", f->mac.v[0] != NULL ? mac : NULL},
	        {" AND device = ", f->device.v[0]},
	        {" AND instance = ", f->instance.v[0]},
	};
	for (size_t i = 0; i < sizeof(eq) / sizeof(eq[0]); i++) {
		if (eq[i].v != NULL) {
			pgsql_add(q, eq[i].col);
			pgsql_param(q, eq[i].v);
		}
	}
	/* by time, not id: a spooled batch's events are inserted after newer ones */
	pgsql_add(q, " ORDER BY ts DESC, id DESC");
	if (f->limit > 0) {
		pgsql_add(q, " LIMIT ");
		pgsql_num(q, f->limit);
	}
	pgsql_add(q, ") e ORDER BY e.ts, e.id");
	if (rc == 0)
		rc = pgread_exec(p, q, &r);
	free(q);
	for (int i = 0; rc == 0 && i < PQntuples(r); i++) {
		int64_t ts = pgread_int(r, i, 1);
		struct logdb_event_row ev = {
		        .id = pgread_int(r, i, 0),
		        .ts_ms = ts > 0 ? (uint64_t)ts : 0,
		        .device = pgread_text(r, i, 2),
		        .mac = pgread_text(r, i, 3),
		        .client = pgread_text(r, i, 4),
		        .kind = pgread_text(r, i, 5),
		        .old_group = pgread_text(r, i, 6),
		        .new_group = pgread_text(r, i, 7),
		        .evidence = pgread_text(r, i, 8),
		        .vendor = pgread_text(r, i, 9),
		};
		rc = cb(arg, &ev);
	}
	PQclear(r);
	return rc;
}

/* ---- known values ---- */

int
pgread_known(struct pgread *p, enum logdb_known kind, int (*cb)(void *arg, const char *value),
             void *arg)
{
	static const char *const sql[] = {
	        [LOGDB_KNOWN_GROUP] =
	                "SELECT DISTINCT group_name FROM rollup_days WHERE group_name <> ''",
	        [LOGDB_KNOWN_VENDOR] = "SELECT DISTINCT vendor FROM rollup_days WHERE vendor <> ''",
	        [LOGDB_KNOWN_DEVICE] = "SELECT DISTINCT device FROM rollup_days WHERE device <> ''",
	        [LOGDB_KNOWN_TEXT] = "SELECT list FROM rollup_days WHERE list <> ''"
	                             " UNION SELECT action FROM rollup_days WHERE action <> ''",
	};
	struct pgsql *q = calloc(1, sizeof(*q));
	PGresult *r = NULL;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	pgsql_add(q, sql[kind]);
	rc = pgread_exec(p, q, &r);
	free(q);
	for (int i = 0; rc == 0 && i < PQntuples(r); i++)
		rc = cb(arg, pgread_text(r, i, 0));
	PQclear(r);
	return rc;
}
