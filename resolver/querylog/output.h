/*
 * output: what the commands reading the query store (`veto log`, `veto report`) share to read
 * their arguments and print their output: times ("24h", ISO 8601) in and out, JSON members,
 * CSV fields, and aligned text tables. JSON strings are written by json.h (policy/base).
 */
#ifndef VETO_OUTPUT_H
#define VETO_OUTPUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Parses "24h", "7d", "30m", "90s", "2w" (relative to now_ms) or ISO 8601 ("2026-11-22",
 * "2026-11-22T03:58", "2026-11-22T03:58:22Z", "...+02:00"; without a zone: local time).
 * 0 or -EINVAL; *out written only on success. */
int output_parse_time(const char *text, uint64_t now_ms, uint64_t *out);

/* "2026-11-22T03:58:22.123Z" (UTC), or with local = true "2026-11-22 04:58:22" (local time). */
#define OUTPUT_TIME_MAX 64
void output_format_time(uint64_t ts_ms, bool local, char buf[OUTPUT_TIME_MAX]);
/* "2026-11-22 03:58:22.123" (UTC): the ISO 8601 form with a space that spreadsheets read as a
 * date and time (they do not read the 'T' and 'Z' of output_format_time). CSV cells. */
void output_format_csv_time(uint64_t ts_ms, char buf[OUTPUT_TIME_MAX]);

/* A CSV field (RFC 4180: quoted when it holds a comma or a quote); NULL is empty. Control octets
 * and invalid UTF-8 become '?' (text_safe), and a field that starts with '=', '+', '-' or '@'
 * is quoted with a leading apostrophe so that a spreadsheet shows it as text, not a formula. */
void output_csv(FILE *out, const char *s);

/* ,"key":"value" (or "key":"value" without comma); the value through json_fput_str(), NULL
 * prints null. key is a literal of the caller (written as it is). */
void output_json_str(FILE *f, bool comma, const char *key, const char *v);
/* ,"key":123 */
void output_json_u64(FILE *f, const char *key, uint64_t v);
/* ,"key":"2026-11-22T03:58:22.123Z" */
void output_json_time(FILE *f, const char *key, uint64_t ts);

/* An aligned text table: cells are copied terminal-safe (text_safe: control octets and invalid
 * UTF-8 become '?', so a row stays one line); NULL cells print as "-". A table can be fitted
 * to the terminal (output_table_fit): it then never wraps; columns are left out and shortened
 * instead, a shortened cell ending in "…" (cut at a UTF-8 character boundary). */
struct output_table;

#define OUTPUT_DEFAULT_WIDTH 100 /* when COLUMNS is unset and standard output is no terminal */
#define OUTPUT_MIN_WIDTH     20

/* The width tables fit in: 0 (no fitting) when wide (--wide); else COLUMNS when it is a number
 * of at least OUTPUT_MIN_WIDTH, else the terminal's width when standard output is one, else
 * OUTPUT_DEFAULT_WIDTH. */
size_t output_term_width(bool wide);

/* How a column gives way when the table does not fit. */
struct output_col {
	unsigned prio; /* 0: always shown; else the highest prio is left out first */
	size_t min;    /* shortened down to this width at most (a narrower column stays so) */
	size_t max;    /* never wider than this when fitting (0: no bound) */
};
/* heads: ncols strings, copied. 0 or -ENOMEM; *out (owned by the caller, output_table_free)
 * written only on success. */
int output_table_new(size_t ncols, const char *const *heads, struct output_table **out);
/* Fits the table's lines in width positions (0: no fitting, as before the call), cols: one per
 * column (copied). The layout is made at the first output_table_print and kept for the later
 * ones (--follow stays aligned: wider cells are shortened). 0 or -ENOMEM. */
int output_table_fit(struct output_table *t, const struct output_col *cols, size_t width);
int output_table_add(struct output_table *t, const char *const *cells); /* 0 or -ENOMEM */
/* right: per column, align right (numbers); may be NULL. Prints the header (when asked) and the
 * rows, then forgets the rows (without fitting, widths grow, never shrink: a follow-up print
 * stays aligned). */
void output_table_print(struct output_table *t, FILE *out, const bool *right, bool header);
void output_table_free(struct output_table **t);

#endif
