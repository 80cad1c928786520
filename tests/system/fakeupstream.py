"""A scriptable DNS server on loopback that stands for veto's upstream.

One FakeUpstream listens on UDP and TCP on the same free port of 127.0.0.1 (or ::1), answers from
a background thread, and records every query it receives (name, type, ID, transport, source port,
flags, EDNS) so that tests can assert what veto sent upstream.

What it answers is decided per query name by a rules table (exact, case-insensitive name):
    fake.set_rule("cloak.test", Cname(["metrics.ads.test"], {"A": ["192.0.2.7"]}))
Names without a rule get the default rule (Answer() unless given).

A rule's respond(query, transport) returns a list of Send(delay_s, wire, via) items; an empty list
means "never answer" (a timeout). Only dnspython and the standard library are used.
"""

import heapq
import os
import random
import itertools
import selectors
import socket
import struct
import threading
import time
from dataclasses import dataclass

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

SPOOF_ADDRESS = "6.6.6.6"	# what every spoofed reply claims, so a test can spot one that got through
DEFAULT_A = "192.0.2.1"
DEFAULT_AAAA = "2001:db8::1"
OUR_PAYLOAD = 1232


@dataclass
class Send:
	delay: float		# seconds after the query arrived
	wire: bytes
	via: str = "normal"	# "normal", "altport": sent from another socket (wrong source port),
				# "altaddr": from another address (127.0.0.2, same port; IPv4 only),
				# "others": to every other port veto has queried from (right source)


@dataclass
class Received:
	qname: str		# as received (case kept), no trailing dot
	qtype: str		# mnemonic ("A", "AAAA", "TYPE65280")
	id: int
	transport: str		# "udp" or "tcp"
	sport: int		# the sender's source port
	flags: int		# header flags word
	has_opt: bool
	do: bool
	payload: int		# advertised EDNS size, 0 without OPT
	when: float		# time.monotonic() at arrival

	@property
	def rd(self):
		return bool(self.flags & dns.flags.RD)

	@property
	def cd(self):
		return bool(self.flags & dns.flags.CD)


def _soa(zone, ttl, minimum):
	return dns.rrset.from_text(zone, ttl, "IN", "SOA",
				   f"ns.fake.invalid. hostmaster.fake.invalid. 1 3600 600 86400 {minimum}")


def _zone_of(name):
	"""The last two labels of a name (the pretend zone apex for negative answers)."""
	labels = name.rstrip(".").split(".")
	return ".".join(labels[-2:]) + "."


def make_reply(query, rcode=dns.rcode.NOERROR):
	"""A reply skeleton for query: same ID and question (as received), QR, RA, RD/CD copied,
	OPT with our payload and the DO bit when the query had OPT."""
	r = dns.message.Message(id=query.id)
	r.flags = dns.flags.QR | dns.flags.RA | (query.flags & (dns.flags.RD | dns.flags.CD))
	r.set_opcode(query.opcode())
	r.question = [dns.rrset.RRset(rr.name, rr.rdclass, rr.rdtype) for rr in query.question]
	if query.edns >= 0:
		r.use_edns(0, query.ednsflags & dns.flags.DO, OUR_PAYLOAD)
	r.set_rcode(rcode)
	return r


def _qname(query):
	return query.question[0].name.to_text().rstrip(".") if query.question else ""


def _qtype(query):
	return dns.rdatatype.to_text(query.question[0].rdtype) if query.question else ""


class Rule:
	def respond(self, query, transport):
		raise NotImplementedError


class Answer(Rule):
	"""Records per type ({"A": ["192.0.2.1"], "MX": ["10 mx.test."]}); a type without records
	gets NODATA with an SOA (TTL soa_ttl, minimum soa_min)."""

	def __init__(self, records=None, ttl=300, soa_ttl=300, soa_min=300):
		if records is None:
			records = {"A": [DEFAULT_A], "AAAA": [DEFAULT_AAAA], "MX": ["10 mail.fake.invalid."],
				   "TXT": ['"fake upstream"']}
		self.records = {k.upper(): v for k, v in records.items()}
		self.ttl = ttl
		self.soa_ttl = soa_ttl
		self.soa_min = soa_min

	def build(self, query):
		r = make_reply(query)
		qname = query.question[0].name
		rdata = self.records.get(_qtype(query), [])
		if rdata:
			r.answer.append(dns.rrset.from_text_list(qname, self.ttl, "IN", _qtype(query), rdata))
		else:
			r.authority.append(_soa(_zone_of(_qname(query)), self.soa_ttl, self.soa_min))
		return r

	def respond(self, query, transport):
		return [Send(0, self.build(query).to_wire(max_size=65535))]


class NoData(Answer):
	def __init__(self, soa_ttl=300, soa_min=300):
		super().__init__(records={}, soa_ttl=soa_ttl, soa_min=soa_min)


class NxDomain(Rule):
	def __init__(self, soa_ttl=300, soa_min=300):
		self.soa_ttl = soa_ttl
		self.soa_min = soa_min

	def respond(self, query, transport):
		r = make_reply(query, dns.rcode.NXDOMAIN)
		r.authority.append(_soa(_zone_of(_qname(query)), self.soa_ttl, self.soa_min))
		return [Send(0, r.to_wire(max_size=65535))]


class RcodeOnly(Rule):
	def __init__(self, rcode):
		self.rcode = rcode

	def respond(self, query, transport):
		return [Send(0, make_reply(query, self.rcode).to_wire(max_size=65535))]


def ServFail():
	return RcodeOnly(dns.rcode.SERVFAIL)


def Refused():
	return RcodeOnly(dns.rcode.REFUSED)


class Garbled(Rule):
	"""A reply with the right ID and question whose answer record is cut short (its RDLENGTH
	runs past the end of the message): passes the header checks, fails to parse."""

	def respond(self, query, transport):
		r = make_reply(query)
		r.use_edns(False)
		r.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A", SPOOF_ADDRESS))
		wire = r.to_wire(max_size=65535)
		return [Send(0, wire[:-2])]	# the A record's RDATA loses its last 2 octets


class Poison(Rule):
	"""The real answer for the question plus records about another name in every section: an
	A for victim in the answer, an NS for it in the authority, that NS's address in the
	additional section (all SPOOF_ADDRESS)."""

	def __init__(self, victim="victim.test", address="192.0.2.80"):
		self.victim = victim.rstrip(".") + "."
		self.address = address

	def respond(self, query, transport):
		r = make_reply(query)
		qname = query.question[0].name
		if _qtype(query) == "A":
			r.answer.append(dns.rrset.from_text(qname, 300, "IN", "A", self.address))
		r.answer.append(dns.rrset.from_text(self.victim, 300, "IN", "A", SPOOF_ADDRESS))
		r.authority.append(dns.rrset.from_text(self.victim, 300, "IN", "NS", "ns.evil.invalid."))
		r.additional.append(dns.rrset.from_text("ns.evil.invalid.", 300, "IN", "A", SPOOF_ADDRESS))
		return [Send(0, r.to_wire(max_size=65535))]


class CdSensitive(Rule):
	"""A validating resolver's view of a bogus name: with CD=1 the data (SPOOF_ADDRESS),
	with CD=0 SERVFAIL."""

	def respond(self, query, transport):
		if query.flags & dns.flags.CD:
			r = make_reply(query)
			r.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A", SPOOF_ADDRESS))
		else:
			r = make_reply(query, dns.rcode.SERVFAIL)
		return [Send(0, r.to_wire(max_size=65535))]


class Cname(Rule):
	"""qname CNAME chain[0], chain[0] CNAME chain[1], ..., then the last name's records."""

	def __init__(self, chain, records=None, ttl=300):
		self.chain = [c.rstrip(".") + "." for c in chain]
		self.records = {k.upper(): v for k, v in (records or {"A": [DEFAULT_A]}).items()}
		self.ttl = ttl

	def respond(self, query, transport):
		r = make_reply(query)
		owner = query.question[0].name
		for target in self.chain:
			r.answer.append(dns.rrset.from_text(owner, self.ttl, "IN", "CNAME", target))
			owner = dns.name.from_text(target)
		rdata = self.records.get(_qtype(query), [])
		if rdata:
			r.answer.append(dns.rrset.from_text_list(owner, self.ttl, "IN", _qtype(query), rdata))
		return [Send(0, r.to_wire(max_size=65535))]


class Big(Rule):
	"""count A records (10.0.x.y). tc_udp: over UDP always answer TC=1 without records (as a
	server would when the answer does not fit), over TCP the full answer."""

	def __init__(self, count, tc_udp=False, ttl=300):
		self.count = count
		self.tc_udp = tc_udp
		self.ttl = ttl

	@staticmethod
	def addresses(count):
		return [f"10.0.{i // 250}.{i % 250 + 1}" for i in range(count)]

	def respond(self, query, transport):
		r = make_reply(query)
		if transport == "udp" and self.tc_udp:
			r.flags |= dns.flags.TC
			return [Send(0, r.to_wire(max_size=65535))]
		if _qtype(query) == "A":
			r.answer.append(dns.rrset.from_text_list(query.question[0].name, self.ttl, "IN", "A",
								 self.addresses(self.count)))
		return [Send(0, r.to_wire(max_size=65535))]


class Timeout(Rule):
	"""Never answers."""

	def respond(self, query, transport):
		return []


class Delay(Rule):
	def __init__(self, seconds, inner=None):
		self.seconds = seconds
		self.inner = inner or Answer()

	def respond(self, query, transport):
		return [Send(s.delay + self.seconds, s.wire, s.via)
			for s in self.inner.respond(query, transport)]


class Spoof(Rule):
	"""Sends forged replies first (all claiming SPOOF_ADDRESS), then inner's real reply after
	`after` seconds. kinds: "id" (wrong ID), "question" (right ID, another name), "port" (right
	ID and question, from another source port; UDP only), "addr" (right ID and question, from
	another address: 127.0.0.2; UDP over IPv4 only), "others" (right ID and question from the
	right address and port, sent to every other source port veto has used; UDP only), "noqr" (QR
	bit clear)."""

	def __init__(self, inner=None, kinds=("id", "question", "port", "noqr"), after=0.05):
		self.inner = inner or Answer()
		self.kinds = kinds
		self.after = after

	def respond(self, query, transport):
		out = []
		for kind in self.kinds:
			forged = make_reply(query)
			forged.answer.append(dns.rrset.from_text(query.question[0].name, 300, "IN", "A",
								 SPOOF_ADDRESS))
			via = "normal"
			if kind == "id":
				forged.id = (query.id + 1) & 0xffff
			elif kind == "question":
				other = dns.name.from_text("spoofed-" + _qname(query).replace(".", "-") + ".invalid.")
				forged.question = [dns.rrset.RRset(other, dns.rdataclass.IN, query.question[0].rdtype)]
				forged.answer = [dns.rrset.from_text(other, 300, "IN", "A", SPOOF_ADDRESS)]
			elif kind in ("port", "addr", "others"):
				if transport != "udp":
					continue
				via = {"port": "altport", "addr": "altaddr", "others": "others"}[kind]
			elif kind == "noqr":
				forged.flags &= ~dns.flags.QR
			out.append(Send(0, forged.to_wire(max_size=65535), via))
		out += [Send(s.delay + self.after, s.wire, s.via) for s in self.inner.respond(query, transport)]
		return out


def free_port(hosts):
	"""A port free for both UDP and TCP on every host in hosts (best effort: checked, then
	released). Taken below the kernel's ephemeral range (32768-60999 on Debian): a port the
	kernel hands out (bind to port 0) is also what it picks as the source port of the next
	outgoing connection, so between this check and the daemon's bind another test's client
	could take it (seen: 0.0.0.0:PORT in use for TCP)."""
	rng = random.Random(os.getpid() ^ time.monotonic_ns())
	for _ in range(200):
		port = rng.randrange(10000, 32000)
		socks = []
		try:
			for host in hosts:
				fam = socket.AF_INET6 if ":" in host else socket.AF_INET
				for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
					s = socket.socket(fam, kind)
					socks.append(s)
					if fam == socket.AF_INET6:
						s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
					s.bind((host, port))
			return port
		except OSError:
			continue
		finally:
			for s in socks:
				s.close()
	raise RuntimeError("no free port found")


class FakeUpstream:
	def __init__(self, host="127.0.0.1", default=None):
		self.host = host
		self.family = socket.AF_INET6 if ":" in host else socket.AF_INET
		self.rules = {}
		self.default = default or Answer()
		self.received = []
		self.lock = threading.Lock()
		self.errors = []	# exceptions raised in the server thread (tests can assert none)
		self._udp, self._tcp, self.port = self._bind()
		self._alt = socket.socket(self.family, socket.SOCK_DGRAM)
		self._alt.bind((host, 0))
		self._wake_r, self._wake_w = socket.socketpair()
		self._timers = []
		self._seq = itertools.count()
		self._conns = {}
		self._stopping = False
		self._thread = threading.Thread(target=self._run, name=f"fakeupstream-{self.port}", daemon=True)
		self._thread.start()

	@property
	def address(self):
		"""As written in veto's upstream.servers."""
		return f"[{self.host}]:{self.port}" if self.family == socket.AF_INET6 else f"{self.host}:{self.port}"

	def _bind(self):
		for _ in range(50):
			port = free_port([self.host])
			udp = socket.socket(self.family, socket.SOCK_DGRAM)
			tcp = socket.socket(self.family, socket.SOCK_STREAM)
			try:
				tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
				udp.bind((self.host, port))
				tcp.bind((self.host, port))
				tcp.listen(64)
				return udp, tcp, port
			except OSError:
				udp.close()
				tcp.close()
		raise RuntimeError("fake upstream: cannot bind")

	# --- what tests use ---------------------------------------------------------------------

	def set_rule(self, name, rule):
		with self.lock:
			self.rules[name.rstrip(".").lower()] = rule

	def queries(self, name=None, qtype=None, transport=None):
		"""The queries received so far, optionally only for a name (case-insensitive), type and
		transport."""
		with self.lock:
			out = list(self.received)
		if name is not None:
			out = [r for r in out if r.qname.lower() == name.rstrip(".").lower()]
		if qtype is not None:
			out = [r for r in out if r.qtype == qtype]
		if transport is not None:
			out = [r for r in out if r.transport == transport]
		return out

	def clear(self):
		with self.lock:
			self.received.clear()

	def wait_queries(self, count, timeout=5.0, **match):
		"""Waits (bounded) until at least count matching queries arrived; returns them."""
		deadline = time.monotonic() + timeout
		while True:
			got = self.queries(**match)
			if len(got) >= count or time.monotonic() >= deadline:
				return got
			time.sleep(0.02)

	def stop(self):
		if self._stopping:
			return
		self._stopping = True
		self._wake_w.send(b"x")
		self._thread.join(timeout=5)
		extra = [self._altaddr_sock] if getattr(self, "_altaddr_sock", None) is not None else []
		for s in [self._udp, self._tcp, self._alt, self._wake_r, self._wake_w, *self._conns, *extra]:
			try:
				s.close()
			except OSError:
				pass

	# --- the server thread ------------------------------------------------------------------

	def _run(self):
		sel = selectors.DefaultSelector()
		sel.register(self._udp, selectors.EVENT_READ, "udp")
		sel.register(self._tcp, selectors.EVENT_READ, "accept")
		sel.register(self._wake_r, selectors.EVENT_READ, "wake")
		while not self._stopping:
			timeout = None
			if self._timers:
				timeout = max(0.0, self._timers[0][0] - time.monotonic())
			for key, _ in sel.select(timeout):
				try:
					self._event(sel, key)
				except Exception as e:	# keep serving; the test can look at errors
					self.errors.append(repr(e))
			now = time.monotonic()
			while self._timers and self._timers[0][0] <= now:
				_, _, fn = heapq.heappop(self._timers)
				try:
					fn()
				except OSError:
					pass
		sel.close()

	def _event(self, sel, key):
		if key.data == "wake":
			key.fileobj.recv(16)
		elif key.data == "udp":
			wire, addr = self._udp.recvfrom(65535)
			self._handle(wire, "udp", addr, None)
		elif key.data == "accept":
			conn, addr = self._tcp.accept()
			conn.setblocking(False)
			self._conns[conn] = bytearray()
			sel.register(conn, selectors.EVENT_READ, ("tcp", addr))
		else:
			conn = key.fileobj
			try:
				data = conn.recv(65535)
			except OSError:
				data = b""
			if not data:
				sel.unregister(conn)
				self._conns.pop(conn, None)
				conn.close()
				return
			buf = self._conns[conn]
			buf += data
			while len(buf) >= 2:
				n = struct.unpack("!H", buf[:2])[0]
				if len(buf) < 2 + n:
					break
				wire = bytes(buf[2:2 + n])
				del buf[:2 + n]
				self._handle(wire, "tcp", key.data[1], conn)

	def _handle(self, wire, transport, addr, conn):
		arrived = time.monotonic()
		try:
			query = dns.message.from_wire(wire)
		except Exception as e:
			self.errors.append(f"unparsable query from veto: {e!r}")
			return
		rec = Received(qname=_qname(query), qtype=_qtype(query), id=query.id, transport=transport,
			       sport=addr[1], flags=query.flags, has_opt=query.edns >= 0,
			       do=bool(query.ednsflags & dns.flags.DO), payload=query.payload if query.edns >= 0 else 0,
			       when=arrived)
		with self.lock:
			self.received.append(rec)
			rule = self.rules.get(rec.qname.lower(), self.default)
		for s in rule.respond(query, transport):
			fn = self._sender(s, transport, addr, conn)
			if s.delay <= 0:
				try:
					fn()
				except OSError:
					pass
			else:
				heapq.heappush(self._timers, (arrived + s.delay, next(self._seq), fn))

	def _altaddr(self):
		if getattr(self, "_altaddr_sock", None) is None:
			a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
			a.bind(("127.0.0.2", self.port))
			self._altaddr_sock = a
		return self._altaddr_sock

	def send_to_port(self, wire, port, host="127.0.0.1"):
		"""Sends wire from the upstream's own address and port to port on host (what a spoofer
		who guessed a port would send)."""
		self._udp.sendto(wire, (host, port))

	def _sender(self, s, transport, addr, conn):
		if transport == "udp":
			if s.via == "others":
				with self.lock:
					ports = {r.sport for r in self.received if r.transport == "udp"} - {addr[1]}

				def send_others():
					for p in sorted(ports):
						self._udp.sendto(s.wire, (addr[0], p))
				return send_others
			if s.via == "altaddr":
				sock = self._altaddr()
			else:
				sock = self._alt if s.via == "altport" else self._udp
			return lambda: sock.sendto(s.wire, addr)

		def send_tcp():
			if conn.fileno() < 0:
				return
			conn.setblocking(True)
			conn.settimeout(2)
			try:
				conn.sendall(struct.pack("!H", len(s.wire)) + s.wire)
			finally:
				conn.setblocking(False)
		return send_tcp
