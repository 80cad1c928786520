"""The daemon and `veto explain` decide alike: one configuration with devices (inventory by MAC and
by IP, a dnsmasq lease file with hostnames and randomised MACs, a trusted forwarder sending the
EDNS MAC option and Client Subnet, hostname patterns, signatures), groups using every selector,
allow and block lists with different actions, default-deny groups and a client outside
server.allow. Every case's query goes through the running daemon and its query-log record is
read; after the daemon stopped (SIGTERM: it saves devices.db) `veto explain --json` is asked the
same question with the same configuration. Group, blocked, action, list and rule must agree.

How the explain arguments describe the client the daemon saw (the daemon, devices_query):
  - a direct client: --client <its address>; no --mac (explain finds the MAC in the same
    inventory and lease file the daemon used).
  - from the trusted forwarder: the daemon takes the EDNS MAC option (65001) as the MAC, and an
    ECS option with a full-length prefix (/32) as the client's address, which then also decides
    the `clients` selector and the lease/inventory lookup. So --mac <EDNS MAC> when one was sent,
    and --client <ECS address> when a /32 ECS was sent, else --client <forwarder address>.
  - from an untrusted address, or with an ECS prefix shorter than /32, the options are ignored:
    --client <source address>, no --mac.
  server.allow is checked on the packet's source address by the daemon and on --client by
  explain; explain has no way to give both, so an ECS address outside server.allow sent by an
  allowed forwarder cannot be described (that case is marked).

Not compared: the daemon's action for a query it forwarded is "forward" or "cache"; explain has
none (null) when the name is not blocked, so both count as null.

Clients (127.0.0.0/24 is in server.allow, 127.0.1.0/24 is not):
  .40 warm-up lease (identity sources loaded)     .41 lease, MAC in the inventory (tag kiosk)
  .42 inventory by IP (device tv)                 .43 inventory by IP (tag staff)
  .44 lease, Xiaomi MA-L MAC (OUI vendor)         .45 lease, randomised MAC, hostname Redmi-*
  .46 lease, hostname printer-46                  .47 lease, randomised MAC, plain hostname
  .48 lease, MAC in the macs selector             .49 lease, randomised MAC, signature query
  .50 lease, IANA MAC, no hostname ('*')          .51 expired lease
  .60 .61 .64 clients selectors                   .62 .63 no device source (.63 signature query)
  .30 trusted forwarder (clients selector 'fwd')  .31 untrusted (its EDNS options ignored)
"""

import json
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import dns.edns
import dns.message
import pytest

from conftest import Veto, run_veto, udp_exchange
from fakeupstream import FakeUpstream

TRUSTED = "127.0.0.30"
UNTRUSTED = "127.0.0.31"
OUTSIDE = "127.0.1.1"
IEEE_DIR = Path("/usr/share/ieee-data")
HAVE_OUI = (IEEE_DIR / "oui.csv").is_file()

WARM_IP, WARM_MAC = "127.0.0.40", "00:00:5e:00:53:40"
KIOSK_MAC = "00:00:5e:00:53:41"
TV_MAC = "00:00:5e:00:53:42"
XIAOMI_MAC = "a4:45:19:00:00:44"	# MA-L A44519: Xiaomi Communications Co Ltd
REDMI_MAC = "0a:11:22:33:44:45"
PRINTER_MAC = "00:00:5e:00:53:46"
LAPTOP_MAC = "02:00:00:00:00:47"
NAS_MAC = "00:00:5e:00:53:48"
SIG_MAC = "06:00:00:00:00:49"
IANA_MAC = "00:00:5e:00:53:50"
FWD_RANDOM_MAC = "02:aa:bb:cc:dd:31"
FWD_OTHER_MAC = "0e:00:00:00:00:60"
SIGNATURE = "connect.rom.miui.com"

LEASES = "\n".join([
	f"0 {WARM_MAC} {WARM_IP} warm-40 *",
	f"0 {KIOSK_MAC} 127.0.0.41 kiosk-41 *",
	f"0 {XIAOMI_MAC} 127.0.0.44 phone-44 01:{XIAOMI_MAC}",
	f"0 {REDMI_MAC} 127.0.0.45 Redmi-Note-9 *",
	f"0 {PRINTER_MAC} 127.0.0.46 printer-46 *",
	f"0 {LAPTOP_MAC} 127.0.0.47 laptop-47 *",
	f"0 {NAS_MAC} 127.0.0.48 nas-48 *",
	f"0 {SIG_MAC} 127.0.0.49 anon-49 *",
	f"0 {IANA_MAC} 127.0.0.50 * *",
	"1 00:00:5e:00:53:51 127.0.0.51 expired-51 *",
]) + "\n"


def parity_edit(work):
	def edit(cfg):
		(work / "dnsmasq.leases").write_text(LEASES)
		cfg["state_dir"] = str(work / "state")
		cfg["devices"] = {
			"inventory": [
				{"name": "kiosk", "mac": KIOSK_MAC, "tags": ["kiosk"]},
				{"name": "tv", "mac": TV_MAC, "ip": "127.0.0.42"},
				{"name": "labpc", "mac": "00:00:5e:00:53:43", "ip": "127.0.0.43",
				 "tags": ["staff"]},
			],
			"dhcp_leases": [{"file": str(work / "dnsmasq.leases"), "format": "dnsmasq"}],
			"arp": False,
			"trusted_forwarders": [TRUSTED + "/32"],
			"oui": {"dir": str(IEEE_DIR)} if HAVE_OUI else False,
			"signatures": {"Xiaomi": [SIGNATURE], "Oppo": ["conn1.oppomobile.com"]},
			"hostname_vendors": [{"pattern": "Redmi-*", "vendor": "Xiaomi"}],
		}
		probe = cfg["groups"][0]
		assert probe["name"] == "probe"
		cfg["groups"] = [
			probe,
			{"name": "banned", "vendors": ["Xiaomi"], "default": "deny", "allow": ["portal"],
			 "action": "refused"},
			{"name": "printers", "hostnames": ["printer-*"], "block": ["ads"],
			 "action": "nxdomain"},
			{"name": "nas", "macs": [NAS_MAC], "block": ["ads", "canary"]},
			{"name": "tvs", "devices": ["tv"], "block": ["ads"], "allow": ["exceptions"],
			 "action": "nodata"},
			{"name": "kiosks", "tags": ["kiosk"], "default": "deny",
			 "allow": ["portal", "exceptions"]},
			{"name": "staff", "tags": ["staff"], "block": ["ads", "filelist"]},
			{"name": "random", "randomised_mac": True, "block": ["ads"], "action": "refused"},
			{"name": "sink", "clients": ["127.0.0.60"], "block": ["ads", "canary", "filelist"]},
			{"name": "nx", "clients": ["127.0.0.61/32"], "block": ["ads"], "action": "nxdomain"},
			{"name": "fwd", "clients": [TRUSTED + "/32"], "block": ["ads"], "action": "nodata"},
			{"name": "lockdown", "clients": ["127.0.0.64/32", "127.0.0.50/32"],
			 "default": "deny", "allow": ["portal"], "action": "nxdomain"},
		]
	return edit


@dataclass
class Case:
	id: str
	src: str			# the packet's source address
	name: str
	qtype: str = "A"
	mac: str = None			# EDNS MAC option (65001)
	ecs: str = None			# ECS address
	ecs_prefix: int = 32
	group: object = None		# the daemon's group (sanity); a pair = (with OUI, without)
	xfail: str = None		# reason of a known mismatch

	def explain_args(self):
		"""--client/--mac describing the client as the daemon identifies it (module doc)."""
		client = self.src
		trusted = self.src == TRUSTED
		if trusted and self.ecs is not None and self.ecs_prefix == 32:
			client = self.ecs
		args = ["--client", client]
		if trusted and self.mac is not None:
			args += ["--mac", self.mac]
		return args

	def options(self):
		opts = []
		if self.mac is not None:
			opts.append(dns.edns.GenericOption(65001, bytes.fromhex(self.mac.replace(":", ""))))
		if self.ecs is not None:
			opts.append(dns.edns.ECSOption(self.ecs, self.ecs_prefix, 0))
		return opts



# Queries run before the compared ones: a signature query attributes a vendor to the device, which
# moves it to 'banned' from its next query on.
SETUP = [
	Case("sig-lease-randomised", "127.0.0.49", SIGNATURE),
	Case("sig-no-device-source", "127.0.0.63", SIGNATURE),
	Case("sig-edns-mac", TRUSTED, SIGNATURE, mac=FWD_RANDOM_MAC),
]

CASES = [
	# no device source
	Case("nosrc-clients-blocked", "127.0.0.60", "ads.test", group="sink"),
	Case("nosrc-clients-list-action", "127.0.0.60", "use-application-dns.net", group="sink"),
	Case("nosrc-clients-filelist", "127.0.0.60", "hostsb.test", "AAAA", group="sink"),
	Case("nosrc-clients-wildcard", "127.0.0.60", "a.b.wild.test", group="sink"),
	Case("nosrc-clients-unlisted", "127.0.0.60", "www.example.test", group="sink"),
	Case("nosrc-nx-subdomain", "127.0.0.61", "x.tracker.test", group="nx"),
	Case("nosrc-nx-unlisted", "127.0.0.61", "ads.test.example", group="nx"),
	Case("nosrc-no-group-listed", "127.0.0.62", "ads.test", group=None),
	Case("nosrc-no-group-unlisted", "127.0.0.62", "plain.test", "MX", group=None),
	Case("nosrc-lockdown-denied", "127.0.0.64", "www.example.test", group="lockdown"),
	Case("nosrc-lockdown-allowed", "127.0.0.64", "portal.test", group="lockdown"),
	Case("nosrc-signature-attributed", "127.0.0.63", "www.example.test", group="banned"),
	Case("nosrc-signature-attributed-allowed", "127.0.0.63", "portal.test", group="banned"),
	Case("outside-server-allow", OUTSIDE, "www.example.test", group=None),
	Case("outside-server-allow-listed", OUTSIDE, "ads.test", group=None),
	# lease-known MACs and hostnames
	Case("lease-oui-vendor-denied", "127.0.0.44", "www.example.test",
	     group=("banned", None)),
	Case("lease-oui-vendor-allowed", "127.0.0.44", "portal.test", group=("banned", None)),
	Case("lease-hostname-pattern-blocked", "127.0.0.46", "ads.test", group="printers"),
	Case("lease-hostname-pattern-unlisted", "127.0.0.46", "printer.example.test", "AAAA",
	     group="printers"),
	Case("lease-macs-blocked", "127.0.0.48", "tracker.test", group="nas"),
	Case("lease-macs-list-action", "127.0.0.48", "use-application-dns.net", group="nas"),
	Case("lease-macs-unlisted", "127.0.0.48", "nas.example.test", group="nas"),
	Case("lease-no-hostname-clients", "127.0.0.50", "ads.test", group="lockdown"),
	Case("lease-expired", "127.0.0.51", "ads.test", group=None),
	# randomised (locally administered) MACs
	Case("randomised-hostname-vendor", "127.0.0.45", "www.example.test", group="banned"),
	Case("randomised-hostname-vendor-allowed", "127.0.0.45", "portal.test", "AAAA",
	     group="banned"),
	Case("randomised-plain-blocked", "127.0.0.47", "ads.test", group="random"),
	Case("randomised-plain-unlisted", "127.0.0.47", "laptop.example.test", group="random"),
	Case("randomised-signature-attributed", "127.0.0.49", "ads.test", group="banned"),
	Case("randomised-signature-again", "127.0.0.49", SIGNATURE, group="banned"),
	# inventory by MAC (through the lease) and by IP
	Case("inventory-mac-tags-denied", "127.0.0.41", "ads.test", group="kiosks"),
	Case("inventory-mac-tags-allowed", "127.0.0.41", "ok.ads.test", group="kiosks"),
	Case("inventory-ip-devices-blocked", "127.0.0.42", "ads.test", group="tvs"),
	Case("inventory-ip-devices-allow-over-block", "127.0.0.42", "ok.ads.test", group="tvs"),
	Case("inventory-ip-devices-unlisted", "127.0.0.42", "tv.example.test", group="tvs"),
	Case("inventory-ip-tags-filelist", "127.0.0.43", "filetrack.test", group="staff"),
	Case("inventory-ip-tags-adblock", "127.0.0.43", "x.adblock.test", group="staff"),
	# the trusted forwarder: EDNS MAC and/or ECS
	Case("fwd-plain", TRUSTED, "ads.test", group="fwd"),
	Case("fwd-edns-mac-lease-known", TRUSTED, "ads.test", mac=NAS_MAC, group="nas"),
	Case("fwd-edns-mac-inventory", TRUSTED, "www.example.test", mac=KIOSK_MAC, group="kiosks"),
	Case("fwd-edns-mac-oui", TRUSTED, "ads.test", mac=XIAOMI_MAC, group=("banned", "fwd")),
	Case("fwd-edns-mac-signature-attributed", TRUSTED, "ads.test", mac=FWD_RANDOM_MAC,
	     group="banned"),
	Case("fwd-edns-mac-randomised", TRUSTED, "ads.test", mac="02:aa:bb:cc:dd:32", group="random"),
	Case("fwd-ecs-inventory-ip", TRUSTED, "ads.test", "AAAA", ecs="127.0.0.42", group="tvs"),
	Case("fwd-ecs-lease", TRUSTED, "ads.test", ecs="127.0.0.46", group="printers"),
	Case("fwd-ecs-clients", TRUSTED, "use-application-dns.net", ecs="127.0.0.60", group="sink"),
	Case("fwd-ecs-and-mac", TRUSTED, "ads.test", mac=FWD_OTHER_MAC, ecs="127.0.0.61",
	     group="random"),
	Case("fwd-ecs-short-prefix-ignored", TRUSTED, "ads.test", ecs="127.0.0.60", ecs_prefix=24,
	     group="fwd"),
	# the client a trusted forwarder names (ECS) is outside server.allow: refused, as veto
	# explain --client <that address> says
	Case("fwd-ecs-outside-server-allow", TRUSTED, "ads.test", ecs="127.0.1.7", group=None),
	Case("untrusted-edns-ignored", UNTRUSTED, "ads.test", mac=NAS_MAC, ecs="127.0.0.60",
	     group=None),
]

FIELDS = ("group", "blocked", "action", "list", "rule")


def expected_group(case):
	return case.group[0 if HAVE_OUI else 1] if isinstance(case.group, tuple) else case.group


def ask(v, case, tag):
	"""Sends case's query and returns its query-log record (the first record from that source
	for that name and type that was not in the log before)."""
	def same(r):
		return r["client"] == case.src and r["qname"] == case.name and r["qtype"] == case.qtype
	before = len(v.wait_log(same, count=0, timeout=0))
	q = dns.message.make_query(case.name, case.qtype, use_edns=0, options=case.options())
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=case.src, timeout=3.0)
	assert wire is not None, f"{tag}: no reply to {case.name} from {case.src}"
	got = v.wait_log(same, count=before + 1)
	assert len(got) > before, f"{tag}: no log record for {case.name} from {case.src}"
	return got[before]


def daemon_view(rec):
	action = rec["action"]
	if action in ("forward", "cache"):
		action = None
	return {"group": rec["group"], "blocked": rec["blocked"], "action": action,
		"list": rec["list"], "rule": rec["rule"]}


def explain_view(e):
	return {k: e[k] for k in FIELDS}


@pytest.fixture(scope="module")
def parity(veto_bin, tmp_path_factory):
	"""Runs every case through one daemon, stops it, runs explain for each: {case id: (daemon
	view, explain view, raw log record)}."""
	up = FakeUpstream()
	work = tmp_path_factory.mktemp("parity")
	(work / "dev").mkdir()
	v = Veto(veto_bin, work / "veto", [up], parity_edit(work / "dev"))
	try:
		v.start()
		# the identity sources load in the background after start: wait until the warm-up
		# lease is identified (and its OUI vendor known, when the registry is there)
		warm = None
		deadline = time.monotonic() + 10
		for i in range(1000):
			warm = ask(v, Case("warm", WARM_IP, f"warm-{i}.test"), "warm-up")
			if warm["mac"] == WARM_MAC and (warm["vendor"] is not None or not HAVE_OUI):
				break
			assert time.monotonic() < deadline, f"sources not loaded: {warm}\n{v.stderr()}"
			time.sleep(0.05)
		for c in SETUP:
			ask(v, c, c.id)
		err = v.wait_stderr(f"'{SIGNATURE}': group 'fwd' -> 'banned'")
		assert err.count(f"from query '{SIGNATURE}'") == 3, err
		records = {c.id: ask(v, c, c.id) for c in CASES}
		assert v.stop() == 0, v.stderr()
		assert not v.sanitizer_reports(), v.stderr()
	finally:
		if v.running():
			v.stop(signal.SIGKILL)
		up.stop()
	out = {}
	for c in CASES:
		p = run_veto(["explain", "-c", str(v.config_file), *c.explain_args(), "--json",
			      c.name, c.qtype])
		assert p.returncode == 0, f"{c.id}: {p.stderr}"
		e = json.loads(p.stdout)
		out[c.id] = (daemon_view(records[c.id]), explain_view(e), records[c.id], e)
	return out


def mismatch_table(parity, cases):
	rows = []
	for c in cases:
		d, e, _, _ = parity[c.id]
		for k in FIELDS:
			if d[k] != e[k]:
				rows.append((c.id + (" (known)" if c.xfail else ""), k, repr(d[k]), repr(e[k])))
	if not rows:
		return ""
	w = [max(len(r[i]) for r in rows + [("case", "field", "daemon", "explain")]) for i in range(4)]
	lines = ["  ".join(x.ljust(w[i]) for i, x in enumerate(("case", "field", "daemon", "explain")))]
	lines += ["  ".join(x.ljust(w[i]) for i, x in enumerate(r)) for r in rows]
	return "\n".join(lines)


def test_case_table_is_large_enough():
	assert len(CASES) >= 40
	assert len({c.id for c in CASES}) == len(CASES)


def test_all_cases_agree(parity):
	"""Every mismatch in one table; the known ones (marked in CASES) do not fail this test."""
	unexpected = [c for c in CASES if not c.xfail and parity[c.id][0] != parity[c.id][1]]
	assert not unexpected, (f"daemon and veto explain disagree on {len(unexpected)} case(s):\n"
				+ mismatch_table(parity, CASES))


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(
	strict=True, reason=c.xfail)] if c.xfail else []) for c in CASES])
def test_case(parity, case):
	d, e, rec, ej = parity[case.id]
	assert rec["group"] == expected_group(case), (case.id, rec)
	assert d == e, f"{case.id}:\n{mismatch_table(parity, [case])}\nlog: {rec}\nexplain: {ej}"
