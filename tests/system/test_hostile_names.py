"""Hostile DHCP host names do not break veto's output: a dnsmasq lease file (written in binary)
names devices with quotes, backslashes, control octets (\\x01, \\r, a terminal escape \\x1b[2J, BEL,
DEL), invalid UTF-8 (\\xff, the overlong \\xc0\\xaf, a truncated \\xe2\\x82), valid non-ASCII and a
300-octet name. Each device queries the daemon (devices on, the query log as JSON lines and in the
database); then, per device:
  - JSON output (the daemon's log.file, `veto devices --json`, `veto explain --json`,
    `veto log --format json` and `jsonl`, `veto report attempts --format json`,
    `veto report device --format json`) parses with json.loads, has no raw control octet
    (below 0x20 except the newline between lines, and 0x7f) and is valid UTF-8;
  - table output (`veto devices`, `veto log`) keeps every row on one line (no raw \\n or \\r
    inside a row) and has no ESC octet;
  - CSV output (`veto log --format csv`) has no control octet, is valid UTF-8, and no cell
    starts with '=', '+', '-' or '@' (a spreadsheet would run it as a formula).
"""

import json
import re
import signal
import subprocess
import time

import dns.message
import pytest

from conftest import SANITIZER_MARKERS, VETO_BIN, Veto, udp_exchange
from fakeupstream import FakeUpstream

HOSTILE = {
	# id: (client address, host name octets)
	"quotes-backslash": ("127.0.0.81", b'say"hi\'\\there\\'),
	"ctl-01": ("127.0.0.82", b"ctl\x01x"),
	"esc-clear": ("127.0.0.83", b"esc\x1b[2Jcleared"),
	"bel": ("127.0.0.84", b"bell\x07x"),
	"del": ("127.0.0.85", b"del\x7fx"),
	"cr": ("127.0.0.86", b"cr\rx"),
	"invalid-ff": ("127.0.0.87", b"bad\xffutf8"),
	"overlong": ("127.0.0.88", b"over\xc0\xaflong"),
	"truncated": ("127.0.0.89", b"trunc\xe2\x82"),
	"zoe": ("127.0.0.90", "Zo\u00eb".encode()),
	"nihon": ("127.0.0.91", "\u65e5\u672c".encode()),
	"long-300": ("127.0.0.92", b"n" * 300),
	"formula-eq": ("127.0.0.93", b"=HYPERLINK(\"http://x.test\",\"a\")"),
	"formula-at": ("127.0.0.94", b"@SUM(1+1)"),
	"long-utf8": ("127.0.0.95", "\u00e9".encode() * 40),	# 80 octets: any cut lands in it
}
IDS = list(HOSTILE)
WARM_IP = "127.0.0.80"		# a plain name: waits for the lease file to load


def mac_of(ip):
	return f"00:00:5e:00:53:{int(ip.rsplit('.', 1)[1]):02x}"


def hostile_edit(work):
	def edit(cfg):
		lines = [b"0 %s %s %s *" % (mac_of(ip).encode(), ip.encode(), name)
			 for ip, name in [(WARM_IP, b"warm-up")] + list(HOSTILE.values())]
		(work / "dnsmasq.leases").write_bytes(b"\n".join(lines) + b"\n")
		cfg["state_dir"] = str(work / "state")
		cfg["log"]["database"] = "queries.db"
		cfg["devices"] = {
			"dhcp_leases": [{"file": str(work / "dnsmasq.leases"), "format": "dnsmasq"}],
			"arp": False,
			"oui": False,
		}
		probe = cfg["groups"][0]
		assert probe["name"] == "probe"
		cfg["groups"] = [probe, {"name": "lan", "clients": ["127.0.0.0/24", "::1/128"],
					 "block": ["ads"]}]
	return edit


def ask(v, name, src):
	q = dns.message.make_query(name, "A", use_edns=0)
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=3.0)
	assert wire is not None, f"no reply to {name} from {src}"


@pytest.fixture(scope="module")
def hostile(veto_bin, tmp_path_factory):
	up = FakeUpstream()
	work = tmp_path_factory.mktemp("hostile")
	(work / "dev").mkdir()
	v = Veto(veto_bin, work / "veto", [up], hostile_edit(work / "dev"))
	try:
		v.start()
		# the lease file loads in the background: wait until a device has its MAC
		ip0 = WARM_IP
		deadline = time.monotonic() + 10
		for i in range(1000):
			ask(v, f"warm-{i}.test", ip0)
			got = v.wait_log(lambda r: r["qname"] == f"warm-{i}.test")
			if got and got[-1]["mac"] == mac_of(ip0):
				break
			assert time.monotonic() < deadline, f"leases not loaded:\n{v.stderr()}"
			time.sleep(0.05)
		for ip, _ in HOSTILE.values():
			ask(v, "ads.test", ip)		# blocked: an attempt
			ask(v, "www.example.test", ip)
		v.wait_log(lambda r: r["qname"] == "www.example.test", count=len(HOSTILE))
		assert v.stop() == 0, v.stderr()
		assert not v.sanitizer_reports(), v.stderr()
	finally:
		if v.running():
			v.stop(signal.SIGKILL)
		up.stop()
	v.db = work / "dev" / "state" / "queries.db"
	return v


def veto_bytes(args):
	"""Runs veto, returns its standard output as bytes (exit 0 required)."""
	p = subprocess.run([str(VETO_BIN), *args], capture_output=True, timeout=30)
	assert p.returncode == 0, (args, p.stderr)
	assert not [m for m in SANITIZER_MARKERS if m.encode() in p.stderr], p.stderr
	return p.stdout


def clean_json_problems(out, per_line):
	"""What is wrong with out as JSON text (a list of messages, empty when fine)."""
	problems = []
	body = out[:-1] if out.endswith(b"\n") else out
	bad = sorted({f"0x{c:02x}" for c in body if (c < 0x20 and c != 0x0a) or c == 0x7f})
	if bad:
		problems.append(f"raw control octets {bad}")
	try:
		text = out.decode("utf-8")
	except UnicodeDecodeError as e:
		problems.append(f"invalid UTF-8: {e}")
		text = out.decode("utf-8", errors="replace")
	try:
		if per_line:
			for line in text.splitlines():
				json.loads(line)
		else:
			json.loads(text)
	except ValueError as e:
		problems.append(f"not JSON: {e}")
	return problems


def table_problems(out, lines_ok):
	problems = []
	if b"\x1b" in out:
		problems.append("ESC octet")
	if b"\r" in out:
		problems.append("raw CR")
	bad = [ln for ln in out.split(b"\n") if ln and not lines_ok(ln)]
	if bad:
		problems.append(f"lines that are not rows: {bad[:3]}")
	return problems


def case(ids, kind):
	"""Parameters for ids; kind's known failures (KNOWN) are marked xfail(strict)."""
	out = []
	for i in ids:
		reason = KNOWN.get((kind, i))
		out.append(pytest.param(i, id=i, marks=[pytest.mark.xfail(strict=True, reason=reason)]
					if reason else []))
	return out


KNOWN = {}


# --- JSON outputs ------------------------------------------------------------------------------

@pytest.mark.parametrize("hid", case(IDS, "querylog-file"))
def test_query_log_file(hostile, hid):
	ip = HOSTILE[hid][0]
	lines = [ln for ln in hostile.log_file.read_bytes().split(b"\n")
		 if b'"client":"%s"' % ip.encode() in ln]
	assert len(lines) == 2, lines
	assert not clean_json_problems(b"\n".join(lines) + b"\n", True)
	assert {json.loads(ln)["mac"] for ln in lines} == {mac_of(ip)}


@pytest.mark.parametrize("hid", case(IDS, "devices-json"))
def test_devices_json(hostile, hid):
	out = veto_bytes(["devices", "-c", str(hostile.config_file), "--json"])
	mac = mac_of(HOSTILE[hid][0]).encode()
	mine = [ln for ln in out.split(b"\n") if b'"mac:%s"' % mac in ln]
	assert len(mine) == 1, out
	assert not clean_json_problems(mine[0] + b"\n", True)
	assert json.loads(mine[0])["hostname"] is not None


@pytest.mark.parametrize("hid", case(IDS, "explain-json"))
def test_explain_json(hostile, hid):
	out = veto_bytes(["explain", "-c", str(hostile.config_file), "--client", HOSTILE[hid][0],
			  "--json", "ads.test"])
	assert not clean_json_problems(out, False)
	e = json.loads(out)
	assert e["device"]["mac"] == mac_of(HOSTILE[hid][0]) and e["device"]["hostname"]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
@pytest.mark.parametrize("hid", case(IDS, "log-json"))
def test_log_json(hostile, hid, fmt):
	out = veto_bytes(["log", "--db", str(hostile.db), "--client", HOSTILE[hid][0], "--format",
			  fmt])
	assert not clean_json_problems(out, fmt == "jsonl")
	recs = json.loads(out) if fmt == "json" else [json.loads(ln) for ln in out.splitlines()]
	assert len(recs) == 2 and all(r["mac"] == mac_of(HOSTILE[hid][0]) for r in recs), recs


@pytest.mark.parametrize("hid", case(IDS, "report-attempts-json"))
def test_report_attempts_json(hostile, hid):
	out = veto_bytes(["report", "attempts", "--db", str(hostile.db), "--client",
			  HOSTILE[hid][0], "--format", "json", "--since", "all"])
	assert not clean_json_problems(out, False)
	rows = json.loads(out)
	assert len(rows) == 1, rows


@pytest.mark.parametrize("hid", case(IDS, "report-device-json"))
def test_report_device_json(hostile, hid):
	out = veto_bytes(["report", "device", mac_of(HOSTILE[hid][0]), "--db", str(hostile.db),
			  "--format", "json", "--since", "all"])
	assert not clean_json_problems(out, False)
	kinds = [e["kind"] for e in json.loads(out)]
	assert kinds.count("query") == 2 and "first_seen" in kinds, kinds


# --- tables ------------------------------------------------------------------------------------

DEVICE_LINE = re.compile(rb"^(mac|ip):\S+$|^  (ips|mac|hostname|inventory|oui|vendor|observed|"
			 rb"group|seen): ")


@pytest.mark.parametrize("hid", case(IDS, "devices-table"))
def test_devices_table(hostile, hid):
	out = veto_bytes(["devices", "-c", str(hostile.config_file)])
	key = b"mac:" + mac_of(HOSTILE[hid][0]).encode()
	start = out.index(key + b"\n")
	nxt = re.search(rb"\n(mac|ip):", out[start + 1:])
	block = out[start:start + 1 + nxt.start() + 1] if nxt else out[start:]
	assert not table_problems(block, DEVICE_LINE.match), block
	assert block.count(b"\n  hostname:   ") == 1


@pytest.mark.parametrize("hid", case(IDS, "log-table"))
def test_log_table(hostile, hid):
	out = veto_bytes(["log", "--db", str(hostile.db), "--client", HOSTILE[hid][0]])
	lines = out.rstrip(b"\n").split(b"\n")
	client = HOSTILE[hid][0].encode()
	# a header and one row per query, each row naming the client
	assert not table_problems(out, lambda ln: ln.startswith(b"TIME") or client in ln), out
	assert len(lines) == 3, out


def csv_cells(line):
	"""The cells of one RFC 4180 line (no embedded line breaks: the output must not have any)."""
	cells, cur, quoted, i = [], "", False, 0
	while i < len(line):
		ch = line[i]
		if quoted:
			if ch == '"' and i + 1 < len(line) and line[i + 1] == '"':
				cur += '"'
				i += 1
			elif ch == '"':
				quoted = False
			else:
				cur += ch
		elif ch == '"':
			quoted = True
		elif ch == ",":
			cells.append(cur)
			cur = ""
		else:
			cur += ch
		i += 1
	cells.append(cur)
	return cells


@pytest.mark.parametrize("hid", case(IDS, "log-csv"))
def test_log_csv(hostile, hid):
	out = veto_bytes(["log", "--db", str(hostile.db), "--client", HOSTILE[hid][0],
			  "--format", "csv"])
	text = out.decode("utf-8")	# raises on invalid UTF-8
	assert not [c for c in text if (ord(c) < 0x20 and c != "\n") or ord(c) == 0x7f], out
	lines = text.rstrip("\n").split("\n")
	assert len(lines) == 3, out	# header and the two queries of the device
	for ln in lines[1:]:
		cells = csv_cells(ln)
		assert len(cells) == len(csv_cells(lines[0])), ln
		assert not [c for c in cells if c[:1] in ("=", "+", "@") or
			    (c[:1] == "-" and c != "-")], ln
