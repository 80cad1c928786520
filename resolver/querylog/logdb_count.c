/*
 * logdb_count: the final counting and ordering of `veto report summary` and `attempts`, one
 * piece for both back ends (logdb_summary.c, logdb_report.c on SQLite; pgread_report.c on
 * PostgreSQL), so that equal counts sort the same way on both and the outputs cannot drift
 * apart. Declared in logdb_report_int.h.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "logdb_report_int.h"

/* ORDER BY label (NULL first, then by octets) */
static int
cmp_count_label(const void *x, const void *y)
{
	const struct logdb_count *a = x, *b = y;

	return cmp_label(a->label, b->label);
}

/* ORDER BY total DESC, label */
static int
cmp_count_total(const void *x, const void *y)
{
	const struct logdb_count *a = x, *b = y;
	int c = cmp_u64_desc(a->total, b->total);

	return c != 0 ? c : cmp_label(a->label, b->label);
}

/* ORDER BY blocked DESC, total DESC, label */
static int
cmp_count_blocked(const void *x, const void *y)
{
	const struct logdb_count *a = x, *b = y;
	int c = cmp_u64_desc(a->blocked, b->blocked);

	return c != 0 ? c : cmp_count_total(x, y);
}

/* ORDER BY key (the hours) */
static int
cmp_count_key(const void *x, const void *y)
{
	const struct logdb_count *a = x, *b = y;

	return a->key < b->key ? -1 : a->key > b->key;
}

void
logdb_count_sort(struct logdb_count *v, size_t n, enum logdb_count_order order)
{
	static int (*const cmp[])(const void *, const void *) = {
	        [LOGDB_COUNT_BY_TOTAL] = cmp_count_total,
	        [LOGDB_COUNT_BY_BLOCKED] = cmp_count_blocked,
	        [LOGDB_COUNT_BY_LABEL] = cmp_count_label,
	        [LOGDB_COUNT_BY_KEY] = cmp_count_key,
	};

	if (n > 1)
		qsort(v, n, sizeof(*v), cmp[order]);
}

void
logdb_count_merge_labels(struct logdb_count *v, size_t *n)
{
	size_t o = 0;

	if (*n == 0)
		return;
	logdb_count_sort(v, *n, LOGDB_COUNT_BY_LABEL);
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

int
logdb_count_emit(enum logdb_summary_section section, const struct logdb_count *v, size_t n,
                 logdb_summary_cb cb, void *arg)
{
	for (size_t i = 0; i < n; i++) {
		struct logdb_summary_row row = {
		        .section = section,
		        .label = v[i].label,
		        .ts_ms = section == LOGDB_SUMMARY_HOUR && v[i].key > 0 ? (uint64_t)v[i].key
		                                                               : 0,
		        .total = v[i].total,
		        .blocked = v[i].blocked,
		};
		int rc = cb(arg, &row);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int
logdb_rank_cmp(const void *x, const void *y)
{
	const struct logdb_rank *a = x, *b = y;
	int c = cmp_u64_desc(a->attempts, b->attempts);

	if (c == 0)
		c = cmp_u64_desc(a->denied, b->denied);
	if (c == 0)
		c = strcmp(a->key, b->key);
	return c != 0 ? c : a->kind - b->kind;
}

int
logdb_list_count_cmp(const struct logdb_list_count *a, const struct logdb_list_count *b)
{
	int c = cmp_u64_desc(a->attempts, b->attempts);

	return c != 0 ? c : strcmp(a->list != NULL ? a->list : "", b->list != NULL ? b->list : "");
}

void
logdb_top_lists_text(const struct logdb_list_count *top, size_t n, char *buf, size_t cap)
{
	size_t off = 0;

	buf[0] = '\0';
	for (size_t k = 0; k < n; k++) {
		int w = snprintf(buf + off, cap - off, "%s%s (%llu)", off > 0 ? ", " : "",
		                 top[k].list != NULL ? top[k].list : "-",
		                 (unsigned long long)top[k].attempts);
		if (w < 0 || (size_t)w >= cap - off)
			break; /* what fitted stays */
		off += (size_t)w;
	}
}
