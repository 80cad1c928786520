/*
 * http_auth: who a request comes from. Users (crypt(3) hashes) and tokens (SHA-256) from the
 * configuration, sessions in memory (256 random bits each, idle and absolute expiry, bounded:
 * the least recently used goes), and the failed-login limiter per source address. One mutex
 * guards everything; crypt(3) runs outside it.
 */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "http_int.h"
#include "log.h"

struct user {
	char *name, *hash;
	enum http_role role;
};

struct token {
	char *name;
	uint8_t sha256[32];
	enum http_role role;
};

struct session {
	char id[65]; /* hex; "" = free slot */
	char csrf[65];
	char user[64];
	enum http_role role;
	time_t created, used;
};

struct source {
	struct sockaddr_storage addr;
	unsigned fails;
	time_t last;
};

struct http_auth {
	pthread_mutex_t mu;
	struct user *users;
	size_t nusers;
	struct token *tokens;
	size_t ntokens;
	struct session sessions[HTTP_SESSIONS_MAX];
	struct source sources[HTTP_LOGIN_SOURCES];
	char anon_csrf[65];                    /* the CSRF token of requests without a session */
	char dummy[CRYPT_GENSALT_OUTPUT_SIZE]; /* a setting for unknown users: they cost as much */
};

static time_t
now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

/* 32 random octets in hex. 0 or -errno. */
static int
random_hex(char out[65])
{
	uint8_t b[32];
	size_t got = 0;
	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)n;
	}
	for (size_t i = 0; i < sizeof(b); i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

bool
http_auth_equal(const char *x, const char *y)
{
	size_t lx = strlen(x), ly = strlen(y);
	const char *other = lx == ly ? y : x; /* same work whatever the lengths */
	unsigned char d = lx != ly;
	for (size_t i = 0; i < lx; i++)
		d |= (unsigned char)(x[i] ^ other[i]);
	return d == 0;
}

int
http_auth_new(struct http_auth **out)
{
	struct http_auth *a = calloc(1, sizeof(*a));
	if (a == NULL)
		return -ENOMEM;
	int rc = random_hex(a->anon_csrf);
	if (rc == 0 && crypt_gensalt_rn(NULL, 0, NULL, 0, a->dummy, sizeof(a->dummy)) == NULL)
		rc = -errno;
	if (rc != 0) {
		free(a);
		return rc;
	}
	pthread_mutex_init(&a->mu, NULL);
	*out = a;
	return 0;
}

static void
free_lists(struct user *u, size_t nu, struct token *t, size_t nt)
{
	for (size_t i = 0; i < nu; i++) {
		free(u[i].name);
		free(u[i].hash);
	}
	free(u);
	for (size_t i = 0; i < nt; i++)
		free(t[i].name);
	free(t);
}

void
http_auth_free(struct http_auth **ap)
{
	struct http_auth *a = *ap;
	if (a == NULL)
		return;
	free_lists(a->users, a->nusers, a->tokens, a->ntokens);
	pthread_mutex_destroy(&a->mu);
	explicit_bzero(a, sizeof(*a));
	free(a);
	*ap = NULL;
}

static enum http_role
role_of(enum config_http_role r)
{
	return r == CONFIG_HTTP_ADMIN ? HTTP_ROLE_ADMIN : HTTP_ROLE_READ;
}

int
http_auth_set(struct http_auth *a, const struct config *cfg)
{
	size_t nu = cfg->http.nusers, nt = cfg->http.ntokens;
	struct user *u = calloc(nu ? nu : 1, sizeof(*u));
	struct token *t = calloc(nt ? nt : 1, sizeof(*t));
	if (u == NULL || t == NULL)
		goto oom;
	for (size_t i = 0; i < nu; i++) {
		u[i].name = strdup(cfg->http.users[i].name);
		u[i].hash = strdup(cfg->http.users[i].password);
		u[i].role = role_of(cfg->http.users[i].role);
		if (u[i].name == NULL || u[i].hash == NULL) {
			nu = i + 1;
			goto oom;
		}
	}
	for (size_t i = 0; i < nt; i++) {
		t[i].name = strdup(cfg->http.tokens[i].name);
		memcpy(t[i].sha256, cfg->http.tokens[i].sha256, 32);
		t[i].role = role_of(cfg->http.tokens[i].role);
		if (t[i].name == NULL) {
			nt = i + 1;
			goto oom;
		}
	}
	pthread_mutex_lock(&a->mu);
	struct user *ou = a->users;
	struct token *ot = a->tokens;
	size_t onu = a->nusers, ont = a->ntokens;
	a->users = u;
	a->nusers = nu;
	a->tokens = t;
	a->ntokens = nt;
	/* sessions follow their user: ended when the user is gone or its password changed (a
	 * rotated password must lock out whoever had the old one), else given its current role */
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		struct session *s = &a->sessions[i];
		if (s->id[0] == '\0')
			continue;
		size_t j = 0, k = 0;
		while (j < nu && strcmp(u[j].name, s->user) != 0)
			j++;
		while (k < onu && strcmp(ou[k].name, s->user) != 0)
			k++;
		if (j == nu || (k < onu && strcmp(ou[k].hash, u[j].hash) != 0))
			memset(s, 0, sizeof(*s));
		else
			s->role = u[j].role;
	}
	pthread_mutex_unlock(&a->mu);
	free_lists(ou, onu, ot, ont);
	return 0;
oom:
	free_lists(u, u ? nu : 0, t, t ? nt : 0);
	return -ENOMEM;
}

bool
http_auth_on(struct http_auth *a)
{
	pthread_mutex_lock(&a->mu);
	bool on = a->nusers > 0 || a->ntokens > 0;
	pthread_mutex_unlock(&a->mu);
	return on;
}

/* The value of cookie name in a Cookie header, copied into out (size octets); false if none. */
static bool
cookie_value(const char *header, const char *name, char *out, size_t size)
{
	size_t nl = strlen(name);
	const char *p = header;
	while (*p != '\0') {
		while (*p == ' ' || *p == ';')
			p++;
		size_t len = strcspn(p, ";");
		if (len > nl && strncmp(p, name, nl) == 0 && p[nl] == '=') {
			size_t vl = len - nl - 1;
			if (vl >= size)
				return false;
			memcpy(out, p + nl + 1, vl);
			out[vl] = '\0';
			return true;
		}
		p += len;
	}
	return false;
}

static bool
expired(const struct session *s, time_t now)
{
	return now - s->used > HTTP_SESSION_IDLE || now - s->created > HTTP_SESSION_LIFE;
}

int
http_auth_request(struct http_auth *a, struct http_req *req, const char *cookie,
                  const char *authorization)
{
	char sid[65];
	uint8_t h[32];
	bool bearer = authorization != NULL && strncasecmp(authorization, "Bearer ", 7) == 0;
	int rc = 0;

	if (bearer) /* outside the lock: a header may be long */
		sha256(authorization + 7, strlen(authorization + 7), h);
	req->role = HTTP_ROLE_NONE;
	req->user[0] = '\0';
	req->session[0] = '\0';
	req->bearer = false;
	pthread_mutex_lock(&a->mu);
	snprintf(req->csrf, sizeof(req->csrf), "%s", a->anon_csrf);
	if (a->nusers == 0 && a->ntokens == 0) {
		req->role = HTTP_ROLE_ADMIN; /* loopback only (config_http.c) */
		goto done;
	}
	if (bearer) {
		rc = -EACCES;
		for (size_t i = 0; i < a->ntokens; i++) {
			unsigned char d = 0;
			for (size_t k = 0; k < 32; k++)
				d |= h[k] ^ a->tokens[i].sha256[k];
			if (d == 0) {
				req->role = a->tokens[i].role;
				req->bearer = true;
				snprintf(req->user, sizeof(req->user), "%s", a->tokens[i].name);
				rc = 0;
			}
		}
		goto done;
	}
	if (cookie != NULL && cookie_value(cookie, HTTP_COOKIE, sid, sizeof(sid)) &&
	    strlen(sid) == 64) {
		time_t now = now_s();
		for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
			struct session *s = &a->sessions[i];
			if (s->id[0] == '\0' || !http_auth_equal(s->id, sid))
				continue;
			if (expired(s, now)) {
				memset(s, 0, sizeof(*s));
				break;
			}
			s->used = now;
			req->role = s->role;
			snprintf(req->user, sizeof(req->user), "%s", s->user);
			snprintf(req->csrf, sizeof(req->csrf), "%s", s->csrf);
			snprintf(req->session, sizeof(req->session), "%s", s->id);
			break;
		}
	}
done:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

static bool
same_addr(const struct sockaddr_storage *x, const struct sockaddr_storage *y)
{
	if (x->ss_family != y->ss_family)
		return false;
	if (x->ss_family == AF_INET)
		return ((const struct sockaddr_in *)x)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)y)->sin_addr.s_addr;
	if (x->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)x)->sin6_addr,
		              &((const struct sockaddr_in6 *)y)->sin6_addr, 16) == 0;
	return false;
}

/* The limiter's entry of peer (a new or the oldest one when create). Under the mutex. */
static struct source *
source_of(struct http_auth *a, const struct sockaddr_storage *peer, bool create, time_t now)
{
	struct source *oldest = &a->sources[0];
	for (size_t i = 0; i < HTTP_LOGIN_SOURCES; i++) {
		struct source *s = &a->sources[i];
		if (s->fails > 0 && now - s->last > HTTP_LOGIN_WINDOW)
			memset(s, 0, sizeof(*s));
		if (s->fails > 0 && same_addr(&s->addr, peer))
			return s;
		if (s->fails == 0 || s->last < oldest->last)
			oldest = s;
	}
	if (!create)
		return NULL;
	if (oldest->fails != 0)
		memset(oldest, 0, sizeof(*oldest));
	oldest->addr = *peer;
	return oldest;
}

int
http_auth_login(struct http_auth *a, const struct sockaddr_storage *peer, const char *user,
                const char *password, char sid[65])
{
	char hash[256] = "", dummy[256] = "";
	enum http_role role = HTTP_ROLE_NONE;
	time_t now = now_s();
	int rc;

	pthread_mutex_lock(&a->mu);
	struct source *src = source_of(a, peer, false, now);
	if (src != NULL && src->fails >= HTTP_LOGIN_FAILS) {
		pthread_mutex_unlock(&a->mu);
		return -EAGAIN;
	}
	for (size_t i = 0; i < a->nusers; i++) {
		if (strcmp(a->users[i].name, user) == 0) {
			snprintf(hash, sizeof(hash), "%s", a->users[i].hash);
			role = a->users[i].role;
		}
	}
	/* An unknown user costs what a configured one does: the first user's hash as the setting
	 * (same method and parameters; its result is never compared), so the time of a refusal
	 * does not tell whether the name exists. */
	if (hash[0] == '\0' && a->nusers > 0)
		snprintf(dummy, sizeof(dummy), "%s", a->users[0].hash);
	pthread_mutex_unlock(&a->mu);

	struct crypt_data *cd = calloc(1, sizeof(*cd));
	if (cd == NULL)
		return -ENOMEM;
	const char *setting = hash[0] != '\0' ? hash : dummy[0] != '\0' ? dummy : a->dummy;
	const char *out = crypt_rn(password, setting, cd, (int)sizeof(*cd));
	bool ok = out != NULL && out[0] != '*' && hash[0] != '\0' && http_auth_equal(out, hash);
	explicit_bzero(cd, sizeof(*cd));
	free(cd);

	pthread_mutex_lock(&a->mu);
	if (!ok) {
		src = source_of(a, peer, true, now);
		src->fails++;
		src->last = now;
		rc = -EACCES;
		goto done;
	}
	src = source_of(a, peer, false, now);
	if (src != NULL)
		memset(src, 0, sizeof(*src));
	/* a free slot, else the least recently used */
	struct session *slot = &a->sessions[0];
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		struct session *s = &a->sessions[i];
		if (s->id[0] != '\0' && expired(s, now))
			memset(s, 0, sizeof(*s));
		if (s->id[0] == '\0') {
			slot = s;
			break;
		}
		if (s->used < slot->used)
			slot = s;
	}
	memset(slot, 0, sizeof(*slot));
	rc = random_hex(slot->id);
	if (rc == 0)
		rc = random_hex(slot->csrf);
	if (rc != 0) {
		memset(slot, 0, sizeof(*slot));
		goto done;
	}
	snprintf(slot->user, sizeof(slot->user), "%s", user);
	slot->role = role;
	slot->created = slot->used = now;
	memcpy(sid, slot->id, 65);
done:
	pthread_mutex_unlock(&a->mu);
	return rc;
}

void
http_auth_logout(struct http_auth *a, const char *sid)
{
	if (sid == NULL || sid[0] == '\0')
		return;
	pthread_mutex_lock(&a->mu);
	for (size_t i = 0; i < HTTP_SESSIONS_MAX; i++) {
		if (a->sessions[i].id[0] != '\0' && http_auth_equal(a->sessions[i].id, sid))
			memset(&a->sessions[i], 0, sizeof(a->sessions[i]));
	}
	pthread_mutex_unlock(&a->mu);
}
