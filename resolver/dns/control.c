/*
 * control: the local control channel (see control.h).
 */
#include "control.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "mac.h"
#include "text.h"

/* ---- the protocol ---- */

/* Decodes word [p, p+n) into dst (size octets). 0, or -EINVAL (bad escape, NUL, too long). */
static int
decode(const char *p, size_t n, char *dst, size_t size)
{
	size_t w = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '%') {
			if (i + 2 >= n || mac_hexval(p[i + 1]) < 0 || mac_hexval(p[i + 2]) < 0)
				return -EINVAL;
			c = (unsigned char)(mac_hexval(p[i + 1]) * 16 + mac_hexval(p[i + 2]));
			i += 2;
		}
		if (c < 0x20 || c == 0x7f) /* raw or escaped: never in a name */
			return -EINVAL;
		if (w + 1 >= size)
			return -EINVAL;
		dst[w++] = (char)c;
	}
	dst[w] = '\0';
	return 0;
}

int
control_parse(const char *line, size_t len, struct devices_admin_req *req, char *err, size_t size)
{
	const char *words[4];
	size_t lens[4], nw = 0, i = 0;
	char verb[8];

	memset(req, 0, sizeof(*req));
	if (len > CONTROL_LINE_MAX) {
		snprintf(err, size, "request too long");
		return -EINVAL;
	}
	if (len > 0 && line[len - 1] == '\r')
		len--;
	while (i < len) {
		size_t j = i;
		while (j < len && line[j] != ' ')
			j++;
		if (j == i || nw == 4) {
			snprintf(err, size,
			         j == i ? "empty word in the request"
			                : "too many words in the request");
			return -EINVAL;
		}
		words[nw] = line + i;
		lens[nw++] = j - i;
		i = j + (j < len);
		if (j < len && j + 1 == len) {
			snprintf(err, size, "empty word in the request");
			return -EINVAL;
		}
	}
	if (nw == 0) {
		snprintf(err, size, "empty request");
		return -EINVAL;
	}
	if (lens[0] >= sizeof(verb))
		goto bad_verb;
	memcpy(verb, words[0], lens[0]);
	verb[lens[0]] = '\0';
	if (strcmp(verb, "forget") == 0)
		req->op = DEVICES_ADMIN_FORGET;
	else if (strcmp(verb, "pin") == 0)
		req->op = DEVICES_ADMIN_PIN;
	else if (strcmp(verb, "unpin") == 0)
		req->op = DEVICES_ADMIN_UNPIN;
	else
		goto bad_verb;
	if (nw < 2) {
		snprintf(err, size, "%s: no device given", verb);
		return -EINVAL;
	}
	if (decode(words[1], lens[1], req->target, sizeof(req->target)) != 0 ||
	    req->target[0] == '\0') {
		snprintf(err, size, "%s: bad device (escapes, control octets or too long)", verb);
		return -EINVAL;
	}
	if (req->op != DEVICES_ADMIN_PIN && nw > 2) {
		snprintf(err, size, "%s: unexpected words after the device", verb);
		return -EINVAL;
	}
	for (size_t k = 2; k < nw; k++) {
		char *dst;
		size_t dsize, skip;
		if (lens[k] > 7 && memcmp(words[k], "vendor=", 7) == 0) {
			dst = req->vendor;
			dsize = sizeof(req->vendor);
			skip = 7;
		} else if (lens[k] > 6 && memcmp(words[k], "group=", 6) == 0) {
			dst = req->group;
			dsize = sizeof(req->group);
			skip = 6;
		} else {
			snprintf(err, size, "pin: expected vendor=VENDOR or group=GROUP");
			return -EINVAL;
		}
		if (dst[0] != '\0') {
			snprintf(err, size, "pin: %.*s given twice", (int)skip - 1, words[k]);
			return -EINVAL;
		}
		if (decode(words[k] + skip, lens[k] - skip, dst, dsize) != 0 || dst[0] == '\0') {
			snprintf(err, size, "pin: bad %.*s (escapes, control octets or too long)",
			         (int)skip - 1, words[k]);
			return -EINVAL;
		}
	}
	if (req->op == DEVICES_ADMIN_PIN && req->vendor[0] == '\0' && req->group[0] == '\0') {
		snprintf(err, size, "pin: give vendor=VENDOR, group=GROUP or both");
		return -EINVAL;
	}
	return 0;
bad_verb:
	snprintf(err, size, "unknown request (expected forget, pin, unpin or health)");
	return -EINVAL;
}

/* Appends " " (unless first) and s encoded; false when it does not fit. */
static bool
encode(char *buf, size_t size, size_t *off, const char *prefix, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t w = *off;
	if (w > 0) {
		if (w + 1 >= size)
			return false;
		buf[w++] = ' ';
	}
	for (const char *p = prefix; *p != '\0'; p++) {
		if (w + 1 >= size)
			return false;
		buf[w++] = *p;
	}
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (*p <= 0x20 || *p == 0x7f || *p == '%') {
			if (w + 3 >= size)
				return false;
			buf[w++] = '%';
			buf[w++] = hex[*p >> 4];
			buf[w++] = hex[*p & 15];
		} else {
			if (w + 1 >= size)
				return false;
			buf[w++] = (char)*p;
		}
	}
	buf[w] = '\0';
	*off = w;
	return true;
}

int
control_format(const struct devices_admin_req *req, char *buf, size_t size)
{
	size_t off = 0;
	if (size > CONTROL_LINE_MAX + 1)
		size = CONTROL_LINE_MAX + 1; /* the line and its newline */
	if (size == 0)
		return -ENAMETOOLONG;
	buf[0] = '\0';
	bool ok = encode(buf, size, &off, "", devices_admin_op_name(req->op)) &&
	          encode(buf, size, &off, "", req->target);
	if (ok && req->op == DEVICES_ADMIN_PIN && req->vendor[0] != '\0')
		ok = encode(buf, size, &off, "vendor=", req->vendor);
	if (ok && req->op == DEVICES_ADMIN_PIN && req->group[0] != '\0')
		ok = encode(buf, size, &off, "group=", req->group);
	if (!ok || off + 1 >= size)
		return -ENAMETOOLONG;
	buf[off++] = '\n';
	buf[off] = '\0';
	return 0;
}

int
control_path(const char *state_dir, char *buf, size_t size)
{
	struct sockaddr_un sun;
	const char *dir = state_dir != NULL ? state_dir : "/var/lib/veto";
	int n = snprintf(buf, size, "%s/%s", dir, CONTROL_SOCKET_FILE);
	if (n < 0 || (size_t)n >= size || (size_t)n >= sizeof(sun.sun_path))
		return -ENAMETOOLONG;
	return 0;
}

/* ---- the channel ---- */

struct control_client {
	uv_pipe_t pipe;
	uv_timer_t timer;
	uv_write_t wr;
	struct control *c;
	struct control_client *prev, *next;
	unsigned open; /* handles not closed yet */
	bool closing, answered;
	bool want_stats; /* a `stats` request waiting for control_stats_ready */
	uint32_t uid;
	size_t len;
	char buf[CONTROL_LINE_MAX + 1];
	char reply[CONTROL_REPLY_MAX];
	char *long_reply; /* owned: the `lists` reply */
};

struct control {
	uv_loop_t *loop;
	uv_pipe_t listener;
	struct devices *devices; /* NULL until the device table starts */
	struct updater *lists;
	control_stats_cb stats;
	void *stats_arg;
	void (*stats_ask)(void *arg);
	void *stats_ask_arg;
	control_text_cb policy;
	void *policy_arg;
	char *path;
	struct control_client *clients;
	unsigned nclients; /* in clients */
	unsigned open;     /* the listener, clients, refused connections */
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};

static void
maybe_closed(struct control *c)
{
	if (!c->closing || c->open > 0 || c->close_cb == NULL)
		return;
	void (*cb)(void *) = c->close_cb;
	c->close_cb = NULL;
	cb(c->close_arg);
}

static void
on_client_handle_closed(uv_handle_t *h)
{
	struct control_client *cl = h->data;
	struct control *c = cl->c;
	if (--cl->open > 0)
		return;
	if (cl->prev != NULL)
		cl->prev->next = cl->next;
	else
		c->clients = cl->next;
	if (cl->next != NULL)
		cl->next->prev = cl->prev;
	c->nclients--;
	free(cl->long_reply);
	free(cl);
	c->open--;
	maybe_closed(c);
}

static void
client_close(struct control_client *cl)
{
	if (cl->closing)
		return;
	cl->closing = true;
	uv_timer_stop(&cl->timer);
	uv_close((uv_handle_t *)&cl->timer, on_client_handle_closed);
	uv_close((uv_handle_t *)&cl->pipe, on_client_handle_closed);
}

static void
on_reply_written(uv_write_t *req, int status)
{
	struct control_client *cl = req->data;
	(void)status; /* UV_ECANCELED when closed first: nothing more to do either way */
	client_close(cl);
}

/* Sends "ok TEXT" / "error: TEXT" and closes after it. */
static void
reply(struct control_client *cl, bool ok, const char *text)
{
	char safe[CONTROL_REPLY_MAX];
	if (cl->answered || cl->closing)
		return;
	cl->answered = true;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	uv_timer_stop(&cl->timer);
	int n = snprintf(cl->reply, sizeof(cl->reply), "%s%s\n",
	                 ok ? "ok " : "error: ", text_safe(safe, sizeof(safe) - 16, text));
	uv_buf_t b = uv_buf_init(cl->reply, n > 0 && (size_t)n < sizeof(cl->reply)
	                                            ? (unsigned)n
	                                            : (unsigned)strlen(cl->reply));
	cl->wr.data = cl;
	if (uv_write(&cl->wr, (uv_stream_t *)&cl->pipe, &b, 1, on_reply_written) != 0)
		client_close(cl);
}

/* Sends "ok KIND N" and the N lines of body (owned, taken; NULL: out of memory), then
 * closes. */
static void
send_lines(struct control_client *cl, const char *kind, char *body)
{
	size_t n = 0, len = body != NULL ? strlen(body) : 0;
	char *text = NULL;
	for (size_t i = 0; i < len; i++)
		n += body[i] == '\n';
	if (body == NULL || (text = malloc(len + 48)) == NULL) {
		free(body);
		reply(cl, false, "out of memory");
		return;
	}
	int head = snprintf(text, 48, "ok %s %zu\n", kind, n);
	memcpy(text + head, body, len);
	free(body);
	cl->answered = true;
	cl->long_reply = text;
	uv_read_stop((uv_stream_t *)&cl->pipe);
	uv_timer_stop(&cl->timer);
	uv_buf_t b = uv_buf_init(text, (unsigned)((size_t)head + len));
	cl->wr.data = cl;
	if (uv_write(&cl->wr, (uv_stream_t *)&cl->pipe, &b, 1, on_reply_written) != 0)
		client_close(cl);
}

/* `lists [refresh]`: "ok lists N" and the updater's N lines. */
static void
reply_lists(struct control_client *cl, bool refresh)
{
	struct control *c = cl->c;
	if (c->lists == NULL) {
		reply(cl, false, "lists: not running");
		return;
	}
	if (refresh) {
		updater_refresh(c->lists);
		log_info("lists: downloading every URL again (asked by uid %u)", (unsigned)cl->uid);
	}
	send_lines(cl, "lists", updater_status(c->lists));
}

/* `policy`: "ok policy N" and N lines from the server (server_policy.c). */
static void
reply_policy(struct control_client *cl)
{
	struct control *c = cl->c;
	char *text = NULL;
	if (c->policy == NULL) {
		reply(cl, false, "policy: not available");
		return;
	}
	if (c->policy(c->policy_arg, &text) != 0)
		text = NULL;
	send_lines(cl, "policy", text);
}

static void
handle_line(struct control_client *cl, size_t len)
{
	struct devices_admin_req req;
	char msg[CONTROL_LINE_MAX - 16];

	if (len > 0 && cl->buf[len - 1] == '\r')
		len--;
	if (len == strlen(CONTROL_HEALTH) && memcmp(cl->buf, CONTROL_HEALTH, len) == 0) {
		reply(cl, true, "serving"); /* the loop answered: that is the health */
		return;
	}
	if (len == 5 && memcmp(cl->buf, "lists", 5) == 0) {
		reply_lists(cl, false);
		return;
	}
	if (len == 13 && memcmp(cl->buf, "lists refresh", 13) == 0) {
		reply_lists(cl, true);
		return;
	}
	if (len == 6 && memcmp(cl->buf, "policy", 6) == 0) {
		reply_policy(cl);
		return;
	}
	if (len == 5 && memcmp(cl->buf, "stats", 5) == 0) {
		char json[CONTROL_REPLY_MAX - 16];
		if (cl->c->stats != NULL && cl->c->stats_ask != NULL) {
			cl->want_stats = true;
			uv_read_stop((uv_stream_t *)&cl->pipe);
			cl->c->stats_ask(cl->c->stats_ask_arg); /* may answer at once */
			return;
		}
		if (cl->c->stats == NULL)
			reply(cl, false, "no counters here");
		else if (cl->c->stats(cl->c->stats_arg, json, sizeof(json)) != 0)
			reply(cl, false, "counters too long for a reply");
		else
			reply(cl, true, json);
		return;
	}
	if (control_parse(cl->buf, len, &req, msg, sizeof(msg)) != 0) {
		reply(cl, false, msg);
		return;
	}
	if (cl->c->devices == NULL) {
		reply(cl, false, "device identity is off (no devices: section)");
		return;
	}
	req.uid = cl->uid;
	int rc = devices_admin_run(cl->c->devices, &req, msg, sizeof(msg));
	reply(cl, rc == 0, msg);
}

static void
on_client_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct control_client *cl = h->data;
	(void)suggested;
	*buf = uv_buf_init(cl->buf + cl->len, (unsigned)(sizeof(cl->buf) - 1 - cl->len));
}

static void
on_client_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct control_client *cl = s->data;
	(void)buf;
	if (cl->closing || cl->answered || nread == 0)
		return;
	if (nread < 0) {
		if (nread == UV_EOF && cl->len > 0)
			handle_line(cl, cl->len); /* a last line without its newline */
		else
			client_close(cl);
		return;
	}
	size_t from = cl->len;
	cl->len += (size_t)nread;
	char *nl = memchr(cl->buf + from, '\n', cl->len - from);
	if (nl != NULL) {
		handle_line(cl, (size_t)(nl - cl->buf));
		return;
	}
	if (cl->len >= sizeof(cl->buf) - 1)
		reply(cl, false, "request too long");
}

static void
on_client_timeout(uv_timer_t *t)
{
	struct control_client *cl = t->data;
	reply(cl, false, "timed out waiting for the request");
}

static void
on_refused_closed(uv_handle_t *h)
{
	struct control *c = h->data;
	free(h);
	c->open--;
	maybe_closed(c);
}

/* The uid of the peer of a connected Unix socket; false when the kernel does not say. */
static bool
peer_uid(uv_pipe_t *p, uint32_t *uid)
{
	uv_os_fd_t fd;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (uv_fileno((uv_handle_t *)p, &fd) != 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 || len != sizeof(cred))
		return false;
	*uid = (uint32_t)cred.uid;
	return true;
}

static void
on_connection(uv_stream_t *server, int status)
{
	struct control *c = server->data;
	if (c->closing || status != 0)
		return;
	if (c->nclients >= CONTROL_MAX_CLIENTS) {
		/* accepted only to be closed: a connection left in the backlog stops the rest */
		uv_pipe_t *p = malloc(sizeof(*p));
		if (p == NULL)
			return;
		uv_pipe_init(c->loop, p, 0);
		p->data = c;
		c->open++;
		(void)uv_accept(server, (uv_stream_t *)p);
		uv_close((uv_handle_t *)p, on_refused_closed);
		return;
	}
	struct control_client *cl = calloc(1, sizeof(*cl));
	if (cl == NULL)
		return;
	cl->c = c;
	uv_pipe_init(c->loop, &cl->pipe, 0);
	uv_timer_init(c->loop, &cl->timer);
	cl->pipe.data = cl->timer.data = cl;
	cl->open = 2;
	cl->next = c->clients;
	if (c->clients != NULL)
		c->clients->prev = cl;
	c->clients = cl;
	c->nclients++;
	c->open++;
	if (uv_accept(server, (uv_stream_t *)&cl->pipe) != 0) {
		client_close(cl);
		return;
	}
	if (!peer_uid(&cl->pipe, &cl->uid)) {
		reply(cl, false, "cannot tell who is asking (SO_PEERCRED)");
		return;
	}
	if (cl->uid != 0 && cl->uid != (uint32_t)geteuid()) {
		log_warning("control: refused a request from uid %u (only uid %u and root may ask)",
		            (unsigned)cl->uid, (unsigned)geteuid());
		reply(cl, false, "not allowed");
		return;
	}
	uv_timer_start(&cl->timer, on_client_timeout, CONTROL_TIMEOUT_MS, 0);
	if (uv_read_start((uv_stream_t *)&cl->pipe, on_client_alloc, on_client_read) != 0)
		client_close(cl);
}

/* A socket at path nobody listens on (a crash's leftover) is removed; one somebody listens on
 * is -EADDRINUSE; anything that is not a socket is left alone (-EEXIST). The probe never
 * blocks: a listener that does not accept (a hung veto, whose queue of connections is full)
 * makes a blocking connect() wait for ever, so that counts as in use (EAGAIN). */
static int
clear_stale(const char *path)
{
	struct stat st;
	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	text_copy(sun.sun_path, sizeof(sun.sun_path), path);
	int rc = connect(fd, (struct sockaddr *)&sun, sizeof(sun));
	int err = rc == 0 ? 0 : errno;
	close(fd);
	if (rc == 0 || err == EAGAIN || err == EINPROGRESS)
		return -EADDRINUSE;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

/* A listening socket at path with mode 0600, whatever the umask: the socket's own mode is set
 * before bind (the file never exists with more), the file's after bind (the umask may have
 * taken more), and nobody can connect before listen. */
static int
bind_socket(const char *path, int *out)
{
	struct sockaddr_un sun = {.sun_family = AF_UNIX};
	int rc, fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	text_copy(sun.sun_path, sizeof(sun.sun_path), path);
	if (fchmod(fd, S_IRUSR | S_IWUSR) != 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	if (chmod(path, S_IRUSR | S_IWUSR) != 0) {
		rc = -errno;
		unlink(path);
		close(fd);
		return rc;
	}
	*out = fd;
	return 0;
}

static void
on_failed_closed(uv_handle_t *h)
{
	struct control *c = h->data;
	free(c->path);
	free(c);
}

int
control_open(uv_loop_t *loop, struct devices *d, const char *state_dir, control_stats_cb stats,
             void *stats_arg, struct control **out)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd = -1, rc;

	if ((rc = control_path(state_dir, path, sizeof(path))) != 0) {
		log_warning("control: %s/%s: path too long for a socket: no control channel",
		            state_dir, CONTROL_SOCKET_FILE);
		return rc;
	}
	if ((rc = clear_stale(path)) != 0) {
		log_warning("control: %s: %s: no control channel", path,
		            rc == -EADDRINUSE ? "another veto serves it"
		            : rc == -EEXIST   ? "exists and is not a socket"
		                              : strerror(-rc));
		return rc;
	}
	if ((rc = bind_socket(path, &fd)) != 0) {
		log_warning("control: %s: %s: no control channel", path, strerror(-rc));
		return rc;
	}
	struct control *c = calloc(1, sizeof(*c));
	if (c == NULL || (c->path = strdup(path)) == NULL) {
		free(c);
		unlink(path);
		close(fd);
		return -ENOMEM;
	}
	c->loop = loop;
	c->devices = d;
	c->stats = stats;
	c->stats_arg = stats_arg;
	uv_pipe_init(loop, &c->listener, 0);
	c->listener.data = c;
	c->open = 1;
	if ((rc = uv_pipe_open(&c->listener, fd)) != 0)
		close(fd); /* not adopted by the handle */
	else
		rc = uv_listen((uv_stream_t *)&c->listener, CONTROL_MAX_CLIENTS, on_connection);
	if (rc != 0) {
		log_warning("control: %s: %s: no control channel", path, uv_strerror(rc));
		unlink(path);
		c->closing = true;
		uv_close((uv_handle_t *)&c->listener, on_failed_closed);
		return rc;
	}
	log_info("control: listening on %s", path);
	*out = c;
	return 0;
}

void
control_set_devices(struct control *c, struct devices *d)
{
	c->devices = d;
}

void
control_set_lists(struct control *c, struct updater *u)
{
	c->lists = u;
}

void
control_set_policy(struct control *c, control_text_cb cb, void *arg)
{
	c->policy = cb;
	c->policy_arg = arg;
}

void
control_set_stats_ask(struct control *c, void (*ask)(void *arg), void *arg)
{
	c->stats_ask = ask;
	c->stats_ask_arg = arg;
}

void
control_stats_ready(struct control *c)
{
	char json[CONTROL_REPLY_MAX - 16];

	/* a client that went away meanwhile is closing: skipped (freed by its close callback) */
	for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next) {
		if (!cl->want_stats || cl->closing || cl->answered)
			continue;
		cl->want_stats = false;
		if (c->stats(c->stats_arg, json, sizeof(json)) != 0)
			reply(cl, false, "counters too long for a reply");
		else
			reply(cl, true, json);
	}
}

static void
on_listener_closed(uv_handle_t *h)
{
	struct control *c = h->data;
	c->open--;
	maybe_closed(c);
}

void
control_close(struct control *c, void (*cb)(void *arg), void *arg)
{
	if (c->closing)
		return;
	c->closing = true;
	c->close_cb = cb;
	c->close_arg = arg;
	uv_close((uv_handle_t *)&c->listener, on_listener_closed);
	unlink(c->path);
	for (struct control_client *cl = c->clients; cl != NULL; cl = cl->next)
		client_close(cl);
}

void
control_free(struct control **cp)
{
	struct control *c = *cp;
	if (c == NULL)
		return;
	REQUIRE(c->open == 0);
	free(c->path);
	free(c);
	*cp = NULL;
}
