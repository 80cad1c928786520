/*
 * logdb_summary: `veto report summary` over the query store (schema 4, logdb_reader.h): the
 * whole hours of the window from the hourly rollups, its partial hours from the rows, counted
 * in C by integer id (logdb_report_int.h) and turned into text for the output only.
 */
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logdb_report_int.h"
#include "pgread.h"

#define DAY_MS 86400000

/*
 * `veto report summary` in two passes, counted in C by integer key: the rows of the window
 * (ts_ms, source, list, blocked) give the totals per source id, list id and hour; the blocked
 * rows (the index queries_blocked) the counts per name id. Then the ids become text: sources
 * are merged per group and per device key, names are looked up for the top ones only.
 */

struct counts {
	struct logdb_count *v;
	size_t n, cap;
	struct idmap map;
};

/* The counter of key, added at zero when new; NULL on -ENOMEM. Valid until the next call. */
static struct logdb_count *
counts_at(struct counts *c, int64_t key)
{
	uint32_t k = idmap_get(&c->map, key);

	if (k != 0)
		return &c->v[k - 1];
	if (grow((void **)&c->v, &c->cap, c->n, sizeof(*c->v)) != 0 ||
	    idmap_put(&c->map, key, c->n) != 0)
		return NULL;
	c->v[c->n] = (struct logdb_count){.key = key};
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
	bool no_hours;           /* the per-hour counts come from rollup_hours */
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
	struct logdb_count *c;

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
	if (s->no_hours)
		return 0;
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
		struct logdb_count *c = counts_at(&s->name_totals, value_id(v[4]));
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

/* veto_each(hour, total, blocked) of a row of rollup_hours */
static int
on_summary_hour(void *arg, sqlite3_value **v)
{
	struct summary *s = arg;
	struct logdb_count *c = counts_at(&s->hours, sqlite3_value_int64(v[0]));

	if (c == NULL)
		return -ENOMEM;
	c->total += value_u64(v[1]);
	c->blocked += value_u64(v[2]);
	return 0;
}

/* veto_each(name[, n]) of one blocked row of the window, or of a blocked rollup_names row
 * (n of them; name 0 for none) */
static int
on_summary_blocked(void *arg, sqlite3_value **v, int argc)
{
	struct summary *s = arg;
	int64_t name = value_id(v[0]);
	uint64_t n = argc > 1 ? value_u64(v[1]) : 1;
	struct logdb_count *c = counts_at(&s->names, argc > 1 && name == 0 ? ID_NULL : name);

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

/* Per group (group: true) or per device key, from the counts per source. */
static int
emit_per_source(struct summary *s, bool group, uint32_t top, logdb_summary_cb cb, void *arg)
{
	struct logdb_count *v = NULL;
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
		logdb_count_merge_labels(v, &n);
		logdb_count_sort(v, n, LOGDB_COUNT_BY_TOTAL);
		if (top > 0 && n > top)
			n = top;
		rc = logdb_count_emit(group ? LOGDB_SUMMARY_GROUP : LOGDB_SUMMARY_TOP_CLIENT, v, n,
		                      cb, arg);
	}
	free(v);
	return rc;
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
emit_top_names(struct summary *s, const struct logdb_filter *f, uint32_t top, logdb_summary_cb cb,
               void *arg)
{
	struct logdb_count *v = s->names.v;
	size_t n = s->names.n, k = 0;
	int rc;

	if (n == 0)
		return 0;
	logdb_count_sort(v, n, LOGDB_COUNT_BY_BLOCKED); /* labels all NULL yet: by count */
	uint64_t least = v[(n > top ? top : n) - 1].blocked;
	while (k < n && v[k].blocked >= least) {
		const struct dict_row *name;
		rc = dict_get(s->r, &s->dnames, v[k].key, &name);
		if (rc != 0)
			return rc;
		v[k++].label = name->col[0];
	}
	logdb_count_sort(v, k, LOGDB_COUNT_BY_BLOCKED);
	k = k > top ? top : k;
	for (size_t i = 0; i < k; i++) {
		if (!s->split) {
			rc = count_name(s->r, f, v[i].key, false, &v[i].total);
		} else {
			/* the ends of the window from their rows, the whole hours from rollups */
			uint32_t e = idmap_get(&s->name_totals.map, v[i].key);
			uint64_t mid = 0;
			rc = count_name(s->r, &s->mid, v[i].key, !logdb_filter_has_source(f), &mid);
			v[i].total = mid + (e != 0 ? s->name_totals.v[e - 1].total : 0);
		}
		if (rc != 0)
			return rc;
	}
	return logdb_count_emit(LOGDB_SUMMARY_TOP_BLOCKED, v, k, cb, arg);
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
	logdb_sql_add(q,
	              s->split ? "SELECT veto_each(ts_ms, source, list, blocked, name) FROM queries"
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

/* Runs "SELECT veto_each(...) FROM table" over [from, to) of its column col (hour or day)
 * with f's filters on the rollup columns. */
static int
scan_rollup(struct summary *s, const char *select, const char *col, int64_t from, int64_t to,
            logdb_each_cb fn)
{
	struct logdb_sql *q = calloc(1, sizeof(*q));
	char range[160];
	int rc;

	if (q == NULL)
		return -ENOMEM;
	if (from >= to) {
		free(q);
		return 0;
	}
	snprintf(range, sizeof(range), "%s >= %lld AND %s < %lld", col, (long long)from, col,
	         (long long)to);
	q->rollup = true;
	logdb_sql_add(q, select);
	rc = logdb_build_where(s->r, q, &s->mid, range);
	if (rc == 0)
		rc = run_each(s->r, q, fn, s);
	free(q);
	return rc;
}

/* The whole hours of s->mid from rollup_sources (without a filter: whole days from
 * rollup_days, the hours around them from rollup_sources, the per-hour counts from
 * rollup_hours), and its top blocked names from rollup_names (by the index of its blocked
 * rows), or from the blocked rows when a source filter needs them (rollup_names has no
 * source). */
static int
summary_rollups(struct summary *s)
{
	static const char by_hour[] =
	        "SELECT veto_each(hour, source, list, blocked, n) FROM rollup_sources";
	const struct logdb_filter *f = &s->mid;
	struct logdb_sql *q = NULL;
	int64_t h0 = (int64_t)f->since_ms, h1 = f->until_ms > 0 ? (int64_t)f->until_ms : INT64_MAX;
	int64_t d0 = (h0 + DAY_MS - 1) / DAY_MS * DAY_MS;
	int64_t d1 = h1 == INT64_MAX ? INT64_MAX : h1 / DAY_MS * DAY_MS;
	bool plain = !logdb_filter_has_source(f) && f->list.v[0] == NULL &&
	             f->action.v[0] == NULL && f->blocked < 0;
	char hours[160];
	int rc;

	if (plain && d0 < d1) {
		s->no_hours = true;
		rc = scan_rollup(s, by_hour, "hour", h0, d0, on_summary_rollup);
		if (rc == 0)
			rc = scan_rollup(s,
			                 "SELECT veto_each(day, source, list, blocked, n)"
			                 " FROM rollup_days",
			                 "day", d0, d1, on_summary_rollup);
		if (rc == 0)
			rc = scan_rollup(s, by_hour, "hour", d1, h1, on_summary_rollup);
		s->no_hours = false;
		if (rc == 0)
			rc = scan_rollup(s,
			                 "SELECT veto_each(hour, total, blocked) FROM rollup_hours",
			                 "hour", h0, h1, on_summary_hour);
	} else {
		rc = scan_rollup(s, by_hour, "hour", h0, h1, on_summary_rollup);
	}
	if (rc != 0)
		return rc;
	q = calloc(1, sizeof(*q));
	if (q == NULL)
		return -ENOMEM;
	snprintf(hours, sizeof(hours), "hour >= %lld AND hour < %lld", (long long)h0,
	         (long long)h1);
	if (!logdb_filter_has_source(f)) {
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

	if (r->pg != NULL)
		return pgread_summary(r->pg, f, top, cb, arg);
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
	s.split = first >= 0 && h0 < h1 && !logdb_filter_has_domain(f);
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
		logdb_count_sort(s.lists.v, s.lists.n, LOGDB_COUNT_BY_BLOCKED);
		rc = logdb_count_emit(LOGDB_SUMMARY_LIST, s.lists.v, s.lists.n, cb, arg);
	}
	if (rc == 0)
		rc = emit_top_names(&s, f, top, cb, arg);
	if (rc == 0)
		rc = emit_per_source(&s, false, top, cb, arg);
	if (rc == 0) {
		logdb_count_sort(s.hours.v, s.hours.n, LOGDB_COUNT_BY_KEY);
		rc = logdb_count_emit(LOGDB_SUMMARY_HOUR, s.hours.v, s.hours.n, cb, arg);
	}
cleanup:
	logdb_read_end(r, &q);
	summary_free(&s);
	return rc;
}
