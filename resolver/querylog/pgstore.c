/*
 * pgstore: the PostgreSQL sink of the query log (see pgstore.h). On the querylog writer
 * thread, records become COPY text lines with the values of the JSON line (record.c's
 * querylog_text: the same text, NULL where the line has null) and a batch is handed to the
 * sender thread; the sender connects (pgstore_conn.c), sends (pgstore_send.c), spools and
 * replays (pgstore_spool.c). The writer never calls libpq: it only spools, itself, a batch
 * that grew to PGSTORE_BATCH_MAX rows while the sender was busy with the previous one.
 */
#include "pgstore.h"
#include "pgstore_int.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "hash.h"
#include "json.h"
#include "log.h"
#include "pg.h"

#define BUF_START (4u << 20)
#define ROW_MAX   (32u << 10) /* one row's COPY text at most (escaping included) */

static bool
grow(char **buf, size_t *cap, size_t need)
{
	if (need <= *cap)
		return true;
	size_t n = *cap > 0 ? *cap : BUF_START;
	while (n < need)
		n *= 2;
	char *p = realloc(*buf, n);
	if (p == NULL)
		return false;
	*buf = p;
	*cap = n;
	return true;
}

/* ---- COPY text ---- */

/* A text value: \N for none (NULL or ""), else escaped for COPY's text format (backslash, tab,
 * newline, carriage return) with each octet that does not start valid UTF-8 replaced by
 * U+FFFD, as the JSON line does (json.h). Then the separator. */
char *
pgstore_put_value(char *p, const char *s, size_t n, char sep)
{
	if (s == NULL || n == 0) {
		memcpy(p, "\\N", 2);
		p += 2;
	} else {
		const unsigned char *u = (const unsigned char *)s;
		for (size_t i = 0; i < n;) {
			unsigned char ch = u[i];
			if (ch >= 0x80) {
				size_t k = json_utf8_seq(u + i, n - i);
				if (k == 0) {
					memcpy(p, "\xef\xbf\xbd", 3);
					p += 3;
					i++;
				} else {
					memcpy(p, u + i, k);
					p += k;
					i += k;
				}
				continue;
			}
			if (ch == '\\' || ch == '\t' || ch == '\n' || ch == '\r') {
				*p++ = '\\';
				*p++ = ch == '\\' ? '\\' : ch == '\t' ? 't' : ch == '\n' ? 'n' : 'r';
			} else if (ch == 0) {
				break;
			} else {
				*p++ = (char)ch;
			}
			i++;
		}
	}
	*p++ = sep;
	return p;
}

static char *
put_str(char *p, const char *s, char sep)
{
	return pgstore_put_value(p, s, s != NULL ? strlen(s) : 0, sep);
}

/* "2026-11-22 03:58:22.123+00" and the separator; the date formatted once per second. */
static char *
put_ts(char *p, uint64_t ts_ms, char sep)
{
	static _Thread_local time_t last = -1;
	static _Thread_local char text[64];
	time_t secs = (time_t)(ts_ms / 1000);
	unsigned ms = (unsigned)(ts_ms % 1000);

	if (secs != last) {
		struct tm tm;
		if (gmtime_r(&secs, &tm) == NULL)
			memset(&tm, 0, sizeof(tm));
		snprintf(text, sizeof(text), "%04d-%02d-%02d %02d:%02d:%02d.", tm.tm_year + 1900,
		         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
		last = secs;
	}
	memcpy(p, text, 20);
	p += 20;
	*p++ = (char)('0' + ms / 100);
	*p++ = (char)('0' + ms / 10 % 10);
	*p++ = (char)('0' + ms % 10);
	memcpy(p, "+00", 3);
	p += 3;
	*p++ = sep;
	return p;
}

static char *
put_uint(char *p, uint64_t v, char sep)
{
	char tmp[24];
	size_t i = sizeof(tmp);

	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	memcpy(p, tmp + i, sizeof(tmp) - i);
	p += sizeof(tmp) - i;
	*p++ = sep;
	return p;
}

/* ---- state ---- */

void
pgstore_count_lost(struct pgstore *ps, uint64_t n)
{
	atomic_fetch_add(&ps->lost, n);
	atomic_fetch_add(&ps->lost_in_outage, n);
}

static void
set_state(struct pgstore *ps, enum pgstore_state s)
{
	atomic_store(&ps->state, (int)s);
}

void
pgstore_conn_failed(struct pgstore *ps, const char *what, const char *why)
{
	if (ps->conn != NULL) {
		PQfinish(ps->conn);
		ps->conn = NULL;
	}
	if (!ps->failing) {
		ps->failing = true;
		ps->replayed = 0;
		log_error("query store: PostgreSQL: %s: %s (queries are spooled to '%s' until it is "
		          "back; DNS is not affected)",
		          what, why, ps->spool_dir);
	} else {
		log_debug("query store: PostgreSQL: %s: %s", what, why);
	}
	set_state(ps, PGSTORE_DOWN);
	ps->backoff_ms = ps->backoff_ms == 0 ? PGSTORE_RETRY_MIN_MS
	                 : ps->backoff_ms * 2 > PGSTORE_RETRY_MAX_MS ? PGSTORE_RETRY_MAX_MS
	                                                             : ps->backoff_ms * 2;
	ps->retry_at = pgstore_mono_ms() + ps->backoff_ms;
}

static void
batch_reset(struct pgstore_batch *b)
{
	b->qlen = b->elen = 0;
	b->nrows = b->nevents = 0;
	b->row_off[0] = 0;
	b->day_lo = INT32_MAX;
	b->day_hi = INT32_MIN;
	b->seq = 0;
}

void
pgstore_name_batch(struct pgstore *ps, struct pgstore_batch *b)
{
	if (b->seq == 0)
		b->seq = atomic_fetch_add(&ps->seq, 1) + 1;
}

static int
batch_init(struct pgstore_batch *b)
{
	b->row_off = calloc(PGSTORE_BATCH_MAX + 1, sizeof(*b->row_off));
	b->row_blocked = calloc(PGSTORE_BATCH_MAX, 1);
	if (b->row_off == NULL || b->row_blocked == NULL || !grow(&b->q, &b->qcap, BUF_START) ||
	    !grow(&b->e, &b->ecap, 1u << 16))
		return -ENOMEM;
	batch_reset(b);
	return 0;
}

static void
batch_free(struct pgstore_batch *b)
{
	free(b->q);
	free(b->e);
	free(b->row_off);
	free(b->row_blocked);
}

/* ---- the sender thread ---- */

bool
pgstore_stopping(struct pgstore *ps)
{
	pthread_mutex_lock(&ps->mu);
	bool stop = ps->stop;
	pthread_mutex_unlock(&ps->mu);
	return stop;
}

/* The outage is over once the spool is empty: one line with what it cost. */
static void
recovered(struct pgstore *ps)
{
	if (!ps->failing || ps->conn == NULL || !pgstore_spool_empty(ps))
		return;
	ps->failing = false;
	pthread_mutex_lock(&ps->spool_mu);
	ps->spool_full = false;
	pthread_mutex_unlock(&ps->spool_mu);
	log_warning("query store: PostgreSQL: writing again; %" PRIu64 " rows replayed from the "
	            "spool, %" PRIu64 " queries were not stored",
	            ps->replayed, atomic_exchange(&ps->lost_in_outage, 0));
	ps->replayed = 0;
}

static void
connect_now(struct pgstore *ps, uint64_t wall)
{
	char why[512];
	int32_t today = (int32_t)(wall / PGSTORE_DAY_MS);
	bool first = atomic_load(&ps->state) == PGSTORE_CONNECTING;

	int rc = pgstore_connect(ps, wall, &ps->conn, why, sizeof(why));
	if (rc == -ECANCELED) {
		ps->failing = true; /* stopping: what is left goes to the spool */
		return;
	}
	if (rc != 0) {
		pgstore_conn_failed(ps, "cannot connect", why);
		return;
	}
	ps->part_lo = today;
	ps->part_hi = today + 1;
	ps->backoff_ms = 0;
	set_state(ps, PGSTORE_UP);
	if (first)
		log_info("query store: PostgreSQL: connected as '%s' (schema version %d)",
		         ps->instance, PG_SCHEMA_VERSION);
}

/* Sends the batch, or spools it (no connection, spooled batches before it, a failure). */
static void
send_batch(struct pgstore *ps, struct pgstore_batch *b)
{
	char why[512];
	int rc = -EAGAIN;

	if (b->nrows + b->nevents == 0)
		return;
	/* named before its first attempt: should its outcome be lost, the spooled copy keeps
	   the name, and a second attempt finds it stored */
	pgstore_name_batch(ps, b);
	if (ps->conn != NULL && pgstore_spool_empty(ps)) {
		uint64_t deadline = pgstore_deadline(b->nrows);
		rc = 0;
		if (b->nrows > 0 && (b->day_lo < ps->part_lo || b->day_hi > ps->part_hi)) {
			rc = pgstore_partitions(ps->conn, b->day_lo, b->day_hi, deadline, why,
			                        sizeof(why));
			if (rc == 0) {
				ps->part_lo = b->day_lo < ps->part_lo ? b->day_lo : ps->part_lo;
				ps->part_hi = b->day_hi > ps->part_hi ? b->day_hi : ps->part_hi;
			}
		}
		struct pgstore_key key = {ps->instance, ps->run, b->seq, b->nrows, b->nevents};
		bool already;
		if (rc == 0)
			rc = pgstore_send(ps->conn, &key, b->q, b->qlen, b->e, b->elen, deadline,
			                  &already, why, sizeof(why));
		if (rc == 0) {
			atomic_fetch_add(&ps->stored, b->nrows);
		} else if (rc == -EINVAL) {
			log_error("query store: PostgreSQL refused a batch: %s (%u rows, %u events "
			          "not stored)",
			          why, (unsigned)b->nrows, (unsigned)b->nevents);
			pgstore_count_lost(ps, (uint64_t)b->nrows + b->nevents);
		} else {
			pgstore_conn_failed(ps, "connection lost", why);
		}
	}
	if (rc != 0 && rc != -EINVAL)
		pgstore_spool_batch(ps, b);
	batch_reset(b);
}

/* Tomorrow's partition a day ahead; retention at connect, then daily or when changed. */
static void
housekeeping(struct pgstore *ps, uint64_t mono, uint64_t wall)
{
	char why[512];
	int32_t tomorrow = (int32_t)(wall / PGSTORE_DAY_MS) + 1;

	if (tomorrow > ps->part_hi) {
		int rc = pgstore_partitions(ps->conn, ps->part_hi + 1, tomorrow,
		                            pgstore_mono_ms() + PGSTORE_SEND_MS, why, sizeof(why));
		if (rc == 0)
			ps->part_hi = tomorrow;
		else if (rc != -EINVAL)
			pgstore_conn_failed(ps, "cannot create a partition", why);
	}
	/* this instance's batch keys, once none of its batches can be sent again */
	if (ps->conn != NULL && mono >= ps->prune_at && pgstore_spool_empty(ps)) {
		int rc = pgstore_prune_keys(ps->conn, ps->instance, ps->run,
		                            pgstore_mono_ms() + PGSTORE_SEND_MS, why, sizeof(why));
		if (rc == -EPIPE || rc == -ETIMEDOUT)
			pgstore_conn_failed(ps, "connection lost", why);
		else if (rc != 0)
			log_debug("query store: PostgreSQL: stored_batches: %s", why);
		ps->prune_at = mono + PGSTORE_PRUNE_MS;
	}
	uint32_t days = atomic_load(&ps->retention_days);
	if (ps->conn == NULL || days == 0 ||
	    (mono < ps->retention_at && days == ps->retention_done))
		return;
	int rc = pgstore_retention(ps->conn, days, wall, why, sizeof(why));
	if (rc == -EPIPE) {
		pgstore_conn_failed(ps, "connection lost", why);
		return;
	}
	if (rc != 0)
		log_warning("query store: retention: %s (tried again in an hour)", why);
	ps->retention_done = days;
	ps->retention_at = mono + (rc == 0 ? PGSTORE_RETENTION_MS : 3600u * 1000);
}

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void *
sender_main(void *arg)
{
	struct pgstore *ps = arg;

	pthread_setname_np(pthread_self(), "veto-pg");
	for (;;) {
		pthread_mutex_lock(&ps->mu);
		if (!ps->has_pending && !ps->stop) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += 1;
			pthread_cond_timedwait(&ps->cv, &ps->mu, &ts);
		}
		bool stop = ps->stop, got = ps->has_pending;
		if (got) {
			struct pgstore_batch t = ps->sending;
			ps->sending = ps->pending;
			ps->pending = t;
			ps->has_pending = false;
		}
		pthread_mutex_unlock(&ps->mu);

		uint64_t mono = pgstore_mono_ms(), wall = wall_ms();
		if (ps->conn == NULL && mono >= ps->retry_at && !(stop && ps->failing))
			connect_now(ps, wall);
		/* older than the batch: first (at the end, left for the next start) */
		if (ps->conn != NULL && !stop && !pgstore_spool_empty(ps))
			pgstore_spool_replay(ps);
		send_batch(ps, &ps->sending);
		if (ps->conn != NULL) {
			recovered(ps);
			if (!stop)
				housekeeping(ps, mono, wall);
		}
		if (stop && !got)
			break;
	}
	if (ps->conn != NULL) {
		PQfinish(ps->conn);
		ps->conn = NULL;
	}
	return NULL;
}

/* ---- the writer's side ---- */

/* Hands the batch to the sender when it has taken the last one; else keeps filling it, up to
 * PGSTORE_BATCH_MAX rows, then spools it (the sender is that far behind). */
static void
hand_over(struct pgstore *ps, bool force)
{
	struct pgstore_batch *b = &ps->fill;

	if (b->nrows + b->nevents == 0)
		return;
	pthread_mutex_lock(&ps->mu);
	bool taken = !ps->has_pending;
	if (taken) {
		struct pgstore_batch t = ps->pending;
		ps->pending = *b;
		*b = t;
		ps->has_pending = true;
		pthread_cond_signal(&ps->cv);
	}
	pthread_mutex_unlock(&ps->mu);
	if (!taken && (force || b->nrows >= PGSTORE_BATCH_MAX || b->qlen > (96u << 20))) {
		pgstore_spool_batch(ps, b);
		taken = true;
	}
	if (taken)
		batch_reset(b);
}

/* ---- public ---- */

int
pgstore_new(const struct config *cfg, struct pgstore **out)
{
	struct pgstore *ps = calloc(1, sizeof(*ps));
	char dir[4096];

	if (ps == NULL)
		return -ENOMEM;
	pg_instance(cfg, ps->instance, sizeof(ps->instance));
	snprintf(dir, sizeof(dir), "%s/spool", cfg->state_dir != NULL ? cfg->state_dir : ".");
	ps->cfg.store.postgresql = strdup(cfg->store.postgresql);
	ps->cfg.store.instance = strdup(ps->instance);
	ps->cfg.store.password_file =
	        cfg->store.password_file != NULL ? strdup(cfg->store.password_file) : NULL;
	ps->spool_dir = strdup(dir);
	ps->spool_max = (uint64_t)(cfg->store.spool_mb > 0 ? cfg->store.spool_mb : 1024) << 20;
	ps->run = (hash_seed() >> 1) | 1; /* a positive bigint in stored_batches */
	ps->wake_fd = -1;
	atomic_init(&ps->retention_days, cfg->log.retention_days);
	atomic_init(&ps->state, PGSTORE_CONNECTING);
	if (ps->cfg.store.postgresql == NULL || ps->cfg.store.instance == NULL ||
	    (cfg->store.password_file != NULL && ps->cfg.store.password_file == NULL) ||
	    ps->spool_dir == NULL || batch_init(&ps->fill) != 0 || batch_init(&ps->pending) != 0 ||
	    batch_init(&ps->sending) != 0) {
		pgstore_free(&ps);
		return -ENOMEM;
	}
	*out = ps;
	return 0;
}

void
pgstore_start(struct pgstore *ps)
{
	sigset_t all, old;
	pthread_condattr_t ca;

	ps->mono = pgstore_mono_ms();
	pthread_mutex_init(&ps->mu, NULL);
	pthread_mutex_init(&ps->spool_mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ps->cv, &ca);
	pthread_condattr_destroy(&ca);
	ps->started = true;
	ps->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ps->wake_fd < 0)
		log_warning("query store: eventfd: %s (stopping may wait for a connection attempt)",
		            strerror(errno));
	pgstore_spool_open(ps);
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&ps->thread, NULL, sender_main, ps);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		log_error("query store: cannot start the PostgreSQL thread: %s (queries are "
		          "spooled)",
		          strerror(rc));
	ps->thread_started = rc == 0;
}

static bool
room(struct pgstore *ps)
{
	struct pgstore_batch *b = &ps->fill;

	if (b->nrows == 0 && b->nevents == 0)
		b->started = ps->mono;
	if (b->nrows >= PGSTORE_BATCH_MAX)
		hand_over(ps, true);
	return grow(&b->q, &b->qcap, b->qlen + ROW_MAX) && grow(&b->e, &b->ecap, b->elen + ROW_MAX);
}

void
pgstore_add(struct pgstore *ps, const struct querylog_record *r)
{
	struct pgstore_batch *b = &ps->fill;
	struct querylog_text t;

	if (!room(ps)) {
		pgstore_count_lost(ps, 1);
		return;
	}
	querylog_text(r, &t);
	char *p = b->q + b->qlen;
	p = put_ts(p, r->ts_ms, '\t');
	p = put_str(p, ps->instance, '\t');
	if (t.client[0] == '\0')
		*p++ = '\t'; /* NOT NULL: '' when the record has no address */
	else
		p = put_str(p, t.client, '\t');
	p = put_str(p, t.mac, '\t');
	p = put_str(p, t.device, '\t');
	p = put_str(p, t.group, '\t');
	p = put_str(p, t.vendor, '\t');
	p = put_str(p, identity_source_name(r->vendor_source), '\t');
	p = put_str(p, t.qname, '\t');
	p = put_str(p, t.qtype, '\t');
	p = put_str(p, r->tcp ? "tcp" : "udp", '\t');
	p = put_str(p, r->blocked ? "t" : "f", '\t');
	p = put_str(p, t.list, '\t');
	p = put_str(p, t.rule, '\t');
	p = put_str(p, querylog_action_name(r->action), '\t');
	p = put_str(p, t.rcode, '\t');
	p = put_str(p, t.upstream, '\t');
	p = put_uint(p, r->latency_us, '\n');
	b->qlen = (size_t)(p - b->q);
	b->row_blocked[b->nrows] = r->blocked;
	b->row_off[++b->nrows] = (uint32_t)b->qlen;
	int32_t day = (int32_t)(r->ts_ms / PGSTORE_DAY_MS);
	b->day_lo = day < b->day_lo ? day : b->day_lo;
	b->day_hi = day > b->day_hi ? day : b->day_hi;
	if (b->nrows >= PGSTORE_BATCH_ROWS && b->nrows % 1024 == 0)
		hand_over(ps, false);
}

void
pgstore_add_event(struct pgstore *ps, const struct logdb_event *ev)
{
	struct pgstore_batch *b = &ps->fill;

	if (!room(ps)) {
		pgstore_count_lost(ps, 1);
		return;
	}
	char *p = b->e + b->elen;
	p = put_ts(p, ev->ts_ms, '\t');
	p = put_str(p, ps->instance, '\t');
	p = put_str(p, ev->device, '\t');
	p = put_str(p, ev->mac, '\t');
	p = put_str(p, ev->client, '\t');
	p = put_str(p, ev->kind != NULL ? ev->kind : "unknown", '\t');
	p = put_str(p, ev->old_group, '\t');
	p = put_str(p, ev->new_group, '\t');
	p = put_str(p, ev->evidence, '\t');
	p = put_str(p, ev->vendor, '\n');
	b->elen = (size_t)(p - b->e);
	b->nevents++;
}

void
pgstore_tick(struct pgstore *ps, uint64_t mono_ms, uint64_t wall_ms_now)
{
	(void)wall_ms_now;
	ps->mono = mono_ms;
	struct pgstore_batch *b = &ps->fill;
	if (b->nrows + b->nevents > 0 && mono_ms - b->started >= PGSTORE_COMMIT_MS)
		hand_over(ps, false);
}

void
pgstore_set_retention(struct pgstore *ps, uint32_t retention_days)
{
	atomic_store(&ps->retention_days, retention_days); /* the sender sees the change */
}

void
pgstore_finish(struct pgstore *ps)
{
	if (!ps->started)
		return;
	if (!ps->thread_started) {
		pgstore_spool_batch(ps, &ps->fill);
		batch_reset(&ps->fill);
	}
	/* the last batch to the sender, or to the spool when it is still busy (a long replay) */
	if (ps->thread_started)
		hand_over(ps, true);
	if (ps->thread_started) {
		pthread_mutex_lock(&ps->mu);
		ps->stop = true;
		pthread_cond_signal(&ps->cv);
		pthread_mutex_unlock(&ps->mu);
		if (ps->wake_fd >= 0) { /* a connection attempt in progress gives up */
			uint64_t one = 1;
			ssize_t w = write(ps->wake_fd, &one, sizeof(one));
			(void)w;
		}
		pthread_join(ps->thread, NULL);
		ps->thread_started = false;
	}
	uint64_t waiting = atomic_load(&ps->spooled_rows);
	if (waiting > 0)
		log_warning("query store: %" PRIu64 " rows wait in the spool '%s' (sent at the next "
		            "start)",
		            waiting, ps->spool_dir);
	uint64_t lost = atomic_load(&ps->lost_in_outage);
	if (lost > 0)
		log_warning("query store: %" PRIu64 " queries were not stored", lost);
	pthread_cond_destroy(&ps->cv);
	pthread_mutex_destroy(&ps->mu);
	pthread_mutex_destroy(&ps->spool_mu);
	if (ps->wake_fd >= 0)
		close(ps->wake_fd);
	ps->wake_fd = -1;
	ps->started = false;
}

void
pgstore_stats(const struct pgstore *ps, struct pgstore_stats *st)
{
	st->state = (enum pgstore_state)atomic_load(&ps->state);
	st->stored = atomic_load(&ps->stored);
	st->spooled_rows = atomic_load(&ps->spooled_rows);
	st->spool_bytes = atomic_load(&ps->spool_bytes);
	st->lost = atomic_load(&ps->lost);
}

const char *
pgstore_state_name(enum pgstore_state s)
{
	switch (s) {
	case PGSTORE_UP:
		return "up";
	case PGSTORE_DOWN:
		return "down";
	default:
		return "connecting";
	}
}

void
pgstore_free(struct pgstore **psp)
{
	struct pgstore *ps = *psp;

	if (ps == NULL)
		return;
	pgstore_finish(ps);
	free(ps->cfg.store.postgresql);
	free(ps->cfg.store.instance);
	free(ps->cfg.store.password_file);
	free(ps->spool_dir);
	batch_free(&ps->fill);
	batch_free(&ps->pending);
	batch_free(&ps->sending);
	free(ps);
	*psp = NULL;
}
