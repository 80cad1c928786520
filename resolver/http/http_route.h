/*
 * http_route: the contract between the HTTP listener (resolver/http: libmicrohttpd, its own
 * thread, authentication, sessions, CSRF, security headers) and what it serves: /metrics
 * (resolver/http) and the web console's pages (resolver/web). A page never sees
 * libmicrohttpd: it reads its request through http_req_* and writes its answer through
 * http_resp_*, so a page can be unit-tested with another implementation of these functions.
 *
 * Threads: handlers run on the listener's thread, never on the DNS loop. They may block on
 * the query store (a read-only SQLite connection of their own) or on the control socket
 * (a bounded round trip); they must not touch the loop's objects.
 *
 * Before a handler runs the listener has: authenticated the request (role below), refused it
 * when the role is below the route's min_role (401 without a session, 403 with one), refused a
 * POST to a route without allow_post (405), and checked the CSRF token of every POST (403 when
 * it is missing or wrong). Every response gets the security headers (Content-Security-Policy
 * without 'unsafe-inline' scripts, X-Content-Type-Options, frame-ancestors 'none',
 * Referrer-Policy, Cache-Control: no-store) from the listener.
 */
#ifndef VETO_HTTP_ROUTE_H
#define VETO_HTTP_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

enum http_role {
	HTTP_ROLE_NONE = 0,  /* not logged in */
	HTTP_ROLE_READ = 1,  /* may read every page */
	HTTP_ROLE_ADMIN = 2, /* may also act: forget, pin, unpin */
};

struct http_req;  /* owned by the listener, valid during the handler call */
struct http_resp; /* owned by the listener; the body is sent after the handler returns */

/* The path without its query string, percent-decoded ("/devices"). */
const char *http_req_path(const struct http_req *req);
bool http_req_is_post(const struct http_req *req);
/* The value of a query-string argument (GET) or of an application/x-www-form-urlencoded
 * field (POST), decoded; NULL when absent. A key given more than once yields its values
 * joined by ',' (so `?list=a&list=b` reads as "a,b", as the CLI's filters take it). */
const char *http_req_arg(const struct http_req *req, const char *name);
enum http_role http_req_role(const struct http_req *req);
/* The user name of the session or token ("" without one). */
const char *http_req_user(const struct http_req *req);
/* This session's CSRF token: a page puts it in every form as <input type=hidden name=csrf>. */
const char *http_req_csrf(const struct http_req *req);

/* 200 and "text/html; charset=utf-8" unless set. */
void http_resp_status(struct http_resp *resp, int status);
void http_resp_type(struct http_resp *resp, const char *content_type);
/* Adds a response header (e.g. Content-Disposition for a CSV export). 0 or -ENOMEM. */
int http_resp_header(struct http_resp *resp, const char *name, const char *value);
/* 303 See Other to location (after a POST). */
void http_resp_redirect(struct http_resp *resp, const char *location);
/* Append to the body. 0, or -ENOMEM (the listener then answers 500). */
int http_resp_write(struct http_resp *resp, const void *data, size_t len);
int http_resp_printf(struct http_resp *resp, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
/* Append text escaped for HTML (&, <, >, ", ' and control octets; invalid UTF-8 replaced). */
int http_resp_html(struct http_resp *resp, const char *text);

/* A handler: 0, or -errno (the listener answers 500 and logs it). ctx is the route's. */
typedef int (*http_handler)(void *ctx, const struct http_req *req, struct http_resp *resp);

struct http_route {
	const char *path;        /* exact match, e.g. "/devices"; "/" is the overview */
	enum http_role min_role; /* HTTP_ROLE_NONE: public (the login page, /static/...) */
	bool allow_post;
	http_handler fn;
	void *ctx;
};

#endif
