/*
 * config_lists: the lists section of the configuration (named lists of files, inline domains
 * and URLs with their refresh, timeout, size limit and CA file), checked into struct config;
 * config_check.c calls it for the top-level key "lists".
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

/* Appends the strings of a sequence to *v (and their locations to *locs). */
static void
string_seq(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
           const char *path, const char *dir, char ***v, struct config_loc **locs, size_t *n)
{
	char item[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	if (val->n == 0)
		return;
	char **nv = realloc(*v, (*n + val->n) * sizeof(*nv));
	if (nv == NULL) {
		config_schema_oom(c);
		return;
	}
	*v = nv;
	struct config_loc *nl = realloc(*locs, (*n + val->n) * sizeof(*nl));
	if (nl == NULL) {
		config_schema_oom(c);
		return;
	}
	*locs = nl;
	for (size_t i = 0; i < val->n; i++) {
		const struct config_node *it = val->items[i];
		config_schema_path_index(item, path, i);
		const char *s = config_schema_get_string(c, it, it, item, false);
		if (s == NULL)
			continue;
		char *copy = dir != NULL ? config_resolve_path(dir, s) : strdup(s);
		if (copy == NULL) {
			config_schema_oom(c);
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
              const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	string_seq(c, key, val, path, c->cfg->dir, &l->files, &l->file_locs, &l->nfiles);
}

static void
on_list_domains(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	string_seq(c, key, val, path, NULL, &l->domains, &l->domain_locs, &l->ndomains);
}

static void
on_list_action(struct config_check_ctx *c, const struct config_node *key,
               const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	config_schema_get_action(c, key, val, path, &l->action);
}

/* urls: http:// or https:// only (what the downloader allows), no white space or controls */
static void
on_list_urls(struct config_check_ctx *c, const struct config_node *key,
             const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	char item[CONFIG_PATH_MAX], show[CONFIG_SHOW_MAX + 8];
	size_t first = l->nurls;
	string_seq(c, key, val, path, NULL, &l->urls, &l->url_locs, &l->nurls);
	for (size_t i = first; i < l->nurls; i++) {
		const char *u = l->urls[i];
		bool ok = strncasecmp(u, "http://", 7) == 0 || strncasecmp(u, "https://", 8) == 0;
		for (const unsigned char *p = (const unsigned char *)u; ok && *p != '\0'; p++)
			ok = *p > 0x20 && *p != 0x7f;
		if (ok && strlen(u) > 2048)
			ok = false;
		if (!ok) {
			struct config_node at = {.line = l->url_locs[i].line, .col = l->url_locs[i].col};
			config_schema_path_index(item, path, i);
			err(c, &at, item, "'%s' is not an http:// or https:// URL",
			    config_schema_show(u, show, sizeof(show)));
		}
	}
}

static void
on_list_refresh(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	config_schema_get_duration(c, key, val, path, 1, 30 * 86400, &l->refresh_s);
}

static void
on_list_timeout(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	config_schema_get_duration(c, key, val, path, 1, 3600, &l->timeout_s);
}

static void
on_list_max_size(struct config_check_ctx *c, const struct config_node *key,
                 const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	config_schema_get_size(c, key, val, path, 1024, 1u << 30, &l->max_size);
}

static void
on_list_ca_file(struct config_check_ctx *c, const struct config_node *key,
                const struct config_node *val, const char *path, void *obj)
{
	struct config_list *l = obj;
	config_schema_set_path(c, key, val, path, &l->ca_file);
}

static const struct config_schema_key list_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("files", on_list_files),
        CONFIG_SCHEMA_CALL_KEY("domains", on_list_domains),
        CONFIG_SCHEMA_CALL_KEY("urls", on_list_urls),
        CONFIG_SCHEMA_CALL_KEY("refresh", on_list_refresh),
        CONFIG_SCHEMA_CALL_KEY("timeout", on_list_timeout),
        CONFIG_SCHEMA_CALL_KEY("max_size", on_list_max_size),
        CONFIG_SCHEMA_CALL_KEY("ca_file", on_list_ca_file),
        CONFIG_SCHEMA_CALL_KEY("action", on_list_action),
};

/* The cached copy of each URL: state_dir/lists/NAME.I.txt (state_dir is known only once the
 * whole file is read). */
void
config_lists_finish(struct config_check_ctx *c)
{
	struct config *cfg = c->cfg;
	for (size_t i = 0; i < cfg->nlists; i++) {
		struct config_list *l = &cfg->lists[i];
		if (l->nurls == 0)
			continue;
		l->cache_files = calloc(l->nurls, sizeof(*l->cache_files));
		if (l->cache_files == NULL) {
			config_schema_oom(c);
			return;
		}
		for (size_t u = 0; u < l->nurls; u++) {
			char rel[128];
			snprintf(rel, sizeof(rel), "%s/%s.%zu.txt", CONFIG_LISTS_CACHE_DIR, l->name, u);
			l->cache_files[u] = config_resolve_path(cfg->state_dir, rel);
			if (l->cache_files[u] == NULL) {
				config_schema_oom(c);
				return;
			}
		}
	}
}

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

void
config_lists_section(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
         const char *path, void *obj)
{
	struct config *cfg = obj;
	char child[CONFIG_PATH_MAX];
	if (!config_schema_is_mapping(c, key, val, path, true))
		return;
	cfg->lists = calloc(val->n / 2 ? val->n / 2 : 1, sizeof(*cfg->lists));
	if (cfg->lists == NULL) {
		config_schema_oom(c);
		return;
	}
	for (size_t i = 0; i < val->n / 2; i++) {
		const struct config_node *k = val->items[2 * i];
		const struct config_node *v = val->items[2 * i + 1];
		if (!config_schema_map_key(c, val, i, path, child))
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
			config_schema_oom(c);
			return;
		}
		l->refresh_s = CONFIG_LIST_REFRESH_S;
		l->timeout_s = CONFIG_LIST_TIMEOUT_S;
		l->max_size = CONFIG_LIST_MAX_SIZE;
		cfg->nlists++;
		if (!config_schema_is_mapping(c, k, v, child, false))
			continue;
		size_t errors = c->diag->nerrors;
		config_schema_walk_map(c, v, child, list_keys,
		                       sizeof(list_keys) / sizeof(list_keys[0]), l);
		if (l->nfiles == 0 && l->ndomains == 0 && l->nurls == 0)
			err(c, k, child, "list has neither files, domains nor urls");
		l->valid = c->diag->nerrors == errors && c->rc == 0;
	}
}

