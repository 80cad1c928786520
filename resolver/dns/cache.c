/*
 * cache: a fixed table of `entries` slots, a chained hash index over them, a min-heap of the
 * used slots on expiry time (expired entries are reused first, longest expired first), CLOCK
 * eviction among live ones.
 *
 * Each used slot points to one allocation (made on insert, the miss path) holding the key
 * (canonical name wire + type + class + DO/CD bits), the TTL offsets and the answer bytes. A lookup
 * allocates nothing: it fills the cache's result struct to point into the stored entry.
 * Stored record TTLs are clamped to [min_ttl, lifetime] so a served TTL never outlives the entry.
 */
#include "cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dnsmsg_int.h"
#include "hash.h"

#define NIL	    UINT32_MAX
#define KEY_EXTRA   5	/* qtype, qclass, CACHE_KEY_* bits */

struct blob {
	size_t size;		/* bytes of this allocation */
	uint16_t keylen, len, nttl;
	uint8_t rcode;
	bool negative;
	uint32_t ttl;
	uint8_t data[];		/* key, then nttl 16-bit TTL offsets, then the answer wire */
};

struct slot {
	uint64_t hash;
	uint64_t stored_ms, expire_ms;
	uint64_t prefetch_ms;	/* a hit from then on may ask for a refresh; UINT64_MAX = never */
	uint32_t next;		/* next slot in the bucket chain, or in the free list */
	uint32_t hpos;		/* index in the heap */
	uint16_t hits;		/* since stored, saturating */
	bool used, referenced;
	struct blob *blob;
};

struct cache {
	uint32_t nslots, nbuckets;	/* nbuckets is a power of two */
	uint32_t min_ttl, max_ttl;
	uint64_t seed;
	struct slot *slots;
	uint32_t *buckets;
	uint32_t high;		/* slots [0, high) have been used at least once */
	uint32_t free_head;	/* freed slots below high */
	uint32_t hand;		/* CLOCK hand */
	uint32_t *heap;		/* used slots, a min-heap on expire_ms */
	uint32_t nheap;
	uint64_t stale_ms;	/* serve-stale window, 0 = off */
	bool prefetch;
	uint32_t last_hit;	/* the slot of the last cache_lookup hit (exact key), or NIL */
	bool missed_stale;	/* the last cache_lookup found an expired entry and kept it */
	struct cache_stats st;
	size_t table_bytes;
	struct dnsmsg_answer result;	/* what cache_lookup returns */
};

int
cache_new(uint32_t entries, uint32_t min_ttl, uint32_t max_ttl, struct cache **out)
{
	struct cache *c = calloc(1, sizeof(*c));
	int rc = -ENOMEM;

	if (c == NULL)
		return -ENOMEM;
	c->nslots = entries;
	c->min_ttl = min_ttl;
	c->max_ttl = max_ttl < min_ttl ? min_ttl : max_ttl;
	c->seed = hash_seed();
	c->nbuckets = 1;
	while (c->nbuckets < entries && c->nbuckets < (1u << 31))
		c->nbuckets <<= 1;
	c->slots = calloc(entries ? entries : 1, sizeof(*c->slots));
	c->buckets = malloc((size_t)c->nbuckets * sizeof(*c->buckets));
	c->heap = malloc((size_t)(entries ? entries : 1) * sizeof(*c->heap));
	if (c->slots == NULL || c->buckets == NULL || c->heap == NULL)
		goto cleanup;
	for (uint32_t i = 0; i < c->nbuckets; i++)
		c->buckets[i] = NIL;
	c->free_head = NIL;
	c->last_hit = NIL;
	c->table_bytes = sizeof(*c) +
			 (size_t)(entries ? entries : 1) * (sizeof(*c->slots) + sizeof(*c->heap)) +
			 (size_t)c->nbuckets * sizeof(*c->buckets);
	*out = c;
	c = NULL;
	rc = 0;
cleanup:
	if (c != NULL) {
		free(c->slots);
		free(c->buckets);
		free(c->heap);
		free(c);
	}
	return rc;
}

void
cache_configure(struct cache *c, uint32_t serve_stale_s, bool prefetch)
{
	c->stale_ms = (uint64_t)serve_stale_s * 1000;
	c->prefetch = prefetch;
}

/* The heap of used slots on expire_ms: the root expired first. */
static bool
heap_less(const struct cache *c, uint32_t a, uint32_t b)
{
	return c->slots[c->heap[a]].expire_ms < c->slots[c->heap[b]].expire_ms;
}

static void
heap_swap(struct cache *c, uint32_t a, uint32_t b)
{
	uint32_t t = c->heap[a];

	c->heap[a] = c->heap[b];
	c->heap[b] = t;
	c->slots[c->heap[a]].hpos = a;
	c->slots[c->heap[b]].hpos = b;
}

static void
heap_fix(struct cache *c, uint32_t k)
{
	while (k > 0 && heap_less(c, k, (k - 1) / 2)) {
		heap_swap(c, k, (k - 1) / 2);
		k = (k - 1) / 2;
	}
	for (;;) {
		uint32_t l = 2 * k + 1, m = k;
		if (l < c->nheap && heap_less(c, l, m))
			m = l;
		if (l + 1 < c->nheap && heap_less(c, l + 1, m))
			m = l + 1;
		if (m == k)
			return;
		heap_swap(c, k, m);
		k = m;
	}
}

static void
heap_add(struct cache *c, uint32_t i)
{
	c->heap[c->nheap] = i;
	c->slots[i].hpos = c->nheap++;
	heap_fix(c, c->nheap - 1);
}

static void
heap_remove(struct cache *c, uint32_t i)
{
	uint32_t k = c->slots[i].hpos;

	INSIST(k < c->nheap && c->heap[k] == i);
	c->nheap--;
	if (k == c->nheap)
		return;
	c->heap[k] = c->heap[c->nheap];
	c->slots[c->heap[k]].hpos = k;
	heap_fix(c, k);
}

static void
free_blob(struct cache *c, uint32_t i)
{
	struct slot *s = &c->slots[i];

	c->st.bytes -= s->blob->size;
	c->st.entries--;
	free(s->blob);
	s->blob = NULL;
	s->used = false;
	s->referenced = false;
}

static void
release(struct cache *c, uint32_t i)
{
	if (c->last_hit == i)
		c->last_hit = NIL;
	heap_remove(c, i);
	free_blob(c, i);
}

void
cache_clear(struct cache *c)
{
	for (uint32_t i = 0; i < c->high; i++)
		if (c->slots[i].used)
			free_blob(c, i);
	c->nheap = 0;
	c->last_hit = NIL;
	for (uint32_t i = 0; i < c->nbuckets; i++)
		c->buckets[i] = NIL;
	c->high = 0;
	c->free_head = NIL;
	c->hand = 0;
}

void
cache_free(struct cache **cp)
{
	struct cache *c = *cp;

	if (c == NULL)
		return;
	cache_clear(c);
	free(c->slots);
	free(c->buckets);
	free(c->heap);
	free(c);
	*cp = NULL;
}

static uint64_t
key_hash(const struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
	 uint8_t bits)
{
	uint64_t h = names_hash(qname, c->seed);
	uint64_t k = ((uint64_t)qtype << 32) | ((uint64_t)qclass << 8) | bits;

	return hash_mix(h ^ k * 0x9e3779b97f4a7c15ull);
}

static size_t
key_make(uint8_t *key, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
	 uint8_t bits)
{
	memcpy(key, qname->wire, qname->len);
	dnsmsg_wr16(key + qname->len, qtype);
	dnsmsg_wr16(key + qname->len + 2, qclass);
	key[qname->len + 4] = bits;
	return (size_t)qname->len + KEY_EXTRA;
}

/* The slot holding key, or NIL. *prev is the slot before it in the chain (NIL: the bucket). */
static uint32_t
find(const struct cache *c, uint64_t h, const uint8_t *key, size_t keylen, uint32_t *prev)
{
	uint32_t p = NIL;

	for (uint32_t i = c->buckets[h & (c->nbuckets - 1)]; i != NIL; p = i, i = c->slots[i].next) {
		const struct slot *s = &c->slots[i];
		if (s->hash == h && s->blob->keylen == keylen &&
		    memcmp(s->blob->data, key, keylen) == 0) {
			*prev = p;
			return i;
		}
	}
	return NIL;
}

static void
unlink_slot(struct cache *c, uint32_t i, uint32_t prev)
{
	if (prev == NIL)
		c->buckets[c->slots[i].hash & (c->nbuckets - 1)] = c->slots[i].next;
	else
		c->slots[prev].next = c->slots[i].next;
}

/* Removes a used slot (the CLOCK victim) from its chain and from memory. */
static void
remove_slot(struct cache *c, uint32_t i)
{
	uint32_t prev = NIL;

	for (uint32_t j = c->buckets[c->slots[i].hash & (c->nbuckets - 1)]; j != i;
	     j = c->slots[j].next) {
		INSIST(j != NIL);
		prev = j;
	}
	unlink_slot(c, i, prev);
	release(c, i);
}

/* Drops slot i (found with prev before it in its chain): expired. */
static void
drop_expired(struct cache *c, uint32_t i, uint32_t prev)
{
	unlink_slot(c, i, prev);
	release(c, i);
	c->slots[i].next = c->free_head;
	c->free_head = i;
	c->st.expired++;
}

/* The unexpired slot for the key, or NIL (an expired one is dropped, unless within the stale
 * window: kept). */
static uint32_t
lookup_slot(struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
	    uint8_t bits, uint64_t now_ms)
{
	uint8_t key[NAMES_MAX_WIRE + KEY_EXTRA];
	uint32_t prev;
	size_t keylen = key_make(key, qname, qtype, qclass, bits);
	uint64_t h = key_hash(c, qname, qtype, qclass, bits);
	uint32_t i = find(c, h, key, keylen, &prev);

	if (i == NIL)
		return NIL;
	struct slot *s = &c->slots[i];
	if (now_ms >= s->expire_ms) {
		if (now_ms - s->expire_ms >= c->stale_ms)
			drop_expired(c, i, prev);
		else
			c->missed_stale = true;
		return NIL;
	}
	return i;
}

/* Points the result at slot i's answer (inlined: it is on the hit path). */
static inline __attribute__((always_inline)) const struct dnsmsg_answer *
result_of(struct cache *c, uint32_t i)
{
	const struct blob *b = c->slots[i].blob;
	struct dnsmsg_answer *r = &c->result;

	r->wire = (uint8_t *)(b->data + b->keylen + 2 * (size_t)b->nttl);
	r->len = b->len;
	r->nttl = b->nttl;
	memcpy(r->ttl_off, b->data + b->keylen, 2 * (size_t)b->nttl);
	r->ttl = b->ttl;
	r->rcode = b->rcode;
	r->negative = b->negative;
	r->cacheable = true;
	return r;
}

const struct dnsmsg_answer *
cache_lookup(struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
	     uint8_t bits, uint64_t now_ms, uint32_t *age_s)
{
	if (c->nslots == 0) {
		c->st.misses++;
		return NULL;
	}
	c->last_hit = NIL;
	c->missed_stale = false;
	uint32_t i = lookup_slot(c, qname, qtype, qclass, bits, now_ms);
	if (i == NIL && (bits & CACHE_KEY_CD))
		i = lookup_slot(c, qname, qtype, qclass, (uint8_t)(bits & ~CACHE_KEY_CD), now_ms);
	else if (i != NIL && now_ms >= c->slots[i].prefetch_ms)
		c->last_hit = i;	/* in its prefetch window: see cache_prefetch_due */
	if (i == NIL) {
		c->st.misses++;
		return NULL;
	}
	struct slot *s = &c->slots[i];
	s->referenced = true;
	s->hits += s->hits < UINT16_MAX;
	*age_s = (uint32_t)((now_ms - s->stored_ms) / 1000);
	c->st.hits++;
	return result_of(c, i);
}

bool
cache_prefetch_due(const struct cache *c)
{
	uint32_t i = c->last_hit;

	/* last_hit is only set in the window, and prefetch_ms is UINT64_MAX once started */
	return i != NIL && c->prefetch && c->slots[i].hits >= CACHE_PREFETCH_HITS;
}

void
cache_prefetch_started(struct cache *c)
{
	uint32_t i = c->last_hit;

	if (i == NIL)
		return;
	c->last_hit = NIL;
	c->slots[i].prefetch_ms = UINT64_MAX;
	c->st.prefetches++;
}

/* The slot cache_lookup_stale serves for the key (the CD=0 entry after the exact one), or NIL.
 * An entry past its TTL + the stale window is dropped when c is given, else left. */
static uint32_t
stale_slot(const struct cache *cc, struct cache *c, const struct names_name *qname,
	   uint16_t qtype, uint16_t qclass, uint8_t bits, uint64_t now_ms)
{
	uint8_t key[NAMES_MAX_WIRE + KEY_EXTRA];
	uint32_t prev, i = NIL;

	if (cc->nslots == 0 || cc->stale_ms == 0)
		return NIL;
	for (int k = 0; k < 2 && i == NIL; k++) {
		uint8_t kb = k == 0 ? bits : (uint8_t)(bits & ~CACHE_KEY_CD);
		if (k == 1 && kb == bits)
			break;
		size_t keylen = key_make(key, qname, qtype, qclass, kb);
		i = find(cc, key_hash(cc, qname, qtype, qclass, kb), key, keylen, &prev);
		if (i != NIL && now_ms >= cc->slots[i].expire_ms &&
		    now_ms - cc->slots[i].expire_ms >= cc->stale_ms) {
			if (c != NULL)
				drop_expired(c, i, prev);
			i = NIL;
		}
	}
	return i;
}

bool
cache_stale_kept(const struct cache *c, const struct names_name *qname, uint16_t qtype,
		 uint16_t qclass, uint8_t bits, uint64_t now_ms)
{
	return stale_slot(c, NULL, qname, qtype, qclass, bits, now_ms) != NIL;
}

const struct dnsmsg_answer *
cache_lookup_stale(struct cache *c, const struct names_name *qname, uint16_t qtype,
		   uint16_t qclass, uint8_t bits, uint64_t now_ms, uint32_t *age_s, bool *stale)
{
	c->last_hit = NIL;
	uint32_t i = stale_slot(c, c, qname, qtype, qclass, bits, now_ms);
	if (i == NIL)
		return NULL;
	struct slot *s = &c->slots[i];
	s->referenced = true;
	if (now_ms < s->expire_ms) {
		*age_s = (uint32_t)((now_ms - s->stored_ms) / 1000);
		*stale = false;
		c->st.hits++;
		return result_of(c, i);
	}
	/* never served fresh again: its TTLs become the stale answer TTL, once and for all */
	struct blob *b = s->blob;
	uint8_t *wire = b->data + b->keylen + 2 * (size_t)b->nttl;
	for (unsigned k = 0; k < b->nttl; k++) {
		uint16_t off;
		memcpy(&off, b->data + b->keylen + 2 * k, 2);
		if ((size_t)off + 4 <= b->len)
			dnsmsg_wr32(wire + off, CACHE_STALE_TTL);
	}
	*age_s = 0;
	*stale = true;
	c->st.stale_served++;
	return result_of(c, i);
}

bool
cache_missed_stale(const struct cache *c)
{
	return c->missed_stale;
}

/* A slot to fill: a free one, else the entry that expired longest ago (stale ones included),
 * else the CLOCK victim among live entries. */
static uint32_t
take_slot(struct cache *c, uint64_t now_ms)
{
	if (c->free_head != NIL) {
		uint32_t i = c->free_head;
		c->free_head = c->slots[i].next;
		return i;
	}
	if (c->high < c->nslots)
		return c->high++;
	INSIST(c->nheap == c->nslots);
	if (now_ms >= c->slots[c->heap[0]].expire_ms) {
		uint32_t i = c->heap[0];
		c->st.expired++;
		remove_slot(c, i);
		return i;
	}
	/* every slot is used and live: after one full turn all reference bits are clear */
	for (uint64_t step = 0;; step++) {
		uint32_t i = c->hand;
		struct slot *s = &c->slots[i];
		c->hand = (c->hand + 1 == c->nslots) ? 0 : c->hand + 1;
		if (s->referenced && step < 2 * (uint64_t)c->nslots) {
			s->referenced = false;
			continue;
		}
		c->st.evictions++;
		remove_slot(c, i);
		return i;
	}
}

static uint32_t
ttl_or_zero(uint32_t ttl)
{
	return ttl > DNSMSG_TTL_MAX ? 0 : ttl;
}

static uint32_t
clamp(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int
cache_insert(struct cache *c, const struct names_name *qname, uint16_t qtype, uint16_t qclass,
	     uint8_t bits, const struct dnsmsg_answer *a, uint64_t now_ms)
{
	uint8_t key[NAMES_MAX_WIRE + KEY_EXTRA];
	uint32_t prev;

	if (c->nslots == 0 || !a->cacheable ||
	    (a->rcode != DNSMSG_RCODE_NOERROR && a->rcode != DNSMSG_RCODE_NXDOMAIN))
		return 0;
	if (a->len < DNSMSG_HEADER_LEN || a->nttl > DNSMSG_MAX_TTLS)
		return -E2BIG;
	uint32_t ttl = clamp(ttl_or_zero(a->ttl), c->min_ttl, c->max_ttl);
	if (ttl == 0)
		return 0;	/* would expire at once */

	size_t keylen = key_make(key, qname, qtype, qclass, bits);
	size_t size = sizeof(struct blob) + keylen + 2 * (size_t)a->nttl + a->len;
	struct blob *b = malloc(size);
	if (b == NULL)
		return -ENOMEM;
	b->size = size;
	b->keylen = (uint16_t)keylen;
	b->len = a->len;
	b->nttl = a->nttl;
	b->rcode = a->rcode;
	b->negative = a->negative;
	b->ttl = ttl;
	memcpy(b->data, key, keylen);
	uint8_t *offs = b->data + keylen;
	uint8_t *wire = offs + 2 * (size_t)a->nttl;
	memcpy(wire, a->wire, a->len);
	for (unsigned k = 0; k < a->nttl; k++) {
		uint16_t off = a->ttl_off[k];
		memcpy(offs + 2 * k, &off, 2);
		if ((size_t)off + 4 <= a->len)
			dnsmsg_wr32(wire + off,
				    clamp(ttl_or_zero(dnsmsg_rd32(wire + off)), c->min_ttl, ttl));
	}

	uint64_t h = key_hash(c, qname, qtype, qclass, bits);
	uint32_t i = find(c, h, key, keylen, &prev);
	bool fresh = i == NIL;
	c->last_hit = NIL;
	if (!fresh) {
		/* replace in place, keeping the slot's place in the chain and its mark */
		struct slot *s = &c->slots[i];
		c->st.bytes -= s->blob->size;
		free(s->blob);
		s->blob = b;
	} else {
		i = take_slot(c, now_ms);
		struct slot *s = &c->slots[i];
		uint32_t *head = &c->buckets[h & (c->nbuckets - 1)];
		s->hash = h;
		s->blob = b;
		s->used = true;
		s->referenced = false;
		s->next = *head;
		*head = i;
		c->st.entries++;
	}
	struct slot *s = &c->slots[i];
	s->stored_ms = now_ms;
	s->expire_ms = now_ms + (uint64_t)ttl * 1000;
	s->prefetch_ms = ttl >= CACHE_PREFETCH_MIN_TTL
				 ? s->expire_ms - (uint64_t)ttl * (1000 / CACHE_PREFETCH_DIV)
				 : UINT64_MAX;
	s->hits = 0;
	if (fresh)
		heap_add(c, i);
	else
		heap_fix(c, s->hpos);
	c->st.bytes += size;
	c->st.inserts++;
	return 0;
}

uint8_t
cache_key_bits(const struct dnsmsg_query *q)
{
	return (uint8_t)((q->do_bit ? CACHE_KEY_DO : 0) |
			 ((q->flags & DNSMSG_FLAG_CD) ? CACHE_KEY_CD : 0));
}

void
cache_get_stats(const struct cache *c, struct cache_stats *st)
{
	*st = c->st;
	st->bytes += c->table_bytes;
}
