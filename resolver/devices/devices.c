/*
 * devices: the device table of the daemon and the identity of each query (see devices.h).
 *
 * Threads: the loop owns struct devices, the device table and the current source snapshot.
 * Refresh jobs (lease files, ARP table, OUI registry, inventory index) and save jobs (SQLite)
 * run in the libuv thread pool, one of each kind at a time; a refresh job only reads the
 * configuration (immutable, held by a policy reference) and builds new tables, which the loop
 * swaps in when the job is done.
 */
#include "devices.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "clients.h"
#include "hostglob.h"
#include "log.h"
#include "names.h"
#include "neigh6_dump.h"

/* ---- a small hash map: 17-octet key (kind, then up to 16 octets) -> index ---- */

#define KEY_MAC	 1
#define KEY_IPV4 4
#define KEY_IPV6 6

struct dkey {
	uint8_t b[17];
};

struct kslot {
	struct dkey k;
	uint32_t v;
	bool used;
};

struct devices_kmap {
	struct kslot *t;
	size_t cap, n;
	uint64_t seed;
};

static uint64_t
key_hash(const struct dkey *k, uint64_t seed)
{
	uint64_t h = 1469598103934665603ull ^ seed;
	for (size_t i = 0; i < sizeof(k->b); i++) {
		h ^= k->b[i];
		h *= 1099511628211ull;
	}
	return h ^ (h >> 29);
}

static int
kmap_new(size_t expected, struct devices_kmap **out)
{
	struct devices_kmap *m = calloc(1, sizeof(*m));
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
	if (getrandom(&m->seed, sizeof(m->seed), GRND_NONBLOCK) != (ssize_t)sizeof(m->seed))
		m->seed = (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
	*out = m;
	return 0;
}

static void
kmap_free(struct devices_kmap **mp)
{
	if (*mp == NULL)
		return;
	free((*mp)->t);
	free(*mp);
	*mp = NULL;
}

static int
kmap_get(const struct devices_kmap *m, const struct dkey *k)
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

/* Inserts or replaces. 0 or -ENOMEM. */
static int
kmap_put(struct devices_kmap *m, const struct dkey *k, uint32_t v)
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

static struct dkey
mac_key(const struct mac *m)
{
	struct dkey k;
	memset(&k, 0, sizeof(k));
	k.b[0] = KEY_MAC;
	memcpy(k.b + 1, m->b, MAC_LEN);
	return k;
}

static struct dkey
ip_key(const struct devices_ip *ip)
{
	struct dkey k;
	memset(&k, 0, sizeof(k));
	k.b[0] = ip->family == AF_INET ? KEY_IPV4 : KEY_IPV6;
	memcpy(k.b + 1, ip->addr, ip->family == AF_INET ? 4 : 16);
	return k;
}

/* ---- the pure part ---- */

void
devices_ip_text(const struct devices_ip *ip, char *buf, size_t size)
{
	char tmp[INET6_ADDRSTRLEN];
	if (inet_ntop(ip->family == AF_INET ? AF_INET : AF_INET6, ip->addr, tmp, sizeof(tmp)) ==
	    NULL)
		tmp[0] = '\0';
	snprintf(buf, size, "%s", tmp);
}

/* The client address; IPv4-mapped IPv6 as IPv4. */
static void
ip_of(const struct sockaddr *sa, struct devices_ip *ip)
{
	memset(ip, 0, sizeof(*ip));
	if (sa->sa_family == AF_INET) {
		ip->family = AF_INET;
		memcpy(ip->addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		return;
	}
	const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(a, mapped, 12) == 0) {
		ip->family = AF_INET;
		memcpy(ip->addr, a + 12, 4);
		return;
	}
	ip->family = AF_INET6;
	memcpy(ip->addr, a, 16);
}

static void
copy_str(char *dst, size_t size, const char *src)
{
	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	size_t n = strlen(src);
	if (n >= size)
		n = size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static int
build_inventory(const struct config *cfg, struct devices_kmap **by_mac,
		struct devices_kmap **by_ip)
{
	struct devices_kmap *m = NULL, *i = NULL;
	int rc;
	if ((rc = kmap_new(cfg->devices.ninventory, &m)) != 0 ||
	    (rc = kmap_new(cfg->devices.ninventory, &i)) != 0)
		goto cleanup;
	for (size_t k = 0; k < cfg->devices.ninventory; k++) {
		const struct config_device *d = &cfg->devices.inventory[k];
		struct dkey key = mac_key(&d->mac);
		if ((rc = kmap_put(m, &key, (uint32_t)k)) != 0)
			goto cleanup;
		if (d->has_ip) {
			struct devices_ip ip = {.family = (uint8_t)d->ip.family};
			memcpy(ip.addr, d->ip.addr, 16);
			key = ip_key(&ip);
			if ((rc = kmap_put(i, &key, (uint32_t)k)) != 0)
				goto cleanup;
		}
	}
	*by_mac = m;
	*by_ip = i;
	return 0;
cleanup:
	kmap_free(&m);
	kmap_free(&i);
	return rc;
}

static int read_neigh6(struct devices_kmap **map_out, struct mac **macs_out);

void
devices_sources_free(struct devices_sources **sp)
{
	struct devices_sources *s = *sp;
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nleases; i++)
		leases_free(&s->leases[i]);
	free(s->leases);
	neigh_free(&s->arp);
	oui_free(&s->oui);
	kmap_free(&s->inv_mac);
	kmap_free(&s->inv_ip);
	kmap_free(&s->neigh6);
	free(s->neigh6_macs);
	free(s);
	*sp = NULL;
}

int
devices_sources_load(const struct config *cfg, struct diag *diag, struct devices_sources **out)
{
	struct devices_sources *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;
	if (s == NULL)
		return -ENOMEM;
	s->leases = calloc(cfg->devices.nleases + 1, sizeof(*s->leases));
	if (s->leases == NULL)
		goto cleanup;
	s->nleases = cfg->devices.nleases;
	if ((rc = build_inventory(cfg, &s->inv_mac, &s->inv_ip)) != 0)
		goto cleanup;
	for (size_t i = 0; i < cfg->devices.nleases; i++) {
		const struct config_leases *l = &cfg->devices.leases[i];
		rc = leases_read_file((enum leases_format)l->format, l->file, (int64_t)time(NULL),
				      diag, &s->leases[i]);
		if (rc == -ENOMEM)
			goto cleanup;
	}
	if (cfg->devices.arp && cfg->devices.arp_file != NULL) {
		rc = s->arp_rc = neigh_read_file(cfg->devices.arp_file, diag, &s->arp);
		if (rc == -ENOMEM)
			goto cleanup;
		rc = s->neigh6_rc = read_neigh6(&s->neigh6, &s->neigh6_macs);
		if (rc == -ENOMEM)
			goto cleanup;
		if (rc != 0)
			diag_add(diag, DIAG_WARNING, NULL, 0, 0, "devices.arp",
				 "IPv6 neighbours (netlink): %s; IPv6 clients are identified without "
				 "the kernel's table",
				 strerror(-rc));
	}
	if (cfg->devices.oui_dir != NULL) {
		rc = oui_load_dir(cfg->devices.oui_dir, diag, &s->oui);
		if (rc == -ENOMEM)
			goto cleanup;
	}
	*out = s;
	return 0;
cleanup:
	devices_sources_free(&s);
	return -ENOMEM;
}

/*
 * The kernel's IPv6 neighbours (neigh6_dump.c) as an index: address -> (*macs_out)[i]; an
 * address dumped more than once maps to its last entry. Runs in the thread pool. 0, or -errno
 * (the caller keeps its last table).
 */
static int
read_neigh6(struct devices_kmap **map_out, struct mac **macs_out)
{
	struct neigh6 *t = NULL;
	struct devices_kmap *map = NULL;
	struct mac *macs = NULL;
	int rc = neigh6_dump_read(&t);

	if (rc != 0)
		return rc;
	if ((rc = kmap_new(t->n, &map)) != 0)
		goto cleanup;
	if (t->n > 0 && (macs = malloc(t->n * sizeof(*macs))) == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (size_t i = 0; i < t->n; i++) {
		struct devices_ip ip = {.family = AF_INET6};
		memcpy(ip.addr, t->v[i].addr, 16);
		macs[i] = t->v[i].mac;
		struct dkey k = ip_key(&ip);
		if ((rc = kmap_put(map, &k, (uint32_t)i)) != 0)
			goto cleanup;
	}
	*map_out = map;
	*macs_out = macs;
	map = NULL;
	macs = NULL;
cleanup:
	kmap_free(&map);
	free(macs);
	neigh6_free(&t);
	return rc;
}

static const struct leases_entry *
find_lease(const struct devices_sources *src, const struct devices_ip *ip)
{
	if (src == NULL)
		return NULL;
	for (size_t i = 0; i < src->nleases; i++) {
		if (src->leases[i] == NULL)
			continue;
		const struct leases_entry *e = leases_find(src->leases[i], ip->family, ip->addr);
		if (e != NULL)
			return e;
	}
	return NULL;
}

/* The inventory entry of an address or a MAC: hashed when the sources have the index, else a
 * scan (veto explain). -1 when none. */
static int
inv_by_ip(const struct config *cfg, const struct devices_sources *src,
	  const struct devices_ip *ip)
{
	int inv = -1;
	if (src != NULL && src->inv_ip != NULL) {
		struct dkey k = ip_key(ip);
		inv = kmap_get(src->inv_ip, &k);
	} else {
		for (size_t i = 0; i < cfg->devices.ninventory && inv < 0; i++) {
			const struct config_device *d = &cfg->devices.inventory[i];
			if (d->has_ip && d->ip.family == ip->family &&
			    memcmp(d->ip.addr, ip->addr, ip->family == AF_INET ? 4 : 16) == 0)
				inv = (int)i;
		}
	}
	return inv >= 0 && (size_t)inv < cfg->devices.ninventory ? inv : -1;
}

static int
inv_by_mac(const struct config *cfg, const struct devices_sources *src, const struct mac *m)
{
	int inv = -1;
	if (src != NULL && src->inv_mac != NULL) {
		struct dkey k = mac_key(m);
		inv = kmap_get(src->inv_mac, &k);
	} else {
		for (size_t i = 0; i < cfg->devices.ninventory && inv < 0; i++)
			if (mac_equal(&cfg->devices.inventory[i].mac, m))
				inv = (int)i;
	}
	return inv >= 0 && (size_t)inv < cfg->devices.ninventory ? inv : -1;
}

/* The MAC of the client: hint > inventory ip > leases > ARP. */
static bool
find_mac(const struct config *cfg, const struct devices_sources *src,
	 const struct devices_ip *ip, const struct mac *hint, struct mac *out)
{
	if (hint != NULL) {
		*out = *hint;
		return true;
	}
	int inv = inv_by_ip(cfg, src, ip);
	if (inv >= 0) {
		*out = cfg->devices.inventory[inv].mac;
		return true;
	}
	const struct leases_entry *e = find_lease(src, ip);
	if (e != NULL && e->has_mac) {
		*out = e->mac;
		return true;
	}
	if (src != NULL && src->arp != NULL && ip->family == AF_INET) {
		const struct neigh_entry *n = neigh_find(src->arp, ip->addr);
		if (n != NULL) {
			*out = n->mac;
			return true;
		}
	}
	if (src != NULL && src->neigh6 != NULL && ip->family == AF_INET6) {
		struct dkey k = ip_key(ip);
		int i = kmap_get(src->neigh6, &k);
		if (i >= 0) {
			*out = src->neigh6_macs[i];
			return true;
		}
	}
	return false;
}

static int
find_inventory(const struct config *cfg, const struct devices_sources *src,
	       const struct devices_record *rec, const struct devices_ip *ip)
{
	return rec->has_mac ? inv_by_mac(cfg, src, &rec->mac) : inv_by_ip(cfg, src, ip);
}

static void
add_ip(struct devices_record *rec, const struct devices_ip *ip)
{
	size_t i = 0;
	while (i < rec->nips && !(rec->ips[i].family == ip->family &&
				  memcmp(rec->ips[i].addr, ip->addr, 16) == 0))
		i++;
	if (i == 0 && rec->nips > 0)
		return;	/* already the most recent */
	if (i == rec->nips) {
		if (rec->nips < DEVICES_MAX_IPS)
			rec->nips++;
		i = rec->nips - 1;
	}
	memmove(&rec->ips[1], &rec->ips[0], i * sizeof(rec->ips[0]));
	rec->ips[0] = *ip;
}

static void
record_key(const struct devices_record *rec, const struct devices_ip *ip, char *buf, size_t size)
{
	char t[INET6_ADDRSTRLEN];
	if (rec->has_mac) {
		snprintf(buf, size, "mac:%s", mac_format(&rec->mac, t));
		return;
	}
	devices_ip_text(ip, t, sizeof(t));
	snprintf(buf, size, "ip:%s", t);
}

void
devices_fill(const struct config *cfg, const struct devices_sources *src,
	     const struct sockaddr *sa, const struct mac *hint, struct devices_record *rec)
{
	struct devices_ip ip;
	struct mac m;

	ip_of(sa, &ip);
	if (find_mac(cfg, src, &ip, hint, &m)) {
		rec->has_mac = true;
		rec->mac = m;
		rec->randomised = mac_is_randomised(&m);
	}
	if (rec->key[0] == '\0')
		record_key(rec, &ip, rec->key, sizeof(rec->key));
	add_ip(rec, &ip);
	const struct leases_entry *e = find_lease(src, &ip);
	if (e != NULL && (!rec->has_mac || !e->has_mac || mac_equal(&e->mac, &rec->mac))) {
		if (e->hostname != NULL)
			copy_str(rec->hostname, sizeof(rec->hostname), e->hostname);
		if (e->client_id != NULL)
			copy_str(rec->client_id, sizeof(rec->client_id), e->client_id);
		if (e->vendor_class != NULL)
			copy_str(rec->vendor_class, sizeof(rec->vendor_class), e->vendor_class);
	}
	rec->inv = find_inventory(cfg, src, rec, &ip);
	copy_str(rec->inventory, sizeof(rec->inventory),
		 rec->inv >= 0 ? cfg->devices.inventory[rec->inv].name : NULL);
	if (rec->has_mac && !rec->randomised && src != NULL && src->oui != NULL) {
		const struct oui_entry *oe = oui_lookup(src->oui, &rec->mac);
		if (oe != NULL) {
			copy_str(rec->manufacturer, sizeof(rec->manufacturer), oe->org);
			copy_str(rec->oui_vendor, sizeof(rec->oui_vendor),
				 oui_vendor_name((enum oui_vendor)oe->vendor));
		}
	}
	devices_resolve_vendor(cfg, rec);
}

void
devices_resolve_vendor(const struct config *cfg, struct devices_record *rec)
{
	const char *v = NULL;
	uint8_t src = IDENTITY_SRC_NONE;

	if (rec->inv >= 0 && (size_t)rec->inv < cfg->devices.ninventory &&
	    cfg->devices.inventory[rec->inv].vendor != NULL) {
		v = cfg->devices.inventory[rec->inv].vendor;
		src = IDENTITY_SRC_INVENTORY;
	} else if (rec->oui_vendor[0] != '\0' || rec->manufacturer[0] != '\0') {
		v = rec->oui_vendor[0] != '\0' ? rec->oui_vendor : rec->manufacturer;
		src = IDENTITY_SRC_OUI;
	} else if (rec->nobs > 0) {
		const struct devices_obs *best = &rec->obs[0];
		for (size_t i = 1; i < rec->nobs; i++)
			if (rec->obs[i].count > best->count)
				best = &rec->obs[i];
		v = best->vendor;
		src = IDENTITY_SRC_SIGNATURE;
	} else if (rec->hostname[0] != '\0') {
		for (size_t i = 0; i < cfg->devices.nhostname_vendors; i++) {
			const struct config_hostname_vendor *h = &cfg->devices.hostname_vendors[i];
			if (hostglob_match(h->pattern, rec->hostname, strlen(rec->hostname))) {
				v = h->vendor;
				src = IDENTITY_SRC_HOSTNAME;
				break;
			}
		}
	}
	if (v != rec->vendor)
		copy_str(rec->vendor, sizeof(rec->vendor), v);
	rec->vendor_source = src;
}

void
devices_identity(const struct config *cfg, const struct devices_record *rec,
		 const struct sockaddr *sa, struct policy_identity *id)
{
	memset(id, 0, sizeof(*id));
	id->sa = sa;
	id->has_mac = rec->has_mac;
	id->mac = rec->mac;
	id->randomised = rec->has_mac && rec->randomised;
	id->hostname = rec->hostname[0] != '\0' ? rec->hostname : NULL;
	id->vendor = rec->vendor[0] != '\0' ? rec->vendor : NULL;
	id->manufacturer = rec->oui_vendor[0] != '\0'	? rec->oui_vendor
			   : rec->manufacturer[0] != '\0' ? rec->manufacturer
							  : NULL;
	if (rec->inv >= 0 && (size_t)rec->inv < cfg->devices.ninventory) {
		const struct config_device *d = &cfg->devices.inventory[rec->inv];
		id->device = d->name;
		id->tags = (const char *const *)d->tags;
		id->ntags = d->ntags;
	}
}

/* ---- the daemon's table ---- */

struct stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	bool seen;		/* a stat was taken */
};

struct refresh_job {
	uv_work_t req;
	struct devices *d;
	struct policy *pol;		/* reference: the configuration read */
	bool load_oui, build_inv;
	int arp_rc, neigh6_rc;		/* out: as in devices_sources */
	size_t nleases;
	struct stamp *stamps;		/* in: the last ones; out: the new ones */
	struct leases **leases;		/* new tables, NULL = keep */
	struct neigh *arp;		/* new table, NULL = keep */
	struct devices_kmap *neigh6;	/* new IPv6 neighbours, NULL = keep */
	struct mac *neigh6_macs;
	struct oui *oui;
	struct devices_kmap *inv_mac, *inv_ip;
	struct diag diag;
};

struct save_job {
	uv_work_t req;
	struct devices *d;
	struct devices_record *recs;
	size_t n;
	struct devices_event *evs;
	size_t nev;
	int status;
};

struct watch {
	uv_fs_event_t h;
	struct devices *d;
};

struct devices {
	uv_loop_t *loop;
	struct policy *pol;		/* reference: configuration of the sources */
	struct devices_sources *src;	/* the current snapshot (never NULL after new) */
	struct stamp *stamps;
	size_t nstamps;
	struct clients *trusted;

	struct devices_record *recs;
	uint8_t *dirty;
	size_t n, cap;
	struct devices_kmap *index;	/* key (MAC or IP) -> recs index */
	size_t ndirty;
	struct devices_event *evs;	/* pending events */
	size_t nev, evcap;

	struct devices_store *store;	/* NULL: in memory only */
	char *db_path;
	devices_event_cb event_cb;	/* device events go to the query store */
	void *event_arg;

	uv_timer_t arp_timer, save_timer, debounce_timer;
	struct watch **watches;		/* each freed by its close callback */
	size_t nwatches;
	unsigned open_handles;
	struct refresh_job *refresh;
	bool refresh_again, refresh_oui, refresh_inv;
	struct save_job *save;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void start_refresh(struct devices *d);
static void maybe_closed(struct devices *d);

static int64_t
stamp_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static void
on_refresh_work(uv_work_t *req)
{
	struct refresh_job *j = req->data;
	const struct config *cfg = policy_config(j->pol);
	int64_t now = (int64_t)time(NULL);

	for (size_t i = 0; i < j->nleases; i++) {
		const struct config_leases *l = &cfg->devices.leases[i];
		struct stat st;
		struct stamp s = {0};
		if (stat(l->file, &st) == 0) {
			s.dev = st.st_dev;
			s.ino = st.st_ino;
			s.size = st.st_size;
			s.mtime_ns = stamp_ns(&st);
		}
		s.seen = true;
		struct stamp *old = &j->stamps[i];
		if (old->seen && old->dev == s.dev && old->ino == s.ino && old->size == s.size &&
		    old->mtime_ns == s.mtime_ns)
			continue;
		*old = s;
		leases_read_file((enum leases_format)l->format, l->file, now, &j->diag,
				 &j->leases[i]);
	}
	if (cfg->devices.arp && cfg->devices.arp_file != NULL) {
		j->arp_rc = neigh_read_file(cfg->devices.arp_file, NULL, &j->arp);
		j->neigh6_rc = read_neigh6(&j->neigh6, &j->neigh6_macs);
	}
	if (j->load_oui && cfg->devices.oui_dir != NULL) {
		if (oui_load_dir(cfg->devices.oui_dir, &j->diag, &j->oui) != 0)
			j->oui = NULL;
	}
	if (j->build_inv && build_inventory(cfg, &j->inv_mac, &j->inv_ip) != 0) {
		j->inv_mac = j->inv_ip = NULL;
	}
}

static void
refresh_job_free(struct refresh_job *j)
{
	for (size_t i = 0; i < j->nleases; i++)
		leases_free(&j->leases[i]);
	free(j->leases);
	free(j->stamps);
	neigh_free(&j->arp);
	kmap_free(&j->neigh6);
	free(j->neigh6_macs);
	oui_free(&j->oui);
	kmap_free(&j->inv_mac);
	kmap_free(&j->inv_ip);
	diag_clear(&j->diag);
	policy_unref(&j->pol);
	free(j);
}

/* A periodic read (the neighbour tables) is reported when its outcome changes, not every
 * time: once when it starts failing, once when it works again. */
static void
report_read(const char *what, int *last, int rc)
{
	if (rc == *last)
		return;
	if (rc != 0)
		log_warning("devices: %s: %s (keeping the last good table; retried every "
			    "arp_refresh_s)",
			    what, strerror(-rc));
	else
		log_info("devices: %s: readable again", what);
	*last = rc;
}

static void
on_refresh_done(uv_work_t *req, int status)
{
	struct refresh_job *j = req->data;
	struct devices *d = j->d;
	struct devices_sources *s = d->src;

	d->refresh = NULL;
	if (status != 0 || d->closing || j->pol != d->pol) {
		d->refresh_oui = d->refresh_oui || j->load_oui;
		d->refresh_inv = d->refresh_inv || j->build_inv;
		refresh_job_free(j);
		if (d->closing)
			maybe_closed(d);
		else
			start_refresh(d);
		return;
	}
	for (size_t i = 0; i < j->diag.n; i++) {
		const struct diag_entry *e = &j->diag.v[i];
		if (e->level == DIAG_ERROR)
			log_warning("devices: %s (keeping the last good table)", e->text);
	}
	for (size_t i = 0; i < j->nleases && i < s->nleases; i++) {
		if (j->leases[i] != NULL) {
			leases_free(&s->leases[i]);
			s->leases[i] = j->leases[i];
			j->leases[i] = NULL;
			log_debug("devices: %s: %zu leases", policy_config(d->pol)->devices.leases[i].file,
				  s->leases[i]->n);
		}
	}
	memcpy(d->stamps, j->stamps, j->nleases * sizeof(*d->stamps));
	if (policy_config(d->pol)->devices.arp) {
		report_read(policy_config(d->pol)->devices.arp_file, &s->arp_rc, j->arp_rc);
		report_read("IPv6 neighbours (netlink)", &s->neigh6_rc, j->neigh6_rc);
	}
	if (j->arp != NULL) {
		neigh_free(&s->arp);
		s->arp = j->arp;
		j->arp = NULL;
	}
	if (j->neigh6 != NULL) {
		kmap_free(&s->neigh6);
		free(s->neigh6_macs);
		s->neigh6 = j->neigh6;
		s->neigh6_macs = j->neigh6_macs;
		j->neigh6 = NULL;
		j->neigh6_macs = NULL;
	}
	if (j->oui != NULL) {
		oui_free(&s->oui);
		s->oui = j->oui;
		j->oui = NULL;
	}
	if (j->inv_mac != NULL) {
		kmap_free(&s->inv_mac);
		kmap_free(&s->inv_ip);
		s->inv_mac = j->inv_mac;
		s->inv_ip = j->inv_ip;
		j->inv_mac = j->inv_ip = NULL;
	}
	refresh_job_free(j);
	if (d->refresh_again) {
		d->refresh_again = false;
		start_refresh(d);
	}
}

static void
start_refresh(struct devices *d)
{
	const struct config *cfg = policy_config(d->pol);
	if (d->closing)
		return;
	if (d->refresh != NULL) {
		d->refresh_again = true;
		return;
	}
	struct refresh_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		goto oom;
	j->nleases = cfg->devices.nleases;
	j->leases = calloc(j->nleases + 1, sizeof(*j->leases));
	j->stamps = calloc(j->nleases + 1, sizeof(*j->stamps));
	if (j->leases == NULL || j->stamps == NULL) {
		free(j->leases);
		free(j->stamps);
		free(j);
		goto oom;
	}
	memcpy(j->stamps, d->stamps, j->nleases * sizeof(*j->stamps));
	j->d = d;
	j->pol = policy_ref(d->pol);
	j->load_oui = d->refresh_oui;
	j->build_inv = d->refresh_inv;
	d->refresh_oui = d->refresh_inv = false;
	diag_init(&j->diag);
	j->req.data = j;
	int err = uv_queue_work(d->loop, &j->req, on_refresh_work, on_refresh_done);
	if (err != 0) {
		log_warning("devices: cannot start a refresh: %s", uv_strerror(err));
		refresh_job_free(j);
		return;
	}
	d->refresh = j;
	return;
oom:
	log_warning("devices: refresh: out of memory");
}

static void
on_arp_timer(uv_timer_t *t)
{
	struct devices *d = t->data;
	if (!d->closing)
		start_refresh(d);
}

static void
on_debounce(uv_timer_t *t)
{
	struct devices *d = t->data;
	if (!d->closing)
		start_refresh(d);
}

static void
on_lease_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct watch *w = h->data;
	struct devices *d = w->d;
	(void)events;
	(void)filename;
	if (d->closing || status != 0)
		return;
	uv_timer_start(&d->debounce_timer, on_debounce, DEVICES_DEBOUNCE_MS, 0);
}

static int text_dkey(const char *key, struct dkey *out);

/* ---- saving ---- */

static void
on_save_work(uv_work_t *req)
{
	struct save_job *j = req->data;
	j->status = devices_store_save(j->d->store, j->recs, j->n, j->evs, j->nev);
}

static void
save_job_free(struct save_job *j)
{
	free(j->recs);
	free(j->evs);
	free(j);
}

/* A save that failed: its records are marked dirty again and its events put back in front of
 * the ones that came meanwhile (the newest DEVICES_EVENTS_MAX kept), for the next save. */
static void
requeue(struct devices *d, struct save_job *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct dkey k;
		int r = text_dkey(j->recs[i].key, &k) == 0 ? kmap_get(d->index, &k) : -1;
		if (r >= 0 && !d->dirty[r]) {
			d->dirty[r] = 1;
			d->ndirty++;
		}
	}
	size_t total = j->nev + d->nev;
	size_t skip = total > DEVICES_EVENTS_MAX ? total - DEVICES_EVENTS_MAX : 0;
	if (j->nev <= skip)
		return; /* the newer ones fill the queue */
	struct devices_event *ne = malloc((total - skip) * sizeof(*ne));
	if (ne == NULL)
		return; /* lost, as when the queue is full; their log lines remain */
	size_t keep = j->nev - skip;
	memcpy(ne, j->evs + skip, keep * sizeof(*ne));
	if (d->nev > 0)
		memcpy(ne + keep, d->evs, d->nev * sizeof(*ne));
	free(d->evs);
	d->evs = ne;
	d->nev = d->evcap = total - skip;
}

static void
on_save_done(uv_work_t *req, int status)
{
	struct save_job *j = req->data;
	struct devices *d = j->d;
	d->save = NULL;
	if (status == 0 && j->status != 0)
		log_warning("devices: %s: cannot save the device state (will retry)", d->db_path);
	if (status != 0 || j->status != 0)
		requeue(d, j);
	save_job_free(j);
	if (d->closing)
		maybe_closed(d);
}

/* Takes the dirty records and pending events into a new job (NULL: nothing to save). */
static struct save_job *
collect(struct devices *d)
{
	if (d->store == NULL || (d->ndirty == 0 && d->nev == 0))
		return NULL;
	struct save_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->recs = malloc((d->ndirty ? d->ndirty : 1) * sizeof(*j->recs));
	if (j->recs == NULL) {
		free(j);
		return NULL;
	}
	for (size_t i = 0; i < d->n && j->n < d->ndirty; i++) {
		if (!d->dirty[i])
			continue;
		j->recs[j->n++] = d->recs[i];
		d->dirty[i] = 0;
	}
	d->ndirty = 0;
	j->evs = d->evs;
	j->nev = d->nev;
	d->evs = NULL;
	d->nev = d->evcap = 0;
	j->d = d;
	j->req.data = j;
	return j;
}

static void
on_save_timer(uv_timer_t *t)
{
	struct devices *d = t->data;
	if (d->closing || d->save != NULL)
		return;
	struct save_job *j = collect(d);
	if (j == NULL)
		return;
	if (uv_queue_work(d->loop, &j->req, on_save_work, on_save_done) != 0) {
		requeue(d, j); /* cannot happen with a valid loop: try again at the next tick */
		save_job_free(j);
		return;
	}
	d->save = j;
}

/* ---- creation ---- */

static int
mkdirs(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		char ch = buf[i];
		buf[i] = '\0';
		if (mkdir(buf, 0750) != 0 && errno != EEXIST)
			return -errno;
		buf[i] = ch;
	}
	return 0;
}

static struct devices_record *
add_record(struct devices *d, const char *key, int64_t now)
{
	if (d->n >= DEVICES_MAX)
		return NULL;
	if (d->n == d->cap) {
		size_t ncap = d->cap ? d->cap * 2 : 64;
		struct devices_record *nr = realloc(d->recs, ncap * sizeof(*nr));
		if (nr == NULL)
			return NULL;
		d->recs = nr;
		uint8_t *nd = realloc(d->dirty, ncap);
		if (nd == NULL)
			return NULL;
		d->dirty = nd;
		d->cap = ncap;
	}
	struct devices_record *r = &d->recs[d->n];
	memset(r, 0, sizeof(*r));
	r->inv = -1;
	copy_str(r->key, sizeof(r->key), key);
	r->first_seen = r->last_seen = now;
	d->dirty[d->n] = 0;
	d->n++;
	return r;
}

/* Index key of a record key text. */
static int
text_dkey(const char *key, struct dkey *out)
{
	struct devices_ip ip;
	struct mac m;
	memset(&ip, 0, sizeof(ip));
	if (strncmp(key, "mac:", 4) == 0 && mac_parse(key + 4, strlen(key + 4), &m) == 0) {
		*out = mac_key(&m);
		return 0;
	}
	if (strncmp(key, "ip:", 3) != 0)
		return -EINVAL;
	if (inet_pton(AF_INET, key + 3, ip.addr) == 1)
		ip.family = AF_INET;
	else if (inet_pton(AF_INET6, key + 3, ip.addr) == 1)
		ip.family = AF_INET6;
	else
		return -EINVAL;
	*out = ip_key(&ip);
	return 0;
}

static int
on_loaded(void *arg, const struct devices_record *rec)
{
	struct devices *d = arg;
	struct dkey k;
	if (text_dkey(rec->key, &k) != 0 || kmap_get(d->index, &k) >= 0)
		return 0;
	struct devices_record *r = add_record(d, rec->key, rec->first_seen);
	if (r == NULL || kmap_put(d->index, &k, (uint32_t)(d->n - 1)) != 0)
		return -ENOMEM;
	*r = *rec;
	r->inv = -1;
	return 0;
}

static void
open_store(struct devices *d)
{
	const struct config *cfg = policy_config(d->pol);
	char path[4096], err[4608];
	int rc;

	if (devices_db_path(cfg, path, sizeof(path)) != 0) {
		log_warning("devices: state_dir too long: device state kept in memory only");
		return;
	}
	if ((rc = mkdirs(cfg->state_dir)) != 0) {
		log_warning("devices: %s: cannot create the state folder: %s: device state kept "
			    "in memory only", cfg->state_dir, strerror(-rc));
		return;
	}
	err[0] = '\0';
	rc = devices_store_open(path, false, err, sizeof(err), &d->store);
	if (rc < 0) {
		log_warning("devices: %s: device state kept in memory only", err);
		return;
	}
	if (rc == 1)
		log_warning("devices: %s", err);
	d->db_path = strdup(path);
	if (devices_store_load(d->store, on_loaded, d) != 0)
		log_warning("devices: %s: cannot read every saved device", path);
	log_info("devices: %s: %zu devices known", path, d->n);
}

static int
set_trusted(struct devices *d, const struct config *cfg)
{
	struct clients *t = NULL;
	int rc;
	if (cfg->devices.ntrusted > 0) {
		if ((rc = clients_new(&t)) != 0)
			return rc;
		for (size_t i = 0; i < cfg->devices.ntrusted; i++) {
			const struct config_cidr *c = &cfg->devices.trusted[i];
			if ((rc = clients_add(t, c->family, c->addr, c->prefix, 0)) != 0) {
				clients_free(&t);
				return rc;
			}
		}
	}
	clients_free(&d->trusted);
	d->trusted = t;
	return 0;
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct devices *d = h->data;
	if (h->type == UV_FS_EVENT) {
		struct watch *w = h->data;
		d = w->d;
		free(w);
	}
	d->open_handles--;
	maybe_closed(d);
}

/* (Re)creates the folder watchers of the lease files. */
static void
watch_leases(struct devices *d)
{
	const struct config *cfg = policy_config(d->pol);
	if (cfg->devices.nleases == 0)
		return;
	d->watches = calloc(cfg->devices.nleases, sizeof(*d->watches));
	if (d->watches == NULL)
		return;
	for (size_t i = 0; i < cfg->devices.nleases; i++) {
		char buf[4096];
		struct watch *w = calloc(1, sizeof(*w));
		if (w == NULL)
			break;
		d->watches[d->nwatches] = w;
		snprintf(buf, sizeof(buf), "%s", cfg->devices.leases[i].file);
		const char *dir = dirname(buf);
		uv_fs_event_init(d->loop, &w->h);
		w->d = d;
		w->h.data = w;
		d->open_handles++;
		d->nwatches++;
		int err = uv_fs_event_start(&w->h, on_lease_dir_event, dir, 0);
		if (err != 0)
			log_warning("devices: %s: cannot watch for changes: %s (re-read every %us)",
				    dir, uv_strerror(err), (unsigned)cfg->devices.arp_refresh_s);
	}
}

static void
unwatch_leases(struct devices *d)
{
	for (size_t i = 0; i < d->nwatches; i++) {
		uv_fs_event_stop(&d->watches[i]->h);
		uv_close((uv_handle_t *)&d->watches[i]->h, on_handle_closed);
	}
	free(d->watches);
	d->watches = NULL;
	d->nwatches = 0;
}

static int
new_sources(const struct config *cfg, struct devices_sources **out, struct stamp **stamps)
{
	struct devices_sources *s = calloc(1, sizeof(*s));
	if (s == NULL)
		return -ENOMEM;
	s->leases = calloc(cfg->devices.nleases + 1, sizeof(*s->leases));
	*stamps = calloc(cfg->devices.nleases + 1, sizeof(**stamps));
	if (s->leases == NULL || *stamps == NULL ||
	    build_inventory(cfg, &s->inv_mac, &s->inv_ip) != 0) {
		free(*stamps);
		*stamps = NULL;
		devices_sources_free(&s);
		return -ENOMEM;
	}
	s->nleases = cfg->devices.nleases;
	*out = s;
	return 0;
}

int
devices_new(uv_loop_t *loop, struct policy *policy, struct devices **out)
{
	const struct config *cfg = policy_config(policy);
	struct devices *d = calloc(1, sizeof(*d));
	int rc = -ENOMEM;

	if (d == NULL)
		return -ENOMEM;
	d->loop = loop;
	d->pol = policy_ref(policy);
	if (new_sources(cfg, &d->src, &d->stamps) != 0 || kmap_new(256, &d->index) != 0 ||
	    (rc = set_trusted(d, cfg)) != 0)
		goto cleanup;
	d->nstamps = cfg->devices.nleases;
	open_store(d);

	uv_timer_init(loop, &d->arp_timer);
	uv_timer_init(loop, &d->save_timer);
	uv_timer_init(loop, &d->debounce_timer);
	d->arp_timer.data = d->save_timer.data = d->debounce_timer.data = d;
	d->open_handles = 3;
	uint64_t every = (uint64_t)cfg->devices.arp_refresh_s * 1000;
	uv_timer_start(&d->arp_timer, on_arp_timer, every, every);
	uv_timer_start(&d->save_timer, on_save_timer, DEVICES_SAVE_MS, DEVICES_SAVE_MS);
	watch_leases(d);
	d->refresh_oui = true;
	start_refresh(d);
	*out = d;
	return 0;
cleanup:
	devices_sources_free(&d->src);
	free(d->stamps);
	kmap_free(&d->index);
	clients_free(&d->trusted);
	policy_unref(&d->pol);
	free(d);
	return rc;
}

void
devices_reconfigure(struct devices *d, struct policy *policy)
{
	const struct config *cfg = policy_config(policy);
	const struct config *old = policy_config(d->pol);
	struct devices_sources *s = NULL;
	struct stamp *stamps = NULL;

	if (d->closing)
		return;
	if (new_sources(cfg, &s, &stamps) != 0 || set_trusted(d, cfg) != 0) {
		log_warning("devices: reload: out of memory: keeping the device sources");
		devices_sources_free(&s);
		free(stamps);
		return;
	}
	/* the registry is kept when its folder did not change */
	bool same_oui = (old->devices.oui_dir == NULL) == (cfg->devices.oui_dir == NULL) &&
			(cfg->devices.oui_dir == NULL ||
			 strcmp(old->devices.oui_dir, cfg->devices.oui_dir) == 0);
	if (same_oui) {
		s->oui = d->src->oui;
		d->src->oui = NULL;
	}
	devices_sources_free(&d->src);
	d->src = s;
	free(d->stamps);
	d->stamps = stamps;
	d->nstamps = cfg->devices.nleases;
	policy_unref(&d->pol);
	d->pol = policy_ref(policy);
	unwatch_leases(d);
	watch_leases(d);
	uint64_t every = (uint64_t)cfg->devices.arp_refresh_s * 1000;
	uv_timer_start(&d->arp_timer, on_arp_timer, every, every);
	d->refresh_oui = !same_oui;
	start_refresh(d);
}

/* ---- the query path ---- */

static struct devices_record *
lookup(struct devices *d, const struct dkey *k)
{
	int i = kmap_get(d->index, k);
	return i >= 0 ? &d->recs[i] : NULL;
}

static void
mark_dirty(struct devices *d, const struct devices_record *r)
{
	size_t i = (size_t)(r - d->recs);
	if (!d->dirty[i]) {
		d->dirty[i] = 1;
		d->ndirty++;
	}
}

static void
observe(struct devices_record *r, const char *vendor, const char *evidence, int64_t now)
{
	size_t i = 0;
	while (i < r->nobs && strcasecmp(r->obs[i].vendor, vendor) != 0)
		i++;
	if (i == r->nobs) {
		if (r->nobs < DEVICES_MAX_OBS) {
			r->nobs++;
		} else {
			/* replace the weakest */
			i = 0;
			for (size_t k = 1; k < r->nobs; k++)
				if (r->obs[k].count < r->obs[i].count)
					i = k;
		}
		memset(&r->obs[i], 0, sizeof(r->obs[i]));
		copy_str(r->obs[i].vendor, sizeof(r->obs[i].vendor), vendor);
		r->obs[i].first = now;
	}
	r->obs[i].count++;
	r->obs[i].last = now;
	copy_str(r->obs[i].evidence, sizeof(r->obs[i].evidence), evidence);
}

static void
add_event(struct devices *d, const struct devices_event *e)
{
	if (d->nev == d->evcap) {
		if (d->nev >= DEVICES_EVENTS_MAX)
			return;	/* not saved for a long time: drop, the log line remains */
		size_t ncap = d->evcap ? d->evcap * 2 : 16;
		if (ncap > DEVICES_EVENTS_MAX)
			ncap = DEVICES_EVENTS_MAX;
		struct devices_event *ne = realloc(d->evs, ncap * sizeof(*ne));
		if (ne == NULL)
			return;
		d->evs = ne;
		d->evcap = ncap;
	}
	d->evs[d->nev++] = *e;
}

static const char *
display_name(const struct devices_record *r)
{
	if (r->inventory[0] != '\0')
		return r->inventory;
	if (r->hostname[0] != '\0')
		return r->hostname;
	return NULL;
}

/* Reports a device event (first sight, vendor attribution, group change) to the event callback:
 * the query store. Rare, so the short lock it takes in querylog is fine. */
static void
emit_event(struct devices *d, const char *kind, const struct devices_record *r,
	   const struct sockaddr *client, const char *old_group, const char *new_group,
	   const char *evidence)
{
	if (d->event_cb == NULL)
		return;
	struct identity_event ev;
	memset(&ev, 0, sizeof(ev));
	copy_str(ev.kind, sizeof(ev.kind), kind);
	copy_str(ev.device, sizeof(ev.device), display_name(r));
	if (r->has_mac)
		mac_format(&r->mac, ev.mac);
	if (client->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)client)->sin_addr, ev.client,
			  sizeof(ev.client));
	else if (client->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)client)->sin6_addr, ev.client,
			  sizeof(ev.client));
	copy_str(ev.old_group, sizeof(ev.old_group), old_group);
	copy_str(ev.new_group, sizeof(ev.new_group), new_group);
	copy_str(ev.vendor, sizeof(ev.vendor), r->vendor);
	copy_str(ev.evidence, sizeof(ev.evidence), evidence);
	d->event_cb(d->event_arg, &ev);
}

void
devices_set_event_cb(struct devices *d, devices_event_cb cb, void *arg)
{
	d->event_cb = cb;
	d->event_arg = arg;
}

int
devices_query(struct devices *d, const struct policy *pol, const struct sockaddr *client,
	      const struct devices_hints *dq, struct devices_ident *ident)
{
	const struct config *cfg = policy_config(pol);
	const struct sockaddr *sa = client;
	struct sockaddr_storage ecs;
	struct mac hint, m;
	bool has_hint = false;
	struct devices_ip ip;
	struct devices_record tmp, *r;
	struct policy_identity id;
	int64_t now = (int64_t)time(NULL);

	if (d->trusted != NULL && clients_find(d->trusted, client) >= 0) {
		if (dq->has_mac) {
			memcpy(hint.b, dq->mac, MAC_LEN);
			has_hint = !mac_is_zero(&hint) && !mac_is_multicast(&hint);
		}
		if (dq->has_ecs &&
		    dq->ecs_prefix == (dq->ecs_family == AF_INET ? 32 : 128)) {
			memset(&ecs, 0, sizeof(ecs));
			if (dq->ecs_family == AF_INET) {
				struct sockaddr_in *in = (struct sockaddr_in *)&ecs;
				in->sin_family = AF_INET;
				memcpy(&in->sin_addr, dq->ecs_addr, 4);
			} else {
				struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ecs;
				in6->sin6_family = AF_INET6;
				memcpy(&in6->sin6_addr, dq->ecs_addr, 16);
			}
			sa = (const struct sockaddr *)&ecs;
		}
	}
	ip_of(sa, &ip);
	struct dkey k;
	if (find_mac(cfg, d->src, &ip, has_hint ? &hint : NULL, &m)) {
		k = mac_key(&m);
		has_hint = true;
		hint = m;
	} else {
		k = ip_key(&ip);
	}
	r = lookup(d, &k);
	bool first_seen = false;
	if (r == NULL) {
		first_seen = true;
		r = add_record(d, "", now);
		if (r != NULL && kmap_put(d->index, &k, (uint32_t)(d->n - 1)) != 0) {
			d->n--;
			r = NULL;
		}
	}
	if (r == NULL) {	/* table full: identify without remembering */
		memset(&tmp, 0, sizeof(tmp));
		tmp.inv = -1;
		r = &tmp;
	}
	devices_fill(cfg, d->src, sa, has_hint ? &hint : NULL, r);
	r->last_seen = now;
	devices_identity(cfg, r, sa, &id);
	int group = policy_client_group_ex(pol, &id, NULL);
	copy_str(r->group, sizeof(r->group), policy_group_name(pol, group));
	if (first_seen && r != &tmp)
		emit_event(d, "first_seen", r, sa, NULL, r->group, r->has_mac ? "mac" : "address");

	int sig = dq->qname != NULL ? policy_signature(pol, dq->qname) : -1;
	if (sig >= 0 && (size_t)sig < cfg->devices.nsignatures) {
		const char *vendor = cfg->devices.signatures[sig].vendor;
		char qname[NAMES_MAX_TEXT], old_vendor[IDENTITY_VENDOR_MAX];
		names_to_text(dq->qname, qname);
		copy_str(old_vendor, sizeof(old_vendor), r->vendor);
		observe(r, vendor, qname, now);
		devices_resolve_vendor(cfg, r);
		if (strcmp(old_vendor, r->vendor) != 0) {
			struct devices_event e;
			memset(&e, 0, sizeof(e));
			devices_identity(cfg, r, sa, &id);
			int ng = policy_client_group_ex(pol, &id, NULL);
			const char *og = policy_group_name(pol, group);
			const char *nn = policy_group_name(pol, ng);
			e.ts = now;
			copy_str(e.key, sizeof(e.key), r->key);
			copy_str(e.device, sizeof(e.device), display_name(r));
			copy_str(e.old_group, sizeof(e.old_group), og);
			copy_str(e.new_group, sizeof(e.new_group), nn);
			copy_str(e.vendor, sizeof(e.vendor), r->vendor);
			copy_str(e.evidence, sizeof(e.evidence), qname);
			log_info("devices: %s%s%s: vendor '%s' (was '%s') from query '%s': group '%s' "
				 "-> '%s'", r->key, display_name(r) ? " " : "",
				 display_name(r) ? display_name(r) : "", r->vendor, old_vendor, qname,
				 og ? og : "(none)", nn ? nn : "(none)");
			copy_str(r->group, sizeof(r->group), nn);
			if (r != &tmp) {
				add_event(d, &e);
				emit_event(d, "vendor", r, sa, og, nn, qname);
				if (ng != group)
					emit_event(d, "group_change", r, sa, og, nn, qname);
			}
		}
	}
	if (r != &tmp)
		mark_dirty(d, r);

	ident->has_mac = r->has_mac;
	ident->mac = r->mac;
	copy_str(ident->device, sizeof(ident->device), display_name(r));
	copy_str(ident->vendor, sizeof(ident->vendor), r->vendor);
	ident->vendor_source = r->vendor_source;
	return group;
}

size_t
devices_count(const struct devices *d)
{
	return d->n;
}

const struct devices_record *
devices_find(const struct devices *d, const char *key)
{
	struct dkey k;
	if (text_dkey(key, &k) != 0)
		return NULL;
	int i = kmap_get(d->index, &k);
	return i >= 0 ? &d->recs[i] : NULL;
}

/* ---- close ---- */

static void
maybe_closed(struct devices *d)
{
	if (!d->closing || d->open_handles > 0 || d->refresh != NULL || d->save != NULL ||
	    d->close_cb == NULL)
		return;
	/* last save, on the loop: everything else has stopped */
	struct save_job *j = collect(d);
	if (j != NULL) {
		if (devices_store_save(d->store, j->recs, j->n, j->evs, j->nev) != 0)
			log_warning("devices: %s: cannot save the device state", d->db_path);
		save_job_free(j);
	}
	void (*cb)(void *) = d->close_cb;
	d->close_cb = NULL;
	cb(d->close_arg);
}

void
devices_close(struct devices *d, void (*cb)(void *arg), void *arg)
{
	if (d->closing)
		return;
	d->closing = true;
	d->close_cb = cb;
	d->close_arg = arg;
	uv_timer_stop(&d->arp_timer);
	uv_timer_stop(&d->save_timer);
	uv_timer_stop(&d->debounce_timer);
	uv_close((uv_handle_t *)&d->arp_timer, on_handle_closed);
	uv_close((uv_handle_t *)&d->save_timer, on_handle_closed);
	uv_close((uv_handle_t *)&d->debounce_timer, on_handle_closed);
	unwatch_leases(d);
	if (d->refresh != NULL)
		uv_cancel((uv_req_t *)&d->refresh->req);
	if (d->save != NULL)
		uv_cancel((uv_req_t *)&d->save->req);
}

void
devices_free(struct devices **dp)
{
	struct devices *d = *dp;
	if (d == NULL)
		return;
	devices_sources_free(&d->src);
	free(d->stamps);
	kmap_free(&d->index);
	clients_free(&d->trusted);
	devices_store_close(&d->store);
	free(d->db_path);
	free(d->recs);
	free(d->dirty);
	free(d->evs);
	free(d->watches);
	policy_unref(&d->pol);
	free(d);
	*dp = NULL;
}
