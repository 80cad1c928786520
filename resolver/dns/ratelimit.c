/*
 * ratelimit: token buckets in a fixed set-associative table (see ratelimit.h).
 */
#include "ratelimit.h"

#include <errno.h>
#include <stdlib.h>

#include "hash.h"

struct rl_entry {
	struct clientkey key;
	bool used;
	uint32_t tokens;  /* milli-tokens */
	uint32_t limited; /* since the last ratelimit_top() */
	uint64_t last_ms; /* last refill (and last use) */
};

struct ratelimit {
	struct rl_entry *e; /* nsets * RATELIMIT_WAYS */
	size_t set_mask;
	uint64_t seed;
};

int
ratelimit_new(size_t entries, struct ratelimit **out)
{
	size_t nsets = 1;

	while (nsets * RATELIMIT_WAYS < entries)
		nsets *= 2;
	struct ratelimit *rl = calloc(1, sizeof(*rl));
	if (rl == NULL)
		return -ENOMEM;
	rl->e = calloc(nsets * RATELIMIT_WAYS, sizeof(*rl->e));
	if (rl->e == NULL) {
		free(rl);
		return -ENOMEM;
	}
	rl->set_mask = nsets - 1;
	rl->seed = hash_seed();
	*out = rl;
	return 0;
}

void
ratelimit_free(struct ratelimit **rl)
{
	if (*rl == NULL)
		return;
	free((*rl)->e);
	free(*rl);
	*rl = NULL;
}

static struct rl_entry *
lookup(struct ratelimit *rl, const struct clientkey *k, uint32_t burst, uint64_t now_ms)
{
	size_t set = (size_t)hash_bytes(k, sizeof(*k), rl->seed) & rl->set_mask;
	struct rl_entry *e = &rl->e[set * RATELIMIT_WAYS];
	struct rl_entry *victim = NULL;

	for (size_t i = 0; i < RATELIMIT_WAYS; i++) {
		if (e[i].used && clientkey_equal(&e[i].key, k))
			return &e[i];
		if (!e[i].used) {
			if (victim == NULL || victim->used)
				victim = &e[i];
		} else if (victim == NULL || (victim->used && e[i].last_ms < victim->last_ms)) {
			victim = &e[i];
		}
	}
	victim->key = *k;
	victim->used = true;
	victim->tokens = burst * 1000u;
	victim->limited = 0;
	victim->last_ms = now_ms;
	return victim;
}

bool
ratelimit_take(struct ratelimit *rl, const struct clientkey *k, uint32_t rate, uint32_t burst,
               uint64_t now_ms)
{
	if (rate == 0)
		return true;
	if (burst > UINT32_MAX / 1000u)
		burst = UINT32_MAX / 1000u;
	struct rl_entry *e = lookup(rl, k, burst, now_ms);
	uint64_t cap = (uint64_t)burst * 1000u;
	if (now_ms > e->last_ms) {
		uint64_t t = e->tokens + (now_ms - e->last_ms) * (uint64_t)rate;
		e->tokens = (uint32_t)(t < cap ? t : cap);
		e->last_ms = now_ms;
	}
	if (e->tokens > cap) /* the burst was lowered by a reload */
		e->tokens = (uint32_t)cap;
	if (e->tokens >= 1000u) {
		e->tokens -= 1000u;
		return true;
	}
	if (e->limited < UINT32_MAX)
		e->limited++;
	return false;
}

size_t
ratelimit_top(struct ratelimit *rl, enum clientkey_kind kind, struct ratelimit_top *out, size_t n)
{
	size_t got = 0;
	size_t total = (rl->set_mask + 1) * RATELIMIT_WAYS;

	for (size_t i = 0; i < total; i++) {
		struct rl_entry *e = &rl->e[i];
		if (!e->used || e->key.kind != kind || e->limited == 0)
			continue;
		/* insertion into the sorted top n */
		size_t j = got < n ? got++ : n;
		if (j == n && (n == 0 || out[n - 1].limited >= e->limited)) {
			e->limited = 0;
			continue;
		}
		if (j == n)
			j = n - 1;
		while (j > 0 && out[j - 1].limited < e->limited) {
			out[j] = out[j - 1];
			j--;
		}
		out[j].key = e->key;
		out[j].limited = e->limited;
		e->limited = 0;
	}
	return got;
}
