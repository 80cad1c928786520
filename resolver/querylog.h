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
 * Threads: querylog_submit() has a single producer: call it from one thread only (the loop).
 * querylog_wants/reopen/dropped/lost may be called from any thread. The writer thread blocks
 * every signal. A record reaches the file within about 50 ms (the writer is woken early only
 * when the ring fills up, so the steady-state producer cost is a copy and an atomic store).
 * Write errors (ENOSPC, EIO, ...): the records of the failed batch are counted as lost, the
 * error is logged once per burst, and the next batch is tried again. When standard output is
 * the log and is a closed pipe, the process must ignore SIGPIPE (the server does).
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
#define QUERYLOG_LINE_MAX 4096	/* longest possible formatted line, '\n' and NUL included */
#define QUERYLOG_RING	  16384	/* records buffered between the loop and the writer */

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

/* Records dropped because the ring was full. */
uint64_t querylog_dropped(const struct querylog *ql);
/* Records lost because writing them failed (ENOSPC, EIO, ...). */
uint64_t querylog_lost(const struct querylog *ql);

/* Formats r as one JSON line with '\n' into buf and NUL-terminates it. Returns the length
 * (without the NUL), or 0 when cap is too small (nothing usable written): QUERYLOG_LINE_MAX is
 * always enough, 2048 is enough unless names are full of escaped octets. Exposed for tests. */
size_t querylog_format(const struct querylog_record *r, char *buf, size_t cap);

#endif
