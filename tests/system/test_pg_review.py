"""Reading the shared store (issue 15 §3): `veto log`, `veto report` and the web console answer
from PostgreSQL (store.postgresql) with what they answer from the SQLite store for the same
rows, plus each row's instance.

The same known rows go into both stores: into PostgreSQL by SQL (daily partitions, the rollups
as GROUP BY of the rows, as the writer's contract says; the schema made by `veto log` itself),
into a SQLite store made by the daemon and then rewritten with these rows as an older schema,
so that the daemon's own conversion builds its rollups. Times are spread over three days
ending now, one row per millisecond at most, so both orders are the same.
"""

import csv
import io
import json
import os
import select
import signal
import sqlite3
import subprocess
import time
from datetime import datetime, timezone

import pytest

from conftest import VETO_BIN, run_veto, write_yaml
from fakeupstream import free_port
from httpclient import get

TOKEN = "pg-review-token-0123456789abcdef"

# (client, mac, device, group, vendor, vendor_source)
SOURCES = [
	("10.0.0.2", "3c:00:00:00:00:01", "phone-a", "banned", "Xiaomi", "signature"),
	("10.0.0.9", "3c:00:00:00:00:01", "phone-a", "banned", "Xiaomi", "signature"),
	("10.0.0.3", "3c:00:00:00:00:02", None, "staff", None, None),
	("10.0.0.4", None, "laptop", "staff", None, None),
	("10.0.0.5", None, None, None, None, None),
	("2001:db8::7", "3c:00:00:00:00:04", "tv", "home", "Huawei", "oui"),
]
NAMES = ["ads.test", "x.tracker.test", "connect.rom.miui.com", "a.example.com", "www.example.com",
	 "b.a.example.com", "portal.test", "some_name.example.org", "example.com", "notexample.com"]
LISTS = {"ads.test": "ads", "x.tracker.test": "ads", "connect.rom.miui.com": "xiaomi"}
NROWS = 420


def make_rows(now_ms):
	start = (now_ms // 3600000) * 3600000 - 60 * 3600000
	rows = []
	for i in range(NROWS):
		ts = start + i * 499_997 + (i % 7)	# about 8 minutes apart, off the hour
		if ts >= now_ms:
			break
		src = SOURCES[(i * 7) % len(SOURCES)]
		name = NAMES[(i * 3 + i // 11) % len(NAMES)]
		lst = LISTS.get(name)
		if src[3] == "home" and name == "connect.rom.miui.com":
			lst = None	# not on the group's lists
		blocked = lst is not None or (src[3] == "banned" and name != "portal.test")
		action = "sinkhole" if lst else "refused" if blocked else ("cache" if i % 4 == 0 else "forward")
		rows.append({
			"ts": ts, "client": src[0], "mac": src[1], "device": src[2], "group": src[3],
			"vendor": src[4], "vendor_source": src[5], "qname": name,
			"qtype": "AAAA" if i % 5 == 0 else "A", "proto": "tcp" if i % 9 == 0 else "udp",
			"blocked": blocked, "list": lst, "rule": name if lst else None, "action": action,
			"rcode": "NOERROR", "upstream": "127.0.0.1:53" if action == "forward" else None,
			"latency_us": (i * 37) % 5000, "instance": ("dns1", "dns2", "dns1")[i % 3],
		})
	return rows


def make_events(now_ms):
	return [
		{"ts": now_ms - 50 * 3600000, "device": "phone-a", "mac": "3c:00:00:00:00:01",
		 "client": "10.0.0.2", "kind": "first", "old_group": None, "new_group": "home",
		 "evidence": None, "vendor": None},
		{"ts": now_ms - 49 * 3600000, "device": "phone-a", "mac": "3c:00:00:00:00:01",
		 "client": "10.0.0.2", "kind": "vendor", "old_group": "home", "new_group": "banned",
		 "evidence": "connect.rom.miui.com", "vendor": "Xiaomi"},
		{"ts": now_ms - 20 * 3600000, "device": "tv", "mac": "3c:00:00:00:00:04",
		 "client": "2001:db8::7", "kind": "first", "old_group": None, "new_group": "home",
		 "evidence": None, "vendor": "Huawei"},
	]


def iso(ms):
	return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def sql_lit(v):
	if v is None:
		return "NULL"
	if isinstance(v, bool):
		return "true" if v else "false"
	if isinstance(v, int):
		return str(v)
	return "'" + str(v).replace("'", "''") + "'"


def pg_ts(ms):
	return f"(timestamptz 'epoch' + {ms} * interval '1 millisecond')"


def fill_pg(pg, rows, events):
	days = sorted({r["ts"] // 86400000 for r in rows})
	parts = []
	for d in days:
		lo = datetime.fromtimestamp(d * 86400, timezone.utc).strftime("%Y-%m-%d")
		hi = datetime.fromtimestamp((d + 1) * 86400, timezone.utc).strftime("%Y-%m-%d")
		parts.append(f"CREATE TABLE queries_{lo.replace('-', '')} PARTITION OF queries"
			     f" FOR VALUES FROM ('{lo} 00:00+00') TO ('{hi} 00:00+00');")
	pg.psql("".join(parts))
	cols = ["client", "mac", "device", "group_name", "vendor", "vendor_source", "qname", "qtype",
		"proto", "blocked", "list", "rule", "action", "rcode", "upstream", "latency_us",
		"instance"]
	keys = ["client", "mac", "device", "group", "vendor", "vendor_source", "qname", "qtype",
		"proto", "blocked", "list", "rule", "action", "rcode", "upstream", "latency_us",
		"instance"]
	for k in range(0, len(rows), 100):
		values = ",".join("(" + pg_ts(r["ts"]) + "," + ",".join(sql_lit(r[c]) for c in keys) + ")"
				  for r in rows[k:k + 100])
		pg.psql(f"INSERT INTO queries (ts, {', '.join(cols)}) VALUES {values}")
	# newest first: a spooled batch's events reach the table after newer ones, so ids are not
	# in time order and the readers must order events by their time
	ev = ",".join("(" + pg_ts(e["ts"]) + ", 'dns1', " + ", ".join(
		sql_lit(e[c]) for c in ("device", "mac", "client", "kind", "old_group", "new_group",
					"evidence", "vendor")) + ")" for e in reversed(events))
	pg.psql("INSERT INTO device_events (ts, instance, device, mac, client, kind, old_group,"
		f" new_group, evidence, vendor) VALUES {ev}")
	rebuild_rollups(pg)


def rebuild_rollups(pg):
	"""The rollups as GROUP BY of the rows, '' for none (the writer's contract)."""
	keys_sql = ("instance, client, coalesce(mac, ''), coalesce(device, ''),"
		    " coalesce(group_name, ''), coalesce(vendor, ''), coalesce(list, ''),"
		    " coalesce(action, ''), blocked")
	pg.psql("SET TIME ZONE 'UTC';"
		" TRUNCATE rollup_sources, rollup_days, rollup_names, rollup_name_days, rollup_hours;"
		f"INSERT INTO rollup_sources SELECT date_trunc('hour', ts), {keys_sql}, count(*)"
		" FROM queries GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;"
		f"INSERT INTO rollup_days SELECT (ts AT TIME ZONE 'UTC')::date, {keys_sql}, count(*)"
		" FROM queries GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10;"
		"INSERT INTO rollup_names SELECT coalesce(qname, ''), date_trunc('hour', ts), instance,"
		" coalesce(list, ''), coalesce(action, ''), blocked, count(*) FROM queries"
		" GROUP BY 1, 2, 3, 4, 5, 6;"
		"INSERT INTO rollup_name_days SELECT coalesce(qname, ''), (ts AT TIME ZONE 'UTC')::date,"
		" instance, coalesce(list, ''), coalesce(action, ''), blocked, count(*) FROM queries"
		" GROUP BY 1, 2, 3, 4, 5, 6;"
		"INSERT INTO rollup_hours SELECT date_trunc('hour', ts), instance, count(*),"
		" count(*) FILTER (WHERE blocked) FROM queries GROUP BY 1, 2;"
		f"{ATTEMPT_ROLLUPS}")


# what `report attempts` reads (resolver/pg/pg_schema_attempts.c), from the rows
ATTEMPT_ROLLUPS = (
	"TRUNCATE rollup_attempts, rollup_attempt_names;"
	"INSERT INTO rollup_attempts SELECT (ts AT TIME ZONE 'UTC')::date, instance,"
	" coalesce(mac, client), mac IS NULL, coalesce(list, ''), count(*), min(ts), max(ts)"
	" FROM queries WHERE blocked GROUP BY 1, 2, 3, 4, 5;"
	"INSERT INTO rollup_attempt_names SELECT coalesce(mac, client), mac IS NULL,"
	" coalesce(qname, ''), max(ts) FROM queries WHERE blocked AND list IS NOT NULL"
	" GROUP BY 1, 2, 3;")


def rname(q):
	return "".join(label + "." for label in reversed(q.split(".")))


def fill_sqlite(path, rows, events):
	db = sqlite3.connect(str(path))
	db.execute("PRAGMA journal_mode = DELETE")
	for t in ("queries", "sources", "names", "texts", "device_events", "rollup_sources",
		  "rollup_names", "rollup_hours", "rollup_days"):
		db.execute(f"DELETE FROM {t}")
	texts, sources, names = {}, {}, {}

	def text(v):
		if v is None:
			return None
		if v not in texts:
			texts[v] = len(texts) + 1
			db.execute("INSERT INTO texts (id, text) VALUES (?, ?)", (texts[v], v))
		return texts[v]
	for r in rows:
		sk = (r["client"], r["mac"], r["device"], r["group"], r["vendor"], r["vendor_source"])
		if sk not in sources:
			sources[sk] = len(sources) + 1
			db.execute("INSERT INTO sources (id, client, mac, device, group_name, vendor,"
				   " vendor_source) VALUES (?, ?, ?, ?, ?, ?, ?)", (sources[sk], *sk))
		if r["qname"] not in names:
			names[r["qname"]] = len(names) + 1
			db.execute("INSERT INTO names (id, qname, rname) VALUES (?, ?, ?)",
				   (names[r["qname"]], r["qname"], rname(r["qname"])))
		db.execute("INSERT INTO queries (ts_ms, source, name, qtype, proto, blocked, list, rule,"
			   " action, rcode, upstream, latency_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   (r["ts"], sources[sk], names[r["qname"]], text(r["qtype"]), text(r["proto"]),
			    1 if r["blocked"] else 0, text(r["list"]), text(r["rule"]), text(r["action"]),
			    text(r["rcode"]), text(r["upstream"]), r["latency_us"]))
	for e in events:
		db.execute("INSERT INTO device_events (ts_ms, device, mac, client, kind, old_group,"
			   " new_group, evidence, vendor) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
			   (e["ts"], e["device"], e["mac"], e["client"], e["kind"], e["old_group"],
			    e["new_group"], e["evidence"], e["vendor"]))
	db.execute("PRAGMA user_version = 3")	# the daemon builds the rollups when it opens it
	db.commit()
	db.close()


def user_version(path):
	db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
	try:
		return db.execute("PRAGMA user_version").fetchone()[0]
	finally:
		db.close()


def wait_until(pred, timeout=20.0):
	deadline = time.monotonic() + timeout
	while not pred():
		if time.monotonic() > deadline:
			return False
		time.sleep(0.1)
	return True


@pytest.fixture
def stores(veto_factory, pg_server, tmp_path):
	"""(pg config file, sqlite path, rows, events): the same rows in both stores."""
	now_ms = int(time.time() * 1000)
	rows, events = make_rows(now_ms), make_events(now_ms)
	db = tmp_path / "queries.db"

	def with_db(cfg):
		cfg["state_dir"] = str(tmp_path / "state")
		cfg["log"]["database"] = str(db)
	v = veto_factory(edit=with_db)
	assert wait_until(lambda: db.exists() and user_version(db) == 4), "no query store made"
	assert v.stop() == 0
	fill_sqlite(db, rows, events)
	v.start(wait_ready=False)	# no probe query: no row but ours
	assert wait_until(lambda: user_version(db) == 4), "the store was not converted"
	assert v.stop() == 0

	pg_cfg = tmp_path / "pg.yaml"
	cfg = dict(v.config)
	cfg["store"] = {"postgresql": pg_server.conninfo, "instance": "cli"}
	cfg["log"] = {k: x for k, x in cfg["log"].items() if k != "database"}
	write_yaml(pg_cfg, cfg)
	# the schema, made by the reader as the daemon would make it
	p = run_veto(["log", "-c", str(pg_cfg), "--format", "json"])
	assert p.returncode == 0, p.stderr
	assert json.loads(p.stdout) == []
	fill_pg(pg_server, rows, events)
	return pg_cfg, db, rows, events


def out(args):
	p = run_veto(args)
	assert p.returncode == 0, f"veto {' '.join(args)}: {p.returncode}\n{p.stderr}"
	return p.stdout


def both(stores, args):
	pg_cfg, db = stores[0], stores[1]
	return out([*args, "-c", str(pg_cfg)]), out([*args, "--db", str(db)])


def no_instance(rows):
	return [{k: v for k, v in r.items() if k != "instance"} for r in rows]


def test_log_same_rows_and_filters(stores):
	rows = stores[2]
	t = sorted(r["ts"] for r in rows)
	mid1, mid2 = iso(t[len(t) // 4] + 1), iso(t[3 * len(t) // 4])
	filters = [
		[], ["--limit", "7"], ["--limit", "0"],
		["--device", "phone-a"], ["--device", "laptop,tv"], ["--client", "10.0.0.9"],
		["--client", "2001:DB8::7"], ["--mac", "3C-00-00-00-00-02"], ["--group", "staff"],
		["--vendor", "xiaomi"], ["--domain", "example.com"], ["--domain", "some_name.example.org"],
		["--domain", "tracker.test", "--device", "phone-a"], ["--action", "sinkhole"],
		["--action", "forward,cache"], ["--blocked"], ["--allowed"], ["--list", "ads"],
		["--since", mid1], ["--until", mid2], ["--since", mid1, "--until", mid2, "--device", "tv"],
		["--since", "24h", "--limit", "0"], ["--since", "90m", "--domain", "example.com"],
	]
	for f in filters:
		pg, lite = both(stores, ["log", "--format", "json", *f])
		pg, lite = json.loads(pg), json.loads(lite)
		assert no_instance(pg) == lite, f
		assert all(r["instance"] in ("dns1", "dns2") for r in pg)
		assert "instance" not in (lite[0] if lite else {})
	# the filters selected something (the comparisons are not all of empty lists)
	assert len(json.loads(both(stores, ["log", "--format", "json", "--device", "phone-a"])[0])) > 20
	assert len(json.loads(both(stores, ["log", "--format", "json", "--domain", "example.com",
					    "--limit", "0"])[0])) > 100


def test_log_instance_column_and_filter(stores):
	pg_cfg, db, rows = stores[0], stores[1], stores[2]
	got = json.loads(out(["log", "-c", str(pg_cfg), "--format", "json", "--limit", "0",
			      "--instance", "dns2"]))
	assert len(got) == sum(1 for r in rows if r["instance"] == "dns2")
	assert {r["instance"] for r in got} == {"dns2"}
	text = out(["log", "-c", str(pg_cfg), "--wide", "--limit", "3"])
	assert "INSTANCE" in text.splitlines()[0]
	csv_rows = list(csv.DictReader(io.StringIO(out(["log", "-c", str(pg_cfg), "--format", "csv",
							 "--limit", "5"]))))
	assert len(csv_rows) == 5 and all(r["instance"] in ("dns1", "dns2") for r in csv_rows)
	# one instance's SQLite file has no instance to filter on
	p = run_veto(["log", "--db", str(db), "--instance", "dns1"])
	assert p.returncode == 2 and "--instance" in p.stderr


def test_reports_same(stores):
	rows = stores[2]
	t = sorted(r["ts"] for r in rows)
	mid1, mid2 = iso(t[len(t) // 5] + 1), iso(t[4 * len(t) // 5])
	first, last = iso(t[0] + 1), iso(t[-1])	# 60 hours: one or two whole UTC days
	assert t[-1] - t[0] > 48 * 3600000
	cases = [
		["attempts", "--since", "all"], ["attempts", "--since", "24h"], ["attempts"],
		["attempts", "--since", mid1], ["attempts", "--since", mid2, "--limit", "2"],
		["attempts", "--since", "all", "--list", "ads"],
		["attempts", "--group", "banned", "--since", "all"], ["attempts", "--since", mid1,
								       "--until", mid2],
		["summary", "--since", "all"], ["summary", "--since", "24h"], ["summary", "--since", "7d"],
		["summary", "--since", mid1, "--until", mid2], ["summary", "--since", "all", "--device",
								 "phone-a"],
		["summary", "--since", "all", "--domain", "example.com"],
		["summary", "--since", "all", "--list", "ads", "--top", "2"],
		# whole days in the middle, whole hours and partial hours at both ends
		["summary", "--since", first, "--until", last],
		["summary", "--since", first, "--until", last, "--list", "ads", "--top", "1"],
		["summary", "--since", first, "--until", last, "--action", "sinkhole,forward"],
		["summary", "--since", first, "--until", last, "--blocked"],
		["device", "phone-a", "--since", "all"], ["device", "3c:00:00:00:00:04", "--since", "all"],
	]
	for c in cases:
		pg, lite = both(stores, ["report", c[0], "--format", "json", *c[1:]])
		assert json.loads(pg) == json.loads(lite), c
	pg, lite = both(stores, ["report", "attempts", "--since", "all", "--format", "json"])
	att = json.loads(pg)
	assert any(a.get("attempts", 0) > 0 for a in (att if isinstance(att, list) else att["devices"]))
	pg, lite = both(stores, ["report", "attempts", "--since", "all", "--format", "csv"])
	assert pg == lite and "connect.rom.miui.com" in pg


class Lines:
	"""p's output line by line, each wait bounded (a deadline on the monotonic clock)."""

	def __init__(self, p):
		self.fd, self.buf = p.stdout.fileno(), b""

	def read(self, deadline):
		while b"\n" not in self.buf:
			left = deadline - time.monotonic()
			if left <= 0 or not select.select([self.fd], [], [], min(left, 0.2))[0]:
				if left <= 0:
					return None
				continue
			chunk = os.read(self.fd, 65536)
			if not chunk:
				return None
			self.buf += chunk
		line, self.buf = self.buf.split(b"\n", 1)
		return line.decode()


def test_follow_tails_new_rows(stores, pg_server):
	"""--follow: the newest rows, then the rows stored after, oldest first, from any instance."""
	pg_cfg = stores[0]
	p = subprocess.Popen([str(VETO_BIN), "log", "-c", str(pg_cfg), "--follow", "--format", "jsonl",
			      "--domain", "example.com", "--limit", "2"], stdout=subprocess.PIPE,
			     stderr=subprocess.PIPE)
	lines = Lines(p)
	try:
		deadline = time.monotonic() + 60
		first = [lines.read(deadline) for _ in range(2)]
		assert all(line and json.loads(line)["qname"].endswith("example.com") for line in first), \
			(first, p.poll())
		now_ms = int(time.time() * 1000)
		day = datetime.fromtimestamp(now_ms / 1000, timezone.utc)
		lo = day.strftime("%Y-%m-%d")
		hi = datetime.fromtimestamp(now_ms / 1000 + 86400, timezone.utc).strftime("%Y-%m-%d")
		pg_server.psql(f"CREATE TABLE IF NOT EXISTS queries_{lo.replace('-', '')} PARTITION OF"
			       f" queries FOR VALUES FROM ('{lo} 00:00+00') TO ('{hi} 00:00+00')")
		for i, inst in ((1, "dns2"), (2, "dns1")):
			pg_server.psql("INSERT INTO queries (ts, instance, client, qname, qtype, proto,"
				       f" blocked, action, rcode, latency_us) VALUES ({pg_ts(now_ms + i)},"
				       f" '{inst}', '10.0.0.5', 'f{i}.follow.example.com', 'A', 'udp', false,"
				       " 'forward', 'NOERROR', 1)")
		rebuild_rollups(pg_server)
		got = [lines.read(deadline) for _ in range(2)]
		assert all(got), got
		got = [json.loads(line) for line in got]
		assert [(r["qname"], r["instance"]) for r in got] == [
			("f1.follow.example.com", "dns2"), ("f2.follow.example.com", "dns1")]
	finally:
		os.kill(p.pid, signal.SIGTERM)
		_, err = p.communicate(timeout=10)
	assert p.returncode == 0, err


def test_web_attempts_from_pg(stores, veto_factory, pg_server, tmp_path):
	pg_cfg, db = stores[0], stores[1]
	import hashlib
	port = free_port(["127.0.0.1"])

	def edit(cfg):
		cfg["state_dir"] = str(tmp_path / "web-state")
		cfg["store"] = {"postgresql": pg_server.conninfo, "instance": "web1"}
		cfg["http"] = {"listen": [f"127.0.0.1:{port}"], "tokens": [
			{"name": "t", "sha256": hashlib.sha256(TOKEN.encode()).hexdigest(), "role": "read"}]}
	veto_factory(edit=edit)
	auth = {"Authorization": f"Bearer {TOKEN}"}
	r = get(port, "/attempts.csv?since=all", headers=auth)
	assert r.status == 200, r.text
	assert r.text == out(["report", "attempts", "--since", "all", "--format", "csv", "--db", str(db)])
	r = get(port, "/log?since=all&device=phone-a", headers=auth)
	assert r.status == 200 and "connect.rom.miui.com" in r.text
