/* test_msghead.c - proxy/msghead.c: the fields moat puts in front of a
 * message. Whole lines, ours first, the HELO name unable to end or escape
 * the comment it sits in, and nothing written that does not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "proxy/message.h"
#include "proxy/msghead.h"

static const struct msghead base = {
	.authres = "Authentication-Results: mx.example;\r\n\tspf=pass smtp.mailfrom=a@b.example\r\n",
	.tags = "X-Tag: one\r\n",
	.helo = "client.example",
	.client_ip = "192.0.2.7",
	.hostname = "mx.example",
	.proto = "ESMTP",
	.id = "00112233aabbccdd",
	.ntx = 2,
	.date = "Mon, 07 Dec 2026 17:00:00 +0000",
};

static void test_format(void **state)
{
	char buf[MSGHEAD_MAX];
	int n = msghead_format(buf, sizeof buf, &base);

	assert_string_equal(buf, "Authentication-Results: mx.example;\r\n\tspf=pass smtp.mailfrom=a@b.example\r\n"
	                         "X-Tag: one\r\n"
	                         "Received: from client.example ([192.0.2.7])\r\n"
	                         "\tby mx.example (moat) with ESMTP id 00112233aabbccdd.2;\r\n"
	                         "\tMon, 07 Dec 2026 17:00:00 +0000\r\n");
	assert_int_equal(n, (int)strlen(buf));
	assert_true(wire_lines_ok(buf, (size_t)n));
}

static void test_ipv6_and_no_authres(void **state)
{
	struct msghead h = base;
	char buf[MSGHEAD_MAX];

	h.authres = NULL;
	h.tags = "";
	h.ipv6 = 1;
	h.client_ip = "2001:db8::7";
	h.proto = "UTF8SMTP";
	assert_true(msghead_format(buf, sizeof buf, &h) > 0);
	assert_true(strncmp(buf, "Received: from client.example ([IPv6:2001:db8::7])\r\n", 52) == 0);
	assert_non_null(strstr(buf, " with UTF8SMTP id "));
}

/* A HELO name from outside: CR, LF, parentheses, backslash, blanks and
 * 8-bit bytes become '?', so it stays one comment on one line. */
static void test_helo_untrusted(void **state)
{
	struct msghead h = base;
	char buf[MSGHEAD_MAX];
	int n;

	h.helo = "a)b(c\\d\r\n.\r\nMAIL FROM:<x@y> \xd0\xbf";
	n = msghead_format(buf, sizeof buf, &h);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "Received: from a?b?c?d??.??MAIL?FROM:<x@y>??? ([192.0.2.7])\r\n"));
	assert_true(wire_lines_ok(buf, (size_t)n));
}

/* Under TLS: the protocol with its S (RFC 3848), the version and cipher
 * in a comment after it. */
static void test_tls(void **state)
{
	struct msghead h = base;
	char buf[MSGHEAD_MAX];
	int n;

	h.tls_version = "TLSv1.3";
	h.tls_cipher = "TLS_AES_256_GCM_SHA384";
	n = msghead_format(buf, sizeof buf, &h);
	assert_true(n > 0);
	assert_non_null(strstr(buf, "\tby mx.example (moat) with ESMTPS (TLSv1.3 cipher TLS_AES_256_GCM_SHA384) "
	                            "id 00112233aabbccdd.2;\r\n"));
	assert_true(wire_lines_ok(buf, (size_t)n));
	h.proto = "UTF8SMTP";
	h.tls_cipher = "A(B)\\C\r\n";
	assert_true(msghead_format(buf, sizeof buf, &h) > 0);
	assert_non_null(strstr(buf, " with UTF8SMTPS (TLSv1.3 cipher A?B?\?C?\?) id "));
}

/* After AUTH: an "A" after the protocol and its S (RFC 3848: ESMTPA,
 * ESMTPSA; RFC 6531: UTF8SMTPSA). */
static void test_auth(void **state)
{
	struct msghead h = base;
	char buf[MSGHEAD_MAX];

	h.authenticated = 1;
	assert_true(msghead_format(buf, sizeof buf, &h) > 0);
	assert_non_null(strstr(buf, "\tby mx.example (moat) with ESMTPA id 00112233aabbccdd.2;\r\n"));
	h.tls_version = "TLSv1.3";
	h.tls_cipher = "TLS_AES_256_GCM_SHA384";
	assert_true(msghead_format(buf, sizeof buf, &h) > 0);
	assert_non_null(strstr(buf, " with ESMTPSA (TLSv1.3 cipher TLS_AES_256_GCM_SHA384) id "));
	h.proto = "UTF8SMTP";
	assert_true(msghead_format(buf, sizeof buf, &h) > 0);
	assert_non_null(strstr(buf, " with UTF8SMTPSA (TLSv1.3 cipher TLS_AES_256_GCM_SHA384) id "));
}

static void test_does_not_fit(void **state)
{
	char buf[64];

	assert_int_equal(msghead_format(buf, sizeof buf, &base), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_ipv6_and_no_authres),
		cmocka_unit_test(test_helo_untrusted),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_does_not_fit),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
