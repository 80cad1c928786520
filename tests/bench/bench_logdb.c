/*
 * bench_logdb: the query store at scale. Builds a synthetic database through the writer the
 * daemon uses (logdb_add, batched transactions) and times the read side on it:
 *
 *   bench_logdb PATH [ROWS] [DEVICES] [DAYS]     (defaults 10000000, 2000, 8)
 *
 * Rows are spread evenly over DAYS days ending now, in time order, from DEVICES devices
 * (10.x.y.z, most with a MAC, many with a name "dev-NNNN"), over a few hundred realistic names:
 * popular services, CDNs, and vendor telemetry of which the "banned" group's queries are blocked
 * (about 10% of all rows). An existing file at PATH is reused (only the timings run). Building
 * prints the insert rate and the CPU per row (user + system of the whole process; the writer's
 * cost per row: run with a small ROWS and a fresh PATH to compare writer changes).
 * Then it times, like `veto log --device dev-0043 --since 7d`, `veto log --domain miui.com
 * --since 7d` (100 newest rows each), `veto report attempts --since 7d`, `veto report summary
 * --since 7d` and `veto report device dev-0043 --since 7d` (1000 rows in time order).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "logdb.h"
#include "logdb_reader.h"
#include "querylog.h"

#define DAY_MS 86400000ull

static const char *const popular[] = {
        "www.google.com",
        "clients4.google.com",
        "fonts.googleapis.com",
        "www.gstatic.com",
        "play.googleapis.com",
        "android.clients.google.com",
        "mtalk.google.com",
        "graph.facebook.com",
        "edge-mqtt.facebook.com",
        "scontent.xx.fbcdn.net",
        "g.whatsapp.net",
        "mmg.whatsapp.net",
        "api.twitter.com",
        "www.youtube.com",
        "i.ytimg.com",
        "rr3---sn-4g5e6nzz.googlevideo.com",
        "time.android.com",
        "connectivitycheck.gstatic.com",
        "login.microsoftonline.com",
        "outlook.office365.com",
        "teams.microsoft.com",
        "www.apple.com",
        "gateway.icloud.com",
        "api.spotify.com",
        "d1a2b3c4.cloudfront.net",
        "cdn.jsdelivr.net",
        "ajax.cloudflare.com",
        "www.wikipedia.org",
        "en.m.wikipedia.org",
        "api.github.com",
        "slack.com",
        "zoom.us",
        "www.bbc.co.uk",
        "static.xx.fbcdn.net",
        "ssl.gstatic.com",
        "accounts.google.com",
        "www.amazon.com",
        "m.media-amazon.com",
        "www.netflix.com",
        "occ-0-1-2.1.nflxso.net",
};

/* blocked for the banned group */
static const char *const telemetry[] = {
        "tracking.miui.com",
        "data.mistat.xiaomi.com",
        "api.ad.xiaomi.com",
        "connect.rom.miui.com",
        "sdkconfig.ad.xiaomi.com",
        "tracking.intl.miui.com",
        "abroad.apilocate.amap.com",
        "resolver.msg.xiaomi.net",
        "metok.sys.miui.com",
        "update.miui.com",
        "connectivitycheck.platform.hicloud.com",
        "metrics.data.hicloud.com",
        "grs.hicloud.com",
        "conn1.oppomobile.com",
        "iot.heytapmobi.com",
        "adsfs.oppomobile.com",
        "ck.ads.oppomobile.com",
        "logservice.hicloud.com",
        "sa.api.intl.miui.com",
        "globalapi.ad.xiaomi.com",
};
static const char *const telemetry_list[] = {
        "xiaomi", "xiaomi", "xiaomi", "xiaomi", "xiaomi", "xiaomi", "xiaomi",
        "xiaomi", "xiaomi", "xiaomi", "huawei", "huawei", "huawei", "oppo",
        "oppo",   "oppo",   "oppo",   "huawei", "xiaomi", "xiaomi",
};
static const char *const vendors[] = {"Xiaomi", "Huawei", "OPPO", "Samsung", "Apple", "Dell"};

#define N(a) (sizeof(a) / sizeof(a[0]))

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void
set_qname(struct querylog_record *r, const char *text, unsigned prefix)
{
	struct names_name n;
	const char *why;
	char buf[300];
	int len;

	if (prefix > 0)
		len = snprintf(buf, sizeof(buf), "s%u.%s", prefix, text);
	else
		len = snprintf(buf, sizeof(buf), "%s", text);
	if (len < 0 || (size_t)len >= sizeof(buf) ||
	    names_from_text(&n, buf, (size_t)len, &why) != 0) {
		fprintf(stderr, "bench_logdb: bad name '%s'\n", buf);
		exit(1);
	}
	querylog_record_set_name(r, &n);
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU seconds (user + system) of this process */
static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static uint64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static int
generate(const char *path, uint64_t rows, unsigned devices, unsigned days)
{
	struct logdb_options opt = {.path = path, .retention_days = 0};
	struct logdb *db = NULL;
	uint64_t seed = 0x9e3779b97f4a7c15ull, end = wall_ms();
	uint64_t span = (uint64_t)days * DAY_MS;
	double t0 = now_s(), c0 = cpu_s();

	if (logdb_new(&opt, &db) != 0 || !logdb_is_open(db))
		return -EIO;
	for (uint64_t i = 0; i < rows; i++) {
		struct querylog_record r;
		unsigned dev = (unsigned)(rnd(&seed) % devices);
		bool banned = dev % 10 < 3; /* 30% of the devices are vendor handsets */
		struct sockaddr_in *s4 = (struct sockaddr_in *)&r.client;

		memset(&r, 0, sizeof(r));
		r.ts_ms = end - span + span * i / rows;
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x0a000000u | (dev + 2));
		r.qtype = rnd(&seed) % 4 == 0 ? 28 : 1;
		r.rule_label = -1;
		if (dev % 10 != 9) {
			r.has_mac = true;
			r.mac[0] = dev % 4 == 0 ? 0x02 : 0x3c; /* some randomised */
			r.mac[4] = (uint8_t)(dev >> 8);
			r.mac[5] = (uint8_t)dev;
		}
		if (dev % 3 != 0)
			snprintf(r.device, sizeof(r.device), "dev-%04u", dev);
		if (banned) {
			snprintf(r.vendor, sizeof(r.vendor), "%s", vendors[dev % 3]);
			r.vendor_source = IDENTITY_SRC_SIGNATURE;
		} else if (dev % 5 == 1) {
			snprintf(r.vendor, sizeof(r.vendor), "%s", vendors[3 + dev % 3]);
			r.vendor_source = IDENTITY_SRC_OUI;
		}
		r.has_group = true;
		snprintf(r.group, sizeof(r.group), "%s", banned ? "banned" : "staff");
		uint64_t pick = rnd(&seed);
		if (banned && pick % 3 == 0) {
			size_t t = (size_t)(pick / 3 % N(telemetry));
			set_qname(&r, telemetry[t], 0);
			r.blocked = true;
			r.has_list = true;
			snprintf(r.list, sizeof(r.list), "%s", telemetry_list[t]);
			r.rule_label = 1;
			r.action = QUERYLOG_ACTION_SINKHOLE;
		} else {
			size_t p = (size_t)(pick / 3 % N(popular));
			set_qname(&r, popular[p], pick % 7 == 0 ? (unsigned)(pick >> 40) % 500 : 0);
			r.action = pick % 5 == 0 ? QUERYLOG_ACTION_FORWARD : QUERYLOG_ACTION_CACHE;
			s4 = (struct sockaddr_in *)&r.upstream;
			if (r.action == QUERYLOG_ACTION_FORWARD) {
				s4->sin_family = AF_INET;
				s4->sin_addr.s_addr = htonl(0x7f000001u);
				s4->sin_port = htons(53);
			}
		}
		r.latency_us = (uint32_t)(pick % 20000);
		if (logdb_add(db, &r) != 0)
			return -EIO;
		if (i % 1000000 == 999999)
			fprintf(stderr, "  %llu rows, %.0f rows/s\n", (unsigned long long)i + 1,
			        (double)(i + 1) / (now_s() - t0));
	}
	logdb_free(&db);
	double dt = now_s() - t0, dc = cpu_s() - c0;
	printf("generated %llu rows in %.1f s (%.0f rows/s through logdb_add, %.2f us CPU per "
	       "row)\n",
	       (unsigned long long)rows, dt, (double)rows / dt,
	       rows > 0 ? dc * 1e6 / (double)rows : 0.0);
	return 0;
}

static int
count_row(void *arg, const struct logdb_row *row)
{
	(void)row;
	(*(uint64_t *)arg)++;
	return 0;
}

static int
count_attempt(void *arg, const struct logdb_attempt *a)
{
	(void)a;
	(*(uint64_t *)arg)++;
	return 0;
}

static int
count_summary(void *arg, const struct logdb_summary_row *row)
{
	(void)row;
	(*(uint64_t *)arg)++;
	return 0;
}

int
main(int argc, char **argv)
{
	struct logdb_reader *r = NULL;
	struct stat st;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_logdb PATH [ROWS] [DEVICES] [DAYS]\n");
		return 2;
	}
	const char *path = argv[1];
	uint64_t rows = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000000ull;
	unsigned devices = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 2000;
	unsigned days = argc > 4 ? (unsigned)strtoul(argv[4], NULL, 10) : 8;

	if (stat(path, &st) != 0 && generate(path, rows, devices, days) != 0) {
		fprintf(stderr, "bench_logdb: cannot build '%s'\n", path);
		return 1;
	}
	if (stat(path, &st) == 0)
		printf("database: %.0f MB\n", (double)st.st_size / 1e6);
	/* the writer opens it first: an older schema (logdb_gen.sh makes schema 3 without
	 * rollups) is converted, and timed */
	struct logdb_options opt = {.path = path};
	struct logdb *w = NULL;
	double t0 = now_s(), c0 = cpu_s();
	if (logdb_new(&opt, &w) != 0 || !logdb_is_open(w)) {
		fprintf(stderr, "bench_logdb: '%s': the writer cannot open it\n", path);
		return 1;
	}
	logdb_free(&w);
	printf("writer open (with any conversion): %.1f s, %.1f s CPU\n", now_s() - t0,
	       cpu_s() - c0);
	if (logdb_reader_open(path, &r) != 0)
		return 1;
	uint64_t since = wall_ms() - 7 * DAY_MS;
	enum { ROWS, ATTEMPTS, SUMMARY };
	static const struct {
		const char *what;
		const char *device, *who, *domain;
		int kind;
		uint32_t limit;
		bool all; /* --since all instead of 7d */
	} cases[] = {
	        /* dev-0043: one device in 2000 (every third one has no name) */
	        {"veto log --device dev-0043 --since 7d (100 rows)", "dev-0043", NULL, NULL, ROWS,
	         100, false},
	        {"veto log --domain miui.com --since 7d (100 rows)", NULL, NULL, "miui.com", ROWS,
	         100, false},
	        {"veto log --domain miui.com --since 7d --limit 0 (all)", NULL, NULL, "miui.com",
	         ROWS, 0, false},
	        {"veto report attempts --since 7d", NULL, NULL, NULL, ATTEMPTS, 0, false},
	        {"veto report summary --since 7d", NULL, NULL, NULL, SUMMARY, 0, false},
	        {"veto report device dev-0043 --since 7d (1000 rows)", NULL, "dev-0043", NULL, ROWS,
	         1000, false},
	        {"veto report summary --since all", NULL, NULL, NULL, SUMMARY, 0, true},
	        {"veto log --device dev-0043 --since all (100 rows)", "dev-0043", NULL, NULL, ROWS,
	         100, true},
	        /* logdb_gen.sh's names: one of the 197,500 rarer ones, and a telemetry one */
	        {"veto log --domain h150001.site1.com --since all (100 rows)", NULL, NULL,
	         "h150001.site1.com", ROWS, 100, true},
	        {"veto log --domain t3.miui.com --since all (100 rows)", NULL, NULL, "t3.miui.com",
	         ROWS, 100, true},
	        {"veto report attempts --since all", NULL, NULL, NULL, ATTEMPTS, 0, true},
	};
	for (size_t i = 0; i < N(cases); i++) {
		struct logdb_filter f;
		uint64_t n = 0;
		int rc;
		logdb_filter_init(&f);
		f.since_ms = cases[i].all ? 0 : since;
		f.device.v[0] = cases[i].device;
		f.who = cases[i].who;
		f.chronological = cases[i].who != NULL;
		f.domain.v[0] = cases[i].domain;
		f.limit = cases[i].limit;
		t0 = now_s();
		if (cases[i].kind == ATTEMPTS)
			rc = logdb_report_attempts(r, &f, count_attempt, &n);
		else if (cases[i].kind == SUMMARY)
			rc = logdb_report_summary(r, &f, 10, count_summary, &n);
		else
			rc = logdb_query_rows(r, &f, count_row, &n);
		double dt = now_s() - t0;
		printf("%-58s %8.3f s  %llu rows%s\n", cases[i].what, dt, (unsigned long long)n,
		       rc != 0 ? "  (error)" : "");
	}
	logdb_reader_free(&r);
	return 0;
}
