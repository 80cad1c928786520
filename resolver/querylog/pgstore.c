/*
 * pgstore: the PostgreSQL sink of the query log (see pgstore.h). Records become COPY text lines
 * here, with the values of the JSON line (record.c's querylog_text: the same text, NULL where
 * the line has null); batches go to the database (pgstore_send.c) or the spool
 * (pgstore_spool.c); the connection comes from the helper thread (pgstore_conn.c).
 */
#include "pgstore.h"
#include "pgstore_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
static char *
put_val(char *p, const char *s, size_t n, char sep)
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
	return put_val(p, s, s != NULL ? strlen(s) : 0, sep);
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
	ps->lost_in_outage += n;
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
		ps->replayed = ps->lost_in_outage = 0;
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
	ps->retention_days = cfg->log.retention_days;
	ps->b.row_off = calloc(PGSTORE_BATCH_ROWS + 1, sizeof(*ps->b.row_off));
	ps->b.row_blocked = calloc(PGSTORE_BATCH_ROWS, 1);
	atomic_init(&ps->state, PGSTORE_CONNECTING);
	if (ps->cfg.store.postgresql == NULL || ps->cfg.store.instance == NULL ||
	    (cfg->store.password_file != NULL && ps->cfg.store.password_file == NULL) ||
	    ps->spool_dir == NULL || ps->b.row_off == NULL || ps->b.row_blocked == NULL ||
	    !grow(&ps->b.q, &ps->b.qcap, BUF_START) || !grow(&ps->b.e, &ps->b.ecap, 1u << 16)) {
		pgstore_free(&ps);
		return -ENOMEM;
	}
	batch_reset(&ps->b);
	*out = ps;
	return 0;
}

void
pgstore_start(struct pgstore *ps)
{
	ps->started = true;
	ps->mono = pgstore_mono_ms();
	pgstore_spool_open(ps);
	pgstore_job_start(ps, true, ps->retention_days);
}

/* Sends the batch, or spools it; empties it. */
static void
flush(struct pgstore *ps)
{
	struct pgstore_batch *b = &ps->b;
	char why[512];
	int rc = -EAGAIN;

	if (b->nrows + b->nevents == 0)
		return;
	/* while older batches wait in the spool, new ones queue behind them (order) */
	if (ps->conn != NULL && pgstore_spool_empty(ps)) {
		uint64_t deadline = pgstore_mono_ms() + PGSTORE_SEND_MS;
		rc = 0;
		if (b->nrows > 0 && (b->day_lo < ps->part_lo || b->day_hi > ps->part_hi)) {
			rc = pgstore_partitions(ps->conn, b->day_lo, b->day_hi, deadline, why,
			                        sizeof(why));
			if (rc == 0) {
				ps->part_lo = b->day_lo < ps->part_lo ? b->day_lo : ps->part_lo;
				ps->part_hi = b->day_hi > ps->part_hi ? b->day_hi : ps->part_hi;
			}
		}
		if (rc == 0)
			rc = pgstore_send(ps->conn, b->q, b->qlen, b->e, b->elen, deadline, why,
			                  sizeof(why));
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

static bool
room(struct pgstore *ps)
{
	struct pgstore_batch *b = &ps->b;

	if (b->nrows == 0 && b->nevents == 0)
		b->started = ps->mono;
	return grow(&b->q, &b->qcap, b->qlen + ROW_MAX) && grow(&b->e, &b->ecap, b->elen + ROW_MAX);
}

void
pgstore_add(struct pgstore *ps, const struct querylog_record *r)
{
	struct pgstore_batch *b = &ps->b;
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
	if (b->nrows >= PGSTORE_BATCH_ROWS || b->qlen > (64u << 20))
		flush(ps);
}

void
pgstore_add_event(struct pgstore *ps, const struct logdb_event *ev)
{
	struct pgstore_batch *b = &ps->b;

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

/* The helper's job ended: a connection for the writer, or a retention pass done. */
static void
job_done(struct pgstore *ps)
{
	struct pgstore_job *j = &ps->job;
	int32_t today = (int32_t)(j->wall_ms / PGSTORE_DAY_MS);

	if (j->rc != 0) {
		if (j->handoff)
			pgstore_conn_failed(ps, ps->failing || atomic_load(&ps->state) ==
			                                                PGSTORE_CONNECTING
			                                ? "cannot connect"
			                                : "cannot connect again",
			                    j->why);
		else
			log_warning("query store: retention: %s (tried again in an hour)", j->why);
		if (!j->handoff || j->retention_days > 0)
			ps->retention_at = ps->mono + (j->handoff ? 0 : 3600u * 1000);
		return;
	}
	if (j->retention_days > 0)
		ps->retention_at = ps->mono + PGSTORE_RETENTION_MS;
	if (!j->handoff)
		return;
	ps->conn = j->conn;
	ps->part_lo = today;
	ps->part_hi = today + 1;
	ps->backoff_ms = 0;
	set_state(ps, PGSTORE_UP);
	if (!ps->failing)
		log_info("query store: PostgreSQL: connected as '%s' (schema version %d)",
		         ps->instance, PG_SCHEMA_VERSION);
}

/* The outage is over once the spool is empty: one line with what it cost. */
static void
recovered(struct pgstore *ps)
{
	if (!ps->failing || ps->conn == NULL || !pgstore_spool_empty(ps))
		return;
	ps->failing = ps->spool_full = false;
	log_warning("query store: PostgreSQL: writing again; %" PRIu64 " rows replayed from the "
	            "spool, %" PRIu64 " queries were not stored",
	            ps->replayed, ps->lost_in_outage);
	ps->replayed = ps->lost_in_outage = 0;
}

void
pgstore_tick(struct pgstore *ps, uint64_t mono_ms, uint64_t wall_ms)
{
	ps->mono = mono_ms;
	ps->wall = wall_ms;
	if (pgstore_job_reap(ps))
		job_done(ps);
	if (ps->b.nrows + ps->b.nevents > 0 && mono_ms - ps->b.started >= PGSTORE_COMMIT_MS)
		flush(ps);
	if (ps->conn == NULL) {
		if (!ps->job.running && mono_ms >= ps->retry_at)
			pgstore_job_start(ps, true, ps->retention_at == 0 ? ps->retention_days : 0);
		return;
	}
	if (!pgstore_spool_empty(ps)) {
		int rc = pgstore_spool_replay(ps, mono_ms + PGSTORE_REPLAY_MS);
		if (rc != 0 && rc != -EAGAIN)
			return;
	}
	recovered(ps);
	/* tomorrow's partition a day ahead; retention once a day on a connection of its own */
	int32_t tomorrow = (int32_t)(wall_ms / PGSTORE_DAY_MS) + 1;
	if (tomorrow > ps->part_hi) {
		char why[512];
		int rc = pgstore_partitions(ps->conn, ps->part_hi + 1, tomorrow,
		                            pgstore_mono_ms() + PGSTORE_SEND_MS, why, sizeof(why));
		if (rc == 0)
			ps->part_hi = tomorrow;
		else if (rc != -EINVAL)
			pgstore_conn_failed(ps, "cannot create a partition", why);
	}
	if (ps->retention_days > 0 && !ps->job.running && ps->retention_at != 0 &&
	    mono_ms >= ps->retention_at)
		pgstore_job_start(ps, false, ps->retention_days);
}

void
pgstore_set_retention(struct pgstore *ps, uint32_t retention_days)
{
	if (retention_days == ps->retention_days)
		return;
	ps->retention_days = retention_days;
	ps->retention_at = ps->mono; /* now */
	if (ps->retention_at == 0)
		ps->retention_at = 1;
}

void
pgstore_finish(struct pgstore *ps)
{
	if (!ps->started)
		return;
	if (ps->job.running) {
		pthread_join(ps->job.thread, NULL);
		ps->job.running = false;
		if (ps->job.handoff && ps->job.rc == 0 && ps->conn == NULL)
			ps->conn = ps->job.conn;
		else if (ps->job.conn != NULL && ps->job.conn != ps->conn)
			PQfinish(ps->job.conn);
		ps->job.conn = NULL;
	}
	if (ps->conn != NULL && !pgstore_spool_empty(ps))
		pgstore_spool_replay(ps, pgstore_mono_ms() + PGSTORE_SEND_MS);
	flush(ps);
	if (ps->conn != NULL) {
		PQfinish(ps->conn);
		ps->conn = NULL;
	}
	uint64_t waiting = atomic_load(&ps->spooled_rows);
	if (waiting > 0)
		log_warning("query store: %" PRIu64 " rows wait in the spool '%s' (sent at the next "
		            "start)",
		            waiting, ps->spool_dir);
	if (ps->lost_in_outage > 0)
		log_warning("query store: %" PRIu64 " queries were not stored", ps->lost_in_outage);
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
	free(ps->b.q);
	free(ps->b.e);
	free(ps->b.row_off);
	free(ps->b.row_blocked);
	free(ps);
	*psp = NULL;
}
