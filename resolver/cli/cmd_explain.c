/*
 * cmd_explain: `veto explain -c FILE --client IP NAME [TYPE] [--json]`: what the policy decides
 * for one client and one name, and why (group, verdict, action, deciding list and entry).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "cmd_devices_int.h"
#include "config.h"
#include "devices_store.h"
#include "identify.h"
#include "json.h"
#include "sources.h"
#include "text.h"
#include "diag.h"
#include "names.h"
#include "policy.h"

static void
usage(FILE *out)
{
	fprintf(out,
		"usage: veto explain [-c FILE] --client IP [--mac MAC] NAME [TYPE] [--json]\n"
		"\n"
		"Shows what the policy decides for a query from client IP for NAME (type TYPE,\n"
		"default A): the group of the client, the verdict (forward or blocked), the action,\n"
		"and the list and entry that decided it, or why nothing matched.\n"
		"\n"
		"options:\n"
		"  -c, --config FILE  configuration file (default " CMD_DEFAULT_CONFIG_HELP ")\n"
		"      --client IP    the client's IPv4 or IPv6 address\n"
		"      --mac MAC      the client's MAC address (else found from the devices:\n"
		"                     inventory, lease files, ARP table and the saved state)\n"
		"      --json         print one JSON object (keys: client, allowed, group, blocked,\n"
		"                     reason, action, list, rule, qname, qtype, answer)\n"
		"  -h, --help         show this help\n"
		"\n"
		"exit codes: 0 ok, 1 runtime error, 2 bad usage or configuration\n");
}

/* What was asked and what was decided, ready to print. */
struct explain {
	const char *client;
	bool allowed;
	const char *group;	/* NULL = none */
	struct policy_decision d;	/* as the daemon decides it */
	struct policy_verdict v;	/* d.v */
	const char *list;	/* NULL = none */
	char rule[NAMES_MAX_TEXT];
	bool has_rule;
	char qname[NAMES_MAX_TEXT];
	char qtype[32];
	uint16_t type;
	char answer[INET6_ADDRSTRLEN + 32];
	bool has_answer;
	bool has_identity;		/* devices: configured or --mac given */
	struct devices_record dev;
	bool dev_saved;			/* the device was in the saved state */
	struct policy_group_match why;
};

static const char *
reason_key(const struct explain *e)
{
	if (!e->allowed)
		return "not_allowed";
	switch (e->v.reason) {
	case POLICY_REASON_NO_GROUP:
		return "no_group";
	case POLICY_REASON_NO_MATCH:
		return "no_match";
	case POLICY_REASON_ALLOW_LIST:
		return "allow_list";
	case POLICY_REASON_BLOCK_LIST:
		return "block_list";
	case POLICY_REASON_DEFAULT_DENY:
		return "default_deny";
	}
	return "unknown";
}

static void
print_json(const struct explain *e, FILE *out)
{
	fputs("{\"client\":", out);
	json_fput_str(out, e->client);
	fprintf(out, ",\"allowed\":%s,\"group\":", e->allowed ? "true" : "false");
	json_fput_str(out, e->group);
	/* refused by server.allow is not a block: the daemon logs it as blocked: false */
	fprintf(out, ",\"blocked\":%s,\"reason\":", e->allowed && e->v.blocked ? "true" : "false");
	json_fput_str(out, reason_key(e));
	fputs(",\"action\":", out);
	if (!e->allowed)
		json_fput_str(out, "refused");
	else
		json_fput_str(out, e->v.blocked ? config_action_name(e->v.action) : NULL);
	fputs(",\"list\":", out);
	json_fput_str(out, e->list);
	fputs(",\"rule\":", out);
	json_fput_str(out, e->has_rule ? e->rule : NULL);
	fputs(",\"qname\":", out);
	json_fput_str(out, e->qname);
	fputs(",\"qtype\":", out);
	json_fput_str(out, e->qtype);
	fputs(",\"answer\":", out);
	json_fput_str(out, e->has_answer ? e->answer : NULL);
	if (e->has_identity) {
		char mac[MAC_STRLEN];
		const struct devices_record *r = &e->dev;
		fputs(",\"device\":{\"key\":", out);
		json_fput_str(out, r->key);
		fputs(",\"mac\":", out);
		json_fput_str(out, r->has_mac ? mac_format(&r->mac, mac) : NULL);
		fprintf(out, ",\"randomised\":%s,\"hostname\":",
			r->has_mac ? (r->randomised ? "true" : "false") : "null");
		json_fput_str(out, r->hostname[0] ? r->hostname : NULL);
		fputs(",\"inventory\":", out);
		json_fput_str(out, r->inventory[0] ? r->inventory : NULL);
		fputs(",\"manufacturer\":", out);
		json_fput_str(out, r->manufacturer[0] ? r->manufacturer : NULL);
		fputs(",\"vendor\":", out);
		json_fput_str(out, r->vendor[0] ? r->vendor : NULL);
		fputs(",\"vendor_source\":", out);
		json_fput_str(out, identity_source_name(r->vendor_source));
		cmd_devices_json_evidence(out, r);
		fprintf(out, ",\"saved\":%s}", e->dev_saved ? "true" : "false");
		fputs(",\"matched_by\":", out);
		json_fput_str(out, e->group != NULL ? policy_selector_name(e->why.selector) : NULL);
	}
	fputs("}\n", out);
}

static void
print_text(const struct explain *e, FILE *out)
{
	fprintf(out, "client:  %s (%s)\n", e->client,
		e->allowed ? "allowed by server.allow" : "not in server.allow");
	fprintf(out, "query:   %s %s\n", e->qname, e->qtype);
	if (!e->allowed) {
		fprintf(out, "verdict: refused\n"
			     "reason:  the client is outside server.allow: every query is answered "
			     "REFUSED\n");
		return;
	}
	if (e->has_identity) {
		char mac[MAC_STRLEN], inv[IDENTITY_NAME_MAX], host[IDENTITY_NAME_MAX];
		char org[IDENTITY_NAME_MAX];
		const struct devices_record *r = &e->dev;
		fprintf(out, "device:  %s%s%s%s%s%s%s\n", r->key,
			r->inventory[0] ? ", inventory '" : "",
			text_safe(inv, sizeof(inv), r->inventory), r->inventory[0] ? "'" : "",
			r->hostname[0] ? ", hostname '" : "",
			text_safe(host, sizeof(host), r->hostname), r->hostname[0] ? "'" : "");
		if (r->has_mac)
			fprintf(out, "mac:     %s%s%s%s\n", mac_format(&r->mac, mac),
				r->randomised ? " (randomised: no OUI)" : "",
				r->manufacturer[0] ? ", OUI " : "",
				text_safe(org, sizeof(org), r->manufacturer));
		if (r->vendor[0] != '\0')
			fprintf(out, "vendor:  %s (from %s)\n", text_safe(org, sizeof(org), r->vendor),
				identity_source_name(r->vendor_source));
		cmd_devices_text_evidence(out, r, "", 9);
		if (!e->dev_saved)
			fprintf(out, "state:   not in the saved device state\n");
	}
	if (e->group != NULL && e->has_identity)
		fprintf(out, "group:   %s (matched by %s)\n", e->group,
			policy_selector_name(e->why.selector));
	else if (e->group != NULL)
		fprintf(out, "group:   %s\n", e->group);
	else
		fprintf(out, "group:   none (no group matches the client)\n");
	fprintf(out, "verdict: %s\n", e->v.blocked ? "blocked" : "forward");
	switch (e->v.reason) {
	case POLICY_REASON_NO_GROUP:
		fprintf(out, "reason:  no group matches the client: forwarded unfiltered\n");
		break;
	case POLICY_REASON_NO_MATCH:
		fprintf(out, "reason:  the name is in none of the lists of group '%s'\n", e->group);
		break;
	case POLICY_REASON_ALLOW_LIST:
		fprintf(out, "reason:  allow list '%s' contains '%s' (allow wins over block)\n",
			e->list != NULL ? e->list : "?", e->has_rule ? e->rule : "?");
		break;
	case POLICY_REASON_BLOCK_LIST:
		fprintf(out, "reason:  block list '%s' contains '%s'\n",
			e->list != NULL ? e->list : "?", e->has_rule ? e->rule : "?");
		break;
	case POLICY_REASON_DEFAULT_DENY:
		fprintf(out, "reason:  group '%s' has default: deny and no allow list contains the "
			     "name\n", e->group);
		break;
	}
	if (e->v.blocked) {
		fprintf(out, "action:  %s\n", config_action_name(e->v.action));
		if (e->has_answer)
			fprintf(out, "answer:  %s\n", e->answer);
	}
}

/* Fills the answer a blocked query gets. */
static void
describe_answer(struct explain *e, const struct config *cfg)
{
	char addr[INET6_ADDRSTRLEN];
	e->has_answer = true;
	switch (e->v.action) {
	case CONFIG_ACTION_SINKHOLE:
		if (e->type == LDNS_RR_TYPE_A || e->type == LDNS_RR_TYPE_AAAA) {
			bool v4 = e->type == LDNS_RR_TYPE_A;
			inet_ntop(v4 ? AF_INET : AF_INET6, v4 ? (const void *)cfg->block.ipv4
							      : (const void *)cfg->block.ipv6,
				  addr, sizeof(addr));
			snprintf(e->answer, sizeof(e->answer), "%s (ttl %u)", addr,
				 (unsigned)cfg->block.ttl);
		} else {
			snprintf(e->answer, sizeof(e->answer), "NODATA (ttl %u)",
				 (unsigned)cfg->block.ttl);
		}
		break;
	case CONFIG_ACTION_NXDOMAIN:
		snprintf(e->answer, sizeof(e->answer), "NXDOMAIN");
		break;
	case CONFIG_ACTION_NODATA:
		snprintf(e->answer, sizeof(e->answer), "NODATA");
		break;
	case CONFIG_ACTION_REFUSED:
		snprintf(e->answer, sizeof(e->answer), "REFUSED");
		break;
	case CONFIG_ACTION_INHERIT:
		e->has_answer = false;
		break;
	}
}

static int
parse_type(const char *text, uint16_t *type, char *name, size_t size)
{
	char up[32];
	size_t n = strlen(text);
	if (n == 0 || n >= sizeof(up))
		return -EINVAL;
	for (size_t i = 0; i <= n; i++)
		up[i] = (char)toupper((unsigned char)text[i]);
	ldns_rr_type t = ldns_get_rr_type_by_name(up);
	if (t == 0)
		return -EINVAL;
	const ldns_rr_descriptor *d = ldns_rr_descript((uint16_t)t);
	if (d != NULL && d->_name != NULL)
		snprintf(name, size, "%s", d->_name);
	else
		snprintf(name, size, "TYPE%u", (unsigned)t);
	*type = (uint16_t)t;
	return 0;
}

static int
parse_client(const char *text, struct sockaddr_storage *ss)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, text, &sin6->sin6_addr) == 1) {
		sin6->sin6_family = AF_INET6;
		return 0;
	}
	return -EINVAL;
}

/* The problems of the device sources, as the daemon reports them (FILE:LINE: message): a source
 * that cannot be read is left out of the identity. Notes are not shown (nor by the daemon). */
static void
print_source_problems(const struct diag *d, FILE *out)
{
	for (size_t i = 0; i < d->n; i++) {
		const struct diag_entry *e = &d->v[i];
		if (e->level == DIAG_ERROR)
			fprintf(out, "veto explain: warning: %s (not used for the identity)\n",
				e->bare);
		else if (e->level == DIAG_WARNING)
			fprintf(out, "veto explain: warning: %s\n", e->bare);
	}
}

/* The device behind the client as the daemon sees it: the same key (identify_key), the saved
 * record of that key as the daemon's table holds it (it loads the same file), then the same
 * identify_fill over the sources read now. */
static void
identify(struct explain *e, const struct policy *p, const struct sockaddr *sa,
	 const struct mac *hint)
{
	const struct config *cfg = policy_config(p);
	struct devices_sources *src = NULL;
	struct devices_store *st = NULL;
	struct diag d;
	char path[4096], err[256], key[DEVICES_KEY_MAX];
	struct mac mac;

	diag_init(&d);
	e->has_identity = true;
	memset(&e->dev, 0, sizeof(e->dev));
	e->dev.inv = -1;
	if (sources_load(cfg, &d, &src) != 0)
		src = NULL;
	print_source_problems(&d, stderr);
	bool has_mac = identify_key(cfg, src, sa, hint, key, &mac);
	if (devices_store_path(cfg, path, sizeof(path)) == 0 &&
	    devices_store_open(path, true, err, sizeof(err), &st) == 0 &&
	    devices_store_get(st, key, &e->dev) == 0) {
		e->dev_saved = true;
		e->dev.inv = -1;
	} else {
		memset(&e->dev, 0, sizeof(e->dev));
		e->dev.inv = -1;
	}
	identify_fill(cfg, src, sa, has_mac ? &mac : NULL, &e->dev);
	devices_store_close(&st);
	sources_free(&src);
	diag_clear(&d);
}

int
cmd_explain(int argc, char **argv)
{
	enum { OPT_CLIENT = 256, OPT_JSON, OPT_MAC };
	static const struct option opts[] = {
		{"config", required_argument, NULL, 'c'},
		{"client", required_argument, NULL, OPT_CLIENT},
		{"mac", required_argument, NULL, OPT_MAC},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *path = cmd_default_config();
	const char *client = NULL;
	const char *mac_text = NULL;
	struct mac mac;
	bool json = false;
	struct diag d;
	struct policy *p = NULL;
	struct sockaddr_storage ss;
	struct names_name qname;
	struct explain e;
	const char *why = NULL;
	int c, rc, code;

	memset(&e, 0, sizeof(e));
	optind = 0;	/* glibc: full reinitialisation */
	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			path = optarg;
			break;
		case OPT_CLIENT:
			client = optarg;
			break;
		case OPT_JSON:
			json = true;
			break;
		case OPT_MAC:
			mac_text = optarg;
			break;
		case 'h':
			usage(stdout);
			return CMD_EXIT_OK;
		default:
			usage(stderr);
			return CMD_EXIT_USAGE;
		}
	}
	if (client == NULL || optind >= argc || argc - optind > 2) {
		fprintf(stderr, "veto explain: %s\n",
			client == NULL ? "--client IP is required"
			: optind >= argc ? "a NAME is required"
					 : "too many arguments");
		usage(stderr);
		return CMD_EXIT_USAGE;
	}
	if (parse_client(client, &ss) != 0) {
		fprintf(stderr, "veto explain: --client: bad address '%s' (expected IPv4 or IPv6)\n",
			client);
		return CMD_EXIT_USAGE;
	}
	if (mac_text != NULL && mac_parse(mac_text, strlen(mac_text), &mac) != 0) {
		fprintf(stderr, "veto explain: --mac: bad MAC address '%s'\n", mac_text);
		return CMD_EXIT_USAGE;
	}
	const char *name = argv[optind];
	if (names_from_text(&qname, name, strlen(name), &why) != 0) {
		fprintf(stderr, "veto explain: bad name '%s': %s\n", name, why ? why : "invalid");
		return CMD_EXIT_USAGE;
	}
	e.type = LDNS_RR_TYPE_A;
	snprintf(e.qtype, sizeof(e.qtype), "A");
	if (argc - optind == 2 &&
	    parse_type(argv[optind + 1], &e.type, e.qtype, sizeof(e.qtype)) != 0) {
		fprintf(stderr, "veto explain: unknown type '%s'\n", argv[optind + 1]);
		return CMD_EXIT_USAGE;
	}

	diag_init(&d);
	rc = policy_load(path, &d, &p);
	if (rc != 0) {
		diag_print(&d, stderr, DIAG_ERROR);
		code = rc == -ENOMEM || rc == -EIO ? CMD_EXIT_RUNTIME : CMD_EXIT_USAGE;
		goto cleanup;
	}

	e.client = client;
	names_to_text(&qname, e.qname);
	struct policy_identity id = {.sa = (const struct sockaddr *)&ss};
	if (policy_config(p)->devices.enabled || mac_text != NULL) {
		identify(&e, p, (const struct sockaddr *)&ss, mac_text != NULL ? &mac : NULL);
		identify_policy(policy_config(p), &e.dev, (const struct sockaddr *)&ss, &id);
	}
	policy_decide(p, &id, &qname, &e.d);
	e.allowed = e.d.allowed;
	e.v = e.d.v;
	e.why = e.d.why;
	if (e.allowed) {
		e.group = policy_group_name(p, e.v.group);
		e.list = policy_list_name(p, e.v.list);
		if (e.v.rule_label >= 0 && e.v.rule_label <= qname.nlabels) {
			names_suffix_to_text(&qname, (unsigned)e.v.rule_label, e.rule);
			e.has_rule = true;
		}
		if (e.v.blocked)
			describe_answer(&e, policy_config(p));
	} else {
		e.has_answer = true;
		snprintf(e.answer, sizeof(e.answer), "REFUSED");
	}
	if (json)
		print_json(&e, stdout);
	else
		print_text(&e, stdout);
	code = CMD_EXIT_OK;
cleanup:
	policy_unref(&p);
	diag_clear(&d);
	return code;
}
