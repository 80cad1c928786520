/*
 * http: the HTTP listener (http.listen), built on libmicrohttpd with its own threads. It
 * authenticates every request (session cookie or bearer token, http_auth.c), routes it by exact
 * path to a struct http_route (http_route.h), checks roles and CSRF, and adds the security
 * headers to every response. It never touches the DNS loop: a handler that needs the loop's
 * counters asks through metrics_feed.h.
 *
 *     http_new(cfg)          binds every http.listen address (before the privilege drop)
 *     http_start(routes)     starts the threads (after it: they inherit no privilege)
 *     http_reload(cfg)       http.users and http.tokens take effect; listen changes are logged
 *     http_free()            stops the threads (handlers in progress finish), closes, frees
 *
 * Without http.users and http.tokens (allowed on loopback addresses only, config_http.c) every
 * request is an administrator's.
 */
#ifndef VETO_HTTP_H
#define VETO_HTTP_H

#include <stddef.h>

#include "config.h"
#include "http_route.h"

struct http_server;

/* Binds the sockets of cfg->http.listen (none bound: *out NULL and 0 when the list is empty).
 * cfg is read during the call only. 0, or the -errno of the first address that cannot be
 * bound (logged). */
int http_new(const struct config *cfg, struct http_server **out);

/* Starts serving routes (the array is copied; the paths, contexts and what they point to are
 * borrowed until http_free). /login and /logout are added. 0 or -errno (logged). */
int http_start(struct http_server *h, const struct http_route *routes, size_t nroutes);

/* From any thread: cfg's users and tokens replace the old ones (sessions of removed users end;
 * a changed role applies to the next request). A changed http.listen is logged: it needs a
 * restart. 0 or -ENOMEM (the old ones stay). */
int http_reload(struct http_server *h, const struct config *cfg);

/* Stops the threads, closes the sockets, frees *h and sets it NULL. NULL is fine. */
void http_free(struct http_server **h);

#endif
