/*
 * clients: a set of IPv4 and IPv6 prefixes, each with a value (a group index, or 0 for
 * server.allow), mapping an address to the smallest value among the prefixes that contain it.
 *
 * One binary trie per family, built once; a lookup walks at most 32 or 128 bits and allocates
 * nothing. IPv4-mapped IPv6 addresses (::ffff:a.b.c.d), as clients and as prefixes of at least
 * 96 bits, are treated as IPv4. Read-only once built, so thread-safe.
 */
#ifndef VETO_CLIENTS_H
#define VETO_CLIENTS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct clients;

int clients_new(struct clients **out);	/* 0 or -ENOMEM */
void clients_free(struct clients **c);	/* NULL-safe, sets *c = NULL */

/* Adds family/addr/prefix (addr: 4 or 16 octets; host bits ignored) with value (>= 0).
 * Returns 0, -EINVAL (bad family or prefix) or -ENOMEM. */
int clients_add(struct clients *c, int family, const uint8_t *addr, unsigned prefix,
		int value);
/* Adds the catch-all prefixes 0.0.0.0/0 and ::/0 with value. */
int clients_add_all(struct clients *c, int value);

/* The smallest value among the prefixes containing the address, or -1. */
int clients_find(const struct clients *c, const struct sockaddr *sa);
int clients_find_addr(const struct clients *c, int family, const uint8_t *addr);

size_t clients_memory(const struct clients *c);

#endif
