"""veto check (and start-up) catch what would load but silently disable a ban: unknown vendors in
a group, listen addresses without a port, signature entries naming no list, an unreadable OUI
directory, clients that match no group, a state_dir or log file the daemon could not write. The
shipped configurations still pass."""

import os
import stat
import re
import subprocess
from pathlib import Path

import pytest

from conftest import VETO_BIN, run_veto

SOURCE = Path(os.environ.get("VETO_SOURCE_DIR", Path(__file__).resolve().parents[2]))

BANNED = """\
server:
  listen: ["127.0.0.1:5399"]
upstream:
  servers: ["127.0.0.1:5300"]
devices:
  oui: false
groups:
  - name: staff
    clients: [10.0.0.0/8]
  - name: banned
    vendors: [Xiomi]
    default: deny
  - name: rest
log:
  file: "-"
"""


def check(tmp_path, text):
	"""Writes text (with a state_dir in tmp_path unless it names one) and checks it."""
	path = tmp_path / "veto.yaml"
	if "state_dir:" not in text:
		text += f"state_dir: {tmp_path / 'state'}\n"
	path.write_text(text)
	return path, run_veto(["check", "-c", str(path)])


def test_unknown_vendor_is_an_error(veto_bin, tmp_path):
	path, p = check(tmp_path, BANNED)
	assert p.returncode == 2, p.stdout + p.stderr
	want = f"{path}:11:15: groups[1].vendors[0]: unknown vendor 'Xiomi' (did you mean 'Xiaomi'?)"
	assert want in p.stderr.splitlines(), p.stderr
	assert p.stderr.rstrip().endswith("1 error, 0 warnings"), p.stderr


def test_vendor_in_another_case_is_fine(veto_bin, tmp_path):
	path, p = check(tmp_path, BANNED.replace("[Xiomi]", "[xiaomi, HUAWEI]"))
	assert p.returncode == 0, p.stdout + p.stderr
	assert "warning" not in p.stderr, p.stderr


def test_serve_refuses_the_same_configuration(veto_bin, tmp_path):
	"""The daemon loads through the same code: it exits 2 with the same message, serving
	nothing."""
	path = tmp_path / "veto.yaml"
	path.write_text(BANNED)
	p = subprocess.run([str(VETO_BIN), "serve", "-c", str(path)], capture_output=True, text=True,
			   timeout=30)
	assert p.returncode == 2, p.stdout + p.stderr
	assert "groups[1].vendors[0]: unknown vendor 'Xiomi' (did you mean 'Xiaomi'?)" in p.stderr, p.stderr


@pytest.mark.parametrize("listen, message", [
	("127.0.0.1", "'127.0.0.1' has no port (write '127.0.0.1:53')"),
	("[::1]", "'[::1]' has no port (write '[::1]:53')"),
	("::1:53", "'::1:53' is an IPv6 address without brackets: with a port, write '[::1]:53'"),
])
def test_listen_needs_a_port(veto_bin, tmp_path, listen, message):
	path, p = check(tmp_path, BANNED.replace("[Xiomi]", "[Xiaomi]").replace("127.0.0.1:5399", listen))
	assert p.returncode == 2, p.stdout + p.stderr
	assert f"{path}:2:12: server.listen[0]: {message}" in p.stderr.splitlines(), p.stderr


def test_signature_entry_naming_no_list(veto_bin, tmp_path):
	text = BANNED.replace("[Xiomi]", "[Xiaomi]").replace(
		"  oui: false\n", "  oui: false\n  signatures:\n    Xiaomi: [xiaomi-servces]\n")
	text = text.replace("groups:\n", "lists:\n  xiaomi-services: {domains: [a.example]}\ngroups:\n")
	path, p = check(tmp_path, text)
	assert p.returncode == 2, p.stdout + p.stderr
	assert (f"{path}:8:14: devices.signatures.Xiaomi[0]: unknown list 'xiaomi-servces' "
		"(did you mean 'xiaomi-services'?)") in p.stderr.splitlines(), p.stderr


def test_unreadable_oui_dir_is_a_warning(veto_bin, tmp_path):
	missing = tmp_path / "no-ieee-data"
	path, p = check(tmp_path, BANNED.replace("[Xiomi]", "[Xiaomi]").replace(
		"oui: false", f"oui: {{dir: {missing}}}"))
	assert p.returncode == 0, p.stdout + p.stderr
	assert (f"{path}: devices.oui.dir: warning: cannot read '{missing}': no such file or "
		"directory; vendors from MAC prefixes are not known (install ieee-data, or write "
		"'oui: false')") in p.stderr.splitlines(), p.stderr


def test_clients_matching_no_group_is_a_warning(veto_bin, tmp_path):
	text = BANNED.replace("[Xiomi]", "[Xiaomi]").replace("  - name: rest\n", "")
	text = text.replace("server:\n", "server:\n  allow: [10.0.0.0/8, 192.168.0.0/16]\n")
	path, p = check(tmp_path, text)
	assert p.returncode == 0, p.stdout + p.stderr
	assert (f"{path}:8:1: groups: warning: clients in 192.168.0.0/16 match no group and are "
		"forwarded unfiltered") in p.stderr.splitlines(), p.stderr


def unwritable_line(path, key, what, at, why, uses):
	return (f"{path}: {key}: warning: cannot write '{what}' (at '{at}': {why}, as uid "
		f"{os.getuid()}): {uses}")


STATE_USES = "no saved device state, control channel or query database"


def test_state_dir_under_a_file_is_a_warning(veto_bin, tmp_path):
	(tmp_path / "afile").write_text("")
	state = tmp_path / "afile" / "state"
	path, p = check(tmp_path, BANNED.replace("[Xiomi]", "[Xiaomi]") + f"state_dir: {state}\n")
	assert p.returncode == 0, p.stdout + p.stderr
	want = unwritable_line(path, "state_dir", state, state, "not a directory", STATE_USES)
	assert want in p.stderr.splitlines(), p.stderr
	assert p.stdout.rstrip().endswith(f"{path}: ok (1 warning)"), p.stdout


def test_log_file_in_a_missing_folder_is_a_warning(veto_bin, tmp_path):
	target = tmp_path / "nowhere" / "q.jsonl"
	text = BANNED.replace("[Xiomi]", "[Xiaomi]").replace('file: "-"', f"file: {target}")
	path, p = check(tmp_path, text)
	assert p.returncode == 0, p.stdout + p.stderr
	want = unwritable_line(path, "log.file", target, tmp_path / "nowhere",
			       "no such file or directory", "no JSON lines query log")
	assert want in p.stderr.splitlines(), p.stderr


@pytest.fixture
def ro_tree(tmp_path):
	"""tmp/ro: a tmpfs holding etc/veto/, then remounted read-only, as a container's root is;
	skipped only when mounting is not permitted here."""
	mnt = tmp_path / "ro"
	mnt.mkdir()
	p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs", str(mnt)],
			   capture_output=True, text=True)
	if p.returncode != 0:
		pytest.skip(f"cannot mount a tmpfs (needs root and mount permission): {p.stderr.strip()}")
	try:
		(mnt / "etc" / "veto").mkdir(parents=True)
		(mnt / "etc" / "veto" / "veto.yaml").write_text(
			BANNED.replace("[Xiomi]", "[Xiaomi]") + "state_dir: ../var\n")
		subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
		yield mnt
	finally:
		subprocess.run(["umount", str(mnt)], check=False)
		if os.path.ismount(mnt):
			subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_state_dir_on_a_read_only_root_is_a_warning(veto_bin, ro_tree):
	"""The container's mistake: state_dir '../var' next to /etc/veto on a read-only root. Even
	as root (permissions do not stop root; a read-only file system does)."""
	path = ro_tree / "etc" / "veto" / "veto.yaml"
	p = run_veto(["check", "-c", str(path)])
	assert p.returncode == 0, p.stdout + p.stderr
	state = ro_tree / "etc" / "veto" / ".." / "var"
	want = unwritable_line(path, "state_dir", state, ro_tree / "etc" / "veto" / "..",
			       "read-only file system", STATE_USES)
	assert want in p.stderr.splitlines(), p.stderr
	assert "ok (0 warnings)" not in p.stdout, p.stdout


@pytest.mark.skipif(os.getuid() == 0, reason="root writes in a folder of mode 0555")
def test_state_dir_in_a_folder_of_another_owner_is_a_warning(veto_bin, tmp_path):
	locked = tmp_path / "locked"
	locked.mkdir()
	locked.chmod(stat.S_IRUSR | stat.S_IXUSR)
	state = locked / "state"
	try:
		path, p = check(tmp_path, BANNED.replace("[Xiomi]", "[Xiaomi]") + f"state_dir: {state}\n")
	finally:
		locked.chmod(stat.S_IRWXU)
	want = unwritable_line(path, "state_dir", state, locked, "permission denied", STATE_USES)
	assert want in p.stderr.splitlines(), p.stderr


SHIPPED = [SOURCE / "conf" / "veto.yaml", *sorted((SOURCE / "conf" / "examples").glob("*.yaml"))]


@pytest.mark.parametrize("conf", SHIPPED, ids=[c.name for c in SHIPPED])
def test_shipped_configurations_pass(veto_bin, conf):
	p = run_veto(["check", "-c", str(conf)])
	assert p.returncode == 0, p.stdout + p.stderr
	for line in p.stderr.splitlines():
		# the registry and /var are the machine's, not the file's
		if "warning" in line:
			assert "devices.oui.dir" in line or "cannot write '/var/" in line, p.stderr
