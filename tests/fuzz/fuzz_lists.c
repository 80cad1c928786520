/*
 * fuzz_lists: list file parsing. Every accepted name must be canonical and round-trip through
 * its presentation form; the counters must add up; notes are printable; nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lists.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct seen {
	size_t names;
};

static int
on_name(void *arg, const struct names_name *n)
{
	struct seen *s = arg;
	char text[NAMES_MAX_TEXT];
	struct names_name back;
	size_t len = names_to_text(n, text);
	/* accepted names are plain [a-z0-9_-] labels: the text form parses back to the same */
	if (n->nlabels == 0 || names_from_text(&back, text, len, NULL) != 0 ||
	    !names_equal(n, &back))
		abort();
	s->names++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct diag d;
	struct lists_stats st = {0};
	struct seen s = {0};
	diag_init(&d);
	if (lists_parse_buf((const char *)data, size, "fuzz.txt", &d, on_name, &s, &st) != 0)
		abort();
	if (st.names != s.names || st.skipped > st.lines || d.nerrors != 0)
		abort();
	if (d.n > LISTS_MAX_NOTES + 1)
		abort();
	/* notes are one line of printable text: the quoted entry has its control octets replaced */
	for (size_t i = 0; i < d.n; i++)
		for (const unsigned char *p = (const unsigned char *)d.v[i].text; *p != '\0'; p++)
			if (*p < 0x20 || *p == 0x7f)
				abort();
	diag_clear(&d);
	return 0;
}
