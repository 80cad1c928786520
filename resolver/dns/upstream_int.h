/*
 * upstream_int: what upstream.c (requests, waiters, server choice, UDP attempts) and
 * upstream_tcp.c (the TCP retry of a truncated reply) share, and what the unit test inspects.
 *
 * Objects and who owns them:
 *   struct upstream          one per server, owns everything below; freed by upstream_close once
 *                            every handle is closed (live == 0).
 *   struct upstream_servers  an immutable list of servers (plus their mutable health), refcounted:
 *                            the upstream holds one reference and every request another, so that
 *                            upstream_reconfigure() lets requests in flight finish on the old list.
 *   struct upstream_req      one upstream resolution, keyed by (name, type, class, RD, DO, CD) in
 *                            the dedup table while in flight; has waiters (upstream_wait) and its
 *                            live attempts: the current one, and earlier UDP attempts that timed
 *                            out but still listen for a late reply until the request's deadline.
 *                            Refcounted: one reference while in flight, one per attempt whose
 *                            handles are not yet closed.
 *   struct upstream_attempt  one exchange with one server: a query with a fresh random ID sent on
 *                            a socket of the server's pool (or a TCP connection after a truncated
 *                            reply), and a timer. Registered on its socket under its ID while it
 *                            runs (and while it waits for a late reply); owns its timer (and TCP
 *                            handle); returned to the free list after the last close callback.
 *   struct upstream_sockset  the socket pool of one server address (upstream_sock.c): up to
 *                            UPSTREAM_SOCKS connected UDP sockets on random ports, each picked
 *                            at random per attempt and retired after UPSTREAM_SOCK_QUERIES
 *                            queries or UPSTREAM_SOCK_MS.
 *   struct upstream_sock     one pooled UDP socket: its attempts by ID (unique on the socket).
 *                            Closed once retired and no attempt is registered on it.
 * Requests, attempts and waiters come from free lists (at most UPSTREAM_POOL_MAX kept each).
 */
#ifndef VETO_UPSTREAM_INT_H
#define VETO_UPSTREAM_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "upstream.h"

#define UPSTREAM_DOWN_AFTER	2	/* consecutive failures before a server is skipped */
#define UPSTREAM_BACKOFF_MIN_MS 1000	/* first down period, doubled on every failed retry */
#define UPSTREAM_BACKOFF_MAX_MS 30000
#define UPSTREAM_POOL_MAX	1024	/* free structs kept per kind */
#define UPSTREAM_QUERY_MAX	512	/* header + 255-octet name + question + OPT fits */
#define UPSTREAM_RBUF		65536	/* shared receive buffer (UDP and TCP reads) */
#define UPSTREAM_TABLE_MIN	256	/* initial buckets of the dedup table (power of two) */
#define UPSTREAM_DEFAULT_TIMEOUT_MS 1500
/* the UDP socket pool (README: "Spoofing resistance") */
#define UPSTREAM_SOCKS		16	/* sockets per server address in use at once */
#define UPSTREAM_SOCK_QUERIES	64	/* queries sent on a socket before it is retired (64
					   replies of 1,232 octets fit the default receive buffer) */
#define UPSTREAM_SOCK_MS	2000	/* age (ms) after which a socket takes no new query */
#define UPSTREAM_SOCK_BUCKETS	64	/* ID buckets per socket (power of two) */
#define UPSTREAM_MMSG		8	/* replies read per recvmmsg(2) on a pool socket */

/* Intrusive circular doubly linked list. */
struct upstream_link {
	struct upstream_link *prev, *next;
};

#define UPSTREAM_CONTAINER(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

static inline void
upstream_link_init(struct upstream_link *l)
{
	l->prev = l;
	l->next = l;
}

static inline bool
upstream_link_empty(const struct upstream_link *l)
{
	return l->next == l;
}

static inline void
upstream_link_append(struct upstream_link *head, struct upstream_link *l)
{
	l->prev = head->prev;
	l->next = head;
	head->prev->next = l;
	head->prev = l;
}

static inline void
upstream_link_remove(struct upstream_link *l)
{
	l->prev->next = l->next;
	l->next->prev = l->prev;
	l->prev = l;
	l->next = l;
}

struct upstream_server {
	struct sockaddr_storage ss;
	socklen_t len;
	enum config_transport transport;
	char *tls_name;			/* owned by the list; TLS: the certificate's name, or NULL;
					   HTTPS: the URL's host when it is a name */
	char *url;			/* owned by the list; HTTPS: the URL, else NULL */
	char text[300];			/* "192.0.2.1:53", "[2001:db8::1]:53"; TLS: as written */
	/* health, updated on the loop thread */
	unsigned fails;			/* consecutive failed attempts */
	uint32_t backoff_ms;		/* current down period, 0 when up */
	uint64_t down_until;		/* uv_now() in ms; skipped while now < down_until */
	uint64_t last_fail;		/* uv_now() of the last failure */
	struct upstream_server_stats st; /* metrics (errors counted by upstream_server_failed) */
};

struct upstream_servers {
	unsigned refs;
	uint32_t timeout_ms;
	size_t n;
	struct upstream_server *s;	/* n entries, in preference order */
};

struct upstream_wait {
	struct upstream *u;
	struct upstream_req *req;	/* NULL once queued for completion (u->completions) */
	upstream_done_cb cb;
	void *arg;
	int status;			/* while queued */
	struct upstream_link link;	/* in req->waiters or in u->completions */
	struct upstream_wait *pool_next;
};

enum upstream_result {
	UPSTREAM_RESULT_REPLY = 0,	/* validated, complete */
	UPSTREAM_RESULT_TRUNCATED,	/* validated, TC=1 */
	UPSTREAM_RESULT_BAD,		/* validated, but not an answer (dnsmsg_judge_reply): an
					   rcode such as SERVFAIL or REFUSED, or records that do not
					   parse */
	UPSTREAM_RESULT_FAILED,		/* send/connect/read error, ICMP refused, EOF */
	UPSTREAM_RESULT_TIMEOUT,
};

struct upstream_attempt {
	struct upstream *u;
	struct upstream_req *req;	/* holds a reference */
	size_t server;			/* index into req->servers */
	uint16_t id;
	bool tcp;
	bool finished;			/* result decided; handles closing */
	bool expired;			/* UDP, timed out (counted as a failure) but still listening
					   for a late reply until the request's deadline */
	struct upstream_link rlink;	/* in req->live while not finished */
	bool h_open;			/* h was initialised (must be closed) */
	unsigned pending;		/* open handles + libuv requests in flight */
	struct upstream_sock *sock;	/* UDP: the pooled socket a is registered on, else NULL */
	struct upstream_tls *tls;	/* TLS: the connection a is registered on, else NULL */
	struct upstream_link wlink;	/* TLS: in tls->wq until its query is handed to TLS */
	struct upstream_doh_xfer *doh;	/* HTTPS: its transfer (upstream_doh.c), else NULL */
	struct upstream_attempt *idnext; /* chain of sock's ID bucket */
	struct upstream_link slink;	/* in sock->attempts while registered */
	union {
		uv_handle_t handle;
		uv_tcp_t tcp;
	} h;
	uv_timer_t timer;
	uv_udp_send_t send;
	uv_connect_t connect;
	uv_write_t write;
	/* the query: qbuf[0..1] is the TCP length prefix, the message starts at qbuf + 2 */
	uint8_t qbuf[2 + UPSTREAM_QUERY_MAX];
	size_t qlen;
	/* TCP reply assembly */
	uint8_t tlen[2];
	size_t thave_len;		/* octets of tlen received */
	size_t tneed, tgot;
	uint8_t *tbuf;			/* malloc'd, tcap octets, freed when released */
	size_t tcap;
	struct upstream_attempt *pool_next;
};

struct upstream_req {
	struct upstream *u;
	struct upstream_servers *servers; /* holds a reference */
	unsigned refs;
	bool done;			/* completed or aborted: out of the table and lists */
	unsigned attempts;		/* UDP attempts started */
	size_t tried[UPSTREAM_MAX_ATTEMPTS];
	size_t last;			/* server of the last attempt */
	size_t bad[UPSTREAM_MAX_ATTEMPTS]; /* servers that answered with UPSTREAM_RESULT_BAD: not
					   asked again by this request */
	unsigned nbad;
	unsigned ntimeouts, nnetfails;	/* attempts that timed out, that failed on the network */
	uint64_t deadline;		/* uv_now() bound for the whole request */
	uint64_t hash;
	struct upstream_req *hnext;	/* dedup table chain; pool link when free */
	struct upstream_link link;	/* u->starting or u->inflight */
	struct upstream_link waiters;
	unsigned nwaiters;
	struct upstream_link live;	/* attempts not finished (rlink) */
	unsigned nlive;			/* their number */
	struct dnsmsg_query q;		/* copy */
};

struct upstream_sock {
	struct upstream *u;
	struct upstream_sockset *set;
	uv_udp_t udp;
	uint64_t born;			/* uv_now() when opened */
	unsigned uses;			/* queries sent on it */
	unsigned slot;			/* index in set->slot while not retired */
	bool retired;			/* takes no new query; closed once nattempts is 0 */
	bool closing;
	uint16_t port;			/* local port, host order */
	unsigned nattempts;		/* attempts registered (their IDs are matched) */
	struct upstream_link attempts;	/* those attempts (slink) */
	struct upstream_attempt *ids[UPSTREAM_SOCK_BUCKETS]; /* by ID */
	struct upstream_sock *pool_next; /* u->free_socks */
};

struct upstream_sockset {
	struct sockaddr_storage ss;	/* the server */
	socklen_t len;
	struct upstream_sock *slot[UPSTREAM_SOCKS]; /* sockets taking queries (NULL: none yet) */
	unsigned nopen;			/* sockets of this set not yet closed, retired ones too */
	struct upstream_sockset *next;	/* u->sets */
};

struct upstream {
	uv_loop_t *loop;
	struct upstream_sockset *sets;	/* one per server address used (upstream_sock.c) */
	uint8_t *mbuf;			/* pool sockets' receive buffer: UPSTREAM_MMSG x 64 KiB
					   (libuv's recvmmsg chunk), allocated with the first */
	uv_timer_t sweep;		/* retires sockets older than UPSTREAM_SOCK_MS */
	bool sweep_closing;
	struct upstream_servers *servers;
	uv_idle_t idle;			/* starts requests and runs queued completions */
	bool reading;			/* in a pool socket's read: upstream_reading() */
	bool closing;
	bool idle_closing;
	void (*close_done)(void *arg);
	void *close_arg;
	unsigned live;			/* idle and sweep handles + attempts and sockets not yet
					   released */
	unsigned nreqs;			/* requests not yet released */
	struct upstream_link starting;	/* requests waiting for the idle callback */
	struct upstream_link inflight;	/* requests with an attempt running */
	struct upstream_link completions; /* waiters to call from the idle callback */
	struct upstream_req **table;
	size_t tmask;			/* buckets - 1 */
	size_t tcount;
	uint64_t seed;
	struct upstream_req *free_reqs;
	struct upstream_attempt *free_attempts;
	struct upstream_wait *free_waits;
	struct upstream_sock *free_socks;
	size_t nfree_reqs, nfree_attempts, nfree_waits, nfree_socks;
	uint8_t rnd[512];		/* getrandom() output, consumed 2 octets per ID */
	size_t rnd_pos;
	uint64_t prng;			/* fallback stream if getrandom() ever fails */
	struct upstream_stats st;
	/* DNS over TLS (upstream_tls.c) */
	struct upstream_tls *tls;	/* one per TLS server used */
	void *tls_ctx;			/* SSL_CTX *, created with the first TLS server */
	char *tls_ca;			/* the CA file it trusts (owned) */
	bool tls_dirty;			/* a connection has queries to write (flushed by on_idle) */
	struct upstream_doh *doh;	/* DNS over HTTPS (upstream_doh.c), with the first server */
	uint8_t rbuf[UPSTREAM_RBUF];
};

/*
 * The server list from cfg (upstream.servers, then the nameservers of upstream.resolv_conf_path
 * when upstream.resolv_conf), duplicates removed, with the health of servers also present in old
 * (may be NULL) carried over. 0, -ENOMEM, or -ENOENT when there is no server (logged).
 * *out has one reference.
 */
int upstream_servers_new(const struct config *cfg, const struct upstream_servers *old,
			 struct upstream_servers **out);
void upstream_servers_unref(struct upstream_servers **s);

/* True when a and b are the same address and port (an IPv6 scope id of 0 matches any). */
bool upstream_same_addr(const struct sockaddr *a, const struct sockaddr *b);
/*
 * The server for req's next attempt: scanning from the first server (first attempt) or the one
 * after the last tried, the first healthy server req has not tried yet, else the first healthy
 * one; when every server is down, the least recently failed (untried first). Servers that gave
 * req a bad answer (req->bad) are never chosen: SIZE_MAX when no other server is left.
 */
size_t upstream_server_pick(const struct upstream_req *req, uint64_t now);
/* A failed attempt to s at now: after UPSTREAM_DOWN_AFTER consecutive failures s is skipped for
 * a backoff (doubled on every failed retry, logged when it goes down). */
void upstream_server_failed(struct upstream_server *s, uint64_t now);
/* s answered: healthy again. */
void upstream_server_ok(struct upstream_server *s);

/* Reports the result of an attempt (first call wins; later calls are ignored). reply/len are
 * the validated reply for REPLY and TRUNCATED. Closes the attempt's handles. */
void upstream_attempt_done(struct upstream_attempt *a, enum upstream_result r,
			   const uint8_t *reply, size_t len);
/* A libuv request of a completed the (pending counter); releases a when nothing is left. */
void upstream_attempt_unpend(struct upstream_attempt *a);
/* Starts a's timer: the per-attempt timeout, cut to the request's deadline. */
void upstream_attempt_start_timer(struct upstream_attempt *a);
/* The read buffer of an attempt's socket (UDP or TCP; handle->data is the attempt): the
 * upstream's shared receive buffer, u->rbuf. */
void upstream_on_attempt_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf);

/* The next random 16-bit ID (getrandom() output). */
uint16_t upstream_random_id(struct upstream *u);

/* upstream_sock.c: the UDP socket pool. */
/* Starts the sweep timer (upstream_new). */
void upstream_sock_init(struct upstream *u);
/* Registers a (UDP, query not yet written) on a socket of its server's pool, opening one when
 * the slot picked at random is empty or due for retirement, and sets a->id to a random ID that
 * no other attempt on that socket holds. 0 or a libuv error (nothing registered). */
int upstream_sock_register(struct upstream_attempt *a);
/* Sends a's query on its socket (uv_udp_try_send, else a queued send counted in a->pending);
 * starts a's timer once sent. 0 or a libuv error. */
int upstream_sock_send(struct upstream_attempt *a);
/* Takes a off its socket (its ID no longer matches); closes a retired socket left empty. */
void upstream_sock_unregister(struct upstream_attempt *a);
/* Retires the sockets of every pool whose server is not in servers (reconfigure), frees the
 * pools left empty. */
void upstream_sock_prune(struct upstream *u, const struct upstream_servers *servers);
/* Shutdown: retires every socket (closed as their attempts finish), closes the sweep timer. */
void upstream_sock_close(struct upstream *u);
/* Frees the pools (every socket is closed). */
void upstream_sock_free(struct upstream *u);
/* Called when a handle owned by the upstream has closed (live count). */
void upstream_handle_released(struct upstream *u);

/* upstream_tls.c: DNS over TLS, one persistent connection per server.
 * (Re)configures the TLS context from cfg (upstream.tls_ca) when a server in servers uses TLS;
 * retires the connections of servers no longer listed. 0 or -EINVAL (CA file unusable, logged). */
int upstream_tls_configure(struct upstream *u, const struct config *cfg,
			   const struct upstream_servers *servers);
/* Registers a (its server is a TLS server) on that server's connection (connecting when there is
 * none) and sets a->id to a random ID no other attempt on the connection holds. 0 or a libuv error
 * (nothing registered: a reconnect backoff, a socket error). */
int upstream_tls_register(struct upstream_attempt *a);
/* Queues a's query (written) for the connection and starts a's timer (it covers the connection
 * and handshake too). 0. */
int upstream_tls_send(struct upstream_attempt *a);
/* Takes a off its connection. */
void upstream_tls_unregister(struct upstream_attempt *a);
/* Writes the queued queries of every connection (on_idle, when u->tls_dirty). */
void upstream_tls_flush(struct upstream *u);
/* Shutdown: closes every connection (no attempt is registered any more). */
void upstream_tls_close(struct upstream *u);
/* Frees the TLS context (every connection is closed and freed). */
void upstream_tls_free(struct upstream *u);
/* upstream_doh.c: DNS over HTTPS through one libcurl multi handle (HTTP/2, multiplexed).
 * Sets up the multi handle when a server in servers uses HTTPS (CA file from cfg). 0, -ENOMEM
 * or -EINVAL (logged). */
int upstream_doh_configure(struct upstream *u, const struct config *cfg,
			   const struct upstream_servers *servers);
/* Starts a's transfer (POST of its query) and a's timer. 0 or a libuv error. */
int upstream_doh_start(struct upstream_attempt *a);
/* Stops a's transfer (the attempt finished). */
void upstream_doh_stop(struct upstream_attempt *a);
/* Shutdown: no transfer is left; closes the connections and the handles. */
void upstream_doh_close(struct upstream *u);
/* Frees what is left (every handle is closed). */
void upstream_doh_free(struct upstream *u);

/* Runs the idle callback soon (upstream.c). */
void upstream_kick(struct upstream *u);

/* upstream_tcp.c: opens the TCP connection of a (timer already initialised, query written) and
 * sends the query once connected. 0 or a libuv error (then a->h_open says what to close). */
int upstream_tcp_start(struct upstream_attempt *a);

#endif
