/*
 * names: canonical DNS names (see names.h).
 *
 * The wire form is lowercase and always ends with the root label. label_off[i] is the offset of
 * label i; label_off[nlabels] is the offset of the root label (len - 1), so that the suffix
 * starting at any label i in 0..nlabels is wire[label_off[i] .. len).
 */
#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "names.h"
#include "hash.h"

#define NAMES_MAX_TEXTLEN 253	/* presentation form without the trailing dot */
#define NAMES_MAX_POINTERS 127

/* absorb_label() loads 8 octets at any label start: room for 7 more after wire[] */
_Static_assert(sizeof(struct names_name) - offsetof(struct names_name, wire) >= NAMES_MAX_WIRE + 7,
	       "struct names_name too short for 8-octet loads");

static const uint8_t lower_tab[256] = {
#define R(x) x, x + 1, x + 2, x + 3, x + 4, x + 5, x + 6, x + 7
	R(0), R(8), R(16), R(24), R(32), R(40), R(48), R(56),
	64, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o',
	'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 91, 92, 93, 94, 95,
	R(96), R(104), R(112), R(120),
	R(128), R(136), R(144), R(152), R(160), R(168), R(176), R(184),
	R(192), R(200), R(208), R(216), R(224), R(232), R(240), R(248),
#undef R
};

/* 1 for the octets a name in a list or the configuration may contain (after lowercasing). */
static bool
text_char_ok(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

int
names_from_text(struct names_name *out, const char *text, size_t len, const char **why)
{
	struct names_name n;
	const uint8_t *t = (const uint8_t *)text;
	const char *reason = NULL;

	if (len == 0) {
		reason = "empty name";
		goto fail;
	}
	if (len == 1 && t[0] == '.') {
		out->wire[0] = 0;
		out->len = 1;
		out->nlabels = 0;
		out->label_off[0] = 0;
		return 0;
	}
	if (t[len - 1] == '.')
		len--;
	if (len > NAMES_MAX_TEXTLEN) {
		reason = "name too long";
		goto fail;
	}

	/* len <= 253, so the wire form (len + 2 octets) always fits in 255 */
	size_t w = 0;
	unsigned nl = 0;
	size_t i = 0;
	for (;;) {
		size_t start = i;
		while (i < len && t[i] != '.') {
			uint8_t c = lower_tab[t[i]];
			if (!text_char_ok(c)) {
				if (t[i] >= 0x80)
					reason = "non-ascii character (use punycode 'xn--')";
				else if (t[i] == '\\')
					reason = "escapes are not allowed";
				else
					reason = "invalid character";
				goto fail;
			}
			n.wire[w + 1 + (i - start)] = c;
			i++;
		}
		size_t llen = i - start;
		if (llen == 0) {
			reason = "empty label";
			goto fail;
		}
		if (llen > NAMES_MAX_LABEL) {
			reason = "label too long";
			goto fail;
		}
		n.label_off[nl++] = (uint8_t)w;
		n.wire[w] = (uint8_t)llen;
		w += 1 + llen;
		if (i == len)
			break;
		i++;	/* the dot */
	}
	n.label_off[nl] = (uint8_t)w;
	n.wire[w++] = 0;
	n.len = (uint8_t)w;
	n.nlabels = (uint8_t)nl;
	memcpy(out->wire, n.wire, w);
	out->len = n.len;
	out->nlabels = n.nlabels;
	memcpy(out->label_off, n.label_off, (size_t)nl + 1);
	return 0;

fail:
	if (why != NULL)
		*why = reason;
	return -EINVAL;
}

/* The eight octets of x with the ASCII capitals 'A'..'Z' lowercased, every other octet (0x80 and
 * above included) unchanged: lower_tab[] applied to eight octets at once. */
static inline uint64_t
lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u, high = ones * 0x80;
	uint64_t low7 = x & ~high;	/* at most 0x7f per octet: the sums below carry no further */
	uint64_t ge_a = low7 + ones * (0x80 - 'A');
	uint64_t gt_z = low7 + ones * (0x80 - 'Z' - 1);
	uint64_t upper = ge_a & ~gt_z & ~x & high;

	return x | (upper >> 2);
}

/* The one walk of a wire name at msg + *pos (pointers followed strictly backwards, at most
 * NAMES_MAX_POINTERS of them, NAMES_MAX_WIRE octets and NAMES_MAX_LABELS labels, label types
 * 0x40 and 0x80 refused). With wire non-NULL (NAMES_MAX_WIRE + 7 octets) and label_off, the
 * name is copied there lowercased; without, it is only checked. 0 with *pos past the name in
 * the message, *wire_len and *nlabels; -EBADMSG, nothing set. */
static inline int
walk_wire(const uint8_t *msg, size_t msglen, size_t *pos, uint8_t *wire, uint8_t *label_off,
	  size_t *wire_len, unsigned *nlabels)
{
	size_t p = *pos;
	size_t end = 0;		/* offset past the name in the message, once known */
	bool jumped = false;
	unsigned pointers = 0;
	size_t w = 0;
	unsigned nl = 0;

	for (;;) {
		if (p >= msglen)
			return -EBADMSG;
		uint8_t c = msg[p];
		if ((c & 0xc0) == 0xc0) {
			if (p + 1 >= msglen)
				return -EBADMSG;
			size_t target = ((size_t)(c & 0x3f) << 8) | msg[p + 1];
			/* only strictly backwards, which also rules out loops */
			if (target >= p || ++pointers > NAMES_MAX_POINTERS)
				return -EBADMSG;
			if (!jumped) {
				end = p + 2;
				jumped = true;
			}
			p = target;
			continue;
		}
		if ((c & 0xc0) != 0)
			return -EBADMSG;	/* 0x40 / 0x80: obsolete or unknown label types */
		if (c == 0) {
			if (w + 1 > NAMES_MAX_WIRE)
				return -EBADMSG;
			if (wire != NULL) {
				label_off[nl] = (uint8_t)w;
				wire[w] = 0;
			}
			w++;
			p++;
			break;
		}
		/* room for this label and the root label that must still follow */
		if (w + 1 + c + 1 > NAMES_MAX_WIRE || nl + 1 >= NAMES_MAX_LABELS)
			return -EBADMSG;
		if (p + 1 + c > msglen)
			return -EBADMSG;
		if (wire != NULL) {
			label_off[nl] = (uint8_t)w;
			wire[w] = c;
			if (p + 1 + c + 7 <= msglen) {
				/* eight octets at a time when the message goes on for 7 past the
				 * label: the last word copies up to 7 octets too many (the last at
				 * most wire[260], as w + 1 + c <= 254 here), which the next label
				 * overwrites or nothing reads */
				for (size_t k = 0; k < c; k += 8) {
					uint64_t v;
					memcpy(&v, msg + p + 1 + k, 8);
					v = lower8(v);
					memcpy(wire + w + 1 + k, &v, 8);
				}
			} else {
				for (size_t k = 0; k < c; k++)
					wire[w + 1 + k] = lower_tab[msg[p + 1 + k]];
			}
		}
		nl++;
		w += 1 + (size_t)c;
		p += 1 + (size_t)c;
	}
	*pos = jumped ? end : p;
	*wire_len = w;
	*nlabels = nl;
	return 0;
}

int
names_from_wire(struct names_name *out, const uint8_t *msg, size_t msglen, size_t *pos)
{
	/* room for lowercasing the last label eight octets at a time (see walk_wire) */
	uint8_t wire[NAMES_MAX_WIRE + 7];
	uint8_t label_off[NAMES_MAX_LABELS];
	size_t w;
	unsigned nl;

	int rc = walk_wire(msg, msglen, pos, wire, label_off, &w, &nl);
	if (rc != 0)
		return rc;
	memcpy(out->wire, wire, w);
	out->len = (uint8_t)w;
	out->nlabels = (uint8_t)nl;
	memcpy(out->label_off, label_off, (size_t)nl + 1);
	return 0;
}

int
names_check_wire(const uint8_t *msg, size_t msglen, size_t *pos, size_t *wire_len)
{
	unsigned nl;

	return walk_wire(msg, msglen, pos, NULL, NULL, wire_len, &nl);
}

bool
names_match_wire(const struct names_name *n, const uint8_t *msg, size_t msglen, size_t pos)
{
	size_t len = n->len, k = 0;

	if (pos > msglen || msglen - pos < len)
		return false;
	/* n's octets are lowercase and its length octets below 0x40: lowering msg's is enough */
	for (; k + 8 <= len; k += 8) {
		uint64_t a, b;
		memcpy(&a, msg + pos + k, 8);
		memcpy(&b, n->wire + k, 8);
		if (lower8(a) != b)
			return false;
	}
	for (; k < len; k++)
		if (lower_tab[msg[pos + k]] != n->wire[k])
			return false;
	return true;
}

static size_t
wire_to_text(const uint8_t *wire, char *buf)
{
	size_t o = 0;
	const uint8_t *p = wire;

	if (*p == 0) {
		buf[0] = '.';
		buf[1] = '\0';
		return 1;
	}
	while (*p != 0) {
		uint8_t llen = *p++;
		if (o > 0)
			buf[o++] = '.';
		for (uint8_t k = 0; k < llen; k++, p++) {
			uint8_t c = *p;
			if (c < 0x21 || c > 0x7e || c == '.' || c == '\\' || c == '"') {
				buf[o++] = '\\';
				buf[o++] = (char)('0' + c / 100);
				buf[o++] = (char)('0' + (c / 10) % 10);
				buf[o++] = (char)('0' + c % 10);
			} else {
				buf[o++] = (char)c;
			}
		}
	}
	buf[o] = '\0';
	return o;
}

size_t
names_to_text(const struct names_name *n, char *buf)
{
	return wire_to_text(n->wire, buf);
}

size_t
names_suffix_to_text(const struct names_name *n, unsigned i, char *buf)
{
	if (i > n->nlabels)
		i = n->nlabels;
	return wire_to_text(n->wire + n->label_off[i], buf);
}

bool
names_equal(const struct names_name *a, const struct names_name *b)
{
	return a->len == b->len && memcmp(a->wire, b->wire, a->len) == 0;
}

/*
 * The hash of a suffix is a chain over its labels from the root leftwards, so that a suffix
 * hashes the same on its own or inside a longer name. Each label is absorbed 8 octets at a time
 * (length octet included) with a multiply-rotate step; every output is finalised separately
 * (hash_mix).
 */
#define K1 0x9e3779b97f4a7c15ull
#define K2 0xc2b2ae3d27d4eb4full

static inline uint64_t
rotl64(uint64_t x, unsigned r)
{
	return (x << r) | (x >> (64 - r));
}

static inline uint64_t
absorb(uint64_t s, uint64_t v)
{
	s ^= v * K2;
	s = rotl64(s, 29) * K1;
	return s;
}

/*
 * Absorbs the label at wire offset off of n (length octet included), 8 octets at a time. The
 * last load may run past the label, and past wire[] into the rest of *n (len, nlabels and
 * label_off follow it, so it stays inside the object); the extra octets are masked off.
 */
static inline uint64_t
absorb_label(uint64_t s, const struct names_name *n, size_t off)
{
	const uint8_t *base = (const uint8_t *)n + offsetof(struct names_name, wire);
	size_t len = (size_t)base[off] + 1;
	size_t k = 0;
	uint64_t v;
	for (; k + 8 <= len; k += 8) {
		memcpy(&v, base + off + k, 8);
		s = absorb(s, v);
	}
	if (k < len) {
		size_t rest = len - k;
		memcpy(&v, base + off + k, 8);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
		v &= ~(uint64_t)0 >> (64 - 8 * rest);
#else
		v &= ~(uint64_t)0 << (64 - 8 * rest);
#endif
		s = absorb(s, v ^ ((uint64_t)rest << 59));
	}
	return s;
}

void
names_hash_suffixes(const struct names_name *n, uint64_t seed, uint64_t *h)
{
	uint64_t s = seed ^ K1;
	h[n->nlabels] = hash_mix(s);
	for (unsigned i = n->nlabels; i-- > 0;) {
		s = absorb_label(s, n, n->label_off[i]);
		h[i] = hash_mix(s);
	}
}

uint64_t
names_hash(const struct names_name *n, uint64_t seed)
{
	uint64_t s = seed ^ K1;
	for (unsigned i = n->nlabels; i-- > 0;)
		s = absorb_label(s, n, n->label_off[i]);
	return hash_mix(s);
}
