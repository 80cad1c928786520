/*
 * metrics: one snapshot of the running daemon's counters (server, cache, query log, device
 * table), taken on the loop thread, and its JSON form. `veto stats` reads it through the
 * control channel (control.h); a Prometheus /metrics endpoint is to render the same struct.
 *
 * Cheap and race-free: metrics_snapshot() copies counters the loop owns and reads the query
 * log's atomic counters; it allocates nothing and takes no lock.
 */
#ifndef VETO_METRICS_H
#define VETO_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "server.h"

struct metrics {
	uint64_t uptime_ms;         /* since server_new */
	struct server_stats server; /* queries, answers, TCP, reloads */
	bool cache_on;
	struct cache_stats cache;
	bool querylog_on;
	uint64_t ql_dropped;       /* records not stored one by one (unlogged + evidence lost) */
	uint64_t ql_unlogged;      /* forwarded records counted instead of stored */
	uint64_t ql_evidence_lost; /* blocked records lost (overflow full) */
	uint64_t ql_lost;          /* JSON lines lost to write errors */
	uint64_t ql_db_dropped;    /* records the database did not store (failures) */
	bool devices_on;
	uint64_t devices;         /* in the device table */
	uint64_t tcp_connections; /* open now */
};

/* Fills m from s. Loop thread only. */
void metrics_snapshot(const struct server *s, struct metrics *m);

/* m as one JSON object on one line, no newline: {"uptime_s":..,"queries":{...},...}.
 * 0, or -ENOSPC when it does not fit in size (buf then holds a cut, terminated text). */
int metrics_json(const struct metrics *m, char *buf, size_t size);

#endif
