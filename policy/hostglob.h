/*
 * hostglob: case-insensitive glob patterns for DHCP hostnames ("Redmi-*", "HUAWEI-*"), and the
 * default table mapping hostname patterns to handset vendors.
 *
 * Pattern syntax (ASCII; letters compare case-insensitively):
 *     *        any run of characters, including none
 *     ?        exactly one character
 *     [abc]    one character of the set; ranges "[0-9]"; "[!...]" or "[^...]" negates
 *     \c       the character c itself (to match a literal '*', '?', '[' or '\')
 *     other    itself
 * A pattern matches the whole hostname. Matching allocates nothing; its cost is bounded by
 * pattern length x hostname length (one backtracking point, the last '*').
 *
 * A hostname is a hint, never proof: users rename their devices, and Android sends option 12
 * only on some ROMs (see docs and conf/lists/data/oui.md section 4).
 */
#ifndef VETO_HOSTGLOB_H
#define VETO_HOSTGLOB_H

#include <stdbool.h>
#include <stddef.h>

#define HOSTGLOB_MAX_PATTERN 255

struct hostglob_vendor {
	const char *pattern;
	const char *vendor;	/* one of oui_vendor_name()'s names: "Xiaomi", "Oppo", ... */
};

/* The shipped defaults (editable through the configuration by whoever integrates them). */
extern const struct hostglob_vendor hostglob_default_vendors[];
extern const size_t hostglob_default_vendors_len;

/* Checks a pattern's syntax: non-empty, at most HOSTGLOB_MAX_PATTERN octets, printable ASCII,
 * brackets closed, no trailing backslash. Returns 0, or -EINVAL with *why set to a static
 * reason. */
int hostglob_check(const char *pattern, const char **why);

/* True when the hostname name[0..len) (need not be NUL-terminated) matches the pattern.
 * A pattern that fails hostglob_check matches nothing. */
bool hostglob_match(const char *pattern, const char *name, size_t len);

/* The vendor of the first entry of table[0..n) whose pattern matches the hostname, or NULL. */
const char *hostglob_vendor(const struct hostglob_vendor *table, size_t n, const char *name,
			    size_t len);

#endif
