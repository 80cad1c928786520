/*
 * worker: the threads of server.workers (see worker.h). Lifetime of one worker:
 *
 *   main loop: workers_start -> uv_thread_create, wait on 'started'
 *   thread:    loop init -> server_new_worker -> wake async, publish timer -> server_start
 *              -> post 'started' -> uv_run ... -> (stopped) close wake and timer -> loop ends
 *              -> publish the last counters, server_free, uv_loop_close -> send 'done'
 *   main loop: on_worker_done -> join the thread, close 'done' -> server_object_closed
 *
 * The main server finalizes (and frees the query log) only after every worker's 'done' handle
 * has closed, so every record a worker submitted reaches the writer before it stops.
 */
#include "worker.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "log.h"
#include "server_int.h"

/* What a worker publishes for the main loop's snapshots. */
struct worker_pub {
	struct server_stats stats;
	struct metrics_counts counts;
	struct cache_stats cache;
	struct upstream_stats upstream;
	struct upstream_server_stats servers[METRICS_SERVERS];
	size_t nservers;
	uint64_t tcp_connections;
	uint64_t policies;		/* policies swapped in since start */
};

struct worker {
	struct server *main;		/* the main server (main loop) */
	unsigned index;			/* 1.. */
	uv_thread_t thread;
	uv_sem_t started;
	int start_err;			/* written by the thread before 'started' is posted */
	bool thread_started;

	/* the worker's loop and server: its thread only (after start) */
	uv_loop_t loop;
	struct server *srv;
	uv_async_t wake;		/* main -> worker */
	uv_timer_t publish;
	unsigned stops_seen;
	uint64_t policies;

	uv_async_t done;		/* worker -> main, on the main loop */
	bool done_open;

	/* shared, under mu */
	uv_mutex_t mu;
	struct policy *next_policy;	/* one reference, for the worker to swap in */
	unsigned stops;			/* server_stop calls to pass on */
	bool wake_closed;		/* no more messages: the worker has stopped */
	bool ended;			/* the thread's last act is sending 'done': join it */
	struct worker_pub pub;
	uint64_t pub_asked, pub_done;	/* snapshots asked for by the main loop, and made */
	uint64_t swap_asked, swap_done;	/* policies handed over, and taken (or dropped) */
	bool help_asked;		/* read the main server's UDP sockets (workers_assist) */
	/* set by the main loop when it asks for help, cleared by the worker when it has read
	 * what waited: a worker is asked once at a time */
	atomic_bool helping;
};

/* What the main loop waits for (main loop only): a policy swap, rounds of counter snapshots.
 * Each worker answers by its 'done' async; a timer bounds each wait. */
#define WORKERS_WAITERS 16
struct workers_waiter {
	workers_done_cb cb;
	void *arg;
};

struct workers_ctl {
	uv_timer_t swap_timer, pub_timer;
	bool closed;
	bool swapping;
	workers_done_cb swap_cb;
	void *swap_arg;
	bool refreshing;
	struct workers_waiter cur[WORKERS_WAITERS], next[WORKERS_WAITERS];
	size_t ncur, nnext;
};

unsigned
worker_count(const struct config *cfg)
{
	if (cfg->server.workers > 0)
		return cfg->server.workers;
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (n < 64 ? (unsigned)n : 64) : 1;
}

/* Copies the counters of the worker's server into pub (the worker's thread). */
static void
publish(struct worker *w)
{
	struct server *s = w->srv;
	struct worker_pub p;

	memset(&p, 0, sizeof(p));
	p.stats = s->stats;
	p.counts = s->counts;
	if (s->cache != NULL)
		cache_get_stats(s->cache, &p.cache);
	if (s->upstream != NULL) {
		upstream_get_stats(s->upstream, &p.upstream);
		p.nservers = upstream_get_server_stats(s->upstream, p.servers, METRICS_SERVERS);
	}
	p.tcp_connections = s->nactive;
	p.policies = w->policies;
	uv_mutex_lock(&w->mu);
	w->pub = p;
	bool answered = w->pub_done != w->pub_asked;
	w->pub_done = w->pub_asked;
	uv_mutex_unlock(&w->mu);
	if (answered)
		uv_async_send(&w->done); /* the main loop completes the snapshot */
}

static void
on_publish_timer(uv_timer_t *t)
{
	publish(t->data);
}

static void
on_worker_stopped(void *arg)
{
	struct worker *w = arg;

	publish(w);
	uv_mutex_lock(&w->mu);
	w->wake_closed = true;
	if (w->next_policy != NULL)
		policy_unref(&w->next_policy);
	uv_mutex_unlock(&w->mu);
	uv_async_send(&w->done); /* a wait for this worker ends: it answers no more */
	uv_close((uv_handle_t *)&w->wake, NULL);
	uv_timer_stop(&w->publish);
	uv_close((uv_handle_t *)&w->publish, NULL);
}

static void
on_worker_wake(uv_async_t *a)
{
	struct worker *w = a->data;

	uv_mutex_lock(&w->mu);
	struct policy *pol = w->next_policy;
	uint64_t swap = w->swap_asked;
	w->next_policy = NULL;
	unsigned stops = w->stops;
	bool asked = w->pub_asked != w->pub_done;
	bool help = w->help_asked;
	w->help_asked = false;
	uv_mutex_unlock(&w->mu);
	if (help) {
		if (w->srv->state == SERVER_RUNNING && udp_help(w->srv)) {
			/* still more waiting: again after this loop's own events */
			uv_mutex_lock(&w->mu);
			w->help_asked = true;
			uv_mutex_unlock(&w->mu);
			uv_async_send(&w->wake);
		} else
			atomic_store_explicit(&w->helping, false, memory_order_release);
	}
	if (asked)
		publish(w);
	if (pol != NULL) {
		if (w->srv->state == SERVER_RUNNING) {
			server_swap_policy(w->srv, pol);
			w->policies++;
			publish(w); /* the new count at once */
		} else
			policy_unref(&pol);
	}
	if (swap != w->swap_done) { /* written by this thread only */
		uv_mutex_lock(&w->mu);
		w->swap_done = swap;
		uv_mutex_unlock(&w->mu);
		uv_async_send(&w->done);
	}
	while (w->stops_seen < stops) {
		w->stops_seen++;
		server_stop(w->srv, on_worker_stopped, w);
	}
}

static void
worker_main(void *arg)
{
	struct worker *w = arg;
	struct policy *pol = w->next_policy; /* the main loop waits on 'started' meanwhile */
	int err;

	char name[16];
	snprintf(name, sizeof(name), "veto-dns%u", w->index);
	pthread_setname_np(pthread_self(), name); /* for top -H, ps -L */
	w->next_policy = NULL;
	err = uv_loop_init(&w->loop);
	if (err != 0) {
		policy_unref(&pol);
		goto failed;
	}
	err = server_new_worker(&w->loop, pol, w->main, &w->srv);
	if (err != 0) {
		policy_unref(&pol);
		uv_loop_close(&w->loop);
		goto failed;
	}
	w->srv->self = w;
	if (w->main->devshare != NULL) /* made before the threads, never changed */
		w->srv->devreader = devices_share_reader(w->main->devshare, w->index - 1);
	uv_async_init(&w->loop, &w->wake, on_worker_wake);
	w->wake.data = w;
	uv_timer_init(&w->loop, &w->publish);
	w->publish.data = w;
	uv_timer_start(&w->publish, on_publish_timer, WORKER_PUBLISH_MS, WORKER_PUBLISH_MS);
	err = server_start(w->srv);
	w->start_err = err;
	uv_sem_post(&w->started);
	if (err != 0)
		server_stop(w->srv, on_worker_stopped, w);
	uv_run(&w->loop, UV_RUN_DEFAULT);

	uv_mutex_lock(&w->mu);
	struct server *s = w->srv;
	w->srv = NULL;
	uv_mutex_unlock(&w->mu);
	server_free(&s);
	err = uv_loop_close(&w->loop);
	if (err != 0)
		log_error("worker %u: loop not closed: %s", w->index, uv_strerror(err));
	uv_mutex_lock(&w->mu);
	w->ended = true;
	uv_mutex_unlock(&w->mu);
	uv_async_send(&w->done); /* last: the main loop joins the thread */
	return;

failed:
	log_error("worker %u: cannot start: %s", w->index, uv_strerror(err));
	uv_mutex_lock(&w->mu);
	w->wake_closed = true;
	w->ended = true;
	uv_mutex_unlock(&w->mu);
	w->start_err = err;
	uv_sem_post(&w->started);
	uv_async_send(&w->done);
}

static void
on_done_closed(uv_handle_t *h)
{
	struct worker *w = h->data;
	server_object_closed(w->main);
}

static void check_waits(struct server *s);

/* A worker answered (a swap, a snapshot), stopped, or its thread ended. */
static void
on_worker_done(uv_async_t *a)
{
	struct worker *w = a->data;

	if (!w->done_open)
		return;
	uv_mutex_lock(&w->mu);
	bool ended = w->ended;
	uv_mutex_unlock(&w->mu);
	if (ended) {
		uv_thread_join(&w->thread); /* it is past its last act */
		w->thread_started = false;
		w->done_open = false;
		uv_close((uv_handle_t *)&w->done, on_done_closed);
	}
	check_waits(w->main);
	if (ended)
		server_worker_ended(w->main);
}

bool
workers_ended(const struct server *s)
{
	for (unsigned i = 0; i < s->nstarted; i++)
		if (s->workers[i].done_open)
			return false;
	return true;
}

int
workers_start(struct server *s)
{
	unsigned n = s->nworkers - 1;
	sigset_t all, old;

	if (n == 0)
		return 0;
	s->workers = calloc(n, sizeof(*s->workers));
	s->wctl = calloc(1, sizeof(*s->wctl));
	if (s->workers == NULL || s->wctl == NULL)
		return -ENOMEM;
	uv_timer_init(s->loop, &s->wctl->swap_timer);
	uv_timer_init(s->loop, &s->wctl->pub_timer);
	s->wctl->swap_timer.data = s->wctl->pub_timer.data = s;
	s->nobjects += 2; /* closed by workers_close */
	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &s->workers[i];
		w->main = s;
		w->index = i + 1;
		if (uv_mutex_init(&w->mu) != 0)
			return -ENOMEM;
		if (uv_sem_init(&w->started, 0) != 0) {
			uv_mutex_destroy(&w->mu);
			return -ENOMEM;
		}
		uv_async_init(s->loop, &w->done, on_worker_done);
		w->done.data = w;
		w->done_open = true;
		s->nobjects++;
		w->next_policy = policy_ref(s->policy);
		/* the signals are the main loop's */
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		int err = uv_thread_create(&w->thread, worker_main, w);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		s->nstarted = i + 1;
		if (err != 0) {
			policy_unref(&w->next_policy);
			w->wake_closed = true;
			w->done_open = false;
			uv_close((uv_handle_t *)&w->done, on_done_closed);
			log_error("worker %u: cannot start a thread: %s", w->index, uv_strerror(err));
			return err;
		}
		w->thread_started = true;
		uv_sem_wait(&w->started);
		if (w->start_err != 0)
			return w->start_err;
	}
	return 0;
}

void
workers_stop(struct server *s)
{
	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		w->stops++;
		if (!w->wake_closed)
			uv_async_send(&w->wake);
		uv_mutex_unlock(&w->mu);
	}
}

void
workers_assist(struct server *s)
{
	unsigned n = s->nstarted;

	for (unsigned i = 0; i < n; i++) {
		struct worker *w = &s->workers[(s->help_next + i) % n];
		if (atomic_load_explicit(&w->helping, memory_order_acquire))
			continue;
		uv_mutex_lock(&w->mu);
		bool open = !w->wake_closed;
		if (open) {
			w->help_asked = true;
			atomic_store_explicit(&w->helping, true, memory_order_relaxed);
			uv_async_send(&w->wake);
		}
		uv_mutex_unlock(&w->mu);
		if (open) {
			s->help_next = (s->help_next + i + 1) % n;
			s->stats.udp_help_requests++;
			return;
		}
	}
}

/* Whether every started worker answered (or can answer no more): want_swap for the policy
 * handed over last, else for the snapshot asked last. Names the laggards when warn. */
static bool
all_answered(const struct server *s, bool want_swap, bool warn)
{
	bool all = true;
	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		bool ok = w->wake_closed ||
			  (want_swap ? w->swap_done == w->swap_asked : w->pub_done == w->pub_asked);
		uv_mutex_unlock(&w->mu);
		if (!ok && warn)
			log_warning("worker %u: still on the previous policy after %d ms", w->index,
				    WORKER_SWAP_WAIT_MS);
		all = all && ok;
	}
	return all;
}

static void
swap_done(struct server *s)
{
	struct workers_ctl *c = s->wctl;
	c->swapping = false;
	uv_timer_stop(&c->swap_timer);
	workers_done_cb cb = c->swap_cb;
	c->swap_cb = NULL;
	cb(c->swap_arg);
}

static void start_round(struct server *s);

static void
round_done(struct server *s)
{
	struct workers_ctl *c = s->wctl;
	struct workers_waiter done[WORKERS_WAITERS];
	size_t n = c->ncur;

	c->refreshing = false;
	uv_timer_stop(&c->pub_timer);
	memcpy(done, c->cur, n * sizeof(done[0]));
	/* asked during this round: the next one, so that their counters are fresh */
	memcpy(c->cur, c->next, c->nnext * sizeof(c->cur[0]));
	c->ncur = c->nnext;
	c->nnext = 0;
	for (size_t i = 0; i < n; i++)
		done[i].cb(done[i].arg);
	if (c->ncur > 0 && !c->refreshing && !c->closed)
		start_round(s);
}

static void
check_waits(struct server *s)
{
	struct workers_ctl *c = s->wctl;
	if (c == NULL)
		return;
	if (c->swapping && all_answered(s, true, false))
		swap_done(s);
	if (c->refreshing && all_answered(s, false, false))
		round_done(s);
}

static void
on_swap_timeout(uv_timer_t *t)
{
	struct server *s = t->data;
	if (s->wctl->swapping) {
		all_answered(s, true, true);
		swap_done(s);
	}
}

static void
on_pub_timeout(uv_timer_t *t)
{
	struct server *s = t->data;
	if (s->wctl->refreshing)
		round_done(s); /* past the wait: a worker's last published counters are used */
}

/* Asks every running worker for a fresh snapshot of its counters. */
static void
start_round(struct server *s)
{
	struct workers_ctl *c = s->wctl;
	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		if (!w->wake_closed) {
			w->pub_asked++;
			uv_async_send(&w->wake);
		}
		uv_mutex_unlock(&w->mu);
	}
	c->refreshing = true;
	uv_timer_start(&c->pub_timer, on_pub_timeout, WORKER_SNAPSHOT_WAIT_MS, 0);
	check_waits(s);
}

void
workers_swap_policy(struct server *s, struct policy *policy, workers_done_cb cb, void *arg)
{
	struct workers_ctl *c = s->wctl;

	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		if (!w->wake_closed) {
			if (w->next_policy != NULL)
				policy_unref(&w->next_policy); /* never taken: replaced */
			w->next_policy = policy_ref(policy);
			w->swap_asked++;
			uv_async_send(&w->wake);
		}
		uv_mutex_unlock(&w->mu);
	}
	if (c == NULL || c->closed || s->nstarted == 0) {
		cb(arg);
		return;
	}
	REQUIRE(!c->swapping); /* one reload at a time */
	/* one swap for all: cb (reload: ok) once every worker uses it, each answering through
	 * its 'done' async; past WORKER_SWAP_WAIT_MS, a warning names the ones that did not */
	c->swapping = true;
	c->swap_cb = cb;
	c->swap_arg = arg;
	uv_timer_start(&c->swap_timer, on_swap_timeout, WORKER_SWAP_WAIT_MS, 0);
	check_waits(s);
}

void
workers_refresh(struct server *s, workers_done_cb cb, void *arg)
{
	struct workers_ctl *c = s->wctl;

	if (c == NULL || c->closed || s->nstarted == 0) {
		cb(arg);
		return;
	}
	struct workers_waiter *list = c->refreshing ? c->next : c->cur;
	size_t *n = c->refreshing ? &c->nnext : &c->ncur;
	if (*n == WORKERS_WAITERS) {
		cb(arg); /* that many at once: the counters as last published */
		return;
	}
	list[*n] = (struct workers_waiter){cb, arg};
	(*n)++;
	if (!c->refreshing)
		start_round(s);
}

void
workers_close(struct server *s)
{
	struct workers_ctl *c = s->wctl;
	if (c == NULL || c->closed)
		return;
	c->closed = true;
	if (c->swapping)
		swap_done(s);
	while (c->refreshing || c->ncur > 0)
		round_done(s); /* the waiters, with the counters as last published */
	uv_close((uv_handle_t *)&c->swap_timer, server_handle_closed);
	uv_close((uv_handle_t *)&c->pub_timer, server_handle_closed);
}

/* Adds n uint64_t counters of src to dst. */
static void
add_u64(uint64_t *dst, const uint64_t *src, size_t n)
{
	for (size_t i = 0; i < n; i++)
		dst[i] += src[i];
}

#define ADD_ALL(dst, src)                                                                          \
	do {                                                                                       \
		_Static_assert(sizeof(*(dst)) % sizeof(uint64_t) == 0, "counters only");          \
		add_u64((uint64_t *)(dst), (const uint64_t *)(src),                                \
		        sizeof(*(dst)) / sizeof(uint64_t));                                         \
	} while (0)

void
workers_add_stats(const struct server *s, struct server_stats *st)
{
	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		uv_mutex_lock(&w->mu);
		ADD_ALL(st, &w->pub.stats);
		uv_mutex_unlock(&w->mu);
	}
}

void
workers_add_metrics(const struct server *s, struct metrics *m)
{
	_Static_assert(sizeof(size_t) == sizeof(uint64_t), "cache_stats sizes as counters");
	m->nworkers = s->nworkers;
	m->udp_shared = s->udp_shared;
	m->worker_queries[0] = s->stats.udp_queries + s->stats.tcp_queries;
	m->worker_reloads[0] = s->stats.reloads;
	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		const struct worker_pub *p = &w->pub;
		uv_mutex_lock(&w->mu);
		ADD_ALL(&m->server, &p->stats);
		ADD_ALL(&m->counts, &p->counts);
		ADD_ALL(&m->cache, &p->cache);
		ADD_ALL(&m->upstream, &p->upstream);
		m->tcp_connections += p->tcp_connections;
		if (w->index < METRICS_WORKERS) {
			m->worker_queries[w->index] = p->stats.udp_queries + p->stats.tcp_queries;
			m->worker_reloads[w->index] = p->policies;
		}
		/* the same servers in the same order, unless a reload is being applied */
		for (size_t j = 0; j < p->nservers && j < m->nservers; j++) {
			if (strcmp(m->servers[j].text, p->servers[j].text) != 0)
				continue;
			m->servers[j].answers += p->servers[j].answers;
			m->servers[j].errors += p->servers[j].errors;
			m->servers[j].sum_us += p->servers[j].sum_us;
			add_u64(m->servers[j].buckets, p->servers[j].buckets,
			        sizeof(p->servers[j].buckets) / sizeof(uint64_t));
		}
		uv_mutex_unlock(&w->mu);
	}
}

void
workers_free(struct server *s)
{
	for (unsigned i = 0; i < s->nstarted; i++) {
		struct worker *w = &s->workers[i];
		INSIST(!w->thread_started && !w->done_open);
		if (w->next_policy != NULL)
			policy_unref(&w->next_policy);
		uv_sem_destroy(&w->started);
		uv_mutex_destroy(&w->mu);
	}
	free(s->workers);
	s->workers = NULL;
	free(s->wctl);
	s->wctl = NULL;
	s->nstarted = 0;
}
