/* test_netaddr.c - CIDR and host:port parsing, address helpers */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "proxy/lib/netaddr.h"

/* Parse a test address that must be valid ("1.2.3.4:1", "[::1]:1"). */
static struct sockaddr *sa(const char *s, struct sockaddr_storage *ss)
{
	socklen_t len;

	if (hostport_parse(s, 0, ss, &len) != 0)
		fail_msg("test address \"%s\" does not parse", s);
	return (struct sockaddr *)ss;
}

static const struct {
	const char *in;
	int family, prefix;
	const char *net; /* network address after host bits are cleared */
} cidr_good[] = {
	{ "1.2.3.4", AF_INET, 32, "1.2.3.4" },
	{ "1.2.3.0/24", AF_INET, 24, "1.2.3.0" },
	{ "1.2.3.77/24", AF_INET, 24, "1.2.3.0" },
	{ "10.1.2.3/8", AF_INET, 8, "10.0.0.0" },
	{ "1.2.3.255/31", AF_INET, 31, "1.2.3.254" },
	{ "1.2.3.4/32", AF_INET, 32, "1.2.3.4" },
	{ "1.2.3.4/0", AF_INET, 0, "0.0.0.0" },
	{ "0.0.0.0/0", AF_INET, 0, "0.0.0.0" },
	{ "192.168.1.1/012", AF_INET, 12, "192.160.0.0" }, /* decimal, not octal */
	{ "::1", AF_INET6, 128, "::1" },
	{ "::", AF_INET6, 128, "::" },
	{ "::/0", AF_INET6, 0, "::" },
	{ "2001:db8::/32", AF_INET6, 32, "2001:db8::" },
	{ "2001:db8:ffff::1/33", AF_INET6, 33, "2001:db8:8000::" },
	{ "2001:DB8::1/127", AF_INET6, 127, "2001:db8::" },
	{ "fe80::1/10", AF_INET6, 10, "fe80::" },
	{ "::ffff:0:0/95", AF_INET6, 95, "::fffe:0:0" },
	/* v4-mapped networks are IPv4 networks */
	{ "::ffff:1.2.3.4", AF_INET, 32, "1.2.3.4" },
	{ "::ffff:10.1.2.3/104", AF_INET, 8, "10.0.0.0" },
	{ "::ffff:0:0/96", AF_INET, 0, "0.0.0.0" },
};

static void test_cidr_parse_good(void **state)
{
	for (size_t i = 0; i < sizeof cidr_good / sizeof cidr_good[0]; i++) {
		struct cidr c;
		char text[INET6_ADDRSTRLEN];

		memset(&c, 0xa5, sizeof c);
		if (cidr_parse(cidr_good[i].in, &c) != 0)
			fail_msg("cidr_parse(\"%s\") failed", cidr_good[i].in);
		assert_int_equal(c.family, cidr_good[i].family);
		assert_int_equal(c.prefix, cidr_good[i].prefix);
		assert_non_null(inet_ntop(c.family, c.addr, text, sizeof text));
		assert_string_equal(text, cidr_good[i].net);
		if (c.family == AF_INET) /* unused bytes are zero, so structs compare */
			for (int j = 4; j < 16; j++)
				assert_int_equal(c.addr[j], 0);
	}
}

static const char *const cidr_bad[] = {
	"", "/", "/24", "1.2.3.4/", "1.2.3.4/33", "1.2.3.4/99", "1.2.3.4/-1", "1.2.3.4/+8",
	"1.2.3.4/ 8", "1.2.3.4/8 ", " 1.2.3.4", "1.2.3.4 ", "1.2.3", "1.2.3.4.5", "256.1.1.1",
	"1.2.3.4/8/8", "1.2.3.4/0x8", "1.2.3.4/1000", "::1/129", "2001:db8::/1234", "::1/",
	"2001:db8:::1", "example.com", "example.com/24", "[::1]", "[::1]/128", "fe80::1%eth0",
	"1.2.3.4:25", "0x01020304", "1.2.3.4/24,5.6.7.0/24",
	"1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb/32", /* longer than any address */
};

static void test_cidr_parse_bad(void **state)
{
	struct cidr c;

	for (size_t i = 0; i < sizeof cidr_bad / sizeof cidr_bad[0]; i++)
		if (cidr_parse(cidr_bad[i], &c) != -1)
			fail_msg("cidr_parse(\"%s\") accepted", cidr_bad[i]);
	assert_int_equal(cidr_parse(NULL, &c), -1);
	assert_int_equal(cidr_parse("1.2.3.4", NULL), -1);
}

static const struct {
	const char *net, *addr;
	int match;
} cidr_matches[] = {
	{ "10.0.0.0/8", "10.1.2.3:1", 1 },
	{ "10.0.0.0/8", "11.0.0.0:1", 0 },
	{ "10.0.0.0/8", "9.255.255.255:1", 0 },
	{ "10.0.0.0/8", "[::ffff:10.9.9.9]:1", 1 }, /* v4-mapped socket address */
	{ "10.0.0.0/8", "[::ffff:11.9.9.9]:1", 0 },
	{ "10.0.0.0/8", "[::a09:909]:1", 0 },       /* v4-compatible is not mapped */
	{ "1.2.3.4", "1.2.3.4:1", 1 },
	{ "1.2.3.4", "1.2.3.5:1", 0 },
	{ "1.2.3.4", "[::ffff:1.2.3.4]:1", 1 },
	{ "1.2.3.0/25", "1.2.3.127:1", 1 },
	{ "1.2.3.0/25", "1.2.3.128:1", 0 },
	{ "0.0.0.0/0", "255.255.255.255:1", 1 },
	{ "0.0.0.0/0", "[::ffff:1.2.3.4]:1", 1 },
	{ "0.0.0.0/0", "[::1]:1", 0 },
	{ "::/0", "[::1]:1", 1 },
	{ "::/0", "1.2.3.4:1", 0 },                 /* IPv4 needs an IPv4 network */
	{ "::/0", "[::ffff:1.2.3.4]:1", 0 },
	{ "::1", "[::1]:1", 1 },
	{ "::1", "127.0.0.1:1", 0 },
	{ "2001:db8::/32", "[2001:db8:1::1]:1", 1 },
	{ "2001:db8::/32", "[2001:db9::1]:1", 0 },
	{ "2001:db8::/33", "[2001:db8:7fff::1]:1", 1 },
	{ "2001:db8::/33", "[2001:db8:8000::1]:1", 0 },
	{ "::ffff:10.0.0.0/104", "10.2.3.4:1", 1 },
	{ "::ffff:10.0.0.0/104", "[::ffff:10.2.3.4]:1", 1 },
};

static void test_cidr_match(void **state)
{
	for (size_t i = 0; i < sizeof cidr_matches / sizeof cidr_matches[0]; i++) {
		struct sockaddr_storage ss;
		struct cidr c;

		assert_int_equal(cidr_parse(cidr_matches[i].net, &c), 0);
		if (cidr_match(&c, sa(cidr_matches[i].addr, &ss)) != cidr_matches[i].match)
			fail_msg("cidr_match(%s, %s) != %d", cidr_matches[i].net,
				 cidr_matches[i].addr, cidr_matches[i].match);
	}
}

static void test_cidr_match_odd(void **state)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage ss;
	struct cidr c;

	assert_int_equal(cidr_parse("0.0.0.0/0", &c), 0);
	assert_int_equal(cidr_match(&c, NULL), 0);
	assert_int_equal(cidr_match(&c, (struct sockaddr *)&un), 0);
	assert_int_equal(cidr_match(NULL, sa("1.2.3.4:1", &ss)), 0);
}

static const struct {
	const char *in;
	int default_port;
	int family;       /* 0: must be rejected */
	const char *host; /* as sockaddr_ntop shows it */
	int port;
} hostports[] = {
	{ "127.0.0.1:2525", 0, AF_INET, "127.0.0.1", 2525 },
	{ "[::1]:2525", 0, AF_INET6, "::1", 2525 },
	{ "1.2.3.4:0", 0, AF_INET, "1.2.3.4", 0 },
	{ "[::]:0", 0, AF_INET6, "::", 0 },
	{ "0.0.0.0:25", 0, AF_INET, "0.0.0.0", 25 },
	{ "1.2.3.4:65535", 0, AF_INET, "1.2.3.4", 65535 },
	{ "1.2.3.4:025", 0, AF_INET, "1.2.3.4", 25 },
	{ "[2001:db8::1]:587", 0, AF_INET6, "2001:db8::1", 587 },
	{ "[::ffff:1.2.3.4]:25", 0, AF_INET6, "1.2.3.4", 25 },
	{ "1.2.3.4:25", 53, AF_INET, "1.2.3.4", 25 },
	{ "1.2.3.4", 25, AF_INET, "1.2.3.4", 25 },
	{ "[::1]", 53, AF_INET6, "::1", 53 },
	{ "::1", 53, AF_INET6, "::1", 53 },
	{ "2001:db8::1:25", 53, AF_INET6, "2001:db8::1:25", 53 }, /* bare IPv6 has no port */
	{ "1.2.3.4", 0, 0, NULL, 0 },
	{ "[::1]", 0, 0, NULL, 0 },
	{ "::1", 0, 0, NULL, 0 },
	{ "2001:db8::1:25", 0, 0, NULL, 0 },
	{ "1.2.3.4:65536", 0, 0, NULL, 0 },
	{ "1.2.3.4:99999", 0, 0, NULL, 0 },
	{ "1.2.3.4:123456", 0, 0, NULL, 0 },
	{ "1.2.3.4:-1", 0, 0, NULL, 0 },
	{ "1.2.3.4:+1", 0, 0, NULL, 0 },
	{ "1.2.3.4:", 25, 0, NULL, 0 },
	{ "1.2.3.4:2x", 0, 0, NULL, 0 },
	{ "1.2.3.4:25 ", 0, 0, NULL, 0 },
	{ " 1.2.3.4:25", 0, 0, NULL, 0 },
	{ "1.2.3.4:25:1", 0, 0, NULL, 0 },
	{ "1.2.3:25", 0, 0, NULL, 0 },
	{ "[::1]:", 25, 0, NULL, 0 },
	{ "[::1", 25, 0, NULL, 0 },
	{ "::1]:25", 0, 0, NULL, 0 },
	{ "[::1]x25", 0, 0, NULL, 0 },
	{ "[::1]:25:", 0, 0, NULL, 0 },
	{ "[1.2.3.4]:25", 0, 0, NULL, 0 },
	{ "[]:25", 0, 0, NULL, 0 },
	{ "[fe80::1%eth0]:25", 0, 0, NULL, 0 },
	{ "", 25, 0, NULL, 0 },
	{ ":25", 0, 0, NULL, 0 },
	{ "localhost:25", 0, 0, NULL, 0 },
	{ "example.com", 25, 0, NULL, 0 },
	{ "1.2.3.4", 70000, 0, NULL, 0 },
	{ "[1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb]:25", 0, 0, NULL, 0 },
};

static void test_hostport_parse(void **state)
{
	for (size_t i = 0; i < sizeof hostports / sizeof hostports[0]; i++) {
		struct sockaddr_storage ss;
		socklen_t len = 0;
		char host[INET6_ADDRSTRLEN];
		int rc = hostport_parse(hostports[i].in, hostports[i].default_port, &ss, &len);

		if (hostports[i].family == 0) {
			if (rc != -1)
				fail_msg("hostport_parse(\"%s\", %d) accepted", hostports[i].in,
					 hostports[i].default_port);
			continue;
		}
		if (rc != 0)
			fail_msg("hostport_parse(\"%s\", %d) failed", hostports[i].in, hostports[i].default_port);
		assert_int_equal(ss.ss_family, hostports[i].family);
		assert_int_equal(len, hostports[i].family == AF_INET ? sizeof(struct sockaddr_in)
								       : sizeof(struct sockaddr_in6));
		sockaddr_ntop((struct sockaddr *)&ss, host, sizeof host);
		assert_string_equal(host, hostports[i].host);
		assert_int_equal(sockaddr_port((struct sockaddr *)&ss), hostports[i].port);
	}
}

static void test_hostport_parse_args(void **state)
{
	struct sockaddr_storage ss;

	assert_int_equal(hostport_parse("1.2.3.4:5", 0, &ss, NULL), 0); /* len is optional */
	assert_int_equal(hostport_parse(NULL, 25, &ss, NULL), -1);
	assert_int_equal(hostport_parse("1.2.3.4:5", 0, NULL, NULL), -1);
}

static void test_sockaddr_ntop(void **state)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage ss;
	char buf[INET6_ADDRSTRLEN], small[4];

	sockaddr_ntop(sa("1.2.3.4:1", &ss), buf, sizeof buf);
	assert_string_equal(buf, "1.2.3.4");
	sockaddr_ntop(sa("[2001:db8::1]:1", &ss), buf, sizeof buf);
	assert_string_equal(buf, "2001:db8::1");
	sockaddr_ntop(sa("[::ffff:192.0.2.1]:1", &ss), buf, sizeof buf);
	assert_string_equal(buf, "192.0.2.1");
	sockaddr_ntop((struct sockaddr *)&un, buf, sizeof buf);
	assert_string_equal(buf, "?");
	sockaddr_ntop(NULL, buf, sizeof buf);
	assert_string_equal(buf, "?");
	sockaddr_ntop(sa("10.20.30.40:1", &ss), small, sizeof small); /* truncated, terminated */
	assert_string_equal(small, "10.");
	small[0] = 'x';
	sockaddr_ntop(sa("1.2.3.4:1", &ss), small, 0);
	assert_int_equal(small[0], 'x');
}

static void test_sockaddr_port(void **state)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage ss;

	assert_int_equal(sockaddr_port(sa("1.2.3.4:65535", &ss)), 65535);
	assert_int_equal(sockaddr_port(sa("[::1]:2525", &ss)), 2525);
	assert_int_equal(sockaddr_port((struct sockaddr *)&un), 0);
	assert_int_equal(sockaddr_port(NULL), 0);
}

static const struct {
	const char *a, *b;
	int same;
} same_hosts[] = {
	{ "1.2.3.4:1", "1.2.3.4:2", 1 },
	{ "1.2.3.4:1", "[::ffff:1.2.3.4]:2", 1 },
	{ "[::ffff:1.2.3.4]:1", "1.2.3.4:2", 1 },
	{ "[::1]:1", "[::1]:5", 1 },
	{ "[::1]:1", "127.0.0.1:1", 0 },
	{ "1.2.3.4:1", "1.2.3.5:1", 0 },
	{ "[::2]:1", "[::1]:1", 0 },
	{ "[::]:1", "0.0.0.0:1", 0 },
};

static void test_sockaddr_same_host(void **state)
{
	struct sockaddr_un un = { .sun_family = AF_UNIX };
	struct sockaddr_storage x, y;

	for (size_t i = 0; i < sizeof same_hosts / sizeof same_hosts[0]; i++)
		if (sockaddr_same_host(sa(same_hosts[i].a, &x), sa(same_hosts[i].b, &y)) != same_hosts[i].same)
			fail_msg("sockaddr_same_host(%s, %s) != %d", same_hosts[i].a, same_hosts[i].b,
				 same_hosts[i].same);
	assert_int_equal(sockaddr_same_host((struct sockaddr *)&un, (struct sockaddr *)&un), 0);
	assert_int_equal(sockaddr_same_host(NULL, sa("1.2.3.4:1", &x)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cidr_parse_good),
		cmocka_unit_test(test_cidr_parse_bad),
		cmocka_unit_test(test_cidr_match),
		cmocka_unit_test(test_cidr_match_odd),
		cmocka_unit_test(test_hostport_parse),
		cmocka_unit_test(test_hostport_parse_args),
		cmocka_unit_test(test_sockaddr_ntop),
		cmocka_unit_test(test_sockaddr_port),
		cmocka_unit_test(test_sockaddr_same_host),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
