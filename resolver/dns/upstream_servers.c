/*
 * upstream_servers: the server list of the upstream client (upstream.servers and the nameservers
 * of resolv.conf), and the health of each server: consecutive failures, backoff, and the choice
 * of the server for the next attempt.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "log.h"
#include "upstream_int.h"

static void
format_server(struct upstream_server *s)
{
	char addr[INET6_ADDRSTRLEN];

	if (s->ss.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&s->ss;
		inet_ntop(AF_INET, &sin->sin_addr, addr, sizeof(addr));
		snprintf(s->text, sizeof(s->text), "%s:%u", addr, ntohs(sin->sin_port));
	} else {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&s->ss;
		inet_ntop(AF_INET6, &sin6->sin6_addr, addr, sizeof(addr));
		if (sin6->sin6_scope_id != 0)
			snprintf(s->text, sizeof(s->text), "[%s%%%u]:%u", addr,
				 (unsigned)sin6->sin6_scope_id, ntohs(sin6->sin6_port));
		else
			snprintf(s->text, sizeof(s->text), "[%s]:%u", addr, ntohs(sin6->sin6_port));
	}
}

bool
upstream_same_addr(const struct sockaddr *a, const struct sockaddr *b)
{
	if (a->sa_family != b->sa_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const struct sockaddr_in *)a;
		const struct sockaddr_in *y = (const struct sockaddr_in *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const struct sockaddr_in6 *)a;
		const struct sockaddr_in6 *y = (const struct sockaddr_in6 *)b;
		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0 &&
		       (x->sin6_scope_id == y->sin6_scope_id || x->sin6_scope_id == 0 ||
			y->sin6_scope_id == 0);
	}
	return false;
}

struct server_vec {
	struct upstream_server *s;
	size_t n, cap;
};

static bool
same_name(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* The same server: address and port, transport, certificate name and URL. */
static bool
same_server(const struct upstream_server *s, const struct sockaddr *sa,
	    enum config_transport transport, const char *tls_name, const char *url)
{
	return s->transport == transport && same_name(s->tls_name, tls_name) &&
	       same_name(s->url, url) && upstream_same_addr((const struct sockaddr *)&s->ss, sa);
}

static void
vec_free(struct upstream_server *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(s[i].tls_name);
		free(s[i].url);
	}
	free(s);
}

/* Appends sa unless already present; a is the upstream.servers entry, NULL for resolv.conf.
 * 0 or -ENOMEM. */
static int
server_vec_add(struct server_vec *v, const struct sockaddr *sa, socklen_t len,
	       const struct config_addr *a)
{
	enum config_transport transport = a != NULL ? a->transport : CONFIG_TRANSPORT_DNS;
	const char *tls_name = a != NULL ? a->tls_name : NULL;
	const char *url = a != NULL ? a->url : NULL;

	if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
		return 0;
	for (size_t i = 0; i < v->n; i++)
		if (same_server(&v->s[i], sa, transport, tls_name, url))
			return 0;
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 4;
		struct upstream_server *s = realloc(v->s, cap * sizeof(*s));
		if (s == NULL)
			return -ENOMEM;
		v->s = s;
		v->cap = cap;
	}
	struct upstream_server *s = &v->s[v->n];
	memset(s, 0, sizeof(*s));
	memcpy(&s->ss, sa, len);
	s->len = len;
	s->transport = transport;
	if (tls_name != NULL) {
		s->tls_name = strdup(tls_name);
		if (s->tls_name == NULL)
			return -ENOMEM;
	}
	if (url != NULL) {
		s->url = strdup(url);
		if (s->url == NULL) {
			free(s->tls_name);
			return -ENOMEM;
		}
	}
	if (transport != CONFIG_TRANSPORT_DNS)
		snprintf(s->text, sizeof(s->text), "%s", a->text);	/* as written */
	else
		format_server(s);
	v->n++;
	return 0;
}

/* Parses the address of a nameserver line ("192.0.2.1", "2001:db8::1", "fe80::1%eth0"). */
static int
parse_nameserver(const char *path, int line, char *text, struct sockaddr_storage *ss,
		 socklen_t *len)
{
	char *scope = strchr(text, '%');

	memset(ss, 0, sizeof(*ss));
	if (scope == NULL) {
		struct sockaddr_in *sin = (struct sockaddr_in *)ss;
		if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(53);
			*len = sizeof(*sin);
			return 0;
		}
	}
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	if (scope != NULL)
		*scope++ = '\0';
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) != 1) {
		log_warning("%s:%d: nameserver '%s': not an IP address, ignored", path, line, text);
		return -EINVAL;
	}
	sin6->sin6_family = AF_INET6;
	sin6->sin6_port = htons(53);
	if (scope != NULL && *scope != '\0') {
		char *end;
		unsigned long idx = if_nametoindex(scope);
		if (idx == 0) {
			idx = strtoul(scope, &end, 10);
			if (*end != '\0')
				idx = 0;
		}
		if (idx == 0 || idx > UINT32_MAX) {
			log_warning("%s:%d: nameserver '%s%%%s': unknown interface '%s', ignored",
				    path, line, text, scope, scope);
			return -EINVAL;
		}
		sin6->sin6_scope_id = (uint32_t)idx;
	}
	*len = sizeof(*sin6);
	return 0;
}

/* Adds the nameservers of a resolv.conf file. A file that cannot be read is logged and adds
 * nothing. 0 or -ENOMEM. */
static int
read_resolv_conf(const char *path, struct server_vec *v)
{
	char buf[1024];
	int line = 0, err = 0;
	FILE *f = fopen(path, "re");

	if (f == NULL) {
		log_warning("%s: cannot read nameservers: %s", path, strerror(errno));
		return 0;
	}
	while (fgets(buf, sizeof(buf), f) != NULL) {
		char *save = NULL;
		line++;
		if (strchr(buf, '\n') == NULL && !feof(f)) {
			/* overlong line: skip its remainder, it holds no usable nameserver */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			continue;
		}
		char *key = strtok_r(buf, " \t\r\n", &save);
		if (key == NULL || key[0] == '#' || key[0] == ';' || strcmp(key, "nameserver") != 0)
			continue;
		char *addr = strtok_r(NULL, " \t\r\n#;", &save);
		if (addr == NULL) {
			log_warning("%s:%d: nameserver without an address, ignored", path, line);
			continue;
		}
		struct sockaddr_storage ss;
		socklen_t len;
		if (parse_nameserver(path, line, addr, &ss, &len) != 0)
			continue;
		err = server_vec_add(v, (const struct sockaddr *)&ss, len, NULL);
		if (err != 0)
			break;
	}
	fclose(f);
	return err;
}

int
upstream_servers_new(const struct config *cfg, const struct upstream_servers *old,
		     struct upstream_servers **out)
{
	struct server_vec v = {0};
	struct upstream_servers *s = NULL;
	int err;

	REQUIRE(cfg != NULL && out != NULL);
	for (size_t i = 0; i < cfg->upstream.nservers; i++) {
		const struct config_addr *a = &cfg->upstream.servers[i];
		err = server_vec_add(&v, (const struct sockaddr *)&a->ss, a->len, a);
		if (err != 0)
			goto cleanup;
	}
	if (cfg->upstream.resolv_conf) {
		const char *path = cfg->upstream.resolv_conf_path ? cfg->upstream.resolv_conf_path
								   : "/etc/resolv.conf";
		err = read_resolv_conf(path, &v);
		if (err != 0)
			goto cleanup;
	}
	if (v.n == 0) {
		log_error("upstream: no server to forward to (upstream.servers is empty%s)",
			  cfg->upstream.resolv_conf ? " and resolv.conf lists no nameserver" : "");
		err = -ENOENT;
		goto cleanup;
	}
	s = malloc(sizeof(*s));
	if (s == NULL) {
		err = -ENOMEM;
		goto cleanup;
	}
	s->refs = 1;
	s->timeout_ms = cfg->upstream.timeout_ms ? cfg->upstream.timeout_ms
						 : UPSTREAM_DEFAULT_TIMEOUT_MS;
	s->n = v.n;
	s->s = v.s;
	v.s = NULL;
	v.n = 0;
	if (old != NULL) {
		for (size_t i = 0; i < s->n; i++) {
			for (size_t j = 0; j < old->n; j++) {
				const struct upstream_server *o = &old->s[j];
				if (same_server(&s->s[i], (const struct sockaddr *)&o->ss,
						o->transport, o->tls_name, o->url)) {
					s->s[i].fails = old->s[j].fails;
					s->s[i].backoff_ms = old->s[j].backoff_ms;
					s->s[i].down_until = old->s[j].down_until;
					s->s[i].last_fail = old->s[j].last_fail;
					s->s[i].st = old->s[j].st;
					break;
				}
			}
		}
	}
	*out = s;
	err = 0;
cleanup:
	vec_free(v.s, v.n);
	return err;
}

void
upstream_servers_unref(struct upstream_servers **sp)
{
	struct upstream_servers *s = *sp;

	if (s == NULL)
		return;
	*sp = NULL;
	INSIST(s->refs > 0);
	if (--s->refs > 0)
		return;
	vec_free(s->s, s->n);
	free(s);
}

static bool
server_up(const struct upstream_server *s, uint64_t now)
{
	return s->down_until <= now;
}

static bool
req_tried(const struct upstream_req *req, size_t idx)
{
	for (unsigned i = 0; i < req->attempts && i < UPSTREAM_MAX_ATTEMPTS; i++)
		if (req->tried[i] == idx)
			return true;
	return false;
}

static bool
req_bad(const struct upstream_req *req, size_t idx)
{
	for (unsigned i = 0; i < req->nbad && i < UPSTREAM_MAX_ATTEMPTS; i++)
		if (req->bad[i] == idx)
			return true;
	return false;
}

/*
 * The server for the next attempt: scanning from the first server (first attempt) or the one
 * after the last tried, the first healthy server this request has not tried yet, else the first
 * healthy one; when every server is down, the least recently failed (untried first). A server
 * that gave this request a bad answer is skipped (SIZE_MAX when none is left).
 */
size_t
upstream_server_pick(const struct upstream_req *req, uint64_t now)
{
	const struct upstream_servers *ss = req->servers;
	size_t start = req->attempts == 0 ? 0 : (req->last + 1) % ss->n;
	size_t best = SIZE_MAX;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < ss->n; i++) {
			size_t k = (start + i) % ss->n;
			if (server_up(&ss->s[k], now) && !req_bad(req, k) &&
			    (pass == 1 || !req_tried(req, k)))
				return k;
		}
	}
	for (int pass = 0; pass < 2 && best == SIZE_MAX; pass++) {
		for (size_t i = 0; i < ss->n; i++) {
			size_t k = (start + i) % ss->n;
			if (req_bad(req, k) || (pass == 0 && req_tried(req, k)))
				continue;
			if (best == SIZE_MAX || ss->s[k].last_fail < ss->s[best].last_fail)
				best = k;
		}
	}
	return best;
}

void
upstream_server_failed(struct upstream_server *s, uint64_t now)
{
	bool was_down = s->backoff_ms != 0;

	s->st.errors++;
	s->fails++;
	s->last_fail = now;
	if (s->fails < UPSTREAM_DOWN_AFTER || s->down_until > now)
		return;	/* not yet, or already down (attempts started before it went down) */
	if (s->backoff_ms == 0)
		s->backoff_ms = UPSTREAM_BACKOFF_MIN_MS;
	else if (s->backoff_ms < UPSTREAM_BACKOFF_MAX_MS / 2)
		s->backoff_ms *= 2;
	else
		s->backoff_ms = UPSTREAM_BACKOFF_MAX_MS;
	s->down_until = now + s->backoff_ms;
	if (!was_down)
		log_warning("upstream: server '%s' skipped for %u ms after %u failures", s->text,
			    (unsigned)s->backoff_ms, s->fails);
}

void
upstream_server_ok(struct upstream_server *s)
{
	if (s->backoff_ms != 0)
		log_info("upstream: server '%s' answers again", s->text);
	s->fails = 0;
	s->backoff_ms = 0;
	s->down_until = 0;
}


const uint32_t upstream_latency_bounds_us[UPSTREAM_LATENCY_BUCKETS] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000,
};

void
upstream_observe(struct upstream *u, const struct sockaddr *server, uint64_t latency_us)
{
	struct upstream_servers *ss = u->servers;
	for (size_t i = 0; i < ss->n; i++) {
		struct upstream_server *s = &ss->s[i];
		if (!upstream_same_addr(server, (const struct sockaddr *)&s->ss))
			continue;
		size_t b = 0;
		while (b < UPSTREAM_LATENCY_BUCKETS && latency_us > upstream_latency_bounds_us[b])
			b++;
		s->st.buckets[b]++;
		s->st.answers++;
		s->st.sum_us += latency_us;
		return;
	}
}

size_t
upstream_get_server_stats(const struct upstream *u, struct upstream_server_stats *out, size_t max)
{
	const struct upstream_servers *ss = u->servers;
	size_t n = ss->n < max ? ss->n : max;
	for (size_t i = 0; i < n; i++) {
		out[i] = ss->s[i].st;
		/* a longer name (up to 253 octets after '#') is cut for the metrics label */
		size_t len = strnlen(ss->s[i].text, sizeof(out[i].text) - 1);
		memcpy(out[i].text, ss->s[i].text, len);
		out[i].text[len] = '\0';
	}
	return n;
}
