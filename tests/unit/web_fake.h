/*
 * web_fake: a fake of the HTTP listener's request and response functions (http_route.h) for
 * the console's pages: arguments from a table, the body in memory. Shared by test_web.c and
 * tests/bench/bench_web.c. Header-only: include it in one file of a program.
 */
#ifndef VETO_TEST_WEB_FAKE_H
#define VETO_TEST_WEB_FAKE_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_route.h"

#define MAX_ARGS 16
struct http_req {
	const char *path;
	bool post;
	enum http_role role;
	const char *keys[MAX_ARGS], *vals[MAX_ARGS];
	size_t nargs;
};

struct http_resp {
	int status;
	char type[64], location[512], header[256];
	char *body;
	size_t len;
};

const char *
http_req_path(const struct http_req *req)
{
	return req->path;
}

bool
http_req_is_post(const struct http_req *req)
{
	return req->post;
}

const char *
http_req_arg(const struct http_req *req, const char *name)
{
	for (size_t i = 0; i < req->nargs; i++)
		if (strcmp(req->keys[i], name) == 0)
			return req->vals[i];
	return NULL;
}

enum http_role
http_req_role(const struct http_req *req)
{
	return req->role;
}

const char *
http_req_user(const struct http_req *req)
{
	return req->role == HTTP_ROLE_ADMIN ? "admin" : "viewer";
}

const char *
http_req_csrf(const struct http_req *req)
{
	(void)req;
	return "TOKEN123";
}

void
http_resp_status(struct http_resp *resp, int status)
{
	resp->status = status;
}

void
http_resp_type(struct http_resp *resp, const char *type)
{
	snprintf(resp->type, sizeof(resp->type), "%s", type);
}

int
http_resp_header(struct http_resp *resp, const char *name, const char *value)
{
	snprintf(resp->header, sizeof(resp->header), "%s: %s", name, value);
	return 0;
}

void
http_resp_redirect(struct http_resp *resp, const char *location)
{
	resp->status = 303;
	snprintf(resp->location, sizeof(resp->location), "%s", location);
}

int
http_resp_write(struct http_resp *resp, const void *data, size_t len)
{
	char *nb = realloc(resp->body, resp->len + len + 1);
	if (nb == NULL)
		return -ENOMEM;
	memcpy(nb + resp->len, data, len);
	resp->len += len;
	nb[resp->len] = '\0';
	resp->body = nb;
	return 0;
}

int
http_resp_printf(struct http_resp *resp, const char *fmt, ...)
{
	char *s = NULL;
	va_list ap;
	va_start(ap, fmt);
	int n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	int rc = http_resp_write(resp, s, (size_t)n);
	free(s);
	return rc;
}

int
http_resp_html(struct http_resp *resp, const char *text)
{
	int rc = 0;
	for (const char *p = text; rc == 0 && *p; p++) {
		switch (*p) {
		case '<':
			rc = http_resp_printf(resp, "&lt;");
			break;
		case '>':
			rc = http_resp_printf(resp, "&gt;");
			break;
		case '&':
			rc = http_resp_printf(resp, "&amp;");
			break;
		case '"':
			rc = http_resp_printf(resp, "&quot;");
			break;
		case '\'':
			rc = http_resp_printf(resp, "&#39;");
			break;
		default:
			rc = http_resp_write(resp, p, 1);
		}
	}
	return rc;
}

#endif
