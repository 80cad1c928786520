/*
 * cmd_check: `veto check -c FILE`: loads the configuration and every list, prints the problems,
 * one line per list and per group, and the size of the compiled policy.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "config.h"
#include "diag.h"
#include "policy.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: veto check [-c FILE]\n"
		"\n"
		"Validates a configuration and loads every list it names, without serving.\n"
		"Prints every problem (FILE:LINE:COLUMN: key.path: message), then one line per list\n"
		"and per group, the number of distinct names and the memory of the compiled policy.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  configuration file (default " CMD_DEFAULT_CONFIG_HELP ")\n"
		"  -h, --help         show this help\n"
		"\n"
		"exit codes: 0 valid, 1 runtime error, 2 bad usage or configuration\n");
}

/* Exit code for a failed load: content and missing files are configuration errors. */
static int
exit_code(int rc)
{
	return rc == -ENOMEM || rc == -EIO ? CMD_EXIT_RUNTIME : CMD_EXIT_USAGE;
}

static void
print_lists(const struct policy *p, const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < cfg->nlists; i++) {
		const struct config_list *l = &cfg->lists[i];
		struct policy_list_stats st = {0};
		policy_list_stats(p, (int)i, &st);
		fprintf(out, "list %s: %zu entries, %zu skipped, action %s", l->name, st.entries,
			st.skipped,
			l->action == CONFIG_ACTION_INHERIT ? "from group"
							   : config_action_name(l->action));
		if (l->nfiles > 0) {
			fprintf(out, ", files");
			for (size_t j = 0; j < l->nfiles; j++)
				fprintf(out, " %s", l->files[j]);
		}
		if (l->ndomains > 0)
			fprintf(out, ", %zu inline", l->ndomains);
		if (l->nurls > 0) {
			fprintf(out, ", urls");
			for (size_t j = 0; j < l->nurls; j++)
				fprintf(out, " %s", l->urls[j]);
		}
		fputc('\n', out);
	}
}

static void
print_list_refs(const struct config *cfg, const size_t *refs, size_t n, FILE *out)
{
	if (n == 0)
		fputs(" -", out);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? "," : " ", cfg->lists[refs[i]].name);
}

static void
print_strv(const char *what, char *const *v, size_t n, FILE *out)
{
	if (n == 0)
		return;
	fprintf(out, "; %s", what);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s", i ? "," : " ", v[i]);
}

/* The group's device selectors (MAC prefixes, vendors, host names, devices, tags, randomised
 * MACs), those it has, after its other selectors. */
static void
print_device_selectors(const struct config_group *g, FILE *out)
{
	char buf[MAC_PSTRLEN];
	if (g->nmacs > 0)
		fputs("; macs", out);
	for (size_t i = 0; i < g->nmacs; i++)
		fprintf(out, "%s%s", i ? "," : " ", mac_prefix_format(&g->macs[i], buf));
	print_strv("vendors", g->vendors, g->nvendors, out);
	print_strv("hostnames", g->hostnames, g->nhostnames, out);
	print_strv("devices", g->devices, g->ndevices, out);
	print_strv("tags", g->tags, g->ntags, out);
	if (g->has_randomised)
		fprintf(out, "; randomised_mac %s", g->randomised ? "true" : "false");
}

static void
print_groups(const struct config *cfg, FILE *out)
{
	for (size_t i = 0; i < cfg->ngroups; i++) {
		const struct config_group *g = &cfg->groups[i];
		char buf[64];
		bool devsel = g->nmacs + g->nvendors + g->nhostnames + g->ndevices + g->ntags > 0 ||
			      g->has_randomised;
		fprintf(out, "group %s: clients", g->name);
		if (g->nclients == 0)
			fputs(devsel ? " -" : " any", out);
		for (size_t j = 0; j < g->nclients; j++) {
			config_cidr_to_text(&g->clients[j], buf, sizeof(buf));
			fprintf(out, "%s%s", j ? "," : " ", buf);
		}
		print_device_selectors(g, out);
		fputs("; block", out);
		print_list_refs(cfg, g->block, g->nblock, out);
		fputs("; allow", out);
		print_list_refs(cfg, g->allow, g->nallow, out);
		enum config_action a = g->action != CONFIG_ACTION_INHERIT ? g->action
									 : cfg->block.action;
		fprintf(out, "; default %s; action %s%s\n", g->default_deny ? "deny" : "allow",
			config_action_name(a), g->action == CONFIG_ACTION_INHERIT ? " (block.action)"
										   : "");
	}
}

int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = cmd_default_config();
	struct diag d;
	struct policy *p = NULL;
	int c, rc, code;

	optind = 0;	/* glibc: full reinitialisation, the CLI may run several commands */
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case 'h':
			usage(stdout);
			return CMD_EXIT_OK;
		default:
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "veto check: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return CMD_EXIT_USAGE;
	}

	diag_init(&d);
	rc = policy_load(path, &d, &p);
	diag_print(&d, stderr, DIAG_NOTE);
	if (rc != 0) {
		fprintf(stderr, "%s: %zu error%s, %zu warning%s\n", path, d.nerrors,
			d.nerrors == 1 ? "" : "s", d.nwarnings, d.nwarnings == 1 ? "" : "s");
		code = exit_code(rc);
		goto cleanup;
	}
	const struct config *pc = policy_config(p);
	print_lists(p, pc, stdout);
	print_groups(pc, stdout);
	printf("policy: %zu lists, %zu groups, %zu distinct names, %zu bytes\n", pc->nlists,
	       pc->ngroups, policy_names(p), policy_memory(p));
	printf("%s: ok (%zu warning%s)\n", path, d.nwarnings, d.nwarnings == 1 ? "" : "s");
	code = CMD_EXIT_OK;
cleanup:
	policy_unref(&p);
	diag_clear(&d);
	return code;
}
