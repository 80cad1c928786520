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
 * UTF-8 become '?', so a row stays one line); NULL cells print as "-". */
struct output_table;
/* heads: ncols strings, copied. 0 or -ENOMEM; *out (owned by the caller, output_table_free)
 * written only on success. */
int output_table_new(size_t ncols, const char *const *heads, struct output_table **out);
int output_table_add(struct output_table *t, const char *const *cells); /* 0 or -ENOMEM */
/* right: per column, align right (numbers); may be NULL. Prints the header (when asked) and the
 * rows, then forgets the rows (widths grow, never shrink: a follow-up print stays aligned). */
void output_table_print(struct output_table *t, FILE *out, const bool *right, bool header);
void output_table_free(struct output_table **t);

#endif
