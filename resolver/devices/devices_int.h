/*
 * devices_int: what devices.c lends devices_admin.c (the administrator's forget, pin and unpin
 * on the running table). Loop thread only; record pointers are valid until the next call that
 * adds or removes a record.
 */
#ifndef VETO_DEVICES_INT_H
#define VETO_DEVICES_INT_H

#include "devices.h"

const struct config *devices_int_config(const struct devices *d);
const struct policy *devices_int_policy(const struct devices *d);
const struct devices_sources *devices_int_sources(const struct devices *d);
/* The record of a key text ("mac:...", "ip:..."), or NULL. */
struct devices_record *devices_int_lookup(struct devices *d, const char *key);
/* The i-th record, NULL past the end. */
struct devices_record *devices_int_record(struct devices *d, size_t i);
/* A new, empty record for key (not present), first and last seen now; NULL when the key is
 * not valid, the table is full of devices that are never evicted, or memory runs out. */
struct devices_record *devices_int_add(struct devices *d, const char *key);
/* Removes r from the table and queues its deletion from the saved state. 0 or -ENOMEM. */
int devices_int_remove(struct devices *d, struct devices_record *r);
/* r changed: saved at the next save. */
void devices_int_dirty(struct devices *d, struct devices_record *r);
/* Reports a device event without a client address (an administrator's action). */
void devices_int_event(struct devices *d, const char *kind, const struct devices_record *r,
                       const char *old_group, const char *new_group, const char *evidence);

#endif
