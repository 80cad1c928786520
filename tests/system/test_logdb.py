"""The SQLite query store (log.database): the daemon writes it, `veto log` and `veto report` read
it (json, jsonl, csv), history survives a restart, retention prunes, and a database made read-only
is reported while DNS keeps answering."""

import csv
import io
import json
import os
import signal
import sqlite3
import subprocess
import time

import pytest

from conftest import GROUP_CLIENT, NOGROUP_CLIENT, PROBE_CLIENT, PROBE_NAME, VETO_BIN, run_veto

SINK = GROUP_CLIENT["sink"]
NX = GROUP_CLIENT["nx"]
DAY_MS = 86400000


def wait_until(fn, timeout=8.0, step=0.05):
	deadline = time.monotonic() + timeout
	while True:
		v = fn()
		if v or time.monotonic() >= deadline:
			return v
		time.sleep(step)


def with_db(state_dir, retention=None, keep_file=True):
	def edit(cfg):
		cfg["state_dir"] = str(state_dir)
		cfg["log"]["database"] = "queries.db"
		if retention is not None:
			cfg["log"]["retention_days"] = retention
		if not keep_file:
			del cfg["log"]["file"]
	return edit


def veto_json(*args):
	p = run_veto(list(args))
	assert p.returncode == 0, f"veto {' '.join(args)}: {p.returncode}\n{p.stderr}"
	return json.loads(p.stdout)


def veto_csv(*args):
	p = run_veto(list(args))
	assert p.returncode == 0, f"veto {' '.join(args)}: {p.returncode}\n{p.stderr}"
	return list(csv.DictReader(io.StringIO(p.stdout)))


def rows(v, *filters):
	"""Database rows (json), probe queries left out."""
	got = veto_json("log", "-c", str(v.config_file), "--format", "json", "--limit", "0", *filters)
	return [r for r in got if r["qname"] != PROBE_NAME]


def rows_or_none(v, *filters):
	"""rows(), or [] while the database does not exist yet (the writer thread creates it when
	it gets the CPU)."""
	try:
		return rows(v, *filters)
	except AssertionError:
		return []


def wait_rows(v, count, *filters):
	got = wait_until(lambda: len(rows_or_none(v, *filters)) >= count and rows(v, *filters), 30)
	assert got and len(got) >= count, f"expected {count} rows, got {rows(v, *filters)}\n{v.stderr()}"
	return got


@pytest.fixture
def state_dir(tmp_path):
	d = tmp_path / "state" / "veto"	# created by the daemon
	yield d
	if d.exists():
		# undo set_readonly whatever happened
		subprocess.run(["chattr", "-R", "-i", str(d)], capture_output=True)


def send_traffic(v):
	for name in ("tracker.test", "x.tracker.test", "ads.test", "nottracker.test"):
		v.query(name, "A", src=SINK)
	v.query("x.tracker.test", "AAAA", src=SINK)
	v.query("ads.test", "A", src=NX)
	v.query("fwd.example.test", "A", src=NOGROUP_CLIENT)


def test_log_matches_jsonl_and_filters(veto_factory, state_dir):
	v = veto_factory(edit=with_db(state_dir))
	send_traffic(v)
	all_rows = wait_rows(v, 7)
	assert (state_dir / "queries.db").is_file()
	# every JSON line of log.file is a database row, field for field
	lines = v.wait_log(count=7)
	assert len(lines) == 7
	db_rows = rows(v, "--since", "1h")
	assert len(db_rows) == 7
	for rec in lines:
		rec = dict(rec, mac=None, device=None, vendor=None, vendor_source=None) | rec
		assert rec in db_rows, f"{rec} not in {db_rows}"
	# newest first
	assert [r["ts"] for r in all_rows] == sorted((r["ts"] for r in all_rows), reverse=True)

	cases = {
		("--client", SINK, "--blocked"): {"tracker.test", "x.tracker.test", "ads.test"},
		("--client", SINK, "--allowed"): {"nottracker.test"},
		("--domain", "tracker.test"): {"tracker.test", "x.tracker.test"},
		("--domain", "TRACKER.test."): {"tracker.test", "x.tracker.test"},
		("--group", "nx"): {"ads.test"},
		("--action", "nxdomain"): {"ads.test"},
		("--list", "ads", "--client", SINK): {"tracker.test", "x.tracker.test", "ads.test"},
		("--client", NOGROUP_CLIENT, "--domain", "example.test"): {"fwd.example.test"},
		("--until", "1h"): set(),
	}
	for filters, names in cases.items():
		got = rows(v, *filters)
		assert {r["qname"] for r in got} == names, f"{filters}: {got}"
	x = rows(v, "--domain", "x.tracker.test")
	assert sorted(r["qtype"] for r in x) == ["A", "AAAA"]
	assert all(r["blocked"] and r["list"] == "ads" and r["rule"] == "tracker.test" for r in x)
	assert len(rows(v, "--limit", "2")) <= 2

	# csv: same rows, header with the JSON field names
	c = veto_csv("log", "--db", str(state_dir / "queries.db"), "--format", "csv", "--client", SINK,
		     "--blocked")
	assert sorted(r["qname"] for r in c) == sorted(["tracker.test", "x.tracker.test", "x.tracker.test",
							"ads.test"])
	assert all(r["blocked"] == "true" and r["group"] == "sink" and r["action"] == "sinkhole"
		   and r["mac"] == "" for r in c)
	assert list(c[0].keys())[:4] == ["ts", "client", "proto", "group"]
	# jsonl: one object per line
	p = run_veto(["log", "-c", str(v.config_file), "--format", "jsonl", "--group", "nx"])
	assert p.returncode == 0
	objs = [json.loads(line) for line in p.stdout.splitlines()]
	assert [o["qname"] for o in objs] == ["ads.test"] and objs[0]["rcode"] == "NXDOMAIN"
	# table: a header and one line per row
	p = run_veto(["log", "-c", str(v.config_file), "--group", "sink"])
	assert p.returncode == 0
	out = p.stdout.splitlines()
	assert out[0].split()[:3] == ["TIME", "CLIENT", "DEVICE"] and len(out) == 1 + 5
	# bad usage
	for bad in (["--since", "yesterday"], ["--format", "xml"], ["--action", "block"],
		    ["--domain", "bad..name"], ["--mac", "zz"], ["--bogus"], ["--blocked", "--allowed"],
		    ["--client", "1.2.3"]):
		p = run_veto(["log", "-c", str(v.config_file), *bad])
		assert p.returncode == 2, f"{bad}: {p.returncode} {p.stderr}"
		assert p.stderr.startswith("veto log"), p.stderr


def test_reports(veto_factory, state_dir):
	v = veto_factory(edit=with_db(state_dir))
	send_traffic(v)
	wait_rows(v, 7)
	db = str(state_dir / "queries.db")

	att = veto_json("report", "attempts", "--db", db, "--format", "json")
	by_key = {a["key"]: a for a in att if a["key"] != PROBE_CLIENT}	# readiness probes
	assert set(by_key) == {SINK, NX}
	assert by_key[SINK]["attempts"] == 4 and by_key[SINK]["names"] == 3
	assert by_key[SINK]["top_lists"] == [{"list": "ads", "attempts": 4}]
	assert by_key[SINK]["group"] == "sink"
	assert by_key[SINK]["client"] == SINK and by_key[SINK]["mac"] is None
	assert by_key[NX]["attempts"] == 1 and by_key[NX]["group"] == "nx"
	assert [a["key"] for a in att if a["key"] in by_key] == [SINK, NX]	# most attempts first
	assert by_key[SINK]["first"] <= by_key[SINK]["last"]
	c = veto_csv("report", "attempts", "-c", str(v.config_file), "--format", "csv", "--since", "7d")
	assert {r["device_key"]: int(r["attempts"]) for r in c if r["device_key"] != PROBE_CLIENT} == \
		{SINK: 4, NX: 1}

	s = veto_json("report", "summary", "--db", db, "--format", "json")
	groups = {g["group"]: g for g in s["groups"]}
	probes = veto_json("log", "--db", db, "--format", "json", "--domain", PROBE_NAME)
	assert s["blocked"] == 5 + sum(r["blocked"] for r in probes)
	assert s["total"] == 7 + len(probes)
	assert groups["sink"]["queries"] == 5 and groups["sink"]["blocked"] == 4
	assert groups["nx"]["queries"] == 1 and groups["nx"]["blocked"] == 1
	assert {li["list"]: li["blocked"] for li in s["lists"]}["ads"] == 5
	assert s["top_blocked"][:2] == [{"qname": "ads.test", "queries": 2, "blocked": 2},
					{"qname": "x.tracker.test", "queries": 2, "blocked": 2}]
	assert sum(h["queries"] for h in s["hours"]) == s["total"]
	c = veto_csv("report", "summary", "--db", db, "--format", "csv")
	assert {(r["section"], r["label"]) for r in c} >= {("groups", "sink"), ("lists", "ads"),
							    ("top_clients", SINK)}
	p = run_veto(["report", "summary", "--db", db])
	assert p.returncode == 0 and "QUERIES PER HOUR" in p.stdout and "#" in p.stdout

	d = veto_json("report", "device", SINK, "--db", db, "--format", "json")
	assert [r["qname"] for r in d] == ["tracker.test", "x.tracker.test", "ads.test",
					   "nottracker.test", "x.tracker.test"]
	assert [r["ts"] for r in d] == sorted(r["ts"] for r in d)
	assert veto_json("report", "device", "10.99.99.99", "--db", db, "--format", "json") == []
	p = run_veto(["report", "device", "10.99.99.99", "--db", db])
	assert p.returncode == 0 and "no queries and no events of '10.99.99.99'" in p.stderr
	# --client in another spelling of the same address
	mapped = veto_json("log", "--db", db, "--format", "json", "--client", "::ffff:" + SINK)
	assert mapped and all(r["client"] == SINK for r in mapped)
	# the list section: what each list blocked (and allowed), not a "queries" column
	p = run_veto(["report", "summary", "--db", db])
	heads = [ln.split() for ln in p.stdout.splitlines() if ln.startswith("LIST ")]
	assert heads == [["LIST", "BLOCKED", "OF", "BLOCKED", "ALLOWED"]], p.stdout
	for bad in (["bogus"], ["device"], ["attempts", "--format", "jsonl"]):
		p = run_veto(["report", *bad, "--db", db])
		assert p.returncode == 2, f"{bad}: {p.returncode} {p.stderr}"


def test_database_only_no_json_lines(veto_factory, state_dir):
	v = veto_factory(edit=with_db(state_dir, keep_file=False))
	v.query("tracker.test", "A", src=SINK)
	wait_rows(v, 1)
	assert "tracker.test" not in v.stdout()


def test_restart_keeps_history(veto_factory, state_dir):
	v1 = veto_factory(edit=with_db(state_dir))
	v1.query("before.test", "A", src=NOGROUP_CLIENT)
	wait_rows(v1, 1, "--domain", "before.test")
	assert v1.stop() == 0
	v2 = veto_factory(edit=with_db(state_dir))
	v2.query("after.test", "A", src=NOGROUP_CLIENT)
	wait_rows(v2, 1, "--domain", "after.test")
	assert len(rows(v2, "--domain", "before.test")) == 1


def test_copied_database_in_readonly_folder(veto_factory, state_dir, tmp_path):
	"""A copy of the file (without its -wal, -shm) in a folder the reader cannot write: SQLite
	cannot make the -shm a WAL file needs there; the reader opens it immutable instead."""
	import shutil
	v = veto_factory(edit=with_db(state_dir))
	send_traffic(v)
	wait_rows(v, 7)
	assert v.stop() == 0	# the last connection folds the WAL into the file
	copy_dir = tmp_path / "copy"
	copy_dir.mkdir()
	copy = copy_dir / "queries.db"
	shutil.copyfile(state_dir / "queries.db", copy)
	assert not (copy_dir / "queries.db-wal").exists()
	want = veto_json("log", "--db", str(state_dir / "queries.db"), "--format", "json",
			 "--limit", "0")
	set_readonly(copy_dir, True)
	try:
		got = veto_json("log", "--db", str(copy), "--format", "json", "--limit", "0")
		att = veto_json("report", "attempts", "--db", str(copy), "--format", "json")
		assert sorted(os.listdir(copy_dir)) == ["queries.db"]	# nothing made next to it
	finally:
		set_readonly(copy_dir, False)
	assert got == want and len(got) >= 7
	assert {a["key"] for a in att} >= {SINK, NX}


def test_retention_prunes_old_rows(veto_factory, state_dir):
	v1 = veto_factory(edit=with_db(state_dir))
	v1.query("seed.test", "A", src=NOGROUP_CLIENT)
	wait_rows(v1, 1, "--domain", "seed.test")
	assert v1.stop() == 0
	now = int(time.time() * 1000)
	con = sqlite3.connect(state_dir / "queries.db")
	cur = con.execute("INSERT INTO sources (client, device) VALUES ('10.0.0.1', 'old-phone')")
	source = cur.lastrowid
	con.executemany("INSERT INTO names (id, qname, rname) VALUES (?, ?, ?)",
			[(100000 + i, f"old{i}.test", f"test.old{i}.") for i in range(12000)])
	con.executemany("INSERT INTO queries (ts_ms, source, name, blocked, latency_us)"
			" VALUES (?, ?, ?, 0, 10)",
			[(now - 3 * DAY_MS - i, source, 100000 + i) for i in range(12000)])
	con.commit()
	con.close()
	v2 = veto_factory(edit=with_db(state_dir, retention=2))
	assert rows(v2, "--domain", "seed.test"), "recent rows stay"

	def pruned():
		return veto_json("report", "summary", "-c", str(v2.config_file), "--since", "all",
				 "--format", "json")["total"] <= 5
	assert wait_until(pruned, 15), f"old rows not pruned:\n{v2.stderr()}"
	assert rows(v2, "--domain", "seed.test")

	# then the names and the source no query refers to any more
	def dictionaries_pruned():
		con = sqlite3.connect(f"file:{state_dir / 'queries.db'}?mode=ro", uri=True)
		try:
			return con.execute("SELECT (SELECT count(*) FROM names WHERE qname LIKE 'old%')"
					   " + (SELECT count(*) FROM sources WHERE device = 'old-phone')"
					   ).fetchone()[0] == 0
		finally:
			con.close()
	assert wait_until(dictionaries_pruned, 15), f"dictionaries not pruned:\n{v2.stderr()}"
	v2.query("old7.test", "A", src=NOGROUP_CLIENT)
	assert wait_rows(v2, 1, "--domain", "old7.test")[0]["client"] == NOGROUP_CLIENT


SCHEMA_2 = """
CREATE TABLE queries (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, client TEXT,
 proto TEXT NOT NULL, group_name TEXT, qname TEXT, rname TEXT, qtype TEXT,
 blocked INTEGER NOT NULL, list TEXT, rule TEXT, action TEXT NOT NULL, rcode TEXT NOT NULL,
 upstream TEXT, latency_us INTEGER NOT NULL, mac TEXT, device TEXT, vendor TEXT,
 vendor_source TEXT);
CREATE INDEX queries_device ON queries(device) WHERE device IS NOT NULL;
CREATE INDEX queries_mac ON queries(mac) WHERE mac IS NOT NULL;
CREATE INDEX queries_client ON queries(client);
CREATE INDEX queries_rname ON queries(rname);
CREATE INDEX queries_blocked ON queries(ts_ms, device, mac, client, qname, list, group_name,
 vendor, vendor_source, blocked) WHERE blocked = 1;
CREATE TABLE device_events (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, device TEXT, mac TEXT,
 client TEXT, kind TEXT NOT NULL, old_group TEXT, new_group TEXT, evidence TEXT);
PRAGMA user_version = 2;
"""


def test_schema_2_database_converted(veto_factory, state_dir):
	"""A database of an older veto: `veto log` says what to do, the daemon converts it in place
	and keeps writing, and the old history reads back the same."""
	state_dir.mkdir(parents=True)
	path = state_dir / "queries.db"
	con = sqlite3.connect(path)
	con.executescript(SCHEMA_2)
	now = int(time.time() * 1000)
	con.executemany(
		"INSERT INTO queries (ts_ms, client, proto, group_name, qname, rname, qtype, blocked,"
		" list, rule, action, rcode, upstream, latency_us, mac, device, vendor, vendor_source)"
		" VALUES (?, '10.0.0.7', 'udp', 'phones', ?, ?, 'A', ?, ?, ?, ?, 'NOERROR', NULL, 5,"
		" '02:00:00:00:00:07', 'old-phone', 'Xiaomi', 'oui')",
		[(now - 3600000 + i, f"n{i}.miui.com", f"com.miui.n{i}.", i % 2,
		  "xiaomi" if i % 2 else None, "miui.com" if i % 2 else None,
		  "sinkhole" if i % 2 else "forward") for i in range(30000)])
	con.commit()
	con.close()

	p = run_veto(["log", "--db", str(path)])
	assert p.returncode != 0 and "schema 2" in p.stderr and "veto serve" in p.stderr, p.stderr

	v = veto_factory(edit=with_db(state_dir))
	# the writer thread converts when it opens the file (`veto log` refuses it until then)
	assert "converting schema 2" in v.wait_stderr("converting schema 2", timeout=10)
	v.query("new.test", "A", src=NOGROUP_CLIENT)
	# the daemon converts the file on its writer thread: readers are told so until it is done
	wait_until(lambda: run_veto(["log", "--db", str(path), "--limit", "1"]).returncode == 0, 60)
	wait_rows(v, 1, "--domain", "new.test")
	old = wait_until(lambda: len(rows(v, "--device", "old-phone")) == 30000
			 and rows(v, "--device", "old-phone"), 20)
	assert old, f"old rows not converted:\n{v.stderr()}"
	by_name = {r["qname"]: r for r in old}
	r = by_name["n1.miui.com"]
	assert (r["client"], r["group"], r["list"], r["action"], r["mac"], r["vendor"]) == \
		("10.0.0.7", "phones", "xiaomi", "sinkhole", "02:00:00:00:00:07", "Xiaomi")
	assert by_name["n2.miui.com"]["action"] == "forward" and by_name["n2.miui.com"]["list"] is None
	assert "conversion done" in v.stderr()
	# the new row keeps its place after the old ones (newest first)
	newest = rows(v, "--limit", "1")
	assert newest[0]["qname"] == "new.test"


def test_writer_thread_scheduling(veto_factory, state_dir):
	"""The query-log writer is a thread of its own, named, at the daemon's own nice value with
	the SCHED_BATCH policy: an equal share of the CPU beside DNS (at nice 19 it got about 1.5% of
	a core beside any busy thread and counted most forwarded queries instead of storing them),
	yet it never preempts the event loop when it wakes up."""
	v = veto_factory(edit=with_db(state_dir))
	v.query("tracker.test", "A", src=SINK)
	wait_rows(v, 1)
	tasks = {}
	for tid in os.listdir(f"/proc/{v.proc.pid}/task"):
		with open(f"/proc/{v.proc.pid}/task/{tid}/stat") as f:
			stat = f.read()
		comm = stat[stat.index("(") + 1:stat.rindex(")")]
		fields = stat[stat.rindex(")") + 2:].split()
		tasks[comm] = (int(fields[16]), int(fields[38]))	# nice, policy
	assert tasks.get("veto-log") == (os.nice(0), os.SCHED_BATCH), tasks
	assert tasks.get("veto") == (os.nice(0), os.SCHED_OTHER), tasks


def set_readonly(path, ro):
	if os.geteuid() == 0:	# root writes through 0444: use the immutable flag
		subprocess.run(["chattr", "+i" if ro else "-i", str(path)], check=True)
	else:
		os.chmod(path, (0o555 if path.is_dir() else 0o444) if ro else
			 (0o755 if path.is_dir() else 0o644))


def test_readonly_database_dns_keeps_working(veto_factory, state_dir):
	v = veto_factory(edit=with_db(state_dir))
	v.query("one.test", "A", src=NOGROUP_CLIENT)
	wait_rows(v, 1, "--domain", "one.test")
	db = state_dir / "queries.db"
	set_readonly(db, True)
	try:
		v.send_signal(signal.SIGHUP)	# reopens the database
		err = v.wait_stderr("read-only")
		assert "query database" in err and "read-only" in err, err
		for i in range(5):
			r = v.query(f"during{i}.test", "A", src=NOGROUP_CLIENT)
			assert r.rcode() == 0
		v.assert_alive()
		assert v.wait_log(lambda r: r["qname"].startswith("during"), count=5), "the JSONL sink goes on"
		assert rows(v, "--domain", "during0.test") == []
	finally:
		set_readonly(db, False)
	v.send_signal(signal.SIGHUP)
	# recovery is declared by the first commit that works, with the loss of the burst: query
	# until one is stored (a query drained before the reopen is not stored)
	for i in range(40):
		v.query(f"two{i}.test", "A", src=NOGROUP_CLIENT)
		err = v.wait_stderr("writing again", timeout=0.25)
		if "writing again" in err:
			break
	assert "records not stored while the database failed" in err, err
	v.query("two.test", "A", src=NOGROUP_CLIENT)
	wait_rows(v, 1, "--domain", "two.test")


def test_missing_state_dir_parent_dns_keeps_working(veto_factory, tmp_path):
	blocker = tmp_path / "file"
	blocker.write_text("not a folder")
	v = veto_factory(edit=with_db(blocker / "state"))
	err = v.wait_stderr("state_dir")
	assert "cannot create" in err, err
	v.assert_alive()


def test_follow_streams_new_rows(veto_factory, state_dir):
	v = veto_factory(edit=with_db(state_dir))
	v.query("f0.follow.test", "A", src=NOGROUP_CLIENT)
	wait_rows(v, 1, "--domain", "follow.test")
	p = subprocess.Popen([str(VETO_BIN), "log", "-c", str(v.config_file), "--follow", "--format",
			      "jsonl", "--domain", "follow.test"], stdout=subprocess.PIPE,
			     stderr=subprocess.PIPE, text=True)
	try:
		first = json.loads(p.stdout.readline())
		assert first["qname"] == "f0.follow.test"
		for i in (1, 2):
			v.query(f"f{i}.follow.test", "A", src=NOGROUP_CLIENT)
		got = [json.loads(p.stdout.readline())["qname"] for _ in range(2)]
		assert got == ["f1.follow.test", "f2.follow.test"]
	finally:
		os.kill(p.pid, signal.SIGTERM)
		out, err = p.communicate(timeout=10)
	assert p.returncode == 0, err


def test_reload_adds_database(veto_factory, state_dir):
	"""log.database added by SIGHUP: the database is created (state_dir too) and `veto log`
	shows the queries made after the reload; the JSON lines go on."""
	v = veto_factory()
	v.query("before.test", src=SINK)
	assert v.wait_log(lambda r: r["qname"] == "before.test")
	v.rewrite_config(with_db(state_dir))
	v.send_signal(signal.SIGHUP)
	assert "reload: ok" in v.wait_stderr("reload: ok")
	v.query("after.test", src=SINK)
	v.query("after.tracker.test", src=SINK)
	# the writer thread creates the database after the reload, at its own pace (slow under
	# a loaded sanitizer build): `veto log` fails on a database that does not exist yet
	opened = lambda: run_veto(["log", "-c", str(v.config_file), "--limit", "1"]).returncode == 0
	assert wait_until(opened, 30), v.stderr()
	got = wait_rows(v, 2)
	assert sorted(r["qname"] for r in got) == ["after.test", "after.tracker.test"]
	assert [r["blocked"] for r in sorted(got, key=lambda r: r["qname"])] == [False, True]
	assert v.wait_log(lambda r: r["qname"] == "after.tracker.test")
	assert "restart needed" not in v.stderr()

