/*
 * pgread_report: `veto report attempts` and `veto report summary` on the shared store
 * (pgread.h), with the results of logdb_report.c and logdb_summary.c: the same devices,
 * counts, top lists and names, in the same order (the orderings are applied here in C, as
 * there, so that equal counts sort the same way).
 *
 * Attempts: two hash aggregates over the blocked rows of the window (the partial index on ts
 * WHERE blocked, which includes the columns read: an index-only scan): by (device, list), and
 * the distinct (device, name) pairs of attempts; the latest row of each device printed is
 * found by its time through the same index, and the vendor evidence from device_events.
 * Summary: the whole UTC days of the window from rollup_days, its whole hours around them from
 * rollup_sources, its partial hours at either end from the rows (a domain filter: all from the
 * rows); the per-hour counts from rollup_hours (from rollup_sources under a source, group,
 * list, action or blocked filter); the top blocked names from rollup_names
 * (from the blocked rows when a device filter needs them: rollup_names has no device).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgread.h"

#define HOUR_MS   3600000LL
#define DAY_MS    86400000LL
#define ARRAY_MAX (1 << 20)

static int
cmp_u64_desc(uint64_t a, uint64_t b)
{
	return a == b ? 0 : a > b ? -1 : 1;
}

/* NULL first, then by octets */
static int
cmp_label(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == NULL ? (b == NULL ? 0 : -1) : 1;
	return strcmp(a, b);
}

static uint64_t
u64(const PGresult *r, int i, int c)
{
	int64_t v = pgread_int(r, i, c);
	return v > 0 ? (uint64_t)v : 0;
}

/* ---- attempts ---- */

struct pattempt {
	const char *key; /* into the result */
	bool by_ip;
	uint64_t attempts, denied, names, first, last;
	struct logdb_list_count top[LOGDB_TOP_LISTS];
	size_t ntop;
	const char *device, *mac, *client, *vendor, *vendor_source, *group;
	char evidence[512];
};

static int
cmp_pattempt(const void *x, const void *y)
{
	const struct pattempt *a = x, *b = y;
	int c = cmp_u64_desc(a->attempts, b->attempts);

	if (c == 0)
		c = cmp_u64_desc(a->denied, b->denied);
	if (c == 0)
		c = strcmp(a->key, b->key);
	return c != 0 ? c : (int)a->by_ip - (int)b->by_ip;
}

/* Keeps (list, n) among the top lists of a (n desc, then name). */
static void
top_add(struct pattempt *a, const char *list, uint64_t n)
{
	struct logdb_list_count c = {list, n};
	size_t i = a->ntop;

	while (i > 0 && (cmp_u64_desc(a->top[i - 1].attempts, n) > 0 ||
	                 (a->top[i - 1].attempts == n && strcmp(a->top[i - 1].list, list) > 0)))
		i--;
	if (i >= LOGDB_TOP_LISTS)
		return;
	size_t last = a->ntop < LOGDB_TOP_LISTS ? a->ntop : LOGDB_TOP_LISTS - 1;
	memmove(&a->top[i + 1], &a->top[i], (last - i) * sizeof(a->top[0]));
	a->top[i] = c;
	if (a->ntop < LOGDB_TOP_LISTS)
		a->ntop++;
}

/* The latest details of the devices v[0..n): device, mac, client, vendor of their last row. */
static int
latest_details(struct pgread *p, const struct logdb_filter *f, struct pattempt *v, size_t n,
               PGresult **out)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	const char **keys = malloc((n + 1) * sizeof(*keys));
	char *kbuf = malloc(ARRAY_MAX), *lbuf = malloc(ARRAY_MAX), *bbuf = malloc(ARRAY_MAX);
	char(*nums)[24] = malloc((n + 1) * sizeof(*nums));
	const char **lasts = malloc((n + 1) * sizeof(*lasts)),
	           **ips = malloc((n + 1) * sizeof(*ips));
	int rc = 0;

	if (q == NULL || keys == NULL || kbuf == NULL || lbuf == NULL || bbuf == NULL ||
	    nums == NULL || lasts == NULL || ips == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < n; i++) {
		keys[i] = v[i].key;
		snprintf(nums[i], sizeof(nums[i]), "%llu", (unsigned long long)v[i].last);
		lasts[i] = nums[i];
		ips[i] = v[i].by_ip ? "t" : "f";
	}
	/* one probe of the blocked rows' index per device, at the time of its last attempt (a
	 * join of the whole window sorted every blocked row by device: seconds at 10 M rows) */
	pgsql_add(q, "SELECT k.i, q.device, q.mac, q.client, q.vendor, q.vendor_source,"
	             " q.group_name FROM unnest(");
	rc = pgsql_array(q, keys, n, kbuf, ARRAY_MAX);
	pgsql_add(q, ", ");
	if (rc == 0)
		rc = pgsql_array(q, ips, n, bbuf, ARRAY_MAX);
	pgsql_add(q, "::bool[], ");
	if (rc == 0)
		rc = pgsql_array(q, lasts, n, lbuf, ARRAY_MAX);
	pgsql_add(q, "::int8[]) WITH ORDINALITY AS k(key, by_ip, ms, i), LATERAL (SELECT"
	             " device, mac, client, vendor, vendor_source, group_name FROM queries q"
	             " WHERE q.blocked AND q.ts >= timestamptz 'epoch' + k.ms * interval"
	             " '1 millisecond' AND q.ts < timestamptz 'epoch' + (k.ms + 1) * interval"
	             " '1 millisecond' AND coalesce(q.mac, q.client) = k.key"
	             " AND (q.mac IS NULL) = k.by_ip");
	/* the filters: k's columns (key, by_ip, ms, i) are named apart from those of queries */
	if (rc == 0)
		rc = pgread_where(q, f, 0);
	pgsql_add(q, " ORDER BY q.ts DESC LIMIT 1) q ORDER BY k.i");
	if (rc == 0)
		rc = pgread_exec(p, q, out);
cleanup:
	free(q);
	free(keys);
	free(kbuf);
	free(lbuf);
	free(bbuf);
	free(nums);
	free(lasts);
	free(ips);
	return rc;
}

/* The evidence of the devices' latest vendor events: "a, b" of at most three. */
static int
vendor_evidence(struct pgread *p, struct pattempt *v, size_t n)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	PGresult *r = NULL;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	pgsql_add(q, "SELECT mac, client, evidence FROM device_events WHERE kind = 'vendor'"
	             " AND evidence IS NOT NULL GROUP BY mac, client, evidence"
	             " ORDER BY max(id) DESC");
	rc = pgread_exec(p, q, &r);
	free(q);
	if (rc != 0)
		return rc;
	int nr = PQntuples(r);
	for (size_t i = 0; i < n; i++) {
		struct pattempt *a = &v[i];
		size_t off = 0, k = 0;
		a->evidence[0] = '\0';
		for (int j = 0; j < nr && k < 3; j++) {
			const char *m = pgread_text(r, j, 0), *c = pgread_text(r, j, 1);
			const char *e = pgread_text(r, j, 2);
			bool mine = a->mac != NULL ? m != NULL && strcmp(m, a->mac) == 0
			                           : a->client != NULL && c != NULL &&
			                                     strcmp(c, a->client) == 0;
			if (!mine)
				continue;
			/* once each (the same names under another client address) */
			bool seen = false;
			for (int x = 0; x < j && !seen; x++) {
				const char *m2 = pgread_text(r, x, 0), *c2 = pgread_text(r, x, 1);
				bool mine2 = a->mac != NULL
				                     ? m2 != NULL && strcmp(m2, a->mac) == 0
				                     : c2 != NULL && strcmp(c2, a->client) == 0;
				seen = mine2 && strcmp(pgread_text(r, x, 2), e) == 0;
			}
			if (seen)
				continue;
			int w = snprintf(a->evidence + off, sizeof(a->evidence) - off, "%s%s",
			                 off > 0 ? ", " : "", e);
			if (w < 0 || (size_t)w >= sizeof(a->evidence) - off) {
				a->evidence[off] = '\0';
				break;
			}
			off += (size_t)w;
			k++;
		}
	}
	PQclear(r);
	return 0;
}

int
pgread_attempts(struct pgread *p, const struct logdb_filter *f, logdb_attempt_cb cb, void *arg)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	PGresult *r = NULL, *d = NULL;
	struct pattempt *v = NULL;
	size_t n = 0;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	rc = pgread_snapshot_begin(p);
	if (rc != 0) {
		free(q);
		return rc;
	}
	/* per device and list: rows, first, last; per device: distinct names of its attempts.
	 * Two hash aggregates over the blocked rows (a sort of them all costs several times more)
	 */
	pgsql_add(q, "WITH l AS (SELECT coalesce(mac, client) AS key, mac IS NULL AS by_ip, list,"
	             " count(*) AS n, min(ts) AS t0, max(ts) AS t1 FROM queries WHERE blocked");
	rc = pgread_where(q, f, 0);
	pgsql_add(q, " GROUP BY 1, 2, 3), d AS (SELECT key, by_ip, count(*) AS names FROM"
	             " (SELECT DISTINCT coalesce(mac, client) AS key, mac IS NULL AS by_ip, qname"
	             " FROM queries WHERE blocked AND list IS NOT NULL");
	if (rc == 0)
		rc = pgread_where(q, f, 0);
	pgsql_add(q, ") x GROUP BY 1, 2)"
	             " SELECT l.key, l.by_ip, l.list, l.n, " PGREAD_MS("l.t0") ", " PGREAD_MS(
	                     "l.t1") ", coalesce(d.names, 0) FROM l LEFT JOIN d USING (key, by_ip)"
	                             " ORDER BY l.key COLLATE \"C\", l.by_ip");
	if (rc == 0)
		rc = pgread_exec(p, q, &r);
	free(q);
	if (rc != 0)
		goto cleanup;
	int nr = PQntuples(r);
	v = calloc((size_t)nr + 1, sizeof(*v));
	if (v == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	/* the rows of a device follow each other: one per list (NULL: the default deny) */
	for (int i = 0; i < nr; i++) {
		const char *key = pgread_text(r, i, 0), *list = pgread_text(r, i, 2);
		bool by_ip = pgread_text(r, i, 1)[0] == 't';
		uint64_t cnt = u64(r, i, 3), t0 = u64(r, i, 4), t1 = u64(r, i, 5);
		struct pattempt *a = n > 0 ? &v[n - 1] : NULL;
		if (a == NULL || strcmp(a->key, key) != 0 || a->by_ip != by_ip) {
			a = &v[n++];
			a->key = key;
			a->by_ip = by_ip;
			a->first = t0;
			a->last = t1;
			a->names = u64(r, i, 6);
		}
		a->first = t0 < a->first ? t0 : a->first;
		a->last = t1 > a->last ? t1 : a->last;
		if (list == NULL) {
			a->denied += cnt;
		} else {
			a->attempts += cnt;
			top_add(a, list, cnt);
		}
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), cmp_pattempt);
	n = f->limit > 0 && f->limit < n ? f->limit : n;
	if (n > 0)
		rc = latest_details(p, f, v, n, &d);
	for (int i = 0; rc == 0 && d != NULL && i < PQntuples(d); i++) {
		int64_t k = pgread_int(d, i, 0) - 1;
		if (k < 0 || (size_t)k >= n)
			continue;
		struct pattempt *a = &v[k];
		a->device = pgread_text(d, i, 1);
		a->mac = pgread_text(d, i, 2);
		a->client = pgread_text(d, i, 3);
		a->vendor = pgread_text(d, i, 4);
		a->vendor_source = pgread_text(d, i, 5);
		a->group = pgread_text(d, i, 6);
	}
	if (rc == 0 && n > 0)
		rc = vendor_evidence(p, v, n);
	for (size_t i = 0; rc == 0 && i < n; i++) {
		struct pattempt *a = &v[i];
		char lists[256];
		size_t off = 0;
		lists[0] = '\0';
		for (size_t k = 0; k < a->ntop; k++) {
			int w = snprintf(lists + off, sizeof(lists) - off, "%s%s (%llu)",
			                 off > 0 ? ", " : "", a->top[k].list,
			                 (unsigned long long)a->top[k].attempts);
			if (w < 0 || (size_t)w >= sizeof(lists) - off)
				break;
			off += (size_t)w;
		}
		struct logdb_attempt at = {
		        .key = a->key,
		        .device = a->device,
		        .mac = a->mac,
		        .client = a->client,
		        .vendor = a->vendor,
		        .vendor_source = a->vendor_source,
		        .group = a->group,
		        .evidence = a->evidence[0] != '\0' ? a->evidence : NULL,
		        .attempts = a->attempts,
		        .denied = a->denied,
		        .names = a->names,
		        .top_lists = lists,
		        .ntop = a->ntop,
		        .first_ms = a->first,
		        .last_ms = a->last,
		};
		memcpy(at.top, a->top, sizeof(at.top));
		rc = cb(arg, &at);
	}
cleanup:
	PQclear(r);
	PQclear(d);
	free(v);
	pgread_snapshot_end(p);
	return rc;
}

/* ---- summary ---- */

struct pcount {
	const char *label;
	uint64_t key; /* the hour's first ms */
	uint64_t total, blocked;
};

static int
cmp_pcount_total(const void *x, const void *y)
{
	const struct pcount *a = x, *b = y;
	int c = cmp_u64_desc(a->total, b->total);

	return c != 0 ? c : cmp_label(a->label, b->label);
}

static int
cmp_pcount_blocked(const void *x, const void *y)
{
	const struct pcount *a = x, *b = y;
	int c = cmp_u64_desc(a->blocked, b->blocked);

	return c != 0 ? c : cmp_pcount_total(x, y);
}

static int
cmp_pcount_key(const void *x, const void *y)
{
	const struct pcount *a = x, *b = y;

	return a->key < b->key ? -1 : a->key > b->key;
}

struct window {
	uint64_t h0, h1, d0, d1; /* whole hours [h0, h1), whole days [d0, d1); UINT64_MAX: open */
	bool split;              /* else all from the rows */
};

/* "SELECT ... FROM queries WHERE ..." over the partial hours of the window (or all of it) */
static int
rows_part(struct pgsql *q, const struct logdb_filter *f, const struct window *w, const char *select,
          const char *extra)
{
	struct logdb_filter e[2];
	size_t ne = 0;
	int rc = 0;

	if (!w->split) {
		e[ne++] = *f;
	} else {
		if (f->since_ms > 0 && f->since_ms < w->h0) {
			e[ne] = *f;
			e[ne++].until_ms = w->h0;
		}
		if (f->until_ms > 0 && w->h1 < f->until_ms) {
			e[ne] = *f;
			e[ne++].since_ms = w->h1;
		}
	}
	if (ne == 0) {
		pgsql_add(q, select);
		pgsql_add(q, " FROM queries WHERE false");
		return 0;
	}
	for (size_t i = 0; i < ne && rc == 0; i++) {
		pgsql_add(q, i > 0 ? " UNION ALL " : "");
		pgsql_add(q, select);
		pgsql_add(q, " FROM queries WHERE true");
		if (extra != NULL)
			pgsql_add(q, extra);
		rc = pgread_where(q, &e[i], 0);
	}
	return rc;
}

/* " AND col >= $a AND col < $b" on a rollup's hour (or day) */
static void
rollup_range(struct pgsql *q, const char *col, uint64_t from, uint64_t to, bool day)
{
	pgsql_add(q, " AND ");
	pgsql_add(q, col);
	pgsql_add(q, day ? " >= (" : " >= ");
	pgsql_time(q, from);
	pgsql_add(q, day ? " AT TIME ZONE 'UTC')::date" : "");
	if (to != UINT64_MAX) {
		pgsql_add(q, " AND ");
		pgsql_add(q, col);
		pgsql_add(q, day ? " < (" : " < ");
		pgsql_time(q, to);
		pgsql_add(q, day ? " AT TIME ZONE 'UTC')::date" : "");
	}
}

/* The parts of the window as (h, g, l, k, blocked, n): rows at the ends, rollup_sources for
 * the hours, rollup_days for the whole days unless by_hour. */
static int
summary_parts(struct pgsql *q, const struct logdb_filter *f, const struct window *w, bool by_hour)
{
	static const char rows[] =
	        "SELECT date_trunc('hour', ts), coalesce(group_name, ''), coalesce(list, ''),"
	        " coalesce(device, mac, client), blocked, 1::int8";
	static const char src[] =
	        " UNION ALL SELECT hour, group_name, list, coalesce(nullif(device, ''),"
	        " nullif(mac, ''), client), blocked, n FROM rollup_sources WHERE true";
	int rc = rows_part(q, f, w, rows, NULL);

	if (rc != 0 || !w->split)
		return rc;
	if (by_hour || w->d0 >= w->d1) {
		pgsql_add(q, src);
		rollup_range(q, "hour", w->h0, w->h1, false);
		return pgread_where(q, f, PGW_ROLLUP);
	}
	if (w->h0 < w->d0) {
		pgsql_add(q, src);
		rollup_range(q, "hour", w->h0, w->d0, false);
		rc = pgread_where(q, f, PGW_ROLLUP);
	}
	pgsql_add(q,
	          " UNION ALL SELECT NULL::timestamptz, group_name, list, coalesce(nullif(device,"
	          " ''), nullif(mac, ''), client), blocked, n FROM rollup_days WHERE true");
	rollup_range(q, "day", w->d0, w->d1, true);
	if (rc == 0)
		rc = pgread_where(q, f, PGW_ROLLUP);
	if (w->d1 != UINT64_MAX && w->d1 < w->h1) {
		pgsql_add(q, src);
		rollup_range(q, "hour", w->d1, w->h1, false);
		if (rc == 0)
			rc = pgread_where(q, f, PGW_ROLLUP);
	}
	return rc;
}

/* Whether rollup_hours (totals per hour and instance) answers the per-hour section of f */
static bool
hours_total(const struct logdb_filter *f, const struct window *w)
{
	return w->split && !pgread_has_source(f) && f->list.v[0] == NULL &&
	       f->action.v[0] == NULL && f->blocked < 0;
}

/* The per-hour section (h ms, total, blocked): partial hours from the rows, the whole hours
 * of the window from rollup_hours (a few rows an hour, not rollup_sources' one per source) */
static int
hour_parts(struct pgsql *q, const struct logdb_filter *f, const struct window *w)
{
	int rc;

	pgsql_add(q, "SELECT " PGREAD_MS("h") ", sum(t), sum(b) FROM (");
	rc = rows_part(q, f, w, "SELECT date_trunc('hour', ts), 1::int8, blocked::int::int8", NULL);
	pgsql_add(q, " UNION ALL SELECT hour, total, blocked FROM rollup_hours WHERE true");
	rollup_range(q, "hour", w->h0, w->h1, false);
	if (rc == 0)
		rc = pgread_where(q, f, PGW_ROLLUP | PGW_NO_SOURCE);
	pgsql_add(q, ") u(h, t, b) GROUP BY h");
	return rc;
}

static int
emit_section(enum logdb_summary_section s, struct pcount *v, size_t n, logdb_summary_cb cb,
             void *arg)
{
	for (size_t i = 0; i < n; i++) {
		struct logdb_summary_row row = {
		        .section = s,
		        .label = v[i].label,
		        .ts_ms = s == LOGDB_SUMMARY_HOUR ? v[i].key : 0,
		        .total = v[i].total,
		        .blocked = v[i].blocked,
		};
		int rc = cb(arg, &row);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* The top blocked names (by a list) with their count of all queries of the window. */
static int
top_names(struct pgread *p, const struct logdb_filter *f, const struct window *w, uint32_t top,
          logdb_summary_cb cb, void *arg)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	bool rollup = w->split && !pgread_has_source(f);
	PGresult *r = NULL, *t = NULL;
	char *abuf = malloc(ARRAY_MAX);
	const char *names[256];
	int rc;

	if (q == NULL || abuf == NULL) {
		free(q);
		free(abuf);
		return -ENOMEM;
	}
	pgsql_add(q, "SELECT qname, sum(n) FROM (");
	if (rollup) {
		rc = rows_part(q, f, w, "SELECT qname, 1::int8 AS n",
		               " AND blocked AND list IS NOT NULL");
		pgsql_add(q, " UNION ALL SELECT qname, n FROM rollup_names WHERE blocked AND list "
		             "<> ''");
		rollup_range(q, "hour", w->h0, w->h1, false);
		if (rc == 0)
			rc = pgread_where(q, f, PGW_ROLLUP | PGW_NO_SOURCE);
	} else {
		struct window all = {.split = false};
		rc = rows_part(q, f, &all, "SELECT qname, 1::int8 AS n",
		               " AND blocked AND list IS NOT NULL");
	}
	pgsql_add(q, ") u GROUP BY qname ORDER BY 2 DESC, qname COLLATE \"C\" LIMIT ");
	pgsql_num(q, top);
	if (rc == 0)
		rc = pgread_exec(p, q, &r);
	int n = rc == 0 ? PQntuples(r) : 0;
	for (int i = 0; i < n && i < 256; i++)
		names[i] = pgread_text(r, i, 0) != NULL ? pgread_text(r, i, 0) : "";
	if (rc == 0 && n > 0) {
		/* every query of those names in the window, blocked or not */
		memset(q, 0, sizeof(*q));
		pgsql_add(q, "SELECT qname, sum(n) FROM (");
		if (rollup) {
			rc = rows_part(q, f, w, "SELECT qname, 1::int8 AS n", NULL);
			pgsql_add(q, " UNION ALL SELECT qname, n FROM rollup_names WHERE true");
			rollup_range(q, "hour", w->h0, w->h1, false);
			if (rc == 0)
				rc = pgread_where(q, f, PGW_ROLLUP | PGW_NO_SOURCE);
		} else {
			struct window all = {.split = false};
			rc = rows_part(q, f, &all, "SELECT qname, 1::int8 AS n", NULL);
		}
		pgsql_add(q, ") u WHERE qname = ANY(");
		if (rc == 0)
			rc = pgsql_array(q, names, (size_t)(n < 256 ? n : 256), abuf, ARRAY_MAX);
		pgsql_add(q, ") GROUP BY qname");
		if (rc == 0)
			rc = pgread_exec(p, q, &t);
	}
	for (int i = 0; rc == 0 && i < n; i++) {
		struct logdb_summary_row row = {
		        .section = LOGDB_SUMMARY_TOP_BLOCKED,
		        .label = pgread_text(r, i, 0),
		        .blocked = u64(r, i, 1),
		};
		for (int j = 0; j < PQntuples(t); j++)
			if (strcmp(pgread_text(t, j, 0), names[i]) == 0)
				row.total = u64(t, j, 1);
		rc = cb(arg, &row);
	}
	PQclear(r);
	PQclear(t);
	free(q);
	free(abuf);
	return rc;
}

int
pgread_summary(struct pgread *p, const struct logdb_filter *f, uint32_t top, logdb_summary_cb cb,
               void *arg)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	struct pcount *v = NULL;
	PGresult *r = NULL, *h = NULL;
	struct window w;
	int rc;

	if (q == NULL)
		return -ENOMEM;
	top = top > 0 ? top : 10;
	w.h0 = f->since_ms > 0 ? (f->since_ms + HOUR_MS - 1) / HOUR_MS * HOUR_MS : 0;
	w.h1 = f->until_ms > 0 ? f->until_ms / HOUR_MS * HOUR_MS : UINT64_MAX;
	w.d0 = (w.h0 + DAY_MS - 1) / DAY_MS * DAY_MS;
	w.d1 = w.h1 == UINT64_MAX ? UINT64_MAX : w.h1 / DAY_MS * DAY_MS;
	w.split = w.h0 < w.h1 && !pgread_has_domain(f);
	rc = pgread_snapshot_begin(p);
	if (rc != 0) {
		free(q);
		return rc;
	}
	/* totals, per group, per list, per device key */
	pgsql_add(q, "SELECT GROUPING(g), GROUPING(l), GROUPING(k), g, l, k, sum(n),"
	             " coalesce(sum(n) FILTER (WHERE blocked), 0),"
	             " coalesce(sum(n) FILTER (WHERE blocked AND l = ''), 0) FROM (");
	rc = summary_parts(q, f, &w, false);
	pgsql_add(q, ") u(h, g, l, k, blocked, n) GROUP BY GROUPING SETS ((), (g), (l), (k))");
	if (rc == 0)
		rc = pgread_exec(p, q, &r);
	if (rc == 0) {
		memset(q, 0, sizeof(*q));
		if (hours_total(f, &w)) {
			rc = hour_parts(q, f, &w);
		} else {
			pgsql_add(q, "SELECT " PGREAD_MS("h") ", sum(n), coalesce(sum(n) FILTER"
			                                      " (WHERE blocked), 0) FROM (");
			rc = summary_parts(q, f, &w, true);
			pgsql_add(q, ") u(h, g, l, k, blocked, n) GROUP BY h");
		}
	}
	if (rc == 0)
		rc = pgread_exec(p, q, &h);
	free(q);
	q = NULL;
	if (rc != 0)
		goto cleanup;
	int nr = PQntuples(r), nh = PQntuples(h);
	v = calloc((size_t)(nr > nh ? nr : nh) + 1, sizeof(*v));
	if (v == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	struct logdb_summary_row total = {.section = LOGDB_SUMMARY_TOTAL};
	for (int i = 0; i < nr; i++) {
		if (pgread_int(r, i, 0) == 1 && pgread_int(r, i, 1) == 1 &&
		    pgread_int(r, i, 2) == 1) {
			total.total = u64(r, i, 6);
			total.blocked = u64(r, i, 7);
			total.denied = u64(r, i, 8);
		}
	}
	rc = cb(arg, &total);
	/* column of the label, which GROUPING is 0 for it, and '' is none */
	static const struct {
		enum logdb_summary_section s;
		int grouping, col;
	} secs[] = {
	        {LOGDB_SUMMARY_GROUP, 0, 3},
	        {LOGDB_SUMMARY_LIST, 1, 4},
	        {LOGDB_SUMMARY_TOP_BLOCKED, -1, 0},
	        {LOGDB_SUMMARY_TOP_CLIENT, 2, 5},
	};
	for (size_t k = 0; rc == 0 && k < sizeof(secs) / sizeof(secs[0]); k++) {
		size_t n = 0;
		if (secs[k].grouping < 0) {
			rc = top_names(p, f, &w, top, cb, arg);
			continue;
		}
		for (int i = 0; i < nr; i++) {
			if (pgread_int(r, i, secs[k].grouping) != 0 ||
			    pgread_int(r, i, 0) + pgread_int(r, i, 1) + pgread_int(r, i, 2) != 2)
				continue;
			const char *label = pgread_text(r, i, secs[k].col);
			if (label != NULL && label[0] == '\0')
				label = NULL;
			if (label == NULL && secs[k].s == LOGDB_SUMMARY_LIST)
				continue; /* the lists' section: rows a list decided */
			v[n++] = (struct pcount){label, 0, u64(r, i, 6), u64(r, i, 7)};
		}
		if (n > 0)
			qsort(v, n, sizeof(*v),
			      secs[k].s == LOGDB_SUMMARY_LIST ? cmp_pcount_blocked
			                                      : cmp_pcount_total);
		if (secs[k].s == LOGDB_SUMMARY_TOP_CLIENT && n > top)
			n = top;
		rc = emit_section(secs[k].s, v, n, cb, arg);
	}
	if (rc == 0) {
		for (int i = 0; i < nh; i++)
			v[i] = (struct pcount){NULL, u64(h, i, 0), u64(h, i, 1), u64(h, i, 2)};
		if (nh > 0)
			qsort(v, (size_t)nh, sizeof(*v), cmp_pcount_key);
		rc = emit_section(LOGDB_SUMMARY_HOUR, v, (size_t)nh, cb, arg);
	}
cleanup:
	free(q);
	free(v);
	PQclear(r);
	PQclear(h);
	pgread_snapshot_end(p);
	return rc;
}
