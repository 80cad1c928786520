/*
 * json: JSON string escaping (see json.h).
 */
#include "json.h"

#include <stdint.h>
#include <string.h>

size_t
json_utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
json_write_str(const char *s, size_t n, json_put_fn put, void *o)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *u = (const unsigned char *)s;

	put(o, "\"", 1);
	for (size_t i = 0; i < n;) {
		unsigned char c = u[i];
		size_t seq, run = i;

		while (run < n && u[run] >= 0x20 && u[run] < 0x7f && u[run] != '"' && u[run] != '\\')
			run++;
		if (run > i) {
			put(o, s + i, run - i);
			i = run;
			continue;
		}
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			put(o, e, 2);
			i++;
		} else if (c == '\n') {
			put(o, "\\n", 2);
			i++;
		} else if (c == '\t') {
			put(o, "\\t", 2);
			i++;
		} else if (c == '\r') {
			put(o, "\\r", 2);
			i++;
		} else if (c < 0x20 || c == 0x7f) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			put(o, e, 6);
			i++;
		} else if ((seq = json_utf8_seq(u + i, n - i)) == 0) {
			put(o, "\\ufffd", 6);
			i++;
		} else {
			put(o, s + i, seq);
			i += seq;
		}
	}
	put(o, "\"", 1);
}

static void
put_file(void *arg, const char *p, size_t n)
{
	fwrite(p, 1, n, arg);
}

void
json_fput_str(FILE *f, const char *s)
{
	if (s == NULL)
		fputs("null", f);
	else
		json_write_str(s, strlen(s), put_file, f);
}
