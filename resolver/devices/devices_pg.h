/*
 * devices_pg: the device table shared between instances through the shared store
 * (store.postgresql; schema in resolver/pg/pg_schema_devices.c).
 *
 * Each instance keeps its own table (devices.h) and answers from it; this module keeps it in
 * step with the others. On the loop, devices_pg_push() hands a changed record (new evidence,
 * attribution, pin, unpin) or a forget to the sync thread through a bounded queue without
 * waiting (a device's newer state replaces the one still queued; when the queue is full, the
 * change is dropped and every record is pushed again later; a forget is only logged). The sync thread, with its own connection, upserts the changes in one transaction and
 * announces them (NOTIFY veto_devices); it LISTENs, fetches the rows changed since the last it
 * saw on a notification, and every store.resync_s all rows, and hands them to the loop
 * (uv_async), which merges them into the table with devices_pg_merge() and logs and reports
 * what changed as a local change would, naming the instance it came from.
 *
 * Merge rules (devices_pg_merge):
 *   - a forget is a tombstone: the device leaves every table whose copy is older than the
 *     forget (first seen before it, no pin made after it); a stale copy never brings it back
 *   - pins: the newest administrator's act (pin or unpin, by its time) wins
 *   - evidence: each instance writes the counts it observed itself; a table holds its own counts
 *     plus the sum of the others' per vendor, and the vendor is resolved from that by this
 *     instance's own rules (identify_vendor): a remote instance's evidence never attributes on
 *     weaker grounds than a local query would; evidence against handset vendors (OS checks, a
 *     shared address) seen anywhere counts everywhere
 * PostgreSQL down: the table keeps working alone; changes wait in the queue (bounded) and go
 * out when the connection is back (reconnection with backoff, 1 s doubling to 30 s).
 */
#ifndef VETO_DEVICES_PG_H
#define VETO_DEVICES_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "identify.h"

#define DEVICES_PG_INSTANCE_MAX 64
#define DEVICES_PG_QUEUE	1024	/* changes waiting for the sync thread */

/* One device as the shared table has it. */
struct devices_pg_row {
	char key[DEVICES_KEY_MAX];
	int64_t seq;
	int64_t forgotten_at;			/* Unix time of a forget, 0 = a live device */
	char pin_vendor[IDENTITY_VENDOR_MAX];
	char pin_group[IDENTITY_NAME_MAX];
	int64_t pin_at;				/* Unix ms of the last pin or unpin, 0 = none */
	uint16_t os_families;
	bool shared;
	int64_t first_seen, last_seen;
	char updated_by[DEVICES_PG_INSTANCE_MAX];	/* the instance of the last change */
	struct devices_obs others[DEVICES_MAX_OBS];	/* the other instances' evidence, summed */
	uint8_t nothers;
	struct devices_obs own[DEVICES_MAX_OBS];	/* this instance's evidence as stored */
	uint8_t nown;
};

enum devices_pg_merged {
	DEVICES_PG_SAME = 0,	/* nothing the decision reads changed */
	DEVICES_PG_CHANGED,	/* pins or evidence changed: re-resolve the vendor */
	DEVICES_PG_FORGET,	/* the row is a tombstone newer than r: remove r */
};

/*
 * Merges row into r (a record of the local table with the same key). initial: the first fetch
 * since start, when r's own counts are not known yet (records loaded from devices.db): they are
 * taken as the larger of the stored own counts and r's counts minus the others'. Pure.
 */
enum devices_pg_merged devices_pg_merge(struct devices_record *r, const struct devices_pg_row *row,
					bool initial);

/* Adds obs to the summed evidence of row->others (or row->own when own): counts add up, the
 * newest evidence text stays, at most DEVICES_MAX_OBS vendors (the weakest goes). Pure. */
void devices_pg_row_add(struct devices_pg_row *row, const struct devices_obs *obs, bool own);

/* ---- the sync (devices_pg.c); loop thread only ---- */

struct devices;
struct devices_pg;
struct policy;

/* Starts the sync thread for d under policy's store settings (a reference is taken). 0, or
 * -ENOMEM / a libuv or pthread error (the table then stays local, the caller logs it). */
int devices_pg_new(struct devices *d, uv_loop_t *loop, struct policy *policy,
		   struct devices_pg **out);

/* Hands r's state (or, forget, its removal) to the sync thread. Never waits. */
void devices_pg_push(struct devices_pg *p, const struct devices_record *r, bool forget);

/* Stops the thread (its pending changes are written first when connected; at most a few
 * seconds) and closes the async handle: d's open_handles drops by one in its close callback. */
void devices_pg_close(struct devices_pg *p);
void devices_pg_free(struct devices_pg **p);	/* after the close callback; NULL-safe */

#endif
