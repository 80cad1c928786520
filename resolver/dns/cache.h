/*
 * cache: answers keyed by (name, type, class, DO bit, CD bit).
 *
 * CD is part of the key: an answer fetched with CD=1 (checking disabled) may hold data that a
 * validating upstream refuses to CD=0 clients, so it is never served to them. A CD=1 lookup
 * that misses falls back to the CD=0 entry (validated data serves a client that checks itself).
 *
 * Positive and negative (RFC 2308) answers, TTL clamped to [min_ttl, max_ttl] at insertion, and
 * SERVFAIL never stored. Bounded by a number of entries. Eviction takes an expired entry first
 * (the one that expired longest ago: a min-heap on expiry time), and only when none has expired
 * a live one, keeping hot names (a hit marks an entry, eviction passes over marked entries once:
 * CLOCK / second chance).
 *
 * Serve-stale (RFC 8767, cache_set_stale): an entry past its TTL is not served by cache_lookup
 * but kept, within the entry limit, until TTL + the stale window, for cache_lookup_stale (the
 * upstream failed). Prefetch: a hit on a popular entry in the last tenth of its lifetime asks
 * for one refresh (cache_prefetch_due).
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

/* RFC 8767: the TTL of the records of a stale answer (the RFC recommends 30 s). */
#define CACHE_STALE_TTL		30
/* Prefetch: an entry qualifies when its stored TTL is at least CACHE_PREFETCH_MIN_TTL seconds,
 * it has had at least CACHE_PREFETCH_HITS hits since it was stored, and a hit falls in the last
 * 1/CACHE_PREFETCH_DIV of its lifetime. */
#define CACHE_PREFETCH_MIN_TTL	10
#define CACHE_PREFETCH_HITS	2
#define CACHE_PREFETCH_DIV	10

struct cache_stats {
	uint64_t hits, misses, inserts, evictions;
	uint64_t expired;		/* entries dropped or reused past their TTL (and stale window) */
	uint64_t stale_served;		/* answers served past their TTL (cache_lookup_stale) */
	uint64_t prefetches;		/* refreshes started (cache_prefetch_started) */
	size_t entries;
	size_t bytes;			/* memory held, including the table */
};

/* entries == 0 creates a cache that stores nothing. 0 or -ENOMEM; *out only on success. */
int cache_new(uint32_t entries, uint32_t min_ttl, uint32_t max_ttl, struct cache **out);
void cache_free(struct cache **c);

/* serve_stale_s: the serve-stale window in seconds (0 = off, the default), how long past its
 * TTL an entry is kept for cache_lookup_stale; prefetch: whether hits ask for refreshes (off by
 * default). Takes effect for every entry at once (reload). */
void cache_configure(struct cache *c, uint32_t serve_stale_s, bool prefetch);

/*
 * Finds an unexpired answer. Returns a pointer owned by the cache, valid until the next call on
 * c (cache_lookup, cache_insert, cache_clear, cache_free): serve it with dnsmsg_write_answer
 * right away. *age_s is the seconds since it was stored. NULL on a miss (an expired entry is
 * dropped, unless it is within the stale window: then it is kept for cache_lookup_stale). bits
 * are CACHE_KEY_* (with CACHE_KEY_CD, a miss falls back to the entry without it). now_ms is a
 * monotonic clock (uv_now). Record TTLs in the stored answer are already clamped to [min_ttl,
 * the entry's lifetime].
 */
const struct dnsmsg_answer *cache_lookup(struct cache *c, const struct names_name *qname,
					 uint16_t qtype, uint16_t qclass, uint8_t bits,
					 uint64_t now_ms, uint32_t *age_s);

/*
 * Right after a cache_lookup hit (no other call on c in between): true when prefetch is on and
 * the entry found is due for a refresh (see CACHE_PREFETCH_*) and none was started since it was
 * stored. A hit through the CD fallback is never due. The caller then starts the refresh (the
 * same question to the upstream; cache_insert replaces the entry) and, once started, calls
 * cache_prefetch_started: the entry is marked (due at most once per stored answer) and counted
 * in prefetches.
 */
bool cache_prefetch_due(const struct cache *c);
void cache_prefetch_started(struct cache *c);

/*
 * The answer kept for the key when the upstream failed: NULL when there is none or it is past
 * its TTL + the stale window (or serve-stale is off). A fresh entry (stored meanwhile) is
 * returned as cache_lookup would, with *stale false and *age_s its age; an expired one with
 * *stale true, *age_s 0 and every record TTL set to CACHE_STALE_TTL (counted in stale_served).
 * Same lifetime of the result as cache_lookup.
 */
const struct dnsmsg_answer *cache_lookup_stale(struct cache *c, const struct names_name *qname,
					       uint16_t qtype, uint16_t qclass, uint8_t bits,
					       uint64_t now_ms, uint32_t *age_s, bool *stale);

/* Right after a cache_lookup miss (no other call on c in between): true when an expired answer
 * is kept for the key (cache_lookup_stale would serve it now). */
bool cache_missed_stale(const struct cache *c);

/* Whether cache_lookup_stale would return an answer for the key now (fresh, or expired within
 * the stale window). Changes nothing, counts nothing. */
bool cache_stale_kept(const struct cache *c, const struct names_name *qname, uint16_t qtype,
		      uint16_t qclass, uint8_t bits, uint64_t now_ms);

/* Stores a copy of a when a->cacheable (replacing the entry for the key, if any: its hit count
 * and prefetch mark start again). 0, or -ENOMEM / -E2BIG (nothing stored, not fatal). */
int cache_insert(struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
		 uint8_t bits, const struct dnsmsg_answer *a, uint64_t now_ms);

/* The key bits of a client query (its DO and CD bits). */
uint8_t cache_key_bits(const struct dnsmsg_query *q);

void cache_clear(struct cache *c);
void cache_get_stats(const struct cache *c, struct cache_stats *st);

#endif
