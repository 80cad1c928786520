/*
 * worker: server.workers, the DNS path on every core (see README.md, "Workers").
 *
 * The main server (server_new) is worker 0 and keeps what is global: signals, reload, the
 * control channel, the list updater, the device table, the query log. Each other worker is a
 * thread with its own libuv loop and its own server (server_new_worker): SO_REUSEPORT UDP and
 * TCP listeners on every server.listen address, query pool, cache, upstream client and socket
 * pool, stale and prefetch state, limits, counters. It shares the main server's query log
 * (querylog_submit is safe from several threads) and the immutable, refcounted policy.
 *
 * Messages go through one uv_async per direction: main -> worker (a new policy, stop, a
 * snapshot of its counters), worker -> main (the thread ended). A worker publishes its counters
 * under its mutex (never taken on the query path) when asked, every WORKER_PUBLISH_MS and when
 * it stops; a snapshot on the main loop (veto stats, /metrics) asks every worker and waits for
 * their answers, each at most WORKER_SNAPSHOT_WAIT_MS (a worker answers between two of its
 * callbacks, so the wait is that of one callback).
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

/* A reload put policy in use on the main server: each worker takes its own reference and
 * swaps it in between two of its callbacks. Returns once every worker has (each waited for at
 * most WORKER_SWAP_WAIT_MS, then warned about), so that when a reload says ok, every worker
 * answers with the new policy. */
void workers_swap_policy(struct server *s, struct policy *policy);

/* Adds the other workers' counters (st, or the query counters, cache, upstream and TCP
 * figures of m), fresh: each worker is asked for them (see above). */
void workers_add_stats(const struct server *s, struct server_stats *st);
void workers_add_metrics(const struct server *s, struct metrics *m);

/* server_free of the main server (every worker joined). */
void workers_free(struct server *s);

#endif
