/*
 * sources: the snapshot of the device sources and the lookups into it (see sources.h).
 */
#include "sources.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "neigh6_dump.h"
#include "text.h"

int
sources_build_inventory(const struct config *cfg, struct kmap **by_mac,
		struct kmap **by_ip)
{
	struct kmap *m = NULL, *i = NULL;
	int rc;
	if ((rc = kmap_new(cfg->devices.ninventory, &m)) != 0 ||
	    (rc = kmap_new(cfg->devices.ninventory, &i)) != 0)
		goto cleanup;
	for (size_t k = 0; k < cfg->devices.ninventory; k++) {
		const struct config_device *d = &cfg->devices.inventory[k];
		struct dkey key = kmap_mac_key(&d->mac);
		if (!mac_is_zero(&d->mac) && (rc = kmap_put(m, &key, (uint32_t)k)) != 0)
			goto cleanup;	/* an entry keyed by address only has no MAC */
		if (d->has_ip) {
			struct devices_ip ip = {.family = (uint8_t)d->ip.family};
			memcpy(ip.addr, d->ip.addr, 16);
			key = kmap_ip_key(ip.family, ip.addr);
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

void
sources_free(struct devices_sources **sp)
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
sources_load(const struct config *cfg, struct diag *diag, struct devices_sources **out)
{
	struct devices_sources *s = calloc(1, sizeof(*s));
	int rc = -ENOMEM;
	if (s == NULL)
		return -ENOMEM;
	s->leases = calloc(cfg->devices.nleases + 1, sizeof(*s->leases));
	if (s->leases == NULL)
		goto cleanup;
	s->nleases = cfg->devices.nleases;
	if ((rc = sources_build_inventory(cfg, &s->inv_mac, &s->inv_ip)) != 0)
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
		rc = s->neigh6_rc = sources_read_neigh6(&s->neigh6, &s->neigh6_macs);
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
	sources_free(&s);
	return -ENOMEM;
}

/*
 * The kernel's IPv6 neighbours (neigh6_dump.c) as an index: address -> (*macs_out)[i]; an
 * address dumped more than once maps to its last entry. Runs in the thread pool. 0, or -errno
 * (the caller keeps its last table).
 */
int
sources_read_neigh6(struct kmap **map_out, struct mac **macs_out)
{
	struct neigh6 *t = NULL;
	struct kmap *map = NULL;
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
		struct dkey k = kmap_ip_key(ip.family, ip.addr);
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

const struct leases_entry *
sources_lease(const struct devices_sources *src, const struct devices_ip *ip)
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

int
sources_inv_by_ip(const struct config *cfg, const struct devices_sources *src,
	  const struct devices_ip *ip)
{
	int inv = -1;
	if (src != NULL && src->inv_ip != NULL) {
		struct dkey k = kmap_ip_key(ip->family, ip->addr);
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

int
sources_inv_by_mac(const struct config *cfg, const struct devices_sources *src, const struct mac *m)
{
	int inv = -1;
	if (src != NULL && src->inv_mac != NULL) {
		struct dkey k = kmap_mac_key(m);
		inv = kmap_get(src->inv_mac, &k);
	} else {
		for (size_t i = 0; i < cfg->devices.ninventory && inv < 0; i++)
			if (!mac_is_zero(m) && mac_equal(&cfg->devices.inventory[i].mac, m))
				inv = (int)i;
	}
	return inv >= 0 && (size_t)inv < cfg->devices.ninventory ? inv : -1;
}

bool
sources_mac(const struct config *cfg, const struct devices_sources *src,
	 const struct devices_ip *ip, const struct mac *hint, struct mac *out)
{
	if (hint != NULL) {
		*out = *hint;
		return true;
	}
	int inv = sources_inv_by_ip(cfg, src, ip);
	if (inv >= 0 && !mac_is_zero(&cfg->devices.inventory[inv].mac)) {
		*out = cfg->devices.inventory[inv].mac;
		return true;
	}
	const struct leases_entry *e = sources_lease(src, ip);
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
		struct dkey k = kmap_ip_key(ip->family, ip->addr);
		int i = kmap_get(src->neigh6, &k);
		if (i >= 0) {
			*out = src->neigh6_macs[i];
			return true;
		}
	}
	return false;
}

int
sources_carry(const struct config *old_cfg, struct devices_sources *old,
	      const struct config *cfg, struct devices_sources **out, bool *same_oui)
{
	struct devices_sources *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return -ENOMEM;
	s->leases = calloc(cfg->devices.nleases + 1, sizeof(*s->leases));
	if (s->leases == NULL || sources_build_inventory(cfg, &s->inv_mac, &s->inv_ip) != 0) {
		sources_free(&s);
		return -ENOMEM;
	}
	s->nleases = cfg->devices.nleases;
	bool oui_kept = old_cfg != NULL && text_equal(old_cfg->devices.oui_dir, cfg->devices.oui_dir);
	if (same_oui != NULL)
		*same_oui = oui_kept;
	if (old == NULL || old_cfg == NULL) {
		*out = s;
		return 0;
	}
	for (size_t i = 0; i < s->nleases; i++) {
		const struct config_leases *l = &cfg->devices.leases[i];
		for (size_t k = 0; k < old->nleases && k < old_cfg->devices.nleases; k++) {
			const struct config_leases *ol = &old_cfg->devices.leases[k];
			if (old->leases[k] != NULL && ol->format == l->format &&
			    text_equal(ol->file, l->file)) {
				s->leases[i] = old->leases[k];
				old->leases[k] = NULL;
				break;
			}
		}
	}
	if (cfg->devices.arp && old_cfg->devices.arp &&
	    text_equal(old_cfg->devices.arp_file, cfg->devices.arp_file)) {
		s->arp = old->arp;
		s->neigh6 = old->neigh6;
		s->neigh6_macs = old->neigh6_macs;
		s->arp_rc = old->arp_rc;
		s->neigh6_rc = old->neigh6_rc;
		old->arp = NULL;
		old->neigh6 = NULL;
		old->neigh6_macs = NULL;
	}
	if (oui_kept) {
		s->oui = old->oui;
		old->oui = NULL;
	}
	*out = s;
	return 0;
}
