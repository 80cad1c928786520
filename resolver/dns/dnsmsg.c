/*
 * dnsmsg: client queries in, replies out (RFC 1035, RFC 6891, RFC 8914), without allocation.
 *
 * Upstream answers (normalisation, CNAME chains, serving a stored answer) are in
 * dnsmsg_answer.c; the shared wire helpers are in dnsmsg_int.h.
 */
#include "dnsmsg.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <ldns/ldns.h>

#include "check.h"
#include "dnsmsg_int.h"

/* The SOA of synthesised negative answers: "veto.invalid. hostmaster.veto.invalid." */
static const uint8_t soa_mname[] = "\004veto\007invalid";	/* + the root octet (NUL) */
static const uint8_t soa_rname_label[] = "\012hostmaster";	/* + pointer to mname */
#define SOA_SERIAL  1
#define SOA_REFRESH 3600
#define SOA_RETRY   600
#define SOA_EXPIRE  86400

#define EDE_MAX_TEXT 128

int
dnsmsg_skip_name(const uint8_t *pkt, size_t len, size_t *pos)
{
	size_t p = *pos;

	for (;;) {
		if (p >= len)
			return -EBADMSG;
		uint8_t c = pkt[p];
		if (c == 0) {
			p++;
			break;
		}
		if ((c & 0xc0) == 0xc0) {
			if (p + 2 > len)
				return -EBADMSG;
			p += 2;
			break;
		}
		if ((c & 0xc0) != 0)
			return -EBADMSG;
		p += 1 + (size_t)c;
	}
	*pos = p;
	return 0;
}

int
dnsmsg_read_rr(const uint8_t *pkt, size_t len, size_t *pos, struct dnsmsg_rr *rr)
{
	size_t p = *pos;
	struct dnsmsg_rr r;

	r.owner = p;
	if (dnsmsg_skip_name(pkt, len, &p) != 0)
		return -EBADMSG;
	if (p + 10 > len)
		return -EBADMSG;
	r.type = dnsmsg_rd16(pkt + p);
	r.rclass = dnsmsg_rd16(pkt + p + 2);
	r.ttl_off = p + 4;
	r.ttl = dnsmsg_rd32(pkt + p + 4);
	r.rdlen = dnsmsg_rd16(pkt + p + 8);
	r.rdata = p + 10;
	if (r.rdata + r.rdlen > len)
		return -EBADMSG;
	r.end = r.rdata + r.rdlen;
	*rr = r;
	*pos = r.end;
	return 0;
}

/* Records the client-identifying options (MAC, ECS); a malformed one is ignored. */
static void
opt_identity(const uint8_t *o, uint16_t code, size_t olen, struct dnsmsg_query *t)
{
	if (code == DNSMSG_OPT_MAC && olen == 6) {
		memcpy(t->edns_mac, o, 6);
		t->has_edns_mac = true;
		return;
	}
	if (code != DNSMSG_OPT_ECS || olen < 4)
		return;
	uint16_t fam = dnsmsg_rd16(o);
	unsigned prefix = o[2], max = fam == 1 ? 32 : fam == 2 ? 128 : 0;
	size_t alen = olen - 4;
	if (max == 0 || prefix > max || alen != (prefix + 7) / 8)
		return;
	memset(t->ecs_addr, 0, sizeof(t->ecs_addr));
	memcpy(t->ecs_addr, o + 4, alen);
	if (prefix % 8 != 0)
		t->ecs_addr[alen - 1] &= (uint8_t)(0xff << (8 - prefix % 8));
	t->ecs_family = fam == 1 ? AF_INET : AF_INET6;
	t->ecs_prefix = (uint8_t)prefix;
	t->has_ecs = true;
}

/* Walks the options of an OPT RDATA: they must fill it exactly. */
static bool
opt_rdata_ok(const uint8_t *pkt, const struct dnsmsg_rr *rr, struct dnsmsg_query *t)
{
	size_t p = rr->rdata;

	while (p < rr->end) {
		if (p + 4 > rr->end)
			return false;
		size_t olen = dnsmsg_rd16(pkt + p + 2);
		if (p + 4 + olen <= rr->end)
			opt_identity(pkt + p + 4, dnsmsg_rd16(pkt + p), olen, t);
		p += 4 + olen;
	}
	return p == rr->end;
}

static void
query_init(struct dnsmsg_query *t, const uint8_t *pkt)
{
	t->id = dnsmsg_rd16(pkt);
	t->flags = dnsmsg_rd16(pkt + 2);
	t->qtype = 0;
	t->qclass = 0;
	t->qname.wire[0] = 0;
	t->qname.len = 1;
	t->qname.nlabels = 0;
	t->qname.label_off[0] = 0;
	t->qname_orig[0] = 0;
	t->has_question = false;
	t->edns = false;
	t->do_bit = false;
	t->edns_version = 0;
	t->edns_udp = DNSMSG_MIN_UDP;
	t->rcode = 0;
	t->has_edns_mac = false;
	t->has_ecs = false;
	t->ecs_family = 0;
	t->ecs_prefix = 0;
}

/* Reads the additional section of a query, looking for its OPT record. Returns an rcode. */
static uint8_t
parse_additional(const uint8_t *pkt, size_t len, size_t pos, unsigned ar, struct dnsmsg_query *t)
{
	bool seen = false;

	for (unsigned i = 0; i < ar; i++) {
		struct dnsmsg_rr rr;
		if (dnsmsg_read_rr(pkt, len, &pos, &rr) != 0)
			return DNSMSG_RCODE_FORMERR;
		if (rr.type != DNSMSG_TYPE_OPT)
			continue;
		if (seen || pkt[rr.owner] != 0)
			return DNSMSG_RCODE_FORMERR;	/* two OPTs, or an OPT not owned by root */
		seen = true;
		t->edns = true;
		t->edns_udp = rr.rclass < DNSMSG_MIN_UDP ? DNSMSG_MIN_UDP : rr.rclass;
		t->edns_version = (uint8_t)(rr.ttl >> 16);
		t->do_bit = (rr.ttl & DNSMSG_EDNS_DO) != 0;
		if (!opt_rdata_ok(pkt, &rr, t))
			return DNSMSG_RCODE_FORMERR;
	}
	if (t->edns && t->edns_version > 0)
		return DNSMSG_RCODE_BADVERS;
	return 0;
}

int
dnsmsg_parse_query(const uint8_t *pkt, size_t len, struct dnsmsg_query *q)
{
	struct dnsmsg_query t;
	size_t pos = DNSMSG_HEADER_LEN;
	uint8_t rcode = 0;

	if (len < DNSMSG_HEADER_LEN)
		return -EBADMSG;
	if (dnsmsg_rd16(pkt + 2) & DNSMSG_FLAG_QR)
		return -EBADMSG;
	if (len > DNSMSG_MAX_LEN)
		len = DNSMSG_MAX_LEN;
	query_init(&t, pkt);
	unsigned qd = dnsmsg_rd16(pkt + 4);
	unsigned an = dnsmsg_rd16(pkt + 6);
	unsigned ns = dnsmsg_rd16(pkt + 8);
	unsigned ar = dnsmsg_rd16(pkt + 10);

	if (DNSMSG_OPCODE(t.flags) != DNSMSG_OPCODE_QUERY)
		rcode = DNSMSG_RCODE_NOTIMP;
	if (qd == 0 && rcode == 0)
		rcode = DNSMSG_RCODE_FORMERR;
	for (unsigned i = 0; i < qd; i++) {
		size_t start = pos;
		if (i == 0) {
			/* the first name cannot be compressed: a pointer could only go into the
			 * header, so require it uncompressed, which also gives qname_orig */
			if (names_from_wire(&t.qname, pkt, len, &pos) != 0 ||
			    pos - start != t.qname.len || pos + 4 > len)
				goto bad_question;
			memcpy(t.qname_orig, pkt + start, t.qname.len);
			t.qtype = dnsmsg_rd16(pkt + pos);
			t.qclass = dnsmsg_rd16(pkt + pos + 2);
			t.has_question = true;
		} else if (dnsmsg_skip_name(pkt, len, &pos) != 0 || pos + 4 > len) {
			goto bad_question;
		}
		pos += 4;
	}
	if (qd > 1) {
		/* only one question per message is meaningful: answer without any */
		t.has_question = false;
		if (rcode == 0)
			rcode = DNSMSG_RCODE_FORMERR;
	}
	if (t.has_question && t.qtype == DNSMSG_TYPE_OPT && rcode == 0)
		rcode = DNSMSG_RCODE_FORMERR;	/* RFC 6891 6.1.1: OPT is not a question */
	/* records in the answer and authority sections of a query are skipped (bounded by len:
	 * every record takes at least 11 octets) */
	for (unsigned i = 0; i < an + ns; i++) {
		struct dnsmsg_rr rr;
		if (dnsmsg_read_rr(pkt, len, &pos, &rr) != 0) {
			if (rcode == 0)
				rcode = DNSMSG_RCODE_FORMERR;
			goto done;
		}
	}
	uint8_t r = parse_additional(pkt, len, pos, ar, &t);
	if (rcode == 0)
		rcode = r;
	goto done;

bad_question:
	query_init(&t, pkt);	/* answered without a question, and without OPT: not reached */
	if (rcode == 0)
		rcode = DNSMSG_RCODE_FORMERR;
done:
	t.rcode = rcode;
	memcpy(q, &t, sizeof(t));
	return 0;
}

size_t
dnsmsg_max_reply(const struct dnsmsg_query *q, bool tcp)
{
	if (tcp)
		return DNSMSG_MAX_LEN;
	if (!q->edns)
		return DNSMSG_MIN_UDP;
	return q->edns_udp < DNSMSG_MIN_UDP ? DNSMSG_MIN_UDP : q->edns_udp;
}

/* --- writing --- */

void
dnsmsg_put(struct dnsmsg_wbuf *w, const void *data, size_t n)
{
	if (n == 0)
		return;
	if (w->err || n > w->cap - w->len) {
		w->err = true;
		return;
	}
	memcpy(w->p + w->len, data, n);
	w->len += n;
}

void
dnsmsg_put16(struct dnsmsg_wbuf *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };
	dnsmsg_put(w, b, 2);
}

void
dnsmsg_put32(struct dnsmsg_wbuf *w, uint32_t v)
{
	uint8_t b[4] = { (uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v };
	dnsmsg_put(w, b, 4);
}

uint16_t
dnsmsg_reply_flags(const struct dnsmsg_query *q, uint16_t keep, uint8_t rcode)
{
	return (uint16_t)(DNSMSG_FLAG_QR | DNSMSG_FLAG_RA | (rcode & 0x0f) |
			  (q->flags & (DNSMSG_OPCODE_MASK | DNSMSG_FLAG_RD | DNSMSG_FLAG_CD)) | keep);
}

void
dnsmsg_put_header(struct dnsmsg_wbuf *w, const struct dnsmsg_query *q, uint16_t flags,
		  uint16_t an, uint16_t ns, uint16_t ar)
{
	dnsmsg_put16(w, q->id);
	dnsmsg_put16(w, flags);
	dnsmsg_put16(w, q->has_question ? 1 : 0);
	dnsmsg_put16(w, an);
	dnsmsg_put16(w, ns);
	dnsmsg_put16(w, ar);
	if (q->has_question) {
		dnsmsg_put(w, q->qname_orig, q->qname.len);
		dnsmsg_put16(w, q->qtype);
		dnsmsg_put16(w, q->qclass);
	}
}

/* Keeps a text cut at max octets valid UTF-8 by not splitting a multi-octet sequence. */
static size_t
utf8_cut(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((uint8_t)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

void
dnsmsg_put_opt(struct dnsmsg_wbuf *w, const struct dnsmsg_query *q, uint8_t rcode, int ede,
	       const char *ede_text)
{
	size_t tlen = ede >= 0 && ede_text != NULL ? utf8_cut(ede_text, EDE_MAX_TEXT) : 0;
	uint32_t ttl = ((uint32_t)(rcode >> 4) << 24) | (q->do_bit ? DNSMSG_EDNS_DO : 0);

	dnsmsg_put(w, "", 1);	/* root owner */
	dnsmsg_put16(w, DNSMSG_TYPE_OPT);
	dnsmsg_put16(w, DNSMSG_EDNS_UDP);
	dnsmsg_put32(w, ttl);
	if (ede < 0) {
		dnsmsg_put16(w, 0);
		return;
	}
	dnsmsg_put16(w, (uint16_t)(4 + 2 + tlen));
	dnsmsg_put16(w, DNSMSG_EDNS_OPT_EDE);
	dnsmsg_put16(w, (uint16_t)(2 + tlen));
	dnsmsg_put16(w, (uint16_t)ede);
	dnsmsg_put(w, ede_text, tlen);
}

size_t
dnsmsg_write_error_ede(const struct dnsmsg_query *q, uint8_t rcode, int ede, const char *text,
		       uint8_t *buf, size_t cap)
{
	struct dnsmsg_wbuf w = { buf, cap, 0, false };

	if (rcode > 15 && !q->edns)
		rcode = DNSMSG_RCODE_SERVFAIL;	/* an extended rcode needs an OPT record */
	dnsmsg_put_header(&w, q, dnsmsg_reply_flags(q, 0, rcode), 0, 0, q->edns ? 1 : 0);
	if (q->edns)
		dnsmsg_put_opt(&w, q, rcode, ede, text);
	return w.err ? 0 : w.len;
}

size_t
dnsmsg_write_error(const struct dnsmsg_query *q, uint8_t rcode, uint8_t *buf, size_t cap)
{
	return dnsmsg_write_error_ede(q, rcode, DNSMSG_EDE_NONE, NULL, buf, cap);
}

size_t
dnsmsg_write_any(const struct dnsmsg_query *q, uint8_t *buf, size_t cap)
{
	static const uint8_t hinfo[] = "\007RFC8482\000";	/* CPU "RFC8482", OS "" */
	struct dnsmsg_wbuf w = { buf, cap, 0, false };

	if (!q->has_question)
		return dnsmsg_write_error(q, DNSMSG_RCODE_FORMERR, buf, cap);
	dnsmsg_put_header(&w, q, dnsmsg_reply_flags(q, 0, DNSMSG_RCODE_NOERROR), 1, 0,
			  q->edns ? 1 : 0);
	dnsmsg_put16(&w, DNSMSG_PTR_QNAME);
	dnsmsg_put16(&w, DNSMSG_TYPE_HINFO);
	dnsmsg_put16(&w, q->qclass);
	dnsmsg_put32(&w, DNSMSG_ANY_TTL);
	dnsmsg_put16(&w, (uint16_t)(sizeof(hinfo) - 1));
	dnsmsg_put(&w, hinfo, sizeof(hinfo) - 1);
	if (q->edns)
		dnsmsg_put_opt(&w, q, DNSMSG_RCODE_NOERROR, DNSMSG_EDE_NONE, NULL);
	return w.err ? 0 : w.len;
}

/* A negative answer's SOA: owner = the question name (pointer), TTL and minimum = ttl. */
static void
put_soa(struct dnsmsg_wbuf *w, const struct dnsmsg_query *q, uint32_t ttl)
{
	dnsmsg_put16(w, DNSMSG_PTR_QNAME);
	dnsmsg_put16(w, DNSMSG_TYPE_SOA);
	dnsmsg_put16(w, q->qclass);
	dnsmsg_put32(w, ttl);
	dnsmsg_put16(w, (uint16_t)(sizeof(soa_mname) + sizeof(soa_rname_label) - 1 + 2 + 20));
	size_t mname = w->len;
	dnsmsg_put(w, soa_mname, sizeof(soa_mname));
	dnsmsg_put(w, soa_rname_label, sizeof(soa_rname_label) - 1);
	dnsmsg_put16(w, (uint16_t)(0xc000 | (mname & 0x3fff)));
	dnsmsg_put32(w, SOA_SERIAL);
	dnsmsg_put32(w, SOA_REFRESH);
	dnsmsg_put32(w, SOA_RETRY);
	dnsmsg_put32(w, SOA_EXPIRE);
	dnsmsg_put32(w, ttl);
}

static void
put_address(struct dnsmsg_wbuf *w, const struct dnsmsg_query *q, uint32_t ttl, const uint8_t *addr,
	    uint16_t alen)
{
	dnsmsg_put16(w, DNSMSG_PTR_QNAME);
	dnsmsg_put16(w, q->qtype);
	dnsmsg_put16(w, q->qclass);
	dnsmsg_put32(w, ttl);
	dnsmsg_put16(w, alen);
	dnsmsg_put(w, addr, alen);
}

size_t
dnsmsg_write_blocked(const struct dnsmsg_query *q, enum config_action action,
		     const struct config_block *b, const char *extra_text, uint8_t *buf, size_t cap)
{
	struct dnsmsg_wbuf w = { buf, cap, 0, false };
	uint8_t rcode = DNSMSG_RCODE_NOERROR;
	const uint8_t *addr = NULL;
	uint16_t alen = 0;
	bool soa = false;

	REQUIRE(b != NULL);
	if (!q->has_question)
		return dnsmsg_write_error(q, DNSMSG_RCODE_FORMERR, buf, cap);
	switch (action) {
	case CONFIG_ACTION_SINKHOLE:
		if (q->qtype == DNSMSG_TYPE_A) {
			addr = b->ipv4;
			alen = 4;
		} else if (q->qtype == DNSMSG_TYPE_AAAA) {
			addr = b->ipv6;
			alen = 16;
		} else {
			soa = true;
		}
		break;
	case CONFIG_ACTION_NXDOMAIN:
		rcode = DNSMSG_RCODE_NXDOMAIN;
		soa = true;
		break;
	case CONFIG_ACTION_NODATA:
		soa = true;
		break;
	case CONFIG_ACTION_REFUSED:
	default:
		rcode = DNSMSG_RCODE_REFUSED;
		break;
	}
	dnsmsg_put_header(&w, q, dnsmsg_reply_flags(q, 0, rcode), addr != NULL ? 1 : 0,
			  soa ? 1 : 0, q->edns ? 1 : 0);
	if (addr != NULL)
		put_address(&w, q, b->ttl, addr, alen);
	if (soa)
		put_soa(&w, q, b->ttl);
	if (q->edns)
		dnsmsg_put_opt(&w, q, rcode, DNSMSG_EDE_BLOCKED, extra_text);
	return w.err ? 0 : w.len;
}

size_t
dnsmsg_write_upstream_query(const struct dnsmsg_query *q, uint16_t id, uint8_t *buf, size_t cap)
{
	struct dnsmsg_wbuf w = { buf, cap, 0, false };

	if (!q->has_question)
		return 0;
	dnsmsg_put16(&w, id);
	dnsmsg_put16(&w, (uint16_t)(q->flags & (DNSMSG_FLAG_RD | DNSMSG_FLAG_CD)));
	dnsmsg_put16(&w, 1);
	dnsmsg_put16(&w, 0);
	dnsmsg_put16(&w, 0);
	dnsmsg_put16(&w, 1);
	dnsmsg_put(&w, q->qname.wire, q->qname.len);
	dnsmsg_put16(&w, q->qtype);
	dnsmsg_put16(&w, q->qclass);
	dnsmsg_put(&w, "", 1);
	dnsmsg_put16(&w, DNSMSG_TYPE_OPT);
	dnsmsg_put16(&w, DNSMSG_EDNS_UDP);
	dnsmsg_put32(&w, q->do_bit ? DNSMSG_EDNS_DO : 0);
	dnsmsg_put16(&w, 0);
	return w.err ? 0 : w.len;
}
