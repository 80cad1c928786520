/*
 * control: the daemon's local control channel, a Unix stream socket in state_dir
 * (state_dir/control.sock) that `veto devices forget|pin|unpin`, `veto health`, `veto lists`
 * and `veto stats` talk to. It is open whenever state_dir is set.
 *
 * The socket is created by the daemon with mode 0600 whatever the umask (owner only: the
 * daemon's user and root can connect, and a peer of another uid is refused after a
 * SO_PEERCRED check), replaces a stale socket left by a crash (one nobody listens on), and is
 * removed at stop. Never on the network.
 *
 * Protocol: one request line per connection, one reply line, then the daemon closes:
 *     forget KEY
 *     pin KEY [vendor=VENDOR] [group=GROUP]
 *     unpin KEY
 *     health                  (answered "ok serving" by the loop itself: `veto health`)
 *     lists [refresh]
 *     stats                    (reply: "ok " and the counters as one JSON object, metrics.h)
 *     policy                   (reply: "ok policy N" and N tab-separated lines: the policy in
 *                              use, the last reload and its problems, groups and lists; see
 *                              server_policy.c)
 * Words are separated by one space; in a word, '%', space and control octets are written
 * %XX (hex). Replies: "ok TEXT" or "error: TEXT"; `lists` (after downloading every URL again
 * with `refresh`) answers "ok lists N" and N lines of updater_status() (updater.h), whatever
 * their length. Bounded: CONTROL_LINE_MAX octets per
 * request, CONTROL_MAX_CLIENTS connections at once (more are closed at once),
 * CONTROL_TIMEOUT_MS to send the request.
 *
 * Loop thread only. The handle lifetime follows STYLE.md: control_close() closes every handle
 * and calls cb once the last close callback ran; control_free() after that.
 */
#ifndef VETO_CONTROL_H
#define VETO_CONTROL_H

#include <stddef.h>
#include <uv.h>

#include "devices.h"
#include "devices_admin.h"
#include "updater.h"

#define CONTROL_SOCKET_FILE "control.sock"
#define CONTROL_LINE_MAX    512
#define CONTROL_MAX_CLIENTS 8
#define CONTROL_TIMEOUT_MS  2000
#define CONTROL_HEALTH      "health"
#define CONTROL_REPLY_MAX   4096 /* octets of a reply line, newline included */

/* Writes the daemon's counters as one JSON line (no newline) into buf: 0 or -ENOSPC. Called
 * on the loop for each "stats" request. */
typedef int (*control_stats_cb)(void *arg, char *buf, size_t size);
/* Writes the lines of a long reply (each ending with a newline) into *out (malloc'd, taken by
 * the channel): 0 or -ENOMEM. Called on the loop. */
typedef int (*control_text_cb)(void *arg, char **out);

/* Parses one request line (without its newline) into req (uid 0). 0, or -EINVAL with the
 * reason in err. */
int control_parse(const char *line, size_t len, struct devices_admin_req *req, char *err,
                  size_t size);
/* Writes req as a request line, newline included. 0, or -ENAMETOOLONG when it does not fit
 * in size (at most CONTROL_LINE_MAX counts). */
int control_format(const struct devices_admin_req *req, char *buf, size_t size);

/* state_dir/control.sock into buf: 0 or -ENAMETOOLONG (too long for a socket address). */
int control_path(const char *state_dir, char *buf, size_t size);

struct control;

/*
 * Listens on state_dir/control.sock for requests on d's table (d must outlive the channel; NULL:
 * no device table yet, device requests are answered with an error) and for "stats" (stats
 * with stats_arg; NULL: none). 0, or -errno (logged: the daemon runs without the channel):
 * -ENAMETOOLONG, -EADDRINUSE (another daemon serves that socket), or the socket's error.
 */
int control_open(uv_loop_t *loop, struct devices *d, const char *state_dir,
                 control_stats_cb stats, void *stats_arg, struct control **out);
/* The device table (d may be NULL: device requests are answered "device identity is off") and
 * the lists' updater (u may be NULL: `lists` is answered with an error) the requests act on;
 * both must outlive the channel. */
void control_set_devices(struct control *c, struct devices *d);
void control_set_lists(struct control *c, struct updater *u);
/* What answers `policy` (NULL: answered with an error). */
void control_set_policy(struct control *c, control_text_cb cb, void *arg);
/* `stats` with counters gathered from other threads: each request calls ask(arg) and waits
 * (its connection open, the loop free) until control_stats_ready(), which answers every
 * waiting request with the stats callback's JSON. Without ask, the reply is immediate. */
void control_set_stats_ask(struct control *c, void (*ask)(void *arg), void *arg);
void control_stats_ready(struct control *c);
/* Stops listening, closes every connection, removes the socket, then calls cb(arg). */
void control_close(struct control *c, void (*cb)(void *arg), void *arg);
void control_free(struct control **c); /* after the close callback; NULL-safe */

#endif
