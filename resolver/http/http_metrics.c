/*
 * http_metrics: struct metrics as Prometheus text (see http_metrics.h). Every family has its
 * HELP and TYPE lines; label values are escaped (\\, \", \n) and come from bounded sets.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "http_metrics.h"

#ifndef VETO_VERSION
#define VETO_VERSION "unknown"
#endif

/* Starts a family: its HELP and TYPE lines. */
static void
family(struct http_resp *r, const char *name, const char *type, const char *help)
{
	http_resp_printf(r, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Appends a label value escaped as the format asks. */
static void
label_value(struct http_resp *r, const char *v)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			http_resp_write(r, "\\\\", 2);
		else if (*v == '"')
			http_resp_write(r, "\\\"", 2);
		else if (*v == '\n')
			http_resp_write(r, "\\n", 2);
		else
			http_resp_write(r, v, 1);
	}
}

/* name{k1="v1",k2="v2"} value: labels is NULL or pairs ending with NULL. */
static void
sample(struct http_resp *r, const char *name, const char *const *labels, uint64_t v)
{
	http_resp_printf(r, "%s", name);
	if (labels != NULL && labels[0] != NULL) {
		http_resp_write(r, "{", 1);
		for (size_t i = 0; labels[i] != NULL; i += 2) {
			http_resp_printf(r, "%s%s=\"", i > 0 ? "," : "", labels[i]);
			label_value(r, labels[i + 1]);
			http_resp_write(r, "\"", 1);
		}
		http_resp_write(r, "}", 1);
	}
	http_resp_printf(r, " %" PRIu64 "\n", v);
}

static void
one(struct http_resp *r, const char *name, const char *type, const char *help, uint64_t v)
{
	family(r, name, type, help);
	sample(r, name, NULL, v);
}

int
http_metrics_render(const struct metrics *m, struct http_resp *r)
{
	const struct server_stats *st = &m->server;

	family(r, "veto_build_info", "gauge", "Veto's version (the value is always 1).");
	sample(r, "veto_build_info", (const char *const[]){"version", VETO_VERSION, NULL}, 1);
	http_resp_printf(r, "# HELP veto_uptime_seconds Seconds since the daemon started.\n"
	                    "# TYPE veto_uptime_seconds gauge\n"
	                    "veto_uptime_seconds %" PRIu64 ".%03u\n",
	                 m->uptime_ms / 1000, (unsigned)(m->uptime_ms % 1000));

	family(r, "veto_queries_received_total", "counter", "DNS queries received, by transport.");
	sample(r, "veto_queries_received_total", (const char *const[]){"protocol", "udp", NULL},
	       st->udp_queries);
	sample(r, "veto_queries_received_total", (const char *const[]){"protocol", "tcp", NULL},
	       st->tcp_queries);

	const struct {
		const char *outcome;
		uint64_t v;
	} outcomes[] = {
	        {"forwarded", st->forwarded}, {"cache", st->cache_hits}, {"blocked", st->blocked},
	        {"refused", st->refused},     {"error", st->errors},     {"servfail", st->servfail},
	        {"dropped", st->dropped},
	};
	family(r, "veto_query_outcomes_total", "counter",
	       "DNS queries by how they were answered (each query counts once).");
	for (size_t i = 0; i < sizeof(outcomes) / sizeof(outcomes[0]); i++)
		sample(r, "veto_query_outcomes_total",
		       (const char *const[]){"outcome", outcomes[i].outcome, NULL}, outcomes[i].v);
	one(r, "veto_queries_cloaked_total", "counter",
	    "Queries blocked through a CNAME or DNAME target.", st->cloaked);
	one(r, "veto_reply_send_errors_total", "counter", "Replies that could not be sent.",
	    st->send_errors);

	one(r, "veto_tcp_connections", "gauge", "TCP connections open now.", m->tcp_connections);
	one(r, "veto_tcp_connections_accepted_total", "counter", "TCP connections accepted.",
	    st->tcp_accepted);
	one(r, "veto_tcp_connections_rejected_total", "counter",
	    "TCP connections refused for being over a limit.", st->tcp_rejected);
	one(r, "veto_tcp_idle_timeouts_total", "counter", "TCP connections closed for being idle.",
	    st->tcp_timeouts);

	if (m->cache_on) {
		one(r, "veto_cache_hits_total", "counter", "Cache lookups that found an answer.",
		    m->cache.hits);
		one(r, "veto_cache_misses_total", "counter", "Cache lookups that found none.",
		    m->cache.misses);
		one(r, "veto_cache_entries", "gauge", "Answers in the cache.", m->cache.entries);
		one(r, "veto_cache_bytes", "gauge", "Bytes of the answers in the cache.",
		    m->cache.bytes);
		one(r, "veto_cache_evictions_total", "counter", "Answers evicted to make room.",
		    m->cache.evictions);
	}

	family(r, "veto_reloads_total", "counter", "Configuration reloads, by result.");
	sample(r, "veto_reloads_total", (const char *const[]){"result", "ok", NULL}, st->reloads);
	sample(r, "veto_reloads_total", (const char *const[]){"result", "failed", NULL},
	       st->reload_failures);

	if (m->querylog_on) {
		family(r, "veto_log_records_lost_total", "counter",
		       "Query log records not stored one by one, by reason.");
		const struct {
			const char *reason;
			uint64_t v;
		} lost[] = {
		        {"unlogged", m->ql_unlogged},
		        {"evidence_lost", m->ql_evidence_lost},
		        {"file_write", m->ql_lost},
		        {"database", m->ql_db_dropped},
		};
		for (size_t i = 0; i < sizeof(lost) / sizeof(lost[0]); i++)
			sample(r, "veto_log_records_lost_total",
			       (const char *const[]){"reason", lost[i].reason, NULL}, lost[i].v);
	}
	if (m->devices_on)
		one(r, "veto_devices", "gauge", "Devices in the device table.", m->devices);
	return r->oom ? -ENOMEM : 0;
}

int
http_metrics_page(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct metrics_feed *feed = ctx;
	static __thread struct metrics m; /* large: not on the thread's stack */
	(void)req;

	int rc = metrics_feed_get(feed, &m, HTTP_METRICS_WAIT_MS);
	if (rc != 0) {
		http_resp_status(resp, 503);
		http_resp_type(resp, "text/plain; charset=utf-8");
		http_resp_printf(resp, "the DNS loop did not answer in time\n");
		return 0;
	}
	http_resp_type(resp, "text/plain; version=0.0.4; charset=utf-8");
	return http_metrics_render(&m, resp);
}
