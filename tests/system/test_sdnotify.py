"""systemd readiness (Type=notify): the daemon's sd_notify messages, read from a datagram socket
standing in for systemd's $NOTIFY_SOCKET.

READY=1 only once it answers; RELOADING=1 then READY=1 around a SIGHUP reload (a failed reload
too, with a STATUS= that says so); STOPPING=1 on SIGTERM.
"""

import signal
import socket
import time

import pytest

from conftest import Veto


def subprocess_built_with_systemd(veto_bin):
	"""libsystemd is optional at build time: without it nothing is sent."""
	import subprocess
	out = subprocess.run(["ldd", str(veto_bin)], capture_output=True, text=True, timeout=30).stdout
	return "libsystemd" in out


@pytest.fixture
def notify_socket(tmp_path, monkeypatch):
	path = tmp_path / "notify.sock"
	s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
	s.bind(str(path))
	monkeypatch.setenv("NOTIFY_SOCKET", str(path))
	yield s
	s.close()


def receive(sock, want, timeout=10.0):
	"""Messages (as dicts) until one has the key want; fails after timeout seconds."""
	got = []
	deadline = time.monotonic() + timeout
	while True:
		left = deadline - time.monotonic()
		if left <= 0:
			pytest.fail(f"no {want} from the daemon within {timeout} s; got {got}")
		sock.settimeout(left)
		try:
			data = sock.recv(4096)
		except socket.timeout:
			continue
		msg = dict(line.split("=", 1) for line in data.decode().split("\n") if "=" in line)
		got.append(msg)
		if want in msg:
			return got


def test_ready_reload_stop(veto_bin, upstream, notify_socket, tmp_path):
	if not subprocess_built_with_systemd(veto_bin):
		pytest.skip("veto was built without libsystemd (no sd_notify)")
	v = Veto(veto_bin, tmp_path / "veto", [upstream])
	v.start(wait_ready=False)
	try:
		msgs = receive(notify_socket, "READY")
		assert msgs[-1]["READY"] == "1" and msgs[-1]["STATUS"] == "serving"
		# ready means listening: the first query after READY=1 is answered
		v.wait_ready(timeout=0.5)
		assert "serving:" in v.stderr()

		v.send_signal(signal.SIGHUP)
		msgs = receive(notify_socket, "READY")
		assert msgs[0]["RELOADING"] == "1" and int(msgs[0]["MONOTONIC_USEC"]) > 0, msgs
		assert msgs[-1]["STATUS"] == "serving (reloaded)", msgs

		v.config_file.write_text("server: [not, a, mapping]\n")
		v.send_signal(signal.SIGHUP)
		msgs = receive(notify_socket, "READY")
		assert msgs[0]["RELOADING"] == "1", msgs
		assert msgs[-1]["STATUS"].startswith("reload failed"), msgs

		v.send_signal(signal.SIGTERM)
		msgs = receive(notify_socket, "STOPPING")
		assert msgs[-1]["STOPPING"] == "1"
		assert v.wait_exit() == 0
	finally:
		v.stop()
