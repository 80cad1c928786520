/*
 * neigh6: RTM_GETNEIGH dump parser (see neigh6.h). Headers are copied out of the buffer, so
 * the datagram needs no alignment, and every length is checked against what is left before it
 * is used.
 */
#include <errno.h>
#include <linux/neighbour.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "neigh6.h"

#define USABLE    (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT)
#define ERRNO_MAX 4095

int
neigh6_new(struct neigh6 **out)
{
	struct neigh6 *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return -ENOMEM;
	*out = t;
	return 0;
}

void
neigh6_free(struct neigh6 **pt)
{
	struct neigh6 *t = *pt;
	if (t == NULL)
		return;
	free(t->v);
	free(t);
	*pt = NULL;
}

static int
append(struct neigh6 *t, const uint8_t *addr, const struct mac *mac)
{
	if (t->n == t->cap) {
		size_t ncap = t->cap ? t->cap * 2 : 32;
		struct neigh6_entry *nv = realloc(t->v, ncap * sizeof(*nv));
		if (nv == NULL)
			return -ENOMEM;
		t->v = nv;
		t->cap = ncap;
	}
	memcpy(t->v[t->n].addr, addr, 16);
	t->v[t->n].mac = *mac;
	t->n++;
	return 0;
}

/* One RTM_NEWNEIGH message: p[0..len) is its payload (after the nlmsghdr). */
static int
neighbour(struct neigh6 *t, const uint8_t *p, size_t len)
{
	struct ndmsg nd;
	if (len < sizeof(nd)) {
		t->malformed++;
		return 0;
	}
	memcpy(&nd, p, sizeof(nd));
	if (nd.ndm_family != AF_INET6 || (nd.ndm_state & USABLE) == 0) {
		t->ignored++;
		return 0;
	}
	const uint8_t *dst = NULL, *ll = NULL;
	size_t off = NLMSG_ALIGN(sizeof(nd));
	while (off < len && len - off >= sizeof(struct rtattr)) {
		struct rtattr a;
		memcpy(&a, p + off, sizeof(a));
		if (a.rta_len < sizeof(a) || a.rta_len > len - off)
			break; /* garbage: keep what came before, as RTA_OK would */
		size_t plen = a.rta_len - RTA_LENGTH(0);
		if (a.rta_type == NDA_DST && plen == 16)
			dst = p + off + RTA_LENGTH(0);
		else if (a.rta_type == NDA_LLADDR && plen == MAC_LEN)
			ll = p + off + RTA_LENGTH(0);
		off += RTA_ALIGN(a.rta_len);
	}
	if (dst == NULL || ll == NULL) {
		t->ignored++;
		return 0;
	}
	struct mac m;
	memcpy(m.b, ll, MAC_LEN);
	if (mac_is_zero(&m)) {
		t->ignored++;
		return 0;
	}
	return append(t, dst, &m);
}

/* The error of an NLMSG_ERROR message whose payload is p[0..len). */
static int
nl_error(const uint8_t *p, size_t len)
{
	struct nlmsgerr e;
	if (len < sizeof(e))
		return -EIO;
	memcpy(&e, p, sizeof(e));
	return e.error < 0 && e.error >= -ERRNO_MAX ? e.error : -EIO;
}

int
neigh6_parse(struct neigh6 *t, const void *buf, size_t len, uint32_t seq, bool *done)
{
	const uint8_t *b = buf;
	size_t off = 0;

	while (len - off >= sizeof(struct nlmsghdr)) {
		struct nlmsghdr h;
		memcpy(&h, b + off, sizeof(h));
		if (h.nlmsg_len < sizeof(h) || h.nlmsg_len > len - off) {
			t->malformed++;
			break; /* cannot find the next message: the rest of the datagram is lost */
		}
		const uint8_t *p = b + off + NLMSG_HDRLEN;
		size_t plen = h.nlmsg_len - NLMSG_HDRLEN;
		size_t step = NLMSG_ALIGN(h.nlmsg_len);
		if (h.nlmsg_seq == seq) {
			if (h.nlmsg_type == NLMSG_DONE) {
				*done = true;
				return 0;
			}
			if (h.nlmsg_type == NLMSG_ERROR)
				return nl_error(p, plen);
			if (h.nlmsg_type == RTM_NEWNEIGH) {
				int rc = neighbour(t, p, plen);
				if (rc != 0)
					return rc;
			}
		}
		if (step > len - off)
			break; /* the last message, unpadded */
		off += step;
	}
	*done = false;
	return 0;
}
