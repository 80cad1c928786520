/*
 * mac: EUI-48 addresses and nibble prefixes (see mac.h).
 */
#include <errno.h>
#include <string.h>

#include "mac.h"

int
mac_hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool
all_hex(const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (mac_hexval(s[i]) < 0)
			return false;
	return true;
}

/* Reads n nibbles into v (shifted left as they come). */
static uint64_t
read_nibbles(const char *s, size_t n, uint64_t v)
{
	for (size_t i = 0; i < n; i++)
		v = (v << 4) | (uint64_t)mac_hexval(s[i]);
	return v;
}

/* Separated groups: sep is ':' or '-', at most six groups of 1..2 digits. When strict, every
 * group but the last has two digits and a single-digit last group is one nibble. Fills *v with
 * the value read and *nibbles with its length in nibbles. */
static int
parse_groups(const char *s, size_t len, bool strict, uint64_t *v, unsigned *nibbles)
{
	char sep = 0;
	for (size_t i = 0; i < len; i++) {
		if (s[i] == ':' || s[i] == '-') {
			sep = s[i];
			break;
		}
	}
	if (sep == 0)
		return -EINVAL;
	uint64_t acc = 0;
	unsigned n = 0, groups = 0;
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < len && s[i] != sep)
			i++;
		size_t glen = i - start;
		bool last = i == len;
		if (glen < 1 || glen > 2 || !all_hex(s + start, glen) || ++groups > MAC_LEN)
			return -EINVAL;
		if (strict && glen == 1 && last) {
			acc = read_nibbles(s + start, 1, acc);
			n += 1;
		} else {
			if (strict && glen == 1)
				return -EINVAL;
			acc = (acc << 8) | read_nibbles(s + start, glen, 0);
			n += 2;
		}
		if (last)
			break;
		i++;	/* the separator; a trailing one leaves an empty group: rejected above */
	}
	*v = acc;
	*nibbles = n;
	return 0;
}

int
mac_parse(const char *text, size_t len, struct mac *out)
{
	uint64_t v = 0;
	if (len == 12 && all_hex(text, 12)) {
		v = read_nibbles(text, 12, 0);
	} else if (len == 14 && text[4] == '.' && text[9] == '.') {
		if (!all_hex(text, 4) || !all_hex(text + 5, 4) || !all_hex(text + 10, 4))
			return -EINVAL;
		v = read_nibbles(text, 4, 0);
		v = read_nibbles(text + 5, 4, v);
		v = read_nibbles(text + 10, 4, v);
	} else {
		unsigned n;
		if (len > 17 || parse_groups(text, len, false, &v, &n) != 0 || n != 12)
			return -EINVAL;
	}
	mac_from_u64(v, out);
	return 0;
}

char *
mac_format(const struct mac *m, char *buf)
{
	static const char digits[] = "0123456789abcdef";
	char *p = buf;
	for (unsigned i = 0; i < MAC_LEN; i++) {
		if (i > 0)
			*p++ = ':';
		*p++ = digits[m->b[i] >> 4];
		*p++ = digits[m->b[i] & 15];
	}
	*p = '\0';
	return buf;
}

bool
mac_is_randomised(const struct mac *m)
{
	return (m->b[0] & 0x02) != 0;
}

bool
mac_is_multicast(const struct mac *m)
{
	return (m->b[0] & 0x01) != 0;
}

bool
mac_is_zero(const struct mac *m)
{
	return mac_to_u64(m) == 0;
}

bool
mac_equal(const struct mac *a, const struct mac *b)
{
	return memcmp(a->b, b->b, MAC_LEN) == 0;
}

uint64_t
mac_to_u64(const struct mac *m)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < MAC_LEN; i++)
		v = (v << 8) | m->b[i];
	return v;
}

void
mac_from_u64(uint64_t v, struct mac *out)
{
	for (int i = MAC_LEN - 1; i >= 0; i--) {
		out->b[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
}

static uint64_t
prefix_mask(unsigned bits)
{
	return bits == 0 ? 0 : (~UINT64_C(0) << (48 - bits)) & ((UINT64_C(1) << 48) - 1);
}

int
mac_prefix_parse(const char *text, size_t len, struct mac_prefix *out)
{
	unsigned slash_bits = 0;
	const char *slash = memchr(text, '/', len);
	if (slash != NULL) {
		size_t nlen = len - (size_t)(slash - text) - 1;
		if (nlen < 1 || nlen > 2)
			return -EINVAL;
		for (size_t i = 0; i < nlen; i++) {
			if (slash[1 + i] < '0' || slash[1 + i] > '9')
				return -EINVAL;
			slash_bits = slash_bits * 10 + (unsigned)(slash[1 + i] - '0');
		}
		if (slash_bits < 1 || slash_bits > 48)
			return -EINVAL;
		len = (size_t)(slash - text);
	}

	uint64_t v;
	unsigned nibbles;
	if (len >= 1 && len <= 12 && all_hex(text, len)) {
		v = read_nibbles(text, len, 0);
		nibbles = (unsigned)len;
	} else if (parse_groups(text, len, true, &v, &nibbles) == 0) {
		/* nibbles counted above */
	} else {
		struct mac m;
		if (mac_parse(text, len, &m) != 0)
			return -EINVAL;
		v = mac_to_u64(&m);
		nibbles = 12;
	}
	unsigned bits = nibbles * 4;
	v <<= 48 - bits;
	if (slash != NULL) {
		if (slash_bits > bits)
			return -EINVAL;
		bits = slash_bits;
		v &= prefix_mask(bits);	/* host bits ignored, as for IP prefixes */
	}
	mac_from_u64(v, &out->mac);
	out->bits = bits;
	return 0;
}

bool
mac_prefix_match(const struct mac_prefix *p, const struct mac *m)
{
	uint64_t mask = prefix_mask(p->bits);
	return (mac_to_u64(m) & mask) == (mac_to_u64(&p->mac) & mask);
}

char *
mac_prefix_format(const struct mac_prefix *p, char *buf)
{
	static const char digits[] = "0123456789abcdef";
	unsigned bits = p->bits;
	unsigned nibbles = bits % 4 == 0 ? bits / 4 : 12;
	char *q = buf;
	for (unsigned i = 0; i < nibbles; i++) {
		if (i > 0 && i % 2 == 0)
			*q++ = ':';
		uint8_t o = p->mac.b[i / 2];
		*q++ = digits[i % 2 == 0 ? o >> 4 : o & 15];
	}
	if (bits % 4 != 0) {
		*q++ = '/';
		if (bits >= 10)
			*q++ = (char)('0' + bits / 10);
		*q++ = (char)('0' + bits % 10);
	}
	*q = '\0';
	return buf;
}
