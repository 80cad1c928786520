"""Device identity: the real daemon with fixture lease files of each format, a fixture
ARP file, the real ieee-data registry, EDNS MAC and Client Subnet options from a trusted and an
untrusted address, group selection by every selector, behavioural attribution of a randomised
MAC, the query log fields, `veto devices --json`, and state kept across a restart.

Clients (all on 127.0.0.0/24, which the base configuration allows):
  127.0.0.21  dnsmasq lease, Xiaomi MA-L MAC (ieee-data)        -> banned (vendors, oui)
  127.0.0.22  dhcpd lease, random MAC, hostname Redmi-Note-8    -> banned (vendors, hostname)
  127.0.0.23  kea lease, hostname printer-7                     -> printers (hostnames)
  127.0.0.24  ARP fixture, MAC 00:00:5e:00:53:24                -> bymac (macs)
  127.0.0.25  inventory ip, device 'tv'                         -> tvs (devices)
  127.0.0.26  inventory ip, tags [staff]                        -> staff (tags)
  127.0.0.30  trusted forwarder (EDNS MAC and ECS honoured)
  127.0.0.31  untrusted: its EDNS options are ignored
"""

import json
import time

import dns.edns
import dns.message
import dns.rcode
import pytest

from conftest import run_veto, udp_exchange

TRUSTED = "127.0.0.30"
UNTRUSTED = "127.0.0.31"
XIAOMI_MAC = "a4:45:19:00:00:01"	# MA-L A44519: Xiaomi Communications Co Ltd
RANDOM_MAC = "02:aa:bb:cc:dd:01"

DNSMASQ = """0 a4:45:19:00:00:01 127.0.0.21 phone-21 01:a4:45:19:00:00:01
1 00:00:5e:00:53:99 127.0.0.27 expired-host *
"""

DHCPD = """# dhcpd.leases fixture
lease 127.0.0.22 {
  starts 4 2024/01/01 00:00:00;
  ends never;
  binding state active;
  hardware ethernet 0a:11:22:33:44:22;
  client-hostname "OldName";
}
lease 127.0.0.22 {
  starts 4 2024/01/01 00:00:00;
  ends never;
  binding state active;
  hardware ethernet 0a:11:22:33:44:22;
  client-hostname "Redmi-Note-8";
  set vendor-class-identifier = "android-dhcp-13";
}
"""

KEA = """address,hwaddr,client_id,valid_lifetime,expire,subnet_id,fqdn_fwd,fqdn_rev,hostname,state,user_context
127.0.0.23,00:00:5e:00:53:23,,4294967295,4294967295,1,0,0,printer-7,0,
"""

ARP = """IP address       HW type     Flags       HW address            Mask     Device
127.0.0.24       0x1         0x2         00:00:5e:00:53:24     *        lo
"""


def devices_edit(workdir):
	def edit(cfg):
		(workdir / "dnsmasq.leases").write_text(DNSMASQ)
		(workdir / "dhcpd.leases").write_text(DHCPD)
		(workdir / "kea-leases4.csv").write_text(KEA)
		(workdir / "arp.txt").write_text(ARP)
		cfg["state_dir"] = str(workdir / "state")
		cfg["devices"] = {
			"inventory": [
				{"name": "tv", "mac": "00:00:5e:00:53:25", "ip": "127.0.0.25"},
				{"name": "anna-laptop", "mac": "00:00:5e:00:53:26", "ip": "127.0.0.26",
				 "owner": "anna", "tags": ["staff"]},
			],
			"dhcp_leases": [
				{"file": str(workdir / "dnsmasq.leases"), "format": "dnsmasq"},
				{"file": str(workdir / "dhcpd.leases"), "format": "dhcpd"},
				{"file": str(workdir / "kea-leases4.csv"), "format": "kea"},
			],
			"arp_file": str(workdir / "arp.txt"),
			"arp_refresh_s": 1,
			"trusted_forwarders": [TRUSTED + "/32"],
		}
		cfg["groups"] = [
			{"name": "banned", "vendors": ["Xiaomi", "Oppo"], "default": "deny",
			 "action": "refused"},
			{"name": "printers", "hostnames": ["printer-*"], "block": ["ads"]},
			{"name": "bymac", "macs": ["00:00:5e:00:53:24"], "block": ["ads"]},
			{"name": "tvs", "devices": ["tv"], "block": ["ads"]},
			{"name": "staff", "tags": ["staff"], "block": ["ads"]},
			{"name": "random", "randomised_mac": True, "block": ["ads"]},
		] + cfg["groups"]
	return edit


@pytest.fixture
def dveto(veto_factory, tmp_path):
	work = tmp_path / "dev"
	work.mkdir()
	v = veto_factory(edit=devices_edit(work))
	v.work = work
	return v


def mac_option(mac):
	return dns.edns.GenericOption(65001, bytes.fromhex(mac.replace(":", "")))


def ecs_option(ip, prefix=32):
	return dns.edns.ECSOption(ip, prefix, 0)


def ask(v, name, src, options=None, qtype="A"):
	q = dns.message.make_query(name, qtype, use_edns=0, options=options or [])
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=3.0)
	assert wire is not None, f"no reply to {name} from {src}"
	return dns.message.from_wire(wire)


def record_of(v, name):
	got = v.wait_log(lambda r: r["qname"] == name)
	assert got, f"no log record for {name}: {v.log_records()}"
	return got[-1]


def wait_identified(v, src, name_prefix, pred, timeout=10.0, options=None):
	"""Sources load in the thread pool after start: query until pred(record) holds."""
	deadline = time.monotonic() + timeout
	i = 0
	while True:
		name = f"{name_prefix}-{i}.test"
		ask(v, name, src, options)
		rec = record_of(v, name)
		if pred(rec) or time.monotonic() > deadline:
			return rec
		i += 1
		time.sleep(0.05)


CASES = [
	# client, expected group, mac, device, vendor, vendor_source
	("127.0.0.21", "banned", XIAOMI_MAC, "phone-21", "Xiaomi", "oui"),
	("127.0.0.22", "banned", "0a:11:22:33:44:22", "Redmi-Note-8", "Xiaomi", "hostname"),
	("127.0.0.23", "printers", "00:00:5e:00:53:23", "printer-7", "ICANN, IANA Department", "oui"),
	("127.0.0.24", "bymac", "00:00:5e:00:53:24", None, "ICANN, IANA Department", "oui"),
	("127.0.0.25", "tvs", "00:00:5e:00:53:25", "tv", "ICANN, IANA Department", "oui"),
	("127.0.0.26", "staff", "00:00:5e:00:53:26", "anna-laptop", "ICANN, IANA Department", "oui"),
	("127.0.0.27", None, None, None, None, None),	# expired lease: nothing known, no group
]


def test_group_per_selector_and_log_fields(dveto):
	for client, group, mac, device, vendor, source in CASES:
		tag = client.replace(".", "-")
		rec = wait_identified(dveto, client, f"id-{tag}", lambda r: r["group"] == group)
		assert rec["group"] == group, (client, rec)
		assert rec["mac"] == mac, (client, rec)
		assert rec["device"] == device, (client, rec)
		assert rec["vendor"] == vendor, (client, rec)
		assert rec["vendor_source"] == source, (client, rec)
		r = ask(dveto, "ads.test", client)
		if group == "banned":
			assert r.rcode() == dns.rcode.REFUSED, client
		else:
			assert r.rcode() == dns.rcode.NOERROR and r.answer, client


def test_edns_mac_and_ecs_trusted_only(dveto):
	# trusted forwarder: the MAC option names the device (OUI lookup on it)
	rec = wait_identified(dveto, TRUSTED, "mac-trusted", lambda r: r["vendor"] == "Xiaomi",
			      options=[mac_option(XIAOMI_MAC)])
	assert rec["mac"] == XIAOMI_MAC and rec["vendor"] == "Xiaomi" and rec["group"] == "banned"
	assert rec["client"] == TRUSTED
	# the same options from an untrusted address are ignored
	ask(dveto, "mac-untrusted.test", UNTRUSTED, [mac_option(XIAOMI_MAC)])
	rec = record_of(dveto, "mac-untrusted.test")
	assert rec["mac"] is None and rec["group"] != "banned"
	# ECS /32 from the trusted forwarder: the inventory device behind it
	ask(dveto, "ecs-trusted.test", TRUSTED, [ecs_option("127.0.0.25")])
	rec = record_of(dveto, "ecs-trusted.test")
	assert rec["device"] == "tv" and rec["group"] == "tvs"
	ask(dveto, "ecs-untrusted.test", UNTRUSTED, [ecs_option("127.0.0.25")])
	rec = record_of(dveto, "ecs-untrusted.test")
	assert rec["device"] is None and rec["group"] != "tvs"


def test_randomised_mac_banned_after_one_signature_query(dveto, veto_factory):
	opts = [mac_option(RANDOM_MAC)]
	r = ask(dveto, "before.test", TRUSTED, opts)
	assert r.rcode() == dns.rcode.NOERROR
	rec = record_of(dveto, "before.test")
	assert rec["group"] == "random" and rec["vendor"] is None
	# one connectivity check: answered normally (it is not blocked), the vendor is recorded
	r = ask(dveto, "connect.rom.miui.com", TRUSTED, opts)
	assert r.rcode() == dns.rcode.NOERROR and r.answer
	rec = record_of(dveto, "connect.rom.miui.com")
	assert rec["group"] == "random"
	assert rec["vendor"] == "Xiaomi" and rec["vendor_source"] == "signature"
	err = dveto.wait_stderr("group 'random' -> 'banned'")
	assert "02:aa:bb:cc:dd:01" in err and "connect.rom.miui.com" in err
	# the next query is refused
	r = ask(dveto, "after.test", TRUSTED, opts)
	assert r.rcode() == dns.rcode.REFUSED
	assert record_of(dveto, "after.test")["group"] == "banned"

	# `veto devices --json` sees it (saved every 5 s, or at the latest at stop)
	deadline = time.monotonic() + 8
	while True:
		p = run_veto(["devices", "-c", str(dveto.config_file), "--json"])
		assert p.returncode == 0, p.stderr
		devs = {d["key"]: d for d in json.loads(p.stdout)}
		if f"mac:{RANDOM_MAC}" in devs or time.monotonic() > deadline:
			break
		time.sleep(0.25)
	d = devs[f"mac:{RANDOM_MAC}"]
	assert d["randomised"] is True and d["vendor"] == "Xiaomi"
	assert d["vendor_source"] == "signature" and d["group"] == "banned"
	assert d["observed"][0]["vendor"] == "Xiaomi" and d["observed"][0]["count"] == 1
	assert d["observed"][0]["evidence"] == "connect.rom.miui.com"
	assert TRUSTED in d["ips"]

	# restart: the attribution is kept, the first query is refused
	assert dveto.stop() == 0
	dveto.start()
	r = ask(dveto, "restarted.test", TRUSTED, opts)
	assert r.rcode() == dns.rcode.REFUSED
	# text output too
	p = run_veto(["devices", "show", RANDOM_MAC, "-c", str(dveto.config_file)])
	assert p.returncode == 0 and "02:aa:bb:cc:dd:01 (randomised)" in p.stdout
	# times in local time, as veto log and veto report print them (JSON keeps UTC)
	import re
	assert re.search(r"seen: +\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \.\. \d{4}-", p.stdout), p.stdout


def test_lease_file_change_and_corruption(dveto):
	rec = wait_identified(dveto, "127.0.0.23", "lease0", lambda r: r["device"] == "printer-7")
	assert rec["device"] == "printer-7"
	# renamed host: picked up from the file change
	kea = dveto.work / "kea-leases4.csv"
	kea.write_text(KEA.replace("printer-7", "printer-8"))
	rec = wait_identified(dveto, "127.0.0.23", "lease1", lambda r: r["device"] == "printer-8")
	assert rec["device"] == "printer-8"
	# a half-written file: reported with its location, the last good table is kept
	kea.write_text(KEA.replace("printer-7", "printer-9").rstrip("\n"))
	err = dveto.wait_stderr("kea-leases4.csv:2")
	assert "keeping the last good table" in err
	ask(dveto, "lease2.test", "127.0.0.23")
	assert record_of(dveto, "lease2.test")["device"] == "printer-8"


def test_devices_added_by_reload(veto_factory, tmp_path):
	"""A configuration without devices, then a SIGHUP that adds the section: identity starts
	without a restart (inventory, the devices selector, the log fields)."""
	import signal
	work = tmp_path / "later"
	work.mkdir()
	v = veto_factory()
	ask(v, "before.test", "127.0.0.25")
	assert record_of(v, "before.test")["device"] is None
	v.rewrite_config(devices_edit(work))
	v.send_signal(signal.SIGHUP)
	v.wait_stderr("reload: devices: started")
	rec = wait_identified(v, "127.0.0.25", "after", lambda r: r["device"] == "tv")
	assert rec["device"] == "tv" and rec["group"] == "tvs"
	assert "restart needed" not in v.stderr()
	assert v.stop() == 0
	assert (work / "state" / "devices.db").exists()


def test_arp_file_unreadable_keeps_last_table(dveto):
	"""The neighbour table is re-read every arp_refresh_s: a read that fails is reported once,
	the last good table keeps identifying clients, and a read that works again is reported."""
	rec = wait_identified(dveto, "127.0.0.24", "arp0", lambda r: r["mac"] is not None)
	assert rec["mac"] == "00:00:5e:00:53:24"
	arp = dveto.work / "arp.txt"
	arp.rename(dveto.work / "arp.txt.moved")
	err = dveto.wait_stderr("arp.txt: No such file or directory")
	assert "keeping the last good table" in err
	ask(dveto, "arp1.test", "127.0.0.24")
	assert record_of(dveto, "arp1.test")["mac"] == "00:00:5e:00:53:24"
	time.sleep(2.5)		# a few more failing reads (arp_refresh_s: 1), each not reported
	(dveto.work / "arp.txt.moved").rename(arp)
	err = dveto.wait_stderr("arp.txt: readable again")
	assert err.count("arp.txt: No such file or directory") == 1	# once, not every second


def test_corrupt_state_is_set_aside(veto_factory, tmp_path):
	work = tmp_path / "dev"
	work.mkdir()
	(work / "state").mkdir()
	(work / "state" / "devices.db").write_bytes(b"not a database at all\n" * 100)
	v = veto_factory(edit=devices_edit(work))
	err = v.wait_stderr("corrupt device state")
	assert "renamed to" in err
	assert any(p.name.startswith("devices.db.corrupt-") for p in (work / "state").iterdir())
	v.assert_alive()


def test_explain_identity(dveto):
	# a device attributed by behaviour, read back from the saved state
	opts = [mac_option(RANDOM_MAC)]
	ask(dveto, "connect.rom.miui.com", TRUSTED, opts)
	assert dveto.stop() == 0	# saved at stop
	cfg = str(dveto.config_file)
	p = run_veto(["explain", "-c", cfg, "--client", TRUSTED, "--mac", RANDOM_MAC, "x.test",
		      "--json"])
	assert p.returncode == 0, p.stderr
	e = json.loads(p.stdout)
	assert e["group"] == "banned" and e["matched_by"] == "vendors"
	assert e["device"]["randomised"] is True and e["device"]["saved"] is True
	assert e["device"]["vendor"] == "Xiaomi" and e["device"]["vendor_source"] == "signature"
	# from the sources: lease hostname, inventory, ARP
	for client, group, sel, field, value in [
		("127.0.0.22", "banned", "vendors", "hostname", "Redmi-Note-8"),
		("127.0.0.23", "printers", "hostnames", "hostname", "printer-7"),
		("127.0.0.24", "bymac", "macs", "mac", "00:00:5e:00:53:24"),
		("127.0.0.25", "tvs", "devices", "inventory", "tv"),
		("127.0.0.26", "staff", "tags", "inventory", "anna-laptop"),
		("127.0.0.2", "sink", "clients", "mac", None),
	]:
		p = run_veto(["explain", "-c", cfg, "--client", client, "x.test", "--json"])
		assert p.returncode == 0, p.stderr
		e = json.loads(p.stdout)
		assert (e["group"], e["matched_by"], e["device"][field]) == (group, sel, value), e
	p = run_veto(["explain", "-c", cfg, "--client", "127.0.0.23", "x.test"])
	assert "group:   printers (matched by hostnames)" in p.stdout
	assert "hostname 'printer-7'" in p.stdout
	p = run_veto(["explain", "-c", cfg, "--client", TRUSTED, "--mac", "zz", "x.test"])
	assert p.returncode == 2 and "bad MAC address 'zz'" in p.stderr


def test_explain_reports_corrupt_lease_file(veto_factory, tmp_path):
	"""A lease file the daemon would refuse (keeping its last good table) is reported by veto
	explain too, as FILE:LINE: message on standard error; the identity is given without it."""
	work = tmp_path / "dev"
	work.mkdir()
	v = veto_factory(edit=devices_edit(work), start=False)
	(work / "dnsmasq.leases").write_text(DNSMASQ.replace("127.0.0.21", "127.0.0.300"))
	p = run_veto(["explain", "-c", str(v.config_file), "--client", "127.0.0.21", "x.test", "--json"])
	assert p.returncode == 0, p.stderr
	lease_lines = [line for line in p.stderr.splitlines() if "dnsmasq.leases" in line]
	assert len(lease_lines) == 1, p.stderr
	assert lease_lines[0].startswith(f"veto explain: warning: {work / 'dnsmasq.leases'}:1: "), p.stderr
	assert "127.0.0.300" in lease_lines[0] and lease_lines[0].endswith("(not used for the identity)")
	assert json.loads(p.stdout)["device"]["mac"] is None
	# the other lease files still are
	p = run_veto(["explain", "-c", str(v.config_file), "--client", "127.0.0.23", "x.test", "--json"])
	assert p.returncode == 0 and json.loads(p.stdout)["device"]["hostname"] == "printer-7"


def test_device_events_in_query_database(veto_factory, tmp_path):
	"""First sight, vendor attribution and the group change land in the query-log database."""
	import sqlite3
	work = tmp_path / "ev"
	work.mkdir()
	base = devices_edit(work)

	def edit(cfg):
		base(cfg)
		cfg["log"]["database"] = "queries.db"	# relative to state_dir
	v = veto_factory(edit=edit)
	opts = [mac_option(RANDOM_MAC)]
	assert ask(v, "first.test", TRUSTED, opts).rcode() == dns.rcode.NOERROR
	assert ask(v, "connect.rom.miui.com", TRUSTED, opts).rcode() == dns.rcode.NOERROR
	time.sleep(0.01)	# a later millisecond than the events (the --limit 1 case below)
	assert ask(v, "next.test", TRUSTED, opts).rcode() == dns.rcode.REFUSED
	assert v.stop() == 0	# flushes the database
	db = sqlite3.connect(f"file:{work / 'state' / 'queries.db'}?mode=ro", uri=True)
	rows = db.execute("SELECT kind, mac, client, old_group, new_group, evidence FROM device_events "
			  "WHERE mac = ? ORDER BY id", (RANDOM_MAC,)).fetchall()
	db.close()
	kinds = [r[0] for r in rows]
	assert kinds == ["first_seen", "vendor", "group_change"], rows
	assert rows[0][2] == TRUSTED and rows[0][4] == "random"
	assert rows[2][3:] == ("random", "banned", "connect.rom.miui.com")

	# `veto report device`: the events in the device's timeline, in time order with its queries
	# (an event comes before the query that caused it: the query is logged when it completes)
	path = str(work / "state" / "queries.db")
	p = run_veto(["report", "device", RANDOM_MAC.upper().replace(":", "-"), "--db", path,
		      "--format", "json"])
	assert p.returncode == 0, p.stderr
	tl = json.loads(p.stdout)
	kinds = [e["kind"] if e["kind"] != "query" else e["qname"] for e in tl]
	assert [k for k in kinds if not k.endswith(".test") and "." not in k] == \
		["first_seen", "vendor", "group_change"], kinds
	assert kinds.index("first_seen") < kinds.index("first.test")
	assert kinds.index("group_change") < kinds.index("connect.rom.miui.com") < \
		kinds.index("next.test")
	assert [e["ts"] for e in tl] == sorted(e["ts"] for e in tl)
	vendor = tl[kinds.index("vendor")]
	assert vendor["vendor"] and vendor["evidence"] == "connect.rom.miui.com"
	change = tl[kinds.index("group_change")]
	assert (change["old_group"], change["group"]) == ("random", "banned")
	assert change["mac"] == RANDOM_MAC and change["client"] == TRUSTED
	p = run_veto(["report", "device", RANDOM_MAC, "--db", path, "--wide"])
	assert p.returncode == 0, p.stderr
	assert "[group] random -> banned, from connect.rom.miui.com" in p.stdout
	assert "[first seen] by mac" in p.stdout
	p = run_veto(["report", "device", RANDOM_MAC, "--db", path, "--format", "csv"])
	assert p.returncode == 0, p.stderr
	lines = p.stdout.splitlines()
	assert lines[0].startswith("ts,kind,client,mac,")
	assert sum(1 for ln in lines if ",group_change," in ln) == 1
	# the newest query only: the events before it are left out, not shown with a gap
	p = run_veto(["report", "device", RANDOM_MAC, "--db", path, "--format", "json",
		      "--limit", "1"])
	assert p.returncode == 0, p.stderr
	assert [e["kind"] for e in json.loads(p.stdout)] == ["query"]
