/*
 * text: terminal-safe copies (see text.h).
 */
#include "text.h"

#include "json.h"

const char *
text_safe(char *dst, size_t size, const char *src)
{
	const unsigned char *s = (const unsigned char *)(src != NULL ? src : "");
	size_t n = strlen((const char *)s), w = 0;

	for (size_t i = 0; i < n;) {
		size_t seq = s[i] < 0x20 || s[i] == 0x7f ? 0 : json_utf8_seq(s + i, n - i);
		size_t out = seq > 0 ? seq : 1;
		if (w + out >= size)
			break;
		if (seq == 0)
			dst[w] = '?';
		else
			memcpy(dst + w, s + i, seq);
		w += out;
		i += seq > 0 ? seq : 1;
	}
	dst[w] = '\0';
	return dst;
}
