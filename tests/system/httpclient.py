"""A small HTTP client for the listener's tests (http.client, no redirects followed)."""

import http.client
import re

from prometheus_client.parser import text_string_to_metric_families


class Resp:
	def __init__(self, status, headers, body):
		self.status = status
		self.headers = headers		# list of (name, value)
		self.body = body

	def header(self, name):
		for k, v in self.headers:
			if k.lower() == name.lower():
				return v
		return None

	def headers_named(self, name):
		return [v for k, v in self.headers if k.lower() == name.lower()]

	@property
	def text(self):
		return self.body.decode("utf-8", errors="replace")


def request(port, method, path, body=None, headers=None, host="127.0.0.1", timeout=10, source=None):
	conn = http.client.HTTPConnection(host, port, timeout=timeout,
					  source_address=(source, 0) if source else None)
	try:
		hdrs = dict(headers or {})
		if body is not None and "Content-Type" not in hdrs:
			hdrs["Content-Type"] = "application/x-www-form-urlencoded"
		conn.request(method, path, body=body, headers=hdrs)
		r = conn.getresponse()
		return Resp(r.status, r.getheaders(), r.read())
	finally:
		conn.close()


def get(port, path, **kw):
	return request(port, "GET", path, **kw)


def post(port, path, form, **kw):
	from urllib.parse import urlencode
	return request(port, "POST", path, body=urlencode(form), **kw)


def session_cookie(resp):
	"""The veto_session value of a Set-Cookie header, and the header itself."""
	for v in resp.headers_named("Set-Cookie"):
		m = re.match(r"veto_session=([^;]*)", v)
		if m:
			return m.group(1), v
	return None, None


def csrf_of(html):
	m = re.search(r'name=csrf value="([0-9a-f]+)"', html)
	return m.group(1) if m else None


def parse_metrics(text):
	"""Every line through prometheus_client's parser: {(name, frozenset(labels)): value}, and
	the families (name -> (type, documentation))."""
	samples, families = {}, {}
	for fam in text_string_to_metric_families(text):
		families[fam.name] = (fam.type, fam.documentation)
		for s in fam.samples:
			samples[(s.name, frozenset(s.labels.items()))] = s.value
	return samples, families


def value(samples, name, **labels):
	return samples.get((name, frozenset(labels.items())), 0.0)
