/*
 * nameset: distinct names -> interned list-sets (see nameset.h).
 *
 * Slots are 8 octets: a 32-bit tag (the low half of the name's hash; the slot index is the tag's
 * low bits, so growing rehashes from tags alone) and the arena offset of the entry (0 = empty;
 * offset 0 of the arena is never used). Entries are [set id, 4 octets][wire name]. Canonical wire
 * names are prefix-free, so comparing the probe's length of octets against an entry is exact;
 * the arena keeps ARENA_PAD spare octets so that such a compare never reads past its end.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "nameset.h"
#include "hash.h"

#define ARENA_PAD	256
#define ENTRY_HDR	4
#define MIN_SLOTS	64
#define MAX_ARENA	UINT32_MAX
#define HUGE_SIZE	((size_t)2 << 20)	/* a transparent huge page on x86-64 */
#define HUGE_MIN	(2 * HUGE_SIZE)		/* smaller blocks come from malloc */

struct slot {
	uint32_t tag;
	uint32_t off;
};

struct setref {
	uint32_t start;		/* index in items */
	uint32_t n;
};

struct nameset {
	uint64_t seed;

	struct slot *slots;
	size_t slots_mapped;	/* > 0: slots is a mapping of this size (see big_alloc) */
	uint32_t mask;		/* number of slots - 1 */
	size_t count;

	uint8_t *arena;
	size_t alen, acap;
	size_t arena_mapped;	/* > 0: arena is a mapping of this size */

	/* interned list-sets */
	uint32_t *items;
	size_t nitems, citems;
	struct setref *sets;
	size_t nsets, csets;
	uint32_t *sidx;		/* open addressing over set ids + 1 (0 = empty); build only */
	size_t smask;
	uint32_t *single;	/* list -> singleton set id + 1 (0 = none yet); build only */
	size_t nsingle;
	uint32_t *scratch;	/* union under construction */
	size_t cscratch;
};

static size_t
pow2_at_least(size_t n)
{
	size_t c = MIN_SLOTS;
	while (c < n)
		c <<= 1;
	return c;
}

/*
 * Zeroed memory for the big read-mostly arrays. Lookups touch the slot table and the arena at
 * random, so with 4 KiB pages nearly every probe is a TLB miss; blocks of HUGE_MIN or more are
 * mapped 2 MiB-aligned and marked for transparent huge pages. *mapped is the mapping's size,
 * 0 when the block came from calloc.
 */
static void *
big_alloc(size_t size, size_t *mapped)
{
	if (size < HUGE_MIN) {
		*mapped = 0;
		return calloc(1, size);
	}
	size_t len = (size + HUGE_SIZE - 1) & ~(HUGE_SIZE - 1);
	uint8_t *m = mmap(NULL, len + HUGE_SIZE, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		return NULL;
	uint8_t *p = (uint8_t *)(((uintptr_t)m + HUGE_SIZE - 1) & ~(uintptr_t)(HUGE_SIZE - 1));
	if (p > m)
		munmap(m, (size_t)(p - m));
	if (p + len < m + len + HUGE_SIZE)
		munmap(p + len, (size_t)(m + len + HUGE_SIZE - (p + len)));
#ifdef MADV_HUGEPAGE
	(void)madvise(p, len, MADV_HUGEPAGE);
#endif
	*mapped = len;
	return p;
}

static void
big_free(void *p, size_t mapped)
{
	if (mapped > 0)
		munmap(p, mapped);
	else
		free(p);
}

int
nameset_new(uint64_t seed, size_t expected, struct nameset **out)
{
	struct nameset *ns = calloc(1, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	ns->seed = seed;
	size_t cap = pow2_at_least(expected + expected / 3 + 1);
	if (cap > ((size_t)1 << 32))
		cap = (size_t)1 << 32;
	ns->slots = big_alloc(cap * sizeof(*ns->slots), &ns->slots_mapped);
	ns->mask = (uint32_t)(cap - 1);
	ns->acap = 4096 + ARENA_PAD;
	ns->arena = calloc(1, ns->acap);
	if (ns->slots == NULL || ns->arena == NULL) {
		nameset_free(&ns);
		return -ENOMEM;
	}
	ns->alen = 1;	/* offset 0 means "empty slot" */
	*out = ns;
	return 0;
}

void
nameset_free(struct nameset **pns)
{
	struct nameset *ns = *pns;
	if (ns == NULL)
		return;
	if (ns->slots != NULL)
		big_free(ns->slots, ns->slots_mapped);
	if (ns->arena != NULL)
		big_free(ns->arena, ns->arena_mapped);
	free(ns->items);
	free(ns->sets);
	free(ns->sidx);
	free(ns->single);
	free(ns->scratch);
	free(ns);
	*pns = NULL;
}

uint64_t
nameset_seed(const struct nameset *ns)
{
	return ns->seed;
}

static inline uint32_t
entry_set(const struct nameset *ns, uint32_t off)
{
	uint32_t s;
	memcpy(&s, ns->arena + off, sizeof(s));
	return s;
}

/* Index of the slot holding wire[0..wlen) or of the empty slot where it would go, looking
 * from slot i on. */
static inline uint32_t
probe_from(const struct nameset *ns, const uint8_t *wire, size_t wlen, uint32_t tag, uint32_t i)
{
	for (;;) {
		const struct slot *s = &ns->slots[i];
		if (s->off == 0)
			return i;
		if (s->tag == tag && memcmp(ns->arena + s->off + ENTRY_HDR, wire, wlen) == 0)
			return i;
		i = (i + 1) & ns->mask;
	}
}

static inline uint32_t
probe(const struct nameset *ns, const uint8_t *wire, size_t wlen, uint32_t tag)
{
	return probe_from(ns, wire, wlen, tag, tag & ns->mask);
}

void
nameset_find_suffixes(const struct nameset *ns, const struct names_name *n, const uint64_t *h,
		      unsigned count, uint32_t *sets)
{
	uint32_t cand[NAMES_MAX_LABELS];	/* slot of the first tag match, or UINT32_MAX */

	/* 1: fetch every home slot at once */
	for (unsigned i = 0; i < count; i++)
		__builtin_prefetch(&ns->slots[(uint32_t)h[i] & ns->mask]);
	/* 2: find the first tag match of each and fetch its entry */
	for (unsigned i = 0; i < count; i++) {
		uint32_t tag = (uint32_t)h[i];
		uint32_t j = tag & ns->mask;
		cand[i] = UINT32_MAX;
		sets[i] = NAMESET_NONE;
		for (;;) {
			const struct slot *s = &ns->slots[j];
			if (s->off == 0)
				break;
			if (s->tag == tag) {
				cand[i] = j;
				__builtin_prefetch(ns->arena + s->off);
				break;
			}
			j = (j + 1) & ns->mask;
		}
	}
	/* 3: confirm by comparing the names; on a tag collision, go on probing */
	for (unsigned i = 0; i < count; i++) {
		if (cand[i] == UINT32_MAX)
			continue;
		const uint8_t *wire = n->wire + n->label_off[i];
		size_t wlen = (size_t)n->len - n->label_off[i];
		uint32_t off = ns->slots[cand[i]].off;
		if (memcmp(ns->arena + off + ENTRY_HDR, wire, wlen) != 0) {
			uint32_t j = probe_from(ns, wire, wlen, (uint32_t)h[i],
						(cand[i] + 1) & ns->mask);
			off = ns->slots[j].off;
		}
		if (off != 0)
			sets[i] = entry_set(ns, off);
	}
}

uint32_t
nameset_find(const struct nameset *ns, const struct names_name *n, unsigned i, uint64_t h)
{
	const uint8_t *wire = n->wire + n->label_off[i];
	size_t wlen = (size_t)n->len - n->label_off[i];
	uint32_t slot = probe(ns, wire, wlen, (uint32_t)h);
	uint32_t off = ns->slots[slot].off;
	return off == 0 ? NAMESET_NONE : entry_set(ns, off);
}

void
nameset_prefetch(const struct nameset *ns, uint64_t h)
{
	__builtin_prefetch(&ns->slots[(uint32_t)h & ns->mask]);
}

const uint32_t *
nameset_set(const struct nameset *ns, uint32_t set, size_t *count)
{
	if (set >= ns->nsets) {
		*count = 0;
		return NULL;
	}
	*count = ns->sets[set].n;
	return ns->items + ns->sets[set].start;
}

size_t
nameset_count(const struct nameset *ns)
{
	return ns->count;
}

size_t
nameset_nsets(const struct nameset *ns)
{
	return ns->nsets;
}

size_t
nameset_memory(const struct nameset *ns)
{
	return sizeof(*ns) + ((size_t)ns->mask + 1) * sizeof(struct slot) + ns->acap +
	       ns->citems * sizeof(*ns->items) + ns->csets * sizeof(*ns->sets) +
	       (ns->sidx != NULL ? (ns->smask + 1) * sizeof(*ns->sidx) : 0) +
	       ns->nsingle * sizeof(*ns->single) + ns->cscratch * sizeof(*ns->scratch);
}

static int
grow_slots(struct nameset *ns)
{
	size_t cap = (size_t)ns->mask + 1;
	if (cap >= ((size_t)1 << 32))
		return -E2BIG;
	size_t ncap = cap * 2;
	size_t mapped;
	struct slot *ns2 = big_alloc(ncap * sizeof(*ns2), &mapped);
	if (ns2 == NULL)
		return -ENOMEM;
	uint32_t nmask = (uint32_t)(ncap - 1);
	for (size_t i = 0; i < cap; i++) {
		struct slot s = ns->slots[i];
		if (s.off == 0)
			continue;
		uint32_t j = s.tag & nmask;
		while (ns2[j].off != 0)
			j = (j + 1) & nmask;
		ns2[j] = s;
	}
	big_free(ns->slots, ns->slots_mapped);
	ns->slots = ns2;
	ns->slots_mapped = mapped;
	ns->mask = nmask;
	return 0;
}

static int
reserve_arena(struct nameset *ns, size_t more)
{
	if (ns->alen + more + ARENA_PAD <= ns->acap)
		return 0;
	if (ns->alen + more > MAX_ARENA)
		return -E2BIG;
	size_t ncap = ns->acap * 2;
	while (ns->alen + more + ARENA_PAD > ncap)
		ncap *= 2;
	uint8_t *a;
	if (ns->arena_mapped > 0) {
		/* growing again after nameset_shrink moved the arena to a mapping */
		a = malloc(ncap);
		if (a == NULL)
			return -ENOMEM;
		memcpy(a, ns->arena, ns->alen);
		big_free(ns->arena, ns->arena_mapped);
		ns->arena_mapped = 0;
	} else {
		a = realloc(ns->arena, ncap);
		if (a == NULL)
			return -ENOMEM;
	}
	/* not zeroed: untouched capacity stays non-resident; a compare that runs past an
	   entry differs inside the entry already (prefix-free names), whatever follows */
	ns->arena = a;
	ns->acap = ncap;
	return 0;
}

/* --- interned list-sets --- */

static uint64_t
set_hash(const uint32_t *v, size_t n)
{
	return hash_bytes(v, n * sizeof(*v), 0);	/* list indexes: nothing a client chooses */
}

static bool
set_equal(const struct nameset *ns, uint32_t id, const uint32_t *v, size_t n)
{
	const struct setref *s = &ns->sets[id];
	return s->n == n && memcmp(ns->items + s->start, v, n * sizeof(*v)) == 0;
}

static int
rebuild_sidx(struct nameset *ns, size_t cap)
{
	uint32_t *idx = calloc(cap, sizeof(*idx));
	if (idx == NULL)
		return -ENOMEM;
	for (size_t id = 0; id < ns->nsets; id++) {
		const struct setref *s = &ns->sets[id];
		size_t j = set_hash(ns->items + s->start, s->n) & (cap - 1);
		while (idx[j] != 0)
			j = (j + 1) & (cap - 1);
		idx[j] = (uint32_t)id + 1;
	}
	free(ns->sidx);
	ns->sidx = idx;
	ns->smask = cap - 1;
	return 0;
}

/* Finds or adds the set v[0..n) (ascending). Returns 0 and *id, or -ENOMEM. */
static int
set_intern(struct nameset *ns, const uint32_t *v, size_t n, uint32_t *id)
{
	int rc;
	if (ns->sidx == NULL || (ns->nsets + 1) * 2 > ns->smask + 1) {
		size_t cap = ns->sidx == NULL ? 64 : (ns->smask + 1) * 2;
		while ((ns->nsets + 1) * 2 > cap)
			cap *= 2;
		if ((rc = rebuild_sidx(ns, cap)) != 0)
			return rc;
	}
	size_t j = set_hash(v, n) & ns->smask;
	while (ns->sidx[j] != 0) {
		if (set_equal(ns, ns->sidx[j] - 1, v, n)) {
			*id = ns->sidx[j] - 1;
			return 0;
		}
		j = (j + 1) & ns->smask;
	}
	if (ns->nsets >= UINT32_MAX - 1 || ns->nitems + n > UINT32_MAX)
		return -E2BIG;
	if (ns->nsets == ns->csets) {
		size_t c = ns->csets ? ns->csets * 2 : 16;
		struct setref *s = realloc(ns->sets, c * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		ns->sets = s;
		ns->csets = c;
	}
	if (ns->nitems + n > ns->citems) {
		size_t c = ns->citems ? ns->citems * 2 : 64;
		while (ns->nitems + n > c)
			c *= 2;
		uint32_t *it = realloc(ns->items, c * sizeof(*it));
		if (it == NULL)
			return -ENOMEM;
		ns->items = it;
		ns->citems = c;
	}
	memcpy(ns->items + ns->nitems, v, n * sizeof(*v));
	ns->sets[ns->nsets].start = (uint32_t)ns->nitems;
	ns->sets[ns->nsets].n = (uint32_t)n;
	ns->nitems += n;
	ns->sidx[j] = (uint32_t)ns->nsets + 1;
	*id = (uint32_t)ns->nsets++;
	return 0;
}

static int
set_singleton(struct nameset *ns, uint32_t list, uint32_t *id)
{
	if (list >= ns->nsingle) {
		size_t c = ns->nsingle ? ns->nsingle : 8;
		while (c <= list)
			c *= 2;
		uint32_t *s = realloc(ns->single, c * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		memset(s + ns->nsingle, 0, (c - ns->nsingle) * sizeof(*s));
		ns->single = s;
		ns->nsingle = c;
	}
	if (ns->single[list] != 0) {
		*id = ns->single[list] - 1;
		return 0;
	}
	uint32_t sid;
	int rc = set_intern(ns, &list, 1, &sid);
	if (rc != 0)
		return rc;
	ns->single[list] = sid + 1;
	*id = sid;
	return 0;
}

/* set `from` plus list. Returns 1 with *id when added, 0 when list was already in it. */
static int
set_with(struct nameset *ns, uint32_t from, uint32_t list, uint32_t *id)
{
	const struct setref s = ns->sets[from];
	const uint32_t *v = ns->items + s.start;
	size_t lo = 0, hi = s.n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (v[mid] < list)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < s.n && v[lo] == list)
		return 0;
	if ((size_t)s.n + 1 > ns->cscratch) {
		size_t c = ns->cscratch ? ns->cscratch * 2 : 16;
		while (c < (size_t)s.n + 1)
			c *= 2;
		uint32_t *sc = realloc(ns->scratch, c * sizeof(*sc));
		if (sc == NULL)
			return -ENOMEM;
		ns->scratch = sc;
		ns->cscratch = c;
	}
	memcpy(ns->scratch, v, lo * sizeof(*v));
	ns->scratch[lo] = list;
	memcpy(ns->scratch + lo + 1, v + lo, (s.n - lo) * sizeof(*v));
	int rc = set_intern(ns, ns->scratch, (size_t)s.n + 1, id);
	return rc != 0 ? rc : 1;
}

int
nameset_add(struct nameset *ns, const struct names_name *n, uint32_t list)
{
	uint32_t tag = (uint32_t)names_hash(n, ns->seed);
	uint32_t i = probe(ns, n->wire, n->len, tag);
	uint32_t off = ns->slots[i].off;
	uint32_t sid;
	int rc;

	if (off != 0) {
		rc = set_with(ns, entry_set(ns, off), list, &sid);
		if (rc == 1)
			memcpy(ns->arena + off, &sid, sizeof(sid));
		return rc;
	}
	if ((rc = set_singleton(ns, list, &sid)) != 0)
		return rc;
	if ((rc = reserve_arena(ns, ENTRY_HDR + (size_t)n->len)) != 0)
		return rc;
	if ((ns->count + 1) * 4 > ((size_t)ns->mask + 1) * 3) {
		if ((rc = grow_slots(ns)) != 0)
			return rc;
		i = probe(ns, n->wire, n->len, tag);
	}
	off = (uint32_t)ns->alen;
	memcpy(ns->arena + off, &sid, sizeof(sid));
	memcpy(ns->arena + off + ENTRY_HDR, n->wire, n->len);
	ns->alen += ENTRY_HDR + (size_t)n->len;
	ns->slots[i].tag = tag;
	ns->slots[i].off = off;
	ns->count++;
	return 1;
}

void
nameset_shrink(struct nameset *ns)
{
	size_t want = ns->alen + ARENA_PAD;
	size_t mapped = 0;
	if (want >= HUGE_MIN && ns->arena_mapped == 0) {
		/* the final arena goes to huge pages (see big_alloc) */
		uint8_t *a = big_alloc(want, &mapped);
		if (a != NULL) {
			memcpy(a, ns->arena, ns->alen);
			big_free(ns->arena, 0);
			ns->arena = a;
			ns->acap = mapped > 0 ? mapped : want;
			ns->arena_mapped = mapped;
		}
	} else if (want < ns->acap && ns->arena_mapped == 0) {
		uint8_t *a = realloc(ns->arena, want);
		if (a != NULL) {
			ns->arena = a;
			ns->acap = want;
		}
	}
	if (ns->nitems > 0 && ns->nitems < ns->citems) {
		uint32_t *it = realloc(ns->items, ns->nitems * sizeof(*it));
		if (it != NULL) {
			ns->items = it;
			ns->citems = ns->nitems;
		}
	}
	if (ns->nsets > 0 && ns->nsets < ns->csets) {
		struct setref *s = realloc(ns->sets, ns->nsets * sizeof(*s));
		if (s != NULL) {
			ns->sets = s;
			ns->csets = ns->nsets;
		}
	}
	/* build-only indexes: set_intern and set_singleton rebuild them on demand */
	free(ns->sidx);
	ns->sidx = NULL;
	ns->smask = 0;
	free(ns->single);
	ns->single = NULL;
	ns->nsingle = 0;
	free(ns->scratch);
	ns->scratch = NULL;
	ns->cscratch = 0;
}
