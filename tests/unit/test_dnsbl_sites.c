/* test_dnsbl_sites.c - the dnsbl_sites syntax (postscreen's
 * postscreen_dnsbl_sites): zones, filters, weights, errors; and what an
 * answer means (a listing, a Spamhaus error code, outside 127/8). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "checks/dnsbl_sites.h"

static struct dnsbl_sites ds;

static void parse_ok(const char *text)
{
	char err[512] = "unset";

	if (dnsbl_sites_parse(text, &ds, err, sizeof err) != 0)
		fail_msg("\"%s\": %s", text, err);
	assert_string_equal(err, "");
}

static void parse_bad(const char *text, const char *want)
{
	char err[512] = "";

	if (dnsbl_sites_parse(text, &ds, err, sizeof err) == 0)
		fail_msg("accepted \"%s\"", text);
	if (!strstr(err, want))
		fail_msg("\"%s\": got %s, want %s", text, err, want);
}

static int match(int i, int a, int b, int c, int d)
{
	const unsigned char ip[4] = {(unsigned char)a, (unsigned char)b, (unsigned char)c, (unsigned char)d};

	return dnsbl_site_match(&ds.site[i], ip);
}

/* the example: weights, a range filter, a negative weight */
static void test_example(void **st)
{
	(void)st;
	parse_ok("zen.example*3, bl.example=127.0.0.[2..11]*2, wl.example*-5");
	assert_int_equal(ds.n, 3);
	assert_string_equal(ds.site[0].zone, "zen.example");
	assert_int_equal(ds.site[0].weight, 3);
	assert_false(ds.site[0].has_filter);
	assert_true(match(0, 127, 0, 0, 99));
	assert_string_equal(ds.site[1].zone, "bl.example");
	assert_int_equal(ds.site[1].weight, 2);
	assert_true(ds.site[1].has_filter);
	assert_false(match(1, 127, 0, 0, 1));
	assert_true(match(1, 127, 0, 0, 2));
	assert_true(match(1, 127, 0, 0, 11));
	assert_false(match(1, 127, 0, 0, 12));
	assert_false(match(1, 127, 0, 1, 2));
	assert_string_equal(ds.site[2].zone, "wl.example");
	assert_int_equal(ds.site[2].weight, -5);
}

/* separators: commas and blanks, any number; default weight 1; case and a
 * trailing dot of the zone */
static void test_separators_defaults(void **st)
{
	(void)st;
	parse_ok("  A.Example.  ,,b.example\tc.example=127.0.0.4 ");
	assert_int_equal(ds.n, 3);
	assert_string_equal(ds.site[0].zone, "a.example");
	assert_int_equal(ds.site[0].weight, 1);
	assert_int_equal(ds.site[2].weight, 1);
	assert_true(match(2, 127, 0, 0, 4));
	assert_false(match(2, 127, 0, 0, 5));
	parse_ok("");
	assert_int_equal(ds.n, 0);
	parse_ok("x.example*+2 y.example*0");
	assert_int_equal(ds.site[0].weight, 2);
	assert_int_equal(ds.site[1].weight, 0);
}

/* postconf(5): "a pattern inside [] that contains one or more ';'-separated
 * numbers or number..number ranges", in any octet */
static void test_lists_and_ranges(void **st)
{
	(void)st;
	parse_ok("x.example=127.[0..1].[0;2;4..5].[1;255]*4");
	assert_true(match(0, 127, 1, 4, 255));
	assert_true(match(0, 127, 0, 0, 1));
	assert_true(match(0, 127, 0, 5, 1));
	assert_false(match(0, 127, 2, 0, 1));
	assert_false(match(0, 127, 0, 1, 1));
	assert_false(match(0, 127, 0, 3, 1));
	assert_false(match(0, 127, 0, 0, 2));
	assert_false(match(0, 128, 0, 0, 1));
	parse_ok("x.example=[0..255].[0..255].[0..255].[0..255]");
	assert_true(match(0, 0, 0, 0, 0));
	assert_true(match(0, 255, 255, 255, 255));
	parse_ok("x.example=127.0.0.[7]");
	assert_true(match(0, 127, 0, 0, 7));
	assert_false(match(0, 127, 0, 0, 8));
}

static void test_errors(void **st)
{
	(void)st;
	parse_bad("x.example=127.0.0", "\"x.example=127.0.0\": the filter after '='");
	parse_bad("x.example=127.0.0.256", "the filter after '='");
	parse_bad("x.example=127.0.0.[5..2]", "the filter after '='");
	parse_bad("x.example=127.0.0.[2..", "the filter after '='");
	parse_bad("x.example=127.0.0.[]", "the filter after '='");
	parse_bad("x.example=127.0.0.1.5", "the filter after '='");
	parse_bad("x.example=127.0.0.0001", "the filter after '='");
	parse_bad("x.example=", "the filter after '='");
	parse_bad("x.example*", "the weight after '*'");
	parse_bad("x.example*two", "the weight after '*'");
	parse_bad("x.example*1001", "the weight after '*'");
	parse_bad("x.example*-1001", "the weight after '*'");
	parse_bad("example", "not a DNS list zone");
	parse_bad("*3", "not a DNS list zone");
	parse_bad("=127.0.0.2", "not a DNS list zone");
	parse_bad("bad..example", "not a DNS list zone");
	parse_bad("bad_/.example", "not a DNS list zone");
	parse_bad("ok.example, 1.2.3.4", "\"1.2.3.4\": not a DNS list zone");
	char many[4096] = "";
	for (int i = 0; i <= MOAT_DNSBL_SITES_MAX; i++)
		snprintf(many + strlen(many), sizeof many - strlen(many), "s%d.example ", i);
	parse_bad(many, "too many entries");
}

static void test_answer_kind(void **st)
{
	(void)st;
	const unsigned char listed[4] = {127, 0, 0, 2}, pbl[4] = {127, 0, 0, 11}, spam_err[4] = {127, 255, 255, 254},
	                    over[4] = {127, 255, 255, 252}, outside[4] = {192, 0, 2, 1},
	                    dbl[4] = {127, 0, 1, 2}, zero[4] = {0, 0, 0, 0};

	assert_int_equal(dnsbl_answer_kind(listed), DNSBL_LISTING);
	assert_int_equal(dnsbl_answer_kind(pbl), DNSBL_LISTING);
	assert_int_equal(dnsbl_answer_kind(dbl), DNSBL_LISTING);
	assert_int_equal(dnsbl_answer_kind(spam_err), DNSBL_ERROR_CODE);
	assert_int_equal(dnsbl_answer_kind(over), DNSBL_ERROR_CODE);
	assert_int_equal(dnsbl_answer_kind(outside), DNSBL_NOT_LOOPBACK);
	assert_int_equal(dnsbl_answer_kind(zero), DNSBL_NOT_LOOPBACK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_example),
		cmocka_unit_test(test_separators_defaults),
		cmocka_unit_test(test_lists_and_ranges),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_answer_kind),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
