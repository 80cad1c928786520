/*
 * policy_int.h: the compiled policy's layout, shared by policy.c and its tests only.
 */
#ifndef VETO_POLICY_INT_H
#define VETO_POLICY_INT_H

#include <stdatomic.h>
#include <stdint.h>

#include "clients.h"
#include "nameset.h"
#include "policy.h"

/* What one group makes of one list-set: the first of the group's allow lists and the first of
 * its block lists (in the group's order) that are in the set, -1 for none. */
struct policy_gset {
	int32_t allow;
	int32_t block;
};

struct policy {
	atomic_size_t refs;
	struct config *cfg;		/* owned */
	uint64_t seed;
	struct clients *allow;		/* server.allow, value 0 */
	struct clients *groups;		/* value = group index; catch-all groups as /0 */
	struct nameset *names;
	struct policy_gset *gsets;	/* ngroups rows of nsets entries */
	size_t nsets;
	struct policy_list_stats *lstats; /* one per config list */
	int32_t *sigsets;		/* per list-set: signature index, -1 none (NULL: none) */
	uint32_t *dev_groups;		/* groups with device selectors, in order */
	size_t ndev_groups;
	size_t memory;
};

#endif
