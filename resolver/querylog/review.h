/*
 * review: what the two review front ends, the CLI (`veto log`, `veto report`) and the web
 * console (resolver/web), share so that they accept and refuse the same filters and export
 * the same CSV: a filter's values parsed (comma-separated values ORed, client addresses made
 * canonical, actions checked), the group, list, vendor and device values checked against the
 * names the configuration and the store know (with a "did you mean"), and the attempts CSV.
 *
 * Messages are written into a caller's buffer, lowercase, without the command's name:
 * "--group: unknown group 'staf' (did you mean 'staff'?)".
 */
#ifndef VETO_REVIEW_H
#define VETO_REVIEW_H

#include <arpa/inet.h>
#include <stddef.h>
#include <stdio.h>

#include "logdb_reader.h"

struct config;

/* Storage the canonical client addresses of a filter point into: lives as long as the filter. */
struct review_canon {
	char ip[2 * LOGDB_FILTER_VALUES][INET6_ADDRSTRLEN];
	size_t n;
};

/* The value filter of f an option names ("--group" or "group"; the same for client, mac,
 * device, vendor, domain, list, action, instance), or NULL. */
struct logdb_values *review_filter_values(struct logdb_filter *f, const char *opt);

/* Adds the values of text (cut in place at each ',' not followed by a space: "xiaomi,huawei";
 * OUI vendor names such as "ICANN, IANA Department" keep theirs) to option opt's values of f.
 * The strings stay borrowed: text (and canon for --client) must outlive f. 0, or -EINVAL
 * with a message in err (empty value, too many values, unknown action, not an address). */
int review_filter_add(struct review_canon *canon, struct logdb_filter *f, const char *opt,
                      char *text, char *err, size_t size);

/* f's group, list, vendor and device values are names cfg (may be NULL) or the store r know
 * (vendors in any case). 0; 1 with the message (and its "did you mean") in err; -ENOMEM or
 * -EIO. */
int review_filter_check(const struct config *cfg, struct logdb_reader *r,
                        const struct logdb_filter *f, char *err, size_t size);

/* The attempts CSV (`veto report attempts --format csv` and the console's /attempts.csv): its
 * header line, and one line per row. Times are ISO 8601 UTC a spreadsheet reads as dates;
 * cells a spreadsheet would read as a formula are kept as text. */
void review_attempts_csv_head(FILE *out);
void review_attempts_csv_row(FILE *out, const struct logdb_attempt *a);

#endif
