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
#include "devices_share.h"
#include "server.h"
#include "upstream.h"

/*
 * Bounds of the labelled counters: label sets come from the configuration (groups, lists,
 * upstream servers, signature vendors), cut at these sizes (the rest counts as "other"), or
 * from fixed sets (actions, rcodes, evidence sources, device event kinds).
 */
#define METRICS_GROUPS	64
#define METRICS_ACTIONS 9	/* enum querylog_action */
#define METRICS_RCODES	7	/* NOERROR FORMERR SERVFAIL NXDOMAIN NOTIMP REFUSED, other */
#define METRICS_LISTS	64
#define METRICS_SERVERS 16
#define METRICS_WORKERS 16	/* workers listed one by one in the JSON line */
#define METRICS_URLS	64	/* list URLs with download metrics */
#define METRICS_URL	256	/* a URL label is cut to this (NUL included) */
#define METRICS_VENDORS 64
#define METRICS_SOURCES 6	/* enum identity_source */
#define METRICS_EVENTS	4	/* first_seen, vendor, group_change, other */
#define METRICS_NAME	64	/* names are cut to this (NUL included) */
#define METRICS_OTHER	METRICS_GROUPS		/* group slot: a group past the bound */
#define METRICS_NONE	(METRICS_GROUPS + 1)	/* group slot: no group */
/* How often the device table is walked for the per-vendor, per-source and per-group counts
 * (metrics_snapshot_devices); between walks the last counts are served. */
#define METRICS_DEVICES_EVERY_MS 10000

/* The per-query counters the loop keeps in its server: plain increments, no lock. */
struct metrics_counts {
	uint64_t by_action[2][METRICS_ACTIONS]; /* [0 udp, 1 tcp][enum querylog_action] */
	uint64_t by_rcode[METRICS_RCODES];
	/* [group index of the current policy, METRICS_OTHER, METRICS_NONE][action]; remapped by
	 * name when a reload changes the groups */
	uint64_t by_group[METRICS_GROUPS + 2][METRICS_ACTIONS];
	uint64_t device_events[METRICS_EVENTS];
};

struct metrics_list {
	char name[METRICS_NAME];
	uint64_t entries;
};

/* One list URL's downloads (resolver/lists/updater.h). */
struct metrics_url {
	char list[METRICS_NAME];
	char url[METRICS_URL];
	int64_t last_attempt, last_good; /* unix seconds; 0 = none yet */
	uint32_t failures;		 /* in a row */
};

/* Devices of the table by vendor, evidence source and group (metrics_snapshot_devices). */
struct metrics_devices {
	bool taken;
	size_t nvendors;
	char vendors[METRICS_VENDORS][METRICS_NAME];	/* signature and inventory vendors */
	uint64_t by_vendor[METRICS_VENDORS + 2];	/* + other, + unknown (no vendor) */
	uint64_t by_source[METRICS_SOURCES];
	uint64_t by_group[METRICS_GROUPS + 2];		/* slots as metrics_counts.by_group */
};

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
	bool pg_on;                /* store.postgresql: the shared store's writer */
	const char *pg_state;      /* "connecting", "up", "down" (static) */
	uint64_t pg_stored, pg_spooled_rows, pg_spool_bytes, pg_lost;
	bool devices_on;
	uint64_t devices;         /* in the device table */
	bool share_on;            /* server.workers > 1: the table shared (devices_share.h) */
	struct devices_share_stats share;
	uint64_t tcp_connections; /* open now */
	struct metrics_counts counts;
	size_t ngroups; /* names of the current policy's groups (at most METRICS_GROUPS) */
	char groups[METRICS_GROUPS][METRICS_NAME];
	size_t nlists;
	struct metrics_list lists[METRICS_LISTS];
	uint64_t policy_age_ms; /* since the policy in use was loaded (lists read) */
	size_t nurls;
	struct metrics_url urls[METRICS_URLS];
	struct upstream_stats upstream;
	size_t nservers;
	struct upstream_server_stats servers[METRICS_SERVERS];
	/* server.workers: how many, and per worker (0: the main loop; the others as last
	 * published) the queries received and the policies put in use since start */
	unsigned nworkers;
	bool udp_shared;	  /* server.udp_sockets shared (with nworkers > 1) */
	uint64_t worker_queries[METRICS_WORKERS];
	uint64_t worker_reloads[METRICS_WORKERS];
	struct metrics_devices dev; /* filled by metrics_snapshot_devices only */
	uint64_t rss_bytes;         /* resident memory; filled by the HTTP thread, 0 = unknown */
};

/* Fills m from s (all but m->dev, which it clears). Loop thread only. */
void metrics_snapshot(const struct server *s, struct metrics *m);
/* Fills m->dev by walking the device table (O(devices), no allocation). Loop thread only. */
void metrics_snapshot_devices(const struct server *s, struct metrics *m);

struct query;
/* Counts a query that is being answered (query.c's finish): its transport, action, rcode and
 * group (pol: the policy it was decided with). Loop thread. */
void metrics_count_query(struct server *s, const struct query *q, const struct policy *pol);
/* Counts a device event of kind ("first_seen", "vendor", "group_change"). Loop thread. */
void metrics_count_event(struct server *s, const char *kind);
/* A reload replaces old by new: the per-group counters follow their group's name. */
void metrics_remap_groups(struct metrics_counts *c, const struct policy *old,
                          const struct policy *new_policy);
/* The slot of rcode in metrics_counts.by_rcode and its name ("NOERROR", ..., "other"). */
const char *metrics_rcode_name(size_t slot);
const char *metrics_action_name(size_t action);
const char *metrics_event_name(size_t slot);

/* m as one JSON object on one line, no newline: {"uptime_s":..,"queries":{...},...}.
 * 0, or -ENOSPC when it does not fit in size (buf then holds a cut, terminated text). */
int metrics_json(const struct metrics *m, char *buf, size_t size);

#endif
