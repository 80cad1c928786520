"""The web console in a real browser: headless Chromium (Debian's chromium and chromium-driver,
driven by python3-selenium) against the real daemon with a populated query store and device
table, http.listen on loopback and two users (admin, read).

Refused without a login; every page loads without a browser console error (CSP violations
included) and without horizontal page scroll at 1280 px and 375 px; filters apply and an
unknown group gets the CLI's "did you mean"; the live tail adds a new query; pin and forget
from the devices page change the next DNS answer; a read-only user sees no action and gets 403
on POST.

Screenshots: VETO_WEB_SCREENSHOTS=DIR saves every page at 1280 px and the overview at 375 px
into DIR (docs/screenshots/ in the repository); not done otherwise.
"""

import os
import signal
import subprocess
import sqlite3
import time
from pathlib import Path

import dns.message
import dns.rcode
import pytest

from conftest import BLOCK_IPV4, VETO_BIN, udp_exchange
from fakeupstream import free_port
from httpclient import csrf_of, get, post, session_cookie

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
try:
	from selenium import webdriver
	from selenium.webdriver.chrome.service import Service
	from selenium.webdriver.common.by import By
	HAVE_SELENIUM = True
except ImportError:
	HAVE_SELENIUM = False

MISSING = [what for what, ok in (
	("python3-selenium", HAVE_SELENIUM),
	(f"chromium ({CHROMIUM})", os.access(CHROMIUM, os.X_OK)),
	(f"chromium-driver ({CHROMEDRIVER})", os.access(CHROMEDRIVER, os.X_OK)),
) if not ok]
pytestmark = pytest.mark.skipif(bool(MISSING), reason="browser tests need " + ", ".join(MISSING)
				+ " (apt-get install chromium chromium-driver python3-selenium)")

SIGNATURE = "connect.rom.miui.com"
PAGES = [("/", "Overview"), ("/devices", "Devices"), ("/attempts", "Attempts"),
	 ("/log", "Query log"), ("/policy", "Policy")]
PASSWORDS = {"admin": "admin-secret-1", "viewer": "viewer-secret-2"}


def passwd(password):
	p = subprocess.run([str(VETO_BIN), "passwd"], input=password + "\n", capture_output=True,
			   text=True, timeout=30)
	assert p.returncode == 0, p.stderr
	return p.stdout.strip()


def console_edit(work, port, hashes):
	def edit(cfg):
		cfg["state_dir"] = str(work / "state")
		cfg["log"]["database"] = str(work / "queries.db")
		cfg["devices"] = {"signatures": {"Xiaomi": [SIGNATURE]}, "arp": False,
				  "inventory": [{"name": "living-room-tv", "ip": "127.0.0.43"}]}
		cfg["groups"] = [
			{"name": "banned", "vendors": ["Xiaomi"], "default": "deny", "action": "refused"},
			{"name": "staff", "clients": ["10.99.0.0/16"], "block": ["ads"],
			 "action": "nxdomain"},
			{"name": "home", "clients": ["127.0.0.40/29"], "block": ["ads"]},
		] + cfg["groups"]
		cfg["http"] = {"listen": [f"127.0.0.1:{port}"], "users": [
			{"name": "admin", "password": hashes["admin"], "role": "admin"},
			{"name": "viewer", "password": hashes["viewer"], "role": "read"}]}
	return edit


def ask(v, name, src):
	q = dns.message.make_query(name, "A", use_edns=0)
	wire = udp_exchange(q.to_wire(), "127.0.0.1", v.port, src=src, timeout=3.0)
	assert wire is not None, f"no reply to {name} from {src}"
	return dns.message.from_wire(wire)


def wait_until(pred, timeout=10.0, step=0.2):
	"""Bounded poll: the store and the device table are written off the DNS loop."""
	deadline = time.monotonic() + timeout
	while True:
		got = pred()
		if got or time.monotonic() > deadline:
			return got
		time.sleep(step)


def cell_texts(d, css):
	"""The texts of the elements css selects; None when the page changed while reading."""
	from selenium.common.exceptions import StaleElementReferenceException
	try:
		return [e.text for e in d.find_elements(By.CSS_SELECTOR, css)]
	except StaleElementReferenceException:
		return None


def db_count(path, sql):
	if not path.exists():
		return 0
	db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
	try:
		return db.execute(sql).fetchone()[0]
	except sqlite3.OperationalError:
		return 0
	finally:
		db.close()


@pytest.fixture
def console(veto_factory, tmp_path):
	work = tmp_path / "console"
	work.mkdir()
	port = free_port(["127.0.0.1"])
	hashes = {u: passwd(p) for u, p in PASSWORDS.items()}
	v = veto_factory(edit=console_edit(work, port, hashes))
	v.http_port = port
	v.work = work
	# the store: blocked and forwarded queries from four devices, one attributed to Xiaomi
	for i, src in enumerate(("127.0.0.40", "127.0.0.41", "127.0.0.42", "127.0.0.43")):
		for n in range(i + 1):
			assert ask(v, "ads.test", src).answer
			ask(v, f"www{n}.example.org", src)
	assert ask(v, SIGNATURE, "127.0.0.42").rcode() == dns.rcode.NOERROR
	assert ask(v, "after.example.org", "127.0.0.42").rcode() == dns.rcode.REFUSED
	db = work / "queries.db"
	assert wait_until(lambda: db_count(db, "SELECT count(*) FROM device_events") > 0)
	assert wait_until(lambda: db_count(db, "SELECT count(*) FROM query_log WHERE blocked AND "
					   "qname = 'ads.test'") == 10)
	assert wait_until(lambda: db_count(db, "SELECT count(*) FROM query_log WHERE "
					   "qname = 'after.example.org'") == 1)
	assert wait_until(lambda: db_count(work / "state" / "devices.db",
					   "SELECT count(*) FROM devices") >= 4)
	return v


@pytest.fixture
def browser():
	opts = webdriver.ChromeOptions()
	opts.binary_location = CHROMIUM
	for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
		  "--window-size=1280,900", "--hide-scrollbars"):
		opts.add_argument(a)
	opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
	d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
	d.set_page_load_timeout(20)
	try:
		yield d
	finally:
		d.quit()	# stops chromedriver and the browser it started


def url(v, path):
	return f"http://127.0.0.1:{v.http_port}{path}"


def console_errors(d):
	return [e for e in d.get_log("browser") if e.get("level") == "SEVERE"]


def login(d, v, user):
	"""A session from the listener's /login (POSTed as a script does), handed to the browser:
	its own form is tested by test_login_form_in_the_browser."""
	page = get(v.http_port, "/login")
	r = post(v.http_port, "/login", {"user": user, "password": PASSWORDS[user],
					 "csrf": csrf_of(page.text)})
	sid, _ = session_cookie(r)
	assert r.status == 303 and sid, (r.status, r.text)
	d.get(url(v, "/static/veto.css"))	# a page of the origin, to set its cookie
	d.add_cookie({"name": "veto_session", "value": sid, "path": "/", "httpOnly": True})
	d.get(url(v, "/"))
	assert d.find_elements(By.CSS_SELECTOR, "header .user"), d.page_source[:2000]
	d.get_log("browser")	# the stylesheet's tab asked for /favicon.ico: not a page's error


def no_page_scroll(d):
	return d.execute_script("return document.documentElement.scrollWidth <= "
				"document.documentElement.clientWidth")


def shots_dir():
	s = os.environ.get("VETO_WEB_SCREENSHOTS")
	if not s:
		return None
	p = Path(s)
	p.mkdir(parents=True, exist_ok=True)
	return p


def row_of(d, key):
	rows = d.find_elements(By.XPATH, f"//tr[td[normalize-space()='{key}']]")
	return rows[0] if rows else None


def test_pages_filters_and_live_tail(console, browser):
	v, d = console, browser
	# without a session: the pages are refused, with a link to the login form
	for path, _ in PAGES:
		r = get(v.http_port, path)
		assert r.status in (302, 303, 401), (path, r.status)
	d.get(url(v, "/devices"))
	assert d.find_elements(By.CSS_SELECTOR, "a[href^='/login']"), d.page_source[:2000]
	assert not d.find_elements(By.TAG_NAME, "table")
	login(d, v, "admin")
	d.get_log("browser")	# what the login produced is not a page's
	shots = shots_dir()
	for path, title in PAGES:
		d.get(url(v, path))
		assert d.find_element(By.TAG_NAME, "h1").text == title, d.page_source[:2000]
		assert not d.find_elements(By.CSS_SELECTOR, ".msg.error"), (path, d.page_source[:3000])
		assert console_errors(d) == [], (path, console_errors(d))
		assert no_page_scroll(d), path
		if shots:
			d.save_screenshot(str(shots / f"console-{title.lower().replace(' ', '-')}-1280.png"))
	# what the pages show from the store and the daemon
	d.get(url(v, "/"))
	assert d.find_elements(By.CSS_SELECTOR, "svg.bars rect.b")
	assert "ads.test" in d.find_element(By.TAG_NAME, "main").text
	d.get(url(v, "/policy"))
	text = d.find_element(By.TAG_NAME, "main").text
	assert "banned" in text and "staff" in text and "ads" in text
	assert "Last reload: none since the start" in text

	# a filter: the query log for one name, blocked only
	d.get(url(v, "/log"))
	d.find_element(By.NAME, "domain").send_keys("ads.test")
	d.find_element(By.NAME, "blocked").click()
	d.find_element(By.CSS_SELECTOR, "form.filters button").click()
	# the submit loads a new page: read its rows only once it is there (the old page's cells
	# are gone, or stale, while it loads)
	assert wait_until(lambda: "domain=ads.test" in d.current_url and
			  d.execute_script("return document.readyState") == "complete"), d.current_url
	names = wait_until(lambda: cell_texts(d, "#log td.name"))
	assert len(names) == 10 and set(names) == {"ads.test"}, names
	# the live tail (veto.js polls /log.json every 2 s): a new blocked query appears
	assert ask(v, "tracker.test", "127.0.0.40").answer
	d.get(url(v, "/log"))
	assert ask(v, "ads.test", "127.0.0.41").answer
	assert wait_until(lambda: any(
		tr.get_attribute("class") == "blocked new" for tr in
		d.find_elements(By.CSS_SELECTOR, "#log tbody tr")), timeout=15), d.page_source[:3000]
	assert console_errors(d) == []

	# an unknown group: the "did you mean" of `veto report attempts --group staf`
	d.get(url(v, "/attempts?group=staf"))
	msg = d.find_element(By.CSS_SELECTOR, ".msg.error").text
	assert msg == "--group: unknown group 'staf' (did you mean 'staff'?)", msg
	errs = console_errors(d)	# the page's own 400, nothing else
	assert len(errs) == 1 and "400 (Bad Request)" in errs[0]["message"], errs
	# the CSV export is the CLI's
	d.get(url(v, "/attempts?since=7d"))
	href = d.find_element(By.LINK_TEXT, "Export CSV").get_attribute("href")
	assert "/attempts.csv?since=7d" in href

	# a phone: the overview at 375 px, no horizontal page scroll (tables scroll in their box)
	d.set_window_size(375, 812)
	for path, title in PAGES:
		d.get(url(v, path))
		assert no_page_scroll(d), path
		if shots and path == "/":
			d.save_screenshot(str(shots / "console-overview-375.png"))
	assert console_errors(d) == []


def click(d, el):
	"""The actions column may be scrolled out of its box (the table scrolls, not the page)."""
	d.execute_script("arguments[0].scrollIntoView({block: 'center', inline: 'center'})", el)
	el.click()


def outcome(d):
	"""The message an action left on /devices (it must be a success)."""
	msgs = wait_until(lambda: d.find_elements(By.CSS_SELECTOR, ".msg"), timeout=10)
	assert msgs and "ok" in msgs[0].get_attribute("class").split(), d.page_source[:3000]
	return msgs[0].text


def test_pin_and_forget_change_the_next_answer(console, browser):
	v, d = console, browser
	src, key = "127.0.0.41", "ip:127.0.0.41"
	assert ask(v, "ads.test", src).answer[0].to_text().endswith(BLOCK_IPV4)	# home: sinkhole
	login(d, v, "admin")
	d.get(url(v, "/devices"))
	row = row_of(d, key)
	assert row is not None, d.page_source[:3000]
	click(d, row.find_element(By.CSS_SELECTOR, "details.pin summary"))	# unfolds its fields
	form = row.find_element(By.CSS_SELECTOR, "details.pin form")
	form.find_element(By.NAME, "group").send_keys("staff")
	click(d, form.find_element(By.CSS_SELECTOR, "button.pin"))
	ok = outcome(d)
	assert "group=staff" in ok, ok
	assert ask(v, "ads.test", src).rcode() == dns.rcode.NXDOMAIN	# staff: nxdomain
	# forget: the pin goes with the device, the next query is the home group's again
	d.get(url(v, "/devices"))
	row = row_of(d, key)
	assert row is not None
	click(d, row.find_element(By.CSS_SELECTOR, "button.forget"))
	ok = outcome(d)
	assert ok.startswith("forgot"), ok
	r = ask(v, "ads.test", src)
	assert r.rcode() == dns.rcode.NOERROR and r.answer[0].to_text().endswith(BLOCK_IPV4)
	assert console_errors(d) == []


def test_read_only_user_cannot_act(console, browser):
	v, d = console, browser
	login(d, v, "viewer")
	d.get(url(v, "/devices"))
	assert row_of(d, "ip:127.0.0.41") is not None
	assert d.find_elements(By.CSS_SELECTOR, "button.forget, button.pin, button.unpin") == []
	assert "(read-only)" in d.find_element(By.CSS_SELECTOR, "header .user").text
	# the POST itself, with this session and its CSRF token: refused for the role
	cookie = {c["name"]: c["value"] for c in d.get_cookies()}
	token = d.find_element(By.CSS_SELECTOR, "input[name=csrf]").get_attribute("value")
	r = post(v.http_port, "/devices/action", {"csrf": token, "op": "forget", "key": "ip:127.0.0.41"},
		 headers={"Cookie": "; ".join(f"{k}={val}" for k, val in cookie.items()),
			  "Origin": f"http://127.0.0.1:{v.http_port}"})
	assert r.status == 403, (r.status, r.text)
	assert ask(v, "ads.test", "127.0.0.41").answer[0].to_text().endswith(BLOCK_IPV4)
	assert console_errors(d) == []


def test_login_form_in_the_browser(console, browser):
	v, d = console, browser
	d.get(url(v, "/login"))
	d.find_element(By.NAME, "user").send_keys("admin")
	d.find_element(By.NAME, "password").send_keys(PASSWORDS["admin"])
	d.find_element(By.CSS_SELECTOR, "form[action='/login'] button").click()
	assert wait_until(lambda: d.find_elements(By.CSS_SELECTOR, "header .user"), timeout=10), \
		d.page_source[:2000]


def test_policy_page_follows_reloads(console, browser):
	v, d = console, browser
	login(d, v, "admin")
	# a reload that fails: its errors show, the previous policy stays
	v.rewrite_config(lambda c: c["groups"][0].update(action="sinkhol"))
	v.send_signal(signal.SIGHUP)
	v.wait_stderr("reload: failed")
	d.get(url(v, "/policy"))
	text = d.find_element(By.TAG_NAME, "main").text
	assert "failed: the previous policy stays in use" in text, text
	assert "unknown value 'sinkhol'" in text, text
	# fixed: ok, and a new group is listed
	def fixed(c):
		c["groups"][0]["action"] = "refused"
		c["groups"].append({"name": "guests", "clients": ["127.0.3.0/24"], "block": ["ads"]})
	v.rewrite_config(fixed)
	v.send_signal(signal.SIGHUP)
	v.wait_stderr("reload: ok")
	d.get(url(v, "/policy"))
	text = d.find_element(By.TAG_NAME, "main").text
	assert "Last reload:" in text and ", ok (1 ok, 1 failed since the start)" in text, text
	assert "guests" in text and "sinkhol'" not in text
	assert console_errors(d) == []
