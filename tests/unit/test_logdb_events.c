/*
 * Reading device events from the query store (logdb_events.c): matching a device by name,
 * MAC (any spelling) or client address, time windows, the newest-N limit returned in time
 * order, the vendor column (written, and absent in files from before it), and bad input.
 * Then `veto report device`'s timeline (cmd_report_device.c): events and queries merged in
 * time order, --limit cutting queries and the events before them only, and one snapshot
 * across its reads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "cmd_report_int.h"

#define LOGDB_HARNESS_TMP "/tmp/test_logdb_events.XXXXXX"
#include "logdb_harness.h"

#define MAC_A "02:aa:bb:cc:dd:01"

/* The events of one test database: two devices, three events each, one second apart. */
static void
make_events(const char *path)
{
	static const struct logdb_event evs[] = {
	        {NOW_MS - 5000, "phone", MAC_A, "10.0.0.5", "first_seen", NULL, "staff", NULL,
	         "mac"},
	        {NOW_MS - 4000, NULL, "02:00:00:00:00:09", "10.0.0.9", "first_seen", NULL, "staff",
	         NULL, "mac"},
	        {NOW_MS - 3000, "phone", MAC_A, "10.0.0.5", "vendor", "staff", "banned", "Xiaomi",
	         "connect.rom.miui.com"},
	        {NOW_MS - 2000, "phone", MAC_A, "10.0.0.5", "group_change", "staff", "banned",
	         "Xiaomi", "connect.rom.miui.com"},
	        {NOW_MS - 1000, NULL, "02:00:00:00:00:09", "10.0.0.9", "vendor", "staff", "staff",
	         "OPPO", "conn1.oppomobile.com"},
	};
	struct logdb *db = open_db(path, 0, 0);

	for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
		assert_int_equal(logdb_add_event(db, &evs[i]), 0);
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
}

struct seen {
	size_t n;
	int64_t id[16];
	char kind[16][24];
	char vendor[16][24]; /* "" for NULL */
	uint64_t ts[16];
};

static int
collect(void *arg, const struct logdb_event_row *ev)
{
	struct seen *s = arg;

	assert_true(s->n < 16);
	s->id[s->n] = ev->id;
	s->ts[s->n] = ev->ts_ms;
	snprintf(s->kind[s->n], sizeof(s->kind[0]), "%s", ev->kind);
	snprintf(s->vendor[s->n], sizeof(s->vendor[0]), "%s", ev->vendor ? ev->vendor : "");
	s->n++;
	return 0;
}

static int
stop_cb(void *arg, const struct logdb_event_row *ev)
{
	(void)arg;
	(void)ev;
	return 7;
}

static struct seen
events(struct logdb_reader *r, const struct logdb_filter *f)
{
	struct seen s;

	memset(&s, 0, sizeof(s));
	assert_int_equal(logdb_query_events(r, f, collect, &s), 0);
	for (size_t i = 1; i < s.n; i++)
		assert_true(s.ts[i - 1] <= s.ts[i]);
	return s;
}

static void
test_match_device(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct seen s;

	(void)state;
	tmp_path(path, sizeof(path), "events.db");
	make_events(path);
	assert_int_equal(logdb_reader_open(path, &r), 0);

	/* by name, by MAC in another spelling, by client address: the same three */
	static const char *const whos[] = {"phone", "02-AA-BB-CC-DD-01", "02aa.bbcc.dd01",
	                                   "10.0.0.5"};
	for (size_t i = 0; i < sizeof(whos) / sizeof(whos[0]); i++) {
		logdb_filter_init(&f);
		f.who = whos[i];
		s = events(r, &f);
		assert_int_equal(s.n, 3);
		assert_string_equal(s.kind[0], "first_seen");
		assert_string_equal(s.kind[1], "vendor");
		assert_string_equal(s.kind[2], "group_change");
		assert_string_equal(s.vendor[0], "");
		assert_string_equal(s.vendor[2], "Xiaomi");
	}
	/* nobody */
	logdb_filter_init(&f);
	f.who = "10.0.0.77";
	assert_int_equal(events(r, &f).n, 0);
	/* everyone, and the client / mac / device filters */
	logdb_filter_init(&f);
	assert_int_equal(events(r, &f).n, 5);
	f.client.v[0] = "10.0.0.9";
	s = events(r, &f);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.vendor[1], "OPPO");
	logdb_filter_init(&f);
	f.mac.v[0] = "02:00:00:00:00:09";
	assert_int_equal(events(r, &f).n, 2);
	logdb_filter_init(&f);
	f.device.v[0] = "phone";
	assert_int_equal(events(r, &f).n, 3);
	/* a bad MAC filter is an error, not "nothing" */
	f.mac.v[0] = "zz";
	assert_int_equal(logdb_query_events(r, &f, collect, &s), -EINVAL);
	logdb_reader_free(&r);
}

static void
test_window_and_limit(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	struct seen s;

	(void)state;
	tmp_path(path, sizeof(path), "window.db");
	make_events(path);
	assert_int_equal(logdb_reader_open(path, &r), 0);

	logdb_filter_init(&f);
	f.since_ms = NOW_MS - 4000; /* inclusive */
	f.until_ms = NOW_MS - 1000; /* exclusive */
	s = events(r, &f);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.ts[0], NOW_MS - 4000);
	assert_int_equal(s.ts[2], NOW_MS - 2000);

	/* the newest two, oldest first */
	logdb_filter_init(&f);
	f.limit = 2;
	s = events(r, &f);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.ts[0], NOW_MS - 2000);
	assert_int_equal(s.ts[1], NOW_MS - 1000);
	assert_true(s.id[0] < s.id[1]);

	/* a callback stops the scan with its value */
	logdb_filter_init(&f);
	assert_int_equal(logdb_query_events(r, &f, stop_cb, NULL), 7);
	logdb_reader_free(&r);
}

static void
test_file_without_vendor_column(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	sqlite3 *s = NULL;
	struct seen seen;

	(void)state;
	tmp_path(path, sizeof(path), "novendor.db");
	make_events(path);
	/* a schema-3 file written before events had a vendor */
	assert_int_equal(sqlite3_open(path, &s), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(s, "ALTER TABLE device_events DROP COLUMN vendor", NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(s);

	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);
	f.who = "phone";
	seen = events(r, &f);
	assert_int_equal(seen.n, 3);
	assert_string_equal(seen.vendor[2], "");
	logdb_reader_free(&r);

	/* the writer adds the column back when it opens the file; old rows keep NULL */
	struct logdb *db = open_db(path, 0, 0);
	assert_true(logdb_is_open(db));
	struct logdb_event ev = {NOW_MS,     "phone",  MAC_A,
	                         "10.0.0.5", "vendor", "banned",
	                         "banned",   "Huawei", "connectivitycheck.platform.hicloud.com"};
	assert_int_equal(logdb_add_event(db, &ev), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events WHERE vendor IS NULL"),
	                 5);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events WHERE vendor ="
	                               " 'Huawei'"),
	                 1);
}

/* ---- the timeline of veto report device ---- */

/* Device "phone": events at -10, -8, -6, -4, -3, -2 s; queries at -9, -7, -6, -5 s. */
static void
make_timeline(const char *path)
{
	static const int64_t ev_s[] = {10, 8, 6, 4, 3, 2};
	static const int64_t q_s[] = {9, 7, 6, 5};
	struct logdb *db = open_db(path, 0, 0);
	char ev_name[6][8];

	for (size_t i = 0; i < 6; i++) {
		snprintf(ev_name[i], sizeof(ev_name[i]), "e%lld", (long long)ev_s[i]);
		struct logdb_event e = {NOW_MS - (uint64_t)ev_s[i] * 1000,
		                        "phone",
		                        MAC_A,
		                        "10.0.0.5",
		                        "vendor",
		                        "staff",
		                        "staff",
		                        "Xiaomi",
		                        ev_name[i]};
		assert_int_equal(logdb_add_event(db, &e), 0);
	}
	for (size_t i = 0; i < 4; i++) {
		char name[32];
		snprintf(name, sizeof(name), "q%lld.test", (long long)q_s[i]);
		struct rec x = {.age_ms = (uint64_t)q_s[i] * 1000,
		                .client = "10.0.0.5",
		                .qname = name,
		                .device = "phone",
		                .mac = MAC_A};
		struct querylog_record r;
		make_record(&r, &x);
		assert_int_equal(logdb_add(db, &r), 0);
	}
	assert_int_equal(logdb_commit(db), 0);
	logdb_free(&db);
}

/* The timeline as "kind:what" words: "e10 q9.test ...". */
static void
timeline(struct logdb_reader *r, uint32_t limit, char *out, size_t cap)
{
	struct cmd_report_ctx c = {.format = CMD_REPORT_CSV, .first = true};
	struct logdb_filter f;
	char *buf = NULL;
	size_t len = 0, o = 0;

	c.out = open_memstream(&buf, &len);
	assert_non_null(c.out);
	logdb_filter_init(&f);
	f.who = "phone";
	f.limit = limit;
	assert_int_equal(cmd_report_device(r, &f, &c), 0);
	fclose(c.out);
	out[0] = '\0';
	/* ts,kind,client,mac,device,group,qname,...,evidence: the qname (7th) or the evidence
	 * (last) */
	char *save = NULL;
	for (char *line = strtok_r(buf, "\n", &save); line != NULL;
	     line = strtok_r(NULL, "\n", &save)) {
		if (strncmp(line, "ts,", 3) == 0)
			continue;
		char *fields[16];
		size_t nf = 0;
		for (char *p = line; nf < 16; p++) {
			fields[nf++] = p;
			p = strchr(p, ',');
			if (p == NULL)
				break;
			*p = '\0';
		}
		assert_int_equal(nf, 16);
		const char *what = strcmp(fields[1], "query") == 0 ? fields[6] : fields[15];
		o += (size_t)snprintf(out + o, cap - o, "%s%s", o > 0 ? " " : "", what);
	}
	free(buf);
}

static void
test_timeline(void **state)
{
	char path[300], got[512];
	struct logdb_reader *r = NULL;

	(void)state;
	tmp_path(path, sizeof(path), "timeline.db");
	make_timeline(path);
	assert_int_equal(logdb_reader_open(path, &r), 0);
	/* everything; an event before a query of the same millisecond */
	timeline(r, 0, got, sizeof(got));
	assert_string_equal(got, "e10 q9.test e8 q7.test e6 q6.test q5.test e4 e3 e2");
	/* the newest two queries: the events from the oldest of them on, all of them */
	timeline(r, 2, got, sizeof(got));
	assert_string_equal(got, "e6 q6.test q5.test e4 e3 e2");
	timeline(r, 1, got, sizeof(got));
	assert_string_equal(got, "q5.test e4 e3 e2");
	/* a limit that cuts nothing */
	timeline(r, 4, got, sizeof(got));
	assert_string_equal(got, "e10 q9.test e8 q7.test e6 q6.test q5.test e4 e3 e2");
	logdb_reader_free(&r);
}

static int
count_row(void *arg, const struct logdb_row *row)
{
	(void)row;
	(*(int *)arg)++;
	return 0;
}

static int
count_event(void *arg, const struct logdb_event_row *ev)
{
	(void)ev;
	(*(int *)arg)++;
	return 0;
}

/* Between logdb_snapshot_begin and _end, rows and events committed meanwhile are not seen. */
static void
test_snapshot(void **state)
{
	char path[300];
	struct logdb_reader *r = NULL;
	struct logdb_filter f;
	int rows = 0, evs = 0;

	(void)state;
	tmp_path(path, sizeof(path), "snapshot.db");
	make_timeline(path);
	struct logdb *db = open_db(path, 0, 0); /* the daemon, writing meanwhile */
	assert_int_equal(logdb_reader_open(path, &r), 0);
	logdb_filter_init(&f);

	assert_int_equal(logdb_snapshot_begin(r), 0);
	assert_int_equal(logdb_snapshot_begin(r), 0); /* nests */
	assert_int_equal(logdb_query_rows(r, &f, count_row, &rows), 0);
	assert_int_equal(rows, 4);
	struct rec x = {.client = "10.0.0.5", .qname = "late.test", .device = "phone"};
	struct querylog_record rec;
	make_record(&rec, &x);
	struct logdb_event e = {NOW_MS,  "phone",  MAC_A,    "10.0.0.5", "group_change",
	                        "staff", "banned", "Xiaomi", "late.test"};
	assert_int_equal(logdb_add_event(db, &e), 0);
	assert_int_equal(logdb_add(db, &rec), 0);
	assert_int_equal(logdb_commit(db), 0);
	rows = 0;
	assert_int_equal(logdb_query_rows(r, &f, count_row, &rows), 0);
	assert_int_equal(logdb_query_events(r, &f, count_event, &evs), 0);
	assert_int_equal(rows, 4);
	assert_int_equal(evs, 6);
	logdb_snapshot_end(r);
	rows = evs = 0;
	assert_int_equal(logdb_query_rows(r, &f, count_row, &rows), 0);
	assert_int_equal(rows, 4); /* still inside the outer snapshot */
	logdb_snapshot_end(r);
	rows = evs = 0;
	assert_int_equal(logdb_query_rows(r, &f, count_row, &rows), 0);
	assert_int_equal(logdb_query_events(r, &f, count_event, &evs), 0);
	assert_int_equal(rows, 5);
	assert_int_equal(evs, 7);
	logdb_snapshot_end(r); /* one too many: harmless */
	logdb_reader_free(&r);
	logdb_free(&db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_match_device),
	        cmocka_unit_test(test_window_and_limit),
	        cmocka_unit_test(test_file_without_vendor_column),
	        cmocka_unit_test(test_timeline),
	        cmocka_unit_test(test_snapshot),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
