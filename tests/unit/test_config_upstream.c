/*
 * test_config_upstream: the syntax of upstream.servers entries (policy/config_upstream.c):
 * plain addresses and tls://address[:port][#name], default ports, the name lowercased, and the
 * https://host[:port]/path[#bootstrap address], and the refusals (a host name instead of an
 * address after tls://, a bad #name, a URL's host name without its address, an unknown scheme),
 * directly and through the YAML loader with the key path.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_harness.h"
#include "diag.h"

struct parse_case {
	const char *text;
	int family;			/* 0: must fail */
	const char *addr;
	uint16_t port;
	enum config_transport transport;
	const char *name;		/* tls_name, or NULL */
	const char *why;		/* for a failure: part of the reason; for HTTPS: the URL */
};
#define H CONFIG_TRANSPORT_HTTPS

static const struct parse_case parse_cases[] = {
	{"192.0.2.1", AF_INET, "192.0.2.1", 53, CONFIG_TRANSPORT_DNS, NULL, NULL},
	{"[2001:db8::1]:5353", AF_INET6, "2001:db8::1", 5353, CONFIG_TRANSPORT_DNS, NULL, NULL},
	{"tls://192.0.2.1", AF_INET, "192.0.2.1", 853, CONFIG_TRANSPORT_TLS, NULL, NULL},
	{"tls://192.0.2.1/", AF_INET, "192.0.2.1", 853, CONFIG_TRANSPORT_TLS, NULL, NULL},
	{"tls://192.0.2.1:8853#dns.example", AF_INET, "192.0.2.1", 8853, CONFIG_TRANSPORT_TLS,
	 "dns.example", NULL},
	{"tls://[2001:db8::1]#One.One.One.ONE", AF_INET6, "2001:db8::1", 853, CONFIG_TRANSPORT_TLS,
	 "one.one.one.one", NULL},
	{"tls://2001:db8::1", AF_INET6, "2001:db8::1", 853, CONFIG_TRANSPORT_TLS, NULL, NULL},
	{"tls://[2001:db8::1]:853#a-b.c0", AF_INET6, "2001:db8::1", 853, CONFIG_TRANSPORT_TLS,
	 "a-b.c0", NULL},
	{"https://192.0.2.1/dns-query", AF_INET, "192.0.2.1", 443, H, NULL,
	 "https://192.0.2.1/dns-query"},
	{"https://[2001:db8::1]:8443/q?x=1", AF_INET6, "2001:db8::1", 8443, H, NULL,
	 "https://[2001:db8::1]:8443/q?x=1"},
	{"https://Dns.Example/dns-query#192.0.2.7", AF_INET, "192.0.2.7", 443, H, "dns.example",
	 "https://Dns.Example/dns-query"},
	{"https://dns.example:8443/dns-query#[2001:db8::7]", AF_INET6, "2001:db8::7", 8443, H,
	 "dns.example", "https://dns.example:8443/dns-query"},
	{"https://dns.example:8443/dns-query#2001:db8::7", AF_INET6, "2001:db8::7", 8443, H,
	 "dns.example", "https://dns.example:8443/dns-query"},
	{"https://dns.example/dns-query", 0, NULL, 0, 0, NULL, "needs its address after '#'"},
	{"https://dns.example/dns-query#dns.other", 0, NULL, 0, 0, NULL, "not an IP address"},
	{"https://dns.example/dns-query#192.0.2.1:53", 0, NULL, 0, 0, NULL, "not an IP address"},
	{"https://192.0.2.1/dns-query#192.0.2.2", 0, NULL, 0, 0, NULL, "nothing goes after '#'"},
	{"https://192.0.2.1", 0, NULL, 0, 0, NULL, "needs a path"},
	{"https://dns.example#192.0.2.1/x", 0, NULL, 0, 0, NULL, "needs a path"},
	{"https:///dns-query", 0, NULL, 0, 0, NULL, "needs a host"},
	{"https://2001:db8::1/dns-query", 0, NULL, 0, 0, NULL, "goes in brackets"},
	{"https://dns.example:0/q#192.0.2.1", 0, NULL, 0, 0, NULL, "bad port"},
	{"https://dns.example:x/q#192.0.2.1", 0, NULL, 0, 0, NULL, "bad port"},
	{"https://dns_example/q#192.0.2.1", 0, NULL, 0, 0, NULL, "the URL's host is not a host name"},
	{"https://192.0.2.1/a b", 0, NULL, 0, 0, NULL, "not printable ASCII"},
	{"tls://dns.example", 0, NULL, 0, 0, NULL, "takes an IP address"},
	{"tls://", 0, NULL, 0, 0, NULL, "needs an IP address"},
	{"tls://#dns.example", 0, NULL, 0, 0, NULL, "needs an IP address"},
	{"tls://192.0.2.1:0", 0, NULL, 0, 0, NULL, "takes an IP address"},
	{"tls://192.0.2.1:853/dns-query", 0, NULL, 0, 0, NULL, "takes an IP address"},
	{"tls://192.0.2.1#", 0, NULL, 0, 0, NULL, "1 to 253 characters"},
	{"tls://192.0.2.1#a..b", 0, NULL, 0, 0, NULL, "empty label"},
	{"tls://192.0.2.1#-a.b", 0, NULL, 0, 0, NULL, "not a host name"},
	{"tls://192.0.2.1#a-.b", 0, NULL, 0, 0, NULL, "ending in '-'"},
	{"tls://192.0.2.1#a_b", 0, NULL, 0, 0, NULL, "not a host name"},
	{"tls://192.0.2.1#dns.example.", 0, NULL, 0, 0, NULL, "empty label"},
	{"tls://192.0.2.1#aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.b", 0, NULL,
	 0, 0, NULL, "not a host name"},	/* a 64-octet label */
	{"TLS://192.0.2.1", 0, NULL, 0, 0, NULL, "unknown scheme"},
	{"udp://192.0.2.1", 0, NULL, 0, 0, NULL, "unknown scheme"},
	{"dns.example", 0, NULL, 0, 0, NULL, "expected IPv4"},
};

static void
test_parse(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
		const struct parse_case *c = &parse_cases[i];
		struct config_addr a;
		const char *why = NULL;
		memset(&a, 0xa5, sizeof(a));
		int rc = config_parse_upstream(c->text, &a, &why);
		if (c->family == 0) {
			if (rc != -EINVAL || why == NULL || strstr(why, c->why) == NULL)
				fprintf(stderr, "case '%s': rc %d, why '%s'\n", c->text, rc,
				        why ? why : "(null)");
			assert_int_equal(rc, -EINVAL);
			assert_non_null(strstr(why, c->why));
			continue;
		}
		if (rc != 0)
			fprintf(stderr, "case '%s': %s\n", c->text, why);
		assert_int_equal(rc, 0);
		char buf[INET6_ADDRSTRLEN];
		uint16_t port;
		assert_int_equal(a.ss.ss_family, c->family);
		if (c->family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.ss;
			inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
			port = ntohs(sin->sin_port);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.ss;
			inet_ntop(AF_INET6, &sin6->sin6_addr, buf, sizeof(buf));
			port = ntohs(sin6->sin6_port);
		}
		assert_string_equal(buf, c->addr);
		assert_int_equal(port, c->port);
		assert_int_equal(a.transport, c->transport);
		if (c->name == NULL)
			assert_null(a.tls_name);
		else
			assert_string_equal(a.tls_name, c->name);
		if (c->transport == CONFIG_TRANSPORT_HTTPS)
			assert_string_equal(a.url, c->why);
		else
			assert_null(a.url);
		assert_null(a.text);
		free(a.tls_name);
		free(a.url);
	}
}

static const struct error_case error_cases[] = {
        {"https", "upstream:\n  servers: [\"https://dns.example/dns-query\"]\n",
         "t.yaml:2:13: upstream.servers[0]: bad address 'https://dns.example/dns-query' (a host "
         "name needs its address after '#' (Veto does not resolve it): "
         "https://dns.example/dns-query#192.0.2.1)"},
        {"tls name", "upstream:\n  servers: [192.0.2.1, \"tls://192.0.2.2#x_y\"]\n",
         "t.yaml:2:24: upstream.servers[1]: bad address 'tls://192.0.2.2#x_y' (the name after "
         "'#' is not a host name (letters, digits, '-', '.'))"},
        {"tls_ca not a string", "upstream:\n  tls_ca: [a]\n",
         "t.yaml:2:3: upstream.tls_ca: expected a string, got a sequence"},
};

static void
test_errors(void **state)
{
	(void)state;
	assert_int_equal(
	        run_cases(error_cases, sizeof(error_cases) / sizeof(error_cases[0]), false), 0);
}

static void
test_loaded(void **state)
{
	(void)state;
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = load("upstream:\n"
	              "  servers: [\"tls://192.0.2.1#Dns.Example\", 192.0.2.2, \"tls://[::1]:8853\",\n"
	              "            \"https://dns.example/dns-query#192.0.2.3\"]\n"
	              "  tls_ca: /etc/veto/ca.pem\n",
	              &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_int_equal(cfg->upstream.nservers, 4);
	assert_int_equal(cfg->upstream.servers[3].transport, CONFIG_TRANSPORT_HTTPS);
	assert_string_equal(cfg->upstream.servers[3].url, "https://dns.example/dns-query");
	assert_string_equal(cfg->upstream.servers[3].tls_name, "dns.example");
	assert_int_equal(cfg->upstream.servers[0].transport, CONFIG_TRANSPORT_TLS);
	assert_string_equal(cfg->upstream.servers[0].tls_name, "dns.example");
	assert_string_equal(cfg->upstream.servers[0].text, "tls://192.0.2.1#Dns.Example");
	assert_int_equal(cfg->upstream.servers[1].transport, CONFIG_TRANSPORT_DNS);
	assert_null(cfg->upstream.servers[1].tls_name);
	assert_int_equal(cfg->upstream.servers[2].transport, CONFIG_TRANSPORT_TLS);
	assert_null(cfg->upstream.servers[2].tls_name);
	assert_string_equal(cfg->upstream.tls_ca, "/etc/veto/ca.pem");
	config_free(&cfg);
	diag_clear(&d);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_errors),
	        cmocka_unit_test(test_loaded),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
