/*
 * test_http: the listener's pure parts: the argument parser (query strings and forms), the HTML
 * escaper, the response builder, SHA-256 and the Prometheus rendering of struct metrics.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_int.h"
#include "http_metrics.h"

static void
test_args_parse(void **state)
{
	(void)state;
	static const struct {
		const char *in;
		int rc;
		const char *key, *want; /* want NULL: absent */
	} cases[] = {
	        {"a=1&b=2", 0, "b", "2"},
	        {"list=a&list=b&list=c", 0, "list", "a,b,c"},
	        {"q=hello+world%21", 0, "q", "hello world!"},
	        {"q=%e2%82%ac", 0, "q", "\xe2\x82\xac"},
	        {"flag", 0, "flag", ""},
	        {"&&a=1&&", 0, "a", "1"},
	        {"=x&a=1", 0, "", NULL},
	        {"a=%4", -EINVAL, "a", NULL},
	        {"a=%zz", -EINVAL, "a", NULL},
	        {"a=%00", -EINVAL, "a", NULL},
	        {"a%3db=c", 0, "a=b", "c"},
	        {"", 0, "a", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_args a;
		http_args_init(&a);
		int rc = http_args_parse(&a, cases[i].in, strlen(cases[i].in));
		assert_int_equal(rc, cases[i].rc);
		if (rc == 0) {
			const char *got = http_args_get(&a, cases[i].key);
			if (cases[i].want == NULL)
				assert_null(got);
			else
				assert_string_equal(got, cases[i].want);
		}
		http_args_clear(&a);
	}
}

static void
test_args_bounds(void **state)
{
	(void)state;
	struct http_args a;
	char text[HTTP_ARGS_MAX * 8 + 16];
	size_t off = 0;

	http_args_init(&a);
	for (int i = 0; i <= HTTP_ARGS_MAX; i++)
		off += (size_t)snprintf(text + off, sizeof(text) - off, "k%d=v&", i);
	assert_int_equal(http_args_parse(&a, text, off), -E2BIG);
	http_args_clear(&a);

	char *big = malloc(HTTP_ARGS_BYTES + 10);
	assert_non_null(big);
	memset(big, 'x', HTTP_ARGS_BYTES + 10);
	big[0] = 'a';
	big[1] = '=';
	assert_int_equal(http_args_parse(&a, big, HTTP_ARGS_BYTES + 10), -E2BIG);
	http_args_clear(&a);
	free(big);
	/* a repeated key cannot grow past the budget either */
	char val[1024];
	memset(val, 'v', sizeof(val) - 1);
	val[sizeof(val) - 1] = '\0';
	int rc = 0;
	for (int i = 0; i < 100 && rc == 0; i++)
		rc = http_args_add(&a, "k", val);
	assert_int_equal(rc, -E2BIG);
	assert_true(a.bytes <= HTTP_ARGS_BYTES);
	http_args_clear(&a);
}

static void
test_html_escape(void **state)
{
	(void)state;
	static const struct {
		const char *in, *want;
	} cases[] = {
	        {"plain", "plain"},
	        {"<script>alert('x')</script>", "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;"},
	        {"a & \"b\"", "a &amp; &quot;b&quot;"},
	        {"caf\xc3\xa9 \xe2\x82\xac", "caf\xc3\xa9 \xe2\x82\xac"},
	        {"bad\xff!", "bad\xef\xbf\xbd!"},
	        {"over\xc0\xaf", "over\xef\xbf\xbd\xef\xbf\xbd"},
	        {"surrogate\xed\xa0\x80", "surrogate\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	        {"cut\xe2\x82", "cut\xef\xbf\xbd\xef\xbf\xbd"},
	        {"bell\x07tab\tnl\n", "bell\xef\xbf\xbdtab\tnl\n"},
	        {"", ""},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_resp r;
		http_resp_init(&r);
		assert_int_equal(http_resp_html(&r, cases[i].in), 0);
		assert_int_equal(r.len, strlen(cases[i].want));
		assert_memory_equal(r.body, cases[i].want, r.len);
		http_resp_clear(&r);
	}
}

static void
test_resp_headers(void **state)
{
	(void)state;
	struct http_resp r;
	http_resp_init(&r);
	assert_int_equal(http_resp_header(&r, "X-A", "ok"), 0);
	assert_int_equal(http_resp_header(&r, "X-B", "bad\r\nSet-Cookie: x=y"), -EINVAL);
	http_resp_redirect(&r, "/x");
	assert_int_equal(r.status, 303);
	assert_int_equal(r.nheaders, 2);
	assert_string_equal(r.headers[1].value, "/x");
	char big[5000];
	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	assert_int_equal(http_resp_printf(&r, "%s|%d", big, 7), 0);
	assert_int_equal(r.len, sizeof(big) - 1 + 2);
	http_resp_clear(&r);
}

static void
test_sha256(void **state)
{
	(void)state;
	static const struct {
		const char *in, *hex;
	} cases[] = {
	        {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	        {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	         "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		uint8_t h[32];
		char hex[65];
		sha256(cases[i].in, strlen(cases[i].in), h);
		for (size_t k = 0; k < 32; k++)
			snprintf(hex + 2 * k, 3, "%02x", h[k]);
		assert_string_equal(hex, cases[i].hex);
	}
}

static void
test_metrics_labels_escaped(void **state)
{
	(void)state;
	static struct metrics m;
	struct http_resp r;

	memset(&m, 0, sizeof(m));
	m.ngroups = 1;
	snprintf(m.groups[0], sizeof(m.groups[0]), "we\"ird\\gr\noup");
	m.counts.by_group[0][2] = 3;
	m.nlists = 1;
	snprintf(m.lists[0].name, sizeof(m.lists[0].name), "ads");
	m.lists[0].entries = 12;
	http_resp_init(&r);
	assert_int_equal(http_metrics_render(&m, &r), 0);
	assert_non_null(strstr(r.body, "veto_group_queries_total{group=\"we\\\"ird\\\\gr\\noup\","
	                               "action=\"sinkhole\"} 3\n"));
	assert_non_null(strstr(r.body, "veto_list_entries{list=\"ads\"} 12\n"));
	assert_non_null(strstr(r.body, "# TYPE veto_queries_total counter\n"));
	http_resp_clear(&r);
}

static int
fake_handler(void *ctx, const struct http_req *req, struct http_resp *resp)
{
	(void)ctx;
	(void)req;
	(void)resp;
	return 0;
}

static void
test_route_refusal(void **state)
{
	(void)state;
	const struct http_route pub = {"/login", HTTP_ROLE_NONE, true, fake_handler, NULL};
	const struct http_route read = {"/metrics", HTTP_ROLE_READ, false, fake_handler, NULL};
	const struct http_route admin = {"/devices/forget", HTTP_ROLE_ADMIN, true, fake_handler,
	                                 NULL};
	static const struct {
		int route; /* 0 none, 1 pub, 2 read, 3 admin */
		bool post;
		enum http_role role;
		int want;
	} cases[] = {
	        {0, false, HTTP_ROLE_ADMIN, 404}, {1, false, HTTP_ROLE_NONE, 0},
	        {1, true, HTTP_ROLE_NONE, 0},     {2, false, HTTP_ROLE_NONE, 401},
	        {2, false, HTTP_ROLE_READ, 0},    {2, true, HTTP_ROLE_ADMIN, 405},
	        {3, true, HTTP_ROLE_NONE, 401},   {3, true, HTTP_ROLE_READ, 403},
	        {3, false, HTTP_ROLE_READ, 403},  {3, true, HTTP_ROLE_ADMIN, 0},
	};
	const struct http_route *routes[] = {NULL, &pub, &read, &admin};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct http_req req;
		memset(&req, 0, sizeof(req));
		req.post = cases[i].post;
		req.role = cases[i].role;
		assert_int_equal(http_route_refusal(routes[cases[i].route], &req), cases[i].want);
	}
}

static void
test_origin_and_host(void **state)
{
	(void)state;
	assert_true(http_origin_ok(NULL, "127.0.0.1:9153"));
	assert_true(http_origin_ok("http://127.0.0.1:9153", "127.0.0.1:9153"));
	assert_true(http_origin_ok("http://DNS.lan:9153", "dns.lan:9153"));
	assert_false(http_origin_ok("http://evil.example", "127.0.0.1:9153"));
	assert_false(http_origin_ok("http://127.0.0.1:9154", "127.0.0.1:9153"));
	assert_false(http_origin_ok("https://127.0.0.1:9153", "127.0.0.1:9153"));
	assert_false(http_origin_ok("null", "127.0.0.1:9153"));
	assert_false(http_origin_ok("http://127.0.0.1:9153", NULL));

	static const struct {
		const char *host;
		bool local;
	} hosts[] = {
	        {"127.0.0.1:9153", true}, {"127.1.2.3", true},
	        {"localhost:80", true},   {"LOCALHOST", true},
	        {"[::1]:9153", true},     {"[::1]", true},
	        {"evil.example", false},  {"127.0.0.1.evil.example:80", false},
	        {"10.0.0.1:9153", false}, {"[::2]:80", false},
	        {"[::1", false},          {"", false},
	        {":80", false},
	};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++)
		assert_int_equal(http_host_is_local(hosts[i].host), hosts[i].local);
	assert_false(http_host_is_local(NULL));
}

static void
test_log_safe(void **state)
{
	(void)state;
	char buf[12];
	assert_string_equal(http_log_safe("alice", buf, sizeof(buf)), "alice");
	assert_string_equal(http_log_safe("a\nb\r\x7f", buf, sizeof(buf)), "a?b??");
	assert_string_equal(http_log_safe("0123456789ab", buf, sizeof(buf)), "01234567...");
	assert_string_equal(http_log_safe("0123456789a", buf, sizeof(buf)), "0123456789a");
	assert_string_equal(http_log_safe("", buf, sizeof(buf)), "");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_args_parse),    cmocka_unit_test(test_args_bounds),
	        cmocka_unit_test(test_html_escape),   cmocka_unit_test(test_resp_headers),
	        cmocka_unit_test(test_sha256),        cmocka_unit_test(test_metrics_labels_escaped),
	        cmocka_unit_test(test_route_refusal), cmocka_unit_test(test_origin_and_host),
	        cmocka_unit_test(test_log_safe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
