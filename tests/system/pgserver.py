"""A private PostgreSQL server for the shared-store tests (store.postgresql).

PgServer() finds Debian's server binaries (/usr/lib/postgresql/<major>/bin); without them the
test is skipped with a message naming the package. start() runs initdb in a new folder under
/tmp and pg_ctl with a Unix socket only (listen_addresses ''), as the unprivileged "postgres"
user when the tests run as root (initdb refuses root). The database "veto" belongs to the role
"veto" (trust authentication on the socket). stop() ends the postmaster by its PID (pg_ctl stop,
then SIGKILL of the PID in postmaster.pid if it is still there); start() again reuses the data
folder, so a test can take the database away and bring it back. cleanup() removes the folder.
"""

import glob
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time

import pytest


def _bindir():
	found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
	return os.path.dirname(found[-1]) if found else None


class PgServer:
	def __init__(self):
		self.bindir = _bindir()
		if self.bindir is None:
			pytest.skip("PostgreSQL server binaries not found (Debian package 'postgresql'): "
				    "skipping the shared-store test")
		self.as_user = None
		if os.geteuid() == 0:
			try:
				pwd.getpwnam("postgres")
			except KeyError:
				pytest.skip("running as root and there is no 'postgres' user to run the "
					    "test server as (initdb refuses root)")
			self.as_user = "postgres"
		self.dir = tempfile.mkdtemp(prefix="veto-pg-")
		os.chmod(self.dir, 0o755)
		self.data = os.path.join(self.dir, "data")
		self.port = 20000 + (os.getpid() * 7 + int(time.time() * 1000)) % 30000
		self.pid = None
		if self.as_user:
			pw = pwd.getpwnam(self.as_user)
			os.chown(self.dir, pw.pw_uid, pw.pw_gid)
		self._run(["initdb", "-D", self.data, "-U", "veto", "--auth=trust", "-E", "UTF8",
			   "--no-sync", "--locale=C"])

	def _cmd(self, argv):
		argv = [os.path.join(self.bindir, argv[0])] + argv[1:]
		if self.as_user:
			argv = ["runuser", "-u", self.as_user, "--"] + argv
		return argv

	def _run(self, argv, timeout=60):
		p = subprocess.run(self._cmd(argv), capture_output=True, text=True, timeout=timeout,
				   cwd=self.dir)
		if p.returncode != 0:
			raise RuntimeError(f"{argv[0]} failed ({p.returncode}): {p.stderr}{p.stdout}")
		return p.stdout

	@property
	def conninfo(self):
		"""The store.postgresql value for veto."""
		return f"postgresql://veto@/veto?host={self.dir}&port={self.port}"

	def start(self):
		opts = f"-k {self.dir} -c listen_addresses='' -p {self.port}"
		self._run(["pg_ctl", "-D", self.data, "-o", opts, "-l",
			   os.path.join(self.dir, "server.log"), "-w", "-t", "30", "start"])
		with open(os.path.join(self.data, "postmaster.pid")) as f:
			self.pid = int(f.readline())
		if not self._has_db():
			self._run(["createdb", "-h", self.dir, "-p", str(self.port), "-U", "veto",
				   "veto"])

	def _has_db(self):
		out = self.psql_as("postgres", "SELECT count(*) FROM pg_database WHERE datname = 'veto'")
		return out.strip() == "1"

	def psql_as(self, db, sql):
		return self._run(["psql", "-X", "-q", "-At", "-h", self.dir, "-p", str(self.port),
				  "-U", "veto", "-d", db, "-v", "ON_ERROR_STOP=1", "-c", sql])

	def psql(self, sql):
		"""Runs sql on the veto database; returns psql's unaligned output."""
		return self.psql_as("veto", sql)

	def stop(self, mode="fast"):
		if self.pid is None:
			return
		try:
			self._run(["pg_ctl", "-D", self.data, "-m", mode, "-w", "-t", "30", "stop"])
		except (RuntimeError, subprocess.TimeoutExpired):
			pass
		deadline = time.monotonic() + 10
		while time.monotonic() < deadline:
			try:
				os.kill(self.pid, 0)
			except ProcessLookupError:
				break
			time.sleep(0.05)
		else:
			os.kill(self.pid, signal.SIGKILL)
		self.pid = None

	def log(self):
		try:
			with open(os.path.join(self.dir, "server.log")) as f:
				return f.read()
		except OSError:
			return ""

	def cleanup(self):
		self.stop()
		shutil.rmtree(self.dir, ignore_errors=True)
