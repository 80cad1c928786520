"""Device state shared between instances (store.postgresql): two veto instances on different
loopback ports with the same configuration but store.instance dns1 / dns2, one private
PostgreSQL (pg_server). What one instance learns (an attribution by a signature query, a pin,
a forget) is answered accordingly by the other within 2 s; a missed notification heals by the
periodic resync; with the database stopped both keep answering from their local tables, and
what changed meanwhile arrives once it is back.

Clients (127.0.0.0/24; no lease, ARP or MAC source: every device is keyed by its address):
  127.0.0.40 .. .43  group 'home' by address (block ads: sinkhole), unless the vendor Xiaomi
                     ('banned': refused) or a pin says otherwise
"""

import json
import time

import dns.message
import dns.rcode
import pytest

from conftest import SIGNATURE, attribution_groups, run_veto, udp_exchange

WITHIN_S = 2.0


def shared_edit(pg, instance, resync_s=60):
	def edit(cfg):
		cfg["store"] = {"postgresql": pg.conninfo, "instance": instance, "resync_s": resync_s}
		cfg["devices"] = {"signatures": {"Xiaomi": [SIGNATURE]}, "arp": False}
		cfg["groups"] = attribution_groups() + cfg["groups"]
	return edit


@pytest.fixture
def pair(veto_factory, pg_server):
	def make(resync_s=60):
		one = veto_factory(edit=shared_edit(pg_server, "dns1", resync_s))
		two = veto_factory(edit=shared_edit(pg_server, "dns2", resync_s))
		for v in (one, two):
			v.wait_stderr("shared store: connected", timeout=10)
			assert "shared store: connected as instance" in v.stderr(), v.stderr()
		return one, two
	return make


def rcode(v, name, src):
	q = dns.message.make_query(name, "A", use_edns=0)
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=3.0)
	assert wire is not None, f"no reply to {name} from {src}"
	return dns.message.from_wire(wire).rcode()


def wait_rcode(v, src, want, tag, within=WITHIN_S):
	"""Polls (fresh names: no cache) until src gets want; returns the seconds it took."""
	start = time.monotonic()
	i = 0
	while True:
		got = rcode(v, f"{tag}-{i}.test", src)
		if got == want:
			return time.monotonic() - start
		if time.monotonic() - start > within:
			return None
		i += 1
		time.sleep(0.05)


def devices(v, *args):
	return run_veto(["devices", *args, "-c", str(v.config_file)])


def shared_row(pg, key):
	out = pg.psql(f"SELECT coalesce(forgotten_at, 0), pin_vendor, pin_group, updated_by "
		      f"FROM devices WHERE key = '{key}'")
	return out.strip().split("|") if out.strip() else None


def test_attribution_on_one_is_refused_by_the_other(pair, pg_server):
	one, two = pair()
	src = "127.0.0.40"
	assert rcode(two, "before-2.test", src) == dns.rcode.NOERROR
	assert rcode(one, "before-1.test", src) == dns.rcode.NOERROR
	assert rcode(one, SIGNATURE, src) == dns.rcode.NOERROR
	assert rcode(one, "after-1.test", src) == dns.rcode.REFUSED
	took = wait_rcode(two, src, dns.rcode.REFUSED, "attr")
	assert took is not None, f"instance 2 still answers {src} after {WITHIN_S} s:\n{two.stderr()}"
	err = two.wait_stderr("from the shared evidence")
	assert "ip:127.0.0.40: vendor 'Xiaomi' (was '') from the shared evidence" in err, err
	assert "last change on instance dns1" in err
	# the evidence stays per instance: dns2 wrote none
	ev = pg_server.psql("SELECT instance, vendor, rom FROM device_evidence "
			    "WHERE key = 'ip:127.0.0.40'")
	assert ev.strip() == "dns1|Xiaomi|1", ev
	# a device never seen by the second instance is known there too
	assert rcode(one, SIGNATURE, "127.0.0.41") == dns.rcode.NOERROR
	assert wait_rcode(two, "127.0.0.41", dns.rcode.REFUSED, "new") is not None
	# `veto devices` on the second shows its merged copy (saved every 5 s)
	deadline = time.monotonic() + 10
	while True:
		p = devices(two, "show", src, "--json")
		d = json.loads(p.stdout) if p.returncode == 0 else {}
		if d.get("vendor") == "Xiaomi" or time.monotonic() > deadline:
			break
		time.sleep(0.2)
	assert d.get("vendor") == "Xiaomi", p.stdout + p.stderr


def test_pin_and_forget_on_one_apply_on_both(pair, pg_server):
	one, two = pair()
	src = "127.0.0.42"
	assert rcode(one, "a.test", src) == dns.rcode.NOERROR
	assert rcode(two, "b.test", src) == dns.rcode.NOERROR
	p = devices(two, "pin", src, "--vendor", "Xiaomi")
	assert p.returncode == 0, p.stderr
	assert "running daemon" in p.stdout, p.stdout
	assert wait_rcode(one, src, dns.rcode.REFUSED, "pin") is not None, one.stderr()
	err = one.wait_stderr("pinned on instance dns2")
	assert "ip:127.0.0.42: pinned on instance dns2: vendor 'Xiaomi', group 'banned'" in err, err
	assert shared_row(pg_server, "ip:127.0.0.42")[1:] == ["Xiaomi", "", "dns2"]
	# the newest act wins: an unpin on the first instance undoes it on both
	p = devices(one, "unpin", src)
	assert p.returncode == 0, p.stderr
	assert wait_rcode(two, src, dns.rcode.NOERROR, "unpin") is not None, two.stderr()
	assert "unpinned on instance dns1" in two.wait_stderr("unpinned on instance dns1")
	# attribution on one, forget on the other: gone from both
	assert rcode(one, SIGNATURE, src) == dns.rcode.NOERROR
	assert wait_rcode(two, src, dns.rcode.REFUSED, "attr") is not None
	p = devices(two, "forget", src)
	assert p.returncode == 0, p.stderr
	assert wait_rcode(one, src, dns.rcode.NOERROR, "forget") is not None, one.stderr()
	assert "ip:127.0.0.42: forgotten on instance dns2" in one.wait_stderr("forgotten on")
	assert rcode(two, "after-forget.test", src) == dns.rcode.NOERROR
	assert shared_row(pg_server, "ip:127.0.0.42")[0] != "0"	# the tombstone
	# the first instance's copy is gone: a new query there starts clean and does not revive
	# the old evidence in the shared table
	assert rcode(one, "clean.test", src) == dns.rcode.NOERROR
	time.sleep(0.5)
	assert pg_server.psql("SELECT count(*) FROM device_evidence "
			      "WHERE key = 'ip:127.0.0.42'").strip() == "0"


def test_missed_notification_heals_by_resync(pair, pg_server):
	one, two = pair(resync_s=5)	# the smallest the configuration allows
	src = "127.0.0.43"
	assert rcode(one, "x.test", src) == dns.rcode.NOERROR
	assert rcode(two, "y.test", src) == dns.rcode.NOERROR
	# a pin written straight into the table, without NOTIFY
	pg_server.psql("INSERT INTO devices (key, pin_vendor, pin_at, updated_by) VALUES "
		       "('ip:127.0.0.43', 'Xiaomi', (extract(epoch from now()) * 1000)::bigint, "
		       "'psql') ON CONFLICT (key) DO UPDATE SET pin_vendor = 'Xiaomi', "
		       "pin_at = EXCLUDED.pin_at, seq = nextval('devices_seq'), updated_by = 'psql'")
	for v in (one, two):
		assert wait_rcode(v, src, dns.rcode.REFUSED, "heal", within=8.0) is not None, v.stderr()
		assert "pinned on instance psql" in v.stderr()


def test_database_stopped_and_back(pair, pg_server):
	one, two = pair()
	src = "127.0.0.41"
	assert rcode(one, "up.test", src) == dns.rcode.NOERROR
	assert rcode(two, "up.test", src) == dns.rcode.NOERROR
	pg_server.stop()
	# both keep answering from their local tables; an attribution on one still applies there
	assert rcode(one, SIGNATURE, src) == dns.rcode.NOERROR
	assert rcode(one, "down-1.test", src) == dns.rcode.REFUSED
	assert rcode(two, "down-2.test", src) == dns.rcode.NOERROR
	p = devices(two, "pin", "127.0.0.44", "--group", "staff")
	assert p.returncode == 0, p.stderr
	one.wait_stderr("connection lost")
	pg_server.start()
	# back (reconnection backoff: at most 30 s, 1 s doubling): what changed meanwhile arrives
	assert wait_rcode(two, src, dns.rcode.REFUSED, "back", within=40.0) is not None, two.stderr()
	deadline = time.monotonic() + 40
	while time.monotonic() < deadline:
		row = shared_row(pg_server, "ip:127.0.0.44")
		if row and row[2] == "staff":
			break
		time.sleep(0.2)
	assert row and row[2] == "staff" and row[3] == "dns2", row
	assert "pinned on instance dns2" in one.wait_stderr("pinned on instance dns2", timeout=5)
	for v in (one, two):
		v.assert_alive()


def test_database_down_at_start(veto_factory, pg_server):
	"""Both start and answer without the database; what one learnt meanwhile (before it ever
	reached the store) goes out once the database is there."""
	pg_server.stop()
	one = veto_factory(edit=shared_edit(pg_server, "dns1"))
	two = veto_factory(edit=shared_edit(pg_server, "dns2"))
	src = "127.0.0.40"
	for v in (one, two):
		assert "the device table is kept locally" in v.wait_stderr("kept locally")
	assert rcode(one, SIGNATURE, src) == dns.rcode.NOERROR
	assert rcode(one, "down.test", src) == dns.rcode.REFUSED
	assert rcode(two, "down.test", src) == dns.rcode.NOERROR
	pg_server.start()
	assert wait_rcode(two, src, dns.rcode.REFUSED, "back", within=40.0) is not None, \
		one.stderr() + two.stderr()


def test_address_evidence_from_a_previous_holder_is_not_inherited(pair, pg_server):
	"""An address changes hands: what an earlier device on 127.0.0.45 queried, longer ago than
	devices.address_ttl_s (default 4 h), must not make the device now on that address a
	Xiaomi. The same evidence, recent, on 127.0.0.46 does (the control)."""
	one, two = pair(resync_s=5)
	for src in ("127.0.0.45", "127.0.0.46"):
		assert rcode(two, "before.test", src) == dns.rcode.NOERROR
	for key, age in (("ip:127.0.0.45", 20000), ("ip:127.0.0.46", 0)):
		pg_server.psql(
			"INSERT INTO devices (key, first_seen, last_seen, updated_by) VALUES "
			f"('{key}', extract(epoch from now())::bigint - 30000, "
			"extract(epoch from now())::bigint, 'old') ON CONFLICT (key) DO UPDATE SET "
			"seq = nextval('devices_seq'), last_seen = EXCLUDED.last_seen;"
			"INSERT INTO device_evidence (key, instance, vendor, count, rom, first_seen, "
			f"last_seen, evidence, rom_evidence) VALUES ('{key}', 'old', 'Xiaomi', 5, 5, "
			f"extract(epoch from now())::bigint - 30000, extract(epoch from now())::bigint - {age}, "
			f"'{SIGNATURE}', '{SIGNATURE}')")
	for v in (one, two):
		assert wait_rcode(v, "127.0.0.46", dns.rcode.REFUSED, "recent", within=8.0) is not None, \
			v.stderr()
		assert rcode(v, "still-home.test", "127.0.0.45") == dns.rcode.NOERROR, v.stderr()
		assert "ip:127.0.0.45: vendor" not in v.stderr()
