"""The command-line review (issue 14 §1): tables that fit the terminal, ORed filters, unknown
filter values refused with a suggestion, attempts apart from default-deny refusals and keyed by
the device's MAC, spreadsheet-readable CSV times, and `veto stats` on the running daemon.

Clients (the base configuration of conftest.py, with a query database):
  127.0.0.2  group 'sink' (block ads)       127.0.0.7  group 'deny' (default deny, allow portal)
  127.0.0.32 a dnsmasq lease (MAC, hostname) in group 'home' until a signature query makes it a
             Xiaomi device of group 'banned' (default deny)
"""

import csv
import io
import json
import re
import time
from datetime import datetime

import pytest

from conftest import GROUP_CLIENT, PROBE_NAME, run_veto

SINK = GROUP_CLIENT["sink"]
DENY = GROUP_CLIENT["deny"]
LONG_NAME = "a-very-long-name-that-goes-on-and-on-and-on.subdomain.example.test"
PHONE = "127.0.0.32"
PHONE_MAC = "0a:11:22:33:44:32"	# locally administered: no OUI vendor
SIGNATURE = "connect.rom.miui.com"


def with_db(work):
	def edit(cfg):
		cfg["state_dir"] = str(work / "state")
		cfg["log"]["database"] = "queries.db"
	return edit


def ok(*args):
	p = run_veto(list(args))
	assert p.returncode == 0, f"veto {' '.join(args)}: {p.returncode}\n{p.stderr}"
	return p.stdout


def db_rows(v, *filters):
	out = ok("log", "-c", str(v.config_file), "--format", "json", "--limit", "0", *filters)
	return [r for r in json.loads(out) if r["qname"] != PROBE_NAME]


def wait_rows(v, pred, timeout=30.0):
	"""The rows once pred holds (bounded): the writer thread creates the file and stores the
	rows when it gets the CPU."""
	deadline = time.monotonic() + timeout
	while True:
		try:
			rows = db_rows(v)
		except AssertionError:
			if time.monotonic() > deadline:
				raise
			rows = []
		if pred(rows) or time.monotonic() > deadline:
			return rows
		time.sleep(0.1)


@pytest.fixture
def rveto(veto_factory, tmp_path):
	v = veto_factory(edit=with_db(tmp_path))
	for name in ("www.example.com", "a.example.com", "portal.test"):
		v.query(name, "A", src=DENY)
	for name in ("tracker.test", "ads.test", LONG_NAME):
		v.query(name, "A", src=SINK)
	rows = wait_rows(v, lambda rs: len(rs) >= 6)
	assert len(rows) == 6, rows
	return v


@pytest.mark.parametrize("cmd", [["log"], ["report", "attempts"], ["report", "summary"],
				 ["report", "device", SINK]])
def test_tables_fit_columns(rveto, monkeypatch, cmd):
	for width in (80, 100):
		monkeypatch.setenv("COLUMNS", str(width))
		out = ok(*cmd, "-c", str(rveto.config_file))
		lines = out.splitlines()
		assert lines, out
		too_long = [ln for ln in lines if len(ln) > width]
		assert not too_long, f"COLUMNS={width}:\n" + "\n".join(too_long)
	# --wide: every column, nothing shortened
	monkeypatch.setenv("COLUMNS", "80")
	wide = ok(*cmd, "-c", str(rveto.config_file), "--wide")
	assert "\u2026" not in wide
	if cmd == ["log"]:
		assert LONG_NAME in wide and max(len(ln) for ln in wide.splitlines()) > 100
		assert wide.splitlines()[0].split() == ["TIME", "CLIENT", "DEVICE", "MAC", "VENDOR",
							"GROUP", "NAME", "TYPE", "ACTION", "LIST", "RULE",
							"RCODE", "MS"]
		narrow = ok(*cmd, "-c", str(rveto.config_file))
		assert "a-very-long-name" in narrow and LONG_NAME not in narrow and "\u2026" in narrow


def test_filters_or_and_unknown_values(rveto):
	cfg = str(rveto.config_file)
	names = lambda *f: sorted(r["qname"] for r in db_rows(rveto, *f))	# noqa: E731
	assert names("--list", "ads,portal") == ["ads.test", "portal.test", "tracker.test"]
	assert names("--list", "ads", "--list", "portal") == names("--list", "ads,portal")
	assert names("--group", "sink", "--group", "deny", "--blocked") == \
		["a.example.com", "ads.test", "tracker.test", "www.example.com"]
	assert names("--domain", "tracker.test,portal.test") == ["portal.test", "tracker.test"]
	att = json.loads(ok("report", "attempts", "-c", cfg, "--format", "json", "--group", "sink,deny"))
	assert {a["key"] for a in att} == {SINK, DENY}
	# unknown values: exit 2 and a suggestion, as veto check does
	for args, want in ((["--group", "dny"], "unknown group 'dny' (did you mean 'deny'?)"),
			   (["--list", "ads,portl"], "unknown list 'portl' (did you mean 'portal'?)"),
			   (["--vendor", "Xiomi"], "unknown vendor 'Xiomi' (did you mean 'Xiaomi'?)"),
			   (["--device", "nosuchdevice"], "unknown device 'nosuchdevice'")):
		for cmd in (["log"], ["report", "attempts"]):
			p = run_veto([*cmd, "-c", cfg, *args])
			assert p.returncode == 2, (cmd, args, p.stdout, p.stderr)
			assert want in p.stderr, (cmd, args, p.stderr)
			assert p.stdout == "", (cmd, args)
	# a known vendor in another case is fine (the filter ignores case)
	assert run_veto(["log", "-c", cfg, "--vendor", "xiaomi"]).returncode == 0


def test_attempts_apart_from_default_deny(rveto):
	cfg = str(rveto.config_file)
	att = {a["key"]: a for a in json.loads(ok("report", "attempts", "-c", cfg, "--format", "json"))}
	assert att[DENY]["attempts"] == 0 and att[DENY]["default_deny"] == 2, att[DENY]
	assert att[DENY]["names"] == 0 and att[DENY]["top_lists"] == []
	assert att[SINK]["attempts"] == 2 and att[SINK]["default_deny"] == 0
	keys = [k for k in att if k in (SINK, DENY)]
	assert keys == [SINK, DENY]	# attempts first
	s = json.loads(ok("report", "summary", "-c", cfg, "--format", "json"))
	top = [t["qname"] for t in s["top_blocked"] if t["qname"] != PROBE_NAME]
	assert sorted(top) == ["ads.test", "tracker.test"], top	# not the default deny's names
	assert s["default_deny"] == 2
	table = ok("report", "attempts", "-c", cfg)
	assert "DEFAULT DENY" in table.splitlines()[0]
	# the allow list that let portal.test through is recorded with its entry
	portal = db_rows(rveto, "--domain", "portal.test")
	assert [(r["blocked"], r["list"], r["rule"]) for r in portal] == [(False, "portal", "portal.test")]


def test_csv_times_read_as_dates(rveto):
	cfg = str(rveto.config_file)
	iso = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}$")
	for cmd, cols in ((["log"], ["ts"]), (["report", "attempts"], ["first", "last"]),
			  (["report", "device", SINK], ["ts"])):
		rows = list(csv.DictReader(io.StringIO(ok(*cmd, "-c", cfg, "--format", "csv"))))
		assert rows, cmd
		for r in rows:
			for c in cols:
				assert iso.match(r[c]), (cmd, c, r[c])
				datetime.fromisoformat(r[c])
	js = db_rows(rveto)[0]["ts"]
	assert js.endswith("Z") and "T" in js	# JSON keeps the full ISO 8601 UTC form


def test_stats_from_running_daemon(rveto):
	cfg = str(rveto.config_file)
	s = json.loads(ok("stats", "-c", cfg, "--json"))
	q = s["queries"]
	assert q["total"] >= 6 and q["udp"] >= 6
	assert q["blocked"] >= 4	# 2 by the list, 2 by the default deny (and the probes)
	assert s["querylog"]["db_dropped"] == 0 and s["reloads"] == {"ok": 0, "failed": 0}
	assert s["uptime_s"] >= 0 and "cache" in s
	before = q["total"]
	rveto.query("more.example.test", "A", src=SINK)
	assert json.loads(ok("stats", "-c", cfg, "--json"))["queries"]["total"] >= before + 1
	text = ok("stats", "-c", cfg)
	assert re.search(r"^queries +total \d+", text, re.M), text
	assert all(len(ln) <= 100 for ln in text.splitlines())
	# no daemon: a runtime error, said plainly
	rveto.stop()
	p = run_veto(["stats", "-c", cfg])
	assert p.returncode == 1 and "control.sock" in p.stderr


def phone_edit(work, hostname):
	(work / "dnsmasq.leases").write_text(f"0 {PHONE_MAC} {PHONE} {hostname} *\n")

	def edit(cfg):
		cfg["state_dir"] = str(work / "state")
		cfg["log"]["database"] = "queries.db"
		cfg["devices"] = {
			"dhcp_leases": [{"file": str(work / "dnsmasq.leases"), "format": "dnsmasq"}],
			"signatures": {"Xiaomi": [SIGNATURE]},
			"arp": False,
		}
		cfg["groups"] = [
			{"name": "banned", "vendors": ["Xiaomi"], "default": "deny", "action": "refused"},
			{"name": "home", "clients": [PHONE + "/32"], "block": ["ads"]},
		] + cfg["groups"]
	return edit


def ask_until(v, src, prefix, pred, timeout=10.0):
	"""Queries prefix-N.test until the stored row satisfies pred (sources load off the loop)."""
	deadline = time.monotonic() + timeout
	i = 0
	while True:
		name = f"{prefix}-{i}.test"
		v.query(name, "A", src=src)
		rows = wait_rows(v, lambda rs, n=name: any(r["qname"] == n for r in rs))
		row = [r for r in rows if r["qname"] == name][0]
		if pred(row) or time.monotonic() > deadline:
			return row
		i += 1
		time.sleep(0.2)


def test_one_row_per_mac_after_rename_with_evidence(veto_factory, tmp_path):
	v = veto_factory(edit=phone_edit(tmp_path, "oldname"))
	row = ask_until(v, PHONE, "old", lambda r: r["device"] == "oldname")
	assert row["device"] == "oldname" and row["mac"] == PHONE_MAC, row
	v.query("ads.test", "A", src=PHONE)
	(tmp_path / "dnsmasq.leases").write_text(f"0 {PHONE_MAC} {PHONE} newname *\n")
	row = ask_until(v, PHONE, "new", lambda r: r["device"] == "newname")
	assert row["device"] == "newname", row
	v.query("tracker.test", "A", src=PHONE)
	v.query(SIGNATURE, "A", src=PHONE)
	row = ask_until(v, PHONE, "after", lambda r: r["group"] == "banned")
	assert row["group"] == "banned" and row["action"] == "refused", row
	cfg = str(v.config_file)
	att = json.loads(ok("report", "attempts", "-c", cfg, "--format", "json"))
	mine = [a for a in att if a["mac"] == PHONE_MAC or a["key"] == PHONE_MAC]
	assert len(mine) == 1, att	# one device, whatever its name was
	a = mine[0]
	assert a["key"] == PHONE_MAC and a["device"] == "newname"
	assert a["attempts"] == 2 and a["names"] == 2
	assert a["default_deny"] >= 1	# the queries after the ban, counted apart
	assert a["vendor"] == "Xiaomi" and a["vendor_source"] == "signature"
	assert SIGNATURE in (a["vendor_evidence"] or ""), a
	table = ok("report", "attempts", "-c", cfg, "--wide")
	assert SIGNATURE in table and table.count(PHONE_MAC) == 1
