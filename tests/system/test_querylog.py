"""The JSON-lines query log: exact field names and order, values per outcome, filters."""

import json
import re
import signal
import time
from datetime import datetime, timezone

import pytest

from conftest import GROUP_CLIENT, HAVE_IPV6, NOGROUP_CLIENT, OUTSIDE_CLIENT, make_query
from fakeupstream import Timeout

FIELDS = ["ts", "client", "proto", "group", "qname", "qtype", "blocked", "list", "rule", "action",
	  "rcode", "upstream", "latency_us", "mac", "device", "vendor", "vendor_source"]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def check_shape(rec):
	assert list(rec) == FIELDS, f"fields/order: {list(rec)}"
	assert TS.match(rec["ts"]), rec["ts"]
	ts = datetime.strptime(rec["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
	assert abs(ts.timestamp() - time.time()) < 120, "ts must be the current UTC time"
	assert rec["proto"] in ("udp", "tcp")
	assert isinstance(rec["blocked"], bool)
	assert isinstance(rec["latency_us"], int) and not isinstance(rec["latency_us"], bool)
	assert rec["latency_us"] >= 0


# (what to send, expected fields); each case sends one query with a fresh veto
CASES = {
	"forward": (dict(name="Fwd.Example.TEST", qtype="A", src=NOGROUP_CLIENT),
		    dict(client=NOGROUP_CLIENT, proto="udp", group=None, qname="fwd.example.test", qtype="A",
			 blocked=False, list=None, rule=None, action="forward", rcode="NOERROR")),
	"forward_group_tcp": (dict(name="grp.test", qtype="AAAA", src=GROUP_CLIENT["sink"], tcp=True),
			      dict(client=GROUP_CLIENT["sink"], proto="tcp", group="sink", qname="grp.test",
				   qtype="AAAA", blocked=False, list=None, rule=None, action="forward",
				   rcode="NOERROR")),
	"sinkhole": (dict(name="a.b.Tracker.test", qtype="A", src=GROUP_CLIENT["sink"]),
		     dict(group="sink", qname="a.b.tracker.test", blocked=True, list="ads", rule="tracker.test",
			  action="sinkhole", rcode="NOERROR", upstream=None)),
	"nxdomain": (dict(name="ads.test", qtype="MX", src=GROUP_CLIENT["nx"]),
		     dict(group="nx", qname="ads.test", qtype="MX", blocked=True, list="ads", rule="ads.test",
			  action="nxdomain", rcode="NXDOMAIN", upstream=None)),
	"nodata": (dict(name="x.ads.test", qtype="TXT", src=GROUP_CLIENT["nodata"]),
		   dict(group="nodata", qtype="TXT", blocked=True, action="nodata", rcode="NOERROR")),
	"refused": (dict(name="x.ads.test", qtype="A", src=GROUP_CLIENT["refused"]),
		    dict(group="refused", blocked=True, action="refused", rcode="REFUSED")),
	"list_file": (dict(name="hostsa.test", qtype="A", src=GROUP_CLIENT["sink"]),
		      dict(blocked=True, list="filelist", rule="hostsa.test", action="sinkhole")),
	"outside_allow": (dict(name="out.test", qtype="A", src=OUTSIDE_CLIENT),
			  dict(client=OUTSIDE_CLIENT, action="refused", rcode="REFUSED", upstream=None)),
	"unknown_type": (dict(name="t.test", qtype="TYPE65280", src=NOGROUP_CLIENT),
			 dict(qtype="TYPE65280", action="forward")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_record(veto, upstream, case):
	send, expect = CASES[case]
	send = dict(send)
	veto.query(send.pop("name"), send.pop("qtype"), **send)
	recs = veto.wait_log()
	assert len(recs) == 1, f"one record per query, got {recs}"
	rec = recs[0]
	check_shape(rec)
	for k, v in expect.items():
		assert rec[k] == v, f"{k}: {rec[k]!r} != {v!r} in {rec}"
	if rec["action"] == "forward":
		assert rec["upstream"] == upstream.address


def test_cache_and_servfail_records(veto_factory, make_upstream):
	up = make_upstream()
	v = veto_factory(upstreams=[up])
	v.query("c.test")
	v.query("c.test")
	up.set_rule("sf.test", Timeout())
	v.query("sf.test", timeout=8)
	recs = v.wait_log(count=3)
	for r in recs:
		check_shape(r)
	assert [(r["qname"], r["action"], r["rcode"]) for r in recs] == [
		("c.test", "forward", "NOERROR"), ("c.test", "cache", "NOERROR"), ("sf.test", "servfail", "SERVFAIL")]
	assert recs[2]["latency_us"] >= 100000, "a SERVFAIL after timeouts took at least one timeout"


def test_formerr_record(veto):
	veto.exchange(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00")	# QDCOUNT 1, no question
	rec = veto.wait_log()
	assert len(rec) == 1
	check_shape(rec[0])
	assert rec[0]["action"] == "formerr" and rec[0]["rcode"] == "FORMERR"
	assert rec[0]["qname"] is None and rec[0]["qtype"] is None


def test_notimp_record(veto):
	q = make_query("status.test", "A")
	wire = bytearray(q.to_wire())
	wire[2] = (wire[2] & 0x87) | (2 << 3)	# opcode STATUS
	veto.exchange(bytes(wire))
	rec = veto.wait_log()
	assert len(rec) == 1 and rec[0]["rcode"] == "NOTIMP"
	assert rec[0]["action"] in ("notimp", "formerr")


@pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 loopback on this machine")
def test_ipv6_client_record(veto):
	veto.query("six.test", "A", src="::1", dst="::1")
	rec = veto.wait_log()
	assert rec and rec[0]["client"] == "::1" and rec[0]["group"] == "v6"


def test_every_query_logged_once(veto):
	names = [f"each{i}.test" for i in range(20)] + [f"each{i}.ads.test" for i in range(20)]
	for n in names:
		veto.query(n, src=GROUP_CLIENT["sink"])
	recs = veto.wait_log(count=len(names))
	assert sorted(r["qname"] for r in recs) == sorted(names)
	for line in veto.raw_log_lines():
		json.loads(line)	# every line is one complete JSON object


@pytest.mark.parametrize("mode,expect_forward,expect_blocked", [("all", 1, 1), ("blocked", 0, 1), ("none", 0, 0)])
def test_log_queries_filter(veto_factory, mode, expect_forward, expect_blocked):
	v = veto_factory(edit=lambda c: c["log"].update(queries=mode))
	v.query("f.test", src=GROUP_CLIENT["sink"])
	v.query("b.ads.test", src=GROUP_CLIENT["sink"])
	v.query("end.ads.test", src=GROUP_CLIENT["sink"])	# a marker: the writer has caught up
	if expect_blocked:
		assert v.wait_log(lambda r: r["qname"] == "end.ads.test")
	v.stop()
	recs = v.log_records()
	assert len([r for r in recs if r["qname"] == "f.test"]) == expect_forward
	assert len([r for r in recs if r["qname"] == "b.ads.test"]) == expect_blocked
	if mode == "none":
		assert v.raw_log_lines() == []


def test_log_to_stdout(veto_factory):
	v = veto_factory(edit=lambda c: c["log"].update(file="-"))
	v.query("stdout.test")
	v.stop()
	lines = [json.loads(line) for line in v.stdout().splitlines() if line.startswith("{")]
	assert any(r["qname"] == "stdout.test" for r in lines)


# --- a reload (SIGHUP) applies the log settings ---

def reload(v, edit):
	"""Rewrites the configuration, sends SIGHUP, waits for the reload to finish."""
	v.rewrite_config(edit)
	v.send_signal(signal.SIGHUP)
	err = v.wait_stderr("reload: ok")
	assert "reload: ok" in err, err


def records_of(path):
	try:
		lines = path.read_text().split("\n")[:-1]
	except FileNotFoundError:
		return []
	return [r for r in map(json.loads, lines) if r["qname"] != "probe.veto-test"]


def test_reload_log_queries_all_to_blocked(veto_factory):
	"""log.queries all -> blocked by SIGHUP: from the reload on, an allowed query is not logged,
	a blocked one is."""
	v = veto_factory()
	v.query("before.test", src=GROUP_CLIENT["sink"])
	assert v.wait_log(lambda r: r["qname"] == "before.test")
	reload(v, lambda c: c["log"].update(queries="blocked"))
	v.query("after.test", src=GROUP_CLIENT["sink"])
	v.query("after.ads.test", src=GROUP_CLIENT["sink"])
	assert v.wait_log(lambda r: r["qname"] == "after.ads.test")
	assert v.stop() == 0
	names = [r["qname"] for r in v.log_records()]
	assert names == ["before.test", "after.ads.test"], names
	assert "restart needed" not in v.stderr()


def test_reload_moves_log_file(veto_factory):
	"""log.file moved by SIGHUP: what was logged before stays in the old file, what comes after
	goes to the new one, nothing in both."""
	v = veto_factory()
	old, new = v.log_file, v.dir / "queries-moved.jsonl"
	v.query("old.test")
	assert v.wait_log(lambda r: r["qname"] == "old.test")
	reload(v, lambda c: c["log"].update(file=str(new)))
	v.query("new.test")
	v.query("new.ads.test", src=GROUP_CLIENT["sink"])
	deadline = time.monotonic() + 5
	while len(records_of(new)) < 2 and time.monotonic() < deadline:
		time.sleep(0.02)
	assert v.stop() == 0
	assert [r["qname"] for r in records_of(old)] == ["old.test"]
	assert [r["qname"] for r in records_of(new)] == ["new.test", "new.ads.test"]
	err = v.stderr()
	assert "restart needed" not in err
	assert f"query log: '{old}': closed" in err


def test_reload_turns_logging_on(veto_factory):
	"""Started with log.queries none (no writer), a SIGHUP with all starts the query log."""
	v = veto_factory(edit=lambda c: c["log"].update(queries="none"))
	v.query("quiet.test")
	reload(v, lambda c: c["log"].update(queries="all"))
	v.query("loud.test")
	assert v.wait_log(lambda r: r["qname"] == "loud.test")
	assert v.stop() == 0
	assert [r["qname"] for r in v.log_records()] == ["loud.test"]
	err = v.stderr()
	assert "reload: query log started" in err
	assert "restart needed" not in err

