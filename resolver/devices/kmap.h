/*
 * kmap: the device folder's hash map, from a 17-octet key (kind, then a MAC or an address) to a
 * 32-bit index: the inventory by MAC and by address, the IPv6 neighbours, the device table.
 * Open addressing, linear probing, seeded (hash.h) because clients choose their addresses.
 * Not thread-safe; a map built in the thread pool is handed to the loop whole.
 */
#ifndef VETO_KMAP_H
#define VETO_KMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mac.h"

struct dkey {
	uint8_t b[17];
};

struct kmap;

/* A map sized for about expected keys. 0 or -ENOMEM. */
int kmap_new(size_t expected, struct kmap **out);
void kmap_free(struct kmap **m);	/* NULL-safe, sets *m = NULL */
/* The value of k, or -1 (also for m NULL). */
int kmap_get(const struct kmap *m, const struct dkey *k);
/* Inserts or replaces. 0 or -ENOMEM (m unchanged). */
int kmap_put(struct kmap *m, const struct dkey *k, uint32_t v);

/* Removes k (backward-shift deletion: no tombstones). 0 or -ENOENT. */
int kmap_del(struct kmap *m, const struct dkey *k);

struct dkey kmap_mac_key(const struct mac *m);
/* family AF_INET (4 octets at addr) or AF_INET6 (16). */
struct dkey kmap_ip_key(int family, const uint8_t *addr);

#endif
