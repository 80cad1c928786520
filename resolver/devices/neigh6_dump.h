/*
 * neigh6_dump: reads the kernel's IPv6 neighbour table with an RTM_GETNEIGH dump over a
 * NETLINK_ROUTE socket, parsed by policy/neigh6.c. Blocking (each receive waits at most
 * NEIGH6_DUMP_TIMEOUT_MS): call it from the thread pool, never from the loop.
 */
#ifndef VETO_NEIGH6_DUMP_H
#define VETO_NEIGH6_DUMP_H

#include "neigh6.h"

#define NEIGH6_DUMP_TIMEOUT_MS 1000

/*
 * The usable IPv6 neighbours (see neigh6.h) into a new table *out (caller frees with
 * neigh6_free; empty when there are none). Returns 0, -ENOMEM, the socket's -errno (-EPERM,
 * -EAFNOSUPPORT, ... where netlink is not allowed; -EAGAIN on a timeout), or the kernel's error;
 * *out is written only on success.
 */
int neigh6_dump_read(struct neigh6 **out);

#endif
