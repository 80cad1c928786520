/*
 * pg_schema_batches: step 4 of the shared store's schema, the keys of the batches the query
 * store's writers have committed. A writer names each batch (instance, run: a random number
 * drawn at its start, seq: the batch's number in that run) and inserts the key in the batch's
 * own transaction, first: a batch sent again (its COMMIT timed out or the connection dropped
 * while it was in flight, a spool file replayed after a crash) finds its key and is not stored
 * twice; while the first attempt's transaction is still open on the server, the second waits
 * for its outcome on the key's index entry. A writer deletes its own keys once it has nothing
 * left to send again (its spool empty), an hour after they were stored.
 */
#include "pg.h"

const char pg_schema_batches_sql[] =
        "CREATE TABLE stored_batches ("
        " instance text NOT NULL,"
        " run bigint NOT NULL,"
        " seq bigint NOT NULL,"
        " rows integer NOT NULL,"
        " events integer NOT NULL,"
        " stored_at timestamptz NOT NULL DEFAULT now(),"
        " PRIMARY KEY (instance, run, seq));"
        "CREATE INDEX stored_batches_at ON stored_batches (instance, stored_at);";
