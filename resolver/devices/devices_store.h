/*
 * devices_store: the device table saved in SQLite, state_dir/devices.db. It holds the current
 * state only (each device and the vendors its queries revealed); the history of device events
 * lives in the query store (resolver/querylog/, table device_events). A file from an older
 * version loses its unused events table when the daemon opens it.
 *
 * The daemon opens it read-write (WAL journal; a file that is not a database or fails its
 * integrity check is set aside as PATH.corrupt-UNIXTIME and a new one created); `veto devices`
 * and `veto explain` open it read-only while the daemon writes it.
 */
#ifndef VETO_DEVICES_STORE_H
#define VETO_DEVICES_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "identify.h"

#define DEVICES_DB_FILE "devices.db"

struct devices_store;

/*
 * Opens (readonly: never creates) or creates path. Returns 0, 1 (read-write: opened after
 * setting a corrupt file aside, message in err), -ENOENT (readonly and missing) or -EIO
 * (message in err, size octets).
 */
int devices_store_open(const char *path, bool readonly, char *err, size_t size,
		       struct devices_store **out);
void devices_store_close(struct devices_store **st);	/* NULL-safe */

/* Saves records (upsert, with their observations) in one transaction. 0, -EROFS or -EIO. */
int devices_store_save(struct devices_store *st, const struct devices_record *recs, size_t n);

/* Deletes the devices with these keys (and their observations), in one transaction. 0, -EROFS
 * or -EIO. */
int devices_store_delete(struct devices_store *st, const char (*keys)[DEVICES_KEY_MAX], size_t n);
/* Deletes every device whose key is not one of these (the table after more evictions than
 * could be listed). 0, -EROFS or -EIO. */
int devices_store_keep_only(struct devices_store *st, const char (*keys)[DEVICES_KEY_MAX],
			    size_t n);

typedef int (*devices_store_record_cb)(void *arg, const struct devices_record *rec);
/* Calls cb for every saved device (newest last_seen first); stops at a non-zero return and
 * returns it. -EIO on a database error. */
int devices_store_load(struct devices_store *st, devices_store_record_cb cb, void *arg);
/* The device with that key into *out: 0, -ENOENT or -EIO. */
int devices_store_get(struct devices_store *st, const char *key, struct devices_record *out);

/* state_dir/devices.db into buf; -ENAMETOOLONG when it does not fit. */
int devices_store_path(const struct config *cfg, char *buf, size_t size);

/* want, the value of opt ("--vendor" or "--group"), is one the configuration (groups;
 * vendors Veto knows and the inventory's; cfg may be NULL) or the saved device table (st may
 * be NULL) knows: 0; else -1 with a message and its "did you mean" in err ("--vendor: unknown
 * vendor 'Xiomi' (did you mean 'Xiaomi'?)"). A group removed from the configuration still
 * matches the devices whose last query was in it. devices_known.c */
int devices_store_check_known(const struct config *cfg, struct devices_store *st, const char *opt,
			      const char *want, char *err, size_t size);

#endif
