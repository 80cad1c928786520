/*
 * devices_share: the device table with server.workers > 1 (devices.h). The main loop keeps
 * owning the table (refresh, the shared store's sync, control requests, events, saving); the
 * other workers identify their clients from an immutable identity snapshot and hand what their
 * queries showed back to the owner.
 *
 * Snapshot (owner -> workers). What devices_identify() needs that the sources do not say: per
 * device with a pin, a behaviour-attributed vendor, a remembered hostname or manufacturer, its
 * key, MAC and those strings; plus a shallow copy of the source tables, the trusted forwarders
 * and a reference to the policy whose configuration they belong to. Built on the owner's loop
 * and published with an atomic pointer swap, in two layers looked up delta first:
 *   - a base, every device worth it (O(devices): 24 ms for 65,536), shared by the snapshots
 *     that follow it; rebuilt when the table changed otherwise (a new device, a new hostname):
 *     within DEVICES_SHARE_IDLE_MS, or ten times the last build's time when that is longer;
 *   - a delta, the devices changed since the base was built by an attribution, an
 *     attribution's end, a pin, unpin or forget, a group change (devices_share_touch; up to
 *     DEVICES_SHARE_PENDING of them, then the next snapshot is a full one), in each snapshot
 *     published after such a change or a source refresh or a reload: at most every
 *     DEVICES_SHARE_MIN_MS (or ten times the last delta's build time), and at once after a
 *     control request (devices_share_publish).
 * A worker reads the latest snapshot for one query (identify -> decide -> record): it announces
 * the pointer in its hazard slot before using it and clears the slot when the query's identity
 * is no longer needed, so it holds no snapshot between callbacks. The owner frees a replaced
 * snapshot, and the source tables replaced since it was built, once no slot names it (oldest
 * first). No lock on the query path.
 *
 * Observations (workers -> owner). One bounded single-producer ring per worker
 * (DEVICES_SHARE_QUEUE entries) and a uv_async on the owner's loop; the owner replays each
 * observation on its table (devices_identify, devices_record_query), as if the query had come to
 * it. A query for a signature name is always sent; another query at most once a second per
 * device and worker (first sight, last seen, group), and only while the ring is less than half
 * full, so that evidence finds room. Observations are numbered across workers and replayed in
 * that order (not worker by worker), and the owner replays what is queued before its own
 * query's identification and before an administrator's request (devices_share_sync in
 * devices_int.h): a client's queries count in the order it sent them, whichever worker
 * answered them, so that evidence against an attribution (an OS check) cannot arrive after
 * the ROM name it rules out, and a query answered before a forget cannot undo it. A full ring drops the observation and counts it. A
 * dropped signature observation marks its device suspect (a bit per key hash: another device
 * sharing the bit is taken for suspect too), because the evidence lost could have been against
 * an attribution (an OS family's check, a second vendor behind one address). From then on until
 * a restart no signature query of that device changes anything, and an attribution from
 * behaviour it has ends: the workers stop applying it at once, the owner ends it in its table
 * at the device's next query it sees (a vendor event; the next snapshot no longer carries it),
 * and the other sources (pin, inventory, OUI, hostname) say who the device is. So a drop may
 * delay or end an attribution, never cause or keep one.
 *
 * Threads: devices_share_new/attach/publish/close/free and the stats on the owner's loop;
 * devices_reader_* on one worker's thread each.
 */
#ifndef VETO_DEVICES_SHARE_H
#define VETO_DEVICES_SHARE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "devices.h"
#include "names.h"
#include "policy.h"

#define DEVICES_SHARE_QUEUE   2048	/* observations waiting, per worker */
#define DEVICES_SHARE_MIN_MS  2		/* between two publications after urgent changes */
#define DEVICES_SHARE_IDLE_MS 1000	/* other changes published within this */
#define DEVICES_SHARE_PENDING 4096	/* devices changed urgently between two full builds */

struct devices_share;
struct devices_reader;

struct devices_share_stats {
	uint64_t published;		/* snapshots published since start */
	uint64_t full;			/* of them: full copies (a new base) */
	uint64_t entries;		/* devices in the current snapshot */
	uint64_t full_us_last, full_us_max;   /* building a full snapshot, on the owner's loop */
	uint64_t delta_us_last, delta_us_max; /* building one with the devices changed since */
	uint64_t observations;		/* replayed on the table */
	uint64_t dropped;		/* lost to a full queue (sightings and evidence) */
	uint64_t evidence_dropped;	/* of them: signature queries (their device: suspect) */
	uint64_t evidence_ignored;	/* signature queries of suspect devices not acted on */
	uint64_t retired;		/* replaced snapshots not freed yet (a worker holds one) */
};

/* nreaders workers' readers on the owner's loop: one uv_async and one timer (closed by
 * devices_share_close). 0 or -ENOMEM. */
int devices_share_new(uv_loop_t *loop, unsigned nreaders, struct devices_share **out);
/* The table the snapshots come from (borrowed: it outlives the share's use of it, which ends
 * at devices_share_close); publishes the first snapshot. */
void devices_share_attach(struct devices_share *sh, struct devices *d);
/* Publishes now (a control request changed the table: its reply comes after). */
void devices_share_publish(struct devices_share *sh);
/* Replays what is queued, stops publishing, closes the handles, then cb(arg) on the loop. The
 * readers may still be used (their observations are then dropped) until devices_share_free,
 * which comes after every worker has stopped. */
void devices_share_close(struct devices_share *sh, void (*cb)(void *arg), void *arg);
void devices_share_free(struct devices_share **sh);	/* NULL-safe */
void devices_share_get_stats(const struct devices_share *sh, struct devices_share_stats *st);

/* Worker i's reader, 0 <= i < nreaders. */
struct devices_reader *devices_share_reader(struct devices_share *sh, unsigned i);

/*
 * A worker's query, first step (its own thread): identifies client as devices_identify() would
 * on the owner's table as of the last snapshot. false when no table is published (id and ident
 * untouched). Strings in id stay valid until devices_reader_record().
 */
bool devices_reader_identify(struct devices_reader *r, const struct sockaddr *client,
			     const struct devices_hints *h, struct policy_identity *id,
			     struct devices_ident *ident);
/* Second step, after policy_decide() gave group (pol: the worker's policy): lets the snapshot
 * go and queues the observation (above) for the owner. A signature query that will attribute
 * its device's vendor (as far as the snapshot tells) updates ident's vendor (may be NULL), as
 * devices_record_query() does. */
void devices_reader_record(struct devices_reader *r, const struct policy *pol, int group,
			   const struct names_name *qname, struct devices_ident *ident);

#endif
