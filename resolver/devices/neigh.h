/*
 * neigh: the kernel's IPv4 neighbour (ARP) table as /proc/net/arp prints it:
 *
 *     IP address       HW type     Flags       HW address            Mask     Device
 *     192.168.1.20     0x1         0x2         a4:50:46:12:34:56     *        wlan0
 *
 * Only complete Ethernet entries are kept: HW type 0x1, the ATF_COM flag (0x2) set and a
 * non-zero address. Incomplete entries (flags 0x0, address 00:00:00:00:00:00) and other hardware
 * types are skipped silently, as normal content. A line that does not have the six columns or
 * whose address, flags or MAC do not parse is skipped with a note "FILE:LINE: skipped: reason"
 * (the first NEIGH_MAX_NOTES of them); a file without the header line is an error.
 *
 * The table is built once per read (one allocation for the entries, one for the index) and is
 * immutable: lookups by address are O(1) hash probes and thread-safe. IPv6 neighbours come from
 * a netlink dump (neigh6.h), not from here.
 */
#ifndef VETO_NEIGH_H
#define VETO_NEIGH_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "mac.h"

#define NEIGH_PROC_ARP	"/proc/net/arp"
#define NEIGH_MAX_NOTES 5
#define NEIGH_IFNAMSIZ	16

struct neigh_entry {
	uint8_t addr[4];		/* IPv4, network order */
	struct mac mac;
	uint32_t flags;			/* ATF_* as printed */
	char dev[NEIGH_IFNAMSIZ];	/* interface name, NUL-terminated */
};

struct neigh {
	struct neigh_entry *v;
	size_t n;
	size_t lines;		/* entry lines read (header excluded) */
	size_t incomplete;	/* skipped: incomplete, zero MAC or not Ethernet */
	size_t skipped;		/* skipped: malformed (noted in diag) */
	/* private: the address index */
	uint32_t *slots;
	size_t nslots;
};

/*
 * Parses buf[0..len) (need not be NUL-terminated); file names the source in notes and errors.
 * diag may be NULL. Returns 0 with a new table in *out, -EINVAL (no header; an error in diag)
 * or -ENOMEM; *out is written only on success.
 */
int neigh_parse_buf(const char *buf, size_t len, const char *file, struct diag *diag,
		    struct neigh **out);

/* Reads path (NULL = NEIGH_PROC_ARP) to its end and parses it. Returns as neigh_parse_buf, or
 * -errno when the file cannot be read (an error in diag). */
int neigh_read_file(const char *path, struct diag *diag, struct neigh **out);

void neigh_free(struct neigh **t);	/* NULL-safe, sets *t = NULL */

/* The entry for the IPv4 address addr (4 octets, network order), or NULL. When the address is
 * known on several interfaces, the first line of the file wins. */
const struct neigh_entry *neigh_find(const struct neigh *t, const uint8_t *addr);

#endif
