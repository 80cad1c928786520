/*
 * cmd_serve: `veto serve -c FILE`, the resolver daemon.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <uv.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "http.h"
#include "http_metrics.h"
#include "log.h"
#include "policy.h"
#include "privdrop.h"
#include "sdnotify.h"
#include "server.h"
#include "web.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: veto serve [-c FILE] [--user USER]\n"
		"\n"
		"runs the DNS resolver: listens on server.listen (UDP and TCP), applies the policy,\n"
		"forwards to upstream.servers, caches, and writes the query log.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  configuration file (default " CMD_DEFAULT_CONFIG_HELP ")\n"
		"  -u, --user USER    started as root: the user to run as once the sockets are\n"
		"                     bound (default server.user, else 'veto'; root = stay root)\n"
		"  -h, --help         show this help\n"
		"\n"
		"started as root, veto binds its sockets, then runs as USER with no capability,\n"
		"and refuses to start when there is no such user.\n"
		"\n"
		"signals: SIGHUP reloads the configuration and reopens the query log;\n"
		"SIGTERM and SIGINT stop after the queries in flight are answered.\n"
		"exit codes: 0 stopped by a signal, 1 runtime error (e.g. an address that cannot be\n"
		"bound), 2 bad usage or configuration.\n");
}

static void
on_walk_report(uv_handle_t *h, void *arg)
{
	(void)arg;
	log_error("internal: handle of type '%s' still open at exit",
		  uv_handle_type_name(uv_handle_get_type(h)));
}

/* SIGHUP reloaded the policy: the listener's users and tokens follow (loop thread). */
static void
on_policy_reloaded(void *arg, const struct policy *policy)
{
	http_reload(arg, policy_config(policy));
}

/*
 * The HTTP listener's routes: /metrics, then the web console's pages. Started after the
 * privilege drop (its threads inherit nothing); its sockets were bound before it.
 */
#define SERVE_HTTP_ROUTES 64

static int
start_http(struct http_server *http, struct metrics_feed *feed, struct web *web)
{
	struct http_route routes[SERVE_HTTP_ROUTES];
	size_t n = 0, nweb;

	routes[n++] = (struct http_route){"/metrics", HTTP_ROLE_READ, false, http_metrics_page, feed};
	/* the web console's routes are appended here (at most SERVE_HTTP_ROUTES - n) */
	const struct http_route *pages = web_routes(web, &nweb);
	_Static_assert(WEB_ROUTES_MAX < SERVE_HTTP_ROUTES, "SERVE_HTTP_ROUTES");
	memcpy(routes + n, pages, nweb * sizeof(*pages));
	n += nweb;
	return http_start(http, routes, n);
}

static int
run(const char *path, const char *user)
{
	struct diag diag;
	struct policy *policy = NULL;
	struct server *srv = NULL;
	struct http_server *http = NULL;
	struct metrics_feed *feed = NULL;
	struct web *web = NULL;
	uv_loop_t loop;
	int rc = CMD_EXIT_OK;
	int err;

	/* A configuration that is not valid is reported like veto check does; once it is, its
	 * warnings and the skipped lines of the lists (bounded per file) are log lines. */
	diag_init(&diag);
	err = policy_load(path, &diag, &policy);
	if (err != 0) {
		diag_print(&diag, stderr, DIAG_WARNING);
		diag_clear(&diag);
		fprintf(stderr, "%s: configuration not valid: not started\n", path);
		return CMD_EXIT_USAGE;
	}
	log_diagnostics(&diag);
	diag_clear(&diag);

	/* root: files are created as server.user from here on; the ids follow once bound */
	struct privdrop pd;
	err = privdrop_begin(policy_config(policy), user, &pd);
	if (err != 0) {
		fprintf(stderr, "%s: not started\n", path);
		policy_unref(&policy);
		return err == -ENOENT || err == -EPERM ? CMD_EXIT_USAGE : CMD_EXIT_RUNTIME;
	}

	/* a client closing its TCP connection must not kill the daemon */
	signal(SIGPIPE, SIG_IGN);
	err = uv_loop_init(&loop);
	if (err != 0) {
		log_error("cannot start the event loop: %s", uv_strerror(err));
		policy_unref(&policy);
		return CMD_EXIT_RUNTIME;
	}
	err = server_new(&loop, policy, &srv);
	if (err != 0) {
		log_error("cannot start: %s", uv_strerror(err));
		policy_unref(&policy);
		uv_loop_close(&loop);
		return CMD_EXIT_RUNTIME;
	}
	err = server_start(srv);
	if (err == 0)
		err = server_watch_signals(srv);
	if (err == 0) /* bound as root, like the DNS sockets (a port below 1024 needs it) */
		err = http_new(policy_config(server_policy(srv)), &http);
	if (err == 0)
		err = privdrop_end(&pd);
	if (err == 0 && http != NULL) {
		const struct config *cfg = policy_config(server_policy(srv));
		struct web_options wo = {.config_path = path,
		                         .database = cfg->log.database,
		                         .shared = cfg->store.postgresql != NULL,
		                         .state_dir = cfg->state_dir};
		err = metrics_feed_new(&loop, srv, &feed);
		if (err == 0)
			err = web_new(&wo, &web);
		if (err == 0)
			err = start_http(http, feed, web);
		if (err == 0)
			server_on_reload(srv, on_policy_reloaded, http);
	}
	if (err == 0)
		sdnotify_ready("serving");
	if (err != 0) {
		rc = CMD_EXIT_RUNTIME;
		server_stop(srv, NULL, NULL);
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	/* the HTTP threads first (a handler waiting on the feed is woken), then the feed */
	server_on_reload(srv, NULL, NULL);
	if (feed != NULL) {
		metrics_feed_close(feed);
		http_free(&http);
		uv_run(&loop, UV_RUN_DEFAULT);
	}
	http_free(&http);
	web_free(&web); /* after the listener: its handlers used it */
	server_free(&srv);
	err = uv_loop_close(&loop);
	if (err != 0) {
		uv_walk(&loop, on_walk_report, NULL);
		rc = CMD_EXIT_RUNTIME;
	}
	return rc;
}

int
cmd_serve(int argc, char **argv)
{
	const char *path = cmd_default_config();
	const char *user = NULL;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "veto serve: option '%s' needs a file\n", a);
				return CMD_EXIT_USAGE;
			}
			path = argv[++i];
			continue;
		}
		if (strncmp(a, "--config=", 9) == 0) {
			path = a + 9;
			continue;
		}
		if (strcmp(a, "-u") == 0 || strcmp(a, "--user") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "veto serve: option '%s' needs a user\n", a);
				return CMD_EXIT_USAGE;
			}
			user = argv[++i];
			continue;
		}
		if (strncmp(a, "--user=", 7) == 0) {
			user = a + 7;
			continue;
		}
		fprintf(stderr, "veto serve: unknown argument '%s'\n\n", a);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	/* no_new_privs before the first thread starts: it is a per-thread flag that threads
	 * inherit, and the query log writer and libuv's pool start before the privilege drop
	 * (privdrop.c sets it again). The daemon never executes a program. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		fprintf(stderr, "veto serve: cannot set no_new_privs: %s\n", strerror(errno));
	return run(path, user);
}
