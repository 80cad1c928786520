/*
 * record: the vocabulary at the bottom of the query log: the fixed-size record the event loop
 * fills for every query (struct querylog_record), its actions and their names, its columns as
 * text (for the database sink) and its JSON line (for the file sink). querylog.c carries records
 * to the sinks; logdb.c stores them; neither is needed to read or format one.
 *
 * Line format, exact field names:
 * {"ts":"2026-11-22T03:58:22.123Z","client":"10.0.0.7","proto":"udp","group":"lab",
 *  "qname":"tracking.miui.com","qtype":"A","blocked":true,"list":"xiaomi","rule":"miui.com",
 *  "action":"sinkhole","rcode":"NOERROR","upstream":null,"latency_us":41,"mac":null,
 *  "device":null,"vendor":null,"vendor_source":null}
 * mac is "aa:bb:cc:dd:ee:ff"; vendor_source one of inventory, oui, signature, hostname.
 * Strings are written by json_write_str() (json.h): whatever octets a name holds, the line is
 * valid JSON.
 */
#ifndef VETO_RECORD_H
#define VETO_RECORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "identity.h"
#include "names.h"

enum querylog_action {
	QUERYLOG_ACTION_FORWARD = 0,
	QUERYLOG_ACTION_CACHE,
	QUERYLOG_ACTION_SINKHOLE,
	QUERYLOG_ACTION_NXDOMAIN,
	QUERYLOG_ACTION_NODATA,
	QUERYLOG_ACTION_REFUSED,
	QUERYLOG_ACTION_SERVFAIL,
	QUERYLOG_ACTION_FORMERR,
	QUERYLOG_ACTION_NOTIMP,
	QUERYLOG_ACTION_STALE,		/* every upstream attempt failed: answered from an entry
					   kept past its TTL (cache.serve_stale, RFC 8767) */
};

#define QUERYLOG_NAME_MAX   IDENTITY_NAME_MAX /* group and list names are cut to this in records */
#define QUERYLOG_LINE_MAX   8192 /* longest formatted line (4218 measured), '\n' and NUL included */

/* Fixed-size; everything copied, no pointers. */
struct querylog_record {
	uint64_t ts_ms;				/* wall clock, ms since the epoch */
	struct sockaddr_storage client;
	struct sockaddr_storage upstream;	/* ss_family 0 = null */
	uint8_t qname_wire[NAMES_MAX_WIRE];	/* canonical wire form */
	uint8_t qname_len;			/* 0 = no question (malformed query) */
	bool tcp;
	bool blocked;
	bool has_group, has_list;
	char group[QUERYLOG_NAME_MAX];
	char list[QUERYLOG_NAME_MAX];
	int16_t rule_label;			/* suffix of qname that matched, -1 = null */
	uint8_t rule_wire[NAMES_MAX_WIRE];	/* when rule_len > 0: the matched entry as canonical
						   wire (a suffix of a CNAME target); takes
						   precedence over rule_label */
	uint8_t rule_len;
	uint16_t qtype;
	uint8_t action;				/* enum querylog_action */
	uint8_t rcode;
	uint32_t latency_us;
	/* the device identity of the client (identity.h); a string that is empty means null,
	   one that fills the array need not be NUL-terminated */
	uint8_t mac[6];
	bool has_mac;
	char device[IDENTITY_NAME_MAX];	/* inventory name or hostname */
	char vendor[IDENTITY_VENDOR_MAX];
	uint8_t vendor_source;			/* enum identity_source */
};

/* Sets r's question name (qname_wire, qname_len) from a parsed name. */
static inline void
querylog_record_set_name(struct querylog_record *r, const struct names_name *n)
{
	memcpy(r->qname_wire, n->wire, n->len);
	r->qname_len = n->len;
}

/* The columns of a record as text, as in the JSON line; an empty string stands for null. */
struct querylog_text {
	char client[INET6_ADDRSTRLEN];
	char upstream[INET6_ADDRSTRLEN + 8];	/* "192.0.2.1:53", "[2001:db8::1]:53" */
	char qname[NAMES_MAX_TEXT];		/* "." for the root */
	char rule[NAMES_MAX_TEXT];
	char qtype[16];
	char rcode[16];
	char group[QUERYLOG_NAME_MAX + 1];
	char list[QUERYLOG_NAME_MAX + 1];
	char mac[18];
	char device[IDENTITY_NAME_MAX + 1];
	char vendor[IDENTITY_VENDOR_MAX + 1];
};

/* Fills t from r (the database sink uses it). */
void querylog_text(const struct querylog_record *r, struct querylog_text *t);

/* The question name and the rule of r as canonical wire octets, for a key that stands for
 * their text columns (the database sink's memory of ids): 1 with *wire and *len (the octets of
 * the name, which names_from_wire accepts as it is), 0 for a null column, -1 when only
 * querylog_text can tell (octets that are no plain uncompressed name; never from the loop). */
int querylog_qname_wire(const struct querylog_record *r, const uint8_t **wire, size_t *len);
int querylog_rule_wire(const struct querylog_record *r, const uint8_t **wire, size_t *len);

/* "forward", "cache", ...; "unknown" for values out of range. */
const char *querylog_action_name(uint8_t action);

/* Formats r as one JSON line with '\n' into buf and NUL-terminates it. Returns the length
 * (without the NUL), or 0 when cap is too small (nothing usable written): QUERYLOG_LINE_MAX is
 * always enough, 2048 is enough unless names are full of escaped octets. Exposed for tests. */
size_t querylog_format(const struct querylog_record *r, char *buf, size_t cap);

/* The counter line of the forwarded queries that were not logged one by one (the writer fell
 * behind), for the JSON-lines file: {"ts":NOW,"type":"unlogged","since":SINCE,"forwarded":N}
 * with '\n', NUL-terminated. Its length, or 0 when cap is too small (128 is enough). */
size_t querylog_format_unlogged(uint64_t since_ms, uint64_t ts_ms, uint64_t forwarded,
				char *buf, size_t cap);

#endif
