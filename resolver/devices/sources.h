/*
 * sources: what the network says about the devices, as one immutable snapshot: the DHCP lease
 * tables (one per devices.dhcp_leases entry), the kernel's ARP and IPv6 neighbour tables, the
 * IEEE OUI registry, and the inventory indexed by MAC and by address.
 *
 * `veto explain` loads a whole snapshot at once (sources_load). The daemon builds its tables in
 * the thread pool and swaps them into the snapshot the loop reads (devices.c); a reload starts
 * from sources_carry(), which keeps every table whose source did not change, so a lease-known
 * device stays known across a SIGHUP.
 * The lookups are pure and allocate nothing; src may be NULL (nothing known) wherever it is
 * taken as const.
 */
#ifndef VETO_SOURCES_H
#define VETO_SOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"
#include "kmap.h"
#include "leases.h"
#include "mac.h"
#include "neigh.h"
#include "oui.h"

/* A client address; IPv4-mapped IPv6 addresses are stored as IPv4. */
struct devices_ip {
	uint8_t family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];
};

struct devices_sources {
	struct leases **leases;		/* one per devices.dhcp_leases entry, NULL = none yet */
	size_t nleases;
	struct neigh *arp;
	struct oui *oui;
	struct kmap *inv_mac;		/* inventory by MAC and by address (indexes) */
	struct kmap *inv_ip;
	struct kmap *neigh6;		/* IPv6 neighbours (netlink): address -> neigh6_macs[i] */
	struct mac *neigh6_macs;
	int arp_rc, neigh6_rc;		/* the last read of each: 0 or -errno (reported on change) */
};

void sources_free(struct devices_sources **s);	/* NULL-safe */

/*
 * Loads every source of cfg synchronously (for `veto explain`): a source that cannot be read is
 * reported to diag (FILE:LINE: message, an error) and skipped; other problems are warnings and
 * notes. 0 or -ENOMEM.
 */
int sources_load(const struct config *cfg, struct diag *diag, struct devices_sources **out);

/*
 * The snapshot a reload starts from (old may be NULL: the daemon's first one). The inventory
 * index is built now for cfg (its indexes are cfg's); every table whose source is unchanged is
 * moved over from old: a lease table of the same file and format, the ARP and IPv6 neighbour
 * tables while devices.arp stays on, the OUI registry while its folder is the same (*same_oui
 * says so; may be NULL). The rest stays empty until the next refresh. 0 or -ENOMEM (old
 * untouched).
 */
int sources_carry(const struct config *old_cfg, struct devices_sources *old,
		  const struct config *cfg, struct devices_sources **out, bool *same_oui);

/* The inventory indexes of cfg (for a refresh job). 0 or -ENOMEM. */
int sources_build_inventory(const struct config *cfg, struct kmap **by_mac, struct kmap **by_ip);

/* The kernel's IPv6 neighbours (neigh6_dump.c) as an index: address -> (*macs_out)[i]. Blocking
 * (thread pool). 0, or -errno (nothing written). */
int sources_read_neigh6(struct kmap **map_out, struct mac **macs_out);

/* The lease of an address (the first lease file that has it), or NULL. */
const struct leases_entry *sources_lease(const struct devices_sources *src,
					 const struct devices_ip *ip);
/* The inventory entry of an address or a MAC: hashed when src has the index, else a scan of
 * cfg. -1 when none. */
int sources_inv_by_ip(const struct config *cfg, const struct devices_sources *src,
		      const struct devices_ip *ip);
int sources_inv_by_mac(const struct config *cfg, const struct devices_sources *src,
		       const struct mac *m);
/* The MAC of the client at ip: hint > inventory address > leases > ARP > IPv6 neighbours.
 * false when none is known. */
bool sources_mac(const struct config *cfg, const struct devices_sources *src,
		 const struct devices_ip *ip, const struct mac *hint, struct mac *out);

#endif
