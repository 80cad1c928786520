/*
 * query: the state of one client query and the pipeline that answers it.
 *
 *   received -> server.allow -> parse -> group -> policy -> (blocked answer | cache | upstream)
 *   -> CNAME cloaking check -> reply -> query log record
 *
 * Slots come from a preallocated pool (free list) that grows by blocks and never shrinks: no
 * allocation per query in steady state. A query answered locally (blocked, cached, refused,
 * malformed) finishes inside query_process(); one that goes upstream finishes in the upstream
 * callback. Either way it finishes exactly once (guard bit), sends its reply through its
 * transport, is logged, and its slot returns to the pool.
 * While a query waits for upstream it holds a reference to the policy it started with.
 */
#ifndef VETO_QUERY_H
#define VETO_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "devices.h"
#include "dnsmsg.h"
#include "policy.h"
#include "upstream.h"

struct server;
struct tcp_conn;
struct udp_listener;

struct query {
	struct query *prev, *next;	/* free list (next) or the server's async list */
	struct server *srv;
	struct policy *policy;		/* a reference, while waiting for upstream */
	union {
		struct udp_listener *udp;
		struct tcp_conn *tcp;
	} via;
	struct upstream_wait *wait;	/* while waiting for upstream */
	struct query *sprev, *snext;	/* in the server's stale list while stale_watched */
	uint64_t stale_at;		/* uv_now() when the kept answer is served (stale.c) */
	uint64_t t_start;		/* uv_hrtime() at receive */
	struct sockaddr_storage client;
	struct sockaddr_storage upstream; /* who answered; ss_family 0 = none */
	int group;
	int list;			/* deciding list, -1 = none */
	int rule_label;			/* -1 = none */
	uint8_t rule_len;		/* CNAME cloaking: the rule (a suffix of the chain target,
					   canonical wire) in rule_wire; 0 = none */
	uint8_t rule_wire[NAMES_MAX_WIRE];
	uint8_t action;			/* enum querylog_action */
	uint8_t rcode;			/* of the reply sent */
	bool tcp;
	bool blocked;
	bool async;			/* waiting for upstream */
	bool finished;			/* guard: finishes once */
	bool admitted;			/* counted by limits_admit() until released */
	bool nolog;			/* not written to the query log (rate limited) */
	bool stale_watched;		/* in the stale list (stale.h) */
	bool want_stale;		/* the stale timer cancelled the wait: answer from the kept
					   entry (cache_lookup_stale) */
	struct dnsmsg_query dq;
	struct policy_decision decision; /* policy_decide() for this query */
	struct devices_ident ident;	/* who sent it (when devices are on) */
};

struct query_pool {
	struct query *free;		/* free list */
	struct query **blocks;		/* owned blocks of SERVER_QUERY_BLOCK slots */
	size_t nblocks;
	size_t used;			/* slots handed out */
	size_t max;			/* total slots allowed */
};

void query_pool_init(struct query_pool *p, size_t max);
/* Frees every block; every slot must be back. */
void query_pool_destroy(struct query_pool *p);

/*
 * Takes a slot for a query received from client (copied) over UDP (listener l) or TCP (conn c,
 * l NULL). NULL when the pool is exhausted or cannot grow. The transport counts the query
 * (TCP: in flight on the connection) before calling query_process().
 */
struct query *query_get(struct server *s, const struct sockaddr *client, bool tcp);

/* Answers pkt (len octets, only read during the call). The query finishes before the call
 * returns unless it went upstream. */
void query_process(struct query *q, const uint8_t *pkt, size_t len);

/* Cancels the upstream wait of an async query (server stopping); it finishes later, with
 * SERVFAIL. */
void query_cancel(struct query *q);

#endif
