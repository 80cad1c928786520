/*
 * cmd_filter: what `veto log` and `veto report` share to read the query store: opening it (the
 * configuration's log.database or --db) and the filter options, parsed (repeated and
 * comma-separated values are ORed) and checked against the names the configuration and the
 * store know, with a "did you mean" for a typo.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "logdb_reader.h"
#include "output.h"
#include "text.h"
#include "vendors.h"

static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static const char *const actions[] = {"forward", "cache",    "sinkhole", "nxdomain", "nodata",
                                      "refused", "servfail", "formerr",  "notimp",
                                      "stale"};

/* "2001:DB8::1" -> "2001:db8::1", "::ffff:10.0.0.1" -> "10.0.0.1". 0 or -EINVAL. */
static int
canonical_ip(const char *text, char out[INET6_ADDRSTRLEN])
{
	uint8_t a[16];

	if (inet_pton(AF_INET, text, a) == 1)
		return inet_ntop(AF_INET, a, out, INET6_ADDRSTRLEN) != NULL ? 0 : -EINVAL;
	if (inet_pton(AF_INET6, text, a) != 1)
		return -EINVAL;
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (memcmp(a, mapped, sizeof(mapped)) == 0)
		return inet_ntop(AF_INET, a + 12, out, INET6_ADDRSTRLEN) != NULL ? 0 : -EINVAL;
	return inet_ntop(AF_INET6, a, out, INET6_ADDRSTRLEN) != NULL ? 0 : -EINVAL;
}

/* Adds one value to vs; -1 (printed) when vs is full. */
static int
add_value(const char *cmd, const char *opt, struct logdb_values *vs, const char *v)
{
	size_t n = 0;

	while (n < LOGDB_FILTER_VALUES && vs->v[n] != NULL)
		n++;
	if (n == LOGDB_FILTER_VALUES) {
		fprintf(stderr, "%s: %s: at most %d values\n", cmd, opt, LOGDB_FILTER_VALUES);
		return -1;
	}
	vs->v[n] = v;
	return 0;
}

/* One value of an option, checked (and made canonical where the store is). 0 or -1 (printed). */
static int
filter_value(const char *cmd, const char *opt, struct logdb_values *vs, const char *v)
{
	/* canonical client addresses for the life of the process (the filter points at them) */
	static char canon[2 * LOGDB_FILTER_VALUES][INET6_ADDRSTRLEN];
	static size_t ncanon;

	if (*v == '\0') {
		fprintf(stderr, "%s: %s: empty value\n", cmd, opt);
		return -1;
	}
	if (strcmp(opt, "--action") == 0) {
		size_t j = 0;
		while (j < sizeof(actions) / sizeof(actions[0]) && strcmp(v, actions[j]) != 0)
			j++;
		if (j == sizeof(actions) / sizeof(actions[0])) {
			const char *s = config_suggest(v, actions, j);
			fprintf(stderr,
			        "%s: --action: unknown value '%s' (%s%s%sexpected forward, cache, "
			        "sinkhole, nxdomain, nodata, refused, servfail, formerr, notimp, stale)\n",
			        cmd, v, s != NULL ? "did you mean '" : "", s != NULL ? s : "",
			        s != NULL ? "'? " : "");
			return -1;
		}
	}
	if (strcmp(opt, "--client") == 0) {
		/* as the log writes it: canonical text, IPv4-mapped addresses as IPv4 */
		if (ncanon == sizeof(canon) / sizeof(canon[0])) {
			fprintf(stderr, "%s: --client: at most %d values\n", cmd,
			        LOGDB_FILTER_VALUES);
			return -1;
		}
		if (canonical_ip(v, canon[ncanon]) != 0) {
			fprintf(stderr, "%s: --client: '%s' is not an IPv4 or IPv6 address\n", cmd,
			        v);
			return -1;
		}
		v = canon[ncanon++];
	}
	return add_value(cmd, opt, vs, v);
}

int
cmd_log_filter_opt(const char *cmd, int argc, char **argv, int *i, struct logdb_filter *f)
{
	static const struct {
		const char *name;
		size_t off;
	} opts[] = {
	        {"--client", offsetof(struct logdb_filter, client)},
	        {"--mac", offsetof(struct logdb_filter, mac)},
	        {"--device", offsetof(struct logdb_filter, device)},
	        {"--group", offsetof(struct logdb_filter, group)},
	        {"--vendor", offsetof(struct logdb_filter, vendor)},
	        {"--domain", offsetof(struct logdb_filter, domain)},
	        {"--list", offsetof(struct logdb_filter, list)},
	        {"--action", offsetof(struct logdb_filter, action)},
	};
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
	size_t k = 0;
	while (k < sizeof(opts) / sizeof(opts[0]) && strcmp(a, opts[k].name) != 0)
		k++;
	if (!since && !until && k == sizeof(opts) / sizeof(opts[0]))
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
	struct logdb_values *vs = (struct logdb_values *)((char *)f + opts[k].off);
	/* "xiaomi,huawei": each value (the argument is cut in place; it lives as long as the
	 * process). A comma followed by a space is part of the value: OUI vendor names are
	 * written so ("ICANN, IANA Department") */
	for (char *p = v;;) {
		char *comma = p;
		while ((comma = strchr(comma, ',')) != NULL && comma[1] == ' ')
			comma++;
		if (comma != NULL)
			*comma = '\0';
		if (filter_value(cmd, a, vs, p) != 0)
			return -1;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 1;
}

/* ---- the names a filter may use ---- */

struct known {
	const char **v;
	size_t n, cap;
	bool failed;
};

static int
known_add(void *arg, const char *value)
{
	struct known *k = arg;

	if (value == NULL)
		return 0;
	if (k->n == k->cap) {
		size_t cap = k->cap > 0 ? 2 * k->cap : 64;
		const char **nv = realloc(k->v, cap * sizeof(*nv));
		if (nv == NULL) {
			k->failed = true;
			return -ENOMEM;
		}
		k->v = nv;
		k->cap = cap;
	}
	char *d = strdup(value);
	if (d == NULL) {
		k->failed = true;
		return -ENOMEM;
	}
	k->v[k->n++] = d;
	return 0;
}

static void
known_clear(struct known *k)
{
	for (size_t i = 0; i < k->n; i++)
		free((char *)k->v[i]);
	free(k->v);
	memset(k, 0, sizeof(*k));
}

/* Fills k with what the configuration (may be NULL) and the store know for a filter. */
static int
known_fill(struct known *k, const char *opt, const struct config *cfg, struct logdb_reader *r)
{
	int rc = 0;

	if (strcmp(opt, "--group") == 0) {
		for (size_t i = 0; cfg != NULL && i < cfg->ngroups && rc == 0; i++)
			rc = known_add(k, cfg->groups[i].name);
		if (rc == 0)
			rc = logdb_known_values(r, LOGDB_KNOWN_GROUP, known_add, k);
	} else if (strcmp(opt, "--list") == 0) {
		for (size_t i = 0; cfg != NULL && i < cfg->nlists && rc == 0; i++)
			rc = known_add(k, cfg->lists[i].name);
		/* without the configuration: the store's texts (list names among others) */
		if (rc == 0 && cfg == NULL)
			rc = logdb_known_values(r, LOGDB_KNOWN_TEXT, known_add, k);
	} else if (strcmp(opt, "--vendor") == 0) {
		for (size_t i = 0; i < VENDORS_COUNT && rc == 0; i++)
			rc = known_add(k, vendors_names[i]);
		for (size_t i = 0; cfg != NULL && i < cfg->ngroups; i++)
			for (size_t j = 0; j < cfg->groups[i].nvendors && rc == 0; j++)
				rc = known_add(k, cfg->groups[i].vendors[j]);
		for (size_t i = 0; cfg != NULL && i < cfg->devices.ninventory && rc == 0; i++)
			rc = known_add(k, cfg->devices.inventory[i].vendor);
		if (rc == 0)
			rc = logdb_known_values(r, LOGDB_KNOWN_VENDOR, known_add, k);
	} else {
		for (size_t i = 0; cfg != NULL && i < cfg->devices.ninventory && rc == 0; i++)
			rc = known_add(k, cfg->devices.inventory[i].name);
		if (rc == 0)
			rc = logdb_known_values(r, LOGDB_KNOWN_DEVICE, known_add, k);
	}
	return rc;
}

/* Each value of vs is one k knows (vendors: in any case); else a message and -1. */
static int
check_values(const char *cmd, const char *opt, const struct logdb_values *vs, const struct known *k)
{
	for (size_t i = 0; i < LOGDB_FILTER_VALUES && vs->v[i] != NULL; i++) {
		const char *v = vs->v[i];
		bool nocase = strcmp(opt, "--vendor") == 0, found = false;
		char shown[128];
		for (size_t j = 0; j < k->n && !found; j++)
			found = nocase ? strcasecmp(v, k->v[j]) == 0 : strcmp(v, k->v[j]) == 0;
		if (found)
			continue;
		const char *s = config_suggest(v, k->v, k->n);
		text_safe(shown, sizeof(shown), v);
		if (s != NULL) {
			char sug[128];
			fprintf(stderr, "%s: %s: unknown %s '%s' (did you mean '%s'?)\n", cmd, opt,
			        opt + 2, shown, text_safe(sug, sizeof(sug), s));
		} else {
			fprintf(stderr,
			        "%s: %s: unknown %s '%s' (not in the configuration, never seen in "
			        "the "
			        "query database)\n",
			        cmd, opt, opt + 2, shown);
		}
		return -1;
	}
	return 0;
}

/* The group, list, vendor and device filters name something the configuration or the store
 * knows. CMD_EXIT_OK, CMD_EXIT_USAGE (printed) or CMD_EXIT_RUNTIME. */
static int
check_filter(const char *cmd, const struct config *cfg, struct logdb_reader *r,
             const struct logdb_filter *f)
{
	const struct {
		const char *opt;
		const struct logdb_values *vs;
	} checks[] = {
	        {"--group", &f->group},
	        {"--list", &f->list},
	        {"--vendor", &f->vendor},
	        {"--device", &f->device},
	};

	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		struct known k = {0};
		if (checks[i].vs->v[0] == NULL)
			continue;
		int rc = known_fill(&k, checks[i].opt, cfg, r);
		if (rc == 0 && check_values(cmd, checks[i].opt, checks[i].vs, &k) != 0)
			rc = 1;
		known_clear(&k);
		if (rc != 0)
			return rc > 0 ? CMD_EXIT_USAGE : CMD_EXIT_RUNTIME;
	}
	return CMD_EXIT_OK;
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
		if (cfg->log.database == NULL) {
			fprintf(stderr, "%s: %s: log.database is not set (or use --db PATH)\n", cmd,
			        path);
			config_free(&cfg);
			return CMD_EXIT_USAGE;
		}
		db = cfg->log.database;
	}
	rc = logdb_reader_open(db, &r) == 0 ? CMD_EXIT_OK : CMD_EXIT_RUNTIME;
	if (rc == CMD_EXIT_OK && f != NULL)
		rc = check_filter(cmd, cfg, r, f);
	config_free(&cfg);
	if (rc != CMD_EXIT_OK) {
		logdb_reader_free(&r);
		return rc;
	}
	*out = r;
	return CMD_EXIT_OK;
}
