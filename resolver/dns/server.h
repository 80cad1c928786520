/*
 * server: the daemon behind `veto serve`. Owns the listeners (UDP and TCP on every server.listen
 * address), the cache, the upstream client and the query log, all running on one libuv loop;
 * with server.workers > 1, server_start also starts the other workers' threads, each with a
 * loop, listeners, cache and upstream client of its own (worker.h); the calls below stay the
 * main loop's and apply to every worker.
 *
 * Life cycle:
 *     server_new() -> server_start() -> [server_watch_signals()] -> uv_run()
 *     -> server_stop() (or SIGTERM/SIGINT) -> uv_run() returns -> server_free() -> uv_loop_close()
 * server_stop() must be called once server_new() succeeded, even when server_start() failed:
 * it closes every handle the server opened, so that uv_loop_close() returns 0 afterwards.
 *
 * Reload (SIGHUP or server_reload()): the configuration file is loaded and compiled in the libuv
 * thread pool, then swapped in between two callbacks; queries in flight finish on the policy they
 * started with. An invalid file is reported (same messages as `veto check`) and the old policy
 * keeps serving. The cache is never cleared: the policy applies before it.
 */
#ifndef VETO_SERVER_H
#define VETO_SERVER_H

#include <stdint.h>
#include <uv.h>

#include "policy.h"

struct server;

/* Per-query outcomes since start. Every received query ends in exactly one of the outcome
 * counters (dropped included); the transport counters say where they came from. */
struct server_stats {
	uint64_t udp_queries;		/* datagrams received */
	uint64_t tcp_queries;		/* complete frames received */
	uint64_t dropped;		/* unreadable, response sent to us, truncated, overload */
	uint64_t refused;		/* client outside server.allow */
	uint64_t errors;		/* FORMERR, NOTIMP, BADVERS answers */
	uint64_t blocked;		/* answered by the policy (including CNAME cloaking) */
	uint64_t cloaked;		/* of those: blocked through a CNAME/DNAME target */
	uint64_t cache_hits;		/* answered from the cache */
	uint64_t forwarded;		/* answered with an upstream reply */
	uint64_t servfail;		/* upstream failed or timed out, or internal error */
	uint64_t send_errors;		/* reply could not be sent (or was discarded) */
	uint64_t tcp_accepted;
	uint64_t tcp_rejected;		/* over the connection limit */
	uint64_t tcp_timeouts;		/* closed for being idle */
	uint64_t reloads, reload_failures;
	uint64_t udp_help_requests;	/* server.udp_sockets shared: the main loop, behind,
					   asked another worker to read beside it */
};

/* Called on the loop when a reload finished: status 0 (new policy in use), -EINVAL (the file
 * has errors; the old policy keeps serving), -ECANCELED (server stopping) or another -errno. */
typedef void (*server_reload_cb)(void *arg, int status);

/*
 * Creates the server for policy: the cache, the query log and the upstream client are set up
 * from policy_config(policy). Binds nothing yet. On success the server takes over the caller's
 * reference to policy and *out is set; on failure (-ENOMEM, -errno of the query log file,
 * -ENOENT no upstream server) the reference stays the caller's and nothing is left on the loop.
 */
int server_new(uv_loop_t *loop, struct policy *policy, struct server **out);

/*
 * Binds UDP and TCP on every server.listen address and starts serving. Logs one line per
 * listener. Returns 0, or the -errno of the first address that cannot be bound (logged, naming
 * the address); the caller then calls server_stop() and runs the loop to close what was opened.
 */
int server_start(struct server *s);

/* SIGHUP: reload and reopen the query log; SIGTERM, SIGINT: server_stop() (a second signal
 * skips the wait for queries in flight). 0 or -errno. */
int server_watch_signals(struct server *s);

/*
 * Reloads the configuration file of the current policy (asynchronously, in the thread pool) and
 * reopens the query log. cb (may be NULL) is called once on the loop when done. Returns 0, or
 * -EBUSY when a reload is already running (it is then run again after the current one, without
 * callback), -ECANCELED when the server is stopping.
 */
int server_reload(struct server *s, server_reload_cb cb, void *arg);

/*
 * Graceful stop: stops receiving, lets queries in flight finish for at most the drain timeout
 * (default SERVER_DRAIN_MS, 2 s), then cancels the rest, closes every handle, flushes and closes
 * the query log, and calls done(arg) (may be NULL) from the loop. Idempotent.
 */
void server_stop(struct server *s, void (*done)(void *arg), void *arg);

/* Called on the loop after each reload that put a new policy in use (not after a failed one). */
typedef void (*server_policy_cb)(void *arg, const struct policy *policy);
/* Sets the one reload observer (NULL: none). The HTTP listener takes its users from it. */
void server_on_reload(struct server *s, server_policy_cb cb, void *arg);

/* Changes the drain timeout of server_stop() (tests). */
void server_set_drain_timeout(struct server *s, uint64_t ms);

void server_get_stats(const struct server *s, struct server_stats *st);
/* Asks the other workers (server.workers) for fresh counters and calls cb(arg) on the loop
 * once they all answered (at most WORKER_SNAPSHOT_WAIT_MS later), at once when there are none:
 * then metrics_snapshot() and server_get_stats() include them. The loop does not wait. */
void server_refresh_counters(struct server *s, void (*cb)(void *arg), void *arg);

/* The policy in use now (borrowed: valid until the next reload swaps it). */
const struct policy *server_policy(const struct server *s);

/* Frees a stopped server (or one whose stop has completed) and sets *s = NULL. */
void server_free(struct server **s);

#endif
