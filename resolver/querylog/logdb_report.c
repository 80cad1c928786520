/*
 * logdb_report: `veto report attempts` over the query store (schema 4, logdb_reader.h), through
 * the reader of logdb_query.c (`veto report summary`: logdb_summary.c).
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

#include "logdb_report_int.h"
#include "pgread.h"

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
	struct logdb_list_count c; /* its name (for the output) and count */
	int64_t id;
};

struct attempt {
	struct logdb_rank rank; /* first: the order (key owned by the sources dict) */
	uint64_t names, first, last;
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
	if (k != 0 && (a->v[k - 1].rank.kind != kind || strcmp(a->v[k - 1].rank.key, key) != 0)) {
		/* another key with the same hash: look further by hand */
		k = 0;
		for (size_t i = 0; i < a->n && k == 0; i++)
			if (a->v[i].rank.kind == kind && strcmp(a->v[i].rank.key, key) == 0)
				k = (uint32_t)(i + 1);
	}
	if (k == 0) {
		if (grow((void **)&a->v, &a->cap, a->n, sizeof(*a->v)) != 0)
			return -ENOMEM;
		memset(&a->v[a->n], 0, sizeof(a->v[0]));
		a->v[a->n].rank.key = key;
		a->v[a->n].rank.kind = kind;
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
	bool seen = g->rank.attempts + g->rank.denied > 0;
	if (!seen || ts < g->first)
		g->first = ts;
	/* the rows come in time order: at equal times, the later one holds the latest details */
	if (!seen || ts >= g->last) {
		g->last = ts;
		g->last_source = source;
	}
	if (list == ID_NULL) { /* blocked by no list: the group's default deny */
		g->rank.denied++;
		return 0;
	}
	g->rank.attempts++;
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
	g->lists[i].c.attempts++;
	return 0;
}

static int
cmp_attempt_list(const void *x, const void *y)
{
	const struct attempt_list *a = x, *b = y;

	return logdb_list_count_cmp(&a->c, &b->c);
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
	size_t ntop = g->nlists < LOGDB_TOP_LISTS ? g->nlists : LOGDB_TOP_LISTS;
	int rc;

	for (size_t k = 0; k < g->nlists; k++) {
		rc = dict_get(a->r, &a->texts, g->lists[k].id, &t);
		if (rc != 0)
			return rc;
		g->lists[k].c.list = t->col[0];
	}
	if (g->nlists > 0) /* none for a device the default deny alone refused */
		qsort(g->lists, g->nlists, sizeof(g->lists[0]), cmp_attempt_list);
	rc = dict_get(a->r, &a->sources, g->last_source, &s);
	if (rc == 0)
		rc = vendor_evidence(a, s, evidence, sizeof(evidence));
	if (rc != 0)
		return rc;
	struct logdb_attempt at = {
	        .key = g->rank.key,
	        .evidence = evidence[0] != '\0' ? evidence : NULL,
	        .denied = g->rank.denied,
	        .device = s->col[SRC_DEVICE],
	        .mac = s->col[SRC_MAC],
	        .client = s->col[SRC_CLIENT],
	        .vendor = s->col[SRC_VENDOR],
	        .vendor_source = s->col[SRC_VENDOR_SOURCE],
	        .group = s->col[SRC_GROUP],
	        .attempts = g->rank.attempts,
	        .names = g->names,
	        .top_lists = lists,
	        .ntop = ntop,
	        .first_ms = g->first,
	        .last_ms = g->last,
	};
	for (size_t k = 0; k < ntop; k++)
		at.top[k] = g->lists[k].c;
	logdb_top_lists_text(at.top, ntop, lists, sizeof(lists));
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

	if (r->pg != NULL)
		return pgread_attempts(r->pg, f, cb, arg);
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
		qsort(a.v, a.n, sizeof(a.v[0]), logdb_rank_cmp);
	size_t n = f->limit > 0 && f->limit < a.n ? f->limit : a.n;
	for (size_t i = 0; i < n && rc == 0; i++)
		rc = emit_attempt(&a, &a.v[i], cb, arg);
cleanup:
	logdb_read_end(r, &q);
	attempts_free(&a);
	return rc;
}
