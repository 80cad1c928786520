/*
 * querylog: the ring between the event loop and the writer thread, the writer thread, the
 * device-event queue, and reloads (see querylog.h). The JSON line is formatted by record.c and
 * written by the file sink (jsonl.c); the database sink is logdb.c.
 *
 * The loop thread (single producer) copies a record into a power-of-two ring and publishes it
 * with one atomic store of 'head'. A slot holds the record packed: only the octets in use
 * (address lengths, name length, string lengths) are copied, so a submit touches two or three
 * cache lines instead of the eleven of a struct querylog_record, and the ring's working set
 * stays small (measured: the copy into a cold 11 MB ring of full records cost ~260 ns). The
 * writer thread (single consumer) formats records into a large buffer, releases their slots by
 * storing 'tail', then writes the buffer with write(2) (jsonl.c).
 * It sleeps at most WRITER_SLEEP_MS; the producer wakes it early only when the ring holds
 * 'wake_at' records and the writer is asleep, so most submits never touch the mutex.
 * Each record leaves the ring once and goes to both sinks: the JSON line into the buffer, the
 * row into the database's open transaction (logdb.h), committed after each drain.
 */
#include "querylog.h"
#include "querylog_int.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fileio.h"
#include "jsonl.h"
#include "log.h"
#include "logdb.h"
#include "sockaddr.h"


/* ---- public ---- */

/* The ring on huge pages when the kernel allows it: slots are touched in order over megabytes,
 * so this saves a TLB miss every few submits. Zeroed and touched up front, so no submit takes
 * a page fault. */
static struct slot *
ring_alloc(size_t cap)
{
	const size_t huge = 2u << 20;
	size_t size = cap * sizeof(struct slot);
	void *p = NULL;

	if (size >= huge) {
		size = (size + huge - 1) & ~(huge - 1);
		if (posix_memalign(&p, huge, size) != 0)
			return NULL;
		(void)madvise(p, size, MADV_HUGEPAGE);
	} else {
		p = malloc(size);
		if (p == NULL)
			return NULL;
	}
	memset(p, 0, size);
	return p;
}

/* The chunks log.evidence_buffer_mb allows (0: the default), the first one included. */
static size_t
evidence_chunks(uint32_t mb)
{
	uint64_t bytes = (uint64_t)(mb > 0 ? mb : QUERYLOG_EVIDENCE_MB) << 20;
	uint64_t n = bytes / OVF_CHUNK_BYTES;

	return n > 1 ? (size_t)n : 1;
}

static size_t
round_pow2(size_t n)
{
	size_t p = 2;

	while (p < n)
		p <<= 1;
	return p;
}

int
querylog_new_capacity(const struct config *cfg, size_t capacity, struct querylog **out)
{
	struct querylog *ql;
	sigset_t all, old;
	/* no file named: standard output, unless the database is the sink */
	const char *path = cfg->log.file != NULL ? cfg->log.file
			   : cfg->log.database == NULL && cfg->store.postgresql == NULL ? "-" : NULL;
	int rc;

	ql = calloc(1, sizeof(*ql));
	if (ql == NULL)
		return -ENOMEM;
	ql->file.fd = -1;
	pthread_mutex_init(&ql->submit_mu, NULL); /* default attributes: cannot fail */
	atomic_init(&ql->mode, (int)cfg->log.queries);
	if (cfg->log.queries == CONFIG_LOG_NONE)
		goto done;

	ql->cap = round_pow2(capacity);
	ql->mask = ql->cap - 1;
	ql->wake_at = ql->cap / 16 > 0 ? ql->cap / 16 : 1;
	ql->fwd_cap = ql->cap - ql->cap / QUERYLOG_EVIDENCE_SHARE;
	ql->ovf_w = ql->ovf_r = calloc(1, sizeof(*ql->ovf_w)); /* the first chunk, kept */
	ql->ovf_woff = ql->ovf_roff = 0;
	atomic_init(&ql->ovf_max_chunks, evidence_chunks(cfg->log.evidence_buffer_mb));
	atomic_init(&ql->ovf_max_next, 0);
	ql->file.path = path != NULL ? strdup(path) : NULL;
	ql->db_path = cfg->log.database != NULL ? strdup(cfg->log.database) : NULL;
	ql->retention_days = cfg->log.retention_days;
	ql->ring = ring_alloc(ql->cap);
	ql->file.buf = malloc(JSONL_BUF);
	if (cfg->store.postgresql != NULL) {
		/* the shared store replaces the SQLite one (config_check drops log.database) */
		free(ql->db_path);
		ql->db_path = NULL;
		rc = pgstore_new(cfg, &ql->pg);
		if (rc != 0)
			goto cleanup;
	}
	if (ql->db_path != NULL || ql->pg != NULL) {
		ql->events = calloc(QUERYLOG_EVENTS, sizeof(*ql->events));
		if (ql->events == NULL) {
			rc = -ENOMEM;
			goto cleanup;
		}
		ql->ncap = QUERYLOG_EVENTS;
		ql->events_on = true;
	}
	if ((path != NULL && ql->file.path == NULL) ||
	    (cfg->log.database != NULL && ql->db_path == NULL) || ql->ring == NULL ||
	    ql->file.buf == NULL || ql->ovf_w == NULL) {
		rc = -ENOMEM;
		goto cleanup;
	}
	if (pthread_mutex_init(&ql->mu, NULL) != 0) {
		rc = -ENOMEM;
		goto cleanup;
	}
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	rc = -pthread_cond_init(&ql->cv, &ca);
	pthread_condattr_destroy(&ca);
	if (rc != 0) {
		pthread_mutex_destroy(&ql->mu);
		goto cleanup;
	}
	ql->sync_init = true;

	rc = jsonl_open(&ql->file); /* nothing when the database is the only sink */
	if (rc != 0)
		goto cleanup;

	if ((ql->db_path != NULL || ql->pg != NULL) && cfg->state_dir != NULL) {
		rc = querylog_make_state_dir(cfg->state_dir);
		if (rc != 0)
			log_error("state_dir '%s': cannot create: %s (the query database cannot be "
				  "opened there; DNS keeps working)",
				  cfg->state_dir, strerror(-rc));
	}

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&ql->thread, NULL, querylog_writer_main, ql);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		log_error("query log: cannot start the writer thread: %s", strerror(-rc));
		goto cleanup;
	}
	ql->thread_started = true;
done:
	*out = ql;
	return 0;
cleanup:
	querylog_free(&ql);
	return rc;
}

int
querylog_new(const struct config *cfg, struct querylog **out)
{
	return querylog_new_capacity(cfg, QUERYLOG_RING, out);
}

bool
querylog_wants(const struct querylog *ql, bool blocked)
{
	if (ql == NULL)
		return false;
	switch (atomic_load_explicit(&ql->mode, memory_order_relaxed)) {
	case CONFIG_LOG_ALL:
		return true;
	case CONFIG_LOG_BLOCKED:
		return blocked;
	default:
		return false;
	}
}

/* A forwarded record that finds no room: counted exactly, reported per interval. */
static int
unlogged(struct querylog *ql)
{
	atomic_fetch_add_explicit(&ql->unlogged, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ql->dropped, 1, memory_order_relaxed);
	return -ENOBUFS;
}

/* A record when its part of the ring is full (or the overflow already holds records: they
 * keep their order). A blocked record may take every chunk up to the bound (ovf_max_chunks); a
 * forwarded one only the first half of them (querylog_ovf_fwd_room), so that a writer held up
 * for a moment (a CPU shared with the loop, a slow write) loses nothing, and a writer that
 * stays behind still leaves half the buffer to the evidence. 0, or -ENOBUFS: a blocked record
 * lost (counted, reported as an error) or a forwarded one counted as unlogged. Allocates only
 * while the overflow grows past the chunk it has (and the spare the writer keeps). */
static int
ovf_push(struct querylog *ql, const struct querylog_record *r)
{
	uint64_t in = atomic_load_explicit(&ql->ovf_in, memory_order_relaxed);
	size_t max = atomic_load_explicit(&ql->ovf_max_chunks, memory_order_relaxed);
	size_t next = atomic_load_explicit(&ql->ovf_max_next, memory_order_relaxed);
	if (next != 0 && atomic_load(&ql->ovf_chunks) + 1 <= querylog_ovf_fwd_room(next)) {
		/* a reload's smaller bound, now that what is in use leaves its other half free */
		atomic_store(&ql->ovf_max_chunks, next);
		atomic_store_explicit(&ql->ovf_max_next, 0, memory_order_relaxed);
		max = next;
	}
	size_t room = r->blocked ? max : querylog_ovf_fwd_room(max);

	if (ql->ovf_woff + SLOT_SIZE > OVF_CHUNK_BYTES) {
		if (atomic_load(&ql->ovf_chunks) + 1 >= room)
			goto lost;
		struct ovf_chunk *c = atomic_exchange(&ql->ovf_spare, NULL);
		if (c == NULL)
			c = malloc(sizeof(*c));
		if (c == NULL)
			goto lost;
		atomic_init(&c->next, NULL);
		atomic_fetch_add(&ql->ovf_chunks, 1);
		atomic_store_explicit(&ql->ovf_w->next, c, memory_order_release);
		ql->ovf_w = c;
		ql->ovf_woff = 0;
	} else if (!r->blocked && atomic_load(&ql->ovf_chunks) + 1 > room) {
		goto lost; /* past the forwarded half: the rest of this chunk is the evidence's */
	}
	struct slot *s = (struct slot *)((unsigned char *)ql->ovf_w->words + ql->ovf_woff);
	querylog_slot_pack(s, r);
	ql->ovf_woff += querylog_slot_bytes(s);
	atomic_store_explicit(&ql->ovf_in, in + 1, memory_order_release);
	uint64_t waiting = in + 1 - atomic_load_explicit(&ql->ovf_out, memory_order_relaxed);
	if (waiting > atomic_load_explicit(&ql->ovf_peak, memory_order_relaxed))
		atomic_store_explicit(&ql->ovf_peak, waiting, memory_order_relaxed);
	if (atomic_load(&ql->sleeping) && atomic_exchange(&ql->sleeping, false))
		querylog_wake_writer(ql);
	return 0;
lost:
	if (!r->blocked)
		return unlogged(ql);
	atomic_fetch_add(&ql->evidence_lost, 1);
	atomic_fetch_add_explicit(&ql->dropped, 1, memory_order_relaxed);
	return -ENOBUFS;
}

static int submit(struct querylog *ql, const struct querylog_record *r);

void
querylog_set_producers(struct querylog *ql, unsigned n)
{
	if (ql != NULL)
		ql->multi = n > 1;
}

int
querylog_submit(struct querylog *ql, const struct querylog_record *r)
{
	if (ql == NULL || !ql->thread_started)
		return 0;
	if (!ql->multi)
		return submit(ql, r);
	pthread_mutex_lock(&ql->submit_mu);
	int rc = submit(ql, r);
	pthread_mutex_unlock(&ql->submit_mu);
	return rc;
}

/* The single producer's submit (under submit_mu when there are several). */
static int
submit(struct querylog *ql, const struct querylog_record *r)
{
	/* forwarded (allowed) records use at most fwd_cap slots, then the overflow's first half;
	 * blocked ones the whole ring, then the whole overflow. While the overflow holds records
	 * nothing goes to the ring. */
	size_t limit = r->blocked ? ql->cap : ql->fwd_cap;
	uint64_t in = atomic_load_explicit(&ql->ovf_in, memory_order_relaxed);
	if (in != ql->ovf_out_cache) { /* the writer's line only while the overflow is in use */
		ql->ovf_out_cache = atomic_load_explicit(&ql->ovf_out, memory_order_acquire);
		if (in != ql->ovf_out_cache)
			return ovf_push(ql, r);
	}
	size_t h = atomic_load_explicit(&ql->head, memory_order_relaxed);
	if (h - ql->tail_cache >= limit) {
		ql->tail_cache = atomic_load_explicit(&ql->tail, memory_order_acquire);
		if (h - ql->tail_cache >= limit)
			return ovf_push(ql, r);
	}
	querylog_slot_pack(&ql->ring[h & ql->mask], r);
	/* seq_cst store, then seq_cst load of 'sleeping': pairs with querylog_writer_sleep() so that either
	 * the writer sees the record or this thread sees the writer asleep. */
	atomic_store(&ql->head, h + 1);
	if (atomic_load(&ql->sleeping)) {
		/* the writer does not move tail while it sleeps: this line is not contended */
		ql->tail_cache = atomic_load_explicit(&ql->tail, memory_order_acquire);
		if (h + 1 - ql->tail_cache >= ql->wake_at && atomic_exchange(&ql->sleeping, false))
			querylog_wake_writer(ql);
	}
	return 0;
}

void
querylog_reopen(struct querylog *ql)
{
	if (ql == NULL || !ql->thread_started)
		return;
	atomic_store(&ql->reopen, true);
	if (atomic_load(&ql->sleeping))
		querylog_wake_writer(ql);
}

/* strdup that keeps NULL; false when out of memory. */
static bool
dup_or_null(const char *s, char **out)
{
	*out = s != NULL ? strdup(s) : NULL;
	return s == NULL || *out != NULL;
}

int
querylog_reconfigure(struct querylog *ql, const struct config *cfg)
{
	bool on = cfg->log.queries != CONFIG_LOG_NONE;
	/* the sinks as querylog_new() picks them; none at all with log.queries none */
	const char *path = !on			     ? NULL
			   : cfg->log.file != NULL   ? cfg->log.file
			   : cfg->log.database == NULL && ql->pg == NULL ? "-"
						       : NULL;
	/* the shared store stays as started (store.* needs a restart); no SQLite beside it */
	const char *db = on && ql->pg == NULL ? cfg->log.database : NULL;
	struct identity_event *events = NULL;
	char *p = NULL, *d = NULL, *sd = NULL;

	if (!ql->thread_started) {
		if (on)
			return -EAGAIN;
		return 0; /* none, and still none */
	}
	if (!dup_or_null(path, &p) || !dup_or_null(db, &d) ||
	    !dup_or_null(db != NULL ? cfg->state_dir : NULL, &sd))
		goto nomem;
	if (db != NULL && ql->events == NULL) {
		events = calloc(QUERYLOG_EVENTS, sizeof(*events));
		if (events == NULL)
			goto nomem;
	}

	if (ql->multi)
		pthread_mutex_lock(&ql->submit_mu); /* head and ovf_in exact */
	pthread_mutex_lock(&ql->mu);
	if (events != NULL) {
		ql->events = events; /* the writer reads it under mu only */
		ql->ncap = QUERYLOG_EVENTS;
		events = NULL;
	}
	free(ql->next.path);
	free(ql->next.db_path);
	free(ql->next.state_dir);
	ql->next.set = true;
	/* this thread is the producer: its head is exact */
	ql->next.mark = atomic_load_explicit(&ql->head, memory_order_relaxed);
	ql->next.ovf_mark = atomic_load_explicit(&ql->ovf_in, memory_order_relaxed);
	ql->next.ev_mark = ql->events_in;
	ql->next.path = p;
	ql->next.db_path = d;
	ql->next.state_dir = sd;
	ql->next.retention_days = cfg->log.retention_days;
	ql->events_on = db != NULL || (on && ql->pg != NULL);
	/* the producer's own bound: a larger one applies from the next overflow chunk on; a
	 * smaller one once the records in use fit its forwarded half (ovf_push), so that records
	 * taken under the old bound never leave blocked ones less than the new bound's half */
	size_t want = evidence_chunks(cfg->log.evidence_buffer_mb);
	if (want >= atomic_load(&ql->ovf_max_chunks)) {
		atomic_store(&ql->ovf_max_next, 0);
		atomic_store(&ql->ovf_max_chunks, want);
	} else {
		atomic_store(&ql->ovf_max_next, want);
	}
	atomic_store(&ql->reconf, true);
	pthread_cond_signal(&ql->cv);
	pthread_mutex_unlock(&ql->mu);
	if (ql->multi)
		pthread_mutex_unlock(&ql->submit_mu);
	atomic_store_explicit(&ql->mode, (int)cfg->log.queries, memory_order_relaxed);
	return 0;

nomem:
	free(p);
	free(d);
	free(sd);
	free(events);
	return -ENOMEM;
}

void
querylog_free(struct querylog **qlp)
{
	struct querylog *ql = *qlp;

	if (ql == NULL)
		return;
	if (ql->thread_started) {
		atomic_store(&ql->stop, true);
		querylog_wake_writer(ql);
		pthread_join(ql->thread, NULL);
		uint64_t peak = atomic_load(&ql->ovf_peak);
		if (peak > 0)
			log_info("query log: evidence buffer: at most %llu records waited in it "
				 "at once (log.evidence_buffer_mb: %zu MiB)",
				 (unsigned long long)peak,
				 atomic_load(&ql->ovf_max_chunks) * OVF_CHUNK_BYTES >> 20);
	}
	jsonl_close(&ql->file);
	if (ql->sync_init) {
		pthread_cond_destroy(&ql->cv);
		pthread_mutex_destroy(&ql->mu);
	}
	free(ql->ring);
	free(atomic_load(&ql->ovf_spare));
	for (struct ovf_chunk *c = ql->ovf_r, *next; c != NULL; c = next) {
		next = atomic_load(&c->next);
		free(c);
	}
	pgstore_free(&ql->pg); /* the writer has finished it */
	free(ql->db_path);
	free(ql->next.path);
	free(ql->next.db_path);
	free(ql->next.state_dir);
	free(ql->events);
	pthread_mutex_destroy(&ql->submit_mu);
	free(ql);
	*qlp = NULL;
}

uint64_t
querylog_dropped(const struct querylog *ql)
{
	return ql != NULL ? atomic_load(&ql->dropped) : 0;
}

uint64_t
querylog_unlogged(const struct querylog *ql)
{
	return ql != NULL ? atomic_load(&ql->unlogged) : 0;
}

uint64_t
querylog_evidence_lost(const struct querylog *ql)
{
	return ql != NULL ? atomic_load(&ql->evidence_lost) : 0;
}

uint64_t
querylog_lost(const struct querylog *ql)
{
	return ql != NULL ? atomic_load(&ql->file.lost) : 0;
}

uint64_t
querylog_db_dropped(const struct querylog *ql)
{
	if (ql == NULL)
		return 0;
	uint64_t pg_lost = 0;
	if (ql->pg != NULL) {
		struct pgstore_stats st;
		pgstore_stats(ql->pg, &st);
		pg_lost = st.lost;
	}
	return atomic_load(&ql->db_dropped) + atomic_load(&ql->events_dropped) + pg_lost;
}

bool
querylog_pg_stats(const struct querylog *ql, struct pgstore_stats *st)
{
	if (ql == NULL || ql->pg == NULL)
		return false;
	pgstore_stats(ql->pg, st);
	return true;
}

int
querylog_submit_event(struct querylog *ql, const struct identity_event *ev)
{
	int rc = 0;

	if (ql == NULL || !ql->thread_started)
		return -ENOTSUP;
	pthread_mutex_lock(&ql->mu);
	if (!ql->events_on) {
		pthread_mutex_unlock(&ql->mu);
		return -ENOTSUP;
	}
	if (ql->nevents == ql->ncap && ql->ncap < QUERYLOG_EVENTS_MAX) {
		/* rare: events come one per device change; grown under mu (the writer copies out
		 * under it too) */
		size_t ncap = ql->ncap * 2 < QUERYLOG_EVENTS_MAX ? ql->ncap * 2 : QUERYLOG_EVENTS_MAX;
		struct identity_event *e = realloc(ql->events, ncap * sizeof(*e));
		if (e != NULL) {
			ql->events = e;
			ql->ncap = ncap;
		}
	}
	if (ql->nevents == ql->ncap) {
		rc = -ENOBUFS;
	} else {
		ql->events_in++;
		struct identity_event *e = &ql->events[ql->nevents++];
		*e = *ev;
		if (e->ts_ms == 0) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			e->ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
		}
	}
	pthread_mutex_unlock(&ql->mu);
	if (rc != 0) {
		uint64_t n = atomic_fetch_add(&ql->events_dropped, 1);
		if ((n & (n + 1)) == 0) /* 1st, 2nd, 4th, 8th...: loud but bounded */
			log_error("query log: device event lost: %llu events wait already (the "
				  "writer is too slow); %llu lost in all",
				  (unsigned long long)ql->ncap, (unsigned long long)n + 1);
	}
	return rc;
}

void
querylog_test_pause(struct querylog *ql, bool paused)
{
	if (ql == NULL || !ql->thread_started)
		return;
	atomic_store(&ql->paused, paused);
	if (!paused) {
		atomic_store(&ql->parked, false);
		querylog_wake_writer(ql);
		return;
	}
	querylog_wake_writer(ql);
	while (!atomic_load(&ql->parked)) {
		struct timespec ts = { 0, 1000000L };
		nanosleep(&ts, NULL);
	}
}

size_t
querylog_pending(const struct querylog *ql)
{
	if (ql == NULL || !ql->thread_started)
		return 0;
	return atomic_load(&ql->head) - atomic_load(&ql->tail) +
	       (size_t)(atomic_load(&ql->ovf_in) - atomic_load(&ql->ovf_out));
}

size_t
querylog_test_overflow_chunks(const struct querylog *ql)
{
	return ql != NULL ? atomic_load(&ql->ovf_chunks) : 0;
}

bool
querylog_test_reconfiguring(const struct querylog *ql)
{
	return ql != NULL && atomic_load(&ql->reconf);
}
