/*
 * ratelimit: token buckets per client key (server.rate_limit, server.error_replies_per_second).
 *
 * A fixed table of RATELIMIT_WAYS-way sets, allocated once: a key hashes (seeded) to one set;
 * a key not in its set takes an empty entry or evicts the one seen longest ago, so a lookup
 * touches at most RATELIMIT_WAYS entries and nothing is allocated after ratelimit_new(). A new
 * or evicted key starts with a full bucket. Buckets hold milli-tokens: a rate of r per second
 * refills r milli-tokens per millisecond; a query takes 1000.
 *
 * Each entry also counts the queries it limited since the last ratelimit_top(), for the
 * periodic log line naming the most limited clients.
 */
#ifndef VETO_RATELIMIT_H
#define VETO_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clientkey.h"

#define RATELIMIT_WAYS 4

struct ratelimit;

struct ratelimit_top {
	struct clientkey key;
	uint32_t limited;
};

/* A table of at least entries entries (rounded up to a power of two). 0 or -ENOMEM. */
int ratelimit_new(size_t entries, struct ratelimit **out);
void ratelimit_free(struct ratelimit **rl);

/* Takes a token from k's bucket (rate per second, burst tokens at most; rate 0: always true).
 * False when the bucket is empty: the entry counts one more limited query. */
bool ratelimit_take(struct ratelimit *rl, const struct clientkey *k, uint32_t rate, uint32_t burst,
                    uint64_t now_ms);

/* Writes the (at most n) entries of kind with the most limited queries since the last call into
 * out, most first, returns how many, and resets the counts of every entry of kind. */
size_t ratelimit_top(struct ratelimit *rl, enum clientkey_kind kind, struct ratelimit_top *out,
                     size_t n);

#endif
