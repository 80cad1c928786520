/*
 * metrics: the counters snapshot and its JSON line (see metrics.h).
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

#include "devices.h"
#include "identify.h"
#include "query.h"
#include "pgstore.h"
#include "querylog.h"
#include "server_int.h"
#include "worker.h"

static const char *const rcode_names[METRICS_RCODES] = {
        "NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "other",
};
static const char *const event_names[METRICS_EVENTS] = {
        "first_seen", "vendor", "group_change", "other",
};

const char *
metrics_rcode_name(size_t slot)
{
	return slot < METRICS_RCODES ? rcode_names[slot] : "other";
}

const char *
metrics_action_name(size_t action)
{
	return querylog_action_name((uint8_t)action);
}

const char *
metrics_event_name(size_t slot)
{
	return slot < METRICS_EVENTS ? event_names[slot] : "other";
}

/* The counters' slot of group g of pol (g < 0: none). */
static size_t
group_slot(int g)
{
	if (g < 0)
		return METRICS_NONE;
	return g < METRICS_GROUPS ? (size_t)g : METRICS_OTHER;
}

void
metrics_count_query(struct server *s, const struct query *q, const struct policy *pol)
{
	struct metrics_counts *c = &s->counts;
	size_t a = q->action < METRICS_ACTIONS ? q->action : 0;
	size_t g = group_slot(q->group);

	c->by_action[q->tcp ? 1 : 0][a]++;
	c->by_rcode[q->rcode < METRICS_RCODES - 1 ? q->rcode : METRICS_RCODES - 1]++;
	if (pol != s->policy && q->group >= 0) {
		/* decided before a reload: find its group by name in the policy in use */
		const char *name = policy_group_name(pol, q->group);
		const struct config *cur = policy_config(s->policy);
		g = METRICS_OTHER;
		for (size_t i = 0; name != NULL && i < cur->ngroups; i++) {
			if (strcmp(cur->groups[i].name, name) == 0) {
				g = group_slot((int)i);
				break;
			}
		}
	}
	c->by_group[g][a]++;
}

void
metrics_count_event(struct server *s, const char *kind)
{
	size_t i = 0;
	while (i < METRICS_EVENTS - 1 && strcmp(event_names[i], kind) != 0)
		i++;
	s->counts.device_events[i]++;
}

void
metrics_remap_groups(struct metrics_counts *c, const struct policy *old,
                     const struct policy *new_policy)
{
	const struct config *o = policy_config(old), *n = policy_config(new_policy);
	uint64_t moved[METRICS_GROUPS + 2][METRICS_ACTIONS];

	memset(moved, 0, sizeof(moved));
	memcpy(moved[METRICS_OTHER], c->by_group[METRICS_OTHER], sizeof(moved[0]));
	memcpy(moved[METRICS_NONE], c->by_group[METRICS_NONE], sizeof(moved[0]));
	for (size_t i = 0; i < n->ngroups && i < METRICS_GROUPS; i++) {
		for (size_t j = 0; j < o->ngroups && j < METRICS_GROUPS; j++) {
			if (strcmp(n->groups[i].name, o->groups[j].name) == 0) {
				memcpy(moved[i], c->by_group[j], sizeof(moved[0]));
				break;
			}
		}
	}
	memcpy(c->by_group, moved, sizeof(moved));
}

static void
copy_name(char dst[METRICS_NAME], const char *src)
{
	snprintf(dst, METRICS_NAME, "%s", src != NULL ? src : "");
}

void
metrics_snapshot(const struct server *s, struct metrics *m)
{
	memset(m, 0, sizeof(*m));
	uint64_t now = uv_now(s->loop);
	m->uptime_ms = now > s->started_ms ? now - s->started_ms : 0;
	m->server = s->stats;
	m->tcp_connections = s->nactive;
	if (s->cache != NULL) {
		m->cache_on = true;
		cache_get_stats(s->cache, &m->cache);
	}
	if (s->qlog != NULL) {
		m->querylog_on = true;
		m->ql_dropped = querylog_dropped(s->qlog);
		m->ql_unlogged = querylog_unlogged(s->qlog);
		m->ql_evidence_lost = querylog_evidence_lost(s->qlog);
		m->ql_lost = querylog_lost(s->qlog);
		m->ql_db_dropped = querylog_db_dropped(s->qlog);
		struct pgstore_stats pg;
		if (querylog_pg_stats(s->qlog, &pg)) {
			m->pg_on = true;
			m->pg_state = pgstore_state_name(pg.state);
			m->pg_stored = pg.stored;
			m->pg_spooled_rows = pg.spooled_rows;
			m->pg_spool_bytes = pg.spool_bytes;
			m->pg_lost = pg.lost;
		}
	}
	if (s->devices != NULL) {
		m->devices_on = true;
		m->devices = devices_count(s->devices);
		if (s->devshare != NULL) {
			m->share_on = true;
			devices_share_get_stats(s->devshare, &m->share);
		}
	}
	m->counts = s->counts;
	const struct config *cfg = policy_config(s->policy);
	m->ngroups = cfg->ngroups < METRICS_GROUPS ? cfg->ngroups : METRICS_GROUPS;
	for (size_t i = 0; i < m->ngroups; i++)
		copy_name(m->groups[i], cfg->groups[i].name);
	m->nlists = cfg->nlists < METRICS_LISTS ? cfg->nlists : METRICS_LISTS;
	for (size_t i = 0; i < m->nlists; i++) {
		struct policy_list_stats ls;
		policy_list_stats(s->policy, (int)i, &ls);
		copy_name(m->lists[i].name, cfg->lists[i].name);
		m->lists[i].entries = ls.entries;
	}
	m->policy_age_ms = now > s->policy_ms ? now - s->policy_ms : 0;
	m->nurls = 0;
	for (size_t l = 0; l < cfg->nlists && s->lists != NULL; l++) {
		for (size_t i = 0; i < cfg->lists[l].nurls && m->nurls < METRICS_URLS; i++) {
			struct updater_url_stat st;
			if (updater_url_stat(s->lists, l, i, &st) != 0)
				continue;
			struct metrics_url *mu = &m->urls[m->nurls++];
			copy_name(mu->list, cfg->lists[l].name);
			snprintf(mu->url, sizeof(mu->url), "%s", cfg->lists[l].urls[i]);
			mu->last_attempt = st.last_attempt;
			mu->last_good = st.last_good;
			mu->failures = st.failures;
		}
	}
	if (s->upstream != NULL) {
		upstream_get_stats(s->upstream, &m->upstream);
		m->nservers = upstream_get_server_stats(s->upstream, m->servers, METRICS_SERVERS);
	}
	workers_add_metrics(s, m); /* server.workers: the others' last published counters */
}

void
metrics_snapshot_devices(const struct server *s, struct metrics *m)
{
	struct metrics_devices *d = &m->dev;
	const struct config *cfg = policy_config(s->policy);

	memset(d, 0, sizeof(*d));
	if (s->devices == NULL)
		return;
	d->taken = true;
	/* the vendors named by the configuration (signatures, inventory), once each */
	size_t nsig = cfg->devices.nsignatures, ninv = cfg->devices.ninventory;
	for (size_t i = 0; i < nsig + ninv && d->nvendors < METRICS_VENDORS; i++) {
		const char *v = i < nsig ? cfg->devices.signatures[i].vendor
		                         : cfg->devices.inventory[i - nsig].vendor;
		size_t j = 0;
		if (v == NULL || v[0] == '\0')
			continue;
		while (j < d->nvendors && strcasecmp(d->vendors[j], v) != 0)
			j++;
		if (j == d->nvendors)
			copy_name(d->vendors[d->nvendors++], v);
	}
	size_t n = devices_count(s->devices);
	for (size_t i = 0; i < n; i++) {
		const struct devices_record *r = devices_record_at(s->devices, i);
		size_t v = METRICS_VENDORS + 1; /* unknown */
		if (r->vendor[0] != '\0') {
			v = METRICS_VENDORS; /* other */
			for (size_t j = 0; j < d->nvendors; j++) {
				if (strcasecmp(d->vendors[j], r->vendor) == 0) {
					v = j;
					break;
				}
			}
		}
		d->by_vendor[v]++;
		d->by_source[r->vendor_source < METRICS_SOURCES ? r->vendor_source : 0]++;
		size_t g = METRICS_NONE;
		if (r->group[0] != '\0') {
			g = METRICS_OTHER;
			for (size_t j = 0; j < m->ngroups; j++) {
				if (strcmp(m->groups[j], r->group) == 0) {
					g = j;
					break;
				}
			}
		}
		d->by_group[g]++;
	}
}

struct out {
	char *buf;
	size_t size, off;
	bool full;
};

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;

	if (o->full)
		return;
	va_start(ap, fmt);
	int n = vsnprintf(o->buf + o->off, o->size - o->off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->size - o->off) {
		o->full = true;
		return;
	}
	o->off += (size_t)n;
}

/* "name":value pairs of one section; the first without a comma. */
struct field {
	const char *name;
	uint64_t v;
};

static void
section(struct out *o, const char *name, const struct field *f, size_t n)
{
	put(o, ",\"%s\":{", name);
	for (size_t i = 0; i < n; i++)
		put(o, "%s\"%s\":%" PRIu64, i > 0 ? "," : "", f[i].name, f[i].v);
	put(o, "}");
}

int
metrics_json(const struct metrics *m, char *buf, size_t size)
{
	struct out o = {.buf = buf, .size = size};
	const struct server_stats *st = &m->server;
	const struct field queries[] = {
	        {"total", st->udp_queries + st->tcp_queries},
	        {"udp", st->udp_queries},
	        {"tcp", st->tcp_queries},
	        {"forwarded", st->forwarded},
	        {"cache", st->cache_hits},
	        {"blocked", st->blocked},
	        {"cloaked", st->cloaked},
	        {"refused", st->refused},
	        {"errors", st->errors},
	        {"servfail", st->servfail},
	        {"dropped", st->dropped},
	        {"send_errors", st->send_errors},
	};
	const struct field tcp[] = {
	        {"open", m->tcp_connections},
	        {"accepted", st->tcp_accepted},
	        {"rejected", st->tcp_rejected},
	        {"timeouts", st->tcp_timeouts},
	};
	const struct field cache[] = {
	        {"entries", m->cache.entries}, {"bytes", m->cache.bytes},
	        {"hits", m->cache.hits},       {"misses", m->cache.misses},
	        {"inserts", m->cache.inserts}, {"evictions", m->cache.evictions},
	        {"expired", m->cache.expired}, {"stale_served", m->cache.stale_served},
	        {"prefetches", m->cache.prefetches},
	};
	const struct field qlog[] = {
	        {"dropped", m->ql_dropped},
	        {"unlogged", m->ql_unlogged},
	        {"evidence_lost", m->ql_evidence_lost},
	        {"file_lost", m->ql_lost},
	        {"db_dropped", m->ql_db_dropped},
	};
	const struct field rcodes[] = {
	        {"noerror", m->counts.by_rcode[0]},  {"formerr", m->counts.by_rcode[1]},
	        {"servfail", m->counts.by_rcode[2]}, {"nxdomain", m->counts.by_rcode[3]},
	        {"notimp", m->counts.by_rcode[4]},   {"refused", m->counts.by_rcode[5]},
	        {"other", m->counts.by_rcode[6]},
	};
	const struct field upstream[] = {
	        {"queries", m->upstream.queries},
	        {"timeouts", m->upstream.timeouts},
	        {"dropped_replies", m->upstream.dropped_replies},
	        {"failed", m->upstream.failed},
	        {"sent_tls", m->upstream.sent_tls},
	        {"tls_connections", m->upstream.tls_connections},
	        {"tls_resumed", m->upstream.tls_resumed},
	        {"tls_failures", m->upstream.tls_failures},
	        {"sent_https", m->upstream.sent_https},
	};
	const struct field events[] = {
	        {"first_seen", m->counts.device_events[0]},
	        {"vendor", m->counts.device_events[1]},
	        {"group_change", m->counts.device_events[2]},
	};
	const struct field reloads[] = {
	        {"ok", st->reloads},
	        {"failed", st->reload_failures},
	};

	if (size == 0)
		return -ENOSPC;
	buf[0] = '\0';
	put(&o, "{\"uptime_s\":%" PRIu64, m->uptime_ms / 1000);
	section(&o, "queries", queries, sizeof(queries) / sizeof(queries[0]));
	section(&o, "tcp", tcp, sizeof(tcp) / sizeof(tcp[0]));
	if (m->cache_on)
		section(&o, "cache", cache, sizeof(cache) / sizeof(cache[0]));
	if (m->querylog_on)
		section(&o, "querylog", qlog, sizeof(qlog) / sizeof(qlog[0]));
	if (m->pg_on) {
		const struct field pg[] = {
		        {"stored", m->pg_stored},
		        {"spooled_rows", m->pg_spooled_rows},
		        {"spool_bytes", m->pg_spool_bytes},
		        {"lost", m->pg_lost},
		};
		put(&o, ",\"store_state\":\"%s\"", m->pg_state);
		section(&o, "store", pg, sizeof(pg) / sizeof(pg[0]));
	}
	section(&o, "rcodes", rcodes, sizeof(rcodes) / sizeof(rcodes[0]));
	section(&o, "upstream", upstream, sizeof(upstream) / sizeof(upstream[0]));
	if (m->devices_on) {
		put(&o, ",\"devices\":{\"known\":%" PRIu64 "}", m->devices);
		if (m->share_on) { /* the other workers' copy and what they send back */
			const struct field sh[] = {
				{"snapshots", m->share.published},
				{"snapshots_full", m->share.full},
				{"snapshot_devices", m->share.entries},
				{"full_us", m->share.full_us_last},
				{"full_us_max", m->share.full_us_max},
				{"delta_us", m->share.delta_us_last},
				{"delta_us_max", m->share.delta_us_max},
				{"observations", m->share.observations},
				{"dropped", m->share.dropped},
				{"evidence_dropped", m->share.evidence_dropped},
				{"evidence_ignored", m->share.evidence_ignored},
			};
			section(&o, "devices_shared", sh, sizeof(sh) / sizeof(sh[0]));
		}
		section(&o, "device_events", events, sizeof(events) / sizeof(events[0]));
	}
	section(&o, "reloads", reloads, sizeof(reloads) / sizeof(reloads[0]));
	put(&o, ",\"workers\":{\"count\":%u,\"udp_sockets\":\"%s\",\"help_requests\":%" PRIu64,
	    m->nworkers, m->udp_shared ? "shared" : "per_worker", st->udp_help_requests);
	for (unsigned i = 0; i < m->nworkers && i < METRICS_WORKERS; i++)
		put(&o, ",\"queries_%u\":%" PRIu64 ",\"reloads_%u\":%" PRIu64, i,
		    m->worker_queries[i], i, m->worker_reloads[i]);
	put(&o, "}");
	put(&o, "}");
	if (o.full) {
		buf[o.off] = '\0';
		return -ENOSPC;
	}
	return 0;
}
