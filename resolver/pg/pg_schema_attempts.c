/*
 * pg_schema_attempts: step 3 of the shared store's schema, what `veto report attempts` reads
 * instead of the blocked rows (one index entry per row: 1.8 s of CPU for 1 M blocked rows).
 * Both count the blocked rows of queries exactly and are written by the writer in the
 * transaction of the rows (pgstore_send.c); the step fills them from the rows already stored.
 *
 * rollup_attempts: per UTC day, instance, device (key: its MAC, else its client address;
 * by_ip: no MAC) and list ('' for a group's default deny), the blocked rows, the first and
 * the last one's time: a report's whole days.
 * rollup_attempt_names: per device and name of an attempt (blocked by a list), the time of
 * the last one, whichever instance answered it: the names a device attempted since a time
 * are its pairs whose last attempt is at or after it. One row per pair, not per instance, so
 * that a report counts them without merging instances; two instances' writers upsert the
 * same pairs in key order (no deadlock). Retention deletes the pairs last attempted before
 * the oldest day it keeps.
 */
#include "pg.h"

const char pg_schema_attempts_sql[] =
        "CREATE TABLE rollup_attempts ("
        " day date NOT NULL, instance text NOT NULL, key text NOT NULL, by_ip boolean NOT NULL,"
        " list text NOT NULL, n bigint NOT NULL,"
        " first_ts timestamptz NOT NULL, last_ts timestamptz NOT NULL,"
        " PRIMARY KEY (day, instance, key, by_ip, list)) WITH (fillfactor = 50);"
        "CREATE TABLE rollup_attempt_names ("
        " key text NOT NULL, by_ip boolean NOT NULL, qname text NOT NULL,"
        " last_ts timestamptz NOT NULL,"
        " PRIMARY KEY (key, by_ip, qname)) WITH (fillfactor = 50);"
        "INSERT INTO rollup_attempts SELECT (ts AT TIME ZONE 'UTC')::date, instance,"
        " coalesce(mac, client), mac IS NULL, coalesce(list, ''), count(*), min(ts), max(ts)"
        " FROM queries WHERE blocked GROUP BY 1, 2, 3, 4, 5;"
        "INSERT INTO rollup_attempt_names SELECT coalesce(mac, client), mac IS NULL,"
        " coalesce(qname, ''), max(ts) FROM queries WHERE blocked AND list IS NOT NULL"
        " GROUP BY 1, 2, 3;";
