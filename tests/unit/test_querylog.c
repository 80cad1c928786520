/*
 * test_querylog: JSON line format, ring overflow, reopen, flush on free, write errors, and a
 * reload's log settings (querylog_reconfigure): mode, file, database, retention.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "config.h"
#include "querylog.h"
#include "querylog_int.h"

#define TS_EXAMPLE 1795319902123ull /* 2026-11-22T03:58:22.123Z */

/* ---- helpers ---- */

static void
set_addr(struct sockaddr_storage *ss, const char *ip, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		assert_int_equal(inet_pton(AF_INET6, ip, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
	}
}

/* Dotted lowercase name without escapes -> wire. "." is the root. */
static void
set_qname(struct querylog_record *r, const char *text)
{
	struct names_name n;
	const char *why;

	assert_int_equal(names_from_text(&n, text, strlen(text), &why), 0);
	querylog_record_set_name(r, &n);
}

static void
set_wire(struct querylog_record *r, const uint8_t *wire, size_t len)
{
	memcpy(r->qname_wire, wire, len);
	r->qname_len = (uint8_t)len;
}

static void
base_record(struct querylog_record *r)
{
	memset(r, 0, sizeof(*r));
	r->ts_ms = TS_EXAMPLE;
	set_addr(&r->client, "10.0.0.7", 40000);
	set_qname(r, "tracking.miui.com");
	r->qtype = 1;
	r->rule_label = -1;
	r->action = QUERYLOG_ACTION_FORWARD;
	r->latency_us = 41;
}

static void
set_str(char *dst, const char *src)
{
	memset(dst, 0, QUERYLOG_NAME_MAX);
	memcpy(dst, src, strnlen(src, QUERYLOG_NAME_MAX));
}

/* ---- format ---- */

static void
mk_example(struct querylog_record *r)
{
	r->has_group = true;
	set_str(r->group, "lab");
	r->blocked = true;
	r->has_list = true;
	set_str(r->list, "xiaomi");
	r->rule_label = 1;
	r->action = QUERYLOG_ACTION_SINKHOLE;
}

static void
mk_ipv6(struct querylog_record *r)
{
	set_addr(&r->client, "2001:db8::7", 5353);
	set_addr(&r->upstream, "2001:db8::53", 53);
	set_qname(r, "www.example.org");
	r->qtype = 28;
	r->tcp = true;
	r->latency_us = 1234567;
}

static void
mk_mapped(struct querylog_record *r)
{
	set_addr(&r->client, "::ffff:192.0.2.9", 1);
	set_addr(&r->upstream, "::ffff:192.0.2.1", 5353);
	r->action = QUERYLOG_ACTION_CACHE;
	r->rcode = 3;
	r->latency_us = 0;
}

static void
mk_no_question(struct querylog_record *r)
{
	memset(&r->client, 0, sizeof(r->client));
	r->qname_len = 0;
	r->rule_label = 2;
	r->action = QUERYLOG_ACTION_FORMERR;
	r->rcode = 1;
}

static void
mk_escapes(struct querylog_record *r)
{
	/* labels: a"b\c<NUL>  and  x.y<DEL>  (a dot inside a label) */
	static const uint8_t wire[] = { 6, 'a', '"', 'b', '\\', 'c', 0, 4, 'x', '.', 'y', 0x7f, 0 };

	set_wire(r, wire, sizeof(wire));
	r->has_group = true;
	set_str(r->group, "q\"b\\s\n\t\x01 \xc3\xa9");
	r->has_list = true;
	set_str(r->list, "bad\xff utf8 \xe2\x82");
	r->rule_label = 1;
	r->qtype = 65;
}

static void
mk_root(struct querylog_record *r)
{
	set_qname(r, ".");
	r->qtype = 2;
	r->rule_label = 0;
	r->blocked = true;
	r->action = QUERYLOG_ACTION_REFUSED;
	r->rcode = 5;
}

static void
mk_rule_whole(struct querylog_record *r)
{
	r->rule_label = 0;
	r->qtype = 65534;
	r->action = QUERYLOG_ACTION_NXDOMAIN;
	r->rcode = 3;
	r->blocked = true;
}

static void
mk_rule_out_of_range(struct querylog_record *r)
{
	r->rule_label = 4; /* the name has 3 labels: 0..3 are valid */
	r->action = QUERYLOG_ACTION_NODATA;
}

static void
mk_group_full(struct querylog_record *r)
{
	r->has_group = true;
	memset(r->group, 'g', sizeof(r->group)); /* no NUL: exactly 64 octets */
	r->action = QUERYLOG_ACTION_SERVFAIL;
	r->rcode = 2;
}

static void
mk_notimp(struct querylog_record *r)
{
	r->action = QUERYLOG_ACTION_NOTIMP;
	r->rcode = 4;
	r->qtype = 16;
	r->ts_ms = 0;
}

struct fmt_case {
	const char *what;
	void (*mk)(struct querylog_record *r);
	const char *line;
};

static void
mk_device(struct querylog_record *r)
{
	static const uint8_t mac[6] = { 0x02, 0x1a, 0xff, 0x00, 0x0b, 0xc9 };

	mk_example(r);
	memcpy(r->mac, mac, 6);
	r->has_mac = true;
	memcpy(r->device, "Redmi-Note-12 \"lab\"", sizeof("Redmi-Note-12 \"lab\""));
	memcpy(r->vendor, "Xiaomi", sizeof("Xiaomi"));
	r->vendor_source = IDENTITY_SRC_SIGNATURE;
}

static void
mk_device_full(struct querylog_record *r)
{
	/* arrays filled to the last octet (no NUL), an unknown source is null */
	memset(r->device, 'd', sizeof(r->device));
	memset(r->vendor, 'v', sizeof(r->vendor));
	r->vendor_source = 200;
}

static void
mk_vendor_sources(struct querylog_record *r)
{
	memcpy(r->vendor, "Huawei", sizeof("Huawei"));
	r->vendor_source = IDENTITY_SRC_OUI;
}

static const struct fmt_case fmt_cases[] = {
	{ "device fields", mk_device,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":\"lab\",\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":true,"
	  "\"list\":\"xiaomi\",\"rule\":\"miui.com\",\"action\":\"sinkhole\",\"rcode\":\"NOERROR\","
	  "\"upstream\":null,\"latency_us\":41,\"mac\":\"02:1a:ff:00:0b:c9\","
	  "\"device\":\"Redmi-Note-12 \\\"lab\\\"\",\"vendor\":\"Xiaomi\",\"vendor_source\":\"signature\"}\n" },
	{ "device fields of full length", mk_device_full,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"forward\",\"rcode\":\"NOERROR\","
	  "\"upstream\":null,\"latency_us\":41,\"mac\":null,"
	  "\"device\":\"dddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddddd\","
	  "\"vendor\":\"vvvvvvvvvvvvvvvvvvvvvvvvvvvvvvvv\",\"vendor_source\":null}\n" },
	{ "vendor from the oui", mk_vendor_sources,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"forward\",\"rcode\":\"NOERROR\","
	  "\"upstream\":null,\"latency_us\":41,\"mac\":null,\"device\":null,"
	  "\"vendor\":\"Huawei\",\"vendor_source\":\"oui\"}\n" },
	{ "header example", mk_example,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":\"lab\",\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":true,"
	  "\"list\":\"xiaomi\",\"rule\":\"miui.com\",\"action\":\"sinkhole\",\"rcode\":\"NOERROR\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "ipv6 tcp forward", mk_ipv6,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"2001:db8::7\",\"proto\":\"tcp\","
	  "\"group\":null,\"qname\":\"www.example.org\",\"qtype\":\"AAAA\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"forward\",\"rcode\":\"NOERROR\","
	  "\"upstream\":\"[2001:db8::53]:53\",\"latency_us\":1234567,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "ipv4-mapped", mk_mapped,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"192.0.2.9\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"cache\",\"rcode\":\"NXDOMAIN\","
	  "\"upstream\":\"192.0.2.1:5353\",\"latency_us\":0,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "no question", mk_no_question,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":null,\"proto\":\"udp\","
	  "\"group\":null,\"qname\":null,\"qtype\":null,\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"formerr\",\"rcode\":\"FORMERR\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "escapes", mk_escapes,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":\"q\\\"b\\\\s\\n\\t\\u0001 \xc3\xa9\","
	  "\"qname\":\"a\\\\034b\\\\092c\\\\000.x\\\\046y\\\\127\",\"qtype\":\"HTTPS\","
	  "\"blocked\":false,\"list\":\"bad\\ufffd utf8 \\ufffd\\ufffd\","
	  "\"rule\":\"x\\\\046y\\\\127\",\"action\":\"forward\",\"rcode\":\"NOERROR\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "root", mk_root,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\".\",\"qtype\":\"NS\",\"blocked\":true,"
	  "\"list\":null,\"rule\":\".\",\"action\":\"refused\",\"rcode\":\"REFUSED\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "rule is the whole name", mk_rule_whole,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\"tracking.miui.com\",\"qtype\":\"TYPE65534\",\"blocked\":true,"
	  "\"list\":null,\"rule\":\"tracking.miui.com\",\"action\":\"nxdomain\","
	  "\"rcode\":\"NXDOMAIN\",\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "rule label out of range", mk_rule_out_of_range,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"nodata\",\"rcode\":\"NOERROR\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "group of 64 octets", mk_group_full,
	  "{\"ts\":\"2026-11-22T03:58:22.123Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":\"gggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggggg\","
	  "\"qname\":\"tracking.miui.com\",\"qtype\":\"A\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"servfail\",\"rcode\":\"SERVFAIL\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
	{ "notimp at the epoch", mk_notimp,
	  "{\"ts\":\"1970-01-01T00:00:00.000Z\",\"client\":\"10.0.0.7\",\"proto\":\"udp\","
	  "\"group\":null,\"qname\":\"tracking.miui.com\",\"qtype\":\"TXT\",\"blocked\":false,"
	  "\"list\":null,\"rule\":null,\"action\":\"notimp\",\"rcode\":\"NOTIMP\","
	  "\"upstream\":null,\"latency_us\":41,"
	  "\"mac\":null,\"device\":null,\"vendor\":null,\"vendor_source\":null}\n" },
};

static void
test_format_table(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(fmt_cases) / sizeof(fmt_cases[0]); i++) {
		struct querylog_record r;
		char buf[QUERYLOG_LINE_MAX];

		base_record(&r);
		fmt_cases[i].mk(&r);
		size_t n = querylog_format(&r, buf, sizeof(buf));
		if (n != strlen(fmt_cases[i].line) || strcmp(buf, fmt_cases[i].line) != 0)
			fail_msg("case '%s':\n got  %s want %s", fmt_cases[i].what, buf,
				 fmt_cases[i].line);
		assert_int_equal(n, strlen(buf));
	}
}

static void
test_format_every_action(void **state)
{
	static const char *const names[] = { "forward", "cache", "sinkhole", "nxdomain", "nodata",
					     "refused", "servfail", "formerr", "notimp", "stale" };
	(void)state;
	assert_int_equal(sizeof(names) / sizeof(names[0]), QUERYLOG_ACTION_STALE + 1);
	for (unsigned a = 0; a <= QUERYLOG_ACTION_STALE; a++) {
		struct querylog_record r;
		char buf[2048], want[64];

		base_record(&r);
		r.action = (uint8_t)a;
		assert_true(querylog_format(&r, buf, sizeof(buf)) > 0);
		snprintf(want, sizeof(want), ",\"action\":\"%s\",", names[a]);
		if (strstr(buf, want) == NULL)
			fail_msg("action %u: '%s' not in %s", a, want, buf);
	}
}

static void
test_format_addresses(void **state)
{
	static const struct {
		const char *ip;
		uint16_t port;
		const char *client, *upstream;
	} cases[] = {
		{ "0.0.0.0", 0, "\"0.0.0.0\"", "\"0.0.0.0:0\"" },
		{ "255.255.255.255", 65535, "\"255.255.255.255\"", "\"255.255.255.255:65535\"" },
		{ "127.0.10.100", 53, "\"127.0.10.100\"", "\"127.0.10.100:53\"" },
		{ "::1", 53, "\"::1\"", "\"[::1]:53\"" },
		{ "::", 5353, "\"::\"", "\"[::]:5353\"" },
		{ "::ffff:1.2.3.4", 853, "\"1.2.3.4\"", "\"1.2.3.4:853\"" },
		{ "fe80::1:2", 1, "\"fe80::1:2\"", "\"[fe80::1:2]:1\"" },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct querylog_record r;
		char buf[2048], want_c[80], want_u[80];

		base_record(&r);
		set_addr(&r.client, cases[i].ip, cases[i].port);
		set_addr(&r.upstream, cases[i].ip, cases[i].port);
		assert_true(querylog_format(&r, buf, sizeof(buf)) > 0);
		snprintf(want_c, sizeof(want_c), "\"client\":%s,", cases[i].client);
		snprintf(want_u, sizeof(want_u), "\"upstream\":%s,", cases[i].upstream);
		if (strstr(buf, want_c) == NULL || strstr(buf, want_u) == NULL)
			fail_msg("case %s: %s", cases[i].ip, buf);
	}
}

/* Worst case: every octet escaped twice (\DDD, then the backslash for JSON), in qname, rule,
 * group and list: the line still fits QUERYLOG_LINE_MAX and a short buffer gives 0. */
static void
test_format_worst_case(void **state)
{
	struct querylog_record r;
	static char buf[QUERYLOG_LINE_MAX];
	size_t o = 0;

	(void)state;
	base_record(&r);
	for (int l = 0; l < 4; l++) {
		size_t len = l < 3 ? 63 : 61;
		r.qname_wire[o++] = (uint8_t)len;
		memset(r.qname_wire + o, 0, len);
		o += len;
	}
	r.qname_wire[o++] = 0;
	assert_int_equal(o, NAMES_MAX_WIRE);
	r.qname_len = (uint8_t)o;
	r.rule_label = 0;
	r.has_group = r.has_list = true;
	memset(r.group, 1, sizeof(r.group));
	memset(r.list, 0xff, sizeof(r.list));
	memset(r.device, 1, sizeof(r.device));
	memset(r.vendor, 0x7f, sizeof(r.vendor));
	r.has_mac = true;
	memset(r.mac, 0xff, sizeof(r.mac));
	r.vendor_source = IDENTITY_SRC_HOSTNAME;
	set_addr(&r.client, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	set_addr(&r.upstream, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 65535);
	r.latency_us = UINT32_MAX;
	r.ts_ms = UINT64_C(253402300799999); /* 9999-12-31T23:59:59.999Z */

	size_t n = querylog_format(&r, buf, sizeof(buf));
	assert_true(n > 2048);
	assert_true(n < QUERYLOG_LINE_MAX);
	assert_int_equal(buf[n - 1], '\n');
	assert_non_null(strstr(buf, "\"ts\":\"9999-12-31T23:59:59.999Z\""));
	assert_non_null(strstr(buf, "\"latency_us\":4294967295,\"mac\":\"ff:ff:ff:ff:ff:ff\""));
	assert_non_null(strstr(buf, ",\"vendor_source\":\"hostname\"}\n"));

	/* too small: 0 and an empty string, never a cut line */
	assert_int_equal(querylog_format(&r, buf, 2048), 0);
	assert_int_equal(buf[0], '\0');
	assert_int_equal(querylog_format(&r, buf, n), 0);
	assert_int_equal(querylog_format(&r, buf, n + 1), n);
	assert_int_equal(querylog_format(&r, buf, 0), 0);
}

/* ---- files and capture ---- */

static char tmpdir[256];

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_querylog.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	return 0;
}

static int
teardown_dir(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
tmp_path(char *buf, size_t cap, const char *name)
{
	snprintf(buf, cap, "%s/%s", tmpdir, name);
}

/* Reads a whole file into a malloc'd NUL-terminated buffer. */
static char *
slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (f == NULL)
		return NULL;
	for (;;) {
		if (cap - n < 4096) {
			cap = cap * 2 + 4096;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		if (got == 0)
			break;
		n += got;
	}
	fclose(f);
	buf[n] = '\0';
	if (len != NULL)
		*len = n;
	return buf;
}

static size_t
count_lines(const char *s)
{
	size_t c = 0;

	for (; *s != '\0'; s++)
		c += *s == '\n';
	return c;
}

/* Redirects stderr to a file while capturing operational messages. */
struct capture {
	int saved;
	char path[300];
};

static void
capture_start(struct capture *c, const char *name)
{
	tmp_path(c->path, sizeof(c->path), name);
	int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	assert_true(fd >= 0);
	fflush(stderr);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

static char *
capture_end(struct capture *c)
{
	fflush(stderr);
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	return slurp(c->path, NULL);
}

static void
cfg_init(struct config *cfg, enum config_log_queries q, const char *file)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->log.queries = q;
	cfg->log.file = (char *)(uintptr_t)file;
}

static void
numbered(struct querylog_record *r, uint32_t i)
{
	base_record(r);
	r->latency_us = i;
}

/* The file holds exactly the records numbered first..first+n-1, in order. */
static void
assert_lines(const char *text, uint32_t first, size_t n)
{
	const char *p = text;

	assert_int_equal(count_lines(text), n);
	for (uint32_t i = first; i < first + n; i++) {
		struct querylog_record r;
		char want[QUERYLOG_LINE_MAX];

		numbered(&r, i);
		size_t len = querylog_format(&r, want, sizeof(want));
		if (strncmp(p, want, len) != 0)
			fail_msg("record %u: got %.*s want %s", i, (int)len, p, want);
		p += len;
	}
	assert_int_equal(*p, '\0');
}

static void
sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

/* Waits up to 5 s for path to hold n lines. */
static void
wait_lines(const char *path, size_t n)
{
	for (int i = 0; i < 500; i++) {
		char *t = slurp(path, NULL);
		size_t c = t != NULL ? count_lines(t) : 0;
		free(t);
		if (c >= n)
			return;
		sleep_ms(10);
	}
	fail_msg("'%s' never reached %zu lines", path, n);
}

/* ---- runtime tests ---- */

/* server.workers: several threads submit at once (querylog_set_producers). Blocked records
 * (never dropped) through a small ring, so that the evidence overflow is used too: every
 * record arrives once, each thread's in its order. */
#define PRODUCERS 3
#define PER_PRODUCER 20000u

struct producer {
	struct querylog *ql;
	uint32_t base;
};

static void *
produce(void *arg)
{
	struct producer *p = arg;
	struct querylog_record r;

	for (uint32_t i = 0; i < PER_PRODUCER; i++) {
		numbered(&r, p->base + i);
		r.blocked = true;
		if (querylog_submit(p->ql, &r) != 0)
			return (void *)1;
	}
	return NULL;
}

static void
test_several_producers(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct producer prod[PRODUCERS];
	pthread_t th[PRODUCERS];
	uint32_t next[PRODUCERS] = {0};

	(void)state;
	tmp_path(path, sizeof(path), "producers.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	assert_int_equal(querylog_new_capacity(&cfg, 1024, &ql), 0);
	querylog_set_producers(ql, PRODUCERS);
	for (int t = 0; t < PRODUCERS; t++) {
		prod[t] = (struct producer){ql, (uint32_t)t * 1000000u};
		assert_int_equal(pthread_create(&th[t], NULL, produce, &prod[t]), 0);
	}
	for (int t = 0; t < PRODUCERS; t++) {
		void *rc;
		assert_int_equal(pthread_join(th[t], &rc), 0);
		assert_null(rc);
	}
	assert_int_equal(querylog_dropped(ql), 0);
	querylog_free(&ql);

	char *text = slurp(path, NULL);
	assert_non_null(text);
	assert_int_equal(count_lines(text), PRODUCERS * PER_PRODUCER);
	/* line by line: strstr over the whole 20 MB text is quadratic under ASan (its
	 * interceptor measures the haystack on every call) */
	for (char *line = text, *nl; *line != '\0'; line = nl + 1) {
		nl = strchr(line, '\n');
		assert_non_null(nl);
		*nl = '\0';
		const char *p = strstr(line, "\"latency_us\":");
		assert_non_null(p);
		unsigned long v = strtoul(p + 13, NULL, 10);
		unsigned t = (unsigned)(v / 1000000u);
		assert_true(t < PRODUCERS);
		if (v % 1000000u != next[t])
			fail_msg("producer %u: record %lu, expected %u", t, v % 1000000u, next[t]);
		next[t]++;
	}
	for (int t = 0; t < PRODUCERS; t++)
		assert_int_equal(next[t], PER_PRODUCER);
	free(text);
}

static void
test_free_flushes_all(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	const uint32_t n = 5000;

	(void)state;
	tmp_path(path, sizeof(path), "flush.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	assert_non_null(ql);
	for (uint32_t i = 0; i < n; i++) {
		numbered(&r, i);
		while (querylog_submit(ql, &r) == -ENOBUFS)
			fail_msg("ring full with %u records", n);
	}
	querylog_free(&ql);
	assert_null(ql);
	assert_int_equal(querylog_dropped(ql), 0);

	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	mode_t mask = umask(022);
	umask(mask);
	assert_int_equal(st.st_mode & 0777, 0640 & ~mask);

	char *text = slurp(path, NULL);
	assert_non_null(text);
	assert_lines(text, 0, n);
	free(text);
}

static void
test_records_arrive_without_free(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;

	(void)state;
	tmp_path(path, sizeof(path), "prompt.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	numbered(&r, 7);
	assert_int_equal(querylog_submit(ql, &r), 0);
	wait_lines(path, 1); /* the writer's periodic wake-up writes it */
	char *text = slurp(path, NULL);
	assert_lines(text, 7, 1);
	free(text);
	querylog_free(&ql);
}

static void
test_overflow_drops_and_counts(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct capture cap;

	(void)state;
	tmp_path(path, sizeof(path), "overflow.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	cfg.log.evidence_buffer_mb = 1; /* 4 chunks of 256 KiB: forwarded records may fill 2 */
	capture_start(&cap, "overflow.stderr");
	assert_int_equal(querylog_new_capacity(&cfg, 64, &ql), 0);
	querylog_test_pause(ql, true);
	/* forwarded records: 48 of 64 slots (the rest is kept for blocked ones), then the evidence
	 * buffer's first half, packed; then none */
	uint32_t taken = 0;
	for (;;) { /* until the first one refused: it is the first of the 52 */
		numbered(&r, taken);
		if (taken == 100000 || querylog_submit(ql, &r) != 0)
			break;
		taken++;
	}
	assert_true(taken > 48 + 2 * (256u << 10) / 128); /* packed records, at most 128 octets */
	assert_true(taken < 48 + 2 * (256u << 10) / 32);
	assert_int_equal(querylog_test_overflow_chunks(ql), 1); /* one chunk beyond the first */
	for (uint32_t i = 1; i < 52; i++) {
		numbered(&r, taken + i);
		assert_int_equal(querylog_submit(ql, &r), -ENOBUFS);
	}
	assert_int_equal(querylog_dropped(ql), 52);
	assert_int_equal(querylog_unlogged(ql), 52);
	assert_int_equal(querylog_pending(ql), taken);
	sleep_ms(120); /* longer than the writer's sleep: it stays parked */
	assert_int_equal(querylog_pending(ql), taken);

	/* the writer resumes, frees space, submits succeed again */
	querylog_test_pause(ql, false);
	for (int i = 0; i < 500 && querylog_pending(ql) > 0; i++)
		sleep_ms(10);
	assert_int_equal(querylog_pending(ql), 0);
	wait_lines(path, taken + 1); /* the records and the counter line */
	numbered(&r, taken);
	assert_int_equal(querylog_submit(ql, &r), 0);
	querylog_free(&ql);
	char *err = capture_end(&cap);

	assert_non_null(strstr(err, " warning: query log: 52 forwarded queries not stored one by one ("));
	/* once for the burst */
	assert_null(strstr(strstr(err, "not stored one by one") + 1, "not stored one by one"));
	free(err);
	/* the records, and one counter line with the exact number not stored */
	char *text = slurp(path, NULL);
	char *counter = text;
	for (uint32_t i = 0; i < taken; i++)
		counter = strchr(counter, '\n') + 1;
	char *after = strchr(counter, '\n') + 1;
	assert_non_null(strstr(counter, "\"type\":\"unlogged\""));
	assert_ptr_equal(strstr(counter, "\"forwarded\":52}\n") + 16, after);
	assert_lines(after, taken, 1);
	*counter = '\0';
	assert_lines(text, 0, taken);
	free(text);
}

static void
test_reopen_after_rename(void **state)
{
	char path[300], rotated[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct capture cap;

	(void)state;
	tmp_path(path, sizeof(path), "rotate.jsonl");
	tmp_path(rotated, sizeof(rotated), "rotate.jsonl.1");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	capture_start(&cap, "rotate.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	for (uint32_t i = 0; i < 10; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	wait_lines(path, 10);
	assert_int_equal(rename(path, rotated), 0);
	numbered(&r, 10); /* before the reopen: goes to the old (renamed) file */
	assert_int_equal(querylog_submit(ql, &r), 0);
	wait_lines(rotated, 11);
	querylog_reopen(ql);
	for (uint32_t i = 11; i < 16; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	querylog_free(&ql);
	char *err = capture_end(&cap);
	assert_non_null(strstr(err, "reopened"));
	free(err);

	char *old = slurp(rotated, NULL);
	char *cur = slurp(path, NULL);
	assert_non_null(old);
	assert_non_null(cur);
	assert_lines(old, 0, 11);
	assert_lines(cur, 11, 5);
	free(old);
	free(cur);
}

static void
test_reopen_failure_keeps_old_file(void **state)
{
	char sub[300], path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct capture cap;

	(void)state;
	tmp_path(sub, sizeof(sub), "gone");
	assert_int_equal(mkdir(sub, 0700), 0);
	tmp_path(path, sizeof(path), "gone/q.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	capture_start(&cap, "gone.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	int keep = open(path, O_RDONLY);
	assert_true(keep >= 0);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(sub), 0);
	querylog_reopen(ql);
	for (uint32_t i = 0; i < 3; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	querylog_free(&ql);
	char *err = capture_end(&cap);
	assert_non_null(strstr(err, "cannot reopen"));
	free(err);

	char text[8192];
	ssize_t n = read(keep, text, sizeof(text) - 1);
	close(keep);
	assert_true(n > 0);
	text[n] = '\0';
	assert_lines(text, 0, 3);
}

static void
test_dev_full_counts_losses(void **state)
{
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct capture cap;

	(void)state;
	cfg_init(&cfg, CONFIG_LOG_ALL, "/dev/full");
	capture_start(&cap, "full.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	querylog_test_pause(ql, true);
	for (uint32_t i = 0; i < 100; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	querylog_test_pause(ql, false);
	for (int i = 0; i < 500 && querylog_lost(ql) < 100; i++)
		sleep_ms(10);
	assert_int_equal(querylog_lost(ql), 100);
	for (uint32_t i = 0; i < 50; i++) { /* keeps going: later batches fail and count too */
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	querylog_free(&ql);
	char *err = capture_end(&cap);

	const char *w = strstr(err, "query log: '/dev/full': write failed: No space left on device");
	assert_non_null(w);
	assert_null(strstr(strstr(w, "write failed") + 1, "write failed")); /* once per burst */
	assert_non_null(strstr(err, "150 records lost"));
	free(err);
}

/* A full disk that gets space again: RLIMIT_FSIZE makes write(2) fail with EFBIG, then lifting
 * it lets the next batches through; records of failed batches are counted, the file stays
 * line-oriented. */
static void
test_resumes_after_write_errors(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct capture cap;
	struct rlimit old, lim;
	char line[QUERYLOG_LINE_MAX];

	(void)state;
	numbered(&r, 0);
	size_t line_len = querylog_format(&r, line, sizeof(line));
	tmp_path(path, sizeof(path), "efbig.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	capture_start(&cap, "efbig.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);

	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = (rlim_t)(line_len * 5 + line_len / 2); /* 5 lines and a half fit */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);

	querylog_test_pause(ql, true);
	for (uint32_t i = 0; i < 20; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	querylog_test_pause(ql, false);
	for (int i = 0; i < 500 && querylog_pending(ql) > 0; i++)
		sleep_ms(10);
	for (int i = 0; i < 500 && querylog_lost(ql) == 0; i++)
		sleep_ms(10);
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	assert_int_equal(querylog_lost(ql), 15); /* one batch: 5 written, 15 lost */

	for (uint32_t i = 100; i < 110; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
	querylog_free(&ql);
	signal(SIGXFSZ, SIG_DFL);
	char *err = capture_end(&cap);
	assert_non_null(strstr(err, "write failed: File too large"));
	assert_non_null(strstr(err, "writing again; 15 records lost"));
	free(err);

	/* 5 whole lines (the cut sixth was truncated away, not ended with a newline), then the
	 * 10 later records */
	char *text = slurp(path, NULL);
	assert_non_null(text);
	assert_int_equal(count_lines(text), 15);
	char *p = text;
	for (int i = 0; i < 5; i++)
		p = strchr(p, '\n') + 1;
	assert_int_equal(p - text, (ptrdiff_t)(line_len * 5));
	assert_lines(p, 100, 10);
	*p = '\0';
	assert_lines(text, 0, 5);
	free(text);
}

static void
test_none_opens_nothing(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;

	(void)state;
	tmp_path(path, sizeof(path), "none.jsonl");
	cfg_init(&cfg, CONFIG_LOG_NONE, path);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	assert_non_null(ql);
	assert_false(querylog_wants(ql, true));
	assert_false(querylog_wants(ql, false));
	base_record(&r);
	assert_int_equal(querylog_submit(ql, &r), 0);
	querylog_reopen(ql);
	assert_int_equal(querylog_dropped(ql), 0);
	querylog_free(&ql);
	assert_null(ql);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(errno, ENOENT);
}

static void
test_wants_table(void **state)
{
	static const struct {
		enum config_log_queries mode;
		bool blocked, want;
	} cases[] = {
		{ CONFIG_LOG_ALL, false, true },     { CONFIG_LOG_ALL, true, true },
		{ CONFIG_LOG_BLOCKED, false, false }, { CONFIG_LOG_BLOCKED, true, true },
		{ CONFIG_LOG_NONE, false, false },   { CONFIG_LOG_NONE, true, false },
	};
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "wants.jsonl");
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct config cfg;
		struct querylog *ql = NULL;

		cfg_init(&cfg, cases[i].mode, path);
		assert_int_equal(querylog_new(&cfg, &ql), 0);
		if (querylog_wants(ql, cases[i].blocked) != cases[i].want)
			fail_msg("case %zu: mode %d blocked %d", i, cases[i].mode, cases[i].blocked);
		querylog_free(&ql);
	}
	assert_false(querylog_wants(NULL, true));
}

static void
test_open_failure(void **state)
{
	struct config cfg;
	struct querylog *ql = (struct querylog *)(uintptr_t)0x1;
	struct capture cap;
	char path[300];

	(void)state;
	tmp_path(path, sizeof(path), "no/such/dir/q.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	capture_start(&cap, "openfail.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), -ENOENT);
	char *err = capture_end(&cap);
	assert_ptr_equal(ql, (struct querylog *)(uintptr_t)0x1); /* untouched on failure */
	assert_non_null(strstr(err, " error: query log: '"));
	assert_non_null(strstr(err, "no/such/dir/q.jsonl': cannot open: No such file or directory"));
	free(err);
}

static void
test_stdout(void **state)
{
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;

	(void)state;
	tmp_path(path, sizeof(path), "stdout.jsonl");
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	assert_int_equal(dup2(fd, STDOUT_FILENO), STDOUT_FILENO);
	close(fd);

	cfg_init(&cfg, CONFIG_LOG_ALL, "-");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	for (uint32_t i = 0; i < 3; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
		querylog_reopen(ql); /* never reopens standard output */
	}
	querylog_free(&ql);
	assert_true(fcntl(STDOUT_FILENO, F_GETFD) != -1); /* free did not close it */
	assert_int_equal(dup2(saved, STDOUT_FILENO), STDOUT_FILENO);
	close(saved);

	char *text = slurp(path, NULL);
	assert_lines(text, 0, 3);
	free(text);

	/* NULL file means standard output too */
	cfg_init(&cfg, CONFIG_LOG_BLOCKED, NULL);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	querylog_free(&ql);
}

/* ---- reload: querylog_reconfigure ---- */

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* One integer through an independent read-only connection; -1 without a row, or before the
 * writer has made the tables. Waits while the writer holds a lock (on a busy machine it may
 * hold one a while). */
static int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	sqlite3_busy_timeout(db, 20000);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Waits up to 20 s (on a busy machine the writer may wait for the CPU) for it to apply what
 * querylog_reconfigure() handed it. */
static void
wait_applied(struct querylog *ql)
{
	for (int i = 0; i < 2000 && querylog_test_reconfiguring(ql); i++)
		sleep_ms(10);
	assert_false(querylog_test_reconfiguring(ql));
}

/* Waits up to 20 s for sql to give want on the database at path. */
static void
wait_sql(const char *path, const char *sql, int64_t want)
{
	for (int i = 0; i < 2000 && (access(path, F_OK) != 0 || sql_int(path, sql) != want); i++)
		sleep_ms(10);
	assert_int_equal(sql_int(path, sql), want);
}

static void
submit_range(struct querylog *ql, uint32_t first, uint32_t n)
{
	struct querylog_record r;

	for (uint32_t i = first; i < first + n; i++) {
		numbered(&r, i);
		assert_int_equal(querylog_submit(ql, &r), 0);
	}
}

static void
assert_file_lines(const char *path, uint32_t first, size_t n)
{
	char *text = slurp(path, NULL);

	if (text == NULL)
		fail_msg("'%s' is missing", path);
	assert_lines(text, first, n);
	free(text);
}

/* log.queries follows a reload at once, as querylog_wants() (what the loop asks before it
 * submits) shows; a log made with none has no writer and asks to be replaced. */
static void
test_reconfigure_mode(void **state)
{
	static const struct {
		enum config_log_queries mode;
		bool allowed, blocked;	/* querylog_wants() for each */
	} steps[] = {
		{ CONFIG_LOG_ALL, true, true },
		{ CONFIG_LOG_BLOCKED, false, true },
		{ CONFIG_LOG_NONE, false, false },
		{ CONFIG_LOG_ALL, true, true },
		{ CONFIG_LOG_NONE, false, false },
		{ CONFIG_LOG_BLOCKED, false, true },
	};
	char path[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	size_t want = 0;

	(void)state;
	tmp_path(path, sizeof(path), "mode.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		cfg.log.queries = steps[i].mode;
		assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
		if (querylog_wants(ql, false) != steps[i].allowed ||
		    querylog_wants(ql, true) != steps[i].blocked)
			fail_msg("step %zu: mode %d", i, steps[i].mode);
		/* what the loop does: submit what is wanted */
		for (int blocked = 0; blocked < 2; blocked++) {
			if (!querylog_wants(ql, blocked != 0))
				continue;
			numbered(&r, (uint32_t)i);
			r.blocked = blocked != 0;
			assert_int_equal(querylog_submit(ql, &r), 0);
			want++;
		}
		wait_applied(ql);
	}
	querylog_free(&ql);
	char *text = slurp(path, NULL);
	assert_non_null(text);
	assert_int_equal(count_lines(text), want);
	assert_int_equal(want, 6);
	free(text);

	/* made with none: no writer; turning it on asks for a new querylog */
	tmp_path(path, sizeof(path), "mode-none.jsonl");
	cfg_init(&cfg, CONFIG_LOG_NONE, path);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	cfg.log.queries = CONFIG_LOG_ALL;
	assert_int_equal(querylog_reconfigure(ql, &cfg), -EAGAIN);
	assert_false(querylog_wants(ql, true)); /* nothing changed */
	cfg.log.queries = CONFIG_LOG_BLOCKED;
	assert_int_equal(querylog_reconfigure(ql, &cfg), -EAGAIN);
	cfg.log.queries = CONFIG_LOG_NONE;
	assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
	assert_false(querylog_wants(ql, true));
	querylog_free(&ql);
	assert_int_equal(access(path, F_OK), -1);
}

/* log.file moved: the records submitted before the reload are in the old file, those after it
 * in the new one, each exactly once, whether they wait in the ring across the switch (writer
 * paused) or the writer runs while they come. */
static void
test_reconfigure_moves_file(void **state)
{
	char a[300], b[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct capture cap;

	(void)state;
	/* both halves in the ring when the writer takes the new settings */
	tmp_path(a, sizeof(a), "move-a.jsonl");
	tmp_path(b, sizeof(b), "move-b.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, a);
	capture_start(&cap, "move.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	querylog_test_pause(ql, true);
	submit_range(ql, 0, 100);
	cfg.log.file = b;
	assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
	submit_range(ql, 100, 50);
	assert_int_equal(querylog_pending(ql), 150);
	querylog_test_pause(ql, false);
	wait_applied(ql);
	submit_range(ql, 150, 10);
	querylog_free(&ql);
	char *err = capture_end(&cap);
	assert_non_null(strstr(err, "move-a.jsonl': closed"));
	assert_non_null(strstr(err, "writing to '"));
	free(err);
	assert_file_lines(a, 0, 100);
	assert_file_lines(b, 100, 60);

	/* the writer draining while records come, the switch in the middle */
	tmp_path(a, sizeof(a), "move-c.jsonl");
	tmp_path(b, sizeof(b), "move-d.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, a);
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	for (uint32_t i = 0; i < 6000; i += 100) {
		if (i == 3000) {
			cfg.log.file = b;
			assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
		}
		submit_range(ql, i, 100);
		sleep_ms(1);
	}
	uint64_t dropped = querylog_dropped(ql);
	querylog_free(&ql);
	assert_int_equal(dropped, 0);
	assert_file_lines(a, 0, 3000);
	assert_file_lines(b, 3000, 3000);
}

/* A reload that changes only log.queries leaves the file open: a file renamed meanwhile keeps
 * receiving records (nothing was reopened), none is created at the old name. */
static void
test_reconfigure_unchanged_keeps_file(void **state)
{
	char path[300], moved[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct capture cap;

	(void)state;
	tmp_path(path, sizeof(path), "same.jsonl");
	tmp_path(moved, sizeof(moved), "same.jsonl.1");
	cfg_init(&cfg, CONFIG_LOG_ALL, path);
	capture_start(&cap, "same.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	submit_range(ql, 0, 3);
	wait_lines(path, 3);
	assert_int_equal(rename(path, moved), 0);
	cfg.log.queries = CONFIG_LOG_BLOCKED;
	assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
	wait_applied(ql);
	submit_range(ql, 3, 2);
	querylog_free(&ql);
	char *err = capture_end(&cap);
	assert_null(strstr(err, "closed"));
	assert_null(strstr(err, "writing to"));
	free(err);
	assert_file_lines(moved, 0, 5);
	assert_int_equal(access(path, F_OK), -1);
}

/* A new file that cannot be opened: reported, its records counted as lost, opening retried
 * until it works; later records reach it. */
static void
test_reconfigure_open_failure_retries(void **state)
{
	char a[300], dir[300], b[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct capture cap;

	(void)state;
	tmp_path(a, sizeof(a), "retry-a.jsonl");
	tmp_path(dir, sizeof(dir), "later");
	tmp_path(b, sizeof(b), "later/retry-b.jsonl");
	cfg_init(&cfg, CONFIG_LOG_ALL, a);
	capture_start(&cap, "retry.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	submit_range(ql, 0, 4);
	cfg.log.file = b;
	assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
	submit_range(ql, 4, 10);
	for (int i = 0; i < 2000 && querylog_lost(ql) < 10; i++)
		sleep_ms(10);
	assert_int_equal(querylog_lost(ql), 10);
	assert_int_equal(mkdir(dir, 0700), 0);
	for (int i = 0; i < 2000 && access(b, F_OK) != 0; i++)
		sleep_ms(10);
	assert_int_equal(access(b, F_OK), 0);
	submit_range(ql, 14, 5);
	querylog_free(&ql);
	char *err = capture_end(&cap);
	assert_non_null(
		strstr(err, "later/retry-b.jsonl': cannot open: No such file or directory"));
	assert_non_null(strstr(err, "opened at last; 10 records were lost meanwhile"));
	free(err);
	assert_file_lines(a, 0, 4);
	assert_file_lines(b, 14, 5);
}

/* A database added, moved and removed by reloads (state_dir created), the JSONL file kept:
 * each database holds exactly the records and device events submitted while it was
 * configured; events are refused without one. */
static void
test_reconfigure_database(void **state)
{
	char file[300], state_dir[300], db[2][400];
	struct config cfg;
	struct querylog *ql = NULL;
	struct identity_event ev;
	const char *phase_db[4];

	(void)state;
	tmp_path(file, sizeof(file), "db-phases.jsonl");
	tmp_path(state_dir, sizeof(state_dir), "dbstate/sub");
	snprintf(db[0], sizeof(db[0]), "%s/one.db", state_dir);
	snprintf(db[1], sizeof(db[1]), "%s/two.db", state_dir);
	phase_db[0] = NULL;
	phase_db[1] = db[0];
	phase_db[2] = db[1];
	phase_db[3] = NULL;
	cfg_init(&cfg, CONFIG_LOG_ALL, file);
	cfg.state_dir = state_dir;
	cfg.log.retention_days = 90;
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	for (uint32_t p = 0; p < 4; p++) {
		if (p > 0) {
			cfg.log.database = (char *)(uintptr_t)phase_db[p];
			assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
		}
		submit_range(ql, p * 10, 10);
		memset(&ev, 0, sizeof(ev));
		snprintf(ev.kind, sizeof(ev.kind), "phase%u", p);
		assert_int_equal(querylog_submit_event(ql, &ev),
				 phase_db[p] != NULL ? 0 : -ENOTSUP);
		wait_applied(ql);
	}
	querylog_free(&ql);
	assert_file_lines(file, 0, 40);
	for (int i = 0; i < 2; i++) {
		char sql[200];
		assert_int_equal(sql_int(db[i], "SELECT count(*) FROM queries"), 10);
		int64_t first = 10 * (i + 1);
		assert_int_equal(sql_int(db[i], "SELECT min(latency_us) FROM queries"), first);
		assert_int_equal(sql_int(db[i], "SELECT max(latency_us) FROM queries"), first + 9);
		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM device_events WHERE kind = 'phase%d'", i + 1);
		assert_int_equal(sql_int(db[i], "SELECT count(*) FROM device_events"), 1);
		assert_int_equal(sql_int(db[i], sql), 1);
	}
}

/* log.retention_days changed alone: applied to the open database (rows past the new limit are
 * deleted soon), which is not reopened. */
static void
test_reconfigure_retention(void **state)
{
	char state_dir[300], db[400];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct capture cap;

	(void)state;
	tmp_path(state_dir, sizeof(state_dir), "retstate");
	snprintf(db, sizeof(db), "%s/ret.db", state_dir);
	cfg_init(&cfg, CONFIG_LOG_ALL, NULL);
	cfg.log.database = db;
	cfg.state_dir = state_dir;
	cfg.log.retention_days = 90;
	capture_start(&cap, "retention.stderr");
	assert_int_equal(querylog_new(&cfg, &ql), 0);
	numbered(&r, 1);
	r.ts_ms = wall_ms() - 10 * 86400000ull; /* ten days old */
	assert_int_equal(querylog_submit(ql, &r), 0);
	wait_sql(db, "SELECT count(*) FROM queries", 1);
	sleep_ms(300); /* the first retention pass has run: 90 days keep it */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries"), 1);

	cfg.log.retention_days = 1;
	assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
	wait_sql(db, "SELECT count(*) FROM queries", 0);
	querylog_free(&ql);
	char *err = capture_end(&cap);
	assert_non_null(strstr(err, "ret.db': retention 1 days"));
	assert_null(strstr(err, "closed"));
	free(err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_table),
		cmocka_unit_test(test_format_every_action),
		cmocka_unit_test(test_format_addresses),
		cmocka_unit_test(test_format_worst_case),
		cmocka_unit_test(test_free_flushes_all),
		cmocka_unit_test(test_records_arrive_without_free),
		cmocka_unit_test(test_overflow_drops_and_counts),
		cmocka_unit_test(test_reopen_after_rename),
		cmocka_unit_test(test_reopen_failure_keeps_old_file),
		cmocka_unit_test(test_dev_full_counts_losses),
		cmocka_unit_test(test_resumes_after_write_errors),
		cmocka_unit_test(test_none_opens_nothing),
		cmocka_unit_test(test_wants_table),
		cmocka_unit_test(test_open_failure),
		cmocka_unit_test(test_stdout),
		cmocka_unit_test(test_reconfigure_mode),
		cmocka_unit_test(test_reconfigure_moves_file),
		cmocka_unit_test(test_reconfigure_unchanged_keeps_file),
		cmocka_unit_test(test_reconfigure_open_failure_retries),
		cmocka_unit_test(test_reconfigure_database),
		cmocka_unit_test(test_reconfigure_retention),
		cmocka_unit_test(test_several_producers),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
