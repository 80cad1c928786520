/*
 * pg_schema_log: step 1 of the shared store's schema, the query log. Rows carry their text
 * (no dictionaries: PostgreSQL compresses nothing per row, but COPY of plain text is what it
 * ingests fastest, and every instance can write without coordinating ids) and the instance that
 * answered. queries is partitioned by UTC day (the writer creates the partitions it needs,
 * retention drops whole ones); the rollups count rows per hour and per day as in the embedded
 * store, so a summary reads them, not rows; rollup_hours holds an hour's totals per instance
 * (the summary's per-hour section without a source, list, action or blocked filter). '' stands
 * for "none" in rollup keys.
 */
#include "pg.h"

const char pg_schema_log_sql[] =
        "CREATE TABLE queries ("
        " ts timestamptz NOT NULL,"
        " instance text NOT NULL,"
        " client text NOT NULL,"
        " mac text, device text, group_name text, vendor text, vendor_source text,"
        " qname text, qtype text, proto text,"
        " blocked boolean NOT NULL,"
        " list text, rule text, action text, rcode text, upstream text,"
        " latency_us integer NOT NULL"
        ") PARTITION BY RANGE (ts);"
        "CREATE INDEX queries_ts ON queries USING brin (ts);"
        /* what `report attempts` reads of the blocked rows, from the index alone */
        "CREATE INDEX queries_blocked ON queries (ts) INCLUDE (client, mac, device, list, qname)"
        " WHERE blocked;"
        "CREATE TABLE rollup_sources ("
        " hour timestamptz NOT NULL, instance text NOT NULL, client text NOT NULL,"
        " mac text NOT NULL, device text NOT NULL, group_name text NOT NULL,"
        " vendor text NOT NULL, list text NOT NULL, action text NOT NULL,"
        " blocked boolean NOT NULL, n bigint NOT NULL,"
        " PRIMARY KEY (hour, instance, client, mac, device, group_name, vendor, list, action,"
        " blocked));"
        "CREATE INDEX rollup_sources_device ON rollup_sources (device, hour) WHERE device <> '';"
        "CREATE INDEX rollup_sources_client ON rollup_sources (client, hour);"
        "CREATE TABLE rollup_hours ("
        " hour timestamptz NOT NULL, instance text NOT NULL,"
        " total bigint NOT NULL, blocked bigint NOT NULL,"
        " PRIMARY KEY (hour, instance));"
        "CREATE TABLE rollup_days ("
        " day date NOT NULL, instance text NOT NULL, client text NOT NULL,"
        " mac text NOT NULL, device text NOT NULL, group_name text NOT NULL,"
        " vendor text NOT NULL, list text NOT NULL, action text NOT NULL,"
        " blocked boolean NOT NULL, n bigint NOT NULL,"
        " PRIMARY KEY (day, instance, client, mac, device, group_name, vendor, list, action,"
        " blocked));"
        "CREATE TABLE rollup_names ("
        " qname text NOT NULL, hour timestamptz NOT NULL, instance text NOT NULL,"
        " list text NOT NULL, action text NOT NULL, blocked boolean NOT NULL, n bigint NOT NULL,"
        " PRIMARY KEY (qname, hour, instance, list, action, blocked));"
        /* the summary's top blocked names (blocked by a list) from the index alone */
        "CREATE INDEX rollup_names_blocked ON rollup_names (hour, qname, n)"
        " WHERE blocked AND list <> '';"
        "CREATE TABLE device_events ("
        " id bigserial PRIMARY KEY,"
        " ts timestamptz NOT NULL,"
        " instance text NOT NULL,"
        " device text, mac text, client text,"
        " kind text NOT NULL,"
        " old_group text, new_group text, evidence text, vendor text);"
        "CREATE INDEX device_events_ts ON device_events (ts);"
        "CREATE INDEX device_events_device ON device_events (device, ts);";
