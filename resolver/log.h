/*
 * log: operational messages (startup, reload, errors, dropped records) on standard error.
 * One line each: "2026-11-22T03:58:22.123Z info: message". Thread-safe; a line is written with a
 * single write(2) so lines from threads never interleave. Not the query log (see querylog.h).
 */
#ifndef VETO_LOG_H
#define VETO_LOG_H

enum log_level {
	LOG_LEVEL_ERROR = 0,
	LOG_LEVEL_WARNING,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_set_level(enum log_level level);	/* default LOG_LEVEL_INFO */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)	 log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_info(...)	 log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)	 log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
