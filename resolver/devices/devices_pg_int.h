/*
 * devices_pg_int.h: what the shared device table's files share (devices_pg.c: the queues, the
 * sync thread and applying on the loop; devices_pg_sql.c: the SQL the thread runs). Not for
 * other folders.
 */
#ifndef VETO_DEVICES_PG_INT_H
#define VETO_DEVICES_PG_INT_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "devices_pg.h"

/* One change from the loop: a record's state, or its removal (forget at at_ms, Unix ms). */
struct devices_pg_change {
	bool forget;
	int64_t at_ms;
	struct devices_record rec;
};

/* Writes n changes as instance in one transaction and announces each on PG_DEVICES_CHANNEL.
 * Blocks. 0 or -EIO (why says why; the transaction is rolled back). */
int devices_pg_sql_write(PGconn *c, const char *instance, const struct devices_pg_change *ch,
			 size_t n, char *why, size_t whysz);

/* The rows with seq > after (after 0: all), their evidence split into this instance's and the
 * sum of the others'; for an address-keyed device ("ip:"), evidence last seen before ip_since
 * (Unix time) is left out: an address changes hands, and the next holder must not inherit
 * what the previous one queried (devices.address_ttl_s, as the local table). *rows is malloc'd (NULL when none); *max_seq the highest seq seen (left
 * as it was when none). Blocks. 0, -ENOMEM or -EIO. */
int devices_pg_sql_fetch(PGconn *c, const char *instance, int64_t after, int64_t ip_since,
			 struct devices_pg_row **rows, size_t *n, int64_t *max_seq, char *why,
			 size_t whysz);

#endif
