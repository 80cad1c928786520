/*
 * oui: the IEEE MAC address registries (Debian package ieee-data) and the handset vendor they
 * attribute a MAC to.
 *
 * Loaded once from the CSV files /usr/share/ieee-data/{oui,mam,oui36,iab}.csv (header
 * "Registry,Assignment,Organization Name,Organization Address", RFC 4180 quoting: fields may
 * hold commas, doubled quotes and line breaks; CRLF or LF line ends). Each row's Registry says
 * how long its assignment is: MA-L 24 bits (6 hex digits), MA-M 28 bits (7), MA-S and the legacy
 * IAB 36 bits (9).
 *
 * A lookup tries the MAC's first 36 bits, then 28, then 24 (the most specific block wins: the
 * IEEE carves MA-M and MA-S blocks out of MA-L blocks registered to itself): three O(1) hash
 * probes, no allocation. An address with the locally-administered bit set is randomised and
 * has no manufacturer: it is never looked up.
 *
 * Organisation names are kept as registered (only surrounding white space removed) and
 * interned. Each block also carries a normalised vendor: the handset makers the project cares
 * about, recognised by these case-insensitive name patterns, first match wins:
 *     Xiaomi   contains "xiaomi"
 *     Oppo     contains "guangdong oppo mobile"  (not "OPPO Digital", the Blu-ray maker)
 *     OnePlus  starts with "oneplus"
 *     Realme   starts with "realme"
 *     Vivo     starts with "vivo mobile"         (not "BBK Educational Electronics")
 *     Huawei   starts with "huawei technologies" or "huawei device" (not "Huawei Symantec")
 *     Honor    starts with "honor device"
 *     Samsung  starts with "samsung electronics" (not "Samsung Electro-Mechanics")
 * An OUI names a manufacturing group rather than a brand: OnePlus and Realme phones often carry
 * Oppo blocks, Redmi and POCO carry Xiaomi's, and many Huawei blocks are network equipment.
 *
 * The table is immutable once loaded: lookups are thread-safe.
 */
#ifndef VETO_OUI_H
#define VETO_OUI_H

#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "mac.h"

#define OUI_DEFAULT_DIR "/usr/share/ieee-data"

enum oui_registry {
	OUI_MA_L,	/* 24-bit assignment */
	OUI_MA_M,	/* 28-bit */
	OUI_MA_S,	/* 36-bit */
	OUI_IAB,	/* 36-bit, legacy */
	OUI_REGISTRY_COUNT,
};

/* The names are policy/vendors.c's vendors_names[], in this order. */
enum oui_vendor {
	OUI_VENDOR_NONE,
	OUI_VENDOR_XIAOMI,
	OUI_VENDOR_OPPO,
	OUI_VENDOR_ONEPLUS,
	OUI_VENDOR_REALME,
	OUI_VENDOR_VIVO,
	OUI_VENDOR_HUAWEI,
	OUI_VENDOR_HONOR,
	OUI_VENDOR_SAMSUNG,
	OUI_VENDOR_COUNT,
};

struct oui_entry {
	const char *org;		/* as registered, owned by the table */
	uint64_t prefix;		/* the assignment, right-aligned (0x70B3D5F2F) */
	uint8_t bits;			/* 24, 28 or 36 */
	uint8_t registry;		/* enum oui_registry */
	uint8_t vendor;			/* enum oui_vendor */
};

struct oui_stats {
	size_t records[OUI_REGISTRY_COUNT];	/* rows loaded per registry */
	size_t duplicates;	/* rows repeating an assignment already loaded (first one kept) */
	size_t vendor_blocks[OUI_VENDOR_COUNT];	/* blocks attributed per vendor */
	size_t names;		/* distinct organisation names */
	size_t memory;		/* octets held by the table */
	size_t max_probe;	/* longest hash probe sequence */
	double load_ms;		/* wall-clock time to read and index the files */
};

struct oui;

/* "Xiaomi", "Oppo", "OnePlus", "Realme", "Vivo", "Huawei", "Honor", "Samsung"; NULL for
 * OUI_VENDOR_NONE or an out-of-range value. */
const char *oui_vendor_name(enum oui_vendor v);
/* The vendor with that name (case-insensitive), or OUI_VENDOR_NONE. */
enum oui_vendor oui_vendor_from_name(const char *name, size_t len);
/* The vendor an organisation name attributes to (the patterns above), or OUI_VENDOR_NONE. */
enum oui_vendor oui_vendor_of_org(const char *org, size_t len);

/* "MA-L", "MA-M", "MA-S", "IAB" */
const char *oui_registry_name(enum oui_registry r);

/*
 * Loads the registry CSV files paths[0..n) into a new table. A file that cannot be read or is
 * not a registry CSV (wrong header, unterminated quote, a row without a valid registry and
 * assignment) is an error located "FILE:LINE" in diag and the whole load fails: *out is left
 * untouched. Returns 0, -errno from reading, -EINVAL (bad content) or -ENOMEM.
 */
int oui_load_files(const char *const *paths, size_t n, struct diag *diag, struct oui **out);

/* Loads DIR/oui.csv, DIR/mam.csv and DIR/oui36.csv (all required) and DIR/iab.csv when it
 * exists; dir NULL means OUI_DEFAULT_DIR. As oui_load_files. */
int oui_load_dir(const char *dir, struct diag *diag, struct oui **out);

void oui_free(struct oui **o);	/* NULL-safe, sets *o = NULL */

/* The most specific block containing m, or NULL when none does or m is randomised
 * (locally administered) or multicast. The entry lives as long as the table. */
const struct oui_entry *oui_lookup(const struct oui *o, const struct mac *m);

/* The block registered under exactly that assignment (bits 24, 28 or 36), or NULL. */
const struct oui_entry *oui_find(const struct oui *o, uint64_t prefix, unsigned bits);

void oui_stats(const struct oui *o, struct oui_stats *st);

#endif
