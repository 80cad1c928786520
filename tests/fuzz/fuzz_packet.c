/*
 * Fuzz target for the packet path: the input is taken both as a client query (parse, every
 * reply writer) and as an upstream reply (check, normalise, chain walk, cache, serve).
 * Invariants are checked with abort(): replies fit their limit and start with a full header.
 */
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "config.h"
#include "dnsmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check(bool ok)
{
	if (!ok)
		abort();
}

static void
check_reply_len(size_t len, size_t max)
{
	check(len == 0 || (len >= DNSMSG_HEADER_LEN && len <= max));
}

static int
on_link(void *arg, const struct names_name *target)
{
	unsigned *n = arg;
	check(target->len >= 1 && target->wire[target->len - 1] == 0);
	(*n)++;
	return 0;
}

static void
as_query(const uint8_t *data, size_t size, const struct config *cfg)
{
	static uint8_t out[DNSMSG_MAX_LEN];
	struct dnsmsg_query q;

	if (dnsmsg_parse_query(data, size, &q) != 0)
		return;
	size_t max = dnsmsg_max_reply(&q, false);
	check(max >= DNSMSG_MIN_UDP && max <= DNSMSG_MAX_LEN);
	size_t len = dnsmsg_write_error(&q, q.rcode ? q.rcode : DNSMSG_RCODE_SERVFAIL, out, max);
	check(len >= DNSMSG_HEADER_LEN && len <= max);
	if (q.rcode != 0)
		return;
	for (int action = CONFIG_ACTION_INHERIT; action <= CONFIG_ACTION_REFUSED; action++) {
		len = dnsmsg_write_blocked(&q, (enum config_action)action, &cfg->block, "fuzz list", out,
					   max);
		check(len >= DNSMSG_HEADER_LEN && len <= max);
	}
	len = dnsmsg_write_upstream_query(&q, 0x1234, out, sizeof(out));
	check(len >= DNSMSG_HEADER_LEN);
	/* what we send upstream parses back to the same question */
	struct dnsmsg_query back;
	check(dnsmsg_parse_query(out, len, &back) == 0 && back.rcode == 0 &&
	      names_equal(&back.qname, &q.qname) && back.qtype == q.qtype);
}

static void
as_reply(const uint8_t *data, size_t size, struct cache *c)
{
	static uint8_t wire[DNSMSG_MAX_LEN], out[DNSMSG_MAX_LEN], copy[DNSMSG_MAX_LEN];
	struct dnsmsg_answer a;
	struct dnsmsg_query q;
	bool tc = false;

	if (size < DNSMSG_HEADER_LEN || size > sizeof(copy))
		return;
	/* the query this would answer: the same message with QR clear */
	memcpy(copy, data, size);
	copy[2] &= 0x7f;
	if (dnsmsg_parse_query(copy, size, &q) != 0 || !q.has_question)
		return;
	(void)dnsmsg_check_reply(data, size, q.id, &q, &tc);
	int judged = dnsmsg_judge_reply(data, size);
	int err = dnsmsg_answer_from_reply(data, size, q.do_bit, wire, sizeof(wire), &a);
	/* what the upstream client accepts reduces (or is too large once decompressed) */
	check(judged != 0 || err == 0 || err == -ENOSPC);
	if (err != 0)
		return;
	/* names are written uncompressed: the answer may be longer than the reply */
	check(a.len >= DNSMSG_HEADER_LEN && a.nttl <= DNSMSG_MAX_TTLS);
	unsigned links = 0;
	(void)dnsmsg_answer_chain(&a, &q, on_link, &links);
	check(links <= 16);
	for (int tcp = 0; tcp < 2; tcp++) {
		size_t max = dnsmsg_max_reply(&q, tcp);
		check_reply_len(dnsmsg_write_answer(&a, &q, (uint32_t)size, max, out, sizeof(out)),
				max);
	}
	(void)cache_insert(c, &q.qname, q.qtype, q.qclass, cache_key_bits(&q), &a, 1000);
	uint32_t age = 0;
	const struct dnsmsg_answer *hit = cache_lookup(c, &q.qname, q.qtype, q.qclass,
						       cache_key_bits(&q), 2000, &age);
	if (hit != NULL)
		check_reply_len(dnsmsg_write_answer(hit, &q, age, 512, out, sizeof(out)), 512);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cache *c;
	static struct config cfg;

	if (c == NULL) {
		if (cache_new(64, 0, 3600, &c) != 0)
			abort();
		cfg.block.action = CONFIG_ACTION_SINKHOLE;
		cfg.block.ttl = 60;
		cfg.block.ipv4[0] = 127;
	}
	as_query(data, size, &cfg);
	as_reply(data, size, c);
	return 0;
}
