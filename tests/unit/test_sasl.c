/* test_sasl.c - the AUTH argument, base64 as RFC 4648 has it, and the login
 * name in PLAIN and LOGIN answers (never a password, never a name that is
 * not UTF-8 or holds control characters, never a long one) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/lib/bounds.h"
#include "proxy/lib/sasl.h"
#include "tests/unit/b64enc.h"

static void test_mech(void **state)
{
	assert_int_equal(sasl_mech("PLAIN"), SASL_PLAIN);
	assert_int_equal(sasl_mech("plain"), SASL_PLAIN);
	assert_int_equal(sasl_mech("Login"), SASL_LOGIN);
	assert_int_equal(sasl_mech("CRAM-MD5"), SASL_NONE);
	assert_int_equal(sasl_mech("PLAINX"), SASL_NONE);
	assert_string_equal(sasl_mech_name(SASL_PLAIN), "PLAIN");
	assert_string_equal(sasl_mech_name(SASL_LOGIN), "LOGIN");
}

static void test_auth_args(void **state)
{
	static const struct {
		const char *arg;
		int r;
		enum sasl_mech m;
		const char *initial; /* NULL: none */
	} rows[] = {
		{ "PLAIN", 0, SASL_PLAIN, NULL },
		{ "login", 0, SASL_LOGIN, NULL },
		{ "PLAIN AGFsaWNlAHNlY3JldA==", 0, SASL_PLAIN, "AGFsaWNlAHNlY3JldA==" },
		{ "PLAIN =", 0, SASL_PLAIN, "=" },
		{ "LOGIN YWxpY2U=", 0, SASL_LOGIN, "YWxpY2U=" },
		{ "XOAUTH2 dXNlcj0=", 0, SASL_NONE, "dXNlcj0=" }, /* 504, for the caller */
		{ "A-MECHANISM-NAME-LONGER-THAN-ANY-THERE-IS", 0, SASL_NONE, NULL },
		{ "", -1, SASL_NONE, NULL },
		{ " PLAIN", -1, SASL_NONE, NULL },
		{ "PLAIN ", -1, SASL_PLAIN, NULL },
		{ "PLAIN a b", -1, SASL_PLAIN, NULL },
		{ "PLAIN  a", -1, SASL_PLAIN, NULL },
	};

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		enum sasl_mech m;
		const char *ir;
		int r = sasl_auth_args(rows[i].arg, &m, &ir);

		if (r != rows[i].r || (r == 0 && m != rows[i].m) ||
		    (r == 0 && (!ir != !rows[i].initial || (ir && strcmp(ir, rows[i].initial)))))
			fail_msg("\"%s\": got %d %d %s", rows[i].arg, r, m, ir ? ir : "(none)");
	}
}

static void test_b64(void **state)
{
	static const struct {
		const char *in;
		long n;          /* -1: refused */
		const char *out;
	} rows[] = {
		{ "", 0, "" },
		{ "=", 0, "" },
		{ "YQ==", 1, "a" },
		{ "YWI=", 2, "ab" },
		{ "YWJj", 3, "abc" },
		{ "AGFsaWNlAHNlY3JldA==", 13, "\0alice\0secret" },
		{ "+/+/", 3, "\xfb\xff\xbf" },
		{ "YQ=", -1, NULL },      /* not a multiple of 4 */
		{ "YQ", -1, NULL },       /* padding is required */
		{ "Y===", -1, NULL },
		{ "YR==", -1, NULL },     /* bits after the last byte not zero: not canonical */
		{ "YWJ=", -1, NULL },
		{ "YQ==YQ==", -1, NULL }, /* padding only at the end */
		{ "YW=j", -1, NULL },
		{ "YW I", -1, NULL },
		{ "YWJj\r\n", -1, NULL },
		{ "YW-j", -1, NULL },     /* base64url is not base64 */
		{ "====", -1, NULL },
	};
	unsigned char out[64];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		long n = sasl_b64_decode(rows[i].in, strlen(rows[i].in), out, sizeof out);

		if (n != rows[i].n || (n > 0 && memcmp(out, rows[i].out, (size_t)n) != 0))
			fail_msg("\"%s\": got %ld, want %ld", rows[i].in, n, rows[i].n);
	}
	/* the output's size is a bound */
	assert_int_equal(sasl_b64_decode("YWJj", 4, out, 3), 3);
	assert_int_equal(sasl_b64_decode("YWJj", 4, out, 2), -1);
	assert_int_equal(sasl_b64_decode("YWI=", 4, out, 2), 2);
}

/* The login name in PLAIN's "[authzid] NUL authcid NUL passwd" and in
 * LOGIN's first answer. */
static void test_login_name(void **state)
{
	static const struct {
		enum sasl_mech m;
		const char *msg;
		size_t len;
		const char *user; /* NULL: refused */
	} rows[] = {
		{ SASL_PLAIN, "\0alice\0secret", 13, "alice" },
		{ SASL_PLAIN, "admin\0alice\0secret", 18, "alice" }, /* authzid: the name is the authcid */
		{ SASL_PLAIN, "\0alice@example.com\0s", 20, "alice@example.com" },
		{ SASL_PLAIN, "\0j\xc3\xbcrgen\0s", 10, "j\xc3\xbcrgen" },
		{ SASL_PLAIN, "\0al ice\0s", 9, "al ice" },
		{ SASL_PLAIN, "alice\0secret", 12, NULL },         /* one NUL */
		{ SASL_PLAIN, "\0\0secret", 8, NULL },             /* no authcid */
		{ SASL_PLAIN, "\0alice\0", 7, NULL },              /* no password */
		{ SASL_PLAIN, "\0alice\0se\0cret", 14, NULL },     /* a third NUL */
		{ SASL_PLAIN, "\0al\x01ice\0s", 9, NULL },         /* a control character */
		{ SASL_PLAIN, "\0al\nice\0s", 9, NULL },
		{ SASL_PLAIN, "\0al\x7fice\0s", 9, NULL },
		{ SASL_PLAIN, "\0j\xfcrgen\0s", 9, NULL },         /* Latin-1, not UTF-8 */
		{ SASL_PLAIN, "\0\xc0\xafx\0s", 6, NULL },         /* an overlong */
		{ SASL_PLAIN, "", 0, NULL },
		{ SASL_LOGIN, "alice", 5, "alice" },
		{ SASL_LOGIN, "alice@example.com", 17, "alice@example.com" },
		{ SASL_LOGIN, "", 0, NULL },
		{ SASL_LOGIN, "ali\0ce", 6, NULL },
		{ SASL_LOGIN, "ali\rce", 6, NULL },
		{ SASL_NONE, "\0alice\0secret", 13, NULL },
	};
	char enc[256], user[MOAT_AUTH_USER_MAX + 1];

	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		int r;

		b64enc(rows[i].msg, rows[i].len, enc);
		strcpy(user, "untouched");
		r = sasl_login_name(rows[i].m, enc, strlen(enc), user, sizeof user);
		if (rows[i].user ? r != 0 || strcmp(user, rows[i].user) != 0 : r != -1)
			fail_msg("row %zu: got %d \"%s\"", i, r, user);
	}
	/* not base64 */
	assert_int_equal(sasl_login_name(SASL_LOGIN, "YWxpY2U", 7, user, sizeof user), -1);
	assert_int_equal(sasl_login_name(SASL_LOGIN, "*", 1, user, sizeof user), -1);
	/* the name's bound: MOAT_AUTH_USER_MAX bytes, and the caller's buffer */
	{
		char msg[MOAT_AUTH_USER_MAX + 16], big[(MOAT_AUTH_USER_MAX + 16) * 2];
		size_t n;

		memset(msg, 'a', sizeof msg);
		msg[0] = '\0';
		msg[MOAT_AUTH_USER_MAX + 1] = '\0';
		n = MOAT_AUTH_USER_MAX + 3;
		b64enc(msg, n, big);
		assert_int_equal(sasl_login_name(SASL_PLAIN, big, strlen(big), user, sizeof user), 0);
		assert_int_equal(strlen(user), MOAT_AUTH_USER_MAX);
		assert_int_equal(sasl_login_name(SASL_PLAIN, big, strlen(big), user, MOAT_AUTH_USER_MAX), -1);
		msg[MOAT_AUTH_USER_MAX + 1] = 'a';
		msg[MOAT_AUTH_USER_MAX + 2] = '\0';
		n = MOAT_AUTH_USER_MAX + 4;
		b64enc(msg, n, big);
		assert_int_equal(sasl_login_name(SASL_PLAIN, big, strlen(big), user, sizeof user), -1);
	}
	/* an answer of a whole line decodes; one byte of base64 more does not fit */
	{
		size_t most = (MOAT_AUTH_LINE_MAX - 2) / 4 * 3;
		char *msg = malloc(most + 3), *enc2 = malloc(most / 3 * 4 + 8);

		assert_non_null(msg);
		assert_non_null(enc2);
		memset(msg, 'x', most + 3);
		memcpy(msg, "\0alice\0", 7);
		b64enc(msg, most, enc2);
		assert_true(strlen(enc2) <= MOAT_AUTH_LINE_MAX - 2);
		assert_int_equal(sasl_login_name(SASL_PLAIN, enc2, strlen(enc2), user, sizeof user), 0);
		assert_string_equal(user, "alice");
		b64enc(msg, most + 3, enc2);
		assert_int_equal(sasl_login_name(SASL_PLAIN, enc2, strlen(enc2), user, sizeof user), -1);
		free(msg);
		free(enc2);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mech),
		cmocka_unit_test(test_auth_args),
		cmocka_unit_test(test_b64),
		cmocka_unit_test(test_login_name),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
