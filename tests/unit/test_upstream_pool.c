/*
 * Loop tests for the upstream socket pool (resolver/dns/upstream_sock.c): sockets carry at most
 * UPSTREAM_SOCK_QUERIES queries and are replaced, idle ones are retired after UPSTREAM_SOCK_MS,
 * several attempts share a socket with distinct IDs, and the descriptors stay bounded. Same
 * harness as test_upstream.c; the teardown checks that upstream_close() completes and
 * uv_loop_close() returns 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "dnsmsg.h"
#include "upstream.h"
#include "upstream_int.h"
#include "upstream_harness.h"

/* Counts the pool's sockets: open (slot or retired), in a slot, the most uses of a slot's. */
static void
pool_count(const struct upstream *u, unsigned *open, unsigned *slots, unsigned *max_uses)
{
	*open = *slots = *max_uses = 0;
	for (const struct upstream_sockset *set = u->sets; set != NULL; set = set->next) {
		*open += set->nopen;
		for (unsigned i = 0; i < UPSTREAM_SOCKS; i++) {
			if (set->slot[i] == NULL)
				continue;
			(*slots)++;
			if (set->slot[i]->uses > *max_uses)
				*max_uses = set->slot[i]->uses;
		}
	}
}

/* The pool: 3,000 queries in batches of 100 in flight. No socket carries more than
 * UPSTREAM_SOCK_QUERIES queries, sockets are retired and replaced (more opened than the pool
 * holds), the descriptors in use stay bounded, and with no traffic every socket is retired and
 * closed after its age (the sweep). */
static void
test_pool_rotation(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	static struct result r[100];
	struct dnsmsg_query q;
	char name[32];
	unsigned open, slots, max_uses, most_open = 0;

	env_start(env, 3000);
	for (int round = 0; round < 30; round++) {
		for (int i = 0; i < 100; i++) {
			r[i] = (struct result){ 0 };
			snprintf(name, sizeof(name), "p%d-%d.example", round, i);
			make_query(&q, name, 1, false, false);
			query(env, &q, &r[i], NULL);
		}
		for (int i = 0; i < 100; i++) {
			assert_true(run_until(env, &r[i].calls, 1, 5000));
			assert_int_equal(r[i].status, 0);
		}
		pool_count(env->u, &open, &slots, &max_uses);
		assert_true(max_uses <= UPSTREAM_SOCK_QUERIES);
		assert_true(slots <= UPSTREAM_SOCKS);
		if (open > most_open)
			most_open = open;
	}
	struct upstream_stats st = stats(env);
	assert_int_equal(f->nudp, 3000);
	assert_int_equal(st.sent_udp, 3000);
	assert_int_equal(st.dropped_replies, 0);
	/* 3,000 queries do not fit in UPSTREAM_SOCKS sockets of UPSTREAM_SOCK_QUERIES each */
	assert_true(st.sockets_opened >= 3000 / UPSTREAM_SOCK_QUERIES);
	assert_true(st.sockets_opened > UPSTREAM_SOCKS);
	/* answered at once, so retired sockets close at once: the pool and little more */
	assert_true(most_open <= UPSTREAM_SOCKS + 2);
	/* idle: the sweep retires every socket within two periods and closes it */
	run_for(env, 2 * UPSTREAM_SOCK_MS + 200);
	pool_count(env->u, &open, &slots, &max_uses);
	assert_int_equal(slots, 0);
	assert_int_equal(open, 0);
}

/* Attempts on one socket hold distinct IDs, and a reply is matched on its socket only: the
 * real reply of each of 100 queries in flight at once is taken (none dropped), with no more
 * sockets than the pool holds. */
static void
test_pool_shared_socket(void **state)
{
	struct env *env = *state;
	struct fake *f = fake_add(env, AF_INET, FAKE_ANSWER, false);
	static struct result r[100];
	struct dnsmsg_query q;
	char name[32];
	unsigned open, slots, max_uses;

	f->delay_ms = 200;
	env_start(env, 3000);
	for (int i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "s%d.example", i);
		make_query(&q, name, 1, false, false);
		query(env, &q, &r[i], NULL);
	}
	assert_true(run_until(env, (const int *)&f->nudp, 100, 3000));
	pool_count(env->u, &open, &slots, &max_uses);
	assert_true(open <= UPSTREAM_SOCKS);
	assert_true(max_uses >= 100 / UPSTREAM_SOCKS);	/* several queries per socket */
	for (const struct upstream_sockset *set = env->u->sets; set != NULL; set = set->next) {
		for (unsigned i = 0; i < UPSTREAM_SOCKS; i++) {
			const struct upstream_sock *sk = set->slot[i];
			if (sk == NULL)
				continue;
			assert_int_equal(sk->nattempts, sk->uses);
			for (unsigned b = 0; b < UPSTREAM_SOCK_BUCKETS; b++)
				for (const struct upstream_attempt *a = sk->ids[b]; a != NULL;
				     a = a->idnext) {
					assert_ptr_equal(a->sock, sk);
					for (const struct upstream_attempt *o = a->idnext; o != NULL;
					     o = o->idnext)
						assert_int_not_equal(a->id, o->id);
				}
		}
	}
	for (int i = 0; i < 100; i++) {
		assert_true(run_until(env, &r[i].calls, 1, 5000));
		assert_int_equal(r[i].status, 0);
	}
	assert_int_equal(stats(env).dropped_replies, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_pool_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pool_shared_socket, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
