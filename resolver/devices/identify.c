/*
 * identify: who is behind a client address, from the sources (see identify.h). Pure.
 */
#include "identify.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "hostglob.h"
#include "text.h"

void
identify_ip_text(const struct devices_ip *ip, char *buf, size_t size)
{
	char tmp[INET6_ADDRSTRLEN];
	if (inet_ntop(ip->family == AF_INET ? AF_INET : AF_INET6, ip->addr, tmp, sizeof(tmp)) ==
	    NULL)
		tmp[0] = '\0';
	snprintf(buf, size, "%s", tmp);
}

void
identify_ip_of(const struct sockaddr *sa, struct devices_ip *ip)
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

static int
find_inventory(const struct config *cfg, const struct devices_sources *src,
	       const struct devices_record *rec, const struct devices_ip *ip)
{
	int inv = rec->has_mac ? sources_inv_by_mac(cfg, src, &rec->mac) : -1;
	if (inv < 0) {	/* an entry keyed by address only names whoever is behind it */
		int i = sources_inv_by_ip(cfg, src, ip);
		if (i >= 0 && (!rec->has_mac || mac_is_zero(&cfg->devices.inventory[i].mac)))
			inv = i;
	}
	return inv;
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

void
identify_key_text(const struct devices_record *rec, const struct devices_ip *ip, char *buf, size_t size)
{
	char t[INET6_ADDRSTRLEN];
	if (rec->has_mac) {
		snprintf(buf, size, "mac:%s", mac_format(&rec->mac, t));
		return;
	}
	identify_ip_text(ip, t, sizeof(t));
	snprintf(buf, size, "ip:%s", t);
}

void
identify_fill(const struct config *cfg, const struct devices_sources *src,
	     const struct sockaddr *sa, const struct mac *hint, struct devices_record *rec)
{
	struct devices_ip ip;
	struct mac m;

	identify_ip_of(sa, &ip);
	if (sources_mac(cfg, src, &ip, hint, &m)) {
		rec->has_mac = true;
		rec->mac = m;
		rec->randomised = mac_is_randomised(&m);
	}
	if (rec->key[0] == '\0')
		identify_key_text(rec, &ip, rec->key, sizeof(rec->key));
	add_ip(rec, &ip);
	const struct leases_entry *e = sources_lease(src, &ip);
	if (e != NULL && (!rec->has_mac || !e->has_mac || mac_equal(&e->mac, &rec->mac))) {
		if (e->hostname != NULL)
			text_copy(rec->hostname, sizeof(rec->hostname), e->hostname);
		if (e->client_id != NULL)
			text_copy(rec->client_id, sizeof(rec->client_id), e->client_id);
		if (e->vendor_class != NULL)
			text_copy(rec->vendor_class, sizeof(rec->vendor_class), e->vendor_class);
	}
	rec->inv = find_inventory(cfg, src, rec, &ip);
	text_copy(rec->inventory, sizeof(rec->inventory),
		 rec->inv >= 0 ? cfg->devices.inventory[rec->inv].name : NULL);
	if (rec->has_mac && !rec->randomised && src != NULL && src->oui != NULL) {
		const struct oui_entry *oe = oui_lookup(src->oui, &rec->mac);
		if (oe != NULL) {
			text_copy(rec->manufacturer, sizeof(rec->manufacturer), oe->org);
			text_copy(rec->oui_vendor, sizeof(rec->oui_vendor),
				 oui_vendor_name((enum oui_vendor)oe->vendor));
		}
	}
	identify_vendor(cfg, rec);
}

void
identify_vendor(const struct config *cfg, struct devices_record *rec)
{
	const char *v = NULL;
	uint8_t src = IDENTITY_SRC_NONE;

	if (rec->pin_vendor[0] != '\0') {
		v = rec->pin_vendor;
		src = IDENTITY_SRC_PIN;
	} else if (rec->inv >= 0 && (size_t)rec->inv < cfg->devices.ninventory &&
	    cfg->devices.inventory[rec->inv].vendor != NULL) {
		v = cfg->devices.inventory[rec->inv].vendor;
		src = IDENTITY_SRC_INVENTORY;
	} else if (rec->oui_vendor[0] != '\0' || rec->manufacturer[0] != '\0') {
		v = rec->oui_vendor[0] != '\0' ? rec->oui_vendor : rec->manufacturer;
		src = IDENTITY_SRC_OUI;
	} else if ((v = identify_rom_vendor(rec)) != NULL) {
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
		text_copy(rec->vendor, sizeof(rec->vendor), v);
	rec->vendor_source = src;
}

void
identify_policy(const struct config *cfg, const struct devices_record *rec,
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
	id->group = rec->pin_group[0] != '\0' ? rec->pin_group : NULL;
	if (rec->inv >= 0 && (size_t)rec->inv < cfg->devices.ninventory) {
		const struct config_device *d = &cfg->devices.inventory[rec->inv];
		id->device = d->name;
		id->tags = (const char *const *)d->tags;
		id->ntags = d->ntags;
	}
}

/* Weaker evidence goes first when a fifth vendor comes: fewer rom queries, then fewer queries. */
static bool
weaker(const struct devices_obs *a, const struct devices_obs *b)
{
	return a->rom != b->rom ? a->rom < b->rom : a->count < b->count;
}

void
identify_observe(struct devices_record *r, const char *vendor, enum identity_strength strength,
		 const char *evidence, int64_t now)
{
	size_t i = 0;
	while (i < r->nobs && strcasecmp(r->obs[i].vendor, vendor) != 0)
		i++;
	if (i == r->nobs) {
		if (r->nobs < DEVICES_MAX_OBS) {
			r->nobs++;
		} else {
			i = 0;
			for (size_t k = 1; k < r->nobs; k++)
				if (weaker(&r->obs[k], &r->obs[i]))
					i = k;
		}
		memset(&r->obs[i], 0, sizeof(r->obs[i]));
		text_copy(r->obs[i].vendor, sizeof(r->obs[i].vendor), vendor);
		r->obs[i].first = now;
	}
	struct devices_obs *o = &r->obs[i];
	o->count++;
	o->own++;
	if (strength == IDENTITY_STRENGTH_ROM) {
		o->rom++;
		o->own_rom++;
		text_copy(o->rom_evidence, sizeof(o->rom_evidence), evidence);
	} else {
		o->app++;
		o->own_app++;
	}
	o->last = now;
	text_copy(o->evidence, sizeof(o->evidence), evidence);
}

bool
identify_behaviour_usable(const struct devices_record *r)
{
	return !r->shared && !r->suspect && (r->os_families & ~IDENTITY_OS_ANDROID) == 0;
}

const char *
identify_rom_vendor(const struct devices_record *r)
{
	const struct devices_obs *best = NULL;

	if (!identify_behaviour_usable(r))
		return NULL;
	for (size_t i = 0; i < r->nobs; i++) {
		const struct devices_obs *o = &r->obs[i];
		if (o->rom > 0 && (best == NULL || o->rom > best->rom ||
				   (o->rom == best->rom && o->last > best->last)))
			best = o;
	}
	return best != NULL ? best->vendor : NULL;
}

const char *
identify_display_name(const struct devices_record *r)
{
	if (r->inventory[0] != '\0')
		return r->inventory;
	if (r->hostname[0] != '\0')
		return r->hostname;
	return NULL;
}

bool
identify_key(const struct config *cfg, const struct devices_sources *src,
	     const struct sockaddr *sa, const struct mac *hint, char *key, struct mac *mac)
{
	struct devices_record r;
	struct devices_ip ip;

	identify_ip_of(sa, &ip);
	memset(&r, 0, sizeof(r));
	r.has_mac = sources_mac(cfg, src, &ip, hint, &r.mac);
	identify_key_text(&r, &ip, key, DEVICES_KEY_MAX);
	if (r.has_mac)
		*mac = r.mac;
	return r.has_mac;
}

static const struct devices_obs *
best_obs(const struct devices_record *r)
{
	const struct devices_obs *best = NULL;
	for (size_t i = 0; i < r->nobs; i++)
		if (best == NULL || strcasecmp(r->obs[i].vendor, r->vendor) == 0 ||
		    (strcasecmp(best->vendor, r->vendor) != 0 && r->obs[i].count > best->count))
			best = &r->obs[i];
	return best;
}

const char *
identify_evidence_text(const struct devices_record *r, char *buf, size_t size)
{
	const struct devices_obs *o = best_obs(r);
	if (r->pin_vendor[0] != '\0' || r->pin_group[0] != '\0')
		snprintf(buf, size, "pinned");
	else if (r->vendor_source == IDENTITY_SRC_SIGNATURE && o != NULL && o->rom > 0)
		snprintf(buf, size, "rom x%u %s", (unsigned)o->rom,
			 o->rom_evidence[0] ? o->rom_evidence : o->evidence);
	else if (r->vendor_source == IDENTITY_SRC_SIGNATURE && o != NULL && o->app > 0)
		snprintf(buf, size, "app x%u %s", (unsigned)o->app, o->evidence);
	else if (r->vendor_source == IDENTITY_SRC_SIGNATURE && o != NULL)
		snprintf(buf, size, "x%u %s", (unsigned)o->count, o->evidence);
	else if (r->vendor_source == IDENTITY_SRC_HOSTNAME)
		snprintf(buf, size, "hostname %s", r->hostname);
	else if (r->vendor_source == IDENTITY_SRC_OUI)
		snprintf(buf, size, "oui");
	else if (r->vendor_source == IDENTITY_SRC_INVENTORY)
		snprintf(buf, size, "inventory");
	else
		snprintf(buf, size, "-");
	return buf;
}
