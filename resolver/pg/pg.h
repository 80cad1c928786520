/*
 * pg: the shared store's PostgreSQL connection and schema (store.postgresql). Used by the query
 * store's writer and readers (resolver/querylog/) and the device-state sync (resolver/devices/).
 * Every call here blocks on the network: call it from a writer, sync or CLI thread, never from
 * the event loop.
 */
#ifndef VETO_PG_H
#define VETO_PG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

struct config;

/* The schema version this build creates and reads (the number of migration steps). */
#define PG_SCHEMA_VERSION 5

/*
 * Connects to cfg->store.postgresql as "veto/<instance>/<role>" (application_name; role says
 * which thread: "writer", "devices", "cli"), with the password of store.password_file when set
 * (else libpq's own: PGPASSWORD, ~/.pgpass), a 5 s connect timeout unless the connection string
 * sets one, and UTC as the session's time zone. Returns 0 and *out, or -errno with why (one
 * line, never a password): -EINVAL no store configured, -EACCES password file unreadable,
 * -ECONNREFUSED the server refused or could not be reached or authentication failed.
 */
int pg_connect(const struct config *cfg, const char *role, PGconn **out, char *why, size_t whysz);

/* Asked by pg_connect_until whether to give up: true stops the attempt. */
typedef bool pg_stop_cb(void *arg);

/*
 * pg_connect that a stopping thread can interrupt: while it waits for the server it also polls
 * wake_fd (an eventfd; -1: none), reads it when readable, and asks stop(arg) (NULL: never) at
 * every step: true ends the attempt with -ECANCELED. The connect timeout is counted here, over
 * the whole attempt. Otherwise as pg_connect.
 */
int pg_connect_until(const struct config *cfg, const char *role, int wake_fd, pg_stop_cb *stop,
                     void *arg, PGconn **out, char *why, size_t whysz);

/* This instance's name: store.instance, else the host name ("veto" if it has none). */
const char *pg_instance(const struct config *cfg, char *buf, size_t size);

/*
 * Creates or migrates the schema to PG_SCHEMA_VERSION in one transaction under an advisory
 * lock, so that instances starting together do not race (the second waits, then finds the
 * schema done). Records each step in veto_schema (version, applied_at, instance). 0, or -EPROTO
 * when the database has a newer schema than this build (why says both versions), or -EIO.
 */
int pg_schema_ensure(PGconn *c, const char *instance, char *why, size_t whysz);

/* The version recorded in veto_schema, 0 when there is none, or -EIO. */
int pg_schema_version(PGconn *c);

/* One line for a failed result or connection (PQresultErrorMessage / PQerrorMessage without the
 * trailing newline) into buf; returns buf. */
const char *pg_error(PGconn *c, const PGresult *r, char *buf, size_t size);

/* Runs sql (no parameters) and says whether it succeeded; why gets the error. */
int pg_exec(PGconn *c, const char *sql, char *why, size_t whysz);

/* The migration steps (pg_schema_log.c, pg_schema_devices.c, pg_schema_attempts.c,
 * pg_schema_batches.c, pg_schema_name_days.c): step i takes the schema from version i to
 * i + 1. */
extern const char pg_schema_log_sql[];
extern const char pg_schema_devices_sql[];
extern const char pg_schema_attempts_sql[];
extern const char pg_schema_batches_sql[];
extern const char pg_schema_name_days_sql[];

/* The channel a device-table change is announced on (payload "SEQ KEY"). */
#define PG_DEVICES_CHANNEL "veto_devices"

#endif
