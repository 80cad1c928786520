/*
 * bench_querylog: cost of querylog_submit() on the loop thread, with the writer thread running
 * and writing to a file on disk; and the cost of querylog_format() on the writer thread.
 *
 * usage: bench_querylog [records] [dir]   (default 2000000 records, a temporary dir in /tmp)
 *
 * ns/submit is CPU time of the submitting thread (clock_gettime per burst of submits).
 * Phases: "paced" submits in bursts of 100 records every 1 ms (about 100k records/s, a busy
 * resolver): nothing should be dropped; "flood" submits as fast as possible: the ring fills and
 * records are dropped, which shows the cost of the drop path too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
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
	static const uint8_t wire[] = { 8, 't', 'r', 'a', 'c', 'k', 'i', 'n', 'g', 4, 'm', 'i', 'u',
					'i', 3, 'c', 'o', 'm', 0 };
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
			struct timespec ts = { 0, 1000000L };
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

	make_record(&r);
	unsigned long nf = 1000000;
	size_t len = 0;
	uint64_t t0 = now_ns();
	for (unsigned long i = 0; i < nf; i++) {
		r.latency_us = (uint32_t)i;
		len += querylog_format(&r, line, sizeof(line));
	}
	uint64_t t1 = now_ns();
	printf("format %9lu records  %6.1f ns/record  (%.0f octets/line)\n", nf,
	       (double)(t1 - t0) / (double)nf, (double)len / (double)nf);

	rc |= run_phase("paced", path, n / 10 > 0 ? n / 10 : 1, true);
	unlink(path);
	rc |= run_phase("flood", path, n, false);
	unlink(path);
	if (argc <= 2)
		rmdir(dir);
	return rc;
}
