/*
 * policy: compiles a config into an immutable policy and evaluates it (see policy.h).
 *
 * Every list is loaded into one nameset (name -> interned list-set). After loading, a table
 * gsets[group][set] records, for every group and every list-set, the first of the group's allow
 * lists and the first of its block lists that the set contains, so that evaluating a name costs
 * one hash probe per label plus one table read per hit, whatever the number of lists.
 *
 * Matching semantics (policy_check): the query name's suffixes are probed from the name itself
 * down to its top-level label; the root is never probed (lists.c refuses "." as an entry: use
 * default: deny to block everything). An allow hit at any label wins; otherwise the most specific
 * block hit decides; otherwise default: deny; otherwise no match.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "hash.h"
#include "hostglob.h"
#include "lists.h"
#include "policy_int.h"

#define KEY_MAX 512
#define BYTES_PER_NAME_GUESS 24	/* list file octets per name, to presize the table */

struct load_ctx {
	struct nameset *ns;
	uint32_t list;
	size_t entries;
};

/* Adds a name to the table; without a table (only reading the lists) counts it. */
static int
on_list_name(void *arg, const struct names_name *n)
{
	struct load_ctx *c = arg;
	if (c->ns == NULL) {
		c->entries++;
		return 0;
	}
	int rc = nameset_add(c->ns, n, c->list);
	if (rc < 0)
		return rc;
	c->entries += (size_t)rc;
	return 0;
}

/* Loads list l (files and inline domains) into ns (NULL: only read and report) and fills *out.
 * I/O and content errors are reported to diag and returned after trying everything; -ENOMEM is
 * returned at once. */
static int
load_list(const struct config *cfg, struct nameset *ns, struct diag *diag, size_t l,
	  struct policy_list_stats *out)
{
	const struct config_list *cl = &cfg->lists[l];
	struct load_ctx ctx = {.ns = ns, .list = (uint32_t)l};
	struct lists_stats st = {0};
	char key[KEY_MAX];
	int result = 0;

	for (size_t i = 0; i < cl->nfiles; i++) {
		const struct config_loc *loc = cl->file_locs != NULL ? &cl->file_locs[i] : &cl->loc;
		snprintf(key, sizeof(key), "lists.%s.files[%zu]", cl->name, i);
		int rc = lists_read_file(cl->files[i], cfg->path, loc->line, loc->col, key, diag,
					 on_list_name, &ctx, &st);
		if (rc == -ENOMEM || rc == -E2BIG)
			return rc;
		if (rc < 0 && result == 0)
			result = rc;
	}
	for (size_t i = 0; i < cl->nurls && cl->cache_files != NULL; i++) {
		const struct config_loc *loc = cl->url_locs != NULL ? &cl->url_locs[i] : &cl->loc;
		struct stat sb;
		snprintf(key, sizeof(key), "lists.%s.urls[%zu]", cl->name, i);
		if (stat(cl->cache_files[i], &sb) != 0 && errno == ENOENT) {
			/* the daemon downloads it; until then the source is empty */
			diag_add(diag, DIAG_WARNING, cfg->path, loc->line, loc->col, key,
				 "not downloaded yet (no copy '%s'): empty until the first download",
				 cl->cache_files[i]);
			continue;
		}
		int rc = lists_read_file(cl->cache_files[i], cfg->path, loc->line, loc->col, key,
					 diag, on_list_name, &ctx, &st);
		if (rc == -ENOMEM || rc == -E2BIG)
			return rc;
		if (rc < 0 && result == 0)
			result = rc;
	}
	for (size_t i = 0; i < cl->ndomains; i++) {
		const struct config_loc *loc =
			cl->domain_locs != NULL ? &cl->domain_locs[i] : &cl->loc;
		const char *text = cl->domains[i];
		struct names_name n;
		const char *why = NULL;
		snprintf(key, sizeof(key), "lists.%s.domains[%zu]", cl->name, i);
		int rc = lists_parse_name(text, strlen(text), &n, &why);
		if (rc < 0) {
			diag_add(diag, DIAG_ERROR, cfg->path, loc->line, loc->col, key,
				 "invalid name '%s': %s", text, why);
			if (result == 0)
				result = -EINVAL;
			continue;
		}
		if (rc == 1) {
			diag_add(diag, DIAG_WARNING, cfg->path, loc->line, loc->col, key,
				 "'%s' is a local host name: ignored", text);
			continue;
		}
		if ((rc = on_list_name(&ctx, &n)) < 0)
			return rc;
	}
	out->entries = ctx.entries;
	out->skipped = st.skipped;
	return result;
}

/* Loads every list of cfg into ns, or with ns NULL only reads the lists defined without error
 * (cfg is then a partial configuration). lstats (may be NULL) gets one entry per list. 0, the
 * first I/O or content error after reading everything, or -ENOMEM / -E2BIG at once (reported). */
static int
load_lists(const struct config *cfg, struct nameset *ns, struct diag *diag,
	   struct policy_list_stats *lstats)
{
	int rc = 0;

	for (size_t l = 0; l < cfg->nlists; l++) {
		struct policy_list_stats st = {0};
		if (ns == NULL && !cfg->lists[l].valid)
			continue;
		int lrc = load_list(cfg, ns, diag, l, &st);
		if (lrc == -ENOMEM || lrc == -E2BIG) {
			diag_add(diag, DIAG_ERROR, cfg->path, cfg->lists[l].loc.line,
				 cfg->lists[l].loc.col, NULL, "lists.%s: %s", cfg->lists[l].name,
				 strerror(-lrc));
			return lrc;
		}
		if (lrc < 0 && rc == 0)
			rc = lrc;
		if (lstats != NULL)
			lstats[l] = st;
	}
	return rc;
}

/* Fills gsets: for each group and set, the group's first allow and block list in the set. */
static int
build_gsets(struct policy *p)
{
	const struct config *cfg = p->cfg;
	size_t nsets = nameset_nsets(p->names);
	int rc = 0;
	int32_t *arank = NULL, *brank = NULL;

	p->nsets = nsets;
	if (cfg->ngroups == 0 || nsets == 0)
		return 0;
	if (nsets > SIZE_MAX / sizeof(*p->gsets) / cfg->ngroups)
		return -ENOMEM;
	p->gsets = malloc(cfg->ngroups * nsets * sizeof(*p->gsets));
	arank = malloc((cfg->nlists + 1) * sizeof(*arank));
	brank = malloc((cfg->nlists + 1) * sizeof(*brank));
	if (p->gsets == NULL || arank == NULL || brank == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	for (size_t g = 0; g < cfg->ngroups; g++) {
		const struct config_group *cg = &cfg->groups[g];
		/* rank of each list in the group's block / allow order, INT32_MAX = not there */
		for (size_t l = 0; l < cfg->nlists; l++)
			arank[l] = brank[l] = INT32_MAX;
		for (size_t k = cg->nallow; k-- > 0;)
			if (cg->allow[k] < cfg->nlists)
				arank[cg->allow[k]] = (int32_t)k;
		for (size_t k = cg->nblock; k-- > 0;)
			if (cg->block[k] < cfg->nlists)
				brank[cg->block[k]] = (int32_t)k;
		struct policy_gset *row = p->gsets + g * nsets;
		for (size_t s = 0; s < nsets; s++) {
			size_t n;
			const uint32_t *lists = nameset_set(p->names, (uint32_t)s, &n);
			int32_t ba = INT32_MAX, bb = INT32_MAX;
			for (size_t k = 0; k < n; k++) {
				if (lists[k] >= cfg->nlists)
					continue;
				if (arank[lists[k]] < ba)
					ba = arank[lists[k]];
				if (brank[lists[k]] < bb)
					bb = brank[lists[k]];
			}
			row[s].allow = ba == INT32_MAX ? -1 : (int32_t)cg->allow[ba];
			row[s].block = bb == INT32_MAX ? -1 : (int32_t)cg->block[bb];
		}
	}
cleanup:
	free(arank);
	free(brank);
	return rc;
}

/* Loads the inline names of the devices.signatures as pseudo-lists nlists + i. */
static int
load_signatures(struct policy *p, struct diag *diag)
{
	const struct config *cfg = p->cfg;
	struct load_ctx ctx = {.ns = p->names};
	int result = 0;

	for (size_t i = 0; i < cfg->devices.nsignatures; i++) {
		const struct config_signature *sg = &cfg->devices.signatures[i];
		ctx.list = (uint32_t)(cfg->nlists + i);
		for (size_t k = 0; k < sg->ndomains; k++) {
			struct names_name n;
			const char *why = NULL;
			int rc = lists_parse_name(sg->domains[k], strlen(sg->domains[k]), &n, &why);
			if (rc != 0) {
				diag_add(diag, DIAG_ERROR, cfg->path, sg->domain_locs[k].line,
					 sg->domain_locs[k].col, NULL,
					 "devices.signatures.%s: invalid name '%s'", sg->vendor,
					 sg->domains[k]);
				result = -EINVAL;
				continue;
			}
			if ((rc = on_list_name(&ctx, &n)) < 0)
				return rc;
		}
	}
	return result;
}

/* sigsets[set]: the first signature (config order) whose names or lists the set contains. */
static int
build_sigsets(struct policy *p)
{
	const struct config *cfg = p->cfg;
	size_t nsets = nameset_nsets(p->names);

	if (cfg->devices.nsignatures == 0 || nsets == 0)
		return 0;
	p->sigsets = malloc(nsets * sizeof(*p->sigsets));
	if (p->sigsets == NULL)
		return -ENOMEM;
	for (size_t s = 0; s < nsets; s++) {
		size_t n;
		const uint32_t *lists = nameset_set(p->names, (uint32_t)s, &n);
		int32_t best = INT32_MAX;
		for (size_t k = 0; k < n; k++) {
			uint32_t l = lists[k];
			if (l >= cfg->nlists) {
				if (l - cfg->nlists < cfg->devices.nsignatures &&
				    (int32_t)(l - cfg->nlists) < best)
					best = (int32_t)(l - cfg->nlists);
				continue;
			}
			for (size_t i = 0; i < cfg->devices.nsignatures && (int32_t)i < best; i++) {
				const struct config_signature *sg = &cfg->devices.signatures[i];
				for (size_t j = 0; j < sg->nlists; j++)
					if (sg->lists[j] == l)
						best = (int32_t)i;
			}
		}
		p->sigsets[s] = best == INT32_MAX ? -1 : best;
	}
	return 0;
}

static bool
has_device_selectors(const struct config_group *cg)
{
	return cg->nmacs + cg->nvendors + cg->nhostnames + cg->ndevices + cg->ntags > 0 ||
	       cg->has_randomised;
}

static int
build_clients(struct policy *p)
{
	const struct config *cfg = p->cfg;
	int rc;

	if ((rc = clients_new(&p->allow)) != 0 || (rc = clients_new(&p->groups)) != 0)
		return rc;
	p->dev_groups = calloc(cfg->ngroups + 1, sizeof(*p->dev_groups));
	if (p->dev_groups == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < cfg->server.nallow; i++) {
		const struct config_cidr *c = &cfg->server.allow[i];
		if ((rc = clients_add(p->allow, c->family, c->addr, c->prefix, 0)) != 0)
			return rc;
	}
	for (size_t g = 0; g < cfg->ngroups; g++) {
		const struct config_group *cg = &cfg->groups[g];
		if (has_device_selectors(cg))
			p->dev_groups[p->ndev_groups++] = (uint32_t)g;
		else if (cg->nclients == 0) {
			if ((rc = clients_add_all(p->groups, (int)g)) != 0)
				return rc;
			continue;
		}
		for (size_t i = 0; i < cg->nclients; i++) {
			const struct config_cidr *c = &cg->clients[i];
			if ((rc = clients_add(p->groups, c->family, c->addr, c->prefix, (int)g)) != 0)
				return rc;
		}
	}
	return 0;
}

static size_t
expected_names(const struct config *cfg)
{
	size_t total = 0;
	for (size_t l = 0; l < cfg->nlists; l++) {
		total += cfg->lists[l].ndomains;
		for (size_t i = 0; i < cfg->lists[l].nfiles; i++) {
			struct stat sb;
			if (stat(cfg->lists[l].files[i], &sb) == 0 && S_ISREG(sb.st_mode))
				total += (size_t)sb.st_size / BYTES_PER_NAME_GUESS;
		}
		for (size_t i = 0; i < cfg->lists[l].nurls && cfg->lists[l].cache_files; i++) {
			struct stat sb;
			if (stat(cfg->lists[l].cache_files[i], &sb) == 0 && S_ISREG(sb.st_mode))
				total += (size_t)sb.st_size / BYTES_PER_NAME_GUESS;
		}
	}
	return total;
}

static void
policy_destroy(struct policy *p)
{
	clients_free(&p->allow);
	clients_free(&p->groups);
	nameset_free(&p->names);
	free(p->gsets);
	free(p->lstats);
	free(p->sigsets);
	free(p->dev_groups);
	free(p);
}

int
policy_new(struct config *cfg, struct diag *diag, struct policy **out)
{
	struct policy *p = calloc(1, sizeof(*p));
	int rc = 0;

	if (p == NULL)
		return -ENOMEM;
	atomic_init(&p->refs, 1);
	p->cfg = cfg;
	p->seed = hash_seed();
	p->lstats = calloc(cfg->nlists + 1, sizeof(*p->lstats));
	if (p->lstats == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	if ((rc = nameset_new(p->seed, expected_names(cfg), &p->names)) != 0)
		goto cleanup;
	rc = load_lists(cfg, p->names, diag, p->lstats);
	if (rc == -ENOMEM || rc == -E2BIG)
		goto cleanup;
	if (rc == 0)
		rc = load_signatures(p, diag);
	if (rc != 0)
		goto cleanup;
	nameset_shrink(p->names);
	if ((rc = build_gsets(p)) != 0 || (rc = build_clients(p)) != 0 ||
	    (rc = build_sigsets(p)) != 0)
		goto cleanup;

	p->memory = sizeof(*p) + nameset_memory(p->names) + clients_memory(p->allow) +
		    clients_memory(p->groups) + (cfg->nlists + 1) * sizeof(*p->lstats) +
		    (p->gsets != NULL ? cfg->ngroups * p->nsets * sizeof(*p->gsets) : 0);
	*out = p;
	p = NULL;
cleanup:
	if (p != NULL) {
		p->cfg = NULL;	/* stays the caller's on failure */
		policy_destroy(p);
	}
	return rc;
}

int
policy_load(const char *path, struct diag *diag, struct policy **out)
{
	struct config *cfg = NULL, *partial = NULL;
	size_t first = diag->n;
	int rc = config_load_partial(path, diag, &cfg, &partial);

	if (rc == 0) {
		config_lint_oui(cfg, diag);
		config_lint_paths(cfg, diag);
		rc = policy_new(cfg, diag, out);
		if (rc != 0)
			config_free(&cfg);
	} else if (partial != NULL) {
		/* the configuration stays rejected; its lists are read for their own problems */
		if (load_lists(partial, NULL, diag, NULL) == -ENOMEM)
			rc = -ENOMEM;
		config_free(&partial);
	}
	diag_sort_file_first(diag, first, path);
	return rc;
}

struct policy *
policy_ref(struct policy *p)
{
	atomic_fetch_add_explicit(&p->refs, 1, memory_order_relaxed);
	return p;
}

void
policy_unref(struct policy **pp)
{
	struct policy *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	if (atomic_fetch_sub_explicit(&p->refs, 1, memory_order_acq_rel) != 1)
		return;
	config_free(&p->cfg);
	policy_destroy(p);
}

const struct config *
policy_config(const struct policy *p)
{
	return p->cfg;
}

bool
policy_client_allowed(const struct policy *p, const struct sockaddr *sa)
{
	return clients_find(p->allow, sa) >= 0;
}

int
policy_client_group(const struct policy *p, const struct sockaddr *sa)
{
	return clients_find(p->groups, sa);
}

static int
strv_find(char *const *v, size_t n, const char *s, bool nocase)
{
	if (s == NULL)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (nocase ? strcasecmp(v[i], s) == 0 : strcmp(v[i], s) == 0)
			return (int)i;
	return -1;
}

/* Which device selector of cg matches id; POLICY_SEL_NONE when none. */
static enum policy_selector
device_match(const struct config_group *cg, const struct policy_identity *id, int *value)
{
	int k;
	if (id->has_mac) {
		for (size_t i = 0; i < cg->nmacs; i++) {
			if (mac_prefix_match(&cg->macs[i], &id->mac)) {
				*value = (int)i;
				return POLICY_SEL_MACS;
			}
		}
	}
	if ((k = strv_find(cg->vendors, cg->nvendors, id->vendor, true)) >= 0 ||
	    (k = strv_find(cg->vendors, cg->nvendors, id->manufacturer, true)) >= 0) {
		*value = k;
		return POLICY_SEL_VENDORS;
	}
	if (id->hostname != NULL) {
		for (size_t i = 0; i < cg->nhostnames; i++) {
			if (hostglob_match(cg->hostnames[i], id->hostname, strlen(id->hostname))) {
				*value = (int)i;
				return POLICY_SEL_HOSTNAMES;
			}
		}
	}
	if ((k = strv_find(cg->devices, cg->ndevices, id->device, false)) >= 0) {
		*value = k;
		return POLICY_SEL_DEVICES;
	}
	for (size_t i = 0; i < cg->ntags; i++) {
		for (size_t j = 0; j < id->ntags; j++) {
			if (strcmp(cg->tags[i], id->tags[j]) == 0) {
				*value = (int)i;
				return POLICY_SEL_TAGS;
			}
		}
	}
	if (cg->has_randomised && id->has_mac && cg->randomised == id->randomised) {
		*value = -1;
		return POLICY_SEL_RANDOMISED;
	}
	return POLICY_SEL_NONE;
}

int
policy_client_group_ex(const struct policy *p, const struct policy_identity *id,
		       struct policy_group_match *why)
{
	const struct config *cfg = p->cfg;
	struct policy_group_match m = {POLICY_SEL_NONE, -1};

	if (id->group != NULL) {	/* pinned by an administrator */
		for (size_t i = 0; i < cfg->ngroups; i++) {
			if (strcmp(cfg->groups[i].name, id->group) == 0) {
				if (why != NULL) {
					why->selector = POLICY_SEL_PINNED;
					why->value = -1;
				}
				return (int)i;
			}
		}
	}
	int cg = clients_find(p->groups, id->sa);
	size_t limit = cg >= 0 ? (size_t)cg : cfg->ngroups;

	for (size_t i = 0; i < p->ndev_groups && p->dev_groups[i] < limit; i++) {
		uint32_t g = p->dev_groups[i];
		int value = -1;
		enum policy_selector sel = device_match(&cfg->groups[g], id, &value);
		if (sel != POLICY_SEL_NONE) {
			if (why != NULL) {
				why->selector = sel;
				why->value = value;
			}
			return (int)g;
		}
	}
	if (cg >= 0) {
		const struct config_group *g = &cfg->groups[cg];
		m.selector = g->nclients > 0 ? POLICY_SEL_CLIENTS : POLICY_SEL_ALL;
	}
	if (why != NULL)
		*why = m;
	return cg;
}

const char *
policy_selector_name(enum policy_selector s)
{
	switch (s) {
	case POLICY_SEL_NONE:
		return "none";
	case POLICY_SEL_ALL:
		return "all";
	case POLICY_SEL_CLIENTS:
		return "clients";
	case POLICY_SEL_MACS:
		return "macs";
	case POLICY_SEL_VENDORS:
		return "vendors";
	case POLICY_SEL_HOSTNAMES:
		return "hostnames";
	case POLICY_SEL_DEVICES:
		return "devices";
	case POLICY_SEL_TAGS:
		return "tags";
	case POLICY_SEL_RANDOMISED:
		return "randomised_mac";
	case POLICY_SEL_PINNED:
		return "pinned";
	}
	return "unknown";
}

int
policy_signature(const struct policy *p, const struct names_name *q)
{
	unsigned nl = q->nlabels;
	if (p->sigsets == NULL || nl == 0)
		return -1;
	uint64_t h[NAMES_MAX_LABELS];
	uint32_t sets[NAMES_MAX_LABELS];
	names_hash_suffixes(q, p->seed, h);
	nameset_find_suffixes(p->names, q, h, nl, sets);
	for (unsigned i = 0; i < nl; i++)
		if (sets[i] != NAMESET_NONE && p->sigsets[sets[i]] >= 0)
			return p->sigsets[sets[i]];
	return -1;
}

static enum config_action
pick_action(enum config_action list, enum config_action group, enum config_action global)
{
	if (list != CONFIG_ACTION_INHERIT)
		return list;
	if (group != CONFIG_ACTION_INHERIT)
		return group;
	return global != CONFIG_ACTION_INHERIT ? global : CONFIG_ACTION_SINKHOLE;
}

void
policy_check(const struct policy *p, int group, const struct names_name *q,
	     struct policy_verdict *v)
{
	const struct config *cfg = p->cfg;

	v->blocked = false;
	v->reason = POLICY_REASON_NO_GROUP;
	v->action = CONFIG_ACTION_INHERIT;
	v->group = -1;
	v->list = -1;
	v->rule_label = -1;
	if (group < 0 || (size_t)group >= cfg->ngroups)
		return;
	v->group = group;
	v->reason = POLICY_REASON_NO_MATCH;

	const struct config_group *cg = &cfg->groups[group];
	int block_list = -1, block_label = -1;
	unsigned nl = q->nlabels;
	if (p->gsets != NULL && nl > 0 && cg->nallow + cg->nblock > 0) {
		const struct policy_gset *row = p->gsets + (size_t)group * p->nsets;
		uint64_t h[NAMES_MAX_LABELS];
		uint32_t sets[NAMES_MAX_LABELS];
		names_hash_suffixes(q, p->seed, h);
		nameset_find_suffixes(p->names, q, h, nl, sets);
		for (unsigned i = 0; i < nl; i++) {
			uint32_t set = sets[i];
			if (set == NAMESET_NONE)
				continue;
			if (row[set].allow >= 0) {
				v->reason = POLICY_REASON_ALLOW_LIST;
				v->list = row[set].allow;
				v->rule_label = (int)i;
				return;
			}
			if (block_list < 0 && row[set].block >= 0) {
				block_list = row[set].block;
				block_label = (int)i;
			}
		}
	}
	if (block_list >= 0) {
		v->blocked = true;
		v->reason = POLICY_REASON_BLOCK_LIST;
		v->list = block_list;
		v->rule_label = block_label;
		v->action = pick_action(cfg->lists[block_list].action, cg->action, cfg->block.action);
		return;
	}
	if (cg->default_deny) {
		v->blocked = true;
		v->reason = POLICY_REASON_DEFAULT_DENY;
		v->action = pick_action(CONFIG_ACTION_INHERIT, cg->action, cfg->block.action);
	}
}

const char *
policy_group_name(const struct policy *p, int group)
{
	if (group < 0 || (size_t)group >= p->cfg->ngroups)
		return NULL;
	return p->cfg->groups[group].name;
}

const char *
policy_list_name(const struct policy *p, int list)
{
	if (list < 0 || (size_t)list >= p->cfg->nlists)
		return NULL;
	return p->cfg->lists[list].name;
}

void
policy_list_stats(const struct policy *p, int list, struct policy_list_stats *st)
{
	if (list < 0 || (size_t)list >= p->cfg->nlists) {
		st->entries = 0;
		st->skipped = 0;
		return;
	}
	*st = p->lstats[list];
}

size_t
policy_names(const struct policy *p)
{
	return nameset_count(p->names);
}

size_t
policy_memory(const struct policy *p)
{
	return p->memory;
}

void
policy_decide(const struct policy *p, const struct policy_identity *id,
	      const struct names_name *qname, struct policy_decision *d)
{
	static const struct names_name none = {.wire = {0}, .len = 1}; /* the root: no list has it */

	d->allowed = policy_client_allowed(p, id->sa);
	d->group = -1;
	d->why.selector = POLICY_SEL_NONE;
	d->why.value = -1;
	if (d->allowed)
		d->group = policy_client_group_ex(p, id, &d->why);
	policy_check(p, d->group, qname != NULL ? qname : &none, &d->v);
}

bool
policy_decide_target(const struct policy *p, const struct policy_decision *d,
		     const struct names_name *target, struct policy_verdict *v)
{
	policy_check(p, d->group, target, v);
	return v->blocked && v->reason == POLICY_REASON_BLOCK_LIST;
}
