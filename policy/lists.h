/*
 * lists: reading list files and inline list entries.
 *
 * Formats are detected per line:
 *   plain names       tracking.miui.com
 *   hosts lines       0.0.0.0 tracking.miui.com other.example   (any IPv4/IPv6 address first)
 *   wildcards         *.miui.com          (same as miui.com: the name and its subdomains)
 *   adblock rules     ||tracking.miui.com^
 *   comments          # ... and ! ... (whole line), and " # ..." after an entry; blank lines
 * Rules that cannot be expressed as "this name and its subdomains" (adblock exceptions, options,
 * paths, regexes) and invalid names are skipped and counted; the first LISTS_MAX_NOTES of a file
 * are reported as notes "FILE:LINE: skipped: reason". Hosts-file boilerplate (localhost,
 * broadcasthost, ip6-allnodes, 0.0.0.0 as a name, ...) is ignored silently: not counted.
 * The root name "." is refused: it would match every name (use default: deny).
 */
#ifndef VETO_LISTS_H
#define VETO_LISTS_H

#include <stddef.h>

#include "diag.h"
#include "names.h"

#define LISTS_MAX_NOTES 5

struct lists_stats {
	size_t lines;		/* lines read */
	size_t names;		/* names passed to the callback (duplicates included) */
	size_t skipped;		/* lines with at least one skipped entry */
	size_t ignored;		/* boilerplate entries ignored silently */
};

/* Called for every accepted name; a negative return (-errno) stops parsing and is returned. */
typedef int lists_name_cb(void *arg, const struct names_name *n);

/*
 * Parses one entry as written in the configuration's inline domains or a plain list line:
 * optional "*." prefix, trailing dot optional. Returns 0, 1 when the entry is boilerplate to
 * ignore, or -EINVAL with *why set to a static reason.
 */
int lists_parse_name(const char *text, size_t len, struct names_name *out, const char **why);

/*
 * Parses list text buf[0..len) (need not be NUL-terminated) with file as the name used in notes.
 * Adds to *st (the caller zeroes it). Returns 0, or the callback's negative return.
 */
int lists_parse_buf(const char *buf, size_t len, const char *file, struct diag *diag,
		    lists_name_cb *cb, void *arg, struct lists_stats *st);

/*
 * Reads and parses the list file at path. When it cannot be read, adds an error to diag located
 * at (cfg_file, loc_line, loc_col, key) and returns -errno. Otherwise as lists_parse_buf.
 */
int lists_read_file(const char *path, const char *cfg_file, int loc_line, int loc_col,
		    const char *key, struct diag *diag, lists_name_cb *cb, void *arg,
		    struct lists_stats *st);

#endif
