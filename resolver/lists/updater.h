/*
 * updater: keeps the policy's lists current, on the loop.
 *
 *  - Every URL of every list is downloaded (fetch.h, in the thread pool, one download at a
 *    time so the pool stays free for reloads and device refreshes) when its copy is older than
 *    the list's refresh (at start: from the time recorded beside the copy), then every refresh.
 *    A failed download keeps the last good copy and is retried after 10 s, 20 s, 40 s, ...
 *    (at most the refresh). Each download is logged with its outcome.
 *  - The folders holding local list files are watched (uv_fs_event; folders, not files, because
 *    editors replace a file by renaming another over it); a change to a list file, debounced by
 *    UPDATER_DEBOUNCE_MS, asks for a reload.
 *  - A new copy asks for a reload too: reload_cb(arg, why). The caller reloads the policy the
 *    usual way (built in the thread pool, swapped on the loop) and hands the new policy back
 *    with updater_reconfigure().
 *
 * Loop thread only. Handle lifetimes as STYLE.md: updater_close() closes every handle, waits
 * for a download in flight (told to stop at once), then calls cb; updater_free() after that.
 */
#ifndef VETO_UPDATER_H
#define VETO_UPDATER_H

#include <stdbool.h>
#include <uv.h>

#include "policy.h"

#define UPDATER_DEBOUNCE_MS	300
#define UPDATER_RETRY_FIRST_S	10

typedef void updater_reload_cb(void *arg, const char *why);

struct updater;

/* Starts downloads and watchers for p's lists (the updater keeps a reference to p). 0 or
 * -ENOMEM; a folder that cannot be watched is logged, not fatal. */
int updater_new(uv_loop_t *loop, struct policy *p, updater_reload_cb *cb, void *arg,
		struct updater **out);

/* A reload's new policy: sources carried over by list name and URL, new ones scheduled,
 * watchers renewed. Takes a new reference to p. */
void updater_reconfigure(struct updater *u, struct policy *p);

/* Every URL is downloaded again now, one after the other. */
void updater_refresh(struct updater *u);

/*
 * The state of every source as text lines, one per source (a list without sources has one
 * line of kind "none"), each "NAME KIND SOURCE ENTRIES SKIPPED LAST NEXT OUTCOME ERROR":
 * KIND is file, url or inline; LAST and NEXT unix seconds (of the last download attempt and
 * the next one) or "-"; OUTCOME and ERROR text or "-"; entries and skipped are the list's.
 * Words are %XX-escaped as control.h says. Returns a malloc'd string (the caller frees it) or
 * NULL on ENOMEM.
 */
char *updater_status(const struct updater *u);

/* The state of URL url_idx of list list_idx (indexes of the policy the updater has, which is
 * the policy in use): unix seconds of the last attempt and the last success (0 = none), and the
 * failures in a row. 0, or -ENOENT when there is no such source. Loop thread; no allocation. */
struct updater_url_stat {
	int64_t last_attempt, last_good;
	unsigned failures;
};
int updater_url_stat(const struct updater *u, size_t list_idx, size_t url_idx,
		     struct updater_url_stat *out);

void updater_close(struct updater *u, void (*cb)(void *arg), void *arg);
void updater_free(struct updater **u);	/* after the close callback; NULL-safe */

#endif
