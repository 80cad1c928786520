/*
 * kmap: an open-addressing hash map from a device key to an index (see kmap.h).
 */
#include "kmap.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "hash.h"

#define KEY_MAC	 1
#define KEY_IPV4 4
#define KEY_IPV6 6

struct kslot {
	struct dkey k;
	uint32_t v;
	bool used;
};

struct kmap {
	struct kslot *t;
	size_t cap, n;
	uint64_t seed;
};

static uint64_t
key_hash(const struct dkey *k, uint64_t seed)
{
	return hash_bytes(k->b, sizeof(k->b), seed);
}

int
kmap_new(size_t expected, struct kmap **out)
{
	struct kmap *m = calloc(1, sizeof(*m));
	size_t cap = 16;
	if (m == NULL)
		return -ENOMEM;
	while (cap < expected * 2)
		cap *= 2;
	m->t = calloc(cap, sizeof(*m->t));
	if (m->t == NULL) {
		free(m);
		return -ENOMEM;
	}
	m->cap = cap;
	m->seed = hash_seed();
	*out = m;
	return 0;
}

void
kmap_free(struct kmap **mp)
{
	if (*mp == NULL)
		return;
	free((*mp)->t);
	free(*mp);
	*mp = NULL;
}

int
kmap_get(const struct kmap *m, const struct dkey *k)
{
	if (m == NULL)
		return -1;
	size_t mask = m->cap - 1;
	for (size_t i = key_hash(k, m->seed) & mask;; i = (i + 1) & mask) {
		if (!m->t[i].used)
			return -1;
		if (memcmp(&m->t[i].k, k, sizeof(*k)) == 0)
			return (int)m->t[i].v;
	}
}

int
kmap_put(struct kmap *m, const struct dkey *k, uint32_t v)
{
	if ((m->n + 1) * 2 > m->cap) {
		size_t ncap = m->cap * 2;
		struct kslot *nt = calloc(ncap, sizeof(*nt));
		if (nt == NULL)
			return -ENOMEM;
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->t[i].used)
				continue;
			size_t j = key_hash(&m->t[i].k, m->seed) & (ncap - 1);
			while (nt[j].used)
				j = (j + 1) & (ncap - 1);
			nt[j] = m->t[i];
		}
		free(m->t);
		m->t = nt;
		m->cap = ncap;
	}
	size_t mask = m->cap - 1;
	size_t i = key_hash(k, m->seed) & mask;
	while (m->t[i].used && memcmp(&m->t[i].k, k, sizeof(*k)) != 0)
		i = (i + 1) & mask;
	if (!m->t[i].used)
		m->n++;
	m->t[i].k = *k;
	m->t[i].v = v;
	m->t[i].used = true;
	return 0;
}

struct dkey
kmap_mac_key(const struct mac *m)
{
	struct dkey k;
	memset(&k, 0, sizeof(k));
	k.b[0] = KEY_MAC;
	memcpy(k.b + 1, m->b, MAC_LEN);
	return k;
}

struct dkey
kmap_ip_key(int family, const uint8_t *addr)
{
	struct dkey k;
	memset(&k, 0, sizeof(k));
	k.b[0] = family == AF_INET ? KEY_IPV4 : KEY_IPV6;
	memcpy(k.b + 1, addr, family == AF_INET ? 4 : 16);
	return k;
}

int
kmap_del(struct kmap *m, const struct dkey *k)
{
	if (m == NULL)
		return -ENOENT;
	size_t mask = m->cap - 1;
	size_t i = key_hash(k, m->seed) & mask;
	while (m->t[i].used && memcmp(&m->t[i].k, k, sizeof(*k)) != 0)
		i = (i + 1) & mask;
	if (!m->t[i].used)
		return -ENOENT;
	/* backward shift: move up every later entry of the run whose home is not in (i, j] */
	for (size_t j = (i + 1) & mask; m->t[j].used; j = (j + 1) & mask) {
		size_t h = key_hash(&m->t[j].k, m->seed) & mask;
		bool stays = i <= j ? (h > i && h <= j) : (h > i || h <= j);
		if (stays)
			continue;
		m->t[i] = m->t[j];
		i = j;
	}
	m->t[i].used = false;
	m->n--;
	return 0;
}
