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
#include <sys/stat.h>
#include <time.h>

#include "clients.h"
#include "devices_store.h"
#include "check.h"
#include "fileio.h"
#include "log.h"
#include "names.h"
#include "sockaddr.h"
#include "text.h"

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
	struct kmap *neigh6;	/* new IPv6 neighbours, NULL = keep */
	struct mac *neigh6_macs;
	struct oui *oui;
	struct kmap *inv_mac, *inv_ip;
	struct diag diag;
};

struct save_job {
	uv_work_t req;
	struct devices *d;
	struct devices_record *recs;
	size_t n;
	char (*gone)[DEVICES_KEY_MAX];	/* devices forgotten since the last save */
	size_t ngone;
	bool keep_only;			/* gone overflowed: keep only the keys of recs... */
	char (*keep)[DEVICES_KEY_MAX];	/* ...and of keep, every device in the table */
	size_t nkeep;
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
	struct kmap *index;	/* key (MAC or IP) -> recs index */
	size_t ndirty;
	struct devices_record *cur;	/* between devices_identify and devices_record_query */
	struct devices_record tmp;	/* cur when the table is full: identified, not kept */
	struct sockaddr_storage cur_sa;	/* the address cur was identified for */
	bool cur_new;			/* cur was added by this query */
	size_t max;			/* devices.max_devices */
	char (*gone)[DEVICES_KEY_MAX];	/* forgotten, to be deleted from the store (<= max) */
	size_t ngone;
	bool gone_overflow;		/* more were forgotten: the next save keeps only the table */
	uint64_t evicted, expired;	/* since start */
	uint64_t evicted_attributed;
	uint64_t evicted_reported, attributed_reported;
	uint64_t unrecorded;		/* queries whose device could not be kept (table full of
					   devices that are never evicted) */
	uint64_t unrecorded_reported;
	int64_t full_warned;		/* when the table-full warning was last logged */

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
		j->neigh6_rc = sources_read_neigh6(&j->neigh6, &j->neigh6_macs);
	}
	if (j->load_oui && cfg->devices.oui_dir != NULL) {
		if (oui_load_dir(cfg->devices.oui_dir, &j->diag, &j->oui) != 0)
			j->oui = NULL;
	}
	if (j->build_inv && sources_build_inventory(cfg, &j->inv_mac, &j->inv_ip) != 0) {
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

/* ---- forgetting: expiry and eviction ---- */

/* Queues key for deletion from the saved state; beyond max queued keys, the next save keeps only
 * the devices of the table instead. */
static void
forget_key(struct devices *d, const char *key)
{
	if (d->store == NULL)
		return;
	if (d->ngone == d->max || d->gone_overflow) {
		d->gone_overflow = true;
		return;
	}
	if (d->gone == NULL) {
		d->gone = malloc(d->max * sizeof(*d->gone));
		if (d->gone == NULL) {
			d->gone_overflow = true;
			return;
		}
	}
	memcpy(d->gone[d->ngone++], key, DEVICES_KEY_MAX);
}

/* Removes the records marked in victim[0..n), keeping the others in order. Returns how many. */
static size_t
remove_marked(struct devices *d, const uint8_t *victim)
{
	size_t w = 0, removed = 0;
	struct dkey k;

	for (size_t i = 0; i < d->n; i++) {	/* deletions first: the index never grows below */
		if (!victim[i])
			continue;
		if (text_dkey(d->recs[i].key, &k) == 0)
			kmap_del(d->index, &k);
		if (d->dirty[i])
			d->ndirty--;
		forget_key(d, d->recs[i].key);
		removed++;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (victim[i])
			continue;
		if (w != i) {
			d->recs[w] = d->recs[i];
			d->dirty[w] = d->dirty[i];
			if (text_dkey(d->recs[w].key, &k) == 0)
				INSIST(kmap_put(d->index, &k, (uint32_t)w) == 0); /* a replacement */
		}
		w++;
	}
	d->n = w;
	return removed;
}

/* Removes record i (the last record takes its place). O(1). */
static void
remove_one(struct devices *d, size_t i)
{
	struct dkey k;

	if (text_dkey(d->recs[i].key, &k) == 0)
		kmap_del(d->index, &k);
	if (d->dirty[i])
		d->ndirty--;
	forget_key(d, d->recs[i].key);
	size_t last = d->n - 1;
	if (i != last) {
		d->recs[i] = d->recs[last];
		d->dirty[i] = d->dirty[last];
		if (text_dkey(d->recs[i].key, &k) == 0)
			INSIST(kmap_put(d->index, &k, (uint32_t)i) == 0); /* a replacement */
	}
	d->n--;
}

/* Which devices go first when the table is full: -1 never (inventory devices); then devices
 * without an attribution before those with one, and among each, devices known only by their
 * address before those with a MAC. */
static int
evict_rank(const struct devices_record *r)
{
	if (r->inventory[0] != '\0')
		return -1;
	bool attributed = r->vendor_source == IDENTITY_SRC_SIGNATURE || r->nobs > 0;
	return (attributed ? 2 : 0) + (r->has_mac ? 1 : 0);
}

struct candidate {
	int rank;
	int64_t last_seen;
	uint32_t i;
};

static int
cmp_candidate(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	if (x->last_seen != y->last_seen)
		return x->last_seen < y->last_seen ? -1 : 1;
	return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * The table is full: forgets a sixteenth of it (at least what brings it below max), in
 * evict_rank order, least recently seen first. O(n log n), once per max/16 new devices. Returns
 * how many were forgotten (0: every device is one that is never evicted).
 */
static size_t
evict(struct devices *d)
{
	size_t want = d->max / 16 > 0 ? d->max / 16 : 1, nc = 0;

	if (d->n >= d->max && d->n - d->max + 1 > want)
		want = d->n - d->max + 1;
	struct candidate *c = malloc(d->n * sizeof(*c));
	uint8_t *victim = calloc(d->n ? d->n : 1, 1);
	if (c == NULL || victim == NULL) {
		free(c);
		free(victim);
		return 0;
	}
	for (size_t i = 0; i < d->n; i++) {
		int rank = evict_rank(&d->recs[i]);
		if (rank >= 0)
			c[nc++] = (struct candidate){rank, d->recs[i].last_seen, (uint32_t)i};
	}
	qsort(c, nc, sizeof(*c), cmp_candidate);
	if (want > nc)
		want = nc;
	for (size_t i = 0; i < want; i++) {
		victim[c[i].i] = 1;
		if (c[i].rank >= 2)
			d->evicted_attributed++;
	}
	size_t removed = remove_marked(d, victim);
	d->evicted += removed;
	free(c);
	free(victim);
	return removed;
}

/* Forgets the devices known only by their address that sent no query for address_ttl_s: the
 * address may belong to another device now, which starts clean. */
static void
expire(struct devices *d, int64_t now)
{
	const struct config *cfg = policy_config(d->pol);
	int64_t before = now - (int64_t)cfg->devices.address_ttl_s;
	uint8_t *victim = NULL;
	size_t n = 0;

	for (size_t i = 0; i < d->n; i++) {
		const struct devices_record *r = &d->recs[i];
		if (r->has_mac || r->inventory[0] != '\0' || r->last_seen >= before)
			continue;
		if (victim == NULL && (victim = calloc(d->n, 1)) == NULL)
			return;
		victim[i] = 1;
		n++;
	}
	if (n == 0)
		return;
	size_t removed = remove_marked(d, victim);
	free(victim);
	d->expired += removed;
	log_info("devices: forgot %zu devices known only by their address (no query for %us)",
		 removed, (unsigned)cfg->devices.address_ttl_s);
}

/* Evictions, and a table full of devices that are never evicted: said at most once a minute,
 * with the counts since the last report. */
static void
report_full(struct devices *d, int64_t now)
{
	if (now - d->full_warned < 60)
		return;
	if (d->evicted != d->evicted_reported) {
		log_info("devices: the table is full (devices.max_devices %zu): forgot %llu devices "
			 "(%llu of them with an attribution), least recently seen first",
			 d->max, (unsigned long long)(d->evicted - d->evicted_reported),
			 (unsigned long long)(d->evicted_attributed - d->attributed_reported));
		d->evicted_reported = d->evicted;
		d->attributed_reported = d->evicted_attributed;
		d->full_warned = now;
	}
	if (d->unrecorded == d->unrecorded_reported)
		return;
	log_warning("devices: the device table is full (%zu devices, none of which may be "
		    "forgotten): %llu queries identified without being remembered; raise "
		    "devices.max_devices", d->n,
		    (unsigned long long)(d->unrecorded - d->unrecorded_reported));
	d->unrecorded_reported = d->unrecorded;
	d->full_warned = now;
}

/* ---- saving ---- */

static void
on_save_work(uv_work_t *req)
{
	struct save_job *j = req->data;
	j->status = devices_store_save(j->d->store, j->recs, j->n);
	if (j->status == 0 && j->ngone > 0)
		j->status = devices_store_delete(j->d->store, j->gone, j->ngone);
	if (j->status == 0 && j->keep_only)
		j->status = devices_store_keep_only(j->d->store, j->keep, j->nkeep);
}

static void
save_job_free(struct save_job *j)
{
	free(j->recs);
	free(j->gone);
	free(j->keep);
	free(j);
}

/* A save that failed: its records are marked dirty again for the next save, its deletions
 * queued again. */
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
	for (size_t i = 0; i < j->ngone; i++)
		forget_key(d, j->gone[i]);
	if (j->keep_only)
		d->gone_overflow = true;
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

/* Takes the dirty records and the forgotten keys into a new job (NULL: nothing to save). */
static struct save_job *
collect(struct devices *d)
{
	if (d->store == NULL || (d->ndirty == 0 && d->ngone == 0 && !d->gone_overflow))
		return NULL;
	struct save_job *j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->recs = malloc((d->ndirty ? d->ndirty : 1) * sizeof(*j->recs));
	if (j->recs == NULL) {
		free(j);
		return NULL;
	}
	if (d->gone_overflow) {
		j->keep = malloc((d->n ? d->n : 1) * sizeof(*j->keep));
		if (j->keep == NULL) {
			save_job_free(j);
			return NULL;
		}
		for (size_t i = 0; i < d->n; i++)
			memcpy(j->keep[i], d->recs[i].key, DEVICES_KEY_MAX);
		j->nkeep = d->n;
		j->keep_only = true;
		d->gone_overflow = false;
	}
	j->gone = d->gone;
	j->ngone = d->ngone;
	d->gone = NULL;
	d->ngone = 0;
	for (size_t i = 0; i < d->n && j->n < d->ndirty; i++) {
		if (!d->dirty[i])
			continue;
		j->recs[j->n++] = d->recs[i];
		d->dirty[i] = 0;
	}
	d->ndirty = 0;
	j->d = d;
	j->req.data = j;
	return j;
}

static void
on_save_timer(uv_timer_t *t)
{
	struct devices *d = t->data;
	int64_t now = (int64_t)time(NULL);

	if (d->closing)
		return;
	expire(d, now);
	report_full(d, now);
	if (d->save != NULL)
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

static size_t evict(struct devices *d);

static struct devices_record *
add_record(struct devices *d, const char *key, int64_t now)
{
	if (d->n >= d->max && evict(d) == 0)
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
	text_copy(r->key, sizeof(r->key), key);
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
		*out = kmap_mac_key(&m);
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
	*out = kmap_ip_key(ip.family, ip.addr);
	return 0;
}

static int
on_loaded(void *arg, const struct devices_record *rec)
{
	struct devices *d = arg;
	struct dkey k;
	if (text_dkey(rec->key, &k) != 0 || kmap_get(d->index, &k) >= 0)
		return 0;
	if (d->n >= d->max) {	/* newest first: the rest is older than the table holds */
		d->gone_overflow = true;	/* the next save drops it from the file too */
		return 0;
	}
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

	if (devices_store_path(cfg, path, sizeof(path)) != 0) {
		log_warning("devices: state_dir too long: device state kept in memory only");
		return;
	}
	if ((rc = fileio_mkdir_p(cfg->state_dir, 0750)) != 0) {
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
	d->max = cfg->devices.max_devices;
	d->stamps = calloc(cfg->devices.nleases + 1, sizeof(*d->stamps));
	if (d->stamps == NULL || sources_carry(NULL, NULL, cfg, &d->src, NULL) != 0 ||
	    kmap_new(256, &d->index) != 0 ||
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
	sources_free(&d->src);
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
	struct stamp *stamps = calloc(cfg->devices.nleases + 1, sizeof(*stamps));
	bool same_oui = false;

	if (d->closing)
		return;
	if (stamps == NULL || sources_carry(old, d->src, cfg, &s, &same_oui) != 0 ||
	    set_trusted(d, cfg) != 0) {
		log_warning("devices: reload: out of memory: keeping the device sources");
		sources_free(&s);
		free(stamps);
		return;
	}
	/* the tables carried over stay until their refresh lands: a lease-known device is
	 * still known by its MAC in the meantime */
	sources_free(&d->src);
	d->src = s;
	free(d->stamps);
	d->stamps = stamps;
	d->nstamps = cfg->devices.nleases;
	policy_unref(&d->pol);
	d->pol = policy_ref(policy);
	d->max = cfg->devices.max_devices;	/* a lower bound applies at the next new device */
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
	text_copy(ev.kind, sizeof(ev.kind), kind);
	text_copy(ev.key, sizeof(ev.key), r->key);
	text_copy(ev.device, sizeof(ev.device), identify_display_name(r));
	if (r->has_mac)
		mac_format(&r->mac, ev.mac);
	if (client->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)client)->sin_addr, ev.client,
			  sizeof(ev.client));
	else if (client->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)client)->sin6_addr, ev.client,
			  sizeof(ev.client));
	text_copy(ev.old_group, sizeof(ev.old_group), old_group);
	text_copy(ev.new_group, sizeof(ev.new_group), new_group);
	text_copy(ev.vendor, sizeof(ev.vendor), r->vendor);
	text_copy(ev.evidence, sizeof(ev.evidence), evidence);
	d->event_cb(d->event_arg, &ev);
}

void
devices_set_event_cb(struct devices *d, devices_event_cb cb, void *arg)
{
	d->event_cb = cb;
	d->event_arg = arg;
}

/* The address a query from a trusted forwarder stands for (a host ECS option), else client;
 * its MAC option into *hint; *anonymous when a trusted forwarder's query names no client. */
static const struct sockaddr *
forwarded_client(const struct devices *d, const struct sockaddr *client,
		 const struct devices_hints *h, struct sockaddr_storage *ecs, struct mac *hint,
		 bool *has_hint, bool *anonymous)
{
	*has_hint = false;
	*anonymous = false;
	if (d->trusted == NULL || h == NULL || clients_find(d->trusted, client) < 0)
		return client;
	if (h->has_mac) {
		memcpy(hint->b, h->mac, MAC_LEN);
		*has_hint = !mac_is_zero(hint) && !mac_is_multicast(hint);
	}
	if (!h->has_ecs || h->ecs_prefix != (h->ecs_family == AF_INET ? 32 : 128)) {
		/* a forwarder's query that names no client: the forwarder's address stands
		 * for every device behind it */
		*anonymous = !*has_hint;
		return client;
	}
	memset(ecs, 0, sizeof(*ecs));
	if (h->ecs_family == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)ecs;
		in->sin_family = AF_INET;
		memcpy(&in->sin_addr, h->ecs_addr, 4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ecs;
		in6->sin6_family = AF_INET6;
		memcpy(&in6->sin6_addr, h->ecs_addr, 16);
	}
	return (const struct sockaddr *)ecs;
}

/* The address sa is now known with a MAC (a lease or neighbour entry): a record kept for it by
 * address alone, and any attribution on it, ends; the device continues under its MAC. */
static void
forget_address_record(struct devices *d, const struct sockaddr *sa)
{
	struct devices_ip ip;

	identify_ip_of(sa, &ip);
	struct dkey k = kmap_ip_key(ip.family, ip.addr);
	int i = kmap_get(d->index, &k);
	if (i < 0 || d->recs[i].inventory[0] != '\0')
		return;
	if (d->recs[i].vendor[0] != '\0')
		log_info("devices: %s: the address now belongs to a device with a MAC: its record "
			 "(vendor '%s') ends", d->recs[i].key, d->recs[i].vendor);
	remove_one(d, (size_t)i);
}

static void
fill_ident(const struct devices_record *r, struct devices_ident *ident)
{
	ident->has_mac = r->has_mac;
	ident->mac = r->mac;
	text_copy(ident->device, sizeof(ident->device), identify_display_name(r));
	text_copy(ident->vendor, sizeof(ident->vendor), r->vendor);
	ident->vendor_source = r->vendor_source;
}

void
devices_identify(struct devices *d, const struct policy *pol, const struct sockaddr *client,
		 const struct devices_hints *h, struct policy_identity *id,
		 struct devices_ident *ident)
{
	const struct config *cfg = policy_config(pol);
	struct sockaddr_storage ecs;
	struct mac hint, m;
	bool has_hint;
	char key[DEVICES_KEY_MAX];
	struct dkey k;
	int64_t now = (int64_t)time(NULL);

	bool anonymous;
	const struct sockaddr *sa =
		forwarded_client(d, client, h, &ecs, &hint, &has_hint, &anonymous);
	bool has_mac = identify_key(cfg, d->src, sa, has_hint ? &hint : NULL, key, &m);
	if (text_dkey(key, &k) != 0) { /* cannot happen: identify_key writes a valid key */
		memset(&k, 0, sizeof(k));
	}
	if (has_mac)
		forget_address_record(d, sa);
	struct devices_record *r = lookup(d, &k);
	d->cur_new = false;
	if (r == NULL) {
		d->cur_new = true;
		r = add_record(d, "", now);
		if (r != NULL && kmap_put(d->index, &k, (uint32_t)(d->n - 1)) != 0) {
			d->n--;
			r = NULL;
		}
	}
	if (r == NULL) {	/* table full: identify without remembering */
		d->unrecorded++;
		memset(&d->tmp, 0, sizeof(d->tmp));
		d->tmp.inv = -1;
		r = &d->tmp;
	}
	identify_fill(cfg, d->src, sa, has_mac ? &m : NULL, r);
	r->last_seen = now;
	if (anonymous)
		r->shared = true;
	memcpy(&d->cur_sa, sa, sockaddr_len(sa));
	d->cur = r;
	identify_policy(cfg, r, (const struct sockaddr *)&d->cur_sa, id);
	fill_ident(r, ident);
}

/* Which OS families' checks a record showed, as text ("Apple, Android"). */
static void
families_text(unsigned bits, char *buf, size_t size)
{
	static const char *const names[] = {"Apple", "Android", "Windows", "Linux", "other"};
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < 5; i++)
		if (bits & (1u << i))
			n += (size_t)snprintf(buf + n, n < size ? size - n : 0, "%s%s", n ? ", " : "",
					      names[i]);
}

static unsigned
rom_vendors(const struct devices_record *r)
{
	unsigned n = 0;
	for (size_t i = 0; i < r->nobs; i++)
		n += r->obs[i].rom > 0;
	return n;
}

/*
 * Records one signature query: an OS family's check (evidence for that family, and against
 * handset vendors of other families), or a vendor's name of strength rom or app. An address
 * without a MAC that shows several OS families, or the rom names of several vendors, carries
 * several devices (a NAT gateway): it is marked shared and never attributed as a whole. The
 * first time evidence is not acted on, the log says what was seen and why.
 */
static void
observe(struct devices_record *r, const struct config_signature *sg, const char *name,
	int64_t now)
{
	char fams[64];

	if (sg->strength == IDENTITY_STRENGTH_OS)
		r->os_families |= (uint16_t)identity_os_from_name(sg->vendor);
	else
		identify_observe(r, sg->vendor, sg->strength, name, now);
	if (!r->has_mac && !r->shared &&
	    (__builtin_popcount(r->os_families) >= 2 || rom_vendors(r) >= 2)) {
		r->shared = true;
		families_text(r->os_families, fams, sizeof(fams));
		log_info("devices: %s: several devices behind one address (OS checks seen: %s; "
			 "vendors with ROM evidence: %u): its queries will not attribute a vendor to "
			 "it", r->key, fams[0] ? fams : "none", rom_vendors(r));
		r->noted |= DEVICES_NOTED_SHARED;
	}
	if (sg->strength != IDENTITY_STRENGTH_ROM || identify_behaviour_usable(r))
		return;
	if (r->shared && !(r->noted & DEVICES_NOTED_SHARED)) {
		log_info("devices: %s: query '%s' (%s, rom) not acted on: the address carries several "
			 "devices", r->key, name, sg->vendor);
		r->noted |= DEVICES_NOTED_SHARED;
	} else if (!r->shared && !(r->noted & DEVICES_NOTED_OS)) {
		families_text(r->os_families & ~IDENTITY_OS_ANDROID, fams, sizeof(fams));
		log_info("devices: %s: query '%s' (%s, rom) not acted on: the device showed the "
			 "connectivity check of %s", r->key, name, sg->vendor, fams);
		r->noted |= DEVICES_NOTED_OS;
	}
}

/* The device's vendor changed (attributed, or an attribution ended): log, move its group from
 * its next query on, report the events. */
static void
vendor_changed(struct devices *d, const struct policy *pol, struct devices_record *r,
	       const struct sockaddr *sa, int group, const char *old_vendor, const char *name,
	       const struct config_signature *sg, bool kept)
{
	const struct config *cfg = policy_config(pol);
	struct policy_identity id;
	struct policy_decision next;
	char evidence[NAMES_MAX_TEXT + 24];

	identify_policy(cfg, r, sa, &id);
	policy_decide(pol, &id, NULL, &next);
	const char *og = policy_group_name(pol, group);
	const char *nn = policy_group_name(pol, next.group);
	const char *shown = identify_display_name(r);
	snprintf(evidence, sizeof(evidence), "'%s' (%s)", name,
		 identity_strength_name(sg->strength));
	log_info("devices: %s%s%s: vendor '%s' (was '%s') from query %s: group '%s' -> '%s'%s",
		 r->key, shown ? " " : "", shown ? shown : "", r->vendor, old_vendor, evidence,
		 og ? og : "(none)", nn ? nn : "(none)",
		 kept ? "" : " for this query only: the device table is full and this device is "
			     "not remembered");
	text_copy(r->group, sizeof(r->group), nn);
	if (kept) {
		emit_event(d, "vendor", r, sa, og, nn, name);
		if (next.group != group)
			emit_event(d, "group_change", r, sa, og, nn, name);
	}
}

void
devices_record_query(struct devices *d, const struct policy *pol, int group,
		     const struct names_name *qname, struct devices_ident *ident)
{
	const struct config *cfg = policy_config(pol);
	struct devices_record *r = d->cur;
	const struct sockaddr *sa = (const struct sockaddr *)&d->cur_sa;
	bool kept = r != &d->tmp;
	int64_t now = (int64_t)time(NULL);

	if (r == NULL)
		return;
	d->cur = NULL;
	text_copy(r->group, sizeof(r->group), policy_group_name(pol, group));
	if (d->cur_new && kept)
		emit_event(d, "first_seen", r, sa, NULL, r->group, r->has_mac ? "mac" : "address");

	int sig = qname != NULL ? policy_signature(pol, qname) : -1;
	if (sig >= 0 && (size_t)sig < cfg->devices.nsignatures) {
		const struct config_signature *sg = &cfg->devices.signatures[sig];
		char name[NAMES_MAX_TEXT], old_vendor[IDENTITY_VENDOR_MAX];
		names_to_text(qname, name);
		text_copy(old_vendor, sizeof(old_vendor), r->vendor);
		observe(r, sg, name, now);
		identify_vendor(cfg, r);
		if (strcmp(old_vendor, r->vendor) != 0)
			vendor_changed(d, pol, r, sa, group, old_vendor, name, sg, kept);
	}
	if (kept)
		mark_dirty(d, r);
	fill_ident(r, ident);
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
		if (devices_store_save(d->store, j->recs, j->n) != 0)
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
	sources_free(&d->src);
	free(d->stamps);
	kmap_free(&d->index);
	clients_free(&d->trusted);
	devices_store_close(&d->store);
	free(d->db_path);
	free(d->recs);
	free(d->dirty);
	free(d->gone);
	free(d->watches);
	policy_unref(&d->pol);
	free(d);
	*dp = NULL;
}
