/*
 * text: copying a C string into a fixed-size field, the one way every record (device, query
 * log, event) fills its text fields.
 */
#ifndef VETO_TEXT_H
#define VETO_TEXT_H

#include <stddef.h>
#include <string.h>

/* Copies src into dst (size > 0 octets), cut to size - 1 octets and NUL-terminated; NULL
 * gives "". The cut is octet-wise: display code cuts at character boundaries itself. */
static inline void
text_copy(char *dst, size_t size, const char *src)
{
	size_t n = src != NULL ? strlen(src) : 0;

	if (n >= size)
		n = size - 1;
	if (n > 0)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

#endif
