/*
 * devices: the device table's life cycle and the query path (see devices.h); the sources'
 * refresh is devices_refresh.c, the records, forgetting and saving devices_table.c.
 *
 * Threads: the loop owns struct devices, the device table and the current source snapshot.
 * Refresh jobs and save jobs run in the libuv thread pool, one of each kind at a time.
 */
#include "devices.h"
#include "devices_int.h"

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

int
devices_trusted_new(const struct config *cfg, struct clients **out)
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
	*out = t;
	return 0;
}

static int
set_trusted(struct devices *d, const struct config *cfg)
{
	struct clients *t = NULL;
	int rc = devices_trusted_new(cfg, &t);
	if (rc != 0)
		return rc;
	clients_free(&d->trusted);
	d->trusted = t;
	return 0;
}

void
devices_on_handle_closed(uv_handle_t *h)
{
	struct devices *d = h->data;
	if (h->type == UV_FS_EVENT) {
		struct watch *w = h->data;
		d = w->d;
		free(w);
	}
	d->open_handles--;
	devices_maybe_closed(d);
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
	devices_open_store(d);
	if (cfg->store.postgresql != NULL) {
		/* the shared store: the table stays local (and answers) whatever it does */
		int prc = devices_pg_new(d, loop, policy, &d->pg);
		if (prc == 0)
			d->open_handles++;
		else
			log_warning("devices: shared store: cannot start its sync: %s: the device "
				    "table stays local", strerror(-prc));
	}

	uv_timer_init(loop, &d->arp_timer);
	uv_timer_init(loop, &d->save_timer);
	uv_timer_init(loop, &d->debounce_timer);
	d->arp_timer.data = d->save_timer.data = d->debounce_timer.data = d;
	d->open_handles += 3;
	uint64_t every = (uint64_t)cfg->devices.arp_refresh_s * 1000;
	uv_timer_start(&d->arp_timer, devices_on_arp_timer, every, every);
	uv_timer_start(&d->save_timer, devices_on_save_timer, DEVICES_SAVE_MS, DEVICES_SAVE_MS);
	devices_watch_leases(d);
	d->refresh_oui = true;
	devices_refresh_start(d);
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
	 * still known by its MAC in the meantime; the others may still be read by a worker */
	devices_share_retire(d->share, &d->src);
	d->src = s;
	free(d->stamps);
	d->stamps = stamps;
	d->nstamps = cfg->devices.nleases;
	policy_unref(&d->pol);
	d->pol = policy_ref(policy);
	d->max = cfg->devices.max_devices;	/* a lower bound applies at the next new device */
	devices_unwatch_leases(d);
	devices_watch_leases(d);
	uint64_t every = (uint64_t)cfg->devices.arp_refresh_s * 1000;
	uv_timer_start(&d->arp_timer, devices_on_arp_timer, every, every);
	d->refresh_oui = !same_oui;
	devices_refresh_start(d);
	devices_share_touch(d->share, NULL);
}

/* ---- the query path ---- */

/* Reports a device event (first sight, vendor attribution, group change) to the event callback:
 * the query store. Rare, so the short lock it takes in querylog is fine. */
static void
report_event(struct devices *d, const char *kind, const struct devices_record *r,
	     const struct sockaddr *client, const char *old_group, const char *new_group,
	     const char *evidence)
{
	if (d->event_cb == NULL)
		return;
	struct identity_event ev;
	memset(&ev, 0, sizeof(ev));
	ev.ts_ms = d->event_ts_ms;
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

/* Every event but a first sight changes who a device is or where it goes: the other workers
 * see it soon (devices_share.h). */
static void
emit_event(struct devices *d, const char *kind, const struct devices_record *r,
	   const struct sockaddr *client, const char *old_group, const char *new_group,
	   const char *evidence)
{
	if (strcmp(kind, "first_seen") != 0)
		devices_share_touch(d->share, r->key);
	report_event(d, kind, r, client, old_group, new_group, evidence);
}

void
devices_set_event_cb(struct devices *d, devices_event_cb cb, void *arg)
{
	d->event_cb = cb;
	d->event_arg = arg;
}

const struct sockaddr *
devices_forwarded_client(const struct clients *trusted, const struct sockaddr *client,
			 const struct devices_hints *h, struct sockaddr_storage *ecs,
			 struct mac *hint, bool *has_hint, bool *anonymous)
{
	*has_hint = false;
	*anonymous = false;
	if (trusted == NULL || h == NULL || clients_find(trusted, client) < 0)
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
	devices_table_remove_one(d, (size_t)i);
}

void
devices_fill_ident(const struct devices_record *r, struct devices_ident *ident)
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
	struct devices_ip ip;
	struct dkey k;
	int64_t now = (int64_t)time(NULL);

	devices_share_sync(d->share); /* what workers saw before this query counts first */
	bool anonymous;
	const struct sockaddr *sa = devices_forwarded_client(d->trusted, client, h, &ecs, &hint,
							     &has_hint, &anonymous);
	/* the key identify_key would write as text (identify_fill writes it for a new record),
	 * straight into the index's form: no inet_ntop, snprintf and inet_pton per query */
	identify_ip_of(sa, &ip);
	bool has_mac = sources_mac(cfg, d->src, &ip, has_hint ? &hint : NULL, &m);
	k = has_mac ? kmap_mac_key(&m) : kmap_ip_key(ip.family, ip.addr);
	if (has_mac)
		forget_address_record(d, sa);
	struct devices_record *r = devices_table_lookup(d, &k);
	d->cur_new = false;
	if (r == NULL) {
		d->cur_new = true;
		r = devices_table_add(d, "", now);
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
	devices_fill_ident(r, ident);
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
 * its next query on, report the events. name: the query (of signature sg), or with sg NULL
 * why the vendor changed without one. */
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
	if (sg != NULL)
		snprintf(evidence, sizeof(evidence), "query '%s' (%s)", name,
			 identity_strength_name(sg->strength));
	else	/* no query: name says why (a worker lost one) */
		snprintf(evidence, sizeof(evidence), "%s", name);
	log_info("devices: %s%s%s: vendor '%s' (was '%s') from %s: group '%s' -> '%s'%s",
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
	if (sig >= 0 && devices_share_suspect(d->share, r->key, sa, true))
		sig = -1; /* a worker lost some of its evidence (devices_share.h) */
	if (!r->suspect && r->vendor_source == IDENTITY_SRC_SIGNATURE &&
	    devices_share_suspect(d->share, r->key, sa, false)) {
		/* the query lost may have been evidence against this attribution: it ends, the
		 * other sources (pin, inventory, OUI, hostname) say who the device is */
		char old_vendor[IDENTITY_VENDOR_MAX];
		struct policy_identity id;
		struct policy_decision was; /* the group the attribution gave (a worker may have
					     * answered this query without it already) */
		identify_policy(cfg, r, sa, &id);
		policy_decide(pol, &id, NULL, &was);
		text_copy(old_vendor, sizeof(old_vendor), r->vendor);
		r->suspect = true;
		identify_vendor(cfg, r);
		if (strcmp(old_vendor, r->vendor) != 0)
			vendor_changed(d, pol, r, sa, was.group, old_vendor,
				       "a query lost in a worker's full queue", NULL,
				       kept);
		if (kept)
			devices_pg_push(d->pg, r, false);
	}
	if (sig >= 0 && (size_t)sig < cfg->devices.nsignatures) {
		const struct config_signature *sg = &cfg->devices.signatures[sig];
		char name[NAMES_MAX_TEXT], old_vendor[IDENTITY_VENDOR_MAX];
		names_to_text(qname, name);
		text_copy(old_vendor, sizeof(old_vendor), r->vendor);
		observe(r, sg, name, now);
		identify_vendor(cfg, r);
		if (strcmp(old_vendor, r->vendor) != 0)
			vendor_changed(d, pol, r, sa, group, old_vendor, name, sg, kept);
		if (kept)
			devices_pg_push(d->pg, r, false);
	}
	if (kept)
		devices_table_mark_dirty(d, r);
	devices_fill_ident(r, ident);
}

size_t
devices_count(const struct devices *d)
{
	return d->n;
}

const struct devices_record *
devices_record_at(const struct devices *d, size_t i)
{
	return i < d->n ? &d->recs[i] : NULL;
}

const struct devices_record *
devices_find(const struct devices *d, const char *key)
{
	struct dkey k;
	if (devices_text_dkey(key, &k) != 0)
		return NULL;
	int i = kmap_get(d->index, &k);
	return i >= 0 ? &d->recs[i] : NULL;
}

/* ---- close ---- */

void
devices_maybe_closed(struct devices *d)
{
	if (!d->closing || d->open_handles > 0 || d->refresh != NULL || d->save != NULL ||
	    d->close_cb == NULL)
		return;
	/* last save, on the loop: everything else has stopped */
	struct save_job *j = devices_save_collect(d);
	if (j != NULL) {
		devices_save_work(&j->req);	/* the forgotten devices leave the file too */
		if (j->status != 0)
			log_warning("devices: %s: cannot save the device state", d->db_path);
		devices_save_job_free(j);
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
	uv_close((uv_handle_t *)&d->arp_timer, devices_on_handle_closed);
	uv_close((uv_handle_t *)&d->save_timer, devices_on_handle_closed);
	uv_close((uv_handle_t *)&d->debounce_timer, devices_on_handle_closed);
	devices_pg_close(d->pg);
	devices_unwatch_leases(d);
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
	devices_pg_free(&d->pg);
	free(d->db_path);
	free(d->recs);
	free(d->dirty);
	free(d->gone);
	free(d->watches);
	policy_unref(&d->pol);
	free(d);
	*dp = NULL;
}

/* ---- for devices_admin.c (devices_int.h) ---- */

const struct config *
devices_int_config(const struct devices *d)
{
	return policy_config(d->pol);
}

const struct policy *
devices_int_policy(const struct devices *d)
{
	return d->pol;
}

const struct devices_sources *
devices_int_sources(const struct devices *d)
{
	return d->src;
}

struct devices_record *
devices_int_lookup(struct devices *d, const char *key)
{
	struct dkey k;
	return devices_text_dkey(key, &k) == 0 ? devices_table_lookup(d, &k) : NULL;
}

struct devices_record *
devices_int_record(struct devices *d, size_t i)
{
	return i < d->n ? &d->recs[i] : NULL;
}

struct devices_record *
devices_int_add(struct devices *d, const char *key)
{
	struct dkey k;
	if (d->closing || devices_text_dkey(key, &k) != 0)
		return NULL;
	d->cur = NULL;	/* an eviction may move records */
	struct devices_record *r = devices_table_add(d, key, (int64_t)time(NULL));
	if (r != NULL && kmap_put(d->index, &k, (uint32_t)(d->n - 1)) != 0) {
		d->n--;
		r = NULL;
	}
	return r;
}

int
devices_int_remove(struct devices *d, struct devices_record *r)
{
	size_t i = (size_t)(r - d->recs);
	REQUIRE(i < d->n);
	d->cur = NULL;
	devices_table_remove_one(d, i);
	return 0;
}

void
devices_int_dirty(struct devices *d, struct devices_record *r)
{
	devices_table_mark_dirty(d, r);
}

void
devices_int_share(struct devices *d, const struct devices_record *r, bool forget)
{
	devices_pg_push(d->pg, r, forget);
}

bool
devices_int_closing(const struct devices *d)
{
	return d->closing;
}

void
devices_int_handle_closed(struct devices *d)
{
	d->open_handles--;
	devices_maybe_closed(d);
}

void
devices_int_event(struct devices *d, const char *kind, const struct devices_record *r,
		  const char *old_group, const char *new_group, const char *evidence)
{
	struct sockaddr_storage none;
	memset(&none, 0, sizeof(none));
	none.ss_family = AF_UNSPEC;
	emit_event(d, kind, r, (const struct sockaddr *)&none, old_group, new_group, evidence);
}
