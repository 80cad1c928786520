/*
 * pg_conn: connecting to the shared store. The connection string comes from the configuration
 * without a password (config_store.c refuses one); the password comes from store.password_file
 * or from libpq's own sources.
 */
#include "pg.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
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

int
pg_connect(const struct config *cfg, const char *role, PGconn **out, char *why, size_t whysz)
{
	char app[128], inst[64], password[1024];
	const char *keys[8], *vals[8];
	int n = 0;

	if (cfg->store.postgresql == NULL) {
		snprintf(why, whysz, "no store.postgresql configured");
		return -EINVAL;
	}
	snprintf(app, sizeof(app), "veto/%s/%s", pg_instance(cfg, inst, sizeof(inst)), role);
	keys[n] = "connect_timeout", vals[n++] = "5";
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

	PGconn *c = PQconnectdbParams(keys, vals, 1);
	explicit_bzero(password, sizeof(password));
	if (c == NULL) {
		snprintf(why, whysz, "out of memory");
		return -ENOMEM;
	}
	if (PQstatus(c) != CONNECTION_OK) {
		pg_error(c, NULL, why, whysz);
		PQfinish(c);
		return -ECONNREFUSED;
	}
	if (pg_exec(c, "SET TIME ZONE 'UTC'; SET client_min_messages = warning", why, whysz) < 0) {
		PQfinish(c);
		return -EIO;
	}
	*out = c;
	return 0;
}
