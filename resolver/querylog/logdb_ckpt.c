/*
 * logdb_ckpt: the WAL checkpoints of the query store, off the writer thread.
 *
 * The writer's connection has wal_autocheckpoint 0 and a WAL hook instead (on_wal_commit, run
 * by SQLite after each commit with the WAL's frames). The hook only records the size and wakes
 * the checkpoint thread ("veto-ckpt") once the WAL holds soft pages or more; the thread, with its
 * own connection to the same file, copies the WAL into the database with a PASSIVE checkpoint,
 * which takes no lock the writer waits for: its fdatasync and its copying cost the writer
 * nothing. Once a PASSIVE checkpoint has copied every frame before the writer's next
 * transaction begins, that transaction starts the WAL again from its beginning. A writer that
 * never pauses always has a transaction open, whose snapshot began before the pass ended: the
 * WAL then starts again only through the writer's own pass past last pages, which copies only
 * the frames the thread has not (those of its last commit or two) and syncs.
 *
 * The thread never runs a RESTART or TRUNCATE checkpoint: those hold the WAL's write lock while
 * they wait and sync, and the writer, whose transaction may begin with a read (a dictionary
 * lookup) and then upgrade to a write, gets SQLITE_BUSY at once on that upgrade (SQLite calls
 * no busy handler there), which would fail its batch. A PASSIVE pass takes no lock the writer
 * needs. A reader with an old snapshot (a long `veto report`) keeps any checkpoint from
 * copying past it: past last pages the writer checkpoints in its hook itself, a PASSIVE one as
 * before this thread existed, and while a reader keeps its snapshot the WAL grows until that
 * reader ends, as it always did.
 *
 * Errors (a full disk, I/O) are logged once per episode and the end of the episode once; the
 * writer is not affected (its commits are in the WAL, which stays until a checkpoint works).
 */
#include "logdb_int.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"

#define CKPT_RETRY_MS 1000 /* after an incomplete or failed checkpoint */

static int
on_wal_commit(void *arg, sqlite3 *s, const char *dbname, int pages)
{
	struct logdb_ckpt *c = arg;
	uint32_t n = pages > 0 ? (uint32_t)pages : 0;

	atomic_store(&c->wal_pages, n);
	if (c->running && n >= c->soft) {
		pthread_mutex_lock(&c->mu);
		c->commits++;
		pthread_cond_signal(&c->cv);
		pthread_mutex_unlock(&c->mu);
	}
	if (n >= c->last || (!c->running && n >= c->soft)) {
		/* the last resort: the writer copies the WAL itself */
		atomic_fetch_add(&c->stats.writer_ckpts, 1);
		sqlite3_wal_checkpoint_v2(s, dbname, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
	}
	return SQLITE_OK;
}

static void
report(struct logdb_ckpt *c, int rc, sqlite3 *s)
{
	if (c->failing)
		return;
	c->failing = true;
	atomic_fetch_add(&c->stats.errors, 1);
	log_error("query database: '%s': checkpoint: %s (the write-ahead log grows until it works "
	          "again; nothing is lost)",
	          c->path, s != NULL ? sqlite3_errmsg(s) : sqlite3_errstr(rc));
}

/* One pass: opens the connection when needed, PASSIVE (never a lock the writer needs). Returns true
 * when every frame is in the database. */
static bool
checkpoint(struct logdb_ckpt *c)
{
	int log = 0, done = 0, rc;
	bool complete;

	if (c->db == NULL) {
		rc = sqlite3_open_v2(c->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX,
		                     NULL);
		if (rc != SQLITE_OK) {
			report(c, rc, c->db);
			sqlite3_close_v2(c->db);
			c->db = NULL;
			return false;
		}
		sqlite3_extended_result_codes(c->db, 1);
		/* a first read opens the WAL (before it, a checkpoint does nothing: log -1) */
		rc = logdb_exec(c->db, "SELECT count(*) FROM sqlite_master");
		if (rc != SQLITE_OK) {
			report(c, rc, c->db);
			sqlite3_close_v2(c->db);
			c->db = NULL;
			return false;
		}
	}
	sqlite3_busy_timeout(c->db, 0);
	rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
	if ((rc & 0xff) == SQLITE_BUSY)
		return false; /* another checkpoint (the writer's, a closing reader's) */
	/* log -1: not a WAL (cannot be: the writer made it one) */
	complete = rc == SQLITE_OK && done >= log;
	if (rc != SQLITE_OK) {
		report(c, rc, c->db);
		return false;
	}
	atomic_fetch_add(&c->stats.passes, 1);
	if (c->failing) {
		c->failing = false;
		log_warning("query database: '%s': checkpoints work again", c->path);
	}
	return complete;
}

/* The thread: a pass after each commit that finds soft pages or more in the WAL; after a pass
 * that left frames behind, another every CKPT_RETRY_MS (a reader may have ended). */
static void *
run(void *arg)
{
	struct logdb_ckpt *c = arg;
	uint64_t seen = 0;
	bool retry = false;

	pthread_setname_np(pthread_self(), "veto-ckpt"); /* for top -H, ps -L */
	pthread_mutex_lock(&c->mu);
	while (!c->stop) {
		if (c->commits != seen) {
			seen = c->commits;
			pthread_mutex_unlock(&c->mu);
			retry = !checkpoint(c);
			pthread_mutex_lock(&c->mu);
			continue;
		}
		if (!retry) {
			pthread_cond_wait(&c->cv, &c->mu);
			continue;
		}
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += CKPT_RETRY_MS / 1000;
		if (pthread_cond_timedwait(&c->cv, &c->mu, &until) == ETIMEDOUT && !c->stop) {
			pthread_mutex_unlock(&c->mu);
			retry = !checkpoint(c);
			pthread_mutex_lock(&c->mu);
		}
	}
	pthread_mutex_unlock(&c->mu);
	if (c->db != NULL)
		sqlite3_close_v2(c->db);
	c->db = NULL;
	return NULL;
}

void
logdb_ckpt_start(struct logdb_ckpt *c, sqlite3 *writer, const char *path, uint32_t soft,
                 bool thread)
{
	pthread_condattr_t ca;

	/* the counters (stats) stay across reopens */
	c->running = c->stop = c->failing = false;
	c->commits = 0;
	c->db = NULL;
	atomic_store(&c->wal_pages, 0);
	c->path = path;
	c->soft = soft;
	c->last = soft * 4;
	logdb_exec(writer, "PRAGMA wal_autocheckpoint = 0");
	if (thread && pthread_condattr_init(&ca) == 0) {
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		if (pthread_mutex_init(&c->mu, NULL) == 0) {
			if (pthread_cond_init(&c->cv, &ca) == 0) {
				if (pthread_create(&c->thread, NULL, run, c) == 0)
					c->running = true;
				else
					pthread_cond_destroy(&c->cv);
			}
			if (!c->running)
				pthread_mutex_destroy(&c->mu);
		}
		pthread_condattr_destroy(&ca);
	}
	if (thread && !c->running)
		log_warning("query database: '%s': no checkpoint thread; the writer checkpoints",
		            path);
	/* after the pragma, which sets a hook of its own (or none) */
	sqlite3_wal_hook(writer, on_wal_commit, c);
}

void
logdb_ckpt_stop(struct logdb_ckpt *c, sqlite3 *writer)
{
	if (writer != NULL)
		sqlite3_wal_hook(writer, NULL, NULL);
	if (!c->running)
		return;
	pthread_mutex_lock(&c->mu);
	c->stop = true;
	pthread_cond_signal(&c->cv);
	pthread_mutex_unlock(&c->mu);
	pthread_join(c->thread, NULL);
	pthread_cond_destroy(&c->cv);
	pthread_mutex_destroy(&c->mu);
	c->running = false;
}
