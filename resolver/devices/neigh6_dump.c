/*
 * neigh6_dump: the RTM_GETNEIGH socket dump (see neigh6_dump.h). The socket is connected to
 * the kernel (port 0), so the kernel refuses unicasts from other processes to it, and only
 * replies carrying the request's sequence number are parsed.
 */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "neigh6_dump.h"

/* A kernel dump datagram fits in NLMSG_GOODSIZE (at most 8 KiB) at first, then in the largest
 * buffer we have received with; 16 KiB is ample. */
#define DUMP_BUF 16384

int
neigh6_dump_read(struct neigh6 **out)
{
	struct {
		struct nlmsghdr nh;
		struct ndmsg nd;
	} req;
	struct sockaddr_nl kernel = {.nl_family = AF_NETLINK};
	struct timeval tv = {.tv_sec = NEIGH6_DUMP_TIMEOUT_MS / 1000,
	                     .tv_usec = NEIGH6_DUMP_TIMEOUT_MS % 1000 * 1000};
	struct neigh6 *t = NULL;
	uint32_t buf[DUMP_BUF / sizeof(uint32_t)]; /* aligned for the kernel's messages */
	uint32_t seq = (uint32_t)time(NULL);
	bool done = false;
	int rc;
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) != 0 ||
	    connect(fd, (const struct sockaddr *)&kernel, sizeof(kernel)) != 0) {
		rc = -errno;
		goto cleanup;
	}
	memset(&req, 0, sizeof(req));
	req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(struct ndmsg));
	req.nh.nlmsg_type = RTM_GETNEIGH;
	req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.nh.nlmsg_seq = seq;
	req.nd.ndm_family = AF_INET6;
	if (send(fd, &req, req.nh.nlmsg_len, 0) < 0) {
		rc = -errno;
		goto cleanup;
	}
	if ((rc = neigh6_new(&t)) != 0)
		goto cleanup;
	while (!done) {
		ssize_t len = recv(fd, buf, sizeof(buf), 0);
		if (len < 0 && errno == EINTR)
			continue;
		if (len < 0) {
			rc = -errno;
			goto cleanup;
		}
		if (len == 0)
			break;
		if ((rc = neigh6_parse(t, buf, (size_t)len, seq, &done)) != 0)
			goto cleanup;
	}
	*out = t;
	t = NULL;
cleanup:
	neigh6_free(&t);
	close(fd);
	return rc;
}
