"""Life cycle: startup, SIGHUP reload (valid and invalid), log reopen, SIGTERM/SIGINT shutdown with
the log flushed, bind failures."""

import os
import re
import signal
import sqlite3
import socket
import time

import dns.rcode
import pytest

from conftest import (BLOCK_IPV4, GROUP_CLIENT, HAVE_IPV6, NOGROUP_CLIENT, Veto, answer_values,
		      make_query)
from fakeupstream import DEFAULT_A, Answer, Delay

OPS_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (error|warning|info|debug): \S")


def wait_until(fn, timeout=5.0, step=0.05):
	deadline = time.monotonic() + timeout
	while True:
		v = fn()
		if v or time.monotonic() >= deadline:
			return v
		time.sleep(step)


def test_startup_logs_each_listener(veto):
	err = veto.stderr()
	addrs = ["127.0.0.1"] + (["::1"] if HAVE_IPV6 else [])
	for addr in addrs:
		for proto in ("udp", "tcp"):
			assert re.search(rf"{re.escape(addr)}\]?:{veto.port}\b.*{proto}", err), \
				f"no '{proto}' listener line for {addr}:{veto.port} in:\n{err}"
	lines = [line for line in err.splitlines() if line.strip()]
	assert lines and all(OPS_LINE.match(line) for line in lines), f"operational lines format:\n{err}"


def test_startup_reports_warnings_and_skipped_lines(veto_factory):
	"""Warnings (the level said once) and the skipped lines of the lists (info: the first five of
	a file, then a count) are log lines at start-up, like every other message."""
	v = veto_factory(start=False)
	bad = v.dir / "bad.txt"
	bad.write_text("".join(f"bad{i} name with spaces\n" for i in range(7)) + "ok.test\n")

	def edit(c):
		c["lists"]["spare"] = {"domains": ["spare.test"]}
		c["lists"]["filelist"]["files"].append(str(bad))
	v.rewrite_config(edit)
	v.start()
	err = v.stderr()
	lines = [line for line in err.splitlines() if line.strip()]
	assert lines and all(OPS_LINE.match(line) for line in lines), f"operational lines format:\n{err}"
	unused = [line for line in lines if "lists.spare" in line]
	assert len(unused) == 1, err
	assert re.search(r"Z warning: \S+:\d+:\d+: lists\.spare: used by no group$", unused[0]), err
	skipped = [line for line in lines if "bad.txt" in line]
	assert len(skipped) == 6, err
	assert all(re.search(r"Z info: \S+bad\.txt:\d+: skipped: ", line) for line in skipped[:5]), err
	assert re.search(r"Z info: \S+bad\.txt: skipped 7 lines in total, the first 5 shown$", skipped[5]), err


def test_reload_reports_warnings_and_skipped_lines(veto):
	"""A reload reports like the start: the level said once, skipped lines as info."""
	bad = veto.dir / "bad2.txt"
	bad.write_text("bad name\nok2.test\n")

	def edit(c):
		c["lists"]["spare2"] = {"domains": ["spare2.test"]}
		c["lists"]["filelist"]["files"].append(str(bad))
	veto.rewrite_config(edit)
	veto.send_signal(signal.SIGHUP)
	assert wait_until(lambda: "reload: ok" in veto.stderr(), 10), veto.stderr()
	lines = veto.stderr().splitlines()
	assert any(re.search(r"Z warning: \S+:\d+:\d+: lists\.spare2: used by no group$", ln)
		   for ln in lines), veto.stderr()
	assert any(re.search(r"Z info: \S+bad2\.txt:1: skipped: ", ln) for ln in lines), veto.stderr()


def test_sighup_reload_blocks_cached_name_at_once(veto, upstream):
	r = veto.query("later-blocked.test", "A", src=GROUP_CLIENT["sink"])
	assert answer_values(r, "A") == [DEFAULT_A]
	veto.query("later-blocked.test", "A", src=GROUP_CLIENT["sink"])	# now cached
	assert len(upstream.queries(name="later-blocked.test")) == 1
	veto.rewrite_config(lambda c: c["lists"]["ads"]["domains"].append("later-blocked.test"))
	veto.send_signal(signal.SIGHUP)

	def blocked():
		r = veto.query("later-blocked.test", "A", src=GROUP_CLIENT["sink"])
		return answer_values(r, "A") == [BLOCK_IPV4]
	assert wait_until(blocked, 10), f"reload did not take effect:\n{veto.stderr()}"
	# the name is still forwarded (from the cache) for a client in no group
	r = veto.query("later-blocked.test", "A", src=NOGROUP_CLIENT)
	assert answer_values(r, "A") == [DEFAULT_A]
	assert len(upstream.queries(name="later-blocked.test")) == 1
	assert "reload" in veto.stderr().lower()


def test_sighup_reload_unblocks(veto, upstream):
	assert answer_values(veto.query("tracker.test", src=GROUP_CLIENT["sink"]), "A") == [BLOCK_IPV4]
	veto.rewrite_config(lambda c: c["lists"]["ads"].update(domains=["ads.test"]))
	veto.send_signal(signal.SIGHUP)
	assert wait_until(lambda: answer_values(veto.query("tracker.test", src=GROUP_CLIENT["sink"]), "A")
			  == [DEFAULT_A], 10)


INVALID_EDITS = [
	# (description, yaml text replacing the config, expected line, expected key path)
	("unknown key", "server:\n  lisen: [\"127.0.0.1:1\"]\n", 2, "server.lisen"),
	("bad action", "block:\n  action: sinkhol\n", 2, "block.action"),
]


@pytest.mark.parametrize("desc,text,line,path", INVALID_EDITS, ids=[e[0] for e in INVALID_EDITS])
def test_sighup_invalid_config_keeps_old_policy(veto, upstream, desc, text, line, path):
	veto.config_file.write_text(text)
	veto.send_signal(signal.SIGHUP)
	pattern = re.compile(rf"{re.escape(str(veto.config_file))}:{line}:\d+: {re.escape(path)}: ")
	assert wait_until(lambda: pattern.search(veto.stderr()), 10), \
		f"no '{veto.config_file}:{line}:COL: {path}: ...' message in:\n{veto.stderr()}"
	assert veto.running()
	# the old policy keeps serving: blocked names stay blocked, others are forwarded
	assert answer_values(veto.query("still.ads.test", src=GROUP_CLIENT["sink"]), "A") == [BLOCK_IPV4]
	assert veto.query("still.ads.test", src=GROUP_CLIENT["nx"]).rcode() == dns.rcode.NXDOMAIN
	assert answer_values(veto.query("still-ok.test", src=GROUP_CLIENT["sink"]), "A") == [DEFAULT_A]


def test_sighup_missing_list_file_keeps_old_policy(veto):
	veto.rewrite_config(lambda c: c["lists"]["filelist"].update(files=[str(veto.dir / "nope.txt")]))
	veto.send_signal(signal.SIGHUP)
	assert wait_until(lambda: "nope.txt" in veto.stderr(), 10), veto.stderr()
	assert answer_values(veto.query("filetrack.test", src=GROUP_CLIENT["sink"]), "A") == [BLOCK_IPV4]


def test_reload_restart_warning_compares_with_running(veto_factory):
	"""cache.* and server.listen take effect at start only: a reload warns when the file differs
	from what runs, every time, and not when a value is put back."""
	def cache(n):
		return lambda c: c.setdefault("cache", {}).update(entries=n)
	v = veto_factory(edit=cache(1000))
	warning = "cache settings differ from the running ones: restart needed"

	def reload_with(n, reloads):
		v.rewrite_config(cache(n))
		v.send_signal(signal.SIGHUP)
		assert wait_until(lambda: v.stderr().count("reload: ok") == reloads, 10), v.stderr()
		return v.stderr().count(warning)
	assert reload_with(2000, 1) == 1
	assert reload_with(2000, 2) == 2	# still not applied: said again
	assert reload_with(1000, 3) == 2	# what runs: nothing to say


def test_sighup_reopens_query_log(veto):
	veto.query("before-rotate.test")
	assert veto.wait_log(lambda x: x["qname"] == "before-rotate.test")
	rotated = veto.dir / "queries.jsonl.1"
	veto.log_file.rename(rotated)
	veto.send_signal(signal.SIGHUP)

	def reopened():
		veto.query("after-rotate.test")
		return veto.log_file.exists() and any(x["qname"] == "after-rotate.test" for x in veto.log_records())
	assert wait_until(reopened, 10), "SIGHUP did not reopen the query log"
	assert "before-rotate.test" in rotated.read_text()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_shutdown_flushes_query_log(veto, upstream, sig):
	count = 300
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((GROUP_CLIENT["sink"], 0))
	s.settimeout(5)
	try:
		got = set()
		for start in range(0, count, 25):	# in batches: the client's socket buffer is small
			for i in range(start, start + 25):
				name = f"flush{i}.ads.test" if i % 2 else f"flush{i}.test"
				s.sendto(make_query(name, "A", id=i).to_wire(), ("127.0.0.1", veto.port))
			while len(got) < start + 25:
				got.add(int.from_bytes(s.recv(65535)[:2], "big"))
	finally:
		s.close()
	veto.send_signal(sig)
	assert veto.wait_exit() == 0, f"exit code on {sig.name}:\n{veto.stderr()}"
	names = [x["qname"] for x in veto.log_records() if x["qname"] and x["qname"].startswith("flush")]
	assert len(names) == count, f"{count - len(names)} records lost at shutdown"
	assert not veto.sanitizer_reports()


@pytest.mark.parametrize("delay_ms", [0, 2, 4, 6, 8, 10])
def test_repeated_signal_while_stopping(veto_factory, tmp_path, delay_ms):
	"""A second SIGTERM while the daemon stops (an impatient operator, or `timeout` signalling
	the process and then its group) must neither kill it before the log and the device state
	are written nor change its exit status. The delays put the second signal into the drain,
	the closing and the final exit in turn."""
	state = tmp_path / "state"

	def edit(cfg):
		cfg["state_dir"] = str(state)
		cfg["log"]["database"] = "queries.db"
		cfg["devices"] = {}
	v = veto_factory(edit=edit)
	count = 200
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((GROUP_CLIENT["sink"], 0))
	s.settimeout(5)
	try:
		for start in range(0, count, 25):
			for i in range(start, start + 25):
				s.sendto(make_query(f"twice{i}.test", "A", id=i).to_wire(),
					 ("127.0.0.1", v.port))
			for _ in range(25):
				s.recv(65535)
	finally:
		s.close()
	v.send_signal(signal.SIGTERM)
	time.sleep(delay_ms / 1000)
	try:
		os.kill(v.proc.pid, signal.SIGTERM)
	except ProcessLookupError:
		pass	# already gone (the status is checked below)
	assert v.wait_exit() == 0, f"exit status with a second SIGTERM:\n{v.stderr()}"
	assert "stopped:" in v.stderr()
	names = [x["qname"] for x in v.log_records() if (x["qname"] or "").startswith("twice")]
	assert len(names) == count, f"{count - len(names)} records lost"
	db = sqlite3.connect(f"file:{state / 'queries.db'}?mode=ro", uri=True)
	try:
		stored = db.execute("SELECT count(*) FROM query_log WHERE qname LIKE 'twice%'").fetchone()[0]
	finally:
		db.close()
	assert stored == count


def test_shutdown_with_query_in_flight(veto, upstream):
	upstream.set_rule("inflight.test", Delay(0.2, Answer()))
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((NOGROUP_CLIENT, 0))
	try:
		s.sendto(make_query("inflight.test").to_wire(), ("127.0.0.1", veto.port))
		assert upstream.wait_queries(1, name="inflight.test")
		veto.send_signal(signal.SIGTERM)
		t0 = time.monotonic()
		assert veto.wait_exit() == 0
		assert time.monotonic() - t0 < 10
	finally:
		s.close()
	assert not veto.sanitizer_reports()


def test_shutdown_with_tcp_connections_open(veto):
	from conftest import tcp_connect
	socks = [tcp_connect("127.0.0.1", veto.port) for _ in range(5)]
	socks[0].sendall(b"\x00")
	try:
		veto.send_signal(signal.SIGTERM)
		assert veto.wait_exit() == 0
	finally:
		for s in socks:
			s.close()


@pytest.mark.parametrize("proto", [socket.SOCK_DGRAM, socket.SOCK_STREAM])
def test_port_in_use_exits_1(veto_bin, tmp_path, upstream, proto):
	v = Veto(veto_bin, tmp_path / "busy", [upstream])
	blocker = socket.socket(socket.AF_INET, proto)
	blocker.bind(("127.0.0.1", v.port))
	if proto == socket.SOCK_STREAM:
		blocker.listen(1)
	try:
		v.start(wait_ready=False)
		code = v.wait_exit(15)
	finally:
		blocker.close()
	assert code == 1, f"exit code {code}, stderr:\n{v.stderr()}"
	assert f"127.0.0.1:{v.port}" in v.stderr(), "the error must name the address"
	assert not v.sanitizer_reports()


def test_serve_bad_config_exits_2(veto_bin, tmp_path, upstream):
	v = Veto(veto_bin, tmp_path / "bad", [upstream])
	v.config_file.write_text("server:\n  listen: [\"127.0.0.1:%d\"]\ngroups:\n  - name: a\n    action: sinkhol\n" % v.port)
	v.start(wait_ready=False)
	assert v.wait_exit(15) == 2
	assert not v.sanitizer_reports()
	assert re.search(rf"^{re.escape(str(v.config_file))}:5:\d+: groups\[0\]\.action: .*'sinkhol'",
			 v.stderr(), re.M), v.stderr()


def test_serve_help(veto_bin):
	from conftest import run_veto
	p = run_veto(["serve", "--help"])
	assert p.returncode == 0 and "-c" in p.stdout
