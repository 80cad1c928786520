/*
 * metrics: the counters snapshot and its JSON line (see metrics.h).
 */
#include "metrics.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>

#include "devices.h"
#include "querylog.h"
#include "server_int.h"

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
	}
	if (s->devices != NULL) {
		m->devices_on = true;
		m->devices = devices_count(s->devices);
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
	if (m->devices_on)
		put(&o, ",\"devices\":{\"known\":%" PRIu64 "}", m->devices);
	section(&o, "reloads", reloads, sizeof(reloads) / sizeof(reloads[0]));
	put(&o, "}");
	if (o.full) {
		buf[o.off] = '\0';
		return -ENOSPC;
	}
	return 0;
}
