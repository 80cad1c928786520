/*
 * cache: answers keyed by (name, type, class, DO bit, CD bit).
 *
 * CD is part of the key: an answer fetched with CD=1 (checking disabled) may hold data that a
 * validating upstream refuses to CD=0 clients, so it is never served to them. A CD=1 lookup
 * that misses falls back to the CD=0 entry (validated data serves a client that checks itself).
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

/* Key bits beside name, type and class. */
#define CACHE_KEY_DO 0x01	/* the client set DO */
#define CACHE_KEY_CD 0x02	/* the client set CD */

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
 * dropped). bits are CACHE_KEY_* (with CACHE_KEY_CD, a miss falls back to the entry without
 * it). now_ms is a monotonic clock (uv_now). Record TTLs in the stored answer are already
 * clamped to [min_ttl, the entry's lifetime].
 */
const struct dnsmsg_answer *cache_lookup(struct cache *c, const struct names_name *qname,
					 uint16_t qtype, uint16_t qclass, uint8_t bits,
					 uint64_t now_ms, uint32_t *age_s);

/* Stores a copy of a when a->cacheable. 0, or -ENOMEM / -E2BIG (nothing stored, not fatal). */
int cache_insert(struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
		 uint8_t bits, const struct dnsmsg_answer *a, uint64_t now_ms);

/* The key bits of a client query (its DO and CD bits). */
uint8_t cache_key_bits(const struct dnsmsg_query *q);

void cache_clear(struct cache *c);
void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif
