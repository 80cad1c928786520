/*
 * http_metrics: the /metrics route, the daemon's counters in the Prometheus text exposition
 * format 0.0.4 (names veto_*, counters *_total, seconds and bytes). The snapshot comes from the
 * loop through metrics_feed.h; rendering runs on the HTTP thread.
 */
#ifndef VETO_HTTP_METRICS_H
#define VETO_HTTP_METRICS_H

#include "http_route.h"
#include "metrics.h"
#include "metrics_feed.h"

/* How long /metrics waits for the loop's snapshot before answering 503. */
#define HTTP_METRICS_WAIT_MS 2000

/* The route: {"/metrics", HTTP_ROLE_READ, false, http_metrics_page, feed}. */
int http_metrics_page(void *ctx, const struct http_req *req, struct http_resp *resp);

/* m as exposition text appended to resp; 0 or -ENOMEM. */
int http_metrics_render(const struct metrics *m, struct http_resp *resp);

#endif
