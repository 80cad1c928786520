/*
 * json: the one JSON string writer of the project (query-log lines, veto log/report/devices/
 * explain --json) and the UTF-8 check it relies on.
 *
 * Rules: '"' and '\' are escaped; \n, \t and \r as such; every other control octet (below 0x20)
 * and DEL (0x7f) as \u00XX; valid UTF-8 passes unchanged; an octet that does not start a valid
 * sequence (overlong forms, surrogates, above U+10FFFF, truncated) becomes \ufffd. So whatever
 * octets a DHCP client, a list file or a packet put in a string, the output parses as JSON and
 * carries no raw terminal escape.
 */
#ifndef VETO_JSON_H
#define VETO_JSON_H

#include <stddef.h>
#include <stdio.h>

/* Length of the valid UTF-8 sequence at s (n octets available, n > 0), 0 when invalid. */
size_t json_utf8_seq(const unsigned char *s, size_t n);

/* Writes the quoted JSON string for s[0..n) through put(arg, octets, count). */
typedef void (*json_put_fn)(void *arg, const char *p, size_t n);
void json_write_str(const char *s, size_t n, json_put_fn put, void *arg);

/* The quoted JSON string of s to f; NULL is written as null. */
void json_fput_str(FILE *f, const char *s);

#endif
