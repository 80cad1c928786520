/*
 * leases: DHCP server lease files -> a table of current leases (IP -> MAC, hostname, client-id or
 * DUID, vendor class, expiry), for device identity.
 *
 * Formats (enum leases_format):
 *   dnsmasq  dnsmasq.leases, rewritten in place by dnsmasq. One IPv4 lease per line,
 *              "EXPIRY MAC IP HOSTNAME CLIENT-ID"   ("*" = none; a MAC written "TT-..." is a
 *                                                    non-Ethernet hardware type: no MAC)
 *            then, when DHCPv6 is on, a "duid SERVER-DUID" line and one IPv6 lease per line,
 *              "EXPIRY IAID IP HOSTNAME CLIENT-DUID" (IAID "T..." for temporary addresses).
 *            EXPIRY is a Unix time, 0 = infinite.
 *   dhcpd    ISC dhcpd's dhcpd.leases, appended to and periodically rewritten. Blocks
 *              lease IP { starts ..; ends W YYYY/MM/DD HH:MM:SS; binding state active;
 *                hardware ethernet MAC; uid "..."; client-hostname "...";
 *                set vendor-class-identifier = "..."; }
 *            ("ends never" = infinite, "ends epoch N" with db-time-format local), and for DHCPv6
 *              ia-na "IAID+DUID" { iaaddr IP { binding state active; ends ...; } }
 *            (ia-ta likewise; ia-pd prefixes are not device addresses and are skipped). Other
 *            top-level statements and blocks (server-duid, failover, host, class) are skipped.
 *   kea      Kea memfile CSV, appended to and compacted by kea-lfc. The header names the
 *            columns; v4 (kea-leases4.csv) has address,hwaddr,client_id,valid_lifetime,expire,
 *            ...,hostname,state,...; v6 (kea-leases6.csv, recognised by its "duid" column) has
 *            address,duid,valid_lifetime,expire,...,lease_type,...,hostname,hwaddr,state,....
 *            Commas inside values are escaped "&#x2c". valid_lifetime 4294967295 = infinite;
 *            state 0 = active; lease_type 2 (prefix delegation) is skipped.
 *
 * Semantics: a later record for the same address replaces an earlier one (dhcpd appends a new
 * block at every change; Kea appends a row), so a lease released or expired in a later record
 * removes the address. Then a lease is kept when its state is active (dhcpd: "binding state
 * active" or no binding state; Kea: state 0) and it has not expired: expiry == 0 or expiry >= now.
 * Client ids and DUIDs are given as lowercase colon-separated hex ("01:00:1a:2b:3c:4d:5e"),
 * whatever the file's notation.
 *
 * Errors. These files are written by programs, so anything that breaks the format means the file
 * is half-written or corrupt: the parser reports "FILE:LINE: message" in diag, returns -EINVAL
 * and no table (the caller keeps its previous one). Fatal: a final line without its newline
 * (dnsmasq, kea) or a final block without its '}' (dhcpd), a missing or unknown header (kea), a
 * wrong number of fields, an address, number or date that does not parse, an unterminated string,
 * unbalanced braces, a NUL byte. Not fatal (the record is kept, a note is added for the first
 * LEASES_MAX_NOTES of them): a hardware address that is not a 6-octet Ethernet address (the
 * record keeps no MAC), an unknown "hardware" type. Expired, inactive and superseded records
 * and DHCPv6 prefix delegations are counted in the stats, silently.
 *
 * Tables are built in one go and immutable: lookups by address are O(1) and thread-safe.
 */
#ifndef VETO_LEASES_H
#define VETO_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"
#include "mac.h"

#define LEASES_MAX_NOTES 5

struct leases_entry {
	int family;			/* AF_INET or AF_INET6 */
	uint8_t addr[16];		/* 4 or 16 octets used, network order */
	bool has_mac;
	struct mac mac;			/* valid when has_mac */
	const char *hostname;		/* NULL when none; strings are owned by the table */
	const char *client_id; /* DHCPv4 client-id or DHCPv6 DUID, lowercase hex; or NULL */
	const char *vendor_class;	/* option 60 as recorded (dhcpd only), or NULL */
	int64_t expiry;			/* Unix time, 0 = infinite */
	int line;			/* where the (last) record for this address starts */
};

struct leases_stats {
	size_t records;		/* lease records read (v4 and v6) */
	size_t superseded;	/* replaced by a later record for the same address */
	size_t expired;		/* active but expiry < now */
	size_t inactive;	/* free, released, abandoned, declined, ...; prefix delegations */
	size_t notes;		/* records with a non-fatal problem */
};

struct leases {
	struct leases_entry *v;	/* in the order the addresses first appear in the file */
	size_t n;
	struct leases_stats st;
	/* private */
	char *pool;
	uint32_t *slots;
	size_t nslots;
};

/* "dnsmasq", "dhcpd" (also "isc"), "kea". Returns 0 or -EINVAL. */
int leases_format_from_name(const char *name, enum leases_format *out);
const char *leases_format_name(enum leases_format f);

/*
 * Parses buf[0..len) (need not be NUL-terminated) in format fmt; file names the source in
 * messages; now is the current Unix time. diag may be NULL. Returns 0 with a new table in *out,
 * -EINVAL (the file is corrupt or half-written, an error in diag) or -ENOMEM; *out is written
 * only on success.
 */
int leases_parse_buf(enum leases_format fmt, const char *buf, size_t len, const char *file,
		     int64_t now, struct diag *diag, struct leases **out);

/* Reads path and parses it. Returns as leases_parse_buf, or -errno when the file cannot be read
 * (an error in diag). */
int leases_read_file(enum leases_format fmt, const char *path, int64_t now, struct diag *diag,
		     struct leases **out);

void leases_free(struct leases **l);	/* NULL-safe, sets *l = NULL */

/* The current lease of family/addr (4 or 16 octets), or NULL. */
const struct leases_entry *leases_find(const struct leases *l, int family, const uint8_t *addr);

#endif
