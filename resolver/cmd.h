/*
 * cmd: the subcommands of the veto binary. Each takes the arguments after the subcommand name
 * (argv[0] is the subcommand) and returns the process exit code:
 *   0 ok, 1 runtime error, 2 bad usage or bad configuration.
 */
#ifndef VETO_CMD_H
#define VETO_CMD_H

#define CMD_EXIT_OK	 0
#define CMD_EXIT_RUNTIME 1
#define CMD_EXIT_USAGE	 2

#define CMD_DEFAULT_CONFIG "conf/veto.yaml"

int cmd_serve(int argc, char **argv);	/* cmd_serve.c */
int cmd_check(int argc, char **argv);	/* cmd_check.c */
int cmd_explain(int argc, char **argv); /* cmd_explain.c */

#endif
