/* test_report_parts.c - the report's pure parts: timestamps and
 * --since/--until, client networks, the filters, escaping for the terminal,
 * JSON and HTML */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/report/filter.h"
#include "proxy/report/netagg.h"
#include "proxy/report/outfmt.h"
#include "proxy/report/rtime.h"

#define DAY RTIME_DAY_MS
#define HOUR RTIME_HOUR_MS
/* 2026-12-07T00:00:00Z */
#define D20261207 1796601600000LL

static int64_t ts(const char *s)
{
	int64_t ms;

	if (rtime_parse(s, strlen(s), &ms) != 0)
		fail_msg("does not parse: %s", s);
	return ms;
}

static void test_rtime_parse(void **state)
{
	int64_t ms;
	static const char *const bad[] = {
		"", "2026-12-07", "2026-12-07T21:32", "2026-12-07T21:32:13", "2026-12-07T21:32:13.062",
		"2026-13-07T00:00:00Z", "2026-02-29T00:00:00Z", "2026-04-31T00:00:00Z", "2026-12-07T24:00:00Z",
		"2026-12-07T21:60:00Z", "2026-12-07T21:32:61Z", "2026-12-07T21:32:13.Z", "1969-12-31T23:59:59Z",
		"2026-12-07T21:32:13.062Zx", "2026-12-07T21:32:13+2:00", "2026-12-07T21:32:13+24:00",
		"26-12-07T21:32:13Z", "2026-1-07T21:32:13Z", " 2026-12-07T21:32:13Z",
	};

	assert_int_equal(ts("1970-01-01T00:00:00Z"), 0);
	assert_int_equal(ts("2026-12-07T00:00:00.000Z"), D20261207);
	assert_int_equal(ts("2026-12-07T21:32:13.062Z"), D20261207 + 21 * HOUR + 32 * 60000 + 13062);
	assert_int_equal(ts("2026-12-07t21:32:13.062z"), ts("2026-12-07T21:32:13.062Z"));
	assert_int_equal(ts("2026-12-07 21:32:13.062Z"), ts("2026-12-07T21:32:13.062Z"));
	assert_int_equal(ts("2026-12-07T21:32:13.5Z"), ts("2026-12-07T21:32:13.500Z"));
	assert_int_equal(ts("2026-12-07T21:32:13.123456Z"), ts("2026-12-07T21:32:13.123Z"));
	assert_int_equal(ts("2026-12-07T23:32:13+02:00"), ts("2026-12-07T21:32:13Z"));
	assert_int_equal(ts("2026-12-07T19:02:13-02:30"), ts("2026-12-07T21:32:13Z"));
	assert_int_equal(ts("2024-02-29T00:00:00Z"), ts("2024-03-01T00:00:00Z") - DAY);
	assert_int_equal(ts("2000-02-29T12:00:00Z") % DAY, 12 * HOUR);
	assert_int_equal(ts("2026-12-31T23:59:60Z"), ts("2027-01-01T00:00:00Z")); /* a leap second */
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (rtime_parse(bad[i], strlen(bad[i]), &ms) == 0)
			fail_msg("taken: \"%s\"", bad[i]);
}

static void test_rtime_bound(void **state)
{
	int64_t ms, now = D20261207 + 15 * HOUR;

	assert_int_equal(rtime_bound("2026-12-07", 0, now, &ms), 0);
	assert_int_equal(ms, D20261207);
	assert_int_equal(rtime_bound("2026-12-07", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207 + DAY);
	assert_int_equal(rtime_bound("2026-12-07T21", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207 + 22 * HOUR);
	assert_int_equal(rtime_bound("2026-12-07T21:30", 0, now, &ms), 0);
	assert_int_equal(ms, D20261207 + 21 * HOUR + 30 * 60000);
	assert_int_equal(rtime_bound("2026-12-07T21:30", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207 + 21 * HOUR + 31 * 60000);
	assert_int_equal(rtime_bound("2026-12-07T21:30:05Z", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207 + 21 * HOUR + 30 * 60000 + 6000);
	assert_int_equal(rtime_bound("2026-12-07T21:30:05.250Z", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207 + 21 * HOUR + 30 * 60000 + 5251);
	assert_int_equal(rtime_bound("2026-12-07T23:00+02:00", 0, now, &ms), 0);
	assert_int_equal(ms, D20261207 + 21 * HOUR);
	assert_int_equal(rtime_bound("today", 0, now, &ms), 0);
	assert_int_equal(ms, D20261207);
	assert_int_equal(rtime_bound("today", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207 + DAY);
	assert_int_equal(rtime_bound("yesterday", 0, now, &ms), 0);
	assert_int_equal(ms, D20261207 - DAY);
	assert_int_equal(rtime_bound("yesterday", 1, now, &ms), 0);
	assert_int_equal(ms, D20261207);
	assert_int_equal(rtime_bound("tomorrow", 0, now, &ms), -1);
	assert_int_equal(rtime_bound("2026-12-07T", 0, now, &ms), -1);
	assert_int_equal(rtime_bound("2026-12-32", 0, now, &ms), -1);
	assert_int_equal(rtime_bound("12/07/2026", 0, now, &ms), -1);
}

static void test_rtime_civil(void **state)
{
	char out[32];

	/* every day from 1970 to 2400 goes there and back */
	for (int64_t d = 0; d < 157000; d++) {
		int y, m, dd;

		rtime_civil(d, &y, &m, &dd);
		if (rtime_days(y, m, dd) != d)
			fail_msg("day %lld: %04d-%02d-%02d", (long long)d, y, m, dd);
	}
	rtime_format(D20261207 + 21 * HOUR + 32 * 60000 + 13062, out, sizeof out);
	assert_string_equal(out, "2026-12-07T21:32:13.062Z");
	rtime_format(0, out, sizeof out);
	assert_string_equal(out, "1970-01-01T00:00:00.000Z");
}

static void addr(const char *s, struct naddr *a)
{
	if (naddr_parse(s, strlen(s), a) != 0)
		fail_msg("not an address: %s", s);
}

static void test_netagg(void **state)
{
	static const struct {
		const char *ip, *net;
	} nets[] = {
		{"192.0.2.77", "192.0.2.0/24"}, {"10.1.2.3", "10.1.2.0/24"}, {"0.0.0.0", "0.0.0.0/24"},
		{"::ffff:198.51.100.9", "198.51.100.0/24"}, {"2001:db8:1:2::5", "2001:db8:1::/48"},
		{"2001:DB8:abcd:ffff:1::1", "2001:db8:abcd::/48"}, {"::1", "::/48"}, {"fe80::1", "fe80::/48"},
	};
	static const char *const bad[] = {"", "192.0.2", "192.0.2.1.5", "192.0.2.256", "example.org",
	                                  "2001:db8::1::2", "192.0.2.1 ", "[::1]", "192.0.2.0/24"};
	struct naddr a;
	char out[64];

	for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++) {
		addr(nets[i].ip, &a);
		naddr_network(&a, out, sizeof out);
		assert_string_equal(out, nets[i].net);
	}
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
		if (naddr_parse(bad[i], strlen(bad[i]), &a) == 0)
			fail_msg("taken: \"%s\"", bad[i]);
	/* the length counts, not a NUL */
	assert_int_equal(naddr_parse("192.0.2.1xyz", 9, &a), 0);
	naddr_network(&a, out, sizeof out);
	assert_string_equal(out, "192.0.2.0/24");
}

static void test_naddr_in(void **state)
{
	static const struct {
		const char *net, *ip;
		int in;
	} cases[] = {
		{"192.0.2.0/24", "192.0.2.200", 1}, {"192.0.2.0/24", "192.0.3.1", 0},
		{"192.0.2.0/25", "192.0.2.127", 1}, {"192.0.2.0/25", "192.0.2.128", 0},
		{"192.0.2.7", "192.0.2.7", 1}, {"192.0.2.7", "192.0.2.8", 0}, {"0.0.0.0/0", "203.0.113.1", 1},
		{"0.0.0.0/0", "2001:db8::1", 0}, {"192.0.2.0/24", "::ffff:192.0.2.9", 1},
		{"::ffff:192.0.2.0/120", "192.0.2.9", 1}, {"2001:db8::/32", "2001:db8:ffff::1", 1},
		{"2001:db8::/33", "2001:db8:8000::1", 0}, {"2001:db8::/33", "2001:db8:7fff::1", 1},
		{"::/0", "192.0.2.1", 0}, {"::/0", "::1", 1},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct cidr c;
		struct naddr a;

		assert_int_equal(cidr_parse(cases[i].net, &c), 0);
		addr(cases[i].ip, &a);
		if (naddr_in(&a, &c) != cases[i].in)
			fail_msg("%s in %s: want %d", cases[i].ip, cases[i].net, cases[i].in);
	}
}

/* A decision line's fields for the filters. */
static struct logline line(const char *ip, const char *from, const char *rcpt, const char *action,
                           const char *rule, const char *rule_id, const char *session)
{
	struct logline l;

	memset(&l, 0, sizeof l);
#define SET(k, v) l.f[k] = (struct ll_str){v, (v) ? strlen(v) : 0}
	SET(LL_CLIENT_IP, ip);
	SET(LL_MAIL_FROM, from);
	SET(LL_RCPT, rcpt);
	SET(LL_ACTION, action);
	SET(LL_RULE, rule);
	SET(LL_RULE_ID, rule_id);
	SET(LL_SESSION, session);
	return l;
}

static void filter(struct report_filter *f, const char *option, const char *value)
{
	char err[256];

	if (filter_add(f, filter_kind_of(option), value, err, sizeof err) != 0)
		fail_msg("--%s %s: %s", option, value, err);
}

static void test_filters(void **state)
{
	static struct report_filter f;
	struct logline l = line("192.0.2.7", "Alice@Example.ORG", "bob@example.test,carol@other.example", "reject",
	                        "/etc/moat/site.rules:12", "bad-helo", "02bb96ef06bd41d3");

	memset(&f, 0, sizeof f);
	assert_true(filter_match(&f, &l)); /* no filter */
	filter(&f, "client", "192.0.2.0/24");
	assert_true(filter_match(&f, &l));
	filter(&f, "sender", "@example.org"); /* case does not count */
	filter(&f, "rcpt", "carol@OTHER.example");   /* one of a data stage's list */
	filter(&f, "action", "accept,reject");
	filter(&f, "rule", "site.rules:12");         /* the end of the path */
	filter(&f, "session", "02bb96ef06bd41d3.2"); /* as in a Received field */
	assert_true(filter_match(&f, &l));
	/* each kind must match (and), any of its values (or) */
	l.f[LL_SESSION] = (struct ll_str){"0000000000000000", 16};
	assert_false(filter_match(&f, &l));
	filter(&f, "session", "0000000000000000");
	assert_true(filter_match(&f, &l));
	l.f[LL_ACTION] = (struct ll_str){"tempfail", 8};
	assert_false(filter_match(&f, &l));
	l.f[LL_ACTION] = (struct ll_str){"accept", 6};
	l.f[LL_CLIENT_IP] = (struct ll_str){"192.0.3.7", 9};
	assert_false(filter_match(&f, &l));
	l.f[LL_CLIENT_IP] = (struct ll_str){NULL, 0};
	assert_false(filter_match(&f, &l));
}

static int one(const char *option, const char *value, struct logline l)
{
	static struct report_filter f;

	memset(&f, 0, sizeof f);
	filter(&f, option, value);
	return filter_match(&f, &l);
}

static void test_filter_values(void **state)
{
	struct logline l = line("2001:db8:1::9", "alice@example.org", "bob@example.test", "would-reject",
	                        "default.rules:22", "sender-nxdomain", "abc");
	struct logline n = line("192.0.2.1", "<>", "", "reject", "", "", "");
	static struct report_filter f;
	char err[256];

	assert_true(one("client", "2001:db8:1::/48", l));
	assert_false(one("client", "2001:db8:2::/48", l));
	assert_true(one("client", "2001:db8:1::9", l));
	assert_true(one("sender", "alice@example.org", l));
	assert_false(one("sender", "lice@example.org", l));
	assert_false(one("sender", "@mple.org", l));
	assert_true(one("sender", "example.org", l)); /* a domain without @ */
	assert_false(one("sender", "org", l));
	assert_true(one("sender", "<>", n));
	assert_false(one("sender", "<>", l));
	assert_true(one("rcpt", "@example.test", l));
	assert_false(one("rcpt", "bob@example.test", n));
	assert_true(one("action", "would-reject", l));
	assert_false(one("action", "reject", l));
	assert_true(one("rule", "sender-nxdomain", l));
	assert_true(one("rule", "default.rules:22", l));
	assert_false(one("rule", "rules:22", l)); /* the end after a '/', not any end */
	assert_false(one("rule", "default.rules:2", l));
	assert_true(one("session", "abc", l));
	assert_false(one("session", "ab", l));
	/* what is refused */
	memset(&f, 0, sizeof f);
	assert_int_equal(filter_add(&f, FILTER_ACTION, "rejected", err, sizeof err), -1);
	assert_non_null(strstr(err, "not an action"));
	assert_int_equal(filter_add(&f, FILTER_ACTION, "reject,", err, sizeof err), -1);
	assert_int_equal(filter_add(&f, FILTER_CLIENT, "192.0.2.0/33", err, sizeof err), -1);
	assert_int_equal(filter_add(&f, FILTER_CLIENT, "example.org", err, sizeof err), -1);
	assert_int_equal(filter_add(&f, FILTER_SENDER, "@", err, sizeof err), -1);
	assert_int_equal(filter_add(&f, FILTER_RULE, "", err, sizeof err), -1);
	assert_int_equal(filter_kind_of("client"), FILTER_CLIENT);
	assert_int_equal(filter_kind_of("from"), -1);
	assert_false(f.any);
	for (int i = 0; i < REPORT_FILTER_MAX; i++)
		assert_int_equal(filter_add(&f, FILTER_RULE, "x", err, sizeof err), 0);
	assert_int_equal(filter_add(&f, FILTER_RULE, "x", err, sizeof err), -1);
}

/* What f wrote, NUL-terminated. */
static char *written(void (*fn)(FILE *, const char *, size_t), const char *s, size_t n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	fn(f, s, n);
	fclose(f);
	return buf;
}

static void text72(FILE *f, const char *s, size_t n)
{
	put_text(f, s, n, 12);
}

static void test_escaping(void **state)
{
	char out[256], *w;

	assert_int_equal(html_escape(out, sizeof out, "<a href=\"x\">&'</a>", 18), 48);
	assert_string_equal(out, "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;");
	html_escape(out, sizeof out, "t\tn\nc\x01" "d\x7f" "e\xc2\x85" "f\xff" "\xd0\xbe", 15);
	assert_string_equal(out, "t\tn\nc\xef\xbf\xbd" "d\xef\xbf\xbd" "e\xef\xbf\xbd" "f\xef\xbf\xbd" "\xd0\xbe");
	/* a buffer too small ends between references, never inside one */
	assert_int_equal(html_escape(out, 7, "a&b", 3), 6);
	assert_string_equal(out, "a&amp;");
	assert_int_equal(html_escape(out, 5, "a&b", 3), 1);
	assert_string_equal(out, "a");
	w = written(put_json, "q\"b\\c\n\x01\xd0\xbe\0z", 11);
	assert_string_equal(w, "\"q\\\"b\\\\c\\u000a\\u0001\xd0\xbe\\u0000z\"");
	free(w);
	w = written(put_html, "<\xd0\xbe>", 4);
	assert_string_equal(w, "&lt;\xd0\xbe&gt;");
	free(w);
	w = written(text72, "ab\x1b[31mcd", 9);
	assert_string_equal(w, "ab?[31mcd");
	free(w);
	w = written(text72, "0123456789abcdef", 16);
	assert_string_equal(w, "012345678...");
	free(w);
	w = written(text72, "\xd0\xbe\xd0\xbe\xd0\xbe\xd0\xbe\xd0\xbe\xd0\xbe\xd0\xbe", 14); /* cut at a character */
	assert_string_equal(w, "\xd0\xbe\xd0\xbe\xd0\xbe\xd0\xbe...");
	free(w);
	fmt_count(0, out, sizeof out);
	assert_string_equal(out, "0");
	fmt_count(999, out, sizeof out);
	assert_string_equal(out, "999");
	fmt_count(1234567, out, sizeof out);
	assert_string_equal(out, "1,234,567");
	fmt_bytes(512345678, out, sizeof out);
	assert_string_equal(out, "512.3 MB");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rtime_parse),
		cmocka_unit_test(test_rtime_bound),
		cmocka_unit_test(test_rtime_civil),
		cmocka_unit_test(test_netagg),
		cmocka_unit_test(test_naddr_in),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_filter_values),
		cmocka_unit_test(test_escaping),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
