/*
 * catalog: the shipped signature catalog, conf/catalog/signatures.tsv, compiled into the binary
 * (the build turns the file into catalog_data.c), so that the daemon and `veto explain` need no
 * file at run time. It is the default of devices.signatures: each name with its vendor (or OS
 * family) and evidence strength.
 */
#ifndef VETO_CATALOG_H
#define VETO_CATALOG_H

#include <stddef.h>
#include <stdint.h>

struct catalog_entry {
	const char *name;	/* a domain: itself and every name below it */
	const char *vendor;	/* the handset vendor, or the OS family of an os entry */
	uint8_t strength;	/* enum identity_strength */
};

extern const struct catalog_entry catalog_entries[];
extern const size_t catalog_nentries;

#endif
