/*
 * upstream_doh: DNS over HTTPS to the https:// servers (RFC 8484: POST of the wire-format query
 * as application/dns-message).
 *
 * One libcurl multi handle for the upstream, driven from the event loop: its sockets are watched
 * by uv_poll handles (CURLMOPT_SOCKETFUNCTION), its timeout by one uv_timer
 * (CURLMOPT_TIMERFUNCTION); curl never blocks and never runs a thread of its own (a URL's host
 * name is never resolved: an IP address, or a name with its bootstrap address given to curl as
 * CURLOPT_RESOLVE). HTTP/2 is negotiated when the server offers it and transfers to one server
 * share its connection (CURLPIPE_MULTIPLEX, CURLOPT_PIPEWAIT); the connection is kept alive in
 * the multi handle's cache between queries.
 *
 * An attempt is one transfer: an easy handle from a pool (kept with its reply buffer and fixed
 * options: no allocation of ours per query; curl allocates its per-transfer state itself), the
 * attempt's timer as for UDP (a timed-out transfer goes on until the request's deadline, and a
 * late answer still counts). The reply must be HTTP 200 and pass the same checks as a UDP reply
 * (ID, QR, question: dnsmsg_check_reply; then dnsmsg_judge_reply). Certificate verification is
 * libcurl's (OpenSSL): the chain against upstream.tls_ca or the system store, the name (or the IP
 * address) of the URL's host; a failure is logged with curl's reason and fails the attempt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "check.h"
#include "log.h"
#include "upstream_int.h"

#define DOH_CA_DEFAULT	"/etc/ssl/certs/ca-certificates.crt"
#define DOH_POOL_MAX	64	/* idle easy handles kept */
#define DOH_REPLY_MAX	65535

struct upstream_doh_xfer {
	CURL *e;
	struct upstream_attempt *a;	/* while running */
	unsigned gen;			/* d->ca_gen when made (its CAINFO) */
	size_t len;
	bool overflow;
	char err[CURL_ERROR_SIZE];
	struct upstream_doh_xfer *next; /* pool */
	uint8_t buf[DOH_REPLY_MAX];
};

struct doh_sock {
	struct upstream_doh *d;
	uv_poll_t poll;
	curl_socket_t fd;
	struct doh_sock *prev, *next;	/* d->socks, until closed */
};

/* A CURLOPT_RESOLVE list made for a server list; kept until shutdown, as transfers added with it
 * may still run after a reload. */
struct doh_resolve {
	struct curl_slist *list;
	struct doh_resolve *next;
};

struct upstream_doh {
	struct upstream *u;
	CURLM *multi;			/* NULL until the first transfer */
	uv_timer_t timer;		/* initialised with multi */
	bool closing;
	char *ca;			/* CAINFO of the pooled handles */
	unsigned ca_gen;		/* bumped when ca changes: older handles are not pooled */
	struct curl_slist *headers;
	struct doh_resolve *resolves;	/* newest first */
	struct upstream_doh_xfer *pool;
	unsigned npool;
	struct doh_sock *socks;
};

static void check_done(struct upstream_doh *d);

/* ------------------------------------------------------------------------------------------ */
/* curl's sockets and timer on the loop */

static void
on_doh_sock_close(uv_handle_t *handle)
{
	struct doh_sock *ds = handle->data;
	struct upstream *u = ds->d->u;

	free(ds);
	upstream_handle_released(u);
}

static void
sock_close(struct doh_sock *ds)
{
	struct upstream_doh *d = ds->d;

	if (ds->prev != NULL)
		ds->prev->next = ds->next;
	else
		d->socks = ds->next;
	if (ds->next != NULL)
		ds->next->prev = ds->prev;
	uv_close((uv_handle_t *)&ds->poll, on_doh_sock_close);
}

static void
on_doh_poll(uv_poll_t *handle, int status, int events)
{
	struct doh_sock *ds = handle->data;
	struct upstream_doh *d = ds->d;
	int flags = 0, running;

	if (status < 0)
		flags = CURL_CSELECT_ERR;
	else
		flags = (events & UV_READABLE ? CURL_CSELECT_IN : 0) |
			(events & UV_WRITABLE ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(d->multi, ds->fd, flags, &running);	/* may close ds */
	check_done(d);
}

static int
on_curl_socket(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
	struct upstream_doh *d = userp;
	struct doh_sock *ds = socketp;

	(void)e;
	if (what == CURL_POLL_REMOVE) {
		if (ds != NULL) {
			curl_multi_assign(d->multi, s, NULL);
			sock_close(ds);
		}
		return 0;
	}
	if (ds == NULL) {
		ds = calloc(1, sizeof(*ds));
		if (ds == NULL)
			return -1;
		if (uv_poll_init_socket(d->u->loop, &ds->poll, s) != 0) {
			free(ds);
			return -1;
		}
		ds->d = d;
		ds->fd = s;
		ds->poll.data = ds;
		ds->next = d->socks;
		if (d->socks != NULL)
			d->socks->prev = ds;
		d->socks = ds;
		d->u->live++;
		curl_multi_assign(d->multi, s, ds);
	}
	int ev = (what & CURL_POLL_IN ? UV_READABLE : 0) | (what & CURL_POLL_OUT ? UV_WRITABLE : 0);
	uv_poll_start(&ds->poll, ev, on_doh_poll);
	return 0;
}

static void
on_doh_timer(uv_timer_t *timer)
{
	struct upstream_doh *d = timer->data;
	int running;

	curl_multi_socket_action(d->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(d);
}

static int
on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct upstream_doh *d = userp;

	(void)multi;
	if (d->closing)
		return 0;
	if (timeout_ms < 0)
		uv_timer_stop(&d->timer);
	else
		uv_timer_start(&d->timer, on_doh_timer, (uint64_t)timeout_ms, 0);	/* 0: next turn */
	return 0;
}

static void
on_doh_timer_close(uv_handle_t *handle)
{
	struct upstream_doh *d = handle->data;

	upstream_handle_released(d->u);
}

/* ------------------------------------------------------------------------------------------ */
/* transfers */

static size_t
on_curl_write(char *ptr, size_t size, size_t n, void *userdata)
{
	struct upstream_doh_xfer *x = userdata;
	size_t len = size * n;

	if (len > DOH_REPLY_MAX - x->len) {
		x->overflow = true;
		return 0;	/* aborts the transfer (CURLE_WRITE_ERROR) */
	}
	memcpy(x->buf + x->len, ptr, len);
	x->len += len;
	return len;
}

static struct upstream_doh_xfer *
xfer_get(struct upstream_doh *d)
{
	struct upstream_doh_xfer *x = d->pool;

	if (x != NULL) {
		d->pool = x->next;
		d->npool--;
		return x;
	}
	x = malloc(sizeof(*x));
	if (x == NULL)
		return NULL;
	x->e = curl_easy_init();
	if (x->e == NULL) {
		free(x);
		return NULL;
	}
	CURL *e = x->e;
	x->gen = d->ca_gen;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, d->headers);
	curl_easy_setopt(e, CURLOPT_CAINFO, d->ca);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
	curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "https");
	curl_easy_setopt(e, CURLOPT_USERAGENT, "veto");
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_curl_write);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->err);
	return x;
}

static void
xfer_free(struct upstream_doh_xfer *x)
{
	curl_easy_cleanup(x->e);
	free(x);
}

static void
xfer_put(struct upstream_doh *d, struct upstream_doh_xfer *x)
{
	x->a = NULL;
	if (d->npool >= DOH_POOL_MAX || d->closing || x->gen != d->ca_gen) {
		xfer_free(x);
		return;
	}
	x->next = d->pool;
	d->pool = x;
	d->npool++;
}

static void
pool_flush(struct upstream_doh *d)
{
	while (d->pool != NULL) {
		struct upstream_doh_xfer *x = d->pool;
		d->pool = x->next;
		xfer_free(x);
	}
	d->npool = 0;
}

/* The result of a finished transfer for its attempt. The transfer leaves the attempt first:
 * upstream_attempt_done() stops the attempt, which would return x to the pool or free it
 * (pool full, CA changed, closing) while its buffer is still the reply being handed on. */
static void
xfer_done(struct upstream_doh *d, struct upstream_doh_xfer *x, CURLcode rc)
{
	struct upstream_attempt *a = x->a;
	struct upstream *u = d->u;
	const char *server = a->req->servers->s[a->server].text;
	enum upstream_result r = UPSTREAM_RESULT_FAILED;
	const uint8_t *reply = NULL;
	long code = 0;
	bool tc = false;

	a->doh = NULL;
	curl_multi_remove_handle(d->multi, x->e);
	if (rc != CURLE_OK) {
		const char *why = x->err[0] != '\0' ? x->err : curl_easy_strerror(rc);
		if (rc == CURLE_PEER_FAILED_VERIFICATION)
			log_warning("upstream: '%s': https: certificate does not verify: %s", server,
				    why);
		else if (x->overflow)
			log_warning("upstream: '%s': https: reply larger than %u octets", server,
				    (unsigned)DOH_REPLY_MAX);
		else
			log_warning("upstream: '%s': https: %s", server, why);
	} else if (curl_easy_getinfo(x->e, CURLINFO_RESPONSE_CODE, &code), code != 200) {
		log_warning("upstream: '%s': https: HTTP status %ld", server, code);
	} else if (dnsmsg_check_reply(x->buf, x->len, a->id, &a->req->q, &tc) != 0) {
		u->st.dropped_replies++;
	} else if (!tc) {
		r = dnsmsg_judge_reply(x->buf, x->len) == 0 ? UPSTREAM_RESULT_REPLY
							    : UPSTREAM_RESULT_BAD;
		reply = x->buf;
	}
	upstream_attempt_done(a, r, reply, reply != NULL ? x->len : 0);
	xfer_put(d, x);	/* after the reply's last reader */
}

static void
check_done(struct upstream_doh *d)
{
	CURLMsg *m;
	int left;

	/* a callback run from xfer_done may close the upstream (d->multi gone) */
	while (d->multi != NULL && (m = curl_multi_info_read(d->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		CURLcode rc = m->data.result;
		struct upstream_doh_xfer *x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		/* m is invalid once the handle is removed (by upstream_doh_stop, from xfer_done) */
		if (x != NULL && x->a != NULL)
			xfer_done(d, x, rc);
	}
}

/* ------------------------------------------------------------------------------------------ */
/* the interface */

static bool
uses_https(const struct upstream_servers *servers)
{
	for (size_t i = 0; i < servers->n; i++)
		if (servers->s[i].transport == CONFIG_TRANSPORT_HTTPS)
			return true;
	return false;
}

static int
doh_new(struct upstream *u)
{
	struct upstream_doh *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return -ENOMEM;
	/* reference counted by curl; resolver/lists/ also holds one */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		free(d);
		return -ENOMEM;
	}
	d->u = u;
	d->headers = curl_slist_append(NULL, "content-type: application/dns-message");
	struct curl_slist *h =
		d->headers ? curl_slist_append(d->headers, "accept: application/dns-message") : NULL;
	if (h == NULL) {
		curl_slist_free_all(d->headers);
		curl_global_cleanup();
		free(d);
		return -ENOMEM;
	}
	d->headers = h;
	u->doh = d;
	return 0;
}

/* "host:port:address" for every server whose URL names its host. */
static int
resolve_list(const struct upstream_servers *servers, struct curl_slist **out)
{
	struct curl_slist *list = NULL;

	for (size_t i = 0; i < servers->n; i++) {
		const struct upstream_server *s = &servers->s[i];
		char addr[INET6_ADDRSTRLEN], line[300];
		unsigned port;
		if (s->transport != CONFIG_TRANSPORT_HTTPS || s->tls_name == NULL)
			continue;
		if (s->ss.ss_family == AF_INET) {
			const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->ss;
			inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
			port = ntohs(sin->sin_port);
			snprintf(line, sizeof(line), "%s:%u:%s", s->tls_name, port, addr);
		} else {
			const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->ss;
			inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
			port = ntohs(sin6->sin6_port);
			snprintf(line, sizeof(line), "%s:%u:[%s]", s->tls_name, port, addr);
		}
		struct curl_slist *l = curl_slist_append(list, line);
		if (l == NULL) {
			curl_slist_free_all(list);
			return -ENOMEM;
		}
		list = l;
	}
	*out = list;
	return 0;
}

int
upstream_doh_configure(struct upstream *u, const struct config *cfg,
		       const struct upstream_servers *servers)
{
	const char *ca = cfg->upstream.tls_ca != NULL ? cfg->upstream.tls_ca : DOH_CA_DEFAULT;
	struct curl_slist *list = NULL;
	int err;

	if (!uses_https(servers))
		return 0;
	if (u->doh == NULL && (err = doh_new(u)) != 0)
		return err;
	struct upstream_doh *d = u->doh;
	FILE *f = fopen(ca, "re");
	if (f == NULL) {
		log_error("upstream.tls_ca: cannot read '%s': %s", ca, strerror(errno));
		return -EINVAL;
	}
	fclose(f);
	if ((err = resolve_list(servers, &list)) != 0)
		return err;
	struct doh_resolve *r = NULL;
	if (list != NULL) {
		r = malloc(sizeof(*r));
		if (r == NULL) {
			curl_slist_free_all(list);
			return -ENOMEM;
		}
		r->list = list;
	}
	if (d->ca == NULL || strcmp(d->ca, ca) != 0) {
		char *copy = strdup(ca);
		if (copy == NULL) {
			if (r != NULL)
				curl_slist_free_all(r->list);
			free(r);
			return -ENOMEM;
		}
		free(d->ca);
		d->ca = copy;
		d->ca_gen++;
		pool_flush(d);	/* the pooled handles carry the old CAINFO */
	}
	if (r != NULL) {
		r->next = d->resolves;
		d->resolves = r;
	}
	return 0;
}

int
upstream_doh_start(struct upstream_attempt *a)
{
	struct upstream *u = a->u;
	struct upstream_doh *d = u->doh;
	const struct upstream_server *s = &a->req->servers->s[a->server];

	if (d == NULL || d->closing)
		return UV_EINVAL;
	if (d->multi == NULL) {
		d->multi = curl_multi_init();
		if (d->multi == NULL)
			return UV_ENOMEM;
		curl_multi_setopt(d->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
		curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
		curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
		curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
		curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
		uv_timer_init(u->loop, &d->timer);
		d->timer.data = d;
		u->live++;
	}
	struct upstream_doh_xfer *x = xfer_get(d);
	if (x == NULL)
		return UV_ENOMEM;
	x->a = a;
	x->len = 0;
	x->overflow = false;
	x->err[0] = '\0';
	curl_easy_setopt(x->e, CURLOPT_URL, s->url);
	curl_easy_setopt(x->e, CURLOPT_POSTFIELDSIZE, (long)a->qlen);
	curl_easy_setopt(x->e, CURLOPT_POSTFIELDS, (const char *)a->qbuf + 2);
	curl_easy_setopt(x->e, CURLOPT_RESOLVE, d->resolves != NULL ? d->resolves->list : NULL);
	if (curl_multi_add_handle(d->multi, x->e) != CURLM_OK) {
		xfer_put(d, x);
		return UV_ENOMEM;
	}
	a->doh = x;
	u->st.sent_https++;
	upstream_attempt_start_timer(a);
	return 0;
}

void
upstream_doh_stop(struct upstream_attempt *a)
{
	struct upstream_doh_xfer *x = a->doh;

	if (x == NULL)
		return;
	struct upstream_doh *d = a->u->doh;
	a->doh = NULL;
	if (d->multi != NULL)
		curl_multi_remove_handle(d->multi, x->e);
	xfer_put(d, x);
}

void
upstream_doh_close(struct upstream *u)
{
	struct upstream_doh *d = u->doh;

	if (d == NULL || d->closing)
		return;
	d->closing = true;
	pool_flush(d);
	if (d->multi == NULL)
		return;
	curl_multi_cleanup(d->multi);	/* closes the connections (their sockets leave d->socks) */
	d->multi = NULL;
	while (d->socks != NULL)
		sock_close(d->socks);
	uv_close((uv_handle_t *)&d->timer, on_doh_timer_close);
}

void
upstream_doh_free(struct upstream *u)
{
	struct upstream_doh *d = u->doh;

	if (d == NULL)
		return;
	INSIST(d->socks == NULL && d->multi == NULL);	/* upstream_doh_close ran, or none */
	pool_flush(d);
	while (d->resolves != NULL) {
		struct doh_resolve *r = d->resolves;
		d->resolves = r->next;
		curl_slist_free_all(r->list);
		free(r);
	}
	curl_slist_free_all(d->headers);
	free(d->ca);
	free(d);
	u->doh = NULL;
	curl_global_cleanup();
}
