/*
 * mac: 48-bit Ethernet (EUI-48) addresses and nibble prefixes of them.
 *
 * Accepted forms, case-insensitive hexadecimal:
 *     aa:bb:cc:dd:ee:ff     aa-bb-cc-dd-ee-ff     (one or two digits per octet)
 *     aabb.ccdd.eeff        (Cisco, four digits per group)
 *     aabbccddeeff          (twelve digits)
 * The canonical form written by mac_format is "aa:bb:cc:dd:ee:ff", lowercase.
 *
 * A prefix covers the first `bits` bits (4..48, a multiple of 4 unless written with "/N"):
 *     aa:bb:cc              24 bits (an MA-L block)
 *     aa:bb:cc:d            28 bits (an MA-M block: the last group is a single nibble)
 *     aa:bb:cc:dd:e         36 bits (an MA-S block)
 *     aabbccd, 70B3D5F2F    bare nibbles, as the IEEE registries write assignments
 *     aa:bb:cc:dd:ee:ff     48 bits (one address)
 * In the colon/hyphen forms every group but the last has two digits; a single-digit last group
 * is a nibble, so "aa:bb:cc:dd:ee:f" is a 44-bit prefix. Anything else that mac_parse reads
 * ("0:1:2:3:4:5", "aabb.ccdd.eeff") is a 48-bit prefix.
 *     aa:bb:cc:dd:ee:ff/N   any 1 <= N <= 48 (bits past N are ignored)
 *
 * Everything here is a fixed-size value: no allocation, thread-safe.
 */
#ifndef VETO_MAC_H
#define VETO_MAC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAC_LEN	    6
#define MAC_STRLEN  18	/* "aa:bb:cc:dd:ee:ff" and the NUL */
#define MAC_PSTRLEN 21	/* longest mac_prefix_format output ("aa:bb:cc:dd:ee:f/45") + NUL */

struct mac {
	uint8_t b[MAC_LEN];
};

struct mac_prefix {
	struct mac mac;		/* bits past `bits` are zero */
	unsigned bits;		/* 1..48 */
};

/* Parses text[0..len) (need not be NUL-terminated) in any of the forms above.
 * Returns 0 or -EINVAL; *out is written only on success. */
int mac_parse(const char *text, size_t len, struct mac *out);

/* The value of the hexadecimal digit c (either case), or -1 when c is not one. */
int mac_hexval(char c);

/* Writes "aa:bb:cc:dd:ee:ff" and a NUL into buf (MAC_STRLEN octets). Returns buf. */
char *mac_format(const struct mac *m, char *buf);

/* The locally-administered bit (0x02 of the first octet): the address was not assigned by the
 * IEEE, in practice a randomised ("private") MAC; it has no OUI. */
bool mac_is_randomised(const struct mac *m);
/* The group bit (0x01 of the first octet): a multicast or broadcast address, never a device. */
bool mac_is_multicast(const struct mac *m);
/* 00:00:00:00:00:00, written by the kernel and DHCP servers for "no address". */
bool mac_is_zero(const struct mac *m);

bool mac_equal(const struct mac *a, const struct mac *b);
/* The address as a 48-bit integer, first octet most significant. */
uint64_t mac_to_u64(const struct mac *m);
void mac_from_u64(uint64_t v, struct mac *out);

/* Parses a prefix (see above). Returns 0 or -EINVAL; *out is written only on success. */
int mac_prefix_parse(const char *text, size_t len, struct mac_prefix *out);
/* True when m lies inside p. */
bool mac_prefix_match(const struct mac_prefix *p, const struct mac *m);
/* Writes the shortest form that mac_prefix_parse reads back: colon groups, the last one a single
 * nibble for odd nibble counts, "/N" when bits is not a multiple of 4. Returns buf
 * (MAC_PSTRLEN octets). */
char *mac_prefix_format(const struct mac_prefix *p, char *buf);

#endif
