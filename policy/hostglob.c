/*
 * hostglob: hostname globs (see hostglob.h).
 *
 * The matcher is the classic two-pointer glob walk: every element but '*' consumes exactly one
 * character, so on a mismatch it is enough to return to the last '*' and let it swallow one more
 * character; earlier stars never need revisiting.
 */
#include <errno.h>
#include <string.h>

#include "hostglob.h"

/*
 * Android builds the DHCP hostname from the user-visible device name with spaces turned into
 * hyphens ("Redmi Note 8" -> "Redmi-Note-8"). Redmi and POCO phones are Xiaomi's; iQOO is a
 * Vivo brand. "Mi-*" alone would also catch personal names, so only Xiaomi's Mi model lines
 * are listed.
 */
const struct hostglob_vendor hostglob_default_vendors[] = {
	{"Xiaomi-*", "Xiaomi"},
	{"Redmi-*", "Xiaomi"},
	{"POCO-*", "Xiaomi"},
	{"Mi-[0-9]*", "Xiaomi"},
	{"Mi-A[0-9]*", "Xiaomi"},
	{"Mi-Note-*", "Xiaomi"},
	{"Mi-MIX-*", "Xiaomi"},
	{"Mi-Max-*", "Xiaomi"},
	{"OPPO-*", "Oppo"},
	{"OnePlus-*", "OnePlus"},
	{"realme-*", "Realme"},
	{"vivo-*", "Vivo"},
	{"iQOO-*", "Vivo"},
	{"HUAWEI-*", "Huawei"},
	{"HONOR-*", "Honor"},
	{"Galaxy-*", "Samsung"},
	{"SAMSUNG-*", "Samsung"},
};
const size_t hostglob_default_vendors_len =
	sizeof(hostglob_default_vendors) / sizeof(hostglob_default_vendors[0]);

static char
lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

int
hostglob_check(const char *pattern, const char **why)
{
	size_t len = strlen(pattern);
	if (len == 0) {
		*why = "empty pattern";
		return -EINVAL;
	}
	if (len > HOSTGLOB_MAX_PATTERN) {
		*why = "pattern too long";
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)pattern[i];
		if (c < 0x21 || c > 0x7e) {
			*why = "pattern contains a space or a non-printable or non-ascii character";
			return -EINVAL;
		}
		if (c == '\\') {
			if (i + 1 == len) {
				*why = "trailing backslash";
				return -EINVAL;
			}
			i++;
		} else if (c == '[') {
			size_t j = i + 1;
			if (pattern[j] == '!' || pattern[j] == '^')
				j++;
			if (pattern[j] == ']')	/* a leading ']' is a member of the set */
				j++;
			while (pattern[j] != '\0' && pattern[j] != ']')
				j++;
			if (pattern[j] != ']') {
				*why = "unclosed '['";
				return -EINVAL;
			}
			i = j;
		}
	}
	return 0;
}

/* Matches the element at pat[*pi] (not '*') against c; on a match advances *pi past it. */
static bool
elem_match(const char *pat, size_t *pi, char c)
{
	size_t i = *pi;
	char lc = lower(c);
	bool ok;
	if (pat[i] == '?') {
		ok = true;
		i++;
	} else if (pat[i] == '[') {
		bool neg = false, found = false;
		i++;
		if (pat[i] == '!' || pat[i] == '^') {
			neg = true;
			i++;
		}
		bool first = true;
		while (first || pat[i] != ']') {
			char lo = pat[i], hi = pat[i];
			if (pat[i + 1] == '-' && pat[i + 2] != ']') {
				hi = pat[i + 2];
				i += 3;
			} else {
				i++;
			}
			if ((c >= lo && c <= hi) || (lc >= lower(lo) && lc <= lower(hi)))
				found = true;
			first = false;
		}
		i++;	/* ']' */
		ok = found != neg;
	} else {
		if (pat[i] == '\\')
			i++;
		ok = lower(pat[i]) == lc;
		i++;
	}
	if (ok)
		*pi = i;
	return ok;
}

bool
hostglob_match(const char *pattern, const char *name, size_t len)
{
	const char *why;
	if (hostglob_check(pattern, &why) != 0)
		return false;
	size_t p = 0, n = 0, star_p = 0, star_n = 0;
	bool have_star = false;
	while (n < len) {
		if (pattern[p] == '*') {
			have_star = true;
			star_p = ++p;
			star_n = n;
			continue;
		}
		if (pattern[p] != '\0' && elem_match(pattern, &p, name[n])) {
			n++;
			continue;
		}
		if (!have_star)
			return false;
		p = star_p;
		n = ++star_n;
	}
	while (pattern[p] == '*')
		p++;
	return pattern[p] == '\0';
}

const char *
hostglob_vendor(const struct hostglob_vendor *table, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (hostglob_match(table[i].pattern, name, len))
			return table[i].vendor;
	return NULL;
}
