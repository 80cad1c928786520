/*
 * logdb_harness: what the query-store tests share (test_logdb.c, test_logdb_store.c): a
 * temporary directory per test program and fresh database paths in it, query records from a
 * few fields (struct rec, make_record), opening a writer, and reading one integer through an
 * independent connection.
 *
 * Header-only; define LOGDB_HARNESS_TMP (the mkdtemp template of the directory, e.g.
 * "/tmp/test_logdb.XXXXXX") and include it after <cmocka.h>.
 */
#ifndef VETO_TEST_LOGDB_HARNESS_H
#define VETO_TEST_LOGDB_HARNESS_H

#ifndef LOGDB_HARNESS_TMP
#error "define LOGDB_HARNESS_TMP before including logdb_harness.h"
#endif

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logdb.h"
#include "logdb_reader.h"
#include "querylog.h"

#define DAY_MS    86400000ull
#define NOW_MS    1795319902123ull /* 2026-11-22T03:58:22.123Z */
#define BASE_MONO 1000000ull

static char tmpdir[256];

/* The group setup and teardown: the directory of every path below. */
static inline int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "%s", LOGDB_HARNESS_TMP);
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static inline int
teardown_dir(void **state)
{
	char cmd[700];

	(void)state;
	snprintf(cmd, sizeof(cmd), "chattr -R -i '%s' 2>/dev/null; rm -rf '%s'", tmpdir, tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

/* tmpdir/name, without a database, WAL or shared-memory file left by an earlier test. */
static inline void
tmp_path(char *buf, size_t cap, const char *name)
{
	char side[600];

	snprintf(buf, cap, "%s/%s", tmpdir, name);
	unlink(buf);
	snprintf(side, sizeof(side), "%s-wal", buf);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", buf);
	unlink(side);
}

/* r's question name in wire form, from a dotted name; "" for a query without a question. */
static inline void
set_qname(struct querylog_record *r, const char *text)
{
	struct names_name n;
	const char *why;

	if (text[0] == '\0') {
		r->qname_len = 0;
		return;
	}
	assert_int_equal(names_from_text(&n, text, strlen(text), &why), 0);
	querylog_record_set_name(r, &n);
}

/* r's client address (IPv4). */
static inline void
set_client(struct querylog_record *r, const char *ip)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&r->client;

	memset(&r->client, 0, sizeof(r->client));
	s4->sin_family = AF_INET;
	s4->sin_port = htons(5353);
	assert_int_equal(inet_pton(AF_INET, ip, &s4->sin_addr), 1);
}

/* A fixed-size record string; NULL is "". */
static inline void
set_str(char *dst, size_t cap, const char *src)
{
	memset(dst, 0, cap);
	if (src != NULL)
		memcpy(dst, src, strnlen(src, cap));
}

/* A query record in few words: what the store tests vary. */
struct rec {
	uint64_t age_ms; /* before NOW_MS */
	const char *client, *qname, *group, *list, *device, *vendor;
	const char *mac; /* "02:..." or NULL */
	bool blocked;
	uint8_t action, vendor_source;
};

static inline void
make_record(struct querylog_record *r, const struct rec *x)
{
	memset(r, 0, sizeof(*r));
	r->ts_ms = NOW_MS - x->age_ms;
	set_client(r, x->client);
	set_qname(r, x->qname);
	r->qtype = 1;
	r->rule_label = x->blocked ? 0 : -1;
	r->blocked = x->blocked;
	r->has_group = x->group != NULL;
	set_str(r->group, sizeof(r->group), x->group);
	r->has_list = x->list != NULL;
	set_str(r->list, sizeof(r->list), x->list);
	set_str(r->device, sizeof(r->device), x->device);
	set_str(r->vendor, sizeof(r->vendor), x->vendor);
	r->vendor_source = x->vendor_source;
	r->action = x->action;
	if (x->mac != NULL) {
		unsigned m[6];
		assert_int_equal(sscanf(x->mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3],
		                        &m[4], &m[5]),
		                 6);
		for (int i = 0; i < 6; i++)
			r->mac[i] = (uint8_t)m[i];
		r->has_mac = true;
	}
	r->latency_us = 7;
}

static inline struct logdb *
open_db(const char *path, uint32_t retention, uint32_t max_pages)
{
	struct logdb_options opt = {
	        .path = path, .retention_days = retention, .max_pages = max_pages};
	struct logdb *db = NULL;

	assert_int_equal(logdb_new(&opt, &db), 0);
	assert_non_null(db);
	return db;
}

/* One integer (a count, a pragma) through an independent read-only connection: what another
 * process sees. -1 when sql returns no row. */
static inline int64_t
sql_int(const char *path, const char *sql)
{
	sqlite3 *s = NULL;
	sqlite3_stmt *st = NULL;
	int64_t n = -1;

	assert_int_equal(sqlite3_open_v2(path, &s, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(s, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(s);
	return n;
}

#endif
