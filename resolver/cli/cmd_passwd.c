/*
 * cmd_passwd: `veto passwd`, a crypt(3) hash of a password for http.users[].password. The
 * password is read from standard input: on a terminal without echo, asked twice; otherwise the
 * first line. yescrypt by default (libcrypt's preferred method), SHA-512 with --sha512.
 */
#include <crypt.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "cmd.h"

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: veto passwd [--sha512]\n"
	        "\n"
	        "reads a password from standard input (asked twice, without echo, on a terminal)\n"
	        "and prints its crypt(3) hash for http.users[].password in the configuration:\n"
	        "\n"
	        "  http:\n"
	        "    users:\n"
	        "      - {name: alice, role: admin, password: '$y$j9T$...'}\n"
	        "\n"
	        "options:\n"
	        "  --sha512    a SHA-512 hash ($6$) instead of yescrypt ($y$)\n"
	        "  -h, --help  show this help\n"
	        "\n"
	        "exit codes: 0 ok, 1 no password read or the passwords differ, 2 bad usage.\n");
}

/* One line of standard input into buf without its newline; false at end of input. */
static bool
read_line(char *buf, size_t size)
{
	if (fgets(buf, (int)size, stdin) == NULL)
		return false;
	buf[strcspn(buf, "\r\n")] = '\0';
	return true;
}

/* Asks on the terminal with echo off. */
static bool
ask(const char *prompt, char *buf, size_t size)
{
	struct termios old, quiet;
	bool ok;

	fputs(prompt, stderr);
	fflush(stderr);
	if (tcgetattr(STDIN_FILENO, &old) != 0)
		return read_line(buf, size);
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	quiet.c_lflag |= ECHONL;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	ok = read_line(buf, size);
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	return ok;
}

int
cmd_passwd(int argc, char **argv)
{
	const char *prefix = NULL; /* libcrypt's default: yescrypt on Debian 12 */
	char pw[512], again[512], setting[CRYPT_GENSALT_OUTPUT_SIZE];
	struct crypt_data *cd = NULL;
	int rc = CMD_EXIT_RUNTIME;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return CMD_EXIT_OK;
		}
		if (strcmp(argv[i], "--sha512") == 0) {
			prefix = "$6$";
			continue;
		}
		fprintf(stderr, "veto passwd: unknown argument '%s'\n\n", argv[i]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (isatty(STDIN_FILENO)) {
		if (!ask("password: ", pw, sizeof(pw)) || !ask("again: ", again, sizeof(again))) {
			fprintf(stderr, "veto passwd: no password read\n");
			goto cleanup;
		}
		if (strcmp(pw, again) != 0) {
			fprintf(stderr, "veto passwd: the passwords differ\n");
			goto cleanup;
		}
	} else if (!read_line(pw, sizeof(pw))) {
		fprintf(stderr, "veto passwd: no password read\n");
		goto cleanup;
	}
	if (pw[0] == '\0') {
		fprintf(stderr, "veto passwd: the password is empty\n");
		goto cleanup;
	}
	cd = calloc(1, sizeof(*cd));
	if (cd == NULL || crypt_gensalt_rn(prefix, 0, NULL, 0, setting, sizeof(setting)) == NULL) {
		fprintf(stderr, "veto passwd: %s\n", strerror(cd == NULL ? ENOMEM : errno));
		goto cleanup;
	}
	const char *hash = crypt_rn(pw, setting, cd, (int)sizeof(*cd));
	if (hash == NULL || hash[0] == '*') {
		fprintf(stderr, "veto passwd: crypt failed: %s\n", strerror(errno));
		goto cleanup;
	}
	printf("%s\n", hash);
	rc = CMD_EXIT_OK;
cleanup:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(again, sizeof(again));
	if (cd != NULL) {
		explicit_bzero(cd, sizeof(*cd));
		free(cd);
	}
	return rc;
}
