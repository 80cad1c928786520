/*
 * devices: device identity in the daemon (issue 4). Which device is behind a query, which vendor
 * it is, and the group it belongs to.
 *
 * Sources (devices: in the configuration): the inventory, DHCP lease files (re-read when they
 * change: uv_fs_event on their folder, debounced, parsed in the thread pool), the kernel's ARP
 * table (re-read on a timer in the thread pool), the IEEE OUI registry (loaded in the thread
 * pool at start), EDNS MAC (65001) and Client Subnet options from devices.trusted_forwarders,
 * and behaviour: a query for a devices.signatures name attributes its vendor to the device.
 *
 * The loop owns an immutable snapshot of the source tables, swapped whole when a refresh
 * finishes (a file that fails to parse keeps its last good table), and the device table (keyed
 * by MAC when known, else by client address). Lookups on the query path are hash probes; the
 * table is saved to SQLite (state_dir/devices.db, devices_store.c) from the thread pool every
 * DEVICES_SAVE_MS when something changed, and at close.
 *
 * The pure part (devices_fill, devices_identity) is shared with `veto explain`.
 */
#ifndef VETO_DEVICES_H
#define VETO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"
#include "names.h"
#include "leases.h"
#include "mac.h"
#include "neigh.h"
#include "oui.h"
#include "identity.h"
#include "policy.h"

#define DEVICES_KEY_MAX	     56
#define DEVICES_EVIDENCE_MAX 128
#define DEVICES_MAX_IPS	     4
#define DEVICES_MAX_OBS	     4
#define DEVICES_MAX	     65536	/* devices remembered; beyond, queries are not recorded */
#define DEVICES_SAVE_MS	     5000
#define DEVICES_EVENTS_MAX   4096	/* events waiting to be saved; beyond, new ones are dropped */
#define DEVICES_DEBOUNCE_MS  200
#define DEVICES_DB_FILE	     "devices.db"

struct devices_ip {
	uint8_t family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

/* A vendor observed from the device's queries. */
struct devices_obs {
	char vendor[IDENTITY_VENDOR_MAX];
	uint32_t count;
	int64_t first, last;		/* Unix time */
	char evidence[DEVICES_EVIDENCE_MAX]; /* the last name queried */
};

/* One device. Strings are NUL-terminated, "" = unknown. */
struct devices_record {
	char key[DEVICES_KEY_MAX];	/* "mac:aa:bb:cc:dd:ee:ff" or "ip:192.0.2.7" */
	bool has_mac;
	struct mac mac;
	bool randomised;
	struct devices_ip ips[DEVICES_MAX_IPS]; /* most recent first */
	uint8_t nips;
	char hostname[IDENTITY_NAME_MAX];
	char client_id[IDENTITY_NAME_MAX];
	char vendor_class[IDENTITY_NAME_MAX];
	char inventory[IDENTITY_NAME_MAX];
	char manufacturer[IDENTITY_NAME_MAX];	/* OUI organisation */
	char oui_vendor[IDENTITY_VENDOR_MAX];	/* its normalised vendor ("Xiaomi"), or "" */
	char vendor[IDENTITY_VENDOR_MAX];
	uint8_t vendor_source;			/* enum identity_source */
	struct devices_obs obs[DEVICES_MAX_OBS];
	uint8_t nobs;
	char group[IDENTITY_NAME_MAX];		/* of its last query */
	int64_t first_seen, last_seen;
	int32_t inv;				/* index in devices.inventory, -1 (not saved) */
};

/* A vendor attribution that moved (or confirmed) a device's group. */
struct devices_event {
	int64_t ts;
	char key[DEVICES_KEY_MAX];
	char device[IDENTITY_NAME_MAX];
	char old_group[IDENTITY_NAME_MAX];
	char new_group[IDENTITY_NAME_MAX];
	char vendor[IDENTITY_VENDOR_MAX];
	char evidence[DEVICES_EVIDENCE_MAX];
};

/* What one query learnt, copied into the query for its log record. */
struct devices_ident {
	bool has_mac;
	struct mac mac;
	char device[IDENTITY_NAME_MAX];	/* inventory name, else hostname */
	char vendor[IDENTITY_VENDOR_MAX];
	uint8_t vendor_source;
};

struct devices_kmap;

/* The source tables, immutable once built. */
struct devices_sources {
	struct leases **leases;		/* one per devices.leases entry, NULL = none yet */
	size_t nleases;
	struct neigh *arp;
	struct oui *oui;
	struct devices_kmap *inv_mac;	/* inventory by MAC and by IP (indexes) */
	struct devices_kmap *inv_ip;
	struct devices_kmap *neigh6;	/* IPv6 neighbours (netlink): address -> neigh6_macs[i] */
	struct mac *neigh6_macs;
	int arp_rc, neigh6_rc;		/* the last read of each: 0 or -errno (reported on change) */
};

void devices_sources_free(struct devices_sources **s);	/* NULL-safe */

/*
 * Loads every source of cfg synchronously (for `veto explain`): a source that cannot be read is
 * reported to diag (FILE:LINE: message, an error) and skipped; other problems are warnings and
 * notes. 0 or -ENOMEM.
 */
int devices_sources_load(const struct config *cfg, struct diag *diag,
			 struct devices_sources **out);

/*
 * Fills rec for a client address sa (AF_INET/AF_INET6) and an optional MAC (from EDNS or the
 * command line), from cfg's inventory and the sources (may be NULL): MAC (hint > inventory ip >
 * leases > ARP), lease hostname, client-id and vendor class, inventory name, OUI manufacturer,
 * then the vendor (inventory > oui > signature (rec->obs, kept) > hostname). The key is set
 * when rec->key is empty. Pure; O(inventory + lease files).
 */
void devices_fill(const struct config *cfg, const struct devices_sources *src,
		  const struct sockaddr *sa, const struct mac *hint, struct devices_record *rec);

/* Recomputes rec->vendor and vendor_source from what rec holds. */
void devices_resolve_vendor(const struct config *cfg, struct devices_record *rec);

/* The policy identity of rec (strings point into rec and cfg) for client address sa. */
void devices_identity(const struct config *cfg, const struct devices_record *rec,
		      const struct sockaddr *sa, struct policy_identity *id);

/* "aa:bb..." or the IP as text into buf (DEVICES_KEY_MAX). */
void devices_ip_text(const struct devices_ip *ip, char *buf, size_t size);

/* ---- the daemon's device table ---- */

struct devices;

/*
 * Creates the device table for policy's configuration (takes a reference): loads the persisted
 * state (state_dir/devices.db; created when missing, a corrupt file renamed aside), starts the
 * source refresh in the thread pool, the lease watchers and the timers. 0, -ENOMEM or a libuv
 * error; problems with files are logged, never fatal.
 */
int devices_new(uv_loop_t *loop, struct policy *policy, struct devices **out);

/* Device events (first sight, vendor attribution, group change) are reported to cb(arg, ev) on
 * the loop thread, ev valid during the call; NULL stops that. The server sends them to the
 * query store. */
typedef void (*devices_event_cb)(void *arg, const struct identity_event *ev);
void devices_set_event_cb(struct devices *d, devices_event_cb cb, void *arg);

/* Reload: new inventory, sources and settings from policy (a new reference is taken). */
void devices_reconfigure(struct devices *d, struct policy *policy);

/*
 * The query path: identifies the client (EDNS MAC and ECS only from trusted forwarders),
 * records the device, picks the group with policy_client_group_ex(), then checks the query
 * name against the signatures: a match is recorded, and when it changes the device's vendor
 * the device moves to its new group from its next query on (event logged and persisted).
 * Returns the group for this query and fills ident.
 */
struct devices_hints {
	bool has_mac;			/* EDNS MAC option (65001) */
	uint8_t mac[6];
	bool has_ecs;			/* EDNS Client Subnet */
	uint8_t ecs_family;		/* AF_INET or AF_INET6 */
	uint8_t ecs_prefix;
	uint8_t ecs_addr[16];
	const struct names_name *qname;	/* the question's name, NULL = none */
};
int devices_query(struct devices *d, const struct policy *pol, const struct sockaddr *client,
		  const struct devices_hints *dq, struct devices_ident *ident);

/* Stops the timers and watchers, waits for the thread pool jobs, saves the table, then calls
 * cb(arg) from the loop. */
void devices_close(struct devices *d, void (*cb)(void *arg), void *arg);
void devices_free(struct devices **d);	/* after the close callback; NULL-safe */

/* Number of devices in the table (tests). */
size_t devices_count(const struct devices *d);
/* The record with that key, or NULL (tests, valid until the next query). */
const struct devices_record *devices_find(const struct devices *d, const char *key);

/* ---- persistence (devices_store.c) ---- */

struct devices_store;

/*
 * Opens (readonly: for `veto devices` and `veto explain`, never creates) or creates path.
 * Read-write: WAL journal, tables created; a file that is not a database or fails its
 * integrity check is renamed to PATH.corrupt-UNIXTIME with a warning and a new one created.
 * Returns 0, 1 (read-write: opened after setting a corrupt file aside, message in err),
 * -ENOENT (readonly and missing) or -EIO (message in err, size bytes).
 */
int devices_store_open(const char *path, bool readonly, char *err, size_t size,
		       struct devices_store **out);
void devices_store_close(struct devices_store **st);

/* Saves records (upsert) and appends events, in one transaction. 0 or -EIO. */
int devices_store_save(struct devices_store *st, const struct devices_record *recs, size_t n,
		       const struct devices_event *evs, size_t nev);

typedef int (*devices_store_record_cb)(void *arg, const struct devices_record *rec);
typedef int (*devices_store_event_cb)(void *arg, const struct devices_event *ev);
/* Calls cb for every saved device (ordered by last seen, newest first); stops at a non-zero
 * return and returns it. -EIO on a database error. */
int devices_store_load(struct devices_store *st, devices_store_record_cb cb, void *arg);
/* The device with that key into *out: 0, -ENOENT or -EIO. */
int devices_store_get(struct devices_store *st, const char *key, struct devices_record *out);
/* Events, oldest first. */
int devices_store_events(struct devices_store *st, devices_store_event_cb cb, void *arg);

/* state_dir/devices.db into buf; -ENAMETOOLONG when it does not fit. */
int devices_db_path(const struct config *cfg, char *buf, size_t size);

#endif
