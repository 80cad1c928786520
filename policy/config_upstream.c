/*
 * config_upstream: the syntax of one upstream.servers entry (plain DNS, DNS over TLS, DNS over
 * HTTPS). Only the text is read here; the transports live in resolver/dns/.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define TLS_PREFIX   "tls://"
#define HTTPS_PREFIX "https://"

/* A host name as a certificate carries it: labels of letters, digits and hyphens (not at either
 * end), at most 63 octets each, 253 in all, no trailing dot. Written lowercase into out. url:
 * the reasons speak of the URL's host, else of the name after '#'. */
static int
copy_name(const char *name, bool url, char **out, const char **why)
{
	size_t n = strlen(name), label = 0;

	if (n == 0 || n > 253) {
		*why = url ? "the URL's host must have 1 to 253 characters"
			   : "the name after '#' must have 1 to 253 characters";
		return -EINVAL;
	}
	for (size_t i = 0; i <= n; i++) {
		char ch = name[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || name[i - 1] == '-') {
				*why = url ? "the URL's host has an empty label or one ending in '-'"
					   : "the name after '#' has an empty label or one ending in '-'";
				return -EINVAL;
			}
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || (ch == '-' && label > 0);
		if (!ok || ++label > 63) {
			*why = url ? "the URL's host is not a host name (letters, digits, '-', '.')"
				   : "the name after '#' is not a host name (letters, digits, '-', '.')";
			return -EINVAL;
		}
	}
	char *s = strdup(name);
	if (s == NULL)
		return -ENOMEM;
	for (char *p = s; *p != '\0'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	*out = s;
	return 0;
}

/* A bootstrap address: IPv4, IPv6, or [IPv6], no port. */
static int
parse_bootstrap(const char *text, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	char host[INET6_ADDRSTRLEN + 1];
	size_t n = strlen(text);

	if (n >= 2 && text[0] == '[' && text[n - 1] == ']') {
		text++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, n);
	host[n] = '\0';
	memset(ss, 0, sizeof(*ss));
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		*len = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*len = sizeof(*sin6);
		return 0;
	}
	return -EINVAL;
}

/* "host[:port]/path[#bootstrap]" after "https://". */
static int
parse_https(const char *text, struct config_addr *out, const char **why)
{
	char auth[300], host[260];
	struct config_addr a;
	const char *hash = strchr(text, '#');
	const char *slash = strchr(text, '/');
	size_t end = hash != NULL ? (size_t)(hash - text) : strlen(text);

	memset(&a, 0, sizeof(a));
	if (slash == NULL || (hash != NULL && slash > hash)) {
		*why = "https:// needs a path (https://dns.example/dns-query#192.0.2.1)";
		return -EINVAL;
	}
	size_t alen = (size_t)(slash - text);
	if (alen == 0 || alen >= sizeof(auth)) {
		*why = "https:// needs a host (https://192.0.2.1/dns-query)";
		return -EINVAL;
	}
	for (const char *p = slash; p < text + end; p++) {
		if (*p <= 0x20 || *p >= 0x7f) {
			*why = "the URL's path has a space or a character that is not printable ASCII";
			return -EINVAL;
		}
	}
	memcpy(auth, text, alen);
	auth[alen] = '\0';
	bool literal = auth[0] == '[' || strchr(auth, ':') == strrchr(auth, ':');
	if (!literal) {
		*why = "an IPv6 address in a URL goes in brackets (https://[2001:db8::1]/dns-query)";
		return -EINVAL;
	}
	if (config_parse_addr(auth, 443, &a.ss, &a.len) == 0) {
		if (hash != NULL) {
			*why = "the host is an IP address: nothing goes after '#'";
			return -EINVAL;
		}
	} else {
		/* a host name, with an optional port, and its address after '#' */
		const char *colon = strrchr(auth, ':');
		uint16_t port = 443;
		size_t hlen = colon != NULL ? (size_t)(colon - auth) : alen;
		if (colon != NULL) {
			char *e;
			unsigned long v = strtoul(colon + 1, &e, 10);
			if (colon[1] == '\0' || *e != '\0' || v == 0 || v > 65535) {
				*why = "bad port in the URL";
				return -EINVAL;
			}
			port = (uint16_t)v;
		}
		if (hlen >= sizeof(host) || auth[0] == '[') {
			*why = "bad host in the URL";
			return -EINVAL;
		}
		memcpy(host, auth, hlen);
		host[hlen] = '\0';
		int err = copy_name(host, true, &a.tls_name, why);
		if (err != 0)
			return err;
		if (hash == NULL || parse_bootstrap(hash + 1, port, &a.ss, &a.len) != 0) {
			free(a.tls_name);
			*why = hash == NULL ? "a host name needs its address after '#' (Veto does not "
					      "resolve it): https://dns.example/dns-query#192.0.2.1"
					    : "the bootstrap address after '#' is not an IP address";
			return -EINVAL;
		}
	}
	size_t ulen = strlen(HTTPS_PREFIX) + end + 1;
	a.url = malloc(ulen);
	if (a.url == NULL) {
		free(a.tls_name);
		return -ENOMEM;
	}
	snprintf(a.url, ulen, "%s%.*s", HTTPS_PREFIX, (int)end, text);
	a.transport = CONFIG_TRANSPORT_HTTPS;
	*out = a;
	return 0;
}

int
config_parse_upstream(const char *text, struct config_addr *out, const char **why)
{
	char hostport[80];
	const char *name = NULL;
	struct config_addr a;

	memset(&a, 0, sizeof(a));
	if (strncmp(text, HTTPS_PREFIX, strlen(HTTPS_PREFIX)) == 0)
		return parse_https(text + strlen(HTTPS_PREFIX), out, why);
	if (strstr(text, "://") != NULL && strncmp(text, TLS_PREFIX, strlen(TLS_PREFIX)) != 0) {
		*why = "unknown scheme (expected tls://, https:// or a plain address)";
		return -EINVAL;
	}
	if (strncmp(text, TLS_PREFIX, strlen(TLS_PREFIX)) != 0) {
		if (config_parse_addr(text, 53, &a.ss, &a.len) != 0) {
			*why = "expected IPv4, IPv4:port, IPv6 or [IPv6]:port";
			return -EINVAL;
		}
		*out = a;
		return 0;
	}
	text += strlen(TLS_PREFIX);
	const char *hash = strchr(text, '#');
	size_t hlen = hash != NULL ? (size_t)(hash - text) : strlen(text);
	if (hash != NULL)
		name = hash + 1;
	if (hlen == 0 || hlen >= sizeof(hostport)) {
		*why = "tls:// needs an IP address (tls://192.0.2.1:853#dns.example)";
		return -EINVAL;
	}
	memcpy(hostport, text, hlen);
	hostport[hlen] = '\0';
	if (hostport[hlen - 1] == '/')
		hostport[--hlen] = '\0';	/* "tls://192.0.2.1/" */
	if (config_parse_addr(hostport, 853, &a.ss, &a.len) != 0) {
		*why = "tls:// takes an IP address (IPv4, IPv4:port, [IPv6] or [IPv6]:port) and the "
		       "certificate's name after '#' (tls://192.0.2.1:853#dns.example)";
		return -EINVAL;
	}
	a.transport = CONFIG_TRANSPORT_TLS;
	if (name != NULL) {
		int err = copy_name(name, false, &a.tls_name, why);
		if (err != 0) {
			if (err == -ENOMEM)
				*why = "out of memory";
			return err;
		}
	}
	*out = a;
	return 0;
}
