/*
 * upstream_tls: DNS over TLS to the tls:// servers (RFC 7858; RFC 8310 for the name check).
 *
 * One struct upstream_tls per server (address, port and certificate name), kept across reloads
 * while the server stays listed. It holds at most one connection at a time: a non-blocking TCP
 * socket watched by a uv_poll handle and an OpenSSL object driven from it (no memory BIOs, no
 * thread, never a blocking call). Attempts register on the connection under a random ID unique
 * on it (RFC 7766 pipelining: any number in flight, replies in any order, matched by ID and then
 * checked like UDP replies), their framed queries wait in a queue (wq) and are written by
 * upstream_tls_flush() from the upstream's idle callback: the queries of one loop turn go out
 * together, up to TLS_WBUF octets per SSL_write (one TLS record, one write(2)).
 *
 * States: IDLE (no socket) -> CONNECTING (connect(2) in progress) -> HANDSHAKE -> READY;
 * CLOSING while the poll handle closes (then IDLE, and a new connection starts at once when
 * attempts are waiting). A connection that fails (connect error, handshake or certificate
 * error, EOF or error with attempts in flight) fails the attempts whose query it carried
 * (UPSTREAM_RESULT_FAILED: counted against the server, the request fails over). Reconnecting
 * after a failed connect or handshake waits TLS_BACKOFF_MIN_MS, doubled per failure up to
 * TLS_BACKOFF_MAX_MS (every attempt on it fails, and attempts in that window fail at once); a
 * connection that had completed its handshake is reopened at once, and the attempts whose query
 * it had not yet written wait for the new one instead of failing. A connection silent for
 * UPSTREAM_MAX_ATTEMPTS x timeout_ms while queries wait on it is dropped as failed (a middlebox
 * that forgot it, a hung server). The conn timer bounds connect + handshake (the upstream
 * timeout) and closes a connection left without attempts for TLS_IDLE_MS. The TLS session of
 * the last connection is offered when reconnecting (resumption: no certificate chain to verify).
 *
 * Verification is always on: the chain must lead to a CA of upstream.tls_ca (default: the
 * system store) and the certificate must carry the #name (DNS SAN) or, without one, the
 * server's IP address (IP SAN). A failure is logged with OpenSSL's reason.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "check.h"
#include "log.h"
#include "upstream_int.h"

#define UPSTREAM_TLS_CA_DEFAULT "/etc/ssl/certs/ca-certificates.crt"
#define TLS_WBUF	   16384	/* plaintext per SSL_write: one TLS record */
#define TLS_RBUF	   (2 + 65535 + 16384) /* a whole message plus one record's worth */
#define TLS_IDLE_MS	   10000	/* a connection without attempts is closed after this */
#define TLS_BACKOFF_MIN_MS 250
#define TLS_BACKOFF_MAX_MS 10000

enum tls_state { TLS_IDLE, TLS_CONNECTING, TLS_HANDSHAKE, TLS_READY, TLS_CLOSING };

struct upstream_tls {
	struct upstream *u;
	struct sockaddr_storage ss;
	socklen_t len;
	char *name;			/* owned: the certificate's name, or NULL (IP check) */
	char text[300];			/* the server as written, for logs */
	enum tls_state state;
	int fd;
	SSL *ssl;
	SSL_SESSION *session;		/* of the last connection, offered for resumption */
	uv_poll_t poll;			/* open in CONNECTING, HANDSHAKE, READY, CLOSING */
	int events;			/* what poll waits for */
	bool want_write;		/* the last SSL call wants the socket writable */
	uv_timer_t timer;		/* handshake bound, then idle close */
	bool retired;			/* server no longer listed: freed once closed */
	unsigned handles;		/* poll and timer not yet closed */
	unsigned fails;			/* consecutive failed connects or handshakes */
	uint64_t retry_at;		/* uv_now() before which no connect is tried */
	uint32_t timeout_ms;		/* connect + handshake bound */
	uint64_t wait_since;		/* uv_now() of the first write since the last read, or 0:
					   a connection silent for UPSTREAM_MAX_ATTEMPTS x timeout_ms
					   while queries wait is dropped (upstream_tls_flush) */
	unsigned nattempts;
	struct upstream_link attempts;	/* registered (slink) */
	struct upstream_link wq;	/* queries not yet handed to SSL_write (wlink) */
	struct upstream_attempt *ids[UPSTREAM_SOCK_BUCKETS];
	size_t wlen;			/* octets in wbuf (kept as is while SSL_write wants retry) */
	size_t rlen;			/* octets in rbuf */
	uint8_t *rbuf;			/* TLS_RBUF, allocated with the struct */
	struct upstream_tls *next;	/* u->tls */
	uint8_t wbuf[TLS_WBUF];
};

static void tls_drop(struct upstream_tls *t, bool failed);
static void tls_drive(struct upstream_tls *t);

/* ------------------------------------------------------------------------------------------ */
/* the context */

static int
on_new_session(SSL *ssl, SSL_SESSION *sess)
{
	struct upstream_tls *t = SSL_get_app_data(ssl);

	/* a connection made under an earlier upstream.tls_ca: its session was verified against
	 * that CA, and a resumption would skip the check against the current one */
	if (t == NULL || SSL_get_SSL_CTX(ssl) != t->u->tls_ctx)
		return 0;
	/* a copy: sess is the connection's current session, which OpenSSL marks not resumable
	 * when the connection ends in an error (a server closing without close_notify) */
	SSL_SESSION *copy = SSL_SESSION_dup(sess);
	if (copy != NULL) {
		SSL_SESSION_free(t->session);
		t->session = copy;
	}
	return 0;	/* OpenSSL keeps its reference */
}

static void
log_ssl_errors(const char *what, const char *ca)
{
	unsigned long e = ERR_get_error();
	char buf[256];

	if (e != 0)
		ERR_error_string_n(e, buf, sizeof(buf));
	log_error("upstream.tls_ca: %s '%s': %s", what, ca, e != 0 ? buf : "unknown error");
	ERR_clear_error();
}

static bool
uses_tls(const struct upstream_servers *servers)
{
	for (size_t i = 0; i < servers->n; i++)
		if (servers->s[i].transport == CONFIG_TRANSPORT_TLS)
			return true;
	return false;
}

static bool
tls_listed(const struct upstream_tls *t, const struct upstream_servers *servers)
{
	for (size_t i = 0; i < servers->n; i++) {
		const struct upstream_server *s = &servers->s[i];
		if (s->transport == CONFIG_TRANSPORT_TLS &&
		    upstream_same_addr((const struct sockaddr *)&s->ss,
				       (const struct sockaddr *)&t->ss) &&
		    (s->tls_name == t->name ||
		     (s->tls_name != NULL && t->name != NULL && strcmp(s->tls_name, t->name) == 0)))
			return true;
	}
	return false;
}

static void tls_retire(struct upstream_tls *t);

int
upstream_tls_configure(struct upstream *u, const struct config *cfg,
		       const struct upstream_servers *servers)
{
	const char *ca = cfg->upstream.tls_ca != NULL ? cfg->upstream.tls_ca
						      : UPSTREAM_TLS_CA_DEFAULT;

	for (struct upstream_tls *t = u->tls; t != NULL;) {
		struct upstream_tls *next = t->next;	/* t may be freed */
		if (!t->retired && !tls_listed(t, servers))
			tls_retire(t);
		t = next;
	}
	if (!uses_tls(servers))
		return 0;
	if (u->tls_ctx != NULL && u->tls_ca != NULL && strcmp(u->tls_ca, ca) == 0)
		return 0;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	char *copy = strdup(ca);
	if (ctx == NULL || copy == NULL) {
		SSL_CTX_free(ctx);
		free(copy);
		return -ENOMEM;
	}
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx, on_new_session);
	if (SSL_CTX_load_verify_locations(ctx, ca, NULL) != 1) {
		log_ssl_errors("cannot load the CA certificates of", ca);
		SSL_CTX_free(ctx);
		free(copy);
		return -EINVAL;
	}
	/* connections open keep the context they started with (SSL objects hold a reference) */
	SSL_CTX_free(u->tls_ctx);
	free(u->tls_ca);
	u->tls_ctx = ctx;
	u->tls_ca = copy;
	/* sessions verified against the previous CA are not offered again: the next connection
	 * makes a full handshake, its certificate checked against the new one */
	for (struct upstream_tls *t = u->tls; t != NULL; t = t->next) {
		SSL_SESSION_free(t->session);
		t->session = NULL;
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* handles and lifetime */

static void
tls_maybe_free(struct upstream_tls *t)
{
	struct upstream *u = t->u;

	if (!t->retired || t->handles > 0 || t->nattempts > 0)
		return;
	for (struct upstream_tls **p = &u->tls; *p != NULL; p = &(*p)->next) {
		if (*p == t) {
			*p = t->next;
			break;
		}
	}
	SSL_SESSION_free(t->session);
	free(t->name);
	free(t->rbuf);
	free(t);
}

static void
on_tls_timer_close(uv_handle_t *handle)
{
	struct upstream_tls *t = handle->data;
	struct upstream *u = t->u;

	t->handles--;
	tls_maybe_free(t);
	upstream_handle_released(u);
}

/* Not listed any more (or shutdown): closes the connection and the timer; freed once both
 * handles are closed and no attempt is registered. */
static void
tls_retire(struct upstream_tls *t)
{
	if (t->retired)
		return;
	t->retired = true;
	if (t->nattempts == 0 && t->state != TLS_IDLE && t->state != TLS_CLOSING)
		tls_drop(t, false);
	uv_close((uv_handle_t *)&t->timer, on_tls_timer_close);
}

static void
on_tls_poll_close(uv_handle_t *handle)
{
	struct upstream_tls *t = handle->data;
	struct upstream *u = t->u;

	SSL_free(t->ssl);
	t->ssl = NULL;
	close(t->fd);
	t->fd = -1;
	t->state = TLS_IDLE;
	t->handles--;
	if (!upstream_link_empty(&t->wq) && !t->retired)
		tls_drive(t);	/* attempts registered while closing: reconnect */
	tls_maybe_free(t);
	upstream_handle_released(u);
}

static void
on_tls_timer(uv_timer_t *timer)
{
	struct upstream_tls *t = timer->data;

	if (t->state == TLS_CONNECTING || t->state == TLS_HANDSHAKE) {
		log_warning("upstream: '%s': tls: no connection after %u ms", t->text,
			    (unsigned)t->timeout_ms);
		tls_drop(t, true);
	} else if (t->state == TLS_READY && t->nattempts == 0) {
		log_debug("upstream: '%s': tls: closing idle connection", t->text);
		(void)SSL_shutdown(t->ssl);	/* close_notify, best effort */
		ERR_clear_error();
		tls_drop(t, false);
	}
}

static struct upstream_tls *
tls_get(struct upstream *u, const struct upstream_server *s)
{
	for (struct upstream_tls *t = u->tls; t != NULL; t = t->next) {
		if (!t->retired && upstream_same_addr((const struct sockaddr *)&s->ss,
						      (const struct sockaddr *)&t->ss) &&
		    (s->tls_name == t->name ||
		     (s->tls_name != NULL && t->name != NULL && strcmp(s->tls_name, t->name) == 0)))
			return t;
	}
	struct upstream_tls *t = calloc(1, sizeof(*t));
	if (t == NULL)
		return NULL;
	t->rbuf = malloc(TLS_RBUF);
	if (s->tls_name != NULL)
		t->name = strdup(s->tls_name);
	if (t->rbuf == NULL || (s->tls_name != NULL && t->name == NULL)) {
		free(t->rbuf);
		free(t->name);
		free(t);
		return NULL;
	}
	t->u = u;
	memcpy(&t->ss, &s->ss, s->len);
	t->len = s->len;
	snprintf(t->text, sizeof(t->text), "%s", s->text);
	t->fd = -1;
	upstream_link_init(&t->attempts);
	upstream_link_init(&t->wq);
	uv_timer_init(u->loop, &t->timer);
	t->timer.data = t;
	t->handles = 1;
	u->live++;
	t->next = u->tls;
	u->tls = t;
	return t;
}

/* ------------------------------------------------------------------------------------------ */
/* the connection */

static void on_tls_poll(uv_poll_t *handle, int status, int events);

static void
tls_poll(struct upstream_tls *t, int events)
{
	if (t->state == TLS_IDLE || t->state == TLS_CLOSING || events == t->events)
		return;
	t->events = events;
	uv_poll_start(&t->poll, events, on_tls_poll);
}

/* Closes the connection. failed: a connect, handshake or transport failure (counted, and
 * every registered attempt fails); else a clean close (idle, retired). */
static void
tls_drop(struct upstream_tls *t, bool failed)
{
	struct upstream *u = t->u;
	uint64_t now = uv_now(u->loop);

	if (t->state == TLS_IDLE || t->state == TLS_CLOSING)
		return;
	bool established = t->state == TLS_READY;
	if (failed) {
		u->st.tls_failures++;
		if (t->state != TLS_READY) {
			unsigned f = t->fails < 16 ? t->fails : 16;
			uint64_t ms = (uint64_t)TLS_BACKOFF_MIN_MS << f;
			t->retry_at = now + (ms < TLS_BACKOFF_MAX_MS ? ms : TLS_BACKOFF_MAX_MS);
			t->fails++;
		}
	}
	t->state = TLS_CLOSING;
	t->wlen = 0;
	t->rlen = 0;
	t->want_write = false;
	t->wait_since = 0;
	uv_timer_stop(&t->timer);
	uv_close((uv_handle_t *)&t->poll, on_tls_poll_close);
	/* the attempts whose query went out on this connection fail (over); those not yet written
	 * to an established connection, and those registering from the callbacks, stay on
	 * t->attempts and wait for the next connection (opened once this one has closed). After a
	 * failed connect or handshake every attempt fails: the backoff applies to them. */
	struct upstream_link gone;
	upstream_link_init(&gone);
	if (!upstream_link_empty(&t->attempts)) {
		gone.next = t->attempts.next;
		gone.prev = t->attempts.prev;
		gone.next->prev = &gone;
		gone.prev->next = &gone;
		upstream_link_init(&t->attempts);
	}
	while (!upstream_link_empty(&gone)) {
		struct upstream_attempt *a =
			UPSTREAM_CONTAINER(gone.next, struct upstream_attempt, slink);
		if (established && !upstream_link_empty(&a->wlink)) {
			upstream_link_remove(&a->slink);
			upstream_link_append(&t->attempts, &a->slink);
			continue;
		}
		upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
		INSIST(a->tls == NULL);	/* a failed attempt is finished, hence unregistered */
	}
}

static void
tls_fail_ssl(struct upstream_tls *t, const char *what, int ret)
{
	int e = SSL_get_error(t->ssl, ret);
	unsigned long q = ERR_peek_error();
	char buf[256];

	if (t->state == TLS_HANDSHAKE) {
		long v = SSL_get_verify_result(t->ssl);
		if (v != X509_V_OK) {
			log_warning("upstream: '%s': tls: certificate does not verify: %s", t->text,
				    X509_verify_cert_error_string(v));
			ERR_clear_error();
			tls_drop(t, true);
			return;
		}
	}
	if (q != 0) {
		ERR_error_string_n(q, buf, sizeof(buf));
	} else if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ret == 0)) {
		snprintf(buf, sizeof(buf), "connection closed by the server");
	} else if (e == SSL_ERROR_SYSCALL) {
		snprintf(buf, sizeof(buf), "%s", strerror(errno));
	} else {
		snprintf(buf, sizeof(buf), "error %d", e);
	}
	ERR_clear_error();
	/* the server's idle close, with at most queries not yet written: nothing was lost */
	bool quiet = t->state == TLS_READY;
	for (struct upstream_link *l = t->attempts.next; quiet && l != &t->attempts; l = l->next)
		quiet = !upstream_link_empty(
			&UPSTREAM_CONTAINER(l, struct upstream_attempt, slink)->wlink);
	if (quiet)
		log_debug("upstream: '%s': tls %s: %s", t->text, what, buf);
	else
		log_warning("upstream: '%s': tls %s: %s", t->text, what, buf);
	tls_drop(t, !quiet);
}

/* Opens a connection (IDLE -> CONNECTING). 0 or a libuv error (then still IDLE). */
static int
tls_connect(struct upstream_tls *t)
{
	struct upstream *u = t->u;
	int one = 1, err;
	int fd = socket(t->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&t->ss, t->len) != 0 && errno != EINPROGRESS) {
		err = -errno;
		close(fd);
		return err;
	}
	SSL *ssl = SSL_new(u->tls_ctx);
	if (ssl == NULL) {
		close(fd);
		return UV_ENOMEM;
	}
	SSL_set_app_data(ssl, t);
	/* the name or address the certificate must match: without it the chain alone would be
	 * checked, so a failure to set it ends this connection */
	int named;
	if (t->name != NULL) {
		/* RFC 8310: the authentication domain name; also sent as SNI */
		named = SSL_set_tlsext_host_name(ssl, t->name) == 1 &&
			SSL_set1_host(ssl, t->name) == 1;
	} else {
		X509_VERIFY_PARAM *p = SSL_get0_param(ssl);
		if (t->ss.ss_family == AF_INET)
			named = X509_VERIFY_PARAM_set1_ip(
				p, (const unsigned char *)&((struct sockaddr_in *)&t->ss)->sin_addr, 4);
		else
			named = X509_VERIFY_PARAM_set1_ip(
				p, (const unsigned char *)&((struct sockaddr_in6 *)&t->ss)->sin6_addr,
				16);
		named = named == 1;
	}
	if (!named) {
		SSL_free(ssl);
		close(fd);
		return UV_ENOMEM;
	}
	if (t->session != NULL)
		SSL_set_session(ssl, t->session);
	if (SSL_set_fd(ssl, fd) != 1) {
		SSL_free(ssl);
		close(fd);
		return UV_ENOMEM;
	}
	err = uv_poll_init_socket(u->loop, &t->poll, fd);
	if (err != 0) {
		SSL_free(ssl);
		close(fd);
		return err;
	}
	t->poll.data = t;
	t->handles++;
	u->live++;
	t->fd = fd;
	t->ssl = ssl;
	t->state = TLS_CONNECTING;
	t->events = UV_WRITABLE;
	t->wlen = 0;
	t->rlen = 0;
	t->want_write = false;
	uv_poll_start(&t->poll, UV_WRITABLE, on_tls_poll);
	uv_timer_start(&t->timer, on_tls_timer, t->timeout_ms, 0);
	return 0;
}

/* One complete message of len octets at msg. */
static void
tls_message(struct upstream_tls *t, const uint8_t *msg, size_t len)
{
	struct upstream *u = t->u;
	uint16_t id;
	bool tc = false;

	if (len < DNSMSG_HEADER_LEN) {
		u->st.dropped_replies++;
		return;
	}
	id = (uint16_t)(msg[0] << 8 | msg[1]);
	struct upstream_attempt *a = t->ids[id & (UPSTREAM_SOCK_BUCKETS - 1)];
	while (a != NULL && a->id != id)
		a = a->idnext;
	if (a == NULL || dnsmsg_check_reply(msg, len, a->id, &a->req->q, &tc) != 0) {
		u->st.dropped_replies++;
		return;
	}
	enum upstream_result r = UPSTREAM_RESULT_FAILED;	/* TC over TLS: no retry */
	if (!tc)
		r = dnsmsg_judge_reply(msg, len) == 0 ? UPSTREAM_RESULT_REPLY : UPSTREAM_RESULT_BAD;
	upstream_attempt_done(a, r, msg, len);
}

/* Reads what TLS has; handles every complete message. */
static void
tls_read(struct upstream_tls *t)
{
	while (t->state == TLS_READY) {
		int n = SSL_read(t->ssl, t->rbuf + t->rlen, (int)(TLS_RBUF - t->rlen));
		if (n <= 0) {
			int e = SSL_get_error(t->ssl, n);
			if (e == SSL_ERROR_WANT_READ)
				return;
			if (e == SSL_ERROR_WANT_WRITE) {
				t->want_write = true;
				return;
			}
			tls_fail_ssl(t, "read", n);
			return;
		}
		t->rlen += (size_t)n;
		t->wait_since = 0;
		size_t off = 0;
		while (t->state == TLS_READY && t->rlen - off >= 2) {
			size_t mlen = (size_t)t->rbuf[off] << 8 | t->rbuf[off + 1];
			if (t->rlen - off - 2 < mlen)
				break;
			tls_message(t, t->rbuf + off + 2, mlen);
			off += 2 + mlen;
		}
		if (t->state != TLS_READY)
			return;	/* closed from a callback: rlen was reset */
		if (off > 0) {
			memmove(t->rbuf, t->rbuf + off, t->rlen - off);
			t->rlen -= off;
		}
	}
}

/* Hands the queued queries to TLS, TLS_WBUF octets at a time. */
static void
tls_write(struct upstream_tls *t)
{
	struct upstream *u = t->u;

	t->want_write = false;
	while (t->state == TLS_READY) {
		if (t->wlen == 0) {
			while (!upstream_link_empty(&t->wq)) {
				struct upstream_attempt *a =
					UPSTREAM_CONTAINER(t->wq.next, struct upstream_attempt, wlink);
				if (t->wlen + a->qlen + 2 > sizeof(t->wbuf))
					break;
				memcpy(t->wbuf + t->wlen, a->qbuf, a->qlen + 2);
				t->wlen += a->qlen + 2;
				upstream_link_remove(&a->wlink);
				u->st.sent_tls++;
			}
			if (t->wlen == 0)
				return;
		}
		/* a retry after WANT_WRITE passes the same octets, as OpenSSL requires */
		int n = SSL_write(t->ssl, t->wbuf, (int)t->wlen);
		if (n <= 0) {
			int e = SSL_get_error(t->ssl, n);
			if (e == SSL_ERROR_WANT_WRITE)
				t->want_write = true;
			else if (e != SSL_ERROR_WANT_READ)
				tls_fail_ssl(t, "write", n);
			return;
		}
		t->wlen = 0;	/* no partial writes: SSL_MODE_ENABLE_PARTIAL_WRITE is off */
		if (t->wait_since == 0)
			t->wait_since = uv_now(u->loop);
	}
}

static void
tls_handshake(struct upstream_tls *t)
{
	struct upstream *u = t->u;
	int ret = SSL_connect(t->ssl);

	if (ret != 1) {
		int e = SSL_get_error(t->ssl, ret);
		if (e == SSL_ERROR_WANT_READ)
			return;
		if (e == SSL_ERROR_WANT_WRITE) {
			t->want_write = true;
			return;
		}
		tls_fail_ssl(t, "handshake", ret);
		return;
	}
	t->state = TLS_READY;
	t->fails = 0;
	t->retry_at = 0;
	u->st.tls_connections++;
	if (SSL_session_reused(t->ssl))
		u->st.tls_resumed++;
	uv_timer_stop(&t->timer);
	log_debug("upstream: '%s': tls connection up (%s%s)", t->text, SSL_get_version(t->ssl),
		  SSL_session_reused(t->ssl) ? ", resumed" : "");
	if (t->nattempts == 0)
		uv_timer_start(&t->timer, on_tls_timer, TLS_IDLE_MS, 0);
}

/* Moves the connection on as far as the socket allows, then sets what to poll for. */
static void
tls_drive(struct upstream_tls *t)
{
	if (t->state == TLS_IDLE) {
		if (upstream_link_empty(&t->wq))
			return;
		int err = tls_connect(t);
		if (err == 0)
			return;	/* connect in progress */
		log_warning("upstream: '%s': tls: %s", t->text, uv_strerror(err));
		t->u->st.tls_failures++;
		/* the backoff also makes the attempts failing over refuse this connection */
		t->retry_at = uv_now(t->u->loop) + TLS_BACKOFF_MIN_MS;
		while (!upstream_link_empty(&t->attempts)) {
			struct upstream_attempt *a =
				UPSTREAM_CONTAINER(t->attempts.next, struct upstream_attempt, slink);
			upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
		}
		return;
	}
	if (t->state == TLS_HANDSHAKE)
		tls_handshake(t);
	if (t->state == TLS_READY) {
		tls_read(t);
		if (t->state == TLS_READY)
			tls_write(t);
	}
	if (t->state == TLS_HANDSHAKE || t->state == TLS_READY)
		tls_poll(t, UV_READABLE | (t->want_write ? UV_WRITABLE : 0));
}

static void
on_tls_poll(uv_poll_t *handle, int status, int events)
{
	struct upstream_tls *t = handle->data;

	(void)events;
	if (t->state == TLS_CLOSING || t->state == TLS_IDLE)
		return;
	if (status < 0 || t->state == TLS_CONNECTING) {
		/* libuv reports POLLERR as UV_EBADF: the socket's own error says what happened
		 * (ECONNREFUSED, ETIMEDOUT, ...) */
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		if (getsockopt(t->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) != 0)
			soerr = errno;
		if (soerr != 0 || status < 0) {
			log_warning("upstream: '%s': tls: %s: %s", t->text,
				    t->state == TLS_CONNECTING ? "connect" : "socket",
				    soerr != 0 ? strerror(soerr) : uv_strerror(status));
			tls_drop(t, true);
			return;
		}
		t->state = TLS_HANDSHAKE;
	}
	tls_drive(t);
}

/* ------------------------------------------------------------------------------------------ */
/* attempts */

int
upstream_tls_register(struct upstream_attempt *a)
{
	struct upstream *u = a->u;
	const struct upstream_server *s = &a->req->servers->s[a->server];
	struct upstream_tls *t;
	uint64_t now = uv_now(u->loop);

	if (u->tls_ctx == NULL)
		return UV_EINVAL;	/* cannot happen: configured with the server list */
	t = tls_get(u, s);
	if (t == NULL)
		return UV_ENOMEM;
	if ((t->state == TLS_IDLE || t->state == TLS_CLOSING) && now < t->retry_at)
		return UV_ECONNREFUSED;	/* the last connect or handshake failed: backoff */
	t->timeout_ms = a->req->servers->timeout_ms;
	for (;;) {
		uint16_t id = upstream_random_id(u);
		struct upstream_attempt *o = t->ids[id & (UPSTREAM_SOCK_BUCKETS - 1)];
		while (o != NULL && o->id != id)
			o = o->idnext;
		if (o == NULL) {
			a->id = id;
			break;
		}
	}
	struct upstream_attempt **b = &t->ids[a->id & (UPSTREAM_SOCK_BUCKETS - 1)];
	a->idnext = *b;
	*b = a;
	a->tls = t;
	upstream_link_append(&t->attempts, &a->slink);
	t->nattempts++;
	if (t->state == TLS_READY)
		uv_timer_stop(&t->timer);	/* idle timer */
	return 0;
}

int
upstream_tls_send(struct upstream_attempt *a)
{
	struct upstream_tls *t = a->tls;
	struct upstream *u = a->u;

	upstream_link_append(&t->wq, &a->wlink);
	upstream_attempt_start_timer(a);
	if (t->state == TLS_READY || t->state == TLS_IDLE) {
		u->tls_dirty = true;
		upstream_kick(u);
	}
	return 0;
}

void
upstream_tls_unregister(struct upstream_attempt *a)
{
	struct upstream_tls *t = a->tls;

	if (t == NULL)
		return;
	for (struct upstream_attempt **p = &t->ids[a->id & (UPSTREAM_SOCK_BUCKETS - 1)];;
	     p = &(*p)->idnext) {
		INSIST(*p != NULL);
		if (*p == a) {
			*p = a->idnext;
			break;
		}
	}
	a->idnext = NULL;
	a->tls = NULL;
	upstream_link_remove(&a->slink);
	upstream_link_remove(&a->wlink);
	INSIST(t->nattempts > 0);
	if (--t->nattempts > 0)
		return;
	if (t->retired) {
		if (t->state != TLS_IDLE && t->state != TLS_CLOSING)
			tls_drop(t, false);
		tls_maybe_free(t);
	} else if (t->state == TLS_READY) {
		uv_timer_start(&t->timer, on_tls_timer, TLS_IDLE_MS, 0);
	}
}

void
upstream_tls_flush(struct upstream *u)
{
	uint64_t now = uv_now(u->loop);

	u->tls_dirty = false;
	for (struct upstream_tls *t = u->tls; t != NULL; t = t->next) {
		if (upstream_link_empty(&t->wq))
			continue;
		uint64_t limit = (uint64_t)t->timeout_ms * UPSTREAM_MAX_ATTEMPTS;
		if (t->state == TLS_READY && t->wait_since != 0 && now - t->wait_since >= limit) {
			/* a connection that swallows queries (a middlebox that dropped it, a
			 * server that hangs): its queries fail over, the new ones get a new one */
			log_warning("upstream: '%s': tls: no reply on the connection for %u ms, "
				    "reconnecting", t->text, (unsigned)(now - t->wait_since));
			tls_drop(t, true);
			continue;
		}
		if (t->state == TLS_READY || (t->state == TLS_IDLE && !t->retired))
			tls_drive(t);
	}
}

void
upstream_tls_close(struct upstream *u)
{
	for (struct upstream_tls *t = u->tls; t != NULL;) {
		struct upstream_tls *next = t->next;
		tls_retire(t);
		t = next;
	}
}

void
upstream_tls_free(struct upstream *u)
{
	INSIST(u->tls == NULL);
	SSL_CTX_free(u->tls_ctx);
	u->tls_ctx = NULL;
	free(u->tls_ca);
	u->tls_ca = NULL;
}
