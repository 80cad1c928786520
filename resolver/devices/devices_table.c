/*
 * devices_table: the records of the daemon's device table: adding, finding, forgetting (expiry of
 * address-only devices, eviction when full) and saving to devices.db in the thread pool.
 */
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

#include "check.h"
#include "devices_int.h"
#include "fileio.h"
#include "log.h"
#include "text.h"

struct devices_record *
devices_table_lookup(struct devices *d, const struct dkey *k)
{
	int i = kmap_get(d->index, k);
	return i >= 0 ? &d->recs[i] : NULL;
}

void
devices_table_mark_dirty(struct devices *d, struct devices_record *r)
{
	size_t i = (size_t)(r - d->recs);
	if (d->share != NULL) {
		/* a last-seen time or a count alone leaves the workers' copy as it is */
		uint64_t sig = devices_share_sig(d->share, r);
		if (sig != r->share_sig) {
			r->share_sig = sig;
			d->share_gen++;
		}
	}
	if (!d->dirty[i]) {
		d->dirty[i] = 1;
		d->ndirty++;
	}
}

/* ---- forgetting: expiry and eviction ---- */

/* Queues key for deletion from the saved state; beyond max queued keys, the next save keeps only
 * the devices of the table instead. */
void
devices_table_forget_key(struct devices *d, const char *key)
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

/* Record r leaves the table: when the workers' copy holds it (as last marked, or as it is
 * now), the next idle tick rebuilds that copy without it. */
static void
leaving(struct devices *d, const struct devices_record *r)
{
	if (d->share != NULL && (r->share_sig != 0 || devices_share_sig(d->share, r) != 0))
		d->share_gen++;
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
		leaving(d, &d->recs[i]);
		if (devices_text_dkey(d->recs[i].key, &k) == 0)
			kmap_del(d->index, &k);
		if (d->dirty[i])
			d->ndirty--;
		devices_table_forget_key(d, d->recs[i].key);
		removed++;
	}
	for (size_t i = 0; i < d->n; i++) {
		if (victim[i])
			continue;
		if (w != i) {
			d->recs[w] = d->recs[i];
			d->dirty[w] = d->dirty[i];
			if (devices_text_dkey(d->recs[w].key, &k) == 0)
				INSIST(kmap_put(d->index, &k, (uint32_t)w) == 0); /* a replacement */
		}
		w++;
	}
	d->n = w;
	return removed;
}

/* Removes record i (the last record takes its place). O(1). */
void
devices_table_remove_one(struct devices *d, size_t i)
{
	struct dkey k;

	leaving(d, &d->recs[i]);
	if (devices_text_dkey(d->recs[i].key, &k) == 0)
		kmap_del(d->index, &k);
	if (d->dirty[i])
		d->ndirty--;
	devices_table_forget_key(d, d->recs[i].key);
	size_t last = d->n - 1;
	if (i != last) {
		d->recs[i] = d->recs[last];
		d->dirty[i] = d->dirty[last];
		if (devices_text_dkey(d->recs[i].key, &k) == 0)
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
	if (r->inventory[0] != '\0' || r->pin_vendor[0] != '\0' || r->pin_group[0] != '\0')
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
		if (r->has_mac || r->inventory[0] != '\0' || r->last_seen >= before ||
		    r->pin_vendor[0] != '\0' || r->pin_group[0] != '\0')
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

void
devices_save_work(uv_work_t *req)
{
	struct save_job *j = req->data;
	/* deletions first: a device forgotten and seen (or pinned) again since the last save is
	 * saved, not deleted */
	j->status = j->ngone > 0 ? devices_store_delete(j->d->store, j->gone, j->ngone) : 0;
	if (j->status == 0)
		j->status = devices_store_save(j->d->store, j->recs, j->n);
	if (j->status == 0 && j->keep_only)
		j->status = devices_store_keep_only(j->d->store, j->keep, j->nkeep);
}

void
devices_save_job_free(struct save_job *j)
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
		int r = devices_text_dkey(j->recs[i].key, &k) == 0 ? kmap_get(d->index, &k) : -1;
		if (r >= 0 && !d->dirty[r]) {
			d->dirty[r] = 1;
			d->ndirty++;
		}
	}
	for (size_t i = 0; i < j->ngone; i++)
		devices_table_forget_key(d, j->gone[i]);
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
	devices_save_job_free(j);
	if (d->closing)
		devices_maybe_closed(d);
}

/* Takes the dirty records and the forgotten keys into a new job (NULL: nothing to save). */
struct save_job *
devices_save_collect(struct devices *d)
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
			devices_save_job_free(j);
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

void
devices_on_save_timer(uv_timer_t *t)
{
	struct devices *d = t->data;
	int64_t now = (int64_t)time(NULL);

	if (d->closing)
		return;
	expire(d, now);
	report_full(d, now);
	if (d->save != NULL)
		return;
	struct save_job *j = devices_save_collect(d);
	if (j == NULL)
		return;
	if (uv_queue_work(d->loop, &j->req, devices_save_work, on_save_done) != 0) {
		requeue(d, j); /* cannot happen with a valid loop: try again at the next tick */
		devices_save_job_free(j);
		return;
	}
	d->save = j;
}

struct devices_record *
devices_table_add(struct devices *d, const char *key, int64_t now)
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
int
devices_text_dkey(const char *key, struct dkey *out)
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
	if (devices_text_dkey(rec->key, &k) != 0 || kmap_get(d->index, &k) >= 0)
		return 0;
	if (d->n >= d->max) {	/* newest first: the rest is older than the table holds */
		d->gone_overflow = true;	/* the next save drops it from the file too */
		return 0;
	}
	struct devices_record *r = devices_table_add(d, rec->key, rec->first_seen);
	if (r == NULL || kmap_put(d->index, &k, (uint32_t)(d->n - 1)) != 0)
		return -ENOMEM;
	*r = *rec;
	r->inv = -1;
	for (size_t i = 0; i < r->nobs; i++) {	/* taken as this instance's own until the shared
						   store says otherwise (devices_pg_merge) */
		r->obs[i].own = r->obs[i].count;
		r->obs[i].own_rom = r->obs[i].rom;
		r->obs[i].own_app = r->obs[i].app;
	}
	return 0;
}

void
devices_open_store(struct devices *d)
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

