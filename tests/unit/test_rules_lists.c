/* test_rules_lists.c - list files for the rules: syntax, every error, lookups,
 * and a million entries of each kind (load time and ns per lookup on stdout) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "rules/lists.h"
#include "proxy/lib/netaddr.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static struct rule_list *parse(const char *text, enum list_kind kind)
{
	char err[512] = "unset";
	struct rule_list *l = list_parse(text, strlen(text), "x.list", kind, err, sizeof err);

	if (!l)
		fail_msg("list_parse(\"%s\"): %s", text, err);
	assert_string_equal(err, "");
	return l;
}

static int has_ip(const struct rule_list *l, const char *ip)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (hostport_parse(ip, 1, &ss, &len) < 0)
		fail_msg("bad test address %s", ip);
	return list_has_ip(l, (struct sockaddr *)&ss);
}

/* ---- syntax ---- */

static void test_domains(void **state)
{
	struct rule_list *l = parse("\xef\xbb\xbf# partners\n"
	                            "Example.COM\n"
	                            "  .partner.test   # and its subdomains\r\n"
	                            "\n"
	                            "\t\tmx_1.example.org.\n"
	                            "example.com\n"
	                            "#.commented.test\n"
	                            "last.test",
	                            LIST_DOMAINS);
	static const struct { const char *name; int want; } rows[] = {
		{ "example.com", 1 },
		{ "sub.example.com", 0 },   /* exact entry: not its subdomains */
		{ "partner.test", 0 },      /* ".partner.test": subdomains only */
		{ "a.partner.test", 1 },
		{ "a.b.partner.test", 1 },
		{ "xpartner.test", 0 },
		{ "mx_1.example.org", 1 },  /* trailing dot dropped */
		{ "commented.test", 0 },
		{ "a.commented.test", 0 },
		{ "last.test", 1 },         /* no newline at the end */
		{ "test", 0 },
		{ "", 0 },
	};

	assert_int_equal(list_kind(l), LIST_DOMAINS);
	assert_string_equal(list_name(l), "x.list");
	assert_int_equal(list_entries(l), 5);
	for (size_t i = 0; i < NELEM(rows); i++)
		if (list_has_name(l, rows[i].name) != rows[i].want)
			fail_msg("%s: want %d", rows[i].name, rows[i].want);
	assert_false(list_has_address(l, "a@example.com")); /* wrong kind: no match */
	list_free(l);
}

static void test_addresses(void **state)
{
	struct rule_list *l = parse("Bob@Example.COM\n@whole.test\n\"q@t\"@quoted.test\n", LIST_ADDRESSES);
	static const struct { const char *addr; int want; } rows[] = {
		{ "bob@example.com", 1 },
		{ "alice@example.com", 0 },
		{ "anyone@whole.test", 1 },   /* "@whole.test": any user there */
		{ "x@sub.whole.test", 0 },
		{ "bob@example.co", 0 },
		{ "\"q@t\"@quoted.test", 1 },
		{ "t\"@quoted.test", 0 },
		{ "", 0 },
	};

	assert_int_equal(list_entries(l), 3);
	for (size_t i = 0; i < NELEM(rows); i++)
		if (list_has_address(l, rows[i].addr) != rows[i].want)
			fail_msg("%s: want %d", rows[i].addr, rows[i].want);
	assert_false(list_has_name(l, "example.com")); /* wrong kind: no match */
	list_free(l);
}

static void test_networks(void **state)
{
	struct rule_list *l = parse("10.0.0.0/8\n"
	                            "10.1.0.0/16\n"       /* inside the one above */
	                            "192.0.2.1\n"
	                            "192.0.2.2/32\n"      /* touches: merged */
	                            "198.51.100.0/24\n"
	                            "0.0.0.0/32\n"
	                            "255.255.255.255\n"
	                            "2001:db8::/32\n"
	                            "2001:db8:1::/48\n"
	                            "::ffff:203.0.113.0/120\n" /* v4-mapped: an IPv4 network */
	                            "::1\n"
	                            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128\n",
	                            LIST_NETWORKS);
	static const struct { const char *ip; int want; } rows[] = {
		{ "10.0.0.0", 1 }, { "10.255.255.255", 1 }, { "11.0.0.0", 0 }, { "9.255.255.255", 0 },
		{ "10.1.2.3", 1 }, { "192.0.2.1", 1 }, { "192.0.2.2", 1 }, { "192.0.2.0", 0 },
		{ "192.0.2.3", 0 }, { "198.51.100.7", 1 }, { "198.51.101.0", 0 }, { "0.0.0.0", 1 },
		{ "0.0.0.1", 0 }, { "255.255.255.255", 1 }, { "255.255.255.254", 0 },
		{ "203.0.113.9", 1 }, { "::ffff:203.0.113.9", 1 }, { "::ffff:10.9.9.9", 1 },
		{ "::ffff:192.0.2.3", 0 }, { "2001:db8::1", 1 }, { "2001:db8:ffff::1", 1 },
		{ "2001:db9::", 0 }, { "2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", 0 }, { "::1", 1 },
		{ "::2", 0 }, { "::", 0 }, { "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", 1 },
		{ "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe", 0 },
	};

	assert_int_equal(list_entries(l), 12);
	for (size_t i = 0; i < NELEM(rows); i++)
		if (has_ip(l, rows[i].ip) != rows[i].want)
			fail_msg("%s: want %d", rows[i].ip, rows[i].want);
	assert_false(list_has_ip(l, NULL));
	list_free(l);

	l = parse("0.0.0.0/0\n::/0\n", LIST_NETWORKS); /* everything */
	assert_true(has_ip(l, "1.2.3.4"));
	assert_true(has_ip(l, "255.255.255.255"));
	assert_true(has_ip(l, "2001:db8::1"));
	list_free(l);

	l = parse("", LIST_NETWORKS); /* empty lists are fine */
	assert_false(has_ip(l, "1.2.3.4"));
	assert_false(has_ip(l, "::1"));
	list_free(l);
}

static void test_errors(void **state)
{
	static const struct { enum list_kind kind; const char *text; const char *want; } rows[] = {
		{ LIST_DOMAINS, "ok.test\nbad..test\n", "x.list:2: \"bad..test\" is not a domain name or .domain" },
		{ LIST_DOMAINS, "-x.test\n", "x.list:1: \"-x.test\" is not a domain name or .domain" },
		{ LIST_DOMAINS, "x-.test\n", "x.list:1: \"x-.test\" is not a domain name or .domain" },
		{ LIST_DOMAINS, "1.2.3.4\n", "x.list:1: \"1.2.3.4\" is not a domain name or .domain" },
		{ LIST_DOMAINS, "..test\n", "x.list:1: \"..test\" is not a domain name or .domain" },
		{ LIST_DOMAINS, "a@b.test\n", "x.list:1: \"a@b.test\" is not a domain name or .domain" },
		{ LIST_DOMAINS, "a.test b.test\n", "x.list:1: \"a.test b.test\": one entry a line" },
		{ LIST_DOMAINS, "a.test\n\n\nb.test c\n", "x.list:4: \"b.test c\": one entry a line" },
		{ LIST_DOMAINS, "a.test#x\n", "x.list:1: \"a.test#x\" is not a domain name or .domain" },
		{ LIST_ADDRESSES, "bob\n", "x.list:1: \"bob\" is not an address (user@domain or @domain)" },
		{ LIST_ADDRESSES, "bob@\n", "x.list:1: \"bob@\" is not an address (user@domain or @domain)" },
		{ LIST_ADDRESSES, "@\n", "x.list:1: \"@\" is not an address (user@domain or @domain)" },
		{ LIST_NETWORKS, "10.0.0.0/33\n", "x.list:1: \"10.0.0.0/33\" is not an IP address or network" },
		{ LIST_NETWORKS, "example.com\n", "x.list:1: \"example.com\" is not an IP address or network" },
		{ LIST_NETWORKS, "1.2.3.4\n\x01\n", "x.list:2: \"?\" is not an IP address or network" },
	};
	char err[512];

	for (size_t i = 0; i < NELEM(rows); i++) {
		struct rule_list *l = list_parse(rows[i].text, strlen(rows[i].text), "x.list", rows[i].kind, err,
		                                 sizeof err);

		if (l) {
			list_free(l);
			fail_msg("accepted \"%s\"", rows[i].text);
		}
		assert_string_equal(err, rows[i].want);
	}

	/* NUL byte, over-long entry (quoted back cut at 64 bytes) */
	assert_null(list_parse("a.test\nb\0c\n", 10, "x.list", LIST_DOMAINS, err, sizeof err));
	assert_string_equal(err, "x.list:2: NUL byte in line");
	char longname[400];

	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_null(list_parse(longname, strlen(longname), "x.list", LIST_DOMAINS, err, sizeof err));
	assert_string_equal(err, "x.list:1: \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...\" "
	                         "is too long (max 320 bytes)");

	assert_null(list_load("/nonexistent/x.list", LIST_DOMAINS, err, sizeof err));
	assert_string_equal(err, "/nonexistent/x.list: cannot open: No such file or directory");
	assert_null(list_load("/tmp", LIST_DOMAINS, err, sizeof err));
	assert_string_equal(err, "/tmp: cannot read: not a regular file");
	assert_null(list_load("/dev/zero", LIST_NETWORKS, err, sizeof err));
	assert_string_equal(err, "/dev/zero: cannot read: not a regular file");
}

static void test_syntax_helpers(void **state)
{
	static const struct { const char *s; int name, addr; } rows[] = {
		{ "example.com", 1, 0 }, { "a", 1, 0 }, { "a_b.test", 1, 0 }, { "a-b.test", 1, 0 },
		{ "", 0, 0 }, { ".a", 0, 0 }, { "a.", 0, 0 }, { "a..b", 0, 0 }, { "1.2.3.4", 0, 0 },
		{ "1.2.3.4a", 1, 0 }, { "a b", 0, 0 }, { "u@example.com", 0, 1 }, { "@example.com", 0, 1 },
		{ "u@", 0, 0 }, { "u@1.2.3.4", 0, 0 }, { "u v@x.test", 0, 0 }, { "\"q@t\"@x.test", 0, 1 },
	};

	for (size_t i = 0; i < NELEM(rows); i++) {
		if (list_name_ok(rows[i].s) != rows[i].name)
			fail_msg("list_name_ok(%s): want %d", rows[i].s, rows[i].name);
		if (list_address_ok(rows[i].s) != rows[i].addr)
			fail_msg("list_address_ok(%s): want %d", rows[i].s, rows[i].addr);
	}
	char label[80];

	memset(label, 'a', 63);
	strcpy(label + 63, ".test");
	assert_true(list_name_ok(label));
	memset(label, 'a', 64);
	strcpy(label + 64, ".test");
	assert_false(list_name_ok(label));
}

/* ---- a million entries ---- */

#define MILLION 1000000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A permutation of 0..MILLION-1, so the file is in no useful order. */
static unsigned perm(unsigned i)
{
	return (unsigned)(((unsigned long long)i * 7919 + 13) % MILLION);
}

static const char *temp_path(char *buf, size_t size, const char *what)
{
	snprintf(buf, size, "/tmp/moat-test-%s-%ld.list", what, (long)getpid());
	return buf;
}

/* Entry i: every 10th a ".domain" (its subdomains), the rest exact names. */
static int domain_entry(char *buf, size_t size, unsigned i)
{
	return i % 10 == 0 ? snprintf(buf, size, ".zone%u.example%u.test", i, i % 97)
	                   : snprintf(buf, size, "host%u.example%u.test", i, i % 97);
}

static void test_million_domains(void **state)
{
	char path[128], name[128], err[512];
	FILE *f = fopen(temp_path(path, sizeof path, "domains"), "w");
	struct rule_list *l;
	double t0, t1, t2;
	unsigned found = 0;

	assert_non_null(f);
	for (unsigned i = 0; i < MILLION; i++) {
		domain_entry(name, sizeof name, perm(i));
		fprintf(f, "%s\n", name);
	}
	assert_int_equal(fclose(f), 0);

	/* probes: half present, half absent; built before the clock starts */
	char (*probe)[48] = calloc(MILLION, sizeof *probe);

	assert_non_null(probe);
	for (unsigned i = 0; i < MILLION; i++) {
		unsigned k = i / 2;

		if (k % 10 == 0)
			snprintf(probe[i], sizeof probe[i], "%s.zone%u.example%u.test", i % 2 ? "mx" : "a.b", k, k % 97);
		else
			snprintf(probe[i], sizeof probe[i], "host%u.example%u.test", i % 2 ? k : k + MILLION, k % 97);
	}

	t0 = now();
	l = list_load(path, LIST_DOMAINS, err, sizeof err);
	t1 = now();
	unlink(path);
	if (!l)
		fail_msg("%s", err);
	assert_int_equal(list_entries(l), MILLION);
	for (unsigned i = 0; i < MILLION; i++)
		found += (unsigned)list_has_name(l, probe[i]);
	t2 = now();
	free(probe);
	/* present: odd i; for k % 10 == 0 both parities are present (subdomains) */
	assert_int_equal(found, MILLION / 2 + MILLION / 20);
	assert_true(list_has_name(l, "host1.example1.test"));
	assert_false(list_has_name(l, "zone10.example10.test")); /* the domain itself is not listed */
	assert_true(list_has_name(l, "x.zone10.example10.test"));
	assert_false(list_has_name(l, "host1.example2.test"));
	printf("    1,000,000 domains: load %.3f s, lookup %.0f ns\n", t1 - t0, (t2 - t1) * 1e9 / MILLION);
	assert_true(t1 - t0 < 10.0);
	list_free(l);
}

/* Entry i: 1 in 10 an IPv6 /64, else an IPv4 /24 of every other /24 from
 * 32.0.0.0 up (so no two merge) or, 1 in 10 of those, a single host. */
static int net_entry(char *buf, size_t size, unsigned i)
{
	uint32_t a = (32u << 24) + ((uint32_t)i * 2 << 8);

	if (i % 10 == 9)
		return snprintf(buf, size, "2001:db8:%x:%x::/64", i >> 16, i & 0xffff);
	if (i % 10 == 3)
		return snprintf(buf, size, "%u.%u.%u.77", a >> 24, (a >> 16) & 255, (a >> 8) & 255);
	return snprintf(buf, size, "%u.%u.%u.0/24", a >> 24, (a >> 16) & 255, (a >> 8) & 255);
}

static void test_million_networks(void **state)
{
	char path[128], entry[128], err[512];
	FILE *f = fopen(temp_path(path, sizeof path, "nets"), "w");
	struct sockaddr_storage *probe = calloc(MILLION, sizeof *probe);
	unsigned char *want = calloc(MILLION, 1);
	struct rule_list *l;
	double t0, t1, t2;
	unsigned found = 0, wanted = 0;

	assert_non_null(f);
	assert_non_null(probe);
	assert_non_null(want);
	for (unsigned i = 0; i < MILLION; i++) {
		net_entry(entry, sizeof entry, perm(i));
		fprintf(f, "%s\n", entry);
	}
	assert_int_equal(fclose(f), 0);

	/* probes built before the clock starts: the entry's network, a host
	 * next to a single host, the /24 in between, the v6 neighbour */
	for (unsigned i = 0; i < MILLION; i++) {
		unsigned k = i / 2;
		uint32_t a = (32u << 24) + ((uint32_t)k * 2 << 8);
		socklen_t len;

		if (k % 10 == 9) { /* inside its /64, or in 2001:db8:ffff::/48 that no entry reaches */
			snprintf(entry, sizeof entry, "2001:db8:%x:%x::9", i % 2 ? k >> 16 : 0xffff, k & 0xffff);
			want[i] = i % 2;
		} else if (k % 10 == 3) {
			snprintf(entry, sizeof entry, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
			         i % 2 ? 77 : 78);
			want[i] = i % 2;
		} else {
			a += i % 2 ? 200 : 256 + 200; /* inside, or in the unlisted /24 after it */
			snprintf(entry, sizeof entry, "%u.%u.%u.%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255, a & 255);
			want[i] = i % 2;
		}
		if (hostport_parse(entry, 1, &probe[i], &len) < 0)
			fail_msg("bad probe %s", entry);
		wanted += want[i];
	}

	t0 = now();
	l = list_load(path, LIST_NETWORKS, err, sizeof err);
	t1 = now();
	unlink(path);
	if (!l)
		fail_msg("%s", err);
	assert_int_equal(list_entries(l), MILLION);
	for (unsigned i = 0; i < MILLION; i++) {
		int got = list_has_ip(l, (struct sockaddr *)&probe[i]);

		found += (unsigned)got;
		if (got != want[i]) {
			char ip[64];

			sockaddr_ntop((struct sockaddr *)&probe[i], ip, sizeof ip);
			fail_msg("%s: want %d", ip, want[i]);
		}
	}
	t2 = now();
	assert_int_equal(found, wanted);
	assert_int_equal(wanted, MILLION / 2);
	printf("    1,000,000 networks: load %.3f s, lookup %.0f ns\n", t1 - t0, (t2 - t1) * 1e9 / MILLION);
	assert_true(t1 - t0 < 10.0);
	list_free(l);
	free(probe);
	free(want);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_domains),
		cmocka_unit_test(test_addresses),
		cmocka_unit_test(test_networks),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_syntax_helpers),
		cmocka_unit_test(test_million_domains),
		cmocka_unit_test(test_million_networks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
