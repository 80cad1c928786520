/*
 * neigh: /proc/net/arp parser (see neigh.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fileio.h"
#include "hash.h"
#include "neigh.h"

#define ATF_COM_FLAG 0x2
#define ARPHRD_ETHER_TYPE 0x1
#define NFIELDS 6

struct field {
	const char *s;
	size_t len;
};

static bool
is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Splits line[0..len) at white space into at most max fields; returns the number found, or
 * max + 1 when there are more. */
static size_t
split(const char *line, size_t len, struct field *f, size_t max)
{
	size_t n = 0, i = 0;
	for (;;) {
		while (i < len && is_space(line[i]))
			i++;
		if (i == len)
			return n;
		if (n == max)
			return max + 1;
		f[n].s = line + i;
		while (i < len && !is_space(line[i]))
			i++;
		f[n].len = (size_t)(line + i - f[n].s);
		n++;
	}
}

/* "0x..." hexadecimal, as the kernel prints hardware types and flags */
static int
parse_hex(const struct field *f, uint32_t *out)
{
	if (f->len < 3 || f->len > 10 || f->s[0] != '0' || (f->s[1] != 'x' && f->s[1] != 'X'))
		return -EINVAL;
	uint32_t v = 0;
	for (size_t i = 2; i < f->len; i++) {
		char c = f->s[i];
		unsigned d;
		if (c >= '0' && c <= '9')
			d = (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			d = (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			d = (unsigned)(c - 'A' + 10);
		else
			return -EINVAL;
		v = (v << 4) | d;
	}
	*out = v;
	return 0;
}

static uint32_t
addr_key(const uint8_t *a)
{
	return ((uint32_t)a[0] << 24) | ((uint32_t)a[1] << 16) | ((uint32_t)a[2] << 8) | a[3];
}

static size_t
addr_hash(uint32_t k)
{
	return (size_t)hash_mix(k);
}

static int
build_index(struct neigh *t)
{
	size_t nslots = 8;
	while (nslots < t->n * 2)
		nslots *= 2;
	t->slots = calloc(nslots, sizeof(*t->slots));
	if (t->slots == NULL)
		return -ENOMEM;
	t->nslots = nslots;
	for (size_t i = 0; i < t->n; i++) {
		uint32_t k = addr_key(t->v[i].addr);
		size_t j = addr_hash(k) & (nslots - 1);
		bool dup = false;
		for (; t->slots[j] != 0; j = (j + 1) & (nslots - 1)) {
			if (addr_key(t->v[t->slots[j] - 1].addr) == k) {
				dup = true;
				break;
			}
		}
		if (!dup)
			t->slots[j] = (uint32_t)i + 1;
	}
	return 0;
}

const struct neigh_entry *
neigh_find(const struct neigh *t, const uint8_t *addr)
{
	if (t->nslots == 0)
		return NULL;
	uint32_t k = addr_key(addr);
	for (size_t j = addr_hash(k) & (t->nslots - 1); t->slots[j] != 0;
	     j = (j + 1) & (t->nslots - 1))
		if (addr_key(t->v[t->slots[j] - 1].addr) == k)
			return &t->v[t->slots[j] - 1];
	return NULL;
}

void
neigh_free(struct neigh **pt)
{
	struct neigh *t = *pt;
	if (t == NULL)
		return;
	free(t->v);
	free(t->slots);
	free(t);
	*pt = NULL;
}

static void
note(struct neigh *t, struct diag *diag, const char *file, int line, const char *why)
{
	t->skipped++;
	if (diag != NULL && t->skipped <= NEIGH_MAX_NOTES)
		diag_add(diag, DIAG_NOTE, file, line, 0, NULL, "skipped: %s", why);
}

int
neigh_parse_buf(const char *buf, size_t len, const char *file, struct diag *diag,
		struct neigh **out)
{
	int rc = 0;
	struct neigh *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	/* at most one entry per line: count the lines for a single allocation */
	size_t maxlines = 1;
	for (size_t i = 0; i < len; i++)
		maxlines += buf[i] == '\n';
	t->v = calloc(maxlines, sizeof(*t->v));
	if (t->v == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	size_t pos = 0;
	int line = 0;
	bool header = false;
	while (pos < len) {
		const char *l = buf + pos;
		const char *nl = memchr(l, '\n', len - pos);
		size_t llen = nl != NULL ? (size_t)(nl - l) : len - pos;
		pos += llen + (nl != NULL);
		line++;
		if (!header) {
			if (llen < 10 || memcmp(l, "IP address", 10) != 0) {
				if (diag != NULL)
					diag_add(diag, DIAG_ERROR, file, line, 0, NULL,
					         "not a /proc/net/arp table (expected the header "
					         "'IP address HW type Flags HW address Mask "
					         "Device')");
				rc = -EINVAL;
				goto cleanup;
			}
			header = true;
			continue;
		}
		struct field f[NFIELDS];
		size_t n = split(l, llen, f, NFIELDS);
		if (n == 0)
			continue;
		t->lines++;
		if (n != NFIELDS) {
			note(t, diag, file, line, "expected 6 columns");
			continue;
		}
		struct neigh_entry *e = &t->v[t->n];
		char ip[INET_ADDRSTRLEN];
		uint32_t hwtype, flags;
		if (f[0].len >= sizeof(ip)) {
			note(t, diag, file, line, "invalid ipv4 address");
			continue;
		}
		memcpy(ip, f[0].s, f[0].len);
		ip[f[0].len] = '\0';
		if (inet_pton(AF_INET, ip, e->addr) != 1) {
			note(t, diag, file, line, "invalid ipv4 address");
			continue;
		}
		if (parse_hex(&f[1], &hwtype) != 0 || parse_hex(&f[2], &flags) != 0) {
			note(t, diag, file, line, "invalid hardware type or flags");
			continue;
		}
		if (hwtype != ARPHRD_ETHER_TYPE || (flags & ATF_COM_FLAG) == 0) {
			t->incomplete++;
			continue;
		}
		if (mac_parse(f[3].s, f[3].len, &e->mac) != 0) {
			note(t, diag, file, line, "invalid hardware address");
			continue;
		}
		if (mac_is_zero(&e->mac)) {
			t->incomplete++;
			continue;
		}
		if (f[5].len >= NEIGH_IFNAMSIZ) {
			note(t, diag, file, line, "interface name too long");
			continue;
		}
		memcpy(e->dev, f[5].s, f[5].len);
		e->dev[f[5].len] = '\0';
		e->flags = flags;
		t->n++;
	}
	if (!header) {
		if (diag != NULL)
			diag_add(diag, DIAG_ERROR, file, 0, 0, NULL,
				 "empty file, not a /proc/net/arp table");
		rc = -EINVAL;
		goto cleanup;
	}
	if (diag != NULL && t->skipped > NEIGH_MAX_NOTES)
		diag_add(diag, DIAG_NOTE, file, 0, 0, NULL,
			 "skipped %zu lines in total, the first %d shown", t->skipped,
			 NEIGH_MAX_NOTES);
	rc = build_index(t);
	if (rc != 0)
		goto cleanup;
	*out = t;
	t = NULL;
cleanup:
	neigh_free(&t);
	return rc;
}

int
neigh_read_file(const char *path, struct diag *diag, struct neigh **out)
{
	char *buf = NULL;
	size_t len = 0;
	if (path == NULL)
		path = NEIGH_PROC_ARP;
	int rc = fileio_read_all(path, &buf, &len);
	if (rc != 0) {
		if (diag != NULL)
			diag_add(diag, DIAG_ERROR, path, 0, 0, NULL, "cannot read: %s",
				 strerror(-rc));
		return rc;
	}
	rc = neigh_parse_buf(buf, len, path, diag, out);
	free(buf);
	return rc;
}
