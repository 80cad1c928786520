/*
 * leases: dnsmasq, ISC dhcpd and Kea lease files (see leases.h).
 *
 * Every format feeds records into one builder: an array of records plus a temporary address
 * index, so that a later record for an address overwrites the earlier one in place (the address
 * keeps its first position). Strings go into one pool as offsets (the pool moves while it grows).
 * At the end, active unexpired records are copied into the final table, pointers are fixed up
 * against the final pool, and a fresh index is built over the survivors. Nothing is returned
 * on a fatal error, so the caller's previous table stays in use.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fileio.h"
#include "hash.h"
#include "leases.h"

#define KEA_INFINITE_LIFETIME UINT32_C(4294967295)
#define QUOTE_MAX 40		/* octets of offending text quoted in a message */
#define MAX_TOKS 16		/* tokens of one dhcpd statement kept */
#define MAX_DEPTH 32		/* nested dhcpd blocks */

struct rec {
	struct leases_entry e;		/* string pointers unset until the end */
	uint32_t host, cid, vc;		/* pool offset + 1, 0 = none */
	bool active;
};

struct builder {
	const char *file;
	int64_t now;
	struct diag *diag;
	struct rec *v;
	size_t n, cap;
	char *pool;
	size_t pool_len, pool_cap;
	uint32_t *slots;		/* index + 1 into v, 0 = empty */
	size_t nslots;
	struct leases_stats st;
};

/* ---- messages ---- */

static int fatal(struct builder *b, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int
fatal(struct builder *b, int line, const char *fmt, ...)
{
	if (b->diag != NULL) {
		va_list ap;
		va_start(ap, fmt);
		diag_vadd(b->diag, DIAG_ERROR, b->file, line, 0, NULL, fmt, ap);
		va_end(ap);
	}
	return -EINVAL;
}

static void note(struct builder *b, int line, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
note(struct builder *b, int line, const char *fmt, ...)
{
	b->st.notes++;
	if (b->diag != NULL && b->st.notes <= LEASES_MAX_NOTES) {
		va_list ap;
		va_start(ap, fmt);
		diag_vadd(b->diag, DIAG_NOTE, b->file, line, 0, NULL, fmt, ap);
		va_end(ap);
	}
}

/* ---- address index (shared by the builder and the final table) ---- */

static size_t
addr_hash(int family, const uint8_t *addr)
{
	return (size_t)hash_bytes(addr, family == AF_INET ? 4 : 16, (uint64_t)family);
}

static bool
addr_equal(const struct leases_entry *e, int family, const uint8_t *addr)
{
	return e->family == family && memcmp(e->addr, addr, family == AF_INET ? 4 : 16) == 0;
}

#define ENTRY_AT(base, stride, i)                                                                  \
	((const struct leases_entry *)((const char *)(base) + (i) * (stride)))

/* Finds family/addr; returns the slot holding it or the empty slot where it would go. */
static size_t
index_slot(const uint32_t *slots, size_t nslots, const void *base, size_t stride, int family,
	   const uint8_t *addr)
{
	size_t mask = nslots - 1;
	size_t j = addr_hash(family, addr) & mask;
	while (slots[j] != 0 && !addr_equal(ENTRY_AT(base, stride, slots[j] - 1), family, addr))
		j = (j + 1) & mask;
	return j;
}

/* A fresh index of nslots (power of two, > 2n) over base[0..n). */
static int
index_build(uint32_t **slots_out, size_t nslots, const void *base, size_t stride, size_t n)
{
	uint32_t *slots = calloc(nslots, sizeof(*slots));
	if (slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct leases_entry *e = ENTRY_AT(base, stride, i);
		slots[index_slot(slots, nslots, base, stride, e->family, e->addr)] =
		        (uint32_t)i + 1;
	}
	*slots_out = slots;
	return 0;
}

/* ---- builder ---- */

static int
pool_add(struct builder *b, const char *s, size_t len, bool lowercase, uint32_t *off)
{
	if (b->pool_len + len + 1 > b->pool_cap) {
		size_t cap = b->pool_cap ? b->pool_cap : 4096;
		while (cap < b->pool_len + len + 1)
			cap *= 2;
		if (cap > UINT32_MAX - 1)
			return -ENOMEM;
		char *p = realloc(b->pool, cap);
		if (p == NULL)
			return -ENOMEM;
		b->pool = p;
		b->pool_cap = cap;
	}
	char *d = b->pool + b->pool_len;
	for (size_t i = 0; i < len; i++)
		d[i] = lowercase && s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
	d[len] = '\0';
	*off = (uint32_t)b->pool_len + 1;
	b->pool_len += len + 1;
	return 0;
}

/* octets as "xx:xx:..." */
static int
pool_add_hex(struct builder *b, const uint8_t *p, size_t n, uint32_t *off)
{
	static const char digits[] = "0123456789abcdef";
	if (n == 0) {
		*off = 0;
		return 0;
	}
	char *tmp = malloc(n * 3);
	if (tmp == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		tmp[i * 3] = digits[p[i] >> 4];
		tmp[i * 3 + 1] = digits[p[i] & 15];
		tmp[i * 3 + 2] = ':';
	}
	int rc = pool_add(b, tmp, n * 3 - 1, false, off);
	free(tmp);
	return rc;
}

static int
add_record(struct builder *b, const struct rec *r)
{
	b->st.records++;
	if ((b->n + 1) * 2 > b->nslots) {
		size_t nslots = b->nslots ? b->nslots * 2 : 64;
		uint32_t *slots;
		if (index_build(&slots, nslots, b->v, sizeof(*b->v), b->n) != 0)
			return -ENOMEM;
		free(b->slots);
		b->slots = slots;
		b->nslots = nslots;
	}
	size_t j = index_slot(b->slots, b->nslots, b->v, sizeof(*b->v), r->e.family, r->e.addr);
	if (b->slots[j] != 0) {
		b->v[b->slots[j] - 1] = *r;
		b->st.superseded++;
		return 0;
	}
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		struct rec *v = realloc(b->v, cap * sizeof(*v));
		if (v == NULL)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	b->v[b->n] = *r;
	b->slots[j] = (uint32_t)b->n + 1;
	b->n++;
	return 0;
}

static const char *
pool_str(const char *pool, uint32_t off)
{
	return off == 0 ? NULL : pool + off - 1;
}

static int
finish(struct builder *b, struct leases **out)
{
	int rc = -ENOMEM;
	struct leases *l = calloc(1, sizeof(*l));
	if (l == NULL)
		return -ENOMEM;
	l->v = calloc(b->n ? b->n : 1, sizeof(*l->v));
	if (l->v == NULL)
		goto cleanup;
	for (size_t i = 0; i < b->n; i++) {
		const struct rec *r = &b->v[i];
		if (!r->active) {
			b->st.inactive++;
			continue;
		}
		if (r->e.expiry != 0 && r->e.expiry < b->now) {
			b->st.expired++;
			continue;
		}
		struct leases_entry *e = &l->v[l->n++];
		*e = r->e;
		e->hostname = pool_str(b->pool, r->host);
		e->client_id = pool_str(b->pool, r->cid);
		e->vendor_class = pool_str(b->pool, r->vc);
	}
	l->nslots = 8;
	while (l->nslots <= l->n * 2)
		l->nslots *= 2;
	if (index_build(&l->slots, l->nslots, l->v, sizeof(*l->v), l->n) != 0)
		goto cleanup;
	l->pool = b->pool;	/* the entries point into it */
	b->pool = NULL;
	l->st = b->st;
	*out = l;
	l = NULL;
	rc = 0;
cleanup:
	leases_free(&l);
	return rc;
}

/* ---- small parsers ---- */

struct field {
	const char *s;
	size_t len;
};

static bool
field_is(const struct field *f, const char *s)
{
	return f->len == strlen(s) && memcmp(f->s, s, f->len) == 0;
}

static int
parse_i64(const char *s, size_t len, int64_t *out)
{
	if (len == 0 || len > 18)
		return -EINVAL;
	int64_t v = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return 0;
}

static int
parse_ip(int family, const char *s, size_t len, uint8_t *addr)
{
	char tmp[INET6_ADDRSTRLEN];
	uint8_t a[16] = {0};
	if (len == 0 || len >= sizeof(tmp))
		return -EINVAL;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (inet_pton(family, tmp, a) != 1)
		return -EINVAL;
	memcpy(addr, a, 16);
	return 0;
}

/* Colon-separated hex "1:a:bc" (groups of 1..2 digits) -> lowercase two-digit form. */
static int
pool_add_colon_hex(struct builder *b, const char *s, size_t len, uint32_t *off)
{
	uint8_t *bytes = malloc(len / 2 + 1);
	if (bytes == NULL)
		return -ENOMEM;
	size_t n = 0, i = 0;
	int rc = 0;
	while (i < len) {
		size_t start = i;
		while (i < len && s[i] != ':')
			i++;
		size_t g = i - start;
		if (g < 1 || g > 2 || mac_hexval(s[start]) < 0 ||
		    (g == 2 && mac_hexval(s[start + 1]) < 0) || (i < len && i + 1 == len)) {
			rc = -EINVAL;
			goto cleanup;
		}
		bytes[n++] = (uint8_t)(g == 1 ? mac_hexval(s[start])
					      : mac_hexval(s[start]) * 16 + mac_hexval(s[start + 1]));
		if (i < len)
			i++;
	}
	rc = pool_add_hex(b, bytes, n, off);
cleanup:
	free(bytes);
	return rc;
}

/* Visits the lines of buf; a final line without '\n' is a truncated file. */
typedef int line_cb(struct builder *b, const char *line, size_t len, int lineno);

static int
each_line(struct builder *b, const char *buf, size_t len, line_cb *cb)
{
	size_t pos = 0;
	int lineno = 0;
	while (pos < len) {
		const char *l = buf + pos;
		const char *nl = memchr(l, '\n', len - pos);
		lineno++;
		if (nl == NULL)
			return fatal(b, lineno, "last line has no newline (file truncated or being "
						"written)");
		size_t llen = (size_t)(nl - l);
		pos += llen + 1;
		if (llen > 0 && l[llen - 1] == '\r')
			llen--;
		if (memchr(l, '\0', llen) != NULL)
			return fatal(b, lineno, "nul byte");
		int rc = cb(b, l, llen, lineno);
		if (rc != 0)
			return rc;
	}
	return 0;
}

/* ---- dnsmasq ---- */


struct dnsmasq_state {
	struct builder b;	/* first member: line_cb gets the builder */
	bool v6;		/* after the "duid" line */
};

static size_t
split_space(const char *l, size_t len, struct field *f, size_t max)
{
	size_t n = 0, i = 0;
	for (;;) {
		while (i < len && (l[i] == ' ' || l[i] == '\t'))
			i++;
		if (i == len)
			return n;
		if (n == max)
			return max + 1;
		f[n].s = l + i;
		while (i < len && l[i] != ' ' && l[i] != '\t')
			i++;
		f[n].len = (size_t)(l + i - f[n].s);
		n++;
	}
}

/* "TT-..." is how dnsmasq writes a non-Ethernet hardware address (TT = ARP hardware type) */
static bool
is_typed_hwaddr(const struct field *f)
{
	return f->len >= 3 && mac_hexval(f->s[0]) >= 0 && mac_hexval(f->s[1]) >= 0 && f->s[2] == '-';
}

static int
dnsmasq_line(struct builder *b, const char *l, size_t len, int lineno)
{
	struct dnsmasq_state *ds = (struct dnsmasq_state *)b;
	struct field f[5];
	size_t n = split_space(l, len, f, 5);
	if (n == 0)
		return 0;
	if (field_is(&f[0], "duid")) {
		if (n != 2)
			return fatal(b, lineno, "expected 'duid SERVER-DUID'");
		ds->v6 = true;
		return 0;
	}
	if (n != 5)
		return fatal(b, lineno, ds->v6 ? "expected 5 fields: EXPIRY IAID IP HOSTNAME DUID"
					       : "expected 5 fields: EXPIRY MAC IP HOSTNAME "
						 "CLIENT-ID");
	struct rec r;
	memset(&r, 0, sizeof(r));
	r.active = true;
	r.e.line = lineno;
	if (parse_i64(f[0].s, f[0].len, &r.e.expiry) != 0)
		return fatal(b, lineno, "invalid expiry time '%.*s'",
		             (int)(f[0].len > QUOTE_MAX ? QUOTE_MAX : f[0].len), f[0].s);
	if (ds->v6) {
		const char *iaid = f[1].s;
		size_t ilen = f[1].len;
		int64_t dummy;
		if (ilen > 0 && iaid[0] == 'T') {
			iaid++;
			ilen--;
		}
		if (parse_i64(iaid, ilen, &dummy) != 0)
			return fatal(b, lineno, "invalid iaid '%.*s'",
			             (int)(f[1].len > QUOTE_MAX ? QUOTE_MAX : f[1].len), f[1].s);
		r.e.family = AF_INET6;
	} else {
		r.e.family = AF_INET;
		if (mac_parse(f[1].s, f[1].len, &r.e.mac) == 0)
			r.e.has_mac = true;
		else if (!is_typed_hwaddr(&f[1]))
			note(b, lineno, "hardware address '%.*s' is not an ethernet address",
			     (int)(f[1].len > QUOTE_MAX ? QUOTE_MAX : f[1].len), f[1].s);
	}
	if (parse_ip(r.e.family, f[2].s, f[2].len, r.e.addr) != 0)
		return fatal(b, lineno, "invalid %s address '%.*s'",
			     r.e.family == AF_INET ? "ipv4" : "ipv6",
			     (int)(f[2].len > QUOTE_MAX ? QUOTE_MAX : f[2].len), f[2].s);
	if (!field_is(&f[3], "*") && pool_add(b, f[3].s, f[3].len, false, &r.host) != 0)
		return -ENOMEM;
	if (!field_is(&f[4], "*") && pool_add(b, f[4].s, f[4].len, true, &r.cid) != 0)
		return -ENOMEM;
	return add_record(b, &r);
}

/* ---- kea ---- */

enum kea_col {
	KEA_ADDRESS,
	KEA_HWADDR,
	KEA_CLIENT_ID,
	KEA_DUID,
	KEA_VALID_LIFETIME,
	KEA_EXPIRE,
	KEA_HOSTNAME,
	KEA_STATE,
	KEA_LEASE_TYPE,
	KEA_NCOLS,
};

static const char *const kea_col_names[KEA_NCOLS] = {
	"address", "hwaddr", "client_id", "duid", "valid_lifetime", "expire", "hostname", "state",
	"lease_type",
};

#define KEA_MAX_FIELDS 64

struct kea_state {
	struct builder b;
	bool have_header;
	bool v6;
	size_t nfields;			/* columns in the header */
	int col[KEA_NCOLS];		/* column index, -1 = absent */
};

static size_t
split_comma(const char *l, size_t len, struct field *f, size_t max)
{
	size_t n = 0, i = 0;
	for (;;) {
		size_t start = i;
		while (i < len && l[i] != ',')
			i++;
		if (n < max) {
			f[n].s = l + start;
			f[n].len = i - start;
		}
		n++;
		if (i == len)
			return n;
		i++;
	}
}

/* Kea writes a comma inside a value as "&#x2c": decode every "&#xHH" */
static int
pool_add_kea(struct builder *b, const struct field *f, uint32_t *off)
{
	char *tmp = malloc(f->len + 1);
	if (tmp == NULL)
		return -ENOMEM;
	size_t n = 0;
	for (size_t i = 0; i < f->len; i++) {
		if (f->len - i >= 5 && memcmp(f->s + i, "&#x", 3) == 0 &&
		    mac_hexval(f->s[i + 3]) >= 0 && mac_hexval(f->s[i + 4]) >= 0) {
			tmp[n++] = (char)(mac_hexval(f->s[i + 3]) * 16 + mac_hexval(f->s[i + 4]));
			i += 4;
		} else {
			tmp[n++] = f->s[i];
		}
	}
	int rc = pool_add(b, tmp, n, false, off);
	free(tmp);
	return rc;
}

static int
kea_header(struct kea_state *ks, const char *l, size_t len, int lineno)
{
	struct field f[KEA_MAX_FIELDS];
	size_t n = split_comma(l, len, f, KEA_MAX_FIELDS);
	if (n > KEA_MAX_FIELDS || n == 0 || !field_is(&f[0], "address"))
		return fatal(&ks->b, lineno,
		             "not a kea lease file (expected a header line starting "
		             "with 'address,')");
	for (int c = 0; c < KEA_NCOLS; c++)
		ks->col[c] = -1;
	for (size_t i = 0; i < n; i++)
		for (int c = 0; c < KEA_NCOLS; c++)
			if (field_is(&f[i], kea_col_names[c]))
				ks->col[c] = (int)i;
	ks->v6 = ks->col[KEA_DUID] >= 0;
	static const enum kea_col required[] = {KEA_ADDRESS, KEA_VALID_LIFETIME, KEA_EXPIRE,
						KEA_HOSTNAME};
	for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
		if (ks->col[required[i]] < 0)
			return fatal(&ks->b, lineno, "kea header has no '%s' column",
				     kea_col_names[required[i]]);
	ks->nfields = n;
	ks->have_header = true;
	return 0;
}

static const struct field *
kea_get(const struct kea_state *ks, const struct field *f, enum kea_col c)
{
	return ks->col[c] >= 0 ? &f[ks->col[c]] : NULL;
}

static int
kea_line(struct builder *b, const char *l, size_t len, int lineno)
{
	struct kea_state *ks = (struct kea_state *)b;
	if (!ks->have_header)
		return kea_header(ks, l, len, lineno);
	if (len == 0)
		return 0;
	struct field f[KEA_MAX_FIELDS];
	size_t n = split_comma(l, len, f, KEA_MAX_FIELDS);
	if (n != ks->nfields)
		return fatal(b, lineno, "expected %zu fields as in the header, found %zu",
			     ks->nfields, n);
	struct rec r;
	memset(&r, 0, sizeof(r));
	r.e.line = lineno;
	r.e.family = ks->v6 ? AF_INET6 : AF_INET;
	const struct field *a = kea_get(ks, f, KEA_ADDRESS);
	if (parse_ip(r.e.family, a->s, a->len, r.e.addr) != 0)
		return fatal(b, lineno, "invalid %s address '%.*s'", ks->v6 ? "ipv6" : "ipv4",
			     (int)(a->len > QUOTE_MAX ? QUOTE_MAX : a->len), a->s);
	int64_t valid, expire, state = 0, type = 0;
	const struct field *x = kea_get(ks, f, KEA_VALID_LIFETIME);
	if (parse_i64(x->s, x->len, &valid) != 0 || valid > (int64_t)KEA_INFINITE_LIFETIME)
		return fatal(b, lineno, "invalid valid_lifetime '%.*s'",
			     (int)(x->len > QUOTE_MAX ? QUOTE_MAX : x->len), x->s);
	x = kea_get(ks, f, KEA_EXPIRE);
	if (parse_i64(x->s, x->len, &expire) != 0)
		return fatal(b, lineno, "invalid expire '%.*s'",
			     (int)(x->len > QUOTE_MAX ? QUOTE_MAX : x->len), x->s);
	x = kea_get(ks, f, KEA_STATE);
	if (x != NULL && x->len > 0 && parse_i64(x->s, x->len, &state) != 0)
		return fatal(b, lineno, "invalid state '%.*s'",
			     (int)(x->len > QUOTE_MAX ? QUOTE_MAX : x->len), x->s);
	x = kea_get(ks, f, KEA_LEASE_TYPE);
	if (x != NULL && x->len > 0 && parse_i64(x->s, x->len, &type) != 0)
		return fatal(b, lineno, "invalid lease_type '%.*s'",
			     (int)(x->len > QUOTE_MAX ? QUOTE_MAX : x->len), x->s);
	if (ks->v6 && type == 2) {
		/* a delegated prefix routes a network, it does not name a device */
		b->st.records++;
		b->st.inactive++;
		return 0;
	}
	/* valid_lifetime 0 is how the memfile records a deleted lease */
	r.active = state == 0 && valid != 0;
	r.e.expiry = valid == (int64_t)KEA_INFINITE_LIFETIME ? 0 : expire;
	x = kea_get(ks, f, KEA_HWADDR);
	if (x != NULL && x->len > 0) {
		if (mac_parse(x->s, x->len, &r.e.mac) == 0)
			r.e.has_mac = true;
		else
			note(b, lineno, "hardware address '%.*s' is not an ethernet address",
			     (int)(x->len > QUOTE_MAX ? QUOTE_MAX : x->len), x->s);
	}
	x = kea_get(ks, f, ks->v6 ? KEA_DUID : KEA_CLIENT_ID);
	if (x != NULL && x->len > 0 && pool_add(b, x->s, x->len, true, &r.cid) != 0)
		return -ENOMEM;
	x = kea_get(ks, f, KEA_HOSTNAME);
	if (x->len > 0 && pool_add_kea(b, x, &r.host) != 0)
		return -ENOMEM;
	return add_record(b, &r);
}

/* ---- ISC dhcpd ---- */

enum tok_type {
	TOK_EOF,
	TOK_WORD,
	TOK_STRING,
	TOK_SEMI,
	TOK_LBRACE,
	TOK_RBRACE,
	TOK_ERROR,
};

struct tok {
	enum tok_type type;
	const char *s;		/* words point into the input, strings into the scratch */
	size_t len;
	int line;
};

struct lexer {
	const char *buf;
	size_t len, pos;
	int line;
	char *scratch;		/* decoded strings; never longer than the input */
	size_t spos;
	const char *why;	/* for TOK_ERROR */
};

static bool
is_delim(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';' || c == '{' ||
	       c == '}' || c == '"' || c == '#' || c == '\0';
}

static struct tok
lex_next(struct lexer *lx)
{
	struct tok t = {TOK_EOF, NULL, 0, 0};
	for (;;) {
		while (lx->pos < lx->len &&
		       (lx->buf[lx->pos] == ' ' || lx->buf[lx->pos] == '\t' ||
		        lx->buf[lx->pos] == '\r' || lx->buf[lx->pos] == '\n')) {
			if (lx->buf[lx->pos] == '\n')
				lx->line++;
			lx->pos++;
		}
		if (lx->pos < lx->len && lx->buf[lx->pos] == '#') {
			while (lx->pos < lx->len && lx->buf[lx->pos] != '\n')
				lx->pos++;
			continue;
		}
		break;
	}
	t.line = lx->line;
	if (lx->pos >= lx->len)
		return t;
	char c = lx->buf[lx->pos];
	if (c == ';' || c == '{' || c == '}') {
		t.type = c == ';' ? TOK_SEMI : c == '{' ? TOK_LBRACE : TOK_RBRACE;
		lx->pos++;
		return t;
	}
	if (c == '\0') {
		t.type = TOK_ERROR;
		lx->why = "nul byte";
		return t;
	}
	if (c != '"') {
		t.type = TOK_WORD;
		t.s = lx->buf + lx->pos;
		while (lx->pos < lx->len && !is_delim(lx->buf[lx->pos]))
			lx->pos++;
		t.len = (size_t)(lx->buf + lx->pos - t.s);
		return t;
	}
	/* a string: \ooo octal, \xHH hex, \t \r \n \b, \c for any other c */
	lx->pos++;
	char *d = lx->scratch + lx->spos;
	t.s = d;
	for (;;) {
		if (lx->pos >= lx->len) {
			t.type = TOK_ERROR;
			lx->why = "unterminated string (file truncated?)";
			return t;
		}
		c = lx->buf[lx->pos++];
		if (c == '"')
			break;
		if (c == '\n')
			lx->line++;
		if (c != '\\') {
			*d++ = c;
			continue;
		}
		if (lx->pos >= lx->len)
			continue;	/* reported as unterminated on the next round */
		c = lx->buf[lx->pos++];
		if (c >= '0' && c <= '7') {
			unsigned v = (unsigned)(c - '0');
			for (int k = 0; k < 2 && lx->pos < lx->len && lx->buf[lx->pos] >= '0' &&
					lx->buf[lx->pos] <= '7';
			     k++)
				v = v * 8 + (unsigned)(lx->buf[lx->pos++] - '0');
			*d++ = (char)(v & 0xff);
		} else if (c == 'x' && lx->pos < lx->len && mac_hexval(lx->buf[lx->pos]) >= 0) {
			unsigned v = (unsigned)mac_hexval(lx->buf[lx->pos++]);
			if (lx->pos < lx->len && mac_hexval(lx->buf[lx->pos]) >= 0)
				v = v * 16 + (unsigned)mac_hexval(lx->buf[lx->pos++]);
			*d++ = (char)v;
		} else {
			*d++ = c == 't'   ? '\t'
			       : c == 'r' ? '\r'
			       : c == 'n' ? '\n'
			       : c == 'b' ? '\b'
			                  : c;
		}
	}
	t.type = TOK_STRING;
	t.len = (size_t)(d - t.s);
	lx->spos += t.len;
	return t;
}

struct stmt {
	struct tok t[MAX_TOKS];
	size_t n;		/* tokens seen (may exceed MAX_TOKS) */
	enum tok_type end;	/* TOK_SEMI, TOK_LBRACE, TOK_RBRACE (closing an empty statement),
				 * TOK_EOF (before any token) */
	int line;
};

static int
read_stmt(struct builder *b, struct lexer *lx, struct stmt *st)
{
	st->n = 0;
	st->line = lx->line;
	for (;;) {
		struct tok t = lex_next(lx);
		if (st->n == 0)
			st->line = t.line;
		switch (t.type) {
		case TOK_ERROR:
			return fatal(b, t.line, "%s", lx->why);
		case TOK_EOF:
			if (st->n > 0)
				return fatal(b, st->line, "statement not terminated at end of file "
							  "(file truncated?)");
			st->end = TOK_EOF;
			return 0;
		case TOK_SEMI:
		case TOK_LBRACE:
			st->end = t.type;
			return 0;
		case TOK_RBRACE:
			if (st->n > 0)
				return fatal(b, t.line, "missing ';' before '}'");
			st->end = TOK_RBRACE;
			return 0;
		default:
			if (st->n < MAX_TOKS)
				st->t[st->n] = t;
			st->n++;
		}
	}
}

static bool
tok_is(const struct stmt *st, size_t i, const char *w)
{
	return i < st->n && i < MAX_TOKS && st->t[i].type == TOK_WORD &&
	       st->t[i].len == strlen(w) && memcmp(st->t[i].s, w, st->t[i].len) == 0;
}

static int
skip_block(struct builder *b, struct lexer *lx, int open_line, int depth)
{
	if (depth > MAX_DEPTH)
		return fatal(b, open_line, "blocks nested too deeply");
	struct stmt st;
	for (;;) {
		int rc = read_stmt(b, lx, &st);
		if (rc != 0)
			return rc;
		if (st.end == TOK_EOF)
			return fatal(b, open_line,
			             "block not closed at end of file (file truncated?)");
		if (st.end == TOK_RBRACE)
			return 0;
		if (st.end == TOK_LBRACE) {
			rc = skip_block(b, lx, st.line, depth + 1);
			if (rc != 0)
				return rc;
		}
	}
}

/* The next statement of the block that `open` starts (its first word names it in messages), at
 * nesting depth `depth`: 1 with it in *st, 0 at the block's '}', or a negative error (a block
 * left open at the end of the file is fatal). Blocks nested in it are skipped, unless
 * keep_blocks: then they are returned, for the caller to read or skip. */
static int
block_next(struct builder *b, struct lexer *lx, const struct stmt *open, int depth,
	   bool keep_blocks, struct stmt *st)
{
	for (;;) {
		int rc = read_stmt(b, lx, st);
		if (rc != 0)
			return rc;
		if (st->end == TOK_EOF)
			return fatal(b, open->line,
				     "%.*s block not closed at end of file (file truncated?)",
				     (int)open->t[0].len, open->t[0].s);
		if (st->end == TOK_RBRACE)
			return 0;
		if (st->end != TOK_LBRACE || keep_blocks)
			return 1;
		rc = skip_block(b, lx, st->line, depth + 1);
		if (rc != 0)
			return rc;
	}
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t
days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

/* Reads "N/N/N" or "N:N:N" with the given separator into v[3]. */
static int
three_numbers(const struct tok *t, char sep, int64_t *v)
{
	if (t->type != TOK_WORD)
		return -EINVAL;
	size_t i = 0;
	for (int k = 0; k < 3; k++) {
		size_t start = i;
		while (i < t->len && t->s[i] != sep)
			i++;
		if (parse_i64(t->s + start, i - start, &v[k]) != 0)
			return -EINVAL;
		if (k < 2) {
			if (i == t->len)
				return -EINVAL;
			i++;
		}
	}
	return i == t->len ? 0 : -EINVAL;
}

/* "ends never" / "ends epoch N" / "ends W YYYY/MM/DD HH:MM:SS" (UTC) */
static int
parse_ends(const struct stmt *st, int64_t *out)
{
	if (st->n == 2 && tok_is(st, 1, "never")) {
		*out = 0;
		return 0;
	}
	if (st->n == 3 && tok_is(st, 1, "epoch") && st->t[2].type == TOK_WORD)
		return parse_i64(st->t[2].s, st->t[2].len, out);
	if (st->n != 4 || st->t[1].type != TOK_WORD || st->t[1].len != 1 ||
	    st->t[1].s[0] < '0' || st->t[1].s[0] > '6')
		return -EINVAL;
	int64_t date[3], tm[3];
	if (three_numbers(&st->t[2], '/', date) != 0 || three_numbers(&st->t[3], ':', tm) != 0)
		return -EINVAL;
	if (date[0] < 1970 || date[0] > 9999 || date[1] < 1 || date[1] > 12 || date[2] < 1 ||
	    date[2] > 31 || tm[0] > 23 || tm[1] > 59 || tm[2] > 60)
		return -EINVAL;
	*out = days_from_civil(date[0], (unsigned)date[1], (unsigned)date[2]) * 86400 +
	       tm[0] * 3600 + tm[1] * 60 + tm[2];
	return 0;
}

/* Statements shared by "lease" and "iaaddr" blocks; returns 1 when not one of them. */
static int
common_stmt(struct builder *b, const struct stmt *st, struct rec *r)
{
	if (tok_is(st, 0, "ends")) {
		if (parse_ends(st, &r->e.expiry) != 0)
			return fatal(b, st->line, "invalid 'ends' time");
		return 0;
	}
	if (tok_is(st, 0, "binding") && tok_is(st, 1, "state")) {
		if (st->n != 3 || st->t[2].type != TOK_WORD)
			return fatal(b, st->line, "invalid 'binding state'");
		r->active = tok_is(st, 2, "active");
		return 0;
	}
	return 1;
}

static int
lease_block(struct builder *b, struct lexer *lx, const struct stmt *open)
{
	struct rec r;
	memset(&r, 0, sizeof(r));
	r.active = true;	/* files from before "binding state" was written */
	r.e.family = AF_INET;
	r.e.line = open->line;
	if (open->n != 2 || open->t[1].type != TOK_WORD ||
	    parse_ip(AF_INET, open->t[1].s, open->t[1].len, r.e.addr) != 0)
		return fatal(b, open->line, "expected 'lease IPV4-ADDRESS {'");
	struct stmt st;
	int rc;
	while ((rc = block_next(b, lx, open, 0, false, &st)) > 0) {
		rc = common_stmt(b, &st, &r);
		if (rc <= 0) {
			if (rc < 0)
				return rc;
			continue;
		}
		if (tok_is(&st, 0, "hardware") && st.n == 3 && st.t[2].type == TOK_WORD) {
			if (!tok_is(&st, 1, "ethernet"))
				continue;	/* token-ring, fddi, infiniband: no MAC */
			if (mac_parse(st.t[2].s, st.t[2].len, &r.e.mac) == 0)
				r.e.has_mac = true;
			else
				note(b, st.line,
				     "hardware address '%.*s' is not an ethernet address",
				     (int)(st.t[2].len > QUOTE_MAX ? QUOTE_MAX : st.t[2].len),
				     st.t[2].s);
		} else if (tok_is(&st, 0, "uid") && st.n == 2) {
			int e = st.t[1].type == TOK_STRING
					? pool_add_hex(b, (const uint8_t *)st.t[1].s, st.t[1].len,
						       &r.cid)
					: pool_add_colon_hex(b, st.t[1].s, st.t[1].len, &r.cid);
			if (e == -EINVAL)
				return fatal(b, st.line, "invalid uid");
			if (e != 0)
				return e;
		} else if (tok_is(&st, 0, "client-hostname") && st.n == 2 &&
			   st.t[1].type == TOK_STRING) {
			if (pool_add(b, st.t[1].s, st.t[1].len, false, &r.host) != 0)
				return -ENOMEM;
		} else if (tok_is(&st, 0, "set") && st.n == 4 && tok_is(&st, 2, "=") &&
			   (tok_is(&st, 1, "vendor-class-identifier") ||
			    tok_is(&st, 1, "vendor-class")) &&
			   st.t[3].type == TOK_STRING) {
			if (pool_add(b, st.t[3].s, st.t[3].len, false, &r.vc) != 0)
				return -ENOMEM;
		} else if (tok_is(&st, 0, "abandoned")) {
			r.active = false;
		}
	}
	return rc < 0 ? rc : add_record(b, &r);
}

static int
iaaddr_block(struct builder *b, struct lexer *lx, const struct stmt *open, uint32_t duid)
{
	struct rec r;
	memset(&r, 0, sizeof(r));
	r.active = true;
	r.e.family = AF_INET6;
	r.e.line = open->line;
	r.cid = duid;
	if (open->n != 2 || open->t[1].type != TOK_WORD ||
	    parse_ip(AF_INET6, open->t[1].s, open->t[1].len, r.e.addr) != 0)
		return fatal(b, open->line, "expected 'iaaddr IPV6-ADDRESS {'");
	struct stmt st;
	int rc;
	while ((rc = block_next(b, lx, open, 1, false, &st)) > 0) {
		rc = common_stmt(b, &st, &r);
		if (rc < 0)
			return rc;
	}
	return rc < 0 ? rc : add_record(b, &r);
}

/* ia-na / ia-ta "IAID(4 octets) DUID" { iaaddr ... { } ... } */
static int
ia_block(struct builder *b, struct lexer *lx, const struct stmt *open)
{
	uint32_t duid = 0;
	if (open->n != 2 || open->t[1].type != TOK_STRING || open->t[1].len < 5)
		return fatal(b, open->line, "expected '%.*s \"IAID-AND-DUID\" {'",
			     (int)open->t[0].len, open->t[0].s);
	int rc = pool_add_hex(b, (const uint8_t *)open->t[1].s + 4, open->t[1].len - 4, &duid);
	if (rc != 0)
		return rc;
	struct stmt st;
	while ((rc = block_next(b, lx, open, 0, true, &st)) > 0) {
		if (st.end != TOK_LBRACE)
			continue;
		rc = tok_is(&st, 0, "iaaddr") ? iaaddr_block(b, lx, &st, duid)
					      : skip_block(b, lx, st.line, 1);
		if (rc != 0)
			return rc;
	}
	return rc;
}

static int
parse_dhcpd(struct builder *b, const char *buf, size_t len)
{
	struct lexer lx = {.buf = buf, .len = len, .pos = 0, .line = 1};
	lx.scratch = malloc(len + 1);
	if (lx.scratch == NULL)
		return -ENOMEM;
	int rc = 0;
	struct stmt st;
	for (;;) {
		rc = read_stmt(b, &lx, &st);
		if (rc != 0 || st.end == TOK_EOF)
			break;
		if (st.end == TOK_RBRACE) {
			rc = fatal(b, st.line, "unbalanced '}'");
			break;
		}
		if (st.end == TOK_SEMI)
			continue;	/* authoring-byte-order, server-duid, db-time-format ... */
		if (tok_is(&st, 0, "lease"))
			rc = lease_block(b, &lx, &st);
		else if (tok_is(&st, 0, "ia-na") || tok_is(&st, 0, "ia-ta"))
			rc = ia_block(b, &lx, &st);
		else if (tok_is(&st, 0, "ia-pd")) {
			b->st.records++;
			b->st.inactive++;
			rc = skip_block(b, &lx, st.line, 1);
		} else
			rc = skip_block(b, &lx, st.line, 1);
		if (rc != 0)
			break;
	}
	free(lx.scratch);
	return rc;
}

/* ---- entry points ---- */

int
leases_format_from_name(const char *name, enum leases_format *out)
{
	if (strcmp(name, "dnsmasq") == 0)
		*out = LEASES_DNSMASQ;
	else if (strcmp(name, "dhcpd") == 0 || strcmp(name, "isc") == 0)
		*out = LEASES_DHCPD;
	else if (strcmp(name, "kea") == 0)
		*out = LEASES_KEA;
	else
		return -EINVAL;
	return 0;
}

const char *
leases_format_name(enum leases_format f)
{
	switch (f) {
	case LEASES_DNSMASQ:
		return "dnsmasq";
	case LEASES_DHCPD:
		return "dhcpd";
	case LEASES_KEA:
		return "kea";
	}
	return NULL;
}

int
leases_parse_buf(enum leases_format fmt, const char *buf, size_t len, const char *file,
		 int64_t now, struct diag *diag, struct leases **out)
{
	union {
		struct builder b;
		struct dnsmasq_state d;
		struct kea_state k;
	} u;
	memset(&u, 0, sizeof(u));
	struct builder *b = &u.b;
	b->file = file;
	b->now = now;
	b->diag = diag;
	int rc;
	switch (fmt) {
	case LEASES_DNSMASQ:
		rc = each_line(b, buf, len, dnsmasq_line);
		break;
	case LEASES_KEA:
		rc = each_line(b, buf, len, kea_line);
		if (rc == 0 && !u.k.have_header)
			rc = fatal(b, 1,
			           "empty file: a kea lease file starts with its header line");
		break;
	case LEASES_DHCPD:
		rc = parse_dhcpd(b, buf, len);
		break;
	default:
		rc = -EINVAL;
	}
	if (rc == 0) {
		if (diag != NULL && b->st.notes > LEASES_MAX_NOTES)
			diag_add(diag, DIAG_NOTE, file, 0, 0, NULL,
				 "%zu records with problems in total, the first %d shown",
				 b->st.notes, LEASES_MAX_NOTES);
		rc = finish(b, out);
	}
	if (rc == -ENOMEM && diag != NULL)
		diag_add(diag, DIAG_ERROR, file, 0, 0, NULL, "out of memory");
	free(b->v);
	free(b->slots);
	free(b->pool);
	return rc;
}

int
leases_read_file(enum leases_format fmt, const char *path, int64_t now, struct diag *diag,
		 struct leases **out)
{
	char *buf = NULL;
	size_t len = 0;
	int rc = fileio_read_all(path, &buf, &len);
	if (rc != 0) {
		if (diag != NULL)
			diag_add(diag, DIAG_ERROR, path, 0, 0, NULL, "cannot read lease file: %s",
				 strerror(-rc));
		return rc;
	}
	rc = leases_parse_buf(fmt, buf, len, path, now, diag, out);
	free(buf);
	return rc;
}

void
leases_free(struct leases **pl)
{
	struct leases *l = *pl;
	if (l == NULL)
		return;
	free(l->v);
	free(l->slots);
	free(l->pool);
	free(l);
	*pl = NULL;
}

const struct leases_entry *
leases_find(const struct leases *l, int family, const uint8_t *addr)
{
	if (l->nslots == 0 || (family != AF_INET && family != AF_INET6))
		return NULL;
	size_t j = index_slot(l->slots, l->nslots, l->v, sizeof(*l->v), family, addr);
	return l->slots[j] != 0 ? &l->v[l->slots[j] - 1] : NULL;
}
