/*
 * bench_upstream: a minimal, fast authoritative stand-in for benchmarks only.
 *
 * Answers every query on 127.0.0.1:PORT (UDP) at once: A -> 192.0.2.1, AAAA -> 2001:db8::1,
 * other types NODATA, all with TTL 86400, so that a forwarder's cache stays warm for the whole
 * run. Uses recvmmsg/sendmmsg. Also TCP on the same port (RFC 7766 framing, pipelined), which
 * a DoT terminator in front of it forwards over: up to MAXCONN connections, all accepted at once
 * (dnsdist 1.7 opens up to one per query it has in flight; with 32 and a backlog of 64 its
 * extra connects overflowed the listen queue and waited for SYN retransmits, 1 s and more).
 * Stops after the given number of seconds (bounded by design).
 * Usage: bench_upstream PORT SECONDS
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64
#define BUFSZ 1500
#define MAXCONN 1024
#define TCPBUF 65536

struct conn {
	int fd;
	size_t len;
	uint8_t buf[TCPBUF];
};

static size_t
answer(uint8_t *p, size_t len)
{
	if (len < 12 || (p[2] & 0x80))
		return 0;
	size_t pos = 12;
	while (pos < len && p[pos] != 0) {
		if (p[pos] & 0xc0)
			return 0;
		pos += (size_t)p[pos] + 1;
	}
	if (pos + 5 > len)
		return 0;
	pos++;
	uint16_t qtype = (uint16_t)(p[pos] << 8 | p[pos + 1]);
	pos += 4;
	p[2] = (uint8_t)(0x84 | (p[2] & 0x01)); /* QR, AA, keep RD */
	p[3] = 0x80;				  /* RA, NOERROR */
	p[6] = 0;
	p[7] = 0;
	p[8] = 0;
	p[9] = 0;
	p[10] = 0;
	p[11] = 0; /* drop OPT and anything else */
	uint8_t rr[28];
	size_t rl = 0;
	if (qtype == 1 || qtype == 28) {
		rr[0] = 0xc0;
		rr[1] = 12;
		rr[2] = 0;
		rr[3] = (uint8_t)qtype;
		rr[4] = 0;
		rr[5] = 1;
		rr[6] = 0;
		rr[7] = 0x01;
		rr[8] = 0x51;
		rr[9] = 0x80; /* 86400 */
		if (qtype == 1) {
			rr[10] = 0;
			rr[11] = 4;
			uint8_t a[4] = {192, 0, 2, 1};
			memcpy(rr + 12, a, 4);
			rl = 16;
		} else {
			rr[10] = 0;
			rr[11] = 16;
			uint8_t a[16] = {0x20, 0x01, 0x0d, 0xb8};
			a[15] = 1;
			memcpy(rr + 12, a, 16);
			rl = 28;
		}
		if (pos + rl > BUFSZ)
			return 0;
		memcpy(p + pos, rr, rl);
		p[7] = 1;
	}
	return pos + rl;
}

/* Writes len octets to a blocking socket (small replies, a local reader); -1 on error. */
static int
write_all(int fd, const uint8_t *p, size_t len)
{
	for (size_t w = 0; w < len;) {
		ssize_t k = write(fd, p + w, len - w);
		if (k <= 0)
			return -1;
		w += (size_t)k;
	}
	return 0;
}

/* Reads what conn c has and answers every complete query; -1 when the connection is done. */
static int
serve_tcp(struct conn *c)
{
	ssize_t n = read(c->fd, c->buf + c->len, sizeof(c->buf) - c->len);
	if (n <= 0)
		return -1;
	c->len += (size_t)n;
	static uint8_t out[TCPBUF];
	size_t off = 0, olen = 0;
	while (c->len - off >= 2) {
		size_t ml = (size_t)c->buf[off] << 8 | c->buf[off + 1];
		if (c->len - off - 2 < ml)
			break;
		uint8_t m[BUFSZ];
		if (ml <= sizeof(m) - 64) {
			memcpy(m, c->buf + off + 2, ml);
			size_t al = answer(m, ml);
			/* replies are longer than queries: a full read's worth may not fit at once */
			if (al > 0 && olen + al + 2 > sizeof(out)) {
				if (write_all(c->fd, out, olen) != 0)
					return -1;
				olen = 0;
			}
			if (al > 0) {
				out[olen] = (uint8_t)(al >> 8);
				out[olen + 1] = (uint8_t)al;
				memcpy(out + olen + 2, m, al);
				olen += al + 2;
			}
		}
		off += 2 + ml;
	}
	memmove(c->buf, c->buf + off, c->len - off);
	c->len -= off;
	return write_all(c->fd, out, olen);
}

int
main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_upstream PORT SECONDS\n");
		return 2;
	}
	int port = atoi(argv[1]);
	int seconds = atoi(argv[2]);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	int sz = 8 << 20;
	setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
		perror("bind");
		return 1;
	}
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    listen(lfd, MAXCONN) != 0) {
		perror("tcp");
		return 1;
	}
	static struct conn conns[MAXCONN];
	int nconns = 0;
	static uint8_t bufs[BATCH][BUFSZ];
	struct sockaddr_storage addrs[BATCH];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	time_t end = time(NULL) + seconds;
	while (time(NULL) < end) {
		struct pollfd pfd[2 + MAXCONN] = {{.fd = fd, .events = POLLIN},
						   {.fd = lfd, .events = POLLIN}};
		for (int i = 0; i < nconns; i++)
			pfd[2 + i] = (struct pollfd){.fd = conns[i].fd, .events = POLLIN};
		if (poll(pfd, (nfds_t)(2 + nconns), 200) <= 0)
			continue;
		for (int i = nconns - 1; i >= 0; i--) {
			if (pfd[2 + i].revents == 0 || serve_tcp(&conns[i]) == 0)
				continue;
			close(conns[i].fd);
			conns[i].fd = conns[--nconns].fd;	/* the last one moves here */
			memcpy(conns[i].buf, conns[nconns].buf, conns[nconns].len);
			conns[i].len = conns[nconns].len;
		}
		while ((pfd[1].revents & POLLIN) && nconns < MAXCONN) {
			int cfd = accept(lfd, NULL, NULL);	/* blocking, as serve_tcp expects */
			if (cfd < 0)
				break;
			setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
			conns[nconns].fd = cfd;
			conns[nconns].len = 0;
			nconns++;
		}
		if (!(pfd[0].revents & POLLIN))
			continue;
		for (int i = 0; i < BATCH; i++) {
			iov[i].iov_base = bufs[i];
			iov[i].iov_len = BUFSZ;
			memset(&msgs[i], 0, sizeof(msgs[i]));
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &addrs[i];
			msgs[i].msg_hdr.msg_namelen = sizeof(addrs[i]);
		}
		int n = recvmmsg(fd, msgs, BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			continue;
		int out = 0;
		for (int i = 0; i < n; i++) {
			size_t len = answer(bufs[i], msgs[i].msg_len);
			if (len == 0)
				continue;
			iov[i].iov_len = len;
			if (out != i)
				msgs[out] = msgs[i];
			msgs[out].msg_hdr.msg_iov = &iov[i];
			out++;
		}
		if (out > 0)
			sendmmsg(fd, msgs, (unsigned)out, 0);
	}
	for (int i = 0; i < nconns; i++)
		close(conns[i].fd);
	close(lfd);
	close(fd);
	return 0;
}
