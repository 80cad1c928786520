"""Encrypted upstreams: DNS over TLS (tls://address[:port][#name]) and DNS over HTTPS
(https://host[:port]/path[#bootstrap address]), verified against upstream.tls_ca. dnsdist on
loopback serves DoT and DoH with a certificate from a throwaway CA made with `openssl`, in front
of the fake upstream. Answers and caching, one connection carrying many queries in flight
(counted by a relay that counts TCP accepts), hundreds pipelined with some never answered
(every client query answered, SERVFAIL for those), a certificate from another CA and a wrong name
(logged, failed over to the next server), the DoT server dying and coming back (reconnect),
`veto check`."""

import json
import os
import select
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import NOGROUP_CLIENT, answer_values, make_query, run_veto
from fakeupstream import free_port
from test_upstream_pool import pipelined

TLS_NAME = "dns.test"
UPSTREAM_TIMEOUT_MS = 1500	# a handshake on a busy 2-core machine (and under ASan) fits

pytestmark = pytest.mark.skipif(
	shutil.which("dnsdist") is None or shutil.which("openssl") is None,
	reason="DNS-over-TLS tests need dnsdist and openssl (Debian packages dnsdist, openssl)")


def openssl(*args, cwd):
	subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def make_ca(d, name):
	openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "2", "-subj", f"/CN={name}",
		cwd=d)


def make_cert(d, ca, name, sans):
	openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
		f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}", cwd=d)
	(d / f"{name}.ext").write_text(f"subjectAltName={sans}\n")
	openssl("x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
		"-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext",
		cwd=d)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
	"""A test CA with a server certificate for IP 127.0.0.1 and DNS dns.test, and another CA
	with a certificate for the same names."""
	d = tmp_path_factory.mktemp("pki")
	make_ca(d, "ca")
	make_cert(d, "ca", "server", f"IP:127.0.0.1,DNS:{TLS_NAME}")
	make_ca(d, "otherca")
	make_cert(d, "otherca", "stranger", f"IP:127.0.0.1,DNS:{TLS_NAME}")
	return d


class Dnsdist:
	"""dnsdist on 127.0.0.1 serving DoT (port) and DoH (doh_port, /dns-query) with cert/key,
	forwarding to backend (host:port)."""

	def __init__(self, workdir, backend, cert, key, port=None):
		self.dir = workdir
		self.dir.mkdir(parents=True, exist_ok=True)
		self.port = port or free_port(["127.0.0.1"])
		self.doh_port = free_port(["127.0.0.1"])
		self.conf = self.dir / "dnsdist.lua"
		self.conf.write_text(
			'setSecurityPollSuffix("")\n'
			f'newServer({{address="{backend}"}})\n'
			f'addTLSLocal("127.0.0.1:{self.port}", "{cert}", "{key}")\n'
			f'addDOHLocal("127.0.0.1:{self.doh_port}", "{cert}", "{key}", "/dns-query")\n'
			'addACL("127.0.0.0/8")\n')
		self.proc = None

	def start(self):
		self.out = open(self.dir / "dnsdist.out", "ab")
		self.proc = subprocess.Popen(["dnsdist", "--supervised", "--disable-syslog", "-C",
					      str(self.conf)], stdin=subprocess.DEVNULL, stdout=self.out,
					     stderr=subprocess.STDOUT)
		deadline = time.monotonic() + 15
		while time.monotonic() < deadline:
			assert self.proc.poll() is None, (self.dir / "dnsdist.out").read_text()
			try:
				socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
				socket.create_connection(("127.0.0.1", self.doh_port), timeout=0.2).close()
				return self
			except OSError:
				time.sleep(0.05)
		pytest.fail("dnsdist did not listen within 15 s")

	def stop(self):
		if self.proc is not None and self.proc.poll() is None:
			os.kill(self.proc.pid, signal.SIGTERM)
			try:
				self.proc.wait(timeout=10)
			except subprocess.TimeoutExpired:
				os.kill(self.proc.pid, signal.SIGKILL)
				self.proc.wait(timeout=5)
		self.proc = None
		self.out.close()


class Relay:
	"""A TCP relay on 127.0.0.1 to a target port that counts the connections it accepts."""

	def __init__(self, target_port):
		self.target = target_port
		self.lsock = socket.socket()
		self.lsock.bind(("127.0.0.1", 0))
		self.lsock.listen(64)
		self.port = self.lsock.getsockname()[1]
		self.accepts = 0
		self.pairs = {}
		self.dropped = threading.Event()
		self.wake_r, self.wake_w = socket.socketpair()
		self.thread = threading.Thread(target=self.run, daemon=True)
		self.thread.start()

	def run(self):
		while True:
			r, _, _ = select.select([self.lsock, self.wake_r, *self.pairs], [], [], 1.0)
			if self.wake_r in r:
				if self.wake_r.recv(1) == b"x":
					return
				for x in list(self.pairs):	# b"d": drop every connection
					x.close()
				self.pairs.clear()
				self.dropped.set()
				continue
			for s in r:
				if s is self.lsock:
					c, _ = self.lsock.accept()
					self.accepts += 1
					t = socket.create_connection(("127.0.0.1", self.target), timeout=5)
					self.pairs[c], self.pairs[t] = t, c
					continue
				if s not in self.pairs:
					continue
				try:
					data = s.recv(65536)
				except OSError:
					data = b""
				peer = self.pairs[s]
				if data:
					peer.sendall(data)
					continue
				for x in (s, peer):
					self.pairs.pop(x, None)
					x.close()

	def drop(self):
		"""Closes every relayed connection (as a server closing idle ones does)."""
		self.dropped.clear()
		self.wake_w.send(b"d")
		assert self.dropped.wait(5)

	def stop(self):
		self.wake_w.send(b"x")
		self.thread.join(timeout=5)
		for s in [self.lsock, self.wake_r, self.wake_w, *self.pairs]:
			s.close()


@pytest.fixture
def dot(pki, upstream, tmp_path):
	"""A DoT server (good certificate) in front of the fake upstream."""
	d = Dnsdist(tmp_path / "dnsdist", upstream.address, pki / "server.pem", pki / "server.key")
	d.start()
	yield d
	d.stop()


def tls_edit(pki, servers, ca="ca.pem"):
	def edit(cfg):
		cfg["upstream"]["servers"] = servers
		cfg["upstream"]["tls_ca"] = str(pki / ca)
		cfg["upstream"]["timeout_ms"] = UPSTREAM_TIMEOUT_MS
	return edit


def stats(v):
	p = run_veto(["stats", "-c", str(v.config_file), "--json"])
	assert p.returncode == 0, p.stderr
	return json.loads(p.stdout)["upstream"]


@pytest.mark.parametrize("suffix", [f"#{TLS_NAME}", ""], ids=["name", "ip"])
def test_dot_answers_and_caches(veto_factory, upstream, dot, pki, suffix):
	"""Answers come over DoT (checked against the name, or the IP SAN without #name) and are
	cached like any other."""
	v = veto_factory(edit=tls_edit(pki, [f"tls://127.0.0.1:{dot.port}{suffix}"]))
	before = stats(v)	# the readiness probe from ::1 may have gone upstream
	r = v.query("www.dot.test", "A")
	assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.1"]
	assert len(upstream.wait_queries(1, name="www.dot.test")) == 1
	r = v.query("www.dot.test", "A")
	assert answer_values(r, "A") == ["192.0.2.1"]
	time.sleep(0.2)
	assert len(upstream.queries(name="www.dot.test")) == 1, "second query not from the cache"
	st = stats(v)
	assert st["sent_tls"] >= before["sent_tls"] + 1
	assert st["tls_connections"] == 1 and st["tls_failures"] == 0


def test_dot_one_connection_many_in_flight(veto_factory, upstream, dot, pki):
	"""500 distinct names, 64 at a time from the client: all answered over one connection."""
	relay = Relay(dot.port)
	try:
		v = veto_factory(edit=tls_edit(pki, [f"tls://127.0.0.1:{relay.port}#{TLS_NAME}"]))
		before = stats(v)
		names = [f"n{i}.pipe.test" for i in range(500)]
		replies = pipelined(v.port, names, window=64, timeout=30)
		assert len(replies) == len(names)
		assert all(answer_values(r, "A") == ["192.0.2.1"] for r in replies.values())
		assert relay.accepts == 1
		st = stats(v)
		# at least one per name (a retry after a slow answer on a busy machine adds one)
		assert st["sent_tls"] >= before["sent_tls"] + 500 and st["tls_connections"] == 1
	finally:
		relay.stop()


def test_dot_closed_connection_resumes_session(veto_factory, upstream, dot, pki):
	"""The server closes the connection between queries (its idle timeout): not a failure; the
	next query opens a new connection that resumes the TLS session."""
	relay = Relay(dot.port)
	try:
		v = veto_factory(edit=tls_edit(pki, [f"tls://127.0.0.1:{relay.port}#{TLS_NAME}"]))
		assert v.query("a.resume.test", "A").rcode() == 0
		time.sleep(0.2)	# the session ticket arrives after the handshake
		relay.drop()
		time.sleep(0.3)	# Veto reads the EOF
		assert v.query("b.resume.test", "A").rcode() == 0
		st = stats(v)
		assert relay.accepts == 2
		assert st["tls_connections"] == 2 and st["tls_resumed"] == 1
		assert st["tls_failures"] == 0
		assert "warning: upstream" not in v.stderr()
	finally:
		relay.stop()


def test_dot_new_ca_is_not_bypassed_by_resumption(veto_factory, upstream, dot, pki):
	"""A reload that changes upstream.tls_ca to a CA that did not sign the server's
	certificate: the next connection makes a full handshake and fails verification instead
	of resuming the session verified against the old CA."""
	relay = Relay(dot.port)
	try:
		v = veto_factory(edit=tls_edit(pki, [f"tls://127.0.0.1:{relay.port}#{TLS_NAME}"]))
		assert v.query("a.newca.test", "A").rcode() == 0
		time.sleep(0.2)	# the session ticket arrives after the handshake
		v.rewrite_config(lambda cfg: cfg["upstream"].update(tls_ca=str(pki / "otherca.pem")))
		v.send_signal(signal.SIGHUP)
		v.wait_stderr("reload: ok", timeout=5)
		relay.drop()
		time.sleep(0.3)	# Veto reads the EOF
		assert v.query("b.newca.test", "A").rcode() == 2
		assert "certificate does not verify" in v.wait_stderr("certificate does not verify")
		assert stats(v)["tls_resumed"] == 0
		assert upstream.queries(name="b.newca.test") == []
	finally:
		relay.stop()


def test_dot_unknown_ca_fails_over(veto_factory, upstream, pki, tmp_path):
	"""A certificate from another CA: a clear error naming the server and the reason, counted,
	and the query answered by the next server (plain DNS)."""
	bad = Dnsdist(tmp_path / "bad", upstream.address, pki / "stranger.pem",
		      pki / "stranger.key").start()
	try:
		server = f"tls://127.0.0.1:{bad.port}#{TLS_NAME}"
		v = veto_factory(edit=tls_edit(pki, [server, upstream.address]))
		r = v.query("fo.dot.test", "A")
		assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.1"]
		err = v.wait_stderr("certificate does not verify")
		assert f"upstream: '{server}': tls: certificate does not verify: " in err
		assert "unable to get local issuer certificate" in err or "self-signed" in err, err
		# the query came over plain DNS only: the DoT server never got it through
		assert {q.transport for q in upstream.queries(name="fo.dot.test")} == {"udp"}
		st = stats(v)
		assert st["tls_failures"] >= 1 and st["tls_connections"] == 0
	finally:
		bad.stop()


def test_dot_wrong_name(veto_factory, upstream, dot, pki):
	"""#other.name that the certificate does not carry: the error says so; with no other
	server the client gets SERVFAIL."""
	server = f"tls://127.0.0.1:{dot.port}#other.test"
	v = veto_factory(edit=tls_edit(pki, [server]))
	r = v.query("wn.dot.test", "A")
	assert r.rcode() == 2
	err = v.wait_stderr("certificate does not verify")
	assert f"upstream: '{server}': tls: certificate does not verify: hostname mismatch" in err
	assert upstream.queries(name="wn.dot.test") == []


def test_dot_system_store_rejects_test_ca(veto_factory, upstream, dot, pki):
	"""Without upstream.tls_ca the system store is used: the test CA is not in it."""
	def edit(cfg):
		tls_edit(pki, [f"tls://127.0.0.1:{dot.port}#{TLS_NAME}"])(cfg)
		del cfg["upstream"]["tls_ca"]
	v = veto_factory(edit=edit)
	assert v.query("sys.dot.test", "A").rcode() == 2
	assert "certificate does not verify" in v.wait_stderr("certificate does not verify")


def test_dot_server_restart_reconnects(veto_factory, upstream, dot, pki):
	"""The DoT server dies: queries fail (SERVFAIL, promptly); once it is back on the same port
	the next connection answers."""
	v = veto_factory(edit=tls_edit(pki, [f"tls://127.0.0.1:{dot.port}#{TLS_NAME}"]))
	assert answer_values(v.query("before.dot.test", "A"), "A") == ["192.0.2.1"]
	dot.stop()
	assert v.query("during.dot.test", "A", timeout=10).rcode() == 2
	assert "tls: connect: Connection refused" in v.wait_stderr("tls: connect: Connection refused")
	dot.start()
	deadline = time.monotonic() + 20	# past the server's backoff (1 s, doubling)
	while True:
		r = v.query(f"after{time.monotonic_ns()}.dot.test", "A", timeout=10)
		if r.rcode() == 0 or time.monotonic() > deadline:
			break
		time.sleep(0.25)
	assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.1"]
	st = stats(v)
	assert st["tls_connections"] >= 2 and st["tls_failures"] >= 1
	v.assert_alive()


def test_dot_reload_keeps_serving(veto_factory, upstream, dot, pki):
	"""A reload that keeps the server keeps its connection; one that drops it closes it."""
	server = f"tls://127.0.0.1:{dot.port}#{TLS_NAME}"
	v = veto_factory(edit=tls_edit(pki, [server]))
	assert v.query("r1.dot.test", "A").rcode() == 0
	v.send_signal(signal.SIGHUP)
	v.wait_stderr("reload", timeout=5)
	time.sleep(0.3)
	assert v.query("r2.dot.test", "A").rcode() == 0
	assert stats(v)["tls_connections"] == 1
	v.rewrite_config(lambda cfg: cfg["upstream"].update(servers=[upstream.address]))
	v.send_signal(signal.SIGHUP)
	time.sleep(0.5)
	assert v.query("r3.dot.test", "A").rcode() == 0
	assert {q.transport for q in upstream.queries(name="r3.dot.test")} == {"udp"}


# --- DNS over HTTPS ---------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["name", "ip"])
def test_doh_answers_and_caches(veto_factory, upstream, dot, pki, kind):
	"""Answers come over DoH (a host name with its bootstrap address, checked against the DNS
	SAN; or an IP address, against the IP SAN) and are cached."""
	url = {"name": f"https://{TLS_NAME}:{dot.doh_port}/dns-query#127.0.0.1",
	       "ip": f"https://127.0.0.1:{dot.doh_port}/dns-query"}[kind]
	v = veto_factory(edit=tls_edit(pki, [url]))
	before = stats(v)
	r = v.query("www.doh.test", "A")
	assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.1"]
	r = v.query("www.doh.test", "AAAA")
	assert r.rcode() == 0
	assert v.query("www.doh.test", "A").rcode() == 0
	time.sleep(0.2)
	assert len(upstream.queries(name="www.doh.test", qtype="A")) == 1, "not from the cache"
	st = stats(v)
	assert st["sent_https"] >= before["sent_https"] + 2


def test_doh_one_connection_many_in_flight(veto_factory, upstream, dot, pki):
	"""500 distinct names, 64 at a time: all answered over one HTTP/2 connection."""
	relay = Relay(dot.doh_port)
	try:
		v = veto_factory(edit=tls_edit(pki, [f"https://127.0.0.1:{relay.port}/dns-query"]))
		before = stats(v)
		names = [f"n{i}.h2.test" for i in range(500)]
		replies = pipelined(v.port, names, window=64, timeout=30)
		assert len(replies) == len(names)
		assert all(answer_values(r, "A") == ["192.0.2.1"] for r in replies.values())
		assert relay.accepts == 1
		assert stats(v)["sent_https"] >= before["sent_https"] + 500
	finally:
		relay.stop()


def test_doh_more_in_flight_than_the_pool_keeps(veto_factory, upstream, dot, pki):
	"""More transfers at once than idle handles are kept (64): the handles past the pool are
	freed once their answer has been used, never before (each answer is right; the ASan build
	catches a read of a freed transfer)."""
	v = veto_factory(edit=tls_edit(pki, [f"https://127.0.0.1:{dot.doh_port}/dns-query"]))
	names = [f"p{i}.pool.test" for i in range(800)]
	replies = pipelined(v.port, names, window=240, timeout=30)
	assert len(replies) == len(names)
	assert all(answer_values(r, "A") == ["192.0.2.1"] for r in replies.values())
	v.assert_alive()


def test_doh_unknown_ca_fails_over(veto_factory, upstream, pki, tmp_path):
	"""A certificate from another CA: logged with the server and curl's reason, and the query
	answered by the next server."""
	bad = Dnsdist(tmp_path / "bad", upstream.address, pki / "stranger.pem",
		      pki / "stranger.key").start()
	try:
		server = f"https://127.0.0.1:{bad.doh_port}/dns-query"
		v = veto_factory(edit=tls_edit(pki, [server, upstream.address]))
		r = v.query("fo.doh.test", "A")
		assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.1"]
		err = v.wait_stderr("certificate does not verify")
		assert f"upstream: '{server}': https: certificate does not verify: " in err
		assert {q.transport for q in upstream.queries(name="fo.doh.test")} == {"udp"}
	finally:
		bad.stop()


def test_doh_wrong_name(veto_factory, upstream, dot, pki):
	"""A URL whose host the certificate does not carry: the error says so, SERVFAIL."""
	server = f"https://other.test:{dot.doh_port}/dns-query#127.0.0.1"
	v = veto_factory(edit=tls_edit(pki, [server]))
	assert v.query("wn.doh.test", "A").rcode() == 2
	err = v.wait_stderr("certificate does not verify")
	assert f"upstream: '{server}': https: certificate does not verify: " in err
	assert "other.test" in err.split("certificate does not verify: ", 1)[1].split("\n")[0]
	assert upstream.queries(name="wn.doh.test") == []


def test_doh_server_restart_reconnects(veto_factory, upstream, dot, pki):
	"""The DoH server dies (its connection with it): SERVFAIL; back on the same port, the next
	query opens a new connection through the same multi handle."""
	v = veto_factory(edit=tls_edit(pki, [f"https://127.0.0.1:{dot.doh_port}/dns-query"]))
	assert answer_values(v.query("before.doh.test", "A"), "A") == ["192.0.2.1"]
	dot.stop()
	assert v.query("during.doh.test", "A", timeout=10).rcode() == 2
	dot.start()
	deadline = time.monotonic() + 20	# past the server's backoff (1 s, doubling)
	while True:
		r = v.query(f"after{time.monotonic_ns()}.doh.test", "A", timeout=10)
		if r.rcode() == 0 or time.monotonic() > deadline:
			break
		time.sleep(0.25)
	assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.1"]
	v.assert_alive()


CHECKS = [
	("tls://192.0.2.1", None),
	("tls://192.0.2.1:8853#dns.example", None),
	("tls://[2001:db8::1]:853#Dns.Example", None),
	("https://dns.example/dns-query#192.0.2.1", None),
	("https://[2001:db8::1]:8443/dns-query", None),
	("https://dns.example/dns-query", "needs its address after '#'"),
	("tls://dns.example", "tls:// takes an IP address"),
	("tls://192.0.2.1#bad_name", "is not a host name"),
	("tls://192.0.2.1#", "must have 1 to 253 characters"),
	("quic://192.0.2.1", "unknown scheme"),
]


@pytest.mark.parametrize("server,error", CHECKS, ids=[c[0] for c in CHECKS])
def test_check_syntax(tmp_path, server, error):
	cfg = tmp_path / "veto.yaml"
	cfg.write_text(f"upstream:\n  servers: [\"{server}\"]\n  tls_ca: {tmp_path}/ca.pem\n")
	(tmp_path / "ca.pem").write_text("")
	p = run_veto(["check", "-c", str(cfg)])
	if error is None:
		assert p.returncode == 0, p.stderr
	else:
		assert p.returncode != 0
		assert f"upstream.servers[0]: bad address '{server}' (" in p.stderr, p.stderr
		assert error in p.stderr, p.stderr


class TlsListener:
	"""A TLS server on loopback with the test CA's certificate: accepts in a thread, counts
	the connections (accepts) and hands each to accepted(); stop() closes the listener and every
	connection kept in conns."""

	def __init__(self, pki):
		import ssl
		self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		self.ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
		self.lsock = socket.socket()
		self.lsock.bind(("127.0.0.1", 0))
		self.lsock.listen(16)
		self.lsock.settimeout(0.2)
		self.port = self.lsock.getsockname()[1]
		self.accepts = 0
		self.conns = []
		self.stopping = False
		self.thread = threading.Thread(target=self.run, daemon=True)
		self.thread.start()

	def run(self):
		while not self.stopping:
			try:
				c, _ = self.lsock.accept()
			except OSError:
				continue
			self.accepts += 1
			self.accepted(c)

	def stop(self):
		self.stopping = True
		self.thread.join(timeout=5)
		for s in [self.lsock, *self.conns]:
			s.close()


class SilentTls(TlsListener):
	"""Completes handshakes, reads queries and never answers."""

	def accepted(self, c):
		try:
			c.settimeout(2)
			self.conns.append(self.ctx.wrap_socket(c, server_side=True))
		except OSError:
			c.close()


def test_dot_silent_connection_replaced(veto_factory, upstream, pki):
	"""A connection that takes queries and never answers (a middlebox that dropped it, a hung
	server) is given up once it has been silent for 3 x timeout_ms while queries keep coming,
	and a new one is opened: the client gets SERVFAIL, Veto keeps trying."""
	silent = SilentTls(pki)
	try:
		server = f"tls://127.0.0.1:{silent.port}#{TLS_NAME}"

		def edit(cfg):
			tls_edit(pki, [server])(cfg)
			cfg["upstream"]["timeout_ms"] = 300
		v = veto_factory(edit=edit)
		deadline = time.monotonic() + 15	# bounded; 3 x 300 ms of silence is enough
		i = 0
		while silent.accepts < 2 and time.monotonic() < deadline:
			assert v.query(f"s{i}.silent.test", "A", timeout=5).rcode() == 2
			i += 1
			time.sleep(0.2)
		assert silent.accepts >= 2
		assert "no reply on the connection for" in v.stderr()
	finally:
		silent.stop()


class LossyTls(TlsListener):
	"""A DoT server that answers the queries of each read it gets in reverse order (A
	192.0.2.7) and never answers names starting with "d" (a terminator or upstream that loses
	them); records every question it reads."""

	def __init__(self, pki):
		self.seen = []
		super().__init__(pki)

	def accepted(self, c):
		threading.Thread(target=self.serve, args=(c,), daemon=True).start()

	def serve(self, c):
		import dns.message
		import dns.rrset
		try:
			c.settimeout(0.2)
			t = self.ctx.wrap_socket(c, server_side=True)
		except OSError:
			c.close()
			return
		self.conns.append(t)
		buf = b""
		while not self.stopping:
			try:
				data = t.recv(65536)
			except TimeoutError:
				continue
			except OSError:
				return
			if not data:
				return
			buf += data
			batch = []
			while len(buf) >= 2 and len(buf) >= 2 + (buf[0] << 8 | buf[1]):
				n = buf[0] << 8 | buf[1]
				batch.append(dns.message.from_wire(buf[2:2 + n]))
				buf = buf[2 + n:]
			out = b""
			for q in reversed(batch):
				name = q.question[0].name.to_text()
				self.seen.append(name)
				if name.startswith("d"):
					continue
				r = dns.message.make_response(q)
				r.answer.append(dns.rrset.from_text(name, 60, "IN", "A", "192.0.2.7"))
				w = r.to_wire()
				out += len(w).to_bytes(2, "big") + w
			try:
				t.sendall(out)
			except OSError:
				return

def test_dot_pipelined_every_query_answered(veto_factory, upstream, pki):
	"""Hundreds of queries in flight on one connection at once, answered out of order, some
	never: every client query gets an answer, the upstream's for the answered names and
	SERVFAIL (within the request's 3 x timeout_ms) for the lost ones; none goes unanswered."""
	lossy = LossyTls(pki)
	try:
		def edit(cfg):
			tls_edit(pki, [f"tls://127.0.0.1:{lossy.port}#{TLS_NAME}"])(cfg)
			cfg["upstream"]["timeout_ms"] = 500
			# all 600 from one address: above the default caps (256, 1024), which would
			# answer SERVFAIL on purpose
			cfg["server"]["queries_per_client"] = 2000
			cfg["server"]["queries_per_prefix"] = 2000
		v = veto_factory(edit=edit)
		names = [f"{'d' if i % 10 == 3 else 'a'}{i}.lossy.test" for i in range(600)]
		# six clients with 100 each in flight: a socket's burst of replies stays well inside
		# the default receive buffer (one socket with all 600 would overflow it)
		replies = {}

		def client(chunk):
			replies.update(pipelined(v.port, chunk, window=len(chunk), timeout=30))
		threads = [threading.Thread(target=client, args=(names[k::6],)) for k in range(6)]
		for t in threads:
			t.start()
		for t in threads:
			t.join(timeout=40)
		missing = [n for n in names if n not in replies]
		assert missing == [], f"{len(missing)} queries unanswered, e.g. {missing[:5]}"
		for n in names:
			r = replies[n]
			if n.startswith("d"):
				assert r.rcode() == 2, (n, r)
			else:
				assert r.rcode() == 0 and answer_values(r, "A") == ["192.0.2.7"], (n, r)
		seen = set(lossy.seen)
		assert all(f"{n}." in seen for n in names)
		st = stats(v)
		assert st["sent_tls"] >= len(names)
	finally:
		lossy.stop()


def test_metrics_name_servers_as_written(veto_factory, upstream, dot, pki, tmp_path):
	"""/metrics labels each server as written in upstream.servers: errors for a DoT server with
	a certificate from another CA, answers (latency) for a good DoT and a DoH server."""
	from httpclient import get, parse_metrics, value
	bad = Dnsdist(tmp_path / "bad", upstream.address, pki / "stranger.pem",
		      pki / "stranger.key").start()
	try:
		bad_s = f"tls://127.0.0.1:{bad.port}#{TLS_NAME}"
		dot_s = f"tls://127.0.0.1:{dot.port}#{TLS_NAME}"
		doh_s = f"https://{TLS_NAME}:{dot.doh_port}/dns-query#127.0.0.1"
		port = free_port(["127.0.0.1"])

		def edit(cfg):
			tls_edit(pki, [bad_s, dot_s])(cfg)
			cfg["http"] = {"listen": [f"127.0.0.1:{port}"]}
		v = veto_factory(edit=edit)
		assert v.query("m1.metrics.test", "A").rcode() == 0
		r = get(port, "/metrics")
		assert r.status == 200
		m, _ = parse_metrics(r.text)
		assert value(m, "veto_upstream_errors_total", server=bad_s) >= 1
		assert value(m, "veto_upstream_latency_seconds_count", server=dot_s) >= 1
		assert value(m, "veto_upstream_tls_failures_total") >= 1
		assert value(m, "veto_upstream_tls_connections_total") >= 1
		v.rewrite_config(lambda cfg: cfg["upstream"].update(servers=[doh_s]))
		v.send_signal(signal.SIGHUP)
		deadline = time.monotonic() + 10	# the reload is asynchronous
		i = 0
		while True:
			assert v.query(f"m{i}.metrics2.test", "A").rcode() == 0
			m, _ = parse_metrics(get(port, "/metrics").text)
			n = value(m, "veto_upstream_latency_seconds_count", server=doh_s)
			if n >= 1 or time.monotonic() > deadline:
				break
			i += 1
			time.sleep(0.1)
		assert n == 1
	finally:
		bad.stop()


def test_check_warns_about_unreadable_ca(tmp_path, veto_factory):
	"""`veto check` warns when the CA file of encrypted servers cannot be read; `veto serve`
	refuses to start with the reason."""
	missing = tmp_path / "missing.pem"
	v = veto_factory(start=False, edit=lambda cfg: cfg["upstream"].update(
		servers=["tls://127.0.0.1:853#dns.test"], tls_ca=str(missing)))
	p = run_veto(["check", "-c", str(v.config_file)])
	assert p.returncode == 0, p.stderr
	assert f"upstream.tls_ca: warning: cannot read '{missing}'" in p.stderr, p.stderr
	p = run_veto(["serve", "-c", str(v.config_file)], timeout=30)
	assert p.returncode != 0
	assert f"upstream.tls_ca: cannot load the CA certificates of '{missing}'" in p.stderr
