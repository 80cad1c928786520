/*
 * devices_refresh: the device sources kept current. Refresh jobs (lease files, ARP table, IPv6
 * neighbours, OUI registry, inventory index) run in the libuv thread pool, one at a time; a job
 * only reads the configuration (immutable, held by a policy reference) and builds new tables,
 * which the loop swaps into the snapshot when the job is done. Lease folders are watched
 * (uv_fs_event, debounced); the neighbour tables are re-read on a timer.
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

#include "devices_int.h"
#include "log.h"
#include "neigh6_dump.h"

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
			devices_maybe_closed(d);
		else
			devices_refresh_start(d);
		return;
	}
	for (size_t i = 0; i < j->diag.n; i++) {
		const struct diag_entry *e = &j->diag.v[i];
		if (e->level == DIAG_ERROR)
			log_warning("devices: %s (keeping the last good table)", e->text);
	}
	/* the tables replaced: freed at once, or once no other worker can be reading them
	 * (devices_share.h) */
	struct devices_sources *g = calloc(1, sizeof(*g));
	if (g == NULL || (g->leases = calloc(s->nleases + 1, sizeof(*g->leases))) == NULL) {
		free(g);
		log_warning("devices: out of memory: the sources' refresh is not applied");
		refresh_job_free(j);
		return;
	}
	g->nleases = s->nleases;
	for (size_t i = 0; i < j->nleases && i < s->nleases; i++) {
		if (j->leases[i] != NULL) {
			g->leases[i] = s->leases[i];
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
		g->arp = s->arp;
		s->arp = j->arp;
		j->arp = NULL;
	}
	if (j->neigh6 != NULL) {
		g->neigh6 = s->neigh6;
		g->neigh6_macs = s->neigh6_macs;
		s->neigh6 = j->neigh6;
		s->neigh6_macs = j->neigh6_macs;
		j->neigh6 = NULL;
		j->neigh6_macs = NULL;
	}
	if (j->oui != NULL) {
		g->oui = s->oui;
		s->oui = j->oui;
		j->oui = NULL;
	}
	if (j->inv_mac != NULL) {
		g->inv_mac = s->inv_mac;
		g->inv_ip = s->inv_ip;
		s->inv_mac = j->inv_mac;
		s->inv_ip = j->inv_ip;
		j->inv_mac = j->inv_ip = NULL;
	}
	refresh_job_free(j);
	devices_share_retire(d->share, &g);
	devices_share_touch(d->share, NULL); /* MACs, hostnames: the other workers see them */
	if (d->refresh_again) {
		d->refresh_again = false;
		devices_refresh_start(d);
	}
}

void
devices_refresh_start(struct devices *d)
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

void
devices_on_arp_timer(uv_timer_t *t)
{
	struct devices *d = t->data;
	if (!d->closing)
		devices_refresh_start(d);
}

static void
on_debounce(uv_timer_t *t)
{
	struct devices *d = t->data;
	if (!d->closing)
		devices_refresh_start(d);
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

/* (Re)creates the folder watchers of the lease files. */
void
devices_watch_leases(struct devices *d)
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

void
devices_unwatch_leases(struct devices *d)
{
	for (size_t i = 0; i < d->nwatches; i++) {
		uv_fs_event_stop(&d->watches[i]->h);
		uv_close((uv_handle_t *)&d->watches[i]->h, devices_on_handle_closed);
	}
	free(d->watches);
	d->watches = NULL;
	d->nwatches = 0;
}

