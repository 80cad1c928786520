"""Evidence under a stalled query-log writer: the JSON-lines sink is a FIFO the test does not read
at first, so the writer thread blocks in write(2) (as on a stuck disk) while a burst of blocked
queries arrives. Every blocked query must then be stored, in the file and in the database, once
the FIFO is read; beyond log.evidence_buffer_mb the loss must be counted exactly and reported.
A writer held up for a moment loses no forwarded query either: they wait in the first half of
the same buffer."""

import os
import re
import select
import socket
import sqlite3
import struct
import threading
import time

from conftest import GROUP_CLIENT

SINK = GROUP_CLIENT["sink"]


def wire(i, labels):
	"""A query for labels A, ID i & 0xffff, RD set."""
	qname = b"".join(bytes([len(l)]) + l for l in labels) + b"\0"
	return struct.pack(">HHHHHH", i & 0xFFFF, 0x0100, 1, 0, 0, 0) + qname + struct.pack(">HH", 1, 1)


def blocked_wire(i):
	"""A query for e<i>.ads.test A (blocked for the sink group)."""
	return wire(i, [f"e{i}".encode(), b"ads", b"test"])


def cached_wire(i):
	"""A query for cached.example A (forwarded once, then answered from the cache)."""
	return wire(i, [b"cached", b"example"])


def burst(port, n, window=256, timeout=1.0, make=blocked_wire):
	"""Sends n queries (make(i)) from the sink client, at most 'window' unanswered at once. A
	window that gets no reply within 'timeout' counts as lost and the next one is sent (no
	timing is asserted). The number of replies received."""
	s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
	s.bind((SINK, 0))
	s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
	s.setblocking(False)
	sent = got = given_up = 0
	deadline = time.monotonic() + 120
	try:
		while got + given_up < n and time.monotonic() < deadline:
			while sent < n and sent - got - given_up < window:
				s.sendto(make(sent), ("127.0.0.1", port))
				sent += 1
			r, _, _ = select.select([s], [], [], timeout)
			if not r:
				given_up = sent - got
				continue
			while True:
				try:
					data = s.recv(4096)
				except BlockingIOError:
					break
				if len(data) >= 12 and data[2] & 0x80:
					got += 1
	finally:
		s.close()
	return got


class FifoReader:
	"""The read end of the FIFO, opened before the daemon (so its open() does not wait), read
	into a list of lines by a thread once start() is called."""

	def __init__(self, path):
		os.mkfifo(path)
		self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
		self.lines = []
		self.stopping = False
		self.thread = threading.Thread(target=self._run, daemon=True)

	def start(self):
		self.thread.start()

	def _run(self):
		buf = b""
		while True:
			r, _, _ = select.select([self.fd], [], [], 0.1)
			if r:
				try:
					data = os.read(self.fd, 1 << 20)
				except BlockingIOError:
					continue
				if data:
					buf += data
					*done, buf = buf.split(b"\n")
					self.lines.extend(done)
					continue
			if self.stopping:
				return

	def close(self):
		self.stopping = True
		self.thread.join(timeout=30)
		assert not self.thread.is_alive(), "the FIFO reader did not finish"
		os.close(self.fd)


def stop_counts(v):
	"""The daemon's stop line: (blocked answered, query log records dropped)."""
	m = re.search(r"stopped: .*blocked (\d+) .*query log records dropped (\d+)", v.stderr())
	assert m, f"no stop line:\n{v.stderr()[-2000:]}"
	return int(m.group(1)), int(m.group(2))


def stalled_burst(veto_factory, tmp_path, n, evidence_mb=None, make=blocked_wire):
	"""A daemon whose JSON-lines sink is a FIFO nobody reads until n queries (make(i)) have
	been sent; then the FIFO is read and the daemon stopped. (daemon, replies, the FIFO's
	lines, the database's path)."""
	fifo = tmp_path / "stall.fifo"
	reader = FifoReader(fifo)

	def edit(cfg):
		cfg["state_dir"] = str(tmp_path / "state")
		cfg["log"]["file"] = str(fifo)
		cfg["log"]["database"] = "queries.db"
		if evidence_mb is not None:
			cfg["log"]["evidence_buffer_mb"] = evidence_mb
	v = veto_factory(edit=edit)
	try:
		# nobody reads the FIFO: its 64 KiB fill with the probe's lines and the first queries,
		# then the writer blocks in write(2) and everything else waits in the ring and the
		# evidence overflow
		answered = burst(v.port, n, make=make)
		assert v.running()
	finally:
		reader.start()
	assert v.stop() == 0
	reader.close()
	return v, answered, reader.lines, f"file:{tmp_path / 'state' / 'queries.db'}?mode=ro"


def run_stalled(veto_factory, upstream, tmp_path, n, evidence_mb=None):
	v, answered, lines_all, db = stalled_burst(veto_factory, tmp_path, n, evidence_mb)
	blocked, dropped = stop_counts(v)
	lines = [l for l in lines_all if b'"blocked":true' in l]	# the probe's too
	con = sqlite3.connect(db, uri=True)
	try:
		rows = con.execute("SELECT count(*) FROM queries WHERE blocked = 1").fetchone()[0]
	finally:
		con.close()
	assert upstream.received == []	# blocked names never reach the upstream
	return v, answered, blocked, dropped, len(lines), rows


def test_stalled_writer_keeps_every_blocked_query(veto_factory, upstream, tmp_path):
	"""100,000 blocked queries while the writer is stuck: more than the ring (16,384) and the old
	overflow (65,536 records) held; the default bound (64 MiB of packed records) holds them."""
	n = 100000
	v, answered, blocked, dropped, lines, rows = run_stalled(veto_factory, upstream, tmp_path, n)
	assert answered > 82000, f"only {answered} of {n} queries answered"
	# every blocked query the daemon answered (its own count, the probe's included) is stored
	assert blocked >= answered
	assert lines == rows == blocked
	assert dropped == 0
	assert "blocked records lost" not in v.stderr()
	m = re.search(r"evidence buffer: at most (\d+) records waited", v.stderr())
	assert m and int(m.group(1)) > 65536, "the evidence buffer held fewer than the old bound"


def test_evidence_bound_loss_is_counted(veto_factory, upstream, tmp_path):
	"""With log.evidence_buffer_mb 1 the same stall loses blocked records: each one counted and
	reported, stored + lost = answered."""
	n = 40000
	v, answered, blocked, dropped, lines, rows = run_stalled(veto_factory, upstream, tmp_path, n,
								 evidence_mb=1)
	assert answered > 30000, f"only {answered} of {n} queries answered"
	lost = sum(int(x) for x in re.findall(r"query log: (\d+) blocked records lost", v.stderr()))
	assert "log.evidence_buffer_mb: 1 MiB" in v.stderr()
	assert blocked >= answered
	assert lost > 0 and dropped == lost
	assert lines == rows == blocked - lost


def test_stalled_writer_keeps_forwarded_queries(veto_factory, upstream, tmp_path):
	"""30,000 forwarded (cached) queries while the writer is stuck: more than the ring's share
	for them (3/4 of 16,384); the evidence buffer's first half (32 MiB by default) holds the
	rest, so every one is stored and none is counted unlogged."""
	n = 30000
	v, answered, lines_all, db = stalled_burst(veto_factory, tmp_path, n, make=cached_wire)
	assert answered > 25000, f"only {answered} of {n} queries answered"
	_, dropped = stop_counts(v)
	lines = [l for l in lines_all if b'"qname":"cached.example"' in l]
	assert not [l for l in lines_all if b'"type":"unlogged"' in l]
	con = sqlite3.connect(db, uri=True)
	try:
		rows = con.execute("SELECT count(*) FROM queries q JOIN names n ON n.id = q.name"
				   " WHERE n.qname = 'cached.example'").fetchone()[0]
		unlogged = con.execute("SELECT coalesce(sum(forwarded), 0) FROM unlogged").fetchone()[0]
	finally:
		con.close()
	assert dropped == 0 and unlogged == 0
	assert "not stored one by one" not in v.stderr()
	assert len(lines) == rows >= answered
	m = re.search(r"evidence buffer: at most (\d+) records waited", v.stderr())
	assert m and int(m.group(1)) > 10000
