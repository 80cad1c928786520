"""The HTTP listener under `veto serve` started as root: a port below 1024 is bound before the
privilege drop, and every thread (libmicrohttpd's included) runs as server.user with no
capability and no_new_privs. Needs root (skipped otherwise), like test_privdrop.py."""

import os
import socket
from pathlib import Path

import pytest

from conftest import Veto
from httpclient import get, parse_metrics
from test_privdrop import open_dir, status_ids, throwaway_user  # noqa: F401 (fixtures)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: binds a port below 1024 "
				"and drops to a throwaway user")


def free_low_port():
	for port in range(700, 1000):
		s = socket.socket()
		try:
			s.bind(("127.0.0.1", port))
			return port
		except OSError:
			continue
		finally:
			s.close()
	pytest.skip("no free port below 1024")


def test_low_port_bound_before_the_drop(veto_bin, upstream, throwaway_user, open_dir):  # noqa: F811
	pw = throwaway_user
	port = free_low_port()

	def edit(cfg):
		cfg["server"]["user"] = pw.pw_name
		cfg["state_dir"] = str(open_dir / "state")
		cfg["log"]["file"] = str(open_dir / "logs" / "queries.jsonl")
		cfg["http"] = {"listen": [f"127.0.0.1:{port}"]}

	v = Veto(veto_bin, open_dir / "run", [upstream], edit=edit)
	v.dir.chmod(0o755)
	v.config_file.chmod(0o644)
	(v.dir / "filelist.txt").chmod(0o644)
	try:
		v.start()
		r = get(port, "/metrics")
		assert r.status == 200, r.text
		parse_metrics(r.text)
		tasks = list(Path(f"/proc/{v.proc.pid}/task").iterdir())
		workers = [t for t in tasks if (t / "comm").read_text().strip() == "MHD-worker"]
		assert len(workers) == 2, [(t / "comm").read_text() for t in tasks]
		for t in tasks:
			ids = status_ids(f"{v.proc.pid}/task/{t.name}")
			assert ids["Uid"] == [pw.pw_uid] * 4, (t.name, ids)
			assert ids["CapEff"] == 0 and ids["CapPrm"] == 0, (t.name, ids)
		# started after the drop, the listener's threads also inherit no_new_privs
		for t in workers:
			assert "NoNewPrivs:\t1" in (t / "status").read_text(), t.name
		assert v.stop() == 0, v.stderr()
		assert not v.sanitizer_reports(), v.stderr()
	finally:
		v.stop()
