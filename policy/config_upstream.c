/*
 * config_upstream: the syntax of one upstream.servers entry (plain DNS or DNS over TLS). Only
 * the text is read here; the transports live in resolver/dns/.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

#define TLS_PREFIX   "tls://"
#define HTTPS_PREFIX "https://"

/* A host name as a certificate carries it: labels of letters, digits and hyphens (not at either
 * end), at most 63 octets each, 253 in all, no trailing dot. Written lowercase into out. */
static int
copy_tls_name(const char *name, char **out, const char **why)
{
	size_t n = strlen(name), label = 0;

	if (n == 0 || n > 253) {
		*why = "the name after '#' must have 1 to 253 characters";
		return -EINVAL;
	}
	for (size_t i = 0; i <= n; i++) {
		char ch = name[i];
		if (ch == '.' || ch == '\0') {
			if (label == 0 || name[i - 1] == '-') {
				*why = "the name after '#' has an empty label or one ending in '-'";
				return -EINVAL;
			}
			label = 0;
			continue;
		}
		bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			  (ch >= '0' && ch <= '9') || (ch == '-' && label > 0);
		if (!ok || ++label > 63) {
			*why = "the name after '#' is not a host name (letters, digits, '-', '.')";
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

int
config_parse_upstream(const char *text, struct config_addr *out, const char **why)
{
	char hostport[80];
	const char *name = NULL;
	struct config_addr a;

	memset(&a, 0, sizeof(a));
	if (strncmp(text, HTTPS_PREFIX, strlen(HTTPS_PREFIX)) == 0) {
		*why = "DNS over HTTPS (https://) is not supported yet; use tls:// or plain DNS";
		return -EINVAL;
	}
	if (strstr(text, "://") != NULL && strncmp(text, TLS_PREFIX, strlen(TLS_PREFIX)) != 0) {
		*why = "unknown scheme (expected tls:// or a plain address)";
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
		int err = copy_tls_name(name, &a.tls_name, why);
		if (err != 0) {
			if (err == -ENOMEM)
				*why = "out of memory";
			return err;
		}
	}
	*out = a;
	return 0;
}
