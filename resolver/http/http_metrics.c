/*
 * http_metrics: struct metrics as Prometheus text (see http_metrics.h). Every family has its
 * HELP and TYPE lines; label values are escaped (\\, \", \n) and come from bounded sets.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

static const char *
group_label(const struct metrics *m, size_t slot)
{
	if (slot == METRICS_NONE)
		return "(none)";
	if (slot == METRICS_OTHER)
		return "(other)";
	return m->groups[slot];
}

/* The group slots worth a series: every group of the policy, "(none)", "(other)" once used. */
static bool
group_shown(const struct metrics *m, size_t slot, const uint64_t *v, size_t n)
{
	if (slot < m->ngroups || slot == METRICS_NONE)
		return true;
	if (slot != METRICS_OTHER)
		return false;
	for (size_t i = 0; i < n; i++) {
		if (v[i] != 0)
			return true;
	}
	return false;
}

static void
render_groups(const struct metrics *m, struct http_resp *r)
{
	const struct metrics_counts *c = &m->counts;

	family(r, "veto_queries_total", "counter",
	       "DNS queries answered, by transport and action (forward, cache, sinkhole, nxdomain, "
	       "nodata, refused, servfail, formerr, notimp).");
	for (size_t t = 0; t < 2; t++) {
		for (size_t a = 0; a < METRICS_ACTIONS; a++)
			sample(r, "veto_queries_total",
			       (const char *const[]){"protocol", t ? "tcp" : "udp", "action",
			                             metrics_action_name(a), NULL},
			       c->by_action[t][a]);
	}
	family(r, "veto_responses_total", "counter", "DNS replies sent, by response code.");
	for (size_t i = 0; i < METRICS_RCODES; i++)
		sample(r, "veto_responses_total",
		       (const char *const[]){"rcode", metrics_rcode_name(i), NULL}, c->by_rcode[i]);
	family(r, "veto_group_queries_total", "counter",
	       "DNS queries answered, by the client's group and the action.");
	for (size_t g = 0; g < METRICS_GROUPS + 2; g++) {
		if (!group_shown(m, g, c->by_group[g], METRICS_ACTIONS))
			continue;
		for (size_t a = 0; a < METRICS_ACTIONS; a++)
			sample(r, "veto_group_queries_total",
			       (const char *const[]){"group", group_label(m, g), "action",
			                             metrics_action_name(a), NULL},
			       c->by_group[g][a]);
	}
}

static void
render_devices(const struct metrics *m, struct http_resp *r)
{
	const struct metrics_devices *d = &m->dev;
	static const char *const sources[METRICS_SOURCES] = {
	        "none", "inventory", "oui", "signature", "hostname", "pinned",
	};

	one(r, "veto_devices", "gauge", "Devices in the device table.", m->devices);
	if (m->share_on) {
		one(r, "veto_devices_snapshots_total", "counter",
		    "Copies of the device table published to the other workers.",
		    m->share.published);
		one(r, "veto_devices_snapshots_full_total", "counter",
		    "Of them, full copies (the others carry the devices changed since the last one).",
		    m->share.full);
		one(r, "veto_devices_observations_dropped_total", "counter",
		    "Queries of other workers not recorded in the device table: queue full.",
		    m->share.dropped);
		one(r, "veto_devices_evidence_dropped_total", "counter",
		    "Of them, signature queries (their device is no longer attributed).",
		    m->share.evidence_dropped);
	}
	family(r, "veto_device_events_total", "counter",
	       "Device events (first sight, vendor attribution, group change).");
	for (size_t i = 0; i < METRICS_EVENTS; i++)
		sample(r, "veto_device_events_total",
		       (const char *const[]){"kind", metrics_event_name(i), NULL},
		       m->counts.device_events[i]);
	if (!d->taken)
		return;
	family(r, "veto_devices_by_vendor", "gauge",
	       "Devices by vendor (the vendors the configuration names; other, unknown).");
	for (size_t i = 0; i < d->nvendors; i++)
		sample(r, "veto_devices_by_vendor",
		       (const char *const[]){"vendor", d->vendors[i], NULL}, d->by_vendor[i]);
	sample(r, "veto_devices_by_vendor", (const char *const[]){"vendor", "(other)", NULL},
	       d->by_vendor[METRICS_VENDORS]);
	sample(r, "veto_devices_by_vendor", (const char *const[]){"vendor", "(unknown)", NULL},
	       d->by_vendor[METRICS_VENDORS + 1]);
	family(r, "veto_devices_by_source", "gauge",
	       "Devices by the evidence their vendor came from.");
	for (size_t i = 0; i < METRICS_SOURCES; i++)
		sample(r, "veto_devices_by_source",
		       (const char *const[]){"source", sources[i], NULL}, d->by_source[i]);
	family(r, "veto_devices_by_group", "gauge", "Devices by the group of their last query.");
	for (size_t g = 0; g < METRICS_GROUPS + 2; g++) {
		if (g == METRICS_OTHER ? d->by_group[g] == 0 : g >= m->ngroups && g != METRICS_NONE)
			continue;
		sample(r, "veto_devices_by_group",
		       (const char *const[]){"group", group_label(m, g), NULL}, d->by_group[g]);
	}
}

static void
render_upstream(const struct metrics *m, struct http_resp *r)
{
	const struct upstream_stats *u = &m->upstream;
	one(r, "veto_upstream_queries_total", "counter", "Queries sent upstream.", u->queries);
	one(r, "veto_upstream_timeouts_total", "counter", "Upstream attempts that timed out.",
	    u->timeouts);
	one(r, "veto_upstream_dropped_replies_total", "counter",
	    "Upstream replies dropped (wrong address, port, ID or question, or malformed).",
	    u->dropped_replies);
	one(r, "veto_upstream_tls_connections_total", "counter",
	    "DNS-over-TLS connections established (handshakes completed).", u->tls_connections);
	one(r, "veto_upstream_tls_failures_total", "counter",
	    "DNS-over-TLS connections that failed (connect, handshake or certificate, or closed "
	    "with queries in flight).",
	    u->tls_failures);
	family(r, "veto_upstream_errors_total", "counter",
	       "Failed upstream attempts (timeout, network error, unusable reply), per server.");
	for (size_t i = 0; i < m->nservers; i++)
		sample(r, "veto_upstream_errors_total",
		       (const char *const[]){"server", m->servers[i].text, NULL},
		       m->servers[i].errors);
	family(r, "veto_upstream_latency_seconds", "histogram",
	       "Time from a client's query to the upstream answer, per server.");
	for (size_t i = 0; i < m->nservers; i++) {
		const struct upstream_server_stats *st = &m->servers[i];
		uint64_t cum = 0;
		char le[32];
		for (size_t b = 0; b <= UPSTREAM_LATENCY_BUCKETS; b++) {
			cum += st->buckets[b];
			if (b < UPSTREAM_LATENCY_BUCKETS)
				snprintf(le, sizeof(le), "%g", upstream_latency_bounds_us[b] / 1e6);
			else
				snprintf(le, sizeof(le), "+Inf");
			sample(r, "veto_upstream_latency_seconds_bucket",
			       (const char *const[]){"server", st->text, "le", le, NULL}, cum);
		}
		http_resp_printf(r, "veto_upstream_latency_seconds_sum{server=\"");
		label_value(r, st->text);
		http_resp_printf(r, "\"} %" PRIu64 ".%06u\n", st->sum_us / 1000000,
		                 (unsigned)(st->sum_us % 1000000));
		sample(r, "veto_upstream_latency_seconds_count",
		       (const char *const[]){"server", st->text, NULL}, st->answers);
	}
}

static void
render_lists(const struct metrics *m, struct http_resp *r)
{
	family(r, "veto_list_entries", "gauge", "Names in each list as loaded.");
	for (size_t i = 0; i < m->nlists; i++)
		sample(r, "veto_list_entries",
		       (const char *const[]){"list", m->lists[i].name, NULL}, m->lists[i].entries);
	family(r, "veto_list_age_seconds", "gauge",
	       "Seconds since the lists in use were loaded (start, reload or download).");
	for (size_t i = 0; i < m->nlists; i++)
		sample(r, "veto_list_age_seconds",
		       (const char *const[]){"list", m->lists[i].name, NULL},
		       m->policy_age_ms / 1000);
	if (m->nurls == 0)
		return;
	family(r, "veto_list_download_last_success_timestamp_seconds", "gauge",
	       "Unix time of the last successful download of a list URL (a new copy or "
	       "unchanged); 0 before the first.");
	for (size_t i = 0; i < m->nurls; i++)
		sample(r, "veto_list_download_last_success_timestamp_seconds",
		       (const char *const[]){"list", m->urls[i].list, "url", m->urls[i].url, NULL},
		       m->urls[i].last_good > 0 ? (uint64_t)m->urls[i].last_good : 0);
	family(r, "veto_list_download_last_attempt_timestamp_seconds", "gauge",
	       "Unix time of the last download attempt of a list URL; 0 before the first.");
	for (size_t i = 0; i < m->nurls; i++)
		sample(r, "veto_list_download_last_attempt_timestamp_seconds",
		       (const char *const[]){"list", m->urls[i].list, "url", m->urls[i].url, NULL},
		       m->urls[i].last_attempt > 0 ? (uint64_t)m->urls[i].last_attempt : 0);
	family(r, "veto_list_download_failures", "gauge",
	       "Failed downloads of a list URL in a row (0 after a success).");
	for (size_t i = 0; i < m->nurls; i++)
		sample(r, "veto_list_download_failures",
		       (const char *const[]){"list", m->urls[i].list, "url", m->urls[i].url, NULL},
		       m->urls[i].failures);
}

/* Resident memory from /proc/self/statm (this thread: never the loop). 0 when unknown. */
static uint64_t
rss_bytes(void)
{
	unsigned long long size, resident;
	FILE *f = fopen("/proc/self/statm", "re");
	if (f == NULL)
		return 0;
	int n = fscanf(f, "%llu %llu", &size, &resident);
	fclose(f);
	long page = sysconf(_SC_PAGESIZE);
	return n == 2 && page > 0 ? (uint64_t)resident * (uint64_t)page : 0;
}

int
http_metrics_render(const struct metrics *m, struct http_resp *r)
{
	const struct server_stats *st = &m->server;

	family(r, "veto_build_info", "gauge", "Veto's version (the value is always 1).");
	sample(r, "veto_build_info", (const char *const[]){"version", VETO_VERSION, NULL}, 1);
	http_resp_printf(r,
	                 "# HELP veto_uptime_seconds Seconds since the daemon started.\n"
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
	one(r, "veto_udp_help_requests_total", "counter",
	    "Times the main loop, behind on UDP, asked another worker to read its sockets.",
	    st->udp_help_requests);

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
		one(r, "veto_cache_stale_served_total", "counter",
		    "Expired answers served because no upstream answered (RFC 8767).",
		    m->cache.stale_served);
		one(r, "veto_cache_prefetches_total", "counter",
		    "Background refreshes of popular answers near expiry.", m->cache.prefetches);
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
	if (m->pg_on) {
		one(r, "veto_store_rows_stored_total", "counter",
		    "Query log rows committed to PostgreSQL (store.postgresql).", m->pg_stored);
		one(r, "veto_store_spooled_rows", "gauge",
		    "Rows waiting in the local spool for PostgreSQL.", m->pg_spooled_rows);
		one(r, "veto_store_spool_bytes", "gauge", "Octets of the local spool's files.",
		    m->pg_spool_bytes);
		one(r, "veto_store_rows_lost_total", "counter",
		    "Rows and events PostgreSQL did not get: spool full, or refused.", m->pg_lost);
		one(r, "veto_store_up", "gauge", "1 while the writer's PostgreSQL connection is up.",
		    strcmp(m->pg_state, "up") == 0);
	}
	if (m->devices_on)
		render_devices(m, r);
	render_groups(m, r);
	render_upstream(m, r);
	render_lists(m, r);
	if (m->rss_bytes > 0)
		one(r, "veto_process_resident_memory_bytes", "gauge",
		    "Resident memory of the veto process.", m->rss_bytes);
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
	m.rss_bytes = rss_bytes();
	http_resp_type(resp, "text/plain; version=0.0.4; charset=utf-8");
	return http_metrics_render(&m, resp);
}
