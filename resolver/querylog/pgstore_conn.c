/*
 * pgstore_conn: what the PostgreSQL sink's sender thread does besides sending: connecting
 * (pg_connect, its own timeout), creating or migrating the schema (pg_schema_ensure: instances
 * starting together serialise on its lock), today's and tomorrow's partitions (under an
 * advisory lock: two instances), the staging table, and retention (whole daily partitions
 * dropped, rollup rows and device events older than the bound deleted). These block: never on
 * the querylog writer thread.
 */
#include "pgstore_int.h"

#include <errno.h>
#include <stdio.h>
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
int
pgstore_retention(PGconn *c, uint32_t days, uint64_t wall_ms, char *why, size_t whysz)
{
	uint64_t cut_ms = wall_ms - (uint64_t)days * PGSTORE_DAY_MS;
	int32_t cut_day = (int32_t)(cut_ms / PGSTORE_DAY_MS);
	char sql[2048], name[48];
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
	         "DELETE FROM rollup_hours WHERE hour < to_timestamp(%llu / 1000.0);"
	         "DELETE FROM rollup_days WHERE day < (to_timestamp(%llu / 1000.0)"
	         " AT TIME ZONE 'UTC')::date;"
	         "DELETE FROM rollup_name_days WHERE day < (to_timestamp(%llu / 1000.0)"
	         " AT TIME ZONE 'UTC')::date;"
	         "DELETE FROM rollup_attempts WHERE day < (to_timestamp(%llu / 1000.0)"
	         " AT TIME ZONE 'UTC')::date;"
	         "DELETE FROM rollup_attempt_names WHERE last_ts < ((to_timestamp(%llu / 1000.0)"
	         " AT TIME ZONE 'UTC')::date)::timestamp AT TIME ZONE 'UTC';"
	         "DELETE FROM device_events WHERE ts < to_timestamp(%llu / 1000.0);"
	         "COMMIT",
	         (unsigned long long)cut_ms, (unsigned long long)cut_ms, (unsigned long long)cut_ms,
	         (unsigned long long)cut_ms, (unsigned long long)cut_ms, (unsigned long long)cut_ms,
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

/* Rollup rows are updated in place every batch: with room left on their pages (fillfactor 50)
 * an update stays on its page and touches no index (a HOT update), which measured about a
 * third less time per upsert. A storage setting, set once; the tables keep their meaning. */
static const char fillfactor_sql[] =
        "DO $$BEGIN"
        " IF NOT EXISTS (SELECT 1 FROM pg_class WHERE oid = 'rollup_names'::regclass"
        "  AND reloptions @> '{fillfactor=50}') THEN"
        "  PERFORM pg_advisory_xact_lock(" PART_LOCK ");"
        "  ALTER TABLE rollup_sources SET (fillfactor = 50);"
        "  ALTER TABLE rollup_days SET (fillfactor = 50);"
        "  ALTER TABLE rollup_names SET (fillfactor = 50);"
        "  ALTER TABLE rollup_hours SET (fillfactor = 50);"
        " END IF; END$$";

static bool
stop_asked(void *arg)
{
	return pgstore_stopping(arg);
}

int
pgstore_connect(struct pgstore *ps, uint64_t wall_ms, PGconn **out, char *why, size_t whysz)
{
	PGconn *c = NULL;
	int32_t today = (int32_t)(wall_ms / PGSTORE_DAY_MS);
	int rc = pg_connect_until(&ps->cfg, "writer", ps->wake_fd, stop_asked, ps, &c, why, whysz);

	if (rc != 0)
		return rc;
	/* a transaction of this writer's that the network cut off (its FIN lost) ends on the
	   server after this, so that its batch key, held uncommitted, does not block the replay of
	   that batch until TCP gives up (hours) */
	rc = pgstore_exec(c, "SET idle_in_transaction_session_timeout = '30s'", FOREVER, why,
	                  whysz);
	if (rc == 0)
		rc = pg_schema_ensure(c, ps->instance, why, whysz);
	if (rc == 0)
		rc = pgstore_partitions(c, today, today + 1, FOREVER, why, whysz);
	if (rc == 0)
		rc = pgstore_exec(c, fillfactor_sql, FOREVER, why, whysz);
	if (rc == 0)
		rc = pgstore_exec(c, "CREATE TEMP TABLE veto_batch (LIKE queries) ON COMMIT DELETE ROWS",
		                  FOREVER, why, whysz);
	if (rc == 0 && PQsetnonblocking(c, 1) != 0) {
		pg_error(c, NULL, why, whysz);
		rc = -EIO;
	}
	if (rc != 0) {
		PQfinish(c);
		return rc;
	}
	*out = c;
	return 0;
}
