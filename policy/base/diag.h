/*
 * diag: collected diagnostics (errors and warnings) with their location.
 *
 * Every problem found while loading a configuration or a list is added here, so that all of them
 * are reported at once. A message reads
 *     FILE:LINE:COLUMN: key.path: message            (errors)
 *     FILE:LINE:COLUMN: key.path: warning: message   (warnings)
 * with the parts that are unknown left out (line 0 = no line, col 0 = no column, path NULL = no
 * key path). Messages are lowercase, without a trailing period, variable text in single quotes.
 */
#ifndef VETO_DIAG_H
#define VETO_DIAG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

enum diag_level {
	DIAG_ERROR,
	DIAG_WARNING,
	DIAG_NOTE,	/* informational, e.g. "skipped" lines of a list file */
};

struct diag_entry {
	enum diag_level level;
	char *file;	/* owned, may be NULL */
	int line;	/* 1-based, 0 = unknown */
	int col;	/* 1-based, 0 = unknown */
	char *path;	/* owned key path such as "groups[1].action", may be NULL */
	char *msg;	/* owned message text, without location */
	char *text;	/* owned, the whole formatted line (what diag_print prints) */
	char *bare;	/* owned, the same line without the level ("warning: "), for printers
			   that show the level themselves (log lines) */
};

struct diag {
	struct diag_entry *v;
	size_t n, cap;
	size_t nerrors;
	size_t nwarnings;
};

void diag_init(struct diag *d);
/* Frees every entry; the struct itself is caller-owned and can be reused after diag_init. */
void diag_clear(struct diag *d);

/* Adds an entry. On allocation failure the entry is lost but the counters are still updated, so
 * an error is never silently turned into success. file and path are copied. */
void diag_add(struct diag *d, enum diag_level level, const char *file, int line, int col,
	      const char *path, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
void diag_vadd(struct diag *d, enum diag_level level, const char *file, int line, int col,
	       const char *path, const char *fmt, va_list ap) __attribute__((format(printf, 7, 0)));

/* Sorts the entries from index `from` on by file, line and column (stable: entries at the same
 * place keep their order), so that problems found in several passes read in file order. */
void diag_sort(struct diag *d, size_t from);

/* Sorts the entries from index `from` on: those located in `file` first, by line and column, then
 * every other entry in the order it was added (a list file's notes stay in reading order, with
 * their summary last). Stable. For a configuration file and the files it names. */
void diag_sort_file_first(struct diag *d, size_t from, const char *file);

/* Prints every entry of at least the given importance (DIAG_NOTE prints all), one per line. */
void diag_print(const struct diag *d, FILE *out, enum diag_level min);

#endif
