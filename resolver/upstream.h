/*
 * upstream: sends queries to the upstream servers and returns validated replies.
 *
 * - Every attempt uses a fresh random 16-bit ID and a fresh UDP socket on a random source port.
 * - A reply is accepted only from the server's address and port, with the expected ID, QR set
 *   and the same question (dnsmsg_check_reply); everything else is counted and dropped.
 * - Per-attempt timeout (upstream.timeout_ms) starting when the send completes; failover to the
 *   next server; a server that keeps failing is skipped for a while (backoff) and retried later;
 *   at most UPSTREAM_MAX_ATTEMPTS attempts, then the request completes with -ETIMEDOUT.
 * - A truncated (TC) reply is retried over TCP to the same server.
 * - Identical queries (name, type, class, DO, CD) in flight at the same time are sent once; every
 *   waiter gets the reply.
 * Runs on the event loop thread only.
 */
#ifndef VETO_UPSTREAM_H
#define VETO_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "config.h"
#include "dnsmsg.h"

#define UPSTREAM_MAX_ATTEMPTS 3

struct upstream;
struct upstream_wait;	/* one waiter: what upstream_query() hands back for cancelling */

/*
 * Completion: called exactly once per upstream_query() that returned 0, never synchronously from
 * upstream_query(). status 0: reply (validated, not truncated) with reply/len valid only during
 * the call, and server the address that answered. status < 0: -ETIMEDOUT (every attempt failed
 * or timed out), -ECANCELED (upstream_cancel or shutdown), -ENETUNREACH (no server configured).
 */
typedef void (*upstream_done_cb)(void *arg, int status, const uint8_t *reply, size_t len,
				 const struct sockaddr *server);

struct upstream_stats {
	uint64_t queries;		/* upstream_query calls */
	uint64_t deduplicated;		/* joined a query already in flight */
	uint64_t sent_udp, sent_tcp;
	uint64_t timeouts;
	uint64_t dropped_replies;	/* wrong address, port, ID, question, or malformed */
	uint64_t failed;		/* completed with an error */
};

/* Servers from cfg->upstream (and /etc/resolv.conf when cfg->upstream.resolv_conf). The config
 * is only read during the call. 0, -ENOMEM, or -ENOENT when there is no server at all (then a
 * message is logged). */
int upstream_new(uv_loop_t *loop, const struct config *cfg, struct upstream **out);

/* Replaces the server list and timeout (reload). Queries in flight finish on the old servers. */
int upstream_reconfigure(struct upstream *u, const struct config *cfg);

/* Starts (or joins) the upstream resolution of q. q is copied. *wait identifies this waiter for
 * upstream_cancel() until cb runs. 0 or -ENOMEM. */
int upstream_query(struct upstream *u, const struct dnsmsg_query *q, upstream_done_cb cb,
		   void *arg, struct upstream_wait **wait);

/* Completes this waiter with -ECANCELED (asynchronously). Other waiters are unaffected. */
void upstream_cancel(struct upstream_wait *wait);

/* Cancels everything in flight, closes every handle, then calls done(arg) (from the loop) once
 * all close callbacks have run; the object is freed before done is called. */
void upstream_close(struct upstream *u, void (*done)(void *arg), void *arg);

void upstream_get_stats(const struct upstream *u, struct upstream_stats *st);

#endif
