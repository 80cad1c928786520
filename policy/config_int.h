/*
 * config_int: what config.c, config_yaml.c, config_check.c and their tests share.
 *
 * config_yaml.c turns YAML text into a small tree of struct config_node (scalars, sequences and
 * mappings, each with its line and column); config_check.c walks that tree into a struct config;
 * config.c owns the model, the defaults and the file handling.
 */
#ifndef VETO_CONFIG_INT_H
#define VETO_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "diag.h"

#define CONFIG_MAX_DEPTH 64	/* deeper YAML nesting is rejected */

enum config_node_kind {
	CONFIG_NODE_SCALAR,
	CONFIG_NODE_SEQUENCE,
	CONFIG_NODE_MAPPING,
};

struct config_node {
	enum config_node_kind kind;
	int line, col;			/* 1-based position of the node's first character */
	char *str;			/* scalars: owned, NUL-terminated (may hold inner NULs) */
	size_t len;			/* scalars: length of str */
	bool plain;			/* scalars: written without quotes */
	struct config_node **items;	/* sequences: items; mappings: key, value, key, value... */
	size_t n;			/* number of entries in items */
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

#endif
