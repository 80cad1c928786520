/*
 * test_log: line format, level filter, VETO_LOG_LEVEL, truncation, whole lines from threads.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "diag.h"
#include "log.h"

static char tmpdir[256];
static const char *self_path;

static int
setup_dir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_log.XXXXXX");
	return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int
teardown_dir(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	return system(cmd) == 0 ? 0 : -1;
}

struct capture {
	int saved;
	char path[300];
};

static void
capture_start(struct capture *c, const char *name)
{
	snprintf(c->path, sizeof(c->path), "%s/%s", tmpdir, name);
	int fd = open(c->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600);
	assert_true(fd >= 0);
	c->saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	close(fd);
}

static char *
read_fd_all(int fd)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);

	assert_non_null(buf);
	for (;;) {
		if (cap - n < 4096) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		ssize_t got = read(fd, buf + n, cap - n - 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	buf[n] = '\0';
	return buf;
}

static char *
capture_end(struct capture *c)
{
	assert_int_equal(dup2(c->saved, STDERR_FILENO), STDERR_FILENO);
	close(c->saved);
	int fd = open(c->path, O_RDONLY);
	assert_true(fd >= 0);
	char *text = read_fd_all(fd);
	close(fd);
	return text;
}

static bool
matches(const char *re_text, const char *s)
{
	regex_t re;

	assert_int_equal(regcomp(&re, re_text, REG_EXTENDED | REG_NOSUB), 0);
	bool ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

#define TS_RE "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "

static void
test_format_and_filter(void **state)
{
	static const struct {
		enum log_level set;
		bool error, warning, info, debug;
	} cases[] = {
		{ LOG_LEVEL_ERROR, true, false, false, false },
		{ LOG_LEVEL_WARNING, true, true, false, false },
		{ LOG_LEVEL_INFO, true, true, true, false },
		{ LOG_LEVEL_DEBUG, true, true, true, true },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct capture c;
		char want[256];

		capture_start(&c, "filter.stderr");
		log_set_level(cases[i].set);
		log_error("e %d", 1);
		log_warning("w '%s'", "x");
		log_info("i");
		log_debug("d");
		char *text = capture_end(&c);

		snprintf(want, sizeof(want), "%s%s%s%s", cases[i].error ? "e" : "",
			 cases[i].warning ? "w" : "", cases[i].info ? "i" : "",
			 cases[i].debug ? "d" : "");
		char got[8] = "";
		for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			if (!matches(TS_RE "(error|warning|info|debug): .+$", line))
				fail_msg("case %zu: bad line '%s'", i, line);
			const char *msg = strstr(line, ": ") + 2;
			strncat(got, msg, 1);
		}
		if (strcmp(got, want) != 0)
			fail_msg("case %zu: got '%s' want '%s'", i, got, want);
		free(text);
		assert_int_equal(log_enabled(LOG_LEVEL_DEBUG), cases[i].debug);
		assert_int_equal(log_enabled(LOG_LEVEL_INFO), cases[i].info);
	}
	log_set_level(LOG_LEVEL_INFO);
}

static void
test_exact_line(void **state)
{
	struct capture c;

	(void)state;
	log_set_level(LOG_LEVEL_INFO);
	capture_start(&c, "exact.stderr");
	errno = EPERM;
	log_warning("conf/veto.yaml:14:5: groups[1].action: unknown value '%s'", "sinkhol");
	assert_int_equal(errno, EPERM); /* preserved */
	log_info("trailing newline is not doubled\n");
	char *text = capture_end(&c);
	assert_true(matches(TS_RE "warning: conf/veto.yaml:14:5: groups\\[1\\]\\.action: unknown "
				  "value 'sinkhol'\n" "[0-9]{4}-.{19} info: trailing newline is not "
				  "doubled\n$",
			    text));
	free(text);
}

/* A diagnostic is logged at its own level, which is not repeated in the text ("warning: ...:
 * warning: used by no group" was printed before); notes are info lines. */
static void
test_diagnostics(void **state)
{
	struct capture c;
	struct diag d;

	(void)state;
	log_set_level(LOG_LEVEL_INFO);
	diag_init(&d);
	diag_add(&d, DIAG_ERROR, "v.yaml", 3, 5, "groups[0].action", "unknown value '%s'", "x");
	diag_add(&d, DIAG_WARNING, "v.yaml", 20, 3, "lists.canary", "used by no group");
	diag_add(&d, DIAG_NOTE, "ads.txt", 7, 0, NULL, "skipped: %s", "bad name");
	capture_start(&c, "diag.stderr");
	log_diagnostics(&d);
	char *text = capture_end(&c);
	assert_true(matches(TS_RE "error: v\\.yaml:3:5: groups\\[0\\]\\.action: unknown value 'x'\n"
			    "[0-9]{4}-.{19} warning: v\\.yaml:20:3: lists\\.canary: used by no group\n"
			    "[0-9]{4}-.{19} info: ads\\.txt:7: skipped: bad name\n$",
			    text));
	free(text);

	/* below the level: nothing */
	log_set_level(LOG_LEVEL_WARNING);
	capture_start(&c, "diag2.stderr");
	log_diagnostics(&d);
	text = capture_end(&c);
	assert_false(strstr(text, "skipped") != NULL);
	assert_true(strstr(text, "used by no group") != NULL);
	free(text);
	log_set_level(LOG_LEVEL_INFO);
	diag_clear(&d);
}

static void
test_truncation(void **state)
{
	struct capture c;
	char *big = malloc(3 * LOG_LINE_MAX);

	(void)state;
	assert_non_null(big);
	memset(big, 'x', 3 * LOG_LINE_MAX - 1);
	big[3 * LOG_LINE_MAX - 1] = '\0';
	capture_start(&c, "trunc.stderr");
	log_error("%s", big);
	log_error("after");
	char *text = capture_end(&c);
	char *nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_int_equal(nl - text + 1, LOG_LINE_MAX);
	assert_memory_equal(nl - 3, "...", 3);
	assert_true(matches("error: after\n$", nl + 1));
	free(text);
	free(big);
}

static void
test_level_from_text(void **state)
{
	static const struct {
		const char *text;
		int rc;
		enum log_level level;
	} cases[] = {
		{ "debug", 0, LOG_LEVEL_DEBUG },   { "INFO", 0, LOG_LEVEL_INFO },
		{ "warning", 0, LOG_LEVEL_WARNING }, { "warn", 0, LOG_LEVEL_WARNING },
		{ "Error", 0, LOG_LEVEL_ERROR },   { "", -EINVAL, 0 },
		{ "verbose", -EINVAL, 0 },	   { "info ", -EINVAL, 0 },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		enum log_level l = (enum log_level)99;
		int rc = log_level_from_text(cases[i].text, &l);
		assert_int_equal(rc, cases[i].rc);
		assert_int_equal(l, rc == 0 ? cases[i].level : (enum log_level)99);
	}
	enum log_level l = LOG_LEVEL_INFO;
	assert_int_equal(log_level_from_text(NULL, &l), -EINVAL);
}

struct thread_arg {
	int id;
};

#define THREADS 4
#define LINES_PER_THREAD 500

static void *
spam(void *p)
{
	const struct thread_arg *a = p;
	char payload[2000];

	memset(payload, 'a' + a->id, sizeof(payload) - 1);
	payload[sizeof(payload) - 1] = '\0';
	for (int i = 0; i < LINES_PER_THREAD; i++)
		log_info("t%d %d %s", a->id, i, payload);
	return NULL;
}

static void
test_threads_whole_lines(void **state)
{
	pthread_t th[THREADS];
	struct thread_arg args[THREADS];
	struct capture c;
	int count[THREADS] = { 0 };

	(void)state;
	log_set_level(LOG_LEVEL_INFO);
	capture_start(&c, "threads.stderr");
	for (int i = 0; i < THREADS; i++) {
		args[i].id = i;
		assert_int_equal(pthread_create(&th[i], NULL, spam, &args[i]), 0);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	char *text = capture_end(&c);

	for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
		int id, n, len;
		const char *msg = strstr(line, " info: t");
		assert_non_null(msg);
		assert_int_equal(sscanf(msg, " info: t%d %d %n", &id, &n, &len), 2);
		assert_true(id >= 0 && id < THREADS);
		const char *pl = msg + len;
		assert_int_equal(strlen(pl), 1999);
		for (size_t k = 0; k < 1999; k++)
			if (pl[k] != 'a' + id)
				fail_msg("line of thread %d mixed with another", id);
		count[id]++;
	}
	for (int i = 0; i < THREADS; i++)
		assert_int_equal(count[i], LINES_PER_THREAD);
	free(text);
}

/* VETO_LOG_LEVEL is read once per process, before any log_set_level(): run a fresh copy of this
 * program (see main) with the variable set and read its standard error. */
static char *
run_child(const char *env_value, const char *mode)
{
	int fds[2];

	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(fds[1], STDERR_FILENO);
		close(fds[0]);
		close(fds[1]);
		if (env_value != NULL)
			setenv("VETO_LOG_LEVEL", env_value, 1);
		else
			unsetenv("VETO_LOG_LEVEL");
		execl(self_path, self_path, "--child", mode, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char *text = read_fd_all(fds[0]);
	close(fds[0]);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return text;
}

static void
test_env_level(void **state)
{
	static const struct {
		const char *env;
		const char *mode;	/* "default" or "explicit" (log_set_level(ERROR) first) */
		const char *want;	/* message letters that appear */
		bool warned;		/* invalid value reported */
	} cases[] = {
		{ NULL, "default", "ewi", false },
		{ "debug", "default", "ewid", false },
		{ "WARNING", "default", "ew", false },
		{ "error", "default", "e", false },
		{ "loud", "default", "ewi", true },
		{ "debug", "explicit", "e", false },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *text = run_child(cases[i].env, cases[i].mode);
		char got[8] = "";
		bool warned = false;
		for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
			if (strstr(line, "VETO_LOG_LEVEL: unknown value 'loud'") != NULL) {
				warned = true;
				continue;
			}
			const char *msg = strstr(line, ": ");
			assert_non_null(msg);
			strncat(got, msg + 2, 1);
		}
		if (strcmp(got, cases[i].want) != 0 || warned != cases[i].warned)
			fail_msg("case %zu: got '%s' (warned %d)", i, got, warned);
		free(text);
	}
}

static int
child_main(const char *mode)
{
	if (strcmp(mode, "explicit") == 0)
		log_set_level(LOG_LEVEL_ERROR);
	log_error("e");
	log_warning("w");
	log_info("i");
	log_debug("d");
	return 0;
}

int
main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format_and_filter),
		cmocka_unit_test(test_exact_line),
		cmocka_unit_test(test_diagnostics),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_level_from_text),
		cmocka_unit_test(test_threads_whole_lines),
		cmocka_unit_test(test_env_level),
	};

	if (argc == 3 && strcmp(argv[1], "--child") == 0)
		return child_main(argv[2]);
	self_path = "/proc/self/exe";
	(void)argv;
	static char exe[4096];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n > 0) {
		exe[n] = '\0';
		self_path = exe;
	}
	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
