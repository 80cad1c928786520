/*
 * config_check: walks the YAML node tree into struct config, reporting every problem with its
 * file, line, column and key path.
 *
 * Each mapping is described by a table of keys (name -> handler): adding a key is one line in a
 * table and one handler. A value's problems are reported at the place its path ends: the key for
 * "groups[1].action", the item for "server.listen[1]".
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config_int.h"

#define err(c, at, path, ...)  config_schema_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)
#define warn(c, at, path, ...) config_schema_report((c), DIAG_WARNING, (at), (path), __VA_ARGS__)

/* ---- server ---- */

void
config_addr_seq(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, uint16_t default_port,
                const char *what, struct config_addr **v, size_t *n)
{
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	if (val->n == 0 && what != NULL) {
		err(c, key, path, "needs at least one %s", what);
		return;
	}
	struct config_addr *nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		if (config_schema_get_addr(c, it, it, item, default_port, &nv[nn]) != 0)
			continue;
		for (size_t j = 0; j < nn; j++) {
			if (nv[j].len == nv[nn].len &&
			    memcmp(&nv[j].ss, &nv[nn].ss, nv[nn].len) == 0) {
				err(c, it, item, "duplicate address '%s' (first at line %d)",
				    nv[nn].text, nv[j].loc.line);
				break;
			}
		}
		nn++;
	}
	for (size_t i = 0; i < *n; i++)
		free((*v)[i].text);
	free(*v);
	*v = nv;
	*n = nn;
}

static void
on_server_listen(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_addr_seq(c, key, val, path, 53, "address", &cfg->server.listen,
	                &cfg->server.nlisten);
}

static void
on_server_allow(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_schema_cidr_seq(c, key, val, path, &cfg->server.allow, &cfg->server.nallow);
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		warn(c, key, path, "empty: every client is refused");
}

static const char *const rate_actions[] = {"truncate", "refused", "drop"};

static void
on_rate_action(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	int i = config_schema_get_enum(c, key, val, path, rate_actions,
	                               sizeof(rate_actions) / sizeof(rate_actions[0]));
	if (i >= 0)
		cfg->server.rate_limit.action = (enum config_rate_action)i;
}

#define RATE_MAX 1000000
static const struct config_schema_key rate_limit_keys[] = {
        CONFIG_SCHEMA_UINT_KEY("queries_per_second", struct config,
                               server.rate_limit.queries_per_second, 0, RATE_MAX),
        CONFIG_SCHEMA_UINT_KEY("burst", struct config, server.rate_limit.burst, 0, RATE_MAX),
        CONFIG_SCHEMA_UINT_KEY("prefix_queries_per_second", struct config,
                               server.rate_limit.prefix_queries_per_second, 0, RATE_MAX),
        CONFIG_SCHEMA_UINT_KEY("prefix_burst", struct config, server.rate_limit.prefix_burst, 0,
                               RATE_MAX),
        CONFIG_SCHEMA_CALL_KEY("action", on_rate_action),
};

static void
on_server_rate_limit(struct config_check_ctx *c, const struct config_node *key,
                     const struct config_node *val, const char *path, void *obj)
{
	if (config_schema_is_mapping(c, key, val, path, true))
		config_schema_walk_map(c, val, path, rate_limit_keys,
		                       sizeof(rate_limit_keys) / sizeof(rate_limit_keys[0]), obj);
}

/* A burst of 0 is twice the rate (at least 1). */
static void
finish_rate_limit(struct config *cfg)
{
	uint32_t *pairs[][2] = {
	        {&cfg->server.rate_limit.queries_per_second, &cfg->server.rate_limit.burst},
	        {&cfg->server.rate_limit.prefix_queries_per_second,
	         &cfg->server.rate_limit.prefix_burst},
	};
	for (size_t i = 0; i < 2; i++) {
		if (*pairs[i][1] == 0)
			*pairs[i][1] = *pairs[i][0] > 0 ? 2 * *pairs[i][0] : 0;
	}
}

#define WORKERS_MAX 64
static void
on_server_workers(struct config_check_ctx *c, const struct config_node *key,
                  const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_schema_get_uint(c, key, val, path, 0, WORKERS_MAX, &cfg->server.workers);
}

static const char *const udp_sockets_values[] = {"shared", "per_worker"};

static void
on_server_udp_sockets(struct config_check_ctx *c, const struct config_node *key,
                      const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	int i = config_schema_get_enum(c, key, val, path, udp_sockets_values,
	                               sizeof(udp_sockets_values) / sizeof(udp_sockets_values[0]));
	if (i >= 0)
		cfg->server.udp_sockets = (enum config_udp_sockets)i;
}

static const struct config_schema_key server_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("listen", on_server_listen),
        CONFIG_SCHEMA_CALL_KEY("allow", on_server_allow),
        /* RFC 7766 section 6.2.3 recommends idle timeouts of the order of seconds. */
        CONFIG_SCHEMA_UINT_KEY("tcp_idle_timeout_ms", struct config, server.tcp_idle_timeout_ms,
                               100, 3600000),
        CONFIG_SCHEMA_UINT_KEY("tcp_connections", struct config, server.tcp_connections, 1, 65536),
        /* At most the daemon's queries in flight (SERVER_MAX_QUERIES, dns/server_int.h). */
        CONFIG_SCHEMA_UINT_KEY("tcp_pipeline", struct config, server.tcp_pipeline, 1, 16384),
        CONFIG_SCHEMA_UINT_KEY("tcp_connections_per_client", struct config,
                               server.tcp_connections_per_client, 1, 65536),
        CONFIG_SCHEMA_UINT_KEY("queries_per_client", struct config, server.queries_per_client, 1,
                               65536),
        CONFIG_SCHEMA_UINT_KEY("queries_per_prefix", struct config, server.queries_per_prefix, 1,
                               65536),
        CONFIG_SCHEMA_UINT_KEY("error_replies_per_second", struct config,
                               server.error_replies_per_second, 0, RATE_MAX),
        CONFIG_SCHEMA_CALL_KEY("rate_limit", on_server_rate_limit),
        CONFIG_SCHEMA_STR_KEY("user", struct config, server.user),
        CONFIG_SCHEMA_STR_KEY("group", struct config, server.group),
        CONFIG_SCHEMA_CALL_KEY("workers", on_server_workers),
        CONFIG_SCHEMA_CALL_KEY("udp_sockets", on_server_udp_sockets),
};

/* ---- upstream ---- */

/* One upstream.servers entry: plain DNS or tls:// (config_parse_upstream). */
static int
get_upstream(struct config_check_ctx *c, const struct config_node *it, const char *item,
             struct config_addr *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	const char *why = NULL;
	const char *s = config_schema_get_string(c, it, it, item, false);
	if (s == NULL)
		return -EINVAL;
	struct config_addr a;
	int e = config_parse_upstream(s, &a, &why);
	if (e == 0) {
		a.text = strdup(s);
		if (a.text == NULL)
			e = -ENOMEM;
	}
	if (e == -ENOMEM) {
		free(a.tls_name);
		free(a.url);
		config_schema_oom(c);
		return e;
	}
	if (e != 0) {
		err(c, it, item, "bad address '%s' (%s)", config_schema_show(s, buf, sizeof(buf)), why);
		return e;
	}
	a.loc.line = it->line;
	a.loc.col = it->col;
	*out = a;
	return 0;
}

static void
on_upstream_servers(struct config_check_ctx *c, const struct config_node *key,
                    const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	if (val->n == 0) {
		err(c, key, path, "needs at least one server");
		return;
	}
	struct config_addr *nv = calloc(val->n, sizeof(*nv));
	size_t nn = 0;
	bool resolv = false;
	if (nv == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		if (it->kind == CONFIG_NODE_SCALAR && strcmp(it->str, "resolv.conf") == 0) {
			resolv = true;
			continue;
		}
		if (get_upstream(c, it, item, &nv[nn]) == 0)
			nn++;
	}
	for (size_t i = 0; i < cfg->upstream.nservers; i++) {
		free(cfg->upstream.servers[i].text);
		free(cfg->upstream.servers[i].tls_name);
		free(cfg->upstream.servers[i].url);
	}
	free(cfg->upstream.servers);
	cfg->upstream.servers = nv;
	cfg->upstream.nservers = nn;
	cfg->upstream.resolv_conf = resolv;
}

static const struct config_schema_key upstream_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("servers", on_upstream_servers),
        CONFIG_SCHEMA_UINT_KEY("timeout_ms", struct config, upstream.timeout_ms, 1, 60000),
        CONFIG_SCHEMA_PATH_KEY("tls_ca", struct config, upstream.tls_ca),
};

/* ---- cache ---- */

#define TTL_MAX 2147483647u /* RFC 2181 */

static void
on_cache_min_ttl(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	if (config_schema_get_uint(c, key, val, path, 0, TTL_MAX, &cfg->cache.min_ttl) == 0)
		c->min_ttl_key = key;
}

static void
on_cache_max_ttl(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	if (config_schema_get_uint(c, key, val, path, 0, TTL_MAX, &cfg->cache.max_ttl) == 0)
		c->max_ttl_key = key;
}

/* serve_stale: off (or false, no; quoted or not) or a duration */
static void
on_cache_serve_stale(struct config_check_ctx *c, const struct config_node *key,
                     const struct config_node *val, const char *path, void *obj)
{
	static const char *const off[] = {"off", "false", "no"};
	struct config *cfg = obj;
	if (val->kind == CONFIG_NODE_SCALAR) {
		for (size_t i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
			if (strcmp(val->str, off[i]) == 0) {
				cfg->cache.serve_stale_s = 0;
				return;
			}
		}
	}
	config_schema_get_duration(c, key, val, path, 1, CONFIG_SERVE_STALE_MAX_S,
	                           &cfg->cache.serve_stale_s);
}

static const struct config_schema_key cache_keys[] = {
        CONFIG_SCHEMA_UINT_KEY("entries", struct config, cache.entries, 0, 100000000),
        CONFIG_SCHEMA_CALL_KEY("min_ttl", on_cache_min_ttl),
        CONFIG_SCHEMA_CALL_KEY("max_ttl", on_cache_max_ttl),
        CONFIG_SCHEMA_CALL_KEY("serve_stale", on_cache_serve_stale),
        CONFIG_SCHEMA_BOOL_KEY("prefetch", struct config, cache.prefetch),
};

/* ---- block ---- */

static void
on_block_action(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_schema_get_action(c, key, val, path, &cfg->block.action);
}

static void
get_ip(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
       const char *path, int family, uint8_t *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	uint8_t tmp[16];
	const char *s = config_schema_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (inet_pton(family, s, tmp) != 1) {
		err(c, key, path, "bad address '%s' (expected an %s address)",
		    config_schema_show(s, buf, sizeof(buf)), family == AF_INET ? "IPv4" : "IPv6");
		return;
	}
	memcpy(out, tmp, family == AF_INET ? 4 : 16);
}

static void
on_block_ipv4(struct config_check_ctx *c, const struct config_node *key,
              const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	get_ip(c, key, val, path, AF_INET, cfg->block.ipv4);
}

static void
on_block_ipv6(struct config_check_ctx *c, const struct config_node *key,
              const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	get_ip(c, key, val, path, AF_INET6, cfg->block.ipv6);
}

static const struct config_schema_key block_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("action", on_block_action),
        CONFIG_SCHEMA_CALL_KEY("ipv4", on_block_ipv4),
        CONFIG_SCHEMA_CALL_KEY("ipv6", on_block_ipv6),
        CONFIG_SCHEMA_UINT_KEY("ttl", struct config, block.ttl, 0, TTL_MAX),
};

/* ---- groups ---- */

static void
on_group_name(struct config_check_ctx *c, const struct config_node *key,
              const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	if (config_schema_set_str(c, key, val, path, &gc->g->name) == 0)
		gc->name_key = key;
}

static void
on_group_clients(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	gc->selectors = true;
	config_schema_cidr_seq(c, key, val, path, &gc->g->clients, &gc->g->nclients);
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		err(c, key, path,
		    "empty: leave 'clients' out to make a group that matches every client");
}

/* Resolves list names into indexes (appended to *v). */
static void
list_refs(struct config_check_ctx *c, struct config_check_group *gc, const struct config_node *key,
          const struct config_node *val, const char *path, size_t **v, size_t *n)
{
	struct config *cfg = c->cfg;
	char item[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	if (!config_schema_is_sequence(c, key, val, path) || val->n == 0)
		return;
	size_t *nv = realloc(*v, (*n + val->n) * sizeof(*nv));
	if (nv == NULL) {
		config_schema_oom(c);
		return;
	}
	*v = nv;
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		const char *s = config_schema_get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		size_t li = 0;
		while (li < cfg->nlists && strcmp(cfg->lists[li].name, s) != 0)
			li++;
		if (li == cfg->nlists) {
			const char *names[256];
			size_t nn = cfg->nlists < 256 ? cfg->nlists : 256;
			for (size_t j = 0; j < nn; j++)
				names[j] = cfg->lists[j].name;
			const char *sug = config_schema_suggest(s, names, nn);
			if (sug != NULL)
				err(c, it, item, "unknown list '%s' (did you mean '%s'?)",
				    config_schema_show(s, buf, sizeof(buf)), sug);
			else
				err(c, it, item, "unknown list '%s'",
				    config_schema_show(s, buf, sizeof(buf)));
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < *n; j++)
			dup = dup || nv[j] == li;
		if (dup) {
			warn(c, it, item, "list '%s' is named twice",
			     config_schema_show(s, buf, sizeof(buf)));
			continue;
		}
		nv[(*n)++] = li;
		gc->used[li] = true;
	}
}

static void
on_group_block(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	list_refs(c, gc, key, val, path, &gc->g->block, &gc->g->nblock);
}

static void
on_group_allow(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	list_refs(c, gc, key, val, path, &gc->g->allow, &gc->g->nallow);
}

static void
on_group_default(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	static const char *const names[] = {"allow", "deny"};
	struct config_check_group *gc = obj;
	int i = config_schema_get_enum(c, key, val, path, names, 2);
	if (i >= 0)
		gc->g->default_deny = i == 1;
}

static void
on_group_action(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	config_schema_get_action(c, key, val, path, &gc->g->action);
}

static const struct config_schema_key group_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("name", on_group_name),
        CONFIG_SCHEMA_CALL_KEY("clients", on_group_clients),
        CONFIG_SCHEMA_CALL_KEY("block", on_group_block),
        CONFIG_SCHEMA_CALL_KEY("allow", on_group_allow),
        CONFIG_SCHEMA_CALL_KEY("default", on_group_default),
        CONFIG_SCHEMA_CALL_KEY("action", on_group_action),
        CONFIG_SCHEMA_CALL_KEY("macs", config_devices_group_macs),
        CONFIG_SCHEMA_CALL_KEY("vendors", config_devices_group_vendors),
        CONFIG_SCHEMA_CALL_KEY("hostnames", config_devices_group_hostnames),
        CONFIG_SCHEMA_CALL_KEY("devices", config_devices_group_devices),
        CONFIG_SCHEMA_CALL_KEY("tags", config_devices_group_tags),
        CONFIG_SCHEMA_CALL_KEY("randomised_mac", config_devices_group_randomised),
};

static bool
cidr_covers(const struct config_cidr *outer, const struct config_cidr *inner)
{
	if (outer->family != inner->family || outer->prefix > inner->prefix)
		return false;
	unsigned full = outer->prefix / 8, rest = outer->prefix % 8;
	if (memcmp(outer->addr, inner->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (outer->addr[full] & mask) == (inner->addr[full] & mask);
}

/* True when every client of group i is selected by some earlier group. */
static bool
shadowed(const struct config *cfg, size_t i, size_t *by)
{
	const struct config_group *g = &cfg->groups[i];
	size_t last = 0;
	if (g->nclients == 0 ||
	    g->nmacs + g->nvendors + g->nhostnames + g->ndevices + g->ntags > 0 ||
	    g->has_randomised)
		return false; /* device selectors can match clients outside the prefixes */
	for (size_t k = 0; k < g->nclients; k++) {
		bool covered = false;
		for (size_t j = 0; j < i && !covered; j++) {
			const struct config_group *e = &cfg->groups[j];
			for (size_t m = 0; m < e->nclients && !covered; m++) {
				if (cidr_covers(&e->clients[m], &g->clients[k])) {
					covered = true;
					if (j > last)
						last = j;
				}
			}
		}
		if (!covered)
			return false;
	}
	*by = last;
	return true;
}

static void
check_groups(struct config_check_ctx *c, const struct config_node *key,
             const struct config_node *val, bool *used)
{
	struct config *cfg = c->cfg;
	char path[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	if (config_node_is_null(val) || !config_schema_is_sequence(c, key, val, "groups"))
		return;
	cfg->groups = calloc(val->n ? val->n : 1, sizeof(*cfg->groups));
	bool *selectors = calloc(val->n ? val->n : 1, sizeof(*selectors));
	const struct config_node **items = calloc(val->n ? val->n : 1, sizeof(*items));
	if (cfg->groups == NULL || selectors == NULL || items == NULL) {
		config_schema_oom(c);
		goto cleanup;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(path, "groups", i);
		if (!config_schema_is_mapping(c, it, it, path, false))
			continue;
		struct config_group *g = &cfg->groups[cfg->ngroups];
		struct config_check_group gc = {.g = g, .used = used};
		g->loc.line = it->line;
		g->loc.col = it->col;
		cfg->ngroups++;
		items[cfg->ngroups - 1] = it;
		config_schema_walk_map(c, it, path, group_keys,
		                       sizeof(group_keys) / sizeof(group_keys[0]), &gc);
		selectors[cfg->ngroups - 1] = gc.selectors;
		if (g->name == NULL) {
			if (gc.name_key == NULL)
				err(c, it, path, "missing key 'name'");
			continue;
		}
		for (size_t j = 0; j + 1 < cfg->ngroups; j++) {
			if (cfg->groups[j].name != NULL &&
			    strcmp(cfg->groups[j].name, g->name) == 0) {
				char np[CONFIG_PATH_MAX];
				config_schema_path_key(np, path, "name");
				err(c, gc.name_key, np,
				    "duplicate group name '%s' (first at line %d)",
				    config_schema_show(g->name, buf, sizeof(buf)),
				    cfg->groups[j].loc.line);
				break;
			}
		}
		for (size_t a = 0; a < g->nallow; a++)
			for (size_t b = 0; b < g->nblock; b++)
				if (g->allow[a] == g->block[b])
					warn(c, it, path,
					     "list '%s' is both blocked and allowed "
					     "(allow wins)",
					     cfg->lists[g->allow[a]].name);
	}
	/* Unreachable groups: after a catch-all, or all of whose clients an earlier one takes.
	 * Both group names are quoted through config_schema_show: a name is any string. */
	size_t catch_all = SIZE_MAX;
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		const char *name = g->name != NULL ? g->name : "?";
		char other[CONFIG_SHOW_MAX + 8];
		size_t by;
		config_schema_path_index(path, "groups", i);
		if (catch_all != SIZE_MAX) {
			const struct config_group *e = &cfg->groups[catch_all];
			err(c, items[i], path,
			    "unreachable: group '%s' is after group '%s' (line %d), which matches "
			    "every client",
			    config_schema_show(name, buf, sizeof(buf)),
			    config_schema_show(e->name != NULL ? e->name : "?", other,
			                       sizeof(other)),
			    e->loc.line);
		} else if (shadowed(cfg, i, &by)) {
			const struct config_group *e = &cfg->groups[by];
			err(c, items[i], path,
			    "unreachable: every client of group '%s' matches an earlier group "
			    "first ('%s', line %d)",
			    config_schema_show(name, buf, sizeof(buf)),
			    config_schema_show(e->name != NULL ? e->name : "?", other,
			                       sizeof(other)),
			    e->loc.line);
		}
		if (!selectors[i] && catch_all == SIZE_MAX)
			catch_all = i;
	}
cleanup:
	free(selectors);
	free(items);
}

/* ---- log ---- */

static void
on_log_queries(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	static const char *const names[] = {
	        [CONFIG_LOG_ALL] = "all",
	        [CONFIG_LOG_BLOCKED] = "blocked",
	        [CONFIG_LOG_NONE] = "none",
	};
	struct config *cfg = obj;
	int i = config_schema_get_enum(c, key, val, path, names, sizeof(names) / sizeof(names[0]));
	if (i >= 0)
		cfg->log.queries = (enum config_log_queries)i;
}

static void
on_log_file(struct config_check_ctx *c, const struct config_node *key,
            const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = config_schema_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	/* "-" is standard output, anything else a file */
	int rc = strcmp(s, "-") == 0 ? config_schema_set_str(c, key, val, path, &cfg->log.file)
	                             : config_schema_set_path(c, key, val, path, &cfg->log.file);
	if (rc == 0)
		c->log_file_set = true;
}

static void
on_log_database(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	(void)obj;
	/* resolved against state_dir once the whole file is read */
	c->database = config_schema_get_string(c, key, val, path, false);
	c->database_at = val;
}

static const struct config_schema_key log_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("queries", on_log_queries),
        CONFIG_SCHEMA_CALL_KEY("file", on_log_file),
        CONFIG_SCHEMA_CALL_KEY("database", on_log_database),
        CONFIG_SCHEMA_UINT_KEY("retention_days", struct config, log.retention_days, 0, 36500),
        CONFIG_SCHEMA_UINT_KEY("evidence_buffer_mb", struct config, log.evidence_buffer_mb, 1,
                               65536),
};

/* log.database resolves against state_dir; with a database and no log.file, no JSON lines.
 * store.postgresql is the database when set: log.database is then ignored (a warning). */
static void
finish_log(struct config_check_ctx *c)
{
	struct config *cfg = c->cfg;
	if (cfg->store.postgresql != NULL) {
		if (c->database != NULL)
			warn(c, c->database_at, "log.database",
			     "ignored: store.postgresql is set, the query log and device events go "
			     "to PostgreSQL");
		if (!c->log_file_set) {
			free(cfg->log.file);
			cfg->log.file = NULL;
		}
		return;
	}
	if (c->database == NULL)
		return;
	char *db = config_resolve_path(cfg->state_dir, c->database);
	if (db == NULL) {
		config_schema_oom(c);
		return;
	}
	free(cfg->log.database);
	cfg->log.database = db;
	if (!c->log_file_set) {
		free(cfg->log.file);
		cfg->log.file = NULL;
	}
}

/* ---- top level ---- */

#define SECTION(fn, keys)                                                                          \
	static void fn(struct config_check_ctx *c, const struct config_node *key,                  \
	               const struct config_node *val, const char *path, void *obj)                 \
	{                                                                                          \
		if (config_schema_is_mapping(c, key, val, path, true))                             \
			config_schema_walk_map(c, val, path, keys, sizeof(keys) / sizeof(keys[0]), \
			                       obj);                                               \
	}

SECTION(on_server, server_keys)
SECTION(on_upstream, upstream_keys)
SECTION(on_cache, cache_keys)
SECTION(on_block, block_keys)
SECTION(on_log, log_keys)

static void
on_groups(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, void *obj)
{
	(void)path;
	(void)obj;
	/* Checked after everything else, once every list is known. */
	c->groups_key = key;
	c->groups_val = val;
}

static const struct config_schema_key top_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("server", on_server),
        CONFIG_SCHEMA_CALL_KEY("upstream", on_upstream),
        CONFIG_SCHEMA_CALL_KEY("cache", on_cache),
        CONFIG_SCHEMA_CALL_KEY("block", on_block),
        CONFIG_SCHEMA_CALL_KEY("lists", config_lists_section),
        CONFIG_SCHEMA_CALL_KEY("groups", on_groups),
        CONFIG_SCHEMA_CALL_KEY("log", on_log),
        CONFIG_SCHEMA_PATH_KEY("state_dir", struct config, state_dir),
        CONFIG_SCHEMA_CALL_KEY("devices", config_devices_section),
        CONFIG_SCHEMA_CALL_KEY("http", config_http_section),
        CONFIG_SCHEMA_CALL_KEY("store", config_store_section),
};

int
config_check(const struct config_node *root, const char *file, struct config *cfg,
             struct diag *diag)
{
	struct config_check_ctx c = {.diag = diag, .file = file, .cfg = cfg};
	size_t errors = diag->nerrors;
	bool *used = NULL;

	if (root == NULL || config_node_is_null(root)) {
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "empty configuration");
		return -EINVAL;
	}
	if (root->kind != CONFIG_NODE_MAPPING) {
		err(&c, root, NULL, "expected a mapping at the top level, got %s",
		    config_schema_kind_name(root));
		return -EINVAL;
	}
	config_schema_walk_map(&c, root, "", top_keys, sizeof(top_keys) / sizeof(top_keys[0]), cfg);
	finish_log(&c);
	config_lists_finish(&c);
	finish_rate_limit(cfg);
	config_http_finish(&c);

	if (cfg->cache.min_ttl > cfg->cache.max_ttl) {
		const struct config_node *at =
		        c.min_ttl_key != NULL ? c.min_ttl_key : c.max_ttl_key;
		err(&c, at, at == c.min_ttl_key ? "cache.min_ttl" : "cache.max_ttl",
		    "min_ttl (%u) is greater than max_ttl (%u)", (unsigned)cfg->cache.min_ttl,
		    (unsigned)cfg->cache.max_ttl);
	}

	used = calloc(cfg->nlists ? cfg->nlists : 1, sizeof(*used));
	if (used == NULL) {
		config_schema_oom(&c);
		goto cleanup;
	}
	config_devices_finish(&c, used);
	if (c.groups_val != NULL)
		check_groups(&c, c.groups_key, c.groups_val, used);
	for (size_t i = 0; i < cfg->nlists; i++) {
		if (used[i])
			continue;
		char path[CONFIG_PATH_MAX];
		struct config_node at = {.line = cfg->lists[i].loc.line,
		                         .col = cfg->lists[i].loc.col};
		config_schema_path_key(path, "lists", cfg->lists[i].name);
		warn(&c, &at, path, "used by no group");
	}
	config_lint(&c, root, errors);
cleanup:
	free(used);
	if (c.rc != 0)
		return c.rc;
	return diag->nerrors > errors ? -EINVAL : 0;
}
