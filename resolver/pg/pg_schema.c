/*
 * pg_schema: creating and migrating the shared store's schema. Each step is one SQL text
 * (pg_schema_log.c, pg_schema_devices.c); the steps a database lacks run in one transaction
 * holding a transaction-scoped advisory lock, so two instances starting together serialise: the
 * second finds the steps done. veto_schema records every step and which instance applied it.
 */
#include "pg.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

/* pg_advisory_xact_lock's key: "veto" in ASCII, the same in every build. */
#define PG_SCHEMA_LOCK "1986359407"

static const char *const steps[PG_SCHEMA_VERSION] = {
        pg_schema_log_sql,      pg_schema_devices_sql,  pg_schema_attempts_sql,
        pg_schema_batches_sql, pg_schema_name_days_sql};

int
pg_schema_version(PGconn *c)
{
	PGresult *r = PQexec(c, "SELECT coalesce(max(version), 0) FROM veto_schema");
	int v = -EIO;
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
		v = atoi(PQgetvalue(r, 0, 0));
	PQclear(r);
	return v;
}

int
pg_schema_ensure(PGconn *c, const char *instance, char *why, size_t whysz)
{
	if (pg_exec(c, "BEGIN", why, whysz) < 0)
		return -EIO;
	if (pg_exec(c, "SELECT pg_advisory_xact_lock(" PG_SCHEMA_LOCK ")", why, whysz) < 0 ||
	    pg_exec(c,
	            "CREATE TABLE IF NOT EXISTS veto_schema ("
	            " version integer PRIMARY KEY,"
	            " applied_at timestamptz NOT NULL DEFAULT now(),"
	            " instance text)",
	            why, whysz) < 0)
		goto fail;
	int v = pg_schema_version(c);
	if (v < 0) {
		pg_error(c, NULL, why, whysz);
		goto fail;
	}
	if (v > PG_SCHEMA_VERSION) {
		snprintf(why, whysz,
		         "the database has schema version %d, newer than this veto's %d: "
		         "upgrade veto on this machine",
		         v, PG_SCHEMA_VERSION);
		pg_exec(c, "ROLLBACK", NULL, 0);
		return -EPROTO;
	}
	for (int i = v; i < PG_SCHEMA_VERSION; i++) {
		if (pg_exec(c, steps[i], why, whysz) < 0)
			goto fail;
		char ver[16];
		snprintf(ver, sizeof(ver), "%d", i + 1);
		const char *params[2] = {ver, instance};
		PGresult *r = PQexecParams(c,
		                           "INSERT INTO veto_schema (version, instance) "
		                           "VALUES ($1::integer, $2)",
		                           2, NULL, params, NULL, NULL, 0);
		int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
		if (!ok)
			pg_error(c, r, why, whysz);
		PQclear(r);
		if (!ok)
			goto fail;
	}
	if (pg_exec(c, "COMMIT", why, whysz) < 0)
		return -EIO;
	return 0;
fail:
	pg_exec(c, "ROLLBACK", NULL, 0);
	return -EIO;
}
