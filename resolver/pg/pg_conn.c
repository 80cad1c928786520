/*
 * pg_conn: connecting to the shared store. The connection string comes from the configuration
 * without a password (config_store.c refuses one); the password comes from store.password_file
 * or from libpq's own sources.
 */
#include "pg.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "config.h"

const char *
pg_instance(const struct config *cfg, char *buf, size_t size)
{
	if (cfg->store.instance != NULL) {
		snprintf(buf, size, "%s", cfg->store.instance);
		return buf;
	}
	if (gethostname(buf, size) != 0 || buf[0] == '\0')
		snprintf(buf, size, "veto");
	buf[size - 1] = '\0';
	return buf;
}

const char *
pg_error(PGconn *c, const PGresult *r, char *buf, size_t size)
{
	const char *m = r != NULL ? PQresultErrorMessage(r) : NULL;
	if (m == NULL || m[0] == '\0')
		m = c != NULL ? PQerrorMessage(c) : "no connection";
	snprintf(buf, size, "%s", m);
	size_t n = strlen(buf);
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' '))
		buf[--n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (buf[i] == '\n' || buf[i] == '\t')
			buf[i] = ' ';
	return buf;
}

int
pg_exec(PGconn *c, const char *sql, char *why, size_t whysz)
{
	PGresult *r = PQexec(c, sql);
	ExecStatusType st = PQresultStatus(r);
	int rc = 0;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		if (why != NULL)
			pg_error(c, r, why, whysz);
		rc = -EIO;
	}
	PQclear(r);
	return rc;
}

/* The first line of path, without its newline, into buf. */
static int
read_password(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return -errno;
	ssize_t n = read(fd, buf, size - 1);
	int e = errno;
	close(fd);
	if (n < 0)
		return -e;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	return 0;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The connect_timeout in effect (ours, or the connection string's), in ms; libpq counts less
 * than 2 s as 2 s and 0 as none. */
static uint64_t
timeout_ms(PGconn *c)
{
	PQconninfoOption *opts = PQconninfo(c);
	long secs = 5;

	for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; o++)
		if (strcmp(o->keyword, "connect_timeout") == 0 && o->val != NULL)
			secs = atol(o->val);
	PQconninfoFree(opts);
	if (secs <= 0)
		return UINT64_MAX;
	return (uint64_t)(secs < 2 ? 2 : secs) * 1000;
}

/* Drives PQconnectPoll until the connection is made, failed, timed out or stopped. */
static int
wait_connected(PGconn *c, int wake_fd, pg_stop_cb *stop, void *arg, char *why, size_t whysz)
{
	uint64_t limit = timeout_ms(c);
	uint64_t deadline = limit == UINT64_MAX ? UINT64_MAX : mono_ms() + limit;
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	for (;;) {
		if (st == PGRES_POLLING_OK)
			return 0;
		if (st == PGRES_POLLING_FAILED) {
			pg_error(c, NULL, why, whysz);
			return -ECONNREFUSED;
		}
		if (stop != NULL && stop(arg)) {
			snprintf(why, whysz, "stopping");
			return -ECANCELED;
		}
		uint64_t now = mono_ms();
		if (now >= deadline) {
			snprintf(why, whysz, "timeout expired");
			return -ECONNREFUSED;
		}
		uint64_t left = deadline - now;
		struct pollfd pf[2] = {
		        {.fd = PQsocket(c),
		         .events = st == PGRES_POLLING_READING ? POLLIN : POLLOUT},
		        {.fd = wake_fd, .events = POLLIN},
		};
		if (pf[0].fd < 0) { /* no socket yet: libpq's next step makes one */
			st = PQconnectPoll(c);
			continue;
		}
		int n = poll(pf, wake_fd >= 0 ? 2 : 1, left > 1000 ? 1000 : (int)left);
		if (n < 0 && errno != EINTR) {
			snprintf(why, whysz, "poll: %s", strerror(errno));
			return -ECONNREFUSED;
		}
		if (n > 0 && wake_fd >= 0 && (pf[1].revents & POLLIN)) {
			uint64_t v;
			ssize_t r = read(wake_fd, &v, sizeof(v));
			(void)r; /* stop() is asked at the top of the loop */
		}
		if (n > 0 && pf[0].revents != 0)
			st = PQconnectPoll(c);
	}
}

int
pg_connect(const struct config *cfg, const char *role, PGconn **out, char *why, size_t whysz)
{
	return pg_connect_until(cfg, role, -1, NULL, NULL, out, why, whysz);
}

int
pg_connect_until(const struct config *cfg, const char *role, int wake_fd, pg_stop_cb *stop,
                 void *arg, PGconn **out, char *why, size_t whysz)
{
	char app[128], inst[64], password[1024];
	const char *keys[12], *vals[12];
	int n = 0;

	if (cfg->store.postgresql == NULL) {
		snprintf(why, whysz, "no store.postgresql configured");
		return -EINVAL;
	}
	snprintf(app, sizeof(app), "veto/%s/%s", pg_instance(cfg, inst, sizeof(inst)), role);
	keys[n] = "connect_timeout", vals[n++] = "5";
	/* a server gone without a word (power, a cut cable) is noticed in about a minute, not
	   after the kernel's two hours; before dbname: the connection string may set its own */
	keys[n] = "keepalives", vals[n++] = "1";
	keys[n] = "keepalives_idle", vals[n++] = "30";
	keys[n] = "keepalives_interval", vals[n++] = "10";
	keys[n] = "keepalives_count", vals[n++] = "3";
	keys[n] = "dbname", vals[n++] = cfg->store.postgresql;
	keys[n] = "application_name", vals[n++] = app;
	if (cfg->store.password_file != NULL) {
		int rc = read_password(cfg->store.password_file, password, sizeof(password));
		if (rc < 0) {
			snprintf(why, whysz, "store.password_file %s: %s", cfg->store.password_file,
			         strerror(-rc));
			return -EACCES;
		}
		keys[n] = "password", vals[n++] = password;
	}
	keys[n] = NULL, vals[n] = NULL;

	/* libpq's own wait (PQconnectdbParams) cannot be interrupted: the caller's thread may be
	   asked to stop while a server that never answers holds it */
	PGconn *c = PQconnectStartParams(keys, vals, 1);
	explicit_bzero(password, sizeof(password));
	if (c == NULL) {
		snprintf(why, whysz, "out of memory");
		return -ENOMEM;
	}
	int rc = PQstatus(c) == CONNECTION_BAD ? -ECONNREFUSED : 0;
	if (rc != 0)
		pg_error(c, NULL, why, whysz);
	else
		rc = wait_connected(c, wake_fd, stop, arg, why, whysz);
	if (rc != 0) {
		PQfinish(c);
		return rc;
	}
	if (pg_exec(c, "SET TIME ZONE 'UTC'; SET client_min_messages = warning", why, whysz) < 0) {
		PQfinish(c);
		return -EIO;
	}
	*out = c;
	return 0;
}
