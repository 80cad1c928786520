/*
 * hash: the seeded 64-bit hash of every table keyed by something a client or a file chooses
 * (device keys, lease addresses, report pairs), and the one random seed source.
 *
 * hash_bytes() is FNV-1a over the octets, started from the seed and finished with a 64-bit
 * avalanche mix, so the low bits that index a power-of-two table depend on every input bit.
 * Name tables use names_hash() (policy/names.c), which hashes label by label.
 */
#ifndef VETO_HASH_H
#define VETO_HASH_H

#include <stddef.h>
#include <stdint.h>

/* 64 random bits from getrandom(); should the kernel refuse (no entropy yet), a mix of the
 * clock, the process id and an address: unpredictable enough for a table seed, never an ID. */
uint64_t hash_seed(void);

/* The avalanche step (murmur3's fmix64). */
static inline uint64_t
hash_mix(uint64_t h)
{
	h ^= h >> 33;
	h *= UINT64_C(0xff51afd7ed558ccd);
	h ^= h >> 33;
	h *= UINT64_C(0xc4ceb9fe1a85ec53);
	h ^= h >> 33;
	return h;
}

/* Seeded hash of n octets at p (p may be NULL when n is 0). */
uint64_t hash_bytes(const void *p, size_t n, uint64_t seed);

/* Seeded hash of a NUL-terminated string; NULL hashes like "". */
uint64_t hash_str(const char *s, uint64_t seed);

#endif
