/*
 * check: the failure path of REQUIRE and INSIST.
 */
#include "check.h"

#include <stdio.h>
#include <stdlib.h>

void
check_failed(const char *kind, const char *expr, const char *file, int line, const char *func)
{
	fprintf(stderr, "veto: %s:%d: %s(): %s failed: %s\n", file, line, func, kind, expr);
	fflush(stderr);
	abort();
}
