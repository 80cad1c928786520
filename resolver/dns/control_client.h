/*
 * control_client: asking the daemon's control channel (control.h) from another process or
 * thread: blocking, bounded by a timeout for each wait. Any thread; no shared state.
 */
#ifndef VETO_CONTROL_CLIENT_H
#define VETO_CONTROL_CLIENT_H

#include <stddef.h>

/* Sends line (newline included) to the daemon's control socket at path and reads its reply
 * line (without the newline) into reply, waiting at most timeout_ms for it. 0, -ENOENT or
 * -ECONNREFUSED (nobody listens there), -ETIMEDOUT, -EPIPE (closed without a word), or another
 * -errno. */
int control_ask(const char *path, const char *line, char *reply, size_t size, int timeout_ms);
/* Sends line as above and reads the whole reply, up to the daemon's close, into *out (owned,
 * NUL-terminated), at most max octets; timeout_ms for each wait. 0, -ENOENT or -ECONNREFUSED,
 * -ETIMEDOUT, -EMSGSIZE, or another -errno. */
int control_ask_all(const char *path, const char *line, size_t max, int timeout_ms, char **out);

#endif
