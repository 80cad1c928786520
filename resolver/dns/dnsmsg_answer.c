/*
 * dnsmsg_answer: upstream replies checked, reduced to a cacheable answer, walked for CNAME/DNAME
 * chains, and served back to clients with their ID, flags, question case and aged TTLs.
 *
 * An answer keeps the upstream message bytes as they are (so compression pointers stay valid)
 * minus the OPT record. OPT is dropped by cutting the message at it: everything after it in the
 * additional section goes too (TSIG and SIG(0) must come last anyway, and nothing can point
 * into records that follow a pointer's own record, since pointers only go backwards).
 *
 * Caching figures (RFC 2308):
 *   - positive: the minimum TTL of the answer section records (and of the SOA, when a
 *     NOERROR answer with records also carries one: a CNAME leading to NODATA);
 *   - negative (NXDOMAIN, or NOERROR without answer records): min(SOA TTL, SOA MINIMUM) of the
 *     authority SOA; without an SOA the answer is served but not cached (RFC 2308 5);
 *   - only NOERROR and NXDOMAIN are cacheable; not TC; TTLs above 2^31-1 count as 0.
 */
#include "dnsmsg.h"

#include <errno.h>
#include <string.h>

#include "dnsmsg_int.h"

#define CHAIN_MAX_LINKS 16

int
dnsmsg_check_reply(const uint8_t *pkt, size_t len, uint16_t id, const struct dnsmsg_query *q,
		   bool *tc)
{
	struct names_name n;
	size_t pos = DNSMSG_HEADER_LEN;

	if (len < DNSMSG_HEADER_LEN || !q->has_question)
		return -EBADMSG;
	uint16_t flags = dnsmsg_rd16(pkt + 2);
	if (dnsmsg_rd16(pkt) != id || !(flags & DNSMSG_FLAG_QR) ||
	    DNSMSG_OPCODE(flags) != DNSMSG_OPCODE_QUERY || dnsmsg_rd16(pkt + 4) != 1)
		return -EBADMSG;
	/* the question as sent (uncompressed), compared in place; else read as any name */
	if (names_match_wire(&q->qname, pkt, len, pos))
		pos += q->qname.len;
	else if (names_from_wire(&n, pkt, len, &pos) != 0 || !names_equal(&n, &q->qname))
		return -EBADMSG;
	if (pos + 4 > len || dnsmsg_rd16(pkt + pos) != q->qtype ||
	    dnsmsg_rd16(pkt + pos + 2) != q->qclass)
		return -EBADMSG;
	*tc = (flags & DNSMSG_FLAG_TC) != 0;
	return 0;
}

static inline uint32_t
ttl_value(uint32_t ttl)
{
	return ttl > DNSMSG_TTL_MAX ? 0 : ttl;
}

bool
dnsmsg_is_ancestor(const struct names_name *suffix, const struct names_name *name)
{
	if (suffix->nlabels >= name->nlabels)
		return false;
	size_t off = name->label_off[name->nlabels - suffix->nlabels];
	return (size_t)name->len - off == suffix->len &&
	       memcmp(name->wire + off, suffix->wire, suffix->len) == 0;
}

int
dnsmsg_dname_substitute(const struct names_name *name, const struct names_name *owner,
		 const struct names_name *target, struct names_name *out)
{
	uint8_t buf[2 * NAMES_MAX_WIRE];
	size_t prefix = name->label_off[name->nlabels - owner->nlabels];
	size_t pos = 0;

	if (prefix + target->len > NAMES_MAX_WIRE)
		return -EBADMSG;	/* YXDOMAIN: the result would be too long */
	memcpy(buf, name->wire, prefix);
	memcpy(buf + prefix, target->wire, target->len);
	return names_from_wire(out, buf, prefix + target->len, &pos);
}

/* Finds the next link from cur in the answer section. 0 and *next, or -ENOENT. */
static int
chain_next(const struct dnsmsg_answer *a, size_t start, unsigned an, uint16_t qclass,
	   const struct names_name *cur, struct names_name *next)
{
	size_t pos = start;

	for (unsigned i = 0; i < an; i++) {
		struct names_name owner, target;
		struct dnsmsg_rr rr;
		size_t p = pos;
		if (dnsmsg_read_rr(a->wire, a->len, &pos, &rr) != 0)
			return -ENOENT;
		/* the owner is only read (decompressed) for a link: most answers have none */
		if (rr.rclass != qclass ||
		    (rr.type != DNSMSG_TYPE_CNAME && rr.type != DNSMSG_TYPE_DNAME))
			continue;
		if (names_from_wire(&owner, a->wire, a->len, &p) != 0)
			return -ENOENT;
		bool cname = rr.type == DNSMSG_TYPE_CNAME;
		if (cname ? !names_equal(&owner, cur) : !dnsmsg_is_ancestor(&owner, cur))
			continue;
		p = rr.rdata;
		if (names_from_wire(&target, a->wire, rr.end, &p) != 0 || p != rr.end)
			continue;
		if (cname) {
			*next = target;
			return 0;
		}
		if (dnsmsg_dname_substitute(cur, &owner, &target, next) == 0)
			return 0;
	}
	return -ENOENT;
}

int
dnsmsg_answer_chain(const struct dnsmsg_answer *a, const struct dnsmsg_query *q,
		    dnsmsg_chain_cb cb, void *arg)
{
	struct names_name seen[CHAIN_MAX_LINKS + 1];
	size_t pos = DNSMSG_HEADER_LEN;
	unsigned nseen = 0;

	if (a->len < DNSMSG_HEADER_LEN || dnsmsg_rd16(a->wire + 4) != 1 || !q->has_question)
		return 0;
	unsigned an = dnsmsg_rd16(a->wire + 6);
	if (dnsmsg_skip_name(a->wire, a->len, &pos) != 0 || pos + 4 > a->len)
		return 0;
	pos += 4;
	seen[nseen++] = q->qname;
	while (nseen <= CHAIN_MAX_LINKS) {
		struct names_name *next = &seen[nseen];
		if (chain_next(a, pos, an, q->qclass, &seen[nseen - 1], next) != 0)
			break;
		for (unsigned i = 0; i < nseen; i++)
			if (names_equal(&seen[i], next))
				return 0;	/* a loop: every name was already visited */
		int rc = cb(arg, next);
		if (rc != 0)
			return rc;
		nseen++;
	}
	return 0;
}

size_t
dnsmsg_write_answer(const struct dnsmsg_answer *a, const struct dnsmsg_query *q, uint32_t age_s,
		    size_t max_len, uint8_t *buf, size_t cap)
{
	size_t qend = DNSMSG_HEADER_LEN + (size_t)q->qname.len + 4;
	uint8_t rcode = a->rcode;

	/* the answer must be for this question (it is, when keyed by it): else SERVFAIL */
	if (!q->has_question || a->len < qend || dnsmsg_rd16(a->wire + 4) != 1 ||
	    memcmp(a->wire + DNSMSG_HEADER_LEN, q->qname.wire, q->qname.len) != 0)
		return dnsmsg_write_error(q, DNSMSG_RCODE_SERVFAIL, buf, cap);
	if (rcode > 15 && !q->edns)
		rcode = DNSMSG_RCODE_SERVFAIL;

	uint16_t upflags = dnsmsg_rd16(a->wire + 2);
	uint16_t keep = upflags & (DNSMSG_FLAG_AA | DNSMSG_FLAG_TC);
	/* AD only for clients that asked for it with DO or AD (RFC 6840 5.8) */
	if (q->do_bit || (q->flags & DNSMSG_FLAG_AD))
		keep |= upflags & DNSMSG_FLAG_AD;
	size_t limit = max_len < cap ? max_len : cap;
	size_t need = (size_t)a->len + (q->edns ? DNSMSG_OPT_LEN : 0);

	if (need > limit) {
		struct dnsmsg_wbuf w = { buf, cap, 0, false };
		dnsmsg_put_header(&w, q, dnsmsg_reply_flags(q, keep | DNSMSG_FLAG_TC, rcode), 0, 0,
				  q->edns ? 1 : 0);
		if (q->edns)
			dnsmsg_put_opt(&w, q, rcode, DNSMSG_EDE_NONE, NULL);
		return w.err ? 0 : w.len;
	}

	memcpy(buf, a->wire, a->len);
	dnsmsg_wr16(buf, q->id);
	dnsmsg_wr16(buf + 2, dnsmsg_reply_flags(q, keep, rcode));
	memcpy(buf + DNSMSG_HEADER_LEN, q->qname_orig, q->qname.len);
	for (unsigned i = 0; i < a->nttl; i++) {
		size_t off = a->ttl_off[i];
		if (off + 4 > a->len)
			continue;
		uint32_t ttl = ttl_value(dnsmsg_rd32(buf + off));
		dnsmsg_wr32(buf + off, ttl > age_s ? ttl - age_s : 0);
	}
	if (q->edns) {
		struct dnsmsg_wbuf w = { buf, cap, a->len, false };
		dnsmsg_put_opt(&w, q, rcode, DNSMSG_EDE_NONE, NULL);
		dnsmsg_wr16(buf + 10, (uint16_t)(dnsmsg_rd16(buf + 10) + 1));
	}
	return need;
}
