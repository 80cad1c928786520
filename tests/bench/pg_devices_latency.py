#!/usr/bin/python3
"""How long an attribution on one instance takes to be answered by the other (store.postgresql),
and what the sync costs in CPU time. Never a pass/fail test.

Starts a private PostgreSQL (tests/system/pgserver.py), a fake upstream and two veto instances
(dns1, dns2; tests/system/test_pg_devices.py's configuration), then for N clients in
127.0.0.64/26: a ROM signature query to dns1, then queries to dns2 every 5 ms until it refuses
(bounded: 5 s each). Prints the propagation times (median, 90th percentile, max) and the CPU time
(user + system, from /proc/PID/stat) each veto used over the run. Every process is stopped by its
PID at the end.

  VETO_BIN=build/veto /usr/bin/python3 tests/bench/pg_devices_latency.py [N]
"""

import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "system"))

import dns.rcode  # noqa: E402

from conftest import VETO_BIN, Veto  # noqa: E402
from fakeupstream import FakeUpstream  # noqa: E402
from pgserver import PgServer  # noqa: E402
from test_pg_devices import SIGNATURE, rcode, shared_edit  # noqa: E402


def cpu_s(pid):
	with open(f"/proc/{pid}/stat") as f:
		fields = f.read().rsplit(")", 1)[1].split()
	return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main():
	n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
	pg = PgServer()
	up = FakeUpstream()
	vetos = []
	try:
		pg.start()
		work = Path(tempfile.mkdtemp(prefix="veto-pgdev-bench-"))
		for inst in ("dns1", "dns2"):
			edit = shared_edit(pg, inst)

			def wide(cfg, edit=edit):
				edit(cfg)
				for g in cfg["groups"]:
					if g["name"] == "home":
						g["clients"] = ["127.0.0.64/26"]
			v = Veto(VETO_BIN, work / inst, [up], wide)
			vetos.append(v.start())
		one, two = vetos
		for v in vetos:
			v.wait_stderr("shared store: connected", timeout=10)
		cpu0 = [cpu_s(v.proc.pid) for v in vetos]
		took = []
		for i in range(n):
			src = f"127.0.0.{64 + i % 64}"
			tag = f"b{i}"
			if rcode(two, f"{tag}-first.test", src) != dns.rcode.NOERROR:
				continue	# already attributed (N > 64 reuses addresses)
			rcode(one, SIGNATURE, src)
			start = time.monotonic()
			k = 0
			while time.monotonic() - start < 5.0:
				if rcode(two, f"{tag}-{k}.test", src) == dns.rcode.REFUSED:
					took.append(time.monotonic() - start)
					break
				k += 1
				time.sleep(0.005)
		cpu1 = [cpu_s(v.proc.pid) for v in vetos]
		if took:
			took.sort()
			print(f"attributions: {len(took)} of {n} propagated within 5 s")
			print(f"propagation (s): median {statistics.median(took):.4f}, "
			      f"p90 {took[int(len(took) * 0.9) - 1]:.4f}, max {took[-1]:.4f}")
		for v, a, b in zip(vetos, cpu0, cpu1):
			print(f"{v.dir.name}: CPU time {b - a:.2f} s over the run")
	finally:
		for v in vetos:
			v.stop()
		up.stop()
		pg.cleanup()


if __name__ == "__main__":
	main()
