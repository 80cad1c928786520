/*
 * pg_schema_name_days: step 5 of the shared store's schema, the names per UTC day. A summary
 * over whole days read its top blocked names from the hourly rollup_names (0.7 M rows of a
 * 10 M row month) and their totals from pages scattered over that table; rollup_name_days
 * counts the same per day, about 24 times fewer rows.
 *
 * rollup_name_days: per UTC day, instance, name, list, action and blocked ('' for none), the
 * rows, as rollup_names per hour. The writer upserts it in the transaction of the rows, in key
 * order (pgstore_send.c); retention deletes the days before the oldest it keeps, as
 * rollup_days; the step fills it from the rows already stored. The primary key leads with the
 * name (a summary's totals of its top names); rollup_name_days_blocked covers the top blocked
 * names (blocked by a list) of a range of days from the index alone.
 */
#include "pg.h"

const char pg_schema_name_days_sql[] =
        "CREATE TABLE rollup_name_days ("
        " qname text NOT NULL, day date NOT NULL, instance text NOT NULL,"
        " list text NOT NULL, action text NOT NULL, blocked boolean NOT NULL, n bigint NOT NULL,"
        " PRIMARY KEY (qname, day, instance, list, action, blocked)) WITH (fillfactor = 50);"
        "CREATE INDEX rollup_name_days_blocked ON rollup_name_days (day, qname, n)"
        " WHERE blocked AND list <> '';"
        "INSERT INTO rollup_name_days SELECT coalesce(qname, ''), (ts AT TIME ZONE 'UTC')::date,"
        " instance, coalesce(list, ''), coalesce(action, ''), blocked, count(*) FROM queries"
        " GROUP BY 1, 2, 3, 4, 5, 6;";
