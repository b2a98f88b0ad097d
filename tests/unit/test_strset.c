/* test_strset.c - the string set and the local_recipients table */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "checks/recipients.h"
#include "proxy/lib/strset.h"

static void test_add_has_grow(void **state)
{
	struct strset *s = strset_new();
	char k[32];
	int i;

	assert_non_null(s);
	for (i = 0; i < 100000; i++) {
		int n = snprintf(k, sizeof k, "user%d@example.test", i);

		assert_int_equal(strset_add(s, k, (size_t)n), 1);
	}
	assert_int_equal(strset_add(s, "user7@example.test", 18), 0); /* duplicate */
	assert_int_equal(strset_count(s), 100000);
	for (i = 0; i < 100000; i += 997) {
		int n = snprintf(k, sizeof k, "user%d@example.test", i);

		assert_true(strset_has(s, k, (size_t)n));
	}
	assert_false(strset_has(s, "user100000@example.test", 23));
	assert_false(strset_has(s, "user7@example.tes", 17)); /* a prefix is not a member */
	assert_false(strset_has(s, "", 0));
	assert_int_equal(strset_add(s, "", 0), 1);               /* the empty string is a value */
	assert_true(strset_has(s, "", 0));
	strset_free(s);
}

static const char *write_file(const char *text)
{
	static char path[] = "/tmp/moat-test-rcpt-XXXXXX";
	int fd;

	snprintf(path, sizeof path, "/tmp/moat-test-rcpt-XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_recipients_lookup(void **state)
{
	char err[256];
	const char *p = write_file("# comment\n\nBob@Example.TEST\ncarol@example.test   # sales\n"
	                           "@catchall.example\n  dave@example.test  \n"
	                           /* internationalised: a U-label and an A-label entry */
	                           "ivan@\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test\n"
	                           "\xd0\xbe\xd0\xbb\xd1\x8f@XN--E1AFMKFD.test\n@\xd1\x80\xd1\x84.test\n");
	struct strset *t = recipients_load(p, err, sizeof err);
	static const struct { const char *local, *domain; int want; } rows[] = {
		{ "bob", "example.test", 1 },
		{ "BOB", "EXAMPLE.test", 1 },
		{ "carol", "example.test", 1 },
		{ "carol+list", "example.test", 1 },
		{ "dave", "example.test", 1 },
		{ "mallory", "example.test", 0 },
		{ "mallory+carol", "example.test", 0 },
		{ "anyone", "catchall.example", 1 },
		{ "bob", "other.example", 0 },
		{ "", "example.test", 0 },
		/* the check gets the domain in A-labels (smtp_path.ascii_domain) */
		{ "ivan", "xn--e1afmkfd.test", 1 },
		{ "\xd0\xbe\xd0\xbb\xd1\x8f", "xn--e1afmkfd.test", 1 },
		{ "petr", "xn--e1afmkfd.test", 0 },
		{ "anyone", "xn--p1ai.test", 1 },
	};
	size_t i;

	unlink(p);
	assert_non_null(t);
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		if (recipients_has(t, rows[i].local, rows[i].domain) != rows[i].want)
			fail_msg("row %zu: %s@%s", i, rows[i].local, rows[i].domain);
	strset_free(t);
}

static void test_recipients_errors(void **state)
{
	static const struct { const char *text; const char *want; } rows[] = {
		{ "ok@example.test\nnot an address\n", ":2: \"not an address\" is not user@domain or @domain" },
		{ "a@b@c\n", ":1: " },
		{ "user@\n", ":1: " },
		{ "user\n", ":1: " },
		{ "user@\xe2\x98\x83.test\n", ":1: " },       /* IDNA2008 refuses it */
		{ "user@xn--zz.test\n", ":1: " },
	};
	char err[512];
	size_t i;

	for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		const char *p = write_file(rows[i].text);

		assert_null(recipients_load(p, err, sizeof err));
		unlink(p);
		if (!strstr(err, rows[i].want) || strncmp(err, p, strlen(p)) != 0)
			fail_msg("row %zu: got \"%s\"", i, err);
	}
	assert_null(recipients_load("/nonexistent/moat-rcpt", err, sizeof err));
	assert_non_null(strstr(err, "/nonexistent/moat-rcpt: cannot open"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_add_has_grow),
		cmocka_unit_test(test_recipients_lookup),
		cmocka_unit_test(test_recipients_errors),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
