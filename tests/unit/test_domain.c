/* test_domain.c - proxy/lib/domain.c: one validator, the rules each caller
 * asks for. Inputs are exact-size heap copies (no NUL), so ASan sees any
 * read past n. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/domain.h"

#define HOST (DOMAIN_LDH | DOMAIN_NOT_NUMERIC)          /* config: hostname, local_domains */
#define LIST (DOMAIN_LDH | DOMAIN_UNDERSCORE | DOMAIN_NOT_NUMERIC)
#define PATH (DOMAIN_LDH | DOMAIN_UTF8)                 /* MAIL/RCPT domains */
#define SPF (DOMAIN_MULTI_LABEL | DOMAIN_TRAILING_DOT)  /* RFC 7208 4.3 */

static const struct {
	const char *s;
	unsigned flags;
	int want;
} rows[] = {
	{ "example.com", HOST, 0 },
	{ "a", HOST, 0 },
	{ "a-b.c-d.example", HOST, 0 },
	{ "-a.example", HOST, -1 },
	{ "a-.example", HOST, -1 },
	{ "a..example", HOST, -1 },
	{ ".example", HOST, -1 },
	{ "example.", HOST, -1 },
	{ "", HOST, -1 },
	{ "1.2.3.4", HOST, -1 },          /* an address, not a name */
	{ "1.2.3.com", HOST, 0 },
	{ "a_b.example", HOST, -1 },
	{ "a_b.example", LIST, 0 },
	{ "_dmarc.example", LIST, 0 },
	{ "a b.example", HOST, -1 },
	{ "xn--e1afmkfd.xn--p1ai", HOST, 0 },
	{ "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test", HOST, -1 },
	{ "\xd0\xbf\xd1\x80\xd0\xb8\xd0\xbc\xd0\xb5\xd1\x80.test", PATH, 1 }, /* U-label */
	{ "\xd0.test", PATH, -1 },        /* truncated UTF-8 */
	{ "\xc0\xaf.test", PATH, -1 },    /* overlong */
	{ "123", PATH, 0 },               /* a path's domain may be all digits */
	{ "example.com.", PATH, -1 },
	{ "example.com.", SPF, 0 },
	{ "example", SPF, -1 },           /* not multi-label */
	{ "ex!mple.com", SPF, 0 },        /* any printable byte */
	{ "ex mple.com", SPF, -1 },
	{ ".", SPF, -1 },
	{ "a.b", SPF, 0 },
};

static void test_rows(void **state)
{
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		size_t n = strlen(rows[i].s);
		char *p = malloc(n ? n : 1);
		int got;

		assert_non_null(p);
		memcpy(p, rows[i].s, n);
		got = domain_check(p, n, rows[i].flags);
		if (got != rows[i].want)
			fail_msg("row %zu \"%s\" flags %#x: got %d want %d", i, rows[i].s, rows[i].flags, got,
			         rows[i].want);
		free(p);
	}
}

/* Labels of 63 bytes pass, 64 do not, whatever the rules. */
static void test_label_length(void **state)
{
	char buf[80];

	memset(buf, 'a', 63);
	memcpy(buf + 63, ".com", 4);
	assert_int_equal(domain_check(buf, 67, HOST), 0);
	assert_int_equal(domain_check(buf, 67, SPF), 0);
	memset(buf, 'a', 64);
	memcpy(buf + 64, ".com", 4);
	assert_int_equal(domain_check(buf, 68, HOST), -1);
	assert_int_equal(domain_check(buf, 68, SPF), -1);
	assert_int_equal(domain_check(buf, 68, PATH), -1);
}

/* A U-label's octets in DNS are those of its A-label (idna.c): 33 Cyrillic
 * letters are 66 octets of UTF-8 and a valid label; the bound on a label
 * as written is MOAT_IDN_LABEL_MAX. */
static void test_utf8_label_length(void **state)
{
	char buf[300];
	size_t n = 0;

	for (int i = 0; i < 33; i++) {
		buf[n++] = (char)0xd0;
		buf[n++] = (char)0xb0;
	}
	memcpy(buf + n, ".test", 5);
	assert_int_equal(domain_check(buf, n + 5, PATH), 1);
	assert_int_equal(domain_check(buf, n + 5, HOST), -1);
	for (n = 0; n < 256; n += 2) {
		buf[n] = (char)0xd0;
		buf[n + 1] = (char)0xb0;
	}
	assert_int_equal(domain_check(buf, 254, PATH), 1);
	assert_int_equal(domain_check(buf, 256, PATH), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_label_length),
		cmocka_unit_test(test_utf8_label_length),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
