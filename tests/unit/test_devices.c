/*
 * test_devices: device identity: the devices: configuration keys and the group
 * selectors (FILE:LINE:COL messages), group selection for each selector, behavioural signatures,
 * identity from inventory / leases / ARP / the real IEEE registry, EDNS MAC and ECS parsing, the
 * SQLite state (round trip, corrupt file set aside) and the daemon's table on a real loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "catalog.h"
#include "config.h"
#include "config_int.h"
#include "config_harness.h"
#include "devices.h"
#include "devices_store.h"
#include "diag.h"
#include "dnsmsg.h"
#include "names.h"
#include "policy.h"

/* ---- configuration errors ---- */

static const struct error_case error_cases[] = {
	{"unknown devices key", "devices:\n  inventroy: []\n",
	 "t.yaml:2:3: devices.inventroy: unknown key (did you mean 'inventory'?)"},
	{"inventory without mac or ip", "devices:\n  inventory:\n    - name: a\n",
	 "t.yaml:3:7: devices.inventory[0]: missing key 'mac' or 'ip' (at least one)"},
	{"inventory duplicate address",
	 "devices:\n  inventory:\n    - {name: a, ip: 192.0.2.10}\n"
	 "    - {name: b, mac: 00:11:22:33:44:55, ip: 192.0.2.10}\n",
	 "t.yaml:4:7: devices.inventory[1].ip: duplicate address (first at line 3)"},
	{"inventory without name", "devices:\n  inventory:\n    - mac: 00:11:22:33:44:55\n",
	 "t.yaml:3:7: devices.inventory[0]: missing key 'name'"},
	{"inventory bad mac", "devices:\n  inventory:\n    - {name: a, mac: 00:11:22}\n",
	 "t.yaml:3:17: devices.inventory[0].mac: bad MAC address '00:11:22' (expected a unicast "
	 "aa:bb:cc:dd:ee:ff)"},
	{"inventory multicast mac", "devices:\n  inventory:\n    - {name: a, mac: 01:00:5e:00:00:01}\n",
	 "t.yaml:3:17: devices.inventory[0].mac: bad MAC address '01:00:5e:00:00:01' (expected a "
	 "unicast aa:bb:cc:dd:ee:ff)"},
	{"inventory bad ip", "devices:\n  inventory:\n    - {name: a, mac: 00:11:22:33:44:55, ip: x}\n",
	 "t.yaml:3:41: devices.inventory[0].ip: bad address 'x' (expected an IPv4 or IPv6 address)"},
	{"inventory duplicate name",
	 "devices:\n  inventory:\n    - {name: a, mac: 00:11:22:33:44:55}\n"
	 "    - {name: a, mac: 00:11:22:33:44:56}\n",
	 "t.yaml:4:7: devices.inventory[1].name: duplicate device name 'a' (first at line 3)"},
	{"inventory duplicate mac",
	 "devices:\n  inventory:\n    - {name: a, mac: 00:11:22:33:44:55}\n"
	 "    - {name: b, mac: 00-11-22-33-44-55}\n",
	 "t.yaml:4:7: devices.inventory[1].mac: duplicate MAC address '00:11:22:33:44:55' (first at "
	 "line 3)"},
	{"leases bad format", "devices:\n  dhcp_leases:\n    - {file: a, format: isc-dhcp}\n",
	 "t.yaml:3:17: devices.dhcp_leases[0].format: unknown value 'isc-dhcp' (expected dnsmasq, "
	 "dhcpd, kea)"},
	{"leases without format", "devices:\n  dhcp_leases:\n    - {file: a}\n",
	 "t.yaml:3:7: devices.dhcp_leases[0]: missing key 'format' (dnsmasq, dhcpd or kea)"},
	{"leases without file", "devices:\n  dhcp_leases:\n    - {format: kea}\n",
	 "t.yaml:3:7: devices.dhcp_leases[0]: missing key 'file'"},
	{"arp not a bool", "devices:\n  arp: sometimes\n",
	 "t.yaml:2:3: devices.arp: expected true or false, got 'sometimes'"},
	{"arp refresh zero", "devices:\n  arp_refresh_s: 0\n",
	 "t.yaml:2:3: devices.arp_refresh_s: expected an integer from 1 to 86400, got '0'"},
	{"trusted bad cidr", "devices:\n  trusted_forwarders: [10.0.0.1/8]\n",
	 "t.yaml:2:24: devices.trusted_forwarders[0]: bad prefix '10.0.0.1/8': host bits are set "
	 "(did you mean '10.0.0.0/8'?)"},
	{"oui unknown key", "devices:\n  oui: {directory: /x}\n",
	 "t.yaml:2:9: devices.oui.directory: unknown key 'directory' (expected one of dir)"},
	{"signature bad name", "devices:\n  signatures:\n    Xiaomi: [\"bad name!\"]\n",
	 "t.yaml:3:14: devices.signatures.Xiaomi[0]: 'bad name!' is neither a list nor a valid "
	 "name: invalid character"},
	{"signature not a list", "devices:\n  signatures:\n    Xiaomi: connect.rom.miui.com\n",
	 "t.yaml:3:5: devices.signatures.Xiaomi: expected a sequence, got a scalar"},
	{"hostname vendor bad glob",
	 "devices:\n  hostname_vendors:\n    - {pattern: \"Redmi-[\", vendor: Xiaomi}\n",
	 "t.yaml:3:8: devices.hostname_vendors[0].pattern: bad hostname pattern 'Redmi-[': "
	 "unclosed '['"},
	{"hostname vendor missing vendor", "devices:\n  hostname_vendors:\n    - {pattern: \"a*\"}\n",
	 "t.yaml:3:7: devices.hostname_vendors[0]: missing key 'vendor'"},
	{"group bad mac prefix", "groups:\n  - name: g\n    macs: [zz:00]\n",
	 "t.yaml:3:12: groups[0].macs[0]: bad MAC address or prefix 'zz:00' (expected "
	 "aa:bb:cc:dd:ee:ff, aa:bb:cc, aa:bb:cc:d or aa:bb:cc:dd:ee:ff/N)"},
	{"group empty vendors", "groups:\n  - name: g\n    vendors: []\n",
	 "t.yaml:3:5: groups[0].vendors: empty: leave it out, a group needs at least one value per "
	 "selector"},
	{"group bad hostname glob", "groups:\n  - name: g\n    hostnames: [\"a\\\\\"]\n",
	 "t.yaml:3:17: groups[0].hostnames[0]: bad hostname pattern 'a\\': trailing backslash"},
	{"group unknown device", "groups:\n  - name: g\n    devices: [tv]\n",
	 "t.yaml:3:15: groups[0].devices[0]: unknown device 'tv' (not in devices.inventory)"},
	{"group randomised not bool", "groups:\n  - name: g\n    randomised_mac: 2\n",
	 "t.yaml:3:5: groups[0].randomised_mac: expected true or false, got '2'"},
	{"group selector typo", "groups:\n  - name: g\n    vendor: [Xiaomi]\n",
	 "t.yaml:3:5: groups[0].vendor: unknown key (did you mean 'vendors'?)"},
	/* device selectors without a devices: section would never match: once per group, at its
	 * first device selector */
	{"vendors without devices", "groups:\n  - name: g\n    vendors: [Xiaomi]\n",
	 "t.yaml:3:5: groups[0].vendors: matches devices, but device identity is off: add a "
	 "'devices:' section ('devices: {}' is enough)"},
	{"randomised_mac without devices",
	 "groups:\n  - {name: a, clients: [10.0.0.0/8]}\n  - name: b\n    randomised_mac: true\n"
	 "    macs: [aa:bb:cc]\n",
	 "t.yaml:4:5: groups[1].randomised_mac: matches devices, but device identity is off: add "
	 "a 'devices:' section ('devices: {}' is enough)"},
	{"tags without devices", "groups:\n  - {name: g, clients: [10.0.0.0/8], tags: [lab]}\n",
	 "t.yaml:2:38: groups[0].tags: matches devices, but device identity is off: add a "
	 "'devices:' section ('devices: {}' is enough)"},
};

static void
test_config_errors(void **state)
{
	(void)state;
	assert_int_equal(run_cases(error_cases, sizeof(error_cases) / sizeof(error_cases[0]), false),
			 0);
}

/* The signatures the shipped catalog makes: one per vendor and strength. */
static size_t
catalog_signatures(void)
{
	size_t n = 0;
	for (size_t i = 0; i < catalog_nentries; i++) {
		size_t j = 0;
		while (j < i && !(strcmp(catalog_entries[j].vendor, catalog_entries[i].vendor) == 0 &&
				  catalog_entries[j].strength == catalog_entries[i].strength))
			j++;
		n += j == i;
	}
	return n;
}

static void
test_config_values(void **state)
{
	(void)state;
	static const char yaml[] =
		"state_dir: ../var\n"
		"lists:\n"
		"  xs: {domains: [xs.example]}\n"
		"devices:\n"
		"  inventory:\n"
		"    - {name: tv, mac: AA-BB-CC-00-00-01, ip: 192.0.2.7, owner: it, tags: [a, b],"
		" vendor: Samsung}\n"
		"  dhcp_leases:\n"
		"    - {file: leases/dnsmasq.leases, format: dnsmasq}\n"
		"    - {file: /var/lib/kea/kea-leases4.csv, format: kea}\n"
		"  arp: false\n"
		"  arp_refresh_s: 7\n"
		"  trusted_forwarders: [127.0.0.0/8]\n"
		"  oui: false\n"
		"  signatures:\n"
		"    Xiaomi: [xs, connect.rom.miui.com]\n"
		"groups:\n"
		"  - name: g\n"
		"    macs: [aa:bb:cc]\n"
		"    randomised_mac: true\n"
		"  - name: rest\n";
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = load(yaml, &d, &cfg);
	if (rc != 0)
		dump(&d);
	assert_int_equal(rc, 0);
	assert_true(cfg->devices.enabled);
	assert_int_equal(cfg->devices.ninventory, 1);
	assert_string_equal(cfg->devices.inventory[0].name, "tv");
	assert_int_equal(cfg->devices.inventory[0].mac.b[0], 0xaa);
	assert_true(cfg->devices.inventory[0].has_ip);
	assert_string_equal(cfg->devices.inventory[0].owner, "it");
	assert_string_equal(cfg->devices.inventory[0].vendor, "Samsung");
	assert_int_equal(cfg->devices.inventory[0].ntags, 2);
	assert_int_equal(cfg->devices.nleases, 2);
	assert_string_equal(cfg->devices.leases[0].file, "/etc/veto/leases/dnsmasq.leases");
	assert_int_equal(cfg->devices.leases[1].format, LEASES_KEA);
	assert_false(cfg->devices.arp);
	assert_int_equal(cfg->devices.arp_refresh_s, 7);
	assert_int_equal(cfg->devices.ntrusted, 1);
	assert_null(cfg->devices.oui_dir);
	assert_int_equal(cfg->devices.nsignatures, 1);
	assert_int_equal(cfg->devices.signatures[0].nlists, 1);
	assert_int_equal(cfg->devices.signatures[0].ndomains, 1);
	/* hostname vendors default to the shipped table */
	assert_true(cfg->devices.nhostname_vendors > 5);
	assert_int_equal(cfg->groups[0].nmacs, 1);
	assert_true(cfg->groups[0].has_randomised && cfg->groups[0].randomised);
	assert_string_equal(cfg->state_dir, "/etc/veto/../var");
	/* the list is used by a signature: no "used by no group" warning */
	assert_int_equal(d.nwarnings, 0);
	config_free(&cfg);
	diag_clear(&d);

	/* defaults: without a devices section nothing is on; with one, shipped signatures */
	diag_init(&d);
	assert_int_equal(load("devices:\n", &d, &cfg), 0);
	assert_true(cfg->devices.enabled && cfg->devices.arp);
	assert_string_equal(cfg->devices.arp_file, "/proc/net/arp");
	assert_string_equal(cfg->devices.oui_dir, "/usr/share/ieee-data");
	assert_int_equal(cfg->devices.arp_refresh_s, 30);
	assert_int_equal(cfg->devices.nsignatures, catalog_signatures());
	config_free(&cfg);
	assert_int_equal(load("lists: {}\n", &d, &cfg), 0);
	assert_false(cfg->devices.enabled);
	assert_int_equal(cfg->devices.nsignatures, 0);
	config_free(&cfg);
	diag_clear(&d);
}

/* 'devices: {}' and an empty 'devices:' turn identity on with the defaults, and then device
 * selectors are accepted, before or after the section; one error per group without it. */
static void
test_config_identity_on(void **state)
{
	(void)state;
	static const char *const on[] = {
		"devices: {}\ngroups:\n  - {name: g, vendors: [Xiaomi]}\n  - {name: rest}\n",
		"groups:\n  - {name: g, vendors: [Xiaomi]}\n  - {name: rest}\ndevices:\n",
		("groups:\n  - {name: g, macs: [aa:bb:cc], tags: [x], randomised_mac: false,"
		 " hostnames: [\"a*\"]}\n  - {name: rest}\ndevices: {}\n"),
	};
	for (size_t i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		struct diag d;
		struct config *cfg = NULL;
		diag_init(&d);
		int rc = load(on[i], &d, &cfg);
		if (rc != 0 || d.n != 0)
			dump(&d);
		assert_int_equal(rc, 0);
		assert_int_equal(d.n, 0);
		assert_true(cfg->devices.enabled && cfg->devices.arp);
		assert_string_equal(cfg->devices.arp_file, "/proc/net/arp");
		assert_string_equal(cfg->devices.oui_dir, "/usr/share/ieee-data");
		assert_int_equal(cfg->devices.arp_refresh_s, 30);
		assert_int_equal(cfg->devices.nsignatures, catalog_signatures());
		assert_true(cfg->devices.nhostname_vendors > 5);
		config_free(&cfg);
		diag_clear(&d);
	}

	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(load("groups:\n  - {name: a, vendors: [X], macs: [aa:bb:cc]}\n"
			      "  - {name: b, tags: [t]}\n", &d, &cfg), -EINVAL);
	if (d.nerrors != 2)
		dump(&d);
	assert_int_equal(d.nerrors, 2);
	assert_string_equal(d.v[0].text, "t.yaml:2:15: groups[0].vendors: matches devices, but "
			    "device identity is off: add a 'devices:' section ('devices: {}' is "
			    "enough)");
	assert_string_equal(d.v[1].text, "t.yaml:3:15: groups[1].tags: matches devices, but "
			    "device identity is off: add a 'devices:' section ('devices: {}' is "
			    "enough)");
	diag_clear(&d);
}

/* ---- group selection ---- */

static const char selectors_yaml[] =
	"lists:\n"
	"  l: {domains: [l.example]}\n"
	"devices:\n"
	"  inventory:\n"
	"    - {name: tv, mac: 00:00:5e:00:53:01, tags: [media]}\n"
	"    - {name: laptop, mac: 00:00:5e:00:53:02, tags: [staff, it]}\n"
	"groups:\n"
	"  - {name: bymac, macs: [\"00:00:5e:00:53:aa\", \"00:00:5e:00:54\"]}\n"
	"  - {name: byvendor, vendors: [xiaomi, Oppo]}\n"
	"  - {name: byhost, hostnames: [\"Redmi-*\", \"printer-?\"]}\n"
	"  - {name: bydevice, devices: [tv]}\n"
	"  - {name: bytag, tags: [it]}\n"
	"  - {name: random, randomised_mac: true}\n"
	"  - {name: net, clients: [192.0.2.0/24], vendors: [Vivo]}\n"
	"  - {name: rest, block: [l]}\n";

struct sel_case {
	const char *name;
	const char *ip;
	const char *mac;	/* NULL = none */
	const char *hostname, *vendor, *manufacturer, *device;
	const char *tag;
	const char *group;
	enum policy_selector why;
	int value;
};

static const struct sel_case sel_cases[] = {
	{"exact mac", "198.51.100.1", "00:00:5e:00:53:aa", NULL, NULL, NULL, NULL, NULL, "bymac",
	 POLICY_SEL_MACS, 0},
	{"mac prefix", "198.51.100.1", "00:00:5e:00:54:99", NULL, NULL, NULL, NULL, NULL, "bymac",
	 POLICY_SEL_MACS, 1},
	{"vendor, any case", "198.51.100.1", NULL, NULL, "Xiaomi", NULL, NULL, NULL, "byvendor",
	 POLICY_SEL_VENDORS, 0},
	{"manufacturer", "198.51.100.1", "a4:45:19:00:00:01", NULL, NULL, "Oppo", NULL, NULL,
	 "byvendor", POLICY_SEL_VENDORS, 1},
	{"hostname glob", "198.51.100.1", NULL, "redmi-note-8", NULL, NULL, NULL, NULL, "byhost",
	 POLICY_SEL_HOSTNAMES, 0},
	{"hostname ?", "198.51.100.1", NULL, "printer-3", NULL, NULL, NULL, NULL, "byhost",
	 POLICY_SEL_HOSTNAMES, 1},
	{"hostname no match", "198.51.100.1", NULL, "printer-33", NULL, NULL, NULL, NULL, "rest",
	 POLICY_SEL_ALL, -1},
	{"inventory device", "198.51.100.1", "00:00:5e:00:53:01", NULL, NULL, NULL, "tv", "media",
	 "bydevice", POLICY_SEL_DEVICES, 0},
	{"tag", "198.51.100.1", "00:00:5e:00:53:02", NULL, NULL, NULL, "laptop", "it", "bytag",
	 POLICY_SEL_TAGS, 0},
	{"randomised mac", "198.51.100.1", "02:11:22:33:44:55", NULL, NULL, NULL, NULL, NULL,
	 "random", POLICY_SEL_RANDOMISED, -1},
	{"clients of a mixed group", "192.0.2.9", NULL, NULL, NULL, NULL, NULL, NULL, "net",
	 POLICY_SEL_CLIENTS, -1},
	{"vendor of a mixed group", "198.51.100.1", NULL, NULL, "vivo", NULL, NULL, NULL, "net",
	 POLICY_SEL_VENDORS, 0},
	{"first match wins", "192.0.2.9", "02:00:5e:00:54:01", NULL, "Xiaomi", NULL, NULL, NULL,
	 "byvendor", POLICY_SEL_VENDORS, 0},
	{"nothing known", "198.51.100.1", NULL, NULL, NULL, NULL, NULL, NULL, "rest", POLICY_SEL_ALL,
	 -1},
	{"ipv6", "2001:db8::1", "00:11:22:33:44:55", NULL, NULL, NULL, NULL, NULL, "rest",
	 POLICY_SEL_ALL, -1},
};

static void
sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (strchr(ip, ':') != NULL) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, ip, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)ss;
		in->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
	}
}

static void
test_selectors(void **state)
{
	(void)state;
	struct policy *p = compile_policy(selectors_yaml);
	size_t failed = 0;
	for (size_t i = 0; i < sizeof(sel_cases) / sizeof(sel_cases[0]); i++) {
		const struct sel_case *tc = &sel_cases[i];
		struct sockaddr_storage ss;
		struct policy_identity id;
		struct policy_group_match why;
		const char *tags[1] = {tc->tag};
		sockaddr_of(tc->ip, &ss);
		memset(&id, 0, sizeof(id));
		id.sa = (const struct sockaddr *)&ss;
		if (tc->mac != NULL) {
			assert_int_equal(mac_parse(tc->mac, strlen(tc->mac), &id.mac), 0);
			id.has_mac = true;
			id.randomised = mac_is_randomised(&id.mac);
		}
		id.hostname = tc->hostname;
		id.vendor = tc->vendor;
		id.manufacturer = tc->manufacturer;
		id.device = tc->device;
		id.tags = tags;
		id.ntags = tc->tag != NULL ? 1 : 0;
		int g = policy_client_group_ex(p, &id, &why);
		const char *name = policy_group_name(p, g);
		if (name == NULL || strcmp(name, tc->group) != 0 || why.selector != tc->why ||
		    why.value != tc->value) {
			fprintf(stderr, "FAIL %s: group %s by %s[%d], expected %s by %s[%d]\n",
				tc->name, name ? name : "(none)", policy_selector_name(why.selector),
				why.value, tc->group, policy_selector_name(tc->why), tc->value);
			failed++;
		}
	}
	assert_int_equal(failed, 0);
	/* the address-only call still works and ignores device selectors */
	struct sockaddr_storage ss;
	sockaddr_of("192.0.2.9", &ss);
	assert_string_equal(policy_group_name(p, policy_client_group(p, (struct sockaddr *)&ss)),
			    "net");
	sockaddr_of("198.51.100.1", &ss);
	assert_string_equal(policy_group_name(p, policy_client_group(p, (struct sockaddr *)&ss)),
			    "rest");
	policy_unref(&p);
}

/* A group with only device selectors is not a catch-all: without a last catch-all, an
 * unidentified client has no group. */
static void
test_selectors_not_catch_all(void **state)
{
	(void)state;
	struct policy *p = compile_policy("devices: {}\ngroups:\n  - {name: v, vendors: [Xiaomi]}\n");
	struct sockaddr_storage ss;
	struct policy_identity id = {0};
	sockaddr_of("192.0.2.1", &ss);
	id.sa = (const struct sockaddr *)&ss;
	assert_int_equal(policy_client_group_ex(p, &id, NULL), -1);
	id.vendor = "XIAOMI";
	assert_int_equal(policy_client_group_ex(p, &id, NULL), 0);
	policy_unref(&p);
}

/* ---- signatures ---- */

struct sig_case {
	const char *qname;
	const char *vendor;	/* NULL = none */
};

static void
test_signatures(void **state)
{
	(void)state;
	static const char yaml[] =
		"lists:\n"
		"  oppo: {domains: [heytapmobile.com]}\n"
		"  ads: {domains: [ads.example]}\n"
		"devices:\n"
		"  signatures:\n"
		"    Xiaomi: [connect.rom.miui.com, miui.com]\n"
		"    Oppo: [oppo]\n"
		"    Other: [push.heytapmobile.com]\n"
		"groups:\n"
		"  - {name: g, block: [ads]}\n";
	static const struct sig_case cases[] = {
		{"connect.rom.miui.com", "Xiaomi"},
		{"a.b.connect.rom.miui.com", "Xiaomi"},
		{"tracking.miui.com", "Xiaomi"},
		{"heytapmobile.com", "Oppo"},
		{"x.push.heytapmobile.com", "Other"},	/* the most specific entry wins */
		{"ads.example", NULL},
		{"example.com", NULL},
		{"com", NULL},
	};
	struct policy *p = compile_policy(yaml);
	const struct config *cfg = policy_config(p);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct names_name n;
		const char *why = NULL;
		assert_int_equal(names_from_text(&n, cases[i].qname, strlen(cases[i].qname), &why), 0);
		int s = policy_signature(p, &n);
		const char *v = s >= 0 ? cfg->devices.signatures[s].vendor : NULL;
		if (cases[i].vendor == NULL)
			assert_null(v);
		else
			assert_string_equal(v, cases[i].vendor);
		/* signature names never block by themselves */
		struct policy_verdict verdict;
		policy_check(p, 0, &n, &verdict);
		assert_int_equal(verdict.blocked, strcmp(cases[i].qname, "ads.example") == 0);
	}
	policy_unref(&p);
}

/* ---- identity from the sources ---- */

static const char dnsmasq_leases[] =
	"0 a4:45:19:00:00:01 192.0.2.21 phone1 01:a4:45:19:00:00:01\n"
	"2000000000 02:11:22:33:44:55 192.0.2.22 Redmi-Note-8 *\n"
	"1 00:00:5e:00:53:09 192.0.2.23 expired *\n";

static const char arp_table[] =
	"IP address       HW type     Flags       HW address            Mask     Device\n"
	"192.0.2.24       0x1         0x2         00:00:5e:00:53:24     *        eth0\n";

struct fill_case {
	const char *ip;
	const char *hint;
	const char *key, *hostname, *inventory, *vendor;
	enum identity_source source;
	bool randomised;
};

static void
test_fill(void **state)
{
	(void)state;
	static const char yaml[] =
		"devices:\n"
		"  inventory:\n"
		"    - {name: tv, mac: 00:00:5e:00:53:01, ip: 192.0.2.30, vendor: Samsung}\n"
		"    - {name: desk, mac: 00:00:5e:00:53:24}\n";
	static const struct fill_case cases[] = {
		{"192.0.2.21", NULL, "mac:a4:45:19:00:00:01", "phone1", "", "Xiaomi",
		 IDENTITY_SRC_OUI, false},
		{"192.0.2.22", NULL, "mac:02:11:22:33:44:55", "Redmi-Note-8", "", "Xiaomi",
		 IDENTITY_SRC_HOSTNAME, true},
		{"192.0.2.23", NULL, "ip:192.0.2.23", "", "", "", IDENTITY_SRC_NONE, false},
		{"192.0.2.24", NULL, "mac:00:00:5e:00:53:24", "", "desk", "ICANN, IANA Department",
		 IDENTITY_SRC_OUI, false},
		{"192.0.2.30", NULL, "mac:00:00:5e:00:53:01", "", "tv", "Samsung",
		 IDENTITY_SRC_INVENTORY, false},
		{"192.0.2.21", "0a:00:00:00:00:01", "mac:0a:00:00:00:00:01", "", "", "",
		 IDENTITY_SRC_NONE, true},
	};
	struct policy *p = compile_policy(yaml);
	const struct config *cfg = policy_config(p);
	struct devices_sources src = {0};
	struct leases *tab[1] = {NULL};
	struct diag d;
	diag_init(&d);
	assert_int_equal(leases_parse_buf(LEASES_DNSMASQ, dnsmasq_leases, strlen(dnsmasq_leases),
					  "l", 1000, &d, &tab[0]),
			 0);
	assert_int_equal(neigh_parse_buf(arp_table, strlen(arp_table), "arp", &d, &src.arp), 0);
	assert_int_equal(oui_load_dir(NULL, &d, &src.oui), 0);	/* the real ieee-data */
	src.leases = tab;
	src.nleases = 1;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct fill_case *tc = &cases[i];
		struct sockaddr_storage ss;
		struct devices_record r;
		struct mac hint;
		memset(&r, 0, sizeof(r));
		r.inv = -1;
		sockaddr_of(tc->ip, &ss);
		if (tc->hint != NULL)
			assert_int_equal(mac_parse(tc->hint, strlen(tc->hint), &hint), 0);
		identify_fill(cfg, &src, (struct sockaddr *)&ss, tc->hint ? &hint : NULL, &r);
		fprintf(stderr, "  %s: %s host '%s' inv '%s' vendor '%s' (%d)\n", tc->ip, r.key,
			r.hostname, r.inventory, r.vendor, r.vendor_source);
		assert_string_equal(r.key, tc->key);
		assert_string_equal(r.hostname, tc->hostname);
		assert_string_equal(r.inventory, tc->inventory);
		assert_string_equal(r.vendor, tc->vendor);
		assert_int_equal(r.vendor_source, tc->source);
		assert_int_equal(r.randomised, tc->randomised);
		assert_int_equal(r.nips, 1);
	}
	/* a signature observation outranks the hostname, not the OUI */
	struct devices_record r;
	struct sockaddr_storage ss;
	memset(&r, 0, sizeof(r));
	r.inv = -1;
	r.nobs = 1;
	strcpy(r.obs[0].vendor, "Oppo");
	r.obs[0].count = 1;
	r.obs[0].rom = 1;
	sockaddr_of("192.0.2.22", &ss);
	identify_fill(cfg, &src, (struct sockaddr *)&ss, NULL, &r);
	assert_string_equal(r.vendor, "Oppo");
	assert_int_equal(r.vendor_source, IDENTITY_SRC_SIGNATURE);
	sockaddr_of("192.0.2.21", &ss);
	memset(r.key, 0, sizeof(r.key));
	r.has_mac = false;
	r.hostname[0] = '\0';
	identify_fill(cfg, &src, (struct sockaddr *)&ss, NULL, &r);
	assert_string_equal(r.vendor, "Xiaomi");
	assert_int_equal(r.vendor_source, IDENTITY_SRC_OUI);
	assert_int_equal(r.nips, 2);

	leases_free(&tab[0]);
	neigh_free(&src.arp);
	oui_free(&src.oui);
	diag_clear(&d);
	policy_unref(&p);
}

/* ---- EDNS options ---- */

/* A query for "a.example" A with an OPT record holding the given options. */
static size_t
query_with_opt(uint8_t *buf, const uint8_t *opts, size_t olen)
{
	static const uint8_t head[] = {0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1,
				       1, 'a', 7, 'e', 'x', 'a', 'm', 'p', 'l', 'e', 0, 0, 1, 0, 1};
	size_t n = sizeof(head);
	memcpy(buf, head, n);
	const uint8_t opt[] = {0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, (uint8_t)(olen >> 8),
			       (uint8_t)olen};
	memcpy(buf + n, opt, sizeof(opt));
	n += sizeof(opt);
	memcpy(buf + n, opts, olen);
	return n + olen;
}

static void
test_edns_options(void **state)
{
	(void)state;
	uint8_t pkt[512];
	struct dnsmsg_query q;
	/* MAC + ECS 192.0.2.7/32 */
	static const uint8_t both[] = {0xfd, 0xe9, 0, 6, 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01,
				       0, 8, 0, 8, 0, 1, 32, 0, 192, 0, 2, 7};
	assert_int_equal(dnsmsg_parse_query(pkt, query_with_opt(pkt, both, sizeof(both)), &q), 0);
	assert_int_equal(q.rcode, 0);
	assert_true(q.has_edns_mac);
	assert_memory_equal(q.edns_mac, "\x02\xaa\xbb\xcc\xdd\x01", 6);
	assert_true(q.has_ecs);
	assert_int_equal(q.ecs_family, AF_INET);
	assert_int_equal(q.ecs_prefix, 32);
	assert_memory_equal(q.ecs_addr, "\xc0\x00\x02\x07", 4);
	/* ECS /20 over IPv6 with 3 address octets, bits past the prefix cleared */
	static const uint8_t ecs6[] = {0, 8, 0, 7, 0, 2, 20, 0, 0x20, 0x01, 0x0f};
	assert_int_equal(dnsmsg_parse_query(pkt, query_with_opt(pkt, ecs6, sizeof(ecs6)), &q), 0);
	assert_false(q.has_edns_mac);
	assert_true(q.has_ecs);
	assert_int_equal(q.ecs_family, AF_INET6);
	assert_int_equal(q.ecs_prefix, 20);
	assert_memory_equal(q.ecs_addr, "\x20\x01\x00\x00", 4);
	/* malformed options are ignored, not fatal: a 5-octet MAC, ECS with the wrong length */
	static const uint8_t bad[] = {0xfd, 0xe9, 0, 5, 1, 2, 3, 4, 5, 0, 8, 0, 5, 0, 1, 32, 0, 1};
	assert_int_equal(dnsmsg_parse_query(pkt, query_with_opt(pkt, bad, sizeof(bad)), &q), 0);
	assert_int_equal(q.rcode, 0);
	assert_false(q.has_edns_mac);
	assert_false(q.has_ecs);
	/* an option that overruns the OPT is still FORMERR */
	static const uint8_t over[] = {0xfd, 0xe9, 0, 9, 1, 2, 3, 4, 5, 6};
	assert_int_equal(dnsmsg_parse_query(pkt, query_with_opt(pkt, over, sizeof(over)), &q), 0);
	assert_int_equal(q.rcode, DNSMSG_RCODE_FORMERR);
}

/* ---- the SQLite state ---- */

static void
tmpdir(char *buf, size_t size)
{
	snprintf(buf, size, "/tmp/veto-test-devices-XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static int
collect_cb(void *arg, const struct devices_record *r)
{
	struct devices_record *out = arg;
	size_t i = 0;
	while (out[i].key[0] != '\0')
		i++;
	out[i] = *r;
	return 0;
}

static void
test_store(void **state)
{
	(void)state;
	char dir[64], path[128], err[512];
	struct devices_store *st = NULL;
	struct devices_record recs[2], got[4];
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/devices.db", dir);
	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), -ENOENT);
	assert_int_equal(devices_store_open(path, false, err, sizeof(err), &st), 0);
	memset(recs, 0, sizeof(recs));
	strcpy(recs[0].key, "mac:02:aa:bb:cc:dd:01");
	recs[0].has_mac = true;
	mac_parse("02:aa:bb:cc:dd:01", 17, &recs[0].mac);
	recs[0].randomised = true;
	recs[0].nips = 2;
	recs[0].ips[0].family = AF_INET;
	memcpy(recs[0].ips[0].addr, "\x7f\x00\x00\x1e", 4);
	recs[0].ips[1].family = AF_INET6;
	recs[0].ips[1].addr[15] = 1;
	strcpy(recs[0].vendor, "Xiaomi");
	recs[0].vendor_source = IDENTITY_SRC_SIGNATURE;
	recs[0].nobs = 1;
	strcpy(recs[0].obs[0].vendor, "Xiaomi");
	recs[0].obs[0].count = 3;
	recs[0].obs[0].rom = 2;
	recs[0].obs[0].app = 1;
	recs[0].obs[0].first = 10;
	recs[0].obs[0].last = 20;
	strcpy(recs[0].obs[0].evidence, "connect.rom.miui.com");
	strcpy(recs[0].group, "banned");
	recs[0].first_seen = 10;
	recs[0].last_seen = 20;
	strcpy(recs[1].key, "ip:192.0.2.9");
	strcpy(recs[1].hostname, "printer-1");
	recs[1].first_seen = recs[1].last_seen = 15;
	assert_int_equal(devices_store_save(st, recs, 2), 0);
	/* an update keeps the earliest first_seen */
	recs[1].first_seen = 30;
	recs[1].last_seen = 30;
	assert_int_equal(devices_store_save(st, &recs[1], 1), 0);
	devices_store_close(&st);

	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(devices_store_load(st, collect_cb, got), 0);
	assert_string_equal(got[0].key, "ip:192.0.2.9");	/* newest first */
	assert_int_equal(got[0].first_seen, 15);
	assert_int_equal(got[0].last_seen, 30);
	assert_string_equal(got[1].key, recs[0].key);
	assert_true(got[1].has_mac && got[1].randomised);
	assert_int_equal(got[1].nips, 2);
	assert_memory_equal(&got[1].ips[1], &recs[0].ips[1], sizeof(got[1].ips[1]));
	assert_int_equal(got[1].nobs, 1);
	assert_int_equal(got[1].obs[0].rom, 2);
	assert_int_equal(got[1].obs[0].app, 1);
	assert_int_equal(got[1].obs[0].count, 3);
	assert_string_equal(got[1].obs[0].evidence, "connect.rom.miui.com");
	assert_int_equal(got[1].vendor_source, IDENTITY_SRC_SIGNATURE);
	assert_string_equal(got[1].group, "banned");
	struct devices_record one;
	assert_int_equal(devices_store_get(st, "ip:192.0.2.9", &one), 0);
	assert_string_equal(one.hostname, "printer-1");
	assert_int_equal(devices_store_get(st, "ip:192.0.2.10", &one), -ENOENT);
	assert_int_equal(devices_store_save(st, recs, 1), -EROFS);
	devices_store_close(&st);

	/* a corrupt file is set aside, never fatal */
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs("this is not a database, this is a text file of garbage.............................."
	      "..............................................................................\n",
	      f);
	fclose(f);
	err[0] = '\0';
	assert_int_equal(devices_store_open(path, false, err, sizeof(err), &st), 1);
	assert_non_null(strstr(err, "corrupt device state"));
	memset(got, 0, sizeof(got));
	assert_int_equal(devices_store_load(st, collect_cb, got), 0);
	assert_string_equal(got[0].key, "");
	devices_store_close(&st);
	char cmd[256];
	snprintf(cmd, sizeof(cmd), "ls %s | grep -c corrupt- >/dev/null && rm -rf %s", dir, dir);
	assert_int_equal(system(cmd), 0);
}

/* ---- the daemon's table on a loop ---- */

struct closed {
	int calls;
};

static void
on_closed(void *arg)
{
	((struct closed *)arg)->calls++;
}

struct test_query {
	struct names_name qname;
	struct devices_hints h;
};

static void
query_for(const char *name, struct test_query *tq, const uint8_t *mac)
{
	const char *why = NULL;
	memset(tq, 0, sizeof(*tq));
	assert_int_equal(names_from_text(&tq->qname, name, strlen(name), &why), 0);
	if (mac != NULL) {
		tq->h.has_mac = true;
		memcpy(tq->h.mac, mac, 6);
	}
}

/* One query through the daemon's path: identify, decide, record. Returns the group. */
static int
run_query(struct devices *d, const struct policy *p, const struct sockaddr *client,
	  const struct test_query *tq, struct devices_ident *ident)
{
	struct policy_identity id = {.sa = client};
	struct policy_decision dec;

	devices_identify(d, p, client, &tq->h, &id, ident);
	policy_decide(p, &id, &tq->qname, &dec);
	devices_record_query(d, p, dec.group, &tq->qname, ident);
	return dec.group;
}

struct events {
	struct identity_event v[8];
	size_t n;
};

static void
on_event(void *arg, const struct identity_event *ev)
{
	struct events *e = arg;
	assert_true(e->n < 8);
	e->v[e->n++] = *ev;
}

static void
test_table_on_loop(void **state)
{
	(void)state;
	char dir[64], yaml[1024];
	uv_loop_t loop;
	struct devices *d = NULL;
	struct closed closed = {0};
	static const uint8_t rmac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x01};

	tmpdir(dir, sizeof(dir));
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s/state\n"
		 "devices:\n"
		 "  trusted_forwarders: [127.0.0.30/32]\n"
		 "  arp: false\n"
		 "  oui: false\n"
		 "groups:\n"
		 "  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		 "  - {name: random, randomised_mac: true}\n"
		 "  - {name: rest}\n",
		 dir);
	struct events events = {.n = 0};
	for (int round = 0; round < 2; round++) {
		struct policy *p = compile_policy(yaml);
		struct sockaddr_storage trusted, other;
		struct test_query dq;
		struct devices_ident id;
		assert_int_equal(uv_loop_init(&loop), 0);
		assert_int_equal(devices_new(&loop, p, &d), 0);
		devices_set_event_cb(d, on_event, &events);
		sockaddr_of("127.0.0.30", &trusted);
		sockaddr_of("127.0.0.31", &other);
		if (round == 0) {
			/* untrusted: the MAC option is ignored */
			query_for("x.test", &dq, rmac);
			assert_string_equal(policy_group_name(p, run_query(d, p, (struct sockaddr *)&other, &dq, &id)), "rest");
			assert_false(id.has_mac);
			/* trusted, randomised: group random until its first signature query */
			query_for("y.test", &dq, rmac);
			assert_string_equal(policy_group_name(p, run_query(d, p, (struct sockaddr *)&trusted, &dq, &id)), "random");
			assert_true(id.has_mac);
			assert_string_equal(id.vendor, "");
			query_for("connect.rom.miui.com", &dq, rmac);
			assert_string_equal(policy_group_name(p, run_query(d, p, (struct sockaddr *)&trusted, &dq, &id)), "random");
			assert_string_equal(id.vendor, "Xiaomi");
			assert_int_equal(id.vendor_source, IDENTITY_SRC_SIGNATURE);
		}
		/* from the next query on (and after a restart) it is in the banned group */
		query_for("z.test", &dq, rmac);
		assert_string_equal(policy_group_name(p, run_query(d, p, (struct sockaddr *)&trusted, &dq, &id)), "banned");
		const struct devices_record *r = devices_find(d, "mac:02:aa:bb:cc:dd:01");
		assert_non_null(r);
		assert_int_equal(r->nobs, 1);
		assert_int_equal(r->obs[0].count, 1);
		assert_string_equal(r->obs[0].evidence, "connect.rom.miui.com");
		assert_string_equal(r->group, "banned");
		assert_int_equal(devices_count(d), 2);
		devices_close(d, on_closed, &closed);
		assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
		assert_int_equal(closed.calls, round + 1);
		devices_free(&d);
		assert_int_equal(uv_loop_close(&loop), 0);
		policy_unref(&p);
	}
	/* the events, reported once each (the restart knows both devices: no new first sight) */
	assert_int_equal(events.n, 4);
	assert_string_equal(events.v[0].kind, "first_seen");
	assert_string_equal(events.v[0].key, "ip:127.0.0.31");
	assert_string_equal(events.v[1].kind, "first_seen");
	assert_string_equal(events.v[1].new_group, "random");
	const struct identity_event *ev = &events.v[2];
	assert_string_equal(ev->kind, "vendor");
	assert_string_equal(ev->key, "mac:02:aa:bb:cc:dd:01");
	assert_string_equal(ev->old_group, "random");
	assert_string_equal(ev->new_group, "banned");
	assert_string_equal(ev->vendor, "Xiaomi");
	assert_string_equal(ev->evidence, "connect.rom.miui.com");
	assert_string_equal(events.v[3].kind, "group_change");
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
on_stop_timer(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* A periodic save that fails (the file locked by another writer) loses nothing: its records
 * are saved by the next save (here the last one, at close). */
static void
test_failed_save_requeued(void **state)
{
	(void)state;
	char dir[64], yaml[1024], path[128], err[256];
	uv_loop_t loop;
	uv_timer_t stop;
	struct devices *d = NULL;
	struct closed closed = {0};
	static const uint8_t rmac[6] = {0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0x02};
	struct sockaddr_storage trusted;
	struct test_query dq;
	struct devices_ident id;

	tmpdir(dir, sizeof(dir));
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s/state\n"
		 "devices:\n"
		 "  trusted_forwarders: [127.0.0.30/32]\n"
		 "  arp: false\n"
		 "  oui: false\n"
		 "groups:\n"
		 "  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		 "  - {name: rest}\n",
		 dir);
	struct policy *p = compile_policy(yaml);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(devices_new(&loop, p, &d), 0);
	sockaddr_of("127.0.0.30", &trusted);
	query_for("connect.rom.miui.com", &dq, rmac);
	run_query(d, p, (struct sockaddr *)&trusted, &dq, &id);
	assert_string_equal(id.vendor, "Xiaomi");

	/* another writer holds the file through the first periodic save (at DEVICES_SAVE_MS,
	 * which then waits for its busy timeout and fails) */
	sqlite3 *other = NULL;
	snprintf(path, sizeof(path), "%s/state/devices.db", dir);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	assert_int_equal(uv_timer_init(&loop, &stop), 0);
	assert_int_equal(uv_timer_start(&stop, on_stop_timer, DEVICES_SAVE_MS + 3000, 0), 0);
	uv_run(&loop, UV_RUN_DEFAULT);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);

	uv_close((uv_handle_t *)&stop, NULL);
	devices_close(d, on_closed, &closed);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(closed.calls, 1);
	devices_free(&d);
	assert_int_equal(uv_loop_close(&loop), 0);
	policy_unref(&p);

	struct devices_store *st = NULL;
	struct devices_record rec;
	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), 0);
	assert_int_equal(devices_store_get(st, "mac:02:aa:bb:cc:dd:02", &rec), 0);
	assert_string_equal(rec.vendor, "Xiaomi");
	assert_string_equal(rec.group, "banned");
	devices_store_close(&st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
on_poll_timer(uv_timer_t *t)
{
	uv_stop(t->loop);
}

/* Runs the loop for about ms milliseconds. */
static void
run_for(uv_loop_t *loop, uint64_t ms)
{
	uv_timer_t t;
	assert_int_equal(uv_timer_init(loop, &t), 0);
	assert_int_equal(uv_timer_start(&t, on_poll_timer, ms, 0), 0);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}

/* A reload keeps the lease table of an unchanged lease file: the device is known by its MAC
 * (and stays in its MAC-selected group) from the first query after devices_reconfigure(),
 * before any refresh has run; no new record, no new event. */
static void
test_reload_keeps_sources(void **state)
{
	(void)state;
	char dir[64], yaml[1024], leases[128];
	uv_loop_t loop;
	struct devices *d = NULL;
	struct closed closed = {0};
	struct events events = {.n = 0};
	struct sockaddr_storage client;
	struct test_query tq;
	struct devices_ident ident = {.has_mac = false};

	tmpdir(dir, sizeof(dir));
	snprintf(leases, sizeof(leases), "%s/dnsmasq.leases", dir);
	FILE *f = fopen(leases, "w");
	assert_non_null(f);
	fputs("0 00:00:5e:00:53:41 127.0.0.41 staff-laptop *\n", f);
	fclose(f);
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s/state\n"
		 "devices:\n"
		 "  dhcp_leases: [{file: %s, format: dnsmasq}]\n"
		 "  arp: false\n"
		 "  oui: false\n"
		 "groups:\n"
		 "  - {name: staff, macs: ['00:00:5e:00:53:41']}\n"
		 "  - {name: rest, default: deny}\n",
		 dir, leases);
	struct policy *p = compile_policy(yaml);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(devices_new(&loop, p, &d), 0);
	devices_set_event_cb(d, on_event, &events);
	sockaddr_of("127.0.0.41", &client);
	query_for("www.example.com", &tq, NULL);
	for (int i = 0; i < 100 && !ident.has_mac; i++) {	/* the first refresh lands */
		run_for(&loop, 20);
		memset(&ident, 0, sizeof(ident));
		struct policy_identity id = {.sa = (struct sockaddr *)&client};
		devices_identify(d, p, (struct sockaddr *)&client, &tq.h, &id, &ident);
		devices_record_query(d, p, -1, NULL, &ident);
	}
	assert_true(ident.has_mac);
	size_t known = devices_count(d), nev = events.n;

	for (int round = 0; round < 5; round++) {
		struct policy *np = compile_policy(yaml);
		devices_reconfigure(d, np);
		assert_string_equal(policy_group_name(np, run_query(d, np, (struct sockaddr *)&client,
								    &tq, &ident)),
				    "staff");
		assert_true(ident.has_mac);
		assert_string_equal(ident.device, "staff-laptop");
		policy_unref(&p);
		p = np;
		run_for(&loop, 5);
	}
	assert_int_equal(devices_count(d), known);
	assert_int_equal(events.n, nev);

	devices_close(d, on_closed, &closed);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	devices_free(&d);
	assert_int_equal(uv_loop_close(&loop), 0);
	policy_unref(&p);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A table at devices.max_devices forgets address-only, unattributed devices first, least
 * recently seen first; never an inventory device, and an attributed device only after every
 * unattributed one. The saved state holds what the table holds. */
static void
test_table_bounded(void **state)
{
	(void)state;
	char dir[64], yaml[1024], path[128], err[256];
	uv_loop_t loop;
	struct devices *d = NULL;
	struct closed closed = {0};
	struct sockaddr_storage sa;
	struct test_query tq;
	struct devices_ident ident;
	char ip[32];

	tmpdir(dir, sizeof(dir));
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s/state\n"
		 "devices:\n"
		 "  max_devices: 16\n"
		 "  arp: false\n"
		 "  oui: false\n"
		 "  inventory:\n"
		 "    - {name: printer, mac: '00:00:5e:00:53:99', ip: 127.0.5.1}\n"
		 "groups:\n"
		 "  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		 "  - {name: rest}\n",
		 dir);
	struct policy *p = compile_policy(yaml);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(devices_new(&loop, p, &d), 0);
	/* the inventory device and an address-only handset caught by its ROM's query */
	sockaddr_of("127.0.5.1", &sa);
	query_for("www.example.com", &tq, NULL);
	run_query(d, p, (struct sockaddr *)&sa, &tq, &ident);
	sockaddr_of("127.0.5.2", &sa);
	query_for("connect.rom.miui.com", &tq, NULL);
	run_query(d, p, (struct sockaddr *)&sa, &tq, &ident);
	/* 500 one-off addresses */
	for (int i = 0; i < 500; i++) {
		snprintf(ip, sizeof(ip), "127.0.%d.%d", 6 + i / 200, 1 + i % 200);
		sockaddr_of(ip, &sa);
		query_for("www.example.com", &tq, NULL);
		run_query(d, p, (struct sockaddr *)&sa, &tq, &ident);
		assert_true(devices_count(d) <= 16);
	}
	assert_non_null(devices_find(d, "mac:00:00:5e:00:53:99"));
	const struct devices_record *h = devices_find(d, "ip:127.0.5.2");
	assert_non_null(h);
	assert_string_equal(h->vendor, "Xiaomi");
	/* the handset is still banned */
	sockaddr_of("127.0.5.2", &sa);
	query_for("www.example.com", &tq, NULL);
	assert_string_equal(policy_group_name(p, run_query(d, p, (struct sockaddr *)&sa, &tq,
							   &ident)), "banned");
	/* the newest one-off address is known, the oldest forgotten */
	assert_non_null(devices_find(d, "ip:127.0.8.100"));
	assert_null(devices_find(d, "ip:127.0.6.1"));

	devices_close(d, on_closed, &closed);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	devices_free(&d);
	assert_int_equal(uv_loop_close(&loop), 0);
	policy_unref(&p);

	/* the saved state is as bounded as the table, and holds the handset */
	struct devices_store *st = NULL;
	struct devices_record got[64];
	struct devices_record rec;
	snprintf(path, sizeof(path), "%s/state/devices.db", dir);
	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), 0);
	memset(got, 0, sizeof(got));
	assert_int_equal(devices_store_load(st, collect_cb, got), 0);
	size_t saved = 0;
	while (saved < 64 && got[saved].key[0] != '\0')
		saved++;
	assert_true(saved <= 16);
	assert_int_equal(devices_store_get(st, "ip:127.0.5.2", &rec), 0);
	assert_string_equal(rec.vendor, "Xiaomi");
	devices_store_close(&st);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* A device known only by its address is forgotten after devices.address_ttl_s without a query
 * (at the next save tick); one known by its MAC is not. */
static void
test_address_expiry(void **state)
{
	(void)state;
	char dir[64], yaml[1024];
	uv_loop_t loop;
	struct devices *d = NULL;
	struct closed closed = {0};
	struct sockaddr_storage sa;
	struct test_query tq;
	struct devices_ident ident;
	static const uint8_t mac[6] = {0x00, 0x00, 0x5e, 0x00, 0x53, 0x10};

	tmpdir(dir, sizeof(dir));
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s/state\n"
		 "devices:\n"
		 "  address_ttl_s: 60\n"
		 "  trusted_forwarders: [127.0.0.30/32]\n"
		 "  arp: false\n"
		 "  oui: false\n"
		 "groups:\n"
		 "  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		 "  - {name: rest}\n",
		 dir);
	struct policy *p = compile_policy(yaml);
	assert_int_equal(uv_loop_init(&loop), 0);
	assert_int_equal(devices_new(&loop, p, &d), 0);
	sockaddr_of("127.0.5.2", &sa);
	query_for("connect.rom.miui.com", &tq, NULL);
	run_query(d, p, (struct sockaddr *)&sa, &tq, &ident);
	sockaddr_of("127.0.0.30", &sa);
	query_for("connect.rom.miui.com", &tq, mac);
	run_query(d, p, (struct sockaddr *)&sa, &tq, &ident);
	/* an hour without a query: age both records (the test reaches into the table) */
	struct devices_record *a = (struct devices_record *)devices_find(d, "ip:127.0.5.2");
	struct devices_record *m = (struct devices_record *)devices_find(d, "mac:00:00:5e:00:53:10");
	assert_non_null(a);
	assert_non_null(m);
	a->last_seen -= 3600;
	m->last_seen -= 3600;
	run_for(&loop, DEVICES_SAVE_MS + 500);
	assert_null(devices_find(d, "ip:127.0.5.2"));
	assert_non_null(devices_find(d, "mac:00:00:5e:00:53:10"));
	/* the next device on that address starts clean */
	sockaddr_of("127.0.5.2", &sa);
	query_for("www.example.com", &tq, NULL);
	assert_string_equal(policy_group_name(p, run_query(d, p, (struct sockaddr *)&sa, &tq,
							   &ident)), "rest");

	devices_close(d, on_closed, &closed);
	assert_int_equal(uv_run(&loop, UV_RUN_DEFAULT), 0);
	devices_free(&d);
	assert_int_equal(uv_loop_close(&loop), 0);
	policy_unref(&p);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_config_values),
		cmocka_unit_test(test_config_identity_on),
		cmocka_unit_test(test_selectors),
		cmocka_unit_test(test_selectors_not_catch_all),
		cmocka_unit_test(test_signatures),
		cmocka_unit_test(test_fill),
		cmocka_unit_test(test_edns_options),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_table_on_loop),
		cmocka_unit_test(test_failed_save_requeued),
		cmocka_unit_test(test_reload_keeps_sources),
		cmocka_unit_test(test_table_bounded),
		cmocka_unit_test(test_address_expiry),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
