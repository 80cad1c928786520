/*
 * server_int: what server.c, udp.c, tcp.c and query.c share (private to the daemon and its tests).
 *
 * Ownership: struct server owns the listeners, the TCP connections and the query pool. Every
 * object that holds libuv handles is counted in server.nobjects until its last close callback
 * has run; the server finishes stopping when that count reaches zero.
 */
#ifndef VETO_SERVER_INT_H
#define VETO_SERVER_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "cache.h"
#include "clientcount.h"
#include "devices.h"
#include "devices_share.h"
#include "diag.h"
#include "dnsmsg.h"
#include "metrics.h"
#include "policy.h"
#include "prefetch.h"
#include "query.h"
#include "querylog.h"
#include "stale.h"
#include "server.h"
#include "updater.h"
#include "upstream.h"

/*
 * Limits. Fixed at compile time, except the TCP ones that are configuration keys:
 * server.tcp_connections, server.tcp_pipeline and server.tcp_idle_timeout_ms (see tcp.c).
 */
/* Queries being answered at once (UDP and TCP together). The pool grows by blocks up to this,
 * and is never shrunk: no allocation per query in steady state. Beyond it, queries are dropped. */
#define SERVER_MAX_QUERIES	 16384
#define SERVER_QUERY_BLOCK	 256
/* How long server_stop() waits for queries in flight before cancelling them. */
#define SERVER_DRAIN_MS		 2000
/* UDP: datagrams read per recvmmsg(2) call (each takes a 64 KiB chunk of the receive buffer,
 * libuv's fixed chunk size) and the socket receive buffer asked for. */
#define UDP_MMSG_CHUNKS		 20
#define UDP_CHUNK_SIZE		 (64 * 1024)
#define UDP_SOCKET_RCVBUF	 (4 * 1024 * 1024)
/* UDP replies answered inside one recvmmsg batch are collected and sent with one sendmmsg(2)
 * at the end of the batch; replies larger than a slot are sent on their own. */
#define UDP_BATCH		 UDP_MMSG_CHUNKS
#define UDP_BATCH_SLOT		 4096
/* server.udp_sockets shared: the main loop asks another worker to read beside it once its
 * recvmmsg batches have come back full for this long (5 ms: longer than it takes to catch up
 * after being descheduled for a time slice, so only a loop that is behind asks), and a helper
 * reads at most UDP_HELP_ROUNDS batches per request while they come back full, then asks
 * itself again after its own loop's events. */
#define UDP_HELP_AFTER_NS	 (5 * 1000 * 1000)
#define UDP_HELP_ROUNDS		 16
/* UDP replies waiting in libuv's send queue (socket buffer full); beyond: dropped. */
#define UDP_MAX_QUEUED_SENDS	 4096
/* TCP (RFC 7766): bytes of replies waiting for a slow reader (beyond: the connection is
 * closed). The connection cap, the per-connection pipeline and the idle timeout come from the
 * configuration (server.tcp_*). */
#define TCP_MAX_BACKLOG		 (256 * 1024)
#define TCP_LISTEN_BACKLOG	 128
#define TCP_READ_SIZE		 (64 * 1024)

/* Per-client limits and resource budgets (limits.c). Descriptors kept out of the budgets for
 * the listeners (two per address, added), the logs, the databases, list files being read and
 * libuv's own; the rest is split: at most a quarter for TCP connections (and no more than
 * server.tcp_connections), the others for queries waiting for upstream (each may hold a socket),
 * at most SERVER_MAX_QUERIES. */
#define LIMITS_FD_RESERVE	128
#define LIMITS_REPORT_MS	10000	/* exhaustion and rate-limit counts: one line per period */
#define LIMITS_RATE_ENTRIES	8192	/* token buckets (clients and prefixes) */
#define LIMITS_TOP		5	/* clients named in the rate-limit line */
#define LIMITS_EVICT_SCAN	64	/* connections looked at for an idle one to close */

/* Events counted for the periodic warning (one period, and since start). */
struct limits_counts {
	uint64_t client_cap;	/* SERVFAIL: server.queries_per_client reached */
	uint64_t prefix_cap;	/* SERVFAIL: server.queries_per_prefix reached */
	uint64_t budget;	/* SERVFAIL: the upstream budget (descriptors) reached */
	uint64_t slots;		/* dropped: no query slot */
	uint64_t fds;		/* descriptor errors (accept, upstream) */
	uint64_t tcp_client_cap; /* connections closed: server.tcp_connections_per_client */
	uint64_t tcp_evicted;	/* idle connections closed to make room */
	uint64_t tcp_full;	/* connections closed: table full, none idle */
	uint64_t rate_limited;	/* server.rate_limit */
	uint64_t errors_dropped; /* error replies not sent: server.error_replies_per_second */
};

/* Counts one event of field (a member of struct limits_counts) for the report. */
#define LIMITS_COUNT(s, field) ((s)->limits.win.field++, (s)->limits.total.field++)

struct ratelimit;

struct limits {
	uint64_t nofile;	/* RLIMIT_NOFILE soft limit in use */
	uint32_t upstream;	/* queries waiting for upstream at most */
	uint32_t tcp;		/* TCP connections at most (with server.tcp_connections) */
	uint32_t nupstream;	/* queries waiting for upstream now (admitted) */
	struct clientcount counts;	/* CLIENTKEY_QUERIES, _QUERIES_PREFIX, _TCP */
	struct ratelimit *rl;		/* token buckets */
	uv_timer_t timer;
	bool timer_init;
	struct limits_counts win, total;
};

enum server_state {
	SERVER_NEW = 0,		/* created, nothing bound */
	SERVER_RUNNING,
	SERVER_DRAINING,	/* stop requested: waiting for queries in flight */
	SERVER_CLOSING,		/* closing handles */
	SERVER_STOPPED,
};

/* What a UDP and a TCP listener share, the first member of both (so that a pointer to it is a
 * pointer to the listener). server.c allocates, names, links, counts and frees it. */
struct server_listener {
	struct server *srv;
	struct server_listener *next;	/* in s->udp or s->tcp */
	char *name;		/* owned, "127.0.0.1:53" */
};

struct udp_listener {
	struct server_listener base;	/* first */
	uv_udp_t handle;
	size_t queued;		/* uv_udp_send requests in flight */
	unsigned nbatch;	/* datagrams of the recvmmsg batch being handled */
	uint64_t full_since;	/* uv_hrtime() of the first of full recvmmsg batches in a row */
	bool receiving;
	bool in_batch;		/* handling a datagram of a recvmmsg batch */
	bool closing;
};

struct tcp_listener {
	struct server_listener base;	/* first */
	uv_tcp_t handle;
	bool closing;
};

struct tcp_conn {
	uv_tcp_t handle;
	uv_timer_t timer;	/* idle timeout */
	struct server *srv;
	struct tcp_conn *prev, *next;	/* most recently active first */
	struct sockaddr_storage peer;
	uint8_t *pbuf;		/* bytes received but not processed yet, from pbuf[poff] */
	size_t poff, plen, pcap;
	size_t backlog;		/* reply bytes in uv_write requests */
	unsigned refs;		/* open handles + queries in flight + write requests */
	unsigned inflight;	/* queries being answered */
	/* server.tcp_pipeline and server.tcp_idle_timeout_ms of the policy current when the
	 * connection was accepted: a reload applies to new connections */
	unsigned max_inflight;
	uint64_t idle_ms;
	bool reading;
	bool eof;		/* the client closed its side: answer what is in flight, then close */
	bool in_process;	/* inside process(): completions must not re-enter it */
	bool counted;		/* in s->nactive and the per-client count */
	bool closing;
};

struct reload_job;
struct udp_batch;
struct worker;
struct workers_ctl;

struct server {
	uv_loop_t *loop;
	enum server_state state;
	struct policy *policy;		/* current policy: one reference */
	struct cache *cache;
	struct upstream *upstream;
	struct querylog *qlog;
	struct devices *devices;	/* device identity (devices: in the config), or NULL */
	/* server.workers > 1: the main server shares its device table with the other workers
	 * (owned by the main server); each of those reads it through its reader (borrowed) */
	struct devices_share *devshare;
	struct devices_reader *devreader;
	struct control *control;	/* state_dir/control.sock (devices, lists), or NULL */
	struct updater *lists;		/* list downloads and list-file watchers, or NULL */
	struct server_stats stats;
	/* the policy in use and the last reload (server_policy.c): wall-clock ms, the reload's
	 * result (1: none yet, 0 ok, -errno) and its problems as "LEVEL\tTEXT\n" lines (owned) */
	uint64_t policy_wall_ms, reload_wall_ms;
	int reload_status;
	char *reload_problems;
	uint64_t started_ms;		/* uv_now() at server_new (metrics: uptime) */
	uint64_t policy_ms;		/* uv_now() when the policy in use was loaded */
	struct metrics_counts counts;	/* metrics.c: per transport, action, rcode, group */
	/* what took effect at start (or when devices started): a reload compares with these to
	 * say which changes need a restart */
	struct {
		uint32_t cache_entries, cache_min_ttl, cache_max_ttl;
		struct config_addr *listen;	/* owned copy */
		size_t nlisten;
		char *state_dir;		/* of the device table; NULL when it is not open */
	} applied;

	struct server_listener *udp;	/* struct udp_listener, linked by base.next */
	struct server_listener *tcp;	/* struct tcp_listener */
	struct tcp_conn *conns;		/* doubly linked, most recently active first */
	struct tcp_conn *conns_tail;	/* idle longest */
	unsigned nconns;		/* allocated (closing ones included) */
	unsigned nactive;		/* not closing: at most server.tcp_connections */
	struct limits limits;

	struct query_pool pool;
	struct query *async;		/* queries waiting for upstream (doubly linked) */
	struct prefetch prefetch;	/* cache refreshes in flight (cache.prefetch) */
	struct stale stale;		/* RFC 8767 client response timer (stale.c) */

	/* Objects with libuv handles not yet closed: listeners, connections, the drain timer, the
	 * signal handles, the upstream client. */
	unsigned nobjects;

	uv_signal_t sig_hup, sig_term, sig_int;
	bool signals;
	uv_timer_t drain_timer;
	bool drain_timer_init;
	uint64_t drain_ms;
	bool drain_expired;
	bool devices_closing;		/* the device table (and its share) asked to close */
	void (*stop_cb)(void *arg);
	void *stop_arg;

	struct reload_job *reload;	/* the reload running, NULL if none */
	server_policy_cb on_reload;	/* server_on_reload() */
	void *on_reload_arg;
	bool reload_again;

	/* server.workers (worker.c). The main server (the one server_new made) owns the other
	 * workers' threads; each of those runs a server of its own (made by server_new_worker)
	 * that shares the main server's query log and has no signals, reload, control channel,
	 * list updater or device table. */
	struct worker *workers;		/* main: nworkers - 1 of them (NULL when 1) */
	unsigned nworkers;		/* loops serving DNS in all (both kinds of server) */
	unsigned nstarted;		/* main: worker threads started */
	unsigned help_next;		/* main: the worker workers_assist asks first */
	struct worker *self;		/* a worker's server: its worker; NULL on the main one */
	struct workers_ctl *wctl;	/* main: what its loop waits for from the workers */
	bool reuseport;			/* TCP listeners with SO_REUSEPORT (nworkers > 1) */
	/* server.udp_sockets shared with nworkers > 1: the main server's UDP sockets, read by
	 * the others when it asks (udp.c); else per worker, with SO_REUSEPORT when reuseport */
	bool udp_shared;
	struct server *main_srv;	/* a worker's server: the main one; NULL on the main one */

	/* Loop-owned scratch, used only inside one callback (but the batch: below). */
	uint8_t *udp_rbuf;		/* UDP_MMSG_CHUNKS * UDP_CHUNK_SIZE */
	/* replies waiting for one sendmmsg (udp.c): those of the recvmmsg batch being handled,
	 * or upstream answers of this loop turn until s->flush runs; never past the turn */
	struct udp_batch *batch;
	uv_check_t flush;		/* sends the batch after the poll phase (udp.c) */
	bool flush_init;
	uint8_t *tcp_rbuf;		/* TCP_READ_SIZE */
	uint8_t *reply;			/* 2 + DNSMSG_MAX_LEN: TCP length prefix, then the reply */
	uint8_t *answer_wire;		/* DNSMSG_MAX_LEN: an upstream answer being served */
	struct dnsmsg_answer answer;
};

/* The reply area: replies are written at server_reply_buf(s), with 2 octets of headroom in front
 * for the TCP length prefix. */
#define SERVER_REPLY_CAP DNSMSG_MAX_LEN
static inline uint8_t *
server_reply_buf(struct server *s)
{
	return s->reply + 2;
}

/* server.c */
/* "127.0.0.1:53" or "[::1]:53", allocated (NULL on ENOMEM). */
char *server_addr_text(const struct sockaddr *sa);
void server_object_closed(struct server *s);	/* a counted object finished closing */
/* The close callback of a counted handle whose data is its server: server_object_closed. */
void server_handle_closed(uv_handle_t *handle);
/* A worker's thread ended (worker.c): while the main server closes, its device table closes
 * once every worker's has, after a last replay of their observations. */
void server_worker_ended(struct server *s);
void server_query_released(struct server *s);	/* a query slot went back to the pool */
void server_conn_closed(struct server *s);	/* a TCP connection is about to be freed */
/* Listeners (udp.c, tcp.c). server_listener_new allocates a zeroed listener of size octets (a
 * struct udp_listener or tcp_listener), named after sa, or returns NULL (ENOMEM). Once its handle
 * is initialised, server_listener_add links it first in *head (&s->udp or &s->tcp) and counts
 * it in s->nobjects: from then on only its close callback frees it, by calling
 * server_listener_closed with the same head. Before that, server_listener_discard frees it. */
void *server_listener_new(struct server *s, const struct sockaddr *sa, size_t size);
void server_listener_add(struct server_listener **head, struct server_listener *l);
void server_listener_discard(struct server_listener *l);
void server_listener_closed(struct server_listener **head, struct server_listener *l);

/* udp.c */
/* rbuf: the loop's receive buffer (UDP_MMSG_CHUNKS * UDP_CHUNK_SIZE), for udp_help */
int udp_batch_new(uint8_t *rbuf, struct udp_batch **out);
void udp_batch_free(struct udp_batch **b);
int udp_listener_open(struct server *s, const struct config_addr *addr);
void udp_listener_stop(struct udp_listener *l);	/* stop receiving, keep sending */
void udp_listener_close(struct udp_listener *l);
/* Sends the reply to q's client (buf/len: valid only during the call). */
void udp_reply(struct query *q, const uint8_t *buf, size_t len);
/* A worker asked to help (workers_assist): reads what waits on the main server's UDP sockets,
 * recvmmsg batch after batch while they come back full (at most UDP_HELP_ROUNDS), and answers
 * it. True when the last batch was full (more may be waiting). */
bool udp_help(struct server *s);
/* The check handle that sends upstream answers batched during the poll phase: made by
 * server_start (counted in nobjects), closed by begin_close after a last flush. */
void udp_flush_start(struct server *s);
void udp_flush_close(struct server *s);

/* limits.c */
int limits_init(struct server *s);	/* server_new: 0 or -ENOMEM */
void limits_destroy(struct server *s);
/* server_start: raises RLIMIT_NOFILE to the hard limit, sizes the budgets, logs them, starts
 * the report timer (counted in s->nobjects; limits_close closes it). */
void limits_start(struct server *s);
/* The budgets for nofile descriptors, nlisten listen addresses and server.tcp_connections:
 * queries waiting for upstream and TCP connections at most. */
void limits_size(uint64_t nofile, size_t nlisten, uint32_t tcp_connections, uint32_t *upstream,
		 uint32_t *tcp);
void limits_close(struct server *s);
/* Logs the counts of the period (warning) if any; final: also the totals since start. */
void limits_report(struct server *s, bool final);
/* A query about to go upstream: 0 (counted until limits_release), or -EBUSY (over a cap or the
 * budget: counted, the caller answers SERVFAIL). */
int limits_admit(struct server *s, const struct sockaddr *client);
void limits_release(struct server *s, const struct sockaddr *client);
/* server.rate_limit for a query of client: true to answer it. */
bool limits_rate_ok(struct server *s, const struct sockaddr *client, bool tcp);
/* server.error_replies_per_second: true to send an error reply to client. */
bool limits_error_reply_ok(struct server *s, const struct sockaddr *client);
/* TCP connections per client: 0 (counted until limits_tcp_sub) or -EBUSY. */
int limits_tcp_add(struct server *s, const struct sockaddr *peer);
void limits_tcp_sub(struct server *s, const struct sockaddr *peer);
/* The connection cap now: server.tcp_connections, within the descriptor budget. */
unsigned limits_tcp_max(const struct server *s);

/* tcp.c */
int tcp_listener_open(struct server *s, const struct config_addr *addr);
void tcp_listener_close(struct tcp_listener *l);
/* Sends the reply with its length prefix: buf must have 2 writable octets in front of it. A
 * reply to a connection that is closing is discarded. */
void tcp_reply(struct query *q, uint8_t *buf, size_t len);
/* A query of c finished (its slot is already back in the pool). */
void tcp_query_done(struct tcp_conn *c);
/* Server stopping: stop reading; the connection closes once its queries are answered. */
void tcp_conn_drain(struct tcp_conn *c);
void tcp_conn_close(struct tcp_conn *c);

/* server.c, for worker.c. server_new_worker: a worker's server on loop, sharing main's query
 * log; takes over one reference to policy on success. server_swap_policy: puts policy (one
 * reference, taken over) in use on s's loop: cache settings, upstream servers, group counters. */
int server_new_worker(uv_loop_t *loop, struct policy *policy, struct server *main_srv,
		      struct server **out);
void server_swap_policy(struct server *s, struct policy *policy);
/* SO_REUSEPORT on a listener's socket before it is bound, when s->reuseport (udp.c, tcp.c). */
int server_reuseport(struct server *s, uv_handle_t *h, const char *name);

/* server_policy.c: records a finished reload (status 0 or -errno, its diagnostics). */
void server_note_reload(struct server *s, int status, const struct diag *d);
/* The `policy` control request's lines (control.h): a control_text_cb. */
int server_policy_text(void *arg, char **out);

#endif
