/*
 * bench_pgstore: the PostgreSQL sink of the query log alone (pgstore.h), the path the writer
 * thread takes with store.postgresql: COPY text, staging table, rows and three rollups per
 * transaction.
 *
 *   bench_pgstore CONNINFO [ROWS] [DEVICES]      (defaults 1000000, 2000)
 *
 * Waits for the connection (schema and partitions made), adds ROWS synthetic records spread
 * over the last hour (2,000 devices, a few dozen names with some random prefixes, 10% blocked),
 * ticks like the writer (every 50 ms of work), never more than two batches ahead of what is
 * committed (so it measures the sender, not the spool), and prints rows/s (wall clock, until
 * the last commit) and the CPU per row of this process (user + system: formatting and libpq;
 * the server's own cost is not in it). The spool goes to /tmp/veto-bench-pgstore/spool.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "config.h"
#include "pgstore.h"
#include "querylog.h"

static const char *const names[] = {
        "www.google.com",     "clients4.google.com", "graph.facebook.com", "g.whatsapp.net",
        "api.twitter.com",    "www.youtube.com",     "i.ytimg.com",        "time.android.com",
        "teams.microsoft.com", "gateway.icloud.com", "api.spotify.com",    "cdn.jsdelivr.net",
        "tracking.miui.com",  "data.mistat.xiaomi.com", "api.ad.xiaomi.com", "hicloud.com",
};

static uint64_t
rnd(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static uint64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	clock_gettime(id, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void
make(struct querylog_record *r, uint64_t *seed, uint64_t ts, unsigned devices)
{
	unsigned dev = (unsigned)(rnd(seed) % devices);
	uint64_t pick = rnd(seed);
	size_t n = pick % (sizeof(names) / sizeof(names[0]));
	struct sockaddr_in *s4 = (struct sockaddr_in *)&r->client;
	struct names_name nm;
	const char *why;
	char buf[300];

	memset(r, 0, sizeof(*r));
	r->ts_ms = ts;
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(0x0a000000u | (dev + 2));
	r->qtype = pick % 4 == 0 ? 28 : 1;
	r->rule_label = -1;
	r->has_mac = dev % 10 != 9;
	r->mac[4] = (uint8_t)(dev >> 8);
	r->mac[5] = (uint8_t)dev;
	if (dev % 3 != 0)
		snprintf(r->device, sizeof(r->device), "dev-%04u", dev);
	r->has_group = true;
	snprintf(r->group, sizeof(r->group), "%s", dev % 10 < 3 ? "banned" : "staff");
	int len = pick % 7 == 0 ? snprintf(buf, sizeof(buf), "s%u.%s", (unsigned)(pick >> 40) % 500,
	                                   names[n])
	                        : snprintf(buf, sizeof(buf), "%s", names[n]);
	if (names_from_text(&nm, buf, (size_t)len, &why) == 0)
		querylog_record_set_name(r, &nm);
	if (n >= 12 && dev % 10 < 3) {
		r->blocked = r->has_list = true;
		snprintf(r->list, sizeof(r->list), "xiaomi");
		r->rule_label = 1;
		r->action = QUERYLOG_ACTION_SINKHOLE;
	} else {
		r->action = pick % 5 == 0 ? QUERYLOG_ACTION_FORWARD : QUERYLOG_ACTION_CACHE;
		if (r->action == QUERYLOG_ACTION_FORWARD) {
			s4 = (struct sockaddr_in *)&r->upstream;
			s4->sin_family = AF_INET;
			s4->sin_addr.s_addr = htonl(0x7f000001u);
			s4->sin_port = htons(53);
		}
	}
	r->latency_us = (uint32_t)(pick % 20000);
}

int
main(int argc, char **argv)
{
	struct config cfg;
	struct pgstore *ps = NULL;
	struct pgstore_stats st;
	uint64_t rows = argc > 2 ? strtoull(argv[2], NULL, 10) : 1000000;
	unsigned devices = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 2000;
	uint64_t seed = 0x9e3779b97f4a7c15ull;

	if (argc < 2 || devices == 0) {
		fprintf(stderr, "usage: bench_pgstore CONNINFO [ROWS] [DEVICES]\n");
		return 2;
	}
	static char instance[] = "bench", state_dir[] = "/tmp/veto-bench-pgstore";
	memset(&cfg, 0, sizeof(cfg));
	cfg.store.postgresql = argv[1];
	cfg.store.instance = instance;
	cfg.store.spool_mb = 1024;
	cfg.state_dir = state_dir;
	if (pgstore_new(&cfg, &ps) != 0)
		return 1;
	pgstore_start(ps);
	for (int i = 0; i < 600; i++) {
		pgstore_tick(ps, clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_REALTIME));
		pgstore_stats(ps, &st);
		if (st.state == PGSTORE_UP)
			break;
		struct timespec ts = {0, 50000000L};
		nanosleep(&ts, NULL);
	}
	if (st.state != PGSTORE_UP) {
		fprintf(stderr, "bench_pgstore: no connection\n");
		pgstore_free(&ps);
		return 1;
	}
	uint64_t stored0 = st.stored, end = clock_ms(CLOCK_REALTIME);
	uint64_t t0 = clock_ms(CLOCK_MONOTONIC), last_tick = t0;
	double c0 = cpu_s();
	for (uint64_t i = 0; i < rows; i++) {
		struct querylog_record r;
		make(&r, &seed, end - 3600000 + 3600000 * i / rows, devices);
		pgstore_add(ps, &r);
		if ((i & 1023) == 0) {
			uint64_t now = clock_ms(CLOCK_MONOTONIC);
			if (now - last_tick >= 50) {
				pgstore_tick(ps, now, clock_ms(CLOCK_REALTIME));
				last_tick = now;
			}
			/* at most two batches ahead of the sender: its rate, not the spool's */
			for (;;) {
				pgstore_stats(ps, &st);
				if (i - (st.stored - stored0) <= 2 * PGSTORE_BATCH_ROWS)
					break;
				struct timespec ts = {0, 1000000L};
				nanosleep(&ts, NULL);
				now = clock_ms(CLOCK_MONOTONIC);
				pgstore_tick(ps, now, clock_ms(CLOCK_REALTIME));
			}
		}
	}
	for (int k = 0; k < 6000; k++) { /* the last batches, 60 s at most */
		pgstore_tick(ps, clock_ms(CLOCK_MONOTONIC), clock_ms(CLOCK_REALTIME));
		pgstore_stats(ps, &st);
		if (st.stored - stored0 + st.lost >= rows)
			break;
		struct timespec ts = {0, 10000000L};
		nanosleep(&ts, NULL);
	}
	pgstore_finish(ps);
	uint64_t dt = clock_ms(CLOCK_MONOTONIC) - t0;
	double dc = cpu_s() - c0;
	pgstore_stats(ps, &st);
	printf("bench_pgstore: %llu rows stored (%llu spooled, %llu lost) in %.2f s: %.0f rows/s; "
	       "%.2f us CPU per row in this process\n",
	       (unsigned long long)(st.stored - stored0), (unsigned long long)st.spooled_rows,
	       (unsigned long long)st.lost, (double)dt / 1000.0,
	       dt > 0 ? (double)(st.stored - stored0) * 1000.0 / (double)dt : 0.0,
	       rows > 0 ? dc * 1e6 / (double)rows : 0.0);
	pgstore_free(&ps);
	return st.stored - stored0 == rows ? 0 : 1;
}
