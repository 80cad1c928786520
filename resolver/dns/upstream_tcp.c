/*
 * upstream_tcp: the TCP retry of a query whose UDP reply was truncated (RFC 7766 framing: a
 * 2-octet length before each message). Same server, fresh ID, the attempt's timer covers the
 * connection, the send and the reply. A reply that fails validation is counted and dropped and
 * the next message on the stream is awaited; a connection closed before a valid reply, or a
 * reply still truncated, is a failed attempt.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "upstream_int.h"

/* A complete message of a->tneed octets is in a->tbuf. */
static void
tcp_message(struct upstream_attempt *a)
{
	bool tc = false;

	if (dnsmsg_check_reply(a->tbuf, a->tneed, a->id, &a->req->q, &tc) != 0) {
		a->u->st.dropped_replies++;
		return;
	}
	enum upstream_result r = UPSTREAM_RESULT_FAILED;	/* still truncated over TCP */
	if (!tc)
		r = dnsmsg_judge_reply(a->tbuf, a->tneed) == 0 ? UPSTREAM_RESULT_REPLY
							       : UPSTREAM_RESULT_BAD;
	upstream_attempt_done(a, r, a->tbuf, a->tneed);
}

static void
on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
	struct upstream_attempt *a = stream->data;
	const uint8_t *p = (const uint8_t *)buf->base;
	size_t n;

	if (a->finished || nread == 0)
		return;
	if (nread < 0) {
		log_debug("upstream: '%s': tcp read: %s", a->req->servers->s[a->server].text,
			  uv_strerror((int)nread));
		upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
		return;
	}
	n = (size_t)nread;
	while (n > 0 && !a->finished) {
		if (a->thave_len < 2) {
			a->tlen[a->thave_len++] = *p++;
			n--;
			if (a->thave_len < 2)
				continue;
			a->tneed = (size_t)a->tlen[0] << 8 | a->tlen[1];
			a->tgot = 0;
			if (a->tneed < DNSMSG_HEADER_LEN) {
				/* cannot be a reply; the framing may still be intact */
				a->u->st.dropped_replies++;
				a->thave_len = 0;
				a->tneed = 0;
				continue;
			}
			if (a->tneed > a->tcap) {
				uint8_t *t = realloc(a->tbuf, a->tneed);
				if (t == NULL) {
					upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
					return;
				}
				a->tbuf = t;
				a->tcap = a->tneed;
			}
			continue;
		}
		size_t take = a->tneed - a->tgot;
		if (take > n)
			take = n;
		memcpy(a->tbuf + a->tgot, p, take);
		a->tgot += take;
		p += take;
		n -= take;
		if (a->tgot == a->tneed) {
			a->thave_len = 0;
			tcp_message(a);
		}
	}
}

static void
on_tcp_write(uv_write_t *wr, int status)
{
	struct upstream_attempt *a = wr->data;

	if (status >= 0)
		a->u->st.sent_tcp++;
	if (!a->finished && status < 0) {
		log_debug("upstream: '%s': tcp write: %s", a->req->servers->s[a->server].text,
			  uv_strerror(status));
		upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
	}
	upstream_attempt_unpend(a);
}

static void
on_tcp_connect(uv_connect_t *cr, int status)
{
	struct upstream_attempt *a = cr->data;
	int err = status;

	if (a->finished)
		goto cleanup;
	if (err == 0)
		err = uv_read_start((uv_stream_t *)&a->h.tcp, upstream_on_attempt_alloc, on_tcp_read);
	if (err == 0) {
		uv_buf_t b = uv_buf_init((char *)a->qbuf, (unsigned)(a->qlen + 2));
		err = uv_write(&a->write, (uv_stream_t *)&a->h.tcp, &b, 1, on_tcp_write);
		if (err == 0) {
			a->write.data = a;
			a->pending++;
		}
	}
	if (err != 0) {
		log_debug("upstream: '%s': tcp: %s", a->req->servers->s[a->server].text,
			  uv_strerror(err));
		upstream_attempt_done(a, UPSTREAM_RESULT_FAILED, NULL, 0);
	}
cleanup:
	upstream_attempt_unpend(a);
}

int
upstream_tcp_start(struct upstream_attempt *a)
{
	const struct upstream_server *s = &a->req->servers->s[a->server];
	int err;

	err = uv_tcp_init_ex(a->u->loop, &a->h.tcp, s->ss.ss_family);
	if (err != 0)
		return err;
	a->h.tcp.data = a;
	a->h_open = true;
	a->pending++;
	uv_tcp_nodelay(&a->h.tcp, 1);
	err = uv_tcp_connect(&a->connect, &a->h.tcp, (const struct sockaddr *)&s->ss,
			     on_tcp_connect);
	if (err != 0)
		return err;
	a->connect.data = a;
	a->pending++;
	/* the timer covers the handshake too: a server that drops SYNs must not hold us */
	upstream_attempt_start_timer(a);
	return 0;
}
