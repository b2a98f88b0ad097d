/* test_iptable.c - open connections per client address */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "proxy/iptable.h"

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

/* A script of operations on one table: '+' inc (expect the new count),
 * '-' dec. Addresses carry ports to show they are ignored. */
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
	{ "an entry at zero is gone: a new connection counts 1",
	  { { '+', "198.51.100.1", 0, 1 }, { '-', "198.51.100.1", 0, 0 },
	    { '+', "198.51.100.1", 0, 1 }, { '-', "198.51.100.1", 0, 0 },
	    { '-', "198.51.100.1", 0, 0 }, { '-', "198.51.100.1", 0, 0 },
	    { '+', "198.51.100.1", 0, 1 }, { '+', "::ffff:198.51.100.1", 0, 2 }, END } },
	{ "dec of an unknown address is harmless",
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
		struct iptable *t = iptable_new();

		assert_non_null(t);
		for (size_t k = 0; scripts[s].ops[k].op; k++) {
			const struct op *o = &scripts[s].ops[k];
			struct sockaddr_storage ss;

			if (o->op == '+') {
				int got = iptable_inc(t, addr(o->ip, o->port, &ss));

				if (got != o->want)
					fail_msg("\"%s\" step %zu: inc %s gave %d, want %d", scripts[s].name, k,
					         o->ip, got, o->want);
			} else {
				iptable_dec(t, addr(o->ip, o->port, &ss));
			}
		}
		iptable_free(t);
	}
}

/* Many addresses (more than there are buckets, so chains form), each with
 * its own count, released in another order: every count stays right. */
static void test_many(void **state)
{
	enum { N = 20000 };
	struct iptable *t = iptable_new();
	int *count = calloc(N, sizeof *count);
	struct sockaddr_storage ss;

	assert_non_null(t);
	assert_non_null(count);
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < N; i++) {
			struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
			struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

			if (i % 3 == round % 3 && round > 0)
				continue;
			memset(&ss, 0, sizeof ss);
			if (i & 1) {
				s6->sin6_family = AF_INET6;
				s6->sin6_addr.s6_addr[0] = 0x20;
				s6->sin6_addr.s6_addr[1] = 0x01;
				memcpy(&s6->sin6_addr.s6_addr[12], &i, sizeof i);
			} else {
				s4->sin_family = AF_INET;
				s4->sin_addr.s_addr = htonl(0x0a000000u + (uint32_t)i);
			}
			int got = iptable_inc(t, (struct sockaddr *)&ss);
			if (got != ++count[i])
				fail_msg("address %d round %d: %d, want %d", i, round, got, count[i]);
		}
	}
	/* release from the end, one at a time, checking via inc/dec */
	for (int i = N - 1; i >= 0; i--) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		memset(&ss, 0, sizeof ss);
		if (i & 1) {
			s6->sin6_family = AF_INET6;
			s6->sin6_addr.s6_addr[0] = 0x20;
			s6->sin6_addr.s6_addr[1] = 0x01;
			memcpy(&s6->sin6_addr.s6_addr[12], &i, sizeof i);
		} else {
			/* the v4 ones are released through their v4-mapped spelling */
			s6->sin6_family = AF_INET6;
			s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
			uint32_t a = htonl(0x0a000000u + (uint32_t)i);
			memcpy(&s6->sin6_addr.s6_addr[12], &a, 4);
		}
		while (count[i] > 1) {
			iptable_dec(t, (struct sockaddr *)&ss);
			count[i]--;
		}
		if (i % 5 == 0) {
			/* peek: one more, then back */
			assert_int_equal(iptable_inc(t, (struct sockaddr *)&ss), count[i] + 1);
			iptable_dec(t, (struct sockaddr *)&ss);
		}
		iptable_dec(t, (struct sockaddr *)&ss);
		count[i] = 0;
		if (i % 7 == 0) {
			assert_int_equal(iptable_inc(t, (struct sockaddr *)&ss), 1);
			iptable_dec(t, (struct sockaddr *)&ss);
		}
	}
	free(count);
	iptable_free(t);
}

/* Entries are freed at zero, not kept: the heap goes back to where it was
 * (glibc's own accounting; under ASan mallinfo2 is not meaningful, and a
 * leak would show in LeakSanitizer instead). */
static void test_entries_freed_at_zero(void **state)
{
	struct iptable *t = iptable_new();
	struct sockaddr_storage ss;
	size_t before, peak, after;

	assert_non_null(t);
	before = mallinfo2().uordblks;
	for (int i = 0; i < 5000; i++) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		memset(&ss, 0, sizeof ss);
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0xc0000000u + (uint32_t)i);
		iptable_inc(t, (struct sockaddr *)&ss);
		iptable_inc(t, (struct sockaddr *)&ss);
	}
	peak = mallinfo2().uordblks;
	for (int i = 0; i < 5000; i++) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		memset(&ss, 0, sizeof ss);
		s4->sin_family = AF_INET;
		s4->sin_addr.s_addr = htonl(0xc0000000u + (uint32_t)i);
		iptable_dec(t, (struct sockaddr *)&ss);
		iptable_dec(t, (struct sockaddr *)&ss);
	}
	after = mallinfo2().uordblks;
	if (peak > before) {
		/* 5000 entries took memory; all of it must be back */
		assert_true(peak - before >= 5000 * 16);
		if (after != before)
			fail_msg("heap in use: before %zu, with 5000 entries %zu, after all dec %zu",
			         before, peak, after);
	}
	iptable_free(t);
}

static void test_free_null_and_nonempty(void **state)
{
	struct iptable *t = iptable_new();
	struct sockaddr_storage ss;

	iptable_free(NULL);
	assert_non_null(t);
	assert_int_equal(iptable_inc(t, addr("192.0.2.1", 1, &ss)), 1);
	assert_int_equal(iptable_inc(t, addr("2001:db8::1", 1, &ss)), 1);
	/* freed with entries still in: LeakSanitizer checks nothing is lost */
	iptable_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scripts),
		cmocka_unit_test(test_many),
		cmocka_unit_test(test_entries_freed_at_zero),
		cmocka_unit_test(test_free_null_and_nonempty),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
