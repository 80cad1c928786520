"""`veto health` asks the running daemon itself over its control channel (exit 0 only when the
loop answers), and a daemon listens on 0.0.0.0 / [::] beside 127.0.0.1 / ::1 with the same port
(IPV6_V6ONLY on its IPv6 sockets), as the container image does with 0.0.0.0:53 and [::]:53."""

import socket

import pytest

from conftest import HAVE_IPV6, NOGROUP_CLIENT, answer_values, run_veto


def with_state(work):
	def edit(cfg):
		cfg["state_dir"] = str(work / "state")
		cfg["devices"] = {"arp": False, "oui": False}
	return edit


def health(v, *extra):
	return run_veto(["health", "-c", str(v.config_file), *extra])


def test_health_answers_while_up_and_fails_once_stopped(veto_factory, tmp_path):
	v = veto_factory(edit=with_state(tmp_path))
	p = health(v)
	assert p.returncode == 0, p.stdout + p.stderr
	assert p.stdout == f"{tmp_path / 'state' / 'control.sock'}: serving\n", p.stdout
	assert v.running()
	assert v.stop() == 0
	p = health(v)
	assert p.returncode == 1, p.stdout + p.stderr
	assert "no daemon listens there" in p.stderr, p.stderr


def test_health_fails_when_the_loop_does_not_answer(veto_factory, tmp_path):
	"""A stopped (SIGSTOP) daemon keeps its socket but answers nothing: not healthy."""
	import signal
	v = veto_factory(edit=with_state(tmp_path))
	v.send_signal(signal.SIGSTOP)
	try:
		p = health(v, "--timeout", "300")
	finally:
		v.send_signal(signal.SIGCONT)
	assert p.returncode == 1, p.stdout + p.stderr
	assert "no answer in time" in p.stderr, p.stderr
	assert health(v).returncode == 0


def test_health_needs_no_devices_section(veto):
	"""The control channel opens whenever state_dir is set, device identity or not."""
	p = health(veto)
	assert p.returncode == 0, p.stdout + p.stderr
	assert p.stdout.endswith(": serving\n"), p.stdout


@pytest.mark.skipif(not HAVE_IPV6, reason="::1 cannot be bound here")
def test_wildcard_v4_and_v6_on_one_port(veto_factory):
	"""0.0.0.0:P and [::]:P together: without IPV6_V6ONLY the second bind fails (EADDRINUSE)."""
	def edit(cfg):
		port = int(cfg["server"]["listen"][0].rsplit(":", 1)[1])
		cfg["server"]["listen"] = [f"0.0.0.0:{port}", f"[::]:{port}"]
	v = veto_factory(edit=edit)
	for dst, src in (("127.0.0.1", NOGROUP_CLIENT), ("::1", "::1")):
		for tcp in (False, True):
			r = v.query("dual.test", "A", src=src, dst=dst, tcp=tcp)
			assert r.rcode() == 0 and answer_values(r, "A"), (dst, tcp, r)
	err = v.stderr()
	for want in ("0.0.0.0:", "[::]:"):
		assert want in err, err


def test_start_beside_a_control_socket_that_never_accepts(veto_factory, tmp_path):
	"""A hung veto (or any listener that never accepts) holds the state folder's control.sock
	with its queue of connections full: a new daemon started there must not wait for ever in
	its check of the socket; it serves DNS without a control channel and says why."""
	state = tmp_path / "state"
	state.mkdir(mode=0o750)
	path = str(state / "control.sock")
	hung = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
	hung.bind(path)
	hung.listen(0)
	queued = []
	try:
		while len(queued) < 64:	# fill the queue: a further blocking connect would wait
			c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
			c.setblocking(False)
			try:
				c.connect(path)
			except BlockingIOError:
				c.close()
				break
			queued.append(c)
		v = veto_factory(edit=with_state(tmp_path))
		r = v.query("after-start.test", "A", src=NOGROUP_CLIENT)
		assert answer_values(r, "A") == ["192.0.2.1"]
		assert "another veto serves it" in v.stderr(), v.stderr()[-2000:]
		assert v.stop() == 0
	finally:
		for c in queued:
			c.close()
		hung.close()
