/*
 * dnsmsg: DNS wire format on the query path, without allocation.
 *
 * The hot path (parse a client query, synthesise a blocked or error answer, serve a cached
 * answer) is a small bounds-checked reader/writer over caller-provided buffers: ldns_wire2pkt()
 * allocates dozens of objects per packet, which the hot path cannot afford. ldns is used where
 * it does the job without per-query cost: type and rcode mnemonics (ldns_rr_descript,
 * ldns_lookup_by_id) and /etc/resolv.conf.
 *
 * Nothing here keeps a pointer into an input buffer: what a query keeps is copied.
 */
#ifndef VETO_DNSMSG_H
#define VETO_DNSMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "names.h"

#define DNSMSG_HEADER_LEN  12
#define DNSMSG_MIN_UDP	   512
#define DNSMSG_EDNS_UDP	   1232		/* what we advertise, to clients and upstreams */
#define DNSMSG_MAX_LEN	   65535

#define DNSMSG_RCODE_NOERROR  0
#define DNSMSG_RCODE_FORMERR  1
#define DNSMSG_RCODE_SERVFAIL 2
#define DNSMSG_RCODE_NXDOMAIN 3
#define DNSMSG_RCODE_NOTIMP   4
#define DNSMSG_RCODE_REFUSED  5
#define DNSMSG_RCODE_BADVERS  16	/* extended rcode, needs OPT */

#define DNSMSG_EDE_NONE			(-1)
#define DNSMSG_EDE_BLOCKED		15	/* RFC 8914 */
#define DNSMSG_EDE_NO_REACHABLE_AUTHORITY 22
#define DNSMSG_EDE_NETWORK_ERROR	23

#define DNSMSG_QTYPE_ANY 255
#define DNSMSG_ANY_TTL	 3600		/* TTL of the RFC 8482 answer to ANY */

/* A parsed client query: everything a reply needs, copied out of the receive buffer. */
struct dnsmsg_query {
	uint16_t id;
	uint16_t flags;			/* the client's header flags word (RD, CD, AD, opcode...) */
	uint16_t qtype;
	uint16_t qclass;
	struct names_name qname;	/* canonical (lowercase) */
	uint8_t qname_orig[NAMES_MAX_WIRE]; /* the name as the client wrote it (case kept),
					       uncompressed wire; length = qname.len */
	bool has_question;		/* false when the question could not be read */
	bool edns;			/* the client sent an OPT record */
	bool do_bit;			/* DNSSEC OK */
	uint8_t edns_version;
	uint16_t edns_udp;		/* client's advertised size, clamped to >= 512 */
	uint8_t rcode;			/* 0, or the error to answer with (FORMERR, NOTIMP, BADVERS) */
	/* EDNS options that identify the client behind a forwarder (honoured only from
	 * devices.trusted_forwarders): the MAC option of dnsmasq --add-mac (65001, 6 octets) and
	 * EDNS Client Subnet (RFC 7871; address bits past the source prefix are zero) */
	bool has_edns_mac;
	uint8_t edns_mac[6];
	bool has_ecs;
	uint8_t ecs_family;		/* AF_INET or AF_INET6 */
	uint8_t ecs_prefix;		/* source prefix length */
	uint8_t ecs_addr[16];
};

#define DNSMSG_OPT_ECS	    8
#define DNSMSG_OPT_MAC	    65001	/* dnsmasq --add-mac: the client's 6-octet MAC */

/*
 * Parses a client query. Returns:
 *   0         q is filled; if q->rcode != 0 the caller answers with dnsmsg_write_error(q->rcode)
 *             (FORMERR for a bad question, QDCOUNT != 1, trailing garbage in the OPT; NOTIMP for
 *             opcodes other than QUERY; BADVERS for EDNS version > 0);
 *   -EBADMSG  drop silently (shorter than a header, or QR=1: a response sent to a server).
 */
int dnsmsg_parse_query(const uint8_t *pkt, size_t len, struct dnsmsg_query *q);

/* The most a reply to q may take on the given transport (UDP: 512 without EDNS, else the
 * advertised size capped at 65535; TCP: 65535). */
size_t dnsmsg_max_reply(const struct dnsmsg_query *q, bool tcp);

/*
 * Reply writers: write a complete reply into buf (cap octets) and return its length, or 0 when
 * buf is too small. They copy the client's ID, opcode, RD and CD, set QR and RA, echo the
 * question with the client's case, and append an OPT record when the client sent one.
 */
size_t dnsmsg_write_error(const struct dnsmsg_query *q, uint8_t rcode, uint8_t *buf, size_t cap);
/* The same with an Extended DNS Error (RFC 8914) code ede (DNSMSG_EDE_NONE: none) and text (may
 * be NULL) when the client sent EDNS. */
size_t dnsmsg_write_error_ede(const struct dnsmsg_query *q, uint8_t rcode, int ede,
			      const char *text, uint8_t *buf, size_t cap);

/* The answer to a question of type ANY, without asking anyone (RFC 8482 4.2): one synthesised
 * HINFO record, CPU "RFC8482" and OS "", TTL DNSMSG_ANY_TTL. */
size_t dnsmsg_write_any(const struct dnsmsg_query *q, uint8_t *buf, size_t cap);

/* A locally decided answer for a blocked name, action as policy_decide() resolved it.
 * SINKHOLE: A -> b->ipv4, AAAA -> b->ipv6, other types NODATA; NXDOMAIN; NODATA; REFUSED (and
 * anything else). TTL b->ttl on the records and on the synthesised SOA of negative answers.
 * When the client sent EDNS0 an Extended DNS Error 15 (Blocked) is added with extra_text (e.g.
 * "blocked by list 'xiaomi'", may be NULL). */
size_t dnsmsg_write_blocked(const struct dnsmsg_query *q, enum config_action action,
			    const struct config_block *b, const char *extra_text, uint8_t *buf,
			    size_t cap);

/*
 * An upstream answer reduced to what the cache stores and the client gets: the message without
 * its OPT record, ID 0, with the offset of every record's TTL so that TTLs can be decremented
 * in place, and the figures needed to cache it.
 */
#define DNSMSG_MAX_TTLS 256
struct dnsmsg_answer {
	uint8_t *wire;			/* caller-provided or cache-owned storage */
	uint16_t len;
	uint16_t nttl;			/* records whose TTL is patched (at most DNSMSG_MAX_TTLS;
					   an answer with more records is not cached) */
	uint16_t ttl_off[DNSMSG_MAX_TTLS];
	uint32_t ttl;			/* cache lifetime: min TTL of the answer records, or for
					   negative answers min(SOA TTL, SOA minimum) (RFC 2308) */
	uint8_t rcode;
	bool negative;			/* NXDOMAIN or NODATA */
	bool cacheable;			/* NOERROR/NXDOMAIN, not TC, TTL offsets all recorded,
					   and a negative answer has an SOA (RFC 2308 5) */
};
/* The question in wire is stored lowercase; rcode includes the OPT's extended bits. */

/*
 * Checks an upstream reply against the query sent (id, and the question q: same name ignoring
 * case, type and class) and that it is a response (QR=1) with a full header. Returns 0 when
 * acceptable, -EBADMSG otherwise. *tc is set when the reply is truncated.
 */
int dnsmsg_check_reply(const uint8_t *pkt, size_t len, uint16_t id, const struct dnsmsg_query *q,
		       bool *tc);

/*
 * Judges a checked upstream reply: 0 when it is an answer (every record parses; rcode NOERROR,
 * NXDOMAIN or YXDOMAIN), -EBADMSG when something does not parse, -EPROTO for any other rcode
 * (SERVFAIL, REFUSED, FORMERR, NOTIMP...: the server failed, another one may answer).
 */
int dnsmsg_judge_reply(const uint8_t *pkt, size_t len);

/* Reduces a checked upstream reply to the answer chain of its question (see dnsmsg_reply.c:
 * the CNAME/DNAME chain and the records of the question's type, for negative answers the SOA;
 * with do_bit their RRSIGs and the NSEC/NSEC3 proofs; nothing else) into wire (cap octets).
 * 0 or -EBADMSG (malformed records) / -ENOSPC. */
int dnsmsg_answer_from_reply(const uint8_t *pkt, size_t len, bool do_bit, uint8_t *wire,
			     size_t cap, struct dnsmsg_answer *out);

/*
 * Walks the CNAME/DNAME chain in the answer section of a, starting at q's name, calling cb for
 * each target name in order; stops when cb returns non-zero and returns that value (0 when the
 * whole chain was visited). Bounded (at most 16 links, loops stop).
 */
typedef int (*dnsmsg_chain_cb)(void *arg, const struct names_name *target);
int dnsmsg_answer_chain(const struct dnsmsg_answer *a, const struct dnsmsg_query *q,
			dnsmsg_chain_cb cb, void *arg);

/*
 * Writes the reply to q from a (fresh from upstream, or cached and age_s seconds old: every TTL
 * is decremented by age_s, never below 0). Sets the client's ID, flags and question case, adds
 * OPT when the client sent one. Keeps the upstream rcode and AA; AD only when the client set
 * DO or AD. When the reply does not fit max_len, returns a truncated reply (TC=1, header +
 * question + OPT). Returns the length, or 0 when buf is too small for even that. An answer for
 * another question gives SERVFAIL; an extended rcode for a client without EDNS gives SERVFAIL.
 */
size_t dnsmsg_write_answer(const struct dnsmsg_answer *a, const struct dnsmsg_query *q,
			   uint32_t age_s, size_t max_len, uint8_t *buf, size_t cap);

/*
 * Writes the query sent upstream for q: given ID, RD from the client, CD from the client,
 * the canonical (lowercase) name, and OPT with DNSMSG_EDNS_UDP and the client's DO bit.
 */
size_t dnsmsg_write_upstream_query(const struct dnsmsg_query *q, uint16_t id, uint8_t *buf,
				   size_t cap);

#endif
