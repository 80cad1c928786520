/*
 * upstream: sends queries to the upstream servers and returns validated replies.
 *
 * - Every attempt uses a fresh random 16-bit ID and a UDP socket picked at random from the
 *   server's pool (random source ports; a socket carries at most UPSTREAM_SOCK_QUERIES queries
 *   within UPSTREAM_SOCK_MS, see upstream_sock.c); IDs are unique per socket.
 * - A reply is accepted only on the attempt's socket, from the server's address and port, with
 *   the expected ID, QR set and the same question (dnsmsg_check_reply); everything else is
 *   counted and dropped.
 * - Per-attempt timeout (upstream.timeout_ms) starting when the send completes; failover to the
 *   next server; a server that keeps failing is skipped for a while (backoff) and retried later;
 *   at most UPSTREAM_MAX_ATTEMPTS attempts, then the request fails (-ETIMEDOUT/-ECONNREFUSED).
 * - An attempt that timed out stays registered on its socket (which stays open) until the
 *   request's deadline: the first valid reply on any of the request's attempts (same checks)
 *   completes it.
 * - A reply that is not an answer (SERVFAIL, REFUSED, FORMERR, NOTIMP or any rcode other than
 *   NOERROR, NXDOMAIN, YXDOMAIN, or records that do not parse: dnsmsg_judge_reply) is a failed
 *   attempt: it counts against the server's health and the next server is tried; the request
 *   does not ask that server again.
 * - A truncated (TC) reply is retried over TCP to the same server.
 * - DNS-over-TLS servers (tls://, upstream_tls.c) are asked on one persistent TLS connection per
 *   server with several queries in flight (RFC 7766 framing, random IDs unique on the
 *   connection); an attempt there follows the same rules (timeout, late replies until the
 *   deadline, failover); a certificate that does not verify fails the attempt (logged).
 * - Identical queries (name, type, class, RD, DO, CD) in flight at the same time are sent once;
 *   every waiter gets the reply.
 * Details (see upstream_int.h and resolver/README.md):
 * - Servers are tried in configuration order: attempt 1 goes to the first healthy server, each
 *   further attempt to the next healthy one not yet tried. After UPSTREAM_DOWN_AFTER consecutive
 *   failures a server is skipped for 1 s, doubling up to 30 s while retries fail; when every
 *   server is down, the least recently failed one is tried. A success makes it healthy again.
 * - The TCP retry of a truncated reply belongs to the attempt that got it (it does not use one
 *   of the UPSTREAM_MAX_ATTEMPTS); the whole request is bounded by UPSTREAM_MAX_ATTEMPTS x
 *   upstream.timeout_ms from its start (every attempt timer is cut to that deadline).
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
 * the call, and server the address that answered. status < 0: -ECONNREFUSED (every attempt
 * failed on the network: ICMP unreachable, send or connect error), -ETIMEDOUT (every attempt
 * failed, timed out or answered badly, otherwise), -ECANCELED (upstream_cancel or shutdown),
 * -ENETUNREACH (no server configured).
 */
typedef void (*upstream_done_cb)(void *arg, int status, const uint8_t *reply, size_t len,
				 const struct sockaddr *server);

struct upstream_stats {
	uint64_t queries;		/* upstream_query calls that returned 0 */
	uint64_t deduplicated;		/* joined a query already in flight */
	uint64_t sent_udp, sent_tcp;	/* queries handed to the kernel */
	uint64_t timeouts;		/* attempts that timed out */
	uint64_t dropped_replies;	/* wrong address, port, ID, question, or malformed */
	uint64_t bad_replies;		/* valid replies that were no answer (failed over) */
	uint64_t late_replies;		/* answers taken from an attempt after its timeout */
	uint64_t failed;		/* waiters completed with an error other than -ECANCELED */
	uint64_t sockets_opened;	/* UDP sockets opened for the pool (each on a random port) */
	uint64_t sent_tls;		/* queries written on DNS-over-TLS connections */
	uint64_t tls_connections;	/* DNS-over-TLS handshakes completed */
	uint64_t tls_resumed;		/* of which resumed a TLS session */
	uint64_t tls_failures;		/* connections that failed: connect, handshake (certificate
					   included), or closed with queries in flight */
	uint64_t sent_https;		/* DNS-over-HTTPS transfers started */
};

/* Servers from cfg->upstream (and /etc/resolv.conf when cfg->upstream.resolv_conf). The config
 * is only read during the call. 0, -ENOMEM, or -ENOENT when there is no server at all (then a
 * message is logged). */
int upstream_new(uv_loop_t *loop, const struct config *cfg, struct upstream **out);

/* Replaces the server list and timeout (reload). Queries in flight finish on the old servers. */
int upstream_reconfigure(struct upstream *u, const struct config *cfg);

/* Whether a callback runs from the read of a pool socket (a UDP reply being handled, in the
 * loop's poll phase): a reply to the client made now may wait for the end of that phase and
 * go out with the others of the same turn (udp.c). */
bool upstream_reading(const struct upstream *u);

/* Starts (or joins) the upstream resolution of q (q->has_question must be true). q is copied.
 * *wait identifies this waiter for upstream_cancel() until cb runs. 0, -ENOMEM, or -ECANCELED
 * after upstream_close() (e.g. from a callback run by the close); *wait is written only on 0. */
int upstream_query(struct upstream *u, const struct dnsmsg_query *q, upstream_done_cb cb,
		   void *arg, struct upstream_wait **wait);

/* Completes this waiter with -ECANCELED (asynchronously: cb runs from the loop, not from this
 * call). Other waiters are unaffected. When it was the last waiter the request is aborted (its
 * attempts unregistered from their sockets): a reply nobody waits for is not worth waiting
 * for. A no-op when the waiter's
 * completion is already queued; wait must not be used after its cb has run. */
void upstream_cancel(struct upstream_wait *wait);

/* Cancels everything in flight (every waiter's cb runs with -ECANCELED, from the loop, before
 * done), closes every handle, then calls done(arg) (from the loop) once all close callbacks have
 * run; the object is freed before done is called. Called once; may be called from a cb (the
 * waiters of the request being completed still get its result). */
void upstream_close(struct upstream *u, void (*done)(void *arg), void *arg);

void upstream_get_stats(const struct upstream *u, struct upstream_stats *st);

/* Per server: answers and their latency (from the client's query to the answer; a histogram
 * with these upper bounds, in microseconds, plus +Inf), failed attempts. Kept across reloads
 * for the servers that stay. */
#define UPSTREAM_LATENCY_BUCKETS 10
extern const uint32_t upstream_latency_bounds_us[UPSTREAM_LATENCY_BUCKETS];
struct upstream_server_stats {
	char text[128];			/* "192.0.2.1:53", "tls://192.0.2.1:853#dns.example" */
	uint64_t answers;
	uint64_t errors;		/* attempts that failed: timeout, network error, bad reply */
	uint64_t sum_us;		/* of the answers' latencies */
	uint64_t buckets[UPSTREAM_LATENCY_BUCKETS + 1]; /* per bucket (not cumulative); last +Inf */
};
/* Counts an answer from server (the address the reply came from) latency_us after the query
 * arrived. Loop thread; an unknown address is ignored. */
void upstream_observe(struct upstream *u, const struct sockaddr *server, uint64_t latency_us);
/* Copies the counters of the servers in use (at most max); returns how many were copied. */
size_t upstream_get_server_stats(const struct upstream *u, struct upstream_server_stats *out,
				 size_t max);

#endif
