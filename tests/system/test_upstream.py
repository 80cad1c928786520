"""Upstream behaviour: failover, SERVFAIL when everything fails, spoofed replies, random IDs and
source ports, IPv6 upstreams."""

import socket
import time

import dns.rcode
import pytest

from conftest import HAVE_IPV6, answer_values, make_query
from fakeupstream import SPOOF_ADDRESS, Answer, Spoof, Timeout


def closed_port_address():
	"""An address where nothing listens (UDP gets ICMP port unreachable)."""
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	s.close()
	return f"127.0.0.1:{port}"


@pytest.mark.parametrize("dead_kind", ["blackhole", "closed"])
def test_failover_to_second_upstream(veto_factory, make_upstream, dead_kind):
	live = make_upstream()
	if dead_kind == "blackhole":
		dead = make_upstream(default=Timeout())
		servers = [dead, live]
	else:
		dead = None
		servers = [closed_port_address(), live]
	v = veto_factory(upstreams=servers)
	names = 6
	for i in range(names):
		t0 = time.monotonic()
		r = v.query(f"fo{i}.test", "A", timeout=6)
		assert r.rcode() == dns.rcode.NOERROR and answer_values(r, "A") == ["192.0.2.1"]
		assert time.monotonic() - t0 < 5
		assert len(live.queries(name=f"fo{i}.test")) == 1
	if dead is not None:
		assert dead.queries(), "the first server was never tried: no failover happened"
		assert len(dead.queries()) < names, "a server that keeps failing must be skipped for a while"
	recs = v.wait_log(lambda x: x["qname"].startswith("fo"), count=names)
	assert [x["upstream"] for x in recs] == [live.address] * names
	assert [x["action"] for x in recs] == ["forward"] * names


def test_all_upstreams_dead_servfail_within_bound(veto_factory, make_upstream):
	dead = make_upstream(default=Timeout())
	v = veto_factory(upstreams=[dead, closed_port_address()])
	for proto_tcp in (False, True):
		name = f"dead-{int(proto_tcp)}.test"
		t0 = time.monotonic()
		r = v.query(name, "A", tcp=proto_tcp, timeout=8)
		elapsed = time.monotonic() - t0
		assert r.rcode() == dns.rcode.SERVFAIL
		assert elapsed < 5, f"SERVFAIL took {elapsed:.1f} s"
		assert r.answer == []
	recs = v.wait_log(lambda x: x["qname"].startswith("dead-"), count=2)
	assert [x["action"] for x in recs] == ["servfail", "servfail"]
	assert [x["rcode"] for x in recs] == ["SERVFAIL", "SERVFAIL"]
	assert [x["proto"] for x in recs] == ["udp", "tcp"]
	assert all(isinstance(x["latency_us"], int) and x["latency_us"] > 0 for x in recs)
	assert v.running()


def test_servfail_not_cached_for_long(veto_factory, make_upstream):
	"""After all upstreams failed, a later query (after a few seconds) is tried upstream again."""
	dead = make_upstream(default=Timeout())
	v = veto_factory(upstreams=[dead])
	assert v.query("flaky.test", "A", timeout=8).rcode() == dns.rcode.SERVFAIL
	n = len(dead.queries(name="flaky.test"))
	assert n >= 1
	dead.default = Answer()
	deadline = time.monotonic() + 40
	while True:
		r = v.query("flaky.test", "A", timeout=8)
		if r.rcode() == dns.rcode.NOERROR:
			break
		assert time.monotonic() < deadline, "SERVFAIL cached or upstream never retried"
		time.sleep(0.5)
	assert answer_values(r, "A") == ["192.0.2.1"]


@pytest.mark.parametrize("kinds", [("id",), ("question",), ("port",), ("noqr",), ("id", "question", "port", "noqr")])
def test_spoofed_upstream_replies_ignored(veto, upstream, kinds):
	name = "spoof-" + "-".join(kinds) + ".test"
	upstream.set_rule(name, Spoof(Answer({"A": ["192.0.2.55"]}), kinds=kinds))
	r = veto.query(name, "A", timeout=5)
	assert answer_values(r, "A") == ["192.0.2.55"], f"a forged reply got through: {r}"
	assert SPOOF_ADDRESS not in answer_values(r, "A")
	# and the forged reply was not cached either
	r = veto.query(name, "A")
	assert answer_values(r, "A") == ["192.0.2.55"]
	assert len(upstream.queries(name=name)) == 1


def test_spoofed_only_then_timeout_is_servfail(veto, upstream):
	"""If only forged replies arrive, the attempt times out: SERVFAIL, never the forged answer."""
	upstream.set_rule("only-forged.test", Spoof(Timeout(), kinds=("id", "question", "port")))
	r = veto.query("only-forged.test", "A", timeout=8)
	assert r.rcode() == dns.rcode.SERVFAIL
	assert answer_values(r, "A") == []


def test_random_ids_and_source_ports(veto, upstream):
	names = [f"rnd{i}.test" for i in range(6)]
	for n in names:
		veto.query(n, "A", id=0x1234)
	got = [upstream.queries(name=n)[0] for n in names]
	ids = [g.id for g in got]
	ports = [g.sport for g in got]
	assert sum(1 for i in ids if i == 0x1234) <= 1, f"client ID reused upstream: {ids}"
	assert len(set(ids)) >= 5, f"upstream IDs not random: {ids}"
	# sockets come from a pool picked at random per query (test_upstream_pool.py): a port
	# repeats when two queries pick the same socket, not every time
	assert len(set(ports)) >= 2, f"upstream source ports not random: {ports}"
	assert veto.port not in ports, "queries must not be sent from the listening socket"


@pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 loopback on this machine")
def test_ipv6_upstream(veto_factory, make_upstream):
	up6 = make_upstream(host="::1")
	v = veto_factory(upstreams=[up6])
	r = v.query("six.test", "AAAA")
	assert answer_values(r, "AAAA") == ["2001:db8::1"]
	assert len(up6.queries(name="six.test")) == 1
	rec = v.wait_log(lambda x: x["qname"] == "six.test")[0]
	assert rec["upstream"] == f"[::1]:{up6.port}"


def test_upstream_gets_canonical_question(veto, upstream):
	q = make_query("UPPER.Case.Test", "MX")
	veto.exchange(q.to_wire())
	got = upstream.queries(name="upper.case.test")
	assert len(got) == 1 and got[0].qtype == "MX"
