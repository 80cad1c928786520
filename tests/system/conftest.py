"""Fixtures for the system tests: the real veto binary on loopback, a fake upstream, clients.

Environment:
  VETO_TEST_WORKERS  server.workers for every daemon (unset: 1)
  VETO_BIN         the veto binary (default $VETO_SOURCE_DIR/build/veto); a missing binary fails
                   every test that needs it, nothing is skipped silently
  VETO_SOURCE_DIR  the source tree (default: two folders up from this file)

Clients stand for groups by their source address (see GROUP_CLIENT); the base configuration:
  127.0.0.1  group 'probe' (used only by the readiness probe; blocks probe.veto-test)
  127.0.0.2  group 'sink'      block [ads, canary, filelist]  (action: block.action = sinkhole)
  127.0.0.3  group 'nx'        block [ads]                    action nxdomain
  127.0.0.4  group 'nodata'    block [ads]                    action nodata
  127.0.0.5  group 'refused'   block [ads]                    action refused
  127.0.0.6  group 'allowover' block [ads], allow [exceptions]
  127.0.0.7  group 'deny'      default deny, allow [portal]   action refused
  ::1        group 'v6'        block [ads]                    action nxdomain
  127.0.0.9  no group (forwarded unfiltered)
  127.0.1.1  outside server.allow (127.0.0.0/24, ::1/128): REFUSED
"""

import copy
import json
import os
import pwd
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import dns.edns
import dns.flags
import dns.message
import dns.rdatatype
import pytest
import yaml

from fakeupstream import FakeUpstream, free_port

HERE = Path(__file__).resolve().parent
SOURCE_DIR = Path(os.environ.get("VETO_SOURCE_DIR") or HERE.parent.parent)
VETO_BIN = Path(os.environ.get("VETO_BIN") or SOURCE_DIR / "build" / "veto")

PROBE_CLIENT = "127.0.0.1"
PROBE_NAME = "probe.veto-test"
NOGROUP_CLIENT = "127.0.0.9"
OUTSIDE_CLIENT = "127.0.1.1"
GROUP_CLIENT = {
	"sink": "127.0.0.2",
	"nx": "127.0.0.3",
	"nodata": "127.0.0.4",
	"refused": "127.0.0.5",
	"allowover": "127.0.0.6",
	"deny": "127.0.0.7",
}
BLOCK_IPV4 = "10.11.12.13"
# the device-attribution tests' handset signature and the groups it is judged by
SIGNATURE = "connect.rom.miui.com"


def attribution_groups():
	"""banned (Xiaomi handsets, refused), staff (10.99/16) and home (127.0.0.40/29): a new
	list each call, for a test to put before its configuration's groups."""
	return [
		{"name": "banned", "vendors": ["Xiaomi"], "default": "deny", "action": "refused"},
		{"name": "staff", "clients": ["10.99.0.0/16"], "block": ["ads"], "action": "nxdomain"},
		{"name": "home", "clients": ["127.0.0.40/29"], "block": ["ads"]},
	]


BLOCK_IPV6 = "fd00::13"
BLOCK_TTL = 42
TIMEOUT_MS = 300

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:", "UndefinedBehaviorSanitizer")


def ipv6_loopback_works():
	try:
		s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
		s.bind(("::1", 0))
		s.close()
		return True
	except OSError:
		return False


HAVE_IPV6 = ipv6_loopback_works()
CURRENT_USER = pwd.getpwuid(os.geteuid()).pw_name
# VETO_TEST_WORKERS=N runs every daemon with server.workers: N; otherwise 1, not the default
# (one per CPU): tests that count cache hits or upstream queries from fresh source ports assume
# one cache, and with several workers such queries can reach another worker (server.udp_sockets
# per_worker: the kernel spreads them; shared: while the main loop is behind)
TEST_WORKERS = {"workers": int(os.environ.get("VETO_TEST_WORKERS") or 1)}


def base_config(port, upstreams, log_file, list_dir):
	"""The configuration every daemon test starts from (a dict, dumped as YAML)."""
	listen = [f"127.0.0.1:{port}"] + ([f"[::1]:{port}"] if HAVE_IPV6 else [])
	return {
		# the user running the tests: as root the daemon stays root (test_privdrop.py
		# covers the drop), otherwise the key changes nothing
		"server": {"listen": listen, "allow": ["127.0.0.0/24", "::1/128"], "user": CURRENT_USER,
			   **TEST_WORKERS},
		"upstream": {"servers": [u.address if hasattr(u, "address") else u for u in upstreams],
			     "timeout_ms": TIMEOUT_MS},
		"cache": {"entries": 1000, "min_ttl": 0, "max_ttl": 86400},
		"block": {"action": "sinkhole", "ipv4": BLOCK_IPV4, "ipv6": BLOCK_IPV6, "ttl": BLOCK_TTL},
		"lists": {
			"probe": {"domains": [PROBE_NAME]},
			"ads": {"domains": ["ads.test", "tracker.test"]},
			"canary": {"domains": ["use-application-dns.net"], "action": "nxdomain"},
			"filelist": {"files": [str(list_dir / "filelist.txt")]},
			"exceptions": {"domains": ["ok.ads.test"]},
			"portal": {"domains": ["portal.test"]},
		},
		"groups": [
			{"name": "probe", "clients": [f"{PROBE_CLIENT}/32"], "block": ["probe"]},
			{"name": "sink", "clients": [GROUP_CLIENT["sink"]], "block": ["ads", "canary", "filelist"]},
			{"name": "nx", "clients": [GROUP_CLIENT["nx"] + "/32"], "block": ["ads"], "action": "nxdomain"},
			{"name": "nodata", "clients": [GROUP_CLIENT["nodata"] + "/32"], "block": ["ads"],
			 "action": "nodata"},
			{"name": "refused", "clients": [GROUP_CLIENT["refused"] + "/32"], "block": ["ads"],
			 "action": "refused"},
			{"name": "allowover", "clients": [GROUP_CLIENT["allowover"] + "/32"], "block": ["ads"],
			 "allow": ["exceptions"]},
			{"name": "deny", "clients": [GROUP_CLIENT["deny"] + "/32"], "default": "deny",
			 "allow": ["portal"], "action": "refused"},
			{"name": "v6", "clients": ["::1/128"], "block": ["ads"], "action": "nxdomain"},
		],
		"log": {"queries": "all", "file": str(log_file)},
		# the daemon's own folder (the control socket is opened whenever state_dir is set)
		"state_dir": str(list_dir / "state"),
	}


FILELIST_TEXT = """# a hosts-format list file
0.0.0.0 filetrack.test
127.0.0.1 hostsa.test hostsb.test
||adblock.test^
*.wild.test
"""


def write_yaml(path, cfg):
	path.write_text(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False))


# --- DNS client helpers ---------------------------------------------------------------------

def family_of(addr):
	return socket.AF_INET6 if ":" in addr else socket.AF_INET


def make_query(name, qtype="A", id=None, edns=True, payload=1232, do=False, rd=True, cd=False):
	if edns:
		q = dns.message.make_query(name, qtype, use_edns=0, payload=payload, want_dnssec=do)
	else:
		assert not do, "DO needs EDNS"
		q = dns.message.make_query(name, qtype, use_edns=False)
	if id is not None:
		q.id = id
	if not rd:
		q.flags &= ~dns.flags.RD
	if cd:
		q.flags |= dns.flags.CD
	return q


def udp_exchange(wire, dst, port, src="127.0.0.9", timeout=3.0, want_id=None, sock=None):
	"""Sends wire over UDP from src, returns the first reply (bytes) whose ID is want_id (default:
	the ID of wire), or None after timeout seconds."""
	if want_id is None and len(wire) >= 2:
		want_id = struct.unpack("!H", wire[:2])[0]
	own = sock is None
	if own:
		sock = socket.socket(family_of(dst), socket.SOCK_DGRAM)
		sock.bind((src, 0))
	try:
		sock.sendto(wire, (dst, port))
		deadline = time.monotonic() + timeout
		while True:
			left = deadline - time.monotonic()
			if left <= 0:
				return None
			sock.settimeout(left)
			try:
				data, _ = sock.recvfrom(65535)
			except socket.timeout:
				return None
			if want_id is None or (len(data) >= 2 and struct.unpack("!H", data[:2])[0] == want_id):
				return data
	finally:
		if own:
			sock.close()


def tcp_connect(dst, port, src="127.0.0.9", timeout=3.0):
	s = socket.socket(family_of(dst), socket.SOCK_STREAM)
	s.settimeout(timeout)
	s.bind((src, 0))
	s.connect((dst, port))
	return s


def tcp_read_message(sock, timeout=3.0):
	"""Reads one length-prefixed message; None on EOF or timeout."""
	sock.settimeout(timeout)
	buf = b""
	try:
		while len(buf) < 2:
			chunk = sock.recv(2 - len(buf))
			if not chunk:
				return None
			buf += chunk
		n = struct.unpack("!H", buf)[0]
		body = b""
		while len(body) < n:
			chunk = sock.recv(n - len(body))
			if not chunk:
				return None
			body += chunk
		return body
	except (socket.timeout, ConnectionResetError):
		return None


def frame(wire):
	return struct.pack("!H", len(wire)) + wire


def ede_codes(msg):
	return [o.code for o in msg.options if o.otype == dns.edns.EDE]


def ede_texts(msg):
	return [o.text or "" for o in msg.options if o.otype == dns.edns.EDE]


def answer_values(msg, rdtype):
	out = []
	for rrset in msg.answer:
		if rrset.rdtype == dns.rdatatype.from_text(rdtype):
			out += [rd.to_text() for rd in rrset]
	return out


def answer_ttls(msg):
	return [rrset.ttl for rrset in msg.answer]


# --- the daemon -----------------------------------------------------------------------------

class Veto:
	"""One veto process with its configuration, log file and outputs in a folder of its own."""

	def __init__(self, binary, workdir, upstreams, edit=None):
		self.binary = binary
		self.dir = workdir
		self.dir.mkdir(parents=True, exist_ok=True)
		self.upstreams = upstreams
		self.port = free_port(["127.0.0.1"] + (["::1"] if HAVE_IPV6 else []))
		self.log_file = self.dir / "queries.jsonl"
		self.config_file = self.dir / "veto.yaml"
		self.stdout_file = self.dir / "stdout.txt"
		self.stderr_file = self.dir / "stderr.txt"
		(self.dir / "filelist.txt").write_text(FILELIST_TEXT)
		self.config = base_config(self.port, upstreams, self.log_file, self.dir)
		if edit:
			edit(self.config)
		write_yaml(self.config_file, self.config)
		self.proc = None
		self.returncode = None
		self.expected_exit = 0	# what the teardown expects (a test may change it)

	# life cycle

	def start(self, wait_ready=True, preexec_fn=None):
		"""preexec_fn runs in the child before exec (e.g. to lower its descriptor limit)."""
		env = dict(os.environ)
		env.setdefault("ASAN_OPTIONS", "detect_leaks=1:abort_on_error=1")
		env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
		self.returncode = None	# a restarted daemon is stopped again at teardown
		self._out = open(self.stdout_file, "wb")
		self._err = open(self.stderr_file, "wb")
		self.proc = subprocess.Popen([str(self.binary), "serve", "-c", str(self.config_file)],
					     stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._err,
					     cwd=self.dir, env=env, preexec_fn=preexec_fn)
		if wait_ready:
			self.wait_ready()
		return self

	def wait_ready(self, timeout=20.0):
		"""Polls with a query the probe group answers locally (the upstream sees nothing)."""
		deadline = time.monotonic() + timeout
		addrs = ["127.0.0.1"] + (["::1"] if HAVE_IPV6 else [])
		for addr in addrs:
			src = PROBE_CLIENT if addr == "127.0.0.1" else "::1"
			while True:
				if self.proc.poll() is not None:
					pytest.fail(f"veto exited with {self.proc.returncode} during startup:\n{self.stderr()}")
				if time.monotonic() > deadline:
					pytest.fail(f"veto did not answer on {addr}:{self.port} within {timeout} s:\n"
						    f"{self.stderr()}")
				q = make_query(PROBE_NAME, "A")
				if udp_exchange(q.to_wire(), addr, self.port, src=src, timeout=0.2) is not None:
					break
		for u in self.upstreams:
			if hasattr(u, "clear"):
				u.clear()

	def send_signal(self, sig):
		assert self.proc is not None and self.proc.poll() is None, "veto is not running"
		os.kill(self.proc.pid, sig)

	def wait_exit(self, timeout=15.0):
		try:
			self.returncode = self.proc.wait(timeout=timeout)
		except subprocess.TimeoutExpired:
			os.kill(self.proc.pid, signal.SIGKILL)
			self.proc.wait(timeout=5)
			self.returncode = None
			pytest.fail(f"veto did not exit within {timeout} s (killed):\n{self.stderr()}")
		finally:
			for f in (self._out, self._err):
				f.close()
		return self.returncode

	def stop(self, sig=signal.SIGTERM, timeout=15.0):
		"""Stops veto by PID and returns its exit code."""
		if self.proc is None:
			return None
		if self.proc.poll() is None and self.returncode is None:
			os.kill(self.proc.pid, sig)
		if self.returncode is None:
			self.wait_exit(timeout)
		return self.returncode

	def running(self):
		return self.proc is not None and self.proc.poll() is None

	def stderr(self):
		try:
			return self.stderr_file.read_text(errors="replace")
		except FileNotFoundError:
			return ""

	def stdout(self):
		try:
			return self.stdout_file.read_text(errors="replace")
		except FileNotFoundError:
			return ""

	def sanitizer_reports(self):
		err = self.stderr()
		return [m for m in SANITIZER_MARKERS if m in err]

	def rewrite_config(self, edit):
		cfg = copy.deepcopy(self.config)
		edit(cfg)
		self.config = cfg
		write_yaml(self.config_file, cfg)

	# queries

	def query(self, name, qtype="A", src=NOGROUP_CLIENT, tcp=False, dst="127.0.0.1", timeout=3.0,
		  **kw):
		"""Sends a query, returns the parsed reply (asserts that one came)."""
		q = make_query(name, qtype, **kw)
		wire = self.exchange(q.to_wire(), src=src, tcp=tcp, dst=dst, timeout=timeout)
		assert wire is not None, f"no reply to {name} {qtype} from {src} over {'tcp' if tcp else 'udp'}"
		r = dns.message.from_wire(wire)
		assert r.id == q.id
		return r

	def exchange(self, wire, src=NOGROUP_CLIENT, tcp=False, dst="127.0.0.1", timeout=3.0):
		"""Raw exchange: the reply bytes or None."""
		if not tcp:
			return udp_exchange(wire, dst, self.port, src=src, timeout=timeout)
		s = tcp_connect(dst, self.port, src=src, timeout=timeout)
		try:
			s.sendall(frame(wire))
			return tcp_read_message(s, timeout)
		finally:
			s.close()

	def assert_alive(self):
		"""The daemon still runs and answers a fresh forwarded query."""
		assert self.running(), f"veto died:\n{self.stderr()}"
		name = f"alive-{time.monotonic_ns()}.test"
		r = self.query(name, "A", src=NOGROUP_CLIENT)
		assert r.rcode() == 0 and answer_values(r, "A"), f"unexpected reply to liveness query: {r}"

	# query log

	def log_records(self, include_probe=False):
		try:
			text = self.log_file.read_text()
		except FileNotFoundError:
			return []
		out = []
		for line in text.split("\n")[:-1]:	# a last line without '\n' is still being written
			rec = json.loads(line)
			if include_probe or rec.get("qname") != PROBE_NAME:
				out.append(rec)
		return out

	def raw_log_lines(self):
		try:
			return self.log_file.read_text().split("\n")[:-1]
		except FileNotFoundError:
			return []

	def wait_log(self, pred=lambda r: True, count=1, timeout=5.0):
		"""Waits (bounded) until count records satisfy pred; returns the matching records."""
		deadline = time.monotonic() + timeout
		while True:
			got = [r for r in self.log_records() if pred(r)]
			if len(got) >= count or time.monotonic() >= deadline:
				return got
			time.sleep(0.02)

	def wait_stderr(self, needle, timeout=5.0):
		deadline = time.monotonic() + timeout
		while True:
			err = self.stderr()
			if needle in err or time.monotonic() >= deadline:
				return err
			time.sleep(0.02)


# --- fixtures -------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def veto_bin():
	if not VETO_BIN.is_file() or not os.access(VETO_BIN, os.X_OK):
		pytest.fail(f"veto binary not found: {VETO_BIN} (set VETO_BIN or build it into "
			    f"$VETO_SOURCE_DIR/build)")
	return VETO_BIN


@pytest.fixture
def upstream():
	fake = FakeUpstream()
	yield fake
	fake.stop()
	assert not fake.errors, f"fake upstream errors: {fake.errors}"


@pytest.fixture
def make_upstream():
	made = []

	def make(**kw):
		fake = FakeUpstream(**kw)
		made.append(fake)
		return fake
	yield make
	for fake in made:
		fake.stop()


@pytest.fixture
def veto_factory(veto_bin, tmp_path, upstream):
	"""make(upstreams=None, edit=None, start=True, preexec_fn=None) -> Veto. Every daemon is stopped with SIGTERM
	at teardown; it must exit 0 without sanitizer reports."""
	made = []

	def make(upstreams=None, edit=None, start=True, preexec_fn=None):
		v = Veto(veto_bin, tmp_path / f"veto{len(made)}", upstreams or [upstream], edit)
		made.append(v)
		if start:
			v.start(preexec_fn=preexec_fn)
		return v
	yield make
	problems = []
	for v in made:
		if v.proc is None:
			continue
		code = v.stop()
		if code != v.expected_exit:
			problems.append(f"veto exited with {code} (expected {v.expected_exit}):\n{v.stderr()[-3000:]}")
		reports = v.sanitizer_reports()
		if reports:
			problems.append(f"sanitizer reports {reports}:\n{v.stderr()[-6000:]}")
	assert not problems, "\n".join(problems)


@pytest.fixture
def pg_server():
	"""A private PostgreSQL server, started (pgserver.py); skipped where the package is missing."""
	from pgserver import PgServer
	pg = PgServer()
	try:
		pg.start()
		yield pg
	finally:
		pg.cleanup()


@pytest.fixture
def veto(veto_factory):
	return veto_factory()


def run_veto(args, timeout=30, cwd=None):
	"""Runs a veto subcommand to completion: CompletedProcess with text output."""
	p = subprocess.run([str(VETO_BIN), *args], capture_output=True, text=True, timeout=timeout,
			   cwd=cwd)
	reports = [m for m in SANITIZER_MARKERS if m in p.stderr]
	assert not reports, f"sanitizer reports from veto {' '.join(args)}:\n{p.stderr}"
	return p
