"""TCP transport (RFC 7766): framing, pipelining, out-of-order answers, split writes, slow and
vanishing clients."""

import socket
import time

import dns.message
import dns.rcode
import pytest

from conftest import (BLOCK_IPV4, GROUP_CLIENT, HAVE_IPV6, NOGROUP_CLIENT, answer_values, frame,
		      make_query, tcp_connect, tcp_read_message)
from fakeupstream import Answer, Delay


def test_tcp_query(veto, upstream):
	r = veto.query("tcp.test", "A", tcp=True)
	assert r.rcode() == dns.rcode.NOERROR and answer_values(r, "A") == ["192.0.2.1"]
	rec = veto.wait_log(lambda x: x["qname"] == "tcp.test")[0]
	assert rec["proto"] == "tcp" and rec["client"] == NOGROUP_CLIENT


@pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 loopback on this machine")
def test_tcp_over_ipv6(veto):
	r = veto.query("tcp6.test", "A", tcp=True, src="::1", dst="::1")
	assert r.rcode() == dns.rcode.NOERROR and answer_values(r, "A") == ["192.0.2.1"]


def read_replies(sock, count, timeout=5.0):
	out = {}
	deadline = time.monotonic() + timeout
	while len(out) < count:
		left = deadline - time.monotonic()
		assert left > 0, f"only {len(out)} of {count} replies arrived"
		wire = tcp_read_message(sock, left)
		assert wire is not None, f"connection closed after {len(out)} of {count} replies"
		r = dns.message.from_wire(wire)
		assert r.id not in out, f"two replies with ID {r.id}"
		out[r.id] = r
	return out


def test_pipelining_in_one_write_out_of_order(veto, upstream):
	"""Several queries in one write; a slow one first must not hold back the others."""
	upstream.set_rule("slowpipe.test", Delay(0.2, Answer({"A": ["192.0.2.40"]})))
	queries = [
		make_query("slowpipe.test", "A", id=101),
		make_query("pipe1.test", "A", id=102),
		make_query("pipe2.test", "AAAA", id=103),
		make_query("x.ads.test", "A", id=104),	# blocked for 'sink': answered locally
		make_query("pipe3.test", "MX", id=105),
	]
	s = tcp_connect("127.0.0.1", veto.port, src=GROUP_CLIENT["sink"])
	try:
		s.sendall(b"".join(frame(q.to_wire()) for q in queries))
		order = []
		got = {}
		for _ in queries:
			wire = tcp_read_message(s, 5)
			assert wire is not None
			r = dns.message.from_wire(wire)
			order.append(r.id)
			got[r.id] = r
	finally:
		s.close()
	assert sorted(got) == [101, 102, 103, 104, 105]
	assert answer_values(got[101], "A") == ["192.0.2.40"]
	assert answer_values(got[102], "A") == ["192.0.2.1"]
	assert answer_values(got[103], "AAAA") == ["2001:db8::1"]
	assert answer_values(got[104], "A") == [BLOCK_IPV4]
	assert answer_values(got[105], "MX") == ["10 mail.fake.invalid."]
	assert order[-1] == 101, f"the slow answer should come last (answered as they complete): {order}"
	for q in queries:
		assert got[q.id].question[0].name == q.question[0].name


# Ways of cutting a stream of two framed queries into writes
SPLITS = {
	"byte_by_byte": lambda b: [b[i:i + 1] for i in range(len(b))],
	"length_split": lambda b: [b[:1], b[1:]],
	"after_length": lambda b: [b[:2], b[2:]],
	"mid_message": lambda b: [b[:9], b[9:30], b[30:]],
	"second_length_split": lambda b: None,	# filled in by the test: cut inside the second prefix
}


@pytest.mark.parametrize("how", sorted(SPLITS))
def test_framing_split_across_writes(veto, how):
	q1 = make_query("split1.test", "A", id=201)
	q2 = make_query("split2.test", "A", id=202)
	f1, f2 = frame(q1.to_wire()), frame(q2.to_wire())
	stream = f1 + f2
	if how == "second_length_split":
		parts = [stream[:len(f1) + 1], stream[len(f1) + 1:]]
	else:
		parts = SPLITS[how](stream)
	s = tcp_connect("127.0.0.1", veto.port)
	s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
	try:
		for p in parts:
			s.sendall(p)
			if len(parts) < 10:
				time.sleep(0.05)	# make the cuts real separate segments
		got = read_replies(s, 2)
	finally:
		s.close()
	assert sorted(got) == [201, 202]
	assert all(answer_values(r, "A") == ["192.0.2.1"] for r in got.values())


def test_many_pipelined_queries(veto, upstream):
	count = 40
	queries = [make_query(f"many{i}.test", "A", id=1000 + i) for i in range(count)]
	s = tcp_connect("127.0.0.1", veto.port)
	try:
		s.sendall(b"".join(frame(q.to_wire()) for q in queries))
		got = read_replies(s, count, timeout=10)
	finally:
		s.close()
	assert sorted(got) == [1000 + i for i in range(count)]
	for q in queries:
		assert got[q.id].question[0].name == q.question[0].name
		assert answer_values(got[q.id], "A") == ["192.0.2.1"]


def test_sequential_queries_on_one_connection(veto):
	s = tcp_connect("127.0.0.1", veto.port)
	try:
		for i in range(5):
			q = make_query(f"seq{i}.test", "A", id=300 + i)
			s.sendall(frame(q.to_wire()))
			wire = tcp_read_message(s, 3)
			assert wire is not None and dns.message.from_wire(wire).id == 300 + i
	finally:
		s.close()


def test_stalled_client_does_not_block_others(veto):
	"""A connection that sent half a length prefix (and one that sent half a message) must not
	keep the server from answering other clients."""
	stalled = []
	try:
		a = tcp_connect("127.0.0.1", veto.port)
		a.sendall(b"\x00")
		stalled.append(a)
		b = tcp_connect("127.0.0.1", veto.port)
		b.sendall(frame(make_query("half.test", "A").to_wire())[:10])
		stalled.append(b)
		c = tcp_connect("127.0.0.1", veto.port)	# opened and idle
		stalled.append(c)
		for tcp in (True, False):
			r = veto.query("other.test", "A", tcp=tcp)
			assert answer_values(r, "A") == ["192.0.2.1"]
	finally:
		for s in stalled:
			s.close()
	veto.assert_alive()


def test_client_closes_with_queries_in_flight(veto, upstream):
	upstream.set_rule("gone.test", Delay(0.2, Answer()))
	for _ in range(3):
		s = tcp_connect("127.0.0.1", veto.port)
		s.sendall(frame(make_query("gone.test", "A").to_wire()) + frame(make_query("gone2.test", "A").to_wire()))
		s.close()
	time.sleep(0.8)		# let the delayed upstream answers arrive for closed connections
	veto.assert_alive()


def test_client_reset_with_queries_in_flight(veto, upstream):
	upstream.set_rule("reset.test", Delay(0.2, Answer()))
	s = tcp_connect("127.0.0.1", veto.port)
	s.sendall(frame(make_query("reset.test", "A").to_wire()))
	s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
	s.close()		# RST
	time.sleep(0.5)
	veto.assert_alive()


def test_many_connections(veto):
	socks = []
	try:
		for i in range(50):
			socks.append(tcp_connect("127.0.0.1", veto.port))
		for i, s in enumerate(socks):
			s.sendall(frame(make_query("conns.test", "A", id=i + 1).to_wire()))
		for i, s in enumerate(socks):
			wire = tcp_read_message(s, 5)
			assert wire is not None, f"connection {i} got no answer"
			assert dns.message.from_wire(wire).id == i + 1
	finally:
		for s in socks:
			s.close()


def test_tcp_blocked_answer_and_log(veto):
	r = veto.query("t.tracker.test", "AAAA", tcp=True, src=GROUP_CLIENT["sink"])
	assert answer_values(r, "AAAA") == ["fd00::13"]
	rec = veto.wait_log(lambda x: x["qname"] == "t.tracker.test")[0]
	assert rec["proto"] == "tcp" and rec["action"] == "sinkhole"
