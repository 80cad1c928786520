/*
 * cmd_config: the configuration file every command reads when no -c is given.
 */
#include <stdlib.h>

#include "cmd.h"

const char *
cmd_default_config(void)
{
	const char *env = getenv("VETO_CONFIG");

	return env != NULL && env[0] != '\0' ? env : CMD_DEFAULT_CONFIG;
}
