/*
 * jsonl: the JSON-lines file sink of the query log (see jsonl.h).
 */
#include "jsonl.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/types.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "text.h"

static int
open_log(const char *path, int *fd)
{
	int f = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0640);
	if (f < 0)
		return -errno;
	*fd = f;
	return 0;
}

int
jsonl_open(struct jsonl *f)
{
	int rc;

	if (f->path == NULL)
		return 0; /* database only */
	if (strcmp(f->path, "-") == 0) {
		f->is_stdout = true;
		f->fd = STDOUT_FILENO;
		return 0;
	}
	rc = open_log(f->path, &f->fd);
	if (rc != 0)
		log_error("query log: '%s': cannot open: %s", f->path, strerror(-rc));
	return rc;
}

void
jsonl_close(struct jsonl *f)
{
	if (f->fd >= 0 && !f->is_stdout)
		close(f->fd);
	f->fd = -1;
	free(f->buf);
	f->buf = NULL;
	free(f->path);
	f->path = NULL;
}

void
jsonl_reopen(struct jsonl *f)
{
	int fd = -1;

	if (f->is_stdout || f->path == NULL)
		return;
	int rc = open_log(f->path, &fd);
	if (rc != 0) {
		log_error("query log: '%s': cannot reopen: %s (still writing to the old file)",
			  f->path, strerror(-rc));
		return;
	}
	if (f->fd >= 0)
		close(f->fd);
	f->fd = fd;
	log_info("query log: '%s': reopened", f->path);
}

static size_t
count_lines(const char *p, size_t n)
{
	size_t c = 0;

	for (const char *e = p + n; (p = memchr(p, '\n', (size_t)(e - p))) != NULL; p++)
		c++;
	return c;
}

/* After a short write: the file's bytes past its last complete line (a line cut by ENOSPC)
 * are cut off, so every line in the file stays whole. start: the file's size before the
 * batch; written: octets of buf written. True when nothing partial is left. */
static bool
cut_partial_line(struct jsonl *f, off_t start, size_t written)
{
	size_t keep = written;

	while (keep > 0 && f->buf[keep - 1] != '\n')
		keep--;
	if (keep == written)
		return true;
	if (start < 0)
		return false;
	while (ftruncate(f->fd, start + (off_t)keep) != 0) {
		if (errno != EINTR)
			return false;
	}
	return true;
}

int
jsonl_flush(struct jsonl *f)
{
	size_t off = 0;
	int err = 0;

	if (f->len == 0)
		return 0;
	/* where this batch starts (O_APPEND: the end), to cut a partial line; -1 for a pipe
	 * or terminal (standard output) */
	off_t start = f->is_stdout ? -1 : lseek(f->fd, 0, SEEK_END);
	if (f->need_newline) {
		ssize_t n = write(f->fd, "\n", 1);
		if (n == 1)
			f->need_newline = false;
		else
			err = n < 0 ? errno : EIO;
	}
	while (err == 0 && off < f->len) {
		ssize_t n = write(f->fd, f->buf + off, f->len - off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			err = errno;
		} else if (n == 0) {
			err = EIO;
		} else {
			off += (size_t)n;
		}
	}
	if (err != 0) {
		uint64_t lost = count_lines(f->buf + off, f->len - off);
		/* a pipe cannot be cut: the next batch starts on a line of its own at least */
		if (!cut_partial_line(f, start, off))
			f->need_newline = true;
		atomic_fetch_add(&f->lost, lost);
		f->lost_in_burst += lost;
		if (!f->in_error) {
			f->in_error = true;
			log_warning("query log: '%s': write failed: %s (records are dropped until "
				    "writing works again)",
				    f->path, strerror(err));
		}
	} else if (f->in_error) {
		f->in_error = false;
		log_warning("query log: '%s': writing again; %llu records lost", f->path,
			    (unsigned long long)f->lost_in_burst);
		f->lost_in_burst = 0;
	}
	f->len = 0;
	return -err;
}

void
jsonl_lost(struct jsonl *f, uint64_t n)
{
	atomic_fetch_add(&f->lost, n);
	f->lost_in_burst += n;
}

/* Ends a burst of write errors (or of records lost while the file could not be opened) with
 * its count, before the file changes. */
static void
end_error_burst(struct jsonl *f)
{
	if (!f->in_error)
		return;
	log_warning("query log: '%s': %llu records lost to write errors", f->path,
		    (unsigned long long)f->lost_in_burst);
	f->in_error = false;
	f->lost_in_burst = 0;
}

/* A file a reload named that could not be opened: retried with backoff. */
void
jsonl_retry(struct jsonl *f, uint64_t now)
{
	int fd = -1;

	if (f->path == NULL || f->fd >= 0)
		return;
	if (now < f->retry_at)
		return;
	if (open_log(f->path, &fd) != 0) {
		f->backoff_ms = f->backoff_ms == 0		  ? JSONL_RETRY_MIN_MS
				: f->backoff_ms * 2 > JSONL_RETRY_MAX_MS ? JSONL_RETRY_MAX_MS
									  : f->backoff_ms * 2;
		f->retry_at = now + f->backoff_ms;
		return;
	}
	f->fd = fd;
	f->backoff_ms = 0;
	log_info("query log: '%s': opened at last; %llu records were lost meanwhile", f->path,
		 (unsigned long long)f->lost_in_burst);
	f->in_error = false;
	f->lost_in_burst = 0;
}

void
jsonl_set_path(struct jsonl *f, char **path, uint64_t now)
{
	int rc;

	if (text_equal(*path, f->path))
		return;
	end_error_burst(f);
	if (f->fd >= 0 && !f->is_stdout)
		close(f->fd);
	if (f->path != NULL)
		log_info("query log: '%s': closed", f->path);
	free(f->path);
	f->path = *path;
	*path = NULL;
	f->fd = -1;
	f->is_stdout = false;
	f->need_newline = false;
	f->backoff_ms = 0;
	f->retry_at = 0;
	if (f->path == NULL)
		return;
	if (strcmp(f->path, "-") == 0) {
		f->is_stdout = true;
		f->fd = STDOUT_FILENO;
		log_info("query log: writing to standard output");
		return;
	}
	rc = open_log(f->path, &f->fd);
	if (rc != 0) {
		log_error("query log: '%s': cannot open: %s (records are dropped and counted until "
			  "it can be opened; retried)",
			  f->path, strerror(-rc));
		f->in_error = true;
		f->retry_at = now + JSONL_RETRY_MIN_MS;
		f->backoff_ms = JSONL_RETRY_MIN_MS;
		return;
	}
	log_info("query log: writing to '%s'", f->path);
}

/* Reports ring overflow once per burst: when a check sees no new drop since the previous one,
 * or every JSONL_DROP_REPORT_MAX_S seconds while drops go on. */
void
jsonl_report_drops(struct jsonl *f, uint64_t d, const char *what, bool final)
{
	time_t now = time(NULL);

	if (d == f->drop_reported)
		return;
	if (d != f->drop_seen && !final) {
		if (f->drop_seen == f->drop_reported)
			f->drop_burst_start = now;
		f->drop_seen = d;
		if (now - f->drop_burst_start < JSONL_DROP_REPORT_MAX_S)
			return;
	}
	log_warning("query log: %llu forwarded queries not stored one by one (buffer full: '%s' "
		    "is too slow; counted in 'unlogged' lines and rows)",
		    (unsigned long long)(d - f->drop_reported),
		    f->path != NULL ? f->path : what != NULL ? what : "(none)");
	f->drop_reported = d;
	f->drop_seen = d;
	f->drop_burst_start = now;
}

void
jsonl_report_final(const struct jsonl *f)
{
	if (f->in_error && f->path != NULL)
		log_warning("query log: '%s': %llu records lost to write errors", f->path,
			    (unsigned long long)f->lost_in_burst);
}
