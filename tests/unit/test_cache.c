/*
 * Unit tests for resolver/cache.c: hit, miss, expiry, TTL clamps, DO separation, what is not
 * stored, CLOCK eviction keeping hot entries, replacement, stats; serve-stale (kept past the
 * TTL, served with TTL 30, dropped past the window, expired entries reused first, longest
 * expired first) and the prefetch trigger (popular, last tenth, once per stored answer). Answers are real upstream
 * replies built by ldns and reduced with dnsmsg_answer_from_reply.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ldns/ldns.h>

#include "cache.h"
#include "dnsmsg.h"
#include "dnsmsg_int.h"

struct fixture {
	uint8_t wire[1024];
	struct dnsmsg_answer a;
	struct names_name qname;
};

/* Builds the reduced answer for "<name> <ttl> IN A 192.0.2.1" (or an error / negative reply). */
static void
make_answer(struct fixture *f, const char *name, uint32_t ttl, ldns_pkt_rcode rcode, bool soa)
{
	char text[512];
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *q = NULL, *r = NULL;
	uint8_t *w = NULL;
	size_t n = 0;
	const char *why = NULL;

	snprintf(text, sizeof(text), "%s IN A", name);
	assert_int_equal(ldns_rr_new_question_frm_str(&q, text, NULL, NULL), LDNS_STATUS_OK);
	ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q);
	if (rcode == LDNS_RCODE_NOERROR && !soa) {
		snprintf(text, sizeof(text), "%s %u IN A 192.0.2.1", name, ttl);
		assert_int_equal(ldns_rr_new_frm_str(&r, text, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, r);
	} else if (soa) {
		snprintf(text, sizeof(text), "example. %u IN SOA ns.example. h.example. 1 2 3 4 %u",
			 ttl, ttl);
		assert_int_equal(ldns_rr_new_frm_str(&r, text, 0, NULL, NULL), LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, r);
	}
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	assert_int_equal(ldns_pkt2wire(&w, p, &n), LDNS_STATUS_OK);
	assert_int_equal(dnsmsg_answer_from_reply(w, n, true, f->wire, sizeof(f->wire), &f->a), 0);
	free(w);
	ldns_pkt_free(p);
	assert_int_equal(names_from_text(&f->qname, name, strlen(name), &why), 0);
}

static uint32_t
served_ttl(const struct dnsmsg_answer *a, uint32_t age)
{
	/* serve it to a plain query for the same name and read the first record's TTL */
	struct dnsmsg_query q;
	uint8_t out[1024];
	memset(&q, 0, sizeof(q));
	q.id = 1;
	q.flags = 0x0100;
	q.qtype = 1;
	q.qclass = 1;
	q.has_question = true;
	size_t pos = DNSMSG_HEADER_LEN;
	assert_int_equal(names_from_wire(&q.qname, a->wire, a->len, &pos), 0);
	memcpy(q.qname_orig, q.qname.wire, q.qname.len);
	size_t len = dnsmsg_write_answer(a, &q, age, sizeof(out), out, sizeof(out));
	assert_true(len > 0);
	ldns_pkt *p = NULL;
	assert_int_equal(ldns_wire2pkt(&p, out, len), LDNS_STATUS_OK);
	ldns_rr_list *l = ldns_pkt_ancount(p) ? ldns_pkt_answer(p) : ldns_pkt_authority(p);
	uint32_t ttl = ldns_rr_ttl(ldns_rr_list_rr(l, 0));
	ldns_pkt_free(p);
	return ttl;
}

static void
test_hit_miss_expiry(void **state)
{
	(void)state;
	struct cache *c = NULL;
	struct fixture f;
	struct cache_stats st;
	uint32_t age = 99;

	assert_int_equal(cache_new(16, 0, 86400, &c), 0);
	make_answer(&f, "www.example.com", 300, LDNS_RCODE_NOERROR, false);
	assert_null(cache_lookup(c, &f.qname, 1, 1, false, 1000, &age));
	assert_int_equal(age, 99);	/* untouched on a miss */
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 1000), 0);

	static const struct {
		uint64_t now;
		bool hit;
		uint32_t age, ttl;
	} steps[] = {
		{ 1000, true, 0, 300 },	  { 1999, true, 0, 300 },    { 2000, true, 1, 299 },
		{ 61500, true, 60, 240 }, { 300999, true, 299, 1 }, { 301000, false, 0, 0 },
		{ 302000, false, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		const struct dnsmsg_answer *a = cache_lookup(c, &f.qname, 1, 1, false,
							     steps[i].now, &age);
		assert_int_equal(a != NULL, steps[i].hit);
		if (a == NULL)
			continue;
		assert_int_equal(age, steps[i].age);
		assert_int_equal(served_ttl(a, age), steps[i].ttl);
		assert_int_equal(a->len, f.a.len);
	}
	cache_get_stats(c, &st);
	assert_int_equal(st.hits, 5);
	assert_int_equal(st.misses, 3);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.inserts, 1);
	assert_int_equal(st.entries, 0);
	cache_free(&c);
	assert_null(c);
	cache_free(&c);	/* NULL is fine */
}

static void
test_key_separation(void **state)
{
	(void)state;
	struct cache *c = NULL;
	struct fixture f;
	uint32_t age;
	struct names_name upper, other;
	const char *why;

	assert_int_equal(cache_new(16, 0, 86400, &c), 0);
	make_answer(&f, "a.example", 60, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 0), 0);
	assert_int_equal(names_from_text(&upper, "A.EXAMPLE.", 10, &why), 0);
	assert_int_equal(names_from_text(&other, "b.example", 9, &why), 0);

	static const struct {
		bool other;
		uint16_t type, class;
		bool do_bit, hit;
	} cases[] = {
		{ false, 1, 1, false, true },  { false, 1, 1, true, false },
		{ false, 28, 1, false, false }, { false, 1, 3, false, false },
		{ true, 1, 1, false, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct names_name *n = cases[i].other ? &other : &upper;
		assert_int_equal(cache_lookup(c, n, cases[i].type, cases[i].class, cases[i].do_bit,
					      10, &age) != NULL,
				 cases[i].hit);
	}
	/* the DO=1 entry is separate */
	make_answer(&f, "a.example", 30, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, true, &f.a, 0), 0);
	const struct dnsmsg_answer *a = cache_lookup(c, &f.qname, 1, 1, true, 10, &age);
	assert_non_null(a);
	assert_int_equal(a->ttl, 30);
	a = cache_lookup(c, &f.qname, 1, 1, false, 10, &age);
	assert_non_null(a);
	assert_int_equal(a->ttl, 60);

	/* CD: a CD=1 answer is never served to CD=0; a CD=1 miss falls back to the CD=0 entry */
	make_answer(&f, "cd.example", 20, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, CACHE_KEY_CD, &f.a, 0), 0);
	assert_null(cache_lookup(c, &f.qname, 1, 1, 0, 10, &age));
	a = cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_CD, 10, &age);
	assert_non_null(a);
	assert_int_equal(a->ttl, 20);
	make_answer(&f, "cd.example", 40, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);
	assert_int_equal(cache_lookup(c, &f.qname, 1, 1, 0, 10, &age)->ttl, 40);
	assert_int_equal(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_CD, 10, &age)->ttl, 20);
	make_answer(&f, "cd0.example", 50, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);
	assert_int_equal(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_CD, 10, &age)->ttl, 50);
	assert_null(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_CD | CACHE_KEY_DO, 10, &age));
	cache_free(&c);
}

static void
test_clamps(void **state)
{
	(void)state;
	static const struct {
		uint32_t min, max, ttl;
		bool stored;
		uint32_t lifetime;	/* seconds */
		uint32_t served;	/* record TTL served at age 0 */
	} cases[] = {
		{ 0, 86400, 300, true, 300, 300 },
		{ 0, 60, 300, true, 60, 60 },
		{ 30, 86400, 5, true, 30, 30 },
		{ 30, 86400, 0, true, 30, 30 },	/* min_ttl lifts even a zero TTL */
		{ 0, 86400, 0, false, 0, 0 },	/* zero TTL and no minimum: not stored */
		{ 10, 20, 15, true, 15, 15 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache *c = NULL;
		struct fixture f;
		uint32_t age;
		assert_int_equal(cache_new(8, cases[i].min, cases[i].max, &c), 0);
		make_answer(&f, "clamp.example", cases[i].ttl, LDNS_RCODE_NOERROR, false);
		assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 5000), 0);
		const struct dnsmsg_answer *a = cache_lookup(c, &f.qname, 1, 1, false, 5000, &age);
		assert_int_equal(a != NULL, cases[i].stored);
		if (a != NULL) {
			assert_int_equal(a->ttl, cases[i].lifetime);
			assert_int_equal(served_ttl(a, 0), cases[i].served);
			uint64_t end = 5000 + (uint64_t)cases[i].lifetime * 1000;
			assert_non_null(cache_lookup(c, &f.qname, 1, 1, false, end - 1, &age));
			assert_null(cache_lookup(c, &f.qname, 1, 1, false, end, &age));
		}
		cache_free(&c);
	}
}

static void
test_not_stored(void **state)
{
	(void)state;
	static const struct {
		ldns_pkt_rcode rcode;
		bool soa;
		bool stored;
	} cases[] = {
		{ LDNS_RCODE_SERVFAIL, false, false }, { LDNS_RCODE_REFUSED, false, false },
		{ LDNS_RCODE_NXDOMAIN, false, false }, /* no SOA: not cacheable */
		{ LDNS_RCODE_NXDOMAIN, true, true },   { LDNS_RCODE_NOERROR, true, true },
		{ LDNS_RCODE_NOERROR, false, true },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct cache *c = NULL;
		struct fixture f;
		uint32_t age;
		assert_int_equal(cache_new(8, 0, 86400, &c), 0);
		make_answer(&f, "neg.example", 120, cases[i].rcode, cases[i].soa);
		assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 0), 0);
		const struct dnsmsg_answer *a = cache_lookup(c, &f.qname, 1, 1, false, 1, &age);
		assert_int_equal(a != NULL, cases[i].stored);
		if (a != NULL) {
			assert_int_equal(a->rcode, cases[i].rcode);
			assert_int_equal(a->negative, cases[i].soa);
		}
		cache_free(&c);
	}
	/* a SERVFAIL marked cacheable by mistake is still refused */
	struct cache *c = NULL;
	struct fixture f;
	uint32_t age;
	assert_int_equal(cache_new(8, 0, 86400, &c), 0);
	make_answer(&f, "sf.example", 120, LDNS_RCODE_NOERROR, false);
	f.a.rcode = DNSMSG_RCODE_SERVFAIL;
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 0), 0);
	assert_null(cache_lookup(c, &f.qname, 1, 1, false, 1, &age));
	cache_free(&c);

	/* a cache of 0 entries stores nothing */
	assert_int_equal(cache_new(0, 0, 86400, &c), 0);
	make_answer(&f, "zero.example", 120, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 0), 0);
	assert_null(cache_lookup(c, &f.qname, 1, 1, false, 1, &age));
	cache_free(&c);
}

static void
test_eviction_keeps_hot(void **state)
{
	(void)state;
	enum { CAP = 8 };
	struct cache *c = NULL;
	struct fixture f[CAP * 4];
	struct cache_stats st;
	uint32_t age;
	char name[64];

	assert_int_equal(cache_new(CAP, 0, 86400, &c), 0);
	for (int i = 0; i < CAP * 4; i++) {
		snprintf(name, sizeof(name), "n%d.example", i);
		make_answer(&f[i], name, 3600, LDNS_RCODE_NOERROR, false);
	}
	for (int i = 0; i < CAP; i++)
		assert_int_equal(cache_insert(c, &f[i].qname, 1, 1, false, &f[i].a, 0), 0);
	/* n0 and n3 are hot: looked up before every new insertion */
	for (int i = CAP; i < CAP * 4; i++) {
		assert_non_null(cache_lookup(c, &f[0].qname, 1, 1, false, 10, &age));
		assert_non_null(cache_lookup(c, &f[3].qname, 1, 1, false, 10, &age));
		assert_int_equal(cache_insert(c, &f[i].qname, 1, 1, false, &f[i].a, 10), 0);
	}
	/* the newest entry is present (looking it up in the loop would make it hot too) */
	assert_non_null(cache_lookup(c, &f[CAP * 4 - 1].qname, 1, 1, false, 20, &age));
	assert_non_null(cache_lookup(c, &f[0].qname, 1, 1, false, 20, &age));
	assert_non_null(cache_lookup(c, &f[3].qname, 1, 1, false, 20, &age));
	int present = 0;
	for (int i = 0; i < CAP * 4; i++)
		present += cache_lookup(c, &f[i].qname, 1, 1, false, 20, &age) != NULL;
	assert_int_equal(present, CAP);
	cache_get_stats(c, &st);
	assert_int_equal(st.entries, CAP);
	assert_int_equal(st.evictions, CAP * 3);
	assert_true(st.bytes > CAP * f[0].a.len);

	/* expired entries are taken before live ones are evicted */
	uint64_t later = 3600 * 1000 + 100;
	make_answer(&f[0], "fresh.example", 60, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f[0].qname, 1, 1, false, &f[0].a, later), 0);
	cache_get_stats(c, &st);
	assert_int_equal(st.evictions, CAP * 3);
	assert_int_equal(st.expired, 1);

	cache_clear(c);
	cache_get_stats(c, &st);
	assert_int_equal(st.entries, 0);
	assert_null(cache_lookup(c, &f[0].qname, 1, 1, false, later, &age));
	assert_int_equal(cache_insert(c, &f[0].qname, 1, 1, false, &f[0].a, later), 0);
	assert_non_null(cache_lookup(c, &f[0].qname, 1, 1, false, later, &age));
	cache_free(&c);
}

static void
test_replace(void **state)
{
	(void)state;
	struct cache *c = NULL;
	struct fixture f;
	struct cache_stats st;
	uint32_t age;

	assert_int_equal(cache_new(4, 0, 86400, &c), 0);
	make_answer(&f, "r.example", 100, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 0), 0);
	make_answer(&f, "r.example", 500, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, false, &f.a, 50000), 0);
	const struct dnsmsg_answer *a = cache_lookup(c, &f.qname, 1, 1, false, 150000, &age);
	assert_non_null(a);
	assert_int_equal(age, 100);
	assert_int_equal(served_ttl(a, age), 400);
	cache_get_stats(c, &st);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.inserts, 2);
	cache_free(&c);
}

/* Many names in a large table: all found, the hash index spreads them. */
static void
test_many(void **state)
{
	(void)state;
	enum { N = 5000 };
	struct cache *c = NULL;
	struct fixture *f = malloc(sizeof(*f));
	uint32_t age;
	char name[64];

	assert_non_null(f);
	assert_int_equal(cache_new(N, 0, 86400, &c), 0);
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "host%d.example.org", i);
		make_answer(f, name, 600, LDNS_RCODE_NOERROR, false);
		assert_int_equal(cache_insert(c, &f->qname, 1, 1, false, &f->a, 0), 0);
	}
	for (int i = 0; i < N; i++) {
		const char *why;
		struct names_name n;
		snprintf(name, sizeof(name), "HOST%d.example.org", i);
		assert_int_equal(names_from_text(&n, name, strlen(name), &why), 0);
		const struct dnsmsg_answer *a = cache_lookup(c, &n, 1, 1, false, 1, &age);
		assert_non_null(a);
		assert_int_equal(memcmp(a->wire + 12, n.wire, n.len), 0);
	}
	free(f);
	cache_free(&c);
}

/* Serve-stale: an expired entry is a miss for cache_lookup but kept for cache_lookup_stale, with
 * TTL 30, until TTL + the window; then dropped. Off: dropped at the TTL as before. */
static void
test_stale_kept_and_expiry(void **state)
{
	(void)state;
	struct cache *c = NULL;
	struct fixture f;
	struct cache_stats st;
	uint32_t age = 7;
	bool stale = false;

	assert_int_equal(cache_new(16, 0, 86400, &c), 0);
	cache_configure(c, 100, false);
	make_answer(&f, "stale.example", 60, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 1000), 0);

	/* fresh: cache_lookup_stale serves it as cache_lookup would */
	const struct dnsmsg_answer *a = cache_lookup_stale(c, &f.qname, 1, 1, 0, 11000, &age,
							   &stale);
	assert_non_null(a);
	assert_false(stale);
	assert_int_equal(age, 10);
	assert_int_equal(served_ttl(a, age), 50);

	static const struct {
		uint64_t now;
		bool stale_hit;		/* cache_lookup_stale finds it (cache_lookup never does) */
	} steps[] = {
		{ 61000, true }, { 100000, true }, { 160999, true }, { 161000, false },
		{ 200000, false },
	};
	assert_true(cache_stale_kept(c, &f.qname, 1, 1, 0, 11000));
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		/* the client response timer's look: the same answer, nothing changed */
		assert_int_equal(cache_stale_kept(c, &f.qname, 1, 1, CACHE_KEY_CD, steps[i].now),
				 steps[i].stale_hit);
		assert_null(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_CD, steps[i].now, &age));
		assert_int_equal(cache_missed_stale(c), steps[i].stale_hit);
		a = cache_lookup_stale(c, &f.qname, 1, 1, 0, steps[i].now, &age, &stale);
		assert_int_equal(a != NULL, steps[i].stale_hit);
		if (a == NULL)
			continue;
		assert_true(stale);
		assert_int_equal(age, 0);
		assert_int_equal(served_ttl(a, age), CACHE_STALE_TTL);
		/* a CD=1 query falls back to the CD=0 entry here too */
		assert_non_null(cache_lookup_stale(c, &f.qname, 1, 1, CACHE_KEY_CD, steps[i].now,
						   &age, &stale));
		assert_null(cache_lookup_stale(c, &f.qname, 1, 1, CACHE_KEY_DO, steps[i].now, &age,
					       &stale));
	}
	cache_get_stats(c, &st);
	assert_int_equal(st.stale_served, 6);
	assert_int_equal(st.expired, 1);
	assert_int_equal(st.entries, 0);

	/* a negative answer is served stale too, with its rcode */
	make_answer(&f, "nx.example", 60, LDNS_RCODE_NXDOMAIN, true);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);
	a = cache_lookup_stale(c, &f.qname, 1, 1, 0, 90000, &age, &stale);
	assert_non_null(a);
	assert_true(stale);
	assert_int_equal(a->rcode, DNSMSG_RCODE_NXDOMAIN);
	assert_int_equal(served_ttl(a, age), CACHE_STALE_TTL);

	/* a fresh answer replaces the stale one and is served with its own TTLs again */
	make_answer(&f, "stale.example", 60, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 300000), 0);
	assert_null(cache_lookup(c, &f.qname, 1, 1, 0, 360000, &age));
	assert_non_null(cache_lookup_stale(c, &f.qname, 1, 1, 0, 360000, &age, &stale));
	make_answer(&f, "stale.example", 60, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 360000), 0);
	a = cache_lookup(c, &f.qname, 1, 1, 0, 365000, &age);
	assert_non_null(a);
	assert_int_equal(served_ttl(a, age), 55);

	/* a hit and a plain miss are not stale */
	assert_non_null(cache_lookup(c, &f.qname, 1, 1, 0, 361000, &age));
	assert_false(cache_missed_stale(c));
	assert_null(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_DO, 361000, &age));
	assert_false(cache_missed_stale(c));

	/* off: dropped at the TTL, nothing served stale */
	cache_configure(c, 0, false);
	assert_false(cache_stale_kept(c, &f.qname, 1, 1, 0, 420000));
	assert_null(cache_lookup_stale(c, &f.qname, 1, 1, 0, 420000, &age, &stale));
	assert_null(cache_lookup(c, &f.qname, 1, 1, 0, 420000, &age));
	assert_false(cache_missed_stale(c));
	cache_get_stats(c, &st);
	assert_int_equal(st.entries, 1);	/* nx.example: not looked up since */
	cache_configure(c, 100, false);
	assert_null(cache_lookup_stale(c, &f.qname, 1, 1, 0, 420000, &age, &stale));
	cache_free(&c);
}

/* A full cache reuses expired entries first, the one that expired longest ago first, however
 * hot; live entries only when none has expired (CLOCK among them). */
static void
test_eviction_prefers_expired(void **state)
{
	(void)state;
	enum { CAP = 4 };
	static const uint32_t ttl[CAP] = { 100, 50, 200, 1000 };
	struct cache *c = NULL;
	struct fixture f[CAP], g;
	struct cache_stats st;
	uint32_t age;
	bool stale;
	char name[64];

	assert_int_equal(cache_new(CAP, 0, 86400, &c), 0);
	cache_configure(c, 86400, false);
	for (int i = 0; i < CAP; i++) {
		snprintf(name, sizeof(name), "e%d.example", i);
		make_answer(&f[i], name, ttl[i], LDNS_RCODE_NOERROR, false);
		assert_int_equal(cache_insert(c, &f[i].qname, 1, 1, 0, &f[i].a, 0), 0);
		/* every entry hot; e3 (live) is not looked up again */
		assert_non_null(cache_lookup(c, &f[i].qname, 1, 1, 0, 1000, &age));
	}
	/* at 300 s e0, e1, e2 are expired (at 100, 50, 200 s), e3 is live: they go e1, e0, e2 */
	static const int order[] = { 1, 0, 2 };
	for (int k = 0; k < 3; k++) {
		snprintf(name, sizeof(name), "new%d.example", k);
		make_answer(&g, name, 3600, LDNS_RCODE_NOERROR, false);
		assert_int_equal(cache_insert(c, &g.qname, 1, 1, 0, &g.a, 300000), 0);
		for (int i = 0; i < CAP; i++) {
			bool gone = false;
			for (int j = 0; j <= k; j++)
				gone |= order[j] == i;
			assert_int_equal(cache_lookup_stale(c, &f[i].qname, 1, 1, 0, 300000, &age,
							    &stale) == NULL,
					 gone);
		}
	}
	cache_get_stats(c, &st);
	assert_int_equal(st.expired, 3);
	assert_int_equal(st.evictions, 0);
	assert_int_equal(st.entries, CAP);
	/* nothing expired now: a live entry is evicted */
	make_answer(&g, "new3.example", 3600, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &g.qname, 1, 1, 0, &g.a, 300000), 0);
	cache_get_stats(c, &st);
	assert_int_equal(st.evictions, 1);
	assert_int_equal(st.entries, CAP);
	cache_free(&c);
}

/* Prefetch: due on a hit in the last tenth of the lifetime of an entry with a TTL of at least
 * 10 s and at least 2 hits since stored; once per stored answer; never when off, for short
 * TTLs, or through the CD fallback. */
static void
test_prefetch_trigger_once(void **state)
{
	(void)state;
	struct cache *c = NULL;
	struct fixture f;
	struct cache_stats st;
	uint32_t age;

	assert_int_equal(cache_new(16, 0, 86400, &c), 0);
	cache_configure(c, 0, true);
	make_answer(&f, "pf.example", 100, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);

	static const struct {
		uint64_t now;
		bool due;
		bool start;	/* call cache_prefetch_started when due */
	} steps[] = {
		{ 10000, false, false },	/* 1 hit, not in the window */
		{ 89999, false, false },	/* 2 hits, not yet in the window (90 s) */
		{ 90000, true, false },		/* due, but not started (at the cap): due again */
		{ 95000, true, true },		/* started */
		{ 96000, false, false },	/* once per stored answer */
		{ 99999, false, false },
	};
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_non_null(cache_lookup(c, &f.qname, 1, 1, 0, steps[i].now, &age));
		assert_int_equal(cache_prefetch_due(c), steps[i].due);
		if (steps[i].due && steps[i].start)
			cache_prefetch_started(c);
	}
	cache_get_stats(c, &st);
	assert_int_equal(st.prefetches, 1);

	/* the refresh replaces it: counted again from zero, due again in its own last tenth */
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 99000), 0);
	assert_non_null(cache_lookup(c, &f.qname, 1, 1, 0, 189000, &age));
	assert_false(cache_prefetch_due(c));	/* 1 hit since stored */
	assert_non_null(cache_lookup(c, &f.qname, 1, 1, 0, 189500, &age));
	assert_true(cache_prefetch_due(c));
	/* any other call forgets the hit */
	make_answer(&f, "other.example", 100, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 189500), 0);
	assert_false(cache_prefetch_due(c));
	assert_null(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_DO, 189500, &age));
	assert_false(cache_prefetch_due(c));

	/* the CD fallback is never due (the refresh would store another key) */
	make_answer(&f, "cd.example", 100, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);
	for (int k = 0; k < 3; k++) {
		assert_non_null(cache_lookup(c, &f.qname, 1, 1, CACHE_KEY_CD, 95000, &age));
		assert_false(cache_prefetch_due(c));
	}
	/* a TTL below 10 s is never prefetched */
	make_answer(&f, "short.example", 9, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);
	for (int k = 0; k < 3; k++) {
		assert_non_null(cache_lookup(c, &f.qname, 1, 1, 0, 8500, &age));
		assert_false(cache_prefetch_due(c));
	}
	/* off */
	cache_configure(c, 0, false);
	make_answer(&f, "off.example", 100, LDNS_RCODE_NOERROR, false);
	assert_int_equal(cache_insert(c, &f.qname, 1, 1, 0, &f.a, 0), 0);
	for (int k = 0; k < 3; k++) {
		assert_non_null(cache_lookup(c, &f.qname, 1, 1, 0, 95000, &age));
		assert_false(cache_prefetch_due(c));
	}
	cache_get_stats(c, &st);
	assert_int_equal(st.prefetches, 1);
	cache_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hit_miss_expiry),
		cmocka_unit_test(test_key_separation),
		cmocka_unit_test(test_clamps),
		cmocka_unit_test(test_not_stored),
		cmocka_unit_test(test_eviction_keeps_hot),
		cmocka_unit_test(test_replace),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_stale_kept_and_expiry),
		cmocka_unit_test(test_eviction_prefers_expired),
		cmocka_unit_test(test_prefetch_trigger_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
