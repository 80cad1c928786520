/*
 * config_schema: the node helpers every part of the configuration checker walks the YAML tree
 * with (config_check.c for the core sections, config_devices.c for the devices section): typed
 * values, key paths, messages, and the walk of a mapping through a table of keys.
 *
 * A key table entry either calls a handler or, for a plain bounded scalar, stores the value
 * straight into a field of the object being filled (type, offset, range): see config_int.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "check.h"
#include "config_int.h"

#define err(c, at, path, ...) config_schema_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)

/* ---- messages ---- */

void
config_schema_report(struct config_check_ctx *c, enum diag_level level,
                     const struct config_node *at, const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(c->diag, level, c->file, at != NULL ? at->line : 0, at != NULL ? at->col : 0,
	          path != NULL && path[0] != '\0' ? path : NULL, fmt, ap);
	va_end(ap);
}

void
config_schema_oom(struct config_check_ctx *c)
{
	if (c->rc == 0)
		diag_add(c->diag, DIAG_ERROR, c->file, 0, 0, NULL, "out of memory");
	c->rc = -ENOMEM;
}

/* A printable, bounded copy of s for messages (control octets become '?'). */
const char *
config_schema_show(const char *s, char *buf, size_t size)
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
config_schema_kind_name(const struct config_node *n)
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
config_schema_path_key(char *buf, const char *parent, const char *key)
{
	char tmp[CONFIG_SHOW_MAX + 8];
	size_t n = 0;
	config_schema_show(key, tmp, sizeof(tmp));
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
config_schema_path_index(char *buf, const char *parent, size_t i)
{
	snprintf(buf, CONFIG_PATH_MAX, "%s[%zu]", parent, i);
	return buf;
}

/* ---- typed values ---- */

/* A string value: a scalar without inner NUL. Reports and returns NULL otherwise. */
const char *
config_schema_get_string(struct config_check_ctx *c, const struct config_node *at,
                         const struct config_node *val, const char *path, bool allow_empty)
{
	if (val->kind != CONFIG_NODE_SCALAR || (config_node_is_null(val) && !allow_empty)) {
		err(c, at, path, "expected a string, got %s", config_schema_kind_name(val));
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
config_schema_get_uint(struct config_check_ctx *c, const struct config_node *at,
                       const struct config_node *val, const char *path, uint32_t min, uint32_t max,
                       uint32_t *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	if (val->kind != CONFIG_NODE_SCALAR || !val->plain || config_node_is_null(val)) {
		err(c, at, path, "expected an integer, got %s", config_schema_kind_name(val));
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
		    (unsigned)max, config_schema_show(val->str, buf, sizeof(buf)));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

/* digits then an optional unit among units[] (multipliers mult[]); false on anything else */
static bool
scaled_uint(const struct config_node *val, const char *units, const uint64_t *mult, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0;
	if (val->kind != CONFIG_NODE_SCALAR || config_node_is_null(val))
		return false;
	for (; i < val->len && val->str[i] >= '0' && val->str[i] <= '9'; i++) {
		if (i >= 10)
			return false;
		v = v * 10 + (uint64_t)(val->str[i] - '0');
	}
	if (i == 0)
		return false;
	if (i < val->len) {
		const char *u = strchr(units, val->str[i]);
		if (u == NULL || val->str[i] == '\0' || i + 1 != val->len)
			return false;
		v *= mult[u - units];
	}
	*out = v;
	return true;
}

int
config_schema_get_duration(struct config_check_ctx *c, const struct config_node *at,
                           const struct config_node *val, const char *path, uint32_t min,
                           uint32_t max, uint32_t *out)
{
	static const uint64_t mult[] = {1, 60, 3600, 86400};
	char buf[CONFIG_SHOW_MAX + 8];
	uint64_t v;
	if (!scaled_uint(val, "smhd", mult, &v) || v < min || v > max) {
		err(c, at, path, "expected a duration from %us to %us (such as 30s, 15m, 24h, 7d), "
		    "got '%s'", (unsigned)min, (unsigned)max,
		    val->kind == CONFIG_NODE_SCALAR ? config_schema_show(val->str, buf, sizeof(buf))
		                                    : config_schema_kind_name(val));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

int
config_schema_get_size(struct config_check_ctx *c, const struct config_node *at,
                       const struct config_node *val, const char *path, uint32_t min,
                       uint32_t max, uint32_t *out)
{
	static const uint64_t mult[] = {1024, 1u << 20, 1u << 30};
	char buf[CONFIG_SHOW_MAX + 8];
	uint64_t v;
	if (!scaled_uint(val, "KMG", mult, &v) || v < min || v > max) {
		err(c, at, path, "expected a size from %u to %u octets (such as 512K, 64M, 1G), "
		    "got '%s'", (unsigned)min, (unsigned)max,
		    val->kind == CONFIG_NODE_SCALAR ? config_schema_show(val->str, buf, sizeof(buf))
		                                    : config_schema_kind_name(val));
		return -EINVAL;
	}
	*out = (uint32_t)v;
	return 0;
}

bool
config_schema_is_sequence(struct config_check_ctx *c, const struct config_node *at,
                          const struct config_node *val, const char *path)
{
	if (val->kind == CONFIG_NODE_SEQUENCE)
		return true;
	err(c, at, path, "expected a sequence, got %s", config_schema_kind_name(val));
	return false;
}

/* Mappings; a null section ("server:" with nothing below) counts as an empty one. */
bool
config_schema_is_mapping(struct config_check_ctx *c, const struct config_node *at,
                         const struct config_node *val, const char *path, bool null_ok)
{
	if (val->kind == CONFIG_NODE_MAPPING)
		return true;
	if (null_ok && config_node_is_null(val))
		return false;
	err(c, at, path, "expected a mapping, got %s", config_schema_kind_name(val));
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
			    config_schema_show(s, buf, sizeof(buf)), names[i]);
			return;
		}
	}
	size_t off = 0;
	for (size_t i = 0; i < n && off < sizeof(expected); i++)
		off += (size_t)snprintf(expected + off, sizeof(expected) - off, "%s%s",
		                        i ? ", " : "", names[i]);
	err(c, at, path, "unknown value '%s' (expected %s)",
	    config_schema_show(s, buf, sizeof(buf)), expected);
}

int
config_schema_get_action(struct config_check_ctx *c, const struct config_node *at,
                         const struct config_node *val, const char *path, enum config_action *out)
{
	const char *names[CONFIG_ACTION_REFUSED - CONFIG_ACTION_SINKHOLE + 1];
	const char *s = config_schema_get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	if (config_action_parse(s, out) != 0) {
		for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
			names[i] = config_action_name(
			        (enum config_action)(CONFIG_ACTION_SINKHOLE + i));
		unknown_value(c, at, path, s, names, sizeof(names) / sizeof(names[0]));
		return -EINVAL;
	}
	return 0;
}

/* One of names[]; returns its index or -1 (reported). */
int
config_schema_get_enum(struct config_check_ctx *c, const struct config_node *at,
                       const struct config_node *val, const char *path, const char *const *names,
                       size_t n)
{
	const char *s = config_schema_get_string(c, at, val, path, false);
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
	const char *s = config_schema_get_string(c, at, val, path, false);
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
		    config_schema_show(s, buf, sizeof(buf)), net);
	} else {
		err(c, at, path, "bad prefix '%s': %s", config_schema_show(s, buf, sizeof(buf)),
		    why);
	}
	return -EINVAL;
}

int
config_schema_get_addr(struct config_check_ctx *c, const struct config_node *at,
                       const struct config_node *val, const char *path, uint16_t default_port,
                       struct config_addr *out)
{
	char buf[CONFIG_SHOW_MAX + 8];
	const char *s = config_schema_get_string(c, at, val, path, false);
	if (s == NULL)
		return -EINVAL;
	struct config_addr a;
	memset(&a, 0, sizeof(a));
	if (config_parse_addr(s, default_port, &a.ss, &a.len) != 0) {
		err(c, at, path, "bad address '%s' (expected IPv4, IPv4:port, IPv6 or [IPv6]:port)",
		    config_schema_show(s, buf, sizeof(buf)));
		return -EINVAL;
	}
	a.text = strdup(s);
	if (a.text == NULL) {
		config_schema_oom(c);
		return -ENOMEM;
	}
	a.loc.line = at->line;
	a.loc.col = at->col;
	*out = a;
	return 0;
}

static int
set_value(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, const char *dir, char **field)
{
	const char *s = config_schema_get_string(c, key, val, path, false);
	if (s == NULL)
		return -EINVAL;
	char *copy = dir != NULL ? config_resolve_path(dir, s) : strdup(s);
	if (copy == NULL) {
		config_schema_oom(c);
		return -ENOMEM;
	}
	free(*field);
	*field = copy;
	return 0;
}

int
config_schema_set_str(struct config_check_ctx *c, const struct config_node *key,
                      const struct config_node *val, const char *path, char **field)
{
	return set_value(c, key, val, path, NULL, field);
}

int
config_schema_set_path(struct config_check_ctx *c, const struct config_node *key,
                       const struct config_node *val, const char *path, char **field)
{
	return set_value(c, key, val, path, c->cfg->dir, field);
}

int
config_schema_get_bool(struct config_check_ctx *c, const struct config_node *at,
                       const struct config_node *val, const char *path, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "off"};
	char buf[CONFIG_SHOW_MAX + 8];
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
		err(c, at, path, "expected true or false, got '%s'",
		    config_schema_show(val->str, buf, sizeof(buf)));
		return -EINVAL;
	}
	err(c, at, path, "expected true or false, got %s", config_schema_kind_name(val));
	return -EINVAL;
}

/* ---- sequences ---- */

void
config_schema_cidr_seq(struct config_check_ctx *c, const struct config_node *key,
                       const struct config_node *val, const char *path, struct config_cidr **v,
                       size_t *n)
{
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	struct config_cidr *nv = calloc(val->n ? val->n : 1, sizeof(*nv));
	size_t nn = 0;
	if (nv == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		if (get_cidr(c, it, it, item, &nv[nn]) == 0)
			nn++;
	}
	free(*v);
	*v = nv;
	*n = nn;
}

/* A name suggestion among candidates, or NULL. */
const char *
config_schema_suggest(const char *word, const char *const *cands, size_t n)
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

const char *
config_suggest(const char *word, const char *const *cands, size_t n)
{
	return config_schema_suggest(word, cands, n);
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
			    config_schema_show(key->str, buf, sizeof(buf)), k->line);
			return true;
		}
	}
	return false;
}

bool
config_schema_key_ok(struct config_check_ctx *c, const struct config_node *map, size_t i,
                     const char *path)
{
	const struct config_node *key = map->items[2 * i];
	if (key->kind != CONFIG_NODE_SCALAR || strlen(key->str) != key->len) {
		err(c, key, path, "keys must be strings, got %s", config_schema_kind_name(key));
		return false;
	}
	return !duplicate_key(c, map, i, path);
}

bool
config_schema_map_key(struct config_check_ctx *c, const struct config_node *map, size_t i,
                      const char *path, char *child)
{
	const struct config_node *key = map->items[2 * i];
	if (key->kind != CONFIG_NODE_SCALAR) {
		err(c, key, path, "keys must be strings, got %s", config_schema_kind_name(key));
		return false;
	}
	config_schema_path_key(child, path, key->str);
	return config_schema_key_ok(c, map, i, child);
}

/* Stores the value of a plain key (one that calls no handler) into its field of obj. */
static void
set_field(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, const struct config_schema_key *k, void *obj)
{
	void *field = (char *)obj + k->off;
	switch (k->type) {
	case CONFIG_SCHEMA_UINT:
		config_schema_get_uint(c, key, val, path, k->min, k->max, field);
		break;
	case CONFIG_SCHEMA_BOOL:
		config_schema_get_bool(c, key, val, path, field);
		break;
	case CONFIG_SCHEMA_STR:
		config_schema_set_str(c, key, val, path, field);
		break;
	case CONFIG_SCHEMA_PATH:
		config_schema_set_path(c, key, val, path, field);
		break;
	case CONFIG_SCHEMA_CALL:
		INSIST(0);
	}
}

void
config_schema_walk_map(struct config_check_ctx *c, const struct config_node *map, const char *path,
                       const struct config_schema_key *keys, size_t nkeys, void *obj)
{
	char child[CONFIG_PATH_MAX], sbuf[CONFIG_SHOW_MAX + 8];
	const char *names[32];
	size_t nnames = nkeys < 32 ? nkeys : 32;
	for (size_t k = 0; k < nnames; k++)
		names[k] = keys[k].name;

	for (size_t i = 0; i < map->n / 2; i++) {
		const struct config_node *key = map->items[2 * i];
		const struct config_node *val = map->items[2 * i + 1];
		if (!config_schema_map_key(c, map, i, path, child))
			continue;
		size_t k = 0;
		while (k < nkeys && strcmp(keys[k].name, key->str) != 0)
			k++;
		if (k == nkeys) {
			const char *s = config_schema_suggest(key->str, names, nnames);
			if (s != NULL) {
				err(c, key, child, "unknown key (did you mean '%s'?)", s);
			} else {
				char known[256] = "";
				size_t off = 0;
				for (size_t j = 0; j < nnames && off < sizeof(known); j++)
					off += (size_t)snprintf(known + off, sizeof(known) - off,
					                        "%s%s", j ? ", " : "", names[j]);
				err(c, key, child, "unknown key '%s' (expected one of %s)",
				    config_schema_show(key->str, sbuf, sizeof(sbuf)), known);
			}
			continue;
		}
		if (keys[k].type == CONFIG_SCHEMA_CALL)
			keys[k].fn(c, key, val, child, obj);
		else
			set_field(c, key, val, child, &keys[k], obj);
	}
}
