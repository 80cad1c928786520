/*
 * metrics_feed: the loop's counters handed to the HTTP threads (see metrics_feed.h).
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "metrics_feed.h"

struct metrics_feed {
	uv_async_t async;
	struct server *srv;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	uint64_t asked, filled; /* requests made, requests answered (under mu) */
	bool closing;
	bool refreshing;            /* loop thread only: counters asked for, not yet answered */
	struct metrics staging;     /* loop thread only */
	struct metrics_devices dev; /* loop thread only: the last walk of the device table */
	uint64_t dev_ms;            /* uv_now() of that walk */
	struct metrics m;           /* the last snapshot, under mu */
};

static void
on_feed_fresh(void *arg)
{
	struct metrics_feed *f = arg;
	f->refreshing = false;
	if (f->closing)
		return;
	metrics_snapshot(f->srv, &f->staging);
	uint64_t now = uv_now(f->async.loop);
	if (!f->dev.taken || now - f->dev_ms >= METRICS_DEVICES_EVERY_MS) {
		metrics_snapshot_devices(f->srv, &f->staging);
		f->dev = f->staging.dev;
		f->dev_ms = now;
	} else {
		f->staging.dev = f->dev;
	}
	pthread_mutex_lock(&f->mu);
	uint64_t asked = f->asked;
	f->m = f->staging;
	f->filled = asked;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
}

/* A handler asked: the other workers' counters are asked for first (server.workers); the
 * snapshot is taken once they answered, the loop never waits. */
static void
on_feed_async(uv_async_t *h)
{
	struct metrics_feed *f = h->data;
	if (f->closing || f->refreshing)
		return; /* the round in flight answers this request too */
	f->refreshing = true;
	server_refresh_counters(f->srv, on_feed_fresh, f);
}

int
metrics_feed_new(uv_loop_t *loop, struct server *srv, struct metrics_feed **out)
{
	pthread_condattr_t ca;
	struct metrics_feed *f = calloc(1, sizeof(*f));
	if (f == NULL)
		return -ENOMEM;
	int err = uv_async_init(loop, &f->async, on_feed_async);
	if (err != 0) {
		free(f);
		return err;
	}
	uv_unref((uv_handle_t *)&f->async); /* the DNS server decides when the loop ends */
	f->async.data = f;
	f->srv = srv;
	pthread_mutex_init(&f->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&f->cv, &ca);
	pthread_condattr_destroy(&ca);
	*out = f;
	return 0;
}

int
metrics_feed_get(struct metrics_feed *f, struct metrics *out, unsigned timeout_ms)
{
	struct timespec until;
	int rc = 0;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += timeout_ms / 1000;
	until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&f->mu);
	if (f->closing) {
		pthread_mutex_unlock(&f->mu);
		return -EAGAIN;
	}
	uint64_t want = ++f->asked;
	uv_async_send(&f->async);
	while (f->filled < want && !f->closing && rc == 0)
		rc = pthread_cond_timedwait(&f->cv, &f->mu, &until);
	if (f->filled >= want)
		*out = f->m;
	rc = f->filled >= want ? 0 : -EAGAIN;
	pthread_mutex_unlock(&f->mu);
	return rc;
}

static void
on_feed_close(uv_handle_t *h)
{
	struct metrics_feed *f = h->data;
	pthread_cond_destroy(&f->cv);
	pthread_mutex_destroy(&f->mu);
	free(f);
}

void
metrics_feed_close(struct metrics_feed *f)
{
	if (f == NULL)
		return;
	pthread_mutex_lock(&f->mu);
	f->closing = true;
	pthread_cond_broadcast(&f->cv);
	pthread_mutex_unlock(&f->mu);
	uv_close((uv_handle_t *)&f->async, on_feed_close);
}
