/*
 * devices_share: the device table read by every worker (see devices_share.h).
 *
 * Owner (main loop): snap_build() copies what identification needs from the table (a new base,
 * or the current base and a delta of the pending keys); publish() swaps it into sh->cur and
 * retires the previous one; reclaim() frees retired snapshots, oldest
 * first, once no reader's hazard slot names them; drain() replays the readers' observations.
 * Readers (one worker thread each): acquire() / release() around one query, then the
 * observation into their own ring (devices_reader_record).
 */
#include "devices_share.h"
#include "devices_int.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "check.h"
#include "hash.h"
#include "log.h"
#include "sockaddr.h"
#include "text.h"

#define SENT_SLOTS   4096	/* per reader: when each device's last sighting was sent */
#define SUSPECT_BITS 65536	/* devices whose evidence was dropped, by key hash */
#define RECLAIM_MS   5		/* retry while a retired snapshot is still held */

/* The strings of an entry (offsets into its table's strs; 0 is ""). */
enum { S_HOST, S_MANU, S_OUIV, S_PINV, S_PING, S_ROMV, S_COUNT };

struct snap_entry {
	struct dkey k;
	bool gone;			/* delta only: the device left, or is no longer worth it */
	bool usable;			/* identify_behaviour_usable() */
	bool has_mac, randomised;
	struct mac mac;
	uint32_t s[S_COUNT];
};

/* Entries and their index. A base (every device worth it) is shared by the snapshots
 * published until the next full build; each snapshot has its own delta (the devices changed
 * urgently since the base was built), looked up first. */
struct snap_table {
	struct snap_entry *e;
	size_t n;
	uint32_t *slots;		/* entry index + 1, 0 = empty */
	size_t mask;
	char *strs;
	unsigned refs;			/* a base: the snapshots using it (owner thread only) */
};

struct garbage {
	struct garbage *next;
	struct devices_sources *src;
};

struct snap {
	struct snap *next;		/* retired list (owner) */
	struct garbage *garbage;	/* tables replaced while this was the newest (owner) */
	struct policy *pol;		/* reference */
	struct devices_sources src;	/* shallow: tables borrowed, the leases array owned */
	struct clients *trusted;	/* owned, NULL = none */
	struct snap_table *base;	/* shared */
	struct snap_table delta;	/* owned */
};

struct obs_msg {
	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} client;
	struct devices_hints h;
	uint64_t ts_ms;			/* when the worker had it (Unix ms): its events' time */
	uint64_t seq;			/* devices_share.seq: the order the workers had them */
	bool evidence;			/* a signature name: qname is set */
	struct names_name qname;
	char group[IDENTITY_NAME_MAX];
};

struct sent_slot {
	uint64_t h;
	int64_t sec;
};

struct devices_reader {
	struct devices_share *sh;
	_Atomic(struct snap *) hazard;
	/* ring: the reader writes head, the owner tail */
	struct obs_msg *ring;
	_Atomic size_t head;
	_Atomic size_t tail;
	_Atomic bool signalled;		/* the owner was woken and has not drained yet */
	size_t stop;			/* the owner's: head when this drain began */
	_Atomic uint64_t dropped, evidence_dropped;
	/* the reader's thread only */
	struct snap *cur;		/* held between identify and record */
	struct devices_record rec;	/* id's strings point here */
	struct sockaddr_storage sa, ecs;
	struct obs_msg msg;		/* the observation being prepared */
	struct dkey key, ipkey;
	bool usable;			/* behaviour may attribute the device (its entry says) */
	struct sent_slot sent[SENT_SLOTS];
};

struct devices_share {
	uv_loop_t *loop;
	struct devices *d;		/* borrowed, NULL until attached */
	_Atomic(struct snap *) cur;
	struct snap *retired, *retired_tail;
	struct devices_reader *readers;
	unsigned nreaders;
	uint64_t seed;
	_Atomic uint64_t suspect[SUSPECT_BITS / 64];
	_Atomic uint64_t seq;		/* numbers the observations across the workers */

	uv_async_t async;
	uv_timer_t timer;
	uv_mutex_t mu;			/* open, against uv_async_send on a closed handle */
	bool open;
	unsigned nopen;
	bool closing, urgent;
	bool draining;			/* replaying: devices_share_sync does nothing */
	struct dkey *pending;		/* devices changed urgently since the base was built */
	size_t npending;
	bool overflow;			/* more than DEVICES_SHARE_PENDING: a full one next */
	uint64_t pub_gen;		/* d->share_gen at the last full build */
	uint64_t last_pub_ms, min_ms, last_full_ms, full_min_ms, timer_due;
	bool timer_armed;
	void (*close_cb)(void *arg);
	void *close_arg;

	uint64_t published, full, entries, observations, ignored;
	uint64_t full_us_last, full_us_max, delta_us_last, delta_us_max;
	bool warned_oom;
};

/* ---- snapshots ---- */

static void
table_clear(struct snap_table *t)
{
	free(t->e);
	free(t->slots);
	free(t->strs);
	memset(t, 0, sizeof(*t));
}

static void
snap_free(struct snap *s)
{
	if (s == NULL)
		return;
	while (s->garbage != NULL) {
		struct garbage *g = s->garbage;
		s->garbage = g->next;
		sources_free(&g->src);
		free(g);
	}
	free(s->src.leases);
	clients_free(&s->trusted);
	if (s->pol != NULL)
		policy_unref(&s->pol);
	if (s->base != NULL && --s->base->refs == 0) {
		table_clear(s->base);
		free(s->base);
	}
	table_clear(&s->delta);
	free(s);
}

static bool
worth(const struct devices_record *r, const char **romv)
{
	*romv = identify_rom_vendor(r);
	/* also any behaviour seen: without an entry a worker takes the device for one that
	 * showed none (its log record's vendor, devices_reader_record) */
	return r->pin_vendor[0] != '\0' || r->pin_group[0] != '\0' || *romv != NULL ||
	       r->nobs > 0 || r->os_families != 0 || r->shared ||
	       r->hostname[0] != '\0' || r->manufacturer[0] != '\0' || r->oui_vendor[0] != '\0';
}

/* Folds s into h, eight octets at a time, its length in the last word. */
static uint64_t
sig_str(uint64_t h, const char *s)
{
	const uint64_t k = UINT64_C(0x9e3779b97f4a7c15);
	uint64_t w;

	if (s[0] == '\0')
		return (h + 1) * k;
	size_t n = strlen(s);

	for (; n >= 8; n -= 8, s += 8) {
		memcpy(&w, s, 8);
		h = (h ^ w) * k;
		h ^= h >> 32;
	}
	w = (uint64_t)n << 56;
	for (size_t i = 0; i < n; i++)
		w ^= (uint64_t)(unsigned char)s[i] << (8 * i);
	h = (h ^ w) * k;
	return h ^ (h >> 32);
}

uint64_t
devices_share_sig(const struct devices_share *sh, const struct devices_record *r)
{
	const char *romv;

	if (!worth(r, &romv))
		return 0;
	/* what table_build copies into the entry, every octet of it */
	uint64_t w = (uint64_t)identify_behaviour_usable(r) | (uint64_t)r->has_mac << 1 |
		     (uint64_t)r->randomised << 2;
	for (size_t i = 0; i < MAC_LEN; i++)
		w |= (uint64_t)r->mac.b[i] << (8 * (i + 1));
	uint64_t h = hash_mix(sh->seed ^ w);
	h = sig_str(h, r->hostname);
	h = sig_str(h, r->manufacturer);
	h = sig_str(h, r->oui_vendor);
	h = sig_str(h, r->pin_vendor);
	h = sig_str(h, r->pin_group);
	h = hash_mix(sig_str(h, romv != NULL ? romv : ""));
	return h != 0 ? h : 1;
}

static size_t
str_bytes(const char *s)
{
	return s != NULL && s[0] != '\0' ? strlen(s) + 1 : 0;
}

static uint32_t
put_str(char *strs, size_t *off, const char *s)
{
	size_t n = str_bytes(s);
	if (n == 0)
		return 0;
	uint32_t at = (uint32_t)*off;
	memcpy(strs + at, s, n);
	*off += n;
	return at;
}

static uint64_t
key_hash(const struct dkey *k, uint64_t seed)
{
	return hash_bytes(k->b, sizeof(k->b), seed);
}

/* Item i of what a table is built from: record i of the table (keys NULL; NULL past the end),
 * or the record of keys[i] (NULL when it is gone). *k: its key. */
static const struct devices_record *
item(struct devices *d, const struct dkey *keys, size_t i, struct dkey *k)
{
	if (keys == NULL) {
		const struct devices_record *r = &d->recs[i];
		if (devices_text_dkey(r->key, k) != 0)
			memset(k, 0, sizeof(*k));
		return r;
	}
	*k = keys[i];
	return devices_table_lookup(d, k);
}

/* Fills t from the table: every device worth it (keys NULL), or the devices of keys[0..nkeys)
 * as they are now, those gone or no longer worth it as 'gone' entries. 0 or -ENOMEM. */
static int
table_build(struct snap_table *t, struct devices *d, const struct dkey *keys, size_t nkeys,
	    uint64_t seed)
{
	size_t count = keys != NULL ? nkeys : d->n, n = 0, bytes = 1, nslots = 16;
	const struct devices_record *r;
	const char *romv;
	struct dkey k;

	memset(t, 0, sizeof(*t));
	for (size_t i = 0; i < count; i++) {
		r = item(d, keys, i, &k);
		bool w = r != NULL && worth(r, &romv);
		if (!w && keys == NULL)
			continue;
		n++;
		if (w)
			bytes += str_bytes(r->hostname) + str_bytes(r->manufacturer) +
				 str_bytes(r->oui_vendor) + str_bytes(r->pin_vendor) +
				 str_bytes(r->pin_group) + str_bytes(romv);
	}
	while (nslots < 2 * n)
		nslots <<= 1;
	t->e = malloc((n ? n : 1) * sizeof(*t->e));
	t->slots = calloc(nslots, sizeof(*t->slots));
	t->strs = malloc(bytes);
	if (t->e == NULL || t->slots == NULL || t->strs == NULL) {
		table_clear(t);
		return -ENOMEM;
	}
	t->mask = nslots - 1;
	t->strs[0] = '\0';
	size_t off = 1;
	for (size_t i = 0; i < count && t->n < n; i++) {
		r = item(d, keys, i, &k);
		bool w = r != NULL && worth(r, &romv);
		if (!w && keys == NULL)
			continue;
		struct snap_entry *e = &t->e[t->n];
		memset(e, 0, sizeof(*e));
		e->k = k;
		e->gone = !w;
		if (w) {
			e->has_mac = r->has_mac;
			e->randomised = r->randomised;
			e->usable = identify_behaviour_usable(r);
			e->mac = r->mac;
			e->s[S_HOST] = put_str(t->strs, &off, r->hostname);
			e->s[S_MANU] = put_str(t->strs, &off, r->manufacturer);
			e->s[S_OUIV] = put_str(t->strs, &off, r->oui_vendor);
			e->s[S_PINV] = put_str(t->strs, &off, r->pin_vendor);
			e->s[S_PING] = put_str(t->strs, &off, r->pin_group);
			e->s[S_ROMV] = put_str(t->strs, &off, romv);
		}
		size_t j = key_hash(&e->k, seed) & t->mask;
		while (t->slots[j] != 0)
			j = (j + 1) & t->mask;
		t->slots[j] = (uint32_t)(t->n + 1);
		t->n++;
	}
	return 0;
}

static const struct snap_entry *
table_find(const struct snap_table *t, const struct dkey *k, uint64_t seed)
{
	if (t == NULL || t->n == 0)
		return NULL;
	for (size_t j = key_hash(k, seed) & t->mask; t->slots[j] != 0; j = (j + 1) & t->mask) {
		const struct snap_entry *e = &t->e[t->slots[j] - 1];
		if (memcmp(&e->k, k, sizeof(*k)) == 0)
			return e;
	}
	return NULL;
}

/* The entry of k in s (its delta first), or NULL. *strs: where its strings are. */
static const struct snap_entry *
snap_find(const struct snap *s, const struct dkey *k, uint64_t seed, const char **strs)
{
	const struct snap_entry *e = table_find(&s->delta, k, seed);
	if (e != NULL) {
		*strs = s->delta.strs;
		return e->gone ? NULL : e;
	}
	e = table_find(s->base, k, seed);
	*strs = s->base != NULL ? s->base->strs : NULL;
	return e;
}

/* A new snapshot of the table: a new base when full (the pending keys then start again),
 * else the current base and a delta of the pending keys. NULL on ENOMEM. */
static struct snap *
snap_build(struct devices_share *sh, struct devices *d, bool full)
{
	struct snap *cur = atomic_load(&sh->cur);
	const struct devices_sources *src = d->src;
	struct snap *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->src = *src;
	s->src.leases = calloc(src->nleases + 1, sizeof(*s->src.leases));
	if (s->src.leases == NULL || devices_trusted_new(policy_config(d->pol), &s->trusted) != 0)
		goto fail;
	memcpy(s->src.leases, src->leases, src->nleases * sizeof(*src->leases));
	s->pol = policy_ref(d->pol);
	if (full || cur == NULL || cur->base == NULL) {
		if ((s->base = calloc(1, sizeof(*s->base))) == NULL ||
		    table_build(s->base, d, NULL, 0, sh->seed) != 0)
			goto fail;
		s->base->refs = 1;
		sh->npending = 0;
		return s;
	}
	s->base = cur->base;
	s->base->refs++;
	if (table_build(&s->delta, d, sh->pending, sh->npending, sh->seed) != 0)
		goto fail;
	return s;
fail:
	if (s->base != NULL && s->base->refs == 0) {
		table_clear(s->base);
		free(s->base);
		s->base = NULL;
	}
	snap_free(s);
	return NULL;
}

/* ---- the owner: publishing and reclaiming ---- */

static bool
held(struct devices_share *sh, const struct snap *s)
{
	for (unsigned i = 0; i < sh->nreaders; i++)
		if (atomic_load(&sh->readers[i].hazard) == s)
			return true;
	return false;
}

/* Frees retired snapshots, oldest first, while no reader holds the oldest: the tables a
 * snapshot's garbage names may be in every older one too. */
static void
reclaim(struct devices_share *sh)
{
	while (sh->retired != NULL && !held(sh, sh->retired)) {
		struct snap *s = sh->retired;
		sh->retired = s->next;
		if (sh->retired == NULL)
			sh->retired_tail = NULL;
		snap_free(s);
	}
}

static void on_timer(uv_timer_t *t);

static void
arm(struct devices_share *sh, uint64_t delay)
{
	uint64_t now = uv_now(sh->loop);
	if (sh->closing || (sh->timer_armed && sh->timer_due <= now + delay))
		return;
	sh->timer_armed = true;
	sh->timer_due = now + delay;
	uv_timer_start(&sh->timer, on_timer, delay, 0);
}

/* Publishes a new snapshot: a full one (a new base) when asked, when the pending keys
 * overflowed or when there is none yet, else the current base and a delta. */
static void
publish(struct devices_share *sh, bool full)
{
	struct devices *d = sh->d;
	if (d == NULL || sh->closing)
		return;
	full = full || sh->overflow || atomic_load(&sh->cur) == NULL;
	uint64_t t0 = uv_hrtime();
	struct snap *s = snap_build(sh, d, full);
	if (s == NULL) {
		if (!sh->warned_oom)
			log_warning("devices: out of memory for the workers' copy of the device "
				    "table: they keep the previous one");
		sh->warned_oom = true;
		return;
	}
	uint64_t us = (uv_hrtime() - t0) / 1000;
	struct snap *old = atomic_exchange(&sh->cur, s);
	if (old != NULL) {
		old->next = NULL;
		if (sh->retired_tail != NULL)
			sh->retired_tail->next = old;
		else
			sh->retired = old;
		sh->retired_tail = old;
	}
	uint64_t now = uv_now(sh->loop);
	sh->urgent = false;
	sh->last_pub_ms = now;
	sh->published++;
	sh->entries = s->base->n + s->delta.n;
	/* at most a tenth of the loop's time goes to either kind under constant change */
	if (full) {
		/* what the base holds of each device: a change moves share_gen (timed with the
		 * build: it is part of a full copy's cost) */
		for (size_t i = 0; i < d->n; i++)
			d->recs[i].share_sig = devices_share_sig(sh, &d->recs[i]);
		us = (uv_hrtime() - t0) / 1000;
		sh->full++;
		sh->overflow = false;
		sh->pub_gen = d->share_gen;
		sh->last_full_ms = now;
		sh->full_us_last = us;
		if (us > sh->full_us_max)
			sh->full_us_max = us;
		sh->full_min_ms = us * 10 / 1000 + 1;
	} else {
		sh->delta_us_last = us;
		if (us > sh->delta_us_max)
			sh->delta_us_max = us;
		sh->min_ms = us * 10 / 1000 + 1;
		if (sh->min_ms < DEVICES_SHARE_MIN_MS)
			sh->min_ms = DEVICES_SHARE_MIN_MS;
	}
	reclaim(sh);
}

/* The idle tick: changes that need no hurry (d->share_gen moved, devices_table_mark_dirty)
 * get a full snapshot within DEVICES_SHARE_IDLE_MS, or ten times a full build's time when
 * that is longer. */
static void
on_timer(uv_timer_t *t)
{
	struct devices_share *sh = t->data;
	uint64_t now = uv_now(sh->loop);

	sh->timer_armed = false;
	if (sh->d != NULL && sh->urgent)
		publish(sh, false);
	uint64_t every = sh->full_min_ms > DEVICES_SHARE_IDLE_MS ? sh->full_min_ms
								 : DEVICES_SHARE_IDLE_MS;
	if (sh->d != NULL && sh->d->share_gen != sh->pub_gen && now - sh->last_full_ms >= every)
		publish(sh, true);
	reclaim(sh);
	uint64_t next = sh->last_full_ms + every > now ? sh->last_full_ms + every - now : every;
	arm(sh, sh->retired != NULL && next > RECLAIM_MS ? RECLAIM_MS : next);
}

void
devices_share_touch(struct devices_share *sh, const char *key)
{
	struct dkey k;

	if (sh == NULL || sh->d == NULL || sh->closing)
		return;
	if (key != NULL && devices_text_dkey(key, &k) == 0) {
		size_t i = 0;
		while (i < sh->npending && memcmp(&sh->pending[i], &k, sizeof(k)) != 0)
			i++;
		if (i == sh->npending && sh->npending < DEVICES_SHARE_PENDING)
			sh->pending[sh->npending++] = k;
		else if (i == sh->npending)
			sh->overflow = true; /* the next one is a full snapshot */
	}
	sh->urgent = true;
	uint64_t now = uv_now(sh->loop), due = sh->last_pub_ms + sh->min_ms;
	arm(sh, due > now ? due - now : 0);
}

void
devices_share_rebuild(struct devices_share *sh)
{
	if (sh != NULL && sh->d != NULL && !sh->closing)
		publish(sh, true);
}

void
devices_share_idle(struct devices_share *sh)
{
	if (sh != NULL && sh->d != NULL && !sh->closing && sh->d->share_gen != sh->pub_gen)
		publish(sh, true);
}

void
devices_share_publish(struct devices_share *sh)
{
	if (sh == NULL || sh->d == NULL || sh->closing)
		return;
	publish(sh, false);
	if (!sh->timer_armed)
		arm(sh, sh->retired != NULL ? RECLAIM_MS : DEVICES_SHARE_IDLE_MS);
}

void
devices_share_snap_romv(struct devices_share *sh, const char *key, char *buf, size_t size)
{
	const struct snap *cur = atomic_load(&sh->cur);
	const char *strs = NULL;
	const struct snap_entry *e = NULL;
	struct dkey k;

	if (cur != NULL && devices_text_dkey(key, &k) == 0)
		e = snap_find(cur, &k, sh->seed, &strs);
	text_copy(buf, size, e != NULL && e->s[S_ROMV] != 0 ? strs + e->s[S_ROMV] : NULL);
}

void
devices_share_retire(struct devices_share *sh, struct devices_sources **src)
{
	struct snap *cur = sh != NULL ? atomic_load(&sh->cur) : NULL;
	struct garbage *g;

	if (*src == NULL)
		return;
	if (cur == NULL) {
		sources_free(src);
		return;
	}
	if ((g = malloc(sizeof(*g))) == NULL) {
		/* a worker may be reading these tables: kept for good rather than freed */
		log_warning("devices: out of memory: replaced source tables kept in memory");
		*src = NULL;
		return;
	}
	g->src = *src;
	g->next = cur->garbage;
	cur->garbage = g;
	*src = NULL;
}

/* ---- the owner: observations ---- */

static uint64_t
suspect_hash(const struct devices_share *sh, const struct dkey *k)
{
	return key_hash(k, sh->seed ^ 0x5bd1e995u) % SUSPECT_BITS;
}

static void
suspect_set(struct devices_share *sh, const struct dkey *k)
{
	uint64_t b = suspect_hash(sh, k);
	atomic_fetch_or(&sh->suspect[b / 64], (uint64_t)1 << (b % 64));
}

static bool
suspect_has(struct devices_share *sh, const struct dkey *k)
{
	uint64_t b = suspect_hash(sh, k);
	return (atomic_load(&sh->suspect[b / 64]) >> (b % 64)) & 1;
}

bool
devices_share_suspect(struct devices_share *sh, const char *key, const struct sockaddr *sa,
		      bool count)
{
	struct dkey k;
	struct devices_ip ip;

	if (sh == NULL)
		return false;
	bool s = devices_text_dkey(key, &k) == 0 && suspect_has(sh, &k);
	if (!s && (sa->sa_family == AF_INET || sa->sa_family == AF_INET6)) {
		identify_ip_of(sa, &ip);
		k = kmap_ip_key(ip.family, ip.addr);
		s = suspect_has(sh, &k);
	}
	if (s && count)
		sh->ignored++;
	return s;
}

static int
group_index(const struct policy *pol, const char *name)
{
	const char *g;
	if (name[0] == '\0')
		return -1;
	for (int i = 0; (g = policy_group_name(pol, i)) != NULL; i++)
		if (strcmp(g, name) == 0)
			return i;
	return -1;
}

static void
replay(struct devices_share *sh, const struct obs_msg *m)
{
	struct devices *d = sh->d;
	const struct policy *pol = devices_int_policy(d);
	struct policy_identity id;
	struct devices_ident ident;

	d->event_ts_ms = m->ts_ms; /* its events come before the query's log record */
	devices_identify(d, pol, &m->client.sa, &m->h, &id, &ident);
	devices_record_query(d, pol, group_index(pol, m->group), m->evidence ? &m->qname : NULL,
			     &ident);
	d->event_ts_ms = 0;
	sh->observations++;
}

/* The queued observations of every worker, in the order the workers had them (smallest seq
 * first): a client's queries answered by two workers count in the order it sent them. */
static void
drain(struct devices_share *sh)
{
	sh->draining = true; /* replay's devices_identify does not drain again */
	for (unsigned i = 0; i < sh->nreaders; i++) {
		struct devices_reader *r = &sh->readers[i];
		/* an exchange (acquire): a reader that saw it set has published its entries */
		(void)atomic_exchange(&r->signalled, false);
		r->stop = atomic_load_explicit(&r->head, memory_order_acquire);
	}
	for (;;) {
		struct devices_reader *next = NULL;
		uint64_t first = 0;
		for (unsigned i = 0; i < sh->nreaders; i++) {
			struct devices_reader *r = &sh->readers[i];
			size_t t = atomic_load_explicit(&r->tail, memory_order_relaxed);
			if (t == r->stop)
				continue;
			uint64_t seq = r->ring[t % DEVICES_SHARE_QUEUE].seq;
			if (next == NULL || seq < first) {
				next = r;
				first = seq;
			}
		}
		if (next == NULL)
			break;
		size_t t = atomic_load_explicit(&next->tail, memory_order_relaxed);
		if (sh->d != NULL && !sh->closing)
			replay(sh, &next->ring[t % DEVICES_SHARE_QUEUE]);
		atomic_store_explicit(&next->tail, t + 1, memory_order_release);
	}
	sh->draining = false;
}

void
devices_share_sync(struct devices_share *sh)
{
	if (sh == NULL || sh->draining)
		return;
	for (unsigned i = 0; i < sh->nreaders; i++) {
		struct devices_reader *r = &sh->readers[i];
		if (atomic_load_explicit(&r->head, memory_order_acquire) !=
		    atomic_load_explicit(&r->tail, memory_order_relaxed)) {
			drain(sh);
			return;
		}
	}
}

static void
on_async(uv_async_t *a)
{
	struct devices_share *sh = a->data;
	drain(sh);
	/* an attribution among them: published now unless the last one is too recent (the
	 * timer then does it), so that the worker's next query already sees it */
	if (sh->urgent && uv_now(sh->loop) >= sh->last_pub_ms + sh->min_ms)
		publish(sh, false);
}

/* ---- life cycle ---- */

int
devices_share_new(uv_loop_t *loop, unsigned nreaders, struct devices_share **out)
{
	struct devices_share *sh = calloc(1, sizeof(*sh));
	if (sh == NULL)
		return -ENOMEM;
	sh->readers = calloc(nreaders ? nreaders : 1, sizeof(*sh->readers));
	if (sh->readers == NULL)
		goto fail;
	for (unsigned i = 0; i < nreaders; i++) {
		sh->readers[i].sh = sh;
		sh->readers[i].ring = calloc(DEVICES_SHARE_QUEUE, sizeof(struct obs_msg));
		if (sh->readers[i].ring == NULL)
			goto fail;
	}
	sh->pending = calloc(DEVICES_SHARE_PENDING, sizeof(*sh->pending));
	if (sh->pending == NULL || uv_mutex_init(&sh->mu) != 0)
		goto fail;
	sh->nreaders = nreaders;
	sh->loop = loop;
	sh->seed = hash_seed();
	sh->min_ms = DEVICES_SHARE_MIN_MS;
	uv_async_init(loop, &sh->async, on_async);
	uv_timer_init(loop, &sh->timer);
	sh->async.data = sh->timer.data = sh;
	sh->open = true;
	sh->nopen = 2;
	*out = sh;
	return 0;
fail:
	if (sh->readers != NULL)
		for (unsigned i = 0; i < nreaders; i++)
			free(sh->readers[i].ring);
	free(sh->readers);
	free(sh->pending);
	free(sh);
	return -ENOMEM;
}

void
devices_share_attach(struct devices_share *sh, struct devices *d)
{
	if (sh->closing)
		return;
	sh->d = d;
	d->share = sh;
	devices_share_publish(sh);
}

static void
on_closed(uv_handle_t *h)
{
	struct devices_share *sh = h->data;
	if (--sh->nopen == 0 && sh->close_cb != NULL)
		sh->close_cb(sh->close_arg);
}

void
devices_share_close(struct devices_share *sh, void (*cb)(void *arg), void *arg)
{
	if (sh->closing)
		return;
	drain(sh); /* what the workers saw so far reaches the table before it is saved */
	sh->closing = true;
	if (sh->d != NULL)
		sh->d->share = NULL; /* from here on the table frees what it replaces itself */
	sh->d = NULL;
	uv_mutex_lock(&sh->mu);
	sh->open = false;
	uv_mutex_unlock(&sh->mu);
	sh->close_cb = cb;
	sh->close_arg = arg;
	uv_timer_stop(&sh->timer);
	uv_close((uv_handle_t *)&sh->timer, on_closed);
	uv_close((uv_handle_t *)&sh->async, on_closed);
}

void
devices_share_free(struct devices_share **shp)
{
	struct devices_share *sh = *shp;
	if (sh == NULL)
		return;
	snap_free(atomic_load(&sh->cur));
	while (sh->retired != NULL) {
		struct snap *s = sh->retired;
		sh->retired = s->next;
		snap_free(s);
	}
	for (unsigned i = 0; i < sh->nreaders; i++)
		free(sh->readers[i].ring);
	free(sh->readers);
	free(sh->pending);
	uv_mutex_destroy(&sh->mu);
	free(sh);
	*shp = NULL;
}

void
devices_share_get_stats(const struct devices_share *sh, struct devices_share_stats *st)
{
	memset(st, 0, sizeof(*st));
	st->published = sh->published;
	st->full = sh->full;
	st->entries = sh->entries;
	st->full_us_last = sh->full_us_last;
	st->full_us_max = sh->full_us_max;
	st->delta_us_last = sh->delta_us_last;
	st->delta_us_max = sh->delta_us_max;
	st->observations = sh->observations;
	st->evidence_ignored = sh->ignored;
	for (const struct snap *s = sh->retired; s != NULL; s = s->next)
		st->retired++;
	for (unsigned i = 0; i < sh->nreaders; i++) {
		st->dropped += atomic_load(&sh->readers[i].dropped);
		st->evidence_dropped += atomic_load(&sh->readers[i].evidence_dropped);
	}
}

struct devices_reader *
devices_share_reader(struct devices_share *sh, unsigned i)
{
	REQUIRE(i < sh->nreaders);
	return &sh->readers[i];
}

/* ---- a worker's reader ---- */

static struct snap *
acquire(struct devices_reader *r)
{
	struct devices_share *sh = r->sh;
	for (;;) {
		struct snap *s = atomic_load(&sh->cur);
		atomic_store(&r->hazard, s);
		if (atomic_load(&sh->cur) == s)
			return s;
	}
}

static void
release(struct devices_reader *r)
{
	r->cur = NULL;
	atomic_store(&r->hazard, NULL);
}

bool
devices_reader_identify(struct devices_reader *r, const struct sockaddr *client,
			const struct devices_hints *h, struct policy_identity *id,
			struct devices_ident *ident)
{
	struct mac hint, m;
	struct devices_ip ip;
	bool has_hint, anonymous;

	struct snap *s = acquire(r);
	if (s == NULL) {
		release(r);
		return false;
	}
	r->cur = s;
	const struct config *cfg = policy_config(s->pol);
	const struct sockaddr *sa = devices_forwarded_client(s->trusted, client, h, &r->ecs, &hint,
							     &has_hint, &anonymous);
	identify_ip_of(sa, &ip);
	bool has_mac = sources_mac(cfg, &s->src, &ip, has_hint ? &hint : NULL, &m);
	r->ipkey = kmap_ip_key(ip.family, ip.addr);
	r->key = has_mac ? kmap_mac_key(&m) : r->ipkey;

	struct devices_record *rec = &r->rec;
	memset(rec, 0, sizeof(*rec));
	rec->inv = -1;
	/* keyed by r->key: spares identify_fill formatting a key text (inet_ntop, snprintf) */
	rec->key[0] = '-';
	r->usable = true;
	const char *strs = NULL;
	const struct snap_entry *e = snap_find(s, &r->key, r->sh->seed, &strs);
	if (e != NULL) {
		rec->has_mac = e->has_mac;
		rec->randomised = e->randomised;
		r->usable = e->usable;
		rec->mac = e->mac;
		text_copy(rec->hostname, sizeof(rec->hostname), strs + e->s[S_HOST]);
		text_copy(rec->manufacturer, sizeof(rec->manufacturer), strs + e->s[S_MANU]);
		text_copy(rec->oui_vendor, sizeof(rec->oui_vendor), strs + e->s[S_OUIV]);
		text_copy(rec->pin_vendor, sizeof(rec->pin_vendor), strs + e->s[S_PINV]);
		text_copy(rec->pin_group, sizeof(rec->pin_group), strs + e->s[S_PING]);
		/* the vendor behaviour gave it, as one rom observation; not when a query of the
		 * device was dropped since (the owner ends the attribution at its next query) */
		if (e->s[S_ROMV] != 0 && !suspect_has(r->sh, &r->key) &&
		    !suspect_has(r->sh, &r->ipkey)) {
			rec->nobs = 1;
			text_copy(rec->obs[0].vendor, sizeof(rec->obs[0].vendor),
				  strs + e->s[S_ROMV]);
			rec->obs[0].rom = rec->obs[0].count = 1;
		}
	}
	identify_fill(cfg, &s->src, sa, has_mac ? &m : NULL, rec);
	memcpy(&r->sa, sa, sockaddr_len(sa));
	identify_policy(cfg, rec, (const struct sockaddr *)&r->sa, id);
	devices_fill_ident(rec, ident);

	/* what the owner needs to replay it: the client as received, its options */
	memset(&r->msg.client, 0, sizeof(r->msg.client));
	size_t len = sockaddr_len(client);
	memcpy(&r->msg.client, client, len <= sizeof(r->msg.client) ? len : sizeof(r->msg.client));
	if (h != NULL)
		r->msg.h = *h;
	else
		memset(&r->msg.h, 0, sizeof(r->msg.h));
	return true;
}

static void
wake_owner(struct devices_reader *r)
{
	struct devices_share *sh = r->sh;
	if (atomic_exchange(&r->signalled, true))
		return; /* the owner has not drained since the last wake-up */
	uv_mutex_lock(&sh->mu);
	if (sh->open)
		uv_async_send(&sh->async);
	uv_mutex_unlock(&sh->mu);
}

/* A signature query's log record shows the vendor it attributes, as devices_record_query()
 * shows it on the owner, when the worker can tell: a rom name, no stronger source (pin,
 * inventory, OUI), behaviour usable and no other vendor with rom evidence. */
static void
predict_vendor(const struct devices_reader *r, const struct policy *pol, int sig,
	       struct devices_ident *ident)
{
	const struct config *cfg = policy_config(pol);
	const struct devices_record *rec = &r->rec;

	if (sig < 0 || (size_t)sig >= cfg->devices.nsignatures)
		return;
	const struct config_signature *sg = &cfg->devices.signatures[sig];
	if (sg->strength != IDENTITY_STRENGTH_ROM || !r->usable ||
	    (rec->vendor_source != IDENTITY_SRC_NONE && rec->vendor_source != IDENTITY_SRC_SIGNATURE &&
	     rec->vendor_source != IDENTITY_SRC_HOSTNAME) ||
	    (rec->nobs > 0 && strcasecmp(rec->obs[0].vendor, sg->vendor) != 0))
		return;
	text_copy(ident->vendor, sizeof(ident->vendor), sg->vendor);
	ident->vendor_source = IDENTITY_SRC_SIGNATURE;
}

void
devices_reader_record(struct devices_reader *r, const struct policy *pol, int group,
		      const struct names_name *qname, struct devices_ident *ident)
{
	struct devices_share *sh = r->sh;

	if (r->cur == NULL)
		return;
	release(r);
	int sig = qname != NULL ? policy_signature(pol, qname) : -1;
	bool evidence = sig >= 0;
	uint64_t kh = key_hash(&r->key, sh->seed);
	int64_t now = (int64_t)time(NULL);
	struct sent_slot *slot = &r->sent[kh % SENT_SLOTS];
	if (!evidence && slot->h == kh && slot->sec == now)
		return; /* this device's sighting went to the owner this second */
	size_t head = atomic_load_explicit(&r->head, memory_order_relaxed);
	size_t tail = atomic_load_explicit(&r->tail, memory_order_acquire);
	if (head - tail >= (evidence ? DEVICES_SHARE_QUEUE : DEVICES_SHARE_QUEUE / 2)) {
		atomic_fetch_add(&r->dropped, 1);
		if (evidence) {
			/* it may have been evidence against an attribution: its device is no
			 * longer attributed from behaviour (devices_share.h) */
			atomic_fetch_add(&r->evidence_dropped, 1);
			suspect_set(sh, &r->key);
			suspect_set(sh, &r->ipkey);
		}
		wake_owner(r);
		return;
	}
	struct obs_msg *m = &r->ring[head % DEVICES_SHARE_QUEUE];
	m->client = r->msg.client;
	m->h = r->msg.h;
	m->evidence = evidence;
	m->seq = atomic_fetch_add_explicit(&sh->seq, 1, memory_order_relaxed);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	m->ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	if (evidence)
		m->qname = *qname;
	text_copy(m->group, sizeof(m->group), policy_group_name(pol, group));
	atomic_store_explicit(&r->head, head + 1, memory_order_release);
	if (evidence && ident != NULL && !suspect_has(sh, &r->key) && !suspect_has(sh, &r->ipkey))
		predict_vendor(r, pol, sig, ident);
	if (!evidence) {
		slot->h = kh;
		slot->sec = now;
	}
	wake_owner(r);
}
