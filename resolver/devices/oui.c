/*
 * oui: IEEE registries from ieee-data (see oui.h).
 *
 * Each file is read whole into memory and its CSV decoded in place (unquoting only shrinks a
 * field). Blocks go into one array; one open-addressing hash table (linear probing, load <= 1/2)
 * maps (bits, assignment) to a block, so a lookup is three probes at most. Organisation names
 * are interned in one string pool while loading (a temporary hash of the names), which keeps
 * the 900-odd "HUAWEI TECHNOLOGIES CO.,LTD" rows down to one copy.
 *
 * The key set comes from a file the administrator installs, not from the network, so the hash
 * is unseeded; the longest probe sequence is measured at load time and reported.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fileio.h"
#include "hash.h"
#include "oui.h"
#include "vendors.h"

struct oui {
	struct oui_entry *v;
	size_t n, cap;
	uint32_t *slots;	/* index + 1 into v, 0 = empty */
	size_t nslots;		/* power of two */
	char *pool;		/* interned organisation names, NUL-terminated */
	size_t pool_len, pool_cap;
	struct oui_stats st;
};

/* While loading, org points nowhere yet: the pool may move. This holds the pool offsets. */
struct loader {
	struct oui *o;
	uint32_t *org_off;	/* parallel to o->v */
	size_t org_cap;
	uint32_t *names;	/* interning table: pool offset + 1, 0 = empty */
	size_t nnames_slots, nnames;
	struct diag *diag;
};

/* vendors_names[] (policy/vendors.c) lists the vendors in the order of enum oui_vendor. */
_Static_assert(OUI_VENDOR_COUNT == VENDORS_COUNT + 1, "enum oui_vendor and vendors_names differ");

static const char *const registry_names[OUI_REGISTRY_COUNT] = {
	[OUI_MA_L] = "MA-L",
	[OUI_MA_M] = "MA-M",
	[OUI_MA_S] = "MA-S",
	[OUI_IAB] = "IAB",
};

static const unsigned registry_bits[OUI_REGISTRY_COUNT] = {
	[OUI_MA_L] = 24,
	[OUI_MA_M] = 28,
	[OUI_MA_S] = 36,
	[OUI_IAB] = 36,
};

/* Attribution patterns of oui.h, in order: first match wins. */
struct vendor_pattern {
	enum oui_vendor vendor;
	bool anywhere;		/* substring; else prefix */
	const char *text;	/* lowercase */
};

static const struct vendor_pattern vendor_patterns[] = {
	{OUI_VENDOR_XIAOMI, true, "xiaomi"},
	{OUI_VENDOR_OPPO, true, "guangdong oppo mobile"},
	{OUI_VENDOR_ONEPLUS, false, "oneplus"},
	{OUI_VENDOR_REALME, false, "realme"},
	{OUI_VENDOR_VIVO, false, "vivo mobile"},
	{OUI_VENDOR_HUAWEI, false, "huawei technologies"},
	{OUI_VENDOR_HUAWEI, false, "huawei device"},
	{OUI_VENDOR_HONOR, false, "honor device"},
	{OUI_VENDOR_SAMSUNG, false, "samsung electronics"},
};

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* s[0..len) starts with the lowercase pattern p, case-insensitively */
static bool
has_prefix_ci(const char *s, size_t len, const char *p)
{
	size_t plen = strlen(p);
	if (plen > len)
		return false;
	for (size_t i = 0; i < plen; i++)
		if (lower(s[i]) != p[i])
			return false;
	return true;
}

const char *
oui_vendor_name(enum oui_vendor v)
{
	return v > OUI_VENDOR_NONE && v < OUI_VENDOR_COUNT ? vendors_names[v - 1] : NULL;
}

enum oui_vendor
oui_vendor_from_name(const char *name, size_t len)
{
	int i = vendors_find(name, len);
	return i >= 0 ? (enum oui_vendor)(i + 1) : OUI_VENDOR_NONE;
}

enum oui_vendor
oui_vendor_of_org(const char *org, size_t len)
{
	while (len > 0 && (*org == ' ' || *org == '\t')) {
		org++;
		len--;
	}
	for (size_t k = 0; k < sizeof(vendor_patterns) / sizeof(vendor_patterns[0]); k++) {
		const struct vendor_pattern *p = &vendor_patterns[k];
		if (!p->anywhere) {
			if (has_prefix_ci(org, len, p->text))
				return p->vendor;
			continue;
		}
		for (size_t i = 0; i < len; i++)
			if (has_prefix_ci(org + i, len - i, p->text))
				return p->vendor;
	}
	return OUI_VENDOR_NONE;
}

const char *
oui_registry_name(enum oui_registry r)
{
	return (unsigned)r < OUI_REGISTRY_COUNT ? registry_names[r] : NULL;
}

static uint64_t
block_key(uint64_t prefix, unsigned bits)
{
	return prefix | ((uint64_t)bits << 48);
}

const struct oui_entry *
oui_find(const struct oui *o, uint64_t prefix, unsigned bits)
{
	if (o->nslots == 0)
		return NULL;
	uint64_t key = block_key(prefix, bits);
	size_t mask = o->nslots - 1;
	for (size_t i = (size_t)hash_mix(key) & mask;; i = (i + 1) & mask) {
		uint32_t s = o->slots[i];
		if (s == 0)
			return NULL;
		const struct oui_entry *e = &o->v[s - 1];
		if (e->prefix == prefix && e->bits == bits)
			return e;
	}
}

const struct oui_entry *
oui_lookup(const struct oui *o, const struct mac *m)
{
	if (mac_is_randomised(m) || mac_is_multicast(m))
		return NULL;
	uint64_t v = mac_to_u64(m);
	static const unsigned order[] = {36, 28, 24};
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		const struct oui_entry *e = oui_find(o, v >> (48 - order[i]), order[i]);
		if (e != NULL)
			return e;
	}
	return NULL;
}

void
oui_stats(const struct oui *o, struct oui_stats *st)
{
	*st = o->st;
}

void
oui_free(struct oui **po)
{
	struct oui *o = *po;
	if (o == NULL)
		return;
	free(o->v);
	free(o->slots);
	free(o->pool);
	free(o);
	*po = NULL;
}

/* ---- loading ---- */

/* RFC 4180 reader over a buffer it may rewrite (quoted fields are decoded in place). */
struct csv {
	char *buf;
	size_t len, pos;
	int line;		/* line of pos, 1-based */
};

#define CSV_MAX_FIELDS 8

struct csv_record {
	char *f[CSV_MAX_FIELDS];	/* NUL-terminated in place */
	size_t flen[CSV_MAX_FIELDS];
	size_t n; /* fields seen (may exceed CSV_MAX_FIELDS: extra ones dropped) */
	int line;
};

/* Reads the next record. Returns 1 (a record), 0 (end of input) or -EINVAL with *why set. */
static int
csv_next(struct csv *c, struct csv_record *r, const char **why)
{
	if (c->pos >= c->len)
		return 0;
	r->n = 0;
	r->line = c->line;
	for (;;) {
		char *start = c->buf + c->pos;
		char *w = start;	/* write position of the decoded field */
		if (c->pos < c->len && c->buf[c->pos] == '"') {
			c->pos++;
			for (;;) {
				if (c->pos >= c->len) {
					*why = "unterminated quoted field";
					return -EINVAL;
				}
				char ch = c->buf[c->pos++];
				if (ch == '"') {
					if (c->pos < c->len && c->buf[c->pos] == '"') {
						c->pos++;
						*w++ = '"';
						continue;
					}
					break;
				}
				if (ch == '\n')
					c->line++;
				*w++ = ch;
			}
			if (c->pos < c->len && c->buf[c->pos] != ',' && c->buf[c->pos] != '\n' &&
			    c->buf[c->pos] != '\r') {
				*why = "text after a closing quote";
				return -EINVAL;
			}
		} else {
			while (c->pos < c->len && c->buf[c->pos] != ',' && c->buf[c->pos] != '\n' &&
			       c->buf[c->pos] != '\r') {
				if (c->buf[c->pos] == '\0') {
					*why = "nul byte";
					return -EINVAL;
				}
				*w++ = c->buf[c->pos++];
			}
		}
		/* the separator or line end is read before the field is terminated in place: the
		 * terminator may overwrite it */
		char sep = c->pos < c->len ? c->buf[c->pos] : '\n';
		if (sep == '\r') {
			if (c->pos + 1 < c->len && c->buf[c->pos + 1] != '\n') {
				*why = "carriage return outside quotes";
				return -EINVAL;
			}
			c->pos++;
			sep = '\n';
		}
		if (c->pos < c->len)
			c->pos++;
		*w = '\0';
		if (r->n < CSV_MAX_FIELDS) {
			r->f[r->n] = start;
			r->flen[r->n] = (size_t)(w - start);
		}
		r->n++;
		if (sep == '\n') {
			c->line++;
			return 1;
		}
	}
}

static int
grow(void **v, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return 0;
	size_t ncap = *cap ? *cap : 1024;
	while (ncap < need)
		ncap *= 2;
	void *p = realloc(*v, ncap * size);
	if (p == NULL)
		return -ENOMEM;
	*v = p;
	*cap = ncap;
	return 0;
}

static uint64_t
str_hash(const char *s, size_t len)
{
	return hash_bytes(s, len, 0);
}

static int
names_rehash(struct loader *l, size_t nslots)
{
	uint32_t *t = calloc(nslots, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < l->nnames_slots; i++) {
		uint32_t s = l->names[i];
		if (s == 0)
			continue;
		const char *str = l->o->pool + s - 1;
		size_t j = (size_t)str_hash(str, strlen(str)) & (nslots - 1);
		while (t[j] != 0)
			j = (j + 1) & (nslots - 1);
		t[j] = s;
	}
	free(l->names);
	l->names = t;
	l->nnames_slots = nslots;
	return 0;
}

/* Interns s[0..len) and returns its pool offset in *off. */
static int
intern(struct loader *l, const char *s, size_t len, uint32_t *off)
{
	struct oui *o = l->o;
	if ((l->nnames + 1) * 2 > l->nnames_slots) {
		int rc = names_rehash(l, l->nnames_slots ? l->nnames_slots * 2 : 4096);
		if (rc != 0)
			return rc;
	}
	size_t mask = l->nnames_slots - 1;
	size_t j = (size_t)str_hash(s, len) & mask;
	for (; l->names[j] != 0; j = (j + 1) & mask) {
		const char *p = o->pool + l->names[j] - 1;
		if (strncmp(p, s, len) == 0 && p[len] == '\0') {
			*off = l->names[j] - 1;
			return 0;
		}
	}
	if (o->pool_len + len + 1 > UINT32_MAX - 1)
		return -ENOMEM;
	void *pool = o->pool;
	if (grow(&pool, &o->pool_cap, o->pool_len + len + 1, 1) != 0)
		return -ENOMEM;
	o->pool = pool;
	memcpy(o->pool + o->pool_len, s, len);
	o->pool[o->pool_len + len] = '\0';
	*off = (uint32_t)o->pool_len;
	o->pool_len += len + 1;
	l->names[j] = *off + 1;
	l->nnames++;
	return 0;
}

/* Inserts entry v[idx] into the slot table (sized beforehand); 1 when the key was present. */
static int
slot_insert(struct oui *o, size_t idx, size_t *probe)
{
	const struct oui_entry *e = &o->v[idx];
	uint64_t key = block_key(e->prefix, e->bits);
	size_t mask = o->nslots - 1;
	size_t n = 1;
	size_t i = (size_t)hash_mix(key) & mask;
	for (; o->slots[i] != 0; i = (i + 1) & mask, n++) {
		const struct oui_entry *f = &o->v[o->slots[i] - 1];
		if (f->prefix == e->prefix && f->bits == e->bits)
			return 1;
	}
	o->slots[i] = (uint32_t)idx + 1;
	if (n > *probe)
		*probe = n;
	return 0;
}

static int
hexdigits(const char *s, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (len == 0)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		int d;
		if (c >= '0' && c <= '9')
			d = c - '0';
		else if (c >= 'a' && c <= 'f')
			d = c - 'a' + 10;
		else if (c >= 'A' && c <= 'F')
			d = c - 'A' + 10;
		else
			return -EINVAL;
		v = (v << 4) | (uint64_t)d;
	}
	*out = v;
	return 0;
}

static void
trim(const char **s, size_t *len)
{
	while (*len > 0 && (**s == ' ' || **s == '\t' || **s == '\n' || **s == '\r')) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t' ||
			    (*s)[*len - 1] == '\n' || (*s)[*len - 1] == '\r'))
		(*len)--;
}

static bool
field_is(const struct csv_record *r, size_t i, const char *want)
{
	return i < r->n && i < CSV_MAX_FIELDS && strcmp(r->f[i], want) == 0;
}

/* Parses one registry file buf[0..len) into the loader (entries appended, not yet indexed). */
static int
load_buf(struct loader *l, char *buf, size_t len, const char *file)
{
	struct oui *o = l->o;
	struct csv c = {.buf = buf, .len = len, .pos = 0, .line = 1};
	struct csv_record r;
	const char *why = NULL;
	int rc;
	if (len >= 3 && memcmp(buf, "\xef\xbb\xbf", 3) == 0)
		c.pos = 3;
	rc = csv_next(&c, &r, &why);
	if (rc < 0)
		goto bad;
	if (rc == 0 || !field_is(&r, 0, "Registry") || !field_is(&r, 1, "Assignment") ||
	    !field_is(&r, 2, "Organization Name")) {
		why = "not an ieee registry csv (expected header "
		      "'Registry,Assignment,Organization Name,...')";
		r.line = 1;
		rc = -EINVAL;
		goto bad;
	}
	for (;;) {
		rc = csv_next(&c, &r, &why);
		if (rc < 0)
			goto bad;
		if (rc == 0)
			break;
		if (r.n == 1 && r.flen[0] == 0)
			continue;	/* blank line */
		if (r.n < 3) {
			why = "expected at least 3 fields";
			rc = -EINVAL;
			goto bad;
		}
		unsigned reg = OUI_REGISTRY_COUNT;
		for (unsigned k = 0; k < OUI_REGISTRY_COUNT; k++)
			if (strcmp(r.f[0], registry_names[k]) == 0)
				reg = k;
		if (reg == OUI_REGISTRY_COUNT) {
			why = "unknown registry (expected MA-L, MA-M, MA-S or IAB)";
			rc = -EINVAL;
			goto bad;
		}
		uint64_t prefix;
		if (r.flen[1] * 4 != registry_bits[reg] ||
		    hexdigits(r.f[1], r.flen[1], &prefix) != 0) {
			why = "assignment is not a hex block of the registry's length";
			rc = -EINVAL;
			goto bad;
		}
		const char *org = r.f[2];
		size_t org_len = r.flen[2];
		trim(&org, &org_len);
		void *v = o->v;
		if (grow(&v, &o->cap, o->n + 1, sizeof(*o->v)) != 0)
			return -ENOMEM;
		o->v = v;
		v = l->org_off;
		if (grow(&v, &l->org_cap, o->n + 1, sizeof(*l->org_off)) != 0)
			return -ENOMEM;
		l->org_off = v;
		rc = intern(l, org, org_len, &l->org_off[o->n]);
		if (rc != 0)
			return rc;
		struct oui_entry *e = &o->v[o->n++];
		e->org = NULL;
		e->prefix = prefix;
		e->bits = (uint8_t)registry_bits[reg];
		e->registry = (uint8_t)reg;
		e->vendor = (uint8_t)oui_vendor_of_org(org, org_len);
	}
	return 0;
bad:
	diag_add(l->diag, DIAG_ERROR, file, r.line, 0, NULL, "%s", why);
	return rc;
}

/* Builds the hash index over o->v, dropping repeated assignments (the first one stays). */
static int
index_entries(struct loader *l)
{
	struct oui *o = l->o;
	size_t nslots = 16;
	while (nslots < o->n * 2)
		nslots *= 2;
	o->slots = calloc(nslots, sizeof(*o->slots));
	if (o->slots == NULL)
		return -ENOMEM;
	o->nslots = nslots;
	size_t kept = 0;
	for (size_t i = 0; i < o->n; i++) {
		o->v[kept] = o->v[i];
		l->org_off[kept] = l->org_off[i];
		if (slot_insert(o, kept, &o->st.max_probe) != 0) {
			o->st.duplicates++;
			continue;
		}
		kept++;
	}
	o->n = kept;
	/* give back the growth slack: the table lives as long as the daemon */
	if (o->n > 0 && o->n < o->cap) {
		struct oui_entry *v = realloc(o->v, o->n * sizeof(*o->v));
		if (v != NULL) {
			o->v = v;
			o->cap = o->n;
		}
	}
	if (o->pool_len > 0 && o->pool_len < o->pool_cap) {
		char *pool = realloc(o->pool, o->pool_len);
		if (pool != NULL) {
			o->pool = pool;
			o->pool_cap = o->pool_len;
		}
	}
	for (size_t i = 0; i < o->n; i++) {
		struct oui_entry *e = &o->v[i];
		e->org = o->pool + l->org_off[i];
		o->st.records[e->registry]++;
		o->st.vendor_blocks[e->vendor]++;
	}
	return 0;
}

int
oui_load_files(const char *const *paths, size_t n, struct diag *diag, struct oui **out)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	struct loader l = {.diag = diag};
	char *buf = NULL;
	int rc;
	l.o = calloc(1, sizeof(*l.o));
	if (l.o == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		size_t len = 0;
		rc = fileio_read_all(paths[i], &buf, &len);
		if (rc != 0) {
			diag_add(diag, DIAG_ERROR, paths[i], 0, 0, NULL,
				 "cannot read ieee registry file: %s", strerror(-rc));
			goto cleanup;
		}
		rc = load_buf(&l, buf, len, paths[i]);
		if (rc == -ENOMEM)
			diag_add(diag, DIAG_ERROR, paths[i], 0, 0, NULL, "out of memory");
		if (rc != 0)
			goto cleanup;
		free(buf);
		buf = NULL;
	}
	rc = index_entries(&l);
	if (rc != 0)
		goto cleanup;
	struct oui *o = l.o;
	o->st.names = l.nnames;
	o->st.memory = sizeof(*o) + o->cap * sizeof(*o->v) + o->nslots * sizeof(*o->slots) +
		       o->pool_cap;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	o->st.load_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 +
			(double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	*out = o;
	l.o = NULL;
cleanup:
	free(buf);
	free(l.org_off);
	free(l.names);
	oui_free(&l.o);
	return rc;
}

int
oui_load_dir(const char *dir, struct diag *diag, struct oui **out)
{
	static const char *const required[] = {"oui.csv", "mam.csv", "oui36.csv"};
	char paths[4][4096];
	const char *p[4];
	size_t n = 0;
	if (dir == NULL)
		dir = OUI_DEFAULT_DIR;
	for (size_t i = 0; i < 3; i++) {
		if ((size_t)snprintf(paths[n], sizeof(paths[n]), "%s/%s", dir, required[i]) >=
		    sizeof(paths[n])) {
			diag_add(diag, DIAG_ERROR, dir, 0, 0, NULL, "directory name too long");
			return -ENAMETOOLONG;
		}
		p[n] = paths[n];
		n++;
	}
	if ((size_t)snprintf(paths[n], sizeof(paths[n]), "%s/iab.csv", dir) < sizeof(paths[n]) &&
	    access(paths[n], F_OK) == 0) {
		p[n] = paths[n];
		n++;
	}
	return oui_load_files(p, n, diag, out);
}
