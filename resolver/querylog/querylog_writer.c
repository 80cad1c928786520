/*
 * querylog_writer: the writer thread of the query log. It drains the ring (and the evidence
 * overflow) in batches, writes each record to the JSON-lines sink (jsonl.c) and the database
 * (logdb.c) in one order, applies a reload's sink changes between two records, reports what was
 * not stored.
 */
#include "querylog.h"
#include "querylog_int.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "fileio.h"
#include "jsonl.h"
#include "log.h"
#include "logdb.h"
#include "sockaddr.h"
#include "text.h"


static void
do_reopen(struct querylog *ql)
{
	if (ql->db != NULL)
		logdb_reopen(ql->db);
	jsonl_reopen(&ql->file);
}

/* The octets of an address to keep: none for a null one (family 0). */
static uint8_t
addr_len(const struct sockaddr_storage *ss)
{
	if (ss->ss_family != AF_INET && ss->ss_family != AF_INET6)
		return 0;
	return (uint8_t)sockaddr_len((const struct sockaddr *)ss);
}

void
querylog_slot_pack(struct slot *s, const struct querylog_record *r)
{
	uint8_t *p = s->data;

	s->ts_ms = r->ts_ms;
	s->latency_us = r->latency_us;
	s->qtype = r->qtype;
	s->rule_label = r->rule_label;
	s->flags = (uint8_t)((r->tcp ? SLOT_TCP : 0) | (r->blocked ? SLOT_BLOCKED : 0) |
			     (r->has_group ? SLOT_GROUP : 0) | (r->has_list ? SLOT_LIST : 0) |
			     (r->has_mac ? SLOT_MAC : 0));
	s->action = r->action;
	s->rcode = r->rcode;
	s->qname_len = r->qname_len;
	s->client_len = addr_len(&r->client);
	s->upstream_len = addr_len(&r->upstream);
	s->group_len = r->has_group ? (uint8_t)strnlen(r->group, QUERYLOG_NAME_MAX) : 0;
	s->list_len = r->has_list ? (uint8_t)strnlen(r->list, QUERYLOG_NAME_MAX) : 0;
	memcpy(p, &r->client, s->client_len);
	p += s->client_len;
	memcpy(p, &r->upstream, s->upstream_len);
	p += s->upstream_len;
	memcpy(p, r->qname_wire, s->qname_len);
	p += s->qname_len;
	memcpy(p, r->group, s->group_len);
	p += s->group_len;
	memcpy(p, r->list, s->list_len);
	p += s->list_len;
	s->rule_len = r->rule_len;
	memcpy(p, r->rule_wire, s->rule_len);
	p += s->rule_len;
	s->device_len = (uint8_t)strnlen(r->device, sizeof(r->device));
	memcpy(p, r->device, s->device_len);
	p += s->device_len;
	s->vendor_len = (uint8_t)strnlen(r->vendor, sizeof(r->vendor));
	memcpy(p, r->vendor, s->vendor_len);
	p += s->vendor_len;
	s->vendor_source = r->vendor_source;
	if (r->has_mac)
		memcpy(p, r->mac, 6);
}

size_t
querylog_slot_bytes(const struct slot *s)
{
	size_t n = offsetof(struct slot, data) + (size_t)s->client_len + s->upstream_len +
		   s->qname_len + s->group_len + s->list_len + s->rule_len + s->device_len +
		   s->vendor_len + ((s->flags & SLOT_MAC) != 0 ? 6 : 0);

	return (n + 7) & ~(size_t)7;
}

static void
slot_unpack(const struct slot *s, struct querylog_record *r)
{
	const uint8_t *p = s->data;

	memset(r, 0, sizeof(*r));
	r->ts_ms = s->ts_ms;
	r->latency_us = s->latency_us;
	r->qtype = s->qtype;
	r->rule_label = s->rule_label;
	r->tcp = (s->flags & SLOT_TCP) != 0;
	r->blocked = (s->flags & SLOT_BLOCKED) != 0;
	r->has_group = (s->flags & SLOT_GROUP) != 0;
	r->has_list = (s->flags & SLOT_LIST) != 0;
	r->action = s->action;
	r->rcode = s->rcode;
	r->qname_len = s->qname_len;
	memcpy(&r->client, p, s->client_len);
	p += s->client_len;
	memcpy(&r->upstream, p, s->upstream_len);
	p += s->upstream_len;
	memcpy(r->qname_wire, p, s->qname_len);
	p += s->qname_len;
	memcpy(r->group, p, s->group_len);
	p += s->group_len;
	memcpy(r->list, p, s->list_len);
	p += s->list_len;
	r->rule_len = s->rule_len;
	memcpy(r->rule_wire, p, s->rule_len);
	p += s->rule_len;
	memcpy(r->device, p, s->device_len);
	p += s->device_len;
	memcpy(r->vendor, p, s->vendor_len);
	p += s->vendor_len;
	r->vendor_source = s->vendor_source;
	r->has_mac = (s->flags & SLOT_MAC) != 0;
	if (r->has_mac)
		memcpy(r->mac, p, 6);
}

static const char *
or_null(const char *s)
{
	return s[0] != '\0' ? s : NULL;
}

/* Moves the waiting device events into the database (copied out under the mutex): those queued
 * before *mark, or with mark NULL all of them, but never past the mark of a reload the writer
 * has not applied yet (those belong to the next database). */
static void
drain_events(struct querylog *ql, const uint64_t *mark)
{
	struct identity_event ev[16];
	size_t n;

	do {
		pthread_mutex_lock(&ql->mu);
		n = ql->nevents < 16 ? ql->nevents : 16;
		if (mark == NULL && ql->next.set)
			mark = &ql->next.ev_mark;
		if (mark != NULL) {
			uint64_t left = *mark > ql->events_out ? *mark - ql->events_out : 0;
			if (left < n)
				n = (size_t)left;
		}
		memcpy(ev, ql->events, n * sizeof(ev[0]));
		memmove(ql->events, ql->events + n, (ql->nevents - n) * sizeof(ev[0]));
		ql->nevents -= n;
		ql->events_out += n;
		pthread_mutex_unlock(&ql->mu);
		for (size_t i = 0; i < n; i++) {
			struct identity_event *e = &ev[i];
			/* every string NUL-terminated whatever the caller wrote */
			e->device[sizeof(e->device) - 1] = e->mac[sizeof(e->mac) - 1] = '\0';
			e->client[sizeof(e->client) - 1] = e->kind[sizeof(e->kind) - 1] = '\0';
			e->old_group[sizeof(e->old_group) - 1] = '\0';
			e->new_group[sizeof(e->new_group) - 1] = '\0';
			e->vendor[sizeof(e->vendor) - 1] = '\0';
			e->evidence[sizeof(e->evidence) - 1] = '\0';
			struct logdb_event le = {
				.ts_ms = e->ts_ms,
				.device = or_null(e->device),
				.mac = or_null(e->mac),
				.client = or_null(e->client),
				.kind = or_null(e->kind),
				.old_group = or_null(e->old_group),
				.new_group = or_null(e->new_group),
				.vendor = or_null(e->vendor),
				.evidence = or_null(e->evidence),
			};
			if (ql->pg != NULL)
				pgstore_add_event(ql->pg, &le);
			else
				logdb_add_event(ql->db, &le);
		}
	} while (n == 16);
}

static void
publish_db_dropped(struct querylog *ql)
{
	uint64_t d = ql->db_dropped_base + (ql->db != NULL ? logdb_dropped(ql->db) : 0);

	atomic_store(&ql->db_dropped, d);
}

/* One record to both sinks; false when the file's buffer has no room for another. */
static bool
emit(struct querylog *ql, const struct slot *s, uint64_t *unopened)
{
	struct querylog_record r;

	slot_unpack(s, &r);
	if (ql->file.fd >= 0)
		ql->file.len += querylog_format(&r, ql->file.buf + ql->file.len, QUERYLOG_LINE_MAX);
	else if (ql->file.path != NULL)
		(*unopened)++;
	if (ql->db != NULL)
		logdb_add(ql->db, &r);
	else if (ql->pg != NULL)
		pgstore_add(ql->pg, &r);
	return ql->file.len + QUERYLOG_LINE_MAX <= JSONL_BUF;
}

/* The next overflow record for the writer (there is one: ovf_out < ovf_in). The producer
 * started a new chunk where a whole slot no longer fitted: so does the reader. */
static const struct slot *
ovf_peek(struct querylog *ql)
{
	if (ql->ovf_roff + SLOT_SIZE > OVF_CHUNK_BYTES) {
		struct ovf_chunk *next = atomic_load_explicit(&ql->ovf_r->next, memory_order_acquire);
		INSIST(next != NULL);
		/* the producer moved on when it linked next: the chunk is kept as the spare (one
		 * only, so a long burst gives its memory back) */
		free(atomic_exchange(&ql->ovf_spare, ql->ovf_r));
		ql->ovf_r = next;
		ql->ovf_roff = 0;
		atomic_fetch_sub(&ql->ovf_chunks, 1);
	}
	return (const struct slot *)((const unsigned char *)ql->ovf_r->words + ql->ovf_roff);
}

static void
end_batch(struct querylog *ql, uint64_t unopened)
{
	if (unopened > 0)
		jsonl_lost(&ql->file, unopened);
	if (atomic_exchange(&ql->reopen, false))
		do_reopen(ql);
	if (jsonl_flush(&ql->file) == -EBADF)
		do_reopen(ql);
}

/* Whether the overflow holds more than forwarded records may fill: the writer is behind by
 * more than a moment, and sheds forwarded records (counted) to reach the evidence sooner. */
static bool
ovf_pressed(struct querylog *ql)
{
	return atomic_load(&ql->ovf_chunks) + 1 >
	       querylog_ovf_fwd_room(atomic_load_explicit(&ql->ovf_max_chunks, memory_order_relaxed));
}

/* Formats and writes the records before ring index 'end', then (once the ring is empty up to
 * there) the overflow records before 'ovf_end', one buffer at most. What waits is always the
 * ring's records first, then the overflow's: the producer puts nothing in the ring while the
 * overflow holds records. While the overflow is pressed (ovf_pressed), forwarded records are
 * counted as unlogged instead of written. False when there were none. A record whose file is
 * not open (a reload named one that cannot be opened) is counted as lost. */
static bool
drain_batch(struct querylog *ql, size_t end, uint64_t ovf_end)
{
	size_t t = atomic_load_explicit(&ql->tail, memory_order_relaxed);
	uint64_t o = atomic_load_explicit(&ql->ovf_out, memory_order_relaxed);
	uint64_t unopened = 0, shed_n = 0;
	bool room = true;

	if (t != end) {
		bool shed = ovf_pressed(ql); /* the overflow does not shrink while the ring drains */
		while (t != end && room) {
			const struct slot *sl = &ql->ring[t++ & ql->mask];
			if (shed && !(sl->flags & SLOT_BLOCKED))
				shed_n++;
			else
				room = emit(ql, sl, &unopened);
		}
		atomic_store_explicit(&ql->tail, t, memory_order_release);
	} else if (o != ovf_end) {
		while (o != ovf_end && room) {
			const struct slot *sl = ovf_peek(ql);
			/* asked again for each record: the overflow shrinks as chunks are read */
			if (!(sl->flags & SLOT_BLOCKED) && ovf_pressed(ql))
				shed_n++;
			else
				room = emit(ql, sl, &unopened);
			ql->ovf_roff += querylog_slot_bytes(sl);
			o++;
		}
		atomic_store_explicit(&ql->ovf_out, o, memory_order_release);
	} else {
		return false;
	}
	if (shed_n > 0) {
		atomic_fetch_add_explicit(&ql->unlogged, shed_n, memory_order_relaxed);
		atomic_fetch_add_explicit(&ql->dropped, shed_n, memory_order_relaxed);
	}
	end_batch(ql, unopened);
	return true;
}

static void apply_reconf(struct querylog *ql);

/* Formats and writes everything in the ring, batch by batch; applies a reload's settings when
 * its mark is reached. */
static void
drain(struct querylog *ql)
{
	for (;;) {
		/* the overflow's count first, then head: a record put in the ring after the
		 * overflow emptied is seen with it, so the ring is drained before the overflow */
		uint64_t o = atomic_load_explicit(&ql->ovf_in, memory_order_acquire);
		size_t h = atomic_load_explicit(&ql->head, memory_order_acquire);
		/* read after head: a record submitted after querylog_reconfigure() is seen only
		 * with the flag that call set, so nothing past its mark goes to the old sinks */
		if (atomic_load(&ql->reconf)) {
			apply_reconf(ql);
			continue;
		}
		if (!drain_batch(ql, h, o))
			break;
	}
	if (ql->db != NULL || ql->pg != NULL) {
		drain_events(ql, NULL);
		publish_db_dropped(ql);
	}
}

void
querylog_writer_sleep(struct querylog *ql)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += WRITER_SLEEP_MS * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&ql->mu);
	atomic_store(&ql->sleeping, true);
	size_t used = atomic_load(&ql->head) - atomic_load(&ql->tail);
	if (atomic_load(&ql->ovf_in) != atomic_load(&ql->ovf_out))
		used = ql->cap; /* evidence waits in the overflow: no sleep */
	bool paused = atomic_load(&ql->paused);
	if (atomic_load(&ql->stop) || atomic_load(&ql->reopen) ||
	    (!paused && (atomic_load(&ql->reconf) || used >= ql->wake_at)))
		goto cleanup;
	if (paused)
		atomic_store(&ql->parked, true);
	pthread_cond_timedwait(&ql->cv, &ql->mu, &ts);
cleanup:
	atomic_store(&ql->sleeping, false);
	pthread_mutex_unlock(&ql->mu);
}

static uint64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* The database is opened here, by the thread that writes it: a slow or locked file never
 * delays startup. */
static void
open_db(struct querylog *ql)
{
	struct logdb_options opt = {
		.path = ql->db_path,
		.retention_days = ql->retention_days,
	};

	if (logdb_new(&opt, &ql->db) != 0)
		log_error("query database: '%s': out of memory: queries are not stored",
			  ql->db_path);
}

/* The writer's scheduling: SCHED_BATCH at the nice value the daemon runs at (0 unless the
 * administrator set one), i.e. the same CPU share as the event loop when both want the CPU, but
 * never preempting the loop when it wakes up (a batch thread waits for the loop to sleep or for
 * the scheduler's tick; the loop waking up still preempts the writer). It used to run at nice 19:
 * a CFS weight of 15 against the loop's 1024, about 1.5% of a core beside any busy thread, so
 * forwarded records were counted instead of stored whenever DNS or anything else kept the CPU
 * busy (soak at 100,000 qps: 66% counted). Switching to SCHED_BATCH and keeping one's nice value
 * needs no privilege (no CAP_SYS_NICE, no RLIMIT_NICE; the systemd unit's RestrictRealtime only
 * forbids the real-time policies), so it works the same as root, as the service's user and in
 * the container. On Linux a policy applies to one thread (its tid). */
static void
writer_priority(void)
{
	struct sched_param sp = {.sched_priority = 0};
	int rc = pthread_setschedparam(pthread_self(), SCHED_BATCH, &sp);

	if (rc != 0)
		log_debug("query log: writer scheduling unchanged (SCHED_BATCH): %s", strerror(rc));
}

/* The state directory and its missing parents (fileio_mkdir_p, mode 0750 for what it creates);
 * something there that is not a directory is -ENOTDIR. 0 or -errno. */
int
querylog_make_state_dir(const char *dir)
{
	struct stat st;
	int rc = fileio_mkdir_p(dir, 0750);

	if (rc != 0)
		return rc;
	if (stat(dir, &st) != 0)
		return -errno;
	return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}

/* A reload's log.database and log.retention_days (db_path: taken when it differs). */
static void
apply_db(struct querylog *ql, char **db_path, const char *state_dir, uint32_t retention_days)
{
	if (text_equal(*db_path, ql->db_path)) {
		if (ql->db != NULL && retention_days != ql->retention_days) {
			logdb_set_retention(ql->db, retention_days);
			log_info("query database: '%s': retention %u days%s", ql->db_path,
				 (unsigned)retention_days,
				 retention_days == 0 ? " (keep forever)" : "");
		}
		ql->retention_days = retention_days;
		return;
	}
	if (ql->db != NULL) {
		ql->db_dropped_base += logdb_dropped(ql->db);
		logdb_free(&ql->db); /* commits what it holds */
		log_info("query database: '%s': closed", ql->db_path);
	}
	free(ql->db_path);
	ql->db_path = *db_path;
	*db_path = NULL;
	ql->retention_days = retention_days;
	if (ql->db_path != NULL) {
		if (state_dir != NULL) {
			int rc = querylog_make_state_dir(state_dir);
			if (rc != 0)
				log_error("state_dir '%s': cannot create: %s (the query database "
					  "cannot be opened there; DNS keeps working)",
					  state_dir, strerror(-rc));
		}
		open_db(ql); /* logdb reports the file opened, or why not */
	}
	publish_db_dropped(ql);
}

/* A reload (querylog_reconfigure): what was submitted before it goes to the sinks in use, then
 * the sinks whose settings changed are closed and opened. */
static void
apply_reconf(struct querylog *ql)
{
	pthread_mutex_lock(&ql->mu);
	atomic_store(&ql->reconf, false);
	size_t mark = ql->next.mark;
	uint64_t ovf_mark = ql->next.ovf_mark;
	uint64_t ev_mark = ql->next.ev_mark;
	char *path = ql->next.path, *db_path = ql->next.db_path, *state_dir = ql->next.state_dir;
	uint32_t retention_days = ql->next.retention_days;
	memset(&ql->next, 0, sizeof(ql->next));
	pthread_mutex_unlock(&ql->mu);

	size_t t = atomic_load_explicit(&ql->tail, memory_order_relaxed);
	INSIST(mark - t <= atomic_load(&ql->head) - t); /* drain() never passes a mark */
	(void)t;
	while (drain_batch(ql, mark, ovf_mark))
		continue;
	if (ql->db != NULL || ql->pg != NULL)
		drain_events(ql, &ev_mark);
	if (ql->pg != NULL)
		pgstore_set_retention(ql->pg, retention_days);
	jsonl_set_path(&ql->file, &path, clock_ms(CLOCK_MONOTONIC));
	apply_db(ql, &db_path, state_dir, retention_days);
	free(path);
	free(db_path);
	free(state_dir);
}

/* The forwarded records not stored one by one since the last counter line: one line in the
 * file and one row in the database's unlogged table with their exact number, at most every
 * UNLOGGED_REPORT_MS (and at the end). Evidence lost (the overflow was full) is reported as an
 * error, with its count. */
static void
report_unlogged(struct querylog *ql, bool final)
{
	uint64_t now = clock_ms(CLOCK_MONOTONIC);
	uint64_t lost = atomic_load(&ql->evidence_lost);

	if (lost != ql->evidence_reported) {
		log_error("query log: %llu blocked records lost: the writer is too slow and the "
			  "evidence buffer (log.evidence_buffer_mb: %zu MiB) is full",
			  (unsigned long long)(lost - ql->evidence_reported),
			  atomic_load(&ql->ovf_max_chunks) * OVF_CHUNK_BYTES >> 20);
		ql->evidence_reported = lost;
	}
	uint64_t n = atomic_load(&ql->unlogged);
	if (n == ql->unlogged_done || (!final && now - ql->unlogged_at < UNLOGGED_REPORT_MS))
		return;
	uint64_t wall = clock_ms(CLOCK_REALTIME);
	uint64_t count = n - ql->unlogged_done;
	if (ql->file.fd >= 0) {
		if (ql->file.len + 128 > JSONL_BUF)
			jsonl_flush(&ql->file);
		ql->file.len += querylog_format_unlogged(ql->unlogged_since, wall, count,
							 ql->file.buf + ql->file.len, 128);
		jsonl_flush(&ql->file);
	}
	if (ql->db != NULL)
		logdb_add_unlogged(ql->db, ql->unlogged_since, wall, count);
	ql->unlogged_done = n;
	ql->unlogged_since = wall;
	ql->unlogged_at = now;
}

void *
querylog_writer_main(void *arg)
{
	struct querylog *ql = arg;

	pthread_setname_np(pthread_self(), "veto-log"); /* for top -H, ps -L */
	writer_priority();
	if (ql->db_path != NULL)
		open_db(ql);
	if (ql->pg != NULL)
		pgstore_start(ql->pg);
	ql->unlogged_since = clock_ms(CLOCK_REALTIME);
	for (;;) {
		bool stop = atomic_load(&ql->stop);
		if (atomic_load(&ql->paused) && !stop) {
			querylog_writer_sleep(ql);
			continue;
		}
		atomic_store(&ql->parked, false);
		if (atomic_exchange(&ql->reopen, false))
			do_reopen(ql);
		jsonl_retry(&ql->file, clock_ms(CLOCK_MONOTONIC));
		drain(ql);
		report_unlogged(ql, stop);
		jsonl_report_drops(&ql->file, atomic_load(&ql->unlogged), ql->db_path, stop);
		if (stop)
			break;
		if (ql->db != NULL) {
			/* commits about once a second, reopens, prunes */
			logdb_tick(ql->db, clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_REALTIME));
			publish_db_dropped(ql);
		}
		if (ql->pg != NULL)
			pgstore_tick(ql->pg, clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_REALTIME));
		querylog_writer_sleep(ql);
	}
	if (ql->pg != NULL)
		pgstore_finish(ql->pg);
	if (ql->db != NULL) {
		publish_db_dropped(ql);
		logdb_free(&ql->db);
	}
	jsonl_report_final(&ql->file);
	return NULL;
}

void
querylog_wake_writer(struct querylog *ql)
{
	pthread_mutex_lock(&ql->mu);
	pthread_cond_signal(&ql->cv);
	pthread_mutex_unlock(&ql->mu);
}

