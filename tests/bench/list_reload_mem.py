#!/usr/bin/python3
"""Memory of a URL list reload: a 1M-name list served from a loopback HTTP server, downloaded by
the daemon, then changed versions downloaded again (`veto lists --refresh`, ROUNDS times). Samples VmRSS
every 20 ms and reports: RSS with the list loaded, the peak while the new policy is built beside
the old one, RSS after the swap, and how long the reload took (from the download's log line to
`reload: ok`). Bounded: every wait has a deadline; the daemon is stopped by its PID.

usage: tests/bench/list_reload_mem.py [VETO_BIN] [NAMES]
"""

import http.server
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

VETO = sys.argv[1] if len(sys.argv) > 1 else "build/veto"
NAMES = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000
ROUNDS = 3	# changed versions downloaded one after the other


def body(version):
	return "".join(f"n{i}.v{version}.example{i % 97}.test\n" for i in range(NAMES)).encode()


class Srv:
	def __init__(self):
		self.data = body(1)
		owner = self

		class H(http.server.BaseHTTPRequestHandler):
			def log_message(self, *a):
				pass

			def do_GET(self):
				d = owner.data
				self.send_response(200)
				self.send_header("Content-Length", str(len(d)))
				self.end_headers()
				self.wfile.write(d)
		self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
		self.port = self.httpd.server_address[1]
		threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


def rss_kb(pid):
	with open(f"/proc/{pid}/status") as f:
		for line in f:
			if line.startswith("VmRSS:"):
				return int(line.split()[1])
	return 0


def free_port():
	s = socket.socket()
	s.bind(("127.0.0.1", 0))
	p = s.getsockname()[1]
	s.close()
	return p


def main():
	srv = Srv()
	work = Path(tempfile.mkdtemp(prefix="veto-listmem-"))
	cfg = work / "veto.yaml"
	cfg.write_text(f"""server: {{workers: 1, listen: ["127.0.0.1:{free_port()}"]}}
upstream: {{servers: ["127.0.0.1:9"]}}
cache: {{entries: 1000}}
state_dir: {work}/state
lists:
  big: {{urls: ["http://127.0.0.1:{srv.port}/big.txt"], refresh: 1d, max_size: 256M}}
groups: [{{name: all, block: [big]}}]
log: {{queries: none}}
""")
	err = open(work / "stderr.txt", "wb")
	p = subprocess.Popen([VETO, "serve", "-c", str(cfg)], stdout=subprocess.DEVNULL, stderr=err)
	samples = []
	stop = threading.Event()

	def sample():
		while not stop.is_set() and p.poll() is None:
			try:
				samples.append((time.monotonic(), rss_kb(p.pid)))
			except OSError:
				break
			time.sleep(0.02)
	t = threading.Thread(target=sample, daemon=True)
	t.start()

	def wait_log(needle, count, timeout=120):
		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			if (work / "stderr.txt").read_text().count(needle) >= count:
				return time.monotonic()
			time.sleep(0.05)
		raise SystemExit(f"timed out waiting for {needle!r}")
	try:
		wait_log("reload: ok", 1)
		time.sleep(3)
		base = samples[-1][1]
		t0 = time.monotonic()
		afters = []
		for version in range(2, 2 + ROUNDS):
			srv.data = body(version)
			subprocess.run([VETO, "lists", "-c", str(cfg), "--refresh"], capture_output=True,
				       timeout=30)
			wait_log("reload: ok", version)
			time.sleep(2)
			afters.append(samples[-1][1])
		after = afters[-1]
		peak = max(r for (ts, r) in samples if ts >= t0)
		log = (work / "stderr.txt").read_text()
	finally:
		stop.set()
		if p.poll() is None:
			os.kill(p.pid, signal.SIGTERM)
		p.wait(timeout=30)
		srv.httpd.shutdown()
	lines = [l for l in log.splitlines() if "lists: big" in l or "reload: ok" in l]
	print("\n".join(l[:160] for l in lines))
	print(f"names {NAMES}, body {len(srv.data) / 1e6:.1f} MB")
	print(f"RSS with the list loaded: {base / 1024:.1f} MiB")
	print(f"peak RSS during download + reload: {peak / 1024:.1f} MiB (+{(peak - base) / 1024:.1f})")
	print("RSS after each swap: " + ", ".join(f"{a / 1024:.1f}" for a in afters) + " MiB")


if __name__ == "__main__":
	main()
