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

/* ---- messages ---- */

void
config_check_report(struct config_check_ctx *c, enum diag_level level, const struct config_node *at,
		    const char *path,
       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(c->diag, level, c->file, at != NULL ? at->line : 0, at != NULL ? at->col : 0,
		  path != NULL && path[0] != '\0' ? path : NULL, fmt, ap);
	va_end(ap);
}

#define err(c, at, path, ...)  config_check_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)
#define warn(c, at, path, ...) config_check_report((c), DIAG_WARNING, (at), (path), __VA_ARGS__)

void
config_check_oom(struct config_check_ctx *c)
{
	if (c->rc == 0)
		diag_add(c->diag, DIAG_ERROR, c->file, 0, 0, NULL, "out of memory");
	c->rc = -ENOMEM;
}

/* A printable, bounded copy of s for messages (control octets become '?'). */
const char *
config_check_show(const char *s, char *buf, size_t size)
{
	size_t n = 0;
	for (; s[n] != '\0' && n + 4 < size && n < CONFIG_SHOW_MAX; n++) {
		unsigned char ch = (unsigned char)s[n];
		buf[n] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (s[n] != '\0' && n >= 3) {
		memcpy(buf + n - 3, "...", 3);
	}
	buf[n] = '\0';
	return buf;
}

const char *
config_check_kind_name(const struct config_node *n)
{
	if (config_node_is_null(n))
		return "null";
	switch (n->kind) {
	case CONFIG_NODE_SCALAR:
		return n->plain ? "a scalar" : "a string";
	case CONFIG_NODE_SEQUENCE:
		return "a sequence";
	case CONFIG_NODE_MAPPING:
		return "a mapping";
	}
	return "something else";
}

/* ---- paths ---- */

const char *
config_check_path_key(char *buf, const char *parent, const char *key)
{
	char tmp[CONFIG_SHOW_MAX + 8];
	size_t n = 0;
	config_check_show(key, tmp, sizeof(tmp));
	/* Bounded copies: a path is at most CONFIG_PATH_MAX - 1 octets, longer ones are cut. */
	for (const char *p = parent; *p != '\0' && n + 1 < CONFIG_PATH_MAX; p++)
		buf[n++] = *p;
	if (parent[0] != '\0' && n + 1 < CONFIG_PATH_MAX)
		buf[n++] = '.';
	for (const char *p = tmp; *p != '\0' && n + 1 < CONFIG_PATH_MAX; p++)
		buf[n++] = *p;
	buf[n] = '\0';
	return buf;
}

const char *
config_check_path_index(char *buf, const char *parent, size_t i)
{
	snprintf(buf, CONFIG_PATH_MAX, "%s[%zu]", parent, i);
	return buf;
}

/* ---- typed values ---- */

/* A string value: a scalar without inner NUL. Reports and returns NULL otherwise. */
const char *
config_check_get_string(struct config_check_ctx *c, const struct config_node *at,
			const struct config_node *val,
	   const char *path, bool allow_empty)
{
	if (val->kind != CONFIG_NODE_SCALAR || (config_node_is_null(val) && !allow_empty)) {
		err(c, at, path, "expected a string, got %s", config_check_kind_name(val));
		return NULL;
	}
	if (strlen(val->str) != val->len) {
		err(c, at, path, "string contains a NUL character");
		return NULL;
	}
	if (val->len == 0 && !allow_empty) {
		err(c, at, path, "must not be empty");
		return NULL;
	}
	return val->str;
}

int
config_check_get_uint(struct config_check_ctx *c, const struct config_node *at,
		      const struct config_node *val,
	 const char *path, uint32_t min, uint32_t max, uint32_t *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	if (val->kind != CONFIG_NODE_SCALAR || !val->plain || config_node_is_null(val)) {
		err(c, at, path, "expected an integer, got %s", config_check_kind_name(val));
		return -EINVAL;
	}
	uint64_t v = 0;
	bool ok = val->len > 0 && val->len <= 10;
	for (size_t i = 0; ok && i < val->len; i++) {
		if (val->str[i] < '0' || val->str[i] > '9')
			ok = false;
		else
			v = v * 10 + (uint64_t)(val->str[i] - '0');
	}
	if (!ok || v < min || v > max) {
		err(c, at, path, "expected an integer from %u to %u, got '%s'", (unsigned)min,
		    (unsigned)max, config_check_show(val->str, buf, sizeof(buf)));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

bool
config_check_is_sequence(struct config_check_ctx *c, const struct config_node *at,
			 const struct config_node *val,
	    const char *path)
{
	if (val->kind == CONFIG_NODE_SEQUENCE)
		return true;
	err(c, at, path, "expected a sequence, got %s", config_check_kind_name(val));
	return false;
}

/* Mappings; a null section ("server:" with nothing below) counts as an empty one. */
bool
config_check_is_mapping(struct config_check_ctx *c, const struct config_node *at,
			const struct config_node *val,
	   const char *path, bool null_ok)
{
	if (val->kind == CONFIG_NODE_MAPPING)
		return true;
	if (null_ok && config_node_is_null(val))
		return false;
	err(c, at, path, "expected a mapping, got %s", config_check_kind_name(val));
	return false;
}

/* Reports s, a value that is none of names[]: a value in the wrong case gets the right one, like
 * an unknown key gets a suggestion; anything else the list of values. */
static void
unknown_value(struct config_check_ctx *c, const struct config_node *at, const char *path,
	      const char *s, const char *const *names, size_t n)
{
	char buf[CONFIG_SHOW_MAX + 8], expected[256] = "";
	for (size_t i = 0; i < n; i++) {
		if (strcasecmp(s, names[i]) == 0) {
			err(c, at, path, "unknown value '%s' (did you mean '%s'?)",
			    config_check_show(s, buf, sizeof(buf)), names[i]);
			return;
		}
	}
	size_t off = 0;
	for (size_t i = 0; i < n && off < sizeof(expected); i++)
		off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s%s",
					i ? ", " : "", names[i]);
	err(c, at, path, "unknown value '%s' (expected %s)",
	    config_check_show(s, buf, sizeof(buf)), expected);
}

static int
get_action(struct config_check_ctx *c, const struct config_node *at, const struct config_node *val,
	   const char *path, enum config_action *out)
{
	const char *names[CONFIG_ACTION_REFUSED - CONFIG_ACTION_SINKHOLE + 1];
	const char *s = config_check_get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	if (config_action_parse(s, out) != 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			names[i] = config_action_name((enum config_action)(CONFIG_ACTION_SINKHOLE + i));
		unknown_value(c, at, path, s, names, sizeof(names) / sizeof(names[0]));
		return -EINVAL;
	}
	return 0;
}

/* One of names[]; returns its index or -1 (reported). */
int
config_check_get_enum(struct config_check_ctx *c, const struct config_node *at,
		      const struct config_node *val,
	 const char *path, const char *const *names, size_t n)
{
	const char *s = config_check_get_string(c, at, val, path, false);
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	unknown_value(c, at, path, s, names, n);
	return -1;
}

static int
get_cidr(struct config_check_ctx *c, const struct config_node *at, const struct config_node *val,
	 const char *path, struct config_cidr *out)
{
	char buf[CONFIG_SHOW_MAX + 8], net[64];
	const char *why = NULL;
	const char *s = config_check_get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	struct config_cidr cidr;
	if (config_parse_cidr(s, &cidr, &why) == 0) {
		cidr.loc.line = at->line;
		cidr.loc.col = at->col;
		*out = cidr;
		return 0;
	}
	if (config_parse_cidr_loose(s, &cidr, &why) == 0) {
		config_cidr_to_text(&cidr, net, sizeof(net));
		err(c, at, path, "bad prefix '%s': host bits are set (did you mean '%s'?)",
		    config_check_show(s, buf, sizeof(buf)), net);
	} else {
		err(c, at, path, "bad prefix '%s': %s",
		    config_check_show(s, buf, sizeof(buf)), why);
	}
	return -EINVAL;
}

static int
get_addr(struct config_check_ctx *c, const struct config_node *at, const struct config_node *val,
	 const char *path, uint16_t default_port, struct config_addr *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	const char *s = config_check_get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	struct config_addr a;
	memset(&a, 0, sizeof(a));
	if (config_parse_addr(s, default_port, &a.ss, &a.len) != 0) {
		err(c, at, path,
		    "bad address '%s' (expected IPv4, IPv4:port, IPv6 or [IPv6]:port)",
		    config_check_show(s, buf, sizeof(buf)));
		return -EINVAL;
	}
	a.text = strdup(s);
	if (a.text == NULL) {
		config_check_oom(c);
		return -ENOMEM;
	}
	a.loc.line = at->line;
	a.loc.col = at->col;
	*out = a;
	return 0;
}

static int
set_value(struct config_check_ctx *c, const struct config_node *key,
	  const struct config_node *val, const char *path, const char *dir, char **field)
{
	const char *s = config_check_get_string(c, key, val, path, false);
	if (s == NULL)
		return -EINVAL;
	char *copy = dir != NULL ? config_resolve_path(dir, s) : strdup(s);
	if (copy == NULL) {
		config_check_oom(c);
		return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

int
config_check_set_str(struct config_check_ctx *c, const struct config_node *key,
		     const struct config_node *val, const char *path, char **field)
{
	return set_value(c, key, val, path, NULL, field);
}

int
config_check_set_path(struct config_check_ctx *c, const struct config_node *key,
		      const struct config_node *val, const char *path, char **field)
{
	return set_value(c, key, val, path, c->cfg->dir, field);
}

/* A name suggestion among candidates, or NULL. */
static const char *
suggest(const char *word, const char *const *cands, size_t n)
{
	size_t wl = strlen(word);
	size_t cap = wl <= 3 ? 1 : wl <= 6 ? 2 : 3;
	const char *best = NULL;
	size_t best_d = cap + 1;
	for (size_t i = 0; i < n; i++) {
		size_t d = config_edit_distance(word, cands[i], cap);
		if (d < best_d) {
			best_d = d;
			best = cands[i];
		}
	}
	return best;
}

/* ---- mappings ---- */

/* True when the key at pair i repeats an earlier key of the same mapping (reported). */
static bool
duplicate_key(struct config_check_ctx *c, const struct config_node *map, size_t i, const char *path)
{
	const struct config_node *key = map->items[2 * i];
	char buf[CONFIG_SHOW_MAX + 8];
	for (size_t j = 0; j < i; j++) {
		const struct config_node *k = map->items[2 * j];
		if (k->kind == CONFIG_NODE_SCALAR && k->len == key->len &&
		    memcmp(k->str, key->str, key->len) == 0) {
			err(c, key, path, "duplicate key '%s' (first at line %d)",
			    config_check_show(key->str, buf, sizeof(buf)), k->line);
			return true;
		}
	}
	return false;
}

bool
config_check_key_ok(struct config_check_ctx *c, const struct config_node *map, size_t i,
		    const char *path)
{
	const struct config_node *key = map->items[2 * i];
	if (key->kind != CONFIG_NODE_SCALAR || strlen(key->str) != key->len) {
		err(c, key, path, "keys must be strings, got %s", config_check_kind_name(key));
		return false;
	}
	return !duplicate_key(c, map, i, path);
}

void
config_check_walk_map(struct config_check_ctx *c, const struct config_node *map, const char *path,
	 const struct config_check_key *keys, size_t nkeys, void *obj)
{
	char child[CONFIG_PATH_MAX], sbuf[CONFIG_SHOW_MAX + 8];
	const char *names[32];
	size_t nnames = nkeys < 32 ? nkeys : 32;
	for (size_t k = 0; k < nnames; k++)
		names[k] = keys[k].name;

	for (size_t i = 0; i < map->n / 2; i++) {
		const struct config_node *key = map->items[2 * i];
		const struct config_node *val = map->items[2 * i + 1];
		if (key->kind != CONFIG_NODE_SCALAR) {
			err(c, key, path, "keys must be strings, got %s",
			    config_check_kind_name(key));
			continue;
		}
		config_check_path_key(child, path, key->str);
		if (!config_check_key_ok(c, map, i, child))
			continue;
		size_t k = 0;
		while (k < nkeys && strcmp(keys[k].name, key->str) != 0)
			k++;
		if (k == nkeys) {
			const char *s = suggest(key->str, names, nnames);
			if (s != NULL) {
				err(c, key, child, "unknown key (did you mean '%s'?)", s);
			} else {
				char known[256] = "";
				size_t off = 0;
				for (size_t j = 0; j < nnames && off < sizeof(known); j++)
					off += (size_t)snprintf(known + off, sizeof(known) - off,
								"%s%s", j ? ", " : "", names[j]);
				err(c, key, child, "unknown key '%s' (expected one of %s)",
				    config_check_show(key->str, sbuf, sizeof(sbuf)), known);
			}
			continue;
		}
		keys[k].fn(c, key, val, child, obj);
	}
}

/* ---- server ---- */

/* Parses a sequence of addresses into a new array replacing *v / *n. */
static void
addr_seq(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
	 const char *path, struct config_addr **v, size_t *n, const char *what)
{
	char item[CONFIG_PATH_MAX];
	if (!config_check_is_sequence(c, key, val, path))
		return;
	if (val->n == 0) {
		err(c, key, path, "needs at least one %s", what);
		return;
	}
	struct config_addr *nv = calloc(val->n, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		config_check_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_check_path_index(item, path, i);
		if (get_addr(c, it, it, item, 53, &nv[nn]) != 0)
			continue;
		for (size_t j = 0; j < nn; j++) {
			if (nv[j].len == nv[nn].len && memcmp(&nv[j].ss, &nv[nn].ss,
							      nv[nn].len) == 0) {
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

void
config_check_cidr_seq(struct config_check_ctx *c, const struct config_node *key,
		      const struct config_node *val,
	 const char *path, struct config_cidr **v, size_t *n)
{
	char item[CONFIG_PATH_MAX];
	if (!config_check_is_sequence(c, key, val, path))
		return;
	struct config_cidr *nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		config_check_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_check_path_index(item, path, i);
		if (get_cidr(c, it, it, item, &nv[nn]) == 0)
			nn++;
	}
	free(*v);
	*v = nv;
	*n = nn;
}

static void
on_server_listen(struct config_check_ctx *c, const struct config_node *key,
		 const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	addr_seq(c, key, val, path, &cfg->server.listen, &cfg->server.nlisten, "address");
}

static void
on_server_allow(struct config_check_ctx *c, const struct config_node *key,
		const struct config_node *val,
		const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_cidr_seq(c, key, val, path, &cfg->server.allow, &cfg->server.nallow);
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		warn(c, key, path, "empty: every client is refused");
}

/* RFC 7766 section 6.2.3 recommends idle timeouts of the order of seconds. */
static void
on_server_tcp_idle_timeout(struct config_check_ctx *c, const struct config_node *key,
			   const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 100, 3600000, &cfg->server.tcp_idle_timeout_ms);
}

static void
on_server_tcp_connections(struct config_check_ctx *c, const struct config_node *key,
			  const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 1, 65536, &cfg->server.tcp_connections);
}

/* At most the daemon's queries in flight (SERVER_MAX_QUERIES in resolver/server_int.h). */
static void
on_server_tcp_pipeline(struct config_check_ctx *c, const struct config_node *key,
		       const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 1, 16384, &cfg->server.tcp_pipeline);
}

static const struct config_check_key server_keys[] = {
	{"listen", on_server_listen},
	{"allow", on_server_allow},
	{"tcp_idle_timeout_ms", on_server_tcp_idle_timeout},
	{"tcp_connections", on_server_tcp_connections},
	{"tcp_pipeline", on_server_tcp_pipeline},
};

/* ---- upstream ---- */

static void
on_upstream_servers(struct config_check_ctx *c, const struct config_node *key,
		    const struct config_node *val,
		    const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX];
	if (!config_check_is_sequence(c, key, val, path))
		return;
	if (val->n == 0) {
		err(c, key, path, "needs at least one server");
		return;
	}
	struct config_addr *nv = calloc(val->n, sizeof(*nv));
	size_t nn = 0;
	bool resolv = false;
	if (nv == NULL) {
		config_check_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_check_path_index(item, path, i);
		if (it->kind == CONFIG_NODE_SCALAR && strcmp(it->str, "resolv.conf") == 0) {
			resolv = true;
			continue;
		}
		if (get_addr(c, it, it, item, 53, &nv[nn]) == 0)
			nn++;
	}
	for (size_t i = 0; i < cfg->upstream.nservers; i++)
		free(cfg->upstream.servers[i].text);
	free(cfg->upstream.servers);
	cfg->upstream.servers = nv;
	cfg->upstream.nservers = nn;
	cfg->upstream.resolv_conf = resolv;
}

static void
on_upstream_timeout(struct config_check_ctx *c, const struct config_node *key,
		    const struct config_node *val,
		    const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 1, 60000, &cfg->upstream.timeout_ms);
}

static const struct config_check_key upstream_keys[] = {
	{"servers", on_upstream_servers},
	{"timeout_ms", on_upstream_timeout},
};

/* ---- cache ---- */

#define TTL_MAX 2147483647u	/* RFC 2181 */

static void
on_cache_entries(struct config_check_ctx *c, const struct config_node *key,
		 const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 0, 100000000, &cfg->cache.entries);
}

static void
on_cache_min_ttl(struct config_check_ctx *c, const struct config_node *key,
		 const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	if (config_check_get_uint(c, key, val, path, 0, TTL_MAX, &cfg->cache.min_ttl) == 0)
		c->min_ttl_key = key;
}

static void
on_cache_max_ttl(struct config_check_ctx *c, const struct config_node *key,
		 const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	if (config_check_get_uint(c, key, val, path, 0, TTL_MAX, &cfg->cache.max_ttl) == 0)
		c->max_ttl_key = key;
}

static const struct config_check_key cache_keys[] = {
	{"entries", on_cache_entries},
	{"min_ttl", on_cache_min_ttl},
	{"max_ttl", on_cache_max_ttl},
};

/* ---- block ---- */

static void
on_block_action(struct config_check_ctx *c, const struct config_node *key,
		const struct config_node *val,
		const char *path, void *obj)
{
	struct config *cfg = obj;
	get_action(c, key, val, path, &cfg->block.action);
}

static void
get_ip(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
       const char *path, int family, uint8_t *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	uint8_t tmp[16];
	const char *s = config_check_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (inet_pton(family, s, tmp) != 1) {
		err(c, key, path, "bad address '%s' (expected an %s address)",
		    config_check_show(s, buf, sizeof(buf)), family == AF_INET ? "IPv4" : "IPv6");
		return;
	}
	memcpy(out, tmp, family == AF_INET ? 4 : 16);
}

static void
on_block_ipv4(struct config_check_ctx *c, const struct config_node *key,
	      const struct config_node *val,
	      const char *path, void *obj)
{
	struct config *cfg = obj;
	get_ip(c, key, val, path, AF_INET, cfg->block.ipv4);
}

static void
on_block_ipv6(struct config_check_ctx *c, const struct config_node *key,
	      const struct config_node *val,
	      const char *path, void *obj)
{
	struct config *cfg = obj;
	get_ip(c, key, val, path, AF_INET6, cfg->block.ipv6);
}

static void
on_block_ttl(struct config_check_ctx *c, const struct config_node *key,
	     const struct config_node *val,
	     const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 0, TTL_MAX, &cfg->block.ttl);
}

static const struct config_check_key block_keys[] = {
	{"action", on_block_action},
	{"ipv4", on_block_ipv4},
	{"ipv6", on_block_ipv6},
	{"ttl", on_block_ttl},
};

/* ---- lists ---- */

/* Appends the strings of a sequence to *v (and their locations to *locs). */
static void
string_seq(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
	   const char *path, const char *dir, char ***v, struct config_loc **locs, size_t *n)
{
	char item[CONFIG_PATH_MAX];
	if (!config_check_is_sequence(c, key, val, path))
		return;
	if (val->n == 0)
		return;
	char **nv = realloc(*v, (*n + val->n) * sizeof(*nv));
	if (nv == NULL) {
		config_check_oom(c);
		return;
	}
	*v = nv;
	struct config_loc *nl = realloc(*locs, (*n + val->n) * sizeof(*nl));
	if (nl == NULL) {
		config_check_oom(c);
		return;
	}
	*locs = nl;
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_check_path_index(item, path, i);
		const char *s = config_check_get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		char *copy = dir != NULL ? config_resolve_path(dir, s) : strdup(s);
		if (copy == NULL) {
			config_check_oom(c);
			return;
		}
		nv[*n] = copy;
		nl[*n].line = it->line;
		nl[*n].col = it->col;
		(*n)++;
	}
}

static void
on_list_files(struct config_check_ctx *c, const struct config_node *key,
	      const struct config_node *val,
	      const char *path, void *obj)
{
	struct config_list *l = obj;
	string_seq(c, key, val, path, c->cfg->dir, &l->files, &l->file_locs, &l->nfiles);
}

static void
on_list_domains(struct config_check_ctx *c, const struct config_node *key,
		const struct config_node *val,
		const char *path, void *obj)
{
	struct config_list *l = obj;
	string_seq(c, key, val, path, NULL, &l->domains, &l->domain_locs, &l->ndomains);
}

static void
on_list_action(struct config_check_ctx *c, const struct config_node *key,
	       const struct config_node *val,
	       const char *path, void *obj)
{
	struct config_list *l = obj;
	get_action(c, key, val, path, &l->action);
}

static const struct config_check_key list_keys[] = {
	{"files", on_list_files},
	{"domains", on_list_domains},
	{"action", on_list_action},
};

static bool
list_name_ok(const char *s)
{
	if (s[0] == '\0' || strlen(s) > 64)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		char ch = *p;
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		      (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.'))
			return false;
	}
	return true;
}

static void
on_lists(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
	 const char *path, void *obj)
{
	struct config *cfg = obj;
	char child[CONFIG_PATH_MAX];
	if (!config_check_is_mapping(c, key, val, path, true))
		return;
	cfg->lists = calloc(val->n / 2 ? val->n / 2 : 1, sizeof(*cfg->lists));
	if (cfg->lists == NULL) {
		config_check_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n / 2; i++) {
		const struct config_node *k = val->items[2 * i];
		const struct config_node *v = val->items[2 * i + 1];
		if (k->kind != CONFIG_NODE_SCALAR) {
			err(c, k, path, "keys must be strings, got %s", config_check_kind_name(k));
			continue;
		}
		config_check_path_key(child, path, k->str);
		if (!config_check_key_ok(c, val, i, child))
			continue;
		if (!list_name_ok(k->str)) {
			err(c, k, child, "bad list name (use letters, digits, '-', '_' and '.')");
			continue;
		}
		struct config_list *l = &cfg->lists[cfg->nlists];
		l->loc.line = k->line;
		l->loc.col = k->col;
		l->name = strdup(k->str);
		if (l->name == NULL) {
			config_check_oom(c);
			return;
		}
		cfg->nlists++;
		if (!config_check_is_mapping(c, k, v, child, false))
			continue;
		size_t errors = c->diag->nerrors;
		config_check_walk_map(c, v, child, list_keys,
				      sizeof(list_keys) / sizeof(list_keys[0]), l);
		if (l->nfiles == 0 && l->ndomains == 0)
			err(c, k, child, "list has neither files nor domains");
		l->valid = c->diag->nerrors == errors && c->rc == 0;
	}
}

/* ---- groups ---- */

static void
on_group_name(struct config_check_ctx *c, const struct config_node *key,
	      const struct config_node *val,
	      const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	if (config_check_set_str(c, key, val, path, &gc->g->name) == 0)
		gc->name_key = key;
}

static void
on_group_clients(struct config_check_ctx *c, const struct config_node *key,
		 const struct config_node *val,
		 const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	gc->selectors = true;
	config_check_cidr_seq(c, key, val, path, &gc->g->clients, &gc->g->nclients);
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
	if (!config_check_is_sequence(c, key, val, path) || val->n == 0)
		return;
	size_t *nv = realloc(*v, (*n + val->n) * sizeof(*nv));
	if (nv == NULL) {
		config_check_oom(c);
		return;
	}
	*v = nv;
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_check_path_index(item, path, i);
		const char *s = config_check_get_string(c, it, it, item, false);
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
			const char *sug = suggest(s, names, nn);
			if (sug != NULL)
				err(c, it, item, "unknown list '%s' (did you mean '%s'?)",
				    config_check_show(s, buf, sizeof(buf)), sug);
			else
				err(c, it, item, "unknown list '%s'",
				    config_check_show(s, buf, sizeof(buf)));
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < *n; j++)
			dup = dup || nv[j] == li;
		if (dup) {
			warn(c, it, item, "list '%s' is named twice",
			     config_check_show(s, buf, sizeof(buf)));
			continue;
		}
		nv[(*n)++] = li;
		gc->used[li] = true;
	}
}

static void
on_group_block(struct config_check_ctx *c, const struct config_node *key,
	       const struct config_node *val,
	       const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	list_refs(c, gc, key, val, path, &gc->g->block, &gc->g->nblock);
}

static void
on_group_allow(struct config_check_ctx *c, const struct config_node *key,
	       const struct config_node *val,
	       const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	list_refs(c, gc, key, val, path, &gc->g->allow, &gc->g->nallow);
}

static void
on_group_default(struct config_check_ctx *c, const struct config_node *key,
		 const struct config_node *val,
		 const char *path, void *obj)
{
	static const char *const names[] = {"allow", "deny"};
	struct config_check_group *gc = obj;
	int i = config_check_get_enum(c, key, val, path, names, 2);
	if (i >= 0)
		gc->g->default_deny = i == 1;
}

static void
on_group_action(struct config_check_ctx *c, const struct config_node *key,
		const struct config_node *val,
		const char *path, void *obj)
{
	struct config_check_group *gc = obj;
	get_action(c, key, val, path, &gc->g->action);
}


static const struct config_check_key group_keys[] = {
	{"name", on_group_name},
	{"clients", on_group_clients},
	{"block", on_group_block},
	{"allow", on_group_allow},
	{"default", on_group_default},
	{"action", on_group_action},
	{"macs", config_devices_group_macs},
	{"vendors", config_devices_group_vendors},
	{"hostnames", config_devices_group_hostnames},
	{"devices", config_devices_group_devices},
	{"tags", config_devices_group_tags},
	{"randomised_mac", config_devices_group_randomised},
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
	if (g->nclients == 0 || g->nmacs + g->nvendors + g->nhostnames + g->ndevices + g->ntags > 0 ||
	    g->has_randomised)
		return false;	/* device selectors can match clients outside the prefixes */
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
	     const struct config_node *val,
	     bool *used)
{
	struct config *cfg = c->cfg;
	char path[CONFIG_PATH_MAX], buf[CONFIG_SHOW_MAX + 8];
	if (config_node_is_null(val) || !config_check_is_sequence(c, key, val, "groups"))
		return;
	cfg->groups = calloc(val->n ? val->n : 1, sizeof(*cfg->groups));
	bool *selectors = calloc(val->n ? val->n : 1, sizeof(*selectors));
	const struct config_node **items = calloc(val->n ? val->n : 1, sizeof(*items));
	if (cfg->groups == NULL || selectors == NULL || items == NULL) {
		config_check_oom(c);
		goto cleanup;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_check_path_index(path, "groups", i);
		if (!config_check_is_mapping(c, it, it, path, false))
			continue;
		struct config_group *g = &cfg->groups[cfg->ngroups];
		struct config_check_group gc = {.g = g, .used = used};
		g->loc.line = it->line;
		g->loc.col = it->col;
		cfg->ngroups++;
		items[cfg->ngroups - 1] = it;
		config_check_walk_map(c, it, path, group_keys,
				      sizeof(group_keys) / sizeof(group_keys[0]), &gc);
		selectors[cfg->ngroups - 1] = gc.selectors;
		if (g->name == NULL) {
			if (gc.name_key == NULL)
				err(c, it, path, "missing key 'name'");
			continue;
		}
		for (size_t j = 0; j + 1 < cfg->ngroups; j++) {
			if (cfg->groups[j].name != NULL && strcmp(cfg->groups[j].name,
								  g->name) == 0) {
				char np[CONFIG_PATH_MAX];
				config_check_path_key(np, path, "name");
				err(c, gc.name_key, np,
				    "duplicate group name '%s' (first at line %d)",
				    config_check_show(g->name, buf,
						      sizeof(buf)), cfg->groups[j].loc.line);
				break;
			}
		}
		for (size_t a = 0; a < g->nallow; a++)
			for (size_t b = 0; b < g->nblock; b++)
				if (g->allow[a] == g->block[b])
					warn(c, it, path, "list '%s' is both blocked and allowed "
						"(allow wins)", cfg->lists[g->allow[a]].name);
	}
	/* Unreachable groups: after a catch-all, or all of whose clients an earlier one takes.
	 * Both group names are quoted through config_check_show: a name is any string. */
	size_t catch_all = SIZE_MAX;
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		const char *name = g->name != NULL ? g->name : "?";
		char other[CONFIG_SHOW_MAX + 8];
		size_t by;
		config_check_path_index(path, "groups", i);
		if (catch_all != SIZE_MAX) {
			const struct config_group *e = &cfg->groups[catch_all];
			err(c, items[i], path,
			    "unreachable: group '%s' is after group '%s' (line %d), which matches "
			    "every client",
			    config_check_show(name, buf, sizeof(buf)),
			    config_check_show(e->name != NULL ? e->name : "?", other,
					      sizeof(other)),
			    e->loc.line);
		} else if (shadowed(cfg, i, &by)) {
			const struct config_group *e = &cfg->groups[by];
			err(c, items[i], path,
			    "unreachable: every client of group '%s' matches an earlier group "
			    "first ('%s', line %d)",
			    config_check_show(name, buf, sizeof(buf)),
			    config_check_show(e->name != NULL ? e->name : "?", other,
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
	       const struct config_node *val,
	       const char *path, void *obj)
{
	static const char *const names[] = {
		[CONFIG_LOG_ALL] = "all",
		[CONFIG_LOG_BLOCKED] = "blocked",
		[CONFIG_LOG_NONE] = "none",
	};
	struct config *cfg = obj;
	int i = config_check_get_enum(c, key, val, path, names, sizeof(names) / sizeof(names[0]));
	if (i >= 0)
		cfg->log.queries = (enum config_log_queries)i;
}

static void
on_log_file(struct config_check_ctx *c, const struct config_node *key,
	    const struct config_node *val,
	    const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = config_check_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	/* "-" is standard output, anything else a file */
	if (set_value(c, key, val, path, strcmp(s, "-") == 0 ? NULL : cfg->dir, &cfg->log.file) == 0)
		c->log_file_set = true;
}

static void
on_log_database(struct config_check_ctx *c, const struct config_node *key,
		const struct config_node *val,
		const char *path, void *obj)
{
	(void)obj;
	/* resolved against state_dir once the whole file is read */
	c->database = config_check_get_string(c, key, val, path, false);
}

static void
on_log_retention_days(struct config_check_ctx *c, const struct config_node *key,
		      const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_get_uint(c, key, val, path, 0, 36500, &cfg->log.retention_days);
}

static const struct config_check_key log_keys[] = {
	{"queries", on_log_queries},
	{"file", on_log_file},
	{"database", on_log_database},
	{"retention_days", on_log_retention_days},
};

/* ---- state_dir ---- */

static void
on_state_dir(struct config_check_ctx *c, const struct config_node *key,
	     const struct config_node *val,
	     const char *path, void *obj)
{
	struct config *cfg = obj;
	config_check_set_path(c, key, val, path, &cfg->state_dir);
}

/* log.database resolves against state_dir; with a database and no log.file, no JSON lines. */
static void
finish_log(struct config_check_ctx *c)
{
	struct config *cfg = c->cfg;
	if (c->database == NULL)
		return;
	char *db = config_resolve_path(cfg->state_dir, c->database);
	if (db == NULL) {
		config_check_oom(c);
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
		if (config_check_is_mapping(c, key, val, path, true))                              \
			config_check_walk_map(c, val, path, keys, sizeof(keys) / sizeof(keys[0]),  \
					      obj);                                                \
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

static const struct config_check_key top_keys[] = {
	{"server", on_server},
	{"upstream", on_upstream},
	{"cache", on_cache},
	{"block", on_block},
	{"lists", on_lists},
	{"groups", on_groups},
	{"log", on_log},
	{"state_dir", on_state_dir},
	{"devices", config_devices_section},
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
		    config_check_kind_name(root));
		return -EINVAL;
	}
	config_check_walk_map(&c, root, "", top_keys, sizeof(top_keys) / sizeof(top_keys[0]), cfg);
	finish_log(&c);

	if (cfg->cache.min_ttl > cfg->cache.max_ttl) {
		const struct config_node *at = c.min_ttl_key != NULL ? c.min_ttl_key : c.max_ttl_key;
		err(&c, at, at == c.min_ttl_key ? "cache.min_ttl" : "cache.max_ttl",
		    "min_ttl (%u) is greater than max_ttl (%u)", (unsigned)cfg->cache.min_ttl,
		    (unsigned)cfg->cache.max_ttl);
	}

	used = calloc(cfg->nlists ? cfg->nlists : 1, sizeof(*used));
	if (used == NULL) {
		config_check_oom(&c);
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
		config_check_path_key(path, "lists", cfg->lists[i].name);
		warn(&c, &at, path, "used by no group");
	}
cleanup:
	free(used);
	if (c.rc != 0)
		return c.rc;
	return diag->nerrors > errors ? -EINVAL : 0;
}
