/*
 * clientcount: exact per-client counts (see clientcount.h).
 */
#include "clientcount.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "hash.h"

#define CLIENTCOUNT_MIN 256

void
clientkey_text(const struct clientkey *k, char *buf, size_t size)
{
	char ip[INET6_ADDRSTRLEN];
	bool prefix = k->kind == CLIENTKEY_QUERIES_PREFIX;

	if (inet_ntop(k->family == 6 ? AF_INET6 : AF_INET, k->addr, ip, sizeof(ip)) == NULL)
		snprintf(ip, sizeof(ip), "?");
	if (prefix)
		snprintf(buf, size, "%s/%d", ip,
		         k->family == 6 ? CLIENTKEY_PREFIX6 : CLIENTKEY_PREFIX4);
	else
		snprintf(buf, size, "%s", ip);
}

void
clientcount_init(struct clientcount *t)
{
	t->slots = NULL;
	t->mask = 0;
	t->used = 0;
	t->seed = hash_seed();
}

void
clientcount_destroy(struct clientcount *t)
{
	free(t->slots);
	t->slots = NULL;
	t->mask = 0;
	t->used = 0;
}

static size_t
home(const struct clientcount *t, const struct clientkey *k)
{
	return (size_t)hash_bytes(k, clientkey_hash_len(k), t->seed) & t->mask;
}

/* The slot holding k, or the empty slot where it would go. */
static struct clientcount_slot *
find(const struct clientcount *t, const struct clientkey *k)
{
	size_t i = home(t, k);

	for (;;) {
		struct clientcount_slot *s = &t->slots[i];
		if (s->count == 0 || clientkey_equal(&s->key, k))
			return s;
		i = (i + 1) & t->mask;
	}
}

uint32_t
clientcount_get(const struct clientcount *t, const struct clientkey *k)
{
	if (t->slots == NULL)
		return 0;
	return find(t, k)->count;
}

static int
grow(struct clientcount *t)
{
	size_t n = t->slots == NULL ? CLIENTCOUNT_MIN : (t->mask + 1) * 2;
	struct clientcount_slot *slots = calloc(n, sizeof(*slots));

	if (slots == NULL)
		return -ENOMEM;
	struct clientcount old = *t;
	t->slots = slots;
	t->mask = n - 1;
	if (old.slots != NULL) {
		for (size_t i = 0; i <= old.mask; i++) {
			if (old.slots[i].count != 0)
				*find(t, &old.slots[i].key) = old.slots[i];
		}
		free(old.slots);
	}
	return 0;
}

int
clientcount_add(struct clientcount *t, const struct clientkey *k)
{
	if (t->slots == NULL || (t->used + 1) * 2 > t->mask + 1) {
		int err = grow(t);
		if (err != 0)
			return err;
	}
	struct clientcount_slot *s = find(t, k);
	if (s->count == 0) {
		s->key = *k;
		t->used++;
	}
	s->count++;
	return 0;
}

int
clientcount_add_below(struct clientcount *t, const struct clientkey *k, uint32_t limit)
{
	struct clientcount_slot *s = t->slots != NULL ? find(t, k) : NULL;

	if ((s != NULL ? s->count : 0) >= limit)
		return -EBUSY;
	if (s == NULL || (s->count == 0 && (t->used + 1) * 2 > t->mask + 1)) {
		int err = grow(t);
		if (err != 0)
			return err;
		s = find(t, k);
	}
	if (s->count == 0) {
		s->key = *k;
		t->used++;
	}
	s->count++;
	return 0;
}

void
clientcount_sub(struct clientcount *t, const struct clientkey *k)
{
	REQUIRE(t->slots != NULL);
	struct clientcount_slot *s = find(t, k);
	INSIST(s->count > 0);
	if (--s->count > 0)
		return;
	/* backward-shift deletion: move later members of the run into the hole */
	size_t hole = (size_t)(s - t->slots);
	size_t i = hole;
	t->used--;
	for (;;) {
		i = (i + 1) & t->mask;
		struct clientcount_slot *n = &t->slots[i];
		if (n->count == 0)
			break;
		size_t h = home(t, &n->key);
		/* n may move to the hole when its home is not in (hole, i] (cyclically) */
		bool stays = hole <= i ? (h > hole && h <= i) : (h > hole || h <= i);
		if (stays)
			continue;
		t->slots[hole] = *n;
		hole = i;
	}
	t->slots[hole].count = 0;
}
