/*
 * test_control: the control channel's request protocol (parse and format, table-driven: words,
 * escapes, limits), the pure parts of devices_admin (key of a target, pins applied to a record,
 * checks against the configuration), the saved state's pin and evidence columns (round trip,
 * and a file from before them gets them), and an inventory entry keyed by address only.
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

#include "config.h"
#include "config_int.h"
#include "control.h"
#include "devices_admin.h"
#include "devices_store.h"
#include "diag.h"
#include "metrics.h"
#include "identify.h"
#include "names.h"
#include "policy.h"

/* ---- the protocol ---- */

struct parse_case {
	const char *line;
	int rc;
	enum devices_admin_op op;
	const char *target, *vendor, *group;
	const char *err; /* the reason, for rc != 0 */
};

static void
test_parse(void **state)
{
	(void)state;
	static const struct parse_case cases[] = {
	        {"forget aa:bb:cc:dd:ee:ff", 0, DEVICES_ADMIN_FORGET, "aa:bb:cc:dd:ee:ff", "", "",
	         NULL},
	        {"forget 192.0.2.7\r", 0, DEVICES_ADMIN_FORGET, "192.0.2.7", "", "", NULL},
	        {"unpin mac:aa:bb:cc:dd:ee:ff", 0, DEVICES_ADMIN_UNPIN, "mac:aa:bb:cc:dd:ee:ff", "",
	         "", NULL},
	        {"pin nas vendor=Xiaomi", 0, DEVICES_ADMIN_PIN, "nas", "Xiaomi", "", NULL},
	        {"pin nas group=staff", 0, DEVICES_ADMIN_PIN, "nas", "", "staff", NULL},
	        {"pin nas group=staff vendor=TP%20Link", 0, DEVICES_ADMIN_PIN, "nas", "TP Link",
	         "staff", NULL},
	        {"pin living%20room%25 vendor=a", 0, DEVICES_ADMIN_PIN, "living room%", "a", "",
	         NULL},
	        {"", -EINVAL, 0, NULL, NULL, NULL, "empty request"},
	        {"forget", -EINVAL, 0, NULL, NULL, NULL, "forget: no device given"},
	        {"forget  x", -EINVAL, 0, NULL, NULL, NULL, "empty word in the request"},
	        {"forget x ", -EINVAL, 0, NULL, NULL, NULL, "empty word in the request"},
	        {"reboot x", -EINVAL, 0, NULL, NULL, NULL,
	         "unknown request (expected forget, pin, unpin or health)"},
	        {"forgetting x", -EINVAL, 0, NULL, NULL, NULL,
	         "unknown request (expected forget, pin, unpin or health)"},
	        {"forget x y", -EINVAL, 0, NULL, NULL, NULL,
	         "forget: unexpected words after the device"},
	        {"pin x", -EINVAL, 0, NULL, NULL, NULL,
	         "pin: give vendor=VENDOR, group=GROUP or both"},
	        {"pin x colour=red", -EINVAL, 0, NULL, NULL, NULL,
	         "pin: expected vendor=VENDOR or group=GROUP"},
	        {"pin x vendor=", -EINVAL, 0, NULL, NULL, NULL,
	         "pin: expected vendor=VENDOR or group=GROUP"},
	        {"pin x vendor=a vendor=b", -EINVAL, 0, NULL, NULL, NULL,
	         "pin: vendor given twice"},
	        {"pin x vendor=a group=b c", -EINVAL, 0, NULL, NULL, NULL,
	         "too many words in the request"},
	        {"forget %4", -EINVAL, 0, NULL, NULL, NULL,
	         "forget: bad device (escapes, control octets or too long)"},
	        {"forget %zz", -EINVAL, 0, NULL, NULL, NULL,
	         "forget: bad device (escapes, control octets or too long)"},
	        {"forget a%00b", -EINVAL, 0, NULL, NULL, NULL,
	         "forget: bad device (escapes, control octets or too long)"},
	        {"forget a\tb", -EINVAL, 0, NULL, NULL, NULL,
	         "forget: bad device (escapes, control octets or too long)"},
	        {"pin x vendor=%0a", -EINVAL, 0, NULL, NULL, NULL,
	         "pin: bad vendor (escapes, control octets or too long)"},
	        {"pin x vendor=abcdefghijklmnopqrstuvwxyzabcdefgh", -EINVAL, 0, NULL, NULL, NULL,
	         "pin: bad vendor (escapes, control octets or too long)"},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct parse_case *tc = &cases[i];
		struct devices_admin_req req;
		char err[256] = "";
		int rc = control_parse(tc->line, strlen(tc->line), &req, err, sizeof(err));
		fprintf(stderr, "  '%s': %d %s\n", tc->line, rc, err);
		assert_int_equal(rc, tc->rc);
		if (rc != 0) {
			assert_string_equal(err, tc->err);
			continue;
		}
		assert_int_equal(req.op, tc->op);
		assert_string_equal(req.target, tc->target);
		assert_string_equal(req.vendor, tc->vendor);
		assert_string_equal(req.group, tc->group);
	}
}

static void
test_parse_limits(void **state)
{
	(void)state;
	char line[CONTROL_LINE_MAX + 8], err[128];
	struct devices_admin_req req;
	/* a target longer than DEVICES_ADMIN_TARGET_MAX, a line longer than the limit */
	memset(line, 'a', sizeof(line));
	memcpy(line, "forget ", 7);
	assert_int_equal(control_parse(line, 7 + DEVICES_ADMIN_TARGET_MAX, &req, err, sizeof(err)),
	                 -EINVAL);
	assert_int_equal(
	        control_parse(line, 7 + DEVICES_ADMIN_TARGET_MAX - 1, &req, err, sizeof(err)), 0);
	assert_int_equal(control_parse(line, CONTROL_LINE_MAX + 1, &req, err, sizeof(err)),
	                 -EINVAL);
	assert_string_equal(err, "request too long");
}

static void
test_format_round_trip(void **state)
{
	(void)state;
	static const struct devices_admin_req reqs[] = {
	        {DEVICES_ADMIN_FORGET, "aa-bb-cc-dd-ee-ff", "", "", 0},
	        {DEVICES_ADMIN_PIN, "living room 100%", "TP-Link Systems", "staff", 0},
	        {DEVICES_ADMIN_PIN, "nas", "", "g\x7f", 0},
	        {DEVICES_ADMIN_UNPIN, "ip:2001:db8::1", "", "", 0},
	};
	for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
		char line[CONTROL_LINE_MAX + 2], err[128];
		struct devices_admin_req back;
		assert_int_equal(control_format(&reqs[i], line, sizeof(line)), 0);
		size_t n = strlen(line);
		assert_true(n > 0 && line[n - 1] == '\n');
		assert_null(memchr(line, '\n', n - 1));
		int rc = control_parse(line, n - 1, &back, err, sizeof(err));
		if (i == 2) { /* DEL is escaped on the way, refused on arrival */
			assert_int_equal(rc, -EINVAL);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_int_equal(back.op, reqs[i].op);
		assert_string_equal(back.target, reqs[i].target);
		assert_string_equal(back.vendor, reqs[i].vendor);
		assert_string_equal(back.group, reqs[i].group);
	}
	char small[8];
	assert_int_equal(control_format(&reqs[1], small, sizeof(small)), -ENAMETOOLONG);
}

/* ---- devices_admin ---- */

static struct config *
load_cfg(const char *yaml)
{
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	int rc = config_load_text("t.yaml", "/etc/veto", yaml, strlen(yaml), &d, &cfg);
	for (size_t i = 0; rc != 0 && i < d.n; i++)
		fprintf(stderr, "    | %s\n", d.v[i].text);
	assert_int_equal(rc, 0);
	diag_clear(&d);
	return cfg;
}

static const char admin_yaml[] = "devices:\n"
                                 "  inventory:\n"
                                 "    - {name: tv, mac: 00:00:5e:00:53:01, ip: 192.0.2.30}\n"
                                 "    - {name: nas, ip: 192.0.2.10}\n"
                                 "groups:\n"
                                 "  - {name: staff, clients: [10.0.0.0/8]}\n";

static void
test_admin_key(void **state)
{
	(void)state;
	static const struct {
		const char *target;
		int rc;
		const char *key;
		bool addr;
	} cases[] = {
	        {"AA-BB-CC-DD-EE-FF", 0, "mac:aa:bb:cc:dd:ee:ff", false},
	        {"aabb.ccdd.eeff", 0, "mac:aa:bb:cc:dd:ee:ff", false},
	        {"aabbccddeeff", 0, "mac:aa:bb:cc:dd:ee:ff", false},
	        {"mac:AA:BB:CC:DD:EE:FF", 0, "mac:aa:bb:cc:dd:ee:ff", false},
	        {"ip:192.0.2.7", 0, "ip:192.0.2.7", false},
	        {"ip:::ffff:192.0.2.7", 0, "ip:192.0.2.7", false},
	        {"192.0.2.7", 0, "ip:192.0.2.7", true},
	        {"2001:db8::1", 0, "ip:2001:db8::1", true},
	        {"192.0.2.30", 0, "mac:00:00:5e:00:53:01", true}, /* the inventory's MAC there */
	        {"tv", 0, "mac:00:00:5e:00:53:01", false},
	        {"nas", 0, "ip:192.0.2.10", true},
	        {"mac:aa:bb:cc", -EINVAL, NULL, false},
	        {"mac:00:00:00:00:00:00", -EINVAL, NULL, false},
	        {"ip:nowhere", -EINVAL, NULL, false},
	        {"printer", -EINVAL, NULL, false},
	};
	struct config *cfg = load_cfg(admin_yaml);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char key[DEVICES_KEY_MAX] = "";
		struct devices_ip addr;
		int rc = devices_admin_key(cfg, NULL, cases[i].target, key, &addr);
		fprintf(stderr, "  %s: %d %s\n", cases[i].target, rc, key);
		assert_int_equal(rc, cases[i].rc);
		if (rc != 0)
			continue;
		assert_string_equal(key, cases[i].key);
		assert_int_equal(addr.family != 0, cases[i].addr);
	}
	config_free(&cfg);
}

static void
test_admin_apply(void **state)
{
	(void)state;
	struct config *cfg = load_cfg(admin_yaml);
	struct devices_record r;
	char ev[IDENTITY_EVIDENCE_MAX], err[128];
	struct devices_admin_req pin = {DEVICES_ADMIN_PIN, "x", "Xiaomi", "staff", 1000};
	struct devices_admin_req pin_vendor = {DEVICES_ADMIN_PIN, "x", "Oppo", "", 0};
	struct devices_admin_req unpin = {DEVICES_ADMIN_UNPIN, "x", "", "", 7};

	devices_admin_new_record("mac:02:00:00:00:00:01", 100, &r);
	assert_true(r.has_mac && r.randomised);
	r.nobs = 1;
	strcpy(r.obs[0].vendor, "Huawei");
	r.obs[0].count = 3;
	r.obs[0].rom = 1;	/* one name only Huawei's OS resolves */
	identify_vendor(cfg, &r);
	assert_string_equal(r.vendor, "Huawei");

	assert_int_equal(devices_admin_check(cfg, &pin, err, sizeof(err)), 0);
	devices_admin_apply(cfg, &pin, &r, ev, sizeof(ev));
	assert_string_equal(ev, "vendor=Xiaomi group=staff by uid 1000");
	assert_string_equal(r.vendor, "Xiaomi");
	assert_int_equal(r.vendor_source, IDENTITY_SRC_PIN);
	assert_string_equal(r.pin_group, "staff");
	/* a second pin of the vendor only keeps the pinned group */
	devices_admin_apply(cfg, &pin_vendor, &r, ev, sizeof(ev));
	assert_string_equal(ev, "vendor=Oppo group=staff by uid 0");
	assert_string_equal(r.pin_group, "staff");
	devices_admin_apply(cfg, &unpin, &r, ev, sizeof(ev));
	assert_string_equal(ev, "vendor=Oppo group=staff by uid 7");
	assert_string_equal(r.pin_vendor, "");
	assert_string_equal(r.pin_group, "");
	assert_string_equal(r.vendor, "Huawei"); /* the observations again */
	assert_int_equal(r.vendor_source, IDENTITY_SRC_SIGNATURE);
	devices_admin_forget_evidence(&unpin, &r, ev, sizeof(ev));
	assert_string_equal(ev, "vendor=Huawei (signature) by uid 7");

	devices_admin_new_record("ip:192.0.2.10", 100, &r);
	assert_false(r.has_mac);
	assert_int_equal(r.nips, 1);

	struct devices_admin_req bad = {DEVICES_ADMIN_PIN, "x", "", "nope", 0};
	assert_int_equal(devices_admin_check(cfg, &bad, err, sizeof(err)), -EINVAL);
	assert_string_equal(err, "pin: unknown group 'nope' (not in the configuration's groups)");
	struct devices_admin_req none = {DEVICES_ADMIN_PIN, "x", "", "", 0};
	assert_int_equal(devices_admin_check(cfg, &none, err, sizeof(err)), -EINVAL);
	struct devices_admin_req ctl = {DEVICES_ADMIN_PIN, "x", "a\x01", "", 0};
	assert_int_equal(devices_admin_check(cfg, &ctl, err, sizeof(err)), -EINVAL);
	config_free(&cfg);
}

/* An inventory entry keyed by its address names the device behind that address, with or
 * without a MAC known from elsewhere; one with a MAC still wins for that MAC. */
static void
test_inventory_by_address(void **state)
{
	(void)state;
	struct config *cfg = load_cfg(admin_yaml);
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct devices_record r;
	struct mac hint;

	inet_pton(AF_INET, "192.0.2.10", &sin.sin_addr);
	memset(&r, 0, sizeof(r));
	r.inv = -1;
	identify_fill(cfg, NULL, (struct sockaddr *)&sin, NULL, &r);
	assert_string_equal(r.key, "ip:192.0.2.10");
	assert_string_equal(r.inventory, "nas");
	assert_false(r.has_mac);
	memset(&r, 0, sizeof(r));
	r.inv = -1;
	assert_int_equal(mac_parse("00:00:5e:00:53:77", 17, &hint), 0);
	identify_fill(cfg, NULL, (struct sockaddr *)&sin, &hint, &r);
	assert_string_equal(r.key, "mac:00:00:5e:00:53:77");
	assert_string_equal(r.inventory, "nas");
	/* the tv's MAC from another address is still the tv */
	inet_pton(AF_INET, "192.0.2.99", &sin.sin_addr);
	assert_int_equal(mac_parse("00:00:5e:00:53:01", 17, &hint), 0);
	memset(&r, 0, sizeof(r));
	r.inv = -1;
	identify_fill(cfg, NULL, (struct sockaddr *)&sin, &hint, &r);
	assert_string_equal(r.inventory, "tv");
	config_free(&cfg);
}

/* ---- the saved state ---- */

static void
test_store_pins(void **state)
{
	(void)state;
	char dir[] = "/tmp/veto-test-control-XXXXXX", path[256], err[512];
	struct devices_store *st = NULL;
	struct devices_record r, back;
	sqlite3 *db = NULL;

	assert_non_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/devices.db", dir);
	/* a file from before the pin and evidence columns */
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(
	        sqlite3_exec(db,
	                     "CREATE TABLE devices (key TEXT PRIMARY KEY, mac TEXT,"
	                     " randomised INTEGER NOT NULL DEFAULT 0, ips TEXT NOT NULL"
	                     " DEFAULT '', hostname TEXT, client_id TEXT, vendor_class TEXT,"
	                     " inventory TEXT, manufacturer TEXT, oui_vendor TEXT, vendor"
	                     " TEXT, vendor_source TEXT, grp TEXT, first_seen INTEGER NOT"
	                     " NULL, last_seen INTEGER NOT NULL);"
	                     "CREATE TABLE observations (key TEXT NOT NULL, vendor TEXT NOT"
	                     " NULL, count INTEGER NOT NULL, first_seen INTEGER NOT NULL,"
	                     " last_seen INTEGER NOT NULL, evidence TEXT, PRIMARY KEY (key,"
	                     " vendor));"
	                     "INSERT INTO devices (key, ips, vendor, vendor_source, first_seen,"
	                     " last_seen) VALUES ('ip:192.0.2.5', '192.0.2.5', 'Xiaomi',"
	                     " 'signature', 1, 2);"
	                     "INSERT INTO observations VALUES ('ip:192.0.2.5', 'Xiaomi', 4, 1,"
	                     " 2, 'connect.rom.miui.com');",
	                     NULL, NULL, NULL),
	        SQLITE_OK);
	sqlite3_close(db);
	/* read-only, as `veto devices` reads it before the daemon upgraded it */
	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), 0);
	assert_int_equal(devices_store_get(st, "ip:192.0.2.5", &back), 0);
	assert_int_equal(back.obs[0].count, 4);
	assert_int_equal(back.obs[0].rom, 0);
	assert_string_equal(back.pin_vendor, "");
	devices_store_close(&st);
	/* read-write adds the columns; everything round-trips */
	assert_int_equal(devices_store_open(path, false, err, sizeof(err), &st), 0);
	assert_int_equal(devices_store_get(st, "ip:192.0.2.5", &r), 0);
	strcpy(r.pin_vendor, "Oppo");
	strcpy(r.pin_group, "staff");
	r.os_families = IDENTITY_OS_ANDROID | IDENTITY_OS_LINUX;
	r.shared = true;
	r.obs[0].rom = 3;
	r.obs[0].app = 1;
	strcpy(r.obs[0].rom_evidence, "connect.rom.miui.com");
	strcpy(r.obs[0].evidence, "app.example");
	assert_int_equal(devices_store_save(st, &r, 1), 0);
	devices_store_close(&st);
	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), 0);
	assert_int_equal(devices_store_get(st, "ip:192.0.2.5", &back), 0);
	assert_string_equal(back.pin_vendor, "Oppo");
	assert_string_equal(back.pin_group, "staff");
	assert_int_equal(back.os_families, IDENTITY_OS_ANDROID | IDENTITY_OS_LINUX);
	assert_true(back.shared);
	assert_int_equal(back.obs[0].rom, 3);
	assert_int_equal(back.obs[0].app, 1);
	assert_string_equal(back.obs[0].rom_evidence, "connect.rom.miui.com");
	assert_string_equal(back.obs[0].evidence, "app.example");
	devices_store_close(&st);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}


/* ---- the daemon's table ---- */

struct loop_env {
	uv_loop_t loop;
	struct policy *pol;
	struct devices *d;
	int closed;
};

static void
on_closed(void *arg)
{
	((struct loop_env *)arg)->closed++;
}

static void
env_open(struct loop_env *e, const char *yaml)
{
	struct diag d;
	struct config *cfg = NULL;
	diag_init(&d);
	assert_int_equal(config_load_text("t.yaml", "/etc/veto", yaml, strlen(yaml), &d, &cfg), 0);
	assert_int_equal(policy_new(cfg, &d, &e->pol), 0);
	diag_clear(&d);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	assert_int_equal(devices_new(&e->loop, e->pol, &e->d), 0);
	e->closed = 0;
}

/* Closes the table (its last save) and the loop. */
static void
env_close(struct loop_env *e)
{
	devices_close(e->d, on_closed, e);
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(e->closed, 1);
	devices_free(&e->d);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	policy_unref(&e->pol);
}

static void
query_from(struct loop_env *e, const char *ip, const char *name)
{
	struct sockaddr_in sin = {.sin_family = AF_INET};
	struct names_name qn;
	struct policy_identity id;
	struct policy_decision dec;
	struct devices_ident ident;
	const char *why = NULL;
	inet_pton(AF_INET, ip, &sin.sin_addr);
	assert_int_equal(names_from_text(&qn, name, strlen(name), &why), 0);
	devices_identify(e->d, e->pol, (struct sockaddr *)&sin, NULL, &id, &ident);
	policy_decide(e->pol, &id, &qn, &dec);
	devices_record_query(e->d, e->pol, dec.group, &qn, &ident);
}

static int
saved(const char *path, const char *key, struct devices_record *r)
{
	struct devices_store *st = NULL;
	char err[512];
	assert_int_equal(devices_store_open(path, true, err, sizeof(err), &st), 0);
	int rc = devices_store_get(st, key, r);
	devices_store_close(&st);
	return rc;
}

/* forget and pin on the running table: answered, and what the table saves at close (no
 * periodic save in between) is what the administrator asked, also when a device is forgotten
 * and pinned again before a save. */
static void
test_admin_on_loop(void **state)
{
	(void)state;
	char dir[] = "/tmp/veto-test-control-XXXXXX", yaml[512], path[256], msg[256];
	struct loop_env e;
	struct devices_record r;
	struct devices_admin_req forget = {DEVICES_ADMIN_FORGET, "127.0.0.40", "", "", 1000};
	struct devices_admin_req pin = {DEVICES_ADMIN_PIN, "127.0.0.40", "", "staff", 1000};

	assert_non_null(mkdtemp(dir));
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s\n"
		 "devices:\n  arp: false\n  oui: false\n"
		 "  signatures: {Xiaomi: [connect.rom.miui.com]}\n"
		 "groups:\n"
		 "  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		 "  - {name: staff, clients: [10.0.0.0/8]}\n"
		 "  - {name: rest}\n",
		 dir);
	snprintf(path, sizeof(path), "%s/devices.db", dir);

	env_open(&e, yaml);
	query_from(&e, "127.0.0.40", "connect.rom.miui.com");
	assert_string_equal(devices_find(e.d, "ip:127.0.0.40")->vendor, "Xiaomi");
	env_close(&e);
	assert_int_equal(saved(path, "ip:127.0.0.40", &r), 0);

	/* forgotten, then the daemon stops before its next periodic save */
	env_open(&e, yaml);
	assert_int_equal(devices_admin_run(e.d, &forget, msg, sizeof(msg)), 0);
	assert_string_equal(msg, "forgot ip:127.0.0.40 (vendor=Xiaomi (signature) by uid 1000)");
	assert_null(devices_find(e.d, "ip:127.0.0.40"));
	assert_int_equal(devices_admin_run(e.d, &forget, msg, sizeof(msg)), -ENOENT);
	env_close(&e);
	assert_int_equal(saved(path, "ip:127.0.0.40", &r), -ENOENT);

	/* attributed, forgotten and pinned again before any save: the pin is what stays */
	env_open(&e, yaml);
	query_from(&e, "127.0.0.40", "connect.rom.miui.com");
	env_close(&e);
	env_open(&e, yaml);
	assert_int_equal(devices_admin_run(e.d, &forget, msg, sizeof(msg)), 0);
	assert_int_equal(devices_admin_run(e.d, &pin, msg, sizeof(msg)), 0);
	assert_string_equal(devices_find(e.d, "ip:127.0.0.40")->pin_group, "staff");
	env_close(&e);
	assert_int_equal(saved(path, "ip:127.0.0.40", &r), 0);
	assert_string_equal(r.pin_group, "staff");
	assert_int_equal(r.nobs, 0);

	char cmd[400];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

/* The counters' JSON line: sections present only for what runs, numbers as given, and a buffer
 * too small is -ENOSPC with a terminated text. */
static void
test_metrics_json(void **state)
{
	struct metrics m = {
	        .uptime_ms = 61500,
	        .server = {.udp_queries = 10, .tcp_queries = 2, .blocked = 5, .reloads = 1},
	        .cache_on = true,
	        .cache = {.hits = 3, .entries = 7},
	        .devices_on = true,
	        .devices = 4,
	        .nworkers = 2,
	        .udp_shared = true,
	        .worker_queries = {9, 3},
	        .worker_reloads = {1, 1},
	};
	char buf[CONTROL_REPLY_MAX], small[40];

	(void)state;
	assert_int_equal(metrics_json(&m, buf, sizeof(buf)), 0);
	assert_non_null(strstr(buf, "{\"uptime_s\":61,\"queries\":{\"total\":12,\"udp\":10,"));
	assert_non_null(strstr(buf, "\"blocked\":5,"));
	assert_non_null(strstr(buf, "\"cache\":{\"entries\":7,"));
	assert_non_null(strstr(buf, "\"hits\":3,"));
	assert_non_null(strstr(buf, "\"devices\":{\"known\":4}"));
	assert_non_null(strstr(buf, "\"reloads\":{\"ok\":1,\"failed\":0},"));
	assert_non_null(strstr(buf, "\"workers\":{\"count\":2,\"udp_sockets\":\"shared\","
	                            "\"help_requests\":0,\"queries_0\":9,\"reloads_0\":1,"
	                            "\"queries_1\":3,\"reloads_1\":1}}"));
	assert_null(strstr(buf, "querylog")); /* no query log: no section */
	assert_null(strchr(buf, '\n'));
	assert_int_equal(metrics_json(&m, small, sizeof(small)), -ENOSPC);
	assert_true(strlen(small) < sizeof(small));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_parse_limits),
	        cmocka_unit_test(test_format_round_trip),
	        cmocka_unit_test(test_admin_key),
	        cmocka_unit_test(test_admin_apply),
	        cmocka_unit_test(test_inventory_by_address),
	        cmocka_unit_test(test_store_pins),
	        cmocka_unit_test(test_admin_on_loop),
	        cmocka_unit_test(test_metrics_json),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
