/*
 * diag: collected diagnostics with their location (see diag.h).
 */
#include "diag.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

static char *
dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

void
diag_init(struct diag *d)
{
	memset(d, 0, sizeof(*d));
}

static void
entry_free(struct diag_entry *e)
{
	free(e->file);
	free(e->path);
	free(e->msg);
	free(e->text);
	free(e->bare);
}

void
diag_clear(struct diag *d)
{
	for (size_t i = 0; i < d->n; i++)
		entry_free(&d->v[i]);
	free(d->v);
	diag_init(d);
}

static const char *
level_prefix(enum diag_level level)
{
	switch (level) {
	case DIAG_WARNING:
		return "warning: ";
	case DIAG_ERROR:
	case DIAG_NOTE:
		break;
	}
	return "";
}

/* Formats "FILE:LINE:COL: path: [warning: ]msg" leaving out the unknown parts; the level only
 * when with_level. */
static char *
format_text(const struct diag_entry *e, bool with_level)
{
	char *text = NULL;
	char loc[64] = "";
	if (e->line > 0 && e->col > 0)
		snprintf(loc, sizeof(loc), ":%d:%d", e->line, e->col);
	else if (e->line > 0)
		snprintf(loc, sizeof(loc), ":%d", e->line);
	int r = asprintf(&text, "%s%s%s%s%s%s%s", e->file != NULL ? e->file : "", loc,
			 e->file != NULL || loc[0] != '\0' ? ": " : "", e->path != NULL ? e->path : "",
			 e->path != NULL ? ": " : "", with_level ? level_prefix(e->level) : "",
			 e->msg);
	return r < 0 ? NULL : text;
}

void
diag_vadd(struct diag *d, enum diag_level level, const char *file, int line, int col,
	  const char *path, const char *fmt, va_list ap)
{
	if (level == DIAG_ERROR)
		d->nerrors++;
	else if (level == DIAG_WARNING)
		d->nwarnings++;

	if (d->n == d->cap) {
		size_t cap = d->cap ? d->cap * 2 : 16;
		struct diag_entry *v = realloc(d->v, cap * sizeof(*v));
		if (v == NULL)
			return;
		d->v = v;
		d->cap = cap;
	}
	struct diag_entry e = {
		.level = level,
		.line = line > 0 ? line : 0,
		.col = col > 0 ? col : 0,
	};
	e.file = dup_or_null(file);
	e.path = dup_or_null(path);
	if (vasprintf(&e.msg, fmt, ap) < 0)
		e.msg = NULL;
	/* one line of plain text whatever a file quoted into it held (a lease or list file
	 * from the network must not put line breaks or terminal escapes into messages) */
	for (char *c = e.msg; c != NULL && *c != '\0'; c++) {
		if ((unsigned char)*c < 0x20 || *c == 0x7f)
			*c = '?';
	}
	if ((file != NULL && e.file == NULL) || (path != NULL && e.path == NULL) || e.msg == NULL)
		goto fail;
	e.text = format_text(&e, true);
	e.bare = format_text(&e, false);
	if (e.text == NULL || e.bare == NULL)
		goto fail;
	d->v[d->n++] = e;
	return;
fail:
	entry_free(&e);
}

void
diag_add(struct diag *d, enum diag_level level, const char *file, int line, int col,
	 const char *path, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	diag_vadd(d, level, file, line, col, path, fmt, ap);
	va_end(ap);
}

static int
pos_cmp(const struct diag_entry *a, const struct diag_entry *b)
{
	if (a->line != b->line)
		return a->line < b->line ? -1 : 1;
	if (a->col != b->col)
		return a->col < b->col ? -1 : 1;
	return 0;
}

static int
entry_cmp(const struct diag_entry *a, const struct diag_entry *b, const char *file)
{
	(void)file;
	int c = strcmp(a->file != NULL ? a->file : "", b->file != NULL ? b->file : "");
	return c != 0 ? c : pos_cmp(a, b);
}

static bool
in_file(const struct diag_entry *e, const char *file)
{
	return e->file != NULL && strcmp(e->file, file) == 0;
}

/* Entries of file by position, before all others, which compare equal. */
static int
file_first_cmp(const struct diag_entry *a, const struct diag_entry *b, const char *file)
{
	bool ia = in_file(a, file), ib = in_file(b, file);
	if (ia != ib)
		return ia ? -1 : 1;
	return ia ? pos_cmp(a, b) : 0;
}

/* Insertion sort: stable, and the lists are short. */
static void
sort_from(struct diag *d, size_t from,
	  int (*cmp)(const struct diag_entry *, const struct diag_entry *, const char *),
	  const char *file)
{
	for (size_t i = from + 1; i < d->n; i++) {
		struct diag_entry e = d->v[i];
		size_t j = i;
		while (j > from && cmp(&d->v[j - 1], &e, file) > 0) {
			d->v[j] = d->v[j - 1];
			j--;
		}
		d->v[j] = e;
	}
}

void
diag_sort(struct diag *d, size_t from)
{
	sort_from(d, from, entry_cmp, NULL);
}

void
diag_sort_file_first(struct diag *d, size_t from, const char *file)
{
	sort_from(d, from, file_first_cmp, file);
}

void
diag_print(const struct diag *d, FILE *out, enum diag_level min)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->v[i].level <= min)
			fprintf(out, "%s\n", d->v[i].text);
}
