/*
 * web: the web console's pages, served by the HTTP listener (resolver/http) through the
 * routes of http_route.h: / (overview), /devices, /attempts (and .csv), /log (and .json),
 * /policy, /static/veto.css and /static/veto.js.
 *
 * Data: every request opens its own read-only connection to the query store (log.database;
 * the daemon writes through another one, WAL; or the shared store on PostgreSQL, as
 * application "veto/INSTANCE/web") and the device table (state_dir/devices.db);
 * actions and the policy ask the daemon through its control channel (state_dir/control.sock).
 * Handlers run on the listener's thread and never touch the DNS loop.
 */
#ifndef VETO_WEB_H
#define VETO_WEB_H

#include <stdbool.h>
#include <stddef.h>

#include "http_route.h"

struct web_options {
	const char *config_path; /* the daemon's configuration file: filters' "did you mean" */
	const char *database;    /* log.database, or NULL (the pages say it is not set) */
	bool shared; /* store.postgresql is set: the pages read the shared store instead, with
	                the connection settings of config_path */
	const char *state_dir;   /* devices.db and control.sock, or NULL */
};

struct web;

/* Copies o. 0 or -ENOMEM (-ENAMETOOLONG: state_dir too long for a socket address). */
int web_new(const struct web_options *o, struct web **out);
void web_free(struct web **w); /* NULL-safe; after the listener stopped */

/* The console's routes (ctx = w), *n of them (at most WEB_ROUTES_MAX); valid as long as w. */
#define WEB_ROUTES_MAX 16
const struct http_route *web_routes(struct web *w, size_t *n);

#endif
