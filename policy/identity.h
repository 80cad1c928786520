/*
 * identity: the vocabulary of device identity, shared by the decision (policy.c), the daemon's
 * device table (resolver/devices/) and the query log (resolver/querylog/).
 *
 * struct policy_identity is what the decision reads: the client address and what is known of
 * the device behind it. enum identity_source says where a device's vendor came from, and struct
 * identity_event is the one record of a device event (first sight, vendor attribution, group
 * change): the device table makes it, the query store keeps it.
 */
#ifndef VETO_IDENTITY_H
#define VETO_IDENTITY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "mac.h"

#define IDENTITY_NAME_MAX     64	/* device, group and list names are cut to this */
#define IDENTITY_VENDOR_MAX   32	/* vendor names are cut to this */
#define IDENTITY_EVIDENCE_MAX 256	/* the query name (or other text) behind an event */

/* Where a device's vendor came from, strongest first. The values are stored in the query log. */
enum identity_source {
	IDENTITY_SRC_NONE = 0,
	IDENTITY_SRC_INVENTORY,
	IDENTITY_SRC_OUI,
	IDENTITY_SRC_SIGNATURE,
	IDENTITY_SRC_HOSTNAME,
};
/* "inventory", "oui", "signature", "hostname"; NULL for NONE and unknown values. */
const char *identity_source_name(unsigned source);

/*
 * What is known about the device behind a query; everything but sa is optional. Strings are
 * borrowed for the call.
 */
struct policy_identity {
	const struct sockaddr *sa;	/* the client address (required) */
	bool has_mac;
	struct mac mac;
	bool randomised;		/* mac is locally administered */
	const char *hostname;		/* DHCP hostname, NULL = none */
	const char *vendor;		/* the resolved vendor ("Xiaomi"), NULL = none */
	const char *manufacturer;	/* the OUI's vendor or organisation, NULL = none */
	const char *device;		/* devices.inventory name, NULL = none */
	const char *const *tags;	/* inventory tags */
	size_t ntags;
};

/* A device event, as the device table reports it and the query store keeps it. Strings are
 * NUL-terminated; "" = none. */
struct identity_event {
	uint64_t ts_ms;				/* 0 = now */
	char kind[24];				/* "first_seen", "vendor", "group_change" */
	char key[56];				/* the device's key ("mac:...", "ip:...") */
	char device[IDENTITY_NAME_MAX];		/* inventory name or hostname */
	char mac[18];
	char client[INET6_ADDRSTRLEN];
	char old_group[IDENTITY_NAME_MAX];
	char new_group[IDENTITY_NAME_MAX];
	char vendor[IDENTITY_VENDOR_MAX];	/* the device's vendor after the event */
	char evidence[IDENTITY_EVIDENCE_MAX];
};

#endif
