/*
 * devices_pg_sql: the SQL of the shared device table, run by the sync thread (devices_pg.c).
 * Every function blocks on the network: never call it from the loop.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "devices_pg_int.h"
#include "identity.h"
#include "log.h"
#include "pg.h"
#include "text.h"

/* An upsert that never lets a copy older than a tombstone bring the device back (first seen
 * before the forget, no pin made after it: a tombstone's pin_at is the forget's time); pins: the newest act wins; evidence against
 * handset vendors only accumulates. Returns the row's new seq, no row when refused. */
static const char upsert_sql[] =
	"INSERT INTO devices AS d (key, pin_vendor, pin_group, pin_at, os_families, shared,"
	" vendor, vendor_source, grp, first_seen, last_seen, updated_by)"
	" VALUES ($1, $2, $3, $4::bigint, $5::integer, $6::boolean, $7, $8, $9, $10::bigint,"
	" $11::bigint, $12)"
	" ON CONFLICT (key) DO UPDATE SET seq = nextval('devices_seq'), forgotten_at = NULL,"
	" pin_vendor = CASE WHEN EXCLUDED.pin_at > d.pin_at THEN EXCLUDED.pin_vendor"
	"  ELSE d.pin_vendor END,"
	" pin_group = CASE WHEN EXCLUDED.pin_at > d.pin_at THEN EXCLUDED.pin_group"
	"  ELSE d.pin_group END,"
	" pin_at = greatest(d.pin_at, EXCLUDED.pin_at),"
	" os_families = CASE WHEN d.forgotten_at IS NULL THEN d.os_families ELSE 0 END"
	"  | EXCLUDED.os_families,"
	" shared = (d.shared AND d.forgotten_at IS NULL) OR EXCLUDED.shared,"
	" vendor = EXCLUDED.vendor, vendor_source = EXCLUDED.vendor_source, grp = EXCLUDED.grp,"
	" first_seen = CASE WHEN d.forgotten_at IS NULL THEN least(d.first_seen,"
	"  EXCLUDED.first_seen) ELSE EXCLUDED.first_seen END,"
	" last_seen = greatest(d.last_seen, EXCLUDED.last_seen),"
	" updated_at = now(), updated_by = EXCLUDED.updated_by"
	" WHERE d.forgotten_at IS NULL OR EXCLUDED.first_seen > d.forgotten_at"
	"  OR EXCLUDED.pin_at > d.pin_at"
	" RETURNING seq";

/* This instance's own counts only grow (a restart does not lower them), except when the local
 * observation began after the stored one ended: a new device on the address (the old one was
 * forgotten locally), whose counts replace the old ones instead of adding to them. */
static const char evidence_sql[] =
	"INSERT INTO device_evidence AS e (key, instance, vendor, count, rom, app, first_seen,"
	" last_seen, evidence, rom_evidence)"
	" VALUES ($1, $2, $3, $4::bigint, $5::bigint, $6::bigint, $7::bigint, $8::bigint, $9, $10)"
	" ON CONFLICT (key, instance, vendor) DO UPDATE SET"
	" count = CASE WHEN EXCLUDED.first_seen > e.last_seen THEN EXCLUDED.count"
	"  ELSE greatest(e.count, EXCLUDED.count) END,"
	" rom = CASE WHEN EXCLUDED.first_seen > e.last_seen THEN EXCLUDED.rom"
	"  ELSE greatest(e.rom, EXCLUDED.rom) END,"
	" app = CASE WHEN EXCLUDED.first_seen > e.last_seen THEN EXCLUDED.app"
	"  ELSE greatest(e.app, EXCLUDED.app) END,"
	" first_seen = CASE WHEN EXCLUDED.first_seen > e.last_seen THEN EXCLUDED.first_seen"
	"  ELSE least(e.first_seen, EXCLUDED.first_seen) END,"
	" last_seen = greatest(e.last_seen, EXCLUDED.last_seen),"
	" evidence = CASE WHEN EXCLUDED.last_seen >= e.last_seen THEN EXCLUDED.evidence"
	"  ELSE e.evidence END,"
	" rom_evidence = CASE WHEN EXCLUDED.rom_evidence <> '' THEN EXCLUDED.rom_evidence"
	"  ELSE e.rom_evidence END";

/* A forget: the row becomes a tombstone (pins and evidence go), announced like any change. */
static const char forget_sql[] =
	"INSERT INTO devices AS d (key, forgotten_at, pin_at, updated_by)"
	" VALUES ($1, $2::bigint, $3::bigint, $4)"
	" ON CONFLICT (key) DO UPDATE SET seq = nextval('devices_seq'),"
	" forgotten_at = EXCLUDED.forgotten_at, pin_vendor = '', pin_group = '',"
	" pin_at = greatest(d.pin_at, EXCLUDED.pin_at), os_families = 0, shared = false,"
	" vendor = '', vendor_source = '', grp = '', updated_at = now(),"
	" updated_by = EXCLUDED.updated_by"
	" RETURNING seq";

static const char forget_evidence_sql[] = "DELETE FROM device_evidence WHERE key = $1";

static const char notify_sql[] = "SELECT pg_notify('" PG_DEVICES_CHANNEL "', $1)";

static const char fetch_sql[] =
	"SELECT d.key, d.seq, coalesce(d.forgotten_at, 0), d.pin_vendor, d.pin_group, d.pin_at,"
	" d.os_families, d.shared, d.first_seen, d.last_seen, d.updated_by,"
	" e.instance, e.vendor, e.count, e.rom, e.app, e.first_seen, e.last_seen, e.evidence,"
	" e.rom_evidence"
	" FROM devices d LEFT JOIN device_evidence e ON e.key = d.key"
	" WHERE d.seq > $1::bigint ORDER BY d.seq, e.instance, e.vendor";

/* Runs sql with n text parameters; the result (NULL and why on failure). */
static PGresult *
run(PGconn *c, const char *sql, int n, const char *const *params, char *why, size_t whysz)
{
	PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		pg_error(c, r, why, whysz);
		PQclear(r);
		return NULL;
	}
	return r;
}

static int
notify(PGconn *c, const char *seq, const char *key, char *why, size_t whysz)
{
	char payload[DEVICES_KEY_MAX + 32];
	snprintf(payload, sizeof(payload), "%s %s", seq, key);
	const char *p[1] = {payload};
	PGresult *r = run(c, notify_sql, 1, p, why, whysz);
	PQclear(r);
	return r != NULL ? 0 : -EIO;
}

static int
write_forget(PGconn *c, const char *instance, const struct devices_pg_change *ch, char *why,
	     size_t whysz)
{
	char at[24], pin_at[24];
	snprintf(at, sizeof(at), "%" PRId64, ch->at_ms / 1000);
	snprintf(pin_at, sizeof(pin_at), "%" PRId64, ch->at_ms);
	const char *p[4] = {ch->rec.key, at, pin_at, instance};
	PGresult *r = run(c, forget_sql, 4, p, why, whysz);
	if (r == NULL)
		return -EIO;
	char seq[24];
	text_copy(seq, sizeof(seq), PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "0");
	PQclear(r);
	if ((r = run(c, forget_evidence_sql, 1, p, why, whysz)) == NULL)
		return -EIO;
	PQclear(r);
	return notify(c, seq, ch->rec.key, why, whysz);
}

static int
write_state(PGconn *c, const char *instance, const struct devices_record *rec, char *why,
	    size_t whysz)
{
	char pin_at[24], fam[12], first[24], last[24];
	const char *src = identity_source_name(rec->vendor_source);

	snprintf(pin_at, sizeof(pin_at), "%" PRId64, rec->pin_at);
	snprintf(fam, sizeof(fam), "%u", (unsigned)rec->os_families);
	snprintf(first, sizeof(first), "%" PRId64, rec->first_seen);
	snprintf(last, sizeof(last), "%" PRId64, rec->last_seen);
	const char *p[12] = {rec->key, rec->pin_vendor, rec->pin_group, pin_at, fam,
			     rec->shared ? "true" : "false", rec->vendor, src ? src : "",
			     rec->group, first, last, instance};
	PGresult *r = run(c, upsert_sql, 12, p, why, whysz);
	if (r == NULL)
		return -EIO;
	bool refused = PQntuples(r) == 0;	/* a stale copy of a forgotten device */
	char seq[24];
	text_copy(seq, sizeof(seq), refused ? "0" : PQgetvalue(r, 0, 0));
	PQclear(r);
	if (refused)
		return 0;
	for (size_t i = 0; i < rec->nobs; i++) {
		const struct devices_obs *o = &rec->obs[i];
		char n[12], rom[12], app[12], f[24], l[24];
		if (o->own == 0)
			continue;
		snprintf(n, sizeof(n), "%u", (unsigned)o->own);
		snprintf(rom, sizeof(rom), "%u", (unsigned)o->own_rom);
		snprintf(app, sizeof(app), "%u", (unsigned)o->own_app);
		snprintf(f, sizeof(f), "%" PRId64, o->first);
		snprintf(l, sizeof(l), "%" PRId64, o->last);
		const char *q[10] = {rec->key, instance, o->vendor, n, rom, app, f, l, o->evidence,
				     o->rom_evidence};
		if ((r = run(c, evidence_sql, 10, q, why, whysz)) == NULL)
			return -EIO;
		PQclear(r);
	}
	return notify(c, seq, rec->key, why, whysz);
}

int
devices_pg_sql_write(PGconn *c, const char *instance, const struct devices_pg_change *ch,
		     size_t n, char *why, size_t whysz)
{
	if (pg_exec(c, "BEGIN", why, whysz) < 0)
		return -EIO;
	for (size_t i = 0; i < n; i++) {
		char err[512];
		if (pg_exec(c, "SAVEPOINT one", why, whysz) < 0)
			goto fail;
		int rc = ch[i].forget ? write_forget(c, instance, &ch[i], err, sizeof(err))
				      : write_state(c, instance, &ch[i].rec, err, sizeof(err));
		if (rc != 0 && PQstatus(c) != CONNECTION_OK) {
			text_copy(why, whysz, err);
			goto fail;
		}
		if (rc != 0) {
			/* this change's data (text the database refuses): the others still go */
			log_warning("devices: shared store: %s: change not written: %s",
				    ch[i].rec.key, err);
			if (pg_exec(c, "ROLLBACK TO SAVEPOINT one", why, whysz) < 0)
				goto fail;
		}
	}
	return pg_exec(c, "COMMIT", why, whysz) < 0 ? -EIO : 0;
fail:
	pg_exec(c, "ROLLBACK", NULL, 0);
	return -EIO;
}

static int64_t
num(const PGresult *r, int row, int col)
{
	return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}

static uint32_t
count32(const PGresult *r, int row, int col)
{
	int64_t v = num(r, row, col);
	return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

int
devices_pg_sql_fetch(PGconn *c, const char *instance, int64_t after, int64_t ip_since,
		     struct devices_pg_row **rows, size_t *n, int64_t *max_seq, char *why,
		     size_t whysz)
{
	char a[24];
	snprintf(a, sizeof(a), "%" PRId64, after);
	const char *p[1] = {a};
	PGresult *r = run(c, fetch_sql, 1, p, why, whysz);
	if (r == NULL)
		return -EIO;
	int nt = PQntuples(r);
	struct devices_pg_row *out = nt > 0 ? calloc((size_t)nt, sizeof(*out)) : NULL;
	size_t k = 0;
	if (nt > 0 && out == NULL) {
		PQclear(r);
		snprintf(why, whysz, "out of memory");
		return -ENOMEM;
	}
	for (int i = 0; i < nt; i++) {
		struct devices_pg_row *w = k > 0 ? &out[k - 1] : NULL;
		if (w == NULL || strcmp(w->key, PQgetvalue(r, i, 0)) != 0) {
			w = &out[k++];
			text_copy(w->key, sizeof(w->key), PQgetvalue(r, i, 0));
			w->seq = num(r, i, 1);
			w->forgotten_at = num(r, i, 2);
			text_copy(w->pin_vendor, sizeof(w->pin_vendor), PQgetvalue(r, i, 3));
			text_copy(w->pin_group, sizeof(w->pin_group), PQgetvalue(r, i, 4));
			w->pin_at = num(r, i, 5);
			w->os_families = (uint16_t)num(r, i, 6);
			w->shared = PQgetvalue(r, i, 7)[0] == 't';
			w->first_seen = num(r, i, 8);
			w->last_seen = num(r, i, 9);
			text_copy(w->updated_by, sizeof(w->updated_by), PQgetvalue(r, i, 10));
			if (w->seq > *max_seq)
				*max_seq = w->seq;
		}
		if (PQgetisnull(r, i, 11))
			continue;
		struct devices_obs o;
		memset(&o, 0, sizeof(o));
		text_copy(o.vendor, sizeof(o.vendor), PQgetvalue(r, i, 12));
		o.count = count32(r, i, 13);
		o.rom = count32(r, i, 14);
		o.app = count32(r, i, 15);
		o.first = num(r, i, 16);
		o.last = num(r, i, 17);
		text_copy(o.evidence, sizeof(o.evidence), PQgetvalue(r, i, 18));
		text_copy(o.rom_evidence, sizeof(o.rom_evidence), PQgetvalue(r, i, 19));
		if (strncmp(w->key, "ip:", 3) == 0 && o.last < ip_since)
			continue;
		devices_pg_row_add(w, &o, strcmp(PQgetvalue(r, i, 11), instance) == 0);
	}
	PQclear(r);
	*rows = out;
	*n = k;
	return 0;
}
