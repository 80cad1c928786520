/*
 * config: the configuration model, its defaults, address parsing and the loader entry points.
 * The YAML front end is config_yaml.c, the checks that fill the model are config_check.c.
 */
#include "config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"
#include "fileio.h"

static const char *const action_names[] = {
	[CONFIG_ACTION_INHERIT] = "inherit",
	[CONFIG_ACTION_SINKHOLE] = "sinkhole",
	[CONFIG_ACTION_NXDOMAIN] = "nxdomain",
	[CONFIG_ACTION_NODATA] = "nodata",
	[CONFIG_ACTION_REFUSED] = "refused",
};

const char *
config_action_name(enum config_action a)
{
	if ((size_t)a < sizeof(action_names) / sizeof(action_names[0]))
		return action_names[a];
	return "unknown";
}

int
config_action_parse(const char *text, enum config_action *out)
{
	for (size_t i = CONFIG_ACTION_SINKHOLE; i < sizeof(action_names) / sizeof(action_names[0]);
	     i++) {
		if (strcmp(text, action_names[i]) == 0) {
			*out = (enum config_action)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Parses 1..65535 written in decimal digits only. */
static int
parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;
	if (*s == '\0' || strlen(s) > 5)
		return -EINVAL;
	for (const char *p = s; *p != '\0'; p++) {
		if (*p < '0' || *p > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*p - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

int
config_parse_addr(const char *text, uint16_t default_port, struct sockaddr_storage *ss,
		  socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *port_text = NULL;
	uint16_t port = default_port;
	size_t tlen = strlen(text);

	if (tlen == 0 || tlen > 64)
		return -EINVAL;
	if (text[0] == '[') {
		const char *close = strchr(text, ']');
		if (close == NULL || (size_t)(close - text - 1) >= sizeof(host))
			return -EINVAL;
		memcpy(host, text + 1, (size_t)(close - text - 1));
		host[close - text - 1] = '\0';
		if (close[1] == ':')
			port_text = close + 2;
		else if (close[1] != '\0')
			return -EINVAL;
	} else {
		const char *colon = strchr(text, ':');
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			/* host:port with an IPv4 host */
			if ((size_t)(colon - text) >= sizeof(host))
				return -EINVAL;
			memcpy(host, text, (size_t)(colon - text));
			host[colon - text] = '\0';
			port_text = colon + 1;
		} else {
			/* an IPv4 address, or a bare IPv6 address without port */
			if (tlen >= sizeof(host))
				return -EINVAL;
			memcpy(host, text, tlen + 1);
		}
	}
	if (port_text != NULL && parse_port(port_text, &port) != 0)
		return -EINVAL;

	struct sockaddr_storage tmp;
	memset(&tmp, 0, sizeof(tmp));
	struct sockaddr_in *sin = (struct sockaddr_in *)&tmp;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&tmp;
	socklen_t l;
	if (text[0] != '[' && inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		l = sizeof(*sin);
	} else if (strchr(host, ':') != NULL && inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		l = sizeof(*sin6);
	} else {
		return -EINVAL;
	}
	*ss = tmp;
	*len = l;
	return 0;
}

int
config_parse_cidr_loose(const char *text, struct config_cidr *out, const char **why)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
	struct config_cidr c;

	memset(&c, 0, sizeof(c));
	if (hlen == 0 || hlen >= sizeof(host)) {
		*why = "not an IPv4 or IPv6 address";
		return -EINVAL;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	unsigned max;
	if (inet_pton(AF_INET, host, c.addr) == 1) {
		c.family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, host, c.addr) == 1) {
		c.family = AF_INET6;
		max = 128;
	} else {
		*why = "not an IPv4 or IPv6 address";
		return -EINVAL;
	}
	unsigned prefix = max;
	if (slash != NULL) {
		const char *p = slash + 1;
		if (*p == '\0' || strlen(p) > 3) {
			*why = "bad prefix length";
			return -EINVAL;
		}
		prefix = 0;
		for (; *p != '\0'; p++) {
			if (*p < '0' || *p > '9') {
				*why = "bad prefix length";
				return -EINVAL;
			}
			prefix = prefix * 10 + (unsigned)(*p - '0');
		}
		if (prefix > max) {
			*why = c.family == AF_INET ? "prefix longer than 32" : "prefix longer than 128";
			return -EINVAL;
		}
	}
	c.prefix = (uint8_t)prefix;
	*out = c;
	return 0;
}

/* Clears the host bits; true when some were set. */
static bool
cidr_mask(struct config_cidr *c)
{
	unsigned bytes = c->family == AF_INET ? 4 : 16;
	bool changed = false;
	for (unsigned i = 0; i < bytes; i++) {
		unsigned bits = c->prefix > i * 8 ? c->prefix - i * 8 : 0;
		uint8_t mask = bits >= 8 ? 0xff : (uint8_t)(0xff << (8 - bits));
		if ((c->addr[i] & ~mask) != 0)
			changed = true;
		c->addr[i] &= mask;
	}
	return changed;
}

int
config_parse_cidr(const char *text, struct config_cidr *out, const char **why)
{
	struct config_cidr c;
	int rc = config_parse_cidr_loose(text, &c, why);
	if (rc != 0)
		return rc;
	if (cidr_mask(&c)) {
		*why = "host bits are set";
		return -EINVAL;
	}
	*out = c;
	return 0;
}

void
config_cidr_to_text(const struct config_cidr *c, char *buf, size_t size)
{
	struct config_cidr m = *c;
	char a[INET6_ADDRSTRLEN];
	cidr_mask(&m);
	if (inet_ntop(m.family, m.addr, a, sizeof(a)) == NULL)
		a[0] = '\0';
	snprintf(buf, size, "%s/%u", a, (unsigned)m.prefix);
}

size_t
config_edit_distance(const char *a, const char *b, size_t cap)
{
	size_t la = strlen(a), lb = strlen(b);
	if (la > 64 || lb > 64)
		return cap + 1;
	size_t diff = la > lb ? la - lb : lb - la;
	if (diff > cap)
		return cap + 1;
	size_t row[65];
	for (size_t j = 0; j <= lb; j++)
		row[j] = j;
	for (size_t i = 1; i <= la; i++) {
		size_t diag = row[0];
		row[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t up = row[j];
			size_t sub = diag + (tolower((unsigned char)a[i - 1]) !=
					     tolower((unsigned char)b[j - 1]));
			size_t best = sub;
			if (up + 1 < best)
				best = up + 1;
			if (row[j - 1] + 1 < best)
				best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb] > cap ? cap + 1 : row[lb];
}

char *
config_resolve_path(const char *dir, const char *path)
{
	char *out = NULL;
	if (path[0] == '/' || dir == NULL || dir[0] == '\0' || strcmp(dir, ".") == 0)
		return strdup(path);
	size_t dl = strlen(dir);
	const char *sep = dir[dl - 1] == '/' ? "" : "/";
	if (asprintf(&out, "%s%s%s", dir, sep, path) < 0)
		return NULL;
	return out;
}

static void
addr_free(struct config_addr *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].text);
		free(v[i].tls_name);
		free(v[i].url);
	}
	free(v);
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Frees what the devices: section owns (inventory, leases, signatures, hostname vendors...). */
static void
devices_free(struct config *cfg)
{
	for (size_t i = 0; i < cfg->devices.ninventory; i++) {
		struct config_device *d = &cfg->devices.inventory[i];
		free(d->name);
		free(d->owner);
		free(d->vendor);
		strv_free(d->tags, d->ntags);
	}
	free(cfg->devices.inventory);
	for (size_t i = 0; i < cfg->devices.nleases; i++)
		free(cfg->devices.leases[i].file);
	free(cfg->devices.leases);
	free(cfg->devices.arp_file);
	free(cfg->devices.trusted);
	free(cfg->devices.oui_dir);
	for (size_t i = 0; i < cfg->devices.nsignatures; i++) {
		struct config_signature *sg = &cfg->devices.signatures[i];
		free(sg->vendor);
		free(sg->lists);
		strv_free(sg->domains, sg->ndomains);
		free(sg->domain_locs);
	}
	free(cfg->devices.signatures);
	for (size_t i = 0; i < cfg->devices.nhostname_vendors; i++) {
		free(cfg->devices.hostname_vendors[i].pattern);
		free(cfg->devices.hostname_vendors[i].vendor);
	}
	free(cfg->devices.hostname_vendors);
}

static void
http_free(struct config *cfg)
{
	addr_free(cfg->http.listen, cfg->http.nlisten);
	for (size_t i = 0; i < cfg->http.nusers; i++) {
		free(cfg->http.users[i].name);
		free(cfg->http.users[i].password);
	}
	free(cfg->http.users);
	for (size_t i = 0; i < cfg->http.ntokens; i++)
		free(cfg->http.tokens[i].name);
	free(cfg->http.tokens);
}

void
config_free(struct config **cfgp)
{
	struct config *cfg = *cfgp;
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->dir);
	addr_free(cfg->server.listen, cfg->server.nlisten);
	free(cfg->server.allow);
	http_free(cfg);
	free(cfg->store.postgresql);
	free(cfg->store.instance);
	free(cfg->store.password_file);
	addr_free(cfg->upstream.servers, cfg->upstream.nservers);
	free(cfg->upstream.resolv_conf_path);
	free(cfg->upstream.tls_ca);
	for (size_t i = 0; i < cfg->nlists; i++) {
		struct config_list *l = &cfg->lists[i];
		free(l->name);
		for (size_t j = 0; j < l->nfiles; j++)
			free(l->files[j]);
		free(l->files);
		free(l->file_locs);
		for (size_t j = 0; j < l->ndomains; j++)
			free(l->domains[j]);
		free(l->domains);
		free(l->domain_locs);
		for (size_t j = 0; j < l->nurls; j++) {
			free(l->urls[j]);
			if (l->cache_files != NULL)
				free(l->cache_files[j]);
		}
		free(l->urls);
		free(l->url_locs);
		free(l->cache_files);
		free(l->ca_file);
	}
	free(cfg->lists);
	for (size_t i = 0; i < cfg->ngroups; i++) {
		struct config_group *g = &cfg->groups[i];
		free(g->name);
		free(g->clients);
		free(g->block);
		free(g->allow);
		free(g->macs);
		strv_free(g->vendors, g->nvendors);
		strv_free(g->hostnames, g->nhostnames);
		strv_free(g->devices, g->ndevices);
		strv_free(g->tags, g->ntags);
	}
	free(cfg->groups);
	devices_free(cfg);
	free(cfg->log.file);
	free(cfg->log.database);
	free(cfg->state_dir);
	free(cfg->server.user);
	free(cfg->server.group);
	free(cfg);
	*cfgp = NULL;
}

static const char *const default_listen[] = {"127.0.0.1:5353", "[::1]:5353"};
static const char *const default_allow[] = {"127.0.0.0/8",    "::1/128",	"10.0.0.0/8",
					    "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"};

int
config_new_defaults(const char *file, const char *dir, struct config **out)
{
	const size_t nlisten = sizeof(default_listen) / sizeof(default_listen[0]);
	const size_t nallow = sizeof(default_allow) / sizeof(default_allow[0]);
	struct config *cfg = calloc(1, sizeof(*cfg));
	int rc = -ENOMEM;

	if (cfg == NULL)
		return -ENOMEM;
	cfg->path = strdup(file);
	cfg->dir = strdup(dir);
	cfg->server.listen = calloc(nlisten, sizeof(*cfg->server.listen));
	cfg->server.allow = calloc(nallow, sizeof(*cfg->server.allow));
	cfg->upstream.resolv_conf_path = strdup("/etc/resolv.conf");
	cfg->log.file = strdup("-");
	cfg->state_dir = strdup("/var/lib/veto");
	cfg->devices.arp = true;
	cfg->devices.arp_refresh_s = 30;
	cfg->devices.max_devices = 65536;
	cfg->devices.address_ttl_s = 4 * 3600;
	cfg->devices.arp_file = strdup("/proc/net/arp");
	cfg->devices.oui_dir = strdup("/usr/share/ieee-data");
	if (cfg->path == NULL || cfg->dir == NULL || cfg->server.listen == NULL ||
	    cfg->server.allow == NULL || cfg->upstream.resolv_conf_path == NULL ||
	    cfg->log.file == NULL || cfg->state_dir == NULL || cfg->devices.arp_file == NULL ||
	    cfg->devices.oui_dir == NULL)
		goto cleanup;
	for (size_t i = 0; i < nlisten; i++) {
		struct config_addr *a = &cfg->server.listen[i];
		if (config_parse_addr(default_listen[i], 53, &a->ss, &a->len) != 0) {
			rc = -EINVAL;
			goto cleanup;
		}
		a->text = strdup(default_listen[i]);
		if (a->text == NULL)
			goto cleanup;
		cfg->server.nlisten++;
	}
	for (size_t i = 0; i < nallow; i++) {
		const char *why;
		if (config_parse_cidr(default_allow[i], &cfg->server.allow[i], &why) != 0) {
			rc = -EINVAL;
			goto cleanup;
		}
		cfg->server.nallow++;
	}
	cfg->server.tcp_idle_timeout_ms = CONFIG_TCP_IDLE_TIMEOUT_MS;
	cfg->server.tcp_connections = CONFIG_TCP_CONNECTIONS;
	cfg->server.tcp_pipeline = CONFIG_TCP_PIPELINE;
	cfg->server.workers = 0; /* one per CPU */
	cfg->server.tcp_connections_per_client = CONFIG_TCP_CONNECTIONS_PER_CLIENT;
	cfg->server.queries_per_client = CONFIG_QUERIES_PER_CLIENT;
	cfg->server.queries_per_prefix = CONFIG_QUERIES_PER_PREFIX;
	cfg->server.error_replies_per_second = CONFIG_ERROR_REPLIES_PER_SECOND;
	cfg->server.rate_limit.action = CONFIG_RATE_TRUNCATE;
	cfg->upstream.resolv_conf = true;
	cfg->upstream.timeout_ms = 1500;
	cfg->cache.entries = 100000;
	cfg->cache.min_ttl = 0;
	cfg->cache.max_ttl = 86400;
	cfg->cache.serve_stale_s = CONFIG_SERVE_STALE_S;
	cfg->cache.prefetch = true;
	cfg->block.action = CONFIG_ACTION_SINKHOLE;
	cfg->block.ttl = 60;
	cfg->log.queries = CONFIG_LOG_ALL;
	cfg->log.retention_days = 90;
	cfg->log.evidence_buffer_mb = 64;
	cfg->store.spool_mb = 1024;
	cfg->store.resync_s = 60;
	*out = cfg;
	return 0;
cleanup:
	config_free(&cfg);
	return rc;
}

/* config_load_text, and with partial != NULL what config_load_partial gives on -EINVAL. */
static int
load_text(const char *file, const char *dir, const char *text, size_t len, struct diag *diag,
	  struct config **out, struct config **partial)
{
	struct config_node *root = NULL;
	struct config *cfg = NULL;
	size_t first = diag->n;
	int rc;

	rc = config_yaml_parse(file, text, len, diag, &root);
	if (rc != 0)
		goto cleanup;
	rc = config_new_defaults(file, dir, &cfg);
	if (rc != 0) {
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "out of memory");
		goto cleanup;
	}
	rc = config_check(root, file, cfg, diag);
	if (rc == -EINVAL && partial != NULL) {
		*partial = cfg;
		cfg = NULL;
	}
	if (rc != 0)
		goto cleanup;
	*out = cfg;
	cfg = NULL;
cleanup:
	diag_sort(diag, first);
	config_free(&cfg);
	config_node_free(&root);
	return rc;
}

int
config_load_text(const char *file, const char *dir, const char *text, size_t len,
		 struct diag *diag, struct config **out)
{
	return load_text(file, dir, text, len, diag, out, NULL);
}

/* Reads a whole file (fileio_read_all); reports and returns -errno on failure. */
static int
read_file(const char *path, struct diag *diag, char **text, size_t *len)
{
	int rc = fileio_read_all(path, text, len);
	if (rc == 0)
		return 0;
	char msg[128];
	snprintf(msg, sizeof(msg), "%s", strerror(-rc));
	msg[0] = (char)tolower((unsigned char)msg[0]);
	diag_add(diag, DIAG_ERROR, path, 0, 0, NULL, "cannot read the configuration: %s", msg);
	return rc;
}

int
config_load_partial(const char *path, struct diag *diag, struct config **out,
		    struct config **partial)
{
	char *text = NULL;
	char *dir = NULL;
	size_t len = 0;
	int rc;

	rc = read_file(path, diag, &text, &len);
	if (rc != 0)
		return rc;
	const char *slash = strrchr(path, '/');
	if (slash == NULL)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (dir == NULL) {
		diag_add(diag, DIAG_ERROR, path, 0, 0, NULL, "out of memory");
		rc = -ENOMEM;
		goto cleanup;
	}
	rc = load_text(path, dir, text, len, diag, out, partial);
cleanup:
	free(dir);
	free(text);
	return rc;
}

int
config_load(const char *path, struct diag *diag, struct config **out)
{
	return config_load_partial(path, diag, out, NULL);
}
