/*
 * logdb_filter: what both back ends ask of a filter (logdb_reader.h's struct logdb_filter):
 * its initial state, how many values a field holds, whether it names devices or domains. The
 * SQLite reader (logdb_query.c, logdb_summary.c) and the PostgreSQL one (pgread*.c) turn the
 * answers into their own SQL. Declared in logdb_reader_int.h (logdb_filter_init: public).
 */
#include <string.h>

#include "logdb_reader_int.h"

void
logdb_filter_init(struct logdb_filter *f)
{
	memset(f, 0, sizeof(*f));
	f->blocked = -1;
}

size_t
logdb_values_count(const struct logdb_values *v)
{
	size_t n = 0;

	while (n < LOGDB_FILTER_VALUES && v->v[n] != NULL)
		n++;
	return n;
}

bool
logdb_filter_has_source(const struct logdb_filter *f)
{
	return f->client.v[0] != NULL || f->mac.v[0] != NULL || f->device.v[0] != NULL ||
	       f->who != NULL || f->group.v[0] != NULL || f->vendor.v[0] != NULL;
}

bool
logdb_filter_has_domain(const struct logdb_filter *f)
{
	for (size_t i = 0; i < LOGDB_FILTER_VALUES && f->domain.v[i] != NULL; i++)
		if (strcmp(f->domain.v[i], ".") != 0)
			return true;
	return false;
}
