/*
 * querylog: one JSON object per query, written off the event loop.
 *
 * The loop thread fills a fixed-size record and submits it to a bounded single-producer ring
 * (no allocation, no lock held across I/O, never blocks); a writer thread formats the JSON line
 * and writes it to log.file ("-" = standard output). When the ring is full (slow or full disk)
 * the record is dropped and counted; the writer reports the drop count on standard error (once
 * per burst, via log.h). querylog_reopen() (SIGHUP) makes the writer reopen the file (logrotate).
 * querylog_free() writes what is buffered, then stops the thread.
 *
 * Line format, exact field names:
 * {"ts":"2026-11-22T03:58:22.123Z","client":"10.0.0.7","proto":"udp","group":"lab",
 *  "qname":"tracking.miui.com","qtype":"A","blocked":true,"list":"xiaomi","rule":"miui.com",
 *  "action":"sinkhole","rcode":"NOERROR","upstream":null,"latency_us":41}
 */
#ifndef VETO_QUERYLOG_H
#define VETO_QUERYLOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
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
};

#define QUERYLOG_NAME_MAX 64	/* group and list names are truncated to this in records */

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
	uint16_t qtype;
	uint8_t action;				/* enum querylog_action */
	uint8_t rcode;
	uint32_t latency_us;
};

struct querylog;

/* Opens cfg->log.file (creating it, append mode) and starts the writer thread. With
 * log.queries == none nothing is opened and every submit is a no-op. 0 or -errno (file cannot
 * be opened: a message names it). */
int querylog_new(const struct config *cfg, struct querylog **out);

/* True when a record with this 'blocked' value should be submitted (log.queries filter). */
bool querylog_wants(const struct querylog *ql, bool blocked);

/* Copies r into the ring. 0, or -ENOBUFS when full (the record is dropped and counted). */
int querylog_submit(struct querylog *ql, const struct querylog_record *r);

/* Asks the writer to reopen the file (SIGHUP). Non-blocking. */
void querylog_reopen(struct querylog *ql);

/* Writes out what is buffered, stops the writer, closes the file, frees, sets *ql = NULL. */
void querylog_free(struct querylog **ql);

uint64_t querylog_dropped(const struct querylog *ql);

/* Formats r as one JSON line with '\n' into buf (cap octets, 2048 is always enough). Returns
 * the length. Exposed for tests. */
size_t querylog_format(const struct querylog_record *r, char *buf, size_t cap);

#endif
