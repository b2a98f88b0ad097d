/* test_conntable.c - connections counted across workers: the key of an
 * address, exact limits whichever worker counts, a full table, a dead
 * worker's connections given back, a worker dying with the lock held,
 * processes counting at once */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <signal.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/conntable.h"
#include "proxy/lib/bounds.h"

static const struct sockaddr *addr(const char *s, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(s, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, s, &s6->sin6_addr) != 1)
			fail_msg("bad test address %s", s);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, s, &s4->sin_addr) != 1)
			fail_msg("bad test address %s", s);
	}
	return (const struct sockaddr *)ss;
}

/* The i-th of many addresses: IPv4 for even i, IPv6 for odd. */
static const struct sockaddr *nth(int i, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (i & 1) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_addr.s6_addr[0] = 0x20;
		s6->sin6_addr.s6_addr[1] = 0x01;
		memcpy(&s6->sin6_addr.s6_addr[12], &i, sizeof i);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
	}
	return (const struct sockaddr *)ss;
}

/* A script of operations by worker 0 without a limit: '+' take (expect
 * the address's count after it), '-' give. Addresses carry ports to show
 * they are ignored. */
struct op {
	char op;
	const char *ip;
	int port;
	int want; /* for '+' */
};

#define END { 0, NULL, 0, 0 }
static const struct {
	const char *name;
	struct op ops[24];
} scripts[] = {
	{ "counts go up and down",
	  { { '+', "192.0.2.1", 1, 1 }, { '+', "192.0.2.1", 2, 2 }, { '+', "192.0.2.1", 3, 3 },
	    { '-', "192.0.2.1", 4, 0 }, { '+', "192.0.2.1", 5, 3 }, { '-', "192.0.2.1", 5, 0 },
	    { '-', "192.0.2.1", 5, 0 }, { '+', "192.0.2.1", 6, 2 }, END } },
	{ "addresses are counted apart",
	  { { '+', "192.0.2.1", 1, 1 }, { '+', "192.0.2.2", 1, 1 }, { '+', "192.0.2.1", 1, 2 },
	    { '+', "2001:db8::1", 1, 1 }, { '+', "2001:db8::2", 1, 1 }, { '+', "2001:db8::1", 9, 2 },
	    { '+', "10.0.0.1", 1, 1 }, { '+', "1.0.0.10", 1, 1 }, { '+', "::", 1, 1 },
	    { '+', "0.0.0.0", 1, 1 }, END } },
	{ "v4 and v4-mapped v6 are one address",
	  { { '+', "192.0.2.7", 25, 1 }, { '+', "::ffff:192.0.2.7", 26, 2 },
	    { '+', "192.0.2.7", 27, 3 }, { '-', "::ffff:192.0.2.7", 0, 0 },
	    { '+', "::ffff:192.0.2.7", 0, 3 }, { '+', "::ffff:192.0.2.8", 0, 1 },
	    { '+', "192.0.2.8", 0, 2 }, END } },
	{ "v4-compatible and other embeddings are not v4",
	  { { '+', "192.0.2.7", 0, 1 }, { '+', "::192.0.2.7", 0, 1 }, { '+', "64:ff9b::192.0.2.7", 0, 1 },
	    { '+', "::ffff:0:192.0.2.7", 0, 1 }, { '+', "192.0.2.7", 0, 2 }, END } },
	{ "an address at zero is gone: a new connection counts 1",
	  { { '+', "198.51.100.1", 0, 1 }, { '-', "198.51.100.1", 0, 0 },
	    { '+', "198.51.100.1", 0, 1 }, { '-', "198.51.100.1", 0, 0 },
	    { '-', "198.51.100.1", 0, 0 }, { '-', "198.51.100.1", 0, 0 },
	    { '+', "198.51.100.1", 0, 1 }, { '+', "::ffff:198.51.100.1", 0, 2 }, END } },
	{ "giving back an unknown address is harmless",
	  { { '-', "203.0.113.9", 0, 0 }, { '-', "2001:db8::9", 0, 0 }, { '+', "203.0.113.9", 0, 1 },
	    { '-', "203.0.113.10", 0, 0 }, { '+', "203.0.113.9", 0, 2 }, END } },
	{ "removing one address leaves the others",
	  { { '+', "192.0.2.1", 0, 1 }, { '+', "192.0.2.2", 0, 1 }, { '+', "192.0.2.3", 0, 1 },
	    { '-', "192.0.2.2", 0, 0 }, { '+', "192.0.2.1", 0, 2 }, { '+', "192.0.2.3", 0, 2 },
	    { '+', "192.0.2.2", 0, 1 }, END } },
};

static void test_scripts(void **state)
{
	for (size_t s = 0; s < sizeof scripts / sizeof scripts[0]; s++) {
		struct conntable *t = conntable_new(1);

		assert_non_null(t);
		for (size_t k = 0; scripts[s].ops[k].op; k++) {
			const struct op *o = &scripts[s].ops[k];
			struct sockaddr_storage ss;
			const struct sockaddr *sa = addr(o->ip, o->port, &ss);

			if (o->op == '+') {
				int got;

				assert_int_equal(conntable_take_addr(t, 0, sa, INT_MAX), CONN_TAKEN);
				got = conntable_count(t, sa);
				if (got != o->want)
					fail_msg("\"%s\" step %zu: take %s gave %d, want %d", scripts[s].name, k,
					         o->ip, got, o->want);
			} else {
				conntable_give_addr(t, 0, sa);
			}
		}
		conntable_free(t);
	}
}

/* A limit of 20 from one address admits exactly 20 whichever workers
 * count them, and one more as soon as one is given back. */
static void test_limit_exact_across_workers(void **state)
{
	struct conntable *t = conntable_new(4);
	struct sockaddr_storage ss, other;
	const struct sockaddr *a = addr("192.0.2.1", 0, &ss);
	int i;

	assert_non_null(t);
	for (i = 0; i < 20; i++)
		assert_int_equal(conntable_take_addr(t, i % 4, a, 20), CONN_TAKEN);
	for (i = 0; i < 4; i++)
		assert_int_equal(conntable_take_addr(t, i, a, 20), CONN_OVER);
	assert_int_equal(conntable_count(t, a), 20);
	/* a refusal is not counted; another address has its own 20 */
	assert_int_equal(conntable_take_addr(t, 2, addr("192.0.2.2", 0, &other), 20), CONN_TAKEN);
	conntable_give_addr(t, 3, a);
	assert_int_equal(conntable_count(t, a), 19);
	assert_int_equal(conntable_take_addr(t, 0, a, 20), CONN_TAKEN);
	assert_int_equal(conntable_take_addr(t, 1, a, 20), CONN_OVER);
	/* a worker gives back only what it counted */
	for (i = 0; i < 10; i++)
		conntable_give_addr(t, 3, a);
	assert_int_equal(conntable_count(t, a), 16);
	conntable_free(t);
}

/* The total: exact across workers; giving back below zero is ignored. */
static void test_total(void **state)
{
	struct conntable *t = conntable_new(3);
	int i;

	assert_non_null(t);
	for (i = 0; i < 20; i++)
		assert_int_equal(conntable_take(t, i % 3, 20), 1);
	for (i = 0; i < 3; i++)
		assert_int_equal(conntable_take(t, i, 20), 0);
	assert_int_equal(conntable_total(t), 20);
	conntable_give(t, 1);
	assert_int_equal(conntable_take(t, 2, 20), 1);
	assert_int_equal(conntable_take(t, 0, 20), 0);
	for (i = 0; i < 10; i++)
		conntable_give(t, 1); /* worker 1 held 6 */
	assert_int_equal(conntable_total(t), 14);
	assert_null(conntable_new(0));
	assert_null(conntable_new(MOAT_WORKERS_MAX + 1));
	conntable_free(t);
	conntable_free(NULL);
}

/* A dead worker's connections, in all and per address, are given back
 * (and only its own); its successor counts afresh. */
static void test_dead_worker_given_back(void **state)
{
	struct conntable *t = conntable_new(3);
	struct sockaddr_storage ss;
	int i, w;

	assert_non_null(t);
	for (i = 0; i < 300; i++) {
		w = i % 3;
		assert_int_equal(conntable_take(t, w, 1000), 1);
		assert_int_equal(conntable_take_addr(t, w, nth(i % 50, &ss), 1000), CONN_TAKEN);
	}
	conntable_forget(t, 1);
	assert_int_equal(conntable_total(t), 200);
	for (i = 0; i < 50; i++) /* each address had 6, two from each worker */
		assert_int_equal(conntable_count(t, nth(i, &ss)), 4);
	/* worker 1 restarted: it counts from nothing; forgetting twice is harmless */
	assert_int_equal(conntable_take_addr(t, 1, nth(0, &ss), 5), CONN_TAKEN);
	assert_int_equal(conntable_take_addr(t, 1, nth(0, &ss), 5), CONN_OVER);
	conntable_forget(t, 1);
	conntable_forget(t, 1);
	assert_int_equal(conntable_count(t, nth(0, &ss)), 4);
	conntable_forget(t, 0);
	conntable_forget(t, 2);
	assert_int_equal(conntable_total(t), 0);
	for (i = 0; i < 50; i++)
		assert_int_equal(conntable_count(t, nth(i, &ss)), 0);
	conntable_free(t);
}

/* Full: an address with no room is refused and not counted; the others
 * keep their counts; room given back is used again. */
static void test_full(void **state)
{
	struct conntable *t = conntable_new(2);
	struct sockaddr_storage ss;
	int i, n, first_full = -1;

	assert_non_null(t);
	for (i = 0; i < MOAT_CONN_TABLE_SLOTS + 1; i++) {
		enum conn_take r = conntable_take_addr(t, 0, nth(i, &ss), 1);

		if (r == CONN_FULL && first_full < 0)
			first_full = i;
		assert_true(r == CONN_TAKEN || r == CONN_FULL);
		assert_int_equal(conntable_count(t, nth(i, &ss)), r == CONN_TAKEN);
	}
	/* more slots than addresses: some address found no room */
	assert_true(first_full >= 0);
	/* the windows overlap: the table fills well before a window does */
	assert_true(first_full > MOAT_CONN_TABLE_SLOTS / 2);
	for (i = n = 0; i < MOAT_CONN_TABLE_SLOTS + 1; i++)
		n += conntable_count(t, nth(i, &ss));
	assert_true(n > MOAT_CONN_TABLE_SLOTS * 9 / 10);
	assert_true(n <= MOAT_CONN_TABLE_SLOTS);
	/* the refused address: still refused while full, and never by its limit */
	assert_int_equal(conntable_take_addr(t, 1, nth(first_full, &ss), 1), CONN_FULL);
	/* worker 0 dies: its slots are free again */
	conntable_forget(t, 0);
	assert_int_equal(conntable_take_addr(t, 1, nth(first_full, &ss), 1), CONN_TAKEN);
	assert_int_equal(conntable_take_addr(t, 1, nth(first_full, &ss), 1), CONN_OVER);
	conntable_free(t);
}

/* A worker that dies holding the lock (exit, or kill -9 in the middle of
 * an accept) does not wedge the others, and its counts go with it. */
static void test_dead_lock_holder(void **state)
{
	struct conntable *t = conntable_new(2);
	struct sockaddr_storage ss;
	const struct sockaddr *a = addr("192.0.2.9", 0, &ss);

	assert_non_null(t);
	assert_int_equal(conntable_take_addr(t, 0, a, 20), CONN_TAKEN);
	for (int how = 0; how < 2; how++) {
		int status;
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			for (int i = 0; i < 5; i++)
				if (!conntable_take(t, 1, 100) || conntable_take_addr(t, 1, a, 20) != CONN_TAKEN)
					_exit(2);
			conntable_lock(t);
			if (how)
				raise(SIGKILL);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(how ? WIFSIGNALED(status) : WIFEXITED(status) && WEXITSTATUS(status) == 0);
		/* the lock is taken over; the supervisor gives worker 1's back */
		assert_int_equal(conntable_count(t, a), 6);
		conntable_forget(t, 1);
		assert_int_equal(conntable_count(t, a), 1);
		assert_int_equal(conntable_total(t), 0);
		assert_int_equal(conntable_take_addr(t, 0, a, 20), CONN_TAKEN);
		conntable_give_addr(t, 0, a);
	}
	conntable_free(t);
}

/* Processes counting one address at once never pass its limit together,
 * and leave nothing behind. */
static void test_processes_at_once(void **state)
{
	enum { WORKERS = 4, ROUNDS = 100000, LIMIT = 7 };
	struct conntable *t = conntable_new(WORKERS);
	struct sockaddr_storage ss;
	const struct sockaddr *a = addr("2001:db8::7", 0, &ss);
	pid_t pids[WORKERS];

	assert_non_null(t);
	for (int w = 0; w < WORKERS; w++) {
		pids[w] = fork();
		assert_true(pids[w] >= 0);
		if (pids[w] == 0) {
			int held = 0, bad = 0;

			for (int i = 0; i < ROUNDS; i++) {
				if ((i * 7 + w) % 3 != 0 && conntable_take_addr(t, w, a, LIMIT) == CONN_TAKEN) {
					held++;
					bad |= conntable_count(t, a) > LIMIT;
				} else if (held > 0) {
					conntable_give_addr(t, w, a);
					held--;
				}
			}
			while (held-- > 0)
				conntable_give_addr(t, w, a);
			_exit(bad);
		}
	}
	for (int w = 0; w < WORKERS; w++) {
		int status;

		assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
		assert_true(WIFEXITED(status));
		if (WEXITSTATUS(status) != 0)
			fail_msg("worker %d saw more than %d connections from one address", w, LIMIT);
	}
	assert_int_equal(conntable_count(t, a), 0);
	conntable_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_limit_exact_across_workers),
		cmocka_unit_test(test_total),
		cmocka_unit_test(test_dead_worker_given_back),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_dead_lock_holder),
		cmocka_unit_test(test_processes_at_once),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
