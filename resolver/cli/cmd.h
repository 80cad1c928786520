/*
 * cmd: the subcommands of the veto binary. Each takes the arguments after the subcommand name
 * (argv[0] is the subcommand) and returns the process exit code:
 *   0 ok, 1 runtime error, 2 bad usage or bad configuration.
 */
#ifndef VETO_CMD_H
#define VETO_CMD_H

#include <stddef.h>

#define CMD_EXIT_OK	 0
#define CMD_EXIT_RUNTIME 1
#define CMD_EXIT_USAGE	 2

/* The configuration file when no -c is given: $VETO_CONFIG when set and not empty, else
 * VETO_DEFAULT_CONFIG (set by CMake: /etc/veto/veto.yaml for a /usr or /usr/local install). */
#ifndef VETO_DEFAULT_CONFIG
#define VETO_DEFAULT_CONFIG "/etc/veto/veto.yaml"
#endif
#define CMD_DEFAULT_CONFIG VETO_DEFAULT_CONFIG
#define CMD_DEFAULT_CONFIG_HELP "$VETO_CONFIG, else " CMD_DEFAULT_CONFIG
const char *cmd_default_config(void); /* cmd_config.c; never NULL, static storage */

int cmd_serve(int argc, char **argv);	/* cmd_serve.c */
int cmd_check(int argc, char **argv);	/* cmd_check.c */
int cmd_explain(int argc, char **argv); /* cmd_explain.c */
int cmd_log(int argc, char **argv);	/* cmd_log.c */
int cmd_report(int argc, char **argv);	/* cmd_report.c */
int cmd_devices(int argc, char **argv); /* cmd_devices.c */
int cmd_health(int argc, char **argv);	/* cmd_health.c */

int cmd_lists(int argc, char **argv);	/* cmd_lists.c */

int cmd_stats(int argc, char **argv);	/* cmd_stats.c */
int cmd_passwd(int argc, char **argv);	/* cmd_passwd.c */

struct logdb_reader;
struct logdb_filter;
/* Opens the query database read-only for `veto log` and `veto report` (cmd_filter.c): db when
 * not NULL, else log.database of the configuration file config (cmd_default_config() when NULL).
 * f (may be NULL): its group, list, vendor and device values must be names the configuration
 * (when loaded) or the database know, else CMD_EXIT_USAGE with a "did you mean". Problems are
 * printed on standard error, prefixed with cmd ("veto log"). Returns an exit code; *out is
 * written on CMD_EXIT_OK only. */
int cmd_log_open(const char *cmd, const char *config, const char *db,
		 const struct logdb_filter *f, struct logdb_reader **out);
/* Parses the filter option at argv[*i] (--since, --until, --client, --mac, --device, --group,
 * --vendor, --domain, --list, --blocked, --allowed, --action) into f, advancing *i past its
 * value; a repeated option and "a,b" add values (ORed); argv's strings are cut in place. 1
 * when consumed, 0 when argv[*i] is not a filter option, -1 on a bad value (printed). */
int cmd_log_filter_opt(const char *cmd, int argc, char **argv, int *i, struct logdb_filter *f);

#endif
