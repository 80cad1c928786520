/*
 * cmd_lists: `veto lists [-c FILE] [--json] [--refresh]`. Asks the running daemon over its
 * control channel (`lists` request, resolver/dns/control.h) for every list source: where it
 * comes from, entries, skipped lines, the last download and its outcome, the next one and the
 * last error. Without a daemon, reads the configuration, the list files and the downloaded
 * copies instead (and says so).
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"
#include "control_client.h"
#include "config.h"
#include "control.h"
#include "diag.h"
#include "fetch.h"
#include "json.h"
#include "mac.h"
#include "output.h"
#include "policy.h"
#include "text.h"

#define REPLY_MAX	 (16u << 20)
#define REPLY_TIMEOUT_MS 10000
#define NCOLS		 9

enum { C_LIST, C_KIND, C_SOURCE, C_ENTRIES, C_SKIPPED, C_LAST, C_NEXT, C_OUTCOME, C_ERROR };

struct rows {
	char *(*cell)[NCOLS]; /* owned strings, NULL = none */
	size_t n, cap;
};

static void
rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++)
		for (size_t k = 0; k < NCOLS; k++)
			free(r->cell[i][k]);
	free(r->cell);
}

static char **
rows_add(struct rows *r)
{
	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 16;
		void *nc = realloc(r->cell, cap * sizeof(*r->cell));
		if (nc == NULL)
			return NULL;
		r->cell = nc;
		r->cap = cap;
	}
	memset(r->cell[r->n], 0, sizeof(r->cell[r->n]));
	return r->cell[r->n++];
}

/* One %XX-escaped word; "-" is none (NULL). */
static char *
decode_word(const char *p, size_t n)
{
	if (n == 1 && p[0] == '-')
		return NULL;
	char *out = malloc(n + 1);
	size_t w = 0;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (p[i] == '%' && i + 2 < n && mac_hexval(p[i + 1]) >= 0 &&
		    mac_hexval(p[i + 2]) >= 0) {
			int c = mac_hexval(p[i + 1]) * 16 + mac_hexval(p[i + 2]);
			out[w++] = c < 0x20 || c == 0x7f ? '?' : (char)c;
			i += 2;
		} else {
			out[w++] = p[i];
		}
	}
	out[w] = '\0';
	return out;
}

/* The daemon's status lines into rows. 0 or -EPROTO. */
static int
parse_status(char *text, struct rows *r)
{
	for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		char **cells = rows_add(r);
		if (cells == NULL)
			return -ENOMEM;
		size_t k = 0;
		for (char *p = line; *p != '\0' && k < NCOLS; k++) {
			size_t n = strcspn(p, " ");
			cells[k] = decode_word(p, n);
			p += n;
			if (*p == ' ')
				p++;
		}
		if (k != NCOLS)
			return -EPROTO;
	}
	return 0;
}

static char *
num_text(long long v)
{
	char b[32];
	if (v <= 0)
		return NULL;
	snprintf(b, sizeof(b), "%lld", v);
	return strdup(b);
}

static int
add_row(struct rows *r, const char *list, const char *kind, const char *source,
        const struct policy_list_stats *st, long long last, long long next)
{
	char **c = rows_add(r);
	char b[32];
	if (c == NULL)
		return -ENOMEM;
	c[C_LIST] = strdup(list);
	c[C_KIND] = strdup(kind);
	c[C_SOURCE] = strdup(source);
	snprintf(b, sizeof(b), "%zu", st->entries);
	c[C_ENTRIES] = strdup(b);
	snprintf(b, sizeof(b), "%zu", st->skipped);
	c[C_SKIPPED] = strdup(b);
	c[C_LAST] = num_text(last);
	c[C_NEXT] = num_text(next);
	return 0;
}

/* No daemon: the configuration, the list files and the copies as they are on disk. */
static int
rows_from_files(const struct policy *p, struct rows *r)
{
	const struct config *cfg = policy_config(p);
	for (size_t l = 0; l < cfg->nlists; l++) {
		const struct config_list *cl = &cfg->lists[l];
		struct policy_list_stats st = {0};
		char inl[64];
		policy_list_stats(p, (int)l, &st);
		for (size_t i = 0; i < cl->nfiles; i++)
			if (add_row(r, cl->name, "file", cl->files[i], &st, 0, 0) != 0)
				return -ENOMEM;
		for (size_t i = 0; i < cl->nurls; i++) {
			long long good = fetch_last_good(cl->cache_files[i], cl->urls[i]);
			if (add_row(r, cl->name, "url", cl->urls[i], &st, good,
			            good > 0 ? good + cl->refresh_s : 0) != 0)
				return -ENOMEM;
		}
		snprintf(inl, sizeof(inl), "inline (%zu)", cl->ndomains);
		if (cl->ndomains > 0 && add_row(r, cl->name, "inline", inl, &st, 0, 0) != 0)
			return -ENOMEM;
	}
	return 0;
}

static uint64_t
ms_of(const char *secs)
{
	return secs != NULL ? (uint64_t)strtoull(secs, NULL, 10) * 1000 : 0;
}

static void
print_json(const struct rows *r, FILE *out)
{
	fputc('[', out);
	for (size_t i = 0; i < r->n; i++) {
		char *const *c = r->cell[i];
		fputs(i ? ",{" : "{", out);
		output_json_str(out, false, "list", c[C_LIST]);
		output_json_str(out, true, "kind", c[C_KIND]);
		output_json_str(out, true, "source", c[C_SOURCE]);
		output_json_u64(out, "entries", c[C_ENTRIES] ? strtoull(c[C_ENTRIES], NULL, 10) : 0);
		output_json_u64(out, "skipped", c[C_SKIPPED] ? strtoull(c[C_SKIPPED], NULL, 10) : 0);
		if (c[C_LAST] != NULL)
			output_json_time(out, "last_fetch", ms_of(c[C_LAST]));
		else
			output_json_str(out, true, "last_fetch", NULL);
		if (c[C_NEXT] != NULL)
			output_json_time(out, "next_fetch", ms_of(c[C_NEXT]));
		else
			output_json_str(out, true, "next_fetch", NULL);
		output_json_str(out, true, "outcome", c[C_OUTCOME]);
		output_json_str(out, true, "last_error", c[C_ERROR]);
		fputc('}', out);
	}
	fputs("]\n", out);
}

static int
print_table(const struct rows *r, FILE *out)
{
	static const char *const heads[] = {"LIST", "SOURCE", "ENTRIES", "SKIPPED", "LAST FETCH",
	                                    "OUTCOME", "NEXT FETCH", "LAST ERROR"};
	static const bool right[] = {false, false, true, true, false, false, false, false};
	struct output_table *t = NULL;
	if (output_table_new(8, heads, &t) != 0)
		return -ENOMEM;
	for (size_t i = 0; i < r->n; i++) {
		char *const *c = r->cell[i];
		char last[OUTPUT_TIME_MAX] = "", next[OUTPUT_TIME_MAX] = "";
		if (c[C_LAST] != NULL)
			output_format_time(ms_of(c[C_LAST]), true, last);
		if (c[C_NEXT] != NULL)
			output_format_time(ms_of(c[C_NEXT]), true, next);
		const char *cells[] = {c[C_LIST], c[C_SOURCE], c[C_ENTRIES], c[C_SKIPPED],
		                       last[0] ? last : NULL, c[C_OUTCOME], next[0] ? next : NULL,
		                       c[C_ERROR]};
		if (output_table_add(t, cells) != 0) {
			output_table_free(&t);
			return -ENOMEM;
		}
	}
	output_table_print(t, out, right, true);
	output_table_free(&t);
	return 0;
}

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: veto lists [-c FILE] [--json] [--refresh]\n"
	        "\n"
	        "every source of every list: file, URL or inline names, entries, skipped lines,\n"
	        "the last download (time and outcome), the next one and the last error, as the\n"
	        "running daemon knows them (asked over state_dir/control.sock). Without a running\n"
	        "daemon: read from the configuration, the list files and the downloaded copies.\n"
	        "\n"
	        "  -c, --config FILE  configuration (default %s)\n"
	        "  --json             one JSON array, one object per source\n"
	        "  --refresh          ask the daemon to download every URL again now\n",
	        CMD_DEFAULT_CONFIG_HELP);
}

int
cmd_lists(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'}, {"json", no_argument, NULL, 'j'},
	        {"refresh", no_argument, NULL, 'r'},      {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = cmd_default_config();
	bool json = false, refresh = false;
	int opt, code = CMD_EXIT_OK;
	struct diag diag;
	struct config *cfg = NULL;
	struct policy *p = NULL;
	struct rows rows = {0};
	char *reply = NULL, path[256];

	optind = 1;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'r':
			refresh = true;
			break;
		case 'h':
			usage(stdout);
			return CMD_EXIT_OK;
		default:
			fprintf(stderr, "veto lists: bad option '%s'\n\n", argv[optind - 1]);
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "veto lists: unexpected argument '%s'\n", argv[optind]);
		return CMD_EXIT_USAGE;
	}
	diag_init(&diag);
	if (config_load(config, &diag, &cfg) != 0) {
		diag_print(&diag, stderr, DIAG_WARNING);
		diag_clear(&diag);
		return CMD_EXIT_USAGE;
	}
	int rc = control_path(cfg->state_dir, path, sizeof(path));
	if (rc == 0)
		rc = control_ask_all(path, refresh ? "lists refresh\n" : "lists\n", REPLY_MAX,
		                        REPLY_TIMEOUT_MS, &reply);
	if (rc == 0) {
		char *body = strchr(reply, '\n');
		if (strncmp(reply, "ok lists ", 9) != 0 || body == NULL) {
			fprintf(stderr, "veto lists: the daemon says: %.*s\n",
			        (int)strcspn(reply, "\n"), reply);
			code = CMD_EXIT_RUNTIME;
			goto cleanup;
		}
		if (parse_status(body + 1, &rows) != 0) {
			fprintf(stderr, "veto lists: unreadable reply from the daemon\n");
			code = CMD_EXIT_RUNTIME;
			goto cleanup;
		}
		if (!json)
			printf("running daemon (%s):\n", path);
	} else if (rc == -ENOENT || rc == -ECONNREFUSED) {
		if (refresh) {
			fprintf(stderr, "veto lists: daemon not running: nothing to refresh\n");
			code = CMD_EXIT_RUNTIME;
			goto cleanup;
		}
		fprintf(json ? stderr : stdout, "%sdaemon not running: from the configuration and "
		        "the saved copies\n", json ? "veto lists: " : "");
		diag_clear(&diag);
		if (policy_load(config, &diag, &p) != 0) {
			diag_print(&diag, stderr, DIAG_WARNING);
			code = CMD_EXIT_USAGE;
			goto cleanup;
		}
		if (rows_from_files(p, &rows) != 0) {
			code = CMD_EXIT_RUNTIME;
			goto cleanup;
		}
	} else {
		fprintf(stderr, "veto lists: %s: %s\n", path, strerror(-rc));
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	if (json)
		print_json(&rows, stdout);
	else if (print_table(&rows, stdout) != 0)
		code = CMD_EXIT_RUNTIME;
cleanup:
	free(reply);
	rows_free(&rows);
	policy_unref(&p);
	config_free(&cfg);
	diag_clear(&diag);
	return code;
}
