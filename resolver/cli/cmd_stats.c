/*
 * cmd_stats: `veto stats`, the running daemon's counters, asked through its control channel
 * (state_dir/control.sock, resolver/dns/control.h: the "stats" request, whose reply is the JSON
 * object of metrics.h). Printed as compact lines, one per section ("queries  total 12  udp 10
 * ..."), wrapped to the terminal, or as the JSON object itself (--json).
 */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "control_client.h"
#include "config.h"
#include "control.h"
#include "diag.h"
#include "output.h"

static void
usage(FILE *out)
{
	fprintf(out,
	        "usage: veto stats [-c FILE] [--json]\n"
	        "\n"
	        "prints the running daemon's counters since it started: queries (by transport and\n"
	        "outcome), TCP connections, cache, query log losses, known devices, reloads.\n"
	        "Asked through the daemon's control socket (state_dir/control.sock), which a\n"
	        "daemon with device identity or a query database opens.\n"
	        "\n"
	        "options:\n"
	        "  -c, --config FILE  the daemon's configuration (default " CMD_DEFAULT_CONFIG_HELP ")\n"
	        "  --json             one JSON object, as the daemon sends it\n"
	        "  -h, --help         show this help\n"
	        "\n"
	        "exit codes: 0 ok, 1 no daemon answers, 2 bad usage or configuration.\n");
}

/* Prints {"uptime_s":N,"queries":{"total":N,...},...} as lines "section  key N  key N", wrapped
 * before width. The object is the daemon's (metrics_json): names are plain words, values
 * numbers or plain words in quotes (printed without them); anything else ends the output with
 * -EINVAL. */
static int
print_compact(const char *j, size_t width)
{
	char section[32] = "", key[32];
	size_t col = 0;
	bool in_section = false;
	const char *p = j;

	if (*p++ != '{')
		return -EINVAL;
	while (*p != '\0') {
		if (*p == ',') {
			p++;
			continue;
		}
		if (*p == '}') { /* a section's end */
			in_section = false;
			p++;
			continue;
		}
		if (*p != '"')
			return -EINVAL;
		size_t n = strcspn(++p, "\"");
		if (n == 0 || n >= sizeof(key) || p[n] != '"' || p[n + 1] != ':')
			return -EINVAL;
		memcpy(key, p, n);
		key[n] = '\0';
		p += n + 2;
		if (*p == '{') {
			if (in_section)
				return -EINVAL;
			memcpy(section, key, n + 1);
			in_section = true;
			p++;
			fprintf(stdout, "%s%-10s", col > 0 ? "\n" : "", section);
			col = 10;
			continue;
		}
		/* a number, or a word in quotes (printed without them) */
		const char *v = p;
		size_t d = 0, skip;
		if (*p == '"') {
			v = p + 1;
			d = strcspn(v, "\"\\");
			if (v[d] != '"')
				return -EINVAL;
			skip = d + 2;
		} else {
			while (isdigit((unsigned char)p[d]))
				d++;
			skip = d;
		}
		if (d == 0)
			return -EINVAL;
		if (!in_section) { /* a top-level number: uptime_s */
			fprintf(stdout, "%s%-10s%.*s", col > 0 ? "\n" : "",
			        strcmp(key, "uptime_s") == 0 ? "uptime" : key, (int)d, v);
			if (strcmp(key, "uptime_s") == 0)
				fputs(" s", stdout);
			col = 1;
		} else {
			size_t w = 2 + n + 1 + d;
			if (width > 0 && col + w > width && col > 10) {
				fprintf(stdout, "\n%-10s", "");
				col = 10;
			}
			fprintf(stdout, "  %s %.*s", key, (int)d, v);
			col += w;
		}
		p += skip;
	}
	if (*p != '}' && in_section)
		return -EINVAL;
	fputc('\n', stdout);
	return 0;
}

int
cmd_stats(int argc, char **argv)
{
	const char *config = cmd_default_config();
	char sock[256], reply[CONTROL_REPLY_MAX];
	struct config *cfg = NULL;
	struct diag d;
	bool json = false;
	int rc;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
			usage(stdout);
			return CMD_EXIT_OK;
		}
		if (strcmp(a, "--json") == 0) {
			json = true;
		} else if ((strcmp(a, "-c") == 0 || strcmp(a, "--config") == 0) && i + 1 < argc) {
			config = argv[++i];
		} else {
			fprintf(stderr, "veto stats: unknown argument '%s'\n\n", a);
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	diag_init(&d);
	rc = config_load(config, &d, &cfg);
	diag_print(&d, stderr, DIAG_ERROR);
	diag_clear(&d);
	if (rc != 0) {
		fprintf(stderr, "veto stats: %s: configuration not valid\n", config);
		return CMD_EXIT_USAGE;
	}
	rc = control_path(cfg->state_dir, sock, sizeof(sock));
	config_free(&cfg);
	if (rc != 0) {
		fprintf(stderr, "veto stats: the control socket path is too long\n");
		return CMD_EXIT_USAGE;
	}
	rc = control_ask(sock, "stats\n", reply, sizeof(reply), 10000);
	if (rc != 0) {
		fprintf(stderr,
		        "veto stats: %s: %s (is the daemon running, with devices: or "
		        "log.database set?)\n",
		        sock, strerror(-rc));
		return CMD_EXIT_RUNTIME;
	}
	if (strncmp(reply, "ok {", 4) != 0) {
		fprintf(stderr, "veto stats: the daemon answered '%.200s'\n", reply);
		return CMD_EXIT_RUNTIME;
	}
	if (json) {
		printf("%s\n", reply + 3);
		return CMD_EXIT_OK;
	}
	if (print_compact(reply + 3, output_term_width(false)) != 0) {
		fprintf(stderr, "veto stats: cannot read the daemon's answer\n");
		return CMD_EXIT_RUNTIME;
	}
	return CMD_EXIT_OK;
}
