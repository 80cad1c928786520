/*
 * cache: answers keyed by (name, type, class, DO bit).
 *
 * Positive and negative (RFC 2308) answers, TTL clamped to [min_ttl, max_ttl] at insertion, and
 * SERVFAIL never stored. Bounded by a number of entries; eviction keeps hot names (a hit marks
 * an entry, eviction passes over marked entries once: CLOCK / second chance).
 * Lookups allocate nothing. Single-threaded: used only from the event loop.
 */
#ifndef VETO_CACHE_H
#define VETO_CACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsmsg.h"
#include "names.h"

struct cache;

struct cache_stats {
	uint64_t hits, misses, inserts, evictions, expired;
	size_t entries;
	size_t bytes;			/* memory held, including the table */
};

/* entries == 0 creates a cache that stores nothing. 0 or -ENOMEM; *out only on success. */
int cache_new(uint32_t entries, uint32_t min_ttl, uint32_t max_ttl, struct cache **out);
void cache_free(struct cache **c);

/*
 * Finds an unexpired answer. Returns a pointer owned by the cache, valid until the next call on
 * c (cache_lookup, cache_insert, cache_clear, cache_free): serve it with dnsmsg_write_answer
 * right away. *age_s is the seconds since it was stored. NULL on a miss (an expired entry is
 * dropped). now_ms is a monotonic clock (uv_now). Record TTLs in the stored answer are already
 * clamped to [min_ttl, the entry's lifetime].
 */
const struct dnsmsg_answer *cache_lookup(struct cache *c, const struct names_name *qname,
					 uint16_t qtype, uint16_t qclass, bool do_bit,
					 uint64_t now_ms, uint32_t *age_s);

/* Stores a copy of a when a->cacheable. 0, or -ENOMEM / -E2BIG (nothing stored, not fatal). */
int cache_insert(struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
		 bool do_bit, const struct dnsmsg_answer *a, uint64_t now_ms);

void cache_clear(struct cache *c);
void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif
