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

#define WRITER_SLEEP_MS	    50
#define UNLOGGED_REPORT_MS  1000 /* a counter line at most this often */
#define OVF_CHUNK	    256	 /* slots per overflow chunk */
#define QUERYLOG_WRITER_NICE 19 /* the writer thread's nice value (lower_priority) */
#define CACHE_LINE	    64


/* A packed record: fixed header, then client, upstream, qname, group, list, rule, device,
 * vendor and MAC octets. */
#define SLOT_SIZE 1088
#define SLOT_TCP	0x01
#define SLOT_BLOCKED	0x02
#define SLOT_GROUP	0x04
#define SLOT_LIST	0x08
#define SLOT_MAC	0x10

struct slot {
	uint64_t ts_ms;
	uint32_t latency_us;
	uint16_t qtype;
	int16_t rule_label;
	uint8_t flags, action, rcode, qname_len;
	uint8_t client_len, upstream_len, group_len, list_len;
	uint8_t rule_len;
	uint8_t device_len, vendor_len, vendor_source;
	uint8_t data[SLOT_SIZE - 28];
};

_Static_assert(sizeof(struct slot) == SLOT_SIZE, "slot layout");
_Static_assert(2 * sizeof(struct sockaddr_in6) + 3 * NAMES_MAX_WIRE + 2 * QUERYLOG_NAME_MAX +
			       IDENTITY_NAME_MAX + IDENTITY_VENDOR_MAX + 6 <=
		       sizeof(((struct slot *)0)->data),
	       "slot data too small");

/* The evidence overflow: a single-producer single-consumer list of chunks, grown by the loop
 * thread only while the ring is full (never in steady state), up to QUERYLOG_OVERFLOW_MAX
 * records; the writer frees a chunk once it has read all of it. */
struct ovf_chunk {
	_Atomic(struct ovf_chunk *) next;
	struct slot slots[OVF_CHUNK];
};

struct querylog {
	atomic_int mode;		/* enum config_log_queries; written by the loop */
	size_t cap, mask, wake_at;
	size_t fwd_cap;			/* forwarded records take at most this many slots: the
					   rest of the ring is kept for evidence (blocked) */
	struct slot *ring;

	/* producer side */
	char pad0[CACHE_LINE];
	atomic_size_t head;
	size_t tail_cache;		/* producer's last view of tail */
	struct ovf_chunk *ovf_w;	/* the chunk the producer appends to */
	size_t ovf_widx;
	atomic_uint_fast64_t ovf_in;	/* overflow records published */
	uint64_t ovf_out_cache;		/* producer's last view of ovf_out */
	char pad1[CACHE_LINE];

	/* consumer side */
	atomic_size_t tail;
	struct ovf_chunk *ovf_r;	/* the chunk the writer reads */
	size_t ovf_ridx;
	atomic_uint_fast64_t ovf_out;	/* overflow records taken */
	char pad2[CACHE_LINE];
	atomic_size_t ovf_chunks;	/* allocated; the producer adds, the writer subtracts */
	_Atomic(struct ovf_chunk *) ovf_spare; /* a drained chunk kept for the next one */
	atomic_uint_fast64_t ovf_peak;	/* most overflow records waiting at once */

	atomic_uint_fast64_t unlogged;	/* forwarded records not stored one by one */
	atomic_uint_fast64_t evidence_lost; /* blocked records lost: the overflow was full */
	uint64_t unlogged_done;		/* writer: counted in a counter line already */
	uint64_t unlogged_since;	/* writer: wall ms the current interval began */
	uint64_t unlogged_at;		/* writer: monotonic ms of the last counter line */
	uint64_t evidence_reported;	/* writer: evidence_lost already reported */
	bool boosted;			/* writer: at nice 0 while evidence overflows */

	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t db_dropped;	/* copy of logdb_dropped() for other threads */
	atomic_bool sleeping;
	atomic_bool stop;
	atomic_bool reopen;
	atomic_bool reconf;		/* 'next' holds settings for the writer (set under mu) */
	atomic_bool paused;
	atomic_bool parked;

	pthread_mutex_t mu;
	pthread_cond_t cv;
	pthread_t thread;
	bool thread_started;
	bool sync_init;

	/* a reload's settings for the writer (querylog_reconfigure), under mu; only the last
	   one asked for before the writer's turn applies */
	struct {
		bool set;
		size_t mark;		/* head when asked: the records before it go to the old
					   sinks, the others to the new ones */
		uint64_t ovf_mark;	/* ovf_in when asked: the same for the overflow */
		uint64_t ev_mark;	/* events_in when asked: the same for device events */
		char *path;		/* owned; JSONL sink, NULL = none */
		char *db_path;		/* owned; database, NULL = none */
		char *state_dir;	/* owned; created before db_path is opened */
		uint32_t retention_days;
	} next;

	/* writer thread only (the loop thread before the writer starts, querylog_free after it
	   stopped) */
	struct jsonl file;		/* the JSON-lines sink (jsonl.h) */
	char *db_path;			/* database sink, NULL = none */
	uint32_t retention_days;
	struct logdb *db;
	uint64_t db_dropped_base;	/* logdb_dropped() of the databases closed by reloads */

	/* device events, under mu */
	struct identity_event *events;	/* ncap; allocated with the first database */
	size_t nevents, ncap;		/* grows from QUERYLOG_EVENTS to QUERYLOG_EVENTS_MAX */
	bool events_on;			/* a database is configured: events are accepted */
	uint64_t events_in, events_out;	/* queued and taken since the start */
	atomic_uint_fast64_t events_dropped;
};

/* ---- writer thread ---- */

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

static void
slot_pack(struct slot *s, const struct querylog_record *r)
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
	return ql->file.len + QUERYLOG_LINE_MAX <= JSONL_BUF;
}

/* The next overflow record for the writer (there is one: ovf_out < ovf_in). */
static const struct slot *
ovf_peek(struct querylog *ql)
{
	if (ql->ovf_ridx == OVF_CHUNK) {
		struct ovf_chunk *next = atomic_load_explicit(&ql->ovf_r->next, memory_order_acquire);
		INSIST(next != NULL);
		/* the producer moved on when it linked next: the chunk is kept as the spare (one
		 * only, so a long burst gives its memory back) */
		free(atomic_exchange(&ql->ovf_spare, ql->ovf_r));
		ql->ovf_r = next;
		ql->ovf_ridx = 0;
		atomic_fetch_sub(&ql->ovf_chunks, 1);
	}
	return &ql->ovf_r->slots[ql->ovf_ridx];
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

/* Formats and writes the records before ring index 'end', then (once the ring is empty up to
 * there) the overflow records before 'ovf_end', one buffer at most. What waits is always the
 * ring's records first, then the overflow's: the producer puts nothing in the ring while the
 * overflow holds records. False when there were none. A record whose file is not open (a
 * reload named one that cannot be opened) is counted as lost. */
static bool
drain_batch(struct querylog *ql, size_t end, uint64_t ovf_end)
{
	size_t t = atomic_load_explicit(&ql->tail, memory_order_relaxed);
	uint64_t o = atomic_load_explicit(&ql->ovf_out, memory_order_relaxed);
	uint64_t unopened = 0;
	bool room = true;

	if (t != end) {
		while (t != end && room)
			room = emit(ql, &ql->ring[t++ & ql->mask], &unopened);
		atomic_store_explicit(&ql->tail, t, memory_order_release);
	} else if (o != ovf_end) {
		while (o != ovf_end && room) {
			room = emit(ql, ovf_peek(ql), &unopened);
			ql->ovf_ridx++;
			o++;
		}
		atomic_store_explicit(&ql->ovf_out, o, memory_order_release);
	} else {
		return false;
	}
	end_batch(ql, unopened);
	return true;
}

static void apply_reconf(struct querylog *ql);
static void evidence_priority(struct querylog *ql);

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
		evidence_priority(ql);
		if (!drain_batch(ql, h, o))
			break;
	}
	if (ql->db != NULL) {
		drain_events(ql, NULL);
		publish_db_dropped(ql);
	}
}

static void
writer_sleep(struct querylog *ql)
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

/* The writer yields to the event loop when they share a CPU: on Linux, nice applies to a
 * thread (its tid). Under a load that saturates the CPU the ring then fills and forwarded
 * records are counted instead of stored (never blocked ones) rather than DNS slowing down;
 * below that, the writer uses the idle time. */
static void
set_nice(int nice)
{
	pid_t tid = (pid_t)syscall(SYS_gettid);

	if (setpriority(PRIO_PROCESS, (id_t)tid, nice) != 0)
		log_debug("query log: writer priority unchanged (nice %d): %s", nice,
			  strerror(errno));
}

static void
lower_priority(void)
{
	set_nice(QUERYLOG_WRITER_NICE);
}

/* While blocked records wait in the overflow, the writer competes with DNS as an equal (nice
 * 0: evidence comes before DNS latency); back to nice QUERYLOG_WRITER_NICE once the overflow
 * is empty. Raising the priority needs CAP_SYS_NICE (root) or RLIMIT_NICE; without it the
 * writer stays where it is. */
static void
evidence_priority(struct querylog *ql)
{
	bool waiting = atomic_load(&ql->ovf_in) != atomic_load(&ql->ovf_out);

	if (waiting == ql->boosted)
		return;
	ql->boosted = waiting;
	set_nice(waiting ? 0 : QUERYLOG_WRITER_NICE);
}

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* The state directory and its missing parents (fileio_mkdir_p, mode 0750 for what it creates);
 * something there that is not a directory is -ENOTDIR. 0 or -errno. */
static int
make_state_dir(const char *dir)
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
	if (str_equal(*db_path, ql->db_path)) {
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
			int rc = make_state_dir(state_dir);
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
	if (ql->db != NULL)
		drain_events(ql, &ev_mark);
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
			  "overflow buffer (%u records) is full",
			  (unsigned long long)(lost - ql->evidence_reported),
			  (unsigned)QUERYLOG_OVERFLOW_MAX);
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

static void *
writer_main(void *arg)
{
	struct querylog *ql = arg;

	pthread_setname_np(pthread_self(), "veto-log"); /* for top -H, ps -L */
	lower_priority();
	if (ql->db_path != NULL)
		open_db(ql);
	ql->unlogged_since = clock_ms(CLOCK_REALTIME);
	for (;;) {
		bool stop = atomic_load(&ql->stop);
		if (atomic_load(&ql->paused) && !stop) {
			writer_sleep(ql);
			continue;
		}
		atomic_store(&ql->parked, false);
		if (atomic_exchange(&ql->reopen, false))
			do_reopen(ql);
		jsonl_retry(&ql->file, clock_ms(CLOCK_MONOTONIC));
		evidence_priority(ql);
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
		writer_sleep(ql);
	}
	if (ql->db != NULL) {
		publish_db_dropped(ql);
		logdb_free(&ql->db);
	}
	jsonl_report_final(&ql->file);
	return NULL;
}

static void
wake_writer(struct querylog *ql)
{
	pthread_mutex_lock(&ql->mu);
	pthread_cond_signal(&ql->cv);
	pthread_mutex_unlock(&ql->mu);
}

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
			   : cfg->log.database == NULL ? "-" : NULL;
	int rc;

	ql = calloc(1, sizeof(*ql));
	if (ql == NULL)
		return -ENOMEM;
	ql->file.fd = -1;
	atomic_init(&ql->mode, (int)cfg->log.queries);
	if (cfg->log.queries == CONFIG_LOG_NONE)
		goto done;

	ql->cap = round_pow2(capacity);
	ql->mask = ql->cap - 1;
	ql->wake_at = ql->cap / 16 > 0 ? ql->cap / 16 : 1;
	ql->fwd_cap = ql->cap - ql->cap / QUERYLOG_EVIDENCE_SHARE;
	ql->ovf_w = ql->ovf_r = calloc(1, sizeof(*ql->ovf_w)); /* the first chunk, kept */
	ql->ovf_widx = ql->ovf_ridx = 0;
	ql->file.path = path != NULL ? strdup(path) : NULL;
	ql->db_path = cfg->log.database != NULL ? strdup(cfg->log.database) : NULL;
	ql->retention_days = cfg->log.retention_days;
	ql->ring = ring_alloc(ql->cap);
	ql->file.buf = malloc(JSONL_BUF);
	if (ql->db_path != NULL) {
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

	if (ql->db_path != NULL && cfg->state_dir != NULL) {
		rc = make_state_dir(cfg->state_dir);
		if (rc != 0)
			log_error("state_dir '%s': cannot create: %s (the query database cannot be "
				  "opened there; DNS keeps working)",
				  cfg->state_dir, strerror(-rc));
	}

	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&ql->thread, NULL, writer_main, ql);
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

/* A blocked record when the ring is full (or the overflow already holds records: they keep
 * their order). 0, or -ENOBUFS when QUERYLOG_OVERFLOW_MAX records wait already (lost, counted
 * and reported as an error). Allocates only while the overflow grows. */
static int
ovf_push(struct querylog *ql, const struct querylog_record *r)
{
	uint64_t in = atomic_load_explicit(&ql->ovf_in, memory_order_relaxed);
	uint64_t waiting = in - atomic_load_explicit(&ql->ovf_out, memory_order_acquire);

	if (waiting >= QUERYLOG_OVERFLOW_MAX)
		goto lost;
	if (ql->ovf_widx == OVF_CHUNK) {
		struct ovf_chunk *c = atomic_exchange(&ql->ovf_spare, NULL);
		if (c == NULL)
			c = malloc(sizeof(*c));
		if (c == NULL)
			goto lost;
		atomic_init(&c->next, NULL);
		atomic_fetch_add(&ql->ovf_chunks, 1);
		atomic_store_explicit(&ql->ovf_w->next, c, memory_order_release);
		ql->ovf_w = c;
		ql->ovf_widx = 0;
	}
	slot_pack(&ql->ovf_w->slots[ql->ovf_widx++], r);
	atomic_store_explicit(&ql->ovf_in, in + 1, memory_order_release);
	if (waiting + 1 > atomic_load_explicit(&ql->ovf_peak, memory_order_relaxed))
		atomic_store_explicit(&ql->ovf_peak, waiting + 1, memory_order_relaxed);
	if (atomic_load(&ql->sleeping) && atomic_exchange(&ql->sleeping, false))
		wake_writer(ql);
	return 0;
lost:
	atomic_fetch_add(&ql->evidence_lost, 1);
	atomic_fetch_add_explicit(&ql->dropped, 1, memory_order_relaxed);
	return -ENOBUFS;
}

/* A forwarded record that finds no room: counted exactly, reported per interval. */
static int
unlogged(struct querylog *ql)
{
	atomic_fetch_add_explicit(&ql->unlogged, 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&ql->dropped, 1, memory_order_relaxed);
	return -ENOBUFS;
}

int
querylog_submit(struct querylog *ql, const struct querylog_record *r)
{
	if (ql == NULL || !ql->thread_started)
		return 0;
	/* forwarded (allowed) records use at most fwd_cap slots; blocked ones the whole ring,
	 * then the overflow. While the overflow holds records nothing goes to the ring. */
	size_t limit = r->blocked ? ql->cap : ql->fwd_cap;
	uint64_t in = atomic_load_explicit(&ql->ovf_in, memory_order_relaxed);
	if (in != ql->ovf_out_cache) { /* the writer's line only while the overflow is in use */
		ql->ovf_out_cache = atomic_load_explicit(&ql->ovf_out, memory_order_acquire);
		if (in != ql->ovf_out_cache)
			return r->blocked ? ovf_push(ql, r) : unlogged(ql);
	}
	size_t h = atomic_load_explicit(&ql->head, memory_order_relaxed);
	if (h - ql->tail_cache >= limit) {
		ql->tail_cache = atomic_load_explicit(&ql->tail, memory_order_acquire);
		if (h - ql->tail_cache >= limit)
			return r->blocked ? ovf_push(ql, r) : unlogged(ql);
	}
	slot_pack(&ql->ring[h & ql->mask], r);
	/* seq_cst store, then seq_cst load of 'sleeping': pairs with writer_sleep() so that either
	 * the writer sees the record or this thread sees the writer asleep. */
	atomic_store(&ql->head, h + 1);
	if (atomic_load(&ql->sleeping)) {
		/* the writer does not move tail while it sleeps: this line is not contended */
		ql->tail_cache = atomic_load_explicit(&ql->tail, memory_order_acquire);
		if (h + 1 - ql->tail_cache >= ql->wake_at && atomic_exchange(&ql->sleeping, false))
			wake_writer(ql);
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
		wake_writer(ql);
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
			   : cfg->log.database == NULL ? "-"
						       : NULL;
	const char *db = on ? cfg->log.database : NULL;
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
	ql->events_on = db != NULL;
	atomic_store(&ql->reconf, true);
	pthread_cond_signal(&ql->cv);
	pthread_mutex_unlock(&ql->mu);
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
		wake_writer(ql);
		pthread_join(ql->thread, NULL);
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
	free(ql->db_path);
	free(ql->next.path);
	free(ql->next.db_path);
	free(ql->next.state_dir);
	free(ql->events);
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
	return atomic_load(&ql->db_dropped) + atomic_load(&ql->events_dropped);
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
		wake_writer(ql);
		return;
	}
	wake_writer(ql);
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
