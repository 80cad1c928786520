/*
 * test_policy: compiling a config into a policy and evaluating it: matching semantics, groups,
 * actions, clients, errors, and a differential test against a naive reference matcher.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config_int.h"
#include "policy.h"

/* --- building a struct config by hand (heap-owned, as config_free expects) --- */

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);
	assert_non_null(d);
	return d;
}

static struct config *
cfg_new(void)
{
	struct config *c = calloc(1, sizeof(*c));
	assert_non_null(c);
	c->path = xstrdup("test.yaml");
	c->dir = xstrdup(".");
	c->block.action = CONFIG_ACTION_SINKHOLE;
	c->block.ttl = 60;
	c->log.file = xstrdup("-");
	return c;
}

static void
parse_cidr(const char *text, struct config_cidr *out)
{
	char buf[128];
	snprintf(buf, sizeof(buf), "%s", text);
	char *slash = strchr(buf, '/');
	unsigned prefix;
	memset(out, 0, sizeof(*out));
	out->family = strchr(buf, ':') != NULL ? AF_INET6 : AF_INET;
	if (slash != NULL) {
		*slash = '\0';
		prefix = (unsigned)atoi(slash + 1);
	} else {
		prefix = out->family == AF_INET ? 32 : 128;
	}
	assert_int_equal(inet_pton(out->family, buf, out->addr), 1);
	out->prefix = (uint8_t)prefix;
}

static void
cfg_allow(struct config *c, const char *const *cidrs)
{
	size_t n = 0;
	while (cidrs[n] != NULL)
		n++;
	c->server.allow = calloc(n + 1, sizeof(*c->server.allow));
	assert_non_null(c->server.allow);
	for (size_t i = 0; i < n; i++)
		parse_cidr(cidrs[i], &c->server.allow[i]);
	c->server.nallow = n;
}

/* files and domains are NULL-terminated (NULL = none) */
static size_t
cfg_list(struct config *c, const char *name, enum config_action action, const char *const *files,
	 const char *const *domains)
{
	c->lists = realloc(c->lists, (c->nlists + 1) * sizeof(*c->lists));
	assert_non_null(c->lists);
	struct config_list *l = &c->lists[c->nlists];
	memset(l, 0, sizeof(*l));
	l->name = xstrdup(name);
	l->action = action;
	for (size_t i = 0; files != NULL && files[i] != NULL; i++)
		l->nfiles++;
	for (size_t i = 0; domains != NULL && domains[i] != NULL; i++)
		l->ndomains++;
	l->files = calloc(l->nfiles + 1, sizeof(*l->files));
	l->file_locs = calloc(l->nfiles + 1, sizeof(*l->file_locs));
	l->domains = calloc(l->ndomains + 1, sizeof(*l->domains));
	l->domain_locs = calloc(l->ndomains + 1, sizeof(*l->domain_locs));
	assert_true(l->files && l->file_locs && l->domains && l->domain_locs);
	for (size_t i = 0; i < l->nfiles; i++) {
		char path[512];
		snprintf(path, sizeof(path), "%s/%s", VETO_TEST_DATA, files[i]);
		l->files[i] = xstrdup(path);
		l->file_locs[i] = (struct config_loc){.line = 10 + (int)i, .col = 7};
	}
	for (size_t i = 0; i < l->ndomains; i++) {
		l->domains[i] = xstrdup(domains[i]);
		l->domain_locs[i] = (struct config_loc){.line = 20 + (int)i, .col = 9};
	}
	return c->nlists++;
}

static size_t
list_index(const struct config *c, const char *name)
{
	for (size_t i = 0; i < c->nlists; i++)
		if (strcmp(c->lists[i].name, name) == 0)
			return i;
	fail_msg("no list '%s'", name);
	return 0;
}

struct group_spec {
	const char *name;
	const char *clients[4];		/* NULL-terminated; none = catch-all */
	const char *block[4];
	const char *allow[4];
	bool deny;
	enum config_action action;
};

static void
cfg_group(struct config *c, const struct group_spec *s)
{
	c->groups = realloc(c->groups, (c->ngroups + 1) * sizeof(*c->groups));
	assert_non_null(c->groups);
	struct config_group *g = &c->groups[c->ngroups++];
	memset(g, 0, sizeof(*g));
	g->name = xstrdup(s->name);
	g->default_deny = s->deny;
	g->action = s->action;
	g->clients = calloc(4, sizeof(*g->clients));
	g->block = calloc(4, sizeof(*g->block));
	g->allow = calloc(4, sizeof(*g->allow));
	assert_true(g->clients && g->block && g->allow);
	for (size_t i = 0; i < 4 && s->clients[i] != NULL; i++)
		parse_cidr(s->clients[i], &g->clients[g->nclients++]);
	for (size_t i = 0; i < 4 && s->block[i] != NULL; i++)
		g->block[g->nblock++] = list_index(c, s->block[i]);
	for (size_t i = 0; i < 4 && s->allow[i] != NULL; i++)
		g->allow[g->nallow++] = list_index(c, s->allow[i]);
}

static struct sockaddr_storage
addr(const char *text)
{
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	if (strchr(text, ':') != NULL) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
	}
	return ss;
}

/* --- the scenario config --- */

static char name127[256];	/* 125 one-octet labels + "z.z": 127 labels, 253 characters */
static char name253[256];	/* 253 characters, long labels, ending in ".long.example" */

static void
make_long_names(void)
{
	size_t o = 0;
	for (int i = 0; i < 125; i++) {
		name127[o++] = 'a';
		name127[o++] = '.';
	}
	memcpy(name127 + o, "z.z", 4);
	assert_int_equal(strlen(name127), 253);

	/* 3 x 63 + "." separators, then fill to 253 with ".long.example" at the end */
	const char *tail = "long.example";
	size_t want = 253 - strlen(tail);	/* text before the tail, including its dot */
	o = 0;
	while (o < want) {
		size_t room = want - o - 1;	/* keep one for the dot */
		size_t l = room > 63 ? 63 : room;
		memset(name253 + o, 'm', l);
		o += l;
		name253[o++] = '.';
	}
	memcpy(name253 + o, tail, strlen(tail) + 1);
	assert_int_equal(strlen(name253), 253);
}

static struct config *
scenario_config(void)
{
	struct config *c = cfg_new();
	static const char *const allow[] = {"127.0.0.0/8", "::1/128", "10.0.0.0/8", NULL};
	cfg_allow(c, allow);

	static const char *const xf[] = {"lists/policy-xiaomi.txt", NULL};
	cfg_list(c, "xiaomi", CONFIG_ACTION_INHERIT, xf, NULL);
	static const char *const portal[] = {"portal.example.org", "allowed.miui.com", NULL};
	cfg_list(c, "portal", CONFIG_ACTION_INHERIT, NULL, portal);
	static const char *const canary[] = {"use-application-dns.net", NULL};
	cfg_list(c, "canary", CONFIG_ACTION_NXDOMAIN, NULL, canary);
	const char *const ads[] = {"ads.example", "MIUI.com.", "deep.allowed.miui.com", "z.z",
				   name253, NULL};
	cfg_list(c, "ads", CONFIG_ACTION_INHERIT, NULL, ads);

	static const struct group_spec groups[] = {
		{"lab", {"10.20.0.0/16", "2001:db8:20::/48", "10.9.9.9", NULL},
		 {"xiaomi", "ads", "canary", NULL}, {"portal", NULL}, false,
		 CONFIG_ACTION_NXDOMAIN},
		{"banned", {"10.66.0.0/16", NULL}, {NULL}, {"portal", NULL}, true,
		 CONFIG_ACTION_REFUSED},
		{"order", {"10.77.0.0/16", NULL}, {"ads", "xiaomi", NULL}, {NULL}, false,
		 CONFIG_ACTION_INHERIT},
		{"noaction", {"10.88.0.0/16", NULL}, {"xiaomi", "canary", NULL}, {NULL}, false,
		 CONFIG_ACTION_INHERIT},
		{"deny-noaction", {"10.99.0.0/16", NULL}, {NULL}, {NULL}, true,
		 CONFIG_ACTION_INHERIT},
		{"everyone", {NULL}, {"xiaomi", NULL}, {NULL}, false, CONFIG_ACTION_INHERIT},
	};
	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
		cfg_group(c, &groups[i]);
	return c;
}

static int
setup_scenario(void **state)
{
	make_long_names();
	struct config *c = scenario_config();
	struct diag d;
	diag_init(&d);
	struct policy *p = NULL;
	int rc = policy_new(c, &d, &p);
	if (rc != 0) {
		diag_print(&d, stderr, DIAG_NOTE);
		return -1;
	}
	diag_clear(&d);
	*state = p;
	return 0;
}

static int
teardown_scenario(void **state)
{
	struct policy *p = *state;
	policy_unref(&p);
	return 0;
}

enum { L_XIAOMI = 0, L_PORTAL, L_CANARY, L_ADS };
enum { G_LAB = 0, G_BANNED, G_ORDER, G_NOACTION, G_DENY_NOACTION, G_EVERYONE };

struct check_case {
	const char *what;
	const char *client;
	const char *name;	/* NULL: name127, "@253": name253 */
	int group;
	bool blocked;
	enum policy_reason reason;
	enum config_action action;
	int list;
	int rule_label;
	const char *rule;	/* names_suffix_to_text at rule_label, NULL = none */
};

#define A_INH CONFIG_ACTION_INHERIT
#define A_SINK CONFIG_ACTION_SINKHOLE
#define A_NX CONFIG_ACTION_NXDOMAIN
#define A_REF CONFIG_ACTION_REFUSED
#define R_NOGROUP POLICY_REASON_NO_GROUP
#define R_NOMATCH POLICY_REASON_NO_MATCH
#define R_ALLOW POLICY_REASON_ALLOW_LIST
#define R_BLOCK POLICY_REASON_BLOCK_LIST
#define R_DENY POLICY_REASON_DEFAULT_DENY

static const struct check_case check_cases[] = {
	{"exact", "10.20.1.1", "tracking.miui.com", G_LAB, true, R_BLOCK, A_NX, L_XIAOMI, 0,
	 "tracking.miui.com"},
	{"subdomain", "10.20.1.1", "a.b.tracking.miui.com", G_LAB, true, R_BLOCK, A_NX, L_XIAOMI,
	 2, "tracking.miui.com"},
	{"parent listed in two lists: group order", "10.20.1.1", "x.miui.com", G_LAB, true,
	 R_BLOCK, A_NX, L_XIAOMI, 1, "miui.com"},
	{"most specific entry decides", "10.77.0.1", "tracking.miui.com", G_ORDER, true, R_BLOCK,
	 A_SINK, L_XIAOMI, 0, "tracking.miui.com"},
	{"group order among lists", "10.77.0.1", "miui.com", G_ORDER, true, R_BLOCK, A_SINK, L_ADS,
	 0, "miui.com"},
	{"mere string suffix", "10.20.1.1", "notmiui.com", G_LAB, false, R_NOMATCH, A_INH, -1, -1,
	 NULL},
	{"string suffix of a label", "10.20.1.1", "xtracking.miui.com", G_LAB, true, R_BLOCK, A_NX,
	 L_XIAOMI, 1, "miui.com"},
	{"tld only", "10.20.1.1", "com", G_LAB, false, R_NOMATCH, A_INH, -1, -1, NULL},
	{"case", "10.20.1.1", "Tracking.MIUI.Com", G_LAB, true, R_BLOCK, A_NX, L_XIAOMI, 0,
	 "tracking.miui.com"},
	{"trailing dot", "10.20.1.1", "tracking.miui.com.", G_LAB, true, R_BLOCK, A_NX, L_XIAOMI, 0,
	 "tracking.miui.com"},
	{"hosts entry from file", "10.20.1.1", "data.mistat.xiaomi.com", G_LAB, true, R_BLOCK,
	 A_NX, L_XIAOMI, 0, "data.mistat.xiaomi.com"},
	{"wildcard entry from file", "10.20.1.1", "x.wild.xiaomi.net", G_LAB, true, R_BLOCK, A_NX,
	 L_XIAOMI, 1, "wild.xiaomi.net"},
	{"allow wins over block parent", "10.20.1.1", "allowed.miui.com", G_LAB, false, R_ALLOW,
	 A_INH, L_PORTAL, 0, "allowed.miui.com"},
	{"allow wins over block child", "10.20.1.1", "deep.allowed.miui.com", G_LAB, false,
	 R_ALLOW, A_INH, L_PORTAL, 1, "allowed.miui.com"},
	{"allow wins under block child", "10.20.1.1", "x.deep.allowed.miui.com", G_LAB, false,
	 R_ALLOW, A_INH, L_PORTAL, 2, "allowed.miui.com"},
	{"list action over group action", "10.20.1.1", "use-application-dns.net", G_LAB, true,
	 R_BLOCK, A_NX, L_CANARY, 0, "use-application-dns.net"},
	{"list action over global", "10.88.0.1", "use-application-dns.net", G_NOACTION, true,
	 R_BLOCK, A_NX, L_CANARY, 0, "use-application-dns.net"},
	{"global action", "10.88.0.1", "miui.com", G_NOACTION, true, R_BLOCK, A_SINK, L_XIAOMI, 0,
	 "miui.com"},
	{"default deny", "10.66.3.3", "anything.example", G_BANNED, true, R_DENY, A_REF, -1, -1,
	 NULL},
	{"default deny, allowed", "10.66.3.3", "www.portal.example.org", G_BANNED, false, R_ALLOW,
	 A_INH, L_PORTAL, 1, "portal.example.org"},
	{"default deny, global action", "10.99.0.1", "x.example", G_DENY_NOACTION, true, R_DENY,
	 A_SINK, -1, -1, NULL},
	{"root, no match", "10.20.1.1", ".", G_LAB, false, R_NOMATCH, A_INH, -1, -1, NULL},
	{"root, default deny", "10.66.0.1", ".", G_BANNED, true, R_DENY, A_REF, -1, -1, NULL},
	{"127 labels", "10.20.1.1", NULL, G_LAB, true, R_BLOCK, A_NX, L_ADS, 125, "z.z"},
	{"max length", "10.20.1.1", "@253", G_LAB, true, R_BLOCK, A_NX, L_ADS, 0, NULL},
	{"IPv6 client", "2001:db8:20::99", "ads.example", G_LAB, true, R_BLOCK, A_NX, L_ADS, 0,
	 "ads.example"},
	{"IPv4-mapped client", "::ffff:10.9.9.9", "ads.example", G_LAB, true, R_BLOCK, A_NX, L_ADS,
	 0, "ads.example"},
	{"catch-all IPv4", "192.0.2.1", "miui.com", G_EVERYONE, true, R_BLOCK, A_SINK, L_XIAOMI, 0,
	 "miui.com"},
	{"catch-all IPv6", "2001:db8:99::1", "ads.example", G_EVERYONE, false, R_NOMATCH, A_INH,
	 -1, -1, NULL},
	{"catch-all, list of no interest", "192.0.2.1", "use-application-dns.net", G_EVERYONE,
	 false, R_NOMATCH, A_INH, -1, -1, NULL},
};

static void
test_check_table(void **state)
{
	struct policy *p = *state;
	for (size_t i = 0; i < sizeof(check_cases) / sizeof(check_cases[0]); i++) {
		const struct check_case *cc = &check_cases[i];
		const char *text = cc->name == NULL ? name127 :
				   strcmp(cc->name, "@253") == 0 ? name253 : cc->name;
		struct sockaddr_storage ss = addr(cc->client);
		int g = policy_client_group(p, (const struct sockaddr *)&ss);
		if (g != cc->group)
			fail_msg("%s: group %d, expected %d", cc->what, g, cc->group);
		struct names_name n;
		assert_int_equal(names_from_text(&n, text, strlen(text), NULL), 0);
		struct policy_verdict v;
		memset(&v, 0xa5, sizeof(v));
		policy_check(p, g, &n, &v);
		if (v.blocked != cc->blocked || v.reason != cc->reason || v.action != cc->action ||
		    v.group != cc->group || v.list != cc->list || v.rule_label != cc->rule_label)
			fail_msg("%s: got blocked %d reason %d action %d group %d list %d label %d",
				 cc->what, v.blocked, v.reason, v.action, v.group, v.list,
				 v.rule_label);
		if (cc->rule != NULL) {
			char buf[NAMES_MAX_TEXT];
			names_suffix_to_text(&n, (unsigned)v.rule_label, buf);
			assert_string_equal(buf, cc->rule);
		}
	}
}

static void
test_no_group(void **state)
{
	(void)state;
	struct config *c = cfg_new();
	static const char *const dom[] = {"blocked.example", NULL};
	cfg_list(c, "l", CONFIG_ACTION_INHERIT, NULL, dom);
	static const struct group_spec g = {"only", {"10.1.0.0/16", NULL}, {"l", NULL}, {NULL},
					    false, CONFIG_ACTION_INHERIT};
	cfg_group(c, &g);
	struct diag d;
	diag_init(&d);
	struct policy *p = NULL;
	assert_int_equal(policy_new(c, &d, &p), 0);
	struct sockaddr_storage ss = addr("10.2.0.1");
	int grp = policy_client_group(p, (const struct sockaddr *)&ss);
	assert_int_equal(grp, -1);
	assert_false(policy_client_allowed(p, (const struct sockaddr *)&ss)); /* empty allow */
	struct names_name n;
	assert_int_equal(names_from_text(&n, "blocked.example", 15, NULL), 0);
	struct policy_verdict v;
	policy_check(p, grp, &n, &v);
	assert_false(v.blocked);
	assert_int_equal(v.reason, POLICY_REASON_NO_GROUP);
	assert_int_equal(v.group, -1);
	assert_int_equal(v.list, -1);
	policy_check(p, 7, &n, &v);	/* out of range: treated as none */
	assert_int_equal(v.reason, POLICY_REASON_NO_GROUP);
	policy_check(p, 0, &n, &v);
	assert_true(v.blocked);
	assert_null(policy_group_name(p, -1));
	assert_null(policy_list_name(p, -1));
	assert_string_equal(policy_group_name(p, 0), "only");
	assert_string_equal(policy_list_name(p, 0), "l");
	diag_clear(&d);
	policy_unref(&p);
}

struct allowed_case {
	const char *client;
	bool allowed;
};

static const struct allowed_case allowed_cases[] = {
	{"127.0.0.1", true},	{"10.200.1.1", true},	{"::1", true},
	{"::ffff:127.0.0.1", true}, {"192.0.2.1", false},	{"::2", false},
	{"2001:db8::1", false}, {"::ffff:192.0.2.1", false},
};

static void
test_client_allowed(void **state)
{
	struct policy *p = *state;
	for (size_t i = 0; i < sizeof(allowed_cases) / sizeof(allowed_cases[0]); i++) {
		struct sockaddr_storage ss = addr(allowed_cases[i].client);
		if (policy_client_allowed(p, (const struct sockaddr *)&ss) !=
		    allowed_cases[i].allowed)
			fail_msg("%s: expected allowed=%d", allowed_cases[i].client,
				 allowed_cases[i].allowed);
	}
}

static void
test_stats(void **state)
{
	struct policy *p = *state;
	struct policy_list_stats st;
	/* policy-xiaomi.txt: 6 distinct names (one duplicate, one boilerplate), 2 skipped */
	policy_list_stats(p, L_XIAOMI, &st);
	assert_int_equal(st.entries, 6);
	assert_int_equal(st.skipped, 2);
	policy_list_stats(p, L_ADS, &st);
	assert_int_equal(st.entries, 5);
	assert_int_equal(st.skipped, 0);
	policy_list_stats(p, 99, &st);
	assert_int_equal(st.entries, 0);
	/* miui.com is in xiaomi and ads: stored once */
	assert_int_equal(policy_names(p), 6 + 2 + 1 + 5 - 1);
	assert_true(policy_memory(p) > 0);
	assert_string_equal(policy_config(p)->lists[L_CANARY].name, "canary");
	assert_string_equal(policy_list_name(p, L_ADS), "ads");
	assert_string_equal(policy_group_name(p, G_EVERYONE), "everyone");

	struct policy *q = policy_ref(p);
	assert_ptr_equal(q, p);
	policy_unref(&q);
	assert_null(q);
	assert_string_equal(policy_group_name(p, G_LAB), "lab");	/* still alive */
}

static void
test_errors(void **state)
{
	(void)state;
	struct diag d;
	struct policy *p = NULL;

	/* a missing file is an error; the config stays the caller's */
	struct config *c = cfg_new();
	static const char *const files[] = {"lists/policy-xiaomi.txt", "lists/nonexistent.txt",
					    NULL};
	cfg_list(c, "l", CONFIG_ACTION_INHERIT, files, NULL);
	diag_init(&d);
	assert_int_equal(policy_new(c, &d, &p), -ENOENT);
	assert_null(p);
	assert_int_equal(d.nerrors, 1);
	char want[1024];
	snprintf(want, sizeof(want),
		 "test.yaml:11:7: lists.l.files[1]: cannot read list file "
		 "'%s/lists/nonexistent.txt': No such file or directory",
		 VETO_TEST_DATA);
	bool found = false;
	for (size_t i = 0; i < d.n; i++)
		if (d.v[i].level == DIAG_ERROR)
			found = strcmp(d.v[i].text, want) == 0;
	assert_true(found);
	diag_clear(&d);
	config_free(&c);

	/* an invalid inline domain (and the root) is an error with its location */
	c = cfg_new();
	static const char *const bad[] = {"ok.example", "bad..example", ".", NULL};
	cfg_list(c, "inline", CONFIG_ACTION_INHERIT, NULL, bad);
	diag_init(&d);
	assert_int_equal(policy_new(c, &d, &p), -EINVAL);
	assert_null(p);
	assert_int_equal(d.nerrors, 2);
	assert_string_equal(d.v[0].text, "test.yaml:21:9: lists.inline.domains[1]: invalid name "
					 "'bad..example': empty label");
	diag_clear(&d);
	config_free(&c);

	/* boilerplate inline: a warning, not an error */
	c = cfg_new();
	static const char *const lh[] = {"localhost", NULL};
	cfg_list(c, "lh", CONFIG_ACTION_INHERIT, NULL, lh);
	diag_init(&d);
	assert_int_equal(policy_new(c, &d, &p), 0);
	assert_int_equal(d.nerrors, 0);
	assert_int_equal(d.nwarnings, 1);
	assert_int_equal(policy_names(p), 0);
	diag_clear(&d);
	policy_unref(&p);
}

/* A list from a URL reads its downloaded copy; before the first download it is empty, with a
 * warning: the daemon must start (and download) with the network down and no copy yet. */
static void
test_url_list_copy(void **state)
{
	(void)state;
	char dir[] = "/tmp/veto-test-policy-XXXXXX", yaml[512], copy[600];
	struct diag d;
	struct config *c = NULL;
	struct policy *p = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s\nlists:\n  r: {urls: [\"https://x.example/l\"]}\n"
		 "groups: [{name: g, block: [r]}]\n", dir);
	for (int round = 0; round < 2; round++) {
		diag_init(&d);
		assert_int_equal(config_load_text("t.yaml", dir, yaml, strlen(yaml), &d, &c), 0);
		assert_int_equal(policy_new(c, &d, &p), 0);
		assert_int_equal(d.nerrors, 0);
		if (round == 0) {
			assert_int_equal(d.nwarnings, 1);
			assert_non_null(strstr(d.v[0].text, "lists.r.urls[0]: warning: not downloaded yet"));
			assert_int_equal(policy_names(p), 0);
			snprintf(copy, sizeof(copy), "%s/lists", dir);
			assert_int_equal(mkdir(copy, 0700), 0);
			snprintf(copy, sizeof(copy), "%s/lists/r.0.txt", dir);
			FILE *f = fopen(copy, "w");
			assert_non_null(f);
			fputs("a.example\n0.0.0.0 b.example\n", f);
			fclose(f);
		} else {
			assert_int_equal(d.nwarnings, 0);
			assert_int_equal(policy_names(p), 2);
		}
		diag_clear(&d);
		policy_unref(&p);
	}
	unlink(copy);
	snprintf(copy, sizeof(copy), "%s/lists", dir);
	rmdir(copy);
	rmdir(dir);
}

/* --- differential test against a naive matcher --- */

#define DIFF_LISTS 6
#define DIFF_GROUPS 5
#define DIFF_NAMES 30

static const char *const alphabet[] = {"a", "b", "c", "ab", "ba", "xn--a", "a-b", "_c"};

static void
random_name(char *buf, size_t size, unsigned maxlabels, unsigned *seed)
{
	unsigned n = 1 + (unsigned)rand_r(seed) % maxlabels;
	buf[0] = '\0';
	for (unsigned i = 0; i < n; i++) {
		if (i > 0)
			strncat(buf, ".", size - strlen(buf) - 1);
		strncat(buf, alphabet[(unsigned)rand_r(seed) % (sizeof(alphabet) / sizeof(*alphabet))],
			size - strlen(buf) - 1);
	}
}

/* q equals e or ends with "." e: a string compare on label boundaries */
static bool
ref_covers(const char *q, const char *e)
{
	size_t lq = strlen(q), le = strlen(e);
	if (lq == le)
		return strcmp(q, e) == 0;
	return lq > le && q[lq - le - 1] == '.' && strcmp(q + lq - le, e) == 0;
}

static int
ref_labels(const char *s)
{
	int n = 1;
	for (; *s != '\0'; s++)
		n += *s == '.';
	return n;
}

/* The most specific entry of lists idx[0..n) covering q; *list = the first list (in idx
 * order) containing that entry. Returns the entry's label index in q, or -1. */
static int
ref_find(const struct config *c, const size_t *idx, size_t n, const char *q, int *list)
{
	int best = -1;
	size_t bestlen = 0;
	const char *bestent = NULL;
	for (size_t k = 0; k < n; k++) {
		const struct config_list *l = &c->lists[idx[k]];
		for (size_t j = 0; j < l->ndomains; j++)
			if (ref_covers(q, l->domains[j]) &&
			    (bestent == NULL || strlen(l->domains[j]) > bestlen)) {
				bestent = l->domains[j];
				bestlen = strlen(bestent);
			}
	}
	if (bestent == NULL)
		return -1;
	for (size_t k = 0; k < n && best < 0; k++) {
		const struct config_list *l = &c->lists[idx[k]];
		for (size_t j = 0; j < l->ndomains; j++)
			if (strcmp(l->domains[j], bestent) == 0) {
				*list = (int)idx[k];
				best = ref_labels(q) - ref_labels(bestent);
				break;
			}
	}
	return best;
}

static void
ref_check(const struct config *c, int g, const char *q, struct policy_verdict *v)
{
	const struct config_group *cg = &c->groups[g];
	memset(v, 0, sizeof(*v));
	v->group = g;
	v->list = -1;
	v->rule_label = -1;
	v->reason = POLICY_REASON_NO_MATCH;
	int list = -1;
	int label = ref_find(c, cg->allow, cg->nallow, q, &list);
	if (label >= 0) {
		v->reason = POLICY_REASON_ALLOW_LIST;
		v->list = list;
		v->rule_label = label;
		return;
	}
	label = ref_find(c, cg->block, cg->nblock, q, &list);
	enum config_action ga = cg->action != CONFIG_ACTION_INHERIT ? cg->action : c->block.action;
	if (label >= 0) {
		v->blocked = true;
		v->reason = POLICY_REASON_BLOCK_LIST;
		v->list = list;
		v->rule_label = label;
		v->action = c->lists[list].action != CONFIG_ACTION_INHERIT ? c->lists[list].action : ga;
	} else if (cg->default_deny) {
		v->blocked = true;
		v->reason = POLICY_REASON_DEFAULT_DENY;
		v->action = ga;
	}
}

static void
test_differential(void **state)
{
	(void)state;
	unsigned seed = 20240601;
	size_t compared = 0, blocked = 0, allowed = 0;
	for (int round = 0; round < 25; round++) {
		struct config *c = cfg_new();
		for (int l = 0; l < DIFF_LISTS; l++) {
			const char *dom[DIFF_NAMES + 1];
			char store[DIFF_NAMES][64];
			size_t n = 1 + (unsigned)rand_r(&seed) % DIFF_NAMES;
			for (size_t i = 0; i < n; i++) {
				random_name(store[i], sizeof(store[i]), 3, &seed);
				dom[i] = store[i];
			}
			dom[n] = NULL;
			char lname[16];
			snprintf(lname, sizeof(lname), "l%d", l);
			enum config_action a = rand_r(&seed) % 3 == 0 ? CONFIG_ACTION_NODATA :
									  CONFIG_ACTION_INHERIT;
			cfg_list(c, lname, a, NULL, dom);
		}
		for (int g = 0; g < DIFF_GROUPS; g++) {
			struct group_spec s;
			memset(&s, 0, sizeof(s));
			s.name = "g";
			size_t nb = (unsigned)rand_r(&seed) % 4, na = (unsigned)rand_r(&seed) % 3;
			static const char *const names[] = {"l0", "l1", "l2", "l3", "l4", "l5"};
			for (size_t i = 0; i < nb; i++)
				s.block[i] = names[(unsigned)rand_r(&seed) % DIFF_LISTS];
			for (size_t i = 0; i < na; i++)
				s.allow[i] = names[(unsigned)rand_r(&seed) % DIFF_LISTS];
			s.deny = rand_r(&seed) % 4 == 0;
			s.action = rand_r(&seed) % 2 ? CONFIG_ACTION_REFUSED : CONFIG_ACTION_INHERIT;
			cfg_group(c, &s);
		}
		struct diag d;
		diag_init(&d);
		struct policy *p = NULL;
		assert_int_equal(policy_new(c, &d, &p), 0);
		diag_clear(&d);
		for (int k = 0; k < 400; k++) {
			char q[128];
			random_name(q, sizeof(q), 5, &seed);
			struct names_name n;
			assert_int_equal(names_from_text(&n, q, strlen(q), NULL), 0);
			int g = (int)((unsigned)rand_r(&seed) % DIFF_GROUPS);
			struct policy_verdict got, want;
			policy_check(p, g, &n, &got);
			ref_check(policy_config(p), g, q, &want);
			if (got.blocked != want.blocked || got.reason != want.reason ||
			    got.action != want.action || got.list != want.list ||
			    got.rule_label != want.rule_label || got.group != want.group)
				fail_msg("round %d '%s' group %d: got %d/%d/%d/%d/%d, want "
					 "%d/%d/%d/%d/%d",
					 round, q, g, got.blocked, got.reason, got.action, got.list,
					 got.rule_label, want.blocked, want.reason, want.action,
					 want.list, want.rule_label);
			compared++;
			blocked += got.reason == POLICY_REASON_BLOCK_LIST;
			allowed += got.reason == POLICY_REASON_ALLOW_LIST;
		}
		policy_unref(&p);
	}
	/* the random lists must exercise both paths, or the test proves little */
	assert_int_equal(compared, 25 * 400);
	assert_true(blocked > 500);
	assert_true(allowed > 500);
}

/* ---- policy_load: every problem at once, the lists' too, in file order ---- */

#define DATA VETO_TEST_DATA "/config"

static void
expect_diag(const char *file, int rc, const char *const *expect, size_t n)
{
	struct diag d;
	struct policy *p = NULL;
	diag_init(&d);
	assert_int_equal(policy_load(file, &d, &p), rc);
	assert_true(rc == 0 ? p != NULL : p == NULL);
	bool same = d.n == n;
	for (size_t i = 0; same && i < n; i++)
		same = strcmp(d.v[i].text, expect[i]) == 0;
	if (!same) {
		fprintf(stderr, "FAIL %s: expected\n", file);
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "    > %s\n", expect[i]);
		fprintf(stderr, "  got\n");
		for (size_t i = 0; i < d.n; i++)
			fprintf(stderr, "    | %s\n", d.v[i].text);
	}
	assert_true(same);
	policy_unref(&p);
	diag_clear(&d);
}

static void
test_load(void **state)
{
	(void)state;
	/* errors elsewhere: the lists defined without error are still read ('broken' is not) */
	static const char *const errors[] = {
		DATA "/errors-and-lists.yaml:3:3: server.lisen: unknown key (did you mean 'listen'?)",
		DATA "/errors-and-lists.yaml:5:18: lists.gone.files[0]: cannot read list file '" DATA
		     "/lists/does-not-exist.txt': No such file or directory",
		DATA "/errors-and-lists.yaml:7:45: lists.broken.actoin: unknown key (did you mean "
		     "'action'?)",
		DATA "/errors-and-lists.yaml:11:5: groups[0].action: unknown value 'sinkhol' "
		     "(expected sinkhole, nxdomain, nodata, refused)",
		DATA "/../lists/many-bad.txt:1: skipped: unexpected text after the name: 'bad1 name "
		     "with spaces'",
		DATA "/../lists/many-bad.txt:2: skipped: unexpected text after the name: 'bad2 name "
		     "with spaces'",
		DATA "/../lists/many-bad.txt:3: skipped: unexpected text after the name: 'bad3 name "
		     "with spaces'",
		DATA "/../lists/many-bad.txt:4: skipped: unexpected text after the name: 'bad4 name "
		     "with spaces'",
		DATA "/../lists/many-bad.txt:5: skipped: unexpected text after the name: 'bad5 name "
		     "with spaces'",
		DATA "/../lists/many-bad.txt: skipped 7 lines in total, the first 5 shown",
	};
	expect_diag(DATA "/errors-and-lists.yaml", -EINVAL, errors,
		    sizeof(errors) / sizeof(errors[0]));

	/* a list error (found while compiling) goes before a later warning of the checker */
	static const char *const missing[] = {
		DATA "/missing-and-unused.yaml:2:18: lists.gone.files[0]: cannot read list file '"
		DATA "/lists/does-not-exist.txt': No such file or directory",
		DATA "/missing-and-unused.yaml:3:3: lists.spare: warning: used by no group",
	};
	expect_diag(DATA "/missing-and-unused.yaml", -ENOENT, missing,
		    sizeof(missing) / sizeof(missing[0]));

	/* an unreadable configuration: nothing else to read */
	static const char *const none[] = {
		DATA "/nope.yaml: cannot read the configuration: no such file or directory",
	};
	expect_diag(DATA "/nope.yaml", -ENOENT, none, 1);

	static const char *const ok[] = {
		DATA "/example.yaml:20:3: lists.canary: warning: used by no group",
	};
	expect_diag(DATA "/example.yaml", 0, ok, 1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_check_table, setup_scenario,
						teardown_scenario),
		cmocka_unit_test_setup_teardown(test_client_allowed, setup_scenario,
						teardown_scenario),
		cmocka_unit_test_setup_teardown(test_stats, setup_scenario, teardown_scenario),
		cmocka_unit_test(test_no_group),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_url_list_copy),
		cmocka_unit_test(test_differential),
		cmocka_unit_test(test_load),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
