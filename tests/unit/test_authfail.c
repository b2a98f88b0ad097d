/* test_authfail.c - failed AUTH per address across workers: the limit in a
 * fixed window, the block for a whole window from the failure that reached
 * it, one key for IPv4 and its v4-mapped spelling, a full table that keeps
 * its blocks, processes counting together, a worker dying with the lock */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/wait.h>
#include <unistd.h>

#include "proxy/authfail.h"
#include "proxy/lib/bounds.h"

static const struct sockaddr *addr(const char *s, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof *ss);
	if (strchr(s, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, s, &s6->sin6_addr) != 1)
			fail_msg("bad test address %s", s);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

		s4->sin_family = AF_INET;
		if (inet_pton(AF_INET, s, &s4->sin_addr) != 1)
			fail_msg("bad test address %s", s);
	}
	return (const struct sockaddr *)ss;
}

static const struct sockaddr *nth(uint32_t i, struct sockaddr_storage *ss)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	memset(ss, 0, sizeof *ss);
	s4->sin_family = AF_INET;
	s4->sin_addr.s_addr = htonl(0x0a000000u + i);
	return (const struct sockaddr *)ss;
}

#define LIMIT 5
#define WINDOW 600

static void test_window(void **state)
{
	struct authfail *t = authfail_new();
	struct sockaddr_storage a, b, m;
	const struct sockaddr *sa = addr("192.0.2.7", &a), *other = addr("192.0.2.8", &b);
	long long now = 1000;

	assert_non_null(t);
	for (int i = 1; i < LIMIT; i++) {
		assert_int_equal(authfail_add(t, sa, LIMIT, WINDOW, now + i), 0);
		assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, now + i), 0);
	}
	/* the fifth, late in the window: blocked a whole window from it */
	assert_int_equal(authfail_add(t, sa, LIMIT, WINDOW, now + 500), 1);
	assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, now + 500), 1);
	assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, now + 500 + WINDOW - 1), 1);
	assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, now + 500 + WINDOW), 0);
	/* the v4-mapped spelling is the same address; another is not */
	assert_int_equal(authfail_blocked(t, addr("::ffff:192.0.2.7", &m), LIMIT, WINDOW, now + 501), 1);
	assert_int_equal(authfail_blocked(t, other, LIMIT, WINDOW, now + 501), 0);
	/* after the window the count starts over */
	assert_int_equal(authfail_add(t, sa, LIMIT, WINDOW, now + 500 + WINDOW), 0);
	assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, now + 500 + WINDOW), 0);
	/* failures of an old window do not count in a new one */
	for (int i = 1; i < LIMIT; i++)
		assert_int_equal(authfail_add(t, other, LIMIT, WINDOW, now + i), 0);
	assert_int_equal(authfail_add(t, other, LIMIT, WINDOW, now + WINDOW + 1), 0);
	assert_int_equal(authfail_blocked(t, other, LIMIT, WINDOW, now + WINDOW + 1), 0);
	/* no limit: nothing counts; no table: likewise */
	assert_int_equal(authfail_add(t, other, 0, WINDOW, now), 0);
	assert_int_equal(authfail_blocked(t, other, 0, WINDOW, now), 0);
	assert_int_equal(authfail_add(NULL, sa, LIMIT, WINDOW, now), 0);
	assert_int_equal(authfail_blocked(NULL, sa, LIMIT, WINDOW, now), 0);
	/* a limit of 1: the first failure blocks */
	assert_int_equal(authfail_add(t, addr("2001:db8::1", &m), 1, WINDOW, now), 1);
	assert_int_equal(authfail_blocked(t, addr("2001:db8::1", &m), 1, WINDOW, now), 1);
	authfail_free(t);
}

/* More blocked addresses than slots: those counted stay blocked (a client
 * of many addresses cannot unblock one by failing with the others); the
 * others are not counted. Unblocked ones make room. */
static void test_full(void **state)
{
	struct authfail *t = authfail_new();
	struct sockaddr_storage ss;
	uint32_t n = MOAT_AUTHFAIL_SLOTS + MOAT_AUTHFAIL_SLOTS / 2, blocked = 0, first = 0;

	assert_non_null(t);
	for (uint32_t i = 0; i < n; i++) {
		if (authfail_add(t, nth(i, &ss), 1, WINDOW, 100) == 1 && blocked++ == 0)
			first = i;
	}
	assert_true(blocked <= MOAT_AUTHFAIL_SLOTS);
	assert_true(blocked > MOAT_AUTHFAIL_SLOTS / 2);
	assert_int_equal(authfail_blocked(t, nth(first, &ss), 1, WINDOW, 100), 1);
	for (uint32_t i = 0, still = 0; i < n; i++) {
		still += (uint32_t)authfail_blocked(t, nth(i, &ss), 1, WINDOW, 101);
		if (i == n - 1)
			assert_int_equal(still, blocked);
	}
	/* a window later every slot is free again */
	assert_int_equal(authfail_add(t, nth(n, &ss), 1, WINDOW, 100 + WINDOW), 1);
	authfail_free(t);
}

/* Workers count in one table; one that dies holding the lock leaves it to
 * the others. */
static void test_processes(void **state)
{
	struct authfail *t = authfail_new();
	struct sockaddr_storage ss;
	const struct sockaddr *sa = addr("198.51.100.1", &ss);
	int status;

	assert_non_null(t);
	for (int w = 0; w < LIMIT - 1; w++) {
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0)
			_exit(authfail_add(t, sa, LIMIT, WINDOW, 10) == 0 ? 0 : 1);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, 10), 0);
	{
		pid_t pid = fork();

		assert_true(pid >= 0);
		if (pid == 0) {
			authfail_lock(t);
			_exit(0);
		}
		assert_int_equal(waitpid(pid, &status, 0), pid);
	}
	assert_int_equal(authfail_add(t, sa, LIMIT, WINDOW, 11), 1);
	assert_int_equal(authfail_blocked(t, sa, LIMIT, WINDOW, 11), 1);
	authfail_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_window),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_processes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
