/*
 * pg_schema_devices: step 2 of the shared store's schema, the device table every instance
 * shares (resolver/devices/ keeps a local copy and merges; see its README for the rules).
 *
 * devices: one row per device key, the state that is the same everywhere: an administrator's
 * pins (with the time of the act, newest wins), the evidence against handset vendors (OS
 * families seen, shared address), a tombstone when forgotten (forgotten_at; the row stays so
 * that a stale copy does not bring the device back), and for reading with psql the vendor and
 * group the last writer saw. Every change takes a new seq from devices_seq: an instance fetches
 * the rows whose seq is above the last it saw.
 * device_evidence: the vendors each instance's queries revealed, per (key, instance, vendor),
 * as absolute counts that only grow; the merged view sums them over the instances.
 * Changes are announced on the channel veto_devices (payload "seq key").
 */
#include "pg.h"

const char pg_schema_devices_sql[] =
        "CREATE SEQUENCE devices_seq;"
        "CREATE TABLE devices ("
        " key text PRIMARY KEY,"
        " seq bigint NOT NULL DEFAULT nextval('devices_seq'),"
        " forgotten_at bigint,"         /* Unix time of the forget; NULL = a live device */
        " pin_vendor text NOT NULL DEFAULT '',"
        " pin_group text NOT NULL DEFAULT '',"
        " pin_at bigint NOT NULL DEFAULT 0," /* Unix ms of the last pin or unpin, 0 = never */
        " os_families integer NOT NULL DEFAULT 0,"
        " shared boolean NOT NULL DEFAULT false,"
        " vendor text NOT NULL DEFAULT '',"
        " vendor_source text NOT NULL DEFAULT '',"
        " grp text NOT NULL DEFAULT '',"
        " first_seen bigint NOT NULL DEFAULT 0,"
        " last_seen bigint NOT NULL DEFAULT 0,"
        " updated_at timestamptz NOT NULL DEFAULT now(),"
        " updated_by text NOT NULL DEFAULT '');"
        "CREATE INDEX devices_seq_idx ON devices (seq);"
        "CREATE TABLE device_evidence ("
        " key text NOT NULL REFERENCES devices (key) ON DELETE CASCADE,"
        " instance text NOT NULL,"
        " vendor text NOT NULL,"
        " count bigint NOT NULL DEFAULT 0,"
        " rom bigint NOT NULL DEFAULT 0,"
        " app bigint NOT NULL DEFAULT 0,"
        " first_seen bigint NOT NULL DEFAULT 0,"
        " last_seen bigint NOT NULL DEFAULT 0,"
        " evidence text NOT NULL DEFAULT '',"
        " rom_evidence text NOT NULL DEFAULT '',"
        " PRIMARY KEY (key, instance, vendor))";
