/*
 * http: the listener (see http.h). libmicrohttpd parses HTTP and runs HTTP_THREADS threads per
 * address; this file binds the sockets, gathers each request (headers, bounded body), asks
 * http_auth.c who sent it, applies the route's rules (405, 401/403, Origin and CSRF on POST),
 * calls the handler and sends its response with the security headers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http.h"
#include "http_int.h"
#include "log.h"
#include "sockaddr.h"

struct listener {
	int fd;
	char *text; /* owned, "127.0.0.1:8080" as configured */
	struct MHD_Daemon *d;
};

struct http_server {
	struct listener *ls;
	size_t nls;
	struct http_route *routes;
	size_t nroutes;
	struct http_auth *auth;
};

/* A request being received: its body, bounded. */
struct pending {
	char *body;
	size_t len;
	bool too_big;
};

static const char *const security_headers[][2] = {
        {"Content-Security-Policy",
         "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
         "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-Frame-Options", "DENY"},
        {"Referrer-Policy", "same-origin"},
        {"Cache-Control", "no-store"},
};

struct http_auth *
http_server_auth(struct http_server *h)
{
	return h->auth;
}

const char *
http_req_path(const struct http_req *req)
{
	return req->path;
}

bool
http_req_is_post(const struct http_req *req)
{
	return req->post;
}

const char *
http_req_arg(const struct http_req *req, const char *name)
{
	return http_args_get(&req->args, name);
}

enum http_role
http_req_role(const struct http_req *req)
{
	return req->role;
}

const char *
http_req_user(const struct http_req *req)
{
	return req->user;
}

const char *
http_req_csrf(const struct http_req *req)
{
	return req->csrf;
}

static void
on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	char buf[256];
	(void)cls;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	buf[strcspn(buf, "\n")] = '\0';
	log_debug("http: %s", buf);
}

static void
on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
             enum MHD_RequestTerminationCode toe)
{
	(void)cls;
	(void)conn;
	(void)toe;
	struct pending *p = *con_cls;
	if (p != NULL) {
		free(p->body);
		free(p);
		*con_cls = NULL;
	}
}

struct arg_walk {
	struct http_args *args;
	int rc;
};

static enum MHD_Result
on_get_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct arg_walk *w = cls;
	(void)kind;
	if (w->rc == 0 && key[0] != '\0')
		w->rc = http_args_add(w->args, key, value != NULL ? value : "");
	return w->rc == 0 ? MHD_YES : MHD_NO;
}

/* "/login?next=PATH" with PATH percent-encoded (unreserved octets and '/' kept). */
static void
login_link(struct http_resp *resp, const char *path)
{
	static const char hex[] = "0123456789ABCDEF";
	http_resp_printf(resp, "<p><a href=\"/login?next=");
	for (const unsigned char *p = (const unsigned char *)path; *p != '\0'; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		    (*p >= '0' && *p <= '9') || strchr("/-._~", *p) != NULL) {
			http_resp_write(resp, p, 1);
		} else {
			char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
			http_resp_write(resp, e, 3);
		}
	}
	http_resp_printf(resp, "\">Log in</a></p>");
}

/* A plain page for the listener's own refusals (path: the page asked for, for 401). */
static void
error_page_for(struct http_resp *resp, int status, const char *title, const char *detail,
               const char *path)
{
	http_resp_reset(resp);
	resp->status = status;
	http_resp_printf(resp,
	                 "<!doctype html><html><head><meta charset=utf-8><title>%d %s</title>"
	                 "<link rel=stylesheet href=\"/static/veto.css\"></head><body><h1>%s</h1>",
	                 status, title, title);
	if (detail != NULL) {
		http_resp_printf(resp, "<p>");
		http_resp_html(resp, detail);
		http_resp_printf(resp, "</p>");
	}
	if (status == 401)
		login_link(resp, path != NULL ? path : "/");
	http_resp_printf(resp, "</body></html>\n");
}

static void
error_page(struct http_resp *resp, int status, const char *title, const char *detail)
{
	error_page_for(resp, status, title, detail, NULL);
}

static const struct http_route *
find_route(const struct http_server *h, const char *path)
{
	for (size_t i = 0; i < h->nroutes; i++) {
		if (strcmp(h->routes[i].path, path) == 0)
			return &h->routes[i];
	}
	return NULL;
}

static void
peer_text(const struct sockaddr_storage *ss, char *buf, size_t size)
{
	const void *a = ss->ss_family == AF_INET6
	                        ? (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr
	                        : (const void *)&((const struct sockaddr_in *)ss)->sin_addr;
	if (inet_ntop(ss->ss_family, a, buf, (socklen_t)size) == NULL)
		snprintf(buf, size, "?");
}

/* Runs the request through the rules and the handler; the answer is in resp. */
static void
dispatch(struct http_server *h, struct MHD_Connection *conn, struct http_req *req,
         struct pending *p, struct http_resp *resp)
{
	const char *cookie = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Cookie");
	const char *authz = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
	const struct http_route *r;
	int rc;

	if (http_auth_request(h->auth, req, cookie, authz) != 0) {
		error_page(resp, 401, "Unauthorized", "unknown token");
		http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"veto\"");
		log_info("http: %s: unknown bearer token for %s", req->peer, req->logpath);
		return;
	}
	const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Host");
	if (!http_auth_on(h->auth) && !http_host_is_local(host)) {
		/* without users or tokens, only a loopback name: not a rebound web page's */
		error_page(resp, 403, "Forbidden",
		           "without http.users or http.tokens, use the address itself "
		           "(http://127.0.0.1:PORT/)");
		log_info("http: %s: %s refused: Host is not a loopback name", req->peer,
		         req->logpath);
		return;
	}
	r = find_route(h, req->path);
	switch (http_route_refusal(r, req)) {
	case 0:
		break;
	case 404:
		error_page(resp, 404, "Not Found", NULL);
		return;
	case 405:
		error_page(resp, 405, "Method Not Allowed", NULL);
		http_resp_header(resp, "Allow", "GET, HEAD");
		return;
	case 401:
		error_page_for(resp, 401, "Unauthorized", "this page needs a login", req->path);
		http_resp_header(resp, "WWW-Authenticate", "Bearer realm=\"veto\"");
		return;
	default:
		error_page(resp, 403, "Forbidden", "your role does not allow this");
		return;
	}
	if (req->post) {
		if (p->too_big) {
			error_page(resp, 413, "Content Too Large", NULL);
			return;
		}
		const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
		if (p->len > 0 &&
		    (ct == NULL || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)) {
			error_page(resp, 415, "Unsupported Media Type",
			           "forms are application/x-www-form-urlencoded");
			return;
		}
		rc = http_args_parse(&req->args, p->body != NULL ? p->body : "", p->len);
		if (rc != 0) {
			error_page(resp, rc == -ENOMEM ? 500 : 400, "Bad Request",
			           "malformed form");
			return;
		}
		if (!http_origin_ok(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"),
		                    host)) {
			error_page(resp, 403, "Forbidden", "cross-origin form");
			log_info("http: %s: POST %s refused: foreign Origin", req->peer,
			         req->logpath);
			return;
		}
		const char *csrf = http_args_get(&req->args, "csrf");
		if (!req->bearer && (csrf == NULL || !http_auth_equal(csrf, req->csrf))) {
			error_page(resp, 403, "Forbidden",
			           "missing or wrong CSRF token: reload the page");
			log_info("http: %s: POST %s refused: CSRF token", req->peer, req->logpath);
			return;
		}
	} else {
		struct arg_walk w = {.args = &req->args};
		MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_get_arg, &w);
		if (w.rc != 0) {
			error_page(resp, w.rc == -ENOMEM ? 500 : 414, "Bad Request",
			           "too many or too long arguments");
			return;
		}
	}
	rc = r->fn(r->ctx, req, resp);
	if (rc != 0 || resp->oom) {
		log_error("http: %s %s: %s", req->post ? "POST" : "GET", req->logpath,
		          strerror(rc != 0 ? -rc : ENOMEM));
		error_page(resp, rc == -EAGAIN ? 503 : 500,
		           rc == -EAGAIN ? "Service Unavailable" : "Internal Server Error", NULL);
	}
}

static enum MHD_Result
send_resp(struct MHD_Connection *conn, struct http_resp *resp)
{
	struct MHD_Response *r;
	enum MHD_Result ret;

	r = MHD_create_response_from_buffer(resp->len, resp->body != NULL ? resp->body : (void *)"",
	                                    resp->body != NULL ? MHD_RESPMEM_MUST_FREE
	                                                       : MHD_RESPMEM_PERSISTENT);
	if (r == NULL)
		return MHD_NO;
	if (resp->body != NULL) { /* handed over */
		resp->body = NULL;
		resp->len = resp->cap = 0;
	}
	MHD_add_response_header(r, "Content-Type",
	                        resp->type != NULL ? resp->type : "text/html; charset=utf-8");
	for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
		MHD_add_response_header(r, security_headers[i][0], security_headers[i][1]);
	for (size_t i = 0; i < resp->nheaders; i++) {
		if (MHD_add_response_header(r, resp->headers[i].name, resp->headers[i].value) !=
		    MHD_YES)
			log_warning("http: response header '%s' not sent", resp->headers[i].name);
	}
	ret = MHD_queue_response(conn, (unsigned)resp->status, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result
on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct http_server *h = cls;
	struct pending *p = *con_cls;
	bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
	(void)version;

	if (p == NULL) {
		p = calloc(1, sizeof(*p));
		if (p == NULL)
			return MHD_NO;
		*con_cls = p;
		const char *cl =
		        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
		if (post && cl != NULL && strtoull(cl, NULL, 10) > HTTP_BODY_MAX) {
			/* refused before the body is read: the connection closes after the answer
			 */
			struct http_resp resp;
			http_resp_init(&resp);
			error_page(&resp, 413, "Content Too Large", NULL);
			enum MHD_Result ret = send_resp(conn, &resp);
			http_resp_clear(&resp);
			return ret;
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		if (!post || p->too_big || p->len + *upload_data_size > HTTP_BODY_MAX) {
			p->too_big = true;
		} else {
			char *nb = realloc(p->body, p->len + *upload_data_size + 1);
			if (nb == NULL)
				return MHD_NO;
			memcpy(nb + p->len, upload_data, *upload_data_size);
			p->body = nb;
			p->len += *upload_data_size;
			p->body[p->len] = '\0';
		}
		*upload_data_size = 0;
		return MHD_YES;
	}

	struct http_req req;
	struct http_resp resp;
	memset(&req, 0, sizeof(req));
	http_args_init(&req.args);
	http_resp_init(&resp);
	req.path = url;
	http_log_safe(url, req.logpath, sizeof(req.logpath));
	req.post = post;
	req.srv = h;
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci != NULL && ci->client_addr != NULL) {
		memcpy(&req.peer_ss, ci->client_addr, sockaddr_len(ci->client_addr));
		peer_text(&req.peer_ss, req.peer, sizeof(req.peer));
	} else {
		snprintf(req.peer, sizeof(req.peer), "?");
	}
	if (!post && strcmp(method, MHD_HTTP_METHOD_GET) != 0 &&
	    strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
		error_page(&resp, 405, "Method Not Allowed", NULL);
		http_resp_header(&resp, "Allow", "GET, HEAD, POST");
	} else {
		dispatch(h, conn, &req, p, &resp);
	}
	enum MHD_Result ret = send_resp(conn, &resp);
	http_resp_clear(&resp);
	http_args_clear(&req.args);
	explicit_bzero(req.csrf, sizeof(req.csrf));
	return ret;
}

static int
bind_one(const struct config_addr *a, int *out)
{
	int one = 1;
	int fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) != 0 || listen(fd, 64) != 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	*out = fd;
	return 0;
}

int
http_new(const struct config *cfg, struct http_server **out)
{
	struct http_server *h;
	int rc;

	if (cfg->http.nlisten == 0) {
		*out = NULL;
		return 0;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL)
		return -ENOMEM;
	h->ls = calloc(cfg->http.nlisten, sizeof(*h->ls));
	if (h->ls == NULL) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = http_auth_new(&h->auth);
	if (rc == 0)
		rc = http_auth_set(h->auth, cfg);
	if (rc != 0)
		goto fail;
	for (size_t i = 0; i < cfg->http.nlisten; i++) {
		const struct config_addr *a = &cfg->http.listen[i];
		struct listener *l = &h->ls[h->nls];
		l->text = strdup(a->text);
		if (l->text == NULL) {
			rc = -ENOMEM;
			goto fail;
		}
		rc = bind_one(a, &l->fd);
		if (rc != 0) {
			log_error("http: cannot listen on %s: %s", a->text, strerror(-rc));
			free(l->text);
			goto fail;
		}
		h->nls++;
	}
	*out = h;
	return 0;
fail:
	http_free(&h);
	return rc;
}

int
http_start(struct http_server *h, const struct http_route *routes, size_t nroutes)
{
	const struct http_route builtin[] = {
	        {"/login", HTTP_ROLE_NONE, true, http_login_page, h},
	        {"/logout", HTTP_ROLE_READ, true, http_logout_page, h},
	};
	size_t nb = sizeof(builtin) / sizeof(builtin[0]);

	h->routes = calloc(nroutes + nb, sizeof(*h->routes));
	if (h->routes == NULL)
		return -ENOMEM;
	memcpy(h->routes, builtin, sizeof(builtin));
	if (nroutes > 0)
		memcpy(h->routes + nb, routes, nroutes * sizeof(*routes));
	h->nroutes = nroutes + nb;
	for (size_t i = 0; i < h->nls; i++) {
		struct listener *l = &h->ls[i];
		l->d = MHD_start_daemon(
		        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, on_request,
		        h, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)l->fd, MHD_OPTION_THREAD_POOL_SIZE,
		        (unsigned)HTTP_THREADS, MHD_OPTION_CONNECTION_LIMIT,
		        (unsigned)HTTP_CONN_MAX, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
		        (unsigned)HTTP_CONN_PER_IP, MHD_OPTION_CONNECTION_TIMEOUT,
		        (unsigned)HTTP_CONN_TIMEOUT, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
		        NULL, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
		if (l->d == NULL) {
			log_error("http: cannot start the listener on %s", l->text);
			return -EIO;
		}
		log_info("http: listening on %s%s", l->text,
		         http_auth_on(h->auth) ? ""
		                               : " (no users or tokens: every request is admin)");
	}
	return 0;
}

int
http_reload(struct http_server *h, const struct config *cfg)
{
	bool same = cfg->http.nlisten == h->nls;
	for (size_t i = 0; same && i < h->nls; i++)
		same = strcmp(cfg->http.listen[i].text, h->ls[i].text) == 0;
	if (!same)
		log_warning("http: http.listen changed: restart veto for it to take effect");
	int rc = http_auth_set(h->auth, cfg);
	if (rc != 0)
		log_error("http: users and tokens not reloaded: %s", strerror(-rc));
	return rc;
}

void
http_free(struct http_server **hp)
{
	struct http_server *h = *hp;
	if (h == NULL)
		return;
	for (size_t i = 0; i < h->nls; i++) {
		if (h->ls[i].d != NULL)
			MHD_stop_daemon(h->ls[i].d); /* closes the listening socket too */
		else
			close(h->ls[i].fd);
		free(h->ls[i].text);
	}
	free(h->ls);
	free(h->routes);
	http_auth_free(&h->auth);
	free(h);
	*hp = NULL;
}
