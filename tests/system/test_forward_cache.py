"""Forwarding and the cache: what the client keeps (ID, case, flags), what the upstream gets,
cache hits, TTL decrement and expiry, negative caching, EDNS sizes and truncation, dedup."""

import socket
import time

import dns.flags
import dns.message
import dns.rcode
import pytest

from conftest import GROUP_CLIENT, NOGROUP_CLIENT, BLOCK_IPV4, answer_values, answer_ttls, make_query
from fakeupstream import DEFAULT_A, Answer, Big, Delay, NoData, NxDomain

# (rd, cd, do, group): the reply and the upstream query must carry the client's flags
FLAG_CASES = [
	(True, False, False, None),
	(False, False, False, None),
	(True, True, True, None),
	(False, True, False, None),
	(True, False, True, None),
	(True, True, True, "sink"),	# a blocked answer keeps them too
	(False, False, False, "sink"),
]


@pytest.mark.parametrize("rd,cd,do,group", FLAG_CASES)
def test_id_case_and_flags_preserved(veto, upstream, rd, cd, do, group):
	name = f"MiXeD-{int(rd)}{int(cd)}{int(do)}.CaSe.{'Ads' if group else 'Example'}.TEST"
	q = make_query(name, "A", id=0xBEEF, rd=rd, cd=cd, do=do)
	wire = q.to_wire()
	src = GROUP_CLIENT[group] if group else NOGROUP_CLIENT
	reply = veto.exchange(wire, src=src)
	assert reply is not None
	r = dns.message.from_wire(reply)
	assert r.id == 0xBEEF
	qlen = len(q.question[0].name.to_wire())
	assert reply[12:12 + qlen] == wire[12:12 + qlen], "question case not preserved"
	assert bool(r.flags & dns.flags.RD) == rd
	assert bool(r.flags & dns.flags.CD) == cd
	assert bool(r.flags & dns.flags.QR)
	assert r.edns == 0 and bool(r.ednsflags & dns.flags.DO) == do
	if group:
		assert answer_values(r, "A") == [BLOCK_IPV4]
		assert upstream.queries() == []
		return
	assert answer_values(r, "A") == [DEFAULT_A]
	sent = upstream.queries(name=name)
	assert len(sent) == 1
	u = sent[0]
	assert u.qname.lower() == name.lower() and u.qtype == "A"
	assert u.cd == cd, "CD must be passed upstream"
	assert u.rd == rd, "RD is copied from the client (dnsmsg.h)"
	assert u.has_opt and u.do == do, "DO must be passed upstream in OPT"


def test_no_edns_query_gets_no_opt_and_upstream_still_uses_edns(veto, upstream):
	r = veto.query("noopt.test", "A", edns=False)
	assert r.edns == -1 and answer_values(r, "A") == [DEFAULT_A]
	u = upstream.queries(name="noopt.test")
	assert len(u) == 1 and u[0].has_opt and u[0].payload == 1232


def test_cache_hit(veto, upstream):
	r1 = veto.query("cached.test", "A")
	r2 = veto.query("cached.test", "A", src=GROUP_CLIENT["sink"])
	assert answer_values(r1, "A") == answer_values(r2, "A") == [DEFAULT_A]
	assert len(upstream.queries(name="cached.test")) == 1, "second query must come from the cache"
	recs = veto.wait_log(lambda x: x["qname"] == "cached.test", count=2)
	assert [x["action"] for x in recs] == ["forward", "cache"]
	assert recs[0]["upstream"] == upstream.address
	assert recs[1]["upstream"] is None
	assert recs[1]["rcode"] == "NOERROR" and recs[1]["blocked"] is False


# (first query kwargs, second query kwargs, upstream queries expected)
CACHE_KEY_CASES = [
	({"qtype": "A"}, {"qtype": "AAAA"}, 2),
	({"qtype": "A"}, {"qtype": "A", "tcp": True}, 1),
	({"do": False}, {"do": True}, 2),
	({"do": True}, {"do": True, "edns": True}, 1),
	({"edns": False}, {"edns": True}, 1),
]


@pytest.mark.parametrize("first,second,expected", CACHE_KEY_CASES)
def test_cache_key(veto, upstream, first, second, expected):
	name = "key.test"
	a = dict(first)
	b = dict(second)
	veto.query(name, a.pop("qtype", "A"), **a)
	veto.query(name, b.pop("qtype", "A"), **b)
	assert len(upstream.queries(name=name)) == expected


def test_cache_is_case_insensitive_and_keeps_each_clients_case(veto, upstream):
	w1 = make_query("Case.Test", "A").to_wire()
	w2 = make_query("cASE.tEST", "A").to_wire()
	r1 = veto.exchange(w1)
	r2 = veto.exchange(w2)
	assert r1[12:23] == w1[12:23] and r2[12:23] == w2[12:23]
	assert len(upstream.queries(name="case.test")) == 1


def test_ttl_decrement_and_expiry(veto, upstream):
	upstream.set_rule("long.test", Answer({"A": ["192.0.2.10"]}, ttl=300))
	upstream.set_rule("short.test", Answer({"A": ["192.0.2.11"]}, ttl=1))
	upstream.set_rule("negshort.test", NxDomain(soa_ttl=300, soa_min=1))	# RFC 2308: min(300, 1)
	upstream.set_rule("neglong.test", NxDomain(soa_ttl=300, soa_min=300))
	first = {n: veto.query(n, "A") for n in ("long.test", "short.test", "negshort.test", "neglong.test")}
	assert answer_ttls(first["long.test"]) == [300]
	time.sleep(2.2)
	again = {n: veto.query(n, "A") for n in first}
	ttl = answer_ttls(again["long.test"])
	assert len(ttl) == 1 and 280 <= ttl[0] <= 298, f"TTL not decremented by the age: {ttl}"
	assert len(upstream.queries(name="long.test")) == 1
	assert len(upstream.queries(name="short.test")) == 2, "an expired entry must be fetched again"
	assert len(upstream.queries(name="negshort.test")) == 2, "negative TTL is min(SOA TTL, minimum)"
	assert len(upstream.queries(name="neglong.test")) == 1
	assert again["neglong.test"].rcode() == dns.rcode.NXDOMAIN
	soa = [rr.ttl for rr in again["neglong.test"].authority]
	assert soa and all(t <= 298 for t in soa), f"SOA TTL of a cached negative answer: {soa}"


@pytest.mark.parametrize("rule,rcode", [(NxDomain(), dns.rcode.NXDOMAIN), (NoData(), dns.rcode.NOERROR)])
def test_negative_cache(veto, upstream, rule, rcode):
	upstream.set_rule("neg.test", rule)
	r1 = veto.query("neg.test", "A")
	r2 = veto.query("neg.test", "A")
	assert r1.rcode() == r2.rcode() == rcode
	assert r1.answer == r2.answer == []
	assert len(r2.authority) == 1, "the SOA of a negative answer is served from the cache too"
	assert len(upstream.queries(name="neg.test")) == 1
	recs = veto.wait_log(lambda x: x["qname"] == "neg.test", count=2)
	assert [x["action"] for x in recs] == ["forward", "cache"]
	assert recs[1]["rcode"] == dns.rcode.to_text(rcode)


def test_cache_ttl_clamps(veto_factory, upstream):
	"""max_ttl shortens the lifetime, min_ttl lengthens it."""
	def clamp(lo, hi):
		def edit(cfg):
			cfg["cache"]["min_ttl"] = lo
			cfg["cache"]["max_ttl"] = hi
		return edit
	vmax = veto_factory(edit=clamp(0, 1))
	vmin = veto_factory(edit=clamp(3600, 86400))
	upstream.set_rule("clamp-max.test", Answer({"A": ["192.0.2.20"]}, ttl=300))
	upstream.set_rule("clamp-min.test", Answer({"A": ["192.0.2.21"]}, ttl=1))
	vmax.query("clamp-max.test")
	vmin.query("clamp-min.test")
	time.sleep(2.2)
	vmax.query("clamp-max.test")
	vmin.query("clamp-min.test")
	assert len(upstream.queries(name="clamp-max.test")) == 2, "max_ttl 1 must expire a 300 s answer"
	assert len(upstream.queries(name="clamp-min.test")) == 1, "min_ttl 3600 must keep a 1 s answer"


def test_cache_disabled(veto_factory, upstream):
	v = veto_factory(edit=lambda cfg: cfg["cache"].update(entries=0))
	v.query("nocache.test")
	v.query("nocache.test")
	assert len(upstream.queries(name="nocache.test")) == 2


def test_servfail_from_upstream_passed_on(veto, upstream):
	from fakeupstream import ServFail
	upstream.set_rule("sf.test", ServFail())
	t0 = time.monotonic()
	r = veto.query("sf.test", "A", timeout=6)
	assert r.rcode() == dns.rcode.SERVFAIL
	assert time.monotonic() - t0 < 5


# --- EDNS sizes and truncation --------------------------------------------------------------

BIG = 40	# 40 A records: about 700 octets, more than 512 and less than 1232

# (edns, payload, tc expected)
SIZE_CASES = [
	(False, 0, True),
	(True, 512, True),
	(True, 600, True),
	(True, 1232, False),
	(True, 4096, False),
]


@pytest.mark.parametrize("edns,payload,tc", SIZE_CASES)
def test_udp_size_and_truncation(veto, upstream, edns, payload, tc):
	upstream.set_rule("big.test", Big(BIG))
	q = make_query("big.test", "A", edns=edns, payload=payload or 1232)
	wire = veto.exchange(q.to_wire())
	assert wire is not None
	r = dns.message.from_wire(wire)
	limit = max(512, payload) if edns else 512
	assert len(wire) <= limit
	assert bool(r.flags & dns.flags.TC) == tc
	if tc:
		assert r.answer == [] or sum(len(x) for x in r.answer) < BIG
		assert len(r.question) == 1
		assert (r.edns == 0) == edns, "OPT is echoed in a truncated reply too"
		tr = veto.query("big.test", "A", tcp=True, edns=edns, payload=payload or 1232)
		assert not tr.flags & dns.flags.TC
		assert sorted(answer_values(tr, "A")) == sorted(Big.addresses(BIG))
	else:
		assert sorted(answer_values(r, "A")) == sorted(Big.addresses(BIG))
	assert len(upstream.queries(name="big.test")) == 1


def test_upstream_tc_retried_over_tcp(veto, upstream):
	upstream.set_rule("huge.test", Big(100, tc_udp=True))
	r = veto.query("huge.test", "A", tcp=True)
	assert not r.flags & dns.flags.TC
	assert sorted(answer_values(r, "A")) == sorted(Big.addresses(100))
	got = upstream.queries(name="huge.test")
	assert [g.transport for g in got] == ["udp", "tcp"], got
	# and the full answer was cached: a UDP client with a big buffer gets it all
	r = veto.query("huge.test", "A", payload=4096)
	assert len(answer_values(r, "A")) == 100
	assert len(upstream.queries(name="huge.test")) == 2


# --- dedup ------------------------------------------------------------------------------------

def test_identical_queries_in_flight_sent_once(veto_factory, upstream):
	# a timeout far above the upstream's delay: on a loaded machine a retry after the base
	# configuration's 300 ms would be a second upstream query that says nothing about merging
	veto = veto_factory(edit=lambda cfg: cfg["upstream"].update(timeout_ms=3000))
	upstream.set_rule("slow.test", Delay(0.2, Answer({"A": ["192.0.2.30"]})))
	socks, ids = [], []
	try:
		for i in range(3):
			s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
			s.bind((NOGROUP_CLIENT, 0))
			q = make_query("slow.test", "A", id=0x1000 + i)
			s.sendto(q.to_wire(), ("127.0.0.1", veto.port))
			socks.append(s)
			ids.append(q.id)
		for s, qid in zip(socks, ids):
			s.settimeout(5)
			r = dns.message.from_wire(s.recv(65535))
			assert r.id == qid and answer_values(r, "A") == ["192.0.2.30"]
	finally:
		for s in socks:
			s.close()
	assert len(upstream.queries(name="slow.test")) == 1, "identical in-flight queries must be merged"


def test_reply_for_each_of_many_queries(veto, upstream):
	"""A burst of distinct queries on one socket: every one answered with the right ID."""
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((NOGROUP_CLIENT, 0))
	try:
		sent = {}
		for i in range(50):
			q = make_query(f"burst{i}.test", "A", id=i + 1)
			sent[q.id] = f"burst{i}.test"
			s.sendto(q.to_wire(), ("127.0.0.1", veto.port))
		got = {}
		s.settimeout(5)
		while len(got) < len(sent):
			r = dns.message.from_wire(s.recv(65535))
			got[r.id] = r.question[0].name.to_text().rstrip(".")
		assert got == sent
	finally:
		s.close()
