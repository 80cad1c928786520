/*
 * privdrop: `veto serve` started as root gives root up once its sockets are bound.
 *
 *     privdrop_begin(cfg)  -> server_new() -> server_start() -> privdrop_end()
 *
 * privdrop_begin() decides the user (--user, else server.user, else "veto" when it exists),
 * hands state_dir (and a missing log folder) to it, sets its groups and makes it the owner of
 * every file the process creates from then on (the file-system ids, which threads started later
 * inherit), while the effective uid stays 0 so that port 53 can still be bound.
 * privdrop_end() then sets the real, effective and saved ids of every thread to the user's
 * (no capability survives), sets no_new_privs, and checks that root cannot be regained.
 *
 * Not started as root: nothing happens (systemd's User= did it, or a user started it).
 * server.user "root": the daemon stays root, as told.
 */
#ifndef VETO_PRIVDROP_H
#define VETO_PRIVDROP_H

#include <stdbool.h>
#include <sys/types.h>

#include "config.h"

struct privdrop {
	bool active; /* privdrop_end() has something to do */
	uid_t uid;
	gid_t gid;
	char user[64];
};

/*
 * user: the --user option or NULL (then server.user of cfg, then "veto"). Messages go to the
 * log. Returns 0 (*pd filled), -ENOENT (a user or group that was named does not exist), -EPERM
 * (root with no user to drop to: refused) or another -errno of the set-up.
 */
int privdrop_begin(const struct config *cfg, const char *user, struct privdrop *pd);

/* After the sockets are bound, before serving. 0, or -errno (logged): then do not serve. */
int privdrop_end(const struct privdrop *pd);

#endif
