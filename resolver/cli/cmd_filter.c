/*
 * cmd_filter: what `veto log` and `veto report` share to read the query store: opening it (--db,
 * else the configuration's shared store store.postgresql, else its log.database) and the
 * filter options, parsed (repeated and
 * comma-separated values are ORed) and checked against the names the configuration and the
 * store know, with a "did you mean" for a typo.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "logdb_reader.h"
#include "output.h"
#include "review.h"
#include "text.h"

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int
cmd_log_filter_opt(const char *cmd, int argc, char **argv, int *i, struct logdb_filter *f)
{
	static struct review_canon canon; /* lives as long as the process, as argv */
	const char *a = argv[*i];

	if (strcmp(a, "--blocked") == 0 || strcmp(a, "--allowed") == 0) {
		int want = a[2] == 'b' ? 1 : 0;
		if (f->blocked >= 0 && f->blocked != want) {
			fprintf(stderr, "%s: --blocked and --allowed exclude each other\n", cmd);
			return -1;
		}
		f->blocked = want;
		return 1;
	}
	bool since = strcmp(a, "--since") == 0, until = strcmp(a, "--until") == 0;
	if (!since && !until && (strncmp(a, "--", 2) != 0 || review_filter_values(f, a) == NULL))
		return 0;
	if (*i + 1 >= argc) {
		fprintf(stderr, "%s: option '%s' needs a value\n", cmd, a);
		return -1;
	}
	char *v = argv[++*i];
	if (since && strcmp(v, "all") == 0) {
		f->since_ms = 0;
		return 1;
	}
	if (since || until) {
		uint64_t t;
		if (output_parse_time(v, now_ms(), &t) != 0) {
			fprintf(stderr,
			        "%s: %s: bad time '%s' (expected 30m, 24h, 7d, 2w or ISO 8601 such "
			        "as 2026-11-22T03:58:22Z)\n",
			        cmd, a, v);
			return -1;
		}
		if (since)
			f->since_ms = t > 0 ? t : 1;
		else
			f->until_ms = t > 0 ? t : 1;
		return 1;
	}
	/* the argument is cut in place; it lives as long as the process */
	char err[512];
	if (review_filter_add(&canon, f, a, v, err, sizeof(err)) != 0) {
		fprintf(stderr, "%s: %s\n", cmd, err);
		return -1;
	}
	return 1;
}

int
cmd_log_open(const char *cmd, const char *config, const char *db, const struct logdb_filter *f,
             struct logdb_reader **out)
{
	struct config *cfg = NULL;
	struct logdb_reader *r = NULL;
	struct diag d;
	int rc;

	if (db == NULL) {
		const char *path = config != NULL ? config : cmd_default_config();
		diag_init(&d);
		rc = config_load(path, &d, &cfg);
		diag_print(&d, stderr, DIAG_ERROR);
		diag_clear(&d);
		if (rc != 0) {
			fprintf(stderr, "%s: %s: configuration not valid\n", cmd, path);
			return CMD_EXIT_USAGE;
		}
		if (cfg->store.postgresql == NULL && cfg->log.database == NULL) {
			fprintf(stderr,
			        "%s: %s: neither store.postgresql nor log.database is set (or use "
			        "--db PATH)\n",
			        cmd, path);
			config_free(&cfg);
			return CMD_EXIT_USAGE;
		}
		db = cfg->store.postgresql == NULL ? cfg->log.database : NULL;
	}
	if (db != NULL)
		rc = logdb_reader_open(db, &r) == 0 ? CMD_EXIT_OK : CMD_EXIT_RUNTIME;
	else /* the shared store (messages on standard error) */
		rc = logdb_reader_open_pg(cfg, "cli", &r) == 0 ? CMD_EXIT_OK : CMD_EXIT_RUNTIME;
	if (rc == CMD_EXIT_OK && f != NULL) {
		char err[512];
		int c = review_filter_check(cfg, r, f, err, sizeof(err));
		if (c > 0)
			fprintf(stderr, "%s: %s\n", cmd, err);
		rc = c == 0 ? CMD_EXIT_OK : c > 0 ? CMD_EXIT_USAGE : CMD_EXIT_RUNTIME;
	}
	config_free(&cfg);
	if (rc != CMD_EXIT_OK) {
		logdb_reader_free(&r);
		return rc;
	}
	*out = r;
	return CMD_EXIT_OK;
}
