/*
 * devices_admin: an administrator's way back from what the device table learnt. `veto devices
 * forget|pin|unpin KEY` reach the running daemon through its control channel
 * (resolver/dns/control.h), which calls devices_admin_run() on the loop; without a running
 * daemon the command edits the saved state (devices_store.h) with the same pure helpers.
 *
 *   forget  removes the device: its attribution goes with it, its next query starts clean
 *   pin     sets the device's vendor and/or group; a pinned vendor wins over every source, a
 *           pinned group over every group selector (identify.h, policy.h)
 *   unpin   clears both pins
 *
 * KEY is a MAC in any common spelling, an address (the device behind it now), a device key
 * ("mac:...", "ip:...") or an inventory name.
 */
#ifndef VETO_DEVICES_ADMIN_H
#define VETO_DEVICES_ADMIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "devices.h"
#include "identify.h"
#include "sources.h"

#define DEVICES_ADMIN_TARGET_MAX 128

enum devices_admin_op {
	DEVICES_ADMIN_FORGET = 0,
	DEVICES_ADMIN_PIN,
	DEVICES_ADMIN_UNPIN,
};

/* One request. Strings are NUL-terminated; "" = not given. */
struct devices_admin_req {
	enum devices_admin_op op;
	char target[DEVICES_ADMIN_TARGET_MAX]; /* KEY as the administrator wrote it */
	char vendor[IDENTITY_VENDOR_MAX];      /* pin: the vendor to pin */
	char group[IDENTITY_NAME_MAX];         /* pin: the group to pin */
	uint32_t uid;                          /* who asks (SO_PEERCRED, or getuid offline) */
};

/* "forget", "pin", "unpin" (the event kinds too). */
const char *devices_admin_op_name(enum devices_admin_op op);

/*
 * The device key of target under cfg and the sources (src may be NULL): "mac:..." for a MAC or
 * a "mac:" key, "ip:..." for an "ip:" key; for a bare address the key of the device behind it
 * (identify_key) and *addr set (else addr->family is 0); for an inventory name its MAC, or the
 * key behind its address. 0 or -EINVAL (not a key, MAC, address or inventory name).
 */
int devices_admin_key(const struct config *cfg, const struct devices_sources *src,
                      const char *target, char key[DEVICES_KEY_MAX], struct devices_ip *addr);

/* Whether a device whose key did not match is still the one target names: its most recent
 * address is addr (a bare address), or its inventory name is target. */
bool devices_admin_matches(const struct devices_record *r, const char *target,
                           const struct devices_ip *addr);

/* Checks a request against cfg: a pin names a vendor or a group (or both), the group exists,
 * the vendor is printable text. 0, or -EINVAL with the reason in err. */
int devices_admin_check(const struct config *cfg, const struct devices_admin_req *req, char *err,
                        size_t size);

/* A new record for key (a pin of a device not seen yet): MAC or address from the key. */
void devices_admin_new_record(const char *key, int64_t now, struct devices_record *r);

/* Applies a pin or unpin to r and re-resolves its vendor under cfg. Writes the event's
 * evidence ("vendor=Xiaomi group=staff by uid 1000") into evidence (IDENTITY_EVIDENCE_MAX). */
void devices_admin_apply(const struct config *cfg, const struct devices_admin_req *req,
                         struct devices_record *r, char *evidence, size_t size);
/* The evidence of a forget: what the device was ("vendor=Xiaomi (signature) by uid 0"). */
void devices_admin_forget_evidence(const struct devices_admin_req *req,
                                   const struct devices_record *r, char *evidence, size_t size);

/*
 * The daemon: runs req on the table (loop thread). The change applies from the device's next
 * query, is saved at the next save and reported as a device event ("forget", "pin", "unpin").
 * Writes the reply text into msg ("forgot mac:... (phone)" or the error). 0, -ENOENT (no such
 * device), -EINVAL (bad request) or -ENOMEM.
 */
int devices_admin_run(struct devices *d, const struct devices_admin_req *req, char *msg,
                      size_t size);

#endif
