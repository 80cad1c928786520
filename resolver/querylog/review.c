/*
 * review: the filters and the attempts CSV the CLI and the web console share (see review.h).
 */
#include "review.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "output.h"
#include "text.h"
#include "vendors.h"

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

static const struct {
	const char *name;
	size_t off;
} value_opts[] = {
        {"client", offsetof(struct logdb_filter, client)},
        {"mac", offsetof(struct logdb_filter, mac)},
        {"device", offsetof(struct logdb_filter, device)},
        {"group", offsetof(struct logdb_filter, group)},
        {"vendor", offsetof(struct logdb_filter, vendor)},
        {"domain", offsetof(struct logdb_filter, domain)},
        {"list", offsetof(struct logdb_filter, list)},
        {"action", offsetof(struct logdb_filter, action)},
        {"instance", offsetof(struct logdb_filter, instance)},
};

struct logdb_values *
review_filter_values(struct logdb_filter *f, const char *opt)
{
	if (strncmp(opt, "--", 2) == 0)
		opt += 2;
	for (size_t k = 0; k < sizeof(value_opts) / sizeof(value_opts[0]); k++)
		if (strcmp(opt, value_opts[k].name) == 0)
			return (struct logdb_values *)((char *)f + value_opts[k].off);
	return NULL;
}

/* One value of option name, checked (and made canonical where the store is). */
static int
add_one(struct review_canon *canon, struct logdb_values *vs, const char *name, const char *v,
        char *err, size_t size)
{
	char shown[128];
	size_t n = 0;

	if (*v == '\0') {
		snprintf(err, size, "--%s: empty value", name);
		return -EINVAL;
	}
	if (strcmp(name, "action") == 0) {
		size_t j = 0, na = sizeof(actions) / sizeof(actions[0]);
		while (j < na && strcmp(v, actions[j]) != 0)
			j++;
		if (j == na) {
			const char *s = config_suggest(v, actions, j);
			snprintf(err, size,
			         "--action: unknown value '%s' (%s%s%sexpected forward, cache, "
			         "sinkhole, nxdomain, nodata, refused, servfail, formerr, notimp, stale)",
			         text_safe(shown, sizeof(shown), v),
			         s != NULL ? "did you mean '" : "", s != NULL ? s : "",
			         s != NULL ? "'? " : "");
			return -EINVAL;
		}
	}
	if (strcmp(name, "client") == 0) {
		/* as the log writes it: canonical text, IPv4-mapped addresses as IPv4 */
		if (canon->n == sizeof(canon->ip) / sizeof(canon->ip[0])) {
			snprintf(err, size, "--client: at most %d values", LOGDB_FILTER_VALUES);
			return -EINVAL;
		}
		if (canonical_ip(v, canon->ip[canon->n]) != 0) {
			snprintf(err, size, "--client: '%s' is not an IPv4 or IPv6 address",
			         text_safe(shown, sizeof(shown), v));
			return -EINVAL;
		}
		v = canon->ip[canon->n++];
	}
	while (n < LOGDB_FILTER_VALUES && vs->v[n] != NULL)
		n++;
	if (n == LOGDB_FILTER_VALUES) {
		snprintf(err, size, "--%s: at most %d values", name, LOGDB_FILTER_VALUES);
		return -EINVAL;
	}
	vs->v[n] = v;
	return 0;
}

int
review_filter_add(struct review_canon *canon, struct logdb_filter *f, const char *opt, char *text,
                  char *err, size_t size)
{
	struct logdb_values *vs = review_filter_values(f, opt);

	if (strncmp(opt, "--", 2) == 0)
		opt += 2;
	if (vs == NULL) {
		snprintf(err, size, "unknown filter '%s'", opt);
		return -EINVAL;
	}
	/* A comma followed by a space is part of the value: OUI vendor names are written so
	 * ("ICANN, IANA Department") */
	for (char *p = text;;) {
		char *comma = p;
		while ((comma = strchr(comma, ',')) != NULL && comma[1] == ' ')
			comma++;
		if (comma != NULL)
			*comma = '\0';
		int rc = add_one(canon, vs, opt, p, err, size);
		if (rc != 0)
			return rc;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
}

/* ---- the names a filter may use ---- */

struct known {
	const char **v;
	size_t n, cap;
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
		if (nv == NULL)
			return -ENOMEM;
		k->v = nv;
		k->cap = cap;
	}
	char *d = strdup(value);
	if (d == NULL)
		return -ENOMEM;
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

	if (strcmp(opt, "group") == 0) {
		for (size_t i = 0; cfg != NULL && i < cfg->ngroups && rc == 0; i++)
			rc = known_add(k, cfg->groups[i].name);
		if (rc == 0)
			rc = logdb_known_values(r, LOGDB_KNOWN_GROUP, known_add, k);
	} else if (strcmp(opt, "list") == 0) {
		for (size_t i = 0; cfg != NULL && i < cfg->nlists && rc == 0; i++)
			rc = known_add(k, cfg->lists[i].name);
		/* without the configuration: the store's texts (list names among others) */
		if (rc == 0 && cfg == NULL)
			rc = logdb_known_values(r, LOGDB_KNOWN_TEXT, known_add, k);
	} else if (strcmp(opt, "vendor") == 0) {
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
	return rc == -ENOMEM ? -ENOMEM : rc != 0 ? -EIO : 0;
}

/* Each value of vs is one k knows (vendors: in any case); else a message and 1. */
static int
check_values(const char *opt, const struct logdb_values *vs, const struct known *k, char *err,
             size_t size)
{
	for (size_t i = 0; i < LOGDB_FILTER_VALUES && vs->v[i] != NULL; i++) {
		const char *v = vs->v[i];
		bool nocase = strcmp(opt, "vendor") == 0, found = false;
		char shown[128], sug[128];
		for (size_t j = 0; j < k->n && !found; j++)
			found = nocase ? strcasecmp(v, k->v[j]) == 0 : strcmp(v, k->v[j]) == 0;
		if (found)
			continue;
		const char *s = config_suggest(v, k->v, k->n);
		text_safe(shown, sizeof(shown), v);
		if (s != NULL)
			snprintf(err, size, "--%s: unknown %s '%s' (did you mean '%s'?)", opt, opt,
			         shown, text_safe(sug, sizeof(sug), s));
		else
			snprintf(err, size,
			         "--%s: unknown %s '%s' (not in the configuration, never seen in "
			         "the "
			         "query database)",
			         opt, opt, shown);
		return 1;
	}
	return 0;
}

int
review_filter_check(const struct config *cfg, struct logdb_reader *r, const struct logdb_filter *f,
                    char *err, size_t size)
{
	const struct {
		const char *opt;
		const struct logdb_values *vs;
	} checks[] = {
	        {"group", &f->group},
	        {"list", &f->list},
	        {"vendor", &f->vendor},
	        {"device", &f->device},
	};

	if (f->instance.v[0] != NULL && !logdb_reader_shared(r)) {
		snprintf(err, size, "--instance: the store is not shared (store.postgresql): its "
		                    "rows have no instance");
		return 1;
	}
	for (size_t i = 0; i < sizeof(checks) / sizeof(checks[0]); i++) {
		struct known k = {0};
		if (checks[i].vs->v[0] == NULL)
			continue;
		int rc = known_fill(&k, checks[i].opt, cfg, r);
		if (rc == 0)
			rc = check_values(checks[i].opt, checks[i].vs, &k, err, size);
		known_clear(&k);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- the attempts CSV ---- */

void
review_attempts_csv_head(FILE *out)
{
	fputs("device_key,device,client,mac,vendor,vendor_source,group,attempts,names,"
	      "top_lists,first,last,default_deny,vendor_evidence\n",
	      out);
}

void
review_attempts_csv_row(FILE *f, const struct logdb_attempt *a)
{
	char first[OUTPUT_TIME_MAX], last[OUTPUT_TIME_MAX];
	const char *cols[] = {a->key,    a->device,        a->client, a->mac,
	                      a->vendor, a->vendor_source, a->group};

	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++) {
		if (i > 0)
			fputc(',', f);
		output_csv(f, cols[i]);
	}
	output_format_csv_time(a->first_ms, first);
	output_format_csv_time(a->last_ms, last);
	fprintf(f, ",%" PRIu64 ",%" PRIu64 ",", a->attempts, a->names);
	output_csv(f, a->top_lists);
	fprintf(f, ",%s,%s,%" PRIu64 ",", first, last, a->denied);
	output_csv(f, a->evidence);
	fputc('\n', f);
}
