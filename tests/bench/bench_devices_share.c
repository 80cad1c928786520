/*
 * bench_devices_share: what sharing the device table with other workers costs
 * (devices_share.h), CPU time of this thread (CLOCK_THREAD_CPUTIME_ID):
 *   publish: one snapshot of a table of N devices, every one of them worth copying (a hostname,
 *            a behaviour-attributed vendor, every 16th pinned): the owner loop's cost per
 *            publication, and the interval the share then keeps between two of them
 *   reader:  a worker's identify + record for a device in the snapshot (ns per query), next to
 *            the owner's direct devices_identify + devices_record_query on the same table
 *   steady:  the owner's own queries from known devices (nothing a worker reads changes), the
 *            idle tick's check (devices_share_idle) after every [per_tick] of them, as if the
 *            main loop answered that many a second: full copies made, and the tick's CPU
 * Usage: bench_devices_share [devices] [publications] [queries] [per_tick]
 *        (65536, 50, 2000000, 20000)
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <uv.h>

#include "devices.h"
#include "devices_int.h"
#include "devices_share.h"
#include "diag.h"
#include "identify.h"
#include "names.h"
#include "policy.h"

static uint64_t
cpu_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
addr_of(unsigned i, struct sockaddr_in *in, char *key, size_t size)
{
	memset(in, 0, sizeof(*in));
	in->sin_family = AF_INET;
	in->sin_addr.s_addr = htonl(0x0a000000u + i + 1);
	char t[INET_ADDRSTRLEN];
	inet_ntop(AF_INET, &in->sin_addr, t, sizeof(t));
	snprintf(key, size, "ip:%s", t);
}

int
main(int argc, char **argv)
{
	unsigned n = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 65536;
	unsigned pubs = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 50;
	unsigned long queries = argc > 3 ? strtoul(argv[3], NULL, 10) : 2000000;
	unsigned long per_tick = argc > 4 ? strtoul(argv[4], NULL, 10) : 20000;
	char path[] = "/tmp/veto-bench-share-XXXXXX";
	struct diag dg;
	struct policy *pol = NULL;
	struct devices *d = NULL;
	struct devices_share *sh = NULL;
	struct devices_share_stats st;
	uv_loop_t loop;

	char dir[] = "/tmp/veto-bench-state-XXXXXX";
	int fd = mkstemp(path);
	if (fd < 0 || mkdtemp(dir) == NULL || n == 0 || pubs == 0 || queries == 0 || per_tick == 0)
		return 1;
	dprintf(fd, "state_dir: %s\ndevices:\n  arp: false\n  oui: false\n  max_devices: %u\n"
		"groups:\n  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		"  - {name: rest}\n", dir, n < 16 ? 16 : n);
	close(fd);
	diag_init(&dg);
	if (policy_load(path, &dg, &pol) != 0) {
		fprintf(stderr, "bench_devices_share: cannot load the configuration\n");
		return 1;
	}
	unlink(path);
	diag_clear(&dg);
	const struct config *cfg = policy_config(pol);
	uv_loop_init(&loop);
	if (devices_new(&loop, pol, &d) != 0)
		return 1;
	for (unsigned i = 0; i < n; i++) {
		struct sockaddr_in in;
		char key[DEVICES_KEY_MAX];
		addr_of(i, &in, key, sizeof(key));
		struct devices_record *r = devices_int_add(d, key);
		if (r == NULL) {
			fprintf(stderr, "bench_devices_share: table full at %u\n", i);
			return 1;
		}
		snprintf(r->hostname, sizeof(r->hostname), "handset-%u", i);
		identify_fill(cfg, NULL, (struct sockaddr *)&in, NULL, r);
		identify_observe(r, "Xiaomi", IDENTITY_STRENGTH_ROM, "connect.rom.miui.com", 1);
		if (i % 16 == 0)
			snprintf(r->pin_group, sizeof(r->pin_group), "rest");
		identify_vendor(cfg, r);
	}
	if (devices_share_new(&loop, 1, &sh) != 0)
		return 1;
	devices_share_attach(sh, d);

	uint64_t t0 = cpu_ns();
	for (unsigned i = 0; i < pubs; i++)
		devices_share_rebuild(sh);
	uint64_t full = (cpu_ns() - t0) / pubs;
	devices_share_get_stats(sh, &st);
	printf("full     %u devices, %" PRIu64 " in the snapshot: %.2f ms CPU per build: the "
	       "other changes are published every %.0f ms at most (<= 10%% of the owner loop)\n",
	       (unsigned)devices_count(d), st.entries, full / 1e6, full * 10 / 1e6 + 1 > 1000 ? full * 10 / 1e6 + 1 : 1000.0);
	/* urgent changes: each device pinned and published on its own, the delta growing until
	 * the next full build */
	static const unsigned marks[] = {1, 10, 100, 1000, DEVICES_SHARE_PENDING};
	unsigned done = 0;
	for (size_t m = 0; m < sizeof(marks) / sizeof(marks[0]); m++) {
		uint64_t sum = 0;
		unsigned cnt = 0;
		for (; done < marks[m] && done < n; done++) {
			struct devices_record *r = devices_int_record(d, done);
			snprintf(r->pin_group, sizeof(r->pin_group), "banned");
			devices_share_touch(sh, r->key);
			uint64_t t1 = cpu_ns();
			devices_share_publish(sh);
			sum += cpu_ns() - t1;
			cnt++;
		}
		if (cnt > 0)
			printf("delta    %u devices changed since the full build: %.1f us CPU per "
			       "publication (the last %u)\n", marks[m], sum / 1e3 / cnt, cnt);
	}

	struct devices_reader *rd = devices_share_reader(sh, 0);
	struct names_name qname;
	const char *why = NULL;
	names_from_text(&qname, "www.example.com", 15, &why);
	enum { NC = 4096 };
	static struct sockaddr_in clients[NC];
	for (unsigned i = 0; i < NC; i++) {
		char key[DEVICES_KEY_MAX];
		addr_of((unsigned)(((uint64_t)i * 2654435761u) % n), &clients[i], key, sizeof(key));
	}
	unsigned long sink = 0;
	t0 = cpu_ns();
	for (unsigned long i = 0; i < queries; i++) {
		struct policy_identity id;
		struct devices_ident ident;
		struct policy_decision dec;
		const struct sockaddr *sa = (const struct sockaddr *)&clients[i % NC];
		id = (struct policy_identity){.sa = sa};
		devices_reader_identify(rd, sa, NULL, &id, &ident);
		policy_decide(pol, &id, &qname, &dec);
		devices_reader_record(rd, pol, dec.group, &qname, &ident);
		sink += (unsigned long)dec.group;
	}
	uint64_t reader_ns = (cpu_ns() - t0) / queries;
	t0 = cpu_ns();
	for (unsigned long i = 0; i < queries; i++) {
		struct policy_identity id;
		struct devices_ident ident;
		struct policy_decision dec;
		const struct sockaddr *sa = (const struct sockaddr *)&clients[i % NC];
		id = (struct policy_identity){.sa = sa};
		devices_identify(d, pol, sa, NULL, &id, &ident);
		policy_decide(pol, &id, &qname, &dec);
		devices_record_query(d, pol, dec.group, &qname, &ident);
		sink += (unsigned long)dec.group;
	}
	uint64_t direct_ns = (cpu_ns() - t0) / queries;
	printf("reader   identify + decide + record: %" PRIu64 " ns/query CPU (the owner's direct "
	       "path on the same table: %" PRIu64 " ns/query)\n",
	       reader_ns, direct_ns);

	/* steady: the changes above copied once, then only queries of known devices */
	devices_share_idle(sh);
	devices_share_get_stats(sh, &st);
	uint64_t full0 = st.full, idle_ns = 0, query_ns = 0;
	unsigned long ticks = queries / per_tick > 0 ? queries / per_tick : 1;
	for (unsigned long t = 0; t < ticks; t++) {
		t0 = cpu_ns();
		for (unsigned long i = 0; i < per_tick; i++) {
			struct policy_identity id;
			struct devices_ident ident;
			struct policy_decision dec;
			const struct sockaddr *sa =
				(const struct sockaddr *)&clients[(t * per_tick + i) % NC];
			id = (struct policy_identity){.sa = sa};
			devices_identify(d, pol, sa, NULL, &id, &ident);
			policy_decide(pol, &id, &qname, &dec);
			devices_record_query(d, pol, dec.group, &qname, &ident);
			sink += (unsigned long)dec.group;
		}
		uint64_t t1 = cpu_ns();
		devices_share_idle(sh);
		idle_ns += cpu_ns() - t1;
		query_ns += t1 - t0;
	}
	devices_share_get_stats(sh, &st);
	printf("steady   %lu ticks of %lu owner queries of known devices: %" PRIu64 " full copies "
	       "(%.2f per tick), %.2f ms CPU per tick in the tick's check (the queries: %.1f ms "
	       "CPU per tick, %" PRIu64 " ns/query)\n",
	       ticks, per_tick, st.full - full0, (double)(st.full - full0) / (double)ticks,
	       idle_ns / 1e6 / (double)ticks, query_ns / 1e6 / (double)ticks,
	       query_ns / (ticks * per_tick));
	devices_share_close(sh, NULL, NULL);
	devices_close(d, NULL, NULL);
	uv_run(&loop, UV_RUN_DEFAULT);
	devices_share_free(&sh);
	devices_free(&d);
	uv_loop_close(&loop);
	policy_unref(&pol);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		return 1;
	return sink == 42 ? 2 : 0;
}
