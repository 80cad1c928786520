/*
 * bench_querylog: cost of querylog_submit() on the loop thread, with the writer thread running
 * and writing to a file on disk; and the cost of querylog_format() on the writer thread.
 *
 * usage: bench_querylog [records] [dir]   (default 2000000 records, a temporary dir in /tmp)
 *
 * ns/submit is CPU time of the submitting thread (clock_gettime per burst of submits).
 * Phases: "paced" submits in bursts of 100 records every 1 ms (about 100k records/s, a busy
 * resolver): nothing should be dropped; "flood" submits as fast as possible: the ring fills and
 * records are dropped, which shows the cost of the drop path too; "sinks": both sinks (JSON
 * lines and database) on the soak's mix at RATE records a second (default 50000; SINKS=file or
 * SINKS=db for one sink; SINKS_ONLY=1 skips the other phases): the writer thread's CPU per
 * record. "direct" (DIRECT=1, instead of "sinks"): the same records through the writer's two
 * sinks on this one thread (querylog_format into 64 KiB writes; logdb_add, with logdb_tick on a
 * clock that advances 1/RATE s a record, so transactions are as large as at RATE whatever the
 * speed): run it under `valgrind --tool=callgrind` for the instructions per record of each
 * sink at a given rate. MIX=repeat: 95% of the records ask names seen before (5,000 of them,
 * 10% blocked), 5% names never seen, instead of the soak's 30% never seen.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "logdb.h"
#include "querylog.h"

static uint64_t
clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t
now_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

/* CPU time of this thread: the submit cost without the noise of being preempted. */
static uint64_t
cpu_ns(void)
{
	return clock_ns(CLOCK_THREAD_CPUTIME_ID);
}

static void
make_record(struct querylog_record *r)
{
	static const uint8_t wire[] = {8,   't', 'r', 'a', 'c', 'k', 'i', 'n', 'g', 4,
	                               'm', 'i', 'u', 'i', 3,   'c', 'o', 'm', 0};
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->client;

	memset(r, 0, sizeof(*r));
	r->ts_ms = 1795319902123ull;
	sin->sin_family = AF_INET;
	inet_pton(AF_INET, "10.0.0.7", &sin->sin_addr);
	memcpy(r->qname_wire, wire, sizeof(wire));
	r->qname_len = sizeof(wire);
	r->qtype = 1;
	r->blocked = true;
	r->has_group = r->has_list = true;
	strcpy(r->group, "lab");
	strcpy(r->list, "xiaomi");
	r->rule_label = 1;
	r->action = QUERYLOG_ACTION_SINKHOLE;
	r->latency_us = 41;
}

static int
run_phase(const char *name, const char *path, unsigned long n, bool paced)
{
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	uint64_t busy = 0;
	unsigned long rejected = 0;

	memset(&cfg, 0, sizeof(cfg));
	cfg.log.queries = CONFIG_LOG_ALL;
	cfg.log.file = (char *)(uintptr_t)path;
	int rc = querylog_new(&cfg, &ql);
	if (rc != 0) {
		fprintf(stderr, "bench_querylog: '%s': %s\n", path, strerror(-rc));
		return 1;
	}
	make_record(&r);
	uint64_t start = now_ns();
	for (unsigned long i = 0; i < n;) {
		unsigned long burst = paced ? 100 : 10000;
		uint64_t t0 = cpu_ns();
		for (unsigned long k = 0; k < burst && i < n; k++, i++) {
			r.latency_us = (uint32_t)i;
			if (querylog_submit(ql, &r) != 0)
				rejected++;
		}
		busy += cpu_ns() - t0;
		if (paced) {
			struct timespec ts = {0, 1000000L};
			nanosleep(&ts, NULL);
		}
	}
	uint64_t submitted = now_ns();
	uint64_t dropped = querylog_dropped(ql);
	querylog_free(&ql);
	uint64_t end = now_ns();

	printf("%-6s %9lu records  %6.1f ns/submit  dropped %lu (%.1f%%)  flush at free %.1f ms"
	       "  total %.2f s\n",
	       name, n, (double)busy / (double)n, (unsigned long)dropped,
	       100.0 * (double)dropped / (double)n, (double)(end - submitted) / 1e6,
	       (double)(end - start) / 1e9);
	if (dropped != rejected) {
		fprintf(stderr, "bench_querylog: dropped %lu but %lu submits failed\n",
		        (unsigned long)dropped, rejected);
		return 1;
	}
	return 0;
}

static bool repeat_mix; /* MIX=repeat */

/* A record of the soak's mix: 70% of 1,000 cached names, 20% blocked names seen once, 10%
 * forwarded names seen once, from 64 clients (MIX=repeat: names that repeat, see below). */
static void
mix_record(struct querylog_record *r, unsigned long i, uint32_t *rnd)
{
	char name[64];
	struct sockaddr_in *sin = (struct sockaddr_in *)&r->client;
	uint32_t x = (*rnd = *rnd * 1103515245u + 12345u) >> 8;
	unsigned pick = x % 10;

	make_record(r);
	if (repeat_mix) {
		/* MIX=repeat: 95% of the records ask one of 5,000 names seen before (4,500
		 * cached, 500 blocked), 5% a name never seen (half blocked, half forwarded) */
		unsigned p100 = (x / 10) % 100, k = (x / 1000) % 5000;
		if (p100 < 95)
			pick = k < 500 ? 7 : 0;
		else
			pick = p100 < 98 ? 8 : 9;
		if (pick == 0)
			snprintf(name, sizeof(name), "h%u.bench.example", k);
		else if (pick == 7)
			snprintf(name, sizeof(name), "t%u.blocked.soak.example", k);
		else if (pick == 8)
			snprintf(name, sizeof(name), "t%lu.new.soak.example", i);
		else
			snprintf(name, sizeof(name), "m%lu.miss.example", i);
	} else if (pick < 7)
		snprintf(name, sizeof(name), "h%u.bench.example", 1 + (x / 10) % 1000);
	else if (pick < 9)
		snprintf(name, sizeof(name), "t%lu.blocked.soak.example", i);
	else
		snprintf(name, sizeof(name), "m%lu.miss.example", i);
	r->blocked = pick == 7 || pick == 8;
	r->has_list = r->blocked;
	r->rule_label = r->blocked ? 1 : -1;
	r->action = r->blocked ? QUERYLOG_ACTION_NXDOMAIN
	            : pick < 7 ? QUERYLOG_ACTION_CACHE
	                       : QUERYLOG_ACTION_FORWARD;
	r->rcode = r->blocked ? 3 : 0;
	sin->sin_addr.s_addr = htonl(0x0a000000u | (x % 64));
	if (!r->blocked && pick == 9) {
		struct sockaddr_in *up = (struct sockaddr_in *)&r->upstream;
		up->sin_family = AF_INET;
		up->sin_port = htons(53);
		inet_pton(AF_INET, "192.0.2.53", &up->sin_addr);
	}
	/* the name in wire form */
	size_t len = 0;
	for (char *l = name, *dot; *l != '\0'; l = dot + 1) {
		dot = strchr(l, '.');
		size_t n = dot != NULL ? (size_t)(dot - l) : strlen(l);
		r->qname_wire[len++] = (uint8_t)n;
		memcpy(r->qname_wire + len, l, n);
		len += n;
		if (dot == NULL)
			break;
	}
	r->qname_wire[len++] = 0;
	r->qname_len = (uint8_t)len;
}

static double
process_cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Both sinks (JSON lines and database; SINKS=file or SINKS=db: one only, to split the cost),
 * the soak's mix, paced at about 'rate' records a second in bursts of 100: the writer
 * thread's CPU per record (the process's CPU minus the submitting thread's), and what was
 * not stored one by one. */
static int
run_sinks(const char *dir, unsigned long n, unsigned long rate)
{
	char path[300], db[300];
	struct config cfg;
	struct querylog *ql = NULL;
	struct querylog_record r;
	uint32_t rnd = 7;
	const char *only = getenv("SINKS") != NULL ? getenv("SINKS") : "";

	snprintf(path, sizeof(path), "%s/sinks.jsonl", dir);
	snprintf(db, sizeof(db), "%s/sinks.db", dir);
	memset(&cfg, 0, sizeof(cfg));
	cfg.log.queries = CONFIG_LOG_ALL;
	cfg.log.file = strcmp(only, "db") != 0 ? path : NULL;
	cfg.log.database = strcmp(only, "file") != 0 ? db : NULL;
	int rc = querylog_new(&cfg, &ql);
	if (rc != 0) {
		fprintf(stderr, "bench_querylog: '%s': %s\n", path, strerror(-rc));
		return 1;
	}
	double cpu0 = process_cpu_s();
	uint64_t main0 = cpu_ns(), start = now_ns();
	uint64_t period = 100 * 1000000000ull / rate;
	for (unsigned long i = 0; i < n;) {
		for (unsigned long k = 0; k < 100 && i < n; k++, i++) {
			mix_record(&r, i, &rnd);
			(void)querylog_submit(ql, &r);
		}
		uint64_t due = start + (i / 100) * period, now = now_ns();
		if (due > now) {
			struct timespec ts = {(time_t)((due - now) / 1000000000u),
			                      (long)((due - now) % 1000000000u)};
			nanosleep(&ts, NULL);
		}
	}
	uint64_t submitted = now_ns();
	uint64_t dropped = querylog_dropped(ql), lost = querylog_evidence_lost(ql);
	double main_s = (double)(cpu_ns() - main0) / 1e9;
	querylog_free(&ql);
	double writer_s = process_cpu_s() - cpu0 - main_s;
	printf("sinks  %9lu records  %.0f records/s offered  writer %.2f us CPU/record  dropped "
	       "%lu (%.1f%%), blocked lost %lu\n",
	       n, (double)n / ((double)(submitted - start) / 1e9), writer_s * 1e6 / (double)n,
	       (unsigned long)dropped, 100.0 * (double)dropped / (double)n, (unsigned long)lost);
	unlink(path);
	unlink(db);
	snprintf(path, sizeof(path), "%s/sinks.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/sinks.db-shm", dir);
	unlink(path);
	return 0;
}

/* The two sinks' work for n records of the soak's mix on this thread, on a virtual clock of
 * `rate` records a second (see the top). */
static int
run_direct(const char *dir, unsigned long n, unsigned long rate)
{
	char path[300], db_path[300], buf[65536 + QUERYLOG_LINE_MAX];
	const char *only = getenv("SINKS") != NULL ? getenv("SINKS") : "";
	bool file = strcmp(only, "db") != 0, db_on = strcmp(only, "file") != 0;
	struct logdb_options opt = {.path = db_path};
	struct logdb *db = NULL;
	struct querylog_record r;
	uint32_t rnd = 7;
	size_t len = 0;
	int fd = -1;

	snprintf(path, sizeof(path), "%s/direct.jsonl", dir);
	snprintf(db_path, sizeof(db_path), "%s/direct.db", dir);
	if (file && (fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0600)) < 0) {
		perror("bench_querylog: direct.jsonl");
		return 1;
	}
	if (db_on && logdb_new(&opt, &db) != 0) {
		fprintf(stderr, "bench_querylog: '%s': cannot open\n", db_path);
		return 1;
	}
	double cpu0 = process_cpu_s();
	uint64_t wall0 = (uint64_t)time(NULL) * 1000;
	for (unsigned long i = 0; i < n; i++) {
		mix_record(&r, i, &rnd);
		uint64_t at_ms = i * 1000 / rate;
		r.ts_ms = wall0 + at_ms;
		if (fd >= 0) {
			len += querylog_format(&r, buf + len, QUERYLOG_LINE_MAX);
			if (len >= 65536) {
				if (write(fd, buf, len) != (ssize_t)len)
					perror("bench_querylog: write");
				len = 0;
			}
		}
		if (db != NULL) {
			logdb_add(db, &r);
			if (i % 100 == 0)
				logdb_tick(db, 1000000 + at_ms, wall0 + at_ms);
		}
	}
	if (fd >= 0) {
		if (len > 0 && write(fd, buf, len) != (ssize_t)len)
			perror("bench_querylog: write");
		close(fd);
	}
	uint64_t written = 0;
	if (db != NULL) {
		logdb_commit(db);
		written = logdb_written(db);
		logdb_free(&db);
	}
	double cpu = process_cpu_s() - cpu0;
	printf("direct %9lu records  virtual %lu records/s  sinks %s  %.2f us CPU/record  stored "
	       "%llu\n",
	       n, rate,
	       file && db_on ? "both"
	       : file        ? "file"
	                     : "db",
	       cpu * 1e6 / (double)n, (unsigned long long)written);
	unlink(path);
	unlink(db_path);
	snprintf(path, sizeof(path), "%s/direct.db-wal", dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/direct.db-shm", dir);
	unlink(path);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned long n = argc > 1 ? strtoul(argv[1], NULL, 10) : 2000000;
	char dir[256], path[300];
	struct querylog_record r;
	char line[QUERYLOG_LINE_MAX];
	int rc = 0;

	if (argc > 2) {
		snprintf(dir, sizeof(dir), "%s", argv[2]);
	} else {
		snprintf(dir, sizeof(dir), "/tmp/bench_querylog.XXXXXX");
		if (mkdtemp(dir) == NULL) {
			perror("bench_querylog: mkdtemp");
			return 1;
		}
	}
	snprintf(path, sizeof(path), "%s/queries.jsonl", dir);

	repeat_mix = getenv("MIX") != NULL && strcmp(getenv("MIX"), "repeat") == 0;
	make_record(&r);
	unsigned long nf = getenv("DIRECT") != NULL ? 0 : 1000000;
	size_t len = 0;
	uint64_t t0 = now_ns();
	for (unsigned long i = 0; i < nf; i++) {
		r.latency_us = (uint32_t)i;
		len += querylog_format(&r, line, sizeof(line));
	}
	uint64_t t1 = now_ns();
	if (nf > 0)
		printf("format %9lu records  %6.1f ns/record  (%.0f octets/line)\n", nf,
		       (double)(t1 - t0) / (double)nf, (double)len / (double)nf);

	if (getenv("SINKS_ONLY") == NULL) {
		rc |= run_phase("paced", path, n / 10 > 0 ? n / 10 : 1, true);
		unlink(path);
		rc |= run_phase("flood", path, n, false);
		unlink(path);
	}
	const char *rate = getenv("RATE");
	if (getenv("DIRECT") != NULL) {
		rc |= run_direct(dir, n / 2 > 0 ? n / 2 : 1,
		                 rate != NULL ? strtoul(rate, NULL, 10) : 100000);
		if (argc <= 2)
			rmdir(dir);
		return rc;
	}
	rc |= run_sinks(dir, n / 2 > 0 ? n / 2 : 1, rate != NULL ? strtoul(rate, NULL, 10) : 50000);
	if (argc <= 2)
		rmdir(dir);
	return rc;
}
