"""server.workers: several event loops. With server.udp_sockets: shared (the default) the main
loop reads the one UDP socket and another worker reads beside it only while the main loop is
behind: a burst it cannot keep up with is answered by both, every query once, and logged, and
a stop in the middle of one loses no answered query. With per_worker, SO_REUSEPORT sockets:
queries from many source ports (the kernel spreads them over the workers by 4-tuple hash) are
all answered; a reload swaps the policy of every worker; SIGTERM under load answers or logs
every query. With a devices: section, an attribution, a pin, an unpin and a forget apply on
every worker, a reload and a stop under load lose nothing, and the saved table has the
attribution."""

import errno
import json
import os
import re
import signal
import socket
import sqlite3
import threading
import time

import dns.message
import dns.rcode
import pytest

from conftest import (BLOCK_IPV4, GROUP_CLIENT, NOGROUP_CLIENT, SIGNATURE, answer_values,
		      attribution_groups, frame, make_query, run_veto, tcp_connect,
		      tcp_read_message, udp_exchange)
from fakeupstream import DEFAULT_A

SINK = GROUP_CLIENT["sink"]


def two_workers(cfg):
	"""Two workers, each with its own UDP sockets: the kernel spreads clients over them."""
	cfg["server"]["workers"] = 2
	cfg["server"]["udp_sockets"] = "per_worker"


def shared_workers(cfg):
	"""Two workers and the default server.udp_sockets: shared."""
	cfg["server"]["workers"] = 2


def wait_until(fn, timeout=10.0, step=0.05):
	deadline = time.monotonic() + timeout
	while True:
		v = fn()
		if v or time.monotonic() >= deadline:
			return v
		time.sleep(step)


def stats(v):
	p = run_veto(["stats", "-c", str(v.config_file), "--json"])
	assert p.returncode == 0, p.stderr
	return json.loads(p.stdout)


def thread_names(pid):
	out = []
	for tid in os.listdir(f"/proc/{pid}/task"):
		try:
			with open(f"/proc/{pid}/task/{tid}/comm") as f:
				out.append(f.read().strip())
		except FileNotFoundError:
			pass
	return out


def udp_query(v, name, src, timeout=3.0):
	"""One query from a fresh socket (a fresh source port): the parsed reply or None."""
	q = make_query(name, "A")
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=timeout)
	return dns.message.from_wire(wire) if wire is not None else None


def tcp_query(v, name, src, timeout=3.0):
	q = make_query(name, "A")
	s = tcp_connect("127.0.0.1", v.port, src=src, timeout=timeout)
	try:
		s.sendall(frame(q.to_wire()))
		wire = tcp_read_message(s, timeout)
	finally:
		s.close()
	return dns.message.from_wire(wire) if wire is not None else None


def test_workers_answer_from_many_ports(veto_factory, upstream):
	v = veto_factory(edit=two_workers)
	assert "veto-dns1" in thread_names(v.proc.pid), thread_names(v.proc.pid)
	assert "2 workers" in v.stderr()
	sent = 0
	for i in range(200):
		r = udp_query(v, f"fwd{i}.many.test", NOGROUP_CLIENT)
		assert r is not None and answer_values(r, "A") == [DEFAULT_A], (i, r)
		r = udp_query(v, "ads.test", SINK)
		assert r is not None and answer_values(r, "A") == [BLOCK_IPV4], (i, r)
		sent += 2
	for i in range(40):
		r = tcp_query(v, f"tcp{i}.many.test", NOGROUP_CLIENT)
		assert r is not None and answer_values(r, "A") == [DEFAULT_A], (i, r)
		r = tcp_query(v, "tracker.test", SINK)
		assert r is not None and answer_values(r, "A") == [BLOCK_IPV4], (i, r)
		sent += 2

	# every worker answered some, and the totals are the sum (published every 250 ms)
	def settled():
		s = stats(v)
		w = s["workers"]
		return s if w["queries_0"] + w["queries_1"] >= sent else None
	s = wait_until(settled)
	assert s, stats(v)
	w = s["workers"]
	assert w["count"] == 2
	assert w["queries_0"] > 0 and w["queries_1"] > 0, w
	assert s["queries"]["total"] == w["queries_0"] + w["queries_1"]
	assert s["queries"]["blocked"] >= 240
	assert s["queries"]["tcp"] >= 80
	names = {r["qname"] for r in v.wait_log(count=sent)}
	assert all(f"fwd{i}.many.test" in names for i in range(200))


# --- server.udp_sockets: shared (the default) -------------------------------------------------

BURST = 4000


def burst_while_stopped(v, names, src=SINK):
	"""Stops the daemon (SIGSTOP), sends one query per name from one socket, so that they wait in
	the socket's buffer, and lets it go on (SIGCONT): the main loop then has more waiting than
	it reads in 5 ms. Returns the socket and the query IDs by name."""
	with open("/proc/sys/net/core/rmem_max") as f:
		rmem_max = int(f.read())
	if os.geteuid() != 0 and rmem_max < 4 << 20:
		# the daemon's socket holds a burst only with SO_RCVBUFFORCE (root) or a large limit
		pytest.skip(f"net.core.rmem_max {rmem_max}: a {len(names)}-query burst does not fit")
	sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	try:
		sock.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_RCVBUFFORCE", 33), 8 << 20)
	except OSError:
		sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
	sock.bind((src, 0))
	ids = {}
	v.send_signal(signal.SIGSTOP)
	try:
		for i, name in enumerate(names):
			q = make_query(name, "A")
			q.id = i % 65536
			ids[q.id] = name
			sock.sendto(q.to_wire(), ("127.0.0.1", v.port))
	finally:
		v.send_signal(signal.SIGCONT)
	return sock, ids


def read_replies(sock, ids, timeout):
	"""Replies to the burst until each ID has one or timeout seconds pass: {name: A values}."""
	got = {}
	deadline = time.monotonic() + timeout
	while len(got) < len(ids):
		left = deadline - time.monotonic()
		if left <= 0:
			break
		sock.settimeout(left)
		try:
			wire, _ = sock.recvfrom(65535)
		except socket.timeout:
			break
		r = dns.message.from_wire(wire)
		name = ids.get(r.id)
		assert name is not None and name not in got, f"unexpected or second reply {r.id}"
		got[name] = answer_values(r, "A")
	return got


def burst_all_answered(v, names):
	"""burst_while_stopped, then every query's answer (asserted): {name: A values}."""
	sock, ids = burst_while_stopped(v, names)
	try:
		got = read_replies(sock, ids, timeout=30)
	finally:
		sock.close()
	assert len(got) == len(names), f"{len(names) - len(got)} of {len(names)} unanswered"
	return got


def test_shared_socket_one_loop_until_behind(veto_factory, upstream):
	"""Queries one at a time never fill a batch: the main loop answers them all and asks for
	no help. A burst it cannot read in 5 ms is answered by both workers, every query once,
	and logged once; the counters add up."""
	v = veto_factory(edit=shared_workers)
	s = stats(v)
	base, base_blocked = s["queries"]["total"], s["queries"]["blocked"]  # the start's probes
	for i in range(100):
		r = udp_query(v, f"one{i}.ads.test", SINK)
		assert r is not None and answer_values(r, "A") == [BLOCK_IPV4], (i, r)
	s = stats(v)
	w = s["workers"]
	assert w["udp_sockets"] == "shared", w
	assert w["queries_0"] == base + 100 and w["queries_1"] == 0, w
	assert w["help_requests"] == 0, w
	# the one socket is not open to another program's SO_REUSEADDR bind (which would take
	# its queries): the workers' copies of it must not have set the option on it
	other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
	try:
		with pytest.raises(OSError) as e:
			other.bind(("127.0.0.1", v.port))
		assert e.value.errno == errno.EADDRINUSE
	finally:
		other.close()

	names = [f"burst{i}.ads.test" for i in range(BURST)]
	got = burst_all_answered(v, names)
	assert all(a == [BLOCK_IPV4] for a in got.values())

	def settled():
		s = stats(v)
		w = s["workers"]
		return s if w["queries_0"] + w["queries_1"] >= base + 100 + BURST else None
	s = wait_until(settled)
	assert s, stats(v)
	w = s["workers"]
	assert w["help_requests"] >= 1, w
	assert w["queries_1"] > 0, w  # the other worker read part of the burst
	assert w["queries_0"] + w["queries_1"] == base + 100 + BURST == s["queries"]["total"], s
	assert s["queries"]["blocked"] == base_blocked + 100 + BURST
	logged = [r["qname"] for r in v.wait_log(lambda r: r["qname"].startswith("burst"),
						  count=BURST, timeout=15)]
	assert sorted(logged) == sorted(names)


def test_shared_socket_stop_during_burst(veto_factory, upstream):
	"""SIGTERM while both workers read a burst: exit 0, every answered query is logged, and
	the log drops nothing."""
	v = veto_factory(edit=shared_workers)
	names = [f"stop{i}.ads.test" for i in range(BURST)]
	sock, ids = burst_while_stopped(v, names)
	try:
		time.sleep(0.02)
		v.send_signal(signal.SIGTERM)
		got = read_replies(sock, ids, timeout=5)
	finally:
		sock.close()
	assert v.wait_exit() == 0, v.stderr()[-2000:]
	assert got, "nothing answered before the stop"
	assert all(a == [BLOCK_IPV4] for a in got.values())
	assert not v.sanitizer_reports(), v.stderr()[-4000:]
	logged = {r["qname"] for r in v.log_records()}
	missing = [n for n in got if n not in logged]
	assert not missing, f"{len(missing)} of {len(got)} answered not logged: {missing[:5]}"
	assert "query log records dropped 0" in v.stderr(), v.stderr()[-2000:]
	m = re.search(r"asked another worker for help with UDP (\d+) times", v.stderr())
	assert m and int(m.group(1)) >= 1, v.stderr()[-2000:]


def test_shared_socket_helper_uses_reloaded_policy(veto_factory, upstream):
	"""After a reload says ok, a burst of names the new policy blocks is blocked whichever
	worker reads it: the helping worker swapped the policy too."""
	v = veto_factory(edit=shared_workers)
	v.rewrite_config(lambda c: c["lists"]["ads"]["domains"].append("newly.test"))
	v.send_signal(signal.SIGHUP)
	assert wait_until(lambda: "reload: ok" in v.stderr()), v.stderr()
	names = [f"n{i}.newly.test" for i in range(BURST)]
	got = burst_all_answered(v, names)
	wrong = [n for n, a in got.items() if a != [BLOCK_IPV4]]
	assert not wrong, f"{len(wrong)} not blocked, e.g. {wrong[:3]}"
	assert not upstream.queries(name=names[0]) and not upstream.queries(name=names[-1])
	w = wait_until(lambda: (lambda w: w if w["reloads_1"] == 1 and w["queries_1"] > 0
				 else None)(stats(v)["workers"]))
	assert w, stats(v)["workers"]


class Load:
	"""Threads sending queries from fresh sockets until stopped; records what was answered."""

	def __init__(self, v, threads=4, blocked_every=3):
		self.v = v
		self.stop = threading.Event()
		self.lock = threading.Lock()
		self.answered = []	# (name, blocked)
		self.wrong = []
		self.threads = [threading.Thread(target=self.run, args=(t, blocked_every))
				for t in range(threads)]

	def run(self, t, blocked_every):
		i = 0
		while not self.stop.is_set():
			i += 1
			blocked = i % blocked_every == 0
			name = f"b{t}-{i}.ads.test" if blocked else f"load{t}-{i}.test"
			try:
				r = udp_query(self.v, name, SINK if blocked else NOGROUP_CLIENT, timeout=1.0)
			except OSError:
				r = None
			if r is None:
				continue
			want = BLOCK_IPV4 if blocked else DEFAULT_A
			with self.lock:
				if answer_values(r, "A") == [want]:
					self.answered.append((name, blocked))
				else:
					self.wrong.append((name, r.rcode()))

	def __enter__(self):
		for t in self.threads:
			t.start()
		return self

	def __exit__(self, *exc):
		self.stop.set()
		for t in self.threads:
			t.join(timeout=10)
		assert not any(t.is_alive() for t in self.threads)


def test_reload_under_load_swaps_every_worker(veto_factory, upstream):
	v = veto_factory(edit=two_workers)
	with Load(v) as load:
		wait_until(lambda: len(load.answered) >= 50)
		v.rewrite_config(lambda c: c["lists"]["ads"]["domains"].append("newly.test"))
		v.send_signal(signal.SIGHUP)
		assert wait_until(lambda: "reload: ok" in v.stderr()), v.stderr()
		# "reload: ok" comes once every worker has the new policy: many source ports, at
		# once, and each is blocked
		for i in range(200):
			r = udp_query(v, "newly.test", SINK)
			assert r is not None and answer_values(r, "A") == [BLOCK_IPV4], (i, r)
		n = len(load.answered)
		assert wait_until(lambda: len(load.answered) >= n + 50), "load stopped after the reload"
	assert not load.wrong, load.wrong[:5]
	assert not upstream.queries(name="newly.test")
	w = stats(v)["workers"]
	assert w["reloads_0"] == 1 and w["reloads_1"] == 1, w
	assert w["queries_0"] > 0 and w["queries_1"] > 0, w


def test_sigterm_under_load_logs_every_answer(veto_factory, upstream):
	v = veto_factory(edit=two_workers)
	with Load(v, threads=4, blocked_every=2) as load:
		assert wait_until(lambda: len(load.answered) >= 300), len(load.answered)
		v.send_signal(signal.SIGTERM)
		assert v.wait_exit() == 0, v.stderr()
	assert not load.wrong, load.wrong[:5]
	assert not v.sanitizer_reports(), v.stderr()[-4000:]
	logged = {r["qname"] for r in v.log_records()}
	answered = [name for name, _ in load.answered]
	missing = [name for name in answered if name not in logged]
	assert not missing, f"{len(missing)} of {len(answered)} answered queries not logged: {missing[:5]}"
	blocked = [name for name, b in load.answered if b]
	assert blocked and all(n in logged for n in blocked)
	err = v.stderr()
	assert "stopped:" in err and "query log records dropped 0" in err, err[-2000:]


# --- device identity with several workers (the table on the main loop, a snapshot on the
# others, observations sent back: resolver/devices/devices_share.h) --------------------------


def devices_workers(work):
	"""workers: 2 with a device table: 127.0.0.40/29 is 'home' (ads sinkholed) by address,
	unless the vendor Xiaomi ('banned': refused) or a pin ('staff': ads NXDOMAIN) says
	otherwise. No lease, ARP or OUI source: every device is keyed by its address."""
	def edit(cfg):
		two_workers(cfg)
		cfg["state_dir"] = str(work / "state")
		cfg["devices"] = {"signatures": {"Xiaomi": [SIGNATURE]}, "arp": False, "oui": False}
		cfg["groups"] = attribution_groups() + cfg["groups"]
	return edit


@pytest.fixture
def dveto(veto_factory, tmp_path):
	work = tmp_path / "dw"
	work.mkdir()
	v = veto_factory(edit=devices_workers(work))
	v.work = work
	return v


def rcodes_from_many_ports(v, name, src, n):
	"""n queries, each from a fresh source port (the kernel spreads them over the workers)."""
	out = []
	for _ in range(n):
		r = udp_query(v, name, src)
		out.append(r.rcode() if r is not None else None)
	return out


def worker_queries(v):
	w = stats(v)["workers"]
	return [w["queries_0"], w["queries_1"]]


def devices_cli(v, *args):
	return run_veto(["devices", *args, "-c", str(v.config_file)])


def full_copies(v):
	return stats(v)["devices_shared"]["snapshots_full"]


def test_known_devices_queries_make_no_full_copy(dveto, upstream):
	"""Queries of known devices change nothing the workers' copy of the device table holds
	(last-seen times, counts): the main loop's idle tick, every second, makes no full copy of
	it (it did, under any traffic). The device is attributed first, so it is in the copy."""
	v = dveto
	src = "127.0.0.43"
	r = udp_query(v, SIGNATURE, src)
	assert r is not None and r.rcode() == dns.rcode.NOERROR
	assert "vendor 'Xiaomi'" in v.wait_stderr("vendor 'Xiaomi'"), v.stderr()[-2000:]
	# the attribution's own full copy comes within a second or so: wait until none follows
	deadline = time.monotonic() + 15
	before = full_copies(v)
	while True:
		time.sleep(1.5)
		now = full_copies(v)
		if now == before or time.monotonic() > deadline:
			break
		before = now
	assert now == before, "full copies kept coming with no queries"
	end = time.monotonic() + 3  # three idle ticks of steady queries, bounded
	n = 0
	while time.monotonic() < end:
		assert rcodes_from_many_ports(v, "steady.test", src, 10) == [dns.rcode.REFUSED] * 10
		n += 10
	time.sleep(1.2)  # one more tick
	assert full_copies(v) == before, (n, stats(v)["devices_shared"])


def test_attribution_applies_on_every_worker(dveto, upstream):
	v = dveto
	src = "127.0.0.41"
	assert rcodes_from_many_ports(v, "pre.test", src, 40) == [dns.rcode.NOERROR] * 40
	# the evidence, through whichever worker gets it; the main loop attributes it
	r = udp_query(v, SIGNATURE, src)
	assert r is not None and r.rcode() == dns.rcode.NOERROR
	assert "vendor 'Xiaomi'" in v.wait_stderr("vendor 'Xiaomi'"), v.stderr()[-2000:]
	before = worker_queries(v)
	got = rcodes_from_many_ports(v, "post.test", src, 100)
	assert got == [dns.rcode.REFUSED] * 100, got
	after = worker_queries(v)
	assert after[0] > before[0] and after[1] > before[1], (before, after)  # both refused some
	s = stats(v)
	assert s["devices_shared"]["observations"] > 0, s
	assert s["devices_shared"]["dropped"] == 0, s
	assert not upstream.queries(name="post.test")
	# forgotten through the control channel: every worker answers it again at once
	p = devices_cli(v, "forget", src)
	assert p.returncode == 0 and p.stdout.startswith("running daemon"), p.stdout + p.stderr
	assert rcodes_from_many_ports(v, "again.test", src, 60) == [dns.rcode.NOERROR] * 60


def test_pin_and_unpin_apply_on_every_worker(dveto):
	v = dveto
	src = "127.0.0.42"
	r = udp_query(v, "ads.test", src)
	assert r is not None and answer_values(r, "A") == [BLOCK_IPV4]  # home: sinkholed
	p = devices_cli(v, "pin", src, "--group", "staff")
	assert p.returncode == 0 and p.stdout.startswith("running daemon"), p.stdout + p.stderr
	# the reply comes once every worker has the pin: no wait here
	before = worker_queries(v)
	got = rcodes_from_many_ports(v, "ads.test", src, 60)
	assert got == [dns.rcode.NXDOMAIN] * 60, got
	after = worker_queries(v)
	assert after[0] > before[0] and after[1] > before[1], (before, after)
	p = devices_cli(v, "unpin", src)
	assert p.returncode == 0, p.stdout + p.stderr
	for i in range(60):
		r = udp_query(v, "ads.test", src)
		assert r is not None and answer_values(r, "A") == [BLOCK_IPV4], (i, r)


def test_reload_and_stop_under_load_with_devices(dveto, upstream):
	v = dveto
	src = "127.0.0.43"
	r = udp_query(v, SIGNATURE, src)
	assert r is not None and r.rcode() == dns.rcode.NOERROR
	v.wait_stderr("vendor 'Xiaomi'")
	with Load(v, threads=4, blocked_every=2) as load:
		assert wait_until(lambda: len(load.answered) >= 100), len(load.answered)
		v.rewrite_config(lambda c: c["lists"]["ads"]["domains"].append("newly.test"))
		v.send_signal(signal.SIGHUP)
		assert wait_until(lambda: "reload: ok" in v.stderr()), v.stderr()[-2000:]
		# the attribution outlives the reload, on every worker
		assert rcodes_from_many_ports(v, "kept.test", src, 40) == [dns.rcode.REFUSED] * 40
		r = udp_query(v, "newly.test", SINK)
		assert r is not None and answer_values(r, "A") == [BLOCK_IPV4]
		n = len(load.answered)
		assert wait_until(lambda: len(load.answered) >= n + 100), "load stopped after the reload"
		v.send_signal(signal.SIGTERM)
		assert v.wait_exit() == 0, v.stderr()[-4000:]
	assert not load.wrong, load.wrong[:5]
	assert not v.sanitizer_reports(), v.stderr()[-4000:]
	logged = {r["qname"] for r in v.log_records()}
	missing = [name for name, _ in load.answered if name not in logged]
	assert not missing, f"{len(missing)} of {len(load.answered)} answered not logged: {missing[:5]}"
	assert "query log records dropped 0" in v.stderr(), v.stderr()[-2000:]
	# the table saved at stop has the attribution
	db = sqlite3.connect(f"file:{v.work / 'state' / 'devices.db'}?mode=ro", uri=True)
	try:
		rows = db.execute("SELECT vendor, vendor_source FROM devices WHERE key = ?",
				  (f"ip:{src}",)).fetchall()
	finally:
		db.close()
	assert rows and rows[0][0] == "Xiaomi", rows


def test_check_accepts_workers_with_devices(veto_factory):
	v = veto_factory(start=False)

	def edit(c):
		c["server"]["workers"] = 2
		c["devices"] = {"arp": False, "oui": False}
	v.rewrite_config(edit)
	p = run_veto(["check", "-c", str(v.config_file)])
	assert p.returncode == 0, p.stdout + p.stderr
