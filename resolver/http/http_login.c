/*
 * http_login: the listener's own pages: /login (GET: the form; POST: check the password, start
 * a session) and /logout (GET: a button that asks for it; POST with the session's CSRF token:
 * end it; a link elsewhere cannot log anyone out). The markup is minimal; /static/veto.css
 * styles it.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "http_int.h"
#include "log.h"

/* Where to go after logging in: a local path only ("/x", not "//host" or "/\host"). No control
 * octet anywhere: a browser drops tabs and newlines from a URL, so "/<TAB>/host" would become
 * "//host", another site. */
static const char *
next_page(const struct http_req *req)
{
	const char *next = http_req_arg(req, "next");
	if (next == NULL || next[0] != '/' || next[1] == '/' || next[1] == '\\')
		return "/";
	for (const unsigned char *p = (const unsigned char *)next; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f)
			return "/";
	}
	return next;
}

static int
form(const struct http_req *req, struct http_resp *resp, const char *problem)
{
	http_resp_printf(resp, "<!doctype html><html><head><meta charset=utf-8>"
	                       "<meta name=viewport content=\"width=device-width\">"
	                       "<title>Veto: log in</title>"
	                       "<link rel=stylesheet href=\"/static/veto.css\"></head>"
	                       "<body class=login><main><h1>Veto</h1>");
	if (problem != NULL) {
		http_resp_printf(resp, "<p class=error role=alert>");
		http_resp_html(resp, problem);
		http_resp_printf(resp, "</p>");
	}
	http_resp_printf(resp, "<form method=post action=\"/login\">"
	                       "<input type=hidden name=csrf value=\"");
	http_resp_html(resp, http_req_csrf(req));
	http_resp_printf(resp, "\"><input type=hidden name=next value=\"");
	http_resp_html(resp, next_page(req));
	http_resp_printf(resp, "\"><label>User <input name=user autocomplete=username required "
	                       "autofocus></label>"
	                       "<label>Password <input type=password name=password "
	                       "autocomplete=current-password required></label>"
	                       "<button type=submit>Log in</button></form></main></body></html>\n");
	return resp->oom ? -ENOMEM : 0;
}

int
http_login_page(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_auth *auth = http_server_auth(ctx);
	char sid[65], cookie[160];

	if (!http_req_is_post(req))
		return form(req, resp, NULL);
	const char *user = http_req_arg(req, "user");
	const char *password = http_req_arg(req, "password");
	if (user == NULL || password == NULL || user[0] == '\0') {
		http_resp_status(resp, 400);
		return form(req, resp, "user and password are needed");
	}
	char shown[64];
	http_log_safe(user, shown, sizeof(shown));
	int rc = http_auth_login(auth, &req->peer_ss, user, password, sid);
	if (rc == -EAGAIN) {
		log_info("http: %s: login as '%s' refused: too many failures", req->peer, shown);
		http_resp_status(resp, 429);
		http_resp_header(resp, "Retry-After", "60");
		return form(req, resp, "too many failed logins: wait a minute");
	}
	if (rc == -EACCES) {
		log_info("http: %s: login as '%s' failed", req->peer, shown);
		http_resp_status(resp, 401);
		return form(req, resp, "wrong user or password");
	}
	if (rc != 0)
		return rc;
	log_info("http: %s: '%s' logged in", req->peer, shown);
	http_auth_logout(auth, req->session); /* a session before this login ends */
	snprintf(cookie, sizeof(cookie), HTTP_COOKIE "=%s; HttpOnly; SameSite=Strict; Path=/", sid);
	explicit_bzero(sid, sizeof(sid));
	http_resp_header(resp, "Set-Cookie", cookie);
	explicit_bzero(cookie, sizeof(cookie));
	http_resp_redirect(resp, next_page(req));
	return resp->oom ? -ENOMEM : 0;
}

/* GET /logout: the form whose POST ends the session (the header's button sends the same). */
static int
logout_form(const struct http_req *req, struct http_resp *resp)
{
	http_resp_printf(resp, "<!doctype html><html><head><meta charset=utf-8>"
	                       "<meta name=viewport content=\"width=device-width\">"
	                       "<title>Veto: log out</title>"
	                       "<link rel=stylesheet href=\"/static/veto.css\"></head>"
	                       "<body class=login><main><h1>Veto</h1>"
	                       "<form method=post action=\"/logout\">"
	                       "<input type=hidden name=csrf value=\"");
	http_resp_html(resp, http_req_csrf(req));
	http_resp_printf(resp, "\"><button type=submit>Log out</button></form>"
	                       "<p><a href=\"/\">Back to the console</a></p></main></body></html>\n");
	return resp->oom ? -ENOMEM : 0;
}

int
http_logout_page(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	struct http_auth *auth = http_server_auth(ctx);
	char shown[64];
	if (!http_req_is_post(req))
		return logout_form(req, resp);
	http_auth_logout(auth, req->session);
	if (req->user[0] != '\0')
		log_info("http: %s: '%s' logged out", req->peer,
		         http_log_safe(req->user, shown, sizeof(shown)));
	http_resp_header(resp, "Set-Cookie",
	                 HTTP_COOKIE "=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0");
	http_resp_redirect(resp, "/login");
	return resp->oom ? -ENOMEM : 0;
}
