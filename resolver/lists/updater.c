/*
 * updater: downloads on a schedule, list-file watchers, the state `veto lists` shows
 * (see updater.h).
 */
#include "updater.h"

#include <errno.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "fetch.h"
#include "log.h"
#include "text.h"

#define OUTCOME_MAX 128

struct source {
	char *list;		/* owned: list name */
	char *url;		/* owned */
	size_t list_idx, url_idx;
	int64_t last;		/* unix seconds of the last attempt, 0 = none */
	int64_t next;		/* unix seconds of the next one */
	int64_t good;		/* unix seconds of the last success (a new copy or "unchanged"),
				   from the copy's metadata at start; 0 = none */
	unsigned failures;	/* in a row */
	char outcome[OUTCOME_MAX];
	char error[FETCH_ERROR_MAX]; /* the last error, kept after a success */
};

struct watch {
	uv_fs_event_t h;
	struct updater *u;
	char *dir;		/* owned */
};

struct job {
	uv_work_t req;
	struct updater *u;
	struct policy *p;	/* a reference: the strings below live in its config */
	char *list, *url;	/* owned copies: the source may be gone when it completes */
	struct fetch_req freq;
	struct fetch_result res;
};

struct updater {
	uv_loop_t *loop;
	struct policy *p;
	updater_reload_cb *reload_cb;
	void *reload_arg;
	struct source *src;
	size_t nsrc;
	struct watch **watches;
	size_t nwatches;
	uv_timer_t timer;	/* the next download */
	uv_timer_t debounce;	/* list-file changes */
	struct job *job;	/* the download in flight */
	atomic_bool abort;
	unsigned open;		/* handles not closed yet, and the job */
	bool closing;
	void (*close_cb)(void *);
	void *close_arg;
};

static int global_users;

static void schedule(struct updater *u);

static void
maybe_closed(struct updater *u)
{
	if (!u->closing || u->open > 0 || u->close_cb == NULL)
		return;
	void (*cb)(void *) = u->close_cb;
	u->close_cb = NULL;
	cb(u->close_arg);
}

static void
on_handle_closed(uv_handle_t *h)
{
	struct updater *u = h->data;
	u->open--;
	maybe_closed(u);
}

static void
on_watch_closed(uv_handle_t *h)
{
	struct watch *w = h->data;
	struct updater *u = w->u;
	free(w->dir);
	free(w);
	u->open--;
	maybe_closed(u);
}

/* ---- sources ---- */

static void
sources_free(struct source *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(src[i].list);
		free(src[i].url);
	}
	free(src);
}

static struct source *
find_source(struct updater *u, const char *list, const char *url)
{
	for (size_t i = 0; i < u->nsrc; i++)
		if (strcmp(u->src[i].list, list) == 0 && strcmp(u->src[i].url, url) == 0)
			return &u->src[i];
	return NULL;
}

/* One source per URL of p's lists; the state of those already known is kept. */
static int
build_sources(struct updater *u, struct policy *p)
{
	const struct config *cfg = policy_config(p);
	size_t n = 0;
	for (size_t l = 0; l < cfg->nlists; l++)
		n += cfg->lists[l].nurls;
	struct source *src = calloc(n ? n : 1, sizeof(*src));
	if (src == NULL)
		return -ENOMEM;
	size_t k = 0;
	int64_t now = (int64_t)time(NULL);
	for (size_t l = 0; l < cfg->nlists; l++) {
		const struct config_list *cl = &cfg->lists[l];
		for (size_t i = 0; i < cl->nurls; i++) {
			struct source *s = &src[k];
			struct source *old = find_source(u, cl->name, cl->urls[i]);
			if (old != NULL) {
				*s = *old;
				old->list = old->url = NULL; /* moved */
			} else {
				s->list = strdup(cl->name);
				s->url = strdup(cl->urls[i]);
				int64_t good = fetch_last_good(cl->cache_files[i], cl->urls[i]);
				s->next = good > 0 ? good + cl->refresh_s : now;
				s->good = good > 0 ? good : 0;
			}
			s->list_idx = l;
			s->url_idx = i;
			k++;
			if (s->list == NULL || s->url == NULL) {
				sources_free(src, k);
				return -ENOMEM;
			}
		}
	}
	sources_free(u->src, u->nsrc);
	u->src = src;
	u->nsrc = k;
	return 0;
}

/* ---- downloads ---- */

static void
on_fetch_work(uv_work_t *req)
{
	struct job *j = req->data;
	fetch_run(&j->freq, &j->res);
}

/* 12345 -> "12,345" */
static const char *
thousands(size_t v, char *buf, size_t size)
{
	char raw[32];
	int n = snprintf(raw, sizeof(raw), "%zu", v);
	size_t w = 0;
	for (int i = 0; i < n && w + 2 < size; i++) {
		if (i > 0 && (n - i) % 3 == 0)
			buf[w++] = ',';
		buf[w++] = raw[i];
	}
	buf[w] = '\0';
	return buf;
}

static void
job_free(struct job *j)
{
	policy_unref(&j->p);
	free(j->list);
	free(j->url);
	free(j);
}

static void
on_fetch_done(uv_work_t *req, int status)
{
	struct job *j = req->data;
	struct updater *u = j->u;
	const struct fetch_result *r = &j->res;
	char num[32];

	u->job = NULL;
	u->open--;
	if (u->closing || status == UV_ECANCELED) {
		job_free(j);
		maybe_closed(u);
		return;
	}
	struct source *s = find_source(u, j->list, j->url);
	const struct config *cfg = policy_config(u->p);
	int64_t now = (int64_t)time(NULL);
	uint32_t refresh = s != NULL ? cfg->lists[s->list_idx].refresh_s : 0;
	bool reload = false;

	if (r->outcome == FETCH_FAILED) {
		log_warning("lists: %s: %s: error: %s (keeping the last good copy)", j->list, j->url,
			    r->error);
	} else if (r->outcome == FETCH_NOT_MODIFIED) {
		log_info("lists: %s: %s: %s", j->list, j->url,
			 r->http_status == 304 ? "304 not modified" : "200, unchanged");
	} else {
		log_info("lists: %s: %s: %ld, %s names (%zu lines skipped)", j->list, j->url,
			 r->http_status, thousands(r->names, num, sizeof(num)), r->skipped);
		reload = true;
	}
	if (s != NULL) {
		s->last = now;
		if (r->outcome == FETCH_FAILED) {
			uint64_t back = (uint64_t)UPDATER_RETRY_FIRST_S << (s->failures < 16 ? s->failures : 16);
			if (back > refresh)
				back = refresh;
			s->failures++;
			s->next = now + (int64_t)back;
			snprintf(s->outcome, sizeof(s->outcome), "error");
			text_copy(s->error, sizeof(s->error), r->error);
		} else {
			s->failures = 0;
			s->good = now;
			s->next = now + refresh;
			if (r->outcome == FETCH_NOT_MODIFIED)
				snprintf(s->outcome, sizeof(s->outcome), "%s",
					 r->http_status == 304 ? "304 not modified" : "200 unchanged");
			else
				snprintf(s->outcome, sizeof(s->outcome), "%ld, %s names",
					 r->http_status, thousands(r->names, num, sizeof(num)));
		}
	}
	char why[256];
	snprintf(why, sizeof(why), "lists: %s: new copy", j->list);
	job_free(j);
	if (reload && u->reload_cb != NULL)
		u->reload_cb(u->reload_arg, why);
	schedule(u);
}

static void
start_fetch(struct updater *u, struct source *s)
{
	const struct config *cfg = policy_config(u->p);
	const struct config_list *cl = &cfg->lists[s->list_idx];
	struct job *j = calloc(1, sizeof(*j));
	if (j == NULL || (j->list = strdup(s->list)) == NULL || (j->url = strdup(s->url)) == NULL) {
		if (j != NULL)
			free(j->list);
		free(j);
		s->next = (int64_t)time(NULL) + UPDATER_RETRY_FIRST_S;
		return;
	}
	j->u = u;
	j->p = policy_ref(u->p);
	j->req.data = j;
	j->freq = (struct fetch_req){
		.url = j->url,
		.copy = cl->cache_files[s->url_idx],
		.ca_file = cl->ca_file,
		.timeout_s = cl->timeout_s,
		.max_size = cl->max_size,
		.abort = &u->abort,
	};
	if (uv_queue_work(u->loop, &j->req, on_fetch_work, on_fetch_done) != 0) {
		job_free(j);
		s->next = (int64_t)time(NULL) + UPDATER_RETRY_FIRST_S;
		return;
	}
	s->next = INT64_MAX; /* until it completes */
	u->job = j;
	u->open++;
}

static void
on_timer(uv_timer_t *t)
{
	struct updater *u = t->data;
	if (u->closing || u->job != NULL)
		return;
	int64_t now = (int64_t)time(NULL);
	struct source *due = NULL;
	for (size_t i = 0; i < u->nsrc; i++)
		if (u->src[i].next <= now && (due == NULL || u->src[i].next < due->next))
			due = &u->src[i];
	if (due != NULL)
		start_fetch(u, due);
	schedule(u);
}

/* Arms the timer for the earliest source due (none while a download runs). */
static void
schedule(struct updater *u)
{
	if (u->closing)
		return;
	uv_timer_stop(&u->timer);
	if (u->job != NULL || u->nsrc == 0)
		return;
	int64_t first = INT64_MAX, now = (int64_t)time(NULL);
	for (size_t i = 0; i < u->nsrc; i++)
		if (u->src[i].next < first)
			first = u->src[i].next;
	uint64_t ms = first <= now ? 0 : (uint64_t)(first - now) * 1000;
	uv_timer_start(&u->timer, on_timer, ms, 0);
}

void
updater_refresh(struct updater *u)
{
	int64_t now = (int64_t)time(NULL);
	for (size_t i = 0; i < u->nsrc; i++)
		if (u->src[i].next != INT64_MAX)
			u->src[i].next = now;
	schedule(u);
}

/* ---- list-file watchers ---- */

static void
on_debounce(uv_timer_t *t)
{
	struct updater *u = t->data;
	if (!u->closing && u->reload_cb != NULL)
		u->reload_cb(u->reload_arg, "lists: a list file changed");
}

/* True when name is the base name of one of the list files in folder dir. */
static bool
is_list_file(const struct updater *u, const char *dir, const char *name)
{
	const struct config *cfg = policy_config(u->p);
	char buf[4096];
	for (size_t l = 0; l < cfg->nlists; l++) {
		for (size_t i = 0; i < cfg->lists[l].nfiles; i++) {
			const char *f = cfg->lists[l].files[i];
			const char *slash = strrchr(f, '/');
			const char *base = slash != NULL ? slash + 1 : f;
			if (strcmp(base, name) != 0)
				continue;
			text_copy(buf, sizeof(buf), f);
			if (strcmp(dirname(buf), dir) == 0)
				return true;
		}
	}
	return false;
}

static void
on_dir_event(uv_fs_event_t *h, const char *filename, int events, int status)
{
	struct watch *w = h->data;
	struct updater *u = w->u;
	(void)events;
	if (u->closing || status != 0)
		return;
	if (filename != NULL && !is_list_file(u, w->dir, filename))
		return; /* a query log or a database beside the lists changes all the time */
	uv_timer_start(&u->debounce, on_debounce, UPDATER_DEBOUNCE_MS, 0);
}

static void
unwatch(struct updater *u)
{
	for (size_t i = 0; i < u->nwatches; i++) {
		uv_fs_event_stop(&u->watches[i]->h);
		uv_close((uv_handle_t *)&u->watches[i]->h, on_watch_closed);
	}
	free(u->watches);
	u->watches = NULL;
	u->nwatches = 0;
}

/* One watcher per distinct folder of the list files. */
static void
watch(struct updater *u)
{
	const struct config *cfg = policy_config(u->p);
	size_t n = 0;
	for (size_t l = 0; l < cfg->nlists; l++)
		n += cfg->lists[l].nfiles;
	if (n == 0 || (u->watches = calloc(n, sizeof(*u->watches))) == NULL)
		return;
	for (size_t l = 0; l < cfg->nlists; l++) {
		for (size_t i = 0; i < cfg->lists[l].nfiles; i++) {
			char buf[4096];
			text_copy(buf, sizeof(buf), cfg->lists[l].files[i]);
			const char *dir = dirname(buf);
			bool seen = false;
			for (size_t k = 0; k < u->nwatches && !seen; k++)
				seen = strcmp(u->watches[k]->dir, dir) == 0;
			if (seen)
				continue;
			struct watch *w = calloc(1, sizeof(*w));
			if (w == NULL || (w->dir = strdup(dir)) == NULL) {
				free(w);
				return;
			}
			w->u = u;
			uv_fs_event_init(u->loop, &w->h);
			w->h.data = w;
			u->open++;
			u->watches[u->nwatches++] = w;
			int err = uv_fs_event_start(&w->h, on_dir_event, dir, 0);
			if (err != 0)
				log_warning("lists: %s: cannot watch for changes: %s (reload to apply "
					    "edits)", dir, uv_strerror(err));
		}
	}
}

/* ---- life cycle ---- */

int
updater_new(uv_loop_t *loop, struct policy *p, updater_reload_cb *cb, void *arg,
	    struct updater **out)
{
	struct updater *u = calloc(1, sizeof(*u));
	if (u == NULL)
		return -ENOMEM;
	if (global_users++ == 0 && fetch_global_init() != 0) {
		global_users--;
		free(u);
		return -ENOMEM;
	}
	u->loop = loop;
	u->p = policy_ref(p);
	u->reload_cb = cb;
	u->reload_arg = arg;
	atomic_init(&u->abort, false);
	if (build_sources(u, p) != 0) {
		policy_unref(&u->p);
		if (--global_users == 0)
			fetch_global_cleanup();
		free(u);
		return -ENOMEM;
	}
	uv_timer_init(loop, &u->timer);
	uv_timer_init(loop, &u->debounce);
	u->timer.data = u->debounce.data = u;
	u->open = 2;
	watch(u);
	schedule(u);
	*out = u;
	return 0;
}

void
updater_reconfigure(struct updater *u, struct policy *p)
{
	if (u->closing)
		return;
	if (build_sources(u, p) != 0)
		log_error("lists: out of memory: downloads not rescheduled");
	policy_unref(&u->p);
	u->p = policy_ref(p);
	unwatch(u);
	watch(u);
	schedule(u);
}

void
updater_close(struct updater *u, void (*cb)(void *arg), void *arg)
{
	if (u->closing)
		return;
	u->closing = true;
	u->close_cb = cb;
	u->close_arg = arg;
	atomic_store(&u->abort, true);
	if (u->job != NULL)
		uv_cancel((uv_req_t *)&u->job->req); /* fails when running: it stops by itself */
	uv_timer_stop(&u->timer);
	uv_timer_stop(&u->debounce);
	uv_close((uv_handle_t *)&u->timer, on_handle_closed);
	uv_close((uv_handle_t *)&u->debounce, on_handle_closed);
	unwatch(u);
}

void
updater_free(struct updater **up)
{
	struct updater *u = *up;
	if (u == NULL)
		return;
	REQUIRE(u->open == 0);
	sources_free(u->src, u->nsrc);
	policy_unref(&u->p);
	if (--global_users == 0)
		fetch_global_cleanup();
	free(u);
	*up = NULL;
}

/* ---- status ---- */

struct out {
	char *buf;
	size_t len, cap;
	bool oom;
};

static void
put(struct out *o, const char *s, bool word)
{
	static const char hex[] = "0123456789ABCDEF";
	if (s == NULL || s[0] == '\0')
		s = "-";
	size_t need = o->len + 3 * strlen(s) + 4;
	if (need > o->cap) {
		size_t cap = o->cap ? o->cap : 1024;
		while (cap < need)
			cap *= 2;
		char *nb = realloc(o->buf, cap);
		if (nb == NULL) {
			o->oom = true;
			return;
		}
		o->buf = nb;
		o->cap = cap;
	}
	if (word && o->len > 0 && o->buf[o->len - 1] != '\n')
		o->buf[o->len++] = ' ';
	for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
		if (word && (*p <= 0x20 || *p == 0x7f || *p == '%')) {
			o->buf[o->len++] = '%';
			o->buf[o->len++] = hex[*p >> 4];
			o->buf[o->len++] = hex[*p & 15];
		} else {
			o->buf[o->len++] = (char)*p;
		}
	}
	o->buf[o->len] = '\0';
}

static void
put_num(struct out *o, int64_t v)
{
	char b[32];
	if (v <= 0 || v == INT64_MAX) {
		put(o, "-", true);
		return;
	}
	snprintf(b, sizeof(b), "%" PRId64, v);
	put(o, b, true);
}

static void
put_line(struct out *o, const char *name, const char *kind, const char *source,
	 const struct policy_list_stats *st, const struct source *s)
{
	char b[32];
	put(o, name, true);
	put(o, kind, true);
	put(o, source, true);
	snprintf(b, sizeof(b), "%zu", st->entries);
	put(o, b, true);
	snprintf(b, sizeof(b), "%zu", st->skipped);
	put(o, b, true);
	put_num(o, s != NULL ? s->last : 0);
	put_num(o, s != NULL ? s->next : 0);
	put(o, s != NULL ? s->outcome : NULL, true);
	put(o, s != NULL ? s->error : NULL, true);
	put(o, "\n", false);
}

int
updater_url_stat(const struct updater *u, size_t list_idx, size_t url_idx,
		 struct updater_url_stat *out)
{
	for (size_t k = 0; u != NULL && k < u->nsrc; k++) {
		const struct source *s = &u->src[k];
		if (s->list_idx == list_idx && s->url_idx == url_idx) {
			out->last_attempt = s->last;
			out->last_good = s->good;
			out->failures = s->failures;
			return 0;
		}
	}
	return -ENOENT;
}

char *
updater_status(const struct updater *u)
{
	const struct config *cfg = policy_config(u->p);
	struct out o = {0};
	put(&o, "", false); /* allocated even when there is no list */
	o.len = 0;
	if (o.buf != NULL)
		o.buf[0] = '\0';
	for (size_t l = 0; l < cfg->nlists; l++) {
		const struct config_list *cl = &cfg->lists[l];
		struct policy_list_stats st = {0};
		char inl[64];
		policy_list_stats(u->p, (int)l, &st);
		for (size_t i = 0; i < cl->nfiles; i++)
			put_line(&o, cl->name, "file", cl->files[i], &st, NULL);
		for (size_t i = 0; i < cl->nurls; i++) {
			const struct source *s = NULL;
			for (size_t k = 0; k < u->nsrc && s == NULL; k++)
				if (u->src[k].list_idx == l && u->src[k].url_idx == i)
					s = &u->src[k];
			put_line(&o, cl->name, "url", cl->urls[i], &st, s);
		}
		if (cl->ndomains > 0) {
			snprintf(inl, sizeof(inl), "inline (%zu)", cl->ndomains);
			put_line(&o, cl->name, "inline", inl, &st, NULL);
		}
	}
	if (o.oom) {
		free(o.buf);
		return NULL;
	}
	return o.buf;
}
