/*
 * devices_pg_merge: the pure merge rules of the shared device table (see devices_pg.h).
 */
#include <string.h>
#include <strings.h>

#include "devices_pg.h"
#include "text.h"

static bool
weaker(const struct devices_obs *a, const struct devices_obs *b)
{
	return a->rom != b->rom ? a->rom < b->rom : a->count < b->count;
}

/* The slot of vendor in obs[0..*n): found, a new one, or the weakest replaced when it is
 * weaker than cand. NULL when every slot holds stronger evidence. */
static struct devices_obs *
slot(struct devices_obs *obs, uint8_t *n, const struct devices_obs *cand)
{
	size_t i = 0, w = 0;
	while (i < *n && strcasecmp(obs[i].vendor, cand->vendor) != 0)
		i++;
	if (i < *n)
		return &obs[i];
	if (*n < DEVICES_MAX_OBS) {
		i = (*n)++;
	} else {
		for (size_t k = 1; k < *n; k++)
			if (weaker(&obs[k], &obs[w]))
				w = k;
		if (!weaker(&obs[w], cand))
			return NULL;
		i = w;
	}
	memset(&obs[i], 0, sizeof(obs[i]));
	text_copy(obs[i].vendor, sizeof(obs[i].vendor), cand->vendor);
	return &obs[i];
}

/* The newer of the two evidence texts and the earliest first / latest last time into o. */
static void
take_times(struct devices_obs *o, const struct devices_obs *from)
{
	if (from->first != 0 && (o->first == 0 || from->first < o->first))
		o->first = from->first;
	if (from->last > o->last || o->evidence[0] == '\0') {
		if (from->evidence[0] != '\0')
			text_copy(o->evidence, sizeof(o->evidence), from->evidence);
		if (from->rom_evidence[0] != '\0')
			text_copy(o->rom_evidence, sizeof(o->rom_evidence), from->rom_evidence);
	}
	if (from->last > o->last)
		o->last = from->last;
}

void
devices_pg_row_add(struct devices_pg_row *row, const struct devices_obs *obs, bool own)
{
	struct devices_obs *o = slot(own ? row->own : row->others, own ? &row->nown : &row->nothers,
				     obs);
	if (o == NULL)
		return;
	o->count += obs->count;
	o->rom += obs->rom;
	o->app += obs->app;
	take_times(o, obs);
}

static const struct devices_obs *
find(const struct devices_obs *obs, size_t n, const char *vendor)
{
	for (size_t i = 0; i < n; i++)
		if (strcasecmp(obs[i].vendor, vendor) == 0)
			return &obs[i];
	return NULL;
}

static uint32_t
max3(uint32_t a, uint32_t b, uint32_t c)
{
	uint32_t m = a > b ? a : b;
	return m > c ? m : c;
}

/* r's evidence: own counts plus the others'. Returns whether a count changed. */
static bool
merge_evidence(struct devices_record *r, const struct devices_pg_row *row, bool initial)
{
	bool changed = false;
	static const struct devices_obs none;

	/* vendors only the others saw get a slot (the weakest local one may go), with their
	 * counts for now so that the next one compares against them */
	size_t nin = (size_t)row->nothers + (initial ? row->nown : 0);
	for (size_t i = 0; i < nin; i++) {
		const struct devices_obs *in =
			i < row->nothers ? &row->others[i] : &row->own[i - row->nothers];
		struct devices_obs *o = slot(r->obs, &r->nobs, in);
		if (o != NULL && o->count == 0) {
			changed = true;	/* a vendor new to this table */
			o->count = in->count;
			o->rom = in->rom;
			o->app = in->app;
		}
	}
	for (size_t i = 0; i < r->nobs; i++) {
		struct devices_obs *o = &r->obs[i];
		const struct devices_obs *ot = find(row->others, row->nothers, o->vendor);
		const struct devices_obs *mine = find(row->own, row->nown, o->vendor);
		if (ot == NULL)
			ot = &none;
		if (initial) {
			/* counts loaded from devices.db hold this instance's and, from an earlier
			 * run, some of the others': what exceeds the others' now is this one's */
			const struct devices_obs *m = mine != NULL ? mine : &none;
			o->own = max3(m->count, o->count > ot->count ? o->count - ot->count : 0, 0);
			o->own_rom = max3(m->rom, o->rom > ot->rom ? o->rom - ot->rom : 0, 0);
			o->own_app = max3(m->app, o->app > ot->app ? o->app - ot->app : 0, 0);
			if (mine != NULL)
				take_times(o, mine);
		}
		uint32_t count = o->own + ot->count, rom = o->own_rom + ot->rom,
			 app = o->own_app + ot->app;
		if (count != o->count || rom != o->rom || app != o->app)
			changed = true;
		o->count = count;
		o->rom = rom;
		o->app = app;
		take_times(o, ot);
	}
	/* a vendor nobody has evidence for any more (forgotten elsewhere) leaves */
	size_t w = 0;
	for (size_t i = 0; i < r->nobs; i++)
		if (r->obs[i].count > 0)
			r->obs[w++] = r->obs[i];
	r->nobs = (uint8_t)w;
	return changed;
}

enum devices_pg_merged
devices_pg_merge(struct devices_record *r, const struct devices_pg_row *row, bool initial)
{
	bool changed = false;

	if (row->forgotten_at != 0) {
		/* a copy older than the forget goes (first seen before it, or in the same
		 * second: times are seconds); one seen again (or pinned) since stays. A
		 * tombstone's pin_at is the time of the forget (ms) */
		if (r->first_seen <= row->forgotten_at && r->pin_at <= row->pin_at)
			return DEVICES_PG_FORGET;
		return DEVICES_PG_SAME;
	}
	if (row->pin_at > r->pin_at) {
		changed = strcmp(r->pin_vendor, row->pin_vendor) != 0 ||
			  strcmp(r->pin_group, row->pin_group) != 0;
		text_copy(r->pin_vendor, sizeof(r->pin_vendor), row->pin_vendor);
		text_copy(r->pin_group, sizeof(r->pin_group), row->pin_group);
		r->pin_at = row->pin_at;
	}
	if ((r->os_families | row->os_families) != r->os_families) {
		r->os_families |= row->os_families;
		changed = true;
	}
	if (row->shared && !r->shared) {
		r->shared = true;
		changed = true;
	}
	if (merge_evidence(r, row, initial))
		changed = true;
	if (row->first_seen != 0 && (r->first_seen == 0 || row->first_seen < r->first_seen))
		r->first_seen = row->first_seen;
	if (row->last_seen > r->last_seen)
		r->last_seen = row->last_seen;
	return changed ? DEVICES_PG_CHANGED : DEVICES_PG_SAME;
}
