/*
 * fetch: one download of a list URL into its cached copy (blocking: runs in the thread pool).
 *
 * The body goes to a temporary file beside the copy (COPY.tmp), is parsed whole with the
 * policy's list parser (policy/lists.h) and only when it is a list (see fetch_run) renamed over
 * the copy, so the copy is always the last good download. The ETag and Last-Modified of the last
 * good download are kept beside it in COPY.meta and sent back (If-None-Match /
 * If-Modified-Since): a 304 keeps the copy and counts as a good fetch.
 *
 * http and https only (redirects too, at most FETCH_MAX_REDIRECTS), TLS verified against the
 * system store or req->ca_file, req->max_size octets at most (announced or received),
 * req->timeout_s for the whole transfer. No signals (CURLOPT_NOSIGNAL): safe in any thread.
 */
#ifndef VETO_FETCH_H
#define VETO_FETCH_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FETCH_MAX_REDIRECTS 5
#define FETCH_ERROR_MAX	    256

/* Once at start, before any thread fetches (curl_global_init), and once at the end. */
int fetch_global_init(void);
void fetch_global_cleanup(void);

struct fetch_req {
	const char *url;	/* borrowed, for the duration of fetch_run */
	const char *copy;	/* the cached copy's path */
	const char *ca_file;	/* NULL = the system store */
	uint32_t timeout_s;
	uint32_t max_size;
	const atomic_bool *abort; /* may be NULL: set to give up at once (shutdown) */
};

enum fetch_outcome {
	FETCH_UPDATED,		/* 200: a new copy is in place */
	FETCH_NOT_MODIFIED,	/* 304, or 200 with the same content: the copy stays */
	FETCH_FAILED,		/* the copy stays; error says why */
};

struct fetch_result {
	enum fetch_outcome outcome;
	long http_status;	/* 0 when no response came */
	size_t names;		/* names in the body (FETCH_UPDATED) */
	size_t skipped;		/* lines skipped in it */
	size_t bytes;		/* body octets received */
	char error[FETCH_ERROR_MAX]; /* FETCH_FAILED: one printable line */
};

/*
 * Downloads req->url (conditional on the copy's meta file when its URL is the same) and replaces
 * the copy when the body is a list: it parses, holds at least one name, has no NUL octet, and
 * no more skipped lines than names (an HTML error page or a binary is refused). Creates the
 * copy's folder when missing. Always fills *res.
 */
void fetch_run(const struct fetch_req *req, struct fetch_result *res);

/* The meta file of copy (COPY.meta) into buf: 0 or -ENAMETOOLONG. */
int fetch_meta_path(const char *copy, char *buf, size_t size);

/* Reads the time of the last good fetch (unix seconds) recorded in copy's meta file for url;
 * 0 when there is none (no file, another URL). */
int64_t fetch_last_good(const char *copy, const char *url);

#endif
