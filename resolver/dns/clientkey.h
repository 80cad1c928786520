/*
 * clientkey: what the per-client limits count by. A client address, or the prefix it belongs to
 * (/24 for IPv4, /56 for IPv6: one household or one small site), tagged with what is counted so
 * that one table can hold several kinds side by side. Fixed size, compared and hashed as octets.
 */
#ifndef VETO_CLIENTKEY_H
#define VETO_CLIENTKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#define CLIENTKEY_PREFIX4 24
#define CLIENTKEY_PREFIX6 56

/* What a key counts; part of the key. */
enum clientkey_kind {
	CLIENTKEY_QUERIES = 1,    /* an address: queries waiting for upstream / its token bucket */
	CLIENTKEY_QUERIES_PREFIX, /* the same for its prefix */
	CLIENTKEY_TCP,            /* an address: open TCP connections */
	CLIENTKEY_ERRORS,         /* an address: FORMERR/NOTIMP replies (token bucket) */
};

struct clientkey {
	uint8_t kind;     /* enum clientkey_kind */
	uint8_t family;   /* 4 or 6 */
	uint8_t addr[16]; /* the address (IPv4 in the first 4 octets), masked for a prefix */
};

/* The key of kind for sa (AF_INET or AF_INET6, an IPv4-mapped IPv6 address as IPv4; anything
 * else gets an all-zero address). A _PREFIX kind keeps the first CLIENTKEY_PREFIX4/6 bits. */
static inline void
clientkey_of(const struct sockaddr *sa, enum clientkey_kind kind, struct clientkey *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = (uint8_t)kind;
	bool prefix = kind == CLIENTKEY_QUERIES_PREFIX;
	if (sa->sa_family == AF_INET6 &&
	    IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
		/* ::ffff:192.0.2.7 counts as 192.0.2.7 */
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		k->family = 4;
		memcpy(k->addr, in6->sin6_addr.s6_addr + 12, 4);
		if (prefix)
			k->addr[3] = 0;
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		k->family = 6;
		memcpy(k->addr, &in6->sin6_addr, 16);
		if (prefix)
			memset(k->addr + CLIENTKEY_PREFIX6 / 8, 0, 16 - CLIENTKEY_PREFIX6 / 8);
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		k->family = 4;
		memcpy(k->addr, &in->sin_addr, 4);
		if (prefix)
			k->addr[3] = 0;
	}
}

/* How many leading octets of k tell it from any other key: kind, family and 4 address octets for
 * IPv4 (clientkey_of zeroes the rest), the whole key otherwise. Equal keys have equal lengths
 * and prefixes, so a hash over them is a hash of the key at a third of the cost for IPv4. */
static inline size_t
clientkey_hash_len(const struct clientkey *k)
{
	return k->family == 4 ? offsetof(struct clientkey, addr) + 4 : sizeof(*k);
}

static inline bool
clientkey_equal(const struct clientkey *a, const struct clientkey *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

/* "192.0.2.7", "192.0.2.0/24", "2001:db8::1" or "2001:db8::/56" into buf (at least 64 octets). */
void clientkey_text(const struct clientkey *k, char *buf, size_t size);

#endif
