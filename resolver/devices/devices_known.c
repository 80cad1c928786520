/*
 * devices_known: whether a --vendor or --group value of `veto devices` (and of the web
 * console's /devices filters) names something the configuration or the saved device table
 * knows, with a "did you mean" when it does not (devices_store.h).
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "devices_store.h"
#include "text.h"
#include "vendors.h"

#define KNOWN_MAX 512 /* candidates kept for the suggestion; matching does not need them */

struct known {
	const char *want; /* the option's value */
	bool nocase;      /* vendors: any case */
	bool vendor;      /* which field of a record to look at */
	bool found;
	const char *cand[KNOWN_MAX];
	char *owned[KNOWN_MAX]; /* the candidates copied from records */
	size_t n, nowned;
};

static void
known_add(struct known *k, const char *v, bool copy)
{
	if (v == NULL || v[0] == '\0')
		return;
	if (k->nocase ? strcasecmp(v, k->want) == 0 : strcmp(v, k->want) == 0)
		k->found = true;
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->cand[i], v) == 0)
			return;
	if (k->n == KNOWN_MAX || (copy && k->nowned == KNOWN_MAX))
		return;
	if (copy) {
		char *d = strdup(v);
		if (d == NULL)
			return; /* only the suggestion is poorer */
		k->owned[k->nowned++] = d;
		v = d;
	}
	k->cand[k->n++] = v;
}

static int
on_known(void *arg, const struct devices_record *r)
{
	struct known *k = arg;

	known_add(k, k->vendor ? r->vendor : r->group, true);
	known_add(k, k->vendor ? r->pin_vendor : r->pin_group, true);
	return 0;
}

int
devices_store_check_known(const struct config *cfg, struct devices_store *st, const char *opt,
			  const char *want, char *err, size_t size)
{
	struct known *k = calloc(1, sizeof(*k));
	int rc = 0;

	if (k == NULL)
		return 0; /* no check rather than no answer */
	k->want = want;
	k->vendor = strcmp(opt, "--vendor") == 0;
	k->nocase = k->vendor;
	if (k->vendor) {
		for (size_t i = 0; i < VENDORS_COUNT; i++)
			known_add(k, vendors_names[i], false);
		for (size_t i = 0; cfg != NULL && i < cfg->devices.ninventory; i++)
			known_add(k, cfg->devices.inventory[i].vendor, false);
	} else {
		for (size_t i = 0; cfg != NULL && i < cfg->ngroups; i++)
			known_add(k, cfg->groups[i].name, false);
	}
	if (!k->found && st != NULL)
		(void)devices_store_load(st, on_known, k); /* unreadable: the list says so */
	if (!k->found) {
		const char *s = config_suggest(want, k->cand, k->n);
		char shown[128], sug[128];
		text_safe(shown, sizeof(shown), want);
		if (s != NULL)
			snprintf(err, size, "%s: unknown %s '%s' (did you mean '%s'?)", opt,
				 opt + 2, shown, text_safe(sug, sizeof(sug), s));
		else
			snprintf(err, size,
				 "%s: unknown %s '%s' (not in the configuration, not in the device "
				 "table)",
				 opt, opt + 2, shown);
		rc = -1;
	}
	for (size_t i = 0; i < k->nowned; i++)
		free(k->owned[i]);
	free(k);
	return rc;
}
