/*
 * test_querylog_evidence: when the writer falls behind, the evidence is kept. Blocked records
 * and device events are never dropped while the disk has room; forwarded records that find no
 * room are counted exactly ('unlogged' lines and rows), and what is stored keeps its order.
 * The ring is filled faster than the writer drains it two ways: with the writer parked, and
 * with a tiny ring flooded while the writer runs.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define LOGDB_HARNESS_TMP "/tmp/test_querylog_evidence.XXXXXX"
#include "logdb_harness.h"
#include "querylog_int.h"

/* What one run submitted, and what the sinks hold. */
struct tally {
	uint64_t blocked, forwarded, refused; /* submitted; refused: forwarded not taken */
	uint64_t events;
};

/* Record i: every third one blocked; latency_us carries i (the order check). */
static void
numbered(struct querylog_record *r, uint32_t i, bool blocked)
{
	struct rec x = {.client = "10.0.0.7", .qname = blocked ? "t.miui.com" : "ok.example",
	                .blocked = blocked, .list = blocked ? "xiaomi" : NULL,
	                .action = blocked ? QUERYLOG_ACTION_SINKHOLE : QUERYLOG_ACTION_FORWARD};
	make_record(r, &x);
	r->latency_us = i;
}

static void
submit(struct querylog *ql, struct tally *t, uint32_t i)
{
	struct querylog_record r;
	bool blocked = i % 3 == 0;

	numbered(&r, i, blocked);
	int rc = querylog_submit(ql, &r);
	if (blocked) {
		assert_int_equal(rc, 0); /* evidence is never refused */
		t->blocked++;
	} else {
		assert_true(rc == 0 || rc == -ENOBUFS);
		t->forwarded++;
		t->refused += rc != 0;
	}
}

static void
event(struct querylog *ql, struct tally *t)
{
	struct identity_event ev;

	memset(&ev, 0, sizeof(ev));
	snprintf(ev.kind, sizeof(ev.kind), "group_change");
	snprintf(ev.device, sizeof(ev.device), "phone-%llu", (unsigned long long)t->events);
	snprintf(ev.new_group, sizeof(ev.new_group), "banned");
	assert_int_equal(querylog_submit_event(ql, &ev), 0);
	t->events++;
}

static void
open_log_mb(struct querylog **ql, size_t capacity, uint32_t evidence_mb, char *file, char *db,
            const char *file_name, const char *db_name)
{
	struct config cfg;

	tmp_path(file, 300, file_name);
	tmp_path(db, 300, db_name);
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.queries = CONFIG_LOG_ALL;
	cfg.log.file = file;
	cfg.log.database = db;
	cfg.log.evidence_buffer_mb = evidence_mb; /* 0: the default */
	assert_int_equal(querylog_new_capacity(&cfg, capacity, ql), 0);
}

static void
open_log(struct querylog **ql, size_t capacity, char *file, char *db, const char *file_name,
         const char *db_name)
{
	open_log_mb(ql, capacity, 0, file, db, file_name, db_name);
}

/* The file: every line a whole JSON object; the records in submission order; every blocked
 * one there; every forwarded one either stored or in a counter line: the counter lines add up
 * to the forwarded records refused by the ring and those the writer shed while blocked ones
 * waited in the overflow. */
static void
check_file(const char *path, const struct tally *t)
{
	FILE *f = fopen(path, "r");
	char line[QUERYLOG_LINE_MAX];
	uint64_t blocked = 0, forwarded = 0, counted = 0;
	long long last = -1;

	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		size_t n = strlen(line);
		assert_true(n > 2 && line[0] == '{' && line[n - 2] == '}' && line[n - 1] == '\n');
		const char *u = strstr(line, "\"type\":\"unlogged\"");
		if (u != NULL) {
			const char *c = strstr(line, "\"forwarded\":");
			assert_non_null(c);
			counted += strtoull(c + 12, NULL, 10);
			continue;
		}
		const char *l = strstr(line, "\"latency_us\":");
		assert_non_null(l);
		long long i = strtoll(l + 13, NULL, 10);
		if (i <= last)
			fail_msg("record %lld after %lld: out of order", i, last);
		last = i;
		if (strstr(line, "\"blocked\":true") != NULL)
			blocked++;
		else
			forwarded++;
	}
	fclose(f);
	assert_int_equal(blocked, t->blocked);
	assert_int_equal(forwarded + counted, t->forwarded);
	assert_true(counted >= t->refused);
}

static void
check_db(const char *path, const struct tally *t)
{
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries WHERE blocked = 1"),
	                 (int64_t)t->blocked);
	int64_t stored = sql_int(path, "SELECT count(*) FROM queries WHERE blocked = 0");
	int64_t counted = sql_int(path, "SELECT coalesce(sum(forwarded), 0) FROM unlogged");
	assert_int_equal(stored + counted, (int64_t)t->forwarded);
	assert_true(counted >= (int64_t)t->refused);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM device_events"), (int64_t)t->events);
	/* ids follow submission order */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries a JOIN queries b"
	                               " ON b.id = a.id + 1 WHERE b.latency_us <= a.latency_us"),
	                 0);
}

/* The writer parked: the ring fills, forwarded records stop at 3/4 of it, blocked ones take
 * the rest; then both go to the overflow (forwarded ones up to half of it: 32 MiB by default,
 * far more than these), events queue past QUERYLOG_EVENTS. Nothing is lost: a writer held up
 * for a moment costs no record. */
static void
test_parked_writer_keeps_evidence(void **state)
{
	char file[300], db[300];
	struct querylog *ql = NULL;
	struct tally t = {0};
	const uint32_t n = 30000;

	(void)state;
	open_log(&ql, 64, file, db, "parked.jsonl", "parked.db");
	querylog_test_pause(ql, true);
	for (uint32_t i = 0; i < n; i++) {
		submit(ql, &t, i);
		if (i % 4 == 0)
			event(ql, &t);
	}
	assert_true(t.events > QUERYLOG_EVENTS);
	assert_int_equal(t.blocked, 10000);
	assert_int_equal(t.refused, 0);
	assert_int_equal(querylog_unlogged(ql), 0);
	assert_int_equal(querylog_dropped(ql), 0);
	assert_int_equal(querylog_evidence_lost(ql), 0);
	/* it grew, by packed records: 30,000 - 48 records in a few chunks of 256 KiB, not the
	 * 32 MB whole slots would take */
	size_t chunks = querylog_test_overflow_chunks(ql);
	assert_true(chunks > 0 && chunks < 20);
	querylog_test_pause(ql, false);
	querylog_free(&ql);
	check_file(file, &t);
	check_db(db, &t);
}

/* A tiny ring flooded while the writer runs: producer and writer race over the ring and the
 * overflow; still every blocked record and event stored, in order, losses counted exactly. */
static void
test_flood_keeps_evidence(void **state)
{
	char file[300], db[300];
	struct querylog *ql = NULL;
	struct tally t = {0};
	const uint32_t n = 60000;

	(void)state;
	open_log(&ql, 256, file, db, "flood.jsonl", "flood.db");
	for (uint32_t i = 0; i < n; i++) {
		submit(ql, &t, i);
		if (i % 64 == 0)
			event(ql, &t);
	}
	uint64_t lost = querylog_evidence_lost(ql), unlogged = querylog_unlogged(ql);
	print_message("flood: %llu of %llu forwarded counted, not stored\n",
	              (unsigned long long)t.refused, (unsigned long long)t.forwarded);
	querylog_free(&ql);
	assert_int_equal(lost, 0);
	assert_true(unlogged >= t.refused);	/* and the writer's shedding */
	check_file(file, &t);
	check_db(db, &t);
}

/* The bound: log.evidence_buffer_mb 1 and the writer parked. The overflow holds records as
 * packed octets, so 1 MiB keeps several times the blocked records whole slots would (1 MiB /
 * 1,088); past the bound every blocked record refused is counted as lost, exactly, and what
 * was taken is stored, in order. */
static void
test_bound_counts_evidence_lost(void **state)
{
	char file[300], db[300];
	struct querylog *ql = NULL;
	struct querylog_record r;
	uint64_t taken = 0, lost = 0;

	(void)state;
	open_log_mb(&ql, 64, 1, file, db, "bound.jsonl", "bound.db");
	querylog_test_pause(ql, true);
	for (uint32_t i = 0; i < 20000; i++) {
		numbered(&r, i, true);
		int rc = querylog_submit(ql, &r);
		assert_true(rc == 0 || rc == -ENOBUFS);
		if (rc == 0) {
			assert_int_equal(lost, 0); /* nothing taken once the bound was reached */
			taken++;
		} else {
			lost++;
		}
	}
	print_message("bound: %llu blocked records kept in 1 MiB, %llu lost\n",
	              (unsigned long long)taken, (unsigned long long)lost);
	assert_true(taken - 64 > 4 * ((1u << 20) / SLOT_SIZE)); /* packed, not whole slots */
	assert_true(lost > 0);
	assert_int_equal(querylog_evidence_lost(ql), lost);
	assert_int_equal(querylog_dropped(ql), lost);
	assert_int_equal(querylog_test_overflow_chunks(ql) + 1, (1u << 20) / OVF_CHUNK_BYTES);
	querylog_test_pause(ql, false);
	querylog_free(&ql);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries WHERE blocked = 1"),
	                 (int64_t)taken);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries a JOIN queries b"
	                             " ON b.id = a.id + 1 WHERE b.latency_us <= a.latency_us"),
	                 0);
}

/* The evidence's half: log.evidence_buffer_mb 1 (4 chunks) and the writer parked. Forwarded
 * records fill the ring's 3/4 and then the first 2 chunks, and are counted from then on;
 * blocked records still find the other 2 chunks (as many again as the forwarded ones took),
 * and only past the whole bound is one lost. Stored + counted = submitted for both. */
static void
test_forwarded_leave_half_to_evidence(void **state)
{
	char file[300], db[300];
	struct querylog *ql = NULL;
	struct querylog_record r;
	uint32_t i = 0, fwd_taken = 0, fwd_refused = 0, blk_taken = 0, blk_lost = 0;

	(void)state;
	open_log_mb(&ql, 64, 1, file, db, "half.jsonl", "half.db");
	querylog_test_pause(ql, true);
	for (; fwd_refused < 100; i++) {
		numbered(&r, i, false);
		if (querylog_submit(ql, &r) == 0)
			fwd_taken++;
		else
			fwd_refused++;
	}
	assert_int_equal(querylog_test_overflow_chunks(ql) + 1, 2);
	for (; blk_lost < 100; i++) {
		numbered(&r, i, true);
		if (querylog_submit(ql, &r) == 0)
			blk_taken++;
		else
			blk_lost++;
	}
	print_message("half: %u forwarded taken, then %u blocked in the other half\n", fwd_taken,
	              blk_taken);
	assert_int_equal(querylog_test_overflow_chunks(ql) + 1, 4);
	/* the blocked records fill what the forwarded ones left: 2 chunks (their records are a
	 * little longer: list, rule) and the ring's 1/4 */
	assert_true(blk_taken > 2 * (256u << 10) / 128);
	assert_int_equal(querylog_unlogged(ql), fwd_refused);
	assert_int_equal(querylog_evidence_lost(ql), blk_lost);
	querylog_test_pause(ql, false);
	querylog_free(&ql);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries WHERE blocked = 1"),
	                 (int64_t)blk_taken);
	/* forwarded: stored, or counted (refused, or shed by the writer to reach the evidence) */
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries WHERE blocked = 0") +
	                         sql_int(db, "SELECT coalesce(sum(forwarded), 0) FROM unlogged"),
	                 (int64_t)(fwd_taken + fwd_refused));
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries a JOIN queries b"
	                             " ON b.id = a.id + 1 WHERE b.latency_us <= a.latency_us"),
	                 0);
}

/* The writer sheds forwarded records only while the overflow holds more than their half, asked
 * again as it reads: log.evidence_buffer_mb 2 (8 chunks, 4 for forwarded records), forwarded
 * records fill their 4, blocked ones open a 5th. On resume the writer sheds the ring's forwarded
 * records and the first chunk's, then (4 chunks in use: not pressed) stores the rest. */
static void
test_shedding_stops_at_half(void **state)
{
	char file[300], db[300];
	struct querylog *ql = NULL;
	struct querylog_record r;
	uint32_t i = 0, fwd_taken = 0, fwd_refused = 0, blk = 0;

	(void)state;
	open_log_mb(&ql, 64, 2, file, db, "shed.jsonl", "shed.db");
	querylog_test_pause(ql, true);
	for (; fwd_refused == 0; i++) {
		numbered(&r, i, false);
		if (querylog_submit(ql, &r) == 0)
			fwd_taken++;
		else
			fwd_refused++;
	}
	assert_int_equal(querylog_test_overflow_chunks(ql) + 1, 4);
	while (querylog_test_overflow_chunks(ql) + 1 < 5) {
		numbered(&r, i++, true);
		assert_int_equal(querylog_submit(ql, &r), 0);
		blk++;
	}
	uint32_t per_chunk = (fwd_taken - 48) / 4;
	querylog_test_pause(ql, false);
	querylog_free(&ql);
	int64_t stored = sql_int(db, "SELECT count(*) FROM queries WHERE blocked = 0");
	int64_t counted = sql_int(db, "SELECT coalesce(sum(forwarded), 0) FROM unlogged");
	print_message("shed: %u forwarded taken, %lld stored, %lld counted\n", fwd_taken,
	              (long long)stored, (long long)counted);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries WHERE blocked = 1"), (int64_t)blk);
	assert_int_equal(stored + counted, (int64_t)(fwd_taken + fwd_refused));
	/* shed: the ring's 48 and about one chunk; the 3 other chunks' records stored */
	assert_true(stored >= (int64_t)(fwd_taken - 48 - per_chunk - 64));
	assert_true(counted >= 48 + 1);
}

/* A reload that shrinks log.evidence_buffer_mb while forwarded records fill their half of the
 * old bound (4 MiB: 16 chunks, 8 of them forwarded): the smaller bound (1 MiB) waits until what
 * is in use fits its forwarded half, so the blocked records that come next still find the old
 * bound's other half instead of being lost at once. */
static void
test_shrinking_reload_keeps_evidence_room(void **state)
{
	char file[300], db[300];
	struct querylog *ql = NULL;
	struct querylog_record r;
	struct config cfg;
	uint32_t i = 0, fwd_refused = 0, blk = 0;

	(void)state;
	open_log_mb(&ql, 64, 4, file, db, "shrink.jsonl", "shrink.db");
	querylog_test_pause(ql, true);
	for (; fwd_refused == 0; i++) {
		numbered(&r, i, false);
		fwd_refused += querylog_submit(ql, &r) != 0;
	}
	assert_int_equal(querylog_test_overflow_chunks(ql) + 1, 8);
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.queries = CONFIG_LOG_ALL;
	cfg.log.file = file;
	cfg.log.database = db;
	cfg.log.evidence_buffer_mb = 1;
	assert_int_equal(querylog_reconfigure(ql, &cfg), 0);
	for (; blk < 10000; i++, blk++) {
		numbered(&r, i, true);
		assert_int_equal(querylog_submit(ql, &r), 0); /* room: the old bound's other half */
	}
	assert_int_equal(querylog_evidence_lost(ql), 0);
	querylog_test_pause(ql, false);
	querylog_free(&ql);
	assert_int_equal(sql_int(db, "SELECT count(*) FROM queries WHERE blocked = 1"), (int64_t)blk);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parked_writer_keeps_evidence),
	        cmocka_unit_test(test_flood_keeps_evidence),
	        cmocka_unit_test(test_bound_counts_evidence_lost),
	        cmocka_unit_test(test_forwarded_leave_half_to_evidence),
	        cmocka_unit_test(test_shedding_stops_at_half),
	        cmocka_unit_test(test_shrinking_reload_keeps_evidence_room),
	};
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
