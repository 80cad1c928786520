/*
 * log: operational messages (startup, reload, errors, dropped records) on standard error.
 * One line each: "2026-11-22T03:58:22.123Z info: message". Thread-safe; a line is written with a
 * single write(2) so lines from threads never interleave. Not the query log (see querylog.h).
 *
 * Level: until log_set_level() is called, the level comes from the environment variable
 * VETO_LOG_LEVEL (debug, info, warning or error; read once, on the first message), or
 * LOG_LEVEL_INFO when it is unset or invalid (an invalid value is reported once as a warning).
 * An explicit log_set_level() always wins over the environment.
 * Messages longer than LOG_LINE_MAX octets are truncated (ending with "...").
 */
#ifndef VETO_LOG_H
#define VETO_LOG_H

#include <stdbool.h>

struct diag;

#define LOG_LINE_MAX 4096	/* octets per line, timestamp and newline included */

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_set_level(enum log_level level);	/* default LOG_LEVEL_INFO (or VETO_LOG_LEVEL) */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* True when a message at this level would be written (to skip building costly messages). */
bool log_enabled(enum log_level level);

/* "debug", "info", "warning" (or "warn"), "error", case-insensitive. 0 or -EINVAL; *out is
 * written only on success. */
int log_level_from_text(const char *text, enum log_level *out);

/*
 * Logs every entry of d (policy/diag.h) as one message at its own level: errors as errors,
 * warnings as warnings, notes (such as the skipped lines of a list file, already bounded per file
 * by their loader) as info. The level is the line's, so it is not repeated in the text.
 */
void log_diagnostics(const struct diag *d);

#define log_error(...)	 log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)	 log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	 log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
