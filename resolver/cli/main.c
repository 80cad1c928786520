/*
 * main: dispatches `veto SUBCOMMAND [options]`.
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"

#ifndef VETO_VERSION
#define VETO_VERSION "unknown"
#endif

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: veto COMMAND [options]\n"
		"\n"
		"commands:\n"
		"  serve    run the DNS resolver (veto serve -c FILE)\n"
		"  check    validate a configuration and its lists (veto check -c FILE)\n"
		"  explain  show what the policy decides for a client and a name\n"
		"           (veto explain -c FILE --client IP NAME [TYPE] [--json])\n"
		"  log      search the query database (veto log -c FILE [filters])\n"
		"  report   reports from the query database (veto report attempts|summary|device)\n"
		"  devices  the devices the daemon knows (veto devices -c FILE [--format F]), one in\n"
		"           detail (show KEY), and a way back (forget KEY, pin KEY, unpin KEY)\n"
		"  health   ask the running daemon whether it serves (veto health -c FILE)\n"
		"  lists    every list source: entries, last and next download, last error\n"
		"           (veto lists -c FILE [--json] [--refresh])\n"
		"  stats    the running daemon's counters (veto stats -c FILE [--json])\n"
		"  passwd   a password hash for http.users (veto passwd [--sha512])\n"
		"  version  print the version\n"
		"\n"
		"'veto COMMAND --help' describes each command. Exit codes: 0 ok, 1 runtime error,\n"
		"2 bad usage or configuration.\n");
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		usage(stdout);
		return CMD_EXIT_OK;
	}
	if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
		if (argc > 2 && strcmp(argv[2], "--help") == 0) {
			printf("usage: veto version\n\nprints the version of veto\n");
			return CMD_EXIT_OK;
		}
		printf("veto %s\n", VETO_VERSION);
		return CMD_EXIT_OK;
	}
	if (strcmp(cmd, "serve") == 0)
		return cmd_serve(argc - 1, argv + 1);
	if (strcmp(cmd, "check") == 0)
		return cmd_check(argc - 1, argv + 1);
	if (strcmp(cmd, "explain") == 0)
		return cmd_explain(argc - 1, argv + 1);
	if (strcmp(cmd, "log") == 0)
		return cmd_log(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0)
		return cmd_report(argc - 1, argv + 1);
	if (strcmp(cmd, "devices") == 0)
		return cmd_devices(argc - 1, argv + 1);
	if (strcmp(cmd, "health") == 0)
		return cmd_health(argc - 1, argv + 1);
	if (strcmp(cmd, "lists") == 0)
		return cmd_lists(argc - 1, argv + 1);
	if (strcmp(cmd, "stats") == 0)
		return cmd_stats(argc - 1, argv + 1);
	if (strcmp(cmd, "passwd") == 0)
		return cmd_passwd(argc - 1, argv + 1);
	fprintf(stderr, "veto: unknown command '%s'\n\n", cmd);
	usage(stderr);
	return CMD_EXIT_USAGE;
}
