/*
 * output: times in and out, JSON members, CSV fields and aligned text tables for `veto log`
 * and `veto report` (see output.h).
 */
#include "output.h"

#include <ctype.h>
#include <inttypes.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "json.h"
#include "text.h"

/* ---- time ---- */

static bool
digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (!isdigit((unsigned char)(*p)[i]))
			return false;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return true;
}

static int
parse_iso(const char *s, uint64_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0;
	const char *p = s;
	bool zone = false;
	long off_s = 0;

	if (!digits(&p, 4, &y) || *p++ != '-' || !digits(&p, 2, &mo) || *p++ != '-' ||
	    !digits(&p, 2, &d))
		return -EINVAL;
	if (*p == 'T' || *p == 't' || *p == ' ') {
		p++;
		if (!digits(&p, 2, &h) || *p++ != ':' || !digits(&p, 2, &mi))
			return -EINVAL;
		if (*p == ':') {
			p++;
			if (!digits(&p, 2, &sec))
				return -EINVAL;
			if (*p == '.') {
				int scale = 100;
				p++;
				if (!isdigit((unsigned char)*p))
					return -EINVAL;
				for (; isdigit((unsigned char)*p); p++) {
					ms += (*p - '0') * scale;
					scale /= 10;
				}
			}
		}
	}
	if (*p == 'Z' || *p == 'z') {
		zone = true;
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om = 0;
		p++;
		if (!digits(&p, 2, &oh))
			return -EINVAL;
		if (*p == ':')
			p++;
		if (isdigit((unsigned char)*p) && !digits(&p, 2, &om))
			return -EINVAL;
		if (oh > 23 || om > 59)
			return -EINVAL;
		zone = true;
		off_s = sign * (oh * 3600L + om * 60L);
	}
	if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t;
	if (zone) {
		t = timegm(&tm);
		t -= off_s;
	} else {
		tm.tm_isdst = -1;
		t = mktime(&tm);
	}
	if (t == (time_t)-1 || t < 0)
		return -EINVAL;
	*out = (uint64_t)t * 1000 + (uint64_t)ms;
	return 0;
}

int
output_parse_time(const char *text, uint64_t now_ms, uint64_t *out)
{
	static const struct {
		char unit;
		uint64_t ms;
	} units[] = {
	        {'s', 1000}, {'m', 60000}, {'h', 3600000}, {'d', 86400000}, {'w', 604800000},
	};
	size_t n = strlen(text);

	if (n >= 2 && n <= 12) {
		uint64_t v = 0;
		size_t i = 0;
		while (i < n - 1 && isdigit((unsigned char)text[i]))
			v = v * 10 + (uint64_t)(text[i++] - '0');
		if (i == n - 1 && i > 0) {
			for (size_t u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
				if (text[i] != units[u].unit)
					continue;
				if (v > UINT64_MAX / units[u].ms)
					return -EINVAL; /* longer ago than time itself */
				uint64_t d = v * units[u].ms;
				*out = d < now_ms ? now_ms - d : 0;
				return 0;
			}
			return -EINVAL;
		}
	}
	return parse_iso(text, out);
}

/* ---- output helpers ---- */

void
output_json_str(FILE *f, bool comma, const char *key, const char *v)
{
	fprintf(f, "%s\"%s\":", comma ? "," : "", key);
	json_fput_str(f, v);
}

void
output_json_u64(FILE *f, const char *key, uint64_t v)
{
	fprintf(f, ",\"%s\":%" PRIu64, key, v);
}

void
output_json_time(FILE *f, const char *key, uint64_t ts)
{
	char t[OUTPUT_TIME_MAX];

	output_format_time(ts, false, t);
	fprintf(f, ",\"%s\":\"%s\"", key, t);
}

void
output_csv(FILE *out, const char *s)
{
	if (s == NULL)
		return;
	char *safe = malloc(strlen(s) + 1);
	if (safe == NULL) {
		fputs("?", out);
		return;
	}
	text_safe(safe, strlen(s) + 1, s);
	/* a cell a spreadsheet would read as a formula is kept as text */
	bool formula = strchr("=+-@", safe[0]) != NULL && safe[0] != '\0';
	if (!formula && strpbrk(safe, ",\"") == NULL) {
		fputs(safe, out);
		free(safe);
		return;
	}
	fputc('"', out);
	if (formula)
		fputc('\'', out);
	for (const char *p = safe; *p != '\0'; p++) {
		if (*p == '"')
			fputc('"', out);
		fputc(*p, out);
	}
	fputc('"', out);
	free(safe);
}

void
output_format_time(uint64_t ts_ms, bool local, char buf[OUTPUT_TIME_MAX])
{
	time_t secs = (time_t)(ts_ms / 1000);
	struct tm tm;

	if ((local ? localtime_r(&secs, &tm) : gmtime_r(&secs, &tm)) == NULL)
		memset(&tm, 0, sizeof(tm));
	if (local)
		snprintf(buf, OUTPUT_TIME_MAX, "%04d-%02d-%02d %02d:%02d:%02d", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	else
		snprintf(buf, OUTPUT_TIME_MAX, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
		         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
		         tm.tm_sec, (unsigned)(ts_ms % 1000));
}

void
output_format_csv_time(uint64_t ts_ms, char buf[OUTPUT_TIME_MAX])
{
	char *t;

	output_format_time(ts_ms, false, buf); /* "2026-11-22T03:58:22.123Z" */
	if ((t = strchr(buf, 'T')) != NULL)
		*t = ' ';
	if ((t = strchr(buf, 'Z')) != NULL)
		*t = '\0';
}

struct output_table {
	size_t ncols;
	char **heads;
	size_t *width;
	char **cells; /* nrows * ncols */
	size_t nrows, cap;
	/* fitting (output_table_fit): the columns' bounds, the width to fit in (0: none) and,
	 * from the first print on, the layout: which columns show and how wide */
	struct output_col *cols;
	size_t limit;
	bool laid_out;
	bool *shown;
	size_t *fitw;
};

/* Display width: UTF-8 continuation octets do not count. */
static size_t
text_width(const char *s)
{
	size_t w = 0;

	for (; *s != '\0'; s++)
		if (((unsigned char)*s & 0xc0) != 0x80)
			w++;
	return w;
}

size_t
output_term_width(bool wide)
{
	const char *env = getenv("COLUMNS");
	struct winsize ws;

	if (wide)
		return 0;
	if (env != NULL && *env >= '0' && *env <= '9') {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (*end == '\0' && v >= OUTPUT_MIN_WIDTH && v <= 100000)
			return (size_t)v;
	}
	if (isatty(STDOUT_FILENO) && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 &&
	    ws.ws_col >= OUTPUT_MIN_WIDTH)
		return ws.ws_col;
	return OUTPUT_DEFAULT_WIDTH;
}

int
output_table_new(size_t ncols, const char *const *heads, struct output_table **out)
{
	struct output_table *t = calloc(1, sizeof(*t));

	if (t == NULL)
		return -ENOMEM;
	t->ncols = ncols;
	t->heads = calloc(ncols, sizeof(*t->heads));
	t->width = calloc(ncols, sizeof(*t->width));
	t->shown = calloc(ncols, sizeof(*t->shown));
	t->fitw = calloc(ncols, sizeof(*t->fitw));
	if (t->heads == NULL || t->width == NULL || t->shown == NULL || t->fitw == NULL)
		goto cleanup;
	for (size_t i = 0; i < ncols; i++) {
		t->heads[i] = strdup(heads[i]);
		if (t->heads[i] == NULL)
			goto cleanup;
		t->width[i] = text_width(heads[i]);
	}
	*out = t;
	return 0;
cleanup:
	output_table_free(&t);
	return -ENOMEM;
}

int
output_table_fit(struct output_table *t, const struct output_col *cols, size_t width)
{
	if (width == 0)
		return 0;
	if (t->cols == NULL && (t->cols = malloc(t->ncols * sizeof(*t->cols))) == NULL)
		return -ENOMEM;
	memcpy(t->cols, cols, t->ncols * sizeof(*t->cols));
	t->limit = width;
	return 0;
}

int
output_table_add(struct output_table *t, const char *const *cells)
{
	if (t->nrows == t->cap) {
		size_t cap = t->cap > 0 ? 2 * t->cap : 64;
		char **nc = realloc(t->cells, cap * t->ncols * sizeof(*nc));
		if (nc == NULL)
			return -ENOMEM;
		t->cells = nc;
		t->cap = cap;
	}
	char **row = t->cells + t->nrows * t->ncols;
	for (size_t i = 0; i < t->ncols; i++) {
		const char *c = cells[i] != NULL ? cells[i] : "-";
		row[i] = malloc(strlen(c) + 1);
		if (row[i] != NULL)	/* no control octet or broken character on the screen */
			text_safe(row[i], strlen(c) + 1, c);
		if (row[i] == NULL) {
			while (i-- > 0)
				free(row[i]);
			return -ENOMEM;
		}
	}
	for (size_t i = 0; i < t->ncols; i++) {
		size_t w = text_width(row[i]);
		if (w > t->width[i])
			t->width[i] = w;
	}
	t->nrows++;
	return 0;
}

/* The line width of the shown columns at widths w, two spaces between columns. */
static size_t
line_width(const struct output_table *t, const size_t *w)
{
	size_t sum = 0, n = 0;

	for (size_t i = 0; i < t->ncols; i++) {
		if (t->shown[i]) {
			sum += w[i];
			n++;
		}
	}
	return n > 0 ? sum + 2 * (n - 1) : 0;
}

/*
 * The layout, made once at the first print: every column at its widest cell (at most its max);
 * while the columns' minimums do not fit, the least important column (the highest prio, the
 * rightmost of equals; prio 0 never) is left out; then the column with the most room above
 * its minimum gives one position at a time until the line fits.
 */
static void
lay_out(struct output_table *t)
{
	size_t *floor = t->fitw; /* first the minimums, then the widths */
	size_t w[64];

	t->laid_out = true;
	for (size_t i = 0; i < t->ncols; i++) {
		t->shown[i] = true;
		t->fitw[i] = t->width[i];
	}
	if (t->cols == NULL || t->limit == 0 || t->ncols > sizeof(w) / sizeof(w[0]))
		return;
	for (size_t i = 0; i < t->ncols; i++) {
		w[i] = t->width[i];
		if (t->cols[i].max > 0 && w[i] > t->cols[i].max)
			w[i] = t->cols[i].max;
		floor[i] = t->cols[i].min < w[i] ? t->cols[i].min : w[i];
	}
	while (line_width(t, floor) > t->limit) {
		size_t drop = t->ncols;
		for (size_t i = 0; i < t->ncols; i++)
			if (t->shown[i] && t->cols[i].prio > 0 &&
			    (drop == t->ncols || t->cols[i].prio >= t->cols[drop].prio))
				drop = i;
		if (drop == t->ncols)
			break; /* only what is always shown is left: it is printed as it is */
		t->shown[drop] = false;
	}
	while (line_width(t, w) > t->limit) {
		size_t best = t->ncols;
		for (size_t i = 0; i < t->ncols; i++)
			if (t->shown[i] && w[i] > floor[i] &&
			    (best == t->ncols || w[i] - floor[i] >= w[best] - floor[best]))
				best = i;
		if (best == t->ncols)
			break;
		w[best]--;
	}
	memcpy(t->fitw, w, t->ncols * sizeof(*w));
}

/* s in width positions: cut at a character boundary, with "…" as its last position. */
static void
print_cell(FILE *out, const char *s, size_t width, bool right, bool last)
{
	size_t tw = text_width(s), pad = 0, len = strlen(s);
	bool cut = tw > width;

	if (cut) {
		size_t keep = width > 0 ? width - 1 : 0, n = 0;
		len = 0;
		while (s[len] != '\0') {
			if (((unsigned char)s[len] & 0xc0) != 0x80 && n++ == keep)
				break;
			len++;
		}
	} else {
		pad = width - tw;
	}
	if (right)
		fprintf(out, "%*s", (int)pad, "");
	fwrite(s, 1, len, out);
	if (cut && width > 0)
		fputs("\u2026", out);
	if (!right && !last)
		fprintf(out, "%*s", (int)pad, "");
	if (!last)
		fputs("  ", out);
}

static void
print_line(struct output_table *t, FILE *out, const bool *right, char **cells)
{
	size_t last = 0;

	for (size_t i = 0; i < t->ncols; i++)
		if (t->shown[i])
			last = i;
	for (size_t i = 0; i < t->ncols; i++) {
		if (!t->shown[i])
			continue;
		size_t w = t->limit > 0 ? t->fitw[i] : t->width[i];
		print_cell(out, cells[i], w, right != NULL && right[i], i == last);
	}
	fputc('\n', out);
}

void
output_table_print(struct output_table *t, FILE *out, const bool *right, bool header)
{
	if (!t->laid_out)
		lay_out(t);
	if (header)
		print_line(t, out, right, t->heads);
	for (size_t r = 0; r < t->nrows; r++) {
		char **row = t->cells + r * t->ncols;
		print_line(t, out, right, row);
		for (size_t i = 0; i < t->ncols; i++)
			free(row[i]);
	}
	t->nrows = 0;
}

void
output_table_free(struct output_table **tp)
{
	struct output_table *t = *tp;

	if (t == NULL)
		return;
	for (size_t i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	for (size_t i = 0; t->heads != NULL && i < t->ncols; i++)
		free(t->heads[i]);
	free(t->heads);
	free(t->width);
	free(t->cols);
	free(t->shown);
	free(t->fitw);
	free(t);
	*tp = NULL;
}
