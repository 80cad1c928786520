/*
 * server: the loop owner. Listener setup, signals, reload by policy swap, graceful shutdown.
 */
#include "server.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "check.h"
#include "config.h"
#include "control.h"
#include "metrics.h"
#include "diag.h"
#include "fileio.h"
#include "log.h"
#include "sdnotify.h"
#include "server_int.h"
#include "worker.h"

struct reload_job {
	uv_work_t req;
	struct server *srv;
	char *path;		/* owned */
	struct diag diag;
	struct policy *policy;	/* the result, one reference */
	int status;
	server_reload_cb cb;
	void *arg;
};

#define SERVER_MMAP_THRESHOLD (128 * 1024) /* glibc's initial value, kept fixed */

static void begin_close(struct server *s);

char *
server_addr_text(const struct sockaddr *sa)
{
	char ip[INET6_ADDRSTRLEN];
	char buf[INET6_ADDRSTRLEN + 16];

	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
		snprintf(buf, sizeof(buf), "[%s]:%u", ip, ntohs(in6->sin6_port));
	} else if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
		snprintf(buf, sizeof(buf), "%s:%u", ip, ntohs(in->sin_port));
	} else {
		snprintf(buf, sizeof(buf), "(family %d)", sa->sa_family);
	}
	return strdup(buf);
}

void *
server_listener_new(struct server *s, const struct sockaddr *sa, size_t size)
{
	REQUIRE(size >= sizeof(struct server_listener));
	struct server_listener *l = calloc(1, size);
	if (l == NULL)
		return NULL;
	l->name = server_addr_text(sa);
	if (l->name == NULL) {
		free(l);
		return NULL;
	}
	l->srv = s;
	return l;
}

void
server_listener_add(struct server_listener **head, struct server_listener *l)
{
	l->next = *head;
	*head = l;
	l->srv->nobjects++;
}

void
server_listener_discard(struct server_listener *l)
{
	free(l->name);
	free(l);
}

void
server_listener_closed(struct server_listener **head, struct server_listener *l)
{
	struct server *s = l->srv;

	for (struct server_listener **pp = head; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	}
	server_listener_discard(l);
	server_object_closed(s);
}

/* Frees the loop-owned scratch buffers and the server itself: the last step of server_free,
 * and of server_new when it fails. */
static void
free_server_memory(struct server *s)
{
	udp_batch_free(&s->batch);
	limits_destroy(s);
	free(s->applied.listen);
	free(s->applied.state_dir);
	free(s->reload_problems);
	free(s->udp_rbuf);
	free(s->tcp_rbuf);
	free(s->reply);
	free(s->answer_wire);
	free(s);
}

/* Device identity, at start or when a reload adds a devices section (it opens the saved
 * device state on the loop: a short pause, once). Not fatal: without it, clients are
 * identified by their address only. */
/* Device events go to the query store, through whichever query log is current. */
static void
on_device_event(void *arg, const struct identity_event *ev)
{
	struct server *s = arg;

	metrics_count_event(s, ev->kind);
	if (s->qlog != NULL)
		querylog_submit_event(s->qlog, ev);
}

static int
on_control_stats(void *arg, char *buf, size_t size)
{
	struct metrics m;

	metrics_snapshot(arg, &m);
	return metrics_json(&m, buf, size);
}

static void
on_stats_fresh(void *arg)
{
	struct server *s = arg;
	if (s->control != NULL)
		control_stats_ready(s->control);
}

/* `stats`: the other workers are asked for their counters; the reply goes once they answered
 * (control_stats_ready). */
static void
on_control_stats_ask(void *arg)
{
	workers_refresh(arg, on_stats_fresh, arg);
}

void
server_refresh_counters(struct server *s, void (*cb)(void *arg), void *arg)
{
	workers_refresh(s, cb, arg);
}

static void server_reload_lists(void *arg, const char *why);

/* The control channel (control.h), state_dir/control.sock: `veto devices forget|pin|unpin`,
 * `veto health`, `veto lists` and `veto stats`. Opened at start whenever state_dir is set
 * (made when missing), or at the first reload that sets it. Not fatal: without it `veto
 * devices` edits the saved state and the other commands say that no daemon answers. */
static void
open_control(struct server *s)
{
	const char *dir = policy_config(s->policy)->state_dir;
	int err;

	if (s->control != NULL || dir == NULL)
		return;
	if ((err = fileio_mkdir_p(dir, 0750)) != 0) {
		log_warning("control: %s: cannot create: %s: no control channel", dir,
			    strerror(-err));
		return;
	}
	if (control_open(s->loop, s->devices, dir, on_control_stats, s, &s->control) != 0)
		return;
	s->nobjects++;
	if (s->lists != NULL)
		control_set_lists(s->control, s->lists);
	control_set_policy(s->control, server_policy_text, s);
	control_set_stats_ask(s->control, on_control_stats_ask, s);
}

/* List downloads and watchers. Not fatal. */
static void
start_lists(struct server *s)
{
	int err = updater_new(s->loop, s->policy, server_reload_lists, s, &s->lists);
	if (err != 0) {
		log_error("lists: cannot start downloads and watchers: %s", uv_strerror(err));
		s->lists = NULL;
		return;
	}
	s->nobjects++;
	if (s->control != NULL)
		control_set_lists(s->control, s->lists);
}

static void
start_devices(struct server *s, const char *when)
{
	int err = devices_new(s->loop, s->policy, &s->devices);

	if (err != 0) {
		log_error("%sdevices: cannot start: %s", when, uv_strerror(err));
		s->devices = NULL;
		return;
	}
	s->nobjects++;
	devices_set_event_cb(s->devices, on_device_event, s);
	if (s->devshare != NULL)
		devices_share_attach(s->devshare, s->devices);
	const char *dir = policy_config(s->policy)->state_dir;
	free(s->applied.state_dir);
	s->applied.state_dir = dir != NULL ? strdup(dir) : NULL; /* NULL on ENOMEM: no warning */
	if (s->control != NULL)
		control_set_devices(s->control, s->devices);
	if (when[0] != '\0')
		log_info("%sdevices: started", when);
}

/* What every loop has: scratch buffers, limits, the cache. */
static int
server_alloc(uv_loop_t *loop, const struct config *cfg, struct server **out)
{
	struct server *s = calloc(1, sizeof(*s));
	int err = -ENOMEM;

	if (s == NULL)
		return -ENOMEM;
	/* A policy's big tables (name slots, arenas, list file buffers) are malloc'd in a pool
	 * thread at every reload and freed at the next. glibc's sliding mmap threshold would move
	 * them into the heap after the first free, where freed pages stay resident: RSS would keep
	 * two policies after each reload. A fixed threshold keeps every large block an mmap that
	 * free() returns (docs/PERFORMANCE.md, list reload memory). */
	mallopt(M_MMAP_THRESHOLD, SERVER_MMAP_THRESHOLD);
	s->loop = loop;
	s->started_ms = uv_now(loop);
	server_note_reload(s, 1, NULL);
	s->policy_ms = s->started_ms;
	s->drain_ms = SERVER_DRAIN_MS;
	query_pool_init(&s->pool, SERVER_MAX_QUERIES);
	s->udp_rbuf = malloc((size_t)UDP_MMSG_CHUNKS * UDP_CHUNK_SIZE);
	s->tcp_rbuf = malloc(TCP_READ_SIZE);
	s->reply = malloc(2 + SERVER_REPLY_CAP);
	s->answer_wire = malloc(DNSMSG_MAX_LEN);
	s->applied.cache_entries = cfg->cache.entries;
	s->applied.cache_min_ttl = cfg->cache.min_ttl;
	s->applied.cache_max_ttl = cfg->cache.max_ttl;
	s->applied.nlisten = cfg->server.nlisten;
	if (cfg->server.nlisten > 0) {
		s->applied.listen = malloc(cfg->server.nlisten * sizeof(*s->applied.listen));
		if (s->applied.listen == NULL)
			goto cleanup;
		memcpy(s->applied.listen, cfg->server.listen,
		       cfg->server.nlisten * sizeof(*s->applied.listen));
	}
	if (s->udp_rbuf == NULL || s->tcp_rbuf == NULL || s->reply == NULL ||
	    s->answer_wire == NULL || udp_batch_new(s->udp_rbuf, &s->batch) != 0 ||
	    limits_init(s) != 0)
		goto cleanup;
	if (cfg->cache.entries > 0) {
		err = cache_new(cfg->cache.entries, cfg->cache.min_ttl, cfg->cache.max_ttl,
				&s->cache);
		if (err != 0) {
			log_error("cache: cannot allocate %" PRIu32 " entries: %s",
				  cfg->cache.entries, uv_strerror(err));
			goto cleanup;
		}
		cache_configure(s->cache, cfg->cache.serve_stale_s, cfg->cache.prefetch);
	}
	s->nworkers = worker_count(cfg);
	s->reuseport = s->nworkers > 1;
	s->udp_shared = s->nworkers > 1 && cfg->server.udp_sockets == CONFIG_UDP_SHARED;
	*out = s;
	return 0;

cleanup:
	free_server_memory(s);
	return err;
}

int
server_new(uv_loop_t *loop, struct policy *policy, struct server **out)
{
	const struct config *cfg = policy_config(policy);
	struct server *s = NULL;
	int err = server_alloc(loop, cfg, &s);

	if (err != 0)
		return err;
	err = querylog_new(cfg, &s->qlog);
	if (err != 0)
		goto cleanup;
	querylog_set_producers(s->qlog, s->nworkers);
	/* last: from here on there are handles on the loop */
	err = upstream_new(loop, cfg, &s->upstream);
	if (err != 0)
		goto cleanup;
	s->nobjects++;
	s->policy = policy;
	if (s->nworkers > 1) {
		/* made whatever devices: says, so that a reload can start the table */
		err = devices_share_new(loop, s->nworkers - 1, &s->devshare);
		if (err == 0)
			s->nobjects++;
		else
			log_error("devices: cannot share the device table with the other workers: "
				  "%s: they identify clients by address only", uv_strerror(err));
	}
	start_lists(s);
	open_control(s);
	if (cfg->devices.enabled)
		start_devices(s, "");
	*out = s;
	return 0;

cleanup:
	if (s->qlog != NULL)
		querylog_free(&s->qlog);
	if (s->cache != NULL)
		cache_free(&s->cache);
	free_server_memory(s);
	return err;
}

int
server_new_worker(uv_loop_t *loop, struct policy *policy, struct server *main_srv,
		  struct server **out)
{
	const struct config *cfg = policy_config(policy);
	struct server *s = NULL;
	int err = server_alloc(loop, cfg, &s);

	if (err != 0)
		return err;
	s->nworkers = main_srv->nworkers; /* as read at start, whatever cfg says now */
	s->reuseport = s->nworkers > 1;
	s->udp_shared = main_srv->udp_shared;
	s->main_srv = main_srv;
	s->qlog = main_srv->qlog; /* shared: the main server frees it, after this one stopped */
	err = upstream_new(loop, cfg, &s->upstream);
	if (err != 0) {
		if (s->cache != NULL)
			cache_free(&s->cache);
		free_server_memory(s);
		return err;
	}
	s->nobjects++;
	s->policy = policy;
	*out = s;
	return 0;
}

int
server_reuseport(struct server *s, uv_handle_t *h, const char *name)
{
	uv_os_fd_t fd;
	int on = 1;

	if (!s->reuseport)
		return 0;
	int err = uv_fileno(h, &fd);
	if (err == 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
		err = -errno;
	if (err != 0)
		log_error("%s: SO_REUSEPORT: %s", name, uv_strerror(err));
	return err;
}

int
server_start(struct server *s)
{
	const struct config *cfg = policy_config(s->policy);

	REQUIRE(s->state == SERVER_NEW);
	s->state = SERVER_RUNNING;
	if (cfg->server.nlisten == 0) {
		log_error("%s: server.listen: no address to listen on", cfg->path);
		return -EINVAL;
	}
	limits_start(s);
	stale_start(s);
	udp_flush_start(s);
	for (size_t i = 0; i < cfg->server.nlisten; i++) {
		int err = udp_listener_open(s, &cfg->server.listen[i]);
		if (err == 0)
			err = tcp_listener_open(s, &cfg->server.listen[i]);
		if (err != 0)
			return err;
	}
	if (s->self != NULL)
		return 0;
	int err = workers_start(s);
	if (err != 0)
		return err;
	log_info("serving: %zu groups, %zu lists, %zu names, cache %" PRIu32 " entries%s, "
		 "%u worker%s",
		 cfg->ngroups, cfg->nlists, policy_names(s->policy), cfg->cache.entries,
		 s->nworkers > 1 ? " per worker" : "", s->nworkers, s->nworkers == 1 ? "" : "s");
	return 0;
}

void
server_handle_closed(uv_handle_t *handle)
{
	server_object_closed(handle->data);
}

static void
on_signal(uv_signal_t *sig, int signum)
{
	struct server *s = sig->data;

	if (signum == SIGHUP) {
		log_info("reload: SIGHUP received");
		int err = server_reload(s, NULL, NULL);
		if (err == -EBUSY)
			log_info("reload: already running, will run again when it ends");
		return;
	}
	if (s->state == SERVER_DRAINING)
		log_info("stopping: %s received again: not waiting for queries in flight",
		         signum == SIGINT ? "SIGINT" : "SIGTERM");
	else if (s->state == SERVER_CLOSING)
		log_info("stopping: %s received again: still writing the log and the device state",
		         signum == SIGINT ? "SIGINT" : "SIGTERM");
	else
		log_info("stopping: %s received", signum == SIGINT ? "SIGINT" : "SIGTERM");
	server_stop(s, NULL, NULL);
}

int
server_watch_signals(struct server *s)
{
	uv_signal_t *sigs[] = { &s->sig_hup, &s->sig_term, &s->sig_int };
	int nums[] = { SIGHUP, SIGTERM, SIGINT };

	if (s->signals || s->state >= SERVER_DRAINING)
		return -EALREADY;
	/* not counted in nobjects: they stay open until finalize() has flushed the log, so a
	 * second SIGTERM or SIGINT while stopping is handled, never the default (exit at once) */
	for (size_t i = 0; i < 3; i++) {
		uv_signal_init(s->loop, sigs[i]);
		sigs[i]->data = s;
	}
	s->signals = true;
	for (size_t i = 0; i < 3; i++) {
		int err = uv_signal_start(sigs[i], on_signal, nums[i]);
		if (err != 0) {
			log_error("cannot watch signal %d: %s", nums[i], uv_strerror(err));
			return err;
		}
	}
	return 0;
}

/*
 * Reload.
 */
static void
on_reload_work(uv_work_t *req)
{
	struct reload_job *job = req->data;

	/* as veto check: list problems reported with the configuration's, in file order */
	job->status = policy_load(job->path, &job->diag, &job->policy);
}

static bool
addr_lists_equal(const struct config_addr *a, size_t na, const struct config_addr *b, size_t nb)
{
	if (na != nb)
		return false;
	for (size_t i = 0; i < na; i++) {
		if (a[i].len != b[i].len || memcmp(&a[i].ss, &b[i].ss, a[i].len) != 0)
			return false;
	}
	return true;
}

static bool
str_equal(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Settings that only take effect at start: compared with what is running (not with the
 * previous reload's file, so that putting a value back is not warned about, and a change kept
 * over two reloads is warned about each time). */
static void
warn_restart_needed(const struct server *s, const struct config *cur)
{
	if (s->applied.cache_entries != cur->cache.entries ||
	    s->applied.cache_min_ttl != cur->cache.min_ttl ||
	    s->applied.cache_max_ttl != cur->cache.max_ttl)
		log_warning("reload: %s: cache settings differ from the running ones: restart "
			    "needed to apply them",
			    cur->path);
	if (worker_count(cur) != s->nworkers)
		log_warning("reload: %s: server.workers differs from the running one (%u): restart "
			    "needed to apply it",
			    cur->path, s->nworkers);
	else if (s->nworkers > 1 &&
		 (cur->server.udp_sockets == CONFIG_UDP_SHARED) != s->udp_shared)
		log_warning("reload: %s: server.udp_sockets differs from the running one (%s): "
			    "restart needed to apply it",
			    cur->path, s->udp_shared ? "shared" : "per_worker");
	if (!addr_lists_equal(s->applied.listen, s->applied.nlisten, cur->server.listen,
			      cur->server.nlisten))
		log_warning("reload: %s: server.listen differs from the running one: restart "
			    "needed to apply it",
			    cur->path);
	if (s->devices != NULL && s->applied.state_dir != NULL &&
	    !str_equal(s->applied.state_dir, cur->state_dir))
		log_warning("reload: %s: state_dir differs from the running one (%s): restart "
			    "needed to apply it",
			    cur->path, s->applied.state_dir);
}

/* log.queries, log.file, log.database, log.retention_days. A query log made with log.queries
 * none has no writer: when logging is turned on it is replaced (on the loop: the ring is
 * allocated and the file opened here, once); queries finished from now on use the new one. */
static void
apply_log_settings(struct server *s, const struct config *cur)
{
	struct querylog *ql = NULL;
	int err = querylog_reconfigure(s->qlog, cur);

	if (err == -EAGAIN && s->nworkers > 1) {
		/* the other workers hold the log that has no writer: not replaced under them */
		log_warning("reload: %s: log.queries turned on: restart needed to apply it with "
			    "several workers",
			    cur->path);
		return;
	}
	if (err == -EAGAIN) {
		err = querylog_new(cur, &ql);
		if (err == 0) {
			querylog_free(&s->qlog); /* no writer, nothing buffered */
			s->qlog = ql;
			log_info("reload: query log started");
		}
	}
	if (err != 0)
		log_warning("reload: log settings not applied: %s", uv_strerror(err));
}

static void start_reload(struct server *s, server_reload_cb cb, void *arg);

void
server_swap_policy(struct server *s, struct policy *policy)
{
	const struct config *cur = policy_config(policy);

	/* serve_stale and prefetch apply at once; the entries stay (policy is decided
	 * before the cache on every query, so a name blocked now is never served) */
	if (s->cache != NULL)
		cache_configure(s->cache, cur->cache.serve_stale_s, cur->cache.prefetch);
	if (s->upstream != NULL) {
		int err = upstream_reconfigure(s->upstream, cur);
		if (err != 0)
			log_warning("reload: upstream servers not changed: %s", uv_strerror(err));
	}
	metrics_remap_groups(&s->counts, s->policy, policy);
	policy_unref(&s->policy);
	s->policy = policy;
	s->policy_ms = uv_now(s->loop);
}

/* The end of a reload: result 0 once every worker uses the new policy. s->reload stays set
 * until here, so that a stop waits for it and another reload queues behind it. */
static void
finish_reload(struct reload_job *job, int result)
{
	struct server *s = job->srv;

	if (result == 0) {
		const struct config *cur = policy_config(s->policy);
		log_info("reload: ok (%zu groups, %zu lists, %zu names)", cur->ngroups, cur->nlists,
			 policy_names(s->policy));
		if (s->on_reload != NULL)
			s->on_reload(s->on_reload_arg, s->policy);
		sdnotify_ready("serving (reloaded)");
	}
	s->reload = NULL;
	server_reload_cb cb = job->cb;
	void *arg = job->arg;
	diag_clear(&job->diag);
	free(job->path);
	free(job);
	if (cb != NULL)
		cb(arg, result);

	if (s->state >= SERVER_DRAINING) {
		if (s->state == SERVER_DRAINING)
			server_query_released(s); /* may be the last thing stop waited for */
		return;
	}
	if (s->reload_again) {
		s->reload_again = false;
		start_reload(s, NULL, NULL);
	}
}

static void
on_workers_swapped(void *arg)
{
	finish_reload(arg, 0);
}

static void
on_reload_done(uv_work_t *req, int status)
{
	struct reload_job *job = req->data;
	struct server *s = job->srv;
	int result = job->status;

	if (status == UV_ECANCELED || s->state >= SERVER_DRAINING) {
		result = -ECANCELED;
		if (job->policy != NULL)
			policy_unref(&job->policy);
	} else if (result != 0) {
		server_note_reload(s, result, &job->diag);
		s->stats.reload_failures++;
		log_diagnostics(&job->diag);
		if (job->diag.nerrors == 0)
			log_error("%s: cannot load: %s", job->path, uv_strerror(result));
		log_error("reload: failed (%zu error%s): keeping the current policy",
			  job->diag.nerrors, job->diag.nerrors == 1 ? "" : "s");
		sdnotify_ready("reload failed: serving the previous policy (see the log)");
	} else {
		const struct config *cur = policy_config(job->policy);
		log_diagnostics(&job->diag);
		warn_restart_needed(s, cur);
		apply_log_settings(s, cur);
		server_swap_policy(s, job->policy);
		job->policy = NULL;
		s->stats.reloads++;
		server_note_reload(s, 0, &job->diag);
		if (s->devices != NULL)
			devices_reconfigure(s->devices, s->policy);
		else if (cur->devices.enabled)
			start_devices(s, "reload: ");
		if (s->lists != NULL)
			updater_reconfigure(s->lists, s->policy);
		open_control(s); /* a first state_dir */
		/* the same policy for every worker: "reload: ok" once they all use it, without
		 * waiting on this loop (each answers through an async) */
		workers_swap_policy(s, s->policy, on_workers_swapped, job);
		return;
	}
	finish_reload(job, result);
}

static void
start_reload(struct server *s, server_reload_cb cb, void *arg)
{
	const char *path = policy_config(s->policy)->path;
	struct reload_job *job = calloc(1, sizeof(*job));

	if (job == NULL || (job->path = strdup(path)) == NULL) {
		free(job);
		log_error("reload: out of memory");
		if (cb != NULL)
			cb(arg, -ENOMEM);
		return;
	}
	job->srv = s;
	job->cb = cb;
	job->arg = arg;
	job->req.data = job;
	diag_init(&job->diag);
	int err = uv_queue_work(s->loop, &job->req, on_reload_work, on_reload_done);
	if (err != 0) {
		log_error("reload: cannot start: %s", uv_strerror(err));
		free(job->path);
		free(job);
		if (cb != NULL)
			cb(arg, err);
		return;
	}
	s->reload = job;
	sdnotify_reloading(); /* READY=1 follows from on_reload_done, on the same thread */
}

/* A list changed (a new download, an edited list file): the policy is rebuilt the usual way;
 * the query log is not reopened (that is SIGHUP's job). */
static void
server_reload_lists(void *arg, const char *why)
{
	struct server *s = arg;
	if (s->state >= SERVER_DRAINING)
		return;
	log_info("reload: %s", why);
	if (s->reload != NULL) {
		s->reload_again = true;
		return;
	}
	start_reload(s, NULL, NULL);
}

int
server_reload(struct server *s, server_reload_cb cb, void *arg)
{
	if (s->state >= SERVER_DRAINING)
		return -ECANCELED;
	if (s->qlog != NULL)
		querylog_reopen(s->qlog);
	if (s->reload != NULL) {
		s->reload_again = true;
		return -EBUSY;
	}
	start_reload(s, cb, arg);
	return 0;
}

/*
 * Stop.
 */
static void
check_drained(struct server *s)
{
	if (s->state == SERVER_DRAINING && s->pool.used == 0 && s->nconns == 0 &&
	    s->reload == NULL)
		begin_close(s);
}

void
server_query_released(struct server *s)
{
	if (s->state == SERVER_DRAINING)
		check_drained(s);
}

void
server_conn_closed(struct server *s)
{
	if (s->state == SERVER_DRAINING)
		check_drained(s);
}

static void
on_drain_timeout(uv_timer_t *t)
{
	struct server *s = t->data;

	if (s->state != SERVER_DRAINING || s->drain_expired)
		return;
	s->drain_expired = true;
	if (s->pool.used > 0)
		log_warning("stopping: %zu queries still in flight: cancelling them",
			    s->pool.used);
	for (struct query *q = s->async; q != NULL; q = q->next)
		query_cancel(q);
	for (struct tcp_conn *c = s->conns; c != NULL; c = c->next)
		tcp_conn_close(c);
	check_drained(s);
}

void
server_stop(struct server *s, void (*done)(void *arg), void *arg)
{
	workers_stop(s); /* the other workers too (again: they stop waiting as well) */
	if (s->state == SERVER_DRAINING) {
		/* asked again: do not wait any longer */
		uv_timer_stop(&s->drain_timer);
		on_drain_timeout(&s->drain_timer);
		return;
	}
	if (s->state >= SERVER_DRAINING)
		return;
	s->stop_cb = done;
	s->stop_arg = arg;
	s->state = SERVER_DRAINING;
	if (s->self == NULL)
		sdnotify_stopping();
	for (struct server_listener *l = s->udp; l != NULL; l = l->next)
		udp_listener_stop((struct udp_listener *)l);
	for (struct server_listener *l = s->tcp; l != NULL; l = l->next)
		tcp_listener_close((struct tcp_listener *)l);
	for (struct tcp_conn *c = s->conns; c != NULL; c = c->next)
		tcp_conn_drain(c);
	if (s->reload != NULL)
		uv_cancel((uv_req_t *)&s->reload->req); /* fails if already running: then wait */
	uv_timer_init(s->loop, &s->drain_timer);
	s->drain_timer.data = s;
	s->drain_timer_init = true;
	s->nobjects++;
	uv_timer_start(&s->drain_timer, on_drain_timeout, s->drain_ms, 0);
	check_drained(s);
}

static void
finalize(struct server *s)
{
	struct server_stats all;
	const struct server_stats *st = &all;
	uint64_t qdropped = 0;

	s->state = SERVER_STOPPED;
	limits_report(s, true);
	if (s->self != NULL) { /* a worker: the main server logs the totals and frees the log */
		s->qlog = NULL;
		if (s->cache != NULL)
			cache_free(&s->cache);
		if (s->stop_cb != NULL)
			s->stop_cb(s->stop_arg);
		return;
	}
	server_get_stats(s, &all); /* every worker has stopped: their last counts */
	if (s->qlog != NULL) {
		qdropped = querylog_dropped(s->qlog);
		querylog_free(&s->qlog);
	}
	if (s->cache != NULL)
		cache_free(&s->cache);
	log_info("stopped: %" PRIu64 " queries (udp %" PRIu64 ", tcp %" PRIu64 "): forwarded %"
		 PRIu64 ", cache %" PRIu64 ", blocked %" PRIu64 " (cname %" PRIu64 "), refused %"
		 PRIu64 ", errors %" PRIu64 ", servfail %" PRIu64 ", dropped %" PRIu64
		 ", send errors %" PRIu64 "; query log records dropped %" PRIu64,
		 st->udp_queries + st->tcp_queries, st->udp_queries, st->tcp_queries, st->forwarded,
		 st->cache_hits, st->blocked, st->cloaked, st->refused, st->errors, st->servfail,
		 st->dropped, st->send_errors, qdropped);
	if (s->udp_shared)
		log_info("stopped: the main loop asked another worker for help with UDP %" PRIu64
			 " times", st->udp_help_requests);
	if (s->signals) {
		/* last: the log is flushed and the device state saved. Closing the watchers gives
		 * the signals back their default action (exit at once, with the signal's status):
		 * from here on the process only exits, so they are ignored instead */
		uv_close((uv_handle_t *)&s->sig_hup, NULL);
		uv_close((uv_handle_t *)&s->sig_term, NULL);
		uv_close((uv_handle_t *)&s->sig_int, NULL);
		signal(SIGHUP, SIG_IGN);
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		s->signals = false;
	}
	if (s->stop_cb != NULL)
		s->stop_cb(s->stop_arg);
}

void
server_object_closed(struct server *s)
{
	INSIST(s->nobjects > 0);
	if (--s->nobjects == 0 && s->state == SERVER_CLOSING)
		finalize(s);
}

static void
on_upstream_closed(void *arg)
{
	server_object_closed(arg);
}

static void
on_devices_closed(void *arg)
{
	server_object_closed(arg);
}

/* The device table closes (and is saved) once no worker can queue an observation any more:
 * the other workers answer queries until their own drain ends, after the main server's. Their
 * last observations are replayed by devices_share_close; the share's async keeps replaying
 * meanwhile. Each close is counted in nobjects since the start. */
static void
close_devices(struct server *s)
{
	if (s->devices_closing || !workers_ended(s))
		return;
	s->devices_closing = true;
	if (s->devshare != NULL)
		devices_share_close(s->devshare, on_devices_closed, s);
	if (s->devices != NULL)
		devices_close(s->devices, on_devices_closed, s);
}

static void
begin_close(struct server *s)
{
	s->state = SERVER_CLOSING;
	s->nobjects++; /* held while closing, so that nothing finalizes in between */
	workers_close(s);
	if (s->drain_timer_init) {
		uv_timer_stop(&s->drain_timer);
		uv_close((uv_handle_t *)&s->drain_timer, server_handle_closed);
	}
	limits_close(s);
	stale_close(s);
	udp_flush_close(s);
	for (struct server_listener *l = s->udp; l != NULL; l = l->next)
		udp_listener_close((struct udp_listener *)l);
	for (struct server_listener *l = s->tcp; l != NULL; l = l->next)
		tcp_listener_close((struct tcp_listener *)l);
	if (s->upstream != NULL) {
		struct upstream *u = s->upstream;
		s->upstream = NULL;
		upstream_close(u, on_upstream_closed, s);
	}
	if (s->control != NULL)
		control_close(s->control, on_devices_closed, s);
	if (s->lists != NULL)
		updater_close(s->lists, on_devices_closed, s);
	close_devices(s);
	server_object_closed(s);
}

void
server_worker_ended(struct server *s)
{
	if (s->state == SERVER_CLOSING)
		close_devices(s);
}

void
server_set_drain_timeout(struct server *s, uint64_t ms)
{
	s->drain_ms = ms;
}

void
server_on_reload(struct server *s, server_policy_cb cb, void *arg)
{
	s->on_reload = cb;
	s->on_reload_arg = arg;
}

void
server_get_stats(const struct server *s, struct server_stats *st)
{
	*st = s->stats;
	workers_add_stats(s, st);
}

const struct policy *
server_policy(const struct server *s)
{
	return s->policy;
}

void
server_free(struct server **sp)
{
	struct server *s = *sp;

	if (s == NULL)
		return;
	REQUIRE(s->state == SERVER_STOPPED);
	workers_free(s);
	query_pool_destroy(&s->pool);
	control_free(&s->control);
	updater_free(&s->lists);
	devices_free(&s->devices);
	devices_share_free(&s->devshare); /* every worker has stopped */
	if (s->policy != NULL)
		policy_unref(&s->policy);
	free_server_memory(s);
	*sp = NULL;
}
