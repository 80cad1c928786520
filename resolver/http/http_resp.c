/*
 * http_resp: a response being built by a handler (status, type, headers, body) and the HTML
 * escaper. Nothing here knows libmicrohttpd: http.c sends what a handler built.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"

void
http_resp_init(struct http_resp *r)
{
	memset(r, 0, sizeof(*r));
	r->status = 200;
}

void
http_resp_reset(struct http_resp *r)
{
	for (size_t i = 0; i < r->nheaders; i++) {
		free(r->headers[i].name);
		free(r->headers[i].value);
	}
	free(r->headers);
	free(r->type);
	r->headers = NULL;
	r->nheaders = 0;
	r->type = NULL;
	r->len = 0;
	r->oom = false;
}

void
http_resp_clear(struct http_resp *r)
{
	http_resp_reset(r);
	free(r->body);
	http_resp_init(r);
}

void
http_resp_status(struct http_resp *resp, int status)
{
	resp->status = status;
}

void
http_resp_type(struct http_resp *resp, const char *content_type)
{
	char *t = strdup(content_type);
	if (t == NULL) {
		resp->oom = true;
		return;
	}
	free(resp->type);
	resp->type = t;
}

/* A header value or name must not split the header block. */
static bool
header_safe(const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\r' || *s == '\n')
			return false;
	}
	return true;
}

int
http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
	if (!header_safe(name) || !header_safe(value) || name[0] == '\0')
		return -EINVAL;
	struct http_header *nh = realloc(resp->headers, (resp->nheaders + 1) * sizeof(*nh));
	if (nh == NULL)
		goto oom;
	resp->headers = nh;
	nh[resp->nheaders].name = strdup(name);
	nh[resp->nheaders].value = strdup(value);
	if (nh[resp->nheaders].name == NULL || nh[resp->nheaders].value == NULL) {
		free(nh[resp->nheaders].name);
		free(nh[resp->nheaders].value);
		goto oom;
	}
	resp->nheaders++;
	return 0;
oom:
	resp->oom = true;
	return -ENOMEM;
}

void
http_resp_redirect(struct http_resp *resp, const char *location)
{
	resp->status = 303;
	if (http_resp_header(resp, "Location", location) != 0)
		resp->oom = true;
}

static int
reserve(struct http_resp *resp, size_t more)
{
	if (resp->len + more + 1 <= resp->cap)
		return 0;
	size_t cap = resp->cap ? resp->cap : 4096;
	while (cap < resp->len + more + 1)
		cap *= 2;
	char *nb = realloc(resp->body, cap);
	if (nb == NULL) {
		resp->oom = true;
		return -ENOMEM;
	}
	resp->body = nb;
	resp->cap = cap;
	return 0;
}

int
http_resp_write(struct http_resp *resp, const void *data, size_t len)
{
	if (reserve(resp, len) != 0)
		return -ENOMEM;
	memcpy(resp->body + resp->len, data, len);
	resp->len += len;
	resp->body[resp->len] = '\0';
	return 0;
}

int
http_resp_printf(struct http_resp *resp, const char *fmt, ...)
{
	va_list ap;
	char small[256];

	va_start(ap, fmt);
	int n = vsnprintf(small, sizeof(small), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	if ((size_t)n < sizeof(small))
		return http_resp_write(resp, small, (size_t)n);
	if (reserve(resp, (size_t)n) != 0)
		return -ENOMEM;
	va_start(ap, fmt);
	vsnprintf(resp->body + resp->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	resp->len += (size_t)n;
	return 0;
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 when it is not one. */
static size_t
utf8_len(const unsigned char *s)
{
	unsigned c = s[0];
	size_t n;
	unsigned min;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		min = 0x10000;
	} else {
		return 0;
	}
	unsigned cp = c & (0x3f >> (n - 1));
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

int
http_resp_html(struct http_resp *resp, const char *text)
{
	const unsigned char *s = (const unsigned char *)text;
	size_t run = 0; /* octets copied as they are, waiting */

	while (s[run] != '\0') {
		const char *rep = NULL;
		unsigned char c = s[run];
		switch (c) {
		case '&':
			rep = "&amp;";
			break;
		case '<':
			rep = "&lt;";
			break;
		case '>':
			rep = "&gt;";
			break;
		case '"':
			rep = "&quot;";
			break;
		case '\'':
			rep = "&#39;";
			break;
		default:
			if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
				rep = "\xef\xbf\xbd"; /* U+FFFD: control octets are not text */
			} else if (c >= 0x80) {
				size_t n = utf8_len(s + run);
				if (n == 0) {
					rep = "\xef\xbf\xbd";
				} else {
					run += n;
					continue;
				}
			}
		}
		if (rep == NULL) {
			run++;
			continue;
		}
		if (http_resp_write(resp, s, run) != 0 ||
		    http_resp_write(resp, rep, strlen(rep)) != 0)
			return -ENOMEM;
		s += run + 1;
		run = 0;
	}
	return http_resp_write(resp, s, run);
}
