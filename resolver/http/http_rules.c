/*
 * http_rules: the listener's decisions that need no connection: which refusal a route gives a
 * request, whether an Origin header names this listener, whether a Host header is a loopback
 * name (the only ones accepted without users or tokens: a web page that rebinds its own name
 * to 127.0.0.1 must not reach an unauthenticated console).
 */
#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

#include "http_int.h"

int
http_route_refusal(const struct http_route *r, const struct http_req *req)
{
	if (r == NULL)
		return 404;
	if (req->post && !r->allow_post)
		return 405;
	if (req->role < r->min_role)
		return req->role == HTTP_ROLE_NONE ? 401 : 403;
	return 0;
}

bool
http_origin_ok(const char *origin, const char *host)
{
	if (origin == NULL)
		return true; /* not a browser's cross-site form, or an old browser: CSRF token */
	if (host == NULL || strncmp(origin, "http://", 7) != 0)
		return false;
	return strcasecmp(origin + 7, host) == 0;
}

bool
http_host_is_local(const char *host)
{
	char name[64];
	const char *end;

	if (host == NULL)
		return false;
	if (host[0] == '[') { /* [v6]:port */
		end = strchr(host, ']');
		if (end == NULL || (end[1] != '\0' && end[1] != ':'))
			return false;
		host++;
	} else {
		end = strchr(host, ':');
		if (end == NULL)
			end = host + strlen(host);
	}
	size_t n = (size_t)(end - host);
	if (n == 0 || n >= sizeof(name))
		return false;
	memcpy(name, host, n);
	name[n] = '\0';
	if (strcasecmp(name, "localhost") == 0)
		return true;
	struct in_addr a4;
	struct in6_addr a6;
	if (inet_pton(AF_INET, name, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (inet_pton(AF_INET6, name, &a6) == 1)
		return IN6_IS_ADDR_LOOPBACK(&a6);
	return false;
}

const char *
http_log_safe(const char *s, char *buf, size_t size)
{
	size_t o = 0;
	if (size == 0)
		return "";
	for (; *s != '\0' && o + 1 < size; s++) {
		unsigned char ch = (unsigned char)*s;
		buf[o++] = ch < 0x20 || ch == 0x7f ? '?' : (char)ch;
	}
	if (*s != '\0' && size >= 4) {
		memcpy(buf + size - 4, "...", 3);
		o = size - 1;
	}
	buf[o] = '\0';
	return buf;
}
