/*
 * sockaddr: the length of an IPv4 or IPv6 socket address, for copying and for the socket calls.
 */
#ifndef VETO_SOCKADDR_H
#define VETO_SOCKADDR_H

#include <netinet/in.h>
#include <sys/socket.h>

/* sizeof(struct sockaddr_in6) for AF_INET6, else sizeof(struct sockaddr_in). */
static inline socklen_t
sockaddr_len(const struct sockaddr *sa)
{
	return sa->sa_family == AF_INET6 ? (socklen_t)sizeof(struct sockaddr_in6)
					 : (socklen_t)sizeof(struct sockaddr_in);
}

#endif
