"""The way back from the device table: `veto devices forget|pin|unpin` on the running daemon
(its control channel, state_dir/control.sock) and, without one, on the saved state; an
inventory entry keyed by address; `veto devices` as a table, CSV and one JSON document;
`veto explain` showing the evidence.

Clients (127.0.0.0/24; no lease, ARP or MAC source: every device is keyed by its address):
  127.0.0.40 .. .43  group 'home' by address (block ads: sinkhole), unless a device selector
                     (the vendor Xiaomi: 'banned', refused) or a pin says otherwise
  127.0.0.44         inventory entry {name: nas, ip: 127.0.0.44} without a MAC -> 'nasgroup'
"""

import json
import os
import signal
import sqlite3
import stat
import time

import dns.message
import dns.rcode
import pytest

from conftest import BLOCK_IPV4, TEST_WORKERS, run_veto, udp_exchange

SIGNATURE = "connect.rom.miui.com"
LONG_NAME = "a-very-long-inventory-device-name-for-the-table"


def admin_edit(work):
	def edit(cfg):
		cfg["state_dir"] = str(work / "state")
		cfg["log"]["database"] = str(work / "queries.db")
		cfg["devices"] = {
			"inventory": [
				{"name": "nas", "ip": "127.0.0.44"},
				{"name": LONG_NAME, "ip": "127.0.0.45", "vendor": "Some Very Long Vendor Ltd"},
			],
			"signatures": {"Xiaomi": [SIGNATURE]},
			"arp": False,
		}
		cfg["groups"] = [
			{"name": "banned", "vendors": ["Xiaomi"], "default": "deny", "action": "refused"},
			{"name": "staff", "clients": ["10.99.0.0/16"], "block": ["ads"],
			 "action": "nxdomain"},
			{"name": "nasgroup", "devices": ["nas"], "block": ["ads"], "action": "nodata"},
			{"name": "home", "clients": ["127.0.0.40/29", "127.0.0.45/32"], "block": ["ads"]},
		] + cfg["groups"]
	return edit


@pytest.fixture
def aveto(veto_factory, tmp_path):
	work = tmp_path / "admin"
	work.mkdir()
	v = veto_factory(edit=admin_edit(work), start=False)
	v.work = work
	v.sock = work / "state" / "control.sock"
	old = os.umask(0)	# the socket must be 0600 whatever the umask
	try:
		v.start()
	finally:
		os.umask(old)
	return v


def ask(v, name, src):
	q = dns.message.make_query(name, "A", use_edns=0)
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=3.0)
	assert wire is not None, f"no reply to {name} from {src}"
	return dns.message.from_wire(wire)


def group_of(v, name):
	got = v.wait_log(lambda r: r["qname"] == name)
	assert got, f"no log record for {name}"
	return got[-1]["group"]


def devices(v, *args):
	p = run_veto(["devices", *args, "-c", str(v.config_file)])
	return p


def wait_event(v, kind, key_part, timeout=8.0):
	"""The device event of that kind (bounded poll: the query store writes off the loop)."""
	deadline = time.monotonic() + timeout
	while True:
		rows = []
		if (v.work / "queries.db").exists():
			db = sqlite3.connect(f"file:{v.work / 'queries.db'}?mode=ro", uri=True)
			try:
				rows = db.execute("SELECT kind, evidence, old_group, new_group, vendor FROM "
						  "device_events WHERE kind = ? ORDER BY id", (kind,)).fetchall()
			except sqlite3.OperationalError:
				rows = []
			finally:
				db.close()
		rows = [r for r in rows if key_part in (r[1] or "")]
		if rows or time.monotonic() > deadline:
			return rows
		time.sleep(0.1)


def banned_by_signature(v, src, tag):
	r = ask(v, f"{tag}-before.test", src)
	assert r.rcode() == dns.rcode.NOERROR and group_of(v, f"{tag}-before.test") == "home"
	r = ask(v, SIGNATURE, src)
	assert r.rcode() == dns.rcode.NOERROR
	# With one worker the next query is banned. With several, a signature query answered by
	# another worker reaches the device table through the main loop, and that worker sees the
	# attribution once the table is published again (milliseconds: README, Device identity on
	# every core): a query sent meanwhile to it still gets the device's previous group. Such
	# queries are allowed (answered, group home: never another group), then the ban must come.
	deadline = time.monotonic() + (5 if TEST_WORKERS["workers"] != 1 else 0)
	for k in range(1000):
		name = f"{tag}-after.test" if k == 0 else f"{tag}-after{k}.test"
		r = ask(v, name, src)
		if r.rcode() == dns.rcode.REFUSED or time.monotonic() >= deadline:
			break
		assert r.rcode() == dns.rcode.NOERROR and group_of(v, name) == "home"
		time.sleep(0.001)
	assert r.rcode() == dns.rcode.REFUSED
	assert group_of(v, name) == "banned"


def test_forget_on_running_daemon(aveto):
	banned_by_signature(aveto, "127.0.0.40", "f")
	p = devices(aveto, "forget", "127.0.0.40")
	assert p.returncode == 0, p.stderr
	assert p.stdout.startswith("running daemon"), p.stdout
	assert "forgot ip:127.0.0.40" in p.stdout and "vendor=Xiaomi (signature)" in p.stdout
	# the next query starts clean: its normal group, answered
	r = ask(aveto, "f-next.test", "127.0.0.40")
	assert r.rcode() == dns.rcode.NOERROR and r.answer
	assert group_of(aveto, "f-next.test") == "home"
	ev = wait_event(aveto, "forget", f"by uid {os.getuid()}")
	assert ev, "no forget event in the query store"
	assert ev[0][1] == f"vendor=Xiaomi (signature) by uid {os.getuid()}"
	assert ev[0][2] == "banned"
	# a second forget: no such device, nothing changes
	p = devices(aveto, "forget", "10.1.2.3")
	assert p.returncode == 1 and "no device '10.1.2.3'" in p.stderr, p.stderr


def test_pin_and_unpin_on_running_daemon(aveto):
	src = "127.0.0.41"
	r = ask(aveto, "ads.test", src)
	assert [a.to_text() for a in r.answer[0]] == [BLOCK_IPV4]	# home: sinkhole
	p = devices(aveto, "pin", src, "--group", "staff")
	assert p.returncode == 0 and p.stdout.startswith("running daemon"), p.stdout + p.stderr
	assert f"group=staff by uid {os.getuid()}" in p.stdout
	r = ask(aveto, "ads.test", src)
	assert r.rcode() == dns.rcode.NXDOMAIN	# staff: nxdomain
	# a pinned vendor does not move a device whose group is pinned
	p = devices(aveto, "pin", f"ip:{src}", "--vendor", "Xiaomi")
	assert p.returncode == 0, p.stderr
	r = ask(aveto, "p1.test", src)
	assert r.rcode() == dns.rcode.NOERROR and group_of(aveto, "p1.test") == "staff"
	rec = aveto.wait_log(lambda r: r["qname"] == "p1.test")[-1]
	assert rec["vendor"] == "Xiaomi" and rec["vendor_source"] == "pinned"
	p = devices(aveto, "unpin", src)
	assert p.returncode == 0, p.stderr
	r = ask(aveto, "ads.test", src)
	assert [a.to_text() for a in r.answer[0]] == [BLOCK_IPV4]
	# the vendor alone: the banned group's selector takes the device
	p = devices(aveto, "pin", src, "--vendor", "Xiaomi")
	assert p.returncode == 0, p.stderr
	assert ask(aveto, "p2.test", src).rcode() == dns.rcode.REFUSED
	p = devices(aveto, "unpin", src)
	assert p.returncode == 0, p.stderr
	assert ask(aveto, "p3.test", src).rcode() == dns.rcode.NOERROR
	assert group_of(aveto, "p3.test") == "home"
	for kind in ("pin", "unpin"):
		assert wait_event(aveto, kind, f"by uid {os.getuid()}"), kind
	# bad requests: an unknown group, nothing to pin
	p = devices(aveto, "pin", src, "--group", "nope")
	assert p.returncode == 2 and "unknown group 'nope'" in p.stderr
	p = devices(aveto, "pin", src)
	assert p.returncode == 2


def test_control_socket(aveto):
	st = os.lstat(aveto.sock)
	assert stat.S_ISSOCK(st.st_mode)
	assert stat.S_IMODE(st.st_mode) == 0o600, oct(st.st_mode)
	assert st.st_uid == os.getuid()	# the daemon's user (the test runs it)
	# a request the daemon does not understand, and one too long: answered, daemon alive
	import socket
	for line, want in ((b"reboot now\n", b"error: unknown request"),
			   (b"forget " + b"a" * 600 + b"\n", b"error: request too long")):
		s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
		s.settimeout(5)
		s.connect(str(aveto.sock))
		s.sendall(line)
		reply = s.recv(1024)
		s.close()
		assert reply.startswith(want), reply
	# a client that says nothing is answered and closed after the read timeout (2 s)
	s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	s.settimeout(15)
	s.connect(str(aveto.sock))
	assert s.recv(1024).startswith(b"error: timed out waiting for the request")
	assert s.recv(1024) == b""
	s.close()
	aveto.assert_alive()
	# a crash leaves the socket behind: the next start replaces it
	aveto.send_signal(signal.SIGKILL)
	aveto.wait_exit()
	assert os.path.exists(aveto.sock)
	aveto.start()
	p = devices(aveto, "pin", "127.0.0.42", "--group", "staff")
	assert p.returncode == 0 and p.stdout.startswith("running daemon"), p.stdout + p.stderr
	assert aveto.stop() == 0
	assert not os.path.exists(aveto.sock)	# removed at stop


def test_without_daemon_edits_saved_state(aveto):
	banned_by_signature(aveto, "127.0.0.42", "o")
	assert aveto.stop() == 0
	p = devices(aveto, "forget", "127.0.0.42")
	assert p.returncode == 0, p.stderr
	assert "no running daemon" in p.stdout and "forgot ip:127.0.0.42" in p.stdout, p.stdout
	assert "event recorded" in p.stdout
	# a device never seen can be pinned before its first query
	p = devices(aveto, "pin", "127.0.0.43", "--group", "staff", "--vendor", "Acme")
	assert p.returncode == 0 and "no running daemon" in p.stdout, p.stdout + p.stderr
	d = json.loads(devices(aveto, "show", "127.0.0.43", "--json").stdout)
	assert d["pin_group"] == "staff" and d["pin_vendor"] == "Acme"
	ev = wait_event(aveto, "forget", f"by uid {os.getuid()}", timeout=0)
	assert ev and ev[0][1] == f"vendor=Xiaomi (signature) by uid {os.getuid()}"
	assert wait_event(aveto, "pin", "vendor=Acme group=staff", timeout=0)
	aveto.start()
	r = ask(aveto, "o-next.test", "127.0.0.42")
	assert r.rcode() == dns.rcode.NOERROR and group_of(aveto, "o-next.test") == "home"
	assert ask(aveto, "ads.test", "127.0.0.43").rcode() == dns.rcode.NXDOMAIN
	rec = aveto.wait_log(lambda r: r["client"] == "127.0.0.43")[-1]
	assert rec["group"] == "staff" and rec["vendor"] == "Acme"
	# and the unpin, offline too
	assert aveto.stop() == 0
	p = devices(aveto, "unpin", "ip:127.0.0.43")
	assert p.returncode == 0 and "no running daemon" in p.stdout, p.stdout + p.stderr
	aveto.start()
	assert ask(aveto, "u-next.test", "127.0.0.43").rcode() == dns.rcode.NOERROR
	assert group_of(aveto, "u-next.test") == "home"


def test_inventory_by_address(aveto):
	r = ask(aveto, "ads.test", "127.0.0.44")
	assert r.rcode() == dns.rcode.NOERROR and not r.answer	# nasgroup: nodata
	rec = aveto.wait_log(lambda r: r["client"] == "127.0.0.44")[-1]
	assert rec["device"] == "nas" and rec["group"] == "nasgroup"
	# an inventory name is a KEY
	p = devices(aveto, "pin", "nas", "--group", "staff")
	assert p.returncode == 0 and "ip:127.0.0.44" in p.stdout, p.stdout + p.stderr
	assert ask(aveto, "ads.test", "127.0.0.44").rcode() == dns.rcode.NXDOMAIN


def wait_saved(v, key, pred=lambda d: True, timeout=10.0):
	"""The device as `veto devices --format json` shows it (saved every 5 s)."""
	deadline = time.monotonic() + timeout
	while True:
		p = devices(v, "--format", "json")
		assert p.returncode == 0, p.stderr
		doc = json.loads(p.stdout)	# one document
		assert isinstance(doc, list)
		found = [d for d in doc if d["key"] == key]
		if (found and pred(found[0])) or time.monotonic() > deadline:
			return doc, found
		time.sleep(0.25)


def test_list_formats_and_explain(aveto):
	banned_by_signature(aveto, "127.0.0.40", "l")
	ask(aveto, "x.test", "127.0.0.45")
	devices(aveto, "pin", "127.0.0.41", "--vendor", "Some Very Long Pinned Vendor")
	doc, found = wait_saved(aveto, "ip:127.0.0.40", lambda d: d["vendor"] == "Xiaomi")
	assert found, doc
	d = found[0]
	assert d["vendor_source"] == "signature" and d["group"] == "banned"
	assert d["observed"][0]["count"] == 1 and d["observed"][0]["evidence"] == SIGNATURE
	assert "rom" in d["observed"][0] and "app" in d["observed"][0]
	assert d["pin_vendor"] is None and d["shared"] is False
	assert json.loads(devices(aveto, "--json").stdout) == json.loads(devices(aveto, "--format",
										  "json").stdout)
	wait_saved(aveto, "ip:127.0.0.41", lambda d: d["pin_vendor"] is not None)
	doc, found = wait_saved(aveto, "ip:127.0.0.45")
	assert found
	# the table: one row per device, at most 100 columns without COLUMNS
	env = dict(os.environ)
	env.pop("COLUMNS", None)
	import subprocess
	p = subprocess.run([str(aveto.binary), "devices", "-c", str(aveto.config_file)],
			   capture_output=True, text=True, env=env, timeout=30)
	assert p.returncode == 0, p.stderr
	lines = p.stdout.rstrip("\n").split("\n")
	assert lines[0].split()[:2] == ["KEY", "NAME"], lines
	print(p.stdout)
	assert len(lines) == 1 + len(doc), lines
	assert all(len(ln) <= 100 for ln in lines), [len(ln) for ln in lines]
	row = [ln for ln in lines if ln.startswith("127.0.0.40 ")]
	assert row and "Xiaomi (signature)" in row[0] and "banned" in row[0], lines
	assert "x1 connect.rom.miui.com" in row[0] or "rom x1" in row[0], row
	row = [ln for ln in lines if ln.startswith("127.0.0.41 ")]
	assert row and "pinned" in row[0], lines
	# filters, CSV
	p = devices(aveto, "--vendor", "xiaomi", "--format", "csv")
	rows = p.stdout.strip().split("\n")
	assert rows[0].startswith("key,mac,ip,name,vendor") and len(rows) == 2, rows
	assert rows[1].startswith("ip:127.0.0.40,"), rows
	# an unknown group or vendor is an error with a suggestion, as in veto log and veto check;
	# a known one that no device has is an empty answer; a pinned vendor is known from the table
	p = devices(aveto, "--group", "nope")
	assert p.returncode == 2 and "unknown group 'nope'" in p.stderr, p.stderr
	p = devices(aveto, "--group", "banne")
	assert p.returncode == 2 and "did you mean 'banned'" in p.stderr, p.stderr
	p = devices(aveto, "--vendor", "Xiomi")
	assert p.returncode == 2 and "did you mean 'Xiaomi'" in p.stderr, p.stderr
	p = devices(aveto, "--vendor", "Samsung")
	assert p.returncode == 0 and "no devices match" in p.stdout, p.stdout + p.stderr
	p = devices(aveto, "--vendor", "some very long pinned vendor", "--format", "csv")
	assert p.returncode == 0 and "ip:127.0.0.41," in p.stdout, p.stdout + p.stderr
	p = devices(aveto, "--since", "1h", "--format", "json")
	assert len(json.loads(p.stdout)) >= 3
	p = devices(aveto, "--format", "yaml")
	assert p.returncode == 2
	# show and explain carry the evidence
	p = devices(aveto, "show", "127.0.0.40")
	assert p.returncode == 0 and "observed:" in p.stdout and SIGNATURE in p.stdout, p.stdout
	p = run_veto(["explain", "-c", str(aveto.config_file), "--client", "127.0.0.40", "a.test"])
	assert p.returncode == 0 and "observed:" in p.stdout and SIGNATURE in p.stdout, p.stdout
	p = run_veto(["explain", "-c", str(aveto.config_file), "--client", "127.0.0.40", "--json",
		      "a.test"])
	e = json.loads(p.stdout)
	assert e["device"]["observed"][0]["evidence"] == SIGNATURE
	assert e["device"]["os_families"] == [] and e["device"]["shared"] is False
	p = run_veto(["explain", "-c", str(aveto.config_file), "--client", "127.0.0.41", "a.test"])
	assert "pinned vendor: Some Very Long Pinned Vendor" in p.stdout, p.stdout
