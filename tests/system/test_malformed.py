"""Malformed input: nothing may crash the daemon; readable headers with a bad question get FORMERR,
short packets and responses are dropped, other opcodes get NOTIMP."""

import random
import socket
import struct

import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import pytest

from conftest import NOGROUP_CLIENT, frame, make_query, tcp_connect, tcp_read_message

FORMERR, NOTIMP = dns.rcode.FORMERR, dns.rcode.NOTIMP


def header(id=0x4242, flags=0x0100, qd=1, an=0, ns=0, ar=0):
	return struct.pack("!HHHHHH", id, flags, qd, an, ns, ar)


def question(name=b"\x07example\x04test\x00", qtype=1, qclass=1):
	return name + struct.pack("!HH", qtype, qclass)


OPT = b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 0)	# root, OPT, size, ext-rcode/version/flags, rdlen


def opt(version=0, size=1232, rdata=b""):
	return b"\x00" + struct.pack("!HHBBHH", 41, size, 0, version, 0, len(rdata)) + rdata


# name, packet, expected rcode (None = must be dropped: no reply)
CASES = [
	("empty", b"", None),
	("one_octet", b"\x42", None),
	("eleven_octets", header()[:11], None),
	("qr_set_response", header(flags=0x8180) + question(), None),
	("header_only_qd1", header(), FORMERR),
	("qdcount_0", header(qd=0), FORMERR),
	("qdcount_2", header(qd=2) + question() + question(b"\x03foo\x04test\x00"), FORMERR),
	("truncated_question_name", header() + b"\x07exam", FORMERR),
	("truncated_question_type", header() + b"\x07example\x04test\x00\x00", FORMERR),
	("compression_loop_self", header() + b"\xc0\x0c" + struct.pack("!HH", 1, 1), FORMERR),
	("compression_loop_pair", header() + b"\x01a\xc0\x0e\xc0\x0c" + struct.pack("!HH", 1, 1), FORMERR),
	("compression_forward", header() + b"\xc0\x12" + struct.pack("!HH", 1, 1) + b"\x01a\x00", FORMERR),
	("compression_out_of_range", header() + b"\xcf\xff" + struct.pack("!HH", 1, 1), FORMERR),
	("label_type_0x40", header() + b"\x41" + b"a" * 65 + b"\x00" + struct.pack("!HH", 1, 1), FORMERR),
	("label_type_0x80", header() + b"\x80abc\x00" + struct.pack("!HH", 1, 1), FORMERR),
	("name_over_255", header() + (b"\x3f" + b"a" * 63) * 5 + b"\x00" + struct.pack("!HH", 1, 1), FORMERR),
	("huge_counts", header(qd=1, an=65535, ns=65535, ar=65535) + question(), FORMERR),
	("huge_arcount", header(ar=65535) + question(), FORMERR),
	("two_opts", header(ar=2) + question() + OPT + OPT, FORMERR),
	("opt_bad_rdlen", header(ar=1) + question() + b"\x00" + struct.pack("!HHIH", 41, 1232, 0, 40), FORMERR),
	("opcode_status", header(flags=(2 << 11) | 0x0100) + question(), NOTIMP),
	("opcode_notify", header(flags=(4 << 11)) + question(), NOTIMP),
	("opcode_update", header(flags=(5 << 11)) + question(), NOTIMP),
]


@pytest.mark.parametrize("name,packet,rcode", CASES, ids=[c[0] for c in CASES])
def test_malformed_udp(veto, upstream, name, packet, rcode):
	"""The reply (or its absence) is checked by sending a valid query right after on the same
	socket: if the malformed packet were answered, that answer would arrive first."""
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((NOGROUP_CLIENT, 0))
	s.settimeout(3)
	try:
		s.sendto(packet, ("127.0.0.1", veto.port))
		follow = make_query("after-malformed.test", "A", id=0x7777)
		s.sendto(follow.to_wire(), ("127.0.0.1", veto.port))
		first = s.recv(65535)
		if rcode is None:
			assert struct.unpack("!H", first[:2])[0] == 0x7777, f"a reply to a packet that must be dropped: {first!r}"
		else:
			assert len(first) >= 12
			rid, flags = struct.unpack("!HH", first[:4])
			assert rid == 0x4242, f"expected the error reply first, got ID {rid:#x}"
			assert flags & 0x8000, "QR must be set"
			assert flags & 0x000f == rcode, f"rcode {flags & 0xf}, expected {rcode}"
			assert (flags >> 11) & 0xf == (struct.unpack("!H", packet[2:4])[0] >> 11) & 0xf, "opcode echoed"
			second = s.recv(65535)
			assert struct.unpack("!H", second[:2])[0] == 0x7777
	finally:
		s.close()
	assert upstream.queries(name="example.test") == [], "a malformed query must not go upstream"
	veto.assert_alive()


def test_malformed_logged_as_formerr(veto):
	veto.exchange(header(qd=0))
	veto.exchange(header(qd=2) + question() + question())
	recs = veto.wait_log(lambda x: x["action"] == "formerr", count=2)
	assert len(recs) == 2
	for rec in recs:
		assert rec["rcode"] == "FORMERR" and rec["blocked"] is False
		assert rec["client"] == NOGROUP_CLIENT and rec["proto"] == "udp"
	assert recs[0]["qname"] is None and recs[0]["qtype"] is None


def test_badvers(veto):
	wire = header(ar=1) + question() + opt(version=1)
	reply = veto.exchange(wire)
	assert reply is not None
	r = dns.message.from_wire(reply)
	assert r.rcode() == dns.rcode.BADVERS and r.edns == 0


def test_tiny_edns_size_treated_as_512(veto, upstream):
	from fakeupstream import Big
	upstream.set_rule("tiny.test", Big(20))	# about 350 octets: fits 512
	wire = header(ar=1) + question(b"\x04tiny\x04test\x00") + opt(size=100)
	reply = veto.exchange(wire)
	r = dns.message.from_wire(reply)
	assert not r.flags & dns.flags.TC and len(r.answer[0]) == 20


def test_random_bytes(veto):
	rng = random.Random(20261122)
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((NOGROUP_CLIENT, 0))
	try:
		for i in range(200):
			n = rng.choice([0, 1, 5, 11, 12, 13, 17, 30, 64, 200, 512, 1400])
			body = bytes(rng.getrandbits(8) for _ in range(n))
			if i % 2 and n >= 12:
				# a plausible header (QUERY, QR clear, QDCOUNT 1) with random content after it
				body = header(id=i, flags=rng.choice([0, 0x0100, 0x0110]), qd=1,
					      an=rng.getrandbits(16), ns=rng.getrandbits(2),
					      ar=rng.getrandbits(2)) + body[12:]
			s.sendto(body, ("127.0.0.1", veto.port))
	finally:
		s.close()
	veto.assert_alive()


def test_random_mutations_of_a_valid_query(veto):
	"""Bit flips and truncations of a real query (with OPT)."""
	rng = random.Random(7)
	base = make_query("mutant.example.test", "A").to_wire()
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((NOGROUP_CLIENT, 0))
	try:
		for _ in range(200):
			pkt = bytearray(base)
			for _ in range(rng.randint(1, 4)):
				pkt[rng.randrange(2, len(pkt))] ^= 1 << rng.randrange(8)
			if rng.random() < 0.3:
				pkt = pkt[:rng.randrange(0, len(pkt))]
			s.sendto(bytes(pkt), ("127.0.0.1", veto.port))
	finally:
		s.close()
	veto.assert_alive()


TCP_CASES = {
	"zero_length": frame(b""),
	"short_message": frame(b"\x00\x01\x02"),
	"formerr": frame(header(qd=0)),
	"random": frame(bytes(range(256)) * 2),
	"length_beyond_data_then_close": struct.pack("!H", 60000) + b"x" * 100,
}


@pytest.mark.parametrize("name", sorted(TCP_CASES))
def test_malformed_tcp(veto, name):
	s = tcp_connect("127.0.0.1", veto.port)
	try:
		s.sendall(TCP_CASES[name])
		if name == "formerr":
			wire = tcp_read_message(s, 3)
			assert wire is not None and wire[3] & 0x0f == FORMERR
	finally:
		s.close()
	veto.assert_alive()
	r = veto.query("after-tcp.test", "A", tcp=True)
	assert r.rcode() == 0
