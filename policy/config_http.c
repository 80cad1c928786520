/*
 * config_http: the http section (listen, users, tokens): who may reach the HTTP listener and as
 * what. Passwords are crypt(3) hashes (yescrypt or SHA-512, checked here for their shape; the
 * listener verifies them with libcrypt), tokens the SHA-256 of the bearer token in hex.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "config_int.h"

#define err(c, at, path, ...) config_schema_report((c), DIAG_ERROR, (at), (path), __VA_ARGS__)

static const char *const role_names[] = {"read", "admin"};

const char *
config_http_role_name(enum config_http_role r)
{
	return r == CONFIG_HTTP_ADMIN ? "admin" : r == CONFIG_HTTP_READ ? "read" : "unknown";
}

bool
config_addr_is_loopback(const struct sockaddr_storage *ss)
{
	static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
		return (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	}
	if (ss->ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
		if (IN6_IS_ADDR_LOOPBACK(&a->sin6_addr))
			return true;
		return memcmp(a->sin6_addr.s6_addr, v4mapped, 12) == 0 &&
		       a->sin6_addr.s6_addr[12] == 127;
	}
	return false;
}

/* crypt(3)'s alphabet: ./0-9A-Za-z */
static size_t
b64_span(const char *s)
{
	size_t n = 0;
	while ((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'A' && s[n] <= 'Z') ||
	       (s[n] >= 'a' && s[n] <= 'z') || s[n] == '.' || s[n] == '/')
		n++;
	return n;
}

/* "$6$[rounds=N$]salt$hash(86)" or "$y$params$salt$hash(43)". */
static bool
hash_ok(const char *h)
{
	size_t n;
	if (strncmp(h, "$6$", 3) == 0) {
		h += 3;
		if (strncmp(h, "rounds=", 7) == 0) {
			h += 7;
			n = strspn(h, "0123456789");
			if (n == 0 || n > 9 || h[n] != '$')
				return false;
			h += n + 1;
		}
		n = b64_span(h);
		if (n == 0 || n > 16 || h[n] != '$')
			return false;
		h += n + 1;
		return b64_span(h) == 86 && h[86] == '\0';
	}
	if (strncmp(h, "$y$", 3) == 0) {
		h += 3;
		for (int part = 0; part < 2; part++) { /* params, salt */
			n = b64_span(h);
			if (n == 0 || h[n] != '$')
				return false;
			h += n + 1;
		}
		return b64_span(h) == 43 && h[43] == '\0';
	}
	return false;
}

static int
hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

static void
on_listen(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, void *obj)
{
	struct config *cfg = obj;
	config_addr_seq(c, key, val, path, 80, NULL, &cfg->http.listen, &cfg->http.nlisten);
}

/* One entry of users or tokens, as the key handlers fill it. */
struct entry {
	const struct config_node *map;
	const char *name;
	const char *secret; /* password or sha256, as written */
	const struct config_node *secret_key;
	int role; /* index in role_names, -1 not given */
};

static void
on_name(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
        const char *path, void *obj)
{
	struct entry *e = obj;
	e->name = config_schema_get_string(c, key, val, path, false);
}

static void
on_secret(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, void *obj)
{
	struct entry *e = obj;
	e->secret = config_schema_get_string(c, key, val, path, false);
	e->secret_key = key;
}

static void
on_role(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
        const char *path, void *obj)
{
	struct entry *e = obj;
	e->role = config_schema_get_enum(c, key, val, path, role_names,
	                                 sizeof(role_names) / sizeof(role_names[0]));
	if (e->role < 0)
		e->role = -2; /* reported */
}

static const struct config_schema_key user_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("name", on_name),
        CONFIG_SCHEMA_CALL_KEY("password", on_secret),
        CONFIG_SCHEMA_CALL_KEY("role", on_role),
};

static const struct config_schema_key token_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("name", on_name),
        CONFIG_SCHEMA_CALL_KEY("sha256", on_secret),
        CONFIG_SCHEMA_CALL_KEY("role", on_role),
};

/* Walks item i of users or tokens into e; false when it has an error (reported). */
static bool
entry_walk(struct config_check_ctx *c, const struct config_node *it, const char *item, bool token,
           struct entry *e)
{
	size_t errors = c->diag->nerrors;
	memset(e, 0, sizeof(*e));
	e->map = it;
	e->role = -1;
	if (!config_schema_is_mapping(c, it, it, item, false))
		return false;
	if (token)
		config_schema_walk_map(c, it, item, token_keys,
		                       sizeof(token_keys) / sizeof(token_keys[0]), e);
	else
		config_schema_walk_map(c, it, item, user_keys,
		                       sizeof(user_keys) / sizeof(user_keys[0]), e);
	if (e->name == NULL)
		err(c, it, item, "needs a name");
	if (e->secret == NULL && e->secret_key == NULL)
		err(c, it, item, "needs %s", token ? "sha256 (of the token, in hex)" : "password");
	if (e->role == -1)
		err(c, it, item, "needs a role (read or admin)");
	return c->diag->nerrors == errors && e->name != NULL && e->secret != NULL && e->role >= 0;
}

static void
on_users(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
         const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX], sub[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	struct config_http_user *v = calloc(val->n ? val->n : 1, sizeof(*v));
	if (v == NULL) {
		config_schema_oom(c);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < val->n; i++) {
		struct entry e;
		config_schema_path_index(item, path, i);
		if (!entry_walk(c, val->items[i], item, false, &e))
			continue;
		if (!hash_ok(e.secret)) {
			config_schema_path_key(sub, item, "password");
			err(c, e.secret_key, sub,
			    "not a crypt(3) hash (expected yescrypt '$y$...' or SHA-512 '$6$...', "
			    "as `veto passwd` prints)");
			continue;
		}
		int first = 0;
		for (size_t j = 0; j < n && first == 0; j++)
			first = strcmp(v[j].name, e.name) == 0 ? v[j].loc.line : 0;
		if (first > 0) {
			err(c, e.map, item, "duplicate name '%s' (first at line %d)", e.name,
			    first);
			continue;
		}
		v[n].name = strdup(e.name);
		v[n].password = strdup(e.secret);
		if (v[n].name == NULL || v[n].password == NULL) {
			free(v[n].name);
			free(v[n].password);
			config_schema_oom(c);
			break;
		}
		v[n].role = e.role == 1 ? CONFIG_HTTP_ADMIN : CONFIG_HTTP_READ;
		v[n].loc.line = e.map->line;
		v[n].loc.col = e.map->col;
		n++;
	}
	for (size_t i = 0; i < cfg->http.nusers; i++) {
		free(cfg->http.users[i].name);
		free(cfg->http.users[i].password);
	}
	free(cfg->http.users);
	cfg->http.users = v;
	cfg->http.nusers = n;
}

static void
on_tokens(struct config_check_ctx *c, const struct config_node *key, const struct config_node *val,
          const char *path, void *obj)
{
	struct config *cfg = obj;
	char item[CONFIG_PATH_MAX], sub[CONFIG_PATH_MAX];
	if (!config_schema_is_sequence(c, key, val, path))
		return;
	struct config_http_token *v = calloc(val->n ? val->n : 1, sizeof(*v));
	if (v == NULL) {
		config_schema_oom(c);
		return;
	}
	size_t n = 0;
	for (size_t i = 0; i < val->n; i++) {
		struct entry e;
		config_schema_path_index(item, path, i);
		if (!entry_walk(c, val->items[i], item, true, &e))
			continue;
		bool ok = strlen(e.secret) == 64;
		for (size_t k = 0; ok && k < 32; k++) {
			int hi = hexval(e.secret[2 * k]), lo = hexval(e.secret[2 * k + 1]);
			ok = hi >= 0 && lo >= 0;
			if (ok)
				v[n].sha256[k] = (uint8_t)(hi << 4 | lo);
		}
		if (!ok) {
			config_schema_path_key(sub, item, "sha256");
			err(c, e.secret_key, sub,
			    "not a SHA-256 in hex (64 digits: `printf %%s TOKEN | sha256sum`)");
			continue;
		}
		int first = 0;
		for (size_t j = 0; j < n && first == 0; j++)
			first = strcmp(v[j].name, e.name) == 0 ? v[j].loc.line : 0;
		if (first > 0) {
			err(c, e.map, item, "duplicate name '%s' (first at line %d)", e.name,
			    first);
			continue;
		}
		v[n].name = strdup(e.name);
		if (v[n].name == NULL) {
			config_schema_oom(c);
			break;
		}
		v[n].role = e.role == 1 ? CONFIG_HTTP_ADMIN : CONFIG_HTTP_READ;
		v[n].loc.line = e.map->line;
		v[n].loc.col = e.map->col;
		n++;
	}
	for (size_t i = 0; i < cfg->http.ntokens; i++)
		free(cfg->http.tokens[i].name);
	free(cfg->http.tokens);
	cfg->http.tokens = v;
	cfg->http.ntokens = n;
}

static const struct config_schema_key http_keys[] = {
        CONFIG_SCHEMA_CALL_KEY("listen", on_listen),
        CONFIG_SCHEMA_CALL_KEY("users", on_users),
        CONFIG_SCHEMA_CALL_KEY("tokens", on_tokens),
};

void
config_http_section(struct config_check_ctx *c, const struct config_node *key,
                    const struct config_node *val, const char *path, void *obj)
{
	c->http_key = key;
	if (config_schema_is_mapping(c, key, val, path, true))
		config_schema_walk_map(c, val, path, http_keys,
		                       sizeof(http_keys) / sizeof(http_keys[0]), obj);
}

void
config_http_finish(struct config_check_ctx *c)
{
	const struct config *cfg = c->cfg;
	char item[CONFIG_PATH_MAX];
	if (cfg->http.nusers > 0 || cfg->http.ntokens > 0)
		return;
	for (size_t i = 0; i < cfg->http.nlisten; i++) {
		const struct config_addr *a = &cfg->http.listen[i];
		if (config_addr_is_loopback(&a->ss))
			continue;
		struct config_node at = {.line = a->loc.line, .col = a->loc.col};
		config_schema_path_index(item, "http.listen", i);
		err(c, &at, item,
		    "'%s' is not a loopback address: it needs http.users or http.tokens "
		    "(without them every request is an administrator's)",
		    a->text);
	}
}
