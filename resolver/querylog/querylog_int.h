/*
 * querylog_int: what the two halves of the query log share (querylog.c: the producer side, the
 * public calls; querylog_writer.c: the writer thread), and what their tests may reach.
 */
#ifndef VETO_QUERYLOG_INT_H
#define VETO_QUERYLOG_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "jsonl.h"
#include "logdb.h"
#include "pgstore.h"
#include "querylog.h"

#define WRITER_SLEEP_MS	    50
#define UNLOGGED_REPORT_MS  1000 /* a counter line at most this often */
#define OVF_CHUNK_BYTES	    (256u << 10) /* octets per evidence-buffer chunk */
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

/* The octets a packed slot uses (header and data in use, rounded up to 8): what it takes in the
 * evidence overflow. */
size_t querylog_slot_bytes(const struct slot *s);

/* The evidence overflow: a single-producer single-consumer list of chunks of packed records,
 * each record taking only the octets it uses (querylog_slot_bytes: ~100-200 for a blocked
 * query instead of a slot's 1,088), grown by the loop thread only while the ring is full (a
 * writer that keeps up never needs it; one that stays behind makes the loop allocate a chunk
 * every few thousand records), up to ovf_max_chunks chunks (log.evidence_buffer_mb); the writer frees a
 * chunk once it has read all of it. A record starts at an offset where a whole struct slot
 * still fits in the chunk (so packing never runs past it); both sides apply that rule, so the
 * writer finds the records where the producer put them. */
struct ovf_chunk {
	_Atomic(struct ovf_chunk *) next;
	uint64_t words[OVF_CHUNK_BYTES / sizeof(uint64_t)];
};

/* The overflow chunks (first included) forwarded records may fill, of max: half. The other half
 * is the evidence's alone; the writer sheds forwarded records while more than this is in use. */
static inline size_t
querylog_ovf_fwd_room(size_t max)
{
	return max / 2;
}

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
	size_t ovf_woff;		/* octet offset in ovf_w */
	atomic_uint_fast64_t ovf_in;	/* overflow records published */
	uint64_t ovf_out_cache;		/* producer's last view of ovf_out */
	char pad1[CACHE_LINE];

	/* consumer side */
	atomic_size_t tail;
	struct ovf_chunk *ovf_r;	/* the chunk the writer reads */
	size_t ovf_roff;		/* octet offset in ovf_r */
	atomic_uint_fast64_t ovf_out;	/* overflow records taken */
	char pad2[CACHE_LINE];
	atomic_size_t ovf_chunks;	/* allocated beyond the first; the producer adds, the
					   writer subtracts */
	atomic_size_t ovf_max_chunks;	/* the bound, first chunk included (set by the loop) */
	atomic_size_t ovf_max_next;	/* a smaller bound a reload asked for (0: none), applied
					   once the forwarded records in use fit its half */
	_Atomic(struct ovf_chunk *) ovf_spare; /* a drained chunk kept for the next one */
	atomic_uint_fast64_t ovf_peak;	/* most overflow records waiting at once */

	atomic_uint_fast64_t unlogged;	/* forwarded records not stored one by one */
	atomic_uint_fast64_t evidence_lost; /* blocked records lost: the overflow was full */
	uint64_t unlogged_done;		/* writer: counted in a counter line already */
	uint64_t unlogged_since;	/* writer: wall ms the current interval began */
	uint64_t unlogged_at;		/* writer: monotonic ms of the last counter line */
	uint64_t evidence_reported;	/* writer: evidence_lost already reported */

	atomic_uint_fast64_t dropped;
	atomic_uint_fast64_t db_dropped;	/* copy of logdb_dropped() for other threads */
	atomic_bool sleeping;
	atomic_bool stop;
	atomic_bool reopen;
	atomic_bool reconf;		/* 'next' holds settings for the writer (set under mu) */
	atomic_bool paused;
	atomic_bool parked;

	/* several producers (server.workers > 1, querylog_set_producers): querylog_submit and
	 * the producer's half of querylog_reconfigure run under submit_mu, held for one copy */
	bool multi;
	pthread_mutex_t submit_mu;

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
	struct pgstore *pg;		/* store.postgresql: the database sink instead of db;
					   made by querylog_new, kept until querylog_free (its
					   counters are read from any thread) */

	/* device events, under mu */
	struct identity_event *events;	/* ncap; allocated with the first database */
	size_t nevents, ncap;		/* grows from QUERYLOG_EVENTS to QUERYLOG_EVENTS_MAX */
	bool events_on;			/* a database is configured: events are accepted */
	uint64_t events_in, events_out;	/* queued and taken since the start */
	atomic_uint_fast64_t events_dropped;
};

/* querylog_writer.c */
/* Packs a record into a ring slot (the producer's half; the writer unpacks). */
void querylog_slot_pack(struct slot *s, const struct querylog_record *r);
void *querylog_writer_main(void *arg);			/* the writer thread */
void querylog_wake_writer(struct querylog *ql);
void querylog_writer_sleep(struct querylog *ql);	/* parks until woken or the period */
int querylog_make_state_dir(const char *dir);

/* querylog_new with a ring of 'capacity' records (rounded up to a power of two, >= 2). */
int querylog_new_capacity(const struct config *cfg, size_t capacity, struct querylog **out);

/* Stops (paused = true) or resumes the writer. Pausing returns once the writer has parked:
 * from then on nothing leaves the ring until it is resumed (or freed: free always drains). */
void querylog_test_pause(struct querylog *ql, bool paused);

/* Number of records currently in the ring. */
size_t querylog_pending(const struct querylog *ql);

/* Chunks the evidence overflow holds beyond its first one (each OVF_CHUNK_BYTES). */
size_t querylog_test_overflow_chunks(const struct querylog *ql);

/* True while settings given to querylog_reconfigure() wait for the writer to apply them. */
bool querylog_test_reconfiguring(const struct querylog *ql);

#endif
