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

#include "config_int.h"
#include "hostglob.h"
#include "leases.h"
#include "lists.h"
#include "mac.h"

#define PATH_MAX_LEN 512
#define SHOW_MAX     80	/* longest value quoted in a message */

struct check {
	struct diag *diag;
	const char *file;
	struct config *cfg;
	int rc;				/* sticky -ENOMEM */
	const struct config_node *groups_key, *groups_val;
	const struct config_node *min_ttl_key, *max_ttl_key;
	const char *database;		/* log.database as written (resolved at the end) */
	bool log_file_set;
	const struct config_node *sig_key, *sig_val;	/* devices.signatures (issue 4) */
	bool signatures_set, hostname_vendors_set;
};

typedef void (*check_key_cb)(struct check *c, const struct config_node *key,
			     const struct config_node *val, const char *path, void *obj);

struct check_key {
	const char *name;
	check_key_cb fn;
};

/* ---- messages ---- */

static void __attribute__((format(printf, 5, 6)))
report(struct check *c, enum diag_level level, const struct config_node *at, const char *path,
       const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(c->diag, level, c->file, at != NULL ? at->line : 0, at != NULL ? at->col : 0,
		  path != NULL && path[0] != '\0' ? path : NULL, fmt, ap);
	va_end(ap);
}

#define err(c, at, path, ...)  report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)
#define warn(c, at, path, ...) report((c), DIAG_WARNING, (at), (path), __VA_ARGS__)

static void
oom(struct check *c)
{
	if (c->rc == 0)
		diag_add(c->diag, DIAG_ERROR, c->file, 0, 0, NULL, "out of memory");
	c->rc = -ENOMEM;
}

/* A printable, bounded copy of s for messages (control octets become '?'). */
static const char *
show(const char *s, char *buf, size_t size)
{
	size_t n = 0;
	for (; s[n] != '\0' && n + 4 < size && n < SHOW_MAX; n++) {
		unsigned char ch = (unsigned char)s[n];
		buf[n] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (s[n] != '\0' && n >= 3) {
		memcpy(buf + n - 3, "...", 3);
	}
	buf[n] = '\0';
	return buf;
}

static const char *
kind_name(const struct config_node *n)
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

static const char *
path_key(char *buf, const char *parent, const char *key)
{
	char tmp[SHOW_MAX + 8];
	size_t n = 0;
	show(key, tmp, sizeof(tmp));
	/* Bounded copies: a path is at most PATH_MAX_LEN - 1 octets, longer ones are cut. */
	for (const char *p = parent; *p != '\0' && n + 1 < PATH_MAX_LEN; p++)
		buf[n++] = *p;
	if (parent[0] != '\0' && n + 1 < PATH_MAX_LEN)
		buf[n++] = '.';
	for (const char *p = tmp; *p != '\0' && n + 1 < PATH_MAX_LEN; p++)
		buf[n++] = *p;
	buf[n] = '\0';
	return buf;
}

static const char *
path_index(char *buf, const char *parent, size_t i)
{
	snprintf(buf, PATH_MAX_LEN, "%s[%zu]", parent, i);
	return buf;
}

/* ---- typed values ---- */

/* A string value: a scalar without inner NUL. Reports and returns NULL otherwise. */
static const char *
get_string(struct check *c, const struct config_node *at, const struct config_node *val,
	   const char *path, bool allow_empty)
{
	if (val->kind != CONFIG_NODE_SCALAR || (config_node_is_null(val) && !allow_empty)) {
		err(c, at, path, "expected a string, got %s", kind_name(val));
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

static int
get_uint(struct check *c, const struct config_node *at, const struct config_node *val,
	 const char *path, uint32_t min, uint32_t max, uint32_t *out)
{
	char buf[SHOW_MAX + 8];
	if (val->kind != CONFIG_NODE_SCALAR || !val->plain || config_node_is_null(val)) {
		err(c, at, path, "expected an integer, got %s", kind_name(val));
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
		    (unsigned)max, show(val->str, buf, sizeof(buf)));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

static bool
is_sequence(struct check *c, const struct config_node *at, const struct config_node *val,
	    const char *path)
{
	if (val->kind == CONFIG_NODE_SEQUENCE)
		return true;
	err(c, at, path, "expected a sequence, got %s", kind_name(val));
	return false;
}

/* Mappings; a null section ("server:" with nothing below) counts as an empty one. */
static bool
is_mapping(struct check *c, const struct config_node *at, const struct config_node *val,
	   const char *path, bool null_ok)
{
	if (val->kind == CONFIG_NODE_MAPPING)
		return true;
	if (null_ok && config_node_is_null(val))
		return false;
	err(c, at, path, "expected a mapping, got %s", kind_name(val));
	return false;
}

static int
get_action(struct check *c, const struct config_node *at, const struct config_node *val,
	   const char *path, enum config_action *out)
{
	char buf[SHOW_MAX + 8];
	const char *s = get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	if (config_action_parse(s, out) != 0) {
		err(c, at, path, "unknown value '%s' (expected sinkhole, nxdomain, nodata, refused)",
		    show(s, buf, sizeof(buf)));
		return -EINVAL;
	}
	return 0;
}

/* One of names[]; returns its index or -1 (reported). */
static int
get_enum(struct check *c, const struct config_node *at, const struct config_node *val,
	 const char *path, const char *const *names, size_t n)
{
	char buf[SHOW_MAX + 8], expected[256] = "";
	const char *s = get_string(c, at, val, path, false);
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, names[i]) == 0)
			return (int)i;
	size_t off = 0;
	for (size_t i = 0; i < n && off < sizeof(expected); i++)
		off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s%s",
					i ? ", " : "", names[i]);
	err(c, at, path, "unknown value '%s' (expected %s)", show(s, buf, sizeof(buf)), expected);
	return -1;
}

static int
get_cidr(struct check *c, const struct config_node *at, const struct config_node *val,
	 const char *path, struct config_cidr *out)
{
	char buf[SHOW_MAX + 8], net[64];
	const char *why = NULL;
	const char *s = get_string(c, at, val, path, false);
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
		    show(s, buf, sizeof(buf)), net);
	} else {
		err(c, at, path, "bad prefix '%s': %s", show(s, buf, sizeof(buf)), why);
	}
	return -EINVAL;
}

static int
get_addr(struct check *c, const struct config_node *at, const struct config_node *val,
	 const char *path, uint16_t default_port, struct config_addr *out)
{
	char buf[SHOW_MAX + 8];
	const char *s = get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	struct config_addr a;
	memset(&a, 0, sizeof(a));
	if (config_parse_addr(s, default_port, &a.ss, &a.len) != 0) {
		err(c, at, path,
		    "bad address '%s' (expected IPv4, IPv4:port, IPv6 or [IPv6]:port)",
		    show(s, buf, sizeof(buf)));
		return -EINVAL;
	}
	a.text = strdup(s);
	if (a.text == NULL) {
		oom(c);
		return -ENOMEM;
	}
	a.loc.line = at->line;
	a.loc.col = at->col;
	*out = a;
	return 0;
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
duplicate_key(struct check *c, const struct config_node *map, size_t i, const char *path)
{
	const struct config_node *key = map->items[2 * i];
	char buf[SHOW_MAX + 8];
	for (size_t j = 0; j < i; j++) {
		const struct config_node *k = map->items[2 * j];
		if (k->kind == CONFIG_NODE_SCALAR && k->len == key->len &&
		    memcmp(k->str, key->str, key->len) == 0) {
			err(c, key, path, "duplicate key '%s' (first at line %d)",
			    show(key->str, buf, sizeof(buf)), k->line);
			return true;
		}
	}
	return false;
}

static bool
key_ok(struct check *c, const struct config_node *map, size_t i, const char *path)
{
	const struct config_node *key = map->items[2 * i];
	if (key->kind != CONFIG_NODE_SCALAR || strlen(key->str) != key->len) {
		err(c, key, path, "keys must be strings, got %s", kind_name(key));
		return false;
	}
	return !duplicate_key(c, map, i, path);
}

static void
walk_map(struct check *c, const struct config_node *map, const char *path,
	 const struct check_key *keys, size_t nkeys, void *obj)
{
	char child[PATH_MAX_LEN], sbuf[SHOW_MAX + 8];
	const char *names[32];
	size_t nnames = nkeys < 32 ? nkeys : 32;
	for (size_t k = 0; k < nnames; k++)
		names[k] = keys[k].name;

	for (size_t i = 0; i < map->n / 2; i++) {
		const struct config_node *key = map->items[2 * i];
		const struct config_node *val = map->items[2 * i + 1];
		if (key->kind != CONFIG_NODE_SCALAR) {
			err(c, key, path, "keys must be strings, got %s", kind_name(key));
			continue;
		}
		path_key(child, path, key->str);
		if (!key_ok(c, map, i, child))
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
				    show(key->str, sbuf, sizeof(sbuf)), known);
			}
			continue;
		}
		keys[k].fn(c, key, val, child, obj);
	}
}

/* ---- server ---- */

/* Parses a sequence of addresses into a new array replacing *v / *n. */
static void
addr_seq(struct check *c, const struct config_node *key, const struct config_node *val,
	 const char *path, struct config_addr **v, size_t *n, const char *what)
{
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return;
	if (val->n == 0) {
		err(c, key, path, "needs at least one %s", what);
		return;
	}
	struct config_addr *nv = calloc(val->n, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		if (get_addr(c, it, it, item, 53, &nv[nn]) != 0)
			continue;
		for (size_t j = 0; j < nn; j++) {
			if (nv[j].len == nv[nn].len && memcmp(&nv[j].ss, &nv[nn].ss, nv[nn].len) == 0) {
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
cidr_seq(struct check *c, const struct config_node *key, const struct config_node *val,
	 const char *path, struct config_cidr **v, size_t *n)
{
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return;
	struct config_cidr *nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		if (get_cidr(c, it, it, item, &nv[nn]) == 0)
			nn++;
	}
	free(*v);
	*v = nv;
	*n = nn;
}

static void
on_server_listen(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	addr_seq(c, key, val, path, &cfg->server.listen, &cfg->server.nlisten, "address");
}

static void
on_server_allow(struct check *c, const struct config_node *key, const struct config_node *val,
		const char *path, void *obj)
{
	struct config *cfg = obj;
	cidr_seq(c, key, val, path, &cfg->server.allow, &cfg->server.nallow);
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		warn(c, key, path, "empty: every client is refused");
}

static const struct check_key server_keys[] = {
	{"listen", on_server_listen},
	{"allow", on_server_allow},
};

/* ---- upstream ---- */

static void
on_upstream_servers(struct check *c, const struct config_node *key, const struct config_node *val,
		    const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return;
	if (val->n == 0) {
		err(c, key, path, "needs at least one server");
		return;
	}
	struct config_addr *nv = calloc(val->n, sizeof(*nv));
	size_t nn = 0;
	bool resolv = false;
	if (nv == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
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
on_upstream_timeout(struct check *c, const struct config_node *key, const struct config_node *val,
		    const char *path, void *obj)
{
	struct config *cfg = obj;
	get_uint(c, key, val, path, 1, 60000, &cfg->upstream.timeout_ms);
}

static const struct check_key upstream_keys[] = {
	{"servers", on_upstream_servers},
	{"timeout_ms", on_upstream_timeout},
};

/* ---- cache ---- */

#define TTL_MAX 2147483647u	/* RFC 2181 */

static void
on_cache_entries(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	get_uint(c, key, val, path, 0, 100000000, &cfg->cache.entries);
}

static void
on_cache_min_ttl(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	if (get_uint(c, key, val, path, 0, TTL_MAX, &cfg->cache.min_ttl) == 0)
		c->min_ttl_key = key;
}

static void
on_cache_max_ttl(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct config *cfg = obj;
	if (get_uint(c, key, val, path, 0, TTL_MAX, &cfg->cache.max_ttl) == 0)
		c->max_ttl_key = key;
}

static const struct check_key cache_keys[] = {
	{"entries", on_cache_entries},
	{"min_ttl", on_cache_min_ttl},
	{"max_ttl", on_cache_max_ttl},
};

/* ---- block ---- */

static void
on_block_action(struct check *c, const struct config_node *key, const struct config_node *val,
		const char *path, void *obj)
{
	struct config *cfg = obj;
	get_action(c, key, val, path, &cfg->block.action);
}

static void
get_ip(struct check *c, const struct config_node *key, const struct config_node *val,
       const char *path, int family, uint8_t *out)
{
	char buf[SHOW_MAX + 8];
	uint8_t tmp[16];
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (inet_pton(family, s, tmp) != 1) {
		err(c, key, path, "bad address '%s' (expected an %s address)",
		    show(s, buf, sizeof(buf)), family == AF_INET ? "IPv4" : "IPv6");
		return;
	}
	memcpy(out, tmp, family == AF_INET ? 4 : 16);
}

static void
on_block_ipv4(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct config *cfg = obj;
	get_ip(c, key, val, path, AF_INET, cfg->block.ipv4);
}

static void
on_block_ipv6(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct config *cfg = obj;
	get_ip(c, key, val, path, AF_INET6, cfg->block.ipv6);
}

static void
on_block_ttl(struct check *c, const struct config_node *key, const struct config_node *val,
	     const char *path, void *obj)
{
	struct config *cfg = obj;
	get_uint(c, key, val, path, 0, TTL_MAX, &cfg->block.ttl);
}

static const struct check_key block_keys[] = {
	{"action", on_block_action},
	{"ipv4", on_block_ipv4},
	{"ipv6", on_block_ipv6},
	{"ttl", on_block_ttl},
};

/* ---- lists ---- */

/* Appends the strings of a sequence to *v (and their locations to *locs). */
static void
string_seq(struct check *c, const struct config_node *key, const struct config_node *val,
	   const char *path, const char *dir, char ***v, struct config_loc **locs, size_t *n)
{
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return;
	if (val->n == 0)
		return;
	char **nv = realloc(*v, (*n + val->n) * sizeof(*nv));
	if (nv == NULL) {
		oom(c);
		return;
	}
	*v = nv;
	struct config_loc *nl = realloc(*locs, (*n + val->n) * sizeof(*nl));
	if (nl == NULL) {
		oom(c);
		return;
	}
	*locs = nl;
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		const char *s = get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		char *copy = dir != NULL ? config_resolve_path(dir, s) : strdup(s);
		if (copy == NULL) {
			oom(c);
			return;
		}
		nv[*n] = copy;
		nl[*n].line = it->line;
		nl[*n].col = it->col;
		(*n)++;
	}
}

static void
on_list_files(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct config_list *l = obj;
	string_seq(c, key, val, path, c->cfg->dir, &l->files, &l->file_locs, &l->nfiles);
}

static void
on_list_domains(struct check *c, const struct config_node *key, const struct config_node *val,
		const char *path, void *obj)
{
	struct config_list *l = obj;
	string_seq(c, key, val, path, NULL, &l->domains, &l->domain_locs, &l->ndomains);
}

static void
on_list_action(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	struct config_list *l = obj;
	get_action(c, key, val, path, &l->action);
}

static const struct check_key list_keys[] = {
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
on_lists(struct check *c, const struct config_node *key, const struct config_node *val,
	 const char *path, void *obj)
{
	struct config *cfg = obj;
	char child[PATH_MAX_LEN];
	if (!is_mapping(c, key, val, path, true))
		return;
	cfg->lists = calloc(val->n / 2 ? val->n / 2 : 1, sizeof(*cfg->lists));
	if (cfg->lists == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n / 2; i++) {
		const struct config_node *k = val->items[2 * i];
		const struct config_node *v = val->items[2 * i + 1];
		if (k->kind != CONFIG_NODE_SCALAR) {
			err(c, k, path, "keys must be strings, got %s", kind_name(k));
			continue;
		}
		path_key(child, path, k->str);
		if (!key_ok(c, val, i, child))
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
			oom(c);
			return;
		}
		cfg->nlists++;
		if (!is_mapping(c, k, v, child, false))
			continue;
		walk_map(c, v, child, list_keys, sizeof(list_keys) / sizeof(list_keys[0]), l);
		if (l->nfiles == 0 && l->ndomains == 0)
			err(c, k, child, "list has neither files nor domains");
	}
}

/* ---- groups ---- */

struct group_ctx {
	struct config_group *g;
	const struct config_node *name_key;
	bool *used;		/* per list: referenced by some group */
	bool selectors;		/* a selector key (clients) was written */
};

static void
on_group_name(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	free(gc->g->name);
	gc->g->name = strdup(s);
	if (gc->g->name == NULL) {
		oom(c);
		return;
	}
	gc->name_key = key;
}

static void
on_group_clients(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	gc->selectors = true;
	cidr_seq(c, key, val, path, &gc->g->clients, &gc->g->nclients);
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		err(c, key, path,
		    "empty: leave 'clients' out to make a group that matches every client");
}

/* Resolves list names into indexes (appended to *v). */
static void
list_refs(struct check *c, struct group_ctx *gc, const struct config_node *key,
	  const struct config_node *val, const char *path, size_t **v, size_t *n)
{
	struct config *cfg = c->cfg;
	char item[PATH_MAX_LEN], buf[SHOW_MAX + 8];
	if (!is_sequence(c, key, val, path) || val->n == 0)
		return;
	size_t *nv = realloc(*v, (*n + val->n) * sizeof(*nv));
	if (nv == NULL) {
		oom(c);
		return;
	}
	*v = nv;
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		const char *s = get_string(c, it, it, item, false);
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
				    show(s, buf, sizeof(buf)), sug);
			else
				err(c, it, item, "unknown list '%s'", show(s, buf, sizeof(buf)));
			continue;
		}
		bool dup = false;
		for (size_t j = 0; j < *n; j++)
			dup = dup || nv[j] == li;
		if (dup) {
			warn(c, it, item, "list '%s' is named twice", show(s, buf, sizeof(buf)));
			continue;
		}
		nv[(*n)++] = li;
		gc->used[li] = true;
	}
}

static void
on_group_block(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	list_refs(c, gc, key, val, path, &gc->g->block, &gc->g->nblock);
}

static void
on_group_allow(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	list_refs(c, gc, key, val, path, &gc->g->allow, &gc->g->nallow);
}

static void
on_group_default(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	static const char *const names[] = {"allow", "deny"};
	struct group_ctx *gc = obj;
	int i = get_enum(c, key, val, path, names, 2);
	if (i >= 0)
		gc->g->default_deny = i == 1;
}

static void
on_group_action(struct check *c, const struct config_node *key, const struct config_node *val,
		const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	get_action(c, key, val, path, &gc->g->action);
}

/* Device selectors (issue 4). */

/* A sequence of non-empty strings into a new array *v / *n (replacing it). Returns the number of
 * items read, or -1 when val is not a sequence (reported). */
static int
strv_seq(struct check *c, const struct config_node *key, const struct config_node *val,
	 const char *path, char ***v, size_t *n)
{
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return -1;
	char **nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		oom(c);
		return -1;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		const char *s = get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		if ((nv[nn] = strdup(s)) == NULL) {
			oom(c);
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
empty_selector(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path)
{
	if (val->kind == CONFIG_NODE_SEQUENCE && val->n == 0)
		err(c, key, path, "empty: leave it out, a group needs at least one value per selector");
}

static int
get_bool(struct check *c, const struct config_node *at, const struct config_node *val,
	 const char *path, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "off"};
	char buf[SHOW_MAX + 8];
	if (val->kind == CONFIG_NODE_SCALAR && val->plain) {
		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcmp(val->str, yes[i]) == 0) {
				*out = true;
				return 0;
			}
			if (strcmp(val->str, no[i]) == 0) {
				*out = false;
				return 0;
			}
		}
		err(c, at, path, "expected true or false, got '%s'", show(val->str, buf, sizeof(buf)));
		return -EINVAL;
	}
	err(c, at, path, "expected true or false, got %s", kind_name(val));
	return -EINVAL;
}

static void
on_group_macs(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	char item[PATH_MAX_LEN], buf[SHOW_MAX + 8];
	gc->selectors = true;
	if (!is_sequence(c, key, val, path))
		return;
	empty_selector(c, key, val, path);
	struct mac_prefix *nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		const char *s = get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		if (mac_prefix_parse(s, strlen(s), &nv[nn]) != 0) {
			err(c, it, item,
			    "bad MAC address or prefix '%s' (expected aa:bb:cc:dd:ee:ff, aa:bb:cc, "
			    "aa:bb:cc:d or aa:bb:cc:dd:ee:ff/N)", show(s, buf, sizeof(buf)));
			continue;
		}
		nn++;
	}
	free(gc->g->macs);
	gc->g->macs = nv;
	gc->g->nmacs = nn;
}

static void
on_group_vendors(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	gc->selectors = true;
	if (strv_seq(c, key, val, path, &gc->g->vendors, &gc->g->nvendors) >= 0)
		empty_selector(c, key, val, path);
}

static void
on_group_hostnames(struct check *c, const struct config_node *key, const struct config_node *val,
		   const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	char item[PATH_MAX_LEN], buf[SHOW_MAX + 8];
	gc->selectors = true;
	if (strv_seq(c, key, val, path, &gc->g->hostnames, &gc->g->nhostnames) < 0)
		return;
	empty_selector(c, key, val, path);
	for (size_t i = 0, k = 0; i < val->n && k < gc->g->nhostnames; i++) {
		const struct config_node *it = val->items[i];
		const char *why = NULL;
		if (it->kind != CONFIG_NODE_SCALAR || strcmp(it->str, gc->g->hostnames[k]) != 0)
			continue;
		k++;
		path_index(item, path, i);
		if (hostglob_check(it->str, &why) != 0)
			err(c, it, item, "bad hostname pattern '%s': %s",
			    show(it->str, buf, sizeof(buf)), why);
	}
}

static void
on_group_devices(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	const struct config *cfg = c->cfg;
	char item[PATH_MAX_LEN], buf[SHOW_MAX + 8];
	gc->selectors = true;
	if (strv_seq(c, key, val, path, &gc->g->devices, &gc->g->ndevices) < 0)
		return;
	empty_selector(c, key, val, path);
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		if (it->kind != CONFIG_NODE_SCALAR || it->len == 0)
			continue;
		size_t d = 0;
		while (d < cfg->devices.ninventory && strcmp(cfg->devices.inventory[d].name, it->str))
			d++;
		if (d == cfg->devices.ninventory) {
			path_index(item, path, i);
			err(c, it, item, "unknown device '%s' (not in devices.inventory)",
			    show(it->str, buf, sizeof(buf)));
		}
	}
}

static void
on_group_tags(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	gc->selectors = true;
	if (strv_seq(c, key, val, path, &gc->g->tags, &gc->g->ntags) >= 0)
		empty_selector(c, key, val, path);
}

static void
on_group_randomised(struct check *c, const struct config_node *key, const struct config_node *val,
		    const char *path, void *obj)
{
	struct group_ctx *gc = obj;
	gc->selectors = true;
	if (get_bool(c, key, val, path, &gc->g->randomised) == 0)
		gc->g->has_randomised = true;
}

static const struct check_key group_keys[] = {
	{"name", on_group_name},
	{"clients", on_group_clients},
	{"block", on_group_block},
	{"allow", on_group_allow},
	{"default", on_group_default},
	{"action", on_group_action},
	{"macs", on_group_macs},
	{"vendors", on_group_vendors},
	{"hostnames", on_group_hostnames},
	{"devices", on_group_devices},
	{"tags", on_group_tags},
	{"randomised_mac", on_group_randomised},
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
check_groups(struct check *c, const struct config_node *key, const struct config_node *val,
	     bool *used)
{
	struct config *cfg = c->cfg;
	char path[PATH_MAX_LEN], buf[SHOW_MAX + 8];
	if (config_node_is_null(val) || !is_sequence(c, key, val, "groups"))
		return;
	cfg->groups = calloc(val->n ? val->n : 1, sizeof(*cfg->groups));
	bool *selectors = calloc(val->n ? val->n : 1, sizeof(*selectors));
	const struct config_node **items = calloc(val->n ? val->n : 1, sizeof(*items));
	if (cfg->groups == NULL || selectors == NULL || items == NULL) {
		oom(c);
		goto cleanup;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(path, "groups", i);
		if (!is_mapping(c, it, it, path, false))
			continue;
		struct config_group *g = &cfg->groups[cfg->ngroups];
		struct group_ctx gc = {.g = g, .used = used};
		g->loc.line = it->line;
		g->loc.col = it->col;
		cfg->ngroups++;
		items[cfg->ngroups - 1] = it;
		walk_map(c, it, path, group_keys, sizeof(group_keys) / sizeof(group_keys[0]), &gc);
		selectors[cfg->ngroups - 1] = gc.selectors;
		if (g->name == NULL) {
			if (gc.name_key == NULL)
				err(c, it, path, "missing key 'name'");
			continue;
		}
		for (size_t j = 0; j + 1 < cfg->ngroups; j++) {
			if (cfg->groups[j].name != NULL && strcmp(cfg->groups[j].name, g->name) == 0) {
				char np[PATH_MAX_LEN];
				path_key(np, path, "name");
				err(c, gc.name_key, np, "duplicate group name '%s' (first at line %d)",
				    show(g->name, buf, sizeof(buf)), cfg->groups[j].loc.line);
				break;
			}
		}
		for (size_t a = 0; a < g->nallow; a++)
			for (size_t b = 0; b < g->nblock; b++)
				if (g->allow[a] == g->block[b])
					warn(c, it, path, "list '%s' is both blocked and allowed "
						"(allow wins)", cfg->lists[g->allow[a]].name);
	}
	/* Unreachable groups: after a catch-all, or all of whose clients an earlier one takes. */
	size_t catch_all = SIZE_MAX;
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		const char *name = g->name != NULL ? g->name : "?";
		size_t by;
		path_index(path, "groups", i);
		if (catch_all != SIZE_MAX) {
			err(c, items[i], path,
			    "unreachable: group '%s' is after group '%s' (line %d), which matches "
			    "every client",
			    show(name, buf, sizeof(buf)), cfg->groups[catch_all].name != NULL ?
			    cfg->groups[catch_all].name : "?", cfg->groups[catch_all].loc.line);
		} else if (shadowed(cfg, i, &by)) {
			err(c, items[i], path,
			    "unreachable: every client of group '%s' matches an earlier group "
			    "first ('%s', line %d)",
			    show(name, buf, sizeof(buf)),
			    cfg->groups[by].name != NULL ? cfg->groups[by].name : "?",
			    cfg->groups[by].loc.line);
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
on_log_queries(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	static const char *const names[] = {
		[CONFIG_LOG_ALL] = "all",
		[CONFIG_LOG_BLOCKED] = "blocked",
		[CONFIG_LOG_NONE] = "none",
	};
	struct config *cfg = obj;
	int i = get_enum(c, key, val, path, names, sizeof(names) / sizeof(names[0]));
	if (i >= 0)
		cfg->log.queries = (enum config_log_queries)i;
}

static void
on_log_file(struct check *c, const struct config_node *key, const struct config_node *val,
	    const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	char *f = strcmp(s, "-") == 0 ? strdup(s) : config_resolve_path(cfg->dir, s);
	if (f == NULL) {
		oom(c);
		return;
	}
	free(cfg->log.file);
	cfg->log.file = f;
	c->log_file_set = true;
}

static void
on_log_database(struct check *c, const struct config_node *key, const struct config_node *val,
		const char *path, void *obj)
{
	(void)obj;
	/* resolved against state_dir once the whole file is read */
	c->database = get_string(c, key, val, path, false);
}

static void
on_log_retention_days(struct check *c, const struct config_node *key,
		      const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	get_uint(c, key, val, path, 0, 36500, &cfg->log.retention_days);
}

static const struct check_key log_keys[] = {
	{"queries", on_log_queries},
	{"file", on_log_file},
	{"database", on_log_database},
	{"retention_days", on_log_retention_days},
};

/* ---- state_dir ---- */

static void
on_state_dir(struct check *c, const struct config_node *key, const struct config_node *val,
	     const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	char *d = config_resolve_path(cfg->dir, s);
	if (d == NULL) {
		oom(c);
		return;
	}
	free(cfg->state_dir);
	cfg->state_dir = d;
}

/* log.database resolves against state_dir; with a database and no log.file, no JSON lines. */
static void
finish_log(struct check *c)
{
	struct config *cfg = c->cfg;
	if (c->database == NULL)
		return;
	char *db = config_resolve_path(cfg->state_dir, c->database);
	if (db == NULL) {
		oom(c);
		return;
	}
	free(cfg->log.database);
	cfg->log.database = db;
	if (!c->log_file_set) {
		free(cfg->log.file);
		cfg->log.file = NULL;
	}
}

/* ---- devices (issue 4) ---- */

static bool
has_key(const struct config_node *map, const char *name)
{
	for (size_t i = 0; i < map->n / 2; i++)
		if (map->items[2 * i]->kind == CONFIG_NODE_SCALAR &&
		    strcmp(map->items[2 * i]->str, name) == 0)
			return true;
	return false;
}

struct inv_ctx {
	struct config_device *d;
	bool has_mac;
};

static void
on_inv_name(struct check *c, const struct config_node *key, const struct config_node *val,
	    const char *path, void *obj)
{
	struct inv_ctx *ic = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	free(ic->d->name);
	if ((ic->d->name = strdup(s)) == NULL)
		oom(c);
}

static void
on_inv_mac(struct check *c, const struct config_node *key, const struct config_node *val,
	   const char *path, void *obj)
{
	struct inv_ctx *ic = obj;
	char buf[SHOW_MAX + 8];
	const char *s = get_string(c, key, val, path, false);
	struct mac m;
	if (s == NULL)
		return;
	if (mac_parse(s, strlen(s), &m) != 0 || mac_is_zero(&m) || mac_is_multicast(&m)) {
		err(c, key, path, "bad MAC address '%s' (expected a unicast aa:bb:cc:dd:ee:ff)",
		    show(s, buf, sizeof(buf)));
		return;
	}
	ic->d->mac = m;
	ic->has_mac = true;
}

static void
on_inv_ip(struct check *c, const struct config_node *key, const struct config_node *val,
	  const char *path, void *obj)
{
	struct inv_ctx *ic = obj;
	char buf[SHOW_MAX + 8];
	const char *s = get_string(c, key, val, path, false);
	uint8_t a[16];
	if (s == NULL)
		return;
	memset(&ic->d->ip, 0, sizeof(ic->d->ip));
	if (inet_pton(AF_INET, s, a) == 1) {
		ic->d->ip.family = AF_INET;
		memcpy(ic->d->ip.addr, a, 4);
		ic->d->ip.prefix = 32;
	} else if (inet_pton(AF_INET6, s, a) == 1) {
		ic->d->ip.family = AF_INET6;
		memcpy(ic->d->ip.addr, a, 16);
		ic->d->ip.prefix = 128;
	} else {
		err(c, key, path, "bad address '%s' (expected an IPv4 or IPv6 address)",
		    show(s, buf, sizeof(buf)));
		return;
	}
	ic->d->ip.loc.line = val->line;
	ic->d->ip.loc.col = val->col;
	ic->d->has_ip = true;
}

static void
on_inv_owner(struct check *c, const struct config_node *key, const struct config_node *val,
	     const char *path, void *obj)
{
	struct inv_ctx *ic = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	free(ic->d->owner);
	if ((ic->d->owner = strdup(s)) == NULL)
		oom(c);
}

static void
on_inv_vendor(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct inv_ctx *ic = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	free(ic->d->vendor);
	if ((ic->d->vendor = strdup(s)) == NULL)
		oom(c);
}

static void
on_inv_tags(struct check *c, const struct config_node *key, const struct config_node *val,
	    const char *path, void *obj)
{
	struct inv_ctx *ic = obj;
	strv_seq(c, key, val, path, &ic->d->tags, &ic->d->ntags);
}

static const struct check_key inventory_keys[] = {
	{"name", on_inv_name},
	{"mac", on_inv_mac},
	{"ip", on_inv_ip},
	{"owner", on_inv_owner},
	{"vendor", on_inv_vendor},
	{"tags", on_inv_tags},
};

static void
on_devices_inventory(struct check *c, const struct config_node *key,
		     const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[PATH_MAX_LEN], sub[PATH_MAX_LEN], buf[SHOW_MAX + 8];
	if (!is_sequence(c, key, val, path))
		return;
	cfg->devices.inventory = calloc(val->n ? val->n : 1, sizeof(*cfg->devices.inventory));
	if (cfg->devices.inventory == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		if (!is_mapping(c, it, it, item, false))
			continue;
		struct config_device *d = &cfg->devices.inventory[cfg->devices.ninventory];
		struct inv_ctx ic = {.d = d};
		d->loc.line = it->line;
		d->loc.col = it->col;
		cfg->devices.ninventory++;
		walk_map(c, it, item, inventory_keys,
			 sizeof(inventory_keys) / sizeof(inventory_keys[0]), &ic);
		if (d->name == NULL)
			err(c, it, item, "missing key 'name'");
		if (!ic.has_mac && !has_key(it, "mac"))
			err(c, it, item, "missing key 'mac'");
		for (size_t j = 0; j + 1 < cfg->devices.ninventory; j++) {
			const struct config_device *e = &cfg->devices.inventory[j];
			if (d->name != NULL && e->name != NULL && strcmp(d->name, e->name) == 0) {
				err(c, it, path_key(sub, item, "name"),
				    "duplicate device name '%s' (first at line %d)",
				    show(d->name, buf, sizeof(buf)), e->loc.line);
			}
			if (ic.has_mac && !mac_is_zero(&e->mac) && mac_equal(&d->mac, &e->mac)) {
				char m[MAC_STRLEN];
				err(c, it, path_key(sub, item, "mac"),
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
on_leases_file(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	struct leases_ctx *lc = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	free(lc->l->file);
	if ((lc->l->file = config_resolve_path(c->cfg->dir, s)) == NULL)
		oom(c);
}

static void
on_leases_format(struct check *c, const struct config_node *key, const struct config_node *val,
		 const char *path, void *obj)
{
	static const char *const names[] = {"dnsmasq", "dhcpd", "kea"};
	struct leases_ctx *lc = obj;
	int i = get_enum(c, key, val, path, names, 3);
	enum leases_format f;
	if (i < 0 || leases_format_from_name(names[i], &f) != 0)
		return;
	lc->l->format = (int)f;
	lc->has_format = true;
}

static const struct check_key leases_keys[] = {
	{"file", on_leases_file},
	{"format", on_leases_format},
};

static void
on_devices_leases(struct check *c, const struct config_node *key, const struct config_node *val,
		  const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return;
	cfg->devices.leases = calloc(val->n ? val->n : 1, sizeof(*cfg->devices.leases));
	if (cfg->devices.leases == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		if (!is_mapping(c, it, it, item, false))
			continue;
		struct config_leases *l = &cfg->devices.leases[cfg->devices.nleases++];
		struct leases_ctx lc = {.l = l};
		l->loc.line = it->line;
		l->loc.col = it->col;
		walk_map(c, it, item, leases_keys, sizeof(leases_keys) / sizeof(leases_keys[0]), &lc);
		if (l->file == NULL)
			err(c, it, item, "missing key 'file'");
		if (!lc.has_format && !has_key(it, "format"))
			err(c, it, item, "missing key 'format' (dnsmasq, dhcpd or kea)");
	}
}

static void
on_devices_arp(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	struct config *cfg = obj;
	get_bool(c, key, val, path, &cfg->devices.arp);
}

static void
on_devices_arp_file(struct check *c, const struct config_node *key, const struct config_node *val,
		    const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	char *f = config_resolve_path(cfg->dir, s);
	if (f == NULL) {
		oom(c);
		return;
	}
	free(cfg->devices.arp_file);
	cfg->devices.arp_file = f;
}

static void
on_devices_arp_refresh(struct check *c, const struct config_node *key,
		       const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	get_uint(c, key, val, path, 1, 86400, &cfg->devices.arp_refresh_s);
}

static void
on_devices_trusted(struct check *c, const struct config_node *key, const struct config_node *val,
		   const char *path, void *obj)
{
	struct config *cfg = obj;
	cidr_seq(c, key, val, path, &cfg->devices.trusted, &cfg->devices.ntrusted);
}

static void
on_oui_dir(struct check *c, const struct config_node *key, const struct config_node *val,
	   const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	char *d = config_resolve_path(cfg->dir, s);
	if (d == NULL) {
		oom(c);
		return;
	}
	free(cfg->devices.oui_dir);
	cfg->devices.oui_dir = d;
}

static const struct check_key oui_keys[] = {
	{"dir", on_oui_dir},
};

/* oui: {dir: PATH} or oui: false (no registry lookups) */
static void
on_devices_oui(struct check *c, const struct config_node *key, const struct config_node *val,
	       const char *path, void *obj)
{
	struct config *cfg = obj;
	bool on;
	if (val->kind == CONFIG_NODE_SCALAR) {
		if (get_bool(c, key, val, path, &on) == 0 && !on) {
			free(cfg->devices.oui_dir);
			cfg->devices.oui_dir = NULL;
		}
		return;
	}
	if (is_mapping(c, key, val, path, true))
		walk_map(c, val, path, oui_keys, sizeof(oui_keys) / sizeof(oui_keys[0]), obj);
}

static void
on_devices_signatures(struct check *c, const struct config_node *key,
		      const struct config_node *val, const char *path, void *obj)
{
	(void)obj;
	/* checked at the end, once every list is known */
	if (is_mapping(c, key, val, path, true) || config_node_is_null(val)) {
		c->sig_key = key;
		c->sig_val = val;
	}
	c->signatures_set = true;
}

struct hv_ctx {
	struct config_hostname_vendor *h;
};

static void
on_hv_pattern(struct check *c, const struct config_node *key, const struct config_node *val,
	      const char *path, void *obj)
{
	struct hv_ctx *hc = obj;
	char buf[SHOW_MAX + 8];
	const char *why = NULL;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (hostglob_check(s, &why) != 0) {
		err(c, key, path, "bad hostname pattern '%s': %s", show(s, buf, sizeof(buf)), why);
		return;
	}
	free(hc->h->pattern);
	if ((hc->h->pattern = strdup(s)) == NULL)
		oom(c);
}

static void
on_hv_vendor(struct check *c, const struct config_node *key, const struct config_node *val,
	     const char *path, void *obj)
{
	struct hv_ctx *hc = obj;
	const char *s = get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	free(hc->h->vendor);
	if ((hc->h->vendor = strdup(s)) == NULL)
		oom(c);
}

static const struct check_key hv_keys[] = {
	{"pattern", on_hv_pattern},
	{"vendor", on_hv_vendor},
};

static void
on_devices_hostname_vendors(struct check *c, const struct config_node *key,
			    const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[PATH_MAX_LEN];
	if (!is_sequence(c, key, val, path))
		return;
	c->hostname_vendors_set = true;
	cfg->devices.hostname_vendors =
		calloc(val->n ? val->n : 1, sizeof(*cfg->devices.hostname_vendors));
	if (cfg->devices.hostname_vendors == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		path_index(item, path, i);
		if (!is_mapping(c, it, it, item, false))
			continue;
		struct config_hostname_vendor *h =
			&cfg->devices.hostname_vendors[cfg->devices.nhostname_vendors++];
		struct hv_ctx hc = {.h = h};
		h->loc.line = it->line;
		h->loc.col = it->col;
		walk_map(c, it, item, hv_keys, sizeof(hv_keys) / sizeof(hv_keys[0]), &hc);
		if (h->pattern == NULL && !has_key(it, "pattern"))
			err(c, it, item, "missing key 'pattern'");
		if (h->vendor == NULL && !has_key(it, "vendor"))
			err(c, it, item, "missing key 'vendor'");
	}
}

static const struct check_key devices_keys[] = {
	{"inventory", on_devices_inventory},
	{"dhcp_leases", on_devices_leases},
	{"arp", on_devices_arp},
	{"arp_file", on_devices_arp_file},
	{"arp_refresh_s", on_devices_arp_refresh},
	{"trusted_forwarders", on_devices_trusted},
	{"oui", on_devices_oui},
	{"signatures", on_devices_signatures},
	{"hostname_vendors", on_devices_hostname_vendors},
};

static void
on_devices(struct check *c, const struct config_node *key, const struct config_node *val,
	   const char *path, void *obj)
{
	struct config *cfg = obj;
	cfg->devices.enabled = true;
	if (is_mapping(c, key, val, path, true))
		walk_map(c, val, path, devices_keys, sizeof(devices_keys) / sizeof(devices_keys[0]),
			 obj);
}

/* The shipped signatures: operating-system names (connectivity checks, push, HTTPDNS, routing)
 * that a vendor's ROM resolves on its own; see docs and ../shared/data/oui.md section 4. */
static const char *const default_signatures[][8] = {
	{"Xiaomi", "connect.rom.miui.com", "cn.wifi.miui.com", "resolver.gslb.mi-idc.com",
	 "app.chat.xiaomi.net", "tracking.intl.miui.com", NULL},
	{"Oppo", "conn1.oppomobile.com", "conn2.oppomobile.com", "httpdns-push.heytapmobile.com",
	 "push.heytapmobile.com", "httpdns.push.oppomobile.com", NULL},
	{"Vivo", "wifi.vivo.com.cn", NULL},
	{"Huawei", "connectivitycheck.platform.hicloud.com", "connectivitycheck.cbg-app.huawei.com",
	 "grs.hicloud.com", "dnkeeper.hicloud.com", NULL},
	{"Honor", "connectivitycheck.hihonor.com", "grs.hihonorcloud.com", NULL},
};

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
signature_entry(struct check *c, struct config_signature *sg, const struct config_node *it,
		const char *item, bool *used)
{
	struct config *cfg = c->cfg;
	char buf[SHOW_MAX + 8];
	const char *why = NULL;
	struct names_name n;
	const char *s = get_string(c, it, it, item, false);
	if (s == NULL)
		return;
	for (size_t li = 0; li < cfg->nlists; li++) {
		if (strcmp(cfg->lists[li].name, s) != 0)
			continue;
		size_t *nv = realloc(sg->lists, (sg->nlists + 1) * sizeof(*nv));
		if (nv == NULL) {
			oom(c);
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
		    show(s, buf, sizeof(buf)), why);
		return;
	}
	if (rc == 1) {
		err(c, it, item, "'%s' is a local host name", show(s, buf, sizeof(buf)));
		return;
	}
	if (add_signature_domain(sg, s, it->line, it->col) != 0)
		oom(c);
}

static void
check_signatures(struct check *c, bool *used)
{
	struct config *cfg = c->cfg;
	const struct config_node *val = c->sig_val;
	char path[PATH_MAX_LEN], item[PATH_MAX_LEN + 24];

	if (!cfg->devices.enabled)
		return;
	if (!c->signatures_set) {
		size_t n = sizeof(default_signatures) / sizeof(default_signatures[0]);
		cfg->devices.signatures = calloc(n, sizeof(*cfg->devices.signatures));
		if (cfg->devices.signatures == NULL) {
			oom(c);
			return;
		}
		for (size_t i = 0; i < n; i++) {
			struct config_signature *sg = &cfg->devices.signatures[i];
			cfg->devices.nsignatures++;
			if ((sg->vendor = strdup(default_signatures[i][0])) == NULL) {
				oom(c);
				return;
			}
			for (size_t k = 1; default_signatures[i][k] != NULL; k++) {
				if (add_signature_domain(sg, default_signatures[i][k], 0, 0) != 0) {
					oom(c);
					return;
				}
			}
		}
		return;
	}
	if (val == NULL || val->kind != CONFIG_NODE_MAPPING)
		return;
	cfg->devices.signatures = calloc(val->n / 2 ? val->n / 2 : 1,
					 sizeof(*cfg->devices.signatures));
	if (cfg->devices.signatures == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < val->n / 2; i++) {
		const struct config_node *k = val->items[2 * i];
		const struct config_node *v = val->items[2 * i + 1];
		if (k->kind != CONFIG_NODE_SCALAR) {
			err(c, k, "devices.signatures", "keys must be strings, got %s", kind_name(k));
			continue;
		}
		path_key(path, "devices.signatures", k->str);
		if (!key_ok(c, val, i, path))
			continue;
		if (k->len == 0) {
			err(c, k, path, "vendor name must not be empty");
			continue;
		}
		struct config_signature *sg = &cfg->devices.signatures[cfg->devices.nsignatures++];
		sg->loc.line = k->line;
		sg->loc.col = k->col;
		if ((sg->vendor = strdup(k->str)) == NULL) {
			oom(c);
			return;
		}
		if (!is_sequence(c, k, v, path))
			continue;
		if (v->n == 0)
			warn(c, k, path, "empty: no name reveals this vendor");
		for (size_t j = 0; j < v->n; j++) {
			snprintf(item, sizeof(item), "%s[%zu]", path, j);
			signature_entry(c, sg, v->items[j], item, used);
		}
	}
}

/* devices.hostname_vendors defaults to hostglob's shipped table. */
static void
finish_devices(struct check *c)
{
	struct config *cfg = c->cfg;
	if (!cfg->devices.enabled || c->hostname_vendors_set)
		return;
	size_t n = hostglob_default_vendors_len;
	cfg->devices.hostname_vendors = calloc(n ? n : 1, sizeof(*cfg->devices.hostname_vendors));
	if (cfg->devices.hostname_vendors == NULL) {
		oom(c);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		struct config_hostname_vendor *h = &cfg->devices.hostname_vendors[i];
		cfg->devices.nhostname_vendors++;
		h->pattern = strdup(hostglob_default_vendors[i].pattern);
		h->vendor = strdup(hostglob_default_vendors[i].vendor);
		if (h->pattern == NULL || h->vendor == NULL) {
			oom(c);
			return;
		}
	}
}

/* ---- top level ---- */

#define SECTION(fn, keys)                                                                        \
	static void fn(struct check *c, const struct config_node *key,                           \
		       const struct config_node *val, const char *path, void *obj)               \
	{                                                                                        \
		if (is_mapping(c, key, val, path, true))                                         \
			walk_map(c, val, path, keys, sizeof(keys) / sizeof(keys[0]), obj);       \
	}

SECTION(on_server, server_keys)
SECTION(on_upstream, upstream_keys)
SECTION(on_cache, cache_keys)
SECTION(on_block, block_keys)
SECTION(on_log, log_keys)

static void
on_groups(struct check *c, const struct config_node *key, const struct config_node *val,
	  const char *path, void *obj)
{
	(void)path;
	(void)obj;
	/* Checked after everything else, once every list is known. */
	c->groups_key = key;
	c->groups_val = val;
}

static const struct check_key top_keys[] = {
	{"server", on_server},
	{"upstream", on_upstream},
	{"cache", on_cache},
	{"block", on_block},
	{"lists", on_lists},
	{"groups", on_groups},
	{"log", on_log},
	{"state_dir", on_state_dir},
	{"devices", on_devices},
};

int
config_check(const struct config_node *root, const char *file, struct config *cfg,
	     struct diag *diag)
{
	struct check c = {.diag = diag, .file = file, .cfg = cfg};
	size_t errors = diag->nerrors;
	bool *used = NULL;

	if (root == NULL || config_node_is_null(root)) {
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "empty configuration");
		return -EINVAL;
	}
	if (root->kind != CONFIG_NODE_MAPPING) {
		err(&c, root, NULL, "expected a mapping at the top level, got %s", kind_name(root));
		return -EINVAL;
	}
	walk_map(&c, root, "", top_keys, sizeof(top_keys) / sizeof(top_keys[0]), cfg);
	finish_log(&c);

	if (cfg->cache.min_ttl > cfg->cache.max_ttl) {
		const struct config_node *at = c.min_ttl_key != NULL ? c.min_ttl_key : c.max_ttl_key;
		err(&c, at, at == c.min_ttl_key ? "cache.min_ttl" : "cache.max_ttl",
		    "min_ttl (%u) is greater than max_ttl (%u)", (unsigned)cfg->cache.min_ttl,
		    (unsigned)cfg->cache.max_ttl);
	}

	used = calloc(cfg->nlists ? cfg->nlists : 1, sizeof(*used));
	if (used == NULL) {
		oom(&c);
		goto cleanup;
	}
	check_signatures(&c, used);
	finish_devices(&c);
	if (c.groups_val != NULL)
		check_groups(&c, c.groups_key, c.groups_val, used);
	for (size_t i = 0; i < cfg->nlists; i++) {
		if (used[i])
			continue;
		char path[PATH_MAX_LEN];
		struct config_node at = {.line = cfg->lists[i].loc.line,
					 .col = cfg->lists[i].loc.col};
		path_key(path, "lists", cfg->lists[i].name);
		warn(&c, &at, path, "used by no group");
	}
cleanup:
	free(used);
	if (c.rc != 0)
		return c.rc;
	return diag->nerrors > errors ? -EINVAL : 0;
}
