/*
 * pgstore_conn: the helper thread of the PostgreSQL sink. What may wait on the network for
 * long runs here, never on the writer: connecting (pg_connect, its own timeout), creating or
 * migrating the schema (pg_schema_ensure: instances starting together serialise on its lock),
 * today's and tomorrow's partitions, the staging table, and retention (whole daily partitions
 * dropped, rollup rows and device events older than the bound deleted). One job at a time; the
 * writer reaps it from pgstore_tick.
 */
#include "pgstore_int.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pg.h"

/* pg_advisory_xact_lock's key for partition creation: "vetp" */
#define PART_LOCK "1986359408"
#define FOREVER   UINT64_MAX

static void
day_text(int32_t day, char *buf, size_t size, bool compact)
{
	time_t t = (time_t)day * 86400;
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, size, compact ? "%04d%02d%02d" : "%04d-%02d-%02d", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday);
}

int
pgstore_partitions(PGconn *c, int32_t lo, int32_t hi, uint64_t deadline, char *why,
                   size_t whysz)
{
	char sql[4096];
	int rc;

	if (hi - lo > 400) /* a clock far off: not a year of empty tables */
		lo = hi - 400;
	rc = pgstore_exec(c, "BEGIN; SELECT pg_advisory_xact_lock(" PART_LOCK ")", deadline, why,
	                  whysz);
	for (int32_t d = lo; d <= hi && rc == 0; d++) {
		char name[48], from[48], to[48];
		day_text(d, name, sizeof(name), true);
		day_text(d, from, sizeof(from), false);
		day_text(d + 1, to, sizeof(to), false);
		snprintf(sql, sizeof(sql),
		         "CREATE TABLE IF NOT EXISTS queries_%s PARTITION OF queries"
		         " FOR VALUES FROM ('%s 00:00:00+00') TO ('%s 00:00:00+00')",
		         name, from, to);
		rc = pgstore_exec(c, sql, deadline, why, whysz);
	}
	if (rc == 0)
		return pgstore_exec(c, "COMMIT", deadline, why, whysz);
	char ignored[64];
	pgstore_exec(c, "ROLLBACK", deadline, ignored, sizeof(ignored));
	return rc;
}

/* Drops the partitions of days wholly older than the bound and deletes older rollup rows and
 * device events. Waits for locks at most 5 s (a long report holding the table). */
static int
retention(PGconn *c, uint32_t days, uint64_t wall_ms, char *why, size_t whysz)
{
	uint64_t cut_ms = wall_ms - (uint64_t)days * PGSTORE_DAY_MS;
	int32_t cut_day = (int32_t)(cut_ms / PGSTORE_DAY_MS);
	char sql[1024], name[48];
	int rc;

	if ((uint64_t)days * PGSTORE_DAY_MS >= wall_ms)
		return 0;
	day_text(cut_day, name, sizeof(name), true);
	rc = pgstore_exec(c, "SET lock_timeout = '5s'", FOREVER, why, whysz);
	if (rc != 0)
		return rc;
	snprintf(sql, sizeof(sql),
	         "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
	         " WHERE i.inhparent = 'queries'::regclass"
	         " AND c.relname ~ '^queries_[0-9]{8}$' AND c.relname < 'queries_%s'"
	         " ORDER BY 1",
	         name);
	PGresult *r = PQexec(c, sql);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		pg_error(c, r, why, whysz);
		PQclear(r);
		return -EIO;
	}
	int dropped = 0;
	for (int i = 0; i < PQntuples(r) && rc == 0; i++) {
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS %s", PQgetvalue(r, i, 0));
		rc = pgstore_exec(c, sql, FOREVER, why, whysz);
		dropped += rc == 0;
	}
	PQclear(r);
	if (rc != 0)
		return rc;
	snprintf(sql, sizeof(sql),
	         "BEGIN;"
	         "DELETE FROM rollup_sources WHERE hour < to_timestamp(%llu / 1000.0);"
	         "DELETE FROM rollup_names WHERE hour < to_timestamp(%llu / 1000.0);"
	         "DELETE FROM rollup_days WHERE day < (to_timestamp(%llu / 1000.0)"
	         " AT TIME ZONE 'UTC')::date;"
	         "DELETE FROM device_events WHERE ts < to_timestamp(%llu / 1000.0);"
	         "COMMIT",
	         (unsigned long long)cut_ms, (unsigned long long)cut_ms,
	         (unsigned long long)cut_ms, (unsigned long long)cut_ms);
	rc = pgstore_exec(c, sql, FOREVER, why, whysz);
	if (rc != 0) {
		char ignored[64];
		pgstore_exec(c, "ROLLBACK", FOREVER, ignored, sizeof(ignored));
		return rc;
	}
	if (dropped > 0)
		log_info("query store: retention (%u days): %d daily partitions dropped",
		         (unsigned)days, dropped);
	return pgstore_exec(c, "RESET lock_timeout", FOREVER, why, whysz);
}

static void *
job_main(void *arg)
{
	struct pgstore *ps = arg;
	struct pgstore_job *j = &ps->job;
	PGconn *c = NULL;
	int32_t today = (int32_t)(j->wall_ms / PGSTORE_DAY_MS);

	j->rc = pg_connect(&ps->cfg, "writer", &c, j->why, sizeof(j->why));
	if (j->rc == 0 && PQsetnonblocking(c, 1) != 0) {
		pg_error(c, NULL, j->why, sizeof(j->why));
		j->rc = -EIO;
	}
	if (j->rc == 0 && j->handoff) {
		j->rc = pg_schema_ensure(c, ps->instance, j->why, sizeof(j->why));
		if (j->rc == 0)
			j->rc = pgstore_partitions(c, today, today + 1, FOREVER, j->why,
			                           sizeof(j->why));
		if (j->rc == 0)
			j->rc = pgstore_exec(c,
			                     "CREATE TEMP TABLE veto_batch (LIKE queries)"
			                     " ON COMMIT DELETE ROWS",
			                     FOREVER, j->why, sizeof(j->why));
	}
	if (j->rc == 0 && j->retention_days > 0)
		j->rc = retention(c, j->retention_days, j->wall_ms, j->why, sizeof(j->why));
	if (j->rc != 0 || !j->handoff) {
		PQfinish(c);
		c = NULL;
	}
	j->conn = c;
	atomic_store(&j->done, true);
	return NULL;
}

void
pgstore_job_start(struct pgstore *ps, bool handoff, uint32_t retention_days)
{
	struct pgstore_job *j = &ps->job;
	sigset_t all, old;

	j->handoff = handoff;
	j->retention_days = retention_days;
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	j->wall_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
	j->conn = NULL;
	j->rc = 0;
	j->why[0] = '\0';
	atomic_store(&j->done, false);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&j->thread, NULL, job_main, ps);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("query store: cannot start the connection thread: %s", strerror(rc));
		return;
	}
	j->running = true;
}

bool
pgstore_job_reap(struct pgstore *ps)
{
	struct pgstore_job *j = &ps->job;

	if (!j->running || !atomic_load(&j->done))
		return false;
	pthread_join(j->thread, NULL);
	j->running = false;
	return true;
}
