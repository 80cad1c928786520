/*
 * cmd_devices_int: what `veto devices` (cmd_devices.c: list, show), its administration
 * commands (cmd_devices_admin.c: forget, pin, unpin) and `veto explain` share.
 */
#ifndef VETO_CMD_DEVICES_INT_H
#define VETO_CMD_DEVICES_INT_H

#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "devices_store.h"
#include "identify.h"

/* `veto devices forget|pin|unpin ...` (argv[0] is the verb). An exit code. */
int cmd_devices_admin(int argc, char **argv);

/* "Apple, Android" from IDENTITY_OS_* bits ("" for none). Returns buf. */
const char *cmd_devices_os_text(unsigned bits, char *buf, size_t size);

/* The evidence members of a device's JSON object: ,"observed":[...],"os_families":[...],
 * "shared":..., "pin_vendor":..., "pin_group":... */
void cmd_devices_json_evidence(FILE *out, const struct devices_record *r);
/* The evidence lines of the text views (observations, OS families, shared, pins), each line
 * starting with indent and the label padded to width. */
void cmd_devices_text_evidence(FILE *out, const struct devices_record *r, const char *indent,
                               int width);

/* The saved device target names (MAC, address, key or inventory name; see devices_admin.h)
 * into *out, its key into key. 0, -ENOENT (none; key is the one it would have), -EINVAL (not
 * a key, MAC, address or inventory name) or -EIO. */
int cmd_devices_find(const struct config *cfg, struct devices_store *st, const char *target,
                     char key[DEVICES_KEY_MAX], struct devices_record *out);

#endif
