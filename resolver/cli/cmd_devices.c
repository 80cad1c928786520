/*
 * cmd_devices: `veto devices -c FILE [--json]`: every device the daemon knows, from its persisted
 * state (state_dir/devices.db, opened read-only, so it works while the daemon runs).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cmd.h"
#include "config.h"
#include "devices_store.h"
#include "json.h"
#include "text.h"
#include "diag.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: veto devices [-c FILE] [--json]\n"
		"\n"
		"Lists every device the daemon has seen, from its saved state (state_dir/devices.db):\n"
		"addresses, MAC (and whether it is randomised), hostname, vendor and the evidence for\n"
		"it, group of its last query, first and last seen. The state is saved every few\n"
		"seconds, so the newest queries may not show yet.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  configuration file (default " CMD_DEFAULT_CONFIG ")\n"
		"      --json         one JSON object per line\n"
		"  -h, --help         show this help\n"
		"\n"
		"exit codes: 0 ok, 1 runtime error, 2 bad usage or configuration\n");
}

/* "" is null, as in the saved state */
static void
json_str(FILE *out, const char *s)
{
	json_fput_str(out, s != NULL && s[0] != '\0' ? s : NULL);
}

/* JSON: "2026-11-22T03:58:22Z" (UTC); text (local: true): "2026-11-22 04:58:22" in local time,
 * as `veto log` and `veto report` print it. */
static void
time_text(int64_t t, bool local, char *buf, size_t size)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (t <= 0 || (local ? localtime_r(&tt, &tm) : gmtime_r(&tt, &tm)) == NULL) {
		snprintf(buf, size, "-");
		return;
	}
	strftime(buf, size, local ? "%Y-%m-%d %H:%M:%S" : "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int
print_json(void *arg, const struct devices_record *r)
{
	FILE *out = arg;
	char mac[MAC_STRLEN], ip[64], t1[32], t2[32];
	fputs("{\"key\":", out);
	json_str(out, r->key);
	fputs(",\"ips\":[", out);
	for (size_t i = 0; i < r->nips; i++) {
		identify_ip_text(&r->ips[i], ip, sizeof(ip));
		fprintf(out, "%s", i ? "," : "");
		json_str(out, ip);
	}
	fputs("],\"mac\":", out);
	json_str(out, r->has_mac ? mac_format(&r->mac, mac) : NULL);
	fprintf(out, ",\"randomised\":%s", r->has_mac ? (r->randomised ? "true" : "false") : "null");
	fputs(",\"hostname\":", out);
	json_str(out, r->hostname);
	fputs(",\"client_id\":", out);
	json_str(out, r->client_id);
	fputs(",\"vendor_class\":", out);
	json_str(out, r->vendor_class);
	fputs(",\"inventory\":", out);
	json_str(out, r->inventory);
	fputs(",\"manufacturer\":", out);
	json_str(out, r->manufacturer);
	fputs(",\"vendor\":", out);
	json_str(out, r->vendor);
	fputs(",\"vendor_source\":", out);
	json_str(out, identity_source_name(r->vendor_source));
	fputs(",\"observed\":[", out);
	for (size_t i = 0; i < r->nobs; i++) {
		const struct devices_obs *o = &r->obs[i];
		time_text(o->first, false, t1, sizeof(t1));
		time_text(o->last, false, t2, sizeof(t2));
		fprintf(out, "%s{\"vendor\":", i ? "," : "");
		json_str(out, o->vendor);
		fprintf(out, ",\"count\":%u,\"first_seen\":\"%s\",\"last_seen\":\"%s\",\"evidence\":",
			(unsigned)o->count, t1, t2);
		json_str(out, o->evidence);
		fputc('}', out);
	}
	time_text(r->first_seen, false, t1, sizeof(t1));
	time_text(r->last_seen, false, t2, sizeof(t2));
	fputs("],\"group\":", out);
	json_str(out, r->group);
	fprintf(out, ",\"first_seen\":\"%s\",\"last_seen\":\"%s\"}\n", t1, t2);
	return 0;
}

static const char *
dash(const char *s)
{
	return s == NULL || s[0] == '\0' ? "-" : s;
}

static int
print_text(void *arg, const struct devices_record *r)
{
	FILE *out = arg;
	char mac[MAC_STRLEN], ip[64], t1[32], t2[32], safe[IDENTITY_NAME_MAX];
	fprintf(out, "%s\n", r->key);
	fprintf(out, "  ips:        ");
	for (size_t i = 0; i < r->nips; i++) {
		identify_ip_text(&r->ips[i], ip, sizeof(ip));
		fprintf(out, "%s%s", i ? ", " : "", ip);
	}
	fprintf(out, "%s\n", r->nips ? "" : "-");
	fprintf(out, "  mac:        %s%s\n", r->has_mac ? mac_format(&r->mac, mac) : "-",
		r->has_mac && r->randomised ? " (randomised)" : "");
	fprintf(out, "  hostname:   %s\n", dash(text_safe(safe, sizeof(safe), r->hostname)));
	if (r->inventory[0] != '\0')
		fprintf(out, "  inventory:  %s\n", text_safe(safe, sizeof(safe), r->inventory));
	if (r->manufacturer[0] != '\0')
		fprintf(out, "  oui:        %s\n", text_safe(safe, sizeof(safe), r->manufacturer));
	fprintf(out, "  vendor:     %s", dash(text_safe(safe, sizeof(safe), r->vendor)));
	if (r->vendor_source != IDENTITY_SRC_NONE)
		fprintf(out, " (from %s)", identity_source_name(r->vendor_source));
	fputc('\n', out);
	for (size_t i = 0; i < r->nobs; i++) {
		const struct devices_obs *o = &r->obs[i];
		time_text(o->first, true, t1, sizeof(t1));
		time_text(o->last, true, t2, sizeof(t2));
		char ev[DEVICES_EVIDENCE_MAX];
		fprintf(out, "  observed:   %s x%u (%s .. %s), last '%s'\n",
			text_safe(safe, sizeof(safe), o->vendor), (unsigned)o->count, t1, t2,
			text_safe(ev, sizeof(ev), o->evidence));
	}
	time_text(r->first_seen, true, t1, sizeof(t1));
	time_text(r->last_seen, true, t2, sizeof(t2));
	fprintf(out, "  group:      %s\n  seen:       %s .. %s\n",
		dash(text_safe(safe, sizeof(safe), r->group)), t1, t2);
	return 0;
}

int
cmd_devices(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = CMD_DEFAULT_CONFIG;
	bool json = false;
	int ch, code = CMD_EXIT_OK;
	struct config *cfg = NULL;
	struct devices_store *st = NULL;
	struct diag diag;
	char path[4096], err[4608];

	diag_init(&diag);
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return CMD_EXIT_OK;
		default:
			fprintf(stderr, "veto devices: unknown or incomplete option '%s'\n\n",
				argv[optind - 1]);
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "veto devices: unexpected argument '%s'\n\n", argv[optind]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (config_load(config, &diag, &cfg) != 0) {
		for (size_t i = 0; i < diag.n; i++)
			if (diag.v[i].level == DIAG_ERROR)
				fprintf(stderr, "%s\n", diag.v[i].text);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (devices_store_path(cfg, path, sizeof(path)) != 0) {
		fprintf(stderr, "veto devices: state_dir is too long\n");
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	err[0] = '\0';
	int rc = devices_store_open(path, true, err, sizeof(err), &st);
	if (rc == -ENOENT) {
		if (!json)
			printf("no devices yet (%s does not exist)\n", path);
		goto cleanup;
	}
	if (rc != 0) {
		fprintf(stderr, "veto devices: %s\n", err);
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	if (devices_store_load(st, json ? print_json : print_text, stdout) != 0) {
		fprintf(stderr, "veto devices: %s: cannot read the device state\n", path);
		code = CMD_EXIT_RUNTIME;
	}
cleanup:
	devices_store_close(&st);
	config_free(&cfg);
	diag_clear(&diag);
	return code;
}
