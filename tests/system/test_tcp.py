"""TCP transport (RFC 7766): framing, pipelining, out-of-order answers, split writes, slow and
vanishing clients; the server.tcp_* limits (idle timeout, connection cap, pipeline, reload)."""

import signal
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


# --- configurable limits: server.tcp_idle_timeout_ms, server.tcp_connections, tcp_pipeline ---

def server_keys(**keys):
	"""An edit callback for veto_factory: sets keys of the server section."""
	return lambda cfg: cfg["server"].update(keys)


def closed_by_server(sock, timeout=5.0):
	"""True when the server closes the connection (EOF or reset) within timeout seconds, False
	when it is still open then. The server must send nothing before closing."""
	sock.settimeout(timeout)
	try:
		data = sock.recv(512)
	except socket.timeout:
		return False
	except ConnectionResetError:
		return True
	assert data == b"", f"the server sent {data!r} instead of closing"
	return True


def ask_on(sock, name, id):
	"""One query on an open connection; the parsed reply (asserts that one came)."""
	sock.sendall(frame(make_query(name, "A", id=id).to_wire()))
	wire = tcp_read_message(sock, 5)
	assert wire is not None, f"no reply to {name} (connection closed or timed out)"
	r = dns.message.from_wire(wire)
	assert r.id == id and answer_values(r, "A") == ["192.0.2.1"], r
	return r


def test_idle_timeout_closes_silent_connections(veto_factory, upstream):
	"""tcp_idle_timeout_ms: 300: a connection that sends nothing, and one that stops in the
	middle of a query, are closed by the server (bounded by a generous 5 s, not a timing test)."""
	veto = veto_factory(edit=server_keys(tcp_idle_timeout_ms=300))
	silent = tcp_connect("127.0.0.1", veto.port)
	partial = tcp_connect("127.0.0.1", veto.port)
	try:
		partial.sendall(frame(make_query("partial.test", "A").to_wire())[:10])
		assert closed_by_server(silent), "a silent connection stayed open past the idle timeout"
		assert closed_by_server(partial), "a half-sent query kept the connection open"
	finally:
		silent.close()
		partial.close()
	assert upstream.queries(name="partial.test") == []
	veto.assert_alive()


def test_idle_timeout_spares_active_connection(veto_factory, upstream):
	"""Queries spaced well under the idle timeout keep one connection open for longer than the
	timeout; once the client stops, the same connection is closed."""
	veto = veto_factory(edit=server_keys(tcp_idle_timeout_ms=300))
	count = 8
	s = tcp_connect("127.0.0.1", veto.port)
	try:
		for i in range(count):
			if i > 0:
				time.sleep(0.1)	# a third of the timeout: 8 queries span ~2.5 timeouts
			ask_on(s, f"active{i}.test", 400 + i)
		assert closed_by_server(s), "the connection stayed open once idle"
	finally:
		s.close()
	for i in range(count):
		assert len(upstream.queries(name=f"active{i}.test", transport="udp")) == 1


@pytest.mark.parametrize("dst", ["127.0.0.1"] + (["::1"] if HAVE_IPV6 else []))
def test_connection_cap(veto_factory, upstream, dst):
	"""tcp_connections: 3 across all listeners. With 3 idle connections open, a 4th (on either
	listener) is served and the connection idle longest is closed for it; UDP and the other
	connections keep working."""
	veto = veto_factory(edit=server_keys(tcp_connections=3, tcp_idle_timeout_ms=60000))
	held = []
	src = "::1" if dst == "::1" else NOGROUP_CLIENT
	try:
		for i in range(3):
			held.append(tcp_connect("127.0.0.1", veto.port))
			ask_on(held[-1], f"held{i}.test", 500 + i)	# answered: the server counts it
		ask_on(held[0], "held0-again.test", 505)	# held[1] is now the one idle longest
		extra = tcp_connect(dst, veto.port, src=src)
		try:
			ask_on(extra, "extra.test", 510)
		finally:
			extra.close()
		assert closed_by_server(held[1]), "the connection idle longest stayed open over the cap"

		r = veto.query("udp-at-cap.test", "A", src=NOGROUP_CLIENT)
		assert answer_values(r, "A") == ["192.0.2.1"]
		for i in (0, 2):
			ask_on(held[i], f"held-again{i}.test", 520 + i)
	finally:
		for s in held:
			s.close()
	veto.assert_alive()


def test_pipeline_of_one_answers_in_order(veto_factory, upstream):
	"""tcp_pipeline: 1: pipelined queries are read one at a time, so a slow first query holds
	back the others (compare test_pipelining_in_one_write_out_of_order) and all are answered."""
	veto = veto_factory(edit=server_keys(tcp_pipeline=1))
	upstream.set_rule("slowone.test", Delay(0.2, Answer({"A": ["192.0.2.40"]})))
	names = ["slowone.test", "one1.test", "one2.test", "one3.test"]
	queries = [make_query(n, "A", id=600 + i) for i, n in enumerate(names)]
	s = tcp_connect("127.0.0.1", veto.port)
	try:
		s.sendall(b"".join(frame(q.to_wire()) for q in queries))
		order = []
		for _ in queries:
			wire = tcp_read_message(s, 5)
			assert wire is not None, f"connection closed after {order}"
			order.append(dns.message.from_wire(wire).id)
	finally:
		s.close()
	assert order == [600, 601, 602, 603]
	assert [q.qname for q in upstream.queries()] == names


def test_reload_applies_tcp_limits_to_new_connections(veto_factory):
	"""SIGHUP with a new tcp_idle_timeout_ms: connections accepted after the reload get it, one
	opened before keeps the old one (README: applies to new connections)."""
	veto = veto_factory(edit=server_keys(tcp_idle_timeout_ms=60000))
	old = tcp_connect("127.0.0.1", veto.port)
	try:
		veto.rewrite_config(lambda c: c["server"].update(tcp_idle_timeout_ms=300))
		veto.send_signal(signal.SIGHUP)
		assert "reload: ok" in veto.wait_stderr("reload: ok", 10), veto.stderr()
		new = tcp_connect("127.0.0.1", veto.port)
		try:
			assert closed_by_server(new), "the reloaded idle timeout did not apply"
		finally:
			new.close()
		ask_on(old, "kept-open.test", 700)
	finally:
		old.close()
