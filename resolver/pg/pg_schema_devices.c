/*
 * pg_schema_devices: step 2 of the shared store's schema, the device table every instance
 * shares (resolver/devices/ keeps a local copy and merges; see its README for the rules).
 */
#include "pg.h"

const char pg_schema_devices_sql[] =
        /* filled by the device-state sync; until then, the step only reserves its number */
        "SELECT 1";
