/*
 * dnsmsg_reply: an upstream reply judged (is it an answer at all?) and reduced to the answer the
 * cache stores and the client gets.
 *
 * Judging: every record must parse and the rcode must be an answer (NOERROR, NXDOMAIN, or
 * YXDOMAIN for a DNAME substitution that overflows); anything else (SERVFAIL, REFUSED, FORMERR,
 * NOTIMP, an extended rcode) is a failed attempt for the upstream client.
 *
 * Reducing keeps only the answer chain for the question (the records a downstream cache may
 * trust), rewritten without compression except for the question name:
 *   - answer: walking from the question name, the records of the question's type at each chain
 *     name, the CNAME at it and any DNAME above it (at most CHAIN_MAX_LINKS links, loops stop);
 *     with DO, the RRSIGs at the same owners that cover those types;
 *   - authority: when the final name has no record of the question's type (NXDOMAIN, NODATA,
 *     CNAME to NODATA), the SOA whose owner is the final name or one of its ancestors; with DO,
 *     its RRSIGs and the NSEC/NSEC3 records with their RRSIGs (the denial proofs, which are
 *     also needed for wildcard answers, so they are kept for positive answers too);
 *   - additional: nothing (the upstream's OPT is read for the extended rcode and dropped).
 *   Everything else (out-of-bailiwick answer records, NS, glue) is dropped.
 * Names in RDATA are decompressed for the RFC 1035 types that may be compressed (NS, MD, MF,
 * CNAME, SOA, MB, MG, MR, PTR, MINFO, MX) and DNAME; other RDATA is copied as it is (RFC 3597:
 * it must not hold compression pointers). Owner names and those RDATA names are written in
 * lowercase (the DNSSEC canonical form, RFC 4034 6.2), a chain owner equal to the question as a
 * pointer to it.
 *
 * Caching figures (RFC 2308):
 *   - positive: the minimum TTL of the kept answer records (and of the SOA, when a NOERROR
 *     answer with records also carries one: a CNAME leading to NODATA);
 *   - negative (NXDOMAIN, or NOERROR without answer records): min(SOA TTL, SOA MINIMUM) of the
 *     authority SOA; without an SOA the answer is served but not cached (RFC 2308 5);
 *   - only NOERROR and NXDOMAIN are cacheable; not TC; TTLs above 2^31-1 count as 0.
 */
#include "dnsmsg.h"

#include <errno.h>
#include <string.h>

#include "dnsmsg_int.h"

#define CHAIN_MAX_LINKS 16
#define RCODE_YXDOMAIN	6
#define MAX_RECORDS	(DNSMSG_MAX_LEN / 11 + 1)	/* a record takes at least 11 octets */

/* What a scan of a whole reply found. */
struct scan {
	struct names_name qname;	/* only when asked for */
	uint16_t flags, qtype, qclass;
	unsigned count[3];
	size_t sect[3];			/* offset of the first record of each section */
	unsigned ext_rcode;		/* upper 8 bits of the first OPT's TTL */
};

/* SOA RDATA: two names then five 32-bit fields; returns MINIMUM, or -1 when malformed. */
static int64_t
soa_minimum(const uint8_t *pkt, const struct dnsmsg_rr *rr)
{
	size_t p = rr->rdata;

	if (dnsmsg_skip_name(pkt, rr->end, &p) != 0 || dnsmsg_skip_name(pkt, rr->end, &p) != 0 ||
	    p + 20 != rr->end)
		return -1;
	return dnsmsg_rd32(pkt + rr->end - 4);
}

/* RDATA with names that may be compressed: how many names, after how many fixed octets. */
static bool
rdata_names(uint16_t type, unsigned *lead, unsigned *names)
{
	*lead = 0;
	*names = 1;
	switch (type) {
	case 2: case 3: case 4: case 5: case 7: case 8: case 9: case 12: case DNSMSG_TYPE_DNAME:
		return true;	/* NS MD MF CNAME MB MG MR PTR: one name */
	case DNSMSG_TYPE_SOA:
	case 14:		/* MINFO */
		*names = 2;
		return true;
	case 15:		/* MX */
		*lead = 2;
		return true;
	default:
		return false;
	}
}

/* The names in the RDATA of rr decompress (as put_record will need them to). */
static bool
rdata_names_ok(const uint8_t *pkt, const struct dnsmsg_rr *rr)
{
	unsigned lead, names;
	size_t p = rr->rdata;

	if (!rdata_names(rr->type, &lead, &names))
		return true;
	p += lead;
	if (p > rr->end)
		return false;
	for (unsigned k = 0; k < names; k++) {
		size_t wl;
		if (names_check_wire(pkt, rr->end, &p, &wl) != 0)
			return false;
	}
	return p <= rr->end;
}

/* Whether the name at pos is a compression pointer to the question (at DNSMSG_HEADER_LEN): once
 * scan_reply has checked the question, it reads as the question's name. */
static bool
to_question(const uint8_t *pkt, size_t len, size_t pos)
{
	return pos + 1 < len && pkt[pos] == (0xc0 | (DNSMSG_HEADER_LEN >> 8)) &&
	       pkt[pos + 1] == (DNSMSG_HEADER_LEN & 0xff);
}

/* Checks the header, the question (uncompressed) and that every record parses (with the names
 * in its RDATA, for the types that may compress them). The names are only checked, not copied
 * (names_check_wire), except the question's into s->qname when want_qname. */
static int
scan_reply(const uint8_t *pkt, size_t len, struct scan *s, bool want_qname)
{
	size_t pos = DNSMSG_HEADER_LEN, qlen;
	bool opt_seen = false;

	if (len < DNSMSG_HEADER_LEN || len > DNSMSG_MAX_LEN || dnsmsg_rd16(pkt + 4) != 1)
		return -EBADMSG;
	s->flags = dnsmsg_rd16(pkt + 2);
	for (unsigned k = 0; k < 3; k++)
		s->count[k] = dnsmsg_rd16(pkt + 6 + 2 * k);
	if (want_qname) {
		if (names_from_wire(&s->qname, pkt, len, &pos) != 0)
			return -EBADMSG;
		qlen = s->qname.len;
	} else if (names_check_wire(pkt, len, &pos, &qlen) != 0) {
		return -EBADMSG;
	}
	if (pos - DNSMSG_HEADER_LEN != qlen || pos + 4 > len)
		return -EBADMSG;
	s->qtype = dnsmsg_rd16(pkt + pos);
	s->qclass = dnsmsg_rd16(pkt + pos + 2);
	pos += 4;
	s->ext_rcode = 0;
	for (unsigned k = 0; k < 3; k++) {
		s->sect[k] = pos;
		for (unsigned i = 0; i < s->count[k]; i++) {
			struct dnsmsg_rr rr;
			size_t p = pos, wl;
			/* an owner that points at the question (checked above) is a name */
			if ((!to_question(pkt, len, pos) && names_check_wire(pkt, len, &p, &wl) != 0) ||
			    dnsmsg_read_rr(pkt, len, &pos, &rr) != 0 || !rdata_names_ok(pkt, &rr))
				return -EBADMSG;
			if (k == 1 && rr.type == DNSMSG_TYPE_SOA && soa_minimum(pkt, &rr) < 0)
				return -EBADMSG;
			if (k == 2 && rr.type == DNSMSG_TYPE_OPT && !opt_seen) {
				opt_seen = true;
				s->ext_rcode = rr.ttl >> 24;
			}
		}
	}
	/* extended rcodes are relayed (BADCOOKIE = 23); one above 255 (none is assigned) would not
	 * fit the answer's rcode and wrap to another, NOERROR included: not an answer */
	if (s->ext_rcode > 0x0f)
		return -EBADMSG;
	return 0;
}

int
dnsmsg_judge_reply(const uint8_t *pkt, size_t len)
{
	struct scan s;

	if (scan_reply(pkt, len, &s, false) != 0)
		return -EBADMSG;
	unsigned rcode = (s.flags & 0x0f) | (s.ext_rcode << 4);
	if (rcode != DNSMSG_RCODE_NOERROR && rcode != DNSMSG_RCODE_NXDOMAIN && rcode != RCODE_YXDOMAIN)
		return -EPROTO;
	return 0;
}

static inline uint32_t
min32(uint32_t a, uint32_t b)
{
	return a < b ? a : b;
}

static inline uint32_t
ttl_value(uint32_t ttl)
{
	return ttl > DNSMSG_TTL_MAX ? 0 : ttl;
}

static inline void
bit_set(uint64_t *bits, unsigned i)
{
	bits[i / 64] |= (uint64_t)1 << (i % 64);
}

static inline bool
bit_get(const uint64_t *bits, unsigned i)
{
	return (bits[i / 64] >> (i % 64)) & 1;
}

/* The type an RRSIG covers (0 when its RDATA is too short). */
static uint16_t
rrsig_covered(const uint8_t *pkt, const struct dnsmsg_rr *rr)
{
	return rr->rdlen >= 2 ? dnsmsg_rd16(pkt + rr->rdata) : 0;
}

/* The owner of the record at pos, without a copy when it is the question (s->qname): a pointer
 * to it, as in nearly every reply, or its octets in any case. Else read into *buf; NULL when it
 * does not parse. */
static const struct names_name *
read_owner(const uint8_t *pkt, size_t len, size_t pos, const struct scan *s,
	   struct names_name *buf)
{
	if (to_question(pkt, len, pos))
		return &s->qname;
	if (names_match_wire(&s->qname, pkt, len, pos))
		return &s->qname;
	size_t p = pos;
	return names_from_wire(buf, pkt, len, &p) == 0 ? buf : NULL;
}

/* The answer chain: marks in keep[] the answer records that belong to it and returns the final
 * name in *last; *found says whether a record of the question's type was kept. */
static void
walk_chain(const uint8_t *pkt, size_t len, const struct scan *s, bool do_bit, uint64_t *keep,
	   struct names_name *last, bool *found)
{
	struct names_name seen[CHAIN_MAX_LINKS + 1];
	unsigned nseen = 0;

	*found = false;
	seen[nseen++] = s->qname;
	for (;;) {
		const struct names_name *cur = &seen[nseen - 1];
		struct names_name next;
		bool have_cname = false, have_dname = false;
		size_t pos = s->sect[0];

		for (unsigned i = 0; i < s->count[0]; i++) {
			struct names_name obuf, target;
			struct dnsmsg_rr rr;
			size_t p;
			const struct names_name *owner = read_owner(pkt, len, pos, s, &obuf);
			if (owner == NULL || dnsmsg_read_rr(pkt, len, &pos, &rr) != 0)
				break;	/* not reached: scan_reply checked every record */
			if (rr.rclass != s->qclass)
				continue;
			bool at = names_equal(owner, cur);
			bool above = !at && dnsmsg_is_ancestor(owner, cur);
			uint16_t t = rr.type == DNSMSG_TYPE_RRSIG && rr.type != s->qtype
					     ? rrsig_covered(pkt, &rr)
					     : 0;
			if (at && rr.type == s->qtype) {
				bit_set(keep, i);
				*found = true;
			} else if (at && rr.type == DNSMSG_TYPE_CNAME) {
				p = rr.rdata;
				if (names_from_wire(&target, pkt, rr.end, &p) != 0 || p != rr.end)
					continue;
				bit_set(keep, i);
				if (!have_cname)
					next = target;
				have_cname = true;
			} else if (above && rr.type == DNSMSG_TYPE_DNAME) {
				p = rr.rdata;
				if (names_from_wire(&target, pkt, rr.end, &p) != 0 || p != rr.end)
					continue;
				bit_set(keep, i);
				if (!have_cname && !have_dname &&
				    dnsmsg_dname_substitute(cur, owner, &target, &next) == 0)
					have_dname = true;
			} else if (do_bit && t != 0 &&
				   ((at && (t == s->qtype || t == DNSMSG_TYPE_CNAME)) ||
				    (above && t == DNSMSG_TYPE_DNAME))) {
				bit_set(keep, i);
			}
		}
		/* a CNAME question is answered by the CNAME itself: no link is followed */
		if (s->qtype == DNSMSG_TYPE_CNAME || (!have_cname && !have_dname) ||
		    nseen > CHAIN_MAX_LINKS)
			break;
		bool loop = false;
		for (unsigned k = 0; k < nseen; k++)
			loop = loop || names_equal(&seen[k], &next);
		if (loop)
			break;
		seen[nseen++] = next;
	}
	*last = seen[nseen - 1];
}

/* Whether authority record rr (owner) is kept: see the top of the file. */
static bool
keep_authority(const uint8_t *pkt, const struct dnsmsg_rr *rr, const struct names_name *owner,
	       const struct names_name *last, bool negative, bool do_bit, uint16_t qclass)
{
	if (rr->rclass != qclass)
		return false;
	bool zone = names_equal(owner, last) || dnsmsg_is_ancestor(owner, last);
	uint16_t t = rr->type == DNSMSG_TYPE_RRSIG ? rrsig_covered(pkt, rr) : rr->type;

	if (rr->type == DNSMSG_TYPE_RRSIG && !do_bit)
		return false;
	if (t == DNSMSG_TYPE_SOA)
		return negative && zone;
	return do_bit && (t == DNSMSG_TYPE_NSEC || t == DNSMSG_TYPE_NSEC3);
}

/* Writes record rr of pkt (owner already parsed) into w, owner as a pointer to the question
 * when it is the question name. Records its TTL offset in t. */
static int
put_record(struct dnsmsg_wbuf *w, const uint8_t *pkt, const struct dnsmsg_rr *rr,
	   const struct names_name *owner, const struct names_name *qname,
	   struct dnsmsg_answer *t, bool *overflow)
{
	unsigned lead, names;

	if (names_equal(owner, qname))
		dnsmsg_put16(w, DNSMSG_PTR_QNAME);
	else
		dnsmsg_put(w, owner->wire, owner->len);
	dnsmsg_put16(w, rr->type);
	dnsmsg_put16(w, rr->rclass);
	if (!w->err) {
		if (t->nttl < DNSMSG_MAX_TTLS && w->len <= UINT16_MAX)
			t->ttl_off[t->nttl++] = (uint16_t)w->len;
		else
			*overflow = true;
	}
	dnsmsg_put32(w, rr->ttl);
	if (!rdata_names(rr->type, &lead, &names)) {
		dnsmsg_put16(w, rr->rdlen);
		dnsmsg_put(w, pkt + rr->rdata, rr->rdlen);
		return 0;
	}
	size_t rdlen_at = w->len, p = rr->rdata + lead;
	if (p > rr->end)
		return -EBADMSG;
	dnsmsg_put16(w, 0);
	dnsmsg_put(w, pkt + rr->rdata, lead);
	for (unsigned k = 0; k < names; k++) {
		struct names_name n;
		if (names_from_wire(&n, pkt, rr->end, &p) != 0)
			return -EBADMSG;
		dnsmsg_put(w, n.wire, n.len);
	}
	dnsmsg_put(w, pkt + p, rr->end - p);	/* SOA's five numbers */
	if (!w->err) {
		size_t n = w->len - rdlen_at - 2;
		if (n > UINT16_MAX)
			return -ENOSPC;
		dnsmsg_wr16(w->p + rdlen_at, (uint16_t)n);
	}
	return 0;
}

int
dnsmsg_answer_from_reply(const uint8_t *pkt, size_t len, bool do_bit, uint8_t *wire, size_t cap,
			 struct dnsmsg_answer *out)
{
	uint64_t keep[(MAX_RECORDS + 63) / 64];
	struct dnsmsg_wbuf w = { wire, cap, 0, false };
	struct dnsmsg_answer t;
	struct names_name last;
	struct scan s;
	bool found, have_soa = false, overflow = false;
	uint32_t pos_ttl = UINT32_MAX, neg_ttl = UINT32_MAX;
	unsigned kept[2] = { 0, 0 };
	int err;

	if (scan_reply(pkt, len, &s, true) != 0 || s.count[0] > MAX_RECORDS)
		return -EBADMSG;	/* (every record parsed: the count cannot exceed the bitmap) */
	memset(keep, 0, sizeof(keep));
	walk_chain(pkt, len, &s, do_bit, keep, &last, &found);
	uint8_t rcode = (uint8_t)((s.flags & 0x0f) | (s.ext_rcode << 4));
	bool negative_final = !found;

	/* header (ID 0, counts patched below) and the canonical question */
	dnsmsg_put16(&w, 0);
	dnsmsg_put16(&w, s.flags);
	dnsmsg_put16(&w, 1);
	dnsmsg_put16(&w, 0);
	dnsmsg_put16(&w, 0);
	dnsmsg_put16(&w, 0);
	dnsmsg_put(&w, s.qname.wire, s.qname.len);
	dnsmsg_put16(&w, s.qtype);
	dnsmsg_put16(&w, s.qclass);
	t.nttl = 0;
	for (unsigned k = 0; k < 2; k++) {
		size_t pos = s.sect[k];
		for (unsigned i = 0; i < s.count[k]; i++) {
			struct names_name obuf;
			struct dnsmsg_rr rr;
			const struct names_name *owner = read_owner(pkt, len, pos, &s, &obuf);
			if (owner == NULL || dnsmsg_read_rr(pkt, len, &pos, &rr) != 0)
				return -EBADMSG;
			if (k == 0 ? !bit_get(keep, i)
				   : !keep_authority(pkt, &rr, owner, &last, negative_final, do_bit,
						     s.qclass))
				continue;
			err = put_record(&w, pkt, &rr, owner, &s.qname, &t, &overflow);
			if (err != 0)
				return err;
			kept[k]++;
			uint32_t ttl = ttl_value(rr.ttl);
			if (k == 0) {
				pos_ttl = min32(pos_ttl, ttl);
			} else if (rr.type == DNSMSG_TYPE_SOA) {
				int64_t minimum = soa_minimum(pkt, &rr);
				if (minimum < 0)
					return -EBADMSG;
				neg_ttl = min32(neg_ttl, min32(ttl, ttl_value((uint32_t)minimum)));
				have_soa = true;
			}
		}
	}
	if (w.err || w.len > DNSMSG_MAX_LEN)
		return -ENOSPC;
	dnsmsg_wr16(wire + 6, (uint16_t)kept[0]);
	dnsmsg_wr16(wire + 8, (uint16_t)kept[1]);

	t.wire = wire;
	t.len = (uint16_t)w.len;
	t.rcode = rcode;
	t.negative = t.rcode == DNSMSG_RCODE_NXDOMAIN ||
		     (t.rcode == DNSMSG_RCODE_NOERROR && kept[0] == 0);
	if (have_soa)
		t.ttl = min32(pos_ttl, neg_ttl);
	else
		t.ttl = t.negative ? 0 : pos_ttl;
	t.cacheable = (t.rcode == DNSMSG_RCODE_NOERROR || t.rcode == DNSMSG_RCODE_NXDOMAIN) &&
		      !(s.flags & DNSMSG_FLAG_TC) && !overflow && (!t.negative || have_soa);
	if (t.ttl == UINT32_MAX)
		t.ttl = 0;
	*out = t;
	return 0;
}
