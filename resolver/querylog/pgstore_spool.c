/*
 * pgstore_spool: batches kept on local disk while PostgreSQL cannot take them. One file per
 * batch, STATE_DIR/spool/NNNNNNNNNNNNNNNN.spool (a sequence number: names sort in order),
 * written as NAME.tmp, fsync'd, renamed, the folder fsync'd: a crash leaves whole files only
 * (a .tmp is removed at the next start). A file is a header line
 * "veto-spool 2 run=RUN seq=SEQ rows=R events=E qlen=Q elen=L days=LO..HI" and the COPY text of
 * the rows (Q octets) and of the events (L octets). RUN and SEQ are the batch's key in
 * stored_batches (a version 1 file, from an older veto, has none): a batch whose commit was in
 * doubt when it was spooled, or a file replayed again after a crash, is not stored twice.
 * Replayed oldest first, each as one transaction; a file the server refuses (its data, not the
 * connection) is renamed NAME.rejected and counted lost. Numbers are never used twice: at start
 * the next one is above every numbered file in the folder (rejected ones included), and a
 * rejected file never replaces another.
 */
#include "pgstore_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fileio.h"
#include "log.h"

#define HEADER_MAX 256

static void
file_path(const struct pgstore *ps, uint64_t seq, const char *ext, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%016" PRIu64 "%s", ps->spool_dir, seq, ext);
}

struct header {
	uint64_t run, seq; /* 0: a version 1 file, no key */
	unsigned rows, events;
	size_t qlen, elen;
	int32_t lo, hi;
	size_t len; /* of the header line */
};

static int
parse_header(const char *s, size_t n, struct header *h)
{
	const char *nl = memchr(s, '\n', n < HEADER_MAX ? n : HEADER_MAX);
	char line[HEADER_MAX];
	if (nl == NULL)
		return -EINVAL;
	memcpy(line, s, (size_t)(nl - s));
	line[nl - s] = '\0';
	h->run = h->seq = 0;
	if (sscanf(line,
	           "veto-spool 2 run=%" SCNu64 " seq=%" SCNu64
	           " rows=%u events=%u qlen=%zu elen=%zu days=%d..%d",
	           &h->run, &h->seq, &h->rows, &h->events, &h->qlen, &h->elen, &h->lo,
	           &h->hi) != 8 &&
	    sscanf(line, "veto-spool 1 rows=%u events=%u qlen=%zu elen=%zu days=%d..%d", &h->rows,
	           &h->events, &h->qlen, &h->elen, &h->lo, &h->hi) != 6)
		return -EINVAL;
	h->len = (size_t)(nl - s) + 1;
	return 0;
}

static void
sync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
}

void
pgstore_spool_open(struct pgstore *ps)
{
	int rc = fileio_mkdir_p(ps->spool_dir, 0750);
	uint64_t lo = UINT64_MAX, top = 0, rows = 0, bytes = 0;
	char path[4200];

	ps->seq_head = ps->seq_next = 1;
	if (rc != 0) {
		log_error("query store: spool '%s': cannot create: %s (batches PostgreSQL cannot "
		          "take now are lost)",
		          ps->spool_dir, strerror(-rc));
		return;
	}
	DIR *d = opendir(ps->spool_dir);
	if (d == NULL)
		return;
	for (struct dirent *de; (de = readdir(d)) != NULL;) {
		uint64_t seq;
		int used = 0;
		if (sscanf(de->d_name, "%16" SCNu64 "%n", &seq, &used) != 1 || used != 16)
			continue;
		snprintf(path, sizeof(path), "%s/%s", ps->spool_dir, de->d_name);
		if (strcmp(de->d_name + 16, ".tmp") == 0) {
			unlink(path); /* a crash while it was written: its rows were never spooled */
			continue;
		}
		/* no number is given again, whatever the file (NNN.rejected kept as evidence) */
		top = seq > top ? seq : top;
		if (strcmp(de->d_name + 16, ".spool") != 0)
			continue;
		lo = seq < lo ? seq : lo; /* a file that is not whole: replay sets it aside */
		char head[HEADER_MAX];
		struct header h;
		struct stat st;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		ssize_t n = read(fd, head, sizeof(head));
		int ok = n > 0 && fstat(fd, &st) == 0 && parse_header(head, (size_t)n, &h) == 0;
		close(fd);
		if (!ok)
			continue;
		rows += h.rows;
		bytes += (uint64_t)st.st_size;
	}
	closedir(d);
	ps->seq_next = top + 1;
	ps->seq_head = lo != UINT64_MAX ? lo : ps->seq_next;
	if (lo != UINT64_MAX) {
		atomic_store(&ps->spooled_rows, rows);
		atomic_store(&ps->spool_bytes, bytes);
		log_info("query store: spool '%s': %" PRIu64 " rows from an earlier run, to be sent",
		         ps->spool_dir, rows);
	}
}

bool
pgstore_spool_empty(struct pgstore *ps)
{
	pthread_mutex_lock(&ps->spool_mu);
	bool empty = ps->seq_head >= ps->seq_next;
	pthread_mutex_unlock(&ps->spool_mu);
	return empty;
}

/* Keeps only the blocked rows of b (the evidence), in order. */
static void
keep_blocked(struct pgstore_batch *b)
{
	size_t out = 0;
	uint32_t kept = 0;

	for (uint32_t i = 0; i < b->nrows; i++) {
		if (!b->row_blocked[i])
			continue;
		size_t off = b->row_off[i], n = b->row_off[i + 1] - off;
		memmove(b->q + out, b->q + off, n);
		b->row_off[kept] = (uint32_t)out;
		b->row_blocked[kept++] = 1;
		out += n;
	}
	b->row_off[kept] = (uint32_t)out;
	b->nrows = kept;
	b->qlen = out;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

void
pgstore_spool_batch(struct pgstore *ps, struct pgstore_batch *b)
{
	uint64_t rows0 = b->nrows, events0 = b->nevents;
	char head[HEADER_MAX], tmp[4200], path[4200];

	/* held while the file is written: the sender sees a file once it is whole */
	pthread_mutex_lock(&ps->spool_mu);
	uint64_t used = atomic_load(&ps->spool_bytes);
	if (used + HEADER_MAX + b->qlen + b->elen > ps->spool_max) {
		keep_blocked(b); /* the evidence first */
		if (used + HEADER_MAX + b->qlen + b->elen > ps->spool_max)
			b->nrows = 0, b->qlen = 0;
		if (used + HEADER_MAX + b->elen > ps->spool_max)
			b->nevents = 0, b->elen = 0;
		if (!ps->spool_full) {
			ps->spool_full = true;
			log_error("query store: the spool is full (store.spool_mb: %" PRIu64 " MiB): "
			          "queries are not stored until PostgreSQL is back",
			          ps->spool_max >> 20);
		}
	}
	uint64_t lost = rows0 - b->nrows + events0 - b->nevents;
	if (b->nrows + b->nevents == 0)
		goto done;
	pgstore_name_batch(ps, b);
	int hl = snprintf(head, sizeof(head),
	                  "veto-spool 2 run=%" PRIu64 " seq=%" PRIu64
	                  " rows=%u events=%u qlen=%zu elen=%zu days=%d..%d\n",
	                  ps->run, b->seq, (unsigned)b->nrows, (unsigned)b->nevents, b->qlen,
	                  b->elen, (int)b->day_lo, (int)b->day_hi);
	file_path(ps, ps->seq_next, ".tmp", tmp, sizeof(tmp));
	file_path(ps, ps->seq_next, ".spool", path, sizeof(path));
	int rc = 0, fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		rc = -errno;
	if (rc == 0)
		rc = write_all(fd, head, (size_t)hl);
	if (rc == 0)
		rc = write_all(fd, b->q, b->qlen);
	if (rc == 0)
		rc = write_all(fd, b->e, b->elen);
	if (rc == 0 && fsync(fd) != 0)
		rc = -errno;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && rename(tmp, path) != 0)
		rc = -errno;
	if (rc != 0) {
		unlink(tmp);
		if (!ps->spool_full) {
			ps->spool_full = true;
			log_error("query store: spool '%s': cannot write: %s (queries are not stored "
			          "until PostgreSQL is back)",
			          ps->spool_dir, strerror(-rc));
		}
		lost += b->nrows + b->nevents;
		goto done;
	}
	sync_dir(ps->spool_dir);
	ps->seq_next++;
	atomic_fetch_add(&ps->spooled_rows, b->nrows);
	atomic_fetch_add(&ps->spool_bytes, (uint64_t)hl + b->qlen + b->elen);
done:
	pthread_mutex_unlock(&ps->spool_mu);
	if (lost > 0)
		pgstore_count_lost(ps, lost);
}

/* A file that cannot be sent as it is: kept aside for the administrator, counted lost. */
static void
set_aside(struct pgstore *ps, const char *path, uint64_t seq, uint64_t rows, uint64_t lost,
          uint64_t size, const char *why)
{
	char aside[4200];
	int rc = -EEXIST;

	/* never over an earlier file (the administrator's evidence): NNN.rejected, else
	   NNN.rejected.2, ... */
	for (unsigned k = 1; k <= 100 && rc == -EEXIST; k++) {
		char ext[32];
		snprintf(ext, sizeof(ext), k == 1 ? ".rejected" : ".rejected.%u", k);
		file_path(ps, seq, ext, aside, sizeof(aside));
		rc = renameat2(AT_FDCWD, path, AT_FDCWD, aside, RENAME_NOREPLACE) == 0 ? 0 : -errno;
		if (rc == -EINVAL) /* a file system without it */
			rc = link(path, aside) == 0 && unlink(path) == 0 ? 0 : -errno;
	}
	if (rc != 0) {
		unlink(path);
		snprintf(aside, sizeof(aside), "(removed: %s)", strerror(-rc));
	}
	log_error("query store: spool file '%s' refused by PostgreSQL: %s (kept as '%s'; %" PRIu64
	          " rows not stored)",
	          path, why, aside, rows);
	atomic_fetch_sub(&ps->spooled_rows, rows);
	atomic_fetch_sub(&ps->spool_bytes, size);
	pgstore_count_lost(ps, lost);
}

/* The sender's next file: seq_head moves only here. */
static bool
next_file(struct pgstore *ps, uint64_t *seq)
{
	pthread_mutex_lock(&ps->spool_mu);
	bool any = ps->seq_head < ps->seq_next;
	*seq = ps->seq_head;
	pthread_mutex_unlock(&ps->spool_mu);
	return any;
}

static void
file_done(struct pgstore *ps)
{
	pthread_mutex_lock(&ps->spool_mu);
	ps->seq_head++;
	pthread_mutex_unlock(&ps->spool_mu);
}

int
pgstore_spool_replay(struct pgstore *ps)
{
	char path[4200], why[512];
	uint64_t seq;

	while (!pgstore_stopping(ps) && next_file(ps, &seq)) {
		char *buf;
		size_t len;
		struct header h;
		file_path(ps, seq, ".spool", path, sizeof(path));
		int rc = fileio_read_all(path, &buf, &len);
		if (rc == -ENOENT) {
			file_done(ps);
			continue;
		}
		if (rc != 0 || parse_header(buf, len, &h) != 0 ||
		    h.len + h.qlen + h.elen != len) {
			if (rc == 0)
				free(buf);
			set_aside(ps, path, seq, 0, 0, 0, "not a whole spool file");
			file_done(ps);
			continue;
		}
		if (h.rows > 0 && (h.lo < ps->part_lo || h.hi > ps->part_hi)) {
			rc = pgstore_partitions(ps->conn, h.lo, h.hi,
			                        pgstore_mono_ms() + PGSTORE_SEND_MS, why, sizeof(why));
			if (rc != 0) {
				free(buf);
				return rc;
			}
		}
		struct pgstore_key key = {ps->instance, h.run, h.seq, h.rows, h.events};
		bool already = false;
		rc = pgstore_send(ps->conn, h.run != 0 ? &key : NULL, buf + h.len, h.qlen,
		                  buf + h.len + h.qlen, h.elen, pgstore_deadline(h.rows), &already,
		                  why, sizeof(why));
		free(buf);
		if (rc == -EINVAL) {
			set_aside(ps, path, seq, h.rows, h.rows + h.events, len, why);
			file_done(ps);
			continue;
		}
		if (rc != 0) {
			pgstore_conn_failed(ps, "cannot replay the spool", why);
			return rc;
		}
		if (already)
			log_info("query store: spool file '%s' was stored by an earlier attempt whose "
			         "outcome was not known: not stored again",
			         path);
		unlink(path);
		file_done(ps);
		atomic_fetch_sub(&ps->spooled_rows, h.rows);
		atomic_fetch_sub(&ps->spool_bytes, len);
		atomic_fetch_add(&ps->stored, h.rows);
		ps->replayed += h.rows;
	}
	return 0;
}
