/*
 * devices_int.h: what the files of the daemon's device table share (devices.c: life cycle and the
 * query path; devices_refresh.c: the sources in the thread pool and the lease watchers;
 * devices_table.c: the table's records, forgetting and saving). Not for other folders: they use
 * devices.h.
 */
#ifndef VETO_DEVICES_INT_H
#define VETO_DEVICES_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <uv.h>

#include "clients.h"
#include "devices.h"
#include "devices_pg.h"
#include "devices_store.h"
#include "kmap.h"
#include "sources.h"

struct stamp {
	dev_t dev;
	ino_t ino;
	off_t size;
	int64_t mtime_ns;
	bool seen;		/* a stat was taken */
};

struct refresh_job {
	uv_work_t req;
	struct devices *d;
	struct policy *pol;		/* reference: the configuration read */
	bool load_oui, build_inv;
	int arp_rc, neigh6_rc;		/* out: as in devices_sources */
	size_t nleases;
	struct stamp *stamps;		/* in: the last ones; out: the new ones */
	struct leases **leases;		/* new tables, NULL = keep */
	struct neigh *arp;		/* new table, NULL = keep */
	struct kmap *neigh6;	/* new IPv6 neighbours, NULL = keep */
	struct mac *neigh6_macs;
	struct oui *oui;
	struct kmap *inv_mac, *inv_ip;
	struct diag diag;
};

struct save_job {
	uv_work_t req;
	struct devices *d;
	struct devices_record *recs;
	size_t n;
	char (*gone)[DEVICES_KEY_MAX];	/* devices forgotten since the last save */
	size_t ngone;
	bool keep_only;			/* gone overflowed: keep only the keys of recs... */
	char (*keep)[DEVICES_KEY_MAX];	/* ...and of keep, every device in the table */
	size_t nkeep;
	int status;
};

struct watch {
	uv_fs_event_t h;
	struct devices *d;
};

struct devices {
	uv_loop_t *loop;
	struct policy *pol;		/* reference: configuration of the sources */
	struct devices_sources *src;	/* the current snapshot (never NULL after new) */
	struct stamp *stamps;
	size_t nstamps;
	struct clients *trusted;

	struct devices_record *recs;
	uint8_t *dirty;
	size_t n, cap;
	struct kmap *index;	/* key (MAC or IP) -> recs index */
	size_t ndirty;
	struct devices_record *cur;	/* between devices_identify and devices_record_query */
	struct devices_record tmp;	/* cur when the table is full: identified, not kept */
	struct sockaddr_storage cur_sa;	/* the address cur was identified for */
	bool cur_new;			/* cur was added by this query */
	size_t max;			/* devices.max_devices */
	char (*gone)[DEVICES_KEY_MAX];	/* forgotten, to be deleted from the store (<= max) */
	size_t ngone;
	bool gone_overflow;		/* more were forgotten: the next save keeps only the table */
	uint64_t evicted, expired;	/* since start */
	uint64_t evicted_attributed;
	uint64_t evicted_reported, attributed_reported;
	uint64_t unrecorded;		/* queries whose device could not be kept (table full of
					   devices that are never evicted) */
	uint64_t unrecorded_reported;
	int64_t full_warned;		/* when the table-full warning was last logged */

	struct devices_store *store;	/* NULL: in memory only */
	struct devices_pg *pg;		/* the shared store's sync (devices_pg.h), NULL: none */
	struct devices_share *share;	/* read by other workers (devices_share.h), NULL: none */
	uint64_t share_gen;		/* moves when what the other workers' copy holds of a
					   record changes, or such a record leaves (devices_share.c,
					   devices_table_mark_dirty) */
	uint64_t event_ts_ms;		/* replaying a worker's query: its time for the events
					   (Unix ms), 0 = now */
	char *db_path;
	devices_event_cb event_cb;	/* device events go to the query store */
	void *event_arg;

	uv_timer_t arp_timer, save_timer, debounce_timer;
	struct watch **watches;		/* each freed by its close callback */
	size_t nwatches;
	unsigned open_handles;
	struct refresh_job *refresh;
	bool refresh_again, refresh_oui, refresh_inv;
	struct save_job *save;
	bool closing;
	void (*close_cb)(void *arg);
	void *close_arg;
};


/* devices_refresh.c */
void devices_refresh_start(struct devices *d);	/* now, or after the one in flight */
void devices_on_arp_timer(uv_timer_t *t);
void devices_watch_leases(struct devices *d);	/* (re)creates the lease-folder watchers */
void devices_unwatch_leases(struct devices *d);

/* devices_table.c */
struct devices_record *devices_table_add(struct devices *d, const char *key, int64_t now);
struct devices_record *devices_table_lookup(struct devices *d, const struct dkey *k);
/* r changed: saved at the next save; and when what the other workers' copy holds of it
 * changed (its devices_share_sig), d->share_gen moves (a full copy at the next idle tick).
 * Every change of a record goes through here (or devices_table_remove_one / eviction /
 * expiry, which move share_gen for a record in that copy). */
void devices_table_mark_dirty(struct devices *d, struct devices_record *r);
void devices_table_remove_one(struct devices *d, size_t i);
void devices_table_forget_key(struct devices *d, const char *key);
int devices_text_dkey(const char *key, struct dkey *out);	/* "mac:..."/"ip:..." -> key */
void devices_open_store(struct devices *d);	/* opens and loads state_dir/devices.db */
void devices_on_save_timer(uv_timer_t *t);	/* expiry, reports, periodic save */
struct save_job *devices_save_collect(struct devices *d);
void devices_save_job_free(struct save_job *j);
void devices_save_work(uv_work_t *req);	/* thread pool (or the loop, at close) */

/* devices.c */
void devices_maybe_closed(struct devices *d);	/* calls the close callback when all is done */
/* devices.trusted_forwarders of cfg as a client table (*out NULL when none). 0 or -ENOMEM. */
int devices_trusted_new(const struct config *cfg, struct clients **out);
/* The address a query from a trusted forwarder (trusted may be NULL) stands for: a host ECS
 * option (written to *ecs), else client; its MAC option into *hint; *anonymous when a trusted
 * forwarder's query names no client. */
const struct sockaddr *devices_forwarded_client(const struct clients *trusted,
						const struct sockaddr *client,
						const struct devices_hints *h,
						struct sockaddr_storage *ecs, struct mac *hint,
						bool *has_hint, bool *anonymous);
/* What a query's log record keeps of r. */
void devices_fill_ident(const struct devices_record *r, struct devices_ident *ident);

/* devices_share.c, for the table (each NULL-safe on sh). touch: the device with key (NULL: the
 * sources or the configuration) changed in a way every worker must see soon (an attribution,
 * a pin, a forget, a group change, new sources); other changes move d->share_gen when they
 * change what the copy holds (devices_table_mark_dirty, devices_share_sig). suspect: whether a
 * worker dropped a signature query of the device with key, or at address sa: its signature
 * queries are ignored (count: one more in the stats) and its behaviour attribution ends
 * (devices_record_query). retire: source tables the table no longer uses (a shell of them,
 * taken): freed once no worker can read them. */
struct devices_share;
void devices_share_touch(struct devices_share *sh, const char *key);
bool devices_share_suspect(struct devices_share *sh, const char *key, const struct sockaddr *sa,
			   bool count);
void devices_share_retire(struct devices_share *sh, struct devices_sources **src);
/* The owner's own query is about to be identified: replays first what the workers have
 * queued, so that a client's earlier query answered by another worker counts before this one
 * (as with one worker). A few atomic loads when the queues are empty. */
void devices_share_sync(struct devices_share *sh);
/* A full snapshot now (benchmarks). */
void devices_share_rebuild(struct devices_share *sh);
/* The idle tick's check now, without its wait (tests, benchmarks): a full snapshot when
 * d->share_gen moved since the last one. */
void devices_share_idle(struct devices_share *sh);
/* What a worker's copy holds of r (key aside), as a seeded hash: 0 when r is not in it (not
 * worth copying), else never 0. Owner thread. */
uint64_t devices_share_sig(const struct devices_share *sh, const struct devices_record *r);
/* What the current snapshot says behaviour attributes to the device with key (tests, owner
 * thread): its vendor, "" for none or no entry. */
void devices_share_snap_romv(struct devices_share *sh, const char *key, char *buf,
			     size_t size);
void devices_on_handle_closed(uv_handle_t *h);

/* devices.c, for devices_admin.c (the administrator's forget, pin and unpin on the running
 * table). Loop thread only; record pointers are valid until the next call that adds or removes
 * a record. */
const struct config *devices_int_config(const struct devices *d);
const struct policy *devices_int_policy(const struct devices *d);
const struct devices_sources *devices_int_sources(const struct devices *d);
/* The record of a key text ("mac:...", "ip:..."), or NULL. */
struct devices_record *devices_int_lookup(struct devices *d, const char *key);
/* The i-th record, NULL past the end. */
struct devices_record *devices_int_record(struct devices *d, size_t i);
/* A new, empty record for key (not present), first and last seen now; NULL when the key is
 * not valid, the table is full of devices that are never evicted, or memory runs out. */
struct devices_record *devices_int_add(struct devices *d, const char *key);
/* Removes r from the table and queues its deletion from the saved state. 0 or -ENOMEM. */
int devices_int_remove(struct devices *d, struct devices_record *r);
/* r changed: saved at the next save. */
void devices_int_dirty(struct devices *d, struct devices_record *r);
/* Hands r's state (forget: its removal) to the shared store, when there is one. */
void devices_int_share(struct devices *d, const struct devices_record *r, bool forget);
/* Whether devices_close() was called. */
bool devices_int_closing(const struct devices *d);
/* A handle of d's closed (the shared store's async): d may finish closing. */
void devices_int_handle_closed(struct devices *d);
/* The group r's next query gets (devices_admin.c; its most recent address stands for the
 * client, else its pinned or last group). */
const char *devices_int_next_group(struct devices *d, const struct devices_record *r);
/* Reports a device event without a client address (an administrator's action). */
void devices_int_event(struct devices *d, const char *kind, const struct devices_record *r,
		       const char *old_group, const char *new_group, const char *evidence);

#endif
