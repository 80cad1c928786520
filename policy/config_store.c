/*
 * config_store: the store section. With store.postgresql the query log, the device events and
 * the device table live in one PostgreSQL database shared by every instance; without it nothing
 * changes (SQLite under state_dir). The connection string never carries a password: it is shown
 * by `veto config` and written to the log, so the password comes from password_file or from
 * libpq's own sources (PGPASSWORD, ~/.pgpass).
 */
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define err(c, at, path, ...) config_schema_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)

/* True when a URI's authority ("scheme://user:secret@host") or a keyword string
 * ("host=db password=secret") carries a password. */
static bool
conninfo_has_password(const char *s)
{
	const char *scheme = strstr(s, "://");
	if (scheme != NULL) {
		const char *auth = scheme + 3;
		size_t n = strcspn(auth, "/?#");
		const char *at = memchr(auth, '@', n);
		if (at != NULL && memchr(auth, ':', (size_t)(at - auth)) != NULL)
			return true;
		const char *q = strchr(auth, '?');
		for (; q != NULL; q = strchr(q + 1, '&'))
			if (strncmp(q + 1, "password=", 9) == 0)
				return true;
		return false;
	}
	for (const char *p = s; (p = strstr(p, "password")) != NULL; p += 8) {
		if (p != s && p[-1] != ' ' && p[-1] != '\t')
			continue;
		const char *e = p + 8;
		while (*e == ' ' || *e == '\t')
			e++;
		if (*e == '=')
			return true;
	}
	return false;
}

static bool
instance_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 63)
		return false;
	return strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") == n;
}

static void
on_postgresql(struct config_check_ctx *c, const struct config_node *key,
              const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = config_schema_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (conninfo_has_password(s)) {
		err(c, val, path,
		    "the connection string holds a password: put it in store.password_file (or "
		    "PGPASSWORD, ~/.pgpass) instead; the connection string is shown and logged");
		return;
	}
	bool uri = strncmp(s, "postgresql://", 13) == 0 || strncmp(s, "postgres://", 11) == 0;
	if (!uri && strchr(s, '=') == NULL) {
		err(c, val, path,
		    "not a libpq connection string: expected \"postgresql://user@host/db\" or "
		    "\"host=... dbname=... user=...\"");
		return;
	}
	char *dup = strdup(s);
	if (dup == NULL) {
		config_schema_oom(c);
		return;
	}
	free(cfg->store.postgresql);
	cfg->store.postgresql = dup;
}

static void
on_instance(struct config_check_ctx *c, const struct config_node *key,
            const struct config_node *val, const char *path, void *obj)
{
	struct config *cfg = obj;
	const char *s = config_schema_get_string(c, key, val, path, false);
	if (s == NULL)
		return;
	if (!instance_ok(s)) {
		err(c, val, path, "an instance name is 1-63 of A-Z a-z 0-9 . _ - (e.g. dns1)");
		return;
	}
	char *dup = strdup(s);
	if (dup == NULL) {
		config_schema_oom(c);
		return;
	}
	free(cfg->store.instance);
	cfg->store.instance = dup;
}

static const struct config_schema_key store_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("postgresql", on_postgresql),
        CONFIG_SCHEMA_CALL_KEY("instance", on_instance),
        CONFIG_SCHEMA_PATH_KEY("password_file", struct config, store.password_file),
        CONFIG_SCHEMA_UINT_KEY("spool_mb", struct config, store.spool_mb, 1, 1048576),
        CONFIG_SCHEMA_UINT_KEY("resync_s", struct config, store.resync_s, 5, 86400),
};

void
config_store_section(struct config_check_ctx *c, const struct config_node *key,
                     const struct config_node *val, const char *path, void *obj)
{
	if (config_schema_is_mapping(c, key, val, path, true))
		config_schema_walk_map(c, val, path, store_keys,
		                       sizeof(store_keys) / sizeof(store_keys[0]), obj);
}
