"""Serve-stale (RFC 8767, cache.serve_stale) and prefetch (cache.prefetch) with the real daemon.

The fake upstream answers a name, then dies for it (never answers, SERVFAIL, REFUSED, garbage):
once the TTL has passed, the next query gets the kept answer with TTL 30 (CACHE_STALE_TTL), logged
with action "stale"; past TTL + serve_stale, or with serve_stale off, SERVFAIL as before. An
upstream slower than the client response timer (1.8 s) gets the client the kept answer first,
and its reply, when it comes, replaces the entry. A name
the policy blocks after a reload is answered blocked, never stale. A popular name (2 hits) hit in
the last tenth of its TTL is refreshed once in the background: the upstream sees exactly one more
query and the client never waits for a miss; with prefetch off, the same timeline misses.
"""

import json
import signal
import time

import dns.rcode
import pytest

from conftest import BLOCK_IPV4, GROUP_CLIENT, answer_ttls, answer_values, run_veto
from fakeupstream import Answer, Delay, Garbled, NxDomain, Refused, ServFail, Timeout

STALE_TTL = 30


def settings(**cache):
	def edit(cfg):
		cfg["cache"].update(cache)
	return edit


def stats(v):
	p = run_veto(["stats", "-c", str(v.config_file), "--json"])
	assert p.returncode == 0, p.stderr
	return json.loads(p.stdout)["cache"]


def records(v, name, count):
	return v.wait_log(lambda r: r["qname"] == name, count=count)


DEATHS = {"timeout": Timeout, "servfail": ServFail, "refused": Refused, "garbled": Garbled}


@pytest.mark.parametrize("death", sorted(DEATHS))
def test_dead_upstream_gets_stale_answer(veto, upstream, death):
	upstream.set_rule("kept.test", Answer({"A": ["192.0.2.31"]}, ttl=1))
	assert answer_values(veto.query("kept.test"), "A") == ["192.0.2.31"]
	time.sleep(1.3)
	upstream.set_rule("kept.test", DEATHS[death]())
	r = veto.query("kept.test")
	assert r.rcode() == dns.rcode.NOERROR, f"expected the stale answer, got {dns.rcode.to_text(r.rcode())}"
	assert answer_values(r, "A") == ["192.0.2.31"]
	assert answer_ttls(r) == [STALE_TTL]
	assert len(upstream.queries(name="kept.test")) >= 2, "the upstream must have been asked again"
	recs = records(veto, "kept.test", 2)
	assert [x["action"] for x in recs] == ["forward", "stale"]
	assert recs[1]["upstream"] is None and recs[1]["rcode"] == "NOERROR"
	assert stats(veto)["stale_served"] == 1


def test_negative_answer_served_stale(veto, upstream):
	upstream.set_rule("gone.test", NxDomain(soa_ttl=300, soa_min=1))
	assert veto.query("gone.test").rcode() == dns.rcode.NXDOMAIN
	time.sleep(1.3)
	upstream.set_rule("gone.test", Timeout())
	r = veto.query("gone.test")
	assert r.rcode() == dns.rcode.NXDOMAIN
	assert [rr.ttl for rr in r.authority] == [STALE_TTL]
	assert [x["action"] for x in records(veto, "gone.test", 2)] == ["forward", "stale"]


def test_stale_window_ends_in_servfail(veto_factory, upstream):
	v = veto_factory(edit=settings(serve_stale="2s"))
	upstream.set_rule("short.test", Answer({"A": ["192.0.2.32"]}, ttl=1))
	v.query("short.test")
	time.sleep(1.3)
	upstream.set_rule("short.test", Timeout())
	assert answer_ttls(v.query("short.test")) == [STALE_TTL]	# within TTL + 2 s
	time.sleep(2.0)						# past TTL + 2 s
	r = v.query("short.test")
	assert r.rcode() == dns.rcode.SERVFAIL
	assert [x["action"] for x in records(v, "short.test", 3)] == ["forward", "stale", "servfail"]


def test_serve_stale_off_answers_servfail(veto_factory, upstream):
	v = veto_factory(edit=settings(serve_stale="off"))
	upstream.set_rule("off.test", Answer({"A": ["192.0.2.33"]}, ttl=1))
	v.query("off.test")
	time.sleep(1.3)
	upstream.set_rule("off.test", ServFail())
	assert v.query("off.test").rcode() == dns.rcode.SERVFAIL
	assert [x["action"] for x in records(v, "off.test", 2)] == ["forward", "servfail"]
	assert stats(v)["stale_served"] == 0


def test_name_blocked_after_reload_is_never_served_stale(veto, upstream):
	"""A reload keeps the cache; the policy is decided before the cache, so a name blocked now
	gets the blocked answer even with the upstream dead and a stale entry kept."""
	sink = GROUP_CLIENT["sink"]
	upstream.set_rule("turned.test", Answer({"A": ["192.0.2.34"]}, ttl=1))
	assert answer_values(veto.query("turned.test", src=sink), "A") == ["192.0.2.34"]
	veto.rewrite_config(lambda cfg: cfg["lists"]["ads"]["domains"].append("turned.test"))
	veto.send_signal(signal.SIGHUP)
	veto.wait_stderr("reload: ok")
	time.sleep(1.3)
	upstream.set_rule("turned.test", Timeout())
	r = veto.query("turned.test", src=sink)
	assert answer_values(r, "A") == [BLOCK_IPV4]
	# the same entry still serves a client whose group does not block it
	assert answer_ttls(veto.query("turned.test")) == [STALE_TTL]
	recs = records(veto, "turned.test", 3)
	assert [x["action"] for x in recs] == ["forward", "sinkhole", "stale"]


def test_slow_upstream_client_gets_stale_then_refresh(veto_factory, upstream):
	"""RFC 8767 client response timer: the upstream answers after 3 s (within timeout_ms 5000);
	the client gets the kept answer after 1.8 s instead, and the same upstream request goes on
	and replaces the entry (no second upstream query)."""
	v = veto_factory(edit=lambda cfg: cfg["upstream"].update(timeout_ms=5000))
	upstream.set_rule("slow.test", Answer({"A": ["192.0.2.37"]}, ttl=1))
	v.query("slow.test")
	time.sleep(1.3)
	upstream.set_rule("slow.test", Delay(3.0, Answer({"A": ["192.0.2.38"]}, ttl=300)))
	t = time.monotonic()
	r = v.query("slow.test", timeout=4.5)
	assert answer_values(r, "A") == ["192.0.2.37"], "the kept answer, before the slow reply"
	assert answer_ttls(r) == [STALE_TTL]
	time.sleep(max(0.0, t + 3.6 - time.monotonic()))	# the slow reply has come
	r = v.query("slow.test")
	assert answer_values(r, "A") == ["192.0.2.38"]
	assert len(upstream.queries(name="slow.test")) == 2
	recs = records(v, "slow.test", 3)
	assert [x["action"] for x in recs] == ["forward", "stale", "cache"]


def test_slow_upstream_past_the_stale_window_is_waited_for(veto_factory, upstream):
	"""The client response timer fires after the kept answer's window (TTL + serve_stale) has
	ended: there is nothing to serve, so the query keeps waiting for its upstream request
	(timeout_ms 5000) and gets the slow reply, not a SERVFAIL at 1.8 s."""
	v = veto_factory(edit=lambda cfg: (cfg["cache"].update(serve_stale="2s"),
					   cfg["upstream"].update(timeout_ms=5000)))
	upstream.set_rule("late.test", Answer({"A": ["192.0.2.39"]}, ttl=1))
	v.query("late.test")
	time.sleep(2.0)		# TTL + 1 s: kept; the timer (1.8 s on) fires past TTL + 2 s
	upstream.set_rule("late.test", Delay(3.0, Answer({"A": ["192.0.2.40"]}, ttl=300)))
	r = v.query("late.test", timeout=4.5)
	assert r.rcode() == dns.rcode.NOERROR, dns.rcode.to_text(r.rcode())
	assert answer_values(r, "A") == ["192.0.2.40"]
	assert len(upstream.queries(name="late.test")) == 2
	assert [x["action"] for x in records(v, "late.test", 2)] == ["forward", "forward"]


@pytest.mark.parametrize("prefetch", [True, False])
def test_popular_name_refreshed_once(veto_factory, upstream, prefetch):
	"""TTL 10: queried 3 times at once (popular), then again in its last second (9.0-10.0 s):
	with prefetch, that hit starts one refresh and the query after the TTL is still a hit;
	without, it is a miss. A name hit once in its last second is not refreshed."""
	v = veto_factory(edit=settings(prefetch=prefetch))
	upstream.set_rule("popular.test", Answer({"A": ["192.0.2.35"]}, ttl=10))
	upstream.set_rule("lonely.test", Answer({"A": ["192.0.2.36"]}, ttl=10))
	t0 = time.monotonic()
	for _ in range(3):
		assert answer_values(v.query("popular.test"), "A") == ["192.0.2.35"]
	v.query("lonely.test")
	time.sleep(max(0.0, t0 + 9.3 - time.monotonic()))
	for _ in range(5):
		assert answer_values(v.query("popular.test"), "A") == ["192.0.2.35"]
	v.query("lonely.test")
	if prefetch:
		upstream.wait_queries(2, name="popular.test")
	time.sleep(max(0.0, t0 + 10.6 - time.monotonic()))
	r = v.query("popular.test")
	assert answer_values(r, "A") == ["192.0.2.35"]
	v.query("lonely.test")
	recs = records(v, "popular.test", 9)
	actions = [x["action"] for x in recs]
	assert len(upstream.queries(name="lonely.test")) == 2, "a name hit once is not prefetched"
	if prefetch:
		assert len(upstream.queries(name="popular.test")) == 2, "refreshed exactly once"
		assert actions == ["forward"] + ["cache"] * 8, actions
		assert 8 <= answer_ttls(r)[0] <= 10, "the refreshed entry's TTL"
		assert stats(v)["prefetches"] == 1
	else:
		assert len(upstream.queries(name="popular.test")) == 2
		assert actions == ["forward"] + ["cache"] * 7 + ["forward"], actions
		assert stats(v)["prefetches"] == 0
