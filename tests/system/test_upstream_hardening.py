"""Upstream and cache hardening: the cache keys on CD, bad upstream answers fail over, late
replies are taken, only the answer chain is relayed, ANY is answered locally (RFC 8482), and
synthesised SERVFAILs carry an Extended DNS Error (RFC 8914)."""

import socket

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from conftest import answer_values, ede_codes
from fakeupstream import (SPOOF_ADDRESS, Answer, CdSensitive, Delay, Garbled, Poison, Refused,
			  ServFail, Timeout)


def closed_port_address():
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind(("127.0.0.1", 0))
	port = s.getsockname()[1]
	s.close()
	return f"127.0.0.1:{port}"


def test_cd_answer_not_served_to_cd0_clients(veto, upstream):
	"""A CD=1 answer (data a validating upstream refuses with CD=0) stays with CD=1 clients."""
	upstream.set_rule("bogus.test", CdSensitive())
	r1 = veto.query("bogus.test", "A", cd=True)
	assert answer_values(r1, "A") == [SPOOF_ADDRESS]
	r2 = veto.query("bogus.test", "A", cd=False)
	assert answer_values(r2, "A") == [], f"a CD=1 answer was served to a CD=0 client: {r2}"
	assert r2.rcode() == dns.rcode.SERVFAIL
	got = upstream.queries(name="bogus.test")
	assert [g.cd for g in got][:2] == [True, False]
	# a CD=1 client is still served the CD=1 answer from the cache
	r3 = veto.query("bogus.test", "A", cd=True)
	assert answer_values(r3, "A") == [SPOOF_ADDRESS]
	assert len(upstream.queries(name="bogus.test", )) == len(got)


def test_cd1_client_may_use_a_cd0_answer(veto, upstream):
	r1 = veto.query("valid.test", "A", cd=False)
	r2 = veto.query("valid.test", "A", cd=True)
	assert answer_values(r1, "A") == answer_values(r2, "A") == ["192.0.2.1"]
	assert len(upstream.queries(name="valid.test")) == 1


BAD_RULES = {"servfail": ServFail, "refused": Refused, "garbled": Garbled}


@pytest.mark.parametrize("kind", sorted(BAD_RULES))
def test_bad_answer_fails_over(veto_factory, make_upstream, kind):
	bad = make_upstream(default=BAD_RULES[kind]())
	good = make_upstream(default=Answer({"A": ["192.0.2.60"]}))
	v = veto_factory(upstreams=[bad, good])
	names = [f"bad-{kind}-{i}.test" for i in range(10)]
	for n in names:
		r = v.query(n, "A", timeout=6)
		assert r.rcode() == dns.rcode.NOERROR and answer_values(r, "A") == ["192.0.2.60"], \
			f"{n}: {r}"
		assert len(good.queries(name=n)) == 1
	assert bad.queries(), "the first server was never asked"
	assert len(bad.queries()) < len(names), "a server answering badly must count as failing"
	recs = v.wait_log(lambda x: x["qname"].startswith(f"bad-{kind}-"), count=len(names))
	assert [x["upstream"] for x in recs] == [good.address] * len(names)


def test_every_server_answers_badly_servfail_with_ede(veto_factory, make_upstream):
	a = make_upstream(default=ServFail())
	b = make_upstream(default=Refused())
	v = veto_factory(upstreams=[a, b])
	r = v.query("allbad.test", "A", timeout=6)
	assert r.rcode() == dns.rcode.SERVFAIL and r.answer == []
	assert ede_codes(r) == [22]
	# each server was asked once: a bad answer is not asked for again by the same query
	assert len(a.queries(name="allbad.test")) == 1
	assert len(b.queries(name="allbad.test")) == 1


def test_late_reply_is_used(veto_factory, upstream):
	"""An upstream that always answers after 1.5 timeouts: the reply reaches the first attempt's
	socket while the second attempt runs, well inside the request's 3-timeout budget (3 s of
	margin, so that a loaded machine's scheduling delays do not decide the outcome)."""
	upstream.default = Delay(3.0, Answer({"A": ["192.0.2.61"]}))
	v = veto_factory(edit=lambda cfg: cfg["upstream"].update(timeout_ms=2000))
	r = v.query("slow.test", "A", timeout=12)
	assert r.rcode() == dns.rcode.NOERROR, f"late reply not used: {r}"
	assert answer_values(r, "A") == ["192.0.2.61"]
	assert len(upstream.queries(name="slow.test")) >= 2, "the second attempt was not sent"


def test_out_of_chain_records_dropped(veto, upstream):
	upstream.set_rule("poison.test", Poison(victim="victim.test", address="192.0.2.62"))
	for attempt in ("fresh", "cached"):
		r = veto.query("poison.test", "A")
		assert [rr.name.to_text() for rr in r.answer] == ["poison.test."], f"{attempt}: {r}"
		assert answer_values(r, "A") == ["192.0.2.62"]
		assert r.authority == [] and r.additional == [], f"{attempt}: {r}"
	assert len(upstream.queries(name="poison.test")) == 1
	# the victim's name was not cached from the poison
	r = veto.query("victim.test", "A")
	assert answer_values(r, "A") == ["192.0.2.1"]
	assert len(upstream.queries(name="victim.test")) == 1


@pytest.mark.parametrize("tcp", [False, True])
def test_any_answered_locally(veto, upstream, tcp):
	q_name = f"any-{int(tcp)}.test"
	r = veto.query(q_name, "ANY", tcp=tcp, payload=4096)
	assert r.rcode() == dns.rcode.NOERROR
	assert len(r.answer) == 1
	rrset = r.answer[0]
	assert rrset.rdtype == dns.rdatatype.HINFO and rrset.ttl > 0
	assert [(rd.cpu, rd.os) for rd in rrset] == [(b"RFC8482", b"")]
	assert upstream.queries(name=q_name) == [], "ANY must not be forwarded"


def test_blocked_name_any_still_blocked(veto, upstream):
	r = veto.query("ads.test", "ANY", src="127.0.0.3")
	assert r.rcode() == dns.rcode.NXDOMAIN
	assert upstream.queries(name="ads.test") == []


def test_servfail_ede_timeout_and_network(veto_factory, make_upstream):
	dead = make_upstream(default=Timeout())
	v_dead = veto_factory(upstreams=[dead])
	r = v_dead.query("ede-dead.test", "A", timeout=8)
	assert r.rcode() == dns.rcode.SERVFAIL and ede_codes(r) == [22]
	v_closed = veto_factory(upstreams=[closed_port_address()])
	r = v_closed.query("ede-closed.test", "A", timeout=8)
	assert r.rcode() == dns.rcode.SERVFAIL and ede_codes(r) == [23]
	# no EDNS from the client: no OPT, no EDE
	r = v_closed.query("ede-noedns.test", "A", edns=False, timeout=8)
	assert r.rcode() == dns.rcode.SERVFAIL and r.edns < 0
