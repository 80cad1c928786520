/*
 * metrics_feed: the DNS loop's counters for the HTTP threads, without blocking the loop. A
 * handler asks (metrics_feed_get); the loop, woken by a uv_async, takes a snapshot
 * (metrics_snapshot, no allocation) and copies it under a mutex held for that copy only; the
 * handler waits for it, bounded.
 *
 * Life cycle (cmd_serve): metrics_feed_new() on the loop thread once the server exists; its
 * handle does not keep the loop alive. After the loop has stopped and the HTTP threads are
 * gone, metrics_feed_close() and one more uv_run() to run its close callback (which frees it).
 */
#ifndef VETO_METRICS_FEED_H
#define VETO_METRICS_FEED_H

#include <uv.h>

#include "metrics.h"
#include "server.h"

struct metrics_feed;

/* srv is borrowed and must outlive the feed. 0 or -errno. */
int metrics_feed_new(uv_loop_t *loop, struct server *srv, struct metrics_feed **out);

/* Any thread but the loop's: a fresh snapshot into *out. 0, or -EAGAIN when the loop did not
 * answer within timeout_ms or is stopping (answer 503). */
int metrics_feed_get(struct metrics_feed *f, struct metrics *out, unsigned timeout_ms);

/* Loop thread: wakes every waiter with -EAGAIN, closes the handle, frees f in its close
 * callback. */
void metrics_feed_close(struct metrics_feed *f);

#endif
