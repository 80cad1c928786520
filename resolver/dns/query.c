/*
 * query: per-query state, the answering pipeline and its exactly-once finish.
 */
#include "query.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <netinet/in.h>

#include "cache.h"
#include "check.h"
#include "log.h"
#include "querylog.h"
#include "server_int.h"
#include "text.h"
#include "sockaddr.h"

void
query_pool_init(struct query_pool *p, size_t max)
{
	memset(p, 0, sizeof(*p));
	p->max = max;
}

void
query_pool_destroy(struct query_pool *p)
{
	REQUIRE(p->used == 0);
	for (size_t i = 0; i < p->nblocks; i++)
		free(p->blocks[i]);
	free(p->blocks);
	memset(p, 0, sizeof(*p));
}

static int
pool_grow(struct query_pool *p)
{
	if ((p->nblocks + 1) * SERVER_QUERY_BLOCK > p->max)
		return -ENOBUFS;
	struct query **blocks = realloc(p->blocks, (p->nblocks + 1) * sizeof(*blocks));
	if (blocks == NULL)
		return -ENOMEM;
	p->blocks = blocks;
	struct query *b = calloc(SERVER_QUERY_BLOCK, sizeof(*b));
	if (b == NULL)
		return -ENOMEM;
	p->blocks[p->nblocks++] = b;
	for (size_t i = SERVER_QUERY_BLOCK; i-- > 0;) {
		b[i].next = p->free;
		p->free = &b[i];
	}
	return 0;
}

struct query *
query_get(struct server *s, const struct sockaddr *client, bool tcp)
{
	struct query_pool *p = &s->pool;

	if (p->free == NULL && pool_grow(p) != 0)
		return NULL;
	struct query *q = p->free;
	p->free = q->next;
	p->used++;

	q->prev = q->next = NULL;
	q->srv = s;
	q->policy = NULL;
	q->via.udp = NULL;
	q->wait = NULL;
	q->t_start = uv_hrtime();
	memcpy(&q->client, client, sockaddr_len(client));
	q->upstream.ss_family = 0;
	q->group = -1;
	q->list = -1;
	q->rule_label = -1;
	q->rule_len = 0;
	q->action = QUERYLOG_ACTION_FORWARD;
	q->rcode = 0;
	q->tcp = tcp;
	q->blocked = false;
	q->async = false;
	q->finished = false;
	q->admitted = false;
	q->nolog = false;
	q->stale_watched = false;
	q->want_stale = false;
	q->dq.has_question = false;
	q->dq.qname.len = 0;
	q->dq.qtype = 0;
	q->ident.has_mac = false;
	q->ident.device[0] = '\0';
	q->ident.vendor[0] = '\0';
	q->ident.vendor_source = IDENTITY_SRC_NONE;
	return q;
}

static void
pool_put(struct query_pool *p, struct query *q)
{
	INSIST(p->used > 0);
	q->next = p->free;
	p->free = q;
	p->used--;
}

static void
async_link(struct server *s, struct query *q)
{
	q->prev = NULL;
	q->next = s->async;
	if (s->async != NULL)
		s->async->prev = q;
	s->async = q;
	q->async = true;
}

static void
async_unlink(struct server *s, struct query *q)
{
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		s->async = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
	q->prev = q->next = NULL;
	q->async = false;
}

static void
log_query(struct query *q, const struct policy *pol)
{
	struct server *s = q->srv;
	struct querylog_record r;

	if (s->qlog == NULL || !querylog_wants(s->qlog, q->blocked))
		return;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	r.ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	memcpy(&r.client, &q->client, sockaddr_len((const struct sockaddr *)&q->client));
	if (q->upstream.ss_family != 0)
		memcpy(&r.upstream, &q->upstream,
		       sockaddr_len((const struct sockaddr *)&q->upstream));
	else
		r.upstream.ss_family = 0;
	if (q->dq.has_question) {
		querylog_record_set_name(&r, &q->dq.qname);
		r.qtype = q->dq.qtype;
	} else {
		r.qname_len = 0;
		r.qtype = 0;
	}
	r.tcp = q->tcp;
	r.blocked = q->blocked;
	const char *g = q->group >= 0 ? policy_group_name(pol, q->group) : NULL;
	const char *l = q->list >= 0 ? policy_list_name(pol, q->list) : NULL;
	r.has_group = g != NULL;
	text_copy(r.group, sizeof(r.group), g);
	r.has_list = l != NULL;
	text_copy(r.list, sizeof(r.list), l);
	r.rule_label = (int16_t)q->rule_label;
	r.rule_len = q->rule_len;
	memcpy(r.rule_wire, q->rule_wire, q->rule_len);
	r.action = q->action;
	r.rcode = q->rcode;
	uint64_t us = (uv_hrtime() - q->t_start) / 1000;
	r.latency_us = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
	/* device identity (devices_query); enum identity_source has querylog's values */
	r.has_mac = q->ident.has_mac;
	memcpy(r.mac, q->ident.mac.b, sizeof(r.mac));
	text_copy(r.device, sizeof(r.device), q->ident.device);
	text_copy(r.vendor, sizeof(r.vendor), q->ident.vendor);
	r.vendor_source = q->ident.vendor_source;
	querylog_submit(s->qlog, &r);
}

/* Returns the slot to the pool and tells the transport and the server. */
static void
release(struct query *q)
{
	struct server *s = q->srv;
	bool tcp = q->tcp;
	struct tcp_conn *c = q->via.tcp;

	if (q->policy != NULL)
		policy_unref(&q->policy);
	if (q->admitted) {
		q->admitted = false;
		limits_release(s, (const struct sockaddr *)&q->client);
	}
	pool_put(&s->pool, q);
	if (tcp)
		tcp_query_done(c);
	server_query_released(s);
}

/*
 * Sends the reply (len 0: none), logs, counts, and returns the slot. Exactly once per query.
 * buf is server_reply_buf() (TCP writes its length prefix in front of it).
 */
static void
finish(struct query *q, uint8_t *buf, size_t len)
{
	struct server *s = q->srv;

	INSIST(!q->finished);
	q->finished = true;
	if (len > 0) {
		if (q->rcode == 0)
			q->rcode = buf[3] & 0x0f;
		if (q->tcp)
			tcp_reply(q, buf, len);
		else
			udp_reply(q, buf, len);
	} else {
		s->stats.send_errors++;
	}
	metrics_count_query(s, q, q->policy != NULL ? q->policy : s->policy);
	if (!q->nolog)
		log_query(q, q->policy != NULL ? q->policy : s->policy);
	release(q);
}

static void
finish_error(struct query *q, uint8_t rcode, uint8_t action)
{
	struct server *s = q->srv;
	uint8_t *buf = server_reply_buf(s);
	size_t len = dnsmsg_write_error(&q->dq, rcode, buf, dnsmsg_max_reply(&q->dq, q->tcp));

	q->action = action;
	q->rcode = rcode;
	finish(q, buf, len);
}

static void
finish_servfail(struct query *q)
{
	q->srv->stats.servfail++;
	finish_error(q, DNSMSG_RCODE_SERVFAIL, QUERYLOG_ACTION_SERVFAIL);
}

/* No reply, no query log record. */
static void
drop(struct query *q)
{
	q->srv->stats.dropped++;
	q->finished = true;
	release(q);
}

/* Over server.rate_limit: as server.rate_limit.action says (not in the query log: a flood would
 * fill it; the daemon log counts them). */
static void
finish_rate_limited(struct query *q, const struct policy *pol)
{
	struct server *s = q->srv;
	uint8_t *buf = server_reply_buf(s);
	size_t cap = dnsmsg_max_reply(&q->dq, q->tcp);

	q->nolog = true;
	switch (policy_config(pol)->server.rate_limit.action) {
	case CONFIG_RATE_DROP:
		drop(q);
		return;
	case CONFIG_RATE_REFUSED:
		s->stats.refused++;
		finish_error(q, DNSMSG_RCODE_REFUSED, QUERYLOG_ACTION_REFUSED);
		return;
	case CONFIG_RATE_TRUNCATE:
	default: {
		/* an empty NOERROR reply with TC set: the client asks again over TCP */
		size_t len = dnsmsg_write_error(&q->dq, 0, buf, cap);
		if (len >= 12)
			buf[2] |= 0x02;
		s->stats.dropped++;
		finish(q, buf, len);
		return;
	}
	}
}

/* SERVFAIL after the upstream failed: with an Extended DNS Error for EDNS clients (RFC 8914),
 * 23 (Network Error) when every attempt failed on the network, else 22 (No Reachable
 * Authority). */
static void
finish_upstream_failed(struct query *q, int status)
{
	struct server *s = q->srv;
	uint8_t *buf = server_reply_buf(s);
	bool net = status == -ECONNREFUSED;
	size_t len = dnsmsg_write_error_ede(
		&q->dq, DNSMSG_RCODE_SERVFAIL,
		net ? DNSMSG_EDE_NETWORK_ERROR : DNSMSG_EDE_NO_REACHABLE_AUTHORITY,
		net ? "upstream servers unreachable" : "no upstream server answered", buf,
		dnsmsg_max_reply(&q->dq, q->tcp));

	s->stats.servfail++;
	q->action = QUERYLOG_ACTION_SERVFAIL;
	q->rcode = DNSMSG_RCODE_SERVFAIL;
	finish(q, buf, len);
}

static uint8_t
action_of(enum config_action a)
{
	switch (a) {
	case CONFIG_ACTION_NXDOMAIN:
		return QUERYLOG_ACTION_NXDOMAIN;
	case CONFIG_ACTION_NODATA:
		return QUERYLOG_ACTION_NODATA;
	case CONFIG_ACTION_REFUSED:
		return QUERYLOG_ACTION_REFUSED;
	case CONFIG_ACTION_SINKHOLE:
	default:	/* INHERIT never reaches here: policy_decide resolves it */
		return QUERYLOG_ACTION_SINKHOLE;
	}
}

/* Answers q with the block action of verdict v (of the query name or a chain target). */
static void
finish_blocked(struct query *q, const struct policy *pol, const struct policy_verdict *v)
{
	struct server *s = q->srv;
	uint8_t *buf = server_reply_buf(s);
	char text[128];
	const char *list = policy_list_name(pol, v->list);

	if (list != NULL)
		snprintf(text, sizeof(text), "blocked by list '%s'", list);
	else
		snprintf(text, sizeof(text), "blocked by policy");
	q->blocked = true;
	q->list = v->list;
	q->action = action_of(v->action);
	s->stats.blocked++;
	size_t cap = dnsmsg_max_reply(&q->dq, q->tcp);
	size_t len = dnsmsg_write_blocked(&q->dq, v->action, &policy_config(pol)->block, text, buf,
					  cap);
	if (len == 0) /* the synthesised answer does not fit the client's size */
		len = dnsmsg_write_error(&q->dq, DNSMSG_RCODE_REFUSED, buf, cap);
	finish(q, buf, len);
}

struct chain_check {
	const struct policy *pol;
	struct policy_verdict v;
	struct query *q;
};

/* A CNAME/DNAME target of the answer, decided for the query's group (policy_decide_target). */
static int
on_chain_target(void *arg, const struct names_name *target)
{
	struct chain_check *cc = arg;

	if (!policy_decide_target(cc->pol, &cc->q->decision, target, &cc->v))
		return 0;
	int i = cc->v.rule_label;
	if (i >= 0 && i <= target->nlabels) {
		uint8_t off = i < target->nlabels ? target->label_off[i] : (uint8_t)(target->len - 1);
		cc->q->rule_len = (uint8_t)(target->len - off);
		memcpy(cc->q->rule_wire, target->wire + off, cc->q->rule_len);
	}
	return 1;
}

/*
 * Serves answer a (fresh: age 0, or from the cache) unless its chain reaches a blocked name.
 */
static void
finish_answer(struct query *q, const struct policy *pol, const struct dnsmsg_answer *a,
	      uint32_t age_s)
{
	struct server *s = q->srv;
	struct chain_check cc = { .pol = pol, .q = q };

	if (dnsmsg_answer_chain(a, &q->dq, on_chain_target, &cc) != 0) {
		s->stats.cloaked++;
		/* the rule is a suffix of the chain target, not of the query name: it is
		 * logged from q->rule_wire */
		q->rule_label = -1;
		finish_blocked(q, pol, &cc.v);
		return;
	}
	if (q->action == QUERYLOG_ACTION_CACHE)
		s->stats.cache_hits++;
	else if (q->action == QUERYLOG_ACTION_FORWARD)
		s->stats.forwarded++;	/* stale answers are counted by the cache (stale_served) */
	uint8_t *buf = server_reply_buf(s);
	size_t len = dnsmsg_write_answer(a, &q->dq, age_s, dnsmsg_max_reply(&q->dq, q->tcp), buf,
					 SERVER_REPLY_CAP);
	if (len == 0) {
		finish_servfail(q);
		return;
	}
	finish(q, buf, len);
}

/*
 * RFC 8767: every upstream attempt failed; the answer kept past its TTL (cache.serve_stale),
 * with TTLs of CACHE_STALE_TTL, serves the client instead of SERVFAIL. The query's name was
 * allowed by its policy (decided before the cache), and the answer's chain is checked again by
 * finish_answer. False when there is none.
 */
static bool
finish_stale(struct query *q)
{
	struct server *s = q->srv;
	uint32_t age;
	bool stale;

	if (s->cache == NULL)
		return false;
	const struct dnsmsg_answer *a =
		cache_lookup_stale(s->cache, &q->dq.qname, q->dq.qtype, q->dq.qclass,
				   cache_key_bits(&q->dq), uv_now(s->loop), &age, &stale);
	if (a == NULL)
		return false;
	q->action = stale ? QUERYLOG_ACTION_STALE : QUERYLOG_ACTION_CACHE;
	finish_answer(q, q->policy, a, age);
	return true;
}

static void
on_upstream_done(void *arg, int status, const uint8_t *reply, size_t len,
		 const struct sockaddr *server)
{
	struct query *q = arg;
	struct server *s = q->srv;

	q->wait = NULL;
	async_unlink(s, q);
	stale_unwatch(s, q);
	if (status != 0) {
		if (status == -EMFILE || status == -ENFILE)
			LIMITS_COUNT(s, fds);
		if (status == -ECANCELED) {
			/* the stale timer's cancel, or the server stopping */
			if (!q->want_stale || !finish_stale(q))
				finish_servfail(q);
			return;
		}
		log_debug("upstream: no answer for query: %s", uv_strerror(status));
		if (!finish_stale(q))
			finish_upstream_failed(q, status);
		return;
	}
	if (server != NULL) {
		memcpy(&q->upstream, server, sockaddr_len(server));
		upstream_observe(s->upstream, server, (uv_hrtime() - q->t_start) / 1000);
	}
	struct dnsmsg_answer *a = &s->answer;
	int err = dnsmsg_answer_from_reply(reply, len, q->dq.do_bit, s->answer_wire,
					   DNSMSG_MAX_LEN, a);
	if (err != 0) {
		if (!finish_stale(q))
			finish_servfail(q);
		return;
	}
	if (s->cache != NULL && a->cacheable)
		cache_insert(s->cache, &q->dq.qname, q->dq.qtype, q->dq.qclass,
			     cache_key_bits(&q->dq), a, uv_now(s->loop));
	q->action = QUERYLOG_ACTION_FORWARD;
	finish_answer(q, q->policy, a, 0);
}

void
query_process(struct query *q, const uint8_t *pkt, size_t len)
{
	struct server *s = q->srv;
	const struct policy *pol = s->policy;
	const struct sockaddr *client = (const struct sockaddr *)&q->client;

	if (dnsmsg_parse_query(pkt, len, &q->dq) != 0) {
		drop(q);
		return;
	}
	if (!limits_rate_ok(s, client, q->tcp)) {
		finish_rate_limited(q, pol);
		return;
	}
	if (!policy_client_allowed(pol, client)) {
		s->stats.refused++;
		finish_error(q, DNSMSG_RCODE_REFUSED, QUERYLOG_ACTION_REFUSED);
		return;
	}
	if (q->dq.rcode != 0) {
		if (!limits_error_reply_ok(s, client)) {
			drop(q);
			return;
		}
		s->stats.errors++;
		finish_error(q, q->dq.rcode,
			     q->dq.rcode == DNSMSG_RCODE_NOTIMP ? QUERYLOG_ACTION_NOTIMP
								 : QUERYLOG_ACTION_FORMERR);
		return;
	}

	/* server.allow was checked above, before anything is recorded about the client */
	struct policy_identity id = {.sa = client};
	struct policy_decision *dec = &q->decision;
	bool shared = false;	/* another worker: the table's snapshot (devices_share.h) */
	if (s->devices != NULL || s->devreader != NULL) {
		struct devices_hints h = {
			.has_mac = q->dq.has_edns_mac,
			.has_ecs = q->dq.has_ecs,
			.ecs_family = q->dq.ecs_family,
			.ecs_prefix = q->dq.ecs_prefix,
		};
		memcpy(h.mac, q->dq.edns_mac, sizeof(h.mac));
		memcpy(h.ecs_addr, q->dq.ecs_addr, sizeof(h.ecs_addr));
		if (s->devices != NULL)
			devices_identify(s->devices, pol, client, &h, &id, &q->ident);
		else
			shared = devices_reader_identify(s->devreader, client, &h, &id, &q->ident);
	}
	policy_decide(pol, &id, &q->dq.qname, dec);
	if (s->devices != NULL)
		devices_record_query(s->devices, pol, dec->group, &q->dq.qname, &q->ident);
	else if (shared)
		devices_reader_record(s->devreader, pol, dec->group, &q->dq.qname, &q->ident);
	if (!dec->allowed) {	/* a trusted forwarder's ECS client outside server.allow */
		s->stats.refused++;
		finish_error(q, DNSMSG_RCODE_REFUSED, QUERYLOG_ACTION_REFUSED);
		return;
	}
	q->group = dec->group;
	const struct policy_verdict v = dec->v;
	if (v.reason == POLICY_REASON_ALLOW_LIST) {	/* logged with its list and entry */
		q->list = v.list;
		q->rule_label = v.rule_label;
	}
	if (v.blocked) {
		q->rule_label = v.rule_label;
		finish_blocked(q, pol, &v);
		return;
	}

	if (q->dq.qtype == DNSMSG_QTYPE_ANY) {	/* RFC 8482: answered here, never forwarded */
		uint8_t *buf = server_reply_buf(s);
		size_t n = dnsmsg_write_any(&q->dq, buf, dnsmsg_max_reply(&q->dq, q->tcp));
		q->action = QUERYLOG_ACTION_CACHE;
		finish(q, buf, n);
		return;
	}

	bool kept = false;	/* an expired answer is kept for the client response timer */
	if (s->cache != NULL) {
		uint32_t age;
		const struct dnsmsg_answer *a =
			cache_lookup(s->cache, &q->dq.qname, q->dq.qtype, q->dq.qclass,
				     cache_key_bits(&q->dq), uv_now(s->loop), &age);
		if (a != NULL) {
			/* cache.prefetch: a popular entry about to expire is refreshed in the
			 * background (before serving: nothing may call the cache in between) */
			if (cache_prefetch_due(s->cache))
				(void)prefetch_start(s, &q->dq, true);
			q->action = QUERYLOG_ACTION_CACHE;
			finish_answer(q, pol, a, age);
			return;
		}
		kept = cache_missed_stale(s->cache);
	}

	if (limits_admit(s, client) != 0) {
		finish_servfail(q);
		return;
	}
	q->admitted = true;
	q->policy = policy_ref(s->policy);
	async_link(s, q);
	int err = upstream_query(s->upstream, &q->dq, on_upstream_done, q, &q->wait);
	if (err != 0) {
		log_warning("upstream: cannot start query: %s", uv_strerror(err));
		async_unlink(s, q);
		finish_servfail(q);
		return;
	}
	if (kept)	/* RFC 8767 client response timer */
		stale_watch(s, q);
}

void
query_cancel(struct query *q)
{
	if (q->async && q->wait != NULL)
		upstream_cancel(q->wait);
}
