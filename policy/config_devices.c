/*
 * config_devices: the "devices:" section of the configuration (inventory, DHCP leases, ARP,
 * trusted forwarders, OUI registry, vendor signatures, hostname vendors) and the group keys that
 * select devices (macs, vendors, hostnames, devices, tags, randomised_mac). It walks nodes with
 * config_schema.c's helpers (config_int.h) and reports problems the same way.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "catalog.h"
#include "hostglob.h"
#include "lists.h"
#include "mac.h"

#define err(c, at, path, ...)  config_schema_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)
#define warn(c, at, path, ...) config_schema_report((c), DIAG_WARNING, (at), (path), __VA_ARGS__)

/* ---- helpers ---- */

/* A sequence of non-empty strings into a new array *v / *n (replacing it). Returns the number of
 * items read, or -1 when val is not a sequence (reported). */
static int
strv_seq(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
         const char *path, char ***v, size_t *n)
{
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return -1;
	char **nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		config_schema_oom(c);
		return -1;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		const char *s = config_schema_get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		if ((nv[nn] = strdup(s)) == NULL) {
			config_schema_oom(c);
			break;
		}
		nn++;
	}
	for (size_t i = 0; i < *n; i++)
		free((*v)[i]);
	free(*v);
	*v = nv;
	*n = nn;
	return (int)val->n;
}

static void
empty_selector(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path)
{
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		err(c, key, path,
		    "empty: leave it out, a group needs at least one value per selector");
}

/* ---- group selectors ---- */

/* Device selectors match only with device identity on, that is with a devices: section (groups
 * are checked after the whole file is read, so the section may come later). Reported once per
 * group, at its first device selector; marks the group as having selectors. */
static void
device_selector(struct config_check_ctx *c, struct config_check_group *gc,
                const struct config_node *key, const char *path)
{
	gc->selectors = true;
	if (c->cfg->devices.enabled || gc->identity_off)
		return;
	gc->identity_off = true;
	err(c, key, path,
	    "matches devices, but device identity is off: add a 'devices:' section ('devices: {}' "
	    "is enough)");
}

void
config_devices_group_macs(struct config_check_ctx *c, const struct config_node *key,
                          const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	char item[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	device_selector(c, gc, key, path);
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	empty_selector(c, key, val, path);
	struct mac_prefix *nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		const char *s = config_schema_get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		if (mac_prefix_parse(s, strlen(s), &nv[nn]) != 0) {
			err(c, it, item,
			    "bad MAC address or prefix '%s' (expected aa:bb:cc:dd:ee:ff, aa:bb:cc, "
			    "aa:bb:cc:d or aa:bb:cc:dd:ee:ff/N)",
			    config_schema_show(s, buf, sizeof(buf)));
			continue;
		}
		nn++;
	}
	free(gc->g->macs);
	gc->g->macs = nv;
	gc->g->nmacs = nn;
}

void
config_devices_group_vendors(struct config_check_ctx *c, const struct config_node *key,
                             const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	device_selector(c, gc, key, path);
	if (strv_seq(c, key, val, path, &gc->g->vendors, &gc->g->nvendors) >= 0)
		empty_selector(c, key, val, path);
}

void
config_devices_group_hostnames(struct config_check_ctx *c, const struct config_node *key,
                               const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	char item[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	device_selector(c, gc, key, path);
	if (strv_seq(c, key, val, path, &gc->g->hostnames, &gc->g->nhostnames) < 0)
		return;
	empty_selector(c, key, val, path);
	for (size_t i = 0, k = 0; i < val->n && k < gc->g->nhostnames; i++) {
		const struct config_node *it = val->items[i];
		const char *why = NULL;
		if (it->kind != CONFIG_NODE_SCALAR || strcmp(it->str, gc->g->hostnames[k]) != 0)
			continue;
		k++;
		config_schema_path_index(item, path, i);
		if (hostglob_check(it->str, &why) != 0)
			err(c, it, item, "bad hostname pattern '%s': %s",
			    config_schema_show(it->str, buf, sizeof(buf)), why);
	}
}

void
config_devices_group_devices(struct config_check_ctx *c, const struct config_node *key,
                             const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	const struct config *cfg = c->cfg;
	char item[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	device_selector(c, gc, key, path);
	if (strv_seq(c, key, val, path, &gc->g->devices, &gc->g->ndevices) < 0)
		return;
	empty_selector(c, key, val, path);
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		if (it->kind != CONFIG_NODE_SCALAR || it->len == 0)
			continue;
		size_t d = 0;
		while (d < cfg->devices.ninventory &&
		       strcmp(cfg->devices.inventory[d].name, it->str))
			d++;
		if (d == cfg->devices.ninventory) {
			config_schema_path_index(item, path, i);
			err(c, it, item, "unknown device '%s' (not in devices.inventory)",
			    config_schema_show(it->str, buf, sizeof(buf)));
		}
	}
}

void
config_devices_group_tags(struct config_check_ctx *c, const struct config_node *key,
                          const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	device_selector(c, gc, key, path);
	if (strv_seq(c, key, val, path, &gc->g->tags, &gc->g->ntags) >= 0)
		empty_selector(c, key, val, path);
}

void
config_devices_group_randomised(struct config_check_ctx *c, const struct config_node *key,
                                const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	device_selector(c, gc, key, path);
	if (config_schema_get_bool(c, key, val, path, &gc->g->randomised) == 0)
		gc->g->has_randomised = true;
}

/* ---- devices ---- */

static bool
has_key(const struct config_node *map, const char *name)
{
	for (size_t i = 0; i < map->n / 2; i++)
		if (map->items[2 * i]->kind == CONFIG_NODE_SCALAR &&
		    strcmp(map->items[2 * i]->str, name) == 0)
			return true;
	return false;
}

static void
on_inv_mac(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
           const char *path, void *obj)
{
	struct config_device *d = obj;
	char buf[CONFIG_SHOW_MAX + 8];
	const char *s = config_schema_get_string(c, key, val, path, false);
	struct mac m;
	if (s == NULL)
		return;
	if (mac_parse(s, strlen(s), &m) != 0 || mac_is_zero(&m) || mac_is_multicast(&m)) {
		err(c, key, path, "bad MAC address '%s' (expected a unicast aa:bb:cc:dd:ee:ff)",
		    config_schema_show(s, buf, sizeof(buf)));
		return;
	}
	d->mac = m; /* not zero: the inventory walk reads a zero MAC as 'no mac key read' */
}

static void
on_inv_ip(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, void *obj)
{
	struct config_device *d = obj;
	char buf[CONFIG_SHOW_MAX + 8];
	const char *s = config_schema_get_string(c, key, val, path, false);
	uint8_t a[16];
	if (s == NULL)
		return;
	memset(&d->ip, 0, sizeof(d->ip));
	if (inet_pton(AF_INET, s, a) == 1) {
		d->ip.family = AF_INET;
		memcpy(d->ip.addr, a, 4);
		d->ip.prefix = 32;
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		d->ip.family = AF_INET6;
		memcpy(d->ip.addr, a, 16);
		d->ip.prefix = 128;
	} else {
		err(c, key, path, "bad address '%s' (expected an IPv4 or IPv6 address)",
		    config_schema_show(s, buf, sizeof(buf)));
		return;
	}
	d->ip.loc.line = val->line;
	d->ip.loc.col = val->col;
	d->has_ip = true;
}

static void
on_inv_tags(struct config_check_ctx *c, const struct config_node *key,
            const struct config_node *val, const char *path, void *obj)
{
	struct config_device *d = obj;
	strv_seq(c, key, val, path, &d->tags, &d->ntags);
}

static const struct config_schema_key inventory_keys[] = {
        CONFIG_SCHEMA_STR_KEY("name", struct config_device, name),
        CONFIG_SCHEMA_CALL_KEY("mac", on_inv_mac),
        CONFIG_SCHEMA_CALL_KEY("ip", on_inv_ip),
        CONFIG_SCHEMA_STR_KEY("owner", struct config_device, owner),
        CONFIG_SCHEMA_STR_KEY("vendor", struct config_device, vendor),
        CONFIG_SCHEMA_CALL_KEY("tags", on_inv_tags),
};

static void
on_devices_inventory(struct config_check_ctx *c, const struct config_node *key,
                     const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX], sub[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	cfg->devices.inventory = calloc(val->n ? val->n : 1, sizeof(*cfg->devices.inventory));
	if (cfg->devices.inventory == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		if (!config_schema_is_mapping(c, it, it, item, false))
			continue;
		struct config_device *d = &cfg->devices.inventory[cfg->devices.ninventory];
		d->loc.line = it->line;
		d->loc.col = it->col;
		cfg->devices.ninventory++;
		config_schema_walk_map(c, it, item, inventory_keys,
		                       sizeof(inventory_keys) / sizeof(inventory_keys[0]), d);
		bool has_mac = !mac_is_zero(&d->mac);
		if (d->name == NULL)
			err(c, it, item, "missing key 'name'");
		if (!has_mac && !has_key(it, "mac"))
			err(c, it, item, "missing key 'mac'");
		for (size_t j = 0; j + 1 < cfg->devices.ninventory; j++) {
			const struct config_device *e = &cfg->devices.inventory[j];
			if (d->name != NULL && e->name != NULL && strcmp(d->name, e->name) == 0) {
				err(c, it, config_schema_path_key(sub, item, "name"),
				    "duplicate device name '%s' (first at line %d)",
				    config_schema_show(d->name, buf, sizeof(buf)), e->loc.line);
			}
			if (has_mac && !mac_is_zero(&e->mac) && mac_equal(&d->mac, &e->mac)) {
				char m[MAC_STRLEN];
				err(c, it, config_schema_path_key(sub, item, "mac"),
				    "duplicate MAC address '%s' (first at line %d)",
				    mac_format(&d->mac, m), e->loc.line);
			}
		}
	}
}

struct leases_ctx {
	struct config_leases *l;
	bool has_format;
};

static void
on_leases_file(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	struct leases_ctx *lc = obj;
	config_schema_set_path(c, key, val, path, &lc->l->file);
}

static void
on_leases_format(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	static const char *const names[] = {"dnsmasq", "dhcpd", "kea"};
	struct leases_ctx *lc = obj;
	int i = config_schema_get_enum(c, key, val, path, names, 3);
	static const enum leases_format formats[] = {LEASES_DNSMASQ, LEASES_DHCPD, LEASES_KEA};
	if (i < 0)
		return;
	lc->l->format = formats[i];
	lc->has_format = true;
}

static const struct config_schema_key leases_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("file", on_leases_file),
        CONFIG_SCHEMA_CALL_KEY("format", on_leases_format),
};

static void
on_devices_leases(struct config_check_ctx *c, const struct config_node *key,
                  const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	cfg->devices.leases = calloc(val->n ? val->n : 1, sizeof(*cfg->devices.leases));
	if (cfg->devices.leases == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		if (!config_schema_is_mapping(c, it, it, item, false))
			continue;
		struct config_leases *l = &cfg->devices.leases[cfg->devices.nleases++];
		struct leases_ctx lc = {.l = l};
		l->loc.line = it->line;
		l->loc.col = it->col;
		config_schema_walk_map(c, it, item, leases_keys,
		                       sizeof(leases_keys) / sizeof(leases_keys[0]), &lc);
		if (l->file == NULL)
			err(c, it, item, "missing key 'file'");
		if (!lc.has_format && !has_key(it, "format"))
			err(c, it, item, "missing key 'format' (dnsmasq, dhcpd or kea)");
	}
}

static void
on_devices_trusted(struct config_check_ctx *c, const struct config_node *key,
                   const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_schema_cidr_seq(c, key, val, path, &cfg->devices.trusted, &cfg->devices.ntrusted);
}

static const struct config_schema_key oui_keys[] = {
        CONFIG_SCHEMA_PATH_KEY("dir", struct config, devices.oui_dir),
};

/* oui: {dir: PATH} or oui: false (no registry lookups) */
static void
on_devices_oui(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	bool on;
	if (val->kind == CONFIG_NODE_SCALAR) {
		if (config_schema_get_bool(c, key, val, path, &on) == 0 && !on) {
			free(cfg->devices.oui_dir);
			cfg->devices.oui_dir = NULL;
		}
		return;
	}
	if (config_schema_is_mapping(c, key, val, path, true))
		config_schema_walk_map(c, val, path, oui_keys,
		                       sizeof(oui_keys) / sizeof(oui_keys[0]), obj);
}

static void
on_devices_signatures(struct config_check_ctx *c, const struct config_node *key,
                      const struct config_node *val, const char *path, void *obj)
{
	(void)obj;
	/* checked at the end, once every list is known */
	if (config_schema_is_mapping(c, key, val, path, true) || config_node_is_null(val)) {
		c->sig_key = key;
		c->sig_val = val;
	}
	c->signatures_set = true;
}

static void
on_hv_pattern(struct config_check_ctx *c, const struct config_node *key,
              const struct config_node *val, const char *path, void *obj)
{
	struct config_hostname_vendor *h = obj;
	char buf[CONFIG_SHOW_MAX + 8];
	const char *why = NULL;
	const char *s = config_schema_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (hostglob_check(s, &why) != 0) {
		err(c, key, path, "bad hostname pattern '%s': %s",
		    config_schema_show(s, buf, sizeof(buf)), why);
		return;
	}
	config_schema_set_str(c, key, val, path, &h->pattern);
}

static const struct config_schema_key hv_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("pattern", on_hv_pattern),
        CONFIG_SCHEMA_STR_KEY("vendor", struct config_hostname_vendor, vendor),
};

static void
on_devices_hostname_vendors(struct config_check_ctx *c, const struct config_node *key,
                            const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	c->hostname_vendors_set = true;
	cfg->devices.hostname_vendors =
	        calloc(val->n ? val->n : 1, sizeof(*cfg->devices.hostname_vendors));
	if (cfg->devices.hostname_vendors == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		if (!config_schema_is_mapping(c, it, it, item, false))
			continue;
		struct config_hostname_vendor *h =
		        &cfg->devices.hostname_vendors[cfg->devices.nhostname_vendors++];
		h->loc.line = it->line;
		h->loc.col = it->col;
		config_schema_walk_map(c, it, item, hv_keys, sizeof(hv_keys) / sizeof(hv_keys[0]),
		                       h);
		if (h->pattern == NULL && !has_key(it, "pattern"))
			err(c, it, item, "missing key 'pattern'");
		if (h->vendor == NULL && !has_key(it, "vendor"))
			err(c, it, item, "missing key 'vendor'");
	}
}

static const struct config_schema_key devices_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("inventory", on_devices_inventory),
        CONFIG_SCHEMA_CALL_KEY("dhcp_leases", on_devices_leases),
        CONFIG_SCHEMA_BOOL_KEY("arp", struct config, devices.arp),
        CONFIG_SCHEMA_PATH_KEY("arp_file", struct config, devices.arp_file),
        CONFIG_SCHEMA_UINT_KEY("arp_refresh_s", struct config, devices.arp_refresh_s, 1, 86400),
        CONFIG_SCHEMA_UINT_KEY("max_devices", struct config, devices.max_devices, 16, 4194304),
        CONFIG_SCHEMA_UINT_KEY("address_ttl_s", struct config, devices.address_ttl_s, 60,
                               31 * 86400),
        CONFIG_SCHEMA_CALL_KEY("trusted_forwarders", on_devices_trusted),
        CONFIG_SCHEMA_CALL_KEY("oui", on_devices_oui),
        CONFIG_SCHEMA_CALL_KEY("signatures", on_devices_signatures),
        CONFIG_SCHEMA_CALL_KEY("hostname_vendors", on_devices_hostname_vendors),
};

void
config_devices_section(struct config_check_ctx *c, const struct config_node *key,
                       const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	cfg->devices.enabled = true;
	if (config_schema_is_mapping(c, key, val, path, true))
		config_schema_walk_map(c, val, path, devices_keys,
		                       sizeof(devices_keys) / sizeof(devices_keys[0]), obj);
}

static int
add_signature_domain(struct config_signature *sg, const char *name, int line, int col)
{
	char **nv = realloc(sg->domains, (sg->ndomains + 1) * sizeof(*nv));
	if (nv == NULL)
		return -ENOMEM;
	sg->domains = nv;
	struct config_loc *nl = realloc(sg->domain_locs, (sg->ndomains + 1) * sizeof(*nl));
	if (nl == NULL)
		return -ENOMEM;
	sg->domain_locs = nl;
	if ((nv[sg->ndomains] = strdup(name)) == NULL)
		return -ENOMEM;
	nl[sg->ndomains].line = line;
	nl[sg->ndomains].col = col;
	sg->ndomains++;
	return 0;
}

/* One signature entry: a list of this configuration (by name) or a domain name. */
static void
signature_entry(struct config_check_ctx *c, struct config_signature *sg,
                const struct config_node *it, const char *item, bool *used)
{
	struct config *cfg = c->cfg;
	char buf[CONFIG_SHOW_MAX + 8];
	const char *why = NULL;
	struct names_name n;
	const char *s = config_schema_get_string(c, it, it, item, false);
	if (s == NULL)
		return;
	for (size_t li = 0; li < cfg->nlists; li++) {
		if (strcmp(cfg->lists[li].name, s) != 0)
			continue;
		size_t *nv = realloc(sg->lists, (sg->nlists + 1) * sizeof(*nv));
		if (nv == NULL) {
			config_schema_oom(c);
			return;
		}
		sg->lists = nv;
		nv[sg->nlists++] = li;
		used[li] = true;
		return;
	}
	int rc = lists_parse_name(s, strlen(s), &n, &why);
	if (rc < 0) {
		err(c, it, item, "'%s' is neither a list nor a valid name: %s",
		    config_schema_show(s, buf, sizeof(buf)), why);
		return;
	}
	if (rc == 1) {
		err(c, it, item, "'%s' is a local host name",
		    config_schema_show(s, buf, sizeof(buf)));
		return;
	}
	if (add_signature_domain(sg, s, it->line, it->col) != 0)
		config_schema_oom(c);
}

/* The signature of (vendor, strength), added when missing. NULL on ENOMEM. */
static struct config_signature *
signature_of(struct config *cfg, const char *vendor, enum identity_strength strength,
             size_t cap)
{
	for (size_t i = 0; i < cfg->devices.nsignatures; i++) {
		struct config_signature *sg = &cfg->devices.signatures[i];
		if (sg->strength == strength && strcmp(sg->vendor, vendor) == 0)
			return sg;
	}
	if (cfg->devices.nsignatures == cap)
		return NULL;
	struct config_signature *sg = &cfg->devices.signatures[cfg->devices.nsignatures];
	if ((sg->vendor = strdup(vendor)) == NULL)
		return NULL;
	sg->strength = strength;
	cfg->devices.nsignatures++;
	return sg;
}

/* devices.signatures unset: the shipped catalog (policy/catalog.h), one signature per vendor
 * and strength, in catalog order. */
static void
catalog_signatures(struct config_check_ctx *c)
{
	struct config *cfg = c->cfg;
	size_t cap = catalog_nentries ? catalog_nentries : 1;

	cfg->devices.signatures = calloc(cap, sizeof(*cfg->devices.signatures));
	if (cfg->devices.signatures == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < catalog_nentries; i++) {
		const struct catalog_entry *e = &catalog_entries[i];
		struct config_signature *sg =
		        signature_of(cfg, e->vendor, (enum identity_strength)e->strength, cap);
		if (sg == NULL || add_signature_domain(sg, e->name, 0, 0) != 0) {
			config_schema_oom(c);
			return;
		}
	}
}

/* The names of one vendor at one strength: a sequence of names and list names. */
static void
signature_seq(struct config_check_ctx *c, const struct config_node *k,
              const struct config_node *v, const char *vendor, enum identity_strength strength,
              size_t cap, const char *path, bool *used)
{
	char item[CONFIG_PATH_MAX + 24];

	if (!config_schema_is_sequence(c, k, v, path))
		return;
	struct config_signature *sg = signature_of(c->cfg, vendor, strength, cap);
	if (sg == NULL) {
		config_schema_oom(c);
		return;
	}
	if (sg->loc.line == 0) {
		sg->loc.line = k->line;
		sg->loc.col = k->col;
	}
	if (v->n == 0)
		warn(c, k, path, "empty: no name reveals this vendor");
	for (size_t j = 0; j < v->n; j++) {
		snprintf(item, sizeof(item), "%s[%zu]", path, j);
		signature_entry(c, sg, v->items[j], item, used);
	}
}

/*
 * devices.signatures: VENDOR: [names] (each name attributes on its own: strength rom), or
 * VENDOR: {rom: [names], app: [names]}; an OS family: {os: [names]}.
 */
static void
check_signatures(struct config_check_ctx *c, bool *used)
{
	struct config *cfg = c->cfg;
	const struct config_node *val = c->sig_val;
	char path[CONFIG_PATH_MAX], sub[CONFIG_PATH_MAX + 24];

	if (!cfg->devices.enabled)
		return;
	if (!c->signatures_set) {
		catalog_signatures(c);
		return;
	}
	if (val == NULL || val->kind != CONFIG_NODE_MAPPING)
		return;
	size_t cap = 3 * (val->n / 2) + 1;	/* at most one signature per vendor and strength */
	cfg->devices.signatures = calloc(cap, sizeof(*cfg->devices.signatures));
	if (cfg->devices.signatures == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n / 2; i++) {
		const struct config_node *k = val->items[2 * i];
		const struct config_node *v = val->items[2 * i + 1];
		if (!config_schema_map_key(c, val, i, "devices.signatures", path))
			continue;
		if (k->len == 0) {
			err(c, k, path, "vendor name must not be empty");
			continue;
		}
		if (v->kind != CONFIG_NODE_MAPPING) {
			signature_seq(c, k, v, k->str, IDENTITY_STRENGTH_ROM, cap, path, used);
			continue;
		}
		for (size_t j = 0; j < v->n / 2; j++) {
			const struct config_node *sk = v->items[2 * j];
			const struct config_node *sv = v->items[2 * j + 1];
			enum identity_strength st;
			if (!config_schema_map_key(c, v, j, path, sub))
				continue;
			if (identity_strength_from_name(sk->str, &st) != 0) {
				char buf[CONFIG_SHOW_MAX + 8];
				err(c, sk, sub, "unknown strength '%s' (expected rom, app or os)",
				    config_schema_show(sk->str, buf, sizeof(buf)));
				continue;
			}
			signature_seq(c, sk, sv, k->str, st, cap, sub, used);
		}
	}
}

/* devices.hostname_vendors defaults to hostglob's shipped table. */
static void
finish_hostname_vendors(struct config_check_ctx *c)
{
	struct config *cfg = c->cfg;
	if (!cfg->devices.enabled || c->hostname_vendors_set)
		return;
	size_t n = hostglob_default_vendors_len;
	cfg->devices.hostname_vendors = calloc(n ? n : 1, sizeof(*cfg->devices.hostname_vendors));
	if (cfg->devices.hostname_vendors == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct config_hostname_vendor *h = &cfg->devices.hostname_vendors[i];
		cfg->devices.nhostname_vendors++;
		h->pattern = strdup(hostglob_default_vendors[i].pattern);
		h->vendor = strdup(hostglob_default_vendors[i].vendor);
		if (h->pattern == NULL || h->vendor == NULL) {
			config_schema_oom(c);
			return;
		}
	}
}

void
config_devices_finish(struct config_check_ctx *c, bool *used)
{
	check_signatures(c, used);
	finish_hostname_vendors(c);
}
