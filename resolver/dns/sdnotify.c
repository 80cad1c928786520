/*
 * sdnotify: systemd readiness notifications through libsystemd's sd_notify (see sdnotify.h).
 */
#include <stdint.h>
#include <time.h>

#include "sdnotify.h"

#ifdef VETO_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>

void
sdnotify_ready(const char *status)
{
	if (status != NULL)
		(void)sd_notifyf(0, "READY=1\nSTATUS=%s", status);
	else
		(void)sd_notify(0, "READY=1");
}

void
sdnotify_reloading(void)
{
	struct timespec ts;
	uint64_t usec = 0;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == 0)
		usec = (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
	(void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading",
	                 (unsigned long long)usec);
}

void
sdnotify_stopping(void)
{
	(void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
}

void
sdnotify_status(const char *status)
{
	(void)sd_notifyf(0, "STATUS=%s", status);
}

#else

void
sdnotify_ready(const char *status)
{
	(void)status;
}

void
sdnotify_reloading(void)
{
}

void
sdnotify_stopping(void)
{
}

void
sdnotify_status(const char *status)
{
	(void)status;
}

#endif
