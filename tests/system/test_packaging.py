"""What an installed host gets besides the binary: the systemd unit, the logrotate file and the
man pages. They are generated into the build folder (conf/CMakeLists.txt); the build is the
folder of VETO_BIN."""

import os
import pwd
import grp
import re
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from conftest import SOURCE_DIR, VETO_BIN, Veto

BUILD_CONF = VETO_BIN.parent / "conf"


def unit_text():
	path = BUILD_CONF / "veto.service"
	assert path.is_file(), f"{path} missing: build first"
	return path.read_text()


def unit_settings(text):
	out = {}
	for line in text.splitlines():
		if "=" in line and not line.startswith("#"):
			k, _, v = line.partition("=")
			out.setdefault(k.strip(), []).append(v.strip())
	return out


def test_unit_settings():
	s = unit_settings(unit_text())
	assert s["Type"] == ["notify"]
	assert s["ExecReload"] == ["/bin/kill -HUP $MAINPID"]
	assert s["Restart"] == ["on-failure"]
	assert s["User"] == ["veto"]
	assert s["AmbientCapabilities"] == ["CAP_NET_BIND_SERVICE"]
	assert s["CapabilityBoundingSet"] == ["CAP_NET_BIND_SERVICE"]
	assert s["StateDirectory"] == ["veto"] and s["LogsDirectory"] == ["veto"]
	assert s["ProtectSystem"] == ["strict"]
	assert "AF_NETLINK" in s["RestrictAddressFamilies"][0].split()	# the neighbour table
	assert "network-online.target" in s["After"][0]
	# the unit and the binary agree on the default configuration
	exec_start = s["ExecStart"][0].split()
	assert exec_start[1:3] == ["serve", "-c"] and len(exec_start) == 4, exec_start
	help_text = subprocess.run([str(VETO_BIN), "serve", "--help"], capture_output=True, text=True,
				   timeout=30).stdout
	assert f"else {exec_start[3]})" in help_text, help_text


def test_unit_verifies(tmp_path):
	"""systemd-analyze verify, on a copy whose ExecStart is the binary under test (the
	installed path does not exist here)."""
	tool = shutil.which("systemd-analyze")
	if tool is None:
		pytest.skip("systemd-analyze not found (Debian package systemd)")
	text = re.sub(r"^ExecStart=\S+", f"ExecStart={VETO_BIN}", unit_text(), flags=re.M)
	unit = tmp_path / "veto.service"
	unit.write_text(text)
	# Documentation=man:... is checked too: the pages as they will be installed
	for page, section in (("veto.8", "man8"), ("veto.yaml.5", "man5")):
		(tmp_path / "man" / section).mkdir(parents=True, exist_ok=True)
		shutil.copy(SOURCE_DIR / "docs" / "man" / page, tmp_path / "man" / section / page)
	env = dict(os.environ, MANPATH=str(tmp_path / "man"))
	p = subprocess.run([tool, "verify", str(unit)], capture_output=True, text=True, timeout=60,
			   env=env)
	ours = [l for l in (p.stdout + p.stderr).splitlines() if "veto.service" in l]
	if p.returncode != 0 and not ours and "Failed to" in p.stderr:
		pytest.skip(f"systemd-analyze cannot run here: {p.stderr.strip()[:200]}")
	assert p.returncode == 0 and not ours, p.stdout + p.stderr


@pytest.mark.parametrize("page", ["veto.8", "veto.yaml.5"])
def test_man_page_renders_without_warnings(page):
	if shutil.which("groff") is None:
		pytest.skip("groff not found (Debian package groff-base)")
	path = SOURCE_DIR / "docs" / "man" / page
	p = subprocess.run(["groff", "-man", "-ww", "-z", str(path)], capture_output=True, text=True,
			   timeout=30)
	assert p.returncode == 0 and p.stdout == "" and p.stderr == "", p.stderr
	text = subprocess.run(["groff", "-man", "-Tutf8", "-P-cbou", str(path)], capture_output=True, text=True,
			      timeout=30).stdout
	assert "NAME" in text and "SEE ALSO" in text


def test_logrotate_rotates_and_the_daemon_reopens(veto_bin, upstream, tmp_path):
	"""The shipped logrotate rules, pointed at a test folder: rename, then SIGHUP; the daemon
	writes the next records to a new file."""
	tool = shutil.which("logrotate") or ("/usr/sbin/logrotate" if os.path.exists("/usr/sbin/logrotate") else None)
	if tool is None:
		pytest.skip("logrotate not found (Debian package logrotate)")
	logs = tmp_path / "logs"
	logs.mkdir(mode=0o750)

	def edit(cfg):
		cfg["log"]["file"] = str(logs / "queries.jsonl")

	v = Veto(veto_bin, tmp_path / "veto", [upstream], edit=edit)
	v.log_file = logs / "queries.jsonl"
	v.start()
	try:
		v.query("before.test", "A")
		assert v.wait_log(lambda r: r["qname"] == "before.test")
		user = pwd.getpwuid(os.geteuid()).pw_name
		group = grp.getgrgid(os.getegid()).gr_name
		rules = (BUILD_CONF / "logrotate-veto").read_text()
		rules = rules.replace("/var/log/veto/", f"{logs}/")
		rules = rules.replace("su veto veto", f"su {user} {group}")
		rules = rules.replace("create 0640 veto veto", f"create 0640 {user} {group}")
		rules = re.sub(r"postrotate\n.*?endscript", f"postrotate\n\t\tkill -HUP {v.proc.pid}\n\tendscript",
			       rules, flags=re.S)
		assert f"{logs}/*.jsonl" in rules and f"kill -HUP {v.proc.pid}" in rules
		conf = tmp_path / "logrotate.conf"
		conf.write_text(rules)
		p = subprocess.run([tool, "-f", "-s", str(tmp_path / "state"), str(conf)], capture_output=True,
				   text=True, timeout=60)
		assert p.returncode == 0, p.stdout + p.stderr
		assert "before.test" in (logs / "queries.jsonl.1").read_text()
		assert "reopened" in v.wait_stderr("reopened"), v.stderr()
		v.query("after.test", "A")
		assert v.wait_log(lambda r: r["qname"] == "after.test"), v.stderr()
		assert "before.test" not in v.log_file.read_text()
		assert v.stop() == 0
	finally:
		v.stop()
