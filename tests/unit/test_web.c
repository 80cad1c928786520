/*
 * test_web: the console's pages (resolver/web) against a fake implementation of the
 * listener's request/response functions (http_route.h) and a real query store: what each page
 * shows, that store texts are escaped, the filters' "did you mean", the CSV export, the live
 * tail's JSON, and that only the admin role sees actions.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#define LOGDB_HARNESS_TMP "/tmp/test_web.XXXXXX"
#include "logdb_harness.h"

#include "http_route.h"
#include "web.h"
#include "devices_admin.h"
#include "devices_store.h"
#include "web_int.h"
#include <sys/stat.h>

#include "web_fake.h"

/* ---- the fixture ---- */

static char dbpath[512], cfgpath[512], statedir[512];
static struct web *web;

static uint64_t
wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
setup(void **state)
{
	if (setup_dir(state) != 0)
		return -1;
	tmp_path(dbpath, sizeof(dbpath), "q.db");
	snprintf(statedir, sizeof(statedir), "%s/state", tmpdir);
	mkdir(statedir, 0700);
	snprintf(cfgpath, sizeof(cfgpath), "%s/veto.yaml", tmpdir);
	FILE *f = fopen(cfgpath, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "server:\n  listen: [\"127.0.0.1:5399\"]\nupstream:\n  servers: "
	           "[\"127.0.0.1:53\"]\n"
	           "lists:\n  xiaomi: {domains: [\"tracking.miui.com\"]}\n"
	           "groups:\n  - name: staff\n    clients: [\"10.0.0.0/8\"]\n    block: [xiaomi]\n"
	           "  - name: home\n    block: [xiaomi]\n");
	fclose(f);

	struct logdb *db = open_db(dbpath, 0, 0);
	uint64_t now = wall_ms();
	const struct rec recs[] = {
	        {.age_ms = 3600000,
	         .client = "10.0.0.7",
	         .qname = "tracking.miui.com",
	         .group = "staff",
	         .list = "xiaomi",
	         .device = "<script>phone",
	         .vendor = "Xiaomi",
	         .mac = "02:00:00:00:00:07",
	         .blocked = true,
	         .action = 2,
	         .vendor_source = 1},
	        {.age_ms = 1800000,
	         .client = "10.0.0.7",
	         .qname = "tracking.miui.com",
	         .group = "staff",
	         .list = "xiaomi",
	         .device = "<script>phone",
	         .vendor = "Xiaomi",
	         .mac = "02:00:00:00:00:07",
	         .blocked = true,
	         .action = 2,
	         .vendor_source = 1},
	        {.age_ms = 60000,
	         .client = "10.0.0.8",
	         .qname = "www.example.org",
	         .group = "staff"},
	        {.age_ms = 3 * DAY_MS,
	         .client = "192.168.1.9",
	         .qname = "old.example",
	         .group = "home"},
	};
	for (size_t i = 0; i < sizeof(recs) / sizeof(recs[0]); i++) {
		struct querylog_record r;
		make_record(&r, &recs[i]);
		r.ts_ms = now - recs[i].age_ms;
		if (logdb_add(db, &r) != 0)
			return -1;
	}
	struct logdb_event ev = {.ts_ms = now - 1000,
	                         .device = "<b>tv",
	                         .kind = "pin",
	                         .new_group = "staff",
	                         .evidence = "group=staff by uid 0"};
	if (logdb_add_event(db, &ev) != 0 || logdb_commit(db) != 0)
		return -1;
	logdb_free(&db);
	struct web_options o = {.config_path = cfgpath, .database = dbpath, .state_dir = statedir};
	return web_new(&o, &web);
}

static int
teardown(void **state)
{
	web_free(&web);
	return teardown_dir(state);
}

static const struct http_route *
route(const char *path)
{
	size_t n;
	const struct http_route *r = web_routes(web, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].path, path) == 0)
			return &r[i];
	fail_msg("no route %s", path);
	return NULL;
}

/* GET path?k=v&... as role; the response (body owned by the caller). */
static struct http_resp
get(const char *path, enum http_role role, const char *const *kv)
{
	struct http_req req = {.path = path, .role = role};
	struct http_resp resp = {.status = 200};
	for (size_t i = 0; kv != NULL && kv[i] != NULL; i += 2) {
		req.keys[req.nargs] = kv[i];
		req.vals[req.nargs++] = kv[i + 1];
	}
	const struct http_route *r = route(path);
	assert_int_equal(r->fn(r->ctx, &req, &resp), 0);
	if (resp.body == NULL)
		resp.body = strdup("");
	return resp;
}

static void
has(const struct http_resp *resp, const char *needle)
{
	if (strstr(resp->body, needle) == NULL)
		fail_msg("missing '%s' in:\n%s", needle, resp->body);
}

static void
lacks(const struct http_resp *resp, const char *needle)
{
	if (strstr(resp->body, needle) != NULL)
		fail_msg("unexpected '%s' in:\n%s", needle, resp->body);
}

/* ---- the tests ---- */

static void
test_routes(void **state)
{
	(void)state;
	size_t n;
	const struct http_route *r = web_routes(web, &n);
	for (size_t i = 0; i < n; i++) {
		/* only the assets are public, only the action takes a POST and needs an admin */
		bool asset = strncmp(r[i].path, "/static/", 8) == 0;
		assert_int_equal(r[i].min_role == HTTP_ROLE_NONE, asset);
		assert_int_equal(r[i].allow_post, strcmp(r[i].path, "/devices/action") == 0);
		if (r[i].allow_post)
			assert_int_equal(r[i].min_role, HTTP_ROLE_ADMIN);
	}
}

static void
test_overview(void **state)
{
	(void)state;
	struct http_resp p = get("/", HTTP_ROLE_READ, NULL);
	assert_int_equal(p.status, 200);
	has(&p, "<svg");
	has(&p, "Last 24 hours");
	has(&p, "tracking.miui.com");   /* top blocked */
	has(&p, "&lt;script&gt;phone"); /* attempts: escaped */
	has(&p, "&lt;b&gt;tv");         /* events: escaped */
	lacks(&p, "<script>phone");
	lacks(&p, "<b>tv");
	lacks(&p, "style=");   /* the CSP allows no inline style */
	lacks(&p, "<script>"); /* only the static script */
	has(&p, "<script src=\"/static/veto.js\" defer></script>");
	free(p.body);
}

static void
test_attempts_filters(void **state)
{
	(void)state;
	const char *typo[] = {"group", "staf", NULL};
	struct http_resp p = get("/attempts", HTTP_ROLE_READ, typo);
	assert_int_equal(p.status, 400);
	has(&p, "--group: unknown group &#39;staf&#39; (did you mean &#39;staff&#39;?)");
	free(p.body);

	const char *vendor[] = {"vendor", "Xiomi", NULL};
	p = get("/attempts", HTTP_ROLE_READ, vendor);
	assert_int_equal(p.status, 400);
	has(&p, "did you mean &#39;Xiaomi&#39;?");
	free(p.body);

	const char *ok[] = {"group", "staff,home", "list", "xiaomi", NULL};
	p = get("/attempts", HTTP_ROLE_READ, ok);
	assert_int_equal(p.status, 200);
	has(&p, "<td class=\"key\">02:00:00:00:00:07</td>");
	has(&p, "<td class=\"num\">2</td>");
	has(&p, "/attempts.csv?group=staff%2Chome&amp;list=xiaomi");
	free(p.body);

	const char *bad_time[] = {"since", "yesterday", NULL};
	p = get("/attempts", HTTP_ROLE_READ, bad_time);
	assert_int_equal(p.status, 400);
	has(&p, "bad time");
	free(p.body);
}

static void
test_attempts_csv(void **state)
{
	(void)state;
	struct http_resp p = get("/attempts.csv", HTTP_ROLE_READ, NULL);
	assert_string_equal(p.type, "text/csv; charset=utf-8");
	has(&p, "device_key,device,client,mac,vendor,vendor_source,group,attempts,names,");
	has(&p, "02:00:00:00:00:07,<script>phone,10.0.0.7,02:00:00:00:00:07,Xiaomi,");
	assert_non_null(strstr(p.header, "attachment"));
	free(p.body);
}

static void
test_log_and_tail(void **state)
{
	(void)state;
	const char *blocked[] = {"blocked", "1", NULL};
	struct http_resp p = get("/log", HTTP_ROLE_READ, blocked);
	has(&p, "tracking.miui.com");
	lacks(&p, "www.example.org");
	has(&p, "data-query=\"blocked=1\"");
	free(p.body);

	const char *all[] = {"since", "all", NULL};
	p = get("/log", HTTP_ROLE_READ, all);
	has(&p, "old.example");
	free(p.body);

	const char *both[] = {"blocked", "1", "allowed", "1", NULL};
	p = get("/log", HTTP_ROLE_READ, both);
	assert_int_equal(p.status, 400);
	free(p.body);

	/* the tail: rows after an id, oldest first, as JSON */
	const char *after[] = {"after", "2", NULL};
	p = get("/log.json", HTTP_ROLE_READ, after);
	assert_string_equal(p.type, "application/json");
	lacks(&p, "\"id\":1,");
	lacks(&p, "\"id\":2,");
	has(&p, "\"qname\":\"www.example.org\"");
	free(p.body);
	const char *none[] = {"after", "99", NULL};
	p = get("/log.json", HTTP_ROLE_READ, none);
	assert_string_equal(p.body, "[]\n");
	free(p.body);
}

static void
test_devices_roles(void **state)
{
	(void)state;
	/* no device table yet: said so */
	struct http_resp p = get("/devices", HTTP_ROLE_ADMIN, NULL);
	has(&p, "No device table yet");
	free(p.body);

	struct devices_store *st = NULL;
	struct devices_record r;
	char path[600], err[256];
	snprintf(path, sizeof(path), "%s/%s", statedir, DEVICES_DB_FILE);
	assert_int_equal(devices_store_open(path, false, err, sizeof(err), &st), 0);
	devices_admin_new_record("mac:02:00:00:00:00:07", (int64_t)time(NULL), &r);
	snprintf(r.hostname, sizeof(r.hostname), "<img src=x>");
	snprintf(r.group, sizeof(r.group), "staff");
	assert_int_equal(devices_store_save(st, &r, 1), 0);
	devices_store_close(&st);

	p = get("/devices", HTTP_ROLE_READ, NULL);
	has(&p, "&lt;img src=x&gt;");
	lacks(&p, "<img");
	lacks(&p, "/devices/action");
	free(p.body);
	p = get("/devices", HTTP_ROLE_ADMIN, NULL);
	has(&p, "action=\"/devices/action\"");
	has(&p, "name=\"csrf\" value=\"TOKEN123\"");
	has(&p, "<button type=\"submit\" class=\"pin\">Pin</button></form></details>");
	free(p.body);

	const char *typo[] = {"group", "staf", NULL};
	p = get("/devices", HTTP_ROLE_READ, typo);
	assert_int_equal(p.status, 400);
	has(&p, "did you mean &#39;staff&#39;?");
	free(p.body);
	const char *text[] = {"q", "nothing-like-it", NULL};
	p = get("/devices", HTTP_ROLE_READ, text);
	has(&p, "0 of 1 devices");
	free(p.body);
}

static void
test_action(void **state)
{
	(void)state;
	/* a GET is refused; a POST without a daemon says nothing changed */
	struct http_resp p = get("/devices/action", HTTP_ROLE_ADMIN, NULL);
	assert_int_equal(p.status, 405);
	free(p.body);

	struct http_req req = {.path = "/devices/action",
	                       .post = true,
	                       .role = HTTP_ROLE_ADMIN,
	                       .keys = {"op", "key"},
	                       .vals = {"forget", "02:00:00:00:00:07"},
	                       .nargs = 2};
	struct http_resp resp = {.status = 200};
	const struct http_route *r = route("/devices/action");
	assert_int_equal(r->fn(r->ctx, &req, &resp), 0);
	assert_int_equal(resp.status, 303);
	assert_non_null(strstr(resp.location, "/devices?done=error&msg="));
	assert_non_null(strstr(resp.location, "nothing%20changed"));
	free(resp.body);

	/* a pin to an unknown group is refused before asking the daemon */
	struct http_req pin = {.path = "/devices/action",
	                       .post = true,
	                       .role = HTTP_ROLE_ADMIN,
	                       .keys = {"op", "key", "group"},
	                       .vals = {"pin", "02:00:00:00:00:07", "nope"},
	                       .nargs = 3};
	struct http_resp pr = {.status = 200};
	assert_int_equal(r->fn(r->ctx, &pin, &pr), 0);
	assert_int_equal(pr.status, 303);
	assert_non_null(strstr(pr.location, "nope"));
	assert_null(strstr(pr.location, "nothing%20changed"));
	free(pr.body);
}

static void
test_static(void **state)
{
	(void)state;
	struct http_resp p = get("/static/veto.css", HTTP_ROLE_NONE, NULL);
	assert_string_equal(p.type, "text/css; charset=utf-8");
	has(&p, "svg.bars");
	assert_int_equal(p.len, web_asset_css_len);
	free(p.body);
	p = get("/static/veto.js", HTTP_ROLE_NONE, NULL);
	has(&p, "/log.json?after=");
	free(p.body);
}

static void
test_policy_without_daemon(void **state)
{
	(void)state;
	struct http_resp p = get("/policy", HTTP_ROLE_READ, NULL);
	has(&p, "The daemon did not answer");
	free(p.body);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_routes),
	        cmocka_unit_test(test_overview),
	        cmocka_unit_test(test_attempts_filters),
	        cmocka_unit_test(test_attempts_csv),
	        cmocka_unit_test(test_log_and_tail),
	        cmocka_unit_test(test_devices_roles),
	        cmocka_unit_test(test_action),
	        cmocka_unit_test(test_static),
	        cmocka_unit_test(test_policy_without_daemon),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
