/*
 * pgread_report: `veto report summary` on the shared store (pgread.h), with the results of
 * logdb_summary.c: the same counts, top lists and names, in the same order (counted and
 * ordered by logdb_count.c, which both back ends call). `report attempts`: pgread_attempts.c.
 *
 * The whole UTC days of the window from rollup_days, its whole hours around them from
 * rollup_sources, its partial hours at either end from the rows (a domain filter: all from the
 * rows); the per-hour counts from rollup_hours (from rollup_sources under a source, group,
 * list, action or blocked filter); the top blocked names from rollup_name_days for the whole
 * days and rollup_names for the whole hours around them (from the blocked rows when a device
 * filter needs them: the name rollups have no device).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logdb_report_int.h"
#include "pgread.h"

#define DAY_MS    86400000LL
#define ARRAY_MAX (1 << 20)

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
	return w->split && !logdb_filter_has_source(f) && f->list.v[0] == NULL &&
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

/* " UNION ALL SELECT qname, n" of the name rollups over the whole hours of the window: its
 * whole days from rollup_name_days, the hours around them from rollup_names; cond is the
 * rollups' own condition ("true" or the blocked names') */
static int
name_parts(struct pgsql *q, const struct logdb_filter *f, const struct window *w, const char *cond)
{
	/* [from, to) of rollup_names (hours) or of rollup_name_days (days) */
	struct part {
		uint64_t from, to;
		bool day;
	} part[3];
	size_t np = 0;
	int rc = 0;

	if (w->d0 >= w->d1) {
		part[np++] = (struct part){w->h0, w->h1, false};
	} else {
		if (w->h0 < w->d0)
			part[np++] = (struct part){w->h0, w->d0, false};
		part[np++] = (struct part){w->d0, w->d1, true};
		if (w->d1 != UINT64_MAX && w->d1 < w->h1)
			part[np++] = (struct part){w->d1, w->h1, false};
	}
	for (size_t i = 0; i < np && rc == 0; i++) {
		pgsql_add(q, part[i].day ? " UNION ALL SELECT qname, n FROM rollup_name_days WHERE "
		                         : " UNION ALL SELECT qname, n FROM rollup_names WHERE ");
		pgsql_add(q, cond);
		rollup_range(q, part[i].day ? "day" : "hour", part[i].from, part[i].to,
		             part[i].day);
		rc = pgread_where(q, f, PGW_ROLLUP | PGW_NO_SOURCE);
	}
	return rc;
}

/* The top blocked names (by a list) with their count of all queries of the window. */
static int
top_names(struct pgread *p, const struct logdb_filter *f, const struct window *w, uint32_t top,
          logdb_summary_cb cb, void *arg)
{
	struct pgsql *q = calloc(1, sizeof(*q));
	bool rollup = w->split && !logdb_filter_has_source(f);
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
		if (rc == 0)
			rc = name_parts(q, f, w, "blocked AND list <> ''");
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
			if (rc == 0)
				rc = name_parts(q, f, w, "true");
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
		        .blocked = pgread_u64(r, i, 1),
		};
		for (int j = 0; j < PQntuples(t); j++)
			if (strcmp(pgread_text(t, j, 0), names[i]) == 0)
				row.total = pgread_u64(t, j, 1);
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
	struct logdb_count *v = NULL;
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
	w.split = w.h0 < w.h1 && !logdb_filter_has_domain(f);
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
			total.total = pgread_u64(r, i, 6);
			total.blocked = pgread_u64(r, i, 7);
			total.denied = pgread_u64(r, i, 8);
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
			v[n++] = (struct logdb_count){0, label, pgread_u64(r, i, 6),
			                              pgread_u64(r, i, 7)};
		}
		logdb_count_sort(v, n,
		                 secs[k].s == LOGDB_SUMMARY_LIST ? LOGDB_COUNT_BY_BLOCKED
		                                                 : LOGDB_COUNT_BY_TOTAL);
		if (secs[k].s == LOGDB_SUMMARY_TOP_CLIENT && n > top)
			n = top;
		rc = logdb_count_emit(secs[k].s, v, n, cb, arg);
	}
	if (rc == 0) {
		for (int i = 0; i < nh; i++)
			v[i] = (struct logdb_count){pgread_int(h, i, 0), NULL, pgread_u64(h, i, 1),
			                            pgread_u64(h, i, 2)};
		logdb_count_sort(v, (size_t)nh, LOGDB_COUNT_BY_KEY);
		rc = logdb_count_emit(LOGDB_SUMMARY_HOUR, v, (size_t)nh, cb, arg);
	}
cleanup:
	free(q);
	free(v);
	PQclear(r);
	PQclear(h);
	pgread_snapshot_end(p);
	return rc;
}
