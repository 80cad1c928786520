/*
 * limits: what keeps one client from taking the daemon down. Budgets sized from the descriptor
 * limit, per-client and per-prefix caps on queries waiting for upstream, TCP connections per
 * client, token buckets (server.rate_limit) and the error-reply limit, and the periodic warning
 * that reports what was refused, never one line per query.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "config.h"
#include "log.h"
#include "ratelimit.h"
#include "server_int.h"

int
limits_init(struct server *s)
{
	clientcount_init(&s->limits.counts);
	/* until limits_start() sizes them */
	s->limits.upstream = SERVER_MAX_QUERIES;
	s->limits.tcp = 65536;
	return ratelimit_new(LIMITS_RATE_ENTRIES, &s->limits.rl);
}

void
limits_destroy(struct server *s)
{
	clientcount_destroy(&s->limits.counts);
	ratelimit_free(&s->limits.rl);
}

/* Raises the soft RLIMIT_NOFILE to the hard one; returns the soft limit in use. */
static uint64_t
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
		log_warning("file descriptors: cannot read the limit: %s", strerror(errno));
		return 1024;
	}
	rlim_t was = rl.rlim_cur;
	if (rl.rlim_cur != rl.rlim_max) {
		struct rlimit want = rl;
		/* an unlimited hard limit is not accepted for descriptors: ask for a large one */
		want.rlim_cur = rl.rlim_max == RLIM_INFINITY ? (rlim_t)1 << 20 : rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &want) == 0)
			rl.rlim_cur = want.rlim_cur;
		else
			log_warning("file descriptors: cannot raise the limit from %" PRIu64
			            " to %" PRIu64 ": %s",
			            (uint64_t)was, (uint64_t)want.rlim_cur, strerror(errno));
	}
	uint64_t cur = rl.rlim_cur == RLIM_INFINITY ? (uint64_t)1 << 20 : (uint64_t)rl.rlim_cur;
	if (rl.rlim_cur != was)
		log_info("file descriptors: limit raised from %" PRIu64 " to %" PRIu64,
		         (uint64_t)was, cur);
	return cur;
}

void
limits_size(uint64_t nofile, size_t nlisten, uint32_t tcp_connections, uint32_t *upstream,
	    uint32_t *tcp)
{
	uint64_t reserve = LIMITS_FD_RESERVE + 2 * (uint64_t)nlisten;
	uint64_t avail = nofile > reserve + 64 ? nofile - reserve : 64;
	uint64_t t = avail / 4 > 0 ? avail / 4 : 1;

	if (t > tcp_connections)
		t = tcp_connections;
	uint64_t up = avail - t;
	if (up > SERVER_MAX_QUERIES)
		up = SERVER_MAX_QUERIES;
	*upstream = (uint32_t)up;
	*tcp = (uint32_t)t;
}

static void
on_limits_timer(uv_timer_t *t)
{
	limits_report(t->data, false);
}

void
limits_start(struct server *s)
{
	const struct config *cfg = policy_config(s->policy);
	struct limits *l = &s->limits;
	uint64_t reserve = LIMITS_FD_RESERVE + 2 * (uint64_t)cfg->server.nlisten;

	l->nofile = raise_nofile();
	limits_size(l->nofile, cfg->server.nlisten, cfg->server.tcp_connections, &l->upstream,
		    &l->tcp);
	if (s->self == NULL && l->tcp < cfg->server.tcp_connections)
		log_warning("file descriptors: %" PRIu64 " allow %" PRIu32 " tcp connections, "
		            "fewer than server.tcp_connections (%" PRIu32 "); raise the limit "
		            "(LimitNOFILE= in systemd) to allow more",
		            l->nofile, l->tcp, cfg->server.tcp_connections);
	if (s->self == NULL)
		log_info("file descriptors: %" PRIu64 ": at most %" PRIu32 " queries waiting for "
		         "upstream, %" PRIu32 " tcp connections (%" PRIu64 " kept for listeners, logs "
		         "and databases)%s",
		         l->nofile, l->upstream, l->tcp, reserve,
		         s->nworkers > 1 ? ", split evenly between the workers" : "");
	if (s->nworkers > 1) { /* the process's descriptors, shared by the workers */
		l->upstream = l->upstream / s->nworkers > 0 ? l->upstream / s->nworkers : 1;
		l->tcp = l->tcp / s->nworkers > 0 ? l->tcp / s->nworkers : 1;
	}

	uv_timer_init(s->loop, &l->timer);
	l->timer.data = s;
	l->timer_init = true;
	s->nobjects++;
	uv_timer_start(&l->timer, on_limits_timer, LIMITS_REPORT_MS, LIMITS_REPORT_MS);
}

void
limits_close(struct server *s)
{
	if (!s->limits.timer_init)
		return;
	s->limits.timer_init = false;
	uv_timer_stop(&s->limits.timer);
	uv_close((uv_handle_t *)&s->limits.timer, server_handle_closed);
}

/* Appends ", what N" (or "what N" first) to buf when n > 0. */
static void
add_count(char *buf, size_t size, size_t *off, const char *what, uint64_t n)
{
	if (n == 0 || *off >= size)
		return;
	int w = snprintf(buf + *off, size - *off, "%s%s %" PRIu64, *off > 0 ? ", " : "", what, n);
	if (w > 0)
		*off += (size_t)w;
}

static size_t
describe(const struct limits *l, const struct limits_counts *c, char *buf, size_t size)
{
	size_t off = 0;
	char what[96];

	buf[0] = '\0';
	add_count(buf, size, &off, "SERVFAIL at server.queries_per_client", c->client_cap);
	add_count(buf, size, &off, "SERVFAIL at server.queries_per_prefix", c->prefix_cap);
	snprintf(what, sizeof(what), "SERVFAIL at the upstream limit (%" PRIu32 " waiting)",
	         l->upstream);
	add_count(buf, size, &off, what, c->budget);
	add_count(buf, size, &off, "dropped without a query slot", c->slots);
	add_count(buf, size, &off, "descriptor errors", c->fds);
	add_count(buf, size, &off, "tcp connections closed at server.tcp_connections_per_client",
	          c->tcp_client_cap);
	add_count(buf, size, &off, "idle tcp connections closed for new ones", c->tcp_evicted);
	add_count(buf, size, &off, "tcp connections refused (none idle)", c->tcp_full);
	add_count(buf, size, &off, "error replies not sent (server.error_replies_per_second)",
	          c->errors_dropped);
	add_count(buf, size, &off, "queries rate limited (server.rate_limit)", c->rate_limited);
	return off;
}

/* " 192.0.2.7 (120), ..." of the most limited keys of kind. */
static void
top_clients(struct server *s, enum clientkey_kind kind, char *buf, size_t size)
{
	struct ratelimit_top top[LIMITS_TOP];
	size_t n = ratelimit_top(s->limits.rl, kind, top, LIMITS_TOP);
	size_t off = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && off < size; i++) {
		char who[64];
		clientkey_text(&top[i].key, who, sizeof(who));
		int w = snprintf(buf + off, size - off, "%s%s (%" PRIu32 ")", i > 0 ? ", " : "",
		                 who, top[i].limited);
		if (w > 0)
			off += (size_t)w;
	}
}

void
limits_report(struct server *s, bool final)
{
	struct limits *l = &s->limits;
	char text[1024], who[512];

	if (describe(l, &l->win, text, sizeof(text)) > 0)
		log_warning("limits: last %s: %s", final ? "period" : "10 s", text);
	if (l->win.rate_limited > 0) {
		top_clients(s, CLIENTKEY_QUERIES, who, sizeof(who));
		if (who[0] != '\0')
			log_warning("rate limit: most limited clients: %s", who);
		top_clients(s, CLIENTKEY_QUERIES_PREFIX, who, sizeof(who));
		if (who[0] != '\0')
			log_warning("rate limit: most limited prefixes: %s", who);
	}
	if (l->win.errors_dropped > 0) {
		top_clients(s, CLIENTKEY_ERRORS, who, sizeof(who));
		if (who[0] != '\0')
			log_warning("error replies: most limited clients: %s", who);
	}
	memset(&l->win, 0, sizeof(l->win));
	if (final && describe(l, &l->total, text, sizeof(text)) > 0)
		log_info("limits: since start: %s", text);
}

int
limits_admit(struct server *s, const struct sockaddr *client)
{
	const struct config *cfg = policy_config(s->policy);
	struct limits *l = &s->limits;
	struct clientkey a, p;

	if (l->nupstream >= l->upstream) {
		LIMITS_COUNT(s, budget);
		return -EBUSY;
	}
	/* each key checked against its cap and counted in one lookup */
	clientkey_of(client, CLIENTKEY_QUERIES, &a);
	int err = clientcount_add_below(&l->counts, &a, cfg->server.queries_per_client);
	if (err == -EBUSY)
		LIMITS_COUNT(s, client_cap);
	if (err != 0)
		return err;
	clientkey_of(client, CLIENTKEY_QUERIES_PREFIX, &p);
	err = clientcount_add_below(&l->counts, &p, cfg->server.queries_per_prefix);
	if (err != 0) {
		clientcount_sub(&l->counts, &a);
		if (err == -EBUSY)
			LIMITS_COUNT(s, prefix_cap);
		return err;
	}
	l->nupstream++;
	return 0;
}

void
limits_release(struct server *s, const struct sockaddr *client)
{
	struct limits *l = &s->limits;
	struct clientkey k;

	clientkey_of(client, CLIENTKEY_QUERIES, &k);
	clientcount_sub(&l->counts, &k);
	clientkey_of(client, CLIENTKEY_QUERIES_PREFIX, &k);
	clientcount_sub(&l->counts, &k);
	l->nupstream--;
}

bool
limits_rate_ok(struct server *s, const struct sockaddr *client, bool tcp)
{
	const struct config *cfg = policy_config(s->policy);
	struct limits *l = &s->limits;
	struct clientkey k;
	uint64_t now = uv_now(s->loop);

	/* truncation sends the client to TCP, which is bounded by the connection limits */
	if (tcp && cfg->server.rate_limit.action == CONFIG_RATE_TRUNCATE)
		return true;
	if (cfg->server.rate_limit.queries_per_second > 0) {
		clientkey_of(client, CLIENTKEY_QUERIES, &k);
		if (!ratelimit_take(l->rl, &k, cfg->server.rate_limit.queries_per_second,
		                    cfg->server.rate_limit.burst, now)) {
			LIMITS_COUNT(s, rate_limited);
			return false;
		}
	}
	if (cfg->server.rate_limit.prefix_queries_per_second > 0) {
		clientkey_of(client, CLIENTKEY_QUERIES_PREFIX, &k);
		if (!ratelimit_take(l->rl, &k, cfg->server.rate_limit.prefix_queries_per_second,
		                    cfg->server.rate_limit.prefix_burst, now)) {
			LIMITS_COUNT(s, rate_limited);
			return false;
		}
	}
	return true;
}

bool
limits_error_reply_ok(struct server *s, const struct sockaddr *client)
{
	const struct config *cfg = policy_config(s->policy);
	uint32_t rate = cfg->server.error_replies_per_second;
	struct clientkey k;

	if (rate == 0)
		return true;
	clientkey_of(client, CLIENTKEY_ERRORS, &k);
	uint32_t burst = rate > UINT32_MAX / 2 ? UINT32_MAX : 2 * rate;
	if (ratelimit_take(s->limits.rl, &k, rate, burst, uv_now(s->loop)))
		return true;
	LIMITS_COUNT(s, errors_dropped);
	return false;
}

int
limits_tcp_add(struct server *s, const struct sockaddr *peer)
{
	const struct config *cfg = policy_config(s->policy);
	struct limits *l = &s->limits;
	struct clientkey k;

	clientkey_of(peer, CLIENTKEY_TCP, &k);
	if (clientcount_get(&l->counts, &k) >= cfg->server.tcp_connections_per_client) {
		LIMITS_COUNT(s, tcp_client_cap);
		return -EBUSY;
	}
	return clientcount_add(&l->counts, &k);
}

void
limits_tcp_sub(struct server *s, const struct sockaddr *peer)
{
	struct clientkey k;

	clientkey_of(peer, CLIENTKEY_TCP, &k);
	clientcount_sub(&s->limits.counts, &k);
}

unsigned
limits_tcp_max(const struct server *s)
{
	uint32_t cap = policy_config(s->policy)->server.tcp_connections;

	if (s->nworkers > 1) /* all listeners together: a share per worker */
		cap = cap / s->nworkers > 0 ? cap / s->nworkers : 1;

	return cap < s->limits.tcp ? cap : s->limits.tcp;
}
