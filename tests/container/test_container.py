"""Black-box test of the container image (docker/Dockerfile) under rootful podman.

Run by tests/container/run.sh (`make container-test`), which builds the image first and passes
its name in VETO_IMAGE. Two containers, both with a read-only root file system and a named
volume on /var/lib/veto, both stopped and removed by their ID:

  - the image as shipped (its own configuration, no -c): bridge network, port 53 published on
    127.0.0.1:<free port>; it must run as the unprivileged user, bind 0.0.0.0:53 and [::]:53,
    sinkhole a blocked name, pass its own `veto check` and HEALTHCHECK;
  - the image with a configuration mounted over /etc/veto/veto.yaml (the image's, with listen
    on 127.0.0.1/::1 and a fake upstream on 127.0.0.1) on the host network: blocked, forwarded,
    TCP, `veto log`/`report`/`devices` inside without -c, reload by SIGHUP, a clean stop.
"""

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import dns.message
import dns.query
import dns.rcode
import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "system"))
from fakeupstream import DEFAULT_A, FakeUpstream, free_port  # noqa: E402

IMAGE = os.environ.get("VETO_IMAGE", "localhost/veto:test")
BLOCKED = "tracking.miui.com"          # in conf/lists/xiaomi.txt: sinkholed to 0.0.0.0
ADDED = "added-by-reload.container.test"
STEP = 60                               # seconds any one podman command may take


def podman(*args, check=True, timeout=STEP):
	p = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout)
	if check and p.returncode != 0:
		pytest.fail(f"podman {' '.join(args)}: exit {p.returncode}\n{p.stdout}\n{p.stderr}")
	return p


def ask(name, port, host="127.0.0.1", tcp=False, timeout=2.0):
	q = dns.message.make_query(name, "A")
	f = dns.query.tcp if tcp else dns.query.udp
	return f(q, host, port=port, timeout=timeout)


def a_values(r):
	return sorted(rd.address for rrset in r.answer for rd in rrset if rrset.rdtype == 1)


def wait_answer(port, host="127.0.0.1", name=BLOCKED, timeout=30.0, cid=None):
	"""Polls (bounded) until the daemon answers name; returns the reply."""
	deadline = time.monotonic() + timeout
	while True:
		try:
			return ask(name, port, host, timeout=0.5)
		except (dns.exception.Timeout, OSError):
			pass
		if time.monotonic() > deadline:
			logs = podman("logs", cid, check=False).stderr if cid else ""
			pytest.fail(f"no answer on {host}:{port} within {timeout} s\n{logs}")
		time.sleep(0.2)


class Container:
	def __init__(self, run_args, volume):
		self.volume = volume
		podman("volume", "create", volume)
		self.id = podman("run", "-d", "--read-only", "-v", f"{volume}:/var/lib/veto",
				 *run_args).stdout.strip()

	def logs(self):
		p = podman("logs", self.id, check=False)
		return p.stdout + p.stderr

	def exec(self, *args):
		return podman("exec", self.id, *args, check=False)

	def remove(self):
		podman("rm", "-f", "-t", "5", self.id, check=False)
		podman("volume", "rm", "-f", self.volume, check=False)


def volume_name():
	return f"veto-ct-{uuid.uuid4().hex[:12]}"


# --- the image as shipped -----------------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
	port = free_port(["127.0.0.1"])
	c = Container(["-p", f"127.0.0.1:{port}:53/udp", "-p", f"127.0.0.1:{port}:53/tcp", IMAGE],
		      volume_name())
	c.port = port
	try:
		wait_answer(port, cid=c.id)
		yield c
	finally:
		c.remove()


def test_shipped_runs_unprivileged_on_port_53_v4_and_v6(shipped):
	assert shipped.exec("id", "-un").stdout.strip() == "veto"
	logs = shipped.logs()
	for want in ("listening on 0.0.0.0:53 (udp)", "listening on 0.0.0.0:53 (tcp)",
		     "listening on [::]:53 (udp)", "listening on [::]:53 (tcp)",
		     "control: listening on /var/lib/veto/control.sock"):
		assert want in logs, logs
	assert "warning" not in logs, logs	# OUI registry present, state_dir writable


def test_shipped_sinkholes_a_blocked_name(shipped):
	for tcp in (False, True):
		r = ask(BLOCKED, shipped.port, tcp=tcp)
		assert r.rcode() == dns.rcode.NOERROR and a_values(r) == ["0.0.0.0"], r


def test_shipped_check_and_health(shipped):
	p = shipped.exec("veto", "check")
	assert p.returncode == 0 and "/etc/veto/veto.yaml: ok (0 warnings)" in p.stdout, \
		p.stdout + p.stderr
	p = podman("healthcheck", "run", shipped.id, check=False)
	assert p.returncode == 0, p.stdout + p.stderr
	p = shipped.exec("veto", "health")
	assert p.returncode == 0 and p.stdout == "/var/lib/veto/control.sock: serving\n", \
		p.stdout + p.stderr


# --- the image with a test configuration, host network, fake upstream --------------------

@pytest.fixture(scope="module")
def upstream():
	fake = FakeUpstream()
	yield fake
	fake.stop()


@pytest.fixture(scope="module")
def hosted(tmp_path_factory, upstream):
	work = tmp_path_factory.mktemp("container")
	cfg = yaml.safe_load(podman("run", "--rm", "--network", "none", "--entrypoint", "cat",
				    IMAGE, "/etc/veto/veto.yaml").stdout)
	port = free_port(["127.0.0.1", "::1"])
	cfg["server"]["listen"] = [f"127.0.0.1:{port}", f"[::1]:{port}"]
	cfg["upstream"]["servers"] = [upstream.address]
	cfg["lists"]["reloadable"] = {"domains": ["first.container.test"]}
	cfg["groups"][0]["block"].append("reloadable")
	path = work / "veto.yaml"
	path.write_text(yaml.safe_dump(cfg, sort_keys=False))
	c = Container(["--network", "host", "-v", f"{path}:/etc/veto/veto.yaml:ro", IMAGE],
		      volume_name())
	c.port, c.cfg, c.path = port, cfg, path
	try:
		wait_answer(port, cid=c.id)
		yield c
	finally:
		c.remove()


def test_blocked_forwarded_tcp_and_v6(hosted, upstream):
	for host in ("127.0.0.1", "::1"):
		for tcp in (False, True):
			r = ask(BLOCKED, hosted.port, host, tcp=tcp)
			assert a_values(r) == ["0.0.0.0"], (host, tcp, r)
			name = f"fwd-{'tcp' if tcp else 'udp'}-{host.replace(':', 'x')}.container.test"
			r = ask(name, hosted.port, host, tcp=tcp)
			assert r.rcode() == dns.rcode.NOERROR and a_values(r) == [DEFAULT_A], r
			assert upstream.queries(name), f"{name} did not reach the upstream"
	assert not upstream.queries(BLOCKED)


def test_log_report_devices_inside_without_c(hosted):
	ask("logged.container.test", hosted.port)
	deadline = time.monotonic() + 15
	while True:	# the writer thread commits within a second or two
		p = hosted.exec("veto", "log", "--format", "json")
		if p.returncode == 0 and "logged.container.test" in p.stdout and BLOCKED in p.stdout:
			break
		if time.monotonic() > deadline:
			pytest.fail(f"veto log inside the container:\n{p.stdout}\n{p.stderr}")
		time.sleep(0.5)
	for args in (("report", "summary"), ("report", "attempts"), ("devices",)):
		p = hosted.exec("veto", *args)
		assert p.returncode == 0, (args, p.stdout, p.stderr)
	p = hosted.exec("ls", "/var/lib/veto")
	assert {"queries.db", "control.sock"} <= set(p.stdout.split()), p.stdout


def test_reload_by_sighup(hosted, upstream):
	r = ask(ADDED, hosted.port)
	assert a_values(r) == [DEFAULT_A], r	# forwarded before the reload
	cfg = hosted.cfg
	cfg["lists"]["reloadable"]["domains"].append(ADDED)
	hosted.path.write_text(yaml.safe_dump(cfg, sort_keys=False))	# same inode: the mount sees it
	podman("kill", "-s", "HUP", hosted.id)
	deadline = time.monotonic() + 15
	while True:
		if "reload: ok" in hosted.logs():
			break
		if time.monotonic() > deadline:
			pytest.fail(f"no 'reload: ok' in the logs:\n{hosted.logs()}")
		time.sleep(0.2)
	upstream.clear()
	r = ask(ADDED, hosted.port)
	assert a_values(r) == ["0.0.0.0"], r
	assert not upstream.queries(ADDED)


def test_health_then_clean_stop(hosted):
	p = podman("healthcheck", "run", hosted.id, check=False)
	assert p.returncode == 0, p.stdout + p.stderr
	podman("stop", "-t", "10", hosted.id)
	state = json.loads(podman("inspect", hosted.id).stdout)[0]["State"]
	assert state["ExitCode"] == 0, state
	logs = hosted.logs()
	assert "stopping: SIGTERM received" in logs and "stopped: " in logs, logs
