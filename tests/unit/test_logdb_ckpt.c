/*
 * test_logdb_ckpt: the query store's WAL checkpoints (logdb_ckpt.c). Under a sustained write
 * load the checkpoint thread keeps the -wal file under its bound and the writer never
 * checkpoints itself; without the thread the writer does (the last resort), and the WAL is
 * still bounded; a reader that pins the WAL makes it grow without a failed write, and once it
 * ends the thread catches up.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "logdb.h"
#include "logdb_int.h"

#define LOGDB_HARNESS_TMP "/tmp/test_logdb_ckpt.XXXXXX"
#include "logdb_harness.h"

#define SOFT    200 /* WAL pages that wake the thread (last 800) */
#define COMMITS 60
#define ROWS    400 /* per commit: new names, so every commit writes fresh pages */

static int64_t
wal_size(const char *path)
{
	char wal[400];
	struct stat sb;

	snprintf(wal, sizeof(wal), "%s-wal", path);
	return stat(wal, &sb) == 0 ? (int64_t)sb.st_size : 0;
}

static void
add_rows(struct logdb *db, int commit)
{
	char name[64];
	struct querylog_record r;

	for (int i = 0; i < ROWS; i++) {
		snprintf(name, sizeof(name), "n%d-%d.load.example", commit, i);
		struct rec x = {.age_ms = 1000,
		                .client = "10.0.0.9",
		                .qname = name,
		                .group = "staff",
		                .action = QUERYLOG_ACTION_FORWARD};
		make_record(&r, &x);
		assert_int_equal(logdb_add(db, &r), 0);
	}
}

/* Waits (10 s at most: the test fails after) until the thread has finished a pass after p0. */
static void
wait_pass(struct logdb *db, uint64_t p0)
{
	struct timespec ms = {0, 1000000};

	for (int i = 0; i < 10000; i++) {
		if (atomic_load(&db->ckpt.stats.passes) > p0)
			return;
		nanosleep(&ms, NULL);
	}
	fail_msg("no checkpoint pass within 10 s");
}

/* The page size of the file, for the bound in bytes. */
static int64_t
frame_bytes(const char *path)
{
	return sql_int(path, "PRAGMA page_size") + 24;
}

static void
test_thread_bounds_wal(void **state)
{
	char path[300];
	struct logdb_options opt = {.wal_pages = SOFT};
	struct logdb *db = NULL;
	int64_t most = 0;

	(void)state;
	tmp_path(path, sizeof(path), "thread.db");
	opt.path = path;
	assert_int_equal(logdb_new(&opt, &db), 0);
	assert_true(db->ckpt.running);
	for (int c = 0; c < COMMITS; c++) {
		uint64_t p0 = atomic_load(&db->ckpt.stats.passes);
		add_rows(db, c);
		assert_int_equal(logdb_commit(db), 0);
		if (atomic_load(&db->ckpt.wal_pages) >= SOFT)
			wait_pass(db, p0);
		int64_t n = wal_size(path);
		most = n > most ? n : most;
	}
	int64_t frame = frame_bytes(path);
	/* every page of the rows went through the WAL: far more than the bound */
	assert_true(sql_int(path, "PRAGMA page_count") > 4 * SOFT);
	assert_true(most <= 2 * SOFT * frame + 32);
	assert_true(atomic_load(&db->ckpt.stats.passes) > 0);
	assert_int_equal(atomic_load(&db->ckpt.stats.writer_ckpts), 0);
	assert_int_equal(logdb_dropped(db), 0);
	logdb_free(&db);
	assert_int_equal(wal_size(path), 0); /* the last close checkpoints and removes it */
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), COMMITS * ROWS);
}

static void
test_writer_without_thread(void **state)
{
	char path[300];
	struct logdb_options opt = {.wal_pages = SOFT, .no_ckpt_thread = true};
	struct logdb *db = NULL;
	int64_t most = 0;

	(void)state;
	tmp_path(path, sizeof(path), "writer.db");
	opt.path = path;
	assert_int_equal(logdb_new(&opt, &db), 0);
	assert_false(db->ckpt.running);
	for (int c = 0; c < COMMITS; c++) {
		add_rows(db, c);
		assert_int_equal(logdb_commit(db), 0);
		int64_t n = wal_size(path);
		most = n > most ? n : most;
	}
	assert_true(most <= 2 * SOFT * frame_bytes(path) + 32);
	assert_true(atomic_load(&db->ckpt.stats.writer_ckpts) > 0);
	assert_int_equal(atomic_load(&db->ckpt.stats.passes), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), COMMITS * ROWS);
}

/* A reader's snapshot pins the WAL: it grows past twice soft (no checkpoint can pass it, no
 * write fails); once the reader ends, a pass copies everything. */
static void
test_reader_pins_wal(void **state)
{
	char path[300];
	struct logdb_options opt = {.wal_pages = SOFT};
	struct logdb *db = NULL;
	sqlite3 *rd = NULL;
	sqlite3_stmt *st = NULL;

	(void)state;
	tmp_path(path, sizeof(path), "pinned.db");
	opt.path = path;
	assert_int_equal(logdb_new(&opt, &db), 0);
	add_rows(db, 0);
	assert_int_equal(logdb_commit(db), 0);
	assert_int_equal(sqlite3_open_v2(path, &rd, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(rd, "SELECT id FROM queries", -1, &st, NULL),
	                 SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW); /* holds its snapshot */
	for (int c = 1; c < 20; c++) {
		uint64_t p0 = atomic_load(&db->ckpt.stats.passes);
		add_rows(db, c);
		assert_int_equal(logdb_commit(db), 0);
		if (atomic_load(&db->ckpt.wal_pages) >= SOFT)
			wait_pass(db, p0);
	}
	int64_t frame = frame_bytes(path);
	assert_true(wal_size(path) > 2 * SOFT * frame);
	assert_int_equal(atomic_load(&db->ckpt.stats.writer_ckpts), 0);
	assert_int_equal(logdb_dropped(db), 0);
	sqlite3_finalize(st);
	sqlite3_close(rd);
	/* the reader is gone: the next pass copies every frame, the writer's next transaction
	 * starts the WAL again at its beginning */
	uint64_t p0 = atomic_load(&db->ckpt.stats.passes);
	add_rows(db, 20);
	assert_int_equal(logdb_commit(db), 0);
	wait_pass(db, p0);
	add_rows(db, 21);
	assert_int_equal(logdb_commit(db), 0);
	assert_true(atomic_load(&db->ckpt.wal_pages) < SOFT);
	assert_int_equal(logdb_dropped(db), 0);
	logdb_free(&db);
	assert_int_equal(sql_int(path, "SELECT count(*) FROM queries"), 22 * ROWS);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_thread_bounds_wal),
	        cmocka_unit_test(test_writer_without_thread),
	        cmocka_unit_test(test_reader_pins_wal),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
