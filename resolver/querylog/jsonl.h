/*
 * jsonl: the JSON-lines file sink of the query log (log.file; "-" = standard output), driven by
 * the writer thread of querylog.c only. Not for other modules: they use querylog.h.
 *
 * The writer formats a batch of lines into buf (record.h), then jsonl_flush() writes it with
 * write(2). Write errors (ENOSPC, EIO, ...): the lines of the failed batch are counted as lost,
 * the error is logged once per burst, and the next batch is tried again. A line cut short by
 * the error (ENOSPC in the middle of it) is truncated away (ftruncate back to the end of the
 * last whole line), so every line in the file parses; only where that is impossible (a pipe
 * on standard output) is the partial line ended with a newline before the next batch. A file a reload named that cannot be opened is
 * retried with backoff (JSONL_RETRY_MIN_MS doubling to JSONL_RETRY_MAX_MS); what the writer
 * takes from the ring meanwhile is counted as lost. The sink also reports the ring's overflow
 * (dropped records), once per burst.
 */
#ifndef VETO_JSONL_H
#define VETO_JSONL_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define JSONL_BUF	   (256 * 1024) /* one batch of lines */
#define JSONL_RETRY_MIN_MS 500	/* a log file that cannot be opened: first retry after this, */
#define JSONL_RETRY_MAX_MS 30000 /* doubling up to this */
#define JSONL_DROP_REPORT_MAX_S 10 /* a sustained burst is reported at least this often */

/* Filled by querylog.c: fd -1, path and buf allocated (the rest zero). */
struct jsonl {
	char *path;			/* owned; NULL = no file sink */
	bool is_stdout;
	int fd;				/* -1 with a path: not open (counted as lost, retried) */
	uint64_t retry_at;		/* monotonic ms */
	uint64_t backoff_ms;
	char *buf;			/* owned; JSONL_BUF octets */
	size_t len;			/* octets of buf in use */
	bool in_error;			/* inside a burst of write errors */
	bool need_newline;		/* a partial line was written before an error */
	uint64_t lost_in_burst;
	atomic_uint_fast64_t lost;	/* records lost; read by any thread */
	uint64_t drop_seen, drop_reported;
	time_t drop_burst_start;
};

/* Opens f->path at startup: nothing for NULL, standard output for "-", else the file (created,
 * append mode). 0 or -errno (a message names the file). */
int jsonl_open(struct jsonl *f);

/* Closes the file (never standard output) and frees path and buffer. */
void jsonl_close(struct jsonl *f);

/* Reopens the file (SIGHUP, logrotate): a file that cannot be reopened is reported and the
 * old one kept. Nothing for standard output or no file. */
void jsonl_reopen(struct jsonl *f);

/* Writes buf; on error counts its unwritten lines as lost. 0, or the -errno of the failed
 * write (the caller reopens on -EBADF). */
int jsonl_flush(struct jsonl *f);

/* Counts n records as lost while the file is not open. */
void jsonl_lost(struct jsonl *f, uint64_t n);

/* Retries opening a file that could not be opened, once its backoff has passed (now_ms:
 * monotonic). */
void jsonl_retry(struct jsonl *f, uint64_t now_ms);

/* A reload's log.file: *path is taken when it differs from f->path (the old file is closed,
 * the new one opened; one that cannot be opened is reported and retried from now_ms on). */
void jsonl_set_path(struct jsonl *f, char **path, uint64_t now_ms);

/* Reports ring overflow (dropped: the ring's count since the start) once per burst; final
 * reports what is left at once. what names the slow sink when no file is written. */
void jsonl_report_drops(struct jsonl *f, uint64_t dropped, const char *what, bool final);

/* At the writer's exit: reports the records lost in a burst of errors still going on. */
void jsonl_report_final(const struct jsonl *f);

#endif
