/*
 * cmd_health: `veto health [-c FILE]`: asks the running daemon itself, over its control channel
 * (state_dir/control.sock), whether it serves. Exit 0 only when the daemon's loop answers; for
 * a container's HEALTHCHECK or a monitoring probe.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "control_client.h"
#include "config.h"
#include "control.h"
#include "diag.h"

#define HEALTH_TIMEOUT_MS 5000

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: veto health [-c FILE] [--timeout MS]\n"
	        "\n"
	        "Asks the running daemon, over its control channel (state_dir/control.sock), "
	        "whether\n"
	        "it serves; the event loop itself answers. Prints one line. The channel is open\n"
	        "whenever state_dir is set (it is by default), for the daemon's user and root.\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE  configuration file (default " CMD_DEFAULT_CONFIG_HELP ")\n"
	        "  -t, --timeout MS   how long to wait for the answer (default 5000)\n"
	        "  -h, --help         show this help\n"
	        "\n"
	        "exit codes: 0 the daemon answered, 1 it did not, 2 bad usage or configuration\n");
}

int
cmd_health(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"timeout", required_argument, NULL, 't'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *path = cmd_default_config();
	char sock[CONTROL_LINE_MAX], reply[CONTROL_LINE_MAX];
	struct config *cfg = NULL;
	struct diag d;
	int c, code = CMD_EXIT_RUNTIME;
	long timeout = HEALTH_TIMEOUT_MS;

	optind = 0;
	while ((c = getopt_long(argc, argv, "c:t:h", opts, NULL)) != -1) {
		char *end;
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 't':
			errno = 0;
			timeout = strtol(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0' || timeout < 1 ||
			    timeout > 600000) {
				fprintf(stderr,
				        "veto health: --timeout: expected 1..600000, got '%s'\n",
				        optarg);
				return CMD_EXIT_USAGE;
			}
			break;
		case 'h':
			usage(stdout);
			return CMD_EXIT_OK;
		default:
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "veto health: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	diag_init(&d);
	if (config_load(path, &d, &cfg) != 0) {
		for (size_t i = 0; i < d.n; i++)
			if (d.v[i].level == DIAG_ERROR)
				fprintf(stderr, "%s\n", d.v[i].text);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (cfg->state_dir == NULL || cfg->state_dir[0] == '\0') {
		fprintf(stderr,
		        "veto health: %s: no state_dir, so the daemon has no control channel "
		        "to ask\n",
		        path);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (control_path(cfg->state_dir, sock, sizeof(sock)) != 0) {
		fprintf(stderr, "veto health: state_dir is too long for a socket path\n");
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	int rc = control_ask(sock, CONTROL_HEALTH "\n", reply, sizeof(reply), (int)timeout);
	if (rc == 0 && strncmp(reply, "ok ", 3) == 0) {
		printf("%s: %s\n", sock, reply + 3);
		code = CMD_EXIT_OK;
	} else if (rc == 0) {
		fprintf(stderr, "veto health: %s: %s\n", sock, reply);
	} else {
		fprintf(stderr, "veto health: %s: %s\n", sock,
		        rc == -ENOENT || rc == -ECONNREFUSED ? "no daemon listens there"
		        : rc == -ETIMEDOUT                   ? "no answer in time"
		                                             : strerror(-rc));
	}
cleanup:
	config_free(&cfg);
	diag_clear(&d);
	return code;
}
