/* test_greylist.c - greylisting's and rate limits' pure parts: the client
 * network (/24, /64, IPv4-mapped IPv6 as IPv4), the store's keys, the
 * config's parameters, windows and reset times in words */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "proxy/config.h"
#include "proxy/greylist.h"
#include "proxy/ratelimit.h"

static void net_of(const char *addr, char *out, size_t size)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };

	if (inet_pton(AF_INET, addr, &sin.sin_addr) == 1)
		assert_int_equal(greylist_network((struct sockaddr *)&sin, out, size), 0);
	else if (inet_pton(AF_INET6, addr, &sin6.sin6_addr) == 1)
		assert_int_equal(greylist_network((struct sockaddr *)&sin6, out, size), 0);
	else
		fail_msg("bad address %s", addr);
}

static void test_network(void **state)
{
	static const struct { const char *addr, *net; } rows[] = {
		{ "192.0.2.1", "192.0.2.0/24" },
		{ "192.0.2.255", "192.0.2.0/24" },
		{ "10.1.2.3", "10.1.2.0/24" },
		{ "::ffff:192.0.2.77", "192.0.2.0/24" },   /* IPv4-mapped counts as IPv4 */
		{ "::FFFF:10.1.2.3", "10.1.2.0/24" },
		{ "2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64" },
		{ "2001:db8:1:2::1", "2001:db8:1:2::/64" },
		{ "2001:db8::1", "2001:db8::/64" },
		{ "::1", "::/64" },
		{ "::192.0.2.1", "::/64" },                 /* IPv4-compatible is not mapped: IPv6 */
	};
	struct sockaddr sa = { .sa_family = AF_UNIX };
	char out[64];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		net_of(rows[i].addr, out, sizeof out);
		if (strcmp(out, rows[i].net) != 0)
			fail_msg("%s: got %s, want %s", rows[i].addr, out, rows[i].net);
	}
	assert_int_equal(greylist_network(&sa, out, sizeof out), -1);
}

static void test_keys(void **state)
{
	char t[STORE_KEY_MAX], c[STORE_KEY_MAX], t2[STORE_KEY_MAX], c2[STORE_KEY_MAX], lp[300];

	greylist_keys("192.0.2.0/24", "Alice@Example.COM", "Bob@example.org", t, c);
	assert_string_equal(t, "g:192.0.2.0/24|alice@example.com|bob@example.org");
	assert_string_equal(c, "ga:192.0.2.0/24");
	greylist_keys("2001:db8::/64", "", "bob@example.org", t, c); /* the null sender: its own value */
	assert_string_equal(t, "g:2001:db8::/64|<>|bob@example.org");
	assert_string_equal(c, "ga:2001:db8::/64");
	/* too long for a key: hashed, the same for the same pair, another for another */
	memset(lp, 'x', sizeof lp - 1);
	lp[sizeof lp - 1] = '\0';
	memcpy(lp + 250, "@a.example", 11);
	greylist_keys("192.0.2.0/24", lp, lp, t, c);
	assert_true(strlen(t) < STORE_KEY_MAX);
	assert_int_equal(strncmp(t, "g:192.0.2.0/24|#", 16), 0);
	assert_int_equal(strlen(t), 16 + 16);
	greylist_keys("192.0.2.0/24", lp, lp, t2, c2);
	assert_string_equal(t, t2);
	lp[0] = 'y';
	greylist_keys("192.0.2.0/24", lp, lp, t2, c2);
	assert_string_not_equal(t, t2);
}

static void test_params(void **state)
{
	struct config *c = config_new_defaults();
	struct store_grey_params p;

	assert_non_null(c);
	greylist_params(c, &p);
	assert_int_equal(p.delay, 300);
	assert_int_equal(p.retry_window, 86400);
	assert_int_equal(p.auto_allow, 5);
	assert_int_equal(p.pass_ttl, 35 * 86400);
	assert_int_equal(p.auto_allow_ttl, 35 * 86400);
	config_unref(c);
	assert_int_equal(greylist_state(STORE_GREY_FIRST), GREY_FIRST);
	assert_int_equal(greylist_state(STORE_GREY_EARLY), GREY_EARLY);
	assert_int_equal(greylist_state(STORE_GREY_PASSED), GREY_PASSED);
	assert_int_equal(greylist_state(STORE_GREY_ALLOWED), GREY_ALLOWED);
	assert_int_equal(greylist_state(STORE_GREY_SKIPPED), GREY_SKIPPED);
}

static void test_config_errors(void **state)
{
	char err[512];
	const char *bad = "greylist_delay = 600\ngreylist_retry_window = 600\n";
	struct config *c = config_parse(bad, strlen(bad), "t.conf", err, sizeof err);

	assert_null(c);
	assert_string_equal(err, "t.conf:2: greylist_retry_window (600 s) must be longer than greylist_delay "
	                         "(600 s): a retry after the delay must still find its first attempt");
	c = config_parse("greylist_delay = 1\ngreylist_retry_window = 30\n", 44, "t.conf", err, sizeof err);
	assert_non_null(c);
	assert_int_equal(c->greylist_delay, 1);
	config_unref(c);
}

static void test_ratelimit_key(void **state)
{
	struct rule_limit l = { LIMIT_CLIENT, LIMIT_MESSAGES, 100, 3600, NULL, 0, NULL };
	char k[STORE_KEY_MAX], big[600];

	assert_string_equal(ratelimit_subject(&l, "192.0.2.1", "example.org", NULL), "192.0.2.1");
	ratelimit_key(&l, "192.0.2.1", k);
	assert_string_equal(k, "r:m:c:100/3600:192.0.2.1");
	l.key = LIMIT_SENDER_DOMAIN;
	l.unit = LIMIT_RECIPIENTS;
	assert_string_equal(ratelimit_subject(&l, "192.0.2.1", "example.org", NULL), "example.org");
	assert_null(ratelimit_subject(&l, "192.0.2.1", "", NULL)); /* the null sender has no domain */
	ratelimit_key(&l, "Example.ORG", k);
	assert_string_equal(k, "r:r:d:100/3600:example.org");
	l.key = LIMIT_AUTH_USER;
	assert_null(ratelimit_subject(&l, "192.0.2.1", "example.org", NULL)); /* not authenticated */
	assert_string_equal(ratelimit_subject(&l, "192.0.2.1", "example.org", "Alice"), "Alice");
	ratelimit_key(&l, "Alice", k);
	assert_string_equal(k, "r:r:u:100/3600:alice");
	memset(big, 'a', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	ratelimit_key(&l, big, k);
	assert_int_equal(strncmp(k, "r:r:u:100/3600:#", 16), 0);
	assert_int_equal(strlen(k), 16 + 16);
}

static void test_window_text(void **state)
{
	static const struct { int w; const char *t; } rows[] = {
		{ 1, "per second" }, { 45, "per 45 seconds" }, { 60, "per minute" }, { 600, "per 10 minutes" },
		{ 90, "per 90 seconds" }, { 3600, "per hour" }, { 7200, "per 2 hours" }, { 5400, "per 90 minutes" },
		{ 86400, "per day" }, { 7 * 86400, "per 7 days" },
	};
	char buf[64];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		ratelimit_window_text(rows[i].w, buf, sizeof buf);
		assert_string_equal(buf, rows[i].t);
	}
	assert_int_equal(rules_window_parse("30s"), 30);
	assert_int_equal(rules_window_parse("10m"), 600);
	assert_int_equal(rules_window_parse("h"), 3600);
	assert_int_equal(rules_window_parse("2D"), 172800);
	assert_int_equal(rules_window_parse("366d"), 366 * 86400);
	assert_int_equal(rules_window_parse("367d"), -1);
	assert_int_equal(rules_window_parse("0s"), -1);
	assert_int_equal(rules_window_parse("1"), -1);
	assert_int_equal(rules_window_parse("1hh"), -1);
	assert_int_equal(rules_window_parse(""), -1);
}

static void test_reset_text(void **state)
{
	/* 2026-12-08 13:20:00 UTC */
	long long now = 1796736000LL;
	struct rule_limit l = { LIMIT_CLIENT, LIMIT_MESSAGES, 100, 3600, NULL, 0, NULL };
	char buf[200];

	ratelimit_reset_text(now - now % 3600 + 3600, now, buf, sizeof buf);
	assert_string_equal(buf, "14:00:00 UTC");
	ratelimit_reset_text(now - now % 86400 + 86400, now, buf, sizeof buf);
	assert_string_equal(buf, "2026-12-09 00:00:00 UTC");
	ratelimit_text(&l, "192.0.2.1", now - now % 3600 + 3600, now, buf, sizeof buf);
	assert_string_equal(buf, "100 messages per hour for 192.0.2.1 reached, try again after 14:00:00 UTC");
	l = (struct rule_limit){ LIMIT_AUTH_USER, LIMIT_RECIPIENTS, 1, 600, NULL, 0, NULL };
	ratelimit_text(&l, "al\r\nice", now - now % 600 + 600, now, buf, sizeof buf);
	assert_string_equal(buf, "1 recipient per 10 minutes for al??ice reached, try again after 13:30:00 UTC");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_network),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_ratelimit_key),
		cmocka_unit_test(test_window_text),
		cmocka_unit_test(test_reset_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
