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

/* Where a device's vendor came from. The values are stored in the query log. Precedence:
 * pinned > inventory > oui > signature > hostname. */
enum identity_source {
	IDENTITY_SRC_NONE = 0,
	IDENTITY_SRC_INVENTORY,
	IDENTITY_SRC_OUI,
	IDENTITY_SRC_SIGNATURE,
	IDENTITY_SRC_HOSTNAME,
	IDENTITY_SRC_PIN,		/* an administrator pinned it (veto devices pin) */
};
/* "inventory", "oui", "signature", "hostname", "pinned"; NULL for NONE and unknown values. */
const char *identity_source_name(unsigned source);

/* Evidence strength of a signature name (the shipped catalog, conf/catalog/signatures.tsv). */
enum identity_strength {
	IDENTITY_STRENGTH_ROM = 0,	/* only the vendor's own OS resolves it: one query attributes */
	IDENTITY_STRENGTH_APP,		/* the vendor's apps or SDKs resolve it on any phone: never
					   attributes alone */
	IDENTITY_STRENGTH_OS,		/* an OS family's connectivity check (evidence for that
					   family, and against every other) */
};
/* "rom", "app", "os"; NULL for unknown values. 0 or -EINVAL. */
const char *identity_strength_name(unsigned strength);
int identity_strength_from_name(const char *name, enum identity_strength *out);

/* OS families seen through their connectivity checks (IDENTITY_STRENGTH_OS names), as bits. */
#define IDENTITY_OS_APPLE   (1u << 0)	/* iOS, iPadOS, macOS */
#define IDENTITY_OS_ANDROID (1u << 1)	/* Google's check: stock Android and several global ROMs */
#define IDENTITY_OS_WINDOWS (1u << 2)
#define IDENTITY_OS_LINUX   (1u << 3)	/* desktop Linux (NetworkManager, systemd) */
#define IDENTITY_OS_OTHER   (1u << 4)	/* a family of the catalog without a bit of its own */
/* The bit of an OS family name ("Apple", "Android", "Windows", "Linux", case-insensitive);
 * IDENTITY_OS_OTHER for any other name. */
unsigned identity_os_from_name(const char *family);

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
	const char *group;		/* a group an administrator pinned the device to, NULL =
					   none: it wins over every selector when the configuration
					   has a group of that name */
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
