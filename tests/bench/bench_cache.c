/*
 * bench_cache: the serve path without the network, in ns per query.
 *   hit:     parse the client query + cache_lookup + cache_prefetch_due + dnsmsg_write_answer
 *            (serve_stale and prefetch on, as shipped; query.c calls the same on every hit)
 *   miss:    parse + cache_lookup that misses
 *   blocked: parse + dnsmsg_write_blocked (sinkhole, with EDNS and EDE)
 *   insert:  dnsmsg_answer_from_reply + cache_insert into a full cache (eviction path)
 * Usage: bench_cache [entries] [iterations]   (defaults 100000 and 2000000)
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cache.h"
#include "config.h"
#include "dnsmsg.h"

static uint64_t
now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static size_t
put_name(uint8_t *p, const char *host, unsigned i)
{
	char label[32];
	int n = snprintf(label, sizeof(label), "%s%u", host, i);
	size_t o = 0;
	p[o++] = (uint8_t)n;
	memcpy(p + o, label, (size_t)n);
	o += (size_t)n;
	memcpy(p + o, "\007example\003com\000", 13);
	return o + 13;
}

/* A client query for host<i>.example.com A, with EDNS (1232, DO clear). */
static size_t
make_query(uint8_t *p, unsigned i)
{
	static const uint8_t hdr[12] = { 0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1 };
	static const uint8_t tail[] = { 0, 1, 0, 1, 0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0 };
	memcpy(p, hdr, 12);
	size_t o = 12 + put_name(p + 12, "Host", i);
	memcpy(p + o, tail, sizeof(tail));
	return o + sizeof(tail);
}

/* An upstream reply: host<i>.example.com A 192.0.2.x (two records), TTL 3600. */
static size_t
make_reply(uint8_t *p, unsigned i)
{
	static const uint8_t hdr[12] = { 0, 0, 0x81, 0x80, 0, 1, 0, 2, 0, 0, 0, 0 };
	memcpy(p, hdr, 12);
	size_t o = 12 + put_name(p + 12, "host", i);
	static const uint8_t q[] = { 0, 1, 0, 1 };
	memcpy(p + o, q, 4);
	o += 4;
	for (int k = 0; k < 2; k++) {
		const uint8_t rr[] = { 0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4,
				       192, 0, 2, (uint8_t)(k + 1) };
		memcpy(p + o, rr, sizeof(rr));
		o += sizeof(rr);
	}
	return o;
}

static void
report(const char *what, uint64_t ns, unsigned long iters)
{
	double per = (double)ns / (double)iters;
	printf("%-8s %8.1f ns/op  %10.0f ops/s\n", what, per, 1e9 / per);
}

int
main(int argc, char **argv)
{
	unsigned long entries = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
	unsigned long iters = argc > 2 ? strtoul(argv[2], NULL, 10) : 2000000;
	struct cache *c = NULL;
	uint8_t pkt[512], wire[512], out[1500];
	struct dnsmsg_answer a;
	struct dnsmsg_query q;
	struct config cfg;
	unsigned long sink = 0;

	if (entries == 0 || iters == 0 || cache_new((uint32_t)entries, 0, 86400, &c) != 0) {
		fprintf(stderr, "bench_cache: bad arguments or out of memory\n");
		return 1;
	}
	cache_configure(c, 86400, true);
	for (unsigned i = 0; i < entries; i++) {
		size_t n = make_reply(pkt, i), qn = make_query(out, i);
		if (dnsmsg_answer_from_reply(pkt, n, true, wire, sizeof(wire), &a) != 0 ||
		    dnsmsg_parse_query(out, qn, &q) != 0 ||
		    cache_insert(c, &q.qname, q.qtype, q.qclass, q.do_bit, &a, 0) != 0) {
			fprintf(stderr, "bench_cache: setup failed at %u\n", i);
			return 1;
		}
	}
	/* queries prepared in advance; the loop touches them in a scattered order */
	enum { NQ = 4096 };
	static uint8_t qs[NQ][128];
	static size_t qlen[NQ];
	for (unsigned i = 0; i < NQ; i++)
		qlen[i] = make_query(qs[i], (unsigned)(((uint64_t)i * 2654435761u) % entries));

	uint64_t t0 = now_ns();
	for (unsigned long i = 0; i < iters; i++) {
		unsigned k = i % NQ;
		uint32_t age;
		if (dnsmsg_parse_query(qs[k], qlen[k], &q) != 0)
			return 1;
		const struct dnsmsg_answer *hit = cache_lookup(c, &q.qname, q.qtype, q.qclass,
							       q.do_bit, 5000, &age);
		if (hit == NULL)
			return 1;
		sink += cache_prefetch_due(c);
		sink += dnsmsg_write_answer(hit, &q, age, dnsmsg_max_reply(&q, false), out,
					    sizeof(out));
	}
	report("hit", now_ns() - t0, iters);

	for (unsigned i = 0; i < NQ; i++)
		qlen[i] = make_query(qs[i], (unsigned)(entries + i));
	t0 = now_ns();
	for (unsigned long i = 0; i < iters; i++) {
		unsigned k = i % NQ;
		uint32_t age;
		if (dnsmsg_parse_query(qs[k], qlen[k], &q) != 0)
			return 1;
		sink += cache_lookup(c, &q.qname, q.qtype, q.qclass, q.do_bit, 5000, &age) != NULL;
	}
	report("miss", now_ns() - t0, iters);

	memset(&cfg, 0, sizeof(cfg));
	cfg.block.action = CONFIG_ACTION_SINKHOLE;
	cfg.block.ttl = 60;
	t0 = now_ns();
	for (unsigned long i = 0; i < iters; i++) {
		unsigned k = i % NQ;
		if (dnsmsg_parse_query(qs[k], qlen[k], &q) != 0)
			return 1;
		sink += dnsmsg_write_blocked(&q, CONFIG_ACTION_SINKHOLE, &cfg.block,
					     "blocked by list 'ads'", out, sizeof(out));
	}
	report("blocked", now_ns() - t0, iters);

	unsigned long ins = iters / 10 ? iters / 10 : 1;
	t0 = now_ns();
	for (unsigned long i = 0; i < ins; i++) {
		unsigned id = (unsigned)(entries + NQ + i);
		size_t n = make_reply(pkt, id), qn = make_query(out, id);
		if (dnsmsg_answer_from_reply(pkt, n, true, wire, sizeof(wire), &a) != 0 ||
		    dnsmsg_parse_query(out, qn, &q) != 0 ||
		    cache_insert(c, &q.qname, q.qtype, q.qclass, q.do_bit, &a, 6000) != 0)
			return 1;
	}
	report("insert", now_ns() - t0, ins);

	struct cache_stats st;
	cache_get_stats(c, &st);
	printf("cache: %zu entries, %.1f MB, %.0f bytes/entry, %llu evictions (sink %lu)\n",
	       st.entries, (double)st.bytes / 1e6, (double)st.bytes / (double)st.entries,
	       (unsigned long long)st.evictions, sink % 10);
	cache_free(&c);
	return 0;
}
