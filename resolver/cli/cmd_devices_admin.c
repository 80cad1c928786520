/*
 * cmd_devices_admin: `veto devices forget|pin|unpin KEY`. Asks the running daemon through its
 * control channel (resolver/dns/control.h); when no daemon listens there (no socket, or
 * connection refused), edits the saved state (devices.db) directly and records the event in
 * the query store when log.database is set. The output says which path was taken.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "cmd.h"
#include "control_client.h"
#include "cmd_devices_int.h"
#include "config.h"
#include "control.h"
#include "devices_admin.h"
#include "devices_store.h"
#include "diag.h"
#include "fileio.h"
#include "logdb.h"
#include "text.h"

#define REPLY_TIMEOUT_MS 10000

/* ---- the saved state ---- */

static void
record_event(const struct config *cfg, const char *kind, const struct devices_record *r,
             const char *old_group, const char *new_group, const char *evidence)
{
	char mac[MAC_STRLEN];
	struct timespec ts;
	struct logdb *db = NULL;

	if (cfg->log.database == NULL) {
		printf("event not recorded: log.database is not set\n");
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	struct logdb_options opt = {.path = cfg->log.database};
	struct logdb_event ev = {
	        .ts_ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000,
	        .device = identify_display_name(r),
	        .mac = r->has_mac ? mac_format(&r->mac, mac) : NULL,
	        .kind = kind,
	        .old_group = old_group != NULL && old_group[0] ? old_group : NULL,
	        .new_group = new_group != NULL && new_group[0] ? new_group : NULL,
	        .vendor = r->vendor[0] ? r->vendor : NULL,
	        .evidence = evidence,
	};
	if (logdb_new(&opt, &db) != 0 || !logdb_is_open(db) || logdb_add_event(db, &ev) != 0 ||
	    logdb_commit(db) != 0)
		printf("event not recorded: %s: cannot write the query store\n", cfg->log.database);
	else
		printf("event recorded in %s\n", cfg->log.database);
	logdb_free(&db);
}

static int
edit_saved(const struct config *cfg, const struct devices_admin_req *req)
{
	struct devices_store *st = NULL;
	struct devices_record r, before;
	char path[4096], err[4608], key[DEVICES_KEY_MAX], evidence[IDENTITY_EVIDENCE_MAX];
	char safe[DEVICES_ADMIN_TARGET_MAX];
	const char *cmd = devices_admin_op_name(req->op);
	int code = CMD_EXIT_OK, rc;

	text_safe(safe, sizeof(safe), req->target);
	if (devices_store_path(cfg, path, sizeof(path)) != 0) {
		fprintf(stderr, "veto devices %s: state_dir is too long\n", cmd);
		return CMD_EXIT_RUNTIME;
	}
	if (req->op == DEVICES_ADMIN_PIN && cfg->state_dir != NULL &&
	    (rc = fileio_mkdir_p(cfg->state_dir, 0750)) != 0) {
		fprintf(stderr, "veto devices %s: %s: cannot create: %s\n", cmd, cfg->state_dir,
		        strerror(-rc));
		return CMD_EXIT_RUNTIME;
	}
	if (req->op != DEVICES_ADMIN_PIN && access(path, F_OK) != 0) {
		fprintf(stderr, "veto devices %s: no device '%s': %s does not exist\n", cmd, safe,
		        path);
		return CMD_EXIT_RUNTIME;
	}
	err[0] = '\0';
	rc = devices_store_open(path, false, err, sizeof(err), &st);
	if (rc < 0) {
		fprintf(stderr, "veto devices %s: %s\n", cmd, err);
		return CMD_EXIT_RUNTIME;
	}
	if (rc == 1)
		fprintf(stderr, "veto devices %s: %s\n", cmd, err);
	printf("no running daemon: editing the saved state %s\n", path);
	rc = cmd_devices_find(cfg, st, req->target, key, &r);
	if (rc == -EINVAL) {
		fprintf(stderr,
		        "veto devices %s: '%s' is not a MAC, an address, a device key or an "
		        "inventory name\n",
		        cmd, safe);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (rc == -ENOENT && req->op == DEVICES_ADMIN_PIN) {
		devices_admin_new_record(key, (int64_t)time(NULL), &r);
		rc = 0;
	}
	if (rc == -ENOENT) {
		fprintf(stderr, "veto devices %s: no device '%s' (%s) in %s\n", cmd, safe, key,
		        path);
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	if (rc != 0) {
		fprintf(stderr, "veto devices %s: %s: cannot read the device state\n", cmd, path);
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	before = r;
	if (req->op == DEVICES_ADMIN_FORGET) {
		devices_admin_forget_evidence(req, &r, evidence, sizeof(evidence));
		rc = devices_store_delete(st, (const char(*)[DEVICES_KEY_MAX])key, 1);
	} else {
		devices_admin_apply(cfg, req, &r, evidence, sizeof(evidence));
		if (r.pin_group[0] != '\0')
			text_copy(r.group, sizeof(r.group), r.pin_group);
		rc = devices_store_save(st, &r, 1);
	}
	if (rc != 0) {
		fprintf(stderr, "veto devices %s: %s: cannot write the device state\n", cmd, path);
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	if (req->op == DEVICES_ADMIN_FORGET)
		printf("forgot %s (%s)\n", key, evidence);
	else
		printf("%s %s (%s): vendor %s, group %s from the next start\n",
		       req->op == DEVICES_ADMIN_PIN ? "pinned" : "unpinned", key, evidence,
		       r.vendor[0] ? r.vendor : "-",
		       r.pin_group[0] ? r.pin_group : "by the configuration");
	record_event(cfg, cmd, &r, before.group, req->op == DEVICES_ADMIN_FORGET ? NULL : r.group,
	             evidence);
cleanup:
	devices_store_close(&st);
	return code;
}

/* ---- the command ---- */

static void
usage(FILE *out, const char *verb)
{
	fprintf(out,
	        "usage: veto devices %s KEY%s [-c FILE]\n"
	        "\n"
	        "KEY: a MAC (any common spelling), an address, a device key (mac:..., ip:...) or "
	        "an\n"
	        "inventory name. Acts on the running daemon (state_dir/control.sock) from the\n"
	        "device's next query on; without one, edits the saved state "
	        "(state_dir/devices.db).\n"
	        "See 'veto devices --help'.\n",
	        verb, strcmp(verb, "pin") == 0 ? " [--vendor V] [--group G]" : "");
}

int
cmd_devices_admin(int argc, char **argv)
{
	static const struct option opts[] = {
	        {"config", required_argument, NULL, 'c'},
	        {"vendor", required_argument, NULL, 'v'},
	        {"group", required_argument, NULL, 'g'},
	        {"help", no_argument, NULL, 'h'},
	        {NULL, 0, NULL, 0},
	};
	const char *config = cmd_default_config(), *verb = argv[0];
	struct devices_admin_req req;
	struct config *cfg = NULL;
	struct diag diag;
	char sock[256], line[CONTROL_LINE_MAX + 2], reply[CONTROL_LINE_MAX + 2], err[256];
	int ch, code = CMD_EXIT_OK;

	memset(&req, 0, sizeof(req));
	req.op = strcmp(verb, "forget") == 0 ? DEVICES_ADMIN_FORGET
	         : strcmp(verb, "pin") == 0  ? DEVICES_ADMIN_PIN
	                                     : DEVICES_ADMIN_UNPIN;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'v':
		case 'g':
			if (req.op != DEVICES_ADMIN_PIN)
				goto bad_option;
			if (strlen(optarg) >=
			    (ch == 'v' ? sizeof(req.vendor) : sizeof(req.group))) {
				fprintf(stderr,
				        "veto devices pin: --%s: too long (at most %zu "
				        "characters)\n",
				        ch == 'v' ? "vendor" : "group",
				        (ch == 'v' ? sizeof(req.vendor) : sizeof(req.group)) - 1);
				return CMD_EXIT_USAGE;
			}
			text_copy(ch == 'v' ? req.vendor : req.group,
			          ch == 'v' ? sizeof(req.vendor) : sizeof(req.group), optarg);
			break;
		case 'h':
			usage(stdout, verb);
			return CMD_EXIT_OK;
		default:
			goto bad_option;
		}
	}
	if (optind + 1 != argc) {
		fprintf(stderr, "veto devices %s: expected one device (KEY)\n\n", verb);
		usage(stderr, verb);
		return CMD_EXIT_USAGE;
	}
	if (strlen(argv[optind]) >= sizeof(req.target)) {
		fprintf(stderr, "veto devices %s: KEY too long\n", verb);
		return CMD_EXIT_USAGE;
	}
	text_copy(req.target, sizeof(req.target), argv[optind]);
	req.uid = (uint32_t)getuid();
	diag_init(&diag);
	if (config_load(config, &diag, &cfg) != 0) {
		for (size_t i = 0; i < diag.n; i++)
			if (diag.v[i].level == DIAG_ERROR)
				fprintf(stderr, "%s\n", diag.v[i].text);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (devices_admin_check(cfg, &req, err, sizeof(err)) != 0) {
		fprintf(stderr, "veto devices %s: %s\n", verb, err);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (control_path(cfg->state_dir, sock, sizeof(sock)) != 0 ||
	    control_format(&req, line, sizeof(line)) != 0) {
		fprintf(stderr,
		        "veto devices %s: the control socket path or the request is too "
		        "long\n",
		        verb);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	int rc = control_ask(sock, line, reply, sizeof(reply), REPLY_TIMEOUT_MS);
	if (rc == -ENOENT || rc == -ECONNREFUSED) {
		code = edit_saved(cfg, &req);
		goto cleanup;
	}
	if (rc != 0) {
		fprintf(stderr, "veto devices %s: %s: %s (nothing changed)\n", verb, sock,
		        strerror(-rc));
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	if (strncmp(reply, "ok ", 3) == 0) {
		printf("running daemon (%s): %s\n", sock, reply + 3);
	} else {
		fprintf(stderr, "veto devices %s: running daemon (%s): %s\n", verb, sock, reply);
		code = CMD_EXIT_RUNTIME;
	}
cleanup:
	config_free(&cfg);
	diag_clear(&diag);
	return code;
bad_option:
	fprintf(stderr, "veto devices %s: unknown or incomplete option '%s'\n\n", verb,
	        argv[optind - 1]);
	usage(stderr, verb);
	return CMD_EXIT_USAGE;
}
