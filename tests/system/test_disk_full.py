"""A full disk under the query log and the query database (a small tmpfs mounted for the test):
DNS keeps answering, no line of the JSON-lines file is left torn (every line parses), the
database reports its failure once and its loss once when writing works again, instead of
flapping between "cannot write" and "writing again"."""

import errno
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import GROUP_CLIENT, NOGROUP_CLIENT

SINK = GROUP_CLIENT["sink"]


@pytest.fixture
def small_fs(tmp_path):
	"""A 2 MiB tmpfs; skipped only when mounting is not permitted here. Requested before
	veto_factory, so it is unmounted after every daemon stopped."""
	mnt = tmp_path / "small"
	mnt.mkdir()
	p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m,mode=0755", "tmpfs", str(mnt)],
			   capture_output=True, text=True)
	if p.returncode != 0:
		pytest.skip(f"cannot mount a tmpfs for the disk-full test (needs root and mount "
			    f"permission): {p.stderr.strip()}")
	yield mnt
	subprocess.run(["umount", str(mnt)], check=False)
	if os.path.ismount(mnt):
		subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(path):
	"""Writes path until the file system has no page left."""
	with open(path, "wb", buffering=0) as f:
		for size in (65536, 4096, 1):
			while True:
				try:
					f.write(b"\0" * size)
				except OSError as e:
					if e.errno != errno.ENOSPC:
						raise
					break


def wait_until(fn, timeout=10.0, step=0.05):
	deadline = time.monotonic() + timeout
	while True:
		v = fn()
		if v or time.monotonic() >= deadline:
			return v
		time.sleep(step)


def db_count(db, sql):
	con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
	try:
		return con.execute(sql).fetchone()[0]
	finally:
		con.close()


def test_disk_full_no_torn_line_no_flapping(small_fs, veto_factory):
	def edit(cfg):
		cfg["state_dir"] = str(small_fs / "state")
		cfg["log"]["database"] = "queries.db"
		cfg["log"]["file"] = str(small_fs / "queries.jsonl")
	v = veto_factory(edit=edit)
	v.log_file = small_fs / "queries.jsonl"
	db = small_fs / "state" / "queries.db"
	pad = "x" * 40
	for i in range(20):
		assert v.query(f"before{i}.{pad}.test", "A", src=NOGROUP_CLIENT).rcode() == 0
	assert len(v.wait_log(lambda r: r["qname"].startswith("before"), count=20)) == 20
	assert wait_until(lambda: db_count(db, "SELECT count(*) FROM query_log WHERE qname LIKE"
				   " 'before%'") == 20)

	fill(small_fs / "filler")
	# the disk stays full for several of the database's commits (one a second) and retries
	for round in range(10):
		for i in range(30):
			name = f"full{round}-{i}.{pad}.test"
			src = SINK if i % 3 == 0 else NOGROUP_CLIENT
			assert v.query(name, "A", src=src).rcode() == 0
		time.sleep(0.5)
	err = v.wait_stderr("query database")
	assert "disk is full" in err or "No space" in err, err[-3000:]
	v.assert_alive()

	os.unlink(small_fs / "filler")
	v.send_signal(signal.SIGHUP)	# reopens both sinks at once (no wait for the backoff)
	# the database counts what arrives until its first commit works again (a record starts
	# that commit): the queries below are sent once it writes again
	deadline = time.monotonic() + 30
	while "not stored while the database failed" not in v.stderr() and time.monotonic() < deadline:
		assert v.query(f"kick.{pad}.test", "A", src=NOGROUP_CLIENT).rcode() == 0
		time.sleep(0.2)
	assert "not stored while the database failed" in v.wait_stderr(
		"not stored while the database failed", timeout=30), v.stderr()[-3000:]
	for i in range(20):
		assert v.query(f"after{i}.{pad}.test", "A", src=NOGROUP_CLIENT).rcode() == 0
	assert len(v.wait_log(lambda r: r["qname"].startswith("after"), count=20, timeout=10)) == 20
	assert wait_until(lambda: db_count(db, "SELECT count(*) FROM query_log WHERE qname LIKE"
				   " 'after%'") == 20, timeout=60), v.stderr()[-3000:]
	assert v.stop() == 0

	# every line whole: parses as JSON; no fragment of a cut line ended with a newline
	text = v.log_file.read_text()
	assert text.endswith("\n")
	for n, line in enumerate(text.split("\n")[:-1]):
		try:
			json.loads(line)
		except ValueError:
			pytest.fail(f"line {n + 1} of the query log is torn: {line[:200]!r}")

	err = v.stderr()
	db_lines = [l for l in err.splitlines() if "query database" in l]
	fails = [l for l in db_lines if "cannot write" in l or "cannot open" in l]
	again = [l for l in db_lines if "writing again" in l]
	# one failure reported, one recovery with the loss, not an error every few seconds
	assert len(fails) == 1, "\n".join(db_lines)
	assert len(again) == 1 and "records not stored while the database failed" in again[0], \
		"\n".join(db_lines)
