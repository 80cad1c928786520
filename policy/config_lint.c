/*
 * config_lint: checks of the whole configuration, run at the end of the checking pass, for what
 * would otherwise load without a word and silently disable a ban:
 *   - a group's vendors: naming a vendor that nothing can attribute (a typo never matches);
 *   - server.listen entries without a port (they would listen on port 53), and IPv6 addresses
 *     with a port written without brackets ("::1:53" is the address ::1:53);
 *   - a devices.signatures entry without a dot that names no list (it was taken as a domain);
 *   - an OUI directory that cannot be read (no vendor from MAC prefixes): config_lint_oui,
 *     called by policy_load, as it reads files;
 *   - a state_dir, log.database or log.file the daemon could not create or write (no device
 *     state, no query store): config_lint_paths, from policy_load too;
 *   - clients allowed by server.allow that match no group (forwarded unfiltered).
 * It reads the node tree and the model config_check.c and config_devices.c built, and changes
 * neither.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config_int.h"
#include "text.h"
#include "lists.h"
#include "vendors.h"

#define err(c, at, path, ...)  config_schema_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)
#define warn(c, at, path, ...) config_schema_report((c), DIAG_WARNING, (at), (path), __VA_ARGS__)

/* The value of key name in map, or NULL (also when map is not a mapping). */
static const struct config_node *
map_get(const struct config_node *map, const char *name)
{
	if (map == NULL || map->kind != CONFIG_NODE_MAPPING)
		return NULL;
	for (size_t i = 0; i < map->n / 2; i++) {
		const struct config_node *k = map->items[2 * i];
		if (k->kind == CONFIG_NODE_SCALAR && strcmp(k->str, name) == 0)
			return map->items[2 * i + 1];
	}
	return NULL;
}

static bool
is_sequence(const struct config_node *n)
{
	return n != NULL && n->kind == CONFIG_NODE_SEQUENCE;
}

static bool
is_string(const struct config_node *n)
{
	return n != NULL && n->kind == CONFIG_NODE_SCALAR && n->len > 0 && strlen(n->str) == n->len;
}

/* ---- group vendors ---- */

/* Every vendor name a device can be given: the registry's, the signatures', the hostname
 * patterns' and the inventory's. Returns the number of names (pointers into cfg and
 * vendors_names), or -1 on allocation failure. */
static int
known_vendors(const struct config *cfg, const char ***out)
{
	size_t n = VENDORS_COUNT + cfg->devices.nsignatures + cfg->devices.nhostname_vendors +
	           cfg->devices.ninventory;
	const char **v = calloc(n, sizeof(*v));
	size_t k = 0;
	if (v == NULL)
		return -1;
	for (size_t i = 0; i < VENDORS_COUNT; i++)
		v[k++] = vendors_names[i];
	for (size_t i = 0; i < cfg->devices.nsignatures; i++)	/* an OS family is no vendor */
		if (cfg->devices.signatures[i].vendor != NULL &&
		    cfg->devices.signatures[i].strength != IDENTITY_STRENGTH_OS)
			v[k++] = cfg->devices.signatures[i].vendor;
	for (size_t i = 0; i < cfg->devices.nhostname_vendors; i++)
		if (cfg->devices.hostname_vendors[i].vendor != NULL)
			v[k++] = cfg->devices.hostname_vendors[i].vendor;
	for (size_t i = 0; i < cfg->devices.ninventory; i++)
		if (cfg->devices.inventory[i].vendor != NULL)
			v[k++] = cfg->devices.inventory[i].vendor;
	*out = v;
	return (int)k;
}

static void
check_group_vendors(struct config_check_ctx *c)
{
	const struct config_node *groups = c->groups_val;
	char path[CONFIG_PATH_MAX], item[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	const char **known = NULL;
	int nknown = -1;

	/* without a devices: section the selector is already an error */
	if (!c->cfg->devices.enabled || !is_sequence(groups))
		return;
	for (size_t i = 0; i < groups->n; i++) {
		const struct config_node *vendors = map_get(groups->items[i], "vendors");
		if (!is_sequence(vendors))
			continue;
		if (nknown < 0 && (nknown = known_vendors(c->cfg, &known)) < 0) {
			config_schema_oom(c);
			return;
		}
		config_schema_path_index(path, "groups", i);
		config_schema_path_key(path, path, "vendors");
		for (size_t j = 0; j < vendors->n; j++) {
			const struct config_node *it = vendors->items[j];
			if (!is_string(it))
				continue; /* reported by the selector */
			int k = 0;
			while (k < nknown && strcasecmp(known[k], it->str) != 0)
				k++;
			if (k < nknown)
				continue;
			config_schema_path_index(item, path, j);
			const char *sug = config_schema_suggest(it->str, known, (size_t)nknown);
			if (sug != NULL)
				err(c, it, item, "unknown vendor '%s' (did you mean '%s'?)",
				    config_schema_show(it->str, buf, sizeof(buf)), sug);
			else
				err(c, it, item,
				    "unknown vendor '%s' (no signature, hostname pattern, "
				    "inventory device or MAC registry gives it; known: Xiaomi, "
				    "Oppo, OnePlus, Realme, Vivo, Huawei, Honor, Samsung and the "
				    "vendors of devices.signatures and devices.hostname_vendors)",
				    config_schema_show(it->str, buf, sizeof(buf)));
		}
	}
	free(known);
}

/* ---- server.listen ---- */

/* One listen address as written: it needs a port, and an IPv6 address needs brackets. port: the
 * one suggested ("53" for server.listen, "9153" for http.listen). */
static void
check_listen_item(struct config_check_ctx *c, const struct config_node *it, const char *item,
                  const char *port_hint)
{
	char buf[CONFIG_SHOW_MAX + 8], head[INET6_ADDRSTRLEN + 1];
	struct sockaddr_storage ss;
	socklen_t len;
	uint8_t a6[16];
	const char *s = it->str;

	if (config_parse_addr(s, 53, &ss, &len) != 0)
		return; /* reported by server.listen */
	config_schema_show(s, buf, sizeof(buf));
	if (s[0] == '[') {
		if (strstr(s, "]:") == NULL)
			err(c, it, item, "'%s' has no port (write '%s:%s')", buf, buf, port_hint);
		return;
	}
	const char *colon = strchr(s, ':');
	if (colon == NULL) {
		err(c, it, item, "'%s' has no port (write '%s:%s')", buf, buf, port_hint);
		return;
	}
	if (strchr(colon + 1, ':') == NULL)
		return; /* IPv4 address and port */
	/* An IPv6 address without brackets: "::1:53" is the address ::1:53. When what precedes
	 * the last colon is an address and what follows a port, that is what was meant. */
	const char *last = strrchr(s, ':');
	size_t hlen = (size_t)(last - s), plen = strlen(last + 1);
	bool port = plen >= 1 && plen <= 5 && strspn(last + 1, "0123456789") == plen &&
	            strtoul(last + 1, NULL, 10) <= 65535;
	if (port && hlen < sizeof(head)) {
		memcpy(head, s, hlen);
		head[hlen] = '\0';
		if (inet_pton(AF_INET6, head, a6) == 1) {
			err(c, it, item,
			    "'%s' is an IPv6 address without brackets: with a port, write "
			    "'[%s]:%s'",
			    buf, head, last + 1);
			return;
		}
	}
	err(c, it, item, "'%s' has no port (write '[%s]:%s')", buf, buf, port_hint);
}

static void
check_listen(struct config_check_ctx *c, const struct config_node *root, const char *section,
             const char *port_hint)
{
	char item[CONFIG_PATH_MAX], path[CONFIG_PATH_MAX];
	const struct config_node *listen = map_get(map_get(root, section), "listen");
	if (!is_sequence(listen))
		return;
	config_schema_path_key(path, section, "listen");
	for (size_t i = 0; i < listen->n; i++) {
		const struct config_node *it = listen->items[i];
		if (!is_string(it))
			continue;
		config_schema_path_index(item, path, i);
		check_listen_item(c, it, item, port_hint);
	}
}

/* ---- devices.signatures ---- */

/* An entry without a dot that names no list is a mistyped list name, not a domain. */
static void
check_signature_lists(struct config_check_ctx *c)
{
	const struct config *cfg = c->cfg;
	const struct config_node *sig = c->sig_val;
	char path[CONFIG_PATH_MAX], item[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	const char **names = NULL;

	if (!cfg->devices.enabled || sig == NULL || sig->kind != CONFIG_NODE_MAPPING)
		return;
	for (size_t i = 0; i < sig->n / 2; i++) {
		const struct config_node *k = sig->items[2 * i];
		const struct config_node *v = sig->items[2 * i + 1];
		if (!is_string(k) || !is_sequence(v))
			continue;
		config_schema_path_key(path, "devices.signatures", k->str);
		for (size_t j = 0; j < v->n; j++) {
			const struct config_node *it = v->items[j];
			struct names_name n;
			const char *why = NULL;
			if (!is_string(it) || strchr(it->str, '.') != NULL)
				continue;
			size_t li = 0;
			while (li < cfg->nlists && strcmp(cfg->lists[li].name, it->str) != 0)
				li++;
			/* not a valid name, or a local host name: reported as such */
			if (li < cfg->nlists || lists_parse_name(it->str, it->len, &n, &why) != 0)
				continue;
			if (names == NULL && cfg->nlists > 0) {
				if ((names = calloc(cfg->nlists, sizeof(*names))) == NULL) {
					config_schema_oom(c);
					return;
				}
				for (size_t m = 0; m < cfg->nlists; m++)
					names[m] = cfg->lists[m].name;
			}
			config_schema_path_index(item, path, j);
			const char *sug = config_schema_suggest(it->str, names, cfg->nlists);
			if (sug != NULL)
				err(c, it, item, "unknown list '%s' (did you mean '%s'?)",
				    config_schema_show(it->str, buf, sizeof(buf)), sug);
			else
				err(c, it, item,
				    "unknown list '%s' (a domain name needs a dot: write "
				    "'%s.example')",
				    config_schema_show(it->str, buf, sizeof(buf)), buf);
		}
	}
	free(names);
}

/* ---- devices.oui ---- */

/* The files resolver/devices/oui.c requires (iab.csv is optional). */
static const char *const oui_required[] = {"oui.csv", "mam.csv", "oui36.csv"};

void
config_lint_oui(const struct config *cfg, struct diag *diag)
{
	char file[4096], buf[CONFIG_SHOW_MAX + 8];
	const char *missing = NULL;
	int e = 0;

	if (!cfg->devices.enabled || cfg->devices.oui_dir == NULL)
		return;
	if (access(cfg->devices.oui_dir, R_OK | X_OK) != 0) {
		e = errno;
		missing = cfg->devices.oui_dir;
	}
	for (size_t i = 0; missing == NULL && i < sizeof(oui_required) / sizeof(oui_required[0]);
	     i++) {
		if ((size_t)snprintf(file, sizeof(file), "%s/%s", cfg->devices.oui_dir,
		                     oui_required[i]) >= sizeof(file)) {
			e = ENAMETOOLONG;
			missing = cfg->devices.oui_dir;
		} else if (access(file, R_OK) != 0) {
			e = errno;
			missing = file;
		}
	}
	if (missing == NULL)
		return;
	char why[128];
	snprintf(why, sizeof(why), "%s", strerror(e));
	why[0] = (char)tolower((unsigned char)why[0]);
	diag_add(diag, DIAG_WARNING, cfg->path, 0, 0, "devices.oui.dir",
	         "cannot read '%s': %s; vendors from MAC prefixes are not known (install "
	         "ieee-data, or write 'oui: false')",
	         config_schema_show(missing, buf, sizeof(buf)), why);
}

/* ---- places the daemon writes ---- */

/* 0 when the daemon's user (this process's real uid) can write in directory dir, creating it
 * and its missing parents first when create is set; else an errno, with the component at
 * fault (dir or the nearest existing parent) in at. */
static int
dir_writable(const char *dir, bool create, char *at, size_t size)
{
	struct stat st;
	size_t n = strlen(dir);

	if (n == 0 || n >= size)
		return ENAMETOOLONG;
	memcpy(at, dir, n + 1);
	for (;;) {
		if (stat(at, &st) == 0) {
			if (!S_ISDIR(st.st_mode))
				return ENOTDIR;
			return access(at, W_OK | X_OK) == 0 ? 0 : errno;
		}
		if (errno != ENOENT || !create)
			return errno;
		char *slash = strrchr(at, '/');
		if (slash == NULL) {
			at[0] = '.';
			at[1] = '\0';
		} else if (slash == at) {
			at[1] = '\0';
		} else {
			*slash = '\0';
		}
	}
}

/* The directory of file path into buf ("." when it has none). */
static void
parent_of(const char *path, char *buf, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n = slash == NULL ? 0 : slash == path ? 1 : (size_t)(slash - path);

	if (n == 0 || n >= size)
		snprintf(buf, size, "%s", n == 0 ? "." : path);
	else
		snprintf(buf, size, "%.*s", (int)n, path);
}

static void
report_unwritable(const struct config *cfg, struct diag *diag, const char *key, const char *what,
                  const char *at, int e, const char *uses)
{
	char a[1024], b[1024], why[128]; /* paths in full: a cut one would not say where */

	snprintf(why, sizeof(why), "%s", strerror(e));
	why[0] = (char)tolower((unsigned char)why[0]);
	diag_add(diag, DIAG_WARNING, cfg->path, 0, 0, key,
	         "cannot write '%s' (at '%s': %s, as uid %u): %s", text_safe(a, sizeof(a), what),
	         text_safe(b, sizeof(b), at), why, (unsigned)getuid(), uses);
}

/* The CA file the encrypted upstreams are verified against must be readable (the daemon does
 * not start without it). */
static void
lint_tls_ca(const struct config *cfg, struct diag *diag)
{
	char a[1024], why[128];
	bool encrypted = false;

	for (size_t i = 0; i < cfg->upstream.nservers; i++)
		encrypted |= cfg->upstream.servers[i].transport != CONFIG_TRANSPORT_DNS;
	const char *ca = cfg->upstream.tls_ca != NULL ? cfg->upstream.tls_ca
						      : "/etc/ssl/certs/ca-certificates.crt";
	if (!encrypted || access(ca, R_OK) == 0)
		return;
	snprintf(why, sizeof(why), "%s", strerror(errno));
	why[0] = (char)tolower((unsigned char)why[0]);
	diag_add(diag, DIAG_WARNING, cfg->path, 0, 0, "upstream.tls_ca",
	         "cannot read '%s' (%s, as uid %u): tls:// and https:// servers cannot be "
	         "verified and veto serve does not start",
	         text_safe(a, sizeof(a), ca), why, (unsigned)getuid());
}

void
config_lint_paths(const struct config *cfg, struct diag *diag)
{
	char at[4096], dir[4096];
	int e;

	if (cfg->state_dir != NULL && (cfg->devices.enabled || cfg->log.database != NULL) &&
	    (e = dir_writable(cfg->state_dir, true, at, sizeof(at))) != 0)
		report_unwritable(cfg, diag, "state_dir", cfg->state_dir, at, e,
		                  "no saved device state, control channel or query database");
	if (cfg->log.database != NULL) {
		parent_of(cfg->log.database, dir, sizeof(dir));
		bool in_state = cfg->state_dir != NULL && strcmp(dir, cfg->state_dir) == 0;
		if (!in_state && (e = dir_writable(dir, false, at, sizeof(at))) != 0)
			report_unwritable(
			        cfg, diag, "log.database", cfg->log.database, at, e,
			        "no query database (veto log and veto report have nothing)");
	}
	if (cfg->log.file != NULL && strcmp(cfg->log.file, "-") != 0) {
		if (access(cfg->log.file, F_OK) == 0) {
			e = access(cfg->log.file, W_OK) == 0 ? 0 : errno;
			snprintf(at, sizeof(at), "%s", cfg->log.file);
		} else {
			parent_of(cfg->log.file, dir, sizeof(dir));
			e = dir_writable(dir, false, at, sizeof(at));
		}
		if (e != 0)
			report_unwritable(cfg, diag, "log.file", cfg->log.file, at, e,
			                  "no JSON lines query log");
	}
	lint_tls_ca(cfg, diag);
}

/* ---- coverage of server.allow by the groups' clients ---- */

/* An address range [lo, hi] of one family: 4 (IPv4) or 16 octets, network order. */
struct range {
	uint8_t lo[16], hi[16];
};

static size_t
octets(int family)
{
	return family == AF_INET ? 4 : 16;
}

static void
cidr_range(const struct config_cidr *p, struct range *r)
{
	size_t n = octets(p->family);
	memset(r, 0, sizeof(*r));
	memcpy(r->lo, p->addr, n);
	memcpy(r->hi, p->addr, n);
	for (size_t bit = p->prefix; bit < n * 8; bit++)
		r->hi[bit / 8] |= (uint8_t)(0x80 >> (bit % 8));
}

static int
compare_ranges(const void *a, const void *b)
{
	return memcmp(((const struct range *)a)->lo, ((const struct range *)b)->lo, 16);
}

/* a + 1 into out; false when a is the last address. */
static bool
next_address(const uint8_t *a, size_t n, uint8_t *out)
{
	memcpy(out, a, n);
	for (size_t i = n; i-- > 0;)
		if (++out[i] != 0)
			return true;
	return false;
}

/*
 * The first address range inside p that no range of v (sorted by lo, all of p's family) covers,
 * as the largest prefix starting at its first address, into *out. False when v covers p.
 * Linear in n once v is sorted.
 */
static bool
first_uncovered(const struct config_cidr *p, const struct range *v, size_t n,
                struct config_cidr *out)
{
	size_t len = octets(p->family);
	struct range want;
	uint8_t cur[16] = {0}, gap_hi[16];
	cidr_range(p, &want);
	memcpy(cur, want.lo, len);
	memcpy(gap_hi, want.hi, len);
	for (size_t i = 0; i < n; i++) {
		if (memcmp(v[i].hi, cur, len) < 0)
			continue; /* ends before the cursor */
		if (memcmp(v[i].lo, cur, len) > 0) {
			/* a gap from cur to v[i].lo - 1 (or the end of p) */
			if (memcmp(v[i].lo, want.hi, len) <= 0) {
				memcpy(gap_hi, v[i].lo, len);
				for (size_t k = len; k-- > 0;)
					if (gap_hi[k]-- != 0)
						break;
			}
			break;
		}
		if (memcmp(v[i].hi, want.hi, len) >= 0 || !next_address(v[i].hi, len, cur))
			return false; /* covered to the end of p */
	}
	/* the shortest prefix at cur that is aligned and ends within the gap */
	for (unsigned plen = p->prefix; plen <= len * 8; plen++) {
		struct config_cidr c = {.family = p->family, .prefix = (uint8_t)plen};
		struct range r;
		memcpy(c.addr, cur, len);
		cidr_range(&c, &r);
		bool aligned = true;
		for (size_t bit = plen; bit < len * 8 && aligned; bit++)
			aligned = (cur[bit / 8] & (0x80 >> (bit % 8))) == 0;
		if (aligned && memcmp(r.hi, gap_hi, len) <= 0) {
			*out = c;
			return true;
		}
	}
	return false; /* not reached: a single address always fits */
}

static void
check_coverage(struct config_check_ctx *c)
{
	const struct config *cfg = c->cfg;
	struct range *v[2] = {NULL, NULL};
	size_t n[2] = {0, 0}, total = 0;
	struct config_cidr gap;
	char text[64];

	if (cfg->ngroups == 0)
		return; /* no group at all: nothing is filtered, evidently */
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		if (g->nclients == 0 &&
		    g->nmacs + g->nvendors + g->nhostnames + g->ndevices + g->ntags == 0 &&
		    !g->has_randomised)
			return; /* a catch-all group */
		total += g->nclients;
	}
	/* device selectors do not cover addresses: a device may not be identified */
	for (size_t f = 0; f < 2; f++) {
		if (total > 0 && (v[f] = calloc(total, sizeof(*v[f]))) == NULL) {
			config_schema_oom(c);
			goto cleanup;
		}
	}
	for (size_t i = 0; i < cfg->ngroups; i++) {
		for (size_t k = 0; k < cfg->groups[i].nclients; k++) {
			const struct config_cidr *p = &cfg->groups[i].clients[k];
			size_t f = p->family == AF_INET ? 0 : 1;
			cidr_range(p, &v[f][n[f]++]);
		}
	}
	for (size_t f = 0; f < 2; f++)
		if (n[f] > 1)
			qsort(v[f], n[f], sizeof(*v[f]), compare_ranges);
	for (size_t i = 0; i < cfg->server.nallow; i++) {
		const struct config_cidr *a = &cfg->server.allow[i];
		size_t f = a->family == AF_INET ? 0 : 1;
		if (!first_uncovered(a, v[f], n[f], &gap))
			continue;
		config_cidr_to_text(&gap, text, sizeof(text));
		warn(c, c->groups_key, "groups",
		     "clients in %s match no group and are forwarded unfiltered", text);
		break;
	}
cleanup:
	free(v[0]);
	free(v[1]);
}

void
config_lint(struct config_check_ctx *c, const struct config_node *root, size_t errors)
{
	check_listen(c, root, "server", "53");
	check_listen(c, root, "http", "9153");
	check_signature_lists(c);
	check_group_vendors(c);
	/* with errors in the groups, their clients are not all known */
	if (c->diag->nerrors == errors && c->rc == 0)
		check_coverage(c);
}
