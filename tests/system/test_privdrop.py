"""`veto serve` started as root: binds, then runs as server.user with no capability.

Needs root (it creates a throwaway system user with useradd and removes it afterwards): skipped
with the reason otherwise. The daemon's folder is a fresh 0755 folder under /tmp, since pytest's
own tmp folders are 0700 and the dropped user could not reach its configuration.
"""

import grp
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import Veto, VETO_BIN
from fakeupstream import free_port

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: the test starts veto as root "
				"and creates a user for it to drop to")


@pytest.fixture
def throwaway_user():
	name = f"vt{os.getpid() % 100000}"
	if shutil.which("useradd") is None:
		pytest.skip("useradd is not available")
	subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
			"--shell", "/usr/sbin/nologin", name], check=True, timeout=30)
	try:
		yield pwd.getpwnam(name)
	finally:
		subprocess.run(["userdel", name], timeout=30)
		if name in [g.gr_name for g in grp.getgrall()]:
			subprocess.run(["groupdel", name], timeout=30)


@pytest.fixture
def open_dir():
	d = Path(tempfile.mkdtemp(prefix="veto-privdrop-"))
	d.chmod(0o755)
	yield d
	shutil.rmtree(d, ignore_errors=True)


def status_ids(pid):
	"""Uid, Gid (real, effective, saved, fs), Groups and the capability sets of a process."""
	out = {}
	for line in Path(f"/proc/{pid}/status").read_text().splitlines():
		key, _, value = line.partition(":")
		if key in ("Uid", "Gid"):
			out[key] = [int(v) for v in value.split()]
		elif key == "Groups":
			out[key] = sorted(int(v) for v in value.split())
		elif key in ("CapEff", "CapPrm", "CapInh", "CapAmb"):
			out[key] = int(value.strip(), 16)
	return out


def thread_ids(pid):
	"""The Uid line of every thread (the query log writer is one)."""
	return {t.name: status_ids(f"{pid}/task/{t.name}")["Uid"] for t in Path(f"/proc/{pid}/task").iterdir()}


def threads_without_no_new_privs(pid):
	"""The threads whose NoNewPrivs flag is not set (it is per thread)."""
	out = []
	for t in Path(f"/proc/{pid}/task").iterdir():
		status = (t / "status").read_text()
		comm = (t / "comm").read_text().strip()
		if "NoNewPrivs:\t1" not in status:
			out.append(f"{t.name} ({comm})")
	return out


def test_root_drops_to_server_user(veto_bin, upstream, throwaway_user, open_dir):
	pw = throwaway_user
	state = open_dir / "state"
	(state).mkdir(mode=0o755)
	(state / "stale-from-root.db").write_text("")	# a root file left by an earlier run as root

	def edit(cfg):
		cfg["server"]["user"] = pw.pw_name
		cfg["state_dir"] = str(state)
		cfg["log"]["file"] = str(open_dir / "logs" / "queries.jsonl")	# folder created for the user
		cfg["log"]["database"] = "queries.db"
		cfg["devices"] = {"arp": False, "oui": False}

	v = Veto(veto_bin, open_dir / "run", [upstream], edit=edit)
	v.dir.chmod(0o755)
	v.config_file.chmod(0o644)
	(v.dir / "filelist.txt").chmod(0o644)
	v.log_file = open_dir / "logs" / "queries.jsonl"
	try:
		v.start()
		ids = status_ids(v.proc.pid)
		assert ids["Uid"] == [pw.pw_uid] * 4, ids
		assert ids["Gid"] == [pw.pw_gid] * 4, ids
		assert ids["Groups"] == [pw.pw_gid], ids
		assert ids["CapEff"] == 0 and ids["CapPrm"] == 0 and ids["CapAmb"] == 0, ids
		for tid, uids in thread_ids(v.proc.pid).items():
			assert uids == [pw.pw_uid] * 4, (tid, uids)
		assert threads_without_no_new_privs(v.proc.pid) == []
		assert f"running as user '{pw.pw_name}' (uid {pw.pw_uid}, gid {pw.pw_gid})" in v.stderr()

		# it answers, and writes its log, its database and its device state as that user
		r = v.query("ads.test", "A", src="127.0.0.2")
		assert r.rcode() == 0
		assert v.wait_log(lambda rec: rec["qname"] == "ads.test"), v.stderr()
		for path in (v.log_file, v.log_file.parent, state, state / "stale-from-root.db"):
			assert path.stat().st_uid == pw.pw_uid, path
		# a reload reads the configuration as the user and reopens the log (rotation)
		v.log_file.rename(v.log_file.with_suffix(".1"))
		v.send_signal(signal.SIGHUP)
		assert "reload: ok" in v.wait_stderr("reload: ok"), v.stderr()
		v.query("tracker.test", "A", src="127.0.0.2")
		assert v.wait_log(lambda rec: rec["qname"] == "tracker.test"), v.stderr()
		assert v.log_file.stat().st_uid == pw.pw_uid
		assert v.stop() == 0, v.stderr()
		assert not v.sanitizer_reports(), v.stderr()
		assert (state / "queries.db").stat().st_uid == pw.pw_uid
		assert (state / "devices.db").stat().st_uid == pw.pw_uid
	finally:
		v.stop()


def run_serve(args, cwd, timeout=30):
	return subprocess.run([str(VETO_BIN), "serve"] + args, capture_output=True, text=True,
			      timeout=timeout, cwd=cwd)


def minimal_config(d, user_line):
	path = d / "veto.yaml"
	port = free_port(["127.0.0.1"])
	path.write_text(f"server:\n  listen: [\"127.0.0.1:{port}\"]\n{user_line}upstream:\n"
			f"  servers: [\"127.0.0.1:9\"]\nstate_dir: {d}/state\n")
	return path


def test_root_without_a_user_to_drop_to_is_refused(veto_bin, open_dir):
	try:
		pwd.getpwnam("veto")
		pytest.skip("a 'veto' user exists on this host: the default applies")
	except KeyError:
		pass
	path = minimal_config(open_dir, "")
	p = run_serve(["-c", str(path)], open_dir)
	assert p.returncode == 2, p.stderr
	assert "started as root and there is no user 'veto' to drop to" in p.stderr, p.stderr
	assert "listening" not in p.stderr


def test_named_user_that_does_not_exist(veto_bin, open_dir):
	path = minimal_config(open_dir, "  user: no-such-user-here\n")
	p = run_serve(["-c", str(path)], open_dir)
	assert p.returncode == 2, p.stderr
	assert "server.user: no user 'no-such-user-here' on this host" in p.stderr, p.stderr


def test_user_option_overrides_the_file(veto_bin, open_dir):
	"""--user root (what `make run` passes as root) wins over server.user."""
	path = minimal_config(open_dir, "  user: no-such-user-here\n")
	err = open_dir / "stderr.txt"
	with open(err, "wb") as f:
		p = subprocess.Popen([str(VETO_BIN), "serve", "-c", str(path), "--user", "root"],
				     stdout=subprocess.DEVNULL, stderr=f, cwd=open_dir)
	try:
		deadline = time.monotonic() + 20
		while "serving:" not in err.read_text() and p.poll() is None and time.monotonic() < deadline:
			time.sleep(0.02)
		assert "serving:" in err.read_text(), err.read_text()
		assert "running as root (server.user: root)" in err.read_text()
		assert status_ids(p.pid)["Uid"] == [0, 0, 0, 0]
	finally:
		if p.poll() is None:
			os.kill(p.pid, signal.SIGTERM)
		assert p.wait(timeout=15) == 0, err.read_text()
