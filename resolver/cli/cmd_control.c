/*
 * cmd_control: the CLI's side of the daemon's control channel (resolver/dns/control.h): one
 * request line, one reply line. `veto devices forget|pin|unpin` and `veto health` use it.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "cmd.h"
#include "text.h"

int
cmd_ask_daemon(const char *path, const char *line, char *reply, size_t size, int timeout_ms)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len = strlen(line), got = 0;
	int rc = 0, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	text_copy(sun.sun_path, sizeof(sun.sun_path), path);
	if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		rc = -errno;
		goto cleanup;
	}
	for (size_t off = 0; off < len;) {
		ssize_t n = send(fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0) {
			rc = errno == EINTR ? 0 : -errno;
			if (rc != 0)
				goto cleanup;
			continue;
		}
		off += (size_t)n;
	}
	while (got + 1 < size) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, timeout_ms);
		if (pr == 0) {
			rc = -ETIMEDOUT;
			goto cleanup;
		}
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			goto cleanup;
		}
		ssize_t n = recv(fd, reply + got, size - 1 - got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = -errno;
			goto cleanup;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (memchr(reply, '\n', got) != NULL)
			break;
	}
	reply[got] = '\0';
	char *nl = strchr(reply, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (got == 0)
		rc = -EPIPE; /* closed without a word */
cleanup:
	close(fd);
	return rc;
}
