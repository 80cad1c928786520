/*
 * bench_web: the CPU time of each web console page's handler on a query database (e.g. the
 * 10M-row file of bench_logdb), called as the listener calls it (a fake listener in memory:
 * tests/unit/web_fake.h). Each page runs twice; the second run is reported (page cache warm),
 * as user + system CPU time of this process (getrusage), with the size of the page.
 *
 * Usage: bench_web DB [CONFIG]   (CONFIG: for the filters' "did you mean"; default none)
 */
#include <stdint.h>
#include <stdio.h>
#include <sys/resource.h>
#include <time.h>

#include "../unit/web_fake.h"
#include "web.h"

static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double
wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct page {
	const char *label, *path;
	const char *kv[8];
};

int
main(int argc, char **argv)
{
	static const struct page pages[] = {
	        {"/ (overview: 7 d summary, attempts, events)", "/", {NULL}},
	        {"/attempts (since 7d)", "/attempts", {NULL}},
	        {"/attempts?vendor=Xiaomi", "/attempts", {"vendor", "Xiaomi", NULL}},
	        {"/attempts.csv (since 7d)", "/attempts.csv", {NULL}},
	        {"/log (since 24h, 100 newest)", "/log", {NULL}},
	        {"/log?domain=miui.com&since=7d",
	         "/log",
	         {"domain", "miui.com", "since", "7d", NULL}},
	        {"/log?blocked=1&group=staff", "/log", {"blocked", "1", "group", "staff", NULL}},
	        {"/log.json?after=0 (200 oldest)", "/log.json", {"after", "1", NULL}},
	};
	struct web *w = NULL;

	if (argc < 2) {
		fprintf(stderr, "usage: bench_web DB [CONFIG]\n");
		return 2;
	}
	struct web_options o = {.config_path = argc > 2 ? argv[2] : NULL, .database = argv[1]};
	if (web_new(&o, &w) != 0)
		return 1;
	size_t nroutes;
	const struct http_route *routes = web_routes(w, &nroutes);
	printf("| page | CPU s | wall s | status | bytes |\n| --- | ---: | ---: | ---: | ---: |\n");
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		const struct http_route *r = NULL;
		for (size_t k = 0; k < nroutes; k++)
			if (strcmp(routes[k].path, pages[i].path) == 0)
				r = &routes[k];
		if (r == NULL)
			return 1;
		double cpu = 0, wall = 0;
		struct http_resp resp;
		for (int run = 0; run < 2; run++) {
			struct http_req req = {.path = pages[i].path, .role = HTTP_ROLE_ADMIN};
			for (size_t a = 0; pages[i].kv[a] != NULL; a += 2) {
				req.keys[req.nargs] = pages[i].kv[a];
				req.vals[req.nargs++] = pages[i].kv[a + 1];
			}
			memset(&resp, 0, sizeof(resp));
			resp.status = 200;
			double c0 = cpu_s(), w0 = wall_s();
			int rc = r->fn(r->ctx, &req, &resp);
			cpu = cpu_s() - c0;
			wall = wall_s() - w0;
			if (rc != 0) {
				fprintf(stderr, "%s: %d\n", pages[i].label, rc);
				return 1;
			}
			if (run == 0)
				free(resp.body);
		}
		printf("| `%s` | %.3f | %.3f | %d | %zu |\n", pages[i].label, cpu, wall,
		       resp.status, resp.len);
		free(resp.body);
	}
	web_free(&w);
	return 0;
}
