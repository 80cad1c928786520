"""The HTTP listener: /metrics in the Prometheus format, the security headers, refusals,
configuration checks, and a listener that survives garbage and slow clients."""

import hashlib
import signal
import socket
import subprocess
import time

import pytest

from conftest import GROUP_CLIENT, NOGROUP_CLIENT, VETO_BIN, run_veto
from fakeupstream import free_port
from httpclient import get, parse_metrics, post, request, value

CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")


def with_http(port, **extra):
	def edit(cfg):
		cfg["http"] = {"listen": [f"127.0.0.1:{port}"], **extra}
	return edit


@pytest.fixture
def http_veto(veto_factory):
	port = free_port(["127.0.0.1"])
	v = veto_factory(edit=with_http(port))
	v.http_port = port
	return v


def scrape(port):
	r = get(port, "/metrics")
	assert r.status == 200, r.text
	assert r.header("Content-Type").startswith("text/plain; version=0.0.4")
	return parse_metrics(r.text)


def test_metrics_parse_and_exact_counts(http_veto):
	port = http_veto.http_port
	before, families = scrape(port)
	# every family has its HELP and TYPE, and follows the naming conventions
	for name, (typ, doc) in families.items():
		assert name.startswith("veto_"), name
		assert doc, f"{name} has no HELP"
		assert typ in ("counter", "gauge", "histogram"), (name, typ)
	for must in ("veto_queries", "veto_responses", "veto_group_queries", "veto_cache_hits",
		     "veto_cache_misses", "veto_cache_entries", "veto_upstream_latency_seconds",
		     "veto_upstream_errors", "veto_reloads", "veto_log_records_lost",
		     "veto_list_entries", "veto_list_age_seconds",
		     "veto_process_resident_memory_bytes", "veto_build_info"):
		assert must in families, f"{must} missing: {sorted(families)}"

	for _ in range(3):
		r = http_veto.query("ads.test", src=GROUP_CLIENT["sink"])
		assert r is not None
	r = http_veto.query("fwd.example", src=NOGROUP_CLIENT)
	assert r is not None
	after, _ = scrape(port)

	def delta(name, **labels):
		return value(after, name, **labels) - value(before, name, **labels)

	assert delta("veto_group_queries_total", group="sink", action="sinkhole") == 3
	assert delta("veto_group_queries_total", group="nx", action="sinkhole") == 0
	assert delta("veto_queries_total", protocol="udp", action="sinkhole") == 3
	assert delta("veto_queries_total", protocol="udp", action="forward") == 1
	assert delta("veto_group_queries_total", group="(none)", action="forward") == 1
	assert delta("veto_responses_total", rcode="NOERROR") == 4
	server = http_veto.upstreams[0].address
	assert delta("veto_upstream_latency_seconds_count", server=server) == 1
	assert delta("veto_upstream_latency_seconds_bucket", server=server, le="+Inf") == 1
	assert value(after, "veto_list_entries", list="ads") == 2
	assert value(after, "veto_process_resident_memory_bytes") > 1_000_000

	assert http_veto.query("tracker.test", src=GROUP_CLIENT["nx"], tcp=True) is not None
	last, _ = scrape(port)
	assert value(last, "veto_queries_total", protocol="tcp", action="nxdomain") - \
		value(after, "veto_queries_total", protocol="tcp", action="nxdomain") == 1
	assert value(last, "veto_responses_total", rcode="NXDOMAIN") - \
		value(after, "veto_responses_total", rcode="NXDOMAIN") == 1
	assert value(last, "veto_group_queries_total", group="nx", action="nxdomain") - \
		value(after, "veto_group_queries_total", group="nx", action="nxdomain") == 1


def test_security_headers_and_refusals(http_veto):
	port = http_veto.http_port
	for path in ("/login", "/metrics", "/nowhere"):
		r = get(port, path)
		assert r.header("Content-Security-Policy") == CSP, path
		assert r.header("X-Content-Type-Options") == "nosniff"
		assert r.header("Referrer-Policy") == "same-origin"
		assert r.header("Cache-Control") == "no-store"
	assert get(port, "/nowhere").status == 404
	assert request(port, "DELETE", "/metrics").status == 405
	assert post(port, "/metrics", {"a": "b"}).status == 405
	# no users or tokens: every request is admin, but a POST still needs the CSRF token
	assert post(port, "/logout", {}).status == 403
	assert post(port, "/logout", {"csrf": "0" * 64}).status == 403
	# ... and only a loopback Host: a web page that rebinds its own name to 127.0.0.1 gets
	# nothing
	assert get(port, "/metrics", headers={"Host": "evil.example"}).status == 403
	assert get(port, "/metrics", headers={"Host": f"localhost:{port}"}).status == 200


def test_garbage_and_slow_clients_while_dns_answers(http_veto):
	port = http_veto.http_port
	for junk in (b"\x00\xff" * 500 + b"\r\n\r\n", b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n",
		     b"POST /login HTTP/1.1\r\nContent-Length: -5\r\n\r\n", b"\r\n" * 100):
		s = socket.create_connection(("127.0.0.1", port), timeout=5)
		try:
			try:	# the listener may close before it has read everything
				s.sendall(junk)
				s.shutdown(socket.SHUT_WR)
				while s.recv(4096):
					pass
			except (ConnectionResetError, BrokenPipeError, OSError):
				pass
		finally:
			s.close()
	slow = []
	try:
		deadline = time.monotonic() + 20
		for _ in range(200):
			assert time.monotonic() < deadline
			try:
				s = socket.create_connection(("127.0.0.1", port), timeout=2)
			except OSError:
				continue
			slow.append(s)
			try:
				s.send(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")	# never finished
			except OSError:
				pass
		answered = 0
		for i in range(20):
			r = http_veto.query(f"slow{i}.example", src=NOGROUP_CLIENT)
			answered += r is not None
		assert answered == 20
		# one address cannot take every connection: another one is served meanwhile
		assert get(port, "/metrics", source="127.0.0.3").status == 200
	finally:
		for s in slow:
			s.close()
	# the listener serves again once they are gone
	deadline = time.monotonic() + 10
	while True:
		try:
			if get(port, "/metrics").status == 200:
				break
		except OSError:
			pass
		assert time.monotonic() < deadline, "the listener does not answer after the slow clients"
		time.sleep(0.1)
	http_veto.assert_alive()


def test_check_and_serve_refuse_public_listen_without_auth(veto_factory):
	port = free_port(["127.0.0.1"])
	v = veto_factory(edit=lambda c: c.update(http={"listen": [f"0.0.0.0:{port}"]}), start=False)
	p = run_veto(["check", "-c", str(v.config_file)])
	assert p.returncode == 2
	assert "http.listen[0]" in p.stderr and "not a loopback address" in p.stderr
	v.start(wait_ready=False)
	v.expected_exit = 2
	assert v.wait_exit() == 2
	assert "configuration not valid" in v.stderr()


@pytest.mark.parametrize("entry,message", [
	({"users": [{"name": "a", "password": "plain", "role": "admin"}]}, "not a crypt(3) hash"),
	({"users": [{"name": "a", "password": "$1$abc$defghijklmnopqrstuvwx", "role": "admin"}]},
	 "not a crypt(3) hash"),
	({"users": [{"name": "a", "password": "$6$salt$" + "a" * 86, "role": "root"}]},
	 "http.users[0].role"),
	({"tokens": [{"name": "t", "sha256": "abc", "role": "read"}]}, "not a SHA-256"),
	({"tokens": [{"name": "t", "sha256": "a" * 64}]}, "needs a role"),
])
def test_check_rejects_bad_entries(veto_factory, entry, message):
	port = free_port(["127.0.0.1"])
	v = veto_factory(edit=with_http(port, **entry), start=False)
	p = run_veto(["check", "-c", str(v.config_file)])
	assert p.returncode == 2, p.stdout + p.stderr
	assert message in p.stderr, p.stderr


def passwd(password, *args):
	p = subprocess.run([str(VETO_BIN), "passwd", *args], input=password + "\n",
			   capture_output=True, text=True, timeout=30)
	assert p.returncode == 0, p.stderr
	return p.stdout.strip()


def test_passwd_hash_passes_check(veto_factory):
	y = passwd("correct horse")
	s = passwd("correct horse", "--sha512")
	assert y.startswith("$y$") and s.startswith("$6$")
	port = free_port(["0.0.0.0"])
	token = hashlib.sha256(b"tok").hexdigest()
	v = veto_factory(start=False, edit=lambda c: c.update(http={
		"listen": [f"0.0.0.0:{port}"],
		"users": [{"name": "a", "password": y, "role": "admin"},
			  {"name": "b", "password": s, "role": "read"}],
		"tokens": [{"name": "prom", "sha256": token, "role": "read"}]}))
	p = run_veto(["check", "-c", str(v.config_file)])
	assert p.returncode == 0, p.stderr


def test_reload_keeps_group_counts_by_name(http_veto):
	"""Groups reordered by a reload: each group's counters follow its name, not its index."""
	port = http_veto.http_port
	for _ in range(3):
		assert http_veto.query("ads.test", src=GROUP_CLIENT["sink"]) is not None
	assert http_veto.query("ads.test", src=GROUP_CLIENT["nx"]) is not None
	before, _ = scrape(port)
	new_port = free_port(["127.0.0.1"])

	def edit(cfg):
		cfg["groups"] = list(reversed(cfg["groups"]))
		cfg["http"]["listen"] = [f"127.0.0.1:{new_port}"]
	http_veto.rewrite_config(edit)
	http_veto.send_signal(signal.SIGHUP)
	err = http_veto.wait_stderr("reload: ok")
	assert "http.listen changed: restart veto" in err
	after, _ = scrape(port)	# still on the old address until a restart
	for group, action in (("sink", "sinkhole"), ("nx", "nxdomain"), ("probe", "sinkhole")):
		assert value(after, "veto_group_queries_total", group=group, action=action) == \
			value(before, "veto_group_queries_total", group=group, action=action), group
	assert value(after, "veto_group_queries_total", group="sink", action="sinkhole") >= 3
	assert value(after, "veto_reloads_total", result="ok") == 1
	assert value(after, "veto_reloads_total", result="failed") == 0


def test_device_metrics(veto_factory, tmp_path):
	port = free_port(["127.0.0.1"])
	inv = [{"name": "tv", "mac": "00:00:5e:00:53:25", "ip": GROUP_CLIENT["sink"],
		"vendor": "Acme TV"}]

	def edit(cfg):
		cfg["http"] = {"listen": [f"127.0.0.1:{port}"]}
		cfg["devices"] = {"inventory": inv, "arp": False}
	v = veto_factory(edit=edit)
	for _ in range(2):
		assert v.query("ads.test", src=GROUP_CLIENT["sink"]) is not None
	samples, families = scrape(port)
	assert value(samples, "veto_devices") >= 1
	assert value(samples, "veto_devices_by_source", source="inventory") >= 1
	assert value(samples, "veto_devices_by_vendor", vendor="Acme TV") == 1	# an inventory vendor
	assert ("veto_devices_by_vendor", frozenset({("vendor", "Xiaomi")})) in samples	# a signature's
	assert value(samples, "veto_devices_by_group", group="sink") >= 1
	assert value(samples, "veto_device_events_total", kind="first_seen") >= 1
	assert families["veto_devices_by_vendor"][0] == "gauge"


def test_http_address_in_use_stops_the_start(veto_factory):
	busy = socket.socket()
	busy.bind(("127.0.0.1", 0))
	busy.listen(1)
	port = busy.getsockname()[1]
	try:
		v = veto_factory(edit=with_http(port), start=False)
		v.start(wait_ready=False)
		v.expected_exit = 1
		assert v.wait_exit() == 1
		assert f"http: cannot listen on 127.0.0.1:{port}" in v.stderr()
		assert not v.sanitizer_reports(), v.stderr()
	finally:
		busy.close()


def test_large_form_refused(http_veto):
	port = http_veto.http_port
	r = request(port, "POST", "/logout", body="csrf=" + "a" * (70 * 1024),
		    headers={"Content-Type": "application/x-www-form-urlencoded"})
	assert r.status == 413
	# announced larger than the bound: refused before the body is sent
	s = socket.create_connection(("127.0.0.1", port), timeout=5)
	try:
		s.sendall(b"POST /logout HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n"
			  b"Content-Type: application/x-www-form-urlencoded\r\n\r\n")
		head = s.recv(4096)
		assert head.startswith(b"HTTP/1.1 413"), head
	finally:
		s.close()
	assert get(port, "/metrics").status == 200


def test_upstream_errors_per_server(veto_factory, upstream):
	from fakeupstream import Timeout
	port = free_port(["127.0.0.1"])
	upstream.set_rule("slow.example", Timeout())
	v = veto_factory(edit=with_http(port))
	before, _ = scrape(port)
	r = v.query("slow.example", src=NOGROUP_CLIENT, timeout=5)
	assert r is not None and r.rcode() == 2	# SERVFAIL after the attempts timed out
	after, _ = scrape(port)
	server = upstream.address
	assert value(after, "veto_upstream_errors_total", server=server) > \
		value(before, "veto_upstream_errors_total", server=server)
	assert value(after, "veto_upstream_timeouts_total") > value(before, "veto_upstream_timeouts_total")
	assert value(after, "veto_responses_total", rcode="SERVFAIL") - \
		value(before, "veto_responses_total", rcode="SERVFAIL") == 1
	assert value(after, "veto_queries_total", protocol="udp", action="servfail") - \
		value(before, "veto_queries_total", protocol="udp", action="servfail") == 1
