/*
 * cmd_devices: `veto devices [-c FILE] [filters] [--format table|csv|json]`: every device the
 * daemon knows, one row each, from its persisted state (state_dir/devices.db, opened read-only,
 * so it works while the daemon runs); `veto devices show KEY`: one device in detail. The
 * administration commands (forget, pin, unpin) are in cmd_devices_admin.c.
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cmd.h"
#include "cmd_devices_int.h"
#include "config.h"
#include "devices_admin.h"
#include "devices_store.h"
#include "diag.h"
#include "json.h"
#include "output.h"
#include "text.h"
#include "vendors.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: veto devices [-c FILE] [--vendor V] [--group G] [--since TIME]\n"
		"                    [--format table|csv|json]\n"
		"       veto devices show KEY [-c FILE] [--json]\n"
		"       veto devices forget KEY [-c FILE]\n"
		"       veto devices pin KEY [--vendor V] [--group G] [-c FILE]\n"
		"       veto devices unpin KEY [-c FILE]\n"
		"\n"
		"Lists every device the daemon has seen, from its saved state (state_dir/devices.db),\n"
		"one row each: key (MAC, else address), name, vendor and where it came from, group of\n"
		"its last query, the evidence for the vendor, last seen. The state is saved every few\n"
		"seconds, so the newest queries may not show yet. 'show' prints one device in detail.\n"
		"\n"
		"forget, pin and unpin act on the running daemon through its control channel\n"
		"(state_dir/control.sock), from the device's next query on; without a running daemon\n"
		"they edit the saved state, which the next start reads. forget drops the device and\n"
		"what its queries revealed; pin fixes its vendor and/or group (a pinned vendor wins\n"
		"over every source, a pinned group over every group selector); unpin clears the pins.\n"
		"KEY: a MAC (any common spelling), an address, a key (mac:..., ip:...) or an\n"
		"inventory name.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE      configuration file (default " CMD_DEFAULT_CONFIG_HELP ")\n"
		"      --vendor V         list: devices of that vendor; pin: the vendor to pin\n"
		"      --group G          list: devices whose last query was in group G; pin: the\n"
		"                         group to pin\n"
		"      --since TIME       devices seen since TIME (24h, 7d, 2026-11-22T03:58)\n"
		"      --format F         table (default), csv, or json (one JSON array)\n"
		"      --json             --format json\n"
		"      --wide             every column at full width (the table otherwise fits\n"
		"                         COLUMNS, else the terminal, else 100 columns)\n"
		"  -h, --help             show this help\n"
		"\n"
		"exit codes: 0 ok, 1 runtime error, 2 bad usage or configuration\n");
}

/* ---- shared with cmd_devices_admin.c and cmd_explain.c ---- */

const char *
cmd_devices_os_text(unsigned bits, char *buf, size_t size)
{
	static const struct {
		unsigned bit;
		const char *name;
	} fam[] = {
		{IDENTITY_OS_APPLE, "Apple"},	  {IDENTITY_OS_ANDROID, "Android"},
		{IDENTITY_OS_WINDOWS, "Windows"}, {IDENTITY_OS_LINUX, "Linux"},
		{IDENTITY_OS_OTHER, "other"},
	};
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < sizeof(fam) / sizeof(fam[0]); i++) {
		if (!(bits & fam[i].bit) || off >= size)
			continue;
		int n = snprintf(buf + off, size - off, "%s%s", off ? ", " : "", fam[i].name);
		if (n > 0)
			off += (size_t)n;
	}
	return buf;
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

void
cmd_devices_json_evidence(FILE *out, const struct devices_record *r)
{
	char t1[32], t2[32];
	fputs(",\"observed\":[", out);
	for (size_t i = 0; i < r->nobs; i++) {
		const struct devices_obs *o = &r->obs[i];
		time_text(o->first, false, t1, sizeof(t1));
		time_text(o->last, false, t2, sizeof(t2));
		fprintf(out, "%s{\"vendor\":", i ? "," : "");
		json_str(out, o->vendor);
		fprintf(out, ",\"count\":%u,\"rom\":%u,\"app\":%u,\"first_seen\":\"%s\","
			"\"last_seen\":\"%s\",\"evidence\":",
			(unsigned)o->count, (unsigned)o->rom, (unsigned)o->app, t1, t2);
		json_str(out, o->evidence);
		fputs(",\"rom_evidence\":", out);
		json_str(out, o->rom_evidence);
		fputc('}', out);
	}
	fputs("],\"os_families\":[", out);
	char os[64];
	cmd_devices_os_text(r->os_families, os, sizeof(os));
	for (char *save = NULL, *t = strtok_r(os, ", ", &save), *first = t; t != NULL;
	     t = strtok_r(NULL, ", ", &save)) {
		fputs(t != first ? "," : "", out);
		json_str(out, t);
	}
	fprintf(out, "],\"shared\":%s,\"pin_vendor\":", r->shared ? "true" : "false");
	json_str(out, r->pin_vendor);
	fputs(",\"pin_group\":", out);
	json_str(out, r->pin_group);
}

void
cmd_devices_text_evidence(FILE *out, const struct devices_record *r, const char *indent,
			  int width)
{
	char safe[IDENTITY_NAME_MAX], ev[DEVICES_EVIDENCE_MAX], t1[32], t2[32], os[64];
	for (size_t i = 0; i < r->nobs; i++) {
		const struct devices_obs *o = &r->obs[i];
		time_text(o->first, true, t1, sizeof(t1));
		time_text(o->last, true, t2, sizeof(t2));
		fprintf(out, "%s%-*s %s x%u (rom %u, app %u; %s .. %s), last '%s'", indent, width - 1,
			"observed:", text_safe(safe, sizeof(safe), o->vendor), (unsigned)o->count,
			(unsigned)o->rom, (unsigned)o->app, t1, t2,
			text_safe(ev, sizeof(ev), o->evidence));
		if (o->rom_evidence[0] != '\0')
			fprintf(out, ", last rom '%s'", text_safe(ev, sizeof(ev), o->rom_evidence));
		fputc('\n', out);
	}
	if (r->os_families != 0)
		fprintf(out, "%s%-*s %s\n", indent, width - 1, "os:",
			cmd_devices_os_text(r->os_families, os, sizeof(os)));
	if (r->shared)
		fprintf(out, "%s%-*s yes (several devices behind one address: never attributed)\n",
			indent, width - 1, "shared:");
	if (r->pin_vendor[0] != '\0')
		fprintf(out, "%s%-*s %s\n", indent, width - 1, "pinned vendor:",
			text_safe(safe, sizeof(safe), r->pin_vendor));
	if (r->pin_group[0] != '\0')
		fprintf(out, "%s%-*s %s\n", indent, width - 1, "pinned group:",
			text_safe(safe, sizeof(safe), r->pin_group));
}

struct find_ctx {
	const char *target;
	struct devices_ip addr;
	struct devices_record *out;
	bool found;
};

static int
on_find(void *arg, const struct devices_record *r)
{
	struct find_ctx *f = arg;
	if (!devices_admin_matches(r, f->target, &f->addr))
		return 0;
	*f->out = *r;	/* newest first: the first match is the most recent */
	f->found = true;
	return 1;
}

int
cmd_devices_find(const struct config *cfg, struct devices_store *st, const char *target,
		 char key[DEVICES_KEY_MAX], struct devices_record *out)
{
	struct find_ctx f = {.target = target, .out = out};
	if (devices_admin_key(cfg, NULL, target, key, &f.addr) != 0)
		return -EINVAL;
	int rc = devices_store_get(st, key, out);
	if (rc != -ENOENT)
		return rc;
	rc = devices_store_load(st, on_find, &f);
	if (rc < 0)
		return rc;
	if (!f.found)
		return -ENOENT;
	text_copy(key, DEVICES_KEY_MAX, out->key);
	return 0;
}

/* ---- list ---- */

enum format { FORMAT_TABLE, FORMAT_CSV, FORMAT_JSON };

struct list_ctx {
	FILE *out;
	enum format format;
	const char *vendor, *group;
	int64_t since;		/* Unix time, 0 = all */
	int64_t now;
	size_t n;
	struct output_table *table;
	bool wide; /* --wide: the table is not fitted to the terminal */
	int err;
};

static void
print_json(FILE *out, const struct devices_record *r)
{
	char mac[MAC_STRLEN], ip[64], t1[32], t2[32], ev[DEVICES_EVIDENCE_MAX + 16];
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
	fputs(",\"name\":", out);
	json_str(out, identify_display_name(r));
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
	fputs(",\"evidence\":", out);
	identify_evidence_text(r, ev, sizeof(ev));
	json_str(out, strcmp(ev, "-") != 0 ? ev : NULL);
	cmd_devices_json_evidence(out, r);
	time_text(r->first_seen, false, t1, sizeof(t1));
	time_text(r->last_seen, false, t2, sizeof(t2));
	fputs(",\"group\":", out);
	json_str(out, r->group);
	fprintf(out, ",\"first_seen\":\"%s\",\"last_seen\":\"%s\"}", t1, t2);
}

/* A cell cut to at most max characters (the last one then "~"), terminal-safe. */
static const char *
cut(char *buf, size_t size, const char *s, size_t max)
{
	size_t w = 0, at = 0;
	text_safe(buf, size, s != NULL && s[0] != '\0' ? s : "-");
	for (size_t i = 0; buf[i] != '\0'; i++) {
		if (((unsigned char)buf[i] & 0xc0) == 0x80)
			continue;	/* a continuation octet: same character */
		if (w == max - 1)
			at = i;		/* where the max-th character starts */
		if (++w > max) {
			buf[at] = '~';
			buf[at + 1] = '\0';
			break;
		}
	}
	return buf;
}

/* "now", "42s ago", "5m ago", "3h ago", "12d ago". */
static void
ago(int64_t now, int64_t t, char *buf, size_t size)
{
	int64_t d = now - t;
	if (t <= 0)
		snprintf(buf, size, "-");
	else if (d < 1)
		snprintf(buf, size, "now");
	else if (d < 60)
		snprintf(buf, size, "%llds ago", (long long)d);
	else if (d < 3600)
		snprintf(buf, size, "%lldm ago", (long long)(d / 60));
	else if (d < 86400)
		snprintf(buf, size, "%lldh ago", (long long)(d / 3600));
	else
		snprintf(buf, size, "%lldd ago", (long long)(d / 86400));
}

static int
on_list(void *arg, const struct devices_record *r)
{
	struct list_ctx *c = arg;
	char key[DEVICES_KEY_MAX], mac[MAC_STRLEN], ev[DEVICES_EVIDENCE_MAX + 16];
	char vendor[IDENTITY_VENDOR_MAX + 16];
	if (c->vendor != NULL && strcasecmp(c->vendor, r->vendor) != 0)
		return 0;
	if (c->group != NULL && strcmp(c->group, r->group) != 0)
		return 0;
	if (c->since > 0 && r->last_seen < c->since)
		return 0;
	const char *k = strncmp(r->key, "ip:", 3) == 0 ? r->key + 3 : r->key + 4;
	if (r->has_mac)
		k = mac_format(&r->mac, mac);
	text_copy(key, sizeof(key), k);
	identify_evidence_text(r, ev, sizeof(ev));
	if (r->vendor[0] != '\0')
		snprintf(vendor, sizeof(vendor), "%s (%s)", r->vendor,
			 identity_source_name(r->vendor_source));
	else
		snprintf(vendor, sizeof(vendor), "-");
	if (c->format == FORMAT_JSON) {
		fputs(c->n ? ",\n" : "\n", c->out);
		print_json(c->out, r);
	} else if (c->format == FORMAT_CSV) {
		char t1[32], t2[32], ip[64];
		time_text(r->first_seen, false, t1, sizeof(t1));
		time_text(r->last_seen, false, t2, sizeof(t2));
		const char *fields[] = {r->key, r->has_mac ? mac : NULL, NULL,
					identify_display_name(r), r->vendor,
					identity_source_name(r->vendor_source), r->group,
					strcmp(ev, "-") ? ev : NULL, r->pin_vendor, r->pin_group,
					t1, t2};
		if (r->nips > 0) {
			identify_ip_text(&r->ips[0], ip, sizeof(ip));
			fields[2] = ip;
		}
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
			if (i)
				fputc(',', c->out);
			output_csv(c->out, fields[i]);
		}
		fputc('\n', c->out);
	} else {
		/* widths: 17 + 10 + 18 + 9 + 27 + 9 and five 2-space gaps: 100 columns */
		char cells[6][DEVICES_EVIDENCE_MAX + 16];
		char when[32];
		ago(c->now, r->last_seen, when, sizeof(when));
		const char *row[6] = {
			cut(cells[0], sizeof(cells[0]), key, 17),
			cut(cells[1], sizeof(cells[1]), identify_display_name(r), 10),
			cut(cells[2], sizeof(cells[2]), vendor, 18),
			cut(cells[3], sizeof(cells[3]), r->group, 9),
			cut(cells[4], sizeof(cells[4]), ev, 27),
			cut(cells[5], sizeof(cells[5]), when, 9),
		};
		if (output_table_add(c->table, row) != 0) {
			c->err = -ENOMEM;
			return -ENOMEM;
		}
	}
	c->n++;
	return 0;
}

static int
open_state(const char *cmd, const char *config, struct config **cfg, struct devices_store **st,
	   char *path, size_t size)
{
	struct diag diag;
	char err[4608];
	int code = CMD_EXIT_OK;

	diag_init(&diag);
	if (config_load(config, &diag, cfg) != 0) {
		for (size_t i = 0; i < diag.n; i++)
			if (diag.v[i].level == DIAG_ERROR)
				fprintf(stderr, "%s\n", diag.v[i].text);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	if (devices_store_path(*cfg, path, size) != 0) {
		fprintf(stderr, "%s: state_dir is too long\n", cmd);
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	err[0] = '\0';
	int rc = devices_store_open(path, true, err, sizeof(err), st);
	if (rc != 0 && rc != -ENOENT) {
		fprintf(stderr, "%s: %s\n", cmd, err);
		code = CMD_EXIT_RUNTIME;
	}
cleanup:
	diag_clear(&diag);
	return code;
}

static int
list(const char *config, struct list_ctx *c)
{
	static const char *const heads[] = {"KEY", "NAME", "VENDOR (SOURCE)", "GROUP",
					    "EVIDENCE", "LAST SEEN"};
	struct config *cfg = NULL;
	struct devices_store *st = NULL;
	char path[4096];
	int code = open_state("veto devices", config, &cfg, &st, path, sizeof(path));

	if (code != CMD_EXIT_OK)
		goto cleanup;
	char err[512];
	if ((c->vendor != NULL &&
	     devices_store_check_known(cfg, st, "--vendor", c->vendor, err, sizeof(err)) != 0) ||
	    (c->group != NULL &&
	     devices_store_check_known(cfg, st, "--group", c->group, err, sizeof(err)) != 0)) {
		fprintf(stderr, "veto devices: %s\n", err);
		code = CMD_EXIT_USAGE;
		goto cleanup;
	}
	static const struct output_col cols[] = {
		{.prio = 0, .min = 17, .max = 42}, /* KEY */
		{.prio = 1, .min = 8, .max = 32},  /* NAME */
		{.prio = 2, .min = 10, .max = 32}, /* VENDOR (SOURCE) */
		{.prio = 1, .min = 5, .max = 16},  /* GROUP */
		{.prio = 4, .min = 8, .max = 40},  /* EVIDENCE */
		{.prio = 3, .min = 9},             /* LAST SEEN */
	};
	if (c->format == FORMAT_TABLE &&
	    (output_table_new(6, heads, &c->table) != 0 ||
	     output_table_fit(c->table, cols, output_term_width(c->wide)) != 0)) {
		code = CMD_EXIT_RUNTIME;
		goto cleanup;
	}
	if (c->format == FORMAT_JSON)
		fputs("[", c->out);
	if (c->format == FORMAT_CSV)
		fputs("key,mac,ip,name,vendor,vendor_source,group,evidence,pin_vendor,pin_group,"
		      "first_seen,last_seen\n", c->out);
	if (st != NULL && devices_store_load(st, on_list, c) != 0) {
		fprintf(stderr, "veto devices: %s: %s\n", path,
			c->err == -ENOMEM ? "out of memory" : "cannot read the device state");
		code = CMD_EXIT_RUNTIME;
	}
	if (c->format == FORMAT_JSON)
		fputs(c->n ? "\n]\n" : "]\n", c->out);
	if (c->format == FORMAT_TABLE) {
		if (st == NULL)
			printf("no devices yet (%s does not exist)\n", path);
		else if (c->n == 0)
			printf("no devices%s\n",
			       c->vendor || c->group || c->since ? " match" : " yet");
		else
			output_table_print(c->table, c->out, NULL, true);
	}
cleanup:
	output_table_free(&c->table);
	devices_store_close(&st);
	config_free(&cfg);
	return code;
}

/* ---- show ---- */

static void
print_text(FILE *out, const struct devices_record *r)
{
	char mac[MAC_STRLEN], ip[64], t1[32], t2[32], safe[IDENTITY_NAME_MAX];
	char ev[DEVICES_EVIDENCE_MAX + 16];
	fprintf(out, "%s\n", r->key);
	fprintf(out, "  ips:        ");
	for (size_t i = 0; i < r->nips; i++) {
		identify_ip_text(&r->ips[i], ip, sizeof(ip));
		fprintf(out, "%s%s", i ? ", " : "", ip);
	}
	fprintf(out, "%s\n", r->nips ? "" : "-");
	fprintf(out, "  mac:        %s%s\n", r->has_mac ? mac_format(&r->mac, mac) : "-",
		r->has_mac && r->randomised ? " (randomised)" : "");
	fprintf(out, "  hostname:   %s\n",
		text_safe(safe, sizeof(safe), r->hostname[0] ? r->hostname : "-"));
	if (r->inventory[0] != '\0')
		fprintf(out, "  inventory:  %s\n", text_safe(safe, sizeof(safe), r->inventory));
	if (r->manufacturer[0] != '\0')
		fprintf(out, "  oui:        %s\n", text_safe(safe, sizeof(safe), r->manufacturer));
	fprintf(out, "  vendor:     %s",
		text_safe(safe, sizeof(safe), r->vendor[0] ? r->vendor : "-"));
	if (r->vendor_source != IDENTITY_SRC_NONE)
		fprintf(out, " (from %s)", identity_source_name(r->vendor_source));
	fputc('\n', out);
	fprintf(out, "  evidence:   %s\n", text_safe(ev, sizeof(ev),
							identify_evidence_text(r, ev, sizeof(ev))));
	cmd_devices_text_evidence(out, r, "  ", 12);
	time_text(r->first_seen, true, t1, sizeof(t1));
	time_text(r->last_seen, true, t2, sizeof(t2));
	fprintf(out, "  group:      %s\n  seen:       %s .. %s\n",
		text_safe(safe, sizeof(safe), r->group[0] ? r->group : "-"), t1, t2);
}

static int
show(const char *config, const char *target, bool json)
{
	struct config *cfg = NULL;
	struct devices_store *st = NULL;
	struct devices_record r;
	char path[4096], key[DEVICES_KEY_MAX], safe[DEVICES_ADMIN_TARGET_MAX];
	int code = open_state("veto devices show", config, &cfg, &st, path, sizeof(path));
	int rc = -ENOENT;

	if (code != CMD_EXIT_OK)
		goto cleanup;
	text_safe(safe, sizeof(safe), target);
	if (st != NULL)
		rc = cmd_devices_find(cfg, st, target, key, &r);
	else if (devices_admin_key(cfg, NULL, target, key, &(struct devices_ip){0}) != 0)
		rc = -EINVAL;
	if (rc == -EINVAL) {
		fprintf(stderr, "veto devices show: '%s' is not a MAC, an address, a device key or "
			"an inventory name\n", safe);
		code = CMD_EXIT_USAGE;
	} else if (rc == -ENOENT) {
		fprintf(stderr, "veto devices show: no device '%s' (%s) in %s\n", safe, key, path);
		code = CMD_EXIT_RUNTIME;
	} else if (rc != 0) {
		fprintf(stderr, "veto devices show: %s: cannot read the device state\n", path);
		code = CMD_EXIT_RUNTIME;
	} else if (json) {
		print_json(stdout, &r);
		fputc('\n', stdout);
	} else {
		print_text(stdout, &r);
	}
cleanup:
	devices_store_close(&st);
	config_free(&cfg);
	return code;
}

static int64_t
now_s(void)
{
	return (int64_t)time(NULL);
}

int
cmd_devices(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"json", no_argument, NULL, 'j'},
		{"format", required_argument, NULL, 'f'},
		{"vendor", required_argument, NULL, 'v'},
		{"group", required_argument, NULL, 'g'},
		{"since", required_argument, NULL, 's'},
		{"wide", no_argument, NULL, 'w'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *config = cmd_default_config();
	struct list_ctx c = {.out = stdout, .format = FORMAT_TABLE, .now = now_s()};
	int ch;

	if (argc > 1 && (strcmp(argv[1], "forget") == 0 || strcmp(argv[1], "pin") == 0 ||
			 strcmp(argv[1], "unpin") == 0))
		return cmd_devices_admin(argc - 1, argv + 1);
	bool is_show = argc > 1 && strcmp(argv[1], "show") == 0;
	if (is_show) {
		argc--;
		argv++;
	}
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'j':
			c.format = FORMAT_JSON;
			break;
		case 'f':
			if (strcmp(optarg, "table") == 0)
				c.format = FORMAT_TABLE;
			else if (strcmp(optarg, "csv") == 0)
				c.format = FORMAT_CSV;
			else if (strcmp(optarg, "json") == 0)
				c.format = FORMAT_JSON;
			else {
				fprintf(stderr, "veto devices: --format: unknown format '%s' "
					"(expected table, csv or json)\n", optarg);
				return CMD_EXIT_USAGE;
			}
			break;
		case 'v':
			c.vendor = optarg;
			break;
		case 'w':
			c.wide = true;
			break;
		case 'g':
			c.group = optarg;
			break;
		case 's': {
			uint64_t t;
			if (output_parse_time(optarg, (uint64_t)c.now * 1000, &t) != 0) {
				fprintf(stderr, "veto devices: --since: bad time '%s' (expected 24h, "
					"7d, 2026-11-22 or 2026-11-22T03:58)\n", optarg);
				return CMD_EXIT_USAGE;
			}
			c.since = (int64_t)(t / 1000);
			break;
		}
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
	if (is_show) {
		if (optind + 1 != argc || c.vendor || c.group || c.since ||
		    c.format == FORMAT_CSV) {
			fprintf(stderr, "veto devices show: expected one device and at most -c FILE "
				"and --json\n\n");
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
		return show(config, argv[optind], c.format == FORMAT_JSON);
	}
	if (optind < argc) {
		fprintf(stderr, "veto devices: unexpected argument '%s'\n\n", argv[optind]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	return list(config, &c);
}
