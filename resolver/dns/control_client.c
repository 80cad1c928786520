/*
 * control_client: the client side of the daemon's control channel (control.h), shared by the
 * CLI (`veto devices forget|pin|unpin`, `veto health`, `veto stats`, `veto lists`) and the web
 * console's actions: one request line, then one reply line or a whole reply up to the
 * daemon's close.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "control_client.h"
#include "text.h"

/* Connects to path and sends line whole. 0 with *fd open, or -errno (*fd closed). */
static int
connect_send(const char *path, const char *line, int *fd)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	size_t len = strlen(line);

	*fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (*fd < 0)
		return -errno;
	text_copy(sun.sun_path, sizeof(sun.sun_path), path);
	if (connect(*fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		goto fail;
	for (size_t off = 0; off < len;) {
		ssize_t n = send(*fd, line + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto fail;
		off += (size_t)n;
	}
	return 0;
fail:;
	int rc = -errno;
	close(*fd);
	*fd = -1;
	return rc;
}

/* Reads what arrives into buf[*got .. size-1) within timeout_ms for each wait. 1 when some
 * arrived, 0 at the daemon's close, or -errno (-ETIMEDOUT). */
static int
read_some(int fd, char *buf, size_t size, size_t *got, int timeout_ms)
{
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, timeout_ms);
		if (pr == 0)
			return -ETIMEDOUT;
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return -errno;
		ssize_t n = recv(fd, buf + *got, size - 1 - *got, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		*got += (size_t)n;
		return n > 0 ? 1 : 0;
	}
}

int
control_ask(const char *path, const char *line, char *reply, size_t size, int timeout_ms)
{
	size_t got = 0;
	int fd, rc = connect_send(path, line, &fd);

	if (rc != 0)
		return rc;
	while (got + 1 < size && (rc = read_some(fd, reply, size, &got, timeout_ms)) == 1)
		if (memchr(reply, '\n', got) != NULL)
			break;
	close(fd);
	reply[got] = '\0';
	char *nl = strchr(reply, '\n');
	if (nl != NULL)
		*nl = '\0';
	if (rc < 0)
		return rc;
	return got == 0 ? -EPIPE : 0; /* -EPIPE: closed without a word */
}

int
control_ask_all(const char *path, const char *line, size_t max, int timeout_ms, char **out)
{
	size_t got = 0, cap = 65536;
	char *buf = malloc(cap);
	int fd = -1, rc = buf == NULL ? -ENOMEM : connect_send(path, line, &fd);

	while (rc == 0) {
		if (got + 1 >= cap) {
			char *nb = cap < max ? realloc(buf, cap * 2) : NULL;
			if (nb == NULL) {
				rc = cap < max ? -ENOMEM : -EMSGSIZE;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		rc = read_some(fd, buf, cap, &got, timeout_ms);
		rc = rc == 1 ? 0 : rc == 0 ? 1 : rc;
	}
	if (fd >= 0)
		close(fd);
	if (rc < 0) {
		free(buf);
		return rc;
	}
	buf[got] = '\0';
	*out = buf;
	return 0;
}
