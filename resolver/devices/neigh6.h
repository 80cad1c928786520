/*
 * neigh6: the kernel's IPv6 neighbour table from an RTM_GETNEIGH dump over NETLINK_ROUTE.
 * Pure: this parses the datagrams a dump delivers; resolver/neigh6_dump.c owns the socket.
 *
 * A dump is a series of datagrams, each holding netlink messages (struct nlmsghdr, 4-octet
 * aligned), and ends with an NLMSG_DONE message. Kept: RTM_NEWNEIGH messages with an ndmsg of
 * family AF_INET6 in a usable state (reachable, stale, delay, probe or permanent), an NDA_DST
 * attribute of 16 octets and an NDA_LLADDR of 6 octets that is not 00:00:00:00:00:00. Skipped
 * silently: other message types and sequence numbers, other families and states (incomplete,
 * failed, noarp), missing or odd-sized attributes. A message whose header or length does not
 * fit in the datagram ends the datagram (nothing past the buffer is read); an NLMSG_ERROR
 * message fails the dump.
 *
 * The table is a plain array in dump order: an address known on several interfaces appears
 * once per interface (the caller decides which wins; devices.c keeps the last one).
 */
#ifndef VETO_NEIGH6_H
#define VETO_NEIGH6_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mac.h"

struct neigh6_entry {
	uint8_t addr[16]; /* IPv6, network order */
	struct mac mac;
};

struct neigh6 {
	struct neigh6_entry *v;
	size_t n, cap;
	size_t ignored;   /* neighbour messages not kept: family, state, attributes, zero MAC */
	size_t malformed; /* messages cut short or with an impossible length */
};

int neigh6_new(struct neigh6 **out); /* 0 or -ENOMEM */
void neigh6_free(struct neigh6 **t); /* NULL-safe, sets *t = NULL */

/*
 * Parses one datagram buf[0..len) of the dump (any alignment) and appends the usable entries to
 * t; messages whose nlmsg_seq is not seq are skipped. *done is set to true when NLMSG_DONE is
 * met (the rest of the datagram is ignored), else to false (more datagrams follow). Returns 0,
 * -ENOMEM, or for an NLMSG_ERROR message the kernel's -errno (-EIO when it carries none); on
 * an error t keeps what it had appended and *done is not written.
 */
int neigh6_parse(struct neigh6 *t, const void *buf, size_t len, uint32_t seq, bool *done);

#endif
