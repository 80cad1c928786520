/*
 * config_int: what config.c, config_yaml.c, config_schema.c, config_check.c, config_devices.c
 * and their tests share.
 *
 * config_yaml.c turns YAML text into a small tree of struct config_node (scalars, sequences and
 * mappings, each with its line and column); config_check.c walks that tree into a struct config
 * (config_devices.c the devices section), both with config_schema.c's node helpers; config.c
 * owns the model, the defaults and the file handling.
 */
#ifndef VETO_CONFIG_INT_H
#define VETO_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "diag.h"

#define CONFIG_MAX_DEPTH 64 /* deeper YAML nesting is rejected */

enum config_node_kind {
	CONFIG_NODE_SCALAR,
	CONFIG_NODE_SEQUENCE,
	CONFIG_NODE_MAPPING,
};

struct config_node {
	enum config_node_kind kind;
	int line, col;              /* 1-based position of the node's first character */
	char *str;                  /* scalars: owned, NUL-terminated (may hold inner NULs) */
	size_t len;                 /* scalars: length of str */
	bool plain;                 /* scalars: written without quotes */
	struct config_node **items; /* sequences: items; mappings: key, value, key, value... */
	size_t n;                   /* number of entries in items */
	size_t cap;
};

/*
 * Parses YAML text (config_yaml.c). file is used in messages only. Syntax errors, aliases,
 * several documents and too deep nesting are reported to diag and return -EINVAL; -ENOMEM on
 * allocation failure. On success *out is the root node, or NULL when the text holds no document.
 */
int config_yaml_parse(const char *file, const char *text, size_t len, struct diag *diag,
                      struct config_node **out);
void config_node_free(struct config_node **node);

/* True for a plain scalar spelling null: "", "~", "null", "Null", "NULL". */
bool config_node_is_null(const struct config_node *node);

/*
 * Walks the tree into cfg (config_check.c), whose defaults are already set. Every problem goes to
 * diag with file, position and key path. Returns 0 when no error was added, -EINVAL otherwise,
 * -ENOMEM on allocation failure. root may be NULL (empty file).
 */
int config_check(const struct config_node *root, const char *file, struct config *cfg,
                 struct diag *diag);

/*
 * Loads a configuration from memory (the fuzz target and tests use it): file names the text in
 * messages, dir is the base of relative paths. Same contract as config_load().
 */
int config_load_text(const char *file, const char *dir, const char *text, size_t len,
                     struct diag *diag, struct config **out);

/* A config holding only the defaults (no lists, no groups). 0 or -ENOMEM. */
int config_new_defaults(const char *file, const char *dir, struct config **out);

/* dir + "/" + path unless path is absolute or dir is "." or empty. NULL on allocation failure. */
char *config_resolve_path(const char *dir, const char *path);

/* Parses an action name; inherit is not accepted. 0 or -EINVAL. */
int config_action_parse(const char *text, enum config_action *out);

/* Like config_parse_cidr but accepts host bits (the checker suggests the network). */
int config_parse_cidr_loose(const char *text, struct config_cidr *out, const char **why);

/* Edit distance between a and b (case-insensitive), capped at cap + 1. */
size_t config_edit_distance(const char *a, const char *b, size_t cap);

/*
 * The checker's context (config_check.c and config_devices.c fill it; config_schema.c reports
 * through it).
 */
#define CONFIG_PATH_MAX 512 /* longest key path; longer ones are cut */
#define CONFIG_SHOW_MAX 80  /* longest value quoted in a message */

struct config_check_ctx {
	struct diag *diag;
	const char *file;
	struct config *cfg;
	int rc; /* sticky -ENOMEM */
	const struct config_node *groups_key, *groups_val;
	const struct config_node *min_ttl_key, *max_ttl_key;
	const char *database; /* log.database as written (resolved at the end) */
	const struct config_node *database_at; /* its value, for a message */
	bool log_file_set;
	const struct config_node *sig_key, *sig_val; /* devices.signatures */
	bool signatures_set, hostname_vendors_set;
	const struct config_node *http_key; /* the http: key, where auth problems are reported */
};

/* What a group's key handlers share (config_check.c and the device selectors). */
struct config_check_group {
	struct config_group *g;
	const struct config_node *name_key;
	bool *used;        /* per list: referenced by some group */
	bool selectors;    /* a selector key (clients, macs...) was written */
	bool identity_off; /* a device selector without a devices: section was reported */
};

/*
 * config_schema.c: the node helpers of the checker, used by config_check.c and
 * config_devices.c. Every problem is reported to c->diag with the node's position and the key
 * path; allocation failures set the sticky c->rc = -ENOMEM (reported once).
 */

/* Handles one key of a mapping: key and val are the nodes, path the key path, obj the object. */
typedef void (*config_schema_key_cb)(struct config_check_ctx *c, const struct config_node *key,
                                     const struct config_node *val, const char *path, void *obj);

/* What a key of a table does: call its handler, or store a plain value into a field of obj. */
enum config_schema_type {
	CONFIG_SCHEMA_CALL, /* fn(c, key, val, path, obj) */
	CONFIG_SCHEMA_UINT, /* uint32_t from min to max (config_schema_get_uint) */
	CONFIG_SCHEMA_BOOL, /* bool (config_schema_get_bool) */
	CONFIG_SCHEMA_STR,  /* char *, a copy (config_schema_set_str) */
	CONFIG_SCHEMA_PATH, /* char *, resolved (config_schema_set_path) */
};

struct config_schema_key {
	const char *name;
	config_schema_key_cb fn; /* CONFIG_SCHEMA_CALL only */
	enum config_schema_type type;
	size_t off;        /* other types: offset of the field in obj */
	uint32_t min, max; /* CONFIG_SCHEMA_UINT */
};

/* A key table entry calling fn. */
/* clang-format off */
#define CONFIG_SCHEMA_CALL_KEY(name, fn) {(name), (fn), CONFIG_SCHEMA_CALL, 0, 0, 0}
/* Field entries of a key table; the field must have the type the entry stores (checked at
 * compile time: comparing pointers of distinct types is diagnosed). */
#define CONFIG_SCHEMA_FIELD_(name, type, otype, field, ftype, min, max)                            \
	{(name), NULL, (type),                                                                     \
	 offsetof(otype, field) + 0 * sizeof(&((otype *)0)->field == (ftype *)0), (min), (max)}
#define CONFIG_SCHEMA_UINT_KEY(name, otype, field, min, max)                                       \
	CONFIG_SCHEMA_FIELD_(name, CONFIG_SCHEMA_UINT, otype, field, uint32_t, min, max)
#define CONFIG_SCHEMA_BOOL_KEY(name, otype, field)                                                 \
	CONFIG_SCHEMA_FIELD_(name, CONFIG_SCHEMA_BOOL, otype, field, bool, 0, 0)
#define CONFIG_SCHEMA_STR_KEY(name, otype, field)                                                  \
	CONFIG_SCHEMA_FIELD_(name, CONFIG_SCHEMA_STR, otype, field, char *, 0, 0)
#define CONFIG_SCHEMA_PATH_KEY(name, otype, field)                                                 \
	CONFIG_SCHEMA_FIELD_(name, CONFIG_SCHEMA_PATH, otype, field, char *, 0, 0)
/* clang-format on */

void config_schema_report(struct config_check_ctx *c, enum diag_level level,
                          const struct config_node *at, const char *path, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));
void config_schema_oom(struct config_check_ctx *c);
/* A printable, bounded copy of s in buf (control octets become '?'); returns buf. */
const char *config_schema_show(const char *s, char *buf, size_t size);
const char *config_schema_kind_name(const struct config_node *n);
/* parent.key and parent[i] into buf (CONFIG_PATH_MAX octets); return buf. */
const char *config_schema_path_key(char *buf, const char *parent, const char *key);
const char *config_schema_path_index(char *buf, const char *parent, size_t i);
/* A name among cands[] close to word (edit distance), or NULL. */
const char *config_schema_suggest(const char *word, const char *const *cands, size_t n);

/* Typed values: report at `at` under path and fail (NULL, -EINVAL, -1 or false) on mismatch;
 * *out is written only on success. */
const char *config_schema_get_string(struct config_check_ctx *c, const struct config_node *at,
                                     const struct config_node *val, const char *path,
                                     bool allow_empty);
int config_schema_get_uint(struct config_check_ctx *c, const struct config_node *at,
                           const struct config_node *val, const char *path, uint32_t min,
                           uint32_t max, uint32_t *out);
/* A duration: an integer with an optional unit s, m, h or d (seconds without), from min to max
 * seconds. */
int config_schema_get_duration(struct config_check_ctx *c, const struct config_node *at,
                               const struct config_node *val, const char *path, uint32_t min,
                               uint32_t max, uint32_t *out);
/* A size: an integer with an optional unit K, M or G (powers of 1024; octets without), from min
 * to max octets. */
int config_schema_get_size(struct config_check_ctx *c, const struct config_node *at,
                           const struct config_node *val, const char *path, uint32_t min,
                           uint32_t max, uint32_t *out);
int config_schema_get_bool(struct config_check_ctx *c, const struct config_node *at,
                           const struct config_node *val, const char *path, bool *out);
/* One of names[]: its index, or -1 (reported). */
int config_schema_get_enum(struct config_check_ctx *c, const struct config_node *at,
                           const struct config_node *val, const char *path,
                           const char *const *names, size_t n);
/* An action name (inherit is not accepted). */
int config_schema_get_action(struct config_check_ctx *c, const struct config_node *at,
                             const struct config_node *val, const char *path,
                             enum config_action *out);
/* An address with an optional port (default_port otherwise); out->text is a copy. */
int config_schema_get_addr(struct config_check_ctx *c, const struct config_node *at,
                           const struct config_node *val, const char *path, uint16_t default_port,
                           struct config_addr *out);
/* A sequence of addresses (default_port where none is given; duplicates reported) into a new
 * array replacing *v / *n. what: "needs at least one WHAT" when empty; NULL: empty is fine. */
void config_addr_seq(struct config_check_ctx *c, const struct config_node *key,
                     const struct config_node *val, const char *path, uint16_t default_port,
                     const char *what, struct config_addr **v, size_t *n);
bool config_schema_is_sequence(struct config_check_ctx *c, const struct config_node *at,
                               const struct config_node *val, const char *path);
/* A null section counts as an empty mapping when null_ok (returns false, not reported). */
bool config_schema_is_mapping(struct config_check_ctx *c, const struct config_node *at,
                              const struct config_node *val, const char *path, bool null_ok);

/*
 * Setters: a non-empty string value replaces *field (a copy; set_path resolves it against the
 * configuration's directory). 0, -EINVAL (reported) or -ENOMEM; *field is unchanged on failure.
 */
int config_schema_set_str(struct config_check_ctx *c, const struct config_node *key,
                          const struct config_node *val, const char *path, char **field);
int config_schema_set_path(struct config_check_ctx *c, const struct config_node *key,
                           const struct config_node *val, const char *path, char **field);

/* A sequence of prefixes into a new array replacing *v / *n. */
void config_schema_cidr_seq(struct config_check_ctx *c, const struct config_node *key,
                            const struct config_node *val, const char *path, struct config_cidr **v,
                            size_t *n);

/* Mappings: a scalar key not repeating an earlier one (else reported). */
bool config_schema_key_ok(struct config_check_ctx *c, const struct config_node *map, size_t i,
                          const char *path);
/* The key of pair i of map: a string (else reported under path) not repeating an earlier one;
 * child receives path.key (CONFIG_PATH_MAX octets). */
bool config_schema_map_key(struct config_check_ctx *c, const struct config_node *map, size_t i,
                           const char *path, char *child);
/* Handles each key of map by its entry in keys[]; unknown keys are reported with a suggestion. */
void config_schema_walk_map(struct config_check_ctx *c, const struct config_node *map,
                            const char *path, const struct config_schema_key *keys, size_t nkeys,
                            void *obj);

/*
 * The lists section (config_lists.c). config_lists_section handles the top-level key "lists"
 * (obj is the struct config); config_lists_finish, called once state_dir is known, names the
 * saved copy of each URL.
 */
void config_lists_section(struct config_check_ctx *c, const struct config_node *key,
			  const struct config_node *val, const char *path, void *obj);
void config_lists_finish(struct config_check_ctx *c);

/*
 * The http section (config_http.c): listen, users, tokens. config_http_section handles the
 * top-level key "http" (obj is the struct config); config_http_finish refuses a non-loopback
 * listen address without users or tokens.
 */
void config_http_section(struct config_check_ctx *c, const struct config_node *key,
			 const struct config_node *val, const char *path, void *obj);
void config_http_finish(struct config_check_ctx *c);
/*
 * The store section (config_store.c): postgresql, instance, password_file, spool_mb, resync_s.
 * config_store_section handles the top-level key "store" (obj is the struct config).
 */
void config_store_section(struct config_check_ctx *c, const struct config_node *key,
                          const struct config_node *val, const char *path, void *obj);

/*
 * The devices section (config_devices.c). config_devices_section handles the top-level key
 * "devices" (obj is the struct config); config_devices_finish, called once lists are known, fills
 * the signatures (marking the lists they use in used[]) and the default hostname vendors.
 * The config_devices_group_* handlers are the group keys selecting devices (obj is a struct
 * config_check_group).
 */
void config_devices_section(struct config_check_ctx *c, const struct config_node *key,
                            const struct config_node *val, const char *path, void *obj);
void config_devices_finish(struct config_check_ctx *c, bool *used);
void config_devices_group_macs(struct config_check_ctx *c, const struct config_node *key,
                               const struct config_node *val, const char *path, void *obj);
void config_devices_group_vendors(struct config_check_ctx *c, const struct config_node *key,
                                  const struct config_node *val, const char *path, void *obj);
void config_devices_group_hostnames(struct config_check_ctx *c, const struct config_node *key,
                                    const struct config_node *val, const char *path, void *obj);
void config_devices_group_devices(struct config_check_ctx *c, const struct config_node *key,
                                  const struct config_node *val, const char *path, void *obj);
void config_devices_group_tags(struct config_check_ctx *c, const struct config_node *key,
                               const struct config_node *val, const char *path, void *obj);
void config_devices_group_randomised(struct config_check_ctx *c, const struct config_node *key,
                                     const struct config_node *val, const char *path, void *obj);

/*
 * config_lint.c: the checks of the whole configuration, once config_check has built the model
 * (group vendors, listen ports, signature list names, the OUI directory, clients no group
 * covers). errors is the error count of diag before the configuration was checked: the
 * coverage of server.allow is worked out only when there is none since.
 */
void config_lint(struct config_check_ctx *c, const struct config_node *root, size_t errors);

#endif
