/*
 * worker: server.workers, the DNS path on every core (see README.md, "Workers").
 *
 * The main server (server_new) is worker 0 and keeps what is global: signals, reload, the
 * control channel, the list updater, the device table, the query log. Each other worker is a
 * thread with its own libuv loop and its own server (server_new_worker): SO_REUSEPORT TCP
 * listeners on every server.listen address, UDP ones too with server.udp_sockets per_worker
 * (with shared, the default, a duplicate of the main server's UDP socket that it reads when
 * the main loop asks: workers_assist, udp.c), query pool, cache, upstream client and socket
 * pool, stale and prefetch state, limits, counters. It shares the main server's query log
 * (querylog_submit is safe from several threads) and the immutable, refcounted policy.
 *
 * Messages go through one uv_async per direction: main -> worker (a new policy, stop, a
 * snapshot of its counters), worker -> main (a policy taken, a snapshot made, stopped, the
 * thread ended). A worker publishes its counters under its mutex (never taken on the query
 * path) when asked, every WORKER_PUBLISH_MS and when it stops. The main loop never waits for a
 * worker: a snapshot (veto stats, /metrics) or a reload asks every worker and completes from
 * the answer of the last one (a worker answers between two of its callbacks), or when a timer
 * says a worker took too long: WORKER_SNAPSHOT_WAIT_MS (its last published counters are used),
 * WORKER_SWAP_WAIT_MS (a warning names it).
 * Every function here runs on the main server's loop thread.
 */
#ifndef VETO_WORKER_H
#define VETO_WORKER_H

#include "config.h"
#include "metrics.h"
#include "server.h"

#define WORKER_PUBLISH_MS 250
#define WORKER_SNAPSHOT_WAIT_MS 50
#define WORKER_SWAP_WAIT_MS	200

/* server.workers as it takes effect: 0 is the number of CPUs online (at least 1). */
unsigned worker_count(const struct config *cfg);

/* server_start of the main server, its listeners open: starts the other workers, one at a
 * time, each opening its listeners before the next starts. 0, or the first -errno (logged);
 * then server_stop stops the ones that started. Counts each in s->nobjects until its thread
 * has been joined. */
int workers_start(struct server *s);

/* server_stop of the main server: asks every worker to stop (again: to stop waiting). */
void workers_stop(struct server *s);

/* The main server's UDP socket had more waiting than one recvmmsg reads: asks one worker that
 * is not already at it to read beside the main loop (udp_help), in turn. Cheap when every
 * worker is busy: an atomic load each. */
void workers_assist(struct server *s);

typedef void (*workers_done_cb)(void *arg);

/* A reload put policy in use on the main server: each worker takes its own reference and
 * swaps it in between two of its callbacks. cb(arg) once every worker has (or after
 * WORKER_SWAP_WAIT_MS, with a warning naming the others), so that when a reload says ok, every
 * worker answers with the new policy; at once without other workers. One at a time. */
void workers_swap_policy(struct server *s, struct policy *policy, workers_done_cb cb,
			 void *arg);

/* Asks every worker for fresh counters: cb(arg) once each has published them (or after
 * WORKER_SNAPSHOT_WAIT_MS); at once without other workers, or once they stopped. */
void workers_refresh(struct server *s, workers_done_cb cb, void *arg);

/* Adds the other workers' counters as last published (st, or the query counters, cache,
 * upstream and TCP figures of m): workers_refresh first for fresh ones. */
void workers_add_stats(const struct server *s, struct server_stats *st);
void workers_add_metrics(const struct server *s, struct metrics *m);

/* begin_close of the main server: completes what waits (with the counters as last published)
 * and closes the timers. */
void workers_close(struct server *s);

/* Whether every started worker's thread has ended and been joined (none can queue a device
 * observation any more); true without other workers. */
bool workers_ended(const struct server *s);

/* server_free of the main server (every worker joined). */
void workers_free(struct server *s);

#endif
