/*
 * pgstore_send: libpq in non-blocking mode with a deadline, for the writer thread. A statement
 * or a COPY that is not done by the deadline is abandoned (the caller drops the connection; the
 * server rolls the transaction back), so a slow or silent database holds the writer at most
 * PGSTORE_SEND_MS per PGSTORE_BATCH_ROWS rows.
 */
#include "pgstore_int.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "pg.h"

#define COPY_CHUNK 65536

uint64_t
pgstore_deadline(uint64_t rows)
{
	uint64_t n = (rows + PGSTORE_BATCH_ROWS - 1) / PGSTORE_BATCH_ROWS;

	return pgstore_mono_ms() + (n > 1 ? n : 1) * PGSTORE_SEND_MS;
}

uint64_t
pgstore_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Waits until the socket is readable (or writable too when 'out'). 0, -ETIMEDOUT, -EPIPE. */
static int
wait_sock(PGconn *c, bool out, uint64_t deadline)
{
	uint64_t now = pgstore_mono_ms();

	if (now >= deadline)
		return -ETIMEDOUT;
	struct pollfd p = {.fd = PQsocket(c), .events = POLLIN | (out ? POLLOUT : 0)};
	if (p.fd < 0)
		return -EPIPE;
	/* UINT64_MAX: no deadline (the helper thread) */
	uint64_t left = deadline - now;
	int n = poll(&p, 1, deadline == UINT64_MAX ? -1 : left > 60000 ? 60000 : (int)left);
	if (n == 0)
		return -ETIMEDOUT;
	if (n < 0 && errno != EINTR)
		return -EPIPE;
	return 0;
}

/* Sends what libpq holds. */
static int
flush_out(PGconn *c, uint64_t deadline)
{
	int r;

	while ((r = PQflush(c)) == 1) {
		int rc = wait_sock(c, true, deadline);
		if (rc != 0)
			return rc;
		if (PQconsumeInput(c) == 0)
			return -EPIPE;
	}
	return r == 0 ? 0 : -EPIPE;
}

/* The error class of a failed result: the data was refused (22 data exception, 23 integrity,
 * 42 syntax or undefined object: sending it again cannot work) or anything else. */
static int
result_error(PGconn *c, const PGresult *r, char *why, size_t whysz)
{
	const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);

	pg_error(c, r, why, whysz);
	if (PQstatus(c) != CONNECTION_OK)
		return -EPIPE;
	if (state != NULL && (strncmp(state, "22", 2) == 0 || strncmp(state, "23", 2) == 0 ||
	                      strncmp(state, "42", 2) == 0))
		return -EINVAL;
	return -EIO;
}

/* Reads results until libpq has none left, or until one is COPY IN (then *copy_in). The first
 * error is kept; *affected (when not NULL) gets the row count of the last command. */
static int
collect(PGconn *c, uint64_t deadline, bool *copy_in, long *affected, char *why, size_t whysz)
{
	int rc = 0;

	for (;;) {
		while (PQisBusy(c)) {
			int w = wait_sock(c, false, deadline);
			if (w != 0)
				return w;
			if (PQconsumeInput(c) == 0) {
				pg_error(c, NULL, why, whysz);
				return -EPIPE;
			}
		}
		PGresult *r = PQgetResult(c);
		if (r == NULL)
			break;
		ExecStatusType st = PQresultStatus(r);
		if (st == PGRES_COPY_IN && copy_in != NULL && rc == 0) {
			PQclear(r);
			*copy_in = true;
			return 0;
		}
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK && rc == 0)
			rc = result_error(c, r, why, whysz);
		if (st == PGRES_COMMAND_OK && affected != NULL)
			*affected = atol(PQcmdTuples(r));
		PQclear(r);
		if (st == PGRES_COPY_IN) /* not expected: end it */
			PQputCopyEnd(c, "unexpected");
	}
	if (rc == 0 && PQstatus(c) != CONNECTION_OK) {
		pg_error(c, NULL, why, whysz);
		rc = -EPIPE;
	}
	return rc;
}

int
pgstore_exec(PGconn *c, const char *sql, uint64_t deadline, char *why, size_t whysz)
{
	if (PQsendQuery(c, sql) == 0) {
		pg_error(c, NULL, why, whysz);
		return PQstatus(c) != CONNECTION_OK ? -EPIPE : -EIO;
	}
	int rc = flush_out(c, deadline);
	if (rc != 0) {
		snprintf(why, whysz, "%s", rc == -ETIMEDOUT ? "timed out" : "connection lost");
		return rc;
	}
	rc = collect(c, deadline, NULL, NULL, why, whysz);
	if (rc == -ETIMEDOUT)
		snprintf(why, whysz, "timed out");
	return rc;
}

int
pgstore_exec_params(PGconn *c, const char *sql, int n, const char *const *values,
                    uint64_t deadline, long *affected, char *why, size_t whysz)
{
	long count = 0;

	if (PQsendQueryParams(c, sql, n, NULL, values, NULL, NULL, 0) == 0) {
		pg_error(c, NULL, why, whysz);
		return PQstatus(c) != CONNECTION_OK ? -EPIPE : -EIO;
	}
	int rc = flush_out(c, deadline);
	if (rc != 0) {
		snprintf(why, whysz, "%s", rc == -ETIMEDOUT ? "timed out" : "connection lost");
		return rc;
	}
	rc = collect(c, deadline, NULL, &count, why, whysz);
	if (rc == -ETIMEDOUT)
		snprintf(why, whysz, "timed out");
	if (rc == 0 && affected != NULL)
		*affected = count;
	return rc;
}

/* Queues data (PQputCopyData in non-blocking mode may refuse while its buffer is full). */
static int
put_data(PGconn *c, const char *p, size_t n, uint64_t deadline)
{
	for (;;) {
		int r = PQputCopyData(c, p, (int)n);
		if (r == 1)
			return 0;
		if (r < 0)
			return -EPIPE;
		int rc = wait_sock(c, true, deadline);
		if (rc == 0 && PQconsumeInput(c) == 0)
			rc = -EPIPE;
		if (rc == 0 && PQflush(c) < 0)
			rc = -EPIPE;
		if (rc != 0)
			return rc;
	}
}

int
pgstore_copy(PGconn *c, const char *sql, const char *data, size_t len, uint64_t deadline,
             char *why, size_t whysz)
{
	bool copy_in = false;
	int rc;

	if (PQsendQuery(c, sql) == 0) {
		pg_error(c, NULL, why, whysz);
		return PQstatus(c) != CONNECTION_OK ? -EPIPE : -EIO;
	}
	rc = flush_out(c, deadline);
	if (rc == 0)
		rc = collect(c, deadline, &copy_in, NULL, why, whysz);
	if (rc != 0 || !copy_in)
		goto done;
	for (size_t off = 0; off < len && rc == 0; off += COPY_CHUNK)
		rc = put_data(c, data + off, len - off < COPY_CHUNK ? len - off : COPY_CHUNK,
		              deadline);
	while (rc == 0) {
		int r = PQputCopyEnd(c, NULL);
		if (r == 1)
			break;
		if (r < 0)
			rc = -EPIPE;
		else
			rc = wait_sock(c, true, deadline);
	}
	if (rc == 0)
		rc = flush_out(c, deadline);
	if (rc == 0)
		return collect(c, deadline, NULL, NULL, why, whysz);
done:
	if (rc == -ETIMEDOUT)
		snprintf(why, whysz, "timed out");
	else if (rc == -EPIPE)
		pg_error(c, NULL, why, whysz);
	else if (rc == 0 && !copy_in)
		snprintf(why, whysz, "COPY did not start");
	return rc != 0 ? rc : -EIO;
}

/* The rows, then the rollups aggregated from the staging table in the transaction of its
 * rows ('' for none in every key column). */
static const char insert_sql[] =
        "INSERT INTO queries (" PGSTORE_QUERY_COLS ") SELECT " PGSTORE_QUERY_COLS
        " FROM veto_batch;"
        "INSERT INTO rollup_sources AS r (hour, instance, client, mac, device, group_name,"
        " vendor, list, action, blocked, n)"
        " SELECT date_trunc('hour', ts), instance, client, coalesce(mac, ''),"
        " coalesce(device, ''), coalesce(group_name, ''), coalesce(vendor, ''),"
        " coalesce(list, ''), coalesce(action, ''), blocked, count(*)"
        " FROM veto_batch GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
        " ON CONFLICT (hour, instance, client, mac, device, group_name, vendor, list, action,"
        " blocked) DO UPDATE SET n = r.n + EXCLUDED.n;"
        "INSERT INTO rollup_days AS r (day, instance, client, mac, device, group_name,"
        " vendor, list, action, blocked, n)"
        " SELECT (ts AT TIME ZONE 'UTC')::date, instance, client, coalesce(mac, ''),"
        " coalesce(device, ''), coalesce(group_name, ''), coalesce(vendor, ''),"
        " coalesce(list, ''), coalesce(action, ''), blocked, count(*)"
        " FROM veto_batch GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10"
        " ON CONFLICT (day, instance, client, mac, device, group_name, vendor, list, action,"
        " blocked) DO UPDATE SET n = r.n + EXCLUDED.n;"
        "INSERT INTO rollup_names AS r (qname, hour, instance, list, action, blocked, n)"
        " SELECT coalesce(qname, ''), date_trunc('hour', ts), instance, coalesce(list, ''),"
        " coalesce(action, ''), blocked, count(*)"
        " FROM veto_batch GROUP BY 1, 2, 3, 4, 5, 6"
        " ON CONFLICT (qname, hour, instance, list, action, blocked)"
        " DO UPDATE SET n = r.n + EXCLUDED.n;"
        /* the names per day (pg_schema_name_days.c), upserted in key order */
        "INSERT INTO rollup_name_days AS r (qname, day, instance, list, action, blocked, n)"
        " SELECT coalesce(qname, ''), (ts AT TIME ZONE 'UTC')::date, instance,"
        " coalesce(list, ''), coalesce(action, ''), blocked, count(*)"
        " FROM veto_batch GROUP BY 1, 2, 3, 4, 5, 6 ORDER BY 1, 2, 3, 4, 5, 6"
        " ON CONFLICT (qname, day, instance, list, action, blocked)"
        " DO UPDATE SET n = r.n + EXCLUDED.n;"
        "INSERT INTO rollup_hours AS r (hour, instance, total, blocked)"
        " SELECT date_trunc('hour', ts), instance, count(*), count(*) FILTER (WHERE blocked)"
        " FROM veto_batch GROUP BY 1, 2"
        " ON CONFLICT (hour, instance)"
        " DO UPDATE SET total = r.total + EXCLUDED.total, blocked = r.blocked + EXCLUDED.blocked;"
        /* what `report attempts` reads (pg_schema_attempts.c): the blocked rows per day and
         * device, and the last attempt of each (device, name), upserted in key order */
        "INSERT INTO rollup_attempts AS r (day, instance, key, by_ip, list, n, first_ts, last_ts)"
        " SELECT (ts AT TIME ZONE 'UTC')::date, instance, coalesce(mac, client), mac IS NULL,"
        " coalesce(list, ''), count(*), min(ts), max(ts) FROM veto_batch WHERE blocked"
        " GROUP BY 1, 2, 3, 4, 5"
        " ON CONFLICT (day, instance, key, by_ip, list) DO UPDATE SET n = r.n + EXCLUDED.n,"
        " first_ts = least(r.first_ts, EXCLUDED.first_ts),"
        " last_ts = greatest(r.last_ts, EXCLUDED.last_ts);"
        "INSERT INTO rollup_attempt_names AS r (key, by_ip, qname, last_ts)"
        " SELECT coalesce(mac, client), mac IS NULL, coalesce(qname, ''), max(ts)"
        " FROM veto_batch WHERE blocked AND list IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        " ON CONFLICT (key, by_ip, qname) DO UPDATE SET last_ts = greatest(r.last_ts,"
        " EXCLUDED.last_ts)";

/* The batch's key, in its transaction before its rows: a second attempt finds it (or waits
 * for the first attempt's transaction to end, then finds it or not). */
static int
claim(PGconn *c, const struct pgstore_key *k, uint64_t deadline, bool *already, char *why,
      size_t whysz)
{
	char run[24], seq[24], rows[16], events[16];
	long inserted = 0;

	snprintf(run, sizeof(run), "%" PRId64, (int64_t)k->run);
	snprintf(seq, sizeof(seq), "%" PRId64, (int64_t)k->seq);
	snprintf(rows, sizeof(rows), "%" PRIu32, k->rows);
	snprintf(events, sizeof(events), "%" PRIu32, k->events);
	const char *const v[] = {k->instance, run, seq, rows, events};
	int rc = pgstore_exec_params(c,
	                             "INSERT INTO stored_batches (instance, run, seq, rows, events)"
	                             " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
	                             5, v, deadline, &inserted, why, whysz);
	if (rc == 0)
		*already = inserted == 0;
	return rc;
}

int
pgstore_prune_keys(PGconn *c, const char *instance, uint64_t run, uint64_t deadline, char *why,
                   size_t whysz)
{
	char runs[24];

	snprintf(runs, sizeof(runs), "%lld", (long long)run);
	const char *const v[] = {instance, runs};

	/* another run's keys (an earlier run whose spool another start replays, or a second
	 * process misconfigured with the same instance name) only after a week */
	return pgstore_exec_params(c,
	                           "DELETE FROM stored_batches WHERE instance = $1"
	                           " AND ((run = $2 AND stored_at < now() - interval '1 hour')"
	                           " OR stored_at < now() - interval '7 days')",
	                           2, v, deadline, NULL, why, whysz);
}

int
pgstore_send(PGconn *c, const struct pgstore_key *key, const char *q, size_t qlen,
             const char *e, size_t elen, uint64_t deadline, bool *already, char *why,
             size_t whysz)
{
	char ignored[64];
	int rc = pgstore_exec(c, "BEGIN", deadline, why, whysz);

	*already = false;
	if (rc == 0 && key != NULL)
		rc = claim(c, key, deadline, already, why, whysz);
	if (rc == 0 && *already)
		return pgstore_exec(c, "ROLLBACK", deadline, why, whysz);
	if (rc == 0 && qlen > 0)
		rc = pgstore_copy(c, "COPY veto_batch (" PGSTORE_QUERY_COLS ") FROM STDIN", q, qlen,
		                  deadline, why, whysz);
	if (rc == 0 && qlen > 0)
		rc = pgstore_exec(c, insert_sql, deadline, why, whysz);
	if (rc == 0 && elen > 0)
		rc = pgstore_copy(c, "COPY device_events (" PGSTORE_EVENT_COLS ") FROM STDIN", e,
		                  elen, deadline, why, whysz);
	if (rc == 0)
		rc = pgstore_exec(c, "COMMIT", deadline, why, whysz);
	if (rc == -EINVAL || rc == -EIO)
		pgstore_exec(c, "ROLLBACK", deadline, ignored, sizeof(ignored));
	return rc;
}
