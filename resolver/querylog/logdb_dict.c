/*
 * logdb_dict: the query-store writer's memory of dictionary ids (sources, names, texts).
 *
 * Open addressing with linear probing over a power-of-two table twice the entry limit; keys
 * live in one arena. Nothing is allocated after logdb_dict_init and nothing is ever deleted
 * one by one: when the entries or the arena run out, the whole map is cleared, which costs
 * the writer one indexed SELECT per key until the working set is back in memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "logdb_int.h"

int
logdb_dict_init(struct logdb_dict *d, size_t max_entries, size_t arena)
{
	size_t slots = 16;

	memset(d, 0, sizeof(*d));
	while (slots < max_entries * 2)
		slots *= 2;
	d->hash = calloc(slots, sizeof(*d->hash));
	d->id = calloc(slots, sizeof(*d->id));
	d->off = calloc(slots, sizeof(*d->off));
	d->len = calloc(slots, sizeof(*d->len));
	d->arena = malloc(arena);
	if (d->hash == NULL || d->id == NULL || d->off == NULL || d->len == NULL ||
	    d->arena == NULL) {
		logdb_dict_free(d);
		return -ENOMEM;
	}
	d->seed = hash_seed();
	d->mask = slots - 1;
	d->max = max_entries;
	d->cap = arena;
	return 0;
}

void
logdb_dict_free(struct logdb_dict *d)
{
	free(d->hash);
	free(d->id);
	free(d->off);
	free(d->len);
	free(d->arena);
	memset(d, 0, sizeof(*d));
}

void
logdb_dict_clear(struct logdb_dict *d)
{
	if (d->hash != NULL && d->count > 0)
		memset(d->hash, 0, (d->mask + 1) * sizeof(*d->hash));
	d->count = 0;
	d->used = 0;
}

/* Seeded, eight octets per step (keys are 5 to 300 octets; FNV-1a's octet per step was a
 * tenth of the writer's work per row outside SQLite), finished with hash_mix. */
uint64_t
logdb_dict_hash(const struct logdb_dict *d, const char *key, size_t len)
{
	uint64_t h = d->seed ^ ((uint64_t)len * UINT64_C(0x9e3779b97f4a7c15)), w;
	size_t i = 0;

	for (; i + 8 <= len; i += 8) {
		memcpy(&w, key + i, 8);
		h = (h ^ w) * UINT64_C(0xff51afd7ed558ccd);
		h ^= h >> 29;
	}
	if (i < len) {
		w = 0;
		memcpy(&w, key + i, len - i);
		h = (h ^ w) * UINT64_C(0xc4ceb9fe1a85ec53);
	}
	h = hash_mix(h);
	return h != 0 ? h : 1;
}

int64_t
logdb_dict_get(const struct logdb_dict *d, uint64_t hash, const char *key, size_t len)
{
	if (d->hash == NULL)
		return 0;
	for (size_t i = hash & d->mask;; i = (i + 1) & d->mask) {
		if (d->hash[i] == 0)
			return 0;
		if (d->hash[i] == hash && d->len[i] == len &&
		    memcmp(d->arena + d->off[i], key, len) == 0)
			return d->id[i];
	}
}

void
logdb_dict_put(struct logdb_dict *d, uint64_t hash, const char *key, size_t len, int64_t id)
{
	if (d->hash == NULL || len > d->cap || id <= 0)
		return;
	if (d->count >= d->max || d->cap - d->used < len)
		logdb_dict_clear(d);
	size_t i = hash & d->mask;
	while (d->hash[i] != 0) {
		if (d->hash[i] == hash && d->len[i] == len &&
		    memcmp(d->arena + d->off[i], key, len) == 0) {
			d->id[i] = id;
			return;
		}
		i = (i + 1) & d->mask;
	}
	memcpy(d->arena + d->used, key, len);
	d->hash[i] = hash;
	d->id[i] = id;
	d->off[i] = (uint32_t)d->used;
	d->len[i] = (uint32_t)len;
	d->used += len;
	d->count++;
}
