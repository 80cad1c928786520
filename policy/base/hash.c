/*
 * hash: seeded FNV-1a with a final mix, and the random seed.
 */
#include "hash.h"

#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/random.h>

#define FNV_OFFSET UINT64_C(0xcbf29ce484222325)
#define FNV_PRIME  UINT64_C(0x100000001b3)

uint64_t
hash_seed(void)
{
	uint64_t seed;
	struct timespec ts;

	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) == (ssize_t)sizeof(seed))
		return seed;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 30) ^ ((uint64_t)getpid() << 48);
	seed ^= (uint64_t)(uintptr_t)&seed;
	return hash_mix(seed);
}

uint64_t
hash_bytes(const void *p, size_t n, uint64_t seed)
{
	const unsigned char *b = p;
	uint64_t h = FNV_OFFSET ^ seed;

	for (size_t i = 0; i < n; i++) {
		h ^= b[i];
		h *= FNV_PRIME;
	}
	return hash_mix(h);
}

uint64_t
hash_str(const char *s, uint64_t seed)
{
	uint64_t h = FNV_OFFSET ^ seed;

	for (; s != NULL && *s != '\0'; s++) {
		h ^= (unsigned char)*s;
		h *= FNV_PRIME;
	}
	return hash_mix(h);
}
