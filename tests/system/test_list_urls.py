"""Lists that stay current: a list downloaded from a URL (a local HTTP/HTTPS server on loopback)
and a local list file edited while the daemon runs.

After every kind of bad download (404, a stall past the timeout, a body cut short, a body over
max_size, HTML, binary) DNS keeps answering with the last good list: its names blocked, a name
removed by the last good update forwarded. A 304 keeps the list; a start with the server gone
uses the saved copy. An edit of a list file takes effect without SIGHUP.
"""

import http.server
import json
import os
import ssl
import subprocess
import threading
import time

import pytest

from conftest import BLOCK_IPV4, GROUP_CLIENT, answer_values, run_veto

SINK = GROUP_CLIENT["sink"]
STALL_S = 3.5	# the handler's stall: longer than the list's 2 s timeout, bounded


class ListServer:
	"""A list server on 127.0.0.1 whose answer the test changes (mode); counts requests."""

	def __init__(self, tls_files=None):
		self.mode = "ok"
		self.body = b""
		self.etag = '"v0"'
		self.requests = []	# (path, If-None-Match) per request
		self.lock = threading.Lock()
		owner = self

		class Handler(http.server.BaseHTTPRequestHandler):
			protocol_version = "HTTP/1.1"

			def log_message(self, *args):
				pass

			def do_GET(self):
				try:
					self.answer()
				except (BrokenPipeError, ConnectionResetError):
					pass	# the client gave up (the stall outlives its timeout)

			def answer(self):
				with owner.lock:
					owner.requests.append((self.path, self.headers.get("If-None-Match")))
					mode, body, etag = owner.mode, owner.body, owner.etag
				if mode == "ok":
					if self.headers.get("If-None-Match") == etag:
						self.send_response(304)
						self.send_header("ETag", etag)
						self.end_headers()
						return
					self.reply(200, body, etag=etag)
				elif mode == "404":
					self.reply(404, b"not found\n")
				elif mode == "stall":
					time.sleep(STALL_S)
					self.reply(200, body)
				elif mode == "truncated":
					self.send_response(200)
					self.send_header("Content-Length", str(len(body) + 5000))
					self.end_headers()
					self.wfile.write(body[: len(body) // 2])
					self.wfile.flush()
					self.close_connection = True
				elif mode == "oversized":
					self.reply(200, b"".join(f"big{i}.remote.test\n".encode() for i in range(2000)))
				elif mode == "html":
					self.reply(200, b"<html>\n<head><title>Error</title></head>\n<body>\n"
						   b"<p>Service unavailable</p>\n</body>\n</html>\n")
				elif mode == "binary":
					self.reply(200, bytes(range(256)) * 8)

			def reply(self, code, body, etag=None):
				self.send_response(code)
				self.send_header("Content-Length", str(len(body)))
				if etag:
					self.send_header("ETag", etag)
				self.end_headers()
				self.wfile.write(body)

		self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.httpd.daemon_threads = True
		if tls_files:
			ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
			ctx.load_cert_chain(*tls_files)
			self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
		self.port = self.httpd.server_address[1]
		self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1},
					       daemon=True)
		self.thread.start()

	def url(self, scheme="http"):
		return f"{scheme}://127.0.0.1:{self.port}/list.txt"

	def set(self, mode, names=None, etag=None):
		with self.lock:
			self.mode = mode
			if names is not None:
				self.body = ("# test list\n" + "".join(f"{n}\n" for n in names)).encode()
			if etag is not None:
				self.etag = etag

	def count(self):
		with self.lock:
			return len(self.requests)

	def stop(self):
		self.httpd.shutdown()
		self.httpd.server_close()
		self.thread.join(timeout=5)


@pytest.fixture
def list_server():
	servers = []

	def make(**kw):
		s = ListServer(**kw)
		servers.append(s)
		return s
	yield make
	for s in servers:
		s.stop()


def url_list_edit(url, state_dir, extra=None):
	def edit(cfg):
		cfg["state_dir"] = str(state_dir)
		lst = {"urls": [url], "refresh": "2s", "timeout": "2s", "max_size": "8K"}
		lst.update(extra or {})
		cfg["lists"]["remote"] = lst
		for g in cfg["groups"]:
			if g["name"] == "sink":
				g["block"].append("remote")
	return edit


def blocked(v, name):
	r = v.query(name, "A", src=SINK)
	return answer_values(r, "A") == [BLOCK_IPV4]


def wait_for(pred, timeout=20.0, what="condition", v=None):
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		if pred():
			return
		time.sleep(0.1)
	pytest.fail(f"timed out waiting for {what}" + (f":\n{v.stderr()[-3000:]}" if v else ""))


def count_lines(v, needle):
	return sum(1 for line in v.stderr().splitlines() if needle in line)


def test_url_list_keeps_last_good_copy(veto_factory, list_server, tmp_path):
	srv = list_server()
	srv.set("ok", names=["a.remote.test", "b.remote.test"], etag='"v1"')
	state = tmp_path / "state"
	v = veto_factory(edit=url_list_edit(srv.url(), state))
	wait_for(lambda: blocked(v, "x.a.remote.test"), what="the first download to apply")
	assert "lists: remote: " + srv.url() + ": 200, 2 names" in v.stderr()
	assert (state / "lists" / "remote.0.txt").is_file()

	# 304: the conditional request carries the ETag, the list stays
	n = srv.count()
	wait_for(lambda: srv.count() >= n + 1 and "304 not modified" in v.stderr(), what="a 304")
	assert srv.requests[-1][1] == '"v1"'
	assert blocked(v, "a.remote.test")

	# a good update removes a.remote.test
	srv.set("ok", names=["b.remote.test", "c.remote.test"], etag='"v2"')
	wait_for(lambda: not blocked(v, "a.remote.test"), what="the update to apply")
	assert blocked(v, "c.remote.test") and blocked(v, "b.remote.test")

	expected = {
		"404": "HTTP 404",
		"stall": "timed out",
		"truncated": "transfer closed with",
		"oversized": "larger than max_size",
		"html": "not a list",
		"binary": "not a list (binary content)",
	}
	for mode, message in expected.items():
		errors = count_lines(v, "lists: remote: ")
		srv.set(mode)
		wait_for(lambda: any(message in line for line in v.stderr().splitlines()[-20:]
				     if "error:" in line) and count_lines(v, "lists: remote: ") > errors,
			 timeout=30, what=f"the {mode} download to fail", v=v)
		# the last good list still answers
		assert blocked(v, "b.remote.test"), mode
		assert blocked(v, "c.remote.test"), mode
		assert not blocked(v, "a.remote.test"), mode
		assert not blocked(v, "big1.remote.test"), mode
	assert "keeping the last good copy" in v.stderr()

	# veto lists: the daemon's view of the source
	p = run_veto(["lists", "-c", str(v.config_file), "--json"])
	assert p.returncode == 0, p.stderr
	rows = [r for r in json.loads(p.stdout) if r["list"] == "remote"]
	assert len(rows) == 1 and rows[0]["kind"] == "url" and rows[0]["source"] == srv.url()
	assert rows[0]["entries"] == 2 and rows[0]["last_fetch"] and rows[0]["next_fetch"]
	assert rows[0]["last_error"]
	p = run_veto(["lists", "-c", str(v.config_file)])
	assert p.returncode == 0 and p.stdout.startswith("running daemon"), p.stdout + p.stderr
	assert "remote" in p.stdout and srv.url() in p.stdout

	# the network is down at the next start: the saved copy is used
	assert v.stop() == 0
	srv.stop()
	v.start()
	assert blocked(v, "b.remote.test") and not blocked(v, "a.remote.test")
	p = run_veto(["lists", "-c", str(v.config_file), "--refresh"])
	assert p.returncode == 0, p.stderr
	wait_for(lambda: "error:" in v.stderr(), what="the failed download")
	assert blocked(v, "c.remote.test")
	assert v.stop() == 0
	p = run_veto(["lists", "-c", str(v.config_file)])
	assert p.returncode == 0 and p.stdout.startswith("daemon not running"), p.stdout + p.stderr


def make_tls(dirpath):
	"""A throwaway CA and a server certificate for 127.0.0.1 signed by it (openssl CLI)."""
	def run(*args):
		subprocess.run(["openssl", *args], check=True, capture_output=True, timeout=60, cwd=dirpath)
	run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
	    "-days", "2", "-subj", "/CN=veto test ca")
	run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "srv.key", "-out", "srv.csr",
	    "-subj", "/CN=127.0.0.1")
	(dirpath / "ext.cnf").write_text("subjectAltName=IP:127.0.0.1\n")
	run("x509", "-req", "-in", "srv.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
	    "-out", "srv.pem", "-days", "2", "-extfile", "ext.cnf")
	return dirpath / "ca.pem", (str(dirpath / "srv.pem"), str(dirpath / "srv.key"))


def test_https_list_is_verified(veto_factory, list_server, tmp_path):
	tls = tmp_path / "tls"
	tls.mkdir()
	ca, chain = make_tls(tls)
	srv = list_server(tls_files=chain)
	srv.set("ok", names=["s.remote.test"], etag='"s1"')
	# with the test CA: downloaded
	v = veto_factory(edit=url_list_edit(srv.url("https"), tmp_path / "state1", {"ca_file": str(ca)}))
	wait_for(lambda: blocked(v, "s.remote.test"), what="the https download to apply")
	# with the system store only, the same server is not trusted: nothing is applied
	w = veto_factory(edit=url_list_edit(srv.url("https"), tmp_path / "state2"))
	wait_for(lambda: "lists: remote: " in w.stderr() and "error:" in w.stderr(),
		 what="the untrusted download to fail")
	assert "SSL" in w.stderr() or "certificate" in w.stderr()
	assert not blocked(w, "s.remote.test")


def test_list_file_edit_applies_without_sighup(veto):
	path = veto.dir / "filelist.txt"
	assert not blocked(veto, "edited.test")
	# as editors do: write a new file beside it and rename it over the old one
	tmp = veto.dir / ".filelist.txt.swp"
	tmp.write_text(path.read_text() + "edited.test\n")
	os.rename(tmp, path)
	wait_for(lambda: blocked(veto, "edited.test"), timeout=10, what="the edit to apply")
	assert blocked(veto, "filetrack.test")
	assert "SIGHUP" not in veto.stderr()
	# an edit in place too, removing a name
	path.write_text("0.0.0.0 filetrack.test\n")
	wait_for(lambda: not blocked(veto, "edited.test"), timeout=10, what="the second edit to apply")


def test_list_download_metrics(veto_factory, list_server, tmp_path):
	"""/metrics tells, per list URL, when it last downloaded, when it last tried, and how many
	downloads failed in a row: what an alert on a list that stopped updating needs."""
	from fakeupstream import free_port
	from httpclient import get, parse_metrics, value
	srv = list_server()
	srv.set("ok", names=["m.remote.test"], etag='"m1"')
	port = free_port(["127.0.0.1"])
	edit = url_list_edit(srv.url(), tmp_path / "state")

	def with_http(cfg):
		edit(cfg)
		cfg["http"] = {"listen": [f"127.0.0.1:{port}"]}
	v = veto_factory(edit=with_http)
	wait_for(lambda: blocked(v, "m.remote.test"), what="the first download to apply")
	labels = {"list": "remote", "url": srv.url()}

	def metrics():
		r = get(port, "/metrics")
		assert r.status == 200
		return parse_metrics(r.text)[0]
	m = metrics()
	good = value(m, "veto_list_download_last_success_timestamp_seconds", **labels)
	assert abs(good - time.time()) < 60, good
	assert value(m, "veto_list_download_last_attempt_timestamp_seconds", **labels) >= good
	assert value(m, "veto_list_download_failures", **labels) == 0

	srv.set("404")
	wait_for(lambda: value(metrics(), "veto_list_download_failures", **labels) >= 2,
		 timeout=30, what="two failed downloads in the metrics", v=v)
	m = metrics()
	assert value(m, "veto_list_download_last_success_timestamp_seconds", **labels) >= good
	assert value(m, "veto_list_download_last_attempt_timestamp_seconds", **labels) > good
	srv.set("ok")
	wait_for(lambda: value(metrics(), "veto_list_download_failures", **labels) == 0,
		 timeout=30, what="a success to reset the failures", v=v)
