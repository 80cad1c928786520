/*
 * devices_store: the current device table in SQLite (state_dir/devices.db); see devices_store.h.
 *
 * Crash safety comes from SQLite: every save is one transaction in WAL mode, so a crash at any
 * point leaves either the previous or the new state. Readers (`veto devices`, `veto explain`)
 * open the file read-only while the daemon writes it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devices_store.h"
#include "fileio.h"

struct devices_store {
	sqlite3 *db;
	bool readonly;
	bool legacy;		/* read-only, a file of an earlier version: no evidence columns */
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS devices ("
	" key TEXT PRIMARY KEY, mac TEXT, randomised INTEGER NOT NULL DEFAULT 0,"
	" ips TEXT NOT NULL DEFAULT '', hostname TEXT, client_id TEXT, vendor_class TEXT,"
	" inventory TEXT, manufacturer TEXT, oui_vendor TEXT, vendor TEXT, vendor_source TEXT,"
	" grp TEXT, first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL,"
	" os_families INTEGER NOT NULL DEFAULT 0, shared INTEGER NOT NULL DEFAULT 0,"
	" pin_vendor TEXT, pin_group TEXT);"
	"CREATE TABLE IF NOT EXISTS observations ("
	" key TEXT NOT NULL, vendor TEXT NOT NULL, count INTEGER NOT NULL,"
	" first_seen INTEGER NOT NULL, last_seen INTEGER NOT NULL, evidence TEXT,"
	" rom INTEGER NOT NULL DEFAULT 0, app INTEGER NOT NULL DEFAULT 0, rom_evidence TEXT,"
	" PRIMARY KEY (key, vendor));"
	/* Files written before the query store kept every device event had a second copy of
	 * them here, read by nothing: dropped, the query store's device_events is the one. */
	"DROP TABLE IF EXISTS events;";

static void
set_err(char *err, size_t size, const char *path, const char *what, sqlite3 *db)
{
	if (err != NULL && size > 0)
		snprintf(err, size, "%s: %s: %s", path, what,
			 db != NULL ? sqlite3_errmsg(db) : "out of memory");
}

/*
 * Files of earlier versions: the evidence columns are added. Their observations carry no
 * strength; they are kept as app evidence (shown, never attributing), so that a device banned
 * by the old one-query rule is attributed again only by a rom query, never kept banned by a
 * name any phone may resolve. 0 or the SQLite error code.
 */
static int
migrate(sqlite3 *db)
{
	static const char *const add[] = {
		"ALTER TABLE devices ADD COLUMN os_families INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE devices ADD COLUMN shared INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE devices ADD COLUMN pin_vendor TEXT",
		"ALTER TABLE devices ADD COLUMN pin_group TEXT",
		"ALTER TABLE observations ADD COLUMN rom INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE observations ADD COLUMN app INTEGER NOT NULL DEFAULT 0",
		"ALTER TABLE observations ADD COLUMN rom_evidence TEXT",
	};
	bool added = false;

	for (size_t i = 0; i < sizeof(add) / sizeof(add[0]); i++) {
		char *msg = NULL;
		int rc = sqlite3_exec(db, add[i], NULL, NULL, &msg);
		bool dup = rc == SQLITE_ERROR && msg != NULL && strstr(msg, "duplicate column") != NULL;
		sqlite3_free(msg);
		if (rc != SQLITE_OK && !dup)
			return rc;
		added = added || rc == SQLITE_OK;
	}
	if (!added)
		return SQLITE_OK;
	return sqlite3_exec(db, "UPDATE observations SET app = count WHERE rom = 0 AND app = 0",
			    NULL, NULL, NULL);
}

/* Read-write open: schema, WAL and an integrity check. 0, or the SQLite error code. */
static int
open_rw(const char *path, sqlite3 **out)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc != SQLITE_OK)
		goto cleanup;
	sqlite3_busy_timeout(db, 2000);
	rc = sqlite3_prepare_v2(db, "PRAGMA quick_check", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			const unsigned char *r = sqlite3_column_text(st, 0);
			rc = r != NULL && strcmp((const char *)r, "ok") == 0 ? SQLITE_OK
									       : SQLITE_CORRUPT;
		}
	}
	sqlite3_finalize(st);
	if (rc != SQLITE_OK)
		goto cleanup;
	rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			  NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, schema, NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = migrate(db);
cleanup:
	if (rc != SQLITE_OK) {
		sqlite3_close(db);
		return rc;
	}
	*out = db;
	return 0;
}

int
devices_store_open(const char *path, bool readonly, char *err, size_t size,
		   struct devices_store **out)
{
	struct devices_store *s = calloc(1, sizeof(*s));
	sqlite3 *db = NULL;
	int rc;

	if (s == NULL) {
		set_err(err, size, path, "cannot open", NULL);
		return -ENOMEM;
	}
	s->readonly = readonly;
	if (readonly) {
		if (access(path, F_OK) != 0) {
			free(s);
			return -ENOENT;
		}
		rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL);
		if (rc == SQLITE_OK) {
			sqlite3_busy_timeout(db, 2000);
			rc = sqlite3_exec(db, "SELECT count(*) FROM devices", NULL, NULL, NULL);
		}
		if (rc == SQLITE_OK)
			s->legacy = sqlite3_exec(db, "SELECT os_families FROM devices LIMIT 0;"
						 "SELECT rom FROM observations LIMIT 0",
						 NULL, NULL, NULL) != SQLITE_OK;
		if (rc != SQLITE_OK) {
			set_err(err, size, path, "cannot read the device state", db);
			sqlite3_close(db);
			free(s);
			return -EIO;
		}
		s->db = db;
		*out = s;
		return 0;
	}
	rc = open_rw(path, &db);
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
		char aside[4096];
		int moved = fileio_set_aside(path, aside, sizeof(aside));
		if (err != NULL && size > 0) {
			if (moved == 0)
				snprintf(err, size, "%s: corrupt device state (%s): renamed to '%s'",
					 path, sqlite3_errstr(rc), aside);
			else
				snprintf(err, size, "%s: corrupt device state (%s), and it cannot be "
					 "renamed: %s", path, sqlite3_errstr(rc), strerror(-moved));
		}
		rc = moved == 0 ? open_rw(path, &db) : rc;
		if (rc == SQLITE_OK) {
			s->db = db;
			*out = s;
			return 1;	/* opened, after setting the corrupt file aside */
		}
	}
	if (rc != SQLITE_OK) {
		if (err != NULL && size > 0)
			snprintf(err, size, "%s: cannot open the device state: %s", path,
				 sqlite3_errstr(rc));
		free(s);
		return -EIO;
	}
	s->db = db;
	*out = s;
	return 0;
}

void
devices_store_close(struct devices_store **sp)
{
	struct devices_store *s = *sp;
	if (s == NULL)
		return;
	sqlite3_close(s->db);
	free(s);
	*sp = NULL;
}

static void
bind_text(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL || s[0] == '\0')
		sqlite3_bind_null(st, i);
	else
		sqlite3_bind_text(st, i, s, -1, SQLITE_TRANSIENT);
}

static void
ips_text(const struct devices_record *r, char *buf, size_t size)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < r->nips && off + 1 < size; i++) {
		char ip[INET6_ADDRSTRLEN];
		identify_ip_text(&r->ips[i], ip, sizeof(ip));
		int n = snprintf(buf + off, size - off, "%s%s", i ? "," : "", ip);
		if (n < 0 || (size_t)n >= size - off)
			break;
		off += (size_t)n;
	}
}

int
devices_store_save(struct devices_store *s, const struct devices_record *recs, size_t n)
{
	static const char up_dev[] =
		"INSERT INTO devices (key, mac, randomised, ips, hostname, client_id, vendor_class,"
		" inventory, manufacturer, oui_vendor, vendor, vendor_source, grp, first_seen,"
		" last_seen, os_families, shared, pin_vendor, pin_group)"
		" VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9,?10,?11,?12,?13,?14,?15,?16,?17,?18,?19)"
		" ON CONFLICT(key) DO UPDATE SET mac=?2, randomised=?3, ips=?4, hostname=?5,"
		" client_id=?6, vendor_class=?7, inventory=?8, manufacturer=?9, oui_vendor=?10,"
		" vendor=?11, vendor_source=?12, grp=?13, first_seen=min(first_seen, ?14),"
		" last_seen=max(last_seen, ?15), os_families=?16, shared=?17, pin_vendor=?18,"
		" pin_group=?19";
	static const char up_obs[] =
		"INSERT INTO observations (key, vendor, count, first_seen, last_seen, evidence, rom,"
		" app, rom_evidence) VALUES (?1,?2,?3,?4,?5,?6,?7,?8,?9) ON CONFLICT(key, vendor)"
		" DO UPDATE SET count=?3, first_seen=?4, last_seen=?5, evidence=?6, rom=?7, app=?8,"
		" rom_evidence=?9";
	sqlite3_stmt *sd = NULL, *so = NULL;
	int rc = -EIO;

	if (s->readonly)
		return -EROFS;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	if (sqlite3_prepare_v2(s->db, up_dev, -1, &sd, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(s->db, up_obs, -1, &so, NULL) != SQLITE_OK)
		goto cleanup;
	for (size_t i = 0; i < n; i++) {
		const struct devices_record *r = &recs[i];
		char mac[MAC_STRLEN], ips[DEVICES_MAX_IPS * (INET6_ADDRSTRLEN + 1) + 1];
		ips_text(r, ips, sizeof(ips));
		sqlite3_reset(sd);
		bind_text(sd, 1, r->key);
		bind_text(sd, 2, r->has_mac ? mac_format(&r->mac, mac) : NULL);
		sqlite3_bind_int(sd, 3, r->has_mac && r->randomised);
		sqlite3_bind_text(sd, 4, ips, -1, SQLITE_TRANSIENT);
		bind_text(sd, 5, r->hostname);
		bind_text(sd, 6, r->client_id);
		bind_text(sd, 7, r->vendor_class);
		bind_text(sd, 8, r->inventory);
		bind_text(sd, 9, r->manufacturer);
		bind_text(sd, 10, r->oui_vendor);
		bind_text(sd, 11, r->vendor);
		bind_text(sd, 12, identity_source_name(r->vendor_source));
		bind_text(sd, 13, r->group);
		sqlite3_bind_int64(sd, 14, r->first_seen);
		sqlite3_bind_int64(sd, 15, r->last_seen);
		sqlite3_bind_int(sd, 16, r->os_families);
		sqlite3_bind_int(sd, 17, r->shared);
		bind_text(sd, 18, r->pin_vendor);
		bind_text(sd, 19, r->pin_group);
		if (sqlite3_step(sd) != SQLITE_DONE)
			goto cleanup;
		for (size_t k = 0; k < r->nobs; k++) {
			const struct devices_obs *o = &r->obs[k];
			sqlite3_reset(so);
			bind_text(so, 1, r->key);
			bind_text(so, 2, o->vendor);
			sqlite3_bind_int64(so, 3, o->count);
			sqlite3_bind_int64(so, 4, o->first);
			sqlite3_bind_int64(so, 5, o->last);
			bind_text(so, 6, o->evidence);
			sqlite3_bind_int64(so, 7, o->rom);
			sqlite3_bind_int64(so, 8, o->app);
			bind_text(so, 9, o->rom_evidence);
			if (sqlite3_step(so) != SQLITE_DONE)
				goto cleanup;
		}
	}
	if (sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) == SQLITE_OK)
		rc = 0;
cleanup:
	sqlite3_finalize(sd);
	sqlite3_finalize(so);
	if (rc != 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

static void
col_text(sqlite3_stmt *st, int i, char *dst, size_t size)
{
	const unsigned char *t = sqlite3_column_text(st, i);
	if (t == NULL) {
		dst[0] = '\0';
		return;
	}
	snprintf(dst, size, "%s", (const char *)t);
}

static void
parse_ips(const char *text, struct devices_record *r)
{
	char buf[DEVICES_MAX_IPS * (INET6_ADDRSTRLEN + 1) + 1];
	snprintf(buf, sizeof(buf), "%s", text);
	r->nips = 0;
	for (char *save = NULL, *t = strtok_r(buf, ",", &save);
	     t != NULL && r->nips < DEVICES_MAX_IPS; t = strtok_r(NULL, ",", &save)) {
		struct devices_ip *ip = &r->ips[r->nips];
		memset(ip, 0, sizeof(*ip));
		if (inet_pton(AF_INET, t, ip->addr) == 1)
			ip->family = AF_INET;
		else if (inet_pton(AF_INET6, t, ip->addr) == 1)
			ip->family = AF_INET6;
		else
			continue;
		r->nips++;
	}
}

static uint8_t
source_from_name(const char *s)
{
	for (uint8_t i = IDENTITY_SRC_INVENTORY; i <= IDENTITY_SRC_PIN; i++)
		if (strcmp(identity_source_name(i), s) == 0)
			return i;
	return IDENTITY_SRC_NONE;
}

/* Row of "SELECT key, mac, randomised, ips, ... last_seen" into r (observations not read). */
static void
read_row(sqlite3_stmt *st, struct devices_record *r)
{
	char buf[DEVICES_MAX_IPS * (INET6_ADDRSTRLEN + 1) + 1];
	memset(r, 0, sizeof(*r));
	col_text(st, 0, r->key, sizeof(r->key));
	col_text(st, 1, buf, sizeof(buf));
	r->has_mac = buf[0] != '\0' && mac_parse(buf, strlen(buf), &r->mac) == 0;
	r->randomised = sqlite3_column_int(st, 2) != 0;
	col_text(st, 3, buf, sizeof(buf));
	parse_ips(buf, r);
	col_text(st, 4, r->hostname, sizeof(r->hostname));
	col_text(st, 5, r->client_id, sizeof(r->client_id));
	col_text(st, 6, r->vendor_class, sizeof(r->vendor_class));
	col_text(st, 7, r->inventory, sizeof(r->inventory));
	col_text(st, 8, r->manufacturer, sizeof(r->manufacturer));
	col_text(st, 9, r->oui_vendor, sizeof(r->oui_vendor));
	col_text(st, 10, r->vendor, sizeof(r->vendor));
	col_text(st, 11, buf, sizeof(buf));
	r->vendor_source = source_from_name(buf);
	col_text(st, 12, r->group, sizeof(r->group));
	r->first_seen = sqlite3_column_int64(st, 13);
	r->last_seen = sqlite3_column_int64(st, 14);
	r->os_families = (uint16_t)sqlite3_column_int(st, 15);
	r->shared = sqlite3_column_int(st, 16) != 0;
	col_text(st, 17, r->pin_vendor, sizeof(r->pin_vendor));
	col_text(st, 18, r->pin_group, sizeof(r->pin_group));
}

static int
read_obs(struct devices_store *s, struct devices_record *r)
{
	sqlite3_stmt *st = NULL;
	int rc;
	/* an earlier version's observations: app evidence, as the daemon migrates them */
	const char *sql = s->legacy ? "SELECT vendor, count, first_seen, last_seen, evidence, 0,"
				      " count, NULL FROM observations WHERE key = ?1"
				      " ORDER BY first_seen, vendor"
				    : "SELECT vendor, count, first_seen, last_seen, evidence, rom, app,"
				      " rom_evidence FROM observations WHERE key = ?1"
				      " ORDER BY first_seen, vendor";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, r->key, -1, SQLITE_TRANSIENT);
	r->nobs = 0;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW && r->nobs < DEVICES_MAX_OBS) {
		struct devices_obs *o = &r->obs[r->nobs++];
		col_text(st, 0, o->vendor, sizeof(o->vendor));
		o->count = (uint32_t)sqlite3_column_int64(st, 1);
		o->first = sqlite3_column_int64(st, 2);
		o->last = sqlite3_column_int64(st, 3);
		col_text(st, 4, o->evidence, sizeof(o->evidence));
		o->rom = (uint32_t)sqlite3_column_int64(st, 5);
		o->app = (uint32_t)sqlite3_column_int64(st, 6);
		col_text(st, 7, o->rom_evidence, sizeof(o->rom_evidence));
	}
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

#define SELECT_DEVICE_COLUMNS                                                                    \
	"SELECT key, mac, randomised, ips, hostname, client_id, vendor_class, inventory,"         \
	" manufacturer, oui_vendor, vendor, vendor_source, grp, first_seen, last_seen,"
#define SELECT_DEVICE	     SELECT_DEVICE_COLUMNS " os_families, shared, pin_vendor, pin_group FROM devices"
#define SELECT_DEVICE_LEGACY SELECT_DEVICE_COLUMNS " 0, 0, NULL, NULL FROM devices"

int
devices_store_load(struct devices_store *s, devices_store_record_cb cb, void *arg)
{
	sqlite3_stmt *st = NULL;
	struct devices_record r;
	int rc, result = 0;
	const char *sql = s->legacy ? SELECT_DEVICE_LEGACY " ORDER BY last_seen DESC, key"
				    : SELECT_DEVICE " ORDER BY last_seen DESC, key";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		read_row(st, &r);
		if (read_obs(s, &r) != 0) {
			result = -EIO;
			break;
		}
		if ((result = cb(arg, &r)) != 0)
			break;
	}
	if (result == 0 && rc != SQLITE_DONE)
		result = -EIO;
	sqlite3_finalize(st);
	return result;
}

int
devices_store_get(struct devices_store *s, const char *key, struct devices_record *out)
{
	sqlite3_stmt *st = NULL;
	struct devices_record r;
	int rc;
	const char *sql = s->legacy ? SELECT_DEVICE_LEGACY " WHERE key = ?1"
				    : SELECT_DEVICE " WHERE key = ?1";
	if (sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_TRANSIENT);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		read_row(st, &r);
	sqlite3_finalize(st);
	if (rc == SQLITE_DONE)
		return -ENOENT;
	if (rc != SQLITE_ROW || read_obs(s, &r) != 0)
		return -EIO;
	*out = r;
	return 0;
}

/* Runs sql (one statement, ?1 = each key) for every key, in one transaction. */
static int
each_key(struct devices_store *s, const char *const *sql, size_t nsql,
	 const char (*keys)[DEVICES_KEY_MAX], size_t n)
{
	sqlite3_stmt *st[4] = {NULL};
	int rc = -EIO;

	if (s->readonly)
		return -EROFS;
	if (sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	for (size_t q = 0; q < nsql; q++)
		if (sqlite3_prepare_v2(s->db, sql[q], -1, &st[q], NULL) != SQLITE_OK)
			goto cleanup;
	for (size_t i = 0; i < n; i++) {
		for (size_t q = 0; q < nsql; q++) {
			sqlite3_reset(st[q]);
			sqlite3_bind_text(st[q], 1, keys[i], -1, SQLITE_STATIC);
			if (sqlite3_step(st[q]) != SQLITE_DONE)
				goto cleanup;
		}
	}
	rc = 0;
cleanup:
	for (size_t q = 0; q < nsql; q++)
		sqlite3_finalize(st[q]);
	if (rc == 0 && sqlite3_exec(s->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = -EIO;
	if (rc != 0)
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
	return rc;
}

int
devices_store_delete(struct devices_store *s, const char (*keys)[DEVICES_KEY_MAX], size_t n)
{
	static const char *const sql[] = {
		"DELETE FROM devices WHERE key = ?1",
		"DELETE FROM observations WHERE key = ?1",
	};
	return each_key(s, sql, 2, keys, n);
}

int
devices_store_keep_only(struct devices_store *s, const char (*keys)[DEVICES_KEY_MAX], size_t n)
{
	static const char *const sql[] = {"INSERT OR IGNORE INTO temp.keep (key) VALUES (?1)"};
	int rc;

	if (s->readonly)
		return -EROFS;
	if (sqlite3_exec(s->db, "CREATE TEMP TABLE IF NOT EXISTS keep (key TEXT PRIMARY KEY);"
			 "DELETE FROM temp.keep;", NULL, NULL, NULL) != SQLITE_OK)
		return -EIO;
	rc = each_key(s, sql, 1, keys, n);
	if (rc == 0 &&
	    sqlite3_exec(s->db, "BEGIN IMMEDIATE;"
			 "DELETE FROM devices WHERE key NOT IN (SELECT key FROM temp.keep);"
			 "DELETE FROM observations WHERE key NOT IN (SELECT key FROM temp.keep);"
			 "COMMIT;", NULL, NULL, NULL) != SQLITE_OK) {
		sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
		rc = -EIO;
	}
	sqlite3_exec(s->db, "DELETE FROM temp.keep", NULL, NULL, NULL);
	return rc;
}

int
devices_store_path(const struct config *cfg, char *buf, size_t size)
{
	const char *dir = cfg->state_dir != NULL ? cfg->state_dir : "/var/lib/veto";
	int n = snprintf(buf, size, "%s/%s", dir, DEVICES_DB_FILE);
	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}
