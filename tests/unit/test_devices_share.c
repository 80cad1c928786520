/*
 * test_devices_share: the device table read by the other workers (devices_share.h), on a real
 * loop. A reader identifies from the published snapshot; its signature observation reaches the
 * owner's table and the attribution comes back in the next snapshot; a pin is seen at once
 * after devices_share_publish; a snapshot a reader holds is not freed (nor any newer one); a
 * full queue drops sightings first, then evidence, counted, and a device whose evidence was
 * dropped is not attributed from behaviour afterwards, on any path, and an attribution it had
 * ends. The idle tick copies the table again only when something the copy holds changed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "config.h"
#include "config_harness.h"
#include "devices.h"
#include "devices_admin.h"
#include "devices_int.h"
#include "devices_share.h"
#include "diag.h"
#include "names.h"
#include "policy.h"

#define SIGNATURE "connect.rom.miui.com"

static void
sockaddr_of(const char *ip, struct sockaddr_storage *ss)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	memset(ss, 0, sizeof(*ss));
	in->sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, ip, &in->sin_addr), 1);
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

/* What the last reader_query's log record would say about its device. */
static struct devices_ident last_ident;

/* One query on a worker: identify from the snapshot, decide, queue the observation. Returns
 * the group's name ("" when none). */
static const char *
reader_query(struct devices_reader *r, const struct policy *p, const char *client,
	     const char *name)
{
	struct sockaddr_storage ss;
	struct names_name qname;
	struct policy_identity id;
	struct devices_ident ident;
	struct devices_hints h;
	struct policy_decision dec;
	const char *why = NULL;

	sockaddr_of(client, &ss);
	memset(&h, 0, sizeof(h));
	id = (struct policy_identity){.sa = (struct sockaddr *)&ss};
	assert_int_equal(names_from_text(&qname, name, strlen(name), &why), 0);
	assert_true(devices_reader_identify(r, (struct sockaddr *)&ss, &h, &id, &ident));
	policy_decide(p, &id, &qname, &dec);
	devices_reader_record(r, p, dec.group, &qname, &ident);
	last_ident = ident;
	const char *g = policy_group_name(p, dec.group);
	return g != NULL ? g : "";
}

/* The same on the owner's table (the main loop's own queries). */
static const char *
owner_query(struct devices *d, const struct policy *p, const char *client, const char *name)
{
	struct sockaddr_storage ss;
	struct names_name qname;
	struct policy_identity id;
	struct devices_ident ident;
	struct policy_decision dec;
	const char *why = NULL;

	sockaddr_of(client, &ss);
	id = (struct policy_identity){.sa = (struct sockaddr *)&ss};
	assert_int_equal(names_from_text(&qname, name, strlen(name), &why), 0);
	devices_identify(d, p, (struct sockaddr *)&ss, NULL, &id, &ident);
	policy_decide(p, &id, &qname, &dec);
	devices_record_query(d, p, dec.group, &qname, &ident);
	const char *g = policy_group_name(p, dec.group);
	return g != NULL ? g : "";
}

struct fixture {
	char dir[64];			/* state_dir: the table is saved at close */
	uv_loop_t loop;
	struct policy *p;
	struct devices *d;
	struct devices_share *sh;
	struct devices_reader *r, *r2;	/* r2: a second worker's (setup_n with 2) */
	int closed;
};

static void
on_closed(void *arg)
{
	((struct fixture *)arg)->closed++;
}

#define TV_MAC "a4:45:19:00:00:51"

static void
write_leases(const struct fixture *fx, const char *hostname)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/dnsmasq.leases", fx->dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "2000000000 " TV_MAC " 127.0.0.51 %s *\n", hostname);
	assert_int_equal(fclose(f), 0);
}

/* leased: NULL, or the hostname of a dnsmasq lease file (state_dir/dnsmasq.leases, one
 * lease: 127.0.0.51 as TV_MAC) */
static void
setup_cfg(struct fixture *fx, unsigned nreaders, const char *leased)
{
	char yaml[1024], extra[256] = "";
	memset(fx, 0, sizeof(*fx));
	snprintf(fx->dir, sizeof(fx->dir), "/tmp/veto-test-share-XXXXXX");
	assert_non_null(mkdtemp(fx->dir));
	if (leased != NULL) {
		write_leases(fx, leased);
		snprintf(extra, sizeof(extra),
			 "  dhcp_leases:\n    - {file: %s/dnsmasq.leases, format: dnsmasq}\n",
			 fx->dir);
	}
	snprintf(yaml, sizeof(yaml),
		 "state_dir: %s\n"
		 "devices:\n"
		 "  arp: false\n"
		 "  oui: false\n"
		 "%s"
		 "groups:\n"
		 "  - {name: banned, vendors: [Xiaomi], default: deny}\n"
		 "  - {name: staff, clients: [10.9.9.0/24]}\n"
		 "  - {name: rest}\n",
		 fx->dir, extra);
	fx->p = compile_policy(yaml);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	assert_int_equal(devices_new(&fx->loop, fx->p, &fx->d), 0);
	assert_int_equal(devices_share_new(&fx->loop, nreaders, &fx->sh), 0);
	devices_share_attach(fx->sh, fx->d);
	fx->r = devices_share_reader(fx->sh, 0);
	fx->r2 = nreaders > 1 ? devices_share_reader(fx->sh, 1) : NULL;
}

static void
setup_n(struct fixture *fx, unsigned nreaders)
{
	setup_cfg(fx, nreaders, NULL);
}

static void
setup(struct fixture *fx)
{
	setup_n(fx, 1);
}

static void
teardown(struct fixture *fx)
{
	devices_share_close(fx->sh, on_closed, fx);
	devices_close(fx->d, on_closed, fx);
	assert_int_equal(uv_run(&fx->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(fx->closed, 2);
	devices_share_free(&fx->sh);
	devices_free(&fx->d);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	policy_unref(&fx->p);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", fx->dir);
	assert_int_equal(system(cmd), 0);
}

static void
test_attribution_round_trip(void **state)
{
	(void)state;
	struct fixture fx;
	struct devices_share_stats st;

	setup(&fx);
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.31", "x.test"), "rest");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.31", SIGNATURE), "rest");
	/* its log record names the vendor it attributes, as on the owner */
	assert_string_equal(last_ident.vendor, "Xiaomi");
	assert_int_equal(last_ident.vendor_source, IDENTITY_SRC_SIGNATURE);
	/* not yet on the owner: nothing has run on its loop */
	assert_null(devices_find(fx.d, "ip:127.0.0.31"));
	run_for(&fx.loop, 30);
	const struct devices_record *rec = devices_find(fx.d, "ip:127.0.0.31");
	assert_non_null(rec);
	assert_string_equal(rec->vendor, "Xiaomi");
	assert_int_equal(rec->obs[0].rom, 1);
	/* published again (an attribution is urgent): the worker's next query is banned */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.31", "y.test"), "banned");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.32", "y.test"), "rest");
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.observations, 2);
	assert_true(st.published >= 2);
	assert_int_equal(st.entries, 1);
	assert_int_equal(st.dropped, 0);

	/* an administrator's pin on the owner's table: visible once published */
	struct devices_record *r = devices_int_lookup(fx.d, "ip:127.0.0.31");
	assert_non_null(r);
	strcpy(r->pin_group, "staff");
	devices_share_touch(fx.sh, r->key);
	devices_share_publish(fx.sh);
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.31", "z.test"), "staff");
	teardown(&fx);
}

static void
test_held_snapshot_kept(void **state)
{
	(void)state;
	struct fixture fx;
	struct devices_share_stats st;
	struct sockaddr_storage ss;
	struct policy_identity id;
	struct devices_ident ident;

	setup(&fx);
	sockaddr_of("127.0.0.40", &ss);
	/* the reader holds the current snapshot (between identify and record) */
	assert_true(devices_reader_identify(fx.r, (struct sockaddr *)&ss, NULL, &id, &ident));
	devices_share_publish(fx.sh);
	devices_share_publish(fx.sh);
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.retired, 2); /* the held one, and the newer one behind it */
	devices_reader_record(fx.r, fx.p, -1, NULL, NULL);
	devices_share_publish(fx.sh);
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.retired, 0);
	teardown(&fx);
}

static void
test_queue_full(void **state)
{
	(void)state;
	struct fixture fx;
	struct devices_share_stats st;
	char ip[32];

	setup(&fx);
	/* sightings take at most half of the queue */
	for (unsigned i = 0; i < DEVICES_SHARE_QUEUE / 2 + 10; i++) {
		snprintf(ip, sizeof(ip), "10.1.%u.%u", i / 250, i % 250 + 1);
		reader_query(fx.r, fx.p, ip, "x.test");
	}
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.dropped, 10);
	assert_int_equal(st.evidence_dropped, 0);
	/* evidence takes the rest */
	for (unsigned i = 0; i < DEVICES_SHARE_QUEUE / 2; i++) {
		snprintf(ip, sizeof(ip), "10.2.%u.%u", i / 250, i % 250 + 1);
		reader_query(fx.r, fx.p, ip, SIGNATURE);
	}
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.dropped, 10);
	/* full: this device's evidence is lost (and its log record names no vendor) */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.50", SIGNATURE), "rest");
	assert_string_equal(last_ident.vendor, "");
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.dropped, 11);
	assert_int_equal(st.evidence_dropped, 1);
	run_for(&fx.loop, 30);
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.observations, DEVICES_SHARE_QUEUE);
	/* (a device whose key hashes like the suspect one's is suspect too: only delayed) */
	uint64_t ignored = st.evidence_ignored;
	/* from then on, no signature query of that device attributes it: not from a worker... */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.50", SIGNATURE), "rest");
	run_for(&fx.loop, 30);
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.50", "a.test"), "rest");
	/* ...nor from the owner's own queries */
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.50", SIGNATURE), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.50", "b.test"), "rest");
	const struct devices_record *rec = devices_find(fx.d, "ip:127.0.0.50");
	assert_non_null(rec);
	assert_string_equal(rec->vendor, "");
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.evidence_ignored - ignored, 2);
	/* another device is attributed as usual */
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.51", SIGNATURE), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.51", "c.test"), "banned");
	teardown(&fx);
}

/* A client's query answered by a worker, then its next one on the owner's loop before the
 * owner's async callback has run (the owner read both off its socket in one go): the earlier
 * query counts first, as with one worker. Here an OS check that rules out the vendor of the
 * ROM name that follows: replayed after it, the ROM name would attribute the device for a
 * while (its queries banned until the check arrives). */
static void
test_owner_replays_first(void **state)
{
	(void)state;
	struct fixture fx;
	struct devices_share_stats st;

	setup(&fx);
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.60", "captive.apple.com"), "rest");
	/* the owner's loop has not run: the check is still in the worker's queue */
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.60", SIGNATURE), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.60", "b.test"), "rest");
	const struct devices_record *rec = devices_find(fx.d, "ip:127.0.0.60");
	assert_non_null(rec);
	assert_string_equal(rec->vendor, "");
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.observations, 1);
	/* nothing left for the async callback */
	run_for(&fx.loop, 30);
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.observations, 1);
	/* a device without the check is attributed by the owner as before */
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.61", SIGNATURE), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.61", "c.test"), "banned");
	teardown(&fx);
}

static void
on_event(void *arg, const struct identity_event *ev)
{
	if (strcmp(ev->kind, "vendor") == 0)
		(*(int *)arg)++;
}

/* Two workers: a client's OS check answered by the second, then its ROM name by the first;
 * the owner replays them in that order (not worker by worker): no attribution, not even one
 * ended at once by the check (two vendor events). */
static void
test_replay_order_across_workers(void **state)
{
	(void)state;
	struct fixture fx;
	int vendor_events = 0;

	setup_n(&fx, 2);
	devices_set_event_cb(fx.d, on_event, &vendor_events);
	assert_string_equal(reader_query(fx.r2, fx.p, "127.0.0.70", "captive.apple.com"), "rest");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.70", SIGNATURE), "rest");
	run_for(&fx.loop, 30);
	const struct devices_record *rec = devices_find(fx.d, "ip:127.0.0.70");
	assert_non_null(rec);
	assert_string_equal(rec->vendor, "");
	assert_int_equal(vendor_events, 0);
	/* the other way round the ROM name attributes the device and the check then ends it */
	assert_string_equal(reader_query(fx.r2, fx.p, "127.0.0.71", SIGNATURE), "rest");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.71", "captive.apple.com"), "rest");
	run_for(&fx.loop, 30);
	assert_int_equal(vendor_events, 2);
	teardown(&fx);
}

/* An administrator's forget on the owner while a worker's earlier signature query of the
 * device is still queued: the query counts before the forget (as with one worker), not after
 * it, where it would attribute the device again behind the administrator's back. */
static void
test_admin_after_queued(void **state)
{
	(void)state;
	struct fixture fx;
	char msg[256];

	setup(&fx);
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.80", SIGNATURE), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.80", "a.test"), "banned");
	run_for(&fx.loop, 30); /* published: the worker knows the device */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.80", SIGNATURE), "banned");
	struct devices_admin_req req = {.op = DEVICES_ADMIN_FORGET};
	strcpy(req.target, "127.0.0.80");
	assert_int_equal(devices_admin_run(fx.d, &req, msg, sizeof(msg)), 0);
	run_for(&fx.loop, 30);
	assert_null(devices_find(fx.d, "ip:127.0.0.80"));
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.80", "b.test"), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.80", "c.test"), "rest");
	teardown(&fx);
}

static int vendor_changes, group_changes;

static void
on_change_event(void *arg, const struct identity_event *ev)
{
	(void)arg;
	if (strcmp(ev->kind, "vendor") == 0)
		vendor_changes++;
	else if (strcmp(ev->kind, "group_change") == 0)
		group_changes++;
}

/* A device attributed from its ROM name (its group bans it); then a query of it is dropped
 * by a full queue, one that may have been evidence against the attribution (an OS check): the
 * attribution ends, as if that query had arrived. At once on the workers (they no longer apply
 * it), and on the owner at the device's next query (a vendor and a group change event); the
 * published snapshot then no longer carries it. A pin still applies. */
static void
test_drop_ends_attribution(void **state)
{
	(void)state;
	struct fixture fx;
	struct devices_share_stats st;
	char ip[32], romv[64];

	setup(&fx);
	devices_set_event_cb(fx.d, on_change_event, NULL);
	vendor_changes = group_changes = 0;
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.90", SIGNATURE), "rest");
	run_for(&fx.loop, 30);
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.90", "a.test"), "banned");
	run_for(&fx.loop, 30);
	devices_share_snap_romv(fx.sh, "ip:127.0.0.90", romv, sizeof(romv));
	assert_string_equal(romv, "Xiaomi");
	assert_int_equal(vendor_changes, 1);
	assert_int_equal(group_changes, 1);

	/* the queue fills (sightings to half, then evidence of other devices) */
	for (unsigned i = 0; i < DEVICES_SHARE_QUEUE / 2; i++) {
		snprintf(ip, sizeof(ip), "10.3.%u.%u", i / 250, i % 250 + 1);
		reader_query(fx.r, fx.p, ip, "x.test");
	}
	for (unsigned i = 0; i < DEVICES_SHARE_QUEUE / 2; i++) {
		snprintf(ip, sizeof(ip), "10.4.%u.%u", i / 250, i % 250 + 1);
		reader_query(fx.r, fx.p, ip, "captive.apple.com");
	}
	/* the device's OS check is lost */
	reader_query(fx.r, fx.p, "127.0.0.90", "captive.apple.com");
	devices_share_get_stats(fx.sh, &st);
	assert_int_equal(st.evidence_dropped, 1);
	/* the worker no longer applies the attribution, before the owner has run */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.90", "b.test"), "rest");
	run_for(&fx.loop, 30);
	/* the device's next query reaches the owner (a ROM name: always sent, never acted on
	 * now): the attribution ends there too */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.90", SIGNATURE), "rest");
	run_for(&fx.loop, 30);
	const struct devices_record *rec = devices_find(fx.d, "ip:127.0.0.90");
	assert_non_null(rec);
	assert_string_equal(rec->vendor, "");
	assert_int_equal(rec->vendor_source, IDENTITY_SRC_NONE);
	assert_int_equal(vendor_changes, 2);
	assert_int_equal(group_changes, 2);
	devices_share_snap_romv(fx.sh, "ip:127.0.0.90", romv, sizeof(romv));
	assert_string_equal(romv, "");
	/* nor does a later ROM name bring it back, on a worker or on the owner */
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.90", SIGNATURE), "rest");
	run_for(&fx.loop, 30);
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.90", SIGNATURE), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.90", "d.test"), "rest");
	assert_string_equal(rec->vendor, "");
	/* a pin still applies */
	struct devices_record *r = devices_int_lookup(fx.d, "ip:127.0.0.90");
	assert_non_null(r);
	strcpy(r->pin_vendor, "Xiaomi");
	identify_vendor(policy_config(fx.p), r);
	devices_share_touch(fx.sh, r->key);
	devices_share_publish(fx.sh);
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.90", "e.test"), "banned");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.90", "f.test"), "banned");
	teardown(&fx);
}

/* ---- the idle tick's full copy: only when something it holds changed ---- */

/* Runs the loop until the source refresh in flight (if any) has landed. */
static void
wait_refresh(struct fixture *fx)
{
	for (int i = 0; i < 500 && (fx->d->refresh != NULL || fx->d->refresh_again); i++)
		run_for(&fx->loop, 10);
	assert_null(fx->d->refresh);
}

/* One reader; 127.0.0.51 leased as TV_MAC with hostname "tv-one". */
static void
setup_leases(struct fixture *fx)
{
	setup_cfg(fx, 1, "tv-one");
	wait_refresh(fx);
}

/* The idle tick now; asserts whether it made a full copy. */
static void
expect_full(struct fixture *fx, uint64_t *full, bool rebuilt, const char *what)
{
	struct devices_share_stats st;
	devices_share_idle(fx->sh);
	devices_share_get_stats(fx->sh, &st);
	if (st.full != *full + (rebuilt ? 1 : 0))
		fail_msg("after %s: %s full copy", what, rebuilt ? "no" : "a");
	*full = st.full;
}

/* Known devices that keep querying, on the owner and through a worker, change nothing a
 * worker reads: their last-seen times and counts are marked for saving, but the idle tick
 * makes no full copy. Nor does a new device the copy would hold nothing of (no hostname, no
 * behaviour, no pin): a worker reads no entry as an empty one. */
static void
test_idle_quiet(void **state)
{
	(void)state;
	struct fixture fx;
	struct devices_share_stats st;
	uint64_t full;

	setup_leases(&fx);
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.51", "a.test"), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.52", SIGNATURE), "rest");
	run_for(&fx.loop, 30);
	devices_share_idle(fx.sh);
	devices_share_get_stats(fx.sh, &st);
	full = st.full;
	assert_int_equal(st.entries, 2);
	for (int i = 0; i < 100; i++) {
		assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.51", "b.test"), "rest");
		assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.52", "b.test"), "banned");
		assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.51", "c.test"), "rest");
		assert_string_equal(last_ident.device, "tv-one");
		assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.52", "c.test"), "banned");
		run_for(&fx.loop, 1);
	}
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.53", "d.test"), "rest");
	devices_share_get_stats(fx.sh, &st);
	assert_true(st.observations >= 2);
	assert_true(fx.d->ndirty >= 3); /* the saved state still follows every query */
	expect_full(&fx, &full, false, "known devices' queries");
	teardown(&fx);
}

/* Each change of what the copy holds makes the next idle tick copy the table again, and a
 * worker then reads the device's new identity: a hostname from a lease refresh, an OS check
 * (the device is no longer attributed from behaviour: the worker's log record names no
 * vendor for its ROM name), an attribution, a pin of a device not seen yet, an expiry. */
static void
test_idle_changes(void **state)
{
	(void)state;
	struct fixture fx;
	uint64_t full = 0;
	char msg[256];

	setup_leases(&fx);
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.51", "a.test"), "rest");
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.54", "a.test"), "rest");
	struct devices_share_stats st;
	devices_share_get_stats(fx.sh, &st);
	full = st.full;
	/* the lease-known device: a hostname to copy */
	expect_full(&fx, &full, true, "the first queries");

	/* a hostname from the lease file */
	write_leases(&fx, "tv-two");
	devices_refresh_start(fx.d);
	wait_refresh(&fx);
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.51", "b.test"), "rest");
	expect_full(&fx, &full, true, "a lease hostname change");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.51", "c.test"), "rest");
	assert_string_equal(last_ident.device, "tv-two");
	expect_full(&fx, &full, false, "a worker's query");

	/* an OS check: nothing urgent (no vendor changes), but behaviour no longer attributes
	 * the device: a worker's log record of its ROM name names no vendor */
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.54", "captive.apple.com"), "rest");
	expect_full(&fx, &full, true, "an OS check");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.54", SIGNATURE), "rest");
	assert_string_equal(last_ident.vendor, "");
	run_for(&fx.loop, 30);
	/* its ROM name counted, the copy unchanged */
	expect_full(&fx, &full, false, "a ROM name not acted on");

	/* an attribution (a new device) */
	assert_string_equal(owner_query(fx.d, fx.p, "127.0.0.52", SIGNATURE), "rest");
	expect_full(&fx, &full, true, "an attribution");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.52", "d.test"), "banned");

	/* a pin of a device not seen yet */
	struct devices_admin_req req = {.op = DEVICES_ADMIN_PIN};
	strcpy(req.target, "ip:127.0.0.53");
	strcpy(req.group, "staff");
	assert_int_equal(devices_admin_run(fx.d, &req, msg, sizeof(msg)), 0);
	expect_full(&fx, &full, true, "a pin");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.53", "e.test"), "staff");
	run_for(&fx.loop, 30);
	expect_full(&fx, &full, false, "the pinned device's query");

	/* an expiry: the attributed address-only device is forgotten (no query for
	 * address_ttl_s); the copy no longer has its attribution */
	struct devices_record *r = devices_int_lookup(fx.d, "ip:127.0.0.52");
	assert_non_null(r);
	r->last_seen = 1;
	devices_on_save_timer(&fx.d->save_timer);
	assert_null(devices_find(fx.d, "ip:127.0.0.52"));
	expect_full(&fx, &full, true, "an expiry");
	assert_string_equal(reader_query(fx.r, fx.p, "127.0.0.52", "f.test"), "rest");
	teardown(&fx);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attribution_round_trip),
		cmocka_unit_test(test_held_snapshot_kept),
		cmocka_unit_test(test_queue_full),
		cmocka_unit_test(test_owner_replays_first),
		cmocka_unit_test(test_replay_order_across_workers),
		cmocka_unit_test(test_admin_after_queued),
		cmocka_unit_test(test_drop_ends_attribution),
		cmocka_unit_test(test_idle_quiet),
		cmocka_unit_test(test_idle_changes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
