/*
 * test_logdb_record: the writer's two sinks take a record's columns from its octets (the JSON
 * line's names written from wire form, the database's ids remembered under keys made of the
 * record's octets: logdb_record.c); both must show exactly what the record's text
 * (querylog_text) says, for every kind of record: plain and escaped names, the root, rules
 * from a CNAME target or a label of the name (past its end, at the root), octets that are no
 * plain name, IPv4 / IPv4-mapped / IPv6 clients and upstreams, identity fields, numbers with
 * and without a mnemonic. Each record is stored twice: once with its entries new, once from
 * memory (and again, through full multi-row INSERTs).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "json.h"
#include "logdb.h"
#include "querylog.h"

#define LOGDB_HARNESS_TMP "/tmp/test_logdb_record.XXXXXX"
#include "logdb_harness.h"

/* What a case changes in a base record: a wire name by hand (octets, length), a rule. */
struct wcase {
	const char *what;
	const char *qwire;
	size_t qlen; /* 0 with qwire NULL: no question */
	int rule_label;
	const char *rwire;
	size_t rlen;
	int client;   /* 0 IPv4, 1 IPv4-mapped IPv6, 2 IPv6 */
	int upstream; /* 0 none, 1 IPv4, 2 IPv6, 3 IPv4-mapped */
	bool mac, tcp, group, empty_group, list, empty_list;
	const char *device, *vendor;
	uint8_t vendor_source, action, rcode;
	uint16_t qtype;
};

#define W(s) s, sizeof(s) - 1

static const struct wcase cases[] = {
        {"plain",
         W("\x08tracking\x04miui\x03"
           "com\x00"),
         1, NULL, 0, 0, 0, false, false, true, false, true, false, NULL, NULL, 0, 2, 0, 1},
        {"root", W("\x00"), 0, NULL, 0, 0, 1, false, false, false, false, false, false, NULL, NULL,
         0, 0, 0, 2},
        {"escaped octets",
         W("\x05"
           "a.b\"c\x04\\ \xff"
           "A\x03"
           "com\x00"),
         1, NULL, 0, 2, 2, true, true, true, false, true, false, "dev\"ice", "Xiao\x01mi", 1, 3, 3,
         28},
        {"a quote",
         W("\x03"
           "a\"b\x03"
           "com\x00"),
         0, NULL, 0, 0, 0, false, false, false, false, false, false, NULL, NULL, 0, 1, 0, 1},
        {"a backslash",
         W("\x03"
           "a\\b\x03"
           "com\x00"),
         0, NULL, 0, 0, 0, false, false, false, false, false, false, NULL, NULL, 0, 1, 0, 1},
        {"a space and a DEL",
         W("\x03"
           "a b\x01\x7f\x00"),
         1, NULL, 0, 0, 0, false, false, false, false, false, false, NULL, NULL, 0, 1, 0, 1},
        {"capitals",
         W("\x03WWW\x07"
           "Example\x03"
           "com\x00"),
         0, NULL, 0, 1, 3, true, false, true, true, true, true, "phone", "Apple", 2, 1, 0, 65535},
        {"rule from a CNAME target",
         W("\x01x\x07"
           "example\x03"
           "com\x00"),
         1,
         W("\x03"
           "cdn\x03net\x00"),
         0, 0, false, false, true, false, true, false, NULL, NULL, 3, 2, 0, 1},
        {"rule at the root",
         W("\x01x\x03"
           "com\x00"),
         2, NULL, 0, 0, 1, false, true, false, false, false, false, NULL, NULL, 4, 4, 5, 16},
        {"rule past the labels",
         W("\x01x\x03"
           "com\x00"),
         3, NULL, 0, 0, 0, false, false, false, false, false, false, NULL, NULL, 9, 99, 200, 1},
        {"no question", NULL,  0,     1,     NULL, 0,    0, 0, false, false,
         false,         false, false, false, NULL, NULL, 0, 7, 1,     1},
        {"rule wire cut short",
         W("\x01y\x03"
           "org\x00"),
         1,
         W("\x05"
           "ab\x00"),
         0, 0, false, false, false, false, true, false, NULL, NULL, 0, 2, 0, 1},
        {"name with a pointer",
         W("\x03"
           "abc\xc0\x00"),
         0, NULL, 0, 0, 0, false, false, false, false, false, false, NULL, NULL, 0, 1, 0, 1},
        {"label over 63", W("\x40x\x00"), 0, NULL, 0, 0, 0, false, false, false, false, false,
         false, NULL, NULL, 0, 1, 0, 1},
        {"trailing octets", W("\x01z\x00zz"), 0, NULL, 0, 2, 1, true, false, true, false, false,
         false, NULL, NULL, 0, 1, 0, 1},
};
#define NCASES (sizeof(cases) / sizeof(cases[0]))

static void
set_addr(struct sockaddr_storage *ss, int kind, uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (kind == 0)
		return;
	if (kind == 1) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &s4->sin_addr), 1);
		return;
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	assert_int_equal(
	        inet_pton(AF_INET6, kind == 2 ? "2001:db8::7" : "::ffff:192.0.2.7", &s6->sin6_addr),
	        1);
}

static void
case_record(struct querylog_record *r, const struct wcase *c)
{
	memset(r, 0, sizeof(*r));
	r->ts_ms = NOW_MS;
	if (c->client == 0)
		set_client(r, "10.0.0.9");
	else
		set_addr(&r->client, c->client == 1 ? 3 : 2, 5353);
	set_addr(&r->upstream, c->upstream, 53);
	if (c->qwire != NULL) {
		memcpy(r->qname_wire, c->qwire, c->qlen);
		r->qname_len = (uint8_t)c->qlen;
	}
	r->rule_label = (int16_t)c->rule_label;
	if (c->rwire != NULL) {
		memcpy(r->rule_wire, c->rwire, c->rlen);
		r->rule_len = (uint8_t)c->rlen;
	}
	r->has_mac = c->mac;
	if (c->mac)
		memcpy(r->mac, "\x02\x11\x22\x33\x44\x55", 6);
	r->tcp = c->tcp;
	r->has_group = c->group;
	if (c->group && !c->empty_group)
		set_str(r->group, sizeof(r->group), "kids");
	r->has_list = c->list;
	if (c->list && !c->empty_list)
		set_str(r->list, sizeof(r->list), "ads");
	r->blocked = c->list;
	set_str(r->device, sizeof(r->device), c->device);
	set_str(r->vendor, sizeof(r->vendor), c->vendor);
	r->vendor_source = c->vendor_source;
	r->action = c->action;
	r->rcode = c->rcode;
	r->qtype = c->qtype;
	r->latency_us = 42;
}

static void
put_buf(void *arg, const char *p, size_t n)
{
	char *b = arg;
	size_t l = strlen(b);

	memcpy(b + l, p, n);
	b[l + n] = '\0';
}

/* ,"key":<JSON string of text, or null when empty> */
static void
member(char *out, const char *key, const char *text)
{
	snprintf(out, 64, ",\"%s\":", key);
	if (text[0] == '\0')
		strcat(out, "null");
	else
		json_write_str(text, strlen(text), put_buf, out);
}

/* The JSON line shows the names (and everything else) as the record's text says. */
static void
test_line_matches_text(void **state)
{
	(void)state;
	for (size_t i = 0; i < NCASES; i++) {
		struct querylog_record r;
		struct querylog_text t;
		char line[QUERYLOG_LINE_MAX], want[8 * NAMES_MAX_TEXT];
		case_record(&r, &cases[i]);
		querylog_text(&r, &t);
		assert_true(querylog_format(&r, line, sizeof(line)) > 0);
		const char *cols[][2] = {
		        {"client", t.client}, {"group", t.group},       {"qname", t.qname},
		        {"qtype", t.qtype},   {"list", t.list},         {"rule", t.rule},
		        {"rcode", t.rcode},   {"upstream", t.upstream}, {"mac", t.mac},
		        {"device", t.device}, {"vendor", t.vendor}};
		for (size_t k = 0; k < sizeof(cols) / sizeof(cols[0]); k++) {
			member(want, cols[k][0], cols[k][1]);
			/* a group or list present but empty is "" in the line, null in the text */
			if ((k == 1 && r.has_group && t.group[0] == '\0') ||
			    (k == 4 && r.has_list && t.list[0] == '\0'))
				snprintf(want, 64, ",\"%s\":\"\"", cols[k][0]);
			/* and the line has a type for every question, even one whose octets are
			   no name */
			if (k == 3 && r.qname_len > 0 && t.qname[0] == '\0')
				continue;
			if (strstr(line, want) == NULL)
				fail_msg("%s: %s: want '%s' in %s", cases[i].what, cols[k][0], want,
				         line);
		}
	}
}

static const char *
col(sqlite3_stmt *st, int i)
{
	const char *s = (const char *)sqlite3_column_text(st, i);

	return s != NULL ? s : "";
}

/* Every case PASSES times (new entries, then from memory; 600 rows: two multi-row INSERTs, the
 * second binding only what changed at each place, and a tail), read back through the view. */
#define PASSES 40
static void
test_rows_match_text(void **state)
{
	char path[300];
	struct querylog_record r;
	struct logdb *db;
	sqlite3 *s;
	sqlite3_stmt *st;

	(void)state;
	tmp_path(path, sizeof(path), "record.db");
	db = open_db(path, 0, 0);
	for (int pass = 0; pass < PASSES; pass++) {
		for (size_t i = 0; i < NCASES; i++) {
			case_record(&r, &cases[i]);
			assert_int_equal(logdb_add(db, &r), 0);
		}
	}
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);

	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s,
	                                    "SELECT client, proto, group_name, qname, qtype, list,"
	                                    " rule, action, rcode, upstream, mac, device, vendor,"
	                                    " vendor_source, blocked FROM query_log ORDER BY id",
	                                    -1, &st, NULL),
	                 SQLITE_OK);
	for (size_t n = 0; n < PASSES * NCASES; n++) {
		struct querylog_text t;
		const struct wcase *c = &cases[n % NCASES];
		assert_int_equal(sqlite3_step(st), SQLITE_ROW);
		case_record(&r, c);
		querylog_text(&r, &t);
		const char *vs = identity_source_name(r.vendor_source);
		const char *want[] = {t.client, r.tcp ? "tcp" : "udp",
		                      t.group,  t.qname,
		                      t.qtype,  t.list,
		                      t.rule,   querylog_action_name(r.action),
		                      t.rcode,  t.upstream,
		                      t.mac,    t.device,
		                      t.vendor, vs != NULL ? vs : ""};
		for (int k = 0; k < (int)(sizeof(want) / sizeof(want[0])); k++) {
			if (strcmp(col(st, k), want[k]) != 0)
				fail_msg("%s (pass %zu): column %d: '%s', want '%s'", c->what,
				         n / NCASES, k, col(st, k), want[k]);
		}
		assert_int_equal(sqlite3_column_int(st, 14), r.blocked);
	}
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	sqlite3_close(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_line_matches_text),
	        cmocka_unit_test(test_rows_match_text),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
