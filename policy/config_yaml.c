/*
 * config_yaml: YAML text -> tree of config_node with line and column (the only user of libyaml).
 *
 * Built from libyaml's event API rather than its document API so that aliases (which can make
 * cycles and exponential expansions) are refused outright, and nesting depth is bounded.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "config_int.h"

void
config_node_free(struct config_node **node)
{
	struct config_node *n = *node;
	if (n == NULL)
		return;
	/* Iterative over the items' own trees would be overkill: depth is bounded. */
	for (size_t i = 0; i < n->n; i++)
		config_node_free(&n->items[i]);
	free(n->items);
	free(n->str);
	free(n);
	*node = NULL;
}

bool
config_node_is_null(const struct config_node *node)
{
	if (node->kind != CONFIG_NODE_SCALAR || !node->plain)
		return false;
	static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(node->str, nulls[i]) == 0 && node->len == strlen(nulls[i]))
			return true;
	return false;
}

static struct config_node *
node_new(enum config_node_kind kind, const yaml_mark_t *mark)
{
	struct config_node *n = calloc(1, sizeof(*n));
	if (n == NULL)
		return NULL;
	n->kind = kind;
	n->line = (int)(mark->line < 1000000000 ? mark->line + 1 : 0);
	n->col = (int)(mark->column < 1000000000 ? mark->column + 1 : 0);
	return n;
}

static int
node_append(struct config_node *parent, struct config_node *child)
{
	if (parent->n == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 8;
		struct config_node **v = realloc(parent->items, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		parent->items = v;
		parent->cap = cap;
	}
	parent->items[parent->n++] = child;
	return 0;
}

/* True when the given 0-based line of text holds "::": an unquoted IPv6 address is the usual
 * cause of a syntax error there, since ':' is a YAML indicator. */
static bool
line_has_ipv6(const char *text, size_t len, size_t line)
{
	size_t i = 0;
	for (size_t l = 0; l < line && i < len; i++)
		if (text[i] == '\n')
			l++;
	for (; i + 1 < len && text[i] != '\n'; i++)
		if (text[i] == ':' && text[i + 1] == ':')
			return true;
	return false;
}

/* The first octet of the character at index `index` of UTF-8 text, as libyaml counts them (a
 * byte order mark not counted, CR LF counted as two), or -1 past the end. */
static int
char_at(const char *text, size_t len, size_t index)
{
	size_t i = len >= 3 && memcmp(text, "\xef\xbb\xbf", 3) == 0 ? 3 : 0;
	for (size_t n = 0; i < len; i++) {
		if (((unsigned char)text[i] & 0xc0) == 0x80)
			continue;	/* continuation octet */
		if (n++ == index)
			return (unsigned char)text[i];
	}
	return -1;
}

static void
report_parser_error(const yaml_parser_t *p, const char *file, const char *text, size_t len,
		    struct diag *diag)
{
	const char *problem = p->problem != NULL ? p->problem : "unknown error";
	if (p->error == YAML_MEMORY_ERROR) {
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "out of memory");
		return;
	}
	if (p->error == YAML_READER_ERROR) {
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "bad input: %s at byte %zu", problem,
			 p->problem_offset);
		return;
	}
	int line = (int)(p->problem_mark.line < 1000000000 ? p->problem_mark.line + 1 : 0);
	int col = (int)(p->problem_mark.column < 1000000000 ? p->problem_mark.column + 1 : 0);
	/* libyaml's "found character that cannot start any token" (and its other tab messages)
	 * when the character is a tab: say so */
	if (p->error == YAML_SCANNER_ERROR && p->encoding == YAML_UTF8_ENCODING &&
	    char_at(text, len, p->problem_mark.index) == '\t') {
		diag_add(diag, DIAG_ERROR, file, line, col, NULL, "syntax error: tab characters "
			 "are not allowed for indentation in YAML; use spaces");
		return;
	}
	const char *hint = line_has_ipv6(text, len, p->problem_mark.line)
				   ? " (quote IPv6 addresses, e.g. \"::1/128\")"
				   : "";
	if (p->context != NULL)
		diag_add(diag, DIAG_ERROR, file, line, col, NULL,
			 "syntax error: %s (%s at %zu:%zu)%s", problem, p->context,
			 p->context_mark.line + 1, p->context_mark.column + 1, hint);
	else
		diag_add(diag, DIAG_ERROR, file, line, col, NULL, "syntax error: %s%s", problem,
			 hint);
}

int
config_yaml_parse(const char *file, const char *text, size_t len, struct diag *diag,
		  struct config_node **out)
{
	yaml_parser_t parser;
	yaml_event_t ev;
	struct config_node *root = NULL;
	struct config_node *stack[CONFIG_MAX_DEPTH];
	size_t depth = 0;
	int ndocs = 0;
	int rc = 0;
	bool done = false;

	if (!yaml_parser_initialize(&parser)) {
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "out of memory");
		return -ENOMEM;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

	while (!done) {
		if (!yaml_parser_parse(&parser, &ev)) {
			report_parser_error(&parser, file, text, len, diag);
			rc = parser.error == YAML_MEMORY_ERROR ? -ENOMEM : -EINVAL;
			goto cleanup;
		}
		struct config_node *n = NULL;
		switch (ev.type) {
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		case YAML_DOCUMENT_START_EVENT:
			if (++ndocs > 1) {
				diag_add(diag, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
					 (int)ev.start_mark.column + 1, NULL,
					 "more than one YAML document (only one is read)");
				rc = -EINVAL;
			}
			break;
		case YAML_ALIAS_EVENT:
			diag_add(diag, DIAG_ERROR, file, (int)ev.start_mark.line + 1,
				 (int)ev.start_mark.column + 1, NULL,
				 "aliases ('*%s') are not supported",
				 ev.data.alias.anchor != NULL ? (const char *)ev.data.alias.anchor : "");
			rc = -EINVAL;
			break;
		case YAML_SCALAR_EVENT:
			n = node_new(CONFIG_NODE_SCALAR, &ev.start_mark);
			if (n == NULL)
				break;
			n->len = ev.data.scalar.length;
			n->str = malloc(n->len + 1);
			if (n->str == NULL) {
				config_node_free(&n);
				break;
			}
			memcpy(n->str, ev.data.scalar.value, n->len);
			n->str[n->len] = '\0';
			n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
			break;
		case YAML_SEQUENCE_START_EVENT:
			n = node_new(CONFIG_NODE_SEQUENCE, &ev.start_mark);
			break;
		case YAML_MAPPING_START_EVENT:
			n = node_new(CONFIG_NODE_MAPPING, &ev.start_mark);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			if (depth > 0)
				depth--;
			break;
		case YAML_NO_EVENT:
		case YAML_STREAM_START_EVENT:
		case YAML_DOCUMENT_END_EVENT:
			break;
		}
		bool is_node = ev.type == YAML_SCALAR_EVENT || ev.type == YAML_SEQUENCE_START_EVENT ||
			       ev.type == YAML_MAPPING_START_EVENT;
		yaml_mark_t mark = ev.start_mark;
		yaml_event_delete(&ev);
		if (rc != 0)
			goto cleanup;
		if (!is_node)
			continue;
		if (n == NULL) {
			diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "out of memory");
			rc = -ENOMEM;
			goto cleanup;
		}
		/* Attach to the open container, or make it the root. */
		if (depth == 0 && root == NULL) {
			root = n;
		} else if (depth == 0) {
			/* Only possible after a second document, which already failed. */
			config_node_free(&n);
			rc = -EINVAL;
			goto cleanup;
		} else if (node_append(stack[depth - 1], n) != 0) {
			config_node_free(&n);
			diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "out of memory");
			rc = -ENOMEM;
			goto cleanup;
		}
		if (n->kind != CONFIG_NODE_SCALAR) {
			if (depth == CONFIG_MAX_DEPTH) {
				diag_add(diag, DIAG_ERROR, file, (int)mark.line + 1, (int)mark.column + 1,
					 NULL, "nesting deeper than %d levels", CONFIG_MAX_DEPTH);
				rc = -EINVAL;
				goto cleanup;
			}
			stack[depth++] = n;
		}
	}
	*out = root;
	root = NULL;
cleanup:
	config_node_free(&root);
	yaml_parser_delete(&parser);
	return rc;
}
