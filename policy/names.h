/*
 * names: canonical DNS names.
 *
 * One form everywhere: lowercase wire format (length-prefixed labels ending with the root label),
 * with the offset of each label precomputed so that suffixes can be probed without rescanning.
 * A struct names_name is a fixed-size value (no allocation): it lives on the stack or in a
 * per-query slot.
 */
#ifndef VETO_NAMES_H
#define VETO_NAMES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NAMES_MAX_WIRE	 255	/* octets including the root label */
#define NAMES_MAX_LABEL	 63
#define NAMES_MAX_LABELS 128	/* 127 one-octet labels + root */
#define NAMES_MAX_TEXT	 1024	/* worst-case presentation form (\DDD escapes) + NUL */

struct names_name {
	uint8_t wire[NAMES_MAX_WIRE];	/* lowercase; the root name is the single octet 0 */
	uint8_t len;			/* octets used in wire, >= 1 */
	uint8_t nlabels;		/* labels excluding the root; 0 for the root name */
	uint8_t label_off[NAMES_MAX_LABELS]; /* offset in wire of label i (0 = leftmost) */
};

/*
 * Parses a name from presentation text as found in list files and the configuration:
 * case-insensitive, trailing dot optional, letters, digits, '-' and '_' only, labels 1..63
 * octets, at most 253 characters; IDN only as punycode ("xn--"). "." alone is the root.
 * Returns 0, or -EINVAL with *why set to a static reason ("label too long", ...).
 * len is the text length (text need not be NUL-terminated).
 */
int names_from_text(struct names_name *out, const char *text, size_t len, const char **why);

/*
 * Reads a (possibly compressed) name from a DNS message starting at *pos, lowercasing it.
 * Follows compression pointers only backwards, at most 127 of them, and rejects names longer
 * than 255 octets. On success *pos is the offset just past the name in the message (past the
 * first pointer, if any). Returns 0 or -EBADMSG. Any octet value is accepted inside labels.
 */
int names_from_wire(struct names_name *out, const uint8_t *msg, size_t msglen, size_t *pos);

/*
 * Whether names_from_wire would accept the name at *pos, checked label by label without copying
 * or lowercasing it (the same rules: pointers only backwards, at most 127, at most 255 octets
 * and 127 labels). On success *pos is what names_from_wire would leave and *wire_len the length
 * of the decompressed name. Returns 0 or -EBADMSG (nothing written).
 */
int names_check_wire(const uint8_t *msg, size_t msglen, size_t *pos, size_t *wire_len);

/* Writes the presentation form, lowercase, without trailing dot ("." for the root), escaping
 * '.', '\\', '"' and octets outside 0x21..0x7e as \DDD. Returns the length (without NUL);
 * buf must have NAMES_MAX_TEXT octets. */
size_t names_to_text(const struct names_name *n, char *buf);

/* Same as names_to_text for the suffix starting at label i (0 <= i <= nlabels). */
size_t names_suffix_to_text(const struct names_name *n, unsigned i, char *buf);

/* True when the n->len octets at msg[pos..] (msglen octets in all) are n's wire form, ASCII
 * case ignored: the uncompressed form of n, which names_from_wire would read as n. */
bool names_match_wire(const struct names_name *n, const uint8_t *msg, size_t msglen, size_t pos);

/* True when the two names are equal (they are canonical, so this is a byte compare). */
bool names_equal(const struct names_name *a, const struct names_name *b);

/*
 * Seeded hash of the suffix of n starting at label i. names_hash_suffixes fills h[i] for every
 * i in 0..nlabels in one right-to-left pass (h must have nlabels+1 slots): the hash of a name
 * is the same whether computed on its own or as a suffix of a longer name.
 */
void names_hash_suffixes(const struct names_name *n, uint64_t seed, uint64_t *h);
uint64_t names_hash(const struct names_name *n, uint64_t seed);

#endif
