/*
 * test_neigh6: the RTM_GETNEIGH dump parser on synthetic netlink datagrams: which neighbour
 * messages are kept (family, state, attribute sizes, zero MAC, type, sequence), NLMSG_DONE and
 * NLMSG_ERROR, dumps over several datagrams, and lengths that lie (every cut of a datagram,
 * random bytes, unaligned buffers) read nothing past the buffer (run under ASan).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <setjmp.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "neigh6.h"

#define SEQ      0x5eed0001u
#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* ---- building datagrams ---- */

struct wbuf {
	alignas(8) uint8_t b[16384];
	size_t len;
	size_t msg; /* offset of the message being written */
};

static void
put(struct wbuf *w, const void *p, size_t n)
{
	assert_true(w->len + n <= sizeof(w->b));
	memcpy(w->b + w->len, p, n);
	w->len += n;
}

static void
pad(struct wbuf *w)
{
	while (w->len % 4 != 0)
		w->b[w->len++] = 0;
}

static void
begin(struct wbuf *w, uint16_t type, uint32_t seq)
{
	struct nlmsghdr h = {.nlmsg_type = type,
	                     .nlmsg_flags = NLM_F_MULTI,
	                     .nlmsg_seq = seq,
	                     .nlmsg_pid = 4242};
	w->msg = w->len;
	put(w, &h, sizeof(h));
}

/* Writes the message's length, then pads the buffer to the next message. */
static void
end(struct wbuf *w)
{
	uint32_t l = (uint32_t)(w->len - w->msg);
	memcpy(w->b + w->msg + offsetof(struct nlmsghdr, nlmsg_len), &l, sizeof(l));
	pad(w);
}

static void
attr(struct wbuf *w, uint16_t type, const void *p, size_t n)
{
	struct rtattr a = {.rta_len = (unsigned short)RTA_LENGTH(n), .rta_type = type};
	put(w, &a, sizeof(a));
	put(w, p, n);
	pad(w);
}

/* One neighbour message, as the kernel writes it: ndmsg, NDA_DST, NDA_LLADDR, NDA_PROBES,
 * NDA_CACHEINFO. */
struct nb {
	const char *why;
	uint16_t type;
	uint8_t family;
	uint16_t state;
	const char *dst;  /* IPv6 or IPv4 text; NULL = no NDA_DST */
	size_t dst_len;   /* octets of NDA_DST written (from the start of the address) */
	const char *ll;   /* MAC text; NULL = no NDA_LLADDR */
	size_t ll_len;    /* octets of NDA_LLADDR: 6, or up to 8 (zero-padded) */
	uint32_t seq_off; /* added to SEQ */
	bool kept;
};

static void
neighbour(struct wbuf *w, const struct nb *c)
{
	struct ndmsg nd = {.ndm_family = c->family,
	                   .ndm_ifindex = 2,
	                   .ndm_state = c->state,
	                   .ndm_type = RTN_UNICAST};
	begin(w, c->type, SEQ + c->seq_off);
	put(w, &nd, sizeof(nd));
	pad(w);
	if (c->dst != NULL) {
		uint8_t a[16] = {0};
		int fam = strchr(c->dst, ':') != NULL ? AF_INET6 : AF_INET;
		assert_int_equal(inet_pton(fam, c->dst, a), 1);
		assert_true(c->dst_len <= sizeof(a));
		attr(w, NDA_DST, a, c->dst_len);
	}
	if (c->ll != NULL) {
		uint8_t l[8] = {0};
		struct mac m;
		assert_int_equal(mac_parse(c->ll, strlen(c->ll), &m), 0);
		memcpy(l, m.b, MAC_LEN);
		assert_true(c->ll_len <= sizeof(l));
		attr(w, NDA_LLADDR, l, c->ll_len);
	}
	uint32_t probes = 0;
	attr(w, NDA_PROBES, &probes, sizeof(probes));
	struct nda_cacheinfo ci = {.ndm_confirmed = 100, .ndm_used = 200, .ndm_updated = 300};
	attr(w, NDA_CACHEINFO, &ci, sizeof(ci));
	end(w);
}

/* A kept IPv6 neighbour with the default attributes. */
static void
entry(struct wbuf *w, const char *ip, const char *mac)
{
	struct nb c = {"", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, ip, 16, mac, 6, 0, true};
	neighbour(w, &c);
}

static void
done_msg(struct wbuf *w, uint32_t seq)
{
	int32_t zero = 0;
	begin(w, NLMSG_DONE, seq);
	put(w, &zero, sizeof(zero));
	end(w);
}

/* NLMSG_ERROR carrying error and the first plen octets of its nlmsgerr. */
static void
error_msg(struct wbuf *w, uint32_t seq, int error, size_t plen)
{
	struct nlmsgerr e;
	memset(&e, 0, sizeof(e));
	e.error = error;
	e.msg.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
	e.msg.nlmsg_type = RTM_GETNEIGH;
	e.msg.nlmsg_seq = seq;
	assert_true(plen <= sizeof(e));
	begin(w, NLMSG_ERROR, seq);
	put(w, &e, plen);
	end(w);
}

/* ---- checking tables ---- */

struct pair {
	const char *ip;
	const char *mac;
};

static void
expect(const struct neigh6 *t, const struct pair *want, size_t n)
{
	if (t->n != n)
		fail_msg("%zu entries, expected %zu", t->n, n);
	for (size_t i = 0; i < n; i++) {
		uint8_t a[16];
		struct mac m;
		char got_ip[INET6_ADDRSTRLEN], got_mac[MAC_STRLEN];
		assert_int_equal(inet_pton(AF_INET6, want[i].ip, a), 1);
		assert_int_equal(mac_parse(want[i].mac, strlen(want[i].mac), &m), 0);
		inet_ntop(AF_INET6, t->v[i].addr, got_ip, sizeof(got_ip));
		mac_format(&t->v[i].mac, got_mac);
		if (memcmp(t->v[i].addr, a, 16) != 0 || memcmp(t->v[i].mac.b, m.b, MAC_LEN) != 0)
			fail_msg("entry %zu: %s -> %s, expected %s -> %s", i, got_ip, got_mac,
			         want[i].ip, want[i].mac);
	}
}

/* Parses buf[0..len) as one datagram into a new table. */
static int
parse_one(const void *buf, size_t len, struct neigh6 **t, bool *done)
{
	assert_int_equal(neigh6_new(t), 0);
	return neigh6_parse(*t, buf, len, SEQ, done);
}

/* ---- the filter: one datagram, each kind of neighbour message ---- */

static const struct nb filter_cases[] = {
        {"reachable", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, "2001:db8::1", 16, "00:1a:2b:3c:4d:01",
         6, 0, true},
        {"stale, link-local", RTM_NEWNEIGH, AF_INET6, NUD_STALE, "fe80::1a2b:3cff:fe4d:2", 16,
         "00:1a:2b:3c:4d:02", 6, 0, true},
        {"delay", RTM_NEWNEIGH, AF_INET6, NUD_DELAY, "2001:db8::3", 16, "00:1a:2b:3c:4d:03", 6, 0,
         true},
        {"probe", RTM_NEWNEIGH, AF_INET6, NUD_PROBE, "2001:db8::4", 16, "00:1a:2b:3c:4d:04", 6, 0,
         true},
        {"permanent", RTM_NEWNEIGH, AF_INET6, NUD_PERMANENT, "2001:db8::5", 16, "da:a1:19:00:00:05",
         6, 0, true},
        {"failed", RTM_NEWNEIGH, AF_INET6, NUD_FAILED, "2001:db8::6", 16, "00:1a:2b:3c:4d:06", 6, 0,
         false},
        {"incomplete", RTM_NEWNEIGH, AF_INET6, NUD_INCOMPLETE, "2001:db8::7", 16,
         "00:1a:2b:3c:4d:07", 6, 0, false},
        {"noarp", RTM_NEWNEIGH, AF_INET6, NUD_NOARP, "2001:db8::8", 16, "00:1a:2b:3c:4d:08", 6, 0,
         false},
        {"no state", RTM_NEWNEIGH, AF_INET6, NUD_NONE, "2001:db8::9", 16, "00:1a:2b:3c:4d:09", 6, 0,
         false},
        {"IPv4 entry", RTM_NEWNEIGH, AF_INET, NUD_REACHABLE, "192.0.2.10", 4, "00:1a:2b:3c:4d:0a",
         6, 0, false},
        {"AF_INET with a 16-octet address", RTM_NEWNEIGH, AF_INET, NUD_REACHABLE, "2001:db8::b", 16,
         "00:1a:2b:3c:4d:0b", 6, 0, false},
        {"no NDA_LLADDR", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, "2001:db8::c", 16, NULL, 0, 0,
         false},
        {"no NDA_DST", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, NULL, 0, "00:1a:2b:3c:4d:0d", 6, 0,
         false},
        {"8-octet NDA_LLADDR", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, "2001:db8::e", 16,
         "00:1a:2b:3c:4d:0e", 8, 0, false},
        {"empty NDA_LLADDR (tunnel)", RTM_NEWNEIGH, AF_INET6, NUD_PERMANENT, "2001:db8::f", 16,
         "00:1a:2b:3c:4d:0f", 0, 0, false},
        {"4-octet NDA_DST", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, "2001:db8::10", 4,
         "00:1a:2b:3c:4d:10", 6, 0, false},
        {"zero MAC", RTM_NEWNEIGH, AF_INET6, NUD_STALE, "2001:db8::11", 16, "00:00:00:00:00:00", 6,
         0, false},
        {"RTM_DELNEIGH", RTM_DELNEIGH, AF_INET6, NUD_REACHABLE, "2001:db8::12", 16,
         "00:1a:2b:3c:4d:12", 6, 0, false},
        {"another sequence number", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE, "2001:db8::13", 16,
         "00:1a:2b:3c:4d:13", 6, 7, false},
        {"several states, one usable", RTM_NEWNEIGH, AF_INET6, NUD_STALE | NUD_NOARP,
         "2001:db8::14", 16, "00:1a:2b:3c:4d:14", 6, 0, true},
        {"same address again, another interface", RTM_NEWNEIGH, AF_INET6, NUD_REACHABLE,
         "2001:db8::1", 16, "00:1a:2b:3c:4d:15", 6, 0, true},
};

/* What filter_cases keep, in order. */
static const struct pair filter_kept[] = {
        {"2001:db8::1", "00:1a:2b:3c:4d:01"}, {"fe80::1a2b:3cff:fe4d:2", "00:1a:2b:3c:4d:02"},
        {"2001:db8::3", "00:1a:2b:3c:4d:03"}, {"2001:db8::4", "00:1a:2b:3c:4d:04"},
        {"2001:db8::5", "da:a1:19:00:00:05"}, {"2001:db8::14", "00:1a:2b:3c:4d:14"},
        {"2001:db8::1", "00:1a:2b:3c:4d:15"},
};

static void
filter_buf(struct wbuf *w)
{
	memset(w, 0, sizeof(*w));
	for (size_t i = 0; i < NELEM(filter_cases); i++)
		neighbour(w, &filter_cases[i]);
	done_msg(w, SEQ);
}

static void
test_filter(void **state)
{
	(void)state;
	static struct wbuf w;
	struct neigh6 *t = NULL;
	bool done = false;
	size_t kept = 0, ignored = 0;

	for (size_t i = 0; i < NELEM(filter_cases); i++) {
		const struct nb *c = &filter_cases[i];
		kept += c->kept;
		ignored += !c->kept && c->type == RTM_NEWNEIGH && c->seq_off == 0;
	}
	assert_int_equal(kept, NELEM(filter_kept));
	filter_buf(&w);
	assert_int_equal(parse_one(w.b, w.len, &t, &done), 0);
	assert_true(done);
	expect(t, filter_kept, NELEM(filter_kept));
	assert_int_equal(t->ignored, ignored);
	assert_int_equal(t->malformed, 0);
	neigh6_free(&t);
	assert_null(t);
	neigh6_free(&t); /* NULL-safe */
}

/* Each row alone, so a kept row is not hiding a wrongly dropped one. */
static void
test_filter_each(void **state)
{
	(void)state;
	static struct wbuf w;
	for (size_t i = 0; i < NELEM(filter_cases); i++) {
		const struct nb *c = &filter_cases[i];
		struct neigh6 *t = NULL;
		bool done = false;
		memset(&w, 0, sizeof(w));
		neighbour(&w, c);
		assert_int_equal(parse_one(w.b, w.len, &t, &done), 0);
		assert_false(done);
		if (t->n != (c->kept ? 1u : 0u))
			fail_msg("%s: %zu entries, expected %d", c->why, t->n, c->kept);
		neigh6_free(&t);
	}
}

/* The same datagram at every misalignment. */
static void
test_unaligned(void **state)
{
	(void)state;
	static struct wbuf w;
	filter_buf(&w);
	uint8_t *raw = malloc(w.len + 3);
	assert_non_null(raw);
	for (size_t shift = 1; shift <= 3; shift++) {
		struct neigh6 *t = NULL;
		bool done = false;
		memcpy(raw + shift, w.b, w.len);
		assert_int_equal(parse_one(raw + shift, w.len, &t, &done), 0);
		assert_true(done);
		expect(t, filter_kept, NELEM(filter_kept));
		neigh6_free(&t);
	}
	free(raw);
}

/* ---- the end of a dump ---- */

static const struct pair two[] = {
        {"2001:db8::a1", "02:00:00:00:00:a1"},
        {"2001:db8::a2", "02:00:00:00:00:a2"},
};

static void
test_done_stops(void **state)
{
	(void)state;
	static struct wbuf w;
	struct neigh6 *t = NULL;
	bool done = false;

	memset(&w, 0, sizeof(w));
	entry(&w, two[0].ip, two[0].mac);
	done_msg(&w, SEQ + 1); /* not ours: skipped */
	entry(&w, two[1].ip, two[1].mac);
	done_msg(&w, SEQ);
	entry(&w, "2001:db8::a3", "02:00:00:00:00:a3");
	error_msg(&w, SEQ, -EPERM, sizeof(struct nlmsgerr));
	assert_int_equal(parse_one(w.b, w.len, &t, &done), 0);
	assert_true(done);
	expect(t, two, 2);
	neigh6_free(&t);
}

/* A dump in three datagrams (the kernel fills one at a time): entries accumulate. */
static void
test_datagrams(void **state)
{
	(void)state;
	static struct wbuf w;
	static const struct pair want[] = {
	        {"2001:db8::b1", "02:00:00:00:00:b1"},
	        {"2001:db8::b2", "02:00:00:00:00:b2"},
	        {"2001:db8::b3", "02:00:00:00:00:b3"},
	};
	struct neigh6 *t = NULL;
	bool done = true;

	assert_int_equal(neigh6_new(&t), 0);
	memset(&w, 0, sizeof(w));
	entry(&w, want[0].ip, want[0].mac);
	entry(&w, want[1].ip, want[1].mac);
	assert_int_equal(neigh6_parse(t, w.b, w.len, SEQ, &done), 0);
	assert_false(done);
	assert_int_equal(neigh6_parse(t, w.b, 0, SEQ, &done), 0); /* empty datagram */
	assert_false(done);
	memset(&w, 0, sizeof(w));
	entry(&w, want[2].ip, want[2].mac);
	done_msg(&w, SEQ);
	assert_int_equal(neigh6_parse(t, w.b, w.len, SEQ, &done), 0);
	assert_true(done);
	expect(t, want, 3);
	neigh6_free(&t);
}

/* Many entries: the table grows. */
static void
test_many(void **state)
{
	(void)state;
	static struct wbuf w;
	struct neigh6 *t = NULL;
	bool done = false;
	char ip[64], mac[32];

	assert_int_equal(neigh6_new(&t), 0);
	for (unsigned d = 0; d < 10; d++) {
		memset(&w, 0, sizeof(w));
		for (unsigned i = 0; i < 100; i++) {
			unsigned k = d * 100 + i;
			snprintf(ip, sizeof(ip), "2001:db8::%x", k + 1);
			snprintf(mac, sizeof(mac), "02:00:00:00:%02x:%02x", k >> 8, k & 0xff);
			entry(&w, ip, mac);
		}
		if (d == 9)
			done_msg(&w, SEQ);
		assert_int_equal(neigh6_parse(t, w.b, w.len, SEQ, &done), 0);
		assert_int_equal(done, d == 9);
	}
	assert_int_equal(t->n, 1000);
	for (unsigned k = 0; k < 1000; k++) {
		uint8_t a[16];
		snprintf(ip, sizeof(ip), "2001:db8::%x", k + 1);
		assert_int_equal(inet_pton(AF_INET6, ip, a), 1);
		assert_memory_equal(t->v[k].addr, a, 16);
		assert_int_equal(t->v[k].mac.b[4], k >> 8);
		assert_int_equal(t->v[k].mac.b[5], k & 0xff);
	}
	neigh6_free(&t);
}

/* ---- NLMSG_ERROR ---- */

struct error_case {
	const char *why;
	int error;
	size_t plen; /* octets of struct nlmsgerr written */
	int want;
};

static const struct error_case error_cases[] = {
        {"EPERM", -EPERM, sizeof(struct nlmsgerr), -EPERM},
        {"EINVAL, error field only", -EINVAL, sizeof(int), -EIO}, /* too short to read */
        {"no payload", 0, 0, -EIO},
        {"an ack (0) is still an error in a dump", 0, sizeof(struct nlmsgerr), -EIO},
        {"positive", 5, sizeof(struct nlmsgerr), -EIO},
        {"out of errno range", -100000, sizeof(struct nlmsgerr), -EIO},
};

static void
test_error(void **state)
{
	(void)state;
	static struct wbuf w;
	for (size_t i = 0; i < NELEM(error_cases); i++) {
		const struct error_case *c = &error_cases[i];
		struct neigh6 *t = NULL;
		bool done = true;
		memset(&w, 0, sizeof(w));
		entry(&w, two[0].ip, two[0].mac);
		error_msg(&w, SEQ + 3, -EBUSY, sizeof(struct nlmsgerr)); /* not ours */
		error_msg(&w, SEQ, c->error, c->plen);
		entry(&w, two[1].ip, two[1].mac);
		done_msg(&w, SEQ);
		int rc = parse_one(w.b, w.len, &t, &done);
		if (rc != c->want)
			fail_msg("%s: returned %d, expected %d", c->why, rc, c->want);
		assert_true(done); /* not written on an error */
		expect(t, two, 1); /* what came before stays, the caller drops it */
		neigh6_free(&t);
	}
}

/* ---- lengths that lie ---- */

static void
set_len(struct wbuf *w, size_t msg, uint32_t len)
{
	memcpy(w->b + msg + offsetof(struct nlmsghdr, nlmsg_len), &len, sizeof(len));
}

/* Copies w into a heap block of exactly len octets, so ASan sees any read past it. */
static int
parse_exact(const struct wbuf *w, size_t len, struct neigh6 **t, bool *done)
{
	uint8_t *b = malloc(len ? len : 1);
	assert_non_null(b);
	memcpy(b, w->b, len);
	int rc = parse_one(b, len, t, done);
	free(b);
	return rc;
}

static void
test_overrun(void **state)
{
	(void)state;
	static struct wbuf w;
	struct neigh6 *t = NULL;
	bool done = true;

	/* the second message's length runs past the datagram: the first is kept, the rest lost */
	memset(&w, 0, sizeof(w));
	entry(&w, two[0].ip, two[0].mac);
	size_t second = w.len;
	entry(&w, two[1].ip, two[1].mac);
	done_msg(&w, SEQ);
	set_len(&w, second, (uint32_t)(w.len - second + 4));
	assert_int_equal(parse_exact(&w, w.len, &t, &done), 0);
	assert_false(done);
	expect(t, two, 1);
	assert_int_equal(t->malformed, 1);
	neigh6_free(&t);

	/* a huge length */
	set_len(&w, second, UINT32_MAX);
	assert_int_equal(parse_exact(&w, w.len, &t, &done), 0);
	assert_false(done);
	expect(t, two, 1);
	neigh6_free(&t);

	/* a length shorter than the header: no way to the next message */
	for (uint32_t bad = 0; bad < sizeof(struct nlmsghdr); bad++) {
		set_len(&w, second, bad);
		assert_int_equal(parse_exact(&w, w.len, &t, &done), 0);
		assert_false(done);
		expect(t, two, 1);
		assert_int_equal(t->malformed, 1);
		neigh6_free(&t);
	}

	/* a neighbour message cut inside its ndmsg: skipped, the next one still read */
	memset(&w, 0, sizeof(w));
	begin(&w, RTM_NEWNEIGH, SEQ);
	struct ndmsg nd = {.ndm_family = AF_INET6, .ndm_state = NUD_REACHABLE};
	put(&w, &nd, 8);
	end(&w);
	entry(&w, two[0].ip, two[0].mac);
	done_msg(&w, SEQ);
	assert_int_equal(parse_exact(&w, w.len, &t, &done), 0);
	assert_true(done);
	expect(t, two, 1);
	assert_int_equal(t->malformed, 1);
	neigh6_free(&t);
}

/* Attributes whose length lies: the walk stops there, what came before counts. */
static void
test_attr_garbage(void **state)
{
	(void)state;
	static struct wbuf w;
	struct neigh6 *t = NULL;
	bool done = false;
	uint8_t a[16];
	struct mac m;
	struct rtattr bad = {.rta_len = 2, .rta_type = NDA_PROBES};

	assert_int_equal(inet_pton(AF_INET6, two[0].ip, a), 1);
	assert_int_equal(mac_parse(two[0].mac, strlen(two[0].mac), &m), 0);
	struct ndmsg nd = {.ndm_family = AF_INET6, .ndm_state = NUD_REACHABLE};

	/* DST, LLADDR, then an attribute shorter than its header: kept */
	memset(&w, 0, sizeof(w));
	begin(&w, RTM_NEWNEIGH, SEQ);
	put(&w, &nd, sizeof(nd));
	attr(&w, NDA_DST, a, 16);
	attr(&w, NDA_LLADDR, m.b, MAC_LEN);
	put(&w, &bad, sizeof(bad));
	end(&w);
	/* DST, an attribute longer than the message, then LLADDR: not kept */
	begin(&w, RTM_NEWNEIGH, SEQ);
	put(&w, &nd, sizeof(nd));
	attr(&w, NDA_DST, a, 16);
	size_t at = w.len;
	attr(&w, NDA_CACHEINFO, a, 16);
	attr(&w, NDA_LLADDR, m.b, MAC_LEN);
	end(&w);
	unsigned short big = (unsigned short)(w.len - at + 4);
	memcpy(w.b + at + offsetof(struct rtattr, rta_len), &big, sizeof(big));
	/* a message whose last attribute is cut by the message length */
	size_t third = w.len;
	entry(&w, two[1].ip, two[1].mac);
	set_len(&w, third, (uint32_t)(w.len - third - 4));
	assert_int_equal(parse_exact(&w, w.len, &t, &done), 0);
	assert_false(done);
	expect(t, two, 2); /* the third keeps DST and LLADDR, before the cut CACHEINFO */
	assert_int_equal(t->ignored, 1);
	neigh6_free(&t);

	/* the message (and the datagram) ends inside NDA_LLADDR: not kept */
	memset(&w, 0, sizeof(w));
	begin(&w, RTM_NEWNEIGH, SEQ);
	put(&w, &nd, sizeof(nd));
	attr(&w, NDA_DST, a, 16);
	attr(&w, NDA_LLADDR, m.b, MAC_LEN);
	end(&w);
	set_len(&w, 0, (uint32_t)(w.len - 4));
	assert_int_equal(parse_exact(&w, w.len - 4, &t, &done), 0);
	assert_int_equal(t->n, 0);
	assert_int_equal(t->ignored, 1);
	neigh6_free(&t);
}

/* Every cut of a datagram: only whole messages count, nothing past the cut is read. */
static void
test_every_cut(void **state)
{
	(void)state;
	static struct wbuf w;
	size_t ends[4];

	memset(&w, 0, sizeof(w));
	entry(&w, two[0].ip, two[0].mac);
	ends[0] = w.len;
	entry(&w, two[1].ip, two[1].mac);
	ends[1] = w.len;
	entry(&w, "2001:db8::a3", "02:00:00:00:00:a3");
	ends[2] = w.len;
	done_msg(&w, SEQ);
	ends[3] = w.len;
	for (size_t cut = 0; cut <= w.len; cut++) {
		struct neigh6 *t = NULL;
		bool done = true;
		size_t whole = 0;
		while (whole < 3 && ends[whole] <= cut)
			whole++;
		assert_int_equal(parse_exact(&w, cut, &t, &done), 0);
		if (t->n != whole)
			fail_msg("cut at %zu: %zu entries, expected %zu", cut, t->n, whole);
		assert_int_equal(done, cut == ends[3]);
		neigh6_free(&t);
	}
}

/* Random bytes, and random lengths in otherwise valid datagrams: no crash, no over-read, and
 * whatever comes out has a 6-octet non-zero MAC. */
static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
test_garbage(void **state)
{
	(void)state;
	static struct wbuf w, base;
	uint64_t s = 0x9e3779b97f4a7c15ull;

	filter_buf(&base);
	for (int round = 0; round < 4000; round++) {
		struct neigh6 *t = NULL;
		bool done = false;
		size_t len;
		if (round % 2 == 0) {
			/* the valid datagram with a few octets changed */
			w = base;
			len = base.len;
			for (int k = 0; k < 1 + (int)(rnd(&s) % 4); k++)
				w.b[rnd(&s) % len] = (uint8_t)rnd(&s);
			len -= rnd(&s) % 64 < 8 ? rnd(&s) % len : 0;
		} else {
			len = rnd(&s) % 600;
			for (size_t i = 0; i < len; i++)
				w.b[i] = (uint8_t)rnd(&s);
			/* plausible headers now and then: our sequence, a neighbour type */
			if (len >= sizeof(struct nlmsghdr) && rnd(&s) % 2 == 0) {
				uint32_t l = (uint32_t)(rnd(&s) % (len + 8));
				uint16_t type = RTM_NEWNEIGH;
				uint32_t seq = SEQ;
				memcpy(w.b, &l, 4);
				memcpy(w.b + 4, &type, 2);
				memcpy(w.b + 8, &seq, 4);
				w.b[16] = AF_INET6;
			}
		}
		int rc = parse_exact(&w, len, &t, &done);
		assert_true(rc == 0 || (rc < 0 && rc >= -4095));
		for (size_t i = 0; i < t->n; i++) {
			static const uint8_t zero[MAC_LEN];
			assert_memory_not_equal(t->v[i].mac.b, zero, MAC_LEN);
		}
		neigh6_free(&t);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_filter),       cmocka_unit_test(test_filter_each),
	        cmocka_unit_test(test_unaligned),    cmocka_unit_test(test_done_stops),
	        cmocka_unit_test(test_datagrams),    cmocka_unit_test(test_many),
	        cmocka_unit_test(test_error),        cmocka_unit_test(test_overrun),
	        cmocka_unit_test(test_attr_garbage), cmocka_unit_test(test_every_cut),
	        cmocka_unit_test(test_garbage),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
