/*
 * devices_pg: the sync of the shared device table (see devices_pg.h): the queues between the
 * loop and the sync thread, the thread (its own libpq connection; nothing on the loop calls
 * libpq) and, on the loop, applying the fetched rows to the table.
 */
#include "devices_pg.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "devices_admin.h"
#include "devices_int.h"
#include "devices_pg_int.h"
#include "log.h"
#include "pg.h"
#include "text.h"

#define BACKOFF_MIN_MS 1000
#define BACKOFF_MAX_MS 30000
#define JOIN_WAIT_S    8

/* Rows fetched by the thread, waiting for the loop. */
struct batch {
	struct devices_pg_row *rows;
	size_t n;
	bool initial;		/* the first fetch since start */
	struct batch *next;
};

struct devices_pg {
	struct devices *d;	/* owner (loop) */
	uv_async_t async;
	struct config store;	/* the thread's copy of the store settings (only store.* set:
				   no policy is kept alive across reloads for it) */
	char instance[DEVICES_PG_INSTANCE_MAX];
	int wake_fd;		/* eventfd: the loop wakes the thread */
	pthread_t thread;
	bool started, abandoned;

	pthread_mutex_t mu;	/* guards the fields below */
	struct devices_pg_queue q;	/* loop -> thread */
	struct batch *in, *in_tail;	/* thread -> loop */
	bool stop;
	bool async_closed;	/* the loop closed async: the thread must not signal it */

	/* loop only */
	bool ready;		/* the first fetch was merged: own counts are known, push */
	bool push_all;		/* (again) every record with shared state, from push_next */
	size_t push_next;
	uint64_t dropped;
	bool drop_logged;
};

static int64_t
mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wakes the loop (thread side, p->mu held): never once the loop has closed the handle. */
static void
signal_loop_locked(struct devices_pg *p)
{
	if (!p->async_closed)
		uv_async_send(&p->async);
}

static void
wake(struct devices_pg *p)
{
	uint64_t one = 1;
	ssize_t w = write(p->wake_fd, &one, sizeof(one));
	(void)w;	/* EAGAIN: the counter is already set, the thread wakes anyway */
}

/* ---- the loop side ---- */

/* Queues r's state (or its forget); a state replaces the one still queued for the same device,
 * so that a device's repeated queries while the store is away take one slot. */
static bool
enqueue(struct devices_pg *p, const struct devices_record *r, bool forget)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	pthread_mutex_lock(&p->mu);
	bool ok = devices_pg_queue_put(&p->q, r, forget,
				       (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
	pthread_mutex_unlock(&p->mu);
	return ok;
}

void
devices_pg_push(struct devices_pg *p, const struct devices_record *r, bool forget)
{
	if (p == NULL || (!forget && !p->ready))
		return;	/* before the first fetch, push_all sends the whole table */
	if (!enqueue(p, r, forget)) {
		p->dropped++;
		if (forget) {	/* a tombstone is not in the table to be sent again */
			log_warning("devices: %s: the shared store's queue is full (%d devices "
				    "waiting): this forget stays local; forget it again once the "
				    "store is back", r->key, DEVICES_PG_QUEUE);
			return;
		}
		p->push_all = true;
		p->push_next = 0;
		if (!p->drop_logged)
			log_warning("devices: the shared store's queue is full (%d devices "
				    "waiting): every device will be sent again", DEVICES_PG_QUEUE);
		p->drop_logged = true;
		return;
	}
	wake(p);
}

static bool
worth_sharing(const struct devices_record *r)
{
	for (size_t i = 0; i < r->nobs; i++)
		if (r->obs[i].own > 0)
			return true;
	return r->pin_at > 0 || r->pin_vendor[0] != '\0' || r->pin_group[0] != '\0' ||
	       r->os_families != 0 || r->shared;
}

/* Continues sending the whole table while the queue has room. */
static void
push_some(struct devices_pg *p)
{
	struct devices_record *r;
	bool woke = false;

	while (p->push_all && (r = devices_int_record(p->d, p->push_next)) != NULL) {
		if (worth_sharing(r)) {
			if (!enqueue(p, r, false))
				break;	/* the rest after the thread's next write */
			woke = true;
		}
		p->push_next++;
	}
	if (p->push_all && devices_int_record(p->d, p->push_next) == NULL) {
		p->push_all = false;
		p->drop_logged = false;
	}
	if (woke)
		wake(p);
}

/* What an administrator's pins say, for the event and the log. */
static void
pins_text(const struct devices_record *r, const char *by, char *buf, size_t size)
{
	snprintf(buf, size, "%s%s%s%s%s%son instance %s", r->pin_vendor[0] ? "vendor=" : "",
		 r->pin_vendor, r->pin_vendor[0] ? " " : "", r->pin_group[0] ? "group=" : "",
		 r->pin_group, r->pin_group[0] ? " " : "", by);
}

/*
 * Whether a device only the others know joins this table: it has something to say (a pin,
 * evidence), the table has room (no eviction for it: the device's own first query here brings
 * it in, and the next full resync its state), and it is not a device known by its address alone
 * that this table would expire at once (the resync would bring it back every time).
 */
static bool
worth_adding(struct devices *d, const struct config *cfg, const struct devices_pg_row *row)
{
	bool pinned = row->pin_vendor[0] != '\0' || row->pin_group[0] != '\0';
	if (row->forgotten_at != 0 ||
	    !(pinned || row->nothers > 0 || row->nown > 0 || row->os_families != 0 || row->shared))
		return false;
	if (devices_count(d) >= cfg->devices.max_devices)
		return false;
	return pinned || strncmp(row->key, "ip:", 3) != 0 ||
	       row->last_seen >= (int64_t)time(NULL) - (int64_t)cfg->devices.address_ttl_s;
}

static void
apply_row(struct devices_pg *p, const struct devices_pg_row *row, bool initial)
{
	struct devices *d = p->d;
	const struct config *cfg = devices_int_config(d);
	char old_vendor[IDENTITY_VENDOR_MAX], old_group[IDENTITY_NAME_MAX];
	char old_pv[IDENTITY_VENDOR_MAX], old_pg[IDENTITY_NAME_MAX];
	char evidence[IDENTITY_EVIDENCE_MAX], ev[DEVICES_EVIDENCE_MAX + 32];
	const char *by = row->updated_by[0] ? row->updated_by : "?";

	struct devices_record *r = devices_int_lookup(d, row->key);
	bool added = false;
	if (r == NULL) {
		/* a device this instance has not seen: known from the others from now on */
		if (!worth_adding(d, cfg, row) || (r = devices_int_add(d, row->key)) == NULL)
			return;
		added = true;
		devices_admin_new_record(row->key, row->first_seen ? row->first_seen : r->first_seen,
					 r);
		r->last_seen = row->last_seen ? row->last_seen : r->first_seen;
	}
	text_copy(old_vendor, sizeof(old_vendor), r->vendor);
	text_copy(old_group, sizeof(old_group), r->group);
	text_copy(old_pv, sizeof(old_pv), r->pin_vendor);
	text_copy(old_pg, sizeof(old_pg), r->pin_group);

	enum devices_pg_merged m = devices_pg_merge(r, row, initial);
	if (m == DEVICES_PG_FORGET) {
		struct devices_record copy = *r;
		devices_int_remove(d, r);
		snprintf(evidence, sizeof(evidence), "on instance %s", by);
		devices_int_event(d, "forget", &copy, old_group, NULL, evidence);
		log_info("devices: %s: forgotten on instance %s", copy.key, by);
		return;
	}
	if (m == DEVICES_PG_SAME) {
		if (added)
			devices_int_dirty(d, r);
		return;
	}
	devices_int_dirty(d, r);
	identify_vendor(cfg, r);
	const char *ng = devices_int_next_group(d, r);
	text_copy(r->group, sizeof(r->group), ng);
	if (strcmp(old_pv, r->pin_vendor) != 0 || strcmp(old_pg, r->pin_group) != 0) {
		bool pinned = r->pin_vendor[0] != '\0' || r->pin_group[0] != '\0';
		if (pinned)
			pins_text(r, by, evidence, sizeof(evidence));
		else
			snprintf(evidence, sizeof(evidence), "%s%s%s%s%s%son instance %s",
				 old_pv[0] ? "vendor=" : "", old_pv, old_pv[0] ? " " : "",
				 old_pg[0] ? "group=" : "", old_pg, old_pg[0] ? " " : "", by);
		devices_int_event(d, pinned ? "pin" : "unpin", r, old_group, r->group, evidence);
		log_info("devices: %s: %s on instance %s: vendor '%s', group '%s' from its next "
			 "query", r->key, pinned ? "pinned" : "unpinned", by, r->vendor, r->group);
		return;
	}
	if (strcmp(old_vendor, r->vendor) == 0)
		return;
	identify_evidence_text(r, ev, sizeof(ev));
	snprintf(evidence, sizeof(evidence), "%.150s (shared; last change on %.63s)", ev, by);
	if (r->nips == 0)	/* not seen here yet: its group comes with its first query */
		log_info("devices: %s: vendor '%s' (was '%s') from the shared evidence (%s, last "
			 "change on instance %s)", r->key, r->vendor, old_vendor, ev, by);
	else
		log_info("devices: %s: vendor '%s' (was '%s') from the shared evidence (%s, last "
			 "change on instance %s): group '%s' -> '%s'", r->key, r->vendor, old_vendor,
			 ev, by, old_group[0] ? old_group : "(none)",
			 r->group[0] ? r->group : "(none)");
	devices_int_event(d, "vendor", r, old_group, r->group, evidence);
	if (strcmp(old_group, r->group) != 0)
		devices_int_event(d, "group_change", r, old_group, r->group, evidence);
}

static void
on_async(uv_async_t *a)
{
	struct devices_pg *p = a->data;
	pthread_mutex_lock(&p->mu);
	struct batch *b = p->in;
	p->in = p->in_tail = NULL;
	pthread_mutex_unlock(&p->mu);
	while (b != NULL) {
		struct batch *next = b->next;
		for (size_t i = 0; i < b->n && !devices_int_closing(p->d); i++)
			apply_row(p, &b->rows[i], b->initial);
		if (b->initial && !p->ready) {
			/* own counts known now: every device with shared state goes out, those
			 * the store does not have yet (this table before sharing) included */
			p->ready = true;
			p->push_all = true;
			p->push_next = 0;
		}
		free(b->rows);
		free(b);
		b = next;
	}
	if (!devices_int_closing(p->d))
		push_some(p);
}

/* ---- the sync thread ---- */

static void
hand_over(struct devices_pg *p, struct devices_pg_row *rows, size_t n, bool initial)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (b == NULL) {
		free(rows);
		return;	/* the next full resync brings them */
	}
	b->rows = rows;
	b->n = n;
	b->initial = initial;
	pthread_mutex_lock(&p->mu);
	if (p->in_tail != NULL)
		p->in_tail->next = b;
	else
		p->in = b;
	p->in_tail = b;
	signal_loop_locked(p);
	pthread_mutex_unlock(&p->mu);
}

/* Sleeps up to ms or until woken; returns whether stop was asked. */
static bool
nap(struct devices_pg *p, int ms)
{
	struct pollfd pf = {.fd = p->wake_fd, .events = POLLIN};
	uint64_t v;
	if (poll(&pf, 1, ms) > 0) {
		ssize_t r = read(p->wake_fd, &v, sizeof(v));
		(void)r;
	}
	pthread_mutex_lock(&p->mu);
	bool stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

static bool
stop_asked(void *arg)
{
	struct devices_pg *p = arg;
	pthread_mutex_lock(&p->mu);
	bool stop = p->stop;
	pthread_mutex_unlock(&p->mu);
	return stop;
}

/* A connection, or NULL (warned once; not when stopping: the attempt was given up). */
static PGconn *
connect_store(struct devices_pg *p, bool *warned)
{
	const struct config *cfg = &p->store;
	char why[512];
	PGconn *c = NULL;
	/* a stop ends the attempt: a server that never answers does not hold the loop's close */
	int rc = pg_connect_until(cfg, "devices", p->wake_fd, stop_asked, p, &c, why,
				  sizeof(why));
	if (rc == -ECANCELED)
		return NULL;
	if (rc == 0 && (rc = pg_schema_ensure(c, p->instance, why, sizeof(why))) != 0) {
		PQfinish(c);
		c = NULL;
	}
	if (rc == 0 && pg_exec(c, "LISTEN " PG_DEVICES_CHANNEL, why, sizeof(why)) != 0) {
		PQfinish(c);
		c = NULL;
		rc = -EIO;
	}
	if (rc != 0) {
		if (!*warned)
			log_warning("devices: shared store: %s: the device table is kept locally "
				    "until it is back (retrying)", why);
		*warned = true;
		return NULL;
	}
	log_info("devices: shared store: connected as instance '%s'", p->instance);
	*warned = false;
	return c;
}

/* Takes what the loop queued into pend (after pend[0..*n)). */
static void
take_changes(struct devices_pg *p, struct devices_pg_change *pend, size_t *n)
{
	pthread_mutex_lock(&p->mu);
	*n += devices_pg_queue_take(&p->q, pend + *n, DEVICES_PG_QUEUE - *n);
	pthread_mutex_unlock(&p->mu);
}

/* Fetches the rows with seq > after (0: all) and hands them to the loop. */
static int
fetch(struct devices_pg *p, PGconn *c, int64_t *last_seq, int64_t after, bool *initial)
{
	struct devices_pg_row *rows = NULL;
	size_t n = 0;
	char why[512];
	/* evidence about an address (an ip: key) older than the address TTL belonged to whoever
	 * had the address then: the local table would have forgotten that device */
	int64_t ip_since = (int64_t)time(NULL) - (int64_t)p->store.devices.address_ttl_s;
	int rc = devices_pg_sql_fetch(c, p->instance, after, ip_since, &rows, &n, last_seq, why,
				      sizeof(why));
	if (rc != 0) {
		log_warning("devices: shared store: cannot read the device table: %s", why);
		return rc;
	}
	if (n > 0 || *initial)
		hand_over(p, rows, n, *initial);
	else
		free(rows);
	*initial = false;
	return 0;
}

/*
 * Takes the notifications libpq has read; whether one came from another connection. *from
 * becomes at most the seq before the lowest one announced ("SEQ KEY"): a transaction that took
 * its seq before a row already fetched but committed after it is fetched all the same.
 */
static bool
others_notified(PGconn *c, int64_t *from)
{
	bool others = false;
	PGnotify *nt;
	while ((nt = PQnotifies(c)) != NULL) {
		if (nt->be_pid != PQbackendPID(c)) {
			others = true;
			int64_t seq = strtoll(nt->extra, NULL, 10);
			if (seq > 0 && seq - 1 < *from)
				*from = seq - 1;
		}
		PQfreemem(nt);
	}
	return others;
}

static void *
run(void *arg)
{
	struct devices_pg *p = arg;
	const struct config *cfg = &p->store;
	struct devices_pg_change *pend = malloc(DEVICES_PG_QUEUE * sizeof(*pend));
	size_t npend = 0;
	PGconn *c = NULL;
	int64_t last_seq = 0, next_resync = 0;
	int backoff = BACKOFF_MIN_MS;
	bool warned = false, initial = true;
	char why[512];

	if (pend == NULL) {
		log_warning("devices: shared store: out of memory: the device table stays local");
		return NULL;
	}
	for (;;) {
		if (c == NULL) {
			if ((c = connect_store(p, &warned)) == NULL) {
				/* the attempt may have read the wake-up: ask first */
				if (stop_asked(p) || nap(p, backoff))
					break;
				backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			backoff = BACKOFF_MIN_MS;
			if (fetch(p, c, &last_seq, 0, &initial) != 0)
				goto lost;
			next_resync = mono_ms() + (int64_t)cfg->store.resync_s * 1000;
		}
		take_changes(p, pend, &npend);
		if (npend > 0) {
			if (devices_pg_sql_write(c, p->instance, pend, npend, why, sizeof(why)) != 0) {
				log_warning("devices: shared store: cannot write %zu device changes: "
					    "%s (kept for when it is back)", npend, why);
				goto lost;
			}
			npend = 0;
			pthread_mutex_lock(&p->mu);
			signal_loop_locked(p);	/* room in the queue: the loop may go on */
			pthread_mutex_unlock(&p->mu);
		}
		/* notifications that came in during the last statements are already read */
		int64_t from = last_seq;
		bool changed = others_notified(c, &from);
		int64_t wait = changed ? 0 : next_resync - mono_ms();
		struct pollfd pf[2] = {{.fd = PQsocket(c), .events = POLLIN},
				       {.fd = p->wake_fd, .events = POLLIN}};
		if (poll(pf, 2, wait > 0 ? (int)wait : 0) < 0 && errno != EINTR)
			goto lost;
		if (pf[1].revents & POLLIN) {
			uint64_t v;
			ssize_t rd = read(p->wake_fd, &v, sizeof(v));
			(void)rd;
		}
		pthread_mutex_lock(&p->mu);
		bool stop = p->stop;
		pthread_mutex_unlock(&p->mu);
		if (stop)
			break;
		if (pf[0].revents != 0) {
			if (PQconsumeInput(c) == 0)
				goto lost;
			changed = others_notified(c, &from) || changed;
		}
		bool full = mono_ms() >= next_resync;
		if ((changed || full) && fetch(p, c, &last_seq, full ? 0 : from, &initial) != 0)
			goto lost;
		if (full)
			next_resync = mono_ms() + (int64_t)cfg->store.resync_s * 1000;
		continue;
lost:
		if (PQstatus(c) == CONNECTION_OK) {
			if (nap(p, backoff))
				break;
			continue;
		}
		log_warning("devices: shared store: connection lost: the device table is kept "
			    "locally until it is back (retrying)");
		warned = true;
		PQfinish(c);
		c = NULL;
		if (nap(p, backoff))
			break;
	}
	/* stopping: what the loop queued last goes out when the store is there */
	take_changes(p, pend, &npend);
	if (c != NULL && npend > 0 &&
	    devices_pg_sql_write(c, p->instance, pend, npend, why, sizeof(why)) != 0)
		log_warning("devices: shared store: %zu device changes not written at exit: %s",
			    npend, why);
	else if (c == NULL && npend > 0)
		log_warning("devices: shared store: %zu device changes not written at exit (no "
			    "connection)", npend);
	PQfinish(c);
	free(pend);
	return NULL;
}

/* ---- life cycle ---- */

static void
free_store(struct devices_pg *p)
{
	free(p->store.store.postgresql);
	free(p->store.store.instance);
	free(p->store.store.password_file);
}

static void
on_async_closed(uv_handle_t *h)
{
	struct devices_pg *p = h->data;
	devices_int_handle_closed(p->d);
}

/* The thread could not start: p goes with its handle. */
static void
on_async_closed_free(uv_handle_t *h)
{
	struct devices_pg *p = h->data;
	p->started = false;
	devices_pg_free(&p);
}

int
devices_pg_new(struct devices *d, uv_loop_t *loop, struct policy *policy,
	       struct devices_pg **out)
{
	struct devices_pg *p = calloc(1, sizeof(*p));
	int rc;

	if (p == NULL)
		return -ENOMEM;
	p->d = d;
	p->wake_fd = -1;
	pthread_mutex_init(&p->mu, NULL);
	if ((rc = devices_pg_queue_init(&p->q)) != 0)
		goto cleanup;
	const struct config *cfg = policy_config(policy);
	p->store.store.spool_mb = cfg->store.spool_mb;
	p->store.store.resync_s = cfg->store.resync_s;
	p->store.devices.address_ttl_s = cfg->devices.address_ttl_s;
	if ((p->store.store.postgresql = strdup(cfg->store.postgresql)) == NULL ||
	    (cfg->store.instance != NULL &&
	     (p->store.store.instance = strdup(cfg->store.instance)) == NULL) ||
	    (cfg->store.password_file != NULL &&
	     (p->store.store.password_file = strdup(cfg->store.password_file)) == NULL)) {
		rc = -ENOMEM;
		goto cleanup;
	}
	pg_instance(cfg, p->instance, sizeof(p->instance));
	if ((p->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0) {
		rc = -errno;
		goto cleanup;
	}
	if ((rc = uv_async_init(loop, &p->async, on_async)) != 0)
		goto cleanup;
	p->async.data = p;
	if ((rc = -pthread_create(&p->thread, NULL, run, p)) != 0) {
		uv_close((uv_handle_t *)&p->async, on_async_closed_free);
		return rc;
	}
	p->started = true;
	*out = p;
	return 0;
cleanup:
	if (p->wake_fd >= 0)
		close(p->wake_fd);
	pthread_mutex_destroy(&p->mu);
	free_store(p);
	devices_pg_queue_free(&p->q);
	free(p);
	return rc;
}

void
devices_pg_close(struct devices_pg *p)
{
	if (p == NULL || !p->started)
		return;
	pthread_mutex_lock(&p->mu);
	p->stop = true;
	pthread_mutex_unlock(&p->mu);
	wake(p);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += JOIN_WAIT_S;
	if (pthread_timedjoin_np(p->thread, NULL, &until) != 0) {
		log_warning("devices: shared store: the sync thread did not stop within %d s: "
			    "leaving it", JOIN_WAIT_S);
		pthread_detach(p->thread);
		p->abandoned = true;	/* it may still read p: never freed */
	}
	p->started = false;
	pthread_mutex_lock(&p->mu);
	p->async_closed = true;	/* a thread left behind no longer signals the closing handle */
	pthread_mutex_unlock(&p->mu);
	uv_close((uv_handle_t *)&p->async, on_async_closed);
}

void
devices_pg_free(struct devices_pg **pp)
{
	struct devices_pg *p = *pp;
	if (p == NULL)
		return;
	*pp = NULL;
	if (p->abandoned)
		return;	/* its thread may still read it; the process is ending */
	struct batch *b = p->in;
	while (b != NULL) {
		struct batch *next = b->next;
		free(b->rows);
		free(b);
		b = next;
	}
	close(p->wake_fd);
	pthread_mutex_destroy(&p->mu);
	free_store(p);
	devices_pg_queue_free(&p->q);
	free(p);
}
