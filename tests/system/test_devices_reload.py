"""A reload (SIGHUP) does not forget the devices the lease files name: a lease-known device keeps
its MAC, its group and its identity while the daemon reloads its configuration again and again
under a steady stream of its queries.

One device (MAC and hostname in a large dnsmasq lease file) is selected by its MAC into the group
'staff' that allows everything; every other client falls into a default-deny group. The device
sends 200 sequential queries (each waited for) while the test sends SIGHUP 10 times. Required:
every query-log record of the device carries its MAC and the group 'staff', and the query store
has exactly one device event for it: the first first_seen, by MAC.
"""

import signal
import sqlite3
import time

import dns.message
import dns.rcode
import pytest

from conftest import udp_exchange

STAFF_IP = "127.0.0.70"
STAFF_MAC = "00:00:5e:00:53:70"
WARM_IP = "127.0.0.71"
WARM_MAC = "00:00:5e:00:53:71"
FILLER_LEASES = 2000		# a site-sized lease file (the test fails without it too)
RELOADS = 10
QUERIES = 200
NAMES = [f"n{i}.staff.test" for i in range(8)]


def lease_file_bytes():
	lines = [f"0 {STAFF_MAC} {STAFF_IP} staff-laptop 01:{STAFF_MAC}",
		 f"0 {WARM_MAC} {WARM_IP} warm-up *"]
	for i in range(FILLER_LEASES):
		a, b = divmod(i, 250)
		lines.append(f"0 02:00:0a:{a >> 8:02x}:{a & 255:02x}:{b:02x} 10.{100 + (a >> 8)}.{a & 255}."
			     f"{b + 1} filler-{i} *")
	return ("\n".join(lines) + "\n").encode()


def reload_edit(work):
	def edit(cfg):
		(work / "dnsmasq.leases").write_bytes(lease_file_bytes())
		cfg["state_dir"] = str(work / "state")
		cfg["log"]["database"] = "queries.db"	# relative to state_dir
		cfg["devices"] = {
			"dhcp_leases": [{"file": str(work / "dnsmasq.leases"), "format": "dnsmasq"}],
			"arp": False,
			"oui": False,
		}
		probe = cfg["groups"][0]
		assert probe["name"] == "probe"
		cfg["groups"] = [
			probe,
			{"name": "staff", "macs": [STAFF_MAC, WARM_MAC]},
			{"name": "rest", "clients": ["127.0.0.0/24", "::1/128"], "default": "deny",
			 "action": "refused"},
		]
	return edit


def ask(v, name, src):
	q = dns.message.make_query(name, "A", use_edns=0)
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=3.0)
	assert wire is not None, f"no reply to {name} from {src}"
	return dns.message.from_wire(wire)


def test_lease_identity_survives_reloads(veto_factory, tmp_path):
	work = tmp_path / "dev"
	work.mkdir()
	v = veto_factory(edit=reload_edit(work))
	# the lease file loads in the background after start: wait with another lease-known client
	# (the device under test must not be seen before its lease is known)
	deadline = time.monotonic() + 20
	i = 0
	while True:
		name = f"warm-{i}.test"
		ask(v, name, WARM_IP)
		rec = v.wait_log(lambda r: r["qname"] == name)
		if rec and rec[-1]["mac"] == WARM_MAC:
			break
		assert time.monotonic() < deadline, f"lease file not loaded: {rec}\n{v.stderr()}"
		i += 1
		time.sleep(0.05)

	answered = 0
	per_reload = QUERIES // RELOADS
	for n in range(RELOADS):
		oks = v.stderr().count("reload: ok")
		v.send_signal(signal.SIGHUP)
		for k in range(per_reload):
			r = ask(v, NAMES[k % len(NAMES)], STAFF_IP)
			answered += r.rcode() == dns.rcode.NOERROR
		# the reload has been applied before the next one (bounded)
		deadline = time.monotonic() + 10
		while v.stderr().count("reload: ok") <= oks:
			assert time.monotonic() < deadline, f"reload {n} not applied:\n{v.stderr()}"
			time.sleep(0.02)
	recs = v.wait_log(lambda r: r["client"] == STAFF_IP, count=QUERIES)
	assert v.stop() == 0
	assert len(recs) == QUERIES, f"{len(recs)} log records for {QUERIES} queries"
	assert v.stderr().count("reload: ok") == RELOADS

	db = sqlite3.connect(f"file:{work / 'state' / 'queries.db'}?mode=ro", uri=True)
	events = db.execute("SELECT kind, mac, client, new_group FROM device_events "
			    "WHERE mac = ? OR client = ? ORDER BY id", (STAFF_MAC, STAFF_IP)).fetchall()
	db.close()

	no_mac = [r for r in recs if r["mac"] != STAFF_MAC]
	not_staff = [r for r in recs if r["group"] != "staff"]
	problems = []
	if no_mac:
		problems.append(f"{len(no_mac)} of {QUERIES} records without the device's MAC, e.g. "
				f"{no_mac[0]}")
	if not_staff:
		problems.append(f"{len(not_staff)} of {QUERIES} records not in group staff, e.g. "
				f"{not_staff[0]}")
	if answered != QUERIES:
		problems.append(f"{QUERIES - answered} of {QUERIES} queries not answered NOERROR")
	if events != [("first_seen", STAFF_MAC, STAFF_IP, "staff")]:
		problems.append(f"device events: {events}")
	assert not problems, "\n".join(problems)
