/*
 * pgread_attempts: `veto report attempts` on the shared store (pgread.h), with the result of
 * logdb_report.c: the same devices, counts, top lists, names and details, in the same order
 * (ordered by logdb_count.c, which both back ends call).
 *
 * Per device (its MAC, else its client address) and list: the blocked rows, first and last;
 * per device: the distinct names of its attempts. A window open at its end (no --until) with
 * no filter but the time reads the rollups of pg_schema_attempts.c: its whole UTC days from
 * rollup_attempts, its partial first day from the blocked rows, and the names from
 * rollup_attempt_names (the pairs last attempted at or after --since). Any other window or
 * filter reads the blocked rows of the window: two hash aggregates over the partial index on
 * ts WHERE blocked, which includes the columns read (an index-only scan). Then the latest row
 * of each device printed is found by its time through that index, and the vendor evidence
 * from device_events.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logdb_report_int.h"
#include "pgread.h"

#define DAY_MS    86400000LL
#define ARRAY_MAX (1 << 20)

struct pattempt {
	struct logdb_rank rank; /* first: the order (key into the result; kind 1: by address) */
	uint64_t names, first, last;
	struct logdb_list_count top[LOGDB_TOP_LISTS];
	size_t ntop;
	const char *device, *mac, *client, *vendor, *vendor_source, *group;
	char evidence[512];
};

/* Keeps (list, n) among the top lists of a (n desc, then name). */
static void
top_add(struct pattempt *a, const char *list, uint64_t n)
{
	struct logdb_list_count c = {list, n};
	size_t i = a->ntop;

	while (i > 0 && logdb_list_count_cmp(&a->top[i - 1], &c) > 0)
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
		keys[i] = v[i].rank.key;
		snprintf(nums[i], sizeof(nums[i]), "%llu", (unsigned long long)v[i].last);
		lasts[i] = nums[i];
		ips[i] = v[i].rank.kind ? "t" : "f";
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
	             " ORDER BY max(ts) DESC, max(id) DESC");
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

/* Whether the rollups answer f: a window open at its end, no filter but the time (the
 * rollups have no source, name, action or instance of a name; the blocked filter is implied). */
static bool
from_rollups(const struct logdb_filter *f)
{
	return f->until_ms == 0 && f->blocked != 0 && !logdb_filter_has_source(f) &&
	       !logdb_filter_has_domain(f) && f->list.v[0] == NULL && f->action.v[0] == NULL &&
	       f->instance.v[0] == NULL && f->after_id == 0;
}

/* The query of (key, by_ip, list or NULL, rows, first ms, last ms, names) per device and list,
 * the rows of a device together. */
static int
counts_sql(struct pgsql *q, const struct logdb_filter *f)
{
	int rc;

	if (!from_rollups(f)) {
		/* two hash aggregates over the blocked rows (a sort of them all costs several
		 * times more) */
		pgsql_add(q, "WITH l AS (SELECT coalesce(mac, client) AS key, mac IS NULL AS by_ip,"
		             " list, count(*) AS n, min(ts) AS t0, max(ts) AS t1 FROM queries"
		             " WHERE blocked");
		rc = pgread_where(q, f, 0);
		pgsql_add(q, " GROUP BY 1, 2, 3), d AS (SELECT key, by_ip, count(*) AS names FROM"
		             " (SELECT DISTINCT coalesce(mac, client) AS key, mac IS NULL AS by_ip,"
		             " qname FROM queries WHERE blocked AND list IS NOT NULL");
		if (rc == 0)
			rc = pgread_where(q, f, 0);
		pgsql_add(q, ") x GROUP BY 1, 2)");
	} else {
		/* the first whole day; before it, the rows */
		uint64_t d0 = (f->since_ms + DAY_MS - 1) / DAY_MS * DAY_MS;
		struct logdb_filter part = *f;
		pgsql_add(q, "WITH l AS (SELECT key, by_ip, nullif(list, '') AS list, sum(n) AS n,"
		             " min(t0) AS t0, max(t1) AS t1 FROM (SELECT coalesce(mac, client),"
		             " mac IS NULL, coalesce(list, ''), 1::int8, ts, ts FROM queries"
		             " WHERE blocked");
		part.until_ms = d0;
		rc = d0 > f->since_ms ? pgread_where(q, &part, 0) : 0;
		pgsql_add(q, d0 > f->since_ms ? "" : " AND false");
		pgsql_add(q, " UNION ALL SELECT key, by_ip, list, n, first_ts, last_ts"
		             " FROM rollup_attempts WHERE day >= (");
		pgsql_time(q, d0);
		pgsql_add(q, " AT TIME ZONE 'UTC')::date) u(key, by_ip, list, n, t0, t1)"
		             " GROUP BY 1, 2, 3), d AS (SELECT key, by_ip, count(*) AS names"
		             " FROM rollup_attempt_names WHERE last_ts >= ");
		pgsql_time(q, f->since_ms);
		pgsql_add(q, " GROUP BY 1, 2)");
	}
	pgsql_add(q, " SELECT l.key, l.by_ip, l.list, l.n, " PGREAD_MS("l.t0") ", " PGREAD_MS(
	                     "l.t1") ", coalesce(d.names, 0) FROM l LEFT JOIN d USING (key, by_ip)"
	                             " ORDER BY l.key COLLATE \"C\", l.by_ip");
	return rc;
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
	rc = counts_sql(q, f);
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
		int kind = pgread_text(r, i, 1)[0] == 't' ? 1 : 0;
		uint64_t cnt = pgread_u64(r, i, 3), t0 = pgread_u64(r, i, 4),
		         t1 = pgread_u64(r, i, 5);
		struct pattempt *a = n > 0 ? &v[n - 1] : NULL;
		if (a == NULL || strcmp(a->rank.key, key) != 0 || a->rank.kind != kind) {
			a = &v[n++];
			a->rank.key = key;
			a->rank.kind = kind;
			a->first = t0;
			a->last = t1;
			a->names = pgread_u64(r, i, 6);
		}
		a->first = t0 < a->first ? t0 : a->first;
		a->last = t1 > a->last ? t1 : a->last;
		if (list == NULL) {
			a->rank.denied += cnt;
		} else {
			a->rank.attempts += cnt;
			top_add(a, list, cnt);
		}
	}
	if (n > 0)
		qsort(v, n, sizeof(*v), logdb_rank_cmp);
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
		logdb_top_lists_text(a->top, a->ntop, lists, sizeof(lists));
		struct logdb_attempt at = {
		        .key = a->rank.key,
		        .device = a->device,
		        .mac = a->mac,
		        .client = a->client,
		        .vendor = a->vendor,
		        .vendor_source = a->vendor_source,
		        .group = a->group,
		        .evidence = a->evidence[0] != '\0' ? a->evidence : NULL,
		        .attempts = a->rank.attempts,
		        .denied = a->rank.denied,
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
