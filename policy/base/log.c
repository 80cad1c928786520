/*
 * log: operational messages on standard error, one write(2) per line.
 */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "diag.h"

#define LEVEL_UNSET (-1)

static atomic_int current_level = LEVEL_UNSET;
static pthread_once_t env_once = PTHREAD_ONCE_INIT;
static const char *_Atomic env_bad_value;	/* set once by read_env, reported by the first message */
static atomic_bool env_bad_reported;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",
	[LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

int
log_level_from_text(const char *text, enum log_level *out)
{
	static const struct {
		const char *name;
		enum log_level level;
	} table[] = {
		{ "error", LOG_LEVEL_ERROR }, { "warning", LOG_LEVEL_WARNING },
		{ "warn", LOG_LEVEL_WARNING }, { "info", LOG_LEVEL_INFO },
		{ "debug", LOG_LEVEL_DEBUG },
	};

	if (text == NULL)
		return -EINVAL;
	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		if (strcasecmp(text, table[i].name) == 0) {
			*out = table[i].level;
			return 0;
		}
	}
	return -EINVAL;
}

static void
read_env(void)
{
	const char *v = getenv("VETO_LOG_LEVEL");
	enum log_level level = LOG_LEVEL_INFO;

	if (v != NULL && *v != '\0' && log_level_from_text(v, &level) != 0) {
		atomic_store(&env_bad_value, v);
		level = LOG_LEVEL_INFO;
	}
	/* An explicit log_set_level() that ran first keeps its value. */
	int expected = LEVEL_UNSET;
	atomic_compare_exchange_strong(&current_level, &expected, (int)level);
}

void
log_set_level(enum log_level level)
{
	if ((int)level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_DEBUG;
	atomic_store(&current_level, (int)level);
}

static int
effective_level(void)
{
	int l = atomic_load_explicit(&current_level, memory_order_relaxed);

	if (l != LEVEL_UNSET)
		return l;
	pthread_once(&env_once, read_env);
	return atomic_load(&current_level);
}

bool
log_enabled(enum log_level level)
{
	return (int)level <= effective_level();
}

static void
write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;	/* nowhere left to report it */
		}
		buf += n;
		len -= (size_t)n;
	}
}

static void vlog(enum log_level level, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

static void
vlog(enum log_level level, const char *fmt, va_list ap)
{
	char line[LOG_LINE_MAX];
	struct timespec ts;
	struct tm tm;
	size_t len;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	len = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
	int n = snprintf(line + len, sizeof(line) - len, ".%03ldZ %s: ", ts.tv_nsec / 1000000L,
			 level_names[level]);
	if (n > 0)
		len += (size_t)n;

	size_t room = sizeof(line) - len - 1;	/* keep one octet for '\n' */
	n = vsnprintf(line + len, room + 1, fmt, ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > room) {
		len += room;
		memcpy(line + len - 3, "...", 3);
	} else {
		len += (size_t)n;
	}
	while (len > 0 && line[len - 1] == '\n')
		len--;
	line[len++] = '\n';
	write_all(STDERR_FILENO, line, len);
}

static void
log_call(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void
log_call(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;
	int saved_errno = errno;

	if ((int)level < LOG_LEVEL_ERROR || level > LOG_LEVEL_DEBUG)
		level = LOG_LEVEL_ERROR;
	int cur = effective_level();
	const char *bad = atomic_load(&env_bad_value);
	if (bad != NULL && !atomic_exchange(&env_bad_reported, true))
		log_call(LOG_LEVEL_WARNING,
			 "VETO_LOG_LEVEL: unknown value '%s' (expected debug, info, warning, error)",
			 bad);
	if ((int)level > cur)
		goto cleanup;
	va_start(ap, fmt);
	vlog(level, fmt, ap);
	va_end(ap);
cleanup:
	errno = saved_errno;
}

void
log_diagnostics(const struct diag *d)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_entry *e = &d->v[i];
		enum log_level level = LOG_LEVEL_INFO;
		if (e->level == DIAG_ERROR)
			level = LOG_LEVEL_ERROR;
		else if (e->level == DIAG_WARNING)
			level = LOG_LEVEL_WARNING;
		log_msg(level, "%s", e->bare);
	}
}
