/*
 * text: copying a C string into a fixed-size field, the one way every record (device, query
 * log, event) fills its text fields; and making text that clients chose (DHCP host names,
 * query names, list entries) safe to print in an operator's terminal or table.
 */
#ifndef VETO_TEXT_H
#define VETO_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Copies src into dst (size > 0 octets), NUL-terminated, cut to at most size - 1 octets and
 * never inside a UTF-8 sequence (a cut backs up to the start of the character it would split);
 * NULL gives "". */
static inline void
text_copy(char *dst, size_t size, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= size) {
		n = size - 1;
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

/* True when a and b are both NULL or equal strings. */
static inline bool
text_equal(const char *a, const char *b)
{
	return a == NULL || b == NULL ? a == b : strcmp(a, b) == 0;
}

/*
 * Copies src (NULL: "") for a terminal: every control octet (below 0x20, and DEL) and every
 * octet that does not start a valid UTF-8 sequence becomes '?', so no terminal escape, line
 * break or broken character reaches the screen; the copy is cut at a character boundary to
 * fit size octets (NUL included). Returns dst.
 */
const char *text_safe(char *dst, size_t size, const char *src);

#endif
