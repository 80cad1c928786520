/*
 * devices: the daemon's device table. Which device is behind each query, remembered and saved.
 *
 * Sources (devices: in the configuration): the inventory, DHCP lease files (re-read when they
 * change: uv_fs_event on their folder, debounced, parsed in the thread pool), the kernel's ARP
 * and IPv6 neighbour tables (re-read on a timer in the thread pool), the IEEE OUI registry
 * (loaded in the thread pool at start), EDNS MAC (65001) and Client Subnet options from
 * devices.trusted_forwarders, and behaviour: a query for a devices.signatures name attributes
 * its vendor to the device.
 *
 * The loop owns an immutable snapshot of the source tables (sources.h), swapped whole when a
 * refresh finishes (a file that fails to parse keeps its last good table; a reload keeps every
 * table whose source did not change), and the device table (keyed by MAC when known, else by
 * client address). The table only records: who a device is comes from identify.h, the group
 * and verdict from policy_decide(), the same functions `veto explain` calls.
 *
 * One query, on the loop: devices_identify() -> policy_decide() -> devices_record_query().
 *
 * Bounded: at most devices.max_devices records. When full, a sixteenth is forgotten: never an
 * inventory device; devices without an attribution before those with one; devices known only
 * by their address before those with a MAC; least recently seen first. A device known only by
 * its address is forgotten after devices.address_ttl_s without a query (the address may have
 * changed hands). Forgotten devices leave the saved state at the next save.
 * Lookups are hash probes. The table is saved to state_dir/devices.db (devices_store.h) from
 * the thread pool every DEVICES_SAVE_MS when something changed, and at close. Device events
 * (first sight, vendor attribution, group change) go to an event callback: the query store.
 * With store.postgresql the table is also shared with the other instances (devices_pg.h): the
 * same lookups, with what they learnt merged in between queries.
 */
#ifndef VETO_DEVICES_H
#define VETO_DEVICES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "identify.h"
#include "identity.h"
#include "names.h"
#include "policy.h"

#define DEVICES_SAVE_MS	    5000
#define DEVICES_DEBOUNCE_MS 200

/* What one query learnt, copied into the query for its log record. */
struct devices_ident {
	bool has_mac;
	struct mac mac;
	char device[IDENTITY_NAME_MAX];	/* inventory name, else hostname */
	char vendor[IDENTITY_VENDOR_MAX];
	uint8_t vendor_source;		/* enum identity_source */
};

/* What the query itself says about its sender (EDNS options), used only when it comes from a
 * trusted forwarder. */
struct devices_hints {
	bool has_mac;			/* EDNS MAC option (65001) */
	uint8_t mac[6];
	bool has_ecs;			/* EDNS Client Subnet, honoured for a host prefix only */
	uint8_t ecs_family;		/* AF_INET or AF_INET6 */
	uint8_t ecs_prefix;
	uint8_t ecs_addr[16];
};

struct devices;

/*
 * Creates the device table for policy's configuration (takes a reference): loads the persisted
 * state (created when missing, a corrupt file set aside), starts the source refresh in the
 * thread pool, the lease watchers and the timers. 0, -ENOMEM or a libuv error; problems with
 * files are logged, never fatal.
 */
int devices_new(uv_loop_t *loop, struct policy *policy, struct devices **out);

/* Device events are reported to cb(arg, ev) on the loop thread, ev valid during the call; NULL
 * stops that. The server sends them to the query store. */
typedef void (*devices_event_cb)(void *arg, const struct identity_event *ev);
void devices_set_event_cb(struct devices *d, devices_event_cb cb, void *arg);

/* Reload: new inventory, sources and settings from policy (a new reference is taken). Every
 * source table whose file and settings did not change is kept until its refresh lands. */
void devices_reconfigure(struct devices *d, struct policy *policy);

/*
 * The query path, first step: identifies the client of a query (EDNS MAC and ECS from trusted
 * forwarders only), finds or adds its record and fills id for policy_decide() (strings valid
 * until the next devices_ call) and ident. pol is the policy the query is decided with.
 */
void devices_identify(struct devices *d, const struct policy *pol, const struct sockaddr *client,
		      const struct devices_hints *h, struct policy_identity *id,
		      struct devices_ident *ident);

/*
 * The query path, second step, after policy_decide() gave group for qname (NULL: none): records
 * the group, reports a first sight, and checks qname against the signatures: a match is
 * recorded, and when it changes the device's vendor the device moves to its new group from its
 * next query on (event reported, logged and saved). Updates ident's vendor.
 */
void devices_record_query(struct devices *d, const struct policy *pol, int group,
			  const struct names_name *qname, struct devices_ident *ident);

/* Stops the timers and watchers, waits for the thread pool jobs, saves the table, then calls
 * cb(arg) from the loop. */
void devices_close(struct devices *d, void (*cb)(void *arg), void *arg);
void devices_free(struct devices **d);	/* after the close callback; NULL-safe */

/* Number of devices in the table (tests). */
size_t devices_count(const struct devices *d);
/* Record i of the table, 0 <= i < devices_count() (metrics; valid until the next query). */
const struct devices_record *devices_record_at(const struct devices *d, size_t i);
/* The record with that key, or NULL (tests, valid until the next query). */
const struct devices_record *devices_find(const struct devices *d, const char *key);

#endif
