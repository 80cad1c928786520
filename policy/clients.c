/*
 * clients: prefix sets as binary tries (see clients.h).
 *
 * Nodes live in one array per family; child index 0 means "none" (the root, node 0, is never a
 * child). A node carries the smallest value of the prefixes ending there, or -1. A lookup walks
 * the address's bits and keeps the smallest value met: every prefix containing the address lies
 * on that path.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "clients.h"

struct node {
	uint32_t child[2];
	int32_t value;
};

struct trie {
	struct node *v;
	size_t n, cap;
};

struct clients {
	struct trie t4, t6;
};

static int
trie_init(struct trie *t)
{
	t->cap = 16;
	t->v = malloc(t->cap * sizeof(*t->v));
	if (t->v == NULL)
		return -ENOMEM;
	t->n = 1;
	t->v[0].child[0] = t->v[0].child[1] = 0;
	t->v[0].value = -1;
	return 0;
}

int
clients_new(struct clients **out)
{
	struct clients *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return -ENOMEM;
	if (trie_init(&c->t4) != 0 || trie_init(&c->t6) != 0) {
		clients_free(&c);
		return -ENOMEM;
	}
	*out = c;
	return 0;
}

void
clients_free(struct clients **pc)
{
	struct clients *c = *pc;
	if (c == NULL)
		return;
	free(c->t4.v);
	free(c->t6.v);
	free(c);
	*pc = NULL;
}

static inline unsigned
bit_at(const uint8_t *addr, unsigned i)
{
	return (addr[i >> 3] >> (7 - (i & 7))) & 1;
}

static int
trie_add(struct trie *t, const uint8_t *addr, unsigned prefix, int value)
{
	/* reserve the worst case first so that a failure leaves the trie unchanged */
	if (t->n + prefix > t->cap) {
		size_t cap = t->cap * 2;
		while (t->n + prefix > cap)
			cap *= 2;
		struct node *v = realloc(t->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		t->v = v;
		t->cap = cap;
	}
	uint32_t cur = 0;
	for (unsigned i = 0; i < prefix; i++) {
		unsigned b = bit_at(addr, i);
		if (t->v[cur].child[b] == 0) {
			uint32_t nn = (uint32_t)t->n++;
			t->v[nn].child[0] = t->v[nn].child[1] = 0;
			t->v[nn].value = -1;
			t->v[cur].child[b] = nn;
		}
		cur = t->v[cur].child[b];
	}
	if (t->v[cur].value < 0 || value < t->v[cur].value)
		t->v[cur].value = value;
	return 0;
}

static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
clients_add(struct clients *c, int family, const uint8_t *addr, unsigned prefix, int value)
{
	if (value < 0)
		return -EINVAL;
	if (family == AF_INET) {
		if (prefix > 32)
			return -EINVAL;
		return trie_add(&c->t4, addr, prefix, value);
	}
	if (family != AF_INET6 || prefix > 128)
		return -EINVAL;
	if (prefix >= 96 && memcmp(addr, v4mapped, sizeof(v4mapped)) == 0)
		return trie_add(&c->t4, addr + 12, prefix - 96, value);
	return trie_add(&c->t6, addr, prefix, value);
}

int
clients_add_all(struct clients *c, int value)
{
	static const uint8_t zero[16];
	int rc = clients_add(c, AF_INET, zero, 0, value);
	if (rc == 0)
		rc = clients_add(c, AF_INET6, zero, 0, value);
	return rc;
}

static int
trie_find(const struct trie *t, const uint8_t *addr, unsigned bits)
{
	const struct node *v = t->v;
	uint32_t cur = 0;
	int best = v[0].value;
	for (unsigned i = 0; i < bits; i++) {
		cur = v[cur].child[bit_at(addr, i)];
		if (cur == 0)
			break;
		int val = v[cur].value;
		if (val >= 0 && (best < 0 || val < best))
			best = val;
	}
	return best;
}

int
clients_find_addr(const struct clients *c, int family, const uint8_t *addr)
{
	if (family == AF_INET)
		return trie_find(&c->t4, addr, 32);
	if (family != AF_INET6)
		return -1;
	if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0)
		return trie_find(&c->t4, addr + 12, 32);
	return trie_find(&c->t6, addr, 128);
}

int
clients_find(const struct clients *c, const struct sockaddr *sa)
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
		return clients_find_addr(c, AF_INET, (const uint8_t *)&sin->sin_addr);
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
		return clients_find_addr(c, AF_INET6, sin6->sin6_addr.s6_addr);
	}
	return -1;
}

size_t
clients_memory(const struct clients *c)
{
	return sizeof(*c) + (c->t4.cap + c->t6.cap) * sizeof(struct node);
}
