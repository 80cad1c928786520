/*
 * bench_policy: load time, memory and lookup rate of the compiled policy (not a test).
 *
 * Generates a list file of N distinct names of realistic length (20-30 characters, 2-4 labels)
 * in a temporary directory, compiles a policy with one group blocking it, and reports:
 *   - the time policy_new takes (reading, parsing and indexing the file),
 *   - resident memory before/after (VmRSS, after the file buffer is freed) and policy_memory,
 *     both per name,
 *   - lookups per second on one thread over a query mix: a third exact hits, a third
 *     subdomains of listed names (1-2 extra labels), a third misses of the same shape.
 * Rates use the thread's CPU time, so that other load on the machine does not skew them.
 * Usage: bench_policy [NAMES [SECONDS]]    (default 1000000 names, 3 seconds of lookups)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "policy.h"

static const char *const tlds[] = {"com", "net", "org", "io", "cn", "de", "co.uk", "com.cn"};

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t
rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng >> 11);
}

static size_t
word(char *buf, size_t min, size_t max)
{
	static const char letters[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	size_t n = min + rnd() % (max - min + 1);
	buf[0] = letters[rnd() % 26];
	for (size_t i = 1; i < n; i++)
		buf[i] = letters[rnd() % (i + 1 < n ? 36 : 26)];
	return n;
}

/* One name, unique through its index (base-36 suffix on the first label). */
static size_t
gen_name(char *buf, size_t i)
{
	size_t o = 0;
	unsigned labels = 2 + rnd() % 3;	/* 2-4 labels including the TLD */
	o += word(buf + o, 5, 10);
	do {
		buf[o++] = "0123456789abcdefghijklmnopqrstuvwxyz"[i % 36];
		i /= 36;
	} while (i > 0);
	for (unsigned l = 2; l < labels; l++) {
		buf[o++] = '.';
		o += word(buf + o, 4, 9);
	}
	buf[o++] = '.';
	const char *t = tlds[rnd() % (sizeof(tlds) / sizeof(tlds[0]))];
	memcpy(buf + o, t, strlen(t));
	o += strlen(t);
	buf[o] = '\0';
	return o;
}

static double
now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: the figures stay meaningful on a busy machine */
static double
cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long
rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static long
hwm_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long v = -1;
	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmHWM: %ld kB", &v) == 1)
			break;
	fclose(f);
	return v;
}

static char *
xstrdup(const char *s)
{
	char *d = strdup(s);
	if (d == NULL)
		abort();
	return d;
}

int
main(int argc, char **argv)
{
	size_t nnames = argc > 1 ? strtoul(argv[1], NULL, 10) : 1000000;
	double seconds = argc > 2 ? atof(argv[2]) : 3.0;
	char dir[] = "/tmp/bench_policy.XXXXXX";
	char path[sizeof(dir) + 16];
	int rc = 1;

	if (nnames == 0 || mkdtemp(dir) == NULL) {
		fprintf(stderr, "bench_policy: cannot create a temporary directory\n");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/list.txt", dir);

	/* the list file, and the query mix drawn from it (as text, NUL-separated) */
	FILE *f = fopen(path, "w");
	size_t nq = nnames < 1000000 ? nnames : 1000000;
	size_t qcap = nq * 48, qlen = 0;
	char *qtext = malloc(qcap);
	if (f == NULL || qtext == NULL) {
		fprintf(stderr, "bench_policy: out of memory or cannot write '%s'\n", path);
		return 1;
	}
	size_t total = 0, qi = 0;
	for (size_t i = 0; i < nnames; i++) {
		char name[128], q[160];
		size_t len = gen_name(name, i);
		total += len;
		fprintf(f, "%s\n", name);
		if (qi < nq && (i % (nnames / nq)) == 0) {
			switch (qi % 3) {
			case 0:	/* exact hit */
				snprintf(q, sizeof(q), "%s", name);
				break;
			case 1:	/* subdomain of a listed name */
				snprintf(q, sizeof(q), "%s%s.%s", rnd() % 2 ? "www." : "",
					 rnd() % 2 ? "cdn" : "api", name);
				break;
			default: /* a miss of the same shape: an index beyond the list */
				gen_name(q, nnames + i);
				break;
			}
			size_t ql = strlen(q) + 1;
			if (qlen + ql <= qcap) {
				memcpy(qtext + qlen, q, ql);
				qlen += ql;
				qi++;
			}
		}
	}
	nq = qi;
	if (fclose(f) != 0) {
		fprintf(stderr, "bench_policy: cannot write '%s'\n", path);
		return 1;
	}

	struct config *cfg = calloc(1, sizeof(*cfg));
	cfg->path = xstrdup("bench.yaml");
	cfg->dir = xstrdup(dir);
	cfg->block.action = CONFIG_ACTION_SINKHOLE;
	cfg->log.file = xstrdup("-");
	cfg->nlists = 1;
	cfg->lists = calloc(1, sizeof(*cfg->lists));
	cfg->lists[0].name = xstrdup("big");
	cfg->lists[0].nfiles = 1;
	cfg->lists[0].files = calloc(1, sizeof(char *));
	cfg->lists[0].files[0] = xstrdup(path);
	cfg->lists[0].file_locs = calloc(1, sizeof(struct config_loc));
	cfg->ngroups = 1;
	cfg->groups = calloc(1, sizeof(*cfg->groups));
	cfg->groups[0].name = xstrdup("everyone");
	cfg->groups[0].nblock = 1;
	cfg->groups[0].block = calloc(1, sizeof(size_t));

	struct diag d;
	diag_init(&d);
	struct policy *p = NULL;
	long rss0 = rss_kib();
	double t0 = now(), c0 = cpu_now();
	int prc = policy_new(cfg, &d, &p);
	double t1 = now(), c1 = cpu_now();
	long rss1 = rss_kib();
	if (prc != 0) {
		diag_print(&d, stderr, DIAG_NOTE);
		fprintf(stderr, "bench_policy: policy_new: %s\n", strerror(-prc));
		goto cleanup;
	}
	size_t names = policy_names(p);
	printf("names:           %zu distinct (avg %.1f characters)\n", names,
	       (double)total / (double)nnames);
	printf("load:            %.3f s CPU, %.3f s wall (%.0f names/s CPU)\n", c1 - c0, t1 - t0,
	       (double)names / (c1 - c0));
	printf("resident delta:  %.1f MiB, %.1f bytes/name (peak RSS of the process %.1f MiB)\n",
	       (double)(rss1 - rss0) / 1024.0, (double)(rss1 - rss0) * 1024.0 / (double)names,
	       (double)hwm_kib() / 1024.0);
	printf("policy_memory:   %.1f MiB, %.1f bytes/name\n",
	       (double)policy_memory(p) / 1048576.0, (double)policy_memory(p) / (double)names);

	/* queries as packed wire names, as they arrive in packets */
	uint8_t *wire = malloc(qlen + nq);
	size_t wlen = 0;
	if (wire == NULL)
		goto cleanup;
	for (size_t o = 0; o < qlen; o += strlen(qtext + o) + 1) {
		struct names_name n;
		if (names_from_text(&n, qtext + o, strlen(qtext + o), NULL) != 0)
			continue;
		memcpy(wire + wlen, n.wire, n.len);
		wlen += n.len;
	}

	/* 1: names_from_wire + policy_check per query, one thread, cycling over the mix */
	size_t done = 0, hits = 0;
	double start = cpu_now(), elapsed;
	do {
		size_t pos = 0;
		while (pos < wlen) {
			struct names_name n;
			struct policy_verdict v;
			if (names_from_wire(&n, wire, wlen, &pos) != 0)
				break;
			policy_check(p, 0, &n, &v);
			hits += v.blocked;
			done++;
		}
		elapsed = cpu_now() - start;
	} while (elapsed < seconds);
	printf("lookups:         %.2f million/s parse+check over %zu queries "
	       "(%.1f%% blocked, 1 thread)\n",
	       (double)done / elapsed / 1e6, done, 100.0 * (double)hits / (double)done);

	/* 2: policy_check alone on pre-parsed names (a 4096-query working set, cold table) */
	enum { HOT = 4096 };
	static struct names_name hot[HOT];
	size_t nhot = 0, pos = 0;
	while (nhot < HOT && pos < wlen && names_from_wire(&hot[nhot], wire, wlen, &pos) == 0)
		nhot++;
	done = 0;
	hits = 0;
	start = cpu_now();
	size_t stride = 0;
	do {
		for (size_t i = 0; i < 100000; i++) {
			struct policy_verdict v;
			policy_check(p, 0, &hot[(stride + i) % nhot], &v);
			hits += v.blocked;
		}
		stride += 100000;
		done += 100000;
		elapsed = cpu_now() - start;
	} while (elapsed < seconds);
	printf("lookups:         %.2f million/s policy_check only (%zu distinct names)\n",
	       (double)done / elapsed / 1e6, nhot);
	free(wire);
	rc = 0;
cleanup:
	policy_unref(&p);
	if (prc != 0)
		config_free(&cfg);
	diag_clear(&d);
	free(qtext);
	unlink(path);
	rmdir(dir);
	return rc;
}
