/*
 * identify: who is behind a client address. Pure functions shared by the daemon's device table
 * (devices.c) and `veto explain`, so both see the same device for the same sources and state.
 *
 * A device record holds what is known about one device: its key (the MAC when one is known,
 * else the address), addresses, DHCP hostname and client id, inventory entry, OUI manufacturer,
 * the vendors its queries revealed (observations) and the vendor resolved from all of that.
 *
 *   client address (+ MAC hint) --identify_key--> key --(table or saved state)--> record
 *   record --identify_fill (sources)--> record --identify_policy--> struct policy_identity
 */
#ifndef VETO_IDENTIFY_H
#define VETO_IDENTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "config.h"
#include "identity.h"
#include "mac.h"
#include "sources.h"

#define DEVICES_KEY_MAX	     56
#define DEVICES_EVIDENCE_MAX 128
#define DEVICES_MAX_IPS	     4
#define DEVICES_MAX_OBS	     4

#define DEVICES_NOTED_SHARED  (1u << 0)
#define DEVICES_NOTED_OS      (1u << 1)

/* A vendor observed from the device's queries (devices.signatures / the shipped catalog). */
struct devices_obs {
	char vendor[IDENTITY_VENDOR_MAX];
	uint32_t count;			/* every query for one of the vendor's names */
	uint32_t rom;			/* of them: names only the vendor's own OS resolves */
	uint32_t app;			/* of them: names its apps and SDKs resolve on any phone */
	int64_t first, last;		/* Unix time */
	char evidence[DEVICES_EVIDENCE_MAX];	/* the last name queried */
	char rom_evidence[DEVICES_EVIDENCE_MAX]; /* the last rom name queried, "" = none */
	/* with a shared store: the part of count, rom and app this instance observed itself (the
	 * rest came from the other instances; devices_pg.h). Not saved locally. */
	uint32_t own, own_rom, own_app;
};

/* One device. Strings are NUL-terminated, "" = unknown. */
struct devices_record {
	char key[DEVICES_KEY_MAX];	/* "mac:aa:bb:cc:dd:ee:ff" or "ip:192.0.2.7" */
	bool has_mac;
	struct mac mac;
	bool randomised;
	struct devices_ip ips[DEVICES_MAX_IPS]; /* most recent first */
	uint8_t nips;
	char hostname[IDENTITY_NAME_MAX];
	char client_id[IDENTITY_NAME_MAX];
	char vendor_class[IDENTITY_NAME_MAX];
	char inventory[IDENTITY_NAME_MAX];
	char manufacturer[IDENTITY_NAME_MAX];	/* OUI organisation */
	char oui_vendor[IDENTITY_VENDOR_MAX];	/* its normalised vendor ("Xiaomi"), or "" */
	char vendor[IDENTITY_VENDOR_MAX];
	uint8_t vendor_source;			/* enum identity_source */
	struct devices_obs obs[DEVICES_MAX_OBS];
	uint8_t nobs;
	char group[IDENTITY_NAME_MAX];		/* of its last query */
	uint16_t os_families;			/* IDENTITY_OS_* bits: OS connectivity checks seen */
	bool shared;				/* the address carries several devices: never
						   attributed as a whole */
	bool suspect;				/* at run time only: a worker dropped a query
						   of it that may have been evidence against
						   its attribution: behaviour no longer
						   attributes it (devices_share.h) */
	uint8_t noted;				/* at run time only: the reasons for not acting
						   on evidence already logged (DEVICES_NOTED_*) */
	uint64_t share_sig;			/* at run time only: what the other workers'
						   copy holds of it, as a hash, when last marked
						   (devices_share_sig; 0 = not in that copy) */
	char pin_vendor[IDENTITY_VENDOR_MAX];	/* pinned by an administrator, "" = none */
	char pin_group[IDENTITY_NAME_MAX];	/* pinned by an administrator, "" = none */
	int64_t pin_at;				/* Unix ms of the last pin or unpin on the
						   running daemon, 0 = none known (not saved
						   locally; the shared store orders pins by it) */
	int64_t first_seen, last_seen;
	int32_t inv;				/* index in devices.inventory, -1 (not saved) */
};

/* The address of sa (AF_INET or AF_INET6; IPv4-mapped IPv6 as IPv4). */
void identify_ip_of(const struct sockaddr *sa, struct devices_ip *ip);
/* The address as text into buf. */
void identify_ip_text(const struct devices_ip *ip, char *buf, size_t size);

/*
 * The key of the device at sa: "mac:..." when a MAC is known (hint > inventory address > leases >
 * ARP > IPv6 neighbours), else "ip:...". Fills key (DEVICES_KEY_MAX), *mac and returns true when
 * a MAC is known.
 */
bool identify_key(const struct config *cfg, const struct devices_sources *src,
		  const struct sockaddr *sa, const struct mac *hint, char *key, struct mac *mac);

/* "mac:..." for a record with a MAC, else "ip:" and the address ip. */
void identify_key_text(const struct devices_record *rec, const struct devices_ip *ip, char *buf,
		       size_t size);

/*
 * Updates rec (a known device, or a zeroed one with inv -1) for a query from sa with an optional
 * MAC (hint: EDNS or the command line) from cfg's inventory and the sources (may be NULL): MAC,
 * lease hostname, client-id and vendor class, inventory name, OUI manufacturer, then the vendor
 * (identify_vendor). The key is set when rec->key is empty. O(inventory + lease files) without
 * the indexes (explain), hash probes with them (the daemon).
 */
void identify_fill(const struct config *cfg, const struct devices_sources *src,
		   const struct sockaddr *sa, const struct mac *hint, struct devices_record *rec);

/* Recomputes rec->vendor and vendor_source: pinned > inventory > OUI > behaviour
 * (identify_rom_vendor) > hostname patterns. */
void identify_vendor(const struct config *cfg, struct devices_record *rec);

/* Records that rec queried evidence, a name of vendor's signatures of that strength (rom or
 * app), at now (Unix time). */
void identify_observe(struct devices_record *rec, const char *vendor,
		      enum identity_strength strength, const char *evidence, int64_t now);

/*
 * Whether behaviour may attribute a handset vendor to rec: not when its address carries several
 * devices (rec->shared), nor when some of its queries were lost (rec->suspect), nor when it
 * showed the connectivity check of an OS family other than Android's (an iPhone, a laptop:
 * evidence against every handset vendor).
 */
bool identify_behaviour_usable(const struct devices_record *rec);

/* The vendor behaviour attributes: among the observations with rom evidence, the one with the
 * most rom queries (the latest on a tie); app evidence never attributes. NULL when none, or
 * when identify_behaviour_usable() says no. */
const char *identify_rom_vendor(const struct devices_record *rec);

/* The identity the decision reads (strings point into rec and cfg) for client address sa. */
void identify_policy(const struct config *cfg, const struct devices_record *rec,
		     const struct sockaddr *sa, struct policy_identity *id);

/* The name to show for a device: inventory name, else hostname, else NULL. */
const char *identify_display_name(const struct devices_record *rec);

/* The evidence behind the device's vendor in a few words (`veto devices`, the console's
 * /devices): "pinned", "rom x2 connect.rom.miui.com", "app x5 ...", "x3 NAME", "oui",
 * "inventory", "hostname NAME", or "-". Returns buf. */
const char *identify_evidence_text(const struct devices_record *r, char *buf, size_t size);

#endif
