/*
 * dnsmsg_int.h: wire helpers shared by dnsmsg.c, dnsmsg_answer.c, cache.c and their tests.
 */
#ifndef VETO_DNSMSG_INT_H
#define VETO_DNSMSG_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnsmsg.h"

#define DNSMSG_FLAG_QR	    0x8000
#define DNSMSG_OPCODE_MASK  0x7800
#define DNSMSG_FLAG_AA	    0x0400
#define DNSMSG_FLAG_TC	    0x0200
#define DNSMSG_FLAG_RD	    0x0100
#define DNSMSG_FLAG_RA	    0x0080
#define DNSMSG_FLAG_AD	    0x0020
#define DNSMSG_FLAG_CD	    0x0010
#define DNSMSG_OPCODE(f)    (((f) >> 11) & 0x0f)
#define DNSMSG_OPCODE_QUERY 0

#define DNSMSG_TYPE_A	  1
#define DNSMSG_TYPE_CNAME 5
#define DNSMSG_TYPE_SOA	  6
#define DNSMSG_TYPE_AAAA  28
#define DNSMSG_TYPE_DNAME 39
#define DNSMSG_TYPE_OPT	  41
#define DNSMSG_TYPE_RRSIG 46
#define DNSMSG_TYPE_NSEC  47
#define DNSMSG_TYPE_NSEC3 50
#define DNSMSG_TYPE_HINFO 13
#define DNSMSG_TYPE_ANY	  255

#define DNSMSG_EDNS_DO	    0x8000u	/* in the OPT TTL field */
#define DNSMSG_EDNS_OPT_EDE 15		/* option code, RFC 8914 */
#define DNSMSG_PTR_QNAME    0xc00c	/* compression pointer to the question name */
#define DNSMSG_OPT_LEN	    11		/* an OPT record without options */
#define DNSMSG_TTL_MAX	    0x7fffffffu	/* larger TTLs mean 0 (RFC 2181 8) */

static inline uint16_t
dnsmsg_rd16(const uint8_t *p)
{
	return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t
dnsmsg_rd32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline void
dnsmsg_wr16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void
dnsmsg_wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* One resource record located in a message (offsets into it). */
struct dnsmsg_rr {
	size_t owner, ttl_off, rdata, end;
	uint16_t type, rclass, rdlen;
	uint32_t ttl;
};

/* Skips a name without following pointers. 0 or -EBADMSG; *pos only on success. */
int dnsmsg_skip_name(const uint8_t *pkt, size_t len, size_t *pos);
/* Reads the record at *pos (owner skipped, not validated). 0 or -EBADMSG. */
int dnsmsg_read_rr(const uint8_t *pkt, size_t len, size_t *pos, struct dnsmsg_rr *rr);

/* True when suffix is a proper ancestor of name (a suffix on a label boundary, shorter). */
bool dnsmsg_is_ancestor(const struct names_name *suffix, const struct names_name *name);
/* DNAME substitution (RFC 6672): the labels of name below owner (an ancestor of name), followed
 * by target. 0 or -EBADMSG (the result would be too long: YXDOMAIN). */
int dnsmsg_dname_substitute(const struct names_name *name, const struct names_name *owner,
			    const struct names_name *target, struct names_name *out);

/* A bounded writer: once something does not fit, err stays set and nothing more is written. */
struct dnsmsg_wbuf {
	uint8_t *p;
	size_t cap, len;
	bool err;
};

void dnsmsg_put(struct dnsmsg_wbuf *w, const void *data, size_t n);
void dnsmsg_put16(struct dnsmsg_wbuf *w, uint16_t v);
void dnsmsg_put32(struct dnsmsg_wbuf *w, uint32_t v);
/* Reply flags: QR, RA, the client's opcode, RD and CD, plus keep (AA, TC, AD...) and rcode. */
uint16_t dnsmsg_reply_flags(const struct dnsmsg_query *q, uint16_t keep, uint8_t rcode);
/* Header with the client's ID and the question echoed in the client's case. */
void dnsmsg_put_header(struct dnsmsg_wbuf *w, const struct dnsmsg_query *q, uint16_t flags,
		       uint16_t an, uint16_t ns, uint16_t ar);
/* Our OPT record: size DNSMSG_EDNS_UDP, the extended part of rcode, the client's DO bit, and
 * unless ede is DNSMSG_EDE_NONE an Extended DNS Error ede with ede_text (may be NULL). */
void dnsmsg_put_opt(struct dnsmsg_wbuf *w, const struct dnsmsg_query *q, uint8_t rcode, int ede,
		    const char *ede_text);

#endif
