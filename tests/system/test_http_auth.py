"""The HTTP listener with users and tokens: login and logout, cookie flags, wrong passwords and
their limit, CSRF and Origin checks on POST, roles, bearer tokens, and users changed by a
reload."""

import hashlib
import re
import signal
import subprocess
import time

import pytest

from conftest import VETO_BIN
from fakeupstream import free_port
from httpclient import csrf_of, get, post, session_cookie

TOKEN_READ = "read-token-for-tests"
TOKEN_ADMIN = "admin-token-for-tests"


def passwd(password):
	p = subprocess.run([str(VETO_BIN), "passwd"], input=password + "\n", capture_output=True,
			   text=True, timeout=30)
	assert p.returncode == 0, p.stderr
	return p.stdout.strip()


@pytest.fixture(scope="module")
def hashes():
	return {"alice": passwd("alice-pw"), "bob": passwd("bob-pw"), "carol": passwd("carol-pw")}


def http_section(port, hashes, users=("alice", "bob")):
	roles = {"alice": "admin", "bob": "read", "carol": "read"}
	return {
		"listen": [f"127.0.0.1:{port}"],
		"users": [{"name": u, "password": hashes[u], "role": roles[u]} for u in users],
		"tokens": [
			{"name": "prometheus", "sha256": hashlib.sha256(TOKEN_READ.encode()).hexdigest(),
			 "role": "read"},
			{"name": "script", "sha256": hashlib.sha256(TOKEN_ADMIN.encode()).hexdigest(),
			 "role": "admin"},
		],
	}


@pytest.fixture
def auth_veto(veto_factory, hashes):
	port = free_port(["127.0.0.1"])
	v = veto_factory(edit=lambda c: c.update(http=http_section(port, hashes)))
	v.http_port = port
	return v


def login(port, user, password):
	page = get(port, "/login")
	return post(port, "/login", {"user": user, "password": password, "csrf": csrf_of(page.text)})


def cookie_header(sid):
	return {"Cookie": f"veto_session={sid}"}


def test_metrics_needs_a_login_or_a_token(auth_veto):
	port = auth_veto.http_port
	assert get(port, "/metrics").status == 401
	assert get(port, "/metrics", headers={"Authorization": f"Bearer {TOKEN_READ}"}).status == 200
	assert get(port, "/metrics", headers={"Authorization": f"Bearer {TOKEN_ADMIN}"}).status == 200
	r = get(port, "/metrics", headers={"Authorization": "Bearer not-a-token"})
	assert r.status == 401
	assert get(port, "/metrics", headers=cookie_header("ab" * 32)).status == 401
	assert get(port, "/login").status == 200	# public


def test_login_cookie_and_logout(auth_veto):
	port = auth_veto.http_port
	r = login(port, "alice", "alice-pw")
	assert r.status == 303 and r.header("Location") == "/"
	sid, header = session_cookie(r)
	assert re.fullmatch(r"[0-9a-f]{64}", sid)
	flags = [f.strip() for f in header.split(";")[1:]]
	assert "HttpOnly" in flags and "SameSite=Strict" in flags and "Path=/" in flags
	assert get(port, "/metrics", headers=cookie_header(sid)).status == 200
	assert "'alice' logged in" in auth_veto.wait_stderr("'alice' logged in")
	assert "alice-pw" not in auth_veto.stderr()

	# the session's CSRF token is in its forms; a POST without it or with another is refused
	csrf = csrf_of(get(port, "/login", headers=cookie_header(sid)).text)
	anon_csrf = csrf_of(get(port, "/login").text)
	assert csrf and csrf != anon_csrf
	assert post(port, "/logout", {}, headers=cookie_header(sid)).status == 403
	assert post(port, "/logout", {"csrf": anon_csrf}, headers=cookie_header(sid)).status == 403
	assert post(port, "/logout", {"csrf": "x" * 64}, headers=cookie_header(sid)).status == 403
	# ... and so is one from another origin, even with the token
	r = post(port, "/logout", {"csrf": csrf},
		 headers={**cookie_header(sid), "Origin": "http://evil.example"})
	assert r.status == 403
	assert get(port, "/metrics", headers=cookie_header(sid)).status == 200	# still logged in
	# a GET (a link or an image on another page) does not log out: it shows the button
	r = get(port, "/logout", headers=cookie_header(sid))
	assert r.status == 200 and csrf_of(r.text) == csrf and 'action="/logout"' in r.text
	assert get(port, "/metrics", headers=cookie_header(sid)).status == 200	# still logged in
	r = post(port, "/logout", {"csrf": csrf},
		 headers={**cookie_header(sid), "Origin": f"http://127.0.0.1:{port}"})
	assert r.status == 303 and r.header("Location") == "/login"
	assert get(port, "/metrics", headers=cookie_header(sid)).status == 401


def test_wrong_password_refused_then_limited(auth_veto):
	port = auth_veto.http_port
	bad = "Nope-7731-pass"
	r = login(port, "alice", bad)
	assert r.status == 401 and session_cookie(r)[0] is None
	assert login(port, "nobody", "alice-pw").status == 401
	for _ in range(3):
		assert login(port, "alice", bad).status == 401
	# five failures from this address: even the right password waits now
	r = login(port, "alice", "alice-pw")
	assert r.status == 429 and session_cookie(r)[0] is None
	err = auth_veto.stderr()
	assert "login as 'alice' failed" in err and bad not in err


def test_read_role_and_login_csrf(auth_veto):
	port = auth_veto.http_port
	r = login(port, "bob", "bob-pw")
	sid, _ = session_cookie(r)
	assert get(port, "/metrics", headers=cookie_header(sid)).status == 200
	# a login POST without the form's token is refused
	r = post(port, "/login", {"user": "bob", "password": "bob-pw"})
	assert r.status == 403


def test_reload_changes_users(auth_veto, hashes):
	port = auth_veto.http_port
	sid_bob, _ = session_cookie(login(port, "bob", "bob-pw"))
	sid_alice, _ = session_cookie(login(port, "alice", "alice-pw"))
	assert login(port, "carol", "carol-pw").status == 401
	auth_veto.rewrite_config(lambda c: c.update(http=http_section(port, hashes,
								      users=("alice", "carol"))))
	auth_veto.send_signal(signal.SIGHUP)
	auth_veto.wait_stderr("reload: ok")
	r = login(port, "carol", "carol-pw")
	assert r.status == 303
	assert get(port, "/metrics", headers=cookie_header(sid_bob)).status == 401	# bob is gone
	assert get(port, "/metrics", headers=cookie_header(sid_alice)).status == 200


def test_reload_with_a_new_password_ends_that_users_sessions(auth_veto, hashes):
	"""A rotated password locks out whoever logged in with the old one; other users stay."""
	port = auth_veto.http_port
	sid_alice, _ = session_cookie(login(port, "alice", "alice-pw"))
	sid_bob, _ = session_cookie(login(port, "bob", "bob-pw"))
	rotated = dict(hashes, alice=passwd("alice-new-pw"))
	auth_veto.rewrite_config(lambda c: c.update(http=http_section(port, rotated)))
	auth_veto.send_signal(signal.SIGHUP)
	auth_veto.wait_stderr("reload: ok")
	assert get(port, "/metrics", headers=cookie_header(sid_alice)).status == 401
	assert get(port, "/metrics", headers=cookie_header(sid_bob)).status == 200
	assert login(port, "alice", "alice-pw").status == 401
	assert login(port, "alice", "alice-new-pw").status == 303


def test_login_returns_to_the_page_asked(auth_veto):
	port = auth_veto.http_port
	r = get(port, "/metrics")
	assert r.status == 401 and 'href="/login?next=/metrics"' in r.text
	page = get(port, "/login?next=/metrics")
	r = post(port, "/login", {"user": "alice", "password": "alice-pw", "next": "/metrics",
				  "csrf": csrf_of(page.text)})
	assert r.status == 303 and r.header("Location") == "/metrics"
	# never to another site
	for bad in ("//evil.example/", "http://evil.example/", "/\\evil.example",
		    "/\t/evil.example", "/\t\\evil.example", "/\x7f/evil.example"):
		r = post(port, "/login", {"user": "alice", "password": "alice-pw", "next": bad,
					  "csrf": csrf_of(page.text)})
		assert r.status == 303 and r.header("Location") == "/", bad


def test_log_lines_cannot_be_forged(auth_veto):
	port = auth_veto.http_port
	login(port, "eve\n2026-01-01T00:00:00.000Z info: http: 127.0.0.1: 'alice' logged in", "x")
	err = auth_veto.wait_stderr("login as 'eve?2026")
	assert "login as 'eve?2026-01-01" in err
	assert "'alice' logged in" not in err
