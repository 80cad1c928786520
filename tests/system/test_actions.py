"""Policy enforcement on the wire: each block action, EDE, allow-over-block, default deny, list
action override, server.allow, clients in no group, list files, CNAME cloaking."""

import dns.flags
import dns.rcode
import dns.rdatatype
import pytest

from conftest import (BLOCK_IPV4, BLOCK_IPV6, BLOCK_TTL, GROUP_CLIENT, HAVE_IPV6, NOGROUP_CLIENT,
		      OUTSIDE_CLIENT, answer_values, ede_codes, ede_texts)
from fakeupstream import DEFAULT_A, Cname

NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED

# (group, qtype, rcode, answer values expected, negative answer with SOA expected)
ACTION_CASES = [
	("sink", "A", NOERROR, [BLOCK_IPV4], False),
	("sink", "AAAA", NOERROR, [BLOCK_IPV6], False),
	("sink", "MX", NOERROR, [], None),	# NODATA; an SOA is allowed but not required
	("sink", "TXT", NOERROR, [], None),
	("nx", "A", NXDOMAIN, [], True),
	("nx", "AAAA", NXDOMAIN, [], True),
	("nx", "MX", NXDOMAIN, [], True),
	("nodata", "A", NOERROR, [], True),
	("nodata", "AAAA", NOERROR, [], True),
	("nodata", "TXT", NOERROR, [], True),
	("refused", "A", REFUSED, [], False),
	("refused", "AAAA", REFUSED, [], False),
	("refused", "MX", REFUSED, [], False),
]

ACTION_NAME = {"sink": "sinkhole", "nx": "nxdomain", "nodata": "nodata", "refused": "refused"}


def soa_ttls(msg):
	return [rr.ttl for rr in msg.authority if rr.rdtype == dns.rdatatype.SOA]


@pytest.mark.parametrize("group,qtype,rcode,values,negative", ACTION_CASES)
def test_block_action(veto, upstream, group, qtype, rcode, values, negative):
	name = f"x{qtype.lower()}.ads.test"
	r = veto.query(name, qtype, src=GROUP_CLIENT[group])
	assert r.rcode() == rcode
	assert sorted(answer_values(r, qtype)) == sorted(values)
	assert all(rrset.rdtype == dns.rdatatype.from_text(qtype) for rrset in r.answer), r.answer
	if values:
		assert [rrset.ttl for rrset in r.answer] == [BLOCK_TTL]
	if negative is True:
		assert soa_ttls(r) == [BLOCK_TTL], f"negative answer needs one SOA with block.ttl: {r}"
	elif negative is False:
		assert soa_ttls(r) == []
	else:
		assert all(t == BLOCK_TTL for t in soa_ttls(r))
	# RA set, QR set, AA clear on a local answer
	assert r.flags & dns.flags.QR and r.flags & dns.flags.RA
	assert upstream.queries() == [], "a blocked name must not reach the upstream"
	rec = veto.wait_log(lambda x: x["qname"] == name)
	assert rec, "no query log record"
	rec = rec[0]
	assert rec["blocked"] is True
	assert rec["action"] == ACTION_NAME[group]
	assert rec["group"] == group
	assert rec["list"] == "ads"
	assert rec["rule"] == "ads.test"
	assert rec["rcode"] == dns.rcode.to_text(rcode)
	assert rec["upstream"] is None


@pytest.mark.parametrize("group", ["sink", "nx", "nodata", "refused"])
def test_ede_blocked_with_edns(veto, group):
	r = veto.query("ede.tracker.test", "A", src=GROUP_CLIENT[group], edns=True)
	assert r.edns == 0, "OPT must be echoed to an EDNS client"
	assert ede_codes(r) == [15], f"expected one EDE 15 (Blocked), got {r.options}"
	assert any("ads" in t for t in ede_texts(r)), f"EDE text should name the list: {ede_texts(r)}"


@pytest.mark.parametrize("group", ["sink", "nx", "refused"])
def test_no_ede_without_edns(veto, group):
	r = veto.query("noede.tracker.test", "A", src=GROUP_CLIENT[group], edns=False)
	assert r.edns == -1, "no OPT in the reply to a query without OPT"
	assert ede_codes(r) == []


def test_forwarded_answer_has_no_ede(veto):
	r = veto.query("plain.test", "A", src=GROUP_CLIENT["sink"], edns=True)
	assert r.rcode() == NOERROR and answer_values(r, "A") == [DEFAULT_A]
	assert ede_codes(r) == []


# (client group, name, blocked?) for allow-over-block, subdomains and mere string suffixes
MATCH_CASES = [
	("allowover", "ads.test", True),
	("allowover", "deep.sub.ads.test", True),
	("allowover", "ok.ads.test", False),		# allow wins over block
	("allowover", "more.ok.ads.test", False),	# ... for the subtree too
	("allowover", "notads.test", False),		# not under ads.test: a mere string suffix
	("allowover", "ADS.Test", True),		# case-insensitive
	("sink", "ok.ads.test", True),			# 'exceptions' is not sink's allow list
	("sink", "filetrack.test", True),		# from a hosts-format list file
	("sink", "hostsb.test", True),			# second name on a hosts line
	("sink", "adblock.test", True),			# adblock ||name^ rule
	("sink", "x.wild.test", True),			# *.wild.test
	("sink", "wild.test", True),			# *.wild.test covers the name itself
	("nx", "filetrack.test", False),		# filelist is not nx's list
	("deny", "anything.test", True),		# default deny
	("deny", "portal.test", False),			# except what is allowed
	("deny", "www.portal.test", False),
]


@pytest.mark.parametrize("group,name,blocked", MATCH_CASES)
def test_matching(veto, upstream, group, name, blocked):
	r = veto.query(name, "A", src=GROUP_CLIENT[group])
	got_upstream = upstream.queries(name=name)
	if blocked:
		assert got_upstream == []
		assert answer_values(r, "A") != [DEFAULT_A]
		assert r.rcode() in (NOERROR, NXDOMAIN, REFUSED)
	else:
		assert r.rcode() == NOERROR and answer_values(r, "A") == [DEFAULT_A]
		assert len(got_upstream) == 1
	rec = veto.wait_log(lambda x: x["qname"] == name.lower())
	assert rec and rec[0]["blocked"] is blocked and rec[0]["group"] == group


def test_default_deny_record(veto):
	r = veto.query("denied.example.test", "A", src=GROUP_CLIENT["deny"])
	assert r.rcode() == REFUSED
	rec = veto.wait_log(lambda x: x["qname"] == "denied.example.test")[0]
	assert rec["blocked"] is True and rec["action"] == "refused" and rec["list"] is None
	assert rec["rule"] is None


def test_allow_record_names_allow_list(veto):
	veto.query("ok.ads.test", "A", src=GROUP_CLIENT["allowover"])
	rec = veto.wait_log(lambda x: x["qname"] == "ok.ads.test")[0]
	assert rec["blocked"] is False and rec["action"] == "forward"


def test_list_action_overrides_group(veto, upstream):
	"""The canary list fixes nxdomain while group 'sink' sinkholes everything else."""
	r = veto.query("use-application-dns.net", "A", src=GROUP_CLIENT["sink"])
	assert r.rcode() == NXDOMAIN and r.answer == []
	r2 = veto.query("tracker.test", "A", src=GROUP_CLIENT["sink"])
	assert r2.rcode() == NOERROR and answer_values(r2, "A") == [BLOCK_IPV4]
	assert upstream.queries() == []
	rec = veto.wait_log(lambda x: x["qname"] == "use-application-dns.net")[0]
	assert rec["action"] == "nxdomain" and rec["list"] == "canary"


@pytest.mark.parametrize("tcp", [False, True])
def test_client_outside_allow_refused(veto, upstream, tcp):
	r = veto.query("plain.test", "A", src=OUTSIDE_CLIENT, tcp=tcp)
	assert r.rcode() == REFUSED and r.answer == []
	assert upstream.queries() == []
	rec = veto.wait_log(lambda x: x["client"] == OUTSIDE_CLIENT)
	assert rec and rec[0]["action"] == "refused" and rec[0]["rcode"] == "REFUSED"


def test_client_in_no_group_forwarded_unfiltered(veto, upstream):
	r = veto.query("ads.test", "A", src=NOGROUP_CLIENT)
	assert r.rcode() == NOERROR and answer_values(r, "A") == [DEFAULT_A]
	assert len(upstream.queries(name="ads.test")) == 1
	rec = veto.wait_log(lambda x: x["qname"] == "ads.test")[0]
	assert rec["group"] is None and rec["blocked"] is False and rec["action"] == "forward"


@pytest.mark.skipif(not HAVE_IPV6, reason="no IPv6 loopback on this machine")
def test_ipv6_client_group(veto, upstream):
	r = veto.query("v6.ads.test", "AAAA", src="::1", dst="::1")
	assert r.rcode() == NXDOMAIN
	r = veto.query("v6ok.test", "AAAA", src="::1", dst="::1")
	assert r.rcode() == NOERROR and answer_values(r, "AAAA")
	rec = veto.wait_log(lambda x: x["qname"] == "v6.ads.test")[0]
	assert rec["client"] == "::1" and rec["group"] == "v6"


# --- CNAME cloaking ---------------------------------------------------------------------------

CLOAK_CASES = [
	# chain from the upstream, group, expected rcode, A values
	(["metrics.ads.test"], "sink", NOERROR, [BLOCK_IPV4]),
	(["hop1.test", "hop2.test", "deep.tracker.test"], "sink", NOERROR, [BLOCK_IPV4]),
	(["metrics.ads.test"], "nx", NXDOMAIN, []),
	(["metrics.ads.test"], "refused", REFUSED, []),
	(["clean-target.test"], "sink", NOERROR, [DEFAULT_A]),
]


@pytest.mark.parametrize("chain,group,rcode,values", CLOAK_CASES)
def test_cname_cloaking(veto, upstream, chain, group, rcode, values):
	name = "cloak.test"
	upstream.set_rule(name, Cname(chain))
	r = veto.query(name, "A", src=GROUP_CLIENT[group])
	assert r.rcode() == rcode
	assert answer_values(r, "A") == values
	blocked = values != [DEFAULT_A]
	if blocked:
		assert answer_values(r, "CNAME") == [], "the cloaked chain must not leak to the client"
	assert len(upstream.queries(name=name)) == 1
	rec = veto.wait_log(lambda x: x["qname"] == name)[0]
	assert rec["blocked"] is blocked
	if blocked:
		assert rec["list"] == "ads"
		target = chain[-1]
		assert rec["rule"] in ("ads.test", "tracker.test") and target.endswith(rec["rule"])


def test_cname_cloaking_applies_per_group_on_cache_hit(veto, upstream):
	"""A client in no group caches the CNAME answer; a sinkholed group then gets the block action
	from the cached answer too."""
	upstream.set_rule("cached-cloak.test", Cname(["c.ads.test"]))
	r = veto.query("cached-cloak.test", "A", src=NOGROUP_CLIENT)
	assert answer_values(r, "A") == [DEFAULT_A] and answer_values(r, "CNAME") == ["c.ads.test."]
	r = veto.query("cached-cloak.test", "A", src=GROUP_CLIENT["sink"])
	assert answer_values(r, "A") == [BLOCK_IPV4]
	assert len(upstream.queries(name="cached-cloak.test")) == 1
