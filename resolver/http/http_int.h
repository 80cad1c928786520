/*
 * http_int: what the listener's files (http.c, http_args.c, http_resp.c, http_auth.c,
 * http_login.c, sha256.c) and their unit tests share.
 */
#ifndef VETO_HTTP_INT_H
#define VETO_HTTP_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "http_route.h"

/* Bounds: a POST body, the arguments of one request, a header we copy. */
#define HTTP_BODY_MAX   (64 * 1024)
#define HTTP_ARGS_MAX   64
#define HTTP_ARGS_BYTES (64 * 1024)
/* Connections: at most this many at once, this many from one address, closed when idle this
 * long (seconds); the threads serving them. */
#define HTTP_CONN_MAX     256
#define HTTP_CONN_PER_IP  32
#define HTTP_CONN_TIMEOUT 15
#define HTTP_THREADS      2
/* Sessions: at most this many (the least recently used goes), idle and absolute expiry. */
#define HTTP_SESSIONS_MAX 256
#define HTTP_SESSION_IDLE (60 * 60)
#define HTTP_SESSION_LIFE (12 * 60 * 60)
/* Failed logins: after HTTP_LOGIN_FAILS from one address within HTTP_LOGIN_WINDOW seconds,
 * that address gets 429 until the window has passed since its last failure. */
#define HTTP_LOGIN_FAILS   5
#define HTTP_LOGIN_WINDOW  60
#define HTTP_LOGIN_SOURCES 256
#define HTTP_COOKIE        "veto_session"

/* ---- arguments (http_args.c): decoded key/value pairs, repeated keys joined by ',' ---- */
struct http_args {
	char *keys[HTTP_ARGS_MAX];
	char *vals[HTTP_ARGS_MAX];
	size_t n;
	size_t bytes; /* keys and values held */
};

void http_args_init(struct http_args *a);
void http_args_clear(struct http_args *a);
/* Adds key=val (decoded already); a repeated key appends ",val" to its value. 0, -E2BIG (too
 * many or too long: the request is refused) or -ENOMEM. */
int http_args_add(struct http_args *a, const char *key, const char *val);
/* Parses application/x-www-form-urlencoded text (len octets, not NUL-terminated): pairs split
 * by '&', '+' is a space, %XX decoded; a decoded NUL octet or a bad escape is -EINVAL. */
int http_args_parse(struct http_args *a, const char *text, size_t len);
const char *http_args_get(const struct http_args *a, const char *key);

/* ---- responses (http_resp.c) ---- */
struct http_header {
	char *name, *value;
};

struct http_resp {
	int status;
	char *type; /* owned; NULL = text/html; charset=utf-8 */
	char *body;
	size_t len, cap;
	struct http_header *headers;
	size_t nheaders;
	bool oom; /* a write failed: answer 500 */
};

void http_resp_init(struct http_resp *r);
void http_resp_clear(struct http_resp *r);
/* Empties the body and headers (an error page replaces what a handler wrote). */
void http_resp_reset(struct http_resp *r);

/* ---- requests (http.c builds them) ---- */
struct http_req {
	const char *path;
	bool post;
	bool bearer; /* authenticated by a token: no CSRF check */
	enum http_role role;
	char user[64];
	char csrf[65];
	char session[65];  /* the session's id in hex, "" without one */
	char peer[64];     /* the client's address, for the log */
	char logpath[128]; /* the path for the log (http_log_safe) */
	struct sockaddr_storage peer_ss;
	struct http_args args;
	struct http_server *srv;
};

/* ---- rules (http_rules.c) ---- */
/* 0 when route r serves req, else the refusal: 404 (r NULL), 405 (a POST where the route has
 * none), 401 (no role), 403 (a role below the route's). */
int http_route_refusal(const struct http_route *r, const struct http_req *req);
/* An Origin header (NULL: absent, accepted) naming http://HOST of the request. */
bool http_origin_ok(const char *origin, const char *host);
/* A Host header naming a loopback address or localhost, with or without a port. */
bool http_host_is_local(const char *host);

/* s for a log line: control octets become '?', cut to size (ending "...") so that what a client
 * sends cannot forge or split lines. Returns buf. */
const char *http_log_safe(const char *s, char *buf, size_t size);

/* ---- SHA-256 (sha256.c) ---- */
void sha256(const void *data, size_t len, uint8_t out[32]);

/* ---- authentication (http_auth.c): users, tokens, sessions, failed logins ---- */
struct http_auth;

int http_auth_new(struct http_auth **out);
void http_auth_free(struct http_auth **a);
/* Replaces users and tokens with cfg's; sessions of users no longer there end, the others take
 * the user's current role. 0 or -ENOMEM. */
int http_auth_set(struct http_auth *a, const struct config *cfg);
/* True when users or tokens are configured. */
bool http_auth_on(struct http_auth *a);
/* Fills req->role, user, csrf, session, bearer from the Cookie and Authorization headers
 * (either may be NULL). -EACCES: a bearer token that is not known (answer 401). */
int http_auth_request(struct http_auth *a, struct http_req *req, const char *cookie,
                      const char *authorization);
/* Login: 0 (a new session; its id in hex in sid[65]), -EACCES (wrong user or password),
 * -EAGAIN (too many failures from this address: 429). */
int http_auth_login(struct http_auth *a, const struct sockaddr_storage *peer, const char *user,
                    const char *password, char sid[65]);
void http_auth_logout(struct http_auth *a, const char *sid);
/* Constant-time comparison of two NUL-terminated strings. */
bool http_auth_equal(const char *x, const char *y);

/* ---- built-in pages (http_login.c) ---- */
int http_login_page(void *ctx, const struct http_req *req, struct http_resp *resp);
int http_logout_page(void *ctx, const struct http_req *req, struct http_resp *resp);

/* The auth of a server (http_login.c uses it). */
struct http_auth *http_server_auth(struct http_server *h);

#endif
