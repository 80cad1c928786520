/*
 * sdnotify: tells systemd (Type=notify) where the daemon is in its life: ready once the
 * sockets are bound and the policy loaded, reloading around a SIGHUP reload, stopping. Each
 * message carries a STATUS= line that `systemctl status veto` shows.
 *
 * Without $NOTIFY_SOCKET (not started by systemd), or when built without libsystemd, every
 * call does nothing. Called on the loop's thread only (start-up, reload, stop: never per query).
 */
#ifndef VETO_SDNOTIFY_H
#define VETO_SDNOTIFY_H

/* READY=1 and STATUS=status (may be NULL). */
void sdnotify_ready(const char *status);

/* RELOADING=1 (with MONOTONIC_USEC, which newer systemd wants) and STATUS=reloading. */
void sdnotify_reloading(void);

/* STOPPING=1 and STATUS=stopping. */
void sdnotify_stopping(void);

/* STATUS=status only. */
void sdnotify_status(const char *status);

#endif
