/*
 * nameset: the name table of a policy. Each distinct name is stored once, with the set of lists
 * that contain it.
 *
 * Open addressing (linear probing) keyed by names_hash() with a per-table seed. A slot holds a
 * 32-bit hash tag and the offset of the entry in one contiguous arena; an entry is the interned
 * list-set id (4 octets) followed by the name in canonical wire form. A list-set is interned:
 * names that are in the same lists share one set id, so an entry stays small however many lists
 * contain the name. Set ids are dense (0..nameset_nsets()-1), which lets the policy precompute a
 * per-group answer for every set.
 *
 * Building is single-threaded; once built, lookups are read-only and thread-safe. The matcher
 * is behind this narrow interface so that a qp-trie could replace the hash later.
 */
#ifndef VETO_NAMESET_H
#define VETO_NAMESET_H

#include <stddef.h>
#include <stdint.h>

#include "names.h"

#define NAMESET_NONE UINT32_MAX	/* "no entry" set id */

struct nameset;

/* Creates an empty table hashing with seed; expected is a size hint (0 = none). 0 or -ENOMEM. */
int nameset_new(uint64_t seed, size_t expected, struct nameset **out);
void nameset_free(struct nameset **ns);	/* NULL-safe, sets *ns = NULL */

/*
 * Adds name n to list `list`. Returns 1 when the name was not yet in that list, 0 when it was
 * (a duplicate), -ENOMEM (the table is unchanged), -E2BIG when the table is full (4 GiB arena).
 */
int nameset_add(struct nameset *ns, const struct names_name *n, uint32_t list);

/* The seed this table hashes with: callers pass names_hash_suffixes(.., seed, ..) values. */
uint64_t nameset_seed(const struct nameset *ns);

/*
 * Looks up the suffix of n starting at label i, whose hash (with nameset_seed) is h.
 * Returns its set id or NAMESET_NONE. Allocates nothing.
 */
uint32_t nameset_find(const struct nameset *ns, const struct names_name *n, unsigned i,
		      uint64_t h);

/* Hints the CPU to fetch the slot for hash h (lets several probes overlap). */
void nameset_prefetch(const struct nameset *ns, uint64_t h);

/*
 * Looks up the suffixes of n starting at labels 0..count-1 (count <= n->nlabels + 1), whose
 * hashes are h[0..count-1], writing each one's set id or NAMESET_NONE to sets[]. Same result
 * as nameset_find for each, but the memory accesses of all probes overlap. Allocates nothing.
 */
void nameset_find_suffixes(const struct nameset *ns, const struct names_name *n,
			   const uint64_t *h, unsigned count, uint32_t *sets);

/* The lists of set id `set`, ascending, and their count. The array belongs to the table. */
const uint32_t *nameset_set(const struct nameset *ns, uint32_t set, size_t *count);

size_t nameset_count(const struct nameset *ns);	/* distinct names */
size_t nameset_nsets(const struct nameset *ns);	/* distinct list-sets */
size_t nameset_memory(const struct nameset *ns); /* bytes allocated (table, arena, sets) */

/* Releases build-time slack (arena capacity, set index); the table stays usable. */
void nameset_shrink(struct nameset *ns);

#endif
