"""The command line: veto check, veto explain (text and --json), version, --help, exit codes."""

import json
import re

import pytest

from conftest import GROUP_CLIENT, NOGROUP_CLIENT, OUTSIDE_CLIENT, Veto, run_veto

BASE = """\
server:
  listen: ["127.0.0.1:5399"]
upstream:
  servers: ["127.0.0.1:5300"]
  timeout_ms: 500
lists:
  ads: {domains: [ads.test]}
groups:
  - name: g1
    clients: [127.0.0.2]
    block: [ads]
    action: nxdomain
log:
  file: "-"
"""


def base_lines():
	return BASE.splitlines(keepends=True)


def replace_line(lineno, text):
	"""BASE with line lineno (1-based) replaced by text (which may hold several lines)."""
	lines = base_lines()
	lines[lineno - 1] = text
	return "".join(lines)


def insert_after(lineno, text):
	lines = base_lines()
	lines.insert(lineno, text)
	return "".join(lines)


# (id, yaml, line, key token, value token, key path, message regex). The column may be the key's
# or the value's (for a sequence element, the element's): both are accepted.
ERROR_CASES = [
	("unknown_key_did_you_mean", replace_line(2, '  lisen: ["127.0.0.1:5399"]\n'), 2, "lisen", "[",
	 "server.lisen", re.escape("unknown key (did you mean 'listen'?)")),
	("unknown_top_key", BASE + "grops: []\n", 15, "grops", "[", "grops",
	 r"unknown key \(did you mean 'groups'\?\)"),
	("unknown_action", replace_line(12, "    action: sinkhol\n"), 12, "action", "sinkhol", "groups[0].action",
	 re.escape("unknown value 'sinkhol' (expected sinkhole, nxdomain, nodata, refused)")),
	("unknown_list", replace_line(11, "    block: [nosuch]\n"), 11, "block", "nosuch", "groups[0].block[0]",
	 r".*'nosuch'.*"),
	("cidr_host_bits", replace_line(10, "    clients: [10.0.0.1/8]\n"), 10, "clients", "10.0", "groups[0].clients[0]",
	 r".*'10\.0\.0\.1/8'.*"),
	("cidr_prefix_too_long", replace_line(10, "    clients: [10.0.0.0/33]\n"), 10, "clients", "10.0",
	 "groups[0].clients[0]", r".*'10\.0\.0\.0/33'.*"),
	("bad_listen_port", replace_line(2, '  listen: ["127.0.0.1:99999"]\n'), 2, "listen", '"', "server.listen[0]",
	 r".*'127\.0\.0\.1:99999'.*"),
	("bad_upstream", replace_line(4, '  servers: ["not an address"]\n'), 4, "servers", '"',
	 "upstream.servers[0]", r".*'not an address'.*"),
	("duplicate_group", insert_after(12, "  - name: g1\n    clients: [127.0.0.3]\n"), 13, "name", "g1",
	 "groups[1].name", r".*'g1'.*"),
	("timeout_not_a_number", replace_line(5, "  timeout_ms: soon\n"), 5, "timeout_ms", "soon",
	 "upstream.timeout_ms", r".*"),
	("block_action_bad", BASE + "block:\n  action: drop\n", 16, "action", "drop", "block.action",
	 re.escape("unknown value 'drop' (expected sinkhole, nxdomain, nodata, refused)")),
	("list_action_bad", replace_line(7, "  ads: {domains: [ads.test], action: nope}\n"), 7, "action", "nope",
	 "lists.ads.action", r".*'nope'.*"),
	("list_unknown_key", replace_line(7, "  ads: {domain: [ads.test]}\n"), 7, "domain", "[", "lists.ads.domain",
	 r"unknown key \(did you mean 'domains'\?\)"),
	("group_unknown_key", replace_line(11, "    blok: [ads]\n"), 11, "blok", "[", "groups[0].blok",
	 r"unknown key \(did you mean 'block'\?\)"),
	("log_queries_bad", replace_line(14, "  queries: some\n"), 14, "queries", "some", "log.queries",
	 r".*'some'.*"),
	("device_selector_without_devices", insert_after(12, "    vendors: [Xiaomi]\n"), 13, "vendors", "[",
	 "groups[0].vendors", re.escape("matches devices, but device identity is off: add a 'devices:' "
					"section ('devices: {}' is enough)")),
]


def run_check(tmp_path, text, name="veto.yaml"):
	path = tmp_path / name
	path.write_text(text)
	p = run_veto(["check", "-c", str(path)])
	return path, p


def test_base_config_is_valid(veto_bin, tmp_path):
	path, p = run_check(tmp_path, BASE)
	assert p.returncode == 0, p.stdout + p.stderr
	out = p.stdout + p.stderr
	assert "ads" in out and "g1" in out, "check prints one line per list and per group"


@pytest.mark.parametrize("case", ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_check_error_message(veto_bin, tmp_path, case):
	_, text, line, ktok, vtok, keypath, msg = case
	src = text.splitlines()[line - 1]
	kcol, vcol = src.index(ktok) + 1, src.index(vtok) + 1
	path, p = run_check(tmp_path, text)
	assert p.returncode == 2, f"exit {p.returncode}\n{p.stdout}{p.stderr}"
	pattern = re.compile(rf"{re.escape(str(path))}:{line}:(\d+): {re.escape(keypath)}: {msg}")
	found = [m for m in map(pattern.fullmatch, p.stderr.splitlines()) if m]
	assert found, f"no line '{path}:{line}:COL: {keypath}: <{msg}>' in stderr:\n{p.stderr}"
	assert int(found[0].group(1)) in (kcol, vcol), f"column {found[0].group(1)}, expected {kcol} or {vcol}"


def test_check_reports_all_errors_at_once(veto_bin, tmp_path):
	text = replace_line(12, "    action: sinkhol\n").replace("  listen:", "  lisen:")
	path, p = run_check(tmp_path, text)
	assert p.returncode == 2
	assert re.search(rf"^{re.escape(str(path))}:2:\d+: server\.lisen: ", p.stderr, re.M), p.stderr
	assert re.search(rf"^{re.escape(str(path))}:12:\d+: groups\[0\]\.action: ", p.stderr, re.M), p.stderr


def test_check_yaml_syntax_error(veto_bin, tmp_path):
	path, p = run_check(tmp_path, "server:\n  listen: [\"127.0.0.1:5399\"\nupstream: {\n")
	assert p.returncode == 2
	assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: ", p.stderr, re.M), p.stderr


def test_check_unreachable_group(veto_bin, tmp_path):
	text = BASE.replace("groups:\n", "groups:\n  - name: everyone\n    block: [ads]\n")
	path, p = run_check(tmp_path, text)
	assert p.returncode == 2
	assert re.search(rf"^{re.escape(str(path))}:\d+:\d+: groups\[1\]", p.stderr, re.M), p.stderr


def test_check_min_ttl_above_max_ttl(veto_bin, tmp_path):
	path, p = run_check(tmp_path, BASE + "cache:\n  min_ttl: 100\n  max_ttl: 10\n")
	assert p.returncode == 2
	assert re.search(rf"^{re.escape(str(path))}:1[678]:\d+: cache\.(min|max)_ttl: ", p.stderr, re.M), p.stderr


def test_check_missing_list_file(veto_bin, tmp_path):
	path, p = run_check(tmp_path, replace_line(7, "  ads: {files: [missing.txt]}\n"))
	assert p.returncode == 2
	assert "missing.txt" in p.stderr


def test_check_list_problems_reported_with_other_errors(veto_bin, tmp_path):
	"""An unreadable list file is reported along with the other errors, in file order, and the
	skipped lines of the lists defined without error too."""
	(tmp_path / "bad.txt").write_text("good.test\nnot a name\n")
	text = replace_line(7, "  ads: {files: [missing.txt]}\n  more: {files: [bad.txt]}\n")
	text = text.replace("    block: [ads]\n", "    block: [ads, more]\n").replace("  listen:", "  lisen:")
	text = text.replace("    action: nxdomain\n", "    action: sinkhol\n")
	path, p = run_check(tmp_path, text)
	assert p.returncode == 2, p.stderr
	lines = p.stderr.splitlines()
	where = [next((i for i, l in enumerate(lines) if re.match(rf"{re.escape(str(path))}:{n}:\d+: {k}", l)), None)
		 for n, k in ((2, r"server\.lisen: "), (7, r"lists\.ads\.files\[0\]: cannot read list file '.*missing\.txt'"),
			      (13, r"groups\[0\]\.action: "))]
	assert None not in where and where == sorted(where), p.stderr
	assert re.search(r"bad\.txt:2: skipped: ", p.stderr), p.stderr
	assert p.stderr.rstrip().endswith("3 errors, 0 warnings"), p.stderr


def test_check_relative_list_file_and_skipped_lines(veto_bin, tmp_path):
	sub = tmp_path / "conf"
	sub.mkdir()
	(sub / "lists").mkdir()
	(sub / "lists" / "ads.txt").write_text("ads.test\n0.0.0.0 b.test c.test\nthis is not a name!\n")
	path, p = run_check(sub, replace_line(7, "  ads: {files: [lists/ads.txt]}\n"))
	assert p.returncode == 0, p.stderr
	out = p.stdout + p.stderr
	assert re.search(rf"{re.escape(str(sub / 'lists' / 'ads.txt'))}:3: skipped: ", out) or \
		re.search(r"lists/ads\.txt:3: skipped: ", out), out


def test_check_unused_list_is_a_warning(veto_bin, tmp_path):
	path, p = run_check(tmp_path, insert_after(7, "  spare: {domains: [spare.test]}\n"))
	assert p.returncode == 0, p.stderr
	assert re.search(rf"^{re.escape(str(path))}:8:\d+: lists\.spare: warning: ", p.stderr, re.M), p.stderr


def test_check_missing_config_file(veto_bin, tmp_path):
	p = run_veto(["check", "-c", str(tmp_path / "absent.yaml")])
	assert p.returncode in (1, 2)
	assert "absent.yaml" in p.stderr


def test_check_test_suite_config(veto_bin, tmp_path):
	"""The configuration the daemon tests use is itself valid."""
	v = Veto(veto_bin, tmp_path / "cfg", ["127.0.0.1:5300"])
	p = run_veto(["check", "-c", str(v.config_file)])
	assert p.returncode == 0, p.stderr
	out = p.stdout + p.stderr
	for name in ("ads", "canary", "filelist", "exceptions", "portal", "sink", "deny", "allowover"):
		assert name in out


# --- explain ----------------------------------------------------------------------------------

# (client, name, group, blocked, action, list, rule)
EXPLAIN_CASES = [
	(GROUP_CLIENT["sink"], "x.ads.test", "sink", True, "sinkhole", "ads", "ads.test"),
	(GROUP_CLIENT["sink"], "use-application-dns.net", "sink", True, "nxdomain", "canary",
	 "use-application-dns.net"),
	(GROUP_CLIENT["sink"], "hostsb.test", "sink", True, "sinkhole", "filelist", "hostsb.test"),
	(GROUP_CLIENT["nx"], "Deep.Sub.Tracker.Test.", "nx", True, "nxdomain", "ads", "tracker.test"),
	(GROUP_CLIENT["allowover"], "ok.ads.test", "allowover", False, None, "exceptions", "ok.ads.test"),
	(GROUP_CLIENT["allowover"], "notads.test", "allowover", False, None, None, None),
	(GROUP_CLIENT["deny"], "anything.test", "deny", True, "refused", None, None),
	(NOGROUP_CLIENT, "ads.test", None, False, None, None, None),
	("::1", "x.ads.test", "v6", True, "nxdomain", "ads", "ads.test"),
]


@pytest.fixture
def suite_config(veto_bin, tmp_path):
	return Veto(veto_bin, tmp_path / "cfg", ["127.0.0.1:5300"]).config_file


@pytest.mark.parametrize("client,name,group,blocked,action,lst,rule", EXPLAIN_CASES)
def test_explain_json(suite_config, client, name, group, blocked, action, lst, rule):
	p = run_veto(["explain", "-c", str(suite_config), "--client", client, name, "A", "--json"])
	assert p.returncode == 0, p.stderr
	j = json.loads(p.stdout)
	for key in ("client", "allowed", "group", "blocked", "reason", "action", "list", "rule", "qname", "qtype"):
		assert key in j, f"missing key {key!r} in {j}"
	assert j["client"] == client and j["allowed"] is True
	assert j["group"] == group
	assert j["blocked"] is blocked
	if blocked:
		assert j["action"] == action
	assert j["list"] == lst
	assert j["rule"] == rule
	assert j["qname"] == name.lower().rstrip(".")
	assert j["qtype"] == "A"


def test_explain_json_outside_allow(suite_config):
	p = run_veto(["explain", "-c", str(suite_config), "--client", OUTSIDE_CLIENT, "x.test", "--json"])
	assert p.returncode == 0, p.stderr
	j = json.loads(p.stdout)
	assert j["allowed"] is False


def test_explain_text(suite_config):
	p = run_veto(["explain", "-c", str(suite_config), "--client", GROUP_CLIENT["sink"], "a.tracker.test"])
	assert p.returncode == 0, p.stderr
	out = p.stdout
	for word in ("sink", "sinkhole", "ads", "tracker.test"):
		assert word in out, f"{word!r} missing from:\n{out}"
	assert "10.11.12.13" in out, "the sinkhole address that would be answered"
	p = run_veto(["explain", "-c", str(suite_config), "--client", NOGROUP_CLIENT, "a.tracker.test"])
	assert p.returncode == 0
	assert "sinkhole" not in p.stdout


EXPLAIN_USAGE_ERRORS = [
	["explain"],
	["explain", "-c", "CFG", "x.test"],			# no --client
	["explain", "-c", "CFG", "--client", "127.0.0.2"],	# no name
	["explain", "-c", "CFG", "--client", "not-an-ip", "x.test"],
	["explain", "-c", "CFG", "--client", "127.0.0.2", "x.test", "A", "--bogus"],
]


@pytest.mark.parametrize("args", EXPLAIN_USAGE_ERRORS, ids=range(len(EXPLAIN_USAGE_ERRORS)))
def test_explain_usage_errors(suite_config, args):
	p = run_veto([str(suite_config) if a == "CFG" else a for a in args])
	assert p.returncode == 2, p.stdout + p.stderr
	assert p.stderr.strip(), "a usage error says why on stderr"


# --- version, help, usage -----------------------------------------------------------------

def test_version(veto_bin):
	p = run_veto(["version"])
	assert p.returncode == 0
	assert re.fullmatch(r"veto \d+\.\d+\.\d+\S*\n", p.stdout), p.stdout


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["check", "--help"], ["explain", "--help"],
				  ["version", "--help"]])
def test_help_exit_0(veto_bin, args):
	p = run_veto(args)
	assert p.returncode == 0, p.stderr
	assert "usage" in p.stdout.lower()


@pytest.mark.parametrize("args", [["frobnicate"], [], ["check", "--no-such-option"], ["serve", "--no-such-option"]])
def test_usage_errors_exit_2(veto_bin, args):
	p = run_veto(args)
	assert p.returncode == 2, p.stdout + p.stderr
	assert p.stderr.strip()
	if args == ["frobnicate"]:
		assert "unknown command 'frobnicate'" in p.stderr
