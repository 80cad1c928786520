"""Fairness: no single client takes the resolver down.

Each test lets one source misbehave (idle TCP connections, reconnects, a flood of unique names
against a slow upstream with the usual descriptor limit, a burst beyond server.rate_limit, a
flood of packets earning FORMERR) and asserts that another source is still answered, and that
the daemon log counts what was refused (one line per period and at stop, never per query).
Every load is bounded in count and time; assertions are on answers and counters, not on speed.
"""

import re
import resource
import select
import socket
import struct
import threading
import time

import dns.flags
import dns.message
import dns.rcode
import pytest

from conftest import (GROUP_CLIENT, NOGROUP_CLIENT, answer_values, frame, make_query, tcp_connect,
		      tcp_read_message)
from fakeupstream import Answer, Delay

ATTACKER = GROUP_CLIENT["sink"]		# 127.0.0.2: names outside its lists are forwarded
OTHERS = [NOGROUP_CLIENT, GROUP_CLIENT["nx"], GROUP_CLIENT["nodata"]]


def server_keys(**keys):
	return lambda cfg: cfg["server"].update(keys)


def tcp_ask(port, name, src, id, timeout=3.0):
	"""One query on a new connection from src: the parsed reply, or None (closed / no reply)."""
	try:
		s = tcp_connect("127.0.0.1", port, src=src, timeout=timeout)
	except OSError:
		return None
	try:
		s.sendall(frame(make_query(name, "A", id=id).to_wire()))
		wire = tcp_read_message(s, timeout)
	except OSError:
		return None
	finally:
		s.close()
	return dns.message.from_wire(wire) if wire is not None else None


def open_idle(port, src, count):
	"""count connections from src that send nothing; those refused at connect are skipped."""
	socks = []
	for _ in range(count):
		try:
			socks.append(tcp_connect("127.0.0.1", port, src=src, timeout=2.0))
		except OSError:
			pass
	return socks


def still_open(socks, settle=1.0):
	"""The sockets the server has not closed after settle seconds (bounded)."""
	deadline = time.monotonic() + settle
	closed = set()
	while time.monotonic() < deadline:
		live = [s for s in socks if s not in closed]
		r, _, _ = select.select(live, [], [], 0.05) if live else ([], [], [])
		for s in r:
			try:
				if s.recv(1, socket.MSG_DONTWAIT) == b"":
					closed.add(s)
			except (BlockingIOError, InterruptedError):
				pass
			except OSError:
				closed.add(s)
	return [s for s in socks if s not in closed]


def stop_and_log(veto):
	assert veto.stop() == 0, veto.stderr()
	return veto.stderr()


def assert_others_served_over_tcp(veto, count, tag):
	for i in range(count):
		src = OTHERS[i % len(OTHERS)]
		r = tcp_ask(veto.port, f"{tag}{i}.test", src, 1000 + i)
		assert r is not None, f"tcp query {i} from {src} got no answer"
		assert r.rcode() == dns.rcode.NOERROR and answer_values(r, "A") == ["192.0.2.1"], r


# --- TCP ------------------------------------------------------------------------------------

def test_slowloris_idle_connections_from_one_source(veto_factory, upstream):
	"""300 idle connections from one address: it keeps at most tcp_connections_per_client (64,
	the default) of them, and other sources are answered over TCP."""
	veto = veto_factory(edit=server_keys(tcp_idle_timeout_ms=60000))
	held = open_idle(veto.port, ATTACKER, 300)
	try:
		live = still_open(held)
		assert len(live) <= 64, f"{len(live)} idle connections kept from one address"
		assert_others_served_over_tcp(veto, 25, "slowloris")
	finally:
		for s in held:
			s.close()
	err = stop_and_log(veto)
	assert "tcp connections closed at server.tcp_connections_per_client" in err, err[-3000:]


def test_reconnecting_slowloris(veto_factory, upstream):
	"""The attacker reconnects whenever a connection is closed (bounded: 6 s, 3000 connects);
	other sources are answered over TCP meanwhile."""
	veto = veto_factory(edit=server_keys(tcp_idle_timeout_ms=60000))
	stop = threading.Event()
	held = []
	connects = [0]

	def attack():
		end = time.monotonic() + 6.0
		while not stop.is_set() and time.monotonic() < end and connects[0] < 3000:
			while len(held) < 300 and connects[0] < 3000:
				try:
					held.append(tcp_connect("127.0.0.1", veto.port, src=ATTACKER, timeout=1.0))
				except OSError:
					pass
				connects[0] += 1
			r, _, _ = select.select(held, [], [], 0.02)
			for s in r:
				try:
					gone = s.recv(1, socket.MSG_DONTWAIT) == b""
				except (BlockingIOError, InterruptedError):
					gone = False
				except OSError:
					gone = True
				if gone:
					held.remove(s)
					s.close()

	t = threading.Thread(target=attack)
	t.start()
	try:
		deadline = time.monotonic() + 3.0	# until the attacker is reconnecting (bounded)
		while connects[0] <= 400 and time.monotonic() < deadline:
			time.sleep(0.02)
		answered = 0
		for i in range(31):
			src = OTHERS[i % len(OTHERS)]
			r = tcp_ask(veto.port, f"reconnect{i}.test", src, 2000 + i)
			if r is not None and answer_values(r, "A") == ["192.0.2.1"]:
				answered += 1
	finally:
		stop.set()
		t.join(10)
		for s in held:
			s.close()
	assert connects[0] > 300, "the attacker did not have to reconnect"
	assert answered == 31, f"only {answered} of 31 tcp queries answered"


def test_full_table_closes_the_connection_idle_longest(veto_factory, upstream):
	"""tcp_connections: 32, filled by idle connections from 8 addresses (4 each, their cap): a
	newcomer is served, and the connection idle longest (the first) is closed for it."""
	veto = veto_factory(edit=server_keys(tcp_connections=32, tcp_connections_per_client=4,
					     tcp_idle_timeout_ms=60000))
	held = []
	try:
		for n in range(10, 18):
			held += open_idle(veto.port, f"127.0.0.{n}", 4)
		assert len(held) == 32
		assert len(still_open(held, settle=0.3)) == 32, "a connection within the caps was closed"
		r = tcp_ask(veto.port, "newcomer.test", NOGROUP_CLIENT, 3000)
		assert r is not None and answer_values(r, "A") == ["192.0.2.1"], \
			"a newcomer was refused although idle connections could be closed"
		live = still_open(held, settle=1.0)
		assert held[0] not in live, "the connection idle longest stayed open"
		assert len(live) == 31, f"{32 - len(live)} connections closed for one newcomer"
	finally:
		for s in held:
			s.close()
	err = stop_and_log(veto)
	assert "idle tcp connections closed for new ones 1" in err, err[-3000:]


# --- descriptors and query slots ------------------------------------------------------------

def low_nofile():
	resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


def test_unique_name_flood_at_the_default_file_limit(veto_factory, upstream):
	"""With 1024 descriptors (systemd's default soft limit, here also the hard one) one source
	floods unique names that the upstream answers after 0.5 s; a second source's cache misses
	(UDP) and TCP queries are still answered, and the per-client cap is reported."""
	upstream.default = Delay(0.5, Answer())
	for i in range(8):
		upstream.set_rule(f"second{i}.test", Answer())
		upstream.set_rule(f"secondtcp{i}.test", Answer())
	veto = veto_factory(edit=lambda c: c["upstream"].update(timeout_ms=2000),
			    preexec_fn=low_nofile)
	stop = threading.Event()
	sent = [0]
	# made beforehand so that the flood is only sendto() calls: f00000.flood.test ...
	wires = [make_query(f"f{i:05d}.flood.test", "A", id=i & 0xffff).to_wire() for i in range(30000)]

	def flood():
		s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
		s.bind((ATTACKER, 0))
		s.setblocking(False)
		end = time.monotonic() + 3.0
		try:
			while not stop.is_set() and time.monotonic() < end and sent[0] < len(wires):
				try:
					s.sendto(wires[sent[0]], ("127.0.0.1", veto.port))
				except BlockingIOError:
					time.sleep(0.001)
					continue
				sent[0] += 1
				if sent[0] % 100 == 0:
					time.sleep(0.005)	# at most 20,000 a second
		finally:
			s.close()

	t = threading.Thread(target=flood)
	t.start()
	results = []
	try:
		time.sleep(0.8)
		for i in range(8):
			r = veto.query(f"second{i}.test", "A", src=NOGROUP_CLIENT, timeout=3.0)
			results.append(("udp", i, r.rcode(), answer_values(r, "A")))
			r = tcp_ask(veto.port, f"secondtcp{i}.test", NOGROUP_CLIENT, 4000 + i)
			results.append(("tcp", i, r.rcode() if r else None, answer_values(r, "A") if r else None))
	finally:
		stop.set()
		t.join(10)
	bad = [x for x in results if x[2] != dns.rcode.NOERROR or x[3] != ["192.0.2.1"]]
	assert not bad, f"second source not served during the flood ({sent[0]} sent): {bad}"
	assert sent[0] > 2000, f"only {sent[0]} flood queries sent"
	err = stop_and_log(veto)
	assert "file descriptors: 1024:" in err, err[-3000:]
	assert "SERVFAIL at server.queries_per_client" in err, err[-3000:]
	assert "cannot start query" not in err


# --- server.rate_limit ----------------------------------------------------------------------

def burst_from(port, src, names, settle=1.5):
	"""Sends every query at once from one socket; returns the replies that came within settle
	seconds (after the last one sent), by ID."""
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((src, 0))
	out = {}
	try:
		for i, n in enumerate(names):
			s.sendto(make_query(n, "A", id=5000 + i).to_wire(), ("127.0.0.1", port))
		deadline = time.monotonic() + settle
		while len(out) < len(names):
			left = deadline - time.monotonic()
			if left <= 0:
				break
			s.settimeout(left)
			try:
				data = s.recv(65535)
			except socket.timeout:
				break
			out[struct.unpack("!H", data[:2])[0]] = dns.message.from_wire(data)
	finally:
		s.close()
	return out


@pytest.mark.parametrize("action", ["truncate", "refused", "drop"])
def test_rate_limit(veto_factory, upstream, action):
	"""queries_per_second 1, burst 10: ten queries pass; of 40 more sent at once at most a few
	refills pass, the others get the action; another source is unaffected; the daemon log names
	the limited client."""
	client = GROUP_CLIENT["nodata"]
	veto = veto_factory(edit=server_keys(rate_limit={"queries_per_second": 1, "burst": 10,
							  "action": action}))
	for i in range(10):
		r = veto.query(f"rl{i}.test", "A", src=client)
		assert answer_values(r, "A") == ["192.0.2.1"], f"query {i} of the burst: {r}"
	got = burst_from(veto.port, client, [f"over{i}.test" for i in range(40)])
	answered = [r for r in got.values() if answer_values(r, "A")]
	limited = 40 - len(answered)
	assert limited >= 30, f"only {limited} of 40 queries beyond the burst were limited"
	if action == "truncate":
		tc = [r for r in got.values() if r.flags & dns.flags.TC]
		assert len(tc) == limited and all(not r.answer for r in tc)
		r = tcp_ask(veto.port, "over0.test", client, 6000)	# the retry over TCP is answered
		assert r is not None and answer_values(r, "A") == ["192.0.2.1"]
	elif action == "refused":
		refused = [r for r in got.values() if r.rcode() == dns.rcode.REFUSED]
		assert len(refused) == limited
	else:
		assert len(got) == len(answered), "a limited query got a reply with action drop"
	r = veto.query("other-source.test", "A", src=NOGROUP_CLIENT)
	assert answer_values(r, "A") == ["192.0.2.1"]
	err = stop_and_log(veto)
	assert "queries rate limited (server.rate_limit)" in err, err[-3000:]
	assert f"rate limit: most limited clients: {client} (" in err, err[-3000:]


def test_rate_limit_per_prefix(veto_factory, upstream):
	"""prefix_queries_per_second: the /24 shares one bucket: two addresses of it together
	exceed it, the per-address buckets do not."""
	veto = veto_factory(edit=server_keys(rate_limit={"prefix_queries_per_second": 1,
							  "prefix_burst": 20, "action": "refused"}))
	a = burst_from(veto.port, GROUP_CLIENT["nx"], [f"pa{i}.test" for i in range(15)])
	b = burst_from(veto.port, GROUP_CLIENT["nodata"], [f"pb{i}.test" for i in range(15)])
	refused = [r for r in list(a.values()) + list(b.values()) if r.rcode() == dns.rcode.REFUSED]
	assert len(a) == 15 and len(b) == 15
	# the readiness probe (127.0.0.1) took a token or two of the same bucket
	assert 5 <= len(refused) <= 12, f"{len(refused)} of 30 refused (prefix burst 20)"
	err = stop_and_log(veto)
	assert "rate limit: most limited prefixes: 127.0.0.0/24 (" in err, err[-3000:]


# --- FORMERR floods -------------------------------------------------------------------------

FORMERR_PACKET = struct.pack("!HHHHHH", 0x4242, 0x0100, 0, 0, 0, 0)	# QDCOUNT 0


def test_formerr_flood_is_limited_per_source(veto, upstream):
	"""500 packets earning FORMERR from one source: at most the burst and a few refills of
	error_replies_per_second (10, burst 20) are answered, the rest is counted in the log;
	another source gets its FORMERR and its answers."""
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((ATTACKER, 0))
	replies = 0

	def drain(wait):
		nonlocal replies
		deadline = time.monotonic() + wait
		while True:
			s.settimeout(max(0.001, deadline - time.monotonic()))
			try:
				s.recv(512)
				replies += 1
			except socket.timeout:
				return
	try:
		# in rounds of 50, reading the replies in between (so that none is lost to the
		# socket's receive buffer)
		for _ in range(10):
			for _ in range(50):
				s.sendto(FORMERR_PACKET, ("127.0.0.1", veto.port))
			drain(0.05)
		drain(1.0)
	finally:
		s.close()
	assert 20 <= replies <= 100, f"{replies} FORMERR replies to 500 packets"
	wire = veto.exchange(FORMERR_PACKET, src=NOGROUP_CLIENT)
	assert wire is not None and dns.message.from_wire(wire).rcode() == dns.rcode.FORMERR
	r = veto.query("after-formerr.test", "A", src=NOGROUP_CLIENT)
	assert answer_values(r, "A") == ["192.0.2.1"]
	err = stop_and_log(veto)
	assert "error replies not sent (server.error_replies_per_second)" in err, err[-3000:]
	assert f"error replies: most limited clients: {ATTACKER} (" in err, err[-3000:]


def test_prefix_cap_takes_back_the_client_count(veto_factory, upstream):
	"""queries_per_client 2, queries_per_prefix 1: while one query waits upstream, two more from
	the same address are refused at the prefix cap, both of them: the first refusal takes back
	the address's count (otherwise the second is refused at the client cap, and every such
	refusal would leave the address one query fewer until a restart). Once the first is
	answered the address is served again."""
	upstream.default = Delay(1.0, Answer())
	veto = veto_factory(edit=lambda c: (c["server"].update(queries_per_client=2, queries_per_prefix=1),
					    c["upstream"].update(timeout_ms=3000)))
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((NOGROUP_CLIENT, 0))
	try:
		s.sendto(make_query("waiting.test", "A", id=7000).to_wire(), ("127.0.0.1", veto.port))
		time.sleep(0.2)
		refused = []
		for i in (1, 2):
			r = veto.query(f"over{i}.test", "A", src=NOGROUP_CLIENT, timeout=3.0)
			refused.append(r.rcode())
		s.settimeout(5.0)
		first = dns.message.from_wire(s.recv(65535))
	finally:
		s.close()
	assert refused == [dns.rcode.SERVFAIL, dns.rcode.SERVFAIL]
	assert answer_values(first, "A") == ["192.0.2.1"]
	upstream.default = Answer()
	for i in range(3):
		r = veto.query(f"after{i}.test", "A", src=NOGROUP_CLIENT, timeout=3.0)
		assert answer_values(r, "A") == ["192.0.2.1"], f"query {i} after the refusals: {r}"
	err = stop_and_log(veto)
	m = re.search(r"since start: SERVFAIL at server.queries_per_prefix (\d+)", err)
	assert m and int(m.group(1)) >= 2, err[-3000:]
	assert "SERVFAIL at server.queries_per_client" not in err, err[-3000:]
